/*
 * driver.c - thin blocking socket drivers around stunkit_txn: Binding
 * transactions over UDP, TCP, TLS or DTLS (OpenSSL), IPv4 or IPv6, with
 * optional credentials (RFC 8489 9.1 short-term, 9.2 long-term: the 401
 * challenge is answered on the same socket or connection).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "stunkit/client.h"
#include "stunkit/integrity.h"

uint64_t stunkit_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- sockets ---- */

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
    int rv = poll(&p, 1, (int)(deadline - now));
    return rv > 0 ? 1 : rv;
}

/* ---- one connection, whatever the transport ---- */

typedef struct slink {
    stunkit_transport tr;
    int fd;
    SSL_CTX *ctx;
    SSL *ssl;
    uint8_t in[4096]; /* stream transports: bytes read, not yet framed */
    size_t have;
} slink;

/* A received answer, kept with its bytes (the stunkit_msg points into it). */
typedef struct answer {
    uint8_t buf[4096];
    stunkit_msg msg;
    uint32_t rtt_ms;
} answer;

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

/* TLS over the connected TCP socket, or DTLS over the connected UDP socket
 * (RFC 8489 6.2.3: version 1.2 or later). */
static int secure_connect(slink *l, const stunkit_addr *server, const char *name, uint64_t deadline)
{
    int dtls = l->tr == STUNKIT_DTLS;
    l->ctx = SSL_CTX_new(dtls ? DTLS_client_method() : TLS_client_method());
    if (!l->ctx)
        return STUNKIT_ERR_CRYPTO;
    SSL_CTX_set_min_proto_version(l->ctx, dtls ? DTLS1_2_VERSION : TLS1_2_VERSION);
    l->ssl = SSL_new(l->ctx);
    if (!l->ssl)
        return STUNKIT_ERR_CRYPTO;
    if (dtls) {
        BIO *bio = BIO_new_dgram(l->fd, BIO_NOCLOSE);
        if (!bio)
            return STUNKIT_ERR_CRYPTO;
        struct sockaddr_storage ss;
        stunkit_addr_to_sockaddr(server, &ss);
        BIO_ctrl(bio, BIO_CTRL_DGRAM_SET_CONNECTED, 0, &ss);
        SSL_set_bio(l->ssl, bio, bio);
    } else {
        SSL_set_fd(l->ssl, l->fd);
    }
    verify_server(l->ctx, l->ssl, name);
    for (;;) {
        int r = SSL_connect(l->ssl);
        if (r == 1)
            return 0;
        int e = SSL_get_error(l->ssl, r);
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
            return STUNKIT_ERR_CRYPTO;
        uint64_t until = deadline;
        struct timeval tv;
        if (dtls && DTLSv1_get_timeout(l->ssl, &tv) == 1) {
            uint64_t t = stunkit_now_ms() + (uint64_t)tv.tv_sec * 1000u + (uint64_t)tv.tv_usec / 1000u;
            if (t < until)
                until = t;
        }
        int ready = wait_fd(l->fd, e == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN, until);
        if (stunkit_now_ms() >= deadline)
            return STUNKIT_ERR_TIMEOUT;
        if (ready <= 0 && dtls)
            DTLSv1_handle_timeout(l->ssl); /* resend the flight */
    }
}

