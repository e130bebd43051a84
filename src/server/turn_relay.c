/*
 * turn_relay.c - the TURN relay (RFC 8656), see turn_relay.h. Section numbers below are
 * RFC 8656's.
 *
 *   ChannelData (11.4):
 *     0                   1                   2                   3
 *     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *    |         Channel Number        |            Length             |
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *    /                       Application Data                        /
 *    +-------------------------------+
 */
#define _GNU_SOURCE
#include "turn_relay.h"
#include "json.h"
#include "revoked.h"

#include <errno.h>
#include <stdio.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h"
#include "ev_kind.h"
#include "methods.h"
#include "xdp.h"

/* RFC 8656 11: channels 0x4000-0x4FFF. RFC 5766 allowed up to 0x7FFF, and
 * clients still use that range (coturn's turnutils_uclient does): accepted,
 * as coturn accepts it, for interoperability. */
#define CHANNEL_MIN 0x4000
#define CHANNEL_MAX 0x7FFF

/* ---- the 5-tuple table and the wheel ---- */

static size_t tuple_hash(const skd_turn *t, const stunkit_addr *client, const stunkit_addr *server)
{
    uint32_t h = 2166136261u ^ t->seed;
    for (size_t i = 0; i < 16; i++)
        h = (h ^ client->ip[i] ^ (uint32_t)(server->ip[i] << 8)) * 16777619u;
    h = (h ^ client->port ^ ((uint32_t)server->port << 16)) * 16777619u;
    return (h ^ (h >> 15)) & (SKD_TURN_BUCKETS - 1);
}

static skd_alloc *find(skd_turn *t, const stunkit_addr *client, const stunkit_addr *server)
{
    for (skd_alloc *a = t->by_tuple[tuple_hash(t, client, server)]; a; a = a->hnext)
        if (stunkit_addr_equal(&a->client, client) && stunkit_addr_equal(&a->server, server))
            return a;
    return NULL;
}

static void wheel_unlink(skd_alloc *a)
{
    if (!a->wprev)
        return;
    *a->wprev = a->wnext;
    if (a->wnext)
        a->wnext->wprev = a->wprev;
    a->wnext = NULL;
    a->wprev = NULL;
}

static void wheel_put(skd_turn *t, skd_alloc *a)
{
    wheel_unlink(a);
    uint64_t s = (a->expires_ms + 999) / 1000;
    if (s < t->wheel_s)
        s = t->wheel_s;
    skd_alloc **slot = &t->wheel[s % SKD_TURN_WHEEL];
    a->wnext = *slot;
    if (*slot)
        (*slot)->wprev = &a->wnext;
    a->wprev = slot;
    *slot = a;
}

static void offload(skd_turn *t, skd_alloc *a, uint64_t now);

static void alloc_free(skd_turn *t, skd_alloc *a)
{
    skd_turn_limits_put(t->limits, a->quota);
    a->quota = NULL;
    if (a->xdp_id) {
        offload(t, a, UINT64_MAX); /* everything expired: every entry removed */
        skd_xdp_quota_del(t->xdp, a->xdp_id);
        a->xdp_id = 0;
    }
    skd_alloc **pp = &t->by_tuple[tuple_hash(t, &a->client, &a->server)];
    while (*pp && *pp != a)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = a->hnext;
    wheel_unlink(a);
    /* The relay sockets leave the epoll set now but stay open until
     * skd_turn_reap(), after the worker's current batch: datagrams relayed
     * earlier in the batch are queued by descriptor number and sent at its
     * end. Closed here, the number could be handed to the next socket
     * opened (another allocation's relay, an accepted connection) and the
     * queued payload would leave through it, to a stranger. */
    if (a->relay.fd >= 0)
        epoll_ctl(t->epfd, EPOLL_CTL_DEL, a->relay.fd, NULL);
    if (a->relay2.fd >= 0)
        epoll_ctl(t->epfd, EPOLL_CTL_DEL, a->relay2.fd, NULL);
    /* Freed after the worker's current batch of epoll events, which may
     * still hold a pointer to its relay sockets. */
    a->relay.kind = a->relay2.kind = EV_DEAD;
    a->hnext = t->dead;
    t->dead = a;
    t->n_allocs--;
}

void skd_turn_reap(skd_turn *t)
{
    while (t->dead) {
        skd_alloc *a = t->dead;
        t->dead = a->hnext;
        if (a->relay.fd >= 0)
            close(a->relay.fd);
        if (a->relay2.fd >= 0)
            close(a->relay2.fd);
        free(a->perms);
        free(a->chans);
        free(a);
    }
}

int skd_turn_init(skd_turn *t, const skd_turn_cfg *cfg, skd_turn_limits *limits, int epfd, int workers,
                  uint32_t seed, uint64_t now_ms)
{
    memset(t, 0, sizeof(*t));
    t->cfg = cfg;
    t->limits = limits;
    t->epfd = epfd;
    t->seed = seed;
    t->wheel_s = now_ms / 1000;
    t->total_bps = cfg->total_bps / (uint64_t)(workers > 0 ? workers : 1);
    if (cfg->total_bps && !t->total_bps)
        t->total_bps = 1;
    return 0;
}

void skd_turn_free(skd_turn *t)
{
    skd_turn_reap(t);
    for (size_t i = 0; i < SKD_TURN_BUCKETS; i++)
        while (t->by_tuple[i])
            alloc_free(t, t->by_tuple[i]);
    skd_turn_reap(t);
}

skd_alloc *skd_turn_find(skd_turn *t, const stunkit_addr *client, const stunkit_addr *server)
{
    return find(t, client, server);
}

void skd_turn_conn_closed(skd_turn *t, const stunkit_addr *client, const stunkit_addr *server)
{
    skd_alloc *a = find(t, client, server);
    if (a)
        alloc_free(t, a);
}

