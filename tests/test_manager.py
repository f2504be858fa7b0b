#!/usr/bin/env python3
"""observe-manager with real OpenSSH: sshd in network namespaces that stand
for client hosts (198.18.0.0/15) and on loopback, each holding a database
made by real clients under the library; pull, merge, check the rows; the
ways a pull goes wrong; plots and the report from a known dataset.  Nothing
taken from a database, a tag, a label or a host name may be executed."""
import json
import os
import shutil
import signal
import sqlite3
import struct
import subprocess
import time
import xml.etree.ElementTree as ET

import obstest as T
from obstest import test
import netlab

MANAGER = os.path.join(T.BUILD, "asan" if T.SANITIZE else "", "observe-manager")
SLICER_REMOTE = os.path.join(T.BUILD, "observe-slicer")
NETCLIENT = os.path.join(T.PROGS, "netclient")
UDPPING = os.path.join(T.PROGS, "udpping")
PWNED = "/tmp/observe-manager-test-pwned"
NASTY = 'x"\'`touch %s`$(touch %s);\\n' % (PWNED, PWNED)


def manager(*args, **kw):
    return T.tool(MANAGER, *args, **kw)


def query(db, sql, *params):
    with sqlite3.connect(db) as c:
        return c.execute(sql, params).fetchall()


def client_db(case, name, conns, tags):
    """A database made by real clients under the library, as a client host has."""
    port = T.httpd(case, size=1500)
    logs = case.logdir("logs-" + name)
    T.run([NETCLIENT, "--port", str(port), "--conns", str(conns), "--requests", "2"], logdir=logs,
          env={"OBSERVE_TAGS": tags})
    db = os.path.join(case.dir, name + ".db")
    subprocess.run([SLICER_REMOTE, "load", "-q", "-o", db, logs], check=True)
    return db, logs


def counts(db):
    return query(db, "SELECT (SELECT count(*) FROM conns), (SELECT count(*) FROM xchgs), (SELECT count(*) FROM runs)")[0]


@test
def pull_from_hosts_in_network_namespaces(case):
    netlab.need_netns()
    key = netlab.keypair(case, "manager-key")
    dbs, sshds = [], []
    for i, name in enumerate(("c1", "c2"), start=1):
        ns, addr = netlab.namespace(case, 60 + i)
        sshds.append(netlab.Sshd(case, name, addr, 22, key, ns=ns))
        dbs.append(client_db(case, name, 3 + i, "rate=%d,server_host=vm%d" % (10 * i, i)))
    cfg = netlab.ssh_config(case, key, sshds)
    inv = os.path.join(case.dir, "inventory")
    with open(inv, "w") as f:
        f.write("# two client hosts\nclient c1 root@%s db=%s\n" % (sshds[0].addr, dbs[0][0]))
        f.write("client c2 %s:22 logs=%s\n" % (sshds[1].addr, dbs[1][1]))  # a log directory this time
        f.write("server 127.0.0.1 lab-server host=vm0 mechanism=epoll\n")
    merged = os.path.join(case.dir, "merged.db")
    p = manager("pull", "-j", "2", "-F", cfg, "--db", merged, "--remote-slicer", SLICER_REMOTE, "--progress", inv)
    T.true("c1: merged" in p.stdout and "c2: merged" in p.stdout, "both merged: %r" % p.stdout)
    T.true("2/2 hosts done, 0 failed" in p.stderr, "the progress line: %r" % p.stderr)
    want = [sum(x) for x in zip(counts(dbs[0][0]), counts(dbs[1][0]))]
    T.eq(list(counts(merged)), want, "connections, exchanges and processes of both hosts")
    T.eq(query(merged, "SELECT client_host, count(*) FROM phases GROUP BY 1 ORDER BY 1"), [("c1", 4), ("c2", 5)],
         "rows carry the inventory's host names")
    T.eq(sorted(set(query(merged, "SELECT server, mechanism FROM phases"))), [("lab-server", "epoll")],
         "servers labelled from the inventory")
    T.eq(query(merged, "SELECT host, ok FROM pulls ORDER BY host"), [("c1", 1), ("c2", 1)], "pulls recorded")
    same = [query(dbs[0][0], "SELECT t1_ms, t4_ms, t7_ms, bytes_received FROM phases ORDER BY conn_id"),
            query(merged, "SELECT t1_ms, t4_ms, t7_ms, bytes_received FROM phases WHERE client_host = 'c1' ORDER BY conn_id")]
    T.eq(same[1], same[0], "values unchanged by the trip")
    before = query(merged, "SELECT * FROM conns ORDER BY id")
    manager("pull", "-F", cfg, "--db", merged, "--remote-slicer", SLICER_REMOTE, inv)
    T.eq(query(merged, "SELECT * FROM conns ORDER BY id"), before, "pulling again adds nothing")
    T.eq(list(counts(merged)), want, "counts after the second pull")
    T.eq(query(merged, "PRAGMA integrity_check"), [("ok",)], "integrity")


