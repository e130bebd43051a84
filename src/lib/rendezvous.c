/*
 * rendezvous.c - the rendezvous client machine, see stunkit/rendezvous.h
 * (the server's half is src/server/rendezvous.c).
 *
 * A request carries what the server does not hold yet of our description
 * (it says how much it holds in every answer, so a lost answer or a server
 * that forgot us only means sending again from there) and ACKs how much of
 * the peer's we hold (the answer continues from there). Descriptions only
 * grow, so a retransmitted request changes nothing twice.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_take.h"
#include "auth_client.h"
#include "cursor.h"
#include "stunkit/error.h"
#include "stunkit/integrity.h"
#include "stunkit/msg.h"
#include "stunkit/rendezvous.h"
#include "stunkit/txn.h"

#define REQ_MAX 1400
#define CHUNK 1000       /* our description bytes per request */
#define PAD_TO 600       /* requests that want the peer's bytes: answers up to twice this */
#define QUIET_MS 30000u  /* without news this long, poll every SLOW_MS */
#define SLOW_MS 1000u

enum { S_RUN, S_LEAVING, S_DONE };

struct stunkit_rdv {
    stunkit_rdv_config cfg;
    char room[STUNKIT_RDV_ROOM_MAX + 1], software[129];
    uint8_t peer_id[8];
    int state;
    /* long-term credentials (RFC 8489 9.2): auth_client.c */
    sk_auth_client auth;
    int auth_tries; /* challenges answered for the request in flight */
    /* descriptions */
    char local[STUNKIT_RDV_DESC_MAX];
    size_t local_len, held;   /* held: bytes of ours the server has */
    char peer[STUNKIT_RDV_DESC_MAX];
    size_t peer_len, peer_total, delivered;
    uint16_t peer_gen;
    int peer_seen, peer_gen_known;
    /* what the answers said */
    int role_known, offerer;
    /* pending events */
    int ev_role, ev_left, ev_failed, ev_done;
    int fail_code, failed; /* failed: S_DONE by a failure (stunkit_rdv_move may resume) */
    char fail_reason[128];
    /* the one request in flight */
    int busy;
    stunkit_txn txn;
    stunkit_rto rto;
    uint8_t req[REQ_MAX];
    size_t req_len;
    uint64_t next_ms, news_ms;
    uint64_t answered_ms; /* the server's last answer (0: none yet) */
    uint64_t heard_ms;    /* its last answer, or when we began with this server: silence counts from here */
    unsigned ans_n, ans_sends; /* requests answered, and the sends they took */
};

/* Once the server has answered, a request that goes unanswered is given up
 * after its sends at 0, 0.25, 0.75 and 1.75 s (at 2.75 s) and the next one
 * (built afresh: every request says all there is) goes at once, so a lossy
 * path costs a second, not a 4 s wait in RFC 8489's last interval; the
 * rendezvous fails when a request ends unanswered and the server has
 * been silent for silence_ms (20 s by default: a client with other servers
 * to go to sets less, and then the requests before the first answer are
 * the short ones too: FAILED after silence_ms + at most 2.75 s). Without:
 * before its first answer, RFC 8489's 7 sends (19.75 s). UDP only: over
 * TCP and TLS a request goes once (RFC 8489 6.2.2). */
#define RDV_SILENCE_MS 20000u

int stunkit_rdv_room_valid(const char *room, size_t len)
{
    if (!room || len == 0 || len > STUNKIT_RDV_ROOM_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = room[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '~' || c == '-'))
            return 0;
    }
    return 1;
}

const char *stunkit_rdv_event_name(stunkit_rdv_event e)
{
    switch (e) {
    case STUNKIT_RDV_EVENT_ROLE: return "role";
    case STUNKIT_RDV_EVENT_PEER_DATA: return "peer-data";
    case STUNKIT_RDV_EVENT_PEER_LEFT: return "peer-left";
    case STUNKIT_RDV_EVENT_FAILED: return "failed";
    case STUNKIT_RDV_EVENT_LEFT: return "left";
    }
    return "unknown";
}

static int copy_text(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (n >= cap)
        return -1;
    memcpy(dst, src, n + 1);
    return 0;
}

