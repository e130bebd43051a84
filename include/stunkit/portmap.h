/*
 * stunkit/portmap.h - asking the router for a port: PCP (RFC 6887) and
 * NAT-PMP (RFC 6886) as one sans-I/O machine with the contract of
 * stunkit/machine.h: datagrams and `now` in, datagrams and events out.
 *
 *   stunkit_portmap_new()    then poll: it sends the MAP request (in AUTO,
 *                            PCP and a harmless NAT-PMP address query at
 *                            once; a NAT-PMP-only router answers PCP with
 *                            "unsupported version" and is then spoken to in
 *                            NAT-PMP) and reports MAPPED or FAILED
 *   stunkit_portmap_input()  every datagram from the router's port 5351
 *   stunkit_portmap_delete() lifetime 0: the mapping is removed; DELETED
 *
 * The mapping is renewed before it expires (PCP: between 1/2 and 5/8 of the
 * lifetime; NAT-PMP: halfway), with the same PCP nonce. Every answer's epoch
 * is checked: a router that lost its state (rebooted) is asked again at
 * once, and RESET tells the application. PCP over IPv6 opens a firewall
 * pinhole for an IPv6 address (the external address is the internal one).
 *
 * Answers are hostile input: only from the gateway's address and port 5351,
 * of the exact size and version, for our nonce, protocol and port.
 */
#ifndef STUNKIT_PORTMAP_H
#define STUNKIT_PORTMAP_H

#include <stddef.h>
#include <stdint.h>

#include "stunkit/addr.h"
#include "stunkit/export.h"
#include "stunkit/machine.h"

#ifdef __cplusplus
extern "C" {
#endif

#define STUNKIT_PORTMAP_PORT 5351 /* the router's PCP / NAT-PMP port */

typedef enum stunkit_portmap_method {
    STUNKIT_PORTMAP_AUTO = 0, /* PCP, falling back to NAT-PMP */
    STUNKIT_PORTMAP_PCP = 1,
    STUNKIT_PORTMAP_NATPMP = 2,
    STUNKIT_PORTMAP_UPNP = 3 /* a name only: UPnP IGD is stunkit/upnp.h, not this machine */
} stunkit_portmap_method;

typedef struct stunkit_portmap_config {
    size_t size;              /* sizeof(stunkit_portmap_config) (stunkit/machine.h) */
    stunkit_env env;          /* randomness for the PCP nonce and retransmission jitter (required) */
    stunkit_addr gateway;     /* the router (its port is ignored: 5351) */
    stunkit_addr internal;    /* this host's address toward the router, and the port to map */
    int protocol;             /* 17 (UDP) or 6 (TCP) */
    uint16_t external_port;   /* suggested; 0: any (NAT-PMP: the internal port) */
    uint32_t lifetime_s;      /* asked for; 0: 7200 */
    stunkit_portmap_method method;
    /* Remove a mapping made earlier (e.g. by a process that has exited)
     * instead of making one: the request carries lifetime 0, and DELETED or
     * FAILED follows. PCP deletes only with the mapping's own nonce (RFC
     * 6887 11.3): give it in nonce with use_nonce set. */
    int delete_only;
    int use_nonce;          /* 1: nonce below, not a random one */
    uint8_t nonce[12];
} stunkit_portmap_config;

typedef enum stunkit_portmap_event {
    STUNKIT_PORTMAP_EVENT_MAPPED = 1, /* external, lifetime_s, method */
    STUNKIT_PORTMAP_EVENT_RENEWED,    /* external (may have changed), lifetime_s */
    STUNKIT_PORTMAP_EVENT_FAILED,     /* result (the protocol's code, -1: no answer), reason */
    STUNKIT_PORTMAP_EVENT_RESET,      /* the router lost its state: mapping again */
    STUNKIT_PORTMAP_EVENT_DELETED     /* the router confirmed the deletion */
} stunkit_portmap_event;

typedef struct stunkit_portmap_output {
    int send;                 /* 1: send data[0..len) to `to`; 0: an event */
    const uint8_t *data;
    size_t len;
    stunkit_addr to;
    stunkit_portmap_event event;
    stunkit_portmap_method method; /* the protocol that answered */
    stunkit_addr external;    /* the external address and port */
    uint32_t lifetime_s;
    int result;
    char reason[160];
} stunkit_portmap_output;

typedef struct stunkit_portmap stunkit_portmap;

/* NULL for bad settings (no randomness, no gateway, port 0, families that
 * differ, NAT-PMP over IPv6) or without memory. */
STUNKIT_API stunkit_portmap *stunkit_portmap_new(const stunkit_portmap_config *cfg, uint64_t now_ms);
STUNKIT_API void stunkit_portmap_free(stunkit_portmap *p);

/* 1: *out holds a datagram to send or an event (call again); 0: nothing
 * before stunkit_portmap_timeout() or a datagram; STUNKIT_ERR_NOBUF (once): events
 * were lost, the application did not poll them in time (call again: the
 * ones that fit follow). */
STUNKIT_API int stunkit_portmap_poll(stunkit_portmap *p, uint64_t now_ms, stunkit_portmap_output *out);
STUNKIT_API uint64_t stunkit_portmap_timeout(const stunkit_portmap *p);

/* A datagram that arrived from `from` (stunkit/machine.h):
 * STUNKIT_INPUT_TAKEN when it was the machine's (taken or dropped as
 * invalid), STUNKIT_INPUT_NOT_MINE when not (not from the gateway's 5351).
 * sock is not used (one socket). */
STUNKIT_API int stunkit_portmap_input(stunkit_portmap *p, int sock, const stunkit_addr *from, const uint8_t *data,
                                      size_t len, uint64_t now_ms);

/* Asks the router to remove the mapping (lifetime 0); DELETED or FAILED
 * follows. STUNKIT_ERR_STATE when nothing is mapped. */
STUNKIT_API int stunkit_portmap_delete(stunkit_portmap *p, uint64_t now_ms);

/* The PCP mapping nonce (12 bytes), needed to delete the mapping later
 * from another process (config.nonce). */
STUNKIT_API void stunkit_portmap_get_nonce(const stunkit_portmap *p, uint8_t nonce[12]);

STUNKIT_API const char *stunkit_portmap_method_name(stunkit_portmap_method m);
/* The RFC's name for a result code ("NO_RESOURCES", "Out of resources"). */
STUNKIT_API const char *stunkit_portmap_result_name(stunkit_portmap_method m, int result);
STUNKIT_API const char *stunkit_portmap_event_name(stunkit_portmap_event e);

#ifdef __cplusplus
}
#endif
#endif
