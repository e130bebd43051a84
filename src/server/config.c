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
            "SIGUSR1 prints the counters, SIGHUP reloads credentials and TLS files.\n"
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
            "  -t, --threads N              UDP worker threads (default: one per core), and as\n"
            "                               many for TCP/TLS/DTLS when those are served\n"
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
            "  -c, --config FILE            read options from FILE: one 'key = value' per line,\n"
            "                               keys named as the long options (listen = ...)\n"
            "      --user NAME              drop to this user (and its groups) after binding\n"
            "      --metrics ADDR[:PORT]    serve the counters as Prometheus text over HTTP\n"
            "                               (port 9478 by default; opt-in)\n"
            "\n"
            "Authentication (off unless credentials or a secret are given):\n"
            "      --credential NAME:PASSWORD  a user (repeatable; better in the config file)\n"
            "      --auth-secret SECRET     accept time-limited credentials made from SECRET:\n"
            "                               username \"EXPIRY:NAME\" (Unix time), password\n"
            "                               base64(HMAC-SHA1(SECRET, username)), as coturn's REST API\n"
            "      --realm REALM            long-term credential realm (default stunkit)\n"
            "      --nonce-lifetime S       stateless NONCE lifetime (default 600); then 438\n"
            "      --short-term             credentials are short-term (no REALM or NONCE)\n"
            "\n"
            "STUN over TLS and DTLS (1.2 or later; SIGHUP reloads the files):\n"
            "      --tls-cert FILE          certificate chain (PEM)\n"
            "      --tls-key FILE           private key (PEM)\n"
            "      --tls-port PORT          TLS (TCP) and DTLS (UDP) port on each --listen\n"
            "                               address (default 5349)\n"
            "  -h, --help                   this text\n"
            "  -V, --version                the version\n");
}

/* `where` names the option ("--listen") or the config line ("FILE:12: listen"). */
static int bad(const char *where, const char *arg, const char *why)
{
    fprintf(stderr, "stunkitd: %s '%s': %s\n", where, arg, why);
    return -1;
}

static int parse_num(const char *where, const char *arg, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(arg, &end);
    if (errno || end == arg || *end || v < lo || v > hi) {
        char why[96];
        snprintf(why, sizeof(why), "expected a number from %g to %g", lo, hi);
        return bad(where, arg, why);
    }
    *out = v;
    return 0;
}

static int parse_addr(const char *where, const char *arg, uint16_t def_port, stunkit_addr *a)
{
    if (stunkit_addr_parse(arg, def_port, a) != 0)
        return bad(where, arg, "not a numeric address (ADDR, ADDR:PORT or [V6ADDR]:PORT)");
    if (a->port == 0 && def_port != 0)
        return bad(where, arg, "port 0 is not a port to serve on");
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
    OPT_LOG_LEVEL,
    OPT_USER,
    OPT_METRICS,
    OPT_REALM,
    OPT_CREDENTIAL,
    OPT_AUTH_SECRET,
    OPT_SHORT_TERM,
    OPT_NONCE_LIFETIME,
    OPT_TLS_CERT,
    OPT_TLS_KEY,
    OPT_TLS_PORT
};

/* Every option; the config file's keys are the same names. */
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
                                     {"user", required_argument, NULL, OPT_USER},
                                     {"metrics", required_argument, NULL, OPT_METRICS},
                                     {"realm", required_argument, NULL, OPT_REALM},
                                     {"credential", required_argument, NULL, OPT_CREDENTIAL},
                                     {"auth-secret", required_argument, NULL, OPT_AUTH_SECRET},
                                     {"short-term", no_argument, NULL, OPT_SHORT_TERM},
                                     {"nonce-lifetime", required_argument, NULL, OPT_NONCE_LIFETIME},
                                     {"tls-cert", required_argument, NULL, OPT_TLS_CERT},
                                     {"tls-key", required_argument, NULL, OPT_TLS_KEY},
                                     {"tls-port", required_argument, NULL, OPT_TLS_PORT},
                                     {"config", required_argument, NULL, 'c'},
                                     {"help", no_argument, NULL, 'h'},
                                     {"version", no_argument, NULL, 'V'},
                                     {NULL, 0, NULL, 0}};

typedef struct pstate {
    stunkit_addr alt[4];
    int n_alt, burst_set, depth;
} pstate;

static int load_file(skd_config *cfg, pstate *st, const char *path);

