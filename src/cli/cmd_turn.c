/*
 * cmd_turn.c - `stunkit turn SERVER --username U --password P`: is my TURN
 * server working? Two allocations over two connections (the second plays
 * the peer), a permission and a channel each way, a round trip of data
 * through both relays, a refresh, and both deleted; each step printed with
 * what failed in plain words. Over UDP, TCP, TLS or DTLS to the server.
 * The machine is stunkit/turn.h, the connections stunkit/link.h; this file
 * owns the clock and the order of the steps.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "stunkit/stunkit.h"

static void usage(FILE *f)
{
    fprintf(f, "Usage: stunkit turn [--json] [-4|-6] [--tcp|--tls|--dtls] [--insecure|--ca-file FILE]\n"
               "                    [-t|--timeout MS] --username U --password P SERVER\n"
               "\n"
               "Checks a TURN server end to end: allocates two relayed addresses, makes each the\n"
               "other's peer (permission, then channel), sends data through both relays and\n"
               "back, refreshes, and deletes both allocations.\n"
               "\n"
               "SERVER is host[:port], [v6]:port, or a turn:/turns: URI (RFC 7065; turns: means\n"
               "TLS, turns:...?transport=udp DTLS, turn:...?transport=tcp TCP).\n"
               "\n"
               "  --username U   long-term username (or REST-API \"EXPIRY:NAME\")\n"
               "  --password P   its password (or STUNKIT_PASSWORD in the environment)\n"
               "  --tcp          to the server over TCP (port 3478)\n"
               "  --tls          over TLS (port 5349); the certificate must name SERVER\n"
               "  --dtls         over DTLS (UDP, port 5349)\n"
               "  --ca-file FILE with --tls/--dtls: trust the CAs in FILE (PEM), not the system's\n"
               "  --insecure     with --tls/--dtls: do not check the certificate\n"
               "  -4, -6         ask for IPv4 (the default) or IPv6 relayed addresses\n"
               "  -t, --timeout MS\n"
               "                 give up after MS milliseconds in all (default 10000)\n"
               "  --json         one JSON object\n"
               "\n"
               "Exit status: 0 the server relayed both ways, 1 a step failed, 2 bad usage.\n");
}

typedef struct side {
    stunkit_link *link;
    stunkit_turn *m;
    int allocated, permitted, bound, closed, refreshed, failed;
    int code;
    char reason[160];
    const char *failed_step;
    stunkit_addr relayed, mapped;
    uint32_t lifetime;
    int got;
    char data[64];
    /* the link's settings, for a new one to an alternate server (300) */
    stunkit_link_config lc;
    char tls_name[256];
    stunkit_addr redirected; /* family 0: not redirected */
} side;

static const char *step_of(const side *s)
{
    if (!s->allocated)
        return "allocate";
    if (!s->permitted)
        return "create permission";
    if (!s->bound)
        return "channel bind";
    if (!s->refreshed)
        return "refresh";
    return "delete";
}

static void side_failed(side *s, int code, const char *prefix, const char *text)
{
    if (s->failed)
        return;
    s->failed = 1;
    s->failed_step = step_of(s);
    s->code = code;
    snprintf(s->reason, sizeof(s->reason), "%s%s", prefix, text);
}

/* Sends what the machine has and handles its events. */
static void run_machine(side *s)
{
    stunkit_turn_output out;
    for (int pr; (pr = stunkit_turn_poll(s->m, stunkit_now_ms(), &out)) != 0;) {
        if (pr < 0)
            continue; /* STUNKIT_ERR_NOBUF: events were lost; the rest follow */
        if (out.send) {
            int rv = stunkit_link_send(s->link, out.data, out.len, 2000);
            if (rv != 0)
                side_failed(s, 0, "cannot send: ", stunkit_strerror(rv));
            continue;
        }
        switch (out.event) {
        case STUNKIT_TURN_EVENT_ALLOCATED:
            s->allocated = 1;
            s->relayed = out.relayed;
            s->mapped = out.mapped;
            s->lifetime = out.lifetime_s;
            break;
        case STUNKIT_TURN_EVENT_PERMITTED: s->permitted = 1; break;
        case STUNKIT_TURN_EVENT_BOUND: s->bound = 1; break;
        case STUNKIT_TURN_EVENT_REFRESHED:
            s->refreshed = 1;
            s->lifetime = out.lifetime_s;
            break;
        case STUNKIT_TURN_EVENT_CLOSED: s->closed = 1; break;
        case STUNKIT_TURN_EVENT_FAILED: side_failed(s, out.error_code, "", out.reason); break;
        case STUNKIT_TURN_EVENT_REDIRECTED: {
            /* 300 Try Alternate: the same request, the same credentials, the
             * same transport, to the alternate (its certificate checked
             * against ALTERNATE-DOMAIN when given, else the name we used) */
            char why[200] = "";
            stunkit_link *next = NULL;
            stunkit_link_config lc = s->lc;
            if (out.reason[0])
                snprintf(s->tls_name, sizeof(s->tls_name), "%s", out.reason);
            lc.tls_name = s->tls_name;
            lc.error_text = why;
            lc.error_text_cap = sizeof(why);
            lc.timeout_ms = 5000;
            int rv = stunkit_link_open(&next, &out.peer, &lc);
            if (rv != 0) {
                side_failed(s, 300, "redirected (300) to a server that cannot be reached: ", why);
                break;
            }
            stunkit_link_close(s->link);
            s->link = next;
            s->redirected = out.peer;
            break;
        }
        }
    }
}

