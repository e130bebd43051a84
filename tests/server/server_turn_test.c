/*
 * server_turn_test.c STUNKITD - the TURN relay of a real stunkitd on loopback
 * under what users bring: the default worker count (one per core), --threads
 * 1 and 4, rate limits on, and clients that do what the RFC allows back to
 * back.
 *
 *   relay_batch   ChannelData, Refresh(LIFETIME 0) and a new Allocate in one
 *                 datagram batch: the data leaves from the relayed address it
 *                 was sent to, never through a descriptor reused by the new
 *                 allocation (issue 23, item 1)
 *   limits        --turn-user-quota and --turn-max-allocations hold for the
 *                 server, whatever worker a client lands on (UDP and TCP
 *                 clients, USERHASH); the default quota of 100 holds; a
 *                 RESERVATION-TOKEN from one TCP connection is claimed from
 *                 another; one user keeps at most 4 ports (item 5)
 *   strangers     a full TCP pool and a full TLS pool (hundreds of
 *                 unauthenticated connections and stalled handshakes from a
 *                 hundred addresses) evict no connection that holds an
 *                 allocation (item 3); a DTLS session holding one outlives
 *                 the idle time, one without does not (item 4)
 *   forgers       a flood "from" a client's address (credential-less
 *                 requests, requests with a wrong MESSAGE-INTEGRITY, bare
 *                 headers) with the default rate limits: the client's signed
 *                 Refreshes all get through (item 8)
 *   source_64     (root, own network namespace) the per-source connection
 *                 cap holds across the addresses of one IPv6 /64 (item 3)
 *   plain_stun    a TURN server answers plain Binding requests (issue 24,
 *                 item 6), checks signed ones; --secure-stun wants
 *                 credentials
 *   port_walk     a relay range of 7919 ports, half taken: every Allocate
 *                 finds a port (item 9)
 *   clock_wrap    (root; `server_turn_test STUNKITD clock_wrap`, its own
 *                 ctest) the server in a time namespace whose monotonic clock
 *                 passes 2^32 ms seconds after start: allocations made before
 *                 and after the wrap both expire (issue 23, "Time")
 *
 * Relayed addresses live on 127.3.N.1 (N from the port base), so two
 * checkouts can run side by side; the peer is an ordinary socket on
 * 127.0.0.1 (opened with --allowed-peer).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <sys/syscall.h>

#include "test_cert.h"
#include "turn_util.h"

#define PORT (su_port(910))
#define METRICS_PORT (su_port(911))

static const char *relay_ip(void)
{
    return su_fmt("127.3.%u.1", (unsigned)(su_port(0) / 1000 % 250));
}

/* stunkitd with TURN; threads NULL: the default (one per core). */
static pid_t start_turn(const char *threads, const char *const *extra)
{
    const char *args[48] = {"--listen", su_at("127.0.0.1", 910), "--credential", "alice:alice-pw",
                            "--credential", "bob:bob-pw", "--credential", "carol:carol-pw", "--turn",
                            "--relay-ip", relay_ip(), "--relay-ports", "40000-40999",
                            "--allowed-peer", "127.0.0.1/32", "--log-level", "warn"};
    int n = 17;
    if (threads) {
        args[n++] = "--threads";
        args[n++] = threads;
    }
    for (int i = 0; extra && extra[i] && n < 46; i++)
        args[n++] = extra[i];
    args[n] = NULL;
    return su_start(args, su_at("127.0.0.1", 910));
}

/* A counter from the server's metrics endpoint (METRICS_PORT), or -1. */
static long long counter(const char *name)
{
    return su_metric(su_at("127.0.0.1", 911), name);
}

/* ---- relay_batch ---- */

