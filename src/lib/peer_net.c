/*
 * peer_net.c - the peer's sockets (stunkit/peer.h): a UDP socket on every
 * usable local address (each a base of the ICE agent), TCP or TLS streams
 * to the server (TURN over TCP, the rendezvous when UDP to the server goes
 * unanswered or is refused), and where the agent's datagrams leave
 * (peer_route) and the sockets' enter (peer_sock_readable).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "peer_int.h"

/* A UDP socket on ip (any port): the application's network binds it
 * (stunkit_peer_io), else a socket of ours, watched as kind/index. */
int peer_udp_open(stunkit_peer *p, const stunkit_addr *ip, peer_sock *s, int kind, uint32_t index)
{
    s->fd = -1;
    if (p->has_io) {
        stunkit_addr a = *ip;
        a.port = 0;
        return p->io.bind(p->io.ctx, &a, &s->local) == 0 ? 0 : -1;
    }
    struct sockaddr_storage ss;
    stunkit_addr a = *ip;
    a.port = 0;
    int sl = stunkit_addr_to_sockaddr(&a, &ss);
    int fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
    if (ss.ss_family == AF_INET6) {
        int one = 1;
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    }
    struct sockaddr_storage mine;
    socklen_t ml = sizeof(mine);
    if (bind(fd, (struct sockaddr *)&ss, (socklen_t)sl) != 0 || getsockname(fd, (struct sockaddr *)&mine, &ml) != 0) {
        close(fd);
        return -1;
    }
    s->fd = fd;
    stunkit_addr_from_sockaddr(&s->local, (struct sockaddr *)&mine);
    peer_watch(p, fd, kind, index, 0);
    return 0;
}

#define PEER_TX_BATCH 32
struct peer_tx {
    int n, fd;
    struct mmsghdr m[PEER_TX_BATCH];
    struct iovec iov[PEER_TX_BATCH];
    struct sockaddr_storage to[PEER_TX_BATCH];
    uint8_t buf[PEER_TX_BATCH][PEER_MAX_DATA + 64];
};

/* A step begins: what it sends waits in the batch (allocated once). */
void peer_tx_begin(stunkit_peer *p)
{
    if (!p->tx && !p->has_io)
        p->tx = malloc(sizeof(*p->tx));
    if (p->tx) {
        p->tx->n = 0;
        p->batching = 1;
    }
}

void peer_tx_free(stunkit_peer *p)
{
    free(p->tx);
    p->tx = NULL;
}

/* Where every datagram of the peer's leaves. */
void peer_udp_send(stunkit_peer *p, const peer_sock *s, const stunkit_addr *to, const void *data, size_t len)
{
    if (p->has_io) {
        p->io.send(p->io.ctx, &s->local, to, data, len);
        return;
    }
    peer_tx *tx = p->tx;
    if (p->batching && tx && len <= sizeof(tx->buf[0])) {
        if (tx->n && (tx->fd != s->fd || tx->n == PEER_TX_BATCH))
            peer_tx_flush(p);
        int k = tx->n++;
        tx->fd = s->fd;
        memcpy(tx->buf[k], data, len);
        tx->iov[k] = (struct iovec){tx->buf[k], len};
        memset(&tx->m[k].msg_hdr, 0, sizeof(tx->m[k].msg_hdr));
        tx->m[k].msg_hdr.msg_name = &tx->to[k];
        tx->m[k].msg_hdr.msg_namelen = (socklen_t)stunkit_addr_to_sockaddr(to, &tx->to[k]);
        tx->m[k].msg_hdr.msg_iov = &tx->iov[k];
        tx->m[k].msg_hdr.msg_iovlen = 1;
        return;
    }
    struct sockaddr_storage ss;
    int sl = stunkit_addr_to_sockaddr(to, &ss);
    (void)sendto(s->fd, data, len, MSG_DONTWAIT, (struct sockaddr *)&ss, (socklen_t)sl);
}

/* What waits in the batch leaves (a datagram the socket refuses, as a full
 * buffer, is dropped, as sendto's would be). */
void peer_tx_flush(stunkit_peer *p)
{
    peer_tx *tx = p->tx;
    if (!tx || !tx->n)
        return;
    for (int off = 0; off < tx->n;) {
        int r = sendmmsg(tx->fd, tx->m + off, (unsigned)(tx->n - off), MSG_DONTWAIT);
        off += r > 0 ? r : 1; /* skip the one that failed */
    }
    tx->n = 0;
}

