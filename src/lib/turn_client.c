/*
 * turn_client.c - the TURN client machine (RFC 8656), see stunkit/turn.h.
 * Section numbers are RFC 8656's.
 *
 * Transactions run on stunkit_txn (the RFC 8489 schedule); the long-term
 * credentials (a 401 answered once per request, a 438 with the new NONCE,
 * MD5 or SHA-256, USERHASH) are auth_client.c's; answers to authenticated
 * requests must carry valid MESSAGE-INTEGRITY, challenges need not.
 */
#include <stdlib.h>
#include <string.h>

#include "config_take.h"
#include "auth_client.h"
#include "cursor.h"
#include "outq.h"
#include "stunkit/integrity.h"
#include "stunkit/turn.h"

#define MAX_TX 16
#define MAX_PEERS 32
#define MAX_EVENTS 16
#define MAX_REDIRECTS 3 /* 300s followed for one allocation */
#define REQ_MAX 1536 /* a long REALM and NONCE, USERHASH, PASSWORD-ALGORITHMS, SHA-256 */
#define PERMISSION_REFRESH_MS 240000u /* permissions last 300 s (9) */
#define CHANNEL_REFRESH_MS 540000u    /* channel bindings last 600 s (11) */

enum { K_ALLOCATE = 1, K_REFRESH, K_PERMIT, K_BIND };
enum { S_START, S_ALLOCATING, S_ALLOCATED, S_CLOSING, S_DONE };

typedef struct tx {
    int used, kind, peer, auth_tries;
    uint32_t lifetime; /* Refresh: what was asked */
    stunkit_txn txn;
    uint8_t req[REQ_MAX];
    size_t req_len;
} tx;

typedef struct peer_state {
    stunkit_addr addr;
    int permitted, perm_pending, want_perm;
    uint64_t perm_refresh_at;
    uint16_t channel;
    int bound, bind_pending, want_bind;
    int bind_sent; /* a ChannelBind went out (its answer may be lost): the server's ChannelData on it is taken */
    uint64_t bind_refresh_at;
} peer_state;

struct stunkit_turn {
    stunkit_turn_config cfg;
    char software[129];
    int state;
    sk_auth_client auth;
    stunkit_addr relayed, mapped, relayed2;
    uint32_t lifetime_s;
    uint64_t refresh_at;
    tx txs[MAX_TX];
    peer_state peers[MAX_PEERS];
    int n_peers;
    uint16_t next_channel;
    int dual_refused; /* 440 to a dual Allocate: asked again for one family */
    /* servers this Allocate was sent to (RFC 8489 10: a redirection back to
     * one of them within five minutes fails the transaction) */
    stunkit_addr tried[MAX_REDIRECTS + 1];
    uint64_t tried_at[MAX_REDIRECTS + 1];
    int n_tried;
    stunkit_turn_output events[MAX_EVENTS], ev_spill; /* ev_spill: what did not fit (outq.h) */
    sk_outq evq;
};

const char *stunkit_turn_event_name(stunkit_turn_event e)
{
    switch (e) {
    case STUNKIT_TURN_EVENT_ALLOCATED: return "allocated";
    case STUNKIT_TURN_EVENT_PERMITTED: return "permitted";
    case STUNKIT_TURN_EVENT_BOUND: return "bound";
    case STUNKIT_TURN_EVENT_REFRESHED: return "refreshed";
    case STUNKIT_TURN_EVENT_FAILED: return "failed";
    case STUNKIT_TURN_EVENT_CLOSED: return "closed";
    case STUNKIT_TURN_EVENT_REDIRECTED: return "redirected";
    }
    return "unknown";
}

static int copy_text(char *dst, size_t cap, const char *src)
{
    if (!src)
        return -1;
    size_t n = strlen(src);
    if (n >= cap)
        return -1;
    memcpy(dst, src, n + 1);
    return 0;
}

