/*
 * rendezvous_test.c - the rendezvous client machine (stunkit/rendezvous.h)
 * against stunkitd's rooms (rooms.c through the handler), in process on
 * a fake clock: two peers meet and trade trickled descriptions byte for
 * byte (also with a third of the datagrams lost and with duplicates), roles,
 * a full room, every bound (description size, rooms per user, rooms in all,
 * silence, lifetime), leaving, a wrong password, a silent server, malformed
 * requests, truncated answers, and no answer over twice its request.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "handler.h"
#include "rooms.h"
#include "stunkit/rendezvous.h"
#include "server_fixture.h"
#include "test.h"

static uint64_t now_ms = 5000000;
static uint64_t now_s = 1795470000;
static skd_handler_cfg cfg;
static skd_auth auth;
static skd_rdv rooms;
static uint8_t obuf[16384];
static skd_out oslots[4];
static int drop_every;   /* drop every n-th datagram, both ways (0: none) */
static int duplicate;    /* deliver every request twice */
static int server_silent;
static int answers_lost; /* the server acts on requests, its answers never arrive */
static unsigned long n_datagrams, max_ratio_x100;

static void server_setup(int max_rooms, int user_rooms, uint32_t desc_max)
{
    static const char *const users[] = {"alice:wonderland", "bob:builder", NULL};
    fx_server_config(&cfg, &auth, users, "example.org", 600);
    skd_rdv_cfg rc = {1, max_rooms, user_rooms, 600, 30, desc_max, NULL, NULL};
    CHECK_EQ(skd_rdv_init(&rooms, &rc, 7), 0);
    cfg.rdv = &rooms;
    drop_every = duplicate = server_silent = answers_lost = 0;
    n_datagrams = max_ratio_x100 = 0;
}

static void server_teardown(void)
{
    skd_rdv_free(&rooms);
}

typedef struct peer {
    stunkit_rdv *m;
    stunkit_addr addr;
    uint32_t seed;
    int role_seen, offerer, failed, fail_code, left_events, left_done, sends;
    char reason[128];
    char got[STUNKIT_RDV_DESC_MAX + 1];
    size_t got_len;
} peer;

static uint32_t silence_cfg; /* the next peers' silence_ms (0: the default) */

static peer *new_peer(const char *room, const char *user, const char *pass, int port)
{
    peer *p = calloc(1, sizeof(*p));
    p->seed = (uint32_t)port * 2654435761u;
    stunkit_addr_parse("192.0.2.10", (uint16_t)port, &p->addr);
    stunkit_rdv_config c;
    memset(&c, 0, sizeof(c));
    c.size = sizeof(c);
    c.room = room;
    c.username = user;
    c.password = pass;
    c.env.random = test_random;
    c.env.random_ctx = &p->seed;
    c.silence_ms = silence_cfg;
    p->m = stunkit_rdv_new(&c, now_ms);
    CHECK(p->m != NULL);
    return p;
}

static void free_peer(peer *p)
{
    stunkit_rdv_free(p->m);
    free(p);
}

static int lost(void)
{
    return drop_every && ++n_datagrams % (unsigned long)drop_every == 0;
}

/* One datagram from p to the server; the answer straight back to p. */
static void to_server(peer *p, const uint8_t *data, size_t len)
{
    p->sends++;
    if (server_silent || lost())
        return;
    for (int copy = 0; copy < 1 + duplicate; copy++) {
        skd_request rq;
        skd_outbox ob;
        memset(&rq, 0, sizeof(rq));
        rq.data = data;
        rq.len = len;
        rq.src = p->addr;
        rq.dst = cfg.v4.ip[0];
        rq.transport = STUNKIT_UDP;
        rq.now_s = now_s;
        rq.now_ms = now_ms;
        skd_outbox_init(&ob, obuf, sizeof(obuf), oslots, 4);
        CHECK_EQ(skd_handle(&cfg, &rq, &ob), SKD_ANSWERED);
        for (size_t i = 0; i < ob.n; i++) {
            /* no amplification: an answer is at most twice its request */
            unsigned long ratio = (unsigned long)(ob.out[i].len * 100 / len);
            if (ratio > max_ratio_x100)
                max_ratio_x100 = ratio;
            if (!lost() && !answers_lost)
                stunkit_rdv_input(p->m, 0, NULL, ob.out[i].data, ob.out[i].len, now_ms);
        }
    }
}

