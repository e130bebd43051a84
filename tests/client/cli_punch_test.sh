#!/bin/bash
# cli_punch_test.sh STUNKITD STUNKIT - `stunkit punch SERVER ROOM` on
# loopback against stunkitd --rendezvous: two peers meet and connect (the
# first offers), a third finds the room full, a wrong password and a
# server without the rendezvous fail with one clear line and exit 1, bad
# usage exits 2; the server's counters show the rooms opened and closed;
# --secret: a derived room, sealed descriptions (a forged or foreign one
# refused), no password on the wire.
# (The NAT matrix through rooms is tests/punch_lab_test.sh.)
set -u
stunkitd=$1
stunkit=$2
. "$(dirname "$0")/../lib/testlib.sh"
base=${STUNKIT_TEST_PORT_BASE:-21000}
port=$((base + 360)) plain=$((base + 361)) metrics=$((base + 362))

"$stunkitd" --listen 127.0.0.1:$port --credential alice:secret --turn --relay-ports $((base + 700))-$((base + 749)) \
    --allowed-peer 127.0.0.0/8 --rendezvous --rendezvous-user-rooms 4 --metrics 127.0.0.1:$metrics \
    --no-tcp --threads 2 --log-level warn 2>"$tmp/server.err" &
pids="$pids $!"
"$stunkitd" --listen 127.0.0.1:$plain --credential alice:secret --no-tcp --threads 1 --log-level warn 2>/dev/null &
pids="$pids $!"
up 127.0.0.1:$port && up 127.0.0.1:$plain || { fail "servers did not start: $(cat "$tmp/server.err")"; finish; }

srv=127.0.0.1:$port
room="cli-$$"
"$stunkit" punch $srv "$room" --username alice --password secret --json --count 3 --wait 10 >"$tmp/a.json" 2>"$tmp/a.err" &
a=$!
sleep 0.3
"$stunkit" punch $srv "$room" --username alice --password secret --json --count 3 --wait 10 >"$tmp/b.json" 2>"$tmp/b.err" &
b=$!
sleep 0.3
# a third peer while both are in: the room is full
"$stunkit" punch $srv "$room" --username alice --password secret --count 1 --wait 5 >/dev/null 2>"$tmp/c.err"
rc_c=$?
wait $b; rc_b=$?
wait $a; rc_a=$?
if [ $rc_a -eq 0 ] && [ $rc_b -eq 0 ] && grep -q '"connected": true' "$tmp/a.json" && grep -q '"connected": true' "$tmp/b.json" &&
    grep -q '"role": "offer"' "$tmp/a.json" && grep -q '"role": "answer"' "$tmp/b.json" &&
    grep -q '"answered": 3' "$tmp/a.json"; then
    ok "two peers meet in room $room and connect: $(cat "$tmp/a.json")"
else
    fail "meeting: A exit $rc_a $(cat "$tmp/a.json" "$tmp/a.err") / B exit $rc_b $(cat "$tmp/b.json" "$tmp/b.err")"
fi
if [ $rc_c -eq 1 ] && grep -q "403.*room is full" "$tmp/c.err" && [ "$(wc -l <"$tmp/c.err")" -eq 1 ]; then
    ok "a third peer: $(cat "$tmp/c.err")"
else
    fail "third peer: exit $rc_c: $(cat "$tmp/c.err")"
fi

"$stunkit" punch $srv "other-$$" --username alice --password wrong --count 1 --wait 5 >/dev/null 2>"$tmp/w.err"
rc=$?
[ $rc -eq 1 ] && grep -q "401.*wrong username or password" "$tmp/w.err" && [ "$(wc -l <"$tmp/w.err")" -eq 1 ] &&
    ok "wrong password: $(cat "$tmp/w.err")" || fail "wrong password: exit $rc: $(cat "$tmp/w.err")"

