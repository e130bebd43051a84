/*
 * config.c - stunkitd's options. One table below names every option once:
 * it generates --help, the long options for getopt and the config-file keys,
 * and says how each value is checked. Numbers are strict: integers take
 * digits only, every value has a range, and a bad one is one line naming
 * the flag (or FILE:LINE) and exit 2.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

typedef enum opt_id {
    O_LISTEN, O_ALTERNATE, O_ADVERTISE, O_ADVERTISE_ALT, O_THREADS, O_NO_UDP, O_NO_TCP, O_XDP, O_SOFTWARE,
    O_RATE, O_BURST, O_RATE_REDIR, O_RATE_TABLE, O_TCP_IDLE, O_REQUEST_TIMEOUT, O_TCP_MAX, O_TLS_MAX,
    O_TCP_PER_SOURCE, O_DTLS_PER_SOURCE, O_LOG_LEVEL, O_CONFIG, O_USER, O_METRICS, O_METRICS_MAX,
    O_CREDENTIAL, O_AUTH_SECRET, O_NONCE_KEY, O_REALM, O_NONCE_LIFETIME, O_SHORT_TERM, O_TLS_CERT, O_TLS_KEY, O_TLS_PORT,
    O_TURN, O_RELAY_IP, O_RELAY_PORTS, O_ALLOWED_PEER, O_DENIED_PEER, O_TURN_MAX_ALLOC, O_TURN_USER_QUOTA,
    O_TURN_MAX_PERMS, O_TURN_MAX_CHANNELS, O_TURN_MAX_LIFETIME, O_TURN_DEFAULT_LIFETIME, O_SECURE_STUN, O_TURN_ALLOC_BPS, O_TURN_TOTAL_BPS,
    O_PROXY_FROM, O_ALT_SERVER, O_ALT_DOMAIN, O_REDIRECT_ABOVE, O_DRAIN_TIMEOUT, O_CONTROL, O_CONTROL_MODE, O_CONTROL_GROUP,
    O_RDV, O_RDV_ROOMS, O_RDV_USER_ROOMS, O_RDV_LIFETIME, O_RDV_IDLE, O_RDV_DESC_MAX, O_RDV_REDIS, O_RDV_REDIS_PREFIX,
    O_HELP, O_VERSION
} opt_id;

typedef enum { T_FLAG, T_INT, T_NUM, T_TEXT } opt_type;

typedef struct opt_def {
    opt_id id;
    const char *name;
    char short_name;
    opt_type type;
    const char *arg;  /* the value's name in --help */
    double lo, hi;    /* T_INT / T_NUM range */
    const char *help; /* lines separated by \n */
    const char *section;
} opt_def;

