/*
 * integrity_test.c - HMACs, keys, OpaqueString, CRC-32, and that checking
 * never writes to the message.
 */
#include <stdlib.h>

#include "stunkit/stunkit.h"
#include "test.h"
#include "vectors.h"

static void test_crc32(void)
{
    /* The CRC-32 check value (RFC 3720 B.4 lists it for CRC32; zlib too). */
    CHECK_EQ(stunkit_crc32(0, (const uint8_t *)"123456789", 9), 0xCBF43926u);
    CHECK_EQ(stunkit_crc32(0, NULL, 0), 0);
    /* Incremental equals one-shot at every split. */
    uint8_t data[100];
    for (int i = 0; i < 100; i++)
        data[i] = (uint8_t)(i * 7 + 3);
    uint32_t whole = stunkit_crc32(0, data, sizeof(data));
    for (size_t k = 0; k <= sizeof(data); k++)
        CHECK_EQ(stunkit_crc32(stunkit_crc32(0, data, k), data + k, sizeof(data) - k), whole);
}

static void test_hmac_known_answers(void)
{
    /* RFC 2202 test case 2 (HMAC-SHA1) and RFC 4231 test case 2 (HMAC-SHA256). */
    uint8_t mac[32], want[32];
    const char *data = "what do ya want for nothing?";
    CHECK_EQ(stunkit_hmac_sha1((const uint8_t *)"Jefe", 4, (const uint8_t *)data, 10, (const uint8_t *)data + 10,
                               strlen(data) - 10, mac),
             0);
    t_hex("effcdf6ae5eb2fa2d27416d5f184df9c259a7c79", want, 20);
    CHECK_MEM(mac, want, 20);
    CHECK_EQ(stunkit_hmac_sha256((const uint8_t *)"Jefe", 4, (const uint8_t *)data, strlen(data), NULL, 0, mac), 0);
    t_hex("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843", want, 32);
    CHECK_MEM(mac, want, 32);
}

static void test_check_does_not_write(void)
{
    /* The buffer is made read-only in spirit: we compare before and after
     * checking every vector with right and wrong keys. */
    for (size_t v = 0; v < 4; v++) {
        uint8_t buf[512], copy[512];
        size_t n = t_hex(rfc5769_all[v], buf, sizeof(buf));
        memcpy(copy, buf, n);
        stunkit_msg m;
        CHECK_EQ(stunkit_msg_parse(&m, buf, n), 0);
        stunkit_check_integrity(&m, (const uint8_t *)RFC5769_PASSWORD, strlen(RFC5769_PASSWORD));
        stunkit_check_integrity(&m, (const uint8_t *)"x", 1);
        stunkit_check_integrity_sha256(&m, (const uint8_t *)"x", 1);
        stunkit_check_fingerprint(&m);
        CHECK_MEM(buf, copy, n);
    }
}

static void test_tamper(void)
{
    /* Flipping any bit before MESSAGE-INTEGRITY breaks it; any bit before
     * FINGERPRINT breaks that. */
    uint8_t buf[512];
    size_t n = t_hex(rfc5769_ipv4_response, buf, sizeof(buf));
    for (size_t i = 0; i < n - 8; i++) {
        for (int bit = 0; bit < 8; bit += 3) {
            buf[i] ^= (uint8_t)(1u << bit);
            stunkit_msg m;
            if (stunkit_msg_parse(&m, buf, n) == 0) {
                if (i < m.mi_off + 24)
                    CHECK(stunkit_check_integrity(&m, (const uint8_t *)RFC5769_PASSWORD,
                                                  strlen(RFC5769_PASSWORD)) != 0);
                CHECK(stunkit_check_fingerprint(&m) != 0);
            }
            buf[i] ^= (uint8_t)(1u << bit);
        }
    }
}

