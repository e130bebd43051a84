/*
 * msg_parse_test.c - the decoder: header fields, method/class bits, RFC 3489
 * and RFC 7983 recognition, every truncated prefix, bad lengths and padding,
 * and the ordering rules around MESSAGE-INTEGRITY and FINGERPRINT.
 */
#include <stdlib.h>

#include "stunkit/stunkit.h"
#include "test.h"
#include "vectors.h"

static const uint8_t tid[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};

static void test_type_bits(void)
{
    /* RFC 8489 5: Binding request 0x0001, success 0x0101, error 0x0111;
     * RFC 8656 Allocate error 0x0113, Send indication 0x0016. */
    CHECK_EQ(stunkit_msg_type(STUNKIT_METHOD_BINDING, STUNKIT_CLASS_REQUEST), 0x0001);
    CHECK_EQ(stunkit_msg_type(STUNKIT_METHOD_BINDING, STUNKIT_CLASS_INDICATION), 0x0011);
    CHECK_EQ(stunkit_msg_type(STUNKIT_METHOD_BINDING, STUNKIT_CLASS_SUCCESS), 0x0101);
    CHECK_EQ(stunkit_msg_type(STUNKIT_METHOD_BINDING, STUNKIT_CLASS_ERROR), 0x0111);
    CHECK_EQ(stunkit_msg_type(STUNKIT_METHOD_ALLOCATE, STUNKIT_CLASS_ERROR), 0x0113);
    CHECK_EQ(stunkit_msg_type(STUNKIT_METHOD_SEND, STUNKIT_CLASS_INDICATION), 0x0016);
    CHECK_EQ(stunkit_msg_type(0xFFF, STUNKIT_CLASS_ERROR), 0x3FFF);
    /* Every method and class survives a round trip through the header. */
    uint8_t buf[20];
    for (unsigned method = 0; method <= 0xFFF; method++) {
        for (unsigned k = 0; k < 4; k++) {
            stunkit_writer w;
            stunkit_msg m;
            stunkit_writer_init(&w, buf, sizeof(buf), (uint16_t)method, (stunkit_class)k, tid);
            if (stunkit_msg_parse(&m, buf, 20) != 0 || m.method != method || m.klass != (stunkit_class)k) {
                CHECK_FAIL("method/class round trip");
                return;
            }
        }
    }
}

static void test_vectors_every_prefix(void)
{
    /* Every truncated prefix of every vector is rejected cleanly, and so is
     * every prefix with the header's length fixed up to match it. */
    for (size_t v = 0; v < 4; v++) {
        uint8_t buf[512], cut[512];
        size_t n = t_hex(rfc5769_all[v], buf, sizeof(buf));
        stunkit_msg m;
        CHECK_EQ(stunkit_msg_parse(&m, buf, n), 0);
        for (size_t k = 0; k < n; k++) {
            /* malloc'd to exactly k bytes so ASan sees any over-read */
            uint8_t *p = malloc(k ? k : 1);
            memcpy(p, buf, k);
            int rv = stunkit_msg_parse(&m, p, k);
            CHECK(rv == STUNKIT_ERR_TRUNCATED);
            free(p);
            if (k >= 20 && (k % 4) == 0) {
                memcpy(cut, buf, k);
                cut[2] = (uint8_t)((k - 20) >> 8);
                cut[3] = (uint8_t)(k - 20);
                rv = stunkit_msg_parse(&m, cut, k);
                /* Either an attribute is cut (bad length) or the cut falls
                 * between attributes and the shorter message is well formed. */
                CHECK(rv == 0 || rv == STUNKIT_ERR_BAD_ATTR_LENGTH);
            }
        }
    }
}