/* Every option; the config file's keys are the same names. */
static const opt_def options[] = {
    {O_LISTEN, "listen", 'l', T_TEXT, "ADDR[:PORT]", 0, 0,
     "listen here (repeatable, at most 16; default: 0.0.0.0 and ::)", "Addresses"},
    {O_ALTERNATE, "alternate", 'a', T_TEXT, "ADDR[:PORT]", 0, 0,
     "RFC 5780 mode: the second IP (and port; default the primary port + 1)\n"
     "for the --listen address of the same family; the server then listens\n"
     "on all four IP/port pairs",
     NULL},
    {O_ADVERTISE, "advertise", 0, T_TEXT, "ADDR", 0, 0,
     "public IP of the primary address (1:1 NAT), used in OTHER-ADDRESS and\nRESPONSE-ORIGIN", NULL},
    {O_ADVERTISE_ALT, "advertise-alternate", 0, T_TEXT, "ADDR", 0, 0, "public IP of the alternate address", NULL},
    {O_THREADS, "threads", 't', T_INT, "N", 1, 256,
     "UDP worker threads, 1-256 (default: one per core), and as many for\nTCP/TLS/DTLS when those are served",
     "Serving"},
    {O_NO_UDP, "no-udp", 0, T_FLAG, NULL, 0, 0, "serve only TCP (and TLS)", NULL},
    {O_NO_TCP, "no-tcp", 0, T_FLAG, NULL, 0, 0, "serve only UDP (and DTLS)", NULL},
    {O_XDP, "xdp", 0, T_TEXT, "IFACE", 0, 0,
     "answer plain Binding requests arriving on IFACE in XDP, before any\n"
     "socket, and drop there what the socket path would drop (repeatable, at\n"
     "most 8; needs root or CAP_BPF+CAP_NET_ADMIN+CAP_PERFMON; if XDP cannot\n"
     "attach, one line says why and the socket path serves)",
     NULL},
    {O_SOFTWARE, "software", 0, T_TEXT, "TEXT", 0, 0, "send a SOFTWARE attribute, at most 64 bytes (default: none)",
     NULL},
    {O_RATE, "rate-limit", 0, T_NUM, "N", 0, 1e7,
     "requests per second per source (an IPv4 address or an IPv6 /64) and\n"
     "thread, 0-1e7 (default 200; 0 turns the limiter off, the strict budget\n"
     "too unless --redirect-rate-limit is given)", "Limits"},
    {O_BURST, "rate-burst", 0, T_NUM, "N", 1, 1e7, "bucket size, 1-1e7 (default 2 x rate)", NULL},
    {O_RATE_REDIR, "redirect-rate-limit", 0, T_NUM, "N", 0, 1e7,
     "the strict budget per source, 0-1e7 (default 20): answers sent\n"
     "elsewhere (CHANGE-REQUEST, RESPONSE-PORT), unauthenticated 401/438 and\n"
     "any answer over twice the request's size",
     NULL},
    {O_RATE_TABLE, "rate-table", 0, T_INT, "N", 16, 1 << 26, "sources tracked per thread, 16-67108864 (default 65536)",
     NULL},
    {O_TCP_IDLE, "tcp-idle", 0, T_INT, "S", 1, 86400,
     "close TCP/TLS connections without a complete request for S seconds,\n1-86400 (default 30)", NULL},
    {O_REQUEST_TIMEOUT, "request-timeout", 0, T_INT, "S", 1, 300,
     "a TCP/TLS request must be complete S seconds after its first byte, and\n"
     "a TLS or DTLS handshake S seconds after it starts, 1-300 (default 5)",
     NULL},
    {O_TCP_MAX, "tcp-max-conns", 0, T_INT, "N", 1, 1000000,
     "TCP connections at once, 1-1000000 (default 4096); when full, the least\n"
     "recently useful connection makes room for a newcomer",
     NULL},
    {O_TLS_MAX, "tls-max-conns", 0, T_INT, "N", 1, 1000000, "TLS connections at once, likewise (default 1024)",
     NULL},
    {O_TCP_PER_SOURCE, "tcp-per-source", 0, T_INT, "N", 1, 1000000,
     "TCP+TLS connections per source (an IPv4 address or an IPv6 /64) and\nthread, 1-1000000 (default 64)", NULL},
    {O_DTLS_PER_SOURCE, "dtls-per-source", 0, T_INT, "N", 1, 1024,
     "DTLS sessions per source (IPv4 address or IPv6 /64) and thread,\n1-1024 (default 16)", NULL},
    {O_LOG_LEVEL, "log-level", 0, T_TEXT, "LEVEL", 0, 0, "error, warn, info (default) or debug", "Operation"},
    {O_CONFIG, "config", 'c', T_TEXT, "FILE", 0, 0,
     "read options from FILE: one 'key = value' per line, keys named as the\n"
     "long options; '#' comments; \"quoted\" values kept exactly",
     NULL},
    {O_USER, "user", 0, T_TEXT, "NAME", 0, 0, "drop to this user (and its groups) after binding", NULL},
    {O_METRICS, "metrics", 0, T_TEXT, "ADDR[:PORT]", 0, 0,
     "serve the counters as Prometheus text over HTTP (port 9478 by default;\nopt-in; meant for loopback)", NULL},
    {O_METRICS_MAX, "metrics-max-conns", 0, T_INT, "N", 1, 1024,
     "metrics connections at once, 1-1024 (default 8); each request has 2 s", NULL},
    {O_CREDENTIAL, "credential", 0, T_TEXT, "NAME:PASSWORD", 0, 0,
     "a user (repeatable, at most 256; better in the config file)", "Authentication (off unless credentials or a secret are given)"},
    {O_AUTH_SECRET, "auth-secret", 0, T_TEXT, "SECRET", 0, 0,
     "accept time-limited credentials made from SECRET (8-128 bytes):\n"
     "username \"EXPIRY:NAME\" (Unix time), password\n"
     "base64(HMAC-SHA1(SECRET, username)), as coturn's REST API; repeatable\n"
     "(at most 8, each verifies: add the new one, drop the old one once\n"
     "its credentials have expired)",
     NULL},
    {O_NONCE_KEY, "nonce-key", 0, T_TEXT, "KEY", 0, 0,
     "the NONCE key (16-128 bytes), the same on every server of a fleet: a\n"
     "client's next request may reach another server and keep its nonce\n"
     "(default: from the first --auth-secret, else random)",
     NULL},
    {O_REALM, "realm", 0, T_TEXT, "REALM", 0, 0, "long-term credential realm, 1-127 bytes (default stunkit)", NULL},
    {O_NONCE_LIFETIME, "nonce-lifetime", 0, T_INT, "S", 10, 86400,
     "stateless NONCE lifetime, 10-86400 (default 600); then 438", NULL},
    {O_SHORT_TERM, "short-term", 0, T_FLAG, NULL, 0, 0, "credentials are short-term (no REALM or NONCE)", NULL},
    {O_TLS_CERT, "tls-cert", 0, T_TEXT, "FILE", 0, 0, "certificate chain (PEM)",
     "STUN over TLS and DTLS (1.2 or later; SIGHUP reloads the files)"},
    {O_TLS_KEY, "tls-key", 0, T_TEXT, "FILE", 0, 0, "private key (PEM)", NULL},
    {O_TLS_PORT, "tls-port", 0, T_INT, "PORT", 1, 65535,
     "TLS (TCP) and DTLS (UDP) port on each --listen address (default 5349)", NULL},
    {O_TURN, "turn", 0, T_FLAG, NULL, 0, 0,
     "relay for TURN clients over UDP, TCP, TLS and DTLS (RFC 8656); needs\nlong-term credentials", "TURN relay"},
    {O_RELAY_IP, "relay-ip", 0, T_TEXT, "ADDR", 0, 0,
     "the relayed address (repeatable, one per family; default: the address\nthe client reached)", NULL},
    {O_RELAY_PORTS, "relay-ports", 0, T_TEXT, "MIN-MAX", 0, 0, "relay ports (default 49152-65535)", NULL},
    {O_ALLOWED_PEER, "allowed-peer", 0, T_TEXT, "CIDR", 0, 0,
     "open a peer range that is refused by default (repeatable, at most 64)", NULL},
    {O_DENIED_PEER, "denied-peer", 0, T_TEXT, "CIDR", 0, 0, "refuse a peer range (repeatable, at most 64)", NULL},
    {O_TURN_MAX_ALLOC, "turn-max-allocations", 0, T_INT, "N", 1, 1000000,
     "allocations in total, 1-1000000 (default 10000)", NULL},
    {O_TURN_USER_QUOTA, "turn-user-quota", 0, T_INT, "N", 1, 1000000,
     "allocations per username, 1-1000000 (default 100)", NULL},
    {O_TURN_MAX_PERMS, "turn-max-permissions", 0, T_INT, "N", 1, 1024,
     "permissions per allocation, 1-1024 (default 32)", NULL},
    {O_TURN_MAX_CHANNELS, "turn-max-channels", 0, T_INT, "N", 1, 4096,
     "channels per allocation, 1-4096 (default 64)", NULL},
    {O_TURN_MAX_LIFETIME, "turn-max-lifetime", 0, T_INT, "S", 600, 3600,
     "longest allocation lifetime, 600-3600 (default 3600)", NULL},
    {O_SECURE_STUN, "secure-stun", 0, T_FLAG, NULL, 0, 0,
     "with --turn: Binding requests need credentials too (default: a plain\n"
     "Binding request is answered without them, as coturn does, so agents given\n"
     "this server as a stun: URL learn their address; signed ones are checked)", NULL},
    {O_TURN_DEFAULT_LIFETIME, "turn-default-lifetime", 0, T_INT, "S", 10, 3600,
     "lifetime of an allocation whose client asks for less, 10-3600 (default\n600, RFC 8656's ten minutes; less is for labs and tests)", NULL},
    {O_TURN_ALLOC_BPS, "turn-allocation-bandwidth", 0, T_INT, "BYTES", 0, 1e12,
     "relayed bytes per second per allocation, both ways together, 0-1e12\n(default 0: no limit); more is dropped and counted", NULL},
    {O_TURN_TOTAL_BPS, "turn-total-bandwidth", 0, T_INT, "BYTES", 0, 1e12,
     "relayed bytes per second for all allocations (default 0: no limit)", NULL},
    {O_PROXY_FROM, "proxy-from", 0, T_TEXT, "CIDR", 0, 0,
     "take the PROXY protocol v2 header from these proxies (repeatable, at most\n"
     "16): their TCP/TLS connections carry the client's own address; a PROXY\n"
     "header from anyone else closes the connection",
     "Behind a proxy (HAProxy, nginx stream) on a shared port"},
    {O_ALT_SERVER, "alternate-server", 0, T_TEXT, "ADDR[:PORT]", 0, 0,
     "another server of the fleet (repeatable, at most 8; port 3478 by\n"
     "default): new allocations are sent there with 300 Try Alternate while\n"
     "this one drains (SIGUSR2) or holds --turn-redirect-above allocations",
     "Fleet (RFC 8489 10: ALTERNATE-SERVER)"},
    {O_ALT_DOMAIN, "alternate-domain", 0, T_TEXT, "NAME", 0, 0,
     "the name in the alternates' TLS certificate (ALTERNATE-DOMAIN, sent to\nTLS and DTLS clients)", NULL},
    {O_REDIRECT_ABOVE, "turn-redirect-above", 0, T_INT, "N", 1, 1000000,
     "send new allocations to an --alternate-server once this server holds N", NULL},
    {O_DRAIN_TIMEOUT, "drain-timeout", 0, T_INT, "S", 0, 86400,
     "SIGUSR2 drains: no new allocations (300 to an alternate, else 508), the\n"
     "others kept until they end or S seconds passed, then exit (default 3600)", NULL},
    {O_CONTROL, "control", 0, T_TEXT, "PATH", 0, 0,
     "a control socket (Unix; off by default): `stunkitd ctl --socket PATH\n"
     "status|allocations|rooms|kick USER|revoke USER|unrevoke USER|revoked|\n"
     "drain|reload`", NULL},
    {O_CONTROL_MODE, "control-mode", 0, T_TEXT, "MODE", 0, 0, "its permissions, octal (default 0600)", NULL},
    {O_CONTROL_GROUP, "control-group", 0, T_TEXT, "GROUP", 0, 0, "its group (with a mode such as 0660)", NULL},
    {O_RDV, "rendezvous", 0, T_FLAG, NULL, 0, 0,
     "let two peers that name the same room meet and exchange their ICE\n"
     "descriptions (`stunkit punch SERVER ROOM`); needs long-term credentials",
     "Rendezvous (descriptions only, never application data)"},
    {O_RDV_ROOMS, "rendezvous-rooms", 0, T_INT, "N", 1, 1000000, "rooms open at once, 1-1000000 (default 1000)",
     NULL},
    {O_RDV_USER_ROOMS, "rendezvous-user-rooms", 0, T_INT, "N", 1, 1000000,
     "rooms one username may open, 1-1000000 (default 10)", NULL},
    {O_RDV_LIFETIME, "rendezvous-lifetime", 0, T_INT, "S", 10, 86400,
     "a room closes S seconds after it opened, 10-86400 (default 600)", NULL},
    {O_RDV_IDLE, "rendezvous-idle", 0, T_INT, "S", 2, 3600,
     "a peer silent for S seconds loses its place, 2-3600 (default 30)", NULL},
    {O_RDV_DESC_MAX, "rendezvous-max-description", 0, T_INT, "BYTES", 256, 8192,
     "bytes per peer's description, 256-8192 (default 4096)", NULL},
    {O_RDV_REDIS, "rendezvous-redis", 0, T_TEXT, "HOST[:PORT]|PATH", 0, 0,
     "keep the rooms in Redis (port 6379 by default, or a Unix socket path): a\n"
     "fleet's servers share them, a restart loses none; Redis down: 500 to the\n"
     "rendezvous, STUN and TURN go on",
     NULL},
    {O_RDV_REDIS_PREFIX, "rendezvous-redis-prefix", 0, T_TEXT, "PREFIX", 0, 0,
     "the keys' prefix in Redis (default \"stunkitd:\"; 1-32 of A-Z a-z 0-9 : _ -)", NULL},
    {O_HELP, "help", 'h', T_FLAG, NULL, 0, 0, "this text", "Other"},
    {O_VERSION, "version", 'V', T_FLAG, NULL, 0, 0, "the version", NULL},
};
#define N_OPTIONS (sizeof(options) / sizeof(options[0]))

