/*
 * listeners.c - the options turned into the sockets each worker binds, and
 * the handler's view of the server's addresses (RFC 5780 mode: four sockets
 * per family, see binding.c).
 */
#include <string.h>

#include "config.h"

int skd_config_sockets(const skd_config *cfg, skd_sock_spec *specs, int cap, skd_handler_cfg *h)
{
    int n = 0;
    memset(h, 0, sizeof(*h));
    h->software = cfg->software;
    h->open_binding = cfg->turn.enabled && !cfg->secure_stun;
    h->software_len = cfg->software ? strlen(cfg->software) : 0;

    stunkit_addr defaults[2];
    const stunkit_addr *listen = cfg->listen;
    int n_listen = cfg->n_listen;
    if (n_listen == 0) {
        stunkit_addr_parse("0.0.0.0", SKD_DEFAULT_PORT, &defaults[0]);
        stunkit_addr_parse("::", SKD_DEFAULT_PORT, &defaults[1]);
        listen = defaults;
        n_listen = 2;
    }
    for (int i = 0; i < n_listen && n < cap; i++) {
        const stunkit_addr *l = &listen[i];
        int fi = l->family == STUNKIT_AF_INET6;
        skd_family *fam = fi ? &h->v6 : &h->v4;
        fam->ip[0] = *l;
        fam->port[0] = l->port;
        fam->advertise[0] = cfg->advertise[fi].family ? cfg->advertise[fi] : *l;
        specs[n++] = (skd_sock_spec){*l, skd_is_wildcard(l), 0, 0, 0};
        if (cfg->tls_cert && n < cap) {
            /* STUN over TLS (TCP) and DTLS (UDP) on the primary address
             * (RFC 8489: port 5349 for both) */
            skd_sock_spec t = {*l, skd_is_wildcard(l), 0, 0, 1};
            t.addr.port = cfg->tls_port;
            specs[n++] = t;
        }
        if (!cfg->alternate[fi].family)
            continue;
        const stunkit_addr *alt = &cfg->alternate[fi];
        fam->rfc5780 = 1;
        fam->ip[1] = *alt;
        fam->port[1] = alt->port;
        fam->advertise[1] = cfg->advertise_alt[fi].family ? cfg->advertise_alt[fi] : *alt;
        for (int ipi = 0; ipi < 2; ipi++)
            for (int pi = 0; pi < 2; pi++) {
                if ((ipi == 0 && pi == 0) || n >= cap)
                    continue;
                skd_sock_spec s = {fam->ip[ipi], 0, ipi, pi, 0};
                s.addr.port = fam->port[pi];
                specs[n++] = s;
            }
    }
    for (int i = 0; i < n && h->n_own < SKD_OWN_MAX; i++)
        h->own[h->n_own++] = specs[i].addr;
    if (cfg->metrics.family && h->n_own < SKD_OWN_MAX)
        h->own[h->n_own++] = cfg->metrics;
    return n;
}
