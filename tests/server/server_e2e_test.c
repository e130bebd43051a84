/*
 * server_e2e_test.c STUNKITD - a real stunkitd on loopback, asked with our
 * codec over UDP, TCP and IPv6: answers, errors, silence, and RFC 5780
 * CHANGE-REQUEST / RESPONSE-PORT / PADDING with the answer's true source
 * address checked with recvfrom().
 *
 * RFC 5780 mode uses 127.0.0.1 and 127.0.0.2 (both on lo).
 */
#include <netinet/tcp.h>

#include "server_util.h"

#define P1 (su_port(781))
#define P2 (su_port(782))
#define BASIC_PORT (su_port(785))

static int parse_reply(const uint8_t *buf, int n, const uint8_t *tid, stunkit_msg *m)
{
    if (n <= 0 || stunkit_msg_parse(m, buf, (size_t)n) != 0)
        return -1;
    if (m->tid_len == 12 && memcmp(m->tid, tid, 12) != 0)
        return -1;
    return 0;
}

static int attr_addr(const stunkit_msg *m, uint16_t type, char *text, size_t cap)
{
    stunkit_attr a;
    stunkit_addr addr;
    text[0] = '\0';
    if (stunkit_msg_find(m, type, &a) != 0 || stunkit_attr_addr(m, &a, &addr) != 0)
        return -1;
    return stunkit_addr_format(&addr, text, cap) > 0 ? 0 : -1;
}

static int error_code(const stunkit_msg *m)
{
    stunkit_attr a;
    int code = 0;
    if (stunkit_msg_find(m, STUNKIT_ATTR_ERROR_CODE, &a) != 0 || stunkit_attr_error_code(&a, &code, NULL, NULL))
        return -1;
    return code;
}

/* Sends req to `to` from fd and parses the answer; *from gets its source. */
static int ask(int fd, const uint8_t *req, size_t len, const char *to, uint8_t *resp, size_t cap, stunkit_msg *m,
               stunkit_addr *from)
{
    if (su_sendto(fd, req, len, to) != 0)
        return -1;
    int n = su_recv(fd, resp, cap, 1000, from);
    if (n <= 0)
        return -1;
    return parse_reply(resp, n, req + 8, m) == 0 ? n : -1;
}

static size_t binding(uint8_t *buf, size_t cap, uint8_t *tid, uint32_t change, int fingerprint)
{
    stunkit_writer w;
    su_tid(tid);
    stunkit_writer_init(&w, buf, cap, STUNKIT_METHOD_BINDING, STUNKIT_CLASS_REQUEST, tid);
    if (change != 0xFFFFFFFF)
        stunkit_put_change_request(&w, change);
    if (fingerprint)
        stunkit_put_fingerprint(&w);
    return (size_t)stunkit_writer_finish(&w);
}

