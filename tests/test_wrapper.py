#!/usr/bin/env python3
"""`observe run` and the library's configuration: clear errors, the client
always runs, and a log directory the library must not trust is refused."""
import os
import shutil
import signal
import subprocess
import sys
import tempfile

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
def programs_it_cannot_see_are_named(case):
    """observe run names a Go program (hey: dynamically linked, yet it makes
    its own system calls) and a static one before they start, runs them
    unharmed, and says after the run that they left no log; a program it
    does see gets no such word, and -q silences all of it."""
    port = T.httpd(case, size=100)
    d = case.logdir()
    cases = [([os.path.join(T.PROGS, "netclient-static"), "--port", str(port)], "is statically linked")]
    if shutil.which("hey"):
        cases.append((["hey", "-n", "3", "-c", "1", "http://127.0.0.1:%d/" % port], "is a Go program"))
    for argv, what in cases:
        plain = T.run(argv, check=False)
        p = _observe(["run", "-d", d, "--"] + argv)
        T.eq(p.returncode, plain.returncode, "%s: exit status" % argv[0])
        T.true(what in p.stderr, "%s: named before the start: %r" % (argv[0], p.stderr))
        T.true("left no log in %s" % d in p.stderr, "%s: no log, said after the run: %r" % (argv[0], p.stderr))
        T.eq(_observe(["run", "-q", "-d", d, "--"] + argv).stderr, "", "-q: not a word")
    T.eq(os.listdir(d), [], "no log")
    p = _observe(["run", "-d", d, "--", NETCLIENT, "--port", str(port)])
    T.eq((p.returncode, p.stderr), (0, ""), "an observed program: no word")
    p = _observe(["run", "-d", d, "--", "sh", "-c", "exit 7"])
    T.eq(p.returncode, 7, "the program's exit status")
    p = _observe(["run", "-d", d, "--", "sh", "-c", "kill -TERM $$"])
    T.eq(p.returncode, -signal.SIGTERM, "a program killed by a signal: so is the wrapper")
    p = subprocess.run([OBSERVE, "run", "-d", d, "--", "cat"], input="stdin reaches the program\n",
                       capture_output=True, text=True)
    T.eq(p.stdout, "stdin reaches the program\n", "standard input")
    if not shutil.which("hey"):
        raise T.Skip("hey (a Go program, a Debian package) is not installed: the static case alone was run")


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
    # at least: the connect's wait, and a writable and a readable wait per request
    T.true(len(waits) >= 7, "a record for each of the client's poll calls: %d" % len(waits))
    T.eq(len(waits), log.header["waits"]["poll"]["calls"], "one record per poll call")
    T.every(waits, lambda w: w["t_exit"] >= w["t_enter"], "each wait's times in order")
    T.every(waits, lambda w: w["mechanism"] == "poll" and w["interest"] == 1, "mechanism and interest set")


@test
def directory_owned_by_someone_else_is_refused(case):
    T.need_root()
    port = T.httpd(case, size=100)
    d = case.logdir("theirs")
    os.chown(d, 65534, 65534)
    p = _observe(["run", "-d", d, "--", NETCLIENT, "--port", str(port)])
    T.eq(p.returncode, 0, "client exit status")
    T.true("owned by uid 65534, not by us" in p.stderr and "not observed" in p.stderr, "said: %r" % p.stderr)
    T.eq(os.listdir(d), [], "nothing written there")


