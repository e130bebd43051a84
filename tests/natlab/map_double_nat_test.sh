#!/bin/bash
# map_double_nat_test.sh STUNKITD STUNKIT - the truth check of `stunkit map
# --stun` behind two NATs, with miniupnpd (Debian miniupnpd-nftables) on the
# inner router:
#
#   client ns         inner router (miniupnpd)        outer NAT            server ns
#   192.0.2.2 --- 192.0.2.1 | 100.64.0.2 --- 100.64.0.1 | 198.51.100.254 --- 198.51.100.1 + .2
#                                                          (+ .253)            stunkitd (RFC 5780)
#
# 1. The outer NAT is 1:1 (the inner router in its "DMZ"): miniupnpd learns
#    198.51.100.254 by STUN and maps; the mapping really is reachable, and
#    --stun must say so (proven from the STUN server's other address), not
#    cry "double NAT".
# 2. The carrier then moves the line behind an address-sharing NAT on
#    198.51.100.253 (a CGN). miniupnpd still believes 198.51.100.254 and
#    still grants mappings; --stun must see .253, say plainly that the
#    mapping does not make this host reachable, and exit 3. A datagram sent
#    to the address the router claims confirms it: nothing arrives.
# 3. A miniupnpd that finds the restrictive NAT itself (restarted behind the
#    CGN) refuses: PCP, NAT-PMP and UPnP all fail with the router's reason.
# Documentation and carrier-inside addresses only; namespaces and processes
# removed on exit. Root only (77 = skipped otherwise).
set -u
stunkitd=$1
stunkit=$2
[ "$(id -u)" -eq 0 ] || { echo "skip: network namespaces need root"; exit 77; }
for tool in ip nft miniupnpd /usr/bin/python3; do
    command -v $tool >/dev/null 2>&1 || { echo "skip: $tool not installed"; exit 77; }
done
. "$(dirname "$0")/../lib/testlib.sh"
. "$(dirname "$0")/../lib/netns.sh"
. "$(dirname "$0")/miniupnpd_lib.sh"
tag="dn$$"
C="${tag}c" N="${tag}n" O="${tag}o" S="${tag}s"
ns_add "$C" "$N" "$O" "$S" || { fail "netns"; exit 1; }
ns_veth "$C" c0 "$N" nin
ns_veth "$N" nout "$O" oin
ns_veth "$O" oout "$S" s0
ns_addr "$C" c0 192.0.2.2/24
ns_addr "$N" nin 192.0.2.1/24
ns_addr "$N" nout 100.64.0.2/24
ns_addr "$O" oin 100.64.0.1/24
ns_addr "$O" oout 198.51.100.254/24 198.51.100.253/24
ns_addr "$S" s0 198.51.100.1/24 198.51.100.2/24
ns_route "$C" default via 192.0.2.1
ns_route "$C" 239.0.0.0/8 dev c0
ns_route "$N" default via 100.64.0.1
ns_router "$N"
ns_router "$O"
# the outer NAT, first 1:1: everything to and from 198.51.100.254 is the inner router
ip netns exec "$O" nft -f - <<'EOF2'
table ip outer {
  chain pre {
    type nat hook prerouting priority -100;
    iifname "oout" ip daddr 198.51.100.254 dnat to 100.64.0.2
  }
  chain post {
    type nat hook postrouting priority 100;
    oifname "oout" ip saddr 100.64.0.2 snat to 198.51.100.254
  }
}
EOF2
# the inner router: miniupnpd's chains and a masquerading NAT (as in map_lab_test.sh)
miniupnpd_tables "$N" || { fail "nft"; exit 1; }
miniupnpd_conf "$tmp/miniupnpd.conf" 3a5c8b1e-0d3c-4b8a-9b1a-0123456789ac
ip netns exec "$S" "$stunkitd" --listen 198.51.100.1 --alternate 198.51.100.2 --threads 1 --log-level warn \
    >/dev/null 2>"$tmp/stunkitd.err" &
