/*
 * worker.c - where packets enter and answers leave.
 *
 *   udp_drain(): recvmmsg a batch (blocking, or after epoll_wait when the
 *   worker owns several sockets) -> skd_handle() each into a preallocated
 *   answer slot -> rate limit -> sendmmsg the batch, grouped by the socket
 *   each answer leaves from (CHANGE-REQUEST picks another one).
 *   TCP: accept -> conn_read(): frame by the STUN length -> skd_handle() ->
 *   conn_flush().
 *
 * Nothing on the per-packet path allocates, locks or logs.
 */
#define _GNU_SOURCE
#include "worker.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>

#include "dtls.h"
#include "log.h"

#define BATCH 32
#define RX_SIZE 4096 /* larger datagrams are counted malformed */
#define TX_SIZE 4096 /* also caps a PADDING echo */
#define CTL_SIZE 64  /* room for one in6_pktinfo control message */
#define TCP_IN 4096  /* largest STUN message accepted over TCP */
#define TCP_OUT 8192 /* answers waiting for a slow reader */
#define MAX_DRAIN 8  /* batches per socket per wake, to stay fair */

enum { EV_UDP = 1, EV_LISTEN, EV_CONN, EV_STOP, EV_DTLS };

typedef struct skd_sock {
    int kind; /* EV_UDP or EV_LISTEN; first, like skd_conn's */
    int fd;
    int wildcard;
    int tls;
    int ip_index, port_index;
    stunkit_addr bound;
} skd_sock;

typedef struct skd_conn {
    int kind; /* EV_CONN */
    int fd;
    const skd_sock *listener;
    SSL *ssl; /* STUN over TLS */
    stunkit_addr peer, local;
    uint32_t last_ms;
    size_t in_len, out_len;
    struct skd_conn *prev, *next; /* least recently active first */
    uint8_t in[TCP_IN];
    uint8_t out[TCP_OUT];
} skd_conn;

struct skd_worker {
    skd_server *srv;
    int id;
    pthread_t thread;
    int started;
    int epfd;
    int stop_kind; /* epoll tag for the stop eventfd */
    skd_sock udp[SKD_MAX_SOCKS];
    int n_udp;
    skd_sock listeners[SKD_MAX_SOCKS];
    int n_listeners;
    skd_sock *by_index[2][2][2]; /* [is IPv6][ip index][port index] */
    skd_stats *st;
    skd_ratelimit rl;
    skd_conn *conn_head, *conn_tail;
    int n_conns, max_conns;
    skd_dtls dtls;
    int dtls_on;
    int stream_role; /* 0: plain UDP; 1: TCP, TLS and DTLS */
    int blocking;    /* one UDP socket and nothing else: no epoll on it */
    uint32_t idle_ms;

    struct mmsghdr rx[BATCH];
    struct iovec rx_iov[BATCH];
    struct sockaddr_storage rx_addr[BATCH];
    uint8_t rx_ctl[BATCH][CTL_SIZE];
    uint8_t rx_buf[BATCH][RX_SIZE];

    struct mmsghdr tx[BATCH];
    struct iovec tx_iov[BATCH];
    struct sockaddr_storage tx_addr[BATCH];
    uint8_t tx_ctl[BATCH][CTL_SIZE];
    uint8_t tx_buf[BATCH][TX_SIZE];
    skd_sock *tx_sock[BATCH];

    uint8_t tcp_answer[TX_SIZE];
};

static uint64_t unix_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME_COARSE, &ts);
    return (uint64_t)ts.tv_sec;
}

static uint32_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint32_t)((uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u);
}

/* ---- sockets ---- */

