#!/bin/bash
# proxy_lab_test.sh STUNKITD STUNKIT - stunkitd on port 443 behind a real
# HAProxy that shares the port with a web server, routing by ALPN (RFC
# 7443) and telling stunkitd each client's address with the PROXY protocol
# v2. Documentation addresses only; root (77 = skipped otherwise).
#
#   client ns  203.0.113.10 --- 203.0.113.1  proxy ns  198.51.100.1 --- 198.51.100.2  server ns
#                               HAProxy :443  (routes)                   stunkitd :443 (TLS + STUN, PROXY from .1)
#                                                                        web: openssl s_server :8443
#
# Through HAProxy: `stunkit addr --tls` and `stunkit turn --tls` see the
# client's own address (not the proxy's); a browser's ALPN (http/1.1) lands
# on the web server. Beside it: plain STUN over TCP on the same port 443; a
# PROXY header from a listed proxy names the client; a forged one from
# anyone else closes that connection only (and is counted); a malformed one
# too; the server keeps serving.
set -u
stunkitd=$1
stunkit=$2
[ "$(id -u)" -eq 0 ] || { echo "skip: network namespaces need root"; exit 77; }
command -v ip >/dev/null 2>&1 || { echo "skip: iproute2 not installed"; exit 77; }
command -v haproxy >/dev/null 2>&1 || { echo "skip: haproxy not installed"; exit 77; }
command -v openssl >/dev/null 2>&1 || { echo "skip: openssl not installed"; exit 77; }
py=/usr/bin/python3 # Debian's interpreter (only the standard library is used)
[ -x "$py" ] || py=python3
. "$(dirname "$0")/../lib/testlib.sh"
. "$(dirname "$0")/../lib/netns.sh"
tag="px$$"
C="${tag}c" P="${tag}p" S="${tag}s"
ns_add "$C" "$P" "$S" || { fail "netns"; exit 1; }
ns_veth "$C" c0 "$P" pc
ns_veth "$P" ps "$S" s0
ns_addr "$C" c0 203.0.113.10/24
ns_addr "$P" pc 203.0.113.1/24
ns_addr "$P" ps 198.51.100.1/24
ns_addr "$S" s0 198.51.100.2/24
ns_router "$P" # the client reaches the server directly too (for the forged headers)
ns_route "$C" default via 203.0.113.1
ns_route "$S" default via 198.51.100.1

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=stun.example.org \
    -addext "subjectAltName=DNS:stun.example.org,IP:203.0.113.1,IP:198.51.100.2" -days 2 \
    -keyout "$tmp/key.pem" -out "$tmp/cert.pem" 2>/dev/null || { fail "openssl req"; exit 1; }

ip netns exec "$S" "$stunkitd" --listen 198.51.100.2 --tls-port 443 --tls-cert "$tmp/cert.pem" \
    --tls-key "$tmp/key.pem" --proxy-from 198.51.100.1/32 --turn --credential alice:lab-secret --realm lab.example \
    --allowed-peer 198.51.100.2/32 --metrics 198.51.100.2:9478 --log-level warn 2>"$tmp/server.err" &
spid=$!
pids="$pids $spid"
# the web beside it: any TLS server with a page
(cd "$tmp" && exec ip netns exec "$S" openssl s_server -quiet -www -accept 198.51.100.2:8443 -cert cert.pem \
    -key key.pem >/dev/null 2>&1) &
pids="$pids $!"
cat >"$tmp/haproxy.cfg" <<EOF
global
    maxconn 200
defaults
    mode tcp
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend https
    bind 203.0.113.1:443
    tcp-request inspect-delay 5s
    tcp-request content accept if { req.ssl_hello_type 1 }
    use_backend stun if { req.ssl_alpn stun.turn } || { req.ssl_alpn stun.nat-discovery }
    default_backend web
backend stun
    server stunkitd 198.51.100.2:443 send-proxy-v2
backend web
    server web 198.51.100.2:8443
EOF
haproxy -c -f "$tmp/haproxy.cfg" >"$tmp/haproxy.check" 2>&1 || { fail "haproxy -c: $(cat "$tmp/haproxy.check")"; exit 1; }
ip netns exec "$P" haproxy -db -f "$tmp/haproxy.cfg" >"$tmp/haproxy.log" 2>&1 &
pids="$pids $!"
ns_wait_port "$S" tcp 198.51.100.2:443 && ns_wait_port "$S" tcp 198.51.100.2:8443 &&
    ns_wait_port "$P" tcp 203.0.113.1:443 || { fail "servers did not start: $(cat "$tmp/server.err" "$tmp/haproxy.log")"; exit 1; }

# 1. STUN over TLS through HAProxy: the client's own address
out=$(ip netns exec "$C" "$stunkit" addr --json --tls --ca-file "$tmp/cert.pem" --timeout 5000 203.0.113.1:443 2>&1)
case $out in
*'"mapped": "203.0.113.10:'*) ok "stunkit addr --tls through HAProxy on 443 sees the client: $out" ;;
*) fail "stunkit addr --tls through HAProxy: $out" ;;
esac
# 2. TURN over TLS through HAProxy: allocations, data both ways, the client's address
out=$(ip netns exec "$C" "$stunkit" turn --json --tls --ca-file "$tmp/cert.pem" --username alice --password lab-secret \
    --timeout 10000 203.0.113.1:443 2>&1)
