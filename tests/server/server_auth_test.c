/*
 * server_auth_test.c STUNKITD - authentication end to end, our codec as the
 * client: the 401 challenge, long-term credentials with MD5 and SHA-256,
 * the bid-down check, stale and forged nonces, USERHASH, time-limited
 * credentials from a shared secret, short-term credentials, and the strict
 * budget for unauthenticated challenges.
 */
#include <fcntl.h>
#include <openssl/evp.h>
#include <time.h>

#include "server_util.h"
#include "test_cert.h"

typedef struct creds {
    const char *user; /* NULL: send USERHASH of hash_user */
    const char *hash_user;
    const char *password;
    const char *realm;
    uint16_t alg;        /* 0: no PASSWORD-ALGORITHM(S) */
    int algs_tamper;     /* send PASSWORD-ALGORITHMS with MD5 only */
    int sha256_mac;
} creds;

static int ask(int fd, const uint8_t *req, size_t len, const char *to, uint8_t *resp, size_t cap, stunkit_msg *m)
{
    if (su_sendto(fd, req, len, to) != 0)
        return -1;
    int n = su_recv(fd, resp, cap, 1000, NULL);
    if (n <= 0 || stunkit_msg_parse(m, resp, (size_t)n) != 0 || memcmp(m->tid, req + 8, 12) != 0)
        return -1;
    return n;
}

static int code_of(const stunkit_msg *m)
{
    stunkit_attr a;
    int code = 0;
    if (m->klass == STUNKIT_CLASS_SUCCESS)
        return 200;
    if (stunkit_msg_find(m, STUNKIT_ATTR_ERROR_CODE, &a) != 0 || stunkit_attr_error_code(&a, &code, NULL, NULL))
        return -1;
    return code;
}

static size_t text_attr(const stunkit_msg *m, uint16_t type, char *out, size_t cap)
{
    stunkit_attr a;
    if (stunkit_msg_find(m, type, &a) != 0 || a.len >= cap)
        return 0;
    memcpy(out, a.value, a.len);
    out[a.len] = '\0';
    return a.len;
}

/* A request with long-term credentials and the given nonce. */
static size_t signed_request(uint8_t *buf, size_t cap, const creds *c, const char *nonce, uint8_t *key,
                             size_t *klen)
{
    uint8_t tid[12];
    stunkit_writer w;
    su_tid(tid);
    stunkit_writer_init(&w, buf, cap, STUNKIT_METHOD_BINDING, STUNKIT_CLASS_REQUEST, tid);
    const char *name = c->user ? c->user : c->hash_user;
    if (c->user) {
        stunkit_put(&w, STUNKIT_ATTR_USERNAME, c->user, strlen(c->user));
    } else {
        uint8_t uh[32];
        stunkit_userhash(c->hash_user, strlen(c->hash_user), c->realm, strlen(c->realm), uh);
        stunkit_put(&w, STUNKIT_ATTR_USERHASH, uh, 32);
    }
    stunkit_put(&w, STUNKIT_ATTR_REALM, c->realm, strlen(c->realm));
    stunkit_put(&w, STUNKIT_ATTR_NONCE, nonce, strlen(nonce));
    uint16_t alg = c->alg ? c->alg : STUNKIT_PWALG_MD5;
    if (c->alg) {
        static const uint16_t both[] = {STUNKIT_PWALG_MD5, STUNKIT_PWALG_SHA256};
        stunkit_put_password_algorithms(&w, both, c->algs_tamper ? 1 : 2);
        stunkit_put_password_algorithm(&w, c->alg);
    }
    int n = stunkit_key_long_term(alg, name, strlen(name), c->realm, strlen(c->realm), c->password,
                                  strlen(c->password), key, 32);
    *klen = (size_t)n;
    if (c->sha256_mac)
        stunkit_put_integrity_sha256(&w, key, *klen, 0);
    else
        stunkit_put_integrity(&w, key, *klen);
    stunkit_put_fingerprint(&w);
    return (size_t)stunkit_writer_finish(&w);
}

