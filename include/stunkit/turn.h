/*
 * stunkit/turn.h - a TURN client (RFC 8656) as a sans-I/O machine, the
 * contract of stunkit/machine.h: datagrams and `now` in, datagrams and events
 * out, no socket, clock or randomness of its own.
 *
 *   stunkit_turn_new()      then poll: it sends the Allocate, answers the
 *                           401 with the long-term key, follows 438 nonces,
 *                           and reports STUNKIT_TURN_EVENT_ALLOCATED (or FAILED)
 *   stunkit_turn_permit()   CreatePermission for a peer (kept fresh)
 *   stunkit_turn_bind()     ChannelBind (kept fresh); data then goes as
 *                           ChannelData
 *   stunkit_turn_send()     wraps application data for a peer: ChannelData
 *                           when bound, else a Send indication
 *   stunkit_turn_input()    every datagram from the server: answers are
 *                           consumed, relayed data comes back as a view
 *   stunkit_turn_refresh()  Refresh now (automatic before expiry anyway)
 *   stunkit_turn_close()    Refresh with LIFETIME 0
 *
 * To the server over UDP, TCP, TLS or DTLS (config.transport; the relayed
 * transport is always UDP). Every output goes to the server; over TCP and
 * TLS the outputs are written to the stream in order, requests are sent
 * once (RFC 8489 6.2.2: no retransmission, 39.5 s to answer), ChannelData
 * is padded to four bytes (RFC 8656 12.5), and the driver cuts the incoming
 * stream into messages with stunkit_turn_frame() (stunkit_link does). When
 * the connection ends, the server deletes the allocation (RFC 8656 3.1):
 * tell the machine with stunkit_turn_disconnected().
 *
 * Refreshes happen before expiry: the allocation at 3/4 of its lifetime,
 * permissions every 4 minutes, channels every 9.
 */
#ifndef STUNKIT_TURN_H
#define STUNKIT_TURN_H

#include <stddef.h>
#include <stdint.h>

#include "stunkit/addr.h"
#include "stunkit/export.h"
#include "stunkit/machine.h"
#include "stunkit/txn.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct stunkit_turn_config {
    size_t size;             /* sizeof(stunkit_turn_config) (stunkit/machine.h) */
    stunkit_env env;         /* randomness for transaction IDs (required) */
    stunkit_addr server;
    const char *username;
    const char *password;
    uint32_t lifetime_s;     /* asked for (0: the server's default) */
    int family;              /* relayed family: 0 (IPv4), STUNKIT_AF_INET or STUNKIT_AF_INET6 */
    const char *software;    /* SOFTWARE in requests, NULL for none */
    stunkit_rto rto;         /* retransmissions; zero: RFC 8489's defaults */
    stunkit_transport transport; /* to the server: STUNKIT_UDP (0), _TCP, _TLS or _DTLS */
    /* 1: a dual allocation (RFC 8656 7.2, ADDITIONAL-ADDRESS-FAMILY): an
     * IPv4 and an IPv6 relayed address, so peers of either family can be
     * reached; ALLOCATED carries the second in relayed2 when the server
     * gave it. A server that cannot give the pair (440) is asked again for
     * `family` alone. */
    int dual;
} stunkit_turn_config;

typedef enum stunkit_turn_event {
    STUNKIT_TURN_EVENT_ALLOCATED = 1, /* relayed, mapped, lifetime_s */
    STUNKIT_TURN_EVENT_PERMITTED,     /* peer */
    STUNKIT_TURN_EVENT_BOUND,         /* peer, channel */
    STUNKIT_TURN_EVENT_REFRESHED,     /* lifetime_s */
    STUNKIT_TURN_EVENT_FAILED,        /* error_code (0: no answer), reason; peer for a permission or channel */
    STUNKIT_TURN_EVENT_CLOSED,        /* the allocation is gone (deleted or expired) */
    /* The server sent the Allocate elsewhere (RFC 8489 10, 300 Try
     * Alternate, authenticated): from now on every output goes to peer (the
     * alternate server; over TCP/TLS/DTLS open a new connection to it,
     * checking its certificate against reason when that is not empty, else
     * the original name). The machine has already asked it again. */
    STUNKIT_TURN_EVENT_REDIRECTED
} stunkit_turn_event;