def script(case, name, body):
    """An executable shell script in the case's directory; its path.  Each
    run notes its PID, and the test's end stops every one still running (a
    slow host's script outlives the ssh the manager gave up on)."""
    path = os.path.join(case.dir, name)
    pids = path + ".pids"
    with open(path, "w") as f:
        f.write("#!/bin/sh\necho $$ >> '%s'\n%s\n" % (pids, body))
    os.chmod(path, 0o755)

    def stop():
        if os.path.exists(pids):
            for pid in set(open(pids).read().split()):
                subprocess.run(["pkill", "-KILL", "-P", pid])  # what it started, then itself
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass
    case.cleanups.append(stop)
    return path


def local_ssh(case):
    """An ssh stand-in (for OBSERVE_SSH) that runs the remote command here."""
    return script(case, "local-ssh", 'while [ "$1" != "--" ]; do shift; done\nshift 2\nexec sh -c "$1"')


def planted(case, good, name, sql):
    path = os.path.join(case.dir, name + ".db")
    shutil.copy(good, path)
    with sqlite3.connect(path) as c:
        c.executescript(sql)
    return path


@test
def a_failing_host_is_reported_and_the_others_merged(case):
    if not os.path.exists(netlab.SSHD):
        raise T.Skip("sshd is not installed")
    key, other = netlab.keypair(case, "manager-key"), netlab.keypair(case, "someone-else")
    good = netlab.Sshd(case, "good", "127.0.0.1", T.free_port(), key)
    refusing = netlab.Sshd(case, "refusing", "127.0.0.1", T.free_port(), other)
    cfg = netlab.ssh_config(case, key, [good, refusing])
    db, _ = client_db(case, "good", 3, "label=" + NASTY + "\nsecond line")
    corrupt = os.path.join(case.dir, "corrupt.db")
    with open(db, "rb") as f:
        data = bytearray(f.read())
    data[200:3 * 16384] = os.urandom(3 * 16384 - 200)  # the schema page and the next ones
    with open(corrupt, "wb") as f:
        f.write(data)
    trigger = planted(case, db, "trigger", "CREATE TRIGGER t AFTER INSERT ON runs BEGIN DELETE FROM conns; END;")
    view = planted(case, db, "view", "CREATE VIEW evil AS SELECT 1;")
    changed = planted(case, db, "changed", "DROP VIEW phases; CREATE VIEW phases AS SELECT * FROM conns;")
    notours = os.path.join(case.dir, "notours.db")
    with sqlite3.connect(notours) as c:
        c.execute("CREATE TABLE x (y)")
    # a remote side that sends whatever file it is given, as a broken or
    # hostile host could: the manager's own check must catch it
    cat = script(case, "cat-slicer", 'cat "$2"')
    noise = os.path.join(case.dir, "noise.db")
    with open(noise, "wb") as f:
        f.write(os.urandom(70000))
    slow = script(case, "slow-slicer", "exec sleep 60")
    down = T.free_port()
    g = "127.0.0.1:%d" % good.port
    inv = os.path.join(case.dir, "inventory")
    with open(inv, "w") as f:
        f.write("client ok %s db=%s\n" % (g, db))
        f.write("client down 127.0.0.1:%d db=%s\n" % (down, db))
        f.write("client refused 127.0.0.1:%d db=%s\n" % (refusing.port, db))
        f.write("client corrupt %s db=%s\n" % (g, corrupt))
        f.write("client corrupt-sent %s db=%s slicer=%s\n" % (g, corrupt, cat))
        f.write("client noise-sent %s db=%s slicer=%s\n" % (g, noise, cat))
        f.write("client trigger-sent %s db=%s slicer=%s\n" % (g, trigger, cat))
        f.write("client trigger %s db=%s\n" % (g, trigger))
        f.write("client view %s db=%s\n" % (g, view))
        f.write("client changed %s db=%s\n" % (g, changed))
        f.write("client notours %s db=%s\n" % (g, notours))
        f.write("client missing %s db=%s/none.db\n" % (g, case.dir))
        f.write("client slow %s db=%s slicer=%s\n" % (g, db, slow))
        f.write("client -oProxyCommand=touch%s 127.0.0.1 db=/x.db\n" % PWNED)
        f.write("client dash -oProxyCommand=touch%s db=/x.db\n" % PWNED)
        f.write("client quote 127.0.0.1:%d db=/tmp/$(touch%s)'`x`.db\n" % (good.port, PWNED))
        f.write("server 127.0.0.1 %s host=vm1 mechanism=epoll\n" % NASTY.replace(" ", "_").replace("\\n", ""))
    merged = os.path.join(case.dir, "merged.db")
    t0 = time.time()
    # 10 s a host: on a loaded 2-core machine a pull of a small database
    # has taken more than 5 s; the slow host still has to time out
    p = manager("pull", "-j", "4", "--timeout", "10", "-F", cfg, "--db", merged, "--remote-slicer", SLICER_REMOTE,
                inv, check=False)
    T.eq(p.returncode, 1, "exit status says not all succeeded")
    T.true(time.time() - t0 < 60, "the slow host timed out")
    err = p.stderr

    def said(host, what):
        lines = [l for l in err.splitlines() if (" %s (" % host) in l]
        T.true(any(what in l for l in lines), "%s: want %r in %r" % (host, what, lines or err))
    said("down", "Connection refused")
    said("refused", "Permission denied")
    said("corrupt", "malformed")  # the remote slicer saw it
    said("corrupt-sent", "not usable")  # the manager saw it
    said("noise-sent", "not usable")
    said("trigger-sent", "has a trigger")
    said("trigger", "has a trigger")
    said("view", "unexpected view ('evil')")
    said("changed", "view 'phases' differs from ours")
    said("notours", "not an observe database")
    said("missing", "none.db")
    said("slow", "timed out")
    T.true("bad client name '-oProxyCommand" in err, "a name beginning with '-' is refused: %r" % err)
    T.true("bad host '-oProxyCommand" in err, "a host beginning with '-' is refused")
    said("quote", "$(touch")  # the path went to the remote side as one word, and was not found
    T.true("ok: merged" in p.stdout, "the good host merged: %r %r" % (p.stdout, [l for l in err.splitlines() if " ok (" in l]))
    T.eq(query(merged, "SELECT count(*) FROM conns"), [(3,)], "only the good host's rows")
    T.eq(query(merged, "SELECT count(*) FROM pulls WHERE ok = 0"), [(13,)], "each failure recorded")
    T.true(not os.path.exists(PWNED), "nothing was executed")
    # labels and tags with quotes, backquotes, $(...) go through plots and report as text
    out = os.path.join(case.dir, "report")
    manager("report", "--db", merged, "-o", out)
    T.true(not os.path.exists(PWNED), "nothing was executed by gnuplot or the report")
    with open(os.path.join(out, "report.html")) as f:
        html = f.read()
    T.true("`touch" in html and "&#39;" in html and "&quot;" in html, "the label is shown escaped")
    T.true("<script" not in html, "no scripts")


