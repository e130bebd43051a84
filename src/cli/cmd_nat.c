/*
 * cmd_nat.c - `stunkit nat`: the UDP socket driver around the NAT discovery
 * machine of libstunkit (stunkit/nat.h), and the verdict in words a P2P
 * developer can act on.
 */
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli.h"
#include "stunkit/nat.h"
#include "stunkit/stunkit.h"

static void nat_usage(FILE *f)
{
    fprintf(f, "Usage: stunkit nat [--json] [--lifetime [--max-lifetime S]] [--local ADDR[:PORT]]\n"
               "                   [--timeout MS] SERVER\n"
               "\n"
               "Names your NAT with RFC 5780 behaviour discovery against a server that has\n"
               "two addresses (OTHER-ADDRESS, or CHANGED-ADDRESS from an RFC 3489 server):\n"
               "whether there is a NAT, its mapping and filtering behaviour, hairpinning (and\n"
               "whether looped-back packets carry the public address, RFC 4787 REQ-9), port\n"
               "preservation, optionally the binding lifetime, and the classic RFC 3489 name.\n"
               "Tests run in parallel: on a clean path the verdict takes well under a second.\n"
               "\n"
               "  -l, --local A[:P]  test from this local address (and port for the first socket)\n"
               "      --lifetime     also measure how long an idle UDP binding lives: the\n"
               "                     verdict is printed first, then progress; it takes about\n"
               "                     1.1x the lifetime (Ctrl-C prints what is known)\n"
               "      --max-lifetime S  longest lifetime tried, 2 to 3600 (default 120)\n"
               "  -t, --timeout MS   give up when the server does not answer (default 3000)\n"
               "      --json         one JSON object (keys: man stunkit, JSON OUTPUT)\n"
               "\n"
               "Loss: a verdict that rests on \"no answer came\" (filtering, hairpinning, a\n"
               "binding's expiry) is only given when control probes sent alongside show\n"
               "that loss cannot explain the silence; heavy loss makes it slower, and what\n"
               "stays unsure is reported unknown, never guessed.\n"
               "\n"
               "No server is told from UDP blocked: the ICMP error an unanswered server\n"
               "sends is heeded, and a Binding over TCP races the first test (TCP answers,\n"
               "UDP does not: blocked, in about a second).\n"
               "\n"
               "Exit status: 0 a verdict was reached (UDP blocked is one), 1 no verdict\n"
               "(the server is not reachable, cannot do behaviour discovery, or too much\n"
               "was lost), 2 bad usage, 130 interrupted (what was known is printed).\n");
}

static const char *meaning(stunkit_classic c)
{
    switch (c) {
    case STUNKIT_CLASSIC_OPEN_INTERNET:
        return "No NAT and no filtering: any peer can reach you directly at your public address.";
    case STUNKIT_CLASSIC_FULL_CONE:
        return "Any peer that learns your public address can send to you: direct connections\n"
               "work with everyone, no hole punching needed.";
    case STUNKIT_CLASSIC_RESTRICTED_CONE:
        return "Peers can reach you once you have sent a packet to their IP: hole punching\n"
               "works with almost every peer, including those behind symmetric NATs.";
    case STUNKIT_CLASSIC_PORT_RESTRICTED_CONE:
        return "Peers can reach you once you have sent to their exact IP:port: hole punching\n"
               "works, except with peers behind a symmetric NAT; those need a relay (TURN).";
    case STUNKIT_CLASSIC_SYMMETRIC:
        return "Your public port changes with every destination, so the address a server sees\n"
               "is not the one a peer will see: direct connections fail with peers behind\n"
               "port-restricted or symmetric NATs. Plan for a relay (TURN).";
    case STUNKIT_CLASSIC_SYMMETRIC_UDP_FIREWALL:
        return "No NAT, but a firewall drops unsolicited inbound UDP: peers reach you once you\n"
               "have sent to them (hole punching works; full-cone style inbound does not).";
    case STUNKIT_CLASSIC_UDP_BLOCKED:
        return "No UDP got through to the server: peer-to-peer UDP is out of the question here;\n"
               "use a relay over TCP or TLS (TURN on 443).";
    default:
        return "Not enough was learnt to name the NAT.";
    }
}

