/*
 * mdns_test.c - mdns.c: the query's bytes (RFC 6762 5.1, 5.4; RFC 1035
 * 4.1), an announcement as Chromium sends it (A with the cache-flush bit,
 * an NSEC beside it, names compressed), AAAA in the additional section,
 * names matched without case, a compression loop, every truncated prefix
 * and every flipped byte.
 */
#include <stdlib.h>

#include "mdns.h"
#include "test.h"

static const char *uuid = "addad1e2-9610-4bad-9a94-5f40ea07d938.local";

static void query_bytes(void)
{
    uint8_t q[128];
    int n = sk_mdns_query("ab.local", 0x1234, 1, q, sizeof(q));
    static const uint8_t want[] = {0x12, 0x34, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0,
                                   2, 'a', 'b', 5, 'l', 'o', 'c', 'a', 'l', 0, 0, 1, 0x80, 1,
                                   2, 'a', 'b', 5, 'l', 'o', 'c', 'a', 'l', 0, 0, 28, 0x80, 1};
    CHECK_EQ(n, (int)sizeof(want));
    CHECK_MEM(q, want, sizeof(want));
    n = sk_mdns_query("ab.local", 0, 0, q, sizeof(q)); /* QM: the class's top bit clear */
    CHECK_EQ(q[24], 0);
    CHECK_EQ(q[38], 0);
    CHECK_EQ(sk_mdns_query("", 1, 1, q, sizeof(q)), -1);
    CHECK_EQ(sk_mdns_query("a..local", 1, 1, q, sizeof(q)), -1);
    CHECK_EQ(sk_mdns_query("ab.local.", 1, 1, q, sizeof(q)), -1);
    char long_label[80];
    memset(long_label, 'x', 64);
    strcpy(long_label + 64, ".local");
    CHECK_EQ(sk_mdns_query(long_label, 1, 1, q, sizeof(q)), -1);
    for (size_t cap = 0; cap < sizeof(want); cap++)
        CHECK_EQ(sk_mdns_query("ab.local", 1, 1, q, cap), -1);
    CHECK_EQ(sk_mdns_name(uuid), 1);
    CHECK_EQ(sk_mdns_name("host.LOCAL"), 1);
    CHECK_EQ(sk_mdns_name(".local"), 0);
    CHECK_EQ(sk_mdns_name("example.org"), 0);
}

/* name as DNS labels */
static size_t put(uint8_t *o, const char *name)
{
    size_t n = 0;
    while (*name) {
        const char *dot = strchr(name, '.');
        size_t l = dot ? (size_t)(dot - name) : strlen(name);
        o[n++] = (uint8_t)l;
        memcpy(o + n, name, l);
        n += l;
        name += l + (dot != NULL);
    }
    o[n++] = 0;
    return n;
}

/* Chromium's announcement: one answer (A, cache flush, TTL 120), one
 * additional record (NSEC, the name by a pointer) */
static size_t announcement(uint8_t *m, const char *name, const uint8_t ip[4])
{
    size_t n = 0;
    static const uint8_t hdr[] = {0, 0, 0x84, 0, 0, 0, 0, 1, 0, 0, 0, 1};
    memcpy(m, hdr, 12);
    n = 12;
    n += put(m + n, name);
    static const uint8_t a[] = {0, 1, 0x80, 1, 0, 0, 0, 120, 0, 4};
    memcpy(m + n, a, sizeof(a));
    n += sizeof(a);
    memcpy(m + n, ip, 4);
    n += 4;
    static const uint8_t nsec[] = {0xc0, 12, 0, 47, 0x80, 1, 0, 0, 0, 120, 0, 8, 0xc0, 12, 0, 4, 0x40, 0, 0, 0};
    memcpy(m + n, nsec, sizeof(nsec));
    return n + sizeof(nsec);
}

static void answers(void)
{
    uint8_t m[512];
    static const uint8_t ip[4] = {100, 64, 0, 2};
    size_t n = announcement(m, uuid, ip);
    stunkit_addr a;
    CHECK_EQ(sk_mdns_answer(m, n, uuid, &a), 0);
    CHECK_EQ(a.family, STUNKIT_AF_INET);
    CHECK_MEM(a.ip, ip, 4);
    CHECK_EQ(sk_mdns_answer(m, n, "ADDAD1E2-9610-4BAD-9A94-5F40EA07D938.LOCAL", &a), 0); /* case-insensitive */
    CHECK_EQ(sk_mdns_answer(m, n, "other.local", &a), -1);
    /* a query is not an answer */
    m[2] = 0;
    CHECK_EQ(sk_mdns_answer(m, n, uuid, &a), -1);
    m[2] = 0x84;
    /* every truncated prefix: no answer, no read past the end */
    for (size_t k = 0; k < n - 20; k++) {
        uint8_t *cut = malloc(k ? k : 1);
        memcpy(cut, m, k);
        CHECK(sk_mdns_answer(cut, k, uuid, &a) == -1);
        free(cut);
    }
    /* every flipped byte: whatever it says, it stays inside */
    for (size_t k = 0; k < n; k++) {
        uint8_t f[512];
        memcpy(f, m, n);
        f[k] ^= 0xff;
        (void)sk_mdns_answer(f, n, uuid, &a);
    }

    /* AAAA in the additional section, its name compressed to the
     * question's; a question first */
    size_t o = 0;
    static const uint8_t hdr[] = {0, 7, 0x84, 0, 0, 1, 0, 0, 0, 0, 0, 1};
    memcpy(m, hdr, 12);
    o = 12;
    o += put(m + o, "v6.local");
    static const uint8_t qtail[] = {0, 28, 0, 1};
    memcpy(m + o, qtail, 4);
    o += 4;
    static const uint8_t rr[] = {0xc0, 12, 0, 28, 0x80, 1, 0, 0, 0, 120, 0, 16};
    memcpy(m + o, rr, sizeof(rr));
    o += sizeof(rr);
    static const uint8_t v6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9};
    memcpy(m + o, v6, 16);
    o += 16;
    CHECK_EQ(sk_mdns_answer(m, o, "v6.local", &a), 0);
    CHECK_EQ(a.family, STUNKIT_AF_INET6);
    CHECK_MEM(a.ip, v6, 16);

    /* a compression pointer to itself: refused, not followed forever */
    static const uint8_t loop[] = {0, 0, 0x84, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 1, 0, 4, 1, 2, 3, 4};
    CHECK_EQ(sk_mdns_answer(loop, sizeof(loop), "x.local", &a), -1);
    /* a record longer than the message */
    n = announcement(m, uuid, ip);
    CHECK_EQ(sk_mdns_answer(m, n - 21, uuid, &a), -1);
}

int main(void)
{
    RUN(query_bytes);
    RUN(answers);
    TEST_END();
}