# alone in a room: the wait ends with a plain reason, and the place is freed
t0=$(date +%s%N)
"$stunkit" punch $srv "alone-$$" --username alice --password secret --count 1 --wait 1 --json >"$tmp/l.json" 2>/dev/null
rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
[ $rc -eq 1 ] && grep -q '"connected": false' "$tmp/l.json" && grep -q "did not come" "$tmp/l.json" &&
    ok "nobody comes: exit 1 after $ms ms: $(cat "$tmp/l.json")" || fail "alone: exit $rc: $(cat "$tmp/l.json")"

# every place was freed on the way out: no room is left open
exec 3<>/dev/tcp/127.0.0.1/$metrics
printf 'GET /metrics HTTP/1.0\r\n\r\n' >&3
cat <&3 >"$tmp/metrics.txt"
exec 3<&-
open=$(tr -d '\r' <"$tmp/metrics.txt" | sed -n 's/^stunkitd_rendezvous_rooms //p')
met=$(tr -d '\r' <"$tmp/metrics.txt" | sed -n 's/^stunkitd_rendezvous_peers_met_total //p')
full=$(tr -d '\r' <"$tmp/metrics.txt" | sed -n 's/^stunkitd_rendezvous_refused_total{reason="full"} //p')
[ "$open" = 0 ] && [ "$met" = 1 ] && [ "$full" = 1 ] && ok "metrics: rooms open 0, peers met 1, refused full 1" ||
    fail "metrics: rooms open '$open', peers met '$met', refused full '$full'"

# usage errors: exit 2, one line
usage() {
    local what=$1 frag=$2
    shift 2
    "$stunkit" punch "$@" >/dev/null 2>"$tmp/u.err"
    local rc=$?
    [ $rc -eq 2 ] && grep -qF -- "$frag" "$tmp/u.err" && ok "$what" || fail "$what: exit $rc: $(cat "$tmp/u.err")"
}
usage "ROOM with --offer" "no --offer, --answer or --sdp" $srv room1 --offer --username alice --password secret
usage "ROOM without credentials" "needs the server's credentials" $srv room1
usage "a room name with a space" "expected 1 to 64" $srv "bad room" --username alice --password secret
usage "--wait 0" "--wait '0'" $srv room1 --wait 0 --username alice --password secret
usage "three positional arguments" "expected SERVER [ROOM]" $srv room1 extra
usage "--insecure without a TLS server" "is for a TLS server" $srv room1 --insecure --username alice --password secret
usage "--insecure with --ca-file" "contradict" turns:$srv room1 --insecure --ca-file /dev/null --username alice --password secret
usage "a malformed server" "expected host[:port]" "stun:[::1" room1 --username alice --password secret
usage "a malformed --fallback" "--fallback 'stun:[::1'" $srv room1 --fallback "stun:[::1" --username alice --password secret
usage "a TLS --fallback to a plain server" "nor may a fallback be" $srv room1 --fallback turns:$srv --username alice --password secret
usage "a plain --fallback to a TLS server" "the fallbacks must be too" turns:$srv room1 --fallback $srv --username alice --password secret
usage "--fallback without a room" "is for the rendezvous" $srv --offer --fallback $srv
usage "an IPv6 --fallback to an IPv4 server" "not of the server's address family" $srv room1 --fallback "[::1]:3478" --username alice --password secret
usage "eight --fallback" "at most 7" $srv room1 $(for i in 1 2 3 4 5 6 7 8; do printf -- '--fallback 127.0.0.%d ' $i; done) --username alice --password secret

# IPv6: a server on ::1, two peers meet over it and connect on ::1 host
# candidates
v6=$((base + 363))
"$stunkitd" --listen "[::1]:$v6" --credential alice:secret --turn --relay-ip ::1 \
    --relay-ports $((base + 750))-$((base + 759)) --allowed-peer ::1/128 --rendezvous --no-tcp --threads 1 \
    --log-level warn 2>"$tmp/v6.err" &
