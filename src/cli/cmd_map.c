/*
 * cmd_map.c - `stunkit map`: ask the router for a port with PCP (RFC 6887),
 * NAT-PMP (RFC 6886) or UPnP IGD, print the mapping, keep it renewed until
 * SIGINT or SIGTERM and then delete it; `--list` and `--delete` besides.
 * PCP and NAT-PMP are the machine in stunkit/portmap.h, UPnP runs on its
 * own thread (stunkit_upnp_task_*, stunkit/upnp.h); this file finds the gateway, owns the socket and
 * the clock, races the methods in `auto`, and prints.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ctype.h>
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
    fprintf(f, "Usage: stunkit map [--method auto|pcp|natpmp|upnp] [--udp|--tcp] --port P [--external-port E]\n"
               "                   [--lifetime S] [--gateway IP] [--timeout MS] [--stun SERVER] [--once] [--json]\n"
               "       stunkit map --delete [--method M] [--udp|--tcp] --port P [--external-port E] [--nonce HEX]\n"
               "       stunkit map --list [--gateway IP] [--json]\n"
               "\n"
               "Asks the router for a port mapping, prints it, and keeps it renewed until\n"
               "interrupted (SIGINT or SIGTERM), then deletes it.\n"
               "\n"
               "  --port P            the local port to make reachable (required)\n"
               "  --udp, --tcp        its protocol (default UDP)\n"
               "  --external-port E   the external port to ask for (default: any, or P)\n"
               "  --lifetime S        seconds to ask for (default 7200); renewed before expiry\n"
               "  --method M          auto (PCP, NAT-PMP and UPnP at once; the first to map wins),\n"
               "                      pcp, natpmp or upnp\n"
               "  --gateway IP        the router (default: this host's default gateway); nothing\n"
               "                      else is spoken to\n"
               "  -t, --timeout MS    give up on the first answer after MS (default 2000)\n"
               "  --once              map and exit; the mapping lives out its lifetime\n"
               "  --stun SERVER       check the mapping with STUN: does the internet see the router's\n"
               "                      address (else a second NAT is in the way)? With an RFC 5780\n"
               "                      server, prove the port open from its other address\n"
               "  --delete            remove a mapping made earlier (--once): UPnP and NAT-PMP by\n"
               "                      port, PCP by port and the nonce --once printed (--nonce)\n"
               "  --list              the router's mappings (UPnP IGD; PCP and NAT-PMP cannot list)\n"
               "  --json              one JSON object per line, the first being the mapping\n"
               "\n"
               "Exit status: 0 mapped (and deleted on exit), 1 refused or no answer, 2 bad usage,\n"
               "3 mapped but --stun shows another NAT beyond the router.\n"
               "UPnP IGD: %s.\n",
            stunkit_upnp_available() ? "built in (libminiupnpc)" : "not in this build (no libminiupnpc)");
}

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static const char *method_title(stunkit_portmap_method m)
{
    return m == STUNKIT_PORTMAP_PCP      ? "PCP"
           : m == STUNKIT_PORTMAP_NATPMP ? "NAT-PMP"
           : m == STUNKIT_PORTMAP_UPNP   ? "UPnP IGD"
                                         : "PCP/NAT-PMP";
}

/* The external address as text; "?:PORT" when the router cannot tell. */
static void format_external(const stunkit_addr *ext, char *buf, size_t cap)
{
    if (ext->family)
        stunkit_addr_format(ext, buf, cap);
    else
        snprintf(buf, cap, "?:%u", ext->port);
}