stunkit_turn *stunkit_turn_new(const stunkit_turn_config *cfg, uint64_t now_ms)
{
    stunkit_turn_config taken; /* versioned by size (config_take.h) */
    if (sk_config_take(&taken, sizeof(taken), cfg, sizeof(taken)) != 0)
        return NULL;
    cfg = &taken;
    (void)now_ms;
    if (!cfg->env.random || !cfg->username || !cfg->password)
        return NULL;
    stunkit_turn *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->cfg = *cfg;
    sk_outq_init(&t->evq, MAX_EVENTS);
    if (sk_auth_init(&t->auth, cfg->username, cfg->password) != 0 ||
        (cfg->software && copy_text(t->software, sizeof(t->software), cfg->software) != 0)) {
        sk_auth_clear(&t->auth);
        free(t);
        return NULL;
    }
    if (!t->cfg.rto.rto_ms)
        stunkit_rto_default(&t->cfg.rto);
    t->next_channel = 0x4000;
    return t;
}

void stunkit_turn_free(stunkit_turn *t)
{
    if (!t)
        return;
    volatile uint8_t *p = (volatile uint8_t *)t; /* no password left in freed memory */
    for (size_t i = 0; i < sizeof(*t); i++)
        p[i] = 0;
    free(t);
}

static stunkit_turn_output *event(stunkit_turn *t, stunkit_turn_event e)
{
    int slot = sk_outq_push(&t->evq);
    stunkit_turn_output *o = slot < 0 ? &t->ev_spill : &t->events[slot];
    memset(o, 0, sizeof(*o));
    o->event = e;
    return o;
}

static void fail_event(stunkit_turn *t, int code, const char *reason, const stunkit_addr *peer)
{
    stunkit_turn_output *o = event(t, STUNKIT_TURN_EVENT_FAILED);
    o->error_code = code;
    if (reason) {
        size_t n = strlen(reason);
        if (n >= sizeof(o->reason))
            n = sizeof(o->reason) - 1;
        memcpy(o->reason, reason, n);
    }
    if (peer)
        o->peer = *peer;
}

/* ---- requests ---- */

static int build(stunkit_turn *t, tx *x)
{
    uint8_t tid[STUNKIT_TID_LEN];
    static const uint16_t methods[] = {0, STUNKIT_METHOD_ALLOCATE, STUNKIT_METHOD_REFRESH,
                                       STUNKIT_METHOD_CREATE_PERMISSION, STUNKIT_METHOD_CHANNEL_BIND};
    stunkit_writer w;
    t->cfg.env.random(t->cfg.env.random_ctx, tid, sizeof(tid));
    stunkit_writer_init(&w, x->req, sizeof(x->req), methods[x->kind], STUNKIT_CLASS_REQUEST, tid);
    const peer_state *p = x->peer >= 0 ? &t->peers[x->peer] : NULL;
    switch (x->kind) {
    case K_ALLOCATE: {
        /* 7.1: REQUESTED-TRANSPORT (UDP); LIFETIME and REQUESTED-ADDRESS-FAMILY when asked */
        uint8_t udp[4] = {17, 0, 0, 0};
        stunkit_put(&w, STUNKIT_ATTR_REQUESTED_TRANSPORT, udp, 4);
        if (t->cfg.lifetime_s)
            stunkit_put_u32(&w, STUNKIT_ATTR_LIFETIME, t->cfg.lifetime_s);
        if (t->cfg.dual && !t->dual_refused) {
            /* 7.2: "ADDITIONAL-ADDRESS-FAMILY [...] used by the client to
             * request the allocation of an IPv6 relayed transport address in
             * addition to the IPv4 relayed transport address"; its value
             * "MUST be 0x02 (IPv6 address family)" (no
             * REQUESTED-ADDRESS-FAMILY beside it: 400) */
            uint8_t fam[4] = {0x02, 0, 0, 0};
            stunkit_put(&w, STUNKIT_ATTR_ADDITIONAL_ADDRESS_FAMILY, fam, 4);
        } else if (t->cfg.family == STUNKIT_AF_INET6) {
            uint8_t fam[4] = {0x02, 0, 0, 0};
            stunkit_put(&w, STUNKIT_ATTR_REQUESTED_ADDRESS_FAMILY, fam, 4);
        }
        break;
    }
    case K_REFRESH: stunkit_put_u32(&w, STUNKIT_ATTR_LIFETIME, x->lifetime); break;
    case K_PERMIT: stunkit_put_addr(&w, STUNKIT_ATTR_XOR_PEER_ADDRESS, &p->addr); break;
    case K_BIND: {
        uint8_t ch[4] = {(uint8_t)(p->channel >> 8), (uint8_t)p->channel, 0, 0};
        stunkit_put(&w, STUNKIT_ATTR_CHANNEL_NUMBER, ch, 4);
        stunkit_put_addr(&w, STUNKIT_ATTR_XOR_PEER_ADDRESS, &p->addr);
        break;
    }
    default: return STUNKIT_ERR_INVAL;
    }
    if (t->software[0])
        stunkit_put(&w, STUNKIT_ATTR_SOFTWARE, t->software, strlen(t->software));
    sk_auth_sign(&t->auth, &w);
    stunkit_put_fingerprint(&w);
    int n = stunkit_writer_finish(&w);
    if (n < 0)
        return n;
    x->req_len = (size_t)n;
    return 0;
}