def png_size(path):
    with open(path, "rb") as f:
        head = f.read(24)
    T.eq(head[:8], b"\x89PNG\r\n\x1a\n", "%s is a PNG" % path)
    return struct.unpack(">II", head[16:24])


@test
def plots_and_report_from_a_known_dataset(case):
    """Three servers (select, poll, epoll), two request rates, UDP at two
    port counts: every plot is made, valid PNG and SVG, from the right numbers."""
    logs = case.logdir()
    for backend in ("select", "poll", "epoll"):
        port = T.httpd(case, backend=backend, size=800)
        for rate in (10, 20):
            T.run([NETCLIENT, "--port", str(port), "--conns", "4", "--requests", "2", "--mode", "poll"], logdir=logs,
                  env={"OBSERVE_TAGS": "server=%s-vm,mechanism=%s,rate=%d" % (backend, backend, rate)})
    uport = T.udp_server(case)
    for ports in (1, 100):
        T.run([UDPPING, "client", "--port", str(uport), "--count", "5"], logdir=logs,
              env={"OBSERVE_TAGS": "mechanism=epoll,ports=%d" % ports})
    db = os.path.join(case.dir, "known.db")
    subprocess.run([SLICER_REMOTE, "load", "-q", "-o", db, logs], check=True)
    out = os.path.join(case.dir, "plots")
    p = manager("plot", "--db", db, "-o", out)
    names = ["latency-by-server", "phases", "t7-cdf", "latency-vs-rate", "udp-vs-ports", "reply-rate"]
    T.true(p.stdout.startswith("%d plots" % len(names)), p.stdout)
    for n in names:
        w, h = png_size(os.path.join(out, n + ".png"))
        T.true(w >= 800 and h >= 500, "%s.png is %dx%d" % (n, w, h))
        root = ET.parse(os.path.join(out, n + ".svg")).getroot()
        T.eq(root.tag, "{http://www.w3.org/2000/svg}svg", "%s.svg is SVG" % n)
    # the numbers behind the bars are the slicer's
    summary = json.loads(subprocess.run([SLICER_REMOTE, "summary", db, "--format", "json"], capture_output=True,
                                        text=True, check=True).stdout)
    want = {(r["group"], r["phase"]): r for r in summary}
    with open(os.path.join(out, "latency-by-server.dat")) as f:
        rows = [l.rstrip("\n").split("\t") for l in f][1:]
    # labels that name their mechanism already are not followed by it
    T.eq(sorted(r[0] for r in rows), ["epoll-vm", "poll-vm", "select-vm"], "one bar group per server")
    for r in rows:
        label = r[0].split(" ")[0]
        T.true(abs(float(r[1]) - want[(label, "T4")]["median_ms"]) < 1e-5, "T4 median of %s" % label)
        T.true(abs(float(r[4]) - want[(label, "T7")]["p99_ms"]) < 1e-5, "T7 p99 of %s" % label)
    with open(os.path.join(out, "latency-vs-rate.dat")) as f:
        text = f.read()
    T.eq(text.count("\n\n\n"), 2, "three lines (mechanisms) against the rate")
    out2 = os.path.join(case.dir, "report")
    manager("report", "--db", db, "-o", out2)
    with open(os.path.join(out2, "report.html")) as f:
        html = f.read()
    for n in names:
        T.true('src="%s.png"' % n in html, "report shows " + n)
    T.true("select-vm" in html and "<table>" in html, "summary table")
    filtered = os.path.join(case.dir, "filtered")
    manager("plot", "--db", db, "-o", filtered, "--tag", "mechanism=poll")
    with open(os.path.join(filtered, "latency-by-server.dat")) as f:
        T.eq(len(f.read().splitlines()), 2, "filters apply to plots")