static int open_socket(const skd_sock_spec *spec, int type, int reuseport, char *why, size_t why_len)
{
    struct sockaddr_storage ss;
    int salen = stunkit_addr_to_sockaddr(&spec->addr, &ss);
    int af = spec->addr.family == STUNKIT_AF_INET6 ? AF_INET6 : AF_INET;
    int one = 1;
    int fd = socket(af, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(why, why_len, "socket: %s", strerror(errno));
        return -1;
    }
    if (af == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (type == SOCK_STREAM)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) {
        snprintf(why, why_len, "SO_REUSEPORT: %s", strerror(errno));
        close(fd);
        return -1;
    }
    if (type == SOCK_DGRAM) {
        int size = 4 << 20;
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
        if (spec->wildcard) {
            /* A wildcard socket must answer from the address the client
             * reached, which only PKTINFO tells us. */
            if (af == AF_INET)
                setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof(one));
            else
                setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof(one));
        }
    }
    if (bind(fd, (struct sockaddr *)&ss, (socklen_t)salen) != 0) {
        snprintf(why, why_len, "%s", strerror(errno));
        close(fd);
        return -1;
    }
    if (type == SOCK_STREAM && listen(fd, 1024) != 0) {
        snprintf(why, why_len, "listen: %s", strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

static int epoll_add(int epfd, int fd, uint32_t events, void *ptr)
{
    struct epoll_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.events = events;
    ev.data.ptr = ptr;
    return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
}

/* ---- UDP ---- */

static void rx_reset(skd_worker *w)
{
    for (int i = 0; i < BATCH; i++) {
        struct msghdr *h = &w->rx[i].msg_hdr;
        w->rx_iov[i].iov_base = w->rx_buf[i];
        w->rx_iov[i].iov_len = RX_SIZE;
        h->msg_name = &w->rx_addr[i];
        h->msg_namelen = sizeof(w->rx_addr[i]);
        h->msg_iov = &w->rx_iov[i];
        h->msg_iovlen = 1;
        h->msg_control = w->rx_ctl[i];
        h->msg_controllen = CTL_SIZE;
        h->msg_flags = 0;
    }
}

/* The local IP a datagram arrived on, from IP_PKTINFO / IPV6_PKTINFO. */
static void pktinfo_dst(struct msghdr *h, stunkit_addr *dst)
{
    for (struct cmsghdr *c = CMSG_FIRSTHDR(h); c; c = CMSG_NXTHDR(h, c)) {
        if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
            struct in_pktinfo pi;
            memcpy(&pi, CMSG_DATA(c), sizeof(pi));
            memcpy(dst->ip, &pi.ipi_addr, 4);
        } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
            struct in6_pktinfo pi;
            memcpy(&pi, CMSG_DATA(c), sizeof(pi));
            memcpy(dst->ip, &pi.ipi6_addr, 16);
        }
    }
}

/* Sets the source address of an answer leaving a wildcard socket. */
static size_t pktinfo_src(uint8_t *ctl, const stunkit_addr *src)
{
    struct msghdr h;
    memset(&h, 0, sizeof(h));
    memset(ctl, 0, CTL_SIZE);
    h.msg_control = ctl;
    h.msg_controllen = CTL_SIZE;
    struct cmsghdr *c = CMSG_FIRSTHDR(&h);
    if (src->family == STUNKIT_AF_INET) {
        struct in_pktinfo pi;
        memset(&pi, 0, sizeof(pi));
        memcpy(&pi.ipi_spec_dst, src->ip, 4);
        c->cmsg_level = IPPROTO_IP;
        c->cmsg_type = IP_PKTINFO;
        c->cmsg_len = CMSG_LEN(sizeof(pi));
        memcpy(CMSG_DATA(c), &pi, sizeof(pi));
        return CMSG_SPACE(sizeof(pi));
    }
    struct in6_pktinfo pi;
    memset(&pi, 0, sizeof(pi));
    memcpy(&pi.ipi6_addr, src->ip, 16);
    c->cmsg_level = IPPROTO_IPV6;
    c->cmsg_type = IPV6_PKTINFO;
    c->cmsg_len = CMSG_LEN(sizeof(pi));
    memcpy(CMSG_DATA(c), &pi, sizeof(pi));
    return CMSG_SPACE(sizeof(pi));
}

