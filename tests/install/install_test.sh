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
    lib/cmake/stunkit/stunkitConfig.cmake share/man/man1/stunkit.1 share/man/man8/stunkitd.8 share/man/man3/stunkit_peer.3 share/man/man3/stunkit_mapping.3 \
    share/bash-completion/completions/stunkit; do
    [ -e "$dest/opt/stunkit/$f" ] || { echo "FAIL not installed: $f"; exit 1; }
done
echo "ok   files installed under DESTDIR/opt/stunkit"
# the unit names this prefix, passes the installed default config as a
# credential, reloads with SIGHUP
unit="$dest/opt/stunkit/lib/systemd/system/stunkitd.service"
conf="$dest/opt/stunkit/etc/stunkitd.conf"
[ -f "$unit" ] && [ -f "$conf" ] || { echo "FAIL no unit or config installed"; exit 1; }
# (the config is copied for the transient user before start and on every
# reload, so a reload reads the file as edited; Type=notify)
grep -q '^ExecStart=/opt/stunkit/sbin/stunkitd --config /run/stunkitd/stunkitd.conf$' "$unit" &&
    grep -q '^ExecStartPre=+/usr/bin/install -m 0400 -o stunkitd /opt/stunkit/etc/stunkitd.conf /run/stunkitd/stunkitd.conf$' "$unit" &&
    grep -q '^ExecReload=+/usr/bin/install -m 0400 -o stunkitd /opt/stunkit/etc/stunkitd.conf /run/stunkitd/stunkitd.conf$' "$unit" &&
    grep -q '^ExecReload=/bin/kill -HUP $MAINPID$' "$unit" && grep -q '^Type=notify$' "$unit" &&
    ! grep -q '^LoadCredential' "$unit" && ! grep -q /usr/local "$unit" ||
    { echo "FAIL the unit does not name the prefix's paths:"; grep "^Exec\|^Load\|^Type" "$unit"; exit 1; }
[ "$(stat -c %a "$conf")" = 600 ] || { echo "FAIL the config is not 0600"; exit 1; }
[ -f "$dest/opt/stunkit/share/doc/stunkit/systemd/xdp.conf" ] || { echo "FAIL the XDP drop-in is not installed"; exit 1; }
echo "ok   the unit names /opt/stunkit's stunkitd and config (copied on start and reload), Type=notify, ExecReload sends SIGHUP; config 0600; XDP drop-in"
if command -v systemd-analyze >/dev/null 2>&1; then
    # verify the unit as installed (paths moved into DESTDIR so the files it
    # names exist); any warning fails
    sed "s|/opt/stunkit/|$dest/opt/stunkit/|g" "$unit" >"$dest/stunkitd.service"
    if out=$(systemd-analyze verify --man=no "$dest/stunkitd.service" 2>&1) && [ -z "$out" ]; then
        echo "ok   systemd-analyze verify: the installed unit is clean"
    else
        echo "FAIL systemd-analyze verify: $out"; exit 1
    fi
    # the unit with the XDP drop-in's settings appended (as systemd merges it)
    sed -n '/^\[Service\]/,$p' "$dest/opt/stunkit/share/doc/stunkit/systemd/xdp.conf" | sed 1d >"$dest/xdp.lines"
    awk -v f="$dest/xdp.lines" '/^\[Install\]/{while ((getline l < f) > 0) print l} {print}' \
        "$dest/stunkitd.service" >"$dest/stunkitd-xdp.service"
    if out=$(systemd-analyze verify --man=no "$dest/stunkitd-xdp.service" 2>&1) && [ -z "$out" ]; then
        echo "ok   systemd-analyze verify: the unit with the XDP drop-in is clean"
    else
        echo "FAIL systemd-analyze verify (XDP drop-in): $out"; exit 1
    fi
    # what the filters leave: setuid-family calls stay refused (the service
    # runs as its transient user), bpf() only with the drop-in
    for call in bpf setuid; do
        systemd-analyze syscall-filter @privileged 2>/dev/null | grep -qw "$call" ||
            { echo "FAIL systemd's @privileged no longer holds $call: the unit's filter must be looked at again"; exit 1; }
    done
    echo "ok   @privileged (refused by the unit) holds bpf and setuid; the XDP drop-in allows bpf again"
else
    echo "skip systemd-analyze verify: systemd is not installed here"
fi
# the default config file is one stunkitd accepts (here on a test port)
"$stunkitd" --config "$conf" --listen 127.0.0.1:$((base + 841)) --log-level warn 2>"$dest/conf.err" &
pid=$!
for _ in $(seq 50); do "$dest/opt/stunkit/bin/stunkit" addr --timeout 100 127.0.0.1:$((base + 841)) >/dev/null 2>&1 && break; sleep 0.1; done
"$dest/opt/stunkit/bin/stunkit" addr --timeout 1000 127.0.0.1:$((base + 841)) >/dev/null 2>&1 ||
    { echo "FAIL the default config does not start a server: $(cat "$dest/conf.err")"; exit 1; }
kill $pid; wait $pid 2>/dev/null; pid=""
echo "ok   the installed default config starts stunkitd"
# logging: under journald (JOURNAL_STREAM names stderr) a priority prefix and
# no timestamp; on a terminal or file a timestamp; counters at exit only at info
: >"$dest/j.err"
JOURNAL_STREAM="$(stat -c %d:%i "$dest/j.err")" "$stunkitd" --listen 127.0.0.1:$((base + 842)) --log-level debug 2>>"$dest/j.err" &
pid=$!
for _ in $(seq 50); do grep -q "running" "$dest/j.err" && break; sleep 0.1; done
kill $pid; wait $pid 2>/dev/null; pid=""
if grep -q '^<7>settings: ' "$dest/j.err" && grep -q '^<6>listening on 127.0.0.1:' "$dest/j.err" &&
    ! grep -q '^20[0-9][0-9]-' "$dest/j.err" && grep -q '^<6>counters (exit)' "$dest/j.err"; then
    echo "ok   journald: <7> debug settings, <6> info, no timestamps, counters at exit"
else
    echo "FAIL journald format:"; head -5 "$dest/j.err"; exit 1
fi
"$stunkitd" --listen 127.0.0.1:$((base + 843)) --log-level warn 2>"$dest/w.err" &
pid=$!
sleep 0.3
kill $pid; wait $pid 2>/dev/null; pid=""
# an address this host does not have: the bind fails (nothing is sent)
"$stunkitd" --listen 192.0.2.1:$((base + 843)) 2>"$dest/e.err" || true
if [ ! -s "$dest/w.err" ] && grep -q '^20[0-9-]*T[0-9:.]*Z stunkitd error: ' "$dest/e.err"; then
    echo "ok   --log-level warn prints nothing on a clean run (no counters); errors are timestamped on a file"
else
    echo "FAIL warn level or error format: $(cat "$dest/w.err" "$dest/e.err")"; exit 1
fi
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