static void test_header_errors(void)
{
    uint8_t buf[64];
    size_t n = t_hex("00 01 00 00 21 12 a4 42 01 02 03 04 05 06 07 08 09 0a 0b 0c", buf, sizeof(buf));
    stunkit_msg m;
    CHECK_EQ(stunkit_msg_parse(&m, buf, n), 0);
    CHECK_EQ(m.n_attrs, 0);
    CHECK(stunkit_is_stun(buf, n));

    buf[0] = 0x40; /* first two bits must be zero (RFC 7983: not STUN) */
    CHECK_EQ(stunkit_msg_parse(&m, buf, n), STUNKIT_ERR_NOT_STUN);
    CHECK(!stunkit_is_stun(buf, n));
    buf[0] = 0x80;
    CHECK_EQ(stunkit_msg_parse(&m, buf, n), STUNKIT_ERR_NOT_STUN);
    buf[0] = 0x00;

    buf[3] = 0x02; /* length not a multiple of 4 */
    CHECK_EQ(stunkit_msg_parse(&m, buf, n), STUNKIT_ERR_BAD_LENGTH);
    buf[3] = 0x04; /* length beyond the data */
    CHECK_EQ(stunkit_msg_parse(&m, buf, n), STUNKIT_ERR_TRUNCATED);
    buf[3] = 0x00;
    /* trailing bytes after the message: one datagram is one message */
    memset(buf + 20, 0, 4);
    CHECK_EQ(stunkit_msg_parse(&m, buf, 24), STUNKIT_ERR_BAD_LENGTH);
}

static void test_rfc3489(void)
{
    /* No magic cookie: an RFC 3489 message with a 128-bit transaction ID. */
    uint8_t buf[64];
    size_t n = t_hex("00 01 00 08 a1 a2 a3 a4 a5 a6 a7 a8 a9 aa ab ac ad ae af b0"
                     "00 03 00 04 00 00 00 06",
                     buf, sizeof(buf));
    stunkit_msg m;
    stunkit_attr a;
    uint32_t flags;
    CHECK_EQ(stunkit_msg_parse(&m, buf, n), 0);
    CHECK_EQ(m.rfc3489, 1);
    CHECK_EQ(m.tid_len, 16);
    CHECK(m.tid == buf + 4);
    CHECK_EQ(stunkit_msg_find(&m, STUNKIT_ATTR_CHANGE_REQUEST, &a), 0);
    CHECK(stunkit_attr_change_request(&a, &flags) == 0 && flags == (STUNKIT_CHANGE_IP | STUNKIT_CHANGE_PORT));
}

static void test_frame(void)
{
    uint8_t buf[64];
    size_t need = 0;
    size_t n = t_hex("00 01 00 08 21 12 a4 42 01 02 03 04 05 06 07 08 09 0a 0b 0c", buf, sizeof(buf));
    CHECK_EQ(stunkit_msg_frame(buf, 3, &need), STUNKIT_ERR_TRUNCATED);
    CHECK_EQ(need, 20);
    CHECK_EQ(stunkit_msg_frame(buf, n, &need), 0);
    CHECK_EQ(need, 28);
    buf[0] = 0x17; /* a TLS record is not STUN */
    CHECK_EQ(stunkit_msg_frame(buf, 1, &need), STUNKIT_ERR_TRUNCATED);
    buf[0] = 0x47; /* "GET " is not */
    CHECK_EQ(stunkit_msg_frame(buf, 1, &need), STUNKIT_ERR_NOT_STUN);
}

/* Builds header + raw attribute bytes (hex) with the length set. */
static size_t build(uint8_t *buf, const char *attrs_hex)
{
    size_t n = t_hex(attrs_hex, buf + 20, 400);
    buf[0] = 0x00;
    buf[1] = 0x01;
    buf[2] = (uint8_t)(n >> 8);
    buf[3] = (uint8_t)n;
    buf[4] = 0x21;
    buf[5] = 0x12;
    buf[6] = 0xa4;
    buf[7] = 0x42;
    memcpy(buf + 8, tid, 12);
    return 20 + n;
}

