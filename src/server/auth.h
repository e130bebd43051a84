/*
 * auth.h - the server's credential checks (RFC 8489 section 9): short-term
 * credentials, long-term credentials with a stateless expiring NONCE, and
 * time-limited credentials from a shared secret (the form of coturn's REST
 * API), with MESSAGE-INTEGRITY-SHA256, PASSWORD-ALGORITHMS and USERHASH.
 * Off unless credentials or a secret are configured.
 */
#ifndef STUNKITD_AUTH_H
#define STUNKITD_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "stunkit/stunkit.h"

#define SKD_AUTH_MAX_USERS 256
#define SKD_AUTH_MAX_SECRETS 8
#define SKD_NONCE_LEN 37

typedef struct skd_credential {
    char name[128];
    size_t name_len;
    char password[128];
    size_t password_len;
    uint8_t userhash[32];
    /* keys derived once, at load (RFC 8489 9.1.2 short-term, 9.2.2
     * long-term MD5 and SHA-256): no key derivation per request */
    uint8_t key_short[64];
    size_t key_short_len;
    uint8_t key_md5[16];
    uint8_t key_sha256[32];
} skd_credential;

typedef struct skd_auth {
    int enabled;
    int short_term;       /* short-term credentials: no REALM, no NONCE */
    char realm[128];
    size_t realm_len;
    skd_credential users[SKD_AUTH_MAX_USERS];
    size_t n_users;
    /* REST-API shared secrets: every one verifies (the credential service
     * signs with the newest; the old ones stay until the credentials made
     * from them have expired: rotation without a flag day) */
    uint8_t secrets[SKD_AUTH_MAX_SECRETS][128];
    size_t secret_lens[SKD_AUTH_MAX_SECRETS];
    size_t n_secrets;
    /* The NONCE key: from nonce-key when given (one for the fleet: a
     * client whose next request reaches another server keeps its nonce),
     * else from the first secret, else random (this server only). */
    uint8_t nonce_seed[128];
    size_t nonce_seed_len;
    uint8_t nonce_key[32];
    uint32_t nonce_lifetime_s;
    skd_credential dummy; /* unknown users cost the same work as known ones */
} skd_auth;

/* Adds "NAME:PASSWORD". Returns 0, or -1 with why set. */
int skd_auth_add_user(skd_auth *a, const char *spec, const char **why);
/* Adds a REST secret (8-128 bytes). 0, or -1 with why set. */
int skd_auth_add_secret(skd_auth *a, const char *secret, size_t len, const char **why);
/* After every user and the realm are known: userhashes, the nonce key. */
int skd_auth_finish(skd_auth *a);

typedef struct skd_auth_verdict {
    int code;        /* 0: authenticated; else 400, 401 or 438 */
    int challenge;   /* a 401/438 that carries REALM, NONCE, PASSWORD-ALGORITHMS */
    const char *reason;
    uint8_t key[STUNKIT_KEY_MAX]; /* the key for the answer's integrity */
    size_t key_len;
    int sha256;      /* answer with MESSAGE-INTEGRITY-SHA256 */
    char user[128];  /* authenticated: the user's name, whether the request named it by USERNAME or USERHASH */
    size_t user_len;
} skd_auth_verdict;

/* Checks a parsed request from client at unix time now_s; returns v->code. */
int skd_auth_check(const skd_auth *a, const stunkit_msg *m, const stunkit_addr *client, uint64_t now_s,
                   skd_auth_verdict *v);

/* A fresh NONCE for client (SKD_NONCE_LEN bytes, not NUL terminated). */
void skd_auth_nonce(const skd_auth *a, const stunkit_addr *client, uint64_t now_s, char out[SKD_NONCE_LEN]);

/* The REST-API password for a username: base64(HMAC-SHA1(secret, username)). */
int skd_auth_rest_password(const uint8_t *secret, size_t secret_len, const char *user, size_t user_len, char *out,
                           size_t cap);

#endif
