/*
 * peer_test.c STUNKITD - the connection object (stunkit/peer.h) in process,
 * against a real stunkitd (STUN, TURN and the rendezvous) on loopback:
 *
 *   own_signalling  two peers driven by the test's own loop (descriptions
 *                   trickled through the test), a fake clock: connected,
 *                   datagrams both ways with their boundaries (1, 1200,
 *                   4096 bytes), 4097 refused, nothing before the path; a
 *                   stranger's datagrams to the path's address not handed
 *                   on; the other side falls silent and the fake clock
 *                   moves on until consent is lost (RFC 7675: 30 s
 *                   unanswered): DISCONNECTED, with a reason
 *   rooms_threads   two pairs at once (four peers, two rooms from two
 *                   secrets) on their own threads: each pair connected and
 *                   talking to its own; freeing them leaves the room and
 *                   frees the relays (the server's gauges back to 0)
 *   blocking        wait / send / recv with no callbacks: an echo; recv's
 *                   timeout, a buffer too small
 *   wrong_secret    a description sealed with another secret: refused,
 *                   FAILED with the reason
 *   bad_config      every config mistake: NULL with the reason, nothing
 *                   opened
 */
#define _GNU_SOURCE
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "server_util.h"
#include "stunkit/stunkit.h"
#include "test.h"

#define PORT 812
#define METRICS 813

static const char *server(void)
{
    return su_at("127.0.0.1", PORT);
}

/* ---- the metrics endpoint: a gauge ---- */

static long long gauge(const char *name)
{
    return su_metric(su_at("127.0.0.1", METRICS), name);
}

/* The gauge once it reads want (3 s at most); what it read last. */
static long long gauge_settles(const char *name, long long want)
{
    long long v = -1;
    for (int i = 0; i < 30 && (v = gauge(name)) != want; i++)
        su_sleep_ms(100);
    return v;
}

/* ---- a side: what its callbacks saw ---- */

typedef struct side {
    pthread_mutex_t lock;
    char desc[8192];   /* own signalling: what it gave out, not yet carried */
    size_t desc_len;
    uint8_t got[16][4200];
    size_t got_len[16];
    int n_got;
    int paths, path_ice, disconnected, failed;
    char reason[200];
} side;

static void side_init(side *s)
{
    memset(s, 0, sizeof(*s));
    pthread_mutex_init(&s->lock, NULL);
}

static void on_event(stunkit_peer *p, const stunkit_peer_event *ev, void *user)
{
    side *s = user;
    (void)p;
    pthread_mutex_lock(&s->lock);
    if (ev->type == STUNKIT_PEER_EVENT_DESCRIPTION && s->desc_len + ev->len < sizeof(s->desc)) {
        memcpy(s->desc + s->desc_len, ev->text, ev->len);
        s->desc_len += ev->len;
    } else if (ev->type == STUNKIT_PEER_EVENT_PATH) {
        s->paths++;
        s->path_ice += ev->reason && !strcmp(ev->reason, "ice");
    } else if (ev->type == STUNKIT_PEER_EVENT_STATE) {
        if (ev->state == STUNKIT_PEER_DISCONNECTED)
            s->disconnected++;
        if (ev->state == STUNKIT_PEER_FAILED)
            s->failed++;
        if (ev->reason)
            snprintf(s->reason, sizeof(s->reason), "%s", ev->reason);
    }
    pthread_mutex_unlock(&s->lock);
}

static void on_data(stunkit_peer *p, const uint8_t *d, size_t len, void *user)
{
    side *s = user;
    (void)p;
    pthread_mutex_lock(&s->lock);
    if (s->n_got < 16 && len <= sizeof(s->got[0])) {
        memcpy(s->got[s->n_got], d, len);
        s->got_len[s->n_got++] = len;
    }
    pthread_mutex_unlock(&s->lock);
}

/* The fake clock: real time plus what the test adds. */
static uint64_t clock_offset;

