/*
 * driver.c - thin blocking socket drivers around stunkit_txn: one Binding
 * transaction over UDP, TCP or TLS (OpenSSL), IPv4 or IPv6.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "stunkit/client.h"

uint64_t stunkit_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void fill_result(const stunkit_msg *m, stunkit_binding_result *res)
{
    stunkit_attr a;
    stunkit_msg_mapped(m, &res->mapped);
    memset(&res->other, 0, sizeof(res->other));
    if ((stunkit_msg_find(m, STUNKIT_ATTR_OTHER_ADDRESS, &a) == 0 ||
         stunkit_msg_find(m, STUNKIT_ATTR_CHANGED_ADDRESS, &a) == 0) &&
        stunkit_attr_addr(m, &a, &res->other) != 0)
        memset(&res->other, 0, sizeof(res->other));
}

/* A success with a mapped address is the answer; an error response ends the
 * transaction too (there is nothing to retry). */
static int judge(const stunkit_msg *m, stunkit_binding_result *res)
{
    if (m->klass == STUNKIT_CLASS_ERROR)
        return STUNKIT_ERR_UNEXPECTED;
    fill_result(m, res);
    return res->mapped.family ? 0 : STUNKIT_ERR_NOT_FOUND;
}

static int open_connected(const stunkit_addr *server, int type, const stunkit_addr *local, int *out_fd)
{
    struct sockaddr_storage ss, ls;
    int slen = stunkit_addr_to_sockaddr(server, &ss);
    if (slen < 0)
        return slen;
    int fd = socket(ss.ss_family, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return STUNKIT_ERR_SYSCALL;
    if (local) {
        int llen = stunkit_addr_to_sockaddr(local, &ls);
        if (llen < 0 || ls.ss_family != ss.ss_family) {
            close(fd);
            return STUNKIT_ERR_BAD_FAMILY;
        }
        if (bind(fd, (struct sockaddr *)&ls, (socklen_t)llen) != 0) {
            int e = errno;
            close(fd);
            errno = e;
            return STUNKIT_ERR_SYSCALL;
        }
    }
    if (connect(fd, (struct sockaddr *)&ss, (socklen_t)slen) != 0 && errno != EINPROGRESS) {
        int e = errno;
        close(fd);
        errno = e;
        return STUNKIT_ERR_SYSCALL;
    }
    *out_fd = fd;
    return 0;
}

static void local_of(int fd, stunkit_addr *a)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0)
        stunkit_addr_from_sockaddr(a, (struct sockaddr *)&ss);
}

static int wait_fd(int fd, short events, uint64_t deadline)
{
    uint64_t now = stunkit_now_ms();
    if (now >= deadline)
        return 0;
    struct pollfd p = {fd, events, 0};
    int ms = (int)(deadline - now);
    int rv = poll(&p, 1, ms);
    return rv > 0 ? 1 : rv;
}

static int binding_udp(int fd, const stunkit_rto *rto, uint64_t deadline, stunkit_binding_result *res)
{
    uint8_t req[20], buf[2048], tid[12];
    stunkit_txn t;
    stunkit_writer w;
    if (getrandom(tid, sizeof(tid), 0) != (ssize_t)sizeof(tid))
        return STUNKIT_ERR_SYSCALL;
    stunkit_writer_init(&w, req, sizeof(req), STUNKIT_METHOD_BINDING, STUNKIT_CLASS_REQUEST, tid);
    stunkit_txn_start(&t, rto, 0, tid, stunkit_now_ms());
    for (;;) {
        uint64_t now = stunkit_now_ms();
        if (now >= deadline)
            return STUNKIT_ERR_TIMEOUT;
        stunkit_txn_action act = stunkit_txn_poll(&t, now);
        if (act == STUNKIT_TXN_TIMEOUT)
            return STUNKIT_ERR_TIMEOUT;
        if (act == STUNKIT_TXN_SEND && send(fd, req, sizeof(req), 0) < 0 && errno != ECONNREFUSED)
            return STUNKIT_ERR_SYSCALL;
        uint64_t until = stunkit_txn_next(&t) < deadline ? stunkit_txn_next(&t) : deadline;
        while (wait_fd(fd, POLLIN, until) > 0) {
            ssize_t n = recv(fd, buf, sizeof(buf), 0);
            if (n < 0)
                break; /* ICMP errors surface here: keep retransmitting */
            stunkit_msg m;
            if (stunkit_txn_match(&t, buf, (size_t)n, &m) != 0)
                continue;
            res->rtt_ms = (uint32_t)(stunkit_now_ms() - t.last_send_ms);
            return judge(&m, res);
        }
    }
}

/* One request and its answer over a stream (TCP, or TLS when ssl is set),
 * framed by the STUN length field. */
