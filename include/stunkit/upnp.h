/*
 * stunkit/upnp.h - port mappings from a UPnP Internet Gateway Device (IGD
 * v1 and v2; WANIPConnection or WANPPPConnection; IPv6 pinholes through
 * WANIPv6FirewallControl) by way of libminiupnpc, the library the field
 * uses. UPnP is SSDP discovery plus SOAP over HTTP, so this is a blocking
 * driver (like stunkit_binding()), not a sans-I/O machine: PCP and NAT-PMP
 * are the machine in stunkit/portmap.h.
 *
 * An optional part: stunkit_upnp_available() is 0 when libstunkit was built
 * without libminiupnpc, and then every call returns STUNKIT_ERR_UNSUPPORTED.
 *
 * Only the gateway is spoken to: SSDP answers whose description URL names
 * another host are ignored, and so is a device whose control URLs point
 * anywhere but the gateway. Routers are quirky, and these are handled:
 *   - a lease refused with 725 OnlyPermanentLeasesSupported is asked again
 *     as permanent (`permanent` is set: delete it yourself when done);
 *   - an external port taken by another host (718 ConflictInMappingEntry)
 *     moves to another port (IGD v2: AddAnyPortMapping, the router picks;
 *     v1: a few other ports are tried);
 *   - an IGD that says it is "not connected", or cannot tell its external
 *     address, is still asked (libminiupnpc's own upnpc gives up there).
 */
#ifndef STUNKIT_UPNP_H
#define STUNKIT_UPNP_H

#include <stddef.h>
#include <stdint.h>

#include "stunkit/addr.h"
#include "stunkit/export.h"
#include "stunkit/portmap.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct stunkit_upnp stunkit_upnp;

typedef struct stunkit_upnp_info {
    int igd_version;       /* 1 or 2 */
    char service[48];      /* "WANIPConnection:2", "WANPPPConnection:1" */
    int connected;         /* 0: the IGD calls itself not connected (asked anyway) */
    stunkit_addr external; /* family 0: the IGD cannot tell its external address */
    stunkit_addr local;    /* this host's address toward the IGD */
    int pinholes;          /* WANIPv6FirewallControl is offered */
    char location[160];    /* the device description's URL */
} stunkit_upnp_info;

typedef struct stunkit_upnp_mapping {
    int protocol;           /* 17 (UDP) or 6 (TCP) */
    stunkit_addr internal;  /* the client's address and port */
    uint16_t external_port; /* add: asked for (0: the internal port); then: what was given */
    uint32_t lifetime_s;    /* add: asked for; then: granted; 0 = permanent */
    int permanent;          /* the router gives permanent leases only (725): remove it when done */
    int moved;              /* the asked port was taken (718): another was given */
    int enabled;            /* list: the entry is enabled */
    char description[64];   /* list: the entry's description; add: ours (default "stunkit") */
} stunkit_upnp_mapping;

/* 1 when built with libminiupnpc. */
STUNKIT_API int stunkit_upnp_available(void);

/* Finds the IGD at `gateway` by SSDP (waiting at most timeout_ms for
 * answers) and reads its description. 0, STUNKIT_ERR_UNSUPPORTED (not
 * built in), STUNKIT_ERR_TIMEOUT (no UPnP device answered from the
 * gateway), STUNKIT_ERR_NOT_FOUND (devices answered, none an IGD at the
 * gateway), STUNKIT_ERR_NOMEM. `why` gets a sentence in every failure. */
STUNKIT_API int stunkit_upnp_open(stunkit_upnp **out, const stunkit_addr *gateway, int timeout_ms, char *why,
                                  size_t why_len);
STUNKIT_API const stunkit_upnp_info *stunkit_upnp_get_info(const stunkit_upnp *u);
STUNKIT_API void stunkit_upnp_close(stunkit_upnp *u);

/* Adds a mapping (m: protocol, internal, external_port, lifetime_s,
 * description); on success m says what the router gave. Failure:
 * STUNKIT_ERR_REFUSED with the router's UPnP error in *upnp_error (may be
 * NULL) and words in why. Calling it again for a mapping this host holds
 * renews it (same external port). */
