/*
 * peer_map.c - the peer asks the router for a port (stunkit/peer.h): PCP
 * and NAT-PMP (the machine in stunkit/portmap.h) and UPnP IGD (a thread,
 * stunkit_upnp_task) at once, from the socket on the way to the default
 * gateway. The first mapping is a server-reflexive candidate (RFC 8445
 * 5.1.1.2); one the other method grants later is given back. Renewed while
 * the peer lives, deleted when it is freed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "peer_int.h"

#define MAP_WAIT_MS 1000u  /* a router that has not answered PCP / NAT-PMP by then has neither */
#define UPNP_SEARCH_MS 600u /* UPnP: two SSDP searches (IGD:2, IGD:1) of 300 ms each (a LAN answers in ms) */
#define UPNP_WAIT_MS 1500u  /* ... then HTTP to the IGD: called off after this */
#define MAP_LIFETIME_S 600u /* renewed while we run, deleted when we end */

/* Asks the default gateway for a mapping of the socket whose address is the
 * way to it. Nothing to ask (no gateway, no such socket): settled at once. */
void peer_map_start(stunkit_peer *p, uint64_t now)
{
    peer_portmap *pm = &p->pm;
    pm->fd = pm->base = -1;
    pm->settled = 1;
    /* a server on loopback: a test on this host, nothing to ask a router */
    if (!p->map || (p->server.family == STUNKIT_AF_INET && p->server.ip[0] == 127) ||
        p->server.family != STUNKIT_AF_INET || stunkit_default_gateway(STUNKIT_AF_INET, &pm->gateway) != 0)
        return;
    pm->gateway.port = STUNKIT_PORTMAP_PORT;
    struct sockaddr_storage ss, mine;
    socklen_t ml = sizeof(mine);
    int sl = stunkit_addr_to_sockaddr(&pm->gateway, &ss);
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    stunkit_addr src;
    if (fd < 0 || connect(fd, (struct sockaddr *)&ss, (socklen_t)sl) != 0 ||
        getsockname(fd, (struct sockaddr *)&mine, &ml) != 0 || stunkit_addr_from_sockaddr(&src, (struct sockaddr *)&mine) != 0) {
        if (fd >= 0)
            close(fd);
        return;
    }
    for (int i = 0; i < p->nsocks; i++)
        if (p->socks[i].local.family == src.family && !memcmp(p->socks[i].local.ip, src.ip, 4))
            pm->base = i;
    stunkit_portmap_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.size = sizeof(cfg);
    cfg.gateway = pm->gateway;
    cfg.protocol = 17;
    cfg.lifetime_s = MAP_LIFETIME_S;
    cfg.method = STUNKIT_PORTMAP_AUTO;
    cfg.env = p->env;
    if (pm->base >= 0) {
        cfg.internal = p->socks[pm->base].local;
        pm->m = stunkit_portmap_new(&cfg, now);
        if (stunkit_upnp_available()) {
            stunkit_addr gw = pm->gateway;
            gw.port = 0;
            pm->u = stunkit_upnp_task_start(&gw, &cfg.internal, 17, cfg.internal.port, MAP_LIFETIME_S,
                                            (int)UPNP_SEARCH_MS, "stunkit peer");
            pm->u_state = pm->u ? UPNP_ASKING : UPNP_NONE;
            if (pm->u)
                peer_watch(p, stunkit_upnp_task_fd(pm->u), EV_UPNP, 0, 0);
        }
    }
    if (!pm->m) {
        close(fd);
        fd = -1;
    }
    if (!pm->m && !pm->u) {
        pm->base = -1;
        return;
    }
    pm->fd = fd;
    if (fd >= 0)
        peer_watch(p, fd, EV_PM, 0, 0);
    pm->settled = 0;
    pm->asked = 1;
    pm->deadline = now + MAP_WAIT_MS;
    pm->u_deadline = now + UPNP_WAIT_MS;
}

/* The mapping of one method: the candidate if it is the first (or its
 * renewal moved), 0; -1 when the other method's mapping is the candidate. */
