/*
 * link.c - one connection to a server, whatever the transport: UDP, TCP,
 * TLS over TCP, DTLS over UDP (OpenSSL; RFC 8489 6.2.3: TLS 1.2 or later,
 * DTLS 1.2 or later). See stunkit/link.h.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "stunkit/client.h"
#include "config_take.h"
#include "stunkit/link.h"
#include "stunkit/turn.h"

struct stunkit_link {
    stunkit_transport tr;
    int fd;
    int unreachable;
    SSL_CTX *ctx;
    SSL *ssl;
    stunkit_addr local;
    size_t have;          /* stream transports: bytes read, not yet framed */
    uint8_t in[65536 + 24]; /* the largest STUN message or padded ChannelData */
};

static int stream(const stunkit_link *l)
{
    return l->tr == STUNKIT_TCP || l->tr == STUNKIT_TLS;
}

__attribute__((format(printf, 2, 3))) static void why(const stunkit_link_config *cfg, const char *fmt, ...)
{
    if (!cfg->error_text || !cfg->error_text_cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cfg->error_text, cfg->error_text_cap, fmt, ap);
    va_end(ap);
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

static int open_socket(stunkit_link *l, const stunkit_addr *server, const stunkit_link_config *cfg,
                       uint64_t deadline)
{
    struct sockaddr_storage ss, ls;
    int slen = stunkit_addr_to_sockaddr(server, &ss);
    if (slen < 0)
        return slen;
    l->fd = socket(ss.ss_family, (stream(l) ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (l->fd < 0) {
        why(cfg, "cannot open a socket: %s", strerror(errno));
        return STUNKIT_ERR_SYSCALL;
    }
    if (cfg->local) {
        int llen = stunkit_addr_to_sockaddr(cfg->local, &ls);
        if (llen < 0 || ls.ss_family != ss.ss_family) {
            why(cfg, "the local address is not of the server's family");
            return STUNKIT_ERR_BAD_FAMILY;
        }
        if (bind(l->fd, (struct sockaddr *)&ls, (socklen_t)llen) != 0) {
            why(cfg, "cannot bind the local address: %s", strerror(errno));
            return STUNKIT_ERR_SYSCALL;
        }
    }
    if (connect(l->fd, (struct sockaddr *)&ss, (socklen_t)slen) != 0 && errno != EINPROGRESS) {
        why(cfg, "cannot connect: %s", strerror(errno));
        return STUNKIT_ERR_SYSCALL;
    }
    if (stream(l)) {
        int err = 0, one = 1;
        socklen_t elen = sizeof(err);
        if (wait_fd(l->fd, POLLOUT, deadline) <= 0) {
            why(cfg, "no TCP connection within the time allowed");
            return STUNKIT_ERR_TIMEOUT;
        }
        if (getsockopt(l->fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0 || err) {
            errno = err;
            why(cfg, "cannot connect: %s", strerror(err));
            return STUNKIT_ERR_SYSCALL;
        }
        setsockopt(l->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    struct sockaddr_storage mine;
    socklen_t mlen = sizeof(mine);
    if (getsockname(l->fd, (struct sockaddr *)&mine, &mlen) == 0)
        stunkit_addr_from_sockaddr(&l->local, (struct sockaddr *)&mine);
    return 0;
}

/* The certificate must chain to a trusted CA and name the server: a DNS
 * name (also sent as SNI) or an IP address (RFC 6066 3: never as SNI). */
static int verify_setup(stunkit_link *l, const stunkit_link_config *cfg)
{
    if (cfg->tls_insecure)
        return 0;
    if (cfg->ca_file ? SSL_CTX_load_verify_locations(l->ctx, cfg->ca_file, NULL) != 1
                     : SSL_CTX_set_default_verify_paths(l->ctx) != 1) {
        why(cfg, "cannot load trusted certificates%s%s", cfg->ca_file ? " from " : "",
            cfg->ca_file ? cfg->ca_file : "");
        return STUNKIT_ERR_CRYPTO;
    }
    SSL_set_verify(l->ssl, SSL_VERIFY_PEER, NULL);
    unsigned char ip[16];
    if (inet_pton(AF_INET, cfg->tls_name, ip) == 1 || inet_pton(AF_INET6, cfg->tls_name, ip) == 1) {
        if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(l->ssl), cfg->tls_name) != 1)
            return STUNKIT_ERR_CRYPTO;
    } else if (SSL_set1_host(l->ssl, cfg->tls_name) != 1 || SSL_set_tlsext_host_name(l->ssl, cfg->tls_name) != 1) {
        why(cfg, "'%s' cannot be checked as a certificate name", cfg->tls_name);
        return STUNKIT_ERR_INVAL;
    }
    return 0;
}

/* Why a handshake failed, in words: the certificate check's own reason,
 * else OpenSSL's last error, else the socket's. */
static int handshake_error(stunkit_link *l, const stunkit_link_config *cfg, int ssl_error)
{
    long vr = SSL_get_verify_result(l->ssl);
    unsigned long e = ERR_peek_last_error();
    if (vr != X509_V_OK) {
        why(cfg, "the server's certificate was not accepted: %s", X509_verify_cert_error_string(vr));
        return STUNKIT_ERR_TLS_VERIFY;
    }
    if (e) {
        char buf[200];
        ERR_error_string_n(e, buf, sizeof(buf));
        why(cfg, "%s handshake failed: %s", l->tr == STUNKIT_DTLS ? "DTLS" : "TLS", buf);
    } else if (ssl_error == SSL_ERROR_SYSCALL && errno) {
        why(cfg, "%s handshake failed: %s", l->tr == STUNKIT_DTLS ? "DTLS" : "TLS", strerror(errno));
        return STUNKIT_ERR_SYSCALL;
    } else {
        why(cfg, "%s handshake failed: the server closed the connection", l->tr == STUNKIT_DTLS ? "DTLS" : "TLS");
    }
    return STUNKIT_ERR_CRYPTO;
}

static int secure_connect(stunkit_link *l, const stunkit_addr *server, const stunkit_link_config *cfg,
                          uint64_t deadline)
{
    int dtls = l->tr == STUNKIT_DTLS;
    ERR_clear_error();
    l->ctx = SSL_CTX_new(dtls ? DTLS_client_method() : TLS_client_method());
    if (!l->ctx || !SSL_CTX_set_min_proto_version(l->ctx, dtls ? DTLS1_2_VERSION : TLS1_2_VERSION) ||
        !(l->ssl = SSL_new(l->ctx))) {
        why(cfg, "cannot set up OpenSSL");
        return STUNKIT_ERR_CRYPTO;
    }
    /* RFC 7443: the usage, named by ALPN (a proxy in front of the server
     * may route by it: TURN and STUN beside the web on port 443) */
    const char *alpn = cfg->alpn ? cfg->alpn : "stun.nat-discovery";
    size_t alen = strlen(alpn);
    unsigned char wire[64];
    if (alen && alen < sizeof(wire)) {
        wire[0] = (unsigned char)alen;
        memcpy(wire + 1, alpn, alen);
        if (SSL_set_alpn_protos(l->ssl, wire, (unsigned)(alen + 1)) != 0) {
            why(cfg, "cannot offer ALPN '%s'", alpn);
            return STUNKIT_ERR_CRYPTO;
        }
    }
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
    int rv = verify_setup(l, cfg);
    if (rv != 0)
        return rv;
    for (;;) {
        errno = 0;
        int r = SSL_connect(l->ssl);
        if (r == 1)
            return 0;
        int e = SSL_get_error(l->ssl, r);
        if (dtls && e == SSL_ERROR_SYSCALL && errno == ECONNREFUSED) {
            l->unreachable = 1; /* ICMP port unreachable: nothing listens there */
            why(cfg, "DTLS handshake failed: %s", strerror(errno));
            return STUNKIT_ERR_SYSCALL;
        }
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
            return handshake_error(l, cfg, e);
        uint64_t until = deadline;
        struct timeval tv;
        if (dtls && DTLSv1_get_timeout(l->ssl, &tv) == 1) {
            uint64_t t = stunkit_now_ms() + (uint64_t)tv.tv_sec * 1000u + (uint64_t)tv.tv_usec / 1000u;
            if (t < until)
                until = t;
        }
        int ready = wait_fd(l->fd, e == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN, until);
        if (stunkit_now_ms() >= deadline) {
            why(cfg, "no %s handshake within the time allowed", dtls ? "DTLS" : "TLS");
            return STUNKIT_ERR_TIMEOUT;
        }
        if (ready <= 0 && dtls)
            DTLSv1_handle_timeout(l->ssl); /* resend the flight */
    }
}

/* The first published stunkit_link_config ended with error_text_cap. */
#define LINK_CONFIG_V1 (offsetof(stunkit_link_config, error_text_cap) + sizeof(size_t))

int stunkit_link_open(stunkit_link **out, const stunkit_addr *server, const stunkit_link_config *cfg_in)
{
    *out = NULL;
    stunkit_link_config taken, *cfg = &taken;
    if (!cfg_in || sk_config_take(&taken, sizeof(taken), cfg_in, LINK_CONFIG_V1) != 0) {
        if (cfg_in && cfg_in->size >= LINK_CONFIG_V1)
            why(cfg_in, "bad link settings (a field this library does not know)");
        return STUNKIT_ERR_INVAL;
    }
    int secure = cfg->transport == STUNKIT_TLS || cfg->transport == STUNKIT_DTLS;
    if ((unsigned)cfg->transport > STUNKIT_DTLS) {
        why(cfg, "bad link settings");
        return STUNKIT_ERR_INVAL;
    }
    if (secure && !cfg->tls_insecure && (!cfg->tls_name || !cfg->tls_name[0])) {
        why(cfg, "no name to check the server's certificate against (give one, or choose not to check)");
        return STUNKIT_ERR_INVAL;
    }
    stunkit_link *l = calloc(1, sizeof(*l));
    if (!l) {
        why(cfg, "out of memory");
        return STUNKIT_ERR_NOMEM;
    }
    l->tr = cfg->transport;
    l->fd = -1;
    uint64_t deadline = stunkit_now_ms() + (cfg->timeout_ms ? cfg->timeout_ms : 10000u);
    int rv = open_socket(l, server, cfg, deadline);
    if (rv == 0 && secure)
        rv = secure_connect(l, server, cfg, deadline);
    if (rv != 0) {
        int e = errno;
        stunkit_link_close(l);
        errno = e;
        return rv;
    }
    *out = l;
    return 0;
}

void stunkit_link_close(stunkit_link *l)
{
    if (!l)
        return;
    if (l->ssl) {
        if (SSL_is_init_finished(l->ssl))
            SSL_shutdown(l->ssl);
        SSL_free(l->ssl);
    }
    SSL_CTX_free(l->ctx);
    ERR_clear_error();
    if (l->fd >= 0)
        close(l->fd);
    free(l);
}

int stunkit_link_fd(const stunkit_link *l)
{
    return l->fd;
}

stunkit_addr stunkit_link_local(const stunkit_link *l)
{
    return l->local;
}

stunkit_transport stunkit_link_transport(const stunkit_link *l)
{
    return l->tr;
}

int stunkit_link_unreachable(const stunkit_link *l)
{
    return l->unreachable;
}

int stunkit_link_send(stunkit_link *l, const uint8_t *p, size_t len, uint32_t timeout_ms)
{
    uint64_t deadline = stunkit_now_ms() + timeout_ms;
    if (l->tr == STUNKIT_UDP) {
        if (send(l->fd, p, len, 0) < 0) {
            if (errno == ECONNREFUSED) {
                l->unreachable = 1;
                return 0; /* like loss: the machine's retransmission follows */
            }
            return errno == EAGAIN || errno == ENOBUFS ? 0 : STUNKIT_ERR_SYSCALL;
        }
        return 0;
    }
    size_t off = 0;
    while (off < len) {
        errno = 0;
        ssize_t n = l->ssl ? SSL_write(l->ssl, p + off, (int)(len - off))
                           : send(l->fd, p + off, len - off, MSG_NOSIGNAL);
        if (n > 0) {
            off += (size_t)n;
            continue;
        }
        short ev = 0;
        if (l->ssl) {
            int e = SSL_get_error(l->ssl, (int)n);
            ev = e == SSL_ERROR_WANT_READ ? POLLIN : e == SSL_ERROR_WANT_WRITE ? POLLOUT : 0;
            if (!ev && l->tr == STUNKIT_DTLS && errno == ECONNREFUSED) {
                l->unreachable = 1;
                ERR_clear_error();
                return 0;
            }
            if (!ev)
                return errno == EPIPE || errno == ECONNRESET || e == SSL_ERROR_ZERO_RETURN ? STUNKIT_ERR_CLOSED
                                                                                           : STUNKIT_ERR_CRYPTO;
        } else if (errno == EAGAIN) {
            ev = POLLOUT;
        } else {
            return errno == EPIPE || errno == ECONNRESET ? STUNKIT_ERR_CLOSED : STUNKIT_ERR_SYSCALL;
        }
        if (wait_fd(l->fd, ev, deadline) <= 0)
            return STUNKIT_ERR_TIMEOUT;
    }
    return 0;
}

int stunkit_link_recv(stunkit_link *l, uint8_t *buf, size_t cap, uint32_t wait_ms)
{
    uint64_t until = stunkit_now_ms() + wait_ms;
    for (;;) {
        if (stream(l)) {
            size_t need;
            int rv = stunkit_turn_frame(l->in, l->have, &need);
            if (rv != 0 && rv != STUNKIT_ERR_TRUNCATED)
                return STUNKIT_ERR_NOT_STUN;
            if (rv == 0 && need > cap)
                return STUNKIT_ERR_NOBUF;
            if (rv == 0 && l->have >= need) {
                memcpy(buf, l->in, need);
                memmove(l->in, l->in + need, l->have - need);
                l->have -= need;
                return (int)need;
            }
        }
        /* TLS may hold decrypted bytes that poll() cannot see */
        if (!(l->ssl && SSL_pending(l->ssl) > 0)) {
            uint64_t now = stunkit_now_ms();
            struct pollfd p = {l->fd, POLLIN, 0};
            int ready = poll(&p, 1, now >= until ? 0 : (int)(until - now));
            if (ready <= 0)
                return 0;
        }
        uint8_t *dst = stream(l) ? l->in + l->have : buf;
        size_t room = stream(l) ? sizeof(l->in) - l->have : cap;
        errno = 0;
        ssize_t n = l->ssl ? SSL_read(l->ssl, dst, (int)room) : recv(l->fd, dst, room, MSG_DONTWAIT);
        if (n > 0) {
            if (!stream(l))
                return (int)n;
            l->have += (size_t)n;
            continue;
        }
        if (l->ssl) {
            int e = SSL_get_error(l->ssl, (int)n);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
                continue;
            if (l->tr == STUNKIT_DTLS && errno == ECONNREFUSED) {
                l->unreachable = 1;
                ERR_clear_error();
                continue;
            }
            return e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && (errno == 0 || errno == ECONNRESET))
                       ? STUNKIT_ERR_CLOSED
                       : STUNKIT_ERR_CRYPTO;
        }
        if (n == 0 && stream(l))
            return STUNKIT_ERR_CLOSED;
        if (n < 0 && errno == ECONNREFUSED) {
            l->unreachable = 1; /* UDP: ICMP errors surface here */
            continue;
        }
        if (n < 0 && errno == EAGAIN)
            continue;
        if (n < 0)
            return errno == ECONNRESET ? STUNKIT_ERR_CLOSED : STUNKIT_ERR_SYSCALL;
    }
}
