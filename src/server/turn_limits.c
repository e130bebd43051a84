/* turn_limits.c - see turn_limits.h. */
#include "turn_limits.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct skd_turn_user {
    skd_turn_user *next;
    int held;     /* allocations and kept ports */
    int reserved; /* of them, kept ports */
    size_t len;
    char name[SKD_TURN_USER_MAX];
};

int skd_turn_limits_init(skd_turn_limits *l, int max_allocations, int user_quota, uint32_t seed)
{
    memset(l, 0, sizeof(*l));
    l->max_allocations = max_allocations;
    l->user_quota = user_quota;
    l->seed = seed;
    l->n_buckets = 1024;
    l->users = calloc(l->n_buckets, sizeof(*l->users));
    l->next_expiry_ms = UINT64_MAX;
    for (int i = 0; i < SKD_TURN_RESERVATIONS; i++)
        l->reservations[i].fd = -1;
    if (!l->users || pthread_mutex_init(&l->lock, NULL) != 0) {
        free(l->users);
        l->users = NULL;
        return -1;
    }
    return 0;
}

void skd_turn_limits_free(skd_turn_limits *l)
{
    if (!l->users)
        return;
    for (int i = 0; i < SKD_TURN_RESERVATIONS; i++)
        if (l->reservations[i].fd >= 0)
            close(l->reservations[i].fd);
    for (size_t b = 0; b < l->n_buckets; b++)
        for (skd_turn_user *u = l->users[b], *next; u; u = next) {
            next = u->next;
            free(u);
        }
    free(l->users);
    l->users = NULL;
    pthread_mutex_destroy(&l->lock);
}

static size_t bucket_of(const skd_turn_limits *l, const char *name, size_t len)
{
    uint32_t h = 2166136261u ^ l->seed; /* FNV-1a, seeded */
    for (size_t i = 0; i < len; i++)
        h = (h ^ (uint8_t)name[i]) * 16777619u;
    return (h ^ (h >> 15)) & (l->n_buckets - 1);
}

/* The user's entry, made when absent (NULL without memory). Locked. */
static skd_turn_user *user_get(skd_turn_limits *l, const char *name, size_t len)
{
    if (len > SKD_TURN_USER_MAX)
        len = SKD_TURN_USER_MAX;
    skd_turn_user **head = &l->users[bucket_of(l, name, len)];
    for (skd_turn_user *u = *head; u; u = u->next)
        if (u->len == len && !memcmp(u->name, name, len))
            return u;
    skd_turn_user *u = calloc(1, sizeof(*u));
    if (!u)
        return NULL;
    memcpy(u->name, name, len);
    u->len = len;
    u->next = *head;
    *head = u;
    return u;
}

/* Drops the user's entry once it holds nothing. Locked. */
static void user_release(skd_turn_limits *l, skd_turn_user *u)
{
    if (u->held > 0)
        return;
    skd_turn_user **pp = &l->users[bucket_of(l, u->name, u->len)];
    while (*pp && *pp != u)
        pp = &(*pp)->next;
    if (*pp)
        *pp = u->next;
    free(u);
}

/* Room for one more for u: 0, 486 or 508. Locked. */
static int room_for(skd_turn_limits *l, const skd_turn_user *u)
{
    if (l->user_quota > 0 && u->held >= l->user_quota) {
        l->refused_user++;
        return 486;
    }
    if (l->max_allocations > 0 && l->n_held >= l->max_allocations) {
        l->refused_total++;
        return 508;
    }
    return 0;
}

int skd_turn_limits_take(skd_turn_limits *l, const char *user, size_t user_len, skd_turn_user **held)
{
    pthread_mutex_lock(&l->lock);
    skd_turn_user *u = user_get(l, user, user_len);
    int code = u ? room_for(l, u) : 508;
    if (code == 0) {
        u->held++;
        __atomic_add_fetch(&l->n_held, 1, __ATOMIC_RELAXED); /* read without the lock: drains, redirects */
        *held = u;
    } else if (u) {
        user_release(l, u);
    }
    pthread_mutex_unlock(&l->lock);
    return code;
}

