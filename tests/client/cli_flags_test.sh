#!/bin/bash
# cli_flags_test.sh STUNKITD STUNKIT - the CLI as a user meets it, on
# loopback: one meaning per flag across subcommands (-t/--timeout is
# milliseconds everywhere), conflicting flags refused with one line and exit
# 2, one clear line per failure, `bench` against a dead server and with host
# names and stun: URIs, its progress, and the JSON keys the man page lists.
set -u
base=${STUNKIT_TEST_PORT_BASE:-21000}
stunkitd=$1
stunkit=$2
. "$(dirname "$0")/../lib/testlib.sh"
man=$(dirname "$0")/../../man/stunkit.1

# refused: exit 2 and exactly one line on stderr containing FRAGMENT
refused() { # description fragment args...
    local what=$1 frag=$2
    shift 2
    "$stunkit" "$@" >/dev/null 2>"$tmp/err"
    rc=$?
    if [ $rc -eq 2 ] && [ "$(wc -l <"$tmp/err")" -eq 1 ] && grep -qF -- "$frag" "$tmp/err"; then ok "$what"; else
        fail "$what: exit $rc, stderr: $(cat "$tmp/err")"; fi
}
refused "addr --tls --dtls" "exclude each other" addr --tls --dtls 127.0.0.1
refused "addr --tcp --tls" "exclude each other" addr --tcp --tls 127.0.0.1
refused "addr --password without --username" "--password needs --username" addr --password x 127.0.0.1
refused "addr --short-term without --username" "--short-term needs --username" addr --short-term 127.0.0.1
refused "addr --insecure over UDP" "--insecure only applies" addr --insecure 127.0.0.1
refused "addr --insecure with --ca-file" "exclude each other" addr --tls --insecure --ca-file /dev/null 127.0.0.1
refused "nat --max-lifetime without --lifetime" "--max-lifetime needs --lifetime" nat --max-lifetime 30 127.0.0.1
refused "bench -t is milliseconds (5 is too short)" "--timeout '5'" bench -t 5 127.0.0.1
refused "bench --threads 0" "--threads '0'" bench --threads 0 127.0.0.1
refused "addr -t is milliseconds (0 refused)" "--timeout '0'" addr -t 0 127.0.0.1
refused "nat -t is milliseconds (5 refused)" "--timeout '5'" nat -t 5 127.0.0.1

# a server that answers 401 (credentials required): one line, no second
# "no server answered" that contradicts it
srv=127.0.0.1:$((base + 774))
"$stunkitd" --listen "$srv" --threads 1 --log-level error --credential alice:secret --rate-limit 0 2>"$tmp/d.err" &
pids="$pids $!"
up "$srv" || fail "stunkitd did not come up: $(cat "$tmp/d.err")"
"$stunkit" addr --timeout 2000 "$srv" >/dev/null 2>"$tmp/err"
rc=$?
if [ $rc -eq 1 ] && [ "$(wc -l <"$tmp/err")" -eq 1 ] && grep -q "answered 401 Unauthorized (try --username" "$tmp/err"; then
    ok "a 401 is one line: $(cat "$tmp/err")"
else
    fail "401: exit $rc, stderr: $(cat "$tmp/err")"
fi
# nat against it: the 401 is named at once (it said "the server is down, not
# a STUN server, or not reachable" after 3 s)
t0=$(date +%s%N)
"$stunkit" nat "$srv" >"$tmp/out" 2>&1
rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
if [ $rc -eq 1 ] && grep -q "answered a plain Binding request with 401" "$tmp/out" &&
    grep -q "wants credentials" "$tmp/out" && ! grep -q "down, not a STUN server" "$tmp/out" && [ $ms -lt 2500 ]; then
    ok "nat against a server that wants credentials: the 401 named, in $ms ms"
else
    fail "nat against a 401 server: exit $rc after $ms ms: $(cat "$tmp/out")"
