/*
 * handler.h - the server's request handler: one datagram (or one framed
 * stream message) in, zero or more datagrams out, each to any destination
 * from any of the server's sockets. It owns no socket and no clock, so it is
 * tested and fuzzed in-process; the worker sends what it produced (after the
 * rate limiter has had its say).
 *
 *   skd_handle()  checks the header (RFC 8489 6.3), parses, checks
 *                 FINGERPRINT and credentials, then dispatches by method
 *                 through a table (handler.c); each method appends its
 *                 datagrams to an skd_outbox.
 */
#ifndef STUNKITD_HANDLER_H
#define STUNKITD_HANDLER_H

#include <stddef.h>
#include <stdint.h>

#include "auth.h"
#include "conn_hook.h"
#include "stunkit/stunkit.h"

/* The server's addresses for one IP family. In RFC 5780 mode there are two
 * IPs (index 0 primary, 1 alternate) and two ports (0 primary, 1 alternate):
 * four sockets. In basic mode only ip[0]/port[0] are used. */
typedef struct skd_family {
    int rfc5780;              /* an alternate address is configured */
    stunkit_addr ip[2];       /* bound addresses (port field unused) */
    stunkit_addr advertise[2]; /* what OTHER-ADDRESS/RESPONSE-ORIGIN say (ip only) */
    uint16_t port[2];
} skd_family;

#define SKD_OWN_MAX 48

typedef struct skd_handler_cfg {
    skd_family v4, v6;
    const char *software; /* SOFTWARE attribute, NULL for none */
    size_t software_len;
    const skd_auth *auth; /* NULL or disabled: no authentication; swapped on SIGHUP */
    struct skd_rdv *rdv;  /* the rendezvous rooms (--rendezvous), else NULL */
    struct skd_revoked *revoked; /* users revoked through the control socket (revoked.h), else NULL */
    int open_binding;     /* a Binding request without MESSAGE-INTEGRITY is answered without
                             credentials (--turn without --secure-stun) */
    /* Every transport address the server itself listens on (each --listen
     * and RFC 5780 socket, the TLS/DTLS port, the metrics endpoint; the IP
     * may be a wildcard): never a TURN peer. */
    stunkit_addr own[SKD_OWN_MAX];
    int n_own;
} skd_handler_cfg;

struct skd_turn;

/* Where a request came from and arrived. */
typedef struct skd_request {
    const uint8_t *data;
    size_t len;
    stunkit_addr src;   /* the client */
    stunkit_addr dst;   /* the local address it arrived on */
    stunkit_transport transport;
    int ip_index;       /* which of the family's IPs / ports received it */
    int port_index;
    uint64_t now_s;     /* Unix time: nonces and time-limited credentials */
    uint64_t now_ms;    /* monotonic: TURN lifetimes */
    struct skd_turn *turn; /* the worker's TURN state, NULL when TURN is off */
    skd_conn_hook *conn;   /* TCP/TLS: the connection, DTLS: the session (a TURN allocation over it dies
                              with it, and its relayed data goes back through it); NULL: a datagram */
} skd_request;

/* One datagram to send. */
typedef struct skd_out {
    uint8_t *data;
    size_t len;
    stunkit_addr to;
    int ip_index, port_index; /* the socket it leaves from */
    int code;                 /* 0 for a success response, else the error code sent */
    unsigned flags;           /* SKD_OUT_* */
    int relay_fd;             /* >= 0: leaves from this TURN relay socket instead */
} skd_out;

enum {
    SKD_OUT_REDIRECT = 1u,  /* sent elsewhere than the request came from (CHANGE-REQUEST, RESPONSE-PORT) */
    SKD_OUT_CHALLENGE = 2u, /* an unauthenticated 401/438 */
    SKD_OUT_RELAYED = 4u,   /* relayed data (TURN), not an answer */
};

/* The datagrams one request produced, in caller-owned memory. */
typedef struct skd_outbox {
    uint8_t *buf;
    size_t cap, used;
    skd_out *out;
    size_t max, n;
    int authenticated; /* set by skd_handle(): the last request passed the credential check */
} skd_outbox;

void skd_outbox_init(skd_outbox *ob, uint8_t *buf, size_t cap, skd_out *slots, size_t max);
static inline void skd_outbox_clear(skd_outbox *ob)
{
    ob->used = 0;
    ob->n = 0;
}

/* What became of the request. */
typedef enum skd_verdict {
    SKD_ANSWERED = 0,     /* the outbox holds what to send (possibly nothing) */
    SKD_DROP_NOT_STUN,    /* not a STUN message: no answer */
    SKD_DROP_MALFORMED,   /* header broken or FINGERPRINT wrong: silently discarded */
    SKD_DROP_NOT_REQUEST, /* indication or response: no answer */
    SKD_DROP_METHOD,      /* a method we do not serve: silently discarded (RFC 8489 6.3) */
    SKD_DROP_NOBUF,       /* the outbox was too small (a bug, counted) */
    SKD_VERDICT_COUNT
} skd_verdict;

/* Room for the largest answer we build: a PADDING echo is capped at the
 * request's size, so a 64 KiB datagram bound is enough. */
#define SKD_REPLY_MAX 65536

skd_verdict skd_handle(const skd_handler_cfg *cfg, const skd_request *rq, skd_outbox *ob);

/* Longest SOFTWARE value stunkitd sends (RFC 8489 allows 763 bytes; every
 * byte is amplification). Answers over twice their request's size draw on the
 * strict budget in any case. */
#define SKD_SOFTWARE_MAX 64

#endif