/* Everything the link has now: answers to the machine, relayed data kept. */
static void receive(side *s, uint64_t now)
{
    uint8_t buf[2048];
    for (;;) {
        int n = stunkit_link_recv(s->link, buf, sizeof(buf), 0);
        if (n == 0)
            return;
        if (n < 0) {
            if (n == STUNKIT_ERR_CLOSED)
                stunkit_turn_disconnected(s->m); /* FAILED (unless deleting) and CLOSED follow */
            else
                side_failed(s, 0, "the connection broke: ", stunkit_strerror(n));
            return;
        }
        stunkit_app_data d;
        if (stunkit_turn_input(s->m, stunkit_link_fd(s->link), NULL, buf, (size_t)n, now, &d) == STUNKIT_INPUT_APP_DATA && d.len < sizeof(s->data)) {
            memcpy(s->data, d.data, d.len);
            s->data[d.len] = '\0';
            s->got++;
        }
    }
}

/* Sends application data to the other side's relayed address. */
static void relay(side *from, const side *to, const char *text)
{
    uint8_t dg[256];
    int n = stunkit_turn_send(from->m, &to->relayed, (const uint8_t *)text, strlen(text), dg, sizeof(dg));
    int rv = n < 0 ? n : stunkit_link_send(from->link, dg, (size_t)n, 2000);
    if (rv < 0)
        side_failed(from, 0, "cannot send data: ", stunkit_strerror(rv));
}

/* Polls both links until one is readable or the machines' next deadline
 * (at most 50 ms), then reads both. */
static void wait_and_read(side *s)
{
    struct pollfd p[2] = {{stunkit_link_fd(s[0].link), POLLIN, 0}, {stunkit_link_fd(s[1].link), POLLIN, 0}};
    uint64_t next = stunkit_turn_timeout(s[0].m), n2 = stunkit_turn_timeout(s[1].m), now = stunkit_now_ms();
    if (n2 < next)
        next = n2;
    poll(p, 2, next <= now ? 0 : next - now > 50 ? 50 : (int)(next - now));
    now = stunkit_now_ms();
    for (int i = 0; i < 2; i++)
        receive(&s[i], now);
}

static volatile sig_atomic_t interrupted; /* SIGINT/SIGTERM: stop, delete what was allocated, exit 130 */

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

static const char *plain(int code)
{
    switch (code) {
    case 401: return "the credentials were refused";
    case 403: return "the server refuses this peer (its peer policy)";
    case 437: return "allocation mismatch";
    case 440: return "the address family is not offered";
    case 441: return "wrong credentials for this allocation";
    case 442: return "UDP relaying is not offered";
    case 486: return "the user's allocation quota is reached";
    case 508: return "the server has no capacity (ports or allocations)";
    default: return "refused";
    }
}


static const char *transport_name(stunkit_transport tr)
{
    return tr == STUNKIT_UDP ? "udp" : tr == STUNKIT_TCP ? "tcp" : tr == STUNKIT_TLS ? "tls" : "dtls";
}

