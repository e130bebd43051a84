/*
 * worker_stream.c - STUN over TCP and TLS (RFC 8489 6.2.2, 6.2.3).
 *
 *   accept -> (TLS handshake) -> conn_read(): frame by the STUN length ->
 *   skd_serve() -> answers appended to the output buffer -> conn_flush().
 *
 * What keeps a hostile client from holding the pool:
 *   - only a complete request counts as activity: bytes trickled one at a
 *     time do not keep a connection alive;
 *   - a request must be complete within the request timeout from its first
 *     byte, and a TLS handshake within the same time from accept;
 *   - TCP and TLS have separate pools; a source has at most per_source
 *     connections per worker;
 *   - when a pool is full, the newcomer evicts the least useful connection
 *     (the one whose last complete request, or accept, is oldest), a
 *     stranger's before a served client's, never one that holds a TURN
 *     allocation (when only those are left, the newcomer is refused);
 *   - a source is an IPv4 address or an IPv6 /64 (source.h);
 *   - a client that pipelines requests (RFC 8489 6.2.2 allows it) gets its
 *     answers as they are made; when they pile up faster than it reads,
 *     reading pauses until the output drains (backpressure, never a close);
 *   - when accept() fails for lack of descriptors, a reserved descriptor is
 *     given up to accept and close the connection, so the listener does not
 *     spin; one log line per minute says so.
 * Timers cost O(expired): both lists are kept in time order.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <openssl/err.h>

#include "log.h"
#include "source.h"
#include "worker_int.h"
#include "peer_policy.h"
#include "proxy.h"

static void stream_deliver(skd_worker *w, skd_conn_hook *h, const skd_outbox *ob);

/* ---- lists ---- */

#define LIST_OPS(name, prev, next)                                                                                     \
    static void name##_unlink(skd_conn_list *l, skd_conn *c)                                                           \
    {                                                                                                                  \
        if (c->prev)                                                                                                   \
            c->prev->next = c->next;                                                                                   \
        else                                                                                                           \
            l->head = c->next;                                                                                         \
        if (c->next)                                                                                                   \
            c->next->prev = c->prev;                                                                                   \
        else                                                                                                           \
            l->tail = c->prev;                                                                                         \
        c->prev = c->next = NULL;                                                                                      \
    }                                                                                                                  \
    static void name##_append(skd_conn_list *l, skd_conn *c)                                                           \
    {                                                                                                                  \
        c->prev = l->tail;                                                                                             \
        c->next = NULL;                                                                                                \
        if (l->tail)                                                                                                   \
            l->tail->next = c;                                                                                         \
        else                                                                                                           \
            l->head = c;                                                                                               \
        l->tail = c;                                                                                                   \
    }
LIST_OPS(lru, prev, next)
LIST_OPS(dl, dprev, dnext)

static skd_pool *pool_of(skd_worker *w, const skd_conn *c)
{
    return &w->pools[c->pool];
}

static void deadline_start(skd_worker *w, skd_conn *c, uint64_t now)
{
    if (c->on_deadline)
        return;
    c->started_ms = now;
    c->on_deadline = 1;
    dl_append(&pool_of(w, c)->deadline, c);
}

static void deadline_stop(skd_worker *w, skd_conn *c)
{
    if (!c->on_deadline)
        return;
    c->on_deadline = 0;
    dl_unlink(&pool_of(w, c)->deadline, c);
}

static void mark_useful(skd_worker *w, skd_conn *c, uint64_t now)
{
    skd_pool *p = pool_of(w, c);
    c->useful_ms = now;
    lru_unlink(&p->lru, c);
    lru_append(&p->lru, c);
}

/* ---- the per-source chains ---- */

static size_t source_bucket(const stunkit_addr *a)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < skd_source_bytes(a); i++)
        h = (h ^ a->ip[i]) * 16777619u;
    return (h ^ (h >> 13)) & (SRC_BUCKETS - 1);
}

