/*
 * turn_test.c - the TURN relay in process (turn_relay.c through the handler), on a
 * fake clock: Allocate and its errors (437, 440, 441, 442, 486), LIFETIME
 * caps, CreatePermission against the peer policy (403 for every refused
 * range and its disguised forms, 443 across families, the server's own
 * sockets), ChannelBind rules, Refresh to zero, expiry by the timer wheel,
 * and Send/ChannelData/peer data turned into the right datagrams. Relay
 * sockets are real (bound on 127.0.0.1), but no packet is sent: the
 * outboxes are inspected.
 */
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "config.h"
#include "handler.h"
#include "server_fixture.h"
#include "test.h"
#include "turn_relay.h"

#define NOW_S 1795470000ull
static uint64_t now_ms = 5000000;

static skd_handler_cfg cfg;
static skd_auth auth;
static skd_turn_cfg tcfg;
static skd_turn_limits limits;
static skd_turn turn;
static uint8_t outbuf[16384];
static skd_out slots[4];
static char nonce[SKD_NONCE_LEN + 1];
static stunkit_addr client;

static const char *USER = "alice", *PASS = "s3cret";

static void setup(void)
{
    static const char *const users[] = {"alice:s3cret", "bob:hunter2", NULL};
    fx_server_config(&cfg, &auth, users, NULL, 0);
    fx_turn_config(&tcfg, 41000, 2);
    /* the tests' peers live in documentation ranges, allowed by default */
    skd_turn_limits_free(&limits);
    skd_turn_limits_init(&limits, tcfg.max_allocations, tcfg.user_quota, 7);
    skd_turn_init(&turn, &tcfg, &limits, epoll_create1(EPOLL_CLOEXEC), 1, 1234, now_ms);
    stunkit_addr_parse("127.0.0.1:40000", 0, &client);
    skd_auth_nonce(&auth, &client, NOW_S, nonce);
    nonce[SKD_NONCE_LEN] = '\0';
}

static skd_verdict send_to_server(const uint8_t *req, size_t len, const stunkit_addr *from, skd_outbox *ob)
{
    skd_request rq;
    memset(&rq, 0, sizeof(rq));
    rq.data = req;
    rq.len = len;
    rq.src = *from;
    rq.dst = cfg.v4.ip[0];
    rq.transport = STUNKIT_UDP;
    rq.now_s = NOW_S;
    rq.now_ms = now_ms;
    rq.turn = &turn;
    skd_outbox_init(ob, outbuf, sizeof(outbuf), slots, 4);
    if (skd_turn_from_client(&turn, &rq, ob))
        return SKD_ANSWERED;
    return skd_handle(&cfg, &rq, ob);
}

static uint8_t tid_counter;

/* A TURN request with long-term credentials; extra attributes by the caller. */
typedef void (*attrs_fn)(stunkit_writer *w, const void *arg);

static size_t request(uint8_t *buf, uint16_t method, const char *user, const char *pass, attrs_fn attrs,
                      const void *arg, uint8_t *tid_out)
{
    uint8_t tid[12] = {9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 0, 0};
    tid[11] = ++tid_counter;
    if (tid_out)
        memcpy(tid_out, tid, 12);
    stunkit_writer w;
    uint8_t key[32];
    stunkit_writer_init(&w, buf, 1024, method, STUNKIT_CLASS_REQUEST, tid);
    if (attrs)
        attrs(&w, arg);
    stunkit_put(&w, STUNKIT_ATTR_USERNAME, user, strlen(user));
    stunkit_put(&w, STUNKIT_ATTR_REALM, "stunkit", 7);
    stunkit_put(&w, STUNKIT_ATTR_NONCE, nonce, strlen(nonce));
    int klen = stunkit_key_long_term(STUNKIT_PWALG_MD5, user, strlen(user), "stunkit", 7, pass, strlen(pass), key,
                                     sizeof(key));
    stunkit_put_integrity(&w, key, (size_t)klen);
    return (size_t)stunkit_writer_finish(&w);
}

