/* attr_format.c - attribute values as text (stunkit_attr_format) and as JSON
 * values (stunkit_attr_format_json). */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>

#include "attr_table.h"
#include "cursor.h"
#include "stunkit/msg.h"

typedef struct out {
    char *buf;
    size_t cap, len;
    int overflow;
} out;

static void emit(out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void emit(out *o, const char *fmt, ...)
{
    va_list ap;
    size_t room = o->len < o->cap ? o->cap - o->len : 0;
    va_start(ap, fmt);
    int n = vsnprintf(room ? o->buf + o->len : NULL, room, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= room)
        o->overflow = 1;
    else
        o->len += (size_t)n;
}

static void emit_hex(out *o, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n && !o->overflow; i++)
        emit(o, "%02x", p[i]);
}

/* Printable text: valid UTF-8 passes, control bytes and invalid sequences
 * are escaped as \xNN, a backslash as \\. */
static void emit_text(out *o, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n && !o->overflow;) {
        uint8_t b = p[i];
        size_t len = b < 0x80 ? 1 : (b & 0xE0) == 0xC0 ? 2 : (b & 0xF0) == 0xE0 ? 3 : (b & 0xF8) == 0xF0 ? 4 : 0;
        int ok = len > 0 && i + len <= n;
        for (size_t k = 1; ok && k < len; k++)
            ok = (p[i + k] & 0xC0) == 0x80;
        if (ok && len == 2)
            ok = b >= 0xC2; /* overlong */
        if (!ok || (len == 1 && (b < 0x20 || b == 0x7F))) {
            emit(o, "\\x%02x", b);
            i++;
        } else if (b == '\\') {
            emit(o, "\\\\");
            i++;
        } else {
            emit(o, "%.*s", (int)len, (const char *)p + i);
            i += len;
        }
    }
}

static const char *pwalg_name(uint16_t alg)
{
    return alg == STUNKIT_PWALG_MD5 ? "MD5" : alg == STUNKIT_PWALG_SHA256 ? "SHA-256" : NULL;
}

static int format_value(const stunkit_msg *msg, const stunkit_attr *a, out *o)
{
    const sk_attr_info *info = sk__attr_info(a->type);
    int kind = info ? info->kind : SK_BYTES;
    char addr[STUNKIT_ADDRSTRLEN];
    stunkit_addr sa;
    uint32_t u32;
    uint64_t u64;
    int rv, code;
    const uint8_t *reason;
    size_t rlen;

    switch (kind) {
    case SK_ADDR:
    case SK_XADDR:
        if ((rv = stunkit_attr_addr(msg, a, &sa)) != 0)
            return STUNKIT_ERR_BAD_VALUE;
        stunkit_addr_format(&sa, addr, sizeof(addr));
        emit(o, "%s", addr);
        return 0;
    case SK_TEXT:
        emit_text(o, a->value, a->len);
        return 0;
    case SK_U32:
        if (stunkit_attr_u32(a, &u32) != 0)
            return STUNKIT_ERR_BAD_VALUE;
        emit(o, "%" PRIu32, u32);
        return 0;
    case SK_U64:
        if (stunkit_attr_u64(a, &u64) != 0)
            return STUNKIT_ERR_BAD_VALUE;
        emit(o, "0x%016" PRIx64, u64);
        return 0;
    case SK_EMPTY:
        return a->len == 0 ? 0 : STUNKIT_ERR_BAD_VALUE;
    case SK_ERROR:
        if (stunkit_attr_error_code(a, &code, &reason, &rlen) != 0)
            return STUNKIT_ERR_BAD_VALUE;
        emit(o, "%d ", code);
        emit_text(o, reason, rlen);
        return 0;
    case SK_UNKNOWN: {
        int n = stunkit_attr_unknown_list(a, NULL, 0);
        if (n < 0)
            return STUNKIT_ERR_BAD_VALUE;
        for (int i = 0; i < n; i++) {
            uint16_t t = sk__get16(a->value + 2 * i);
            const char *name = stunkit_attr_name(t);
            emit(o, "%s0x%04x%s%s%s", i ? ", " : "", t, name ? " (" : "", name ? name : "", name ? ")" : "");
        }
        return 0;
    }
    case SK_CHANGE:
        if (stunkit_attr_change_request(a, &u32) != 0)
            return STUNKIT_ERR_BAD_VALUE;
        u32 &= STUNKIT_CHANGE_IP | STUNKIT_CHANGE_PORT;
        emit(o, "%s", u32 == (STUNKIT_CHANGE_IP | STUNKIT_CHANGE_PORT) ? "change IP and port"
                      : u32 == STUNKIT_CHANGE_IP                       ? "change IP"
                      : u32 == STUNKIT_CHANGE_PORT                     ? "change port"
                                                                       : "no change");
        return 0;
    case SK_RPORT: {
        uint16_t port;
        if (stunkit_attr_response_port(a, &port) != 0)
            return STUNKIT_ERR_BAD_VALUE;
        emit(o, "%u", (unsigned)port);
        return 0;
    }
    case SK_PADDING:
        emit(o, "%u bytes", (unsigned)a->len);
        return 0;
    case SK_PWALG:
    case SK_PWALGS: {
        uint16_t alg, plen;
        size_t i = 0;
        for (;; i++) {
            rv = stunkit_attr_password_algorithm(a, i, &alg, NULL, &plen);
            if (rv == STUNKIT_ERR_NOT_FOUND)
                break;
            if (rv != 0)
                return STUNKIT_ERR_BAD_VALUE;
            const char *name = pwalg_name(alg);
            if (name)
                emit(o, "%s%s", i ? ", " : "", name);
            else
                emit(o, "%s0x%04x", i ? ", " : "", alg);
            if (plen)
                emit(o, " (%u bytes of parameters)", (unsigned)plen);
        }
        return i > 0 ? 0 : STUNKIT_ERR_BAD_VALUE;
    }
    case SK_FP:
        if (stunkit_attr_u32(a, &u32) != 0)
            return STUNKIT_ERR_BAD_VALUE;
        emit(o, "0x%08" PRIx32, u32);
        return 0;
    case SK_FAMILY:
        if (a->len != 4 || (a->value[0] != 1 && a->value[0] != 2))
            return STUNKIT_ERR_BAD_VALUE;
        emit(o, "%s", a->value[0] == 1 ? "IPv4" : "IPv6");
        return 0;
    case SK_TRANSPORT:
        if (a->len != 4)
            return STUNKIT_ERR_BAD_VALUE;
        emit(o, "%s (%u)", a->value[0] == 17 ? "UDP" : a->value[0] == 6 ? "TCP" : "protocol", a->value[0]);
        return 0;
    case SK_CHANNEL:
        if (a->len != 4)
            return STUNKIT_ERR_BAD_VALUE;
        emit(o, "0x%04x", sk__get16(a->value));
        return 0;
    case SK_MAC:
    case SK_BYTES:
    default:
        emit_hex(o, a->value, a->len);
        return 0;
    }
}

