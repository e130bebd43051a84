/*
 * crc32.h - the slicing-by-8 tables behind stunkit_crc32(), for stunkitd's
 * XDP program, which computes FINGERPRINT with the same tables (internal).
 */
#ifndef STUNKIT_CRC32_H
#define STUNKIT_CRC32_H

#include <stdint.h>

/* [8][256]: table 0 is the byte-wise CRC-32 table (reflected 0xEDB88320),
 * table t advances table t-1 by one more byte. */
const uint32_t (*sk__crc32_tables(void))[256];

#endif
