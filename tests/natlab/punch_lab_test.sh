#!/bin/bash
# punch_lab_test.sh STUNKITD STUNKIT [PAIR...] - `stunkit punch` between two
# peers behind two real Linux NATs (nftables in network namespaces), with
# stunkitd (STUN and TURN) between them.
#
#   A ns --- NA ns ----------- W ns (the internet) ----------- NB ns --- B ns
#   100.64.0.2     198.51.100.2   198.51.100.1 | .129           198.51.100.130   100.64.0.2
#   (192.0.2.2     NAT or                stunkitd on           NAT or          (192.0.2.130
#    when public)  firewall              203.0.113.1           firewall         when public)
#
# Both NATed peers use the SAME inside address, as two home networks do: a
# check sent to the other's host candidate reaches its sender's own network
# (here: nothing answers, or the sender itself) and must not connect.
# NAT kinds per side (as tests/natlab/natlab.sh): none, firewall, full-cone,
# restricted-cone, port-restricted-cone, symmetric, and udp-blocked (a NAT
# that forwards no UDP at all and says so, ICMP administratively prohibited:
# the peer behind it gets out only through TURN over TCP, and meets in the
# room over TCP too; udp-dropped: the same, silently). The routers drop
# unsolicited UDP to themselves in their input chain, as home routers do
# (a Linux box that accepts them confirms conntrack entries that clash with
# simultaneous punching; the "hard" scenario keeps that variant).
# The peers meet in a room of stunkitd's rendezvous (`stunkit punch SERVER
# ROOM`, trickled candidates); MODE=token runs a scenario with the pasted
# tokens (--offer / --answer) instead.
# Expected: direct for every pair theory allows (against port-restricted and
# a firewall a symmetric NAT's peer gets through by guessing ports, begun
# beside the relay), a relay only for symmetric against symmetric (or where
# one side has no TURN: STUN_ONLY); direct within 1 s and relayed within 2 s
# of the checks starting; under 10% and 20% loss every run connects with
# data both ways (exit 0 on both sides). Each scenario prints when the room
# said the role, TURN over TCP was opened and the first ping went.
# PUNCH_LAB_QUICK=1 (the sanitizer pass): one scenario per code path.
# Documentation and carrier-inside addresses only; namespaces and processes
# removed on exit. Root only (77 = skipped otherwise). LAB_CAPTURE=PREFIX
# writes the UDP seen by A, the internet and B to PREFIX-{a,w,b}.pcap (for
# debugging).
set -u
stunkitd=$1
stunkit=$2
shift 2
[ "$(id -u)" -eq 0 ] || { echo "skip: network namespaces need root"; exit 77; }
for tool in ip nft; do
    command -v $tool >/dev/null 2>&1 || { echo "skip: $tool not installed"; exit 77; }
done
. "$(dirname "$0")/../lib/testlib.sh"
. "$(dirname "$0")/../lib/netns.sh"
. "$(dirname "$0")/miniupnpd_lib.sh"
tag="pl$$"
A="${tag}a" NA="${tag}x" W="${tag}w" NB="${tag}y" B="${tag}b"
lab_down() {
    for p in $pids; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    pids=""
    ns_down
}

public() { [ "$1" = none ] || [ "$1" = firewall ]; }
# a port-restricted router that runs miniupnpd: PCP and NAT-PMP (-pcp) or
# UPnP IGD (-upnp)
mapper() { [ "$1" = port-restricted-pcp ] || [ "$1" = port-restricted-upnp ]; }

# nat_rules KIND LAN_ADDR_OF_PEER: the nftables ruleset of a router
nat_rules() {
    local kind=$1 peer=$2 nat_pre="" nat_post="" fwd="" setdef="" input_drop=1
    case $kind in
    none) ;;
    firewall) fwd='iifname "wan" ct state established,related accept
                   iifname "wan" drop' ;;
    full-cone) nat_post='oifname "wan" masquerade'
               nat_pre="iifname \"wan\" udp dport 1024-65535 dnat to $peer" ;;
    restricted-cone)
        setdef='set contacted { type ipv4_addr . inet_service; flags timeout; timeout 120s; }'
        fwd='iifname "lan" oifname "wan" meta l4proto udp update @contacted { ip daddr . udp sport timeout 120s }'
        nat_post='oifname "wan" masquerade'
        nat_pre="iifname \"wan\" ip saddr . udp dport @contacted dnat to $peer" ;;
    port-restricted-cone) nat_post='oifname "wan" masquerade' ;;
    symmetric) nat_post='oifname "wan" masquerade fully-random' ;;
    port-restricted-pcp | port-restricted-upnp) nat_post='oifname "wan" masquerade' ;; # and miniupnpd
    hard) nat_post='oifname "wan" masquerade'; input_drop=0 ;;
    udp-blocked) nat_post='oifname "wan" masquerade'
                 fwd='meta l4proto udp reject with icmp type admin-prohibited' ;;
    udp-dropped) nat_post='oifname "wan" masquerade'
                 fwd='meta l4proto udp drop' ;;
    esac
    local input=""
    [ $input_drop = 1 ] && input='iifname "wan" meta l4proto udp ct state new drop'
    # miniupnpd's own STUN test asks for answers from the server's other
    # address and port (RFC 5780), and gives up port forwarding without them
    mapper "$kind" &&
        input='iifname "wan" ip saddr != 203.0.113.2-203.0.113.3 meta l4proto udp ct state new drop'
    local loss=""
    [ "${LOSS:-0}" -gt 0 ] && loss="meta l4proto udp numgen random mod 100 < $LOSS drop"
    cat <<NFT
table ip lab {
    $setdef
    chain lab_pre { type nat hook prerouting priority dstnat; policy accept; $nat_pre
    }
    chain lab_post { type nat hook postrouting priority srcnat; policy accept; $nat_post
    }
    chain lab_fwd { type filter hook forward priority filter; policy accept; $fwd
    }
    chain lab_in { type filter hook input priority filter; policy accept; $input
    }
    chain lab_loss { type filter hook forward priority -10; policy accept; $loss
    }
}
NFT
    mapper "$kind" && cat <<'NFT'
table inet mupnp {
    chain forward { type filter hook forward priority filter - 1; policy accept; jump miniupnpd
    }
    chain miniupnpd {
    }
    chain prerouting { type nat hook prerouting priority dstnat - 1; policy accept; jump prerouting_miniupnpd
    }
    chain postrouting { type nat hook postrouting priority srcnat - 1; policy accept; jump postrouting_miniupnpd
    }
    chain prerouting_miniupnpd {
    }
    chain postrouting_miniupnpd {
    }
}
NFT
    return 0
}

# start_miniupnpd ROUTER KIND: PCP and NAT-PMP, or UPnP IGD (Debian
# miniupnpd-nftables) on a router, its external address learned by STUN
# from stunkitd (miniupnpd refuses a documentation-range address otherwise)
start_miniupnpd() {
    local r=$1 natpmp=yes upnp=no
    [ "$2" = port-restricted-upnp ] && natpmp=no upnp=yes
    MU_EXT=wan MU_LAN=lan MU_NATPMP=$natpmp MU_UPNP=$upnp MU_STUN=203.0.113.2 MU_TABLE=mupnp MU_NAT_TABLE=mupnp \
        MU_LEASES=$tmp/leases-$r MU_ALLOW=100.64.0.0/24 miniupnpd_conf "$tmp/miniupnpd-$r.conf" 3a5c8b1e-0d3c-4b8a-9b1a-0123456789ac
    ip netns exec "$r" miniupnpd -d -P "$tmp/miniupnpd-$r.pid" -f "$tmp/miniupnpd-$r.conf" >"$tmp/miniupnpd-$r.log" 2>&1 &
    pids="$pids $!"
    for _ in $(seq 100); do grep -q -E "Listening for NAT-PMP/PCP|HTTP listening on port" "$tmp/miniupnpd-$r.log" && return 0; sleep 0.1; done
    return 1
}

# side NS ROUTER KIND WAN_ADDR WAN_GW WAN_IF_OF_W PUBLIC_NET PUBLIC_PEER PUBLIC_GW
side() {
    local ns=$1 r=$2 kind=$3 wan=$4 wgw=$5 wif=$6 pnet=$7 ppeer=$8 pgw=$9
    ns_veth "$r" lan "$ns" eth0 || return 1
    ns_veth "$r" wan "$W" "$wif" || return 1
    ns_addr "$r" wan "$wan"/25
    ns_addr "$W" "$wif" "$wgw"/25
    local peer
    if public "$kind"; then
        peer=$ppeer
        ns_addr "$ns" eth0 "$ppeer"/25
        ns_addr "$r" lan "$pgw"/25
        ns_route "$ns" default via "$pgw"
        ns_route "$W" "$pnet" via "$wan"
    else
        peer=100.64.0.2
        ns_addr "$ns" eth0 100.64.0.2/24
        ns_addr "$r" lan 100.64.0.1/24
        ns_route "$ns" default via 100.64.0.1
    fi
    ns_route "$r" default via "$wgw"
    ns_router "$r"
    nat_rules "$kind" "$peer" | ip netns exec "$r" nft -f - || return 1
}

