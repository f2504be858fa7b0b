#!/usr/bin/env bash
# make demo — the thesis's event-dispatch experiments, observed from the
# client side by libobserve, collected by observe-manager and plotted.
#
#   lab/demo.sh [--quick] [--out DIR] [--clients N]
#
# Server hosts (one network namespace each, standing in for the thesis's
# VMs) run observe-httpd and observe-udpd with select, poll and epoll; a
# client host runs the load generators under libobserve, every run tagged
# with its facts (experiment, server, mechanism, rate, idle, ports, pps):
#   1. TCP: httperf at increasing request rates against each server host
#      (the thesis's Figure 5.1);
#   2. the same at one rate with 0 ... N idle connections held open
#      (Figure 5.2);
#   3. UDP: response time against the number of open server ports, at 10 and
#      100 packets/s (Figures 5.3, 5.4);
#   4. the seed paper's overhead check: ApacheBench with and without the
#      library, 50 KB replies (its Figure 6);
#   5. the seed paper's comparison: the server's own view (the library in
#      the server, accept side) against the client's view of the same
#      connections (its Figure 7).
# Then each client host loads its logs (observe-slicer), the manager pulls
# the databases over ssh, merges them, plots, and writes the report with the
# findings computed from the data, at a path printed at the end.
# --quick runs every step with tiny sweeps (make check runs it).
# Without root there are no namespaces: see lab/topology.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
B=$ROOT/build
quick=0
out=$B/demo
nclients=1
while [ $# -gt 0 ]; do
    case $1 in
        --quick) quick=1 ;;
        --out) out=$2; shift ;;
        --clients) nclients=$2; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "demo: unknown argument '$1' (--quick, --out DIR, --clients N)" >&2; exit 2 ;;
    esac
    shift
done
case $nclients in [1-8]) ;; *) echo "demo: --clients 1 to 8" >&2; exit 2 ;; esac

if [ "$quick" = 1 ]; then
    RATES="100 300"; RATE_SECS=1; IDLES="0 400"; IDLE_RATE=200; IDLE_SECS=1
    PORTS="1 300"; PPS="100"; UDP_SECS=1; AB_N=300; AB_PAIRS=1; SERVER_CONNS=40
else
    RATES="200 800 1600 3200"; RATE_SECS=4; IDLES="0 300 600 900"; IDLE_RATE=300; IDLE_SECS=4
    PORTS="1 250 500 1000"; PPS="10 100"; UDP_SECS=5; AB_N=3000; AB_PAIRS=3; SERVER_CONNS=400
fi
# select cannot watch descriptors past FD_SETSIZE (1024): libevent's select
# backend aborts there, so every sweep stays below it for all three.

source lab/topology.sh
rm -rf "$out"
mkdir -p "$out"
work=$out/hosts
trap 'topo_down' EXIT
trap 'topo_log "interrupted"; exit 130' INT TERM
t_start=$(date +%s)
topo_up "$work" "$nclients"