static void pump(peer *p)
{
    stunkit_rdv_output o;
    while (stunkit_rdv_poll(p->m, now_ms, &o) == 1) {
        if (o.send) {
            uint8_t copy[2048];
            memcpy(copy, o.data, o.len);
            to_server(p, copy, o.len);
            continue;
        }
        switch (o.event) {
        case STUNKIT_RDV_EVENT_ROLE:
            p->role_seen++;
            p->offerer = o.offerer;
            break;
        case STUNKIT_RDV_EVENT_PEER_DATA:
            CHECK(p->got_len + o.len <= STUNKIT_RDV_DESC_MAX);
            if (p->got_len + o.len <= STUNKIT_RDV_DESC_MAX) {
                memcpy(p->got + p->got_len, o.data, o.len);
                p->got_len += o.len;
            }
            break;
        case STUNKIT_RDV_EVENT_PEER_LEFT:
            p->left_events++;
            p->got_len = 0; /* a new peer's description starts over */
            break;
        case STUNKIT_RDV_EVENT_FAILED:
            p->failed++;
            p->fail_code = o.error_code;
            memcpy(p->reason, o.reason, sizeof(p->reason));
            break;
        case STUNKIT_RDV_EVENT_LEFT: p->left_done++; break;
        }
    }
    /* nothing now: the timeout is later (stunkit/machine.h; else a driver spins) */
    CHECK(stunkit_rdv_timeout(p->m) > now_ms);
}

/* Runs the peers until done() or `ms` of fake time pass (1 ms steps up to
 * the earliest deadline). Returns the fake time spent. */
static uint64_t run(peer **ps, int n, uint64_t ms, int (*done)(peer **, int))
{
    uint64_t start = now_ms;
    while (now_ms - start < ms) {
        for (int i = 0; i < n; i++)
            pump(ps[i]);
        if (done && done(ps, n))
            break;
        uint64_t next = UINT64_MAX;
        for (int i = 0; i < n; i++) {
            uint64_t t = stunkit_rdv_timeout(ps[i]->m);
            if (t < next)
                next = t;
        }
        now_ms = next > now_ms + 1 ? (next < start + ms ? next : start + ms) : now_ms + 1;
        now_s = now_ms / 1000 + 1795465000;
    }
    return now_ms - start;
}

static const char *text_a, *text_b;

static int has_failed(peer **ps, int n)
{
    (void)n;
    return ps[0]->failed > 0;
}

static int has_role(peer **ps, int n)
{
    (void)n;
    return ps[0]->role_seen > 0;
}

static int both_complete(peer **ps, int n)
{
    (void)n;
    return ps[0]->got_len == strlen(text_b) && ps[1]->got_len == strlen(text_a);
}

static char *make_text(char seed, size_t len)
{
    char *t = malloc(len + 1);
    for (size_t i = 0; i < len; i++)
        t[i] = (i % 61 == 60) ? '\n' : (char)('a' + ((size_t)seed + i * 7) % 26);
    t[len] = 0;
    return t;
}

/* Two peers trade descriptions (A's trickled in three steps). */
static void meet(int drop, int dup)
{
    server_setup(100, 10, 4096);
    drop_every = drop;
    duplicate = dup;
    char *a = make_text(1, 3000), *b = make_text(5, 2500);
    text_a = a;
    text_b = b;
    peer *pa = new_peer("lab-room.1", "alice", "wonderland", 40001);
    peer *pb = new_peer("lab-room.1", "bob", "builder", 40002);
    peer *ps[2] = {pa, pb};
    CHECK_EQ(stunkit_rdv_set_description(pa->m, a, 1000, now_ms), 0);
    run(ps, 1, 5000, has_role); /* A alone first: A opens the room */
    CHECK_EQ(pa->role_seen, 1);
    CHECK_EQ(pa->offerer, 1);
    CHECK_EQ(stunkit_rdv_set_description(pb->m, b, 2500, now_ms), 0);
    CHECK_EQ(stunkit_rdv_set_description(pa->m, a, 2000, now_ms), 0);
    run(ps, 2, 150, NULL);
    /* not an extension of what was given: refused, nothing changes */
    CHECK_EQ(stunkit_rdv_set_description(pa->m, b, 2500, now_ms), STUNKIT_ERR_INVAL);
    CHECK_EQ(stunkit_rdv_set_description(pa->m, a, 3000, now_ms), 0);
    uint64_t took = run(ps, 2, 30000, both_complete);
    CHECK_EQ(pb->role_seen, 1);
    CHECK_EQ(pb->offerer, 0);
    CHECK_EQ(pa->got_len, 2500);
    CHECK_EQ(pb->got_len, 3000);
    CHECK(pa->got_len == 2500 && !memcmp(pa->got, b, 2500));
    CHECK(pb->got_len == 3000 && !memcmp(pb->got, a, 3000));
    CHECK_EQ(pa->failed + pb->failed, 0);
    CHECK(max_ratio_x100 <= 200);
    if (!drop)
        CHECK(took < 150); /* follow-ups at once, no waiting for the next poll (200 ms) */
    fprintf(stderr, "     drop 1/%d dup %d: complete after %llu ms (fake), sends A %d B %d, largest answer %lu%% of its request,"
            " loss seen A %u B %u permille\n",
            drop, dup, (unsigned long long)took, pa->sends, pb->sends, max_ratio_x100, stunkit_rdv_loss(pa->m),
            stunkit_rdv_loss(pb->m));
    /* the loss seen: none on a clean path; with a third of the datagrams
     * lost, some (an answered request needed more than one send) */
    if (!drop)
        CHECK(stunkit_rdv_loss(pa->m) == 0 && stunkit_rdv_loss(pb->m) == 0);
    else
        CHECK(stunkit_rdv_loss(pa->m) + stunkit_rdv_loss(pb->m) > 0);
    skd_rdv_counters c;
    skd_rdv_counters_get(&rooms, now_ms, &c);
    CHECK_EQ(c.rooms_open, 1);
    CHECK_EQ(c.peers_met, 1);

    /* a third peer: the room is full */
    peer *pc = new_peer("lab-room.1", "alice", "wonderland", 40003);
    drop_every = 0;
    run(&pc, 1, 25000, NULL);
    CHECK_EQ(pc->failed, 1);
    CHECK_EQ(pc->fail_code, 403);
    CHECK(strstr(pc->reason, "full") != NULL);
    free_peer(pc);

    /* A leaves: B hears it, and the room stays for B */
    stunkit_rdv_leave(pa->m, now_ms);
    run(ps, 2, 2000, NULL);
    CHECK_EQ(pa->left_done, 1);
    CHECK_EQ(pb->left_events, 1);
    CHECK_EQ(pb->got_len, 0);
    skd_rdv_counters_get(&rooms, now_ms, &c);
    CHECK_EQ(c.rooms_open, 1);
    /* a newcomer takes A's place: it is the offerer now, and B gets its description */
    peer *pd = new_peer("lab-room.1", "alice", "wonderland", 40004);
    CHECK_EQ(stunkit_rdv_set_description(pd->m, "a=ice-ufrag:dddd\r\n", 18, now_ms), 0);
    peer *ps2[2] = {pd, pb};
    run(ps2, 2, 2000, NULL);
    CHECK_EQ(pd->offerer, 1);
    CHECK_EQ(pd->got_len, 2500);
    CHECK(pb->got_len == 18 && !memcmp(pb->got, "a=ice-ufrag:dddd\r\n", 18));
    /* both leave: the room closes */
    stunkit_rdv_leave(pd->m, now_ms);
    stunkit_rdv_leave(pb->m, now_ms);
    run(ps2, 2, 2000, NULL);
    skd_rdv_counters_get(&rooms, now_ms, &c);
    CHECK_EQ(c.rooms_open, 0);
    free_peer(pd);
    free_peer(pa);
    free_peer(pb);
    free(a);
    free(b);
    server_teardown();
}

