/*
 * cmd_turn.c - `stunkit turn SERVER --username U --password P`: is my TURN
 * server working? Two allocations from two UDP sockets (the second plays the
 * peer), a permission and a channel each way, a round trip of data through
 * both relays, a refresh, and both deleted; each step printed with what
 * failed in plain words. The machine is stunkit/turn.h; this file owns the
 * sockets and the clock.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli.h"
#include "stunkit/stunkit.h"

static void usage(FILE *f)
{
    fprintf(f, "Usage: stunkit turn [--json] [-6] [--timeout MS] --username U --password P SERVER\n"
               "\n"
               "Checks a TURN server end to end over UDP: allocates two relayed addresses, makes\n"
               "each the other's peer (permission, then channel), sends data through both relays\n"
               "and back, refreshes, and deletes both allocations.\n"
               "\n"
               "  --username U   long-term username (or REST-API \"EXPIRY:NAME\")\n"
               "  --password P   its password (or STUNKIT_PASSWORD in the environment)\n"
               "  -6             ask for IPv6 relayed addresses\n"
               "  --timeout MS   give up after MS milliseconds in all (default 10000)\n"
               "  --json         one JSON object\n"
               "\n"
               "Exit status: 0 the server relayed both ways, 1 a step failed, 2 bad usage.\n");
}

typedef struct side {
    int fd;
    stunkit_turn *m;
    int allocated, permitted, bound, closed, refreshed, failed;
    int code;
    char reason[128];
    const char *failed_step;
    stunkit_addr relayed, mapped;
    uint32_t lifetime;
    int got;
    char data[64];
} side;

static const char *step_of(const side *s)
{
    if (!s->allocated)
        return "allocate";
    if (!s->permitted)
        return "create permission";
    if (!s->bound)
        return "channel bind";
    return "refresh or delete";
}

/* Sends what the machine has and handles its events. */
static void run_machine(side *s, const stunkit_addr *server)
{
    stunkit_turn_output out;
    struct sockaddr_storage ss;
    int sl = stunkit_addr_to_sockaddr(server, &ss);
    while (stunkit_turn_poll(s->m, stunkit_now_ms(), &out) == 1) {
        if (out.send) {
            if (sendto(s->fd, out.data, out.len, 0, (struct sockaddr *)&ss, (socklen_t)sl) < 0 && !s->failed) {
                s->failed = 1;
                s->failed_step = step_of(s);
                snprintf(s->reason, sizeof(s->reason), "cannot send: %s", strerror(errno));
            }
            continue;
        }
        switch (out.event) {
        case STUNKIT_TURN_ALLOCATED:
            s->allocated = 1;
            s->relayed = out.relayed;
            s->mapped = out.mapped;
            s->lifetime = out.lifetime_s;
            break;
        case STUNKIT_TURN_PERMITTED: s->permitted = 1; break;
        case STUNKIT_TURN_BOUND: s->bound = 1; break;
        case STUNKIT_TURN_REFRESHED: s->refreshed = 1; break;
        case STUNKIT_TURN_CLOSED: s->closed = 1; break;
        case STUNKIT_TURN_FAILED:
            if (!s->failed) {
                s->failed = 1;
                s->failed_step = step_of(s);
                s->code = out.error_code;
                snprintf(s->reason, sizeof(s->reason), "%s", out.reason[0] ? out.reason : "");
            }
            break;
        }
    }
}

static void receive(side *s, uint64_t now)
{
    uint8_t buf[2048];
    for (;;) {
        ssize_t n = recv(s->fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n < 0)
            return;
        stunkit_turn_data d;
        if (stunkit_turn_input(s->m, buf, (size_t)n, now, &d) == 2 && d.len < sizeof(s->data)) {
            memcpy(s->data, d.data, d.len);
            s->data[d.len] = '\0';
            s->got++;
        }
    }
}

