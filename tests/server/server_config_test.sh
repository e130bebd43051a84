#!/bin/bash
# server_config_test.sh STUNKITD STUNKIT SEND_PROBE - stunkitd's flags and
# config file are strict: every bad number or value is one line naming the
# flag (or FILE:LINE) and exit 2, before anything binds; the config lexer
# keeps quoted values exactly and strips comments; limits are enforced.
set -u
stunkitd=$1
stunkit=$2
probe=$3
. "$(dirname "$0")/../lib/testlib.sh"
base=${STUNKIT_TEST_PORT_BASE:-21000}
port=$((base + 330))

# bad_flag DESCRIPTION FRAGMENT ARGS... : exit 2, one line, naming the flag
bad_flag() {
    local what=$1 frag=$2
    shift 2
    "$stunkitd" --listen "127.0.0.1:$port" "$@" >/dev/null 2>"$tmp/err"
    local rc=$?
    if [ $rc -eq 2 ] && grep -qF -- "$frag" "$tmp/err" && [ "$(wc -l <"$tmp/err")" -eq 1 ]; then ok "$what"; else
        fail "$what: exit $rc, stderr: $(cat "$tmp/err")"; fi
}
bad_flag "--threads nan" "--threads 'nan': expected a whole number from 1 to 256" --threads nan
bad_flag "--threads 2.5 (fractions are not integers)" "--threads '2.5'" --threads 2.5
bad_flag "--threads 0" "--threads '0'" --threads 0
bad_flag "--rate-limit nan" "--rate-limit 'nan': expected a number" --rate-limit nan
bad_flag "--rate-limit inf" "--rate-limit 'inf'" --rate-limit inf
bad_flag "--tls-port nan" "--tls-port 'nan'" --tls-port nan
bad_flag "--tls-port 70000" "--tls-port '70000'" --tls-port 70000
bad_flag "--tcp-max-conns 1e3" "--tcp-max-conns '1e3'" --tcp-max-conns 1e3
bad_flag "--software over 64 bytes" "--software" --software "$(printf 'x%.0s' $(seq 65))"
bad_flag "--user nosuchuser, before binding" "--user 'nosuchuser-stunkit': no such user" --user nosuchuser-stunkit
bad_flag "--log-level loud" "--log-level 'loud'" --log-level loud
bad_flag "--rendezvous without credentials" "--rendezvous needs long-term credentials" --rendezvous
bad_flag "--rendezvous with short-term credentials" "--rendezvous needs long-term credentials" --rendezvous \
    --credential a:b --short-term
bad_flag "--rendezvous-max-description 100000" "--rendezvous-max-description '100000'" \
    --rendezvous-max-description 100000
bad_flag "--rendezvous-idle 0" "--rendezvous-idle '0'" --rendezvous-idle 0

# --user is checked before binding: with the port taken, the answer is
# still the user error (exit 2), not a bind failure (exit 1)
"$stunkitd" --listen "127.0.0.1:$port" --no-tcp --log-level warn 2>/dev/null &
pid=$!
pids="$pids $pid"
up "127.0.0.1:$port" || fail "helper server did not start"
"$stunkitd" --listen "127.0.0.1:$port" --user nosuchuser-stunkit 2>"$tmp/err" >/dev/null
rc=$?
[ $rc -eq 2 ] && grep -q "no such user" "$tmp/err" && ok "--user checked before binding (exit 2)" ||
    fail "--user with the port taken: exit $rc: $(cat "$tmp/err")"
kill $pid; wait $pid 2>/dev/null; pids=""

conf_error "unterminated quote names its line" "bad.conf:2: unterminated quoted value" "listen = 127.0.0.1:$port
realm = \"unterminated"
conf_error "text after a closing quote" "bad.conf:1: text after the closing quote" 'software = "a" b'
conf_error "threads = nan in a file" "bad.conf:1: threads 'nan'" "threads = nan"
conf_error "a key without a value's equals" "bad.conf:1: expected 'key = value'" "listen"

# 300 credentials and more than 64 values of any kind load
{
    echo "listen = 127.0.0.1:$port"
    echo "no-tcp = yes"
    echo "log-level = warn"
    echo 'software = "x y"  # a comment after a quoted value'
    for i in $(seq 256); do echo "credential = user$i:password$i"; done
} >"$tmp/many.conf"
"$stunkitd" --config "$tmp/many.conf" 2>"$tmp/many.err" &
pid=$!
pids="$pids $pid"
if up "127.0.0.1:$port"; then ok "a config file with 260 values (256 credentials) loads"; else
    fail "many values: $(cat "$tmp/many.err")"; fi
kill $pid; wait $pid 2>/dev/null; pids=""
echo "credential = user257:password257" >>"$tmp/many.conf"
"$stunkitd" --config "$tmp/many.conf" >/dev/null 2>"$tmp/err"
[ $? -eq 2 ] && grep -q "many.conf:261: credential" "$tmp/err" && ok "the 257th credential is refused with its line" ||
    fail "257 credentials: $(cat "$tmp/err")"

# software = "x"  # comment  -> SOFTWARE is exactly x
printf 'listen = 127.0.0.1:%s\nno-tcp = yes\nsoftware = "stunkit \\"edge\\""   # the comment\n' "$port" >"$tmp/sw.conf"
"$stunkitd" --config "$tmp/sw.conf" 2>"$tmp/sw.err" &
pid=$!
pids="$pids $pid"
up "127.0.0.1:$port" || fail "software config did not start: $(cat "$tmp/sw.err")"
"$probe" --answer 127.0.0.1 "$port" >"$tmp/answer.bin"
"$stunkit" decode --json <"$tmp/answer.bin" >"$tmp/answer.json"
grep -qF '"stunkit \"edge\""' "$tmp/answer.json" && ! grep -q "comment" "$tmp/answer.json" &&
    ok "a quoted value is kept exactly, the comment dropped" || fail "SOFTWARE: $(cat "$tmp/answer.json")"
kill $pid; wait $pid 2>/dev/null; pids=""
finish
