/*
 * fuzz_proxy.c - libFuzzer target for the PROXY protocol v2 parser
 * (proxy.h): whatever the bytes, a verdict; a header's length within what
 * was given and the cap; an address only for INET and INET6.
 */
#include <stdlib.h>

#include "proxy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t len;
    stunkit_addr src, dst;
    skd_proxy_result r = skd_proxy_parse(data, size, &len, &src, &dst);
    if (r == SKD_PROXY_HEADER && (len > size || len > SKD_PROXY_MAX || len < 16))
        abort();
    if (r == SKD_PROXY_HEADER && src.family && src.family != STUNKIT_AF_INET && src.family != STUNKIT_AF_INET6)
        abort();
    if (r != SKD_PROXY_HEADER && (src.family || len))
        abort();
    return 0;
}
