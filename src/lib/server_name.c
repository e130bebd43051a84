/*
 * server_name.c - naming a STUN server: RFC 7064 URIs, host[:port], and
 * resolution through DNS SRV (RFC 8489 8.1; RFC 2782's order: priority,
 * then a weighted random draw) with A/AAAA fallback.
 *
 * RFC 7064 3.1: stunURI = scheme ":" host [ ":" port ], scheme = "stun" /
 * "stuns"; host = IP-literal / IPv4address / reg-name.
 * RFC 8489 8.1: "the SRV service name is "stun" [...] for STUN over UDP or
 * TCP, "stuns" for STUN over TLS [...] If no SRV records were found, the
 * client performs an A or AAAA record lookup of the domain name [...] The
 * default port for STUN requests is 3478, for both TCP and UDP. The default
 * port for STUN over TLS [...] is 5349."
 */
#include <arpa/nameser.h>
#include <netdb.h>
#include <resolv.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "stunkit/client.h"

int stunkit_server_parse(const char *text, stunkit_server *out)
{
    memset(out, 0, sizeof(*out));
    if (!text)
        return STUNKIT_ERR_BAD_ADDRESS;
    if (!strncasecmp(text, "stuns:", 6)) {
        out->secure = 1;
        text += 6;
    } else if (!strncasecmp(text, "stun:", 5)) {
        text += 5;
    } else if (!strncasecmp(text, "turns:", 6)) {
        out->secure = out->turn = 1;
        text += 6;
    } else if (!strncasecmp(text, "turn:", 5)) {
        out->turn = 1;
        text += 5;
    }
    if (!strncmp(text, "//", 2))
        return STUNKIT_ERR_BAD_ADDRESS; /* RFC 7064 URIs have no authority part */
    /* RFC 7065 3.1: turnURI = scheme ":" host [ ":" port ]
     *               [ "?transport=" transport ], transport = "udp" / "tcp" */
    char hostport[300];
    const char *query = strchr(text, '?');
    if (query) {
        if (!out->turn)
            return STUNKIT_ERR_BAD_ADDRESS;
        if (!strcasecmp(query + 1, "transport=udp"))
            out->transport = 1;
        else if (!strcasecmp(query + 1, "transport=tcp"))
            out->transport = 2;
        else
            return STUNKIT_ERR_BAD_ADDRESS;
        if ((size_t)(query - text) >= sizeof(hostport))
            return STUNKIT_ERR_BAD_ADDRESS;
        memcpy(hostport, text, (size_t)(query - text));
        hostport[query - text] = '\0';
        text = hostport;
    }
    const char *host = text, *port = NULL;
    size_t hlen;
    if (*text == '[') {
        const char *close = strchr(text, ']');
        if (!close)
            return STUNKIT_ERR_BAD_ADDRESS;
        host = text + 1;
        hlen = (size_t)(close - host);
        if (close[1] == ':')
            port = close + 2;
        else if (close[1])
            return STUNKIT_ERR_BAD_ADDRESS;
    } else {
        const char *colon = strchr(text, ':');
        if (colon && strchr(colon + 1, ':')) {
            hlen = strlen(text); /* a bare IPv6 address */
        } else {
            hlen = colon ? (size_t)(colon - text) : strlen(text);
            port = colon ? colon + 1 : NULL;
        }
    }
    if (hlen == 0 || hlen >= sizeof(out->host))
        return STUNKIT_ERR_BAD_ADDRESS;
    for (size_t i = 0; i < hlen; i++)
        if (host[i] == '/' || host[i] == '?' || host[i] == '@' || host[i] == ' ')
            return STUNKIT_ERR_BAD_ADDRESS;
    memcpy(out->host, host, hlen);
    out->host[hlen] = '\0';
    if (port) {
        char *end;
        unsigned long v = strtoul(port, &end, 10);
        if (!*port || *end || v == 0 || v > 65535)
            return STUNKIT_ERR_BAD_ADDRESS;
        out->port = (uint16_t)v;
    }
    return 0;
}

static int add_host(const char *host, uint16_t port, int family, stunkit_addr *out, size_t cap, size_t n)
{
    struct addrinfo hints, *res, *ai;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = family == STUNKIT_AF_INET ? AF_INET : family == STUNKIT_AF_INET6 ? AF_INET6 : AF_UNSPEC;
    hints.ai_socktype = SOCK_DGRAM;
    hints.ai_flags = AI_ADDRCONFIG;
    if (getaddrinfo(host, NULL, &hints, &res) != 0)
        return (int)n;
    for (ai = res; ai && n < cap; ai = ai->ai_next) {
        stunkit_addr a;
        if (stunkit_addr_from_sockaddr(&a, ai->ai_addr) != 0)
            continue;
        a.port = port;
        int dup = 0;
        for (size_t k = 0; k < n; k++)
            dup |= stunkit_addr_equal(&out[k], &a);
        if (!dup)
            out[n++] = a;
    }
    freeaddrinfo(res);
    return (int)n;
}

typedef struct srv_rr {
    uint16_t prio, weight, port;
    char target[NS_MAXDNAME];
} srv_rr;

