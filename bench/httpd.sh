# bench/httpd.sh — sourced by the benchmarks that need a server: starts
# observe-httpd (epoll) on a free loopback port in the background and sets
# $server (its PID) and $port; it is stopped by PID and $work removed at
# exit.  Needs $B (the build directory) and $work (a scratch directory).
#   start_httpd SIZE
start_httpd() {
    "$B/observe-httpd" --port 0 --size "$1" --backend epoll > "$work/httpd.out" &
    server=$!
    trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$work"' EXIT
    for _ in $(seq 50); do grep -q listening "$work/httpd.out" && break; sleep 0.1; done
    port=$(sed -n 's/.*listening on [0-9.]*:\([0-9]*\).*/\1/p' "$work/httpd.out")
}
