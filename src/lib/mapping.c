/*
 * mapping.c - a port mapping asked of the router by every method at once
 * (stunkit/mapping.h): the PCP / NAT-PMP machine (portmap.c) on a UDP
 * socket connected to the router's port 5351, and UPnP IGD on its thread
 * (upnp_task.c). Both descriptors sit in one epoll set, so the caller
 * watches one.
 *
 *   start ──> both ask ──> the first MAPPED wins ──> RENEWED / RESET ... ──> delete ──> DELETED
 *                │                 └─ the loser is wound down: a mapping it
 *                │                    made anyway is deleted (RFC 6887 15: a
 *                │                    mapping no one uses should not be left)
 *                └─ both out (PCP/NAT-PMP silent for timeout_ms or refused by
 *                   ICMP, UPnP failed or called off) ──> one FAILED saying each
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config_take.h"
#include "stunkit/client.h"
#include "stunkit/error.h"
#include "stunkit/mapping.h"

#define EVQ 8

struct stunkit_mapping {
    stunkit_mapping_config cfg;
    int efd;
    /* PCP / NAT-PMP */
    stunkit_portmap *m;
    int fd;                /* connected to the router's 5351 */
    int pcp_mapped;        /* the machine holds a mapping */
    int unreachable;       /* ICMP: nothing listens on 5351 */
    uint64_t deadline;     /* silent until then: out */
    /* UPnP IGD */
    stunkit_upnp_task *u;
    int upnp_mapped;
    uint64_t u_deadline;   /* 0: none */
    /* the race */
    stunkit_portmap_method winner; /* AUTO until something mapped */
    int deleting, failed, pcp_out, upnp_out;
    stunkit_mapping_event out; /* what each method said, for FAILED */
    stunkit_mapping_event q[EVQ];
    int qh, qn;
};

static void push(stunkit_mapping *m, const stunkit_mapping_event *ev)
{
    if (m->qn == EVQ)
        return; /* at most a few events come between polls */
    m->q[(m->qh + m->qn++) % EVQ] = *ev;
}

static void push_output(stunkit_mapping *m, const stunkit_portmap_output *o)
{
    stunkit_mapping_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.e.o = *o;
    ev.e.o.data = NULL;
    if (o->event == STUNKIT_PORTMAP_EVENT_MAPPED && m->m)
        stunkit_portmap_get_nonce(m->m, ev.nonce);
    push(m, &ev);
}

static int bad(char *why, size_t why_len, const char *text)
{
    if (why && why_len)
        snprintf(why, why_len, "%s", text);
    return STUNKIT_ERR_INVAL;
}

static void watch(stunkit_mapping *m, int fd)
{
    struct epoll_event e = {.events = EPOLLIN};
    e.data.fd = fd;
    epoll_ctl(m->efd, EPOLL_CTL_ADD, fd, &e);
}

/* The machine is done (out of the race, or its mapping gone). */
static void pcp_stop(stunkit_mapping *m)
{
    stunkit_portmap_free(m->m);
    m->m = NULL;
    m->pcp_mapped = 0;
    if (m->fd >= 0)
        close(m->fd); /* leaves the epoll set with it */
    m->fd = -1;
}

static void pcp_out(stunkit_mapping *m, int result, const char *why)
{
    m->pcp_out = 1;
    m->out.pcp_result = result;
    snprintf(m->out.pcp_reason, sizeof(m->out.pcp_reason), "%s", why);
    pcp_stop(m);
}