lab_up() { # KIND_A KIND_B
    ns_add "$A" "$NA" "$W" "$NB" "$B" || return 1
    ns_addr "$W" lo 203.0.113.1/32 203.0.113.2/32 203.0.113.3/32
    ns_router "$W"
    side "$A" "$NA" "$1" 198.51.100.2 198.51.100.1 wa 192.0.2.0/25 192.0.2.2 192.0.2.1 || return 1
    side "$B" "$NB" "$2" 198.51.100.130 198.51.100.129 wb 192.0.2.128/25 192.0.2.130 192.0.2.129 || return 1
    if [ -n "${LAB_CAPTURE:-}" ]; then # debugging: UDP seen by A, the internet and B
        for ns in "$A:a" "$W:w" "$B:b"; do
            ip netns exec "${ns%:*}" tshark -q -i any -f udp -w "$LAB_CAPTURE-${ns#*:}.pcap" >/dev/null 2>&1 &
            pids="$pids $!"
        done
        sleep 2
    fi
    ip netns exec "$W" "$stunkitd" --listen 203.0.113.1 --tls-cert "$tmp/cert.pem" --tls-key "$tmp/key.pem" --turn --relay-ip 203.0.113.1 --credential alice:lab-secret \
        --rendezvous ${EXTRA_SERVER_ARGS:-} \
        --realm lab.example --log-level warn 2>"$tmp/server.err" &
    pids="$pids $!"
    ns_wait_port "$W" udp :3478 || return 1
    if mapper "$1" || mapper "$2"; then
        # miniupnpd learns its external address from a plain RFC 5780 server
        # (it cannot read the lab server's 401: it takes attributes unpadded)
        ip netns exec "$W" "$stunkitd" --listen 203.0.113.2 --alternate 203.0.113.3 --threads 1 --log-level warn \
            2>>"$tmp/server.err" &
        pids="$pids $!"
        ns_wait_port "$W" udp 203.0.113.2:3478
    fi
    if mapper "$1"; then start_miniupnpd "$NA" "$1" || return 1; fi
    if mapper "$2"; then start_miniupnpd "$NB" "$2" || return 1; fi
    return 0
}

# the server's TLS certificate (for turns:203.0.113.1, port 5349)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=203.0.113.1" \
    -addext "subjectAltName=IP:203.0.113.1" -days 1 -keyout "$tmp/key.pem" -out "$tmp/cert.pem" 2>/dev/null ||
    { echo "FAIL openssl could not make the lab's certificate"; exit 1; }

# the server as punch names it: over TLS (TLS=1) the TCP fallbacks are TLS
server_arg() {
    if [ -n "${TLS:-}" ]; then echo "turns:203.0.113.1 --ca-file $tmp/cert.pem"; else echo 203.0.113.1; fi
}

# punch: A first in the room (it offers), B joins; or (MODE=token) offer in
# A, answer in B, tokens through a FIFO. Results in $tmp/a.json, $tmp/b.json
rooms=0
punch() {
    rc_a=none rc_b=none
    [ "${MODE:-room}" = token ] && { punch_tokens; return; }
    rooms=$((rooms + 1))
    local room="lab-$$-$rooms"
    # BLOCK_MS: what A sends to B directly is lost on the internet for the
    # first BLOCK_MS ms after B starts (the relay is not touched)
    if [ -n "${BLOCK_MS:-}" ]; then
        ip netns exec "$W" nft -f - <<NFT || fail "BLOCK_MS: nft refused the rule"
table ip blk {
    chain blk_fwd { type filter hook forward priority -20; policy accept;
        ip saddr { 192.0.2.2, 198.51.100.2 } ip daddr { 192.0.2.130, 198.51.100.130 } meta l4proto udp drop
    }
}
NFT
    fi
    ip netns exec "$A" env STUNKIT_TRACE=1 timeout 45 "$stunkit" punch $(server_arg) "$room" --json --count 3 --wait 20 \
        --timeout "${PUNCH_MS:-10000}" --username alice --password lab-secret ${NO_MAP:+--no-map} ${NO_SPRAY:+--no-spray} \
        ${RELAY_ONLY:+--relay-only} >"$tmp/a.json" 2>"$tmp/a.err" &
    local ap=$!
    pids="$pids $ap"
    sleep 0.3
    ip netns exec "$B" env STUNKIT_TRACE=1 timeout 45 "$stunkit" punch $(server_arg) "$room" --json --count 3 --wait 20 \
        --timeout "${PUNCH_MS:-10000}" --username alice --password lab-secret ${NO_MAP:+--no-map} ${NO_SPRAY:+--no-spray} >"$tmp/b.json" 2>"$tmp/b.err" &
    local bp=$!
    pids="$pids $bp"
    if [ -n "${BLOCK_MS:-}" ]; then
        sleep "$(printf '%d.%03d' $((BLOCK_MS / 1000)) $((BLOCK_MS % 1000)))"
        ip netns exec "$W" nft delete table ip blk
    fi
    wait $bp; rc_b=$?
    wait $ap; rc_a=$?
}

# STUN_ONLY=a|b: that side has no TURN credentials (as libnice and aioice
# usually run): the server is only its STUN server, the relay is the other's
punch_tokens() {
    rm -f "$tmp/fifo" "$tmp/a.out" "$tmp/b.out"
    mkfifo "$tmp/fifo"
    local cred_a=(--username alice --password lab-secret) cred_b=(--username alice --password lab-secret)
    [ "${STUN_ONLY:-}" = a ] && cred_a=()
    [ "${STUN_ONLY:-}" = b ] && cred_b=()
    ip netns exec "$A" bash -c 'exec 3<>"$1"; shift; exec "$@" <&3' _ "$tmp/fifo" \
        timeout 45 "$stunkit" punch 203.0.113.1 --offer --json --count 3 --timeout "${PUNCH_MS:-10000}" \
        "${cred_a[@]}" \
        >"$tmp/a.out" 2>"$tmp/a.err" &
    local ap=$!
    pids="$pids $ap"
    for _ in $(seq 100); do [ -s "$tmp/a.out" ] && break; sleep 0.05; done
    local offer
    offer=$(head -1 "$tmp/a.out")
    ip netns exec "$B" timeout 45 "$stunkit" punch 203.0.113.1 --answer "$offer" --json --count 3 \
        --timeout "${PUNCH_MS:-10000}" \
        "${cred_b[@]}" >"$tmp/b.out" 2>"$tmp/b.err" &
    local bp=$!
    pids="$pids $bp"
    for _ in $(seq 100); do [ -s "$tmp/b.out" ] && break; sleep 0.05; done
    head -1 "$tmp/b.out" >"$tmp/fifo"
    wait $bp; rc_b=$?
    wait $ap; rc_a=$?
    tail -1 "$tmp/a.out" >"$tmp/a.json"
    tail -1 "$tmp/b.out" >"$tmp/b.json"
}

