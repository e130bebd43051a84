/*
 * upnp_task.c - a UPnP IGD mapping on its own thread (stunkit/upnp.h:
 * stunkit_upnp_task_*), so that PCP, NAT-PMP and UPnP can be asked at once.
 *
 * The thread's life: open (SSDP, description) -> add -> MAPPED ->
 * [wait until half the lease, renew -> RENEWED]... -> stop: delete ->
 * DELETED. Events pass to the main thread through a small queue and a pipe
 * that wakes its poll().
 */
#define _GNU_SOURCE
#include "stunkit/client.h"
#include "stunkit/upnp.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define QUEUE 8

struct stunkit_upnp_task {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    int pipe[2];
    /* what to map */
    stunkit_addr gateway, internal;
    int protocol, timeout_ms;
    char description[48];
    uint16_t external_port;
    uint32_t lifetime_s;
    /* set by the main thread */
    int stop, delete;
    /* events for the main thread */
    stunkit_upnp_task_event q[QUEUE];
    int head, n;
    int signalled; /* a byte is in the pipe (under lock) */
};

static void post(stunkit_upnp_task *u, const stunkit_upnp_task_event *ev)
{
    pthread_mutex_lock(&u->lock);
    if (u->n < QUEUE)
        u->q[(u->head + u->n++) % QUEUE] = *ev;
    /* the byte goes in under the lock: poll drains it with the flag */
    u->signalled = 1;
    char b = 1;
    ssize_t w = write(u->pipe[1], &b, 1);
    (void)w;
    pthread_mutex_unlock(&u->lock);
}

/* Waits until ms from now or a stop; 1 when stopped. */
static int wait_stop(stunkit_upnp_task *u, uint64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += (time_t)(ms / 1000u);
    ts.tv_nsec += (long)(ms % 1000u) * 1000000L;
    if (ts.tv_nsec >= 1000000000L)
        ts.tv_sec++, ts.tv_nsec -= 1000000000L;
    pthread_mutex_lock(&u->lock);
    while (!u->stop && pthread_cond_timedwait(&u->wake, &u->lock, &ts) != ETIMEDOUT)
        ;
    int s = u->stop;
    pthread_mutex_unlock(&u->lock);
    return s;
}

static int stopped(stunkit_upnp_task *u, int *delete)
{
    pthread_mutex_lock(&u->lock);
    int s = u->stop;
    if (delete)
        *delete = u->delete;
    pthread_mutex_unlock(&u->lock);
    return s;
}

static void fill(stunkit_upnp_task_event *ev, stunkit_portmap_event e, const stunkit_upnp *igd, const stunkit_upnp_mapping *m)
{
    memset(ev, 0, sizeof(*ev));
    ev->o.event = e;
    ev->o.method = STUNKIT_PORTMAP_UPNP;
    if (igd) {
        const stunkit_upnp_info *info = stunkit_upnp_get_info(igd);
        ev->o.external = info->external; /* family 0: unknown */
        ev->connected = info->connected;
        ev->igd_version = info->igd_version;
        memcpy(ev->service, info->service, sizeof(ev->service));
        memcpy(ev->location, info->location, sizeof(ev->location));
    }
    if (m) {
        ev->o.external.port = m->external_port;
        ev->o.lifetime_s = m->lifetime_s;
        ev->permanent = m->permanent;
        ev->moved = m->moved;
    }
}

