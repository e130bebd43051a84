/*
 * map_upnp.h - a UPnP IGD mapping for `stunkit map`, run on its own thread
 * (libminiupnpc blocks on SSDP and HTTP) so that `--method auto` can ask
 * PCP, NAT-PMP and UPnP at once. The thread finds the IGD, maps, renews at
 * half the lease and, when stopped with delete, removes the mapping; it
 * reports the same events as the PCP/NAT-PMP machine.
 */
#ifndef STUNKIT_CLI_MAP_UPNP_H
#define STUNKIT_CLI_MAP_UPNP_H

#include "stunkit/stunkit.h"

typedef struct map_upnp map_upnp;

typedef struct map_upnp_event {
    stunkit_portmap_output o; /* event, external (family 0: the IGD cannot tell), lifetime_s, result, reason */
    int permanent;            /* the router gives permanent leases only (725) */
    int moved;                /* the asked port was taken (718) */
    int connected;            /* the IGD says it is connected */
    int igd_version;
    char service[48];
    char location[160];
} map_upnp_event;

map_upnp *map_upnp_start(const stunkit_addr *gateway, const stunkit_addr *internal, int protocol,
                         uint16_t external_port, uint32_t lifetime_s, int timeout_ms);
/* Readable when an event waits. */
int map_upnp_fd(const map_upnp *u);
/* 1: *ev holds the next event; 0: none yet. */
int map_upnp_poll(map_upnp *u, map_upnp_event *ev);
/* Asks the thread to finish; with delete, it removes the mapping first
 * (DELETED or FAILED follows). */
void map_upnp_stop(map_upnp *u, int delete);
/* Stops (without deleting) if still running, waits for the thread, frees. */
void map_upnp_free(map_upnp *u);

#endif