@test
def an_output_directory_others_could_plant_links_in_is_refused(case):
    """gnuplot follows links and blocks on FIFOs: an output directory owned
    by someone else, or one others may write into (where a link to a file
    of ours, or a FIFO, could be planted), is refused with a line, and
    nothing is written through it."""
    good, _ = client_db(case, "a", 2, "server=s1")
    open_dir = os.path.join(case.dir, "open")
    os.mkdir(open_dir)
    os.chmod(open_dir, 0o777)
    victim = os.path.join(case.dir, "victim")
    with open(victim, "w") as f:
        f.write("mine\n")
    os.symlink(victim, os.path.join(open_dir, "latency-by-server.png"))
    for cmd in ("plot", "report"):
        p = manager(cmd, "--db", good, "-o", open_dir, check=False, timeout=60)
        T.eq(p.returncode, 1, "%s's exit status" % cmd)
        T.true("others may write into it: refused" in p.stderr, "why: %r" % p.stderr)
    T.eq(open(victim).read(), "mine\n", "the file the link points to")
    T.eq(sorted(os.listdir(open_dir)), ["latency-by-server.png"], "nothing written there")
    link = os.path.join(case.dir, "link")
    os.symlink(case.logdir("target"), link)
    manager("plot", "--db", good, "-o", link)
    T.true(os.path.exists(os.path.join(case.dir, "target", "t7-cdf.png")), "our own link is followed")
    if os.geteuid() == 0:
        planted = os.path.join(case.dir, "planted")
        os.symlink(case.logdir("target2"), planted)
        os.lchown(planted, 65534, 65534)
        p = manager("plot", "--db", good, "-o", planted, check=False)
        T.true(p.returncode == 1 and "a symbolic link owned by uid 65534" in p.stderr, "a planted link: %r" % p.stderr)
        T.eq(os.listdir(os.path.join(case.dir, "target2")), [], "nothing written through it")
        theirs = os.path.join(case.dir, "theirs")
        os.mkdir(theirs, 0o755)
        os.chown(theirs, 65534, 65534)
        p = manager("plot", "--db", good, "-o", theirs, check=False)
        T.true(p.returncode == 1 and "owned by uid 65534, not by us" in p.stderr, "someone else's: %r" % p.stderr)
    ours = os.path.join(case.dir, "ours")
    manager("plot", "--db", good, "-o", ours)
    T.true(os.path.getsize(os.path.join(ours, "latency-by-server.png")) > 0, "our own directory is written")