void skd_turn_limits_put(skd_turn_limits *l, skd_turn_user *held)
{
    if (!held)
        return;
    pthread_mutex_lock(&l->lock);
    held->held--;
    __atomic_sub_fetch(&l->n_held, 1, __ATOMIC_RELAXED);
    user_release(l, held);
    pthread_mutex_unlock(&l->lock);
}

static void next_expiry(skd_turn_limits *l)
{
    uint64_t next = UINT64_MAX;
    for (int i = 0; i < SKD_TURN_RESERVATIONS; i++)
        if (l->reservations[i].fd >= 0 && l->reservations[i].expires_ms < next)
            next = l->reservations[i].expires_ms;
    __atomic_store_n(&l->next_expiry_ms, next, __ATOMIC_RELEASE);
}

int skd_turn_limits_keep(skd_turn_limits *l, const char *user, size_t user_len, int fd, const stunkit_addr *addr,
                         const uint8_t token[8], uint64_t now_ms)
{
    pthread_mutex_lock(&l->lock);
    skd_reservation *slot = NULL;
    for (int i = 0; i < SKD_TURN_RESERVATIONS && !slot; i++)
        if (l->reservations[i].fd < 0)
            slot = &l->reservations[i];
    skd_turn_user *u = slot ? user_get(l, user, user_len) : NULL;
    int code = !u ? 508 : u->reserved >= SKD_TURN_USER_RESERVATIONS ? (l->refused_user++, 486) : room_for(l, u);
    if (code == 0) {
        u->held++;
        u->reserved++;
        __atomic_add_fetch(&l->n_held, 1, __ATOMIC_RELAXED); /* read without the lock: drains, redirects */
        memcpy(slot->token, token, 8);
        slot->fd = fd;
        slot->addr = *addr;
        slot->expires_ms = now_ms + SKD_TURN_RESERVATION_MS;
        slot->user = u;
        next_expiry(l);
    } else if (u) {
        user_release(l, u);
    }
    pthread_mutex_unlock(&l->lock);
    return code;
}

/* Frees slot r and gives its place back; returns its descriptor. Locked. */
static int unkeep(skd_turn_limits *l, skd_reservation *r)
{
    int fd = r->fd;
    r->fd = -1;
    r->user->held--;
    r->user->reserved--;
    __atomic_sub_fetch(&l->n_held, 1, __ATOMIC_RELAXED);
    user_release(l, r->user);
    r->user = NULL;
    return fd;
}

int skd_turn_limits_claim(skd_turn_limits *l, const uint8_t token[8], uint64_t now_ms, stunkit_addr *addr)
{
    int fd = -1;
    pthread_mutex_lock(&l->lock);
    for (int i = 0; i < SKD_TURN_RESERVATIONS && fd < 0; i++) {
        skd_reservation *r = &l->reservations[i];
        if (r->fd >= 0 && r->expires_ms > now_ms && !memcmp(r->token, token, 8)) {
            *addr = r->addr;
            fd = unkeep(l, r);
        }
    }
    if (fd >= 0)
        next_expiry(l);
    pthread_mutex_unlock(&l->lock);
    return fd;
}

void skd_turn_limits_expire(skd_turn_limits *l, uint64_t now_ms)
{
    if (__atomic_load_n(&l->next_expiry_ms, __ATOMIC_ACQUIRE) > now_ms)
        return;
    pthread_mutex_lock(&l->lock);
    for (int i = 0; i < SKD_TURN_RESERVATIONS; i++) {
        skd_reservation *r = &l->reservations[i];
        if (r->fd >= 0 && r->expires_ms <= now_ms)
            close(unkeep(l, r));
    }
    next_expiry(l);
    pthread_mutex_unlock(&l->lock);
}

int skd_turn_limits_held(skd_turn_limits *l)
{
    pthread_mutex_lock(&l->lock);
    int n = l->n_held;
    pthread_mutex_unlock(&l->lock);
    return n;
}
