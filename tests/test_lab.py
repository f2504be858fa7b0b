#!/usr/bin/env python3
"""The lab's programs, each on its own: the servers really use the backend
asked for (seen by libobserve loaded into the server: its event waits are
of that mechanism), the UDP server really listens on N ports (and each wait
covers them all), the idle holder really holds N connections, and the UDP
client's own figures agree with libobserve's datagram records."""
import os
import random
import re
import signal
import socket
import sqlite3
import subprocess
import time

import obstest as T
from obstest import test

B = T.BUILD
HTTPD, UDPD, UDPC, IDLE = (os.path.join(B, n) for n in ("observe-httpd", "observe-udpd", "observe-udpc", "observe-idle"))
NETCLIENT = os.path.join(T.PROGS, "netclient")
WAIT_NAME = {"select": "select", "poll": "poll", "epoll": "epoll_wait"}


def udpd(case, backend, ports, logdir=None):
    p = case.spawn([UDPD, "--backend", backend, "--port", "0", "--ports", str(ports)],
                   env=T.env_observed(logdir) if logdir else None)
    line = p.stdout.readline()
    m = re.search(r"listening on [\d.]+ ports (\d+)-(\d+) \((\d+)\) backend=(\w+)", line)
    if not m:
        raise AssertionError("observe-udpd did not start: %r %s" % (line, p.stderr.read() if p.poll() is not None else ""))
    T.eq((int(m.group(3)), m.group(4)), (ports, backend), "ports and backend announced")
    return p, int(m.group(1))


def stop(p):
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=10)
    return p.returncode


def waits_of(logdir, exe):
    (log,) = [l for l in T.read_logs(logdir) if l.header["exe"].endswith(exe)]
    return log.header.get("waits", {})


@test
def servers_use_the_backend_asked_for(case):
    for backend in ("select", "poll", "epoll"):
        logs = case.logdir("httpd-" + backend)
        port = T.httpd(case, backend=backend, observed_dir=logs)
        T.run([NETCLIENT, "--port", str(port), "--conns", "3"])
        ulogs = case.logdir("udpd-" + backend)
        up, first = udpd(case, backend, 5, logdir=ulogs)
        T.run([UDPC, "--addr", "127.0.0.1", "--port", str(first), "--ports", "5", "--rate", "50", "--duration", "1"])
        for proc, d, exe in ((case.procs[-2], logs, "observe-httpd"), (up, ulogs, "observe-udpd")):
            T.eq(stop(proc), 0, "%s stops cleanly on SIGTERM" % exe)
            w = waits_of(d, exe)
            T.eq(sorted(w), [WAIT_NAME[backend]], "%s --backend %s waits only with %s" % (exe, backend, WAIT_NAME[backend]))
            T.true(w[WAIT_NAME[backend]]["calls"] > 3, "%s dispatched events" % exe)
    p = subprocess.run([HTTPD, "--backend", "kqueue"], capture_output=True, text=True)
    T.true(p.returncode == 2 and "unknown backend 'kqueue'" in p.stderr, "a backend Linux lacks: %r" % p.stderr)


@test
def udp_server_listens_on_n_ports(case):
    logs = case.logdir()
    n = 300
    p, first = udpd(case, "poll", n, logdir=logs)
    out = subprocess.run(["ss", "-H", "-uln", "-p"], capture_output=True, text=True).stdout
    mine = [l for l in out.splitlines() if "pid=%d," % p.pid in l]
    ports = sorted(int(l.split()[3].rsplit(":", 1)[1]) for l in mine)
    T.eq(ports, list(range(first, first + n)), "one socket on each of the %d ports" % n)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2)
    for port in random.sample(range(first, first + n), 25):
        s.sendto(b"ping %d" % port, ("127.0.0.1", port))
        data, src = s.recvfrom(100)
        T.eq((data, src[1]), (b"ping %d" % port, port), "answered from port %d" % port)
    T.eq(stop(p), 0, "stops on SIGTERM")
    w = waits_of(logs, "observe-udpd")["poll"]
    T.true(abs(w["interest_sum"] / w["calls"] - n) < 5, "each poll() covers all %d ports: %r" % (n, w))
    for argv, what in (([UDPD, "--ports", "0"], "number of ports"), ([UDPD, "--ports", "5001"], "number of ports"),
                       ([UDPD, "--addr", "nowhere"], "bad address"), ([UDPD, "--backend", "devpoll"], "unknown backend")):
        q = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        T.true(q.returncode == 2 and what in q.stderr, "%s: %r" % (argv, q.stderr))


@test
def idle_holder_holds_n_connections(case):
    port = T.httpd(case, backend="epoll")
    n = 600
    p = case.spawn([IDLE, "--addr", "127.0.0.1", "--port", str(port), "--conns", str(n)])
    T.eq(p.stdout.readline().strip(), "observe-idle: holding %d connections" % n, "announced")

    def established():
        out = subprocess.run(["ss", "-H", "-tn", "state", "established", "( dport = :%d )" % port],
                             capture_output=True, text=True).stdout
        return len(out.splitlines())
    T.eq(established(), n, "connections held open")
    time.sleep(1)
    T.eq(established(), n, "and still open a second later, silent")
    got = T.run([NETCLIENT, "--port", str(port), "--conns", "2"])
    T.true("conns=2 failed=0" in got.stdout, "the server still answers")
    T.eq(stop(p), 0, "stops on SIGTERM")
    deadline = time.time() + 5
    while established() and time.time() < deadline:
        time.sleep(0.1)
    T.eq(established(), 0, "closed when stopped")
    q = subprocess.run([IDLE, "--addr", "127.0.0.1", "--port", str(T.free_port()), "--conns", "3"],
                       capture_output=True, text=True, timeout=10)
    T.true(q.returncode == 1 and "holding 0 connections" in q.stdout and "refused" in q.stderr,
           "nothing to connect to: %r %r" % (q.stdout, q.stderr))


@test
def udp_client_agrees_with_the_datagram_records(case):
    p, first = udpd(case, "epoll", 50)
    logs = case.logdir()
    out = T.run([UDPC, "--addr", "127.0.0.1", "--port", str(first), "--ports", "50", "--rate", "100", "--duration", "2"],
                logdir=logs, env={"OBSERVE_TAGS": "ports=50"}).stdout
    m = dict(re.findall(r"(\w+)=([\d.]+)", out))
    T.eq((int(m["sent"]), int(m["answered"])), (200, 200), "its own counts: %s" % out)
    db = os.path.join(case.dir, "o.db")
    subprocess.run([T.SLICER, "load", "-q", "-o", db, logs], check=True)
    with sqlite3.connect(db) as c:
        n, answered, ports = c.execute("SELECT count(*), sum(answered), count(DISTINCT peer_port) "
                                       "FROM datagram_phases").fetchone()
        times = sorted(r[0] for r in c.execute("SELECT response_ms FROM datagram_phases WHERE answered"))
    T.eq((n, answered), (200, 200), "one record per datagram, all answered")
    T.true(ports > 30, "sent to many of the 50 ports (%d)" % ports)
    median = times[len(times) // 2]
    # the client times from before sendto() to after recv(); the library from
    # sendto()'s return to recv()'s return: ours may be shorter by a send call
    T.true(median <= float(m["median"]) + 0.02, "recorded median %.4f ms <= the client's %s ms" % (median, m["median"]))
    T.near(median, float(m["median"]), 0.25, "recorded median against the client's own")
    T.eq(stop(p), 0, "server stops")


if __name__ == "__main__":
    T.main()