static int map_candidate(stunkit_peer *p, int who, const stunkit_portmap_output *o, uint64_t now)
{
    peer_portmap *pm = &p->pm;
    if (pm->use && pm->use != who)
        return -1;
    pm->use = who;
    pm->method = o->method;
    /* a router that does not tell its external address (some NAT-PMP ones
     * when asked in PCP, an IGD without GetExternalIPAddress) gives no
     * candidate */
    if (o->external.family && memcmp(o->external.ip, "\0\0\0\0", 4) && !stunkit_addr_equal(&o->external, &pm->external)) {
        pm->external = o->external;
        stunkit_ice_candidate c;
        memset(&c, 0, sizeof(c));
        c.type = STUNKIT_ICE_TYPE_SRFLX; /* RFC 8445 5.1.1.2: mapped like a NAT's, signalled as srflx */
        c.addr = o->external;
        c.related = p->socks[pm->base].local;
        c.base = pm->base;
        if (p->ice)
            stunkit_ice_add_local(p->ice, &c, now);
    }
    return 0;
}

static void map_settle(stunkit_peer *p, uint64_t now)
{
    if (p->pm.settled)
        return;
    p->pm.settled = 1;
    if (p->ice)
        stunkit_ice_local_done(p->ice, now);
}

/* Gathering may end once a mapping is a candidate, or both methods are out:
 * PCP / NAT-PMP unanswered after MAP_WAIT_MS, UPnP after UPNP_WAIT_MS (its
 * search is then called off). A network without either router waits
 * about 1 s, PCP's and NAT-PMP's silence. */
static void map_check(stunkit_peer *p, uint64_t now)
{
    peer_portmap *pm = &p->pm;
    if (pm->settled || !pm->asked)
        return;
    if (now >= pm->u_deadline && pm->u_state == UPNP_ASKING) {
        stunkit_upnp_task_stop(pm->u, 1); /* a mapping made just now is deleted, not left to lapse */
        pm->u_state = UPNP_DONE;
    }
    if (pm->use || ((!pm->m || now >= pm->deadline) && pm->u_state != UPNP_ASKING))
        map_settle(p, now);
}

/* When the mapping attempts next need a look (UINT64_MAX: not). */
uint64_t peer_map_timeout(const stunkit_peer *p)
{
    const peer_portmap *pm = &p->pm;
    uint64_t next = pm->m ? stunkit_portmap_timeout(pm->m) : UINT64_MAX;
    if (!pm->settled) {
        if (pm->m && pm->deadline < next)
            next = pm->deadline;
        if (pm->u_state == UPNP_ASKING && pm->u_deadline < next)
            next = pm->u_deadline;
    }
    return next;
}

void peer_map_upnp(stunkit_peer *p, uint64_t now)
{
    peer_portmap *pm = &p->pm;
    stunkit_upnp_task_event ev;
    while (pm->u && stunkit_upnp_task_poll(pm->u, &ev) == 1) {
        switch (ev.o.event) {
        case STUNKIT_PORTMAP_EVENT_MAPPED:
        case STUNKIT_PORTMAP_EVENT_RENEWED:
            if (pm->u_state == UPNP_DONE)
                break; /* called off meanwhile: the thread deletes it or lets it lapse */
            pm->u_state = UPNP_MAPPED;
            if (map_candidate(p, MAP_UPNP, &ev.o, now) < 0) { /* PCP came first: give it back */
                stunkit_upnp_task_stop(pm->u, 1);
                pm->u_state = UPNP_DONE;
            }
            break;
        case STUNKIT_PORTMAP_EVENT_FAILED:
        case STUNKIT_PORTMAP_EVENT_DELETED: pm->u_state = UPNP_DONE; break;
        default: break;
        }
    }
    map_check(p, now);
}

/* A router that mapped nothing has nothing to renew or delete. */
static void map_stop(peer_portmap *pm)
{
    stunkit_portmap_free(pm->m);
    pm->m = NULL;
    if (pm->fd >= 0)
        close(pm->fd);
    pm->fd = -1;
}

