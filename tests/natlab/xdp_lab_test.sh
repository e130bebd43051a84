#!/bin/bash
# xdp_lab_test.sh STUNKITD STUNKIT XDP_PASS_OBJ - stunkitd --xdp end to end
# over a veth pair between two network namespaces (root only; 77 = skipped).
#
#   client ns: c0 192.0.2.7, 2001:db8::7   <-veth->   server ns: s0 192.0.2.1/.9,
#   (XDP_PASS on c0: veth hands XDP_TX       2001:db8::1/::9, stunkitd RFC 5780
#    frames only to a peer running XDP)     mode with SOFTWARE
#
# The same fixed requests (tests/xdp/stun_probe.py) get the same answers,
# byte for byte, from stunkitd with and without --xdp, IPv4 and IPv6, on
# all four addresses; the counters say which path answered; `stunkit bench`
# checks every answer through XDP; SIGHUP adding credentials stops the XDP
# answers (401 from the socket path); SIGKILL leaves no program behind; and
# a missing interface, a non-Ethernet one, a busy one and no privilege each
# give one line and the socket path. Documentation addresses only.
set -u
stunkitd=$1
stunkit=$2
pass_obj=$3
[ "$(id -u)" -eq 0 ] || { echo "skip: network namespaces and BPF need root"; exit 77; }
. "$(dirname "$0")/../lib/testlib.sh"
. "$(dirname "$0")/../lib/netns.sh"
probe="/usr/bin/python3 $(dirname "$0")/xdp/stun_probe.py"
tag="xl$$"
S="${tag}s" C="${tag}c"
ns_add "$S" "$C" || { fail "netns"; exit 1; }
ns_veth "$S" s0 "$C" c0
ns_addr "$S" s0 192.0.2.1/24 192.0.2.9/24 2001:db8::1/64 2001:db8::9/64
ns_addr "$C" c0 192.0.2.7/24 2001:db8::7/64
ip -n "$C" link set dev c0 xdpdrv obj "$pass_obj" sec xdp || { fail "XDP_PASS on the client's veth"; exit 1; }

RFC5780="--listen 192.0.2.1:3478 --alternate 192.0.2.9:3479 --listen [2001:db8::1]:3478 --alternate [2001:db8::9]:3479"
# no budgets: stunkit bench sends from one address (xdp_test covers them)
SOFT="--software stunkitd-xdp-lab --rate-limit 0 --redirect-rate-limit 0"
server() { # LOG ARGS...: stunkitd in the server namespace; sets spid
    local log=$1
    shift
    ip netns exec "$S" "$stunkitd" "$@" 2>"$log" &
    spid=$!
    pids="$pids $spid"
}
ready() { # ADDR: answered from the client namespace
    for _ in $(seq 50); do
        ip netns exec "$C" "$stunkit" addr --timeout 100 "$1" 2>&1 | grep -q "answered\|public" && return 0
        sleep 0.1
    done
    return 1
}
stop() { kill "$spid" 2>/dev/null; wait "$spid" 2>/dev/null; }
counter() { # LOG NAME: the last value printed
    grep -E "^ +$2 " "$1" | tail -1 | awk '{print $2}'
}
dump() { # LOG: SIGUSR1 and wait for the dump
    local before
    before=$(grep -c "counters (SIGUSR1)" "$1")
    kill -USR1 "$spid"
    for _ in $(seq 50); do
        [ "$(grep -c "counters (SIGUSR1)" "$1")" -gt "$before" ] && grep -q "rdv_refused_size" "$1" && return 0
        sleep 0.1
    done
}
probe_all() { # OUT: the fixed requests to every address, IPv4 and IPv6
    {
        ip netns exec "$C" $probe 192.0.2.7 40000 192.0.2.1 3478 3479
        ip netns exec "$C" $probe 192.0.2.7 40000 192.0.2.9 3478 3479
        ip netns exec "$C" $probe 2001:db8::7 40000 2001:db8::1 3478 3479
        ip netns exec "$C" $probe 2001:db8::7 40000 2001:db8::9 3478 3479
    } >"$1"
}

# 1. the socket path's answers
server "$tmp/sock.log" $RFC5780 $SOFT
ready 192.0.2.1 || fail "stunkitd (sockets) did not come up: $(cat "$tmp/sock.log")"
probe_all "$tmp/sock.txt"
stop
answered=$(grep -vc ": none" "$tmp/sock.txt")
[ "$answered" -ge 48 ] && ok "the socket path answered $answered of $(wc -l <"$tmp/sock.txt") fixed requests" ||
    fail "socket path: $(cat "$tmp/sock.txt")"

# 2. the same with XDP
server "$tmp/xdp.log" $RFC5780 $SOFT --xdp s0
ready 192.0.2.1 || fail "stunkitd --xdp did not come up: $(cat "$tmp/xdp.log")"
line=$(grep "XDP on s0" "$tmp/xdp.log")
echo "$line" | grep -q "native mode" && ok "attached: ${line#*info: }" || fail "attach line: $(cat "$tmp/xdp.log")"
ip -n "$S" link show s0 | grep -q "prog/xdp" && ok "ip link shows the program on s0" || fail "no program on s0"
dump "$tmp/xdp.log"
a0=$(counter "$tmp/xdp.log" xdp_answered)
p0=$(counter "$tmp/xdp.log" xdp_passed)
d0=$(counter "$tmp/xdp.log" xdp_dropped)
probe_all "$tmp/xdp.txt"
if diff "$tmp/sock.txt" "$tmp/xdp.txt" >"$tmp/diff"; then
    ok "with --xdp: the same $answered answers, byte for byte (IPv4 and IPv6, two addresses and two ports each, SOFTWARE, FINGERPRINT, RFC 5780 attributes)"