static uint64_t fake_clock(void *ctx)
{
    (void)ctx;
    return stunkit_now_ms() + __atomic_load_n(&clock_offset, __ATOMIC_RELAXED);
}

static stunkit_peer *make(side *s, const char *secret, const char *user, int controlling, int own)
{
    stunkit_peer_config c = STUNKIT_CONFIG_INIT(c);
    c.server = server();
    c.secret = secret;
    c.own_signalling = own;
    c.trickle = 1;
    c.controlling = controlling;
    c.username = user;
    c.password = user ? "secret" : NULL;
    c.no_port_mapping = 1;
    c.clock = fake_clock;
    c.on_event = s ? on_event : NULL;
    c.on_data = s ? on_data : NULL;
    c.user = s;
    const char *lo[] = {"127.0.0.1"};
    c.local_addresses = lo;
    c.n_local_addresses = 1;
    char why[200];
    int err = 0;
    stunkit_peer *p = stunkit_peer_new(&c, &err, why, sizeof(why));
    if (!p)
        fprintf(stderr, "stunkit_peer_new: %s (%s)\n", why, stunkit_strerror(err));
    return p;
}

/* Carries what a gave out to b (own signalling): taken under a's lock,
 * applied without it (b's callbacks take b's). */
static void carry(side *a, stunkit_peer *b)
{
    static char text[8192];
    pthread_mutex_lock(&a->lock);
    size_t n = a->desc_len;
    memcpy(text, a->desc, n);
    a->desc_len = 0;
    pthread_mutex_unlock(&a->lock);
    if (n)
        CHECK_EQ(stunkit_peer_apply(b, text, n), 0);
}

static int n_got(side *s)
{
    pthread_mutex_lock(&s->lock);
    int n = s->n_got;
    pthread_mutex_unlock(&s->lock);
    return n;
}

/* Steps the peers given (NULL: skipped) for up to ms of real time or
 * until both are connected (until_connected). */
static void drive(stunkit_peer *a, side *sa, stunkit_peer *b, side *sb, int ms, int until_connected)
{
    uint64_t end = stunkit_now_ms() + (uint64_t)ms;
    while (stunkit_now_ms() < end) {
        struct pollfd pf[2] = {{a ? stunkit_peer_fd(a) : -1, POLLIN, 0}, {b ? stunkit_peer_fd(b) : -1, POLLIN, 0}};
        (void)poll(pf, 2, 5);
        if (a)
            stunkit_peer_step(a, fake_clock(NULL));
        if (b)
            stunkit_peer_step(b, fake_clock(NULL));
        if (a && b && sa && sb) {
            carry(sa, b);
            carry(sb, a);
        }
        if (until_connected && stunkit_peer_get_state(a) == STUNKIT_PEER_CONNECTED &&
            stunkit_peer_get_state(b) == STUNKIT_PEER_CONNECTED)
            return;
    }
}

static int got_is(side *s, int i, const uint8_t *want, size_t len)
{
    pthread_mutex_lock(&s->lock);
    int ok = i < s->n_got && s->got_len[i] == len && !memcmp(s->got[i], want, len);
    pthread_mutex_unlock(&s->lock);
    return ok;
}

/* ---- own_signalling ---- */