# A malicious offerer aims birthday punching at a bystander (issue 23 item
# 2): A (behind a symmetric NAT, a real `stunkit punch`) offers, and its
# token is rewritten on the way so that every candidate names 198.51.100.99
# (a bystander on the internet) instead of A's public address 198.51.100.2.
# B (port-restricted: the side that guesses ports) must send the bystander
# no guess: the SKB1 probes reaching it are counted in W. ICE's own checks
# to the named candidates are allowed (RFC 8445 paces them); guesses go
# only to an address the peer proved with an authenticated check.
attack() {
    local label="malicious offer: the bystander gets no guesses"
    lab_up symmetric port-restricted-cone || { fail "$label: the lab did not come up"; lab_down; return; }
    ip -n "$W" addr add 198.51.100.99/32 dev lo
    ip netns exec "$W" nft -f - <<NFT || { fail "$label: nft refused the counter"; lab_down; return; }
table ip bystander {
    counter guesses { }
    counter checks { }
    chain input { type filter hook input priority filter; policy accept;
        ip daddr 198.51.100.99 udp dport 1-65535 @th,64,32 0x534b4231 counter name guesses
        ip daddr 198.51.100.99 udp dport 1-65535 counter name checks
    }
}
NFT
    rm -f "$tmp/fifo" "$tmp/a.out" "$tmp/b.out"
    mkfifo "$tmp/fifo"
    ip netns exec "$A" bash -c 'exec 3<>"$1"; shift; exec "$@" <&3' _ "$tmp/fifo" \
        timeout 45 "$stunkit" punch 203.0.113.1 --offer --json --count 3 --timeout 10000 \
        --username alice --password lab-secret >"$tmp/a.out" 2>"$tmp/a.err" &
    local ap=$!
    pids="$pids $ap"
    for _ in $(seq 100); do [ -s "$tmp/a.out" ] && break; sleep 0.05; done
    local offer desc forged
    offer=$(head -1 "$tmp/a.out")
    desc=$(printf '%s' "${offer#SK1.}" | base64 -d)
    forged="SK1.$(printf '%s' "$desc" | sed 's/198\.51\.100\.2 /198.51.100.99 /g' | base64 -w0)"
    if [ "$forged" = "$offer" ] || ! printf '%s' "$desc" | grep -q "198.51.100.2 "; then
        fail "$label: the offer names no 198.51.100.2 to forge: $desc"
    fi
    ip netns exec "$B" timeout 45 "$stunkit" punch 203.0.113.1 --answer "$forged" --json --count 3 \
        --timeout 10000 --username alice --password lab-secret >"$tmp/b.out" 2>"$tmp/b.err" &
    local bp=$!
    pids="$pids $bp"
    for _ in $(seq 100); do [ -s "$tmp/b.out" ] && break; sleep 0.05; done
    head -1 "$tmp/b.out" >"$tmp/fifo"
    # and from the bystander's address (the forged candidates gave it a
    # permission on B's relay), "SKP1 nat hard": the claim that would start
    # B guessing, from a source that never passed a check
    local answer relay
    answer=$(head -1 "$tmp/b.out")
    relay=$(printf '%s' "${answer#SK1.}" | base64 -d | sed -n 's/.* \(203\.0\.113\.1\) \([0-9]*\) typ relay.*/\1 \2/p' | head -1)
    [ -n "$relay" ] || fail "$label: no relayed candidate in B's answer"
    ip netns exec "$W" /usr/bin/python3 -c '
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("198.51.100.99", 0))
ip, port = sys.argv[1], int(sys.argv[2])
for _ in range(80):
    s.sendto(b"SKP1 nat hard unknown", (ip, port))
    time.sleep(0.05)
' ${relay:-203.0.113.1 9} 2>/dev/null &
    pids="$pids $!"
    wait $bp
    wait $ap
    local guesses checks bd
    guesses=$(ip netns exec "$W" nft list counter ip bystander guesses | sed -n 's/.*packets \([0-9]*\).*/\1/p')
    checks=$(ip netns exec "$W" nft list counter ip bystander checks | sed -n 's/.*packets \([0-9]*\).*/\1/p')
    bd=$(tail -1 "$tmp/b.out" | sed -n 's/.*"birthday": \(null\|{[^}]*}\).*/\1/p')
    if [ "${guesses:-x}" = 0 ] && grep -q '"connected": true' <(tail -1 "$tmp/b.out"); then
        ok "$label: 0 guesses reached 198.51.100.99 ($checks datagrams in all, ICE's checks); B connected; birthday: $bd"
    else
        fail "$label: ${guesses:-?} guesses reached the bystander ($checks datagrams in all); B: $(tail -1 "$tmp/b.out") $(cat "$tmp/b.err")"
    fi
    lab_down
}

# wireguard KIND_A KIND_B: two wireguard-go peers (a real UDP application,
# userspace, /dev/net/tun) behind the two NATs, each talking only to its
# own `stunkit punch --forward` on 127.0.0.1 (WireGuard's endpoint is punch's
# listening port, punch delivers to WireGuard's): once punch connects they
# ping each other through the tunnel (2001:db8:77::1 and ::2), direct where
# the NATs allow, through the relay where not. stunkit does not encrypt the
# forwarded datagrams; WireGuard does.
wireguard() {
    local ka=$1 kb=$2 label="wireguard-go through punch --forward: $1/$2" want
    want=$(expect_path "$ka" "$kb")
    [ "$want" = birthday ] && want=direct
    command -v wireguard-go >/dev/null 2>&1 && command -v wg >/dev/null 2>&1 ||
        { echo "skip $label: wireguard-go or wg not installed"; return; }
    lab_up "$ka" "$kb" || { fail "$label: the lab did not come up"; lab_down; return; }
    local side ns addr peer_addr
    # wireguard-go's control socket is /var/run/wireguard/IFNAME.sock, one
    # directory for every namespace: names of this run's own
    local wga="wga$$" wgb="wgb$$"
    wg genkey >"$tmp/wg-a.key"; wg genkey >"$tmp/wg-b.key"
    for side in a b; do
        ns=$A addr=2001:db8:77::1
        [ $side = b ] && ns=$B addr=2001:db8:77::2
        ip netns exec "$ns" env WG_PROCESS_FOREGROUND=1 wireguard-go "wg$side$$" >"$tmp/wg-$side.log" 2>&1 &
        pids="$pids $!"
    done
    for _ in $(seq 50); do ip -n "$A" link show "$wga" >/dev/null 2>&1 && ip -n "$B" link show "$wgb" >/dev/null 2>&1 && break; sleep 0.1; done
    for side in a b; do
        local other=b
        ns=$A addr=2001:db8:77::1 peer_addr=2001:db8:77::2
        [ $side = b ] && ns=$B addr=2001:db8:77::2 peer_addr=2001:db8:77::1 other=a
        ip netns exec "$ns" wg set "wg$side$$" listen-port 51820 private-key "$tmp/wg-$side.key" \
            peer "$(wg pubkey <"$tmp/wg-$other.key")" allowed-ips "$peer_addr"/128 endpoint 127.0.0.1:51821 \
            persistent-keepalive 1 || { fail "$label: wg set on $side"; lab_down; return; }
        ns_addr "$ns" "wg$side$$" "$addr"/64
        ip -n "$ns" link set "wg$side$$" up
    done
    rooms=$((rooms + 1))
    local room="lab-$$-$rooms"
    ip netns exec "$A" timeout --foreground 60 "$stunkit" punch 203.0.113.1 "$room" --json --count 1 --wait 20 --username alice \
        --password lab-secret --forward 51821:51820 >"$tmp/a.json" 2>"$tmp/a.err" &
    local ap=$!
    pids="$pids $ap"
    sleep 0.3
    ip netns exec "$B" timeout --foreground 60 "$stunkit" punch 203.0.113.1 "$room" --json --count 1 --wait 20 --username alice \
        --password lab-secret --forward 51821:51820 >"$tmp/b.json" 2>"$tmp/b.err" &
    local bp=$!
    pids="$pids $bp"
    for _ in $(seq 300); do
        grep -q "^forwarding" "$tmp/a.err" && grep -q "^forwarding" "$tmp/b.err" && break
        sleep 0.1
    done
    local ab="" ba=""
    if grep -q "^forwarding" "$tmp/a.err" && grep -q "^forwarding" "$tmp/b.err"; then
        # WireGuard's own handshake first (over the forwarded path; it
        # retries every 5 s when a message is lost), at most 15 s
        local hs=0
        for _ in $(seq 150); do
            [ "$(ip netns exec "$A" wg show "$wga" latest-handshakes | awk '{print $2}')" != 0 ] &&
                [ "$(ip netns exec "$B" wg show "$wgb" latest-handshakes | awk '{print $2}')" != 0 ] && hs=1 && break
            sleep 0.1
        done
        [ $hs = 1 ] || echo "  (no WireGuard handshake in 15 s)"
        ip netns exec "$A" ping -6 -c 5 -i 0.3 -W 3 2001:db8:77::2 >"$tmp/ping-ab" 2>&1
        ip netns exec "$B" ping -6 -c 5 -i 0.3 -W 3 2001:db8:77::1 >"$tmp/ping-ba" 2>&1
        ab=$(sed -n 's/.* \([0-9]*\) received.*/\1/p' "$tmp/ping-ab")
        ba=$(sed -n 's/.* \([0-9]*\) received.*/\1/p' "$tmp/ping-ba")
    fi
    # (timeout --foreground: the TERM reaches punch once, as from a user)
    kill -TERM $ap 2>/dev/null
    wait $ap; local rc_a=$?
    wait $bp; local rc_b=$?
    local pa pb fa
    pa=$(jfield "$tmp/a.json" path) pb=$(jfield "$tmp/b.json" path)
    fa=$(grep -o '"forwarded": {[^}]*}' "$tmp/a.json")
    # most pings through (the first may wait for WireGuard's handshake)
    if [ "${ab:-0}" -ge 3 ] && [ "${ba:-0}" -ge 3 ] && [ "$pa" = "$want" ] && [ "$pb" = "$want" ] &&
        [ $rc_a = 0 ] && [ $rc_b = 0 ]; then
        ok "$label: $want, ping A->B $ab/5, B->A $ba/5 through the tunnel; A $fa"
    else
        fail "$label: want $want and pings both ways; A->B ${ab:-none}/5, B->A ${ba:-none}/5, exit A $rc_a B $rc_b; A: $(cat "$tmp/a.json") $(grep -v '^trace' "$tmp/a.err" | tail -3) / B: $(cat "$tmp/b.json") $(grep -v '^trace' "$tmp/b.err" | tail -3) / ping: $(tail -2 "$tmp/ping-ab" 2>/dev/null) / wg: $(tail -2 "$tmp/wg-a.log"; ip netns exec "$A" wg show 2>&1 | head -12)"
    fi
    echo "$label $want ${pa:-none} A->B ${ab:-0}/5 B->A ${ba:-0}/5" >>"$tmp/matrix"
    lab_down
}

