#!/usr/bin/env python3
"""`observe run` and the library's configuration: clear errors, the client
always runs, and a log directory the library must not trust is refused."""
import os
import subprocess

import obstest as T
from obstest import test

OBSERVE = os.path.join(T.BUILD, "observe")
NETCLIENT = os.path.join(T.PROGS, "netclient")


def _observe(args, **kw):
    env = dict(os.environ)
    env.pop("OBSERVE_DIR", None)
    env.pop("OBSERVE_TAGS", None)
    env.update(kw.pop("env", {}))
    return subprocess.run([OBSERVE] + args, capture_output=True, text=True, env=env, timeout=60, **kw)


@test
def help_and_usage_errors(case):
    p = _observe(["--help"])
    T.true(p.returncode == 0 and "usage: observe run" in p.stdout, "--help")
    p = _observe(["run", "--help"])
    T.true(p.returncode == 0 and "OBSERVE_TAGS" in p.stdout, "run --help documents the environment")
    for args, want in ((["run", "-t", "no-equals", "--", "true"], "bad tag"),
                       (["run", "-t", "a=b,c", "--", "true"], "bad tag"),
                       (["run", "-x", "--", "true"], "unknown option '-x'"),
                       (["run"], "no program"),
                       (["frobnicate"], "unknown command")):
        p = _observe(args)
        T.eq(p.returncode, 2, "exit status for %s" % args)
        T.true(want in p.stderr, "%s: %r" % (args, p.stderr))


@test
def run_tags_and_directory(case):
    port = T.httpd(case, size=100)
    d = os.path.join(case.dir, "new", "logs")
    p = _observe(["run", "-d", d, "-t", "run=7", "-t", "server=epoll-vm", "--", NETCLIENT, "--port", str(port)])
    T.eq(p.returncode, 0, "client exit status")
    (log,) = T.read_logs(d)
    T.eq(log.header["tags"], "run=7,server=epoll-vm", "tags recorded")
    T.eq(log.header["exe"], NETCLIENT, "executable recorded")
    T.eq(len(log.of("conn")), 1, "the connection")
    T.eq(oct(os.stat(d).st_mode & 0o777), "0o700", "directory created owner-only")


@test
def untrusted_directory_is_refused_and_client_still_runs(case):
    port = T.httpd(case, size=100)
    d = case.logdir("open")
    os.chmod(d, 0o777)
    p = _observe(["run", "-d", d, "--", NETCLIENT, "--port", str(port)])
    T.eq(p.returncode, 0, "client exit status")
    T.true("conns=1" in p.stdout, "client did its work")
    T.true("writable by others without the sticky bit" in p.stderr and "not observed" in p.stderr,
           "one clear message: %r" % p.stderr)
    T.eq(p.stderr.count("libobserve:"), 1, "said once")
    T.eq(os.listdir(d), [], "nothing written there")
    os.chmod(d, 0o1777)
    p = _observe(["run", "-d", d, "--", NETCLIENT, "--port", str(port)])
    T.eq(len([f for f in os.listdir(d) if f.endswith(".olog")]), 1, "sticky shared directory is accepted")


@test
def invalid_environment_runs_unobserved(case):
    port = T.httpd(case, size=100)
    d = case.logdir()
    for var, val, want in (("OBSERVE_TAGS", "=oops", "invalid OBSERVE_TAGS"),
                           ("OBSERVE_WAITS", "sometimes", "invalid OBSERVE_WAITS"),
                           ("OBSERVE_MAX_MB", "0", "invalid OBSERVE_MAX_MB")):
        p = T.run([NETCLIENT, "--port", str(port)], logdir=d, env={var: val}, check=False)
        T.eq(p.returncode, 0, "client exit status with bad %s" % var)
        T.true(want in p.stderr, "%s: %r" % (var, p.stderr))
    T.eq(os.listdir(d), [], "nothing recorded under a bad configuration")
    p = T.run([NETCLIENT, "--port", str(port)], logdir=d, env={"OBSERVE_DISABLE": "1"})
    T.eq(os.listdir(d), [], "OBSERVE_DISABLE=1 records nothing")


@test
def every_wait_when_asked(case):
    port = T.httpd(case, size=100)
    d = case.logdir()
    T.run([NETCLIENT, "--port", str(port), "--mode", "poll", "--requests", "3"], logdir=d,
          env={"OBSERVE_WAITS": "all"})
    (log,) = T.read_logs(d)
    waits = log.of("wait")
    T.eq(len(waits), log.header["waits"]["poll"]["calls"], "one record per poll call")
    T.true(all(w["mechanism"] == "poll" and w["interest"] == 1 for w in waits), "mechanism and interest set")


if __name__ == "__main__":
    T.main()
