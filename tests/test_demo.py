#!/usr/bin/env python3
"""The quick demo end to end (lab/demo.sh --quick): server hosts in network
namespaces (or loopback without root), the five experiments, the client
host's database pulled over ssh by the manager, plots, report and findings.
The merged database has rows for every server host and load point, every
plot exists, nothing is left running and no namespace is left behind."""
import os
import shutil
import signal
import sqlite3
import subprocess
import time

import obstest as T
from obstest import test

LAB_PROGRAMS = ("observe-httpd", "observe-udpd", "observe-idle", "observe-udpc", "httperf", "sshd")


def lab_processes(mark):
    """PIDs of lab programs, and of anything whose command line names mark."""
    out = subprocess.run(["ps", "-eo", "pid=,args="], capture_output=True, text=True).stdout
    found = set()
    for line in out.splitlines():
        pid, _, args = line.strip().partition(" ")
        if mark in args or any(os.path.basename(args.split(" ")[0]) == p for p in LAB_PROGRAMS):
            found.add((int(pid), args))
    return found


def namespaces():
    p = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True)
    return [l.split()[0] for l in p.stdout.splitlines() if l.startswith("obslab")]


@test
def quick_demo_end_to_end(case):
    for tool in ("httperf", "ab", "gnuplot", "sqlite3"):
        T.need(tool)
    out = os.path.join(case.dir, "demo")
    before = lab_processes(out)
    ns_before = namespaces() if os.geteuid() == 0 else []
    p = subprocess.run([os.path.join(T.ROOT, "lab", "demo.sh"), "--quick", "--out", out], capture_output=True,
                       text=True, timeout=600)
    T.eq(p.returncode, 0, "demo exit status; stderr: %s" % p.stderr[-3000:])
    report = os.path.join(out, "report", "report.html")
    T.true(p.stdout.strip().endswith("report: " + report), "the report's path comes last: %r" % p.stdout[-300:])
    if os.geteuid() == 0:
        T.true("pulling the client hosts' databases over ssh" in p.stderr, "pulled over ssh")
        T.true("client-1: merged" in p.stdout, "the manager merged the client host: %r" % p.stdout[-2000:])
    else:
        T.true("not root: every host on loopback" in p.stderr, "says it fell back to loopback")
    db = os.path.join(out, "observe.db")
    with sqlite3.connect(db) as c:
        def points(view, exp, key):
            return set(c.execute(
                "SELECT mechanism, (SELECT value FROM tags t WHERE t.run = v.run AND t.key = ?) FROM %s v "
                "WHERE run IN (SELECT run FROM tags WHERE key = 'exp' AND value = ?) AND %s" %
                (view, "answered" if view == "datagram_phases" else "side = 'client' AND t4_ms IS NOT NULL"),
                (key, exp)).fetchall())
        mechs = ("select", "poll", "epoll")
        T.eq(points("phases", "rate", "rate"), {(m, r) for m in mechs for r in ("100", "300")}, "rate sweep points")
        T.eq(points("phases", "idle", "idle"), {(m, n) for m in mechs for n in ("0", "400")}, "idle sweep points")
        T.eq(points("datagram_phases", "udp", "ports"), {(m, n) for m in mechs for n in ("1", "300")}, "UDP points")
        T.true(c.execute("SELECT count(*) FROM phases WHERE side = 'server'").fetchone()[0] >= 40,
               "the server's own view was loaded")
        T.eq(c.execute("SELECT DISTINCT client_host FROM phases WHERE side = 'client'").fetchall(), [("client-1",)],
             "the client host's name")
    for name in ("latency-by-server", "phases", "t7-cdf", "latency-vs-rate", "latency-vs-idle", "udp-vs-ports",
                 "reply-rate"):
        for ext in ("png", "svg"):
            path = os.path.join(out, "report", "%s.%s" % (name, ext))
            T.true(os.path.getsize(path) > 1000, "%s exists" % path)
    with open(report) as f:
        html = f.read()
    T.true("<h2>Findings</h2>" in html and "Idle connections" in html, "findings in the report")
    with open(os.path.join(out, "findings.txt")) as f:
        findings = f.read()
    for what in ("Idle connections", "Request rate sweep", "UDP server ports", "Overhead", "Client's view"):
        T.true(what in findings, "finding: " + what)
    left = lab_processes(out) - before
    T.eq(left, set(), "nothing the demo started is left running")
    if os.geteuid() == 0:
        T.eq(namespaces(), ns_before, "no namespace left behind")


@test
def quick_demo_without_root_falls_back_to_loopback(case):
    """As an ordinary user: no namespaces, every host on loopback, the
    databases merged locally; it says so and still writes the report."""
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        raise T.Skip("needs root to become an ordinary user (the test above runs without root already)")
    for tool in ("httperf", "ab", "gnuplot", "sqlite3"):
        T.need(tool)
    os.chmod(case.dir, 0o777)
    out = os.path.join(case.dir, "demo")
    before = lab_processes(out)
    p = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                        os.path.join(T.ROOT, "lab", "demo.sh"), "--quick", "--out", out],
                       capture_output=True, text=True, timeout=600, cwd=case.dir)
    T.eq(p.returncode, 0, "demo exit status; stderr: %s" % p.stderr[-3000:])
    T.true("not root: every host on loopback" in p.stderr, "says it fell back: %r" % p.stderr[:500])
    T.true("client-1: merged" in p.stdout, "merged locally: %r" % p.stdout[-1500:])
    with sqlite3.connect(os.path.join(out, "observe.db")) as c:
        T.eq(c.execute("SELECT count(DISTINCT mechanism) FROM phases WHERE side = 'client'").fetchone(), (3,),
             "all three servers measured")
    T.true(os.path.getsize(os.path.join(out, "report", "report.html")) > 1000, "the report")
    T.eq(lab_processes(out) - before, set(), "nothing the demo started is left running")


@test
def interrupted_demo_leaves_nothing_behind(case):
    """Ctrl-C in the middle of the experiments: everything is stopped and
    every namespace removed."""
    T.need_root()
    T.need("httperf")
    out = os.path.join(case.dir, "demo")
    before, ns_before = lab_processes(out), namespaces()
    p = subprocess.Popen([os.path.join(T.ROOT, "lab", "demo.sh"), "--quick", "--out", out], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, start_new_session=True)
    seen = ""
    deadline = time.time() + 120
    while "2. idle connections" not in seen and time.time() < deadline and p.poll() is None:
        seen += p.stderr.readline()
    T.true("2. idle connections" in seen, "the demo got going: %r" % seen)
    time.sleep(0.5)
    os.killpg(p.pid, signal.SIGINT)  # what Ctrl-C does to the terminal's foreground group
    rest, err = p.communicate(timeout=120)
    T.eq(p.returncode, 130, "exit status after Ctrl-C: %s" % err[-1000:])
    T.eq(lab_processes(out) - before, set(), "nothing left running")
    T.eq(namespaces(), ns_before, "no namespace left behind")


if __name__ == "__main__":
    T.main()
