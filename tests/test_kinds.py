#!/usr/bin/env python3
"""One real program of each kind that clients differ by, under libobserve:
a refusal seen through select (nc, httperf), a client that gives up
connecting (curl), clients that leave their connections to exit() (wget,
node, a JVM, python) or to _exit() (python), a libuv program that closes
with syscall(SYS_close) and sends datagrams through libuv (node), and a
JVM's HTTP client, which reads responses on a thread of its own.  Each test
fails when the defect of its kind comes back (the recorded outcome, close
or exchange count would be wrong)."""
import os
import sqlite3

import obstest as T
from obstest import test

CLIENTS = os.path.join(T.ROOT, "tests", "clients")

RF_FAILED = 0x04
RF_GAVE_UP = 0x20
RF_EXIT = 0x40


def _phases(case, logs):
    db = os.path.join(case.dir, os.path.basename(logs) + ".db")
    T.tool(T.SLICER, "load", "-q", "-o", db, logs)
    with sqlite3.connect(db) as c:
        c.row_factory = sqlite3.Row
        return [dict(r) for r in c.execute("SELECT * FROM phases ORDER BY t_connect")]


def _never_negative(rows, what):
    for r in rows:
        for k, v in r.items():
            if k.endswith("_ms") and v is not None:
                T.true(v >= 0, "%s: %s = %r is negative" % (what, k, v))


def _refused(c, what):
    T.eq((c["connect_errno"], c["t_established"], c["t1_ms"]), (111, None, None),
         "%s: ECONNREFUSED, never established, no T1" % what)
    T.eq((c["outcome"], c["closed_by"]), ("failed", "close"), "%s: failed, closed by the program" % what)


@test
def a_refusal_seen_through_select(case):
    """nc -z and httperf wait for their non-blocking connects with select;
    a refused connect is writable too, and must be recorded as refused."""
    T.need("nc")
    T.need("httperf")
    port = T.free_port()
    logs = case.logdir()
    for argv in (["nc", "-z", "127.0.0.1", str(port)], ["nc", "-z", "-w", "1", "127.0.0.1", str(port)]):
        plain = T.run(argv, check=False)
        seen = T.run(argv, logdir=logs, check=False)
        T.eq(seen.returncode, plain.returncode, "%s: exit status" % " ".join(argv))
    T.run(["httperf", "--server", "127.0.0.1", "--port", str(port), "--num-conns", "3", "--rate", "100",
           "--timeout", "2"], logdir=logs)
    rows = _phases(case, logs)
    T.eq(len(rows), 5, "two nc connects and three of httperf")
    for r in rows:
        _refused(r, r["exe"])


@test
def a_client_that_gives_up_connecting(case):
    """curl --connect-timeout against a listener that never answers (its
    accept queue is full): failed, marked as given up, no T1."""
    T.need("curl")
    port = T.unanswering_listener(case)
    logs = case.logdir()
    p = T.run(["curl", "-s", "--connect-timeout", "0.3", "http://127.0.0.1:%d/" % port], logdir=logs, check=False)
    T.eq(p.returncode, 28, "curl timed out connecting")
    (c,) = _phases(case, logs)
    T.eq((c["outcome"], c["connect_errno"], c["t1_ms"]), ("gave up", -1, None), "given up, no errno, no T1")
    T.true(c["flags"] & RF_FAILED and c["flags"] & RF_GAVE_UP, "flags 0x%x" % c["flags"])
    T.near(c["t7_ms"], 300, 150, "T7 is curl's patience")


@test
def wget_leaves_its_keepalive_connection_to_exit(case):
    T.need("wget")
    port = T.httpd(case, size=900)
    logs = case.logdir()
    urls = ["http://127.0.0.1:%d/%s" % (port, p) for p in ("a", "b", "c")]
    T.run(["wget", "-q", "-O", "/dev/null"] + urls, logdir=logs)
    (c,) = _phases(case, logs)
    T.eq((c["exchanges"], c["closed_by"], c["complete"]), (3, "exit", 1), "one connection, three exchanges, "
         "closed out at exit")
    T.true(c["t6_ms"] is not None and c["t7_ms"] is not None, "T6 and T7 present")
    T.true(c["t7_ms"] >= c["busy_ms"], "T7 spans every exchange")
    _never_negative([c], "wget")
    (log,) = T.read_logs(logs)
    T.eq(log.header["resolves"], 1, "the name lookup made before the first socket is counted")