pids="$pids $!"
ns_wait_port "$S" udp :3478
start_miniupnpd() {
    [ -n "${mpid:-}" ] && { kill "$mpid"; wait "$mpid" 2>/dev/null; }
    ip netns exec "$N" miniupnpd -d -P "$tmp/miniupnpd.pid" -f "$tmp/miniupnpd.conf" >"$tmp/miniupnpd.log" 2>&1 &
    mpid=$!
    pids="$pids $mpid"
    for _ in $(seq 200); do grep -q "Listening for NAT-PMP/PCP" "$tmp/miniupnpd.log" && break; sleep 0.1; done
}
start_miniupnpd
grep -q "Port forwarding is now enabled" "$tmp/miniupnpd.log" &&
    ok "1:1 outer NAT: miniupnpd sees $(grep -o 'behind [^w]*with public IP address [0-9.]*' "$tmp/miniupnpd.log")" ||
    { fail "miniupnpd: $(grep -E 'STUN|forwarding' "$tmp/miniupnpd.log" | tail -3)"; finish; exit; }

# send_to ADDR PORT: a datagram from the server namespace; 0 when the
# client's listener on PORT got it
send_to() {
    rm -f "$tmp/got"
    ip netns exec "$C" timeout 5 /usr/bin/python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("192.0.2.2", int(sys.argv[1])))
data, peer = s.recvfrom(100)
open(sys.argv[2], "w").write(data.decode())
' "$2" "$tmp/got" &
    lpid=$!
    sleep 0.3
    ip netns exec "$S" bash -c "echo hello >/dev/udp/$1/$2" 2>/dev/null
    for _ in $(seq 20); do [ -s "$tmp/got" ] && break; sleep 0.1; done
    kill $lpid 2>/dev/null
    wait $lpid 2>/dev/null
    [ -s "$tmp/got" ]
}

# 1. double NAT, but the outer one is 1:1: reachable, and proven
out=$(ip netns exec "$C" "$stunkit" map --method pcp --port 44001 --once --json --stun 198.51.100.1)
rc=$?
case $out in *'"seen": "198.51.100.254", "router": "198.51.100.254", "verdict": "reachable"'*)
    [ $rc -eq 0 ] && send_to 198.51.100.254 44001 &&
        ok "1:1 outer NAT: --stun proves the mapping reachable (and a datagram from outside arrives): exit $rc" ||
        fail "1:1: exit $rc, or nothing arrived" ;;
*) fail "1:1 outer NAT: exit $rc: $out" ;; esac

# 2. the carrier moves the line behind a CGN on 198.51.100.253; miniupnpd
# keeps its belief, and only STUN can tell
ip netns exec "$O" nft delete table ip outer
ip netns exec "$O" nft -f - <<'EOF2'
table ip cgn {
  chain post {
    type nat hook postrouting priority 100;
    oifname "oout" snat to 198.51.100.253
  }
}
EOF2
ip netns exec "$O" conntrack -F 2>/dev/null || true
for method in pcp natpmp upnp; do
    port=$((44010 + ${#method}))
    [ $method = upnp ] && port=44020
    out=$(ip netns exec "$C" "$stunkit" map --method $method --port $port --once --json --stun 198.51.100.1)
    rc=$?
    case $out in *'"external": "198.51.100.254:'*'"seen": "198.51.100.253", "router": "198.51.100.254", "verdict": "not reachable", "reason": "the internet sees 198.51.100.253, not the router'"'"'s 198.51.100.254: another NAT'*)
        if [ $rc -eq 3 ] && ! send_to 198.51.100.254 $port; then
            ok "behind a CGN, $method: mapped, but --stun says not reachable (exit 3), and indeed nothing arrives"
        else
            fail "CGN $method: exit $rc (want 3), or a datagram arrived"
        fi ;;
    *) fail "CGN $method: exit $rc: $out" ;; esac
done
out=$(ip netns exec "$C" "$stunkit" map --method pcp --port 44030 --once --stun 198.51.100.1 2>&1)
echo "$out" | grep -q "^stun        not reachable: the internet sees 198.51.100.253, not the router's 198.51.100.254" &&
    ok "the text says it in words: $(echo "$out" | tail -1)" || fail "text: $out"

# 3. miniupnpd restarted behind the CGN finds it by STUN and refuses
start_miniupnpd
grep -q "Port forwarding is now disabled" "$tmp/miniupnpd.log" || fail "miniupnpd did not notice the CGN"
for method in pcp natpmp upnp; do
    ip netns exec "$C" "$stunkit" map --method $method --port 44040 --once 2>"$tmp/err"
    rc=$?
    [ $rc -eq 1 ] && grep -q "refused" "$tmp/err" && ok "miniupnpd behind the CGN, $method: $(cat "$tmp/err")" ||
        fail "refusing miniupnpd, $method: exit $rc: $(cat "$tmp/err")"
done
finish