static int code_of(const skd_outbox *ob)
{
    stunkit_msg m;
    stunkit_attr a;
    int code = -1;
    if (ob->n != 1 || stunkit_msg_parse(&m, ob->out[0].data, ob->out[0].len) != 0)
        return -1;
    if (m.klass == STUNKIT_CLASS_SUCCESS)
        return 0;
    if (stunkit_msg_find(&m, STUNKIT_ATTR_ERROR_CODE, &a) != 0 || stunkit_attr_error_code(&a, &code, NULL, NULL))
        return -1;
    return code;
}

static void udp_transport(stunkit_writer *w, const void *arg)
{
    uint8_t v[4] = {arg ? *(const uint8_t *)arg : 17, 0, 0, 0};
    stunkit_put(w, STUNKIT_ATTR_REQUESTED_TRANSPORT, v, 4);
}

static void with_family(stunkit_writer *w, const void *arg)
{
    udp_transport(w, NULL);
    uint8_t v[4] = {*(const uint8_t *)arg, 0, 0, 0};
    stunkit_put(w, STUNKIT_ATTR_REQUESTED_ADDRESS_FAMILY, v, 4);
}

static void with_lifetime(stunkit_writer *w, const void *arg)
{
    udp_transport(w, NULL);
    stunkit_put_u32(w, STUNKIT_ATTR_LIFETIME, *(const uint32_t *)arg);
}

static void lifetime_only(stunkit_writer *w, const void *arg)
{
    stunkit_put_u32(w, STUNKIT_ATTR_LIFETIME, *(const uint32_t *)arg);
}

static void peer_attr(stunkit_writer *w, const void *arg)
{
    stunkit_addr a;
    stunkit_addr_parse((const char *)arg, 0, &a);
    stunkit_put_addr(w, STUNKIT_ATTR_XOR_PEER_ADDRESS, &a);
}

typedef struct chan_arg {
    uint16_t number;
    const char *peer;
} chan_arg;

static void channel_attrs(stunkit_writer *w, const void *arg)
{
    const chan_arg *c = arg;
    uint8_t v[4] = {(uint8_t)(c->number >> 8), (uint8_t)c->number, 0, 0};
    stunkit_put(w, STUNKIT_ATTR_CHANNEL_NUMBER, v, 4);
    peer_attr(w, c->peer);
}

static stunkit_addr relayed_of(const skd_outbox *ob)
{
    stunkit_msg m;
    stunkit_attr a;
    stunkit_addr r;
    memset(&r, 0, sizeof(r));
    if (stunkit_msg_parse(&m, ob->out[0].data, ob->out[0].len) == 0 &&
        stunkit_msg_find(&m, STUNKIT_ATTR_XOR_RELAYED_ADDRESS, &a) == 0)
        stunkit_attr_addr(&m, &a, &r);
    return r;
}

static uint32_t lifetime_in(const skd_outbox *ob)
{
    stunkit_msg m;
    stunkit_attr a;
    uint32_t v = 0;
    if (stunkit_msg_parse(&m, ob->out[0].data, ob->out[0].len) == 0 &&
        stunkit_msg_find(&m, STUNKIT_ATTR_LIFETIME, &a) == 0)
        stunkit_attr_u32(&a, &v);
    return v;
}