static int stream_exchange(int fd, SSL *ssl, uint64_t deadline, stunkit_binding_result *res)
{
    uint8_t req[20], buf[4096], tid[12];
    stunkit_writer w;
    stunkit_txn t;
    if (getrandom(tid, sizeof(tid), 0) != (ssize_t)sizeof(tid))
        return STUNKIT_ERR_SYSCALL;
    stunkit_writer_init(&w, req, sizeof(req), STUNKIT_METHOD_BINDING, STUNKIT_CLASS_REQUEST, tid);
    stunkit_txn_start(&t, NULL, 1, tid, stunkit_now_ms());
    stunkit_txn_poll(&t, stunkit_now_ms());
    size_t off = 0;
    while (off < sizeof(req)) {
        ssize_t n = ssl ? SSL_write(ssl, req + off, (int)(sizeof(req) - off)) : send(fd, req + off, sizeof(req) - off, MSG_NOSIGNAL);
        if (n > 0) {
            off += (size_t)n;
            continue;
        }
        if (ssl && SSL_get_error(ssl, (int)n) == SSL_ERROR_WANT_READ) {
            if (wait_fd(fd, POLLIN, deadline) <= 0)
                return STUNKIT_ERR_TIMEOUT;
        } else if ((ssl && SSL_get_error(ssl, (int)n) == SSL_ERROR_WANT_WRITE) || (!ssl && errno == EAGAIN)) {
            if (wait_fd(fd, POLLOUT, deadline) <= 0)
                return STUNKIT_ERR_TIMEOUT;
        } else {
            return STUNKIT_ERR_SYSCALL;
        }
    }
    t.last_send_ms = stunkit_now_ms();
    size_t have = 0;
    for (;;) {
        size_t need;
        int rv = stunkit_msg_frame(buf, have, &need);
        if (rv != 0 && rv != STUNKIT_ERR_TRUNCATED)
            return rv;
        if (rv == 0 && need > sizeof(buf))
            return STUNKIT_ERR_NOBUF;
        if (rv == 0 && have >= need) {
            stunkit_msg m;
            if (stunkit_txn_match(&t, buf, need, &m) == 0) {
                res->rtt_ms = (uint32_t)(stunkit_now_ms() - t.last_send_ms);
                return judge(&m, res);
            }
            memmove(buf, buf + need, have - need);
            have -= need;
            continue;
        }
        ssize_t n = ssl ? SSL_read(ssl, buf + have, (int)(sizeof(buf) - have)) : recv(fd, buf + have, sizeof(buf) - have, 0);
        if (n > 0) {
            have += (size_t)n;
            continue;
        }
        if (n == 0)
            return STUNKIT_ERR_UNEXPECTED; /* closed */
        int want = ssl ? SSL_get_error(ssl, (int)n) : 0;
        if ((ssl && want == SSL_ERROR_WANT_READ) || (!ssl && errno == EAGAIN)) {
            if (wait_fd(fd, POLLIN, deadline) <= 0)
                return STUNKIT_ERR_TIMEOUT;
        } else if (ssl && want == SSL_ERROR_WANT_WRITE) {
            if (wait_fd(fd, POLLOUT, deadline) <= 0)
                return STUNKIT_ERR_TIMEOUT;
        } else {
            return ssl ? STUNKIT_ERR_CRYPTO : STUNKIT_ERR_SYSCALL;
        }
    }
}

/* Certificate checking against the system's CAs and the server's name (and
 * SNI); none when name is NULL (--insecure). */
static void verify_server(SSL_CTX *ctx, SSL *ssl, const char *name)
{
    if (!name)
        return;
    SSL_CTX_set_default_verify_paths(ctx);
    SSL_set_verify(ssl, SSL_VERIFY_PEER, NULL);
    SSL_set1_host(ssl, name);
    SSL_set_tlsext_host_name(ssl, name);
}

static int binding_tls(int fd, const char *tls_name, uint64_t deadline, stunkit_binding_result *res)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx)
        return STUNKIT_ERR_CRYPTO;
    /* RFC 8489 6.2.3: TLS 1.2 or later. */
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL *ssl = SSL_new(ctx);
    int rv = STUNKIT_ERR_CRYPTO;
    if (!ssl)
        goto out;
    verify_server(ctx, ssl, tls_name);
    SSL_set_fd(ssl, fd);
    for (;;) {
        int r = SSL_connect(ssl);
        if (r == 1)
            break;
        int e = SSL_get_error(ssl, r);
        short ev = e == SSL_ERROR_WANT_READ ? POLLIN : e == SSL_ERROR_WANT_WRITE ? POLLOUT : 0;
        if (!ev) {
            rv = STUNKIT_ERR_CRYPTO;
            goto out;
        }
        if (wait_fd(fd, ev, deadline) <= 0) {
            rv = STUNKIT_ERR_TIMEOUT;
            goto out;
        }
    }
    rv = stream_exchange(fd, ssl, deadline, res);
    SSL_shutdown(ssl);
out:
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    return rv;
}

/* DTLS: a connected UDP socket under OpenSSL's datagram BIO; the handshake
 * and then the request, resent on the RFC 8489 schedule (DTLS does not
 * retransmit application data). */
