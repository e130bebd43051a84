/*
 * turn_relay.h - the TURN relay (RFC 8656) inside a stunkitd worker: allocations,
 * permissions and channels, each worker's own (a client's 5-tuple always
 * reaches the same UDP worker through SO_REUSEPORT's hash), so nothing is
 * locked.
 *
 *   client -> server   Allocate, Refresh, CreatePermission, ChannelBind
 *                      (requests, long-term credentials) through the
 *                      handler's method table; Send indications and
 *                      ChannelData through skd_turn_from_client()
 *   peer -> client     a datagram on a relay socket: skd_turn_from_peer()
 *                      makes it a ChannelData message or a Data indication
 *
 * With --xdp the channels of UDP allocations are published to the XDP
 * program (xdp.h), which relays ChannelData both ways in the driver while
 * stunkitd keeps the authority: an entry carries the smallest of the
 * channel's, permission's and allocation's lifetimes, is refreshed with
 * them and removed with them; what the program is not sure of comes here.
 *
 * Expiry runs on a timer wheel of one-second slots: each tick touches only
 * the allocations whose second has come, never every allocation.
 */
#ifndef STUNKITD_TURN_H
#define STUNKITD_TURN_H

#include <stddef.h>
#include <stdint.h>

#include "handler.h"
#include "peer_policy.h"
#include "turn_limits.h"

#define SKD_TURN_WHEEL 4096 /* seconds; longer than the longest lifetime (3600) */
#define SKD_TURN_BUCKETS 4096

#define SKD_MAX_ALTERNATES 8

typedef struct skd_turn_cfg {
    int enabled;
    /* RFC 8489 10: new Allocates are sent elsewhere (300 Try Alternate) when
     * the server drains, or holds redirect_above allocations or more */
    stunkit_addr alternates[SKD_MAX_ALTERNATES]; /* --alternate-server, in order */
    int n_alternates;
    const char *alternate_domain;  /* ALTERNATE-DOMAIN for TLS/DTLS (their certificate's name), NULL: none */
    int redirect_above;            /* 0: only when draining */
    stunkit_addr relay_ip[4]; /* per family, the first of each is used; family 0: the address the client reached */
    int n_relay_ip;
    uint16_t port_min, port_max;   /* relay ports */
    skd_peer_policy policy;
    uint32_t max_lifetime_s;       /* 3600 */
    uint32_t default_lifetime_s;   /* 600 */
    uint32_t permission_s;         /* 300 */
    uint32_t channel_s;            /* 600 */
    int max_allocations;           /* in total, server-wide (turn_limits.h) */
    int user_quota;                /* allocations per user, server-wide */
    int max_permissions;           /* per allocation */
    int max_channels;              /* per allocation */
    uint64_t alloc_bps;            /* relayed bytes per second per allocation, both ways; 0: no limit */
    uint64_t total_bps;            /* the same for all allocations (each relaying worker has its share) */
} skd_turn_cfg;

typedef struct skd_perm {
    stunkit_addr ip; /* port ignored (RFC 8656 9: permissions are per IP) */
    uint64_t expires_ms;
} skd_perm;

typedef struct skd_channel {
    uint16_t number;
    stunkit_addr peer;
    uint64_t expires_ms;
    int published;          /* entered in the XDP program's tables as pub_number/pub_peer */
    uint16_t pub_number;
    stunkit_addr pub_peer;
} skd_channel;

typedef struct skd_alloc skd_alloc;

/* The relay socket, tagged for the worker's epoll (kind first, as skd_sock). */
typedef struct skd_relay {
    int kind; /* EV_RELAY */
    int fd;
    stunkit_addr addr; /* the relayed transport address */
    skd_alloc *alloc;
} skd_relay;

struct skd_alloc {
    skd_relay relay;             /* the requested family's relayed address */
    skd_relay relay2;            /* a dual allocation's second (IPv6) address; fd -1 when none */
    int relay2_error;            /* ADDITIONAL-ADDRESS-FAMILY asked but not given: the code (440/508) */
    skd_conn_hook *conn;         /* over TCP/TLS or DTLS: the client's connection or session, else NULL */
    stunkit_transport transport; /* to the client: UDP, TCP, TLS or DTLS */
    stunkit_addr client, server; /* the 5-tuple (transport: UDP) */
    int ip_index, port_index;    /* the listening socket the client uses */
    char username[128];          /* the authenticated user (USERNAME, or the user a USERHASH named) */
    size_t username_len;
    skd_turn_user *quota;        /* its place in the server-wide limits */
    uint8_t tid[STUNKIT_TID_LEN]; /* of the Allocate, for retransmissions */
    uint64_t expires_ms;
    skd_perm *perms;
    int n_perms;
    skd_channel *chans;
    int n_chans;
    uint64_t to_peer, from_peer; /* datagrams relayed */
    uint32_t xdp_id;             /* --xdp: its id in the program's tables (0: its channels stay here) */
    double tokens;               /* bandwidth budget in bytes (a bucket of one second) */
    uint64_t tokens_ms;
    skd_alloc *hnext;            /* 5-tuple hash chain */
    skd_alloc *wnext, **wprev;   /* timer wheel slot */
};

