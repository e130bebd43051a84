#!/bin/bash
# peers_test.sh STUNKITD - real clients against our server on loopback:
# coturn's turnutils_stunclient (RFC 5780 tests) and the Vovida `stun` client
# (RFC 3489 NAT typing). Exit 77 (skipped) when neither is installed.
set -u
# ports: a base per build tree (CMake sets it), so two checkouts can test at once
base=${STUNKIT_TEST_PORT_BASE:-21000}
stunkitd=$1
have_turn=$(command -v turnutils_stunclient || true)
have_stun=$(command -v stun || true)
if [ -z "$have_turn" ] && [ -z "$have_stun" ]; then
    echo "skip: neither turnutils_stunclient (coturn) nor stun (stun-client) is installed"
    exit 77
fi
fails=0
tmp=$(mktemp -d)
"$stunkitd" --listen 127.0.0.1:$((base + 800)) --alternate 127.0.0.2 --threads 2 --software "stunkit peers test" \
    --log-level warn 2>"$tmp/server.err" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$tmp"' EXIT
# readiness: wait until the UDP socket is bound (at most 5 s)
for _ in $(seq 50); do ss -Hlun "sport = :$((base + 800))" 2>/dev/null | grep -q . && break; sleep 0.1; done
if ! kill -0 $pid 2>/dev/null; then
    echo "FAIL stunkitd did not start:"; cat "$tmp/server.err"; exit 1
fi

check() { # description, pattern, file
    if grep -qF -- "$2" "$3"; then echo "ok   $1"; else echo "FAIL $1: no '$2' in:"; cat "$3"; fails=$((fails + 1)); fi
}

if [ -n "$have_turn" ]; then
    turnutils_stunclient -p $((base + 800)) 127.0.0.1 >"$tmp/turn.out" 2>&1
    rc=$?
    [ $rc -eq 0 ] && echo "ok   turnutils_stunclient exits 0" || { echo "FAIL turnutils_stunclient exit $rc"; fails=$((fails + 1)); }
    check "turnutils_stunclient: reflexive address" "UDP reflexive addr: 127.0.0.1:" "$tmp/turn.out"
    check "turnutils_stunclient: OTHER-ADDRESS" "Other addr: : 127.0.0.2:$((base + 801))" "$tmp/turn.out"
    check "turnutils_stunclient: primary RESPONSE-ORIGIN" "Response origin: : 127.0.0.1:$((base + 800))" "$tmp/turn.out"
    check "turnutils_stunclient: CHANGE-REQUEST answered from the alternate" "Response origin: : 127.0.0.2:$((base + 801))" "$tmp/turn.out"
else
    echo "skip turnutils_stunclient: coturn not installed"
fi

if [ -n "$have_stun" ]; then
    stun 127.0.0.1:$((base + 800)) -v >"$tmp/stun.out" 2>&1
    rc=$?
    # Vovida's exit status is its verdict: 1 means "Open" (no NAT: right on loopback)
    [ $rc -eq 1 ] && echo "ok   stun (Vovida) verdict code 1" || { echo "FAIL stun exit $rc"; fails=$((fails + 1)); }
    check "stun: test I (binding)" "test I = 1" "$tmp/stun.out"
    check "stun: test II (change IP and port)" "test II = 1" "$tmp/stun.out"
    check "stun: test III (change port)" "test III = 1" "$tmp/stun.out"
    check "stun: no NAT" "is nat  = 0" "$tmp/stun.out"
    check "stun: open internet" "Primary: Open" "$tmp/stun.out"
    check "stun: SOFTWARE read as ServerName" "ServerName = stunkit peers test" "$tmp/stun.out"
    # The control: with nobody listening the same client says "Blocked".
    stun 127.0.0.1:$((base + 809)) >"$tmp/stun-none.out" 2>&1
    check "stun: control without a server" "Blocked" "$tmp/stun-none.out"
else
    echo "skip stun (Vovida): stun-client not installed"
fi

kill -TERM $pid
wait $pid
rc=$?
[ $rc -eq 0 ] && echo "ok   stunkitd stops cleanly on SIGTERM" || { echo "FAIL stunkitd exit $rc"; fails=$((fails + 1)); }
echo "$fails failed"
[ $fails -eq 0 ]
