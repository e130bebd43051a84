/*
 * reclaim.c - freeing what a reload replaced, once no worker can hold it.
 * Credentials and TLS contexts replaced on SIGHUP are retired with the
 * epoch of the swap; each worker publishes the epoch it saw at the top of
 * its loop (skd_worker_quiescent: it holds no pointer to shared
 * configuration there) or that it is blocking (skd_worker_offline); what
 * every running worker has passed is freed (skd_server_reclaim, called by
 * the main thread).
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdlib.h>

#include "log.h"
#include "worker_int.h"

/* Holding no pointer to shared configuration: at the top of the loop. */
void skd_worker_quiescent(skd_worker *w)
{
    __atomic_store_n(&w->epoch, __atomic_load_n(&w->srv->epoch, __ATOMIC_SEQ_CST), __ATOMIC_SEQ_CST);
}

/* About to block: holding nothing until skd_worker_quiescent() again, so a
 * reload does not wait for this worker to wake up. (Sequentially
 * consistent stores and loads: if the reclaimer sees OFFLINE, the worker's
 * next pointer load comes after the swap and sees the new value.) */
void skd_worker_offline(skd_worker *w)
{
    __atomic_store_n(&w->epoch, UINT64_MAX, __ATOMIC_SEQ_CST);
}

void skd_server_retire(skd_server *srv, void *ptr, void (*release)(void *))
{
    skd_retired *r = malloc(sizeof(*r));
    if (!r) {
        /* cannot track it: leaking is the only safe choice */
        skd_warn("out of memory: a replaced configuration is kept");
        return;
    }
    r->ptr = ptr;
    r->release = release;
    /* the swap happened before this increment: a worker that saw this
     * epoch (or a later one) at the top of its loop sees the new pointer */
    r->epoch = __atomic_add_fetch(&srv->epoch, 1, __ATOMIC_SEQ_CST);
    r->next = srv->retired;
    srv->retired = r;
    srv->n_retired++;
}

int skd_server_reclaim(skd_server *srv)
{
    uint64_t seen = UINT64_MAX;
    for (int i = 0; i < srv->n_workers; i++) {
        skd_worker *w = srv->workers[i];
        if (!w || !w->started)
            continue;
        uint64_t e = __atomic_load_n(&w->epoch, __ATOMIC_SEQ_CST);
        if (e < seen)
            seen = e;
    }
    skd_retired **pp = &srv->retired;
    while (*pp) {
        skd_retired *r = *pp;
        if (r->epoch <= seen) {
            *pp = r->next;
            r->release(r->ptr);
            free(r);
            srv->n_retired--;
        } else {
            pp = &r->next;
        }
    }
    return srv->n_retired;
}
