#!/usr/bin/env python3
"""What a user installs and looks up: make install and uninstall under any
PREFIX and DESTDIR, the Debian package (installed, used and removed), the
man pages against every --help, --version, and usage errors of one line
and a synopsis."""
import os
import re
import shutil
import subprocess

import obstest as T
from obstest import test

TOOLS = {"observe": [[], ["run"]],
         "observe-slicer": [[], ["load"], ["summary"], ["export"], ["snapshot"], ["dump"]],
         "observe-manager": [[], ["pull"], ["merge"], ["plot"], ["report"]]}
MAN = {"observe": "observe.1", "observe-slicer": "observe-slicer.1", "observe-manager": "observe-manager.1"}
NETCLIENT = os.path.join(T.PROGS, "netclient")


def make(*args):
    return subprocess.run(["make", "-s", "-C", T.ROOT, "B=" + T.BUILD] + list(args), capture_output=True, text=True,
                          check=True, timeout=600)


def files_under(root):
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs)


def observed_run(observe, case, name):
    """Runs netclient under an installed observe: the log it leaves."""
    port = T.httpd(case, size=100)
    logs = case.logdir(name)
    p = subprocess.run([observe, "run", "-d", logs, "--", NETCLIENT, "--port", str(port)], capture_output=True,
                       text=True, timeout=60)
    T.eq(p.returncode, 0, "%s ran the program: %r" % (observe, p.stderr))
    T.true("unobserved" not in p.stderr and "left no log" not in p.stderr, "observed: %r" % p.stderr)
    (log,) = T.read_logs(logs)
    T.eq(len(log.of("conn")), 1, "its connection recorded")


@test
def install_works_under_any_prefix_and_uninstall_removes_it(case):
    """The build's default PREFIX is /usr/local; installed elsewhere, the
    wrapper still finds its library (beside itself, PREFIX/lib/observe).
    With DESTDIR every file lands under it, and uninstall removes them all."""
    want = ["bin/observe", "bin/observe-manager", "bin/observe-slicer", "lib/observe/libobserve.so",
            "share/man/man1/observe-manager.1", "share/man/man1/observe-slicer.1", "share/man/man1/observe.1",
            "share/man/man5/observe-db.5", "share/man/man7/libobserve.7"]
    for prefix in (os.path.join(case.dir, "opt"), os.path.join(case.dir, "usr", "local2")):
        make("install", "PREFIX=" + prefix)
        T.eq(files_under(prefix), want, "installed under %s" % prefix)
        observed_run(os.path.join(prefix, "bin", "observe"), case, "logs-" + os.path.basename(prefix))
        p = subprocess.run([os.path.join(prefix, "bin", "observe-slicer"), "--version"], capture_output=True, text=True)
        T.true(p.returncode == 0 and p.stdout.startswith("observe-slicer "), "installed slicer runs: %r" % p.stdout)
        make("uninstall", "PREFIX=" + prefix)
        T.eq(files_under(prefix), [], "uninstalled from %s" % prefix)
    stage = os.path.join(case.dir, "stage")
    make("install", "PREFIX=/opt/observe", "DESTDIR=" + stage)
    T.eq(files_under(os.path.join(stage, "opt", "observe")), want, "DESTDIR holds the install")
    T.eq(files_under(stage), ["opt/observe/" + f for f in want], "nothing outside DESTDIR/PREFIX")
    with open(os.path.join(stage, "opt", "observe", "bin", "observe")) as f:
        T.true("/opt/observe/lib/observe/libobserve.so" in f.read(), "the wrapper names the installed library")
    make("uninstall", "PREFIX=/opt/observe", "DESTDIR=" + stage)
    T.eq(files_under(stage), [], "uninstalled from DESTDIR")


@test
def the_debian_package_installs_runs_and_is_removed(case):
    T.need_root()
    T.need("dpkg-deb")
    T.need("curl")
    if subprocess.run(["dpkg", "-s", "observe"], capture_output=True).returncode == 0:
        raise T.Skip("a package named observe is already installed here")
    deb = make("deb").stdout.strip().splitlines()[-1]
    info = subprocess.run(["dpkg-deb", "-f", deb, "Package", "Depends"], capture_output=True, text=True, check=True)
    T.true("libsqlite3-0" in info.stdout, "its dependencies declared: %r" % info.stdout)
    p = subprocess.run(["dpkg", "-i", deb], capture_output=True, text=True, timeout=300)
    try:
        T.eq(p.returncode, 0, "dpkg -i: %r" % p.stderr)
        port = T.httpd(case, size=100)
        logs = case.logdir("deb")
        p = subprocess.run(["/usr/bin/observe", "run", "-d", logs, "--", "curl", "-s", "-o", "/dev/null",
                            "http://127.0.0.1:%d/" % port], capture_output=True, text=True, timeout=60)
        T.eq(p.returncode, 0, "curl under the installed observe: %r" % p.stderr)
        (log,) = T.read_logs(logs)
        T.eq(len(log.of("conn")), 1, "curl's connection recorded by the installed library")
        db = os.path.join(case.dir, "deb.db")
        subprocess.run(["/usr/bin/observe-slicer", "load", "-q", "-o", db, logs], check=True, timeout=60)
        if shutil.which("man"):
            for page in ("observe", "observe-slicer", "observe-manager", "libobserve", "observe-db"):
                w = subprocess.run(["man", "-w", page], capture_output=True, text=True)
                T.true(w.returncode == 0 and w.stdout.startswith("/usr/share/man/"), "man %s: %r" % (page, w.stdout))
    finally:
        r = subprocess.run(["dpkg", "-r", "observe"], capture_output=True, text=True, timeout=300)
    T.eq(r.returncode, 0, "dpkg -r: %r" % r.stderr)
    for f in ("/usr/bin/observe", "/usr/lib/observe/libobserve.so", "/usr/share/man/man1/observe.1.gz"):
        T.true(not os.path.exists(f), "%s removed" % f)


