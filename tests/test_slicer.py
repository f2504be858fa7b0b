#!/usr/bin/env python3
"""observe-slicer on real logs: logs made by real clients under the library
load into the views with the values the observation layer recorded (read
back through `observe-slicer dump`); reloads add nothing; a grown log adds
only what is new; concurrent loads both succeed; filters, summary, export
and snapshot are checked against the data; bad input is reported one line
per problem and everything valid around it still loads."""
import csv
import io
import json
import os
import random
import shutil
import sqlite3
import statistics
import struct
import subprocess
import sys
import time

import obstest as T
from obstest import test

NETCLIENT = os.path.join(T.PROGS, "netclient")
UDPPING = os.path.join(T.PROGS, "udpping")
GENLOGS = os.path.join(T.BUILD, "genlogs")
HEADER, UNIT = 4096, 64


def slicer(*args, **kw):
    return T.tool(T.SLICER, *args, **kw)


def query(db, sql, *params):
    with sqlite3.connect(db) as c:
        return c.execute(sql, params).fetchall()


def rows(db, sql, *params):
    with sqlite3.connect(db) as c:
        c.row_factory = sqlite3.Row
        return [dict(r) for r in c.execute(sql, params)]


def table_dump(db):
    """Every row of every table, for comparing two databases."""
    tables = ["run_tags", "servers", "conns", "xchgs", "udp_socks", "dgrams", "waits", "wait_aggs"]
    out = {t: query(db, "SELECT * FROM %s ORDER BY 1, 2" % t) for t in tables}
    # runs, but for when each was last loaded
    out["runs"] = [{k: v for k, v in r.items() if k != "loaded_at"} for r in rows(db, "SELECT * FROM runs ORDER BY id")]
    return out


def traffic(case, logs, conns=4, requests=3, tags="run=1"):
    """Real clients under the library: keep-alive HTTP and UDP with drops."""
    port = T.httpd(case, size=3000)
    T.run([NETCLIENT, "--port", str(port), "--conns", str(conns), "--requests", str(requests)], logdir=logs,
          env={"OBSERVE_TAGS": tags})
    uport = T.udp_server(case, drop_every=4)
    u = T.run([UDPPING, "client", "--port", str(uport), "--count", "12", "--timeout-ms", "200"], logdir=logs,
              env={"OBSERVE_TAGS": tags})
    return port, uport, u.stdout


def close(a, b, what):
    T.true(a is not None and b is not None and abs(a - b) < 1e-6, "%s: %r vs %r" % (what, a, b))


