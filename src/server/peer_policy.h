/*
 * peer_policy.h - which peer addresses the TURN relay may send to.
 *
 * TURN servers are used as proxies into private networks (coturn
 * CVE-2020-26262: 0.0.0.0 and [::1] slipped past its loopback block;
 * CVE-2026-27624: ::ffff:127.0.0.1 slipped past denied-peer-ip). So every
 * address is first canonicalised (IPv4-mapped ::ffff:0:0/96, IPv4-translated
 * ::ffff:0:0:0/96 (RFC 2765), IPv4-compatible, NAT64 64:ff9b::/96 and 6to4
 * 2002::/16 forms become the IPv4 address they carry)
 * and only then compared with the lists: an explicit --allowed-peer wins,
 * then --denied-peer and the built-in refused ranges (private, loopback,
 * link-local, carrier NAT, benchmarking, multicast, reserved, broadcast and
 * their IPv6 counterparts, ::/96, discard-only 100::/64, site-local
 * fec0::/10).
 */
#ifndef STUNKITD_PEER_POLICY_H
#define STUNKITD_PEER_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include "stunkit/addr.h"

typedef struct skd_cidr {
    stunkit_addr net; /* canonical: IPv4 ranges are IPv4 */
    int bits;
} skd_cidr;

#define SKD_POLICY_MAX 64

typedef struct skd_peer_policy {
    skd_cidr allowed[SKD_POLICY_MAX];
    int n_allowed;
    skd_cidr denied[SKD_POLICY_MAX];
    int n_denied;
} skd_peer_policy;

/* Parses "ADDR/BITS" or "ADDR" (a host). 0, or -1 with why set. */
int skd_cidr_parse(const char *text, skd_cidr *out, const char **why);
/* Whether a (in its canonical form) is inside c. */
int skd_cidr_contains(const skd_cidr *c, const stunkit_addr *a);

/* The address an IPv6 form stands for: ::ffff:a.b.c.d, ::ffff:0:a.b.c.d,
 * ::a.b.c.d, 64:ff9b::a.b.c.d and 2002:AABB:CCDD:: become IPv4. */
void skd_peer_canonical(const stunkit_addr *in, stunkit_addr *out);

/* 1 when the relay may send to peer, 0 when refused (403). */
int skd_peer_allowed(const skd_peer_policy *p, const stunkit_addr *peer);

/* The built-in refused range containing a (canonical) address, as text
 * ("10.0.0.0/8"), or NULL. */
const char *skd_peer_builtin_refusal(const stunkit_addr *canonical);

#endif
