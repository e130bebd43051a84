/*
 * serve.c - skd_serve(), the one place every request passes, whatever the
 * transport it came by (worker_udp.c, worker_stream.c, worker_dtls.c):
 * rate limit, then skd_handle() (handler.c parses and answers), then the
 * counters. And skd_send_relayed(): a TURN datagram for a peer that a
 * stream or DTLS request produced, sent from its relay socket at once.
 */
#define _GNU_SOURCE
#include <sys/socket.h>

#include "worker_int.h"

static void count_verdict(skd_stats *st, skd_verdict v)
{
    switch (v) {
    case SKD_DROP_NOT_STUN: SKD_STAT_INC(st, drop_not_stun); break;
    case SKD_DROP_MALFORMED: SKD_STAT_INC(st, drop_malformed); break;
    case SKD_DROP_NOT_REQUEST: SKD_STAT_INC(st, drop_not_request); break;
    case SKD_DROP_METHOD: SKD_STAT_INC(st, drop_method); break;
    case SKD_DROP_NOBUF: SKD_STAT_INC(st, send_errors); break;
    default: break;
    }
}

static void count_answer(skd_stats *st, const skd_out *o)
{
    switch (o->code) {
    case 0: SKD_STAT_INC(st, success); break;
    case 300: SKD_STAT_INC(st, err_300); break;
    case 400: SKD_STAT_INC(st, err_400); break;
    case 401: SKD_STAT_INC(st, err_401); break;
    case 403: SKD_STAT_INC(st, err_403); break;
    case 420: SKD_STAT_INC(st, err_420); break;
    case 437: SKD_STAT_INC(st, err_437); break;
    case 438: SKD_STAT_INC(st, err_438); break;
    case 440: SKD_STAT_INC(st, err_440); break;
    case 441: SKD_STAT_INC(st, err_441); break;
    case 442: SKD_STAT_INC(st, err_442); break;
    case 443: SKD_STAT_INC(st, err_443); break;
    case 486: SKD_STAT_INC(st, err_486); break;
    case 487: SKD_STAT_INC(st, err_487); break;
    case 500: SKD_STAT_INC(st, err_500); break;
    case 508: SKD_STAT_INC(st, err_508); break;
    default: SKD_STAT_INC(st, err_other); break;
    }
    if (o->flags & SKD_OUT_REDIRECT)
        SKD_STAT_INC(st, redirected);
}

/* 1 when a STUN message ends with MESSAGE-INTEGRITY or MESSAGE-INTEGRITY-
 * SHA256 (each may be followed only by FINGERPRINT, and MESSAGE-INTEGRITY by
 * MESSAGE-INTEGRITY-SHA256: RFC 8489 14.5, 14.6, 14.7): a look at a few
 * fixed offsets from the end, no walk over the attributes, since it runs
 * before any budget. */
static int attr_at(const uint8_t *p, size_t off, unsigned type, size_t len)
{
    return ((unsigned)p[off] << 8 | p[off + 1]) == type && ((size_t)p[off + 2] << 8 | p[off + 3]) == len;
}

static int signed_request(const uint8_t *p, size_t len)
{
    size_t end = len;
    if (end >= STUNKIT_HEADER_LEN + 8 && attr_at(p, end - 8, STUNKIT_ATTR_FINGERPRINT, 4))
        end -= 8;
    for (size_t l = 16; l <= 32; l += 4) /* MESSAGE-INTEGRITY-SHA256: 16 to 32 bytes */
        if (end >= STUNKIT_HEADER_LEN + 4 + l && attr_at(p, end - 4 - l, STUNKIT_ATTR_MESSAGE_INTEGRITY_SHA256, l))
            return 1;
    return end >= STUNKIT_HEADER_LEN + 24 && attr_at(p, end - 24, STUNKIT_ATTR_MESSAGE_INTEGRITY, 20);
}

size_t skd_serve(skd_worker *w, const skd_request *rq, skd_outbox *ob, uint64_t now)
{
    /* TURN data from an allocation's client (ChannelData, Send indications)
     * is relayed traffic, not requests: the allocation's own checks apply,
     * not the request budget. */
    if (rq->turn) {
        size_t before = ob->n;
        if (skd_turn_from_client(rq->turn, rq, ob))
            return ob->n - before;
    }
    /* The general budget first, before any parsing or HMAC: a flood costs
     * a table lookup per datagram and nothing more. Only things that look
     * like STUN draw on it (RFC 7983's first byte), so other protocols on a
     * shared port cannot spend a client's budget. */
    if (rq->len < STUNKIT_HEADER_LEN || rq->data[0] > 3) {
        SKD_STAT_INC(w->st, drop_not_stun);
        return 0;
    }
    /* A request that carries MESSAGE-INTEGRITY is charged after the
     * credential check: to a budget of its own when it passed (a forger who
     * sends from a client's address cannot drain what that client's signed
     * requests draw on), to the general one when it did not. The price is
     * one HMAC per such request before any budget. */
    const skd_auth *auth = __atomic_load_n(&w->srv->hcfg.auth, __ATOMIC_ACQUIRE);
    int is_signed = auth && auth->enabled && signed_request(rq->data, rq->len);
    if (!is_signed && !skd_ratelimit_take(&w->rl, &rq->src, now, 0)) {
        SKD_STAT_INC(w->st, drop_rate);
        return 0;
    }
    size_t before = ob->n, used = ob->used;
    ob->authenticated = 0;
    skd_verdict v = skd_handle(&w->srv->hcfg, rq, ob);
    if (is_signed && !(ob->authenticated ? skd_ratelimit_take_auth(&w->rl, &rq->src, now)
                                         : skd_ratelimit_take(&w->rl, &rq->src, now, 0))) {
        SKD_STAT_INC(w->st, drop_rate);
        ob->n = before;
        ob->used = used;
        return 0;
    }
    if (v != SKD_ANSWERED) {
        count_verdict(w->st, v);
        ob->n = before;
        ob->used = used;
        return 0;
    }
    /* Answers sent elsewhere, unauthenticated challenges and any answer
     * more than twice the request's size also need the strict budget. */
    int strict = 0;
    for (size_t k = before; k < ob->n; k++)
        if ((ob->out[k].flags & (SKD_OUT_REDIRECT | SKD_OUT_CHALLENGE)) || ob->out[k].len > 2 * rq->len)
            strict = 1;
    if (strict && !skd_ratelimit_take_strict(&w->rl, &rq->src, now)) {
        SKD_STAT_INC(w->st, drop_rate_redirect);
        ob->n = before;
        ob->used = used;
        return 0;
    }
    for (size_t k = before; k < ob->n; k++)
        count_answer(w->st, &ob->out[k]);
    if (rq->data[4] != 0x21 || rq->data[5] != 0x12 || rq->data[6] != 0xA4 || rq->data[7] != 0x42)
        SKD_STAT_INC(w->st, rfc3489);
    return ob->n - before;
}

/* A TURN datagram for a peer produced by a stream or DTLS request: sent
 * from its relay socket at once (the UDP path batches them instead). */
void skd_send_relayed(skd_worker *w, const skd_out *o)
{
    struct sockaddr_storage ss;
    int sl = stunkit_addr_to_sockaddr(&o->to, &ss);
    if (sendto(o->relay_fd, o->data, o->len, MSG_DONTWAIT, (struct sockaddr *)&ss, (socklen_t)sl) < 0)
        SKD_STAT_INC(w->st, send_errors);
}