@test
def views_hold_what_the_library_recorded(case):
    logs = case.logdir()
    port, uport, _ = traffic(case, logs)
    db = os.path.join(case.dir, "o.db")
    p = slicer("load", "-o", db, logs)
    T.true("loaded" in p.stdout, "summary line: %r" % p.stdout)
    dumped = T.records(logs, "conn")
    phases = {r["conn_id"]: r for r in rows(db, "SELECT * FROM phases")}
    T.eq(len(phases), len(dumped), "one phases row per connection record")
    T.eq(len(phases), 4, "connections")
    by_port = {r["local_port"]: r for r in phases.values()}
    spans = T.periods("CONN")
    T.true({"t%d_ms" % k for k in range(1, 8)} <= set(spans), "the format defines T1-T7: %s" % sorted(spans))
    for c in dumped:
        r = by_port[int(c["local"].rsplit(":", 1)[1])]
        for k, (a, b) in spans.items():
            if c[a] is None or c[b] is None:
                T.eq(r[k], None, "%s: absent" % k)
            else:
                close(r[k], (c[b] - c[a]) / 1e6, k)
        T.eq(r["dispatch_ms"], None, "dispatch_ms: a blocking client waits in recv, not in an event wait")
        for f in ("bytes_sent", "bytes_received", "exchanges", "connect_errno"):
            T.eq(r[f], c[f], f)
        for f in ("t_connect", "t_established", "t_req_first", "t_req_last", "t_resp_first", "t_resp_last",
                  "t_close"):
            T.eq(r[f], c[f], f)
        T.eq("%s:%d" % (r["peer_addr"], r["peer_port"]), c["peer"], "peer")
        T.eq((r["side"], r["complete"], r["tags"], r["exe"]), ("client", 1, "run=1", "netclient"), "facts")
    (proc,) = [l for l in T.read_logs(logs) if l.header["exe"].endswith("netclient")]
    anchor = proc.header["anchor_realtime_ns"] - proc.header["anchor_monotonic_ns"]
    for r in phases.values():
        T.eq(r["start_ns"], anchor + r["t_connect"], "start_ns is the wall-clock t_connect")
        T.eq(r["pid"], proc.header["pid"], "pid")
    # exchanges: 4 connections x 3 requests, each with its own phases
    xs = rows(db, "SELECT * FROM exchange_phases ORDER BY conn_id, seq")
    T.eq(len(xs), 12, "exchanges")
    dx = {(int(x["conn"]), x["seq"]): x for x in T.records(logs, "xchg")}
    for x in xs:
        d = dx[(x["conn_id"] & ((1 << 34) - 1)) * UNIT, x["seq"]]
        for k, (a, b) in T.periods("XCHG").items():
            if d[a] is None or d[b] is None:
                T.eq(x[k], None, "exchange %s: absent" % k)
            else:
                close(x[k], (d[b] - d[a]) / 1e6, "exchange " + k)
        T.eq((x["bytes_sent"], x["bytes_received"]), (d["bytes_sent"], d["bytes_received"]), "exchange bytes")
        T.true(x["t2_ms"] is not None and x["t2_ms"] >= 0, "exchange t2_ms %r" % x["t2_ms"])
    firsts = [x for x in xs if x["seq"] == 1]
    for x in firsts:
        for k in ("t2_ms", "t3_ms", "t4_ms", "t5_ms"):
            close(x[k], phases[x["conn_id"]][k], "the first exchange's %s is the connection's" % k)
    lasts = {x["conn_id"]: x for x in xs}  # ordered by seq: the last one stays
    for cid, r in phases.items():
        last = [d for (c, _), d in dx.items() if c == (cid & ((1 << 34) - 1)) * UNIT and d["seq"] == lasts[cid]["seq"]][0]
        T.eq(r["t_resp_end"], last["t_resp_last"], "t_resp_end is the last exchange's last response byte")
        T.eq(r["closed_by"], "close", "closed by the program")
    # datagrams: every 4th dropped by the server
    ds = rows(db, "SELECT * FROM datagram_phases")
    dd = T.records(logs, "dgram")
    T.eq(len(ds), len(dd), "one row per datagram record")
    T.eq(sum(d["answered"] for d in ds), sum(1 for d in dd if d["t_recv"] is not None), "answered")
    T.true(0 < sum(1 - d["answered"] for d in ds) < 12, "some unanswered")
    T.eq(sorted(round(d["response_ms"], 6) for d in ds if d["answered"]),
         sorted(round((d["t_recv"] - d["t_send"]) / 1e6, 6) for d in dd if d["t_recv"] is not None), "response times")
    T.every(ds, lambda d: d["peer_port"] == uport, "datagram peer port")
    # event waits and tags as rows
    waits = rows(db, "SELECT * FROM event_waits")
    T.true(any(w["mechanism"] == "poll" and w["calls"] > 0 for w in waits), "udpping's poll calls: %r" % waits)
    T.eq(sorted(set(query(db, "SELECT key, value FROM tags"))), [("run", "1")], "tags as rows")
    T.eq(query(db, "PRAGMA integrity_check"), [("ok",)], "integrity")


@test
def reloading_adds_nothing(case):
    logs = case.logdir()
    traffic(case, logs)
    db = os.path.join(case.dir, "o.db")
    slicer("load", "-o", db, logs)
    before = table_dump(db)
    p = slicer("load", "-o", db, logs)
    T.true(p.stdout.startswith("loaded 0 records"), "second load: %r" % p.stdout)
    after = table_dump(db)
    for t in before:
        T.eq(after[t], before[t], t)
    T.true(len(before["conns"]) == 4 and len(before["xchgs"]) == 12, "rows were there")


GROWING = r"""
import socket, sys
port = int(sys.argv[1])
def fetch(s):
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    got = b""
    while b"\r\n\r\n" not in got or len(got.split(b"\r\n\r\n", 1)[1]) < 100:
        got += s.recv(65536)
for _ in range(3):
    with socket.create_connection(("127.0.0.1", port)) as s:
        fetch(s)
live = socket.create_connection(("127.0.0.1", port))
fetch(live)
print("phase1", flush=True)
sys.stdin.readline()
fetch(live)
live.close()
for _ in range(2):
    with socket.create_connection(("127.0.0.1", port)) as s:
        fetch(s)
print("done", flush=True)
"""


