/*
 * turn_client_test.c - the TURN client machine (stunkit/turn.h) against
 * stunkitd's relay (turn_relay.c through the handler), both in process on a fake
 * clock: the 401 dance, allocation, permission, channel, data both ways as
 * Send/Data indications and as ChannelData (two clients, each the other's
 * peer through its relay), refreshes before expiry, a 438 nonce, a wrong
 * password, a server that never answers, and close.
 */
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "handler.h"
#include "stunkit/turn.h"
#include "server_fixture.h"
#include "test.h"
#include "turn_relay.h"

static uint64_t now_ms = 1000000;
static uint64_t now_s = 1795470000;
static skd_handler_cfg cfg;
static skd_auth auth;
static skd_turn_cfg tcfg;
static skd_turn_limits limits;
static skd_turn server;
static uint8_t obuf[16384];
static skd_out oslots[4];

static void server_setup(uint32_t nonce_lifetime)
{
    const char *why;
    static const char *const users[] = {"alice:wonderland", "bob:builder", NULL};
    fx_server_config(&cfg, &auth, users, "example.org", nonce_lifetime);
    fx_turn_config(&tcfg, 42000, 10);
    /* the relays live on loopback here: open it, as a lab must */
    skd_cidr_parse("127.0.0.1/32", &tcfg.policy.allowed[tcfg.policy.n_allowed++], &why);
    skd_turn_limits_free(&limits);
    skd_turn_limits_init(&limits, tcfg.max_allocations, tcfg.user_quota, 7);
    skd_turn_init(&server, &tcfg, &limits, epoll_create1(EPOLL_CLOEXEC), 1, 99, now_ms);
}

static void server_teardown(void)
{
    close(server.epfd);
    skd_turn_free(&server);
}

typedef struct client {
    stunkit_turn *m;
    stunkit_transport tr;
    int sent; /* messages handed to the server */
    stunkit_addr addr;
    int allocated, permitted, bound, failed, closed, last_code, redirected;
    stunkit_addr alternate;
    stunkit_addr relayed, relayed2;
    char got[64];
    size_t got_len;
    int got_count;
} client;

static client *clients[2];
static int server_silent;
static int drop_answers_to_a; /* the server acts on clients[0]'s requests, its answers never arrive */

/* Delivers one datagram a client sent to the server, and everything that
 * comes of it (answers to the client; relayed data to the other client). */
static void to_server(client *c, const uint8_t *data, size_t len);

static void deliver_to_client(client *c, const uint8_t *data, size_t len)
{
    stunkit_app_data d;
    int rv = stunkit_turn_input(c->m, 0, NULL, data, len, now_ms, &d);
    if (rv == STUNKIT_INPUT_APP_DATA && d.len < sizeof(c->got)) {
        memcpy(c->got, d.data, d.len);
        c->got_len = d.len;
        c->got_count++;
    }
}

static void to_server(client *c, const uint8_t *data, size_t len)
{
    c->sent++;
    if (server_silent)
        return;
    skd_request rq;
    skd_outbox ob;
    memset(&rq, 0, sizeof(rq));
    rq.data = data;
    rq.len = len;
    rq.src = c->addr;
    rq.dst = cfg.v4.ip[0];
    rq.transport = c->tr;
    rq.now_s = now_s;
    rq.now_ms = now_ms;
    rq.turn = &server;
    skd_outbox_init(&ob, obuf, sizeof(obuf), oslots, 4);
    if (!skd_turn_from_client(&server, &rq, &ob))
        skd_handle(&cfg, &rq, &ob);
    for (size_t i = 0; i < ob.n; i++) {
        skd_out *o = &ob.out[i];
        if (o->relay_fd < 0) {
            for (int k = 0; k < 2; k++)
                if (clients[k] && stunkit_addr_equal(&o->to, &clients[k]->addr) && !(k == 0 && drop_answers_to_a))
                    deliver_to_client(clients[k], o->data, o->len);
            continue;
        }
        /* relayed: to the other client's relay, arriving from ours */
        skd_alloc *from = NULL, *to = NULL;
        for (size_t b = 0; b < SKD_TURN_BUCKETS; b++)
            for (skd_alloc *a = server.by_tuple[b]; a; a = a->hnext) {
                if (a->relay.fd == o->relay_fd)
                    from = a;
                if (stunkit_addr_equal(&a->relay.addr, &o->to))
                    to = a;
            }
        if (!from || !to)
            continue;
        uint8_t copy[2048];
        memcpy(copy, o->data, o->len);
        skd_outbox ob2;
        static uint8_t obuf2[8192];
        static skd_out slots2[4];
        skd_outbox_init(&ob2, obuf2, sizeof(obuf2), slots2, 4);
        skd_turn_from_peer(&server, &to->relay, &from->relay.addr, copy, o->len, now_ms, &ob2);
        for (size_t j = 0; j < ob2.n; j++)
            for (int k = 0; k < 2; k++)
                if (clients[k] && stunkit_addr_equal(&ob2.out[j].to, &clients[k]->addr))
                    deliver_to_client(clients[k], ob2.out[j].data, ob2.out[j].len);
    }
}

