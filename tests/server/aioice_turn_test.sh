#!/bin/bash
# aioice_turn_test.sh STUNKITD - aioice's TURN client (Debian's
# python3-aioice, run with Debian's own /usr/bin/python3, which the pyenv
# python3 first on PATH is not) against stunkitd over UDP and TCP.
set -u
stunkitd=$1
. "$(dirname "$0")/../lib/testlib.sh"
base=${STUNKIT_TEST_PORT_BASE:-21000}
[ -x /usr/bin/python3 ] || { echo "skip: no /usr/bin/python3"; exit 77; }
/usr/bin/python3 -c "import aioice" 2>/dev/null || { echo "skip: python3-aioice not installed"; exit 77; }
port=$((base + 380))
"$stunkitd" --listen 127.0.0.1:$port --turn --credential alice:turn-secret --allowed-peer 127.0.0.1/32 \
    --relay-ports $((base + 550))-$((base + 599)) --threads 1 --log-level warn 2>"$tmp/server.err" &
pids="$pids $!"
for _ in $(seq 50); do ss -Hltn "sport = :$port" 2>/dev/null | grep -q . && break; sleep 0.1; done
/usr/bin/python3 "$(dirname "$0")/../interop/aioice_turn_test.py" 127.0.0.1 $port