static void count_verdict(skd_stats *st, skd_verdict v)
{
    switch (v) {
    case SKD_DROP_NOT_STUN: SKD_STAT_INC(st, drop_not_stun); break;
    case SKD_DROP_MALFORMED: SKD_STAT_INC(st, drop_malformed); break;
    case SKD_DROP_NOT_REQUEST: SKD_STAT_INC(st, drop_not_request); break;
    case SKD_DROP_METHOD: SKD_STAT_INC(st, drop_method); break;
    default: break;
    }
}

/* Handles one request; returns 1 when an answer is to be sent. */
static int serve(skd_worker *w, const skd_request *rq, uint8_t *out, skd_reply *reply, uint32_t now)
{
    skd_verdict v = skd_handle(&w->srv->hcfg, rq, out, TX_SIZE, reply);
    if (v != SKD_REPLY) {
        count_verdict(w->st, v);
        return 0;
    }
    /* answers sent elsewhere and unauthenticated challenges draw on the
     * strict budget as well */
    if (!skd_ratelimit_take(&w->rl, &rq->src, now, reply->redirect || reply->challenge)) {
        if (reply->redirect || reply->challenge)
            SKD_STAT_INC(w->st, drop_rate_redirect);
        else
            SKD_STAT_INC(w->st, drop_rate);
        return 0;
    }
    if (reply->code == 0)
        SKD_STAT_INC(w->st, success);
    else if (reply->code == 401)
        SKD_STAT_INC(w->st, err_401);
    else if (reply->code == 420)
        SKD_STAT_INC(w->st, err_420);
    else if (reply->code == 438)
        SKD_STAT_INC(w->st, err_438);
    else
        SKD_STAT_INC(w->st, err_400);
    if (reply->redirect)
        SKD_STAT_INC(w->st, redirected);
    if (rq->data[4] != 0x21 || rq->data[5] != 0x12 || rq->data[6] != 0xA4 || rq->data[7] != 0x42)
        SKD_STAT_INC(w->st, rfc3489);
    return 1;
}

static void udp_flush(skd_worker *w, int n)
{
    int i = 0;
    while (i < n) {
        int j = i;
        while (j < n && w->tx_sock[j] == w->tx_sock[i])
            j++;
        int fd = w->tx_sock[i]->fd;
        while (i < j) {
            int sent = sendmmsg(fd, &w->tx[i], (unsigned)(j - i), MSG_DONTWAIT);
            if (sent > 0) {
                SKD_STAT_ADD(w->st, udp_tx, sent);
                i += sent;
                continue;
            }
            /* The datagram at i cannot go (full buffer, unreachable
             * RESPONSE-PORT target...): count it and go on with the rest. */
            SKD_STAT_INC(w->st, send_errors);
            i++;
        }
    }
}

static void udp_drain(skd_worker *w, skd_sock *s, int blocking)
{
    for (int round = 0; round < MAX_DRAIN; round++) {
        rx_reset(w);
        /* blocking: wait for the first datagram, then take what is there */
        int n = recvmmsg(s->fd, w->rx, BATCH, blocking ? MSG_WAITFORONE : MSG_DONTWAIT, NULL);
        if (n <= 0)
            return;
        uint32_t now = now_ms();
        uint64_t unix_s = unix_now();
        int ntx = 0;
        SKD_STAT_ADD(w->st, udp_rx, n);
        for (int i = 0; i < n; i++) {
            struct msghdr *h = &w->rx[i].msg_hdr;
            skd_request rq;
            skd_reply reply;
            if (h->msg_flags & MSG_TRUNC) {
                SKD_STAT_INC(w->st, drop_malformed);
                continue;
            }
            rq.data = w->rx_buf[i];
            rq.len = w->rx[i].msg_len;
            if (stunkit_addr_from_sockaddr(&rq.src, (struct sockaddr *)&w->rx_addr[i]) != 0)
                continue;
            rq.dst = s->bound;
            if (s->wildcard)
                pktinfo_dst(h, &rq.dst);
            rq.transport = SKD_UDP;
            rq.ip_index = s->ip_index;
            rq.port_index = s->port_index;
            rq.now_s = unix_s;
            if (!serve(w, &rq, w->tx_buf[ntx], &reply, now))
                continue;
            skd_sock *out = s;
            if (reply.ip_index != s->ip_index || reply.port_index != s->port_index)
                out = w->by_index[rq.dst.family == STUNKIT_AF_INET6][reply.ip_index][reply.port_index];
            if (!out) {
                SKD_STAT_INC(w->st, send_errors);
                continue;
            }
            struct msghdr *t = &w->tx[ntx].msg_hdr;
            memset(t, 0, sizeof(*t));
            w->tx_iov[ntx].iov_base = w->tx_buf[ntx];
            w->tx_iov[ntx].iov_len = reply.len;
            t->msg_iov = &w->tx_iov[ntx];
            t->msg_iovlen = 1;
            t->msg_name = &w->tx_addr[ntx];
            t->msg_namelen = (socklen_t)stunkit_addr_to_sockaddr(&reply.to, &w->tx_addr[ntx]);
            if (out->wildcard) {
                t->msg_control = w->tx_ctl[ntx];
                t->msg_controllen = pktinfo_src(w->tx_ctl[ntx], &rq.dst);
            }
            w->tx_sock[ntx] = out;
            ntx++;
        }
        udp_flush(w, ntx);
        if (n < BATCH || blocking)
            return;
    }
}

