/*
 * portmap_test.c - the PCP / NAT-PMP machine on a fake clock, with the
 * router's answers written here byte by byte from RFC 6887 and RFC 6886
 * (the real router, miniupnpd, is met in tests/natlab/maplab.sh).
 */
#include <stdio.h>
#include <string.h>

#include "stunkit/core.h"
#include "test.h"

static uint64_t now = 1000000;
static uint32_t seed = 7;

typedef struct run {
    stunkit_portmap *m;
    uint8_t sent[8][64];
    size_t sent_len[8];
    int n_sent;                 /* datagrams in the last pump */
    int total_sent;
    int mapped, renewed, failed, reset, deleted, last_result;
    stunkit_portmap_method method;
    stunkit_addr external;
    uint32_t lifetime;
} run;

static stunkit_addr gw, me;

static void pump(run *r)
{
    stunkit_portmap_output o;
    r->n_sent = 0;
    while (stunkit_portmap_poll(r->m, now, &o) == 1) {
        if (o.send) {
            CHECK(stunkit_addr_equal(&o.to, &gw));
            if (r->n_sent < 8 && o.len <= 64) {
                memcpy(r->sent[r->n_sent], o.data, o.len);
                r->sent_len[r->n_sent] = o.len;
            }
            r->n_sent++;
            r->total_sent++;
            continue;
        }
        r->method = o.method;
        switch (o.event) {
        case STUNKIT_PORTMAP_EVENT_MAPPED:
            r->mapped++;
            r->external = o.external;
            r->lifetime = o.lifetime_s;
            break;
        case STUNKIT_PORTMAP_EVENT_RENEWED:
            r->renewed++;
            r->external = o.external;
            break;
        case STUNKIT_PORTMAP_EVENT_FAILED:
            r->failed++;
            r->last_result = o.result;
            break;
        case STUNKIT_PORTMAP_EVENT_RESET: r->reset++; break;
        case STUNKIT_PORTMAP_EVENT_DELETED: r->deleted++; break;
        }
    }
    /* nothing now: the timeout is later (stunkit/machine.h; else a driver spins) */
    CHECK(stunkit_portmap_timeout(r->m) > now);
}

static void start(run *r, stunkit_portmap_method method, int protocol)
{
    memset(r, 0, sizeof(*r));
    stunkit_portmap_config c;
    memset(&c, 0, sizeof(c));
    c.size = sizeof(c);
    c.gateway = gw;
    c.internal = me;
    c.protocol = protocol;
    c.lifetime_s = 120;
    c.method = method;
    c.env.random = test_random;
    c.env.random_ctx = &seed;
    r->m = stunkit_portmap_new(&c, now);
    CHECK(r->m != NULL);
}

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
    put16(p, (uint16_t)(v >> 16));
    put16(p + 2, (uint16_t)v);
}

/* A PCP MAP answer to request q: result, lifetime, epoch, external port and
 * 198.51.100.1 (RFC 6887 7.2, 11.1). */
static size_t pcp_answer(uint8_t *a, const uint8_t *q, uint8_t result, uint32_t life, uint32_t epoch, uint16_t port)
{
    static const uint8_t ext[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 198, 51, 100, 1};
    memset(a, 0, 60);
    a[0] = 2;
    a[1] = 0x81;
    a[3] = result;
    put32(a + 4, life);
    put32(a + 8, epoch);
    memcpy(a + 24, q + 24, 16); /* nonce, protocol, reserved */
    memcpy(a + 40, q + 40, 2);  /* internal port */
    put16(a + 42, port);
    memcpy(a + 44, ext, 16);
    return 60;
}

