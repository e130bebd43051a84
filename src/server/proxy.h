/*
 * proxy.h - the PROXY protocol, version 2 (HAProxy's "PROXY protocol"
 * specification, section 2.2): a proxy in front of stunkitd (HAProxy,
 * nginx's stream module, a cloud load balancer) tells where the connection
 * really came from. Taken only from the proxies the operator names
 * (--proxy-from CIDR); from anyone else the header closes the connection,
 * as does a malformed one. Parsed from a buffer (no socket): tested and
 * fuzzed in process.
 *
 *   12 bytes  \r\n\r\n\0\r\nQUIT\n
 *    1 byte   version (high nibble, 2) | command (low: 0 LOCAL, 1 PROXY)
 *    1 byte   family (high: 0 UNSPEC, 1 INET, 2 INET6, 3 UNIX) | protocol (low: 1 STREAM, 2 DGRAM)
 *    2 bytes  length of what follows, network order
 *   INET:  source address (4), destination address (4), source port (2), destination port (2)
 *   INET6: source address (16), destination address (16), source port (2), destination port (2)
 *   then TLVs (not used here)
 */
#ifndef STUNKITD_PROXY_H
#define STUNKITD_PROXY_H

#include <stddef.h>
#include <stdint.h>

#include "stunkit/addr.h"

#define SKD_PROXY_SIG_LEN 12
#define SKD_PROXY_MAX 1024 /* the longest header taken: the addresses and some TLVs */

typedef enum {
    SKD_PROXY_MORE = 0,      /* a prefix of a header: wait for more */
    SKD_PROXY_NONE = 1,      /* not a PROXY v2 header: the connection starts with its own bytes */
    SKD_PROXY_HEADER = 2,    /* a header of *len bytes; *src set (family 0: LOCAL or UNSPEC, keep the connection's) */
    SKD_PROXY_BAD = -1       /* the signature, then something the spec does not allow, or too long */
} skd_proxy_result;

skd_proxy_result skd_proxy_parse(const uint8_t *p, size_t n, size_t *len, stunkit_addr *src, stunkit_addr *dst);

#endif
