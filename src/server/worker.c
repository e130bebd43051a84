/*
 * worker.c - the workers: their sockets, threads and event loop (which
 * sends each epoll event to the file that owns its object, ev_kind.h).
 *
 * Where a packet enters: worker_udp.c (UDP, and peers' datagrams on TURN
 * relay sockets), worker_stream.c (TCP, TLS), worker_dtls.c (DTLS). Where
 * every request passes: serve.c (rate limit, skd_handle(), counters).
 * Where it is parsed and answered: handler.c and the method files. Where
 * the answer leaves: the same file it entered by; relayed data for a
 * client on a connection, through the connection's hook (conn_hook.h).
 * Clocks: clock.c. Freeing what a reload replaced: reclaim.c.
 */
#define _GNU_SOURCE
#include "worker.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "turn_limits.h"
#include "worker_int.h"
#include "xdp.h"

/* ---- the loop ---- */

/*
 * A worker whose only socket is one UDP socket does not use epoll: it blocks
 * in recvmmsg. A socket watched by epoll pays for a wake-up callback on
 * every datagram received and every one sent (sock_def_readable,
 * sock_wfree), which profiling showed to be most of the distance to a bare
 * recvmmsg/sendmmsg loop. SO_RCVTIMEO bounds the wait so a stop (and the
 * reclamation epoch) is noticed.
 */
