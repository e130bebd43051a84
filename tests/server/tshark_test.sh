#!/bin/bash
# tshark_test.sh STUNKITD STUNKIT SEND_PROBE - capture a test run on lo and have tshark's
# STUN dissector check every packet: no malformed packets, no expert errors,
# and the answers it should see (success, 400, 420, FINGERPRINT ok).
# Needs root (or capture rights) and tshark; exit 77 (skipped) otherwise.
set -u
# ports: a base per build tree (CMake sets it), so two checkouts can test at once
base=${STUNKIT_TEST_PORT_BASE:-21000}
stunkitd=$1
stunkit=$2
probe=$3
command -v tshark >/dev/null 2>&1 || { echo "skip: tshark not installed"; exit 77; }
[ "$(id -u)" -eq 0 ] || { echo "skip: capturing on lo needs root"; exit 77; }
tmp=$(mktemp -d)
fails=0
pids=""
trap 'for p in $pids; do kill $p 2>/dev/null; wait $p 2>/dev/null; done; [ -n "${KEEP_CAPTURE:-}" ] && cp "$tmp/cap.pcapng" "$KEEP_CAPTURE"; rm -rf "$tmp"' EXIT

tshark -i lo -f "port $((base + 810)) or port $((base + 811))" -w "$tmp/cap.pcapng" -q 2>"$tmp/tshark.err" &
tpid=$!
pids="$tpid"
for _ in $(seq 50); do grep -q "Capturing on" "$tmp/tshark.err" && break; sleep 0.1; done
"$stunkitd" --listen 127.0.0.1:$((base + 810)) --alternate 127.0.0.2 --software stunkit --rate-limit 0 --redirect-rate-limit 0 --log-level warn 2>"$tmp/server.err" &
spid=$!
pids="$spid $pids"
for _ in $(seq 50); do "$stunkit" addr --timeout 100 127.0.0.1:$((base + 810)) >/dev/null 2>&1 && break; sleep 0.1; done

# traffic: our load generator, the real peers, and hand-made requests
"$stunkit" bench -d 0.3 -s 2 -w 2 127.0.0.1:$((base + 810)) >/dev/null
command -v turnutils_stunclient >/dev/null && turnutils_stunclient -p $((base + 810)) 127.0.0.1 >/dev/null 2>&1
command -v stun >/dev/null && stun 127.0.0.1:$((base + 810)) >/dev/null 2>&1
"$probe" 127.0.0.1 $((base + 810))
sleep 0.5
kill -INT $tpid
wait $tpid 2>/dev/null

decode="-d udp.port==$((base + 810)),stun -d udp.port==$((base + 811)),stun -d tcp.port==$((base + 810)),stun"
count() { tshark -r "$tmp/cap.pcapng" $decode -Y "$1" 2>/dev/null | wc -l; }
expect_min() { # description, filter, minimum
    n=$(count "$2")
    if [ "$n" -ge "$3" ]; then echo "ok   $1 ($n)"; else echo "FAIL $1: $n packets match '$2', wanted >= $3"; fails=$((fails + 1)); fi
}
expect_none() {
    n=$(count "$2")
    if [ "$n" -eq 0 ]; then echo "ok   $1"; else
        echo "FAIL $1: $n packets match '$2'"; tshark -r "$tmp/cap.pcapng" $decode -Y "$2" -V 2>/dev/null | head -60
        fails=$((fails + 1))
    fi
}
expect_min "STUN packets dissected" "stun" 100
expect_min "Binding success responses" "stun.type == 0x0101" 50
expect_min "420 answers naming 0x7f01" "stun.att.error.class == 4 && stun.att.error == 20 && stun.att.unknown == 0x7f01" 1
expect_min "400 answers" "stun.att.error.class == 4 && stun.att.error == 0" 2
expect_min "RFC 3489 answers (classic STUN)" "classicstun.type == 0x0101" 3
expect_min "RFC 3489 420 answers" "classicstun.type == 0x0111" 1
expect_min "PADDING answers" "stun.type == 0x0101 && stun.att.type == 0x0026" 1
expect_min "answers from the alternate address (CHANGE-REQUEST)" "stun.type == 0x0101 && ip.src == 127.0.0.2" 1
expect_min "FINGERPRINT checked by tshark" "stun.att.crc32.status == 1" 2
expect_min "STUN over TCP" "tcp && stun" 2
expect_none "no malformed packets" "_ws.malformed"
expect_none "no expert errors" "_ws.expert.severity == error"
expect_none "no bad FINGERPRINT" "stun.att.crc32.status == 2 || stun.att.crc32.bad"
echo "$fails failed"
[ $fails -eq 0 ]