/* Applies one option (from the command line or a config line). */
static int apply(skd_config *cfg, pstate *st, int c, const char *arg, const char *where)
{
    double v;
    switch (c) {
    case 'l':
        if (cfg->n_listen == SKD_MAX_LISTEN)
            return bad(where, arg, "too many listen addresses");
        if (parse_addr(where, arg, SKD_DEFAULT_PORT, &cfg->listen[cfg->n_listen]) != 0)
            return -1;
        cfg->n_listen++;
        return 0;
    case 'a':
        if (st->n_alt == 4)
            return bad(where, arg, "one alternate per address family");
        /* port 0 here means "primary port + 1", filled in later */
        if (stunkit_addr_parse(arg, 0, &st->alt[st->n_alt]) != 0)
            return bad(where, arg, "not a numeric address (ADDR, ADDR:PORT or [V6ADDR]:PORT)");
        st->n_alt++;
        return 0;
    case OPT_ADVERTISE:
    case OPT_ADVERTISE_ALT: {
        stunkit_addr a;
        if (stunkit_addr_parse(arg, 0, &a) != 0 || a.port != 0)
            return bad(where, arg, "expected an IP address without a port");
        stunkit_addr *slot = c == OPT_ADVERTISE ? cfg->advertise : cfg->advertise_alt;
        slot[a.family == STUNKIT_AF_INET6] = a;
        return 0;
    }
    case 't':
        if (parse_num(where, arg, 1, 256, &v) != 0)
            return -1;
        cfg->threads = (int)v;
        return 0;
    case OPT_NO_UDP: cfg->udp = 0; return 0;
    case OPT_NO_TCP: cfg->tcp = 0; return 0;
    case OPT_SOFTWARE:
        if (strlen(arg) > 763)
            return bad(where, arg, "longer than 763 bytes (RFC 8489 14.14)");
        cfg->software = arg;
        return 0;
    case OPT_RATE: return parse_num(where, arg, 0, 1e9, &cfg->rate);
    case OPT_BURST:
        st->burst_set = 1;
        return parse_num(where, arg, 1, 1e9, &cfg->burst);
    case OPT_RATE_REDIR: return parse_num(where, arg, 0, 1e9, &cfg->rate_redir);
    case OPT_RATE_TABLE:
        if (parse_num(where, arg, 16, 1 << 26, &v) != 0)
            return -1;
        cfg->rate_slots = (size_t)v;
        return 0;
    case OPT_TCP_IDLE:
        if (parse_num(where, arg, 1, 86400, &v) != 0)
            return -1;
        cfg->tcp_idle_s = (int)v;
        return 0;
    case OPT_TCP_MAX:
        if (parse_num(where, arg, 1, 1000000, &v) != 0)
            return -1;
        cfg->tcp_max_conns = (int)v;
        return 0;
    case OPT_LOG_LEVEL:
        if ((cfg->log_level = skd_log_level_parse(arg)) < 0)
            return bad(where, arg, "expected error, warn, info or debug");
        return 0;
    case OPT_USER:
        if (!*arg)
            return bad(where, arg, "expected a user name");
        cfg->user = arg;
        return 0;
    case OPT_METRICS:
        if (parse_addr(where, arg, 9478, &cfg->metrics) != 0)
            return -1;
        return 0;
    case OPT_REALM:
    case OPT_CREDENTIAL:
    case OPT_AUTH_SECRET:
    case OPT_SHORT_TERM:
    case OPT_NONCE_LIFETIME: {
        if (!cfg->auth && !(cfg->auth = calloc(1, sizeof(*cfg->auth))))
            return bad(where, arg, "out of memory");
        skd_auth *a = cfg->auth;
        const char *why;
        if (c == OPT_REALM) {
            size_t n = strlen(arg);
            if (n == 0 || n >= sizeof(a->realm))
                return bad(where, arg, "expected 1 to 127 bytes");
            memcpy(a->realm, arg, n);
            a->realm_len = n;
        } else if (c == OPT_CREDENTIAL) {
            if (skd_auth_add_user(a, arg, &why) != 0)
                return bad(where, "NAME:...", why);
        } else if (c == OPT_AUTH_SECRET) {
            size_t n = strlen(arg);
            if (n < 8 || n > sizeof(a->secret))
                return bad(where, "...", "expected a secret of 8 to 128 bytes");
            memcpy(a->secret, arg, n);
            a->secret_len = n;
        } else if (c == OPT_SHORT_TERM) {
            a->short_term = 1;
        } else {
            if (parse_num(where, arg, 10, 86400, &v) != 0)
                return -1;
            a->nonce_lifetime_s = (uint32_t)v;
        }
        return 0;
    }
    case OPT_TLS_CERT: cfg->tls_cert = arg; return 0;
    case OPT_TLS_KEY: cfg->tls_key = arg; return 0;
    case OPT_TLS_PORT:
        if (parse_num(where, arg, 1, 65535, &v) != 0)
            return -1;
        cfg->tls_port = (uint16_t)v;
        return 0;
    case 'c': return load_file(cfg, st, arg);
    default: return bad(where, arg, "unknown option");
    }
}