@test
def a_grown_log_adds_only_its_new_records(case):
    port = T.httpd(case, size=100)
    logs = case.logdir()
    script = os.path.join(case.dir, "grow.py")
    with open(script, "w") as f:
        f.write(GROWING)
    p = subprocess.Popen([sys.executable, script, str(port)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         text=True, env=T.env_observed(logs))
    case.procs.append(p)
    T.eq(p.stdout.readline().strip(), "phase1", "client reached its pause")
    db = os.path.join(case.dir, "o.db")
    slicer("load", "-o", db, logs)
    first = rows(db, "SELECT conn_id, complete, exchanges FROM phases ORDER BY conn_id")
    T.eq([r["complete"] for r in first], [1, 1, 1, 0], "three closed connections and one live")
    upto = query(db, "SELECT loaded_upto FROM runs")[0][0]
    T.eq(upto, (first[3]["conn_id"] & ((1 << 34) - 1)) * UNIT, "resume point is the live connection")
    p.stdin.write("go\n")
    p.stdin.flush()
    T.eq(p.stdout.readline().strip(), "done", "client finished")
    p.wait(timeout=10)
    out = slicer("load", "-o", db, logs).stdout
    second = rows(db, "SELECT conn_id, complete, exchanges FROM phases ORDER BY conn_id")
    T.eq(len(second), 6, "six connections, none twice")
    T.eq([r["complete"] for r in second], [1] * 6, "the live one is now complete")
    T.eq(second[3]["exchanges"], 2, "and has its second exchange")
    T.eq(query(db, "SELECT count(*) FROM xchgs")[0][0], 7, "exchanges, none twice")
    # read again from the live connection on: it, its two exchanges, 2 new connections and theirs
    T.true(out.startswith("loaded 7 records"), "second load read only what changed: %r" % out)


@test
def concurrent_loads_both_succeed(case):
    a, b = case.logdir("a"), case.logdir("b")
    for d, n in ((a, 60000), (b, 60000)):
        subprocess.run([GENLOGS, d, str(n), "3"], check=True, capture_output=True)
    db = os.path.join(case.dir, "o.db")
    ps = [subprocess.Popen([T.SLICER, "load", "-q", "-o", db, d], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True) for d in (a, b, a)]
    for p in ps:
        out, err = p.communicate(timeout=300)
        T.eq((p.returncode, err), (0, ""), "each concurrent load succeeds")
    total = query(db, "SELECT (SELECT count(*) FROM conns) + (SELECT count(*) FROM xchgs) + "
                      "(SELECT count(*) FROM udp_socks) + (SELECT count(*) FROM dgrams)")[0][0]
    want = 0
    for d in (a, b):
        ref = os.path.join(case.dir, os.path.basename(d) + ".db")
        slicer("load", "-q", "-o", ref, d)
        want += query(ref, "SELECT (SELECT count(*) FROM conns) + (SELECT count(*) FROM xchgs) + "
                           "(SELECT count(*) FROM udp_socks) + (SELECT count(*) FROM dgrams)")[0][0]
    T.true(want >= 120000, "reference loads: %d records" % want)
    T.eq(total, want, "every record once, although a was loaded twice at the same time")
    T.eq(query(db, "PRAGMA integrity_check"), [("ok",)], "integrity")


@test
def filters_on_load_and_on_queries(case):
    logs = case.logdir()
    p1 = T.httpd(case, size=500)
    p2 = T.httpd(case, size=900)
    T.run([NETCLIENT, "--port", str(p1), "--conns", "3"], logdir=logs, env={"OBSERVE_TAGS": "rate=10,server=one"})
    time.sleep(0.05)  # --since takes milliseconds: mid is well clear of both runs
    mid = time.time()
    time.sleep(0.05)
    T.run([NETCLIENT, "--port", str(p2), "--conns", "2"], logdir=logs, env={"OBSERVE_TAGS": "rate=20,server=two"})
    db = os.path.join(case.dir, "all.db")
    slicer("load", "-o", db, logs)
    only = os.path.join(case.dir, "only.db")
    out = slicer("load", "-o", only, "--port", p2, logs).stdout
    T.eq(query(only, "SELECT count(*), min(peer_port) FROM phases"), [(2, p2)], "load --port")
    T.true("left out by the filters: 6 records" in out, out)  # 3 connections and their exchanges
    tagged = os.path.join(case.dir, "tagged.db")
    slicer("load", "-o", tagged, "--tag", "rate=10", "-t", "campaign=x", logs)
    T.eq(query(tagged, "SELECT count(*) FROM phases WHERE tags = 'campaign=x,rate=10,server=one'"), [(3,)],
         "load --tag, with a tag added")

    def exported(*filters):
        return list(csv.DictReader(io.StringIO(slicer("export", db, *filters).stdout)))
    T.eq(len(exported()), 5, "no filter")
    T.eq(len(exported("--peer", "127.0.0.0/8")), 5, "CIDR that holds them all")
    T.eq(len(exported("--peer", "10.0.0.0/8")), 0, "CIDR that holds none")
    T.eq(len(exported("--peer", "127.0.0.1", "--port", p1)), 3, "--peer and --port")
    T.eq(len(exported("--tag", "server=two")), 2, "--tag")
    T.eq(len(exported("--tag", "rate")), 5, "--tag KEY alone")
    T.eq(len(exported("--exe", "netclient")), 5, "--exe name")
    T.eq(len(exported("--exe", NETCLIENT)), 5, "--exe path")
    T.eq(len(exported("--exe", "curl")), 0, "--exe other")
    T.eq(len(exported("--since", "@%.3f" % mid)), 2, "--since")
    T.eq(len(exported("--until", "@%.3f" % mid)), 3, "--until")
    iso = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(mid - 3600))
    T.eq(len(exported("--since", iso)), 5, "--since in ISO form")
    T.eq(len(exported("--side", "server")), 0, "--side")
    s = json.loads(slicer("summary", db, "--tag", "server=one", "--format", "json").stdout)
    T.eq({r["group"] for r in s}, {"one"}, "summary with a filter, grouped by the server tag")


