/*
 * server_dtls_test.c STUNKITD - STUN over DTLS under attack, with OpenSSL
 * clients against a real stunkitd on loopback:
 *   - 5,000 ClientHellos/s from one address (3,000 source ports) for 1.5 s:
 *     an established session loses nothing and the server's memory stays
 *     put (no state before a valid cookie, RFC 6347 4.2.1);
 *   - clients of one address that complete the cookie exchange get at most
 *     --dtls-per-source sessions; other addresses are not affected;
 *   - a client that starts over from the same address and port (a new
 *     ClientHello) gets a new session at once.
 * Bounded in count and time.
 */
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "server_util.h"
#include "test_cert.h"

static SSL_CTX *client_ctx;

typedef struct dtls_client {
    int fd;
    SSL *ssl;
} dtls_client;

/* A UDP socket from src (ip, port 0 = any) connected to to. */
static int udp_connected(const char *src_ip, uint16_t src_port, const char *to)
{
    stunkit_addr d;
    struct sockaddr_storage ds;
    int fd = su_udp(src_ip, src_port);
    if (fd < 0)
        return -1;
    stunkit_addr_parse(to, 0, &d);
    int dl = stunkit_addr_to_sockaddr(&d, &ds);
    if (connect(fd, (struct sockaddr *)&ds, (socklen_t)dl) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* A DTLS handshake on fd, retransmitting as OpenSSL says; 0 or -1. */
static int dtls_connect(dtls_client *c, int fd, int ms)
{
    c->fd = fd;
    c->ssl = SSL_new(client_ctx);
    BIO *bio = BIO_new_dgram(fd, BIO_NOCLOSE);
    struct sockaddr_storage peer;
    socklen_t plen = sizeof(peer);
    getpeername(fd, (struct sockaddr *)&peer, &plen);
    BIO_ctrl(bio, BIO_CTRL_DGRAM_SET_CONNECTED, 0, &peer);
    SSL_set_bio(c->ssl, bio, bio);
    struct timeval tv = {0, 50000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    double t0 = su_now();
    while (su_now() - t0 < ms / 1000.0) {
        int rv = SSL_connect(c->ssl);
        if (rv == 1)
            return 0;
        int e = SSL_get_error(c->ssl, rv);
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
            break;
        DTLSv1_handle_timeout(c->ssl);
    }
    ERR_clear_error();
    SSL_free(c->ssl);
    c->ssl = NULL;
    return -1;
}

/* One Binding over the session; 1 if answered within ms. */
static int dtls_binding(dtls_client *c, int ms)
{
    uint8_t req[20], resp[512], tid[12];
    stunkit_writer w;
    su_tid(tid);
    stunkit_writer_init(&w, req, sizeof(req), STUNKIT_METHOD_BINDING, STUNKIT_CLASS_REQUEST, tid);
    if (SSL_write(c->ssl, req, 20) != 20)
        return 0;
    double t0 = su_now();
    while (su_now() - t0 < ms / 1000.0) {
        int n = SSL_read(c->ssl, resp, sizeof(resp));
        if (n > 0) {
            stunkit_msg m;
            if (stunkit_msg_parse(&m, resp, (size_t)n) == 0 && !memcmp(m.tid, tid, 12))
                return m.klass == STUNKIT_CLASS_SUCCESS;
        } else {
            int e = SSL_get_error(c->ssl, n);
            ERR_clear_error();
            if (e != SSL_ERROR_WANT_READ)
                return 0;
        }
    }
    return 0;
}

static void dtls_close(dtls_client *c)
{
    if (c->ssl)
        SSL_free(c->ssl);
    c->ssl = NULL;
}

/* The bytes of a real ClientHello (no cookie), from a client on a memory BIO. */
static size_t client_hello(uint8_t *out, size_t cap)
{
    SSL *ssl = SSL_new(client_ctx);
    BIO *rb = BIO_new(BIO_s_mem()), *wb = BIO_new(BIO_s_mem());
    SSL_set_bio(ssl, rb, wb);
    SSL_connect(ssl);
    int n = BIO_read(wb, out, (int)cap);
    SSL_free(ssl);
    ERR_clear_error();
    return n > 0 ? (size_t)n : 0;
}

#define FLOOD_PORTS 3000

static void test_dtls_attacks(void)
{
    char to[64], probe[64], tls_port[16];
    snprintf(to, sizeof(to), "%s", su_at("127.0.0.1", 311));
    snprintf(probe, sizeof(probe), "%s", su_at("127.0.0.1", 310));
    snprintf(tls_port, sizeof(tls_port), "%u", (unsigned)su_port(311));
    const char *args[] = {"--listen", probe, "--tls-cert", cert_path, "--tls-key", key_path, "--tls-port", tls_port,
                          "--threads", "1", "--dtls-per-source", "4", "--rate-limit", "0", "--log-level", "warn",
                          NULL};
    pid_t pid = su_start(args, probe);
    CHECK(pid > 0);
    if (pid <= 0)
        return;

    /* an established session from 127.0.0.2 */
    dtls_client good;
    int gfd = udp_connected("127.0.0.2", 0, to);
    if (dtls_connect(&good, gfd, 3000) != 0 || !dtls_binding(&good, 1000)) {
        CHECK_FAIL("a DTLS session and a Binding over it");
        su_stop(pid);
        return;
    }
    su_sleep_ms(200);
    long rss0 = su_rss_kb(pid);

    /* the flood: 5,000 ClientHellos/s from 127.0.0.3, 3,000 source ports */
    uint8_t hello[2048];
    size_t hlen = client_hello(hello, sizeof(hello));
    CHECK(hlen > 60);
    static int ports[FLOOD_PORTS];
    for (int i = 0; i < FLOOD_PORTS; i++)
        ports[i] = udp_connected("127.0.0.3", 0, to);
    int answered = 0, asked = 0, sent = 0;
    double t0 = su_now(), next_ask = t0;
    while (su_now() - t0 < 1.5) {
        double target = (su_now() - t0) * 5000.0;
        while (sent < target) {
            int fd = ports[sent % FLOOD_PORTS];
            if (fd >= 0 && send(fd, hello, hlen, MSG_DONTWAIT) < 0 && errno != EAGAIN)
                break;
            sent++;
        }
        if (su_now() >= next_ask) {
            next_ask += 0.0625; /* 24 requests over the flood */
            asked++;
            answered += dtls_binding(&good, 500);
        }
        su_sleep_ms(2);
    }
    su_sleep_ms(300);
    long rss1 = su_rss_kb(pid);
    fprintf(stderr, "ClientHello flood: %d sent; established session %d of %d answered; RSS %ld -> %ld kB\n", sent,
            answered, asked, rss0, rss1);
    CHECK(sent >= 7000);
    CHECK_EQ(answered, asked);
#if defined(__SANITIZE_ADDRESS__)
    fprintf(stderr, "RSS not checked under AddressSanitizer (its quarantine keeps freed memory)\n");
#else
    CHECK(rss1 - rss0 < 4096);
#endif
    for (int i = 0; i < FLOOD_PORTS; i++)
        if (ports[i] >= 0)
            close(ports[i]);

    /* one address completing cookie exchanges: at most 4 sessions */
    dtls_client many[8];
    int fds[8], made = 0;
    for (int i = 0; i < 8; i++) {
        fds[i] = udp_connected("127.0.0.4", 0, to);
        made += dtls_connect(&many[i], fds[i], 700) == 0;
    }
    fprintf(stderr, "one address, 8 handshakes, cap 4: %d sessions\n", made);
    CHECK_EQ(made, 4);
    CHECK(dtls_binding(&good, 1000)); /* the other address is untouched */
    for (int i = 0; i < 8; i++) {
        dtls_close(&many[i]);
        close(fds[i]);
    }

    /* starting over from the same address and port: a new session at once */
    dtls_close(&good);
    dtls_client again;
    double t1 = su_now();
    int ok = dtls_connect(&again, gfd, 3000) == 0 && dtls_binding(&again, 1000);
    fprintf(stderr, "new handshake from a known address: %s in %.2f s\n", ok ? "ok" : "failed", su_now() - t1);
    CHECK(ok);
    CHECK(su_now() - t1 < 1.5);
    dtls_close(&again);
    close(gfd);
    CHECK_EQ(su_stop(pid), 0);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s STUNKITD\n", argv[0]);
        return 2;
    }
    su_stunkitd = argv[1];
    unsigned long limit = su_raise_nofile();
    if (limit < FLOOD_PORTS + 100) {
        fprintf(stderr, "skip: descriptor limit %lu\n", limit);
        return 77;
    }
    client_ctx = SSL_CTX_new(DTLS_client_method());
    SSL_CTX_set_verify(client_ctx, SSL_VERIFY_NONE, NULL);
    if (!client_ctx || make_cert() != 0) {
        fprintf(stderr, "cannot make a test certificate\n");
        return 1;
    }
    RUN(test_dtls_attacks);
    unlink(cert_path);
    unlink(key_path);
    SSL_CTX_free(client_ctx);
    TEST_END();
}