static void relay_batch(const char *threads)
{
    const char *extra[] = {"--metrics", su_at("127.0.0.1", 911), NULL};
    pid_t pid = start_turn(threads, extra);
    CHECK(pid > 0);
    if (pid <= 0)
        return;
    tu_client c;
    uint8_t buf[2048];
    stunkit_msg m;
    stunkit_addr relayed, peer_addr;
    int peer = su_udp("127.0.0.1", 0);
    peer_addr = su_local(peer);
    CHECK(tu_open(&c, 0, su_at("127.0.0.1", 910), "alice", "alice-pw") == 0);
    CHECK(tu_allocate(&c, &relayed) == 0);
    tu_attrs bind = {.lifetime = -1, .peer = &peer_addr, .channel = 0x4000};
    CHECK(tu_ask(&c, STUNKIT_METHOD_CHANNEL_BIND, &bind, buf, sizeof(buf), &m) == 0);

    int rounds = 40, delivered = 0, wrong_source = 0, lost = 0, fresh = 0;
    for (int r = 0; r < rounds; r++) {
        /* the last datagram, the deletion and the next allocation, in one
         * sendmmsg: they reach the server's worker in one batch */
        uint8_t cd[64], rf[512], al[512], tid_rf[12], tid_al[12];
        char payload[32];
        int plen = snprintf(payload, sizeof(payload), "round %d of alice", r);
        size_t cdl = tu_channel_data(cd, 0x4000, payload, (size_t)plen, 0);
        tu_attrs zero = {.lifetime = 0}, alloc = {.transport = 1, .lifetime = -1};
        size_t rfl = tu_build(&c, rf, sizeof(rf), STUNKIT_METHOD_REFRESH, &zero, tid_rf);
        size_t all = tu_build(&c, al, sizeof(al), STUNKIT_METHOD_ALLOCATE, &alloc, tid_al);
        struct sockaddr_storage ss;
        stunkit_addr srv;
        stunkit_addr_parse(c.to, 0, &srv);
        socklen_t sl = (socklen_t)stunkit_addr_to_sockaddr(&srv, &ss);
        struct iovec iov[3] = {{cd, cdl}, {rf, rfl}, {al, all}};
        struct mmsghdr mm[3];
        memset(mm, 0, sizeof(mm));
        for (int i = 0; i < 3; i++) {
            mm[i].msg_hdr.msg_name = &ss;
            mm[i].msg_hdr.msg_namelen = sl;
            mm[i].msg_hdr.msg_iov = &iov[i];
            mm[i].msg_hdr.msg_iovlen = 1;
        }
        CHECK(sendmmsg(c.fd, mm, 3, 0) == 3);
        /* what the peer got, and from where */
        stunkit_addr from;
        int n = su_recv(peer, buf, sizeof(buf), 1000, &from);
        if (n == plen && !memcmp(buf, payload, (size_t)plen)) {
            delivered++;
            if (!stunkit_addr_equal(&from, &relayed))
                wrong_source++;
        } else {
            lost++;
        }
        /* the deletion's and the new allocation's answers */
        int ok_rf = tu_answer(&c, tid_rf, buf, sizeof(buf), &m, 1000) > 0 && tu_code(&m) == 0;
        int ok_al = tu_answer(&c, tid_al, buf, sizeof(buf), &m, 1000) > 0 && tu_code(&m) == 0 &&
                    tu_addr_attr(&m, STUNKIT_ATTR_XOR_RELAYED_ADDRESS, &relayed) == 0;
        if (!ok_rf || !ok_al) {
            /* lost over loopback or refused: start the next round afresh */
            if (tu_allocate(&c, &relayed) != 0)
                break;
        }
        fresh += ok_rf && ok_al;
        if (tu_ask(&c, STUNKIT_METHOD_CHANNEL_BIND, &bind, buf, sizeof(buf), &m) != 0)
            break;
    }
    /* nothing else reaches the peer (a payload sent twice, or late) */
    while (su_recv(peer, buf, sizeof(buf), 200, NULL) > 0)
        wrong_source++;
    /* data over the 4096-byte buffer, both ways: dropped and counted */
    static uint8_t big[5000 + 4];
    memset(big, 'x', sizeof(big));
    long long too_big0 = counter("stunkitd_dropped_total{reason=\"turn_too_big\"}");
    size_t bl = tu_channel_data(big, 0x4000, big + 4, 5000, 0);
    CHECK(tu_send(&c, big, bl) == 0);
    CHECK(su_sendto(peer, big, 5000, su_fmt("%s:%u", relay_ip(), relayed.port)) == 0);
    su_sleep_ms(1200); /* the counters are taken each loop turn (at least once a second) */
    long long too_big = counter("stunkitd_dropped_total{reason=\"turn_too_big\"}") - too_big0;
    printf("relay_batch --threads %s: 5000-byte data both ways: turn_too_big +%lld\n",
           threads ? threads : "default", too_big);
    CHECK(too_big == 2);
    CHECK(su_recv(peer, buf, sizeof(buf), 100, NULL) < 0);
    printf("relay_batch --threads %s: %d rounds, %d delivered from the right relayed address, %d from another, "
           "%d lost, %d fresh allocations in the same batch\n",
           threads ? threads : "default", rounds, delivered - wrong_source, wrong_source, lost, fresh);
    CHECK(wrong_source == 0);
    CHECK(lost == 0);
    CHECK(fresh == rounds);
    tu_close(&c);
    close(peer);
    CHECK(su_stop(pid) == 0);
}

/* ---- limits ---- */

/* Allocations for user over n clients (alternating UDP and TCP unless
 * tcp_only): how many succeeded; codes[] gets each answer. */