/* Runs both machines until neither has anything to do now. */
static void pump(void)
{
    for (int rounds = 0; rounds < 1000; rounds++) {
        int busy = 0;
        for (int k = 0; k < 2; k++) {
            client *c = clients[k];
            if (!c)
                continue;
            stunkit_turn_output out;
            while (stunkit_turn_poll(c->m, now_ms, &out) == 1) {
                busy = 1;
                if (out.send) {
                    to_server(c, out.data, out.len);
                    continue;
                }
                switch (out.event) {
                case STUNKIT_TURN_EVENT_ALLOCATED:
                    c->allocated++;
                    c->relayed = out.relayed;
                    c->relayed2 = out.relayed2;
                    break;
                case STUNKIT_TURN_EVENT_PERMITTED: c->permitted++; break;
                case STUNKIT_TURN_EVENT_BOUND: c->bound++; break;
                case STUNKIT_TURN_EVENT_FAILED:
                    c->failed++;
                    c->last_code = out.error_code;
                    break;
                case STUNKIT_TURN_EVENT_CLOSED: c->closed++; break;
                case STUNKIT_TURN_EVENT_REDIRECTED:
                    c->redirected++;
                    c->alternate = out.peer;
                    break;
                default: break;
                }
            }
            /* nothing now: the timeout is later (stunkit/machine.h; else a driver spins) */
            CHECK(stunkit_turn_timeout(c->m) > now_ms);
        }
        if (!busy)
            return;
    }
}

/* Moves the fake clock to the earliest deadline (at most to limit). */
static void advance(uint64_t limit)
{
    uint64_t next = limit;
    for (int k = 0; k < 2; k++)
        if (clients[k]) {
            uint64_t n = stunkit_turn_timeout(clients[k]->m);
            if (n < next)
                next = n;
        }
    if (next > now_ms) {
        now_s += (next - now_ms) / 1000;
        now_ms = next;
    }
    skd_turn_tick(&server, now_ms);
}

static uint32_t seed = 42;

static void client_init_dual(client *c, const char *addr, const char *user, const char *pass, stunkit_transport tr,
                             int dual)
{
    memset(c, 0, sizeof(*c));
    c->tr = tr;
    stunkit_addr_parse(addr, 0, &c->addr);
    stunkit_turn_config tc = STUNKIT_CONFIG_INIT(tc);
    tc.server = cfg.v4.ip[0];
    tc.username = user;
    tc.password = pass;
    tc.env.random = test_random;
    tc.env.random_ctx = &seed;
    tc.transport = tr;
    tc.dual = dual;
    c->m = stunkit_turn_new(&tc, now_ms);
}

static void client_init_tr(client *c, const char *addr, const char *user, const char *pass, stunkit_transport tr)
{
    client_init_dual(c, addr, user, pass, tr, 0);
}

static void client_init(client *c, const char *addr, const char *user, const char *pass)
{
    client_init_tr(c, addr, user, pass, STUNKIT_UDP);
}

/* Issue 24 item 2: a dual allocation (RFC 8656 7.2). With an IPv6 relay
 * address configured, one Allocate over IPv4 gives both relayed addresses
 * (ADDITIONAL-ADDRESS-FAMILY), and data goes to an IPv6 peer through it;
 * without one the answer's ADDRESS-ERROR-CODE leaves the IPv4 one alone. */