stunkit_mapping *stunkit_mapping_start(const stunkit_mapping_config *cfg_in, uint64_t now, int *err, char *why,
                                       size_t why_len)
{
    stunkit_mapping_config cfg;
    int e = 0;
    stunkit_mapping *m = NULL;
    if (why && why_len)
        why[0] = 0;
    if (!cfg_in || sk_config_take(&cfg, sizeof(cfg), cfg_in, sizeof(cfg)) != 0) {
        e = bad(why, why_len, "config: size unknown to this library");
        goto fail;
    }
    if (!cfg.env.random)
        cfg.env.random = stunkit_random_os;
    if (!cfg.timeout_ms)
        cfg.timeout_ms = 1000;
    if (!cfg.upnp_search_ms)
        cfg.upnp_search_ms = cfg.timeout_ms;
    int want_pcp = cfg.method != STUNKIT_PORTMAP_UPNP;
    int want_upnp = cfg.method == STUNKIT_PORTMAP_UPNP ||
                    (cfg.method == STUNKIT_PORTMAP_AUTO && stunkit_upnp_available() && cfg.gateway.family == STUNKIT_AF_INET);
    if (cfg.method == STUNKIT_PORTMAP_UPNP && !stunkit_upnp_available()) {
        e = bad(why, why_len, "UPnP IGD is not in this build (built without libminiupnpc)");
        goto fail;
    }
    if (want_upnp && cfg.gateway.family != STUNKIT_AF_INET) {
        e = bad(why, why_len, "UPnP port mappings are IPv4 (PCP maps IPv6)");
        goto fail;
    }
    if (!cfg.gateway.family || cfg.gateway.family != cfg.internal.family || !cfg.internal.port) {
        e = bad(why, why_len, "a gateway and an internal address of one family, and a port, are needed");
        goto fail;
    }
    if (!(m = calloc(1, sizeof(*m)))) {
        e = STUNKIT_ERR_NOMEM;
        goto fail;
    }
    m->cfg = cfg;
    m->cfg.description = NULL;
    m->fd = -1;
    m->winner = STUNKIT_PORTMAP_AUTO;
    m->out.e.o.event = STUNKIT_PORTMAP_EVENT_FAILED;
    m->out.pcp_result = m->out.upnp_result = -1;
    m->out.pcp_method = cfg.method == STUNKIT_PORTMAP_AUTO ? STUNKIT_PORTMAP_PCP : cfg.method;
    if ((m->efd = epoll_create1(EPOLL_CLOEXEC)) < 0) {
        e = STUNKIT_ERR_SYSCALL;
        goto fail;
    }
    if (want_pcp) {
        /* a connected socket: the router's answers only, and its ICMP errors */
        stunkit_addr gw = cfg.gateway;
        gw.port = STUNKIT_PORTMAP_PORT;
        struct sockaddr_storage ss;
        int sl = stunkit_addr_to_sockaddr(&gw, &ss);
        m->fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (m->fd < 0 || connect(m->fd, (struct sockaddr *)&ss, (socklen_t)sl) != 0) {
            e = STUNKIT_ERR_SYSCALL;
            if (why && why_len)
                snprintf(why, why_len, "cannot reach the gateway: %s", strerror(errno));
            goto fail;
        }
        stunkit_portmap_config pc;
        memset(&pc, 0, sizeof(pc));
        pc.size = sizeof(pc);
        pc.env = cfg.env;
        pc.gateway = gw;
        pc.internal = cfg.internal;
        pc.protocol = cfg.protocol;
        pc.external_port = cfg.external_port;
        pc.lifetime_s = cfg.lifetime_s;
        pc.method = cfg.method == STUNKIT_PORTMAP_AUTO ? STUNKIT_PORTMAP_AUTO : cfg.method;
        pc.use_nonce = cfg.use_nonce;
        memcpy(pc.nonce, cfg.nonce, sizeof(pc.nonce));
        if (!(m->m = stunkit_portmap_new(&pc, now))) {
            e = bad(why, why_len, "the PCP / NAT-PMP settings (NAT-PMP is IPv4 only)");
            goto fail;
        }
        watch(m, m->fd);
        m->out.pcp_asked = 1;
        m->deadline = now + cfg.timeout_ms;
    } else {
        m->pcp_out = 1;
    }
    if (want_upnp) {
        stunkit_addr gw = cfg.gateway;
        gw.port = 0;
        m->u = stunkit_upnp_task_start(&gw, &cfg.internal, cfg.protocol, cfg.external_port,
                                       cfg.lifetime_s ? cfg.lifetime_s : 7200, (int)cfg.upnp_search_ms,
                                       cfg_in->description ? cfg_in->description : "stunkit");
        if (m->u) {
            watch(m, stunkit_upnp_task_fd(m->u));
            m->out.upnp_asked = 1;
            if (cfg.upnp_timeout_ms)
                m->u_deadline = now + cfg.upnp_timeout_ms;
        }
    }
    if (!m->u)
        m->upnp_out = 1;
    if (!m->m && !m->u) {
        e = STUNKIT_ERR_NOMEM;
        goto fail;
    }
    return m;
fail:
    if (m) {
        if (m->fd >= 0)
            close(m->fd);
        stunkit_portmap_free(m->m);
        if (m->efd >= 0)
            close(m->efd);
        free(m);
    }
    if (err)
        *err = e;
    return NULL;
}

int stunkit_mapping_fd(const stunkit_mapping *m)
{
    return m->efd;
}

