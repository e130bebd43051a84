#!/bin/bash
# fleet_lab_test.sh STUNKITD STUNKIT - the operator's guide, section 7 ("A
# fleet, end to end"), followed step by step in network namespaces:
#
#   A ns --- NA ns (NAT) ---+                        +--- S1 ns  stun1 198.51.100.11
#   100.64.0.2   203.0.113.10|                        |
#                            +-- F ns (the edge) ----+--- S2 ns  stun2 198.51.100.12
#   B ns --- NB ns (NAT) ---+   203.0.113.1  HAProxy :443 (ALPN, PROXY v2, /ready checks)
#   100.64.0.2   203.0.113.20    203.0.113.53 dnsmasq (SRV)  +--- S3 ns  stun3 198.51.100.13
#                                198.51.100.1  (inside), 198.51.100.20 redis-server
#
# 1. DNS: SRV records name the three servers (and the edge for turns:);
#    `stunkit addr example.org` from behind a NAT finds one and reports the
#    NAT's address.
# 2. One config file for every server (its own address, its neighbours as
#    alternates), generated from one template as the guide shows it.
# 3. HAProxy on 443: `stunkit turn --tls turns:example.org` through it
#    reports the client's own (NAT) address, relayed by one of the servers.
# 4. Rooms in Redis: two `stunkit punch` peers that reach two different
#    servers meet and connect; then a server is killed (SIGKILL) while a
#    peer waits in its room: that peer carries on at its fallback, the
#    other comes to a third server, and they connect. The server comes back.
# 5. Rotating the secret: add the new one everywhere, reload (the control
#    socket's reload = systemctl reload): both secrets' credentials work;
#    drop the old, reload: the old ones get 401, the new ones work.
# 6. Taking stun2 out: `stunkitd ctl drain` while a call relayed by stun2
#    goes on: /ready says 503, HAProxy's check takes it out, a new Allocate
#    at stun2 is sent to an alternate (300) and `stunkit turn` follows; the
#    call ends well; stun2 exits on its own once its last allocation ends.
# 7. Watching: each server's /metrics answers (stun2 counted its 300s
#    before it left).
# 8. Revoking a user on every server: refused at once everywhere.
# Documentation and carrier-inside addresses only; namespaces and processes
# removed on exit. Root only (77 = skipped otherwise).
set -u
stunkitd=$1
stunkit=$2
[ "$(id -u)" -eq 0 ] || { echo "skip: network namespaces need root"; exit 77; }
for tool in ip nft haproxy redis-server dnsmasq openssl; do
    command -v $tool >/dev/null 2>&1 || { echo "skip: $tool not installed"; exit 77; }
done
if "$stunkitd" --rendezvous-redis 127.0.0.1:1 2>&1 | grep -q "built without Redis"; then
    echo "skip: stunkitd is built without hiredis"
    exit 77
fi
. "$(dirname "$0")/../lib/testlib.sh"
. "$(dirname "$0")/../lib/netns.sh"
tag="fl$$"
F="${tag}f" S1="${tag}1" S2="${tag}2" S3="${tag}3" NA="${tag}x" NB="${tag}y" A="${tag}a" B="${tag}b"
NC="${tag}z" C="${tag}c"
trap 'testlib_cleanup; rm -rf "/etc/netns/$A" "/etc/netns/$B" "/etc/netns/$C"' EXIT
lab_started=$(date +%s)

# ---- the network ----
ns_add "$F" "$S1" "$S2" "$S3" "$NA" "$NB" "$A" "$B" "$NC" "$C" || { fail "netns"; exit 1; }
ip -n "$F" link add br0 type bridge && ip -n "$F" link set br0 up   # the servers' network
ip -n "$F" link add br1 type bridge && ip -n "$F" link set br1 up   # the internet side
ns_addr "$F" br0 198.51.100.1/24 198.51.100.20/24
ns_addr "$F" br1 203.0.113.1/24 203.0.113.53/24
ns_router "$F"
for i in 1 2 3; do
    s="${tag}$i"
    ns_veth "$s" eth0 "$F" "s$i" && ip -n "$F" link set "s$i" master br0
    ns_addr "$s" eth0 "198.51.100.1$i/24"
    ns_route "$s" default via 198.51.100.1
