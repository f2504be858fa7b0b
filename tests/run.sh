#!/usr/bin/env bash
# Runs every test of observe: first the C unit tier (build/tests/unit, the
# pure parts, in about a second), then each tests/test_*.py with the normal build of
# libobserve.so, then the behaviour, client and reader suites again with the
# AddressSanitizer/UBSan build.  Each test prints ok/FAIL/skip; the last line
# is the total, "N passed, N failed, N skipped".  Exit status 1 if any failed.
#   tests/run.sh [test_file.py ...]
set -u
cd "$(dirname "$0")/.."
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3)
out=$(mktemp)
trap 'rm -f "$out"' EXIT

files=("$@")
[ ${#files[@]} -gt 0 ] || files=(tests/test_*.py)
sanitized=(tests/test_behaviour.py tests/test_clients.py tests/test_reader.py tests/test_slicer.py tests/test_manager.py)

run_file() { # SANITIZE FILE
    local before after rc
    before=$(grep -c '^FAIL - ' "$out")
    OBS_SANITIZE=$1 timeout 900 "$PY" "$2" 2>&1 | tee -a "$out"
    rc=${PIPESTATUS[0]}
    after=$(grep -c '^FAIL - ' "$out")
    if [ "$rc" -ne 0 ] && [ "$after" -eq "$before" ]; then
        echo "FAIL - $2: exited $rc without reporting a failure (crash or timeout)" | tee -a "$out"
    fi
}

if [ $# -eq 0 ]; then
    echo "# unit tier (tests/unit)"
    timeout 120 build/tests/unit 2>&1 | tee -a "$out"
    [ "${PIPESTATUS[0]}" -eq 0 ] || grep -q '^FAIL - unit' "$out" ||
        echo "FAIL - tests/unit: exited without reporting a failure (crash or timeout)" | tee -a "$out"
fi
for f in "${files[@]}"; do
    run_file 0 "$f"
done
if [ $# -eq 0 ]; then
    for f in "${sanitized[@]}"; do
        run_file 1 "$f"
    done
fi

passed=$(grep -c '^ok - ' "$out")
failed=$(grep -c '^FAIL - ' "$out")
skipped=$(grep -c '^skip - ' "$out")
echo
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