static int link_open(slink *l, const stunkit_addr *server, stunkit_transport tr, const stunkit_addr *local,
                     const char *tls_name, uint64_t deadline)
{
    memset(l, 0, sizeof(*l));
    l->tr = tr;
    l->fd = -1;
    int datagram = tr == STUNKIT_UDP || tr == STUNKIT_DTLS;
    int rv = open_connected(server, datagram ? SOCK_DGRAM : SOCK_STREAM, local, &l->fd);
    if (rv != 0)
        return rv;
    if (!datagram) {
        int err = 0, one = 1;
        socklen_t elen = sizeof(err);
        if (wait_fd(l->fd, POLLOUT, deadline) <= 0)
            return STUNKIT_ERR_TIMEOUT;
        if (getsockopt(l->fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0 || err) {
            errno = err;
            return STUNKIT_ERR_SYSCALL;
        }
        setsockopt(l->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    if (tr == STUNKIT_TLS || tr == STUNKIT_DTLS)
        return secure_connect(l, server, tls_name, deadline);
    return 0;
}

static void link_close(slink *l)
{
    if (l->ssl) {
        SSL_shutdown(l->ssl);
        SSL_free(l->ssl);
    }
    SSL_CTX_free(l->ctx);
    ERR_clear_error();
    if (l->fd >= 0)
        close(l->fd);
    l->fd = -1;
}

/* Sends a whole message; 0, or an error. */
static int link_send(slink *l, const uint8_t *p, size_t len, uint64_t deadline)
{
    if (l->tr == STUNKIT_UDP) {
        if (send(l->fd, p, len, 0) < 0 && errno != ECONNREFUSED)
            return STUNKIT_ERR_SYSCALL;
        return 0; /* ICMP errors are like loss: retransmission follows */
    }
    size_t off = 0;
    while (off < len) {
        ssize_t n = l->ssl ? SSL_write(l->ssl, p + off, (int)(len - off))
                           : send(l->fd, p + off, len - off, MSG_NOSIGNAL);
        if (n > 0) {
            off += (size_t)n;
            continue;
        }
        int e = l->ssl ? SSL_get_error(l->ssl, (int)n) : 0;
        short ev = l->ssl ? (e == SSL_ERROR_WANT_READ ? POLLIN : e == SSL_ERROR_WANT_WRITE ? POLLOUT : 0)
                          : (errno == EAGAIN ? POLLOUT : 0);
        if (!ev)
            return l->ssl ? STUNKIT_ERR_CRYPTO : STUNKIT_ERR_SYSCALL;
        if (wait_fd(l->fd, ev, deadline) <= 0)
            return STUNKIT_ERR_TIMEOUT;
    }
    return 0;
}

/* Receives one message into buf until `until`: >0 its length, 0 nothing yet
 * (time to retransmit), <0 an error. Stream transports frame by the STUN
 * length field (RFC 8489 6.2.2). */
static int link_recv(slink *l, uint8_t *buf, size_t cap, uint64_t until)
{
    int stream = l->tr == STUNKIT_TCP || l->tr == STUNKIT_TLS;
    for (;;) {
        if (stream) {
            size_t need;
            int rv = stunkit_msg_frame(l->in, l->have, &need);
            if (rv != 0 && rv != STUNKIT_ERR_TRUNCATED)
                return rv;
            if (rv == 0 && (need > sizeof(l->in) || need > cap))
                return STUNKIT_ERR_NOBUF;
            if (rv == 0 && l->have >= need) {
                memcpy(buf, l->in, need);
                memmove(l->in, l->in + need, l->have - need);
                l->have -= need;
                return (int)need;
            }
        }
        /* TLS may hold decrypted bytes that poll() cannot see */
        if (!(l->ssl && SSL_pending(l->ssl) > 0) && wait_fd(l->fd, POLLIN, until) <= 0)
            return 0;
        uint8_t *dst = stream ? l->in + l->have : buf;
        size_t room = stream ? sizeof(l->in) - l->have : cap;
        ssize_t n = l->ssl ? SSL_read(l->ssl, dst, (int)room) : recv(l->fd, dst, room, 0);
        if (n > 0) {
            if (!stream)
                return (int)n;
            l->have += (size_t)n;
            continue;
        }
        if (l->ssl) {
            int e = SSL_get_error(l->ssl, (int)n);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
                continue;
            return e == SSL_ERROR_ZERO_RETURN ? STUNKIT_ERR_UNEXPECTED : STUNKIT_ERR_CRYPTO;
        }
        if (n == 0 && stream)
            return STUNKIT_ERR_UNEXPECTED; /* closed */
        if (n < 0 && (errno == EAGAIN || errno == ECONNREFUSED))
            continue; /* UDP: ICMP errors surface here; keep waiting */
        if (n < 0)
            return STUNKIT_ERR_SYSCALL;
    }
}

/* One transaction: req (carrying tid) until an answer that is ours (and,
 * with a key, has valid integrity) or the deadline. Datagram transports
 * retransmit on the RFC 8489 schedule; streams send once. */
static int transact(slink *l, const uint8_t *req, size_t len, const uint8_t *tid, const uint8_t *key, size_t key_len,
                    uint64_t deadline, answer *a)
{
    stunkit_txn t;
    int reliable = l->tr == STUNKIT_TCP || l->tr == STUNKIT_TLS;
    stunkit_txn_start(&t, NULL, reliable, tid, stunkit_now_ms());
    t.key = key;
    t.key_len = key_len;
    for (;;) {
        uint64_t now = stunkit_now_ms();
        if (now >= deadline)
            return STUNKIT_ERR_TIMEOUT;
        stunkit_txn_action act = stunkit_txn_poll(&t, now);
        if (act == STUNKIT_TXN_TIMEOUT)
            return STUNKIT_ERR_TIMEOUT;
        if (act == STUNKIT_TXN_SEND) {
            int rv = link_send(l, req, len, deadline);
            if (rv != 0)
                return rv;
        }
        uint64_t until = stunkit_txn_next(&t) < deadline ? stunkit_txn_next(&t) : deadline;
        for (;;) {
            int n = link_recv(l, a->buf, sizeof(a->buf), until);
            if (n < 0)
                return n;
            if (n == 0)
                break;
            int rv = stunkit_txn_match(&t, a->buf, (size_t)n, &a->msg);
            if (rv == STUNKIT_ERR_INTEGRITY_ABSENT || rv == STUNKIT_ERR_INTEGRITY_MISMATCH) {
                /* an error answer to a signed request may come unsigned
                 * (a 401 or 438 never is signed): take it, unsigned */
                if (a->msg.klass == STUNKIT_CLASS_ERROR)
                    rv = 0;
            }
            if (rv != 0)
                continue;
            a->rtt_ms = (uint32_t)(stunkit_now_ms() - t.last_send_ms);
            return 0;
        }
    }
}

/* ---- requests with and without credentials ---- */

typedef struct auth_state {
    const stunkit_credentials *cred;
    uint8_t key[STUNKIT_KEY_MAX];
    size_t key_len;
    uint8_t realm[764], nonce[764];
    size_t realm_len, nonce_len;
    int offered_algs; /* the server sent PASSWORD-ALGORITHMS */
    uint8_t algs[64];
    size_t algs_len;
    int sha256;
} auth_state;

void stunkit_random_os(void *ctx, uint8_t *buf, size_t len)
{
    (void)ctx;
    while (len) {
        ssize_t n = getrandom(buf, len, 0);
        if (n <= 0) {
            if (n < 0 && errno == EINTR)
                continue;
            abort(); /* no randomness: never send predictable transaction IDs */
        }
        buf += n;
        len -= (size_t)n;
    }
}

static int build_request(auth_state *st, uint8_t *buf, size_t cap, uint8_t tid[STUNKIT_TID_LEN])
{
    stunkit_writer w;
    stunkit_random_os(NULL, tid, STUNKIT_TID_LEN);
    stunkit_writer_init(&w, buf, cap, STUNKIT_METHOD_BINDING, STUNKIT_CLASS_REQUEST, tid);
    const stunkit_credentials *c = st->cred;
    if (c && c->short_term) {
        /* RFC 8489 9.1.2: USERNAME and MESSAGE-INTEGRITY with the password */
        stunkit_put(&w, STUNKIT_ATTR_USERNAME, c->username, strlen(c->username));
        stunkit_put_integrity(&w, st->key, st->key_len);
    } else if (c && st->nonce_len) {
        /* RFC 8489 9.2.3: USERNAME, REALM, NONCE; PASSWORD-ALGORITHMS as
         * offered with the chosen PASSWORD-ALGORITHM; MESSAGE-INTEGRITY-
         * SHA256 when SHA-256 was chosen */
        stunkit_put(&w, STUNKIT_ATTR_USERNAME, c->username, strlen(c->username));
        stunkit_put(&w, STUNKIT_ATTR_REALM, st->realm, st->realm_len);
        stunkit_put(&w, STUNKIT_ATTR_NONCE, st->nonce, st->nonce_len);
        if (st->offered_algs) {
            stunkit_put(&w, STUNKIT_ATTR_PASSWORD_ALGORITHMS, st->algs, st->algs_len);
            stunkit_put_password_algorithm(&w, st->sha256 ? STUNKIT_PWALG_SHA256 : STUNKIT_PWALG_MD5);
        }
        if (st->sha256)
            stunkit_put_integrity_sha256(&w, st->key, st->key_len, 0);
        else
            stunkit_put_integrity(&w, st->key, st->key_len);
    }
    stunkit_put_fingerprint(&w);
    return stunkit_writer_finish(&w);
}

/* A 401 or 438 with REALM and NONCE: take them and derive the key
 * (SHA-256 when the server offers it, else MD5). 0, or not a challenge. */
static int take_challenge(auth_state *st, const stunkit_msg *m)
{
    stunkit_attr realm, nonce, algs;
    if (!st->cred || st->cred->short_term || stunkit_msg_find(m, STUNKIT_ATTR_REALM, &realm) != 0 ||
        stunkit_msg_find(m, STUNKIT_ATTR_NONCE, &nonce) != 0 || realm.len > sizeof(st->realm) ||
        nonce.len > sizeof(st->nonce))
        return -1;
    memcpy(st->realm, realm.value, realm.len);
    st->realm_len = realm.len;
    memcpy(st->nonce, nonce.value, nonce.len);
    st->nonce_len = nonce.len;
    st->offered_algs = 0;
    st->sha256 = 0;
    if (stunkit_msg_find(m, STUNKIT_ATTR_PASSWORD_ALGORITHMS, &algs) == 0 && algs.len <= sizeof(st->algs)) {
        st->offered_algs = 1;
        memcpy(st->algs, algs.value, algs.len);
        st->algs_len = algs.len;
        uint16_t alg;
        for (size_t i = 0; stunkit_attr_password_algorithm(&algs, i, &alg, NULL, NULL) == 0; i++)
            if (alg == STUNKIT_PWALG_SHA256)
                st->sha256 = 1;
    }
    const char *u = st->cred->username, *p = st->cred->password;
    int n = stunkit_key_long_term(st->sha256 ? STUNKIT_PWALG_SHA256 : STUNKIT_PWALG_MD5, u, strlen(u),
                                  (const char *)st->realm, st->realm_len, p, strlen(p), st->key, sizeof(st->key));
    if (n < 0)
        return -1;
    st->key_len = (size_t)n;
    return 0;
}

static int error_code_of(const stunkit_msg *m)
{
    stunkit_attr a;
    int code = 0;
    if (stunkit_msg_find(m, STUNKIT_ATTR_ERROR_CODE, &a) == 0)
        stunkit_attr_error_code(&a, &code, NULL, NULL);
    return code;
}

int stunkit_binding_auth(const stunkit_addr *server, stunkit_transport tr, const stunkit_addr *local,
                         const char *tls_name, uint32_t timeout_ms, const stunkit_credentials *cred,
                         stunkit_binding_result *res)
{
    stunkit_rto rto;
    stunkit_rto_default(&rto);
    memset(res, 0, sizeof(*res));
    uint64_t deadline = stunkit_now_ms() + (timeout_ms ? timeout_ms : rto.tcp_timeout_ms);
    auth_state *st = calloc(1, sizeof(*st));
    answer *a = calloc(1, sizeof(*a));
    slink *l = calloc(1, sizeof(*l));
    int rv = STUNKIT_ERR_NOMEM;
    if (l)
        l->fd = -1;
    if (!st || !a || !l)
        goto out;
    st->cred = cred && cred->username && cred->password ? cred : NULL;
    if (st->cred && st->cred->short_term) {
        int n = stunkit_key_short_term(cred->password, strlen(cred->password), st->key, sizeof(st->key));
        if (n < 0) {
            rv = n;
            goto out;
        }
        st->key_len = (size_t)n;
    }
    rv = link_open(l, server, tr, local, tls_name, deadline);
    if (rv == 0)
        local_of(l->fd, &res->local);
    res->server = *server;
    /* at most: a plain (or short-term) request, the signed one after the
     * 401, and one more after a 438 Stale Nonce */
    for (int attempt = 0; rv == 0 && attempt < 3; attempt++) {
        uint8_t req[2048], tid[STUNKIT_TID_LEN];
        int len = build_request(st, req, sizeof(req), tid);
        if (len < 0) {
            rv = len;
            break;
        }
        rv = transact(l, req, (size_t)len, tid, st->key_len ? st->key : NULL, st->key_len, deadline, a);
        if (rv != 0)
            break;
        res->rtt_ms = a->rtt_ms;
        if (a->msg.klass == STUNKIT_CLASS_SUCCESS) {
            stunkit_attr at;
            stunkit_msg_mapped(&a->msg, &res->mapped);
            if ((stunkit_msg_find(&a->msg, STUNKIT_ATTR_OTHER_ADDRESS, &at) == 0 ||
                 stunkit_msg_find(&a->msg, STUNKIT_ATTR_CHANGED_ADDRESS, &at) == 0) &&
                stunkit_attr_addr(&a->msg, &at, &res->other) != 0)
                memset(&res->other, 0, sizeof(res->other));
            rv = res->mapped.family ? 0 : STUNKIT_ERR_NOT_FOUND;
            break;
        }
        res->error_code = error_code_of(&a->msg);
        rv = STUNKIT_ERR_UNEXPECTED;
        int code = res->error_code;
        if ((code == 401 && attempt == 0) || code == 438) {
            if (take_challenge(st, &a->msg) == 0)
                rv = 0; /* answer the challenge */
        }
    }
out:
    if (l)
        link_close(l);
    if (st)
        OPENSSL_cleanse(st, sizeof(*st));
    free(st);
    free(a);
    free(l);
    return rv;
}

int stunkit_binding(const stunkit_addr *server, stunkit_transport tr, const stunkit_addr *local, const char *tls_name,
                    uint32_t timeout_ms, stunkit_binding_result *res)
{
    return stunkit_binding_auth(server, tr, local, tls_name, timeout_ms, NULL, res);
}
