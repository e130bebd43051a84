/*
 * server_fleet_test.c - stunkitd as one server of a fleet, on loopback:
 *
 *   - a drain (SIGUSR2): /ready turns 503 while /live stays 200; a new
 *     Allocate gets an authenticated 300 Try Alternate naming the other
 *     server (RFC 8489 10); `stunkit turn` follows it and relays through
 *     the alternate; the allocation held here is kept (its Refresh works)
 *     and, once it is deleted, the server exits by itself;
 *   - a drain with no alternate: 508, and the drain's timeout ends the
 *     process though an allocation is still held;
 *   - --turn-redirect-above: the allocation over the mark goes elsewhere;
 *     the ICE agent's TURN over TCP follows such a 300 to the alternate
 *     (the application reconnects its stream when told);
 *   - the new flags' mistakes, each refused with a reason.
 *
 * Usage: server_fleet_test STUNKITD STUNKIT
 */
#include <openssl/evp.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>

#include "test.h"
#include "turn_util.h"

static const char *stunkit_cli;

#define A_PORT 963
#define B_PORT 964
#define C_PORT 965
#define D_PORT 966
#define METRICS_PORT 967
#define E_PORT 968

static pid_t start(int port, const char *const *extra)
{
    const char *args[40] = {"--listen", su_at("127.0.0.1", port), "--turn", "--credential", "alice:fleet-pw",
                            "--realm", "fleet.example", "--nonce-key", "the-fleet-nonce-key-42",
                            "--allowed-peer", "127.0.0.1/32", "--log-level", "warn"};
    int n = 13;
    for (int i = 0; extra && extra[i] && n < 39; i++)
        args[n++] = extra[i];
    args[n] = NULL;
    return su_start(args, su_at("127.0.0.1", port));
}

/* GET path from the metrics endpoint: the HTTP status, -1 when none. */
static int http_status(const char *at, const char *path)
{
    const char *resp = su_http_get(at, path);
    int status = -1;
    if (resp)
        sscanf(resp, "HTTP/1.0 %d", &status);
    return status;
}

/* The process's exit status once it exits by itself within ms (-1: it did
 * not; then it is stopped). */
