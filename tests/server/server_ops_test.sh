#!/bin/bash
# server_ops_test.sh STUNKITD STUNKIT - running stunkitd as an operator does:
# a config file (and its line-numbered errors), the Prometheus endpoint,
# SIGUSR1 counters, --user and running with only CAP_NET_BIND_SERVICE (root
# parts are skipped without root).
set -u
# ports: a base per build tree (CMake sets it), so two checkouts can test at once
base=${STUNKIT_TEST_PORT_BASE:-21000}
priv1=$((300 + 2 * (base / 1000 % 40))) priv2=$((301 + 2 * (base / 1000 % 40))) # below 1024
stunkitd=$1
stunkit=$2
. "$(dirname "$0")/../lib/testlib.sh"

cat >"$tmp/stunkitd.conf" <<CONF
# stunkitd test configuration
listen = 127.0.0.1:$((base + 870))
alternate = 127.0.0.2          # RFC 5780 mode
software = "stunkit ops test"  # quoted, spaces kept
rate-limit = 1000
no-tcp = yes
threads = 2
log-level = info
metrics = 127.0.0.1:$((base + 879))
CONF
"$stunkitd" --config "$tmp/stunkitd.conf" 2>"$tmp/server.err" &
pid=$!
pids="$pids $pid"
if up 127.0.0.1:$((base + 870)); then ok "starts from a config file"; else fail "did not start"; cat "$tmp/server.err"; exit 1; fi
"$stunkit" nat --json 127.0.0.1:$((base + 870)) >"$tmp/nat.json"
grep -q "\"other_address\": \"127.0.0.2:$((base + 871))\"" "$tmp/nat.json" && ok "alternate from the config file" || fail "alternate: $(cat "$tmp/nat.json")"
"$stunkit" addr --tcp --timeout 500 127.0.0.1:$((base + 870)) >/dev/null 2>&1 && fail "no-tcp = yes ignored" || ok "no-tcp = yes"

exec 3<>/dev/tcp/127.0.0.1/$((base + 879))
printf 'GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n' >&3
cat <&3 >"$tmp/metrics.txt"
exec 3<&-
head -1 "$tmp/metrics.txt" | grep -q "HTTP/1.0 200 OK" && ok "metrics endpoint answers" || fail "metrics: $(head -3 "$tmp/metrics.txt")"
success=$(sed -n 's/^stunkitd_responses_total{code="success"} \([0-9]*\).*/\1/p' "$tmp/metrics.txt")
[ -n "$success" ] && [ "$success" -ge 5 ] && ok "metrics count the answers ($success)" || fail "stunkitd_responses_total{code=\"success\"} is '$success'"
# the exposition format (0.0.4): every sample's family has HELP and TYPE
# before it, once; counters end in _total, gauges do not; names and labels
# well formed; the standard process metrics are there
tr -d '\r' <"$tmp/metrics.txt" | sed '1,/^$/d' >"$tmp/metrics.body"
if why=$(awk '
    /^# HELP / { if (help[$3]++) { print "HELP twice: " $3; bad = 1 } next }
    /^# TYPE / { if (type[$3]) { print "TYPE twice: " $3; bad = 1 }
                 if (!help[$3]) { print "TYPE before HELP: " $3; bad = 1 }
                 type[$3] = $4
                 if ($4 == "counter" && $3 !~ /_total$/) { print "counter without _total: " $3; bad = 1 }
                 if ($4 == "gauge" && $3 ~ /_total$/) { print "gauge named _total: " $3; bad = 1 }
                 next }
    /^#/ { next }
    { name = $0; sub(/[{ ].*/, "", name)
      if ($0 !~ /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="[^"]*"(,[a-zA-Z_][a-zA-Z0-9_]*="[^"]*")*\})? [0-9.e+-]+$/) { print "bad sample: " $0; bad = 1 }
      if (!type[name]) { print "no TYPE for " name; bad = 1 }
      samples++ }
    END { if (samples < 50) { print "only " samples " samples"; bad = 1 } exit bad }' "$tmp/metrics.body"); then
    ok "the exposition is well formed ($(grep -c '^# TYPE' "$tmp/metrics.body") families, gauges typed gauge)"
else
    fail "exposition: $why"
fi
for m in process_cpu_seconds_total process_resident_memory_bytes process_open_fds process_start_time_seconds \
    stunkitd_build_info stunkitd_turn_allocations stunkitd_rendezvous_rooms; do
    grep -q "^$m[ {]" "$tmp/metrics.body" || fail "no $m"
done
grep -q '^# TYPE stunkitd_turn_allocations gauge' "$tmp/metrics.body" && ok "process metrics, build info, gauges" || fail "gauges"
start=$(sed -n 's/^process_start_time_seconds \([0-9]*\).*/\1/p' "$tmp/metrics.body")
now=$(date +%s)
[ -n "$start" ] && [ $((now - start)) -ge 0 ] && [ $((now - start)) -lt 120 ] && ok "process_start_time_seconds is the start ($((now - start)) s ago)" ||
    fail "process_start_time_seconds '$start', now $now"
