#!/bin/bash
# bench-xdp.sh BUILD_DIR - stunkitd's socket path against its XDP path
# (--xdp), in a veth lab between two network namespaces (root only; skipped
# otherwise or when the build has no XDP).
#
#   client ns: c0 192.0.2.7 (XDP_PASS, so that veth delivers XDP_TX frames;
#              threaded NAPI on CPU 0; `stunkit bench` on CPU 0)
#   server ns: s0 192.0.2.1 (stunkitd, one thread, on CPU 1; s0's threaded
#              NAPI and RPS on CPU 1, so every server-side cycle is CPU 1's)
#
# Rounds alternate socket / XDP with the same load (BENCH_ROUNDS, default 5,
# BENCH_SECONDS each, default 3); every answer is checked by `stunkit bench`.
# Reported: answers/s, CPU 1's busy time per answer (the server side: stunkitd
# plus the kernel's receive and send work), stunkitd's own share, and the
# program's own time per packet (kernel.bpf_stats_enabled during the run; the
# same figure for c0's XDP_PASS program shows what the timing itself costs).
# Then a flood: BENCH_FLOOD_RATE (default 1000000) junk frames/s from a
# spoofed source for BENCH_FLOOD_SECONDS (default 5) out of c0 by
# BPF_PROG_TEST_RUN live frames (bench_xdp_flood), while a well-behaved
# client sends 100 Binding requests/s (the default per-source budget is 200/s): how many of its requests were lost,
# what XDP dropped, and CPU 1's load. Results in BUILD_DIR/bench-xdp.md.
set -u
build=$1
bin="$build/bin"
gen="$build/generated"
secs=${BENCH_SECONDS:-3}
rounds=${BENCH_ROUNDS:-5}
flood_rate=${BENCH_FLOOD_RATE:-1000000}
flood_secs=${BENCH_FLOOD_SECONDS:-5}
out="$build/bench-xdp.md"
if [ "$(id -u)" -ne 0 ]; then echo "bench-xdp: skipped (needs root for namespaces and XDP)"; exit 0; fi
if [ ! -x "$bin/bench_xdp_flood" ] || ! "$bin/stunkitd" --help | grep -q -- "--xdp"; then
    echo "bench-xdp: skipped (this build has no XDP)"
    exit 0
