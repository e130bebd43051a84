/*
 * revoked.h - users whose credentials no longer count, until unrevoked or
 * the restart (the control socket's revoke / unrevoke, control.c). A
 * revoked user's requests are answered as a wrong password would be (401
 * and a fresh challenge: handler.c), and its allocations end at once
 * (skd_turn_kick). A REST-API username ("EXPIRY:NAME") is revoked by its
 * NAME too, whatever the expiry. Read on every authenticated request: a
 * relaxed count first, the lock only while the list is not empty.
 */
#ifndef STUNKITD_REVOKED_H
#define STUNKITD_REVOKED_H

#include <pthread.h>
#include <stddef.h>

#define SKD_REVOKED_MAX 1024

typedef struct skd_revoked {
    pthread_mutex_t lock;
    int n; /* atomic read */
    char names[SKD_REVOKED_MAX][128];
    size_t lens[SKD_REVOKED_MAX];
} skd_revoked;

int skd_revoked_init(skd_revoked *r);
void skd_revoked_free(skd_revoked *r);
/* 1 added, 0 already there, -1 full or not a name (1-127 bytes). */
int skd_revoked_add(skd_revoked *r, const char *name, size_t len);
/* 1 removed, 0 not there. */
int skd_revoked_remove(skd_revoked *r, const char *name, size_t len);
/* Whether the authenticated user (USERNAME, or "EXPIRY:NAME") is revoked. */
int skd_revoked_has(skd_revoked *r, const char *user, size_t len);
/* The names revoked, one per line into buf: the count. */
int skd_revoked_list(skd_revoked *r, char *buf, size_t cap);
/* Whether user matches name (itself, or the NAME of a REST username). */
int skd_revoked_match(const char *user, size_t ulen, const char *name, size_t nlen);

#endif
