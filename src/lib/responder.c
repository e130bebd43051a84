/*
 * responder.c - Binding answers (RFC 8489 6.3, RFC 5780 6.1, RFC 3489 8.1)
 * and the short-term-credential responder an ICE agent runs on its sockets
 * (RFC 8445 7.3, RFC 8489 9.1.3). See stunkit/responder.h.
 */
#include <string.h>

#include "cursor.h"
#include "stunkit/error.h"
#include "stunkit/integrity.h"
#include "stunkit/responder.h"

static int has_cookie(const uint8_t *p)
{
    return sk__get32(p + 4) == STUNKIT_MAGIC_COOKIE;
}

static uint16_t method_of(const uint8_t *p)
{
    uint16_t type = (uint16_t)(sk__get16(p) & 0x3FFFu);
    return (uint16_t)((type & 0x000Fu) | ((type & 0x00E0u) >> 1) | ((type & 0x3E00u) >> 2));
}

static void start(stunkit_writer *w, uint8_t *out, size_t cap, const uint8_t *req, stunkit_class k)
{
    if (has_cookie(req))
        stunkit_writer_init(w, out, cap, method_of(req), k, req + 8);
    else
        stunkit_writer_init_rfc3489(w, out, cap, method_of(req), k, req + 4);
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

/* SOFTWARE, integrity and FINGERPRINT: the tail every answer shares. */
static int finish(stunkit_writer *w, const stunkit_answer *a, int rfc3489, size_t pad_to)
{
    if (a && a->software)
        put_text(w, STUNKIT_ATTR_SOFTWARE, a->software, a->software_len, rfc3489);
    if (pad_to) {
        size_t tail = 4u + (a->key ? (a->sha256 ? 36u : 24u) : 0u) + (a->fingerprint ? 8u : 0u);
        size_t used = w->len + tail;
        stunkit_put(w, STUNKIT_ATTR_PADDING, NULL, pad_to > used ? (pad_to - used) & ~(size_t)3 : 0);
    }
    /* RFC 8489 9.1.4 / 9.2.5: the answer to an authenticated request is
     * protected with the same key and the same algorithm. */
    if (a && a->key) {
        if (a->sha256)
            stunkit_put_integrity_sha256(w, a->key, a->key_len, 0);
        else
            stunkit_put_integrity(w, a->key, a->key_len);
    }
    /* RFC 8489 7.3: FINGERPRINT in the answer when the request had one. */
    if (a && a->fingerprint)
        stunkit_put_fingerprint(w);
    return stunkit_writer_finish(w);
}

int stunkit_answer_success(const uint8_t *req, const stunkit_addr *mapped, const stunkit_answer *a, uint8_t *out,
                           size_t cap)
{
    static const stunkit_answer none;
    stunkit_writer w;
    int rfc3489 = !has_cookie(req);
    if (!a)
        a = &none;
    start(&w, out, cap, req, STUNKIT_CLASS_SUCCESS);
    if (rfc3489) {
        /* RFC 3489 8.1: the response "MUST contain a MAPPED-ADDRESS", a
         * SOURCE-ADDRESS and a CHANGED-ADDRESS (the caller leaves the latter
         * out when it has no alternate address: it would be untrue). */
        stunkit_put_addr(&w, STUNKIT_ATTR_MAPPED_ADDRESS, mapped);
        if (a->response_origin)
            stunkit_put_addr(&w, STUNKIT_ATTR_SOURCE_ADDRESS, a->response_origin);
        if (a->other_address)
            stunkit_put_addr(&w, STUNKIT_ATTR_CHANGED_ADDRESS, a->other_address);
    } else {
        stunkit_put_addr(&w, STUNKIT_ATTR_XOR_MAPPED_ADDRESS, mapped);
        if (a->plain_mapped)
            stunkit_put_addr(&w, STUNKIT_ATTR_MAPPED_ADDRESS, mapped);
        if (a->response_origin)
            stunkit_put_addr(&w, STUNKIT_ATTR_RESPONSE_ORIGIN, a->response_origin);
        if (a->other_address)
            stunkit_put_addr(&w, STUNKIT_ATTR_OTHER_ADDRESS, a->other_address);
    }
    return finish(&w, a, rfc3489, a->pad_to);
}

int stunkit_answer_error(const uint8_t *req, int code, const char *reason, const uint16_t *unknown, size_t n_unknown,
                         const stunkit_answer *a, uint8_t *out, size_t cap)
{
    stunkit_writer w;
    int rfc3489 = !has_cookie(req);
    if (code < 300 || code > 699 || n_unknown > STUNKIT_MAX_UNKNOWN)
        return STUNKIT_ERR_INVAL;
    start(&w, out, cap, req, STUNKIT_CLASS_ERROR);
    if (!reason)
        reason = stunkit_code_reason(code);
    if (!reason)
        reason = "";
    if (rfc3489) {
        /* ERROR-CODE by hand: the reason phrase padded with spaces */
        uint8_t v[4 + 128];
        size_t rlen = strlen(reason);
        if (rlen > 124)
            rlen = 124;
        size_t plen = (rlen + 3u) & ~(size_t)3u;
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
    return finish(&w, a, rfc3489, 0);
}

/* ---- the agent's responder ---- */

static int answer_error(const stunkit_responder *r, const stunkit_msg *m, int code, const uint8_t *key, size_t klen,
                        uint8_t *out, size_t cap, stunkit_request_info *info)
{
    stunkit_answer a;
    memset(&a, 0, sizeof(a));
    a.software = r->software;
    a.software_len = r->software_len;
    a.key = key;
    a.key_len = klen;
    a.sha256 = key && m->mi256_off != 0;
    a.fingerprint = m->fp_off != 0;
    info->code = code;
    return stunkit_answer_error(m->data, code, NULL, code == 420 ? m->unknown : NULL,
                                code == 420 ? (m->n_unknown < STUNKIT_MAX_UNKNOWN ? m->n_unknown : STUNKIT_MAX_UNKNOWN)
                                            : 0,
                                &a, out, cap);
}

static int answer(const stunkit_responder *r, const uint8_t *data, size_t len, const stunkit_addr *src,
                  uint8_t *out, size_t cap, stunkit_request_info *info)
{
    stunkit_msg m;
    stunkit_attr at;
    memset(info, 0, sizeof(*info));
    if (!stunkit_is_stun(data, len))
        return STUNKIT_ERR_NOT_STUN;
    if (stunkit_msg_parse(&m, data, len) != 0)
        return STUNKIT_ERR_NOT_STUN; /* RFC 7983 demultiplexing says STUN, the codec says no */
    if (m.rfc3489 || m.method != STUNKIT_METHOD_BINDING || m.klass != STUNKIT_CLASS_REQUEST)
        return STUNKIT_ERR_UNEXPECTED;
    memcpy(info->tid, m.tid, STUNKIT_TID_LEN);
    /* RFC 8489 7.3: "If the FINGERPRINT extension is being used, the agent
     * checks that the FINGERPRINT attribute is present and contains the
     * correct value." A wrong one: not STUN, drop. */
    if (m.fp_off && stunkit_check_fingerprint(&m) != 0)
        return 0;

    uint8_t key[STUNKIT_KEY_MAX];
    int klen = 0;
    if (r->password) {
        /* RFC 8489 9.1.3: "If the message does not contain 1) a
         * MESSAGE-INTEGRITY or a MESSAGE-INTEGRITY-SHA256 attribute and 2) a
         * USERNAME attribute: [...] MUST use an error code of 400". */
        if ((!m.mi_off && !m.mi256_off) || stunkit_msg_find(&m, STUNKIT_ATTR_USERNAME, &at) != 0)
            return answer_error(r, &m, 400, NULL, 0, out, cap, info);
        /* RFC 8445 7.3: the username "MUST" be ours followed by a colon; "If
         * the USERNAME does not contain a username value currently valid
         * within the server: [...] MUST use an error code of 401". */
        if (r->local_ufrag && (at.len <= r->local_ufrag_len || memcmp(at.value, r->local_ufrag, r->local_ufrag_len) ||
                               at.value[r->local_ufrag_len] != ':'))
            return answer_error(r, &m, 401, NULL, 0, out, cap, info);
        klen = stunkit_key_short_term(r->password, r->password_len, key, sizeof(key));
        if (klen < 0)
            return klen;
        int bad = m.mi256_off ? stunkit_check_integrity_sha256(&m, key, (size_t)klen)
                              : stunkit_check_integrity(&m, key, (size_t)klen);
        /* "If the resulting value does not match [...] MUST use an error
         * code of 401" */
        if (bad)
            return answer_error(r, &m, 401, NULL, 0, out, cap, info);
        if (r->local_ufrag) {
            info->remote_ufrag = at.value + r->local_ufrag_len + 1;
            info->remote_ufrag_len = at.len - r->local_ufrag_len - 1;
        }
    }
    /* RFC 8489 6.3.1: unknown comprehension-required attributes: 420 */
    if (m.n_unknown)
        return answer_error(r, &m, 420, klen > 0 ? key : NULL, (size_t)(klen > 0 ? klen : 0), out, cap, info);

    if (stunkit_msg_find(&m, STUNKIT_ATTR_PRIORITY, &at) == 0 && stunkit_attr_u32(&at, &info->priority) != 0)
        return answer_error(r, &m, 400, klen > 0 ? key : NULL, (size_t)(klen > 0 ? klen : 0), out, cap, info);
    info->use_candidate = stunkit_msg_find(&m, STUNKIT_ATTR_USE_CANDIDATE, &at) == 0;
    if (stunkit_msg_find(&m, STUNKIT_ATTR_NOMINATION, &at) == 0 && stunkit_attr_u32(&at, &info->nomination) != 0)
        return answer_error(r, &m, 400, klen > 0 ? key : NULL, (size_t)(klen > 0 ? klen : 0), out, cap, info);
    if (stunkit_msg_find(&m, STUNKIT_ATTR_ICE_CONTROLLING, &at) == 0) {
        info->controlling = 1;
        if (stunkit_attr_u64(&at, &info->tiebreaker) != 0)
            return answer_error(r, &m, 400, klen > 0 ? key : NULL, (size_t)(klen > 0 ? klen : 0), out, cap, info);
    }
    if (stunkit_msg_find(&m, STUNKIT_ATTR_ICE_CONTROLLED, &at) == 0) {
        info->controlled = 1;
        if (stunkit_attr_u64(&at, &info->tiebreaker) != 0)
            return answer_error(r, &m, 400, klen > 0 ? key : NULL, (size_t)(klen > 0 ? klen : 0), out, cap, info);
    }

    stunkit_answer a;
    memset(&a, 0, sizeof(a));
    a.software = r->software;
    a.software_len = r->software_len;
    if (klen > 0) {
        a.key = key;
        a.key_len = (size_t)klen;
        a.sha256 = m.mi256_off != 0;
    }
    a.fingerprint = m.fp_off != 0;
    return stunkit_answer_success(data, src, &a, out, cap);
}

int stunkit_responder_input(const stunkit_responder *r, const stunkit_addr *from, const uint8_t *data, size_t len,
                            uint8_t *out, size_t cap, size_t *out_len, stunkit_request_info *info)
{
    *out_len = 0;
    int n = answer(r, data, len, from, out, cap, info);
    if (n == STUNKIT_ERR_NOT_STUN || n == STUNKIT_ERR_UNEXPECTED)
        return STUNKIT_INPUT_NOT_MINE;
    if (n < 0)
        return n;
    *out_len = (size_t)n;
    return STUNKIT_INPUT_TAKEN;
}
