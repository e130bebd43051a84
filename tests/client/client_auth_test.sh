#!/bin/bash
# client_auth_test.sh STUNKITD STUNKIT - `stunkit addr` with credentials
# against stunkitd: long-term (the 401 answered on the same socket or
# connection, SHA-256 chosen since the server offers it), short-term, wrong
# passwords, and the password from the environment.
set -u
# ports: a base per build tree (CMake sets it), so two checkouts can test at once
base=${STUNKIT_TEST_PORT_BASE:-21000}
stunkitd=$1
stunkit=$2
. "$(dirname "$0")/../lib/testlib.sh"

"$stunkitd" --listen 127.0.0.1:$((base + 960)) --realm example.org --credential alice:s3cret --log-level warn 2>"$tmp/lt.err" &
pids="$pids $!"
"$stunkitd" --listen 127.0.0.1:$((base + 962)) --short-term --credential bob:pw --log-level warn 2>"$tmp/st.err" &
pids="$pids $!"
up 127.0.0.1:$((base + 960)) || { echo "FAIL server did not start"; cat "$tmp/lt.err"; exit 1; }
up 127.0.0.1:$((base + 962)) || true

for t in "" --tcp; do
    out=$("$stunkit" addr --json $t --username alice --password s3cret 127.0.0.1:$((base + 960)) 2>&1)
    case $out in *'"mapped": "127.0.0.1:'*) ok "long-term credentials ${t:-over udp}" ;; *) fail "long-term ${t:-udp}: $out" ;; esac
done
"$stunkit" addr --username alice --password wrong 127.0.0.1:$((base + 960)) >/dev/null 2>"$tmp/err"
[ $? -eq 1 ] && grep -q "answered 401 Unauthorized" "$tmp/err" && ok "a wrong password: 401, exit 1" || fail "wrong password: $(cat "$tmp/err")"
"$stunkit" addr 127.0.0.1:$((base + 960)) >/dev/null 2>"$tmp/err"
[ $? -eq 1 ] && grep -q "try --username and --password" "$tmp/err" && ok "no credentials: 401 explained" || fail "no creds: $(cat "$tmp/err")"
STUNKIT_PASSWORD=s3cret "$stunkit" addr --username alice 127.0.0.1:$((base + 960)) >/dev/null 2>"$tmp/err" &&
    ok "the password from STUNKIT_PASSWORD" || fail "env password: $(cat "$tmp/err")"
"$stunkit" addr --username alice 127.0.0.1:$((base + 960)) >/dev/null 2>"$tmp/err"
[ $? -eq 2 ] && ok "--username without a password is a usage error" || fail "username alone"

out=$("$stunkit" addr --json --short-term --username bob --password pw 127.0.0.1:$((base + 962)) 2>&1)
case $out in *'"mapped": "127.0.0.1:'*) ok "short-term credentials" ;; *) fail "short-term: $out" ;; esac
"$stunkit" addr --short-term --username bob --password nope 127.0.0.1:$((base + 962)) >/dev/null 2>"$tmp/err"
[ $? -eq 1 ] && grep -q "answered 401" "$tmp/err" && ok "short-term, wrong password: 401" || fail "short-term wrong: $(cat "$tmp/err")"
finish
