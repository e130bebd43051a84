/*
 * turn_util.h - a small TURN client for tests against a real stunkitd
 * (server_util.h starts it): long-term credentials with the 401/438 dance,
 * UDP or TCP (RFC 8489 framing, ChannelData padded as RFC 8656 12.5 asks),
 * and the requests the tests need, built with our codec.
 */
#ifndef STUNKIT_TURN_UTIL_H
#define STUNKIT_TURN_UTIL_H

#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <string.h>

#include "server_util.h"
#include "stunkit/rendezvous.h"

enum { TU_UDP, TU_TCP, TU_TLS, TU_DTLS };

typedef struct tu_client {
    int fd;
    int tcp;       /* a stream: TCP or TLS (framing, no retransmissions) */
    int transport; /* TU_* */
    SSL *ssl;      /* TLS and DTLS */
    char to[64];
    const char *user, *pass;
    char realm[128], nonce[128];
    size_t realm_len, nonce_len;
    uint8_t key[16];
    int userhash; /* name the user by USERHASH (RFC 8489 14.4) instead of USERNAME */
    uint8_t in[4096]; /* TCP: bytes read and not yet framed */
    size_t in_len;
} tu_client;

/* Attributes a request adds before the credentials. */
typedef struct tu_attrs {
    int transport;            /* REQUESTED-TRANSPORT 17 */
    int lifetime;             /* >= 0: LIFETIME */
    const stunkit_addr *peer; /* XOR-PEER-ADDRESS */
    uint16_t channel;         /* CHANNEL-NUMBER */
    int even_port;            /* 1: EVEN-PORT, 2: with R */
    const uint8_t *token;     /* RESERVATION-TOKEN */
    const char *room;         /* RENDEZVOUS (stunkit/rendezvous.h): ROOM, with PEER-ID and ACK 0 */
    const char *peer_id;      /* 8 bytes */
} tu_attrs;

/* TLS and DTLS without certificate checks (the tests' server has a
 * throwaway one). */
static inline SSL_CTX *tu_ssl_ctx(int dtls)
{
    static SSL_CTX *ctx[2];
    if (!ctx[dtls]) {
        ctx[dtls] = SSL_CTX_new(dtls ? DTLS_client_method() : TLS_client_method());
        SSL_CTX_set_verify(ctx[dtls], SSL_VERIFY_NONE, NULL);
    }
    return ctx[dtls];
}

/* The TLS or DTLS handshake on c->fd within 3 s: 0 or -1. */
static inline int tu_handshake(tu_client *c)
{
    int dtls = c->transport == TU_DTLS;
    c->ssl = SSL_new(tu_ssl_ctx(dtls));
    if (dtls) {
        BIO *bio = BIO_new_dgram(c->fd, BIO_NOCLOSE);
        struct sockaddr_storage peer;
        socklen_t plen = sizeof(peer);
        getpeername(c->fd, (struct sockaddr *)&peer, &plen);
        BIO_ctrl(bio, BIO_CTRL_DGRAM_SET_CONNECTED, 0, &peer);
        SSL_set_bio(c->ssl, bio, bio);
    } else {
        SSL_set_fd(c->ssl, c->fd);
    }
    struct timeval tv = {0, 50000};
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    double t0 = su_now();
    while (su_now() - t0 < 3.0) {
        int rv = SSL_connect(c->ssl);
        if (rv == 1)
            return 0;
        int e = SSL_get_error(c->ssl, rv);
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
            break;
        if (dtls)
            DTLSv1_handle_timeout(c->ssl);
    }
    ERR_clear_error();
    SSL_free(c->ssl);
    c->ssl = NULL;
    return -1;
}

/* A client of `to` over transport (TU_*), from src_ip (NULL: 127.0.0.1 or
 * ::1). */
