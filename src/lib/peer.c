/*
 * peer.c - the connection object of stunkit/peer.h: the public calls, the
 * step where every datagram enters (dispatch: which socket, then which
 * machine), the deadlines, and the three ways to drive it (the
 * application's loop, the peer's own thread, blocking calls).
 *
 * One epoll descriptor holds every socket the peer owns (the UDP sockets,
 * the streams to the server, the rendezvous socket, the router's, the UPnP
 * thread's pipe, the guessing sockets, a wake-up eventfd), each tagged with
 * what it is (EV_* in the high half, an index or descriptor in the low), so
 * the application watches one descriptor and the step reads only what is
 * ready. All state is behind one recursive mutex: the peer's thread and the
 * application's calls take turns, and a callback may call back in.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config_take.h"
#include "peer_int.h"

/* ---- small helpers the other files share ---- */

/* The peer's clock: the application's (a test's fake one), or the
 * monotonic milliseconds of stunkit_now_ms(). Waits in real time (poll,
 * the release at the end) are bounded by the real clock whatever this says. */
uint64_t peer_now(const stunkit_peer *p)
{
    return p->cfg.clock ? p->cfg.clock(p->cfg.clock_ctx) : stunkit_now_ms();
}

void peer_watch(stunkit_peer *p, int fd, int kind, uint32_t index, int writable)
{
    struct epoll_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.events = writable ? EPOLLOUT : EPOLLIN;
    ev.data.u64 = (uint64_t)kind << 32 | index;
    if (epoll_ctl(p->efd, EPOLL_CTL_ADD, fd, &ev) != 0 && errno == EEXIST)
        (void)epoll_ctl(p->efd, EPOLL_CTL_MOD, fd, &ev);
}

void peer_emit(stunkit_peer *p, const stunkit_peer_event *ev)
{
    if (p->cfg.on_event)
        p->cfg.on_event(p, ev, p->cfg.user);
}

void peer_log(stunkit_peer *p, uint64_t now, const char *fmt, ...)
{
    if (!p->cfg.on_event)
        return;
    char line[1200];
    int n = snprintf(line, sizeof(line), "%6llu ms: ", (unsigned long long)(now - p->t0));
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    va_end(ap);
    stunkit_peer_event ev = {.type = STUNKIT_PEER_EVENT_LOG, .text = line, .len = strlen(line)};
    peer_emit(p, &ev);
}

/* The run is over for want of a path (or of the peer): the first reason
 * stays, with what TLS to the server said when it was tried. */
void peer_fail(stunkit_peer *p, uint64_t now, const char *fmt, ...)
{
    if (p->failed)
        return;
    p->failed = 1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->reason, sizeof(p->reason), fmt, ap);
    va_end(ap);
    size_t n = strlen(p->reason);
    if (p->tls_error[0] && n + 40 < sizeof(p->reason))
        snprintf(p->reason + n, sizeof(p->reason) - n, " (and TLS to the server failed: %s)", p->tls_error);
    peer_log(p, now, "failed: %s", p->reason);
}

int peer_selected_relayed(const stunkit_peer *p)
{
    return p->selected && (p->sel_local.type == STUNKIT_ICE_TYPE_RELAY || p->sel_remote.type == STUNKIT_ICE_TYPE_RELAY);
}

/* The path now (ICE's selected pair, or the one birthday punching found). */
static void current_path(const stunkit_peer *p, stunkit_ice_candidate *l, stunkit_ice_candidate *r)
{
    if (p->sp.state == SPRAY_DIRECT) {
        peer_spray_pair(p, l, r);
    } else if (!p->ice || !p->selected || stunkit_ice_path(p->ice, l, r) != 1) {
        /* the agent's view when it has one (a peer-reflexive remote later
         * signalled as the peer's relay is a relay); else as selected */
        *l = p->sel_local;
        *r = p->sel_remote;
    }
}

void peer_path_changed(stunkit_peer *p, const char *why)
{
    stunkit_peer_event ev = {.type = STUNKIT_PEER_EVENT_PATH, .reason = why};
    current_path(p, &ev.local, &ev.remote);
    ev.relayed = ev.local.type == STUNKIT_ICE_TYPE_RELAY || ev.remote.type == STUNKIT_ICE_TYPE_RELAY;
    peer_emit(p, &ev);
}

/* Whether data from `from` is the peer's: from an address the peer proved
 * with an authenticated ICE check (through our relay: as the TURN server
 * saw it; relayed: a permission is per IP, so any port of that IP), or from
 * the direct path birthday punching found. Anything else (a stranger's
 * "SKP1 nat hard" aimed at making us guess toward a victim) is dropped. */
int peer_from_peer(const stunkit_peer *p, const stunkit_addr *from, int relayed)
{
    if (p->sp.state == SPRAY_DIRECT && stunkit_addr_equal(from, &p->sp.to))
        return 1;
    return stunkit_ice_proven(p->ice, from, relayed);
}

/* A datagram of the peer's: the peers' own messages to the guessing, the
 * rest to the application (its callback, or the queue recv() reads). */