stunkit_rdv *stunkit_rdv_new(const stunkit_rdv_config *cfg, uint64_t now_ms)
{
    stunkit_rdv_config taken; /* versioned by size (config_take.h) */
    if (sk_config_take(&taken, sizeof(taken), cfg, sizeof(taken)) != 0)
        return NULL;
    cfg = &taken;
    if (!cfg->env.random || !cfg->username || !cfg->password || !cfg->room ||
        !stunkit_rdv_room_valid(cfg->room, strlen(cfg->room)))
        return NULL;
    stunkit_rdv *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->cfg = *cfg;
    if (copy_text(r->room, sizeof(r->room), cfg->room) != 0 ||
        sk_auth_init(&r->auth, cfg->username, cfg->password) != 0 ||
        (cfg->software && copy_text(r->software, sizeof(r->software), cfg->software) != 0)) {
        stunkit_rdv_free(r);
        return NULL;
    }
    if (!r->cfg.poll_ms)
        r->cfg.poll_ms = 200;
    stunkit_rto_default(&r->rto);
    r->rto.rto_ms = cfg->rto_ms ? cfg->rto_ms : 250;
    /* over TCP/TLS a request goes once; a server that has not answered in
     * 10 s (it answers in milliseconds, or drops an unknown method) will not */
    r->rto.tcp_timeout_ms = 10000;
    cfg->env.random(cfg->env.random_ctx, r->peer_id, sizeof(r->peer_id));
    if (!r->cfg.silence_ms)
        r->cfg.silence_ms = RDV_SILENCE_MS;
    r->next_ms = now_ms;
    r->news_ms = now_ms;
    r->heard_ms = now_ms;
    return r;
}

void stunkit_rdv_free(stunkit_rdv *r)
{
    if (!r)
        return;
    volatile uint8_t *p = (volatile uint8_t *)r; /* no password left in freed memory */
    for (size_t i = 0; i < sizeof(*r); i++)
        p[i] = 0;
    free(r);
}

int stunkit_rdv_set_description(stunkit_rdv *r, const char *desc, size_t len, uint64_t now_ms)
{
    if (len > sizeof(r->local))
        return STUNKIT_ERR_NOBUF;
    if (len < r->local_len || memcmp(r->local, desc, r->local_len) != 0)
        return STUNKIT_ERR_INVAL;
    if (len == r->local_len)
        return 0;
    memcpy(r->local + r->local_len, desc + r->local_len, len - r->local_len);
    r->local_len = len;
    if (!r->busy && r->next_ms > now_ms)
        r->next_ms = now_ms; /* trickle: up at once */
    return 0;
}

static void fail(stunkit_rdv *r, int code, const char *reason)
{
    r->ev_failed = 1;
    r->failed = 1;
    r->fail_code = code;
    snprintf(r->fail_reason, sizeof(r->fail_reason), "%s", reason);
    r->state = S_DONE;
    r->busy = 0;
}

/* ---- requests ---- */

