#!/bin/bash
# xdp_relay_lab_test.sh STUNKITD STUNKIT ECHO XDP_PASS_OBJ - TURN channels
# relayed in XDP (stunkitd --turn --xdp), end to end between three network
# namespaces (root only; 77 = skipped).
#
#   client ns            server ns                          peer ns
#   c0 192.0.2.7  <-->  s0 192.0.2.1 (TURN on 3478)
#      2001:db8::7         2001:db8::1
#                       s1 198.51.100.1 (relayed addr) <-->  p0 198.51.100.7
#                          2001:db8:1::1                        2001:db8:1::7
#                                                            (UDP echoes :4000)
#   XDP_PASS on c0 and p0 (veth hands XDP_TX and redirected frames only to a
#   peer running XDP); stunkitd's program on s0 and s1.
#
# Checked: without lo's forwarding flag stunkitd says why and the socket
# path relays; with it `stunkit bench --turn` (every echo checked; the
# kernels at both ends verify the rewritten checksums) goes through XDP both
# ways, over IPv4, IPv6 and across families, the counters add up, the program's tables empty when the
# allocations are deleted; a per-allocation bandwidth quota holds in XDP;
# `stunkit turn` (relay to relay on the server itself, which the program
# leaves to the sockets) still works; SIGKILL leaves nothing attached.
# Documentation addresses only.
set -u
stunkitd=$1
stunkit=$2
echo_bin=$3
pass_obj=$4
[ "$(id -u)" -eq 0 ] || { echo "skip: network namespaces and BPF need root"; exit 77; }
command -v bpftool >/dev/null || { echo "skip: bpftool not installed"; exit 77; }
. "$(dirname "$0")/../lib/testlib.sh"
. "$(dirname "$0")/../lib/netns.sh"
tag="xr$$"
S="${tag}s" C="${tag}c" P="${tag}p"
ns_add "$S" "$C" "$P" || { fail "netns"; exit 1; }
ns_veth "$S" s0 "$C" c0
ns_veth "$S" s1 "$P" p0
ns_addr "$S" s0 192.0.2.1/24 2001:db8::1/64
ns_addr "$S" s1 198.51.100.1/24 2001:db8:1::1/64
ns_addr "$C" c0 192.0.2.7/24 2001:db8::7/64
ns_addr "$P" p0 198.51.100.7/24 2001:db8:1::7/64
ns_route "$C" default via 192.0.2.1
ns_route "$P" default via 198.51.100.1
ns_route "$C" -6 default via 2001:db8::1
ns_route "$P" -6 default via 2001:db8:1::1
for pair in "$C c0" "$P p0"; do
    # shellcheck disable=SC2086
    set -- $pair
    ip -n "$1" link set dev "$2" xdpdrv obj "$pass_obj" sec xdp || { fail "XDP_PASS on $2"; exit 1; }
done
ip netns exec "$P" "$echo_bin" 198.51.100.7 4000 &
pids="$pids $!"
ip netns exec "$P" "$echo_bin" 2001:db8:1::7 4000 &
pids="$pids $!"

TURN="--listen 192.0.2.1:3478 --listen [2001:db8::1]:3478 --turn --credential u:pw --allowed-peer 198.51.100.0/24
      --allowed-peer 2001:db8:1::/64 --relay-ip 198.51.100.1 --relay-ip 2001:db8:1::1 --relay-ports 50000-50999
      --rate-limit 0 --no-tcp --threads 1"
