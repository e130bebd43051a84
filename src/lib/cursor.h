/*
 * cursor.h - big-endian reads and writes (internal).
 *
 * The codec follows "compute the length, then read": a caller checks that n
 * bytes remain once, then uses these helpers without further checks.
 */
#ifndef STUNKIT_CURSOR_H
#define STUNKIT_CURSOR_H

#include <stdint.h>
#include <string.h>

static inline uint16_t sk__get16(const uint8_t *p)
{
    return (uint16_t)((uint16_t)p[0] << 8 | p[1]);
}

static inline uint32_t sk__get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline uint64_t sk__get64(const uint8_t *p)
{
    return (uint64_t)sk__get32(p) << 32 | sk__get32(p + 4);
}

static inline void sk__put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static inline void sk__put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static inline void sk__put64(uint8_t *p, uint64_t v)
{
    sk__put32(p, (uint32_t)(v >> 32));
    sk__put32(p + 4, (uint32_t)v);
}

/* Attribute values are padded to a multiple of 4 bytes. */
static inline size_t sk__pad4(size_t n)
{
    return (n + 3u) & ~(size_t)3u;
}

#endif
