/*
 * stunkit/integrity.h - MESSAGE-INTEGRITY, MESSAGE-INTEGRITY-SHA256,
 * FINGERPRINT and the credential keys of RFC 8489 section 9.
 *
 * Checks never modify the message: the adjusted length field is fed to the
 * MAC from a copy of the header. MACs are compared in constant time.
 */
#ifndef STUNKIT_INTEGRITY_H
#define STUNKIT_INTEGRITY_H

#include <stddef.h>
#include <stdint.h>

#include "stunkit/export.h"
#include "stunkit/msg.h"

#ifdef __cplusplus
extern "C" {
#endif

#define STUNKIT_KEY_MAX 64 /* longest key we derive or accept from a password */

/* 0 ok, STUNKIT_ERR_INTEGRITY_ABSENT, STUNKIT_ERR_INTEGRITY_MISMATCH. */
STUNKIT_API int stunkit_check_integrity(const stunkit_msg *msg, const uint8_t *key, size_t key_len);
STUNKIT_API int stunkit_check_integrity_sha256(const stunkit_msg *msg, const uint8_t *key, size_t key_len);
/* 0 ok, STUNKIT_ERR_FINGERPRINT_ABSENT, STUNKIT_ERR_FINGERPRINT_MISMATCH. */
STUNKIT_API int stunkit_check_fingerprint(const stunkit_msg *msg);

/* CRC-32 (ISO-HDLC, as in zlib and RFC 1952), continuing from crc (0 first). */
STUNKIT_API uint32_t stunkit_crc32(uint32_t crc, const uint8_t *p, size_t n);
/* The slicing-by-8 tables behind stunkit_crc32() ([8][256]: table 0 the
 * byte-wise table of the reflected polynomial 0xEDB88320, table t advancing
 * table t-1 by one more byte), for code that computes FINGERPRINT where it
 * cannot call the library: stunkitd's XDP program gets them as its
 * read-only data. */
STUNKIT_API const uint32_t (*stunkit_crc32_tables(void))[256];

/*
 * RFC 8265 OpaqueString preparation, as RFC 8489 requires for passwords and
 * realms. Covered: UTF-8 validation; non-ASCII spaces (Unicode Zs) mapped to
 * U+0020; control characters and empty strings rejected. NFC: text whose code
 * points are all below U+0300 is NFC by construction and passes unchanged;
 * text with higher code points is passed unchanged on the assumption that it
 * is already NFC (we carry no Unicode normalisation tables).
 * Returns the prepared length, STUNKIT_ERR_BAD_STRING or STUNKIT_ERR_NOBUF.
 */
STUNKIT_API int stunkit_opaque_string(const char *in, size_t in_len, char *out, size_t cap);

/* Short-term key: OpaqueString(password). Returns the key length. */
STUNKIT_API int stunkit_key_short_term(const char *password, size_t pw_len, uint8_t *key, size_t cap);

/*
 * Long-term key (RFC 8489 section 9.2.2):
 *   MD5:     key = MD5(username ":" OpaqueString(realm) ":" OpaqueString(password))
 *   SHA-256: key = SHA-256(username ":" OpaqueString(realm) ":" OpaqueString(password))
 * alg is STUNKIT_PWALG_MD5 or STUNKIT_PWALG_SHA256. Returns the key length
 * (16 or 32). The username is used as it stands in USERNAME.
 */
STUNKIT_API int stunkit_key_long_term(uint16_t alg, const char *username, size_t user_len, const char *realm,
                                      size_t realm_len, const char *password, size_t pw_len, uint8_t *key,
                                      size_t cap);

/* USERHASH (RFC 8489 section 14.4): SHA-256(username ":" realm), 32 bytes. */
STUNKIT_API int stunkit_userhash(const char *username, size_t user_len, const char *realm, size_t realm_len,
                                 uint8_t out[32]);

/* HMAC-SHA1 / HMAC-SHA256 over the concatenation of up to 3 pieces.
 * Exposed for the server's nonce cookie and the REST-API credentials. */
STUNKIT_API int stunkit_hmac_sha1(const uint8_t *key, size_t key_len, const uint8_t *p1, size_t n1,
                                  const uint8_t *p2, size_t n2, uint8_t out[20]);
STUNKIT_API int stunkit_hmac_sha256(const uint8_t *key, size_t key_len, const uint8_t *p1, size_t n1,
                                    const uint8_t *p2, size_t n2, uint8_t out[32]);

/* Constant-time comparison: 1 if equal. */
STUNKIT_API int stunkit_ct_equal(const uint8_t *a, const uint8_t *b, size_t n);

#ifdef __cplusplus
}
#endif
#endif