/* Keeps config file text alive as long as the config (strings point in it). */
static char *keep(skd_config *cfg, const char *text)
{
    if (cfg->n_strings == SKD_MAX_STRINGS)
        return NULL;
    char *copy = strdup(text);
    if (copy)
        cfg->strings[cfg->n_strings++] = copy;
    return copy;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
        s[--n] = '\0';
    return s;
}

/*
 * The config file: one `key = value` per line, keys named as the long
 * options (listen, alternate, rate-limit, ...); `#` starts a comment;
 * a value may be quoted with "". Flags without a value (no-udp, no-tcp) take
 * yes or no. Errors name the file and line.
 */
static int load_file(skd_config *cfg, pstate *st, const char *path)
{
    if (++st->depth > 4) {
        fprintf(stderr, "stunkitd: %s: config files include each other too deeply\n", path);
        return -1;
    }
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "stunkitd: cannot read config file %s: %s\n", path, strerror(errno));
        return -1;
    }
    char line[1024];
    int lineno = 0, rv = 0;
    while (rv == 0 && fgets(line, sizeof(line), f)) {
        lineno++;
        char where[512];
        if (!strchr(line, '\n') && !feof(f)) {
            fprintf(stderr, "stunkitd: %s:%d: line longer than %zu bytes\n", path, lineno, sizeof(line) - 2);
            rv = -1;
            break;
        }
        char *hash = strchr(line, '#');
        if (hash && !memchr(line, '"', (size_t)(hash - line)))
            *hash = '\0';
        char *l = trim(line);
        if (!*l)
            continue;
        char *eq = strchr(l, '=');
        if (!eq) {
            fprintf(stderr, "stunkitd: %s:%d: expected 'key = value', got '%s'\n", path, lineno, l);
            rv = -1;
            break;
        }
        *eq = '\0';
        char *key = trim(l), *val = trim(eq + 1);
        size_t vlen = strlen(val);
        if (vlen >= 2 && val[0] == '"' && val[vlen - 1] == '"') {
            val[vlen - 1] = '\0';
            val++;
        }
        const struct option *o = NULL;
        for (const struct option *k = opts; k->name; k++)
            if (!strcmp(k->name, key))
                o = k;
        snprintf(where, sizeof(where), "%s:%d: %s", path, lineno, key);
        if (!o || o->val == 'h' || o->val == 'V') {
            fprintf(stderr, "stunkitd: %s:%d: unknown key '%s'\n", path, lineno, key);
            rv = -1;
        } else if (o->has_arg == no_argument) {
            if (!strcmp(val, "yes") || !strcmp(val, "true"))
                rv = apply(cfg, st, o->val, val, where);
            else if (strcmp(val, "no") && strcmp(val, "false"))
                rv = bad(where, val, "expected yes or no");
        } else {
            char *kept = keep(cfg, val);
            rv = kept ? apply(cfg, st, o->val, kept, where) : bad(where, val, "too many string values");
        }
    }
    fclose(f);
    st->depth--;
    return rv;
}

void skd_config_free(skd_config *cfg)
{
    if (cfg->auth) {
        /* credentials do not linger in freed memory */
        volatile uint8_t *p = (volatile uint8_t *)cfg->auth;
        for (size_t i = 0; i < sizeof(*cfg->auth); i++)
            p[i] = 0;
        free(cfg->auth);
        cfg->auth = NULL;
    }
    for (int i = 0; i < cfg->n_strings; i++)
        free(cfg->strings[i]);
    cfg->n_strings = 0;
}

