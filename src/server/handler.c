/*
 * handler.c - what stunkitd answers to a request (RFC 8489 6.3, RFC 5780 6,
 * RFC 3489 8.1). The packet enters at skd_handle(); the answer is built in the
 * caller's preallocated buffer; nothing here allocates, logs or blocks.
 *
 * RFC 5780 6.1, Table 1 (Da/Dp: where the request arrived; Ca/Cp: the other
 * address and port):
 *
 *   +--------------------+----------------+-------------+---------------+
 *   | Flags              | Source Address | Source Port | OTHER-ADDRESS |
 *   +--------------------+----------------+-------------+---------------+
 *   | none               | Da             | Dp          | Ca:Cp         |
 *   | Change IP          | Ca             | Dp          | Ca:Cp         |
 *   | Change port        | Da             | Cp          | Ca:Cp         |
 *   | Change IP and port | Ca             | Cp          | Ca:Cp         |
 *   +--------------------+----------------+-------------+---------------+
 */
#include "handler.h"

#include <string.h>

/* Reads the 16-bit header length without parsing. */
static size_t header_length(const uint8_t *p)
{
    return (size_t)p[2] << 8 | p[3];
}

static int has_cookie(const uint8_t *p)
{
    return p[4] == 0x21 && p[5] == 0x12 && p[6] == 0xA4 && p[7] == 0x42;
}

static void start(stunkit_writer *w, uint8_t *out, size_t cap, const uint8_t *req, stunkit_class k)
{
    if (has_cookie(req))
        stunkit_writer_init(w, out, cap, STUNKIT_METHOD_BINDING, k, req + 8);
    else
        stunkit_writer_init_rfc3489(w, out, cap, STUNKIT_METHOD_BINDING, k, req + 4);
}

/*
 * RFC 3489 has no attribute padding: every attribute's length "MUST be a
 * multiple of 4" (11.2.11 SERVER, 11.2.9 ERROR-CODE's reason phrase), so for
 * RFC 3489 clients text is padded with spaces inside the value.
 */
static void put_text(stunkit_writer *w, uint16_t type, const char *text, size_t len, int rfc3489)
{
    char padded[768];
    if (rfc3489 && (len & 3u) && len < sizeof(padded) - 3) {
        size_t plen = (len + 3u) & ~(size_t)3u;
        memcpy(padded, text, len);
        memset(padded + len, ' ', plen - len);
        text = padded;
        len = plen;
    }
    stunkit_put(w, type, text, len);
}

static void put_software(stunkit_writer *w, const skd_handler_cfg *cfg, int rfc3489)
{
    if (cfg->software)
        put_text(w, STUNKIT_ATTR_SOFTWARE, cfg->software, cfg->software_len, rfc3489);
}

/* An error response back to the sender, from the socket it arrived on. */
/* Integrity on an answer to an authenticated request: the same MAC the
 * request used, with the same key (RFC 8489 9.1.4, 9.2.5). */
static void put_integrity(stunkit_writer *w, const skd_auth_verdict *av)
{
    if (!av || !av->key_len)
        return;
    if (av->sha256)
        stunkit_put_integrity_sha256(w, av->key, av->key_len, 0);
    else
        stunkit_put_integrity(w, av->key, av->key_len);
}

static skd_verdict finish_reply(stunkit_writer *w, const skd_request *rq, int code, skd_reply *r)
{
    int len = stunkit_writer_finish(w);
    if (len < 0)
        return SKD_DROP_MALFORMED; /* cannot happen with SKD_REPLY_MAX-sized buffers */
    r->len = (size_t)len;
    r->to = rq->src;
    r->ip_index = rq->ip_index;
    r->port_index = rq->port_index;
    r->code = code;
    r->redirect = 0;
    return SKD_REPLY;
}

/* 401 or 438 for long-term credentials: REALM, a fresh NONCE and the
 * password algorithms we offer (RFC 8489 9.2.4). */
static skd_verdict challenge_reply(const skd_handler_cfg *cfg, const skd_auth *a, const skd_request *rq, int code,
                                   int fingerprint, uint8_t *out, size_t cap, skd_reply *r)
{
    static const uint16_t algs[] = {STUNKIT_PWALG_MD5, STUNKIT_PWALG_SHA256};
    char nonce[SKD_NONCE_LEN];
    stunkit_writer w;
    start(&w, out, cap, rq->data, STUNKIT_CLASS_ERROR);
    stunkit_put_error_code(&w, code, NULL);
    stunkit_put(&w, STUNKIT_ATTR_REALM, a->realm, a->realm_len);
    skd_auth_nonce(a, &rq->src, rq->now_s, nonce);
    stunkit_put(&w, STUNKIT_ATTR_NONCE, nonce, sizeof(nonce));
    stunkit_put_password_algorithms(&w, algs, 2);
    put_software(&w, cfg, 0);
    if (fingerprint)
        stunkit_put_fingerprint(&w);
    skd_verdict v = finish_reply(&w, rq, code, r);
    r->challenge = 1;
    return v;
}

