#!/bin/sh
# install_test.sh BUILD_DIR SOURCE_DIR STUNKITD - `make install` into a
# DESTDIR, then build the example against the installed pkg-config file and
# run it against a real stunkitd on loopback.
set -eu
# ports: a base per build tree (CMake sets it), so two checkouts can test at once
base=${STUNKIT_TEST_PORT_BASE:-21000}
build=$1
src=$2
stunkitd=$3
dest=$(mktemp -d)
pid=""
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; rm -rf "$dest"' EXIT
DESTDIR="$dest" cmake --install "$build" --prefix /opt/stunkit >/dev/null
for f in bin/stunkit sbin/stunkitd include/stunkit/stunkit.h lib/pkgconfig/stunkit.pc lib/libstunkit.a \
    lib/cmake/stunkit/stunkitConfig.cmake share/man/man1/stunkit.1 share/man/man8/stunkitd.8 \
    share/bash-completion/completions/stunkit; do
    [ -e "$dest/opt/stunkit/$f" ] || { echo "FAIL not installed: $f"; exit 1; }
done
echo "ok   files installed under DESTDIR/opt/stunkit"
flags=$(PKG_CONFIG_PATH="$dest/opt/stunkit/lib/pkgconfig" pkg-config --define-prefix --cflags --libs stunkit)
cc "$src/examples/public_address.c" $flags -o "$dest/public_address"
echo "ok   the example builds against the installed pkg-config file"
"$stunkitd" --listen 127.0.0.1:$((base + 840)) --log-level warn 2>/dev/null &
pid=$!
# readiness: the example itself retries until the server answers (at most 5 s)
for _ in $(seq 50); do LD_LIBRARY_PATH="$dest/opt/stunkit/lib" "$dest/public_address" 127.0.0.1:$((base + 840)) >/dev/null 2>&1 && break; sleep 0.1; done
out=$(LD_LIBRARY_PATH="$dest/opt/stunkit/lib" "$dest/public_address" 127.0.0.1:$((base + 840)))
case $out in
"public address: 127.0.0.1:"*) echo "ok   the installed library answers: $out" ;;
*) echo "FAIL example printed: $out"; exit 1 ;;
esac