/* The 401 dance: returns the server's nonce in *nonce. */
static int challenge(int fd, const char *to, char *nonce, size_t cap)
{
    uint8_t req[20], resp[512], tid[12];
    stunkit_msg m;
    stunkit_writer w;
    su_tid(tid);
    stunkit_writer_init(&w, req, sizeof(req), STUNKIT_METHOD_BINDING, STUNKIT_CLASS_REQUEST, tid);
    if (ask(fd, req, 20, to, resp, sizeof(resp), &m) < 0)
        return -1;
    char realm[64];
    CHECK_EQ(code_of(&m), 401);
    CHECK(text_attr(&m, STUNKIT_ATTR_REALM, realm, sizeof(realm)) > 0 && !strcmp(realm, "example.org"));
    CHECK(text_attr(&m, STUNKIT_ATTR_NONCE, nonce, cap) > 13 && !strncmp(nonce, "obMatJos2", 9));
    stunkit_attr a;
    CHECK(stunkit_msg_find(&m, STUNKIT_ATTR_PASSWORD_ALGORITHMS, &a) == 0);
    stunkit_addr mapped;
    CHECK(stunkit_msg_mapped(&m, &mapped) != 0); /* no address before authentication */
    return 0;
}

static int try(int fd, const char *to, const creds *c, const char *nonce, stunkit_msg *m, uint8_t *resp, size_t cap,
               int *mac_ok)
{
    uint8_t req[512], key[32];
    size_t klen;
    size_t len = signed_request(req, sizeof(req), c, nonce, key, &klen);
    if (ask(fd, req, len, to, resp, cap, m) < 0)
        return -1;
    int code = code_of(m);
    if (mac_ok)
        *mac_ok = c->sha256_mac ? stunkit_check_integrity_sha256(m, key, klen) == 0
                                : stunkit_check_integrity(m, key, klen) == 0;
    return code;
}

static void test_long_term(void)
{
    const char *args[] = {"--listen", su_at("127.0.0.1", 880), "--realm", "example.org", "--credential", "alice:s3cret",
                          "--auth-secret", "fleet-secret-42", "--nonce-lifetime", "10", "--log-level", "warn",
                          NULL};
    pid_t pid = su_start(args, su_at("127.0.0.1", 880));
    CHECK(pid > 0);
    if (pid <= 0)
        return;
    int fd = su_udp("127.0.0.1", 0);
    const char *to = su_at("127.0.0.1", 880);
    char nonce[128];
    uint8_t resp[1024];
    stunkit_msg m;
    int mac_ok = 0;
    CHECK_EQ(challenge(fd, to, nonce, sizeof(nonce)), 0);
    CHECK(!strncmp(nonce, "obMatJos2AAAB", 13)); /* a REST secret: no username anonymity offered */

    creds c = {"alice", NULL, "s3cret", "example.org", 0, 0, 0};
    CHECK_EQ(try(fd, to, &c, nonce, &m, resp, sizeof(resp), &mac_ok), 200);
    CHECK(mac_ok); /* the answer is signed with the same key */
    stunkit_addr mapped;
    CHECK_EQ(stunkit_msg_mapped(&m, &mapped), 0);

    /* SHA-256 key and MESSAGE-INTEGRITY-SHA256, PASSWORD-ALGORITHMS echoed */
    creds c256 = {"alice", NULL, "s3cret", "example.org", STUNKIT_PWALG_SHA256, 0, 1};
    CHECK_EQ(try(fd, to, &c256, nonce, &m, resp, sizeof(resp), &mac_ok), 200);
    CHECK(mac_ok && m.mi256_off != 0);

    /* bid-down: PASSWORD-ALGORITHMS not as offered */
    creds down = {"alice", NULL, "s3cret", "example.org", STUNKIT_PWALG_MD5, 1, 0};
    CHECK_EQ(try(fd, to, &down, nonce, &m, resp, sizeof(resp), NULL), 400);

    /* wrong password, unknown user, wrong realm: 401 with a fresh challenge */
    creds wrong = {"alice", NULL, "S3cret", "example.org", 0, 0, 0};
    CHECK_EQ(try(fd, to, &wrong, nonce, &m, resp, sizeof(resp), NULL), 401);
    char again[128];
    CHECK(text_attr(&m, STUNKIT_ATTR_NONCE, again, sizeof(again)) > 0);
    creds nobody = {"mallory", NULL, "x", "example.org", 0, 0, 0};
    CHECK_EQ(try(fd, to, &nobody, nonce, &m, resp, sizeof(resp), NULL), 401);
    creds realm = {"alice", NULL, "s3cret", "other.org", 0, 0, 0};
    CHECK_EQ(try(fd, to, &realm, nonce, &m, resp, sizeof(resp), NULL), 401);

    /* a forged nonce: 401, not accepted */
    char forged[128];
    snprintf(forged, sizeof(forged), "%s", nonce);
    forged[strlen(forged) - 1] = forged[strlen(forged) - 1] == '0' ? '1' : '0';
    CHECK_EQ(try(fd, to, &c, forged, &m, resp, sizeof(resp), NULL), 401);

    /* USERHASH instead of USERNAME */
    creds hashed = {NULL, "alice", "s3cret", "example.org", 0, 0, 0};
    CHECK_EQ(try(fd, to, &hashed, nonce, &m, resp, sizeof(resp), &mac_ok), 200);
    CHECK(mac_ok);

    /* time-limited credentials from the shared secret (coturn REST API form) */
    char user[64], password[64];
    snprintf(user, sizeof(user), "%llu:bob", (unsigned long long)time(NULL) + 3600);
    uint8_t mac[20];
    stunkit_hmac_sha1((const uint8_t *)"fleet-secret-42", 15, (const uint8_t *)user, strlen(user), NULL, 0, mac);
    EVP_EncodeBlock((unsigned char *)password, mac, 20);
    creds rest = {user, NULL, password, "example.org", 0, 0, 0};
    CHECK_EQ(try(fd, to, &rest, nonce, &m, resp, sizeof(resp), &mac_ok), 200);
    CHECK(mac_ok);
    snprintf(user, sizeof(user), "%llu:bob", (unsigned long long)time(NULL) - 10); /* expired */
    stunkit_hmac_sha1((const uint8_t *)"fleet-secret-42", 15, (const uint8_t *)user, strlen(user), NULL, 0, mac);
    EVP_EncodeBlock((unsigned char *)password, mac, 20);
    creds expired = {user, NULL, password, "example.org", 0, 0, 0};
    CHECK_EQ(try(fd, to, &expired, nonce, &m, resp, sizeof(resp), NULL), 401);

    /* nonces going stale (438) are checked on a fake clock in handler_test.c */
    close(fd);
    CHECK_EQ(su_stop(pid), 0);
}