static void test_allocate(void)
{
    uint8_t req[1024], tid[12];
    skd_outbox ob;
    size_t len;
    setup();
    /* no credentials: 401 with a nonce */
    {
        stunkit_writer w;
        uint8_t t0[12] = {1};
        stunkit_writer_init(&w, req, sizeof(req), STUNKIT_METHOD_ALLOCATE, STUNKIT_CLASS_REQUEST, t0);
        udp_transport(&w, NULL);
        send_to_server(req, (size_t)stunkit_writer_finish(&w), &client, &ob);
        CHECK_EQ(code_of(&ob), 401);
    }
    uint8_t tcp = 6;
    len = request(req, STUNKIT_METHOD_ALLOCATE, USER, PASS, udp_transport, &tcp, NULL);
    send_to_server(req, len, &client, &ob);
    CHECK_EQ(code_of(&ob), 442);
    uint8_t fam3 = 3;
    len = request(req, STUNKIT_METHOD_ALLOCATE, USER, PASS, with_family, &fam3, NULL);
    send_to_server(req, len, &client, &ob);
    CHECK_EQ(code_of(&ob), 440);
    len = request(req, STUNKIT_METHOD_ALLOCATE, USER, PASS, NULL, NULL, NULL);
    send_to_server(req, len, &client, &ob);
    CHECK_EQ(code_of(&ob), 400); /* no REQUESTED-TRANSPORT */
    /* asks for a day: gets the maximum, an hour */
    uint32_t day = 86400;
    len = request(req, STUNKIT_METHOD_ALLOCATE, USER, PASS, with_lifetime, &day, tid);
    send_to_server(req, len, &client, &ob);
    CHECK_EQ(code_of(&ob), 0);
    CHECK_EQ(lifetime_in(&ob), 3600u);
    stunkit_addr relayed = relayed_of(&ob);
    CHECK(relayed.family == STUNKIT_AF_INET && relayed.port >= 41000 && relayed.port <= 41999);
    /* a retransmission gets the same success; another Allocate on the 5-tuple 437 */
    send_to_server(req, len, &client, &ob);
    CHECK_EQ(code_of(&ob), 0);
    stunkit_addr again = relayed_of(&ob);
    CHECK(stunkit_addr_equal(&again, &relayed));
    len = request(req, STUNKIT_METHOD_ALLOCATE, USER, PASS, udp_transport, NULL, NULL);
    send_to_server(req, len, &client, &ob);
    CHECK_EQ(code_of(&ob), 437);
    /* another user on the allocation: 441 */
    len = request(req, STUNKIT_METHOD_REFRESH, "bob", "hunter2", NULL, NULL, NULL);
    send_to_server(req, len, &client, &ob);
    CHECK_EQ(code_of(&ob), 441);
    /* the quota: alice has 2 allocations at most */
    stunkit_addr c2, c3;
    stunkit_addr_parse("127.0.0.1:40001", 0, &c2);
    stunkit_addr_parse("127.0.0.1:40002", 0, &c3);
    len = request(req, STUNKIT_METHOD_ALLOCATE, USER, PASS, udp_transport, NULL, NULL);
    send_to_server(req, len, &c2, &ob);
    CHECK_EQ(code_of(&ob), 0);
    len = request(req, STUNKIT_METHOD_ALLOCATE, USER, PASS, udp_transport, NULL, NULL);
    send_to_server(req, len, &c3, &ob);
    CHECK_EQ(code_of(&ob), 486);
    CHECK_EQ(turn.n_allocs, 2);
    /* Refresh to zero deletes; then requests on it are 437 */
    uint32_t zero = 0;
    len = request(req, STUNKIT_METHOD_REFRESH, USER, PASS, lifetime_only, &zero, NULL);
    send_to_server(req, len, &c2, &ob);
    CHECK_EQ(code_of(&ob), 0);
    CHECK_EQ(turn.n_allocs, 1);
    len = request(req, STUNKIT_METHOD_CREATE_PERMISSION, USER, PASS, peer_attr, "198.51.100.7:5000", NULL);
    send_to_server(req, len, &c2, &ob);
    CHECK_EQ(code_of(&ob), 437);
    /* expiry on the fake clock: the wheel frees it after its hour */
    now_ms += 3599 * 1000;
    skd_turn_tick(&turn, now_ms);
    CHECK_EQ(turn.n_allocs, 1);
    now_ms += 2000;
    skd_turn_tick(&turn, now_ms);
    CHECK_EQ(turn.n_allocs, 0);
    close(turn.epfd);
    skd_turn_free(&turn);
}