static void test_dual(void)
{
    for (int with_v6 = 1; with_v6 >= 0; with_v6--) {
        client a;
        server_setup(600);
        if (with_v6) {
            const char *why;
            stunkit_addr_parse("::1", 0, &tcfg.relay_ip[tcfg.n_relay_ip++]);
            skd_cidr_parse("::1/128", &tcfg.policy.allowed[tcfg.policy.n_allowed++], &why);
        }
        client_init_dual(&a, "127.0.0.1:50011", "alice", "wonderland", STUNKIT_UDP, 1);
        clients[0] = &a;
        pump();
        CHECK_EQ(a.allocated, 1);
        CHECK_EQ(a.failed, 0);
        CHECK_EQ(a.relayed.family, STUNKIT_AF_INET);
        if (with_v6) {
            CHECK_EQ(a.relayed2.family, STUNKIT_AF_INET6);
            stunkit_addr peer;
            stunkit_addr_parse("[::1]:9", 0, &peer);
            CHECK_EQ(stunkit_turn_permit(a.m, &peer, now_ms), 0);
            pump();
            CHECK_EQ(a.permitted, 1);
            CHECK_EQ(a.failed, 0);
        } else {
            CHECK_EQ(a.relayed2.family, 0);
        }
        stunkit_turn_free(a.m);
        clients[0] = NULL;
        server_teardown();
    }
}

/* RFC 8489 10: a draining server answers the (authenticated) Allocate
 * with 300 and ALTERNATE-SERVER; the machine says REDIRECTED and asks the
 * alternate. Here every datagram reaches the same server, which redirects
 * again to the same alternate: "If the client has been redirected to a
 * server to which it has already sent this request within the last five
 * minutes, it MUST ignore the redirection and consider the transaction to
 * have failed". Then, the drain over, the same request succeeds. */
static void test_redirect(void)
{
    client a;
    server_setup(600);
    stunkit_addr_parse("127.0.0.9:3478", 0, &tcfg.alternates[0]);
    tcfg.n_alternates = 1;
    limits.draining = 1;
    client_init(&a, "127.0.0.1:50021", "alice", "wonderland");
    clients[0] = &a;
    pump();
    CHECK_EQ(a.redirected, 1);
    CHECK(stunkit_addr_equal(&a.alternate, &tcfg.alternates[0]));
    CHECK_EQ(a.allocated, 0);
    CHECK_EQ(a.failed, 1);
    CHECK_EQ(a.last_code, 300);
    stunkit_turn_free(a.m);
    limits.draining = 0;
    client_init(&a, "127.0.0.1:50022", "alice", "wonderland");
    pump();
    CHECK_EQ(a.allocated, 1);
    CHECK_EQ(a.redirected, 0);
    stunkit_turn_free(a.m);
    clients[0] = NULL;
    tcfg.n_alternates = 0;
    server_teardown();
}

