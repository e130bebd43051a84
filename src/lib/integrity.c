/*
 * integrity.c - checking MESSAGE-INTEGRITY, MESSAGE-INTEGRITY-SHA256 and
 * FINGERPRINT without touching the caller's buffer, HMAC through OpenSSL's
 * libcrypto, and the credential keys of RFC 8489 section 9.
 */
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <pthread.h>
#include <stddef.h>

#include "cursor.h"
#include "stunkit/integrity.h"

/* ---- HMAC ---- */

/*
 * One HMAC context per digest and thread, made on first use and re-keyed
 * for each MAC (EVP_MAC_init with a key reuses it): no allocation per check.
 * A thread-exit destructor frees them.
 */
static EVP_MAC *hmac_algo;
static pthread_once_t hmac_once = PTHREAD_ONCE_INIT;
static pthread_key_t hmac_key;

typedef struct hmac_ctxs {
    EVP_MAC_CTX *sha1, *sha256;
} hmac_ctxs;

static void hmac_ctxs_free(void *p)
{
    hmac_ctxs *c = p;
    EVP_MAC_CTX_free(c->sha1);
    EVP_MAC_CTX_free(c->sha256);
    OPENSSL_free(c);
}

static void hmac_fetch(void)
{
    hmac_algo = EVP_MAC_fetch(NULL, "HMAC", NULL);
    if (pthread_key_create(&hmac_key, hmac_ctxs_free) != 0) {
        EVP_MAC_free(hmac_algo);
        hmac_algo = NULL;
    }
}

static EVP_MAC_CTX *hmac_ctx(int sha256)
{
    hmac_ctxs *c = pthread_getspecific(hmac_key);
    if (!c) {
        c = OPENSSL_zalloc(sizeof(*c));
        if (!c || pthread_setspecific(hmac_key, c) != 0) {
            OPENSSL_free(c);
            return NULL;
        }
    }
    EVP_MAC_CTX **slot = sha256 ? &c->sha256 : &c->sha1;
    if (!*slot) {
        EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(hmac_algo);
        OSSL_PARAM params[2];
        params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, sha256 ? "SHA256" : "SHA1", 0);
        params[1] = OSSL_PARAM_construct_end();
        if (!ctx || EVP_MAC_CTX_set_params(ctx, params) != 1) {
            EVP_MAC_CTX_free(ctx);
            return NULL;
        }
        *slot = ctx;
    }
    return *slot;
}

static int hmac(int sha256, const uint8_t *key, size_t key_len, const uint8_t *p1, size_t n1, const uint8_t *p2,
                size_t n2, uint8_t *out, size_t out_len)
{
    pthread_once(&hmac_once, hmac_fetch);
    if (!hmac_algo)
        return STUNKIT_ERR_CRYPTO;
    EVP_MAC_CTX *ctx = hmac_ctx(sha256);
    if (!ctx)
        return STUNKIT_ERR_CRYPTO;
    /* An empty key is legal HMAC; OpenSSL wants a non-NULL pointer. */
    static const uint8_t empty_key[1];
    size_t got = 0;
    int ok = EVP_MAC_init(ctx, key_len ? key : empty_key, key_len, NULL) == 1 &&
             (n1 == 0 || EVP_MAC_update(ctx, p1, n1) == 1) && (n2 == 0 || EVP_MAC_update(ctx, p2, n2) == 1) &&
             EVP_MAC_final(ctx, out, &got, out_len) == 1 && got == out_len;
    return ok ? 0 : STUNKIT_ERR_CRYPTO;
}

int stunkit_hmac_sha1(const uint8_t *key, size_t key_len, const uint8_t *p1, size_t n1, const uint8_t *p2,
                      size_t n2, uint8_t out[20])
{
    return hmac(0, key, key_len, p1, n1, p2, n2, out, 20);
}

int stunkit_hmac_sha256(const uint8_t *key, size_t key_len, const uint8_t *p1, size_t n1, const uint8_t *p2,
                        size_t n2, uint8_t out[32])
{
    return hmac(1, key, key_len, p1, n1, p2, n2, out, 32);
}

int stunkit_ct_equal(const uint8_t *a, const uint8_t *b, size_t n)
{
    return CRYPTO_memcmp(a, b, n) == 0;
}

/* ---- checks ---- */

/*
 * The MAC input for an integrity attribute at offset off whose whole length
 * (header + value) is total: the message before it, with the header's length
 * field "adjusted to point to the end of the MESSAGE-INTEGRITY attribute"
 * (RFC 8489 14.5; 14.6 the same for MI-SHA256). The adjusted header is a
 * copy: the caller's buffer is never written.
 */
static void adjusted_header(const stunkit_msg *msg, size_t off, size_t total, uint8_t hdr[STUNKIT_HEADER_LEN])
{
    memcpy(hdr, msg->data, STUNKIT_HEADER_LEN);
    sk__put16(hdr + 2, (uint16_t)(off + total - STUNKIT_HEADER_LEN));
}

int stunkit_check_integrity(const stunkit_msg *msg, const uint8_t *key, size_t key_len)
{
    uint8_t hdr[STUNKIT_HEADER_LEN], mac[20];
    size_t off = msg->mi_off;
    if (!off)
        return STUNKIT_ERR_INTEGRITY_ABSENT;
    adjusted_header(msg, off, 24, hdr);
    if (stunkit_hmac_sha1(key, key_len, hdr, sizeof(hdr), msg->data + STUNKIT_HEADER_LEN, off - STUNKIT_HEADER_LEN,
                          mac) != 0)
        return STUNKIT_ERR_CRYPTO;
    return stunkit_ct_equal(mac, msg->data + off + 4, 20) ? 0 : STUNKIT_ERR_INTEGRITY_MISMATCH;
}