static int source_count(const skd_worker *w, const stunkit_addr *a)
{
    int n = 0;
    for (const skd_conn *c = w->by_source[source_bucket(a)]; c; c = c->hnext)
        n += skd_same_source(&c->peer, a);
    return n;
}

static void source_add(skd_worker *w, skd_conn *c)
{
    skd_conn **head = &w->by_source[source_bucket(&c->peer)];
    c->hprev = NULL;
    c->hnext = *head;
    if (*head)
        (*head)->hprev = c;
    *head = c;
}

static void source_remove(skd_worker *w, skd_conn *c)
{
    if (c->hprev)
        c->hprev->hnext = c->hnext;
    else
        w->by_source[source_bucket(&c->peer)] = c->hnext;
    if (c->hnext)
        c->hnext->hprev = c->hprev;
}

/* ---- connections ---- */

static void conn_close(skd_worker *w, skd_conn *c)
{
    skd_pool *p = pool_of(w, c);
    if (w->turn_on)
        skd_turn_conn_closed(&w->turn, &c->peer, &c->local);
    deadline_stop(w, c);
    lru_unlink(&p->lru, c);
    source_remove(w, c);
    if (c->ssl)
        SSL_free(c->ssl);
    c->ssl = NULL;
    close(c->fd); /* also removes it from the epoll set */
    /* Freed after the current batch of epoll events: a later event of the
     * batch may still point at it (an accept evicts, a relay write fails). */
    c->kind = EV_DEAD;
    c->next = w->dead;
    w->dead = c;
    p->n--;
}

void skd_stream_reap(skd_worker *w)
{
    while (w->dead) {
        skd_conn *c = w->dead;
        w->dead = c->next;
        free(c);
    }
}

int skd_stream_pending(const skd_worker *w)
{
    return w->pools[0].n + w->pools[1].n;
}

void skd_stream_close_all(skd_worker *w)
{
    for (int i = 0; i < 2; i++)
        while (w->pools[i].lru.head)
            conn_close(w, w->pools[i].lru.head);
    skd_stream_reap(w);
}

static void set_events(skd_worker *w, skd_conn *c, uint32_t events)
{
    if (events == c->events)
        return;
    struct epoll_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.events = events;
    ev.data.ptr = c;
    if (epoll_ctl(w->epfd, EPOLL_CTL_MOD, c->fd, &ev) == 0)
        c->events = events;
}

/* accept() found no descriptor: give up the reserve to take the connection
 * off the queue and close it, so epoll does not report it again and again. */
static void out_of_descriptors(skd_worker *w, skd_sock *l, int err)
{
    uint64_t now = skd_now_ms();
    SKD_STAT_INC(w->st, tcp_rejected);
    if (!w->emfile_logged_ms || now - w->emfile_logged_ms > 60000u) {
        w->emfile_logged_ms = now ? now : 1;
        skd_warn("accept: %s; closing new connections until descriptors free up (raise LimitNOFILE or lower "
                 "--tcp-max-conns); this is logged once a minute",
                 strerror(err));
    }
    if (w->reserve_fd >= 0) {
        close(w->reserve_fd);
        w->reserve_fd = -1;
        int fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd >= 0)
            close(fd);
        w->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    }
    if (w->reserve_fd < 0 && !l->paused) {
        /* not even the reserve: stop listening for a moment */
        epoll_ctl(w->epfd, EPOLL_CTL_DEL, l->fd, NULL);
        l->paused = 1;
        w->listeners_paused_ms = now ? now : 1;
    }
}

#define EVICT_SCAN 64 /* connections looked at from the least useful end */

static int holds_allocation(skd_worker *w, const skd_conn *c)
{
    return w->turn_on && skd_turn_find(&w->turn, &c->peer, &c->local) != NULL;
}

/* Makes room in a full pool for a newcomer: 1, or 0 when nothing may go
 * (the newcomer is then refused). Among the least useful connections, a
 * stranger (no request answered with success yet: unauthenticated, or a
 * handshake that never finished) goes first, then one that was served; a
 * connection that holds a TURN allocation never goes for a newcomer (it is
 * moved to the useful end: its allocation is its use). */
