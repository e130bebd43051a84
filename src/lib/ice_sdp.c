/*
 * ice_sdp.c - the ICE agent's text (RFC 8839): candidate lines formatted and
 * parsed, a description applied and written. The agent's state is
 * ice_int.h's; the checks and their schedule are ice.c's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ice_int.h"
#include "stunkit/error.h"

/* ice-char = ALPHA / DIGIT / "+" / "/" (RFC 8839 5.4) */
int sk_ice_char(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
}

/* ---------------------------------------------------------------- SDP */

const char *stunkit_ice_type_name(stunkit_ice_type t)
{
    static const char *const n[] = {"host", "srflx", "prflx", "relay"};
    return (unsigned)t < 4 ? n[t] : "unknown";
}

int stunkit_ice_candidate_format(const stunkit_ice_candidate *c, char *buf, size_t cap)
{
    char ip[STUNKIT_ADDRSTRLEN], rip[STUNKIT_ADDRSTRLEN];
    stunkit_addr_format_ip(&c->addr, ip, sizeof(ip));
    int n;
    /* RFC 8839 5.1: candidate:<foundation> <component> <transport>
     * <priority> <address> <port> typ <type> [raddr <a> rport <p>] */
    if (c->related.family) {
        stunkit_addr_format_ip(&c->related, rip, sizeof(rip));
        n = snprintf(buf, cap, "candidate:%s %u %s %u %s %u typ %s raddr %s rport %u", c->foundation, c->component,
                     c->tcp ? "TCP" : "UDP", c->priority, ip, c->addr.port, stunkit_ice_type_name(c->type), rip,
                     c->related.port);
    } else {
        n = snprintf(buf, cap, "candidate:%s %u %s %u %s %u typ %s", c->foundation, c->component,
                     c->tcp ? "TCP" : "UDP", c->priority, ip, c->addr.port, stunkit_ice_type_name(c->type));
    }
    return n < 0 || (size_t)n >= cap ? STUNKIT_ERR_NOBUF : n;
}

/* The next space-separated token of [*p, end): 0 when none. */
static size_t token(const char **p, const char *end, const char **tok)
{
    while (*p < end && **p == ' ')
        (*p)++;
    *tok = *p;
    while (*p < end && **p != ' ')
        (*p)++;
    return (size_t)(*p - *tok);
}

static int tok_eq(const char *t, size_t n, const char *s)
{
    size_t sl = strlen(s);
    if (n != sl)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char x = t[i], y = s[i];
        if (x >= 'A' && x <= 'Z')
            x = (char)(x - 'A' + 'a');
        if (x != y)
            return 0;
    }
    return 1;
}

static int tok_u32(const char *t, size_t n, uint32_t max, uint32_t *out)
{
    uint64_t v = 0;
    if (n == 0 || n > 10)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (t[i] < '0' || t[i] > '9')
            return -1;
        v = v * 10 + (uint64_t)(t[i] - '0');
    }
    if (v > max)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

static int tok_addr(const char *t, size_t n, stunkit_addr *out)
{
    char buf[64];
    if (n == 0 || n >= sizeof(buf))
        return STUNKIT_ERR_BAD_VALUE;
    memcpy(buf, t, n);
    buf[n] = 0;
    /* a host name (an mDNS ".local" name): the caller resolves it */
    return stunkit_addr_parse(buf, 0, out) == 0 ? 0 : STUNKIT_ERR_BAD_ADDRESS;
}

