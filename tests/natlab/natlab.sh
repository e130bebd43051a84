#!/bin/bash
# natlab.sh STUNKITD STUNKIT [SCENARIO...] - real Linux NATs in network
# namespaces, and the verdicts of `stunkit nat` (and, as a cross-check, the
# Vovida `stun` client) behind them.
#
#   client ns            nat ns                                 server ns
#   192.0.2.2/24 --- 192.0.2.1 | 198.51.100.254/24 --- 198.51.100.1 + .2/24
#                      nftables: masquerade, DNAT, sets, loss    stunkitd (RFC 5780),
#                                                                or the Vovida stund
#                                                                (RFC 3489 fallback)
#
# Documentation addresses only; every namespace is created here with a unique
# name and removed on exit, failure included. Needs root, ip and nft; exits 77
# (skipped) otherwise. Scenario names: see `scenarios` below.
set -u
stunkitd=$1
stunkit=$2
shift 2
if [ "$(id -u)" -ne 0 ]; then echo "skip: the NAT lab needs root (network namespaces)"; exit 77; fi
for tool in ip nft; do
    command -v $tool >/dev/null 2>&1 || { echo "skip: $tool not installed"; exit 77; }
done

tag="sk$$"
C="${tag}c" N="${tag}n" S="${tag}s"
pids=""
cleanup() {
    for p in $pids; do kill "$p" 2>/dev/null; done
    for p in $pids; do wait "$p" 2>/dev/null; done
    pids=""
    for ns in "$C" "$N" "$S"; do ip netns del "$ns" 2>/dev/null; done
}
trap cleanup EXIT INT TERM
tmp=$(mktemp -d)
trap 'cleanup; rm -rf "$tmp"' EXIT

lab_up() { # kind hairpin loss_percent udp_timeout server
    local kind=$1 hairpin=$2 loss=$3 udp_timeout=$4 server=${5:-stunkitd}
    ip netns add "$C" && ip netns add "$N" && ip netns add "$S" || return 1
    ip link add c0 netns "$C" type veth peer name nin netns "$N" || return 1
    ip link add nout netns "$N" type veth peer name s0 netns "$S" || return 1
    ip -n "$C" addr add 192.0.2.2/24 dev c0
    ip -n "$N" addr add 192.0.2.1/24 dev nin
    ip -n "$N" addr add 198.51.100.254/24 dev nout
    ip -n "$S" addr add 198.51.100.1/24 dev s0
    ip -n "$S" addr add 198.51.100.2/24 dev s0
    for ns in "$C" "$N" "$S"; do ip -n "$ns" link set lo up; done
    ip -n "$C" link set c0 up
    ip -n "$N" link set nin up
    ip -n "$N" link set nout up
    ip -n "$S" link set s0 up
    ip -n "$C" route add default via 192.0.2.1
    ip -n "$S" route add 192.0.2.0/24 via 198.51.100.254 # only used without NAT
    ip netns exec "$N" sysctl -qw net.ipv4.ip_forward=1

    local nat_pre="" nat_post="" fwd="" setdef=""
    case $kind in
    none) ;;
    firewall) # no NAT, a stateful firewall: only answers to what went out
        fwd='iifname "nout" ct state established,related accept
             iifname "nout" drop' ;;
    full-cone) # masquerade keeps ports; any outside host may use a mapping
        nat_post='oifname "nout" masquerade'
        nat_pre='iifname "nout" udp dport 1024-65535 dnat to 192.0.2.2' ;;
    restricted-cone) # inbound only from IPs this mapping has sent to
        setdef='set contacted { type ipv4_addr . inet_service; flags timeout; timeout 120s; }'
        fwd='iifname "nin" oifname "nout" meta l4proto udp update @contacted { ip daddr . udp sport timeout 120s }'
        nat_post='oifname "nout" masquerade'
        nat_pre='iifname "nout" ip saddr . udp dport @contacted dnat to 192.0.2.2' ;;
    port-restricted-cone) # Linux masquerade as it comes
        nat_post='oifname "nout" masquerade' ;;
    symmetric) # a fresh random port for every destination
        nat_post='oifname "nout" masquerade fully-random' ;;
    udp-blocked)
        fwd='meta l4proto udp drop' ;;
    esac
    if [ "$hairpin" = 1 ]; then
        nat_pre="$nat_pre
            iifname \"nin\" ip daddr 198.51.100.254 udp dport 1024-65535 dnat to 192.0.2.2"
        nat_post="$nat_post
            oifname \"nin\" ip saddr 192.0.2.0/24 ip daddr 192.0.2.0/24 masquerade"
    fi
    local loss_rule=""
    [ "$loss" -gt 0 ] && loss_rule="meta l4proto udp numgen random mod 100 < $loss drop"
    ip netns exec "$N" nft -f - <<NFT || return 1
