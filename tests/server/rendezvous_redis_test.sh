#!/bin/bash
# rendezvous_redis_test.sh STUNKITD STUNKIT - the rendezvous rooms in a real
# redis-server (Debian's), shared by two stunkitd on loopback:
#   - two `stunkit punch` peers that reach two different servers meet in one
#     room and connect;
#   - a server restarted while a peer waits in its room loses nothing: the
#     other server lists the room, the second peer comes there, and the first
#     (still talking to the restarted server) meets it;
#   - Redis down: the rendezvous answers 500 (punch says the rendezvous
#     failed), STUN keeps answering; Redis back: rooms work again;
#   - the new options' mistakes.
# 77 = skipped (no redis-server, or stunkitd built without hiredis).
set -u
stunkitd=$1
stunkit=$2
command -v redis-server >/dev/null 2>&1 || { echo "skip: redis-server not installed"; exit 77; }
. "$(dirname "$0")/../lib/testlib.sh"
base=${STUNKIT_TEST_PORT_BASE:-21000}
rport=$((base + 970)) s1=$((base + 971)) s2=$((base + 972))
if "$stunkitd" --rendezvous-redis 127.0.0.1:1 2>&1 | grep -q "built without Redis"; then
    echo "skip: stunkitd is built without hiredis"
    exit 77
fi

redis_up() {
    redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no >"$tmp/redis.log" 2>&1 &
    rpid=$!
    pids="$pids $rpid"
    for _ in $(seq 50); do
        (exec 3<>"/dev/tcp/127.0.0.1/$rport") 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}
server() { # PORT [extra...]: one stunkitd of the fleet
    local p=$1
    shift
    "$stunkitd" --listen "127.0.0.1:$p" --rendezvous --rendezvous-redis "127.0.0.1:$rport" --credential alice:fleet \
        --control "$tmp/ctl$p" --log-level warn "$@" >/dev/null 2>>"$tmp/server$p.err" &
    echo $!
}
redis_up || { fail "redis-server did not start: $(cat "$tmp/redis.log")"; exit 1; }
p1=$(server $s1)
p2=$(server $s2)
pids="$pids $p1 $p2"
up "127.0.0.1:$s1" && up "127.0.0.1:$s2" || { fail "stunkitd did not start: $(cat "$tmp"/server*.err)"; exit 1; }

punch() { # SERVER-PORT ROOM OUT [timeout ms]
    timeout 30 "$stunkit" punch --json --username alice --password fleet --timeout "${4:-8000}" "127.0.0.1:$1" "$2" >"$3" 2>&1
}

# 1. two servers, one room
punch $s1 meet-here "$tmp/a.json" &
a=$!
sleep 0.3
punch $s2 meet-here "$tmp/b.json"
wait $a
if grep -q '"connected": true' "$tmp/a.json" && grep -q '"connected": true' "$tmp/b.json" &&
    grep -q '"role": "offer"' "$tmp/a.json" && grep -q '"role": "answer"' "$tmp/b.json"; then
    ok "peers at two servers met in one room through Redis and connected"
else
    fail "two servers: A $(head -c 300 "$tmp/a.json"); B $(head -c 300 "$tmp/b.json")"
fi

# 2. a restart loses no room
punch $s1 survives "$tmp/c.json" 15000 &
c=$!
sleep 0.5
kill "$p1"
for _ in $(seq 100); do kill -0 "$p1" 2>/dev/null || break; sleep 0.05; done # not our child: no wait
p1=$(server $s1)
pids="$pids $p1"
up "127.0.0.1:$s1" || fail "stunkitd did not come back"
rooms=$("$stunkitd" ctl --socket "$tmp/ctl$s2" rooms)
case $rooms in *'"room": "survives"'*'"peers": 1'*) ok "the other server lists the waiting room after the restart" ;;
*) fail "rooms at the other server: $rooms" ;; esac
punch $s2 survives "$tmp/d.json"
wait $c
if grep -q '"connected": true' "$tmp/c.json" && grep -q '"connected": true' "$tmp/d.json"; then
    ok "the peer of the restarted server met the one of the other server"
else
    fail "after the restart: C $(head -c 300 "$tmp/c.json"); D $(head -c 300 "$tmp/d.json")"
fi

# 3. Redis down: 500 to the rendezvous, STUN goes on; Redis back: rooms again
kill "$rpid"
wait "$rpid" 2>/dev/null
punch $s1 no-store "$tmp/e.json" 3000
grep -q '"connected": false' "$tmp/e.json" && ok "Redis down: the rendezvous fails: $(grep -o '"reason": "[^"]*"' "$tmp/e.json")" ||
    fail "Redis down: $(head -c 300 "$tmp/e.json")"
"$stunkit" addr --username alice --password fleet --timeout 2000 "127.0.0.1:$s1" >/dev/null 2>&1 && ok "STUN still answered with Redis down" ||
    fail "STUN stopped with Redis down"
"$stunkitd" ctl --socket "$tmp/ctl$s1" status | grep -q '"ok": true' && ok "the control socket answers with Redis down" ||
    fail "status with Redis down"
redis_up || fail "redis-server did not restart"
sleep 1.2 # a reconnection is tried at most once a second
punch $s1 back-again "$tmp/f.json" &
f=$!
sleep 0.3
punch $s2 back-again "$tmp/g.json"
wait $f
grep -q '"connected": true' "$tmp/f.json" && grep -q '"connected": true' "$tmp/g.json" &&
    ok "Redis back: rooms work again" || fail "Redis back: $(head -c 300 "$tmp/f.json")"

# 4. mistakes
"$stunkitd" --listen 127.0.0.1:1 --credential a:b --rendezvous-redis 127.0.0.1:1 >/dev/null 2>"$tmp/err" ;
[ $? -eq 2 ] && grep -q "for --rendezvous" "$tmp/err" && ok "--rendezvous-redis without --rendezvous: refused" ||
    fail "without --rendezvous: $(cat "$tmp/err")"
"$stunkitd" --listen 127.0.0.1:1 --rendezvous --credential a:b --rendezvous-redis 127.0.0.1:1 \
    --rendezvous-redis-prefix 'bad prefix' >/dev/null 2>"$tmp/err"
[ $? -eq 2 ] && grep -q "rendezvous-redis-prefix" "$tmp/err" && ok "a bad prefix: refused" || fail "prefix: $(cat "$tmp/err")"
finish
