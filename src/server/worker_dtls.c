/*
 * worker_dtls.c - the glue between the UDP socket on the TLS port and the
 * DTLS sessions of dtls.c: datagrams in, each decrypted STUN message through
 * skd_serve() (transport DTLS: no CHANGE-REQUEST or RESPONSE-PORT), the
 * answer back encrypted.
 */
#define _GNU_SOURCE
#include <string.h>

#include "worker_int.h"

typedef struct dtls_ctx {
    skd_worker *w;
    const skd_sock *s;
    uint64_t now;
    uint64_t unix_s;
    void *session; /* the session the message came on (set by dtls.c's callback) */
} dtls_ctx;

/* Relayed data for the client of a TURN allocation over a DTLS session
 * (its skd_conn_hook). */
static void dtls_deliver(skd_worker *w, skd_conn_hook *h, const skd_outbox *ob)
{
    skd_dtls_session *session = (skd_dtls_session *)((char *)h - offsetof(skd_dtls_session, hook));
    for (size_t k = 0; k < ob->n; k++)
        if (skd_dtls_send(session, ob->out[k].data, ob->out[k].len) != 0)
            SKD_STAT_INC(w->st, send_errors);
}

static size_t dtls_message(void *arg, skd_dtls_session *session, const uint8_t *msg, size_t len, uint8_t *out,
                           size_t cap)
{
    dtls_ctx *d = arg;
    const stunkit_addr *peer = &session->peer;
    d->session = session;
    skd_worker *w = d->w;
    session->hook.deliver = dtls_deliver;
    session->hook.stream = 0;
    skd_request rq = {msg, len, *peer, session->local, STUNKIT_DTLS, 0, 0, d->unix_s, d->now,
                      w->turn_on ? &w->turn : NULL, &session->hook};
    skd_outbox ob;
    skd_outbox_init(&ob, w->one_buf, sizeof(w->one_buf), w->one_out, 4);
    SKD_STAT_INC(w->st, dtls_rx);
    SKD_STAT_ADD(w->st, dtls_rx_bytes, len);
    if (!skd_serve(w, &rq, &ob, d->now))
        return 0;
    size_t answer = 0;
    for (size_t k = 0; k < ob.n; k++) {
        const skd_out *o = &ob.out[k];
        if (o->relay_fd >= 0) {
            skd_send_relayed(w, o);
            continue;
        }
        /* over DTLS an answer goes back to the peer on its session */
        if (answer || o->len > cap || !stunkit_addr_equal(&o->to, peer))
            continue;
        memcpy(out, o->data, o->len);
        answer = o->len;
        SKD_STAT_INC(w->st, dtls_tx);
        SKD_STAT_ADD(w->st, dtls_tx_bytes, o->len);
    }
    return answer;
}


/* Whether a DTLS session holds a TURN allocation (it then lives as long as
 * the allocation does). */
int skd_dtls_session_holds(void *ctx, const skd_dtls_session *s)
{
    skd_worker *w = ctx;
    return w->turn_on && skd_turn_find(&w->turn, &s->peer, &s->local) != NULL;
}

/* A DTLS session ended: its TURN allocation goes with it. */
void skd_dtls_session_ended(void *ctx, const skd_dtls_session *s)
{
    skd_worker *w = ctx;
    if (w->turn_on)
        skd_turn_conn_closed(&w->turn, &s->peer, &s->local);
}

void skd_dtls_drain(skd_worker *w, skd_sock *s)
{
    for (int round = 0; round < MAX_DRAIN; round++) {
        struct sockaddr_storage ss;
        uint8_t buf[RX_SIZE];
        int n = 0;
        dtls_ctx ctx = {w, s, skd_now_ms(), skd_unix_now(), NULL};
        SSL_CTX *ssl_ctx = skd_dtls_current(&w->srv->tls);
        for (; n < BATCH; n++) {
            socklen_t slen = sizeof(ss);
            ssize_t len = recvfrom(s->fd, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&ss, &slen);
            if (len < 0)
                break;
            stunkit_addr peer;
            if (stunkit_addr_from_sockaddr(&peer, (struct sockaddr *)&ss) != 0)
                continue;
            skd_dtls_input(&w->dtls, ssl_ctx, s->fd, &s->bound, &peer, buf, (size_t)len, ctx.now, dtls_message, &ctx);
        }
        if (n < BATCH)
            return;
    }
}