table ip lab {
    $setdef
    chain lab_pre { type nat hook prerouting priority dstnat; policy accept; $nat_pre
    }
    chain lab_post { type nat hook postrouting priority srcnat; policy accept; $nat_post
    }
    chain lab_fwd { type filter hook forward priority filter; policy accept; $fwd
    }
    chain lab_in { type filter hook input priority filter; policy accept;
        iifname "nout" meta l4proto udp drop
    }
}
table ip loss {
    chain loss_fwd { type filter hook forward priority -10; policy accept; $loss_rule
    }
}
NFT
    if [ -n "$udp_timeout" ]; then
        # a short UDP conntrack timeout makes the binding lifetime measurable
        ip netns exec "$N" sysctl -qw net.netfilter.nf_conntrack_udp_timeout="$udp_timeout" \
            net.netfilter.nf_conntrack_udp_timeout_stream="$udp_timeout" || return 1
    fi
    if [ "$server" = stund ]; then
        # the Vovida RFC 3489 server: CHANGED-ADDRESS, no OTHER-ADDRESS
        ip netns exec "$S" stund -h 198.51.100.1 -a 198.51.100.2 >"$tmp/server.err" 2>&1 &
    else
        ip netns exec "$S" "$stunkitd" --listen 198.51.100.1 --alternate 198.51.100.2 --threads 1 \
            --log-level warn 2>"$tmp/server.err" &
    fi
    server_pid=$!
    pids="$pids $server_pid"
    for _ in $(seq 50); do
        ip netns exec "$S" "$stunkit" addr --timeout 200 198.51.100.1 >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "stunkitd did not come up:"; cat "$tmp/server.err"
    return 1
}

lab_down() { cleanup; }

field() { # json key -> raw value
    sed -n "s/.*\"$2\": \(\"[^\"]*\"\|[a-z0-9.]*\).*/\1/p" "$1" | tr -d '"'
}

fails=0
ran=0
check_field() { # file key want label
    local got
    got=$(field "$1" "$2")
    if [ "$got" = "$3" ]; then return 0; fi
    echo "  FAIL $4: $2 is '$got', wanted '$3'"
    fails=$((fails + 1))
    return 1
}

# name|kind|hairpin|loss%|udp timeout|classic|mapping|filtering|nat|hairpinning|vovida
scenarios='
none|none|0|0||open-internet|endpoint-independent|endpoint-independent|false|null|Open
firewall|firewall|0|0||symmetric-udp-firewall|endpoint-independent|address-and-port-dependent|false|null|Firewall
full-cone|full-cone|0|0||full-cone|endpoint-independent|endpoint-independent|true|false|Independent Mapping, Independent Filter
full-cone-hairpin|full-cone|1|0||full-cone|endpoint-independent|endpoint-independent|true|true|Independent Mapping, Independent Filter
restricted-cone|restricted-cone|0|0||restricted-cone|endpoint-independent|address-dependent|true|false|Independent Mapping, Address Dependent Filter
restricted-cone-hairpin|restricted-cone|1|0||restricted-cone|endpoint-independent|address-dependent|true|true|Independent Mapping, Address Dependent Filter
port-restricted-cone|port-restricted-cone|0|0||port-restricted-cone|endpoint-independent|address-and-port-dependent|true|false|Independent Mapping, Port Dependent Filter
port-restricted-cone-hairpin|port-restricted-cone|1|0||port-restricted-cone|endpoint-independent|address-and-port-dependent|true|true|Independent Mapping, Port Dependent Filter
symmetric|symmetric|0|0||symmetric|address-and-port-dependent|address-and-port-dependent|true|false|Dependent Mapping
udp-blocked|udp-blocked|0|0||udp-blocked|unknown|unknown|null|null|Blocked
none-loss|none|0|10||open-internet|endpoint-independent|endpoint-independent|false|null|
firewall-loss|firewall|0|10||symmetric-udp-firewall|endpoint-independent|address-and-port-dependent|false|null|
full-cone-loss|full-cone|0|10||full-cone|endpoint-independent|endpoint-independent|true|false|
restricted-cone-loss|restricted-cone|0|10||restricted-cone|endpoint-independent|address-dependent|true|false|
port-restricted-cone-loss|port-restricted-cone|1|10||port-restricted-cone|endpoint-independent|address-and-port-dependent|true|true|
symmetric-loss|symmetric|0|10||symmetric|address-and-port-dependent|address-and-port-dependent|true|false|
lifetime|port-restricted-cone|0|0|3|port-restricted-cone|endpoint-independent|address-and-port-dependent|true|false|
stund-port-restricted-cone|port-restricted-cone|0|0||port-restricted-cone|endpoint-independent|address-and-port-dependent|true|false|
stund-symmetric|symmetric|0|0||symmetric|address-and-port-dependent|address-and-port-dependent|true|false|
'

