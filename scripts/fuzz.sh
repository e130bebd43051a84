#!/bin/sh
# fuzz.sh BUILD_DIR SECONDS - run every fuzzer in BUILD_DIR/fuzz for SECONDS
# each. New inputs go to a scratch directory; the seed corpus in the tree is
# only read. A crash stops the run with a non-zero status and leaves the
# reproducer in fuzz/.
set -eu
build=$1
secs=$2
root=$(cd "$(dirname "$0")/.." && pwd)
for f in "$build"/fuzz/fuzz_*; do
    [ -x "$f" ] || continue
    name=$(basename "$f")
    corpus="$root/fuzz/corpus/${name#fuzz_}"
    scratch=$(mktemp -d)
    echo "fuzz: $name for ${secs}s (seeds: $corpus)"
    if ! "$f" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$root/fuzz/" "$scratch" "$corpus" 2>"$scratch.log"; then
        tail -n 40 "$scratch.log"
        rm -rf "$scratch" "$scratch.log"
        echo "fuzz: $name FAILED" >&2
        exit 1
    fi
    grep -E "stat::number_of_executed_units|cov:" "$scratch.log" | tail -n 2
    rm -rf "$scratch" "$scratch.log"
done
