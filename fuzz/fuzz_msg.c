/*
 * fuzz_msg.c - libFuzzer target for the codec: parse, walk and format every
 * attribute, check integrity and fingerprint, then re-encode the processed
 * attributes and require the copy to parse back to the same attributes.
 */
#include <stdlib.h>
#include <string.h>

#include "stunkit/stunkit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    stunkit_msg m;
    size_t need;
    char text[1024];

    stunkit_msg_frame(data, size, &need);
    stunkit_is_stun(data, size);
    if (stunkit_msg_parse(&m, data, size) != 0)
        return 0;

    stunkit_attr_iter it;
    stunkit_attr a;
    stunkit_addr addr;
    uint32_t u32;
    int code;
    const uint8_t *reason;
    size_t rlen;
    uint16_t alg, plen, list[8];
    const uint8_t *params;

    stunkit_attr_iter_init(&it, &m, 1);
    while (stunkit_attr_next(&it, &a)) {
        if (a.value < data || a.value + a.len > data + size)
            abort();
        stunkit_attr_format(&m, &a, text, sizeof(text));
        stunkit_attr_format(&m, &a, text, 7);
        stunkit_attr_format_json(&m, &a, text, sizeof(text));
        stunkit_attr_format_json(&m, &a, text, 7);
        stunkit_attr_addr(&m, &a, &addr);
        stunkit_attr_u32(&a, &u32);
        stunkit_attr_error_code(&a, &code, &reason, &rlen);
        stunkit_attr_unknown_list(&a, list, 8);
        for (size_t i = 0; i < 4; i++)
            if (stunkit_attr_password_algorithm(&a, i, &alg, &params, &plen) != 0)
                break;
    }
    stunkit_check_integrity(&m, (const uint8_t *)"key", 3);
    stunkit_check_integrity_sha256(&m, (const uint8_t *)"key", 3);
    stunkit_check_fingerprint(&m);

    /* Round trip: the processed attributes before any integrity attribute,
     * written again, must parse back identically. */
    if (m.rfc3489)
        return 0;
    uint8_t *out = malloc(size + 64);
    stunkit_writer w;
    stunkit_writer_init(&w, out, size + 64, m.method, m.klass, m.tid);
    stunkit_attr_iter_init(&it, &m, 0);
    unsigned n = 0;
    while (stunkit_attr_next(&it, &a)) {
        if (a.type == STUNKIT_ATTR_MESSAGE_INTEGRITY || a.type == STUNKIT_ATTR_MESSAGE_INTEGRITY_SHA256 ||
            a.type == STUNKIT_ATTR_FINGERPRINT)
            continue;
        if (stunkit_put(&w, a.type, a.value, a.len) != 0)
            abort();
        n++;
    }
    stunkit_put_fingerprint(&w);
    int len = stunkit_writer_finish(&w);
    stunkit_msg m2;
    if (len < 0 || stunkit_msg_parse(&m2, out, (size_t)len) != 0 || m2.n_attrs != n + 1 ||
        stunkit_check_fingerprint(&m2) != 0 || m2.method != m.method || m2.klass != m.klass)
        abort();
    free(out);
    return 0;
}