void peer_udp_close(stunkit_peer *p, peer_sock *s)
{
    if (p->tx && p->tx->n && p->tx->fd == s->fd)
        peer_tx_flush(p);
    if (s->fd >= 0)
        close(s->fd);
    else if (p->has_io && s->local.family && p->io.unbind)
        p->io.unbind(p->io.ctx, &s->local);
    s->fd = -1;
    memset(&s->local, 0, sizeof(s->local));
}

int peer_open_sock(stunkit_peer *p, const stunkit_addr *ip)
{
    if (p->nsocks == PEER_MAX_SOCKS)
        return -1;
    if (peer_udp_open(p, ip, &p->socks[p->nsocks], EV_SOCK, (uint32_t)p->nsocks) != 0)
        return -1;
    p->nsocks++;
    return 0;
}

/* 1 for an interface without a link layer of its own (ARPHRD_NONE: tun
 * devices, WireGuard, other layer-3 tunnels): a path through it may be a
 * path through the very tunnel the peer carries (WireGuard over punch
 * --forward, say), which would
 * carry itself; ICE must not find it. (A PPP uplink is ARPHRD_PPP: kept.) */
static int tunnel_interface(const char *name)
{
    char path[128], buf[16];
    snprintf(path, sizeof(path), "/sys/class/net/%s/type", name);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    int tunnel = fgets(buf, sizeof(buf), f) && atoi(buf) == 65534;
    fclose(f);
    return tunnel;
}

/* Every usable local address: up, not loopback (unless the server is on
 * loopback), not on a tunnel interface, IPv6 only global or unique-local. */