static void usage(FILE *f)
{
    fprintf(f, "Usage: stunkitd [options]\n"
               "\n"
               "A STUN server (RFC 8489, RFC 5780 behaviour discovery, RFC 3489 clients).\n"
               "Runs in the foreground and logs to stderr; SIGINT/SIGTERM stop it,\n"
               "SIGUSR1 prints the counters, SIGHUP reloads credentials and TLS files.\n"
               "Addresses: ADDR, ADDR:PORT or [V6ADDR]:PORT; the default port is 3478.\n"
               "Every option is also a config-file key (without the dashes).\n");
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const opt_def *o = &options[i];
        char head[64];
        if (o->section)
            fprintf(f, "\n%s:\n", o->section);
        int n = o->short_name ? snprintf(head, sizeof(head), "  -%c, --%s", o->short_name, o->name)
                              : snprintf(head, sizeof(head), "      --%s", o->name);
        if (o->arg)
            snprintf(head + n, sizeof(head) - (size_t)n, " %s", o->arg);
        const char *h = o->help;
        int first = 1;
        while (*h) {
            const char *nl = strchr(h, '\n');
            int len = nl ? (int)(nl - h) : (int)strlen(h);
            if (first && strlen(head) < 31)
                fprintf(f, "%-31s%.*s\n", head, len, h);
            else if (first)
                fprintf(f, "%s\n%31s%.*s\n", head, "", len, h);
            else
                fprintf(f, "%31s%.*s\n", "", len, h);
            first = 0;
            h += len + (nl ? 1 : 0);
        }
    }
}