static int evict_one(skd_worker *w, skd_pool *p)
{
    skd_conn *c = p->lru.head, *served = NULL;
    uint64_t now = skd_now_ms();
    for (int k = 0; c && k < EVICT_SCAN; k++) {
        skd_conn *next = c->next;
        if (holds_allocation(w, c)) {
            mark_useful(w, c, now);
        } else if (!c->answered) {
            served = c;
            break;
        } else if (!served) {
            served = c;
        }
        c = next;
    }
    if (!served)
        return 0;
    SKD_STAT_INC(w->st, tcp_evicted);
    conn_close(w, served);
    return 1;
}

static int proxy_listed(const skd_config *cfg, const stunkit_addr *a);

void skd_stream_accept(skd_worker *w, skd_sock *l)
{
    const skd_config *cfg = w->srv->cfg;
    skd_pool *p = &w->pools[l->tls != 0];
    for (int k = 0; k < 64; k++) {
        struct sockaddr_storage ss, ls;
        socklen_t slen = sizeof(ss), llen = sizeof(ls);
        int fd = accept4(l->fd, (struct sockaddr *)&ss, &slen, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                out_of_descriptors(w, l, errno);
            return; /* EAGAIN, or a connection that died in the queue */
        }
        stunkit_addr peer;
        if (stunkit_addr_from_sockaddr(&peer, (struct sockaddr *)&ss) != 0) {
            close(fd);
            continue;
        }
        /* a listed proxy's connections are counted by the client its
         * PROXY header names (sniff) */
        int from_proxy = proxy_listed(cfg, &peer);
        if (w->per_source && !from_proxy && source_count(w, &peer) >= w->per_source) {
            SKD_STAT_INC(w->st, tcp_rejected);
            close(fd);
            continue;
        }
        if (p->n >= p->max && !evict_one(w, p)) {
            SKD_STAT_INC(w->st, tcp_rejected);
            close(fd);
            continue;
        }
        skd_conn *c = calloc(1, sizeof(*c)); /* per connection, not per packet */
        if (!c || getsockname(fd, (struct sockaddr *)&ls, &llen) != 0 ||
            stunkit_addr_from_sockaddr(&c->local, (struct sockaddr *)&ls) != 0) {
            free(c);
            close(fd);
            continue;
        }
        c->kind = EV_CONN;
        c->fd = fd;
        c->hook.deliver = stream_deliver;
        c->hook.stream = 1;
        c->peer = peer;
        c->listener = l;
        c->pool = l->tls != 0;
        c->from_proxy = from_proxy;
        /* with TLS or proxies about, the first bytes decide (sniff) */
        c->sniffing = w->srv->tls_on || cfg->n_proxy_from;
        int one = 1; /* answers are small and must not wait for Nagle */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (l->tls && !c->sniffing) {
            c->ssl = SSL_new(skd_tls_current(&w->srv->tls));
            if (!c->ssl || SSL_set_fd(c->ssl, fd) != 1) {
                if (c->ssl)
                    SSL_free(c->ssl);
                free(c);
                close(fd);
                continue;
            }
            SSL_set_accept_state(c->ssl);
            c->handshaking = 1;
        }
        c->events = EPOLLIN | EPOLLRDHUP;
        if (skd_epoll_add(w->epfd, fd, c->events, c) != 0) {
            if (c->ssl)
                SSL_free(c->ssl);
            free(c);
            close(fd);
            continue;
        }
        uint64_t now = skd_now_ms();
        c->useful_ms = now;
        lru_append(&p->lru, c);
        source_add(w, c);
        p->n++;
        if (c->ssl || c->sniffing)
            deadline_start(w, c, now); /* the first bytes, the handshake: in time */
        SKD_STAT_INC(w->st, tcp_accepted);
    }
}

