/*
 * worker_udp.c - the UDP path, where most packets enter and answers leave:
 *
 *   recvmmsg a batch (blocking, or after epoll_wait when the worker owns
 *   several sockets) -> skd_serve() each into the batch's outbox ->
 *   sendmmsg the batch, grouped by the socket each datagram leaves from
 *   (CHANGE-REQUEST picks another one).
 *
 * Nothing here allocates, locks or logs.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>

#include "worker_int.h"

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

/* Sets the source address of a datagram leaving a wildcard socket. */
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

static void udp_flush(skd_worker *w, int n)
{
    int i = 0;
    while (i < n) {
        int j = i;
        while (j < n && w->tx_fd[j] == w->tx_fd[i])
            j++;
        int fd = w->tx_fd[i];
        while (i < j) {
            int sent = sendmmsg(fd, &w->tx[i], (unsigned)(j - i), MSG_DONTWAIT);
            if (sent > 0) {
                uint64_t bytes = 0;
                for (int k = i; k < i + sent; k++)
                    bytes += w->tx[k].msg_len;
                SKD_STAT_ADD(w->st, udp_tx, sent);
                SKD_STAT_ADD(w->st, udp_tx_bytes, bytes);
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

/* Turns the outbox's datagrams [from, ob->n) into mmsghdrs. */
static int queue_out(skd_worker *w, skd_sock *s, const stunkit_addr *dst, skd_outbox *ob, size_t from, int ntx)
{
    for (size_t k = from; k < ob->n; k++) {
        skd_out *o = &ob->out[k];
        skd_sock *out = s;
        if (o->relay_fd < 0 && (o->ip_index != s->ip_index || o->port_index != s->port_index || s->kind != EV_UDP))
            out = w->by_index[dst->family == STUNKIT_AF_INET6][o->ip_index][o->port_index];
        if (!out && o->relay_fd < 0) {
            SKD_STAT_INC(w->st, send_errors);
            continue;
        }
        struct msghdr *t = &w->tx[ntx].msg_hdr;
        memset(t, 0, sizeof(*t));
        w->tx_iov[ntx].iov_base = o->data;
        w->tx_iov[ntx].iov_len = o->len;
        t->msg_iov = &w->tx_iov[ntx];
        t->msg_iovlen = 1;
        t->msg_name = &w->tx_addr[ntx];
        t->msg_namelen = (socklen_t)stunkit_addr_to_sockaddr(&o->to, &w->tx_addr[ntx]);
        if (o->relay_fd < 0 && out->wildcard) {
            t->msg_control = w->tx_ctl[ntx];
            t->msg_controllen = pktinfo_src(w->tx_ctl[ntx], dst);
        }
        w->tx_fd[ntx] = o->relay_fd >= 0 ? o->relay_fd : out->fd;
        ntx++;
    }
    return ntx;
}

/* Datagrams from peers on a TURN relay socket: each becomes ChannelData or
 * a Data indication for the allocation's client, sent from the listening
 * socket the client uses. */
void skd_relay_drain(skd_worker *w, skd_relay *r)
{
    skd_outbox ob;
    skd_outbox_init(&ob, w->tx_buf, sizeof(w->tx_buf), w->tx_out, BATCH);
    for (int round = 0; round < MAX_DRAIN; round++) {
        rx_reset(w);
        int n = recvmmsg(r->fd, w->rx, BATCH, MSG_DONTWAIT, NULL);
        if (n <= 0)
            return;
        uint64_t now = skd_now_ms();
        skd_outbox_clear(&ob);
        for (int i = 0; i < n; i++) {
            stunkit_addr peer;
            if (w->rx[i].msg_hdr.msg_flags & MSG_TRUNC) {
                SKD_STAT_INC(w->st, turn_too_big); /* a peer's datagram over RX_SIZE */
                continue;
            }
            if (stunkit_addr_from_sockaddr(&peer, (struct sockaddr *)&w->rx_addr[i]) != 0)
                continue;
            skd_turn_from_peer(&w->turn, r, &peer, w->rx_buf[i], w->rx[i].msg_len, now, &ob);
        }
        skd_alloc *a = r->alloc;
        if (a->conn) {
            /* the client is on a TCP/TLS connection or a DTLS session of
             * this worker: its owner sends it (a failed write may close
             * it and free the allocation with r: no second round) */
            a->conn->deliver(w, a->conn, &ob);
            return;
        }
        skd_sock *via = w->by_index[a->server.family == STUNKIT_AF_INET6][a->ip_index][a->port_index];
        if (via) {
            int ntx = queue_out(w, via, &a->server, &ob, 0, 0);
            udp_flush(w, ntx);
        }
        if (n < BATCH)
            return;
    }
}

void skd_udp_drain(skd_worker *w, skd_sock *s, int blocking)
{
    skd_outbox ob;
    skd_outbox_init(&ob, w->tx_buf, sizeof(w->tx_buf), w->tx_out, BATCH);
    for (int round = 0; round < MAX_DRAIN; round++) {
        rx_reset(w);
        /* blocking: wait for the first datagram, then take what is there */
        if (blocking)
            skd_worker_offline(w);
        int n = recvmmsg(s->fd, w->rx, BATCH, blocking ? MSG_WAITFORONE : MSG_DONTWAIT, NULL);
        if (blocking)
            skd_worker_quiescent(w);
        if (n <= 0)
            return;
        uint64_t now = skd_now_ms();
        uint64_t unix_s = skd_unix_now();
        int ntx = 0;
        skd_outbox_clear(&ob);
        SKD_STAT_ADD(w->st, udp_rx, n);
        {
            uint64_t bytes = 0;
            for (int i = 0; i < n; i++)
                bytes += w->rx[i].msg_len;
            SKD_STAT_ADD(w->st, udp_rx_bytes, bytes);
        }
        for (int i = 0; i < n; i++) {
            struct msghdr *h = &w->rx[i].msg_hdr;
            skd_request rq = {.transport = STUNKIT_UDP}; /* every field not set below is zero */
            if (h->msg_flags & MSG_TRUNC) {
                /* over RX_SIZE: TURN data (ChannelData, a Send indication)
                 * counted as such, anything else malformed */
                const uint8_t *p = w->rx_buf[i];
                int turn_data = w->turn_on && ((p[0] >= 0x40 && p[0] <= 0x7F) || (p[0] == 0x00 && p[1] == 0x16));
                if (turn_data)
                    SKD_STAT_INC(w->st, turn_too_big);
                else
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
            rq.transport = STUNKIT_UDP;
            rq.ip_index = s->ip_index;
            rq.port_index = s->port_index;
            rq.now_s = unix_s;
            rq.now_ms = now;
            rq.turn = w->turn_on ? &w->turn : NULL;
            rq.conn = NULL; /* a datagram: no connection owns the 5-tuple */
            /* one answer per request today, so a batch's outbox never
             * overflows; a request whose answers do not fit is dropped */
            size_t before = ob.n;
            if (skd_serve(w, &rq, &ob, now))
                ntx = queue_out(w, s, &rq.dst, &ob, before, ntx);
        }
        udp_flush(w, ntx);
        if (n < BATCH || blocking)
            return;
    }
}
