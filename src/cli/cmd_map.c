/*
 * cmd_map.c - `stunkit map`: ask the router for a port with PCP (RFC 6887)
 * or NAT-PMP (RFC 6886), print the mapping, keep it renewed until SIGINT or
 * SIGTERM and then delete it. The machine is stunkit/portmap.h; this file
 * finds the gateway, owns the socket and the clock, and prints.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli.h"
#include "stunkit/stunkit.h"

static void usage(FILE *f)
{
    fprintf(f, "Usage: stunkit map [--method auto|pcp|natpmp] [--udp|--tcp] --port P [--external-port E]\n"
               "                   [--lifetime S] [--gateway IP] [--timeout MS] [--stun SERVER] [--once]\n"
               "                   [--json]\n"
               "\n"
               "Asks the router for a port mapping (PCP, falling back to NAT-PMP), prints it,\n"
               "and keeps it renewed until interrupted (SIGINT or SIGTERM), then deletes it.\n"
               "\n"
               "  --port P            the local port to make reachable (required)\n"
               "  --udp, --tcp        its protocol (default UDP)\n"
               "  --external-port E   the external port to ask for (default: any)\n"
               "  --lifetime S        seconds to ask for (default 7200); renewed before expiry\n"
               "  --method M          auto (PCP, then NAT-PMP), pcp or natpmp\n"
               "  --gateway IP        the router (default: this host's default gateway)\n"
               "  --timeout MS        give up on the first answer after MS (default 2000)\n"
               "  --once              map and exit; the mapping lives out its lifetime\n"
               "  --stun SERVER       check the mapping with STUN: does the internet see the router's\n"
               "                      address (else a second NAT is in the way)? With an RFC 5780\n"
               "                      server, prove the port open from its other address\n"
               "  --json              one JSON object per line, the first being the mapping\n"
               "\n"
               "Exit status: 0 mapped (and deleted on exit), 1 refused or no answer, 2 bad usage,\n"
               "3 mapped but --stun shows another NAT beyond the router.\n");
}

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

/* The IPv4 default gateway from /proc/net/route, or the IPv6 one from
 * /proc/net/ipv6_route. 0 or -1. */
static int default_gateway(int family, stunkit_addr *out)
{
    char line[512];
    memset(out, 0, sizeof(*out));
    if (family == STUNKIT_AF_INET6) {
        FILE *f = fopen("/proc/net/ipv6_route", "r");
        if (!f)
            return -1;
        while (fgets(line, sizeof(line), f)) {
            char dst[33], gw[33];
            unsigned dlen;
            if (sscanf(line, "%32s %x %*s %*s %32s", dst, &dlen, gw) == 3 && dlen == 0 &&
                !strcmp(dst, "00000000000000000000000000000000") && strcmp(gw, "00000000000000000000000000000000")) {
                out->family = STUNKIT_AF_INET6;
                for (int i = 0; i < 16; i++) {
                    unsigned b;
                    sscanf(gw + 2 * i, "%2x", &b);
                    out->ip[i] = (uint8_t)b;
                }
                break;
            }
        }
        fclose(f);
        return out->family ? 0 : -1;
    }
    FILE *f = fopen("/proc/net/route", "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f)) {
        char ifname[64];
        unsigned dst, gw, flags;
        if (sscanf(line, "%63s %x %x %x", ifname, &dst, &gw, &flags) == 4 && dst == 0 && gw != 0 && (flags & 2)) {
            out->family = STUNKIT_AF_INET;
            memcpy(out->ip, &gw, 4); /* the kernel prints it in network order, read as a host int */
            break;
        }
    }
    fclose(f);
    return out->family ? 0 : -1;
}