static void own_signalling(void)
{
    static side sa, sb;
    side_init(&sa);
    side_init(&sb);
    stunkit_peer *a = make(&sa, NULL, NULL, 1, 1), *b = make(&sb, NULL, NULL, 0, 1);
    CHECK(a && b);
    if (!a || !b)
        return;
    CHECK_EQ(stunkit_peer_send(a, "early", 5), STUNKIT_ERR_STATE); /* no path yet */
    CHECK_EQ(stunkit_peer_get_state(a), STUNKIT_PEER_MEETING);
    drive(a, &sa, b, &sb, 5000, 1);
    CHECK_EQ(stunkit_peer_get_state(a), STUNKIT_PEER_CONNECTED);
    CHECK_EQ(stunkit_peer_get_state(b), STUNKIT_PEER_CONNECTED);
    CHECK(sa.paths >= 1 && sa.path_ice >= 1);
    stunkit_peer_info ia;
    stunkit_peer_get_info(a, &ia);
    CHECK(ia.connected && ia.selected && !ia.relayed);
    CHECK_EQ(ia.local.type, STUNKIT_ICE_TYPE_HOST);

    /* datagrams both ways, boundaries kept */
    static uint8_t big[4097];
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (uint8_t)(i * 7 + 1);
    const size_t sizes[] = {1, 1200, 4096};
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(stunkit_peer_send(a, big, sizes[i]), 0);
        CHECK_EQ(stunkit_peer_send(b, big + 1, sizes[i]), 0);
    }
    CHECK_EQ(stunkit_peer_send(a, big, sizeof(big)), STUNKIT_ERR_NOBUF);
    drive(a, &sa, b, &sb, 300, 0);
    for (int i = 0; i < 3; i++) {
        CHECK(got_is(&sb, i, big, sizes[i]));
        CHECK(got_is(&sa, i, big + 1, sizes[i]));
    }
    CHECK_EQ(n_got(&sb), 3);

    /* a stranger who knows the path's address: not the peer's data */
    stunkit_peer_get_info(a, &ia);
    int stranger = su_udp("127.0.0.1", 0);
    char to[64];
    stunkit_addr_format(&ia.local.addr, to, sizeof(to));
    su_sendto(stranger, (const uint8_t *)"not from the peer", 17, to);
    su_sendto(stranger, (const uint8_t *)"SKP1 nat hard easy ?", 20, to);
    drive(a, &sa, b, &sb, 200, 0);
    CHECK_EQ(n_got(&sa), 3);
    close(stranger);

    /* b falls silent (no longer stepped: no consent answers); 35 s pass on
     * a's clock: the path is gone (RFC 7675: 30 s without an answer) */
    for (int i = 0; i < 80 && !sa.disconnected; i++) {
        __atomic_add_fetch(&clock_offset, 500, __ATOMIC_RELAXED);
        drive(a, NULL, NULL, NULL, 10, 0);
    }
    CHECK_EQ(sa.disconnected, 1);
    CHECK_EQ(stunkit_peer_get_state(a), STUNKIT_PEER_DISCONNECTED);
    CHECK(strstr(sa.reason, "consent") != NULL);
    CHECK_EQ(stunkit_peer_send(a, "late", 4), STUNKIT_ERR_STATE);
    printf("own signalling: connected, 3 datagrams each way, a stranger ignored; silence of %llu s on the fake "
           "clock: %s (%s)\n",
           (unsigned long long)(clock_offset / 1000), stunkit_peer_state_name(stunkit_peer_get_state(a)), sa.reason);
    stunkit_peer_free(a);
    stunkit_peer_free(b);
    __atomic_store_n(&clock_offset, 0, __ATOMIC_RELAXED);
}

/* ---- rooms_threads ---- */

