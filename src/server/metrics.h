/* metrics.h - the counters as Prometheus text over HTTP (opt-in, --metrics). */
#ifndef STUNKITD_METRICS_H
#define STUNKITD_METRICS_H

#include <pthread.h>

#include "worker.h"

typedef struct skd_metrics {
    int fd;
    int running;
    pthread_t thread;
    skd_server *srv;
} skd_metrics;

/* Binds the endpoint (before privileges are dropped). 0 or -1 (logged). */
int skd_metrics_open(skd_metrics *m, const stunkit_addr *addr, skd_server *srv);
int skd_metrics_start(skd_metrics *m);
/* Stops with the server's stop eventfd; joins and closes. */
void skd_metrics_close(skd_metrics *m);

#endif