static void test_attribute_framing(void)
{
    uint8_t buf[512];
    stunkit_msg m;
    stunkit_attr a;
    size_t n;

    /* value length 5 padded to 8: fine, padding bytes ignored even if not zero */
    n = build(buf, "80 22 00 05 61 62 63 64 65 ff ff ff");
    CHECK_EQ(stunkit_msg_parse(&m, buf, n), 0);
    CHECK_EQ(stunkit_msg_find(&m, STUNKIT_ATTR_SOFTWARE, &a), 0);
    CHECK(a.len == 5 && memcmp(a.value, "abcde", 5) == 0);

    /* bad padding: length 5 but the message ends before the padding does */
    n = build(buf, "80 22 00 05 61 62 63 64 65 00 00 00");
    buf[3] = 0x08; /* header says 8 bytes of attributes: value fits, padding not */
    CHECK_EQ(stunkit_msg_parse(&m, buf, 28), STUNKIT_ERR_BAD_ATTR_LENGTH);
    (void)n;

    /* attribute length runs past the message */
    n = build(buf, "80 22 00 09 61 62 63 64");
    CHECK_EQ(stunkit_msg_parse(&m, buf, n), STUNKIT_ERR_BAD_ATTR_LENGTH);
    n = build(buf, "80 22 ff ff 61 62 63 64");
    CHECK_EQ(stunkit_msg_parse(&m, buf, n), STUNKIT_ERR_BAD_ATTR_LENGTH);

    /* zero-length attributes are legal (USE-CANDIDATE) */
    n = build(buf, "00 25 00 00");
    CHECK_EQ(stunkit_msg_parse(&m, buf, n), 0);
    CHECK_EQ(m.n_attrs, 1);

    /* unknown comprehension-required types are collected, optional ones not */
    n = build(buf, "7f 01 00 00 ff 01 00 00 7f 02 00 04 00 00 00 00 7f 01 00 00");
    CHECK_EQ(stunkit_msg_parse(&m, buf, n), 0);
    CHECK_EQ(m.n_unknown, 2);
    CHECK_EQ(m.unknown[0], 0x7f01);
    CHECK_EQ(m.unknown[1], 0x7f02);
    /* TURN attributes (RFC 8656) are understood: stunkitd relays */
    n = build(buf, "00 19 00 04 11 00 00 00");
    CHECK_EQ(stunkit_msg_parse(&m, buf, n), 0);
    CHECK_EQ(m.n_unknown, 0);
    CHECK_STR(stunkit_attr_name(0x0019), "REQUESTED-TRANSPORT");
}

