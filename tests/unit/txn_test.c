/*
 * txn_test.c - the client transaction machine (RFC 8489 6.2) driven with a
 * fake clock, answer matching, and server name parsing (RFC 7064).
 */
#include "stunkit/stunkit.h"
#include "test.h"

static const uint8_t tid[12] = {9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 1, 2};

static void test_udp_schedule(void)
{
    /* RFC 8489 6.2.1: "with an RTO of 500 ms, requests would be sent at
     * times 0 ms, 500 ms, 1500 ms, 3500 ms, 7500 ms, 15500 ms, and 31500 ms.
     * If the client has not received a response after 39500 ms, the client
     * will consider the transaction to have timed out." */
    static const uint64_t want[] = {0, 500, 1500, 3500, 7500, 15500, 31500};
    stunkit_txn t;
    stunkit_txn_start(&t, NULL, 0, tid, 1000);
    uint64_t sends[16];
    int n = 0;
    uint64_t timeout_at = 0;
    for (uint64_t now = 1000; now < 1000 + 60000; now++) {
        stunkit_txn_action a = stunkit_txn_poll(&t, now);
        if (a == STUNKIT_TXN_SEND && n < 16)
            sends[n++] = now - 1000;
        if (a == STUNKIT_TXN_TIMEOUT) {
            timeout_at = now - 1000;
            break;
        }
        /* jump to the next event, as a real driver does */
        if (stunkit_txn_timeout(&t) > now + 1)
            now = stunkit_txn_timeout(&t) - 1;
    }
    CHECK_EQ(n, 7);
    for (int i = 0; i < 7 && i < n; i++)
        CHECK_EQ(sends[i], want[i]);
    CHECK_EQ(timeout_at, 39500);
}

static void test_configurable_and_tcp(void)
{
    stunkit_rto r = {100, 3, 4, 2000};
    stunkit_txn t;
    stunkit_txn_start(&t, &r, 0, tid, 0);
    CHECK_EQ(stunkit_txn_poll(&t, 0), STUNKIT_TXN_SEND);
    CHECK_EQ(stunkit_txn_poll(&t, 99), STUNKIT_TXN_WAIT);
    CHECK_EQ(stunkit_txn_poll(&t, 100), STUNKIT_TXN_SEND);
    CHECK_EQ(stunkit_txn_poll(&t, 300), STUNKIT_TXN_SEND);
    CHECK_EQ(stunkit_txn_poll(&t, 699), STUNKIT_TXN_WAIT);
    CHECK_EQ(stunkit_txn_poll(&t, 700), STUNKIT_TXN_TIMEOUT); /* 300 + 4 x 100 */

    /* reliable: one send, one long wait (6.2.2: 39.5 s by default) */
    stunkit_txn_start(&t, NULL, 1, tid, 0);
    CHECK_EQ(stunkit_txn_poll(&t, 0), STUNKIT_TXN_SEND);
    CHECK_EQ(stunkit_txn_poll(&t, 39499), STUNKIT_TXN_WAIT);
    CHECK_EQ(stunkit_txn_poll(&t, 39500), STUNKIT_TXN_TIMEOUT);
}

static void test_match(void)
{
    uint8_t buf[128], other[12];
    stunkit_txn t;
    stunkit_msg m;
    stunkit_writer w;
    stunkit_addr a, got;
    stunkit_addr_parse("203.0.113.4:4000", 0, &a);
    stunkit_txn_start(&t, NULL, 0, tid, 0);

    stunkit_writer_init(&w, buf, sizeof(buf), STUNKIT_METHOD_BINDING, STUNKIT_CLASS_SUCCESS, tid);
    stunkit_put_addr(&w, STUNKIT_ATTR_XOR_MAPPED_ADDRESS, &a);
    stunkit_put_fingerprint(&w);
    int len = stunkit_writer_finish(&w);
    CHECK_EQ(stunkit_txn_match(&t, buf, (size_t)len, &m), STUNKIT_INPUT_TAKEN);
    CHECK(stunkit_msg_mapped(&m, &got) == 0 && stunkit_addr_equal(&a, &got));
    buf[len - 1] ^= 1; /* bad FINGERPRINT */
    CHECK_EQ(stunkit_txn_match(&t, buf, (size_t)len, &m), STUNKIT_ERR_FINGERPRINT_MISMATCH);

    memcpy(other, tid, 12);
    other[0] ^= 0xff; /* someone else's transaction */
    stunkit_writer_init(&w, buf, sizeof(buf), STUNKIT_METHOD_BINDING, STUNKIT_CLASS_SUCCESS, other);
    len = stunkit_writer_finish(&w);
    CHECK_EQ(stunkit_txn_match(&t, buf, (size_t)len, &m), STUNKIT_INPUT_NOT_MINE);
    /* a request with our ID is not an answer */
    stunkit_writer_init(&w, buf, sizeof(buf), STUNKIT_METHOD_BINDING, STUNKIT_CLASS_REQUEST, tid);
    len = stunkit_writer_finish(&w);
    CHECK_EQ(stunkit_txn_match(&t, buf, (size_t)len, &m), STUNKIT_INPUT_NOT_MINE);

    /* with a key, integrity is required */
    t.key = (const uint8_t *)"secret";
    t.key_len = 6;
    stunkit_writer_init(&w, buf, sizeof(buf), STUNKIT_METHOD_BINDING, STUNKIT_CLASS_SUCCESS, tid);
    stunkit_put_addr(&w, STUNKIT_ATTR_XOR_MAPPED_ADDRESS, &a);
    len = stunkit_writer_finish(&w);
    CHECK_EQ(stunkit_txn_match(&t, buf, (size_t)len, &m), STUNKIT_ERR_INTEGRITY_ABSENT);
    stunkit_writer_init(&w, buf, sizeof(buf), STUNKIT_METHOD_BINDING, STUNKIT_CLASS_SUCCESS, tid);
    stunkit_put_addr(&w, STUNKIT_ATTR_XOR_MAPPED_ADDRESS, &a);
    stunkit_put_integrity(&w, (const uint8_t *)"secret", 6);
    len = stunkit_writer_finish(&w);
    CHECK_EQ(stunkit_txn_match(&t, buf, (size_t)len, &m), STUNKIT_INPUT_TAKEN);
}