static void print_mapping(const stunkit_portmap_output *o, const stunkit_addr *gw, const stunkit_addr *internal,
                          int tcp, int json, const char *what, int renewing)
{
    char g[STUNKIT_ADDRSTRLEN], in[STUNKIT_ADDRSTRLEN], ex[STUNKIT_ADDRSTRLEN];
    stunkit_addr_format_ip(gw, g, sizeof(g));
    stunkit_addr_format(internal, in, sizeof(in));
    stunkit_addr_format(&o->external, ex, sizeof(ex));
    if (json) {
        printf("{\"event\": \"%s\", \"method\": \"%s\", \"gateway\": \"%s\", \"protocol\": \"%s\", \"internal\": \"%s\", "
               "\"external\": \"%s\", \"lifetime_s\": %u}\n",
               what, stunkit_portmap_method_name(o->method), g, tcp ? "tcp" : "udp", in, ex, o->lifetime_s);
    } else if (!strcmp(what, "mapped")) {
        printf("method      %s (gateway %s)\n", o->method == STUNKIT_PORTMAP_PCP ? "PCP" : "NAT-PMP", g);
        printf("mapping     %s %s -> %s\n", tcp ? "tcp" : "udp", ex, in);
        printf("lifetime    %u s%s\n", o->lifetime_s, renewing ? " (renewed before expiry until interrupted)" : "");
    } else {
        printf("%-11s %s, lifetime %u s\n", what, ex, o->lifetime_s);
    }
    fflush(stdout);
}

static int parse_num(const char *opt, const char *v, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno || *end || end == v || n < lo || n > hi) {
        fprintf(stderr, "stunkit map: %s '%s': expected a number from %ld to %ld\n", opt, v, lo, hi);
        return -1;
    }
    *out = n;
    return 0;
}

/* One Binding with CHANGE-REQUEST (change IP and port, RFC 5780 7.2) from
 * the mapped port: an answer from the server's other address can only have
 * come in through the mapping. 1 answered, 0 not. */
static int probe_open(int fd, const stunkit_addr *server, const stunkit_addr *other)
{
    uint8_t req[64], tid[STUNKIT_TID_LEN], buf[1500];
    stunkit_writer w;
    stunkit_random_os(NULL, tid, sizeof(tid));
    stunkit_writer_init(&w, req, sizeof(req), STUNKIT_METHOD_BINDING, STUNKIT_CLASS_REQUEST, tid);
    stunkit_put_u32(&w, STUNKIT_ATTR_CHANGE_REQUEST, 0x06);
    stunkit_put_fingerprint(&w);
    int len = stunkit_writer_finish(&w);
    struct sockaddr_storage ss;
    int sl = stunkit_addr_to_sockaddr(server, &ss);
    for (int attempt = 0; attempt < 4; attempt++) { /* 4 x 300 ms: loss is not "closed" */
        sendto(fd, req, (size_t)len, 0, (struct sockaddr *)&ss, (socklen_t)sl);
        uint64_t until = stunkit_now_ms() + 300;
        for (uint64_t now; (now = stunkit_now_ms()) < until;) {
            struct pollfd p = {fd, POLLIN, 0};
            if (poll(&p, 1, (int)(until - now)) <= 0)
                break;
            struct sockaddr_storage from;
            socklen_t fl = sizeof(from);
            ssize_t n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl);
            stunkit_addr src;
            stunkit_msg m;
            if (n > 0 && stunkit_addr_from_sockaddr(&src, (struct sockaddr *)&from) == 0 &&
                stunkit_addr_equal(&src, other) && stunkit_msg_parse(&m, buf, (size_t)n) == 0 &&
                m.klass == STUNKIT_CLASS_SUCCESS && !memcmp(m.tid, tid, STUNKIT_TID_LEN))
                return 1;
        }
    }
    return 0;
}

/* The truth check: does the internet see the router's external address?
 * When STUN sees another one, a second NAT (a carrier's, or another
 * router) sits beyond this router and the mapping does not make this host
 * reachable. With an RFC 5780 server, an answer from its other address
 * through the mapped port proves the port open from outside.
 * 0 reachable (or not disproved), 3 not reachable, 1 no STUN answer. */
