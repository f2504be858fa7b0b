"""obstest — the small framework the tests of observe are written in.

Tests are plain functions decorated with @test; each gets a Case with its own
temporary directory.  Helpers start the real servers the tests need (the
lab's observe-httpd, udpping), run real clients with and without
libobserve.so preloaded, and read what was recorded through
`observe-slicer dump`.  Everything started is stopped by PID at the end.

Each test prints one line: "ok - NAME", "FAIL - NAME: why" or
"skip - NAME: why"; tests/run.sh adds them up.

Environment (set by tests/run.sh):
  OBS_BUILD     the build directory (default: build)
  OBS_SANITIZE  1: preload the ASan/UBSan build of the library (after libasan)
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, os.environ.get("OBS_BUILD", "build"))
SANITIZE = os.environ.get("OBS_SANITIZE") == "1"
LIB = os.path.join(BUILD, "asan" if SANITIZE else "", "libobserve.so")
SLICER = os.path.join(BUILD, "asan" if SANITIZE else "", "observe-slicer")
HTTPD = os.path.join(BUILD, "observe-httpd")
PROGS = os.path.join(BUILD, "tests")


def _preload():
    if not SANITIZE:
        return LIB
    asan = subprocess.run(["cc", "-print-file-name=libasan.so"], capture_output=True, text=True).stdout.strip()
    ubsan = subprocess.run(["cc", "-print-file-name=libubsan.so"], capture_output=True, text=True).stdout.strip()
    return " ".join([asan, ubsan, LIB])


PRELOAD = _preload()


class Skip(Exception):
    pass


class Case:
    def __init__(self, name):
        self.name = name
        self.dir = tempfile.mkdtemp(prefix="obs-%s-" % name)
        self.procs = []
        self.cleanups = []  # functions run after the processes are stopped, last first

    def logdir(self, name="logs"):
        d = os.path.join(self.dir, name)
        os.makedirs(d, mode=0o700, exist_ok=True)
        return d

    def spawn(self, argv, **kw):
        """Start a background process, stopped by PID when the test ends."""
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
        self.procs.append(p)
        return p

    def cleanup(self):
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        for fn in reversed(self.cleanups):
            try:
                fn()
            except Exception as e:  # a cleanup that fails must not hide the others
                print("cleanup of %s: %s" % (self.name, e), file=sys.stderr)
        shutil.rmtree(self.dir, ignore_errors=True)


def env_observed(logdir, extra=None):
    env = dict(os.environ)
    env["LD_PRELOAD"] = PRELOAD
    env["OBSERVE_DIR"] = logdir
    if SANITIZE:
        env["ASAN_OPTIONS"] = "detect_leaks=0:verify_asan_link_order=0:abort_on_error=0:exitcode=86"
        env["UBSAN_OPTIONS"] = "print_stacktrace=1:halt_on_error=1:exitcode=87"
    if extra:
        env.update(extra)
    return env


def run(argv, logdir=None, env=None, timeout=120, check=True, **kw):
    """Run a client to completion, observed if logdir is given."""
    e = env_observed(logdir, env) if logdir else dict(os.environ, **(env or {}))
    p = subprocess.run(argv, capture_output=True, text=True, env=e, timeout=timeout, **kw)
    if SANITIZE and logdir and ("AddressSanitizer" in p.stderr or "runtime error:" in p.stderr):
        raise AssertionError("sanitizer report from %s:\n%s" % (argv[0], p.stderr[-3000:]))
    if check and p.returncode != 0:
        raise AssertionError("%s exited %d: %s" % (" ".join(argv), p.returncode, p.stderr[-2000:]))
    return p


def tool(path, *args, check=True, timeout=300, extra_env=None, **kw):
    """Run one of our programs (observe-slicer, observe-manager) to completion;
    a sanitizer report from it is a failure, and so is a non-zero exit when
    check is set."""
    env = dict(os.environ, **(extra_env or {}))
    if SANITIZE:
        env["ASAN_OPTIONS"] = "detect_leaks=1:abort_on_error=0:exitcode=86"
        env["UBSAN_OPTIONS"] = "print_stacktrace=1:halt_on_error=1:exitcode=87"
    p = subprocess.run([path] + [str(a) for a in args], capture_output=True, text=True, timeout=timeout, env=env, **kw)
    name = os.path.basename(path)
    if "AddressSanitizer" in p.stderr or "LeakSanitizer" in p.stderr or "runtime error:" in p.stderr:
        raise AssertionError("sanitizer report from %s:\n%s" % (name, p.stderr[-3000:]))
    if check and p.returncode != 0:
        raise AssertionError("%s %s exited %d: %s" % (name, " ".join(map(str, args)), p.returncode, p.stderr[-3000:]))
    return p


def httpd(case, backend="epoll", size=1024, delay_ms=0, observed_dir=None):
    """Start the lab's HTTP server on a free loopback port; returns its port."""
    argv = [HTTPD, "--backend", backend, "--port", "0", "--size", str(size), "--delay-ms", str(delay_ms)]
    env = env_observed(observed_dir) if observed_dir else None
    p = case.spawn(argv, env=env)
    line = p.stdout.readline()
    m = re.search(r"listening on [\d.]+:(\d+) backend=(\w+)", line)
    if not m:
        raise AssertionError("observe-httpd did not start: %r %s" % (line, p.stderr.read() if p.poll() is not None else ""))
    if m.group(2) != backend:
        raise AssertionError("observe-httpd chose %s, not %s" % (m.group(2), backend))
    return int(m.group(1))


def udp_server(case, drop_every=0):
    argv = [os.path.join(PROGS, "udpping"), "server"] + (["--drop-every", str(drop_every)] if drop_every else [])
    p = case.spawn(argv)
    m = re.match(r"port=(\d+)", p.stdout.readline())
    if not m:
        raise AssertionError("udpping server did not start")
    return int(m.group(1))