static int proxy_listed(const skd_config *cfg, const stunkit_addr *a)
{
    for (int i = 0; i < cfg->n_proxy_from; i++)
        if (skd_cidr_contains(&cfg->proxy_from[i], a))
            return 1;
    return 0;
}

/*
 * The first bytes decide, looked at (MSG_PEEK) and left for whoever reads
 * them: a PROXY v2 header from a listed proxy is read, and the client it
 * names takes the proxy's place (XOR-MAPPED-ADDRESS, rate limits, quotas,
 * per-source caps and logs see the client); from anyone else a PROXY
 * header closes the connection, as does a malformed one. Then a TLS
 * handshake record (0x16) is TLS (OpenSSL reads the ClientHello itself);
 * anything else is STUN or ChannelData, as on coturn's TLS port. So one
 * port (443, say, behind a proxy that routes by ALPN) serves both. 1
 * decided, 0 wait for more, -1 close.
 */
static int sniff(skd_worker *w, skd_conn *c)
{
    uint8_t b[SKD_PROXY_MAX];
    ssize_t n = recv(c->fd, b, sizeof(b), MSG_PEEK | MSG_DONTWAIT);
    if (n == 0)
        return -1;
    if (n < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -1;
    if (!c->proxy_seen) {
        size_t len;
        stunkit_addr src, dst;
        skd_proxy_result r = skd_proxy_parse(b, (size_t)n, &len, &src, &dst);
        if (r == SKD_PROXY_MORE)
            return 0;
        if (r != SKD_PROXY_NONE) {
            if (r == SKD_PROXY_BAD || !c->from_proxy) {
                SKD_STAT_INC(w->st, tcp_proxy_refused);
                return -1;
            }
            if (recv(c->fd, b, len, MSG_DONTWAIT) != (ssize_t)len)
                return -1;
            c->proxy_seen = 1;
            SKD_STAT_INC(w->st, tcp_proxied);
            if (src.family) {
                source_remove(w, c);
                c->peer = src;
                int over = w->per_source && source_count(w, &c->peer) >= w->per_source;
                source_add(w, c);
                if (over) {
                    SKD_STAT_INC(w->st, tcp_rejected);
                    return -1;
                }
            }
            return sniff(w, c); /* the client's own first bytes may be there already */
        }
        c->proxy_seen = 1; /* none: a listed proxy may also connect without one (a health check) */
    }
    if (b[0] == 0x16) { /* a TLS handshake record: the ClientHello */
        if (!w->srv->tls_on)
            return -1;
        c->ssl = SSL_new(skd_tls_current(&w->srv->tls));
        if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1)
            return -1;
        SSL_set_accept_state(c->ssl);
        c->handshaking = 1;
    }
    c->sniffing = 0;
    return 1;
}

/* Plain or TLS I/O: >0 bytes, 0 closed, -1 try later (*want set to the
 * epoll event to wait for), -2 broken. */
static ssize_t conn_io(skd_conn *c, int writing, void *buf, size_t len, uint32_t *want)
{
    if (!c->ssl) {
        ssize_t n = writing ? send(c->fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL) : recv(c->fd, buf, len, MSG_DONTWAIT);
        if (n >= 0)
            return n;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            *want = writing ? EPOLLOUT : EPOLLIN;
            return -1;
        }
        return -2;
    }
    int n = writing ? SSL_write(c->ssl, buf, (int)len) : SSL_read(c->ssl, buf, (int)len);
    if (n > 0)
        return n;
    switch (SSL_get_error(c->ssl, n)) {
    case SSL_ERROR_WANT_READ: *want = EPOLLIN; return -1;
    case SSL_ERROR_WANT_WRITE: *want = EPOLLOUT; return -1;
    case SSL_ERROR_ZERO_RETURN: return 0;
    default: ERR_clear_error(); return -2; /* failed handshake, bad record, reset */
    }
}