/* TCP and TLS are reliable: one send, no retransmission (RFC 8489 6.2.2) */
static int reliable(const stunkit_turn *t)
{
    return t->cfg.transport == STUNKIT_TCP || t->cfg.transport == STUNKIT_TLS;
}

static tx *start(stunkit_turn *t, int kind, int peer, uint32_t lifetime, uint64_t now)
{
    tx *x = NULL;
    for (int i = 0; i < MAX_TX && !x; i++)
        if (!t->txs[i].used)
            x = &t->txs[i];
    if (!x)
        return NULL;
    memset(x, 0, sizeof(*x));
    x->used = 1;
    x->kind = kind;
    x->peer = peer;
    x->lifetime = lifetime;
    if (build(t, x) != 0) {
        x->used = 0;
        return NULL;
    }
    stunkit_txn_start(&x->txn, &t->cfg.rto, reliable(t), x->req + 8, now);
    return x;
}

/* The same request again with fresh credentials and a new transaction. */
static void restart(stunkit_turn *t, tx *x, uint64_t now)
{
    if (build(t, x) != 0) {
        x->used = 0;
        return;
    }
    stunkit_txn_start(&x->txn, &t->cfg.rto, reliable(t), x->req + 8, now);
}

static int find_peer(stunkit_turn *t, const stunkit_addr *peer, int create)
{
    for (int i = 0; i < t->n_peers; i++)
        if (stunkit_addr_equal(&t->peers[i].addr, peer))
            return i;
    if (!create || t->n_peers == MAX_PEERS)
        return -1;
    peer_state *p = &t->peers[t->n_peers];
    memset(p, 0, sizeof(*p));
    p->addr = *peer;
    return t->n_peers++;
}

/* The peer's slot once allocated: its index, or a stunkit_err. */
static int peer_slot(stunkit_turn *t, const stunkit_addr *peer)
{
    if (t->state != S_ALLOCATED)
        return STUNKIT_ERR_STATE;
    int i = find_peer(t, peer, 1);
    return i < 0 ? STUNKIT_ERR_NOMEM : i;
}

int stunkit_turn_permit(stunkit_turn *t, const stunkit_addr *peer, uint64_t now_ms)
{
    (void)now_ms;
    int i = peer_slot(t, peer);
    if (i < 0)
        return i;
    t->peers[i].want_perm = 1;
    return 0;
}

int stunkit_turn_bind(stunkit_turn *t, const stunkit_addr *peer, uint64_t now_ms)
{
    (void)now_ms;
    int i = peer_slot(t, peer);
    if (i < 0)
        return i;
    if (!t->peers[i].channel) {
        if (t->next_channel > 0x4FFF) /* RFC 8656 11: 0x4000-0x4FFF */
            return STUNKIT_ERR_NOMEM;
        t->peers[i].channel = t->next_channel++;
    }
    t->peers[i].want_bind = 1;
    return 0;
}