int skd_turn_kick(skd_turn *t, const char *user, size_t len)
{
    int n = 0;
    for (size_t b = 0; b < SKD_TURN_BUCKETS; b++)
        for (skd_alloc *a = t->by_tuple[b], *next; a; a = next) {
            next = a->hnext;
            if (skd_revoked_match(a->username, a->username_len, user, len)) {
                alloc_free(t, a);
                n++;
            }
        }
    return n;
}

size_t skd_turn_describe(const skd_turn *t, uint64_t now_ms, char *buf, size_t cap, int *first, int *left)
{
    static const char *const tr[] = {"udp", "tcp", "tls", "dtls"};
    size_t off = 0;
    for (size_t b = 0; b < SKD_TURN_BUCKETS; b++)
        for (const skd_alloc *a = t->by_tuple[b]; a; a = a->hnext) {
            char one[1024], user[300], client[STUNKIT_ADDRSTRLEN], r1[STUNKIT_ADDRSTRLEN], r2[STUNKIT_ADDRSTRLEN + 8];
            skd_json_text(user, sizeof(user), a->username, a->username_len);
            stunkit_addr_format(&a->client, client, sizeof(client));
            stunkit_addr_format(&a->relay.addr, r1, sizeof(r1));
            r2[0] = 0;
            if (a->relay2.fd >= 0) {
                char x[STUNKIT_ADDRSTRLEN];
                stunkit_addr_format(&a->relay2.addr, x, sizeof(x));
                snprintf(r2, sizeof(r2), ", \"%s\"", x);
            }
            int n = snprintf(one, sizeof(one),
                             "%s{\"user\": %s, \"client\": \"%s\", \"transport\": \"%s\", \"relayed\": [\"%s\"%s], "
                             "\"lifetime_left_s\": %llu, \"to_peer\": %llu, \"from_peer\": %llu, \"permissions\": %d, "
                             "\"channels\": %d}",
                             *first ? ",\n  " : "\n  ", user, client,
                             (unsigned)a->transport < 4 ? tr[a->transport] : "?", r1, r2,
                             (unsigned long long)(a->expires_ms > now_ms ? (a->expires_ms - now_ms) / 1000 : 0),
                             (unsigned long long)a->to_peer, (unsigned long long)a->from_peer, a->n_perms, a->n_chans);
            if (n < 0 || (size_t)n >= cap - off) {
                (*left)++;
                continue;
            }
            memcpy(buf + off, one, (size_t)n + 1);
            off += (size_t)n;
            (*first)++;
        }
    return off;
}

void skd_turn_tick(skd_turn *t, uint64_t now_ms)
{
    skd_turn_limits_expire(t->limits, now_ms);
    uint64_t now_s = now_ms / 1000;
    /* a long pause (no events) must not walk more than the wheel once */
    if (now_s > t->wheel_s + SKD_TURN_WHEEL)
        t->wheel_s = now_s - SKD_TURN_WHEEL;
    for (; t->wheel_s <= now_s; t->wheel_s++) {
        skd_alloc *a = t->wheel[t->wheel_s % SKD_TURN_WHEEL];
        while (a) {
            skd_alloc *next = a->wnext;
            if (a->expires_ms <= now_ms) {
                t->allocations_expired++;
                alloc_free(t, a);
            } else if ((a->expires_ms + 999) / 1000 != t->wheel_s) {
                wheel_put(t, a); /* refreshed since: a later second */
            }
            a = next;
        }
    }
}

/* ---- bandwidth ---- */

/* Token buckets of one second's worth, per allocation and per worker: 1
 * when len bytes may be relayed now. */
static int bucket_take(double *tokens, uint64_t *at_ms, uint64_t rate, size_t len, uint64_t now)
{
    if (!rate)
        return 1;
    if (*at_ms == 0 || now < *at_ms) {
        *tokens = (double)rate;
    } else {
        *tokens += (double)rate * (double)(now - *at_ms) / 1000.0;
        if (*tokens > (double)rate)
            *tokens = (double)rate;
    }
    *at_ms = now;
    if (*tokens < (double)len)
        return 0;
    *tokens -= (double)len;
    return 1;
}

static int bandwidth_ok(skd_turn *t, skd_alloc *a, size_t len, uint64_t now)
{
    if (!bucket_take(&a->tokens, &a->tokens_ms, t->cfg->alloc_bps, len, now) ||
        !bucket_take(&t->total_tokens, &t->total_ms, t->total_bps, len, now)) {
        t->over_quota++;
        return 0;
    }
    return 1;
}

/* ---- permissions and channels (checked lazily against now) ---- */

static skd_perm *perm_find(skd_alloc *a, const stunkit_addr *peer, uint64_t now)
{
    for (int i = 0; i < a->n_perms; i++)
        if (a->perms[i].expires_ms > now && stunkit_addr_ip_equal(&a->perms[i].ip, peer))
            return &a->perms[i];
    return NULL;
}

/* Installs or refreshes a permission; -1 when the allocation has its maximum. */
static int perm_set(skd_turn *t, skd_alloc *a, const stunkit_addr *peer, uint64_t now)
{
    skd_perm *p = NULL;
    for (int i = 0; i < a->n_perms && !p; i++)
        if (stunkit_addr_ip_equal(&a->perms[i].ip, peer) || a->perms[i].expires_ms <= now)
            p = &a->perms[i];
    if (!p) {
        if (a->n_perms >= t->cfg->max_permissions)
            return -1;
        p = &a->perms[a->n_perms++];
    }
    p->ip = *peer;
    p->ip.port = 0;
    p->expires_ms = now + (uint64_t)t->cfg->permission_s * 1000u;
    return 0;
}

static skd_channel *chan_by_number(skd_alloc *a, uint16_t n, uint64_t now)
{
    for (int i = 0; i < a->n_chans; i++)
        if (a->chans[i].number == n && a->chans[i].expires_ms > now)
            return &a->chans[i];
    return NULL;
}

static skd_channel *chan_by_peer(skd_alloc *a, const stunkit_addr *peer, uint64_t now)
{
    for (int i = 0; i < a->n_chans; i++)
        if (a->chans[i].expires_ms > now && stunkit_addr_equal(&a->chans[i].peer, peer))
            return &a->chans[i];
    return NULL;
}

