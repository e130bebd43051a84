/*
 * stunkit/mapping.h - a port mapping asked of the router by every method at
 * once: PCP (RFC 6887) falling back to NAT-PMP (RFC 6886), the machine of
 * stunkit/portmap.h on a socket of its own, and UPnP IGD (stunkit/upnp.h's
 * thread). The first method to map wins; a mapping the other makes anyway
 * is deleted. Renewed before it expires until stunkit_mapping_delete() (or
 * free, which leaves it to lapse). What `stunkit map` and the peer
 * (stunkit/peer.h) both use.
 *
 *   stunkit_mapping *m = stunkit_mapping_start(&cfg, now, &err);
 *   loop: watch stunkit_mapping_fd(m) for reading, wake at
 *         stunkit_mapping_timeout(m); then
 *         while (stunkit_mapping_poll(m, now, &ev) == 1) ... ev.e.o.event
 *   stunkit_mapping_close(m, 1000);     (deletes it, waits for the router)
 *
 * Events (ev.e.o.event): MAPPED once (method, external address, lifetime;
 * ev.nonce for PCP), then RENEWED / RESET as the router answers; FAILED once
 * when no method mapped (ev says what each method answered) or a mapping
 * could not be kept; DELETED after stunkit_mapping_delete().
 */
#ifndef STUNKIT_MAPPING_H
#define STUNKIT_MAPPING_H

#include <stddef.h>
#include <stdint.h>

#include "stunkit/addr.h"
#include "stunkit/export.h"
#include "stunkit/machine.h"
#include "stunkit/portmap.h"
#include "stunkit/upnp.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct stunkit_mapping stunkit_mapping;

typedef struct stunkit_mapping_config {
    size_t size;              /* sizeof(stunkit_mapping_config) (stunkit/machine.h) */
    stunkit_env env;          /* NULL random: the OS's */
    stunkit_addr gateway;     /* the router (its port is ignored) */
    stunkit_addr internal;    /* this host's address toward the router, and the port to map */
    int protocol;             /* 17 (UDP) or 6 (TCP) */
    uint16_t external_port;   /* suggested; 0: any */
    uint32_t lifetime_s;      /* 0: 7200 */
    /* STUNKIT_PORTMAP_AUTO: PCP/NAT-PMP and (IPv4, when built with
     * libminiupnpc) UPnP IGD at once; PCP, NATPMP or UPNP: that one only */
    stunkit_portmap_method method;
    uint32_t timeout_ms;      /* PCP/NAT-PMP silent this long: out (0: 1000) */
    uint32_t upnp_search_ms;  /* UPnP's SSDP search (0: timeout_ms) */
    uint32_t upnp_timeout_ms; /* UPnP not mapped by then: called off (0: it ends on its own) */
    const char *description;  /* UPnP's NewPortMappingDescription (NULL: "stunkit") */
    int use_nonce;            /* PCP: this nonce, not a random one */
    uint8_t nonce[12];
} stunkit_mapping_config;

typedef struct stunkit_mapping_event {
    /* e.o: event, method, external (family 0: the router does not tell),
     * lifetime_s, result, reason; the rest UPnP's details */
    stunkit_upnp_task_event e;
    uint8_t nonce[12];        /* MAPPED by PCP: the mapping's (to delete it from elsewhere) */
    /* FAILED before anything mapped: what each method asked said */
    int pcp_asked, upnp_asked;
    stunkit_portmap_method pcp_method; /* PCP or NAT-PMP: the last one tried */
    int pcp_result, upnp_result;       /* the protocol's code; -1: no answer */
    char pcp_reason[160], upnp_reason[160];
} stunkit_mapping_event;

/* Starts asking. NULL with *err: STUNKIT_ERR_INVAL (why says: the
 * settings, UPnP for IPv6, UPnP not built in), STUNKIT_ERR_SYSCALL (no way
 * to the gateway), STUNKIT_ERR_NOMEM. */
STUNKIT_API stunkit_mapping *stunkit_mapping_start(const stunkit_mapping_config *cfg, uint64_t now_ms, int *err,
                                                   char *why, size_t why_len);
/* Readable when an answer (or the UPnP thread's event) waits. */
STUNKIT_API int stunkit_mapping_fd(const stunkit_mapping *m);
/* Reads what came, sends what is due: 1 and *ev, or 0 (nothing now). */
STUNKIT_API int stunkit_mapping_poll(stunkit_mapping *m, uint64_t now_ms, stunkit_mapping_event *ev);
STUNKIT_API uint64_t stunkit_mapping_timeout(const stunkit_mapping *m);
/* The method that mapped (STUNKIT_PORTMAP_AUTO: none yet). */
STUNKIT_API stunkit_portmap_method stunkit_mapping_method(const stunkit_mapping *m);
/* Asks the router to remove the mapping: DELETED or FAILED follows.
 * STUNKIT_ERR_STATE when nothing is mapped (every attempt is called off). */
STUNKIT_API int stunkit_mapping_delete(stunkit_mapping *m, uint64_t now_ms);
/* Deletes the mapping and waits (at most wait_ms of real time) for the
 * router to confirm, then frees. NULL is fine. */
STUNKIT_API void stunkit_mapping_close(stunkit_mapping *m, uint32_t wait_ms);
/* Frees without deleting (a mapping lapses at its lifetime's end; a UPnP
 * one that lost the race is still deleted). Waits for the UPnP thread. */
STUNKIT_API void stunkit_mapping_free(stunkit_mapping *m);

#ifdef __cplusplus
}
#endif
#endif
