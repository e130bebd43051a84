/*
 * peer_policy.c - see peer_policy.h. RFC 8656 21.2.3 ("Circumventing the
 * Firewall"): a TURN server "MUST" not be an open door into the networks
 * behind it; operators name what is reachable.
 */
#include "peer_policy.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Refused unless --allowed-peer opens them. */
static const char *const builtin[] = {
    "0.0.0.0/8",       /* "this network" (0.0.0.0 reaches the host itself) */
    "10.0.0.0/8",      /* RFC 1918 */
    "100.64.0.0/10",   /* carrier-grade NAT, RFC 6598 */
    "127.0.0.0/8",     /* loopback */
    "169.254.0.0/16",  /* link-local */
    "172.16.0.0/12",   /* RFC 1918 */
    "192.0.0.0/24",    /* IETF protocol assignments */
    "192.168.0.0/16",  /* RFC 1918 */
    "198.18.0.0/15",   /* benchmarking */
    "224.0.0.0/4",     /* multicast */
    "240.0.0.0/4",     /* reserved, and 255.255.255.255 broadcast */
    "::/96",           /* unspecified, loopback and IPv4-compatible (RFC 4291, deprecated) ::0.0.0.x */
    "100::/64",        /* discard-only (RFC 6666) */
    "fec0::/10",       /* site-local (RFC 3879, deprecated: still routed inside some sites) */
    "fc00::/7",        /* unique local */
    "fe80::/10",       /* link-local */
    "ff00::/8",        /* multicast */
    "64:ff9b:1::/48",  /* local-use NAT64 (RFC 8215): embeds anything */
    "2001::/32",       /* Teredo: the IPv4 inside is obfuscated, refuse the lot */
};
#define N_BUILTIN (sizeof(builtin) / sizeof(builtin[0]))

int skd_cidr_parse(const char *text, skd_cidr *out, const char **why)
{
    char buf[80];
    size_t n = strlen(text);
    if (n >= sizeof(buf)) {
        *why = "too long";
        return -1;
    }
    memcpy(buf, text, n + 1);
    char *slash = strchr(buf, '/');
    int bits = -1;
    if (slash) {
        *slash = '\0';
        char *end;
        long b = strtol(slash + 1, &end, 10);
        if (!slash[1] || *end || b < 0 || b > 128) {
            *why = "expected ADDR/BITS";
            return -1;
        }
        bits = (int)b;
    }
    stunkit_addr a;
    if (stunkit_addr_parse(buf, 0, &a) != 0 || a.port != 0) {
        *why = "not a numeric address (ADDR or ADDR/BITS)";
        return -1;
    }
    int max = a.family == STUNKIT_AF_INET ? 32 : 128;
    if (bits < 0)
        bits = max;
    if (bits > max) {
        *why = "more prefix bits than the address has";
        return -1;
    }
    /* an IPv4-mapped range written in IPv6 is the IPv4 range */
    stunkit_addr c;
    skd_peer_canonical(&a, &c);
    if (c.family != a.family) {
        if (bits < 96) {
            *why = "an IPv4-mapped range must keep its first 96 bits";
            return -1;
        }
        bits -= 96;
    }
    memset(out, 0, sizeof(*out));
    out->net = c;
    out->bits = bits;
    return 0;
}

static void set_v4(stunkit_addr *out, const uint8_t *v4)
{
    memset(out, 0, sizeof(*out));
    out->family = STUNKIT_AF_INET;
    memcpy(out->ip, v4, 4);
}

void skd_peer_canonical(const stunkit_addr *in, stunkit_addr *out)
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static const uint8_t compat[12] = {0};
    static const uint8_t nat64[12] = {0x00, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
    static const uint8_t translated[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0}; /* ::ffff:0:a.b.c.d, RFC 2765 */
    *out = *in;
    out->port = in->port;
    if (in->family != STUNKIT_AF_INET6)
        return;
    uint16_t port = in->port;
    if (!memcmp(in->ip, mapped, 12) || !memcmp(in->ip, nat64, 12) || !memcmp(in->ip, translated, 12)) {
        set_v4(out, in->ip + 12);
    } else if (!memcmp(in->ip, compat, 12) && (in->ip[12] | in->ip[13] | in->ip[14]) != 0) {
        set_v4(out, in->ip + 12); /* ::a.b.c.d (deprecated), but not :: or ::1 */
    } else if (in->ip[0] == 0x20 && in->ip[1] == 0x02) {
        set_v4(out, in->ip + 2); /* 6to4: 2002:AABB:CCDD::/48 */
    } else {
        return;
    }
    out->port = port;
}

static int in_cidr(const skd_cidr *c, const stunkit_addr *a)
{
    if (c->net.family != a->family)
        return 0;
    int full = c->bits / 8, rest = c->bits % 8;
    if (memcmp(c->net.ip, a->ip, (size_t)full) != 0)
        return 0;
    if (!rest)
        return 1;
    uint8_t mask = (uint8_t)(0xffu << (8 - rest));
    return (c->net.ip[full] & mask) == (a->ip[full] & mask);
}

int skd_cidr_contains(const skd_cidr *c, const stunkit_addr *a)
{
    stunkit_addr canonical;
    skd_peer_canonical(a, &canonical);
    return in_cidr(c, &canonical);
}

static skd_cidr table[N_BUILTIN];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void table_parse(void)
{
    const char *why;
    for (size_t i = 0; i < N_BUILTIN; i++)
        skd_cidr_parse(builtin[i], &table[i], &why);
}

const char *skd_peer_builtin_refusal(const stunkit_addr *canonical)
{
    pthread_once(&table_once, table_parse);
    for (size_t i = 0; i < N_BUILTIN; i++)
        if (in_cidr(&table[i], canonical))
            return builtin[i];
    return NULL;
}

int skd_peer_allowed(const skd_peer_policy *p, const stunkit_addr *peer)
{
    stunkit_addr c;
    skd_peer_canonical(peer, &c);
    for (int i = 0; i < p->n_allowed; i++)
        if (in_cidr(&p->allowed[i], &c))
            return 1;
    for (int i = 0; i < p->n_denied; i++)
        if (in_cidr(&p->denied[i], &c))
            return 0;
    return skd_peer_builtin_refusal(&c) == NULL;
}