/* ---- DTLS ---- */

typedef struct dtls_ctx {
    skd_worker *w;
    const skd_sock *s;
    uint32_t now;
    uint64_t unix_s;
} dtls_ctx;

/* One decrypted STUN message from a DTLS session: the same handler, with
 * transport DTLS (no CHANGE-REQUEST or RESPONSE-PORT). */
static size_t dtls_message(void *arg, const stunkit_addr *peer, const uint8_t *msg, size_t len, uint8_t *out,
                           size_t cap)
{
    dtls_ctx *d = arg;
    skd_reply reply;
    skd_request rq = {msg, len, *peer, d->s->bound, SKD_DTLS, 0, 0, d->unix_s};
    (void)cap; /* the DTLS layer's buffer is TX_SIZE too */
    SKD_STAT_INC(d->w->st, dtls_rx);
    if (!serve(d->w, &rq, out, &reply, d->now))
        return 0;
    SKD_STAT_INC(d->w->st, dtls_tx);
    return reply.len;
}

static void dtls_drain(skd_worker *w, skd_sock *s)
{
    for (int round = 0; round < MAX_DRAIN; round++) {
        rx_reset(w);
        int n = recvmmsg(s->fd, w->rx, BATCH, MSG_DONTWAIT, NULL);
        if (n <= 0)
            return;
        dtls_ctx ctx = {w, s, now_ms(), unix_now()};
        SSL_CTX *ssl_ctx = skd_dtls_current(&w->srv->tls);
        for (int i = 0; i < n; i++) {
            stunkit_addr peer;
            if (stunkit_addr_from_sockaddr(&peer, (struct sockaddr *)&w->rx_addr[i]) != 0)
                continue;
            skd_dtls_input(&w->dtls, ssl_ctx, s->fd, &peer, w->rx_buf[i], w->rx[i].msg_len, ctx.now, dtls_message,
                           &ctx);
        }
        if (n < BATCH)
            return;
    }
}

/* ---- TCP ---- */

static void lru_unlink(skd_worker *w, skd_conn *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        w->conn_head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        w->conn_tail = c->prev;
    c->prev = c->next = NULL;
}

static void lru_append(skd_worker *w, skd_conn *c)
{
    c->prev = w->conn_tail;
    c->next = NULL;
    if (w->conn_tail)
        w->conn_tail->next = c;
    else
        w->conn_head = c;
    w->conn_tail = c;
}

static void conn_close(skd_worker *w, skd_conn *c)
{
    lru_unlink(w, c);
    if (c->ssl)
        SSL_free(c->ssl);
    close(c->fd); /* also removes it from the epoll set */
    free(c);
    w->n_conns--;
}

