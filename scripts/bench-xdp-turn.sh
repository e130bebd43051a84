#!/bin/bash
# bench-xdp-turn.sh BUILD_DIR - TURN ChannelData relayed by stunkitd's
# sockets against its XDP offload (--turn --xdp), in a veth lab of three
# network namespaces (root only; skipped otherwise or without XDP).
#
#   client ns: c0 192.0.2.7       `stunkit bench --turn` on CPU 0
#   server ns: s0 192.0.2.1 (TURN), s1 198.51.100.1 (relayed addresses);
#              stunkitd (one thread), s0/s1 RPS and threaded NAPI on CPU 1
#   peer ns:   p0 198.51.100.7    bench_udp_echo on CPU 0
#   (XDP_PASS on c0 and p0, their threaded NAPI on CPU 0)
#
# Rounds alternate socket / XDP with the same load (BENCH_ROUNDS, default 5,
# BENCH_SECONDS each, default 3): 16 allocations x 8 in flight, 100-byte
# ChannelData, every echo checked. Reported: relayed round trips/s and CPU
# 1's busy time per relayed datagram (each round trip crosses the relay
# twice): the server side, stunkitd plus the kernel's receive and send work.
# Results in BUILD_DIR/bench-xdp-turn.md.
set -u
build=$1
bin="$build/bin"
gen="$build/generated"
secs=${BENCH_SECONDS:-3}
rounds=${BENCH_ROUNDS:-5}
out="$build/bench-xdp-turn.md"
if [ "$(id -u)" -ne 0 ]; then echo "bench-xdp-turn: skipped (needs root for namespaces and XDP)"; exit 0; fi
if [ ! -f "$gen/xdp_pass.bpf.o" ] || ! "$bin/stunkitd" --help | grep -q -- "--xdp"; then
    echo "bench-xdp-turn: skipped (this build has no XDP)"
    exit 0
