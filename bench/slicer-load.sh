#!/usr/bin/env bash
# The slicer's loading benchmark (not a test: it prints rates measured side
# by side in one run, alternating).
#   bench/slicer-load.sh [RECORDS] [RUNS]     (default 3000000 records, 3 runs)
# bench/genlogs writes RECORDS realistic records (HTTP-like clients with 1-4
# exchanges per connection, a UDP client) as real log files; then, RUNS
# times each, alternating:
#   observe-slicer load  the logs into a new database;
#   sqlite3 .import      the same rows, as CSV files exported from that
#                        database, into a new database of the same schema.
# Prints records per second (median), the ratio, and the database's bytes per
# record.  Target: at least 1,000,000 records/s and faster than .import.
set -euo pipefail
cd "$(dirname "$0")/.."
records=${1:-3000000}
runs=${2:-3}
B=build
make -s "$B/observe-slicer" >/dev/null
cc -std=gnu11 -O2 -Wall -Wextra -Werror -o "$B/genlogs" bench/genlogs.c
work=$(mktemp -d /tmp/observe-slicer-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir "$work/logs"
n=$("$B/genlogs" "$work/logs" "$records" 4)
echo "== $n records in $(ls "$work/logs" | wc -l) logs ($(du -sh "$work/logs" | cut -f1)); $runs alternated runs"

now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

# The CSV files for .import, made once from a slicer database.
"$B/observe-slicer" load -q -o "$work/ref.db" "$work/logs"
tables="runs run_tags wait_aggs conns xchgs udp_socks dgrams"
for t in $tables; do
    sqlite3 -csv "$work/ref.db" "SELECT * FROM $t" > "$work/$t.csv"
done
imports=()
for t in $tables; do imports+=(".import --csv $work/$t.csv $t"); done
: > "$work/load"; : > "$work/import"
for i in $(seq "$runs"); do
    rm -f "$work/a.db"*
    t0=$(now); "$B/observe-slicer" load -q -o "$work/a.db" "$work/logs"; t1=$(now)
    echo "$t0 $t1" | awk -v n="$n" '{ printf "%.0f\n", n / ($2 - $1) }' >> "$work/load"
    rm -f "$work/b.db"*
    sqlite3 "$work/b.db" "PRAGMA page_size = 16384" ".read db/schema.sql"
    t0=$(now); sqlite3 "$work/b.db" "${imports[@]}"; t1=$(now)
    echo "$t0 $t1" | awk -v n="$n" '{ printf "%.0f\n", n / ($2 - $1) }' >> "$work/import"
done
l=$(median < "$work/load"); m=$(median < "$work/import")
rows=$(sqlite3 "$work/a.db" "SELECT (SELECT count(*) FROM conns) + (SELECT count(*) FROM xchgs) + (SELECT count(*) FROM udp_socks) + (SELECT count(*) FROM dgrams)")
size=$(stat -c %s "$work/a.db")
echo "observe-slicer load  records/s: $(tr '\n' ' ' < "$work/load") median $l"
echo "sqlite3 .import      records/s: $(tr '\n' ' ' < "$work/import") median $m"
awk -v l="$l" -v m="$m" -v s="$size" -v r="$rows" -v n="$n" 'BEGIN {
    printf "load/.import = %.2f; database: %.1f bytes per record (%d rows for %d records)\n", l / m, s / r, r, n }'
