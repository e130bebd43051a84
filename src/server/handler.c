/*
 * handler.c - where every STUN message the server received is checked and
 * dispatched (RFC 8489 6.3). The packet enters at skd_handle(); each method
 * in the table below appends its datagrams to the caller's outbox; nothing
 * here allocates, logs or blocks.
 *
 *   not STUN (RFC 7983 first byte)       -> SKD_DROP_NOT_STUN
 *   header length/padding wrong          -> SKD_DROP_MALFORMED
 *   not a request / unknown method       -> SKD_DROP_NOT_REQUEST / _METHOD
 *   attributes do not frame              -> 400
 *   FINGERPRINT wrong                    -> SKD_DROP_MALFORMED
 *   credentials (auth.c)                 -> 400 / 401 / 438
 *   unknown comprehension-required attrs -> 420
 *   the method                           -> binding.c, turn_relay.c, rooms.c
 */
#include "handler.h"
#include "revoked.h"

#include <string.h>

#include "methods.h"
#include "rooms.h"
#include "turn_relay.h"

void skd_outbox_init(skd_outbox *ob, uint8_t *buf, size_t cap, skd_out *slots, size_t max)
{
    ob->buf = buf;
    ob->cap = cap;
    ob->out = slots;
    ob->max = max;
    skd_outbox_clear(ob);
}

uint8_t *skd_outbox_room(skd_outbox *ob, size_t *room)
{
    if (ob->n == ob->max) {
        *room = 0;
        return NULL;
    }
    *room = ob->cap - ob->used;
    return ob->buf + ob->used;
}

skd_out *skd_outbox_commit(skd_outbox *ob, int len, const stunkit_addr *to, int ip_index, int port_index, int code,
                           unsigned flags)
{
    if (len <= 0 || ob->n == ob->max || (size_t)len > ob->cap - ob->used)
        return NULL;
    skd_out *o = &ob->out[ob->n++];
    o->data = ob->buf + ob->used;
    o->len = (size_t)len;
    o->to = *to;
    o->ip_index = ip_index;
    o->port_index = port_index;
    o->code = code;
    o->flags = flags;
    o->relay_fd = -1;
    ob->used += ((size_t)len + 7u) & ~(size_t)7u;
    if (ob->used > ob->cap)
        ob->used = ob->cap;
    return o;
}

void skd_answer_defaults(const skd_handler_cfg *cfg, const stunkit_msg *m, const skd_auth_verdict *av,
                         stunkit_answer *a)
{
    memset(a, 0, sizeof(*a));
    a->software = cfg->software;
    a->software_len = cfg->software_len;
    a->fingerprint = m && m->fp_off != 0;
    if (av && av->key_len) {
        a->key = av->key;
        a->key_len = av->key_len;
        a->sha256 = av->sha256;
    }
}

skd_verdict skd_answer_finish(const skd_handler_cfg *cfg, const skd_request *rq, const stunkit_msg *m,
                              const skd_auth_verdict *authed, stunkit_writer *w, skd_outbox *ob)
{
    if (cfg->software)
        stunkit_put(w, STUNKIT_ATTR_SOFTWARE, cfg->software, cfg->software_len);
    if (authed && authed->key_len) {
        if (authed->sha256)
            stunkit_put_integrity_sha256(w, authed->key, authed->key_len, 0);
        else
            stunkit_put_integrity(w, authed->key, authed->key_len);
    }
    if (m->fp_off)
        stunkit_put_fingerprint(w);
    if (!skd_outbox_commit(ob, stunkit_writer_finish(w), &rq->src, rq->ip_index, rq->port_index, 0, 0))
        return SKD_DROP_NOBUF;
    return SKD_ANSWERED;
}

skd_verdict skd_reply_error(const skd_handler_cfg *cfg, const skd_request *rq, const stunkit_msg *m,
                            const skd_auth_verdict *av, int code, const char *reason, const uint16_t *unknown,
                            size_t n_unknown, skd_outbox *ob)
{
    stunkit_answer a;
    size_t room;
    skd_answer_defaults(cfg, m, av, &a);
    uint8_t *out = skd_outbox_room(ob, &room);
    if (!out)
        return SKD_DROP_NOBUF;
    int len = stunkit_answer_error(rq->data, code, reason, unknown, n_unknown, &a, out, room);
    if (!skd_outbox_commit(ob, len, &rq->src, rq->ip_index, rq->port_index, code, 0))
        return SKD_DROP_NOBUF;
    return SKD_ANSWERED;
}