void peer_app_in(stunkit_peer *p, const uint8_t *d, size_t len, uint64_t now)
{
    (void)now;
    if ((len >= sizeof(PEER_CTL_NAT) - 1 && !memcmp(d, PEER_CTL_NAT, sizeof(PEER_CTL_NAT) - 1)) ||
        (len >= sizeof(PEER_CTL_SPRAY) - 1 && !memcmp(d, PEER_CTL_SPRAY, sizeof(PEER_CTL_SPRAY) - 1))) {
        char msg[128];
        if (len < sizeof(msg)) {
            memcpy(msg, d, len);
            msg[len] = 0;
            peer_spray_ctl(p, msg, len);
        }
        return;
    }
    if (p->closed)
        return;
    p->received++;
    if (p->cfg.on_data) {
        p->cfg.on_data(p, d, len, p->cfg.user);
        return;
    }
    peer_queue *q = &p->q;
    if (!q->slot || q->n == PEER_QUEUE || len > PEER_MAX_DATA) {
        p->dropped++;
        return;
    }
    int i = (q->head + q->n++) % PEER_QUEUE;
    memcpy(q->slot[i], d, len);
    q->len[i] = (uint16_t)len;
}

/* ---- state ---- */

static stunkit_peer_state derive_state(const stunkit_peer *p)
{
    if (p->closed)
        return STUNKIT_PEER_CLOSED;
    if (p->disconnected)
        return STUNKIT_PEER_DISCONNECTED;
    if (p->connected && !p->failed)
        return STUNKIT_PEER_CONNECTED;
    if (p->failed || p->rdv_failed)
        return STUNKIT_PEER_FAILED;
    if (p->peer_ready)
        return STUNKIT_PEER_CONNECTING;
    return STUNKIT_PEER_MEETING;
}

static void report_state(stunkit_peer *p)
{
    stunkit_peer_state s = derive_state(p);
    if (s == p->state)
        return;
    p->state = s;
    stunkit_peer_event ev = {.type = STUNKIT_PEER_EVENT_STATE, .state = s};
    if (s == STUNKIT_PEER_FAILED || s == STUNKIT_PEER_DISCONNECTED)
        ev.reason = s == STUNKIT_PEER_DISCONNECTED ? "the peer stopped answering (consent lost)" : p->reason;
    peer_emit(p, &ev);
    pthread_cond_broadcast(&p->changed);
}

/* A deadline stretched by the loss the checks (or the rendezvous' requests,
 * the same path to the server, seen before any check is answered) saw: a
 * path that loses a share q of what is sent needs about 1 / (1 - q) times
 * as long for every exchange (at most PEER_STRETCH_MAX times). */
static uint64_t stretched(const stunkit_peer *p, uint64_t from, uint64_t deadline)
{
    unsigned q = p->ice ? stunkit_ice_loss(p->ice) : 0;
    if (p->rdv && stunkit_rdv_loss(p->rdv) > q)
        q = stunkit_rdv_loss(p->rdv);
    if (!q || deadline <= from)
        return deadline;
    if (q > 1000 - 1000 / PEER_STRETCH_MAX)
        q = 1000 - 1000 / PEER_STRETCH_MAX;
    return from + (deadline - from) * 1000u / (1000u - q);
}

/* The timeout runs from the peer's last description part: a peer whose
 * relay takes long to allocate (a lossy path: each TURN transaction may need
 * its retransmissions) trickles its best candidates seconds after its
 * credentials, and must find this side still there. */
static uint64_t connect_deadline(const stunkit_peer *p)
{
    uint32_t t = p->cfg.connect_timeout_ms ? p->cfg.connect_timeout_ms : 10000u;
    uint64_t from = p->peer_last_ms > p->peer_ms ? p->peer_last_ms : p->peer_ms;
    return stretched(p, from, from + t);
}

static void deadlines(stunkit_peer *p, uint64_t now)
{
    if (p->failed || p->rdv_failed || p->connected || p->closed)
        return;
    if (p->rdv && !p->role_known && now - p->t0 >= PEER_ROLE_WAIT_MS) {
        p->rdv_failed = 1;
        snprintf(p->reason, sizeof(p->reason),
                 "the rendezvous failed: no answer from the server (is it run with --rendezvous?)");
    } else if (!p->peer_ready && p->cfg.meet_timeout_ms && now - p->t0 >= p->cfg.meet_timeout_ms) {
        peer_fail(p, now, p->rdv ? "the peer did not come to the room in time"
                                 : "the peer's description did not come in time");
    } else if (p->peer_ready && now >= connect_deadline(p)) {
        peer_fail(p, now, "nothing answered within the timeout");
    }
}

/* ---- the step ---- */

