/*
 * stunkit/client.h - the client side: a transaction state machine that owns
 * no socket and reads no clock (RFC 8489 6.2), server names (RFC 7064 URIs,
 * DNS SRV), and thin blocking drivers over UDP, TCP and TLS for the common
 * "what is my public address" question.
 */
#ifndef STUNKIT_CLIENT_H
#define STUNKIT_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "stunkit/addr.h"
#include "stunkit/export.h"
#include "stunkit/msg.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- transactions (RFC 8489 6.2.1 / 6.2.2) ---- */

typedef struct stunkit_rto {
    uint32_t rto_ms;        /* initial RTO, default 500 */
    unsigned rc;            /* requests sent in all, default 7 */
    unsigned rm;            /* last wait is rm x RTO, default 16 */
    uint32_t tcp_timeout_ms; /* reliable transports: default 39500 */
} stunkit_rto;

STUNKIT_API void stunkit_rto_default(stunkit_rto *r);

typedef enum stunkit_txn_action {
    STUNKIT_TXN_SEND = 1,  /* (re)send the request now */
    STUNKIT_TXN_WAIT = 2,  /* nothing to do before stunkit_txn_next() */
    STUNKIT_TXN_TIMEOUT = 3 /* given up */
} stunkit_txn_action;

typedef struct stunkit_txn {
    stunkit_rto rto;
    int reliable;
    unsigned sent;
    uint64_t start_ms, next_ms, last_send_ms;
    uint32_t cur_rto;
    uint8_t tid[STUNKIT_TID_LEN];
    const uint8_t *key; /* optional integrity key for answers */
    size_t key_len;
} stunkit_txn;

/* Starts a transaction for a request carrying tid; reliable is 1 over
 * TCP/TLS (one send, one long timeout). */
STUNKIT_API void stunkit_txn_start(stunkit_txn *t, const stunkit_rto *rto, int reliable,
                                   const uint8_t tid[STUNKIT_TID_LEN], uint64_t now_ms);
/* What to do at now_ms. RFC 8489 6.2.1: with RTO 500 ms and Rc 7, requests
 * leave at 0, 500, 1500, 3500, 7500, 15500 and 31500 ms, and the client
 * gives up 16 x RTO = 8 s after the last: at 39500 ms. */
STUNKIT_API stunkit_txn_action stunkit_txn_poll(stunkit_txn *t, uint64_t now_ms);
STUNKIT_API uint64_t stunkit_txn_next(const stunkit_txn *t);
/*
 * Checks an incoming datagram against the transaction: parses it (into *m),
 * requires our transaction ID, a response class, a valid FINGERPRINT when
 * one is present and valid MESSAGE-INTEGRITY when a key was set. Returns 0,
 * STUNKIT_ERR_UNEXPECTED (not ours), or the parse/check error.
 */
STUNKIT_API int stunkit_txn_match(const stunkit_txn *t, const uint8_t *buf, size_t len, stunkit_msg *m);

/* The mapped address of a response: XOR-MAPPED-ADDRESS, else MAPPED-ADDRESS. */
STUNKIT_API int stunkit_msg_mapped(const stunkit_msg *m, stunkit_addr *out);

/* ---- server names ---- */

typedef enum stunkit_transport {
    STUNKIT_UDP = 0,
    STUNKIT_TCP = 1,
    STUNKIT_TLS = 2,
    STUNKIT_DTLS = 3
} stunkit_transport;

typedef struct stunkit_server {
    char host[256]; /* a name or a numeric address, without brackets */
    uint16_t port;  /* 0: not given (SRV, then the default) */
    int secure;     /* stuns: URI */
} stunkit_server;

/* Parses "host", "host:port", "[v6]:port", "stun:host[:port]" and
 * "stuns:host[:port]" (RFC 7064). Returns 0 or STUNKIT_ERR_BAD_ADDRESS. */
STUNKIT_API int stunkit_server_parse(const char *text, stunkit_server *out);

/*
 * Resolves a server to at most cap addresses, in the order to try: a
 * numeric host as is; a port given: A/AAAA; no port: DNS SRV
 * (_stun._udp, _stun._tcp or _stuns._tcp, RFC 8489 8.1) by priority and
 * weight, then A/AAAA on the default port (3478, 5349 for TLS). family is
 * 0, STUNKIT_AF_INET or STUNKIT_AF_INET6. Returns the count or
 * STUNKIT_ERR_RESOLVE.
 */
STUNKIT_API int stunkit_server_resolve(const stunkit_server *s, stunkit_transport tr, int family,
                                       stunkit_addr *out, size_t cap);

/* ---- drivers ---- */

typedef struct stunkit_binding_result {
    stunkit_addr mapped;  /* the public address the server saw */
    stunkit_addr local;   /* the local address used */
    stunkit_addr server;  /* the address that answered */
    stunkit_addr other;   /* OTHER-ADDRESS / CHANGED-ADDRESS, family 0 if absent */
    uint32_t rtt_ms;
    int error_code;       /* the server's ERROR-CODE when it refused (401, ...) */
} stunkit_binding_result;

/* Credentials for stunkit_binding_auth: long-term (the server's 401 gives the
 * REALM and NONCE; SHA-256 is used when offered) or short-term. */
typedef struct stunkit_credentials {
    const char *username;
    const char *password;
    int short_term;
} stunkit_credentials;

/*
 * One Binding transaction over UDP, TCP, TLS or DTLS to server, from local
 * (NULL: any), giving up after timeout_ms (0: the RFC's 39.5 s). For TLS and
 * DTLS, tls_name is the name to verify the certificate against (NULL: no
 * verification; say so to users). Returns 0, STUNKIT_ERR_TIMEOUT,
 * STUNKIT_ERR_SYSCALL (errno set) or another error.
 */
STUNKIT_API int stunkit_binding(const stunkit_addr *server, stunkit_transport tr, const stunkit_addr *local,
                                const char *tls_name, uint32_t timeout_ms, stunkit_binding_result *res);

/* The same with credentials (cred may be NULL). A refusal returns
 * STUNKIT_ERR_UNEXPECTED with res->error_code set. */
STUNKIT_API int stunkit_binding_auth(const stunkit_addr *server, stunkit_transport tr, const stunkit_addr *local,
                                     const char *tls_name, uint32_t timeout_ms, const stunkit_credentials *cred,
                                     stunkit_binding_result *res);

/* Monotonic milliseconds, for drivers. */
STUNKIT_API uint64_t stunkit_now_ms(void);

#ifdef __cplusplus
}
#endif
#endif