static int truth_check(const char *stun_text, const stunkit_addr *internal, const stunkit_addr *external, int tcp,
                       int json)
{
    stunkit_server srv;
    stunkit_addr server;
    if (stunkit_server_parse(stun_text, &srv) != 0 ||
        stunkit_server_resolve(&srv, STUNKIT_UDP, external->family, &server, 1) < 1) {
        fprintf(stderr, "stunkit map: --stun %s: cannot resolve it\n", stun_text);
        return 1;
    }
    /* from the mapped port itself when it is free (UDP), else any port */
    stunkit_binding_result res;
    stunkit_addr local = *internal;
    if (tcp)
        local.port = 0;
    int rv = stunkit_binding(&server, STUNKIT_UDP, &local, NULL, 2000, &res);
    if (rv == STUNKIT_ERR_SYSCALL && errno == EADDRINUSE && local.port) {
        local.port = 0;
        rv = stunkit_binding(&server, STUNKIT_UDP, &local, NULL, 2000, &res);
    }
    int from_port = local.port != 0;
    if (rv != 0) {
        fprintf(stderr, "stunkit map: --stun %s: no answer (%s)\n", stun_text, stunkit_strerror(rv));
        return 1;
    }
    struct sockaddr_storage ls;
    int ll = stunkit_addr_to_sockaddr(internal, &ls);
    char seen[STUNKIT_ADDRSTRLEN], ext[STUNKIT_ADDRSTRLEN];
    stunkit_addr_format_ip(&res.mapped, seen, sizeof(seen));
    stunkit_addr_format_ip(external, ext, sizeof(ext));
    int same = stunkit_addr_ip_equal(&res.mapped, external);
    int proven = -1; /* -1 not tried, 0 no answer, 1 open */
    if (same && from_port && res.other.family) {
        int fd = socket(internal->family == STUNKIT_AF_INET6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd >= 0 && bind(fd, (struct sockaddr *)&ls, (socklen_t)ll) == 0)
            proven = probe_open(fd, &server, &res.other);
        if (fd >= 0)
            close(fd);
    }
    const char *verdict = !same ? "not reachable" : proven == 1 ? "reachable" : "not disproved";
    char why[400];
    if (!same)
        snprintf(why, sizeof(why),
                 "the internet sees %s, not the router's %s: another NAT (a carrier-grade NAT or a second router) "
                 "sits beyond this router, and the mapping does not make this host reachable from the internet",
                 seen, ext);
    else if (proven == 1)
        snprintf(why, sizeof(why), "the STUN server's other address reached this port through the mapping");
    else if (proven == 0)
        snprintf(why, sizeof(why), "the router's address is what the internet sees, but the STUN server's other "
                                   "address did not get through to this port");
    else
        snprintf(why, sizeof(why), "the router's address is what the internet sees%s",
                 from_port ? " (the server has no other address to prove the port open)"
                           : " (the port is in use or TCP: not probed)");
    if (json) {
        printf("{\"event\": \"stun\", \"server\": ");
        json_string(stdout, stun_text, strlen(stun_text));
        printf(", \"seen\": \"%s\", \"router\": \"%s\", \"verdict\": \"%s\", \"reason\": ", seen, ext, verdict);
        json_string(stdout, why, strlen(why));
        printf("}\n");
    } else {
        printf("stun        %s: %s\n", verdict, why);
    }
    fflush(stdout);
    return same ? 0 : 3;
}