static void test_two_clients(void)
{
    client a, b;
    server_setup(600);
    client_init(&a, "127.0.0.1:50001", "alice", "wonderland");
    client_init(&b, "127.0.0.1:50002", "bob", "builder");
    clients[0] = &a;
    clients[1] = &b;
    pump();
    CHECK_EQ(a.allocated, 1);
    CHECK_EQ(b.allocated, 1);
    CHECK_EQ(server.n_allocs, 2);
    /* Send indications both ways after permissions */
    CHECK_EQ(stunkit_turn_permit(a.m, &b.relayed, now_ms), 0);
    CHECK_EQ(stunkit_turn_permit(b.m, &a.relayed, now_ms), 0);
    pump();
    CHECK_EQ(a.permitted, 1);
    CHECK_EQ(b.permitted, 1);
    uint8_t dg[256];
    int n = stunkit_turn_send(a.m, &b.relayed, (const uint8_t *)"via indications", 15, dg, sizeof(dg));
    CHECK(n > 15 && dg[0] == 0x00 && dg[1] == 0x16); /* a Send indication */
    to_server(&a, dg, (size_t)n);
    CHECK_EQ(b.got_count, 1);
    CHECK(b.got_len == 15 && !memcmp(b.got, "via indications", 15));
    /* channels: ChannelData both ways */
    CHECK_EQ(stunkit_turn_bind(a.m, &b.relayed, now_ms), 0);
    CHECK_EQ(stunkit_turn_bind(b.m, &a.relayed, now_ms), 0);
    pump();
    CHECK_EQ(a.bound, 1);
    CHECK_EQ(b.bound, 1);
    n = stunkit_turn_send(b.m, &a.relayed, (const uint8_t *)"via channel", 11, dg, sizeof(dg));
    CHECK(n == 15 && dg[0] == 0x40); /* ChannelData */
    to_server(&b, dg, (size_t)n);
    CHECK_EQ(a.got_count, 1);
    CHECK(a.got_len == 11 && !memcmp(a.got, "via channel", 11));
    /* an hour on the fake clock: allocation (600 s), permissions and channels
     * are refreshed before they expire, and data still flows */
    uint64_t end = now_ms + 3600 * 1000ull;
    while (now_ms < end) {
        advance(end);
        pump();
    }
    CHECK_EQ(server.n_allocs, 2);
    CHECK_EQ(a.failed + b.failed, 0);
    n = stunkit_turn_send(a.m, &b.relayed, (const uint8_t *)"an hour on", 10, dg, sizeof(dg));
    to_server(&a, dg, (size_t)n);
    CHECK_EQ(b.got_count, 2);
    /* close: the server deletes it */
    CHECK_EQ(stunkit_turn_close(a.m, now_ms), 0);
    pump();
    CHECK_EQ(a.closed, 1);
    CHECK_EQ(server.n_allocs, 1);
    stunkit_turn_free(a.m);
    stunkit_turn_free(b.m);
    clients[0] = clients[1] = NULL;
    server_teardown();
}

/* Issue 24: a permission is for an IP, so the client sends to any port of
 * a permitted IP (a peer behind a symmetric NAT answers from a new port);
 * and a channel's data is taken once the ChannelBind went out, though its
 * success was lost. */
static void test_permission_per_ip_and_lost_bind(void)
{
    client a, b;
    server_setup(600);
    client_init(&a, "127.0.0.1:50011", "alice", "wonderland");
    client_init(&b, "127.0.0.1:50012", "bob", "builder");
    clients[0] = &a;
    clients[1] = &b;
    pump();
    CHECK_EQ(stunkit_turn_permit(a.m, &b.relayed, now_ms), 0);
    pump();
    CHECK_EQ(a.permitted, 1);
    uint8_t dg[256];
    stunkit_addr other_port = b.relayed;
    other_port.port = (uint16_t)(b.relayed.port + 1);
    int n = stunkit_turn_send(a.m, &other_port, (const uint8_t *)"new port", 8, dg, sizeof(dg));
    CHECK(n > 8 && dg[0] == 0x00 && dg[1] == 0x16); /* a Send indication to the new port */
    stunkit_addr elsewhere = b.relayed;
    elsewhere.ip[3] ^= 1;
    CHECK_EQ(stunkit_turn_send(a.m, &elsewhere, (const uint8_t *)"x", 1, dg, sizeof(dg)), STUNKIT_ERR_STATE);
    /* A binds a channel to B's relay; the server binds it, but its success
     * never reaches A */
    CHECK_EQ(stunkit_turn_permit(b.m, &a.relayed, now_ms), 0);
    pump();
    drop_answers_to_a = 1;
    CHECK_EQ(stunkit_turn_bind(a.m, &b.relayed, now_ms), 0);
    pump();
    drop_answers_to_a = 0;
    CHECK_EQ(a.bound, 0);
    /* B's data reaches A's relay; the server sends it on the channel */
    int before = a.got_count;
    n = stunkit_turn_send(b.m, &a.relayed, (const uint8_t *)"on the channel", 14, dg, sizeof(dg));
    CHECK(n > 0);
    to_server(&b, dg, (size_t)n);
    CHECK_EQ(a.got_count, before + 1);
    CHECK(a.got_len == 14 && !memcmp(a.got, "on the channel", 14));
    stunkit_turn_free(a.m);
    stunkit_turn_free(b.m);
    clients[0] = clients[1] = NULL;
    server_teardown();
}

