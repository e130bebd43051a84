/*
 * source.h - what a "source" is for the per-source limits (the rate
 * limiter's budgets, TCP/TLS connections and DTLS sessions per source): an
 * IPv4 address, or the /64 of an IPv6 address. A /64 is one link, usually
 * one subscriber (RFC 7934 hands a host a whole /64), and a host may send
 * from any of its 2^64 addresses: counted per address, an IPv6 client would
 * have no limit at all.
 */
#ifndef STUNKITD_SOURCE_H
#define STUNKITD_SOURCE_H

#include <stddef.h>
#include <string.h>

#include "stunkit/addr.h"

/* The bytes of the address that name its source: 4, or 8 (the /64). */
static inline size_t skd_source_bytes(const stunkit_addr *a)
{
    return a->family == STUNKIT_AF_INET ? 4u : 8u;
}

static inline int skd_same_source(const stunkit_addr *a, const stunkit_addr *b)
{
    return a->family == b->family && memcmp(a->ip, b->ip, skd_source_bytes(a)) == 0;
}

#endif