static void rooms_threads(void)
{
    static side s[4];
    stunkit_peer *p[4];
    const char *secrets[2] = {"pair one", "pair two"};
    for (int i = 0; i < 4; i++) {
        side_init(&s[i]);
        p[i] = make(&s[i], secrets[i / 2], "alice", 0, 0);
        CHECK(p[i] != NULL);
        if (!p[i])
            return;
        CHECK_EQ(stunkit_peer_start_thread(p[i]), 0);
        if (i % 2 == 0)
            su_sleep_ms(100); /* the first of a pair offers */
    }
    for (int i = 0; i < 4; i++)
        CHECK_EQ(stunkit_peer_wait(p[i], 10000), STUNKIT_PEER_CONNECTED);
    CHECK_EQ(gauge_settles("stunkitd_rendezvous_rooms", 2), 2);
    for (int i = 0; i < 4; i++) {
        char line[32];
        snprintf(line, sizeof(line), "from %d", i);
        CHECK_EQ(stunkit_peer_send(p[i], line, strlen(line)), 0);
    }
    for (int k = 0; k < 50; k++) {
        int all = 1;
        for (int i = 0; i < 4; i++)
            all &= n_got(&s[i]) >= 1;
        if (all)
            break;
        su_sleep_ms(20);
    }
    for (int i = 0; i < 4; i++) {
        char want[32];
        snprintf(want, sizeof(want), "from %d", i ^ 1); /* its own pair's other side */
        CHECK(got_is(&s[i], 0, (const uint8_t *)want, strlen(want)));
        CHECK_EQ(n_got(&s[i]), 1);
    }
    stunkit_peer_info info;
    stunkit_peer_get_info(p[0], &info);
    CHECK(info.role_known && info.controlling);
    long long live = gauge("stunkitd_turn_allocations");
    CHECK(live >= 4); /* each peer's relay (over UDP) */
    for (int i = 0; i < 4; i++)
        stunkit_peer_free(p[i]);
    long long rooms = gauge_settles("stunkitd_rendezvous_rooms", 0), left = gauge_settles("stunkitd_turn_allocations", 0);
    CHECK_EQ(rooms, 0);
    CHECK_EQ(left, 0);
    printf("rooms on threads: two pairs connected, each heard its own; %lld allocations before free, %lld rooms "
           "and %lld allocations after\n", live, rooms, left);
}

/* ---- blocking ---- */

static void *echo_side(void *arg)
{
    stunkit_peer *b = arg;
    if (stunkit_peer_wait(b, 10000) != STUNKIT_PEER_CONNECTED)
        return NULL;
    char buf[256];
    int n = stunkit_peer_recv(b, buf, sizeof(buf), 5000);
    if (n > 0)
        stunkit_peer_send(b, buf, (size_t)n);
    /* stay to answer consent until the other side is done */
    n = stunkit_peer_recv(b, buf, sizeof(buf), 3000);
    return NULL;
}

static void blocking(void)
{
    stunkit_peer *a = make(NULL, "blocking pair", "alice", 0, 0);
    su_sleep_ms(100);
    stunkit_peer *b = make(NULL, "blocking pair", "alice", 0, 0);
    CHECK(a && b);
    if (!a || !b)
        return;
    pthread_t t;
    pthread_create(&t, NULL, echo_side, b);
    CHECK_EQ(stunkit_peer_wait(a, 10000), STUNKIT_PEER_CONNECTED);
    char buf[256];
    CHECK_EQ(stunkit_peer_recv(a, buf, sizeof(buf), 200), 0); /* nothing yet: the timeout */
    CHECK_EQ(stunkit_peer_send(a, "echo me", 7), 0);
    int n = stunkit_peer_recv(a, buf, sizeof(buf), 5000);
    CHECK_EQ(n, 7);
    CHECK(n == 7 && !memcmp(buf, "echo me", 7));
    CHECK_EQ(stunkit_peer_send(a, "again", 5), 0);
    pthread_join(t, NULL);
    stunkit_peer_free(b);
    /* the echo side is gone without answering "again" */
    CHECK_EQ(stunkit_peer_recv(a, buf, 3, 300), 0);
    stunkit_peer_free(a);
    printf("blocking: wait, send, recv: an echo, a timeout\n");
}

/* ---- wrong_secret ---- */

static void wrong_secret(void)
{
    static side sa, sb;
    side_init(&sa);
    side_init(&sb);
    stunkit_peer *a = make(&sa, "one secret", NULL, 1, 1), *b = make(&sb, "another", NULL, 0, 1);
    CHECK(a && b);
    if (!a || !b)
        return;
    for (int i = 0; i < 100 && !sa.desc_len; i++)
        drive(a, NULL, NULL, NULL, 10, 0);
    CHECK(sa.desc_len > 0);
    CHECK(memmem(sa.desc, sa.desc_len, "a=x-stunkit-mac:", 16) != NULL);
    CHECK(memmem(sa.desc, sa.desc_len, "a=ice-pwd:", 10) == NULL);
    CHECK_EQ(stunkit_peer_apply(b, sa.desc, sa.desc_len), STUNKIT_ERR_INTEGRITY_MISMATCH);
    drive(b, NULL, NULL, NULL, 20, 0);
    CHECK_EQ(stunkit_peer_get_state(b), STUNKIT_PEER_FAILED);
    CHECK_EQ(sb.failed, 1);
    CHECK(strstr(sb.reason, "does not check against the secret") != NULL);
    printf("wrong secret: %s\n", sb.reason);
    stunkit_peer_free(a);
    stunkit_peer_free(b);
}