static void test_failures(void)
{
    client a;
    /* a wrong password: the 401 is answered once, the second ends it */
    server_setup(600);
    client_init(&a, "127.0.0.1:50003", "alice", "not-the-password");
    clients[0] = &a;
    pump();
    CHECK_EQ(a.allocated, 0);
    CHECK_EQ(a.failed, 1);
    CHECK_EQ(a.last_code, 401);
    CHECK_EQ(server.n_allocs, 0);
    stunkit_turn_free(a.m);

    /* nonces that go stale every 10 s: requests after that get 438 and are
     * retried with the new nonce, transparently */
    server_teardown();
    server_setup(10);
    client_init(&a, "127.0.0.1:50004", "alice", "wonderland");
    pump();
    CHECK_EQ(a.allocated, 1);
    now_s += 60;
    now_ms += 60000;
    stunkit_addr peer;
    stunkit_addr_parse("198.51.100.7:5000", 0, &peer);
    CHECK_EQ(stunkit_turn_permit(a.m, &peer, now_ms), 0);
    pump();
    CHECK_EQ(a.permitted, 1);
    CHECK_EQ(a.failed, 0);
    /* a refused peer: FAILED with 403 and the peer */
    stunkit_addr bad;
    stunkit_addr_parse("10.0.0.1:5000", 0, &bad);
    CHECK_EQ(stunkit_turn_permit(a.m, &bad, now_ms), 0);
    pump();
    CHECK_EQ(a.failed, 1);
    CHECK_EQ(a.last_code, 403);
    stunkit_turn_free(a.m);

    /* no server: the RFC schedule, then FAILED (0) and CLOSED, on the fake clock */
    client_init(&a, "127.0.0.1:50005", "alice", "wonderland");
    server_silent = 1;
    uint64_t t0 = now_ms;
    for (int i = 0; i < 100; i++) {
        pump();
        if (a.failed)
            break;
        advance(now_ms + 60000);
    }
    server_silent = 0;
    CHECK_EQ(a.failed, 1);
    CHECK_EQ(a.last_code, 0);
    fprintf(stderr, "no server: FAILED after %llu ms (fake)\n", (unsigned long long)(now_ms - t0));
    CHECK(now_ms - t0 >= 39000 && now_ms - t0 <= 40000);
    stunkit_turn_free(a.m);
    clients[0] = NULL;
    server_teardown();

    /* the contract */
    stunkit_turn_config tc = STUNKIT_CONFIG_INIT(tc);
    tc.username = "x";
    tc.password = "y";
    CHECK(stunkit_turn_new(&tc, 0) == NULL); /* no randomness */
}

/* Over TCP: requests go once (RFC 8489 6.2.2), ChannelData is padded to
 * four bytes (RFC 8656 12.5), and the end of the connection ends the
 * allocation. The stream is cut with stunkit_turn_frame(). */