static int allocate_many(tu_client *cs, int n, const char *user, const char *pass, int userhash, int *codes)
{
    int made = 0;
    for (int i = 0; i < n; i++) {
        tu_client *c = &cs[i];
        if (tu_open(c, i % 2, su_at("127.0.0.1", 910), user, pass) != 0) {
            codes[i] = -2;
            continue;
        }
        c->userhash = userhash;
        if (i > 0)
            tu_share(c, &cs[0]);
        codes[i] = tu_allocate(c, NULL);
        made += codes[i] == 0;
    }
    return made;
}

static int count_code(const int *codes, int n, int code)
{
    int k = 0;
    for (int i = 0; i < n; i++)
        k += codes[i] == code;
    return k;
}

static void limits(const char *threads)
{
    const char *extra[] = {"--turn-user-quota", "5", "--turn-max-allocations", "8", NULL};
    pid_t pid = start_turn(threads, extra);
    CHECK(pid > 0);
    if (pid <= 0)
        return;
    tu_client a[8], b[5], h[2];
    int ca[8], cb[5], ch[2];
    /* alice over 8 clients, UDP and TCP: 5 (her quota), then 486 */
    int made_a = allocate_many(a, 8, "alice", "alice-pw", 0, ca);
    /* alice again, named by USERHASH: the same quota */
    int made_h = allocate_many(h, 2, "alice", "alice-pw", 1, ch);
    /* bob: 3 more fill the server's 8, then 508 */
    int made_b = allocate_many(b, 5, "bob", "bob-pw", 0, cb);
    printf("limits --threads %s: alice %d of 8 (486: %d), alice by USERHASH %d of 2 (486: %d), bob %d of 5 "
           "(508: %d)\n",
           threads ? threads : "default", made_a, count_code(ca, 8, 486), made_h, count_code(ch, 2, 486), made_b,
           count_code(cb, 5, 508));
    CHECK(made_a == 5 && count_code(ca, 8, 486) == 3);
    CHECK(made_h == 0 && count_code(ch, 2, 486) == 2);
    CHECK(made_b == 3 && count_code(cb, 5, 508) == 2);
    /* one of alice's ends: she (and only she) may make one again */
    uint8_t buf[2048];
    stunkit_msg m;
    tu_attrs zero = {.lifetime = 0};
    int first = ca[0] == 0 ? 0 : 1;
    CHECK(tu_ask(&a[first], STUNKIT_METHOD_REFRESH, &zero, buf, sizeof(buf), &m) == 0);
    CHECK(tu_allocate(&a[first], NULL) == 0);
    CHECK(tu_allocate(&a[7], NULL) == 486);
    for (int i = 0; i < 8; i++)
        tu_close(&a[i]);
    for (int i = 0; i < 5; i++)
        tu_close(&b[i]);
    for (int i = 0; i < 2; i++)
        tu_close(&h[i]);
    su_sleep_ms(300); /* TCP allocations end with their connections; UDP ones are still held */

    /* RESERVATION-TOKEN across connections (and stream workers): carol keeps
     * the next port over one TCP connection and claims it over another */
    int claimed = 0, tries = 4;
    for (int k = 0; k < tries; k++) {
        tu_client r1, r2;
        stunkit_addr relayed, claimed_addr;
        uint8_t token[8];
        CHECK(tu_open(&r1, 1, su_at("127.0.0.1", 910), "carol", "carol-pw") == 0);
        CHECK(tu_open(&r2, 1, su_at("127.0.0.1", 910), "carol", "carol-pw") == 0);
        tu_attrs ev = {.transport = 1, .lifetime = -1, .even_port = 2};
        stunkit_attr at;
        int code = tu_ask(&r1, STUNKIT_METHOD_ALLOCATE, &ev, buf, sizeof(buf), &m);
        CHECK(code == 0);
        if (code == 0 && tu_addr_attr(&m, STUNKIT_ATTR_XOR_RELAYED_ADDRESS, &relayed) == 0 &&
            stunkit_msg_find(&m, STUNKIT_ATTR_RESERVATION_TOKEN, &at) == 0 && at.len == 8) {
            memcpy(token, at.value, 8);
            CHECK(relayed.port % 2 == 0);
            tu_share(&r2, &r1);
            tu_attrs use = {.transport = 1, .lifetime = -1, .token = token};
            code = tu_ask(&r2, STUNKIT_METHOD_ALLOCATE, &use, buf, sizeof(buf), &m);
            if (code == 0 && tu_addr_attr(&m, STUNKIT_ATTR_XOR_RELAYED_ADDRESS, &claimed_addr) == 0 &&
                claimed_addr.port == relayed.port + 1)
                claimed++;
            else
                printf("  claim from another connection: %d\n", code);
        }
        tu_close(&r1);
        tu_close(&r2);
        su_sleep_ms(100);
    }
    printf("limits --threads %s: %d of %d RESERVATION-TOKENs claimed from another TCP connection\n",
           threads ? threads : "default", claimed, tries);
    CHECK(claimed == tries);
    CHECK(su_stop(pid) == 0);

    /* one user keeps at most 4 ports; the total counts them */
    const char *extra2[] = {"--turn-user-quota", "100", NULL};
    pid = start_turn(threads, extra2);
    CHECK(pid > 0);
    if (pid <= 0)
        return;
    tu_client k[6];
    int kept = 0, refused = 0;
    for (int i = 0; i < 6; i++) {
        CHECK(tu_open(&k[i], 0, su_at("127.0.0.1", 910), "carol", "carol-pw") == 0);
        if (i)
            tu_share(&k[i], &k[0]);
        tu_attrs ev = {.transport = 1, .lifetime = -1, .even_port = 2};
        int code = tu_ask(&k[i], STUNKIT_METHOD_ALLOCATE, &ev, buf, sizeof(buf), &m);
        kept += code == 0;
        refused += code == 486;
    }
    printf("limits --threads %s: EVEN-PORT with R: %d kept, %d refused (486)\n", threads ? threads : "default",
           kept, refused);
    CHECK(kept == 4 && refused == 2);
    for (int i = 0; i < 6; i++)
        tu_close(&k[i]);
    CHECK(su_stop(pid) == 0);
}

