/*
 * config_take.h - configs versioned by size (internal; the rule is
 * stunkit/machine.h's). Every machine's config starts with `size_t size`,
 * sizeof the struct as the application was compiled. A newer library
 * takes an older application's shorter config and reads the fields it
 * lacks as zero (each new field's zero keeps the old behaviour); a newer
 * application's longer config is taken when the fields this library does
 * not know are all zero, and refused when it asks for something this
 * library cannot do.
 */
#ifndef STUNKIT_CONFIG_TAKE_H
#define STUNKIT_CONFIG_TAKE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Copies the application's config at src into the machine's own dst
 * (dst_size bytes, this library's sizeof). v1_size: the size of the first
 * published layout, the shortest accepted. 0, or -1 (NULL, too short, or
 * unknown fields set). */
static inline int sk_config_take(void *dst, size_t dst_size, const void *src, size_t v1_size)
{
    if (!src)
        return -1;
    size_t n;
    memcpy(&n, src, sizeof(n));
    if (n < v1_size)
        return -1;
    if (n > dst_size) {
        const uint8_t *extra = (const uint8_t *)src;
        for (size_t i = dst_size; i < n; i++)
            if (extra[i])
                return -1;
        n = dst_size;
    }
    memset(dst, 0, dst_size);
    memcpy(dst, src, n);
    memcpy(dst, &dst_size, sizeof(dst_size));
    return 0;
}

#endif
