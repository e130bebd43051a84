#!/bin/sh
# bench-peer.sh BUILD_DIR - the peer's paths side by side in the two-NAT lab
# (root: network namespaces): a bare UDP path, punch --forward over the
# direct path, and through stunkitd's relay (sockets, XDP). The table goes to
# stdout and BUILD_DIR/bench-peer.md.
set -eu
build=$1
if [ "$(id -u)" -ne 0 ] || ! command -v nft >/dev/null 2>&1; then
    echo "bench-peer: skipped (needs root and nftables for the lab)"
    exit 0
fi
root=$(cd "$(dirname "$0")/.." && pwd)
PEER_LOAD="$build/bin/bench_peer_load" PEER_API="$build/bin/bench_peer_api" UDP_ECHO="$build/bin/bench_udp_echo" XDP_PASS="$build/generated/xdp_pass.bpf.o" \
    bash "$root/tests/natlab/punch_lab_test.sh" "$build/bin/stunkitd" "$build/bin/stunkit" bench | tee "$build/bench-peer.md"