static skd_verdict error_reply_auth(const skd_handler_cfg *cfg, const skd_request *rq, int code, const char *reason,
                                    const uint16_t *unknown, size_t n_unknown, int fingerprint,
                                    const skd_auth_verdict *av, uint8_t *out, size_t cap, skd_reply *r);

static skd_verdict error_reply(const skd_handler_cfg *cfg, const skd_request *rq, int code, const char *reason,
                               const uint16_t *unknown, size_t n_unknown, int fingerprint, uint8_t *out, size_t cap,
                               skd_reply *r)
{
    return error_reply_auth(cfg, rq, code, reason, unknown, n_unknown, fingerprint, NULL, out, cap, r);
}

static skd_verdict error_reply_auth(const skd_handler_cfg *cfg, const skd_request *rq, int code, const char *reason,
                                    const uint16_t *unknown, size_t n_unknown, int fingerprint,
                                    const skd_auth_verdict *av, uint8_t *out, size_t cap, skd_reply *r)
{
    stunkit_writer w;
    int rfc3489 = !has_cookie(rq->data);
    start(&w, out, cap, rq->data, STUNKIT_CLASS_ERROR);
    if (!reason)
        reason = stunkit_code_reason(code);
    if (rfc3489) {
        /* ERROR-CODE by hand: the reason phrase padded with spaces */
        uint8_t v[4 + 64];
        size_t rlen = strlen(reason), plen = (rlen + 3u) & ~(size_t)3u;
        memset(v, 0, 4);
        v[2] = (uint8_t)(code / 100);
        v[3] = (uint8_t)(code % 100);
        memcpy(v + 4, reason, rlen);
        memset(v + 4 + rlen, ' ', plen - rlen);
        stunkit_put(&w, STUNKIT_ATTR_ERROR_CODE, v, 4 + plen);
    } else {
        stunkit_put_error_code(&w, code, reason);
    }
    if (n_unknown) {
        /* RFC 8489 14.9: UNKNOWN-ATTRIBUTES "is present within an error
         * response if the response code in the ERROR-CODE attribute is 420".
         * RFC 3489 11.2.10: "if the number of unknown attributes is an odd
         * number, one of the attributes MUST be repeated in the list". */
        uint16_t list[STUNKIT_MAX_UNKNOWN + 1];
        memcpy(list, unknown, n_unknown * sizeof(uint16_t));
        if (rfc3489 && (n_unknown & 1u))
            list[n_unknown++] = unknown[0];
        stunkit_put_unknown_attributes(&w, list, n_unknown);
    }
    put_software(&w, cfg, rfc3489);
    put_integrity(&w, av);
    if (fingerprint)
        stunkit_put_fingerprint(&w);
    return finish_reply(&w, rq, code, r);
}

