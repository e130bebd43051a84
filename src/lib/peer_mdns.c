/*
 * peer_mdns.c - the peer resolves a browser's "<uuid>.local" ICE candidates
 * (draft-ietf-mmusic-mdns-ice-candidates: browsers hide their host
 * addresses behind such names) by multicast DNS on the local link:
 *
 *   - from its creation the peer listens in the mDNS group (224.0.0.251:5353,
 *     beside any other responder: SO_REUSEPORT, RFC 6762 15.1) on its
 *     non-loopback IPv4 addresses, and keeps the A / AAAA records it hears
 *     (a browser announces its name when it makes the candidate, RFC 6762
 *     8.3, usually before its description reaches us) for 120 s;
 *   - a name not heard yet is asked: a one-shot query from an ephemeral port
 *     asking a unicast answer (RFC 6762 5.1, 5.4) and a fully compliant one
 *     from 5353 (5.2; Chromium answers neither in our lab, but announces),
 *     from each IPv4 local address, again after 250 ms and 750 ms more.
 *
 * A name resolved becomes the remote candidate it names; one not resolved
 * in 3 s (the browser is not on this link, the usual case across NATs) is
 * left: the browser's checks arrive from its server-reflexive or
 * peer-reflexive address, and ICE pairs with that (RFC 8445 7.3.1.3).
 */
#define _GNU_SOURCE
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mdns.h"
#include "peer_int.h"

#define MDNS_GIVE_UP_MS 3000u
#define MDNS_KEEP_MS 120000u
#define MDNS_GROUP 0xe00000fbu /* 224.0.0.251 */

static int loopback(const stunkit_addr *a)
{
    return a->family == STUNKIT_AF_INET && a->ip[0] == 127;
}

/* The group socket, from the peer's creation (peer.c calls it once the
 * sockets are open): joined on each non-loopback IPv4 local address. */
void peer_mdns_listen(stunkit_peer *p)
{
    int one = 1, joined = 0;
    if (p->cfg.no_mdns)
        return;
    struct sockaddr_in any = {.sin_family = AF_INET, .sin_port = htons(SK_MDNS_PORT)};
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
        bind(fd, (struct sockaddr *)&any, sizeof(any)) != 0) {
        if (fd >= 0)
            close(fd);
        return;
    }
    for (int i = 0; i < p->nsocks; i++) {
        if (p->socks[i].local.family != STUNKIT_AF_INET || loopback(&p->socks[i].local))
            continue;
        struct ip_mreq mr;
        mr.imr_multiaddr.s_addr = htonl(MDNS_GROUP);
        memcpy(&mr.imr_interface, p->socks[i].local.ip, 4);
        joined += setsockopt(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mr, sizeof(mr)) == 0;
    }
    if (!joined) {
        close(fd);
        return;
    }
    p->mdns_group_fd = fd;
    peer_watch(p, fd, EV_MDNS, 1, 0);
}

/* The 5th field of "a=candidate:F C T P ADDRESS PORT typ ...". */
static int candidate_host(const char *line, size_t len, char *host, size_t cap, size_t *at, size_t *hlen)
{
    size_t i = 0;
    for (int field = 0; field < 4; field++) {
        while (i < len && line[i] != ' ')
            i++;
        while (i < len && line[i] == ' ')
            i++;
    }
    size_t s = i;
    while (i < len && line[i] != ' ')
        i++;
    if (i == s || i - s >= cap)
        return -1;
    memcpy(host, line + s, i - s);
    host[i - s] = 0;
    *at = s;
    *hlen = i - s;
    return 0;
}

/* The candidate q names, at address a, to the agent. */
static void resolved(stunkit_peer *p, peer_mdns_q *q, const stunkit_addr *a, uint64_t now)
{
    char ip[STUNKIT_ADDRSTRLEN], line[sizeof(q->line) + STUNKIT_ADDRSTRLEN];
    stunkit_addr_format_ip(a, ip, sizeof(ip));
    int m = snprintf(line, sizeof(line), "%.*s%s%.*s", (int)q->at, q->line, ip, (int)(q->len - q->at - q->hlen),
                     q->line + q->at + q->hlen);
    stunkit_ice_candidate c;
    q->done = 1;
    if (p->ice && m > 0 && stunkit_ice_candidate_parse(line, (size_t)m, &c) == 0 &&
        stunkit_ice_add_remote(p->ice, &c, now) == 0)
        peer_log(p, now, "mDNS: %s is %s", q->name, ip);
}

static const stunkit_addr *cached(const stunkit_peer *p, const char *name, uint64_t now)
{
    for (int i = 0; i < PEER_MDNS_CACHE; i++)
        if (p->mc[i].at && now - p->mc[i].at < MDNS_KEEP_MS && !strcasecmp(p->mc[i].name, name))
            return &p->mc[i].addr;
    return NULL;
}

