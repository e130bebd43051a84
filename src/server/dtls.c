/*
 * dtls.c - STUN over DTLS. Many clients share one UDP socket, so OpenSSL
 * talks to each session through a small datagram BIO of ours: reads return
 * the one datagram being fed in, writes go straight out with sendto() to
 * that session's peer, one DTLS datagram each.
 *
 * A ClientHello from an unknown address gets a session only in the fixed
 * table (the least recently active entry of a probe window is evicted), and
 * the handshake starts with a cookie exchange (HelloVerifyRequest, cookie =
 * HMAC of the client's address): a spoofed ClientHello gets one
 * HelloVerifyRequest back, smaller than itself, and nothing more.
 */
#include "dtls.h"

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

int skd_dtls_init(skd_dtls *d)
{
    memset(d, 0, sizeof(*d));
    d->slots = calloc(SKD_DTLS_SLOTS, sizeof(skd_dtls_session));
    return d->slots ? 0 : -1;
}

static void session_end(skd_dtls *d, skd_dtls_session *s)
{
    if (s->ssl) {
        SSL_free(s->ssl); /* frees the BIO too */
        d->n_live--;
    }
    memset(s, 0, sizeof(*s));
}

void skd_dtls_free(skd_dtls *d)
{
    if (!d->slots)
        return;
    for (size_t i = 0; i < SKD_DTLS_SLOTS; i++)
        session_end(d, &d->slots[i]);
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

static skd_dtls_session *find(skd_dtls *d, const stunkit_addr *peer, int create, uint32_t now)
{
    size_t base = slot_of(peer);
    skd_dtls_session *victim = NULL;
    for (size_t i = 0; i < 8; i++) {
        skd_dtls_session *s = &d->slots[(base + i) & (SKD_DTLS_SLOTS - 1)];
        if (s->ssl && stunkit_addr_equal(&s->peer, peer))
            return s;
        if (!victim || !s->ssl || (victim->ssl && (int32_t)(s->last_ms - victim->last_ms) < 0))
            victim = s;
    }
    if (!create)
        return NULL;
    session_end(d, victim);
    (void)now;
    return victim;
}

int skd_dtls_input(skd_dtls *d, SSL_CTX *ctx, int fd, const stunkit_addr *peer, const uint8_t *data, size_t len,
                   uint32_t now_ms, skd_dtls_handler on_message, void *handler_ctx)
{
    /* RFC 7983: DTLS records start with 20..63; a new session needs a
     * handshake record (22). */
    if (len < 13 || data[0] < 20 || data[0] > 63)
        return 0;
    skd_dtls_session *s = find(d, peer, data[0] == 22, now_ms);
    if (!s)
        return 0;
    if (!s->ssl) {
        s->ssl = SSL_new(ctx);
        BIO *bio = BIO_new(dgram_method());
        if (!s->ssl || !bio) {
            if (bio)
                BIO_free(bio);
            if (s->ssl)
                SSL_free(s->ssl);
            memset(s, 0, sizeof(*s));
            return 0;
        }
        d->n_live++;
        s->peer = *peer;
        s->peer_len = (socklen_t)stunkit_addr_to_sockaddr(peer, &s->peer_sa);
        s->fd = fd;
        BIO_set_data(bio, s);
        SSL_set_bio(s->ssl, bio, bio);
        SSL_set_app_data(s->ssl, s);
        SSL_set_accept_state(s->ssl);
    }
    s->last_ms = now_ms;
    s->in = data;
    s->in_len = len;
    int handled = 0;
    uint8_t msg[4096], out[4096]; /* out: the handler may use up to 4096 (worker.c TX_SIZE) */
    for (;;) {
        int n = SSL_read(s->ssl, msg, sizeof(msg));
        if (n > 0) {
            size_t alen = on_message(handler_ctx, peer, msg, (size_t)n, out, sizeof(out));
            handled++;
            if (alen > 0 && SSL_write(s->ssl, out, (int)alen) <= 0)
                ERR_clear_error();
            continue;
        }
        int e = SSL_get_error(s->ssl, n);
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
            ERR_clear_error();
            session_end(d, s); /* failed handshake, alert, close_notify */
        }
        break;
    }
    return handled;
}

void skd_dtls_tick(skd_dtls *d, uint32_t now_ms, uint32_t idle_ms)
{
    if (!d->n_live)
        return;
    for (size_t i = 0; i < SKD_DTLS_SLOTS; i++) {
        skd_dtls_session *s = &d->slots[i];
        if (!s->ssl)
            continue;
        if (now_ms - s->last_ms > idle_ms) {
            session_end(d, s);
            continue;
        }
        if (!SSL_is_init_finished(s->ssl) && DTLSv1_handle_timeout(s->ssl) < 0)
            session_end(d, s);
    }
}
