#!/usr/bin/env bash
# The overhead benchmark of libobserve (not a test: it prints ratios measured
# side by side in one run, alternating, so machine noise hits both sides).
#   bench/run.sh [RUNS]      (default 7 alternated runs of each)
# 1. throughput of ab -k (keep-alive, 4 concurrent, 100-byte replies) against
#    observe-httpd (epoll) on loopback: plain, under libobserve, and under
#    strace -f for comparison;
# 2. added cost per tracked call: bench/pingpong (1-byte ping-pong on one
#    loopback connection, 4 calls a round), plain and under libobserve; then
#    the same calls sending one way only, which write no exchange records;
# 3. the one-time cost of a process's first socket, where the log is made;
# 4. a process that makes no socket (/bin/true, many runs): whole-process
#    wall time, plain, with an empty preloaded library (the floor of any
#    LD_PRELOAD) and with libobserve;
# 5. a many-process client: curl run 100 times one after the other against
#    observe-httpd, whole wall time.
# Prints the machine's facts, then medians and the ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-7}
B=build
make -s "$B/libobserve.so" "$B/observe-httpd" >/dev/null
cc -std=gnu11 -O2 -Wall -Wextra -Werror -o "$B/pingpong" bench/pingpong.c
cc -std=gnu11 -O2 -Wall -Wextra -Werror -o "$B/firstsock" bench/firstsock.c
cc -std=gnu11 -O2 -Wall -Wextra -Werror -o "$B/spawn" bench/spawn.c
cc -std=gnu11 -O2 -Wall -Wextra -Werror -fPIC -shared -o "$B/libempty.so" bench/empty.c

echo "== machine: $(nproc) cores, $(uname -sr), clocksource $(cat /sys/devices/system/clocksource/clocksource0/current_clocksource 2>/dev/null || echo unknown)," \
     "log directory on $(df -PT "${TMPDIR:-/tmp}" | awk 'NR == 2 {print $2}')"
work=$(mktemp -d /tmp/observe-bench.XXXXXX)
. bench/httpd.sh
start_httpd 100
url="http://127.0.0.1:$port/"
lib=$(pwd)/$B/libobserve.so
n=150000

ab_rps() { # prefix...: requests per second of one ab -k run
    "$@" ab -q -k -c 4 -n "$n" "$url" 2>/dev/null | awk '/Requests per second/ {print $4}'
}
observed() { env LD_PRELOAD="$lib" OBSERVE_DIR="$work/logs" "$@"; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

echo "== throughput: ab -k -c 4 -n $n, 100-byte replies, $runs alternated runs"
: > "$work/plain"; : > "$work/obs"
for i in $(seq "$runs"); do
    ab_rps env >> "$work/plain"
    ab_rps observed >> "$work/obs"
    rm -rf "$work/logs"
done
st=$(ab_rps strace -f -qq -o /dev/null)
p=$(median < "$work/plain"); o=$(median < "$work/obs")
echo "plain     requests/s: $(tr '\n' ' ' < "$work/plain")  median $p"
echo "observed  requests/s: $(tr '\n' ' ' < "$work/obs")  median $o"
echo "strace -f requests/s: $st (one run)"
awk -v p="$p" -v o="$o" -v s="$st" 'BEGIN {
    printf "observed/plain = %.3f (throughput change %+.1f %%); strace/plain = %.3f\n", o/p, (o/p-1)*100, s/p }'