static void test_pcp(void)
{
    run r;
    start(&r, STUNKIT_PORTMAP_PCP, 17);
    pump(&r);
    CHECK_EQ(r.n_sent, 1);
    const uint8_t *q = r.sent[0];
    /* the request, field by field */
    static const uint8_t client[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 192, 0, 2, 2};
    static const uint8_t any4[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0, 0, 0, 0};
    CHECK_EQ(r.sent_len[0], 60);
    CHECK(q[0] == 2 && q[1] == 1 && q[2] == 0 && q[3] == 0);
    CHECK(q[4] == 0 && q[5] == 0 && q[6] == 0 && q[7] == 120);
    CHECK_MEM(q + 8, client, 16);
    CHECK(q[36] == 17 && q[40] == 0xA0 && q[41] == 0x28); /* UDP, internal port 41000 */
    CHECK(q[42] == 0 && q[43] == 0);                      /* any external port */
    CHECK_MEM(q + 44, any4, 16);
    uint8_t first[60], nonce[12];
    memcpy(first, q, 60);
    memcpy(nonce, q + 24, 12);

    /* retransmissions: RT = (1 + RAND) * IRT with IRT 3 s, then doubling */
    uint64_t t0 = now, gaps[3];
    for (int i = 0; i < 3; i++) {
        uint64_t before = now;
        now = stunkit_portmap_timeout(r.m);
        pump(&r);
        CHECK_EQ(r.n_sent, 1);
        gaps[i] = now - before;
    }
    CHECK(gaps[0] >= 2700 && gaps[0] <= 3300);
    CHECK(gaps[1] >= 2 * gaps[0] * 9 / 10 - 10 && gaps[1] <= 2 * gaps[0] * 11 / 10 + 10);
    fprintf(stderr, "PCP resends after %llu, %llu, %llu ms\n", (unsigned long long)gaps[0],
            (unsigned long long)gaps[1], (unsigned long long)gaps[2]);
    (void)t0;

    /* hostile answers change nothing: every truncated prefix, a wrong
     * nonce, a wrong source, an odd size, a wrong protocol */
    uint8_t a[1200];
    size_t n = pcp_answer(a, first, 0, 120, 5000, 41000);
    for (size_t cut = 0; cut < n; cut++)
        CHECK_EQ(stunkit_portmap_input(r.m, 0, &gw, a, cut, now), 1);
    stunkit_addr other = gw;
    other.port = 5350;
    CHECK_EQ(stunkit_portmap_input(r.m, 0, &other, a, n, now), 0);
    a[30] ^= 1;
    stunkit_portmap_input(r.m, 0, &gw, a, n, now);
    a[30] ^= 1;
    a[36] = 6;
    stunkit_portmap_input(r.m, 0, &gw, a, n, now);
    a[36] = 17;
    memset(a + 60, 0, 1100);
    stunkit_portmap_input(r.m, 0, &gw, a, 1104, now); /* over 1100 */
    stunkit_portmap_input(r.m, 0, &gw, a, 62, now);   /* not a multiple of 4 */
    pump(&r);
    CHECK_EQ(r.mapped + r.failed, 0);

    /* the answer */
    CHECK_EQ(stunkit_portmap_input(r.m, 0, &gw, a, n, now), 1);
    pump(&r);
    CHECK_EQ(r.mapped, 1);
    CHECK_EQ(r.method, STUNKIT_PORTMAP_PCP);
    char text[STUNKIT_ADDRSTRLEN];
    stunkit_addr_format(&r.external, text, sizeof(text));
    CHECK_STR(text, "198.51.100.1:41000");
    CHECK_EQ(r.lifetime, 120);

    /* renewal between 1/2 and 5/8 of 120 s, the same nonce, suggesting what we have */
    uint64_t mapped_at = now;
    now = stunkit_portmap_timeout(r.m);
    pump(&r);
    CHECK_EQ(r.n_sent, 1);
    CHECK(now - mapped_at >= 60000 && now - mapped_at <= 75000);
    CHECK_MEM(r.sent[0] + 24, nonce, 12);
    CHECK(r.sent[0][42] == 0xA0 && r.sent[0][43] == 0x28);
    CHECK(r.sent[0][56] == 198 && r.sent[0][59] == 1);
    uint32_t epoch = 5000 + (uint32_t)((now - mapped_at) / 1000);
    n = pcp_answer(a, r.sent[0], 0, 120, epoch, 41000);
    stunkit_portmap_input(r.m, 0, &gw, a, n, now);
    pump(&r);
    CHECK_EQ(r.renewed, 1);
    CHECK_EQ(r.reset, 0);

    /* the router reboots: its epoch starts again; we map again at once */
    now += 10000;
    uint8_t q2[60];
    memcpy(q2, r.sent[0], 60);
    n = pcp_answer(a, q2, 0, 120, 3, 41000);
    stunkit_portmap_input(r.m, 0, &gw, a, n, now);
    pump(&r);
    CHECK_EQ(r.reset, 1);
    CHECK_EQ(r.n_sent, 1); /* the MAP again, now */

    /* an error: the name from the RFC */
    n = pcp_answer(a, r.sent[0], 8, 30, 4, 0);
    stunkit_portmap_input(r.m, 0, &gw, a, n, now);
    pump(&r);
    CHECK_EQ(r.failed, 1);
    CHECK_EQ(r.last_result, 8);
    CHECK_STR(stunkit_portmap_result_name(STUNKIT_PORTMAP_PCP, 8), "NO_RESOURCES");
    stunkit_portmap_free(r.m);

    /* deletion: lifetime 0, the same nonce; DELETED */
    start(&r, STUNKIT_PORTMAP_PCP, 6);
    pump(&r);
    memcpy(q2, r.sent[0], 60);
    CHECK_EQ(q2[36], 6);
    n = pcp_answer(a, q2, 0, 120, 100, 41001);
    stunkit_portmap_input(r.m, 0, &gw, a, n, now);
    pump(&r);
    CHECK_EQ(r.mapped, 1);
    CHECK_EQ(stunkit_portmap_delete(r.m, now), 0);
    pump(&r);
    CHECK_EQ(r.n_sent, 1);
    CHECK(r.sent[0][4] == 0 && r.sent[0][7] == 0);
    CHECK_MEM(r.sent[0] + 24, q2 + 24, 12);
    n = pcp_answer(a, r.sent[0], 0, 0, 101, 0);
    stunkit_portmap_input(r.m, 0, &gw, a, n, now);
    pump(&r);
    CHECK_EQ(r.deleted, 1);
    CHECK_EQ(stunkit_portmap_delete(r.m, now), STUNKIT_ERR_STATE);
    stunkit_portmap_free(r.m);
}