typedef struct nat_io {
    int fd[STUNKIT_NAT_MAX_SOCKETS];
    stunkit_addr local_ip;
    uint16_t first_port;
    /* "no server" or "UDP blocked" (stunkit_nat_udp_refused, stunkit_nat_tcp):
     * a connected UDP socket hears the ICMP error an unconnected one does
     * not; a Binding over TCP to the same server races test I */
    int refuse_fd, tcp_fd, tcp_sent, tcp_done;
    uint64_t refuse_next;
    int refuse_sends;
    uint8_t tcp_tid[12], tcp_buf[600];
    size_t tcp_len;
} nat_io;

/* A plain Binding request into buf (20 bytes), its transaction ID in tid. */
static size_t binding_request(uint8_t *buf, size_t cap, uint8_t tid[12])
{
    stunkit_random_os(NULL, tid, 12);
    stunkit_writer w;
    stunkit_writer_init(&w, buf, cap, STUNKIT_METHOD_BINDING, STUNKIT_CLASS_REQUEST, tid);
    int n = stunkit_writer_finish(&w);
    return n > 0 ? (size_t)n : 0;
}

static void race_start(nat_io *io, stunkit_nat *nat, const stunkit_addr *server, uint64_t now)
{
    struct sockaddr_storage ss;
    socklen_t sl = (socklen_t)stunkit_addr_to_sockaddr(server, &ss);
    io->refuse_fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (io->refuse_fd >= 0 && connect(io->refuse_fd, (struct sockaddr *)&ss, sl) != 0) {
        close(io->refuse_fd);
        io->refuse_fd = -1;
    }
    io->refuse_next = now;
    io->tcp_fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (io->tcp_fd >= 0 && connect(io->tcp_fd, (struct sockaddr *)&ss, sl) != 0 && errno != EINPROGRESS) {
        close(io->tcp_fd);
        io->tcp_fd = -1;
    }
    if (io->tcp_fd >= 0)
        stunkit_nat_tcp(nat, 0, now);
}

static void race_stop(nat_io *io)
{
    if (io->refuse_fd >= 0)
        close(io->refuse_fd);
    if (io->tcp_fd >= 0)
        close(io->tcp_fd);
    io->refuse_fd = io->tcp_fd = -1;
}

/* The race's sockets: ICMP on the connected UDP one (three sends: 0, 0.2,
 * 0.7 s), the TCP connection's progress and answer. */
