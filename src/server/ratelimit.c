/* ratelimit.c - see ratelimit.h. */
#include "ratelimit.h"

#include <stdlib.h>
#include <string.h>

#include "source.h"

#define PROBE 8 /* slots examined per lookup; the oldest of them is evicted */

int skd_ratelimit_init(skd_ratelimit *rl, size_t n_slots, float rate, float burst, float rate_redir,
                       float burst_redir, uint32_t seed)
{
    size_t n = PROBE;
    while (n < n_slots)
        n <<= 1;
    memset(rl, 0, sizeof(*rl));
    rl->slots = calloc(n, sizeof(skd_bucket));
    if (!rl->slots)
        return -1;
    rl->n_slots = n;
    rl->seed = seed;
    rl->rate = rate;
    rl->burst = burst < 1.0f ? 1.0f : burst;
    rl->rate_redir = rate_redir;
    rl->burst_redir = burst_redir < 1.0f ? 1.0f : burst_redir;
    return 0;
}

void skd_ratelimit_free(skd_ratelimit *rl)
{
    free(rl->slots);
    rl->slots = NULL;
}

/* FNV-1a with a per-process seed, so sources cannot aim at one chain. */
static uint32_t hash_ip(const skd_ratelimit *rl, const stunkit_addr *a)
{
    uint32_t h = 2166136261u ^ rl->seed;
    size_t n = skd_source_bytes(a);
    for (size_t i = 0; i < n; i++) {
        h ^= a->ip[i];
        h *= 16777619u;
    }
    return h ^ (h >> 15);
}

/*
 * Which entry of the probe window to give up for a new source: an empty
 * slot; else the one with the most tokens left (a source that spent its
 * budget is the state worth keeping: evicting it would hand it a fresh burst,
 * so spoofed floods could launder a hot source); among equals the oldest.
 */
static int better_victim(const skd_bucket *s, const skd_bucket *v)
{
    if (v->family == 0)
        return 0;
    if (s->family == 0)
        return 1;
    if (s->tokens != v->tokens)
        return s->tokens > v->tokens;
    return s->last_ms < v->last_ms;
}

static float refill(float tokens, float rate, float burst, uint64_t elapsed_ms)
{
    tokens += rate * (float)elapsed_ms / 1000.0f;
    return tokens > burst ? burst : tokens;
}

/* redirect 0: general, 1: general and strict, 2: strict alone, 3: the
 * authenticated budget alone */
static int take(skd_ratelimit *rl, const stunkit_addr *src, uint64_t now_ms, int redirect)
{
    int auth_on = redirect == 3 && rl->rate > 0.0f;
    int general_on = redirect < 2 && rl->rate > 0.0f;
    int redir_on = (redirect == 1 || redirect == 2) && rl->rate_redir > 0.0f;
    if (!general_on && !redir_on && !auth_on)
        return 1;
    size_t mask = rl->n_slots - 1, base = hash_ip(rl, src) & mask;
    size_t iplen = skd_source_bytes(src); /* an IPv6 source is its /64 (source.h) */
    skd_bucket *victim = NULL, *b = NULL;
    for (size_t i = 0; i < PROBE; i++) {
        skd_bucket *s = &rl->slots[(base + i) & mask];
        if (s->family == src->family && memcmp(s->ip, src->ip, iplen) == 0) {
            b = s;
            break;
        }
        if (!victim || better_victim(s, victim))
            victim = s;
    }
    if (!b) {
        /* New source (or evicted earlier): a full bucket. */
        b = victim;
        memset(b, 0, sizeof(*b));
        memcpy(b->ip, src->ip, iplen);
        b->family = src->family;
        b->tokens = rl->burst;
        b->tokens_redir = rl->burst_redir;
        b->tokens_auth = rl->burst;
    } else {
        uint64_t elapsed = now_ms > b->last_ms ? now_ms - b->last_ms : 0;
        if (elapsed > 3600000u)
            elapsed = 3600000u;
        b->tokens = refill(b->tokens, rl->rate, rl->burst, elapsed);
        b->tokens_redir = refill(b->tokens_redir, rl->rate_redir, rl->burst_redir, elapsed);
        b->tokens_auth = refill(b->tokens_auth, rl->rate, rl->burst, elapsed);
    }
    b->last_ms = now_ms;
    if (auth_on) {
        if (b->tokens_auth < 1.0f)
            return 0;
        b->tokens_auth -= 1.0f;
        return 1;
    }
    if ((general_on && b->tokens < 1.0f) || (redir_on && b->tokens_redir < 1.0f))
        return 0;
    if (general_on)
        b->tokens -= 1.0f;
    if (redir_on)
        b->tokens_redir -= 1.0f;
    return 1;
}

int skd_ratelimit_take(skd_ratelimit *rl, const stunkit_addr *src, uint64_t now_ms, int redirect)
{
    return take(rl, src, now_ms, redirect ? 1 : 0);
}

int skd_ratelimit_take_strict(skd_ratelimit *rl, const stunkit_addr *src, uint64_t now_ms)
{
    return take(rl, src, now_ms, 2);
}

int skd_ratelimit_take_auth(skd_ratelimit *rl, const stunkit_addr *src, uint64_t now_ms)
{
    return take(rl, src, now_ms, 3);
}
