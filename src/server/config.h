/*
 * config.h - stunkitd's options, parsed and validated before anything binds.
 *
 *   config.c       the option table (which generates --help, the long
 *                  options and the config-file keys) and the checks
 *   config_file.c  the config file's lexer
 *   listeners.c    the options turned into sockets to bind
 */
#ifndef STUNKITD_CONFIG_H
#define STUNKITD_CONFIG_H

#include <stddef.h>

#include "auth.h"
#include "handler.h"
#include "stunkit/stunkit.h"
#include "rooms.h"
#include "turn_relay.h"

#define SKD_MAX_LISTEN 16
#define SKD_MAX_XDP 8
#define SKD_DEFAULT_PORT 3478

typedef struct skd_config {
    stunkit_addr listen[SKD_MAX_LISTEN];
    int n_listen;
    stunkit_addr alternate[2]; /* [0] IPv4, [1] IPv6; family 0 = none */
    stunkit_addr advertise[2], advertise_alt[2];
    int threads;
    int udp, tcp;
    const char *xdp[SKD_MAX_XDP]; /* --xdp interfaces */
    int n_xdp;
    const char *software;
    double rate, burst, rate_redir, burst_redir;
    size_t rate_slots;
    int tcp_idle_s;
    int request_timeout_s; /* a TCP/TLS request from its first byte, a TLS or DTLS handshake */
    int tcp_max_conns;
    int tls_max_conns;
    int tcp_per_source;    /* TCP+TLS connections per source IP and worker */
    int dtls_per_source;   /* DTLS sessions per source IP and worker */
    int log_level;
    const char *user;     /* drop privileges to this user after binding */
    stunkit_addr metrics; /* Prometheus endpoint, family 0: off */
    int metrics_max_conns;
    skd_auth *auth;       /* NULL: no authentication */
    const char *tls_cert, *tls_key; /* STUN over TLS when both are set */
    uint16_t tls_port;              /* default 5349 */
    uint32_t seed;                  /* hash seeds (filled by main from the OS) */
    skd_turn_cfg turn;              /* TURN relay (--turn) */
    int secure_stun;                /* --secure-stun: with TURN, Binding needs credentials too */
    skd_rdv_cfg rdv;                /* rendezvous rooms (--rendezvous) */
    int drain_timeout_s;            /* SIGUSR2: the longest drain before the exit */
    const char *control;            /* the control socket's path, NULL: off */
    skd_cidr proxy_from[16];        /* proxies whose PROXY v2 header is taken (--proxy-from) */
    int n_proxy_from;
    unsigned control_mode;
    const char *control_group;
    char **strings;       /* config file values the fields point into */
    int n_strings, cap_strings;
} skd_config;

/* Returns 0 to run, 1 when --help/--version printed, -1 after printing one
 * line saying what is wrong (the caller exits 2). */
int skd_config_parse(skd_config *cfg, int argc, char **argv);
void skd_config_free(skd_config *cfg);

/* A reload (SIGHUP) applies the credentials, the TLS files and the log
 * level; everything else needs a restart. Writes the keys (option names)
 * whose values differ between the running and the re-read configuration,
 * comma-separated, into out; returns how many. */
int skd_config_restart_keys(const skd_config *running, const skd_config *fresh, char *out, size_t cap);

/* One socket the server binds (per worker, with SO_REUSEPORT). */
typedef struct skd_sock_spec {
    stunkit_addr addr; /* IP and port to bind */
    int wildcard;      /* 0.0.0.0 or :: : use PKTINFO to learn/set the local IP */
    int ip_index, port_index;
    int tls;           /* a TLS listener (TCP only) */
} skd_sock_spec;

/* Expands the listen/alternate options into sockets and fills the handler's
 * view of the addresses. Returns the number of specs. */
int skd_config_sockets(const skd_config *cfg, skd_sock_spec *specs, int cap, skd_handler_cfg *hcfg);

/* ---- config_file.c ---- */

/* Calls apply(key, value, where) for each `key = value` line of path; where
 * is "FILE:LINE: key". Prints one line and returns -1 on a syntax error;
 * returns apply's first non-zero result otherwise. */
typedef int (*skd_config_apply_fn)(void *ctx, const char *key, const char *value, int has_value, const char *where);
int skd_config_read_file(const char *path, skd_config_apply_fn apply, void *ctx);

int skd_is_wildcard(const stunkit_addr *a);

#endif
