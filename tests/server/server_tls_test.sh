#!/bin/bash
# server_tls_test.sh STUNKITD STUNKIT - STUN over TLS and DTLS: a self-signed
# certificate made here, `stunkit addr --tls/--dtls` against it, certificate
# checking on by default, reload on SIGHUP, and a broken key refused at start.
set -u
# ports: a base per build tree (CMake sets it), so two checkouts can test at once
base=${STUNKIT_TEST_PORT_BASE:-21000}
stunkitd=$1
stunkit=$2
command -v openssl >/dev/null 2>&1 || { echo "skip: the openssl program is not installed"; exit 77; }
tmp=$(mktemp -d)
pid=""
fails=0
trap '[ -n "$pid" ] && kill $pid 2>/dev/null && wait $pid 2>/dev/null; rm -rf "$tmp"' EXIT
ok() { echo "ok   $1"; }
fail() { echo "FAIL $1"; fails=$((fails + 1)); }
mkcert() { # CN
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$1" \
        -addext "subjectAltName=DNS:$1" -days 1 -keyout "$tmp/key.pem" -out "$tmp/cert.pem" 2>/dev/null
}
subject() {
    openssl s_client -connect 127.0.0.1:$((base + 901)) -servername localhost </dev/null 2>/dev/null |
        sed -n 's/^subject=.*CN *= *\([^,]*\).*/\1/p'
}
mkcert localhost

"$stunkitd" --listen 127.0.0.1:$((base + 900)) --tls-cert "$tmp/cert.pem" --tls-key "$tmp/key.pem" --tls-port $((base + 901)) \
    --log-level info 2>"$tmp/server.err" &
pid=$!
for _ in $(seq 50); do "$stunkit" addr --timeout 100 127.0.0.1:$((base + 900)) >/dev/null 2>&1 && break; sleep 0.1; done

out=$("$stunkit" addr --tls --insecure --json 127.0.0.1:$((base + 901)))
case $out in *'"transport": "tls"'*'"mapped": "127.0.0.1:'*) ok "Binding over TLS: $out" ;; *) fail "TLS binding: $out" ;; esac
"$stunkit" addr --tls --timeout 2000 stuns:localhost:$((base + 901)) >/dev/null 2>"$tmp/verify.err"
[ $? -eq 1 ] && ok "an untrusted certificate is refused without --insecure" || fail "no certificate check"
# the refusal is one line that says why (OpenSSL's verify reason), no library jargon
if [ "$(wc -l <"$tmp/verify.err")" -eq 1 ] && grep -q "certificate.*self-signed\|self.signed" "$tmp/verify.err" &&
   ! grep -q "cryptographic library failure\|system call failed" "$tmp/verify.err"; then
    ok "the refusal says why: $(cat "$tmp/verify.err")"
else
    fail "refusal text: $(cat "$tmp/verify.err")"
fi
# --ca-file trusts the certificate: the name is checked and passes
"$stunkit" addr --tls --ca-file "$tmp/cert.pem" --timeout 2000 stuns:localhost:$((base + 901)) >"$tmp/ca.out" 2>&1 &&
    ok "--ca-file: the certificate is trusted and its name checked" || fail "--ca-file: $(cat "$tmp/ca.out")"
# ... and a name the certificate does not carry is refused, saying so
"$stunkit" addr --tls --ca-file "$tmp/cert.pem" --timeout 2000 127.0.0.1:$((base + 901)) >/dev/null 2>"$tmp/name.err"
[ $? -eq 1 ] && grep -q "mismatch" "$tmp/name.err" && ok "--ca-file, wrong name: $(cat "$tmp/name.err")" ||
    fail "wrong name: $(cat "$tmp/name.err")"
"$stunkit" addr --tls --ca-file "$tmp/nonexistent.pem" --timeout 2000 stuns:localhost:$((base + 901)) >/dev/null 2>"$tmp/noca.err"
[ $? -eq 1 ] && grep -q "cannot load trusted certificates from" "$tmp/noca.err" && ok "--ca-file missing: $(cat "$tmp/noca.err")" ||
    fail "missing CA file: $(cat "$tmp/noca.err")"