typedef struct skd_turn {
    const skd_turn_cfg *cfg;
    skd_turn_limits *limits; /* the server's: allocations in total and per user, kept ports */
    const stunkit_addr *own; /* the server's own sockets (skd_handler_cfg's): never a peer */
    int n_own;
    struct skd_xdp *xdp; /* --xdp: UDP allocations' channels are relayed there too (xdp.h) */
    int epfd; /* the worker's: relay sockets are watched there */
    int n_allocs; /* this worker's live allocations */
    skd_alloc *by_tuple[SKD_TURN_BUCKETS];
    skd_alloc *wheel[SKD_TURN_WHEEL];
    skd_alloc *dead; /* freed by skd_turn_reap() after the current batch of events */
    uint64_t wheel_s; /* the next second to expire */
    uint32_t seed;
    uint64_t total_bps;     /* this worker's share of cfg->total_bps */
    double total_tokens;
    uint64_t total_ms;
    uint64_t allocations_made, allocations_expired, relayed_to_peer, relayed_to_client, peer_refused,
        no_permission, over_quota;
    uint64_t relayed_to_peer_bytes, relayed_to_client_bytes; /* application data */
} skd_turn;

/* workers: how many workers relay (each gets its share of the total
 * bandwidth); limits: the server's, shared by every worker. */
int skd_turn_init(skd_turn *t, const skd_turn_cfg *cfg, skd_turn_limits *limits, int epfd, int workers,
                  uint32_t seed, uint64_t now_ms);
void skd_turn_free(skd_turn *t);

/* The request methods (handler.c's table). */
skd_verdict skd_turn_allocate(const skd_handler_cfg *cfg, const skd_request *rq, const stunkit_msg *m,
                              const skd_auth_verdict *authed, skd_outbox *ob);
skd_verdict skd_turn_refresh(const skd_handler_cfg *cfg, const skd_request *rq, const stunkit_msg *m,
                             const skd_auth_verdict *authed, skd_outbox *ob);
skd_verdict skd_turn_create_permission(const skd_handler_cfg *cfg, const skd_request *rq, const stunkit_msg *m,
                                       const skd_auth_verdict *authed, skd_outbox *ob);
skd_verdict skd_turn_channel_bind(const skd_handler_cfg *cfg, const skd_request *rq, const stunkit_msg *m,
                                  const skd_auth_verdict *authed, skd_outbox *ob);

/* A Send indication or ChannelData from a client: the datagram for the
 * peer, from the relay socket, into ob. 1 when it was TURN's (sent or
 * dropped), 0 when it is not TURN traffic (the handler goes on). */
int skd_turn_from_client(skd_turn *t, const skd_request *rq, skd_outbox *ob);

/* A datagram from peer on r: a ChannelData message or Data indication for
 * the client into ob (nothing without a permission). */
void skd_turn_from_peer(skd_turn *t, skd_relay *r, const stunkit_addr *peer, const uint8_t *data, size_t len,
                        uint64_t now_ms, skd_outbox *ob);

/* A TCP/TLS connection closed: its allocation goes with it (RFC 8656 3.1). */
void skd_turn_conn_closed(skd_turn *t, const stunkit_addr *client, const stunkit_addr *server);
/* The allocation of a connection, or NULL. */
skd_alloc *skd_turn_find(skd_turn *t, const stunkit_addr *client, const stunkit_addr *server);

/* Frees the allocations deleted since the last call (after each batch of
 * events: one may still have pointed at their relay sockets). */
void skd_turn_reap(skd_turn *t);

/* Expires what is due. */
void skd_turn_tick(skd_turn *t, uint64_t now_ms);

/* The control socket (control.c), with the worker's lock held: the
 * allocations of a user (a REST username by its NAME too) end now; how
 * many. */
int skd_turn_kick(skd_turn *t, const char *user, size_t len);
/* Each allocation as a JSON object, comma-separated after *first objects
 * were written; what did not fit is counted in *left. Returns the bytes
 * written. */
size_t skd_turn_describe(const skd_turn *t, uint64_t now_ms, char *buf, size_t cap, int *first, int *left);

#endif
