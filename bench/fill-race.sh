#!/usr/bin/env bash
# A bounded stress run (not a test: minutes, not seconds) of many threads
# filling one small log at once.  When the log is full every record is a
# reservation that fails; a library that reserved past the end and then gave
# the space back left, now and then, a header claiming records that were
# never written, and the reader called an undamaged log "truncated".  This
# runs RUNS clients of 64 threads x 256 connections x 100 requests against
# observe-httpd with OBSERVE_MAX_MB=1 and counts the logs that do not read
# whole.  (tests/test_hostile.py runs four short rounds of the same.)
#   bench/fill-race.sh [RUNS] [LIBRARY]     (default 12, build/libobserve.so)
# Prints the machine's facts, then: runs=N damaged=D seconds=S
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-12}
lib=$(realpath "${2:-build/libobserve.so}")
B=build
make -s "$B/libobserve.so" "$B/observe-httpd" "$B/observe-slicer" "$B/tests/netclient" >/dev/null
work=$(mktemp -d /tmp/observe-fill.XXXXXX)
. bench/httpd.sh
start_httpd 10
echo "machine: $(nproc) cores, $(cat /sys/devices/system/clocksource/clocksource0/current_clocksource) clocksource, $(uname -r)"
echo "library: $lib"
damaged=0
SECONDS=0
for i in $(seq "$runs"); do
    logs="$work/run$i"
    mkdir "$logs"
    OBSERVE_QUIET=1 OBSERVE_MAX_MB=1 OBSERVE_DIR="$logs" LD_PRELOAD="$lib" \
        "$B/tests/netclient" --port "$port" --requests 100 --conns 256 --threads 64 >/dev/null
    if "$B/observe-slicer" dump "$logs"/*.olog 2>&1 >/dev/null | grep -q .; then
        damaged=$((damaged + 1))
    fi
    rm -rf "$logs"
done
echo "runs=$runs damaged=$damaged seconds=$SECONDS"