/* ---- the XDP channel offload (xdp.h) ---- */

/* Brings the program's entries for a's channels in line with them: a live
 * channel with a live permission is entered (alive for the smallest of the
 * three lifetimes), anything else removed. now UINT64_MAX removes all. */
static void offload(skd_turn *t, skd_alloc *a, uint64_t now)
{
    if (!a->xdp_id)
        return;
    skd_xdp_channel c;
    memset(&c, 0, sizeof(c));
    c.client = a->client;
    c.server = a->server;
    c.alloc_id = a->xdp_id;
    /* two passes: removals first, since a peer or number now bound in
     * another slot has the same key as the stale entry */
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < a->n_chans; i++) {
            skd_channel *ch = &a->chans[i];
            skd_perm *p = ch->expires_ms > now && a->expires_ms > now ? perm_find(a, &ch->peer, now) : NULL;
            int stale = ch->published &&
                        (!p || ch->pub_number != ch->number || !stunkit_addr_equal(&ch->pub_peer, &ch->peer));
            if (pass == 0 && stale) {
                c.number = ch->pub_number;
                c.peer = ch->pub_peer;
            } else if (pass == 1 && p) {
                c.number = ch->number;
                c.peer = ch->peer;
            } else {
                continue;
            }
            /* a dual allocation relays from the address of the peer's family */
            c.relay = (a->relay2.fd >= 0 && c.peer.family == a->relay2.addr.family) ? a->relay2.addr : a->relay.addr;
            if (pass == 0) {
                skd_xdp_channel_del(t->xdp, &c);
                ch->published = 0;
                continue;
            }
            uint64_t until = ch->expires_ms;
            if (p->expires_ms < until)
                until = p->expires_ms;
            if (a->expires_ms < until)
                until = a->expires_ms;
            if (skd_xdp_channel_put(t->xdp, &c, until - now) == 0) {
                ch->published = 1;
                ch->pub_number = ch->number;
                ch->pub_peer = ch->peer;
            }
        }
    }
}

/* ---- answers ---- */

/* A success answer with the given address attributes and LIFETIME. */
static skd_verdict success(const skd_handler_cfg *cfg, const skd_request *rq, const stunkit_msg *m,
                           const skd_auth_verdict *authed, skd_outbox *ob, const skd_alloc *a, int lifetime,
                           int with_mapped, const uint8_t *token)
{
    stunkit_writer w;
    size_t room;
    uint8_t *out = skd_outbox_room(ob, &room);
    if (!out)
        return SKD_DROP_NOBUF;
    stunkit_writer_init(&w, out, room, m->method, STUNKIT_CLASS_SUCCESS, m->tid);
    if (a && with_mapped) {
        stunkit_put_addr(&w, STUNKIT_ATTR_XOR_RELAYED_ADDRESS, &a->relay.addr);
        if (a->relay2.fd >= 0) /* 7.2: a dual allocation carries both */
            stunkit_put_addr(&w, STUNKIT_ATTR_XOR_RELAYED_ADDRESS, &a->relay2.addr);
        if (a->relay2_error) {
            /* ADDRESS-ERROR-CODE (RFC 8656 18.13): family, code, reason */
            uint8_t v[4 + 20] = {0x02, 0, (uint8_t)(a->relay2_error / 100), (uint8_t)(a->relay2_error % 100)};
            const char *why = a->relay2_error == 440 ? "No IPv6 relay here" : "Insufficient Capacity";
            size_t wl = strlen(why);
            memcpy(v + 4, why, wl);
            stunkit_put(&w, STUNKIT_ATTR_ADDRESS_ERROR_CODE, v, 4 + wl);
        }
        stunkit_put_addr(&w, STUNKIT_ATTR_XOR_MAPPED_ADDRESS, &rq->src);
    }
    if (lifetime >= 0)
        stunkit_put_u32(&w, STUNKIT_ATTR_LIFETIME, (uint32_t)lifetime);
    if (token)
        stunkit_put(&w, STUNKIT_ATTR_RESERVATION_TOKEN, token, 8);
    return skd_answer_finish(cfg, rq, m, authed, &w, ob);
}

#define FAIL(code, reason) skd_reply_error(cfg, rq, m, authed, (code), (reason), NULL, 0, ob)

/* The authenticated user of a request: its name (USERNAME, or the user a
 * USERHASH names); "" without authentication (stunkitd refuses --turn
 * without credentials, but the handler is also run without them: tests,
 * the fuzzer). */
static const char *user_of(const skd_auth_verdict *authed, size_t *len)
{
    *len = authed ? authed->user_len : 0;
    return authed ? authed->user : "";
}

/* The request's user is the allocation's. */
static int same_user(const skd_alloc *a, const skd_auth_verdict *authed)
{
    size_t len;
    const char *user = user_of(authed, &len);
    return len == a->username_len && memcmp(user, a->username, len) == 0;
}

static uint32_t lifetime_of(const skd_turn_cfg *c, const stunkit_msg *m)
{
    stunkit_attr at;
    uint32_t want = c->default_lifetime_s;
    if (stunkit_msg_find(m, STUNKIT_ATTR_LIFETIME, &at) == 0 && stunkit_attr_u32(&at, &want) != 0)
        want = c->default_lifetime_s;
    /* 7.2: "the server [...] computes [...] the minimum of the client's
     * requested lifetime and the server's maximum allowed lifetime", and at
     * least the default */
    if (want > c->max_lifetime_s)
        want = c->max_lifetime_s;
    if (want < c->default_lifetime_s && want != 0)
        want = c->default_lifetime_s;
    return want;
}

