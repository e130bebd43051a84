/*
 * stunkit/link.h - one connection to a STUN or TURN server over UDP, TCP,
 * TLS or DTLS, message in and message out, whatever the transport: the
 * socket half that drives the sans-I/O machines (the TURN client, the
 * Binding driver). It owns a socket and reads the clock; core.h users do
 * without it.
 *
 * Stream transports (TCP, TLS) are framed here (RFC 8489 6.2.2, RFC 8656
 * 12.5): stunkit_link_recv() returns one STUN message or one ChannelData
 * message (with its padding) at a time.
 *
 * TLS and DTLS check the server's certificate against the system's CAs (or
 * ca_file) and tls_name, a DNS name or an IP address. Not checking is an
 * explicit choice (tls_insecure); a secure link with neither is refused.
 */
#ifndef STUNKIT_LINK_H
#define STUNKIT_LINK_H

#include <stddef.h>
#include <stdint.h>

#include "stunkit/addr.h"
#include "stunkit/export.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct stunkit_link_config {
    size_t size;                 /* sizeof(stunkit_link_config): lets the struct grow */
    stunkit_transport transport;
    const stunkit_addr *local;   /* the local address to bind, NULL: any */
    const char *tls_name;        /* TLS/DTLS: the name or address the certificate must carry */
    int tls_insecure;            /* TLS/DTLS: 1 = do not check the certificate at all */
    const char *ca_file;         /* TLS/DTLS: trusted CAs (PEM), NULL: the system's */
    uint32_t timeout_ms;         /* connect and handshake, 0: 10000 */
    char *error_text;            /* optional: why opening failed, in words */
    size_t error_text_cap;
    /* TLS/DTLS: the ALPN protocol offered (RFC 7443): "stun.turn" for TURN,
     * NULL: "stun.nat-discovery"; "": none */
    const char *alpn;
} stunkit_link_config;

typedef struct stunkit_link stunkit_link;

/* Connects (and for TLS/DTLS completes the handshake). 0 with *out set,
 * or STUNKIT_ERR_INVAL (a secure link with neither tls_name nor
 * tls_insecure), _TIMEOUT, _SYSCALL (errno), _TLS_VERIFY, _CRYPTO, _NOMEM;
 * cfg->error_text then says why. */
STUNKIT_API int stunkit_link_open(stunkit_link **out, const stunkit_addr *server, const stunkit_link_config *cfg);
STUNKIT_API void stunkit_link_close(stunkit_link *l);

/* The descriptor to poll for reading; the local address. */
STUNKIT_API int stunkit_link_fd(const stunkit_link *l);
STUNKIT_API stunkit_addr stunkit_link_local(const stunkit_link *l);
STUNKIT_API stunkit_transport stunkit_link_transport(const stunkit_link *l);

/* Sends one whole message (blocking at most timeout_ms on a full stream).
 * 0, or STUNKIT_ERR_TIMEOUT, _CLOSED, _SYSCALL, _CRYPTO. An ICMP error on
 * UDP is remembered (stunkit_link_unreachable) and not an error here. */
STUNKIT_API int stunkit_link_send(stunkit_link *l, const uint8_t *msg, size_t len, uint32_t timeout_ms);

/* Receives one message into buf, waiting at most wait_ms (0: only what is
 * there): its length, 0 for nothing yet, or STUNKIT_ERR_CLOSED (the peer
 * closed the stream), _NOT_STUN (the stream carries something else: close
 * it), _NOBUF, _SYSCALL, _CRYPTO. */
STUNKIT_API int stunkit_link_recv(stunkit_link *l, uint8_t *buf, size_t cap, uint32_t wait_ms);

/* 1 when the server's host or port answered with an ICMP error (UDP, DTLS). */
STUNKIT_API int stunkit_link_unreachable(const stunkit_link *l);

#ifdef __cplusplus
}
#endif
#endif
