#!/bin/bash
# map_quirks_test.sh STUNKIT - `stunkit map --method upnp` against a router
# with the quirks miniupnpd does not have (tests/interop/quirky_igd.py, a
# UPnP IGD v1 written here for the purpose): WANPPPConnection:1, "not
# connected", no external address, permanent leases only (725).
#
#   client ns 192.0.2.2 --- 192.0.2.1 router ns (quirky_igd.py: SSDP + SOAP)
#
# Checked: the 725 is retried as permanent and said so (JSON "permanent":
# true, the delete command printed for --once), the external address is
# reported unknown (null) rather than guessed, --list and --delete work,
# and a renewing run deletes its permanent mapping on SIGTERM (the router's
# log shows the DeletePortMapping). Root only (77 = skipped otherwise).
set -u
stunkit=$1
[ "$(id -u)" -eq 0 ] || { echo "skip: network namespaces need root"; exit 77; }
command -v ip >/dev/null 2>&1 || { echo "skip: iproute2 not installed"; exit 77; }
dir=$(cd "$(dirname "$0")" && pwd)
. "$dir/../lib/testlib.sh"
. "$dir/../lib/netns.sh"
"$stunkit" map --help | grep -q "UPnP IGD: built in" ||
    { echo "FAIL this build has no UPnP IGD (install libminiupnpc-dev and rebuild)"; exit 1; }
tag="mq$$"
C="${tag}c" R="${tag}r"
ns_add "$C" "$R" || { fail "netns"; exit 1; }
ns_veth "$C" c0 "$R" r0
ns_addr "$C" c0 192.0.2.2/24
ns_addr "$R" r0 192.0.2.1/24
ns_route "$C" default via 192.0.2.1
ns_route "$C" 239.0.0.0/8 dev c0
ns_route "$R" 239.0.0.0/8 dev r0
ip netns exec "$R" /usr/bin/python3 "$dir/../interop/quirky_igd.py" 192.0.2.1 "$tmp/igd.log" 2>"$tmp/igd.err" &
pids="$pids $!"
for _ in $(seq 50); do grep -q ready "$tmp/igd.log" 2>/dev/null && break; sleep 0.1; done
grep -q ready "$tmp/igd.log" || { fail "the quirky IGD did not start: $(cat "$tmp/igd.err")"; finish; exit; }

out=$(ip netns exec "$C" "$stunkit" map --method upnp --port 41000 --once --json 2>"$tmp/err")
rc=$?
case $out in *'"external": null, "external_port": 41000, "lifetime_s": 0, "permanent": true'*'"igd": {"version": 1, "service": "WANPPPConnection:1", "connected": false}'*)
    [ $rc -eq 0 ] && ok "725: asked again as permanent, external address unknown: $out" || fail "exit $rc" ;;
*) fail "quirky IGD: exit $rc: $out $(cat "$tmp/err")" ;; esac
grep -q "AddPortMapping 41000 UDP 192.0.2.2:41000 lease=7200" "$tmp/igd.log" &&
    grep -q "AddPortMapping 41000 UDP 192.0.2.2:41000 lease=0" "$tmp/igd.log" &&
    ok "the router saw a lease refused, then a permanent one" || fail "router log: $(cat "$tmp/igd.log")"
grep -q "stunkit map --delete --method upnp --udp --port 41000 --external-port 41000" "$tmp/err" &&
    ok "--once says how to delete it: $(cat "$tmp/err")" || fail "no delete hint: $(cat "$tmp/err")"
list=$(ip netns exec "$C" "$stunkit" map --list)
echo "$list" | grep -qE "^udp +\?:41000 +192.0.2.2:41000 +permanent" && ok "--list: $(echo "$list" | tail -1)" ||
    fail "--list: $list"
ip netns exec "$C" "$stunkit" map --delete --method upnp --port 41000 >"$tmp/del" 2>&1
rc=$?
[ $rc -eq 0 ] && grep -q "DeletePortMapping 41000 UDP" "$tmp/igd.log" && ok "--delete: $(cat "$tmp/del")" ||
    fail "--delete: exit $rc: $(cat "$tmp/del")"

ip netns exec "$C" "$stunkit" map --method upnp --port 41001 --lifetime 10 --json >"$tmp/run" 2>&1 &
p=$!
pids="$pids $p"
for _ in $(seq 50); do grep -q mapped "$tmp/run" && break; sleep 0.1; done
kill -TERM $p
wait $p
rc=$?
[ $rc -eq 0 ] && grep -q '"event": "deleted"' "$tmp/run" && grep -q "DeletePortMapping 41001 UDP" "$tmp/igd.log" &&
    ! grep -q renewed "$tmp/run" && ok "a permanent mapping is not renewed and is deleted on SIGTERM" ||
    fail "renewing run: exit $rc: $(cat "$tmp/run")"
finish