else
    fail "answers differ: $(cat "$tmp/diff")"
fi
dump "$tmp/xdp.log"
a1=$(counter "$tmp/xdp.log" xdp_answered)
p1=$(counter "$tmp/xdp.log" xdp_passed)
d1=$(counter "$tmp/xdp.log" xdp_dropped)
# per address and port (8): plain, fingerprint, software+fingerprint and the
# optional attribute answered in XDP (4); RFC 3489, 420 and CHANGE-REQUEST
# passed to the sockets (3); the bad FINGERPRINT dropped (1)
[ $((a1 - a0)) -eq 32 ] && [ $((p1 - p0)) -eq 24 ] && [ $((d1 - d0)) -eq 8 ] &&
    ok "counters: 32 answered in XDP, 24 passed to the sockets (RFC 3489, 420, CHANGE-REQUEST), 8 dropped (bad FINGERPRINT)" ||
    fail "counters: answered +$((a1 - a0)), passed +$((p1 - p0)), dropped +$((d1 - d0))"
ip netns exec "$C" "$stunkit" bench -d 1 -s 8 -w 4 --json 192.0.2.1 >"$tmp/bench.json" 2>/dev/null
ans=$(sed -n 's/.*"answered": \([0-9]*\).*/\1/p' "$tmp/bench.json")
lost=$(sed -n 's/.*"lost": \([0-9]*\).*/\1/p' "$tmp/bench.json")
dump "$tmp/xdp.log"
a2=$(counter "$tmp/xdp.log" xdp_answered)
[ -n "$ans" ] && [ "$ans" -gt 1000 ] && [ "$lost" = 0 ] && [ $((a2 - a1)) -ge "$ans" ] &&
    ok "stunkit bench through XDP: $ans answers checked, none lost; xdp_answered +$((a2 - a1))" ||
    fail "bench: $(cat "$tmp/bench.json"); xdp_answered $a1 -> $a2"
ip netns exec "$C" "$stunkit" addr 2001:db8::1 2>&1 | grep -q "public address  \[2001:db8::7\]" &&
    ok "stunkit addr over IPv6 through XDP" || fail "stunkit addr over IPv6"

# 3. SIGKILL: the bpf_link goes with the process
kill -9 "$spid"
wait "$spid" 2>/dev/null
sleep 0.2
ip -n "$S" link show s0 | grep -q "prog/xdp" && fail "a program is still attached after SIGKILL" ||
    ok "SIGKILL: no program left on s0"

# 4. SIGHUP adding credentials: Binding goes to the socket path (401)
printf 'listen = 192.0.2.1:3478\nxdp = s0\n' >"$tmp/hup.conf"
server "$tmp/hup.log" --config "$tmp/hup.conf"
ready 192.0.2.1 || fail "stunkitd --config did not come up: $(cat "$tmp/hup.log")"
ip netns exec "$C" $probe 192.0.2.7 40001 192.0.2.1 3478 >"$tmp/hup1.txt"
printf 'credential = alice:secret\n' >>"$tmp/hup.conf"
kill -HUP "$spid"
for _ in $(seq 30); do grep -q "credentials reloaded" "$tmp/hup.log" && break; sleep 0.1; done
ip netns exec "$C" $probe 192.0.2.7 40001 192.0.2.1 3478 >"$tmp/hup2.txt"
grep -q "192.0.2.1 3478 plain: 0101" "$tmp/hup1.txt" && grep -q "192.0.2.1 3478 plain: 0111" "$tmp/hup2.txt" &&
    ok "SIGHUP with credentials: XDP stops answering, the socket path says 401" ||
    fail "SIGHUP: before $(grep plain: "$tmp/hup1.txt"), after $(grep plain: "$tmp/hup2.txt")"
stop

# 5. when XDP cannot be had: one line, and the socket path serves
server "$tmp/busy1.log" --listen 192.0.2.1:3478 --xdp s0
ready 192.0.2.1 || fail "first server"
busy_pid=$spid
for case in "nope0:no such interface" "lo:not an Ethernet device" "s0:another XDP program is attached there"; do
    ifc=${case%%:*} want=${case#*:}
    server "$tmp/err.log" --listen 192.0.2.9:3478 --xdp "$ifc"
    if ready 192.0.2.9 && [ "$(grep -c "error" "$tmp/err.log")" -eq 1 ] && grep -q -- "--xdp $ifc: .*$want.*; this interface stays on the socket path" "$tmp/err.log"; then
        ok "--xdp $ifc: one line ($want) and the socket path answers"
    else
        fail "--xdp $ifc: $(cat "$tmp/err.log")"
    fi
    stop
done
ip netns exec "$S" setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all "$stunkitd" \
    --listen 192.0.2.9:3478 --xdp s0 2>"$tmp/noperm.log" &
spid=$!
pids="$pids $spid"
if ready 192.0.2.9 && grep -q -- "--xdp: cannot load the XDP program: not permitted" "$tmp/noperm.log"; then
    ok "without privileges: $(grep -o 'cannot load.*' "$tmp/noperm.log" | head -1 | cut -c1-60)... and the socket path answers"
else
    fail "no privilege: $(cat "$tmp/noperm.log")"
fi
stop
spid=$busy_pid
stop

finish
