/*
 * bench_codec.c - nanoseconds per codec operation: parse, encode a Binding
 * response, MESSAGE-INTEGRITY check, FINGERPRINT check. A program, not a test:
 * it prints figures and asserts nothing about speed.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "stunkit/stunkit.h"

static const uint8_t request[] = {
    /* RFC 5769 2.1 */
    0x00, 0x01, 0x00, 0x58, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87,
    0xdf, 0xae, 0x80, 0x22, 0x00, 0x10, 0x53, 0x54, 0x55, 0x4e, 0x20, 0x74, 0x65, 0x73, 0x74, 0x20, 0x63, 0x6c,
    0x69, 0x65, 0x6e, 0x74, 0x00, 0x24, 0x00, 0x04, 0x6e, 0x00, 0x01, 0xff, 0x80, 0x29, 0x00, 0x08, 0x93, 0x2f,
    0xf9, 0xb1, 0x51, 0x26, 0x3b, 0x36, 0x00, 0x06, 0x00, 0x09, 0x65, 0x76, 0x74, 0x6a, 0x3a, 0x68, 0x36, 0x76,
    0x59, 0x20, 0x20, 0x20, 0x00, 0x08, 0x00, 0x14, 0x9a, 0xea, 0xa7, 0x0c, 0xbf, 0xd8, 0xcb, 0x56, 0x78, 0x1e,
    0xf2, 0xb5, 0xb2, 0xd3, 0xf2, 0x49, 0xc1, 0xb5, 0x71, 0xa2, 0x80, 0x28, 0x00, 0x04, 0xe5, 0x7a, 0x3b, 0xcf};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static volatile int sink;

#define BENCH(label, body)                                                                                             \
    do {                                                                                                               \
        long iters = 1000;                                                                                             \
        double t0, dt;                                                                                                 \
        for (;;) {                                                                                                     \
            t0 = now_s();                                                                                              \
            for (long i_ = 0; i_ < iters; i_++) {                                                                      \
                body;                                                                                                  \
            }                                                                                                          \
            dt = now_s() - t0;                                                                                         \
            if (dt > 0.3 || iters > 100000000L)                                                                        \
                break;                                                                                                 \
            iters *= 4;                                                                                                \
        }                                                                                                              \
        printf("  %-44s %9.1f ns/op  (%ld ops)\n", label, dt * 1e9 / (double)iters, iters);                           \
    } while (0)

int main(void)
{
    stunkit_msg m;
    uint8_t out[256];
    stunkit_addr mapped;
    stunkit_addr_parse("192.0.2.1:32853", 0, &mapped);
    const uint8_t *pw = (const uint8_t *)"VOkJxbRl1RmTxUk/WvJxBt";

    printf("stunkit codec benchmark (one core, RFC 5769 2.1 request, 108 bytes)\n");
    BENCH("parse (header + 6 attributes)", sink += stunkit_msg_parse(&m, request, sizeof(request)));
    stunkit_msg_parse(&m, request, sizeof(request));
    BENCH("find USERNAME", {
        stunkit_attr a;
        sink += stunkit_msg_find(&m, STUNKIT_ATTR_USERNAME, &a);
    });
    BENCH("encode Binding response (XOR-MAPPED-ADDRESS)", {
        stunkit_writer w;
        stunkit_writer_init(&w, out, sizeof(out), STUNKIT_METHOD_BINDING, STUNKIT_CLASS_SUCCESS, m.tid);
        stunkit_put_addr(&w, STUNKIT_ATTR_XOR_MAPPED_ADDRESS, &mapped);
        sink += stunkit_writer_finish(&w);
    });
    BENCH("encode Binding response + FINGERPRINT", {
        stunkit_writer w;
        stunkit_writer_init(&w, out, sizeof(out), STUNKIT_METHOD_BINDING, STUNKIT_CLASS_SUCCESS, m.tid);
        stunkit_put_addr(&w, STUNKIT_ATTR_XOR_MAPPED_ADDRESS, &mapped);
        stunkit_put_fingerprint(&w);
        sink += stunkit_writer_finish(&w);
    });
    BENCH("check FINGERPRINT", sink += stunkit_check_fingerprint(&m));
    BENCH("check MESSAGE-INTEGRITY (HMAC-SHA1)", sink += stunkit_check_integrity(&m, pw, 22));
    BENCH("encode + MESSAGE-INTEGRITY-SHA256", {
        stunkit_writer w;
        stunkit_writer_init(&w, out, sizeof(out), STUNKIT_METHOD_BINDING, STUNKIT_CLASS_SUCCESS, m.tid);
        stunkit_put_addr(&w, STUNKIT_ATTR_XOR_MAPPED_ADDRESS, &mapped);
        stunkit_put_integrity_sha256(&w, pw, 22, 0);
        sink += stunkit_writer_finish(&w);
    });
    BENCH("long-term key (MD5)", {
        uint8_t key[16];
        sink += stunkit_key_long_term(STUNKIT_PWALG_MD5, "user", 4, "example.org", 11, "secret", 6, key, 16);
    });
    return 0;
}