done
side() { # PEER_NS NAT_NS WAN_ADDR [udp-blocked]
    local p=$1 r=$2 wan=$3 block=""
    # a network that lets no UDP out but to its DNS resolver, and says so
    # (ICMP administratively prohibited): TCP and TLS only, as some
    # corporate networks
    [ "${4:-}" = udp-blocked ] && block='chain udp_out { type filter hook forward priority filter; policy accept; ct state established,related accept; ip daddr 203.0.113.53 udp dport 53 accept; meta l4proto udp reject with icmp type admin-prohibited; }' 
    ns_veth "$r" wan "$F" "w$r" && ip -n "$F" link set "w$r" master br1
    ns_veth "$p" eth0 "$r" lan
    ns_addr "$r" wan "$wan/24"
    ns_addr "$r" lan 100.64.0.1/24
    ns_addr "$p" eth0 100.64.0.2/24
    ns_route "$r" default via 203.0.113.1
    ns_route "$p" default via 100.64.0.1
    ns_router "$r"
    # a home router: port-restricted cone (masquerade), unsolicited UDP to itself dropped
    ip netns exec "$r" nft -f - <<NFT
table ip lab {
    chain post { type nat hook postrouting priority srcnat; policy accept; oifname "wan" masquerade; }
    chain in { type filter hook input priority filter; policy accept; iifname "wan" meta l4proto udp ct state new drop; }
    $block
}
NFT
    [ $? = 0 ] || fail "the router $r's nftables rules did not load"
    mkdir -p "/etc/netns/$p"
    echo "nameserver 203.0.113.53" >"/etc/netns/$p/resolv.conf" # ip netns exec mounts it over /etc/resolv.conf
}
side "$A" "$NA" 203.0.113.10
side "$B" "$NB" 203.0.113.20
side "$C" "$NC" 203.0.113.30 udp-blocked
in_a() { ip netns exec "$A" "$@"; }
in_b() { ip netns exec "$B" "$@"; }

# ---- 1. DNS ----
ip netns exec "$F" dnsmasq --no-daemon --port=53 --listen-address=203.0.113.53 --bind-interfaces --no-resolv \
    --no-hosts --log-facility=- \
    --srv-host=_stun._udp.example.org,stun1.example.org,3478,10,33 \
    --srv-host=_stun._udp.example.org,stun2.example.org,3478,10,33 \
    --srv-host=_stun._udp.example.org,stun3.example.org,3478,10,33 \
    --srv-host=_turns._tcp.example.org,edge.example.org,443,10,100 \
    --host-record=stun1.example.org,198.51.100.11 --host-record=stun2.example.org,198.51.100.12 \
    --host-record=stun3.example.org,198.51.100.13 --host-record=edge.example.org,203.0.113.1 \
    >"$tmp/dns.log" 2>&1 &
pids="$pids $!"

# ---- 2. one config for every server ----
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=example.org \
    -addext "subjectAltName=DNS:example.org,DNS:edge.example.org,DNS:stun1.example.org,DNS:stun2.example.org,DNS:stun3.example.org" \
    -days 2 -keyout "$tmp/privkey.pem" -out "$tmp/fullchain.pem" 2>/dev/null || { fail "openssl req"; exit 1; }
old_secret="the-current-secret-2026" new_secret="the-next-secret-2027"
secrets="auth-secret = \"$old_secret\""
config() { # N: stunkitd.conf of stunN (the guide's template)
    local n=$1 k
    {
        echo "listen = 198.51.100.1$n"
        echo "tls-port = 443"
        echo "tls-cert = $tmp/fullchain.pem"
        echo "tls-key = $tmp/privkey.pem"
        echo "proxy-from = 198.51.100.1/32"
        echo "realm = example.org"
        echo "$secrets"
        echo "nonce-key = \"one-key-for-the-fleet-2026\""
        echo "turn = yes"
        echo "rendezvous = yes"
        echo "rendezvous-redis = 198.51.100.20:6379"
        for k in 1 2 3; do [ "$k" = "$n" ] || echo "alternate-server = 198.51.100.1$k"; done
        echo "metrics = 198.51.100.1$n:9478"
        echo "control = $tmp/control$n"
        echo "allowed-peer = 198.51.100.0/24" # the lab's documentation ranges: relays and NATs
        echo "allowed-peer = 203.0.113.0/24"
        echo "log-level = warn"
    } >"$tmp/stunkitd$n.conf"
    chmod 600 "$tmp/stunkitd$n.conf"
}
spid=("" "" "" "")
start_server() { # N
    local n=$1
    config "$n"
    ip netns exec "${tag}$n" "$stunkitd" --config "$tmp/stunkitd$n.conf" >>"$tmp/stun$n.out" 2>>"$tmp/stun$n.err" &
    spid[$n]=$!
    pids="$pids $!"
}
ip netns exec "$F" redis-server --port 6379 --bind 198.51.100.20 --save '' --appendonly no --protected-mode no \
    >"$tmp/redis.log" 2>&1 &