int stunkit_turn_refresh(stunkit_turn *t, uint64_t now_ms)
{
    if (t->state != S_ALLOCATED)
        return STUNKIT_ERR_STATE;
    for (int i = 0; i < MAX_TX; i++)
        if (t->txs[i].used && t->txs[i].kind == K_REFRESH)
            return 0; /* one is under way */
    return start(t, K_REFRESH, -1, t->cfg.lifetime_s ? t->cfg.lifetime_s : t->lifetime_s, now_ms) ? 0
                                                                                               : STUNKIT_ERR_NOMEM;
}

void stunkit_turn_disconnected(stunkit_turn *t)
{
    if (t->state == S_DONE)
        return;
    if (t->state != S_CLOSING)
        fail_event(t, 0, "the connection to the server ended", NULL);
    for (int i = 0; i < MAX_TX; i++)
        t->txs[i].used = 0;
    t->state = S_DONE;
    event(t, STUNKIT_TURN_EVENT_CLOSED);
}

int stunkit_turn_frame(const uint8_t *buf, size_t avail, size_t *need)
{
    if (avail < 4) {
        *need = 4;
        /* what starts with 10 or 11 is neither STUN nor ChannelData */
        return avail >= 1 && (buf[0] & 0x80) ? STUNKIT_ERR_NOT_STUN : STUNKIT_ERR_TRUNCATED;
    }
    uint16_t length = sk__get16(buf + 2);
    switch (buf[0] & 0xC0) {
    case 0x00: /* STUN: 20-byte header + length, a multiple of four (RFC 8489 5) */
        if (length & 3u)
            return STUNKIT_ERR_BAD_LENGTH;
        *need = STUNKIT_HEADER_LEN + (size_t)length;
        return 0;
    case 0x40: /* ChannelData (12.4): 4-byte header + length, padded to four */
        *need = (4 + (size_t)length + 3) & ~(size_t)3;
        return 0;
    default: return STUNKIT_ERR_NOT_STUN;
    }
}

int stunkit_turn_close(stunkit_turn *t, uint64_t now_ms)
{
    if (t->state != S_ALLOCATED)
        return STUNKIT_ERR_STATE;
    if (!start(t, K_REFRESH, -1, 0, now_ms))
        return STUNKIT_ERR_NOMEM;
    t->state = S_CLOSING;
    return 0;
}

/* ---- poll ---- */

