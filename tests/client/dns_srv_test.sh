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
    --host-record=stun1.example.test,127.0.0.1 --host-record=plain.example.test,127.0.0.1 >"$tmp/dns.log" 2>&1 &
pids="$pids $!"
ip netns exec "$ns" "$stunkitd" --listen 127.0.0.1:34950 --log-level warn 2>"$tmp/s1.err" &
pids="$pids $!"
ip netns exec "$ns" "$stunkitd" --listen 127.0.0.1 --log-level warn 2>"$tmp/s2.err" & # port 3478
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
run nonexistent.example.test >/dev/null
[ $? -eq 1 ] && grep -q "does not resolve" "$tmp/err" && ok "an unknown name is reported" || fail "unknown name: $(cat "$tmp/err")"
finish