@test
def a_setuid_process_ignores_the_environment(case):
    """ld.so drops LD_PRELOAD paths in a setuid process; the library loaded
    there anyway (dlopen, tests/progs/dlobserve) must ignore OBSERVE_DIR and
    the rest and record nothing.  The control: the same program as the same
    user, without setuid, does write its log there."""
    T.need_root()
    port = T.httpd(case, size=100)
    d = tempfile.mkdtemp(prefix="obs-setuid-")  # every level traversable by nobody
    case.cleanups.append(lambda: shutil.rmtree(d, ignore_errors=True))
    os.chmod(d, 0o755)
    prog, lib, logs = os.path.join(d, "dlobserve"), os.path.join(d, "libobserve.so"), os.path.join(d, "logs")
    shutil.copy(os.path.join(T.PROGS, "dlobserve"), prog)
    shutil.copy(os.path.join(T.BUILD, "libobserve.so"), lib)
    os.mkdir(logs, 0o700)
    os.chown(logs, 65534, 65534)
    env = dict(os.environ, OBSERVE_DIR=logs, OBSERVE_TAGS="who=nobody")
    control = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", prog, lib, str(port)],
                             capture_output=True, text=True, env=env, timeout=60)
    T.eq((control.returncode, control.stdout.split()[0]), (0, "at_secure=0"), "control run: %r" % control.stderr)
    T.eq(len(os.listdir(logs)), 1, "the control run, not setuid, writes its log to OBSERVE_DIR")
    os.chown(prog, 65534, 65534)
    os.chmod(prog, 0o4755)
    default = "/tmp/observe-65534"
    before = sorted(os.listdir(default)) if os.path.isdir(default) else None
    p = subprocess.run([prog, lib, str(port)], capture_output=True, text=True, env=env, timeout=60)
    T.eq(p.returncode, 0, "the setuid program runs: %r" % p.stderr)
    if p.stdout.split()[0] != "at_secure=1":
        raise T.Skip("the setuid bit is ignored here (a nosuid mount?): %s" % p.stdout.strip())
    T.true(p.stdout.split()[1] == control.stdout.split()[1], "the same work done: %s" % p.stdout)
    T.eq(p.stderr, "", "nothing said: the environment is not even read")
    T.eq(len(os.listdir(logs)), 1, "no log written to OBSERVE_DIR")
    after = sorted(os.listdir(default)) if os.path.isdir(default) else None
    T.eq(after, before, "nor to the default directory")


@test
def a_planted_symlink_for_the_log_directory_is_refused(case):
    """In a sticky shared directory (as /tmp is for the default
    /tmp/observe-UID), someone else plants a symbolic link where our log
    directory would be, pointing at a directory of ours: refused, said once,
    nothing written there.  The same link made by us is followed."""
    T.need_root()
    port = T.httpd(case, size=100)
    shared = case.logdir("shared")
    os.chmod(shared, 0o1777)
    target = case.logdir("target")
    planted = os.path.join(shared, "observe-0")
    os.symlink(target, planted)
    os.lchown(planted, 65534, 65534)
    p = _observe(["run", "-d", planted, "--", NETCLIENT, "--port", str(port)])
    T.eq(p.returncode, 0, "client exit status")
    T.true("symbolic link owned by uid 65534" in p.stderr and "not observed" in p.stderr, "said: %r" % p.stderr)
    T.eq(p.stderr.count("libobserve:"), 1, "said once")
    T.eq(os.listdir(target), [], "nothing written through the planted link")
    os.lchown(planted, 0, 0)
    p = _observe(["run", "-d", planted, "--", NETCLIENT, "--port", str(port)])
    T.eq((p.returncode, p.stderr), (0, ""), "our own link is followed")
    T.eq(len(os.listdir(target)), 1, "the log, in the directory our link names")


SWAPPER = r"""
import socket, sys
port = int(sys.argv[1])
def one():
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        while s.recv(65536):
            pass
for _ in range(20):
    one()
print("swap now", flush=True)
sys.stdin.readline()
for _ in range(400):
    one()
print("done", flush=True)
"""