pids="$pids $!"
if up "[::1]:$v6"; then
    "$stunkit" punch "[::1]:$v6" "v6-$$" --username alice --password secret --json --count 3 --wait 10 >"$tmp/a6.json" 2>&1 &
    a=$!
    sleep 0.3
    "$stunkit" punch "[::1]:$v6" "v6-$$" --username alice --password secret --json --count 3 --wait 10 >"$tmp/b6.json" 2>&1
    rc_b=$?
    wait $a
    rc_a=$?
    if [ $rc_a -eq 0 ] && [ $rc_b -eq 0 ] && grep -q '"path": "direct", "local": {"type": "host", "address": "\[::1\]:' "$tmp/a6.json" &&
        grep -q '"answered": 3' "$tmp/b6.json"; then
        ok "IPv6: two peers connect over ::1: $(cat "$tmp/a6.json")"
    else
        fail "IPv6: A exit $rc_a $(cat "$tmp/a6.json") / B exit $rc_b $(cat "$tmp/b6.json")"
    fi
else
    fail "the IPv6 server did not start: $(cat "$tmp/v6.err")"
fi

# a server without --rendezvous drops the method (RFC 8489 6.3): the
# client says so after its retransmissions
"$stunkit" punch 127.0.0.1:$plain "r-$$" --username alice --password secret --count 1 >/dev/null 2>"$tmp/n.err"
rc=$?
[ $rc -eq 1 ] && grep -q "rendezvous" "$tmp/n.err" && ok "server without the rendezvous: $(cat "$tmp/n.err")" ||
    fail "no rendezvous: exit $rc: $(cat "$tmp/n.err")"
# --secret (stunkit/secret.h): the room comes from the secret (no ROOM
# given), the ICE passwords never cross the wire, the descriptions are
# sealed; both sides say they are authenticated
"$stunkit" punch $srv --secret "open sesame $$" --username alice --password secret --json --count 2 --wait 10 \
    >"$tmp/sa.json" 2>"$tmp/sa.err" &
a=$!
sleep 0.3
"$stunkit" punch $srv --secret "open sesame $$" --username alice --password secret --json --count 2 --wait 10 \
    >"$tmp/sb.json" 2>"$tmp/sb.err"
rc_b=$?
wait $a; rc_a=$?
room_a=$(sed -n 's/.*"room": "\([^"]*\)".*/\1/p' "$tmp/sa.json")
if [ $rc_a -eq 0 ] && [ $rc_b -eq 0 ] && grep -q '"authenticated": true' "$tmp/sa.json" &&
    grep -q '"authenticated": true' "$tmp/sb.json" && [[ "$room_a" =~ ^s[0-9a-f]{31}$ ]] &&
    grep -q "\"room\": \"$room_a\"" "$tmp/sb.json" && grep -q '"answered": 2' "$tmp/sa.json"; then
    ok "--secret: both sides in the derived room $room_a, authenticated, connected"
else
    fail "--secret: A exit $rc_a $(cat "$tmp/sa.json" "$tmp/sa.err") / B exit $rc_b $(cat "$tmp/sb.json" "$tmp/sb.err")"
fi
# another secret: another room; they never meet
"$stunkit" punch $srv --secret "one $$" --username alice --password secret --json --count 1 --wait 2 >"$tmp/s1.json" 2>/dev/null &
a=$!
"$stunkit" punch $srv --secret "two $$" --username alice --password secret --json --count 1 --wait 2 >"$tmp/s2.json" 2>/dev/null
rc_b=$?
wait $a; rc_a=$?
[ $rc_a -eq 1 ] && [ $rc_b -eq 1 ] && grep -q "did not come" "$tmp/s1.json" && grep -q "did not come" "$tmp/s2.json" &&
    ok "two secrets: two rooms, nobody meets (exit 1 both)" || fail "two secrets: A $rc_a $(cat "$tmp/s1.json") / B $rc_b $(cat "$tmp/s2.json")"