static void *run(void *arg)
{
    stunkit_upnp_task *u = arg;
    stunkit_upnp_task_event ev;
    stunkit_upnp *igd = NULL;
    char why[sizeof(ev.o.reason)];
    int rv = stunkit_upnp_open(&igd, &u->gateway, u->timeout_ms, why, sizeof(why));
    if (rv != 0) {
        fill(&ev, STUNKIT_PORTMAP_EVENT_FAILED, NULL, NULL);
        ev.o.result = -1;
        memcpy(ev.o.reason, why, sizeof(why));
        post(u, &ev);
        return NULL;
    }
    stunkit_upnp_mapping m;
    memset(&m, 0, sizeof(m));
    m.protocol = u->protocol;
    m.internal = u->internal;
    m.external_port = u->external_port;
    m.lifetime_s = u->lifetime_s;
    snprintf(m.description, sizeof(m.description), "%s %u", u->description, u->internal.port);
    int code = 0;
    if (stopped(u, NULL)) { /* another method won before discovery ended */
        stunkit_upnp_close(igd);
        return NULL;
    }
    rv = stunkit_upnp_add(igd, &m, &code, why, sizeof(why));
    if (rv != 0) {
        fill(&ev, STUNKIT_PORTMAP_EVENT_FAILED, igd, NULL);
        ev.o.result = code;
        memcpy(ev.o.reason, why, sizeof(why));
        post(u, &ev);
        stunkit_upnp_close(igd);
        return NULL;
    }
    fill(&ev, STUNKIT_PORTMAP_EVENT_MAPPED, igd, &m);
    post(u, &ev);
    uint64_t expires = stunkit_now_ms() + (uint64_t)m.lifetime_s * 1000u;
    /* renew at half the lease; a failed renewal is tried again every
     * tenth of the lease until expiry */
    uint64_t step = m.permanent || !m.lifetime_s ? UINT64_MAX / 2 : (uint64_t)m.lifetime_s * 500u;
    while (!wait_stop(u, step)) {
        rv = stunkit_upnp_renew(igd, &m, &code, why, sizeof(why));
        uint64_t now = stunkit_now_ms();
        if (rv == 0) {
            fill(&ev, STUNKIT_PORTMAP_EVENT_RENEWED, igd, &m);
            post(u, &ev);
            expires = now + (uint64_t)m.lifetime_s * 1000u;
            step = m.permanent || !m.lifetime_s ? UINT64_MAX / 2 : (uint64_t)m.lifetime_s * 500u;
        } else if (now >= expires) {
            fill(&ev, STUNKIT_PORTMAP_EVENT_FAILED, igd, &m);
            ev.o.result = code;
            snprintf(ev.o.reason, sizeof(ev.o.reason), "the mapping expired: %.130s", why);
            post(u, &ev);
            stunkit_upnp_close(igd);
            return NULL;
        } else {
            step = m.lifetime_s * 100u > expires - now ? expires - now : m.lifetime_s * 100u;
        }
    }
    int del = 0;
    stopped(u, &del);
    if (del) {
        rv = stunkit_upnp_delete(igd, m.protocol, m.external_port, &code, why, sizeof(why));
        fill(&ev, rv == 0 ? STUNKIT_PORTMAP_EVENT_DELETED : STUNKIT_PORTMAP_EVENT_FAILED, igd, &m);
        ev.o.result = code;
        if (rv != 0)
            memcpy(ev.o.reason, why, sizeof(why));
        post(u, &ev);
    }
    stunkit_upnp_close(igd);
    return NULL;
}

stunkit_upnp_task *stunkit_upnp_task_start(const stunkit_addr *gateway, const stunkit_addr *internal, int protocol,
                                           uint16_t external_port, uint32_t lifetime_s, int timeout_ms,
                                           const char *description)
{
    stunkit_upnp_task *u = calloc(1, sizeof(*u));
    if (!u)
        return NULL;
    u->gateway = *gateway;
    u->internal = *internal;
    u->protocol = protocol;
    u->external_port = external_port;
    u->lifetime_s = lifetime_s;
    u->timeout_ms = timeout_ms;
    snprintf(u->description, sizeof(u->description), "%s", description ? description : "stunkit");
    pthread_mutex_init(&u->lock, NULL);
    pthread_cond_init(&u->wake, NULL);
    if (pipe2(u->pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
        free(u);
        return NULL;
    }
    if (pthread_create(&u->thread, NULL, run, u) != 0) {
        close(u->pipe[0]);
        close(u->pipe[1]);
        free(u);
        return NULL;
    }
    return u;
}

int stunkit_upnp_task_fd(const stunkit_upnp_task *u)
{
    return u->pipe[0];
}

int stunkit_upnp_task_poll(stunkit_upnp_task *u, stunkit_upnp_task_event *ev)
{
    char b[16];
    pthread_mutex_lock(&u->lock);
    if (u->signalled) { /* drained only when written: polled often, it costs no system call */
        u->signalled = 0;
        while (read(u->pipe[0], b, sizeof(b)) > 0)
            ;
    }
    int got = u->n > 0;
    if (got) {
        *ev = u->q[u->head];
        u->head = (u->head + 1) % QUEUE;
        u->n--;
    }
    pthread_mutex_unlock(&u->lock);
    return got;
}

void stunkit_upnp_task_stop(stunkit_upnp_task *u, int delete)
{
    pthread_mutex_lock(&u->lock);
    if (!u->stop) {
        u->stop = 1;
        u->delete = delete;
    }
    pthread_cond_signal(&u->wake);
    pthread_mutex_unlock(&u->lock);
}

void stunkit_upnp_task_free(stunkit_upnp_task *u)
{
    if (!u)
        return;
    stunkit_upnp_task_stop(u, 0);
    pthread_join(u->thread, NULL);
    close(u->pipe[0]);
    close(u->pipe[1]);
    pthread_cond_destroy(&u->wake);
    pthread_mutex_destroy(&u->lock);
    free(u);
}