static void race_step(nat_io *io, stunkit_nat *nat, uint64_t now)
{
    uint8_t buf[600], tid[12];
    if (io->refuse_fd >= 0) {
        ssize_t got;
        while ((got = recv(io->refuse_fd, buf, sizeof(buf), 0)) >= 0)
            ; /* the server's answer: test I says the same */
        if (errno == ECONNREFUSED || errno == EHOSTUNREACH || errno == ENETUNREACH) {
            stunkit_nat_udp_refused(nat, now);
            close(io->refuse_fd);
            io->refuse_fd = -1;
        } else if (io->refuse_sends < 3 && now >= io->refuse_next) {
            size_t n = binding_request(buf, sizeof(buf), tid);
            (void)send(io->refuse_fd, buf, n, 0);
            io->refuse_next = now + (io->refuse_sends ? 500 : 200);
            io->refuse_sends++;
        }
    }
    if (io->tcp_fd < 0 || io->tcp_done)
        return;
    int err = 0;
    socklen_t el = sizeof(err);
    if (!io->tcp_sent) {
        struct pollfd pf = {io->tcp_fd, POLLOUT, 0};
        if (poll(&pf, 1, 0) <= 0)
            return;
        if (getsockopt(io->tcp_fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0 || err) {
            io->tcp_done = 1;
            stunkit_nat_tcp(nat, -1, now);
            return;
        }
        size_t n = binding_request(buf, sizeof(buf), io->tcp_tid);
        if (send(io->tcp_fd, buf, n, MSG_NOSIGNAL) != (ssize_t)n) {
            io->tcp_done = 1;
            stunkit_nat_tcp(nat, -1, now);
            return;
        }
        io->tcp_sent = 1;
    }
    ssize_t got = recv(io->tcp_fd, io->tcp_buf + io->tcp_len, sizeof(io->tcp_buf) - io->tcp_len, 0);
    if (got == 0 || (got < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
        io->tcp_done = 1;
        stunkit_nat_tcp(nat, -1, now);
        return;
    }
    if (got > 0)
        io->tcp_len += (size_t)got;
    if (io->tcp_len >= 20) {
        size_t need = 20 + (size_t)(io->tcp_buf[2] << 8 | io->tcp_buf[3]);
        stunkit_msg m;
        if (need > sizeof(io->tcp_buf)) {
            io->tcp_done = 1;
            stunkit_nat_tcp(nat, -1, now);
        } else if (io->tcp_len >= need) {
            io->tcp_done = 1;
            int ok = stunkit_msg_parse(&m, io->tcp_buf, need) == 0 && m.klass == STUNKIT_CLASS_SUCCESS &&
                     !memcmp(m.tid, io->tcp_tid, 12);
            stunkit_nat_tcp(nat, ok ? 1 : -1, now);
        }
    }
}

/* Everything waiting on the sockets, into the machine (non-blocking). */
static void drain(nat_io *io, stunkit_nat *nat)
{
    for (int k = 0; k < STUNKIT_NAT_MAX_SOCKETS; k++) {
        uint8_t buf[2048];
        struct sockaddr_storage from;
        socklen_t flen;
        ssize_t got;
        while (io->fd[k] >= 0 &&
               (flen = sizeof(from), got = recvfrom(io->fd[k], buf, sizeof(buf), 0, (struct sockaddr *)&from, &flen)) >= 0) {
            stunkit_addr fa;
            if (stunkit_addr_from_sockaddr(&fa, (struct sockaddr *)&from) == 0)
                stunkit_nat_input(nat, k, &fa, buf, (size_t)got, stunkit_now_ms());
        }
    }
}

static int open_sock(nat_io *io, stunkit_nat *nat, int k)
{
    if (io->fd[k] >= 0)
        return 0;
    stunkit_addr bind_addr = io->local_ip;
    bind_addr.port = k == 0 ? io->first_port : 0;
    struct sockaddr_storage ss;
    int len = stunkit_addr_to_sockaddr(&bind_addr, &ss);
    int fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&ss, (socklen_t)len) != 0) {
        fprintf(stderr, "stunkit nat: cannot open a UDP socket on the local address: %s\n", strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    socklen_t slen = sizeof(ss);
    stunkit_addr local;
    getsockname(fd, (struct sockaddr *)&ss, &slen);
    stunkit_addr_from_sockaddr(&local, (struct sockaddr *)&ss);
    stunkit_nat_set_local(nat, k, &local);
    io->fd[k] = fd;
    return 0;
}

/* The local IP the route to the server uses, via a connected UDP socket. */
static int route_source(const stunkit_addr *server, stunkit_addr *out)
{
    struct sockaddr_storage ss;
    int len = stunkit_addr_to_sockaddr(server, &ss);
    int fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int rv = connect(fd, (struct sockaddr *)&ss, (socklen_t)len);
    socklen_t slen = sizeof(ss);
    if (rv == 0)
        rv = getsockname(fd, (struct sockaddr *)&ss, &slen);
    if (rv == 0)
        stunkit_addr_from_sockaddr(out, (struct sockaddr *)&ss);
    close(fd);
    return rv;
}

static void json_addr(const char *key, const stunkit_addr *a, int comma)
{
    char text[STUNKIT_ADDRSTRLEN];
    if (a->family && stunkit_addr_format(a, text, sizeof(text)) > 0)
        printf("\"%s\": \"%s\"%s", key, text, comma ? ", " : "");
    else
        printf("\"%s\": null%s", key, comma ? ", " : "");
}

static const char *tri(int v)
{
    return v < 0 ? "null" : v ? "true" : "false";
}

/* unknown is null in JSON, never the word */
static void json_name(const char *key, const char *name)
{
    if (name && strcmp(name, "unknown") != 0)
        printf("\"%s\": \"%s\", ", key, name);
    else
        printf("\"%s\": null, ", key);
}

static void json_int(const char *key, long v, int known)
{
    if (known)
        printf("\"%s\": %ld, ", key, v);
    else
        printf("\"%s\": null, ", key);
}

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

/* The whole result as one JSON object (keys: stunkit(1), JSON OUTPUT). */
static void print_json(const char *server_arg, const char *server, const stunkit_nat_result *r, int lifetime,
                       double elapsed)
{
    printf("{\"server\": ");
    json_string(stdout, server_arg, strlen(server_arg));
    printf(", \"server_address\": \"%s\", ", server);
    json_addr("local", &r->local, 1);
    int none = r->udp_blocked || r->server_unreachable || r->server_error || !r->verdict;
    json_addr("mapped", none ? &(stunkit_addr){0} : &r->mapped, 1);
    json_addr("other_address", &r->other, 1);
    printf("\"nat\": %s, ", none ? "null" : r->nat ? "true" : "false");
    json_name("mapping", stunkit_behavior_name(r->mapping));
    json_name("filtering", stunkit_behavior_name(r->filtering));
    printf("\"hairpinning\": %s, ", tri(r->hairpinning));
    json_name("hairpin_source", r->hairpin_source);
    printf("\"port_preservation\": %s, ", tri(r->port_preservation));
    json_name("allocation", r->allocation);
    json_int("lifetime_s", r->lifetime_s, lifetime && r->lifetime_s >= 0);
    json_int("lifetime_expired_s", r->lifetime_dead_s, lifetime && r->lifetime_dead_s >= 0);
    printf("\"server_unreachable\": %s, \"udp_refused\": %s, \"tcp_answered\": %s, ",
           r->server_unreachable ? "true" : "false", r->udp_refused ? "true" : "false", tri(r->tcp_answered));
    json_int("server_error", r->server_error, r->server_error > 0);
    json_name("classic", stunkit_classic_name(r->classic));
    printf("\"behavior_discovery\": %s, \"server_ignores_change_request\": %s, ",
           r->behavior_discovery ? "true" : "false", r->server_ignores_change ? "true" : "false");
    json_int("rtt_ms", (long)r->rtt_ms, !none);
    json_int("loss_percent", r->loss_percent, r->loss_percent >= 0 && !none);
    printf("\"interrupted\": %s, \"elapsed_s\": %.3f}\n", interrupted ? "true" : "false", elapsed);
}

/* The verdict about the NAT, in words (the lifetime comes after it). */
static void print_verdict(const char *server_arg, const char *server, const stunkit_nat_result *r, double elapsed)
{
    char a[STUNKIT_ADDRSTRLEN], b[STUNKIT_ADDRSTRLEN];
    stunkit_addr_format(&r->local, a, sizeof(a));
    if (elapsed < 1.0)
        printf("stunkit nat %s: verdict in %.0f ms\n", server_arg, elapsed * 1000.0);
    else
        printf("stunkit nat %s: verdict in %.1f s\n", server_arg, elapsed);
    printf("  local address      %s\n", a);
    if (r->server_error) {
        printf("  server             %s answered a plain Binding request with %d (%s)\n", server, r->server_error,
               stunkit_code_reason(r->server_error));
        printf("  verdict            none: %s\n",
               r->server_error == 401 ? "the server wants credentials; behaviour discovery (RFC 5780)\n"
                                        "                     needs a server that answers without them"
                                      : "the server refused the request; nothing is known about your NAT");
        return;
    }
    if (r->server_unreachable) {
        printf("  server             %s: %s, and %s\n", server,
               r->udp_refused ? "UDP refused (ICMP: nothing listens there)" : "no answer over UDP",
               r->tcp_answered > 0 ? "TCP answered" : r->tcp_answered == 0 ? "no answer over TCP either"
                                                                           : "TCP was not tried");
        printf("  verdict            none: the server is down, not a STUN server, or not reachable\n"
               "                     from here; nothing is known about your NAT\n");
        return;
    }
    if (r->udp_blocked) {
        if (r->tcp_answered > 0)
            printf("  UDP                blocked: %s answers over TCP but %s over UDP\n", server,
                   r->udp_refused ? "refuses (ICMP)" : "not");
        else
            printf("  UDP                blocked: no answer from %s\n", server);
        return;
    }
    stunkit_addr_format(&r->mapped, b, sizeof(b));
    printf("  public address     %s (round trip %u ms)\n", b, r->rtt_ms);
    printf("  NAT                %s\n", r->nat ? "yes" : "no (your public address is your local one)");
    printf("  mapping            %s\n", stunkit_behavior_name(r->mapping));
    printf("  filtering          %s\n", stunkit_behavior_name(r->filtering));
    if (r->hairpinning > 0 && r->hairpin_source && strcmp(r->hairpin_source, "external") != 0) {
        char f[STUNKIT_ADDRSTRLEN];
        stunkit_addr_format(&r->hairpin_from, f, sizeof(f));
        printf("  hairpinning        yes, but looped-back packets come from %s (%s), not\n"
               "                     the sender's public address: RFC 4787 REQ-9 broken; peers\n"
               "                     that match addresses will not recognise each other\n",
               f, strcmp(r->hairpin_source, "internal") == 0 ? "the sender's inside address" : "another address");
    } else {
        printf("  hairpinning        %s\n", r->hairpinning > 0    ? "yes"
                                          : r->hairpinning == 0 ? "no"
                                          : r->nat              ? "unknown (too much was lost)"
                                                                : "not applicable");
    }
    if (r->port_preservation >= 0)
        printf("  port preservation  %s%s%s%s\n", r->port_preservation ? "yes" : "no", r->allocation ? " (ports: " : "",
               r->allocation ? r->allocation : "", r->allocation ? ")" : "");
    if (r->loss_percent >= 10)
        printf("  packet loss        about %d%% of probes or answers lost (%u of %u): the verdict\n"
               "                     waited for enough evidence\n",
               r->loss_percent, r->loss_sends - r->loss_answers, r->loss_sends);
    if (!r->behavior_discovery)
        printf("  note               %s gave no alternate address (OTHER-ADDRESS): it cannot\n"
               "                     do behaviour discovery; use an RFC 5780 server\n",
               server);
    if (r->server_ignores_change)
        printf("  note               the server answered CHANGE-REQUEST from the wrong address:\n"
               "                     its answers say nothing about filtering\n");
    if (r->behavior_discovery && !r->server_ignores_change &&
        (!r->mapping || !r->filtering || (r->nat && r->hairpinning < 0)))
        printf("  note               what is unknown stayed unknown because too many probes were\n"
               "                     lost to be sure; run it again on a better path\n");
}

static void print_lifetime(const stunkit_nat_result *r, int nat)
{
    if (r->lifetime_s >= 0 && r->lifetime_dead_s >= 0)
        printf("  binding lifetime   %d s (alive after %d s, gone after %d s)%s\n", r->lifetime_s, r->lifetime_s,
               r->lifetime_dead_s, interrupted ? " (interrupted)" : "");
    else if (r->lifetime_s >= 0)
        printf("  binding lifetime   more than %d s%s\n", r->lifetime_s,
               interrupted ? " (interrupted: all that was measured)" : "");
    else if (r->lifetime_dead_s >= 0)
        printf("  binding lifetime   less than %d s%s\n", r->lifetime_dead_s, interrupted ? " (interrupted)" : "");
    else
        printf("  binding lifetime   not measured%s\n", !nat ? " (no NAT)" : interrupted ? " (interrupted)" : "");
}

int cmd_nat(int argc, char **argv)
{
    static const struct option opts[] = {{"json", no_argument, NULL, 'j'},
                                         {"lifetime", no_argument, NULL, 'L'},
                                         {"max-lifetime", required_argument, NULL, 'M'},
                                         {"local", required_argument, NULL, 'l'},
                                         {"timeout", required_argument, NULL, 't'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int json = 0, c, have_local = 0;
    stunkit_nat_config cfg;
    stunkit_addr local;
    memset(&cfg, 0, sizeof(cfg));
    cfg.size = sizeof(cfg);
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":l:t:h", opts, NULL)) != -1) {
        const char *opt = argv[optind - 1];
        char *end;
        long v;
        switch (c) {
        case 'j': json = 1; break;
        case 'L': cfg.lifetime = 1; break;
        case 'M':
            v = strtol(optarg, &end, 10);
            if (*end || v < 2 || v > 3600) {
                fprintf(stderr, "stunkit nat: --max-lifetime '%s': expected seconds from 2 to 3600\n", optarg);
                return 2;
            }
            cfg.lifetime_max_s = (uint32_t)v;
            break;
        case 'l':
            if (stunkit_addr_parse(optarg, 0, &local) != 0) {
                fprintf(stderr, "stunkit nat: --local '%s': not a numeric address (ADDR or ADDR:PORT)\n", optarg);
                return 2;
            }
            have_local = 1;
            break;
        case 't':
            v = strtol(optarg, &end, 10);
            if (*end || v < 10 || v > 600000) {
                fprintf(stderr, "stunkit nat: --timeout '%s': expected milliseconds from 10 to 600000\n", optarg);
                return 2;
            }
            cfg.first_timeout_ms = (uint32_t)v;
            break;
        case 'h': nat_usage(stdout); return 0;
        case ':': fprintf(stderr, "stunkit nat: option %s needs a value\n", opt); return 2;
        default: fprintf(stderr, "stunkit nat: unknown option '%s' (try --help)\n", opt); return 2;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "stunkit nat: name one SERVER (try --help)\n");
        return 2;
    }
    if (cfg.lifetime_max_s && !cfg.lifetime) {
        fprintf(stderr, "stunkit nat: --max-lifetime needs --lifetime\n");
        return 2;
    }
    int bad = cli_server_udp("nat", argv[optind], have_local ? local.family : 0, &cfg.server);
    if (bad)
        return bad;

    nat_io io;
    for (int k = 0; k < STUNKIT_NAT_MAX_SOCKETS; k++)
        io.fd[k] = -1;
    if (have_local) {
        io.local_ip = local;
        io.first_port = local.port;
    } else if (route_source(&cfg.server, &io.local_ip) != 0) {
        fprintf(stderr, "stunkit nat: no route to %s: %s\n", argv[optind], strerror(errno));
        return 1;
    } else {
        io.first_port = 0;
    }
    cfg.env.random = stunkit_random_os;
    stunkit_nat *nat = stunkit_nat_new(&cfg, stunkit_now_ms());
    if (!nat) {
        fprintf(stderr, "stunkit nat: out of memory\n");
        return 1;
    }
    /* Ctrl-C or SIGTERM: stop and print what is known */
    interrupted = 0;
    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    uint64_t t0 = stunkit_now_ms();
    int rv = 0, shown = 0, alive = -1;
    /* progress goes where a person sees it: stdout with the words, stderr
     * (when it is a terminal) with --json */
    FILE *progress = json ? (isatty(2) ? stderr : NULL) : stdout;
    char server[STUNKIT_ADDRSTRLEN];
    stunkit_addr_format(&cfg.server, server, sizeof(server));
    io.refuse_fd = io.tcp_fd = -1;
    io.tcp_sent = io.tcp_done = io.refuse_sends = 0;
    io.tcp_len = 0;
    race_start(&io, nat, &cfg.server, t0);
    const stunkit_nat_result *r = stunkit_nat_get_result(nat);
    while (!interrupted) {
        if (io.refuse_fd >= 0 || io.tcp_fd >= 0) {
            race_step(&io, nat, stunkit_now_ms());
            if (r->mapped.family || r->done)
                race_stop(&io); /* test I answered (or it is over): the race is decided */
        }
        /* what arrived is read before the machine looks at the clock: a
         * host too busy to run us on time must not turn answers waiting in
         * the socket into "no answer" */
        drain(&io, nat);
        stunkit_nat_output out;
        int st = stunkit_nat_poll(nat, stunkit_now_ms(), &out);
        if (st < 0)
            continue; /* NOBUF: a LIFETIME event lost; the result holds the bounds */
        if (st == 1 && !out.send) {
            if (out.event == STUNKIT_NAT_EVENT_DONE)
                break;
            if (out.event == STUNKIT_NAT_EVENT_VERDICT && cfg.lifetime && r->nat && !r->done) {
                /* the verdict first; the lifetime takes a while */
                shown = 1;
                if (!json) {
                    print_verdict(argv[optind], server, r, (double)(stunkit_now_ms() - t0) / 1000.0);
                    printf("  classic type       %s\n", stunkit_classic_name(r->classic));
                }
                if (progress)
                    fprintf(progress,
                            "  binding lifetime   measuring: idle times up to %u s are tried (about as long\n"
                            "                     as the lifetime itself; Ctrl-C prints what is known)\n",
                            cfg.lifetime_max_s ? cfg.lifetime_max_s : 120);
                fflush(stdout);
            }
            if (out.event == STUNKIT_NAT_EVENT_LIFETIME && shown && r->lifetime_s != alive) {
                alive = r->lifetime_s;
                if (progress && alive >= 0)
                    fprintf(progress, "  binding lifetime   alive after %d s idle (%.0f s so far)\n", alive,
                            (double)(stunkit_now_ms() - t0) / 1000.0);
                if (progress)
                    fflush(progress);
            }
            continue;
        }
        if (st == 1) {
            if (open_sock(&io, nat, out.sock) != 0) {
                rv = 1;
                break;
            }
            struct sockaddr_storage ss;
            int len = stunkit_addr_to_sockaddr(&out.to, &ss);
            /* errors (ICMP unreachable surfacing) are like loss: ignored */
            (void)sendto(io.fd[out.sock], out.data, out.len, 0, (struct sockaddr *)&ss, (socklen_t)len);
            continue;
        }
        struct pollfd pfd[STUNKIT_NAT_MAX_SOCKETS + 2];
        int np = 0;
        for (int k = 0; k < STUNKIT_NAT_MAX_SOCKETS; k++)
            if (io.fd[k] >= 0)
                pfd[np++] = (struct pollfd){io.fd[k], POLLIN, 0};
        if (io.refuse_fd >= 0)
            pfd[np++] = (struct pollfd){io.refuse_fd, POLLIN, 0};
        if (io.tcp_fd >= 0 && !io.tcp_done)
            pfd[np++] = (struct pollfd){io.tcp_fd, (short)(io.tcp_sent ? POLLIN : POLLOUT), 0};
        uint64_t next = stunkit_nat_timeout(nat), now = stunkit_now_ms();
        if (io.refuse_fd >= 0 && io.refuse_sends < 3 && io.refuse_next < next)
            next = io.refuse_next;
        int wait = next == STUNKIT_NEVER ? 1000 : next > now ? (int)(next - now) : 0;
        if (wait > 1000)
            wait = 1000;
        (void)poll(pfd, (nfds_t)np, wait); /* what came is read at the top (EINTR: the signal) */
    }
    race_stop(&io);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    double elapsed = (double)(stunkit_now_ms() - t0) / 1000.0;
    if (rv == 0 && json) {
        print_json(argv[optind], server, r, cfg.lifetime, elapsed);
    } else if (rv == 0 && interrupted && !r->verdict) {
        printf("stunkit nat %s: interrupted after %.1f s, before a verdict\n", argv[optind], elapsed);
    } else if (rv == 0) {
        if (!shown)
            print_verdict(argv[optind], server, r, elapsed);
        if (cfg.lifetime && !r->udp_blocked && !r->server_unreachable && !r->server_error) {
            print_lifetime(r, r->nat);
            if (shown)
                printf("  measured in        %.1f s\n", elapsed);
        }
        printf("  classic type       %s\n\n%s\n", stunkit_classic_name(r->classic), meaning(r->classic));
    }
    if (rv == 0 && interrupted)
        rv = 130;
    else if (rv == 0 && r->classic == STUNKIT_CLASSIC_UNKNOWN)
        rv = 1;
    for (int k = 0; k < STUNKIT_NAT_MAX_SOCKETS; k++)
        if (io.fd[k] >= 0)
            close(io.fd[k]);
    stunkit_nat_free(nat);
    return rv;
}