static void dispatch(stunkit_peer *p, uint64_t tag, uint64_t now)
{
    uint32_t kind = (uint32_t)(tag >> 32), index = (uint32_t)tag;
    switch (kind) {
    case EV_SOCK:
        if ((int)index < p->nsocks)
            peer_sock_readable(p, (int)index, now);
        break;
    case EV_RDV:
        if (p->rdv && p->rdv_sock.fd >= 0)
            peer_rdv_readable(p, now);
        break;
    case EV_STREAM_TURN: peer_stream_event(p, &p->turn_tcp, 1, now); break;
    case EV_STREAM_RDV: peer_stream_event(p, &p->rdv_tcp, 0, now); break;
    case EV_PM: peer_map_readable(p, now); break;
    case EV_SPRAY: peer_spray_readable(p, (int)index, now); break;
    case EV_MDNS: peer_mdns_readable(p, (int)index, now); break;
    case EV_WAKE: {
        uint64_t v;
        ssize_t r = read(p->wake_fd, &v, sizeof(v));
        (void)r;
        break;
    }
    default: break;
    }
}

static void step_stages(stunkit_peer *p, uint64_t now)
{
    struct epoll_event evs[32];
    int n = epoll_wait(p->efd, evs, 32, 0);
    for (int i = 0; i < n; i++)
        dispatch(p, evs[i].data.u64, now);
    if (p->closed)
        return;
    peer_streams_step(p, now);
    if (peer_map_timeout(p) <= now) /* else only when its descriptor is readable */
        peer_map_pump(p, now);
    peer_mdns_step(p, now);
    if (p->ice) {
        peer_ice_pump(p, now);
        peer_spray_step(p, now);
    }
    peer_rdv_pump(p, now);
    deadlines(p, now);
    report_state(p);
}

/* A step: what the sockets hold, then what is due; what is sent meanwhile
 * (answers from on_data, the agent's checks) leaves together at the end. */
static void step_locked(stunkit_peer *p, uint64_t now)
{
    int outer = !p->batching; /* a callback may step again: the outer step flushes */
    if (outer)
        peer_tx_begin(p);
    step_stages(p, now);
    if (outer) {
        p->batching = 0;
        peer_tx_flush(p);
    }
}

void stunkit_peer_step(stunkit_peer *p, uint64_t now_ms)
{
    pthread_mutex_lock(&p->lock);
    step_locked(p, now_ms);
    pthread_mutex_unlock(&p->lock);
}

static uint64_t timeout_locked(stunkit_peer *p)
{
    uint64_t now = peer_now(p), next = now + 1000; /* a look once a second at least */
    uint64_t t;
    if (p->closed)
        return UINT64_MAX;
    if (p->ice && (t = stunkit_ice_timeout(p->ice)) < next)
        next = t;
    if (p->rdv && (t = stunkit_rdv_timeout(p->rdv)) < next)
        next = t;
    if ((t = peer_map_timeout(p)) < next)
        next = t;
    if ((t = peer_streams_timeout(p)) < next)
        next = t;
    if ((t = peer_spray_timeout(p, now)) < next)
        next = t;
    if ((t = peer_mdns_timeout(p)) < next)
        next = t;
    if (!p->failed && !p->connected && p->peer_ready && (t = connect_deadline(p)) < next)
        next = t;
    return next;
}

uint64_t stunkit_peer_timeout(stunkit_peer *p)
{
    pthread_mutex_lock(&p->lock);
    uint64_t t = timeout_locked(p);
    pthread_mutex_unlock(&p->lock);
    return t;
}

int stunkit_peer_fd(const stunkit_peer *p)
{
    return p->efd;
}

/* Waits (without the lock) until the descriptor is readable or the peer's
 * next deadline (its clock), at most until `until` (real time) and a
 * second. */
static void wait_ready(stunkit_peer *p, uint64_t until)
{
    uint64_t pnow = peer_now(p), next = stunkit_peer_timeout(p), now = stunkit_now_ms();
    uint64_t ms = next <= pnow ? 0 : next - pnow;
    if (until != UINT64_MAX && (until <= now || until - now < ms))
        ms = until <= now ? 0 : until - now;
    struct pollfd pf = {p->efd, POLLIN, 0};
    (void)poll(&pf, 1, ms > 1000 ? 1000 : (int)ms);
}

/* ---- the application's network ---- */

int stunkit_peer_input(stunkit_peer *p, const stunkit_addr *local, const stunkit_addr *from, const void *data,
                       size_t len, uint64_t now_ms)
{
    int rv = 0;
    pthread_mutex_lock(&p->lock);
    if (!p->has_io || p->closed) {
        rv = STUNKIT_ERR_STATE;
        goto out;
    }
    int i;
    for (i = 0; i < p->nsocks && !stunkit_addr_equal(&p->socks[i].local, local); i++)
        ;
    if (i < p->nsocks) {
        peer_sock_datagram(p, i, from, data, len, now_ms);
    } else if (p->rdv && stunkit_addr_equal(&p->rdv_sock.local, local)) {
        stunkit_rdv_input(p->rdv, -1, NULL, data, len, now_ms);
    } else {
        for (i = 0; i < p->sp.nfds && !stunkit_addr_equal(&p->sp.s[i].local, local); i++)
            ;
        if (i == p->sp.nfds) {
            rv = STUNKIT_ERR_NOT_FOUND;
            goto out;
        }
        peer_spray_datagram(p, i, from, data, len, now_ms);
    }
    step_locked(p, now_ms);
out:
    pthread_mutex_unlock(&p->lock);
    return rv;
}

