#!/bin/bash
# turn_peers_test.sh STUNKITD - stunkitd's TURN relay with clients no one
# here wrote: coturn's turnutils_uclient (channels, and Send indications
# with -s) relaying to coturn's turnutils_peer, on loopback (the peer range
# opened with --allowed-peer, as a lab must). No loss allowed.
set -u
stunkitd=$1
. "$(dirname "$0")/../lib/testlib.sh"
base=${STUNKIT_TEST_PORT_BASE:-21000}
command -v turnutils_uclient >/dev/null 2>&1 && command -v turnutils_peer >/dev/null 2>&1 ||
    { echo "skip: coturn's turnutils not installed"; exit 77; }
server=$((base + 350)) peer=$((base + 351)) secure=$((base + 355)) # turnutils_peer takes peer and peer + 1
command -v openssl >/dev/null 2>&1 || { echo "skip: openssl not installed"; exit 77; }
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$tmp/key.pem" -out "$tmp/cert.pem" \
    -days 1 -subj /CN=localhost >/dev/null 2>&1 || { fail "cannot make a certificate"; exit 1; }
turnutils_peer -L 127.0.0.1 -p $peer >"$tmp/peer.log" 2>&1 &
pids="$pids $!"
"$stunkitd" --listen 127.0.0.1:$server --turn --credential alice:turn-secret --realm example.org \
    --tls-cert "$tmp/cert.pem" --tls-key "$tmp/key.pem" --tls-port $secure \
    --allowed-peer 127.0.0.1/32 --relay-ports $((base + 600))-$((base + 649)) --threads 1 \
    --log-level warn 2>"$tmp/server.err" &
spid=$!
pids="$pids $spid"
for _ in $(seq 50); do ss -Hlun "sport = :$server" 2>/dev/null | grep -q . && ss -Hlun "sport = :$peer" | grep -q . &&
    ss -Hltn "sport = :$secure" | grep -q . && break; sleep 0.1; done

run() { # description, extra uclient flags
    local port=$server
    case " ${*:2} " in *" -S "*) port=$secure ;; esac
    timeout 60 turnutils_uclient -u alice -w turn-secret -e 127.0.0.1 -r $peer -n 100 -m 4 "${@:2}" \
        -p $port 127.0.0.1 >"$tmp/uclient.log" 2>&1
    local rc=$? sent recv lost
    sent=$(sed -n 's/.*start_mclient: tot_send_msgs=\([0-9]*\), tot_recv_msgs=\([0-9]*\).*/\1/p' "$tmp/uclient.log" | tail -1)
    recv=$(sed -n 's/.*start_mclient: tot_send_msgs=\([0-9]*\), tot_recv_msgs=\([0-9]*\).*/\2/p' "$tmp/uclient.log" | tail -1)
    lost=$(sed -n 's/.*Total lost packets \([0-9]*\) .*/\1/p' "$tmp/uclient.log" | tail -1)
    if [ $rc -eq 0 ] && [ -n "$sent" ] && [ "$sent" -eq 400 ] && [ "$recv" = "$sent" ] && [ "$lost" = 0 ]; then
        ok "$1: $recv of $sent echoed through the relay, 0 lost"
    else
        fail "$1: exit $rc, sent '$sent', received '$recv', lost '$lost'"
        tail -5 "$tmp/uclient.log"
    fi
}
run "UDP, channels (ChannelData)" -l 200
run "UDP, Send and Data indications" -s -l 200
run "TCP, channels (ChannelData padded to 4 bytes)" -t -l 201
run "TCP, Send and Data indications" -t -s -l 201
run "DTLS, channels" -S -l 201
run "TLS, channels (padded)" -S -t -l 201
kill -USR1 $spid
for _ in $(seq 20); do grep -q "turn_to_client" "$tmp/server.err" && break; sleep 0.1; done
to_peer=$(awk '$1=="turn_to_peer"{print $2; exit}' "$tmp/server.err")
to_client=$(awk '$1=="turn_to_client"{print $2; exit}' "$tmp/server.err")
[ "${to_peer:-0}" -ge 2400 ] && [ "${to_client:-0}" -ge 2400 ] && ok "the server counted $to_peer datagrams to peers, $to_client to clients" ||
    fail "counters: $(grep turn_ "$tmp/server.err")"
finish
