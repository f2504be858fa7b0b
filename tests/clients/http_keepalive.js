// http_keepalive.js — node's own HTTP client (libuv underneath) making N
// sequential requests over one keep-alive connection, then either closing
// it (agent.destroy()) or leaving it to the process's exit.
//   node http_keepalive.js PORT N close|exit    prints  requests=N bytes=B
'use strict';
const http = require('http');
const [port, n, how] = [Number(process.argv[2]), Number(process.argv[3]), process.argv[4]];
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
let bytes = 0;

function one(i) {
  if (i === n) {
    console.log(`requests=${n} bytes=${bytes}`);
    if (how === 'close') agent.destroy();
    else process.exit(0);
    return;
  }
  http.get({ host: '127.0.0.1', port, path: '/', agent }, (res) => {
    res.on('data', (d) => { bytes += d.length; });
    res.on('end', () => one(i + 1));
  }).on('error', (e) => { console.error(e.message); process.exit(1); });
}
one(0);