static void test_stream(void)
{
    client a, b;
    server_setup(600);
    client_init_tr(&a, "127.0.0.1:50011", "alice", "wonderland", STUNKIT_TCP);
    client_init_tr(&b, "127.0.0.1:50012", "bob", "builder", STUNKIT_UDP);
    clients[0] = &a;
    clients[1] = &b;
    pump();
    CHECK_EQ(a.allocated, 1);
    CHECK_EQ(b.allocated, 1);
    CHECK_EQ(stunkit_turn_bind(a.m, &b.relayed, now_ms), 0);
    CHECK_EQ(stunkit_turn_bind(b.m, &a.relayed, now_ms), 0);
    pump();
    CHECK_EQ(a.bound + b.bound, 2);
    /* five bytes: 4 + 5 = 9, padded to 12 over TCP; 9 over UDP */
    uint8_t dg[64], stream[256];
    int n = stunkit_turn_send(a.m, &b.relayed, (const uint8_t *)"hello", 5, dg, sizeof(dg));
    CHECK_EQ(n, 12);
    CHECK(dg[2] == 0 && dg[3] == 5 && dg[9] == 0 && dg[10] == 0 && dg[11] == 0);
    CHECK_EQ(stunkit_turn_send(a.m, &b.relayed, (const uint8_t *)"hello", 5, dg, 11), STUNKIT_ERR_NOBUF);
    to_server(&a, dg, (size_t)n);
    CHECK(b.got_count == 1 && b.got_len == 5 && !memcmp(b.got, "hello", 5));
    CHECK_EQ(stunkit_turn_send(b.m, &a.relayed, (const uint8_t *)"hello", 5, dg, sizeof(dg)), 9);

    /* framing: a STUN message, a padded ChannelData and another STUN
     * message back to back; every prefix is either short or frames right */
    size_t len = 0, need;
    stunkit_writer w;
    uint8_t tid[12] = {1, 2, 3};
    stunkit_writer_init(&w, stream, sizeof(stream), STUNKIT_METHOD_BINDING, STUNKIT_CLASS_REQUEST, tid);
    stunkit_put_fingerprint(&w);
    int m1 = stunkit_writer_finish(&w);
    CHECK_EQ(m1, 28);
    len = (size_t)m1;
    memcpy(stream + len, dg, 12); /* a padded ChannelData from above (a's) */
    n = stunkit_turn_send(a.m, &b.relayed, (const uint8_t *)"hello", 5, stream + len, sizeof(stream) - len);
    len += (size_t)n;
    memcpy(stream + len, stream, (size_t)m1);
    len += (size_t)m1;
    size_t expect[] = {28, 12, 28};
    for (size_t cut = 0; cut <= len; cut++) {
        size_t off = 0;
        int k = 0, bad = 0;
        for (;;) {
            int rv = stunkit_turn_frame(stream + off, cut - off, &need);
            if (rv == STUNKIT_ERR_TRUNCATED || (rv == 0 && need > cut - off))
                break;
            if (rv != 0 || need != expect[k]) {
                bad = 1;
                break;
            }
            off += need;
            k++;
        }
        if (bad || (cut == len && k != 3))
            CHECK_FAIL("framing went wrong at a prefix");
    }
    uint8_t junk[4] = {0x80, 0, 0, 4}, odd[4] = {0x01, 0x01, 0x00, 0x05}, one[1] = {0xC0};
    CHECK_EQ(stunkit_turn_frame(junk, 4, &need), STUNKIT_ERR_NOT_STUN);
    CHECK_EQ(stunkit_turn_frame(one, 1, &need), STUNKIT_ERR_NOT_STUN);
    CHECK_EQ(stunkit_turn_frame(odd, 4, &need), STUNKIT_ERR_BAD_LENGTH); /* STUN lengths are multiples of 4 */
    CHECK_EQ(stunkit_turn_frame(odd, 0, &need), STUNKIT_ERR_TRUNCATED);

    /* a silent server: over TCP the Refresh goes out once, and the answer
     * is awaited 39.5 s (no retransmissions) */
    server_silent = 1;
    int sent0 = a.sent;
    CHECK_EQ(stunkit_turn_refresh(a.m, now_ms), 0);
    uint64_t t0 = now_ms;
    for (int i = 0; i < 100; i++) {
        pump();
        if (a.failed)
            break;
        advance(now_ms + 60000);
    }
    server_silent = 0;
    CHECK_EQ(a.sent - sent0, 1);
    CHECK_EQ(a.failed, 1);
    fprintf(stderr, "silent server over TCP: 1 send, FAILED after %llu ms (fake)\n", (unsigned long long)(now_ms - t0));
    CHECK(now_ms - t0 >= 39500 && now_ms - t0 < 40000);

    /* the connection ends: FAILED and CLOSED, once */
    int failed = b.failed, closed = b.closed;
    stunkit_turn_disconnected(b.m);
    stunkit_turn_disconnected(b.m);
    pump();
    CHECK_EQ(b.failed - failed, 1);
    CHECK_EQ(b.closed - closed, 1);
    CHECK_EQ(stunkit_turn_send(b.m, &a.relayed, (const uint8_t *)"x", 1, dg, sizeof(dg)), STUNKIT_ERR_STATE);
    stunkit_turn_free(a.m);
    stunkit_turn_free(b.m);
    clients[0] = clients[1] = NULL;
    server_teardown();
}

int main(void)
{
    RUN(test_two_clients);
    RUN(test_dual);
    RUN(test_permission_per_ip_and_lost_bind);
    RUN(test_failures);
    RUN(test_stream);
    RUN(test_redirect);
    TEST_END();
}
