/* config.h - stunkitd's options, parsed and validated before anything binds. */
#ifndef STUNKITD_CONFIG_H
#define STUNKITD_CONFIG_H

#include <stddef.h>

#include "auth.h"
#include "handler.h"
#include "stunkit/stunkit.h"

#define SKD_MAX_LISTEN 16
#define SKD_DEFAULT_PORT 3478
#define SKD_MAX_STRINGS 64

typedef struct skd_config {
    stunkit_addr listen[SKD_MAX_LISTEN];
    int n_listen;
    stunkit_addr alternate[2]; /* [0] IPv4, [1] IPv6; family 0 = none */
    stunkit_addr advertise[2], advertise_alt[2];
    int threads;
    int udp, tcp;
    const char *software;
    double rate, burst, rate_redir, burst_redir;
    size_t rate_slots;
    int tcp_idle_s;
    int tcp_max_conns;
    int log_level;
    const char *user;     /* drop privileges to this user after binding */
    stunkit_addr metrics; /* Prometheus endpoint, family 0: off */
    skd_auth *auth;       /* NULL: no authentication */
    const char *tls_cert, *tls_key; /* STUN over TLS when both are set */
    uint16_t tls_port;              /* default 5349 */
    char *strings[SKD_MAX_STRINGS]; /* config file values the fields point into */
    int n_strings;
} skd_config;

/* Returns 0 to run, 1 when --help/--version printed, -1 after printing one
 * line saying what is wrong. */
int skd_config_parse(skd_config *cfg, int argc, char **argv);
void skd_config_free(skd_config *cfg);

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

#endif
