/*
 * main.c - stunkitd: parse options, bind, run the workers, and wait for
 * signals (SIGINT/SIGTERM stop, SIGUSR1 prints counters) in the main thread.
 */
#include <signal.h>
#include <stdio.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <errno.h>
#include <grp.h>
#include <pwd.h>

#include "config.h"
#include "log.h"
#include "control.h"
#include "metrics.h"
#include "revoked.h"
#include "notify.h"
#include "worker.h"
#include "xdp.h"

/* The counters: on SIGUSR1 always (the operator asked), at exit only at
 * --log-level info or above. */
static void dump_stats(const skd_server *srv, const char *why, int asked)
{
    if (!asked && skd_log_level < SKD_LOG_INFO)
        return;
    skd_stats total;
    skd_server_stats(srv, &total);
    if (skd_log_to_journal())
        fprintf(stderr, "<6>counters (%s):\n", why);
    else
        skd_log(asked && skd_log_level < SKD_LOG_INFO ? skd_log_level : SKD_LOG_INFO, "counters (%s):", why);
    skd_stats_print(stderr, &total);
}

/* --user: after the sockets are bound, become NAME (its uid, gid and
 * supplementary groups) and make sure there is no way back to root. */
static int drop_privileges(const char *name)
{
    struct passwd *pw = getpwnam(name);
    if (!pw) {
        skd_error("--user %s: no such user", name);
        return -1;
    }
    if (getuid() != 0 && geteuid() != 0) {
        if (pw->pw_uid == getuid())
            return 0; /* already that user */
        skd_error("--user %s: only root can change user%s", name,
                  getenv("INVOCATION_ID") ? " (under systemd's unit the service already runs as its own user: drop "
                                            "'user' from the config)"
                                          : "");
        return -1;
    }
    if (initgroups(pw->pw_name, pw->pw_gid) != 0 || setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0) {
        skd_error("--user %s: cannot drop privileges: %s", name, strerror(errno));
        return -1;
    }
    if (pw->pw_uid != 0 && (setuid(0) == 0 || seteuid(0) == 0)) {
        skd_error("--user %s: root could be regained; refusing to run", name);
        return -1;
    }
    skd_info("running as %s (uid %u, gid %u)", name, (unsigned)pw->pw_uid, (unsigned)pw->pw_gid);
    return 0;
}

/*
 * SIGHUP: read the options (and the config file) again and swap in the new
 * credentials; workers pick them up with an atomic load, nothing is dropped.
 * The replaced set is retired and freed once no worker can be reading it
 * (worker.c, skd_server_reclaim), so any number of reloads keeps memory flat
 * and a revoked password stops working at once. Addresses, ports and limits
 * need a restart.
 */
static void auth_free(void *ptr)
{
    skd_auth *a = ptr;
    if (!a)
        return;
    volatile uint8_t *p = (volatile uint8_t *)a; /* no credentials left in freed memory */
    for (size_t i = 0; i < sizeof(*a); i++)
        p[i] = 0;
    free(a);
}

static uint64_t mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec;
}

static int live_allocations(const skd_server *srv)
{
    return srv->turn_limits ? __atomic_load_n(&srv->turn_limits->n_held, __ATOMIC_RELAXED) : 0;
}

/* SIGUSR2: a drain. New allocations go to an alternate (300) or are
 * refused (508); the ones there are kept until they end or the drain
 * times out; /ready says 503 at once, so a balancer sends no one new. The
 * exit follows (drain_tick). Returns the deadline (monotonic seconds). */
static uint64_t drain_start(skd_server *srv, const skd_config *cfg)
{
    __atomic_store_n(&srv->draining, 1, __ATOMIC_RELEASE);
    if (srv->turn_limits)
        __atomic_store_n(&srv->turn_limits->draining, 1, __ATOMIC_RELEASE);
    skd_info("SIGUSR2: draining: no new allocations (%s); %d held, waiting at most %d s for them to end",
             cfg->turn.n_alternates ? "300 Try Alternate" : "508", live_allocations(srv), cfg->drain_timeout_s);
    skd_notify("STATUS=draining");
    return mono_s() + (uint64_t)cfg->drain_timeout_s;
}

/* 1 when the drain is over: no allocation left, or the time is up. */
static int drain_tick(skd_server *srv, uint64_t end)
{
    int left = live_allocations(srv);
    if (left == 0) {
        skd_info("drained: no allocation left; stopping");
    } else if (mono_s() >= end) {
        skd_info("drain timed out with %d allocation%s left; stopping", left, left == 1 ? "" : "s");
    } else {
        return 0;
    }
    skd_notify("STOPPING=1");
    return 1;
}