int stunkit_ice_candidate_parse(const char *text, size_t len, stunkit_ice_candidate *c)
{
    const char *p = text, *end = text + len, *t;
    size_t n;
    memset(c, 0, sizeof(*c));
    while (end > p && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
        end--;
    if (end - p >= 2 && p[0] == 'a' && p[1] == '=')
        p += 2;
    if (end - p < 10 || memcmp(p, "candidate:", 10) != 0)
        return STUNKIT_ERR_BAD_VALUE;
    p += 10;
    /* foundation: 1*32ice-char */
    n = token(&p, end, &t);
    if (n < 1 || n > 32)
        return STUNKIT_ERR_BAD_VALUE;
    for (size_t i = 0; i < n; i++)
        if (!sk_ice_char((unsigned char)t[i]))
            return STUNKIT_ERR_BAD_VALUE;
    memcpy(c->foundation, t, n);
    /* component-id: 1*3DIGIT */
    n = token(&p, end, &t);
    if (tok_u32(t, n, 256, &c->component) != 0 || c->component < 1)
        return STUNKIT_ERR_BAD_VALUE;
    n = token(&p, end, &t);
    if (tok_eq(t, n, "udp"))
        c->tcp = 0;
    else if (tok_eq(t, n, "tcp"))
        c->tcp = 1;
    else
        return STUNKIT_ERR_BAD_VALUE;
    n = token(&p, end, &t);
    if (tok_u32(t, n, UINT32_MAX, &c->priority) != 0 || c->priority == 0)
        return STUNKIT_ERR_BAD_VALUE;
    const char *at;
    size_t an = token(&p, end, &at);
    n = token(&p, end, &t);
    uint32_t port;
    if (tok_u32(t, n, 65535, &port) != 0)
        return STUNKIT_ERR_BAD_VALUE;
    n = token(&p, end, &t);
    if (!tok_eq(t, n, "typ"))
        return STUNKIT_ERR_BAD_VALUE;
    n = token(&p, end, &t);
    if (tok_eq(t, n, "host"))
        c->type = STUNKIT_ICE_TYPE_HOST;
    else if (tok_eq(t, n, "srflx"))
        c->type = STUNKIT_ICE_TYPE_SRFLX;
    else if (tok_eq(t, n, "prflx"))
        c->type = STUNKIT_ICE_TYPE_PRFLX;
    else if (tok_eq(t, n, "relay"))
        c->type = STUNKIT_ICE_TYPE_RELAY;
    else
        return STUNKIT_ERR_BAD_VALUE;
    /* raddr/rport and extensions (name value pairs): unknown ones skipped */
    for (;;) {
        const char *k, *v;
        size_t kn = token(&p, end, &k);
        if (!kn)
            break;
        size_t vn = token(&p, end, &v);
        if (!vn)
            return STUNKIT_ERR_BAD_VALUE;
        if (tok_eq(k, kn, "raddr")) {
            int rv = tok_addr(v, vn, &c->related);
            if (rv == STUNKIT_ERR_BAD_VALUE)
                return rv;
            if (rv != 0)
                memset(&c->related, 0, sizeof(c->related)); /* a name: not needed */
        } else if (tok_eq(k, kn, "rport")) {
            uint32_t rp;
            if (tok_u32(v, vn, 65535, &rp) != 0)
                return STUNKIT_ERR_BAD_VALUE;
            c->related.port = (uint16_t)rp;
        }
    }
    if (!c->related.family)
        memset(&c->related, 0, sizeof(c->related));
    int rv = tok_addr(at, an, &c->addr);
    c->addr.port = (uint16_t)port;
    return rv;
}

/* One line "name:value" of an SDP blob into its parts. */
static int sdp_attr(const char *line, size_t n, const char *name, const char **val, size_t *vn)
{
    size_t nl = strlen(name);
    if (n >= 2 && line[0] == 'a' && line[1] == '=')
        line += 2, n -= 2;
    if (n < nl || memcmp(line, name, nl) != 0)
        return 0;
    *val = line + nl;
    *vn = n - nl;
    return 1;
}

/* 1 when the space-separated list v (RFC 8839 5.6 ice-options) names opt. */
static int ice_option(const char *v, size_t vn, const char *opt)
{
    size_t on = strlen(opt), i = 0;
    while (i < vn) {
        while (i < vn && v[i] == ' ')
            i++;
        size_t j = i;
        while (j < vn && v[j] != ' ')
            j++;
        if (j - i == on && !memcmp(v + i, opt, on))
            return 1;
        i = j;
    }
    return 0;
}

void stunkit_ice_set_remote_options(stunkit_ice *a, const char *options)
{
    if (options && ice_option(options, strlen(options), "renomination"))
        a->renom = 1;
}

int stunkit_ice_apply(stunkit_ice *a, const char *sdp, size_t len, uint64_t now_ms)
{
    char ufrag[257] = "", pwd[257] = "";
    int added = 0, done = 0, renom = 0;
    /* credentials first: a restart flushes the old candidates */
    for (int pass = 0; pass < 2; pass++) {
        const char *p = sdp, *end = sdp + len;
        while (p < end) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            const char *le = nl ? nl : end;
            size_t n = (size_t)(le - p);
            if (n && p[n - 1] == '\r')
                n--;
            const char *v;
            size_t vn;
            if (pass == 0) {
                if (sdp_attr(p, n, "ice-ufrag:", &v, &vn)) {
                    if (vn >= sizeof(ufrag))
                        return STUNKIT_ERR_BAD_VALUE;
                    memcpy(ufrag, v, vn);
                    ufrag[vn] = 0;
                } else if (sdp_attr(p, n, "ice-pwd:", &v, &vn)) {
                    if (vn >= sizeof(pwd))
                        return STUNKIT_ERR_BAD_VALUE;
                    memcpy(pwd, v, vn);
                    pwd[vn] = 0;
                } else if (sdp_attr(p, n, "ice-options:", &v, &vn)) {
                    renom |= ice_option(v, vn, "renomination");
                }
            } else if (sdp_attr(p, n, "candidate:", &v, &vn)) {
                stunkit_ice_candidate c;
                if (stunkit_ice_candidate_parse(p, n, &c) == 0 && stunkit_ice_add_remote(a, &c, now_ms) == 0)
                    added++;
            } else if (sdp_attr(p, n, "end-of-candidates", &v, &vn)) {
                done = 1;
            }
            p = nl ? nl + 1 : end;
        }
        if (pass == 0 && (ufrag[0] || pwd[0])) {
            int rv = stunkit_ice_set_remote(a, ufrag, pwd, now_ms);
            if (rv != 0)
                return rv;
        }
        if (pass == 0 && renom)
            stunkit_ice_set_remote_options(a, "renomination");
    }
    if (done)
        stunkit_ice_remote_done(a, now_ms);
    return added;
}

