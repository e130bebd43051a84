/*
 * stunkit/client.h - the platform part of the client: server names (RFC 7064
 * URIs, DNS SRV) and thin blocking drivers over UDP, TCP, TLS and DTLS for
 * the common "what is my public address" question. These own sockets, read
 * the clock and the OS's randomness; a consumer that wants only the codec and
 * the state machines includes stunkit/core.h and links libstunkit-core.
 */
#ifndef STUNKIT_CLIENT_H
#define STUNKIT_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "stunkit/addr.h"
#include "stunkit/export.h"
#include "stunkit/msg.h"
#include "stunkit/txn.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- server names ---- */

typedef struct stunkit_server {
    char host[256]; /* a name or a numeric address, without brackets */
    uint16_t port;  /* 0: not given (SRV, then the default) */
    int secure;     /* stuns: or turns: URI */
    int turn;       /* turn: or turns: URI (RFC 7065) */
    int transport;  /* turn URIs' "?transport=": 0 not given, 1 udp, 2 tcp */
} stunkit_server;

/* Parses "host", "host:port", "[v6]:port", "stun:host[:port]",
 * "stuns:host[:port]" (RFC 7064) and "turn:" / "turns:" URIs with an
 * optional "?transport=udp|tcp" (RFC 7065). Returns 0 or
 * STUNKIT_ERR_BAD_ADDRESS. */
STUNKIT_API int stunkit_server_parse(const char *text, stunkit_server *out);

/*
 * Resolves a server to at most cap addresses, in the order to try: a
 * numeric host as is; a port given: A/AAAA; no port: DNS SRV
 * (_stun._udp, _stun._tcp or _stuns._tcp, RFC 8489 8.1) by priority and
 * weight, then A/AAAA on the default port (3478, 5349 for TLS). family is
 * 0, STUNKIT_AF_INET or STUNKIT_AF_INET6. TURN URIs use _turn._udp,
 * _turn._tcp, _turns._tcp and _turns._udp (RFC 5928). Returns the count or
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

/* Everything a Binding transaction can be told (stunkit_binding_ex). */
typedef struct stunkit_binding_options {
    size_t size;                     /* sizeof(stunkit_binding_options): lets it grow */
    const stunkit_addr *local;       /* send from here, NULL: any */
    uint32_t timeout_ms;             /* 0: the RFC's 39.5 s */
    const stunkit_credentials *cred; /* NULL: none */
    const char *tls_name;            /* TLS/DTLS: the name or IP the certificate must carry */
    int tls_insecure;                /* TLS/DTLS: 1 = do not check the certificate (an explicit
                                        choice: without it and without tls_name, TLS is refused) */
    const char *ca_file;             /* TLS/DTLS: trusted CAs (PEM), NULL: the system's */
    char *error_text;                /* optional: why it failed, in words (a TLS verify
                                        reason, errno's text, ...) */
    size_t error_text_cap;
} stunkit_binding_options;

/* One Binding transaction: 0 with *res filled, STUNKIT_ERR_INVAL (TLS or
 * DTLS with neither tls_name nor tls_insecure), STUNKIT_ERR_TIMEOUT,
 * STUNKIT_ERR_UNEXPECTED (res->error_code: the server refused), or the
 * link's errors (stunkit/link.h), with error_text saying why. */
STUNKIT_API int stunkit_binding_ex(const stunkit_addr *server, stunkit_transport tr,
                                   const stunkit_binding_options *opt, stunkit_binding_result *res);

/*
 * One Binding transaction over UDP, TCP, TLS or DTLS to server, from local
 * (NULL: any), giving up after timeout_ms (0: the RFC's 39.5 s). For TLS and
 * DTLS, tls_name is the name to verify the certificate against; NULL is
 * refused with STUNKIT_ERR_INVAL (not checking is an explicit choice:
 * stunkit_binding_ex with tls_insecure). Returns 0, STUNKIT_ERR_TIMEOUT,
 * STUNKIT_ERR_SYSCALL (errno set) or another error.
 */
STUNKIT_API int stunkit_binding(const stunkit_addr *server, stunkit_transport tr, const stunkit_addr *local,
                                const char *tls_name, uint32_t timeout_ms, stunkit_binding_result *res);

/* The same with credentials (cred may be NULL). A refusal returns
 * STUNKIT_ERR_UNEXPECTED with res->error_code set. */
STUNKIT_API int stunkit_binding_auth(const stunkit_addr *server, stunkit_transport tr, const stunkit_addr *local,
                                     const char *tls_name, uint32_t timeout_ms, const stunkit_credentials *cred,
                                     stunkit_binding_result *res);

/* Randomness from the OS (getrandom), in the shape the state machines take
 * (stunkit_env.random, stunkit/machine.h). */
STUNKIT_API void stunkit_random_os(void *ctx, uint8_t *buf, size_t len);

/* This host's default gateway of the family (STUNKIT_AF_INET: from
 * /proc/net/route, STUNKIT_AF_INET6: /proc/net/ipv6_route), the router PCP,
 * NAT-PMP and UPnP are asked: 0, or -1 when there is none. */
STUNKIT_API int stunkit_default_gateway(int family, stunkit_addr *out);

/* Monotonic milliseconds, for drivers. */
STUNKIT_API uint64_t stunkit_now_ms(void);

#ifdef __cplusplus
}
#endif
#endif
