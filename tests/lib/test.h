/*
 * test.h - a minimal test harness: CHECK records a failure and goes on;
 * each test file's main() runs its cases and returns non-zero on any failure.
 */
#ifndef STUNKIT_TEST_H
#define STUNKIT_TEST_H

#include <inttypes.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static int t_failures __attribute__((unused));
static int t_checks __attribute__((unused));

#define CHECK(cond)                                                                                                    \
    do {                                                                                                               \
        t_checks++;                                                                                                    \
        if (!(cond)) {                                                                                                 \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);                                   \
            t_failures++;                                                                                              \
        }                                                                                                              \
    } while (0)

/* A check that failed where the code stands (a branch that must not run). */
#define CHECK_FAIL(what)                                                                                               \
    do {                                                                                                               \
        t_checks++;                                                                                                    \
        t_failures++;                                                                                                  \
        fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, what);                                        \
    } while (0)

#define CHECK_EQ(a, b)                                                                                                 \
    do {                                                                                                               \
        long long t_a_ = (long long)(a), t_b_ = (long long)(b);                                                        \
        t_checks++;                                                                                                    \
        if (t_a_ != t_b_) {                                                                                            \
            fprintf(stderr, "%s:%d: CHECK_EQ failed: %s == %s (%lld != %lld)\n", __FILE__, __LINE__, #a, #b, t_a_,     \
                    t_b_);                                                                                             \
            t_failures++;                                                                                              \
        }                                                                                                              \
    } while (0)

#define CHECK_STR(a, b)                                                                                                \
    do {                                                                                                               \
        const char *t_a_ = (a), *t_b_ = (b);                                                                           \
        t_checks++;                                                                                                    \
        if (!t_a_ || !t_b_ || strcmp(t_a_, t_b_) != 0) {                                                               \
            fprintf(stderr, "%s:%d: CHECK_STR failed: \"%s\" != \"%s\"\n", __FILE__, __LINE__, t_a_ ? t_a_ : "(null)", \
                    t_b_ ? t_b_ : "(null)");                                                                           \
            t_failures++;                                                                                              \
        }                                                                                                              \
    } while (0)

#define CHECK_MEM(a, b, n) CHECK(memcmp((a), (b), (n)) == 0)

#define RUN(fn)                                                                                                        \
    do {                                                                                                               \
        int t_before_ = t_failures;                                                                                    \
        fn();                                                                                                          \
        fprintf(stderr, "%s %s\n", t_failures == t_before_ ? "ok  " : "FAIL", #fn);                                    \
    } while (0)

#define TEST_END()                                                                                                     \
    do {                                                                                                               \
        fprintf(stderr, "%d checks, %d failed\n", t_checks, t_failures);                                              \
        return t_failures ? 1 : 0;                                                                                     \
    } while (0)

/* Hex text (whitespace ignored) to bytes; returns the count. */
static inline size_t t_hex(const char *s, uint8_t *out, size_t cap)
{
    size_t n = 0;
    int hi = -1;
    for (; *s; s++) {
        int v;
        if (*s >= '0' && *s <= '9')
            v = *s - '0';
        else if (*s >= 'a' && *s <= 'f')
            v = *s - 'a' + 10;
        else if (*s >= 'A' && *s <= 'F')
            v = *s - 'A' + 10;
        else
            continue;
        if (hi < 0) {
            hi = v;
        } else {
            if (n < cap)
                out[n] = (uint8_t)(hi << 4 | v);
            n++;
            hi = -1;
        }
    }
    return n;
}

/* The machines' randomness in tests (stunkit_env.random): ctx points at a
 * uint32_t seed, advanced per byte (an LCG), so a run replays exactly and
 * two seeds give two different runs. */
static inline void test_random(void *ctx, uint8_t *buf, size_t len)
{
    uint32_t *s = ctx;
    for (size_t i = 0; i < len; i++) {
        *s = *s * 1103515245u + 12345u;
        buf[i] = (uint8_t)(*s >> 16);
    }
}

#endif