/* ---- its own thread ---- */

static void wake(stunkit_peer *p)
{
    uint64_t one = 1;
    ssize_t r = write(p->wake_fd, &one, sizeof(one));
    (void)r;
}


static void *thread_main(void *arg)
{
    stunkit_peer *p = arg;
    for (;;) {
        pthread_mutex_lock(&p->lock);
        int stop = p->thread_stop;
        if (!stop)
            step_locked(p, peer_now(p));
        pthread_cond_broadcast(&p->changed);
        pthread_mutex_unlock(&p->lock);
        if (stop)
            return NULL;
        wait_ready(p, UINT64_MAX);
    }
}

int stunkit_peer_start_thread(stunkit_peer *p)
{
    pthread_mutex_lock(&p->lock);
    int rv = 0;
    if (!p->thread_on) {
        p->thread_stop = 0;
        if (pthread_create(&p->thread, NULL, thread_main, p) != 0)
            rv = STUNKIT_ERR_SYSCALL;
        else
            p->thread_on = 1;
    }
    pthread_mutex_unlock(&p->lock);
    return rv;
}

static void stop_thread(stunkit_peer *p)
{
    pthread_mutex_lock(&p->lock);
    int on = p->thread_on;
    p->thread_stop = 1;
    p->thread_on = 0;
    pthread_mutex_unlock(&p->lock);
    if (on) {
        wake(p);
        pthread_join(p->thread, NULL);
    }
}

/* ---- blocking ---- */

/* Drives the peer (or, when its thread does, waits for it) until pred or
 * the deadline. */
static void drive_until(stunkit_peer *p, uint64_t until, int (*pred)(const stunkit_peer *))
{
    for (;;) {
        pthread_mutex_lock(&p->lock);
        if (!p->thread_on)
            step_locked(p, peer_now(p));
        int done = pred(p) || stunkit_now_ms() >= until;
        if (!done && p->thread_on) {
            uint64_t now = stunkit_now_ms(), t = until - now > 200 ? now + 200 : until;
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += (long)(t - now) * 1000000L;
            ts.tv_sec += ts.tv_nsec / 1000000000L;
            ts.tv_nsec %= 1000000000L;
            pthread_cond_timedwait(&p->changed, &p->lock, &ts);
            done = pred(p);
        }
        int threaded = p->thread_on;
        pthread_mutex_unlock(&p->lock);
        if (done)
            return;
        if (!threaded)
            wait_ready(p, until);
    }
}

static int settled(const stunkit_peer *p)
{
    stunkit_peer_state s = derive_state(p);
    return s != STUNKIT_PEER_MEETING && s != STUNKIT_PEER_CONNECTING;
}

stunkit_peer_state stunkit_peer_wait(stunkit_peer *p, uint32_t timeout_ms)
{
    drive_until(p, stunkit_now_ms() + timeout_ms, settled);
    return stunkit_peer_get_state(p);
}

static int data_or_end(const stunkit_peer *p)
{
    return p->q.n > 0 || p->closed || p->failed || p->disconnected || (p->rdv_failed && !p->connected);
}

int stunkit_peer_recv(stunkit_peer *p, void *buf, size_t cap, uint32_t timeout_ms)
{
    drive_until(p, stunkit_now_ms() + timeout_ms, data_or_end);
    pthread_mutex_lock(&p->lock);
    int rv = 0;
    peer_queue *q = &p->q;
    if (q->n > 0) {
        size_t len = q->len[q->head];
        size_t n = len < cap ? len : cap;
        memcpy(buf, q->slot[q->head], n);
        q->head = (q->head + 1) % PEER_QUEUE;
        q->n--;
        rv = len > cap ? STUNKIT_ERR_NOBUF : (int)n;
    } else if (data_or_end(p)) {
        rv = STUNKIT_ERR_CLOSED;
    }
    pthread_mutex_unlock(&p->lock);
    return rv;
}

/* ---- data and descriptions ---- */

int stunkit_peer_send(stunkit_peer *p, const void *data, size_t len)
{
    uint8_t buf[PEER_MAX_DATA + 64];
    stunkit_ice_route r;
    int rv = 0;
    if (len > PEER_MAX_DATA)
        return STUNKIT_ERR_NOBUF;
    pthread_mutex_lock(&p->lock);
    /* Not only once CONNECTED is reported: the peer's first datagram may
     * come (and want an answer) right after its check made a pair valid,
     * before this side's state has caught up; the agent knows (RFC 8445
     * 12.1: data may go on a valid pair). */
    if (p->closed || p->disconnected || !p->ice) {
        rv = STUNKIT_ERR_STATE;
    } else if (p->sp.state == SPRAY_DIRECT) {
        peer_udp_send(p, p->sp.sock >= 0 ? &p->sp.s[p->sp.sock] : &p->socks[p->sp.base], &p->sp.to, data, len);
    } else if (stunkit_ice_send(p->ice, data, len, buf, sizeof(buf), &r) != 0) {
        rv = STUNKIT_ERR_STATE;
    } else {
        peer_route(p, &r);
    }
    if (rv == 0)
        p->sent++;
    else
        p->dropped++;
    pthread_mutex_unlock(&p->lock);
    return rv;
}

