#!/bin/sh
# bench-turn.sh BUILD_DIR - the TURN relay side by side on loopback:
# bench_turn_forwarder (the ceiling: a bare ChannelData forwarder), stunkitd
# --turn and coturn's turnserver (where installed), each with one relay
# thread on CPU 0; `stunkit bench --turn` and the UDP echo peer on CPU 1.
# Interleaved rounds; the table gives the median and spread of relayed round
# trips per second (each crosses the relay twice), latency, and the server's
# CPU time per relayed datagram (from /proc, so a busy core is accounted
# for).
set -eu
build=$1
bin="$build/bin"
secs=${BENCH_SECONDS:-3}
rounds=${BENCH_ROUNDS:-5}
allocs=${BENCH_TURN_ALLOCATIONS:-16}
window=${BENCH_TURN_WINDOW:-8}
base=${BENCH_PORT:-24880}
out="$build/bench-turn.md"
tmp=$(mktemp -d)
pids=""
cleanup() {
    for p in $pids; do kill "$p" 2>/dev/null || true; done
    for p in $pids; do wait "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM
pin_server="taskset -c 0"
pin_client="taskset -c 1"
if ! command -v taskset >/dev/null 2>&1 || [ "$(nproc)" -lt 2 ]; then pin_server=""; pin_client=""; fi

echo_port=$base
$pin_client "$bin/bench_udp_echo" 127.0.0.1 $echo_port &
pids="$pids $!"
# name|port|bench options|command
servers="forwarder|$((base + 1))|--forwarder|$bin/bench_turn_forwarder 127.0.0.1 $((base + 1)) 127.0.0.1 $echo_port
stunkitd|$((base + 2))|--username bench --password bench-pass|$bin/stunkitd --listen 127.0.0.1:$((base + 2)) --turn --credential bench:bench-pass --allowed-peer 127.0.0.1/32 --relay-ports $((base + 100))-$((base + 399)) --rate-limit 0 --no-tcp --threads 1 --log-level error"
if command -v turnserver >/dev/null 2>&1; then
    servers="$servers
coturn|$((base + 3))|--username bench --password bench-pass|turnserver -L 127.0.0.1 -p $((base + 3)) --lt-cred-mech --user bench:bench-pass --realm bench --allow-loopback-peers --no-tls --no-dtls --no-cli -m 1 --min-port $((base + 400)) --max-port $((base + 699)) --no-stdout-log --log-file $tmp/coturn.log --simple-log --pidfile $tmp/coturn.pid --no-software-attribute"
fi
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

run_one() { # name port benchopts cmd...
    name=$1 port=$2 bopts=$3
    shift 3
    $pin_server "$@" >"$tmp/$name.out" 2>&1 &
    pid=$!
    pids="$pids $pid"
    sleep 0.5
    t0=$(cpu_ticks $pid)
    # shellcheck disable=SC2086
    if $pin_client "$bin/stunkit" bench --turn --json --peer 127.0.0.1:$echo_port -s "$allocs" -w "$window" -d "$secs" \
        $bopts "127.0.0.1:$port" >"$tmp/$name.json" 2>"$tmp/$name.err"; then
        t1=$(cpu_ticks $pid)
        rate=$(sed 's/.*"round_trips_per_s": \([0-9.]*\).*/\1/' "$tmp/$name.json")
        trips=$(sed 's/.*"relayed_round_trips": \([0-9]*\).*/\1/' "$tmp/$name.json")
        p50=$(sed 's/.*"p50": \([0-9.]*\).*/\1/' "$tmp/$name.json")
        p99=$(sed 's/.*"p99": \([0-9.]*\).*/\1/' "$tmp/$name.json")
        bad=$(sed 's/.*"bad": \([0-9]*\).*/\1/' "$tmp/$name.json")
        hz=$(getconf CLK_TCK)
        # CPU per relayed datagram: every round trip is two relayed datagrams
        ns=$(awk -v t="$((t1 - t0))" -v hz="$hz" -v n="$trips" 'BEGIN{ if (n>0) printf "%.0f", t/hz*1e9/(2*n); else print 0}')
        echo "$name $rate $p50 $p99 $bad $ns" >>"$tmp/results"
        echo "  round $r: $name $rate round trips/s (p50 $p50 us, p99 $p99 us, bad $bad, ${ns} ns CPU per relayed datagram)"
    else
        echo "bench: $name: $(cat "$tmp/$name.err")" >&2
    fi
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    if [ -f "$tmp/coturn.pid" ]; then kill "$(cat "$tmp/coturn.pid")" 2>/dev/null || true; rm -f "$tmp/coturn.pid"; fi
    sleep 0.3
}

echo "TURN relay benchmark: $rounds interleaved rounds x ${secs}s, $allocs allocations x $window in flight, 100-byte ChannelData"
r=1
while [ "$r" -le "$rounds" ]; do
    echo "$servers" | while IFS='|' read -r name port bopts cmd; do
        # shellcheck disable=SC2086
        run_one "$name" "$port" "$bopts" $cmd
    done
    r=$((r + 1))
done
median() { sort -n | awk '{v[NR]=$1} END {if (NR==0) print 0; else if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'; }
col() { awk -v n="$1" -v c="$2" '$1==n {print $c}' "$tmp/results"; }
ours=$(col stunkitd 2 | median)
ceiling=$(col forwarder 2 | median)
{
    echo "| relay | round trips/s (median) | spread | p50 | p99 | CPU per relayed datagram | stunkitd is | vs ceiling |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|"
    for name in forwarder stunkitd coturn; do
        grep -q "^$name " "$tmp/results" 2>/dev/null || continue
        rate=$(col $name 2 | median)
        lo=$(col $name 2 | sort -n | head -1)
        hi=$(col $name 2 | sort -n | tail -1)
        label=$name
        [ $name = forwarder ] && label="bare forwarder (ceiling)"
        ratio=$(awk -v a="$ours" -v b="$rate" 'BEGIN{ if (b>0) printf "%.2fx", a/b; else print "-"}')
        ceil=$(awk -v a="$rate" -v b="$ceiling" 'BEGIN{ if (b>0) printf "%.0f%%", 100*a/b; else print "-"}')
        printf '| %s | %.0f | %.0f-%.0f | %s us | %s us | %s ns | %s | %s |\n' "$label" "$rate" "$lo" "$hi" \
            "$(col $name 3 | median)" "$(col $name 4 | median)" "$(col $name 6 | median)" "$ratio" "$ceil"
    done
} >"$out"
echo
echo "$(date -u +%Y-%m-%d), $(nproc) cores, $(uname -r)"
cat "$out"
echo "(table written to $out)"