/* `where` names the option ("--listen") or the config line ("FILE:12: listen"). */
static int bad(const char *where, const char *arg, const char *why)
{
    fprintf(stderr, "%sstunkitd: %s '%s': %s\n", SKD_ERR_PREFIX, where, arg, why);
    return -1;
}

/* Integers: optional sign and digits only ("8", not "8.0", "nan" or "1e3"). */
static int parse_int(const char *where, const char *arg, double lo, double hi, long *out)
{
    char why[96];
    snprintf(why, sizeof(why), "expected a whole number from %.0f to %.0f", lo, hi);
    const char *p = arg;
    if (*p == '-' || *p == '+')
        p++;
    if (!*p)
        return bad(where, arg, why);
    for (const char *q = p; *q; q++)
        if (*q < '0' || *q > '9')
            return bad(where, arg, why);
    errno = 0;
    long v = strtol(arg, NULL, 10);
    if (errno || (double)v < lo || (double)v > hi)
        return bad(where, arg, why);
    *out = v;
    return 0;
}

/* Decimal numbers: finite, in range ("nan" and "inf" are not numbers here). */
static int parse_num(const char *where, const char *arg, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(arg, &end);
    if (errno || end == arg || *end || !isfinite(v) || v < lo || v > hi) {
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

int skd_is_wildcard(const stunkit_addr *a)
{
    static const uint8_t zero[16];
    return memcmp(a->ip, zero, a->family == STUNKIT_AF_INET ? 4 : 16) == 0;
}

typedef struct pstate {
    skd_config *cfg;
    stunkit_addr alt[4];
    int n_alt, burst_set, redir_set, depth;
} pstate;

static const opt_def *find_option(const char *name)
{
    for (size_t i = 0; i < N_OPTIONS; i++)
        if (!strcmp(options[i].name, name))
            return &options[i];
    return NULL;
}

static skd_auth *auth_of(skd_config *cfg)
{
    if (!cfg->auth)
        cfg->auth = calloc(1, sizeof(*cfg->auth));
    return cfg->auth;
}

static int read_file(pstate *st, const char *path);

/* Applies one option (from the command line or a config line). */
static int apply(pstate *st, const opt_def *o, const char *arg, const char *where)
{
    skd_config *cfg = st->cfg;
    long iv = 0;
    double dv = 0;
    if (o->type == T_INT && parse_int(where, arg, o->lo, o->hi, &iv) != 0)
        return -1;
    if (o->type == T_NUM && parse_num(where, arg, o->lo, o->hi, &dv) != 0)
        return -1;
    switch (o->id) {
    case O_LISTEN:
        if (cfg->n_listen == SKD_MAX_LISTEN)
            return bad(where, arg, "more than 16 listen addresses");
        if (parse_addr(where, arg, SKD_DEFAULT_PORT, &cfg->listen[cfg->n_listen]) != 0)
            return -1;
        cfg->n_listen++;
        return 0;
    case O_ALTERNATE:
        if (st->n_alt == 4)
            return bad(where, arg, "one alternate per address family");
        /* port 0 here means "primary port + 1", filled in later */
        if (stunkit_addr_parse(arg, 0, &st->alt[st->n_alt]) != 0)
            return bad(where, arg, "not a numeric address (ADDR, ADDR:PORT or [V6ADDR]:PORT)");
        st->n_alt++;
        return 0;
    case O_ADVERTISE:
    case O_ADVERTISE_ALT: {
        stunkit_addr a;
        if (stunkit_addr_parse(arg, 0, &a) != 0 || a.port != 0)
            return bad(where, arg, "expected an IP address without a port");
        stunkit_addr *slot = o->id == O_ADVERTISE ? cfg->advertise : cfg->advertise_alt;
        slot[a.family == STUNKIT_AF_INET6] = a;
        return 0;
    }
    case O_THREADS: cfg->threads = (int)iv; return 0;
    case O_NO_UDP: cfg->udp = 0; return 0;
    case O_NO_TCP: cfg->tcp = 0; return 0;
    case O_SOFTWARE: {
        size_t n = strlen(arg);
        if (n == 0 || n > SKD_SOFTWARE_MAX)
            return bad(where, arg, "expected 1 to 64 bytes (every byte is sent in each answer)");
        char prepared[128];
        if (stunkit_opaque_string(arg, n, prepared, sizeof(prepared)) < 0)
            return bad(where, arg, "not valid UTF-8 text");
        cfg->software = arg;
        return 0;
    }
    case O_RATE: cfg->rate = dv; return 0;
    case O_BURST:
        st->burst_set = 1;
        cfg->burst = dv;
        return 0;
    case O_RATE_REDIR:
        st->redir_set = 1;
        cfg->rate_redir = dv;
        return 0;
    case O_RATE_TABLE: cfg->rate_slots = (size_t)iv; return 0;
    case O_TCP_IDLE: cfg->tcp_idle_s = (int)iv; return 0;
    case O_REQUEST_TIMEOUT: cfg->request_timeout_s = (int)iv; return 0;
    case O_TCP_MAX: cfg->tcp_max_conns = (int)iv; return 0;
    case O_TLS_MAX: cfg->tls_max_conns = (int)iv; return 0;
    case O_TCP_PER_SOURCE: cfg->tcp_per_source = (int)iv; return 0;
    case O_DTLS_PER_SOURCE: cfg->dtls_per_source = (int)iv; return 0;
    case O_LOG_LEVEL:
        if ((cfg->log_level = skd_log_level_parse(arg)) < 0)
            return bad(where, arg, "expected error, warn, info or debug");
        return 0;
    case O_CONFIG: return read_file(st, arg);
    case O_XDP:
        if (cfg->n_xdp == SKD_MAX_XDP)
            return bad(where, arg, "more than 8 XDP interfaces");
        if (!*arg || strlen(arg) >= 16 || strchr(arg, '/') || strchr(arg, ' '))
            return bad(where, arg, "not an interface name");
        for (int i = 0; i < cfg->n_xdp; i++)
            if (!strcmp(cfg->xdp[i], arg))
                return bad(where, arg, "named twice");
        cfg->xdp[cfg->n_xdp++] = arg;
        return 0;
    case O_USER:
        /* checked now, so a typo fails before anything binds */
        if (!*arg)
            return bad(where, arg, "expected a user name");
        if (!getpwnam(arg))
            return bad(where, arg, "no such user");
        cfg->user = arg;
        return 0;
    case O_METRICS: return parse_addr(where, arg, 9478, &cfg->metrics);
    case O_METRICS_MAX: cfg->metrics_max_conns = (int)iv; return 0;
    case O_CREDENTIAL:
    case O_AUTH_SECRET:
    case O_NONCE_KEY:
    case O_REALM:
    case O_NONCE_LIFETIME:
    case O_SHORT_TERM: {
        skd_auth *a = auth_of(cfg);
        const char *why;
        if (!a)
            return bad(where, arg, "out of memory");
        if (o->id == O_REALM) {
            size_t n = strlen(arg);
            if (n == 0 || n >= sizeof(a->realm))
                return bad(where, arg, "expected 1 to 127 bytes");
            memcpy(a->realm, arg, n);
            a->realm_len = n;
        } else if (o->id == O_CREDENTIAL) {
            if (skd_auth_add_user(a, arg, &why) != 0)
                return bad(where, "NAME:...", why);
        } else if (o->id == O_AUTH_SECRET) {
            if (skd_auth_add_secret(a, arg, strlen(arg), &why) != 0)
                return bad(where, "...", why);
        } else if (o->id == O_NONCE_KEY) {
            size_t n = strlen(arg);
            if (n < 16 || n > sizeof(a->nonce_seed))
                return bad(where, "...", "expected a key of 16 to 128 bytes");
            memcpy(a->nonce_seed, arg, n);
            a->nonce_seed_len = n;
        } else if (o->id == O_SHORT_TERM) {
            a->short_term = 1;
        } else {
            a->nonce_lifetime_s = (uint32_t)iv;
        }
        return 0;
    }
    case O_TLS_CERT: cfg->tls_cert = arg; return 0;
    case O_TLS_KEY: cfg->tls_key = arg; return 0;
    case O_TLS_PORT: cfg->tls_port = (uint16_t)iv; return 0;
    case O_TURN: cfg->turn.enabled = 1; return 0;
    case O_RELAY_IP: {
        stunkit_addr a;
        if (stunkit_addr_parse(arg, 0, &a) != 0 || a.port != 0 || skd_is_wildcard(&a))
            return bad(where, arg, "expected a specific IP address without a port");
        if (cfg->turn.n_relay_ip == 4)
            return bad(where, arg, "at most 4 relay addresses");
        cfg->turn.relay_ip[cfg->turn.n_relay_ip++] = a;
        return 0;
    }
    case O_RELAY_PORTS: {
        unsigned lo, hi;
        char tail;
        if (sscanf(arg, "%u-%u%c", &lo, &hi, &tail) != 2 || lo < 1024 || hi > 65535 || lo > hi)
            return bad(where, arg, "expected MIN-MAX within 1024-65535");
        cfg->turn.port_min = (uint16_t)lo;
        cfg->turn.port_max = (uint16_t)hi;
        return 0;
    }
    case O_ALLOWED_PEER:
    case O_DENIED_PEER: {
        skd_peer_policy *p = &cfg->turn.policy;
        const char *why;
        int *n = o->id == O_ALLOWED_PEER ? &p->n_allowed : &p->n_denied;
        skd_cidr *list = o->id == O_ALLOWED_PEER ? p->allowed : p->denied;
        if (*n == SKD_POLICY_MAX)
            return bad(where, arg, "at most 64 ranges");
        if (skd_cidr_parse(arg, &list[*n], &why) != 0)
            return bad(where, arg, why);
        (*n)++;
        return 0;
    }
    case O_TURN_MAX_ALLOC: cfg->turn.max_allocations = (int)iv; return 0;
    case O_TURN_USER_QUOTA: cfg->turn.user_quota = (int)iv; return 0;
    case O_TURN_MAX_PERMS: cfg->turn.max_permissions = (int)iv; return 0;
    case O_TURN_MAX_CHANNELS: cfg->turn.max_channels = (int)iv; return 0;
    case O_TURN_MAX_LIFETIME: cfg->turn.max_lifetime_s = (uint32_t)iv; return 0;
    case O_TURN_DEFAULT_LIFETIME: cfg->turn.default_lifetime_s = (uint32_t)iv; return 0;
    case O_SECURE_STUN: cfg->secure_stun = 1; return 0;
    case O_TURN_ALLOC_BPS: cfg->turn.alloc_bps = (uint64_t)iv; return 0;
    case O_TURN_TOTAL_BPS: cfg->turn.total_bps = (uint64_t)iv; return 0;
    case O_PROXY_FROM: {
        const char *why;
        if (cfg->n_proxy_from == 16)
            return bad(where, arg, "at most 16 proxy ranges");
        if (skd_cidr_parse(arg, &cfg->proxy_from[cfg->n_proxy_from], &why) != 0)
            return bad(where, arg, why);
        cfg->n_proxy_from++;
        return 0;
    }
    case O_ALT_SERVER: {
        stunkit_addr a;
        if (parse_addr(where, arg, 3478, &a) != 0)
            return -1;
        if (skd_is_wildcard(&a))
            return bad(where, arg, "expected the alternate's own address, not a wildcard");
        if (cfg->turn.n_alternates == SKD_MAX_ALTERNATES)
            return bad(where, arg, "at most 8 alternate servers");
        cfg->turn.alternates[cfg->turn.n_alternates++] = a;
        return 0;
    }
    case O_ALT_DOMAIN: {
        size_t n = strlen(arg);
        if (n == 0 || n > 253 || strspn(arg, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-*") != n)
            return bad(where, arg, "expected a DNS name");
        cfg->turn.alternate_domain = arg;
        return 0;
    }
    case O_REDIRECT_ABOVE: cfg->turn.redirect_above = (int)iv; return 0;
    case O_DRAIN_TIMEOUT: cfg->drain_timeout_s = (int)iv; return 0;
    case O_CONTROL:
        if (!arg[0] || arg[0] != '/' || strlen(arg) > 107)
            return bad(where, arg, "expected an absolute path of at most 107 bytes");
        cfg->control = arg;
        return 0;
    case O_CONTROL_MODE: {
        char *end;
        long mode = strtol(arg, &end, 8);
        if (!arg[0] || *end || mode < 0 || mode > 0777 || (mode & 0600) != 0600)
            return bad(where, arg, "expected an octal mode from 0600 to 0777 (the owner reads and writes)");
        cfg->control_mode = (unsigned)mode;
        return 0;
    }
    case O_CONTROL_GROUP:
        if (!getgrnam(arg))
            return bad(where, arg, "no such group");
        cfg->control_group = arg;
        return 0;
    case O_RDV: cfg->rdv.enabled = 1; return 0;
    case O_RDV_ROOMS: cfg->rdv.max_rooms = (int)iv; return 0;
    case O_RDV_USER_ROOMS: cfg->rdv.user_rooms = (int)iv; return 0;
    case O_RDV_LIFETIME: cfg->rdv.lifetime_s = (uint32_t)iv; return 0;
    case O_RDV_IDLE: cfg->rdv.idle_s = (uint32_t)iv; return 0;
    case O_RDV_DESC_MAX: cfg->rdv.desc_max = (uint32_t)iv; return 0;
    case O_RDV_REDIS:
        if (!skd_rdv_redis_available())
            return bad(where, arg, "this stunkitd is built without Redis (hiredis; apt install libhiredis-dev)");
        if (!arg[0] || strlen(arg) > 200 || strchr(arg, ' '))
            return bad(where, arg, "expected HOST[:PORT] or a Unix socket's path");
        cfg->rdv.redis = arg;
        return 0;
    case O_RDV_REDIS_PREFIX: {
        size_t n = strlen(arg);
        if (n == 0 || n > 32 ||
            strspn(arg, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:_-") != n)
            return bad(where, arg, "expected 1-32 of A-Z a-z 0-9 : _ -");
        cfg->rdv.redis_prefix = arg;
        return 0;
    }
    case O_HELP:
    case O_VERSION: return bad(where, arg, "not a config-file key");
    }
    return bad(where, arg, "unknown option");
}

/* Keeps config file text alive as long as the config (fields point in it). */
static char *keep(skd_config *cfg, const char *text)
{
    if (cfg->n_strings == cfg->cap_strings) {
        int cap = cfg->cap_strings ? cfg->cap_strings * 2 : 32;
        char **grown = realloc(cfg->strings, (size_t)cap * sizeof(char *));
        if (!grown)
            return NULL;
        cfg->strings = grown;
        cfg->cap_strings = cap;
    }
    char *copy = strdup(text);
    if (copy)
        cfg->strings[cfg->n_strings++] = copy;
    return copy;
}

static int file_line(void *ctx, const char *key, const char *value, int has_value, const char *where)
{
    pstate *st = ctx;
    (void)has_value;
    const opt_def *o = find_option(key);
    if (!o || o->id == O_HELP || o->id == O_VERSION) {
        char w[600];
        snprintf(w, sizeof(w), "%s", where);
        char *colon = strrchr(w, ':'); /* "FILE:LINE: key" -> "FILE:LINE" */
        if (colon)
            *colon = '\0';
        fprintf(stderr, "%sstunkitd: %s: unknown key '%s'\n", SKD_ERR_PREFIX, w, key);
        return -1;
    }
    if (o->type == T_FLAG) {
        if (!strcmp(value, "yes") || !strcmp(value, "true"))
            return apply(st, o, value, where);
        if (!strcmp(value, "no") || !strcmp(value, "false"))
            return 0;
        return bad(where, value, "expected yes or no");
    }
    char *kept = keep(st->cfg, value);
    return kept ? apply(st, o, kept, where) : bad(where, value, "out of memory");
}

static int read_file(pstate *st, const char *path)
{
    if (++st->depth > 4) {
        fprintf(stderr, "%sstunkitd: %s: config files include each other too deeply\n", SKD_ERR_PREFIX, path);
        return -1;
    }
    int rv = skd_config_read_file(path, file_line, st);
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
    free(cfg->strings);
    cfg->strings = NULL;
    cfg->n_strings = cfg->cap_strings = 0;
}

static void defaults(skd_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    cfg->threads = cores > 0 ? (int)(cores > 256 ? 256 : cores) : 1;
    cfg->udp = cfg->tcp = 1;
    cfg->rate = 200;
    cfg->rate_redir = 20;
    cfg->rate_slots = 65536;
    cfg->tcp_idle_s = 30;
    cfg->request_timeout_s = 5;
    cfg->tcp_max_conns = 4096;
    cfg->tls_max_conns = 1024;
    cfg->tcp_per_source = 64;
    cfg->dtls_per_source = 16;
    cfg->metrics_max_conns = 8;
    cfg->drain_timeout_s = 3600;
    cfg->control_mode = 0600;
    cfg->log_level = SKD_LOG_INFO;
    cfg->tls_port = 5349;
    cfg->turn.port_min = 49152;
    cfg->turn.port_max = 65535;
    cfg->turn.max_lifetime_s = 3600;
    cfg->turn.default_lifetime_s = 600;
    cfg->turn.permission_s = 300;
    cfg->turn.channel_s = 600;
    cfg->turn.max_allocations = 10000;
    cfg->turn.user_quota = 100;
    cfg->turn.max_permissions = 32;
    cfg->turn.max_channels = 64;
    cfg->rdv.max_rooms = 1000;
    cfg->rdv.user_rooms = 10;
    cfg->rdv.lifetime_s = 600;
    cfg->rdv.idle_s = 30;
    cfg->rdv.desc_max = 4096;
}

static int finish(skd_config *cfg, pstate *st)
{
    if (!cfg->udp && !cfg->tcp) {
        fprintf(stderr, "%sstunkitd: --no-udp and --no-tcp leave nothing to serve\n", SKD_ERR_PREFIX);
        return -1;
    }
    if (!st->burst_set)
        cfg->burst = cfg->rate * 2;
    /* --rate-limit 0 turns the limiter off, all of it: a reader of --help
     * expects no budget at all (the strict one stays only when asked for) */
    if (cfg->rate == 0 && !st->redir_set)
        cfg->rate_redir = 0;
    cfg->burst_redir = cfg->rate_redir * 2;

    /* Each --alternate pairs with the one --listen address of its family. */
    for (int i = 0; i < st->n_alt; i++) {
        stunkit_addr *alt = &st->alt[i];
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
        if (skd_is_wildcard(primary) || skd_is_wildcard(alt))
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
        fprintf(stderr, "%sstunkitd: TLS needs both --tls-cert and --tls-key\n", SKD_ERR_PREFIX);
        return -1;
    }
    if (cfg->turn.enabled && (!cfg->auth || cfg->auth->short_term)) {
        fprintf(stderr, "stunkitd: --turn needs long-term credentials (--credential or --auth-secret, not "
                        "--short-term): RFC 8656 5\n");
        return -1;
    }
    if ((cfg->control_group || cfg->control_mode != 0600) && !cfg->control) {
        fprintf(stderr, "%sstunkitd: --control-mode and --control-group are for a --control socket\n", SKD_ERR_PREFIX);
        return -1;
    }
    if ((cfg->turn.n_alternates || cfg->turn.alternate_domain || cfg->turn.redirect_above) && !cfg->turn.enabled) {
        fprintf(stderr, "%sstunkitd: --alternate-server, --alternate-domain and --turn-redirect-above send TURN "
                        "allocations elsewhere: they need --turn\n", SKD_ERR_PREFIX);
        return -1;
    }
    if ((cfg->turn.redirect_above || cfg->turn.alternate_domain) && !cfg->turn.n_alternates) {
        fprintf(stderr, "%sstunkitd: --turn-redirect-above and --alternate-domain need an --alternate-server\n",
                SKD_ERR_PREFIX);
        return -1;
    }
    for (int i = 0; i < cfg->turn.n_alternates; i++)
        for (int k = 0; k < cfg->n_listen; k++)
            if (stunkit_addr_equal(&cfg->turn.alternates[i], &cfg->listen[k])) {
                fprintf(stderr, "%sstunkitd: --alternate-server is this server's own --listen address\n",
                        SKD_ERR_PREFIX);
                return -1;
            }
    if (cfg->turn.default_lifetime_s > cfg->turn.max_lifetime_s) {
        fprintf(stderr, "%sstunkitd: turn-default-lifetime %u is longer than turn-max-lifetime %u\n", SKD_ERR_PREFIX,
                cfg->turn.default_lifetime_s, cfg->turn.max_lifetime_s);
        return -1;
    }
    if ((cfg->rdv.redis || cfg->rdv.redis_prefix) && !cfg->rdv.enabled) {
        fprintf(stderr, "%sstunkitd: --rendezvous-redis and --rendezvous-redis-prefix are for --rendezvous\n",
                SKD_ERR_PREFIX);
        return -1;
    }
    if (cfg->rdv.enabled && (!cfg->auth || cfg->auth->short_term)) {
        fprintf(stderr, "stunkitd: --rendezvous needs long-term credentials (--credential or --auth-secret, not "
                        "--short-term): rooms are counted per user\n");
        return -1;
    }
    if (cfg->auth) {
        skd_auth *a = cfg->auth;
        if (!a->n_users && !a->n_secrets) {
            fprintf(stderr, "%sstunkitd: authentication options need --credential or --auth-secret\n", SKD_ERR_PREFIX);
            return -1;
        }
        if (a->short_term && a->n_secrets) {
            fprintf(stderr, "%sstunkitd: --auth-secret gives long-term credentials: drop --short-term\n", SKD_ERR_PREFIX);
            return -1;
        }
        if (skd_auth_finish(a) != 0) {
            fprintf(stderr, "%sstunkitd: cannot set up authentication (crypto library failure)\n", SKD_ERR_PREFIX);
            return -1;
        }
    }
    return 0;
}

int skd_config_parse(skd_config *cfg, int argc, char **argv)
{
    struct option longopts[N_OPTIONS + 1];
    char shortopts[3 * N_OPTIONS + 2];
    size_t ns = 0;
    pstate st;
    int c, idx;

    defaults(cfg);
    memset(&st, 0, sizeof(st));
    st.cfg = cfg;
    shortopts[ns++] = ':';
    for (size_t i = 0; i < N_OPTIONS; i++) {
        longopts[i] = (struct option){options[i].name, options[i].type == T_FLAG ? no_argument : required_argument,
                                      NULL, 1000 + (int)i};
        if (options[i].short_name) {
            shortopts[ns++] = options[i].short_name;
            if (options[i].type != T_FLAG)
                shortopts[ns++] = ':';
        }
    }
    shortopts[ns] = '\0';
    memset(&longopts[N_OPTIONS], 0, sizeof(longopts[0]));

    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, shortopts, longopts, &idx)) != -1) {
        const char *opt = argv[optind - 1];
        const opt_def *o = NULL;
        if (c == ':') {
            fprintf(stderr, "%sstunkitd: option %s needs a value (try --help)\n", SKD_ERR_PREFIX, opt);
            return -1;
        }
        if (c == '?') {
            fprintf(stderr, "%sstunkitd: unknown option '%s' (try --help)\n", SKD_ERR_PREFIX, opt);
            return -1;
        }
        if (c >= 1000)
            o = &options[c - 1000];
        else
            for (size_t i = 0; i < N_OPTIONS; i++)
                if (options[i].short_name == c)
                    o = &options[i];
        if (!o)
            return bad("option", opt, "not understood");
        if (o->id == O_HELP) {
            usage(stdout);
            return 1;
        }
        if (o->id == O_VERSION) {
            printf("stunkitd %s\n", STUNKIT_VERSION);
            return 1;
        }
        char where[64];
        snprintf(where, sizeof(where), "--%s", o->name);
        if (apply(&st, o, optarg ? optarg : "", where) != 0)
            return -1;
    }
    if (optind < argc) {
        fprintf(stderr, "%sstunkitd: unexpected argument '%s' (try --help)\n", SKD_ERR_PREFIX, argv[optind]);
        return -1;
    }
    return finish(cfg, &st);
}

static int str_differs(const char *a, const char *b)
{
    return (a == NULL) != (b == NULL) || (a && strcmp(a, b) != 0);
}

int skd_config_restart_keys(const skd_config *r, const skd_config *f, char *out, size_t cap)
{
    int n = 0;
    size_t used = 0;
    out[0] = '\0';
#define DIFF(cond, name)                                                                                               \
    do {                                                                                                               \
        if (cond) {                                                                                                    \
            int w = snprintf(out + used, cap > used ? cap - used : 0, "%s%s", n ? ", " : "", name);                    \
            if (w > 0 && (size_t)w < cap - used)                                                                       \
                used += (size_t)w;                                                                                     \
            n++;                                                                                                       \
        }                                                                                                              \
    } while (0)
    DIFF(r->n_listen != f->n_listen || memcmp(r->listen, f->listen, sizeof(r->listen)) != 0, "listen");
    DIFF(memcmp(r->alternate, f->alternate, sizeof(r->alternate)) != 0, "alternate");
    DIFF(memcmp(r->advertise, f->advertise, sizeof(r->advertise)) != 0 ||
             memcmp(r->advertise_alt, f->advertise_alt, sizeof(r->advertise_alt)) != 0,
         "advertise");
    DIFF(r->threads != f->threads, "threads");
    DIFF(r->udp != f->udp, "no-udp");
    DIFF(r->tcp != f->tcp, "no-tcp");
    int xdp_differs = r->n_xdp != f->n_xdp;
    for (int i = 0; i < r->n_xdp && !xdp_differs; i++)
        xdp_differs = str_differs(r->xdp[i], f->xdp[i]);
    DIFF(xdp_differs, "xdp");
    DIFF(str_differs(r->software, f->software), "software");
    DIFF(r->rate != f->rate || r->burst != f->burst || r->rate_redir != f->rate_redir || r->rate_slots != f->rate_slots,
         "rate-limit");
    DIFF(r->tcp_idle_s != f->tcp_idle_s || r->request_timeout_s != f->request_timeout_s, "tcp-idle");
    DIFF(r->tcp_max_conns != f->tcp_max_conns || r->tls_max_conns != f->tls_max_conns ||
             r->tcp_per_source != f->tcp_per_source || r->dtls_per_source != f->dtls_per_source,
         "tcp-max-conns");
    DIFF(str_differs(r->user, f->user), "user");
    DIFF(memcmp(&r->metrics, &f->metrics, sizeof(r->metrics)) != 0 || r->metrics_max_conns != f->metrics_max_conns,
         "metrics");
    DIFF((r->tls_cert == NULL) != (f->tls_cert == NULL) || r->tls_port != f->tls_port, "tls-port");
    skd_turn_cfg rt = r->turn, ft = f->turn; /* its one string compared as text */
    rt.alternate_domain = ft.alternate_domain = NULL;
    DIFF(memcmp(&rt, &ft, sizeof(rt)) != 0 || str_differs(r->turn.alternate_domain, f->turn.alternate_domain),
         "turn");
    /* field by field: the Redis strings are pointers into each file's text */
    DIFF(r->rdv.enabled != f->rdv.enabled || r->rdv.max_rooms != f->rdv.max_rooms ||
             r->rdv.user_rooms != f->rdv.user_rooms || r->rdv.lifetime_s != f->rdv.lifetime_s ||
             r->rdv.idle_s != f->rdv.idle_s || r->rdv.desc_max != f->rdv.desc_max ||
             str_differs(r->rdv.redis, f->rdv.redis) || str_differs(r->rdv.redis_prefix, f->rdv.redis_prefix),
         "rendezvous");
    DIFF(r->secure_stun != f->secure_stun, "secure-stun");
#undef DIFF
    return n;
}