int cmd_map(int argc, char **argv)
{
    static const struct option opts[] = {{"method", required_argument, NULL, 'm'},
                                         {"udp", no_argument, NULL, 'U'},
                                         {"tcp", no_argument, NULL, 'C'},
                                         {"port", required_argument, NULL, 'p'},
                                         {"external-port", required_argument, NULL, 'e'},
                                         {"lifetime", required_argument, NULL, 'l'},
                                         {"gateway", required_argument, NULL, 'g'},
                                         {"timeout", required_argument, NULL, 'T'},
                                         {"once", no_argument, NULL, 'o'},
                                         {"stun", required_argument, NULL, 's'},
                                         {"json", no_argument, NULL, 'j'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    stunkit_portmap_method method = STUNKIT_PORTMAP_AUTO;
    int tcp = -1, once = 0, json = 0, c;
    long port = 0, ext = 0, lifetime = 7200, timeout = 2000;
    const char *gateway_text = NULL, *stun_text = NULL;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        const char *opt = argv[optind - 1];
        switch (c) {
        case 'm':
            if (!strcmp(optarg, "auto"))
                method = STUNKIT_PORTMAP_AUTO;
            else if (!strcmp(optarg, "pcp"))
                method = STUNKIT_PORTMAP_PCP;
            else if (!strcmp(optarg, "natpmp") || !strcmp(optarg, "nat-pmp"))
                method = STUNKIT_PORTMAP_NATPMP;
            else if (!strcmp(optarg, "upnp")) {
                fprintf(stderr, "stunkit map: --method upnp: UPnP IGD is not in this build yet (PCP and NAT-PMP are)\n");
                return 2;
            } else {
                fprintf(stderr, "stunkit map: --method '%s': expected auto, pcp or natpmp\n", optarg);
                return 2;
            }
            break;
        case 'U':
        case 'C':
            if (tcp >= 0 && tcp != (c == 'C')) {
                fprintf(stderr, "stunkit map: --udp and --tcp: choose one\n");
                return 2;
            }
            tcp = c == 'C';
            break;
        case 'p':
            if (parse_num(opt, optarg, 1, 65535, &port) != 0)
                return 2;
            break;
        case 'e':
            if (parse_num(opt, optarg, 1, 65535, &ext) != 0)
                return 2;
            break;
        case 'l':
            if (parse_num(opt, optarg, 1, 86400 * 7, &lifetime) != 0)
                return 2;
            break;
        case 'T':
            if (parse_num(opt, optarg, 100, 600000, &timeout) != 0)
                return 2;
            break;
        case 'g': gateway_text = optarg; break;
        case 's': stun_text = optarg; break;
        case 'o': once = 1; break;
        case 'j': json = 1; break;
        case 'h': usage(stdout); return 0;
        case ':': fprintf(stderr, "stunkit map: option %s needs a value\n", opt); return 2;
        default: fprintf(stderr, "stunkit map: unknown option '%s' (try --help)\n", opt); return 2;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "stunkit map: unexpected argument '%s' (try --help)\n", argv[optind]);
        return 2;
    }
    if (!port) {
        fprintf(stderr, "stunkit map: --port is required (the local port to make reachable)\n");
        return 2;
    }
    stunkit_addr gw;
    if (gateway_text) {
        if (stunkit_addr_parse(gateway_text, STUNKIT_PORTMAP_PORT, &gw) != 0) {
            fprintf(stderr, "stunkit map: --gateway '%s' is not an IP address\n", gateway_text);
            return 2;
        }
    } else if (default_gateway(STUNKIT_AF_INET, &gw) != 0 && default_gateway(STUNKIT_AF_INET6, &gw) != 0) {
        fprintf(stderr, "stunkit map: no default gateway (give one with --gateway)\n");
        return 1;
    }
    gw.port = STUNKIT_PORTMAP_PORT;
    if (method == STUNKIT_PORTMAP_NATPMP && gw.family != STUNKIT_AF_INET) {
        fprintf(stderr, "stunkit map: NAT-PMP works over IPv4 only (use --method pcp for IPv6)\n");
        return 2;
    }

    /* a connected socket: the router's answers only, and its ICMP errors */
    struct sockaddr_storage ss;
    int sl = stunkit_addr_to_sockaddr(&gw, &ss);
    int fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&ss, (socklen_t)sl) != 0) {
        fprintf(stderr, "stunkit map: cannot reach the gateway: %s\n", strerror(errno));
        return 1;
    }
    struct sockaddr_storage mine;
    socklen_t ml = sizeof(mine);
    stunkit_addr internal;
    getsockname(fd, (struct sockaddr *)&mine, &ml);
    stunkit_addr_from_sockaddr(&internal, (struct sockaddr *)&mine);
    internal.port = (uint16_t)port;

    stunkit_portmap_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.size = sizeof(cfg);
    cfg.gateway = gw;
    cfg.internal = internal;
    cfg.protocol = tcp == 1 ? 6 : 17;
    cfg.external_port = (uint16_t)ext;
    cfg.lifetime_s = (uint32_t)lifetime;
    cfg.method = method;
    cfg.random = stunkit_random_os;
    stunkit_portmap *m = stunkit_portmap_new(&cfg, stunkit_now_ms());
    if (!m) {
        fprintf(stderr, "stunkit map: cannot start (out of memory?)\n");
        close(fd);
        return 1;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    char gtext[STUNKIT_ADDRSTRLEN];
    stunkit_addr_format_ip(&gw, gtext, sizeof(gtext));
    uint64_t first_deadline = stunkit_now_ms() + (uint64_t)timeout, delete_deadline = 0;
    int mapped = 0, rc = -1, deleting = 0, unreachable = 0, truth = 0;
    while (rc < 0) {
        uint64_t now = stunkit_now_ms();
        if (stop && mapped && !deleting) {
            deleting = 1;
            delete_deadline = now + 2000;
            stunkit_portmap_delete(m, now);
        } else if (stop && !mapped) {
            fprintf(stderr, "stunkit map: interrupted before the router answered\n");
            rc = 1;
            break;
        }
        stunkit_portmap_output o;
        while (rc < 0 && stunkit_portmap_poll(m, now, &o) == 1) {
            if (o.send) {
                if (send(fd, o.data, o.len, 0) < 0 && errno == ECONNREFUSED)
                    unreachable = 1;
                continue;
            }
            switch (o.event) {
            case STUNKIT_PORTMAP_MAPPED:
                mapped = 1;
                print_mapping(&o, &gw, &internal, tcp == 1, json, "mapped", !once);
                if (stun_text)
                    truth = truth_check(stun_text, &internal, &o.external, tcp == 1, json);
                if (once)
                    rc = truth;
                break;
            case STUNKIT_PORTMAP_RENEWED: print_mapping(&o, &gw, &internal, tcp == 1, json, "renewed", 1); break;
            case STUNKIT_PORTMAP_RESET:
                if (json)
                    printf("{\"event\": \"reset\", \"reason\": \"the router lost its mappings (rebooted?)\"}\n");
                else
                    printf("reset       the router lost its mappings (rebooted?): mapping again\n");
                fflush(stdout);
                break;
            case STUNKIT_PORTMAP_DELETED:
                if (json)
                    printf("{\"event\": \"deleted\"}\n");
                else
                    printf("deleted     the router removed the mapping\n");
                rc = truth;
                break;
            case STUNKIT_PORTMAP_FAILED: {
                const char *name = stunkit_portmap_result_name(o.method, o.result);
                if (json)
                    printf("{\"event\": \"failed\", \"method\": \"%s\", \"gateway\": \"%s\", \"result\": %d, "
                           "\"result_name\": \"%s\", \"reason\": \"%s\"}\n",
                           stunkit_portmap_method_name(o.method), gtext, o.result, name, o.reason);
                else
                    fprintf(stderr, "stunkit map: %s: %s (%s %s)\n", gtext, o.reason,
                            o.method == STUNKIT_PORTMAP_NATPMP ? "NAT-PMP" : "PCP", name);
                rc = deleting ? 0 : 1;
                break;
            }
            }
        }
        if (rc >= 0)
            break;
        now = stunkit_now_ms();
        if (!mapped && (now >= first_deadline || unreachable)) {
            const char *why = unreachable ? "nothing listens on its port 5351 (ICMP port unreachable)"
                                          : "no answer to PCP or NAT-PMP";
            if (json)
                printf("{\"event\": \"failed\", \"method\": \"%s\", \"gateway\": \"%s\", \"result\": -1, "
                       "\"reason\": \"%s\"}\n",
                       stunkit_portmap_method_name(method), gtext, why);
            else
                fprintf(stderr, "stunkit map: the gateway %s does not map ports: %s within %ld ms\n", gtext, why,
                        timeout);
            rc = 1;
            break;
        }
        if (deleting && now >= delete_deadline) {
            fprintf(stderr, "stunkit map: the router did not confirm the deletion; the mapping lapses at expiry\n");
            rc = 1;
            break;
        }
        uint64_t next = stunkit_portmap_next(m);
        if (!mapped && first_deadline < next)
            next = first_deadline;
        if (deleting && delete_deadline < next)
            next = delete_deadline;
        int wait = next <= now ? 0 : next - now > 1000 ? 1000 : (int)(next - now);
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, wait) > 0) {
            uint8_t buf[1200];
            ssize_t n;
            while ((n = recv(fd, buf, sizeof(buf), 0)) >= 0 || errno == ECONNREFUSED) {
                if (n < 0) {
                    unreachable = 1;
                    continue;
                }
                stunkit_portmap_input(m, buf, (size_t)n, &gw, stunkit_now_ms());
            }
        }
    }
    stunkit_portmap_free(m);
    close(fd);
    return rc;
}
