/*
 * handler.h - the server's request handler: one datagram (or one framed TCP
 * message) in, at most one answer out. It owns no socket and no clock, so it
 * is tested and fuzzed in-process; the worker decides what to do with the
 * verdict (send, count, rate-limit).
 */
#ifndef STUNKITD_HANDLER_H
#define STUNKITD_HANDLER_H

#include <stddef.h>
#include <stdint.h>

#include "auth.h"
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

typedef struct skd_handler_cfg {
    skd_family v4, v6;
    const char *software; /* SOFTWARE attribute, NULL for none */
    size_t software_len;
    const skd_auth *auth; /* NULL or disabled: no authentication */
} skd_handler_cfg;

enum { SKD_UDP = 0, SKD_TCP = 1, SKD_DTLS = 2 }; /* TLS counts as TCP */

/* Where a request came from and arrived. */
typedef struct skd_request {
    const uint8_t *data;
    size_t len;
    stunkit_addr src;   /* the client */
    stunkit_addr dst;   /* the local address it arrived on */
    int transport;      /* SKD_UDP or SKD_TCP */
    int ip_index;       /* which of the family's IPs / ports received it */
    int port_index;
    uint64_t now_s;     /* Unix time: nonces and time-limited credentials */
} skd_request;

/* What to do. */
typedef enum skd_verdict {
    SKD_REPLY = 0,        /* send out[0..len) to `to` from (ip_index, port_index) */
    SKD_DROP_NOT_STUN,    /* not a STUN message: no answer */
    SKD_DROP_MALFORMED,   /* header broken or FINGERPRINT wrong: silently discarded */
    SKD_DROP_NOT_REQUEST, /* indication or response: no answer */
    SKD_DROP_METHOD,      /* a method we do not serve: silently discarded (RFC 8489 6.3) */
    SKD_VERDICT_COUNT
} skd_verdict;

typedef struct skd_reply {
    size_t len;
    stunkit_addr to;
    int ip_index, port_index; /* the socket to answer from */
    int code;                 /* 0 for a success response, else the error code sent */
    int redirect;             /* answered elsewhere (CHANGE-REQUEST or RESPONSE-PORT) */
    int challenge;            /* an unauthenticated 401/438: the strict budget applies */
} skd_reply;

/* Room for the largest answer we build: a PADDING echo is capped at the
 * request's size, so a 64 KiB datagram bound is enough. */
#define SKD_REPLY_MAX 65536

skd_verdict skd_handle(const skd_handler_cfg *cfg, const skd_request *rq, uint8_t *out, size_t cap,
                       skd_reply *reply);

#endif