# someone without the secret who learned the derived room: the side with
# the secret does not take its description (exit 1, a plain reason)
"$stunkit" punch $srv --secret "gate $$" --username alice --password secret --json --count 1 --wait 1 >"$tmp/g0.json" 2>/dev/null
groom=$(sed -n 's/.*"room": "\([^"]*\)".*/\1/p' "$tmp/g0.json")
"$stunkit" punch $srv --secret "gate $$" --username alice --password secret --json --count 1 --wait 5 >"$tmp/g1.json" 2>/dev/null &
a=$!
sleep 0.3
"$stunkit" punch $srv "$groom" --username alice --password secret --json --count 1 --wait 5 --timeout 2000 \
    >"$tmp/g2.json" 2>/dev/null
rc_b=$?
wait $a; rc_a=$?
[ -n "$groom" ] && [ $rc_a -eq 1 ] && [ $rc_b -eq 1 ] && grep -q "has no secret" "$tmp/g1.json" &&
    grep -q '"connected": false' "$tmp/g2.json" &&
    ok "a stranger in the derived room: refused ($(sed -n 's/.*"reason": \("[^"]*"\).*/\1/p' "$tmp/g1.json"))" ||
    fail "a stranger in the room: A $rc_a $(cat "$tmp/g1.json") / B $rc_b $(cat "$tmp/g2.json")"
# pasted tokens with --secret: the offer is sealed and carries no password
mkfifo "$tmp/to_a"
"$stunkit" punch $srv --offer --secret "tok $$" --json --count 2 <"$tmp/to_a" >"$tmp/ta.out" 2>"$tmp/ta.err" &
a=$!
exec 7>"$tmp/to_a"
for _ in $(seq 50); do grep -q "^SK1\." "$tmp/ta.out" && break; sleep 0.1; done
offer_tok=$(grep -m1 "^SK1\." "$tmp/ta.out")
offer_txt=$(echo "${offer_tok#SK1.}" | base64 -d 2>/dev/null)
if [[ "$offer_txt" == *"a=x-stunkit-mac:"* ]] && [[ "$offer_txt" != *"a=ice-pwd:"* ]]; then
    ok "a sealed offer token: a seal line, no ICE password"
else
    fail "the offer with --secret: $offer_txt"
fi
# ... changed on the way (a candidate's port): the answering side refuses it
forged=SK1.$(printf '%s' "$offer_txt" | sed '0,/ typ host/s/\([0-9]\+\) typ host/1 typ host/' | base64 -w0)
"$stunkit" punch $srv --answer "$forged" --secret "tok $$" --count 1 >/dev/null 2>"$tmp/f.err"
rc=$?
[ $rc -eq 1 ] && grep -q "does not check against the secret" "$tmp/f.err" &&
    ok "a forged offer: exit 1, $(cat "$tmp/f.err")" || fail "forged offer: exit $rc $(cat "$tmp/f.err")"
# ... answered with another secret: refused too
"$stunkit" punch $srv --answer "$offer_tok" --secret "not it" --count 1 >/dev/null 2>"$tmp/w.err"
rc=$?
[ $rc -eq 1 ] && grep -q "does not check against the secret" "$tmp/w.err" &&
    ok "another secret: exit 1" || fail "another secret: exit $rc $(cat "$tmp/w.err")"
# ... and answered as it was: connected
"$stunkit" punch $srv --answer "$offer_tok" --secret "tok $$" --json --count 2 >"$tmp/tb.out" 2>"$tmp/tb.err" &
b=$!
for _ in $(seq 50); do grep -q "^SK1\." "$tmp/tb.out" && break; sleep 0.1; done
grep -m1 "^SK1\." "$tmp/tb.out" >&7
exec 7>&-
wait $b; rc_b=$?
wait $a; rc_a=$?
if [ $rc_a -eq 0 ] && [ $rc_b -eq 0 ] && grep -q '"connected": true' "$tmp/ta.out" && grep -q '"authenticated": true' "$tmp/tb.out"; then
    ok "pasted sealed tokens: connected both ways"