@test
def what_a_database_holds_is_shown_as_plain_text(case):
    """Found when a corrupted database's random bytes reached the manager's
    message: a refused database whose names hold a terminal escape, a
    newline and bytes that are not UTF-8 is reported in plain UTF-8 text,
    with '?' for what cannot be shown (a pull's message, printed and kept
    in the pulls table, is cleaned the same way)."""
    db, _ = client_db(case, "good", 1, "label=x")
    odd = os.path.join(case.dir, "odd.db")
    shutil.copy(db, odd)
    subprocess.run(["sqlite3", odd], input=b'CREATE VIEW "a\x1b[31m\nb\xff\xc3" AS SELECT 1;', check=True)
    p = subprocess.run([MANAGER, "merge", "--db", os.path.join(case.dir, "m.db"), "h=" + odd], capture_output=True)
    T.eq(p.returncode, 1, "refused")
    err = p.stderr.decode("utf-8")  # raises if it is not UTF-8
    T.true("\x1b" not in err, "no escape passed through: %r" % err)
    T.true("unexpected view ('a?[31m b??')" in err, "the name shown with '?' for what cannot be: %r" % err)


@test
def a_database_in_another_text_encoding_is_refused(case):
    """Found by the fuzz target: a UTF-16 database with our schema passed the
    check and then could not be attached to merge."""
    odd = os.path.join(case.dir, "utf16.db")
    with sqlite3.connect(odd) as c:
        c.execute("PRAGMA encoding = 'UTF-16le'")
        for f in ("db/schema.sql", T.BUILD + "/gen/views.sql"):
            with open(os.path.join(T.ROOT, f)) as sql:
                c.executescript(sql.read())
        c.execute("PRAGMA user_version = %d" % T.db_version())
    p = manager("merge", "--db", os.path.join(case.dir, "m.db"), "h=" + odd, check=False)
    T.true(p.returncode == 1 and "its text encoding is UTF-16le, not UTF-8: refused" in p.stderr, "%r" % p.stderr)