# The README's example (examples/chat.c, the library's peer on its own
# thread) behind two NATs: both sides type lines with one secret, each
# prints the other's. CHAT_EXAMPLE is the built program.
chat() {
    local ka=$1 kb=$2 label="examples/chat behind $1/$2"
    [ -x "${CHAT_EXAMPLE:-}" ] || { echo "skip $label: CHAT_EXAMPLE not given"; return; }
    lab_up "$ka" "$kb" || { fail "$label: the lab did not come up"; lab_down; return; }
    local secret="chat $$ $ka $kb"
    # each side: a line once connected (it waits for the peer), another a
    # second later, then stays 2 s to hear the other's
    (sleep 3; echo "hello from A"; sleep 1; echo "second line from A"; sleep 2) |
        ip netns exec "$A" timeout 30 "$CHAT_EXAMPLE" 203.0.113.1 "$secret" alice lab-secret >"$tmp/chat-a.out" 2>"$tmp/chat-a.err" &
    local ap=$!
    pids="$pids $ap"
    sleep 0.3
    (sleep 3; echo "hello from B"; sleep 1; echo "second line from B"; sleep 2) |
        ip netns exec "$B" timeout 30 "$CHAT_EXAMPLE" 203.0.113.1 "$secret" alice lab-secret >"$tmp/chat-b.out" 2>"$tmp/chat-b.err" &
    local bp=$!
    pids="$pids $bp"
    wait $ap; local rc_a=$?
    wait $bp; local rc_b=$?
    if [ $rc_a = 0 ] && [ $rc_b = 0 ] && grep -qx "peer: hello from B" "$tmp/chat-a.out" &&
        grep -qx "peer: second line from B" "$tmp/chat-a.out" && grep -qx "peer: hello from A" "$tmp/chat-b.out" &&
        grep -qx "peer: second line from A" "$tmp/chat-b.out"; then
        ok "$label: both lines each way; A: $(grep -m1 '^(path' "$tmp/chat-a.err") B: $(grep -m1 '^(path' "$tmp/chat-b.err")"
    else
        fail "$label: exit A $rc_a B $rc_b; A heard: $(cat "$tmp/chat-a.out") ($(cat "$tmp/chat-a.err")) / B heard: $(cat "$tmp/chat-b.out") ($(cat "$tmp/chat-b.err"))"
    fi
    lab_down
}

