#!/bin/bash
# cli_turn_test.sh STUNKITD STUNKIT - `stunkit turn`, the library's TURN
# client end to end on loopback: against stunkitd (relaying over UDP, TCP,
# TLS and DTLS with the certificate checked, a wrong password, a refused peer
# that leaves nothing behind) and against coturn's turnserver (our client, a
# server no one here wrote, over the same four transports).
set -u
stunkitd=$1
stunkit=$2
. "$(dirname "$0")/../lib/testlib.sh"
base=${STUNKIT_TEST_PORT_BASE:-21000}
open=$((base + 370)) closed=$((base + 371)) coturn=$((base + 372)) secure=$((base + 374)) coturn_secure=$((base + 375))
wait_udp() { for _ in $(seq 50); do ss -Hlun "sport = :$1" 2>/dev/null | grep -q . && return 0; sleep 0.1; done; return 1; }
# a certificate for the address 127.0.0.1 (an IP SAN), trusted through --ca-file
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=127.0.0.1 \
    -addext "subjectAltName=IP:127.0.0.1" -days 1 -keyout "$tmp/key.pem" -out "$tmp/cert.pem" 2>/dev/null ||
    fail "cannot make a certificate"

"$stunkitd" --listen 127.0.0.1:$open --turn --credential alice:turn-secret --allowed-peer 127.0.0.1/32 \
    --tls-cert "$tmp/cert.pem" --tls-key "$tmp/key.pem" --tls-port $secure \
    --relay-ports $((base + 400))-$((base + 449)) --threads 1 --log-level warn 2>"$tmp/open.err" &
pids="$pids $!"
"$stunkitd" --listen 127.0.0.1:$closed --turn --credential alice:turn-secret \
    --relay-ports $((base + 450))-$((base + 499)) --no-tcp --threads 1 --log-level warn 2>"$tmp/closed.err" &
cpid=$!
pids="$pids $cpid"
wait_udp $open && wait_udp $closed || fail "stunkitd did not start"

out=$("$stunkit" turn --json --username alice --password turn-secret 127.0.0.1:$open)
rc=$?
case $out in *'"ok": true'*'"indications": true, "channels": true'*) [ $rc -eq 0 ] && ok "stunkitd relays both ways: $out" || fail "exit $rc: $out" ;;
*) fail "stunkitd: exit $rc: $out" ;; esac
# the same over TCP, TLS and DTLS (RFC 7065 URIs too), the certificate checked
for how in "--tcp 127.0.0.1:$open" "--tls --ca-file $tmp/cert.pem 127.0.0.1:$secure" \
    "--dtls --ca-file $tmp/cert.pem 127.0.0.1:$secure" "turn:127.0.0.1:$open?transport=tcp" \
    "--ca-file $tmp/cert.pem turns:127.0.0.1:$secure?transport=udp"; do
    # shellcheck disable=SC2086
    out=$("$stunkit" turn --json --username alice --password turn-secret $how)
    rc=$?
    case $out in *'"ok": true'*'"indications": true, "channels": true, "refreshed": true'*)
        [ $rc -eq 0 ] && ok "stunkitd, $how: $out" || fail "$how: exit $rc: $out" ;;
    *) fail "stunkitd, $how: exit $rc: $out" ;; esac
done
"$stunkit" turn --username alice --password turn-secret --tls 127.0.0.1:$secure 2>"$tmp/untrusted.txt"
rc=$?
grep -q "certificate was not accepted: self-signed certificate" "$tmp/untrusted.txt" && [ $rc -eq 1 ] &&
    ok "an untrusted certificate is refused: $(cat "$tmp/untrusted.txt")" || fail "untrusted: exit $rc: $(cat "$tmp/untrusted.txt")"
for bad in "--tcp --tls 127.0.0.1:$open" "--insecure 127.0.0.1:$open" "--tls --insecure --ca-file $tmp/cert.pem 127.0.0.1:$open" \
    "--dtls turn:127.0.0.1?transport=tcp" "turn:127.0.0.1?transport=sctp"; do
    # shellcheck disable=SC2086
    "$stunkit" turn --username alice --password x $bad >/dev/null 2>"$tmp/usage.txt"
    [ $? -eq 2 ] && ok "refused: $bad: $(cat "$tmp/usage.txt")" || fail "accepted: $bad"
