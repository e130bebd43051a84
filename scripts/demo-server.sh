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
fi