/* The default quota (100 per user) holds over UDP and TCP clients on every
 * worker: 100 allocations, then 486. */
static void default_quota(const char *threads)
{
    pid_t pid = start_turn(threads, NULL);
    CHECK(pid > 0);
    if (pid <= 0)
        return;
    static tu_client cs[104];
    int codes[104];
    int made = allocate_many(cs, 104, "bob", "bob-pw", 0, codes);
    printf("default quota --threads %s: %d of 104 allocations for one user, %d refused with 486\n",
           threads ? threads : "default", made, count_code(codes, 104, 486));
    CHECK(made == 100 && count_code(codes, 104, 486) == 4);
    for (int i = 0; i < 104; i++)
        tu_close(&cs[i]);
    CHECK(su_stop(pid) == 0);
}

/* ---- plain_stun ---- */

/* A TURN server answers a plain Binding request without credentials (as
 * coturn does: agents given it as a stun: URL send none), checks a signed
 * one, and with --secure-stun wants credentials for Binding too (issue 24
 * item 6). */
static int plain_binding_code(const char *to, int signed_wrong, stunkit_addr *mapped)
{
    tu_client c;
    uint8_t buf[1024];
    stunkit_msg m;
    if (tu_open(&c, TU_UDP, to, "alice", signed_wrong ? "not-alices" : "alice-pw") != 0)
        return -2;
    int code;
    if (signed_wrong) {
        /* a nonce first (from an Allocate's 401), then a signed Binding */
        tu_attrs alloc = {.transport = 1, .lifetime = -1};
        tu_ask(&c, STUNKIT_METHOD_ALLOCATE, &alloc, buf, sizeof(buf), &m);
    }
    uint8_t req[512], tid[12];
    size_t len = tu_build(&c, req, sizeof(req), STUNKIT_METHOD_BINDING, NULL, tid);
    tu_send(&c, req, len);
    code = tu_answer(&c, tid, buf, sizeof(buf), &m, 1000) > 0 ? tu_code(&m) : -1;
    if (code == 0 && mapped && stunkit_msg_mapped(&m, mapped) != 0)
        code = -3;
    tu_close(&c);
    return code;
}

static void plain_stun(void)
{
    pid_t pid = start_turn("1", NULL);
    CHECK(pid > 0);
    if (pid <= 0)
        return;
    stunkit_addr mapped;
    int plain = plain_binding_code(su_at("127.0.0.1", 910), 0, &mapped);
    int wrong = plain_binding_code(su_at("127.0.0.1", 910), 1, NULL);
    CHECK(su_stop(pid) == 0);
    const char *extra[] = {"--secure-stun", NULL};
    pid = start_turn("1", extra);
    CHECK(pid > 0);
    if (pid <= 0)
        return;
    int secure = plain_binding_code(su_at("127.0.0.1", 910), 0, NULL);
    CHECK(su_stop(pid) == 0);
    printf("plain_stun: a TURN server answers a plain Binding request %d (0: success), a signed one with a wrong "
           "password %d, with --secure-stun a plain one %d\n",
           plain, wrong, secure);
    CHECK(plain == 0 && mapped.family == STUNKIT_AF_INET);
    CHECK(wrong == 401);
    CHECK(secure == 401);
}

/* ---- port_walk ---- */

/* A relay range whose size is a multiple of 7919 with every other port taken
 * (here by the test): each Allocate still finds a free port. (The old walk
 * stepped by 7919, so in such a range it tried one port 128 times.) */