@test
def summary_agrees_with_the_rows(case):
    logs = case.logdir()
    port = T.httpd(case, size=2000, delay_ms=2)
    T.run([NETCLIENT, "--port", str(port), "--conns", "25", "--requests", "2", "--mode", "epoll"], logdir=logs,
          env={"OBSERVE_TAGS": "server=lab,rate=5"})
    db = os.path.join(case.dir, "o.db")
    slicer("load", "-o", db, logs)
    data = rows(db, "SELECT * FROM phases")
    raw = {int(c["local"].rsplit(":", 1)[1]): c for c in T.records(logs, "conn")}
    for d in data:  # an epoll client: the dispatch delay is there
        c = raw[d["local_port"]]
        close(d["dispatch_ms"], (c["t_resp_first"] - c["t_resp_ready"]) / 1e6, "dispatch_ms")
    xdata = rows(db, "SELECT * FROM exchange_phases")
    T.eq(len(xdata), 50, "two exchanges per connection")
    out = json.loads(slicer("summary", db, "--format", "json").stdout)
    T.eq(len(out), 7, "one row per phase for the one server")
    T.eq([(r["phase"], r["per"]) for r in out],
         [("T1", "connection"), ("T2", "request"), ("T3", "request"), ("T4", "request"), ("T5", "request"),
          ("T6", "connection"), ("T7", "connection")], "T2-T5 per request (exchange), T1, T6, T7 per connection")

    def pct(v, p):  # linear interpolation between closest ranks, as documented
        v = sorted(v)
        pos = p * (len(v) - 1)
        lo = int(pos)
        return v[-1] if lo + 1 >= len(v) else v[lo] + (v[lo + 1] - v[lo]) * (pos - lo)
    for r in out:
        k = int(r["phase"][1])
        source = data if r["per"] == "connection" else xdata
        v = [d["t%d_ms" % k] for d in source if d["t%d_ms" % k] is not None]
        T.eq((r["group"], r["count"]), ("lab", len(v)), "group and count of " + r["phase"])
        for name, want in (("min", min(v)), ("median", statistics.median(v)), ("p90", pct(v, 0.9)),
                           ("p99", pct(v, 0.99)), ("max", max(v)), ("mean", statistics.mean(v))):
            T.true(abs(r[name + "_ms"] - want) < 1e-5, "%s %s: %r vs %r" % (r["phase"], name, r[name + "_ms"], want))
    T.true(out[3]["median_ms"] >= 2.0, "T4 holds the server's 2 ms")
    table = slicer("summary", db).stdout.splitlines()
    T.true(table[0].split()[:5] == ["server", "phase", "per", "count", "min_ms"], "table header: %r" % table[0])
    T.eq(len({len(l) for l in table}), 1, "aligned table")
    c = list(csv.reader(io.StringIO(slicer("summary", db, "--by", "tag:rate", "--format", "csv").stdout)))
    T.eq([row[0] for row in c[1:]], ["5"] * 7, "--by tag:rate")
    c = list(csv.reader(io.StringIO(slicer("summary", db, "--by", "peer", "--format", "csv").stdout)))
    T.eq(c[1][0], "127.0.0.1:%d" % port, "--by peer")


@test
def hostile_file_names_are_data(case):
    """A log directory and a log file whose names hold a leading '-',
    quotes, backquotes, $(...), ';' and a newline: loaded after '--', the
    name stored as it is; before '--' a leading '-' is a usage error."""
    pwned = os.path.join(case.dir, "PWNED")  # what a shell run in case.dir would make
    d = os.path.join(case.dir, "-d $(touch PWNED)\n'\"`touch PWNED`")
    os.mkdir(d)
    port = T.httpd(case, size=100)
    T.run([NETCLIENT, "--port", str(port), "--conns", "2"], logdir=case.logdir())
    (log,) = [f for f in os.listdir(case.logdir()) if f.endswith(".olog")]
    name = "-oProxyCommand=x;$(touch PWNED).olog"
    shutil.copy(os.path.join(case.logdir(), log), os.path.join(d, name))
    db = os.path.join(case.dir, "o.db")
    rel = os.path.basename(d)
    p = T.tool(T.SLICER, "load", "-o", db, rel, check=False, cwd=case.dir)
    T.eq(p.returncode, 2, "a leading '-' is an option, unknown: usage error")
    slicer("load", "-o", db, "--", rel, cwd=case.dir)
    (src,), = query(db, "SELECT source FROM runs")
    T.true(src.endswith(os.path.join(rel, name)), "the path stored as it is: %r" % src)
    T.eq(query(db, "SELECT count(*) FROM conns"), [(2,)], "its records loaded")
    T.true(not os.path.exists(pwned), "nothing executed")


