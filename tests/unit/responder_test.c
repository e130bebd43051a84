/*
 * responder_test.c - stunkit/responder.h: the answers stunkitd builds and the
 * short-term responder an ICE agent runs (RFC 8445 7.3): what is answered,
 * with which code, integrity and FINGERPRINT that verify, what is left to
 * the application, and every truncated prefix of a good request.
 */
#include <string.h>

#include "stunkit/stunkit.h"
#include "test.h"

static const char *UFRAG = "LOCL";
static const char *PASSWORD = "the-local-password-22";

/* A connectivity check as the remote agent sends it. */
static size_t check_request(uint8_t *buf, size_t cap, const char *username, const char *password, int extras,
                            int fingerprint)
{
    static const uint8_t tid[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    stunkit_writer w;
    uint8_t key[STUNKIT_KEY_MAX];
    stunkit_writer_init(&w, buf, cap, STUNKIT_METHOD_BINDING, STUNKIT_CLASS_REQUEST, tid);
    if (username)
        stunkit_put(&w, STUNKIT_ATTR_USERNAME, username, strlen(username));
    if (extras) {
        stunkit_put_u32(&w, STUNKIT_ATTR_PRIORITY, 0x6e0001ffu);
        stunkit_put(&w, STUNKIT_ATTR_USE_CANDIDATE, NULL, 0);
        stunkit_put_u64(&w, STUNKIT_ATTR_ICE_CONTROLLING, 0x1122334455667788ull);
    }
    if (extras == 2)
        stunkit_put(&w, 0x7f33, "x", 1); /* unknown, comprehension-required */
    if (extras == 3)
        stunkit_put_u32(&w, STUNKIT_ATTR_NOMINATION, 7); /* renomination */
    if (extras == 4)
        stunkit_put(&w, STUNKIT_ATTR_NOMINATION, "ab", 2); /* not 4 bytes */
    if (password) {
        int klen = stunkit_key_short_term(password, strlen(password), key, sizeof(key));
        stunkit_put_integrity(&w, key, (size_t)klen);
    }
    if (fingerprint)
        stunkit_put_fingerprint(&w);
    return (size_t)stunkit_writer_finish(&w);
}

static int code_of(const uint8_t *p, size_t n)
{
    stunkit_msg m;
    stunkit_attr a;
    int code = -1;
    if (stunkit_msg_parse(&m, p, n) != 0)
        return -1;
    if (m.klass == STUNKIT_CLASS_SUCCESS)
        return 0;
    if (stunkit_msg_find(&m, STUNKIT_ATTR_ERROR_CODE, &a) != 0 || stunkit_attr_error_code(&a, &code, NULL, NULL) != 0)
        return -1;
    return code;
}

/* stunkit_responder_input() as one number: the answer's length when the
 * request was taken (0: dropped silently), NOT_MINE when it was not a
 * Binding request, or the error. */
#define NOT_MINE (-1000)
static int respond(const stunkit_responder *r, const uint8_t *req, size_t len, const stunkit_addr *src, uint8_t *out,
                   size_t cap, stunkit_request_info *info)
{
    size_t n = 12345;
    int rv = stunkit_responder_input(r, src, req, len, out, cap, &n, info);
    if (rv != STUNKIT_INPUT_TAKEN) {
        CHECK_EQ(n, 0u); /* nothing claimed */
        return rv == STUNKIT_INPUT_NOT_MINE ? NOT_MINE : rv;
    }
    CHECK(n <= cap);
    return (int)n;
}

static void test_agent_responder(void)
{
    stunkit_responder r = {UFRAG, strlen(UFRAG), PASSWORD, strlen(PASSWORD), "test", 4};
    stunkit_addr src;
    stunkit_request_info info;
    uint8_t req[256], out[512];
    stunkit_addr_parse("203.0.113.9:40000", 0, &src);

    /* a good check: success, XOR-MAPPED-ADDRESS = src, MI with our key, FINGERPRINT */
    size_t len = check_request(req, sizeof(req), "LOCL:REMT", PASSWORD, 1, 1);
    int n = respond(&r, req, len, &src, out, sizeof(out), &info);
    CHECK(n > 0);
    CHECK_EQ(code_of(out, (size_t)n), 0);
    CHECK_EQ(info.code, 0);
    CHECK_EQ(info.priority, 0x6e0001ffu);
    CHECK(info.use_candidate && info.controlling && !info.controlled);
    CHECK_EQ(info.nomination, 0u);
    CHECK(info.tiebreaker == 0x1122334455667788ull);
    CHECK(info.remote_ufrag_len == 4 && !memcmp(info.remote_ufrag, "REMT", 4));
    /* NOMINATION (draft-thatcher-ice-renomination, 0xC001): its value; a
     * malformed one is a 400 */
    size_t nlen = check_request(req, sizeof(req), "LOCL:REMT", PASSWORD, 3, 1);
    CHECK(respond(&r, req, nlen, &src, out, sizeof(out), &info) > 0);
    CHECK_EQ(info.code, 0);
    CHECK_EQ(info.nomination, 7u);
    nlen = check_request(req, sizeof(req), "LOCL:REMT", PASSWORD, 4, 1);
    CHECK(respond(&r, req, nlen, &src, out, sizeof(out), &info) > 0);
    CHECK_EQ(info.code, 400);
    len = check_request(req, sizeof(req), "LOCL:REMT", PASSWORD, 1, 1);
    n = respond(&r, req, len, &src, out, sizeof(out), &info);
    stunkit_msg m;
    stunkit_addr mapped;
    uint8_t key[STUNKIT_KEY_MAX];
    int klen = stunkit_key_short_term(PASSWORD, strlen(PASSWORD), key, sizeof(key));
    CHECK_EQ(stunkit_msg_parse(&m, out, (size_t)n), 0);
    CHECK_EQ(stunkit_check_fingerprint(&m), 0);
    CHECK_EQ(stunkit_check_integrity(&m, key, (size_t)klen), 0);
    CHECK_EQ(stunkit_msg_mapped(&m, &mapped), 0);
    CHECK(stunkit_addr_equal(&mapped, &src));
    CHECK(!memcmp(m.tid, req + 8, 12));

    /* RFC 8445 7.3 / RFC 8489 9.1.3: wrong ufrag or password: 401; no MI: 400 */
    len = check_request(req, sizeof(req), "OTHR:REMT", PASSWORD, 1, 1);
    n = respond(&r, req, len, &src, out, sizeof(out), &info);
    CHECK(n > 0 && code_of(out, (size_t)n) == 401 && info.code == 401);
    len = check_request(req, sizeof(req), "LOCL:REMT", "wrong", 1, 1);
    n = respond(&r, req, len, &src, out, sizeof(out), &info);
    CHECK(n > 0 && code_of(out, (size_t)n) == 401);
    CHECK_EQ(stunkit_msg_parse(&m, out, (size_t)n), 0);
    CHECK(m.mi_off == 0); /* no integrity on a 401: we do not know their key */
    len = check_request(req, sizeof(req), "LOCL:REMT", NULL, 1, 1);
    n = respond(&r, req, len, &src, out, sizeof(out), &info);
    CHECK(n > 0 && code_of(out, (size_t)n) == 400);
    /* a username that is only our ufrag (no colon) is not ours */
    len = check_request(req, sizeof(req), "LOCL", PASSWORD, 1, 1);
    n = respond(&r, req, len, &src, out, sizeof(out), &info);
    CHECK(n > 0 && code_of(out, (size_t)n) == 401);
    /* unknown comprehension-required attribute: 420, protected */
    len = check_request(req, sizeof(req), "LOCL:REMT", PASSWORD, 2, 1);
    n = respond(&r, req, len, &src, out, sizeof(out), &info);
    CHECK(n > 0 && code_of(out, (size_t)n) == 420);
    CHECK_EQ(stunkit_msg_parse(&m, out, (size_t)n), 0);
    CHECK_EQ(stunkit_check_integrity(&m, key, (size_t)klen), 0);

    /* a bad FINGERPRINT: dropped silently */
    len = check_request(req, sizeof(req), "LOCL:REMT", PASSWORD, 1, 1);
    req[len - 1] ^= 1;
    CHECK_EQ(respond(&r, req, len, &src, out, sizeof(out), &info), 0);

    /* not ours: application data and other STUN messages are left alone */
    static const uint8_t rtp[12] = {0x80, 0x60, 0, 1};
    CHECK_EQ(respond(&r, rtp, sizeof(rtp), &src, out, sizeof(out), &info), NOT_MINE);
    len = check_request(req, sizeof(req), "LOCL:REMT", PASSWORD, 1, 1);
    req[1] = 0x11; /* Binding indication */
    CHECK_EQ(respond(&r, req, len, &src, out, sizeof(out), &info), NOT_MINE);

    /* the output buffer too small: NOBUF, nothing claimed */
    len = check_request(req, sizeof(req), "LOCL:REMT", PASSWORD, 1, 1);
    CHECK_EQ(respond(&r, req, len, &src, out, 40, &info), STUNKIT_ERR_NOBUF);

    /* every truncated prefix of a good request: never an answer */
    len = check_request(req, sizeof(req), "LOCL:REMT", PASSWORD, 1, 1);
    int answered = 0;
    for (size_t k = 0; k < len; k++)
        answered += respond(&r, req, k, &src, out, sizeof(out), &info) > 0;
    CHECK_EQ(answered, 0);
}

static void test_answers(void)
{
    /* RFC 5780 success: XOR-MAPPED, MAPPED, RESPONSE-ORIGIN, OTHER-ADDRESS */
    uint8_t req[20] = {0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xA4, 0x42, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9};
    uint8_t out[256];
    stunkit_addr src, origin, other, got;
    stunkit_addr_parse("192.0.2.1:1000", 0, &src);
    stunkit_addr_parse("198.51.100.1:3478", 0, &origin);
    stunkit_addr_parse("198.51.100.2:3479", 0, &other);
    stunkit_answer a;
    memset(&a, 0, sizeof(a));
    a.response_origin = &origin;
    a.other_address = &other;
    a.plain_mapped = 1;
    int n = stunkit_answer_success(req, &src, &a, out, sizeof(out));
    CHECK_EQ(n, 20 + 4 * 12);
    stunkit_msg m;
    stunkit_attr at;
    CHECK_EQ(stunkit_msg_parse(&m, out, (size_t)n), 0);
    CHECK(stunkit_msg_find(&m, STUNKIT_ATTR_OTHER_ADDRESS, &at) == 0 && stunkit_attr_addr(&m, &at, &got) == 0 &&
          stunkit_addr_equal(&got, &other));
    CHECK(stunkit_msg_find(&m, STUNKIT_ATTR_RESPONSE_ORIGIN, &at) == 0);
    CHECK(stunkit_msg_find(&m, STUNKIT_ATTR_MAPPED_ADDRESS, &at) == 0);
    /* every shorter buffer: NOBUF */
    for (size_t cap = 0; cap < (size_t)n; cap++)
        CHECK_EQ(stunkit_answer_success(req, &src, &a, out, cap), STUNKIT_ERR_NOBUF);

    /* RFC 3489 request: MAPPED-ADDRESS and SOURCE-ADDRESS; error text padded with spaces */
    uint8_t old[20] = {0x00, 0x01, 0x00, 0x00, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7};
    n = stunkit_answer_success(old, &src, &a, out, sizeof(out));
    CHECK(n > 0);
    CHECK_EQ(stunkit_msg_parse(&m, out, (size_t)n), 0);
    CHECK(m.rfc3489);
    CHECK(stunkit_msg_find(&m, STUNKIT_ATTR_SOURCE_ADDRESS, &at) == 0);
    CHECK(stunkit_msg_find(&m, STUNKIT_ATTR_CHANGED_ADDRESS, &at) == 0);
    n = stunkit_answer_error(old, 420, NULL, (const uint16_t[]){0x7f01}, 1, NULL, out, sizeof(out));
    CHECK_EQ(stunkit_msg_parse(&m, out, (size_t)n), 0);
    CHECK(stunkit_msg_find(&m, STUNKIT_ATTR_UNKNOWN_ATTRIBUTES, &at) == 0 && at.len == 4); /* repeated: even */
    CHECK(stunkit_msg_find(&m, STUNKIT_ATTR_ERROR_CODE, &at) == 0 && (at.len & 3u) == 0);
    CHECK_EQ(stunkit_answer_error(req, 99, NULL, NULL, 0, NULL, out, sizeof(out)), STUNKIT_ERR_INVAL);
}

int main(void)
{
    RUN(test_agent_responder);
    RUN(test_answers);
    TEST_END();
}
