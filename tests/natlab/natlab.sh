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

. "$(dirname "$0")/../lib/netns.sh"
tag="sk$$"
C="${tag}c" N="${tag}n" S="${tag}s"
pids=""
cleanup() {
    for p in $pids; do kill "$p" 2>/dev/null; done
    for p in $pids; do wait "$p" 2>/dev/null; done
    pids=""
    ns_down
}
trap cleanup EXIT INT TERM
tmp=$(mktemp -d)
trap 'cleanup; rm -rf "$tmp"' EXIT

lab_up() { # kind hairpin loss_percent udp_timeout server
    local kind=$1 hairpin=$2 loss=$3 udp_timeout=$4 server=${5:-stunkitd}
    ns_add "$C" "$N" "$S" || return 1
    ns_veth "$C" c0 "$N" nin || return 1
    ns_veth "$N" nout "$S" s0 || return 1
    ns_addr "$C" c0 192.0.2.2/24
    ns_addr "$N" nin 192.0.2.1/24
    ns_addr "$N" nout 198.51.100.254/24
    ns_addr "$S" s0 198.51.100.1/24 198.51.100.2/24
    ns_route "$C" default via 192.0.2.1
    ns_route "$S" 192.0.2.0/24 via 198.51.100.254 # only used without NAT
    ns_router "$N"

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
    # hairpinning: 1 as RFC 4787 REQ-9 wants (the looped-back packet comes
    # from the sender's public address), 2 keeping the sender's inside
    # address (no source NAT on the way back), 3 from the router's LAN
    # address (a plain masquerade on the inside interface)
    case $hairpin in 1|2|3)
        nat_pre="$nat_pre
            iifname \"nin\" ip daddr 198.51.100.254 udp dport 1024-65535 dnat to 192.0.2.2" ;;
    esac
    case $hairpin in
    1) nat_post="$nat_post
            oifname \"nin\" ip saddr 192.0.2.0/24 ip daddr 192.0.2.0/24 snat to 198.51.100.254" ;;
    2) # the client must accept a packet from its own address on c0
        ip netns exec "$C" sysctl -qw net.ipv4.conf.all.accept_local=1 net.ipv4.conf.c0.accept_local=1 \
            net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.c0.rp_filter=0 ;;
    3) nat_post="$nat_post
            oifname \"nin\" ip saddr 192.0.2.0/24 ip daddr 192.0.2.0/24 masquerade" ;;
    esac
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