int stunkit_turn_poll(stunkit_turn *t, uint64_t now_ms, stunkit_turn_output *out)
{
    if (sk_outq_take_lost(&t->evq))
        return STUNKIT_ERR_NOBUF;
    int slot = sk_outq_pop(&t->evq);
    if (slot >= 0) {
        *out = t->events[slot];
        return 1;
    }
    if (t->state == S_START) {
        if (!start(t, K_ALLOCATE, -1, 0, now_ms)) {
            t->state = S_DONE;
            fail_event(t, 0, "cannot build the Allocate request", NULL);
            return stunkit_turn_poll(t, now_ms, out);
        }
        t->state = S_ALLOCATING;
    }
    if (t->state == S_ALLOCATED) {
        /* the allocation at 3/4 of its lifetime (7: "refresh [...] before it expires") */
        int refreshing = 0;
        for (int i = 0; i < MAX_TX; i++)
            refreshing |= t->txs[i].used && t->txs[i].kind == K_REFRESH;
        if (!refreshing && now_ms >= t->refresh_at)
            start(t, K_REFRESH, -1, t->cfg.lifetime_s ? t->cfg.lifetime_s : t->lifetime_s, now_ms);
        for (int i = 0; i < t->n_peers; i++) {
            peer_state *p = &t->peers[i];
            if (!p->perm_pending && (p->want_perm || (p->permitted && now_ms >= p->perm_refresh_at)) &&
                start(t, K_PERMIT, i, 0, now_ms)) {
                p->perm_pending = 1;
                p->want_perm = 0;
            }
            if (!p->bind_pending && (p->want_bind || (p->bound && now_ms >= p->bind_refresh_at)) &&
                start(t, K_BIND, i, 0, now_ms)) {
                p->bind_pending = 1;
                p->bind_sent = 1;
                p->want_bind = 0;
            }
        }
    }
    for (int i = 0; i < MAX_TX; i++) {
        tx *x = &t->txs[i];
        if (!x->used)
            continue;
        stunkit_txn_action a = stunkit_txn_poll(&x->txn, now_ms);
        if (a == STUNKIT_TXN_SEND) {
            memset(out, 0, sizeof(*out));
            out->send = 1;
            out->data = x->req;
            out->len = x->req_len;
            return 1;
        }
        if (a == STUNKIT_TXN_TIMEOUT) {
            x->used = 0;
            const stunkit_addr *peer = x->peer >= 0 ? &t->peers[x->peer].addr : NULL;
            if (x->peer >= 0) {
                t->peers[x->peer].perm_pending &= x->kind != K_PERMIT;
                t->peers[x->peer].bind_pending &= x->kind != K_BIND;
                if (x->kind == K_BIND && !t->peers[x->peer].bound)
                    t->peers[x->peer].bind_sent = 0;
            }
            fail_event(t, 0, "no answer from the server", peer);
            if (x->kind == K_ALLOCATE || x->kind == K_REFRESH) {
                t->state = S_DONE;
                event(t, STUNKIT_TURN_EVENT_CLOSED);
            }
            return stunkit_turn_poll(t, now_ms, out);
        }
    }
    return 0;
}

uint64_t stunkit_turn_timeout(const stunkit_turn *t)
{
    uint64_t next = STUNKIT_NEVER;
    if (sk_outq_pending(&t->evq) || t->state == S_START)
        return 0;
    for (int i = 0; i < MAX_TX; i++)
        if (t->txs[i].used) {
            uint64_t n = stunkit_txn_timeout(&t->txs[i].txn);
            if (n < next)
                next = n;
        }
    if (t->state == S_ALLOCATED) {
        if (t->refresh_at < next)
            next = t->refresh_at;
        for (int i = 0; i < t->n_peers; i++) {
            const peer_state *p = &t->peers[i];
            if (p->want_perm || p->want_bind)
                return 0;
            if (p->permitted && !p->perm_pending && p->perm_refresh_at < next)
                next = p->perm_refresh_at;
            if (p->bound && !p->bind_pending && p->bind_refresh_at < next)
                next = p->bind_refresh_at;
        }
    }
    return next;
}

/* ---- input ---- */

/*
 * RFC 8489 10: "The client looks for an ALTERNATE-SERVER attribute in the
 * error response. If one is found, then the client considers the current
 * transaction as failed and reattempts the request with the server
 * specified in the attribute, using the same transport protocol [...]. That
 * request, if authenticated, MUST utilize the same credentials". "If the
 * client has been redirected to a server to which it has already sent this
 * request within the last five minutes, it MUST ignore the redirection and
 * consider the transaction to have failed." Only an answer signed with our
 * key is followed (else anyone could send our credentials elsewhere), and
 * only to an address of the family we use. 1: followed.
 */