def _node(case):
    T.need("node")
    return ["node"]


@test
def node_closes_with_syscall_and_leaves_to_exit(case):
    """node's http client on libuv: its sockets are closed with
    syscall(SYS_close), which must be seen as a close; with process.exit()
    the connection still open is closed out at exit."""
    node = _node(case)
    port = T.httpd(case, size=700)
    for how, closed_by in (("close", "close"), ("exit", "exit")):
        logs = case.logdir(how)
        p = T.run(node + [os.path.join(CLIENTS, "http_keepalive.js"), str(port), "5", how], logdir=logs)
        T.true("requests=5" in p.stdout, p.stdout)
        rows = _phases(case, logs)
        T.eq(len(rows), 1, "one keep-alive connection (%s)" % how)
        c = rows[0]
        T.eq((c["exchanges"], c["closed_by"]), (5, closed_by), "five exchanges, closed by %s" % closed_by)
        T.eq(c["bytes_received"] > 5 * 700, True, "every response's bytes")
        _never_negative(rows, "node " + how)


@test
def node_datagrams(case):
    node = _node(case)
    port = T.udp_server(case)
    logs = case.logdir()
    p = T.run(node + [os.path.join(CLIENTS, "udp_ping.js"), str(port), "20"], logdir=logs)
    T.true("sent=20 answered=20" in p.stdout, p.stdout)
    (u,) = T.records(logs, "udp")
    T.eq((u["dgrams_sent"], u["dgrams_received"], u["answered"], u["unmatched"]), (20, 20, 20, 0),
         "every datagram sent through libuv seen and paired with its answer")
    T.eq(len(T.records(logs, "dgram")), 20, "one record per datagram")


@test
def a_jvm_whose_http_client_reads_on_its_own_thread(case):
    """java.net.http sends from the caller's thread and reads on its
    selector thread: every request is one exchange with its own response,
    none negative, and the connection the JVM leaves open is closed out
    at its exit."""
    T.need("java")
    n = 20
    port = T.httpd(case, size=1500)
    logs = case.logdir()
    p = T.run(["java", "-Xshare:auto", os.path.join(CLIENTS, "HttpClientLoop.java"), "http://127.0.0.1:%d/" % port,
               str(n)], logdir=logs, timeout=120)
    T.true("requests=%d bytes=%d" % (n, n * 1500) in p.stdout, p.stdout)
    rows = [r for r in _phases(case, logs) if r["peer_port"] == port]
    T.eq(len(rows), 1, "one connection to the server")
    c = rows[0]
    T.eq((c["exchanges"], c["closed_by"]), (n, "exit"), "one exchange per request; closed out at exit")
    xs = T.records(logs, "xchg")
    xs = [x for x in xs if x["conn"] == (c["conn_id"] & ((1 << 34) - 1)) * 64]
    T.eq(sorted(x["seq"] for x in xs), list(range(1, n + 1)), "exchange numbers")
    sent = {x["bytes_sent"] for x in xs}
    T.eq(len(sent), 1, "every exchange holds one whole request: %s" % sorted(sent))
    T.every(xs, lambda x: x["bytes_received"] > 1500, "every exchange holds its whole response")
    T.every(xs, lambda x: x["t_req_first"] is not None, "every exchange has its request")
    _never_negative(rows, "java")


_PY_CLIENT = r"""
import http.client, os, sys
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]))
for _ in range(2):
    c.request("GET", "/")
    c.getresponse().read()
if sys.argv[2] == "_exit":
    os._exit(0)
sys.exit(0)
"""


@test
def python_leaves_to_exit_and_to__exit(case):
    """sys.exit(): CPython's finalization closes the socket itself, before
    exit(), and that close is the one recorded (not a second one at exit);
    os._exit() skips both: the record stays open (incomplete, no close time
    made up)."""
    port = T.httpd(case, size=400)
    for how, want in (("exit", ("close", 1)), ("_exit", (None, 0))):
        logs = case.logdir(how)
        T.run(["python3", "-c", _PY_CLIENT, str(port), how], logdir=logs)
        (c,) = _phases(case, logs)
        T.eq((c["closed_by"], c["complete"]), want, "python %s" % how)
        T.eq(c["exchanges"], 2, "two exchanges (%s)" % how)
        if how == "_exit":
            T.eq((c["t_close"], c["t7_ms"]), (None, None), "no close time made up")


if __name__ == "__main__":
    T.main()
