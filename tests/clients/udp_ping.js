// udp_ping.js — node's own datagram sockets (libuv underneath): N datagrams
// to a UDP echo server, each sent when the answer to the one before came.
//   node udp_ping.js PORT N      prints  sent=N answered=A
'use strict';
const dgram = require('dgram');
const [port, n] = [Number(process.argv[2]), Number(process.argv[3])];
const sock = dgram.createSocket('udp4');
let sent = 0, answered = 0;
const timer = setTimeout(() => done(), 5000);

function done() {
  clearTimeout(timer);
  console.log(`sent=${sent} answered=${answered}`);
  sock.close();
}
function next() {
  if (sent === n) return done();
  sent++;
  sock.send(Buffer.from('ping ' + sent), port, '127.0.0.1');
}
sock.on('message', () => { answered++; next(); });
next();