@test
def export_escapes_what_it_did_not_write(case):
    logs = case.logdir()
    port = T.httpd(case, size=100)
    nasty = 'q="x\'`$(touch /tmp/pwned)`;\nDROP TABLE runs;--'
    # poll: the client's waits are a view to export too
    T.run([NETCLIENT, "--port", str(port), "--conns", "2", "--mode", "poll"], logdir=logs,
          env={"OBSERVE_TAGS": "label=" + nasty})
    db = os.path.join(case.dir, "o.db")
    slicer("load", "-o", db, logs)
    c = list(csv.DictReader(io.StringIO(slicer("export", db, "--what", "connections").stdout)))
    T.eq([r["tags"] for r in c], ["label=" + nasty] * 2, "CSV round trip of a hostile tag")
    T.eq(c[0]["resolve_ms"], "", "NULL is empty in CSV")
    j = json.loads(slicer("export", db, "--format", "json", "--tag", "label=" + nasty).stdout)
    T.eq([r["tags"] for r in j], ["label=" + nasty] * 2, "JSON round trip, and the filter matched it")
    T.true(j[0]["resolve_ms"] is None and isinstance(j[0]["t7_ms"], float), "JSON types")
    x = json.loads(slicer("export", db, "--what", "exchanges", "--format", "json").stdout)
    T.eq(len(x), 2, "exchanges")
    w = list(csv.DictReader(io.StringIO(slicer("export", db, "--what", "waits").stdout)))
    T.every(w, lambda r: r["mechanism"] == "poll", "waits")
    T.eq(len(json.loads(slicer("export", db, "--what", "datagrams", "--format", "json").stdout)), 0, "datagrams")
    T.true(not os.path.exists("/tmp/pwned"), "nothing executed")
    T.eq(query(db, "SELECT count(*) FROM runs")[0][0], 1, "nothing dropped")
    out = os.path.join(case.dir, "c.csv")
    slicer("export", db, "-o", out)
    with open(out) as f:
        T.eq(len(list(csv.DictReader(f))), 2, "export -o FILE")
    p = slicer("export", db, "--what", "waits", "--port", "80", check=False)
    T.true(p.returncode == 2 and "do not apply to waits" in p.stderr, "a filter that does not apply: %r" % p.stderr)


@test
def snapshot_is_consistent_while_a_load_runs(case):
    logs = case.logdir()
    subprocess.run([GENLOGS, logs, "400000", "4"], check=True, capture_output=True)
    db = os.path.join(case.dir, "o.db")
    small = case.logdir("small")
    subprocess.run([GENLOGS, small, "2000", "2"], check=True, capture_output=True)
    slicer("load", "-q", "-o", db, small)
    load = subprocess.Popen([T.SLICER, "load", "-q", "-o", db, logs], stderr=subprocess.PIPE, text=True)
    snaps = []
    for i in range(4):
        out = os.path.join(case.dir, "snap%d.db" % i)
        slicer("snapshot", db, out)
        snaps.append(out)
        time.sleep(0.2)
    _, err = load.communicate(timeout=300)
    T.eq((load.returncode, err), (0, ""), "the load went on")
    for s in snaps:
        T.eq(query(s, "PRAGMA integrity_check"), [("ok",)], "snapshot integrity")
        T.eq(query(s, "PRAGMA journal_mode"), [("delete",)], "snapshot is a plain database file")
        # consistent: every exchange's connection is there, and each run's
        # progress mark matches its rows
        T.eq(query(s, "SELECT count(*) FROM xchgs WHERE conn NOT IN (SELECT id FROM conns)"), [(0,)],
             "no exchange without its connection")
    p = subprocess.run([T.SLICER, "snapshot", db, "-"], capture_output=True, timeout=120)
    T.eq(p.returncode, 0, "snapshot to stdout")
    piped = os.path.join(case.dir, "piped.db")
    with open(piped, "wb") as f:
        f.write(p.stdout)
    T.eq(query(piped, "SELECT count(*) FROM xchgs"), query(db, "SELECT count(*) FROM xchgs"), "stdout copy")
    p = slicer("snapshot", os.path.join(case.dir, "missing.db"), os.path.join(case.dir, "x.db"), check=False)
    T.true(p.returncode == 1 and "missing.db" in p.stderr, "missing source: %r" % p.stderr)


def _real_logs(case, n, conns=5):
    """n logs of n real client processes (each its own run)."""
    port = T.httpd(case, size=100)
    logs = case.logdir("src")
    for _ in range(n):
        T.run([NETCLIENT, "--port", str(port), "--conns", str(conns)], logdir=logs)
    out = []
    for name in sorted(f for f in os.listdir(logs) if f.endswith(".olog")):
        with open(os.path.join(logs, name), "rb") as f:
            out.append(bytearray(f.read()))
    return out