static void test_meet(void)
{
    meet(0, 0);
}

static void test_meet_lossy(void)
{
    meet(3, 0);
}

static void test_meet_duplicates(void)
{
    meet(0, 1);
}

static void test_bounds(void)
{
    server_setup(3, 2, 1024);
    /* a description over the server's bound */
    char *big = make_text(2, 1500);
    peer *p = new_peer("big", "alice", "wonderland", 40010);
    stunkit_rdv_set_description(p->m, big, 1500, now_ms);
    run(&p, 1, 25000, NULL);
    CHECK_EQ(p->failed, 1);
    CHECK_EQ(p->fail_code, 400);
    CHECK(strstr(p->reason, "1024") != NULL);
    free_peer(p);
    free(big);
    skd_rdv_counters c;
    skd_rdv_counters_get(&rooms, now_ms, &c);
    CHECK_EQ(c.refused_size, 1);

    /* rooms per user: alice has "big" (still open) and one more */
    peer *q[4];
    q[0] = new_peer("r1", "alice", "wonderland", 40011);
    q[1] = new_peer("r2", "alice", "wonderland", 40012);
    run(q, 2, 1000, NULL);
    CHECK_EQ(q[0]->failed, 0);
    CHECK_EQ(q[1]->failed, 1);
    CHECK_EQ(q[1]->fail_code, 486);
    /* rooms in all: bob opens the third; a fourth is beyond the server's bound */
    q[2] = new_peer("r3", "bob", "builder", 40013);
    q[3] = new_peer("r4", "bob", "builder", 40014);
    run(q + 2, 2, 1000, NULL);
    CHECK_EQ(q[2]->failed, 0);
    CHECK_EQ(q[3]->failed, 1);
    CHECK_EQ(q[3]->fail_code, 508);
    skd_rdv_counters_get(&rooms, now_ms, &c);
    CHECK_EQ(c.rooms_open, 3);
    CHECK_EQ(c.refused_quota, 1);
    CHECK_EQ(c.refused_capacity, 1);
    for (int i = 0; i < 4; i++)
        free_peer(q[i]);

    /* silence: every peer is gone after 30 s; their rooms close and a
     * new room can open again */
    now_ms += 31000;
    peer *r = new_peer("r5", "bob", "builder", 40015);
    run(&r, 1, 1000, NULL);
    CHECK_EQ(r->failed, 0);
    skd_rdv_counters_get(&rooms, now_ms, &c);
    CHECK_EQ(c.rooms_open, 1);

    /* a peer silent for 30 s loses its place; the other hears "left" */
    peer *s = new_peer("r5", "alice", "wonderland", 40016);
    stunkit_rdv_set_description(s->m, "hello\n", 6, now_ms);
    peer *rs[2] = {r, s};
    run(rs, 2, 1000, NULL);
    CHECK_EQ(r->got_len, 6);
    uint64_t t0 = now_ms;
    while (now_ms - t0 < 40000) { /* only r polls */
        pump(r);
        now_ms += 100;
    }
    CHECK_EQ(r->left_events, 1);
    CHECK_EQ(r->failed, 0);

    /* lifetime: the room closes 600 s after it opened, whoever is in it */
    t0 = now_ms;
    while (now_ms - t0 < 600000) {
        pump(r);
        now_ms += 500;
    }
    skd_rdv_counters_get(&rooms, now_ms, &c);
    CHECK(c.rooms_expired >= 1);
    free_peer(r);
    free_peer(s);
    server_teardown();
}