static int follow_alternate(stunkit_turn *t, tx *x, const stunkit_msg *m, uint64_t now)
{
    stunkit_attr a;
    stunkit_addr alt = {0};
    if (x->kind != K_ALLOCATE || sk_auth_verify(&t->auth, m) != 0)
        return 0;
    stunkit_attr_iter it;
    stunkit_attr_iter_init(&it, m, 0);
    while (!alt.family && stunkit_attr_next(&it, &a) == 1) {
        stunkit_addr c;
        if (a.type == STUNKIT_ATTR_ALTERNATE_SERVER && stunkit_attr_addr(m, &a, &c) == 0 &&
            c.family == t->cfg.server.family)
            alt = c;
    }
    if (!alt.family)
        return 0;
    if (!t->n_tried) {
        t->tried[0] = t->cfg.server;
        t->tried_at[0] = now;
        t->n_tried = 1;
    }
    for (int i = 0; i < t->n_tried; i++)
        if (stunkit_addr_equal(&t->tried[i], &alt) && now - t->tried_at[i] < 300000u)
            return 0; /* a loop */
    if (t->n_tried == MAX_REDIRECTS + 1)
        return 0;
    t->tried[t->n_tried] = alt;
    t->tried_at[t->n_tried++] = now;
    t->cfg.server = alt;
    stunkit_turn_output *o = event(t, STUNKIT_TURN_EVENT_REDIRECTED);
    o->peer = alt;
    if (stunkit_msg_find(m, STUNKIT_ATTR_ALTERNATE_DOMAIN, &a) == 0 && a.len < sizeof(o->reason)) {
        memcpy(o->reason, a.value, a.len);
        o->reason[a.len] = '\0';
    }
    x->auth_tries = 0;
    restart(t, x, now);
    return 1;
}

