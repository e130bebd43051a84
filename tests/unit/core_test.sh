#!/bin/sh
# core_test.sh LIBSTUNKIT_CORE_A CC INCLUDE_DIR [CFLAGS] - the core library holds the
# codec and the state machines and nothing that touches the platform: no
# socket, DNS, clock or OS randomness calls among its undefined symbols; and
# a program using every core header links against it (and libcrypto) alone.
set -u
lib=$1
cc=$2
inc=$3
cflags=${4:-}
fails=0
bad=$(nm -u "$lib" | awk '{print $2}' | grep -E '^(socket|connect|bind|send|sendto|sendmsg|recv|recvfrom|recvmsg|getaddrinfo|res_n?query|res_n?search|__res_.*|getrandom|clock_gettime|time|gettimeofday|rand|random|poll|epoll_.*|SSL_.*)$' | sort -u)
if [ -z "$bad" ]; then echo "ok   no platform calls in libstunkit-core"; else
    echo "FAIL libstunkit-core calls: $bad"; fails=1; fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat >"$tmp/use.c" <<'C'
#include <stdio.h>
#include "stunkit/core.h"
static void rnd(void *ctx, uint8_t *b, size_t n) { (void)ctx; for (size_t i = 0; i < n; i++) b[i] = (uint8_t)(i * 37u + 1u); }
int main(void)
{
    stunkit_nat_config cfg = STUNKIT_CONFIG_INIT(cfg);
    stunkit_addr_parse("192.0.2.1:3478", 0, &cfg.server);
    cfg.env.random = rnd;
    stunkit_nat *n = stunkit_nat_new(&cfg, 0);
    stunkit_nat_output out;
    int rv = n ? stunkit_nat_poll(n, 0, &out) : -2;
    stunkit_responder r = {0};
    stunkit_request_info info;
    uint8_t buf[64];
    stunkit_addr src;
    stunkit_addr_parse("192.0.2.2:1", 0, &src);
    size_t alen = 0;
    int x = stunkit_responder_input(&r, &src, out.data, out.len, buf, sizeof(buf), &alen, &info);
    printf("%d %d %zu\n", rv, x, alen);
    stunkit_nat_free(n);
    return rv == 1 && out.send && x == STUNKIT_INPUT_TAKEN && alen > 0 ? 0 : 1;
}
C
# shellcheck disable=SC2086
if "$cc" $cflags -I"$inc" "$tmp/use.c" "$lib" -lcrypto -lpthread -o "$tmp/use" 2>"$tmp/cc.err" && "$tmp/use" >/dev/null; then
    echo "ok   a program on core.h links against libstunkit-core and libcrypto alone, and runs"
else
    echo "FAIL core link: $(cat "$tmp/cc.err")"; fails=1
fi
exit $fails
