/*
 * cmd_addr.c - `stunkit addr`: "what is my public address?" One Binding
 * transaction over UDP, TCP or TLS; with no SERVER, a built-in list of
 * public STUN servers is tried in turn.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "stunkit/stunkit.h"

/* Well-known public STUN servers, tried in order when no SERVER is named. */
static const char *const public_servers[] = {
    "stun.l.google.com:19302",
    "stun.cloudflare.com:3478",
    "stun1.l.google.com:19302",
    "global.stun.twilio.com:3478",
};

static void addr_usage(FILE *f)
{
    fprintf(f, "Usage: stunkit addr [--json] [-4|-6] [--tcp|--tls|--dtls] [--local ADDR[:PORT]] [SERVER]\n"
               "\n"
               "Prints your public (mapped) address and port as a STUN server sees it, the\n"
               "local address used, and the server that answered.\n"
               "\n"
               "SERVER is host, host:port, [v6]:port, stun:host[:port] or stuns:host[:port]\n"
               "(RFC 7064). Without a port, DNS SRV (_stun._udp, _stun._tcp, _stuns._tcp) is\n"
               "tried, then A/AAAA on 3478 (5349 for TLS). Without SERVER, a built-in list of\n"
               "public servers is tried in turn.\n"
               "\n"
               "  -4, -6            IPv4 or IPv6 only\n"
               "      --tcp         STUN over TCP\n"
               "      --tls         STUN over TLS (the default with stuns: URIs); the\n"
               "                    certificate is checked against the server name\n"
               "      --dtls        STUN over DTLS (UDP, port 5349)\n"
               "      --insecure    with --tls or --dtls: do not check the certificate\n"
               "  -l, --local A[:P] send from this local address (and port)\n"
               "      --username U  authenticate as U (RFC 8489 long-term credentials: the\n"
               "                    server's 401 gives realm and nonce; SHA-256 when offered)\n"
               "      --password P  the password (or STUNKIT_PASSWORD in the environment, which\n"
               "                    other users cannot read in the process list)\n"
               "      --short-term  the credentials are short-term (RFC 8489 9.1)\n"
               "  -t, --timeout MS  give up on a server after MS milliseconds (default 10000;\n"
               "                    retransmissions follow RFC 8489: 500 ms, doubling)\n"
               "      --json        one JSON object\n"
               "\n"
               "Exit status: 0 an address was learned, 1 no server answered, 2 bad usage.\n");
}

static const char *transport_name(stunkit_transport tr)
{
    return tr == STUNKIT_UDP ? "udp" : tr == STUNKIT_TCP ? "tcp" : tr == STUNKIT_TLS ? "tls" : "dtls";
}