fi
# bench against it: the 401, not the rate limit
"$stunkit" bench -d 1 "$srv" >"$tmp/out" 2>"$tmp/err"
rc=$?
if [ $rc -eq 1 ] && grep -q "with 401 (Unauthorized): it wants credentials" "$tmp/err" && ! grep -q "rate limit" "$tmp/out" "$tmp/err"; then
    ok "bench against a server that wants credentials: $(cat "$tmp/err")"
else
    fail "bench against a 401 server: exit $rc, out: $(cat "$tmp/out"), err: $(cat "$tmp/err")"
fi
# nothing listening: one line, the refusal in words, no library jargon, and
# at once (the ICMP refusal was held for the whole timeout)
t0=$(date +%s%N)
"$stunkit" addr --timeout 10000 127.0.0.1:$((base + 775)) >/dev/null 2>"$tmp/err"
rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
if [ $rc -eq 1 ] && [ "$(wc -l <"$tmp/err")" -eq 1 ] && grep -q "nothing listens there" "$tmp/err" &&
    ! grep -q "system call failed\|see errno" "$tmp/err" && [ $ms -lt 3000 ]; then
    ok "nothing listening is one line, in $ms ms of a 10 s timeout: $(cat "$tmp/err")"
else
    fail "nothing listening: exit $rc after $ms ms, stderr: $(cat "$tmp/err")"
fi
# -V is the version, as stunkitd -V; -t in every command that waits
"$stunkit" -V >"$tmp/out" 2>&1 && grep -q "^stunkit [0-9]" "$tmp/out" && ok "stunkit -V: $(cat "$tmp/out")" ||
    fail "stunkit -V: $(cat "$tmp/out")"
refused "turn -t is milliseconds (5 refused)" "--timeout '5'" turn -t 5 --username a --password b 127.0.0.1
refused "map -t is milliseconds (5 refused)" "--timeout '5'" map -t 5 --port 4000
refused "punch -t is milliseconds (5 refused)" "--timeout '5'" punch -t 5 --offer 127.0.0.1
# a TURN relay that refuses the peer: the peer and the way to open it named
turnsrv=127.0.0.1:$((base + 920))
"$stunkitd" --listen "$turnsrv" --threads 1 --log-level error --credential alice:secret --turn --no-tcp \
    --relay-ports $((base + 921))-$((base + 929)) 2>"$tmp/t.err" &
pids="$pids $!"
up "$turnsrv" || fail "stunkitd --turn did not come up: $(cat "$tmp/t.err")"
"$stunkit" turn -t 3000 --username alice --password secret "$turnsrv" >/dev/null 2>"$tmp/err"
rc=$?
if [ $rc -eq 1 ] && [ "$(wc -l <"$tmp/err")" -eq 1 ] && grep -q "refuses the peer 127.0.0.1:" "$tmp/err" &&
    grep -q -- "--allowed-peer" "$tmp/err"; then
    ok "turn, peer refused: $(cat "$tmp/err")"
else
    fail "turn peer refusal: exit $rc: $(cat "$tmp/err")"
fi
# Ctrl-C: 130, with what was measured said first
plainsrv=127.0.0.1:$((base + 930))
"$stunkitd" --listen "$plainsrv" --threads 1 --log-level error --rate-limit 0 2>"$tmp/p.err" &
pids="$pids $!"
up "$plainsrv" || fail "stunkitd did not come up: $(cat "$tmp/p.err")"
"$stunkit" bench -d 10 "$plainsrv" >"$tmp/out" 2>&1 &
bp=$!
sleep 1.2
kill -INT $bp
wait $bp
rc=$?
if [ $rc -eq 130 ] && grep -q "answered" "$tmp/out" && grep -q "lost" "$tmp/out"; then
    ok "bench interrupted: exit 130 with the summary: $(grep answered "$tmp/out" | tail -1)"
else
    fail "bench interrupted: exit $rc: $(cat "$tmp/out")"
fi