pids="$pids $!"
ns_wait_port "$F" tcp 198.51.100.20:6379 || { fail "redis-server did not start: $(cat "$tmp/redis.log")"; exit 1; }
for n in 1 2 3; do start_server $n; done
for n in 1 2 3; do
    ns_wait_port "${tag}$n" udp "198.51.100.1$n:3478" && ns_wait_port "${tag}$n" tcp "198.51.100.1$n:443" ||
        { fail "stun$n did not start: $(cat "$tmp/stun$n.err")"; exit 1; }
done
ns_wait_port "$F" udp 203.0.113.53:53 || { fail "dnsmasq did not start: $(cat "$tmp/dns.log")"; exit 1; }

out=$(in_a "$stunkit" addr --json --timeout 3000 example.org 2>&1)
case $out in
*'"server_address": "198.51.100.1'[123]':3478"'*'"mapped": "203.0.113.10:'*) ok "1. DNS: SRV example.org -> $(echo "$out" | sed -n 's/.*"server_address": "\([^"]*\)".*/\1/p'); the NAT's address seen" ;;
*) fail "1. stunkit addr example.org: $out" ;;
esac

# credentials as the guide's backend makes them (REST, RFC-draft / coturn
# style): USERNAME "EXPIRY:NAME", PASSWORD base64(HMAC-SHA1(secret, USERNAME))
cred() { # NAME SECRET -> "USER PASS"
    local u="$(($(date +%s) + 3600)):$1"
    echo "$u $(printf '%s' "$u" | openssl dgst -sha1 -hmac "$2" -binary | openssl base64 -A)"
}
read -r alice_u alice_p <<<"$(cred alice "$old_secret")"

# ---- 2/3. HAProxy on 443 in front of the three ----
cat >"$tmp/haproxy.cfg" <<EOF
global
    maxconn 200
defaults
    mode tcp
    timeout connect 5s
    timeout client 30s
    timeout server 30s
    default-server inter 300ms fall 2 rise 2
frontend https
    bind 203.0.113.1:443
    tcp-request inspect-delay 5s
    tcp-request content accept if { req.ssl_hello_type 1 }
    use_backend stun if { req.ssl_alpn stun.turn } || { req.ssl_alpn stun.nat-discovery }
backend stun
    option httpchk GET /ready
    server stun1 198.51.100.11:443 send-proxy-v2 check port 9478
    server stun2 198.51.100.12:443 send-proxy-v2 check port 9478
    server stun3 198.51.100.13:443 send-proxy-v2 check port 9478
EOF
haproxy -c -f "$tmp/haproxy.cfg" >"$tmp/haproxy.check" 2>&1 || { fail "haproxy -c: $(cat "$tmp/haproxy.check")"; exit 1; }
ip netns exec "$F" haproxy -db -f "$tmp/haproxy.cfg" >"$tmp/haproxy.log" 2>&1 &
pids="$pids $!"
ns_wait_port "$F" tcp 203.0.113.1:443 || { fail "haproxy did not start: $(cat "$tmp/haproxy.log")"; exit 1; }
sleep 1 # its first health checks

turn_tls() { # [ns runner] -> JSON of stunkit turn --tls through the edge
    in_a "$stunkit" turn --json --tls --ca-file "$tmp/fullchain.pem" --timeout 8000 --username "$alice_u" \
        --password "$alice_p" turns:example.org 2>&1
}
out=$(turn_tls)
case $out in
*'"ok": true'*'"relayed": "198.51.100.1'[123]':'*'"mapped": "203.0.113.10:'*) ok "3. TURN over TLS on 443 through HAProxy: relayed by $(echo "$out" | sed -n 's/.*"relayed": "\([^:]*\):.*/\1/p'), the client's own NAT address seen (PROXY v2)" ;;
*) fail "3. stunkit turn --tls turns:example.org: $out" ;;
esac

