/*
 * msg_parse.c - decoding STUN messages: header, attribute framing, the
 * ordering rules around MESSAGE-INTEGRITY and FINGERPRINT.
 *
 * RFC 8489 section 5, the header:
 *
 *     0                   1                   2                   3
 *     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *    |0 0|     STUN Message Type     |         Message Length        |
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *    |                         Magic Cookie                          |
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *    |                                                               |
 *    |                     Transaction ID (96 bits)                  |
 *    |                                                               |
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * The message type interleaves method and class bits:
 *
 *      0                 1
 *      2  3  4 5 6 7 8 9 0 1 2 3 4 5
 *     +--+--+-+-+-+-+-+-+-+-+-+-+-+-+
 *     |M |M |M|M|M|C|M|M|M|C|M|M|M|M|
 *     |11|10|9|8|7|1|6|5|4|0|3|2|1|0|
 *     +--+--+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * RFC 3489 messages have no magic cookie: bytes 4..19 are a 128-bit ID.
 *
 * Attributes (section 14), each padded to a multiple of 4 bytes:
 *
 *     0                   1                   2                   3
 *     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *    |         Type                  |            Length             |
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *    |                         Value (variable)                ....
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 */
#include <stddef.h>

#include "cursor.h"
#include "stunkit/msg.h"

int stunkit_is_stun(const uint8_t *buf, size_t len)
{
    /* RFC 7983 section 7: a first byte in 0..3 means STUN. */
    return len >= STUNKIT_HEADER_LEN && buf[0] <= 3;
}

uint16_t stunkit_msg_type(uint16_t method, stunkit_class k)
{
    unsigned m = method & 0x0FFFu, c = (unsigned)k & 3u;
    return (uint16_t)((m & 0x000Fu) | (m & 0x0070u) << 1 | (m & 0x0F80u) << 2 | (c & 1u) << 4 | (c & 2u) << 7);
}

int stunkit_msg_frame(const uint8_t *buf, size_t avail, size_t *need)
{
    if (avail < STUNKIT_HEADER_LEN) {
        *need = STUNKIT_HEADER_LEN;
        /* Reject early what can already be seen not to be STUN. */
        if (avail >= 1 && (buf[0] & 0xC0) != 0)
            return STUNKIT_ERR_NOT_STUN;
        return STUNKIT_ERR_TRUNCATED;
    }
    if ((buf[0] & 0xC0) != 0)
        return STUNKIT_ERR_NOT_STUN;
    uint16_t length = sk__get16(buf + 2);
    /* RFC 8489 section 5: "the message length MUST contain the size of the
     * message in bytes, not including the 20-byte STUN header. Since all STUN
     * attributes are padded to a multiple of 4 bytes, the last 2 bits of this
     * field are always zero." */
    if (length & 3u)
        return STUNKIT_ERR_BAD_LENGTH;
    *need = STUNKIT_HEADER_LEN + (size_t)length;
    return 0;
}

static void note_unknown(stunkit_msg *msg, uint16_t type)
{
    /* Comprehension-required attributes are 0x0000-0x7FFF (section 14). */
    if (type >= 0x8000u || stunkit_attr_is_known(type))
        return;
    for (unsigned i = 0; i < msg->n_unknown && i < STUNKIT_MAX_UNKNOWN; i++)
        if (msg->unknown[i] == type)
            return;
    if (msg->n_unknown < STUNKIT_MAX_UNKNOWN)
        msg->unknown[msg->n_unknown] = type;
    msg->n_unknown++;
}