void peer_map_pump(stunkit_peer *p, uint64_t now)
{
    peer_portmap *pm = &p->pm;
    stunkit_portmap_output o;
    peer_map_upnp(p, now);
    if (!pm->m)
        return;
    for (int pr; pm->m && (pr = stunkit_portmap_poll(pm->m, now, &o)) != 0;) {
        if (pr < 0)
            continue; /* STUNKIT_ERR_NOBUF: events were lost; the rest follow */
        if (o.send) {
            /* an ICMP error for the previous datagram is reported here */
            if (send(pm->fd, o.data, o.len, 0) < 0 && errno == ECONNREFUSED) {
                map_stop(pm);
                map_check(p, now);
                return;
            }
            continue;
        }
        switch (o.event) {
        case STUNKIT_PORTMAP_EVENT_MAPPED:
        case STUNKIT_PORTMAP_EVENT_RENEWED:
            pm->mapped = 1;
            if (map_candidate(p, MAP_PCP, &o, now) < 0) /* UPnP came first: give it back */
                stunkit_portmap_delete(pm->m, now);
            break;
        case STUNKIT_PORTMAP_EVENT_FAILED:
        case STUNKIT_PORTMAP_EVENT_DELETED:
            pm->mapped = 0;
            map_stop(pm);
            break;
        default: break;
        }
    }
    if (pm->m && !pm->mapped && !pm->settled && now >= pm->deadline)
        map_stop(pm);
    map_check(p, now);
}

void peer_map_readable(stunkit_peer *p, uint64_t now)
{
    uint8_t buf[1100];
    ssize_t n;
    while (p->pm.fd >= 0 && ((n = recv(p->pm.fd, buf, sizeof(buf), 0)) >= 0 || errno == ECONNREFUSED)) {
        if (n < 0) { /* ICMP: the router runs neither PCP nor NAT-PMP */
            map_stop(&p->pm);
            map_check(p, now);
            return;
        }
        stunkit_portmap_input(p->pm.m, p->pm.fd, &p->pm.gateway, buf, (size_t)n, now);
        peer_map_pump(p, now);
    }
}

/* At the end: the router removes the mappings (PCP and NAT-PMP answer at
 * once; half a second at most; UPnP's thread deletes its own, a second at
 * most, and is waited for). */
void peer_map_end(stunkit_peer *p)
{
    peer_portmap *pm = &p->pm;
    if (pm->u) {
        if (pm->u_state == UPNP_MAPPED) {
            stunkit_upnp_task_stop(pm->u, 1);
            uint64_t end = stunkit_now_ms() + 1000;
            stunkit_upnp_task_event ev;
            for (int gone = 0; !gone && stunkit_now_ms() < end;) {
                struct pollfd pf = {stunkit_upnp_task_fd(pm->u), POLLIN, 0};
                (void)poll(&pf, 1, 100);
                while (stunkit_upnp_task_poll(pm->u, &ev) == 1)
                    gone |= ev.o.event == STUNKIT_PORTMAP_EVENT_DELETED || ev.o.event == STUNKIT_PORTMAP_EVENT_FAILED;
            }
        }
        stunkit_upnp_task_free(pm->u);
        pm->u = NULL;
        pm->u_state = UPNP_NONE;
    }
    if (pm->m && pm->mapped && stunkit_portmap_delete(pm->m, peer_now(p)) == 0) {
        uint64_t end = stunkit_now_ms() + 500;
        while (pm->m && pm->mapped) {
            uint64_t now = peer_now(p);
            peer_map_pump(p, now);
            if (!pm->m || now >= end)
                break;
            struct pollfd pf = {pm->fd, POLLIN, 0};
            uint64_t next = stunkit_portmap_timeout(pm->m);
            if (next > end)
                next = end;
            if (poll(&pf, 1, next > now ? (int)(next - now) : 0) > 0)
                peer_map_readable(p, peer_now(p));
        }
    }
    map_stop(pm);
}