void peer_open_all(stunkit_peer *p)
{
    const stunkit_addr *server = &p->server;
    struct ifaddrs *ifs, *i;
    int loop_server = (server->family == STUNKIT_AF_INET && server->ip[0] == 127) ||
                      (server->family == STUNKIT_AF_INET6 && !memcmp(server->ip, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\1", 16));
    if (getifaddrs(&ifs) != 0)
        return;
    for (i = ifs; i; i = i->ifa_next) {
        if (!i->ifa_addr || !(i->ifa_flags & IFF_UP))
            continue;
        if (i->ifa_addr->sa_family != AF_INET && i->ifa_addr->sa_family != AF_INET6)
            continue;
        stunkit_addr a;
        if (stunkit_addr_from_sockaddr(&a, i->ifa_addr) != 0)
            continue;
        int loop = (i->ifa_flags & IFF_LOOPBACK) != 0;
        if (loop != loop_server)
            continue;
        if (a.family == STUNKIT_AF_INET6 && !loop && (a.ip[0] == 0xfe && (a.ip[1] & 0xc0) == 0x80))
            continue; /* link-local: needs a scope, and the peer is not on this link */
        if (tunnel_interface(i->ifa_name))
            continue;
        peer_open_sock(p, &a);
    }
    freeifaddrs(ifs);
}

/* A whole message to the server over a stream (TLS: through the link). */
void peer_stream_send(peer_stream *st, const uint8_t *data, size_t len)
{
    if (st->link)
        (void)stunkit_link_send(st->link, data, len, 1000);
    else
        (void)send(st->fd, data, len, MSG_NOSIGNAL);
}


void peer_route(stunkit_peer *p, const stunkit_ice_route *r)
{
    if (r->base == PEER_TURN_STREAM) {
        if (p->turn_tcp.connected && !p->turn_tcp.closed)
            peer_stream_send(&p->turn_tcp, r->data, r->len);
        return;
    }
    if (r->base >= 0 && r->base < p->nsocks)
        peer_udp_send(p, &p->socks[r->base], &r->to, r->data, r->len);
}


/* TCP: connects in the background (stream_writable says when). TLS: the
 * link connects and completes the handshake before returning (at most 5 s;
 * only ever a fallback, when UDP has gone unanswered). */
void peer_stream_open(stunkit_peer *p, peer_stream *st, int kind)
{
    struct sockaddr_storage ss;
    const stunkit_addr *to = kind == EV_STREAM_TURN ? &p->turn_server : &p->stream_server;
    int sl = stunkit_addr_to_sockaddr(to, &ss);
    memset(st, 0, sizeof(*st));
    st->remote = *to;
    if (p->tls) {
        stunkit_link_config lc;
        memset(&lc, 0, sizeof(lc));
        lc.size = sizeof(lc);
        lc.transport = STUNKIT_TLS;
        lc.tls_name = kind == EV_STREAM_TURN && p->turn_tls_name[0] ? p->turn_tls_name : p->tls_name;
        lc.tls_insecure = p->cfg.tls_insecure;
        lc.ca_file = p->ca_file;
        lc.timeout_ms = 5000;
        lc.error_text = p->tls_error;
        lc.error_text_cap = sizeof(p->tls_error);
        lc.alpn = kind == EV_STREAM_TURN ? "stun.turn" : "stun.nat-discovery"; /* RFC 7443 */
        if (stunkit_link_open(&st->link, to, &lc) != 0) {
            st->link = NULL;
            st->fd = -1;
            st->closed = 1;
            return;
        }
        st->fd = stunkit_link_fd(st->link);
        st->local = stunkit_link_local(st->link);
        st->connected = 1;
        peer_watch(p, st->fd, kind, 0, 0);
        return;
    }
    st->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (st->fd < 0)
        return;
    if (connect(st->fd, (struct sockaddr *)&ss, (socklen_t)sl) != 0 && errno != EINPROGRESS) {
        close(st->fd);
        st->fd = -1;
        st->closed = 1;
        return;
    }
    peer_watch(p, st->fd, kind, 0, 1); /* writable: connected (or refused) */
}

void peer_stream_close(peer_stream *st)
{
    if (st->link)
        stunkit_link_close(st->link); /* its descriptor with it */
    else if (st->fd >= 0)
        close(st->fd);
    st->link = NULL;
    st->fd = -1;
    st->closed = 1;
}

/* One whole message from the stream: TURN messages and ChannelData (RFC
 * 8656 12.5) to the agent, STUN to the rendezvous. */
static void stream_message(stunkit_peer *p, int turn, const uint8_t *msg, size_t len, uint64_t now)
{
    if (turn && p->ice) {
        stunkit_app_data d;
        if (stunkit_ice_input(p->ice, PEER_TURN_STREAM, &p->turn_tcp.remote, msg, len, now, &d) == STUNKIT_INPUT_APP_DATA &&
            peer_from_peer(p, &d.from, 1))
            peer_app_in(p, d.data, d.len, now);
    } else if (!turn && p->rdv) {
        stunkit_rdv_input(p->rdv, 0, NULL, msg, len, now);
    }
}

static void stream_lost(stunkit_peer *p, peer_stream *st, int turn, uint64_t now)
{
    peer_stream_close(st);
    if (turn && p->ice && (st->added || p->turn_moving))
        stunkit_ice_stream_closed(p->ice, PEER_TURN_STREAM, now);
    if (turn)
        p->turn_moving = 0;
    if (!turn && p->rdv_on_tcp && !peer_fleet_move(p, now, "closed the connection")) {
        p->rdv_failed = 1;
        snprintf(p->reason, sizeof(p->reason), "the rendezvous failed: the server closed the connection");
    }
}

/* The connection finished connecting (or failed). */
static void stream_writable(stunkit_peer *p, peer_stream *st, int kind)
{
    int err = 0;
    socklen_t el = sizeof(err);
    struct sockaddr_storage mine;
    socklen_t ml = sizeof(mine);
    if (getsockopt(st->fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0 || err ||
        getsockname(st->fd, (struct sockaddr *)&mine, &ml) != 0) {
        peer_stream_close(st);
        return;
    }
    stunkit_addr_from_sockaddr(&st->local, (struct sockaddr *)&mine);
    st->connected = 1;
    peer_watch(p, st->fd, kind, 0, 0);
}

/* Reads what came and hands each whole message on: TURN messages and
 * ChannelData (RFC 8656 12.5) to the agent, STUN to the rendezvous. */
static void stream_readable(stunkit_peer *p, peer_stream *st, int turn, uint64_t now)
{
    if (st->link) { /* the link frames: one message at a time, all it holds */
        int n;
        while ((n = stunkit_link_recv(st->link, st->rx, sizeof(st->rx), 0)) > 0)
            stream_message(p, turn, st->rx, (size_t)n, now);
        if (n < 0)
            stream_lost(p, st, turn, now);
        return;
    }
    ssize_t n = recv(st->fd, st->rx + st->rx_len, sizeof(st->rx) - st->rx_len, 0);
    if (n <= 0) {
        if (n == 0 || (errno != EAGAIN && errno != EINTR))
            stream_lost(p, st, turn, now);
        return;
    }
    st->rx_len += (size_t)n;
    size_t off = 0;
    for (;;) {
        size_t need = 0;
        int rv = turn ? stunkit_turn_frame(st->rx + off, st->rx_len - off, &need)
                      : stunkit_msg_frame(st->rx + off, st->rx_len - off, &need);
        if (rv == STUNKIT_ERR_TRUNCATED || (rv == 0 && need > st->rx_len - off)) {
            if (rv == 0 && need > sizeof(st->rx)) {
                peer_stream_close(st); /* larger than anything the server sends */
                return;
            }
            break;
        }
        if (rv != 0) {
            peer_stream_close(st); /* not STUN: the stream is lost */
            return;
        }
        stream_message(p, turn, st->rx + off, need, now);
        off += need;
    }
    memmove(st->rx, st->rx + off, st->rx_len - off);
    st->rx_len -= off;
}

/* An ICMP error on the connected rendezvous socket: port unreachable
 * (ECONNREFUSED), a firewall's administratively prohibited (EHOSTUNREACH),
 * no route (ENETUNREACH), a local firewall (EPERM, EACCES). UDP to the
 * server is refused: the TCP fallbacks start at once, not after their wait. */
int peer_udp_refusal(int e)
{
    return e == ECONNREFUSED || e == EHOSTUNREACH || e == ENETUNREACH || e == EPERM || e == EACCES;
}

/* What the streams need now: the TURN stream handed to the agent once both
 * exist; the rendezvous moved to TCP when UDP stays unanswered. */
void peer_streams_step(stunkit_peer *p, uint64_t now)
{
    /* RFC 8656 3.1: TURN over TCP for networks without UDP. Only then: its
     * candidate would add pairs to every check list (and the check RTO
     * grows with their number, RFC 8445 14.3), slowing the usual paths */
    if (p->rdv && !p->rdv_on_tcp && stunkit_rdv_answered(p->rdv))
        p->udp_server_ok = 1;
    if (p->tcp_relay && p->turn_tcp.fd < 0 && !p->turn_tcp.closed && !p->udp_server_ok &&
        (p->udp_refused || now - p->t0 >= PEER_TCP_RELAY_MS)) {
        p->t_tcp_relay = now - p->t0;
        p->tcp_relay_opened = 1;
        peer_stream_open(p, &p->turn_tcp, EV_STREAM_TURN);
    }
    if (p->ice && p->turn_tcp.connected && !p->turn_tcp.added && !p->turn_tcp.closed) {
        if (p->turn_moving) /* to the alternate a 300 named */
            stunkit_ice_stream_moved(p->ice, PEER_TURN_STREAM, &p->turn_tcp.local, now);
        else
            stunkit_ice_add_stream(p->ice, PEER_TURN_STREAM, 1, &p->turn_tcp.local, now);
        p->turn_moving = 0;
        p->turn_tcp.added = 1;
    }
    if (p->rdv && !p->rdv_on_tcp && !stunkit_rdv_answered(p->rdv)) {
        if (p->rdv_tcp.fd < 0 && !p->rdv_tcp.closed && (p->udp_refused || now - p->rdv_start >= PEER_RDV_UDP_MS)) {
            peer_stream_open(p, &p->rdv_tcp, EV_STREAM_RDV);
            if (p->rdv_tcp.closed && p->tls && !peer_fleet_move(p, now, "has no TLS for us")) {
                p->rdv_failed = 1;
                snprintf(p->reason, sizeof(p->reason), "the rendezvous failed: TLS to the server: %.110s", p->tls_error);
            }
        }
        if (p->rdv_tcp.connected && !p->rdv_tcp.closed) {
            p->rdv_on_tcp = 1;
            stunkit_rdv_set_transport(p->rdv, STUNKIT_TCP, now);
        }
    }
}


/* The agent's TURN server over TCP/TLS answered 300 Try Alternate (it
 * drains, or is full: RFC 8489 10): the stream goes to the alternate it
 * named (over TLS, checked against its ALTERNATE-DOMAIN when given); once
 * connected, peer_streams_step hands it to the agent, whose Allocate
 * follows. Not reachable: the agent hears the stream closed. */
void peer_turn_stream_redirected(stunkit_peer *p, const stunkit_addr *to, const char *domain, uint64_t now)
{
    char a[STUNKIT_ADDRSTRLEN];
    stunkit_addr_format(to, a, sizeof(a));
    peer_log(p, now, "TURN over %s: 300 Try Alternate, on to %s%s%s", p->tls ? "TLS" : "TCP", a, domain[0] ? " " : "",
             domain);
    peer_stream_close(&p->turn_tcp);
    p->turn_server = *to;
    if (domain[0])
        snprintf(p->turn_tls_name, sizeof(p->turn_tls_name), "%s", domain);
    p->turn_moving = 1;
    p->turn_redirects++;
    peer_stream_open(p, &p->turn_tcp, EV_STREAM_TURN);
    if (p->turn_tcp.closed) {
        stunkit_ice_stream_closed(p->ice, PEER_TURN_STREAM, now);
        p->turn_moving = 0;
    }
}

/* The stream is writable (its connect ended) or readable. */
void peer_stream_event(stunkit_peer *p, peer_stream *st, int turn, uint64_t now)
{
    if (st->fd < 0)
        return;
    if (!st->connected)
        stream_writable(p, st, turn ? EV_STREAM_TURN : EV_STREAM_RDV);
    else
        stream_readable(p, st, turn, now);
}

/* When a TCP fallback is due (UINT64_MAX: none). */
uint64_t peer_streams_timeout(const stunkit_peer *p)
{
    uint64_t next = UINT64_MAX;
    if (p->tcp_relay && p->turn_tcp.fd < 0 && !p->turn_tcp.closed && !p->udp_server_ok)
        next = p->t0 + PEER_TCP_RELAY_MS;
    if (p->rdv && !p->rdv_on_tcp && !stunkit_rdv_answered(p->rdv) && p->rdv_tcp.fd < 0 && !p->rdv_tcp.closed &&
        p->rdv_start + PEER_RDV_UDP_MS < next)
        next = p->rdv_start + PEER_RDV_UDP_MS;
    return next;
}

/* A message of the peers' own (what each saw of its NAT, guessing's
 * rounds): through ICE's selected pair, or the direct path birthday
 * punching found. 0, or -1 when there is no path. */
int peer_send_ctl(stunkit_peer *p, const char *text)
{
    uint8_t buf[512];
    stunkit_ice_route r;
    if (p->closed || !p->ice)
        return -1;
    if (p->sp.state == SPRAY_DIRECT) {
        peer_udp_send(p, p->sp.sock >= 0 ? &p->sp.s[p->sp.sock] : &p->socks[p->sp.base], &p->sp.to, text, strlen(text));
        return 0;
    }
    if (stunkit_ice_send(p->ice, (const uint8_t *)text, strlen(text), buf, sizeof(buf), &r) != 0)
        return -1;
    peer_route(p, &r);
    return 0;
}

/* A datagram that came to local socket i: the agent's (checks, answers,
 * the TURN server's), birthday probes on the guessing base, the peer's
 * data. */
void peer_sock_datagram(stunkit_peer *p, int i, const stunkit_addr *src, const uint8_t *buf, size_t n, uint64_t now)
{
    stunkit_app_data d;
    if (!p->ice)
        return; /* before the agent (the room has not said the role): nothing is ours yet */
    if (i == p->sp.base && n >= 5 && !memcmp(buf, SPRAY_MAGIC, 5)) {
        peer_spray_input(p, -1, src, buf, n, now);
        return;
    }
    int r = stunkit_ice_input(p->ice, i, src, buf, n, now, &d);
    if (r == STUNKIT_INPUT_NOT_MINE && peer_from_peer(p, src, 0))
        peer_app_in(p, buf, n, now);
    else if (r == STUNKIT_INPUT_APP_DATA && peer_from_peer(p, &d.from, 1))
        peer_app_in(p, d.data, d.len, now);
}

/* What came to local socket i. */
void peer_sock_readable(stunkit_peer *p, int i, uint64_t now)
{
    /* up to PEER_BATCH datagrams a system call (recvmmsg): under load the
     * peer's datagrams come in bursts */
    enum { PEER_BATCH = 16 };
    static __thread uint8_t bufs[PEER_BATCH][PEER_MAX_DATA + 64];
    struct sockaddr_storage from[PEER_BATCH];
    struct iovec iov[PEER_BATCH];
    struct mmsghdr m[PEER_BATCH];
    for (int rounds = 0; rounds < 64; rounds++) {
        for (int k = 0; k < PEER_BATCH; k++) {
            iov[k] = (struct iovec){bufs[k], sizeof(bufs[k])};
            memset(&m[k].msg_hdr, 0, sizeof(m[k].msg_hdr));
            m[k].msg_hdr.msg_name = &from[k];
            m[k].msg_hdr.msg_namelen = sizeof(from[k]);
            m[k].msg_hdr.msg_iov = &iov[k];
            m[k].msg_hdr.msg_iovlen = 1;
        }
        int got = recvmmsg(p->socks[i].fd, m, PEER_BATCH, MSG_DONTWAIT, NULL);
        if (got <= 0)
            return;
        for (int k = 0; k < got; k++) {
            stunkit_addr src;
            if (stunkit_addr_from_sockaddr(&src, (struct sockaddr *)&from[k]) == 0)
                peer_sock_datagram(p, i, &src, bufs[k], m[k].msg_len, now);
        }
        if (got < PEER_BATCH)
            return;
    }
}