static int exits_within(pid_t pid, int ms)
{
    int status;
    for (int waited = 0; waited < ms; waited += 20) {
        if (waitpid(pid, &status, WNOHANG) == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        su_sleep_ms(20);
    }
    su_stop(pid);
    return -1;
}

/* An Allocate: the answer's code (0 success) and the message in buf. */
static int allocate(tu_client *c, uint8_t *buf, size_t cap, stunkit_msg *m)
{
    tu_attrs a = {.transport = 1, .lifetime = -1};
    return tu_ask(c, STUNKIT_METHOD_ALLOCATE, &a, buf, cap, m);
}

static int refresh(tu_client *c, int lifetime)
{
    uint8_t buf[1024];
    stunkit_msg m;
    tu_attrs a = {.lifetime = lifetime};
    return tu_ask(c, STUNKIT_METHOD_REFRESH, &a, buf, sizeof(buf), &m);
}

static void test_drain(void)
{
    pid_t b = start(B_PORT, NULL);
    const char *extra[] = {"--alternate-server", su_at("127.0.0.1", B_PORT), "--metrics",
                           su_at("127.0.0.1", METRICS_PORT), "--drain-timeout", "30", NULL};
    pid_t a = start(A_PORT, extra);
    CHECK(a > 0 && b > 0);
    if (a <= 0 || b <= 0)
        goto out;
    const char *metrics = su_at("127.0.0.1", METRICS_PORT);
    CHECK_EQ(http_status(metrics, "/ready"), 200);
    CHECK_EQ(http_status(metrics, "/live"), 200);

    /* an allocation held through the drain */
    tu_client held;
    uint8_t buf[2048];
    stunkit_msg m;
    CHECK_EQ(tu_open(&held, TU_UDP, su_at("127.0.0.1", A_PORT), "alice", "fleet-pw"), 0);
    CHECK_EQ(allocate(&held, buf, sizeof(buf), &m), 0);

    kill(a, SIGUSR2);
    int ready = 0;
    for (int i = 0; i < 50 && (ready = http_status(metrics, "/ready")) != 503; i++)
        su_sleep_ms(20);
    CHECK_EQ(ready, 503);
    CHECK_EQ(http_status(metrics, "/live"), 200);

    /* a newcomer: 300, signed, naming B */
    tu_client n;
    CHECK_EQ(tu_open(&n, TU_UDP, su_at("127.0.0.1", A_PORT), "alice", "fleet-pw"), 0);
    CHECK_EQ(allocate(&n, buf, sizeof(buf), &m), 300);
    stunkit_addr alt, b_addr;
    stunkit_addr_parse("127.0.0.1", (uint16_t)su_port(B_PORT), &b_addr);
    CHECK(tu_addr_attr(&m, STUNKIT_ATTR_ALTERNATE_SERVER, &alt) == 0 && stunkit_addr_equal(&alt, &b_addr));
    CHECK_EQ(stunkit_check_integrity(&m, n.key, sizeof(n.key)), 0); /* the client can trust where it is sent */
    tu_close(&n);

    /* the library's TURN client follows it: stunkit turn relays through B */
    char cmd[512], out[4096] = "";
    snprintf(cmd, sizeof(cmd), "%s turn --json --username alice --password fleet-pw %s 2>&1", stunkit_cli,
             su_at("127.0.0.1", A_PORT));
    FILE *p = popen(cmd, "r");
    size_t got = p ? fread(out, 1, sizeof(out) - 1, p) : 0;
    out[got] = 0;
    int rc = p ? pclose(p) : -1;
    char want[96];
    snprintf(want, sizeof(want), "\"redirected_to\": \"%s\"", su_at("127.0.0.1", B_PORT));
    CHECK(rc == 0 && strstr(out, "\"ok\": true") && strstr(out, want));
    if (!(rc == 0 && strstr(out, want)))
        fprintf(stderr, "  stunkit turn: %d %s\n", rc, out);

    /* the held allocation is kept: refreshed, then deleted; the drain ends */
    CHECK_EQ(refresh(&held, 600), 0);
    CHECK_EQ(waitpid(a, NULL, WNOHANG), 0); /* still serving it */
    CHECK_EQ(refresh(&held, 0), 0);
    tu_close(&held);
    CHECK_EQ(exits_within(a, 5000), 0);
    a = 0;
out:
    if (a > 0)
        su_stop(a);
    if (b > 0)
        CHECK_EQ(su_stop(b), 0);
}

/* No alternate: 508 while draining; the drain's timeout ends it though an
 * allocation is still held. */
static void test_drain_alone(void)
{
    const char *extra[] = {"--drain-timeout", "2", NULL};
    pid_t d = start(D_PORT, extra);
    CHECK(d > 0);
    if (d <= 0)
        return;
    tu_client held, n;
    uint8_t buf[2048];
    stunkit_msg m;
    CHECK_EQ(tu_open(&held, TU_UDP, su_at("127.0.0.1", D_PORT), "alice", "fleet-pw"), 0);
    CHECK_EQ(allocate(&held, buf, sizeof(buf), &m), 0);
    kill(d, SIGUSR2);
    su_sleep_ms(300);
    CHECK_EQ(tu_open(&n, TU_UDP, su_at("127.0.0.1", D_PORT), "alice", "fleet-pw"), 0);
    CHECK_EQ(allocate(&n, buf, sizeof(buf), &m), 508);
    CHECK_EQ(exits_within(d, 5000), 0);
    tu_close(&n);
    tu_close(&held);
}

/* --turn-redirect-above 1: the second allocation goes to the alternate. */
static void test_redirect_above(void)
{
    const char *extra[] = {"--alternate-server", su_at("127.0.0.1", B_PORT), "--turn-redirect-above", "1", NULL};
    pid_t c = start(C_PORT, extra);
    CHECK(c > 0);
    if (c <= 0)
        return;
    tu_client one, two;
    uint8_t buf[2048];
    stunkit_msg m;
    CHECK_EQ(tu_open(&one, TU_UDP, su_at("127.0.0.1", C_PORT), "alice", "fleet-pw"), 0);
    CHECK_EQ(allocate(&one, buf, sizeof(buf), &m), 0);
    CHECK_EQ(tu_open(&two, TU_UDP, su_at("127.0.0.1", C_PORT), "alice", "fleet-pw"), 0);
    CHECK_EQ(allocate(&two, buf, sizeof(buf), &m), 300);
    CHECK_EQ(refresh(&one, 0), 0);
    CHECK_EQ(allocate(&two, buf, sizeof(buf), &m), 0); /* below the mark again: served here */
    CHECK_EQ(refresh(&two, 0), 0);
    tu_close(&one);
    tu_close(&two);
    CHECK_EQ(su_stop(c), 0);
}

/* The ICE agent's TURN over TCP at a server that answers 300 (over its
 * --turn-redirect-above mark): the agent says STREAM_REDIRECTED naming the
 * alternate and sends nothing more on the old stream; the application
 * connects to the alternate and hands the new stream over; the Allocate
 * goes there and a relayed candidate comes. */
static void test_ice_stream_redirect(void)
{
    pid_t b = start(B_PORT, NULL);
    const char *extra[] = {"--alternate-server", su_at("127.0.0.1", B_PORT), "--turn-redirect-above", "1", NULL};
    pid_t c = start(C_PORT, extra);
    CHECK(b > 0 && c > 0);
    if (b <= 0 || c <= 0)
        goto out;
    tu_client held;
    uint8_t buf[2048];
    stunkit_msg m;
    CHECK_EQ(tu_open(&held, TU_UDP, su_at("127.0.0.1", C_PORT), "alice", "fleet-pw"), 0);
    CHECK_EQ(allocate(&held, buf, sizeof(buf), &m), 0); /* C is at its mark */

    stunkit_ice_server srv;
    memset(&srv, 0, sizeof(srv));
    stunkit_addr_parse(su_at("127.0.0.1", C_PORT), 0, &srv.addr);
    srv.turn = 1;
    srv.username = "alice";
    srv.password = "fleet-pw";
    srv.transport = STUNKIT_TCP;
    stunkit_ice_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.size = sizeof(cfg);
    cfg.env.random = stunkit_random_os;
    cfg.servers = &srv;
    cfg.n_servers = 1;
    stunkit_ice *ice = stunkit_ice_new(&cfg, stunkit_now_ms());
    int fd = su_tcp(su_at("127.0.0.1", C_PORT));
    CHECK(ice && fd >= 0);
    stunkit_addr local = su_local(fd), b_addr, relay;
    stunkit_addr_parse(su_at("127.0.0.1", B_PORT), 0, &b_addr);
    memset(&relay, 0, sizeof(relay));
    CHECK_EQ(stunkit_ice_add_stream(ice, 100, 0, &local, stunkit_now_ms()), 0);
    CHECK_EQ(stunkit_ice_stream_moved(ice, 100, &local, stunkit_now_ms()), STUNKIT_ERR_INVAL); /* nothing to move yet */
    stunkit_ice_local_done(ice, stunkit_now_ms());
    int redirected = 0, sent_after = 0, moved = 0;
    uint8_t rx[8192];
    size_t have = 0;
    for (uint64_t end = stunkit_now_ms() + 5000; stunkit_now_ms() < end && !relay.family;) {
        stunkit_ice_output o;
        while (stunkit_ice_poll(ice, stunkit_now_ms(), &o) == 1) {
            if (o.send && o.base == 100) {
                sent_after += redirected && !moved;
                if (send(fd, o.data, o.len, MSG_NOSIGNAL) != (ssize_t)o.len)
                    CHECK_FAIL("send on the stream");
            } else if (!o.send && o.event == STUNKIT_ICE_EVENT_STREAM_REDIRECTED) {
                redirected++;
                CHECK_EQ(o.base, 100);
                CHECK(stunkit_addr_equal(&o.to, &b_addr));
                close(fd);
                fd = -1;
            } else if (!o.send && o.event == STUNKIT_ICE_EVENT_CANDIDATE && o.local.type == STUNKIT_ICE_TYPE_RELAY) {
                relay = o.local.addr;
            }
        }
        if (redirected && fd < 0) {
            /* the application's part: a connection to the alternate */
            fd = su_tcp(su_at("127.0.0.1", B_PORT));
            CHECK(fd >= 0);
            if (fd < 0)
                break;
            local = su_local(fd);
            have = 0;
            CHECK_EQ(stunkit_ice_stream_moved(ice, 100, &local, stunkit_now_ms()), 0);
            moved = 1;
        }
        struct pollfd pf = {fd, POLLIN, 0};
        if (poll(&pf, 1, 20) == 1) {
            ssize_t r = recv(fd, rx + have, sizeof(rx) - have, 0);
            if (r <= 0) {
                CHECK_FAIL("the stream closed");
                break;
            }
            have += (size_t)r;
            size_t need;
            while (have && stunkit_turn_frame(rx, have, &need) == 0 && need <= have) {
                stunkit_ice_input(ice, 100, moved ? &b_addr : &srv.addr, rx, need, stunkit_now_ms(), NULL);
                memmove(rx, rx + need, have - need);
                have -= need;
            }
        }
    }
    CHECK_EQ(redirected, 1);
    CHECK_EQ(sent_after, 0);
    CHECK(relay.family != 0);
    if (fd >= 0)
        close(fd);
    stunkit_ice_free(ice);
    CHECK_EQ(refresh(&held, 0), 0);
    tu_close(&held);
out:
    if (c > 0)
        CHECK_EQ(su_stop(c), 0);
    if (b > 0)
        CHECK_EQ(su_stop(b), 0);
}

/* `stunkitd ctl ARGS` against sock: the exit status and the answer in out. */
static int ctl(const char *sock, const char *args, char *out, size_t cap)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "%s ctl --socket %s %s 2>&1", su_stunkitd, sock, args);
    FILE *p = popen(cmd, "r");
    size_t got = p ? fread(out, 1, cap - 1, p) : 0;
    out[got] = 0;
    int rc = p ? pclose(p) : -1;
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