int stunkit_peer_apply(stunkit_peer *p, const char *text, size_t len)
{
    pthread_mutex_lock(&p->lock);
    int rv;
    uint64_t now = peer_now(p);
    if (p->rdv || !p->ice) {
        rv = STUNKIT_ERR_STATE; /* the room does the signalling */
    } else if (p->peer_len + len > STUNKIT_RDV_DESC_MAX) {
        rv = STUNKIT_ERR_NOBUF;
    } else {
        memcpy(p->peer_desc + p->peer_len, text, len);
        p->peer_len += len;
        rv = peer_apply(p, now);
        report_state(p);
    }
    if (p->thread_on)
        wake(p); /* the agent has checks to start */
    pthread_mutex_unlock(&p->lock);
    return rv;
}

int stunkit_peer_describe(stunkit_peer *p, char *buf, size_t cap)
{
    pthread_mutex_lock(&p->lock);
    int n = STUNKIT_ERR_STATE;
    if (p->ice) {
        char desc[STUNKIT_RDV_DESC_MAX];
        n = stunkit_ice_describe(p->ice, desc, sizeof(desc) - STUNKIT_SECRET_MAC_LINE_LEN - 1);
        if (n >= 0 && p->have_secret) {
            /* the password stays home; the rest is sealed */
            char *pw = strstr(desc, "a=ice-pwd:"), *end = pw ? strchr(pw, '\n') : NULL;
            if (pw && end) {
                memmove(pw, end + 1, strlen(end + 1) + 1);
                n = (int)strlen(desc);
            }
            int m = stunkit_secret_seal(&p->secret, desc, (size_t)n, desc + n, sizeof(desc) - (size_t)n);
            n = m < 0 ? m : n + m;
        }
        if (n >= 0 && (size_t)n + 1 > cap)
            n = STUNKIT_ERR_NOBUF;
        if (n >= 0) {
            memcpy(buf, desc, (size_t)n);
            buf[n] = 0;
        }
    }
    pthread_mutex_unlock(&p->lock);
    return n;
}

/* ---- what happened ---- */

stunkit_peer_state stunkit_peer_get_state(const stunkit_peer *p)
{
    stunkit_peer *m = (stunkit_peer *)p;
    pthread_mutex_lock(&m->lock);
    stunkit_peer_state s = derive_state(p);
    pthread_mutex_unlock(&m->lock);
    return s;
}

const char *stunkit_peer_state_name(stunkit_peer_state s)
{
    switch (s) {
    case STUNKIT_PEER_MEETING: return "meeting";
    case STUNKIT_PEER_CONNECTING: return "connecting";
    case STUNKIT_PEER_CONNECTED: return "connected";
    case STUNKIT_PEER_DISCONNECTED: return "disconnected";
    case STUNKIT_PEER_FAILED: return "failed";
    case STUNKIT_PEER_CLOSED: return "closed";
    }
    return "?";
}

void stunkit_peer_get_info(stunkit_peer *p, stunkit_peer_info *o)
{
    pthread_mutex_lock(&p->lock);
    memset(o, 0, sizeof(*o));
    o->state = derive_state(p);
    snprintf(o->reason, sizeof(o->reason), "%s", p->reason[0] ? p->reason : "");
    o->controlling = p->controlling;
    o->role_known = p->role_known || !p->rdv;
    o->gathered = p->gathered;
    o->peer_ready = p->peer_ready;
    o->connected = p->connected;
    o->selected = p->selected || p->sp.state == SPRAY_DIRECT;
    current_path(p, &o->local, &o->remote);
    o->relayed = o->local.type == STUNKIT_ICE_TYPE_RELAY || o->remote.type == STUNKIT_ICE_TYPE_RELAY;
    o->tcp_relay = o->local.tcp || (o->local.type == STUNKIT_ICE_TYPE_RELAY && o->local.base == PEER_TURN_STREAM);
    o->tls = p->tls;
    o->connect_ms = p->connect_ms;
    o->upgraded_ms = p->upgraded_ms;
    o->role_ms = p->rdv && p->role_known ? p->t_role : UINT64_MAX;
    o->tcp_relay_ms = p->tcp_relay_opened ? p->t_tcp_relay : UINT64_MAX;
    o->check_loss = p->ice ? stunkit_ice_loss(p->ice) : 0;
    o->rendezvous_loss = p->rdv ? stunkit_rdv_loss(p->rdv) : 0;
    o->upgrading = p->ice && stunkit_ice_upgrading(p->ice);
    o->server = p->server;
    o->server_moves = p->moves;
    o->n_servers = p->n_fleet;
    o->tcp_relay_redirects = p->turn_redirects;
    o->mapped = p->pm.external.family != 0;
    o->mapping_method = o->mapped ? stunkit_portmap_method_name(p->pm.method) : NULL;
    o->mapping_external = p->pm.external;
    const peer_spray *sp = &p->sp;
    o->birthday_tried = sp->round > 0 || sp->why[0];
    o->birthday_running = peer_spray_busy(p);
    o->birthday_direct = sp->state == SPRAY_DIRECT;
    o->birthday_hard_side = sp->self_hard;
    o->birthday_rounds = sp->round;
    o->birthday_probes = sp->sent;
    o->birthday_sockets = sp->self_hard ? (long)SPRAY_SOCKS * sp->round : 0;
    o->birthday_ms = sp->ms;
    o->birthday_at_ms = sp->at;
    snprintf(o->birthday_why, sizeof(o->birthday_why), "%s", sp->why);
    o->sent = p->sent;
    o->received = p->received;
    o->dropped = p->dropped;
    pthread_mutex_unlock(&p->lock);
}