# bench: a dead server is said so at once (exit 1), not "answered 0 ... p50 0 ns"
"$stunkit" bench -d 1 127.0.0.1:$((base + 775)) >"$tmp/out" 2>"$tmp/err"
rc=$?
if [ $rc -eq 1 ] && grep -q "does not answer a Binding request" "$tmp/err" && [ ! -s "$tmp/out" ]; then
    ok "bench, dead server: $(cat "$tmp/err")"
else
    fail "bench dead server: exit $rc, out: $(cat "$tmp/out"), err: $(cat "$tmp/err")"
fi
# bench against a host name and a stun: URI, progress on stderr, -t in ms
open=127.0.0.1:$((base + 776))
"$stunkitd" --listen "$open" --threads 1 --log-level error --rate-limit 0 2>"$tmp/d2.err" &
pids="$pids $!"
up "$open" || fail "stunkitd did not come up: $(cat "$tmp/d2.err")"
"$stunkit" bench -d 2.5 -s 2 -w 2 -t 500 --threads 2 "stun:localhost:$((base + 776))" >"$tmp/out" 2>"$tmp/err"
rc=$?
if [ $rc -eq 0 ] && grep -q "answered   [1-9]" "$tmp/out" && [ "$(grep -c "answered (" "$tmp/err")" -eq 2 ]; then
    ok "bench stun:localhost: progress twice in 2.5 s, then the summary"
else
    fail "bench URI: exit $rc, out: $(cat "$tmp/out"), err: $(cat "$tmp/err")"
fi
"$stunkit" bench -d 0.5 -s 1 -w 1 --json "localhost:$((base + 776))" >"$tmp/bench.json" 2>"$tmp/err"
rc=$?
[ $rc -eq 0 ] && [ ! -s "$tmp/err" ] && ok "bench --json: no progress on a non-terminal stderr" ||
    fail "bench --json: exit $rc, err: $(cat "$tmp/err")"
# a server that stops answering (its per-source budget spent): the requests
# in flight at the end are lost, not left out ("lost": 0 before)
strict=127.0.0.1:$((base + 777))
"$stunkitd" --listen "$strict" --threads 1 --log-level error --rate-limit 20 2>"$tmp/d3.err" &
pids="$pids $!"
up "$strict" || fail "stunkitd did not come up: $(cat "$tmp/d3.err")"
sleep 1.1 # the probe's own request refilled
"$stunkit" bench -d 0.3 -s 2 -w 50 -t 1000 --json "$strict" >"$tmp/strict.json" 2>"$tmp/err"
answered=$(sed -n 's/.*"answered": \([0-9]*\).*/\1/p' "$tmp/strict.json")
lost=$(sed -n 's/.*"lost": \([0-9]*\).*/\1/p' "$tmp/strict.json")
# 100 in flight, a budget's worth answered, the rest unanswered when the run
# (0.3 s, shorter than the 1 s timeout) and its drain end: lost
[ -n "$lost" ] && [ "$answered" -le 60 ] && [ "$lost" -ge 40 ] &&
    ok "bench against a spent budget: $answered answered, $lost lost" ||
    fail "bench spent budget: $(cat "$tmp/strict.json") $(cat "$tmp/err")"

# every JSON key the commands print is in the man page's JSON OUTPUT
keys() { grep -o '"[a-z_0-9]*":' "$1" | tr -d '":' | sort -u; }
"$stunkit" addr --json "$open" >"$tmp/addr.json"
"$stunkit" nat --json "$open" >"$tmp/nat.json"
for f in addr bench nat; do
    missing=""
    for k in $(keys "$tmp/$f.json"); do
        sed -n '/^\.SH JSON OUTPUT/,/^\.SH [A-Z]/p' "$man" | grep -E '^\.(B|BR) ' | grep -qw -- "$k" ||
            missing="$missing $k"
    done
    [ -z "$missing" ] && ok "$f --json: every key documented in stunkit(1)" || fail "$f --json keys not in the man page:$missing"
done
[ $fails -eq 0 ]
