/*
 * peer_map.c - the peer asks the router for a port (stunkit/peer.h) for the
 * socket on the way to the default gateway: PCP / NAT-PMP and UPnP IGD at
 * once, through stunkit/mapping.h (the race `stunkit map` runs too). The
 * mapping is a server-reflexive candidate (RFC 8445 5.1.1.2), renewed while
 * the peer lives, deleted when it is freed.
 */
#define _GNU_SOURCE
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "peer_int.h"

#define MAP_WAIT_MS 1000u   /* a router that has not answered PCP / NAT-PMP by then has neither */
#define UPNP_SEARCH_MS 600u /* UPnP: two SSDP searches (IGD:2, IGD:1) of 300 ms each (a LAN answers in ms) */
#define UPNP_WAIT_MS 1500u  /* ... then HTTP to the IGD: called off after this */
#define MAP_LIFETIME_S 600u /* renewed while we run, deleted when we end */

/* Which of our sockets is on the way to the gateway (the route's source
 * address): -1 none. */
static int base_toward(const stunkit_peer *p, const stunkit_addr *gateway)
{
    struct sockaddr_storage ss, mine;
    socklen_t ml = sizeof(mine);
    int sl = stunkit_addr_to_sockaddr(gateway, &ss), base = -1;
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    stunkit_addr src;
    if (fd >= 0 && connect(fd, (struct sockaddr *)&ss, (socklen_t)sl) == 0 &&
        getsockname(fd, (struct sockaddr *)&mine, &ml) == 0 && stunkit_addr_from_sockaddr(&src, (struct sockaddr *)&mine) == 0)
        for (int i = 0; i < p->nsocks; i++)
            if (p->socks[i].local.family == src.family && !memcmp(p->socks[i].local.ip, src.ip, 4))
                base = i;
    if (fd >= 0)
        close(fd);
    return base;
}

/* Asks the default gateway for a mapping of the socket whose address is the
 * way to it. Nothing to ask (no gateway, no such socket): settled at once. */
void peer_map_start(stunkit_peer *p, uint64_t now)
{
    peer_portmap *pm = &p->pm;
    pm->base = -1;
    pm->settled = 1;
    /* a server on loopback: a test on this host, nothing to ask a router */
    if (!p->map || (p->server.family == STUNKIT_AF_INET && p->server.ip[0] == 127) ||
        p->server.family != STUNKIT_AF_INET || stunkit_default_gateway(STUNKIT_AF_INET, &pm->gateway) != 0)
        return;
    pm->gateway.port = STUNKIT_PORTMAP_PORT;
    if ((pm->base = base_toward(p, &pm->gateway)) < 0)
        return;
    stunkit_mapping_config c;
    memset(&c, 0, sizeof(c));
    c.size = sizeof(c);
    c.env = p->env;
    c.gateway = pm->gateway;
    c.internal = p->socks[pm->base].local;
    c.protocol = 17;
    c.lifetime_s = MAP_LIFETIME_S;
    c.method = STUNKIT_PORTMAP_AUTO;
    c.timeout_ms = MAP_WAIT_MS;
    c.upnp_search_ms = UPNP_SEARCH_MS;
    c.upnp_timeout_ms = UPNP_WAIT_MS;
    c.description = "stunkit peer";
    if (!(pm->m = stunkit_mapping_start(&c, now, NULL, NULL, 0))) {
        pm->base = -1;
        return;
    }
    peer_watch(p, stunkit_mapping_fd(pm->m), EV_PM, 0, 0);
    pm->settled = 0;
}

/* A mapping (or its renewal, which may move it): the candidate. */
static void map_candidate(stunkit_peer *p, const stunkit_portmap_output *o, uint64_t now)
{
    peer_portmap *pm = &p->pm;
    pm->method = o->method;
    /* a router that does not tell its external address (some NAT-PMP ones
     * when asked in PCP, an IGD without GetExternalIPAddress) gives no
     * candidate */
    if (!o->external.family || !memcmp(o->external.ip, "\0\0\0\0", 4) || stunkit_addr_equal(&o->external, &pm->external))
        return;
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

/* Gathering may end once a mapping is a candidate, or every method is out
 * (a network without a mapping router waits about 1 s: PCP's and NAT-PMP's
 * silence). */
static void map_settle(stunkit_peer *p, uint64_t now)
{
    if (p->pm.settled)
        return;
    p->pm.settled = 1;
    if (p->ice)
        stunkit_ice_local_done(p->ice, now);
}

void peer_map_pump(stunkit_peer *p, uint64_t now)
{
    peer_portmap *pm = &p->pm;
    stunkit_mapping_event ev;
    while (pm->m && stunkit_mapping_poll(pm->m, now, &ev) == 1) {
        switch (ev.e.o.event) {
        case STUNKIT_PORTMAP_EVENT_MAPPED:
        case STUNKIT_PORTMAP_EVENT_RENEWED:
            map_candidate(p, &ev.e.o, now);
            map_settle(p, now);
            break;
        case STUNKIT_PORTMAP_EVENT_FAILED:
        case STUNKIT_PORTMAP_EVENT_DELETED:
            map_settle(p, now);
            break;
        default: break;
        }
    }
}

void peer_map_readable(stunkit_peer *p, uint64_t now)
{
    peer_map_pump(p, now);
}

/* When the mapping next needs a look (UINT64_MAX: not). */
uint64_t peer_map_timeout(const stunkit_peer *p)
{
    return p->pm.m ? stunkit_mapping_timeout(p->pm.m) : UINT64_MAX;
}

/* At the end: the router removes the mapping (PCP and NAT-PMP answer at
 * once, UPnP's thread in a few ms; a second at most). */
void peer_map_end(stunkit_peer *p)
{
    stunkit_mapping_close(p->pm.m, 1000);
    p->pm.m = NULL;
}
