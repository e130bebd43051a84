#!/bin/bash
# ice_interop_test.sh STUNKITD STUNKIT NICE_PEER - our ICE agent against
# agents no one here wrote: libnice (tests/interop/nice_peer.c) and aioice
# (tests/interop/aioice_peer.py, Debian's python3-aioice under Debian's own
# /usr/bin/python3), each in both roles, with `stunkit punch --sdp`. The
# descriptions travel as RFC 8839 SDP lines (tests/interop/relay_sdp.py).
#
# In a network namespace of its own (documentation addresses only):
#   peers: 192.0.2.10 (ours) and 192.0.2.20 (theirs), stunkitd on 192.0.2.1,
#   and a NAT (port-restricted, the Linux masquerade) between "theirs" and the
#   rest in the second round, so srflx and prflx candidates are in play.
# Checked: both sides connected, 5 of our pings answered by them, their ping
# answered by us, the bye said both ways, the roles as asked.
# Root only (77 = skipped otherwise); NICE_PEER empty: libnice not built.
set -u
stunkitd=$1
stunkit=$2
nice_peer=${3:-}
[ "$(id -u)" -eq 0 ] || { echo "skip: network namespaces need root"; exit 77; }
command -v ip >/dev/null 2>&1 || { echo "skip: iproute2 not installed"; exit 77; }
dir=$(cd "$(dirname "$0")" && pwd)
. "$dir/../lib/testlib.sh"
. "$dir/../lib/netns.sh"
have_aioice=0
/usr/bin/python3 -c "import aioice" 2>/dev/null && have_aioice=1
[ -x "$nice_peer" ] || nice_peer=""
[ -n "$nice_peer" ] || [ $have_aioice = 1 ] || { echo "skip: neither libnice nor aioice here"; exit 77; }
[ -n "$nice_peer" ] || fail "libnice peer not built (install libnice-dev and rebuild)"
[ $have_aioice = 1 ] || fail "aioice not installed for /usr/bin/python3 (python3-aioice)"

tag="ii$$"
O="${tag}o" T="${tag}t" N="${tag}n"
lab_down() {
    for p in $pids; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    pids=""
    ns_down
}

# flat: ours (O) and theirs (T) on one link with the server (in O)
# nat:  theirs behind N (masquerade, unsolicited UDP to the router dropped)
# sym:  theirs behind a symmetric NAT (masquerade fully-random), ours behind
#       a stateful firewall: no direct path; theirs has no relay (a stun:
#       URL only), so the path is our relay, reached from a new port of
#       their NAT (issue 24 item 1: a TURN permission is per IP)
lab_up() {
    ns_add "$O" "$T" || return 1
    if [ "$1" = flat ]; then
        ns_veth "$O" o0 "$T" t0
        ns_addr "$O" o0 192.0.2.10/24 192.0.2.1/24
        ns_addr "$T" t0 192.0.2.20/24
        ns_route "$T" default via 192.0.2.1
        # libnice skips an interface until the kernel's link watch marks
        # it running (up to a second after "up")
        sleep 1
    else
        ns_add "$N" || return 1
        ns_veth "$O" o0 "$N" wan
        ns_veth "$N" lan "$T" t0
        ns_addr "$O" o0 192.0.2.10/24 192.0.2.1/24
        ns_addr "$N" wan 192.0.2.254/24
        ns_addr "$N" lan 100.64.0.1/24
        ns_addr "$T" t0 100.64.0.2/24
        ns_route "$T" default via 100.64.0.1
        ns_router "$N"
        local masq=masquerade
        [ "$1" = sym ] && masq="masquerade fully-random"
        ip netns exec "$N" nft -f - <<NFT || return 1
table ip lab {
    chain lab_post { type nat hook postrouting priority srcnat; policy accept; oifname "wan" $masq
    }
    chain lab_in { type filter hook input priority filter; policy accept; iifname "wan" meta l4proto udp ct state new drop
    }
}
NFT
    fi
    if [ "$1" = sym ]; then # ours behind a stateful firewall (the server beside it stays open)
        ip netns exec "$O" nft -f - <<'NFT' || return 1
table ip fw {
    chain fw_in { type filter hook input priority filter; policy accept;
        iifname "o0" ip daddr 192.0.2.10 meta l4proto udp ct state new drop
    }
}
NFT
    fi
    # one server for both sides, STUN and TURN (as deployments have it):
    # ours uses its credentials (relayed candidates too), theirs is given it
    # as a stun: URL without any and gathers its srflx from it
    ip netns exec "$O" "$stunkitd" --listen 192.0.2.1 --turn --credential alice:lab-secret \
        --allowed-peer 192.0.2.0/24 --log-level warn ${SECURE_STUN:+--secure-stun} 2>"$tmp/server.err" &
    pids="$pids $!"
    ns_wait_port "$O" udp :3478
}