# ---- servers ---------------------------------------------------------------
start_httpd() { # HOST PORT SIZE LOGFILE [observe dir]
    local host=$1 port=$2 size=$3 log=$4 b=${1%-vm}
    if [ $# -ge 5 ]; then
        topo_spawn "$host" "$log" "$B/observe" run -q -d "$5" -t side=server -t "server=$host" -t "mechanism=$b" -- \
            "$B/observe-httpd" --backend "$b" --addr "$(host_addr "$host")" --port "$port" --size "$size"
    else
        topo_spawn "$host" "$log" "$B/observe-httpd" --backend "$b" --addr "$(host_addr "$host")" --port "$port" --size "$size"
    fi
    topo_wait_for "$log" "listening on" "$TOPO_LAST_PID"
}
for b in $TOPO_SERVERS; do
    mkdir -p "$work/$b-vm"
    start_httpd "$b-vm" "$(http_port "$b-vm")" 1024 "$work/$b-vm/httpd.log"
done
# every client host reaches every server host
for c in $TOPO_CLIENTS; do
    for b in $TOPO_SERVERS; do
        on_host "$c" curl -sf -o /dev/null --max-time 5 "http://$(host_addr $b-vm):$(http_port $b-vm)/" ||
            { topo_log "$c cannot reach $b-vm"; exit 1; }
    done
done

# ---- the client hosts' runs -------------------------------------------------
client_logs() { echo "$work/$1/logs"; }
for c in $TOPO_CLIENTS; do mkdir -p "$(client_logs "$c")"; done
first_client=$(echo $TOPO_CLIENTS | cut -d' ' -f1)

# observed CLIENT TAGS CMD...: CMD on the client host under libobserve
observed() {
    local c=$1 t args=()
    for t in ${2//,/ }; do args+=(-t "$t"); done
    shift 2
    # no load generator may hang the demo
    on_host "$c" timeout 300 "$B/observe" run -q -d "$(client_logs "$c")" "${args[@]}" -- "$@"
}
server_tags() { echo "server=$1,server_host=$1,mechanism=${1%-vm}"; }

topo_log "1. request rate sweep: $RATES connections/s, ${RATE_SECS} s each, per server host"
for b in $TOPO_SERVERS; do
    h=$b-vm
    for r in $RATES; do
        loads=()
        for c in $TOPO_CLIENTS; do  # every client host at once, each at rate r
            observed "$c" "exp=rate,$(server_tags $h),rate=$r" httperf --server "$(host_addr $h)" \
                --port "$(http_port $h)" --rate "$r" --num-conns $((r * RATE_SECS)) --timeout 5 \
                > "$work/$c/httperf-rate-$h-$r.txt" 2>&1 &
            loads+=($!)
        done
        wait "${loads[@]}"
    done
done

topo_log "2. idle connections: $IDLES held open, httperf at $IDLE_RATE/s for ${IDLE_SECS} s"
for b in $TOPO_SERVERS; do
    h=$b-vm
    for n in $IDLES; do
        idle_pid=""
        if [ "$n" -gt 0 ]; then
            topo_spawn "$first_client" "$work/$first_client/idle-$h-$n.log" "$B/observe-idle" \
                --addr "$(host_addr $h)" --port "$(http_port $h)" --conns "$n"
            idle_pid=$TOPO_LAST_PID
            topo_wait_for "$work/$first_client/idle-$h-$n.log" "holding $n connections" "$idle_pid"
        fi
        observed "$first_client" "exp=idle,$(server_tags $h),idle=$n,idle_rate=$IDLE_RATE" httperf \
            --server "$(host_addr $h)" --port "$(http_port $h)" --rate "$IDLE_RATE" \
            --num-conns $((IDLE_RATE * IDLE_SECS)) --timeout 5 > "$work/$first_client/httperf-idle-$h-$n.txt" 2>&1
        [ -z "$idle_pid" ] || topo_stop "$idle_pid"
    done
done

topo_log "3. UDP: $PORTS server ports, at $PPS packets/s, ${UDP_SECS} s each"
for b in $TOPO_SERVERS; do
    h=$b-vm
    for n in $PORTS; do
        topo_spawn "$h" "$work/$h/udpd-$n.log" "$B/observe-udpd" --backend "$b" --addr "$(host_addr $h)" \
            --port "$(udp_base $h)" --ports "$n"
        udpd=$TOPO_LAST_PID
        topo_wait_for "$work/$h/udpd-$n.log" "listening on" "$udpd"
        for pps in $PPS; do
            observed "$first_client" "exp=udp,$(server_tags $h),ports=$n,pps=$pps" "$B/observe-udpc" \
                --addr "$(host_addr $h)" --port "$(udp_base $h)" --ports "$n" --rate "$pps" \
                --duration "$UDP_SECS" > "$work/$first_client/udpc-$h-$n-$pps.txt"
        done
        topo_stop "$udpd"
    done
done

topo_log "4. overhead: ab -n $AB_N -c 4, 50 KB replies, with and without libobserve, $AB_PAIRS alternated pairs"
h=epoll-vm
start_httpd $h "$(http_port2 $h)" 51200 "$work/$h/httpd-50k.log"
ab_rps() { awk '/Requests per second/ {print $4}'; }
: > "$out/overhead.txt"
for i in $(seq "$AB_PAIRS"); do
    url="http://$(host_addr $h):$(http_port2 $h)/"
    plain=$(on_host "$first_client" ab -q -n "$AB_N" -c 4 "$url" 2>/dev/null | ab_rps)
    seen=$(observed "$first_client" "exp=overhead,$(server_tags $h)" ab -q -n "$AB_N" -c 4 "$url" 2>/dev/null | ab_rps)
    echo "$plain $seen" >> "$out/overhead.txt"
done

topo_log "5. the server's view against the client's: $SERVER_CONNS connections, libobserve in both"
mkdir -p "$work/$h/server-logs"
start_httpd $h $(( $(http_port2 $h) + 1 )) 4096 "$work/$h/httpd-observed.log" "$work/$h/server-logs"
server_pid=$TOPO_LAST_PID
observed "$first_client" "exp=serverview,$(server_tags $h)" httperf --server "$(host_addr $h)" \
    --port $(( $(http_port2 $h) + 1 )) --rate 100 --num-conns "$SERVER_CONNS" --num-calls 2 --timeout 5 \
    > "$work/$first_client/httperf-serverview.txt" 2>&1
topo_stop "$server_pid"

# ---- collect: each client host loads its logs; the manager pulls ---------------
db=$out/observe.db
inventory=$out/inventory
{
    echo "# written by lab/demo.sh"
    for c in $TOPO_CLIENTS; do
        echo "client $c $(host_addr "$c") db=$work/$c/observe.db slicer=$B/observe-slicer"
    done
    if [ "$TOPO_NETNS" = 1 ]; then
        for b in $TOPO_SERVERS; do echo "server $(host_addr $b-vm) $b-vm host=$b-vm mechanism=$b"; done
    fi
} > "$inventory"
for c in $TOPO_CLIENTS; do
    on_host "$c" "$B/observe-slicer" load -q -o "$work/$c/observe.db" "$(client_logs "$c")"
done
if [ "$TOPO_NETNS" = 1 ]; then
    for c in $TOPO_CLIENTS; do topo_sshd "$c" "$work"; done
    topo_log "pulling the client hosts' databases over ssh"
    "$B/observe-manager" pull --no-progress -F "$work/ssh/ssh_config" --db "$db" "$inventory"
else
    for c in $TOPO_CLIENTS; do "$B/observe-manager" merge --db "$db" "$c=$work/$c/observe.db"; done
fi
# the server's own log (experiment 5) is loaded beside them, marked as such
"$B/observe-slicer" load -q -o "$db" -t exp=serverview "$work/epoll-vm/server-logs"

# ---- findings, computed from the merged database ------------------------------
lab/findings.sh "$db" "$out/overhead.txt" > "$out/findings.txt"
"$B/observe-manager" report --db "$db" -o "$out/report" --notes "$out/findings.txt" >/dev/null
for pps in $PPS; do
    "$B/observe-manager" plot --db "$db" -o "$out/report/udp-${pps}pps" --tag exp=udp --tag "pps=$pps" \
        --x-tag ports >/dev/null
done
"$B/observe-manager" plot --db "$db" -o "$out/report/idle" --tag exp=idle --x-tag idle >/dev/null
"$B/observe-manager" plot --db "$db" -o "$out/report/rate" --tag exp=rate --x-tag rate >/dev/null

cat "$out/findings.txt"
echo
echo "demo: done in $(( $(date +%s) - t_start )) s; database $db"
echo "report: $out/report/report.html"
