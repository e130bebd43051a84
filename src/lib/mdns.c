/*
 * mdns.c - the two halves of a one-shot multicast DNS lookup (RFC 6762)
 * for the host names browsers put in ICE candidates instead of their
 * addresses (draft-ietf-mmusic-mdns-ice-candidates: "<uuid>.local"): the
 * query, and the answer's A / AAAA record for that name. Pure functions on
 * buffers; peer_signal.c sends and receives.
 *
 *   DNS header (RFC 1035 4.1.1)          12 bytes
 *    0  1  2  3  4  5  6  7  8  9 10 11 12 13 14 15
 *   |                      ID                       |
 *   |QR|   Opcode  |AA|TC|RD|RA|   Z    |   RCODE   |
 *   |                    QDCOUNT                    |
 *   |                    ANCOUNT                    |
 *   |                    NSCOUNT                    |
 *   |                    ARCOUNT                    |
 *
 * RFC 6762 5.1: a one-shot query comes from a port other than 5353 and the
 * responder answers it by unicast to that port ("legacy unicast", 6.7: it
 * "MUST send a unicast response directly back to the querier" with the
 * query's ID). 5.4: the top bit of the question's class asks for a unicast
 * answer (QU). 18.12 / 10.2: in answers the top bit of the class is the
 * cache-flush bit, not part of the class.
 */
#include <string.h>
#include <strings.h>

#include "mdns.h"

/* "label.label.local" -> DNS name; bytes written, or -1. */
static int put_name(uint8_t *out, size_t cap, const char *name)
{
    size_t o = 0, n = strlen(name);
    if (n == 0 || n > 253)
        return -1;
    const char *p = name;
    while (*p) {
        const char *dot = strchr(p, '.');
        size_t l = dot ? (size_t)(dot - p) : strlen(p);
        if (l == 0 || l > 63 || o + 1 + l + 1 > cap)
            return -1;
        out[o++] = (uint8_t)l;
        memcpy(out + o, p, l);
        o += l;
        p += l + (dot ? 1 : 0);
        if (dot && !*p)
            return -1; /* a trailing dot */
    }
    out[o++] = 0;
    return (int)o;
}

int sk_mdns_query(const char *name, uint16_t id, int qu, uint8_t *out, size_t cap)
{
    if (cap < 12)
        return -1;
    memset(out, 0, 12);
    out[0] = (uint8_t)(id >> 8);
    out[1] = (uint8_t)id;
    out[5] = 2; /* QDCOUNT: A and AAAA */
    size_t o = 12;
    static const uint16_t types[2] = {1, 28};
    for (int i = 0; i < 2; i++) {
        int n = put_name(out + o, cap - o, name);
        if (n < 0 || o + (size_t)n + 4 > cap)
            return -1;
        o += (size_t)n;
        out[o++] = 0;
        out[o++] = (uint8_t)types[i];
        out[o++] = qu ? 0x80 : 0; /* QU: a unicast answer, please (RFC 6762 5.4) */
        out[o++] = 1;    /* IN */
    }
    return (int)o;
}

/* Reads the name at *off (following compression pointers, at most 16,
 * never forward of the message's end) into text; advances *off past it
 * in the record. 0, or -1 when malformed. */
static int get_name(const uint8_t *m, size_t len, size_t *off, char *text, size_t cap)
{
    size_t p = *off, t = 0;
    int jumps = 0, jumped = 0;
    for (;;) {
        if (p >= len)
            return -1;
        uint8_t l = m[p];
        if ((l & 0xc0) == 0xc0) {
            if (p + 1 >= len || ++jumps > 16)
                return -1;
            size_t to = (size_t)(l & 0x3f) << 8 | m[p + 1];
            if (!jumped)
                *off = p + 2;
            jumped = 1;
            p = to;
            continue;
        }
        if (l & 0xc0)
            return -1; /* RFC 6891's extended labels: not a host name */
        if (l == 0) {
            if (!jumped)
                *off = p + 1;
            if (t == 0) {
                if (cap < 1)
                    return -1;
                text[t] = 0;
            } else {
                text[t - 1] = 0; /* the last dot */
            }
            return 0;
        }
        if (p + 1 + l > len || t + l + 1 >= cap)
            return -1;
        memcpy(text + t, m + p + 1, l);
        t += l;
        text[t++] = '.';
        p += 1 + (size_t)l;
    }
}

int sk_mdns_records(const uint8_t *m, size_t len, sk_mdns_record_fn fn, void *ctx)
{
    char got[256];
    int found = 0;
    if (len < 12 || !(m[2] & 0x80))
        return -1; /* not a response */
    size_t qd = (size_t)m[4] << 8 | m[5], an = (size_t)m[6] << 8 | m[7];
    size_t ns = (size_t)m[8] << 8 | m[9], ar = (size_t)m[10] << 8 | m[11];
    size_t off = 12;
    for (size_t i = 0; i < qd; i++) {
        if (get_name(m, len, &off, got, sizeof(got)) != 0 || off + 4 > len)
            return -1;
        off += 4;
    }
    /* the answers, then the authority and additional records (a responder
     * may put the other family's record there) */
    for (size_t i = 0; i < an + ns + ar; i++) {
        if (get_name(m, len, &off, got, sizeof(got)) != 0 || off + 10 > len)
            return -1;
        uint16_t type = (uint16_t)(m[off] << 8 | m[off + 1]);
        uint16_t klass = (uint16_t)((m[off + 2] & 0x7f) << 8 | m[off + 3]); /* the top bit: cache-flush */
        size_t rdlen = (size_t)m[off + 8] << 8 | m[off + 9];
        off += 10;
        if (off + rdlen > len)
            return -1;
        stunkit_addr a;
        memset(&a, 0, sizeof(a));
        if (klass == 1 && ((type == 1 && rdlen == 4) || (type == 28 && rdlen == 16))) {
            a.family = type == 1 ? STUNKIT_AF_INET : STUNKIT_AF_INET6;
            memcpy(a.ip, m + off, rdlen);
            fn(ctx, got, &a);
            found++;
        }
        off += rdlen;
    }
    return found;
}

typedef struct answer_ctx {
    const char *name;
    stunkit_addr *out;
    int found;
} answer_ctx;

static void answer_one(void *ctx, const char *name, const stunkit_addr *a)
{
    answer_ctx *c = ctx;
    if (!c->found && strcasecmp(name, c->name) == 0) {
        *c->out = *a;
        c->found = 1;
    }
}

int sk_mdns_answer(const uint8_t *m, size_t len, const char *name, stunkit_addr *out)
{
    answer_ctx c = {name, out, 0};
    return sk_mdns_records(m, len, answer_one, &c) >= 0 && c.found ? 0 : -1;
}

int sk_mdns_name(const char *host)
{
    size_t n = strlen(host);
    return n > 6 && n <= 253 && strcasecmp(host + n - 6, ".local") == 0;
}
