#!/bin/bash
# turn_lab_test.sh STUNKITD STUNKIT - the TURN relay in network namespaces
# with documentation addresses only, and no --allowed-peer: peers in public
# ranges are relayed by default.
#
#   client ns  198.51.100.10 --- 198.51.100.1  server ns  203.0.113.1 --- 203.0.113.10  peer ns
#                                (listen)                  (--relay-ip)                 turnutils_peer
#
# coturn's turnutils_uclient in the client namespace relays through stunkitd
# to turnutils_peer (UDP and TCP, no loss); `stunkit turn` (two allocations
# as each other's peer) works there too; and a CreatePermission for a
# refused range is answered 403 (a request only: nothing is sent there).
# Root only (77 = skipped otherwise).
set -u
stunkitd=$1
stunkit=$2
[ "$(id -u)" -eq 0 ] || { echo "skip: network namespaces need root"; exit 77; }
command -v ip >/dev/null 2>&1 || { echo "skip: iproute2 not installed"; exit 77; }
command -v turnutils_uclient >/dev/null 2>&1 || { echo "skip: coturn's turnutils not installed"; exit 77; }
. "$(dirname "$0")/../lib/testlib.sh"
. "$(dirname "$0")/../lib/netns.sh"
tag="tl$$"
C="${tag}c" S="${tag}s" P="${tag}p"
ns_add "$C" "$S" "$P" || { fail "netns"; exit 1; }
ns_veth "$C" c0 "$S" sc
ns_veth "$S" sp "$P" p0
ns_addr "$C" c0 198.51.100.10/24
ns_addr "$S" sc 198.51.100.1/24
ns_addr "$S" sp 203.0.113.1/24
ns_addr "$P" p0 203.0.113.10/24

ip netns exec "$P" turnutils_peer -L 203.0.113.10 -p 3480 >"$tmp/peer.log" 2>&1 &
pids="$pids $!"
ip netns exec "$S" "$stunkitd" --listen 198.51.100.1 --turn --relay-ip 203.0.113.1 --credential alice:lab-secret \
    --realm lab.example --threads 1 --log-level warn 2>"$tmp/server.err" &
spid=$!
pids="$pids $spid"
ns_wait_port "$S" udp :3478

for mode in udp tcp; do
    flag=""; [ $mode = tcp ] && flag="-t"
    ip netns exec "$C" timeout 60 turnutils_uclient $flag -u alice -w lab-secret -e 203.0.113.10 -r 3480 -n 50 -m 4 \
        -l 160 -p 3478 198.51.100.1 >"$tmp/uclient.log" 2>&1
    line=$(grep "start_mclient: tot_send_msgs=" "$tmp/uclient.log" | tail -1)
    lost=$(sed -n 's/.*Total lost packets \([0-9]*\) .*/\1/p' "$tmp/uclient.log" | tail -1)
    case $line in *"tot_send_msgs=200, tot_recv_msgs=200"*) [ "$lost" = 0 ] && ok "uclient over $mode through 203.0.113.1 to 203.0.113.10: 200 of 200" || fail "$mode: lost $lost" ;;
    *) fail "uclient over $mode: '$line', lost '$lost'"; tail -3 "$tmp/uclient.log" ;; esac
done

out=$(ip netns exec "$C" "$stunkit" turn --json --username alice --password lab-secret 198.51.100.1)
case $out in *'"ok": true'*'"relayed": "203.0.113.1:'*) ok "stunkit turn in the lab: $out" ;; *) fail "stunkit turn: $out" ;; esac

# a refused range, asked for by CreatePermission: 403 (uclient's -e is only a
# request here: the permission is refused, so nothing is ever relayed to it)
ip netns exec "$C" timeout 20 turnutils_uclient -u alice -w lab-secret -e 10.1.2.3 -r 3480 -n 1 -m 1 -p 3478 198.51.100.1 \
    >"$tmp/refused.log" 2>&1
grep -q "error 403" "$tmp/refused.log" && ok "CreatePermission for 10.1.2.3: 403" ||
    fail "refused peer: $(grep -i error "$tmp/refused.log" | head -2)"
kill -USR1 $spid
for _ in $(seq 20); do grep -q turn_peer_refused "$tmp/server.err" && break; sleep 0.1; done
refused=$(awk '$1=="turn_peer_refused"{print $2; exit}' "$tmp/server.err")
[ "${refused:-0}" -ge 1 ] && ok "turn_peer_refused counted ($refused)" || fail "turn_peer_refused: '$refused'"
finish
