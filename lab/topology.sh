# lab/topology.sh — the lab's hosts, sourced by lab/demo.sh (bash).
#
# As root: one network namespace per server host (a stand-in for the
# thesis's server VMs, one per event mechanism) and one per client host,
# all on one bridge in this namespace, with addresses in 198.18.0.0/15 (the
# range set aside for benchmarking):
#     bridge (this namespace, where the manager runs)   198.18.0.1/24
#     server host select-vm, poll-vm, epoll-vm           198.18.0.11 .12 .13
#     client host client-1, client-2, ...                198.18.0.21 ...
# Each client host runs an sshd (keys made for the run) for the manager.
# Without root it falls back to loopback, each server on its own ports, the
# client in this namespace and no sshd, and says so.
#
# Everything made is recorded and removed by topo_down, which the caller
# runs from its EXIT trap (also after a failure or Ctrl-C).
#
# Functions:
#   topo_up WORKDIR NCLIENTS      make the hosts (sets TOPO_NETNS=1 or 0)
#   on_host HOST CMD...           run CMD on a host (its namespace, or here)
#   host_addr HOST                the address a host is reached at
#   http_port HOST / udp_base HOST   the ports of its servers
#   topo_spawn HOST LOGFILE CMD...   start a long-running CMD on HOST, in the
#                                 background, remembered for topo_down
#   topo_stop PID                 stop one of them (SIGTERM, then SIGKILL)
#   topo_sshd HOST                start sshd on a client host; prints nothing
#   topo_down                     stop everything, remove the namespaces

TOPO_ID=${TOPO_ID:-$$}
TOPO_NS_PREFIX="obslab$((TOPO_ID % 100000))"
TOPO_BRIDGE="obsbr$((TOPO_ID % 100000))"
TOPO_PIDS=()
TOPO_MADE_NS=()
TOPO_NETNS=0
TOPO_SERVERS="select poll epoll"
TOPO_CLIENTS=""

topo_log() { echo "lab: $*" >&2; }

# The index of a host in the address plan.
_topo_index() {
    case $1 in
        select-vm) echo 11 ;; poll-vm) echo 12 ;; epoll-vm) echo 13 ;;
        client-*) echo $((20 + ${1#client-})) ;;
        *) echo "lab: unknown host $1" >&2; return 1 ;;
    esac
}

host_addr() {
    if [ "$TOPO_NETNS" = 1 ]; then echo "198.18.0.$(_topo_index "$1")"; else echo 127.0.0.1; fi
}

# Server ports: the same on every server host in namespaces; distinct ones
# on loopback.
http_port() {
    if [ "$TOPO_NETNS" = 1 ]; then echo 8080; else echo $((18000 + $(_topo_index "$1"))); fi
}
udp_base() {
    if [ "$TOPO_NETNS" = 1 ]; then echo 9000; else echo $((20000 + ($(_topo_index "$1") - 11) * 6000)); fi
}
# A second HTTP server (the overhead check's 50 KB replies).
http_port2() { echo $(( $(http_port "$1") + 1 )); }

_topo_ns() { echo "$TOPO_NS_PREFIX-$1"; }

on_host() {
    local host=$1
    shift
    if [ "$TOPO_NETNS" = 1 ]; then ip netns exec "$(_topo_ns "$host")" "$@"; else "$@"; fi
}

_topo_add_host() { # HOST
    local host=$1 ns veth idx
    ns=$(_topo_ns "$host")
    idx=$(_topo_index "$host")
    veth="${TOPO_BRIDGE}v$idx"
    ip netns add "$ns"
    TOPO_MADE_NS+=("$ns")
    ip link add "$veth" type veth peer name "${veth}p"
    ip link set "${veth}p" netns "$ns"
    ip link set "$veth" master "$TOPO_BRIDGE"
    ip link set "$veth" up
    ip netns exec "$ns" ip link set lo up
    ip netns exec "$ns" ip link set "${veth}p" name eth0
    ip netns exec "$ns" ip addr add "198.18.0.$idx/24" dev eth0
    ip netns exec "$ns" ip link set eth0 up
}

topo_up() { # WORKDIR NCLIENTS
    local work=$1 n=$2 i
    TOPO_CLIENTS=""
    for i in $(seq "$n"); do TOPO_CLIENTS="$TOPO_CLIENTS client-$i"; done
    if [ "$(id -u)" -ne 0 ] || ! command -v ip >/dev/null; then
        topo_log "not root: every host on loopback (127.0.0.1), each server on its own ports, no sshd;"
        topo_log "the client hosts' databases are merged locally instead of pulled over ssh"
        TOPO_NETNS=0
        return 0
    fi
    TOPO_NETNS=1
    ip link add "$TOPO_BRIDGE" type bridge
    ip addr add 198.18.0.1/24 dev "$TOPO_BRIDGE"
    ip link set "$TOPO_BRIDGE" up
    for h in $TOPO_SERVERS; do _topo_add_host "$h-vm"; done
    for h in $TOPO_CLIENTS; do
        _topo_add_host "$h"
        # a load generator opens thousands of connections a second: the whole
        # port range, and TIME_WAIT ports reused (in its namespace only)
        on_host "$h" sysctl -q -w net.ipv4.ip_local_port_range="1024 65535" net.ipv4.tcp_tw_reuse=1
    done
    topo_log "hosts: $(for h in $TOPO_SERVERS; do printf '%s-vm=%s ' "$h" "$(host_addr "$h-vm")"; done)$(for h in $TOPO_CLIENTS; do printf '%s=%s ' "$h" "$(host_addr "$h")"; done)(namespaces $TOPO_NS_PREFIX-*)"
    mkdir -p "$work"
}

topo_spawn() { # HOST LOGFILE CMD...
    local host=$1 log=$2
    shift 2
    if [ "$TOPO_NETNS" = 1 ]; then
        ip netns exec "$(_topo_ns "$host")" "$@" > "$log" 2>&1 &
    else
        "$@" > "$log" 2>&1 &
    fi
    TOPO_LAST_PID=$!
    TOPO_PIDS+=("$TOPO_LAST_PID")
}

# Waits until LOGFILE has a line matching PATTERN (the program is ready).
topo_wait_for() { # LOGFILE PATTERN PID
    local i
    for i in $(seq 100); do
        grep -q "$2" "$1" 2>/dev/null && return 0
        kill -0 "$3" 2>/dev/null || break
        sleep 0.1
    done
    topo_log "not ready: $(tail -3 "$1" 2>/dev/null)"
    return 1
}

topo_stop() { # PID
    local pid=$1 i
    kill -TERM "$pid" 2>/dev/null || return 0
    for i in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return 0; }
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    return 0
}