/* ---- making one ---- */

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static int bad(char *why, size_t why_len, const char *text)
{
    if (why && why_len)
        snprintf(why, why_len, "%s", text);
    return STUNKIT_ERR_INVAL;
}

/* What the config asks, checked before anything is opened. */
static int check_config(const stunkit_peer_config *c, char *why, size_t why_len)
{
    if (!c->server)
        return bad(why, why_len, "no server");
    if (c->room && !stunkit_rdv_room_valid(c->room, strlen(c->room)))
        return bad(why, why_len, "the room name: expected 1 to 64 of A-Z a-z 0-9 . _ ~ -");
    if ((c->room || (c->secret && !c->own_signalling)) && !c->username)
        return bad(why, why_len, "a room needs the server's credentials (username, password)");
    if (c->relay_only && !c->username)
        return bad(why, why_len, "relay-only needs a relay: the server's credentials (username, password)");
    if (c->username && !(c->password && *c->password))
        return bad(why, why_len, "a username needs a password");
    if (c->n_local_addresses > PEER_MAX_SOCKS)
        return bad(why, why_len, "too many local addresses");
    if (c->n_fallback_servers > PEER_FLEET_MAX - 1 || (c->n_fallback_servers && !c->fallback_servers))
        return bad(why, why_len, "fallback servers: at most 7");
    stunkit_server first, other;
    if (stunkit_server_parse(c->server, &first) != 0)
        return bad(why, why_len, "the server: expected host[:port] or a stun:, stuns:, turn: or turns: URI");
    for (size_t i = 0; i < c->n_fallback_servers; i++) {
        if (!c->fallback_servers[i] || stunkit_server_parse(c->fallback_servers[i], &other) != 0)
            return bad(why, why_len, "a fallback server: expected host[:port] or a stun:, stuns:, turn: or turns: URI");
        if (other.secure != first.secure)
            return bad(why, why_len, "fallback servers: all TLS (turns:, stuns:) as the server, or none");
    }
    if (c->io && (!c->io->bind || !c->io->send))
        return bad(why, why_len, "io needs bind and send");
    if (c->io && !c->n_local_addresses)
        return bad(why, why_len, "io needs local_addresses (the addresses its bind() serves)");
    if ((c->tls_insecure || c->ca_file) && c->tls_insecure && c->ca_file)
        return bad(why, why_len, "tls_insecure and ca_file contradict each other");
    return 0;
}