static void test_integrity_order(void)
{
    uint8_t buf[512];
    stunkit_msg m;
    stunkit_attr a;
    stunkit_attr_iter it;
    size_t n;
    const char *mi = "00 08 00 14 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 ";
    char hex[1024];

    /* attributes after MESSAGE-INTEGRITY are ignored (RFC 8489 14.5) */
    snprintf(hex, sizeof(hex), "80 22 00 04 61 62 63 64 %s 80 23 00 08 00 01 00 50 c0 00 02 01", mi);
    n = build(buf, hex);
    CHECK_EQ(stunkit_msg_parse(&m, buf, n), 0);
    CHECK_EQ(m.n_attrs, 2);
    CHECK_EQ(m.n_ignored, 1);
    CHECK_EQ(stunkit_msg_find(&m, STUNKIT_ATTR_ALTERNATE_SERVER, &a), STUNKIT_ERR_NOT_FOUND);
    stunkit_attr_iter_init(&it, &m, 1);
    int count = 0, ignored = 0;
    while (stunkit_attr_next(&it, &a)) {
        count++;
        ignored += a.ignored;
    }
    CHECK_EQ(count, 3);
    CHECK_EQ(ignored, 1);
    /* an unknown comprehension-required attribute after MI is not a 420 */
    snprintf(hex, sizeof(hex), "%s 7f 01 00 00", mi);
    n = build(buf, hex);
    CHECK_EQ(stunkit_msg_parse(&m, buf, n), 0);
    CHECK_EQ(m.n_unknown, 0);

    /* MI, MI-SHA256, FINGERPRINT: all processed */
    snprintf(hex, sizeof(hex),
             "%s 00 1c 00 10 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 80 28 00 04 00 00 00 00", mi);
    n = build(buf, hex);
    CHECK_EQ(stunkit_msg_parse(&m, buf, n), 0);
    CHECK_EQ(m.n_attrs, 3);
    CHECK(m.mi_off == 20 && m.mi256_off == 44 && m.fp_off == 64);
    /* MI after MI-SHA256 is ignored */
    snprintf(hex, sizeof(hex), "00 1c 00 10 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 %s", mi);
    n = build(buf, hex);
    CHECK_EQ(stunkit_msg_parse(&m, buf, n), 0);
    CHECK(m.mi_off == 0 && m.mi256_off == 20 && m.n_ignored == 1);

    /* FINGERPRINT must be last: a duplicate FINGERPRINT, or anything after */
    n = build(buf, "80 28 00 04 00 00 00 00 80 28 00 04 00 00 00 00");
    CHECK_EQ(stunkit_msg_parse(&m, buf, n), STUNKIT_ERR_FINGERPRINT_NOT_LAST);
    n = build(buf, "80 28 00 04 00 00 00 00 80 22 00 00");
    CHECK_EQ(stunkit_msg_parse(&m, buf, n), STUNKIT_ERR_FINGERPRINT_NOT_LAST);

    /* sizes of the integrity attributes */
    n = build(buf, "00 08 00 10 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00");
    CHECK_EQ(stunkit_msg_parse(&m, buf, n), STUNKIT_ERR_BAD_VALUE);
    n = build(buf, "80 28 00 08 00 00 00 00 00 00 00 00");
    CHECK_EQ(stunkit_msg_parse(&m, buf, n), STUNKIT_ERR_BAD_VALUE);
    n = build(buf, "00 1c 00 0c 00 00 00 00 00 00 00 00 00 00 00 00"); /* 12 < 16 */
    CHECK_EQ(stunkit_msg_parse(&m, buf, n), STUNKIT_ERR_BAD_VALUE);
    n = build(buf, "00 1c 00 12 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00"); /* 18: not %4 */
    CHECK_EQ(stunkit_msg_parse(&m, buf, n), STUNKIT_ERR_BAD_VALUE);
}

