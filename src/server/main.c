/*
 * main.c - stunkitd: parse options, bind, run the workers, and wait for
 * signals (SIGINT/SIGTERM stop, SIGUSR1 prints counters) in the main thread.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "worker.h"

static void dump_stats(const skd_server *srv, const char *why)
{
    skd_stats total;
    skd_stats_sum(&total, srv->stats, srv->n_workers);
    skd_info("counters (%s):", why);
    skd_stats_print(stderr, &total);
}

int main(int argc, char **argv)
{
    skd_config cfg;
    skd_server srv;
    int rv = skd_config_parse(&cfg, argc, argv);
    if (rv != 0)
        return rv > 0 ? 0 : 2;
    skd_log_level = cfg.log_level;

    /* Signals go to the main thread only: block them before any worker
     * starts, then wait for them synchronously. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    srandom((unsigned)time(NULL) ^ ((unsigned)getpid() << 16));

    if (skd_server_open(&srv, &cfg) != 0) {
        skd_server_close(&srv);
        return 1;
    }
    if (skd_server_start(&srv) != 0) {
        skd_server_stop(&srv);
        skd_server_close(&srv);
        return 1;
    }
    skd_info("stunkitd %s running: %d thread%s, rate limit %s", STUNKIT_VERSION, srv.n_workers,
             srv.n_workers == 1 ? "" : "s", cfg.rate > 0 ? "on" : "off");
    for (;;) {
        int sig = sigwaitinfo(&set, NULL);
        if (sig == SIGUSR1) {
            dump_stats(&srv, "SIGUSR1");
        } else if (sig == SIGHUP) {
            skd_info("SIGHUP: nothing to reload in this version");
        } else if (sig == SIGINT || sig == SIGTERM) {
            skd_info("%s: stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
            break;
        }
    }
    skd_server_stop(&srv);
    dump_stats(&srv, "exit");
    skd_server_close(&srv);
    return 0;
}