/* Writes what is queued; returns -1 when the connection must go. */
static int conn_flush(skd_conn *c, uint32_t *want)
{
    while (c->out_len) {
        ssize_t n = conn_io(c, 1, c->out, c->out_len, want);
        if (n == -1)
            return 0;
        if (n <= 0)
            return -1;
        memmove(c->out, c->out + n, c->out_len - (size_t)n);
        c->out_len -= (size_t)n;
    }
    return 0;
}

/* Frames and answers the complete requests in c->in while there is room
 * for their answers. Returns -1 when the connection must go. */
static int conn_process(skd_worker *w, skd_conn *c, uint64_t now)
{
    size_t off = 0;
    int done = 0;
    while (c->in_len - off >= 4) {
        if (TCP_OUT - c->out_len < TX_SIZE)
            break; /* backpressure: wait for the client to read */
        size_t need;
        int rv;
        const uint8_t *p = c->in + off;
        if (w->turn_on && p[0] >= 0x40 && p[0] <= 0x7F) {
            /* RFC 8656 12.5: ChannelData over TCP, padded to 4 bytes */
            need = 4 + (((size_t)p[2] << 8 | p[3]) + 3u) / 4u * 4u;
            rv = 0;
        } else {
            /* RFC 8489 6.2.2: over TCP "the STUN length field [...] is
             * used for framing". */
            rv = stunkit_msg_frame(p, c->in_len - off, &need);
        }
        if (rv == STUNKIT_ERR_TRUNCATED)
            break;
        if (rv != 0 || need > TCP_IN) {
            SKD_STAT_INC(w->st, tcp_bad_framing);
            return -1;
        }
        if (c->in_len - off < need)
            break;
        SKD_STAT_INC(w->st, tcp_rx);
        SKD_STAT_ADD(w->st, tcp_rx_bytes, need);
        skd_request rq = {c->in + off, need, c->peer, c->local, c->ssl ? STUNKIT_TLS : STUNKIT_TCP,
                          c->listener->ip_index, c->listener->port_index, skd_unix_now(), now,
                          w->turn_on ? &w->turn : NULL, &c->hook};
        skd_outbox ob;
        skd_outbox_init(&ob, w->one_buf, sizeof(w->one_buf), w->one_out, 4);
        if (skd_serve(w, &rq, &ob, now)) {
            for (size_t k = 0; k < ob.n; k++) {
                const skd_out *o = &ob.out[k];
                if (o->relay_fd >= 0) {
                    skd_send_relayed(w, o);
                    continue;
                }
                if (!stunkit_addr_equal(&o->to, &c->peer) || o->len > TCP_OUT - c->out_len)
                    continue; /* a stream answers only its own client */
                memcpy(c->out + c->out_len, o->data, o->len);
                c->out_len += o->len;
                c->answered |= o->code == 0 && !(o->flags & SKD_OUT_RELAYED);
                SKD_STAT_INC(w->st, tcp_tx);
                SKD_STAT_ADD(w->st, tcp_tx_bytes, o->len);
            }
        }
        off += need;
        done++;
    }
    if (off) {
        memmove(c->in, c->in + off, c->in_len - off);
        c->in_len -= off;
    }
    if (done) {
        mark_useful(w, c, now);
        deadline_stop(w, c);
    }
    if (c->in_len)
        deadline_start(w, c, now); /* a request under way: its clock runs from its first byte */
    return 0;
}

/* Reads what the socket has (unless paused), answers, flushes, and asks
 * epoll for what is needed next. Returns -1 when the connection must go. */