@test
def a_host_that_sends_without_end_fails_alone(case):
    """A client host whose remote side streams zeros, or writes to stderr
    without end, cannot fill the manager's disk: what a host may send is
    bounded (--max-mb), its stderr kept to its last lines; that host fails
    with a line saying why, the good host beside it is merged, and nothing
    is left in the temporary directory."""
    good, _ = client_db(case, "good", 2, "server=s1")
    ssh = local_ssh(case)
    zeros = script(case, "zeros-slicer", "exec cat /dev/zero")
    chatty = script(case, "chatty-slicer", "exec yes 'a line on stderr' >&2")
    tmp = case.logdir("tmp")
    inv = os.path.join(case.dir, "inventory")
    with open(inv, "w") as f:
        f.write("client good 127.0.0.1 db=%s\n" % good)
        f.write("client zeros 127.0.0.1 db=%s slicer=%s\n" % (good, zeros))
        f.write("client chatty 127.0.0.1 db=%s slicer=%s\n" % (good, chatty))
    merged = os.path.join(case.dir, "merged.db")
    env = {"OBSERVE_SSH": ssh, "TMPDIR": tmp}
    p = manager("pull", "--max-mb", "8", "--timeout", "4", "--db", merged, "--remote-slicer", SLICER_REMOTE, inv,
                check=False, extra_env=env, timeout=60)
    T.eq(p.returncode, 1, "exit status: %s" % p.stderr[-500:])
    T.true("good: merged" in p.stdout, "the good host merged: %r" % p.stdout)
    T.true(any(" zeros (" in l and "sent more than 8 MiB (--max-mb): refused" in l for l in p.stderr.splitlines()),
           "the zeros host: %r" % p.stderr[-500:])
    T.true(any(" chatty (" in l and "timed out" in l for l in p.stderr.splitlines()), "the chatty host: %r" % p.stderr[-500:])
    T.true(len(p.stderr) < 2000, "the manager's own stderr stays short: %d bytes" % len(p.stderr))
    T.eq(os.listdir(tmp), [], "nothing left in TMPDIR")
    T.eq(counts(merged)[0], 2, "the good host's connections")


