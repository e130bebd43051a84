/*
 * msg_write_test.c - the encoder: a round trip for every attribute the codec
 * knows, short buffers at every size, and the ordering rules.
 */
#include "stunkit/stunkit.h"
#include "test.h"

static const uint8_t tid[12] = {0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae};

static stunkit_addr addr_of(const char *s)
{
    stunkit_addr a;
    if (stunkit_addr_parse(s, 3478, &a) != 0)
        memset(&a, 0, sizeof(a));
    return a;
}

/* Writes one message with every attribute kind; returns its length or error. */
static int write_everything(uint8_t *buf, size_t cap)
{
    stunkit_writer w;
    static const uint16_t unknown[] = {0x7f01, 0x0019, 0x1234};
    static const uint16_t algs[] = {STUNKIT_PWALG_MD5, STUNKIT_PWALG_SHA256};
    static const uint8_t userhash[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                                         17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};
    stunkit_addr v4 = addr_of("192.0.2.1:32853"), v6 = addr_of("[2001:db8::1]:3479");
    stunkit_addr o4 = addr_of("198.51.100.2:3479"), o6 = addr_of("[2001:db8:1234::ffff]:65535");

    stunkit_writer_init(&w, buf, cap, STUNKIT_METHOD_BINDING, STUNKIT_CLASS_ERROR, tid);
    stunkit_put_addr(&w, STUNKIT_ATTR_MAPPED_ADDRESS, &v4);
    stunkit_put_addr(&w, STUNKIT_ATTR_XOR_MAPPED_ADDRESS, &v6);
    stunkit_put_addr(&w, STUNKIT_ATTR_XOR_MAPPED_ADDRESS_OLD, &v4);
    stunkit_put(&w, STUNKIT_ATTR_USERNAME, "alice", 5);
    stunkit_put(&w, STUNKIT_ATTR_USERHASH, userhash, 32);
    stunkit_put_error_code(&w, 420, NULL);
    stunkit_put(&w, STUNKIT_ATTR_REALM, "example.org", 11);
    stunkit_put(&w, STUNKIT_ATTR_NONCE, "obMatJos2AAACf//499k954d6OL34oL9FSTvy64sA", 41);
    stunkit_put_password_algorithms(&w, algs, 2);
    stunkit_put_password_algorithm(&w, STUNKIT_PWALG_SHA256);
    stunkit_put_unknown_attributes(&w, unknown, 3);
    stunkit_put(&w, STUNKIT_ATTR_SOFTWARE, "stunkit test", 12);
    stunkit_put_addr(&w, STUNKIT_ATTR_ALTERNATE_SERVER, &o6);
    stunkit_put(&w, STUNKIT_ATTR_ALTERNATE_DOMAIN, "stun.example.org", 16);
    stunkit_put_change_request(&w, STUNKIT_CHANGE_IP | STUNKIT_CHANGE_PORT);
    stunkit_put_response_port(&w, 5000);
    stunkit_put(&w, STUNKIT_ATTR_PADDING, NULL, 0);
    stunkit_put_addr(&w, STUNKIT_ATTR_RESPONSE_ORIGIN, &o4);
    stunkit_put_addr(&w, STUNKIT_ATTR_OTHER_ADDRESS, &o6);
    stunkit_put_addr(&w, STUNKIT_ATTR_RESPONSE_ADDRESS, &v4);
    stunkit_put_addr(&w, STUNKIT_ATTR_SOURCE_ADDRESS, &o4);
    stunkit_put_addr(&w, STUNKIT_ATTR_CHANGED_ADDRESS, &o4);
    stunkit_put_addr(&w, STUNKIT_ATTR_REFLECTED_FROM, &v6);
    stunkit_put_u32(&w, STUNKIT_ATTR_PRIORITY, 0x6e0001ff);
    stunkit_put(&w, STUNKIT_ATTR_USE_CANDIDATE, NULL, 0);
    stunkit_put_u64(&w, STUNKIT_ATTR_ICE_CONTROLLED, 0x932ff9b151263b36ull);
    stunkit_put_u64(&w, STUNKIT_ATTR_ICE_CONTROLLING, 0x0102030405060708ull);
    stunkit_put_integrity(&w, (const uint8_t *)"key", 3);
    stunkit_put_integrity_sha256(&w, (const uint8_t *)"key", 3, 24);
    stunkit_put_fingerprint(&w);
    return stunkit_writer_finish(&w);
}

static void expect_text(const stunkit_msg *m, uint16_t type, const char *want)
{
    stunkit_attr a;
    char text[256];
    CHECK_EQ(stunkit_msg_find(m, type, &a), 0);
    CHECK(stunkit_attr_format(m, &a, text, sizeof(text)) >= 0);
    CHECK_STR(text, want);
}