/* The control socket: what it lists is what is there; kick and revoke end
 * allocations at once; a revoked user (a REST user by its name) is refused
 * until unrevoked, the others go on; drain ends the process. */
static void test_control(void)
{
    char dir[] = "/tmp/stunkitd-ctl-XXXXXX", sock[64], out[8192];
    if (!mkdtemp(dir)) {
        CHECK_FAIL("mkdtemp");
        return;
    }
    snprintf(sock, sizeof(sock), "%s/control", dir);
    const char *extra[] = {"--control", sock, "--rendezvous", "--credential", "bob:bob-pw", "--auth-secret",
                           "fleet-rest-secret", NULL};
    pid_t e = start(E_PORT, extra);
    CHECK(e > 0);
    if (e <= 0)
        return;
    struct stat st;
    CHECK(stat(sock, &st) == 0 && (st.st_mode & 0777) == 0600);
    const char *to = su_at("127.0.0.1", E_PORT);
    tu_client alice, bob, carol;
    uint8_t buf[2048];
    stunkit_msg m;
    char rest_user[64], rest_pw[64];
    snprintf(rest_user, sizeof(rest_user), "%llu:carol", (unsigned long long)time(NULL) + 3600);
    uint8_t mac[20];
    stunkit_hmac_sha1((const uint8_t *)"fleet-rest-secret", 17, (const uint8_t *)rest_user, strlen(rest_user), NULL, 0,
                      mac);
    EVP_EncodeBlock((unsigned char *)rest_pw, mac, 20);
    CHECK_EQ(tu_open(&alice, TU_UDP, to, "alice", "fleet-pw"), 0);
    CHECK_EQ(tu_open(&bob, TU_UDP, to, "bob", "bob-pw"), 0);
    CHECK_EQ(tu_open(&carol, TU_UDP, to, rest_user, rest_pw), 0);
    CHECK_EQ(allocate(&alice, buf, sizeof(buf), &m), 0);
    CHECK_EQ(allocate(&bob, buf, sizeof(buf), &m), 0);
    CHECK_EQ(allocate(&carol, buf, sizeof(buf), &m), 0);
    tu_attrs room = {.lifetime = -1, .room = "ctl-room", .peer_id = "CTLPEER1"};
    CHECK_EQ(tu_ask(&bob, STUNKIT_METHOD_RENDEZVOUS, &room, buf, sizeof(buf), &m), 0);

    CHECK_EQ(ctl(sock, "status", out, sizeof(out)), 0);
    CHECK(strstr(out, "\"allocations\": 3") && strstr(out, "\"rooms\": 1") && strstr(out, "\"draining\": false"));
    CHECK_EQ(ctl(sock, "allocations", out, sizeof(out)), 0);
    CHECK(strstr(out, "\"user\": \"alice\"") && strstr(out, "\"user\": \"bob\"") && strstr(out, rest_user) &&
          strstr(out, "\"count\": 3") && strstr(out, "\"transport\": \"udp\"") && strstr(out, "\"relayed\": [\"127.0.0.1:"));
    CHECK_EQ(ctl(sock, "rooms", out, sizeof(out)), 0);
    CHECK(strstr(out, "\"room\": \"ctl-room\"") && strstr(out, "\"user\": \"bob\"") && strstr(out, "\"peers\": 1"));

    /* revoke alice: her allocation ends now, her credentials are refused */
    CHECK_EQ(ctl(sock, "revoke alice", out, sizeof(out)), 0);
    CHECK(strstr(out, "\"allocations_ended\": 1") != NULL);
    CHECK_EQ(refresh(&alice, 600), 401);
    tu_client again;
    CHECK_EQ(tu_open(&again, TU_UDP, to, "alice", "fleet-pw"), 0);
    CHECK_EQ(allocate(&again, buf, sizeof(buf), &m), 401);
    CHECK_EQ(refresh(&bob, 600), 0); /* the others go on */
    /* a REST user is revoked by its name, whatever the expiry */
    CHECK_EQ(ctl(sock, "revoke carol", out, sizeof(out)), 0);
    CHECK(strstr(out, "\"allocations_ended\": 1") != NULL);
    CHECK_EQ(refresh(&carol, 600), 401);
    CHECK_EQ(ctl(sock, "revoked", out, sizeof(out)), 0);
    CHECK(strstr(out, "\"alice\"") && strstr(out, "\"carol\"") && strstr(out, "\"count\": 2"));
    CHECK_EQ(ctl(sock, "unrevoke alice", out, sizeof(out)), 0);
    CHECK_EQ(allocate(&again, buf, sizeof(buf), &m), 0);
    CHECK_EQ(ctl(sock, "unrevoke nobody", out, sizeof(out)), 1);
    /* a name with a quote and a backslash comes back escaped: JSON stays JSON */
    CHECK_EQ(ctl(sock, "revoke 'ma\"l\\lory'", out, sizeof(out)), 0);
    CHECK(strstr(out, "\"user\": \"ma\\\"l\\\\lory\"") != NULL);
    CHECK_EQ(ctl(sock, "unrevoke 'ma\"l\\lory'", out, sizeof(out)), 0);

    /* kick bob: his allocation ends, his credentials still count */
    CHECK_EQ(ctl(sock, "kick bob", out, sizeof(out)), 0);
    CHECK(strstr(out, "\"allocations_ended\": 1") != NULL);
    CHECK_EQ(refresh(&bob, 600), 437); /* no allocation any more */

    /* mistakes: exit 2 before anything is sent; an unknown command from a raw client: ok false */
    CHECK_EQ(ctl(sock, "kick", out, sizeof(out)), 2);
    CHECK_EQ(ctl(sock, "explode", out, sizeof(out)), 2);
    CHECK_EQ(ctl("/nonexistent/ctl", "status", out, sizeof(out)), 1);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
        send(fd, "explode\n", 8, MSG_NOSIGNAL);
        ssize_t r = recv(fd, out, sizeof(out) - 1, 0);
        out[r > 0 ? r : 0] = 0;
        CHECK(strstr(out, "\"ok\": false") && strstr(out, "unknown command"));
    } else {
        CHECK_FAIL("connect to the control socket");
    }
    if (fd >= 0)
        close(fd);

    /* drain: the last allocation deleted, the process exits, the socket goes */
    CHECK_EQ(ctl(sock, "drain", out, sizeof(out)), 0);
    CHECK_EQ(ctl(sock, "status", out, sizeof(out)), 0);
    CHECK(strstr(out, "\"draining\": true") != NULL);
    CHECK_EQ(refresh(&again, 0), 0);
    CHECK_EQ(exits_within(e, 5000), 0);
    CHECK(stat(sock, &st) != 0);
    tu_close(&alice);
    tu_close(&bob);
    tu_close(&carol);
    tu_close(&again);
    rmdir(dir);
}