@test
def a_stopped_pull_leaves_nothing_behind(case):
    """SIGTERM in the middle of a pull stops it and removes the partial
    snapshots; what a pull killed outright (SIGKILL) left is removed by the
    next pull, which says so."""
    good, _ = client_db(case, "good", 2, "server=s1")
    ssh = local_ssh(case)
    slow = script(case, "slow-slicer", "head -c 100000 /dev/zero; exec sleep 60")
    tmp = case.logdir("tmp")
    env = dict(os.environ, OBSERVE_SSH=ssh, TMPDIR=tmp)
    inv = os.path.join(case.dir, "inv")
    with open(inv, "w") as f:
        f.write("client slow 127.0.0.1 db=%s slicer=%s\n" % (good, slow))
    argv = [MANAGER, "pull", "--db", os.path.join(case.dir, "m.db"), "--remote-slicer", SLICER_REMOTE, inv]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        p = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 10
        while time.time() < deadline and not any(os.listdir(os.path.join(tmp, d)) for d in os.listdir(tmp)):
            time.sleep(0.05)
        T.true(os.listdir(tmp), "the pull is under way")
        p.send_signal(sig)
        out, err = p.communicate(timeout=20)
        T.eq(p.returncode, -sig, "ended by the signal")
        if sig == signal.SIGTERM:
            T.true("stopped by signal" in err, "said: %r" % err)
            T.eq(os.listdir(tmp), [], "nothing left after SIGTERM")
        else:
            T.eq(len(os.listdir(tmp)), 1, "SIGKILL leaves the partial snapshot")
            # the remote side the killed manager could not stop, stopped by its PID
            pids = subprocess.run(["pgrep", "-f", slow], capture_output=True, text=True).stdout.split()
            for pid in pids:
                os.kill(int(pid), signal.SIGKILL)
    p = manager("pull", "--timeout", "1", "--db", os.path.join(case.dir, "m.db"), "--remote-slicer", SLICER_REMOTE,
                "good=127.0.0.1:" + good, check=False, extra_env={"OBSERVE_SSH": ssh, "TMPDIR": tmp})
    T.true("left by a pull that was killed" in p.stderr, "the next pull removes it: %r" % p.stderr)
    T.eq(os.listdir(tmp), [], "nothing left")


@test
def a_host_touches_only_its_own_rows(case):
    """A pulled database cannot change another host's data: one that reuses
    another host's run ids is refused whole, naming the collision (the other
    host's processes stay under its name, their records unchanged), and the
    servers' labels a pulled database holds are never copied (the
    inventory is the only authority on labels)."""
    a, _ = client_db(case, "a", 2, "server=s1")
    merged = os.path.join(case.dir, "m.db")
    manager("merge", "--db", merged, "a=" + a)
    before = query(merged, "SELECT r.client_host, c.* FROM conns c JOIN runs r ON r.id = c.id >> 34 ORDER BY c.id")
    thief = planted(case, a, "thief", "UPDATE conns SET bytes_sent = 666; "
                    "INSERT INTO servers VALUES ('127.0.0.1', 0, 'forged', 'vm-x', 'select');")
    p = manager("merge", "--db", merged, "b=" + thief, check=False)
    T.eq(p.returncode, 1, "exit status")
    T.true("1 of its processes have run ids already merged from host 'a': refused" in p.stderr, "why: %r" % p.stderr)
    after = query(merged, "SELECT r.client_host, c.* FROM conns c JOIN runs r ON r.id = c.id >> 34 ORDER BY c.id")
    T.eq(after, before, "host a's processes and records")
    manager("merge", "--db", merged, "a=" + thief)  # the same host again: its own rows, replaced
    T.eq(query(merged, "SELECT DISTINCT bytes_sent FROM conns"), [(666,)], "a host may replace its own rows")
    T.eq(query(merged, "SELECT count(*) FROM servers"), [(0,)], "no server label taken from a pulled database")