static void test_permissions_and_data(void)
{
    uint8_t req[1024];
    skd_outbox ob;
    size_t len;
    setup();
    len = request(req, STUNKIT_METHOD_ALLOCATE, USER, PASS, udp_transport, NULL, NULL);
    send_to_server(req, len, &client, &ob);
    CHECK_EQ(code_of(&ob), 0);
    stunkit_addr relayed = relayed_of(&ob);
    /* refused peers, in every disguise: 403; nothing installed */
    static const char *const refused[] = {"10.1.2.3:80", "127.0.0.1:22", "169.254.169.254:80", "0.0.0.0:80",
                                          "192.168.1.1:80", "100.64.0.1:80", "224.0.0.1:5353"};
    int wrong = 0;
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        len = request(req, STUNKIT_METHOD_CREATE_PERMISSION, USER, PASS, peer_attr, refused[i], NULL);
        send_to_server(req, len, &client, &ob);
        if (code_of(&ob) != 403) {
            fprintf(stderr, "  %s: %d\n", refused[i], code_of(&ob));
            wrong++;
        }
    }
    CHECK_EQ(wrong, 0);
    /* IPv6 forms of refused IPv4 against an IPv4 relay: family first (443) */
    len = request(req, STUNKIT_METHOD_CREATE_PERMISSION, USER, PASS, peer_attr, "[2001:db8::1]:80", NULL);
    send_to_server(req, len, &client, &ob);
    CHECK_EQ(code_of(&ob), 443);
    /* the server's own listening socket: 403 (opened ranges do not help) */
    len = request(req, STUNKIT_METHOD_CREATE_PERMISSION, USER, PASS, peer_attr, "127.0.0.1:3478", NULL);
    send_to_server(req, len, &client, &ob);
    CHECK_EQ(code_of(&ob), 403);
    /* a documentation-range peer: allowed */
    len = request(req, STUNKIT_METHOD_CREATE_PERMISSION, USER, PASS, peer_attr, "198.51.100.7:5000", NULL);
    send_to_server(req, len, &client, &ob);
    CHECK_EQ(code_of(&ob), 0);

    /* a Send indication to the permitted peer: one datagram from the relay */
    stunkit_writer w;
    uint8_t ind[256], t0[12] = {3};
    stunkit_addr peer, other;
    stunkit_addr_parse("198.51.100.7:5000", 0, &peer);
    stunkit_addr_parse("198.51.100.8:5000", 0, &other);
    stunkit_writer_init(&w, ind, sizeof(ind), STUNKIT_METHOD_SEND, STUNKIT_CLASS_INDICATION, t0);
    stunkit_put_addr(&w, STUNKIT_ATTR_XOR_PEER_ADDRESS, &peer);
    stunkit_put(&w, STUNKIT_ATTR_DATA, "hello", 5);
    len = (size_t)stunkit_writer_finish(&w);
    send_to_server(ind, len, &client, &ob);
    CHECK_EQ(ob.n, 1u);
    CHECK(ob.n == 1 && ob.out[0].relay_fd >= 0 && ob.out[0].len == 5 && !memcmp(ob.out[0].data, "hello", 5));
    CHECK(ob.n == 1 && stunkit_addr_equal(&ob.out[0].to, &peer));
    /* ...and to a peer without permission: nothing */
    stunkit_writer_init(&w, ind, sizeof(ind), STUNKIT_METHOD_SEND, STUNKIT_CLASS_INDICATION, t0);
    stunkit_put_addr(&w, STUNKIT_ATTR_XOR_PEER_ADDRESS, &other);
    stunkit_put(&w, STUNKIT_ATTR_DATA, "hello", 5);
    send_to_server(ind, (size_t)stunkit_writer_finish(&w), &client, &ob);
    CHECK_EQ(ob.n, 0u);

    /* ChannelBind: out of range 400, then 0x4001 to the peer */
    chan_arg bad = {0x3FFF, "198.51.100.7:5000"}, good = {0x4001, "198.51.100.7:5000"},
             clash = {0x4002, "198.51.100.7:5000"};
    len = request(req, STUNKIT_METHOD_CHANNEL_BIND, USER, PASS, channel_attrs, &bad, NULL);
    send_to_server(req, len, &client, &ob);
    CHECK_EQ(code_of(&ob), 400);
    len = request(req, STUNKIT_METHOD_CHANNEL_BIND, USER, PASS, channel_attrs, &good, NULL);
    send_to_server(req, len, &client, &ob);
    CHECK_EQ(code_of(&ob), 0);
    len = request(req, STUNKIT_METHOD_CHANNEL_BIND, USER, PASS, channel_attrs, &clash, NULL);
    send_to_server(req, len, &client, &ob);
    CHECK_EQ(code_of(&ob), 400); /* the peer is bound to another channel */
    /* ChannelData on it: the payload to the peer */
    uint8_t cd[12] = {0x40, 0x01, 0x00, 0x03, 'a', 'b', 'c', 0};
    send_to_server(cd, 8, &client, &ob);
    CHECK(ob.n == 1 && ob.out[0].len == 3 && !memcmp(ob.out[0].data, "abc", 3));
    /* a length beyond the datagram: dropped */
    cd[3] = 9;
    send_to_server(cd, 8, &client, &ob);
    CHECK_EQ(ob.n, 0u);

    /* from the peer: ChannelData to the client (bound), a Data indication from
     * another port of the same IP (permission per IP, no channel), nothing
     * from an IP without permission */
    skd_alloc *a = NULL;
    for (size_t i = 0; i < SKD_TURN_BUCKETS && !a; i++)
        a = turn.by_tuple[i];
    CHECK(a != NULL);
    if (!a)
        return;
    CHECK(stunkit_addr_equal(&a->relay.addr, &relayed));
    skd_outbox_init(&ob, outbuf, sizeof(outbuf), slots, 4);
    skd_turn_from_peer(&turn, &a->relay, &peer, (const uint8_t *)"xyz", 3, now_ms, &ob);
    CHECK(ob.n == 1 && ob.out[0].len == 7 && ob.out[0].data[0] == 0x40 && ob.out[0].data[1] == 0x01);
    CHECK(ob.n == 1 && stunkit_addr_equal(&ob.out[0].to, &client));
    stunkit_addr peer2 = peer;
    peer2.port = 6000;
    skd_outbox_clear(&ob);
    skd_turn_from_peer(&turn, &a->relay, &peer2, (const uint8_t *)"xyz", 3, now_ms, &ob);
    stunkit_msg m;
    stunkit_attr at;
    stunkit_addr got;
    CHECK(ob.n == 1 && stunkit_msg_parse(&m, ob.out[0].data, ob.out[0].len) == 0 && m.method == STUNKIT_METHOD_DATA &&
          m.klass == STUNKIT_CLASS_INDICATION);
    CHECK(ob.n == 1 && stunkit_msg_find(&m, STUNKIT_ATTR_XOR_PEER_ADDRESS, &at) == 0 &&
          stunkit_attr_addr(&m, &at, &got) == 0 && stunkit_addr_equal(&got, &peer2));
    skd_outbox_clear(&ob);
    skd_turn_from_peer(&turn, &a->relay, &other, (const uint8_t *)"xyz", 3, now_ms, &ob);
    CHECK_EQ(ob.n, 0u);
    /* permissions expire after 300 s (the channel refreshed it, so wait it out) */
    now_ms += 301 * 1000;
    skd_outbox_clear(&ob);
    skd_turn_from_peer(&turn, &a->relay, &peer2, (const uint8_t *)"xyz", 3, now_ms, &ob);
    CHECK_EQ(ob.n, 0u);
    close(turn.epfd);
    skd_turn_free(&turn);
}

