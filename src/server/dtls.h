/*
 * dtls.h - STUN over DTLS (RFC 8489 6.2.3, UDP port 5349): per-client DTLS
 * sessions on one shared UDP socket, in a fixed-size table per worker.
 *
 * No per-peer state exists before a client has returned a valid cookie
 * (RFC 6347 4.2.1): every ClientHello first goes to one listener object per
 * worker (DTLSv1_listen), which answers a HelloVerifyRequest and forgets.
 * Only a ClientHello with a valid cookie gets a table slot, and a source IP
 * holds at most per_source sessions.
 */
#ifndef STUNKITD_DTLS_H
#define STUNKITD_DTLS_H

#include <openssl/ssl.h>
#include <stdint.h>
#include <sys/socket.h>

#include "conn_hook.h"
#include "stunkit/stunkit.h"

#define SKD_DTLS_SLOTS 1024

typedef struct skd_dtls_session {
    skd_conn_hook hook;    /* a TURN allocation's relayed data goes back through it (worker_dtls.c) */
    SSL *ssl;
    stunkit_addr peer;
    stunkit_addr local;    /* the server's address it arrived on */
    struct sockaddr_storage peer_sa;
    socklen_t peer_len;
    int fd;                /* the shared UDP socket */
    const uint8_t *in;     /* the datagram being fed to OpenSSL */
    size_t in_len;
    uint64_t last_ms;
    uint64_t created_ms;
    uint8_t client_random[8]; /* the start of the ClientHello's random: tells a retransmission from a new handshake */
    unsigned long sent;    /* datagrams sent (for the counters) */
} skd_dtls_session;

typedef struct skd_dtls {
    skd_dtls_session *slots; /* SKD_DTLS_SLOTS, allocated once */
    int n_live;
    int per_source;          /* sessions per source IP */
    SSL *listener;           /* stateless cookie exchange */
    SSL_CTX *listener_ctx;   /* the context it was made from */
    skd_dtls_session lsess;  /* the listener's BIO target: the datagram's sender */
    unsigned long hello_verify, created, refused; /* counters, read by the worker */
    /* called when a session ends (a TURN allocation over it goes too) */
    void (*on_end)(void *ctx, const skd_dtls_session *s);
    void *on_end_ctx;
    /* 1 when the session holds a TURN allocation (called with on_end_ctx):
     * such a session lives as long as its allocation, idle or not (as a TCP
     * connection's does), and no newcomer evicts it */
    int (*holds)(void *ctx, const skd_dtls_session *s);
} skd_dtls;

int skd_dtls_init(skd_dtls *d, int per_source);
void skd_dtls_free(skd_dtls *d);

/* Hands one datagram from peer to its session (or to the listener for a
 * ClientHello). Each decrypted STUN message is passed to on_message, whose
 * answer (if it returns a length > 0 in *out) goes back encrypted. Returns the
 * number of STUN messages handled. */
typedef size_t (*skd_dtls_handler)(void *ctx, skd_dtls_session *s, const uint8_t *msg, size_t len, uint8_t *out,
                                   size_t cap);
int skd_dtls_input(skd_dtls *d, SSL_CTX *ctx, int fd, const stunkit_addr *local, const stunkit_addr *peer,
                   const uint8_t *data, size_t len, uint64_t now_ms, skd_dtls_handler on_message, void *handler_ctx);

/* Sends len bytes to the session's client, encrypted. 0 or -1. */
int skd_dtls_send(skd_dtls_session *s, const uint8_t *data, size_t len);

/* Handshake retransmissions, handshake deadlines and idle expiry; call about
 * once a second. */
void skd_dtls_tick(skd_dtls *d, uint64_t now_ms, uint32_t idle_ms, uint32_t handshake_ms);

/* The cookie callbacks for the DTLS SSL_CTX (stateless HelloVerifyRequest);
 * also prepares the shared BIO method. Call from the main thread before the
 * workers start. */
void skd_dtls_setup_ctx(SSL_CTX *ctx);

#endif