static void port_walk(void)
{
    static int taken[7919 / 2 + 1];
    int n_taken = 0;
    for (int p = 40000; p < 40000 + 7919; p += 2) {
        int fd = su_udp(relay_ip(), (uint16_t)p);
        if (fd >= 0)
            taken[n_taken++] = fd;
    }
    const char *extra[] = {"--relay-ports", "40000-47918", NULL};
    pid_t pid = start_turn("1", extra);
    CHECK(pid > 0);
    if (pid > 0) {
        tu_client cs[20];
        int made = 0, odd = 0;
        for (int i = 0; i < 20; i++) {
            stunkit_addr relayed;
            CHECK(tu_open(&cs[i], TU_UDP, su_at("127.0.0.1", 910), "bob", "bob-pw") == 0);
            if (i)
                tu_share(&cs[i], &cs[0]);
            if (tu_allocate(&cs[i], &relayed) == 0) {
                made++;
                odd += relayed.port % 2 == 1;
            }
        }
        printf("port_walk: a range of 7919 ports, %d of them taken: %d of 20 allocations, %d on a free (odd) port\n",
               n_taken, made, odd);
        CHECK(n_taken >= 3900);
        CHECK(made == 20 && odd == 20);
        for (int i = 0; i < 20; i++)
            tu_close(&cs[i]);
        CHECK(su_stop(pid) == 0);
    }
    for (int i = 0; i < n_taken; i++)
        close(taken[i]);
}

/* ---- strangers ---- */

/* A connection from src to the server's port `offset` that sends `hello`
 * (NULL: nothing, a stalled handshake); -1 when refused. */
static int stranger(const char *src, int offset, const uint8_t *hello, size_t len)
{
    tu_client c;
    if (tu_open_from(&c, TU_TCP, src, su_at("127.0.0.1", offset), "x", "x") != 0)
        return -1;
    if (hello)
        send(c.fd, hello, len, MSG_NOSIGNAL);
    return c.fd;
}

static void strangers(const char *threads)
{
    const char *extra[] = {"--tls-cert", cert_path, "--tls-key", key_path, "--tls-port", su_fmt("%u", su_port(912)),
                           "--tcp-max-conns", "40", "--tls-max-conns", "40", "--tcp-idle", "2", NULL};
    pid_t pid = start_turn(threads, extra);
    CHECK(pid > 0);
    if (pid <= 0)
        return;
    tu_client tcp, tls, dtls, idle;
    stunkit_addr relayed;
    uint8_t buf[2048];
    stunkit_msg m;
    CHECK(tu_open(&tcp, TU_TCP, su_at("127.0.0.1", 910), "alice", "alice-pw") == 0);
    CHECK(tu_allocate(&tcp, &relayed) == 0);
    CHECK(tu_open(&tls, TU_TLS, su_at("127.0.0.1", 912), "bob", "bob-pw") == 0);
    CHECK(tu_allocate(&tls, &relayed) == 0);
    CHECK(tu_open(&dtls, TU_DTLS, su_at("127.0.0.1", 912), "carol", "carol-pw") == 0);
    CHECK(tu_allocate(&dtls, &relayed) == 0);
    /* a DTLS session without an allocation, to show the idle time still ends sessions */
    CHECK(tu_open(&idle, TU_DTLS, su_at("127.0.0.1", 912), "carol", "carol-pw") == 0);
    tu_attrs none = {.lifetime = -1};
    CHECK(tu_ask(&idle, STUNKIT_METHOD_BINDING, &none, buf, sizeof(buf), &m) == 0);
    /* 300 strangers on each pool from 100 addresses: credential-less
     * Allocate requests on TCP (a 401 each), stalled handshakes on TLS */
    uint8_t req[28], tid[12];
    stunkit_writer w;
    su_tid(tid);
    stunkit_writer_init(&w, req, sizeof(req), STUNKIT_METHOD_ALLOCATE, STUNKIT_CLASS_REQUEST, tid);
    stunkit_put_u32(&w, STUNKIT_ATTR_REQUESTED_TRANSPORT, 17u << 24);
    static int fds[600];
    int opened = 0;
    for (int i = 0; i < 300; i++) {
        const char *src = su_fmt("127.0.1.%d", 1 + i % 100);
        fds[opened] = stranger(src, 910, req, sizeof(req));
        opened += fds[opened] >= 0;
        fds[opened] = stranger(src, 912, NULL, 0);
        opened += fds[opened] >= 0;
    }
    su_sleep_ms(500);
    /* everyone silent past the idle time (2 s) */
    su_sleep_ms(2500);
    tu_attrs keep = {.lifetime = 600};
    int tcp_code = tu_ask(&tcp, STUNKIT_METHOD_REFRESH, &keep, buf, sizeof(buf), &m);
    int tls_code = tu_ask(&tls, STUNKIT_METHOD_REFRESH, &keep, buf, sizeof(buf), &m);
    int dtls_code = tu_ask(&dtls, STUNKIT_METHOD_REFRESH, &keep, buf, sizeof(buf), &m);
    int idle_code = tu_ask(&idle, STUNKIT_METHOD_BINDING, &none, buf, sizeof(buf), &m);
    printf("strangers --threads %s: %d stranger connections (TCP 401s, stalled TLS) and 3 s of silence; "
           "Refresh over TCP %d, TLS %d, DTLS %d (0: alive); a DTLS session without allocation %d (-1: ended)\n",
           threads ? threads : "default", opened, tcp_code, tls_code, dtls_code, idle_code);
    CHECK(tcp_code == 0);
    CHECK(tls_code == 0);
    CHECK(dtls_code == 0);
    CHECK(idle_code == -1);
    for (int i = 0; i < opened; i++)
        close(fds[i]);
    tu_close(&tcp);
    tu_close(&tls);
    tu_close(&dtls);
    tu_close(&idle);
    CHECK(su_stop(pid) == 0);
}

