#!/bin/sh
# deps.sh - make sure the Debian packages a job needs are present.
# As root, missing packages are installed with apt-get; otherwise one line names
# them and the job stops. With --check nothing is installed: the line names
# them (plain `make` never runs apt-get). Usage: deps.sh build|test|fuzz [--check]
set -eu
job=${1:-build}
check=${2:-}

pkgs="cmake gcc make pkg-config libssl-dev libminiupnpc-dev clang libbpf-dev bpftool libuv1-dev"
case "$job" in
test) pkgs="iproute2 nftables tshark coturn stun-client stun-server openssl valgrind dnsmasq-base python3-aioice chromium miniupnpd-nftables miniupnpc natpmpc libnice-dev systemd procps wireguard-go wireguard-tools iputils-ping" ;;
fuzz) pkgs="clang libclang-rt-14-dev" ;;
esac

missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$check" = "--check" ]; then
    # cmake finds what it needs by itself; this line only says how to get it
    echo "deps: not installed:$missing (make deps installs them)" >&2
    exit 0
fi
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "deps: installing$missing" >&2
    # tshark asks whether non-root users may capture: answer no, quietly.
    echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections 2>/dev/null || true
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
    exit 0
fi
if [ "$job" = test ]; then
    # Tests that need these programs say so and are skipped by CTest.
    echo "deps: optional test packages missing:$missing (sudo apt-get install$missing)" >&2
    exit 0
fi
echo "deps: missing packages:$missing -- run: sudo apt-get install$missing" >&2
exit 1
