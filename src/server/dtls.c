/*
 * dtls.c - STUN over DTLS. Many clients share one UDP socket, so OpenSSL
 * talks to each session through a small datagram BIO of ours: reads return
 * the one datagram being fed in, writes go straight out with sendto() to
 * that session's peer, one DTLS datagram each.
 *
 * Every ClientHello (epoch 0) goes first to the worker's one listener
 * object, DTLSv1_listen(): without a valid cookie (HMAC of the client's
 * address and port) it answers a HelloVerifyRequest and keeps nothing, so a
 * flood of ClientHellos costs no memory (RFC 6347 4.2.1: "the server
 * [...] SHOULD NOT allocate state until the client demonstrates
 * reachability"). With a valid cookie the listener object itself becomes the
 * session, and a fresh listener is made. A valid ClientHello from an address
 * that already has a session starts a new handshake (RFC 6347 4.2.8: the
 * client "demonstrated reachability" by the cookie exchange), unless it is a
 * retransmission of the one that session is answering.
 */
#include "dtls.h"
#include "source.h"

#include <openssl/err.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

#include "stunkit/integrity.h"

/* ---- the datagram BIO ---- */

static BIO_METHOD *bio_method;

static int bio_write(BIO *b, const char *data, int len)
{
    skd_dtls_session *s = BIO_get_data(b);
    ssize_t n = sendto(s->fd, data, (size_t)len, MSG_DONTWAIT, (struct sockaddr *)&s->peer_sa, s->peer_len);
    if (n < 0)
        return len; /* like loss: DTLS retransmits */
    s->sent++;
    return (int)n;
}

static int bio_read(BIO *b, char *buf, int cap)
{
    skd_dtls_session *s = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (!s->in) {
        BIO_set_retry_read(b);
        return -1;
    }
    int n = (int)s->in_len < cap ? (int)s->in_len : cap;
    memcpy(buf, s->in, (size_t)n);
    s->in = NULL;
    s->in_len = 0;
    return n;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)b;
    (void)num;
    (void)ptr;
    switch (cmd) {
    case BIO_CTRL_FLUSH: return 1;
    case BIO_CTRL_DGRAM_QUERY_MTU:
    case BIO_CTRL_DGRAM_GET_FALLBACK_MTU: return 1200; /* safe on every path */
    case BIO_CTRL_DGRAM_GET_MTU_OVERHEAD: return 48;  /* IPv6 + UDP headers */
    case BIO_CTRL_DGRAM_SET_NEXT_TIMEOUT: return 0;
    case BIO_CTRL_WPENDING:
    case BIO_CTRL_PENDING: return 0;
    default: return 0;
    }
}

static int bio_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

static BIO_METHOD *dgram_method(void)
{
    if (!bio_method) {
        bio_method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "stunkitd dgram");
        BIO_meth_set_write(bio_method, bio_write);
        BIO_meth_set_read(bio_method, bio_read);
        BIO_meth_set_ctrl(bio_method, bio_ctrl);
        BIO_meth_set_create(bio_method, bio_create);
    }
    return bio_method;
}

/* ---- cookies ---- */

static uint8_t cookie_key[32];

static void cookie_for(SSL *ssl, unsigned char *cookie, unsigned int *len)
{
    skd_dtls_session *s = SSL_get_app_data(ssl);
    uint8_t mac[32];
    stunkit_hmac_sha256(cookie_key, sizeof(cookie_key), s->peer.ip, sizeof(s->peer.ip),
                        (const uint8_t *)&s->peer.port, sizeof(s->peer.port), mac);
    memcpy(cookie, mac, 16);
    *len = 16;
}

static int cookie_generate(SSL *ssl, unsigned char *cookie, unsigned int *len)
{
    cookie_for(ssl, cookie, len);
    return 1;
}

static int cookie_verify(SSL *ssl, const unsigned char *cookie, unsigned int len)
{
    unsigned char want[32];
    unsigned int wlen;
    cookie_for(ssl, want, &wlen);
    return len == wlen && stunkit_ct_equal(cookie, want, wlen);
}

void skd_dtls_setup_ctx(SSL_CTX *ctx)
{
    static int keyed;
    if (!keyed && RAND_bytes(cookie_key, sizeof(cookie_key)) == 1)
        keyed = 1;
    SSL_CTX_set_cookie_generate_cb(ctx, cookie_generate);
    SSL_CTX_set_cookie_verify_cb(ctx, cookie_verify);
    SSL_CTX_set_options(ctx, SSL_OP_COOKIE_EXCHANGE);
    dgram_method();
}

/* ---- sessions ---- */

int skd_dtls_init(skd_dtls *d, int per_source)
{
    memset(d, 0, sizeof(*d));
    d->per_source = per_source > 0 ? per_source : 1;
    d->slots = calloc(SKD_DTLS_SLOTS, sizeof(skd_dtls_session));
    return d->slots ? 0 : -1;
}