static int format_json(const stunkit_msg *msg, const stunkit_attr *a, out *o);

/* Runs a formatter into buf; a malformed value is written as its raw hex
 * instead (quoted for JSON). The length, STUNKIT_ERR_BAD_VALUE or _NOBUF. */
static int format_into(int (*fmt)(const stunkit_msg *, const stunkit_attr *, out *), int quoted,
                       const stunkit_msg *msg, const stunkit_attr *a, char *buf, size_t cap)
{
    out o = {buf, cap, 0, 0};
    if (cap)
        buf[0] = '\0';
    int rv = fmt(msg, a, &o);
    if (rv != 0) {
        o.len = 0;
        o.overflow = 0;
        if (cap)
            buf[0] = '\0';
        if (quoted)
            emit(&o, "\"");
        emit_hex(&o, a->value, a->len);
        if (quoted)
            emit(&o, "\"");
    }
    if (o.overflow)
        return STUNKIT_ERR_NOBUF;
    return rv != 0 ? rv : (int)o.len;
}

int stunkit_attr_format(const stunkit_msg *msg, const stunkit_attr *a, char *buf, size_t cap)
{
    return format_into(format_value, 0, msg, a, buf, cap);
}

/* ---- JSON ---- */

/* A JSON string: valid UTF-8 passes, '"', '\\' and control characters are
 * escaped the JSON way (\u00NN), a byte that is not UTF-8 becomes U+FFFD
 * (*lossy set: the raw bytes are worth adding as hex). */
static void emit_json_text(out *o, const uint8_t *p, size_t n, int *lossy)
{
    emit(o, "\"");
    for (size_t i = 0; i < n && !o->overflow;) {
        uint8_t b = p[i];
        size_t len = b < 0x80 ? 1 : (b & 0xE0) == 0xC0 ? 2 : (b & 0xF0) == 0xE0 ? 3 : (b & 0xF8) == 0xF0 ? 4 : 0;
        int ok = len > 0 && i + len <= n;
        for (size_t k = 1; ok && k < len; k++)
            ok = (p[i + k] & 0xC0) == 0x80;
        if (ok && len == 2)
            ok = b >= 0xC2; /* overlong */
        if (!ok) {
            emit(o, "\\ufffd");
            *lossy = 1;
            i++;
        } else if (len == 1 && (b < 0x20 || b == 0x7F)) {
            emit(o, "\\u%04x", b);
            i++;
        } else if (b == '"' || b == '\\') {
            emit(o, "\\%c", b);
            i++;
        } else {
            emit(o, "%.*s", (int)len, (const char *)p + i);
            i += len;
        }
    }
    emit(o, "\"");
}