void peer_mdns_want(stunkit_peer *p, const char *line, size_t len, uint64_t now)
{
    char host[256];
    size_t at, hl;
    if (len >= sizeof(p->mq[0].line) || candidate_host(line, len, host, sizeof(host), &at, &hl) != 0 ||
        !sk_mdns_name(host) || p->cfg.no_mdns)
        return;
    for (int i = 0; i < p->n_mq; i++)
        if (p->mq[i].len == len && !memcmp(p->mq[i].line, line, len))
            return;
    if (p->n_mq == PEER_MDNS_MAX)
        return;
    peer_mdns_q *q = &p->mq[p->n_mq++];
    memset(q, 0, sizeof(*q));
    snprintf(q->name, sizeof(q->name), "%s", host);
    memcpy(q->line, line, len);
    q->len = len;
    q->at = at;
    q->hlen = hl;
    const stunkit_addr *known = cached(p, host, now);
    if (known) { /* announced on the link already */
        resolved(p, q, known, now);
        return;
    }
    if (p->mdns_fd < 0) {
        p->mdns_fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        int ttl = 255; /* RFC 6762 11: sent with TTL 255 */
        if (p->mdns_fd < 0 || setsockopt(p->mdns_fd, IPPROTO_IP, IP_MULTICAST_TTL, &ttl, sizeof(ttl)) != 0) {
            if (p->mdns_fd >= 0)
                close(p->mdns_fd);
            p->mdns_fd = -1;
            q->done = 1;
            return;
        }
        peer_watch(p, p->mdns_fd, EV_MDNS, 0, 0);
    }
    p->env.random(p->env.random_ctx, (uint8_t *)&q->id, sizeof(q->id));
    q->next = now;
    q->give_up = now + MDNS_GIVE_UP_MS;
    peer_log(p, now, "mDNS: asking for %s", host);
}

static void query(stunkit_peer *p, peer_mdns_q *q)
{
    uint8_t qu[600], qm[600];
    int n = sk_mdns_query(q->name, q->id, 1, qu, sizeof(qu));
    int m = sk_mdns_query(q->name, 0, 0, qm, sizeof(qm)); /* ID 0 from 5353 (RFC 6762 18.1) */
    if (n < 0 || m < 0)
        return;
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(SK_MDNS_PORT)};
    to.sin_addr.s_addr = htonl(MDNS_GROUP);
    for (int i = 0; i < p->nsocks; i++) {
        if (p->socks[i].local.family != STUNKIT_AF_INET || loopback(&p->socks[i].local))
            continue;
        struct in_addr from;
        memcpy(&from, p->socks[i].local.ip, 4);
        if (setsockopt(p->mdns_fd, IPPROTO_IP, IP_MULTICAST_IF, &from, sizeof(from)) == 0)
            (void)sendto(p->mdns_fd, qu, (size_t)n, MSG_DONTWAIT, (struct sockaddr *)&to, sizeof(to));
        int g = p->mdns_group_fd;
        if (g >= 0 && setsockopt(g, IPPROTO_IP, IP_MULTICAST_IF, &from, sizeof(from)) == 0)
            (void)sendto(g, qm, (size_t)m, MSG_DONTWAIT, (struct sockaddr *)&to, sizeof(to));
    }
}

void peer_mdns_step(stunkit_peer *p, uint64_t now)
{
    for (int i = 0; i < p->n_mq; i++) {
        peer_mdns_q *q = &p->mq[i];
        if (q->done)
            continue;
        if (now >= q->give_up) {
            q->done = 1;
            peer_log(p, now, "mDNS: %s not resolved (not on this link): its checks' reflexive address will do",
                     q->name);
        } else if (now >= q->next) {
            query(p, q);
            q->tries++;
            q->next = q->tries >= 3 ? q->give_up : now + (q->tries == 1 ? 250u : 750u);
        }
    }
}

uint64_t peer_mdns_timeout(const stunkit_peer *p)
{
    uint64_t next = UINT64_MAX;
    for (int i = 0; i < p->n_mq; i++)
        if (!p->mq[i].done && p->mq[i].next < next)
            next = p->mq[i].next;
    return next;
}

typedef struct heard {
    stunkit_peer *p;
    uint64_t now;
} heard;

/* A record heard: kept (the oldest slot goes), and any query it answers
 * is resolved. Only names under .local. */
static void on_record(void *ctx, const char *name, const stunkit_addr *a)
{
    heard *h = ctx;
    stunkit_peer *p = h->p;
    if (!sk_mdns_name(name) || strlen(name) >= sizeof(p->mc[0].name))
        return;
    if (a->family == STUNKIT_AF_INET && !memcmp(a->ip, "\0\0\0\0", 4))
        return; /* 0.0.0.0: a name being withdrawn */
    int slot = 0;
    for (int i = 0; i < PEER_MDNS_CACHE; i++) {
        if (!strcasecmp(p->mc[i].name, name)) {
            slot = i;
            break;
        }
        if (p->mc[i].at < p->mc[slot].at)
            slot = i;
    }
    snprintf(p->mc[slot].name, sizeof(p->mc[slot].name), "%s", name);
    p->mc[slot].addr = *a;
    p->mc[slot].at = h->now ? h->now : 1;
    for (int i = 0; i < p->n_mq; i++)
        if (!p->mq[i].done && !strcasecmp(p->mq[i].name, name))
            resolved(p, &p->mq[i], a, h->now);
}

void peer_mdns_readable(stunkit_peer *p, int group, uint64_t now)
{
    uint8_t buf[1500];
    ssize_t n;
    int fd = group ? p->mdns_group_fd : p->mdns_fd;
    heard h = {p, now};
    while (fd >= 0 && (n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT)) >= 0)
        (void)sk_mdns_records(buf, (size_t)n, on_record, &h);
}