skd_verdict skd_handle(const skd_handler_cfg *cfg, const skd_request *rq, uint8_t *out, size_t cap, skd_reply *r)
{
    const uint8_t *p = rq->data;
    size_t len = rq->len;
    stunkit_msg m;
    stunkit_attr a;

    memset(r, 0, sizeof(*r));
    /* RFC 7983: the first byte of STUN is 0..3. Everything else (DTLS, RTP,
     * HTTP, random bytes) gets no answer. */
    if (!stunkit_is_stun(p, len))
        return SKD_DROP_NOT_STUN;
    /* RFC 8489 6.3: "It checks that the first two bits are 0, that the magic
     * cookie field has the correct value, that the message length is
     * sensible, and that the method value is a supported method. [...] If any
     * errors are detected, the message is silently discarded." (RFC 3489
     * messages, without the cookie, are answered for compatibility.) */
    if ((header_length(p) & 3u) || STUNKIT_HEADER_LEN + header_length(p) != len)
        return SKD_DROP_MALFORMED;
    uint16_t type = (uint16_t)(p[0] << 8 | p[1]);
    if (type != stunkit_msg_type(STUNKIT_METHOD_BINDING, STUNKIT_CLASS_REQUEST)) {
        stunkit_class k = (stunkit_class)((type >> 4 & 1u) | (type >> 7 & 2u));
        return k == STUNKIT_CLASS_REQUEST ? SKD_DROP_METHOD : SKD_DROP_NOT_REQUEST;
    }

    int rv = stunkit_msg_parse(&m, p, len);
    if (rv != 0)
        /* The header is a sound Binding request, but its attributes do not
         * frame: malformed but parseable enough to answer 400. */
        return error_reply(cfg, rq, STUNKIT_CODE_BAD_REQUEST, "Malformed attributes", NULL, 0, 0, out, cap, r);
    /* "If the FINGERPRINT extension is being used, the agent checks that the
     * FINGERPRINT attribute is present and contains the correct value." A
     * wrong one means the packet is not STUN at all: discard. */
    int fingerprint = m.fp_off != 0;
    if (fingerprint && stunkit_check_fingerprint(&m) != 0)
        return SKD_DROP_MALFORMED;

    /* Authentication first (RFC 8489 6.3.1 runs the checks of section 9
     * before looking at unknown attributes). */
    skd_auth_verdict av;
    const skd_auth_verdict *authed = NULL;
    const skd_auth *auth = __atomic_load_n(&cfg->auth, __ATOMIC_ACQUIRE); /* SIGHUP swaps it */
    if (auth && auth->enabled) {
        if (m.rfc3489)
            return error_reply(cfg, rq, 401, "Authentication required", NULL, 0, 0, out, cap, r);
        if (skd_auth_check(auth, &m, &rq->src, rq->now_s, &av) != 0) {
            if (av.challenge)
                return challenge_reply(cfg, auth, rq, av.code, fingerprint, out, cap, r);
            skd_verdict v = error_reply(cfg, rq, av.code, av.reason, NULL, 0, fingerprint, out, cap, r);
            r->challenge = av.code == 401;
            return v;
        }
        authed = &av;
    }

    /* RFC 8489 6.3.1: "If the request contains one or more unknown
     * comprehension-required attributes, the server replies with an error
     * response with an error code of 420 (Unknown Attribute) and includes an
     * UNKNOWN-ATTRIBUTES attribute in the response that lists the unknown
     * comprehension-required attributes." */
    if (m.n_unknown) {
        size_t n = m.n_unknown < STUNKIT_MAX_UNKNOWN ? m.n_unknown : STUNKIT_MAX_UNKNOWN;
        return error_reply_auth(cfg, rq, STUNKIT_CODE_UNKNOWN_ATTRIBUTE, NULL, m.unknown, n, fingerprint, authed, out,
                                cap, r);
    }

    const skd_family *fam = rq->dst.family == STUNKIT_AF_INET6 ? &cfg->v6 : &cfg->v4;
    uint32_t change = 0;
    int have_rport = 0, have_padding = 0;
    uint16_t rport = 0;
    size_t padding_len = 0;

    if (stunkit_msg_find(&m, STUNKIT_ATTR_CHANGE_REQUEST, &a) == 0) {
        if (stunkit_attr_change_request(&a, &change) != 0)
            return error_reply_auth(cfg, rq, 400, "Bad CHANGE-REQUEST", NULL, 0, fingerprint, authed, out, cap, r);
        change &= STUNKIT_CHANGE_IP | STUNKIT_CHANGE_PORT;
        if (change && rq->transport != SKD_UDP)
            return error_reply_auth(cfg, rq, 400, "CHANGE-REQUEST needs UDP", NULL, 0, fingerprint, authed, out, cap, r);
        /* RFC 5780 6.1: "If the Request contains the CHANGE-REQUEST attribute
         * and the server does not have an alternate address and port as
         * described above, the server MUST generate an error response of
         * type 420." */
        if (change && !fam->rfc5780) {
            static const uint16_t cr[] = {STUNKIT_ATTR_CHANGE_REQUEST};
            return error_reply_auth(cfg, rq, 420, NULL, cr, 1, fingerprint, authed, out, cap, r);
        }
    }
    if (stunkit_msg_find(&m, STUNKIT_ATTR_RESPONSE_PORT, &a) == 0) {
        if (stunkit_attr_response_port(&a, &rport) != 0 || rport == 0)
            return error_reply_auth(cfg, rq, 400, "Bad RESPONSE-PORT", NULL, 0, fingerprint, authed, out, cap, r);
        if (rq->transport != SKD_UDP)
            return error_reply_auth(cfg, rq, 400, "RESPONSE-PORT needs UDP", NULL, 0, fingerprint, authed, out, cap, r);
        have_rport = 1;
    }
    if (stunkit_msg_find(&m, STUNKIT_ATTR_PADDING, &a) == 0) {
        have_padding = 1;
        /* RFC 5780 7.5: "The server MUST NOT process a request containing a
         * RESPONSE-PORT and a PADDING attribute." and 6.1: "If the Request
         * also contains the RESPONSE-PORT attribute the server MUST return an
         * error response of type 400." */
        if (have_rport)
            return error_reply_auth(cfg, rq, 400, "PADDING with RESPONSE-PORT", NULL, 0, fingerprint, authed, out, cap, r);
    }
    /* RESPONSE-ADDRESS (RFC 3489) is parsed and never honoured: it would let
     * anyone aim our answers at a third party. */

    int out_ip = rq->ip_index ^ ((change & STUNKIT_CHANGE_IP) ? 1 : 0);
    int out_port = rq->port_index ^ ((change & STUNKIT_CHANGE_PORT) ? 1 : 0);
    stunkit_addr origin = fam->advertise[out_ip], other = fam->advertise[rq->ip_index ^ 1];
    origin.port = fam->port[out_port];
    other.port = fam->port[rq->port_index ^ 1];
    if (!fam->rfc5780) {
        origin = rq->dst; /* basic mode: the address the client reached */
        if (fam->advertise[0].family)
            memcpy(origin.ip, fam->advertise[0].ip, sizeof(origin.ip));
    }

    stunkit_writer w;
    start(&w, out, cap, p, STUNKIT_CLASS_SUCCESS);
    if (m.rfc3489) {
        /* RFC 3489 8.1: the response "MUST contain a MAPPED-ADDRESS", a
         * SOURCE-ADDRESS and a CHANGED-ADDRESS. CHANGED-ADDRESS is only
         * truthful with an alternate address, so basic mode leaves it out. */
        stunkit_put_addr(&w, STUNKIT_ATTR_MAPPED_ADDRESS, &rq->src);
        stunkit_put_addr(&w, STUNKIT_ATTR_SOURCE_ADDRESS, &origin);
        if (fam->rfc5780)
            stunkit_put_addr(&w, STUNKIT_ATTR_CHANGED_ADDRESS, &other);
    } else {
        stunkit_put_addr(&w, STUNKIT_ATTR_XOR_MAPPED_ADDRESS, &rq->src);
        if (fam->rfc5780) {
            /* RFC 5780 6.1: "The server MUST include both MAPPED-ADDRESS and
             * XOR-MAPPED-ADDRESS in its Response." "The server MUST add a
             * RESPONSE-ORIGIN attribute" and "MUST add an OTHER-ADDRESS". */
            stunkit_put_addr(&w, STUNKIT_ATTR_MAPPED_ADDRESS, &rq->src);
            stunkit_put_addr(&w, STUNKIT_ATTR_RESPONSE_ORIGIN, &origin);
            stunkit_put_addr(&w, STUNKIT_ATTR_OTHER_ADDRESS, &other);
        }
    }
    put_software(&w, cfg, m.rfc3489);
    if (have_padding) {
        /* RFC 5780 6.1: "If the Request contained a PADDING attribute,
         * PADDING MUST be included in the Binding Response. The server SHOULD
         * use a length of PADDING equal to the MTU on the outgoing
         * interface". We pad the answer to the size of the request instead
         * (the client pads its request to its MTU, RFC 5780 5): the fragment
         * test still works and the server never amplifies. */
        size_t used = w.len + 4 + (fingerprint ? 8 : 0) + (authed ? (authed->sha256 ? 36 : 24) : 0);
        size_t target = len < cap ? len : cap;
        padding_len = target > used ? (target - used) & ~(size_t)3 : 0;
        stunkit_put(&w, STUNKIT_ATTR_PADDING, NULL, padding_len);
    }
    put_integrity(&w, authed);
    /* RFC 8489 7.3: FINGERPRINT in the answer when the request had one (a
     * sign the client multiplexes STUN with other traffic). */
    if (fingerprint)
        stunkit_put_fingerprint(&w);
    int n = stunkit_writer_finish(&w);
    if (n < 0)
        return SKD_DROP_MALFORMED;
    r->len = (size_t)n;
    r->to = rq->src;
    if (have_rport)
        r->to.port = rport;
    r->ip_index = out_ip;
    r->port_index = out_port;
    r->code = 0;
    r->redirect = change != 0 || have_rport;
    return SKD_REPLY;
}