/* Each mistake: exit 2 (or 1) with a line that names it. */
static void test_bad_flags(void)
{
    static const char *const cases[][8] = {
        {"--listen", "127.0.0.1:1", "--alternate-server", "127.0.0.2", NULL}, /* without --turn */
        {"--listen", "127.0.0.1:1", "--turn", "--credential", "a:b", "--turn-redirect-above", "5", NULL},
        {"--listen", "127.0.0.1:1", "--turn", "--credential", "a:b", "--alternate-server", "0.0.0.0", NULL},
        {"--listen", "127.0.0.1:1", "--turn", "--credential", "a:b", "--alternate-server", "127.0.0.1:1", NULL},
        {"--listen", "127.0.0.1:1", "--drain-timeout", "-4", NULL},
        {"--listen", "127.0.0.1:1", "--turn", "--credential", "a:b", "--alternate-domain", "bad name", NULL},
        {"--listen", "127.0.0.1:1", "--control", "relative/path", NULL},
        {"--listen", "127.0.0.1:1", "--control", "/tmp/x", "--control-mode", "0644x", NULL},
        {"--listen", "127.0.0.1:1", "--control", "/tmp/x", "--control-mode", "0400", NULL},
        {"--listen", "127.0.0.1:1", "--control-group", "root", NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char cmd[512] = "", *w = cmd;
        w += snprintf(w, sizeof(cmd), "%s", su_stunkitd);
        for (int k = 0; cases[i][k]; k++)
            w += snprintf(w, sizeof(cmd) - (size_t)(w - cmd), " '%s'", cases[i][k]);
        snprintf(w, sizeof(cmd) - (size_t)(w - cmd), " 2>&1");
        FILE *p = popen(cmd, "r");
        char out[512] = "";
        size_t got = p ? fread(out, 1, sizeof(out) - 1, p) : 0;
        out[got] = 0;
        int rc = p ? pclose(p) : -1;
        int code = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
        CHECK(code != 0 && strstr(out, "stunkitd") != NULL);
        if (code == 0)
            fprintf(stderr, "  accepted: %s\n", cmd);
    }
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: server_fleet_test STUNKITD STUNKIT\n");
        return 2;
    }
    su_stunkitd = argv[1];
    stunkit_cli = argv[2];
    signal(SIGPIPE, SIG_IGN);
    RUN(test_bad_flags);
    RUN(test_redirect_above);
    RUN(test_ice_stream_redirect);
    RUN(test_drain_alone);
    RUN(test_drain);
    RUN(test_control);
    TEST_END();
}
