/* proxy.c - see proxy.h. The spec's MUSTs are quoted where they are kept. */
#include "proxy.h"

#include <string.h>

static const uint8_t sig[SKD_PROXY_SIG_LEN] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

skd_proxy_result skd_proxy_parse(const uint8_t *p, size_t n, size_t *len, stunkit_addr *src, stunkit_addr *dst)
{
    memset(src, 0, sizeof(*src));
    memset(dst, 0, sizeof(*dst));
    *len = 0;
    size_t cmp = n < SKD_PROXY_SIG_LEN ? n : SKD_PROXY_SIG_LEN;
    if (memcmp(p, sig, cmp) != 0)
        return SKD_PROXY_NONE;
    if (n < 16)
        return SKD_PROXY_MORE;
    /* "The next byte (the 13th one) is the protocol version and command.
     * [...] The highest four bits contains the version. [...] Receivers
     * must only accept this value [\x2]" and "The receiver must drop the
     * connection" on other commands than LOCAL and PROXY. */
    if ((p[12] >> 4) != 2 || (p[12] & 0x0F) > 1)
        return SKD_PROXY_BAD;
    size_t rest = (size_t)p[14] << 8 | p[15];
    if (16 + rest > SKD_PROXY_MAX)
        return SKD_PROXY_BAD;
    if (n < 16 + rest)
        return SKD_PROXY_MORE;
    int local = (p[12] & 0x0F) == 0, family = p[13] >> 4, proto = p[13] & 0x0F;
    /* LOCAL: "the receiver must accept this connection as valid and must
     * use the real connection endpoints and discard the protocol block
     * including the family"; UNSPEC likewise (a health check) */
    if (local || family == 0) {
        *len = 16 + rest;
        return SKD_PROXY_HEADER;
    }
    if (proto != 1)
        return SKD_PROXY_BAD; /* a stream listener: only STREAM makes sense */
    if (family == 1 && rest >= 12) {
        src->family = dst->family = STUNKIT_AF_INET;
        memcpy(src->ip, p + 16, 4);
        memcpy(dst->ip, p + 20, 4);
        src->port = (uint16_t)(p[24] << 8 | p[25]);
        dst->port = (uint16_t)(p[26] << 8 | p[27]);
        *len = 16 + rest;
        return SKD_PROXY_HEADER;
    }
    if (family == 2 && rest >= 36) {
        src->family = dst->family = STUNKIT_AF_INET6;
        memcpy(src->ip, p + 16, 16);
        memcpy(dst->ip, p + 32, 16);
        src->port = (uint16_t)(p[48] << 8 | p[49]);
        dst->port = (uint16_t)(p[50] << 8 | p[51]);
        *len = 16 + rest;
        return SKD_PROXY_HEADER;
    }
    /* UNIX addresses, or a block too short for its family: nothing this
     * server can use as a client's address */
    return SKD_PROXY_BAD;
}
