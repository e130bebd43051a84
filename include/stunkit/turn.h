/*
 * stunkit/turn.h - a TURN client (RFC 8656) as a sans-I/O machine, the
 * shape of the NAT machine: datagrams and `now` in, datagrams and events
 * out, no socket, clock or randomness of its own.
 *
 *   stunkit_turn_new()      then poll: it sends the Allocate, answers the
 *                           401 with the long-term key, follows 438 nonces,
 *                           and reports STUNKIT_TURN_ALLOCATED (or FAILED)
 *   stunkit_turn_permit()   CreatePermission for a peer (kept fresh)
 *   stunkit_turn_bind()     ChannelBind (kept fresh); data then goes as
 *                           ChannelData
 *   stunkit_turn_send()     wraps application data for a peer: ChannelData
 *                           when bound, else a Send indication
 *   stunkit_turn_input()    every datagram from the server: answers are
 *                           consumed, relayed data comes back as a view
 *   stunkit_turn_close()    Refresh with LIFETIME 0
 *
 * Over UDP (the server's address is the destination of every datagram).
 * Refreshes happen before expiry: the allocation at 3/4 of its lifetime,
 * permissions every 4 minutes, channels every 9.
 */
#ifndef STUNKIT_TURN_H
#define STUNKIT_TURN_H

#include <stddef.h>
#include <stdint.h>

#include "stunkit/addr.h"
#include "stunkit/export.h"
#include "stunkit/txn.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct stunkit_turn_config {
    stunkit_addr server;
    const char *username;
    const char *password;
    uint32_t lifetime_s;     /* asked for (0: the server's default) */
    int family;              /* relayed family: 0 (IPv4), STUNKIT_AF_INET or STUNKIT_AF_INET6 */
    const char *software;    /* SOFTWARE in requests, NULL for none */
    stunkit_rto rto;         /* retransmissions; zero: RFC 8489's defaults */
    /* Randomness for transaction IDs (required), as stunkit_nat_config. */
    void (*random)(void *ctx, uint8_t *buf, size_t len);
    void *random_ctx;
} stunkit_turn_config;

typedef enum stunkit_turn_event {
    STUNKIT_TURN_ALLOCATED = 1, /* relayed, mapped, lifetime_s */
    STUNKIT_TURN_PERMITTED,     /* peer */
    STUNKIT_TURN_BOUND,         /* peer, channel */
    STUNKIT_TURN_REFRESHED,     /* lifetime_s */
    STUNKIT_TURN_FAILED,        /* error_code (0: no answer), reason; peer for a permission or channel */
    STUNKIT_TURN_CLOSED         /* the allocation is gone (deleted or expired) */
} stunkit_turn_event;

typedef struct stunkit_turn_output {
    int send;                  /* 1: send data[0..len) to the server; 0: an event */
    const uint8_t *data;
    size_t len;
    stunkit_turn_event event;
    stunkit_addr relayed, mapped, peer;
    uint32_t lifetime_s;
    uint16_t channel;
    int error_code;
    char reason[128];
} stunkit_turn_output;

typedef struct stunkit_turn stunkit_turn;

/* NULL without username, password or randomness, or without memory. */
STUNKIT_API stunkit_turn *stunkit_turn_new(const stunkit_turn_config *cfg, uint64_t now_ms);
STUNKIT_API void stunkit_turn_free(stunkit_turn *t);

/* 1: *out holds a datagram to send or an event (call again); 0: nothing
 * before stunkit_turn_next() or a datagram. */
STUNKIT_API int stunkit_turn_poll(stunkit_turn *t, uint64_t now_ms, stunkit_turn_output *out);
STUNKIT_API uint64_t stunkit_turn_next(const stunkit_turn *t);

/* Relayed data that arrived (a view into the datagram given to input). */
typedef struct stunkit_turn_data {
    stunkit_addr peer;
    const uint8_t *data;
    size_t len;
} stunkit_turn_data;

/* A datagram from the server. Returns 2 with *d filled (relayed data), 1
 * when it was an answer or otherwise the machine's, 0 when it is not TURN
 * traffic of this client (hand it on). */
STUNKIT_API int stunkit_turn_input(stunkit_turn *t, const uint8_t *data, size_t len, uint64_t now_ms,
                                   stunkit_turn_data *d);

/* Ask for a permission / a channel to peer (after ALLOCATED). 0, or
 * STUNKIT_ERR_STATE (no allocation), STUNKIT_ERR_NOMEM (too many). */
STUNKIT_API int stunkit_turn_permit(stunkit_turn *t, const stunkit_addr *peer, uint64_t now_ms);
STUNKIT_API int stunkit_turn_bind(stunkit_turn *t, const stunkit_addr *peer, uint64_t now_ms);

/* Wraps len bytes for peer into out: the length to send to the server, or
 * STUNKIT_ERR_NOBUF / STUNKIT_ERR_STATE (no permission or channel yet). */
STUNKIT_API int stunkit_turn_send(stunkit_turn *t, const stunkit_addr *peer, const uint8_t *data, size_t len,
                                  uint8_t *out, size_t cap);

/* Refresh with LIFETIME 0: the server deletes the allocation; CLOSED follows. */
STUNKIT_API int stunkit_turn_close(stunkit_turn *t, uint64_t now_ms);

STUNKIT_API const char *stunkit_turn_event_name(stunkit_turn_event e);

#ifdef __cplusplus
}
#endif
#endif
