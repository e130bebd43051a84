#!/bin/bash
# cli_punch_test.sh STUNKITD STUNKIT - `stunkit punch SERVER ROOM` on
# loopback against stunkitd --rendezvous: two peers meet and connect (the
# first offers), a third finds the room full, a wrong password and a
# server without the rendezvous fail with one clear line and exit 1, bad
# usage exits 2; the server's counters show the rooms opened and closed.
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
open=$(sed -n 's/^stunkitd_rdv_rooms_open_total //p' "$tmp/metrics.txt")
met=$(sed -n 's/^stunkitd_rdv_peers_met_total //p' "$tmp/metrics.txt")
full=$(sed -n 's/^stunkitd_rdv_refused_full_total //p' "$tmp/metrics.txt")
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
finish
