/*
 * attr.c - the attribute table (names, what the codec understands) and the
 * decoders for attribute values. Every decoder checks the value's length
 * before it reads.
 */
#include <stddef.h>

#include "attr_table.h"
#include "cursor.h"
#include "stunkit/msg.h"

/* Sorted by type for the binary search in sk__attr_info(). */
static const sk_attr_info attr_table[] = {
    {0x0001, "MAPPED-ADDRESS", SK_ADDR, 1},
    {0x0002, "RESPONSE-ADDRESS", SK_ADDR, 1},
    {0x0003, "CHANGE-REQUEST", SK_CHANGE, 1},
    {0x0004, "SOURCE-ADDRESS", SK_ADDR, 1},
    {0x0005, "CHANGED-ADDRESS", SK_ADDR, 1},
    {0x0006, "USERNAME", SK_TEXT, 1},
    {0x0007, "PASSWORD", SK_TEXT, 1},
    {0x0008, "MESSAGE-INTEGRITY", SK_MAC, 1},
    {0x0009, "ERROR-CODE", SK_ERROR, 1},
    {0x000A, "UNKNOWN-ATTRIBUTES", SK_UNKNOWN, 1},
    {0x000B, "REFLECTED-FROM", SK_ADDR, 1},
    {0x000C, "CHANNEL-NUMBER", SK_CHANNEL, 1},
    {0x000D, "LIFETIME", SK_U32, 1},
    {0x0012, "XOR-PEER-ADDRESS", SK_XADDR, 1},
    {0x0013, "DATA", SK_BYTES, 1},
    {0x0014, "REALM", SK_TEXT, 1},
    {0x0015, "NONCE", SK_TEXT, 1},
    {0x0016, "XOR-RELAYED-ADDRESS", SK_XADDR, 1},
    {0x0017, "REQUESTED-ADDRESS-FAMILY", SK_FAMILY, 1},
    {0x0018, "EVEN-PORT", SK_BYTES, 1},
    {0x0019, "REQUESTED-TRANSPORT", SK_TRANSPORT, 1},
    {0x001A, "DONT-FRAGMENT", SK_EMPTY, 1},
    {0x001C, "MESSAGE-INTEGRITY-SHA256", SK_MAC, 1},
    {0x001D, "PASSWORD-ALGORITHM", SK_PWALG, 1},
    {0x001E, "USERHASH", SK_BYTES, 1},
    {0x0020, "XOR-MAPPED-ADDRESS", SK_XADDR, 1},
    {0x0022, "RESERVATION-TOKEN", SK_BYTES, 1},
    {0x0024, "PRIORITY", SK_U32, 1},
    {0x0025, "USE-CANDIDATE", SK_EMPTY, 1},
    {0x0026, "PADDING", SK_PADDING, 1},
    {0x0027, "RESPONSE-PORT", SK_RPORT, 1},
    {0x8002, "PASSWORD-ALGORITHMS", SK_PWALGS, 1},
    {0x8003, "ALTERNATE-DOMAIN", SK_TEXT, 1},
    {0x8020, "XOR-MAPPED-ADDRESS-OLD", SK_XADDR, 1},
    {0x8022, "SOFTWARE", SK_TEXT, 1},
    {0x8023, "ALTERNATE-SERVER", SK_ADDR, 1},
    {0x8028, "FINGERPRINT", SK_FP, 1},
    {0x8029, "ICE-CONTROLLED", SK_U64, 1},
    {0x802A, "ICE-CONTROLLING", SK_U64, 1},
    {0x802B, "RESPONSE-ORIGIN", SK_ADDR, 1},
    {0x802C, "OTHER-ADDRESS", SK_ADDR, 1},
    {0xC001, "NOMINATION", SK_U32, 1},
    /* stunkit's rendezvous (stunkit/rendezvous.h), private */
    {0xC5A0, "RDV-ROOM", SK_TEXT, 1},
    {0xC5A1, "RDV-PEER-ID", SK_BYTES, 1},
    {0xC5A2, "RDV-DESCRIPTION", SK_TEXT, 1},
    {0xC5A3, "RDV-OFFSET", SK_U32, 1},
    {0xC5A4, "RDV-ACK", SK_U32, 1},
    {0xC5A5, "RDV-STATUS", SK_BYTES, 1},
    {0xC5A6, "RDV-LEAVE", SK_EMPTY, 1},
};