want_list=" $* "
echo "$scenarios" | while IFS='|' read -r name kind hairpin loss udp_to classic mapping filtering nat hp vovida; do
    [ -n "$name" ] || continue
    if [ $# -gt 0 ] && [[ "$want_list" != *" $name "* ]]; then continue; fi
    echo "== $name (${kind}, hairpin ${hairpin}, loss ${loss}%${udp_to:+, udp timeout ${udp_to}s})"
    server=stunkitd
    case $name in stund-*)
        command -v stund >/dev/null 2>&1 || { echo "  skip: stund (stun-server) not installed"; continue; }
        server=stund ;;
    esac
    if ! lab_up "$kind" "$hairpin" "$loss" "$udp_to" "$server"; then
        echo "  FAIL lab setup"; echo fail >>"$tmp/fails"; lab_down; continue
    fi
    extra=""
    [ "$name" = lifetime ] && extra="--lifetime --max-lifetime 16"
    if [ -n "${NATLAB_SHOW:-}" ]; then
        # for people (make demo): the human verdict first
        echo "  \$ stunkit nat 198.51.100.1   # from 192.0.2.2, behind the NAT"
        ip netns exec "$C" "$stunkit" nat $extra 198.51.100.1 | sed 's/^/  /'
    fi
    ip netns exec "$C" "$stunkit" nat --json $extra 198.51.100.1 >"$tmp/out.json" 2>"$tmp/out.err"
    rc=$?
    before=$fails
    [ -n "${NATLAB_SHOW:-}" ] || cat "$tmp/out.json"
    [ $rc -eq 0 ] || { echo "  FAIL stunkit nat exit $rc"; cat "$tmp/out.err"; fails=$((fails + 1)); }
    check_field "$tmp/out.json" classic "$classic" "$name"
    check_field "$tmp/out.json" mapping "$mapping" "$name"
    check_field "$tmp/out.json" filtering "$filtering" "$name"
    check_field "$tmp/out.json" nat "$nat" "$name"
    check_field "$tmp/out.json" hairpinning "$hp" "$name"
    if [ "$nat" = true ] && [ "$kind" != symmetric ]; then
        check_field "$tmp/out.json" port_preservation true "$name"
    fi
    if [ "$name" = lifetime ]; then
        lt=$(field "$tmp/out.json" lifetime_s)
        dead=$(field "$tmp/out.json" lifetime_expired_s)
        # conntrack was set to 3 s: alive at 2 s at least, gone by 5 s
        if [ -z "$lt" ] || [ "$lt" = null ] || [ "$lt" -lt 2 ] || [ "$lt" -gt 4 ] || [ -z "$dead" ] || [ "$dead" -gt 5 ]; then
            echo "  FAIL lifetime: alive ${lt:-?} s, expired ${dead:-?} s; wanted about 3 s"
            fails=$((fails + 1))
        fi
    fi
    if [ -n "$vovida" ] && command -v stun >/dev/null 2>&1; then
        ip netns exec "$C" timeout 60 stun 198.51.100.1 >"$tmp/vovida.out" 2>&1
        if grep -q "Primary: $vovida" "$tmp/vovida.out"; then
            echo "  vovida agrees: $(grep Primary "$tmp/vovida.out" | tr -d '\t')"
        else
            echo "  FAIL vovida stun says: $(grep Primary "$tmp/vovida.out"), wanted 'Primary: $vovida'"
            fails=$((fails + 1))
        fi
    fi
    [ $fails -eq $before ] && echo "  ok   $name" || echo fail >>"$tmp/fails"
    lab_down
done
n_fail=$(cat "$tmp/fails" 2>/dev/null | wc -l)
echo "$n_fail scenario(s) failed"
[ "$n_fail" -eq 0 ]