static void print_mapping(const stunkit_upnp_task_event *ev, const stunkit_addr *gw, const stunkit_addr *internal, int tcp,
                          int json, int renewing, const uint8_t *nonce)
{
    const stunkit_portmap_output *o = &ev->o;
    const char *what = stunkit_portmap_event_name(o->event);
    char g[STUNKIT_ADDRSTRLEN], in[STUNKIT_ADDRSTRLEN], ex[STUNKIT_ADDRSTRLEN + 4];
    stunkit_addr_format_ip(gw, g, sizeof(g));
    stunkit_addr_format(internal, in, sizeof(in));
    format_external(&o->external, ex, sizeof(ex));
    int upnp = o->method == STUNKIT_PORTMAP_UPNP;
    if (json) {
        printf("{\"event\": \"%s\", \"method\": \"%s\", \"gateway\": \"%s\", \"protocol\": \"%s\", \"internal\": \"%s\", ",
               what, stunkit_portmap_method_name(o->method), g, tcp ? "tcp" : "udp", in);
        if (o->external.family)
            printf("\"external\": \"%s\", ", ex);
        else
            printf("\"external\": null, \"external_port\": %u, ", o->external.port);
        printf("\"lifetime_s\": %u", o->lifetime_s);
        if (upnp)
            printf(", \"permanent\": %s, \"moved\": %s, \"igd\": {\"version\": %d, \"service\": \"%s\", "
                   "\"connected\": %s}",
                   ev->permanent ? "true" : "false", ev->moved ? "true" : "false", ev->igd_version, ev->service,
                   ev->connected ? "true" : "false");
        if (nonce) {
            printf(", \"nonce\": \"");
            for (int i = 0; i < 12; i++)
                printf("%02x", nonce[i]);
            printf("\"");
        }
        printf("}\n");
    } else if (o->event == STUNKIT_PORTMAP_EVENT_MAPPED) {
        if (upnp)
            printf("method      UPnP IGD v%d (%s at %s%s)\n", ev->igd_version, ev->service, g,
                   ev->connected ? "" : "; it calls itself not connected");
        else
            printf("method      %s (gateway %s)\n", method_title(o->method), g);
        printf("mapping     %s %s -> %s\n", tcp ? "tcp" : "udp", ex, in);
        if (!o->external.family)
            printf("note        the router does not tell its external address (try --stun)\n");
        if (ev->moved)
            printf("note        the port asked for was taken by another host; the router gave %u\n", o->external.port);
        if (ev->permanent)
            printf("lifetime    permanent (the router gives no other kind)%s\n",
                   renewing ? "; deleted when interrupted" : "; delete it with stunkit map --delete");
        else
            printf("lifetime    %u s%s\n", o->lifetime_s, renewing ? " (renewed before expiry until interrupted)" : "");
        if (nonce) {
            printf("nonce       ");
            for (int i = 0; i < 12; i++)
                printf("%02x", nonce[i]);
            printf(" (to delete it early: --delete --nonce)\n");
        }
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
        stunkit_server_resolve(&srv, STUNKIT_UDP, external->family ? external->family : internal->family, &server,
                               1) < 1) {
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
    if (external->family)
        stunkit_addr_format_ip(external, ext, sizeof(ext));
    else
        snprintf(ext, sizeof(ext), "unknown");
    /* 1 the same address, 0 another, -1 the router does not tell */
    int same = external->family ? stunkit_addr_ip_equal(&res.mapped, external) : -1;
    int proven = -1; /* -1 not tried, 0 no answer, 1 open */
    if (same != 0 && from_port && res.other.family) {
        int fd = socket(internal->family == STUNKIT_AF_INET6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd >= 0 && bind(fd, (struct sockaddr *)&ls, (socklen_t)ll) == 0)
            proven = probe_open(fd, &server, &res.other);
        if (fd >= 0)
            close(fd);
    }
    const char *verdict = same == 0    ? "not reachable"
                          : proven == 1 ? "reachable"
                          : same < 0    ? "unknown"
                                        : "not disproved";
    char why[400];
    if (same == 0)
        snprintf(why, sizeof(why),
                 "the internet sees %s, not the router's %s: another NAT (a carrier-grade NAT or a second router) "
                 "sits beyond this router, and the mapping does not make this host reachable from the internet",
                 seen, ext);
    else if (proven == 1)
        snprintf(why, sizeof(why), "the STUN server's other address reached this port through the mapping%s",
                 same < 0 ? " (the router does not tell its external address; the internet sees it as " : "");
    else if (same < 0)
        snprintf(why, sizeof(why), "the router does not tell its external address, and the internet sees %s: "
                                   "whether the mapping is reachable is not known", seen);
    else if (proven == 0)
        snprintf(why, sizeof(why), "the router's address is what the internet sees, but the STUN server's other "
                                   "address did not get through to this port");
    else
        snprintf(why, sizeof(why), "the router's address is what the internet sees%s",
                 from_port ? " (the server has no other address to prove the port open)"
                           : " (the port is in use or TCP: not probed)");
    if (proven == 1 && same < 0) {
        size_t l = strlen(why);
        snprintf(why + l, sizeof(why) - l, "%s)", seen);
    }
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
    return same == 0 ? 3 : 0;
}


/* What every mode needs: the router, this host's address toward it, the
 * mapping asked for. */
typedef struct map_args {
    stunkit_portmap_method method;
    stunkit_addr gw, internal; /* internal.port: --port */
    int tcp, once, json, use_nonce;
    long ext, lifetime, timeout;
    uint8_t nonce[12];
    const char *stun_text;
} map_args;

/* A connected UDP socket to the router's port 5351: its answers only, and
 * its ICMP errors. */
static int gateway_socket(const stunkit_addr *gw)
{
    struct sockaddr_storage ss;
    int sl = stunkit_addr_to_sockaddr(gw, &ss);
    int fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&ss, (socklen_t)sl) != 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

static stunkit_portmap *machine_new(const map_args *a, stunkit_portmap_method method, int delete_only)
{
    stunkit_portmap_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.size = sizeof(cfg);
    cfg.gateway = a->gw;
    cfg.internal = a->internal;
    cfg.protocol = a->tcp ? 6 : 17;
    cfg.external_port = (uint16_t)a->ext;
    cfg.lifetime_s = (uint32_t)a->lifetime;
    cfg.method = method;
    cfg.env.random = stunkit_random_os;
    cfg.delete_only = delete_only;
    cfg.use_nonce = a->use_nonce;
    memcpy(cfg.nonce, a->nonce, sizeof(cfg.nonce));
    return stunkit_portmap_new(&cfg, stunkit_now_ms());
}

/* Sends what the machine has to send and stops at its next event (*have_ev).
 * 1 when ICMP says nothing listens. */
static int machine_send(stunkit_portmap *m, int fd, uint64_t now, stunkit_portmap_output *ev, int *have_ev)
{
    int unreachable = 0;
    *have_ev = 0;
    stunkit_portmap_output o;
    for (int pr; (pr = stunkit_portmap_poll(m, now, &o)) != 0;) {
        if (pr < 0)
            continue; /* STUNKIT_ERR_NOBUF: events were lost; the rest follow */
        if (!o.send) {
            *ev = o;
            *have_ev = 1;
            break;
        }
        if (send(fd, o.data, o.len, 0) < 0 && errno == ECONNREFUSED)
            unreachable = 1;
    }
    return unreachable;
}

/* Reads the router's answers into the machine; 1 on ICMP unreachable. */
static int machine_read(stunkit_portmap *m, int fd, const stunkit_addr *gw)
{
    uint8_t buf[1200];
    ssize_t n;
    int unreachable = 0;
    while ((n = recv(fd, buf, sizeof(buf), 0)) >= 0 || errno == ECONNREFUSED) {
        if (n < 0) {
            unreachable = 1;
            continue;
        }
        stunkit_portmap_input(m, fd, gw, buf, (size_t)n, stunkit_now_ms());
    }
    return unreachable;
}

static void print_failed(const map_args *a, stunkit_portmap_method method, int result, const char *reason)
{
    char g[STUNKIT_ADDRSTRLEN];
    stunkit_addr_format_ip(&a->gw, g, sizeof(g));
    const char *name = result < 0 ? "" : method == STUNKIT_PORTMAP_UPNP ? stunkit_upnp_error_name(result)
                                                                        : stunkit_portmap_result_name(method, result);
    /* the UPnP reason names its error itself */
    const char *text_name = method == STUNKIT_PORTMAP_UPNP ? "" : name;
    if (a->json) {
        printf("{\"event\": \"failed\", \"method\": \"%s\", \"gateway\": \"%s\", ",
               stunkit_portmap_method_name(method), g);
        if (result < 0) {
            printf("\"result\": null, \"result_name\": null");
        } else {
            printf("\"result\": %d, \"result_name\": ", result);
            json_string(stdout, name, strlen(name));
        }
        printf(", \"reason\": ");
        json_string(stdout, reason, strlen(reason));
        printf("}\n");
        fflush(stdout);
    } else {
        fprintf(stderr, "stunkit map: %s: %s: %s%s%s%s\n", g, method_title(method), reason, *text_name ? " (" : "",
                text_name, *text_name ? ")" : "");
    }
}

static void print_deleted(const map_args *a, stunkit_portmap_method method)
{
    if (a->json)
        printf("{\"event\": \"deleted\", \"method\": \"%s\"}\n", stunkit_portmap_method_name(method));
    else
        printf("deleted     the router removed the mapping\n");
    fflush(stdout);
}

/* Nobody mapped: JSON, an object per method asked; text, one line. */
static void print_nobody(const map_args *a, const stunkit_mapping_event *ev)
{
    if (a->json) {
        if (ev->pcp_asked)
            print_failed(a, ev->pcp_method, ev->pcp_result, ev->pcp_reason);
        if (ev->upnp_asked)
            print_failed(a, STUNKIT_PORTMAP_UPNP, ev->upnp_result, ev->upnp_reason);
        return;
    }
    char g[STUNKIT_ADDRSTRLEN];
    stunkit_addr_format_ip(&a->gw, g, sizeof(g));
    const char *mname = ev->pcp_result < 0 ? "" : stunkit_portmap_result_name(ev->pcp_method, ev->pcp_result);
    if (ev->pcp_result < 0 && ev->upnp_result <= 0)
        fprintf(stderr, "stunkit map: the gateway %s does not map ports (waited %ld ms)", g, a->timeout);
    else
        fprintf(stderr, "stunkit map: the gateway %s does not map ports", g);
    if (ev->pcp_asked)
        fprintf(stderr, "; %s: %s%s%s%s", method_title(ev->pcp_method), ev->pcp_reason, *mname ? " (" : "", mname,
                *mname ? ")" : "");
    if (ev->upnp_asked) /* the UPnP reason names its error itself */
        fprintf(stderr, "; UPnP IGD: %s", ev->upnp_reason);
    fprintf(stderr, "\n");
}

/* Map, print, renew until a signal, delete. `auto` races PCP/NAT-PMP and
 * UPnP (stunkit/mapping.h, the race the library's peer runs too): the
 * first mapping wins and the other is wound down. */
static int do_map(const map_args *a)
{
    stunkit_mapping_config c;
    memset(&c, 0, sizeof(c));
    c.size = sizeof(c);
    c.gateway = a->gw;
    c.internal = a->internal;
    c.protocol = a->tcp ? 6 : 17;
    c.external_port = (uint16_t)a->ext;
    c.lifetime_s = (uint32_t)a->lifetime;
    c.method = a->method;
    c.timeout_ms = (uint32_t)a->timeout;
    c.description = "stunkit map";
    c.use_nonce = a->use_nonce;
    memcpy(c.nonce, a->nonce, sizeof(c.nonce));
    int err = 0;
    char why[200];
    stunkit_mapping *m = stunkit_mapping_start(&c, stunkit_now_ms(), &err, why, sizeof(why));
    if (!m) {
        fprintf(stderr, "stunkit map: %s\n", why[0] ? why : stunkit_strerror(err));
        return err == STUNKIT_ERR_INVAL ? 2 : 1;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    uint64_t delete_deadline = 0;
    int rc = -1, deleting = 0, truth = 0, mapped = 0;
    while (rc < 0) {
        uint64_t now = stunkit_now_ms();
        if (stop && mapped && !deleting) {
            deleting = 1;
            delete_deadline = now + (stunkit_mapping_method(m) == STUNKIT_PORTMAP_UPNP ? 8000 : 2000);
            stunkit_mapping_delete(m, now);
        } else if (stop && !mapped) {
            fprintf(stderr, "stunkit map: interrupted before the router answered\n");
            rc = 130;
            break;
        }
        stunkit_mapping_event ev;
        while (rc < 0 && stunkit_mapping_poll(m, now, &ev) == 1) {
            stunkit_portmap_output *o = &ev.e.o;
            switch (o->event) {
            case STUNKIT_PORTMAP_EVENT_MAPPED:
                mapped = 1;
                print_mapping(&ev.e, &a->gw, &a->internal, a->tcp, a->json, !a->once,
                              o->method == STUNKIT_PORTMAP_PCP && a->once ? ev.nonce : NULL);
                if (a->stun_text)
                    truth = truth_check(a->stun_text, &a->internal, &o->external, a->tcp, a->json);
                if (a->once && ev.e.permanent)
                    fprintf(stderr,
                            "stunkit map: the mapping is permanent: remove it with "
                            "stunkit map --delete --method upnp --%s --port %u --external-port %u\n",
                            a->tcp ? "tcp" : "udp", a->internal.port, o->external.port);
                if (a->once)
                    rc = truth;
                break;
            case STUNKIT_PORTMAP_EVENT_RENEWED: print_mapping(&ev.e, &a->gw, &a->internal, a->tcp, a->json, 1, NULL); break;
            case STUNKIT_PORTMAP_EVENT_RESET:
                if (o->method == STUNKIT_PORTMAP_UPNP)
                    break;
                if (a->json)
                    printf("{\"event\": \"reset\", \"reason\": \"the router lost its mappings (rebooted?)\"}\n");
                else
                    printf("reset       the router lost its mappings (rebooted?): mapping again\n");
                fflush(stdout);
                break;
            case STUNKIT_PORTMAP_EVENT_DELETED:
                print_deleted(a, o->method);
                rc = truth;
                break;
            case STUNKIT_PORTMAP_EVENT_FAILED:
                if (mapped)
                    print_failed(a, o->method, o->result, o->reason);
                else
                    print_nobody(a, &ev);
                rc = 1;
                break;
            }
        }
        if (rc >= 0)
            break;
        now = stunkit_now_ms();
        if (deleting && now >= delete_deadline) {
            fprintf(stderr, "stunkit map: the router did not confirm the deletion; the mapping lapses at expiry\n");
            rc = 1;
            break;
        }
        uint64_t next = stunkit_mapping_timeout(m);
        if (deleting && delete_deadline < next)
            next = delete_deadline;
        int wait = next <= now ? 0 : next - now > 1000 ? 1000 : (int)(next - now);
        struct pollfd p = {stunkit_mapping_fd(m), POLLIN, 0};
        (void)poll(&p, 1, wait); /* what came is read by the next poll (EINTR: the signal) */
    }
    /* a UPnP mapping that lost the race is deleted by its thread, and
     * --once's is left: free waits for the thread either way */
    stunkit_mapping_free(m);
    return rc;
}

/* --delete: remove a mapping made earlier. PCP needs the nonce (RFC 6887
 * 11.3: only the mapping's own nonce may change it); NAT-PMP and UPnP go by
 * port. In auto, every method that can is asked. */
static int do_delete(const map_args *a)
{
    int deleted = 0, asked = 0;
    char g[STUNKIT_ADDRSTRLEN];
    stunkit_addr_format_ip(&a->gw, g, sizeof(g));
    if (a->method == STUNKIT_PORTMAP_PCP && !a->use_nonce) {
        fprintf(stderr, "stunkit map: --delete --method pcp needs the mapping's --nonce (printed by --once)\n");
        return 2;
    }
    if (a->method == STUNKIT_PORTMAP_UPNP && !stunkit_upnp_available()) {
        fprintf(stderr, "stunkit map: --method upnp: UPnP IGD is not in this build (built without libminiupnpc)\n");
        return 2;
    }
    /* without a nonce, auto deletes with NAT-PMP (PCP would refuse) */
    stunkit_portmap_method mm = a->method == STUNKIT_PORTMAP_AUTO && !a->use_nonce ? STUNKIT_PORTMAP_NATPMP : a->method;
    if (a->method != STUNKIT_PORTMAP_UPNP && (mm != STUNKIT_PORTMAP_NATPMP || a->gw.family == STUNKIT_AF_INET)) {
        int fd = gateway_socket(&a->gw);
        stunkit_portmap *m = fd >= 0 ? machine_new(a, mm, 1) : NULL;
        if (m) {
            asked = 1;
            uint64_t deadline = stunkit_now_ms() + (uint64_t)a->timeout;
            int unreachable = 0;
            for (;;) {
                uint64_t now = stunkit_now_ms();
                stunkit_portmap_output o;
                int have;
                unreachable |= machine_send(m, fd, now, &o, &have);
                if (have && o.event == STUNKIT_PORTMAP_EVENT_DELETED) {
                    deleted = 1;
                    if (a->json)
                        printf("{\"event\": \"deleted\", \"method\": \"%s\", \"gateway\": \"%s\"}\n",
                               stunkit_portmap_method_name(o.method), g);
                    else
                        printf("deleted     %s: the router holds no mapping of %s port %u now\n",
                               method_title(o.method), a->tcp ? "tcp" : "udp", a->internal.port);
                    break;
                }
                if (have && o.event == STUNKIT_PORTMAP_EVENT_FAILED) {
                    print_failed(a, o.method, o.result, o.reason);
                    break;
                }
                if (have)
                    continue;
                if (now >= deadline || unreachable) {
                    print_failed(a, mm, -1, unreachable ? "nothing listens on its port 5351" : "no answer");
                    break;
                }
                uint64_t next = stunkit_portmap_timeout(m);
                if (deadline < next)
                    next = deadline;
                struct pollfd p = {fd, POLLIN, 0};
                if (poll(&p, 1, next <= now ? 0 : (int)(next - now)) > 0)
                    unreachable |= machine_read(m, fd, &a->gw);
            }
            stunkit_portmap_free(m);
        }
        if (fd >= 0)
            close(fd);
    }
    if ((a->method == STUNKIT_PORTMAP_UPNP || a->method == STUNKIT_PORTMAP_AUTO) && stunkit_upnp_available() &&
        a->gw.family == STUNKIT_AF_INET) {
        stunkit_upnp *igd;
        char why[160];
        int code = 0;
        asked = 1;
        uint16_t ext = (uint16_t)(a->ext ? a->ext : a->internal.port);
        int rv = stunkit_upnp_open(&igd, &a->gw, (int)a->timeout, why, sizeof(why));
        if (rv == 0) {
            rv = stunkit_upnp_delete(igd, a->tcp ? 6 : 17, ext, &code, why, sizeof(why));
            stunkit_upnp_close(igd);
        }
        if (rv == 0) {
            deleted = 1;
            if (a->json)
                printf("{\"event\": \"deleted\", \"method\": \"upnp\", \"gateway\": \"%s\"}\n", g);
            else
                printf("deleted     UPnP IGD: the mapping of external %s port %u\n", a->tcp ? "tcp" : "udp", ext);
        } else if (code == 714) { /* NoSuchEntryInArray */
            if (a->json)
                printf("{\"event\": \"absent\", \"method\": \"upnp\", \"gateway\": \"%s\"}\n", g);
            else
                printf("absent      UPnP IGD: no mapping of external %s port %u\n", a->tcp ? "tcp" : "udp", ext);
        } else {
            print_failed(a, STUNKIT_PORTMAP_UPNP, code ? code : -1, why);
        }
    }
    fflush(stdout);
    return asked && deleted ? 0 : 1;
}

/* --list: the router's mappings, by UPnP IGD (PCP and NAT-PMP have no way
 * to list). */
static int do_list(const map_args *a)
{
    if (!stunkit_upnp_available()) {
        fprintf(stderr, "stunkit map: --list needs UPnP IGD, which is not in this build (PCP and NAT-PMP cannot "
                        "list mappings)\n");
        return 1;
    }
    stunkit_upnp *igd;
    char why[160];
    int rv = stunkit_upnp_open(&igd, &a->gw, (int)a->timeout, why, sizeof(why));
    if (rv != 0) {
        fprintf(stderr, "stunkit map: --list: %s (PCP and NAT-PMP cannot list mappings)\n", why);
        return 1;
    }
    static stunkit_upnp_mapping list[1024];
    int n = stunkit_upnp_list(igd, list, sizeof(list) / sizeof(list[0]));
    const stunkit_upnp_info *info = stunkit_upnp_get_info(igd);
    char ext[STUNKIT_ADDRSTRLEN] = "?";
    if (info->external.family)
        stunkit_addr_format_ip(&info->external, ext, sizeof(ext));
    if (n < 0) {
        fprintf(stderr, "stunkit map: --list: the router refused to list its mappings\n");
        stunkit_upnp_close(igd);
        return 1;
    }
    if (!a->json)
        printf("%-5s %-22s %-22s %-10s %-7s %s\n", "PROTO", "EXTERNAL", "INTERNAL", "LEASE", "ENABLED", "DESCRIPTION");
    for (int i = 0; i < n; i++) {
        char in[STUNKIT_ADDRSTRLEN], ex[STUNKIT_ADDRSTRLEN + 8], lease[16];
        stunkit_addr_format(&list[i].internal, in, sizeof(in));
        snprintf(ex, sizeof(ex), "%s:%u", ext, list[i].external_port);
        if (list[i].permanent)
            snprintf(lease, sizeof(lease), "permanent");
        else
            snprintf(lease, sizeof(lease), "%u s", list[i].lifetime_s);
        if (a->json) {
            printf("{\"protocol\": \"%s\", \"external\": \"%s\", \"internal\": \"%s\", \"lifetime_s\": %u, "
                   "\"enabled\": %s, \"description\": ",
                   list[i].protocol == 6 ? "tcp" : "udp", ex, in, list[i].lifetime_s,
                   list[i].enabled ? "true" : "false");
            json_string(stdout, list[i].description, strlen(list[i].description));
            printf("}\n");
        } else {
            printf("%-5s %-22s %-22s %-10s %-7s %s\n", list[i].protocol == 6 ? "tcp" : "udp", ex, in, lease,
                   list[i].enabled ? "yes" : "no", list[i].description);
        }
    }
    if (!a->json && n == 0)
        printf("(no mappings)\n");
    stunkit_upnp_close(igd);
    return 0;
}

static int parse_nonce(const char *text, uint8_t out[12])
{
    if (strlen(text) != 24)
        return -1;
    for (int i = 0; i < 12; i++) {
        unsigned v;
        if (!isxdigit((unsigned char)text[2 * i]) || !isxdigit((unsigned char)text[2 * i + 1]) ||
            sscanf(text + 2 * i, "%2x", &v) != 1)
            return -1;
        out[i] = (uint8_t)v;
    }
    return 0;
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
                                         {"delete", no_argument, NULL, 'D'},
                                         {"list", no_argument, NULL, 'L'},
                                         {"nonce", required_argument, NULL, 'N'},
                                         {"json", no_argument, NULL, 'j'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    map_args a;
    memset(&a, 0, sizeof(a));
    a.method = STUNKIT_PORTMAP_AUTO;
    a.lifetime = 7200;
    a.timeout = 2000;
    int tcp = -1, c, del = 0, list = 0, lifetime_given = 0;
    long port = 0;
    const char *gateway_text = NULL;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":t:h", opts, NULL)) != -1) {
        const char *opt = argv[optind - 1];
        switch (c) {
        case 'm':
            if (!strcmp(optarg, "auto"))
                a.method = STUNKIT_PORTMAP_AUTO;
            else if (!strcmp(optarg, "pcp"))
                a.method = STUNKIT_PORTMAP_PCP;
            else if (!strcmp(optarg, "natpmp") || !strcmp(optarg, "nat-pmp"))
                a.method = STUNKIT_PORTMAP_NATPMP;
            else if (!strcmp(optarg, "upnp"))
                a.method = STUNKIT_PORTMAP_UPNP;
            else {
                fprintf(stderr, "stunkit map: --method '%s': expected auto, pcp, natpmp or upnp\n", optarg);
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
            if (parse_num(opt, optarg, 1, 65535, &a.ext) != 0)
                return 2;
            break;
        case 'l':
            if (parse_num(opt, optarg, 1, 86400 * 7, &a.lifetime) != 0)
                return 2;
            lifetime_given = 1;
            break;
        case 't':
        case 'T':
            if (parse_num("--timeout", optarg, 100, 600000, &a.timeout) != 0)
                return 2;
            break;
        case 'N':
            if (parse_nonce(optarg, a.nonce) != 0) {
                fprintf(stderr, "stunkit map: --nonce '%s': expected 24 hex digits (12 bytes)\n", optarg);
                return 2;
            }
            a.use_nonce = 1;
            break;
        case 'g': gateway_text = optarg; break;
        case 's': a.stun_text = optarg; break;
        case 'o': a.once = 1; break;
        case 'D': del = 1; break;
        case 'L': list = 1; break;
        case 'j': a.json = 1; break;
        case 'h': usage(stdout); return 0;
        case ':': fprintf(stderr, "stunkit map: option %s needs a value\n", opt); return 2;
        default: fprintf(stderr, "stunkit map: unknown option '%s' (try --help)\n", opt); return 2;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "stunkit map: unexpected argument '%s' (try --help)\n", argv[optind]);
        return 2;
    }
    if (del && list) {
        fprintf(stderr, "stunkit map: --delete and --list: choose one\n");
        return 2;
    }
    if ((del || list) && (a.once || a.stun_text || lifetime_given)) {
        fprintf(stderr, "stunkit map: --%s does not take --once, --stun or --lifetime\n", del ? "delete" : "list");
        return 2;
    }
    if (list && (port || a.ext || tcp >= 0 || a.use_nonce)) {
        fprintf(stderr, "stunkit map: --list lists everything: it takes no port, protocol or nonce\n");
        return 2;
    }
    if (a.use_nonce && !del) {
        fprintf(stderr, "stunkit map: --nonce is for --delete (a new mapping gets a fresh nonce)\n");
        return 2;
    }
    if (!port && !list) {
        fprintf(stderr, "stunkit map: --port is required (the local port to make reachable)\n");
        return 2;
    }
    a.tcp = tcp == 1;
    if (gateway_text) {
        if (stunkit_addr_parse(gateway_text, STUNKIT_PORTMAP_PORT, &a.gw) != 0) {
            fprintf(stderr, "stunkit map: --gateway '%s' is not an IP address\n", gateway_text);
            return 2;
        }
    } else if (stunkit_default_gateway(STUNKIT_AF_INET, &a.gw) != 0 && stunkit_default_gateway(STUNKIT_AF_INET6, &a.gw) != 0) {
        fprintf(stderr, "stunkit map: no default gateway (give one with --gateway)\n");
        return 1;
    }
    a.gw.port = STUNKIT_PORTMAP_PORT;
    if (a.method == STUNKIT_PORTMAP_NATPMP && a.gw.family != STUNKIT_AF_INET) {
        fprintf(stderr, "stunkit map: NAT-PMP works over IPv4 only (use --method pcp for IPv6)\n");
        return 2;
    }
    /* this host's address toward the router */
    int fd = gateway_socket(&a.gw);
    struct sockaddr_storage mine;
    socklen_t ml = sizeof(mine);
    if (fd < 0 || getsockname(fd, (struct sockaddr *)&mine, &ml) != 0 ||
        stunkit_addr_from_sockaddr(&a.internal, (struct sockaddr *)&mine) != 0) {
        fprintf(stderr, "stunkit map: cannot reach the gateway: %s\n", strerror(errno));
        if (fd >= 0)
            close(fd);
        return 1;
    }
    close(fd);
    a.internal.port = (uint16_t)port;
    if (list)
        return do_list(&a);
    if (del)
        return do_delete(&a);
    return do_map(&a);
}
