#!/bin/sh
# bench.sh BUILD_DIR - the benchmarks: codec micro-benchmarks, then the server
# comparison (scripts/bench-servers.sh) when it is present.
set -eu
build=$1
"$build/bin/bench_codec"
if [ -x "$(dirname "$0")/bench-servers.sh" ]; then
    "$(dirname "$0")/bench-servers.sh" "$build"
fi
if [ -x "$(dirname "$0")/bench-turn.sh" ]; then
    "$(dirname "$0")/bench-turn.sh" "$build"
fi
if [ -x "$(dirname "$0")/bench-xdp.sh" ]; then
    "$(dirname "$0")/bench-xdp.sh" "$build"
fi
if [ -x "$(dirname "$0")/bench-peer.sh" ]; then
    "$(dirname "$0")/bench-peer.sh" "$build"
fi
if [ -x "$(dirname "$0")/bench-xdp-turn.sh" ]; then
    "$(dirname "$0")/bench-xdp-turn.sh" "$build"
fi
