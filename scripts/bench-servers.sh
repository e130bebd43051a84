#!/bin/sh
# bench-servers.sh BUILD_DIR - stunkitd against its peers, side by side, on
# loopback. Each server gets CPU 0 and one worker thread where it has such a
# knob; the load generator (`stunkit bench`) gets CPU 1. Servers run one after
# another, interleaved over BENCH_ROUNDS rounds, for each load shape
# (BENCH_SHAPES: "SOCKETS:WINDOW ..."); each table shows the median and the
# spread (lowest-highest) of the rounds, so a rerun can be judged against it.
# "stunkitd (auth)" is stunkitd with short-term credentials, every request
# carrying USERNAME, MESSAGE-INTEGRITY and FINGERPRINT.
#
# Peers, where installed: coturn (`turnserver --stun-only`), the Vovida stund
# (Debian's stun-server), and bench_reflector, the ceiling: a bare
# recvmmsg/sendmmsg loop that answers without validating anything.
set -eu
build=$1
bin="$build/bin"
secs=${BENCH_SECONDS:-3}
rounds=${BENCH_ROUNDS:-5}
shapes=${BENCH_SHAPES:-"32:8 8:16"}
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

# name|port|bench options|command
servers="reflector|$base||$bin/bench_reflector 127.0.0.1 $base 1"
servers="$servers
stunkitd|$((base + 10))||$bin/stunkitd --listen 127.0.0.1:$((base + 10)) --threads 1 --rate-limit 0 --no-tcp --log-level error
stunkitd-auth|$((base + 40))|--username bench --password bench-password|$bin/stunkitd --listen 127.0.0.1:$((base + 40)) --threads 1 --rate-limit 0 --no-tcp --log-level error --short-term --credential bench:bench-password"
if command -v turnserver >/dev/null 2>&1; then
    servers="$servers
coturn|$((base + 20))||turnserver --stun-only -L 127.0.0.1 -p $((base + 20)) --no-cli --no-tls --no-dtls -m 1 --no-stdout-log --log-file $tmp/coturn.log --simple-log --pidfile $tmp/coturn.pid --no-software-attribute"
fi
if command -v stund >/dev/null 2>&1; then
    servers="$servers
stund|$((base + 30))||stund -h 127.0.0.1 -a 127.0.0.2 -p $((base + 30)) -o $((base + 31))"
fi

run_one() { # shape name port benchopts cmd... -> appends "shape name rps p50 p99 lost bad" to $tmp/results
    shape=$1 name=$2 port=$3 bopts=$4
    shift 4
    socks=${shape%:*} window=${shape#*:}
    $pin_server "$@" >"$tmp/$name.out" 2>&1 &
    pid=$!
    pids="$pids $pid"
    ok=""
    for _ in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
        # shellcheck disable=SC2086
        if "$bin/stunkit" bench -d 0.2 -s 1 -w 1 --json $bopts "127.0.0.1:$port" 2>/dev/null | grep -q '"answered": [1-9]'; then ok=1; break; fi
        sleep 0.2
    done
    if [ -z "$ok" ]; then
        echo "bench: $name did not answer on 127.0.0.1:$port; skipped" >&2
        tail -n 5 "$tmp/$name.out" >&2 || true
    else
        # shellcheck disable=SC2086
        $pin_client "$bin/stunkit" bench -d "$secs" -s "$socks" -w "$window" --json $bopts "127.0.0.1:$port" >"$tmp/$name.json"
        # pick numbers out of the one-line JSON without jq
        rps=$(sed 's/.*"requests_per_s": \([0-9.]*\).*/\1/' "$tmp/$name.json")
        p50=$(sed 's/.*"p50": \([0-9.]*\).*/\1/' "$tmp/$name.json")
        p99=$(sed 's/.*"p99": \([0-9.]*\).*/\1/' "$tmp/$name.json")
        lost=$(sed 's/.*"lost": \([0-9]*\).*/\1/' "$tmp/$name.json")
        bad=$(sed 's/.*"bad": \([0-9]*\).*/\1/' "$tmp/$name.json")
        echo "$shape $name $rps $p50 $p99 $lost $bad" >>"$tmp/results"
        echo "  $shape round $r: $name $rps requests/s (p50 ${p50} us, p99 ${p99} us, lost $lost, bad $bad)"
    fi
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    if [ -f "$tmp/coturn.pid" ]; then kill "$(cat "$tmp/coturn.pid")" 2>/dev/null || true; rm -f "$tmp/coturn.pid"; fi
    sleep 0.3
}

echo "server benchmark: $rounds interleaved rounds x ${secs}s per server and load shape ($shapes), server on CPU 0, stunkit bench on CPU 1"
for shape in $shapes; do
    r=1
    while [ "$r" -le "$rounds" ]; do
        echo "$servers" | while IFS='|' read -r name port bopts cmd; do
            # shellcheck disable=SC2086
            run_one "$shape" "$name" "$port" "$bopts" $cmd
        done
        r=$((r + 1))
    done
done

median() { sort -n | awk '{v[NR]=$1} END {if (NR==0) print 0; else if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'; }
col() { awk -v s="$1" -v n="$2" -v c="$3" '$1==s && $2==n {print $c}' "$tmp/results"; }
: >"$out"
for shape in $shapes; do
    ours=$(col "$shape" stunkitd 3 | median)
    ceiling=$(col "$shape" reflector 3 | median)
    {
        echo
        echo "Load: ${shape%:*} sockets x ${shape#*:} requests in flight each, $rounds rounds of ${secs} s"
        echo
        echo "| server | requests/s (median) | spread (low-high) | p50 latency | p99 latency | lost | bad | stunkitd is | vs ceiling |"
        echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
        for name in reflector stunkitd stunkitd-auth coturn stund; do
            grep -q "^$shape $name " "$tmp/results" 2>/dev/null || continue
            rps=$(col "$shape" "$name" 3 | median)
            lo=$(col "$shape" "$name" 3 | sort -n | head -1)
            hi=$(col "$shape" "$name" 3 | sort -n | tail -1)
            p50=$(col "$shape" "$name" 4 | median)
            p99=$(col "$shape" "$name" 5 | median)
            lost=$(col "$shape" "$name" 6 | awk '{s+=$1} END{print s+0}')
            bad=$(col "$shape" "$name" 7 | awk '{s+=$1} END{print s+0}')
            ratio=$(awk -v a="$ours" -v b="$rps" 'BEGIN{ if (b>0) printf "%.2fx", a/b; else print "-"}')
            ceil=$(awk -v a="$rps" -v b="$ceiling" 'BEGIN{ if (b>0) printf "%.0f%%", 100*a/b; else print "-"}')
            label=$name
            [ "$name" = reflector ] && label="reflector (ceiling)"
            [ "$name" = stunkitd-auth ] && label="stunkitd, short-term auth" && ratio="-"
            printf '| %s | %.0f | %.0f-%.0f | %s us | %s us | %s | %s | %s | %s |\n' "$label" "$rps" "$lo" "$hi" "$p50" "$p99" \
                "$lost" "$bad" "$ratio" "$ceil"
        done
    } >>"$out"
done
echo
echo "$(date -u +%Y-%m-%d), $(nproc) cores, $(uname -r), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
cat "$out"
echo "(tables written to $out)"
