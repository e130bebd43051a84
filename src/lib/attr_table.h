/* attr_table.h - what the codec knows about each attribute type (internal). */
#ifndef STUNKIT_ATTR_TABLE_H
#define STUNKIT_ATTR_TABLE_H

#include <stddef.h>
#include <stdint.h>

#include "stunkit/addr.h"

/* How a value is laid out (drives value checks and stunkit_attr_format). */
typedef enum sk_attr_kind {
    SK_BYTES,
    SK_TEXT,
    SK_ADDR,
    SK_XADDR,
    SK_U32,
    SK_U64,
    SK_EMPTY,
    SK_ERROR,
    SK_UNKNOWN,
    SK_CHANGE,
    SK_RPORT,
    SK_PADDING,
    SK_PWALGS,
    SK_PWALG,
    SK_MAC,
    SK_FP,
    SK_FAMILY,
    SK_TRANSPORT,
    SK_CHANNEL
} sk_attr_kind;

typedef struct sk_attr_info {
    uint16_t type;
    const char *name;
    uint8_t kind;  /* sk_attr_kind */
    uint8_t known; /* understood by the codec (not in a 420's list) */
} sk_attr_info;

const sk_attr_info *sk__attr_info(uint16_t type);

/* Decodes a (XOR-)address value; hdr is the message's first 20 bytes. */
int sk__addr_decode(const uint8_t *hdr, uint16_t type, const uint8_t *v, size_t len, stunkit_addr *out);

#endif