static void test_round_trip_every_attribute(void)
{
    uint8_t buf[1024];
    int len = write_everything(buf, sizeof(buf));
    stunkit_msg m;
    CHECK(len > 0);
    CHECK_EQ(stunkit_msg_parse(&m, buf, (size_t)len), 0);
    CHECK_EQ(m.klass, STUNKIT_CLASS_ERROR);
    CHECK_EQ(m.n_attrs, 30);
    CHECK_EQ(m.n_ignored, 0);
    CHECK_EQ(m.n_unknown, 0);
    expect_text(&m, STUNKIT_ATTR_MAPPED_ADDRESS, "192.0.2.1:32853");
    expect_text(&m, STUNKIT_ATTR_XOR_MAPPED_ADDRESS, "[2001:db8::1]:3479");
    expect_text(&m, STUNKIT_ATTR_XOR_MAPPED_ADDRESS_OLD, "192.0.2.1:32853");
    expect_text(&m, STUNKIT_ATTR_USERNAME, "alice");
    expect_text(&m, STUNKIT_ATTR_USERHASH, "0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20");
    expect_text(&m, STUNKIT_ATTR_ERROR_CODE, "420 Unknown Attribute");
    expect_text(&m, STUNKIT_ATTR_REALM, "example.org");
    expect_text(&m, STUNKIT_ATTR_NONCE, "obMatJos2AAACf//499k954d6OL34oL9FSTvy64sA");
    expect_text(&m, STUNKIT_ATTR_PASSWORD_ALGORITHMS, "MD5, SHA-256");
    expect_text(&m, STUNKIT_ATTR_PASSWORD_ALGORITHM, "SHA-256");
    expect_text(&m, STUNKIT_ATTR_UNKNOWN_ATTRIBUTES, "0x7f01, 0x0019 (REQUESTED-TRANSPORT), 0x1234");
    expect_text(&m, STUNKIT_ATTR_SOFTWARE, "stunkit test");
    expect_text(&m, STUNKIT_ATTR_ALTERNATE_SERVER, "[2001:db8:1234::ffff]:65535");
    expect_text(&m, STUNKIT_ATTR_ALTERNATE_DOMAIN, "stun.example.org");
    expect_text(&m, STUNKIT_ATTR_CHANGE_REQUEST, "change IP and port");
    expect_text(&m, STUNKIT_ATTR_RESPONSE_PORT, "5000");
    expect_text(&m, STUNKIT_ATTR_PADDING, "0 bytes");
    expect_text(&m, STUNKIT_ATTR_RESPONSE_ORIGIN, "198.51.100.2:3479");
    expect_text(&m, STUNKIT_ATTR_OTHER_ADDRESS, "[2001:db8:1234::ffff]:65535");
    expect_text(&m, STUNKIT_ATTR_RESPONSE_ADDRESS, "192.0.2.1:32853");
    expect_text(&m, STUNKIT_ATTR_SOURCE_ADDRESS, "198.51.100.2:3479");
    expect_text(&m, STUNKIT_ATTR_CHANGED_ADDRESS, "198.51.100.2:3479");
    expect_text(&m, STUNKIT_ATTR_REFLECTED_FROM, "[2001:db8::1]:3479");
    expect_text(&m, STUNKIT_ATTR_PRIORITY, "1845494271");
    expect_text(&m, STUNKIT_ATTR_USE_CANDIDATE, "");
    expect_text(&m, STUNKIT_ATTR_ICE_CONTROLLED, "0x932ff9b151263b36");
    expect_text(&m, STUNKIT_ATTR_ICE_CONTROLLING, "0x0102030405060708");
    CHECK_EQ(stunkit_check_integrity(&m, (const uint8_t *)"key", 3), 0);
    CHECK_EQ(stunkit_check_integrity_sha256(&m, (const uint8_t *)"key", 3), 0);
    CHECK_EQ(stunkit_check_fingerprint(&m), 0);

    /* The XOR'd address is really XOR'd on the wire (RFC 8489 14.2). */
    stunkit_attr a;
    stunkit_msg_find(&m, STUNKIT_ATTR_XOR_MAPPED_ADDRESS, &a);
    CHECK_EQ(a.value[2], 0x0d ^ 0x21);
    CHECK_EQ(a.value[3], 0x97 ^ 0x12);
    CHECK_EQ(a.value[4], 0x20 ^ 0x21);
    CHECK_EQ(a.value[4 + 15], 0x01 ^ tid[11]);

    /* Every truncated prefix of this big message is rejected cleanly. */
    for (size_t k = 0; k < (size_t)len; k++)
        CHECK(stunkit_msg_parse(&m, buf, k) == STUNKIT_ERR_TRUNCATED);
}

static void test_short_buffers(void)
{
    uint8_t full[1024], buf[1024];
    int len = write_everything(full, sizeof(full));
    for (size_t cap = 0; cap < (size_t)len; cap++) {
        memset(buf, 0xEE, sizeof(buf));
        int rv = write_everything(buf, cap);
        CHECK_EQ(rv, STUNKIT_ERR_NOBUF);
        /* nothing written past the capacity */
        for (size_t k = cap; k < sizeof(buf); k++)
            if (buf[k] != 0xEE) {
                CHECK_FAIL("writer wrote past its capacity");
                break;
            }
    }
    CHECK_EQ(write_everything(buf, (size_t)len), len);
    CHECK_MEM(buf, full, (size_t)len);
}