static void session_end(skd_dtls *d, skd_dtls_session *s)
{
    if (s->ssl && d->on_end)
        d->on_end(d->on_end_ctx, s);
    if (s->ssl) {
        SSL_free(s->ssl); /* frees the BIO too */
        d->n_live--;
    }
    memset(s, 0, sizeof(*s));
}

static void listener_free(skd_dtls *d)
{
    if (d->listener)
        SSL_free(d->listener);
    d->listener = NULL;
    d->listener_ctx = NULL;
}

void skd_dtls_free(skd_dtls *d)
{
    if (!d->slots)
        return;
    for (size_t i = 0; i < SKD_DTLS_SLOTS; i++)
        session_end(d, &d->slots[i]);
    listener_free(d);
    free(d->slots);
    d->slots = NULL;
}

static size_t slot_of(const stunkit_addr *a)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < sizeof(a->ip); i++)
        h = (h ^ a->ip[i]) * 16777619u;
    h = (h ^ a->port) * 16777619u;
    return h & (SKD_DTLS_SLOTS - 1);
}

#define PROBE 8

static skd_dtls_session *find(skd_dtls *d, const stunkit_addr *peer)
{
    size_t base = slot_of(peer);
    for (size_t i = 0; i < PROBE; i++) {
        skd_dtls_session *s = &d->slots[(base + i) & (SKD_DTLS_SLOTS - 1)];
        if (s->ssl && stunkit_addr_equal(&s->peer, peer))
            return s;
    }
    return NULL;
}

static int holds_allocation(const skd_dtls *d, const skd_dtls_session *s)
{
    return d->holds && d->holds(d->on_end_ctx, s);
}

/* A slot for a new session: an empty one of the probe window, else the one
 * still handshaking, else the least recently active; never one that holds
 * a TURN allocation (NULL when all do: the newcomer is refused). */
static skd_dtls_session *victim(skd_dtls *d, const stunkit_addr *peer)
{
    size_t base = slot_of(peer);
    skd_dtls_session *v = NULL;
    for (size_t i = 0; i < PROBE; i++) {
        skd_dtls_session *s = &d->slots[(base + i) & (SKD_DTLS_SLOTS - 1)];
        if (!s->ssl)
            return s;
        if (holds_allocation(d, s))
            continue;
        int s_hs = !SSL_is_init_finished(s->ssl), v_hs = v && !SSL_is_init_finished(v->ssl);
        if (!v || (s_hs && !v_hs) || (s_hs == v_hs && s->last_ms < v->last_ms))
            v = s;
    }
    if (v)
        session_end(d, v);
    return v;
}

static int sessions_of(const skd_dtls *d, const stunkit_addr *peer)
{
    int n = 0;
    for (size_t i = 0; i < SKD_DTLS_SLOTS; i++)
        n += d->slots[i].ssl && skd_same_source(&d->slots[i].peer, peer);
    return n;
}

static void point_at(skd_dtls_session *s, const stunkit_addr *peer, int fd)
{
    s->peer = *peer;
    s->peer_len = (socklen_t)stunkit_addr_to_sockaddr(peer, &s->peer_sa);
    s->fd = fd;
}

static int listener_ready(skd_dtls *d, SSL_CTX *ctx)
{
    if (d->listener && d->listener_ctx == ctx)
        return 0;
    listener_free(d); /* first use, or the context was reloaded */
    SSL *ssl = SSL_new(ctx);
    BIO *bio = BIO_new(dgram_method());
    if (!ssl || !bio) {
        BIO_free(bio);
        SSL_free(ssl);
        return -1;
    }
    BIO_set_data(bio, &d->lsess);
    SSL_set_bio(ssl, bio, bio);
    SSL_set_app_data(ssl, &d->lsess);
    d->listener = ssl;
    d->listener_ctx = ctx;
    return 0;
}

/*
 * RFC 6347 4.1 / 4.2.2: a DTLS record header is 13 bytes (type, version,
 * epoch, sequence number, length); a ClientHello is handshake record (22)
 * in epoch 0 whose handshake message type is 1. Its body starts after the
 * 12-byte handshake header with client_version (2) and random (32).
 */
static int is_client_hello(const uint8_t *p, size_t len)
{
    return len >= 13 + 12 + 2 + 32 && p[0] == 22 && p[3] == 0 && p[4] == 0 && p[13] == 1;
}

static const uint8_t *client_random(const uint8_t *p)
{
    return p + 13 + 12 + 2;
}

/* A ClientHello: through the listener. Returns the session to feed it to
 * (a new one, or a known one retransmitting), or NULL when it is done. */