int skd_config_parse(skd_config *cfg, int argc, char **argv)
{
    pstate st;
    int c;

    memset(cfg, 0, sizeof(*cfg));
    memset(&st, 0, sizeof(st));
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    cfg->threads = cores > 0 ? (int)cores : 1;
    cfg->udp = cfg->tcp = 1;
    cfg->rate = 200;
    cfg->rate_redir = 20;
    cfg->rate_slots = 65536;
    cfg->tcp_idle_s = 30;
    cfg->tcp_max_conns = 4096;
    cfg->log_level = SKD_LOG_INFO;
    cfg->tls_port = 5349;

    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":l:a:t:c:hV", opts, NULL)) != -1) {
        const char *opt = argv[optind - 1];
        switch (c) {
        case 'h': usage(stdout); return 1;
        case 'V': printf("stunkitd %s\n", STUNKIT_VERSION); return 1;
        case ':': fprintf(stderr, "stunkitd: option %s needs a value (try --help)\n", opt); return -1;
        case '?': fprintf(stderr, "stunkitd: unknown option '%s' (try --help)\n", opt); return -1;
        default: {
            char where[64];
            const char *name = opt;
            for (const struct option *k = opts; k->name; k++)
                if (k->val == c)
                    name = k->name;
            snprintf(where, sizeof(where), "--%s", name);
            if (apply(cfg, &st, c, optarg ? optarg : "", where) != 0)
                return -1;
        }
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
    if (!st.burst_set)
        cfg->burst = cfg->rate * 2;
    cfg->burst_redir = cfg->rate_redir * 2;

    /* Each --alternate pairs with the one --listen address of its family. */
    for (int i = 0; i < st.n_alt; i++) {
        stunkit_addr *alt = &st.alt[i];
        int fi = alt->family == STUNKIT_AF_INET6;
        char text[STUNKIT_ADDRSTRLEN];
        stunkit_addr_format(alt, text, sizeof(text));
        if (cfg->alternate[fi].family)
            return bad("--alternate", text, "only one alternate per address family");
        const stunkit_addr *primary = NULL;
        for (int k = 0; k < cfg->n_listen; k++) {
            if (cfg->listen[k].family != alt->family)
                continue;
            if (primary)
                return bad("--alternate", text, "RFC 5780 mode takes exactly one --listen address of this family");
            primary = &cfg->listen[k];
        }
        if (!primary)
            return bad("--alternate", text, "needs a --listen address of the same family");
        if (is_wildcard(primary) || is_wildcard(alt))
            return bad("--alternate", text, "RFC 5780 mode needs specific addresses, not a wildcard");
        if (stunkit_addr_ip_equal(primary, alt))
            return bad("--alternate", text, "the alternate IP must differ from the --listen IP");
        if (alt->port == 0)
            alt->port = (uint16_t)(primary->port + 1);
        if (alt->port == primary->port || alt->port == 0)
            return bad("--alternate", text, "the alternate port must differ from the primary port");
        cfg->alternate[fi] = *alt;
    }
    for (int fi = 0; fi < 2; fi++)
        if (cfg->advertise_alt[fi].family && !cfg->alternate[fi].family)
            return bad("--advertise-alternate", fi ? "IPv6" : "IPv4", "there is no --alternate of this family");
    if (!cfg->tls_cert != !cfg->tls_key) {
        fprintf(stderr, "stunkitd: TLS needs both --tls-cert and --tls-key\n");
        return -1;
    }

    if (cfg->auth) {
        skd_auth *a = cfg->auth;
        if (!a->n_users && !a->secret_len) {
            fprintf(stderr, "stunkitd: authentication options need --credential or --auth-secret\n");
            return -1;
        }
        if (a->short_term && a->secret_len) {
            fprintf(stderr, "stunkitd: --auth-secret gives long-term credentials: drop --short-term\n");
            return -1;
        }
        if (skd_auth_finish(a) != 0) {
            fprintf(stderr, "stunkitd: cannot set up authentication (crypto library failure)\n");
            return -1;
        }
    }
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
        specs[n++] = (skd_sock_spec){*l, is_wildcard(l), 0, 0, 0};
        if (cfg->tls_cert && n < cap) {
            /* STUN over TLS (TCP) and DTLS (UDP) on the primary address
             * (RFC 8489: port 5349 for both) */
            skd_sock_spec t = {*l, is_wildcard(l), 0, 0, 1};
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
    return n;
}
