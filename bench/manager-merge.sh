#!/usr/bin/env bash
# The manager's merge rate (not a test: it prints a rate measured here).
#   bench/manager-merge.sh [RECORDS] [HOSTS] [RUNS]   (default 3000000, 4, 3)
# Makes HOSTS client databases holding RECORDS realistic records in all
# (bench/genlogs, then observe-slicer load), then RUNS times merges them into
# a new database with `observe-manager merge` — the same checks (integrity,
# schema) and merge that `pull` does once a snapshot has come back over ssh —
# and prints records merged per second (median).
set -euo pipefail
cd "$(dirname "$0")/.."
records=${1:-3000000}
hosts=${2:-4}
runs=${3:-3}
B=build
make -s "$B/observe-slicer" "$B/observe-manager" "$B/genlogs" >/dev/null
work=$(mktemp -d /tmp/observe-merge-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
args=()
for h in $(seq "$hosts"); do
    mkdir "$work/logs$h"
    "$B/genlogs" "$work/logs$h" $((records / hosts)) 3 > /dev/null
    "$B/observe-slicer" load -q -o "$work/c$h.db" "$work/logs$h"
    args+=("client-$h=$work/c$h.db")
done
total=0
for h in $(seq "$hosts"); do
    n=$(sqlite3 "$work/c$h.db" "SELECT (SELECT count(*) FROM conns) + (SELECT count(*) FROM xchgs) + (SELECT count(*) FROM udp_socks) + (SELECT count(*) FROM dgrams)")
    total=$((total + n))
done
echo "== $hosts client databases, $total records in all ($(du -ch "$work"/c*.db | tail -1 | cut -f1)); $runs runs"
: > "$work/rates"
for i in $(seq "$runs"); do
    rm -f "$work/m.db"*
    t0=$(date +%s.%N)
    "$B/observe-manager" merge --db "$work/m.db" "${args[@]}" > /dev/null
    t1=$(date +%s.%N)
    echo "$t0 $t1" | awk -v n="$total" '{ printf "%.0f\n", n / ($2 - $1) }' >> "$work/rates"
done
merged=$(sqlite3 "$work/m.db" "SELECT (SELECT count(*) FROM conns) + (SELECT count(*) FROM xchgs) + (SELECT count(*) FROM udp_socks) + (SELECT count(*) FROM dgrams)")
[ "$merged" -eq "$total" ] || { echo "merged $merged records, want $total" >&2; exit 1; }
m=$(sort -g "$work/rates" | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}')
echo "observe-manager merge  records/s: $(tr '\n' ' ' < "$work/rates") median $m (checks included)"