static void test_order_rules(void)
{
    uint8_t buf[256];
    stunkit_writer w;
    stunkit_writer_init(&w, buf, sizeof(buf), STUNKIT_METHOD_BINDING, STUNKIT_CLASS_REQUEST, tid);
    CHECK_EQ(stunkit_put_integrity(&w, (const uint8_t *)"k", 1), 0);
    CHECK_EQ(stunkit_put(&w, STUNKIT_ATTR_SOFTWARE, "x", 1), STUNKIT_ERR_ORDER);
    CHECK_EQ(stunkit_writer_finish(&w), STUNKIT_ERR_ORDER); /* sticky */

    stunkit_writer_init(&w, buf, sizeof(buf), STUNKIT_METHOD_BINDING, STUNKIT_CLASS_REQUEST, tid);
    CHECK_EQ(stunkit_put_fingerprint(&w), 0);
    CHECK_EQ(stunkit_put_fingerprint(&w), STUNKIT_ERR_ORDER);

    stunkit_writer_init(&w, buf, sizeof(buf), STUNKIT_METHOD_BINDING, STUNKIT_CLASS_REQUEST, tid);
    CHECK_EQ(stunkit_put_integrity_sha256(&w, (const uint8_t *)"k", 1, 0), 0);
    CHECK_EQ(stunkit_put_integrity(&w, (const uint8_t *)"k", 1), STUNKIT_ERR_ORDER);

    stunkit_writer_init(&w, buf, sizeof(buf), STUNKIT_METHOD_BINDING, STUNKIT_CLASS_REQUEST, tid);
    CHECK_EQ(stunkit_put_integrity_sha256(&w, (const uint8_t *)"k", 1, 12), STUNKIT_ERR_INVAL);
    stunkit_writer_init(&w, buf, sizeof(buf), STUNKIT_METHOD_BINDING, STUNKIT_CLASS_REQUEST, tid);
    CHECK_EQ(stunkit_put_error_code(&w, 200, NULL), STUNKIT_ERR_INVAL);
    stunkit_writer_init(&w, buf, sizeof(buf), 0x1000, STUNKIT_CLASS_REQUEST, tid);
    CHECK_EQ(stunkit_writer_finish(&w), STUNKIT_ERR_INVAL);

    /* MI-SHA256 truncations 16..32 all verify */
    for (size_t t = 16; t <= 32; t += 4) {
        stunkit_msg m;
        stunkit_writer_init(&w, buf, sizeof(buf), STUNKIT_METHOD_BINDING, STUNKIT_CLASS_REQUEST, tid);
        stunkit_put(&w, STUNKIT_ATTR_USERNAME, "bob", 3);
        stunkit_put_integrity_sha256(&w, (const uint8_t *)"secret", 6, t);
        int len = stunkit_writer_finish(&w);
        CHECK_EQ(len, (int)(20 + 8 + 4 + t));
        CHECK_EQ(stunkit_msg_parse(&m, buf, (size_t)len), 0);
        CHECK_EQ(stunkit_check_integrity_sha256(&m, (const uint8_t *)"secret", 6), 0);
        CHECK_EQ(stunkit_check_integrity_sha256(&m, (const uint8_t *)"Secret", 6), STUNKIT_ERR_INTEGRITY_MISMATCH);
    }
}

static void test_rfc3489_writer(void)
{
    uint8_t buf[128];
    static const uint8_t tid16[16] = {0xa1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    stunkit_writer w;
    stunkit_msg m;
    stunkit_attr a;
    stunkit_addr in = addr_of("203.0.113.9:1234"), out;
    stunkit_writer_init_rfc3489(&w, buf, sizeof(buf), STUNKIT_METHOD_BINDING, STUNKIT_CLASS_SUCCESS, tid16);
    stunkit_put_addr(&w, STUNKIT_ATTR_MAPPED_ADDRESS, &in);
    stunkit_put_addr(&w, STUNKIT_ATTR_XOR_MAPPED_ADDRESS_OLD, &in);
    int len = stunkit_writer_finish(&w);
    CHECK_EQ(len, 20 + 12 + 12);
    CHECK_EQ(stunkit_msg_parse(&m, buf, (size_t)len), 0);
    CHECK_EQ(m.rfc3489, 1);
    CHECK_MEM(m.tid, tid16, 16);
    stunkit_msg_find(&m, STUNKIT_ATTR_XOR_MAPPED_ADDRESS_OLD, &a);
    CHECK_EQ(stunkit_attr_addr(&m, &a, &out), 0);
    CHECK(stunkit_addr_equal(&in, &out));
}

int main(void)
{
    RUN(test_round_trip_every_attribute);
    RUN(test_short_buffers);
    RUN(test_order_rules);
    RUN(test_rfc3489_writer);
    TEST_END();
}