# Headless Chromium (the ICE agent most peers meet) in A, behind KIND_A,
# offers an RTCPeerConnection with our stunkitd as its STUN server; its host
# candidate is an mDNS name (<uuid>.local) no one in B can resolve.
# `stunkit punch --sdp --answer -` in B (behind KIND_B, TURN credentials)
# answers; the page wraps our a= lines into an SDP answer. Both must reach
# ICE connected (the browser's iceConnectionState "connected"). The
# signalling is tests/interop/chromium/signal_server.py in the internet
# namespace.
browser() {
    local ka=$1 kb=$2 label="Chromium ($1) / stunkit punch --sdp ($2)"
    command -v chromium >/dev/null 2>&1 && [ -x /usr/bin/python3 ] ||
        { echo "skip $label: chromium or /usr/bin/python3 missing"; return; }
    lab_up "$ka" "$kb" || { fail "$label: the lab did not come up"; lab_down; return; }
    local dir="$tmp/browser-$ka-$kb" http=8080
    mkdir -p "$dir"
    ip netns exec "$W" /usr/bin/python3 "$(dirname "$0")/../interop/chromium/signal_server.py" 203.0.113.1 $http "$dir" \
        >"$dir/http.log" 2>&1 &
    pids="$pids $!"
    ns_wait_port "$W" tcp 203.0.113.1:$http || { fail "$label: the signal server did not start"; lab_down; return; }
    # punch first (its peer listens for mDNS announcements from its start),
    # its stdin a FIFO the offer goes into
    mkfifo "$dir/in"
    local pns=$B infd
    [ -n "${SAME_LINK:-}" ] && pns=$A # SAME_LINK=1: beside Chromium in A, where its mDNS name resolves
    exec {infd}<>"$dir/in"
    ip netns exec "$pns" env STUNKIT_TRACE=1 timeout 40 "$stunkit" punch 203.0.113.1 --answer - --sdp --json --count 0 \
        --username alice --password lab-secret <&$infd >"$dir/punch.out" 2>"$dir/punch.err" &
    local bp=$!
    pids="$pids $bp"
    ip netns exec "$A" chromium --headless=new --no-sandbox --disable-gpu --disable-background-networking \
        --disable-component-update --disable-sync --no-first-run --user-data-dir="$dir/profile" \
        "http://203.0.113.1:$http/peer.html?stun=stun:203.0.113.1:3478" >"$dir/chromium.log" 2>&1 &
    local cp=$!
    pids="$pids $cp"
    for _ in $(seq 200); do [ -s "$dir/offer.sdp" ] && break; sleep 0.1; done
    if [ ! -s "$dir/offer.sdp" ]; then
        fail "$label: no offer from Chromium in 20 s: $(tail -3 "$dir/chromium.log")"
        exec {infd}>&-
        lab_down
        return
    fi
    local mdns
    mdns=$(grep -c "a=candidate:.* [0-9a-f-]*\.local " "$dir/offer.sdp")
    # the ICE lines of the offer, then the empty line that ends them
    { grep -E "^a=(ice-ufrag|ice-pwd|candidate|end-of-candidates)" "$dir/offer.sdp" | tr -d '\r'; echo; } >"$dir/offer.lines"
    cat "$dir/offer.lines" >&$infd
    for _ in $(seq 100); do grep -q "^$" "$dir/punch.out" 2>/dev/null && break; sleep 0.1; done
    sed '/^$/q' "$dir/punch.out" | grep "^a=" >"$dir/answer.tmp" && mv "$dir/answer.tmp" "$dir/answer.sdp"
    for _ in $(seq 250); do [ -s "$dir/result" ] && break; sleep 0.1; done
    wait $bp; local rc_b=$?
    exec {infd}>&-
    kill $cp 2>/dev/null; wait $cp 2>/dev/null
    local result json path
    result=$(head -1 "$dir/result" 2>/dev/null)
    json=$(grep '^{' "$dir/punch.out")
    path=$(echo "$json" | sed -n 's/.*"path": "\([a-z]*\)".*/\1/p')
    local resolved
    resolved=$(grep -o "mDNS: [^ ]* is [0-9.]*" "$dir/punch.err" | head -1)
    if [[ "$result" == connected* ]] && [ $rc_b = 0 ] && echo "$json" | grep -q '"connected": true' &&
        { [ -z "${SAME_LINK:-}" ] || [ -n "$resolved" ]; }; then
        ok "$label: Chromium $result; ours: $path $(echo "$json" | grep -o '"local": {[^}]*}' | sed 's/"address": "[^"]*", //'); $mdns mDNS host candidate(s) in the offer${resolved:+, $resolved}"
    else
        fail "$label: Chromium '${result:-nothing}', punch exit $rc_b: $json $(grep -v '^trace' "$dir/punch.err" | tail -3) $(grep mDNS "$dir/punch.err") / offer: $(tr '\r\n' '  ' <"$dir/offer.lines") / $(grep -i "error" "$dir/chromium.log" | tail -2)"
    fi
    echo "$label ${path:-none} chromium: ${result:-none}" >>"$tmp/matrix"
    lab_down
}

# An IPv6-only peer (A: 2001:db8:a::2 behind a stateful IPv6 firewall, no
# IPv4 at all) against an IPv4-only one (B: behind a port-restricted NAT, IPv6
# off), both through one dual-stack stunkitd (203.0.113.1 and 2001:db8:1::1,
# relays on both): they share no address family, so every path is a relay
# of the other family, which the agents get by asking the server for both
# (RFC 8656 7.2 ADDITIONAL-ADDRESS-FAMILY; before: "no candidate pairs").
v6v4() {
    local label="IPv6-only/IPv4-only through a dual-stack stunkitd"
    ns_add "$A" "$NA" "$W" "$NB" "$B" || { fail "$label: netns"; lab_down; return; }
    ns_addr "$W" lo 203.0.113.1/32 2001:db8:1::1/128
    ns_router "$W"
    ns_veth "$NA" lan "$A" eth0
    ns_veth "$NA" wan "$W" wa
    ns_addr "$A" eth0 2001:db8:a::2/64
    ns_addr "$NA" lan 2001:db8:a::1/64
    ns_addr "$NA" wan 2001:db8:ff:a::2/64
    ns_addr "$W" wa 2001:db8:ff:a::1/64
    ns_route "$A" -6 default via 2001:db8:a::1
    ns_route "$NA" -6 default via 2001:db8:ff:a::1
    ns_route "$W" -6 2001:db8:a::/64 via 2001:db8:ff:a::2
    ns_router "$NA"
    ip netns exec "$NA" nft -f - <<'NFT' || { fail "$label: nft"; lab_down; return; }
table ip6 fw {
    chain fw_fwd { type filter hook forward priority filter; policy accept;
        iifname "wan" ct state established,related accept
        iifname "wan" drop
    }
}
NFT
    side "$B" "$NB" port-restricted-cone 198.51.100.130 198.51.100.129 wb 192.0.2.128/25 192.0.2.130 192.0.2.129 ||
        { fail "$label: the IPv4 side did not come up"; lab_down; return; }
    ip netns exec "$B" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
    ip netns exec "$W" "$stunkitd" --listen 203.0.113.1 --listen 2001:db8:1::1 --turn --relay-ip 203.0.113.1 \
        --relay-ip 2001:db8:1::1 --credential alice:lab-secret --rendezvous --realm lab.example \
        --log-level warn 2>"$tmp/server.err" &
    pids="$pids $!"
    ns_wait_port "$W" udp "[2001:db8:1::1]:3478" ||
        { fail "$label: stunkitd did not come up: $(cat "$tmp/server.err")"; lab_down; return; }
    rooms=$((rooms + 1))
    local room="lab-$$-$rooms"
    ip netns exec "$A" timeout 45 "$stunkit" punch 2001:db8:1::1 "$room" --json --count 3 --wait 20 \
        --username alice --password lab-secret >"$tmp/a.json" 2>"$tmp/a.err" &
    local ap=$!
    pids="$pids $ap"
    sleep 0.3
    ip netns exec "$B" timeout 45 "$stunkit" punch 203.0.113.1 "$room" --json --count 3 --wait 20 \
        --username alice --password lab-secret >"$tmp/b.json" 2>"$tmp/b.err"
    local rb=$? ra
    wait $ap
    ra=$?
    local la ra_ lb rb_
    la=$(sed -n 's/.*"local": {"type": "\([a-z]*\)", "address": "\([^"]*\)".*/\1 \2/p' "$tmp/a.json")
    ra_=$(sed -n 's/.*"remote": {"type": "\([a-z]*\)", "address": "\([^"]*\)".*/\1 \2/p' "$tmp/a.json")
    if [ $ra = 0 ] && [ $rb = 0 ] && grep -q '"connected": true.*"path": "relay"' "$tmp/a.json" &&
        grep -q '"connected": true.*"path": "relay"' "$tmp/b.json" && grep -q '"answered": 3' "$tmp/a.json"; then
        ok "$label: relay, A $la -> $ra_ in $(jfield "$tmp/a.json" connect_ms) ms (B: $(jfield "$tmp/b.json" connect_ms) ms), 3/3 pings answered"
        echo "$label relay relay $(jfield "$tmp/a.json" connect_ms) $(jfield "$tmp/b.json" connect_ms)" >>"$tmp/matrix"
    else
        fail "$label: want relay, exit 0 (A $ra, B $rb); A: $(cat "$tmp/a.json") $(tail -2 "$tmp/a.err") / B: $(cat "$tmp/b.json") $(tail -2 "$tmp/b.err") / server: $(tail -3 "$tmp/server.err")"
    fi
    lab_down
}

jfield() { sed -n "s/.*\"$2\": \(\"[^\"]*\"\|[a-z0-9.]\+\).*/\1/p" "$1" | head -1 | tr -d '"'; }

expect_path() { # KIND_A KIND_B -> direct | relay | any
    local a=$1 b=$2
    [ -n "${BLOCK_MS:-}" ] && { echo upgrade; return; }
    # --relay-only on A: its relay, whatever the NATs
    [ -n "${RELAY_ONLY:-}" ] && { echo relay; return; }
    # one side without TURN: where a symmetric NAT meets a port-restricted
    # one, a firewall or another symmetric one, the other side's relay
    [ -n "${STUN_ONLY:-}" ] && [[ "$a $b" == *symmetric* ]] && [[ "$a $b" =~ (port-restricted-cone|firewall|symmetric\ symmetric) ]] &&
        { echo relay; return; }
    # without the port mapping, miniupnpd's router is a port-restricted cone
    [ -n "${NO_MAP:-}" ] && a=${a/%-pcp/-cone} && b=${b/%-pcp/-cone} && a=${a/%-upnp/-cone} && b=${b/%-upnp/-cone}
    [ "$a" = hard ] && { echo any; return; }
    if [ "$b" = symmetric ]; then local t=$a; a=$b; b=$t; fi
    if [ "$a" = symmetric ]; then
        # against a port-restricted NAT or a firewall: relayed first, then
        # direct by birthday-paradox punching (--no-spray: the relay stays)
        case $b in
        port-restricted-cone | firewall) [ -n "${NO_SPRAY:-}" ] && echo relay || echo birthday; return ;;
        symmetric) echo relay; return ;;
        esac
    fi
    [[ "$a $b" == *udp-* ]] && { echo relay; return; }
    echo direct
}

