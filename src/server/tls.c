/*
 * tls.c - STUN over TLS (RFC 8489 6.2.3: "TLS version 1.2 or later"): a
 * server context with OpenSSL's defaults for ciphers, no compression, no
 * renegotiation, and the certificate and key checked to match.
 */
#include "tls.h"

#include <openssl/err.h>
#include <string.h>

#include "dtls.h"
#include "log.h"

/*
 * RFC 7443: "stun.turn" (TURN) and "stun.nat-discovery" (STUN), over TLS
 * and DTLS. A client that offers neither while offering ALPN gets what RFC
 * 7301 3.2 asks: "In the event that the server supports no protocols that
 * the client advertises, then the server SHALL respond with a fatal
 * 'no_application_protocol' alert." (A proxy in front routes by ALPN: the
 * web's h2 and http/1.1 never reach here.) No ALPN at all is fine.
 */
static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
                       unsigned int inlen, void *arg)
{
    static const char *const ours[] = {"stun.turn", "stun.nat-discovery"};
    (void)ssl;
    (void)arg;
    for (size_t k = 0; k < 2; k++)
        for (unsigned int i = 0; i < inlen;) {
            unsigned int n = in[i];
            if (i + 1 + n > inlen)
                return SSL_TLSEXT_ERR_ALERT_FATAL; /* a malformed list */
            if (n == strlen(ours[k]) && !memcmp(in + i + 1, ours[k], n)) {
                *out = in + i + 1;
                *outlen = (unsigned char)n;
                return SSL_TLSEXT_ERR_OK;
            }
            i += 1 + n;
        }
    return SSL_TLSEXT_ERR_ALERT_FATAL;
}

static SSL_CTX *load(const char *cert, const char *key, int dtls)
{
    SSL_CTX *ctx = SSL_CTX_new(dtls ? DTLS_server_method() : TLS_server_method());
    if (!ctx)
        return NULL;
    SSL_CTX_set_min_proto_version(ctx, dtls ? DTLS1_2_VERSION : TLS1_2_VERSION);
    if (dtls)
        skd_dtls_setup_ctx(ctx);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        unsigned long e = ERR_get_error();
        skd_error("cannot load the TLS certificate %s: %s", cert, ERR_reason_error_string(e));
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
        unsigned long e = ERR_get_error();
        skd_error("cannot load the TLS key %s (or it does not match the certificate): %s", key,
                  ERR_reason_error_string(e));
        SSL_CTX_free(ctx);
        return NULL;
    }
    ERR_clear_error();
    return ctx;
}

int skd_tls_open(skd_tls *t, const char *cert, const char *key)
{
    memset(t, 0, sizeof(*t));
    t->cert = cert;
    t->key = key;
    t->ctx = load(cert, key, 0);
    t->dtls_ctx = t->ctx ? load(cert, key, 1) : NULL;
    return t->ctx && t->dtls_ctx ? 0 : -1;
}

int skd_tls_reload(skd_tls *t, SSL_CTX *old[2])
{
    SSL_CTX *fresh = load(t->cert, t->key, 0);
    SSL_CTX *fresh_dtls = fresh ? load(t->cert, t->key, 1) : NULL;
    if (!fresh || !fresh_dtls) {
        SSL_CTX_free(fresh);
        return -1;
    }
    old[0] = t->ctx;
    old[1] = t->dtls_ctx;
    __atomic_store_n(&t->ctx, fresh, __ATOMIC_RELEASE);
    __atomic_store_n(&t->dtls_ctx, fresh_dtls, __ATOMIC_RELEASE);
    skd_info("TLS certificate %s reloaded", t->cert);
    return 0;
}

SSL_CTX *skd_tls_current(skd_tls *t)
{
    return __atomic_load_n(&t->ctx, __ATOMIC_ACQUIRE);
}

SSL_CTX *skd_dtls_current(skd_tls *t)
{
    return __atomic_load_n(&t->dtls_ctx, __ATOMIC_ACQUIRE);
}

void skd_tls_close(skd_tls *t)
{
    SSL_CTX_free(t->ctx);
    SSL_CTX_free(t->dtls_ctx);
    memset(t, 0, sizeof(*t));
}