# Pinned to one core; each observed run is paired with the plain run just
# before it, and the median of the paired differences is reported (drift
# between runs is as large as the effect measured).
pin=""
command -v taskset >/dev/null && pin="taskset -c 1"
# mode: "" (ping-pong: every call opens or closes an exchange) or "oneway"
# (the same calls, no exchange to record).
per_call() {
    local mode=$1 what=$2
    echo "== cost per tracked call: $what, 200000 rounds x 4 calls, $runs alternated pairs${pin:+, pinned to cpu 1}"
    : > "$work/pp_plain"; : > "$work/pp_obs"; : > "$work/pp_diff"
    for i in $(seq "$runs"); do
        a=$($pin "$B/pingpong" 200000 $mode | sed 's/.*ns_per_call=//')
        b=$(observed $pin "$B/pingpong" 200000 $mode | sed 's/.*ns_per_call=//')
        rm -rf "$work/logs"
        echo "$a" >> "$work/pp_plain"; echo "$b" >> "$work/pp_obs"
        awk -v a="$a" -v b="$b" 'BEGIN { print b - a }' >> "$work/pp_diff"
    done
    pp=$(median < "$work/pp_plain"); po=$(median < "$work/pp_obs"); pd=$(median < "$work/pp_diff")
    echo "plain     ns/call: $(tr '\n' ' ' < "$work/pp_plain") median $pp"
    echo "observed  ns/call: $(tr '\n' ' ' < "$work/pp_obs") median $po"
    echo "paired differences: $(tr '\n' ' ' < "$work/pp_diff")"
    awk -v p="$pp" -v d="$pd" 'BEGIN { printf "added per tracked call: %.1f ns, median of paired differences (%.1f %% of a loopback call)\n", d, d/p*100 }'
}
per_call "" "1-byte ping-pong on loopback"
per_call oneway "1 byte one way on loopback (no exchange records)"

# The first AF_INET socket of a process creates its log: paid once, inside
# the client's first connection setup as the client sees it.  The log
# directory exists (the first process of a directory also makes it).
echo "== first socket of a process (the log is created there), $runs alternated pairs"
: > "$work/fs_plain"; : > "$work/fs_obs"
mkdir -p "$work/logs"
for i in $(seq "$runs"); do
    $pin "$B/firstsock" | sed 's/first_socket_us=\([0-9.]*\).*/\1/' >> "$work/fs_plain"
    observed $pin "$B/firstsock" | sed 's/first_socket_us=\([0-9.]*\).*/\1/' >> "$work/fs_obs"
    rm -f "$work/logs"/*
done
rmdir "$work/logs"
fp=$(median < "$work/fs_plain"); fo=$(median < "$work/fs_obs")
echo "plain     us: $(tr '\n' ' ' < "$work/fs_plain") median $fp"
echo "observed  us: $(tr '\n' ' ' < "$work/fs_obs") median $fo"
awk -v p="$fp" -v o="$fo" 'BEGIN { printf "added to the first socket: %.0f us (once per process)\n", o - p }'

# Start-up: the runs alternate plain and preloaded; a process that makes no
# socket makes no log, so what is left is the loader's work and our
# constructor's.
echo "== a process that makes no socket: /bin/true, 400 alternated pairs each"
floor=$("$B/spawn" 400 "LD_PRELOAD=$(pwd)/$B/libempty.so" -- /bin/true)
ours=$("$B/spawn" 400 "LD_PRELOAD=$lib,OBSERVE_DIR=$work/logs" -- /bin/true)
echo "an empty preloaded library: $floor"
echo "libobserve:                 $ours"
[ ! -d "$work/logs" ] || [ -z "$(ls -A "$work/logs")" ] || echo "WRONG: a process without a socket left a log"

if command -v curl >/dev/null; then
    echo "== a many-process client: 100 sequential curl runs, $runs alternated pairs of 100"
    : > "$work/cu"; : > "$work/cu_floor"
    for i in $(seq "$runs"); do
        "$B/spawn" 100 "LD_PRELOAD=$lib,OBSERVE_DIR=$work/logs" -- curl -s -o /dev/null "$url" >> "$work/cu"
        rm -rf "$work/logs"
        "$B/spawn" 100 "LD_PRELOAD=$(pwd)/$B/libempty.so" -- curl -s -o /dev/null "$url" >> "$work/cu_floor"
    done
    sed 's/^/  libobserve: /' "$work/cu"
    sed 's/^/  an empty preloaded library: /' "$work/cu_floor"
    for f in cu cu_floor; do
        awk -F'total_ratio=' '{print $2}' "$work/$f" | median
    done | paste -sd' ' | awk '{ printf "100 curl runs take %.2f %% longer under libobserve, %.2f %% under an empty preloaded library (medians of %d ratios of totals)\n", ($1 - 1) * 100, ($2 - 1) * 100, '"$runs"' }'
fi