static int binding_dtls(int fd, const stunkit_addr *server, const char *tls_name, uint64_t deadline,
                        stunkit_binding_result *res)
{
    SSL_CTX *ctx = SSL_CTX_new(DTLS_client_method());
    if (!ctx)
        return STUNKIT_ERR_CRYPTO;
    SSL_CTX_set_min_proto_version(ctx, DTLS1_2_VERSION);
    SSL *ssl = SSL_new(ctx);
    BIO *bio = BIO_new_dgram(fd, BIO_NOCLOSE);
    int rv = STUNKIT_ERR_CRYPTO;
    if (!ssl || !bio) {
        BIO_free(bio);
        goto out;
    }
    struct sockaddr_storage ss;
    stunkit_addr_to_sockaddr(server, &ss);
    BIO_ctrl(bio, BIO_CTRL_DGRAM_SET_CONNECTED, 0, &ss);
    SSL_set_bio(ssl, bio, bio);
    verify_server(ctx, ssl, tls_name);
    for (;;) {
        int r = SSL_connect(ssl);
        if (r == 1)
            break;
        int e = SSL_get_error(ssl, r);
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
            goto out;
        struct timeval tv;
        uint64_t until = deadline;
        if (DTLSv1_get_timeout(ssl, &tv) == 1) {
            uint64_t t = stunkit_now_ms() + (uint64_t)tv.tv_sec * 1000u + (uint64_t)tv.tv_usec / 1000u;
            if (t < until)
                until = t;
        }
        int ready = wait_fd(fd, POLLIN, until);
        if (stunkit_now_ms() >= deadline) {
            rv = STUNKIT_ERR_TIMEOUT;
            goto out;
        }
        if (ready <= 0)
            DTLSv1_handle_timeout(ssl); /* resend the flight */
    }
    uint8_t req[20], buf[2048], tid[12];
    stunkit_writer w;
    stunkit_txn t;
    if (getrandom(tid, sizeof(tid), 0) != (ssize_t)sizeof(tid)) {
        rv = STUNKIT_ERR_SYSCALL;
        goto out;
    }
    stunkit_writer_init(&w, req, sizeof(req), STUNKIT_METHOD_BINDING, STUNKIT_CLASS_REQUEST, tid);
    stunkit_txn_start(&t, NULL, 0, tid, stunkit_now_ms());
    for (;;) {
        uint64_t now = stunkit_now_ms();
        stunkit_txn_action act = stunkit_txn_poll(&t, now);
        if (act == STUNKIT_TXN_TIMEOUT || now >= deadline) {
            rv = STUNKIT_ERR_TIMEOUT;
            goto out;
        }
        if (act == STUNKIT_TXN_SEND && SSL_write(ssl, req, sizeof(req)) <= 0) {
            rv = STUNKIT_ERR_CRYPTO;
            goto out;
        }
        uint64_t until = stunkit_txn_next(&t) < deadline ? stunkit_txn_next(&t) : deadline;
        while (wait_fd(fd, POLLIN, until) > 0) {
            int n = SSL_read(ssl, buf, sizeof(buf));
            if (n <= 0) {
                int e = SSL_get_error(ssl, n);
                if (e == SSL_ERROR_WANT_READ)
                    continue;
                rv = STUNKIT_ERR_CRYPTO;
                goto out;
            }
            stunkit_msg m;
            if (stunkit_txn_match(&t, buf, (size_t)n, &m) != 0)
                continue;
            res->rtt_ms = (uint32_t)(stunkit_now_ms() - t.last_send_ms);
            rv = judge(&m, res);
            SSL_shutdown(ssl);
            goto out;
        }
    }
out:
    ERR_clear_error();
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    return rv;
}

int stunkit_binding(const stunkit_addr *server, stunkit_transport tr, const stunkit_addr *local, const char *tls_name,
                    uint32_t timeout_ms, stunkit_binding_result *res)
{
    stunkit_rto rto;
    stunkit_rto_default(&rto);
    memset(res, 0, sizeof(*res));
    uint64_t deadline = stunkit_now_ms() + (timeout_ms ? timeout_ms : rto.tcp_timeout_ms);
    int datagram = tr == STUNKIT_UDP || tr == STUNKIT_DTLS;
    int fd, rv = open_connected(server, datagram ? SOCK_DGRAM : SOCK_STREAM, local, &fd);
    if (rv != 0)
        return rv;
    if (!datagram) {
        /* wait for the connection */
        int err = 0;
        socklen_t elen = sizeof(err);
        if (wait_fd(fd, POLLOUT, deadline) <= 0) {
            close(fd);
            return STUNKIT_ERR_TIMEOUT;
        }
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0 || err) {
            close(fd);
            errno = err;
            return STUNKIT_ERR_SYSCALL;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    local_of(fd, &res->local);
    res->server = *server;
    if (tr == STUNKIT_UDP)
        rv = binding_udp(fd, &rto, deadline, res);
    else if (tr == STUNKIT_TCP)
        rv = stream_exchange(fd, NULL, deadline, res);
    else if (tr == STUNKIT_DTLS)
        rv = binding_dtls(fd, server, tls_name, deadline, res);
    else
        rv = binding_tls(fd, tls_name, deadline, res);
    close(fd);
    return rv;
}