/* A REST-API password (coturn's form) for user from secret. */
static void rest_password(const char *secret, const char *user, char *out)
{
    uint8_t mac[20];
    stunkit_hmac_sha1((const uint8_t *)secret, strlen(secret), (const uint8_t *)user, strlen(user), NULL, 0, mac);
    EVP_EncodeBlock((unsigned char *)out, mac, 20);
}

/* A fleet: X accepts the new and the old secret (rotation under way), Y
 * only the new one (rotation done); both have the fleet's nonce key, so a
 * nonce X gave is good at Y. Z has no nonce key: X's nonce is not. */
static void test_fleet_secrets(void)
{
    const char *x_args[] = {"--listen", su_at("127.0.0.1", 885), "--realm", "example.org", "--auth-secret",
                            "new-secret-2026", "--auth-secret", "old-secret-2025", "--nonce-key",
                            "fleet-nonce-key-0123", "--log-level", "warn", NULL};
    const char *y_args[] = {"--listen", su_at("127.0.0.1", 886), "--realm", "example.org", "--auth-secret",
                            "new-secret-2026", "--nonce-key", "fleet-nonce-key-0123", "--log-level", "warn", NULL};
    const char *z_args[] = {"--listen", su_at("127.0.0.1", 887), "--realm", "example.org", "--auth-secret",
                            "new-secret-2026", "--log-level", "warn", NULL};
    pid_t x = su_start(x_args, su_at("127.0.0.1", 885)), y = su_start(y_args, su_at("127.0.0.1", 886)),
          z = su_start(z_args, su_at("127.0.0.1", 887));
    CHECK(x > 0 && y > 0 && z > 0);
    if (x > 0 && y > 0 && z > 0) {
        int fd = su_udp("127.0.0.1", 0);
        const char *to_x = su_at("127.0.0.1", 885), *to_y = su_at("127.0.0.1", 886), *to_z = su_at("127.0.0.1", 887);
        char nonce[128], user[64], pw_new[64], pw_old[64];
        uint8_t resp[1024];
        stunkit_msg m;
        int mac_ok = 0;
        CHECK_EQ(challenge(fd, to_x, nonce, sizeof(nonce)), 0);
        snprintf(user, sizeof(user), "%llu:carol", (unsigned long long)time(NULL) + 3600);
        rest_password("new-secret-2026", user, pw_new);
        rest_password("old-secret-2025", user, pw_old);
        creds new_c = {user, NULL, pw_new, "example.org", 0, 0, 0};
        creds old_c = {user, NULL, pw_old, "example.org", 0, 0, 0};
        creds new_256 = {user, NULL, pw_new, "example.org", STUNKIT_PWALG_SHA256, 0, 1};
        /* X: both secrets verify, and the answer is signed with the key that did */
        CHECK_EQ(try(fd, to_x, &new_c, nonce, &m, resp, sizeof(resp), &mac_ok), 200);
        CHECK(mac_ok);
        CHECK_EQ(try(fd, to_x, &old_c, nonce, &m, resp, sizeof(resp), &mac_ok), 200);
        CHECK(mac_ok);
        CHECK_EQ(try(fd, to_x, &new_256, nonce, &m, resp, sizeof(resp), &mac_ok), 200);
        CHECK(mac_ok);
        /* Y: X's nonce is good (the fleet's key); the old secret is gone */
        CHECK_EQ(try(fd, to_y, &new_c, nonce, &m, resp, sizeof(resp), &mac_ok), 200);
        CHECK(mac_ok);
        CHECK_EQ(try(fd, to_y, &old_c, nonce, &m, resp, sizeof(resp), NULL), 401);
        /* Z: another nonce key; X's nonce is not its own: 401 and a fresh one */
        CHECK_EQ(try(fd, to_z, &new_c, nonce, &m, resp, sizeof(resp), NULL), 401);
        char fresh[128];
        CHECK(text_attr(&m, STUNKIT_ATTR_NONCE, fresh, sizeof(fresh)) > 0 && strcmp(fresh, nonce) != 0);
        CHECK_EQ(try(fd, to_z, &new_c, fresh, &m, resp, sizeof(resp), &mac_ok), 200);
        /* With REST secrets the nonce offers no username anonymity (RFC 8489
         * 9.2.5: a client would send USERHASH, and a REST user cannot be
         * found by its hash): the library's own client, which follows the
         * nonce's feature bits, is served with REST credentials (it got 401
         * when the bit was set) */
        CHECK(!strncmp(nonce, "obMatJos2AAAB", 13));
        stunkit_credentials rc = {user, pw_new, 0};
        stunkit_binding_result br;
        stunkit_addr ya;
        stunkit_addr_parse(to_y, 0, &ya);
        CHECK_EQ(stunkit_binding_auth(&ya, STUNKIT_UDP, NULL, NULL, 3000, &rc, &br), 0);
        close(fd);
    }
    CHECK_EQ(su_stop(x), 0);
    CHECK_EQ(su_stop(y), 0);
    CHECK_EQ(su_stop(z), 0);
}