static void test_keys(void)
{
    uint8_t key[64], want[32];
    /* Known answers computed with md5sum / sha256sum of "user:realm:pass". */
    int n = stunkit_key_long_term(STUNKIT_PWALG_MD5, "user", 4, "realm", 5, "pass", 4, key, sizeof(key));
    CHECK_EQ(n, 16);
    /* MD5("user:realm:pass") */
    t_hex("8493fbc53ba582fb4c044c456bdc40eb", want, 16);
    CHECK_MEM(key, want, 16);
    n = stunkit_key_long_term(STUNKIT_PWALG_SHA256, "user", 4, "realm", 5, "pass", 4, key, sizeof(key));
    CHECK_EQ(n, 32);
    /* SHA-256("user:realm:pass") */
    t_hex("07e934117abd40836e7c6329b54731b2b2d2a5f9a71f544922d75e0730d8251b", want, 32);
    CHECK_MEM(key, want, 32);
    CHECK_EQ(stunkit_key_long_term(0x7777, "u", 1, "r", 1, "p", 1, key, sizeof(key)), STUNKIT_ERR_INVAL);
    CHECK_EQ(stunkit_key_long_term(STUNKIT_PWALG_SHA256, "u", 1, "r", 1, "p", 1, key, 16), STUNKIT_ERR_NOBUF);
    CHECK_EQ(stunkit_key_long_term(STUNKIT_PWALG_MD5, "u", 1, "r", 1, "", 0, key, sizeof(key)),
             STUNKIT_ERR_BAD_STRING);
    /* a password with a no-break space keys the same as with a plain space */
    uint8_t k1[32], k2[32];
    stunkit_key_long_term(STUNKIT_PWALG_MD5, "u", 1, "r", 1, "a\xc2\xa0" "b", 4, k1, sizeof(k1));
    stunkit_key_long_term(STUNKIT_PWALG_MD5, "u", 1, "r", 1, "a b", 3, k2, sizeof(k2));
    CHECK_MEM(k1, k2, 16);
    uint8_t uh[32];
    CHECK_EQ(stunkit_userhash("user", 4, "realm", 5, uh), 0);
}

static void test_opaque_string(void)
{
    char out[64];
    CHECK_EQ(stunkit_opaque_string("secret", 6, out, sizeof(out)), 6);
    CHECK_MEM(out, "secret", 6);
    /* U+3000 IDEOGRAPHIC SPACE and U+00A0 map to U+0020 */
    CHECK_EQ(stunkit_opaque_string("a\xe3\x80\x80z\xc2\xa0", 7, out, sizeof(out)), 4);
    CHECK_MEM(out, "a z ", 4);
    /* non-Latin text passes unchanged */
    CHECK_EQ(stunkit_opaque_string(RFC5769_LT_USERNAME, 18, out, sizeof(out)), 18);
    CHECK_MEM(out, RFC5769_LT_USERNAME, 18);
    /* rejected: empty, control characters, invalid UTF-8, overlong, surrogate */
    CHECK_EQ(stunkit_opaque_string("", 0, out, sizeof(out)), STUNKIT_ERR_BAD_STRING);
    CHECK_EQ(stunkit_opaque_string("a\tb", 3, out, sizeof(out)), STUNKIT_ERR_BAD_STRING);
    CHECK_EQ(stunkit_opaque_string("a\xc2\x85", 3, out, sizeof(out)), STUNKIT_ERR_BAD_STRING); /* U+0085 */
    CHECK_EQ(stunkit_opaque_string("\xff", 1, out, sizeof(out)), STUNKIT_ERR_BAD_STRING);
    CHECK_EQ(stunkit_opaque_string("\xc0\xaf", 2, out, sizeof(out)), STUNKIT_ERR_BAD_STRING);
    CHECK_EQ(stunkit_opaque_string("\xed\xa0\x80", 3, out, sizeof(out)), STUNKIT_ERR_BAD_STRING);
    CHECK_EQ(stunkit_opaque_string("\xe3\x80", 2, out, sizeof(out)), STUNKIT_ERR_BAD_STRING);
    CHECK_EQ(stunkit_opaque_string("abcdef", 6, out, 5), STUNKIT_ERR_NOBUF);
}

int main(void)
{
    RUN(test_crc32);
    RUN(test_hmac_known_answers);
    RUN(test_check_does_not_write);
    RUN(test_tamper);
    RUN(test_keys);
    RUN(test_opaque_string);
    TEST_END();
}
