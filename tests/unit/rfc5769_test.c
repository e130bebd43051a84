/*
 * rfc5769_test.c - the four RFC 5769 vectors: decoded, verified, and encoded
 * again from their parts.
 *
 * Re-encoding: 2.4 comes out byte for byte. In 2.1-2.3 the RFC pads SOFTWARE
 * and USERNAME with spaces, as RFC 5389 allowed ("the padding bits are
 * ignored, and may be any value"); RFC 8489 14 now says "The padding bits
 * MUST be set to zero on sending and MUST be ignored by the receiver", so our
 * writer pads with zeros. There every byte outside padding must match, except
 * MESSAGE-INTEGRITY and FINGERPRINT, which cover the padding and must verify.
 */
#include "stunkit/stunkit.h"
#include "test.h"
#include "vectors.h"

static const uint8_t tid_a[12] = {0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae};

static size_t load(const char *hex, uint8_t *buf)
{
    return t_hex(hex, buf, 512);
}

/* Compares two encodings, skipping padding bytes (per the parsed layout of
 * `ref`) and the values of MESSAGE-INTEGRITY and FINGERPRINT. */
static void compare_outside_padding(const uint8_t *ref, size_t ref_len, const uint8_t *got, size_t got_len)
{
    stunkit_msg m;
    CHECK_EQ(got_len, ref_len);
    if (got_len != ref_len || stunkit_msg_parse(&m, ref, ref_len) != 0)
        return;
    CHECK_MEM(ref, got, STUNKIT_HEADER_LEN);
    stunkit_attr_iter it;
    stunkit_attr a;
    stunkit_attr_iter_init(&it, &m, 1);
    while (stunkit_attr_next(&it, &a)) {
        CHECK_MEM(ref + a.off, got + a.off, 4);
        if (a.type != STUNKIT_ATTR_MESSAGE_INTEGRITY && a.type != STUNKIT_ATTR_FINGERPRINT)
            CHECK_MEM(ref + a.off + 4, got + a.off + 4, a.len);
    }
}

static void test_request(void)
{
    uint8_t buf[512], out[512];
    size_t n = load(rfc5769_request, buf);
    stunkit_msg m;
    stunkit_attr a;
    uint32_t u32;
    uint64_t u64;

    CHECK_EQ(n, 108);
    CHECK_EQ(stunkit_msg_parse(&m, buf, n), 0);
    CHECK_EQ(m.method, STUNKIT_METHOD_BINDING);
    CHECK_EQ(m.klass, STUNKIT_CLASS_REQUEST);
    CHECK_EQ(m.rfc3489, 0);
    CHECK_MEM(m.tid, tid_a, 12);
    CHECK_EQ(m.n_attrs, 6);
    CHECK_EQ(m.n_unknown, 0);
    CHECK_EQ(stunkit_msg_find(&m, STUNKIT_ATTR_SOFTWARE, &a), 0);
    CHECK(a.len == 16 && memcmp(a.value, "STUN test client", 16) == 0);
    CHECK_EQ(stunkit_msg_find(&m, STUNKIT_ATTR_PRIORITY, &a), 0);
    CHECK(stunkit_attr_u32(&a, &u32) == 0 && u32 == 0x6e0001ff);
    CHECK_EQ(stunkit_msg_find(&m, STUNKIT_ATTR_ICE_CONTROLLED, &a), 0);
    CHECK(stunkit_attr_u64(&a, &u64) == 0 && u64 == 0x932ff9b151263b36ull);
    CHECK_EQ(stunkit_msg_find(&m, STUNKIT_ATTR_USERNAME, &a), 0);
    CHECK(a.len == 9 && memcmp(a.value, "evtj:h6vY", 9) == 0);

    uint8_t key[64];
    int klen = stunkit_key_short_term(RFC5769_PASSWORD, strlen(RFC5769_PASSWORD), key, sizeof(key));
    CHECK_EQ(klen, 22);
    CHECK_EQ(stunkit_check_integrity(&m, key, (size_t)klen), 0);
    CHECK_EQ(stunkit_check_integrity(&m, (const uint8_t *)"VOkJxbRl1RmTxUk/WvJxBT", 22),
             STUNKIT_ERR_INTEGRITY_MISMATCH);
    CHECK_EQ(stunkit_check_fingerprint(&m), 0);
    CHECK_EQ(stunkit_check_integrity_sha256(&m, key, (size_t)klen), STUNKIT_ERR_INTEGRITY_ABSENT);

    stunkit_writer w;
    stunkit_writer_init(&w, out, sizeof(out), STUNKIT_METHOD_BINDING, STUNKIT_CLASS_REQUEST, tid_a);
    stunkit_put(&w, STUNKIT_ATTR_SOFTWARE, "STUN test client", 16);
    stunkit_put_u32(&w, STUNKIT_ATTR_PRIORITY, 0x6e0001ff);
    stunkit_put_u64(&w, STUNKIT_ATTR_ICE_CONTROLLED, 0x932ff9b151263b36ull);
    stunkit_put(&w, STUNKIT_ATTR_USERNAME, "evtj:h6vY", 9);
    stunkit_put_integrity(&w, key, (size_t)klen);
    stunkit_put_fingerprint(&w);
    int len = stunkit_writer_finish(&w);
    CHECK_EQ(len, 108);
    compare_outside_padding(buf, n, out, (size_t)len);
    stunkit_msg m2;
    CHECK_EQ(stunkit_msg_parse(&m2, out, (size_t)len), 0);
    CHECK_EQ(stunkit_check_integrity(&m2, key, (size_t)klen), 0);
    CHECK_EQ(stunkit_check_fingerprint(&m2), 0);
}

