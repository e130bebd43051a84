/* metrics.h - the counters as Prometheus text over HTTP (opt-in, --metrics). */
#ifndef STUNKITD_METRICS_H
#define STUNKITD_METRICS_H

#include <pthread.h>

#include "worker.h"

#define SKD_METRICS_REQUEST_MS 2000 /* a whole request, from accept */
#define SKD_METRICS_ANSWER_MS 5000  /* a whole answer, from its first byte */

typedef struct skd_metrics_conn {
    int fd;                /* -1: free slot */
    uint64_t deadline_ms;  /* the request's, then the answer's */
    size_t got;
    char req[2048];
    char *out;             /* the answer while it goes out (NULL: still reading) */
    size_t out_len, out_off;
} skd_metrics_conn;

typedef struct skd_metrics {
    int fd;
    int running;
    pthread_t thread;
    skd_server *srv;
    int max_conns;
    skd_metrics_conn *conns;
} skd_metrics;

/* Binds the endpoint (before privileges are dropped); warns when it is not
 * on a loopback address. 0 or -1 (logged). */
int skd_metrics_open(skd_metrics *m, const stunkit_addr *addr, int max_conns, skd_server *srv);
int skd_metrics_start(skd_metrics *m);
/* Stops with the server's stop eventfd; joins and closes. */
void skd_metrics_close(skd_metrics *m);

#endif