# ---- 4. rooms in Redis; a server killed mid-exchange ----
punch() { # NS OUT SERVER ROOM [options...]
    local ns=$1 o=$2 srv=$3 room=$4
    shift 4
    timeout 40 ip netns exec "$ns" "$stunkit" punch --json --no-map --username "$alice_u" --password "$alice_p" \
        --timeout 10000 --wait 30 "$@" "$srv" "$room" >"$o" 2>"$o.err"
}
field() { sed -n "s/.*\"$2\": \"\\{0,1\\}\\([^\",}]*\\).*/\\1/p" "$1"; }
punch "$A" "$tmp/p1a.json" stun1.example.org meet &
pa=$!
sleep 0.3
punch "$B" "$tmp/p1b.json" stun3.example.org meet
wait $pa
if grep -q '"connected": true' "$tmp/p1a.json" && grep -q '"connected": true' "$tmp/p1b.json" &&
    [ "$(field "$tmp/p1a.json" server)" = 198.51.100.11:3478 ] && [ "$(field "$tmp/p1b.json" server)" = 198.51.100.13:3478 ]; then
    ok "4. peers at stun1 and stun3 met in one room (Redis) and connected ($(field "$tmp/p1a.json" path))"
else
    fail "4. two servers: A $(head -c 400 "$tmp/p1a.json") $(head -c 200 "$tmp/p1a.json.err"); B $(head -c 400 "$tmp/p1b.json")"
fi

punch "$A" "$tmp/p2a.json" stun1.example.org failover --fallback stun2.example.org &
pa=$!
listed=0
for _ in $(seq 100); do # A in the room (the fleet's rooms are in Redis: any server lists it)
    case $("$stunkitd" ctl --socket "$tmp/control3" rooms 2>/dev/null) in *'"room": "failover"'*'"peers": 1'*) listed=1; break ;; esac
    sleep 0.05
done
[ $listed = 1 ] || fail "4. A's room not listed: $("$stunkitd" ctl --socket "$tmp/control3" rooms 2>&1)"
# A's agent gathers from stun1 in milliseconds here; half a second so its
# reflexive address is certainly in (its relay at stun1 dies with stun1:
# the agent keeps the server it started with, so the pair must go direct)
sleep 0.5
kill -9 "${spid[1]}" # stun1 dies with A waiting in its room
wait "${spid[1]}" 2>/dev/null
killed_at=$(date +%s%N)
punch "$B" "$tmp/p2b.json" stun3.example.org failover
wait $pa
if grep -q '"connected": true' "$tmp/p2a.json" && grep -q '"connected": true' "$tmp/p2b.json" &&
    [ "$(field "$tmp/p2a.json" server)" = 198.51.100.12:3478 ] && [ "$(field "$tmp/p2a.json" server_moves)" = 1 ] &&
    grep -q '"role": "offer"' "$tmp/p2a.json"; then
    ok "4. stun1 killed while A waited in its room: A carried on at stun2 (1 move, still the offerer), met B at stun3, connected ($(field "$tmp/p2a.json" path)) within $((($(date +%s%N) - killed_at) / 1000000)) ms"
else
    fail "4. failover: A $(head -c 500 "$tmp/p2a.json") $(tail -c 300 "$tmp/p2a.json.err"); B $(head -c 300 "$tmp/p2b.json")"
fi
start_server 1 # stun1 comes back
ns_wait_port "$S1" udp 198.51.100.11:3478 && ns_wait_port "$S1" tcp 198.51.100.11:443 ||
    fail "stun1 did not come back: $(tail -3 "$tmp/stun1.err")"