static void test_short_term_and_budget(void)
{
    const char *args[] = {"--listen",          su_at("127.0.0.1", 882), "--short-term", "--credential", "evtj:h6vY",
                          "--redirect-rate-limit", "5", "--log-level", "warn", NULL};
    pid_t pid = su_start(args, su_at("127.0.0.1", 882));
    CHECK(pid > 0);
    if (pid <= 0)
        return;
    int fd = su_udp("127.0.0.1", 0);
    const char *to = su_at("127.0.0.1", 882);
    uint8_t req[256], resp[512], tid[12];
    stunkit_msg m;
    stunkit_writer w;

    su_tid(tid);
    stunkit_writer_init(&w, req, sizeof(req), STUNKIT_METHOD_BINDING, STUNKIT_CLASS_REQUEST, tid);
    stunkit_put(&w, STUNKIT_ATTR_USERNAME, "evtj", 4);
    stunkit_put_integrity(&w, (const uint8_t *)"h6vY", 4);
    size_t len = (size_t)stunkit_writer_finish(&w);
    CHECK(ask(fd, req, len, to, resp, sizeof(resp), &m) > 0);
    CHECK_EQ(code_of(&m), 200);
    CHECK_EQ(stunkit_check_integrity(&m, (const uint8_t *)"h6vY", 4), 0);

    /* no credentials: 400 (short-term has no challenge); wrong key: 401 */
    su_tid(tid);
    stunkit_writer_init(&w, req, sizeof(req), STUNKIT_METHOD_BINDING, STUNKIT_CLASS_REQUEST, tid);
    CHECK(ask(fd, req, 20, to, resp, sizeof(resp), &m) > 0);
    CHECK_EQ(code_of(&m), 400);
    su_tid(tid);
    stunkit_writer_init(&w, req, sizeof(req), STUNKIT_METHOD_BINDING, STUNKIT_CLASS_REQUEST, tid);
    stunkit_put(&w, STUNKIT_ATTR_USERNAME, "evtj", 4);
    stunkit_put_integrity(&w, (const uint8_t *)"nope", 4);
    len = (size_t)stunkit_writer_finish(&w);
    CHECK(ask(fd, req, len, to, resp, sizeof(resp), &m) > 0);
    CHECK_EQ(code_of(&m), 401);

    /* 401s are rate limited on the strict budget (5/s, burst 10): a burst of
     * forged requests gets few answers */
    int answers = 0;
    for (int i = 0; i < 50; i++)
        su_sendto(fd, req, len, to);
    while (su_recv(fd, resp, sizeof(resp), 300, NULL) > 0)
        answers++;
    fprintf(stderr, "401 answers to 50 forged requests: %d\n", answers);
    CHECK(answers <= 12);
    close(fd);
    CHECK_EQ(su_stop(pid), 0);
}