/* ---- forgers ---- */

static volatile int flood_stop;

/* From 127.0.0.1, the victim's address (the budgets are per address): ~8000
 * datagrams a second of three kinds, for at most 6 s. */
static void *flood(void *arg)
{
    (void)arg;
    int fds[8]; /* from 8 ports, so that every worker (SO_REUSEPORT's hash) gets its share */
    for (int i = 0; i < 8; i++)
        fds[i] = su_udp("127.0.0.1", 0);
    uint8_t kinds[3][256];
    size_t lens[3];
    uint8_t tid[12], key[16] = {1, 2, 3};
    stunkit_writer w;
    su_tid(tid);
    stunkit_writer_init(&w, kinds[0], 256, STUNKIT_METHOD_BINDING, STUNKIT_CLASS_REQUEST, tid);
    lens[0] = (size_t)stunkit_writer_finish(&w);
    stunkit_writer_init(&w, kinds[1], 256, STUNKIT_METHOD_REFRESH, STUNKIT_CLASS_REQUEST, tid);
    stunkit_put(&w, STUNKIT_ATTR_USERNAME, "alice", 5);
    stunkit_put(&w, STUNKIT_ATTR_REALM, "stunkit", 7);
    stunkit_put(&w, STUNKIT_ATTR_NONCE, "obMatJos2AAADforged-nonce-forged-nonce", 38);
    stunkit_put_integrity(&w, key, 16);
    lens[1] = (size_t)stunkit_writer_finish(&w);
    memset(kinds[2], 0, 20);
    kinds[2][1] = 1;
    kinds[2][4] = 0x21, kinds[2][5] = 0x12, kinds[2][6] = 0xA4, kinds[2][7] = 0x42;
    lens[2] = 20;
    stunkit_addr srv;
    struct sockaddr_storage ss;
    stunkit_addr_parse(su_at("127.0.0.1", 910), 0, &srv);
    socklen_t sl = (socklen_t)stunkit_addr_to_sockaddr(&srv, &ss);
    struct mmsghdr mm[48];
    struct iovec iov[48];
    memset(mm, 0, sizeof(mm));
    for (int i = 0; i < 48; i++) {
        iov[i].iov_base = kinds[i % 3];
        iov[i].iov_len = lens[i % 3];
        mm[i].msg_hdr.msg_name = &ss;
        mm[i].msg_hdr.msg_namelen = sl;
        mm[i].msg_hdr.msg_iov = &iov[i];
        mm[i].msg_hdr.msg_iovlen = 1;
    }
    long sent = 0;
    double t0 = su_now();
    for (int k = 0; !flood_stop && su_now() - t0 < 6.0 && sent < 100000; k++) {
        int n = sendmmsg(fds[k % 8], mm, 48, 0);
        sent += n > 0 ? n : 0;
        if (k % 8 == 7)
            su_sleep_ms(20);
    }
    for (int i = 0; i < 8; i++)
        close(fds[i]);
    return (void *)sent;
}

