/*
 * prep.c - the OpaqueString profile of PRECIS (RFC 8265 section 4.2), which
 * RFC 8489 applies to passwords and realms.
 *
 * RFC 8265 4.2.2: "1. Width Mapping Rule: Fullwidth and halfwidth code points
 * MUST NOT be mapped ... 2. Additional Mapping Rule: Any instances of non-
 * ASCII space MUST be mapped to ASCII space (U+0020) ... 3. Case Mapping
 * Rule: Uppercase and titlecase code points MUST NOT be mapped ... 4.
 * Normalization Rule: Unicode Normalization Form C (NFC) MUST be applied".
 *
 * What this file does and does not cover:
 *  - UTF-8 is validated (no overlongs, surrogates or values past U+10FFFF);
 *  - non-ASCII spaces (general category Zs) become U+0020;
 *  - control characters (Cc) and the empty string are rejected;
 *  - NFC: a string whose code points are all below U+0300 is in NFC already
 *    (nothing there composes or decomposes), so ASCII and Latin text is exact.
 *    Strings with higher code points are passed through unchanged on the
 *    assumption that the sender already normalised them: we carry no Unicode
 *    composition tables. Other PRECIS FreeformClass exclusions (unassigned
 *    code points, old Hangul jamo) are not checked.
 */
#include <string.h>

#include "stunkit/integrity.h"

/* Decodes one UTF-8 sequence; returns its length, 0 if invalid. */
static size_t utf8_next(const uint8_t *s, size_t n, uint32_t *cp)
{
    uint8_t b = s[0];
    size_t len;
    uint32_t c, min;
    if (b < 0x80) {
        *cp = b;
        return 1;
    } else if ((b & 0xE0) == 0xC0) {
        len = 2;
        c = b & 0x1Fu;
        min = 0x80;
    } else if ((b & 0xF0) == 0xE0) {
        len = 3;
        c = b & 0x0Fu;
        min = 0x800;
    } else if ((b & 0xF8) == 0xF0) {
        len = 4;
        c = b & 0x07u;
        min = 0x10000;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        c = c << 6 | (s[i] & 0x3Fu);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
        return 0;
    *cp = c;
    return len;
}

static int is_non_ascii_space(uint32_t c)
{
    return c == 0x00A0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x202F || c == 0x205F ||
           c == 0x3000;
}

int stunkit_opaque_string(const char *in, size_t in_len, char *out, size_t cap)
{
    const uint8_t *s = (const uint8_t *)in;
    size_t o = 0;
    if (in_len == 0)
        return STUNKIT_ERR_BAD_STRING;
    for (size_t i = 0; i < in_len;) {
        uint32_t cp;
        size_t n = utf8_next(s + i, in_len - i, &cp);
        if (n == 0)
            return STUNKIT_ERR_BAD_STRING;
        if (cp < 0x20 || (cp >= 0x7F && cp <= 0x9F))
            return STUNKIT_ERR_BAD_STRING;
        if (is_non_ascii_space(cp)) {
            if (o + 1 > cap)
                return STUNKIT_ERR_NOBUF;
            out[o++] = ' ';
        } else {
            if (o + n > cap)
                return STUNKIT_ERR_NOBUF;
            memcpy(out + o, s + i, n);
            o += n;
        }
        i += n;
    }
    if (o > 0x7FFFFFFF)
        return STUNKIT_ERR_NOBUF;
    return (int)o;
}
