# testlib.sh - shared by the shell tests: verdict lines, a scratch directory,
# and the processes a test starts (stopped by PID on exit, never by name).
# Source it after `set -u`; it sets tmp, pids and fails.
tmp=$(mktemp -d)
pids=""
fails=0
ok() { echo "ok   $1"; }
# (each failure's first 600 bytes are said again at the end: CI shows a
# long log's head and tail only)
failed_list=""
fail() {
    echo "FAIL $1"
    fails=$((fails + 1))
    failed_list="$failed_list
FAIL ${1:0:600}"
}
testlib_cleanup() {
    for p in $pids; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    pids=""
    # the labs' namespaces (netns.sh), after the processes in them
    if declare -F ns_down >/dev/null; then ns_down; fi
    rm -rf "$tmp"
}
trap testlib_cleanup EXIT
# a signal (Ctrl-C, ctest's timeout, a closed pipe) exits through the EXIT
# trap too, so namespaces and processes never outlive the test
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 141' PIPE
trap 'exit 143' TERM
# up ADDR: wait until a STUN server answers there (any answer, even a 401)
up() {
    for _ in $(seq 50); do
        "$stunkit" addr --timeout 100 "$1" 2>&1 | grep -q "answered\|public" && return 0
        sleep 0.1
    done
    return 1
}
# conf_error DESCRIPTION FRAGMENT CONTENT: stunkitd refuses a config file
# with CONTENT: exit 2 and one line containing FRAGMENT
conf_error() { # description, expected stderr fragment, file content
    printf '%s\n' "$3" >"$tmp/bad.conf"
    "$stunkitd" --config "$tmp/bad.conf" >/dev/null 2>"$tmp/err"
    rc=$?
    if [ $rc -eq 2 ] && grep -qF -- "$2" "$tmp/err" && [ "$(wc -l <"$tmp/err")" -eq 1 ]; then ok "$1"; else
        fail "$1: exit $rc, stderr: $(cat "$tmp/err")"; fi
}
# finish: the summary line and the exit status
finish() {
    [ "$fails" -gt 0 ] && echo "the failures again:$failed_list"
    echo "$fails failed"
    [ "$fails" -eq 0 ]
}