static int build(stunkit_rdv *r)
{
    uint8_t tid[STUNKIT_TID_LEN];
    stunkit_writer w;
    r->cfg.env.random(r->cfg.env.random_ctx, tid, sizeof(tid));
    stunkit_writer_init(&w, r->req, sizeof(r->req), STUNKIT_METHOD_RENDEZVOUS, STUNKIT_CLASS_REQUEST, tid);
    stunkit_put(&w, STUNKIT_ATTR_RDV_ROOM, r->room, strlen(r->room));
    stunkit_put(&w, STUNKIT_ATTR_RDV_PEER_ID, r->peer_id, sizeof(r->peer_id));
    stunkit_put_u32(&w, STUNKIT_ATTR_RDV_ACK, (uint32_t)r->peer_len);
    if (r->state == S_LEAVING) {
        stunkit_put(&w, STUNKIT_ATTR_RDV_LEAVE, NULL, 0);
    } else if (r->held < r->local_len) {
        size_t n = r->local_len - r->held;
        stunkit_put_u32(&w, STUNKIT_ATTR_RDV_OFFSET, (uint32_t)r->held);
        stunkit_put(&w, STUNKIT_ATTR_RDV_DESCRIPTION, r->local + r->held, n > CHUNK ? CHUNK : n);
    }
    if (r->software[0])
        stunkit_put(&w, STUNKIT_ATTR_SOFTWARE, r->software, strlen(r->software));
    /* The server answers with at most twice the request's size (it draws
     * no amplification from us): when the peer has bytes for us, or we do
     * not know yet, the request is padded so the answer can carry ~1 KB. */
    size_t tail = 4 + 20 + 8; /* MESSAGE-INTEGRITY and FINGERPRINT */
    if (sk_auth_ready(&r->auth))
        tail = 8 + sk_auth_overhead(&r->auth);
    if (r->state == S_RUN && (!r->role_known || r->peer_total > r->peer_len) && w.len + tail + 4 < PAD_TO)
        stunkit_put(&w, STUNKIT_ATTR_PADDING, NULL, (PAD_TO - w.len - tail - 4) & ~(size_t)3);
    sk_auth_sign(&r->auth, &w);
    stunkit_put_fingerprint(&w);
    int n = stunkit_writer_finish(&w);
    if (n < 0)
        return n;
    r->req_len = (size_t)n;
    return 0;
}

/* over TCP/TLS a request goes once: a server that has not answered it in
 * 10 s (it answers in milliseconds) will not */
static int udp(const stunkit_rdv *r)
{
    return r->cfg.transport != STUNKIT_TCP && r->cfg.transport != STUNKIT_TLS;
}

/* Requests of 4 sends (given up at 2.75 s, the next at once) until the
 * silence ends: over UDP once the server has answered, or from the start
 * when the silence allowed is shorter than RFC 8489's 7 sends take.
 * Silence is counted by requests that went out unanswered, never by a
 * clock alone: a process that was stopped a while does not come back to
 * a failure its requests never had. */
static int short_requests(const stunkit_rdv *r)
{
    return udp(r) && (r->answered_ms || r->cfg.silence_ms < RDV_SILENCE_MS);
}

static int start(stunkit_rdv *r, uint64_t now)
{
    if (build(r) != 0) {
        fail(r, 0, "cannot build the request");
        return -1;
    }
    stunkit_rto rto = r->rto;
    if (short_requests(r)) {
        rto.rc = 4;
        rto.rm = 4;
    }
    stunkit_txn_start(&r->txn, &rto, r->cfg.transport == STUNKIT_TCP || r->cfg.transport == STUNKIT_TLS,
                      r->req + 8, now);
    r->busy = 1;
    return 0;
}

/* ---- poll ---- */

int stunkit_rdv_poll(stunkit_rdv *r, uint64_t now_ms, stunkit_rdv_output *out)
{
    memset(out, 0, sizeof(*out));
    if (r->ev_role) {
        r->ev_role = 0;
        out->event = STUNKIT_RDV_EVENT_ROLE;
        out->offerer = r->offerer;
        return 1;
    }
    if (r->ev_left) {
        r->ev_left = 0;
        out->event = STUNKIT_RDV_EVENT_PEER_LEFT;
        return 1;
    }
    if (r->delivered < r->peer_len) {
        out->event = STUNKIT_RDV_EVENT_PEER_DATA;
        out->data = (const uint8_t *)r->peer + r->delivered;
        out->len = r->peer_len - r->delivered;
        r->delivered = r->peer_len;
        return 1;
    }
    if (r->ev_failed) {
        r->ev_failed = 0;
        out->event = STUNKIT_RDV_EVENT_FAILED;
        out->error_code = r->fail_code;
        memcpy(out->reason, r->fail_reason, sizeof(out->reason));
        return 1;
    }
    if (r->ev_done) {
        r->ev_done = 0;
        out->event = STUNKIT_RDV_EVENT_LEFT;
        return 1;
    }
    if (r->state == S_DONE)
        return 0;
    if (!r->busy) {
        if (now_ms < r->next_ms || start(r, now_ms) != 0)
            return r->state == S_DONE ? stunkit_rdv_poll(r, now_ms, out) : 0;
    }
    switch (stunkit_txn_poll(&r->txn, now_ms)) {
    case STUNKIT_TXN_SEND:
        out->send = 1;
        out->data = r->req;
        out->len = r->req_len;
        return 1;
    case STUNKIT_TXN_TIMEOUT:
        if (r->state == S_LEAVING) {
            r->state = S_DONE;
            r->busy = 0;
            r->ev_done = 1;
        } else if (short_requests(r) && now_ms - r->heard_ms < r->cfg.silence_ms) {
            r->busy = 0; /* lost on the way: the next request at once */
            r->next_ms = now_ms;
        } else {
            fail(r, 0, "no answer from the server");
        }
        return stunkit_rdv_poll(r, now_ms, out);
    default: return 0;
    }
}