static void dual_attrs(stunkit_writer *w, const void *arg)
{
    udp_transport(w, NULL);
    uint8_t v[4] = {0x02, 0, 0, 0};
    stunkit_put(w, STUNKIT_ATTR_ADDITIONAL_ADDRESS_FAMILY, v, 4);
    if (arg) {
        uint8_t f[4] = {0x01, 0, 0, 0};
        stunkit_put(w, STUNKIT_ATTR_REQUESTED_ADDRESS_FAMILY, f, 4);
    }
}

static int relayed_count(const skd_outbox *ob, stunkit_addr out[2], int *addr_error)
{
    stunkit_msg m;
    stunkit_attr_iter it;
    stunkit_attr a;
    int n = 0;
    *addr_error = 0;
    if (stunkit_msg_parse(&m, ob->out[0].data, ob->out[0].len) != 0)
        return -1;
    stunkit_attr_iter_init(&it, &m, 0);
    while (stunkit_attr_next(&it, &a) == 1) {
        if (a.type == STUNKIT_ATTR_XOR_RELAYED_ADDRESS && n < 2)
            stunkit_attr_addr(&m, &a, &out[n++]);
        if (a.type == STUNKIT_ATTR_ADDRESS_ERROR_CODE && a.len >= 4)
            *addr_error = a.value[2] * 100 + a.value[3];
    }
    return n;
}