static inline int tu_open_from(tu_client *c, int transport, const char *src_ip, const char *to, const char *user,
                               const char *pass)
{
    memset(c, 0, sizeof(*c));
    c->transport = transport;
    c->tcp = transport == TU_TCP || transport == TU_TLS;
    snprintf(c->to, sizeof(c->to), "%s", to);
    c->user = user;
    c->pass = pass;
    stunkit_addr d;
    struct sockaddr_storage ds;
    if (stunkit_addr_parse(to, 3478, &d) != 0)
        return -1;
    socklen_t dl = (socklen_t)stunkit_addr_to_sockaddr(&d, &ds);
    if (!src_ip)
        src_ip = d.family == STUNKIT_AF_INET6 ? "::1" : "127.0.0.1";
    if (c->tcp) {
        stunkit_addr s;
        struct sockaddr_storage ss;
        stunkit_addr_parse(src_ip, 0, &s);
        socklen_t sl = (socklen_t)stunkit_addr_to_sockaddr(&s, &ss);
        c->fd = socket(ds.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (c->fd < 0 || bind(c->fd, (struct sockaddr *)&ss, sl) != 0 ||
            connect(c->fd, (struct sockaddr *)&ds, dl) != 0) {
            if (c->fd >= 0)
                close(c->fd);
            c->fd = -1;
            return -1;
        }
        int one = 1;
        setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    } else {
        c->fd = su_udp(src_ip, 0);
        if (c->fd >= 0 && transport == TU_DTLS && connect(c->fd, (struct sockaddr *)&ds, dl) != 0) {
            close(c->fd);
            c->fd = -1;
        }
    }
    if (c->fd >= 0 && (transport == TU_TLS || transport == TU_DTLS) && tu_handshake(c) != 0) {
        close(c->fd);
        c->fd = -1;
    }
    return c->fd >= 0 ? 0 : -1;
}

static inline int tu_open(tu_client *c, int transport, const char *to, const char *user, const char *pass)
{
    return tu_open_from(c, transport, NULL, to, user, pass);
}

static inline void tu_close(tu_client *c)
{
    if (c->ssl)
        SSL_free(c->ssl);
    c->ssl = NULL;
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

/* Bytes from the socket (or its TLS/DTLS session) within ms: >0, or -1. */
static inline int tu_read_some(tu_client *c, uint8_t *buf, size_t cap, int ms)
{
    double until = su_now() + ms / 1000.0;
    for (;;) {
        if (!c->ssl || SSL_pending(c->ssl) <= 0) {
            int left = (int)((until - su_now()) * 1000);
            struct pollfd p = {c->fd, POLLIN, 0};
            if (left <= 0 || poll(&p, 1, left) <= 0)
                return -1;
        }
        if (!c->ssl) {
            ssize_t n = recv(c->fd, buf, cap, 0);
            return n > 0 ? (int)n : -1;
        }
        int n = SSL_read(c->ssl, buf, (int)cap);
        if (n > 0)
            return n;
        int e = SSL_get_error(c->ssl, n);
        ERR_clear_error();
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
            return -1;
    }
}

/* A request of method with a's attributes and the credentials (none before
 * the first challenge); returns its length. tid: 12 bytes out. */
static inline size_t tu_build(tu_client *c, uint8_t *buf, size_t cap, uint16_t method, const tu_attrs *a,
                              uint8_t *tid)
{
    stunkit_writer w;
    su_tid(tid);
    stunkit_writer_init(&w, buf, cap, method, STUNKIT_CLASS_REQUEST, tid);
    if (a && a->transport)
        stunkit_put_u32(&w, STUNKIT_ATTR_REQUESTED_TRANSPORT, 17u << 24);
    if (a && a->lifetime >= 0)
        stunkit_put_u32(&w, STUNKIT_ATTR_LIFETIME, (uint32_t)a->lifetime);
    if (a && a->channel)
        stunkit_put_u32(&w, STUNKIT_ATTR_CHANNEL_NUMBER, (uint32_t)a->channel << 16);
    if (a && a->peer)
        stunkit_put_addr(&w, STUNKIT_ATTR_XOR_PEER_ADDRESS, a->peer);
    if (a && a->even_port) {
        uint8_t v = a->even_port == 2 ? 0x80 : 0;
        stunkit_put(&w, STUNKIT_ATTR_EVEN_PORT, &v, 1);
    }
    if (a && a->token)
        stunkit_put(&w, STUNKIT_ATTR_RESERVATION_TOKEN, a->token, 8);
    if (a && a->room) {
        stunkit_put(&w, STUNKIT_ATTR_RDV_ROOM, a->room, strlen(a->room));
        stunkit_put(&w, STUNKIT_ATTR_RDV_PEER_ID, a->peer_id, 8);
        stunkit_put_u32(&w, STUNKIT_ATTR_RDV_ACK, 0);
        static const uint8_t pad[128];
        stunkit_put(&w, STUNKIT_ATTR_PADDING, pad, sizeof(pad)); /* room for the answer (at most twice the request) */
    }
    if (c->nonce_len) {
        if (c->userhash) {
            uint8_t h[32];
            stunkit_userhash(c->user, strlen(c->user), c->realm, c->realm_len, h);
            stunkit_put(&w, STUNKIT_ATTR_USERHASH, h, 32);
        } else {
            stunkit_put(&w, STUNKIT_ATTR_USERNAME, c->user, strlen(c->user));
        }
        stunkit_put(&w, STUNKIT_ATTR_REALM, c->realm, c->realm_len);
        stunkit_put(&w, STUNKIT_ATTR_NONCE, c->nonce, c->nonce_len);
        stunkit_put_integrity(&w, c->key, sizeof(c->key));
    }
    int n = stunkit_writer_finish(&w);
    return n > 0 ? (size_t)n : 0;
}

static inline int tu_send(tu_client *c, const uint8_t *buf, size_t len)
{
    if (c->ssl)
        return SSL_write(c->ssl, buf, (int)len) == (int)len ? 0 : -1;
    if (c->tcp)
        return send(c->fd, buf, len, MSG_NOSIGNAL) == (ssize_t)len ? 0 : -1;
    return su_sendto(c->fd, buf, len, c->to);
}

/* The next STUN message or ChannelData from the server within ms: its
 * length, or -1. */
static inline int tu_recv(tu_client *c, uint8_t *buf, size_t cap, int ms)
{
    if (c->transport == TU_DTLS)
        return tu_read_some(c, buf, cap, ms);
    if (!c->tcp)
        return su_recv(c->fd, buf, cap, ms, NULL);
    double until = su_now() + ms / 1000.0;
    for (;;) {
        if (c->in_len >= 4) {
            size_t need = (c->in[0] & 0xC0) == 0x40 ? 4 + ((((size_t)c->in[2] << 8 | c->in[3]) + 3) & ~(size_t)3)
                                                    : 20 + ((size_t)c->in[2] << 8 | c->in[3]);
            if (c->in_len >= need) {
                size_t n = need < cap ? need : cap;
                memcpy(buf, c->in, n);
                memmove(c->in, c->in + need, c->in_len - need);
                c->in_len -= need;
                return (int)n;
            }
        }
        int left = (int)((until - su_now()) * 1000);
        int n = tu_read_some(c, c->in + c->in_len, sizeof(c->in) - c->in_len, left);
        if (n <= 0)
            return -1;
        c->in_len += (size_t)n;
    }
}

/* The answer to tid within ms (ChannelData and other answers skipped):
 * its length, parsed into m, or -1. */
static inline int tu_answer(tu_client *c, const uint8_t *tid, uint8_t *buf, size_t cap, stunkit_msg *m, int ms)
{
    double until = su_now() + ms / 1000.0;
    for (;;) {
        int left = (int)((until - su_now()) * 1000);
        if (left <= 0)
            return -1;
        int n = tu_recv(c, buf, cap, left);
        if (n < 0)
            return -1;
        if (stunkit_msg_parse(m, buf, (size_t)n) == 0 && !memcmp(m->tid, tid, 12))
            return n;
    }
}

/* The error code of an answer: 0 for a success, -1 for none. */
static inline int tu_code(const stunkit_msg *m)
{
    stunkit_attr a;
    int code = -1;
    if (m->klass == STUNKIT_CLASS_SUCCESS)
        return 0;
    if (stunkit_msg_find(m, STUNKIT_ATTR_ERROR_CODE, &a) == 0)
        stunkit_attr_error_code(&a, &code, NULL, NULL);
    return code;
}

/* Sets REALM and NONCE and derives the key. */
static inline void tu_set_nonce(tu_client *c, const void *realm, size_t realm_len, const void *nonce, size_t nonce_len)
{
    if (realm_len >= sizeof(c->realm) || nonce_len >= sizeof(c->nonce))
        return;
    memmove(c->realm, realm, realm_len);
    c->realm_len = realm_len;
    memmove(c->nonce, nonce, nonce_len);
    c->nonce_len = nonce_len;
    stunkit_key_long_term(STUNKIT_PWALG_MD5, c->user, strlen(c->user), c->realm, c->realm_len, c->pass,
                          strlen(c->pass), c->key, sizeof(c->key));
}

/* Takes REALM and NONCE from a 401/438. */
static inline void tu_learn(tu_client *c, const stunkit_msg *m)
{
    stunkit_attr r, nn;
    if (stunkit_msg_find(m, STUNKIT_ATTR_REALM, &r) == 0 && stunkit_msg_find(m, STUNKIT_ATTR_NONCE, &nn) == 0)
        tu_set_nonce(c, r.value, r.len, nn.value, nn.len);
}

/* Takes the REALM and NONCE src learned (a NONCE is bound to the client's
 * IP, not its port): no second challenge. */
static inline void tu_share(tu_client *to, const tu_client *src)
{
    tu_set_nonce(to, src->realm, src->realm_len, src->nonce, src->nonce_len);
}

/* A request and its answer, through the 401/438 dance: the final code (0
 * success), or -1 without an answer. buf/m keep the answer. UDP requests
 * are sent up to 3 times. */
static inline int tu_ask(tu_client *c, uint16_t method, const tu_attrs *a, uint8_t *buf, size_t cap, stunkit_msg *m)
{
    for (int round = 0; round < 3; round++) {
        uint8_t req[512], tid[12];
        size_t len = tu_build(c, req, sizeof(req), method, a, tid);
        int n = -1;
        for (int k = 0; k < (c->tcp ? 1 : 3) && n < 0; k++) {
            if (tu_send(c, req, len) != 0)
                return -1;
            n = tu_answer(c, tid, buf, cap, m, c->tcp ? 3000 : 700);
        }
        if (n < 0)
            return -1;
        int code = tu_code(m);
        if (code != 401 && code != 438)
            return code;
        if (round > 0 && code == 401)
            return code; /* credentials refused */
        tu_learn(c, m);
    }
    return -1;
}

static inline int tu_addr_attr(const stunkit_msg *m, uint16_t type, stunkit_addr *out)
{
    stunkit_attr a;
    return stunkit_msg_find(m, type, &a) == 0 && stunkit_attr_addr(m, &a, out) == 0 ? 0 : -1;
}

/* An Allocate over c: 0 and the relayed address, or the error code (-1: no
 * answer). */
static inline int tu_allocate(tu_client *c, stunkit_addr *relayed)
{
    uint8_t buf[2048];
    stunkit_msg m;
    tu_attrs a = {.transport = 1, .lifetime = -1};
    int code = tu_ask(c, STUNKIT_METHOD_ALLOCATE, &a, buf, sizeof(buf), &m);
    if (code == 0 && relayed && tu_addr_attr(&m, STUNKIT_ATTR_XOR_RELAYED_ADDRESS, relayed) != 0)
        return -1;
    return code;
}

/* A ChannelData message (padded for TCP); returns its length. */
static inline size_t tu_channel_data(uint8_t *buf, uint16_t channel, const void *data, size_t len, int pad)
{
    buf[0] = (uint8_t)(channel >> 8);
    buf[1] = (uint8_t)channel;
    buf[2] = (uint8_t)(len >> 8);
    buf[3] = (uint8_t)len;
    memcpy(buf + 4, data, len);
    size_t n = 4 + len;
    while (pad && (n & 3))
        buf[n++] = 0;
    return n;
}

#endif
