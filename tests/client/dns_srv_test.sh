#!/bin/bash
# dns_srv_test.sh STUNKITD STUNKIT - server discovery through DNS (RFC 8489
# 8.1): a dnsmasq serving SRV and A records inside a network namespace of our
# own (ip netns exec gives it its own resolv.conf), stunkitd beside it, and
# `stunkit addr` finding it by SRV, by A fallback and by explicit port.
# Needs root and dnsmasq; exits 77 (skipped) otherwise.
set -u
stunkitd=$1
stunkit=$2
[ "$(id -u)" -eq 0 ] || { echo "skip: needs root (network namespace)"; exit 77; }
command -v dnsmasq >/dev/null 2>&1 || { echo "skip: dnsmasq not installed"; exit 77; }
. "$(dirname "$0")/../lib/testlib.sh"
. "$(dirname "$0")/../lib/netns.sh"
ns="skdns$$"
trap 'testlib_cleanup; rm -rf "/etc/netns/$ns"' EXIT

ns_add "$ns" || exit 1
mkdir -p "/etc/netns/$ns"
echo "nameserver 127.0.0.1" >"/etc/netns/$ns/resolv.conf"

ip netns exec "$ns" dnsmasq --no-daemon --port=53 --listen-address=127.0.0.1 --bind-interfaces --no-resolv \
    --no-hosts --log-facility=- \
    --srv-host=_stun._udp.example.test,stun1.example.test,34950,10,50 \
    --srv-host=_stun._tcp.example.test,stun1.example.test,34950,10,50 \
    --srv-host=_stun._udp.fleet.example.test,stun1.example.test,34950,10,50 \
    --srv-host=_stun._udp.fleet.example.test,stun2.example.test,34951,10,50 \
    --srv-host=_stun._udp.fleet.example.test,stun3.example.test,34952,20,50 \
    --host-record=stun1.example.test,127.0.0.1 --host-record=stun2.example.test,127.0.0.1 \
    --host-record=stun3.example.test,127.0.0.1 --host-record=plain.example.test,127.0.0.1 >"$tmp/dns.log" 2>&1 &
pids="$pids $!"
ip netns exec "$ns" "$stunkitd" --listen 127.0.0.1:34950 --log-level warn 2>"$tmp/s1.err" &
pids="$pids $!"
ip netns exec "$ns" "$stunkitd" --listen 127.0.0.1 --log-level warn 2>"$tmp/s2.err" & # port 3478
pids="$pids $!"
ip netns exec "$ns" "$stunkitd" --listen 127.0.0.1:34951 --log-level warn 2>"$tmp/s3.err" &
pids="$pids $!"
ns_wait_port "$ns" udp 127.0.0.1:53 && ns_wait_port "$ns" udp 127.0.0.1:34950 && ns_wait_port "$ns" udp 127.0.0.1:3478 ||
    fail "dnsmasq or stunkitd did not come up: $(cat "$tmp/dns.log" "$tmp/s1.err" "$tmp/s2.err")"

run() { ip netns exec "$ns" "$stunkit" addr --json --timeout 2000 "$@" 2>"$tmp/err"; }
out=$(run example.test)
case $out in *'"server_address": "127.0.0.1:34950"'*'"transport": "udp"'*) ok "SRV _stun._udp finds 127.0.0.1:34950" ;;
*) fail "SRV udp: $out $(cat "$tmp/err")" ;; esac
out=$(run --tcp example.test)
case $out in *'"server_address": "127.0.0.1:34950"'*'"transport": "tcp"'*) ok "SRV _stun._tcp" ;;
*) fail "SRV tcp: $out $(cat "$tmp/err")" ;; esac
out=$(run plain.example.test)
case $out in *'"server_address": "127.0.0.1:3478"'*) ok "no SRV: A record on the default port 3478" ;;
*) fail "A fallback: $out $(cat "$tmp/err")" ;; esac
out=$(run stun:stun1.example.test:34950)
case $out in *'"server_address": "127.0.0.1:34950"'*) ok "stun: URI with a port: A record, no SRV" ;;
*) fail "URI with port: $out $(cat "$tmp/err")" ;; esac
# RFC 2782: two records of one priority and weight share the clients (a
# weighted draw each time), the lower priority's is only the last resort.
# 24 lookups: both seen (a one-sided run has odds 2^-23), never the third.
ns_wait_port "$ns" udp 127.0.0.1:34951 || fail "the second server did not come up: $(cat "$tmp/s3.err")"
seen=""
for _ in $(seq 24); do
    out=$(run fleet.example.test)
    case $out in *'"server_address": "127.0.0.1:'*) seen="$seen $(echo "$out" | sed -n 's/.*"server_address": "127.0.0.1:\([0-9]*\)".*/\1/p')" ;;
    *) fail "SRV fleet: $out $(cat "$tmp/err")" ;; esac
done
n50=$(echo "$seen" | tr ' ' '\n' | grep -c '^34950$')
n51=$(echo "$seen" | tr ' ' '\n' | grep -c '^34951$')
n52=$(echo "$seen" | tr ' ' '\n' | grep -c '^34952$')
[ "$n50" -gt 0 ] && [ "$n51" -gt 0 ] && [ "$n52" -eq 0 ] &&
    ok "SRV: one priority's two servers shared ($n50 and $n51 of 24), the next priority's unused" ||
    fail "SRV weights: 34950 x$n50, 34951 x$n51, 34952 x$n52"
run nonexistent.example.test >/dev/null
[ $? -eq 1 ] && grep -q "does not resolve" "$tmp/err" && ok "an unknown name is reported" || fail "unknown name: $(cat "$tmp/err")"
finish
