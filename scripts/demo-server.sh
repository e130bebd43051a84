#!/bin/sh
# demo-server.sh BUILD_DIR - the server and the client at work: on loopback
# always, and behind real Linux NATs (network namespaces) when run as root.
set -eu
build=$1
bin="$build/bin"
root=$(cd "$(dirname "$0")/.." && pwd)
say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }

"$bin/stunkitd" --listen 127.0.0.1:34850 --alternate 127.0.0.2 --software stunkit-demo --rate-limit 0 --log-level warn 2>/dev/null &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null' EXIT
sleep 0.3

say "stunkitd --listen 127.0.0.1:34850 --alternate 127.0.0.2 --rate-limit 0 &    # RFC 5780 mode on loopback"
say "stunkit addr 127.0.0.1:34850"
"$bin/stunkit" addr 127.0.0.1:34850
say "stunkit nat 127.0.0.1:34850"
"$bin/stunkit" nat 127.0.0.1:34850 || true
say "stunkit bench --duration 2 127.0.0.1:34850    # every answer checked; --rate-limit 0: no budget at all"
"$bin/stunkit" bench --duration 2 127.0.0.1:34850 || true

"$bin/stunkitd" --listen 127.0.0.1:34860 --turn --credential demo:demo-secret --allowed-peer 127.0.0.1/32 \
    --relay-ports 34861-34899 --no-tcp --log-level warn 2>/dev/null &
tpid=$!
trap 'kill $pid $tpid 2>/dev/null; wait $pid $tpid 2>/dev/null' EXIT
sleep 0.3
say "stunkitd --listen 127.0.0.1:34860 --turn --credential demo:demo-secret --allowed-peer 127.0.0.1/32 &    # a TURN relay"
say "stunkit turn --username demo --password demo-secret 127.0.0.1:34860    # is it working?"
"$bin/stunkit" turn --username demo --password demo-secret 127.0.0.1:34860 || true

# two peers talking through the library (examples/chat.c): they meet in a
# room named by their secret and send each other lines
"$bin/stunkitd" --listen 127.0.0.1:34900 --turn --rendezvous --credential demo:demo-secret --allowed-peer 127.0.0.1/32 \
    --relay-ports 34901-34939 --no-tcp --log-level warn 2>/dev/null &
cpid=$!
trap 'kill $pid $tpid $cpid 2>/dev/null; wait $pid $tpid $cpid 2>/dev/null' EXIT
sleep 0.3
chat="$build/examples/chat"
if [ -x "$chat" ]; then
    say "stunkitd --listen 127.0.0.1:34900 --turn --rendezvous --credential demo:demo-secret ... &    # STUN, TURN, rooms"
    say "examples/chat 127.0.0.1:34900 'our secret' demo demo-secret    # twice: Alice and Bob type to each other"
    (sleep 2; echo "hello Bob, this is Alice"; sleep 1.5) | "$chat" 127.0.0.1:34900 "our secret" demo demo-secret \
        2>&1 | sed 's/^/  alice| /' &
    apid=$!
    sleep 0.3
    (sleep 2.3; echo "hi Alice, Bob here"; sleep 1.5) | "$chat" 127.0.0.1:34900 "our secret" demo demo-secret \
        2>&1 | sed 's/^/  bob  | /'
    wait $apid || true
fi

if [ "$(id -u)" -ne 0 ]; then
    echo
    echo "(run 'make demo' as root to see verdicts behind real Linux NATs in network namespaces)"
elif ! command -v nft >/dev/null 2>&1 || ! command -v ip >/dev/null 2>&1; then
    echo
    echo "(the NAT lab needs nftables and iproute2, which are not installed here:"
    echo " 'apt-get install nftables iproute2' or 'make deps', then 'make demo' again)"
else
    say "tests/natlab/natlab.sh: real Linux NATs in network namespaces"
    NATLAB_SHOW=1 bash "$root/tests/natlab/natlab.sh" "$bin/stunkitd" "$bin/stunkit" \
        full-cone-hairpin port-restricted-cone symmetric firewall
    if [ -x "$chat" ]; then
        say "the same chat behind two NATs: a symmetric one (no direct path by ICE alone) and a port-restricted one"
        CHAT_EXAMPLE="$chat" bash "$root/tests/natlab/punch_lab_test.sh" "$bin/stunkitd" "$bin/stunkit" \
            chat:symmetric/port-restricted-cone chat:symmetric/symmetric | grep -v "^matrix" || true
    fi
fi
