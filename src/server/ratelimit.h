/*
 * ratelimit.h - per-source token buckets in a fixed-size table (a source is an
 * IPv4 address or an IPv6 /64, source.h): a general budget taken before
 * parsing, a strict one for answers that could be used for reflection, and
 * one for authenticated requests.
 *
 * Memory is fixed at creation: a flood of spoofed sources evicts an entry of
 * a small probe window (the one with the most budget left, then the oldest)
 * instead of growing the table, so sources that spent their budget stay
 * limited.
 * One table per worker thread, touched by that thread only: no locks.
 */
#ifndef STUNKITD_RATELIMIT_H
#define STUNKITD_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

#include "stunkit/addr.h"

typedef struct skd_bucket {
    uint8_t ip[16];
    uint8_t family;      /* 0: empty slot */
    uint64_t last_ms;    /* last refill */
    float tokens;        /* general budget */
    float tokens_redir;  /* budget for answers sent elsewhere */
    float tokens_auth;   /* budget for requests that passed the credential check */
} skd_bucket;

typedef struct skd_ratelimit {
    skd_bucket *slots;
    size_t n_slots; /* power of two */
    uint32_t seed;
    float rate, burst;             /* requests per second; 0 rate: off */
    float rate_redir, burst_redir; /* CHANGE-REQUEST / RESPONSE-PORT */
} skd_ratelimit;

/* n_slots is rounded up to a power of two. Returns 0 or -1 (no memory). */
int skd_ratelimit_init(skd_ratelimit *rl, size_t n_slots, float rate, float burst, float rate_redir,
                       float burst_redir, uint32_t seed);
void skd_ratelimit_free(skd_ratelimit *rl);

/* Takes one token from the source's general budget (and, if redirect, from
 * its redirect budget too). Returns 1 allowed, 0 limited. now_ms: any
 * monotonic millisecond clock. */
int skd_ratelimit_take(skd_ratelimit *rl, const stunkit_addr *src, uint64_t now_ms, int redirect);
/* Takes one token from the strict budget alone (the general one was taken
 * before the request was parsed). Returns 1 allowed, 0 limited. */
int skd_ratelimit_take_strict(skd_ratelimit *rl, const stunkit_addr *src, uint64_t now_ms);
/* Takes one token from the source's authenticated budget (the general
 * rate and burst, a bucket of its own): what a forger who can use the
 * source's address but not its credentials cannot drain. */
int skd_ratelimit_take_auth(skd_ratelimit *rl, const stunkit_addr *src, uint64_t now_ms);

#endif