@test
def bad_input_is_reported_and_the_rest_loaded(case):
    good, truncated, flipped = _real_logs(case, 3)
    d = case.logdir("bad")

    def put(name, data):
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)
    put("good.olog", good)
    reserved = struct.unpack_from("<Q", truncated, 24)[0]
    put("truncated.olog", truncated[:HEADER + reserved - UNIT])
    flipped[HEADER + 16 + 16] ^= 0x10  # t_connect of the first connection
    put("flipped.olog", flipped)
    future = bytearray(good)
    future[8:12] = struct.pack("<I", 99)
    put("future.olog", future)
    put("empty.olog", b"")
    put("notalog.olog", b"GET / HTTP/1.1\r\n" * 400)
    put("ignored.txt", b"not a log, not named like one")
    db = os.path.join(case.dir, "o.db")
    p = slicer("load", "-o", db, d, check=False)
    T.eq(p.returncode, 1, "exit status: some input could not be loaded")
    lines = p.stderr.strip().splitlines()
    expect = {"truncated.olog": "truncated", "flipped.olog": "fails its checksum", "future.olog": "unknown log format version 99",
              "empty.olog": "empty file", "notalog.olog": "not an observe log"}
    for name, what in expect.items():
        hits = [l for l in lines if os.path.join(d, name) in l]
        T.true(any(what in l for l in hits), "%s: %r" % (name, hits))
    T.true(not any("ignored.txt" in l for l in lines), "other files are not logs")
    T.true(len(lines) <= 8, "one line per problem: %r" % lines)
    counts = dict(query(db, "SELECT r.source, count(c.id) FROM runs r LEFT JOIN conns c ON c.run = r.id GROUP BY r.id"))
    T.eq(counts.get(os.path.join(d, "good.olog")), 5, "the intact log")
    T.eq(counts.get(os.path.join(d, "flipped.olog")), 4, "the damaged log, but its damaged record")
    T.eq(counts.get(os.path.join(d, "truncated.olog")), 5, "the truncated log: the tear is after the last connection")
    T.eq(query(db, "PRAGMA integrity_check"), [("ok",)], "integrity")
    # a directory that cannot be read, as someone who may not
    if os.geteuid() == 0 and shutil.which("setpriv"):
        locked = os.path.join(case.dir, "locked")
        os.makedirs(os.path.join(locked, "inner"))
        os.chmod(os.path.join(locked, "inner"), 0)
        os.chmod(case.dir, 0o755)
        other = os.path.join(case.dir, "nobody")
        os.makedirs(other)
        os.chmod(other, 0o777)
        p = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", T.SLICER, "load", "-o",
                            os.path.join(other, "n.db"), locked], capture_output=True, text=True)
        T.true(p.returncode == 1 and "inner: cannot read" in p.stderr, "unreadable directory: %r" % p.stderr)
    p = slicer("load", "-o", db, os.path.join(case.dir, "no-such-dir"), check=False)
    T.true(p.returncode == 1 and "no-such-dir" in p.stderr, "missing path: %r" % p.stderr)


@test
def command_lines(case):
    for cmd in ("load", "summary", "export", "snapshot", "dump"):
        p = slicer(cmd, "--help")
        T.true(p.stdout.startswith("usage: observe-slicer " + cmd), "%s --help" % cmd)
    T.eq(slicer("--help").returncode, 0, "--help")
    for argv, what in ((["load"], "no log"), (["load", "--bogus", "x"], "unknown option '--bogus'"),
                       (["load", "--port", "http", "x"], "bad value for --port"),
                       (["load", "-t", "no-equals", "x"], "bad tag"), (["summary"], "no database"),
                       (["summary", "x.db", "--by", "color"], None), (["export", "x.db", "--format", "xml"], "bad --format"),
                       (["load", "--since", "yesterday", "x"], "bad value for --since"),
                       (["snapshot", "a.db"], "want DB and OUT"), (["frobnicate"], "unknown command")):
        p = slicer(*argv, check=False, cwd=case.dir)
        if what is None:  # a usage error found once the database is open
            continue
        T.true(p.returncode == 2 and what in p.stderr, "%s: %d %r" % (argv, p.returncode, p.stderr))
    db = os.path.join(case.dir, "o.db")
    logs = case.logdir()
    traffic(case, logs)
    slicer("load", "-o", db, logs)
    p = slicer("summary", db, "--by", "color", check=False)
    T.true(p.returncode == 2 and "bad --by 'color'" in p.stderr, "bad --by: %r" % p.stderr)
    p = slicer("export", db, "--what", "everything", check=False)
    T.true(p.returncode == 2 and "unknown --what" in p.stderr, "bad --what: %r" % p.stderr)
    p = slicer("summary", os.path.join(case.dir, "none.db"), check=False)
    T.true(p.returncode == 1 and "none.db" in p.stderr, "missing database: %r" % p.stderr)
    with sqlite3.connect(db) as c:
        c.execute("PRAGMA user_version = 99")
    p = slicer("summary", db, check=False)
    T.true(p.returncode == 1 and "newer observe (schema version 99" in p.stderr, "newer schema: %r" % p.stderr)
    p = slicer("load", "-o", db, logs, check=False)
    T.true(p.returncode == 1 and "newer observe" in p.stderr, "load into a newer schema: %r" % p.stderr)
    other = os.path.join(case.dir, "other.db")
    with sqlite3.connect(other) as c:
        c.execute("CREATE TABLE mine (x)")
    p = slicer("load", "-o", other, logs, check=False)
    T.true(p.returncode == 1 and "not an observe database" in p.stderr, "foreign database: %r" % p.stderr)
    T.eq(query(other, "SELECT name FROM sqlite_schema"), [("mine",)], "left untouched")