fi
if [ "$(nproc)" -lt 2 ]; then echo "bench-xdp-turn: skipped (needs two CPUs)"; exit 0; fi
tmp=$(mktemp -d)
tag="xt$$"
S="${tag}s" C="${tag}c" P="${tag}p"
pids=""
cleanup() {
    for p in $pids; do kill "$p" 2>/dev/null; done
    for p in $pids; do wait "$p" 2>/dev/null; done
    for n in "$S" "$C" "$P"; do ip netns del "$n" 2>/dev/null; done
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

ip netns add "$S" && ip netns add "$C" && ip netns add "$P" || exit 1
ip link add s0 netns "$S" type veth peer name c0 netns "$C"
ip link add s1 netns "$S" type veth peer name p0 netns "$P"
ip -n "$S" addr add 192.0.2.1/24 dev s0
ip -n "$S" addr add 198.51.100.1/24 dev s1
ip -n "$C" addr add 192.0.2.7/24 dev c0
ip -n "$P" addr add 198.51.100.7/24 dev p0
for ns in "$S" "$C" "$P"; do ip -n "$ns" link set lo up; done
for l in "$S s0" "$S s1" "$C c0" "$P p0"; do
    # shellcheck disable=SC2086
    ip -n $l link set up 2>/dev/null || ip -n ${l% *} link set ${l#* } up
done
ip -n "$C" route add default via 192.0.2.1
ip -n "$P" route add default via 198.51.100.1
# lo's forwarding flag: the program's route lookup (no router made)
ip netns exec "$S" sysctl -qw net.ipv4.conf.lo.forwarding=1 net.ipv6.conf.lo.forwarding=1
for l in "$C c0" "$P p0"; do
    # shellcheck disable=SC2086
    set -- $l
    ip -n "$1" link set dev "$2" xdpdrv obj "$gen/xdp_pass.bpf.o" sec xdp || { echo "bench-xdp-turn: no XDP on veth"; exit 1; }
    ip netns exec "$1" sh -c "echo 1 > /sys/class/net/$2/threaded"
done
for i in s0 s1; do ip netns exec "$S" sh -c "echo 2 > /sys/class/net/$i/queues/rx-0/rps_cpus"; done
# static neighbours: no ARP during the rounds
mac() { ip -n "$1" -br link show "$2" | awk '{print $3}'; }
ip -n "$C" neigh replace 192.0.2.1 lladdr "$(mac "$S" s0)" dev c0
ip -n "$P" neigh replace 198.51.100.1 lladdr "$(mac "$S" s1)" dev p0
ip -n "$S" neigh replace 192.0.2.7 lladdr "$(mac "$C" c0)" dev s0
ip -n "$S" neigh replace 198.51.100.7 lladdr "$(mac "$P" p0)" dev s1

pin_napi() { # IFACE CPU
    for p in $(ps -eo pid=,comm= | awk -v n="napi/$1-" 'index($2, n) == 1 {print $1}'); do
        taskset -pc "$2" "$p" >/dev/null
    done
}
pin_napi c0 0
pin_napi p0 0
cpu_busy() { awk -v c="cpu$1" '$1 == c {print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat; }
proc_cpu() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
hz=$(getconf CLK_TCK)
ip netns exec "$P" taskset -c 0 "$bin/bench_udp_echo" 198.51.100.7 4000 &
pids="$pids $!"

server() { # MODE
    local extra=""
    [ "$1" = xdp ] && extra="--xdp s0 --xdp s1"
    # shellcheck disable=SC2086
    ip netns exec "$S" taskset -c 1 "$bin/stunkitd" --listen 192.0.2.1:3478 --turn --credential bench:bench-pass \
        --allowed-peer 198.51.100.0/24 --relay-ip 198.51.100.1 --relay-ports 50000-50999 --rate-limit 0 \
        --redirect-rate-limit 0 --no-tcp --threads 1 $extra 2>"$tmp/server.log" &
    spid=$!
    pids="$pids $spid"
    for _ in $(seq 50); do grep -q "running" "$tmp/server.log" && break; sleep 0.1; done
    if [ "$1" = xdp ]; then
        grep -q "TURN channels of UDP allocations are relayed there" "$tmp/server.log" ||
            { echo "bench-xdp-turn: no offload: $(cat "$tmp/server.log")"; exit 1; }
        for i in s0 s1; do ip netns exec "$S" sh -c "echo 1 > /sys/class/net/$i/threaded"; pin_napi $i 1; done
    fi
}
stop() { kill "$spid" 2>/dev/null; wait "$spid" 2>/dev/null; }

echo "XDP TURN bench: veth lab, $rounds rounds x ${secs} s, socket and XDP interleaved; stunkit bench --turn -s 16 -w 8"
for r in $(seq "$rounds"); do
    for mode in socket xdp; do
        server $mode
        c1=$(cpu_busy 1) p0=$(proc_cpu "$spid")
        ip netns exec "$C" taskset -c 0 "$bin/stunkit" bench --turn --json --peer 198.51.100.7:4000 -s 16 -w 8 \
            -d "$secs" --username bench --password bench-pass 192.0.2.1:3478 >"$tmp/b.json" 2>"$tmp/b.err"
        c1b=$(cpu_busy 1) p0b=$(proc_cpu "$spid")
        kill -USR1 "$spid"
        sleep 0.3
        stop
        trips=$(sed -n 's/.*"relayed_round_trips": \([0-9]*\).*/\1/p' "$tmp/b.json")
        rate=$(sed -n 's/.*"round_trips_per_s": \([0-9.]*\).*/\1/p' "$tmp/b.json")
        bad=$(sed -n 's/.*"bad": \([0-9]*\).*/\1/p' "$tmp/b.json")
        inxdp=$(grep -E "^ +xdp_relayed " "$tmp/server.log" | tail -1 | awk '{print $2}')
        [ -n "$trips" ] && [ "$trips" -gt 0 ] || { echo "bench-xdp-turn: $mode round $r: $(cat "$tmp/b.err")"; continue; }
        # ns of CPU 1 (and of stunkitd alone) per relayed datagram: two per round trip
        ns_srv=$(awk -v b=$((c1b - c1)) -v n="$trips" -v hz="$hz" 'BEGIN {printf "%.0f", b / hz * 1e9 / (2 * n)}')
        ns_d=$(awk -v b=$((p0b - p0)) -v n="$trips" -v hz="$hz" 'BEGIN {printf "%.0f", b / hz * 1e9 / (2 * n)}')
        pps=$(awk -v r="$rate" 'BEGIN {printf "%.0f", 2 * r}')
        echo "$mode $pps $ns_srv $ns_d $bad $inxdp" >>"$tmp/results"
        printf "  round %d %-6s %8s relayed datagrams/s  server CPU %5s ns/datagram (stunkitd %s)  bad %s  in XDP %s\n" \
            "$r" "$mode" "$pps" "$ns_srv" "$ns_d" "$bad" "${inxdp:-0}"
    done
done

median() { sort -n | awk '{a[NR] = $1} END {if (NR == 0) print "-"; else print a[int((NR + 1) / 2)]}'; }
spread() { sort -n | awk 'NR == 1 {lo = $1} {hi = $1} END {if (NR) print lo "-" hi}'; }
col() { awk -v m="$1" -v c="$2" '$1 == m {print $c}' "$tmp/results"; }
{
    echo "# XDP TURN bench (veth lab, $(date -u +%Y-%m-%d), $rounds rounds x ${secs} s, median and spread)"
    echo
    echo "| relay path | relayed datagrams/s | server CPU ns/datagram | stunkitd ns/datagram |"
    echo "|---|---|---|---|"
    for m in socket xdp; do
        echo "| $m | $(col $m 2 | median) ($(col $m 2 | spread)) | $(col $m 3 | median) ($(col $m 3 | spread)) | $(col $m 4 | median) |"
    done
} >"$out"
s_ns=$(col socket 3 | median) x_ns=$(col xdp 3 | median)
s_pps=$(col socket 2 | median) x_pps=$(col xdp 2 | median)
{
    echo
    echo "Relayed datagrams per second of server CPU: XDP $(awk -v a="$s_ns" -v b="$x_ns" 'BEGIN {printf "%.2f", a / b}')x the socket path (target >= 3x); datagrams/s $(awk -v a="$x_pps" -v b="$s_pps" 'BEGIN {printf "%.2f", a / b}')x."
} >>"$out"
cat "$out"