static const char *plain(int code)
{
    switch (code) {
    case 0: return "no answer (is it a TURN server, and is UDP open?)";
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

static void rnd(void *ctx, uint8_t *b, size_t n)
{
    stunkit_random_os(ctx, b, n);
}

int cmd_turn(int argc, char **argv)
{
    static const struct option opts[] = {{"username", required_argument, NULL, 'u'},
                                         {"password", required_argument, NULL, 'p'},
                                         {"timeout", required_argument, NULL, 'T'},
                                         {"json", no_argument, NULL, 'j'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *user = NULL, *pass = getenv("STUNKIT_PASSWORD");
    int json = 0, family = STUNKIT_AF_INET, c;
    long timeout = 10000;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":6h", opts, NULL)) != -1) {
        const char *opt = argv[optind - 1];
        switch (c) {
        case 'u': user = optarg; break;
        case 'p': pass = optarg; break;
        case '6': family = STUNKIT_AF_INET6; break;
        case 'j': json = 1; break;
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
    stunkit_addr server;
    if (stunkit_server_parse(argv[optind], &srv) != 0) {
        fprintf(stderr, "stunkit turn: '%s' is not a server (host, host:port, [v6]:port or turn:host[:port])\n",
                argv[optind]);
        return 2;
    }
    if (stunkit_server_resolve(&srv, STUNKIT_UDP, 0, &server, 1) < 1) {
        fprintf(stderr, "stunkit turn: cannot resolve %s\n", srv.host);
        return 1;
    }
    side s[2];
    memset(s, 0, sizeof(s));
    for (int i = 0; i < 2; i++) {
        s[i].fd = socket(server.family == STUNKIT_AF_INET6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        stunkit_turn_config tc;
        memset(&tc, 0, sizeof(tc));
        tc.server = server;
        tc.username = user;
        tc.password = pass;
        tc.family = family;
        tc.random = rnd;
        s[i].m = stunkit_turn_new(&tc, stunkit_now_ms());
        if (s[i].fd < 0 || !s[i].m) {
            fprintf(stderr, "stunkit turn: cannot start: %s\n", s[i].fd < 0 ? strerror(errno) : "bad credentials");
            return 1;
        }
    }
    uint64_t t0 = stunkit_now_ms(), deadline = t0 + (uint64_t)timeout, rtt_start = 0, rtt = 0;
    int phase = 0; /* 0 allocate, 1 permission, 2 data by indication, 3 channel, 4 data by channel, 5 refresh,
                      6 close, 7 done */
    int ok_indication = 0, ok_channel = 0;
    while (phase < 7 && stunkit_now_ms() < deadline && !s[0].failed && !s[1].failed) {
        uint64_t now = stunkit_now_ms();
        for (int i = 0; i < 2; i++)
            run_machine(&s[i], &server);
        if (phase == 0 && s[0].allocated && s[1].allocated) {
            stunkit_turn_permit(s[0].m, &s[1].relayed, now);
            stunkit_turn_permit(s[1].m, &s[0].relayed, now);
            phase = 1;
        } else if (phase == 1 && s[0].permitted && s[1].permitted) {
            uint8_t dg[256];
            int n = stunkit_turn_send(s[0].m, &s[1].relayed, (const uint8_t *)"stunkit ping", 12, dg, sizeof(dg));
            struct sockaddr_storage ss;
            int sl = stunkit_addr_to_sockaddr(&server, &ss);
            rtt_start = now;
            if (n > 0)
                sendto(s[0].fd, dg, (size_t)n, 0, (struct sockaddr *)&ss, (socklen_t)sl);
            phase = 2;
        } else if (phase == 2 && s[1].got) {
            ok_indication = !strcmp(s[1].data, "stunkit ping");
            stunkit_turn_bind(s[0].m, &s[1].relayed, now);
            stunkit_turn_bind(s[1].m, &s[0].relayed, now);
            phase = 3;
        } else if (phase == 3 && s[0].bound && s[1].bound) {
            uint8_t dg[256];
            int n = stunkit_turn_send(s[1].m, &s[0].relayed, (const uint8_t *)"stunkit pong", 12, dg, sizeof(dg));
            struct sockaddr_storage ss;
            int sl = stunkit_addr_to_sockaddr(&server, &ss);
            if (n > 0)
                sendto(s[1].fd, dg, (size_t)n, 0, (struct sockaddr *)&ss, (socklen_t)sl);
            phase = 4;
        } else if (phase == 4 && s[0].got) {
            ok_channel = !strcmp(s[0].data, "stunkit pong");
            rtt = now - rtt_start;
            phase = 6; /* a refresh is exercised by close: Refresh with LIFETIME 0 */
            stunkit_turn_close(s[0].m, now);
            stunkit_turn_close(s[1].m, now);
        } else if (phase == 6 && s[0].closed && s[1].closed) {
            phase = 7;
        }
        struct pollfd p[2] = {{s[0].fd, POLLIN, 0}, {s[1].fd, POLLIN, 0}};
        uint64_t next = stunkit_turn_next(s[0].m), n2 = stunkit_turn_next(s[1].m);
        if (n2 < next)
            next = n2;
        now = stunkit_now_ms();
        int wait = next <= now ? 0 : next - now > 50 ? 50 : (int)(next - now);
        poll(p, 2, wait);
        now = stunkit_now_ms();
        for (int i = 0; i < 2; i++)
            receive(&s[i], now);
    }
    int okay = phase == 7 && ok_indication && ok_channel;
    /* a failure leaves nothing behind: delete what was allocated */
    if (!okay) {
        uint64_t end = stunkit_now_ms() + 1000;
        for (int i = 0; i < 2; i++)
            if (s[i].allocated && !s[i].closed)
                stunkit_turn_close(s[i].m, stunkit_now_ms());
        while (stunkit_now_ms() < end && ((s[0].allocated && !s[0].closed) || (s[1].allocated && !s[1].closed))) {
            for (int i = 0; i < 2; i++)
                run_machine(&s[i], &server);
            struct pollfd p[2] = {{s[0].fd, POLLIN, 0}, {s[1].fd, POLLIN, 0}};
            poll(p, 2, 20);
            for (int i = 0; i < 2; i++)
                receive(&s[i], stunkit_now_ms());
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
                                                             : "delete";
    if (json) {
        printf("{\"server\": ");
        json_string(stdout, argv[optind], strlen(argv[optind]));
        printf(", \"ok\": %s, \"relayed\": ", okay ? "true" : "false");
        if (s[0].allocated)
            json_string(stdout, relayed, strlen(relayed));
        else
            printf("null");
        printf(", \"mapped\": ");
        if (s[0].allocated)
            json_string(stdout, mapped, strlen(mapped));
        else
            printf("null");
        printf(", \"lifetime_s\": %u, \"indications\": %s, \"channels\": %s, \"rtt_ms\": ", s[0].lifetime,
               ok_indication ? "true" : "false", ok_channel ? "true" : "false");
        if (ok_channel)
            printf("%llu", (unsigned long long)rtt);
        else
            printf("null");
        printf(", \"failed_step\": ");
        if (okay)
            printf("null, \"error_code\": null}\n");
        else {
            json_string(stdout, where, strlen(where));
            printf(", \"error_code\": %d}\n", bad ? bad->code : 0);
        }
    } else if (okay) {
        printf("relayed address  %s (lifetime %u s)\n", relayed, s[0].lifetime);
        printf("mapped address   %s\n", mapped);
        printf("relay            data went through two allocations and back: Send/Data indications and "
               "ChannelData\n");
        printf("round trip       %llu ms (channel, relay to relay)\n", (unsigned long long)rtt);
        printf("cleanup          both allocations deleted\n");
    } else if (bad) {
        fprintf(stderr, "stunkit turn: %s failed: %s%s%s%s\n", where, plain(bad->code),
                bad->code ? " (" : "", bad->code ? bad->reason : "", bad->code ? ")" : "");
    } else {
        fprintf(stderr, "stunkit turn: %s did not finish within %ld ms%s\n", where, timeout,
                phase == 2 || phase == 4 ? ": the relay did not deliver the data" : "");
    }
    for (int i = 0; i < 2; i++) {
        stunkit_turn_free(s[i].m);
        close(s[i].fd);
    }
    return okay ? 0 : 1;
}
