#!/bin/bash
# chromium_turn_test.sh STUNKITD - the client most TURN servers really serve:
# headless Chromium (Debian's chromium) runs two RTCPeerConnections in one
# page with iceTransportPolicy "relay" and a stunkitd turn: URL, over UDP and
# over TCP; the data channel must open, carry a message, and the selected
# local candidate must be of type relay with that transport. The page reports
# by fetching /result?... from the test's own HTTP server (Debian's python3).
set -u
stunkitd=$1
. "$(dirname "$0")/../lib/testlib.sh"
base=${STUNKIT_TEST_PORT_BASE:-21000}
command -v chromium >/dev/null 2>&1 || { echo "skip: chromium not installed"; exit 77; }
[ -x /usr/bin/python3 ] || { echo "skip: no /usr/bin/python3"; exit 77; }
turn=$((base + 390)) http=$((base + 391))
"$stunkitd" --listen 127.0.0.1:$turn --turn --credential alice:turn-secret --allowed-peer 127.0.0.1/32 \
    --relay-ports $((base + 650))-$((base + 699)) --threads 1 --log-level warn 2>"$tmp/server.err" &
pids="$pids $!"
/usr/bin/python3 -m http.server $http --bind 127.0.0.1 --directory "$(dirname "$0")/../interop/chromium" >"$tmp/http.log" 2>&1 &
pids="$pids $!"
for _ in $(seq 50); do ss -Hltn "sport = :$http" | grep -q . && ss -Hlun "sport = :$turn" | grep -q . && break; sleep 0.1; done
n=0
for tr in udp tcp; do
    n=$((n + 1))
    chromium --headless=new --no-sandbox --disable-gpu --disable-background-networking --disable-component-update \
        --disable-sync --no-first-run --user-data-dir="$tmp/profile-$tr" \
        "http://127.0.0.1:$http/turn.html?turn=turn:127.0.0.1:$turn?transport=$tr" >"$tmp/chromium-$tr.log" 2>&1 &
    cpid=$!
    for _ in $(seq 60); do [ "$(grep -c 'GET /result' "$tmp/http.log")" -ge $n ] && break; sleep 0.5; done
    kill $cpid 2>/dev/null; wait $cpid 2>/dev/null
    result=$(grep 'GET /result' "$tmp/http.log" | sed -n "${n}p" | sed 's/.*GET \/result?\([^ ]*\) HTTP.*/\1/' |
        /usr/bin/python3 -c 'import sys, urllib.parse; print(urllib.parse.unquote(sys.stdin.read().strip()))')
    case $result in
    "OK hello through the relay | local relay $tr "*) ok "Chromium over TURN/$tr: $result" ;;
    *) fail "Chromium over TURN/$tr: '$result'"; tail -3 "$tmp/chromium-$tr.log" ;;
    esac
done
finish
