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
               "      --ca-file F   with --tls or --dtls: trust the CAs in F (PEM) instead of\n"
               "                    the system's (SSL_CERT_FILE and SSL_CERT_DIR work too)\n"
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
               "A failure is one line on stderr saying which server and why (no answer in\n"
               "time, refused, the certificate's problem, the server's error code).\n"
               "\n"
               "Exit status: 0 an address was learned, 1 no server gave one, 2 bad usage.\n");
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
                                         {"ca-file", required_argument, NULL, 'C'},
                                         {"local", required_argument, NULL, 'l'},
                                         {"timeout", required_argument, NULL, 't'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int json = 0, family = 0, insecure = 0, c, password_flag = 0;
    const char *ca_file = NULL;
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
        case 'T':
        case 'S':
        case 'D': {
            stunkit_transport want = c == 'T' ? STUNKIT_TCP : c == 'S' ? STUNKIT_TLS : STUNKIT_DTLS;
            if (tr_set && tr != want) {
                fprintf(stderr, "stunkit addr: --tcp, --tls and --dtls exclude each other: choose one\n");
                return 2;
            }
            tr = want;
            tr_set = 1;
            break;
        }
        case 'u': cred.username = optarg; break;
        case 'p': cred.password = optarg; password_flag = 1; break;
        case 's': cred.short_term = 1; break;
        case 'k': insecure = 1; break;
        case 'C': ca_file = optarg; break;
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
    if (!cred.username && (password_flag || cred.short_term)) {
        fprintf(stderr, "stunkit addr: %s needs --username\n", password_flag ? "--password" : "--short-term");
        return 2;
    }
    if (insecure && ca_file) {
        fprintf(stderr, "stunkit addr: --insecure and --ca-file exclude each other: choose one\n");
        return 2;
    }
    if ((insecure || ca_file) && tr_set && tr != STUNKIT_TLS && tr != STUNKIT_DTLS) {
        fprintf(stderr, "stunkit addr: %s only applies to --tls or --dtls\n", insecure ? "--insecure" : "--ca-file");
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
        if ((insecure || ca_file) && use != STUNKIT_TLS && use != STUNKIT_DTLS) {
            fprintf(stderr, "stunkit addr: %s only applies to --tls, --dtls or a stuns: server\n",
                    insecure ? "--insecure" : "--ca-file");
            return 2;
        }
        int n = stunkit_server_resolve(&srv, use, family, addrs, 8);
        if (n <= 0) {
            fprintf(stderr, "stunkit addr: %s: the name does not resolve%s\n", srv.host,
                    family ? " to an address of the family asked for" : "");
            continue;
        }
        for (int k = 0; k < n; k++) {
            stunkit_binding_result res;
            char where[STUNKIT_ADDRSTRLEN], why[256];
            stunkit_addr_format(&addrs[k], where, sizeof(where));
            stunkit_binding_options o = {.size = sizeof(o),
                                         .local = have_local ? &local : NULL,
                                         .timeout_ms = (uint32_t)timeout,
                                         .cred = cred.username ? &cred : NULL,
                                         .tls_name = srv.host,
                                         .tls_insecure = insecure,
                                         .ca_file = ca_file,
                                         .error_text = why,
                                         .error_text_cap = sizeof(why)};
            int rv = stunkit_binding_ex(&addrs[k], use, &o, &res);
            if (rv != 0) {
                /* one line per failure: which server, and why in words */
                char reason[320];
                if (rv == STUNKIT_ERR_UNEXPECTED && res.error_code) {
                    const char *text = stunkit_code_reason(res.error_code);
                    snprintf(reason, sizeof(reason), "answered %d %s%s", res.error_code, text ? text : "",
                             res.error_code == 401 && !cred.username ? " (try --username and --password)"
                             : res.error_code == 401                 ? " (the credentials were not accepted)"
                                                                     : "");
                } else if (why[0]) {
                    snprintf(reason, sizeof(reason), "%s", why);
                } else if (rv == STUNKIT_ERR_TIMEOUT) {
                    snprintf(reason, sizeof(reason), "no answer within %ld ms", timeout);
                } else if (rv == STUNKIT_ERR_SYSCALL) {
                    snprintf(reason, sizeof(reason), "%s", strerror(errno));
                } else {
                    snprintf(reason, sizeof(reason), "%s", stunkit_strerror(rv));
                }
                fprintf(stderr, "stunkit addr: %s (%s over %s): %s\n", names[i], where, transport_name(use), reason);
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
    if (n_names > 1)
        fprintf(stderr, "stunkit addr: none of the %zu built-in public servers gave an address\n", n_names);
    return 1;
}