const sk_attr_info *sk__attr_info(uint16_t type)
{
    size_t lo = 0, hi = sizeof(attr_table) / sizeof(attr_table[0]);
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (attr_table[mid].type == type)
            return &attr_table[mid];
        if (attr_table[mid].type < type)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

const char *stunkit_attr_name(uint16_t type)
{
    const sk_attr_info *i = sk__attr_info(type);
    return i ? i->name : NULL;
}

int stunkit_attr_is_known(uint16_t type)
{
    const sk_attr_info *i = sk__attr_info(type);
    return i && i->known;
}

const char *stunkit_method_name(uint16_t method)
{
    switch (method) {
    case STUNKIT_METHOD_BINDING: return "binding";
    case STUNKIT_METHOD_SHARED_SECRET: return "shared-secret";
    case STUNKIT_METHOD_ALLOCATE: return "allocate";
    case STUNKIT_METHOD_REFRESH: return "refresh";
    case STUNKIT_METHOD_SEND: return "send";
    case STUNKIT_METHOD_DATA: return "data";
    case STUNKIT_METHOD_CREATE_PERMISSION: return "create-permission";
    case STUNKIT_METHOD_CHANNEL_BIND: return "channel-bind";
    case 0x0B0: return "rendezvous"; /* stunkit/rendezvous.h */
    default: return NULL;
    }
}

const char *stunkit_class_name(stunkit_class k)
{
    static const char *const names[] = {"request", "indication", "success", "error"};
    return names[(unsigned)k & 3u];
}

int stunkit_attr_is_xor_addr(uint16_t type)
{
    const sk_attr_info *i = sk__attr_info(type);
    return i && i->kind == SK_XADDR;
}

/*
 * MAPPED-ADDRESS (RFC 8489 14.1) and XOR-MAPPED-ADDRESS (14.2):
 *
 *     0                   1                   2                   3
 *     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *    |0 0 0 0 0 0 0 0|    Family     |    Port (X-Port if XOR'd)     |
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *    |                 Address (32 bits or 128 bits)                 |
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * "X-Port is computed by XOR'ing the mapped port with the most significant
 * 16 bits of the magic cookie"; an IPv4 X-Address with the magic cookie, an
 * IPv6 one with the concatenation of magic cookie and transaction ID. That is
 * bytes 4..19 of the header, which is also what pre-RFC 5389 implementations
 * XOR with (their 128-bit ID sits there).
 */
int sk__addr_decode(const uint8_t *hdr, uint16_t type, const uint8_t *v, size_t len, stunkit_addr *out)
{
    int xor = stunkit_attr_is_xor_addr(type);
    if (len < 4)
        return STUNKIT_ERR_BAD_VALUE;
    memset(out, 0, sizeof(*out));
    switch (v[1]) {
    case 0x01:
        if (len != 8)
            return STUNKIT_ERR_BAD_VALUE;
        out->family = STUNKIT_AF_INET;
        memcpy(out->ip, v + 4, 4);
        break;
    case 0x02:
        if (len != 20)
            return STUNKIT_ERR_BAD_VALUE;
        out->family = STUNKIT_AF_INET6;
        memcpy(out->ip, v + 4, 16);
        break;
    default:
        return STUNKIT_ERR_BAD_FAMILY;
    }
    out->port = sk__get16(v + 2);
    if (xor) {
        out->port ^= sk__get16(hdr + 4);
        for (size_t i = 0; i < (out->family == STUNKIT_AF_INET ? 4u : 16u); i++)
            out->ip[i] ^= hdr[4 + i];
    }
    return 0;
}

int stunkit_attr_addr(const stunkit_msg *msg, const stunkit_attr *a, stunkit_addr *out)
{
    return sk__addr_decode(msg->data, a->type, a->value, a->len, out);
}

int stunkit_attr_u32(const stunkit_attr *a, uint32_t *out)
{
    if (a->len != 4)
        return STUNKIT_ERR_BAD_VALUE;
    *out = sk__get32(a->value);
    return 0;
}

int stunkit_attr_u64(const stunkit_attr *a, uint64_t *out)
{
    if (a->len != 8)
        return STUNKIT_ERR_BAD_VALUE;
    *out = sk__get64(a->value);
    return 0;
}

/*
 * ERROR-CODE (RFC 8489 14.8):
 *
 *    |           Reserved, should be 0         |Class|     Number    |
 *    |      Reason Phrase (variable)                                ..
 *
 * "The Class represents the hundreds digit of the error code. The value
 * MUST be between 3 and 6. The Number represents the binary encoding of the
 * error code modulo 100, and its value MUST be between 0 and 99."
 */
int stunkit_attr_error_code(const stunkit_attr *a, int *code, const uint8_t **reason, size_t *reason_len)
{
    if (a->len < 4)
        return STUNKIT_ERR_BAD_VALUE;
    unsigned klass = a->value[2] & 7u, number = a->value[3];
    if (klass < 3 || klass > 6 || number > 99)
        return STUNKIT_ERR_BAD_VALUE;
    *code = (int)(klass * 100 + number);
    if (reason)
        *reason = a->value + 4;
    if (reason_len)
        *reason_len = (size_t)a->len - 4;
    return 0;
}

int stunkit_attr_unknown_list(const stunkit_attr *a, uint16_t *out, size_t cap)
{
    if (a->len & 1u)
        return STUNKIT_ERR_BAD_VALUE;
    size_t n = a->len / 2u;
    for (size_t i = 0; out && i < n && i < cap; i++)
        out[i] = sk__get16(a->value + 2 * i);
    return (int)n;
}

/* CHANGE-REQUEST (RFC 5780 7.2): 32 bits, A (0x4) change IP, B (0x2) port. */
int stunkit_attr_change_request(const stunkit_attr *a, uint32_t *flags)
{
    if (a->len != 4)
        return STUNKIT_ERR_BAD_VALUE;
    *flags = sk__get32(a->value);
    return 0;
}

/* RESPONSE-PORT (RFC 5780 7.5): "a 16-bit port followed by 16 bits of padding". */
int stunkit_attr_response_port(const stunkit_attr *a, uint16_t *port)
{
    if (a->len != 4)
        return STUNKIT_ERR_BAD_VALUE;
    *port = sk__get16(a->value);
    return 0;
}

/*
 * PASSWORD-ALGORITHM (RFC 8489 14.12) and each entry of PASSWORD-ALGORITHMS
 * (14.11):
 *
 *    |          Algorithm           |  Algorithm Parameters Length   |
 *    |                    Algorithm Parameters (variable)
 *
 * Parameters are padded to 4 bytes inside PASSWORD-ALGORITHMS.
 */
int stunkit_attr_password_algorithm(const stunkit_attr *a, size_t index, uint16_t *alg, const uint8_t **params,
                                    uint16_t *params_len)
{
    size_t pos = 0;
    for (size_t i = 0;; i++) {
        if (pos == a->len)
            return STUNKIT_ERR_NOT_FOUND;
        if (a->len - pos < 4)
            return STUNKIT_ERR_BAD_VALUE;
        uint16_t plen = sk__get16(a->value + pos + 2);
        size_t step = 4 + (a->type == STUNKIT_ATTR_PASSWORD_ALGORITHMS ? sk__pad4(plen) : plen);
        if (a->len - pos < step)
            return STUNKIT_ERR_BAD_VALUE;
        if (i == index) {
            *alg = sk__get16(a->value + pos);
            if (params)
                *params = a->value + pos + 4;
            if (params_len)
                *params_len = plen;
            return 0;
        }
        if (a->type != STUNKIT_ATTR_PASSWORD_ALGORITHMS)
            return STUNKIT_ERR_NOT_FOUND;
        pos += step;
    }
}
