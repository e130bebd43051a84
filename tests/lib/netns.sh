# netns.sh - network namespaces for the labs, one way for all of them.
# Source it after testlib.sh (bash). Namespaces made with ns_add are removed
# by ns_down, which testlib_cleanup calls on any exit, so a lab that fails
# half way (or is killed) leaves nothing behind. Names are the caller's:
# derive them from $$ so two checkouts can run side by side. Documentation
# and carrier-inside addresses only (see the README's network rules).
#
#   ns_add NAME...                 new namespaces, loopback up
#   ns_veth NS1 IF1 NS2 IF2        a veth pair between two namespaces, both ends up
#   ns_addr NS IF ADDR/LEN...      addresses on IF (IPv6 without DAD: usable at once)
#   ns_route NS [-6] ROUTE...      ip route add ROUTE in NS
#   ns_router NS                   forwards IPv4 and IPv6 (a router)
#   ns_wait_port NS udp|tcp ADDR   until a socket listens on ADDR (":PORT", or
#                                  "IP:PORT"), at most 5 s; 1 when nothing came
#   ns_down [NAME...]              removes these namespaces (none named: every
#                                  one ns_add made); processes in them die with them
#                                  only if the caller stopped them (testlib: by PID)
ns_made=""

ns_add() {
    local ns
    for ns in "$@"; do
        ip netns add "$ns" || return 1
        ns_made="$ns_made $ns"
        ip -n "$ns" link set lo up || return 1
    done
}

ns_veth() {
    ip link add "$2" netns "$1" type veth peer name "$4" netns "$3" || return 1
    ip -n "$1" link set "$2" up && ip -n "$3" link set "$4" up
}

ns_addr() {
    local ns=$1 dev=$2 a
    shift 2
    for a in "$@"; do
        if [[ "$a" == *:* ]]; then
            ip -n "$ns" addr add "$a" dev "$dev" nodad || return 1
        else
            ip -n "$ns" addr add "$a" dev "$dev" || return 1
        fi
    done
}

ns_route() {
    local ns=$1
    shift
    if [ "${1:-}" = -6 ]; then
        shift
        ip -n "$ns" -6 route add "$@"
    else
        ip -n "$ns" route add "$@"
    fi
}

ns_router() {
    ip netns exec "$1" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
}

ns_wait_port() {
    local ns=$1 proto=$2 addr=$3 flag=-Hlun filter _
    [ "$proto" = tcp ] && flag=-Hltn
    if [[ "$addr" == :* ]]; then filter="sport = $addr"; else filter="src $addr"; fi
    for _ in $(seq 50); do
        ip netns exec "$ns" ss $flag "$filter" 2>/dev/null | grep -q . && return 0
        sleep 0.1
    done
    return 1
}

ns_down() {
    local ns keep=""
    if [ $# -eq 0 ]; then
        set -- $ns_made
    fi
    for ns in "$@"; do ip netns del "$ns" 2>/dev/null; done
    for ns in $ns_made; do
        [[ " $* " == *" $ns "* ]] || keep="$keep $ns"
    done
    ns_made=$keep
}