static void forgers(const char *threads)
{
    pid_t pid = start_turn(threads, NULL);
    CHECK(pid > 0);
    if (pid <= 0)
        return;
    tu_client v;
    uint8_t buf[2048];
    stunkit_msg m;
    CHECK(tu_open(&v, TU_UDP, su_at("127.0.0.1", 910), "alice", "alice-pw") == 0);
    CHECK(tu_allocate(&v, NULL) == 0);
    flood_stop = 0;
    pthread_t th;
    pthread_create(&th, NULL, flood, NULL);
    su_sleep_ms(300); /* the budgets are spent */
    int ok = 0, tries = 50;
    tu_attrs keep = {.lifetime = 600};
    for (int i = 0; i < tries; i++) {
        uint8_t req[512], tid[12];
        size_t len = tu_build(&v, req, sizeof(req), STUNKIT_METHOD_REFRESH, &keep, tid);
        tu_send(&v, req, len); /* once each: a lost one counts */
        ok += tu_answer(&v, tid, buf, sizeof(buf), &m, 500) > 0 && tu_code(&m) == 0;
        su_sleep_ms(40);
    }
    flood_stop = 1;
    void *sent;
    pthread_join(th, &sent);
    printf("forgers --threads %s: %ld forged datagrams from the client's address; its signed Refreshes answered "
           "%d of %d\n",
           threads ? threads : "default", (long)sent, ok, tries);
    CHECK((long)sent > 10000);
    CHECK(ok == tries);
    tu_close(&v);
    CHECK(su_stop(pid) == 0);
}

/* ---- source_64 ---- */

static int run_quiet(const char *cmd)
{
    char line[512];
    snprintf(line, sizeof(line), "%s >/dev/null 2>&1", cmd);
    return system(line);
}

/* In a child with its own network namespace (nothing leaves it): stunkitd
 * on 2001:db8:64::1 with --tcp-per-source 3; connections from eight
 * addresses of that /64 get 3 places, one from another /64 gets its own. */
