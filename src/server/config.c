/* config.c - command-line options of stunkitd (see man/stunkitd.8). */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: stunkitd [options]\n"
            "\n"
            "A STUN server (RFC 8489, RFC 5780 behaviour discovery, RFC 3489 clients).\n"
            "Runs in the foreground and logs to stderr; SIGINT/SIGTERM stop it,\n"
            "SIGUSR1 prints the counters.\n"
            "\n"
            "Addresses: ADDR, ADDR:PORT or [V6ADDR]:PORT; the default port is 3478.\n"
            "\n"
            "  -l, --listen ADDR[:PORT]     listen here (repeatable; default: 0.0.0.0 and ::)\n"
            "  -a, --alternate ADDR[:PORT]  RFC 5780 mode: the second IP (and port; default\n"
            "                               the primary port + 1) for the --listen address of\n"
            "                               the same family; the server then listens on all\n"
            "                               four IP/port pairs (one per family)\n"
            "      --advertise ADDR         public IP of the primary address (1:1 NAT), used\n"
            "                               in OTHER-ADDRESS and RESPONSE-ORIGIN\n"
            "      --advertise-alternate ADDR  public IP of the alternate address\n"
            "  -t, --threads N              worker threads (default: one per core)\n"
            "      --no-udp, --no-tcp       serve only TCP, only UDP\n"
            "      --software TEXT          send a SOFTWARE attribute (default: none)\n"
            "      --rate-limit N           requests per second per source IP (default 200;\n"
            "                               0 turns the limiter off)\n"
            "      --rate-burst N           bucket size (default 2 x rate)\n"
            "      --redirect-rate-limit N  per-source budget for answers sent elsewhere\n"
            "                               (CHANGE-REQUEST, RESPONSE-PORT; default 20)\n"
            "      --rate-table N           sources tracked per thread (default 65536)\n"
            "      --tcp-idle S             close idle TCP connections after S seconds (30)\n"
            "      --tcp-max-conns N        TCP connections at once (default 4096)\n"
            "      --log-level LEVEL        error, warn, info (default) or debug\n"
            "  -h, --help                   this text\n"
            "  -V, --version                the version\n");
}

static int bad(const char *opt, const char *arg, const char *why)
{
    fprintf(stderr, "stunkitd: %s '%s': %s\n", opt, arg, why);
    return -1;
}

static int parse_num(const char *opt, const char *arg, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(arg, &end);
    if (errno || end == arg || *end || v < lo || v > hi) {
        char why[96];
        snprintf(why, sizeof(why), "expected a number from %g to %g", lo, hi);
        return bad(opt, arg, why);
    }
    *out = v;
    return 0;
}

static int parse_addr(const char *opt, const char *arg, uint16_t def_port, stunkit_addr *a)
{
    if (stunkit_addr_parse(arg, def_port, a) != 0)
        return bad(opt, arg, "not a numeric address (ADDR, ADDR:PORT or [V6ADDR]:PORT)");
    if (a->port == 0 && def_port != 0)
        return bad(opt, arg, "port 0 is not a port to serve on");
    return 0;
}

static int is_wildcard(const stunkit_addr *a)
{
    static const uint8_t zero[16];
    return memcmp(a->ip, zero, a->family == STUNKIT_AF_INET ? 4 : 16) == 0;
}

enum {
    OPT_ADVERTISE = 256,
    OPT_ADVERTISE_ALT,
    OPT_NO_UDP,
    OPT_NO_TCP,
    OPT_SOFTWARE,
    OPT_RATE,
    OPT_BURST,
    OPT_RATE_REDIR,
    OPT_RATE_TABLE,
    OPT_TCP_IDLE,
    OPT_TCP_MAX,
    OPT_LOG_LEVEL
};