fi
if [ "$(nproc)" -lt 2 ]; then echo "bench-xdp: skipped (needs two CPUs)"; exit 0; fi
tmp=$(mktemp -d)
tag="xb$$"
S="${tag}s" C="${tag}c" SI="${tag}s0" CI="${tag}c0"
pids=""
stats_was=$(cat /proc/sys/kernel/bpf_stats_enabled 2>/dev/null || echo 0)
haltpoll=/sys/module/haltpoll/parameters/guest_halt_poll_ns
haltpoll_was=$(cat "$haltpoll" 2>/dev/null)
cleanup() {
    for p in $pids; do kill "$p" 2>/dev/null; done
    for p in $pids; do wait "$p" 2>/dev/null; done
    ip netns del "$S" 2>/dev/null
    ip netns del "$C" 2>/dev/null
    echo "$stats_was" >/proc/sys/kernel/bpf_stats_enabled 2>/dev/null
    [ -n "$haltpoll_was" ] && echo "$haltpoll_was" >"$haltpoll" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

ip netns add "$S" && ip netns add "$C" || exit 1
ip link add "$SI" netns "$S" type veth peer name "$CI" netns "$C"
ip -n "$S" addr add 192.0.2.1/24 dev "$SI"
ip -n "$C" addr add 192.0.2.7/24 dev "$CI"
for ns in "$S" "$C"; do ip -n "$ns" link set lo up; done
ip -n "$S" link set "$SI" up
ip -n "$C" link set "$CI" up
ip -n "$C" link set dev "$CI" xdpdrv obj "$gen/xdp_pass.bpf.o" sec xdp || { echo "bench-xdp: no XDP on veth"; exit 1; }
ip netns exec "$C" sh -c "echo 1 > /sys/class/net/$CI/threaded"
ip netns exec "$S" sh -c "echo 2 > /sys/class/net/$SI/queues/rx-0/rps_cpus"
smac=$(ip -n "$S" -br link show "$SI" | awk '{print $3}')
# the static neighbour entry: no ARP traffic during the rounds
ip -n "$C" neigh replace 192.0.2.1 lladdr "$smac" dev "$CI"
cmac=$(ip -n "$C" -br link show "$CI" | awk '{print $3}')
ip -n "$S" neigh replace 192.0.2.7 lladdr "$cmac" dev "$SI"

pin_napi() { # IFACE CPU: its NAPI kthreads onto CPU
    for p in $(ps -eo pid=,comm= | awk -v n="napi/$1-" 'index($2, n) == 1 {print $1}'); do
        taskset -pc "$2" "$p" >/dev/null
    done
}
pin_napi "$CI" 0
cpu_busy() { # CPU: busy jiffies (user nice system irq softirq steal)
    awk -v c="cpu$1" '$1 == c {print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat
}
proc_cpu() { # PID: utime + stime in jiffies
    awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0
}
hz=$(getconf CLK_TCK)
ring_drops() { # frames both veth receivers dropped (ring full), s0 + c0
    echo $(($(ip -n "$S" -s link show "$SI" | awk '/RX:/ {getline; print $4}') + \
        $(ip -n "$C" -s link show "$CI" | awk '/RX:/ {getline; print $4}')))
}
echo 1 >/proc/sys/kernel/bpf_stats_enabled

server() { # MODE [LIMITS]: stunkitd on CPU 1; sets spid and (XDP) progid
    local extra="" limits=${2:---rate-limit 0 --redirect-rate-limit 0}
    [ "$1" = xdp ] && extra="--xdp $SI"
    # shellcheck disable=SC2086
    ip netns exec "$S" taskset -c 1 "$bin/stunkitd" --listen 192.0.2.1:3478 --threads 1 --no-tcp $limits \
        --software stunkitd $extra 2>"$tmp/server.log" &
    spid=$!
    pids="$pids $spid"
    for _ in $(seq 50); do
        ip netns exec "$C" "$bin/stunkit" addr --timeout 100 192.0.2.1 >/dev/null 2>&1 && break
        sleep 0.1
    done
    progid=$(sed -n 's/.*program id \([0-9]*\).*/\1/p' "$tmp/server.log")
    [ "$1" = xdp ] && [ -z "$progid" ] && { echo "bench-xdp: XDP did not attach: $(cat "$tmp/server.log")"; exit 1; }
    if [ "$1" = xdp ]; then
        # s0's NAPI exists once XDP is attached: threaded, on the server's CPU
        ip netns exec "$S" sh -c "echo 1 > /sys/class/net/$SI/threaded"
        pin_napi "$SI" 1
    fi
}
stop() { kill "$spid" 2>/dev/null; wait "$spid" 2>/dev/null; }
prog_stats() { # [ID]: "run_time_ns run_cnt" of the program (stunkitd's by default)
    bpftool prog show id "${1:-$progid}" 2>/dev/null | sed -n 's/.*run_time_ns \([0-9]*\) run_cnt \([0-9]*\).*/\1 \2/p'
}
# c0's XDP_PASS program, timed the same way: what the statistics alone
# cost per packet (two clock reads around a program that does nothing)
passid=$(ip -n "$C" link show "$CI" | sed -n 's/.*prog\/xdp id \([0-9]*\).*/\1/p')

echo "XDP bench: veth lab, $rounds rounds x ${secs} s, socket and XDP interleaved; stunkit bench -s 16 -w 8 (128 in flight: a veth ring holds 256)"
for r in $(seq "$rounds"); do
    for mode in socket xdp; do
        server $mode
        c1=$(cpu_busy 1) c0=$(cpu_busy 0) p0=$(proc_cpu "$spid") q0=$(ring_drops)
        [ $mode = xdp ] && read -r rt0 rc0 <<<"$(prog_stats)" && read -r pt0 pc0 <<<"$(prog_stats "$passid")"
        ip netns exec "$C" taskset -c 0 "$bin/stunkit" bench -d "$secs" -s 16 -w 8 --json 192.0.2.1 >"$tmp/b.json" 2>/dev/null
        c1b=$(cpu_busy 1) c0b=$(cpu_busy 0) p0b=$(proc_cpu "$spid") q1=$(ring_drops)
        ns_pkt="-" ns_pass="-"
        if [ $mode = xdp ]; then
            read -r rt1 rc1 <<<"$(prog_stats)"
            read -r pt1 pc1 <<<"$(prog_stats "$passid")"
            [ "$((rc1 - rc0))" -gt 0 ] && ns_pkt=$(((rt1 - rt0) / (rc1 - rc0)))
            [ "$((pc1 - pc0))" -gt 0 ] && ns_pass=$(((pt1 - pt0) / (pc1 - pc0)))
        fi
        stop
        answered=$(sed -n 's/.*"answered": \([0-9]*\).*/\1/p' "$tmp/b.json")
        rps=$(sed -n 's/.*"requests_per_s": \([0-9.]*\).*/\1/p' "$tmp/b.json")
        lost=$(sed -n 's/.*"lost": \([0-9]*\).*/\1/p' "$tmp/b.json")
        bad=$(sed -n 's/.*"bad": \([0-9]*\).*/\1/p' "$tmp/b.json")
        [ -n "$answered" ] && [ "$answered" -gt 0 ] || { echo "bench-xdp: $mode round $r: no answers"; continue; }
        # microseconds of CPU 1 (and of stunkitd alone) per answer
        us_srv=$(awk -v b=$((c1b - c1)) -v n="$answered" -v hz="$hz" 'BEGIN {printf "%.2f", b / hz * 1e6 / n}')
        us_d=$(awk -v b=$((p0b - p0)) -v n="$answered" -v hz="$hz" 'BEGIN {printf "%.2f", b / hz * 1e6 / n}')
        us_cli=$(awk -v b=$((c0b - c0)) -v n="$answered" -v hz="$hz" 'BEGIN {printf "%.2f", b / hz * 1e6 / n}')
        echo "$mode $rps $us_srv $us_d $us_cli $ns_pkt $lost $bad $ns_pass" >>"$tmp/results"
        printf "  round %d %-6s %9.0f answers/s  server CPU %6s us/answer (stunkitd %s)  client %s us  program %s ns (XDP_PASS %s)  lost %s (veth rings dropped %s) bad %s\n" \
            "$r" "$mode" "$rps" "$us_srv" "$us_d" "$us_cli" "$ns_pkt" "$ns_pass" "$lost" "$((q1 - q0))" "$bad"
    done
done

median() { sort -n | awk '{a[NR] = $1} END {if (NR == 0) print "-"; else print a[int((NR + 1) / 2)]}'; }
spread() { sort -n | awk 'NR == 1 {lo = $1} {hi = $1} END {if (NR) print lo "-" hi}'; }
col() { awk -v m="$1" -v c="$2" '$1 == m {print $c}' "$tmp/results"; }
med_spread() { # MODE COLUMN: "median (low-high)", or "-" where there is no figure
    local m
    m=$(col "$1" "$2" | grep -v -- - | median)
    [ "$m" = "-" ] && echo "-" || echo "$m ($(col "$1" "$2" | grep -v -- - | spread))"
}
{
    echo "# XDP bench (veth lab, $(date -u +%Y-%m-%d), $rounds rounds x ${secs} s, median and spread)"
    echo
    echo "| path | answers/s | server CPU us/answer | stunkitd us/answer | client us/answer | program ns/packet | an XDP_PASS program, ns/packet |"
    echo "|---|---|---|---|---|---|---|"
    for m in socket xdp; do
        echo "| $m | $(col $m 2 | median) ($(col $m 2 | spread)) | $(col $m 3 | median) ($(col $m 3 | spread)) | $(col $m 4 | median) | $(col $m 5 | median) | $(med_spread $m 6) | $(col $m 9 | median) |"
    done
} >"$out"
s_cpu=$(col socket 3 | median) x_cpu=$(col xdp 3 | median)
s_rps=$(col socket 2 | median) x_rps=$(col xdp 2 | median)
ratio=$(awk -v a="$x_cpu" -v b="$s_cpu" 'BEGIN {printf "%.2f", a / b}')
rratio=$(awk -v a="$x_rps" -v b="$s_rps" 'BEGIN {printf "%.2f", a / b}')
{
    echo
    echo "XDP / socket: server CPU per answer ${ratio}x (target <= 0.5x), answers/s ${rratio}x."
} >>"$out"

# The flood: junk from a spoofed source, a well-behaved client alongside;
# the default budgets. veth gives XDP a ring of 256 frames per receiver, and
# here the receiver is s0's NAPI thread: on a NIC the ring is larger and NAPI
# runs in softirq, ahead of any task. So that the lab shows what XDP drops and
# not how late a thread wakes on a virtual CPU, s0's NAPI thread runs
# SCHED_FIFO (softirq's place) and, on a KVM guest with the haltpoll idle
# driver, idle CPUs poll 200 us before they halt (restored after). Frames
# the ring could not take are counted apart (s0's RX dropped).
server xdp " "
for p in $(ps -eo pid=,comm= | awk -v n="napi/$SI-" 'index($2, n) == 1 {print $1}'); do chrt -f -p 50 "$p"; done
[ -n "$haltpoll_was" ] && echo 200000 >"$haltpoll" 2>/dev/null
dump() { kill -USR1 "$spid"; sleep 0.5; }
rx_dropped() { ip -n "$S" -s link show "$SI" | awk '/RX:/ {getline; print $4}'; }
dump
d0=$(grep -E "^ +xdp_dropped " "$tmp/server.log" | tail -1 | awk '{print $2}')
c1=$(cpu_busy 1) r0=$(rx_dropped)
ip netns exec "$C" /usr/bin/python3 "$(dirname "$0")/../tests/natlab/xdp/stun_probe.py" --paced 192.0.2.1 3478 100 \
    "$((flood_secs + 1))" >"$tmp/good.txt" &
gpid=$!
pids="$pids $gpid"
sleep 0.5
ip netns exec "$C" taskset -c 0 "$bin/bench_xdp_flood" "$gen/xdp_flood.bpf.o" "$CI" "$smac" 203.0.113.66:9999 192.0.2.1:3478 \
    "$flood_rate" "$flood_secs" junk >"$tmp/flood.txt" 2>&1
c1b=$(cpu_busy 1) r1=$(rx_dropped)
wait "$gpid"
dump
d1=$(grep -E "^ +xdp_dropped " "$tmp/server.log" | tail -1 | awk '{print $2}')
stop
[ -n "$haltpoll_was" ] && echo "$haltpoll_was" >"$haltpoll" 2>/dev/null
busy=$(awk -v b=$((c1b - c1)) -v hz="$hz" -v s="$flood_secs" 'BEGIN {printf "%.0f", b / hz / s * 100}')
{
    echo
    echo "Flood: $(cat "$tmp/flood.txt"); XDP dropped $((d1 - d0)); the veth ring dropped $((r1 - r0)) before XDP;"
    echo "CPU 1 busy ${busy}% during it; well-behaved client: $(cat "$tmp/good.txt")."
} >>"$out"
cat "$out"