done
# nothing listens: the ICMP port unreachable is heeded (no 10 s wait)
start=$(date +%s%N)
"$stunkit" turn --username alice --password x 127.0.0.1:$((base + 376)) 2>"$tmp/dead.txt"
rc=$? ms=$((($(date +%s%N) - start) / 1000000))
grep -q "nothing listens there" "$tmp/dead.txt" && [ $rc -eq 1 ] && [ $ms -lt 5000 ] &&
    ok "no server: $(cat "$tmp/dead.txt") ($ms ms)" || fail "no server: exit $rc after $ms ms: $(cat "$tmp/dead.txt")"

out=$("$stunkit" turn --json --username alice --password wrong 127.0.0.1:$open)
rc=$?
case $out in *'"failed_step": "allocate", "error_code": 401'*) [ $rc -eq 1 ] && ok "a wrong password: allocate, 401, exit 1" || fail "exit $rc" ;;
*) fail "wrong password: exit $rc: $out" ;; esac
"$stunkit" turn --username alice --password turn-secret 127.0.0.1:$closed 2>"$tmp/refused.txt"
rc=$?
grep -q "create permission failed: the server refuses the peer 127.0.0.1:" "$tmp/refused.txt" && [ $rc -eq 1 ] &&
    ok "loopback peers refused by default: $(cat "$tmp/refused.txt")" || fail "refused peer: exit $rc: $(cat "$tmp/refused.txt")"
kill -USR1 $cpid
for _ in $(seq 20); do grep -q "turn_live" "$tmp/closed.err" && break; sleep 0.1; done
grep -Eq "turn_live +0 " "$tmp/closed.err" && ok "the failed check deleted its allocations" ||
    fail "allocations left: $(grep turn_live "$tmp/closed.err")"

# stunkit bench --turn: allocations with channels to an echo peer, every echo checked
echo_bin="$(dirname "$stunkit")/bench_udp_echo"
if [ -x "$echo_bin" ]; then
    "$echo_bin" 127.0.0.1 $((base + 373)) &
    pids="$pids $!"
    wait_udp $((base + 373))
    out=$("$stunkit" bench --turn --json --peer 127.0.0.1:$((base + 373)) --username alice --password turn-secret \
        -s 4 -w 4 -d 0.5 127.0.0.1:$open)
    trips=$(echo "$out" | sed -n 's/.*"relayed_round_trips": \([0-9]*\).*/\1/p')
    case $out in *'"bad": 0}'*) [ "${trips:-0}" -gt 100 ] && ok "bench --turn: $trips relayed round trips, none bad" ||
        fail "bench --turn: $out" ;; *) fail "bench --turn: $out" ;; esac
else
    echo "skip bench --turn: no bench_udp_echo beside stunkit"
fi

if command -v turnserver >/dev/null 2>&1; then
    turnserver -L 127.0.0.1 -p $coturn --tls-listening-port $coturn_secure --cert "$tmp/cert.pem" \
        --pkey "$tmp/key.pem" --lt-cred-mech --user alice:turn-secret --realm example.org \
        --allow-loopback-peers --no-cli -m 1 --min-port $((base + 500)) --max-port $((base + 549)) \
        --no-stdout-log --log-file "$tmp/coturn.log" --pidfile "$tmp/coturn.pid" >/dev/null 2>&1 &
    pids="$pids $!"
    wait_udp $coturn && wait_udp $coturn_secure || fail "coturn did not start"
    for how in "127.0.0.1:$coturn" "--tcp 127.0.0.1:$coturn" "--tls --ca-file $tmp/cert.pem 127.0.0.1:$coturn_secure" \
        "--dtls --ca-file $tmp/cert.pem 127.0.0.1:$coturn_secure"; do
        # shellcheck disable=SC2086
        out=$("$stunkit" turn --json --username alice --password turn-secret $how)
        rc=$?
        case $out in *'"ok": true'*'"indications": true, "channels": true, "refreshed": true'*)
            [ $rc -eq 0 ] && ok "our client against coturn's turnserver, $how: $out" || fail "exit $rc" ;;
        *) fail "coturn, $how: exit $rc: $out" ;; esac
    done
    [ -f "$tmp/coturn.pid" ] && pids="$pids $(cat "$tmp/coturn.pid")"
else
    echo "skip coturn: turnserver not installed"
fi
finish