/* RFC 8656 7.2: dual allocations with ADDITIONAL-ADDRESS-FAMILY */
static void test_dual(void)
{
    uint8_t req[1024];
    skd_outbox ob;
    size_t len;
    stunkit_addr r[2];
    int err;
    setup();
    /* with REQUESTED-ADDRESS-FAMILY as well: 400 */
    len = request(req, STUNKIT_METHOD_ALLOCATE, USER, PASS, dual_attrs, "both", NULL);
    send_to_server(req, len, &client, &ob);
    CHECK_EQ(code_of(&ob), 400);
    /* no IPv6 relay address configured: the IPv4 one, and ADDRESS-ERROR-CODE 440 */
    len = request(req, STUNKIT_METHOD_ALLOCATE, USER, PASS, dual_attrs, NULL, NULL);
    send_to_server(req, len, &client, &ob);
    CHECK_EQ(code_of(&ob), 0);
    CHECK_EQ(relayed_count(&ob, r, &err), 1);
    CHECK_EQ(err, 440);
    close(turn.epfd);
    skd_turn_free(&turn);
    /* with ::1 as the IPv6 relay: both addresses, and peers of both families */
    setup();
    stunkit_addr_parse("::1", 0, &tcfg.relay_ip[tcfg.n_relay_ip++]);
    len = request(req, STUNKIT_METHOD_ALLOCATE, USER, PASS, dual_attrs, NULL, NULL);
    send_to_server(req, len, &client, &ob);
    CHECK_EQ(code_of(&ob), 0);
    CHECK_EQ(relayed_count(&ob, r, &err), 2);
    CHECK(r[0].family == STUNKIT_AF_INET && r[1].family == STUNKIT_AF_INET6 && err == 0);
    len = request(req, STUNKIT_METHOD_CREATE_PERMISSION, USER, PASS, peer_attr, "[2001:db8::7]:5000", NULL);
    send_to_server(req, len, &client, &ob);
    CHECK_EQ(code_of(&ob), 0);
    len = request(req, STUNKIT_METHOD_CREATE_PERMISSION, USER, PASS, peer_attr, "198.51.100.7:5000", NULL);
    send_to_server(req, len, &client, &ob);
    CHECK_EQ(code_of(&ob), 0);
    /* refused IPv6 peers still refused */
    len = request(req, STUNKIT_METHOD_CREATE_PERMISSION, USER, PASS, peer_attr, "[fe80::1]:5000", NULL);
    send_to_server(req, len, &client, &ob);
    CHECK_EQ(code_of(&ob), 403);
    /* a Send indication to the IPv6 peer leaves from the IPv6 relay */
    stunkit_writer w;
    uint8_t ind[256], t0[12] = {4};
    stunkit_addr peer6;
    stunkit_addr_parse("[2001:db8::7]:5000", 0, &peer6);
    stunkit_writer_init(&w, ind, sizeof(ind), STUNKIT_METHOD_SEND, STUNKIT_CLASS_INDICATION, t0);
    stunkit_put_addr(&w, STUNKIT_ATTR_XOR_PEER_ADDRESS, &peer6);
    stunkit_put(&w, STUNKIT_ATTR_DATA, "six", 3);
    send_to_server(ind, (size_t)stunkit_writer_finish(&w), &client, &ob);
    skd_alloc *a = NULL;
    for (size_t i = 0; i < SKD_TURN_BUCKETS && !a; i++)
        a = turn.by_tuple[i];
    CHECK(a && ob.n == 1 && ob.out[0].relay_fd == a->relay2.fd && a->relay2.fd >= 0);
    close(turn.epfd);
    skd_turn_free(&turn);
}