/* 401 or 438 for long-term credentials: REALM, a fresh NONCE and the
 * password algorithms we offer (RFC 8489 9.2.4). */
static skd_verdict challenge(const skd_handler_cfg *cfg, const skd_auth *auth, const skd_request *rq,
                             const stunkit_msg *m, int code, skd_outbox *ob)
{
    static const uint16_t algs[] = {STUNKIT_PWALG_MD5, STUNKIT_PWALG_SHA256};
    char nonce[SKD_NONCE_LEN];
    stunkit_writer w;
    size_t room;
    uint8_t *out = skd_outbox_room(ob, &room);
    if (!out)
        return SKD_DROP_NOBUF;
    stunkit_writer_init(&w, out, room, m->method, STUNKIT_CLASS_ERROR, m->tid);
    stunkit_put_error_code(&w, code, NULL);
    stunkit_put(&w, STUNKIT_ATTR_REALM, auth->realm, auth->realm_len);
    skd_auth_nonce(auth, &rq->src, rq->now_s, nonce);
    stunkit_put(&w, STUNKIT_ATTR_NONCE, nonce, sizeof(nonce));
    stunkit_put_password_algorithms(&w, algs, 2);
    if (cfg->software)
        stunkit_put(&w, STUNKIT_ATTR_SOFTWARE, cfg->software, cfg->software_len);
    if (m->fp_off)
        stunkit_put_fingerprint(&w);
    if (!skd_outbox_commit(ob, stunkit_writer_finish(&w), &rq->src, rq->ip_index, rq->port_index, code,
                           SKD_OUT_CHALLENGE))
        return SKD_DROP_NOBUF;
    return SKD_ANSWERED;
}

/* The methods served: a row per method; TURN's and the rendezvous only
 * where they are on. */
static const skd_method methods[] = {
    {STUNKIT_METHOD_BINDING, skd_binding, SKD_ALWAYS},
    {STUNKIT_METHOD_ALLOCATE, skd_turn_allocate, SKD_WITH_TURN},
    {STUNKIT_METHOD_REFRESH, skd_turn_refresh, SKD_WITH_TURN},
    {STUNKIT_METHOD_CREATE_PERMISSION, skd_turn_create_permission, SKD_WITH_TURN},
    {STUNKIT_METHOD_CHANNEL_BIND, skd_turn_channel_bind, SKD_WITH_TURN},
    {STUNKIT_METHOD_RENDEZVOUS, skd_rendezvous, SKD_WITH_RENDEZVOUS},
};

static const skd_method *find_method(uint16_t method, int turn, int rendezvous)
{
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
        if (methods[i].method == method &&
            (methods[i].when == SKD_ALWAYS || (methods[i].when == SKD_WITH_TURN && turn) ||
             (methods[i].when == SKD_WITH_RENDEZVOUS && rendezvous)))
            return &methods[i];
    return NULL;
}

