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
. "$(dirname "$0")/testlib.sh"
man=$(dirname "$0")/../man/stunkit.1

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
# nothing listening: one line, the refusal in words, no library jargon
"$stunkit" addr --timeout 1500 127.0.0.1:$((base + 775)) >/dev/null 2>"$tmp/err"
rc=$?
if [ $rc -eq 1 ] && [ "$(wc -l <"$tmp/err")" -eq 1 ] && grep -q "nothing listens there" "$tmp/err" &&
    ! grep -q "system call failed\|see errno" "$tmp/err"; then
    ok "nothing listening is one line: $(cat "$tmp/err")"
else
    fail "nothing listening: exit $rc, stderr: $(cat "$tmp/err")"
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