/* --turn-allocation-bandwidth: a bucket of one second's bytes, both ways */
static void test_bandwidth(void)
{
    uint8_t req[1024];
    skd_outbox ob;
    setup();
    tcfg.alloc_bps = 1000;
    size_t len = request(req, STUNKIT_METHOD_ALLOCATE, USER, PASS, udp_transport, NULL, NULL);
    send_to_server(req, len, &client, &ob);
    CHECK_EQ(code_of(&ob), 0);
    len = request(req, STUNKIT_METHOD_CREATE_PERMISSION, USER, PASS, peer_attr, "198.51.100.7:5000", NULL);
    send_to_server(req, len, &client, &ob);
    CHECK_EQ(code_of(&ob), 0);
    stunkit_addr peer;
    stunkit_addr_parse("198.51.100.7:5000", 0, &peer);
    uint8_t payload[100], ind[256], t0[12] = {5};
    memset(payload, 7, sizeof(payload));
    stunkit_writer w;
    stunkit_writer_init(&w, ind, sizeof(ind), STUNKIT_METHOD_SEND, STUNKIT_CLASS_INDICATION, t0);
    stunkit_put_addr(&w, STUNKIT_ATTR_XOR_PEER_ADDRESS, &peer);
    stunkit_put(&w, STUNKIT_ATTR_DATA, payload, sizeof(payload));
    size_t ilen = (size_t)stunkit_writer_finish(&w);
    int passed = 0;
    for (int i = 0; i < 20; i++) {
        send_to_server(ind, ilen, &client, &ob);
        passed += (int)ob.n;
    }
    CHECK_EQ(passed, 10); /* 1000 bytes in the first second */
    now_ms += 500;
    passed = 0;
    for (int i = 0; i < 20; i++) {
        send_to_server(ind, ilen, &client, &ob);
        passed += (int)ob.n;
    }
    CHECK_EQ(passed, 5); /* half a second refills 500 */
    /* the peer's direction draws on the same budget */
    skd_alloc *a = NULL;
    for (size_t i = 0; i < SKD_TURN_BUCKETS && !a; i++)
        a = turn.by_tuple[i];
    skd_outbox_init(&ob, outbuf, sizeof(outbuf), slots, 4);
    if (a)
        skd_turn_from_peer(&turn, &a->relay, &peer, payload, sizeof(payload), now_ms, &ob);
    CHECK_EQ(ob.n, 0u);
    CHECK_EQ(turn.over_quota, 26u);
    close(turn.epfd);
    skd_turn_free(&turn);
}

/* The server's own sockets, as stunkitd's options give them (every
 * --listen, the TLS/DTLS port, metrics), are never peers: CreatePermission
 * 403 even inside an opened range, and a Send indication under a permission
 * for their IP does not reach their port (issue 23 item 7). */
