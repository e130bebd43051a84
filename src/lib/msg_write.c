/*
 * msg_write.c - encoding STUN messages into a caller's buffer.
 *
 * Every put computes the space it needs first and fails with
 * STUNKIT_ERR_NOBUF, leaving the buffer as it was, when it is short. The
 * header's length field is kept current, so a message can be sent after any
 * successful put. The first error is sticky (stunkit_writer_finish returns it).
 */
#include <stddef.h>

#include "attr_table.h"
#include "cursor.h"
#include "stunkit/integrity.h"
#include "stunkit/msg.h"

enum { ST_OPEN = 0, ST_AFTER_MI = 1, ST_AFTER_MI256 = 2, ST_AFTER_FP = 3 };

static int fail(stunkit_writer *w, int err)
{
    if (!w->err)
        w->err = err;
    return err;
}

static int writer_start(stunkit_writer *w, uint8_t *buf, size_t cap, uint16_t method, stunkit_class k)
{
    w->buf = buf;
    w->cap = cap;
    w->len = 0;
    w->err = 0;
    w->stage = ST_OPEN;
    if (method > 0x0FFF)
        return fail(w, STUNKIT_ERR_INVAL);
    if (cap < STUNKIT_HEADER_LEN)
        return fail(w, STUNKIT_ERR_NOBUF);
    sk__put16(buf, stunkit_msg_type(method, k));
    sk__put16(buf + 2, 0);
    w->len = STUNKIT_HEADER_LEN;
    return 0;
}

int stunkit_writer_init(stunkit_writer *w, uint8_t *buf, size_t cap, uint16_t method, stunkit_class k,
                        const uint8_t tid[STUNKIT_TID_LEN])
{
    int rv = writer_start(w, buf, cap, method, k);
    if (rv)
        return rv;
    sk__put32(buf + 4, STUNKIT_MAGIC_COOKIE);
    memcpy(buf + 8, tid, STUNKIT_TID_LEN);
    return 0;
}

int stunkit_writer_init_rfc3489(stunkit_writer *w, uint8_t *buf, size_t cap, uint16_t method, stunkit_class k,
                                const uint8_t tid[STUNKIT_TID_LEN_RFC3489])
{
    int rv = writer_start(w, buf, cap, method, k);
    if (rv)
        return rv;
    memcpy(buf + 4, tid, STUNKIT_TID_LEN_RFC3489);
    return 0;
}

/*
 * Reserves an attribute of value length len: checks order and space, writes
 * the attribute header and the zero padding, updates the message length, and
 * returns where the value goes (NULL on error, recorded in w->err).
 */
static uint8_t *reserve(stunkit_writer *w, uint16_t type, size_t len)
{
    if (w->err)
        return NULL;
    /* RFC 8489 14.5-14.7: only MI-SHA256 and FINGERPRINT may follow
     * MESSAGE-INTEGRITY, only FINGERPRINT may follow MI-SHA256, and
     * FINGERPRINT is last. A writer never produces attributes a receiver
     * would ignore. */
    int ok;
    switch (w->stage) {
    case ST_OPEN: ok = 1; break;
    case ST_AFTER_MI: ok = type == STUNKIT_ATTR_MESSAGE_INTEGRITY_SHA256 || type == STUNKIT_ATTR_FINGERPRINT; break;
    case ST_AFTER_MI256: ok = type == STUNKIT_ATTR_FINGERPRINT; break;
    default: ok = 0; break;
    }
    if (!ok) {
        fail(w, STUNKIT_ERR_ORDER);
        return NULL;
    }
    if (len > 0xFFFF) {
        fail(w, STUNKIT_ERR_INVAL);
        return NULL;
    }
    size_t total = 4 + sk__pad4(len);
    if (w->cap - w->len < total || w->len - STUNKIT_HEADER_LEN + total > 0xFFFC) {
        fail(w, STUNKIT_ERR_NOBUF);
        return NULL;
    }
    uint8_t *p = w->buf + w->len;
    sk__put16(p, type);
    sk__put16(p + 2, (uint16_t)len);
    memset(p + 4 + len, 0, sk__pad4(len) - len);
    w->len += total;
    sk__put16(w->buf + 2, (uint16_t)(w->len - STUNKIT_HEADER_LEN));
    return p + 4;
}

int stunkit_put(stunkit_writer *w, uint16_t type, const void *value, size_t len)
{
    uint8_t *v = reserve(w, type, len);
    if (!v)
        return w->err;
    if (len && value)
        memcpy(v, value, len);
    else if (len)
        memset(v, 0, len);
    return 0;
}

int stunkit_put_u32(stunkit_writer *w, uint16_t type, uint32_t x)
{
    uint8_t *v = reserve(w, type, 4);
    if (!v)
        return w->err;
    sk__put32(v, x);
    return 0;
}

int stunkit_put_u64(stunkit_writer *w, uint16_t type, uint64_t x)
{
    uint8_t *v = reserve(w, type, 8);
    if (!v)
        return w->err;
    sk__put64(v, x);
    return 0;
}

int stunkit_put_addr(stunkit_writer *w, uint16_t type, const stunkit_addr *a)
{
    size_t iplen;
    uint8_t fam;
    if (a->family == STUNKIT_AF_INET) {
        iplen = 4;
        fam = 0x01;
    } else if (a->family == STUNKIT_AF_INET6) {
        iplen = 16;
        fam = 0x02;
    } else {
        return fail(w, STUNKIT_ERR_BAD_FAMILY);
    }
    uint8_t *v = reserve(w, type, 4 + iplen);
    if (!v)
        return w->err;
    v[0] = 0;
    v[1] = fam;
    sk__put16(v + 2, a->port);
    memcpy(v + 4, a->ip, iplen);
    if (stunkit_attr_is_xor_addr(type)) {
        /* X-Port and X-Address: see attr.c. Bytes 4..19 of the header are
         * the magic cookie and the transaction ID. */
        v[2] ^= w->buf[4];
        v[3] ^= w->buf[5];
        for (size_t i = 0; i < iplen; i++)
            v[4 + i] ^= w->buf[4 + i];
    }
    return 0;
}