static void peer_destroy(stunkit_peer *p)
{
    if (p->efd >= 0)
        close(p->efd);
    if (p->wake_fd >= 0)
        close(p->wake_fd);
    peer_udp_close(p, &p->rdv_sock);
    if (p->mdns_fd >= 0)
        close(p->mdns_fd);
    if (p->mdns_group_fd >= 0)
        close(p->mdns_group_fd);
    for (int i = 0; i < p->nsocks; i++)
        peer_udp_close(p, &p->socks[i]);
    stunkit_rdv_free(p->rdv);
    stunkit_ice_free(p->ice);
    stunkit_secret_clear(&p->secret);
    free(p->username);
    free(p->password);
    free(p->ca_file);
    peer_fleet_free(p);
    free(p->q.slot);
    peer_tx_free(p);
    pthread_cond_destroy(&p->changed);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

stunkit_peer *stunkit_peer_new(const stunkit_peer_config *cfg_in, int *err, char *why, size_t why_len)
{
    stunkit_peer_config cfg;
    int e = 0;
    if (why && why_len)
        why[0] = 0;
    if (!cfg_in || sk_config_take(&cfg, sizeof(cfg), cfg_in, sizeof(cfg)) != 0) {
        e = bad(why, why_len, "config: size unknown to this library");
        goto fail0;
    }
    if ((e = check_config(&cfg, why, why_len)) != 0)
        goto fail0;
    stunkit_server srv;
    stunkit_server_parse(cfg.server, &srv); /* checked above */
    if ((cfg.tls_insecure || cfg.ca_file) && !srv.secure) {
        e = bad(why, why_len, "tls_insecure and ca_file are for a TLS server (a turns: or stuns: URI)");
        goto fail0;
    }

    stunkit_peer *p = calloc(1, sizeof(*p));
    if (!p) {
        e = STUNKIT_ERR_NOMEM;
        goto fail0;
    }
    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&p->lock, &ma);
    pthread_mutexattr_destroy(&ma);
    pthread_cond_init(&p->changed, NULL);
    p->efd = p->wake_fd = p->rdv_sock.fd = p->mdns_fd = p->mdns_group_fd = -1;
    p->turn_tcp.fd = p->rdv_tcp.fd = p->pm.base = -1;
    p->sp.base = p->sp.sock = -1;
    p->cfg = cfg;
    p->env = cfg.env;
    if (!p->env.random) {
        p->env.random = stunkit_random_os;
        p->env.random_ctx = NULL;
    }
    p->username = dup_or_null(cfg.username);
    p->password = dup_or_null(cfg.password);
    p->ca_file = dup_or_null(cfg.ca_file);
    /* the servers: the name's addresses, then the fallbacks' (peer_fleet.c) */
    if (peer_fleet_add(p, &srv) != 0) {
        e = STUNKIT_ERR_RESOLVE;
        if (why && why_len)
            snprintf(why, why_len, "cannot resolve the server '%s'", cfg.server);
        goto fail;
    }
    for (size_t i = 0; i < cfg.n_fallback_servers; i++) {
        stunkit_server fb;
        stunkit_server_parse(cfg.fallback_servers[i], &fb);
        int rv = peer_fleet_add(p, &fb);
        if (rv != 0) {
            e = rv == -2 ? STUNKIT_ERR_INVAL : STUNKIT_ERR_RESOLVE;
            if (why && why_len)
                snprintf(why, why_len,
                         rv == -2 ? "the fallback server '%s': not of the server's address family (IPv4 and IPv6 "
                                    "do not mix in one fleet)"
                                  : "cannot resolve the fallback server '%s'",
                         cfg.fallback_servers[i]);
            goto fail;
        }
    }
    peer_fleet_use(p, 0);
    /* the copies are what the peer keeps; the caller's strings may go */
    p->cfg.username = p->username;
    p->cfg.password = p->password;
    p->cfg.ca_file = p->ca_file;
    p->cfg.server = NULL;
    p->cfg.room = NULL;
    p->cfg.secret = NULL;
    p->cfg.local_addresses = NULL;
    p->cfg.fallback_servers = NULL;
    p->cfg.n_fallback_servers = 0;
    p->tls = srv.secure;
    if (cfg.io) {
        /* the application's network carries UDP only: no streams, no
         * router to ask, no multicast */
        p->io = *cfg.io;
        p->has_io = 1;
        p->cfg.io = NULL;
        p->cfg.no_mdns = 1;
        p->rdv_tcp.closed = 1;
    }
    p->map = !cfg.no_port_mapping && !cfg.relay_only && !p->has_io;
    p->spray_on = !cfg.no_guessing && !cfg.relay_only;
    p->state = STUNKIT_PEER_MEETING;
    p->t0 = peer_now(p);
    if ((cfg.username && !p->username) || (cfg.password && !p->password) || (cfg.ca_file && !p->ca_file)) {
        e = STUNKIT_ERR_NOMEM;
        goto fail;
    }
    if (!cfg.on_data && !(p->q.slot = malloc(sizeof(*p->q.slot) * PEER_QUEUE))) {
        e = STUNKIT_ERR_NOMEM;
        goto fail;
    }
    p->efd = epoll_create1(EPOLL_CLOEXEC);
    p->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (p->efd < 0 || p->wake_fd < 0) {
        e = STUNKIT_ERR_SYSCALL;
        goto fail;
    }
    peer_watch(p, p->wake_fd, EV_WAKE, 0, 0);
    if (cfg.secret) {
        p->have_secret = 1;
        stunkit_secret_init(&p->secret, cfg.secret, cfg.secret_len ? cfg.secret_len : strlen(cfg.secret));
    }
    /* the sockets: the addresses asked for, or every usable one */
    if (cfg.n_local_addresses) {
        for (size_t i = 0; i < cfg.n_local_addresses; i++) {
            stunkit_addr a;
            if (stunkit_addr_parse(cfg.local_addresses[i], 0, &a) != 0 || peer_open_sock(p, &a) != 0) {
                e = STUNKIT_ERR_BAD_ADDRESS;
                if (why && why_len)
                    snprintf(why, why_len, "local address '%s': not an address of this host", cfg.local_addresses[i]);
                goto fail;
            }
        }
    } else {
        peer_open_all(p);
    }
    if (!p->nsocks) {
        e = STUNKIT_ERR_SYSCALL;
        if (why && why_len)
            snprintf(why, why_len, "no usable local address");
        goto fail;
    }
    peer_mdns_listen(p);
    p->servers[0].addr = p->server;
    p->n_servers = 1;
    if (p->username) {
        /* the same server relays (its Allocate answer gives the reflexive
         * address too), over UDP and over TCP: the TCP relay is the path
         * when UDP is blocked (RFC 8656 3.1, lowest priority otherwise) */
        p->servers[0].turn = 1;
        p->servers[0].username = p->username;
        p->servers[0].password = p->password;
        if (!p->has_io) {
            p->servers[1] = p->servers[0];
            p->servers[1].addr = p->stream_server;
            p->servers[1].transport = srv.secure ? STUNKIT_TLS : STUNKIT_TCP;
            p->n_servers = 2;
            p->tcp_relay = 1; /* opened when UDP to the server goes unanswered */
        }
    }
    uint64_t now = p->t0;
    if (cfg.room || (cfg.secret && !cfg.own_signalling)) {
        /* the room first: it says who offers. With a secret the room comes
         * from it (given a name or not): a stranger cannot find it by name */
        if (p->have_secret)
            stunkit_secret_room(&p->secret, cfg.room, p->room, sizeof(p->room));
        else
            snprintf(p->room, sizeof(p->room), "%s", cfg.room);
        stunkit_rdv_config rc;
        memset(&rc, 0, sizeof(rc));
        rc.size = sizeof(rc);
        rc.room = p->room;
        rc.username = p->username;
        rc.password = p->password;
        rc.env = p->env;
        if (p->n_fleet > 1)
            rc.silence_ms = PEER_FLEET_SILENCE_MS; /* another server to go to: do not wait 20 s */
        p->rdv = stunkit_rdv_new(&rc, now);
        p->rdv_start = now;
        int rdv_ok;
        if (p->has_io) {
            rdv_ok = peer_udp_open(p, &p->socks[0].local, &p->rdv_sock, EV_RDV, 0) == 0;
        } else {
            struct sockaddr_storage ss;
            int sl = stunkit_addr_to_sockaddr(&p->server, &ss);
            p->rdv_sock.fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
            if (p->rdv_sock.fd >= 0 && connect(p->rdv_sock.fd, (struct sockaddr *)&ss, (socklen_t)sl) != 0) {
                close(p->rdv_sock.fd);
                p->rdv_sock.fd = -1;
            }
            rdv_ok = p->rdv_sock.fd >= 0;
            if (rdv_ok)
                peer_watch(p, p->rdv_sock.fd, EV_RDV, 0, 0);
        }
        if (!p->rdv || !rdv_ok) {
            e = p->rdv ? STUNKIT_ERR_SYSCALL : STUNKIT_ERR_NOMEM;
            if (why && why_len)
                snprintf(why, why_len, "cannot reach the server for the rendezvous");
            goto fail;
        }
    } else {
        p->role_known = 1;
        if (peer_start_agent(p, cfg.controlling, now) != 0) {
            e = STUNKIT_ERR_NOMEM;
            if (why && why_len)
                snprintf(why, why_len, "cannot start the ICE agent");
            goto fail;
        }
    }
    return p;
fail:
    peer_destroy(p);
fail0:
    if (err)
        *err = e;
    return NULL;
}