int cmd_turn(int argc, char **argv)
{
    static const struct option opts[] = {{"username", required_argument, NULL, 'u'},
                                         {"password", required_argument, NULL, 'p'},
                                         {"timeout", required_argument, NULL, 'T'},
                                         {"tcp", no_argument, NULL, 'C'},
                                         {"tls", no_argument, NULL, 'S'},
                                         {"dtls", no_argument, NULL, 'D'},
                                         {"insecure", no_argument, NULL, 'k'},
                                         {"ca-file", required_argument, NULL, 'A'},
                                         {"json", no_argument, NULL, 'j'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *user = NULL, *pass = getenv("STUNKIT_PASSWORD"), *ca_file = NULL, *tr_flag = NULL;
    int json = 0, family = STUNKIT_AF_INET, insecure = 0, c;
    stunkit_transport tr = STUNKIT_UDP;
    long timeout = 10000;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":46t:h", opts, NULL)) != -1) {
        const char *opt = argv[optind - 1];
        switch (c) {
        case 'u': user = optarg; break;
        case 'p': pass = optarg; break;
        case '4': family = STUNKIT_AF_INET; break;
        case '6': family = STUNKIT_AF_INET6; break;
        case 'j': json = 1; break;
        case 'k': insecure = 1; break;
        case 'A': ca_file = optarg; break;
        case 'C':
        case 'S':
        case 'D': {
            stunkit_transport want = c == 'C' ? STUNKIT_TCP : c == 'S' ? STUNKIT_TLS : STUNKIT_DTLS;
            if (tr_flag && tr != want) {
                fprintf(stderr, "stunkit turn: %s and %s: choose one transport\n", tr_flag, opt);
                return 2;
            }
            tr = want;
            tr_flag = opt;
            break;
        }
        case 't':
        case 'T': {
            char *end;
            timeout = strtol(optarg, &end, 10);
            if (*end || end == optarg || timeout < 100 || timeout > 600000) {
                fprintf(stderr, "stunkit turn: --timeout '%s': expected milliseconds from 100 to 600000\n", optarg);
                return 2;
            }
            break;
        }
        case 'h': usage(stdout); return 0;
        case ':': fprintf(stderr, "stunkit turn: option %s needs a value\n", opt); return 2;
        default: fprintf(stderr, "stunkit turn: unknown option '%s' (try --help)\n", opt); return 2;
        }
    }
    if (!user || !pass) {
        fprintf(stderr, "stunkit turn: --username and --password (or STUNKIT_PASSWORD) are required\n");
        return 2;
    }
    if (optind != argc - 1) {
        fprintf(stderr, "stunkit turn: name one SERVER (try --help)\n");
        return 2;
    }
    stunkit_server srv;
    if (stunkit_server_parse(argv[optind], &srv) != 0) {
        fprintf(stderr, "stunkit turn: '%s' is not a server (host, host:port, [v6]:port, or turn:/turns: "
                        "host[:port][?transport=udp|tcp])\n", argv[optind]);
        return 2;
    }
    if (srv.secure || srv.transport) {
        /* RFC 7065 3: turns: is TLS over TCP, or DTLS with transport=udp */
        stunkit_transport uri = srv.secure ? (srv.transport == 1 ? STUNKIT_DTLS : STUNKIT_TLS)
                                           : (srv.transport == 2 ? STUNKIT_TCP : STUNKIT_UDP);
        if (tr_flag && tr != uri) {
            fprintf(stderr, "stunkit turn: %s contradicts the URI's transport (%s)\n", tr_flag, transport_name(uri));
            return 2;
        }
        tr = uri;
    }
    int secure = tr == STUNKIT_TLS || tr == STUNKIT_DTLS;
    if ((insecure || ca_file) && !secure) {
        fprintf(stderr, "stunkit turn: %s needs --tls or --dtls\n", insecure ? "--insecure" : "--ca-file");
        return 2;
    }
    if (insecure && ca_file) {
        fprintf(stderr, "stunkit turn: --insecure and --ca-file: choose one\n");
        return 2;
    }
    if (ca_file && access(ca_file, R_OK) != 0) {
        fprintf(stderr, "stunkit turn: --ca-file %s: %s\n", ca_file, strerror(errno));
        return 2;
    }
    stunkit_addr server;
    if (stunkit_server_resolve(&srv, tr, 0, &server, 1) < 1) {
        fprintf(stderr, "stunkit turn: cannot resolve %s\n", srv.host);
        return 1;
    }
    uint64_t t0 = stunkit_now_ms(), deadline = t0 + (uint64_t)timeout, rtt_start = 0, rtt = 0;
    side s[2];
    memset(s, 0, sizeof(s));
    for (int i = 0; i < 2; i++) {
        char why[200] = "";
        stunkit_link_config lc = {.size = sizeof(lc), .transport = tr, .tls_name = srv.host, .tls_insecure = insecure, .alpn = "stun.turn",
                                  .ca_file = ca_file, .timeout_ms = (uint32_t)(deadline - stunkit_now_ms()),
                                  .error_text = why, .error_text_cap = sizeof(why)};
        s[i].lc = lc;
        snprintf(s[i].tls_name, sizeof(s[i].tls_name), "%s", srv.host);
        int rv = stunkit_link_open(&s[i].link, &server, &lc);
        if (rv != 0) {
            char at[STUNKIT_ADDRSTRLEN];
            stunkit_addr_format(&server, at, sizeof(at));
            if (json) {
                printf("{\"server\": ");
                json_string(stdout, argv[optind], strlen(argv[optind]));
                printf(", \"transport\": \"%s\", \"ok\": false, \"failed_step\": \"connect\", \"error\": ",
                       transport_name(tr));
                json_string(stdout, why, strlen(why));
                printf("}\n");
            } else {
                fprintf(stderr, "stunkit turn: cannot reach %s over %s: %s\n", at, transport_name(tr), why);
            }
            for (int k = 0; k < i; k++)
                stunkit_link_close(s[k].link);
            return 1;
        }
        stunkit_turn_config tc = STUNKIT_CONFIG_INIT(tc);
        tc.env.random = stunkit_random_os;
        tc.server = server;
        tc.transport = tr;
        tc.username = user;
        tc.password = pass;
        tc.family = family;
        s[i].m = stunkit_turn_new(&tc, stunkit_now_ms());
        if (!s[i].m) {
            fprintf(stderr, "stunkit turn: cannot start: a username or password longer than 128 bytes?\n");
            return 1;
        }
    }
    if (secure && insecure && !json)
        fprintf(stderr, "stunkit turn: warning: the server's certificate is not checked (--insecure)\n");
    int phase = 0; /* 0 allocate, 1 permission, 2 data by indication, 3 channel, 4 data by channel, 5 refresh,
                      6 delete, 7 done */
    int ok_indication = 0, ok_channel = 0;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    while (phase < 7 && stunkit_now_ms() < deadline && !s[0].failed && !s[1].failed && !interrupted) {
        uint64_t now = stunkit_now_ms();
        for (int i = 0; i < 2; i++)
            run_machine(&s[i]);
        if (phase == 0 && s[0].allocated && s[1].allocated) {
            stunkit_turn_permit(s[0].m, &s[1].relayed, now);
            stunkit_turn_permit(s[1].m, &s[0].relayed, now);
            phase = 1;
        } else if (phase == 1 && s[0].permitted && s[1].permitted) {
            rtt_start = now;
            relay(&s[0], &s[1], "stunkit ping");
            phase = 2;
        } else if (phase == 2 && s[1].got) {
            ok_indication = !strcmp(s[1].data, "stunkit ping");
            stunkit_turn_bind(s[0].m, &s[1].relayed, now);
            stunkit_turn_bind(s[1].m, &s[0].relayed, now);
            phase = 3;
        } else if (phase == 3 && s[0].bound && s[1].bound) {
            relay(&s[1], &s[0], "stunkit pong");
            phase = 4;
        } else if (phase == 4 && s[0].got) {
            ok_channel = !strcmp(s[0].data, "stunkit pong");
            rtt = now - rtt_start;
            stunkit_turn_refresh(s[0].m, now);
            phase = 5;
        } else if (phase == 5 && s[0].refreshed) {
            stunkit_turn_close(s[0].m, now);
            stunkit_turn_close(s[1].m, now);
            phase = 6;
        } else if (phase == 6 && s[0].closed && s[1].closed) {
            phase = 7;
        }
        wait_and_read(s);
        /* ICMP port unreachable before any answer: nothing listens there */
        if (!s[0].allocated && (stunkit_link_unreachable(s[0].link) || stunkit_link_unreachable(s[1].link)))
            side_failed(&s[0], 0, "nothing listens there (ICMP port unreachable)", "");
    }
    int okay = phase == 7 && ok_indication && ok_channel && !s[0].failed && !s[1].failed;
    /* a failure leaves nothing behind: delete what was allocated */
    if (!okay) {
        uint64_t end = stunkit_now_ms() + 1000;
        for (int i = 0; i < 2; i++)
            if (s[i].allocated && !s[i].closed)
                stunkit_turn_close(s[i].m, stunkit_now_ms());
        while (stunkit_now_ms() < end && ((s[0].allocated && !s[0].closed) || (s[1].allocated && !s[1].closed))) {
            for (int i = 0; i < 2; i++)
                run_machine(&s[i]);
            wait_and_read(s);
        }
    }
    char relayed[STUNKIT_ADDRSTRLEN] = "", mapped[STUNKIT_ADDRSTRLEN] = "";
    stunkit_addr_format(&s[0].relayed, relayed, sizeof(relayed));
    stunkit_addr_format(&s[0].mapped, mapped, sizeof(mapped));
    const side *bad = s[0].failed ? &s[0] : s[1].failed ? &s[1] : NULL;
    const char *where = bad ? bad->failed_step : phase < 1 ? "allocate" : phase < 2 ? "create permission"
                                                 : phase < 3 ? "data through the relay (indications)"
                                                 : phase < 4 ? "channel bind"
                                                 : phase < 5 ? "data through the relay (channel)"
                                                 : phase < 6 ? "refresh"
                                                             : "delete";
    if (json) {
        printf("{\"server\": ");
        json_string(stdout, argv[optind], strlen(argv[optind]));
        printf(", \"transport\": \"%s\", \"ok\": %s, \"relayed\": ", transport_name(tr), okay ? "true" : "false");
        if (s[0].allocated)
            json_string(stdout, relayed, strlen(relayed));
        else
            printf("null");
        printf(", \"mapped\": ");
        if (s[0].allocated)
            json_string(stdout, mapped, strlen(mapped));
        else
            printf("null");
        printf(", \"lifetime_s\": %u, \"indications\": %s, \"channels\": %s, \"refreshed\": %s, \"rtt_ms\": ",
               s[0].lifetime, ok_indication ? "true" : "false", ok_channel ? "true" : "false",
               s[0].refreshed ? "true" : "false");
        if (ok_channel)
            printf("%llu", (unsigned long long)rtt);
        else
            printf("null");
        printf(", \"redirected_to\": ");
        if (s[0].redirected.family) {
            char r[STUNKIT_ADDRSTRLEN];
            stunkit_addr_format(&s[0].redirected, r, sizeof(r));
            json_string(stdout, r, strlen(r));
        } else {
            printf("null");
        }
        printf(", \"failed_step\": ");
        if (okay) {
            printf("null, \"error_code\": null}\n");
        } else {
            json_string(stdout, where, strlen(where));
            printf(", \"error_code\": %d, \"error\": ", bad ? bad->code : 0);
            const char *e = bad ? bad->reason : "timed out";
            json_string(stdout, e, strlen(e));
            printf("}\n");
        }
    } else if (okay) {
        printf("transport        %s\n", transport_name(tr));
        if (s[0].redirected.family) {
            char r[STUNKIT_ADDRSTRLEN];
            stunkit_addr_format(&s[0].redirected, r, sizeof(r));
            printf("redirected       to %s (300 Try Alternate)\n", r);
        }
        printf("relayed address  %s (lifetime %u s, refreshed)\n", relayed, s[0].lifetime);
        printf("mapped address   %s\n", mapped);
        printf("relay            data went through two allocations and back: Send/Data indications and "
               "ChannelData\n");
        printf("round trip       %llu ms (channel, relay to relay)\n", (unsigned long long)rtt);
        printf("cleanup          both allocations deleted\n");
    } else if (interrupted) {
        fprintf(stderr, "stunkit turn: interrupted at the step '%s'%s\n", where,
                s[0].allocated || s[1].allocated ? "; the allocations made were deleted" : "");
    } else if (bad) {
        if (bad->code == 403) {
            /* the peer is the other allocation's relayed address */
            char peer[STUNKIT_ADDRSTRLEN];
            stunkit_addr_format(bad == &s[0] ? &s[1].relayed : &s[0].relayed, peer, sizeof(peer));
            fprintf(stderr,
                    "stunkit turn: %s failed: the server refuses the peer %s (403%s%s%s): its peer policy refuses "
                    "private, loopback and reserved ranges unless stunkitd --allowed-peer opens them (coturn: "
                    "allowed-peer-ip); a relay on such an address needs it for its own relayed range\n",
                    where, peer, bad->reason[0] ? ": " : "", bad->reason, "");
        } else if (bad->code)
            fprintf(stderr, "stunkit turn: %s failed: %s%s%s%s\n", where, plain(bad->code), bad->reason[0] ? " (" : "",
                    bad->reason, bad->reason[0] ? ")" : "");
        else
            fprintf(stderr, "stunkit turn: %s failed: %s%s\n", where, bad->reason,
                    !strcmp(bad->reason, "no answer from the server") && tr == STUNKIT_UDP
                        ? " (is it a TURN server, and is UDP open? try --tcp)"
                        : "");
    } else {
        fprintf(stderr, "stunkit turn: %s did not finish within %ld ms%s\n", where, timeout,
                phase == 2 || phase == 4 ? ": the relay did not deliver the data" : "");
    }
    for (int i = 0; i < 2; i++) {
        stunkit_turn_free(s[i].m);
        stunkit_link_close(s[i].link);
    }
    return okay ? 0 : interrupted ? 130 : 1;
}