int stunkit_put_error_code(stunkit_writer *w, int code, const char *reason)
{
    if (code < 300 || code > 699)
        return fail(w, STUNKIT_ERR_INVAL);
    if (!reason)
        reason = stunkit_code_reason(code);
    if (!reason)
        reason = "";
    /* RFC 8489 14.8: the reason phrase is "less than 128 characters (which
     * can be as long as 509 bytes when encoding them)". */
    size_t rlen = strlen(reason);
    if (rlen > 509)
        rlen = 509;
    uint8_t *v = reserve(w, STUNKIT_ATTR_ERROR_CODE, 4 + rlen);
    if (!v)
        return w->err;
    v[0] = 0;
    v[1] = 0;
    v[2] = (uint8_t)(code / 100);
    v[3] = (uint8_t)(code % 100);
    memcpy(v + 4, reason, rlen);
    return 0;
}

int stunkit_put_unknown_attributes(stunkit_writer *w, const uint16_t *types, size_t n)
{
    uint8_t *v = reserve(w, STUNKIT_ATTR_UNKNOWN_ATTRIBUTES, 2 * n);
    if (!v)
        return w->err;
    for (size_t i = 0; i < n; i++)
        sk__put16(v + 2 * i, types[i]);
    return 0;
}

int stunkit_put_change_request(stunkit_writer *w, uint32_t flags)
{
    return stunkit_put_u32(w, STUNKIT_ATTR_CHANGE_REQUEST, flags & (STUNKIT_CHANGE_IP | STUNKIT_CHANGE_PORT));
}

int stunkit_put_response_port(stunkit_writer *w, uint16_t port)
{
    return stunkit_put_u32(w, STUNKIT_ATTR_RESPONSE_PORT, (uint32_t)port << 16);
}

int stunkit_put_password_algorithm(stunkit_writer *w, uint16_t alg)
{
    return stunkit_put_u32(w, STUNKIT_ATTR_PASSWORD_ALGORITHM, (uint32_t)alg << 16);
}

int stunkit_put_password_algorithms(stunkit_writer *w, const uint16_t *algs, size_t n)
{
    uint8_t *v = reserve(w, STUNKIT_ATTR_PASSWORD_ALGORITHMS, 4 * n);
    if (!v)
        return w->err;
    for (size_t i = 0; i < n; i++)
        sk__put32(v + 4 * i, (uint32_t)algs[i] << 16);
    return 0;
}

/*
 * RFC 8489 14.5: "The text used as input to HMAC is the STUN message, up to
 * and including the attribute preceding the MESSAGE-INTEGRITY attribute. The
 * Length field of the STUN message header is adjusted to point to the end of
 * the MESSAGE-INTEGRITY attribute." reserve() has already set the length to
 * include the new attribute, so the bytes before it are exactly that input.
 */
int stunkit_put_integrity(stunkit_writer *w, const uint8_t *key, size_t key_len)
{
    uint8_t mac[20];
    size_t start = w->len;
    uint8_t *v = reserve(w, STUNKIT_ATTR_MESSAGE_INTEGRITY, 20);
    if (!v)
        return w->err;
    if (stunkit_hmac_sha1(key, key_len, w->buf, start, NULL, 0, mac) != 0)
        return fail(w, STUNKIT_ERR_CRYPTO);
    memcpy(v, mac, 20);
    w->stage = ST_AFTER_MI;
    return 0;
}

int stunkit_put_integrity_sha256(stunkit_writer *w, const uint8_t *key, size_t key_len, size_t trunc)
{
    uint8_t mac[32];
    if (trunc == 0)
        trunc = 32;
    /* RFC 8489 14.6: at least 16 bytes, at most 32, a multiple of 4. */
    if (trunc < 16 || trunc > 32 || (trunc & 3u))
        return fail(w, STUNKIT_ERR_INVAL);
    size_t start = w->len;
    uint8_t *v = reserve(w, STUNKIT_ATTR_MESSAGE_INTEGRITY_SHA256, trunc);
    if (!v)
        return w->err;
    if (stunkit_hmac_sha256(key, key_len, w->buf, start, NULL, 0, mac) != 0)
        return fail(w, STUNKIT_ERR_CRYPTO);
    memcpy(v, mac, trunc);
    w->stage = ST_AFTER_MI256;
    return 0;
}

/*
 * RFC 8489 14.7: "The value of the attribute is computed as the CRC-32 of the
 * STUN message up to (but excluding) the FINGERPRINT attribute itself,
 * XOR'ed with the 32-bit value 0x5354554e." The length field already counts
 * the FINGERPRINT attribute, as the RFC requires.
 */
int stunkit_put_fingerprint(stunkit_writer *w)
{
    size_t start = w->len;
    uint8_t *v = reserve(w, STUNKIT_ATTR_FINGERPRINT, 4);
    if (!v)
        return w->err;
    sk__put32(v, stunkit_crc32(0, w->buf, start) ^ STUNKIT_FINGERPRINT_XOR);
    w->stage = ST_AFTER_FP;
    return 0;
}

int stunkit_writer_finish(const stunkit_writer *w)
{
    return w->err ? w->err : (int)w->len;
}