@test
def a_log_swapped_for_a_symlink_is_never_written_through(case):
    """Someone replaces the log by a symlink to another file while the client
    runs: when the log must grow, the library reopens it by path without
    following links, sees it is not its file any more, and drops (and counts)
    records instead of writing anywhere else.  The client never notices."""
    port = T.httpd(case, size=100)
    logs = case.logdir()
    victim = os.path.join(case.dir, "victim")
    with open(victim, "wb") as f:
        f.write(b"precious\n")
    script = os.path.join(case.dir, "swapper.py")
    with open(script, "w") as f:
        f.write(SWAPPER)
    p = subprocess.Popen([sys.executable, script, str(port)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=T.env_observed(logs))
    case.procs.append(p)
    T.eq(p.stdout.readline().strip(), "swap now", "first connections made")
    (name,) = [n for n in os.listdir(logs) if n.endswith(".olog")]
    log, aside = os.path.join(logs, name), os.path.join(case.dir, "aside.olog")
    os.rename(log, aside)
    os.symlink(victim, log)
    p.stdin.write("go\n")
    p.stdin.flush()
    T.eq(p.stdout.readline().strip(), "done", "the client went on")
    p.wait(timeout=30)
    T.eq(p.returncode, 0, "client exit status")
    with open(victim, "rb") as f:
        T.eq(f.read(), b"precious\n", "nothing written through the symlink")
    got = T.read_log(aside)
    T.eq(got.problems, [], "the real log reads cleanly")
    T.true(got.header["dropped"] > 0, "records that had no room are counted: %r" % got.header.get("dropped"))
    T.true(len(got.of("conn")) >= 20, "the records written before are all there")


@test
def a_full_log_drops_and_counts_and_still_reads_cleanly(case):
    port = T.httpd(case, size=100)
    logs = case.logdir()
    p = T.run([NETCLIENT, "--port", str(port), "--conns", "4000"], logdir=logs,
              env={"OBSERVE_MAX_MB": "1", "OBSERVE_QUIET": "1"})
    T.true("conns=4000 failed=0" in p.stdout, "the client did all its work")
    (log,) = T.read_logs(logs)
    T.eq(log.problems, [], "a full log is not a damaged one")
    conns = len(log.of("conn"))
    T.true(1000 < conns < 4000, "as many connections as fit in 1 MiB (%d)" % conns)
    T.true(log.header["dropped"] >= 4000 - conns, "every record that did not fit is counted: %r" % log.header["dropped"])
    T.true(log.header["reserved"] <= 1 << 20, "the header claims no more than it holds")


@test
def a_full_log_is_said_once_by_the_library_by_load_and_by_summary(case):
    port = T.httpd(case, size=100)
    logs = case.logdir()
    p = T.run([NETCLIENT, "--port", str(port), "--conns", "4000"], logdir=logs, env={"OBSERVE_MAX_MB": "1"})
    said = [l for l in p.stderr.splitlines() if l.startswith("libobserve:")]
    T.eq(len(said), 1, "the library says it once: %r" % said)
    T.true("cannot grow (OBSERVE_MAX_MB=1," in said[0] and "dropped and counted" in said[0], said[0])
    (name,) = os.listdir(logs)
    db = os.path.join(case.dir, "o.db")
    load = T.tool(T.SLICER, "load", "-o", db, logs)
    T.true(name in load.stderr and "the library dropped" in load.stderr and "incomplete" in load.stderr,
           "load names the log that lost records: %r" % load.stderr)
    T.true("1 logs incomplete" in load.stdout, load.stdout)
    summary = T.tool(T.SLICER, "summary", db)
    T.true("incomplete: 1 process dropped" in summary.stderr, "summary says so: %r" % summary.stderr)
    empty = case.logdir("empty")
    p = T.tool(T.SLICER, "load", "-o", db, empty)
    T.true("no logs (*.olog) there" in p.stderr and empty in p.stderr, "an empty directory is said: %r" % p.stderr)


def _under_strace(logs, strace_args, argv):
    """argv, observed in logs, under strace with the given -e options
    (strace itself unobserved: the variables go to the program through env)."""
    observed = ["%s=%s" % (k, v) for k, v in T.env_observed(logs).items() if os.environ.get(k) != v]
    return subprocess.run(["strace", "-f", "-qq", "-o", "/dev/null"] + strace_args + ["env"] + observed + argv,
                          capture_output=True, text=True, timeout=60)


@test
def a_log_appears_only_once_its_header_is_written(case):
    """A process killed while its log is being created leaves no file, never
    an empty or headerless one (the log is made unnamed and linked into the
    directory once its header is written): SIGKILL injected by strace as the
    file is sized and as it is about to be named.  Where it cannot be linked
    (linkat failing, injected) the log is created under its name at once
    and records as always."""
    T.need("strace")
    port = T.httpd(case, size=100)
    for call in ("fallocate", "linkat"):
        logs = case.logdir(call)
        p = _under_strace(logs, ["-e", "trace=" + call, "-e", "inject=%s:signal=KILL" % call],
                          [NETCLIENT, "--port", str(port)])
        T.eq(p.returncode, -9, "killed in %s: %s" % (call, p.stderr))
        T.eq(os.listdir(logs), [], "killed in %s: no file left" % call)
    logs = case.logdir("nolink")
    p = _under_strace(logs, ["-e", "trace=linkat", "-e", "inject=linkat:error=ENOENT"],
                      [NETCLIENT, "--port", str(port)])
    T.eq(p.returncode, 0, "the client ran: " + p.stderr)
    (log,) = T.read_logs(logs)
    T.eq((log.problems, len(log.of("conn"))), ([], 1), "the log, created under its name, holds the connection")


@test
def a_signal_during_the_logs_creation_is_held_until_it_is_made(case):
    """A signal handler that siglongjmp()s out of the process's first
    socket(), raised while the library creates the log (SIGUSR1 raised by
    strace at its fallocate): the creation runs with signals blocked, so the
    handler runs once the log is made, and the jump leaves nothing half
    done: another thread's connection is recorded in that log, nothing is
    said, no thread waits."""
    T.need("strace")
    logs = case.logdir()
    p = _under_strace(logs, ["-e", "trace=fallocate", "-e", "inject=fallocate:signal=USR1:when=1"],
                      [os.path.join(T.PROGS, "sigjump"), "create"])
    T.eq(p.returncode, 0, "sigjump ran to the end (-14: the watchdog, a thread waited forever): %s" % p.stderr)
    T.eq(p.stdout.strip(), "jumped=1 thread_connected=1", "the handler jumped, the thread connected")
    T.eq(p.stderr.count("libobserve:"), 0, "nothing said: %r" % p.stderr)
    (log,) = T.read_logs(logs)
    T.eq(log.problems, [], "the log reads whole")
    T.eq(len(log.of("conn")), 2, "the thread's connection, both its ends, is in it")


@test
def the_library_builds_for_arm64(case):
    """The TSC fast clock is x86's: elsewhere the library is built without it
    (every timestamp a clock_gettime) and without the system calls newer
    ports lack (dup2, poll, epoll_wait).  Built with Debian's cross compiler,
    it is an AArch64 shared object that exports the calls it interposes."""
    T.need("aarch64-linux-gnu-gcc")
    lib = os.path.join(T.BUILD, "arm64", "libobserve.so")
    subprocess.run(["make", "-s", "-C", T.ROOT, "B=" + T.BUILD, lib], check=True, capture_output=True)
    head = subprocess.run(["readelf", "-h", lib], capture_output=True, text=True, check=True).stdout
    T.true("AArch64" in head, "the machine: %r" % head)
    syms = subprocess.run(["readelf", "--dyn-syms", "-W", lib], capture_output=True, text=True, check=True).stdout
    exported = {l.split()[-1].split("@")[0] for l in syms.splitlines() if " FUNC " in l and " GLOBAL " in l and " UND " not in l}
    for name in ("socket", "connect", "send", "recv", "close", "select", "poll", "epoll_wait", "syscall", "clone"):
        T.true(name in exported, "%s is exported" % name)


@test
def the_librarys_parts_call_only_the_parts_below_them(case):
    """preload/ is layered as obs.h says: wrap, init, track, log, clock,
    libc, each calling only those below it, so the log and the clock are
    leaves and nothing calls back into initialisation.  Each file is
    compiled alone and its undefined obs_* symbols must be defined in a
    file below it."""
    order = ["wrap", "init", "track", "log", "clock", "libc"]
    defined, needed = {}, {}
    for part in order:
        obj = os.path.join(case.dir, part + ".o")
        src = os.path.join(T.ROOT, "preload", "obs_%s.c" % part)
        subprocess.run(["cc", "-std=gnu11", "-O2", "-fPIC", "-fvisibility=hidden", "-c", "-o", obj, src], check=True)
        syms = subprocess.run(["nm", obj], capture_output=True, text=True, check=True).stdout.split("\n")
        for line in syms:
            f = line.split()
            if len(f) == 3 and f[2].startswith("obs_") and f[1] in "TDBRV":
                defined[f[2]] = part
            elif len(f) == 2 and f[0] == "U" and f[1].startswith("obs_"):
                needed.setdefault(part, set()).add(f[1])
    for part, syms in needed.items():
        for sym in sorted(syms):
            home = defined.get(sym)
            T.true(home is not None, "%s (used by obs_%s.c) is defined in preload/" % (sym, part))
            T.true(order.index(home) > order.index(part), "obs_%s.c calls %s of obs_%s.c, not below it" % (part, sym, home))


if __name__ == "__main__":
    T.main()