static void reload_credentials(skd_server *srv, const skd_config *running, int argc, char **argv)
{
    skd_config fresh;
    int saved = skd_log_level;
    /* the parser says what is wrong in one line (FILE:LINE: key: why),
     * as at startup */
    if (skd_config_parse(&fresh, argc, argv) != 0) {
        skd_config_free(&fresh);
        skd_log_level = saved;
        skd_error("SIGHUP: the configuration no longer parses (the line above says where); nothing changed");
        return;
    }
    /* what a reload cannot apply is said, not silently ignored */
    char keys[512];
    int n = skd_config_restart_keys(running, &fresh, keys, sizeof(keys));
    if (n)
        skd_warn("SIGHUP: %s changed; %s a restart (the running value%s stay%s)", keys,
                 n == 1 ? "that needs" : "those need", n == 1 ? "" : "s", n == 1 ? "s" : "");
    skd_log_level = fresh.log_level; /* applied at once */
    const skd_auth *cur = srv->hcfg.auth;
    if ((cur && cur->short_term) != (fresh.auth && fresh.auth->short_term) ||
        (cur && cur->enabled) != (fresh.auth && fresh.auth->enabled && fresh.auth->enabled))
        skd_info("SIGHUP: authentication changes with the new configuration");
    skd_auth *old = (skd_auth *)srv->hcfg.auth;
    skd_auth *next = fresh.auth;
    fresh.auth = NULL; /* now the server's */
    if (next && old && !next->n_secrets && !next->nonce_seed_len)
        memcpy(next->nonce_key, old->nonce_key, sizeof(next->nonce_key)); /* outstanding nonces stay valid */
    __atomic_store_n(&srv->hcfg.auth, next, __ATOMIC_RELEASE);
    if (srv->xdp) /* Binding in XDP only without credentials */
        skd_xdp_set_answer(srv->xdp, !(next && next->enabled));
    if (old)
        skd_server_retire(srv, old, auth_free);
    skd_config_free(&fresh);
    if (next)
        skd_info("SIGHUP: credentials reloaded (%zu user%s, %zu shared secret%s)", next->n_users,
                 next->n_users == 1 ? "" : "s", next->n_secrets, next->n_secrets == 1 ? "" : "s");
    else
        skd_info("SIGHUP: reloaded: authentication is off");
}

static void ssl_ctx_free(void *ctx)
{
    SSL_CTX_free(ctx);
}

/* Descriptors: take the hard limit (each TCP/TLS connection needs one). */
static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= rl.rlim_max)
        return;
    rlim_t was = rl.rlim_cur;
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
        skd_debug("descriptor limit raised from %lu to %lu", (unsigned long)was, (unsigned long)rl.rlim_max);
}

