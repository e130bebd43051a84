/*
 * turn_limits.h - the TURN limits that are the server's, not a worker's:
 * allocations in total (--turn-max-allocations), allocations per user
 * (--turn-user-quota) and the ports kept for a later Allocate (EVEN-PORT
 * with R, RFC 8656 14.6). A client may land on any worker (UDP by
 * SO_REUSEPORT's hash, TCP, TLS and DTLS on the stream workers), so these
 * are counted once for the whole server, under one lock; they are touched
 * only by the rare operations (Allocate, an allocation's end, a
 * reservation), never by relayed data.
 *
 * A user is the name the credential check resolved (USERNAME, or the static
 * user a USERHASH names), so both forms count against one quota. A kept
 * port counts as an allocation against its user's quota and the total until
 * it is claimed or expires, and one user keeps at most
 * SKD_TURN_USER_RESERVATIONS of them.
 */
#ifndef STUNKITD_TURN_LIMITS_H
#define STUNKITD_TURN_LIMITS_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "stunkit/addr.h"

#define SKD_TURN_RESERVATIONS 256    /* ports kept at once, server-wide */
#define SKD_TURN_USER_RESERVATIONS 4 /* of them, per user */
#define SKD_TURN_RESERVATION_MS 30000
#define SKD_TURN_USER_MAX 128        /* bytes of a user's name */

typedef struct skd_turn_user skd_turn_user;

typedef struct skd_reservation {
    uint8_t token[8];
    int fd;            /* -1: free slot */
    stunkit_addr addr;
    uint64_t expires_ms;
    skd_turn_user *user;
} skd_reservation;

typedef struct skd_turn_limits {
    pthread_mutex_t lock;
    int max_allocations; /* 0: none */
    int user_quota;      /* 0: none */
    int n_held;          /* allocations and kept ports, all workers */
    skd_turn_user **users;
    size_t n_buckets;
    uint32_t seed;
    skd_reservation reservations[SKD_TURN_RESERVATIONS];
    uint64_t next_expiry_ms; /* the earliest kept port's end (atomic read; UINT64_MAX: none) */
    uint64_t refused_user, refused_total; /* 486 and 508 given for the limits */
    int draining;            /* atomic: no new allocations (main thread sets it: SIGUSR2, the control socket) */
} skd_turn_limits;

int skd_turn_limits_init(skd_turn_limits *l, int max_allocations, int user_quota, uint32_t seed);
void skd_turn_limits_free(skd_turn_limits *l);

/* One allocation for user: 0, or 486 (the user's quota) / 508 (the total).
 * *held gets the user's handle for skd_turn_limits_put(). */
int skd_turn_limits_take(skd_turn_limits *l, const char *user, size_t user_len, skd_turn_user **held);
/* The allocation taken with held has ended. */
void skd_turn_limits_put(skd_turn_limits *l, skd_turn_user *held);

/* Keeps fd (bound to addr) for held's user under token until now + the
 * reservation time: 0, or 486/508 (the caller keeps fd and closes it). The
 * kept port takes a place in the user's quota and the total. */
int skd_turn_limits_keep(skd_turn_limits *l, const char *user, size_t user_len, int fd, const stunkit_addr *addr,
                         const uint8_t token[8], uint64_t now_ms);
/* The descriptor kept under token, handed over (its place in the quota is
 * given back), or -1 when there is none; *addr gets its address. */
int skd_turn_limits_claim(skd_turn_limits *l, const uint8_t token[8], uint64_t now_ms, stunkit_addr *addr);
/* Closes the kept ports whose time is over (cheap when none is due). */
void skd_turn_limits_expire(skd_turn_limits *l, uint64_t now_ms);

/* Allocations and kept ports held now (for tests and counters). */
int skd_turn_limits_held(skd_turn_limits *l);

#endif