static void send_to(const char *to, const char *text, skd_outbox *ob)
{
    stunkit_writer w;
    uint8_t ind[256], t0[12] = {4};
    stunkit_addr peer;
    stunkit_addr_parse(to, 0, &peer);
    stunkit_writer_init(&w, ind, sizeof(ind), STUNKIT_METHOD_SEND, STUNKIT_CLASS_INDICATION, t0);
    stunkit_put_addr(&w, STUNKIT_ATTR_XOR_PEER_ADDRESS, &peer);
    stunkit_put(&w, STUNKIT_ATTR_DATA, text, strlen(text));
    send_to_server(ind, (size_t)stunkit_writer_finish(&w), &client, ob);
}

static void test_own_sockets(void)
{
    uint8_t req[1024];
    skd_outbox ob;
    size_t len;
    setup();
    skd_config sc;
    char *argv[] = {"stunkitd", "--listen", "127.0.0.2:3478", "--listen", "127.0.0.1:3478", "--tls-cert", "c.pem",
                    "--tls-key", "k.pem", "--metrics", "127.0.0.1:9478", "--turn", "--credential", "alice:s3cret",
                    NULL};
    CHECK_EQ(skd_config_parse(&sc, 14, argv), 0);
    skd_sock_spec specs[32];
    skd_config_sockets(&sc, specs, 32, &cfg);
    cfg.auth = &auth;
    turn.own = cfg.own;
    turn.n_own = cfg.n_own;
    const char *why;
    skd_cidr_parse("127.0.0.0/8", &tcfg.policy.allowed[tcfg.policy.n_allowed++], &why);
    len = request(req, STUNKIT_METHOD_ALLOCATE, USER, PASS, udp_transport, NULL, NULL);
    send_to_server(req, len, &client, &ob);
    CHECK_EQ(code_of(&ob), 0);
    static const char *const own[] = {"127.0.0.2:3478", "127.0.0.1:3478", "127.0.0.2:5349", "127.0.0.1:5349",
                                      "127.0.0.1:9478", "[::ffff:127.0.0.2]:3478"};
    int wrong = 0;
    for (size_t i = 0; i < sizeof(own) / sizeof(own[0]); i++) {
        len = request(req, STUNKIT_METHOD_CREATE_PERMISSION, USER, PASS, peer_attr, own[i], NULL);
        send_to_server(req, len, &client, &ob);
        if (code_of(&ob) != 403 && !(own[i][0] == '[' && code_of(&ob) == 443)) {
            fprintf(stderr, "  own socket %s: %d\n", own[i], code_of(&ob));
            wrong++;
        }
    }
    CHECK_EQ(wrong, 0);
    /* the same IP on another port: allowed (the range is open) */
    len = request(req, STUNKIT_METHOD_CREATE_PERMISSION, USER, PASS, peer_attr, "127.0.0.1:3479", NULL);
    send_to_server(req, len, &client, &ob);
    CHECK_EQ(code_of(&ob), 0);
    send_to("127.0.0.1:3479", "fine", &ob);
    CHECK_EQ(ob.n, 1u);
    uint64_t refused = turn.peer_refused;
    static const int on_127_0_0_1[] = {1, 3, 4}; /* the permission is for 127.0.0.1 */
    for (int i = 0; i < 3; i++) {
        send_to(own[on_127_0_0_1[i]], "into the server", &ob);
        CHECK_EQ(ob.n, 0u);
    }
    CHECK_EQ(turn.peer_refused, refused + 3);
    skd_config_free(&sc);
    close(turn.epfd);
    skd_turn_free(&turn);
}

int main(void)
{
    RUN(test_own_sockets);
    RUN(test_allocate);
    RUN(test_bandwidth);
    RUN(test_dual);
    RUN(test_permissions_and_data);
    TEST_END();
}