int stunkit_msg_parse(stunkit_msg *msg, const uint8_t *buf, size_t len)
{
    size_t need;
    int rv;

    memset(msg, 0, sizeof(*msg));
    if ((rv = stunkit_msg_frame(buf, len, &need)) != 0)
        return rv;
    if (len < need)
        return STUNKIT_ERR_TRUNCATED;
    if (len > need)
        return STUNKIT_ERR_BAD_LENGTH; /* one datagram carries one message */

    uint16_t type = sk__get16(buf);
    msg->data = buf;
    msg->len = need;
    msg->type = type;
    msg->method = (uint16_t)((type & 0x000Fu) | (type & 0x00E0u) >> 1 | (type & 0x3E00u) >> 2);
    msg->klass = (stunkit_class)((type >> 4 & 1u) | (type >> 7 & 2u));
    msg->rfc3489 = sk__get32(buf + 4) != STUNKIT_MAGIC_COOKIE;
    msg->tid = msg->rfc3489 ? buf + 4 : buf + 8;
    msg->tid_len = msg->rfc3489 ? STUNKIT_TID_LEN_RFC3489 : STUNKIT_TID_LEN;

    /* stage: 0 before any integrity, 1 after MESSAGE-INTEGRITY,
     * 2 after MESSAGE-INTEGRITY-SHA256 or after an ignored attribute. */
    unsigned stage = 0;
    size_t pos = STUNKIT_HEADER_LEN;
    while (pos < need) {
        if (need - pos < 4)
            return STUNKIT_ERR_BAD_ATTR_LENGTH; /* cannot happen: need - pos is a multiple of 4 */
        uint16_t at = sk__get16(buf + pos);
        uint16_t alen = sk__get16(buf + pos + 2);
        size_t padded = sk__pad4(alen);
        if (need - pos - 4 < padded)
            return STUNKIT_ERR_BAD_ATTR_LENGTH;
        /* RFC 8489 14.7: "When present, the FINGERPRINT attribute MUST be
         * the last attribute in the message". Anything after it, a second
         * FINGERPRINT included, makes the message malformed. */
        if (msg->fp_off)
            return STUNKIT_ERR_FINGERPRINT_NOT_LAST;

        if (at == STUNKIT_ATTR_FINGERPRINT) {
            if (alen != 4)
                return STUNKIT_ERR_BAD_VALUE;
            msg->fp_off = pos;
            msg->n_attrs++;
        } else if (stage == 0 && at == STUNKIT_ATTR_MESSAGE_INTEGRITY) {
            if (alen != 20)
                return STUNKIT_ERR_BAD_VALUE;
            msg->mi_off = pos;
            msg->n_attrs++;
            stage = 1;
        } else if (stage <= 1 && at == STUNKIT_ATTR_MESSAGE_INTEGRITY_SHA256) {
            /* RFC 8489 14.6: "The value will be at most 32 bytes, but it MUST
             * be at least 16 bytes and MUST be a multiple of 4 bytes." */
            if (alen < 16 || alen > 32 || (alen & 3u))
                return STUNKIT_ERR_BAD_VALUE;
            msg->mi256_off = pos;
            msg->n_attrs++;
            stage = 2;
        } else if (stage > 0) {
            /* RFC 8489 14.5: "With the exception of the MESSAGE-INTEGRITY-
             * SHA256 and FINGERPRINT attributes, which appear after MESSAGE-
             * INTEGRITY, agents MUST ignore all other attributes that follow
             * MESSAGE-INTEGRITY." (14.6 says the same of MI-SHA256.) */
            msg->n_ignored++;
            stage = 2;
        } else {
            msg->n_attrs++;
            note_unknown(msg, at);
        }
        pos += 4 + padded;
    }
    return 0;
}

/* Whether the attribute at pos is one a receiver processes. */
static int attr_processed(const stunkit_msg *msg, size_t pos)
{
    size_t first_mi = msg->mi_off ? msg->mi_off : msg->mi256_off;
    if (!first_mi || pos <= first_mi)
        return 1;
    return pos == msg->mi256_off || pos == msg->fp_off;
}

void stunkit_attr_iter_init(stunkit_attr_iter *it, const stunkit_msg *msg, int include_ignored)
{
    it->msg = msg;
    it->pos = STUNKIT_HEADER_LEN;
    it->include_ignored = include_ignored;
}

int stunkit_attr_next(stunkit_attr_iter *it, stunkit_attr *a)
{
    const stunkit_msg *msg = it->msg;
    /* The framing was checked by stunkit_msg_parse(): no bounds checks here. */
    while (it->pos < msg->len) {
        size_t pos = it->pos;
        const uint8_t *p = msg->data + pos;
        uint16_t alen = sk__get16(p + 2);
        it->pos = pos + 4 + sk__pad4(alen);
        int processed = attr_processed(msg, pos);
        if (!processed && !it->include_ignored)
            continue;
        a->type = sk__get16(p);
        a->len = alen;
        a->value = p + 4;
        a->off = pos;
        a->ignored = !processed;
        return 1;
    }
    return 0;
}

int stunkit_msg_find(const stunkit_msg *msg, uint16_t type, stunkit_attr *a)
{
    stunkit_attr_iter it;
    stunkit_attr_iter_init(&it, msg, 0);
    while (stunkit_attr_next(&it, a))
        if (a->type == type)
            return 0;
    return STUNKIT_ERR_NOT_FOUND;
}