@test
def absurd_values_are_refused_and_labels_made_valid(case):
    """One host's absurd values must not break everyone's plots: a number
    no log can hold (1e308, or text, in an integer column) is refused at
    merge with a line naming the column; a label that is not UTF-8 or holds
    "]]>" still gives SVG files that are valid XML; more servers than a plot
    can show are cut to the first 40, and said."""
    a, _ = client_db(case, "a", 2, "server=s1")
    for name, sql, column in (("huge", "UPDATE conns SET d_established = 1e308", "conns.d_established"),
                              ("text", "UPDATE xchgs SET bytes_sent = 'many'", "xchgs.bytes_sent")):
        bad = planted(case, a, name, sql)
        p = manager("merge", "--db", os.path.join(case.dir, name + "-m.db"), "a=" + bad, check=False)
        T.eq(p.returncode, 1, "exit status for %s" % name)
        T.true("%s are not integers" % column in p.stderr, "why: %r" % p.stderr)
    label = planted(case, a, "label", "UPDATE run_tags SET value = CAST(X'ff2d5d5d3e2de282' AS TEXT) WHERE key = 'server'")
    merged = os.path.join(case.dir, "label-m.db")
    manager("merge", "--db", merged, "a=" + label)
    out = os.path.join(case.dir, "plots")
    manager("plot", "--db", merged, "-o", out)
    for f in sorted(os.listdir(out)):
        if f.endswith(".svg"):
            ET.parse(os.path.join(out, f))  # raises if not XML
    with open(os.path.join(out, "latency-by-server.dat"), "rb") as f:
        T.true(b"?-]])-?" in f.read(), "the label made valid text")
    many = os.path.join(case.dir, "many.db")
    with sqlite3.connect(a) as src, sqlite3.connect(many) as dst:
        src.backup(dst)
    with sqlite3.connect(many) as c:
        conn = c.execute("SELECT * FROM conns LIMIT 1").fetchone()
        cols = len(conn)
        for i in range(45):  # 45 servers, one connection each, told apart by their address
            row = list(conn)
            row[0] = conn[0] + 1000 + i
            c.execute("INSERT INTO conns VALUES (%s)" % ",".join("?" * cols), row)
            c.execute("INSERT INTO servers VALUES ('127.0.0.1', ?, ?, NULL, 'epoll')", (40000 + i, "srv%02d" % i))
        c.execute("UPDATE conns SET peer_port = 40000 + id - ? WHERE id >= ?", (conn[0] + 1000, conn[0] + 1000))
    p = manager("plot", "--db", many, "-o", os.path.join(case.dir, "many"))
    T.true("the per-server plots show the first 40 by label" in p.stderr, "said: %r" % p.stderr)


@test
def a_database_is_not_merged_into_itself(case):
    """merge --db m.db x=m.db (also through another path to the same file)
    is refused at once with a line saying why, rather than waiting out the
    busy timeout on its own lock; the other databases named are merged."""
    good, _ = client_db(case, "a", 2, "server=s1")
    merged = os.path.join(case.dir, "m.db")
    manager("merge", "--db", merged, "a=" + good)
    for same in (merged, os.path.join(case.dir, ".", "m.db")):
        p = manager("merge", "--db", merged, "x=" + same, "a=" + good, check=False, timeout=30)
        T.eq(p.returncode, 1, "exit status")
        T.true("cannot be merged into itself" in p.stderr, "why: %r" % p.stderr)
        T.true("a: merged" in p.stdout, "the other one merged: %r" % p.stdout)


@test
def command_lines(case):
    for argv in (["--help"], ["pull", "--help"], ["plot", "--help"], ["report", "--help"]):
        p = manager(*argv)
        T.true("usage:" in p.stdout, "%s" % argv)
    for argv, what in ((["pull"], "no client hosts"), (["pull", "-j", "0", "a=b:/c"], "bad -j"),
                       (["plot", "--bogus"], "unknown option '--bogus'"), (["frob"], "unknown command"),
                       (["plot", "--x-tag", "a=b"], "bad tag key")):
        p = manager(*argv, check=False)
        T.true(p.returncode == 2 and what in p.stderr, "%s: %d %r" % (argv, p.returncode, p.stderr))
    p = manager("pull", os.path.join(case.dir, "no-inventory"), check=False)
    T.true(p.returncode == 1 and "no-inventory" in p.stderr, "missing inventory: %r" % p.stderr)
    p = manager("plot", "--db", os.path.join(case.dir, "none.db"), check=False)
    T.true(p.returncode == 1 and "none.db" in p.stderr, "missing database: %r" % p.stderr)


if __name__ == "__main__":
    T.main()