uint64_t stunkit_rdv_timeout(const stunkit_rdv *r)
{
    if (r->ev_role || r->ev_left || r->ev_failed || r->ev_done || r->delivered < r->peer_len)
        return 0;
    if (r->state == S_DONE)
        return STUNKIT_NEVER;
    return r->busy ? stunkit_txn_timeout(&r->txn) : r->next_ms;
}

void stunkit_rdv_set_transport(stunkit_rdv *r, stunkit_transport transport, uint64_t now_ms)
{
    r->cfg.transport = transport;
    if (r->busy && r->state != S_DONE)
        start(r, now_ms); /* a new transaction: answers to the old one no longer match */
}

void stunkit_rdv_move(stunkit_rdv *r, stunkit_transport transport, uint64_t now_ms)
{
    if (r->state == S_DONE && !r->failed)
        return; /* left: nothing to carry on */
    r->cfg.transport = transport;
    r->heard_ms = now_ms;
    r->auth_tries = 0;
    if (r->state == S_DONE) {
        /* FAILED here: run again. What we hold of the peer's description
         * stays (ACK says so); how much of ours the new server holds, its
         * first answer says (a server that shares the room says all of it) */
        r->state = S_RUN;
        r->failed = 0;
        r->ev_failed = 0;
    }
    start(r, now_ms); /* a new transaction, to the new server */
}

uint64_t stunkit_rdv_last_answer(const stunkit_rdv *r)
{
    return r->answered_ms;
}

unsigned stunkit_rdv_loss(const stunkit_rdv *r)
{
    if (!r->ans_n || !r->ans_sends || !udp(r))
        return 0;
    return (unsigned)(1000u * (uint64_t)(r->ans_sends - r->ans_n) / r->ans_sends);
}

int stunkit_rdv_answered(const stunkit_rdv *r)
{
    return r->role_known || sk_auth_ready(&r->auth);
}

void stunkit_rdv_leave(stunkit_rdv *r, uint64_t now_ms)
{
    if (r->state != S_RUN)
        return;
    r->state = S_LEAVING;
    if (!r->role_known) { /* never answered: there is no place to free */
        r->state = S_DONE;
        r->busy = 0;
        r->ev_done = 1;
        return;
    }
    start(r, now_ms);
}

/* ---- input ---- */

static void on_error(stunkit_rdv *r, const stunkit_msg *m, uint64_t now)
{
    stunkit_attr a;
    int code = 0;
    const uint8_t *reason = NULL;
    size_t rlen = 0;
    char text[128];
    if (stunkit_msg_find(m, STUNKIT_ATTR_ERROR_CODE, &a) == 0)
        stunkit_attr_error_code(&a, &code, &reason, &rlen);
    /* RFC 8489 9.2.4/9.2.5: a 401 (first) or 438 brings REALM and NONCE:
     * the same request again with the long-term key - a few times only */
    if (sk_auth_challenge(&r->auth, m, code, &r->auth_tries)) {
        start(r, now);
        return;
    }
    if (rlen > 100)
        rlen = 100;
    if (code == 401 && sk_auth_ready(&r->auth))
        snprintf(text, sizeof(text), "401 %.*s (wrong username or password)", (int)rlen, reason ? (const char *)reason : "");
    else
        snprintf(text, sizeof(text), "%d %.*s", code, (int)rlen, reason ? (const char *)reason : "");
    if (r->state == S_LEAVING) {
        r->state = S_DONE;
        r->busy = 0;
        r->ev_done = 1;
        return;
    }
    fail(r, code, text);
}