/* UDP answers never come back (a firewall), so the application moves the
 * machine to TCP: the same peer goes on, one place in the room, requests
 * sent once each. */
static void test_transport_switch(void)
{
    server_setup(10, 10, 4096);
    answers_lost = 1;
    peer *a = new_peer("switch", "alice", "wonderland", 40040);
    stunkit_rdv_set_description(a->m, "a=ice-ufrag:aaaa\r\n", 18, now_ms);
    run(&a, 1, 1000, NULL);
    CHECK(a->sends >= 2);
    CHECK_EQ(a->role_seen, 0);
    CHECK_EQ(stunkit_rdv_answered(a->m), 0);
    answers_lost = 0;
    stunkit_rdv_set_transport(a->m, STUNKIT_TCP, now_ms);
    run(&a, 1, 50, NULL);
    CHECK_EQ(a->role_seen, 1);
    CHECK_EQ(a->offerer, 1);
    CHECK(stunkit_rdv_answered(a->m));
    /* the server had seen the UDP requests: still one place, ours */
    peer *b = new_peer("switch", "bob", "builder", 40041);
    peer *ps[2] = {a, b};
    run(ps, 2, 500, NULL);
    CHECK_EQ(b->failed, 0);
    CHECK_EQ(b->offerer, 0);
    CHECK_EQ(b->got_len, 18);
    /* over TCP a request is sent once: a silent server means one send and a failure after 10 s */
    server_silent = 1;
    int before = a->sends;
    stunkit_rdv_set_description(a->m, "a=ice-ufrag:aaaa\r\na=x\r\n", 23, now_ms);
    uint64_t took = run(&a, 1, 30000, has_failed);
    CHECK_EQ(a->sends - before, 1);
    CHECK_EQ(a->failed, 1);
    CHECK(took >= 10000 && took < 11000);
    free_peer(a);
    free_peer(b);
    server_teardown();
}

static void test_wrong_password(void)
{
    server_setup(10, 10, 4096);
    peer *p = new_peer("room", "alice", "not-her-password", 40020);
    run(&p, 1, 25000, NULL);
    CHECK_EQ(p->failed, 1);
    CHECK_EQ(p->fail_code, 401);
    CHECK(strstr(p->reason, "password") != NULL);
    skd_rdv_counters c;
    skd_rdv_counters_get(&rooms, now_ms, &c);
    CHECK_EQ(c.rooms_opened, 0);
    free_peer(p);
    server_teardown();
}

static void test_silent_server(void)
{
    server_setup(10, 10, 4096);
    server_silent = 1;
    peer *p = new_peer("room", "alice", "wonderland", 40021);
    uint64_t took = run(&p, 1, 60000, NULL);
    CHECK_EQ(p->failed, 1);
    CHECK_EQ(p->fail_code, 0);
    CHECK_EQ(p->sends, 7);
    CHECK(took >= 19000);
    CHECK(strstr(p->reason, "no answer") != NULL);
    /* nothing after FAILED */
    CHECK_EQ(stunkit_rdv_timeout(p->m), UINT64_MAX);
    free_peer(p);
    server_teardown();
}

/* Once the server has answered, a lossy path does not end the rendezvous:
 * 17 s in which every request is lost (the old client gave up after one
 * request's 7 sends: failed at 19.75 s, before the server came back), then
 * answers again: still running, and the description gets up within a
 * second of the server's return (not in RFC 8489's last 4 s interval).
 * 25 s of silence: failed, about 20 s after the last answer. */
static int second_has_all(peer **ps, int n)
{
    (void)n;
    return ps[1]->got_len == strlen(text_a);
}

static void test_lossy_keeps_going(void)
{
    server_setup(10, 10, 4096);
    peer *a = new_peer("lossy", "alice", "wonderland", 40050);
    stunkit_rdv_set_description(a->m, "a=ice-ufrag:aaaa\r\n", 18, now_ms);
    run(&a, 1, 1000, NULL);
    CHECK_EQ(a->role_seen, 1);
    server_silent = 1;
    stunkit_rdv_set_description(a->m, "a=ice-ufrag:aaaa\r\na=x\r\n", 23, now_ms);
    run(&a, 1, 17000, has_failed);
    CHECK_EQ(a->failed, 0);
    server_silent = 0;
    peer *b = new_peer("lossy", "bob", "builder", 40051);
    peer *ps[2] = {a, b};
    text_a = "a=ice-ufrag:aaaa\r\na=x\r\n";
    text_b = "";
    uint64_t took = run(ps, 2, 5000, second_has_all);
    CHECK_EQ(a->failed, 0);
    CHECK_EQ(b->got_len, 23);
    CHECK(took <= 1500);
    server_silent = 1;
    took = run(&a, 1, 60000, has_failed);
    CHECK_EQ(a->failed, 1);
    CHECK(took >= 19000 && took <= 23000);
    free_peer(a);
    free_peer(b);
    server_teardown();
}