static void test_server_names(void)
{
    stunkit_server s;
    CHECK_EQ(stunkit_server_parse("stun.example.org", &s), 0);
    CHECK(!strcmp(s.host, "stun.example.org") && s.port == 0 && !s.secure);
    CHECK_EQ(stunkit_server_parse("stun:stun.example.org:3479", &s), 0);
    CHECK(!strcmp(s.host, "stun.example.org") && s.port == 3479 && !s.secure);
    CHECK_EQ(stunkit_server_parse("stuns:stun.example.org", &s), 0);
    CHECK(s.secure && s.port == 0);
    CHECK_EQ(stunkit_server_parse("stun:[2001:db8::1]:3478", &s), 0);
    CHECK(!strcmp(s.host, "2001:db8::1") && s.port == 3478);
    CHECK_EQ(stunkit_server_parse("2001:db8::1", &s), 0);
    CHECK(!strcmp(s.host, "2001:db8::1") && s.port == 0);
    CHECK_EQ(stunkit_server_parse("192.0.2.1:3478", &s), 0);
    /* RFC 7065 TURN URIs, with and without ?transport= */
    CHECK_EQ(stunkit_server_parse("turn:turn.example.org", &s), 0);
    CHECK(s.turn && !s.secure && !s.transport && s.port == 0);
    CHECK_EQ(stunkit_server_parse("turn:192.0.2.1:3479?transport=tcp", &s), 0);
    CHECK(s.turn && s.transport == 2 && s.port == 3479 && !strcmp(s.host, "192.0.2.1"));
    CHECK_EQ(stunkit_server_parse("turns:[2001:db8::1]:5350?transport=udp", &s), 0);
    CHECK(s.turn && s.secure && s.transport == 1 && s.port == 5350 && !strcmp(s.host, "2001:db8::1"));
    static const char *const bad[] = {"", "stun://example.org", "example.org:0", "example.org:70000",
                                      "example.org:", "[2001:db8::1", "a b", "stun:example.org/path",
                                      "stun:example.org?transport=udp", "turn:example.org?transport=sctp",
                                      "turn:example.org?", "turn:?transport=udp", "example.org?transport=tcp"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CHECK_EQ(stunkit_server_parse(bad[i], &s), STUNKIT_ERR_BAD_ADDRESS);

    /* numeric hosts resolve without DNS, with the default ports */
    stunkit_addr out[4];
    char text[STUNKIT_ADDRSTRLEN];
    stunkit_server_parse("192.0.2.1", &s);
    CHECK_EQ(stunkit_server_resolve(&s, STUNKIT_UDP, 0, out, 4), 1);
    stunkit_addr_format(&out[0], text, sizeof(text));
    CHECK_STR(text, "192.0.2.1:3478");
    stunkit_server_parse("stuns:[2001:db8::2]", &s);
    CHECK_EQ(stunkit_server_resolve(&s, STUNKIT_TLS, 0, out, 4), 1);
    stunkit_addr_format(&out[0], text, sizeof(text));
    CHECK_STR(text, "[2001:db8::2]:5349");
    CHECK_EQ(stunkit_server_resolve(&s, STUNKIT_TLS, STUNKIT_AF_INET, out, 4), STUNKIT_ERR_RESOLVE);
}

int main(void)
{
    RUN(test_udp_schedule);
    RUN(test_configurable_and_tcp);
    RUN(test_match);
    RUN(test_server_names);
    TEST_END();
}