# ---- 5. rotating the secret ----
turn_udp() { # SERVER USER PASS -> JSON
    in_a "$stunkit" turn --json --timeout 5000 --username "$2" --password "$3" "$1" 2>&1
}
read -r next_u next_p <<<"$(cred alice "$new_secret")"
secrets="auth-secret = \"$new_secret\"
auth-secret = \"$old_secret\""
for n in 1 2 3; do config $n; "$stunkitd" ctl --socket "$tmp/control$n" reload >/dev/null || fail "5. reload stun$n"; done
sleep 0.3
o1=$(turn_udp stun1.example.org "$alice_u" "$alice_p") o3=$(turn_udp stun3.example.org "$next_u" "$next_p")
case "$o1|$o3" in
*'"ok": true'*'|'*'"ok": true'*) ok "5. both secrets accepted after the reload (old at stun1, new at stun3)" ;;
*) fail "5. mid-rotation: old@stun1 $o1; new@stun3 $o3" ;;
esac
secrets="auth-secret = \"$new_secret\""
for n in 1 2 3; do config $n; "$stunkitd" ctl --socket "$tmp/control$n" reload >/dev/null || fail "5. reload stun$n"; done
sleep 0.3
o2=$(turn_udp stun2.example.org "$alice_u" "$alice_p") o1=$(turn_udp stun1.example.org "$next_u" "$next_p")
case "$o2" in
*'"ok": false'*'"error_code": 401'*) ok "5. the old secret dropped: its credentials get 401 (stun2)" ;;
*) fail "5. old secret after rotation: $o2" ;;
esac
case "$o1" in *'"ok": true'*) ok "5. the new secret's credentials work (stun1)" ;; *) fail "5. new secret: $o1" ;; esac
# the same file but for the secrets: a reload has nothing to ask a restart for
# (it once took the Redis address, a pointer into each file's text, for a change)
if grep -h "needs a restart\|need a restart" "$tmp"/stun[123].err; then fail "5. a reload of the same config asked for a restart"
else ok "5. the reloads applied the secrets and named nothing to restart"; fi
alice_u=$next_u alice_p=$next_p

# ---- 6. taking stun2 out ----
ready() { # N -> the status line of /ready (from the edge, as HAProxy asks)
    ip netns exec "$F" timeout 3 bash -c "exec 3<>/dev/tcp/198.51.100.1$1/9478 && printf 'GET /ready HTTP/1.0\r\n\r\n' >&3 && head -1 <&3" 2>/dev/null | tr -d '\r'
}
metrics() { # N -> /metrics
    ip netns exec "$F" timeout 3 bash -c "exec 3<>/dev/tcp/198.51.100.1$1/9478 && printf 'GET /metrics HTTP/1.0\r\n\r\n' >&3 && cat <&3" 2>/dev/null
}
case $(ready 2) in *" 200 "*) ok "6. stun2 /ready: 200 before the drain" ;; *) fail "6. /ready before: $(ready 2)" ;; esac
# a call relayed by stun2 (both sides relay-only, pings for ~10 s)
punch "$A" "$tmp/p3a.json" stun2.example.org call --relay-only --count 100 &
pa=$!
sleep 0.3
punch "$B" "$tmp/p3b.json" stun2.example.org call --relay-only --count 100 &
pb=$!
held=0
for _ in $(seq 100); do
    n=$("$stunkitd" ctl --socket "$tmp/control2" allocations 2>/dev/null | grep -o '"user"' | wc -l)
    [ "$n" -ge 2 ] && { held=1; break; }
    sleep 0.1
done
[ $held = 1 ] || fail "6. the call's allocations at stun2: $("$stunkitd" ctl --socket "$tmp/control2" allocations 2>&1)"
"$stunkitd" ctl --socket "$tmp/control2" drain >/dev/null || fail "6. ctl drain"
case $(ready 2) in *" 503 "*) ok "6. drained: stun2 /ready 503" ;; *) fail "6. /ready while draining: $(ready 2)" ;; esac
out=$(turn_udp stun2.example.org "$alice_u" "$alice_p")
case $out in
*'"ok": true'*'"redirected_to": "198.51.100.1'[13]':3478"'*) ok "6. a new Allocate at stun2: 300 to $(echo "$out" | sed -n 's/.*"redirected_to": "\([^"]*\)".*/\1/p'), followed" ;;
*) fail "6. allocate while draining: $out" ;;
esac
# a newcomer whose network blocks UDP: its room at stun2 over TCP, its
# relay over TCP sent by stun2's 300 to another server, the other peer's
# (over UDP) too; the two connect through the relay
punch "$C" "$tmp/p4c.json" stun2.example.org tcp-only &
pc=$!
sleep 0.3
punch "$B" "$tmp/p4b.json" stun2.example.org tcp-only &
pb2=$!
m2=$(metrics 2)
case $m2 in *'stunkitd_responses_total{code="300"} '[1-9]*) ok "7. stun2's metrics count its 300s" ;;
*) fail "7. stun2 metrics: $(echo "$m2" | grep -E 'code="300"|^HTTP' | head -3)" ;; esac
for _ in $(seq 30); do grep -q "stun2 is DOWN" "$tmp/haproxy.log" && break; sleep 0.1; done
grep -q "stun2 is DOWN" "$tmp/haproxy.log" && ok "6. HAProxy's /ready check took stun2 out" ||
    fail "6. HAProxy: $(tail -3 "$tmp/haproxy.log")"
