/*
 * stunkit/rendezvous.h - two peers that name the same room on a stunkitd
 * server (`--rendezvous`) meet there and exchange descriptions (the SDP
 * lines of stunkit/ice.h, trickled as they grow). A sans-I/O machine with the
 * contract of stunkit/machine.h: datagrams and `now` in, datagrams and
 * events out; it carries descriptions, never application data.
 *
 *   stunkit_rdv_new()              room, the server's long-term credentials
 *   stunkit_rdv_set_description()  our description so far: each call
 *                                  extends the previous text (trickle);
 *                                  the new bytes go up
 *   poll / timeout / input         ROLE once the room answers (the first
 *                                  peer in the room is the offerer,
 *                                  ICE-controlling), PEER_DATA as the
 *                                  peer's description grows, PEER_LEFT,
 *                                  FAILED (events STUNKIT_RDV_EVENT_*)
 *   stunkit_rdv_leave()            frees our place in the room
 *
 * The wire: one request method, RENDEZVOUS (0x0B0: unassigned, private to
 * stunkit; below 0x100 so the first byte stays 0..3 as RFC 7983's
 * demultiplexing expects of STUN), with
 * the server's long-term credentials (RFC 8489 9.2: 401 with REALM and
 * NONCE, then MESSAGE-INTEGRITY; 438 renews the NONCE). Its attributes are
 * comprehension-optional (0xC5A0-0xC5A6), so a server without the method
 * drops the request (RFC 8489 6.3: unknown method, silently discarded).
 *
 *   request:  ROOM, PEER-ID, ACK (bytes of the peer's description held),
 *             [OFFSET + DESCRIPTION: our bytes from OFFSET on], [LEAVE],
 *             PADDING (so the answer is at most twice the request)
 *   answer:   STATUS (role, peer present/left, peer generation, bytes of
 *             ours the server holds, the peer's length so far),
 *             [OFFSET + DESCRIPTION: the peer's bytes from our ACK on]
 *   errors:   400 malformed or too long, 403 room full, 486 rooms per
 *             user, 508 the server's rooms are all taken
 *
 * One request is in flight at a time (over UDP: RFC 8489 6.2.1
 * retransmissions with a 250 ms RTO, FAILED after ~20 s; over TCP/TLS:
 * sent once, FAILED after 10 s without an answer); while anything is left to send or fetch the next follows at
 * once, else every poll_ms (200 ms, 1 s after 30 s without news).
 */
#ifndef STUNKIT_RENDEZVOUS_H
#define STUNKIT_RENDEZVOUS_H

#include <stddef.h>
#include <stdint.h>

#include "stunkit/addr.h"
#include "stunkit/export.h"
#include "stunkit/machine.h"