static void check_response(const char *hex, const char *want_addr, uint16_t family)
{
    uint8_t buf[512], out[512];
    size_t n = load(hex, buf);
    stunkit_msg m;
    stunkit_attr a;
    stunkit_addr addr;
    char text[STUNKIT_ADDRSTRLEN];

    CHECK_EQ(stunkit_msg_parse(&m, buf, n), 0);
    CHECK_EQ(m.klass, STUNKIT_CLASS_SUCCESS);
    CHECK_EQ(m.method, STUNKIT_METHOD_BINDING);
    CHECK_EQ(stunkit_msg_find(&m, STUNKIT_ATTR_XOR_MAPPED_ADDRESS, &a), 0);
    CHECK_EQ(stunkit_attr_addr(&m, &a, &addr), 0);
    CHECK_EQ(addr.family, family);
    CHECK(stunkit_addr_format(&addr, text, sizeof(text)) > 0);
    CHECK_STR(text, want_addr);
    CHECK_EQ(stunkit_check_integrity(&m, (const uint8_t *)RFC5769_PASSWORD, strlen(RFC5769_PASSWORD)), 0);
    CHECK_EQ(stunkit_check_fingerprint(&m), 0);

    stunkit_writer w;
    stunkit_writer_init(&w, out, sizeof(out), STUNKIT_METHOD_BINDING, STUNKIT_CLASS_SUCCESS, tid_a);
    stunkit_put(&w, STUNKIT_ATTR_SOFTWARE, "test vector", 11);
    stunkit_put_addr(&w, STUNKIT_ATTR_XOR_MAPPED_ADDRESS, &addr);
    stunkit_put_integrity(&w, (const uint8_t *)RFC5769_PASSWORD, strlen(RFC5769_PASSWORD));
    stunkit_put_fingerprint(&w);
    int len = stunkit_writer_finish(&w);
    CHECK_EQ(len, (int)n);
    compare_outside_padding(buf, n, out, (size_t)len);
    stunkit_msg m2;
    CHECK_EQ(stunkit_msg_parse(&m2, out, (size_t)len), 0);
    CHECK_EQ(stunkit_check_integrity(&m2, (const uint8_t *)RFC5769_PASSWORD, strlen(RFC5769_PASSWORD)), 0);
    CHECK_EQ(stunkit_check_fingerprint(&m2), 0);
}

static void test_ipv4_response(void)
{
    check_response(rfc5769_ipv4_response, "192.0.2.1:32853", STUNKIT_AF_INET);
}

static void test_ipv6_response(void)
{
    check_response(rfc5769_ipv6_response, "[2001:db8:1234:5678:11:2233:4455:6677]:32853", STUNKIT_AF_INET6);
}

static void test_long_term(void)
{
    uint8_t buf[512], out[512], key[32];
    size_t n = load(rfc5769_long_term, buf);
    stunkit_msg m;
    stunkit_attr a;
    static const uint8_t tid_b[12] = {0x78, 0xad, 0x34, 0x33, 0xc6, 0xad, 0x72, 0xc0, 0x29, 0xda, 0x41, 0x2e};

    CHECK_EQ(stunkit_msg_parse(&m, buf, n), 0);
    CHECK_MEM(m.tid, tid_b, 12);
    CHECK_EQ(stunkit_msg_find(&m, STUNKIT_ATTR_USERNAME, &a), 0);
    CHECK(a.len == 18 && memcmp(a.value, RFC5769_LT_USERNAME, 18) == 0);
    CHECK_EQ(stunkit_msg_find(&m, STUNKIT_ATTR_NONCE, &a), 0);
    CHECK(a.len == 28 && memcmp(a.value, RFC5769_LT_NONCE, 28) == 0);
    CHECK_EQ(stunkit_msg_find(&m, STUNKIT_ATTR_REALM, &a), 0);
    CHECK(a.len == 11 && memcmp(a.value, RFC5769_LT_REALM, 11) == 0);
    CHECK_EQ(stunkit_check_fingerprint(&m), STUNKIT_ERR_FINGERPRINT_ABSENT);

    int klen = stunkit_key_long_term(STUNKIT_PWALG_MD5, RFC5769_LT_USERNAME, 18, RFC5769_LT_REALM, 11,
                                     RFC5769_LT_PASSWORD, 9, key, sizeof(key));
    CHECK_EQ(klen, 16);
    CHECK_EQ(stunkit_check_integrity(&m, key, 16), 0);
    uint8_t wrong[32];
    stunkit_key_long_term(STUNKIT_PWALG_MD5, RFC5769_LT_USERNAME, 18, RFC5769_LT_REALM, 11, "thematrix", 9, wrong,
                          sizeof(wrong));
    CHECK_EQ(stunkit_check_integrity(&m, wrong, 16), STUNKIT_ERR_INTEGRITY_MISMATCH);

    /* Byte for byte: the padding in this vector is zero. */
    stunkit_writer w;
    stunkit_writer_init(&w, out, sizeof(out), STUNKIT_METHOD_BINDING, STUNKIT_CLASS_REQUEST, tid_b);
    stunkit_put(&w, STUNKIT_ATTR_USERNAME, RFC5769_LT_USERNAME, 18);
    stunkit_put(&w, STUNKIT_ATTR_NONCE, RFC5769_LT_NONCE, 28);
    stunkit_put(&w, STUNKIT_ATTR_REALM, RFC5769_LT_REALM, 11);
    stunkit_put_integrity(&w, key, 16);
    int len = stunkit_writer_finish(&w);
    CHECK_EQ(len, (int)n);
    CHECK_MEM(out, buf, n);
}

int main(void)
{
    RUN(test_request);
    RUN(test_ipv4_response);
    RUN(test_ipv6_response);
    RUN(test_long_term);
    TEST_END();
}
