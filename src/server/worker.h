/*
 * worker.h - one server thread: its own SO_REUSEPORT sockets, a rate limiter
 * and counters. UDP workers receive and send in batches (recvmmsg/sendmmsg),
 * blocking in recvmmsg when they own a single socket and using epoll when
 * they own several (RFC 5780 mode); stream workers serve TCP, TLS and DTLS
 * with epoll. Workers share nothing but the read-only config (credentials and
 * TLS contexts are swapped atomically on SIGHUP).
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

typedef struct skd_server {
    const skd_config *cfg;
    skd_handler_cfg hcfg;
    skd_sock_spec specs[SKD_MAX_SOCKS];
    int n_specs;
    int stop_fd; /* eventfd: readable once the server is stopping */
    int n_workers;       /* n_dgram + n_stream */
    int n_dgram, n_stream;
    int stopping;        /* atomic; blocking workers poll it */
    skd_worker **workers;
    skd_stats *stats; /* one block per worker */
    int tls_on;
    skd_tls tls;
} skd_server;

/* Binds every worker's sockets; on failure prints why and returns -1. */
int skd_server_open(skd_server *srv, const skd_config *cfg);
int skd_server_start(skd_server *srv);
void skd_server_stop(skd_server *srv); /* signals the workers and joins them */
void skd_server_close(skd_server *srv);

#endif