static int format_json(const stunkit_msg *msg, const stunkit_attr *a, out *o)
{
    const sk_attr_info *info = sk__attr_info(a->type);
    int kind = info ? info->kind : SK_BYTES, lossy = 0;
    uint32_t u32;
    uint64_t u64;
    int code;
    const uint8_t *reason;
    size_t rlen;
    char text[256];
    switch (kind) {
    case SK_TEXT:
        emit_json_text(o, a->value, a->len, &lossy);
        if (lossy) {
            emit(o, ", \"hex\": \"");
            emit_hex(o, a->value, a->len);
            emit(o, "\"");
        }
        return 0;
    case SK_U32:
        if (stunkit_attr_u32(a, &u32) != 0)
            return STUNKIT_ERR_BAD_VALUE;
        emit(o, "%" PRIu32, u32);
        return 0;
    case SK_U64:
        /* a 64-bit tie-breaker exceeds what JSON numbers hold exactly: a
         * string of its decimal digits */
        if (stunkit_attr_u64(a, &u64) != 0)
            return STUNKIT_ERR_BAD_VALUE;
        emit(o, "\"%" PRIu64 "\"", u64);
        return 0;
    case SK_EMPTY:
        if (a->len)
            return STUNKIT_ERR_BAD_VALUE;
        emit(o, "null");
        return 0;
    case SK_ERROR:
        if (stunkit_attr_error_code(a, &code, &reason, &rlen) != 0)
            return STUNKIT_ERR_BAD_VALUE;
        emit(o, "{\"code\": %d, \"reason\": ", code);
        emit_json_text(o, reason, rlen, &lossy);
        emit(o, "}");
        return 0;
    case SK_UNKNOWN: {
        int n = stunkit_attr_unknown_list(a, NULL, 0);
        if (n < 0)
            return STUNKIT_ERR_BAD_VALUE;
        emit(o, "[");
        for (int i = 0; i < n; i++)
            emit(o, "%s%u", i ? ", " : "", (unsigned)sk__get16(a->value + 2 * i));
        emit(o, "]");
        return 0;
    }
    case SK_CHANGE:
        if (stunkit_attr_change_request(a, &u32) != 0)
            return STUNKIT_ERR_BAD_VALUE;
        emit(o, "{\"change_ip\": %s, \"change_port\": %s}", (u32 & STUNKIT_CHANGE_IP) ? "true" : "false",
             (u32 & STUNKIT_CHANGE_PORT) ? "true" : "false");
        return 0;
    case SK_RPORT: {
        uint16_t port;
        if (stunkit_attr_response_port(a, &port) != 0)
            return STUNKIT_ERR_BAD_VALUE;
        emit(o, "%u", (unsigned)port);
        return 0;
    }
    case SK_PADDING:
        emit(o, "%u", (unsigned)a->len);
        return 0;
    case SK_FP:
        if (stunkit_attr_u32(a, &u32) != 0)
            return STUNKIT_ERR_BAD_VALUE;
        emit(o, "%" PRIu32, u32);
        return 0;
    case SK_TRANSPORT:
        if (a->len != 4)
            return STUNKIT_ERR_BAD_VALUE;
        emit(o, "%u", a->value[0]);
        return 0;
    case SK_CHANNEL:
        if (a->len != 4)
            return STUNKIT_ERR_BAD_VALUE;
        emit(o, "%u", (unsigned)sk__get16(a->value));
        return 0;
    case SK_MAC:
    case SK_BYTES:
        emit(o, "\"");
        emit_hex(o, a->value, a->len);
        emit(o, "\"");
        return 0;
    default: {
        /* addresses, families, algorithm lists: their text is plain ASCII */
        out t = {text, sizeof(text), 0, 0};
        int rv = format_value(msg, a, &t);
        if (rv != 0 || t.overflow)
            return rv ? rv : STUNKIT_ERR_BAD_VALUE;
        emit_json_text(o, (const uint8_t *)text, t.len, &lossy);
        return 0;
    }
    }
}

int stunkit_attr_format_json(const stunkit_msg *msg, const stunkit_attr *a, char *buf, size_t cap)
{
    return format_into(format_json, 1, msg, a, buf, cap);
}