int main(int argc, char **argv)
{
    skd_config cfg;
    skd_server srv;
    if (argc >= 2 && !strcmp(argv[1], "ctl")) /* the control socket's client */
        return skd_ctl_main(argc - 1, argv + 1);
    skd_log_init();
    int rv = skd_config_parse(&cfg, argc, argv);
    if (rv != 0) {
        skd_config_free(&cfg);
        return rv > 0 ? 0 : 2;
    }
    skd_log_level = cfg.log_level;
    /* --log-level debug: the settings in effect, after defaults and the
     * config file */
    skd_debug("settings: %d thread(s), UDP %s, TCP %s, TLS %s, rate limit %.0f/s (burst %.0f), strict budget "
              "%.0f/s (burst %.0f), %zu sources tracked per thread, authentication %s, TURN %s, rendezvous %s, "
              "TCP idle %d s, TCP connections %d, metrics %s, output %s",
              cfg.threads, cfg.udp ? "on" : "off", cfg.tcp ? "on" : "off", cfg.tls_cert ? "on" : "off", cfg.rate,
              cfg.burst, cfg.rate_redir, cfg.burst_redir, cfg.rate_slots, cfg.auth ? "on" : "off",
              cfg.turn.enabled ? "on" : "off", cfg.rdv.enabled ? "on" : "off", cfg.tcp_idle_s, cfg.tcp_max_conns,
              cfg.metrics.family ? "on" : "off", skd_log_to_journal() ? "journald" : "stderr");
    raise_nofile();
    if (getrandom(&cfg.seed, sizeof(cfg.seed), 0) != (ssize_t)sizeof(cfg.seed))
        cfg.seed = (uint32_t)time(NULL) ^ ((uint32_t)getpid() << 16);

    /* Signals go to the main thread only: block them before any worker
     * starts, then wait for them synchronously. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    /* the credentials now belong to the server (reloads swap them) */
    skd_metrics metrics;
    memset(&metrics, 0, sizeof(metrics));
    metrics.fd = -1;
    skd_control control;
    memset(&control, 0, sizeof(control));
    control.fd = -1;
    static skd_revoked revoked; /* lives as long as the process; the workers read it */
    int opened = skd_server_open(&srv, &cfg);
    if (opened == 0)
        /* before --user drops the privileges XDP needs; never fatal */
        skd_server_set_xdp(&srv, skd_xdp_start(&cfg, &srv.hcfg, srv.specs, srv.n_specs));
    if (opened == 0 && cfg.control) {
        if (skd_revoked_init(&revoked) == 0)
            srv.hcfg.revoked = &revoked; /* before the workers start */
        else
            opened = -1;
    }
    if (opened != 0 ||
        (cfg.metrics.family && skd_metrics_open(&metrics, &cfg.metrics, cfg.metrics_max_conns, &srv) != 0) ||
        (cfg.control && skd_control_open(&control, cfg.control, cfg.control_mode, cfg.control_group, &srv) != 0) ||
        (cfg.user && drop_privileges(cfg.user) != 0)) {
        skd_control_close(&control);
        skd_metrics_close(&metrics);
        skd_server_close(&srv);
        skd_config_free(&cfg);
        return 1;
    }
    if (skd_server_start(&srv) != 0 || (metrics.fd >= 0 && skd_metrics_start(&metrics) != 0) ||
        skd_control_start(&control) != 0) {
        skd_server_stop(&srv);
        skd_control_close(&control);
        skd_metrics_close(&metrics);
        skd_server_close(&srv);
        skd_config_free(&cfg);
        return 1;
    }
    cfg.auth = NULL; /* the server owns the credentials now; SIGHUP may swap them */
    skd_info("stunkitd %s running: %d UDP and %d TCP/TLS/DTLS worker thread%s, rate limit %s", STUNKIT_VERSION,
             srv.n_dgram, srv.n_stream, srv.n_stream == 1 ? "" : "s", cfg.rate > 0 ? "on" : "off");
    skd_notify("READY=1\nSTATUS=serving"); /* Type=notify: the sockets are bound, the workers run */
    struct timespec tick = {1, 0};
    uint64_t drain_end = 0;
    for (;;) {
        int sig = sigtimedwait(&set, NULL, &tick);
        skd_server_reclaim(&srv);
        if (drain_end && drain_tick(&srv, drain_end))
            break;
        if (sig == SIGUSR2 && !drain_end) {
            drain_end = drain_start(&srv, &cfg);
            if (drain_tick(&srv, drain_end))
                break;
        } else if (sig == SIGUSR1) {
            dump_stats(&srv, "SIGUSR1", 1);
        } else if (sig == SIGHUP) {
            skd_debug("SIGHUP: reloading");
            struct timespec mono;
            clock_gettime(CLOCK_MONOTONIC, &mono);
            char reloading[64];
            snprintf(reloading, sizeof(reloading), "RELOADING=1\nMONOTONIC_USEC=%llu",
                     (unsigned long long)mono.tv_sec * 1000000ull + (unsigned long long)mono.tv_nsec / 1000u);
            skd_notify(reloading);
            reload_credentials(&srv, &cfg, argc, argv);
            SSL_CTX *old[2];
            if (srv.tls_on && skd_tls_reload(&srv.tls, old) == 0) { /* logs either way; traffic goes on */
                skd_server_retire(&srv, old[0], ssl_ctx_free);
                skd_server_retire(&srv, old[1], ssl_ctx_free);
            }
            /* Bounded memory however fast reloads come: past a few
             * waiting, wait (at most a second) for the workers to pass. */
            for (int i = 0; i < 100 && skd_server_reclaim(&srv) > 16; i++)
                nanosleep(&(struct timespec){0, 10000000}, NULL);
            skd_notify("READY=1\nSTATUS=serving");
        } else if (sig == SIGINT || sig == SIGTERM) {
            skd_info("%s: stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
            skd_notify("STOPPING=1");
            break;
        }
    }
    skd_server_stop(&srv);
    skd_control_close(&control);
    skd_metrics_close(&metrics);
    dump_stats(&srv, "exit", 0);
    skd_auth *current = (skd_auth *)srv.hcfg.auth;
    skd_server_close(&srv); /* frees what was retired */
    skd_config_free(&cfg);
    auth_free(current);
    return 0;
}
