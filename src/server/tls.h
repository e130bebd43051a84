/* tls.h - the server's TLS context: loaded at start, swapped on SIGHUP. */
#ifndef STUNKITD_TLS_H
#define STUNKITD_TLS_H

#include <openssl/ssl.h>

typedef struct skd_tls {
    const char *cert, *key;
    SSL_CTX *ctx;         /* current; read by workers with an atomic load */
    SSL_CTX *dtls_ctx;    /* the same certificate for DTLS */
} skd_tls;

/* Loads cert and key; logs and returns -1 on failure. */
int skd_tls_open(skd_tls *t, const char *cert, const char *key);
/* Loads the files again; on success new connections use them and the
 * replaced contexts are returned in old[0..1] for the caller to retire (a
 * worker may be about to use one; sessions hold their own reference). On
 * failure the old ones stay. Returns 0 or -1 (logged). */
int skd_tls_reload(skd_tls *t, SSL_CTX *old[2]);
SSL_CTX *skd_tls_current(skd_tls *t);
SSL_CTX *skd_dtls_current(skd_tls *t);
void skd_tls_close(skd_tls *t);

#endif
