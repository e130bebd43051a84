/* revoked.c - see revoked.h. */
#include "revoked.h"

#include <stdio.h>
#include <string.h>

int skd_revoked_init(skd_revoked *r)
{
    memset(r, 0, sizeof(*r));
    return pthread_mutex_init(&r->lock, NULL) == 0 ? 0 : -1;
}

void skd_revoked_free(skd_revoked *r)
{
    pthread_mutex_destroy(&r->lock);
}

int skd_revoked_match(const char *user, size_t ulen, const char *name, size_t nlen)
{
    if (ulen == nlen && !memcmp(user, name, nlen))
        return 1;
    /* "EXPIRY:NAME" (digits, a colon, the name): revoked by NAME */
    size_t i = 0;
    while (i < ulen && user[i] >= '0' && user[i] <= '9')
        i++;
    return i > 0 && i < ulen && user[i] == ':' && ulen - i - 1 == nlen && !memcmp(user + i + 1, name, nlen);
}

static int find(const skd_revoked *r, const char *name, size_t len)
{
    for (int i = 0; i < r->n; i++)
        if (r->lens[i] == len && !memcmp(r->names[i], name, len))
            return i;
    return -1;
}

int skd_revoked_add(skd_revoked *r, const char *name, size_t len)
{
    if (len == 0 || len >= sizeof(r->names[0]))
        return -1;
    pthread_mutex_lock(&r->lock);
    int rv = 0;
    if (find(r, name, len) >= 0) {
        rv = 0;
    } else if (r->n == SKD_REVOKED_MAX) {
        rv = -1;
    } else {
        memcpy(r->names[r->n], name, len);
        r->lens[r->n] = len;
        __atomic_store_n(&r->n, r->n + 1, __ATOMIC_RELEASE);
        rv = 1;
    }
    pthread_mutex_unlock(&r->lock);
    return rv;
}

int skd_revoked_remove(skd_revoked *r, const char *name, size_t len)
{
    pthread_mutex_lock(&r->lock);
    int i = find(r, name, len), rv = i >= 0;
    if (i >= 0) {
        int last = r->n - 1;
        memcpy(r->names[i], r->names[last], r->lens[last]);
        r->lens[i] = r->lens[last];
        __atomic_store_n(&r->n, last, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&r->lock);
    return rv;
}

int skd_revoked_has(skd_revoked *r, const char *user, size_t len)
{
    if (!__atomic_load_n(&r->n, __ATOMIC_ACQUIRE))
        return 0; /* the usual case: nobody revoked, no lock */
    pthread_mutex_lock(&r->lock);
    int hit = 0;
    for (int i = 0; i < r->n && !hit; i++)
        hit = skd_revoked_match(user, len, r->names[i], r->lens[i]);
    pthread_mutex_unlock(&r->lock);
    return hit;
}

int skd_revoked_list(skd_revoked *r, char *buf, size_t cap)
{
    pthread_mutex_lock(&r->lock);
    size_t off = 0;
    int n = r->n;
    if (cap)
        buf[0] = 0;
    for (int i = 0; i < n && off + r->lens[i] + 2 < cap; i++) {
        memcpy(buf + off, r->names[i], r->lens[i]);
        off += r->lens[i];
        buf[off++] = '\n';
        buf[off] = 0;
    }
    pthread_mutex_unlock(&r->lock);
    return n;
}