/* A fleet: the server goes silent (killed), the client, told after its
 * silence_ms (3 s here, and one short request), moves to another server that shares the rooms
 * (the same in-process store stands for Redis): the same peer carries on
 * there, its place and description kept, and meets the peer who came to
 * that server. Before any answer the silence ends waiting too (not RFC
 * 8489's 19.75 s); a machine that left does not come back. */
static void test_fleet_move(void)
{
    server_setup(10, 10, 4096);
    silence_cfg = 3000;
    peer *a = new_peer("fleet", "alice", "wonderland", 40060);
    text_a = "a=ice-ufrag:aaaa\r\na=ice-pwd:aaaaaaaaaaaaaaaaaaaaaa\r\n";
    stunkit_rdv_set_description(a->m, "a=ice-ufrag:aaaa\r\n", 18, now_ms);
    run(&a, 1, 1000, NULL);
    CHECK_EQ(a->role_seen, 1);
    CHECK_EQ(a->offerer, 1);
    uint64_t last = stunkit_rdv_last_answer(a->m);
    CHECK(last > 0);
    server_silent = 1; /* killed mid-exchange, with more to send */
    stunkit_rdv_set_description(a->m, text_a, strlen(text_a), now_ms);
    run(&a, 1, 60000, has_failed);
    CHECK_EQ(a->failed, 1);
    CHECK_EQ(a->fail_code, 0);
    CHECK(now_ms - last >= 3000 && now_ms - last <= 1000 + 3000 + 2750);
    CHECK_EQ(stunkit_rdv_timeout(a->m), UINT64_MAX);
    /* to the next server of the fleet */
    server_silent = 0;
    int sends = a->sends;
    stunkit_rdv_move(a->m, STUNKIT_UDP, now_ms);
    peer *b = new_peer("fleet", "bob", "builder", 40061);
    text_b = "a=ice-ufrag:bbbb\r\n";
    stunkit_rdv_set_description(b->m, text_b, strlen(text_b), now_ms);
    peer *ps[2] = {a, b};
    run(ps, 2, 5000, both_complete);
    CHECK(a->sends > sends);
    CHECK_EQ(a->failed, 1);    /* no second failure */
    CHECK_EQ(a->role_seen, 1); /* the same place: no second ROLE */
    CHECK_EQ(b->offerer, 0);   /* a still holds the first place */
    CHECK_EQ(b->got_len, strlen(text_a));
    CHECK_EQ(a->got_len, strlen(text_b));
    CHECK(stunkit_rdv_last_answer(a->m) > last);
    skd_rdv_counters c;
    skd_rdv_counters_get(&rooms, now_ms, &c);
    CHECK_EQ(c.rooms_open, 1);
    /* a machine that left stays done */
    stunkit_rdv_leave(a->m, now_ms);
    run(&a, 1, 2000, NULL);
    CHECK_EQ(a->left_done, 1);
    sends = a->sends;
    stunkit_rdv_move(a->m, STUNKIT_UDP, now_ms);
    run(&a, 1, 2000, NULL);
    CHECK_EQ(a->sends, sends);
    CHECK_EQ(stunkit_rdv_timeout(a->m), UINT64_MAX);
    free_peer(a);
    free_peer(b);
    /* never answered: the silence ends it (3 s and one short request, not 19.75 s) */
    server_silent = 1;
    peer *d = new_peer("fleet2", "alice", "wonderland", 40062);
    uint64_t took = run(&d, 1, 60000, has_failed);
    CHECK_EQ(d->failed, 1);
    CHECK(took >= 3000 && took <= 3000 + 2750);
    CHECK_EQ(d->sends, 8);
    free_peer(d);
    silence_cfg = 0;
    server_teardown();
}

/* What raw() sends besides its arguments: the user (alice unless set),
 * named by USERHASH; the PEER-ID; LEAVE. And the last answer it got. */
static const char *raw_user = "alice", *raw_pass = "wonderland", *raw_id = "12345678901234";
static int raw_userhash, raw_leave;
static uint8_t raw_answer[2048];
static size_t raw_answer_len;