skd_verdict skd_handle(const skd_handler_cfg *cfg, const skd_request *rq, skd_outbox *ob)
{
    const uint8_t *p = rq->data;
    size_t len = rq->len;
    stunkit_msg m;

    /* RFC 7983: the first byte of STUN is 0..3. Everything else (DTLS, RTP,
     * HTTP, random bytes) gets no answer. */
    if (!stunkit_is_stun(p, len))
        return SKD_DROP_NOT_STUN;
    /* RFC 8489 6.3: "It checks that the first two bits are 0, that the magic
     * cookie field has the correct value, that the message length is
     * sensible, and that the method value is a supported method. [...] If any
     * errors are detected, the message is silently discarded." (RFC 3489
     * messages, without the cookie, are answered for compatibility.) */
    size_t hlen = (size_t)p[2] << 8 | p[3];
    if ((hlen & 3u) || STUNKIT_HEADER_LEN + hlen != len)
        return SKD_DROP_MALFORMED;
    uint16_t type = (uint16_t)(p[0] << 8 | p[1]);
    stunkit_class k = (stunkit_class)((type >> 4 & 1u) | (type >> 7 & 2u));
    uint16_t method = (uint16_t)((type & 0x000Fu) | ((type & 0x00E0u) >> 1) | ((type & 0x3E00u) >> 2));
    const skd_method *mt = find_method(method, rq->turn != NULL, cfg->rdv != NULL);
    if (k != STUNKIT_CLASS_REQUEST)
        return SKD_DROP_NOT_REQUEST;
    if (!mt)
        return SKD_DROP_METHOD;

    if (stunkit_msg_parse(&m, p, len) != 0)
        /* The header is a sound request, but its attributes do not frame:
         * malformed but parseable enough to answer 400. */
        return skd_reply_error(cfg, rq, NULL, NULL, STUNKIT_CODE_BAD_REQUEST, "Malformed attributes", NULL, 0, ob);
    /* "If the FINGERPRINT extension is being used, the agent checks that the
     * FINGERPRINT attribute is present and contains the correct value." A
     * wrong one means the packet is not STUN at all: discard. */
    if (m.fp_off && stunkit_check_fingerprint(&m) != 0)
        return SKD_DROP_MALFORMED;

    /* Authentication first (RFC 8489 6.3.1 runs the checks of section 9
     * before looking at unknown attributes). */
    skd_auth_verdict av;
    const skd_auth_verdict *authed = NULL;
    const skd_auth *auth = __atomic_load_n(&cfg->auth, __ATOMIC_ACQUIRE); /* SIGHUP swaps it */
    /* RFC 8656 5: TURN "MUST" use long-term credentials; stunkitd refuses
     * --turn without them (config.c), so auth is on whenever TURN is. */
    /* A TURN server answers a plain Binding request (no MESSAGE-INTEGRITY)
     * without credentials unless told otherwise (--secure-stun): RFC 8656
     * asks long-term credentials of TURN's methods, and agents given the
     * server as a stun: URL (libnice, aioice, browsers) send none. A signed
     * Binding request still has its credentials checked. */
    int plain_binding = cfg->open_binding && method == STUNKIT_METHOD_BINDING && !m.mi_off && !m.mi256_off;
    if (auth && auth->enabled && !plain_binding) {
        if (m.rfc3489) {
            skd_verdict v = skd_reply_error(cfg, rq, &m, NULL, 401, "Authentication required", NULL, 0, ob);
            if (v == SKD_ANSWERED)
                ob->out[ob->n - 1].flags |= SKD_OUT_CHALLENGE;
            return v;
        }
        if (skd_auth_check(auth, &m, &rq->src, rq->now_s, &av) != 0) {
            if (av.challenge)
                return challenge(cfg, auth, rq, &m, av.code, ob);
            skd_verdict v = skd_reply_error(cfg, rq, &m, NULL, av.code, av.reason, NULL, 0, ob);
            if (v == SKD_ANSWERED && av.code == 401)
                ob->out[ob->n - 1].flags |= SKD_OUT_CHALLENGE;
            return v;
        }
        /* revoked through the control socket: refused as a wrong password
         * is (the same 401 and a fresh challenge) */
        if (cfg->revoked && av.user_len && skd_revoked_has(cfg->revoked, av.user, av.user_len))
            return auth->short_term ? skd_reply_error(cfg, rq, &m, NULL, 401, "Integrity check failed", NULL, 0, ob)
                                    : challenge(cfg, auth, rq, &m, 401, ob);
        authed = &av;
        ob->authenticated = 1;
    }

    /* RFC 8489 6.3.1: "If the request contains one or more unknown
     * comprehension-required attributes, the server replies with an error
     * response with an error code of 420 (Unknown Attribute) and includes an
     * UNKNOWN-ATTRIBUTES attribute in the response that lists the unknown
     * comprehension-required attributes." */
    if (m.n_unknown) {
        size_t n = m.n_unknown < STUNKIT_MAX_UNKNOWN ? m.n_unknown : STUNKIT_MAX_UNKNOWN;
        return skd_reply_error(cfg, rq, &m, authed, STUNKIT_CODE_UNKNOWN_ATTRIBUTE, NULL, m.unknown, n, ob);
    }
    return mt->fn(cfg, rq, &m, authed, ob);
}