static void test_value_decoders(void)
{
    uint8_t buf[512];
    stunkit_msg m;
    stunkit_attr a;
    stunkit_addr addr;
    size_t n;
    int code;
    const uint8_t *reason;
    size_t rlen;

    /* address family 3 is not a thing; IPv4 with 16 bytes is malformed */
    n = build(buf, "00 01 00 08 00 03 00 50 c0 00 02 01");
    stunkit_msg_parse(&m, buf, n);
    stunkit_msg_find(&m, STUNKIT_ATTR_MAPPED_ADDRESS, &a);
    CHECK_EQ(stunkit_attr_addr(&m, &a, &addr), STUNKIT_ERR_BAD_FAMILY);
    n = build(buf, "00 01 00 14 00 01 00 50 c0 00 02 01 00 00 00 00 00 00 00 00 00 00 00 00");
    stunkit_msg_parse(&m, buf, n);
    stunkit_msg_find(&m, STUNKIT_ATTR_MAPPED_ADDRESS, &a);
    CHECK_EQ(stunkit_attr_addr(&m, &a, &addr), STUNKIT_ERR_BAD_VALUE);
    n = build(buf, "00 01 00 02 00 01 00 00");
    stunkit_msg_parse(&m, buf, n);
    stunkit_msg_find(&m, STUNKIT_ATTR_MAPPED_ADDRESS, &a);
    CHECK_EQ(stunkit_attr_addr(&m, &a, &addr), STUNKIT_ERR_BAD_VALUE);

    /* ERROR-CODE: class 4 number 20, reason; class 7 is out of range */
    n = build(buf, "00 09 00 0a 00 00 04 14 6f 6f 70 73 21 21 00 00");
    stunkit_msg_parse(&m, buf, n);
    stunkit_msg_find(&m, STUNKIT_ATTR_ERROR_CODE, &a);
    CHECK_EQ(stunkit_attr_error_code(&a, &code, &reason, &rlen), 0);
    CHECK_EQ(code, 420);
    CHECK(rlen == 6 && memcmp(reason, "oops!!", 6) == 0);
    n = build(buf, "00 09 00 04 00 00 07 00");
    stunkit_msg_parse(&m, buf, n);
    stunkit_msg_find(&m, STUNKIT_ATTR_ERROR_CODE, &a);
    CHECK_EQ(stunkit_attr_error_code(&a, &code, &reason, &rlen), STUNKIT_ERR_BAD_VALUE);
    n = build(buf, "00 09 00 04 00 00 04 64"); /* number 100 */
    stunkit_msg_parse(&m, buf, n);
    stunkit_msg_find(&m, STUNKIT_ATTR_ERROR_CODE, &a);
    CHECK_EQ(stunkit_attr_error_code(&a, &code, &reason, &rlen), STUNKIT_ERR_BAD_VALUE);

    /* UNKNOWN-ATTRIBUTES with an odd length */
    n = build(buf, "00 0a 00 03 00 21 00 00");
    stunkit_msg_parse(&m, buf, n);
    stunkit_msg_find(&m, STUNKIT_ATTR_UNKNOWN_ATTRIBUTES, &a);
    CHECK_EQ(stunkit_attr_unknown_list(&a, NULL, 0), STUNKIT_ERR_BAD_VALUE);

    /* PASSWORD-ALGORITHMS: MD5 then SHA-256 with 3 bytes of parameters */
    uint16_t alg, plen;
    const uint8_t *params;
    n = build(buf, "80 02 00 0c 00 01 00 00 00 02 00 03 aa bb cc 00");
    stunkit_msg_parse(&m, buf, n);
    stunkit_msg_find(&m, STUNKIT_ATTR_PASSWORD_ALGORITHMS, &a);
    CHECK(stunkit_attr_password_algorithm(&a, 0, &alg, &params, &plen) == 0 && alg == 1 && plen == 0);
    CHECK(stunkit_attr_password_algorithm(&a, 1, &alg, &params, &plen) == 0 && alg == 2 && plen == 3 &&
          params[0] == 0xaa);
    CHECK_EQ(stunkit_attr_password_algorithm(&a, 2, &alg, &params, &plen), STUNKIT_ERR_NOT_FOUND);
    n = build(buf, "80 02 00 08 00 01 00 09 00 00 00 00");
    stunkit_msg_parse(&m, buf, n);
    stunkit_msg_find(&m, STUNKIT_ATTR_PASSWORD_ALGORITHMS, &a);
    CHECK_EQ(stunkit_attr_password_algorithm(&a, 0, &alg, &params, &plen), STUNKIT_ERR_BAD_VALUE);

    /* stunkit_attr_format on malformed values falls back to hex */
    char text[64];
    n = build(buf, "00 20 00 04 00 09 00 00");
    stunkit_msg_parse(&m, buf, n);
    stunkit_msg_find(&m, STUNKIT_ATTR_XOR_MAPPED_ADDRESS, &a);
    CHECK_EQ(stunkit_attr_format(&m, &a, text, sizeof(text)), STUNKIT_ERR_BAD_VALUE);
    CHECK_STR(text, "00090000");
    /* and a short buffer is reported */
    n = build(buf, "80 22 00 08 61 62 63 64 65 66 67 68");
    stunkit_msg_parse(&m, buf, n);
    stunkit_msg_find(&m, STUNKIT_ATTR_SOFTWARE, &a);
    CHECK_EQ(stunkit_attr_format(&m, &a, text, 4), STUNKIT_ERR_NOBUF);
    CHECK_EQ(stunkit_attr_format(&m, &a, text, sizeof(text)), 8);
    /* control bytes and invalid UTF-8 are escaped */
    n = build(buf, "80 22 00 04 61 0a ff 5c");
    stunkit_msg_parse(&m, buf, n);
    stunkit_msg_find(&m, STUNKIT_ATTR_SOFTWARE, &a);
    CHECK(stunkit_attr_format(&m, &a, text, sizeof(text)) > 0);
    CHECK_STR(text, "a\\x0a\\xff\\\\");
    /* as JSON: JSON escapes, U+FFFD for the byte that is not UTF-8, and
     * the raw value beside it; every truncated buffer is reported */
    CHECK(stunkit_attr_format_json(&m, &a, text, sizeof(text)) > 0);
    CHECK_STR(text, "\"a\\u000a\\ufffd\\\\\", \"hex\": \"610aff5c\"");
    for (size_t cap = 0; cap < strlen(text); cap++)
        CHECK_EQ(stunkit_attr_format_json(&m, &a, text, cap), STUNKIT_ERR_NOBUF);
    /* numbers are numbers; a malformed value is its hex as a string */
    n = build(buf, "00 24 00 04 6e 00 01 ff");
    stunkit_msg_parse(&m, buf, n);
    stunkit_msg_find(&m, STUNKIT_ATTR_PRIORITY, &a);
    CHECK(stunkit_attr_format_json(&m, &a, text, sizeof(text)) > 0);
    CHECK_STR(text, "1845494271");
    n = build(buf, "00 20 00 04 00 09 00 00");
    stunkit_msg_parse(&m, buf, n);
    stunkit_msg_find(&m, STUNKIT_ATTR_XOR_MAPPED_ADDRESS, &a);
    CHECK_EQ(stunkit_attr_format_json(&m, &a, text, sizeof(text)), STUNKIT_ERR_BAD_VALUE);
    CHECK_STR(text, "\"00090000\"");
}