OPTION = re.compile(r"(?<![\w-])(--?[a-zA-Z][a-zA-Z0-9-]*)")


def help_options(tool):
    seen = set()
    for sub in TOOLS[tool]:
        p = subprocess.run([os.path.join(T.BUILD, tool)] + sub + ["--help"], capture_output=True, text=True)
        T.eq(p.returncode, 0, "%s %s --help" % (tool, " ".join(sub)))
        seen |= set(OPTION.findall(p.stdout))
    return seen


def man_options(page):
    with open(os.path.join(T.BUILD, "man", page)) as f:
        text = f.read().replace("\\-", "-")
    text = re.sub(r"\\f[BIRP]", "", text)
    text = re.sub(r"\n\.SH EXAMPLES\n.*?(?=\n\.SH )", "\n", text, flags=re.S)  # other programs' options
    lines = [l for l in text.splitlines() if not l.startswith(".\\\"")]
    return set(OPTION.findall("\n".join(re.sub(r"^\.[A-Z]+ ?", "", l) for l in lines)))


@test
def every_option_in_a_help_is_in_its_man_page_and_back(case):
    """So that they cannot drift: the options each tool's --help texts name
    (of every command) are those its man page names."""
    for tool, page in MAN.items():
        h, m = help_options(tool), man_options(page)
        T.eq(sorted(h - m), [], "%s: options in --help, not in %s" % (tool, page))
        T.eq(sorted(m - h), [], "%s: options in %s, not in --help" % (tool, page))
    env = man_options("libobserve.7") | set()
    with open(os.path.join(T.BUILD, "man", "libobserve.7")) as f:
        text = f.read()
    for var in ("OBSERVE_DIR", "OBSERVE_TAGS", "OBSERVE_WAITS", "OBSERVE_MAX_MB", "OBSERVE_CLOCK", "OBSERVE_DISABLE",
                "OBSERVE_QUIET"):
        T.true(var in text, "libobserve(7) documents %s" % var)
    with open(os.path.join(T.ROOT, "preload", "obs_init.c")) as f:
        read = set(re.findall(r'getenv\("(OBSERVE_[A-Z_]+)"\)', f.read()))
    with open(os.path.join(T.ROOT, "preload", "obs_clock.c")) as f:
        read |= set(re.findall(r'getenv\("(OBSERVE_[A-Z_]+)"\)', f.read()))
    T.true(read and all(v in text for v in read), "every variable the library reads is documented: %s" % read)
    with open(os.path.join(T.BUILD, "man", "observe-db.5")) as f:
        db = f.read()
    for view in ("phases", "exchange_phases", "datagram_phases", "event_waits", "wait_calls", "processes"):
        T.true(view.upper() in db.upper(), "observe-db(5) describes %s" % view)


@test
def version_and_usage_errors(case):
    for tool in TOOLS:
        p = subprocess.run([os.path.join(T.BUILD, tool), "--version"], capture_output=True, text=True)
        T.true(p.returncode == 0 and re.fullmatch(r"%s \d+\.\d+\.\d+\n" % tool, p.stdout), "%s --version: %r" % (tool, p.stdout))
    for argv in (["observe", "run", "--bogus"], ["observe-slicer", "load", "--bogus"], ["observe-slicer", "dump"],
                 ["observe-slicer", "frobnicate"], ["observe-manager", "pull", "--bogus"], ["observe-manager"]):
        p = subprocess.run([os.path.join(T.BUILD, argv[0])] + argv[1:], capture_output=True, text=True)
        lines = p.stderr.splitlines()
        T.eq(p.returncode, 2, "%s: exit status" % argv)
        T.true(lines and lines[0].startswith(argv[0] + ": "), "%s: the problem first: %r" % (argv, p.stderr))
        T.true(any(l.startswith("usage: ") for l in lines), "%s: the synopsis: %r" % (argv, p.stderr))
        T.true(len(lines) <= 5, "%s: a few lines, not the whole help: %r" % (argv, p.stderr))


if __name__ == "__main__":
    T.main()
