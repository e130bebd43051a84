/*
 * auth_client.c - a client's half of long-term credentials (RFC 8489 9.2),
 * the one copy the Binding driver, the TURN client and the rendezvous use.
 */
#include "auth_client.h"

#include <string.h>

#include <openssl/crypto.h>

#define COOKIE "obMatJos2" /* RFC 8489 9.2: the nonce cookie */
#define FEATURE_PASSWORD_ALGORITHMS 0x1u
#define FEATURE_USERNAME_ANONYMITY 0x2u

int sk_auth_init(sk_auth_client *a, const char *username, const char *password)
{
    memset(a, 0, sizeof(*a));
    size_t ul = username ? strlen(username) : 0, pl = password ? strlen(password) : 0;
    if (ul >= sizeof(a->username) || pl >= sizeof(a->password))
        return -1;
    memcpy(a->username, username ? username : "", ul);
    memcpy(a->password, password ? password : "", pl);
    return 0;
}

static int b64_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    return c == '+' ? 62 : c == '/' ? 63 : -1;
}

/* The STUN Security Features of a nonce that starts with the cookie (18.1:
 * 24 bits in four base64 characters; erratum 6290: "Bit 0 is the rightmost
 * bit"), 0 for a nonce without it. */
static unsigned features(const char *nonce, size_t len)
{
    if (len < 13 || memcmp(nonce, COOKIE, 9) != 0)
        return 0;
    unsigned v = 0;
    for (int i = 9; i < 13; i++) {
        int d = b64_value(nonce[i]);
        if (d < 0)
            return 0;
        v = v << 6 | (unsigned)d;
    }
    return v;
}

static int copy_text(const stunkit_msg *m, uint16_t type, char *out, size_t cap, size_t *len)
{
    stunkit_attr at;
    if (stunkit_msg_find(m, type, &at) != 0 || !at.len || at.len >= cap)
        return -1;
    memcpy(out, at.value, at.len);
    out[at.len] = '\0';
    *len = at.len;
    return 0;
}

int sk_auth_challenge(sk_auth_client *a, const stunkit_msg *m, int code, int *tries)
{
    /* a 401 once per request (a second one: the credentials are wrong), a
     * 438 Stale Nonce up to twice */
    if (!((code == 401 && *tries == 0) || (code == 438 && *tries < 3)) || !a->username[0])
        return 0;
    sk_auth_client n = *a;
    if (copy_text(m, STUNKIT_ATTR_REALM, n.realm, sizeof(n.realm), &n.realm_len) != 0 ||
        copy_text(m, STUNKIT_ATTR_NONCE, n.nonce, sizeof(n.nonce), &n.nonce_len) != 0) {
        OPENSSL_cleanse(&n, sizeof(n));
        return 0;
    }
    unsigned feat = features(n.nonce, n.nonce_len);
    stunkit_attr algs;
    n.offered_algs = stunkit_msg_find(m, STUNKIT_ATTR_PASSWORD_ALGORITHMS, &algs) == 0 && algs.len <= sizeof(n.algs);
    /* 9.2.5: "If the 'nonce cookie' was present and had the STUN Security
     * Feature 'Password algorithms' bit set to 1 but no PASSWORD-ALGORITHMS
     * attribute is present, then the client MUST NOT retry the request with
     * a new transaction" (an attacker stripped it to force MD5) */
    if ((feat & FEATURE_PASSWORD_ALGORITHMS) && !n.offered_algs) {
        OPENSSL_cleanse(&n, sizeof(n));
        return 0;
    }
    /* 9.2.5: PASSWORD-ALGORITHM is "the first algorithm supported on the
     * list"; without a list, MD5 */
    n.alg = STUNKIT_PWALG_MD5;
    n.algs_len = 0;
    if (n.offered_algs) {
        memcpy(n.algs, algs.value, algs.len);
        n.algs_len = algs.len;
        uint16_t alg;
        int chosen = 0;
        for (size_t i = 0; !chosen && stunkit_attr_password_algorithm(&algs, i, &alg, NULL, NULL) == 0; i++)
            if (alg == STUNKIT_PWALG_MD5 || alg == STUNKIT_PWALG_SHA256) {
                n.alg = alg;
                chosen = 1;
            }
        if (!chosen) {
            OPENSSL_cleanse(&n, sizeof(n));
            return 0;
        }
    }
    /* 9.2.5: "If the 'nonce cookie' is present and has the STUN Security
     * Feature 'Username anonymity' bit set to 1, then the USERHASH attribute
     * MUST be used; else, the USERNAME attribute MUST be used." */
    n.userhash = (feat & FEATURE_USERNAME_ANONYMITY) != 0;
    if (n.userhash && stunkit_userhash(n.username, strlen(n.username), n.realm, n.realm_len, n.hash) != 0) {
        OPENSSL_cleanse(&n, sizeof(n));
        return 0;
    }
    int k = stunkit_key_long_term(n.alg, n.username, strlen(n.username), n.realm, n.realm_len, n.password,
                                  strlen(n.password), n.key, sizeof(n.key));
    if (k <= 0) {
        OPENSSL_cleanse(&n, sizeof(n));
        return 0;
    }
    n.key_len = (size_t)k;
    *a = n;
    OPENSSL_cleanse(&n, sizeof(n));
    (*tries)++;
    return 1;
}