#ifdef __cplusplus
extern "C" {
#endif

#define STUNKIT_METHOD_RENDEZVOUS 0x0B0
#define STUNKIT_ATTR_RDV_ROOM 0xC5A0        /* 1-64 bytes of [A-Za-z0-9._~-] */
#define STUNKIT_ATTR_RDV_PEER_ID 0xC5A1     /* 8 random bytes: this peer, across requests */
#define STUNKIT_ATTR_RDV_DESCRIPTION 0xC5A2 /* bytes of a description */
#define STUNKIT_ATTR_RDV_OFFSET 0xC5A3      /* u32: where DESCRIPTION starts */
#define STUNKIT_ATTR_RDV_ACK 0xC5A4         /* u32: bytes of the peer's description held */
#define STUNKIT_ATTR_RDV_STATUS 0xC5A5      /* see below */
#define STUNKIT_ATTR_RDV_LEAVE 0xC5A6       /* empty: leave the room */

/* STATUS, 12 bytes:
 *    0                   1                   2                   3
 *    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |     Role      |     Peer      |        Peer generation        |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |               Bytes of the requester's description held       |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |               Length of the peer's description                |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * Role 0: first in the room (offerer), 1: second. Peer 0: none yet, 1:
 * present, 2: left. The generation changes when another peer takes the
 * other place (its description starts over). */
#define STUNKIT_RDV_STATUS_LEN 12
#define STUNKIT_RDV_ROOM_MAX 64
#define STUNKIT_RDV_DESC_MAX 8192 /* the machine's buffers; servers may allow less */

typedef struct stunkit_rdv_config {
    size_t size;             /* sizeof(stunkit_rdv_config) (stunkit/machine.h) */
    stunkit_env env;         /* randomness (required): the peer ID, transaction IDs */
    const char *room;        /* 1-64 bytes of [A-Za-z0-9._~-] */
    const char *username;    /* the server's long-term credentials (required) */
    const char *password;
    const char *software;    /* SOFTWARE in requests, NULL for none */
    uint32_t poll_ms;        /* 0: 200 */
    uint32_t rto_ms;         /* 0: 250; 7 sends, then FAILED (~20 s) */
    /* STUNKIT_UDP (0), or STUNKIT_TCP / STUNKIT_TLS: the application writes
     * the outputs to its stream and cuts what comes back with
     * stunkit_msg_frame(); requests are then sent once (RFC 8489 6.2.2) */
    stunkit_transport transport;
    /* Over UDP: FAILED (error_code 0) when the server has been silent
     * this long (0: 20000). A client with other servers of the fleet to
     * go to (stunkit_rdv_move) sets less. */
    uint32_t silence_ms;
} stunkit_rdv_config;

typedef enum stunkit_rdv_event {
    STUNKIT_RDV_EVENT_ROLE = 1,  /* first answer: offerer (1: first in the room, ICE-controlling) */
    STUNKIT_RDV_EVENT_PEER_DATA, /* data/len: bytes appended to the peer's description */
    STUNKIT_RDV_EVENT_PEER_LEFT, /* the peer left (or went silent); a new one may come (PEER_DATA starts over) */
    STUNKIT_RDV_EVENT_FAILED,    /* error_code (0: no answer), reason; the machine stops */
    STUNKIT_RDV_EVENT_LEFT       /* stunkit_rdv_leave() was answered (or gave up) */
} stunkit_rdv_event;

typedef struct stunkit_rdv_output {
    int send;               /* 1: send data[0..len) to the server; 0: an event */
    const uint8_t *data;    /* valid until the next call into the machine */
    size_t len;
    stunkit_rdv_event event;
    int offerer;            /* ROLE */
    int error_code;         /* FAILED */
    char reason[128];
} stunkit_rdv_output;

typedef struct stunkit_rdv stunkit_rdv;

/* NULL for a bad room name, missing credentials or randomness, or without memory. */
STUNKIT_API stunkit_rdv *stunkit_rdv_new(const stunkit_rdv_config *cfg, uint64_t now_ms);
STUNKIT_API void stunkit_rdv_free(stunkit_rdv *r);

/* Our description so far. It must begin with everything given before
 * (trickle appends): 0, STUNKIT_ERR_INVAL (not an extension), STUNKIT_ERR_NOBUF. */
STUNKIT_API int stunkit_rdv_set_description(stunkit_rdv *r, const char *desc, size_t len, uint64_t now_ms);

STUNKIT_API int stunkit_rdv_poll(stunkit_rdv *r, uint64_t now_ms, stunkit_rdv_output *out);
STUNKIT_API uint64_t stunkit_rdv_timeout(const stunkit_rdv *r);
/* A datagram (or a message cut from the stream) from the server
 * (stunkit/machine.h): STUNKIT_INPUT_TAKEN when it was ours (an answer to
 * our request, or dropped as invalid), STUNKIT_INPUT_NOT_MINE when not.
 * sock and from are not used (one server, one socket). */
STUNKIT_API int stunkit_rdv_input(stunkit_rdv *r, int sock, const stunkit_addr *from, const uint8_t *data,
                                  size_t len, uint64_t now_ms);

/* The loss the requests to the server have seen over UDP, in permille: of
 * the sends the answered requests needed, the share that went unanswered
 * (as stunkit_ice_loss()); 0 until one was answered, and over TCP/TLS. */
STUNKIT_API unsigned stunkit_rdv_loss(const stunkit_rdv *r);

/* The way to the server changed (UDP unanswered, so the application
 * connected over TCP, say): the request in flight goes again over the new
 * transport, as the same peer (the server holds its place, not two). */
STUNKIT_API void stunkit_rdv_set_transport(stunkit_rdv *r, stunkit_transport transport, uint64_t now_ms);
/* Another server of the same fleet (rooms shared: stunkitd
 * --rendezvous-redis) now carries the rendezvous: the application sends
 * the outputs there over `transport` from now on. The request in flight
 * goes again as a new transaction, as the same peer (PEER-ID), with what
 * we hold of the peer's description (ACK) and our bytes from what the new
 * server says it holds; a machine that had FAILED (the old server went
 * silent, or answered 5xx) runs again. The nonce goes along: a fleet with
 * one nonce-key takes it, any other server's 401/438 renews it (RFC 8489
 * 9.2). A machine that has left stays done. */
STUNKIT_API void stunkit_rdv_move(stunkit_rdv *r, stunkit_transport transport, uint64_t now_ms);
/* When the server last answered (0: never). */
STUNKIT_API uint64_t stunkit_rdv_last_answer(const stunkit_rdv *r);
/* 1 once the server has answered anything. */
STUNKIT_API int stunkit_rdv_answered(const stunkit_rdv *r);

/* Leave the room (the server frees our place); LEFT follows. */
STUNKIT_API void stunkit_rdv_leave(stunkit_rdv *r, uint64_t now_ms);

/* 1 when the room name is 1-64 bytes of [A-Za-z0-9._~-]. */
STUNKIT_API int stunkit_rdv_room_valid(const char *room, size_t len);
STUNKIT_API const char *stunkit_rdv_event_name(stunkit_rdv_event e);

#ifdef __cplusplus
}
#endif
#endif