STUNKIT_API int stunkit_upnp_add(stunkit_upnp *u, stunkit_upnp_mapping *m, int *upnp_error, char *why,
                                 size_t why_len);
/* Renews exactly m->external_port (no moving): a lease keeps going. */
STUNKIT_API int stunkit_upnp_renew(stunkit_upnp *u, stunkit_upnp_mapping *m, int *upnp_error, char *why,
                                   size_t why_len);
STUNKIT_API int stunkit_upnp_delete(stunkit_upnp *u, int protocol, uint16_t external_port, int *upnp_error,
                                    char *why, size_t why_len);
/* The router's mappings (GetGenericPortMappingEntry): how many were
 * written to out (at most max), or an error. */
STUNKIT_API int stunkit_upnp_list(stunkit_upnp *u, stunkit_upnp_mapping *out, size_t max);

/* IPv6 firewall pinholes (WANIPv6FirewallControl): let `internal` (an
 * IPv6 address and port) be reached from anywhere for lifetime_s seconds.
 * uid receives the router's handle for update and delete. */
STUNKIT_API int stunkit_upnp_pinhole_add(stunkit_upnp *u, int protocol, const stunkit_addr *internal,
                                         uint32_t lifetime_s, char *uid, size_t uid_len, int *upnp_error,
                                         char *why, size_t why_len);
STUNKIT_API int stunkit_upnp_pinhole_update(stunkit_upnp *u, const char *uid, uint32_t lifetime_s, int *upnp_error);
STUNKIT_API int stunkit_upnp_pinhole_delete(stunkit_upnp *u, const char *uid, int *upnp_error);

/*
 * A mapping on its own thread (libminiupnpc blocks on SSDP and HTTP), so
 * that PCP, NAT-PMP and UPnP can be asked at once: the thread finds the IGD
 * at `gateway` (waiting at most timeout_ms for SSDP answers), maps, renews
 * at half the lease and, when stopped with delete, removes the mapping. It
 * reports the events of the PCP/NAT-PMP machine (stunkit/portmap.h): MAPPED,
 * RENEWED, FAILED, DELETED. The mapping's description is "DESCRIPTION PORT"
 * (NULL: "stunkit"). Without libminiupnpc the thread reports FAILED at once.
 */
typedef struct stunkit_upnp_task stunkit_upnp_task;

typedef struct stunkit_upnp_task_event {
    stunkit_portmap_output o; /* event, external (family 0: the IGD cannot tell), lifetime_s, result, reason */
    int permanent;            /* the router gives permanent leases only (725) */
    int moved;                /* the asked port was taken (718) */
    int connected;            /* the IGD says it is connected */
    int igd_version;
    char service[48];
    char location[160];
} stunkit_upnp_task_event;

/* NULL: out of memory or threads. */
STUNKIT_API stunkit_upnp_task *stunkit_upnp_task_start(const stunkit_addr *gateway, const stunkit_addr *internal,
                                                       int protocol, uint16_t external_port, uint32_t lifetime_s,
                                                       int timeout_ms, const char *description);
/* Readable when an event waits. */
STUNKIT_API int stunkit_upnp_task_fd(const stunkit_upnp_task *u);
/* 1: *ev holds the next event; 0: none yet. */
STUNKIT_API int stunkit_upnp_task_poll(stunkit_upnp_task *u, stunkit_upnp_task_event *ev);
/* Asks the thread to finish; with delete, it removes the mapping first
 * (DELETED or FAILED follows). */
STUNKIT_API void stunkit_upnp_task_stop(stunkit_upnp_task *u, int delete_mapping);
/* Stops (without deleting) if still running, waits for the thread, frees. */
STUNKIT_API void stunkit_upnp_task_free(stunkit_upnp_task *u);

/* The UPnP name of an error code ("ConflictInMappingEntry"), or "". */
STUNKIT_API const char *stunkit_upnp_error_name(int code);

#ifdef __cplusplus
}
#endif
#endif