static int conn_run(skd_worker *w, skd_conn *c)
{
    uint64_t now = skd_now_ms();
    uint32_t want_r = 0, want_w = 0;
    if (c->sniffing) {
        int r = sniff(w, c);
        if (r < 0)
            return -1;
        if (r == 0) {
            set_events(w, c, EPOLLIN | EPOLLRDHUP);
            return 0;
        }
    }
    for (int rounds = 0; rounds < 16; rounds++) {
        if (conn_process(w, c, now) != 0)
            return -1;
        if (conn_flush(c, &want_w) != 0)
            return -1;
        if (TCP_OUT - c->out_len < TX_SIZE || c->in_len == TCP_IN)
            break; /* paused until the client reads its answers */
        ssize_t n = conn_io(c, 0, c->in + c->in_len, TCP_IN - c->in_len, &want_r);
        if (n == -1)
            break;
        if (n <= 0)
            return -1;
        if (c->handshaking) {
            c->handshaking = 0;
            deadline_stop(w, c);
        }
        c->in_len += (size_t)n;
    }
    if (c->handshaking && SSL_is_init_finished(c->ssl)) {
        c->handshaking = 0;
        deadline_stop(w, c);
        if (c->in_len)
            deadline_start(w, c, now);
    }
    int paused = TCP_OUT - c->out_len < TX_SIZE;
    if (paused != c->reading_paused) {
        c->reading_paused = paused;
        if (paused)
            SKD_STAT_INC(w->st, tcp_paused);
    }
    uint32_t ev = EPOLLRDHUP;
    if (!paused)
        ev |= EPOLLIN;
    if (c->out_len || want_w == EPOLLOUT || want_r == EPOLLOUT)
        ev |= EPOLLOUT;
    set_events(w, c, ev);
    return 0;
}

void skd_stream_event(skd_worker *w, skd_conn *c, uint32_t events)
{
    int rv = 0;
    if (c->kind != EV_CONN)
        return; /* closed earlier in this batch */
    if (events & EPOLLERR)
        rv = -1;
    else if ((events & EPOLLHUP) && !c->out_len)
        rv = -1;
    if (rv == 0)
        rv = conn_run(w, c);
    if (rv != 0)
        conn_close(w, c);
}

void skd_stream_timers(skd_worker *w)
{
    uint64_t now = skd_now_ms();
    for (int i = 0; i < 2; i++) {
        skd_pool *p = &w->pools[i];
        /* a request (or TLS handshake) not complete in time */
        while (p->deadline.head && now - p->deadline.head->started_ms > w->request_ms) {
            SKD_STAT_INC(w->st, tcp_timeout_closed);
            conn_close(w, p->deadline.head);
        }
        /* no complete request for the idle time (a connection that holds a
         * TURN allocation lives as long as the allocation does) */
        for (int k = 0; k < 1024 && p->lru.head && now - p->lru.head->useful_ms > w->idle_ms; k++) {
            skd_conn *c = p->lru.head;
            if (holds_allocation(w, c)) {
                mark_useful(w, c, now);
                continue;
            }
            SKD_STAT_INC(w->st, tcp_idle_closed);
            conn_close(w, c);
        }
    }
    /* listeners paused for lack of descriptors: try again after a second */
    if (w->listeners_paused_ms && now - w->listeners_paused_ms > 1000u) {
        w->listeners_paused_ms = 0;
        if (w->reserve_fd < 0)
            w->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        for (int i = 0; i < w->n_listeners; i++) {
            skd_sock *l = &w->listeners[i];
            if (l->paused && skd_epoll_add(w->epfd, l->fd, EPOLLIN, l) == 0)
                l->paused = 0;
        }
    }
}

/* Relayed data for the client of a TURN allocation over this connection
 * (its skd_conn_hook): queued and flushed like answers (dropped when the
 * client does not read). */
static void stream_deliver(skd_worker *w, skd_conn_hook *h, const skd_outbox *ob)
{
    skd_conn *c = (skd_conn *)((char *)h - offsetof(skd_conn, hook));
    if (c->kind != EV_CONN)
        return;
    for (size_t k = 0; k < ob->n; k++) {
        const skd_out *o = &ob->out[k];
        if (o->len > TCP_OUT - c->out_len) {
            SKD_STAT_INC(w->st, send_errors);
            continue;
        }
        memcpy(c->out + c->out_len, o->data, o->len);
        c->out_len += o->len;
    }
    if (conn_run(w, c) != 0)
        conn_close(w, c);
}