int stunkit_check_integrity_sha256(const stunkit_msg *msg, const uint8_t *key, size_t key_len)
{
    uint8_t hdr[STUNKIT_HEADER_LEN], mac[32];
    size_t off = msg->mi256_off;
    if (!off)
        return STUNKIT_ERR_INTEGRITY_ABSENT;
    size_t vlen = sk__get16(msg->data + off + 2); /* 16..32, checked by parse */
    adjusted_header(msg, off, 4 + vlen, hdr);
    if (stunkit_hmac_sha256(key, key_len, hdr, sizeof(hdr), msg->data + STUNKIT_HEADER_LEN,
                            off - STUNKIT_HEADER_LEN, mac) != 0)
        return STUNKIT_ERR_CRYPTO;
    /* RFC 8489 14.6: the value is "an initial portion of the HMAC-SHA-256". */
    return stunkit_ct_equal(mac, msg->data + off + 4, vlen) ? 0 : STUNKIT_ERR_INTEGRITY_MISMATCH;
}

int stunkit_check_fingerprint(const stunkit_msg *msg)
{
    uint8_t hdr[STUNKIT_HEADER_LEN];
    size_t off = msg->fp_off;
    if (!off)
        return STUNKIT_ERR_FINGERPRINT_ABSENT;
    /* FINGERPRINT is last, so the length field already points past it. */
    memcpy(hdr, msg->data, STUNKIT_HEADER_LEN);
    uint32_t crc = stunkit_crc32(0, hdr, sizeof(hdr));
    crc = stunkit_crc32(crc, msg->data + STUNKIT_HEADER_LEN, off - STUNKIT_HEADER_LEN);
    return (crc ^ STUNKIT_FINGERPRINT_XOR) == sk__get32(msg->data + off + 4) ? 0 : STUNKIT_ERR_FINGERPRINT_MISMATCH;
}

/* ---- keys ---- */

int stunkit_key_short_term(const char *password, size_t pw_len, uint8_t *key, size_t cap)
{
    /* RFC 8489 9.1.1: "key = OpaqueString(password)". */
    return stunkit_opaque_string(password, pw_len, (char *)key, cap);
}

int stunkit_key_long_term(uint16_t alg, const char *username, size_t user_len, const char *realm, size_t realm_len,
                          const char *password, size_t pw_len, uint8_t *key, size_t cap)
{
    char prealm[764], ppw[512];
    int rl, pl;
    const EVP_MD *md;
    size_t klen;

    if (alg == STUNKIT_PWALG_MD5) {
        md = EVP_md5();
        klen = 16;
    } else if (alg == STUNKIT_PWALG_SHA256) {
        md = EVP_sha256();
        klen = 32;
    } else {
        return STUNKIT_ERR_INVAL;
    }
    if (cap < klen)
        return STUNKIT_ERR_NOBUF;
    /* RFC 8489 9.2.2:
     *   key = MD5(username ":" OpaqueString(realm) ":" OpaqueString(password))
     * and the same with SHA-256 for PASSWORD-ALGORITHM SHA-256. */
    if ((rl = stunkit_opaque_string(realm, realm_len, prealm, sizeof(prealm))) < 0)
        return rl;
    if ((pl = stunkit_opaque_string(password, pw_len, ppw, sizeof(ppw))) < 0)
        return pl;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx)
        return STUNKIT_ERR_NOMEM;
    unsigned out_len = 0;
    int ok = EVP_DigestInit_ex(ctx, md, NULL) == 1 && EVP_DigestUpdate(ctx, username, user_len) == 1 &&
             EVP_DigestUpdate(ctx, ":", 1) == 1 && EVP_DigestUpdate(ctx, prealm, (size_t)rl) == 1 &&
             EVP_DigestUpdate(ctx, ":", 1) == 1 && EVP_DigestUpdate(ctx, ppw, (size_t)pl) == 1 &&
             EVP_DigestFinal_ex(ctx, key, &out_len) == 1 && out_len == klen;
    EVP_MD_CTX_free(ctx);
    OPENSSL_cleanse(ppw, sizeof(ppw));
    return ok ? (int)klen : STUNKIT_ERR_CRYPTO;
}

int stunkit_userhash(const char *username, size_t user_len, const char *realm, size_t realm_len, uint8_t out[32])
{
    /* RFC 8489 14.4: the username and the realm are processed with the
     * OpaqueString profile before hashing:
     *   userhash = SHA-256(OpaqueString(username) ":" OpaqueString(realm)) */
    char puser[764], prealm[764];
    int ul = stunkit_opaque_string(username, user_len, puser, sizeof(puser));
    if (ul < 0)
        return ul;
    int rl = stunkit_opaque_string(realm, realm_len, prealm, sizeof(prealm));
    if (rl < 0)
        return rl;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx)
        return STUNKIT_ERR_NOMEM;
    unsigned out_len = 0;
    int ok = EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 && EVP_DigestUpdate(ctx, puser, (size_t)ul) == 1 &&
             EVP_DigestUpdate(ctx, ":", 1) == 1 && EVP_DigestUpdate(ctx, prealm, (size_t)rl) == 1 &&
             EVP_DigestFinal_ex(ctx, out, &out_len) == 1 && out_len == 32;
    EVP_MD_CTX_free(ctx);
    return ok ? 0 : STUNKIT_ERR_CRYPTO;
}