static void write_conf(const char *path, const char *password)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return;
    fprintf(f, "listen = %s\nrealm = example.org\ncredential = alice:%s\nlog-level = warn\n", su_at("127.0.0.1", 884), password);
    fclose(f);
}

static void test_reload_on_sighup(void)
{
    /* New credentials on SIGHUP, without a restart; nonces already handed
     * out stay valid. */
    char path[] = "/tmp/stunkitd-auth-XXXXXX";
    int tfd = mkstemp(path);
    CHECK(tfd >= 0);
    close(tfd);
    write_conf(path, "one");
    const char *args[] = {"--config", path, NULL};
    pid_t pid = su_start(args, su_at("127.0.0.1", 884));
    CHECK(pid > 0);
    if (pid <= 0) {
        unlink(path);
        return;
    }
    int fd = su_udp("127.0.0.1", 0);
    const char *to = su_at("127.0.0.1", 884);
    char nonce[128];
    uint8_t resp[1024];
    stunkit_msg m;
    CHECK_EQ(challenge(fd, to, nonce, sizeof(nonce)), 0);
    CHECK(!strncmp(nonce, "obMatJos2AAAD", 13)); /* static users only: username anonymity offered */
    creds one = {"alice", NULL, "one", "example.org", 0, 0, 0}, two = {"alice", NULL, "two", "example.org", 0, 0, 0};
    CHECK_EQ(try(fd, to, &one, nonce, &m, resp, sizeof(resp), NULL), 200);
    CHECK_EQ(try(fd, to, &two, nonce, &m, resp, sizeof(resp), NULL), 401);
    write_conf(path, "two");
    kill(pid, SIGHUP);
    int code = 0;
    for (int i = 0; i < 100 && code != 200; i++) { /* readiness: until the reload took */
        code = try(fd, to, &two, nonce, &m, resp, sizeof(resp), NULL);
        if (code != 200)
            su_sleep_ms(20);
    }
    CHECK_EQ(code, 200);
    CHECK_EQ(try(fd, to, &one, nonce, &m, resp, sizeof(resp), NULL), 401);
    /* a broken file is refused and the credentials stay */
    FILE *f = fopen(path, "w");
    if (f) {
        fprintf(f, "credential = nocolon\n");
        fclose(f);
    }
    kill(pid, SIGHUP);
    su_sleep_ms(300);
    CHECK_EQ(try(fd, to, &two, nonce, &m, resp, sizeof(resp), NULL), 200);
    close(fd);
    CHECK_EQ(su_stop(pid), 0);
    unlink(path);
}

/* 1,000 reloads, each with a new password (and the TLS files): every one
 * takes effect, the previous password stops working, memory stays flat. */