static int srv_cmp(const void *a, const void *b)
{
    const srv_rr *x = a, *y = b;
    if (x->prio != y->prio)
        return x->prio < y->prio ? -1 : 1;
    return x->weight > y->weight ? -1 : x->weight < y->weight; /* heavier first */
}

/* RFC 2782, "Usage rules": within one priority, "arrange all SRV RRs (that
 * have not been ordered yet) in any order, except that all those with
 * weight 0 are placed at the beginning of the list. Compute the sum of the
 * weights [...] choose a uniform random number between 0 and the sum [...]
 * select the RR whose running sum value is the first in the selected
 * order which is greater than or equal to the random number selected";
 * repeat with the rest. So a fleet's clients spread over its servers in
 * proportion to the weights, and each client has the others as fallbacks. */
static void srv_weigh(srv_rr *rr, int n)
{
    for (int lo = 0; lo < n;) {
        int hi = lo;
        while (hi < n && rr[hi].prio == rr[lo].prio)
            hi++;
        for (int k = lo; k < hi - 1; k++) {
            /* rr[k..hi) are unordered: weight 0 first (the sort put them last) */
            uint32_t sum = 0, pick, run = 0;
            for (int j = k; j < hi; j++)
                sum += rr[j].weight;
            uint8_t r[4];
            stunkit_random_os(NULL, r, sizeof(r));
            pick = sum ? ((uint32_t)r[0] << 24 | (uint32_t)r[1] << 16 | (uint32_t)r[2] << 8 | r[3]) % (sum + 1) : 0;
            int chosen = hi - 1;
            for (int j = hi - 1; j >= k && rr[j].weight == 0; j--) /* zero weights: first in running order */
                if (pick == 0) {
                    chosen = j;
                    goto take;
                }
            for (int j = k; j < hi; j++) {
                if (!rr[j].weight)
                    continue;
                run += rr[j].weight;
                if (run >= pick) {
                    chosen = j;
                    break;
                }
            }
        take:;
            srv_rr t = rr[k];
            rr[k] = rr[chosen];
            rr[chosen] = t;
        }
        lo = hi;
    }
}

/* DNS SRV lookup; returns the records found (0 if none). */
static int srv_lookup(const char *name, srv_rr *rr, int cap)
{
    unsigned char answer[4096];
    struct __res_state st;
    memset(&st, 0, sizeof(st));
    if (res_ninit(&st) != 0)
        return 0;
    st.retry = 1;
    int len = res_nquery(&st, name, ns_c_in, ns_t_srv, answer, sizeof(answer));
    int n = 0;
    ns_msg msg;
    if (len > 0 && ns_initparse(answer, len, &msg) == 0) {
        int count = ns_msg_count(msg, ns_s_an);
        for (int i = 0; i < count && n < cap; i++) {
            ns_rr r;
            if (ns_parserr(&msg, ns_s_an, i, &r) != 0 || ns_rr_type(r) != ns_t_srv || ns_rr_rdlen(r) < 7)
                continue;
            const unsigned char *d = ns_rr_rdata(r);
            rr[n].prio = (uint16_t)(d[0] << 8 | d[1]);
            rr[n].weight = (uint16_t)(d[2] << 8 | d[3]);
            rr[n].port = (uint16_t)(d[4] << 8 | d[5]);
            if (dn_expand(ns_msg_base(msg), ns_msg_end(msg), d + 6, rr[n].target, sizeof(rr[n].target)) < 0)
                continue;
            if (!strcmp(rr[n].target, ".") || !rr[n].target[0])
                continue; /* "service decidedly not available" */
            n++;
        }
    }
    res_nclose(&st);
    qsort(rr, (size_t)n, sizeof(*rr), srv_cmp);
    srv_weigh(rr, n);
    return n;
}

int stunkit_server_resolve(const stunkit_server *s, stunkit_transport tr, int family, stunkit_addr *out, size_t cap)
{
    int secure = s->secure || tr == STUNKIT_TLS || tr == STUNKIT_DTLS;
    uint16_t def_port = secure ? 5349 : 3478;
    stunkit_addr a;
    /* a numeric address needs no DNS */
    if (stunkit_addr_parse(s->host, s->port ? s->port : def_port, &a) == 0 && s->host[0] != '[') {
        if (family && a.family != family)
            return STUNKIT_ERR_RESOLVE;
        if (cap < 1)
            return 0;
        out[0] = a;
        return 1;
    }
    int n = 0;
    if (!s->port) {
        char name[300];
        srv_rr rr[16];
        const char *service = tr == STUNKIT_DTLS  ? "_stuns._udp"
                              : secure             ? "_stuns._tcp"
                              : tr == STUNKIT_UDP ? "_stun._udp"
                                                  : "_stun._tcp";
        snprintf(name, sizeof(name), "%s%s.%s", s->turn ? "_turn" : "_stun", service + 5, s->host);
        int k = srv_lookup(name, rr, 16);
        for (int i = 0; i < k && (size_t)n < cap; i++)
            n = add_host(rr[i].target, rr[i].port, family, out, cap, (size_t)n);
    }
    if (n == 0)
        n = add_host(s->host, s->port ? s->port : def_port, family, out, cap, 0);
    return n > 0 ? n : STUNKIT_ERR_RESOLVE;
}