# pair LAB LABEL OURS_ROLE THEIR_CMD...
pair() {
    local lab=$1 label=$2 ours=$3
    shift 3
    lab_up "$lab" || { fail "$label: lab did not come up"; lab_down; return; }
    local mine=(ip netns exec "$O" timeout 25 "$stunkit" punch 192.0.2.1 --sdp --json --count 5 --local 192.0.2.10
        --username alice --password lab-secret)
    if [ "$ours" = offer ]; then
        mine+=(--offer)
        /usr/bin/python3 "$dir/../interop/relay_sdp.py" "${mine[@]}" -- ip netns exec "$T" timeout 25 "$@" >"$tmp/out" 2>"$tmp/err"
    else
        mine+=(--answer -)
        /usr/bin/python3 "$dir/../interop/relay_sdp.py" ip netns exec "$T" timeout 25 "$@" -- "${mine[@]}" >"$tmp/out" 2>"$tmp/err"
    fi
    local json theirs want_ctl
    json=$(grep -o '{"connected".*' "$tmp/out" | tail -1)
    theirs=$(grep -oE '(nice|aioice): ready=.*' "$tmp/out" | tail -1)
    want_ctl=1
    [ "$ours" = offer ] && want_ctl=0
    # behind the NAT their agent's public address is its srflx, learnt from
    # our TURN server by a plain Binding request (a 401 left it none before;
    # SECURE_STUN=1 shows that)
    if [ "$lab" != flat ] && ! grep -q "typ srflx" "$tmp/out"; then
        fail "$label: their agent gathered no srflx candidate from the TURN server"
    fi
    # behind the symmetric NAT the one path is our relay
    if [ "$lab" = sym ] && ! [[ "$json" == *'"path": "relay", "local": {"type": "relay"'* ]]; then
        fail "$label: want our relay as the path: ${json:-none}"
    fi
    case "$json|$theirs" in
    *'"connected": true'*'"pings": {"sent": 5, "answered": 5,'*"|"*"ready=1 pong=1 bye=1 "*"controlling=$want_ctl "*)
        ok "$label: $(echo "$json" | sed 's/.*"path": "\([a-z]*\)", "local": {"type": "\([a-z]*\)".*"remote": {"type": "\([a-z]*\)".*"connect_ms": \([0-9]*\).*/\1, ours \2 -> theirs \3, \4 ms/'); $theirs" ;;
    *) fail "$label: ours: ${json:-none}; theirs: ${theirs:-none}; $(tail -3 "$tmp/err" | tr '\n' ' ')"
       grep -E "description" "$tmp/out" | cut -c1-400 ;;
    esac
    lab_down
}

for lab in ${INTEROP_LABS:-flat nat sym}; do
    if [ -n "$nice_peer" ]; then
        pair $lab "$lab: stunkit offers, libnice answers" offer "$nice_peer" answer 192.0.2.1 3478
        pair $lab "$lab: libnice offers, stunkit answers" answer "$nice_peer" offer 192.0.2.1 3478
    fi
    if [ $have_aioice = 1 ]; then
        pair $lab "$lab: stunkit offers, aioice answers" offer /usr/bin/python3 "$dir/../interop/aioice_peer.py" answer 192.0.2.1 3478
        pair $lab "$lab: aioice offers, stunkit answers" answer /usr/bin/python3 "$dir/../interop/aioice_peer.py" offer 192.0.2.1 3478
    fi
done
finish