static void on_success(stunkit_rdv *r, const stunkit_msg *m, uint64_t now)
{
    stunkit_attr a;
    if (stunkit_msg_find(m, STUNKIT_ATTR_RDV_STATUS, &a) != 0 || a.len != STUNKIT_RDV_STATUS_LEN)
        return; /* not a rendezvous answer: keep waiting */
    const uint8_t *s = a.value;
    int role = s[0], peer = s[1];
    uint16_t gen = sk__get16(s + 2);
    uint32_t held = sk__get32(s + 4), peer_total = sk__get32(s + 8);
    int news = 0;
    r->busy = 0;
    r->auth_tries = 0;
    r->answered_ms = now ? now : 1;
    if (r->state == S_LEAVING) {
        r->state = S_DONE;
        r->ev_done = 1;
        return;
    }
    if (!r->role_known) {
        r->role_known = 1;
        r->offerer = role == 0;
        r->ev_role = 1;
        news = 1;
    }
    /* another peer took the other place: its description starts over */
    if (r->peer_gen_known && gen != r->peer_gen) {
        if (r->peer_seen)
            r->ev_left = 1;
        r->peer_len = r->delivered = r->peer_total = 0;
        r->peer_seen = 0;
        news = 1;
    }
    r->peer_gen = gen;
    r->peer_gen_known = 1;
    if (peer == 1 && !r->peer_seen) {
        r->peer_seen = 1;
        news = 1;
    } else if (peer == 2 && r->peer_seen) {
        r->peer_seen = 0;
        r->ev_left = 1;
        news = 1;
    }
    if (held <= r->local_len) {
        news |= held > r->held;
        r->held = held;
    }
    if (peer_total <= sizeof(r->peer))
        r->peer_total = peer_total;
    /* the peer's bytes from OFFSET on; what we hold already is skipped */
    uint32_t off;
    if (stunkit_msg_find(m, STUNKIT_ATTR_RDV_OFFSET, &a) == 0 && stunkit_attr_u32(&a, &off) == 0 &&
        stunkit_msg_find(m, STUNKIT_ATTR_RDV_DESCRIPTION, &a) == 0 && off <= r->peer_len &&
        (size_t)off + a.len > r->peer_len && (size_t)off + a.len <= sizeof(r->peer)) {
        size_t skip = r->peer_len - off;
        memcpy(r->peer + r->peer_len, a.value + skip, a.len - skip);
        r->peer_len = (size_t)off + a.len;
        news = 1;
    }
    if (news)
        r->news_ms = now;
    if (r->held < r->local_len || r->peer_total > r->peer_len)
        r->next_ms = now; /* more to move: at once */
    else
        r->next_ms = now + (now - r->news_ms > QUIET_MS ? SLOW_MS : r->cfg.poll_ms);
}

int stunkit_rdv_input(stunkit_rdv *r, int sock, const stunkit_addr *from, const uint8_t *data, size_t len,
                      uint64_t now_ms)
{
    (void)sock; /* one server, one socket */
    (void)from;
    stunkit_msg m;
    if (!r->busy || stunkit_txn_match(&r->txn, data, len, &m) != STUNKIT_INPUT_TAKEN)
        return STUNKIT_INPUT_NOT_MINE;
    if (m.method != STUNKIT_METHOD_RENDEZVOUS)
        return STUNKIT_INPUT_TAKEN;
    r->heard_ms = now_ms; /* the server is there, whatever it says */
    if (m.klass == STUNKIT_CLASS_ERROR) {
        on_error(r, &m, now_ms);
        return STUNKIT_INPUT_TAKEN;
    }
    /* a success must carry our key's MESSAGE-INTEGRITY (RFC 8489 9.2.5):
     * anything else is not trusted, and a retransmission may still come */
    if (sk_auth_verify(&r->auth, &m) != 0)
        return STUNKIT_INPUT_TAKEN;
    r->ans_n++; /* the loss seen: how many sends an answered request took */
    r->ans_sends += r->txn.sent ? r->txn.sent : 1;
    on_success(r, &m, now_ms);
    return STUNKIT_INPUT_TAKEN;
}