static void source_64(void)
{
    if (geteuid() != 0) {
        printf("source_64: skipped (needs root for a network namespace)\n");
        return;
    }
    fflush(stdout);
    pid_t child = fork();
    if (child == 0) {
        if (unshare(CLONE_NEWNET) != 0 || run_quiet("ip link set lo up") != 0)
            _exit(3);
        for (int i = 1; i <= 9; i++)
            if (run_quiet(su_fmt("ip -6 addr add 2001:db8:64::%d/64 dev lo nodad", i)) != 0)
                _exit(3);
        if (run_quiet("ip -6 addr add 2001:db8:65::1/64 dev lo nodad") != 0)
            _exit(3);
        const char *args[] = {"--listen", "[2001:db8:64::1]:3478", "--no-udp", "--threads", "1",
                              "--tcp-per-source", "3", "--log-level", "error", NULL};
        const char *argv0[16];
        int n = 0;
        argv0[n++] = su_stunkitd;
        for (int i = 0; args[i]; i++)
            argv0[n++] = args[i];
        argv0[n] = NULL;
        pid_t srv = fork();
        if (srv == 0) {
            execv(su_stunkitd, (char **)argv0);
            _exit(127);
        }
        int answered = 0, other = 0;
        tu_client cs[9];
        uint8_t buf[512];
        stunkit_msg m;
        tu_attrs none = {.lifetime = -1};
        su_sleep_ms(300);
        for (int i = 0; i < 8; i++) {
            if (tu_open_from(&cs[i], TU_TCP, su_fmt("2001:db8:64::%d", i + 2), "[2001:db8:64::1]:3478", "x", "x"))
                continue;
            answered += tu_ask(&cs[i], STUNKIT_METHOD_BINDING, &none, buf, sizeof(buf), &m) == 0;
        }
        if (tu_open_from(&cs[8], TU_TCP, "2001:db8:65::1", "[2001:db8:64::1]:3478", "x", "x") == 0)
            other = tu_ask(&cs[8], STUNKIT_METHOD_BINDING, &none, buf, sizeof(buf), &m) == 0;
        printf("source_64: 8 connections from one IPv6 /64 with --tcp-per-source 3: %d served; from another /64: "
               "%s\n",
               answered, other ? "served" : "refused");
        fflush(stdout);
        kill(srv, SIGTERM);
        waitpid(srv, NULL, 0);
        _exit(answered == 3 && other ? 0 : 1);
    }
    int status = 0;
    waitpid(child, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* ---- clock_wrap ---- */

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Moves the monotonic clock of the processes started from here on so that
 * it passes 2^32 ms `after_s` seconds from now: 1, or 0 when time
 * namespaces are not available (not root, old kernel). */
static int time_namespace(int after_s)
{
    if (unshare(CLONE_NEWTIME) != 0)
        return 0;
    long long offset = (long long)(4294967296ull / 1000ull) - after_s - (long long)mono_s();
    FILE *f = fopen("/proc/self/timens_offsets", "w");
    if (!f)
        return 0;
    int ok = fprintf(f, "monotonic %lld 0\n", offset) > 0;
    ok &= fclose(f) == 0;
    return ok;
}

static void clock_wrap(void)
{
    if (geteuid() != 0) {
        printf("clock_wrap: skipped (needs root for a time namespace)\n");
        return;
    }
    double t0 = mono_s();
    if (!time_namespace(8)) {
        printf("clock_wrap: FAIL: no time namespace (%s)\n", strerror(errno));
        CHECK(0);
        return;
    }
    /* allocations live 10 s (--turn-default-lifetime); the wrap is ~8 s in */
    const char *extra[] = {"--turn-default-lifetime", "10", "--turn-max-lifetime", "600", "--rendezvous",
                           "--rendezvous-lifetime", "14", "--metrics", su_at("127.0.0.1", 911), NULL};
    pid_t pid = start_turn("2", extra);
    CHECK(pid > 0);
    if (pid <= 0)
        return;
    tu_client before, after;
    uint8_t buf[2048];
    stunkit_msg m;
    tu_attrs probe = {.lifetime = -1}, ten = {.lifetime = 10};
    /* before the wrap: made, then refreshed after it (its lifetime is counted
     * from the refresh) */
    CHECK(tu_open(&before, 0, su_at("127.0.0.1", 910), "alice", "alice-pw") == 0);
    CHECK(tu_allocate(&before, NULL) == 0);
    double made_before = mono_s() - t0;
    /* a rendezvous room opened before the wrap, lifetime 14 s: open across
     * it, closed after its lifetime (it closed at once after the wrap) */
    tu_client rdv;
    CHECK(tu_open(&rdv, TU_UDP, su_at("127.0.0.1", 910), "carol", "carol-pw") == 0);
    tu_attrs room = {.lifetime = -1, .room = "wrap-room", .peer_id = "WRAPPEER"};
    CHECK(tu_ask(&rdv, STUNKIT_METHOD_RENDEZVOUS, &room, buf, sizeof(buf), &m) == 0);
    long long rooms_before = counter("stunkitd_rendezvous_rooms");
    while (mono_s() - t0 < 9.5)
        su_sleep_ms(100);
    CHECK(tu_ask(&before, STUNKIT_METHOD_REFRESH, &ten, buf, sizeof(buf), &m) == 0);
    /* after the wrap */
    CHECK(tu_open(&after, 0, su_at("127.0.0.1", 910), "bob", "bob-pw") == 0);
    CHECK(tu_allocate(&after, NULL) == 0);
    double made_after = mono_s() - t0;
    long long rooms_after_wrap = counter("stunkitd_rendezvous_rooms");
    /* the peer speaks (within the idle time): the room is its own */
    CHECK(tu_ask(&rdv, STUNKIT_METHOD_RENDEZVOUS, &room, buf, sizeof(buf), &m) == 0);
    /* alive 5 s later, gone 12 s later */
    su_sleep_ms(5000);
    int alive_before = tu_ask(&before, STUNKIT_METHOD_REFRESH, &ten, buf, sizeof(buf), &m);
    int alive_after = tu_ask(&after, STUNKIT_METHOD_REFRESH, &probe, buf, sizeof(buf), &m);
    su_sleep_ms(12000);
    int gone_before = tu_ask(&before, STUNKIT_METHOD_REFRESH, &probe, buf, sizeof(buf), &m);
    int gone_after = tu_ask(&after, STUNKIT_METHOD_REFRESH, &probe, buf, sizeof(buf), &m);
    long long rooms_end = counter("stunkitd_rendezvous_rooms");
    printf("clock_wrap: a room opened before the wrap (lifetime 14 s): open before %lld, just after the wrap %lld, "
           "at the end %lld\n",
           rooms_before, rooms_after_wrap, rooms_end);
    CHECK(rooms_before == 1 && rooms_after_wrap == 1 && rooms_end == 0);
    tu_close(&rdv);
    printf("clock_wrap: the server's clock passes 2^32 ms %.1f s in; allocations made at %.1f s and %.1f s: "
           "refreshed 5 s later %d/%d (0: alive), 12 s after that %d/%d (437: expired)\n",
           8.0, made_before, made_after, alive_before, alive_after, gone_before, gone_after);
    CHECK(made_before < 7.5 && made_after > 8.5);
    CHECK(alive_before == 0 && alive_after == 0);
    CHECK(gone_before == 437 && gone_after == 437);
    tu_close(&before);
    tu_close(&after);
    CHECK(su_stop(pid) == 0);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: server_turn_test STUNKITD [clock_wrap]\n");
        return 2;
    }
    su_stunkitd = argv[1];
    signal(SIGPIPE, SIG_IGN);
    su_raise_nofile();
    if (argc > 2 && !strcmp(argv[2], "clock_wrap")) {
        /* its own ctest: the processes it starts live in another time namespace */
        clock_wrap();
        TEST_END();
    }
    CHECK(make_cert() == 0);
    const char *counts[] = {NULL, "1", "4"};
    for (int i = 0; i < 3; i++) {
        relay_batch(counts[i]);
        limits(counts[i]);
        strangers(counts[i]);
        forgers(counts[i]);
    }
    remove_cert();
    plain_stun();
    port_walk();
    source_64();
    default_quota(NULL);
    default_quota("4");
    TEST_END();
}