int sk_auth_ready(const sk_auth_client *a)
{
    return a->key_len > 0;
}

int sk_auth_sign(const sk_auth_client *a, stunkit_writer *w)
{
    if (!a->key_len)
        return 0;
    /* 9.2.4: USERNAME or USERHASH, REALM, NONCE; the server's
     * PASSWORD-ALGORITHMS copied back with the PASSWORD-ALGORITHM chosen;
     * MESSAGE-INTEGRITY-SHA256 with a SHA-256 key */
    if (a->userhash)
        stunkit_put(w, STUNKIT_ATTR_USERHASH, a->hash, sizeof(a->hash));
    else
        stunkit_put(w, STUNKIT_ATTR_USERNAME, a->username, strlen(a->username));
    stunkit_put(w, STUNKIT_ATTR_REALM, a->realm, a->realm_len);
    stunkit_put(w, STUNKIT_ATTR_NONCE, a->nonce, a->nonce_len);
    if (a->offered_algs) {
        stunkit_put(w, STUNKIT_ATTR_PASSWORD_ALGORITHMS, a->algs, a->algs_len);
        stunkit_put_password_algorithm(w, a->alg);
    }
    if (a->alg == STUNKIT_PWALG_SHA256)
        return stunkit_put_integrity_sha256(w, a->key, a->key_len, 0);
    return stunkit_put_integrity(w, a->key, a->key_len);
}

static size_t padded(size_t n)
{
    return 4 + ((n + 3) & ~(size_t)3);
}

size_t sk_auth_overhead(const sk_auth_client *a)
{
    if (!a->key_len)
        return 0;
    size_t n = a->userhash ? padded(32) : padded(strlen(a->username));
    n += padded(a->realm_len) + padded(a->nonce_len);
    if (a->offered_algs)
        n += padded(a->algs_len) + padded(4);
    return n + (a->alg == STUNKIT_PWALG_SHA256 ? 4 + 32 : 4 + 20);
}

int sk_auth_verify(const sk_auth_client *a, const stunkit_msg *m)
{
    if (!a->key_len)
        return -1;
    if (m->mi256_off)
        return stunkit_check_integrity_sha256(m, a->key, a->key_len) == 0 ? 0 : -1;
    return stunkit_check_integrity(m, a->key, a->key_len) == 0 ? 0 : -1;
}

void sk_auth_clear(sk_auth_client *a)
{
    OPENSSL_cleanse(a, sizeof(*a));
}