static void answer(stunkit_turn *t, tx *x, const stunkit_msg *m, uint64_t now)
{
    stunkit_attr a;
    peer_state *p = x->peer >= 0 ? &t->peers[x->peer] : NULL;
    if (m->klass == STUNKIT_CLASS_ERROR) {
        int code = 0;
        const uint8_t *reason = NULL;
        size_t rlen = 0;
        char text[128] = "";
        if (stunkit_msg_find(m, STUNKIT_ATTR_ERROR_CODE, &a) == 0)
            stunkit_attr_error_code(&a, &code, &reason, &rlen);
        if (reason && rlen < sizeof(text)) {
            memcpy(text, reason, rlen);
            text[rlen] = '\0';
        }
        /* RFC 8489 9.2.5: a 401 or 438 with REALM and NONCE: the same
         * request again, signed (auth_client.c bounds the retries) */
        if (sk_auth_challenge(&t->auth, m, code, &x->auth_tries)) {
            restart(t, x, now);
            return;
        }
        /* a dual Allocate the server cannot give at all (440: no IPv4
         * relay, say): the single allocation of the server's default */
        if (x->kind == K_ALLOCATE && code == 440 && t->cfg.dual && !t->dual_refused) {
            t->dual_refused = 1;
            x->auth_tries = 0;
            restart(t, x, now);
            return;
        }
        if (code == 300 && follow_alternate(t, x, m, now))
            return;
        x->used = 0;
        fail_event(t, code, text[0] ? text : NULL, p ? &p->addr : NULL);
        if (x->kind == K_ALLOCATE || (x->kind == K_REFRESH && code == 437)) {
            t->state = S_DONE;
            event(t, STUNKIT_TURN_EVENT_CLOSED);
        } else if (x->kind == K_REFRESH && t->state == S_CLOSING) {
            t->state = S_DONE;
            event(t, STUNKIT_TURN_EVENT_CLOSED);
        }
        if (p && x->kind == K_PERMIT)
            p->perm_pending = 0;
        if (p && x->kind == K_BIND) {
            p->bind_pending = 0;
            p->bind_sent = p->bound; /* refused: the server has not bound it */
        }
        return;
    }
    /* success: it must be protected with our key (RFC 8489 9.2.5) */
    if (sk_auth_verify(&t->auth, m) != 0)
        return; /* not trustworthy: keep waiting (a retransmission may bring a good one) */
    x->used = 0;
    uint32_t life = 0;
    if (stunkit_msg_find(m, STUNKIT_ATTR_LIFETIME, &a) == 0)
        stunkit_attr_u32(&a, &life);
    switch (x->kind) {
    case K_ALLOCATE: {
        stunkit_turn_output *o;
        if (stunkit_msg_find(m, STUNKIT_ATTR_XOR_RELAYED_ADDRESS, &a) != 0 ||
            stunkit_attr_addr(m, &a, &t->relayed) != 0) {
            fail_event(t, 0, "the answer has no XOR-RELAYED-ADDRESS", NULL);
            t->state = S_DONE;
            return;
        }
        stunkit_msg_mapped(m, &t->mapped);
        /* 7.2: a dual allocation's answer carries a second
         * XOR-RELAYED-ADDRESS, of the other family (or ADDRESS-ERROR-CODE:
         * the IPv6 one was not given; the IPv4 one stands) */
        stunkit_attr_iter it;
        stunkit_attr_iter_init(&it, m, 0);
        memset(&t->relayed2, 0, sizeof(t->relayed2));
        while (stunkit_attr_next(&it, &a) == 1) {
            stunkit_addr r2;
            if (a.type == STUNKIT_ATTR_XOR_RELAYED_ADDRESS && stunkit_attr_addr(m, &a, &r2) == 0 &&
                r2.family != t->relayed.family && !t->relayed2.family)
                t->relayed2 = r2;
        }
        t->lifetime_s = life ? life : 600;
        t->refresh_at = now + (uint64_t)t->lifetime_s * 750u;
        t->state = S_ALLOCATED;
        o = event(t, STUNKIT_TURN_EVENT_ALLOCATED);
        o->relayed = t->relayed;
        o->relayed2 = t->relayed2;
        o->mapped = t->mapped;
        o->lifetime_s = t->lifetime_s;
        break;
    }
    case K_REFRESH:
        if (t->state == S_CLOSING || life == 0) {
            t->state = S_DONE;
            event(t, STUNKIT_TURN_EVENT_CLOSED);
        } else {
            t->lifetime_s = life;
            t->refresh_at = now + (uint64_t)life * 750u;
            event(t, STUNKIT_TURN_EVENT_REFRESHED)->lifetime_s = life;
        }
        break;
    case K_PERMIT:
        p->perm_pending = 0;
        if (!p->permitted)
            event(t, STUNKIT_TURN_EVENT_PERMITTED)->peer = p->addr;
        p->permitted = 1;
        p->perm_refresh_at = now + PERMISSION_REFRESH_MS;
        break;
    case K_BIND: {
        p->bind_pending = 0;
        if (!p->bound) {
            stunkit_turn_output *o = event(t, STUNKIT_TURN_EVENT_BOUND);
            o->peer = p->addr;
            o->channel = p->channel;
        }
        p->bound = 1;
        p->bind_refresh_at = now + CHANNEL_REFRESH_MS;
        /* 11.2: a channel binding installs or refreshes the permission too */
        p->permitted = 1;
        p->perm_refresh_at = now + PERMISSION_REFRESH_MS;
        break;
    }
    default: break;
    }
}

