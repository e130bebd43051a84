/*
 * driver.c - thin blocking socket drivers around stunkit_txn: Binding
 * transactions over UDP, TCP, TLS or DTLS (OpenSSL), IPv4 or IPv6, with
 * optional credentials (RFC 8489 9.1 short-term, 9.2 long-term: the 401
 * challenge is answered on the same socket or connection).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "auth_client.h"
#include "stunkit/client.h"
#include "stunkit/integrity.h"
#include "stunkit/link.h"

uint64_t stunkit_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* A received answer, kept with its bytes (the stunkit_msg points into it). */
typedef struct answer {
    uint8_t buf[4096];
    stunkit_msg msg;
    uint32_t rtt_ms;
} answer;

static uint32_t left_ms(uint64_t deadline)
{
    uint64_t now = stunkit_now_ms();
    return now >= deadline ? 0 : (uint32_t)(deadline - now);
}

/* One transaction: req (carrying tid) until an answer that is ours (and,
 * with a key, has valid integrity) or the deadline. Datagram transports
 * retransmit on the RFC 8489 schedule; streams send once. */
static int transact(stunkit_link *l, const uint8_t *req, size_t len, const uint8_t *tid, const uint8_t *key, size_t key_len,
                    uint64_t deadline, answer *a)
{
    stunkit_txn t;
    stunkit_transport tr = stunkit_link_transport(l);
    int reliable = tr == STUNKIT_TCP || tr == STUNKIT_TLS;
    stunkit_txn_start(&t, NULL, reliable, tid, stunkit_now_ms());
    int sends = 0;
    uint64_t last_send = 0;
    t.key = key;
    t.key_len = key_len;
    for (;;) {
        uint64_t now = stunkit_now_ms();
        if (now >= deadline)
            return STUNKIT_ERR_TIMEOUT;
        stunkit_txn_action act = stunkit_txn_poll(&t, now);
        if (act == STUNKIT_TXN_TIMEOUT)
            return STUNKIT_ERR_TIMEOUT;
        /* UDP refused (ICMP port unreachable) and a retransmission not
         * answered within 100 ms: nothing listens there, and a refusal is
         * not waited out to the deadline (one refusal alone may be a
         * server restarting: one more try) */
        int refused = !reliable && sends >= 2 && stunkit_link_unreachable(l);
        if (refused && now >= last_send + 100)
            return STUNKIT_ERR_TIMEOUT;
        if (act == STUNKIT_TXN_SEND) {
            int rv = stunkit_link_send(l, req, len, left_ms(deadline));
            if (rv != 0)
                return rv;
            sends++;
            last_send = now;
        }
        uint64_t until = stunkit_txn_timeout(&t) < deadline ? stunkit_txn_timeout(&t) : deadline;
        if (!reliable && sends >= 2 && stunkit_link_unreachable(l) && last_send + 100 < until)
            until = last_send + 100;
        for (;;) {
            int n = stunkit_link_recv(l, a->buf, sizeof(a->buf), left_ms(until));
            if (n < 0)
                return n;
            if (n == 0)
                break;
            int rv = stunkit_txn_match(&t, a->buf, (size_t)n, &a->msg);
            if (rv == STUNKIT_ERR_INTEGRITY_ABSENT || rv == STUNKIT_ERR_INTEGRITY_MISMATCH) {
                /* an error answer to a signed request may come unsigned
                 * (a 401 or 438 never is signed): take it, unsigned */
                if (a->msg.klass == STUNKIT_CLASS_ERROR)
                    rv = STUNKIT_INPUT_TAKEN;
            }
            if (rv != STUNKIT_INPUT_TAKEN)
                continue;
            a->rtt_ms = (uint32_t)(stunkit_now_ms() - t.last_send_ms);
            return 0;
        }
    }
}

/* ---- requests with and without credentials ---- */

typedef struct auth_state {
    const stunkit_credentials *cred;
    uint8_t key[STUNKIT_KEY_MAX]; /* short-term */
    size_t key_len;
    sk_auth_client lt;            /* long-term: auth_client.c */
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
    } else if (c) {
        sk_auth_sign(&st->lt, &w); /* RFC 8489 9.2.4, once a challenge came */
    }
    stunkit_put_fingerprint(&w);
    return stunkit_writer_finish(&w);
}

static int error_code_of(const stunkit_msg *m)
{
    stunkit_attr a;
    int code = 0;
    if (stunkit_msg_find(m, STUNKIT_ATTR_ERROR_CODE, &a) == 0)
        stunkit_attr_error_code(&a, &code, NULL, NULL);
    return code;
}