server() { # LOG ARGS...
    local log=$1
    shift
    ip netns exec "$S" "$stunkitd" "$@" 2>"$log" &
    spid=$!
    pids="$pids $spid"
    for _ in $(seq 50); do
        grep -q "running" "$log" && return 0
        sleep 0.1
    done
    return 1
}
stop() { kill "$spid" 2>/dev/null; wait "$spid" 2>/dev/null; }
counter() { grep -E "^ +$2 " "$1" | tail -1 | awk '{print $2}'; }
dump() { # LOG
    local before
    before=$(grep -c "counters (SIGUSR1)" "$1")
    kill -USR1 "$spid"
    for _ in $(seq 50); do
        [ "$(grep -c "counters (SIGUSR1)" "$1")" -gt "$before" ] && grep -q "rdv_refused_size" "$1" && return 0
        sleep 0.1
    done
}
bench() { # OUT [PEER SERVER]: stunkit bench --turn from the client (IPv4 by default)
    local out=$1 peer=${2:-198.51.100.7:4000} srv=${3:-192.0.2.1:3478}
    ip netns exec "$C" "$stunkit" bench --turn --json --peer "$peer" -s 4 -w 4 -d 2 \
        --username u --password pw "$srv" >"$out" 2>&1
}
field() { sed -n "s/.*\"$2\": \\([0-9]*\\).*/\\1/p" "$1"; }
entries() { # LOG MAP: entries in table MAP of the program stunkitd (LOG) attached
    local prog m
    prog=$(sed -n 's/.*program id \([0-9]*\).*/\1/p' "$1" | head -1)
    for m in $(bpftool prog show id "$prog" | sed -n 's/.*map_ids \([0-9,]*\).*/\1/p' | tr , ' '); do
        bpftool map show id "$m" | grep -q " name $2 " && { bpftool map dump id "$m" | grep -c '"key"'; return; }
    done
    echo "none"
}

# 1. lo does not forward: the program cannot look routes up; said, and the
#    socket path relays
ip netns exec "$S" sysctl -qw net.ipv4.conf.lo.forwarding=0 net.ipv6.conf.lo.forwarding=0
# shellcheck disable=SC2086
server "$tmp/nofwd.log" $TURN --xdp s0 --xdp s1 || fail "stunkitd did not start: $(cat "$tmp/nofwd.log")"
grep -q "TURN channels stay on the socket path.*net.ipv4.conf.lo.forwarding=1" "$tmp/nofwd.log" &&
    ok "without lo's forwarding flag: one line says how to turn the offload on" ||
    fail "no warning: $(cat "$tmp/nofwd.log")"
bench "$tmp/b0.json"
dump "$tmp/nofwd.log"
trips=$(field "$tmp/b0.json" relayed_round_trips)
[ -n "$trips" ] && [ "$trips" -gt 1000 ] && [ "$(field "$tmp/b0.json" bad)" = 0 ] &&
    [ "$(counter "$tmp/nofwd.log" xdp_relayed)" = 0 ] &&
    ok "the socket path relays meanwhile: $trips round trips, none bad, xdp_relayed 0" ||
    fail "socket relay: $(cat "$tmp/b0.json"); xdp_relayed $(counter "$tmp/nofwd.log" xdp_relayed)"
stop

# 2. with it: ChannelData relayed in XDP both ways
ip netns exec "$S" sysctl -qw net.ipv4.conf.lo.forwarding=1 net.ipv6.conf.lo.forwarding=1
# shellcheck disable=SC2086
server "$tmp/xdp.log" $TURN --xdp s0 --xdp s1 || fail "stunkitd --xdp did not start: $(cat "$tmp/xdp.log")"
grep -q "TURN channels of UDP allocations are relayed there" "$tmp/xdp.log" &&
    ok "with it: 'TURN channels of UDP allocations are relayed there'" || fail "start lines: $(cat "$tmp/xdp.log")"
bench "$tmp/b1.json"
dump "$tmp/xdp.log"
trips=$(field "$tmp/b1.json" relayed_round_trips)
sent=$(field "$tmp/b1.json" sent)
relayed=$(counter "$tmp/xdp.log" xdp_relayed)
to_peer=$(counter "$tmp/xdp.log" turn_to_peer)
to_client=$(counter "$tmp/xdp.log" turn_to_client)
# the first datagrams of each channel may go by the sockets while the
# neighbours are resolved; everything after them goes through XDP
[ -n "$trips" ] && [ "$trips" -gt 1000 ] && [ "$(field "$tmp/b1.json" bad)" = 0 ] &&
    [ "$relayed" -ge $((2 * trips - 200)) ] && [ "$to_peer" -ge "$trips" ] && [ "$to_client" -ge "$trips" ] &&
    ok "stunkit bench --turn through XDP: $trips round trips (sent $sent), none bad; xdp_relayed $relayed of turn_to_peer $to_peer + turn_to_client $to_client" ||
    fail "XDP relay: $(cat "$tmp/b1.json"); xdp_relayed $relayed, to_peer $to_peer, to_client $to_client"
