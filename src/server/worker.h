/*
 * worker.h - the server: worker threads, each with its own SO_REUSEPORT
 * sockets, a rate limiter and counters. UDP workers receive and send in
 * batches (recvmmsg/sendmmsg), blocking in recvmmsg when they own a single
 * socket and using epoll when they own several (RFC 5780 mode); stream
 * workers serve TCP, TLS and DTLS with epoll. Workers share nothing but the
 * read-only config; credentials and TLS contexts are swapped atomically on
 * SIGHUP and the replaced ones freed once no worker can hold them
 * (skd_server_retire / skd_server_reclaim).
 */
#ifndef STUNKITD_WORKER_H
#define STUNKITD_WORKER_H

#include <pthread.h>
#include <stdint.h>

#include "config.h"
#include "handler.h"
#include "ratelimit.h"
#include "stats.h"
#include "tls.h"

#define SKD_MAX_SOCKS 32

typedef struct skd_worker skd_worker;

/* Something replaced on SIGHUP, waiting until no worker can be using it. */
typedef struct skd_retired {
    void *ptr;
    void (*release)(void *);
    uint64_t epoch;
    struct skd_retired *next;
} skd_retired;

typedef struct skd_server {
    const skd_config *cfg;
    skd_handler_cfg hcfg;
    skd_sock_spec specs[SKD_MAX_SOCKS];
    int n_specs;
    int stop_fd; /* eventfd: readable once the server is stopping */
    int n_workers;       /* n_dgram + n_stream */
    int n_dgram, n_stream;
    int stopping;        /* atomic; blocking workers poll it */
    int draining;        /* atomic: no new allocations; the exit follows (main.c) */
    skd_worker **workers;
    skd_stats *stats; /* one block per worker */
    int tls_on;
    skd_tls tls;
    uint32_t seed;          /* from the caller: hash seeds of the tables */
    uint64_t epoch;         /* bumped after each swap of shared configuration */
    struct skd_xdp *xdp;    /* --xdp: the program's counters join the totals */
    struct skd_turn_limits *turn_limits; /* --turn: allocations in total and per user, kept ports (server-wide) */
    int n_turn;             /* workers that relay */
    skd_retired *retired;   /* main thread only */
    int n_retired;
} skd_server;

/* Binds every worker's sockets; on failure prints why and returns -1. */
int skd_server_open(skd_server *srv, const skd_config *cfg);
int skd_server_start(skd_server *srv);
void skd_server_stop(skd_server *srv); /* signals the workers and joins them */
void skd_server_close(skd_server *srv);
/* --xdp: the program (NULL: none) for the counters and, with TURN, the
 * channel offload. Before skd_server_start. */
void skd_server_set_xdp(skd_server *srv, struct skd_xdp *x);
/* Every worker's counters summed, with the shared tables' (rendezvous). */
void skd_server_stats(const skd_server *srv, skd_stats *total);

/* Main thread: hands over something a swap replaced; it is released once
 * every running worker has passed a quiescent point after the swap. */
void skd_server_retire(skd_server *srv, void *ptr, void (*release)(void *));
/* Releases what no worker can still hold; returns how many wait. Call it
 * now and then (the main thread does, every second). */
int skd_server_reclaim(skd_server *srv);

#endif
