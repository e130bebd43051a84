/* json.c - see json.h. */
#include "json.h"

#include <stdio.h>

size_t skd_json_text(char *out, size_t cap, const char *s, size_t len)
{
    size_t o = 0;
    if (cap < 3) {
        if (cap)
            out[0] = 0;
        return 0;
    }
    out[o++] = '"';
    for (size_t i = 0; i < len && o + 8 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c < 0x20) {
            o += (size_t)snprintf(out + o, cap - o, "\\u%04x", c);
        } else {
            out[o++] = (char)c;
        }
    }
    out[o++] = '"';
    out[o] = 0;
    return o;
}