int stunkit_ice_describe(const stunkit_ice *a, char *buf, size_t cap)
{
    size_t off = 0;
    int n = snprintf(buf, cap, "a=ice-ufrag:%s\r\na=ice-pwd:%s\r\na=ice-options:trickle renomination\r\n", a->ufrag,
                     a->pwd);
    if (n < 0 || (size_t)n >= cap)
        return STUNKIT_ERR_NOBUF;
    off = (size_t)n;
    for (int i = 0; i < a->nlocal; i++) {
        const lcand *lc = &a->local[i];
        if (lc->c.type == STUNKIT_ICE_TYPE_PRFLX || !lc->reported || lc->hidden)
            continue;
        if (cap - off < 3)
            return STUNKIT_ERR_NOBUF;
        memcpy(buf + off, "a=", 2);
        int m = stunkit_ice_candidate_format(&lc->c, buf + off + 2, cap - off - 2);
        if (m < 0 || cap - off - 2 - (size_t)m < 3)
            return STUNKIT_ERR_NOBUF;
        off += 2 + (size_t)m;
        memcpy(buf + off, "\r\n", 3);
        off += 2;
    }
    if (a->gathered_reported) {
        n = snprintf(buf + off, cap - off, "a=end-of-candidates\r\n");
        if (n < 0 || (size_t)n >= cap - off)
            return STUNKIT_ERR_NOBUF;
        off += (size_t)n;
    }
    return (int)off;
}