static void *worker_blocking(skd_worker *w)
{
    skd_sock *s = &w->udp[0];
    struct timeval tv = {0, 200000};
    setsockopt(s->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    fcntl(s->fd, F_SETFL, fcntl(s->fd, F_GETFL) & ~O_NONBLOCK);
    while (!__atomic_load_n(&w->srv->stopping, __ATOMIC_ACQUIRE))
        skd_udp_drain(w, s, 1); /* offline while blocked in recvmmsg */
    return NULL;
}

static void *worker_main(void *arg)
{
    skd_worker *w = arg;
    if (w->blocking)
        return worker_blocking(w);
    struct epoll_event evs[64];
    for (;;) {
        skd_worker_offline(w);
        /* a bounded wait: the timers */
        int n = epoll_wait(w->epfd, evs, 64, 1000);
        if (n < 0 && errno != EINTR)
            break;
        skd_worker_quiescent(w);
        pthread_mutex_lock(&w->ctl_lock);
        for (int i = 0; i < n; i++) {
            int kind = *(int *)evs[i].data.ptr;
            switch (kind) {
            case EV_STOP: pthread_mutex_unlock(&w->ctl_lock); return NULL;
            case EV_UDP: skd_udp_drain(w, evs[i].data.ptr, 0); break;
            case EV_LISTEN: skd_stream_accept(w, evs[i].data.ptr); break;
            case EV_DTLS: skd_dtls_drain(w, evs[i].data.ptr); break;
            case EV_RELAY: skd_relay_drain(w, evs[i].data.ptr); break;
            case EV_DEAD: break; /* closed earlier in this batch */
            default: skd_stream_event(w, evs[i].data.ptr, evs[i].events); break;
            }
        }
        if (w->stream_role)
            skd_stream_reap(w);
        if (w->turn_on)
            skd_turn_reap(&w->turn);
        if (w->turn_on) {
            skd_turn_tick(&w->turn, skd_now_ms());
            /* --log-level debug: allocations as they come and go (a line
             * per change of the totals, at most one per loop turn) */
            if (skd_log_level >= SKD_LOG_DEBUG && (w->turn.allocations_made != w->dbg_made ||
                                                   w->turn.allocations_expired != w->dbg_expired)) {
                w->dbg_made = w->turn.allocations_made;
                w->dbg_expired = w->turn.allocations_expired;
                skd_debug("thread %d: TURN allocations %d live, %llu made, %llu expired", w->id, w->turn.n_allocs, (unsigned long long)w->dbg_made, (unsigned long long)w->dbg_expired);
            }
            SKD_STAT_SET(w->st, turn_allocations, w->turn.allocations_made);
            SKD_STAT_SET(w->st, turn_expired, w->turn.allocations_expired);
            SKD_STAT_SET(w->st, turn_to_peer, w->turn.relayed_to_peer);
            SKD_STAT_SET(w->st, turn_to_client, w->turn.relayed_to_client);
            SKD_STAT_SET(w->st, turn_to_peer_bytes, w->turn.relayed_to_peer_bytes);
            SKD_STAT_SET(w->st, turn_to_client_bytes, w->turn.relayed_to_client_bytes);
            SKD_STAT_SET(w->st, turn_peer_refused, w->turn.peer_refused);
            SKD_STAT_SET(w->st, turn_no_permission, w->turn.no_permission);
            SKD_STAT_SET(w->st, turn_over_quota, w->turn.over_quota);
            SKD_STAT_SET(w->st, turn_live, (uint64_t)w->turn.n_allocs);
        }
        if (w->stream_role) {
            skd_stream_timers(w);
            if (w->dtls_on) {
                skd_dtls_tick(&w->dtls, skd_now_ms(), w->idle_ms, w->request_ms);
                SKD_STAT_SET(w->st, dtls_hello_verify, w->dtls.hello_verify);
                SKD_STAT_SET(w->st, dtls_sessions, w->dtls.created);
                SKD_STAT_SET(w->st, dtls_refused, w->dtls.refused);
            }
        }
        pthread_mutex_unlock(&w->ctl_lock);
    }
    return NULL;
}

/* ---- setup ---- */

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
    if (type == SOCK_STREAM && listen(fd, 4096) != 0) {
        snprintf(why, why_len, "listen: %s", strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

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

static int per_worker(int total, int workers)
{
    int n = total / (workers ? workers : 1);
    return n < 1 ? 1 : n;
}

static int worker_open(skd_server *srv, skd_worker *w, int id, int stream_role)
{
    const skd_config *cfg = srv->cfg;
    char why[128], name[96];
    w->srv = srv;
    w->id = id;
    w->stream_role = stream_role;
    w->st = &srv->stats[id];
    w->reserve_fd = -1;
    w->epfd = epoll_create1(EPOLL_CLOEXEC);
    w->pools[0].max = per_worker(cfg->tcp_max_conns, srv->n_stream);
    w->pools[1].max = per_worker(cfg->tls_max_conns, srv->n_stream);
    w->per_source = cfg->tcp_per_source;
    w->idle_ms = (uint32_t)cfg->tcp_idle_s * 1000u;
    w->request_ms = (uint32_t)cfg->request_timeout_s * 1000u;
    if (w->epfd < 0)
        return -1;
    if (stream_role)
        w->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (skd_ratelimit_init(&w->rl, cfg->rate_slots, (float)cfg->rate, (float)cfg->burst, (float)cfg->rate_redir,
                           (float)cfg->burst_redir, srv->seed ^ (uint32_t)id * 2654435761u) != 0)
        return -1;
    if (stream_role && srv->tls_on && cfg->udp) {
        if (skd_dtls_init(&w->dtls, cfg->dtls_per_source) != 0)
            return -1;
        w->dtls.on_end = skd_dtls_session_ended;
        w->dtls.on_end_ctx = w;
        w->dtls.holds = skd_dtls_session_holds;
        w->dtls_on = 1;
    }
    w->stop_kind = EV_STOP;
    if (skd_epoll_add(w->epfd, srv->stop_fd, EPOLLIN, &w->stop_kind) != 0)
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
            if (skd_epoll_add(w->epfd, fd, EPOLLIN, s) != 0)
                return -1;
        }
    }
    if (cfg->turn.enabled && (!stream_role || cfg->tcp || (srv->tls_on && cfg->udp))) {
        /* relay sockets join this worker's epoll set: no blocking mode */
        if (skd_turn_init(&w->turn, &cfg->turn, srv->turn_limits, w->epfd, srv->n_turn, srv->seed ^ (uint32_t)id,
                          skd_now_ms()) != 0)
            return -1;
        w->turn.own = srv->hcfg.own;
        w->turn.n_own = srv->hcfg.n_own;
        w->turn_on = 1;
    }
    if (!stream_role && w->n_udp == 1 && !w->turn_on) {
        w->blocking = 1;
        epoll_ctl(w->epfd, EPOLL_CTL_DEL, w->udp[0].fd, NULL);
    }
    return 0;
}

int skd_server_open(skd_server *srv, const skd_config *cfg)
{
    memset(srv, 0, sizeof(*srv));
    srv->cfg = cfg;
    srv->seed = cfg->seed;
    srv->n_specs = skd_config_sockets(cfg, srv->specs, SKD_MAX_SOCKS, &srv->hcfg);
    srv->hcfg.auth = cfg->auth; /* main hands ownership over after open */
    if (cfg->rdv.enabled) {
        skd_rdv *r = calloc(1, sizeof(*r));
        if (!r || skd_rdv_init(r, &cfg->rdv, srv->seed ^ 0x5244u) != 0) {
            free(r);
            skd_error("out of memory for the rendezvous rooms");
            return -1;
        }
        srv->hcfg.rdv = r;
    }
    /* Datagram workers serve plain UDP; stream workers TCP, TLS and DTLS,
     * so that a datagram worker with one socket can block in recvmmsg. */
    int has_udp = cfg->udp, has_stream = cfg->tcp || (cfg->tls_cert && cfg->udp);
    srv->n_dgram = has_udp ? cfg->threads : 0;
    srv->n_stream = has_stream ? cfg->threads : 0;
    srv->n_workers = srv->n_dgram + srv->n_stream;
    if (cfg->turn.enabled) {
        srv->n_turn = srv->n_dgram + (cfg->tcp || (cfg->tls_cert && cfg->udp) ? srv->n_stream : 0);
        srv->turn_limits = calloc(1, sizeof(*srv->turn_limits));
        if (!srv->turn_limits || skd_turn_limits_init(srv->turn_limits, cfg->turn.max_allocations,
                                                      cfg->turn.user_quota, srv->seed ^ 0x7475u) != 0) {
            free(srv->turn_limits);
            srv->turn_limits = NULL;
            skd_error("out of memory for the TURN limits");
            return -1;
        }
    }
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
        if (!srv->workers[i])
            return -1;
        pthread_mutex_init(&srv->workers[i]->ctl_lock, NULL);
        if (worker_open(srv, srv->workers[i], i, i >= srv->n_dgram) != 0)
            return -1;
    }
    for (int i = 0; i < srv->n_specs; i++) {
        char name[96];
        const skd_sock_spec *sp = &srv->specs[i];
        const char *proto = sp->tls ? (cfg->udp ? "tls+dtls" : "tls")
                            : cfg->udp && cfg->tcp ? "udp+tcp"
                            : cfg->udp             ? "udp"
                                                   : "tcp";
        describe(sp, proto, name, sizeof(name));
        const skd_family *fam = sp->addr.family == STUNKIT_AF_INET6 ? &srv->hcfg.v6 : &srv->hcfg.v4;
        skd_info("listening on %s%s", name,
                 fam->rfc5780 ? (sp->ip_index || sp->port_index ? " (RFC 5780 alternate)" : " (RFC 5780 primary)")
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

void skd_server_set_xdp(skd_server *srv, struct skd_xdp *x)
{
    srv->xdp = x;
    for (int i = 0; i < srv->n_workers; i++)
        if (srv->workers[i] && srv->workers[i]->turn_on && !srv->workers[i]->stream_role)
            srv->workers[i]->turn.xdp = x; /* UDP allocations' channels */
}

void skd_server_stats(const skd_server *srv, skd_stats *total)
{
    skd_stats_sum(total, srv->stats, srv->n_workers);
    skd_xdp_add_stats(srv->xdp, total);
    if (srv->hcfg.rdv) { /* one table for all workers: its own counters */
        skd_rdv_counters c;
        skd_rdv_counters_get(srv->hcfg.rdv, skd_now_ms(), &c);
        total->rdv_rooms_opened = c.rooms_opened;
        total->rdv_rooms_open = (uint64_t)c.rooms_open;
        total->rdv_rooms_expired = c.rooms_expired;
        total->rdv_peers_met = c.peers_met;
        total->rdv_refused_full = c.refused_full;
        total->rdv_refused_quota = c.refused_quota;
        total->rdv_refused_capacity = c.refused_capacity;
        total->rdv_refused_size = c.refused_size;
    }
}

void skd_server_close(skd_server *srv)
{
    /* detaches the program (exiting in any other way does too: the
     * bpf_link is a descriptor); the workers forget it first, as the
     * allocations freed below would remove their channels from its tables */
    struct skd_xdp *x = srv->xdp;
    skd_server_set_xdp(srv, NULL);
    skd_xdp_close(x);
    for (int i = 0; i < srv->n_workers && srv->workers; i++) {
        skd_worker *w = srv->workers[i];
        if (!w)
            continue;
        skd_stream_close_all(w);
        for (int k = 0; k < w->n_udp; k++)
            close(w->udp[k].fd);
        for (int k = 0; k < w->n_listeners; k++)
            close(w->listeners[k].fd);
        if (w->epfd >= 0)
            close(w->epfd);
        if (w->reserve_fd >= 0)
            close(w->reserve_fd);
        skd_ratelimit_free(&w->rl);
        if (w->dtls_on)
            skd_dtls_free(&w->dtls);
        if (w->turn_on)
            skd_turn_free(&w->turn);
        pthread_mutex_destroy(&w->ctl_lock);
        free(w);
        srv->workers[i] = NULL;
    }
    /* no worker runs now: everything retired can go */
    while (srv->retired) {
        skd_retired *r = srv->retired;
        srv->retired = r->next;
        r->release(r->ptr);
        free(r);
    }
    free(srv->workers);
    free(srv->stats);
    if (srv->turn_limits) { /* after the workers: their allocations gave their places back */
        skd_turn_limits_free(srv->turn_limits);
        free(srv->turn_limits);
        srv->turn_limits = NULL;
    }
    if (srv->hcfg.rdv) {
        skd_rdv_free(srv->hcfg.rdv);
        free(srv->hcfg.rdv);
    }
    if (srv->tls_on)
        skd_tls_close(&srv->tls);
    if (srv->stop_fd >= 0)
        close(srv->stop_fd);
    memset(srv, 0, sizeof(*srv));
}