via=""
for _ in 1 2 3 4; do
    out=$(turn_tls)
    case $out in *'"ok": true'*) via="$via $(echo "$out" | sed -n 's/.*"relayed": "\([^:]*\):.*/\1/p')" ;; *) via="$via failed" ;; esac
done
case $via in *198.51.100.12* | *failed*) fail "6. through the edge after the drain:$via" ;;
*) ok "6. through the edge: 4 allocations, none at stun2 ($via )" ;; esac
wait $pc
rc=$?
wait $pb2
rb2=$?
if [ $rc = 0 ] && [ $rb2 = 0 ] && grep -q '"path": "relay"' "$tmp/p4c.json" &&
    [ "$(field "$tmp/p4c.json" tcp_relay_redirects)" = 1 ] &&
    grep -q '"local": {"type": "relay", "address": "198.51.100.1[13]:[0-9]*", "protocol": "tcp"' "$tmp/p4c.json"; then
    ok "6. a peer without UDP joined during the drain: its TURN over TCP followed stun2's 300 to $(sed -n 's/.*"local": {"type": "relay", "address": "\([0-9.]*\):.*/\1/p' "$tmp/p4c.json"), connected through it"
else
    fail "6. UDP-blocked peer during the drain: C rc=$rc $(head -c 600 "$tmp/p4c.json") $(tail -c 300 "$tmp/p4c.json.err"); B rc=$rb2 $(head -c 300 "$tmp/p4b.json")"
fi
wait $pa
ra=$?
wait $pb
rb=$?
if [ $ra = 0 ] && [ $rb = 0 ] && grep -q '"path": "relay"' "$tmp/p3a.json" &&
    grep -q '"sent": 100, "answered": 100' "$tmp/p3a.json"; then
    ok "6. the call relayed by stun2 went on through the drain: 100 pings answered"
else
    fail "6. the call: A rc=$ra $(head -c 400 "$tmp/p3a.json"); B rc=$rb $(head -c 300 "$tmp/p3b.json")"
fi
gone=0
for _ in $(seq 100); do kill -0 "${spid[2]}" 2>/dev/null || { gone=1; break; }; sleep 0.1; done
[ $gone = 1 ] && ok "6. stun2 exited once its last allocation ended" ||
    fail "6. stun2 still running: $("$stunkitd" ctl --socket "$tmp/control2" status 2>&1 | head -c 300)"

# ---- 7. watching ----
for n in 1 3; do
    case $(metrics $n) in *"stunkitd_build_info"*"process_open_fds"*) ;;
    *) fail "7. stun$n /metrics" ;; esac
done
ok "7. stun1 and stun3 serve /metrics (build info, process metrics)"

# ---- 8. revoking a user on every server ----
read -r mal_u mal_p <<<"$(cred mallory "$new_secret")"
out=$(turn_udp stun3.example.org "$mal_u" "$mal_p")
case $out in *'"ok": true'*) ;; *) fail "8. mallory before: $out" ;; esac
for n in 1 3; do "$stunkitd" ctl --socket "$tmp/control$n" revoke mallory >/dev/null || fail "8. revoke at stun$n"; done
o1=$(turn_udp stun1.example.org "$mal_u" "$mal_p") o3=$(turn_udp stun3.example.org "$mal_u" "$mal_p")
oa=$(turn_udp stun3.example.org "$alice_u" "$alice_p")
case "$o1|$o3|$oa" in
*'"error_code": 401'*'|'*'"error_code": 401'*'|'*'"ok": true'*) ok "8. mallory revoked on every server: 401 at stun1 and stun3; alice still served" ;;
*) fail "8. revocation: stun1 $o1; stun3 $o3; alice $oa" ;;
esac

for n in 1 3; do
    grep -v "metrics endpoint\|not on loopback" "$tmp/stun$n.err" | grep -qi "error\|fatal" &&
        fail "stun$n logged errors: $(head -5 "$tmp/stun$n.err")"
done
echo "lab time: $(($(date +%s) - lab_started)) s"
[ -n "${FLEET_LAB_DEBUG:-}" ] && cat "$tmp/haproxy.log" "$tmp"/stun*.err
finish