rx=$(sed -n 's/^stunkitd_received_bytes_total{transport="udp"} \([0-9]*\)/\1/p' "$tmp/metrics.body")
[ -n "$rx" ] && [ "$rx" -ge $((20 * success)) ] && ok "bytes counted ($rx received over UDP)" || fail "received bytes '$rx'"
# the Grafana dashboard asks only for what the server exports
dash="$(dirname "$0")/../../contrib/grafana/stunkitd.json"
missing=""
for m in $(grep '"expr":' "$dash" | grep -oE '\b(stunkitd|process)_[a-z_]+' | sort -u); do
    grep -q "^# TYPE $m " "$tmp/metrics.body" || missing="$missing $m"
done
n=$(grep '"expr":' "$dash" | grep -oE '\b(stunkitd|process)_[a-z_]+' | sort -u | wc -l)
[ -z "$missing" ] && [ "$n" -ge 10 ] && ok "the Grafana dashboard's $n metrics are all exported" || fail "dashboard asks for:$missing (of $n)"

# a slow client (a byte every 0.9 s) and ten idle connections do not hold a
# scrape up: each connection has 2 s for its request, and they are polled
# together (before: 1 s per recv, one connection at a time)
exec 4<>/dev/tcp/127.0.0.1/$((base + 879))
( for i in 1 2 3 4 5 6; do printf 'G' >&4 || break; sleep 0.9; done ) 2>/dev/null &
trickler=$!
for fdn in 5 6 7 8 9 10 11 12 13 14; do eval "exec $fdn<>/dev/tcp/127.0.0.1/$((base + 879))"; done
sleep 0.2
t0=$(date +%s%N)
exec 3<>/dev/tcp/127.0.0.1/$((base + 879))
printf 'GET /metrics HTTP/1.0\r\n\r\n' >&3
cat <&3 >"$tmp/metrics2.txt"
exec 3<&-
ms=$((($(date +%s%N) - t0) / 1000000))
head -1 "$tmp/metrics2.txt" | grep -q "200 OK" && [ "$ms" -lt 1500 ] &&
    ok "a scrape beside a trickling client and 10 idle connections: ${ms} ms" ||
    fail "scrape with slow neighbours took ${ms} ms: $(head -1 "$tmp/metrics2.txt")"
kill $trickler 2>/dev/null; wait $trickler 2>/dev/null
for fdn in 4 5 6 7 8 9 10 11 12 13 14; do eval "exec $fdn<&-"; done

kill -USR1 $pid
sleep 0.3
grep -q "counters (SIGUSR1)" "$tmp/server.err" && grep -q "success" "$tmp/server.err" && ok "SIGUSR1 prints the counters" || fail "no counters on SIGUSR1"
kill -TERM $pid
wait $pid
rc=$?
[ $rc -eq 0 ] && ok "stops on SIGTERM" || fail "exit $rc on SIGTERM"
pids=""

# the metrics endpoint off loopback: a warning
"$stunkitd" --listen 127.0.0.1:$((base + 872)) --no-tcp --metrics 0.0.0.0:$((base + 878)) --log-level warn 2>"$tmp/wild.err" &
pid=$!
pids="$pid"
up 127.0.0.1:$((base + 872)) || fail "server with a wildcard metrics address did not start"
grep -q "metrics endpoint 0.0.0.0:$((base + 878)) is not on loopback" "$tmp/wild.err" && ok "warns when metrics are not on loopback" ||
    fail "no warning: $(cat "$tmp/wild.err")"
kill $pid; wait $pid; pids=""

# config errors name the file and the line, and exit 2
conf_error "unknown key" "bad.conf:2: unknown key 'bogus'" "listen = 127.0.0.1
bogus = 1"
conf_error "bad value" "bad.conf:3: rate-limit 'fast': expected a number" "# comment

rate-limit = fast"
conf_error "no equals sign" "bad.conf:1: expected 'key = value'" "listen 127.0.0.1"
conf_error "bad flag value" "bad.conf:1: no-udp 'maybe': expected yes or no" "no-udp = maybe"
"$stunkitd" --config "$tmp/missing.conf" 2>"$tmp/err" >/dev/null
[ $? -eq 2 ] && grep -q "cannot read config file" "$tmp/err" && ok "missing config file" || fail "missing file: $(cat "$tmp/err")"

# under a service manager (systemd's Type=notify, sd_notify(3)): READY=1 once
# the sockets are bound, RELOADING=1 then READY=1 around a SIGHUP, STOPPING=1;
# a reload names the keys it cannot apply, and a bad line by FILE:LINE
python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(15)
with open(sys.argv[2], "a", buffering=1) as out:
    while True:
        try:
            d = s.recv(4096)
        except socket.timeout:
            break
        out.write(d.decode().replace("\n", " ") + "\n")
        if d.startswith(b"STOPPING=1"):
            break
