#!/bin/sh
# cli_decode_test.sh STUNKIT VECTORS_DIR - `stunkit decode` end to end.
set -u
stunkit=$1
dir=$2
pw=VOkJxbRl1RmTxUk/WvJxBt
fails=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# expect STATUS DESCRIPTION [grep pattern on stdout] -- command reads $tmp/in
run() { "$stunkit" decode "$@" <"$tmp/in" >"$tmp/out" 2>"$tmp/err"; echo $? >"$tmp/rc"; }
expect_rc() {
    got=$(cat "$tmp/rc")
    if [ "$got" != "$1" ]; then
        echo "FAIL $2: exit $got, wanted $1"; cat "$tmp/out" "$tmp/err"; fails=$((fails + 1))
    else
        echo "ok   $2"
    fi
}
expect_out() {
    if ! grep -qF -- "$1" "$tmp/out"; then
        echo "FAIL $2: output lacks: $1"; cat "$tmp/out"; fails=$((fails + 1))
    fi
}
expect_err() {
    if ! grep -qF -- "$1" "$tmp/err"; then
        echo "FAIL $2: stderr lacks: $1"; cat "$tmp/err"; fails=$((fails + 1))
    fi
}

cp "$dir/rfc5769-2.1-request.hex" "$tmp/in"
run --password "$pw"
expect_rc 0 "2.1 verifies with the short-term password"
expect_out 'USERNAME                  "evtj:h6vY"' "2.1 username"
expect_out "integrity       ok (short-term key)" "2.1 integrity"
expect_out "fingerprint     ok" "2.1 fingerprint"
run --json --password "$pw"
expect_rc 0 "2.1 json"
expect_out '"class": "request", "method": "binding", "method_code": 1, "transaction_id": "b7e7a701bc34d686fa87dfae", "magic_cookie": true' "2.1 json header"
expect_out '{"type": "PRIORITY", "type_code": 36, "length": 4, "value": 1845494271}' "2.1 json priority: a number"
expect_out '"integrity": "ok", "fingerprint": "ok"}' "2.1 json verdicts"
run --json --password wrong
expect_rc 1 "2.1 with a wrong password fails"
expect_out '"integrity": "bad", "fingerprint": "ok"}' "2.1 wrong password verdict"
run --json
expect_rc 0 "2.1 without a password is unchecked"
expect_out '"integrity": "unchecked"' "2.1 unchecked"

cp "$dir/rfc5769-2.2-ipv4-response.hex" "$tmp/in"
run --json --password "$pw"
expect_rc 0 "2.2 verifies"
expect_out '"class": "success"' "2.2 class"
expect_out '{"type": "XOR-MAPPED-ADDRESS", "type_code": 32, "length": 8, "value": "192.0.2.1:32853"}' "2.2 mapped address"
expect_out '"type": "SOFTWARE", "type_code": 32802, "length": 11, "value": "test vector"}' "2.2 software"

cp "$dir/rfc5769-2.3-ipv6-response.hex" "$tmp/in"
run --json --password "$pw"
expect_rc 0 "2.3 verifies"
expect_out '"value": "[2001:db8:1234:5678:11:2233:4455:6677]:32853"}' "2.3 mapped address"

cp "$dir/rfc5769-2.4-long-term.hex" "$tmp/in"
run --json --password TheMatrIX
expect_rc 0 "2.4 verifies with the long-term key"
expect_out '"integrity": "ok", "fingerprint": "absent"}' "2.4 verdicts"
expect_out '"type": "REALM", "type_code": 20, "length": 11, "value": "example.org"}' "2.4 realm"
run --password TheMatrix
expect_rc 1 "2.4 with a wrong password fails"
expect_out "integrity       bad (long-term key, MD5)" "2.4 human verdict"

# JSON: text with a control byte and a byte that is not UTF-8 stays valid JSON
# (\u escapes, U+FFFD and the raw hex), an error code is an object, the
# fingerprint a number
printf '01110028 2112a442 b7e7a701bc34d686fa87dfae 8022 0005 41014280 43000000 0009 0010 00000401 556e6175 74686f72 697a6564' >"$tmp/in"
printf ' 80280004 00000000\n' >>"$tmp/in"
run --json
expect_out '"value": "A\u0001B\ufffdC", "hex": "4101428043"' "odd bytes in SOFTWARE: JSON escapes, not C ones"
expect_out '"value": {"code": 401, "reason": "Unauthorized"}' "ERROR-CODE as an object"
if command -v python3 >/dev/null && /usr/bin/python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$tmp/out" 2>/dev/null; then
    echo "ok   decode --json output parses as JSON (odd bytes included)"
else
    echo "FAIL decode --json is not valid JSON: $(cat "$tmp/out")"; fails=$((fails + 1))
fi

# raw bytes instead of hex
grep -v '^#' "$dir/rfc5769-2.2-ipv4-response.hex" | tr -d ' \n' | perl -ne 'print pack("H*", $_)' >"$tmp/in"
run --password "$pw"
expect_rc 0 "2.2 as raw bytes"
expect_out "XOR-MAPPED-ADDRESS        192.0.2.1:32853" "raw input mapped address"

# a corrupted FINGERPRINT
grep -v '^#' "$dir/rfc5769-2.2-ipv4-response.hex" | sed 's/c0 7d 4c 96/c0 7d 4c 97/' >"$tmp/in"
run --json
expect_rc 1 "a bad fingerprint fails"
expect_out '"fingerprint": "bad"' "bad fingerprint verdict"

# malformed input: exit 2 with a one-line reason
grep -v '^#' "$dir/rfc5769-2.2-ipv4-response.hex" | head -c 90 >"$tmp/in"
run
expect_rc 2 "a truncated message"
expect_err "not a well-formed STUN message" "truncated reason"
printf 'hello, world\n' >"$tmp/in"
run
expect_rc 2 "text that is not STUN"
printf '00 01 00 00 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df a\n' >"$tmp/in"
run
expect_rc 2 "an odd number of hex digits"
expect_err "odd number of hex digits" "odd hex reason"
printf '' >"$tmp/in"
run
expect_rc 2 "empty input"
printf '00 01 00 00 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae\n' >"$tmp/in"
run --bogus
expect_rc 2 "an unknown option"
expect_err "unknown or incomplete option '--bogus'" "bad option reason"
run
expect_rc 0 "an empty Binding request"
expect_out "attributes      0 (none)" "no attributes"

echo "$fails failed"
[ "$fails" -eq 0 ]