static void tcp_accept(skd_worker *w, skd_sock *l)
{
    for (;;) {
        struct sockaddr_storage ss, ls;
        socklen_t slen = sizeof(ss), llen = sizeof(ls);
        int fd = accept4(l->fd, (struct sockaddr *)&ss, &slen, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return; /* EAGAIN, or a connection that died in the queue */
        if (w->n_conns >= w->max_conns) {
            SKD_STAT_INC(w->st, tcp_rejected);
            close(fd);
            continue;
        }
        skd_conn *c = calloc(1, sizeof(*c)); /* per connection, not per packet */
        if (!c || getsockname(fd, (struct sockaddr *)&ls, &llen) != 0 ||
            stunkit_addr_from_sockaddr(&c->peer, (struct sockaddr *)&ss) != 0 ||
            stunkit_addr_from_sockaddr(&c->local, (struct sockaddr *)&ls) != 0) {
            free(c);
            close(fd);
            continue;
        }
        c->kind = EV_CONN;
        c->fd = fd;
        c->listener = l;
        int one = 1; /* answers are small and must not wait for Nagle */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (l->tls) {
            c->ssl = SSL_new(skd_tls_current(&w->srv->tls));
            if (!c->ssl || SSL_set_fd(c->ssl, fd) != 1) {
                if (c->ssl)
                    SSL_free(c->ssl);
                free(c);
                close(fd);
                continue;
            }
            SSL_set_accept_state(c->ssl);
        }
        c->last_ms = now_ms();
        if (epoll_add(w->epfd, fd, EPOLLIN | EPOLLRDHUP, c) != 0) {
            free(c);
            close(fd);
            continue;
        }
        lru_append(w, c);
        w->n_conns++;
        SKD_STAT_INC(w->st, tcp_accepted);
    }
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
static int conn_flush(skd_worker *w, skd_conn *c)
{
    uint32_t want = 0;
    while (c->out_len) {
        ssize_t n = conn_io(c, 1, c->out, c->out_len, &want);
        if (n == -1)
            break;
        if (n <= 0)
            return -1;
        memmove(c->out, c->out + n, c->out_len - (size_t)n);
        c->out_len -= (size_t)n;
    }
    struct epoll_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.events = EPOLLIN | EPOLLRDHUP | ((c->out_len || want == EPOLLOUT) ? EPOLLOUT : 0u);
    ev.data.ptr = c;
    epoll_ctl(w->epfd, EPOLL_CTL_MOD, c->fd, &ev);
    return 0;
}

/* Reads, frames and answers; returns -1 when the connection must go. */
static int conn_read(skd_worker *w, skd_conn *c)
{
    uint32_t now = now_ms();
    for (;;) {
        uint32_t want = 0;
        ssize_t n = conn_io(c, 0, c->in + c->in_len, TCP_IN - c->in_len, &want);
        if (n == -1)
            break;
        if (n <= 0)
            return -1;
        c->in_len += (size_t)n;
        /* RFC 8489 6.2.2: over TCP "the STUN length field [...] is used
         * for framing". */
        for (;;) {
            size_t need;
            int rv = stunkit_msg_frame(c->in, c->in_len, &need);
            if (rv == STUNKIT_ERR_TRUNCATED)
                break;
            if (rv != 0 || need > TCP_IN) {
                SKD_STAT_INC(w->st, tcp_bad_framing);
                return -1;
            }
            if (c->in_len < need)
                break;
            SKD_STAT_INC(w->st, tcp_rx);
            skd_request rq = {c->in, need, c->peer, c->local, SKD_TCP, c->listener->ip_index,
                              c->listener->port_index, unix_now()};
            skd_reply reply;
            if (serve(w, &rq, w->tcp_answer, &reply, now)) {
                if (TCP_OUT - c->out_len < reply.len)
                    return -1; /* the client does not read its answers */
                memcpy(c->out + c->out_len, w->tcp_answer, reply.len);
                c->out_len += reply.len;
                SKD_STAT_INC(w->st, tcp_tx);
            }
            memmove(c->in, c->in + need, c->in_len - need);
            c->in_len -= need;
        }
        if (c->in_len == TCP_IN)
            break;
    }
    c->last_ms = now;
    lru_unlink(w, c);
    lru_append(w, c);
    return conn_flush(w, c);
}

static void tcp_sweep_idle(skd_worker *w)
{
    uint32_t now = now_ms();
    while (w->conn_head && now - w->conn_head->last_ms > w->idle_ms) {
        SKD_STAT_INC(w->st, tcp_idle_closed);
        conn_close(w, w->conn_head);
    }
}

/* ---- the loop ---- */

/*
 * A worker whose only socket is one UDP socket does not use epoll: it blocks
 * in recvmmsg. A socket watched by epoll pays for a wake-up callback on
 * every datagram received and every one sent (sock_def_readable,
 * sock_wfree), which profiling showed to be most of the distance to a bare
 * recvmmsg/sendmmsg loop. SO_RCVTIMEO bounds the wait so a stop is noticed.
 */
static void *worker_blocking(skd_worker *w)
{
    skd_sock *s = &w->udp[0];
    struct timeval tv = {0, 200000};
    setsockopt(s->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    fcntl(s->fd, F_SETFL, fcntl(s->fd, F_GETFL) & ~O_NONBLOCK);
    while (!__atomic_load_n(&w->srv->stopping, __ATOMIC_ACQUIRE))
        udp_drain(w, s, 1);
    return NULL;
}

static void *worker_main(void *arg)
{
    skd_worker *w = arg;
    if (w->blocking)
        return worker_blocking(w);
    struct epoll_event evs[64];
    for (;;) {
        int timers = w->n_conns || (w->dtls_on && w->dtls.n_live);
        int n = epoll_wait(w->epfd, evs, 64, timers ? 1000 : -1);
        if (n < 0 && errno != EINTR)
            break;
        for (int i = 0; i < n; i++) {
            int kind = *(int *)evs[i].data.ptr;
            if (kind == EV_STOP)
                return NULL;
            if (kind == EV_UDP) {
                udp_drain(w, evs[i].data.ptr, 0);
            } else if (kind == EV_LISTEN) {
                tcp_accept(w, evs[i].data.ptr);
            } else if (kind == EV_DTLS) {
                dtls_drain(w, evs[i].data.ptr);
            } else {
                skd_conn *c = evs[i].data.ptr;
                int rv = 0;
                if (evs[i].events & (EPOLLERR | EPOLLHUP))
                    rv = -1;
                if (rv == 0 && (evs[i].events & EPOLLOUT))
                    rv = conn_flush(w, c);
                /* TLS may need a read to finish a handshake step that
                 * waited for the socket to be writable */
                if (rv == 0 && ((evs[i].events & (EPOLLIN | EPOLLRDHUP)) || c->ssl))
                    rv = conn_read(w, c);
                if (rv != 0)
                    conn_close(w, c);
            }
        }
        if (w->n_conns)
            tcp_sweep_idle(w);
        if (w->dtls_on)
            skd_dtls_tick(&w->dtls, now_ms(), w->idle_ms);
    }
    return NULL;
}

/* ---- setup ---- */

static int describe(const skd_sock_spec *s, const char *proto, char *buf, size_t cap)
{
    char a[STUNKIT_ADDRSTRLEN];
    stunkit_addr_format(&s->addr, a, sizeof(a));
    return snprintf(buf, cap, "%s/%s", a, proto);
}

/* Before binding with SO_REUSEPORT, bind once without it: that fails if
 * another process already serves the port (with or without SO_REUSEPORT),
 * instead of silently sharing its traffic. */
static int probe_free(const skd_sock_spec *spec, int type)
{
    char why[128], name[96];
    int fd = open_socket(spec, type, 0, why, sizeof(why));
    if (fd < 0) {
        describe(spec, type == SOCK_DGRAM ? "udp" : "tcp", name, sizeof(name));
        skd_error("cannot bind %s: %s", name, why);
        return -1;
    }
    close(fd);
    return 0;
}

static int worker_open(skd_server *srv, skd_worker *w, int id, int stream_role)
{
    const skd_config *cfg = srv->cfg;
    char why[128], name[96];
    w->srv = srv;
    w->id = id;
    w->stream_role = stream_role;
    w->st = &srv->stats[id];
    w->epfd = epoll_create1(EPOLL_CLOEXEC);
    w->max_conns = cfg->tcp_max_conns / (srv->n_stream ? srv->n_stream : 1);
    if (w->max_conns < 1)
        w->max_conns = 1;
    w->idle_ms = (uint32_t)cfg->tcp_idle_s * 1000u;
    if (w->epfd < 0)
        return -1;
    if (skd_ratelimit_init(&w->rl, cfg->rate_slots, (float)cfg->rate, (float)cfg->burst, (float)cfg->rate_redir,
                           (float)cfg->burst_redir, (uint32_t)random()) != 0)
        return -1;
    if (stream_role && srv->tls_on && cfg->udp) {
        if (skd_dtls_init(&w->dtls) != 0)
            return -1;
        w->dtls_on = 1;
    }
    w->stop_kind = EV_STOP;
    if (epoll_add(w->epfd, srv->stop_fd, EPOLLIN, &w->stop_kind) != 0)
        return -1;
    for (int i = 0; i < srv->n_specs; i++) {
        const skd_sock_spec *spec = &srv->specs[i];
        for (int tcp = 0; tcp < 2; tcp++) {
            if ((tcp && !cfg->tcp) || (!tcp && !cfg->udp))
                continue;
            /* plain UDP for datagram workers; TCP, TLS and DTLS for stream workers */
            if (stream_role != (tcp || spec->tls))
                continue;
            int fd = open_socket(spec, tcp ? SOCK_STREAM : SOCK_DGRAM, 1, why, sizeof(why));
            if (fd < 0) {
                describe(spec, tcp ? "tcp" : "udp", name, sizeof(name));
                skd_error("cannot bind %s: %s", name, why);
                return -1;
            }
            skd_sock *s = tcp ? &w->listeners[w->n_listeners++] : &w->udp[w->n_udp++];
            s->kind = tcp ? EV_LISTEN : spec->tls ? EV_DTLS : EV_UDP;
            s->fd = fd;
            s->wildcard = spec->wildcard;
            s->tls = spec->tls;
            s->ip_index = spec->ip_index;
            s->port_index = spec->port_index;
            s->bound = spec->addr;
            if (!tcp && !spec->tls)
                w->by_index[spec->addr.family == STUNKIT_AF_INET6][spec->ip_index][spec->port_index] = s;
            if (epoll_add(w->epfd, fd, EPOLLIN, s) != 0)
                return -1;
        }
    }
    if (!stream_role && w->n_udp == 1) {
        w->blocking = 1;
        epoll_ctl(w->epfd, EPOLL_CTL_DEL, w->udp[0].fd, NULL);
    }
    return 0;
}

int skd_server_open(skd_server *srv, const skd_config *cfg)
{
    memset(srv, 0, sizeof(*srv));
    srv->cfg = cfg;
    srv->n_specs = skd_config_sockets(cfg, srv->specs, SKD_MAX_SOCKS, &srv->hcfg);
    srv->hcfg.auth = cfg->auth; /* main hands ownership over after open */
    /* Datagram workers serve plain UDP; stream workers TCP, TLS and DTLS,
     * so that a datagram worker with one socket can block in recvmmsg. */
    int has_udp = cfg->udp, has_stream = cfg->tcp || (cfg->tls_cert && cfg->udp);
    srv->n_dgram = has_udp ? cfg->threads : 0;
    srv->n_stream = has_stream ? cfg->threads : 0;
    srv->n_workers = srv->n_dgram + srv->n_stream;
    srv->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    srv->stats = calloc((size_t)srv->n_workers, sizeof(skd_stats));
    srv->workers = calloc((size_t)srv->n_workers, sizeof(skd_worker *));
    if (srv->stop_fd < 0 || !srv->stats || !srv->workers) {
        skd_error("out of memory or descriptors");
        return -1;
    }
    /* With no --listen, IPv6 may be missing on this host: serve IPv4 alone. */
    if (cfg->n_listen == 0) {
        for (int i = 0; i < srv->n_specs; i++) {
            if (srv->specs[i].addr.family != STUNKIT_AF_INET6)
                continue;
            int fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
            if (fd >= 0) {
                close(fd);
                continue;
            }
            skd_warn("no IPv6 on this host: serving IPv4 only");
            memmove(&srv->specs[i], &srv->specs[i + 1], (size_t)(srv->n_specs - i - 1) * sizeof(srv->specs[0]));
            srv->n_specs--;
            i--;
        }
    }
    if (cfg->tls_cert) {
        if (skd_tls_open(&srv->tls, cfg->tls_cert, cfg->tls_key) != 0)
            return -1;
        srv->tls_on = 1;
    }
    for (int i = 0; i < srv->n_specs; i++) {
        if ((cfg->udp && probe_free(&srv->specs[i], SOCK_DGRAM) != 0) ||
            (cfg->tcp && probe_free(&srv->specs[i], SOCK_STREAM) != 0))
            return -1;
    }
    for (int i = 0; i < srv->n_workers; i++) {
        /* Each worker holds ~300 KiB of batch buffers: allocated once here. */
        srv->workers[i] = calloc(1, sizeof(skd_worker));
        if (!srv->workers[i] || worker_open(srv, srv->workers[i], i, i >= srv->n_dgram) != 0)
            return -1;
    }
    for (int i = 0; i < srv->n_specs; i++) {
        char name[96];
        describe(&srv->specs[i],
                 srv->specs[i].tls ? (cfg->udp ? "tls+dtls" : "tls") : cfg->udp && cfg->tcp ? "udp+tcp"
                                                    : cfg->udp                 ? "udp"
                                                                               : "tcp",
                 name,
                 sizeof(name));
        const skd_family *fam = srv->specs[i].addr.family == STUNKIT_AF_INET6 ? &srv->hcfg.v6 : &srv->hcfg.v4;
        skd_info("listening on %s%s", name,
                 fam->rfc5780 ? (srv->specs[i].ip_index || srv->specs[i].port_index ? " (RFC 5780 alternate)"
                                                                                    : " (RFC 5780 primary)")
                              : "");
    }
    return 0;
}

int skd_server_start(skd_server *srv)
{
    for (int i = 0; i < srv->n_workers; i++) {
        if (pthread_create(&srv->workers[i]->thread, NULL, worker_main, srv->workers[i]) != 0) {
            skd_error("cannot start worker thread %d: %s", i, strerror(errno));
            return -1;
        }
        srv->workers[i]->started = 1;
    }
    return 0;
}

void skd_server_stop(skd_server *srv)
{
    uint64_t one = 1;
    __atomic_store_n(&srv->stopping, 1, __ATOMIC_RELEASE);
    if (write(srv->stop_fd, &one, sizeof(one)) < 0)
        skd_warn("cannot signal workers: %s", strerror(errno));
    for (int i = 0; i < srv->n_workers; i++)
        if (srv->workers[i] && srv->workers[i]->started) {
            pthread_join(srv->workers[i]->thread, NULL);
            srv->workers[i]->started = 0;
        }
}

void skd_server_close(skd_server *srv)
{
    for (int i = 0; i < srv->n_workers && srv->workers; i++) {
        skd_worker *w = srv->workers[i];
        if (!w)
            continue;
        while (w->conn_head)
            conn_close(w, w->conn_head);
        for (int k = 0; k < w->n_udp; k++)
            close(w->udp[k].fd);
        for (int k = 0; k < w->n_listeners; k++)
            close(w->listeners[k].fd);
        if (w->epfd >= 0)
            close(w->epfd);
        skd_ratelimit_free(&w->rl);
        if (w->dtls_on)
            skd_dtls_free(&w->dtls);
        free(w);
    }
    free(srv->workers);
    free(srv->stats);
    if (srv->tls_on)
        skd_tls_close(&srv->tls);
    if (srv->stop_fd >= 0)
        close(srv->stop_fd);
    memset(srv, 0, sizeof(*srv));
}