stunkit_portmap_method stunkit_mapping_method(const stunkit_mapping *m)
{
    return m->winner;
}

/* What the router sent to 5351; ICMP (port unreachable) when it runs
 * neither PCP nor NAT-PMP. */
static void pcp_read(stunkit_mapping *m, uint64_t now)
{
    uint8_t buf[1200];
    ssize_t n;
    stunkit_addr gw = m->cfg.gateway;
    gw.port = STUNKIT_PORTMAP_PORT;
    while (m->fd >= 0 && ((n = recv(m->fd, buf, sizeof(buf), MSG_DONTWAIT)) >= 0 || errno == ECONNREFUSED)) {
        if (n < 0) {
            m->unreachable = 1;
            continue;
        }
        stunkit_portmap_input(m->m, m->fd, &gw, buf, (size_t)n, now);
    }
}

/* The machine's datagrams out, its events into the race. */
static void pcp_pump(stunkit_mapping *m, uint64_t now)
{
    stunkit_portmap_output o;
    for (int pr; m->m && (pr = stunkit_portmap_poll(m->m, now, &o)) != 0;) {
        if (pr < 0)
            continue; /* STUNKIT_ERR_NOBUF: events were lost; the rest follow */
        if (o.send) {
            if (send(m->fd, o.data, o.len, MSG_DONTWAIT) < 0 && errno == ECONNREFUSED)
                m->unreachable = 1; /* the ICMP error of the previous datagram */
            continue;
        }
        if (m->winner == STUNKIT_PORTMAP_UPNP) {
            /* lost the race: a mapping made anyway is deleted, then done */
            if (o.event == STUNKIT_PORTMAP_EVENT_MAPPED)
                stunkit_portmap_delete(m->m, now);
            else if (o.event == STUNKIT_PORTMAP_EVENT_FAILED || o.event == STUNKIT_PORTMAP_EVENT_DELETED)
                pcp_stop(m);
            continue;
        }
        switch (o.event) {
        case STUNKIT_PORTMAP_EVENT_MAPPED:
            m->winner = o.method;
            m->pcp_mapped = 1;
            if (m->u && !m->upnp_out)
                stunkit_upnp_task_stop(m->u, 1); /* UPnP lost: it deletes whatever it made */
            m->upnp_out = 1;
            push_output(m, &o);
            break;
        case STUNKIT_PORTMAP_EVENT_RENEWED:
        case STUNKIT_PORTMAP_EVENT_RESET: push_output(m, &o); break;
        case STUNKIT_PORTMAP_EVENT_DELETED:
            push_output(m, &o);
            pcp_stop(m);
            break;
        case STUNKIT_PORTMAP_EVENT_FAILED:
            m->out.pcp_method = o.method;
            if (m->winner != STUNKIT_PORTMAP_AUTO || m->deleting) {
                m->failed = 1;
                push_output(m, &o);
                pcp_stop(m);
            } else { /* before any mapping: UPnP may still win */
                pcp_out(m, o.result, o.reason);
            }
            break;
        }
    }
}

static void upnp_pump(stunkit_mapping *m, uint64_t now)
{
    stunkit_upnp_task_event ev;
    while (m->u && stunkit_upnp_task_poll(m->u, &ev) == 1) {
        stunkit_portmap_output *o = &ev.o;
        if (m->winner != STUNKIT_PORTMAP_AUTO && m->winner != STUNKIT_PORTMAP_UPNP)
            continue; /* lost the race: it deletes on its own */
        if (m->winner == STUNKIT_PORTMAP_AUTO && m->upnp_out)
            continue; /* called off: a mapping it made is being deleted */
        stunkit_mapping_event me;
        memset(&me, 0, sizeof(me));
        me.e = ev;
        switch (o->event) {
        case STUNKIT_PORTMAP_EVENT_MAPPED:
            m->winner = STUNKIT_PORTMAP_UPNP;
            m->upnp_mapped = 1;
            m->pcp_out = 1; /* the machine, if still asking, is wound down in pcp_pump */
            push(m, &me);
            break;
        case STUNKIT_PORTMAP_EVENT_RENEWED:
        case STUNKIT_PORTMAP_EVENT_RESET: push(m, &me); break;
        case STUNKIT_PORTMAP_EVENT_DELETED:
            m->upnp_mapped = 0;
            push(m, &me);
            break;
        case STUNKIT_PORTMAP_EVENT_FAILED:
            if (m->winner == STUNKIT_PORTMAP_UPNP) {
                m->upnp_mapped = 0;
                m->failed = 1;
                push(m, &me);
            } else {
                m->upnp_out = 1;
                m->out.upnp_result = o->result;
                snprintf(m->out.upnp_reason, sizeof(m->out.upnp_reason), "%s", o->reason);
            }
            break;
        }
    }
    (void)now;
}