@test
def a_database_of_schema_version_1_is_migrated(case):
    old = os.path.join(case.dir, "old.db")
    shutil.copy(os.path.join(T.ROOT, "tests", "fixtures", "schema-v1.db"), old)
    T.eq(query(old, "PRAGMA user_version"), [(1,)], "the fixture was made by schema version 1")
    before = query(old, "SELECT conn_id, t1_ms, t7_ms, bytes_received FROM phases ORDER BY 1")
    T.eq(len(before), 3, "fixture rows")
    p = slicer("summary", old, check=False)
    T.true(p.returncode == 1 and "older observe (schema version 1)" in p.stderr, "reading asks for a migration")
    logs = case.logdir()
    traffic(case, logs, conns=2, requests=1)
    slicer("load", "-o", old, logs)
    T.eq(query(old, "PRAGMA user_version"), [(T.db_version(),)], "migrated")
    T.eq(query(old, "SELECT conn_id, t1_ms, t7_ms, bytes_received FROM phases WHERE conn_id <= ? ORDER BY 1",
               before[-1][0]), before, "old rows unchanged")
    T.eq(query(old, "SELECT count(*) FROM phases"), [(5,)], "new rows added")
    T.eq(query(old, "SELECT count(*) FROM runs WHERE hostname IS NULL OR hostname != client_host"), [(0,)],
         "hostname filled in for the old runs")
    fresh = os.path.join(case.dir, "fresh.db")
    slicer("load", "-o", fresh, logs)

    def shape(db):
        tables = [r[0] for r in query(db, "SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")]
        views = query(db, "SELECT name, sql FROM sqlite_schema WHERE type = 'view' ORDER BY name")
        return {t: query(db, "SELECT name, type, \"notnull\", pk FROM pragma_table_info(?)", t) for t in tables}, views
    T.eq(shape(old), shape(fresh), "a migrated database has the tables and views of a new one")
    T.eq(query(old, "PRAGMA integrity_check"), [("ok",)], "integrity")


@test
def a_load_killed_midway_then_rerun_equals_a_clean_load(case):
    logs = case.logdir()
    subprocess.run([GENLOGS, logs, "600000", "4"], check=True, capture_output=True)
    # kill at moments spread over how long a whole load takes on this machine
    clean = os.path.join(case.dir, "clean.db")
    started = time.monotonic()
    slicer("load", "-q", "-o", clean, logs)
    whole = time.monotonic() - started
    db = os.path.join(case.dir, "killed.db")
    rng = random.Random(7)
    killed = 0
    for i in range(6):
        p = subprocess.Popen([T.SLICER, "load", "-q", "-o", db, logs], stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
        time.sleep(rng.uniform(0.05, 0.7) * whole)
        if p.poll() is None:
            p.kill()
            killed += 1
        p.wait()
        T.eq(query(db, "PRAGMA integrity_check"), [("ok",)], "integrity after kill %d" % i)
    T.true(killed >= 3, "the loads were killed midway (%d of 6)" % killed)
    slicer("load", "-q", "-o", db, logs)
    T.eq(table_dump(db), table_dump(clean), "killed and re-run equals one clean load")



@test
def a_disk_that_fills_mid_log_leaves_the_log_out_whole(case):
    """Every log's records commit together: a load that runs out of room in
    the middle of a 600,000-record log (the slicer's file size limited, as a
    full disk would) leaves none of that log in the database, and the next
    load puts all of it there."""
    import resource, signal
    logs = case.logdir()
    subprocess.run([GENLOGS, logs, "600000", "1"], check=True, capture_output=True)
    db = os.path.join(case.dir, "o.db")
    slicer("load", "-q", "-o", db, case.logdir("none"), check=False)  # the schema, nothing else
    def small_disk():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (34 << 20, 34 << 20))  # 500,000 records take 31 MiB
    p = subprocess.run([T.SLICER, "load", "-q", "-o", db, logs], capture_output=True, text=True,
                       preexec_fn=small_disk)
    T.true(p.returncode != 0 and "observe-slicer:" in p.stderr, "the load failed, saying so: %r" % p.stderr)
    T.eq(query(db, "SELECT (SELECT count(*) FROM runs), (SELECT count(*) FROM conns), (SELECT count(*) FROM xchgs)"),
         [(0, 0, 0)], "nothing of the log is in the database")
    slicer("load", "-q", "-o", db, logs)
    clean = os.path.join(case.dir, "clean.db")
    slicer("load", "-q", "-o", clean, logs)
    count = "SELECT (SELECT count(*) FROM conns), (SELECT count(*) FROM xchgs)"
    T.eq(query(db, count), query(clean, count), "all of it after the next load")


