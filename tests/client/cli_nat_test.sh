#!/bin/bash
# cli_nat_test.sh STUNKITD STUNKIT - `stunkit nat` when there is no verdict
# to give, on loopback: nothing listening (the ICMP port unreachable is
# heeded: exit 1, "server_unreachable", not "udp-blocked"), and a server
# that answers over TCP only (UDP refused): UDP blocked, a verdict (exit 0).
set -u
base=${STUNKIT_TEST_PORT_BASE:-21000}
stunkitd=$1
stunkit=$2
. "$(dirname "$0")/../lib/testlib.sh"
jfield() { sed -n "s/.*\"$2\": \(\"[^\"]*\"\|[a-z0-9.]\+\).*/\1/p" "$1" | head -1 | tr -d '"'; }

# 1. nothing listens: the refusal decides (a 60 s timeout would otherwise be
#    waited out: `timeout 20` turns that into exit 124)
dead=127.0.0.1:$((base + 770))
timeout 20 "$stunkit" nat --json --timeout 60000 "$dead" >"$tmp/dead.json" 2>"$tmp/dead.err"
rc=$?
if [ $rc -eq 1 ] && [ "$(jfield "$tmp/dead.json" server_unreachable)" = true ] &&
    [ "$(jfield "$tmp/dead.json" udp_refused)" = true ] && [ "$(jfield "$tmp/dead.json" classic)" = null ] &&
    [ "$(jfield "$tmp/dead.json" rtt_ms)" = null ] && [ "$(jfield "$tmp/dead.json" mapped)" = null ]; then
    ok "nothing listening: no verdict, exit 1 (not udp-blocked)"
else
    fail "nothing listening: exit $rc, $(cat "$tmp/dead.json" "$tmp/dead.err")"
fi
timeout 20 "$stunkit" nat --timeout 60000 "$dead" >"$tmp/dead.txt" 2>&1
rc=$?
if [ $rc -eq 1 ] && grep -q "UDP refused (ICMP: nothing listens there)" "$tmp/dead.txt" &&
    grep -q "nothing is known about your NAT" "$tmp/dead.txt" && ! grep -qi "blocked" "$tmp/dead.txt"; then
    ok "nothing listening: says so in words"
else
    fail "nothing listening (text): exit $rc, $(cat "$tmp/dead.txt")"
fi

# 2. a server over TCP only: UDP is refused, TCP answers: UDP blocked
tcp_only=127.0.0.1:$((base + 771))
"$stunkitd" --listen "$tcp_only" --no-udp --threads 1 --log-level warn 2>"$tmp/server.err" &
pids="$pids $!"
for _ in $(seq 50); do "$stunkit" addr --tcp --timeout 100 "$tcp_only" >/dev/null 2>&1 && break; sleep 0.1; done
timeout 20 "$stunkit" nat --json --timeout 60000 "$tcp_only" >"$tmp/tcp.json" 2>"$tmp/tcp.err"
rc=$?
if [ $rc -eq 0 ] && [ "$(jfield "$tmp/tcp.json" classic)" = udp-blocked ] &&
    [ "$(jfield "$tmp/tcp.json" tcp_answered)" = true ] && [ "$(jfield "$tmp/tcp.json" server_unreachable)" = false ]; then
    ok "TCP answers, UDP refused: udp-blocked, exit 0"
else
    fail "TCP only: exit $rc, $(cat "$tmp/tcp.json" "$tmp/tcp.err" "$tmp/server.err")"
fi
timeout 20 "$stunkit" nat "$tcp_only" >"$tmp/tcp.txt" 2>&1
grep -q "answers over TCP but refuses (ICMP) over UDP" "$tmp/tcp.txt" && ok "TCP only: says so in words" ||
    fail "TCP only (text): $(cat "$tmp/tcp.txt")"
# 3. `stunkit help nat` is `stunkit nat --help`; an unknown name is refused
"$stunkit" help nat >"$tmp/help.txt" 2>&1
rc=$?
[ $rc -eq 0 ] && grep -q "^Usage: stunkit nat" "$tmp/help.txt" && ok "stunkit help nat" ||
    fail "stunkit help nat: exit $rc, $(head -3 "$tmp/help.txt")"
"$stunkit" help nosuch >/dev/null 2>"$tmp/help.err"
rc=$?
[ $rc -eq 2 ] && grep -q "unknown command 'nosuch'" "$tmp/help.err" && ok "stunkit help nosuch: exit 2" ||
    fail "stunkit help nosuch: exit $rc, $(cat "$tmp/help.err")"
finish
