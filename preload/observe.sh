#!/bin/sh
# observe — run a program under libobserve.so.
#   observe run [-d DIR] [-t key=value]... [-w] -- PROGRAM [ARGS...]
# Sets OBSERVE_DIR, OBSERVE_TAGS and LD_PRELOAD and runs the program.
# A bad option is a usage error (exit 2); a configuration the library cannot
# use (a log directory it must refuse) is reported once and the program still
# runs, unobserved.  A program the library cannot be loaded into or cannot
# see (static, Go) is named before it starts; after the run, a run that left
# no log says so.  With -q it says nothing and execs the program.

usage() {
    cat <<USAGE
usage: observe run [-d DIR] [-t KEY=VALUE]... [-w] [-q] [--] PROGRAM [ARGS...]
       observe --help | --version

Runs PROGRAM with libobserve.so preloaded: every TCP connection and UDP
exchange it makes is recorded in a binary log per process in DIR.

  -d DIR        log directory (OBSERVE_DIR); created 0700 if missing.
                Default: \$OBSERVE_DIR, else /tmp/observe-\$UID
  -t KEY=VALUE  tag the run (OBSERVE_TAGS); repeatable.  KEY is made of
                [A-Za-z0-9_.:-]; VALUE may hold anything but ',' and newline
  -w            record every event wait call, not only per-process totals
                (OBSERVE_WAITS=all)
  -q            no messages from the library or from this wrapper
                (OBSERVE_QUIET=1); the program replaces the wrapper (exec)
  -h, --help    this help
  --version     the version of observe

Environment the library reads (set by this wrapper, or by hand with
LD_PRELOAD=$lib):
  OBSERVE_DIR      log directory
  OBSERVE_TAGS     key=value,key=value
  OBSERVE_WAITS    aggregate (default) or all
  OBSERVE_MAX_MB   the most a process's log may hold (default 1024)
  OBSERVE_DISABLE  set to 1 to pass every call straight through
  OBSERVE_QUIET    set to 1 to silence the library's one-line warnings

Programs it cannot observe: a static binary (the dynamic loader, which
preloads the library, never runs), a Go program (it makes its own system
calls).  Both are named before they start, and run unobserved.

Read the logs with: observe-slicer dump DIR/*.olog, or load them into
SQLite with observe-slicer load.  See observe(1), libobserve(7).
USAGE
}

# Says, before the start, why PROGRAM will not be observed, if it can tell
# (readelf, from binutils, reads the ELF headers; no readelf: no word).
unobservable() { # PROGRAM
    path=$(command -v -- "$1" 2>/dev/null) || return 0
    [ -f "$path" ] && command -v readelf >/dev/null 2>&1 || return 0
    head -c 4 -- "$path" 2>/dev/null | grep -q "ELF" || return 0 # a script: its interpreter is what runs
    if readelf -SW -- "$path" 2>/dev/null | grep -q '\.go\.buildinfo\|\.gopclntab'; then
        echo "observe: $1 is a Go program: it makes its own system calls, which libobserve cannot see; it runs unobserved" >&2
    elif ! readelf -lW -- "$path" 2>/dev/null | grep -q 'Requesting program interpreter'; then
        echo "observe: $1 is statically linked: libobserve cannot be loaded into it; it runs unobserved" >&2
    fi
}

# Runs the program as a child (signals to the wrapper reach it), then says
# if the run left no log; exits as the program did.
run_and_check() { # DIR PROGRAM ARGS...
    logdir=$1; shift
    marker=$(mktemp "${TMPDIR:-/tmp}/observe-run.XXXXXX") || exec "$@"
    # a background job's stdin would be /dev/null: hand it ours through fd 9
    exec 9<&0
    "$@" 0<&9 9<&- &
    child=$!
    exec 9<&-
    trap 'kill -TERM $child 2>/dev/null' TERM
    trap 'kill -HUP $child 2>/dev/null' HUP
    trap ':' INT QUIT # the terminal sends these to the program too
    rc=0
    while :; do
        wait $child; rc=$?
        kill -0 $child 2>/dev/null || break
    done
    trap - TERM HUP INT QUIT
    if [ -d "$logdir" ] && [ -z "$(find -H "$logdir" -maxdepth 1 -name '*.olog' -newer "$marker" 2>/dev/null | head -n 1)" ]; then
        echo "observe: $1 left no log in $logdir: it made no TCP or UDP socket, or libobserve could not see it" >&2
    fi
    rm -f -- "$marker"
    if [ $rc -gt 128 ] && [ $rc -lt 160 ]; then
        kill -s $((rc - 128)) $$ 2>/dev/null # died of a signal: so do we
    fi
    exit $rc
}

# A usage error: one line naming it, the synopsis, and where the help is.
usage_error() { # MESSAGE
    echo "observe: $1" >&2
    echo "usage: observe run [-d DIR] [-t KEY=VALUE]... [-w] [-q] [--] PROGRAM [ARGS...]" >&2
    echo "Try 'observe --help'." >&2
    exit 2
}

# The library: beside the wrapper in a build directory, else where an
# install under any PREFIX put it (PREFIX/bin/observe,
# PREFIX/lib/observe/libobserve.so), else where the build said.
here=$(cd "$(dirname "$0")" 2>/dev/null && pwd)
if [ -n "$here" ] && [ -f "$here/libobserve.so" ]; then
    lib="$here/libobserve.so"
elif [ -n "$here" ] && [ -f "$here/../lib/observe/libobserve.so" ]; then
    lib="$(cd "$here/../lib/observe" && pwd)/libobserve.so"
else
    lib="@LIBDIR@/libobserve.so"
fi

case "${1:-}" in
    run) shift ;;
    -h|--help|help) usage; exit 0 ;;
    --version) echo "observe @VERSION@"; exit 0 ;;
    "") usage_error "no command" ;;
    *) usage_error "unknown command '$1'" ;;
esac

dir=${OBSERVE_DIR:-}
tags=${OBSERVE_TAGS:-}
key_ok='^[A-Za-z0-9_.:-][A-Za-z0-9_.:-]*=[^,]*$'
while [ $# -gt 0 ]; do
    case "$1" in
        -d) [ $# -ge 2 ] || usage_error "-d needs a directory"
            dir=$2; shift 2 ;;
        -t) [ $# -ge 2 ] || usage_error "-t needs KEY=VALUE"
            case "$2" in
                *"
"*) usage_error "tag '$2' contains a newline" ;;
            esac
            if ! printf '%s\n' "$2" | grep -q -- "$key_ok"; then
                usage_error "bad tag '$2' (want KEY=VALUE, KEY of [A-Za-z0-9_.:-], no ',' in VALUE)"
            fi
            tags=${tags:+$tags,}$2; shift 2 ;;
        -w) export OBSERVE_WAITS=all; shift ;;
        -q) export OBSERVE_QUIET=1; shift ;;
        -h|--help) usage; exit 0 ;;
        --) shift; break ;;
        -*) usage_error "unknown option '$1'" ;;
        *) break ;;
    esac
done
[ $# -gt 0 ] || usage_error "no program to run"

if [ ! -f "$lib" ]; then
    echo "observe: $lib not found; running $1 unobserved" >&2
    exec "$@"
fi
if [ -n "$dir" ]; then
    if ! mkdir -p -m 0700 -- "$dir" 2>/dev/null; then
        echo "observe: cannot create log directory '$dir'; $1 will run unobserved" >&2
    fi
    case "$dir" in /*) ;; *) dir="$(pwd)/$dir" ;; esac
    export OBSERVE_DIR="$dir"
fi
[ -n "$tags" ] && export OBSERVE_TAGS="$tags"
export LD_PRELOAD="$lib${LD_PRELOAD:+ $LD_PRELOAD}"
if [ -n "${OBSERVE_QUIET:-}" ]; then
    exec "$@"
fi
unobservable "$1"
run_and_check "${OBSERVE_DIR:-/tmp/observe-$(id -u)}" "$@"