' "$tmp/notify.sock" "$tmp/notify.log" &
lp=$!
pids="$pids $lp"
for _ in $(seq 50); do [ -S "$tmp/notify.sock" ] && break; sleep 0.1; done
printf 'listen = 127.0.0.1:%d\ncredential = alice:one\nlog-level = info\n' $((base + 880)) >"$tmp/n.conf"
NOTIFY_SOCKET="$tmp/notify.sock" "$stunkitd" --config "$tmp/n.conf" --no-tcp --threads 1 2>"$tmp/n.err" &
np=$!
pids="$pids $np"
for _ in $(seq 50); do grep -q "READY=1" "$tmp/notify.log" 2>/dev/null && break; sleep 0.1; done
grep -q "^READY=1" "$tmp/notify.log" && up 127.0.0.1:$((base + 880)) && ok "READY=1 once serving" ||
    fail "no READY=1: $(cat "$tmp/notify.log" "$tmp/n.err")"
printf 'listen = 127.0.0.1:%d\ncredential = alice:two\nrate-limit = 50\nlog-level = info\n' $((base + 881)) >"$tmp/n.conf"
kill -HUP $np
for _ in $(seq 50); do [ "$(grep -c "READY=1" "$tmp/notify.log")" -ge 2 ] && break; sleep 0.1; done
grep -q "^RELOADING=1 MONOTONIC_USEC=[0-9]" "$tmp/notify.log" && [ "$(grep -c "^READY=1" "$tmp/notify.log")" -ge 2 ] &&
    ok "a reload says RELOADING=1, then READY=1" || fail "reload notifications: $(cat "$tmp/notify.log")"
grep -q "SIGHUP: listen, rate-limit changed; those need a restart" "$tmp/n.err" && grep -q "credentials reloaded" "$tmp/n.err" &&
    ok "a reload names what it cannot apply: $(grep -o 'SIGHUP: listen.*' "$tmp/n.err")" ||
    fail "reload of changed keys: $(cat "$tmp/n.err")"
printf 'listen = 127.0.0.1:%d\nbogus-key = 1\n' $((base + 880)) >"$tmp/n.conf"
kill -HUP $np
for _ in $(seq 50); do grep -q "no longer parses" "$tmp/n.err" && break; sleep 0.1; done
grep -q "$tmp/n.conf:2: unknown key 'bogus-key'" "$tmp/n.err" && grep -q "no longer parses" "$tmp/n.err" &&
    ok "a bad line on reload is named by FILE:LINE: $(grep -o "n.conf:2:.*" "$tmp/n.err")" ||
    fail "bad line on reload: $(cat "$tmp/n.err")"
kill $np
wait $np
wait $lp
grep -q "^STOPPING=1" "$tmp/notify.log" && ok "STOPPING=1 on SIGTERM" || fail "no STOPPING=1: $(cat "$tmp/notify.log")"
pids=""

if [ "$(id -u)" -ne 0 ]; then
    echo "skip --user and CAP_NET_BIND_SERVICE checks: not root"
else
    nobody_uid=$(id -u nobody)
    "$stunkitd" --listen 127.0.0.1:$priv1 --user nobody --no-tcp --log-level warn 2>"$tmp/user.err" &
    pid=$!
    pids="$pids $pid"
    if up 127.0.0.1:$priv1; then
        uid=$(awk '/^Uid:/ {print $2, $3, $4, $5}' /proc/$pid/status)
        [ "$uid" = "$nobody_uid $nobody_uid $nobody_uid $nobody_uid" ] && ok "--user nobody: uid $nobody_uid, port $priv1 still served" || fail "--user: Uid is $uid"
        caps=$(awk '/^CapEff:/ {print $2}' /proc/$pid/status)
        [ "$caps" = "0000000000000000" ] && ok "--user leaves no capabilities" || fail "CapEff $caps"
    else
        fail "--user nobody: no answer"; cat "$tmp/user.err"
    fi
    kill $pid; wait $pid; pids=""
    if command -v setpriv >/dev/null 2>&1; then
        setpriv --reuid="$nobody_uid" --regid="$(id -g nobody)" --clear-groups --inh-caps=-all,+net_bind_service \
            --ambient-caps=-all,+net_bind_service --bounding-set=-all,+net_bind_service \
            "$stunkitd" --listen 127.0.0.1:$priv2 --no-tcp --log-level warn 2>"$tmp/cap.err" &
        pid=$!
        pids="$pids $pid"
        up 127.0.0.1:$priv2 && ok "runs as nobody with only CAP_NET_BIND_SERVICE on port $priv2" || { fail "CAP_NET_BIND_SERVICE run"; cat "$tmp/cap.err"; }
        kill $pid; wait $pid; pids=""
    else
        echo "skip CAP_NET_BIND_SERVICE check: setpriv not installed"
    fi
fi
finish