int stunkit_binding_ex(const stunkit_addr *server, stunkit_transport tr, const stunkit_binding_options *opt,
                       stunkit_binding_result *res)
{
    const stunkit_addr *local = opt->local;
    const char *tls_name = opt->tls_name;
    uint32_t timeout_ms = opt->timeout_ms;
    const stunkit_credentials *cred = opt->cred;
    stunkit_rto rto;
    stunkit_rto_default(&rto);
    memset(res, 0, sizeof(*res));
    uint64_t deadline = stunkit_now_ms() + (timeout_ms ? timeout_ms : rto.tcp_timeout_ms);
    auth_state *st = calloc(1, sizeof(*st));
    answer *a = calloc(1, sizeof(*a));
    stunkit_link *l = NULL;
    int rv = STUNKIT_ERR_NOMEM;
    if (!st || !a)
        goto out;
    st->cred = cred && cred->username && cred->password ? cred : NULL;
    if (st->cred && !st->cred->short_term && sk_auth_init(&st->lt, cred->username, cred->password) != 0) {
        rv = STUNKIT_ERR_INVAL;
        goto out;
    }
    if (st->cred && st->cred->short_term) {
        int n = stunkit_key_short_term(cred->password, strlen(cred->password), st->key, sizeof(st->key));
        if (n < 0) {
            rv = n;
            goto out;
        }
        st->key_len = (size_t)n;
    }
    /* not checking the certificate is the caller's explicit choice: the
     * link refuses TLS with neither a name nor tls_insecure */
    stunkit_link_config lc = {.size = sizeof(lc),
                              .transport = tr,
                              .local = local,
                              .tls_name = tls_name,
                              .tls_insecure = opt->tls_insecure,
                              .ca_file = opt->ca_file,
                              .timeout_ms = left_ms(deadline),
                              .error_text = opt->error_text,
                              .error_text_cap = opt->error_text_cap};
    if (opt->error_text && opt->error_text_cap)
        opt->error_text[0] = 0;
    rv = lc.timeout_ms ? stunkit_link_open(&l, server, &lc) : STUNKIT_ERR_TIMEOUT;
    if (rv == 0)
        res->local = stunkit_link_local(l);
    res->server = *server;
    /* at most: a plain (or short-term) request, the signed one after the
     * 401, and more after a 438 Stale Nonce (auth_client.c bounds them) */
    int tries = 0;
    for (int attempt = 0; rv == 0 && attempt < 4; attempt++) {
        uint8_t req[2048], tid[STUNKIT_TID_LEN];
        int len = build_request(st, req, sizeof(req), tid);
        if (len < 0) {
            rv = len;
            break;
        }
        const uint8_t *key = st->key_len ? st->key : st->lt.key_len ? st->lt.key : NULL;
        size_t key_len = st->key_len ? st->key_len : st->lt.key_len;
        rv = transact(l, req, (size_t)len, tid, key, key_len, deadline, a);
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
        if (st->cred && !st->cred->short_term && sk_auth_challenge(&st->lt, &a->msg, code, &tries))
            rv = 0; /* answer the challenge */
    }
    if (rv == STUNKIT_ERR_TIMEOUT && l && stunkit_link_unreachable(l) && opt->error_text && opt->error_text_cap)
        snprintf(opt->error_text, opt->error_text_cap, "refused: nothing listens there (ICMP port unreachable)");
out:
    stunkit_link_close(l);
    if (st)
        OPENSSL_cleanse(st, sizeof(*st));
    free(st);
    free(a);
    return rv;
}

int stunkit_binding_auth(const stunkit_addr *server, stunkit_transport tr, const stunkit_addr *local,
                         const char *tls_name, uint32_t timeout_ms, const stunkit_credentials *cred,
                         stunkit_binding_result *res)
{
    stunkit_binding_options o = {.size = sizeof(o), .local = local, .timeout_ms = timeout_ms, .cred = cred,
                                 .tls_name = tls_name};
    return stunkit_binding_ex(server, tr, &o, res);
}

int stunkit_binding(const stunkit_addr *server, stunkit_transport tr, const stunkit_addr *local, const char *tls_name,
                    uint32_t timeout_ms, stunkit_binding_result *res)
{
    return stunkit_binding_auth(server, tr, local, tls_name, timeout_ms, NULL, res);
}