def unanswering_listener(case):
    """A loopback port whose listener never answers: its accept queue is
    full, so further SYNs are dropped and a connect stays in progress until
    the client gives up.  Closed when the test ends."""
    import socket
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(0)
    fillers = []
    for _ in range(4):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", lst.getsockname()[1]))
        fillers.append(s)
    case.cleanups.append(lambda: [s.close() for s in fillers + [lst]])
    time.sleep(0.2)
    return lst.getsockname()[1]


def free_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# ---- the format's own definitions ---------------------------------------------

def _format_header():
    with open(os.path.join(ROOT, "common", "obs_format.h")) as f:
        return f.read()


def periods(kind):
    """The periods the format header defines for "CONN" or "XCHG" records:
    {name: (from, to)}, so that tests check every period from its one home."""
    block = re.search(r"#define OBS_%s_PERIODS\(X\)(.*?)\n\n" % kind, _format_header(), re.S).group(1)
    return {m[0]: (m[1], m[2]) for m in re.findall(r"X\((\w+),\s*(\w+),\s*(\w+),", block)}


def db_version():
    """The schema version this build writes (common/obs_db.h)."""
    with open(os.path.join(ROOT, "common", "obs_db.h")) as f:
        return int(re.search(r"#define OBS_DB_VERSION (\d+)", f.read()).group(1))


# ---- reading what was recorded ------------------------------------------------

_TOKEN = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\[[^\]]*\]|\S+)')


def _value(v):
    if v == "-":
        return None
    if v.startswith('"'):
        return v[1:-1]
    if re.fullmatch(r"-?\d+", v):
        return int(v)
    if re.fullmatch(r"0x[0-9a-f]+", v):
        return int(v, 16)
    if re.fullmatch(r"-?\d+\.\d+", v):
        return float(v)
    return v


class Log:
    def __init__(self, path, header, records, problems):
        self.path = path
        self.header = header
        self.records = records
        self.problems = problems

    def of(self, kind):
        return [r for r in self.records if r["kind"] == kind]


def read_log(path, slicer=None):
    p = subprocess.run([slicer or SLICER, "dump", path], capture_output=True, text=True)
    header, records = {}, []
    for line in p.stdout.splitlines():
        kind, _, rest = line.partition(" ")
        fields = {k: _value(v) for k, v in _TOKEN.findall(rest)}
        if kind in ("log", "counters"):
            header.update(fields)
        elif kind == "waits":
            header.setdefault("waits", {})[fields["mechanism"]] = fields
        else:
            fields["kind"] = kind
            records.append(fields)
    problems = [l for l in p.stderr.splitlines() if l.strip()]
    return Log(path, header, records, problems)


def read_logs(logdir):
    files = sorted(os.path.join(logdir, f) for f in os.listdir(logdir) if f.endswith(".olog"))
    return [read_log(f) for f in files]


def records(logdir, kind):
    out = []
    for log in read_logs(logdir):
        if log.problems:
            raise AssertionError("problems reading %s: %s" % (log.path, log.problems))
        out.extend(log.of(kind))
    return out


# ---- checks --------------------------------------------------------------------

def eq(got, want, what=""):
    if got != want:
        raise AssertionError("%s: got %r, want %r" % (what, got, want))


def near(got, want, tol, what=""):
    if got is None or abs(got - want) > tol:
        raise AssertionError("%s: got %r, want %r within %r" % (what, got, want, tol))


def true(cond, what):
    if not cond:
        raise AssertionError(what)


def every(items, pred, what):
    """pred holds for each of items, and there is at least one: all() of
    nothing would pass a test whose feature made no records at all."""
    items = list(items)
    if not items:
        raise AssertionError(what + ": nothing to check")
    bad = [x for x in items if not pred(x)]
    if bad:
        raise AssertionError("%s: %d of %d not so, the first: %r" % (what, len(bad), len(items), bad[0]))


def need(prog):
    if not shutil.which(prog):
        raise Skip("%s is not installed" % prog)


def runs_under_bare_asan(argv):
    """Some programs cannot run with libasan preloaded at all (curl hangs in
    setlocale): in the sanitizer pass, find out without our library."""
    if not SANITIZE:
        return
    env = dict(os.environ, LD_PRELOAD=PRELOAD.split()[0],
               ASAN_OPTIONS="detect_leaks=0:verify_asan_link_order=0")
    try:
        subprocess.run(argv, env=env, capture_output=True, timeout=5)
    except subprocess.TimeoutExpired:
        raise Skip("%s hangs with libasan preloaded even without libobserve" % argv[0])


def need_root():
    if os.geteuid() != 0:
        raise Skip("needs root")


# ---- running ----------------------------------------------------------------------

_TESTS = []


def test(fn):
    _TESTS.append(fn)
    return fn


def main():
    only = sys.argv[1:]
    prefix = "asan:" if SANITIZE else ""
    failed = 0
    for fn in _TESTS:
        if only and fn.__name__ not in only:
            continue
        case = Case(fn.__name__)
        name = prefix + os.path.basename(sys.argv[0]).replace(".py", "") + "." + fn.__name__
        t0 = time.time()
        try:
            fn(case)
            print("ok - %s (%.1fs)" % (name, time.time() - t0), flush=True)
        except Skip as e:
            print("skip - %s: %s" % (name, e), flush=True)
        except Exception as e:
            failed += 1
            detail = str(e) if isinstance(e, AssertionError) else traceback.format_exc()
            print("FAIL - %s: %s" % (name, detail.strip().replace("\n", "\n    ")), flush=True)
        finally:
            case.cleanup()
    sys.exit(1 if failed else 0)