else
    fail "sealed tokens: A $rc_a $(cat "$tmp/ta.out" "$tmp/ta.err") / B $rc_b $(cat "$tmp/tb.out" "$tmp/tb.err")"
fi
usage "--secret with --sdp" "not with --sdp" $srv --offer --sdp --secret x
usage "--relay-only without credentials" "--relay-only needs a relay" $srv --offer --relay-only
usage "--forward malformed" "expected LISTEN_PORT:APP_PORT" $srv --offer --forward 5000

# --forward: two UDP applications (tests/client/fwd_app.py) reach each
# other through the two punch processes; SIGTERM ends one, its bye the other
fl=$((base + 364)) # 364-367
"$stunkit" punch $srv "fw-$$" --username alice --password secret --json --count 1 --forward $fl:$((fl + 1)) \
    >"$tmp/fa.json" 2>"$tmp/fa.err" &
a=$!
sleep 0.3
"$stunkit" punch $srv "fw-$$" --username alice --password secret --json --count 1 --forward $((fl + 2)):$((fl + 3)) \
    >"$tmp/fb.json" 2>"$tmp/fb.err" &
b=$!
/usr/bin/python3 "$(dirname "$0")/fwd_app.py" $((fl + 1)) $fl "hello from A" "hello from B" >"$tmp/appa" 2>&1 &
pa=$!
/usr/bin/python3 "$(dirname "$0")/fwd_app.py" $((fl + 3)) $((fl + 2)) "hello from B" "hello from A" >"$tmp/appb" 2>&1
rc_pb=$?
wait $pa; rc_pa=$?
kill -TERM $a
wait $a; rc_a=$?
wait $b; rc_b=$?
if [ $rc_pa -eq 0 ] && [ $rc_pb -eq 0 ] && [ $rc_a -eq 0 ] && [ $rc_b -eq 0 ] &&
    grep -q '"forwarded": {"to_peer": [1-9]' "$tmp/fa.json" && grep -q '"from_peer": [1-9]' "$tmp/fb.json"; then
    ok "--forward: two applications' datagrams both ways, ended by SIGTERM and the bye: $(grep -o '"forwarded": {[^}]*}' "$tmp/fa.json")"
else
    fail "--forward: apps $rc_pa/$rc_pb, punch $rc_a/$rc_b: $(cat "$tmp/fa.json" "$tmp/fa.err" "$tmp/fb.json" "$tmp/appa" "$tmp/appb")"
fi

# --relay-only on one side: the path is its relay, and the other side never
# hears of its own addresses
"$stunkit" punch $srv "ro-$$" --relay-only --username alice --password secret --json --count 2 --wait 10 \
    >"$tmp/ra.json" 2>"$tmp/ra.err" &
a=$!
sleep 0.3
STUNKIT_TRACE=1 "$stunkit" punch $srv "ro-$$" --username alice --password secret --json --count 2 --wait 10 \
    >"$tmp/rb.json" 2>"$tmp/rb.err"
rc_b=$?
wait $a; rc_a=$?
if [ $rc_a -eq 0 ] && [ $rc_b -eq 0 ] && grep -q '"path": "relay"' "$tmp/ra.json" &&
    grep -q '"local": {"type": "relay"' "$tmp/ra.json" && grep -q '"remote": {"type": "relay"' "$tmp/rb.json" &&
    grep -q "^a=candidate.* typ relay" "$tmp/rb.err" && ! grep "^a=candidate" "$tmp/rb.err" | grep -qv " typ relay"; then
    ok "--relay-only: connected through its relay; the peer saw only relayed candidates"
else
    fail "--relay-only: A $rc_a $(cat "$tmp/ra.json" "$tmp/ra.err") / B $rc_b $(cat "$tmp/rb.json") $(grep "^a=candidate" "$tmp/rb.err")"
fi

finish