/* ---- bad_config ---- */

static void refused(stunkit_peer_config *c, int want, const char *words)
{
    char why[200];
    int err = 0;
    stunkit_peer *p = stunkit_peer_new(c, &err, why, sizeof(why));
    CHECK(p == NULL);
    CHECK_EQ(err, want);
    if (!strstr(why, words)) {
        fprintf(stderr, "expected '%s' in '%s'\n", words, why);
        CHECK_FAIL("the reason");
    }
    stunkit_peer_free(p);
}

static void bad_config(void)
{
    stunkit_peer_config c = STUNKIT_CONFIG_INIT(c);
    refused(&c, STUNKIT_ERR_INVAL, "no server");
    c.server = server();
    c.room = "no spaces allowed";
    c.username = "alice";
    c.password = "secret";
    refused(&c, STUNKIT_ERR_INVAL, "room name");
    c.room = "fine";
    c.username = NULL;
    refused(&c, STUNKIT_ERR_INVAL, "credentials");
    c.room = NULL;
    c.relay_only = 1;
    refused(&c, STUNKIT_ERR_INVAL, "relay-only needs a relay");
    c.relay_only = 0;
    c.username = "alice";
    c.password = "";
    refused(&c, STUNKIT_ERR_INVAL, "password");
    c.username = NULL;
    c.server = "stun:";
    refused(&c, STUNKIT_ERR_INVAL, "expected host");
    c.server = "no-such-host.invalid";
    refused(&c, STUNKIT_ERR_RESOLVE, "cannot resolve");
    c.server = server();
    c.tls_insecure = 1;
    refused(&c, STUNKIT_ERR_INVAL, "TLS server");
    c.tls_insecure = 0;
    const char *not_ours[] = {"192.0.2.77"};
    c.local_addresses = not_ours;
    c.n_local_addresses = 1;
    refused(&c, STUNKIT_ERR_BAD_ADDRESS, "192.0.2.77");
    c.local_addresses = NULL;
    c.n_local_addresses = 0;
    /* a newer application's config, with a field this library does not know */
    struct {
        stunkit_peer_config c;
        int future;
    } newer;
    memset(&newer, 0, sizeof(newer));
    newer.c = c;
    newer.c.size = sizeof(newer);
    newer.future = 1;
    refused(&newer.c, STUNKIT_ERR_INVAL, "size");
    newer.future = 0; /* ... left zero: taken */
    char why[200];
    int err = 0;
    stunkit_peer *p = stunkit_peer_new(&newer.c, &err, why, sizeof(why));
    CHECK(p != NULL);
    stunkit_peer_free(p);
    stunkit_peer_free(NULL);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: peer_test STUNKITD\n");
        return 2;
    }
    su_stunkitd = argv[1];
    signal(SIGPIPE, SIG_IGN);
    const char *args[] = {"--listen", server(), "--credential", "alice:secret", "--turn", "--relay-ports",
                          su_fmt("%u-%u", su_port(820), su_port(839)), "--allowed-peer", "127.0.0.0/8",
                          "--rendezvous", "--metrics", su_at("127.0.0.1", METRICS), "--no-tcp", "--threads", "2",
                          "--log-level", "warn", NULL};
    pid_t srv = su_start(args, server());
    CHECK(srv > 0);
    if (srv <= 0)
        TEST_END();
    RUN(bad_config);
    RUN(own_signalling);
    RUN(wrong_secret);
    RUN(blocking);
    RUN(rooms_threads);
    kill(srv, SIGTERM);
    waitpid(srv, NULL, 0);
    TEST_END();
}