static void test_random_input(void)
{
    /* Random bytes behind a valid header: parse either accepts, and then
     * every attribute lies inside the message, or returns an error. */
    uint8_t buf[256];
    unsigned seed = 12345;
    for (int i = 0; i < 200000; i++) {
        size_t len = 20 + 4 * (size_t)(rand_r(&seed) % 50);
        for (size_t k = 0; k < len; k++)
            buf[k] = (uint8_t)rand_r(&seed);
        buf[0] &= 0x3f;
        buf[2] = (uint8_t)((len - 20) >> 8);
        buf[3] = (uint8_t)(len - 20);
        if ((i & 1) == 0) { /* bias towards plausible attribute lengths */
            for (size_t k = 20; k + 4 <= len; k += 8) {
                buf[k + 2] = 0;
                buf[k + 3] &= 0x0f;
            }
        }
        stunkit_msg m;
        if (stunkit_msg_parse(&m, buf, len) != 0)
            continue;
        stunkit_attr_iter it;
        stunkit_attr a;
        char text[1024];
        stunkit_attr_iter_init(&it, &m, 1);
        while (stunkit_attr_next(&it, &a)) {
            if (a.value < buf + 20 || a.value + a.len > buf + len) {
                CHECK_FAIL("attribute outside the message");
                return;
            }
            stunkit_attr_format(&m, &a, text, sizeof(text));
        }
        stunkit_check_fingerprint(&m);
        stunkit_check_integrity(&m, (const uint8_t *)"k", 1);
    }
}

int main(void)
{
    RUN(test_type_bits);
    RUN(test_vectors_every_prefix);
    RUN(test_header_errors);
    RUN(test_rfc3489);
    RUN(test_frame);
    RUN(test_attribute_framing);
    RUN(test_integrity_order);
    RUN(test_value_decoders);
    RUN(test_random_input);
    TEST_END();
}
