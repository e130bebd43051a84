#!/bin/sh
# demo.sh BUILD_DIR - show the main job.
set -eu
build=$1
bin="$build/bin"
root=$(cd "$(dirname "$0")/.." && pwd)
say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }

say "stunkit decode --password VOkJxbRl1RmTxUk/WvJxBt < tests/vectors/rfc5769-2.1-request.hex"
"$bin/stunkit" decode --password VOkJxbRl1RmTxUk/WvJxBt <"$root/tests/vectors/rfc5769-2.1-request.hex"

say "stunkit decode --json --password VOkJxbRl1RmTxUk/WvJxBt < tests/vectors/rfc5769-2.3-ipv6-response.hex"
"$bin/stunkit" decode --json --password VOkJxbRl1RmTxUk/WvJxBt <"$root/tests/vectors/rfc5769-2.3-ipv6-response.hex"

say "stunkit decode --password TheMatrIX < tests/vectors/rfc5769-2.4-long-term.hex"
"$bin/stunkit" decode --password TheMatrIX <"$root/tests/vectors/rfc5769-2.4-long-term.hex"

if [ -x "$root/scripts/demo-server.sh" ]; then
    "$root/scripts/demo-server.sh" "$build"
fi
