#!/bin/sh
# bench-servers.sh BUILD_DIR - stunkitd against its peers, side by side, on
# loopback. Each server gets CPU 0 and one worker thread where it has such a
# knob; the load generator (`stunkit bench`) gets CPU 1. Servers run one after
# another, interleaved over BENCH_ROUNDS rounds; the table shows medians.
#
# Peers, where installed: coturn (`turnserver --stun-only`), the Vovida stund
# (Debian's stun-server), and bench_reflector, the ceiling: a bare
# recvmmsg/sendmmsg loop that answers without validating anything.
set -eu
build=$1
bin="$build/bin"
secs=${BENCH_SECONDS:-5}
rounds=${BENCH_ROUNDS:-3}
base=${BENCH_PORT:-24780}
out="$build/bench-servers.md"
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
if ! command -v taskset >/dev/null 2>&1 || [ "$(nproc)" -lt 2 ]; then
    pin_server=""
    pin_client=""
fi

# name|port|command
servers="reflector|$base|$bin/bench_reflector 127.0.0.1 $base 1"
servers="$servers
stunkitd|$((base + 10))|$bin/stunkitd --listen 127.0.0.1:$((base + 10)) --threads 1 --rate-limit 0 --no-tcp --log-level error"
if command -v turnserver >/dev/null 2>&1; then
    servers="$servers
coturn|$((base + 20))|turnserver --stun-only -L 127.0.0.1 -p $((base + 20)) --no-cli --no-tls --no-dtls -m 1 --no-stdout-log --log-file $tmp/coturn.log --simple-log --pidfile $tmp/coturn.pid --no-software-attribute"
fi
if command -v stund >/dev/null 2>&1; then
    servers="$servers
stund|$((base + 30))|stund -h 127.0.0.1 -a 127.0.0.2 -p $((base + 30)) -o $((base + 31))"
fi

run_one() { # name port cmd... -> appends "name rps p50 p99 lost" to $tmp/results
    name=$1 port=$2
    shift 2
    $pin_server "$@" >"$tmp/$name.out" 2>&1 &
    pid=$!
    pids="$pids $pid"
    ok=""
    for _ in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
        if "$bin/stunkit" bench -d 0.2 -s 1 -w 1 --json "127.0.0.1:$port" >/dev/null 2>&1; then ok=1; break; fi
        sleep 0.2
    done
    if [ -z "$ok" ]; then
        echo "bench: $name did not answer on 127.0.0.1:$port; skipped" >&2
        tail -n 5 "$tmp/$name.out" >&2 || true
    else
        $pin_client "$bin/stunkit" bench -d "$secs" -s 32 -w 8 --json "127.0.0.1:$port" >"$tmp/$name.json"
        # pick numbers out of the one-line JSON without jq
        rps=$(sed 's/.*"requests_per_s": \([0-9.]*\).*/\1/' "$tmp/$name.json")
        p50=$(sed 's/.*"p50": \([0-9.]*\).*/\1/' "$tmp/$name.json")
        p99=$(sed 's/.*"p99": \([0-9.]*\).*/\1/' "$tmp/$name.json")
        lost=$(sed 's/.*"lost": \([0-9]*\).*/\1/' "$tmp/$name.json")
        bad=$(sed 's/.*"bad": \([0-9]*\).*/\1/' "$tmp/$name.json")
        echo "$name $rps $p50 $p99 $lost $bad" >>"$tmp/results"
        echo "  round $r: $name $rps requests/s (p50 ${p50} us, p99 ${p99} us, lost $lost, bad $bad)"
    fi
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    if [ -f "$tmp/coturn.pid" ]; then kill "$(cat "$tmp/coturn.pid")" 2>/dev/null || true; rm -f "$tmp/coturn.pid"; fi
    sleep 0.3
}

echo "server benchmark: $rounds rounds x ${secs}s per server, server on CPU 0, stunkit bench on CPU 1"
r=1
while [ "$r" -le "$rounds" ]; do
    echo "$servers" | while IFS='|' read -r name port cmd; do
        # shellcheck disable=SC2086
        run_one "$name" "$port" $cmd
    done
    r=$((r + 1))
done

median() { sort -n | awk '{v[NR]=$1} END {if (NR==0) print 0; else if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'; }
ours=$(awk '$1=="stunkitd"{print $2}' "$tmp/results" | median)
ceiling=$(awk '$1=="reflector"{print $2}' "$tmp/results" | median)
{
    echo "| server | requests/s (median of $rounds) | p50 latency | p99 latency | lost | bad | stunkitd is | vs ceiling |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|"
    for name in reflector stunkitd coturn stund; do
        grep -q "^$name " "$tmp/results" 2>/dev/null || continue
        rps=$(awk -v n="$name" '$1==n{print $2}' "$tmp/results" | median)
        p50=$(awk -v n="$name" '$1==n{print $3}' "$tmp/results" | median)
        p99=$(awk -v n="$name" '$1==n{print $4}' "$tmp/results" | median)
        lost=$(awk -v n="$name" '$1==n{s+=$5} END{print s+0}' "$tmp/results")
        bad=$(awk -v n="$name" '$1==n{s+=$6} END{print s+0}' "$tmp/results")
        ratio=$(awk -v a="$ours" -v b="$rps" 'BEGIN{ if (b>0) printf "%.2fx", a/b; else print "-"}')
        ceil=$(awk -v a="$rps" -v b="$ceiling" 'BEGIN{ if (b>0) printf "%.0f%%", 100*a/b; else print "-"}')
        label=$name
        [ "$name" = reflector ] && label="reflector (ceiling)"
        echo "| $label | $(printf '%.0f' "$rps") | ${p50} us | ${p99} us | $lost | $bad | $ratio | $ceil |"
    done
} >"$out"
echo
echo "$(date -u +%Y-%m-%d), $(nproc) cores, $(uname -r), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
cat "$out"
echo "(table written to $out)"