topo_sshd() { # HOST WORKDIR: sshd for root on the client host, keys in WORKDIR/ssh
    local host=$1 d="$2/ssh" addr
    addr=$(host_addr "$host")
    mkdir -p "$d" /run/sshd
    chmod 700 "$d"
    [ -f "$d/manager-key" ] || ssh-keygen -q -t ed25519 -N "" -C observe-lab-manager -f "$d/manager-key"
    [ -f "$d/$host-hostkey" ] || ssh-keygen -q -t ed25519 -N "" -C "$host" -f "$d/$host-hostkey"
    cp "$d/manager-key.pub" "$d/authorized_keys"
    cat > "$d/$host-sshd_config" <<EOF
Port 22
ListenAddress $addr
HostKey $d/$host-hostkey
AuthorizedKeysFile $d/authorized_keys
PidFile none
UsePAM no
StrictModes no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
LogLevel ERROR
EOF
    echo "$addr $(cut -d' ' -f1,2 "$d/$host-hostkey.pub")" >> "$d/known_hosts"
    cat > "$d/ssh_config" <<EOF
Host *
  User root
  IdentityFile $d/manager-key
  IdentitiesOnly yes
  UserKnownHostsFile $d/known_hosts
  StrictHostKeyChecking yes
EOF
    topo_spawn "$host" "$d/$host-sshd.log" /usr/sbin/sshd -D -e -f "$d/$host-sshd_config"
    local i
    for i in $(seq 50); do
        ssh -F "$d/ssh_config" -o BatchMode=yes -o ConnectTimeout=2 -- "$addr" true 2>/dev/null && return 0
        sleep 0.1
    done
    topo_log "sshd on $host did not come up: $(tail -3 "$d/$host-sshd.log")"
    return 1
}

topo_down() {
    local pid ns
    for pid in "${TOPO_PIDS[@]}"; do topo_stop "$pid"; done
    TOPO_PIDS=()
    if [ "$TOPO_NETNS" = 1 ]; then
        for ns in "${TOPO_MADE_NS[@]}"; do
            # anything still running in it goes with it
            ip netns pids "$ns" 2>/dev/null | xargs -r kill -KILL 2>/dev/null
            ip netns del "$ns" 2>/dev/null
        done
        ip link del "$TOPO_BRIDGE" 2>/dev/null
    fi
    TOPO_MADE_NS=()
    return 0
}