static skd_dtls_session *hello(skd_dtls *d, SSL_CTX *ctx, int fd, const stunkit_addr *peer, const uint8_t *data,
                               size_t len, uint64_t now_ms, int *fresh)
{
    *fresh = 0;
    skd_dtls_session *known = find(d, peer);
    if (known && !SSL_is_init_finished(known->ssl) &&
        memcmp(known->client_random, client_random(data), sizeof(known->client_random)) == 0)
        return known; /* the handshake under way: a retransmission */
    if (listener_ready(d, ctx) != 0)
        return NULL;
    point_at(&d->lsess, peer, fd);
    d->lsess.in = data;
    d->lsess.in_len = len;
    d->lsess.sent = 0;
    BIO_ADDR *client = BIO_ADDR_new();
    int rv = client ? DTLSv1_listen(d->listener, client) : -1;
    BIO_ADDR_free(client);
    d->lsess.in = NULL;
    d->hello_verify += d->lsess.sent;
    if (rv <= 0) {
        ERR_clear_error();
        if (rv < 0)
            listener_free(d); /* a fatal error: start over with a fresh one */
        else
            SSL_clear(d->listener);
        return NULL;
    }
    /* A valid cookie: the client is reachable at this address. */
    if (known) {
        session_end(d, known); /* it starts over (RFC 6347 4.2.8) */
    } else if (sessions_of(d, peer) >= d->per_source) {
        d->refused++;
        SSL_clear(d->listener);
        return NULL;
    }
    skd_dtls_session *s = victim(d, peer);
    if (!s) { /* every slot it could take holds an allocation */
        d->refused++;
        SSL_clear(d->listener);
        return NULL;
    }
    s->ssl = d->listener;
    d->listener = NULL;
    d->listener_ctx = NULL;
    point_at(s, peer, fd);
    BIO_set_data(SSL_get_rbio(s->ssl), s);
    SSL_set_app_data(s->ssl, s);
    memcpy(s->client_random, client_random(data), sizeof(s->client_random));
    s->created_ms = now_ms;
    d->n_live++;
    d->created++;
    *fresh = 1; /* DTLSv1_listen keeps the ClientHello for the handshake */
    return s;
}

int skd_dtls_input(skd_dtls *d, SSL_CTX *ctx, int fd, const stunkit_addr *local, const stunkit_addr *peer,
                   const uint8_t *data, size_t len, uint64_t now_ms, skd_dtls_handler on_message, void *handler_ctx)
{
    /* RFC 7983: DTLS records start with 20..63. */
    if (len < 13 || data[0] < 20 || data[0] > 63)
        return 0;
    skd_dtls_session *s;
    int fresh = 0;
    if (is_client_hello(data, len)) {
        s = hello(d, ctx, fd, peer, data, len, now_ms, &fresh);
        if (!s)
            return 0;
        if (fresh)
            s->local = *local;
    } else {
        s = find(d, peer);
        if (!s)
            return 0; /* no session and not a ClientHello: nothing to do */
    }
    s->last_ms = now_ms;
    if (!fresh) {
        s->in = data;
        s->in_len = len;
    }
    int handled = 0;
    uint8_t msg[4096], out[4096]; /* out: the handler may use up to 4096 (worker TX_SIZE) */
    for (;;) {
        int n = SSL_read(s->ssl, msg, sizeof(msg));
        if (n > 0) {
            size_t alen = on_message(handler_ctx, s, msg, (size_t)n, out, sizeof(out));
            handled++;
            if (alen > 0 && SSL_write(s->ssl, out, (int)alen) <= 0)
                ERR_clear_error();
            continue;
        }
        int e = SSL_get_error(s->ssl, n);
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
            ERR_clear_error();
            session_end(d, s); /* failed handshake, alert, close_notify */
            return handled;
        }
        break;
    }
    s->in = NULL;
    return handled;
}

int skd_dtls_send(skd_dtls_session *s, const uint8_t *data, size_t len)
{
    if (!s->ssl || !SSL_is_init_finished(s->ssl))
        return -1;
    if (SSL_write(s->ssl, data, (int)len) <= 0) {
        ERR_clear_error();
        return -1;
    }
    return 0;
}

void skd_dtls_tick(skd_dtls *d, uint64_t now_ms, uint32_t idle_ms, uint32_t handshake_ms)
{
    if (!d->n_live)
        return;
    for (size_t i = 0; i < SKD_DTLS_SLOTS; i++) {
        skd_dtls_session *s = &d->slots[i];
        if (!s->ssl)
            continue;
        int handshaking = !SSL_is_init_finished(s->ssl);
        if (!handshaking && now_ms - s->last_ms > idle_ms && holds_allocation(d, s)) {
            s->last_ms = now_ms; /* it lives as long as its allocation */
            continue;
        }
        if (now_ms - s->last_ms > idle_ms || (handshaking && now_ms - s->created_ms > handshake_ms)) {
            session_end(d, s);
            continue;
        }
        if (handshaking && DTLSv1_handle_timeout(s->ssl) < 0) {
            ERR_clear_error();
            session_end(d, s);
        }
    }
}