static void test_basic_udp(void)
{
    const char *args[] = {"--listen", su_at("127.0.0.1", 785), "--threads", "2", NULL};
    pid_t pid = su_start(args, su_at("127.0.0.1", 785));
    CHECK(pid > 0);
    if (pid <= 0)
        return;
    int fd = su_udp("127.0.0.1", 0);
    uint8_t req[512], resp[2048], tid[12];
    stunkit_msg m;
    char text[STUNKIT_ADDRSTRLEN], mine[STUNKIT_ADDRSTRLEN];
    stunkit_addr self = su_local(fd);
    stunkit_addr_format(&self, mine, sizeof(mine));

    /* A plain Binding request: XOR-MAPPED-ADDRESS only, 32 bytes. */
    size_t len = binding(req, sizeof(req), tid, 0xFFFFFFFF, 0);
    int n = ask(fd, req, len, su_at("127.0.0.1", 785), resp, sizeof(resp), &m, NULL);
    CHECK_EQ(n, 32);
    CHECK_EQ(m.klass, STUNKIT_CLASS_SUCCESS);
    CHECK_EQ(attr_addr(&m, STUNKIT_ATTR_XOR_MAPPED_ADDRESS, text, sizeof(text)), 0);
    CHECK_STR(text, mine);
    CHECK_EQ(attr_addr(&m, STUNKIT_ATTR_MAPPED_ADDRESS, text, sizeof(text)), -1);
    CHECK_EQ(attr_addr(&m, STUNKIT_ATTR_OTHER_ADDRESS, text, sizeof(text)), -1);

    /* The library's Binding driver: plain UDP works; TLS without a name to
     * check is refused, not silently unverified (skipping the check is
     * stunkit_binding_ex's explicit tls_insecure). */
    stunkit_addr srv_addr;
    stunkit_addr_parse(su_at("127.0.0.1", 785), 0, &srv_addr);
    stunkit_binding_result br;
    CHECK_EQ(stunkit_binding(&srv_addr, STUNKIT_UDP, NULL, NULL, 2000, &br), 0);
    CHECK_EQ(stunkit_binding(&srv_addr, STUNKIT_TLS, NULL, NULL, 2000, &br), STUNKIT_ERR_INVAL);
    CHECK_EQ(stunkit_binding(&srv_addr, STUNKIT_DTLS, NULL, NULL, 2000, &br), STUNKIT_ERR_INVAL);
    char why[200];
    stunkit_binding_options bo = {.size = sizeof(bo), .timeout_ms = 2000, .error_text = why,
                                  .error_text_cap = sizeof(why)};
    CHECK_EQ(stunkit_binding_ex(&srv_addr, STUNKIT_TLS, &bo, &br), STUNKIT_ERR_INVAL);
    CHECK(strstr(why, "certificate") != NULL);

    /* With FINGERPRINT: the answer carries a valid one. */
    len = binding(req, sizeof(req), tid, 0xFFFFFFFF, 1);
    n = ask(fd, req, len, su_at("127.0.0.1", 785), resp, sizeof(resp), &m, NULL);
    CHECK_EQ(n, 40);
    CHECK_EQ(stunkit_check_fingerprint(&m), 0);

    /* A request whose FINGERPRINT is wrong is not STUN: no answer. */
    req[len - 1] ^= 1;
    CHECK_EQ(su_sendto(fd, req, len, su_at("127.0.0.1", 785)), 0);
    CHECK_EQ(su_recv(fd, resp, sizeof(resp), 300, NULL), -1);

    /* CHANGE-REQUEST without an alternate address: 420 (RFC 5780 6.1). */
    len = binding(req, sizeof(req), tid, STUNKIT_CHANGE_IP, 0);
    n = ask(fd, req, len, su_at("127.0.0.1", 785), resp, sizeof(resp), &m, NULL);
    CHECK(n > 0);
    CHECK_EQ(m.klass, STUNKIT_CLASS_ERROR);
    CHECK_EQ(error_code(&m), 420);

    /* An unknown comprehension-required attribute: 420 listing it. */
    stunkit_writer w;
    su_tid(tid);
    stunkit_writer_init(&w, req, sizeof(req), STUNKIT_METHOD_BINDING, STUNKIT_CLASS_REQUEST, tid);
    stunkit_put(&w, 0x7f01, "abcd", 4);
    stunkit_put(&w, 0xff01, "abcd", 4); /* comprehension-optional: not listed */
    len = (size_t)stunkit_writer_finish(&w);
    n = ask(fd, req, len, su_at("127.0.0.1", 785), resp, sizeof(resp), &m, NULL);
    CHECK(n > 0);
    CHECK_EQ(error_code(&m), 420);
    stunkit_attr a;
    uint16_t listed[4];
    CHECK_EQ(stunkit_msg_find(&m, STUNKIT_ATTR_UNKNOWN_ATTRIBUTES, &a), 0);
    CHECK_EQ(stunkit_attr_unknown_list(&a, listed, 4), 1);
    CHECK_EQ(listed[0], 0x7f01);

    /* Attributes that do not frame, under a sound header: 400. */
    len = binding(req, sizeof(req), tid, 0xFFFFFFFF, 0);
    memcpy(req + 20, "\x80\x22\x00\x09" "abcd", 8); /* length 9 in a 4-byte body */
    req[3] = 8;
    n = ask(fd, req, 28, su_at("127.0.0.1", 785), resp, sizeof(resp), &m, NULL);
    CHECK(n > 0);
    CHECK_EQ(error_code(&m), 400);

    /* Silence: garbage, a truncated header, an indication, a response,
     * an unknown method. Then the server still answers. */
    static const uint8_t garbage[] = "GET / HTTP/1.0\r\n\r\n";
    CHECK_EQ(su_sendto(fd, garbage, sizeof(garbage), su_at("127.0.0.1", 785)), 0);
    CHECK_EQ(su_sendto(fd, req, 10, su_at("127.0.0.1", 785)), 0);
    static const uint16_t quiet[] = {0x0011 /* indication */, 0x0101 /* success */, 0x0003 /* Allocate */};
    for (size_t i = 0; i < 3; i++) {
        len = binding(req, sizeof(req), tid, 0xFFFFFFFF, 0);
        req[0] = (uint8_t)(quiet[i] >> 8);
        req[1] = (uint8_t)quiet[i];
        CHECK_EQ(su_sendto(fd, req, len, su_at("127.0.0.1", 785)), 0);
    }
    CHECK_EQ(su_recv(fd, resp, sizeof(resp), 300, NULL), -1);

    /* RESPONSE-ADDRESS (RFC 3489) is never honoured: the answer comes here. */
    int other = su_udp("127.0.0.1", 0);
    stunkit_addr there = su_local(other);
    su_tid(tid);
    stunkit_writer_init(&w, req, sizeof(req), STUNKIT_METHOD_BINDING, STUNKIT_CLASS_REQUEST, tid);
    stunkit_put_addr(&w, STUNKIT_ATTR_RESPONSE_ADDRESS, &there);
    len = (size_t)stunkit_writer_finish(&w);
    n = ask(fd, req, len, su_at("127.0.0.1", 785), resp, sizeof(resp), &m, NULL);
    CHECK(n > 0);
    CHECK_EQ(m.klass, STUNKIT_CLASS_SUCCESS);
    CHECK_EQ(su_recv(other, resp, sizeof(resp), 200, NULL), -1);
    close(other);

    /* An RFC 3489 request (no cookie): MAPPED-ADDRESS and SOURCE-ADDRESS,
     * the 16-byte transaction ID echoed. */
    static const uint8_t id16[16] = {0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    stunkit_writer_init_rfc3489(&w, req, sizeof(req), STUNKIT_METHOD_BINDING, STUNKIT_CLASS_REQUEST, id16);
    len = (size_t)stunkit_writer_finish(&w);
    CHECK_EQ(su_sendto(fd, req, len, su_at("127.0.0.1", 785)), 0);
    n = su_recv(fd, resp, sizeof(resp), 1000, NULL);
    CHECK(n > 0 && stunkit_msg_parse(&m, resp, (size_t)n) == 0);
    CHECK(m.rfc3489 && m.tid_len == 16 && memcmp(m.tid, id16, 16) == 0);
    CHECK_EQ(attr_addr(&m, STUNKIT_ATTR_MAPPED_ADDRESS, text, sizeof(text)), 0);
    CHECK_STR(text, mine);
    CHECK_EQ(attr_addr(&m, STUNKIT_ATTR_SOURCE_ADDRESS, text, sizeof(text)), 0);
    CHECK_STR(text, su_at("127.0.0.1", 785));
    CHECK_EQ(attr_addr(&m, STUNKIT_ATTR_CHANGED_ADDRESS, text, sizeof(text)), -1);

    close(fd);
    CHECK_EQ(su_stop(pid), 0);
}

static void test_rfc5780(void)
{
    const char *args[] = {"--listen", su_at("127.0.0.1", 781), "--alternate", "127.0.0.2", "--threads", "2", NULL};
    pid_t pid = su_start(args, su_at("127.0.0.1", 781));
    CHECK(pid > 0);
    if (pid <= 0)
        return;
    int fd = su_udp("127.0.0.1", 0);
    uint8_t req[2048], resp[4096], tid[12];
    stunkit_msg m;
    stunkit_addr from;
    char text[STUNKIT_ADDRSTRLEN], src[STUNKIT_ADDRSTRLEN], mine[STUNKIT_ADDRSTRLEN];
    stunkit_addr self = su_local(fd);
    stunkit_addr_format(&self, mine, sizeof(mine));

    /* Table 1 of RFC 5780, from each of the four addresses. */
    const char *const dests[] = {su_at("127.0.0.1", 781), su_at("127.0.0.1", 782), su_at("127.0.0.2", 781), su_at("127.0.0.2", 782)};
    for (int d = 0; d < 4; d++) {
        for (uint32_t flags = 0; flags <= 6; flags += 2) {
            if (flags == 2 || flags == 6 || flags == 0 || flags == 4) {
                size_t len = binding(req, sizeof(req), tid, flags == 0 ? 0xFFFFFFFF : flags, 0);
                int n = ask(fd, req, len, dests[d], resp, sizeof(resp), &m, &from);
                CHECK(n > 0);
                if (n <= 0)
                    continue;
                int da = d / 2, dp = d % 2;
                int sa = da ^ ((flags & STUNKIT_CHANGE_IP) ? 1 : 0), sp = dp ^ ((flags & STUNKIT_CHANGE_PORT) ? 1 : 0);
                char want_src[32], want_other[32];
                snprintf(want_src, sizeof(want_src), "127.0.0.%d:%d", sa + 1, sp ? P2 : P1);
                snprintf(want_other, sizeof(want_other), "127.0.0.%d:%d", (da ^ 1) + 1, (dp ^ 1) ? P2 : P1);
                stunkit_addr_format(&from, src, sizeof(src));
                CHECK_STR(src, want_src); /* the packet really came from there */
                CHECK_EQ(attr_addr(&m, STUNKIT_ATTR_RESPONSE_ORIGIN, text, sizeof(text)), 0);
                CHECK_STR(text, want_src);
                CHECK_EQ(attr_addr(&m, STUNKIT_ATTR_OTHER_ADDRESS, text, sizeof(text)), 0);
                CHECK_STR(text, want_other);
                CHECK_EQ(attr_addr(&m, STUNKIT_ATTR_XOR_MAPPED_ADDRESS, text, sizeof(text)), 0);
                CHECK_STR(text, mine);
                CHECK_EQ(attr_addr(&m, STUNKIT_ATTR_MAPPED_ADDRESS, text, sizeof(text)), 0);
                CHECK_STR(text, mine);
            }
        }
    }

    /* RESPONSE-PORT: the answer goes to that port of our IP. */
    int target = su_udp("127.0.0.1", 0);
    stunkit_addr tgt = su_local(target);
    stunkit_writer w;
    su_tid(tid);
    stunkit_writer_init(&w, req, sizeof(req), STUNKIT_METHOD_BINDING, STUNKIT_CLASS_REQUEST, tid);
    stunkit_put_response_port(&w, tgt.port);
    size_t len = (size_t)stunkit_writer_finish(&w);
    CHECK_EQ(su_sendto(fd, req, len, su_at("127.0.0.1", 781)), 0);
    int n = su_recv(target, resp, sizeof(resp), 1000, NULL);
    CHECK(n > 0 && parse_reply(resp, n, tid, &m) == 0);
    CHECK_EQ(attr_addr(&m, STUNKIT_ATTR_XOR_MAPPED_ADDRESS, text, sizeof(text)), 0);
    CHECK_STR(text, mine); /* the mapping of the sender, not of the target */
    CHECK_EQ(su_recv(fd, resp, sizeof(resp), 100, NULL), -1);
    close(target);

    /* PADDING: the answer is padded to the request's size, never larger. */
    su_tid(tid);
    stunkit_writer_init(&w, req, sizeof(req), STUNKIT_METHOD_BINDING, STUNKIT_CLASS_REQUEST, tid);
    stunkit_put(&w, STUNKIT_ATTR_PADDING, NULL, 1400);
    len = (size_t)stunkit_writer_finish(&w);
    n = ask(fd, req, len, su_at("127.0.0.1", 781), resp, sizeof(resp), &m, NULL);
    CHECK(n > 1300 && (size_t)n <= len);
    stunkit_attr a;
    CHECK_EQ(stunkit_msg_find(&m, STUNKIT_ATTR_PADDING, &a), 0);
    /* PADDING with RESPONSE-PORT: 400 (RFC 5780 6.1). */
    su_tid(tid);
    stunkit_writer_init(&w, req, sizeof(req), STUNKIT_METHOD_BINDING, STUNKIT_CLASS_REQUEST, tid);
    stunkit_put(&w, STUNKIT_ATTR_PADDING, NULL, 100);
    stunkit_put_response_port(&w, self.port);
    len = (size_t)stunkit_writer_finish(&w);
    n = ask(fd, req, len, su_at("127.0.0.1", 781), resp, sizeof(resp), &m, NULL);
    CHECK(n > 0);
    CHECK_EQ(error_code(&m), 400);

    /* An RFC 3489 client with CHANGE-REQUEST (change IP and port), as the
     * classic NAT-type clients send: CHANGED-ADDRESS and the right source. */
    static const uint8_t id16[16] = {0xca, 0xfe, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13};
    stunkit_writer_init_rfc3489(&w, req, sizeof(req), STUNKIT_METHOD_BINDING, STUNKIT_CLASS_REQUEST, id16);
    stunkit_put_change_request(&w, STUNKIT_CHANGE_IP | STUNKIT_CHANGE_PORT);
    len = (size_t)stunkit_writer_finish(&w);
    CHECK_EQ(su_sendto(fd, req, len, su_at("127.0.0.1", 781)), 0);
    n = su_recv(fd, resp, sizeof(resp), 1000, &from);
    CHECK(n > 0 && stunkit_msg_parse(&m, resp, (size_t)n) == 0 && m.rfc3489);
    stunkit_addr_format(&from, src, sizeof(src));
    CHECK_STR(src, su_at("127.0.0.2", 782));
    CHECK_EQ(attr_addr(&m, STUNKIT_ATTR_CHANGED_ADDRESS, text, sizeof(text)), 0);
    CHECK_STR(text, su_at("127.0.0.2", 782));
    CHECK_EQ(attr_addr(&m, STUNKIT_ATTR_SOURCE_ADDRESS, text, sizeof(text)), 0);
    CHECK_STR(text, su_at("127.0.0.2", 782));
    close(fd);

    /* TCP: framing by the length field, several messages per segment and
     * one split across segments; CHANGE-REQUEST over TCP is a 400. */
    int s = su_tcp(su_at("127.0.0.1", 781));
    CHECK(s >= 0);
    int one = 1;
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    uint8_t tids[3][12];
    size_t l0 = binding(req, sizeof(req), tids[0], 0xFFFFFFFF, 0);
    size_t l1 = binding(req + l0, sizeof(req) - l0, tids[1], 0xFFFFFFFF, 1);
    size_t l2 = binding(req + l0 + l1, sizeof(req) - l0 - l1, tids[2], STUNKIT_CHANGE_PORT, 0);
    size_t total = l0 + l1 + l2;
    CHECK_EQ(send(s, req, total - 10, 0), (ssize_t)(total - 10));
    su_sleep_ms(50);
    CHECK_EQ(send(s, req + total - 10, 10, 0), 10);
    size_t got = 0;
    double t0 = su_now();
    while (su_now() - t0 < 2.0) {
        struct pollfd p = {s, POLLIN, 0};
        if (poll(&p, 1, 200) <= 0)
            continue;
        ssize_t k = recv(s, resp + got, sizeof(resp) - got, 0);
        if (k <= 0)
            break;
        got += (size_t)k;
        size_t need, off = 0, count = 0;
        while (stunkit_msg_frame(resp + off, got - off, &need) == 0 && off + need <= got) {
            off += need;
            count++;
        }
        if (count == 3)
            break;
    }
    size_t off = 0, need;
    for (int i = 0; i < 3; i++) {
        CHECK(stunkit_msg_frame(resp + off, got - off, &need) == 0 && off + need <= got);
        if (off + need > got)
            break;
        CHECK_EQ(parse_reply(resp + off, (int)need, tids[i], &m), 0);
        if (i < 2) {
            CHECK_EQ(m.klass, STUNKIT_CLASS_SUCCESS);
            CHECK_EQ(attr_addr(&m, STUNKIT_ATTR_XOR_MAPPED_ADDRESS, text, sizeof(text)), 0);
        } else {
            CHECK_EQ(error_code(&m), 400);
        }
        if (i == 1)
            CHECK_EQ(stunkit_check_fingerprint(&m), 0);
        off += need;
    }
    /* Bytes that are not STUN close the connection. */
    CHECK_EQ(send(s, "GET / HTTP/1.0\r\n\r\n", 18, 0), 18);
    struct pollfd p = {s, POLLIN, 0};
    CHECK(poll(&p, 1, 1000) == 1 && recv(s, resp, sizeof(resp), 0) == 0);
    close(s);
    CHECK_EQ(su_stop(pid), 0);
}

static void test_ipv6(void)
{
    int probe = su_udp("::1", 0);
    if (probe < 0) {
        fprintf(stderr, "skip test_ipv6: no ::1 on this host\n");
        return;
    }
    close(probe);
    const char *args[] = {"--listen", su_at("::1", 786), "--threads", "1", NULL};
    pid_t pid = su_start(args, su_at("::1", 786));
    CHECK(pid > 0);
    if (pid <= 0)
        return;
    int fd = su_udp("::1", 0);
    uint8_t req[64], resp[512], tid[12];
    stunkit_msg m;
    char text[STUNKIT_ADDRSTRLEN], mine[STUNKIT_ADDRSTRLEN];
    stunkit_addr self = su_local(fd);
    stunkit_addr_format(&self, mine, sizeof(mine));
    size_t len = binding(req, sizeof(req), tid, 0xFFFFFFFF, 0);
    int n = ask(fd, req, len, su_at("::1", 786), resp, sizeof(resp), &m, NULL);
    CHECK_EQ(n, 44);
    CHECK_EQ(attr_addr(&m, STUNKIT_ATTR_XOR_MAPPED_ADDRESS, text, sizeof(text)), 0);
    CHECK_STR(text, mine);
    close(fd);

    int s = su_tcp(su_at("::1", 786));
    CHECK(s >= 0);
    self = su_local(s);
    stunkit_addr_format(&self, mine, sizeof(mine));
    len = binding(req, sizeof(req), tid, 0xFFFFFFFF, 0);
    CHECK_EQ(send(s, req, len, 0), (ssize_t)len);
    struct pollfd p = {s, POLLIN, 0};
    CHECK_EQ(poll(&p, 1, 1000), 1);
    n = (int)recv(s, resp, sizeof(resp), 0);
    CHECK_EQ(parse_reply(resp, n, tid, &m), 0);
    CHECK_EQ(attr_addr(&m, STUNKIT_ATTR_XOR_MAPPED_ADDRESS, text, sizeof(text)), 0);
    CHECK_STR(text, mine);
    close(s);
    CHECK_EQ(su_stop(pid), 0);
}

static void test_wildcard_pktinfo(void)
{
    /* Bound to 0.0.0.0, the server must answer from the address the client
     * reached (here 127.0.0.3), which only PKTINFO tells it. */
    const char *args[] = {"--listen", su_at("0.0.0.0", 787), "--threads", "1", "--no-tcp", NULL};
    pid_t pid = su_start(args, su_at("127.0.0.1", 787));
    CHECK(pid > 0);
    if (pid <= 0)
        return;
    int fd = su_udp("127.0.0.1", 0);
    uint8_t req[64], resp[512], tid[12];
    stunkit_msg m;
    stunkit_addr from;
    char src[STUNKIT_ADDRSTRLEN];
    size_t len = binding(req, sizeof(req), tid, 0xFFFFFFFF, 0);
    int n = ask(fd, req, len, su_at("127.0.0.3", 787), resp, sizeof(resp), &m, &from);
    CHECK(n > 0);
    stunkit_addr_format(&from, src, sizeof(src));
    CHECK_STR(src, su_at("127.0.0.3", 787));
    close(fd);
    CHECK_EQ(su_stop(pid), 0);
}

static void test_advertise_and_idle(void)
{
    /* Behind a 1:1 NAT the server names its public addresses; idle TCP
     * connections are closed after --tcp-idle seconds. */
    const char *args[] = {"--listen", su_at("127.0.0.1", 788), "--alternate", su_at("127.0.0.2", 789), "--advertise",
                          "203.0.113.7", "--advertise-alternate", "203.0.113.8", "--tcp-idle", "1", "--threads",
                          "1", NULL};
    pid_t pid = su_start(args, su_at("127.0.0.1", 788));
    CHECK(pid > 0);
    if (pid <= 0)
        return;
    int fd = su_udp("127.0.0.1", 0);
    uint8_t req[64], resp[512], tid[12];
    stunkit_msg m;
    char text[STUNKIT_ADDRSTRLEN];
    size_t len = binding(req, sizeof(req), tid, STUNKIT_CHANGE_PORT, 0);
    int n = ask(fd, req, len, su_at("127.0.0.1", 788), resp, sizeof(resp), &m, NULL);
    CHECK(n > 0);
    CHECK_EQ(attr_addr(&m, STUNKIT_ATTR_RESPONSE_ORIGIN, text, sizeof(text)), 0);
    CHECK_STR(text, su_at("203.0.113.7", 789));
    CHECK_EQ(attr_addr(&m, STUNKIT_ATTR_OTHER_ADDRESS, text, sizeof(text)), 0);
    CHECK_STR(text, su_at("203.0.113.8", 789));
    close(fd);

    int s = su_tcp(su_at("127.0.0.1", 788));
    CHECK(s >= 0);
    double t0 = su_now();
    struct pollfd p = {s, POLLIN, 0};
    int closed = poll(&p, 1, 5000) == 1 && recv(s, resp, sizeof(resp), 0) == 0;
    double waited = su_now() - t0;
    fprintf(stderr, "idle TCP connection closed after %.1f s\n", waited);
    CHECK(closed);
    CHECK(waited >= 0.9); /* not before the idle time */
    close(s);
    CHECK_EQ(su_stop(pid), 0);
}

static void test_bad_flags(void)
{
    static const char *const cases[][4] = {
        {"--listen", "nonsense", NULL, NULL},
        {"--threads", "0", NULL, NULL},
        {"--alternate", "127.0.0.2", NULL, NULL},
        {"--listen", "127.0.0.1", "--bogus", NULL},
        {"--listen", "0.0.0.0", "--alternate", "127.0.0.2"},
        {"--rate-limit", "-5", NULL, NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int errpipe[2];
        CHECK_EQ(pipe(errpipe), 0);
        pid_t pid = fork();
        if (pid == 0) {
            dup2(errpipe[1], 2);
            char *argv[6] = {(char *)su_stunkitd, NULL, NULL, NULL, NULL, NULL};
            for (int k = 0; k < 4 && cases[i][k]; k++)
                argv[k + 1] = (char *)cases[i][k];
            execv(su_stunkitd, argv);
            _exit(127);
        }
        close(errpipe[1]);
        char msg[512] = {0};
        ssize_t got = read(errpipe[0], msg, sizeof(msg) - 1);
        close(errpipe[0]);
        int status;
        waitpid(pid, &status, 0);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 2);
        /* one line that names the problem */
        CHECK(got > 10 && strncmp(msg, "stunkitd: ", 10) == 0 && strchr(msg, '\n') == msg + got - 1);
    }
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: server_e2e_test PATH-TO-STUNKITD\n");
        return 2;
    }
    su_stunkitd = argv[1];
    signal(SIGPIPE, SIG_IGN);
    RUN(test_basic_udp);
    RUN(test_rfc5780);
    RUN(test_ipv6);
    RUN(test_wildcard_pktinfo);
    RUN(test_advertise_and_idle);
    RUN(test_bad_flags);
    TEST_END();
}