typedef struct stunkit_turn_output {
    int send;                  /* 1: send data[0..len) to the server; 0: an event */
    const uint8_t *data;
    size_t len;
    stunkit_turn_event event;
    stunkit_addr relayed, mapped, peer;
    stunkit_addr relayed2;     /* ALLOCATED, a dual allocation: the other family's (family 0: none) */
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
 * before stunkit_turn_timeout() or a datagram; STUNKIT_ERR_NOBUF (once): events
 * were lost, the application did not poll them in time (call again: the
 * ones that fit follow). */
STUNKIT_API int stunkit_turn_poll(stunkit_turn *t, uint64_t now_ms, stunkit_turn_output *out);
STUNKIT_API uint64_t stunkit_turn_timeout(const stunkit_turn *t);

/* A datagram (or a message cut from the stream) from the server
 * (stunkit/machine.h): STUNKIT_INPUT_APP_DATA with *d filled (relayed data
 * from the peer d->from), STUNKIT_INPUT_TAKEN when it was an answer or
 * otherwise the machine's, STUNKIT_INPUT_NOT_MINE when it is not TURN
 * traffic of this client (hand it on). sock is not used (one server). */
STUNKIT_API int stunkit_turn_input(stunkit_turn *t, int sock, const stunkit_addr *from, const uint8_t *data,
                                   size_t len, uint64_t now_ms, stunkit_app_data *d);

/* Ask for a permission / a channel to peer (after ALLOCATED). 0, or
 * STUNKIT_ERR_STATE (no allocation), STUNKIT_ERR_NOMEM (too many). */
STUNKIT_API int stunkit_turn_permit(stunkit_turn *t, const stunkit_addr *peer, uint64_t now_ms);
STUNKIT_API int stunkit_turn_bind(stunkit_turn *t, const stunkit_addr *peer, uint64_t now_ms);

/* Wraps len bytes for peer into out: the length to send to the server, or
 * STUNKIT_ERR_NOBUF / STUNKIT_ERR_STATE (no permission or channel yet).
 * A channel bound to peer's address goes as ChannelData; otherwise a
 * permission for peer's IP, whatever port it was asked for (RFC 8656 9:
 * permissions are per IP address), lets it go as a Send indication. */
STUNKIT_API int stunkit_turn_send(stunkit_turn *t, const stunkit_addr *peer, const uint8_t *data, size_t len,
                                  uint8_t *out, size_t cap);

/* Refresh now (it also happens by itself at 3/4 of the lifetime);
 * REFRESHED follows. 0, STUNKIT_ERR_STATE, or STUNKIT_ERR_NOMEM. */
STUNKIT_API int stunkit_turn_refresh(stunkit_turn *t, uint64_t now_ms);

/* Refresh with LIFETIME 0: the server deletes the allocation; CLOSED follows. */
STUNKIT_API int stunkit_turn_close(stunkit_turn *t, uint64_t now_ms);

/* The TCP/TLS connection (or DTLS session) to the server ended: the
 * allocation is gone with it. FAILED (unless closing) and CLOSED follow. */
STUNKIT_API void stunkit_turn_disconnected(stunkit_turn *t);

/* Stream framing (RFC 8656 12.5): the length of the message at the start
 * of buf, a STUN message (20 + its length) or ChannelData (4 + its length,
 * rounded up to four). 0 with *need set (have avail >= *need bytes before
 * taking it), STUNKIT_ERR_TRUNCATED (fewer than 4 bytes), or
 * STUNKIT_ERR_NOT_STUN / _BAD_LENGTH: the stream carries something else. */
STUNKIT_API int stunkit_turn_frame(const uint8_t *buf, size_t avail, size_t *need);

STUNKIT_API const char *stunkit_turn_event_name(stunkit_turn_event e);

#ifdef __cplusplus
}
#endif
#endif