/* A request built by hand (authenticated as alice) with the given attributes. */
static skd_verdict raw(const char *room, size_t room_len, size_t id_len, int ack, int off, const char *desc,
                       int *code, char *reason, size_t rcap)
{
    uint8_t buf[1500], key[16], tid[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    char nonce[SKD_NONCE_LEN];
    stunkit_writer w;
    stunkit_addr src;
    stunkit_addr_parse("192.0.2.99", 5000, &src);
    skd_auth_nonce(&auth, &src, now_s, nonce);
    stunkit_key_long_term(STUNKIT_PWALG_MD5, raw_user, strlen(raw_user), "example.org", 11, raw_pass,
                          strlen(raw_pass), key, 16);
    stunkit_writer_init(&w, buf, sizeof(buf), STUNKIT_METHOD_RENDEZVOUS, STUNKIT_CLASS_REQUEST, tid);
    if (room)
        stunkit_put(&w, STUNKIT_ATTR_RDV_ROOM, room, room_len);
    if (id_len)
        stunkit_put(&w, STUNKIT_ATTR_RDV_PEER_ID, raw_id, id_len);
    if (ack >= 0)
        stunkit_put_u32(&w, STUNKIT_ATTR_RDV_ACK, (uint32_t)ack);
    if (off >= 0)
        stunkit_put_u32(&w, STUNKIT_ATTR_RDV_OFFSET, (uint32_t)off);
    if (desc)
        stunkit_put(&w, STUNKIT_ATTR_RDV_DESCRIPTION, desc, strlen(desc));
    if (raw_leave)
        stunkit_put(&w, STUNKIT_ATTR_RDV_LEAVE, NULL, 0);
    if (raw_userhash) {
        uint8_t h[32];
        stunkit_userhash(raw_user, strlen(raw_user), "example.org", 11, h);
        stunkit_put(&w, STUNKIT_ATTR_USERHASH, h, 32);
    } else {
        stunkit_put(&w, STUNKIT_ATTR_USERNAME, raw_user, strlen(raw_user));
    }
    stunkit_put(&w, STUNKIT_ATTR_REALM, "example.org", 11);
    stunkit_put(&w, STUNKIT_ATTR_NONCE, nonce, sizeof(nonce));
    stunkit_put_integrity(&w, key, 16);
    int n = stunkit_writer_finish(&w);
    skd_request rq;
    skd_outbox ob;
    memset(&rq, 0, sizeof(rq));
    rq.data = buf;
    rq.len = (size_t)n;
    rq.src = src;
    rq.dst = cfg.v4.ip[0];
    rq.now_s = now_s;
    rq.now_ms = now_ms;
    skd_outbox_init(&ob, obuf, sizeof(obuf), oslots, 4);
    skd_verdict v = skd_handle(&cfg, &rq, &ob);
    *code = -1;
    reason[0] = 0;
    raw_answer_len = 0;
    if (v == SKD_ANSWERED && ob.n == 1 && ob.out[0].len <= sizeof(raw_answer)) {
        memcpy(raw_answer, ob.out[0].data, ob.out[0].len);
        raw_answer_len = ob.out[0].len;
    }
    if (v == SKD_ANSWERED && ob.n == 1) {
        stunkit_msg m;
        stunkit_attr a;
        *code = 0;
        if (stunkit_msg_parse(&m, ob.out[0].data, ob.out[0].len) == 0 &&
            stunkit_msg_find(&m, STUNKIT_ATTR_ERROR_CODE, &a) == 0) {
            const uint8_t *r;
            size_t rl;
            stunkit_attr_error_code(&a, code, &r, &rl);
            snprintf(reason, rcap, "%.*s", (int)rl, (const char *)r);
        }
    }
    return v;
}

static void test_malformed(void)
{
    server_setup(10, 10, 4096);
    int code;
    char reason[128];
    CHECK_EQ(raw("good", 4, 8, 0, -1, NULL, &code, reason, sizeof(reason)), SKD_ANSWERED);
    CHECK_EQ(code, 0);
    raw(NULL, 0, 8, 0, -1, NULL, &code, reason, sizeof(reason));
    CHECK_EQ(code, 400);
    CHECK(strstr(reason, "ROOM") != NULL);
    raw("bad room", 8, 8, 0, -1, NULL, &code, reason, sizeof(reason));
    CHECK_EQ(code, 400);
    raw("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 65, 8, 0, -1, NULL, &code, reason,
        sizeof(reason));
    CHECK_EQ(code, 400);
    raw("good", 4, 7, 0, -1, NULL, &code, reason, sizeof(reason));
    CHECK_EQ(code, 400);
    CHECK(strstr(reason, "PEER-ID") != NULL);
    raw("good", 4, 8, -1, -1, NULL, &code, reason, sizeof(reason));
    CHECK_EQ(code, 400);
    raw("good", 4, 8, 0, 0, NULL, &code, reason, sizeof(reason));
    CHECK_EQ(code, 400);
    raw("good", 4, 8, 0, -1, "abc", &code, reason, sizeof(reason));
    CHECK_EQ(code, 400);
    /* an offset beyond what the server holds: no error, nothing stored */
    raw("good", 4, 8, 0, 100, "abc", &code, reason, sizeof(reason));
    CHECK_EQ(code, 0);
    /* an offset near 2^32 does not wrap past the size check */
    raw("good", 4, 8, 0, (int)0x7FFFFFFF, "abc", &code, reason, sizeof(reason));
    CHECK_EQ(code, 400);
    /* overlapping uploads: what the server holds is kept, the rest appended */
    raw("overlap", 7, 8, 0, 0, "abc", &code, reason, sizeof(reason));
    CHECK_EQ(code, 0);
    raw("overlap", 7, 8, 0, 1, "bcdef", &code, reason, sizeof(reason));
    CHECK_EQ(code, 0);
    raw("overlap", 7, 8, 0, 0, "ab", &code, reason, sizeof(reason));
    CHECK_EQ(code, 0);
    peer *p = new_peer("overlap", "bob", "builder", 40025);
    run(&p, 1, 500, NULL);
    CHECK(p->got_len == 6 && !memcmp(p->got, "abcdef", 6));
    free_peer(p);
    /* the method is not served without --rendezvous: silently dropped */
    cfg.rdv = NULL;
    CHECK_EQ(raw("good", 4, 8, 0, -1, NULL, &code, reason, sizeof(reason)), SKD_DROP_METHOD);
    cfg.rdv = &rooms;
    server_teardown();
}

/* The answer's attributes after its header: what a LEAVE tells its sender
 * (integrity, whose key is the sender's own, left out). */
static size_t leave_answer_body(uint8_t *out, size_t cap)
{
    stunkit_msg m;
    stunkit_attr_iter it;
    stunkit_attr a;
    size_t n = 0;
    if (stunkit_msg_parse(&m, raw_answer, raw_answer_len) != 0)
        return 0;
    stunkit_attr_iter_init(&it, &m, 0);
    while (stunkit_attr_next(&it, &a) == 1) {
        if (a.type == STUNKIT_ATTR_MESSAGE_INTEGRITY || a.type == STUNKIT_ATTR_FINGERPRINT)
            continue;
        if (n + 4 + a.len > cap)
            break;
        out[n++] = (uint8_t)(a.type >> 8);
        out[n++] = (uint8_t)a.type;
        out[n++] = (uint8_t)(a.len >> 8);
        out[n++] = (uint8_t)a.len;
        memcpy(out + n, a.value, a.len);
        n += a.len;
    }
    return n;
}

/* Issue 23 item 6 and 5: only members hear about a room; a user's rooms
 * are counted once, whether named by USERNAME or USERHASH, and only while
 * they are alive; the open-rooms gauge says what is true now. */
static void test_strangers_and_quota(void)
{
    server_setup(100, 2, 4096);
    int code;
    char reason[128];
    /* alice's room, with her ICE credentials in it */
    raw_id = "AAAAAAAA";
    raw("secret-room", 11, 8, 0, 0, "a=ice-pwd:alicesecretpassword\r\n", &code, reason, sizeof(reason));
    CHECK_EQ(code, 0);
    /* bob, not a member, LEAVEs it and a room that does not exist: the two
     * answers say the same (no place, no description) */
    raw_user = "bob";
    raw_pass = "builder";
    raw_id = "BBBBBBBB";
    raw_leave = 1;
    uint8_t body_real[512], body_none[512];
    raw("secret-room", 11, 8, 0, -1, NULL, &code, reason, sizeof(reason));
    CHECK_EQ(code, 0);
    size_t n_real = leave_answer_body(body_real, sizeof(body_real));
    CHECK(memmem(raw_answer, raw_answer_len, "alicesecret", 11) == NULL);
    raw("no-such-room", 12, 8, 0, -1, NULL, &code, reason, sizeof(reason));
    CHECK_EQ(code, 0);
    size_t n_none = leave_answer_body(body_none, sizeof(body_none));
    CHECK(n_real > 0 && n_real == n_none && !memcmp(body_real, body_none, n_real));
    raw_leave = 0;
    /* alice still has her room (bob's LEAVE took nothing) */
    raw_user = "alice";
    raw_pass = "wonderland";
    raw_id = "AAAAAAAA";
    raw("secret-room", 11, 8, 0, -1, NULL, &code, reason, sizeof(reason));
    CHECK_EQ(code, 0);
    skd_rdv_counters c;
    skd_rdv_counters_get(&rooms, now_ms, &c);
    CHECK_EQ(c.rooms_open, 1);

    /* rooms per user (2): a second by USERHASH, a third either way is refused */
    raw_userhash = 1;
    raw("second", 6, 8, 0, -1, NULL, &code, reason, sizeof(reason));
    CHECK_EQ(code, 0);
    raw("third", 5, 8, 0, -1, NULL, &code, reason, sizeof(reason));
    CHECK_EQ(code, 486);
    raw_userhash = 0;
    raw("third", 5, 8, 0, -1, NULL, &code, reason, sizeof(reason));
    CHECK_EQ(code, 486);

    /* her peers fall silent: the rooms no longer count, though no sweep has
     * reached their buckets, and the gauge shows none open */
    now_ms += 31000;
    now_s += 31;
    raw("third", 5, 8, 0, -1, NULL, &code, reason, sizeof(reason));
    CHECK_EQ(code, 0);
    skd_rdv_counters_get(&rooms, now_ms, &c);
    CHECK_EQ(c.rooms_open, 1);
    /* and rooms past their lifetime are not counted open */
    raw("fourth", 6, 8, 0, -1, NULL, &code, reason, sizeof(reason));
    CHECK_EQ(code, 0);
    for (int i = 0; i < 24; i++) { /* 600 s, the peer speaking every 25 s */
        now_ms += 25000;
        now_s += 25;
        raw("fourth", 6, 8, 0, -1, NULL, &code, reason, sizeof(reason));
    }
    now_ms += 1000;
    skd_rdv_counters_get(&rooms, now_ms, &c);
    CHECK_EQ(c.rooms_open, 0);
    raw_id = "12345678901234";
    server_teardown();
}

/* Every truncated prefix (and a flipped byte) of a real answer: the
 * machine takes none of it, and the whole answer still works after. */
static void test_truncated_answers(void)
{
    server_setup(10, 10, 4096);
    peer *a = new_peer("t", "alice", "wonderland", 40030);
    peer *b = new_peer("t", "bob", "builder", 40031);
    stunkit_rdv_set_description(b->m, "a=ice-ufrag:bbbb\r\n", 18, now_ms);
    peer *ps[2] = {a, b};
    run(ps, 2, 300, NULL); /* a has its key now, b's bytes are on the server */
    CHECK_EQ(a->got_len, 18);
    stunkit_rdv_set_description(b->m, "a=ice-ufrag:bbbb\r\na=ice-pwd:pppppppppppppppppppppp\r\n", 52, now_ms);
    run(&b, 1, 50, NULL);
    /* catch a's next request and the server's answer */
    stunkit_rdv_output o;
    uint8_t req[2048];
    size_t req_len = 0;
    now_ms = stunkit_rdv_timeout(a->m);
    while (stunkit_rdv_poll(a->m, now_ms, &o) == 1)
        if (o.send) {
            memcpy(req, o.data, o.len);
            req_len = o.len;
            break;
        }
    CHECK(req_len > 0);
    skd_request rq;
    skd_outbox ob;
    memset(&rq, 0, sizeof(rq));
    rq.data = req;
    rq.len = req_len;
    rq.src = a->addr;
    rq.dst = cfg.v4.ip[0];
    rq.now_s = now_s;
    rq.now_ms = now_ms;
    skd_outbox_init(&ob, obuf, sizeof(obuf), oslots, 4);
    CHECK_EQ(skd_handle(&cfg, &rq, &ob), SKD_ANSWERED);
    uint8_t ans[2048];
    size_t ans_len = ob.out[0].len;
    memcpy(ans, ob.out[0].data, ans_len);
    int taken = 0;
    for (size_t n = 0; n < ans_len; n++)
        taken += stunkit_rdv_input(a->m, 0, NULL, ans, n, now_ms);
    CHECK_EQ(taken, 0);
    for (size_t i = 20; i < ans_len; i += 7) { /* a flipped byte: integrity fails, nothing taken */
        uint8_t bad[2048];
        memcpy(bad, ans, ans_len);
        bad[i] ^= 0x40;
        stunkit_rdv_input(a->m, 0, NULL, bad, ans_len, now_ms);
    }
    pump(a);
    CHECK_EQ(a->got_len, 18);
    CHECK_EQ(stunkit_rdv_input(a->m, 0, NULL, ans, ans_len, now_ms), STUNKIT_INPUT_TAKEN);
    pump(a);
    CHECK_EQ(a->got_len, 52);
    CHECK(!memcmp(a->got + 18, "a=ice-pwd:", 10));
    free_peer(a);
    free_peer(b);
    server_teardown();
}

static void test_config(void)
{
    uint32_t s = 1;
    stunkit_rdv_config c;
    memset(&c, 0, sizeof(c));
    c.size = sizeof(c);
    c.username = "u";
    c.password = "p";
    c.env.random = test_random;
    c.env.random_ctx = &s;
    c.room = "has space";
    CHECK(stunkit_rdv_new(&c, 0) == NULL);
    c.room = "";
    CHECK(stunkit_rdv_new(&c, 0) == NULL);
    c.room = "ok.room_~-9";
    c.password = NULL;
    CHECK(stunkit_rdv_new(&c, 0) == NULL);
    c.password = "p";
    c.env.random = NULL;
    CHECK(stunkit_rdv_new(&c, 0) == NULL);
    c.env.random = test_random;
    stunkit_rdv *r = stunkit_rdv_new(&c, 0);
    CHECK(r != NULL);
    static char big[STUNKIT_RDV_DESC_MAX + 1];
    CHECK_EQ(stunkit_rdv_set_description(r, big, sizeof(big), 0), STUNKIT_ERR_NOBUF);
    stunkit_rdv_free(r);
    CHECK_STR(stunkit_rdv_event_name(STUNKIT_RDV_EVENT_PEER_DATA), "peer-data");
}

int main(void)
{
    RUN(test_config);
    RUN(test_meet);
    RUN(test_meet_lossy);
    RUN(test_meet_duplicates);
    RUN(test_bounds);
    RUN(test_transport_switch);
    RUN(test_wrong_password);
    RUN(test_silent_server);
    RUN(test_lossy_keeps_going);
    RUN(test_fleet_move);
    RUN(test_malformed);
    RUN(test_strangers_and_quota);
    RUN(test_truncated_answers);
    TEST_END();
}