case $out in
*'"ok": true'*'"mapped": "203.0.113.10:'*) ok "stunkit turn --tls through HAProxy: relayed, mapped to the client: $out" ;;
*) fail "stunkit turn --tls through HAProxy: $out" ;;
esac
# 3. the web's ALPN lands on the web server, not on stunkitd
web=$(printf 'GET / HTTP/1.0\r\n\r\n' | ip netns exec "$C" timeout 10 openssl s_client -quiet -alpn http/1.1 \
    -connect 203.0.113.1:443 2>/dev/null | head -1)
case $web in *"HTTP/1.0 200"*) ok "http/1.1 on the same port 443 reaches the web server: $web" ;;
*) fail "the web through HAProxy: '$web'" ;; esac

# stun_over_tcp NS ADDR:PORT [PROXY-SRC-IP PROXY-SRC-PORT [BAD]]: a Binding
# request over TCP (after a PROXY v2 header when asked); prints the mapped
# address, or "closed"
cat >"$tmp/stun_tcp.py" <<'EOF'
import os, socket, struct, sys
host, port = sys.argv[1].rsplit(":", 1)
s = socket.create_connection((host, int(port)), timeout=5)
if len(sys.argv) > 2:
    sig = b"\r\n\r\n\x00\r\nQUIT\n"
    if len(sys.argv) > 4:   # malformed: version 3
        s.sendall(sig + bytes([0x31, 0x11]) + struct.pack("!H", 12) + bytes(12))
    else:
        src = socket.inet_aton(sys.argv[2]); dst = socket.inet_aton(host)
        s.sendall(sig + bytes([0x21, 0x11]) + struct.pack("!H", 12) + src + dst + struct.pack("!HH", int(sys.argv[3]), int(port)))
tid = os.urandom(12)
data = b""
try:  # a connection the server refused ends with a reset, or just its end
    s.sendall(struct.pack("!HHI", 0x0001, 0, 0x2112A442) + tid)
    while len(data) < 20 or len(data) < 20 + struct.unpack("!H", data[2:4])[0]:
        chunk = s.recv(2048)
        if not chunk:
            break
        data += chunk
except (socket.timeout, ConnectionResetError, BrokenPipeError):
    pass
if len(data) < 20:
    print("closed"); sys.exit(0)
i = 20
while i + 4 <= len(data):
    t, l = struct.unpack("!HH", data[i:i + 4])
    if t == 0x0020 and data[i + 5] == 1:
        p = struct.unpack("!H", data[i + 6:i + 8])[0] ^ 0x2112
        a = bytes(b ^ k for b, k in zip(data[i + 8:i + 12], b"\x21\x12\xa4\x42"))
        print("%s:%d" % (socket.inet_ntoa(a), p)); sys.exit(0)
    i += 4 + ((l + 3) & ~3)
print("no-address")
EOF
stun_tcp() { local ns=$1; shift; ip netns exec "$ns" timeout 10 "$py" "$tmp/stun_tcp.py" "$@" 2>&1; }

# 4. plain STUN over TCP on the TLS port (the proxy's address, no header)
got=$(stun_tcp "$P" 198.51.100.2:443)
case $got in 198.51.100.1:*) ok "plain STUN over TCP on port 443 beside TLS: $got" ;; *) fail "plain STUN on 443: $got" ;; esac
# 5. a listed proxy's header names the client
got=$(stun_tcp "$P" 198.51.100.2:443 203.0.113.77 40123)
[ "$got" = 203.0.113.77:40123 ] && ok "a PROXY v2 header from the listed proxy names the client: $got" ||
    fail "PROXY header from the proxy: $got"
# 6. the same header from anyone else: that connection is closed, unanswered
got=$(stun_tcp "$C" 198.51.100.2:443 192.0.2.66 1234)
[ "$got" = closed ] && ok "a PROXY header from an unlisted address (203.0.113.10): closed, unanswered" ||
    fail "forged PROXY header answered: $got"
# 7. a malformed header from the listed proxy: closed too
got=$(stun_tcp "$P" 198.51.100.2:443 203.0.113.77 40123 bad)
[ "$got" = closed ] && ok "a malformed PROXY header (version 3): closed" || fail "malformed PROXY header: $got"
# 8. and everyone else is still served, counted
out=$(ip netns exec "$C" "$stunkit" addr --json --tls --ca-file "$tmp/cert.pem" --timeout 5000 203.0.113.1:443 2>&1)
case $out in *'"mapped": "203.0.113.10:'*) ok "still serving after the bad headers" ;; *) fail "after the bad headers: $out" ;; esac
metrics=$(ip netns exec "$S" timeout 5 bash -c 'exec 3<>/dev/tcp/198.51.100.2/9478; printf "GET /metrics HTTP/1.0\r\n\r\n" >&3; cat <&3')
refused=$(echo "$metrics" | tr -d '\r' | sed -n 's/^stunkitd_connections_total{event="proxy_refused"} //p')
proxied=$(echo "$metrics" | tr -d '\r' | sed -n 's/^stunkitd_connections_total{event="proxied"} //p')
[ "${refused:-0}" -ge 2 ] && [ "${proxied:-0}" -ge 3 ] && ok "counted: $proxied proxied, $refused refused" ||
    fail "metrics: proxied '$proxied', proxy_refused '$refused'"
kill -0 $spid 2>/dev/null && ok "stunkitd still running" || fail "stunkitd died: $(cat "$tmp/server.err")"
finish