# IPv6, and across families (the relayed address in the peer's family)
for case in "IPv6 client, IPv6 relay|[2001:db8:1::7]:4000|[2001:db8::1]:3478" \
    "IPv4 client, IPv6 relay|[2001:db8:1::7]:4000|192.0.2.1:3478" \
    "IPv6 client, IPv4 relay|198.51.100.7:4000|[2001:db8::1]:3478"; do
    IFS='|' read -r name peer srv <<<"$case"
    r0=$(counter "$tmp/xdp.log" xdp_relayed)
    bench "$tmp/b6.json" "$peer" "$srv"
    dump "$tmp/xdp.log"
    trips=$(field "$tmp/b6.json" relayed_round_trips)
    relayed=$(($(counter "$tmp/xdp.log" xdp_relayed) - r0))
    [ -n "$trips" ] && [ "$trips" -gt 1000 ] && [ "$(field "$tmp/b6.json" bad)" = 0 ] &&
        [ "$relayed" -ge $((2 * trips - 200)) ] &&
        ok "$name: $trips round trips through XDP, none bad; xdp_relayed +$relayed" ||
        fail "$name: $(cat "$tmp/b6.json"); xdp_relayed +$relayed"
done
ce=$(entries "$tmp/xdp.log" chans) pe=$(entries "$tmp/xdp.log" peers)
[ "$ce" = 0 ] && [ "$pe" = 0 ] && ok "the allocations deleted: no channel left in the program's tables" ||
    fail "tables after the allocations ended: chans $ce, peers $pe"
# relay to relay on the server itself: local, the program leaves it to the sockets
ip netns exec "$C" "$stunkit" turn --json --username u --password pw 192.0.2.1:3478 >"$tmp/turn.json" 2>&1
grep -q '"ok": true' "$tmp/turn.json" && grep -q '"channels": true' "$tmp/turn.json" &&
    ok "stunkit turn (relay to relay on the server): ok, channels relayed" || fail "stunkit turn: $(cat "$tmp/turn.json")"

# 3. SIGKILL: nothing stays attached
kill -9 "$spid"
wait "$spid" 2>/dev/null
sleep 0.2
if ip -n "$S" link show s0 | grep -q "prog/xdp" || ip -n "$S" link show s1 | grep -q "prog/xdp"; then
    fail "a program is still attached after SIGKILL"
else
    ok "SIGKILL: no program left on s0 or s1"
fi

# 4. a per-allocation bandwidth quota holds in XDP: 20000 bytes/s, 4
#    allocations, 2 s: at most 4 x 20000 x (2 s + the 1 s bucket) bytes
# shellcheck disable=SC2086
server "$tmp/quota.log" $TURN --turn-allocation-bandwidth 20000 --xdp s0 --xdp s1 ||
    fail "stunkitd with a quota did not start: $(cat "$tmp/quota.log")"
bench "$tmp/b2.json"
dump "$tmp/quota.log"
relayed=$(counter "$tmp/quota.log" xdp_relayed)
over=$(counter "$tmp/quota.log" turn_over_quota)
to_peer=$(counter "$tmp/quota.log" turn_to_peer)
to_client=$(counter "$tmp/quota.log" turn_to_client)
bytes=$(((to_peer + to_client) * 100))
[ "$relayed" -ge $((to_peer + to_client - 100)) ] && [ "$over" -gt 0 ] && [ "$bytes" -le $((4 * 20000 * 3)) ] &&
    ok "quota 20000 B/s per allocation: $bytes bytes relayed in 2 s by 4 allocations ($relayed datagrams in XDP), $over over the quota dropped" ||
    fail "quota: relayed $relayed in XDP, to_peer $to_peer, to_client $to_client ($bytes bytes), over_quota $over"
stop

finish
