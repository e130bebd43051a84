/*
 * rendezvous.h - stunkitd's rendezvous (`--rendezvous`): two peers that
 * name the same room meet and exchange descriptions (ICE candidates as SDP
 * lines, trickled). The wire is in stunkit/rendezvous.h; the client machine
 * is src/lib/rendezvous.c.
 *
 * One table for the whole server behind a mutex (the two peers of a room
 * may reach different workers): requests are a few per second per peer and
 * hold the lock for a copy of at most a kilobyte. Bounded in every
 * direction: rooms in all, rooms per user, a room's lifetime, a peer's
 * silence, a description's size; answers at most twice their request (no
 * amplification), and every request passed the per-source rate limiter and
 * long-term authentication before it gets here. Descriptions only: the
 * server never carries application data for a room.
 */
#ifndef STUNKITD_RENDEZVOUS_H
#define STUNKITD_RENDEZVOUS_H

#include <pthread.h>
#include <stdint.h>

#include "methods.h"

typedef struct skd_rdv_cfg {
    int enabled;
    int max_rooms;       /* rooms in all (default 1000) */
    int user_rooms;      /* rooms one username may open (default 10) */
    uint32_t lifetime_s; /* a room closes this long after it opened (default 600) */
    uint32_t idle_s;     /* a peer silent this long loses its place (default 30) */
    uint32_t desc_max;   /* bytes per description (default 4096) */
    const char *redis;   /* --rendezvous-redis HOST[:PORT] or a Unix socket path: the rooms live there, NULL: here */
    const char *redis_prefix; /* key prefix (default "stunkitd:") */
} skd_rdv_cfg;

typedef struct skd_room skd_room;

typedef struct skd_rdv {
    skd_rdv_cfg cfg;
    pthread_mutex_t lock;
    skd_room **buckets;
    uint32_t n_buckets; /* a power of two */
    uint32_t seed;
    uint32_t sweep;     /* the next bucket the lazy sweep looks at */
    int n_rooms;
    uint16_t next_gen;
    void *redis;        /* the connection (redisContext), NULL until made; under lock */
    uint64_t redis_retry_ms; /* no reconnection before then */
    uint64_t redis_errors;
    /* counters (read under the lock) */
    uint64_t rooms_opened, rooms_expired, peers_met, refused_full, refused_quota, refused_capacity,
        refused_size;
} skd_rdv;

int skd_rdv_init(skd_rdv *r, const skd_rdv_cfg *cfg, uint32_t seed);
void skd_rdv_free(skd_rdv *r);

/* The RENDEZVOUS method (handler.c's table; cfg->rdv must be set). */
skd_verdict skd_rendezvous(const skd_handler_cfg *cfg, const skd_request *rq, const stunkit_msg *m,
                           const skd_auth_verdict *authed, skd_outbox *ob);

/* A snapshot of the counters and the rooms open now (rooms whose time is
 * over at now_ms are closed first). */
typedef struct skd_rdv_counters {
    uint64_t rooms_opened, rooms_expired, peers_met, refused_full, refused_quota, refused_capacity, refused_size;
    int rooms_open;
} skd_rdv_counters;
void skd_rdv_counters_get(skd_rdv *r, uint64_t now_ms, skd_rdv_counters *c);
/* Each open room as a JSON object (name, user, age, peers), comma-separated
 * after *n written; what did not fit counted in *left. The bytes written. */
size_t skd_rdv_describe(skd_rdv *r, uint64_t now_ms, char *buf, size_t cap, int *n, int *left);
/* 1 when built with hiredis (--rendezvous-redis works). */
int skd_rdv_redis_available(void);

#endif