@test
def fifos_and_devices_are_refused_with_a_line(case):
    """A FIFO (a read would block) or a device (/dev/zero reads forever)
    named on load's command line, or found under a log's name in a
    directory, is refused with a line naming what it is; exit status 1."""
    fifo = os.path.join(case.dir, "x.olog")
    os.mkfifo(fifo)
    db = os.path.join(case.dir, "o.db")
    for path, kind in ((fifo, "a FIFO"), ("/dev/zero", "a character device"), (case.dir, "a FIFO")):
        p = slicer("load", "-q", "-o", db, path, check=False, timeout=20)
        T.eq(p.returncode, 1, "exit status for %s" % path)
        T.true("%s, not a log file or a directory" % kind in p.stderr, "said: %r" % p.stderr)


@test
def a_damaged_databases_error_is_one_line(case):
    """SQLite names a damaged schema entry in its message ("malformed
    database schema (NAME)"), and NAME can hold a newline: snapshot (what the
    manager runs on a client host, keeping the last line of its stderr)
    says it on one line, so "malformed" is not lost to the line after it."""
    logs = case.logdir()
    traffic(case, logs, conns=1, requests=1)
    db = os.path.join(case.dir, "o.db")
    slicer("load", "-o", db, logs)
    with sqlite3.connect(db) as c:
        c.execute("PRAGMA writable_schema = ON")
        c.execute("INSERT INTO sqlite_master (type, name, tbl_name, rootpage, sql) "
                  "VALUES ('table', 'x\nsecond line', 'x', 0, 'CREATE TABLE (')")
    p = slicer("snapshot", db, os.path.join(case.dir, "copy.db"), check=False)
    T.eq(p.returncode, 1, "snapshot fails")
    T.eq(p.stderr.count("\n"), 1, "one line: %r" % p.stderr)
    T.true("malformed database schema (x second line)" in p.stderr, "the whole message: %r" % p.stderr)

@test
def connection_reuse_is_visible_per_exchange(case):
    """ApacheBench with keep-alive (-k): 2 connections carry 20 requests.
    Each exchange says whether it paid a connection setup (reused 0, the
    first on its connection) or not, how long its connection sat idle before
    it and how old it was; summary --by reuse sets the two apart."""
    T.need("ab")
    port = T.httpd(case, size=100)
    logs = case.logdir()
    T.run(["ab", "-q", "-k", "-n", "20", "-c", "2", "http://127.0.0.1:%d/" % port], logdir=logs)
    db = os.path.join(case.dir, "o.db")
    slicer("load", "-q", "-o", db, logs)
    with sqlite3.connect(db) as d:
        rows = d.execute("SELECT conn_id, seq, reused, idle_ms, t2_ms, conn_age_ms FROM exchange_phases "
                         "ORDER BY conn_id, seq").fetchall()
        conns = d.execute("SELECT count(*) FROM phases").fetchone()[0]
    T.eq((conns, len(rows)), (2, 20), "ab's connections and requests")
    firsts = [r for r in rows if r[1] == 1]
    T.every(firsts, lambda r: r[2] == 0 and r[3] is None, "a connection's first exchange: not reused, no idle time")
    T.every([r for r in rows if r[1] > 1], lambda r: r[2] == 1 and r[3] is not None and abs(r[3] - r[4]) < 1e-9 and r[3] >= 0,
            "a later exchange: reused, idle since the previous response, which is its T2")
    for conn in {r[0] for r in rows}:
        ages = [r[5] for r in rows if r[0] == conn]
        T.true(ages == sorted(ages) and ages[0] > 0, "a connection ages from one request to the next: %r" % ages)
    out = json.loads(slicer("summary", db, "--by", "reuse", "--format", "json").stdout)
    t4 = {r["group"]: r["count"] for r in out if r["phase"] == "T4"}
    T.eq(t4, {"first": 2, "reused": 18}, "summary --by reuse: requests on fresh and on reused connections")


if __name__ == "__main__":
    T.main()