static void test_natpmp_fallback(void)
{
    run r;
    start(&r, STUNKIT_PORTMAP_AUTO, 17);
    pump(&r);
    /* PCP's MAP and NAT-PMP's address query leave together */
    CHECK_EQ(r.n_sent, 2);
    int pcp = r.sent_len[0] == 60 ? 0 : 1;
    CHECK_EQ(r.sent_len[pcp], 60);
    CHECK_EQ(r.sent_len[1 - pcp], 2);
    /* a NAT-PMP-only router: version 0, "Unsupported Version" (RFC 6887 9) */
    uint8_t a[16] = {0, 0x81, 0, 1, 0, 0, 0x10, 0};
    stunkit_portmap_input(r.m, 0, &gw, a, 8, now);
    pump(&r);
    CHECK_EQ(r.n_sent, 1);
    CHECK_EQ(r.sent_len[0], 12);
    const uint8_t *q = r.sent[0];
    CHECK(q[0] == 0 && q[1] == 1 && q[4] == 0xA0 && q[5] == 0x28 && q[6] == 0xA0 && q[7] == 0x28);
    CHECK(q[8] == 0 && q[11] == 120);
    /* the address answer (12 bytes), then the mapping's (16) */
    uint8_t addr[12] = {0, 0x80, 0, 0, 0, 0, 0x10, 0, 198, 51, 100, 1};
    stunkit_portmap_input(r.m, 0, &gw, addr, 12, now);
    uint8_t m[16] = {0, 0x81, 0, 0, 0, 0, 0x10, 0, 0xA0, 0x28, 0xA0, 0x29, 0, 0, 0, 60};
    for (size_t cut = 0; cut < 16; cut++)
        stunkit_portmap_input(r.m, 0, &gw, m, cut, now);
    pump(&r);
    CHECK_EQ(r.mapped, 0);
    stunkit_portmap_input(r.m, 0, &gw, m, 16, now);
    pump(&r);
    CHECK_EQ(r.mapped, 1);
    CHECK_EQ(r.method, STUNKIT_PORTMAP_NATPMP);
    char text[STUNKIT_ADDRSTRLEN];
    stunkit_addr_format(&r.external, text, sizeof(text));
    CHECK_STR(text, "198.51.100.1:41001");
    /* renewal halfway (30 s of 60) */
    uint64_t at = now;
    now = stunkit_portmap_timeout(r.m);
    pump(&r);
    CHECK_EQ(now - at, 30000);
    CHECK(r.n_sent == 1 && r.sent_len[0] == 12 && r.sent[0][6] == 0xA0 && r.sent[0][7] == 0x29);
    /* deletion: lifetime 0 and external port 0 (RFC 6886 3.4) */
    m[3] = 0;
    m[7] = 30;
    stunkit_portmap_input(r.m, 0, &gw, m, 16, now);
    pump(&r);
    CHECK_EQ(r.renewed, 1);
    CHECK_EQ(stunkit_portmap_delete(r.m, now), 0);
    pump(&r);
    CHECK(r.n_sent == 1 && r.sent[0][6] == 0 && r.sent[0][7] == 0 && r.sent[0][11] == 0);
    uint8_t d[16] = {0, 0x81, 0, 0, 0, 0, 0x10, 30, 0xA0, 0x28, 0, 0, 0, 0, 0, 0};
    stunkit_portmap_input(r.m, 0, &gw, d, 16, now);
    pump(&r);
    CHECK_EQ(r.deleted, 1);
    stunkit_portmap_free(r.m);

    /* a router that answers NAT-PMP and ignores PCP: NAT-PMP after a grace */
    start(&r, STUNKIT_PORTMAP_AUTO, 6);
    pump(&r);
    stunkit_portmap_input(r.m, 0, &gw, addr, 12, now);
    pump(&r);
    CHECK_EQ(r.n_sent, 0);
    now = stunkit_portmap_timeout(r.m);
    pump(&r);
    CHECK(r.n_sent == 1 && r.sent_len[0] == 12 && r.sent[0][1] == 2); /* NAT-PMP, TCP */
    stunkit_portmap_free(r.m);

    /* a silent NAT-PMP gateway: 9 sends, given up after 64 s (RFC 6886 3.1) */
    start(&r, STUNKIT_PORTMAP_NATPMP, 17);
    uint64_t t0 = now;
    for (int i = 0; i < 40 && !r.failed; i++) {
        pump(&r);
        if (!r.failed)
            now = stunkit_portmap_timeout(r.m);
    }
    fprintf(stderr, "silent NAT-PMP gateway: %d datagrams, FAILED after %llu ms (fake)\n", r.total_sent,
            (unsigned long long)(now - t0));
    CHECK_EQ(r.failed, 1);
    CHECK_EQ(r.last_result, -1);
    CHECK(now - t0 == 64000);
    CHECK_EQ(r.total_sent, 18); /* 9 mapping requests, 9 address queries */
    stunkit_portmap_free(r.m);

    /* the contract */
    stunkit_portmap_config c;
    memset(&c, 0, sizeof(c));
    c.size = sizeof(c);
    c.gateway = gw;
    c.internal = me;
    c.protocol = 17;
    CHECK(stunkit_portmap_new(&c, now) == NULL); /* no randomness */
    c.env.random = test_random;
    c.env.random_ctx = &seed;
    c.protocol = 132;
    CHECK(stunkit_portmap_new(&c, now) == NULL);
    c.protocol = 17;
    stunkit_addr_parse("[2001:db8::1]:5351", 0, &c.gateway);
    CHECK(stunkit_portmap_new(&c, now) == NULL); /* families differ */
    stunkit_addr_parse("[2001:db8::2]:41000", 0, &c.internal);
    c.method = STUNKIT_PORTMAP_NATPMP;
    CHECK(stunkit_portmap_new(&c, now) == NULL); /* NAT-PMP has no IPv6 */
    c.method = STUNKIT_PORTMAP_AUTO;
    stunkit_portmap *p6 = stunkit_portmap_new(&c, now);
    CHECK(p6 != NULL); /* AUTO over IPv6 is PCP (a firewall pinhole) */
    stunkit_portmap_free(p6);
}

int main(void)
{
    stunkit_addr_parse("192.0.2.1:5351", 0, &gw);
    stunkit_addr_parse("192.0.2.2:41000", 0, &me);
    RUN(test_pcp);
    RUN(test_natpmp_fallback);
    TEST_END();
}