int cmd_addr(int argc, char **argv)
{
    static const struct option opts[] = {{"json", no_argument, NULL, 'j'},
                                         {"tcp", no_argument, NULL, 'T'},
                                         {"tls", no_argument, NULL, 'S'},
                                         {"dtls", no_argument, NULL, 'D'},
                                         {"username", required_argument, NULL, 'u'},
                                         {"password", required_argument, NULL, 'p'},
                                         {"short-term", no_argument, NULL, 's'},
                                         {"insecure", no_argument, NULL, 'k'},
                                         {"local", required_argument, NULL, 'l'},
                                         {"timeout", required_argument, NULL, 't'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int json = 0, family = 0, insecure = 0, c;
    stunkit_credentials cred = {NULL, getenv("STUNKIT_PASSWORD"), 0};
    stunkit_transport tr = STUNKIT_UDP;
    int tr_set = 0;
    stunkit_addr local;
    int have_local = 0;
    long timeout = 10000;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":46l:t:h", opts, NULL)) != -1) {
        const char *opt = argv[optind - 1];
        switch (c) {
        case 'j': json = 1; break;
        case '4': family = STUNKIT_AF_INET; break;
        case '6': family = STUNKIT_AF_INET6; break;
        case 'T': tr = STUNKIT_TCP; tr_set = 1; break;
        case 'S': tr = STUNKIT_TLS; tr_set = 1; break;
        case 'D': tr = STUNKIT_DTLS; tr_set = 1; break;
        case 'u': cred.username = optarg; break;
        case 'p': cred.password = optarg; break;
        case 's': cred.short_term = 1; break;
        case 'k': insecure = 1; break;
        case 'l':
            if (stunkit_addr_parse(optarg, 0, &local) != 0) {
                fprintf(stderr, "stunkit addr: --local '%s': not a numeric address (ADDR or ADDR:PORT)\n", optarg);
                return 2;
            }
            have_local = 1;
            break;
        case 't': {
            char *end;
            timeout = strtol(optarg, &end, 10);
            if (*end || timeout < 1 || timeout > 600000) {
                fprintf(stderr, "stunkit addr: --timeout '%s': expected milliseconds from 1 to 600000\n", optarg);
                return 2;
            }
            break;
        }
        case 'h': addr_usage(stdout); return 0;
        case ':': fprintf(stderr, "stunkit addr: option %s needs a value\n", opt); return 2;
        default: fprintf(stderr, "stunkit addr: unknown option '%s' (try --help)\n", opt); return 2;
        }
    }
    if (cred.username && !cred.password) {
        fprintf(stderr, "stunkit addr: --username needs --password (or STUNKIT_PASSWORD in the environment)\n");
        return 2;
    }
    if (argc - optind > 1) {
        fprintf(stderr, "stunkit addr: name at most one SERVER (try --help)\n");
        return 2;
    }
    if (have_local) {
        if (family && local.family != family) {
            fprintf(stderr, "stunkit addr: --local is not of the family asked for\n");
            return 2;
        }
        family = local.family;
    }
    const char *const *names = public_servers;
    size_t n_names = sizeof(public_servers) / sizeof(public_servers[0]);
    if (optind < argc) {
        names = (const char *const *)&argv[optind];
        n_names = 1;
    }
    for (size_t i = 0; i < n_names; i++) {
        stunkit_server srv;
        stunkit_addr addrs[8];
        if (stunkit_server_parse(names[i], &srv) != 0) {
            fprintf(stderr, "stunkit addr: '%s' is not a server (host, host:port, [v6]:port or stun:host[:port])\n",
                    names[i]);
            return 2;
        }
        stunkit_transport use = tr_set ? tr : srv.secure ? STUNKIT_TLS : STUNKIT_UDP;
        int n = stunkit_server_resolve(&srv, use, family, addrs, 8);
        if (n <= 0) {
            fprintf(stderr, "stunkit addr: cannot resolve %s\n", srv.host);
            continue;
        }
        for (int k = 0; k < n; k++) {
            stunkit_binding_result res;
            char where[STUNKIT_ADDRSTRLEN];
            stunkit_addr_format(&addrs[k], where, sizeof(where));
            stunkit_addr *lp = NULL;
            stunkit_addr l2;
            if (have_local) {
                l2 = local;
                lp = &l2;
            }
            const char *tls_name = (use == STUNKIT_TLS || use == STUNKIT_DTLS) && !insecure ? srv.host : NULL;
            int rv = stunkit_binding_auth(&addrs[k], use, lp, tls_name, (uint32_t)timeout,
                                          cred.username ? &cred : NULL, &res);
            if (rv == STUNKIT_ERR_UNEXPECTED && res.error_code) {
                const char *why = stunkit_code_reason(res.error_code);
                fprintf(stderr, "stunkit addr: %s (%s/%s) answered %d %s%s\n", names[i], where, transport_name(use),
                        res.error_code, why ? why : "",
                        res.error_code == 401 && !cred.username ? " (try --username and --password)" : "");
                continue;
            }
            if (rv != 0) {
                fprintf(stderr, "stunkit addr: %s (%s/%s): %s%s%s\n", names[i], where, transport_name(use),
                        stunkit_strerror(rv), rv == STUNKIT_ERR_SYSCALL ? ": " : "",
                        rv == STUNKIT_ERR_SYSCALL ? strerror(errno) : "");
                continue;
            }
            char mapped[STUNKIT_ADDRSTRLEN], loc[STUNKIT_ADDRSTRLEN];
            stunkit_addr_format(&res.mapped, mapped, sizeof(mapped));
            stunkit_addr_format(&res.local, loc, sizeof(loc));
            int nat = !stunkit_addr_equal(&res.mapped, &res.local);
            if (json) {
                printf("{\"server\": ");
                json_string(stdout, names[i], strlen(names[i]));
                printf(", \"server_address\": \"%s\", \"transport\": \"%s\", \"local\": \"%s\", \"mapped\": \"%s\", "
                       "\"nat\": %s, \"rtt_ms\": %u}\n",
                       where, transport_name(use), loc, mapped, nat ? "true" : "false", res.rtt_ms);
            } else {
                printf("public address  %s\n", mapped);
                printf("local address   %s\n", loc);
                printf("server          %s (%s over %s), answered in %u ms\n", names[i], where,
                       transport_name(use), res.rtt_ms);
                if (nat)
                    printf("NAT             yes: peers see %s, not your local address\n", mapped);
                else
                    printf("NAT             none seen between you and this server\n");
                if ((use == STUNKIT_TLS || use == STUNKIT_DTLS) && insecure)
                    printf("warning         the server's certificate was not checked (--insecure)\n");
            }
            return 0;
        }
    }
    fprintf(stderr, "stunkit addr: no server answered\n");
    return 1;
}