"$stunkit" addr --insecure --ca-file "$tmp/cert.pem" --tls 127.0.0.1 >/dev/null 2>&1
[ $? -eq 2 ] && ok "--insecure with --ca-file is refused (exit 2)" || fail "--insecure --ca-file accepted"
"$stunkit" addr --tcp --json 127.0.0.1:$((base + 900)) | grep -q '"transport": "tcp"' && ok "plain TCP beside TLS" || fail "plain TCP"
out=$("$stunkit" addr --dtls --insecure --json 127.0.0.1:$((base + 901)))
case $out in *'"transport": "dtls"'*'"mapped": "127.0.0.1:'*) ok "Binding over DTLS: $out" ;; *) fail "DTLS binding: $out" ;; esac
# DTLS starts with the stateless cookie exchange (HelloVerifyRequest)
timeout 5 openssl s_client -dtls -trace -connect 127.0.0.1:$((base + 901)) </dev/null >"$tmp/dtls.trace" 2>&1
grep -q "HelloVerifyRequest" "$tmp/dtls.trace" && grep -q "cookie (len=16)" "$tmp/dtls.trace" &&
    ok "DTLS handshakes begin with a cookie exchange" || fail "no HelloVerifyRequest in the DTLS handshake"
"$stunkit" addr --dtls --timeout 2000 stuns:localhost:$((base + 901)) >/dev/null 2>&1
[ $? -eq 1 ] && ok "DTLS: an untrusted certificate is refused without --insecure" || fail "DTLS: no certificate check"
grep -q "127.0.0.1:$((base + 901))/tls+dtls" "$tmp/server.err" && ok "the TLS and DTLS listeners are logged" || fail "no TLS listener in the log"

# TLS 1.1 is refused (RFC 8489 6.2.3 wants 1.2 or later)
if openssl s_client -tls1_1 -connect 127.0.0.1:$((base + 901)) </dev/null >/dev/null 2>&1; then
    fail "TLS 1.1 accepted"
else
    ok "TLS 1.1 refused"
fi

[ "$(subject)" = localhost ] && ok "serves the first certificate" || fail "subject is '$(subject)'"
mkcert reloaded.example
kill -HUP $pid
for _ in $(seq 50); do grep -q "TLS certificate .* reloaded" "$tmp/server.err" && break; sleep 0.1; done
[ "$(subject)" = reloaded.example ] && ok "SIGHUP loads the new certificate" || fail "after SIGHUP subject is '$(subject)'"
"$stunkit" addr --tls --insecure 127.0.0.1:$((base + 901)) >/dev/null && ok "still serving after the reload" || fail "not serving after reload"
"$stunkit" addr --dtls --insecure 127.0.0.1:$((base + 901)) >/dev/null && ok "DTLS still serving after the reload" || fail "DTLS not serving after reload"
echo "garbage" >"$tmp/key.pem"
kill -HUP $pid
for _ in $(seq 50); do grep -q "cannot load the TLS" "$tmp/server.err" && break; sleep 0.1; done
grep -q "cannot load the TLS" "$tmp/server.err" && ok "a broken reload is logged" || fail "broken reload not logged"
"$stunkit" addr --tls --insecure 127.0.0.1:$((base + 901)) >/dev/null && ok "a broken reload keeps the old certificate" || fail "broken reload broke serving"
kill -TERM $pid
wait $pid
pid=""

"$stunkitd" --listen 127.0.0.1:$((base + 902)) --tls-cert "$tmp/cert.pem" --tls-key "$tmp/key.pem" 2>"$tmp/bad.err"
rc=$?
[ $rc -eq 1 ] && grep -q "cannot load the TLS key" "$tmp/bad.err" && ok "a bad key stops the start (exit 1)" || fail "bad key: exit $rc"
"$stunkitd" --tls-cert "$tmp/cert.pem" 2>"$tmp/bad.err"
[ $? -eq 2 ] && grep -q "needs both --tls-cert and --tls-key" "$tmp/bad.err" && ok "--tls-cert alone is a usage error" || fail "cert alone"
echo "$fails failed"
[ $fails -eq 0 ]