# name|kind|hairpin|loss%|udp timeout|classic|mapping|filtering|nat|hairpinning|hairpin source|vovida|runs
# (runs > 1: `stunkit nat` again and again in the same lab; under loss every
# run must be right or say unknown with exit 1, never wrong, and at most one
# in ten may be unknown)
scenarios='
none|none|0|0||open-internet|endpoint-independent|endpoint-independent|false|null|null|Open|1
firewall|firewall|0|0||symmetric-udp-firewall|endpoint-independent|address-and-port-dependent|false|null|null|Firewall|1
full-cone|full-cone|0|0||full-cone|endpoint-independent|endpoint-independent|true|false|null|Independent Mapping, Independent Filter|1
full-cone-hairpin|full-cone|1|0||full-cone|endpoint-independent|endpoint-independent|true|true|external|Independent Mapping, Independent Filter|1
restricted-cone|restricted-cone|0|0||restricted-cone|endpoint-independent|address-dependent|true|false|null|Independent Mapping, Address Dependent Filter|1
restricted-cone-hairpin|restricted-cone|1|0||restricted-cone|endpoint-independent|address-dependent|true|true|external|Independent Mapping, Address Dependent Filter|1
port-restricted-cone|port-restricted-cone|0|0||port-restricted-cone|endpoint-independent|address-and-port-dependent|true|false|null|Independent Mapping, Port Dependent Filter|1
port-restricted-cone-hairpin|port-restricted-cone|1|0||port-restricted-cone|endpoint-independent|address-and-port-dependent|true|true|external|Independent Mapping, Port Dependent Filter|1
hairpin-inside-source|port-restricted-cone|2|0||port-restricted-cone|endpoint-independent|address-and-port-dependent|true|true|internal||1
hairpin-router-source|port-restricted-cone|3|0||port-restricted-cone|endpoint-independent|address-and-port-dependent|true|true|other||1
symmetric|symmetric|0|0||symmetric|address-and-port-dependent|address-and-port-dependent|true|false|null|Dependent Mapping|1
udp-blocked|udp-blocked|0|0||udp-blocked|null|null|null|null|null|Blocked|1
none-loss|none|0|10||open-internet|endpoint-independent|endpoint-independent|false|null|null||1
firewall-loss|firewall|0|10||symmetric-udp-firewall|endpoint-independent|address-and-port-dependent|false|null|null||1
full-cone-loss|full-cone|0|10||full-cone|endpoint-independent|endpoint-independent|true|false|null||1
restricted-cone-loss|restricted-cone|0|10||restricted-cone|endpoint-independent|address-dependent|true|false|null||1
port-restricted-cone-loss|port-restricted-cone|1|10||port-restricted-cone|endpoint-independent|address-and-port-dependent|true|true|external||1
symmetric-loss|symmetric|0|10||symmetric|address-and-port-dependent|address-and-port-dependent|true|false|null||1
restricted-cone-loss30|restricted-cone|1|30||restricted-cone|endpoint-independent|address-dependent|true|true|external||'"${NATLAB_LOSS_RUNS:-8}"'
port-restricted-cone-loss30|port-restricted-cone|0|30||port-restricted-cone|endpoint-independent|address-and-port-dependent|true|false|null||'"${NATLAB_LOSS_RUNS:-8}"'
full-cone-loss30|full-cone|0|30||full-cone|endpoint-independent|endpoint-independent|true|false|null||'"${NATLAB_LOSS_RUNS:-8}"'
symmetric-loss30|symmetric|0|30||symmetric|address-and-port-dependent|address-and-port-dependent|true|false|null||'"${NATLAB_LOSS_RUNS:-8}"'
firewall-loss30|firewall|0|30||symmetric-udp-firewall|endpoint-independent|address-and-port-dependent|false|null|null||'"${NATLAB_LOSS_RUNS:-8}"'
lifetime|port-restricted-cone|0|0|8|port-restricted-cone|endpoint-independent|address-and-port-dependent|true|false|null||1
stund-port-restricted-cone|port-restricted-cone|0|0||port-restricted-cone|endpoint-independent|address-and-port-dependent|true|false|null||1
stund-symmetric|symmetric|0|0||symmetric|address-and-port-dependent|address-and-port-dependent|true|false|null||1
'

