/*
 * mdns.h - a one-shot multicast DNS lookup's query and answer (mdns.c),
 * for browsers' "<uuid>.local" ICE candidates. Internal to the library.
 */
#ifndef STUNKIT_MDNS_H
#define STUNKIT_MDNS_H

#include <stddef.h>
#include <stdint.h>

#include "stunkit/addr.h"

#define SK_MDNS_PORT 5353

/* A query for name's A and AAAA records (qu: a unicast answer asked): its
 * length, or -1 (a name that is not one, or cap too small). */
int sk_mdns_query(const char *name, uint16_t id, int qu, uint8_t *out, size_t cap);
/* Calls fn for each A and AAAA record of a response (answers, authority,
 * additional): how many, or -1 (not a response, malformed). */
typedef void (*sk_mdns_record_fn)(void *ctx, const char *name, const stunkit_addr *a);
int sk_mdns_records(const uint8_t *msg, size_t len, sk_mdns_record_fn fn, void *ctx);
/* The first A or AAAA record for name (case-insensitive) in a response: 0
 * with *out, or -1 (none, not a response, malformed). */
int sk_mdns_answer(const uint8_t *msg, size_t len, const char *name, stunkit_addr *out);
/* 1 for a name under .local (RFC 6762 3). */
int sk_mdns_name(const char *host);

#endif