int stunkit_turn_input(stunkit_turn *t, int sock, const stunkit_addr *from, const uint8_t *data, size_t len,
                       uint64_t now_ms, stunkit_app_data *d)
{
    (void)sock; /* one server: the application gives what came from it */
    (void)from;
    if (len >= 4 && data[0] >= 0x40 && data[0] <= 0x7F) {
        /* ChannelData (12.4): a channel of ours, its length within the
         * datagram. Taken from the moment our ChannelBind went out, not only
         * once its success arrived: RFC 8656 12: the server sends ChannelData
         * on a channel it has bound, so when the success is lost the peer's
         * data still comes in (it was all dropped under loss). */
        uint16_t number = sk__get16(data), dlen = sk__get16(data + 2);
        for (int i = 0; i < t->n_peers; i++)
            if ((t->peers[i].bound || t->peers[i].bind_sent) && t->peers[i].channel == number) {
                if ((size_t)dlen + 4 > len)
                    return STUNKIT_INPUT_TAKEN;
                d->from = t->peers[i].addr;
                d->data = data + 4;
                d->len = dlen;
                return STUNKIT_INPUT_APP_DATA;
            }
        return STUNKIT_INPUT_NOT_MINE;
    }
    stunkit_msg m;
    if (stunkit_msg_parse(&m, data, len) != 0 || m.rfc3489)
        return STUNKIT_INPUT_NOT_MINE;
    if (m.fp_off && stunkit_check_fingerprint(&m) != 0)
        return STUNKIT_INPUT_NOT_MINE;
    if (m.method == STUNKIT_METHOD_DATA && m.klass == STUNKIT_CLASS_INDICATION) {
        /* 10.4: a Data indication with XOR-PEER-ADDRESS and DATA */
        stunkit_attr a;
        if (stunkit_msg_find(&m, STUNKIT_ATTR_XOR_PEER_ADDRESS, &a) != 0 || stunkit_attr_addr(&m, &a, &d->from) != 0 ||
            stunkit_msg_find(&m, STUNKIT_ATTR_DATA, &a) != 0)
            return STUNKIT_INPUT_TAKEN;
        d->data = a.value;
        d->len = a.len;
        return STUNKIT_INPUT_APP_DATA;
    }
    if (m.klass != STUNKIT_CLASS_SUCCESS && m.klass != STUNKIT_CLASS_ERROR)
        return STUNKIT_INPUT_NOT_MINE;
    for (int i = 0; i < MAX_TX; i++) {
        tx *x = &t->txs[i];
        if (x->used && !memcmp(x->req + 8, m.tid, STUNKIT_TID_LEN)) {
            answer(t, x, &m, now_ms);
            return STUNKIT_INPUT_TAKEN;
        }
    }
    return STUNKIT_INPUT_NOT_MINE;
}

int stunkit_turn_send(stunkit_turn *t, const stunkit_addr *peer, const uint8_t *data, size_t len, uint8_t *out,
                      size_t cap)
{
    int i = find_peer(t, peer, 0);
    if (t->state != S_ALLOCATED)
        return STUNKIT_ERR_STATE;
    /* RFC 8656 9: "permissions are per IP address": a peer's IP permitted
     * for one port may be sent to on any (a peer behind a symmetric NAT
     * answers from a new port), by Send indication */
    if (i < 0 || (!t->peers[i].bound && !t->peers[i].permitted)) {
        int permitted_ip = 0;
        for (int k = 0; k < t->n_peers && !permitted_ip; k++)
            permitted_ip = t->peers[k].permitted && stunkit_addr_ip_equal(&t->peers[k].addr, peer);
        if (!permitted_ip)
            return STUNKIT_ERR_STATE;
        i = -1;
    }
    if (i >= 0 && t->peers[i].bound) {
        /* ChannelData (12.5): "Over TCP and TLS-over-TCP, the ChannelData
         * message MUST be padded to a multiple of four bytes [...]. The
         * padding is not reflected in the length field"; over UDP and DTLS
         * it is not needed */
        size_t total = reliable(t) ? (len + 4 + 3) & ~(size_t)3 : len + 4;
        if (len > 0xFFFF || cap < total)
            return STUNKIT_ERR_NOBUF;
        sk__put16(out, t->peers[i].channel);
        sk__put16(out + 2, (uint16_t)len);
        memcpy(out + 4, data, len);
        memset(out + 4 + len, 0, total - 4 - len);
        return (int)total;
    }
    /* a Send indication (10.1): XOR-PEER-ADDRESS and DATA; indications are
     * not authenticated */
    uint8_t tid[STUNKIT_TID_LEN];
    stunkit_writer w;
    t->cfg.env.random(t->cfg.env.random_ctx, tid, sizeof(tid));
    stunkit_writer_init(&w, out, cap, STUNKIT_METHOD_SEND, STUNKIT_CLASS_INDICATION, tid);
    stunkit_put_addr(&w, STUNKIT_ATTR_XOR_PEER_ADDRESS, peer);
    stunkit_put(&w, STUNKIT_ATTR_DATA, data, len);
    return stunkit_writer_finish(&w);
}