/* A UDP socket bound to ip:port, or -1. */
static int bind_udp(const stunkit_addr *ip, uint16_t port)
{
    int af = ip->family == STUNKIT_AF_INET6 ? AF_INET6 : AF_INET;
    int fd = socket(af, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (af == AF_INET6) {
        int one = 1;
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    }
    stunkit_addr bind_to = *ip;
    bind_to.port = port;
    struct sockaddr_storage ss;
    int len = stunkit_addr_to_sockaddr(&bind_to, &ss);
    if (bind(fd, (struct sockaddr *)&ss, (socklen_t)len) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int watch_relay(skd_turn *t, skd_alloc *a, skd_relay *r, int fd, const stunkit_addr *ip, uint16_t port)
{
    r->kind = EV_RELAY;
    r->fd = fd;
    r->addr = *ip;
    r->addr.port = port;
    r->alloc = a;
    struct epoll_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.events = EPOLLIN;
    ev.data.ptr = r;
    if (epoll_ctl(t->epfd, EPOLL_CTL_ADD, fd, &ev) == 0)
        return 0;
    r->fd = -1;
    close(fd);
    return -1;
}

static int watch(skd_turn *t, skd_alloc *a, int fd, const stunkit_addr *ip, uint16_t port)
{
    return watch_relay(t, a, &a->relay, fd, ip, port);
}

/* The first port of a seeded walk over the relay range: RFC 8656 recommends
 * randomized ports (RFC 6056); its Algorithm 1 (a random start, then the
 * next port on each collision) visits every port of any range. */
static uint32_t walk_start(const skd_turn *t, uint32_t span, uint32_t salt)
{
    uint64_t x = ((uint64_t)t->seed << 32 | salt) + t->allocations_made * 0x9E3779B97F4A7C15ull;
    x ^= x >> 31;
    x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 29;
    return (uint32_t)(x % span);
}

#define PORT_TRIES 128 /* binds tried per relay socket */

/* The relay of a dual allocation's second family: any free port. */
static int open_second(skd_turn *t, const stunkit_addr *ip, skd_alloc *a)
{
    const skd_turn_cfg *c = t->cfg;
    uint32_t span = (uint32_t)(c->port_max - c->port_min) + 1u;
    uint32_t start = walk_start(t, span, 2);
    for (uint32_t k = 0; k < span && k < PORT_TRIES; k++) {
        uint16_t port = (uint16_t)(c->port_min + (start + k) % span);
        int fd = bind_udp(ip, port);
        if (fd >= 0)
            return watch_relay(t, a, &a->relay2, fd, ip, port);
        if (errno != EADDRINUSE && errno != EACCES)
            return -1;
    }
    return -1;
}

/* The relay address for a family: configured, else the one the client reached. */
static int relay_ip_for(const skd_turn_cfg *c, const skd_request *rq, int family, stunkit_addr *ip)
{
    memset(ip, 0, sizeof(*ip));
    for (int i = 0; i < c->n_relay_ip; i++)
        if (c->relay_ip[i].family == family) {
            *ip = c->relay_ip[i];
            return 0;
        }
    if (rq->dst.family == family && !skd_is_wildcard(&rq->dst)) {
        *ip = rq->dst;
        return 0;
    }
    return -1;
}

/* Opens a relay socket on ip in the configured port range; even: an even
 * port, and with reserve also the next one, kept under a new random token
 * for a later Allocate (server-wide, turn_limits.h). 0, or the error code:
 * 508 (no port), or the limits' 486/508 for the kept port. */
static int open_relay(skd_turn *t, const stunkit_addr *ip, skd_alloc *a, int even, int reserve, uint8_t token[8],
                      const skd_auth_verdict *authed, uint64_t now)
{
    const skd_turn_cfg *c = t->cfg;
    uint32_t span = (uint32_t)(c->port_max - c->port_min) + 1u;
    uint32_t start = walk_start(t, span, 1);
    if (even)
        start &= ~1u;
    for (uint32_t k = 0, tries = 0; k < span && tries < PORT_TRIES; k++) {
        uint16_t port = (uint16_t)(c->port_min + (start + k) % span);
        if (even && ((port & 1u) || port == 65535 || port + 1u > c->port_max))
            continue;
        tries++;
        int fd = bind_udp(ip, port);
        if (fd < 0) {
            if (errno != EADDRINUSE && errno != EACCES)
                return 508;
            continue;
        }
        if (reserve) {
            int fd2 = bind_udp(ip, (uint16_t)(port + 1));
            if (fd2 < 0) {
                close(fd);
                continue;
            }
            stunkit_addr kept = *ip;
            kept.port = (uint16_t)(port + 1);
            int code = getrandom(token, 8, 0) == 8 ? 0 : 508;
            size_t ulen;
            const char *user = user_of(authed, &ulen);
            if (!code)
                code = skd_turn_limits_keep(t->limits, user, ulen, fd2, &kept, token, now);
            if (code) {
                close(fd);
                close(fd2);
                return code;
            }
        }
        return watch(t, a, fd, ip, port) == 0 ? 0 : 508;
    }
    return 508;
}

/* The port kept under token, handed to a: 0, or -1 when there is none. */
static int claim_reservation(skd_turn *t, const uint8_t *token, skd_alloc *a, uint64_t now)
{
    stunkit_addr addr;
    int fd = skd_turn_limits_claim(t->limits, token, now, &addr);
    if (fd < 0)
        return -1;
    return watch(t, a, fd, &addr, addr.port);
}

/* ---- the methods ---- */

/* 7.2 Receiving an Allocate Request */
/*
 * RFC 8489 10: "The server MUST include at least one ALTERNATE-SERVER
 * attribute in the error response, which MUST contain an IP address of the
 * same address family as the source IP address of the request message. The
 * server SHOULD include an additional ALTERNATE-SERVER attribute, after the
 * mandatory one, that contains an IP address of the address family other
 * than the source IP address". "If the transaction uses TLS or DTLS, if the
 * transaction is authenticated by a MESSAGE-INTEGRITY-SHA256 attribute, and
 * if the server wants to redirect to a server that uses a different
 * certificate, then it MUST include an ALTERNATE-DOMAIN attribute". The
 * answer is signed like any other to an authenticated request, so the
 * client can trust where it is sent. A client always gets the same
 * alternate (a hash of its address), retransmissions included.
 */
static int redirected(const skd_handler_cfg *cfg, const skd_request *rq, const stunkit_msg *m,
                      const skd_auth_verdict *authed, skd_outbox *ob, skd_turn *t, skd_verdict *out)
{
    const skd_turn_cfg *c = t->cfg;
    int draining = t->limits && __atomic_load_n(&t->limits->draining, __ATOMIC_RELAXED);
    int loaded = c->redirect_above && t->limits &&
                 __atomic_load_n(&t->limits->n_held, __ATOMIC_RELAXED) >= c->redirect_above;
    if (!draining && !loaded)
        return 0;
    const stunkit_addr *same[SKD_MAX_ALTERNATES], *other[SKD_MAX_ALTERNATES];
    int ns = 0, no = 0;
    for (int i = 0; i < c->n_alternates; i++) {
        if (c->alternates[i].family == rq->src.family)
            same[ns++] = &c->alternates[i];
        else
            other[no++] = &c->alternates[i];
    }
    if (!ns) {
        if (!draining)
            return 0; /* loaded, and nowhere to send this family: served here */
        *out = skd_reply_error(cfg, rq, m, authed, 508, "Insufficient Capacity: the server is draining", NULL, 0, ob);
        return 1;
    }
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < (rq->src.family == STUNKIT_AF_INET ? 4u : 16u); i++)
        h = (h ^ rq->src.ip[i]) * 16777619u;
    size_t room;
    uint8_t *buf = skd_outbox_room(ob, &room);
    if (!buf) {
        *out = SKD_DROP_NOBUF;
        return 1;
    }
    stunkit_writer w;
    stunkit_writer_init(&w, buf, room, m->method, STUNKIT_CLASS_ERROR, m->tid);
    stunkit_put_error_code(&w, 300, draining ? "Try Alternate: this server is draining" : "Try Alternate: this server is full");
    stunkit_put_addr(&w, STUNKIT_ATTR_ALTERNATE_SERVER, same[h % (uint32_t)ns]);
    if (no)
        stunkit_put_addr(&w, STUNKIT_ATTR_ALTERNATE_SERVER, other[h % (uint32_t)no]);
    if (c->alternate_domain && (rq->transport == STUNKIT_TLS || rq->transport == STUNKIT_DTLS) && authed &&
        authed->sha256)
        stunkit_put(&w, STUNKIT_ATTR_ALTERNATE_DOMAIN, c->alternate_domain, strlen(c->alternate_domain));
    if (cfg->software)
        stunkit_put(&w, STUNKIT_ATTR_SOFTWARE, cfg->software, cfg->software_len);
    if (authed && authed->key_len) {
        if (authed->sha256)
            stunkit_put_integrity_sha256(&w, authed->key, authed->key_len, 32);
        else
            stunkit_put_integrity(&w, authed->key, authed->key_len);
    }
    if (m->fp_off)
        stunkit_put_fingerprint(&w);
    int len = stunkit_writer_finish(&w);
    *out = len > 0 && skd_outbox_commit(ob, len, &rq->src, rq->ip_index, rq->port_index, 300, 0) ? SKD_ANSWERED
                                                                                                   : SKD_DROP_NOBUF;
    return 1;
}

skd_verdict skd_turn_allocate(const skd_handler_cfg *cfg, const skd_request *rq, const stunkit_msg *m,
                              const skd_auth_verdict *authed, skd_outbox *ob)
{
    skd_turn *t = rq->turn;
    const skd_turn_cfg *c = t->cfg;
    stunkit_attr at, u0;
    skd_alloc *a = find(t, &rq->src, &rq->dst);
    if (a) {
        /* "If the 5-tuple is currently in use by an existing allocation
         * [...] the server rejects the request with a 437 (Allocation
         * Mismatch) error" - unless it is a retransmission of the request
         * that made it, which gets the same success again. */
        if (!memcmp(a->tid, m->tid, STUNKIT_TID_LEN) && same_user(a, authed))
            return success(cfg, rq, m, authed, ob, a, (int)((a->expires_ms - rq->now_ms) / 1000), 1, NULL);
        return FAIL(437, NULL);
    }
    /* "The server checks if the request contains a REQUESTED-TRANSPORT
     * attribute. If the REQUESTED-TRANSPORT attribute is not included or is
     * malformed, the server rejects the request with a 400 (Bad Request)
     * error. Otherwise, if the attribute indicates an unsupported transport
     * protocol, the server rejects the request with a 442" */
    if (stunkit_msg_find(m, STUNKIT_ATTR_REQUESTED_TRANSPORT, &at) != 0 || at.len != 4)
        return FAIL(400, "REQUESTED-TRANSPORT missing");
    if (at.value[0] != 17)
        return FAIL(442, NULL);
    /* DONT-FRAGMENT is accepted: Linux sets DF on UDP by default (path MTU
     * discovery), so the relayed datagrams go out unfragmented. */
    int even = 0, reserve = 0;
    const uint8_t *token = NULL;
    if (stunkit_msg_find(m, STUNKIT_ATTR_EVEN_PORT, &at) == 0) {
        if (at.len < 1)
            return FAIL(400, "Bad EVEN-PORT");
        even = 1;
        reserve = (at.value[0] & 0x80) != 0;
    }
    if (stunkit_msg_find(m, STUNKIT_ATTR_RESERVATION_TOKEN, &at) == 0) {
        /* "If the request contains a RESERVATION-TOKEN attribute and [...]
         * EVEN-PORT [or REQUESTED-ADDRESS-FAMILY], the server rejects the
         * request with a 400" */
        if (at.len != 8 || even || stunkit_msg_find(m, STUNKIT_ATTR_REQUESTED_ADDRESS_FAMILY, &u0) == 0)
            return FAIL(400, "RESERVATION-TOKEN with EVEN-PORT or REQUESTED-ADDRESS-FAMILY");
        token = at.value;
    }
    /* REQUESTED-ADDRESS-FAMILY: 0x01 IPv4 (the default), 0x02 IPv6 */
    int family = STUNKIT_AF_INET;
    if (stunkit_msg_find(m, STUNKIT_ATTR_REQUESTED_ADDRESS_FAMILY, &at) == 0) {
        if (at.len != 4)
            return FAIL(400, "Bad REQUESTED-ADDRESS-FAMILY");
        if (at.value[0] == 0x01)
            family = STUNKIT_AF_INET;
        else if (at.value[0] == 0x02)
            family = STUNKIT_AF_INET6;
        else
            return FAIL(440, NULL);
    }
    /* ADDITIONAL-ADDRESS-FAMILY (7.2): "If the request contains both
     * REQUESTED-ADDRESS-FAMILY and ADDITIONAL-ADDRESS-FAMILY, the server MUST
     * reject it with 400"; its only allowed value is IPv6, and the first
     * address is then IPv4 */
    int dual = 0;
    if (stunkit_msg_find(m, STUNKIT_ATTR_ADDITIONAL_ADDRESS_FAMILY, &at) == 0) {
        if (stunkit_msg_find(m, STUNKIT_ATTR_REQUESTED_ADDRESS_FAMILY, &u0) == 0 || at.len != 4 ||
            at.value[0] != 0x02 || token)
            return FAIL(400, "Bad ADDITIONAL-ADDRESS-FAMILY");
        dual = 1;
    }
    stunkit_addr ip, ip6;
    if (relay_ip_for(c, rq, family, &ip) != 0)
        return FAIL(440, NULL);
    /* draining, or loaded: sent elsewhere (before anything is taken) */
    skd_verdict moved;
    if (redirected(cfg, rq, m, authed, ob, t, &moved))
        return moved;
    /* quotas, server-wide (turn_limits.h): 486 per user, 508 in total */
    skd_turn_user *quota = NULL;
    size_t ulen;
    const char *user = user_of(authed, &ulen);
    int code = skd_turn_limits_take(t->limits, user, ulen, &quota);
    if (code)
        return FAIL(code, NULL);
    a = calloc(1, sizeof(*a));
    if (a) {
        a->relay.fd = -1;
        a->relay2.fd = -1;
        a->perms = calloc((size_t)c->max_permissions, sizeof(skd_perm));
        a->chans = calloc((size_t)c->max_channels, sizeof(skd_channel));
    }
    uint8_t new_token[8];
    code = !a || !a->perms || !a->chans ? 508
           : token                     ? (claim_reservation(t, token, a, rq->now_ms) == 0 ? 0 : 508)
                                       : open_relay(t, &ip, a, even, reserve, new_token, authed, rq->now_ms);
    if (code) {
        skd_turn_limits_put(t->limits, quota);
        if (a) {
            free(a->perms);
            free(a->chans);
            if (a->relay.fd >= 0)
                close(a->relay.fd); /* never in a queued send: it was opened just now */
            free(a);
        }
        return FAIL(code, NULL);
    }
    a->quota = quota;
    if (dual) {
        /* the second family may fail on its own: then ADDRESS-ERROR-CODE */
        if (relay_ip_for(c, rq, STUNKIT_AF_INET6, &ip6) != 0)
            a->relay2_error = 440;
        else if (open_second(t, &ip6, a) != 0)
            a->relay2_error = 508;
    }
    a->client = rq->src;
    a->server = rq->dst;
    a->conn = rq->conn;
    a->transport = rq->transport;
    a->ip_index = rq->ip_index;
    a->port_index = rq->port_index;
    memcpy(a->username, user, ulen);
    a->username_len = ulen;
    memcpy(a->tid, m->tid, STUNKIT_TID_LEN);
    if (!a->conn && skd_xdp_relaying(t->xdp))
        a->xdp_id = skd_xdp_quota_add(t->xdp); /* its channels go to XDP as they are bound */
    uint32_t life = lifetime_of(c, m);
    if (life == 0)
        life = c->default_lifetime_s;
    a->expires_ms = rq->now_ms + (uint64_t)life * 1000u;
    size_t h = tuple_hash(t, &a->client, &a->server);
    a->hnext = t->by_tuple[h];
    t->by_tuple[h] = a;
    t->n_allocs++;
    t->allocations_made++;
    wheel_put(t, a);
    return success(cfg, rq, m, authed, ob, a, (int)life, 1, reserve ? new_token : NULL);
}

/* The allocation of the request's 5-tuple, used by its own user: 0, or
 * 437 (none: "Allocation Mismatch") / 441 ("Wrong Credentials"). */
static int own_allocation(skd_turn *t, const skd_request *rq, const skd_auth_verdict *authed, skd_alloc **out)
{
    *out = find(t, &rq->src, &rq->dst);
    if (!*out)
        return 437;
    return same_user(*out, authed) ? 0 : 441;
}

/* 7.5 Receiving a Refresh Request */
skd_verdict skd_turn_refresh(const skd_handler_cfg *cfg, const skd_request *rq, const stunkit_msg *m,
                             const skd_auth_verdict *authed, skd_outbox *ob)
{
    skd_turn *t = rq->turn;
    skd_alloc *a;
    int code = own_allocation(t, rq, authed, &a);
    if (code)
        return FAIL(code, NULL);
    stunkit_attr at;
    uint32_t want = t->cfg->default_lifetime_s;
    if (stunkit_msg_find(m, STUNKIT_ATTR_LIFETIME, &at) == 0 && stunkit_attr_u32(&at, &want) != 0)
        return FAIL(400, "Bad LIFETIME");
    if (want == 0) {
        /* "If the requested lifetime is zero, then the server MUST delete
         * the allocation" (and answers with LIFETIME 0) */
        alloc_free(t, a);
        return success(cfg, rq, m, authed, ob, NULL, 0, 0, NULL);
    }
    uint32_t life = lifetime_of(t->cfg, m);
    a->expires_ms = rq->now_ms + (uint64_t)life * 1000u;
    wheel_put(t, a);
    offload(t, a, rq->now_ms);
    return success(cfg, rq, m, authed, ob, NULL, (int)life, 0, NULL);
}

/* 1 when peer (canonical) is one of the server's own sockets: every
 * listening address and port, TLS/DTLS and metrics included; a wildcard
 * listener is on every IP. */
static int own_socket(const skd_turn *t, const stunkit_addr *peer)
{
    for (int i = 0; i < t->n_own; i++) {
        const stunkit_addr *own = &t->own[i];
        if (own->family == peer->family && own->port == peer->port &&
            (stunkit_addr_ip_equal(own, peer) || skd_is_wildcard(own)))
            return 1;
    }
    return 0;
}

/* Checks a peer address for an allocation: 0, or the error code. */
static int peer_check(const skd_turn *t, const skd_alloc *a, const stunkit_addr *peer, const skd_handler_cfg *cfg)
{
    stunkit_addr canon;
    skd_peer_canonical(peer, &canon);
    /* 9.1: "If a XOR-PEER-ADDRESS attribute contains an address of an
     * address family that is not the same as that of a relayed transport
     * address for the allocation, the server MUST generate an error
     * response with the 443 (Peer Address Family Mismatch) response code." */
    if (peer->family != a->relay.addr.family && (a->relay2.fd < 0 || peer->family != a->relay2.addr.family))
        return 443;
    if (!skd_peer_allowed(&t->cfg->policy, peer))
        return 403;
    (void)cfg;
    if (own_socket(t, &canon))
        return 403;
    return 0;
}

/* 9.2 Receiving a CreatePermission Request */
skd_verdict skd_turn_create_permission(const skd_handler_cfg *cfg, const skd_request *rq, const stunkit_msg *m,
                                       const skd_auth_verdict *authed, skd_outbox *ob)
{
    skd_turn *t = rq->turn;
    skd_alloc *a;
    int code = own_allocation(t, rq, authed, &a);
    if (code)
        return FAIL(code, NULL);
    /* "each XOR-PEER-ADDRESS [...] checked [...] If any of them fail, the
     * server MUST NOT install any permission": check all, then install */
    stunkit_addr peers[16];
    int n = 0;
    stunkit_attr_iter it;
    stunkit_attr at;
    stunkit_attr_iter_init(&it, m, 0);
    while (stunkit_attr_next(&it, &at) == 1) {
        if (at.type != STUNKIT_ATTR_XOR_PEER_ADDRESS)
            continue;
        if (n == 16 || stunkit_attr_addr(m, &at, &peers[n]) != 0)
            return FAIL(400, "Bad XOR-PEER-ADDRESS");
        code = peer_check(t, a, &peers[n], cfg);
        if (code) {
            if (code == 403)
                t->peer_refused++;
            return FAIL(code, NULL);
        }
        n++;
    }
    if (n == 0)
        return FAIL(400, "XOR-PEER-ADDRESS missing");
    for (int i = 0; i < n; i++)
        if (perm_set(t, a, &peers[i], rq->now_ms) != 0)
            return FAIL(508, "Too many permissions");
    offload(t, a, rq->now_ms); /* a channel's entry lives as long as its permission */
    return success(cfg, rq, m, authed, ob, NULL, -1, 0, NULL);
}

/* 11.2 Receiving a ChannelBind Request */
skd_verdict skd_turn_channel_bind(const skd_handler_cfg *cfg, const skd_request *rq, const stunkit_msg *m,
                                  const skd_auth_verdict *authed, skd_outbox *ob)
{
    skd_turn *t = rq->turn;
    skd_alloc *a;
    int code = own_allocation(t, rq, authed, &a);
    if (code)
        return FAIL(code, NULL);
    stunkit_attr at;
    stunkit_addr peer;
    if (stunkit_msg_find(m, STUNKIT_ATTR_CHANNEL_NUMBER, &at) != 0 || at.len != 4)
        return FAIL(400, "CHANNEL-NUMBER missing");
    uint16_t number = (uint16_t)(at.value[0] << 8 | at.value[1]);
    /* "The request contains both a CHANNEL-NUMBER and an XOR-PEER-ADDRESS
     * attribute; The channel number is in the range 0x4000 through 0x4FFF"
     * (0x7FFF here, see CHANNEL_MAX) */
    if (number < CHANNEL_MIN || number > CHANNEL_MAX)
        return FAIL(400, "Channel number out of range");
    if (stunkit_msg_find(m, STUNKIT_ATTR_XOR_PEER_ADDRESS, &at) != 0 || stunkit_attr_addr(m, &at, &peer) != 0)
        return FAIL(400, "XOR-PEER-ADDRESS missing");
    code = peer_check(t, a, &peer, cfg);
    if (code) {
        if (code == 403)
            t->peer_refused++;
        return FAIL(code, NULL);
    }
    /* "The channel number is not currently bound to a different transport
     * address (same transport address is OK); The transport address is not
     * currently bound to a different channel number." */
    skd_channel *byn = chan_by_number(a, number, rq->now_ms), *byp = chan_by_peer(a, &peer, rq->now_ms);
    if ((byn && !stunkit_addr_equal(&byn->peer, &peer)) || (byp && byp->number != number))
        return FAIL(400, "Channel or peer bound otherwise");
    skd_channel *ch = byn;
    if (!ch) {
        for (int i = 0; i < a->n_chans && !ch; i++)
            if (a->chans[i].expires_ms <= rq->now_ms)
                ch = &a->chans[i]; /* an expired binding's slot */
        if (!ch) {
            if (a->n_chans >= t->cfg->max_channels)
                return FAIL(508, "Too many channels");
            ch = &a->chans[a->n_chans++];
        }
    }
    /* the binding and the permission are installed or refreshed together */
    if (perm_set(t, a, &peer, rq->now_ms) != 0)
        return FAIL(508, "Too many permissions");
    ch->number = number;
    ch->peer = peer;
    ch->expires_ms = rq->now_ms + (uint64_t)t->cfg->channel_s * 1000u;
    offload(t, a, rq->now_ms);
    return success(cfg, rq, m, authed, ob, NULL, -1, 0, NULL);
}

/* ---- data ---- */

static int relay_out(skd_turn *t, skd_alloc *a, const stunkit_addr *peer, const uint8_t *data, size_t len,
                     skd_outbox *ob, uint64_t now)
{
    if (!bandwidth_ok(t, a, len, now))
        return 1; /* over the quota: dropped (counted) */
    size_t room;
    uint8_t *out = skd_outbox_room(ob, &room);
    if (!out || len > room)
        return 1;
    memcpy(out, data, len);
    skd_out *o = skd_outbox_commit(ob, (int)len, peer, 0, 0, 0, SKD_OUT_RELAYED);
    if (o) {
        /* a dual allocation sends from the relay of the peer's family */
        o->relay_fd = (a->relay2.fd >= 0 && peer->family == a->relay2.addr.family) ? a->relay2.fd : a->relay.fd;
        a->to_peer++;
        t->relayed_to_peer++;
        t->relayed_to_peer_bytes += len;
    }
    return 1;
}

int skd_turn_from_client(skd_turn *t, const skd_request *rq, skd_outbox *ob)
{
    const uint8_t *p = rq->data;
    if (rq->len < 4)
        return 0;
    if (p[0] >= 0x40 && p[0] <= 0x7F) {
        /* ChannelData: a channel of this 5-tuple's allocation, else dropped */
        skd_alloc *a = find(t, &rq->src, &rq->dst);
        if (!a)
            return 1;
        uint16_t number = (uint16_t)(p[0] << 8 | p[1]), dlen = (uint16_t)(p[2] << 8 | p[3]);
        skd_channel *ch = chan_by_number(a, number, rq->now_ms);
        /* 11.5: over UDP the length may be shorter than the datagram
         * (padding); longer is malformed */
        if (!ch || (size_t)dlen + 4 > rq->len)
            return 1;
        if (!perm_find(a, &ch->peer, rq->now_ms)) {
            t->no_permission++;
            return 1;
        }
        return relay_out(t, a, &ch->peer, p + 4, dlen, ob, rq->now_ms);
    }
    /* a Send indication: method 0x006, class indication */
    if (rq->len < STUNKIT_HEADER_LEN || p[0] != 0x00 || p[1] != 0x16)
        return 0;
    skd_alloc *a = find(t, &rq->src, &rq->dst);
    stunkit_msg m;
    stunkit_attr at;
    stunkit_addr peer;
    if (!a || stunkit_msg_parse(&m, p, rq->len) != 0)
        return 1;
    if (stunkit_msg_find(&m, STUNKIT_ATTR_XOR_PEER_ADDRESS, &at) != 0 || stunkit_attr_addr(&m, &at, &peer) != 0)
        return 1;
    /* 10.2: "If the indication fails the checks [...] or there is no
     * permission for the peer, the indication is silently discarded" */
    if (!perm_find(a, &peer, rq->now_ms)) {
        t->no_permission++;
        return 1;
    }
    /* a permission is for an IP (RFC 8656 9), so the port is checked here:
     * never into one of the server's own sockets */
    stunkit_addr canon;
    skd_peer_canonical(&peer, &canon);
    if (own_socket(t, &canon)) {
        t->peer_refused++;
        return 1;
    }
    if (stunkit_msg_find(&m, STUNKIT_ATTR_DATA, &at) != 0)
        return 1;
    return relay_out(t, a, &peer, at.value, at.len, ob, rq->now_ms);
}

void skd_turn_from_peer(skd_turn *t, skd_relay *r, const stunkit_addr *peer, const uint8_t *data, size_t len,
                        uint64_t now_ms, skd_outbox *ob)
{
    skd_alloc *a = r->alloc;
    /* 10.3: "the server MUST check [...] a permission [...] If no
     * permission exists, the UDP datagram is silently discarded." */
    if (!perm_find(a, peer, now_ms)) {
        t->no_permission++;
        return;
    }
    if (!bandwidth_ok(t, a, len, now_ms))
        return;
    size_t room;
    uint8_t *out = skd_outbox_room(ob, &room);
    if (!out)
        return;
    int n;
    skd_channel *ch = chan_by_peer(a, peer, now_ms);
    if (ch) {
        /* 12.5: "Over TCP and TLS-over-TCP, the ChannelData message MUST be
         * padded to a multiple of four bytes" (the length field does not
         * count the padding); over UDP the padding is left out */
        size_t pad = (a->conn && a->conn->stream) ? (4 - (len & 3u)) & 3u : 0;
        if (len + 4 + pad > room || len > 0xFFFF)
            return;
        out[0] = (uint8_t)(ch->number >> 8);
        out[1] = (uint8_t)ch->number;
        out[2] = (uint8_t)(len >> 8);
        out[3] = (uint8_t)len;
        memcpy(out + 4, data, len);
        memset(out + 4 + len, 0, pad);
        n = (int)(len + 4 + pad);
    } else {
        /* a Data indication; its transaction ID only needs to be random */
        uint8_t tid[STUNKIT_TID_LEN];
        uint64_t x = (t->relayed_to_client + 1) * 0x9E3779B97F4A7C15ull ^ t->seed;
        memcpy(tid, &x, 8);
        memcpy(tid + 8, &t->seed, 4);
        stunkit_writer w;
        stunkit_writer_init(&w, out, room, STUNKIT_METHOD_DATA, STUNKIT_CLASS_INDICATION, tid);
        stunkit_put_addr(&w, STUNKIT_ATTR_XOR_PEER_ADDRESS, peer);
        stunkit_put(&w, STUNKIT_ATTR_DATA, data, len);
        n = stunkit_writer_finish(&w);
    }
    skd_out *o = skd_outbox_commit(ob, n, &a->client, a->ip_index, a->port_index, 0, SKD_OUT_RELAYED);
    if (o) {
        a->from_peer++;
        t->relayed_to_client++;
        t->relayed_to_client_bytes += len;
    }
}