static void test_many_reloads(void)
{
    char path[] = "/tmp/stunkit-reloads-XXXXXX", tls_port[16];
    int tfd = mkstemp(path);
    CHECK(tfd >= 0);
    close(tfd);
    CHECK_EQ(make_cert(), 0);
    const char *to = su_at("127.0.0.1", 320);
    snprintf(tls_port, sizeof(tls_port), "%u", (unsigned)su_port(321));
    FILE *f;
#define WRITE_CONF(i)                                                                                                  \
    do {                                                                                                               \
        f = fopen(path, "w");                                                                                          \
        if (f) {                                                                                                       \
            fprintf(f, "listen = %s\nrealm = example.org\ncredential = alice:pw%d\nno-tcp = yes\nthreads = 2\n", to,  \
                    (i));                                                                                              \
            fprintf(f, "tls-cert = %s\ntls-key = %s\ntls-port = %s\n", cert_path, key_path, tls_port);              \
            fprintf(f, "log-level = warn\nrate-limit = 0\nredirect-rate-limit = 0\n");                                \
            fclose(f);                                                                                                 \
        }                                                                                                              \
    } while (0)
    WRITE_CONF(0);
    const char *args[] = {"--config", path, NULL};
    pid_t pid = su_start(args, to);
    CHECK(pid > 0);
    if (pid <= 0) {
        unlink(path);
        remove_cert();
        return;
    }
    int fd = su_udp("127.0.0.1", 0);
    char nonce[128], pw[32], old[32];
    uint8_t resp[1024];
    stunkit_msg m;
    CHECK_EQ(challenge(fd, to, nonce, sizeof(nonce)), 0);
    long rss100 = 0;
    int took = 0, revoked = 0, checks = 0;
    double t0 = su_now();
    for (int i = 1; i <= 1000 && su_now() - t0 < 60; i++) {
        WRITE_CONF(i);
        kill(pid, SIGHUP);
        snprintf(pw, sizeof(pw), "pw%d", i);
        creds now = {"alice", NULL, pw, "example.org", 0, 0, 0};
        int ok = 0;
        for (int k = 0; k < 200 && !ok; k++) {
            ok = try(fd, to, &now, nonce, &m, resp, sizeof(resp), NULL) == 200;
            if (!ok)
                su_sleep_ms(2);
        }
        took += ok;
        if (i % 100 == 0) {
            snprintf(old, sizeof(old), "pw%d", i - 1);
            creds prev = {"alice", NULL, old, "example.org", 0, 0, 0};
            revoked += try(fd, to, &prev, nonce, &m, resp, sizeof(resp), NULL) == 401;
            checks++;
        }
        if (i == 100)
            rss100 = su_rss_kb(pid);
    }
    long rss1000 = su_rss_kb(pid);
    fprintf(stderr, "1000 reloads in %.1f s: %d took effect, old password refused %d of %d; RSS %ld kB at 100, %ld kB "
                    "at 1000\n",
            su_now() - t0, took, revoked, checks, rss100, rss1000);
    CHECK_EQ(took, 1000);
    CHECK_EQ(revoked, checks);
#if defined(__SANITIZE_ADDRESS__)
    /* ASan's quarantine keeps freed memory: RSS says nothing there */
    fprintf(stderr, "RSS not checked under AddressSanitizer\n");
#else
    CHECK(rss1000 - rss100 < 1024);
#endif
    close(fd);
    CHECK_EQ(su_stop(pid), 0);
    unlink(path);
    remove_cert();
#undef WRITE_CONF
}

static void test_bad_auth_flags(void)
{
    static const char *const cases[][5] = {
        {"--credential", "nopassword", NULL, NULL},
        {"--realm", "x", NULL, NULL}, /* auth options without credentials */
        {"--auth-secret", "short", NULL, NULL},
        {"--short-term", "--auth-secret", "long-enough-secret", NULL},
        {"--auth-secret", "same-secret-twice", "--auth-secret", "same-secret-twice", NULL},
        {"--credential", "a:b", "--nonce-key", "too-short", NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        pid_t pid = fork();
        if (pid == 0) {
            int devnull = open("/dev/null", O_WRONLY);
            dup2(devnull, 2);
            char *argv[6] = {(char *)su_stunkitd, NULL, NULL, NULL, NULL, NULL};
            for (int k = 0; k < 4 && cases[i][k]; k++)
                argv[k + 1] = (char *)cases[i][k];
            execv(su_stunkitd, argv);
            _exit(127);
        }
        int status;
        waitpid(pid, &status, 0);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 2);
    }
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    su_stunkitd = argv[1];
    RUN(test_short_term_and_budget);
    RUN(test_bad_auth_flags);
    RUN(test_many_reloads);
    RUN(test_reload_on_sighup);
    RUN(test_long_term);
    RUN(test_fleet_secrets);
    TEST_END();
}