int skd_config_parse(skd_config *cfg, int argc, char **argv)
{
    static const struct option opts[] = {{"listen", required_argument, NULL, 'l'},
                                         {"alternate", required_argument, NULL, 'a'},
                                         {"advertise", required_argument, NULL, OPT_ADVERTISE},
                                         {"advertise-alternate", required_argument, NULL, OPT_ADVERTISE_ALT},
                                         {"threads", required_argument, NULL, 't'},
                                         {"no-udp", no_argument, NULL, OPT_NO_UDP},
                                         {"no-tcp", no_argument, NULL, OPT_NO_TCP},
                                         {"software", required_argument, NULL, OPT_SOFTWARE},
                                         {"rate-limit", required_argument, NULL, OPT_RATE},
                                         {"rate-burst", required_argument, NULL, OPT_BURST},
                                         {"redirect-rate-limit", required_argument, NULL, OPT_RATE_REDIR},
                                         {"rate-table", required_argument, NULL, OPT_RATE_TABLE},
                                         {"tcp-idle", required_argument, NULL, OPT_TCP_IDLE},
                                         {"tcp-max-conns", required_argument, NULL, OPT_TCP_MAX},
                                         {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
                                         {"help", no_argument, NULL, 'h'},
                                         {"version", no_argument, NULL, 'V'},
                                         {NULL, 0, NULL, 0}};
    stunkit_addr alt[4];
    int n_alt = 0, burst_set = 0, c;
    double v;

    memset(cfg, 0, sizeof(*cfg));
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    cfg->threads = cores > 0 ? (int)cores : 1;
    cfg->udp = cfg->tcp = 1;
    cfg->rate = 200;
    cfg->rate_redir = 20;
    cfg->rate_slots = 65536;
    cfg->tcp_idle_s = 30;
    cfg->tcp_max_conns = 4096;
    cfg->log_level = SKD_LOG_INFO;

    opterr = 0;
    while ((c = getopt_long(argc, argv, ":l:a:t:hV", opts, NULL)) != -1) {
        const char *opt = argv[optind - 1];
        switch (c) {
        case 'l':
            if (cfg->n_listen == SKD_MAX_LISTEN)
                return bad("--listen", optarg, "too many listen addresses");
            if (parse_addr("--listen", optarg, SKD_DEFAULT_PORT, &cfg->listen[cfg->n_listen]) != 0)
                return -1;
            cfg->n_listen++;
            break;
        case 'a':
            if (n_alt == 4)
                return bad("--alternate", optarg, "one alternate per address family");
            /* port 0 here means "primary port + 1", filled in below */
            if (stunkit_addr_parse(optarg, 0, &alt[n_alt]) != 0)
                return bad("--alternate", optarg, "not a numeric address (ADDR, ADDR:PORT or [V6ADDR]:PORT)");
            n_alt++;
            break;
        case OPT_ADVERTISE:
        case OPT_ADVERTISE_ALT: {
            stunkit_addr a;
            const char *name = c == OPT_ADVERTISE ? "--advertise" : "--advertise-alternate";
            if (stunkit_addr_parse(optarg, 0, &a) != 0 || a.port != 0)
                return bad(name, optarg, "expected an IP address without a port");
            stunkit_addr *slot = c == OPT_ADVERTISE ? cfg->advertise : cfg->advertise_alt;
            slot[a.family == STUNKIT_AF_INET6] = a;
            break;
        }
        case 't':
            if (parse_num("--threads", optarg, 1, 256, &v) != 0)
                return -1;
            cfg->threads = (int)v;
            break;
        case OPT_NO_UDP: cfg->udp = 0; break;
        case OPT_NO_TCP: cfg->tcp = 0; break;
        case OPT_SOFTWARE:
            if (strlen(optarg) > 763)
                return bad("--software", optarg, "longer than 763 bytes (RFC 8489 14.14)");
            cfg->software = optarg;
            break;
        case OPT_RATE:
            if (parse_num("--rate-limit", optarg, 0, 1e9, &cfg->rate) != 0)
                return -1;
            break;
        case OPT_BURST:
            if (parse_num("--rate-burst", optarg, 1, 1e9, &cfg->burst) != 0)
                return -1;
            burst_set = 1;
            break;
        case OPT_RATE_REDIR:
            if (parse_num("--redirect-rate-limit", optarg, 0, 1e9, &cfg->rate_redir) != 0)
                return -1;
            break;
        case OPT_RATE_TABLE:
            if (parse_num("--rate-table", optarg, 16, 1 << 26, &v) != 0)
                return -1;
            cfg->rate_slots = (size_t)v;
            break;
        case OPT_TCP_IDLE:
            if (parse_num("--tcp-idle", optarg, 1, 86400, &v) != 0)
                return -1;
            cfg->tcp_idle_s = (int)v;
            break;
        case OPT_TCP_MAX:
            if (parse_num("--tcp-max-conns", optarg, 1, 1000000, &v) != 0)
                return -1;
            cfg->tcp_max_conns = (int)v;
            break;
        case OPT_LOG_LEVEL:
            if ((cfg->log_level = skd_log_level_parse(optarg)) < 0)
                return bad("--log-level", optarg, "expected error, warn, info or debug");
            break;
        case 'h': usage(stdout); return 1;
        case 'V': printf("stunkitd %s\n", STUNKIT_VERSION); return 1;
        case ':': fprintf(stderr, "stunkitd: option %s needs a value (try --help)\n", opt); return -1;
        default: fprintf(stderr, "stunkitd: unknown option '%s' (try --help)\n", opt); return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "stunkitd: unexpected argument '%s' (try --help)\n", argv[optind]);
        return -1;
    }
    if (!cfg->udp && !cfg->tcp) {
        fprintf(stderr, "stunkitd: --no-udp and --no-tcp leave nothing to serve\n");
        return -1;
    }
    if (!burst_set)
        cfg->burst = cfg->rate * 2;
    cfg->burst_redir = cfg->rate_redir * 2;

    /* Each --alternate pairs with the one --listen address of its family. */
    for (int i = 0; i < n_alt; i++) {
        int fi = alt[i].family == STUNKIT_AF_INET6;
        char text[STUNKIT_ADDRSTRLEN];
        stunkit_addr_format(&alt[i], text, sizeof(text));
        if (cfg->alternate[fi].family)
            return bad("--alternate", text, "only one alternate per address family");
        const stunkit_addr *primary = NULL;
        for (int k = 0; k < cfg->n_listen; k++) {
            if (cfg->listen[k].family != alt[i].family)
                continue;
            if (primary)
                return bad("--alternate", text, "RFC 5780 mode takes exactly one --listen address of this family");
            primary = &cfg->listen[k];
        }
        if (!primary)
            return bad("--alternate", text, "needs a --listen address of the same family");
        if (is_wildcard(primary) || is_wildcard(&alt[i]))
            return bad("--alternate", text, "RFC 5780 mode needs specific addresses, not a wildcard");
        if (stunkit_addr_ip_equal(primary, &alt[i]))
            return bad("--alternate", text, "the alternate IP must differ from the --listen IP");
        if (alt[i].port == 0)
            alt[i].port = (uint16_t)(primary->port + 1);
        if (alt[i].port == primary->port || alt[i].port == 0)
            return bad("--alternate", text, "the alternate port must differ from the primary port");
        cfg->alternate[fi] = alt[i];
    }
    for (int fi = 0; fi < 2; fi++)
        if (cfg->advertise_alt[fi].family && !cfg->alternate[fi].family)
            return bad("--advertise-alternate", fi ? "IPv6" : "IPv4", "there is no --alternate of this family");
    return 0;
}

int skd_config_sockets(const skd_config *cfg, skd_sock_spec *specs, int cap, skd_handler_cfg *h)
{
    int n = 0;
    memset(h, 0, sizeof(*h));
    h->software = cfg->software;
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
        specs[n++] = (skd_sock_spec){*l, is_wildcard(l), 0, 0};
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
                skd_sock_spec s = {fam->ip[ipi], 0, ipi, pi};
                s.addr.port = fam->port[pi];
                specs[n++] = s;
            }
    }
    return n;
}
