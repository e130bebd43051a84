/*
 * secret.c - keys from a secret both users know (stunkit/secret.h): the
 * room name, the ICE passwords, and the seals on the descriptions.
 *
 * RFC 5869 HKDF with SHA-256, one 32-byte block per key:
 *   PRK = HMAC(salt = "stunkit secret v1", IKM = secret)
 *   key = HMAC(PRK, info || 0x01)      info: "room", "description", "ice-pwd"
 */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <string.h>

#include "stunkit/error.h"
#include "stunkit/secret.h"

static const char SALT[] = "stunkit secret v1";

static void hmac256(const uint8_t *key, size_t key_len, const void *data, size_t len, uint8_t out[32])
{
    unsigned int n = 32;
    HMAC(EVP_sha256(), key, (int)key_len, data, len, out, &n);
}

/* HKDF-Expand for one block: T(1) = HMAC(PRK, info | 0x01). */
static void expand(const uint8_t prk[32], const char *info, uint8_t out[32])
{
    uint8_t buf[32];
    size_t n = strlen(info);
    memcpy(buf, info, n);
    buf[n] = 1;
    hmac256(prk, 32, buf, n + 1, out);
}

int stunkit_secret_init(stunkit_secret *s, const char *secret, size_t len)
{
    if (!s || !secret || !len)
        return STUNKIT_ERR_INVAL;
    uint8_t prk[32];
    hmac256((const uint8_t *)SALT, sizeof(SALT) - 1, secret, len, prk);
    expand(prk, "room", s->room_key);
    expand(prk, "description", s->desc_key);
    expand(prk, "ice-pwd", s->pwd_key);
    OPENSSL_cleanse(prk, sizeof(prk));
    return 0;
}

void stunkit_secret_clear(stunkit_secret *s)
{
    if (s)
        OPENSSL_cleanse(s, sizeof(*s));
}

static void hex(const uint8_t *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
}

int stunkit_secret_room(const stunkit_secret *s, const char *name, char *out, size_t cap)
{
    if (cap < 33)
        return STUNKIT_ERR_NOBUF;
    uint8_t mac[32];
    hmac256(s->room_key, sizeof(s->room_key), name ? name : "", name ? strlen(name) : 0, mac);
    char h[64];
    hex(mac, sizeof(mac), h);
    out[0] = 's';
    memcpy(out + 1, h, 31);
    out[32] = 0;
    return 32;
}

int stunkit_secret_ice_pwd(const stunkit_secret *s, const char *ufrag, char *out, size_t cap)
{
    if (!ufrag || !*ufrag)
        return STUNKIT_ERR_INVAL;
    if (cap < 33)
        return STUNKIT_ERR_NOBUF;
    uint8_t mac[32];
    hmac256(s->pwd_key, sizeof(s->pwd_key), ufrag, strlen(ufrag), mac);
    /* 24 bytes in base64: 32 characters of A-Z a-z 0-9 + /, all ice-chars
     * (RFC 8839 5.4), no padding */
    if (EVP_EncodeBlock((unsigned char *)out, mac, 24) != 32)
        return STUNKIT_ERR_INVAL;
    out[32] = 0;
    return 32;
}

int stunkit_secret_seal(const stunkit_secret *s, const char *desc, size_t len, char *out, size_t cap)
{
    if (cap < STUNKIT_SECRET_MAC_LINE_LEN + 1)
        return STUNKIT_ERR_NOBUF;
    uint8_t mac[32];
    hmac256(s->desc_key, sizeof(s->desc_key), desc, len, mac);
    memcpy(out, STUNKIT_SECRET_MAC_LINE, 16);
    hex(mac, sizeof(mac), out + 16);
    memcpy(out + 80, "\r\n", 3);
    return STUNKIT_SECRET_MAC_LINE_LEN;
}

int stunkit_secret_open(const stunkit_secret *s, const char *desc, size_t len, size_t *verified)
{
    *verified = 0;
    size_t line = 0; /* where the current line starts */
    while (line < len) {
        const char *nl = memchr(desc + line, '\n', len - line);
        if (!nl)
            break; /* a line still coming */
        size_t end = (size_t)(nl - desc) + 1, n = end - line;
        if (n >= 16 && !memcmp(desc + line, STUNKIT_SECRET_MAC_LINE, 16)) {
            char want[STUNKIT_SECRET_MAC_LINE_LEN + 1];
            stunkit_secret_seal(s, desc, line, want, sizeof(want));
            /* the line as sealed (CRLF), or with LF alone: the 64 digits count */
            if (n < 16 + 64 + 1 || CRYPTO_memcmp(desc + line + 16, want + 16, 64) != 0 ||
                !(n == 16 + 64 + 1 || (n == 16 + 64 + 2 && desc[line + 80] == '\r')))
                return STUNKIT_ERR_INTEGRITY_MISMATCH;
            *verified = end;
        }
        line = end;
    }
    return 0;
}