# one run's fields against the scenario's: 0 right, 1 unknown (something
# null and exit 1, nothing wrong), 2 wrong
judge() { # file rc
    local got want key bad=0 unknown=0
    for pair in "classic=$classic" "mapping=$mapping" "filtering=$filtering" "nat=$nat" "hairpinning=$hp" \
                "hairpin_source=$hpsrc"; do
        key=${pair%%=*} want=${pair#*=}
        got=$(field "$1" "$key")
        if [ "$got" = "$want" ]; then continue; fi
        if [ "$got" = null ]; then unknown=1; continue; fi
        echo "  WRONG $name: $key is '$got', wanted '$want' (exit $2)"
        bad=1
    done
    [ $bad = 1 ] && return 2
    [ $unknown = 1 ] && return 1
    [ "$2" -eq 0 ] || { echo "  WRONG $name: exit $2 with every field right"; return 2; }
    return 0
}

want_list=" $* "
echo "$scenarios" | while IFS='|' read -r name kind hairpin loss udp_to classic mapping filtering nat hp hpsrc vovida runs; do
    [ -n "$name" ] || continue
    if [ $# -gt 0 ] && [[ "$want_list" != *" $name "* ]]; then continue; fi
    echo "== $name (${kind}, hairpin ${hairpin}, loss ${loss}%${udp_to:+, udp timeout ${udp_to}s}${runs:+, $runs run(s)})"
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
    before=$fails
    if [ "${runs:-1}" -gt 1 ]; then
        right=0 unknown=0 wrong=0 times=""
        for i in $(seq "$runs"); do
            ip netns exec "$C" "$stunkit" nat --json 198.51.100.1 >"$tmp/out.json" 2>"$tmp/out.err"
            rc=$?
            judge "$tmp/out.json" $rc
            case $? in 0) right=$((right + 1)) ;; 1) unknown=$((unknown + 1)) ;; *) wrong=$((wrong + 1)); cat "$tmp/out.json" ;; esac
            times="$times $(field "$tmp/out.json" elapsed_s)"
        done
        echo "  $runs runs at ${loss}% loss each way: $right right, $unknown unknown, $wrong wrong; seconds:$times"
        echo "$name $runs $right $unknown $wrong" >>"${NATLAB_TALLY:-/dev/null}"
        if [ $wrong -gt 0 ] || [ $((unknown * 10)) -gt "$runs" ]; then
            echo "  FAIL $name: $wrong wrong, $unknown unknown of $runs"
            fails=$((fails + 1))
        fi
        [ $fails -eq $before ] && echo "  ok   $name" || echo fail >>"$tmp/fails"
        lab_down
        continue
    fi
    ip netns exec "$C" "$stunkit" nat --json $extra 198.51.100.1 >"$tmp/out.json" 2>"$tmp/out.err"
    rc=$?
    [ -n "${NATLAB_SHOW:-}" ] || cat "$tmp/out.json"
    want_rc=0
    [ "$classic" = null ] && want_rc=1
    [ $rc -eq $want_rc ] || { echo "  FAIL stunkit nat exit $rc"; cat "$tmp/out.err"; fails=$((fails + 1)); }
    check_field "$tmp/out.json" classic "$classic" "$name"
    check_field "$tmp/out.json" mapping "$mapping" "$name"
    check_field "$tmp/out.json" filtering "$filtering" "$name"
    check_field "$tmp/out.json" nat "$nat" "$name"
    check_field "$tmp/out.json" hairpinning "$hp" "$name"
    check_field "$tmp/out.json" hairpin_source "$hpsrc" "$name"
    if [ "$nat" = true ] && [ "$kind" != symmetric ]; then
        check_field "$tmp/out.json" port_preservation true "$name"
    fi
    if [ "$name" = lifetime ]; then
        lt=$(field "$tmp/out.json" lifetime_s)
        dead=$(field "$tmp/out.json" lifetime_expired_s)
        took=$(field "$tmp/out.json" elapsed_s)
        # conntrack was set to 8 s: alive at 6 s at least, gone by 10 s, and
        # the whole run within 1.5x the lifetime (12 s)
        if [ -z "$lt" ] || [ "$lt" = null ] || [ "$lt" -lt 6 ] || [ "$lt" -gt 9 ] || [ -z "$dead" ] ||
           [ "$dead" = null ] || [ "$dead" -gt 10 ] || [ "${took%%.*}" -ge 12 ]; then
            echo "  FAIL lifetime: alive ${lt:-?} s, expired ${dead:-?} s, took ${took:-?} s; wanted about 8 s in < 12 s"
            fails=$((fails + 1))
        fi
        # Ctrl-C after 3 s: the verdict and what is known of the lifetime,
        # exit 130
        ip netns exec "$C" "$stunkit" nat $extra 198.51.100.1 >"$tmp/int.out" 2>&1 &
        int_pid=$!
        sleep 3
        kill -INT $int_pid
        wait $int_pid
        rc=$?
        if [ $rc -ne 130 ] || ! grep -q "classic type       port-restricted-cone" "$tmp/int.out" ||
           ! grep -q "binding lifetime   more than [0-9]* s (interrupted" "$tmp/int.out" ||
           ! grep -q "alive after 1 s idle" "$tmp/int.out"; then
            echo "  FAIL lifetime interrupted: exit $rc, output:"; sed 's/^/    /' "$tmp/int.out"
            fails=$((fails + 1))
        else
            echo "  Ctrl-C after 3 s: exit 130, $(grep 'binding lifetime   more' "$tmp/int.out" | sed 's/^ *//')"
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