run_pair() { # KIND_A KIND_B [LABEL]
    local ka=$1 kb=$2 label=${3:-$1/$2} want
    want=$(expect_path "$ka" "$kb")
    lab_up "$ka" "$kb" || { fail "$label: the lab did not come up: $(cat "$tmp/server.err") $(tail -3 "$tmp"/miniupnpd-*.log 2>/dev/null)"; lab_down; return; }
    punch
    local ca pa ma cb pb mb la ra roa rob
    roa=$(jfield "$tmp/a.json" role) rob=$(jfield "$tmp/b.json" role)
    # A comes first and offers, unless UDP is blocked on its side (it then
    # reaches the room over TCP a second later than B)
    # (under loss A's first requests may be lost and B come first)
    if [ "${MODE:-room}" = room ] && [ "${LOSS:-0}" = 0 ] && ! { [ "$roa" = offer ] && [ "$rob" = answer ]; } &&
        ! { [[ "$ka" == udp-* ]] && [ "$roa" = answer ] && [ "$rob" = offer ]; }; then
        fail "$label: the room gave A the role '$roa' and B '$rob' (want offer, answer)"
    fi
    # behind a NAT that forwards no UDP the way out is TURN over TCP
    local pra prb
    pra=$(sed -n 's/.*"local": {[^}]*"protocol": "\([a-z]*\)".*/\1/p' "$tmp/a.json")
    prb=$(sed -n 's/.*"local": {[^}]*"protocol": "\([a-z]*\)".*/\1/p' "$tmp/b.json")
    if { [[ "$ka" == udp-* ]] && [ "$pra" != tcp ]; } || { [[ "$kb" == udp-* ]] && [ "$prb" != tcp ]; }; then
        fail "$label: UDP is blocked, yet the local candidate's protocol is A '$pra' B '$prb' (want tcp)"
    fi
    # turns: the relay over TLS, said so in the JSON
    if [ -n "${TLS:-}" ] && [ "$ka" = udp-blocked ] && ! grep -q '"local": {[^}]*"tls": true' "$tmp/a.json"; then
        fail "$label: a turns: server and UDP blocked, yet A's relay is not over TLS: $(cat "$tmp/a.json")"
    fi
    # a router with PCP or UPnP: punch asked it for a port, and deleted the
    # mapping on exit (miniupnpd's DNAT rule is gone)
    local side ns json kind methods
    for side in A B; do
        [ $side = A ] && { mapper "$ka" || continue; ns=$NA json=$tmp/a.json kind=$ka; }
        [ $side = B ] && { mapper "$kb" || continue; ns=$NB json=$tmp/b.json kind=$kb; }
        methods="pcp|natpmp"
        [ "$kind" = port-restricted-upnp ] && methods=upnp
        local pm
        pm=$(sed -n 's/.*"port_mapping": \(null\|{[^}]*}\).*/\1/p' "$json")
        if [ -n "${NO_MAP:-}" ]; then
            [ "$pm" = null ] || fail "$label: --no-map, yet $side reports the port mapping $pm"
        elif ! [[ "$pm" =~ \"method\":\ \"($methods)\",\ \"external\":\ \"198\.51\.100\.[0-9]+:[0-9]+\" ]]; then
            fail "$label: $side's router offers $methods, yet port_mapping is '$pm'"
        fi
        if ip netns exec "$ns" nft list chain inet mupnp prerouting_miniupnpd | grep -q dnat; then
            fail "$label: $side's mapping outlived punch: $(ip netns exec "$ns" nft list chain inet mupnp prerouting_miniupnpd | grep dnat)"
        fi
    done
    ca=$(jfield "$tmp/a.json" connected) pa=$(jfield "$tmp/a.json" path) ma=$(jfield "$tmp/a.json" connect_ms)
    cb=$(jfield "$tmp/b.json" connected) pb=$(jfield "$tmp/b.json" path) mb=$(jfield "$tmp/b.json" connect_ms)
    # renomination: relayed first, then direct: the time counts to the
    # direct path
    local ua up_note=""
    ua=$(jfield "$tmp/a.json" upgraded_ms)
    if [ -n "$ua" ] && [ "$ua" != null ]; then
        up_note=" (relayed after $ma ms first)" ma=$ua
    fi
    la=$(sed -n 's/.*"local": {"type": "\([a-z]*\)".*/\1/p' "$tmp/a.json")
    ra=$(sed -n 's/.*"remote": {"type": "\([a-z]*\)".*/\1/p' "$tmp/a.json")
    if [ -n "${RELAY_ONLY:-}" ] && grep "^a=candidate" "$tmp/b.err" | grep -qv " typ relay"; then
        fail "$label: B saw A's own addresses: $(grep "^a=candidate" "$tmp/b.err")"
    fi
    # one side without TURN: the path is the other side's relay
    if [ -n "${STUN_ONLY:-}" ] && [ "$want" = relay ]; then
        local sj=$tmp/a.json tj=$tmp/b.json
        [ "$STUN_ONLY" = b ] && sj=$tmp/b.json tj=$tmp/a.json
        if ! grep -q '"remote": {"type": "relay"' "$sj" || ! grep -q '"local": {"type": "relay"' "$tj"; then
            fail "$label: want the TURN side's relay; STUN side: $(cat "$sj") / TURN side: $(cat "$tj")"
        fi
    fi
    local answered timing
    answered=$(sed -n 's/.*"answered": \([0-9]*\).*/\1/p' "$tmp/a.json")
    # when the room said the role, TURN over TCP was opened and the first
    # ping went, from the start of each side
    local j t side
    timing=""
    for j in a b; do
        t=$(sed -n 's/.*"timing": {"role_ms": \([0-9a-z]*\), "tcp_relay_ms": \([0-9a-z]*\), "first_ping_ms": \([0-9a-z]*\)}.*/room \1, TCP relay \2, first ping \3/p' "$tmp/$j.json")
        side=A
        [ $j = b ] && side="; B"
        timing="$timing$side: ${t:-?}"
    done
    local limit=1000 need=3 no_limit=${NO_TIME_LIMIT:-}
    [ "$want" = relay ] && limit=2000
    # UPnP: the SSDP search and the IGD's HTTP take 0.7 s before the
    # mapping exists (PCP: a few ms)
    [[ "$ka$kb" == *-upnp* ]] && limit=2000
    # birthday punching: connected through the relay, then direct; both
    # sides say so, and the time counts to the direct path
    local bda bdb
    bda=$(sed -n 's/.*"birthday": \(null\|{[^}]*}\).*/\1/p' "$tmp/a.json")
    bdb=$(sed -n 's/.*"birthday": \(null\|{[^}]*}\).*/\1/p' "$tmp/b.json")
    if [ "$want" = upgrade ]; then
        # renomination: relayed first, then direct, on both sides
        want=direct no_limit=1
        if [ -z "$ua" ] || [ "$ua" = null ] || [ "$(jfield "$tmp/b.json" upgraded_ms)" = null ]; then
            fail "$label: want relayed first, then direct (renomination); A: $(cat "$tmp/a.json") / B: $(cat "$tmp/b.json")"
        fi
    elif [ "$want" = birthday ]; then
        # guessing starts beside the relay once a NAT is seen to map per
        # destination: the time is to the direct path it found
        want=direct limit=1000
        local bat
        bat=$(echo "$bda" | sed -n 's/.*"at_ms": \([0-9]*\).*/\1/p')
        if [[ "$bda" == *'"direct": true'* ]] && [[ "$bdb" == *'"direct": true'* ]]; then
            ma=$bat
        else
            fail "$label: want direct by birthday punching; A: $bda B: $bdb"
        fi
    elif [ "$ka" = symmetric ] && [ "$kb" = symmetric ] && [ -z "${STUN_ONLY:-}" ]; then
        # where guessing does not pay it is not tried (under loss the sides
        # may not hear what the other saw: then too)
        if [[ "$bda" != *'"rounds": 0'* ]] || [[ "$bdb" != *'"rounds": 0'* ]] ||
            { [ "${LOSS:-0}" = 0 ] && [[ "$bda" != *"both NATs map per destination"* ]]; }; then
            fail "$label: both NATs are symmetric, where guessing does not pay; yet A: $bda B: $bdb; A: $(cat "$tmp/a.json") / B: $(cat "$tmp/b.json")"
        fi
    fi
    # under loss: connected is what counts (the target has no time limit
    # there, and single pings crossing four lossy hops may all be lost)
    [ "${LOSS:-0}" -gt 0 ] && need=0 && no_limit=1
    [ "$want" = any ] && want=$pa
    # exit 0 on both sides: connected, and data went both ways (pings are
    # resent until answered, under loss too)
    if [ "$ca" = true ] && [ "$cb" = true ] && [ "$pa" = "$want" ] && [ "$pb" = "$want" ] && [ "${answered:-0}" -ge $need ] &&
        [ "${rc_a:-1}" = 0 ] && [ "${rc_b:-1}" = 0 ]; then
        if [ "${ma:-99999}" -le $limit ] || [ -n "$no_limit" ]; then
            ok "$label: $want ($la/${pra:-?} -> $ra) in $ma ms$up_note (B: $mb ms), $answered/3 pings answered; ms after start: $timing"
        else
            fail "$label: $want but in $ma ms (limit $limit)"
        fi
    else
        fail "$label: want $want, exit 0 on both sides (A $rc_a, B $rc_b); A: $(cat "$tmp/a.json") $(grep -v '^trace' "$tmp/a.err" | tail -2) / B: $(cat "$tmp/b.json") $(grep -v '^trace' "$tmp/b.err" | tail -2)"
        echo "  A's trace (STUNKIT_TRACE=1):"; grep '^trace' "$tmp/a.err" | tail -40 | sed 's/^/    /'
        echo "  B's trace:"; grep '^trace' "$tmp/b.err" | tail -40 | sed 's/^/    /'
    fi
    echo "$label $want ${pa:-none} ${ma:-} ${mb:-} | $timing" >>"$tmp/matrix"
    lab_down
}

# birthday KIND_HARD KIND_EASY K M TRIALS: birthday-paradox punching
# (tests/birthday_probe.c) from behind KIND_HARD (symmetric) to KIND_EASY:
# K sockets on the hard side, M guessed ports from the easy side, fresh
# sockets and a fresh easy port each trial. Prints the hits and the cost.
probe=${BIRTHDAY_PROBE:-$(dirname "$stunkit")/../tests/birthday_probe}
birthday() {
    local kh=$1 ke=$2 k=$3 m=$4 trials=$5 hits=0 ms=0 t
    lab_up "$kh" "$ke" || { fail "birthday: the lab did not come up"; lab_down; return; }
    for t in $(seq "$trials"); do
        local port=$((40000 + t))
        ip netns exec "$A" "$probe" hard 198.51.100.130:$port "$k" 2000 >"$tmp/hard.out" 2>&1 &
        local hp=$!
        sleep 0.05
        ip netns exec "$B" "$probe" easy $port 198.51.100.2 "$m" 2000 >"$tmp/easy.out" 2>&1
        wait $hp
        if grep -q '^hit' "$tmp/easy.out" && grep -q '^hit' "$tmp/hard.out"; then
            hits=$((hits + 1))
            ms=$((ms + $(cut -d' ' -f2 "$tmp/easy.out")))
        fi
    done
    lab_down
    local pct=$((100 * hits / trials)) avg=0
    [ $hits -gt 0 ] && avg=$((ms / hits))
    local expect
    # 1 - exp(-K*M/N) over N = 64511 ports; nothing when the easy side's
    # own mappings move too (its probes leave from ports the hard side's
    # sockets never sent to)
    expect=$(awk -v k="$k" -v m="$m" 'BEGIN { printf "%.0f%%", 100 * (1 - exp(-k * m / 64511)) }')
    [ "$ke" = symmetric ] && expect="0%"
    echo "birthday $kh/$ke K=$k M=$m: $hits/$trials hits ($pct%, theory $expect), a hit after $avg ms on average;" \
        "cost: $k sockets and $k probes on the hard side, $m probes from the easy side" | tee -a "$tmp/birthday"
    BIRTHDAY_HITS=$hits
}

# `make bench` (scripts/bench-peer.sh): datagrams/s and round-trip latency
# between A and B (both public: no NAT, the same network for every path)
# over a bare UDP path, forwarded by punch --forward over the direct path,
# and through stunkitd's relay (A --relay-only; sockets, then XDP on the
# internet's two links). bench_peer_load in A, bench_udp_echo in B; the
# forwarders' CPU time per datagram from /proc.
cpu_ticks() { # PID...: utime + stime of them all, in clock ticks
    local t=0 p f
    for p in "$@"; do
        f=$(cut -d' ' -f14,15 "/proc/$p/stat" 2>/dev/null) || continue
        t=$((t + ${f% *} + ${f#* }))
    done
    echo $t
}
bench_paths() {
    local size=${BENCH_SIZE:-200} secs=${BENCH_SECONDS:-3} win=${BENCH_WINDOW:-64} mode hz
    hz=$(getconf CLK_TCK)
    local bare_rate="" bare_p50=""
    local bare_pc=""
    echo "| path | round trips/s | busy cores | per busy core | vs bare, per core | p50 us | p99 us | +p50 us | forwarders' CPU us per datagram and hop |"
    echo "|---|---|---|---|---|---|---|---|---|"
    # bare and api run twice, like with like: load and echo on one core
    # (the wake-ups stay on it) and on two (each wake-up crosses cores:
    # about 55 us more a round trip on this VM, whatever runs); the
    # forwarding rows are left to the scheduler (four processes, two cores)
    local modes=${BENCH_MODES:-bare:1 api:1 bare:2 api:2 direct relay relay-xdp} spec
    for spec in $modes; do
        local mode=${spec%%:*} cores="" pin_a="" pin_b="" extra=""
        [ "$spec" != "$mode" ] && cores=${spec#*:}
        if [ "$cores" = 1 ]; then pin_a="taskset -c 0" pin_b="taskset -c 0"; fi
        if [ "$cores" = 2 ]; then pin_a="taskset -c 0" pin_b="taskset -c 1"; fi
        [ $mode = relay-xdp ] && extra="--xdp wa --xdp wb"
        if [ $mode = relay-xdp ] && [ ! -f "${XDP_PASS:-}" ]; then
            echo "| $mode | skipped: no XDP_PASS program (stunkitd built without XDP?) | | | | | |"
            continue
        fi
        EXTRA_SERVER_ARGS="$extra" lab_up none none || { echo "| $mode | the lab did not come up (${extra:-sockets}) | | | | | |"; lab_down; continue; }
        if [ $mode = relay-xdp ]; then
            # veth hands XDP_TX'd and redirected frames only to a peer with
            # an XDP program of its own: a pass-through on the routers' side
            ip -n "$NA" link set dev wan xdpdrv obj "$XDP_PASS" sec xdp &&
                ip -n "$NB" link set dev wan xdpdrv obj "$XDP_PASS" sec xdp ||
                { echo "| $mode | XDP_PASS could not be attached | | | | | |"; lab_down; continue; }
        fi
        if [ $mode = api ]; then
            # the library's peer in the application itself: no forwarder
            rooms=$((rooms + 1))
            ip netns exec "$B" $pin_b "$PEER_API" echo 203.0.113.1 "bench-$$-$rooms" alice lab-secret >/dev/null 2>"$tmp/api-b.err" &
            local ep=$!
            pids="$pids $ep"
            sleep 0.3
            local r
            r=$(ip netns exec "$A" $pin_a "$PEER_API" load 203.0.113.1 "bench-$$-$rooms" alice lab-secret "$size" "$secs" "$win" 2>"$tmp/api-a.err")
            set -- $r
            local rate=${1:-0} p50=${2:-0} p99=${3:-0} busy=${5:-0} pc
            pc=$(awk -v r="$rate" -v b="$busy" 'BEGIN { printf "%.0f", (b > 0 ? r / b : 0) }')
            echo "| the peer in the application (${6:-not connected: $(tail -1 "$tmp/api-a.err")}), ${cores:-?} core(s) | $rate | $busy | $pc | $(awk -v a="$pc" -v b="$bare_pc" 'BEGIN { printf "%.2fx", b ? a / b : 0 }') | $p50 | $p99 | $(awk -v a="$p50" -v b="$bare_p50" 'BEGIN { printf "%+.1f", a - b }') | - |"
            kill $ep 2>/dev/null
            lab_down
            continue
        fi
        local echo_at=127.0.0.1:5001 load_bind=127.0.0.1:6002 load_to=127.0.0.1:6001 fwd=""
        if [ $mode = bare ]; then
            echo_at=192.0.2.130:5000 load_bind=192.0.2.2:6000 load_to=192.0.2.130:5000
        fi
        ip netns exec "$B" $pin_b "$UDP_ECHO" "${echo_at%:*}" "${echo_at#*:}" &
        pids="$pids $!"
        local pa="" pb=""
        if [ $mode != bare ]; then
            rooms=$((rooms + 1))
            local room="bench-$$-$rooms" ro=""
            [ $mode != direct ] && ro=--relay-only
            ip netns exec "$A" "$stunkit" punch 203.0.113.1 "$room" --count 1 --wait 20 --username alice --password lab-secret \
                --forward 6001:6002 $ro >"$tmp/ba.out" 2>"$tmp/ba.err" &
            pa=$!
            sleep 0.3
            ip netns exec "$B" "$stunkit" punch 203.0.113.1 "$room" --count 1 --wait 20 --username alice --password lab-secret \
                --forward 5002:5001 >"$tmp/bb.out" 2>"$tmp/bb.err" &
            pb=$!
            pids="$pids $pa $pb"
            for _ in $(seq 150); do grep -q "^forwarding" "$tmp/ba.out" && grep -q "^forwarding" "$tmp/bb.out" && break; sleep 0.1; done
            if ! grep -q "^forwarding" "$tmp/ba.out" || ! grep -q "^forwarding" "$tmp/bb.out"; then
                echo "| $mode | not connected: $(tail -2 "$tmp/ba.err" "$tmp/ba.out" | tr '\n' ' ') | | | | | |"
                lab_down
                continue
            fi
            fwd=$(grep -o "over the [a-z]* path" "$tmp/ba.out")
        fi
        local c0 c1 r
        c0=$(cpu_ticks $pa $pb)
        r=$(ip netns exec "$A" $pin_a "$PEER_LOAD" "$load_bind" "$load_to" "$size" "$secs" "$win")
        c1=$(cpu_ticks $pa $pb)
        set -- $r
        local rate=${1:-0} p50=${2:-0} p99=${3:-0} busy=${5:-0} cpu="-" pc
        pc=$(awk -v r="$rate" -v b="$busy" 'BEGIN { printf "%.0f", (b > 0 ? r / b : 0) }')
        if [ $mode = bare ]; then
            bare_rate=$rate bare_p50=$p50 bare_pc=$pc
        elif [ "$rate" != 0 ]; then
            # a round trip passes each of the two forwarders twice; their CPU
            # over the throughput phase and the latency one (1000 more)
            cpu=$(awk -v t=$((c1 - c0)) -v hz="$hz" -v n="$rate" -v s="$secs" 'BEGIN { printf "%.1f", t / hz * 1e6 / ((n * s + 1000) * 4) }')
        fi
        echo "| $mode${cores:+, $cores core(s)}${fwd:+ ($fwd)} | $rate | $busy | $pc | $(awk -v a="$pc" -v b="$bare_pc" 'BEGIN { printf "%.2fx", b ? a / b : 0 }') | $p50 | $p99 | $(awk -v a="$p50" -v b="$bare_p50" 'BEGIN { printf "%+.1f", a - b }') | $cpu |"
        [ -n "$pa" ] && kill -TERM $pa $pb 2>/dev/null
        lab_down
    done
    echo "(Each row is compared with the bare row above it. A datagram of $size bytes each way, $win in flight for $secs s; latency from 1000 round trips one at a"
    echo " time. Busy cores: of the machine's $(nproc), not idle during the throughput phase (load, echo, forwarders"
    echo " and the kernel's path through the lab's routers); per busy core = round trips/s / busy cores.)"
}

if [ "${1:-}" = bench ]; then
    [ -x "${PEER_LOAD:-}" ] && [ -x "${UDP_ECHO:-}" ] && [ -x "${PEER_API:-}" ] ||
        { echo "bench: PEER_LOAD, UDP_ECHO and PEER_API must name the programs"; exit 2; }
    bench_paths
    exit 0
fi
if [ "${1:-}" = birthday ]; then
    # the measurement: punch_lab_test.sh STUNKITD STUNKIT birthday [TRIALS]
    for km in "256 256" "256 1024" "1024 1024"; do
        birthday symmetric port-restricted-cone ${km% *} ${km#* } "${2:-50}"
    done
    birthday symmetric symmetric 256 1024 "${2:-50}"
    exit 0
fi

kinds="none firewall full-cone restricted-cone port-restricted-cone symmetric udp-blocked"
# a port-restricted router that also runs miniupnpd (PCP, NAT-PMP): with its
# port mapping even a symmetric NAT's peer gets in
pcp_pairs="port-restricted-pcp/symmetric symmetric/port-restricted-pcp port-restricted-pcp/port-restricted-cone"
upnp_pairs="port-restricted-upnp/symmetric symmetric/port-restricted-upnp"
if [ $# -eq 0 ] && [ -n "${PUNCH_LAB_QUICK:-}" ]; then
    # the sanitizer pass: one scenario per code path (direct, birthday
    # beside the relay, relay, TCP after a refusal and after silence, port
    # mapping, loss, one-sided relay, tokens, the attack)
    for p in port-restricted-cone/port-restricted-cone symmetric/port-restricted-cone symmetric/symmetric \
        udp-blocked/port-restricted-cone udp-dropped/full-cone; do
        run_pair "${p%/*}" "${p#*/}"
    done
    command -v miniupnpd >/dev/null 2>&1 && run_pair port-restricted-pcp symmetric
    LOSS=20 run_pair symmetric symmetric "20% loss, symmetric both (relay)"
    STUN_ONLY=a MODE=token run_pair symmetric port-restricted-cone "one relay: symmetric (STUN only, offers)/port-restricted-cone (TURN)"
    v6v4
    wireguard symmetric symmetric
    chat symmetric port-restricted-cone
    browser symmetric port-restricted-cone
    attack
elif [ $# -gt 0 ]; then
    for p in "$@"; do
        case $p in
        attack) attack ;;
        v6v4) v6v4 ;;
        wg:*) p=${p#wg:}; wireguard "${p%/*}" "${p#*/}" ;;
        chat:*) p=${p#chat:}; chat "${p%/*}" "${p#*/}" ;;
        browser:*) p=${p#browser:}; browser "${p%/*}" "${p#*/}" ;;
        *) run_pair "${p%/*}" "${p#*/}" ;;
        esac
    done
else
    set -- $kinds
    for ka in $kinds; do
        for kb in "$@"; do run_pair "$ka" "$kb"; done
        shift
    done
    # under loss every transaction (Allocate, permissions, checks) may need
    # its retransmissions, more so under a sanitizer: 30 s to connect
    if command -v miniupnpd >/dev/null 2>&1; then
        for p in $pcp_pairs; do run_pair "${p%/*}" "${p#*/}"; done
        # UPnP IGD where the router offers no PCP (punch built with libminiupnpc)
        if "$stunkit" map --help 2>&1 | grep -q "built in (libminiupnpc)"; then
            # (--no-spray: guessing, begun beside the relay, would often get
            # through before the IGD's mapping exists, 0.7 s in)
            for p in $upnp_pairs; do NO_SPRAY=1 run_pair "${p%/*}" "${p#*/}" "$p --no-spray"; done
        else
            echo "skip UPnP in punch: this stunkit was built without libminiupnpc"
        fi
        NO_MAP=1 NO_SPRAY=1 run_pair port-restricted-pcp symmetric "port-restricted-pcp/symmetric --no-map --no-spray (relay)"
    else
        echo "skip port mapping: miniupnpd not installed"
    fi
    # birthday-paradox punching (the full measurement: the "birthday" mode
    # above): it works against a port-restricted NAT, never against a second
    # symmetric one
    birthday symmetric port-restricted-cone 256 1024 5
    [ "$BIRTHDAY_HITS" -ge 1 ] && ok "birthday punching through a symmetric NAT: $BIRTHDAY_HITS of 5 hit" ||
        fail "birthday punching through a symmetric NAT: no trial of 5 hit (theory: 98% each)"
    birthday symmetric symmetric 256 1024 3
    [ "$BIRTHDAY_HITS" -eq 0 ] && ok "birthday punching between two symmetric NATs: no hit, as theory says" ||
        fail "birthday punching between two symmetric NATs: $BIRTHDAY_HITS of 3 hit (theory: none)"
    NO_SPRAY=1 run_pair symmetric port-restricted-cone "symmetric/port-restricted-cone --no-spray (relay)"
    # a turns: server: with UDP blocked, the rendezvous and the relay go over TLS
    TLS=1 run_pair udp-blocked port-restricted-cone "turns: udp-blocked/port-restricted-cone (relay over TLS)"
    LOSS=10 PUNCH_MS=30000 run_pair port-restricted-cone port-restricted-cone "10% loss, port-restricted both"
    # 20% loss on each router (each way): the default --timeout (10 s,
    # stretched by the loss the checks see), 5 of 5 connected with data
    # both ways
    for run in 1 2 3 4 5; do
        LOSS=20 run_pair symmetric symmetric "20% loss, symmetric both (relay), run $run of 5"
    done
    # one side without TURN (no credentials: the server is its STUN server
    # only): a symmetric NAT's peer reaches the other side's relay from a new
    # port of its NAT (a TURN permission is per IP), offering and answering
    for k in port-restricted-cone symmetric firewall; do
        STUN_ONLY=a MODE=token run_pair symmetric $k "one relay: symmetric (STUN only, offers)/$k (TURN)"
        STUN_ONLY=b MODE=token run_pair $k symmetric "one relay: $k (TURN)/symmetric (STUN only, answers)"
    done
    # --relay-only (iceTransportPolicy "relay") where a direct path exists:
    # A's relay all the same, and B never sees A's addresses
    RELAY_ONLY=1 run_pair full-cone none "relay-only: full-cone (A --relay-only)/none"
    # a real UDP application across the NATs: WireGuard through punch --forward
    for p in port-restricted-cone/port-restricted-cone symmetric/port-restricted-cone symmetric/symmetric \
        udp-blocked/port-restricted-cone; do
        wireguard "${p%/*}" "${p#*/}"
    done
    # Chromium's ICE agent (mDNS host names) against punch --sdp: behind a
    # port-restricted NAT (direct), behind a symmetric one (our relay), and
    # beside punch on one host (its name resolved from its announcement)
    browser port-restricted-cone port-restricted-cone
    browser symmetric port-restricted-cone
    SAME_LINK=1 browser port-restricted-cone none
    # the README's example: lines of text through a room, direct and relayed
    chat port-restricted-cone port-restricted-cone
    chat symmetric symmetric
    # a NAT that drops UDP without a word: the TCP fallbacks after their wait
    run_pair udp-dropped port-restricted-cone
    v6v4
    # renomination: the direct path opens only after the relayed one was
    # chosen; both sides move to it
    BLOCK_MS=1800 run_pair none port-restricted-cone "renomination: none/port-restricted-cone, A->B lost for 1.8 s"
    NO_TIME_LIMIT=1 run_pair hard hard "routers accepting unsolicited UDP (the hard variant)"
    # the pasted tokens, for the signalling without a rendezvous (the path
    # counts here; the time limits are the matrix's above)
    MODE=token NO_TIME_LIMIT=1 run_pair restricted-cone symmetric "tokens: restricted-cone/symmetric"
    MODE=token NO_TIME_LIMIT=1 run_pair symmetric symmetric "tokens: symmetric/symmetric (relay)"
    attack
fi
echo "matrix (label, expected, got, A ms, B ms):"
cat "$tmp/matrix" 2>/dev/null
cat "$tmp/birthday" 2>/dev/null
finish