static int rdv_gone(const stunkit_peer *p)
{
    return p->rdv_left || p->rdv_failed;
}

void stunkit_peer_free(stunkit_peer *p)
{
    if (!p)
        return;
    stop_thread(p);
    pthread_mutex_lock(&p->lock);
    p->closed = 1; /* nothing more to the application; the rest is release */
    /* the router's mapping (PCP and NAT-PMP answer at once, UPnP's thread
     * deletes its own), guessing's sockets */
    peer_map_end(p);
    peer_spray_close(p, -1);
    /* the TURN allocations: Refresh with lifetime 0 */
    if (p->ice) {
        stunkit_ice_close(p->ice, peer_now(p));
        peer_ice_pump(p, peer_now(p));
    }
    pthread_mutex_unlock(&p->lock);
    /* our place in the room (a second at most; with the application's
     * network the leave goes once, unanswered: nothing can come in now) */
    if (p->rdv && p->has_io) {
        pthread_mutex_lock(&p->lock);
        stunkit_rdv_leave(p->rdv, peer_now(p));
        peer_rdv_pump(p, peer_now(p));
        pthread_mutex_unlock(&p->lock);
    } else if (p->rdv) {
        pthread_mutex_lock(&p->lock);
        stunkit_rdv_leave(p->rdv, peer_now(p));
        pthread_mutex_unlock(&p->lock);
        uint64_t end = stunkit_now_ms() + 1000;
        while (!rdv_gone(p) && stunkit_now_ms() < end) {
            pthread_mutex_lock(&p->lock);
            struct epoll_event evs[16];
            int n = epoll_wait(p->efd, evs, 16, 0);
            uint64_t now = peer_now(p);
            for (int i = 0; i < n; i++) {
                uint32_t kind = (uint32_t)(evs[i].data.u64 >> 32);
                if (kind == EV_RDV)
                    peer_rdv_readable(p, now);
                else if (kind == EV_STREAM_RDV)
                    peer_stream_event(p, &p->rdv_tcp, 0, now);
                else
                    dispatch(p, evs[i].data.u64, now); /* read and dropped: the peer is closed */
            }
            peer_rdv_pump(p, now);
            pthread_mutex_unlock(&p->lock);
            wait_ready(p, end);
        }
    }
    peer_stream_close(&p->turn_tcp);
    peer_stream_close(&p->rdv_tcp);
    peer_destroy(p);
}