int stunkit_mapping_poll(stunkit_mapping *m, uint64_t now, stunkit_mapping_event *ev)
{
    if (!m->qn) {
        /* the epoll set is level-triggered: reading each source clears it */
        if (m->m)
            pcp_read(m, now);
        pcp_pump(m, now);
        upnp_pump(m, now);
        if (m->winner == STUNKIT_PORTMAP_AUTO && !m->deleting) {
            if (m->m && (m->unreachable || now >= m->deadline))
                pcp_out(m, -1, m->unreachable ? "nothing listens on its port 5351 (ICMP port unreachable)"
                                              : "no answer to PCP or NAT-PMP");
            if (m->u && !m->upnp_out && m->u_deadline && now >= m->u_deadline) {
                stunkit_upnp_task_stop(m->u, 1); /* a mapping made just now is deleted, not left to lapse */
                m->upnp_out = 1;
                snprintf(m->out.upnp_reason, sizeof(m->out.upnp_reason), "no IGD answered in time");
            }
            if (m->pcp_out && m->upnp_out && !m->failed) {
                m->failed = 1;
                push(m, &m->out);
            }
        } else if (m->winner == STUNKIT_PORTMAP_UPNP && m->m && !m->deleting && now >= m->deadline) {
            pcp_stop(m); /* lost, and still unanswered: nothing was made */
        }
    }
    if (!m->qn)
        return 0;
    *ev = m->q[m->qh];
    m->qh = (m->qh + 1) % EVQ;
    m->qn--;
    return 1;
}

uint64_t stunkit_mapping_timeout(const stunkit_mapping *m)
{
    if (m->qn)
        return 0;
    uint64_t next = m->m ? stunkit_portmap_timeout(m->m) : UINT64_MAX;
    if (m->m && !m->pcp_mapped && m->deadline < next)
        next = m->deadline;
    if (m->winner == STUNKIT_PORTMAP_AUTO && m->u && !m->upnp_out && m->u_deadline && m->u_deadline < next)
        next = m->u_deadline;
    return next;
}

int stunkit_mapping_delete(stunkit_mapping *m, uint64_t now)
{
    m->deleting = 1;
    if (m->winner == STUNKIT_PORTMAP_UPNP && m->upnp_mapped) {
        stunkit_upnp_task_stop(m->u, 1);
        return 0;
    }
    if (m->winner != STUNKIT_PORTMAP_AUTO && m->pcp_mapped && m->m && stunkit_portmap_delete(m->m, now) == 0)
        return 0;
    /* nothing mapped: every attempt is called off (UPnP deletes what it
     * may have made meanwhile) */
    if (m->u)
        stunkit_upnp_task_stop(m->u, 1);
    if (m->m && !m->pcp_mapped)
        pcp_stop(m);
    return STUNKIT_ERR_STATE;
}

void stunkit_mapping_close(stunkit_mapping *m, uint32_t wait_ms)
{
    if (!m)
        return;
    if (stunkit_mapping_delete(m, stunkit_now_ms()) == 0) {
        uint64_t end = stunkit_now_ms() + wait_ms;
        stunkit_mapping_event ev;
        for (int gone = 0; !gone;) {
            uint64_t now = stunkit_now_ms();
            while (!gone && stunkit_mapping_poll(m, now, &ev) == 1)
                gone = ev.e.o.event == STUNKIT_PORTMAP_EVENT_DELETED || ev.e.o.event == STUNKIT_PORTMAP_EVENT_FAILED;
            if (gone || now >= end)
                break;
            uint64_t next = stunkit_mapping_timeout(m);
            if (next > end)
                next = end;
            struct pollfd pf = {m->efd, POLLIN, 0};
            (void)poll(&pf, 1, next > now ? (int)(next - now > 100 ? 100 : next - now) : 0);
        }
    }
    stunkit_mapping_free(m);
}

void stunkit_mapping_free(stunkit_mapping *m)
{
    if (!m)
        return;
    pcp_stop(m);
    stunkit_upnp_task_free(m->u); /* a UPnP mapping that lost the race is deleted by its thread */
    close(m->efd);
    free(m);
}
