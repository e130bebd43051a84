/*
 * cmd_punch.c - `stunkit punch SERVER`: two peers behind NATs find each
 * other and talk, directly where the NATs allow, through the TURN relay
 * where they do not. The connecting is the library's peer (stunkit/peer.h:
 * sockets, ICE, TURN, port mapping, guessing, the rendezvous); this file
 * keeps the flags, the pasted tokens, the pings and bye, --forward and the
 * report.
 *
 * Signalling through the server: `stunkit punch SERVER ROOM` meets the other
 * peer in a room of stunkitd's rendezvous (stunkit/rendezvous.h): the first
 * in the room offers (ICE-controlling), candidates go up as they are found
 * (trickle) and the peer's are applied line by line as they come.
 *
 * Signalling without a rendezvous: `--offer` prints a one-line token and
 * reads the other side's reply token from stdin; `--answer TOKEN` prints
 * its reply token (`--answer -` reads the offer from stdin first). A token
 * is "SK1." and the base64 of the description's SDP lines (ufrag, pwd,
 * candidates, end-of-candidates). With --sdp the descriptions are those
 * SDP lines themselves, a block ended by an empty line: what other agents
 * (libnice, aioice, a browser's a= lines) read and write.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <getopt.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <openssl/evp.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli.h"
#include "stunkit/stunkit.h"

#define MAX_SOCKS (STUNKIT_ICE_MAX_BASES - 1) /* --local addresses (one base is the TURN-over-TCP stream's) */
#define PING_MAGIC "SKP1 "
#define PING_EVERY_MS 100u /* a new ping every 100 ms once connected */
#define PING_RTO_MS 300u   /* an unanswered ping again after 300 ms, 600, 1200, 1200, ... */
#define BYE_EVERY_MS 300u  /* "SKP1 bye" again until acknowledged */
#define STRETCH_MAX 3u     /* a lossy path stretches a deadline up to threefold */

static void usage(FILE *f)
{
    fprintf(f, "Usage: stunkit punch SERVER ROOM --username U --password P [options]\n"
               "       stunkit punch SERVER [ROOM] --secret S --username U --password P [options]\n"
               "       stunkit punch SERVER --offer [options]\n"
               "       stunkit punch SERVER --answer TOKEN [options]\n"
               "\n"
               "Connects two peers with ICE: every local address, the server-reflexive address\n"
               "STUN sees, and a TURN relay when credentials are given; directly where the NATs\n"
               "allow, through the relay where not. Then exchanges pings over the path found.\n"
               "\n"
               "  SERVER             STUN (and TURN) server: host[:port], stun: or turn: URI;\n"
               "                     turns:host[:port] (or stuns:) carries the TCP fallbacks\n"
               "                     (TURN, the rendezvous) over TLS, port 5349 by default\n"
               "  ROOM               meet the other peer in this room of SERVER's rendezvous\n"
               "                     (stunkitd --rendezvous; 1-64 of A-Z a-z 0-9 . _ ~ -;\n"
               "                     anyone who knows the name can take the second place)\n"
               "  --secret S         a secret both sides were given (or STUNKIT_SECRET): the room\n"
               "                     name comes from it (ROOM may be left out), the ICE passwords\n"
               "                     from it never cross the wire, and each description is sealed\n"
               "                     with it, so neither a stranger nor the server can take the\n"
               "                     peer's place or steer its checks. Without it, the first to\n"
               "                     come is trusted\n"
               "  --relay-only       relayed candidates only (WebRTC's iceTransportPolicy\n"
               "                     \"relay\"): this side's addresses are neither sent to the\n"
               "                     peer nor used; no port mapping, no guessing. For testing\n"
               "                     a relay, or hiding where this side is\n"
               "  --fallback S       another server of the same fleet (repeatable, 7 at most;\n"
               "                     rooms shared: stunkitd --rendezvous-redis). When SERVER\n"
               "                     goes silent for 4 s (or answers 5xx, or refuses), the\n"
               "                     rendezvous carries on at the next, as the same peer.\n"
               "                     A name with several SRV or A records is such a list too\n"
               "  --forward L:A      carry a local UDP application's datagrams: what it sends\n"
               "                     to 127.0.0.1:L goes to the peer, what the peer's sends\n"
               "                     comes out to 127.0.0.1:A; datagrams as they are (no framing\n"
               "                     on a direct path), across path changes, until Ctrl-C or the\n"
               "                     peer leaves. Not encrypted: the application does that\n"
               "                     (WireGuard does)\n"
               "  --wait S           with ROOM: wait S seconds for the peer (default 120)\n"
               "  --offer            print an offer token, read the answer token from stdin\n"
               "  --answer TOKEN     answer an offer: prints the answer token to pass back\n"
               "                     (- : read the offer from stdin)\n"
               "  --sdp              descriptions as SDP lines (a=ice-ufrag, a=ice-pwd,\n"
               "                     a=candidate...), a block ended by an empty line, not tokens\n"
               "  --username U       the server's credentials: TURN (relayed candidates over UDP\n"
               "                     and over TCP, for when UDP is blocked) and the rendezvous;\n"
               "                     without them, no relay\n"
               "  --password P       (or STUNKIT_PASSWORD in the environment)\n"
               "  --count N          pings to exchange (default 5), each resent until answered\n"
               "  -t, --timeout MS   give up connecting MS after the peer's description (its last\n"
               "                     part) came\n"
               "                     (default 10000; up to threefold on a lossy path)\n"
               "  -l, --local IP     use only this local address (repeatable)\n"
               "  --aggressive       aggressive nomination (the offer side decides)\n"
               "  --no-map           do not ask the router for a port (PCP, NAT-PMP or UPnP IGD;\n"
               "                     asked by default, the mapping is deleted on exit)\n"
               "  --no-spray         no birthday-paradox punching: when a relayed pair works and\n"
               "                     exactly one NAT maps per destination (symmetric), the\n"
               "                     sides try %d sockets x %d guessed ports for a direct path\n"
               "                     (only toward an address the peer proved by an ICE check;\n"
               "                     at most %d datagrams/s, %d in all)\n"
               "  --ca-file FILE     with a TLS server: trust the CAs in FILE (PEM), not the system's\n"
               "  --insecure         with a TLS server: do not check its certificate\n"
               "  --json             the result as one JSON object (after the token line)\n"
               "\n"
               "Exit status: 0 connected with data both ways, 1 no path or no answer,\n"
               "2 bad usage, 130 interrupted.\n",
            STUNKIT_PEER_GUESS_SOCKETS, STUNKIT_PEER_GUESS_PORTS, STUNKIT_PEER_GUESS_PPS, STUNKIT_PEER_GUESS_BUDGET);
}

/* ---- tokens ---- */

static int token_encode(const char *desc, size_t len, char *out, size_t cap)
{
    if (cap < 4 + 4 * ((len + 2) / 3) + 1)
        return -1;
    memcpy(out, "SK1.", 4);
    int n = EVP_EncodeBlock((unsigned char *)out + 4, (const unsigned char *)desc, (int)len);
    return n < 0 ? -1 : 4 + n;
}

static int token_decode(const char *tok, char *out, size_t cap)
{
    while (*tok == ' ' || *tok == '\t')
        tok++;
    size_t n = strcspn(tok, "\r\n \t");
    if (n < 8 || strncmp(tok, "SK1.", 4) != 0 || ((n - 4) & 3) || cap < (n - 4) / 4 * 3 + 1)
        return -1;
    int m = EVP_DecodeBlock((unsigned char *)out, (const unsigned char *)tok + 4, (int)(n - 4));
    if (m < 0)
        return -1;
    /* EVP_DecodeBlock counts the padding as zero bytes */
    if (n >= 6 && tok[n - 1] == '=')
        m--;
    if (n >= 6 && tok[n - 2] == '=')
        m--;
    out[m] = 0;
    return m;
}

/* Reads one description from stdin: a token line, or (sdp) SDP lines up
 * to an empty line or end-of-candidates. The description text, or -1. */
static int read_description(int sdp, char *out, size_t cap)
{
    char line[8192];
    size_t off = 0;
    if (!sdp) {
        if (!fgets(line, sizeof(line), stdin))
            return -1;
        return token_decode(line, out, cap);
    }
    while (fgets(line, sizeof(line), stdin)) {
        size_t n = strcspn(line, "\r\n");
        if (n == 0) {
            if (off)
                break;
            continue; /* blank lines before the block */
        }
        if (off + n + 3 > cap)
            return -1;
        memcpy(out + off, line, n);
        memcpy(out + off + n, "\r\n", 3);
        off += n + 2;
        if (!strncmp(line, "a=end-of-candidates", 19))
            break;
    }
    out[off] = 0;
    return off ? (int)off : -1;
}

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

/* The run: the peer (stunkit/peer.h) does the connecting; this file keeps
 * the pings, the bye, the forwarding and the report. */
typedef struct punch {
    stunkit_peer *peer;
    stunkit_peer_info info; /* refreshed every turn of run() */
    uint64_t t0, t_ping;    /* the start; the first ping, ms after it (0: none) */
    int tracing;            /* STUNKIT_TRACE=1: the peer's log on stderr */
    int have_secret;
    /* --forward LISTEN:APP: the local application's datagrams (to
     * 127.0.0.1:LISTEN) go to the peer, the peer's to 127.0.0.1:APP */
    int fwd_fd;
    stunkit_addr fwd_app;
    unsigned long fwd_out, fwd_in, fwd_dropped;
    /* pings: each resent until answered (PING_RTO_MS, doubling), the rtt
     * only from those answered at the first send (Karn); "SKP1 bye N" (N:
     * our pings answered) resent until the peer acknowledges it */
    int count, sent, answered, resent, rtt_n, pings_rx;
    uint64_t sent_at[256], tx_at[256];
    uint8_t tries[256], acked[256];
    double rtt_sum;
    uint64_t next_ping, bye_at;
    int bye_rx, bye_sent, bye_acked, peer_answered;
    int talk_over;      /* bye said (or the run ended): nothing more goes to the peer */
    int stretch;        /* run(): the deadline grows with the loss the checks saw */
} punch;

static void send_app(punch *p, const char *text)
{
    if (!p->talk_over)
        (void)stunkit_peer_send(p->peer, text, strlen(text));
}

/* What the peer's application sent: punch's own messages ("SKP1 ping",
 * "pong", "bye"), or with --forward the application's datagrams. */
static void on_data(stunkit_peer *peer, const uint8_t *d, size_t len, void *user)
{
    punch *p = user;
    char msg[128];
    uint64_t now = stunkit_now_ms();
    (void)peer;
    if (len < 5 || memcmp(d, PING_MAGIC, 5) != 0) {
        /* not ours: the application's, with --forward */
        if (p->fwd_fd >= 0) {
            struct sockaddr_storage ss;
            int sl = stunkit_addr_to_sockaddr(&p->fwd_app, &ss);
            if (sendto(p->fwd_fd, d, len, MSG_DONTWAIT, (struct sockaddr *)&ss, (socklen_t)sl) < 0)
                p->fwd_dropped++;
            else
                p->fwd_in++;
        }
        return;
    }
    if (len >= sizeof(msg))
        return;
    memcpy(msg, d, len);
    msg[len] = 0;
    unsigned seq;
    if (sscanf(msg, "SKP1 ping %u", &seq) == 1) {
        char pong[64];
        snprintf(pong, sizeof(pong), "SKP1 pong %u", seq);
        send_app(p, pong);
        p->pings_rx++;
    } else if (sscanf(msg, "SKP1 pong %u", &seq) == 1) {
        if (seq < 256 && seq < (unsigned)p->sent && !p->acked[seq]) {
            p->acked[seq] = 1;
            p->answered++;
            if (p->tries[seq] == 1) { /* Karn: a resent ping's answer may be the first send's */
                p->rtt_sum += (double)(now - p->sent_at[seq]);
                p->rtt_n++;
            }
        }
    } else if (!strcmp(msg, "SKP1 bye ack")) {
        p->bye_acked = 1;
    } else if (!strncmp(msg, "SKP1 bye", 8)) {
        /* "SKP1 bye N": the peer is done, N of its pings answered; each
         * copy acknowledged (ours may be lost). An agent that answers a
         * bye with a bye (the interop peers) acknowledges ours so. */
        unsigned n;
        if (sscanf(msg, "SKP1 bye %u", &n) == 1 && n <= 255)
            p->peer_answered = (int)n;
        p->bye_rx = 1;
        p->bye_acked |= p->bye_sent;
        send_app(p, "SKP1 bye ack");
    }
}

/* STUNKIT_TRACE=1: what happens, with the time since the start, on stderr
 * (for debugging a lab run) */
static void on_event(stunkit_peer *peer, const stunkit_peer_event *ev, void *user)
{
    punch *p = user;
    (void)peer;
    if (ev->type == STUNKIT_PEER_EVENT_LOG && p->tracing)
        fprintf(stderr, "trace %.*s\n", (int)ev->len, ev->text);
}

/* A datagram of the local application's (--forward) to the peer, as it
 * is on a direct path (no framing), wrapped for the relay otherwise. */
static void send_data(punch *p, const uint8_t *data, size_t len)
{
    if (p->talk_over || stunkit_peer_send(p->peer, data, len) != 0)
        p->fwd_dropped++;
    else
        p->fwd_out++;
}

/* A deadline stretched by the loss the peer saw (its checks', or the
 * rendezvous'): a path that loses a share q of what is sent needs about
 * 1 / (1 - q) times as long for every exchange (at most STRETCH_MAX times). */
static uint64_t stretched(const punch *p, uint64_t from, uint64_t deadline)
{
    unsigned q = p->info.check_loss > p->info.rendezvous_loss ? p->info.check_loss : p->info.rendezvous_loss;
    if (!p->stretch || !q || deadline <= from)
        return deadline;
    if (q > 1000 - 1000 / STRETCH_MAX)
        q = 1000 - 1000 / STRETCH_MAX;
    return from + (deadline - from) * 1000u / (1000u - q);
}

static int connected(const punch *p)
{
    return p->info.connected;
}

/* When ping `i` goes (again): PING_RTO_MS after its last send, doubling,
 * at most 1.2 s apart. */
static uint64_t ping_due(const punch *p, int i)
{
    unsigned k = p->tries[i] > 3 ? 2 : p->tries[i] - 1u;
    return p->tx_at[i] + ((uint64_t)PING_RTO_MS << k);
}

static void send_ping(punch *p, int i, uint64_t now)
{
    char ping[64];
    snprintf(ping, sizeof(ping), "SKP1 ping %d", i);
    if (p->tries[i])
        p->resent++;
    else
        p->sent_at[i] = now;
    if (!p->t_ping)
        p->t_ping = now - p->t0;
    p->tries[i] = p->tries[i] < 255 ? p->tries[i] + 1 : 255;
    p->tx_at[i] = now;
    send_app(p, ping);
}

/* The next ping (new or resent) due, or UINT64_MAX. The pings go once
 * birthday punching (if it pays) is over. */
static uint64_t pings_next(const punch *p)
{
    uint64_t next = UINT64_MAX;
    if (p->info.state != STUNKIT_PEER_CONNECTED || p->info.birthday_running)
        return next;
    if (p->sent < p->count)
        next = p->next_ping;
    for (int i = 0; i < p->sent; i++)
        if (!p->acked[i] && ping_due(p, i) < next)
            next = ping_due(p, i);
    if (p->bye_sent && !p->bye_acked && p->bye_at + BYE_EVERY_MS < next)
        next = p->bye_at + BYE_EVERY_MS;
    return next;
}

static void send_bye(punch *p, uint64_t now)
{
    char bye[32];
    snprintf(bye, sizeof(bye), "SKP1 bye %d", p->answered);
    p->bye_sent = 1;
    p->bye_at = now;
    send_app(p, bye);
}

static void pings_step(punch *p, uint64_t now)
{
    if (p->info.state != STUNKIT_PEER_CONNECTED || p->info.birthday_running || p->talk_over)
        return;
    if (p->sent < p->count && now >= p->next_ping) {
        p->next_ping = now + PING_EVERY_MS;
        send_ping(p, p->sent++, now);
    }
    for (int i = 0; i < p->sent; i++)
        if (!p->acked[i] && now >= ping_due(p, i))
            send_ping(p, i, now);
    if (p->bye_sent && !p->bye_acked && now >= p->bye_at + BYE_EVERY_MS)
        send_bye(p, now);
}

/* Drives the peer (its descriptor and deadline, the application's socket
 * with --forward) until `done(p)` or the deadline; 0 done, -1 deadline or
 * stopped. */
static int run(punch *p, uint64_t deadline, int (*done)(const punch *))
{
    uint64_t entered = stunkit_now_ms();
    for (;;) {
        uint64_t now = stunkit_now_ms();
        stunkit_peer_step(p->peer, now);
        stunkit_peer_get_info(p->peer, &p->info);
        if (done(p))
            return 0;
        uint64_t dl = stretched(p, entered, deadline);
        if (now >= dl || stop)
            return -1;
        pings_step(p, now);
        uint64_t next = stunkit_peer_timeout(p->peer), t;
        if (dl < next)
            next = dl;
        if ((t = pings_next(p)) < next)
            next = t;
        int wait = next <= now ? 0 : next - now > 200 ? 200 : (int)(next - now);
        struct pollfd pf[2] = {{stunkit_peer_fd(p->peer), POLLIN, 0}, {p->fwd_fd, POLLIN, 0}};
        if (poll(pf, 2, wait) <= 0)
            continue;
        if (p->fwd_fd >= 0 && (pf[1].revents & POLLIN)) {
            uint8_t buf[4096];
            ssize_t n;
            for (int k = 0; k < 64 && (n = recv(p->fwd_fd, buf, sizeof(buf), MSG_DONTWAIT)) >= 0; k++)
                send_data(p, buf, (size_t)n);
        }
    }
}

static int is_gathered(const punch *p)
{
    return p->info.gathered || p->info.state == STUNKIT_PEER_FAILED;
}

static int is_connected(const punch *p)
{
    return p->info.state != STUNKIT_PEER_MEETING && p->info.state != STUNKIT_PEER_CONNECTING;
}

static int has_role(const punch *p)
{
    return p->info.role_known || p->info.state == STUNKIT_PEER_FAILED;
}

static int peer_ready(const punch *p)
{
    return p->info.peer_ready || p->info.state == STUNKIT_PEER_FAILED;
}

/* the pings are answered, and no direct path may still replace a relayed
 * one (renomination: the run's deadline bounds the wait) */
static int pings_done(const punch *p)
{
    return p->info.state == STUNKIT_PEER_DISCONNECTED ||
           (p->sent >= p->count && p->answered >= p->count && !p->info.upgrading);
}

/* --forward runs until the peer leaves or the path is gone (or a signal) */
static int forwarding_over(const punch *p)
{
    return p->bye_rx || p->info.state == STUNKIT_PEER_DISCONNECTED || p->info.state == STUNKIT_PEER_FAILED;
}

/* the peer said bye, and acknowledged ours */
static int bye_done(const punch *p)
{
    return (p->bye_rx && p->bye_acked) || p->info.state == STUNKIT_PEER_DISCONNECTED;
}

/* "tcp" for a candidate over TCP, and for our relayed candidate whose
 * allocation lives on the TCP connection to the server */
static const char *cand_protocol(const punch *p, const stunkit_ice_candidate *c, int local)
{
    return c->tcp || (local && p->info.tcp_relay) ? "tcp" : "udp";
}

static void print_cand(const punch *p, const char *name, const stunkit_ice_candidate *c, int local)
{
    char a[STUNKIT_ADDRSTRLEN];
    stunkit_addr_format(&c->addr, a, sizeof(a));
    printf("\"%s\": {\"type\": \"%s\", \"address\": \"%s\", \"protocol\": \"%s\"%s}", name, stunkit_ice_type_name(c->type),
           a, cand_protocol(p, c, local), p->info.tls && local && p->info.tcp_relay ? ", \"tls\": true" : "");
}

static void print_ms(uint64_t ms)
{
    if (ms == UINT64_MAX)
        printf("null");
    else
        printf("%llu", (unsigned long long)ms);
}

static void report_spray(const punch *p)
{
    const stunkit_peer_info *i = &p->info;
    printf("\"birthday\": ");
    if (!i->birthday_tried) {
        printf("null, ");
        return;
    }
    printf("{\"side\": \"%s\", \"rounds\": %d, \"sockets\": %ld, \"probes\": %ld, \"direct\": %s",
           i->birthday_hard_side ? "hard" : "easy", i->birthday_rounds, i->birthday_sockets, i->birthday_probes,
           i->birthday_direct ? "true" : "false");
    if (i->birthday_direct)
        printf(", \"ms\": %llu, \"at_ms\": %llu", (unsigned long long)i->birthday_ms, (unsigned long long)i->birthday_at_ms);
    else if (i->birthday_why[0]) {
        printf(", \"reason\": ");
        json_string(stdout, i->birthday_why, strlen(i->birthday_why));
    }
    printf("}, ");
}

static void report(punch *p, const char *room, int json)
{
    const stunkit_peer_info *i = &p->info;
    int ok = connected(p);
    const char *why = i->state == STUNKIT_PEER_FAILED && i->reason[0] ? i->reason
                      : stop                                         ? "interrupted"
                      : room && !i->peer_ready                       ? "the peer did not come to the room in time"
                                                                     : "nothing answered within the timeout";
    if (json) {
        printf("{\"connected\": %s, ", ok ? "true" : "false");
        if (room) {
            printf("\"room\": ");
            json_string(stdout, room, strlen(room));
            printf(", \"role\": %s, ", !i->role_known ? "null" : i->controlling ? "\"offer\"" : "\"answer\"");
        }
        printf("\"authenticated\": %s, ", p->have_secret ? "true" : "false");
        if (room) {
            /* the server the rendezvous ended at, and the moves to it (a fleet) */
            char sv[STUNKIT_ADDRSTRLEN];
            stunkit_addr_format(&i->server, sv, sizeof(sv));
            printf("\"server\": \"%s\", \"servers\": %d, \"server_moves\": %u, ", sv, i->n_servers, i->server_moves);
        }
        printf("\"tcp_relay_redirects\": %u, ", i->tcp_relay_redirects);
        if (p->fwd_fd >= 0)
            printf("\"forwarded\": {\"to_peer\": %lu, \"from_peer\": %lu, \"dropped\": %lu}, ", p->fwd_out, p->fwd_in,
                   p->fwd_dropped);
        if (ok) {
            printf("\"path\": \"%s\", ", i->relayed ? "relay" : "direct");
            print_cand(p, "local", &i->local, 1);
            printf(", ");
            print_cand(p, "remote", &i->remote, 0);
            printf(", \"connect_ms\": %llu, ", (unsigned long long)i->connect_ms);
            if (i->upgraded_ms)
                printf("\"upgraded_ms\": %llu, ", (unsigned long long)i->upgraded_ms);
            else
                printf("\"upgraded_ms\": null, ");
            if (p->rtt_n)
                printf("\"rtt_ms\": %.1f, ", p->rtt_sum / p->rtt_n);
            else
                printf("\"rtt_ms\": null, ");
        } else {
            printf("\"reason\": ");
            json_string(stdout, why, strlen(why));
            printf(", ");
        }
        printf("\"port_mapping\": ");
        if (i->mapped) {
            char e[STUNKIT_ADDRSTRLEN];
            stunkit_addr_format(&i->mapping_external, e, sizeof(e));
            printf("{\"method\": \"%s\", \"external\": \"%s\"}, ", i->mapping_method, e);
        } else {
            printf("null, ");
        }
        report_spray(p);
        printf("\"timing\": {\"role_ms\": ");
        print_ms(i->role_ms);
        printf(", \"tcp_relay_ms\": ");
        print_ms(i->tcp_relay_ms);
        printf(", \"first_ping_ms\": ");
        print_ms(p->t_ping ? p->t_ping : UINT64_MAX);
        printf("}, ");
        printf("\"check_loss_pct\": %.1f, ", i->check_loss / 10.0);
        printf("\"rendezvous_loss_pct\": %.1f, ", i->rendezvous_loss / 10.0);
        printf("\"pings\": {\"sent\": %d, \"answered\": %d, \"resent\": %d, \"received\": %d}, ", p->sent,
               p->answered, p->resent, p->pings_rx);
        printf("\"bye\": {\"received\": %s, \"acknowledged\": %s}}\n", p->bye_rx ? "true" : "false",
               p->bye_acked ? "true" : "false");
    } else if (ok) {
        char l[STUNKIT_ADDRSTRLEN], r[STUNKIT_ADDRSTRLEN];
        stunkit_addr_format(&i->local.addr, l, sizeof(l));
        stunkit_addr_format(&i->remote.addr, r, sizeof(r));
        printf("path        %s: %s %s <-> %s %s (%s)\n", i->relayed ? "relay" : "direct",
               stunkit_ice_type_name(i->local.type), l, stunkit_ice_type_name(i->remote.type), r,
               strcmp(cand_protocol(p, &i->local, 1), "tcp") ? "udp" : i->tls ? "TLS to the relay" : "TCP to the relay");
        printf("connected   in %llu ms\n", (unsigned long long)i->connect_ms);
        if (i->upgraded_ms)
            printf("upgraded    relayed first, direct after %llu ms\n", (unsigned long long)i->upgraded_ms);
        if (i->mapped) {
            char e[STUNKIT_ADDRSTRLEN];
            stunkit_addr_format(&i->mapping_external, e, sizeof(e));
            printf("mapping     %s %s from the router\n", i->mapping_method, e);
        }
        if (i->birthday_direct)
            printf("birthday    direct after %llu ms: %s side, round %d, %ld probes\n", (unsigned long long)i->birthday_ms,
                   i->birthday_hard_side ? "the symmetric NAT's" : "the guessing", i->birthday_rounds, i->birthday_probes);
        else if (i->birthday_rounds)
            printf("birthday    no direct path: %s (%d rounds, %ld probes)\n", i->birthday_why, i->birthday_rounds,
                   i->birthday_probes);
        if (p->rtt_n)
            printf("pings       %d sent, %d answered (%d resent), rtt %.1f ms\n", p->sent, p->answered, p->resent,
                   p->rtt_sum / p->rtt_n);
        else if (p->answered)
            printf("pings       %d sent, %d answered (%d resent)\n", p->sent, p->answered, p->resent);
        else
            printf("pings       %d sent, none answered\n", p->sent);
        if (i->check_loss)
            printf("loss        %.1f%% of the checks' sends went unanswered\n", i->check_loss / 10.0);
        if (i->server_moves || i->tcp_relay_redirects) {
            char sv[STUNKIT_ADDRSTRLEN];
            stunkit_addr_format(&i->server, sv, sizeof(sv));
            printf("fleet       the rendezvous at %s (moved %u time%s), the TCP relay redirected %u time%s\n", sv,
                   i->server_moves, i->server_moves == 1 ? "" : "s", i->tcp_relay_redirects,
                   i->tcp_relay_redirects == 1 ? "" : "s");
        }
    } else if (!strncmp(why, "the rendezvous failed", 21)) {
        fprintf(stderr, "stunkit punch: %s\n", why);
    } else {
        fprintf(stderr, "stunkit punch: no path: %s\n", why);
    }
}

/* With --secret, a pasted token must be sealed with it: 0, or -1 after
 * saying why on stderr. */
static int token_sealed(const char *secret, const char *desc, const char *what)
{
    stunkit_secret s;
    size_t ok = 0;
    stunkit_secret_init(&s, secret, strlen(secret));
    int rv = stunkit_secret_open(&s, desc, strlen(desc), &ok);
    stunkit_secret_clear(&s);
    if (rv != 0 || !ok) {
        fprintf(stderr, "stunkit punch: the %s does not check against the secret (another secret, or changed on "
                        "the way): not used\n", what);
        return -1;
    }
    return 0;
}

/* The description to paste: the SDP lines (--sdp), or a token of them. */
static int describe(punch *p, int sdp, char *out, size_t cap)
{
    char desc[4096];
    int n = stunkit_peer_describe(p->peer, desc, sizeof(desc));
    if (n < 0)
        return -1;
    if (sdp) {
        if ((size_t)n + 1 > cap)
            return -1;
        memcpy(out, desc, (size_t)n + 1);
        return n;
    }
    return token_encode(desc, (size_t)n, out, cap);
}

int cmd_punch(int argc, char **argv)
{
    static const struct option opts[] = {{"offer", no_argument, NULL, 'o'},
                                         {"answer", required_argument, NULL, 'a'},
                                         {"username", required_argument, NULL, 'u'},
                                         {"password", required_argument, NULL, 'p'},
                                         {"count", required_argument, NULL, 'c'},
                                         {"timeout", required_argument, NULL, 'T'},
                                         {"wait", required_argument, NULL, 'w'},
                                         {"local", required_argument, NULL, 'l'},
                                         {"aggressive", no_argument, NULL, 'A'},
                                         {"sdp", no_argument, NULL, 'S'},
                                         {"no-map", no_argument, NULL, 'M'},
                                         {"no-spray", no_argument, NULL, 'B'},
                                         {"insecure", no_argument, NULL, 'k'},
                                         {"ca-file", required_argument, NULL, 'C'},
                                         {"json", no_argument, NULL, 'j'},
                                         {"secret", required_argument, NULL, 'K'},
                                         {"relay-only", no_argument, NULL, 'R'},
                                         {"forward", required_argument, NULL, 'F'},
                                         {"fallback", required_argument, NULL, 'f'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int offer = 0, json = 0, aggressive = 0, sdp = 0, map = 1, spray_on = 1, insecure = 0, relay_only = 0, c;
    int fwd_listen = 0, fwd_app = 0;
    char *end2 = NULL;
    const char *ca_file = NULL;
    long count = 5, timeout = 10000, wait_s = 120;
    const char *answer_tok = NULL, *user = NULL, *pass = getenv("STUNKIT_PASSWORD"), *room = NULL;
    const char *secret = getenv("STUNKIT_SECRET");
    char derived_room[40];
    const char *locals[MAX_SOCKS];
    int nlocals = 0;
    const char *fallbacks[7];
    int nfallbacks = 0;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":t:l:h", opts, NULL)) != -1) {
        const char *opt = argv[optind - 1];
        char *end;
        switch (c) {
        case 'o': offer = 1; break;
        case 'a': answer_tok = optarg; break;
        case 'u': user = optarg; break;
        case 'p': pass = optarg; break;
        case 'c':
            count = strtol(optarg, &end, 10);
            if (*end || count < 0 || count > 255) {
                fprintf(stderr, "stunkit punch: --count '%s': expected 0 to 255\n", optarg);
                return 2;
            }
            break;
        case 't':
        case 'T':
            timeout = strtol(optarg, &end, 10);
            if (*end || timeout < 100 || timeout > 600000) {
                fprintf(stderr, "stunkit punch: --timeout '%s': expected 100 to 600000 (ms)\n", optarg);
                return 2;
            }
            break;
        case 'w':
            wait_s = strtol(optarg, &end, 10);
            if (*end || wait_s < 1 || wait_s > 86400) {
                fprintf(stderr, "stunkit punch: --wait '%s': expected 1 to 86400 (seconds)\n", optarg);
                return 2;
            }
            break;
        case 'l':
            if (nlocals == MAX_SOCKS) {
                fprintf(stderr, "stunkit punch: at most %d --local addresses\n", MAX_SOCKS);
                return 2;
            }
            locals[nlocals++] = optarg;
            break;
        case 'f':
            if (nfallbacks == 7) {
                fprintf(stderr, "stunkit punch: at most 7 --fallback servers\n");
                return 2;
            }
            fallbacks[nfallbacks++] = optarg;
            break;
        case 'A': aggressive = 1; break;
        case 'S': sdp = 1; break;
        case 'M': map = 0; break;
        case 'B': spray_on = 0; break;
        case 'k': insecure = 1; break;
        case 'C': ca_file = optarg; break;
        case 'j': json = 1; break;
        case 'K': secret = optarg; break;
        case 'R': relay_only = 1; break;
        case 'F': {
            char *colon = strchr(optarg, ':');
            long lp = strtol(optarg, &end, 10), ap = colon ? strtol(colon + 1, &end2, 10) : 0;
            if (!colon || end != colon || *end2 || lp < 1 || lp > 65535 || ap < 1 || ap > 65535 || lp == ap) {
                fprintf(stderr, "stunkit punch: --forward '%s': expected LISTEN_PORT:APP_PORT (two ports of "
                                "127.0.0.1)\n", optarg);
                return 2;
            }
            fwd_listen = (int)lp;
            fwd_app = (int)ap;
            break;
        }
        case 'h': usage(stdout); return 0;
        case ':': fprintf(stderr, "stunkit punch: option %s needs a value\n", opt); return 2;
        default: fprintf(stderr, "stunkit punch: unknown option '%s' (try --help)\n", opt); return 2;
        }
    }
    if (optind >= argc || optind + 2 < argc) {
        fprintf(stderr, "stunkit punch: %s (try --help)\n", optind >= argc ? "SERVER is missing" : "expected SERVER [ROOM]");
        return 2;
    }
    if (optind + 2 == argc)
        room = argv[optind + 1];
    if (secret && !*secret)
        secret = NULL; /* STUNKIT_SECRET= (empty): none */
    if (secret && sdp) {
        fprintf(stderr, "stunkit punch: --secret seals stunkit's own descriptions: not with --sdp (another agent)\n");
        return 2;
    }
    if (room && secret && !stunkit_rdv_room_valid(room, strlen(room))) {
        fprintf(stderr, "stunkit punch: room '%s': expected 1 to 64 of A-Z a-z 0-9 . _ ~ -\n", room);
        return 2;
    }
    stunkit_secret sec;
    const char *given_room = room; /* with a secret the peer derives the room from it */
    if (secret) {
        stunkit_secret_init(&sec, secret, strlen(secret));
        /* the room (given or not) comes from the secret: a stranger cannot
         * find it by its name */
        if (!offer && !answer_tok) {
            stunkit_secret_room(&sec, room, derived_room, sizeof(derived_room));
            room = derived_room;
        }
    }
    if (room) {
        if (offer || answer_tok || sdp) {
            fprintf(stderr, "stunkit punch: a ROOM does the signalling: no --offer, --answer or --sdp with it\n");
            return 2;
        }
        if (!stunkit_rdv_room_valid(room, strlen(room))) {
            fprintf(stderr, "stunkit punch: room '%s': expected 1 to 64 of A-Z a-z 0-9 . _ ~ -\n", room);
            return 2;
        }
        if (!user) {
            fprintf(stderr, "stunkit punch: a ROOM needs the server's credentials (--username, --password)\n");
            return 2;
        }
    } else if (offer == !!answer_tok) {
        fprintf(stderr, "stunkit punch: choose ROOM (or --secret), --offer or --answer TOKEN\n");
        return 2;
    }
    if (relay_only && !user) {
        fprintf(stderr, "stunkit punch: --relay-only needs a relay: the server's credentials (--username, --password)\n");
        return 2;
    }
    if (user && !(pass && *pass)) {
        fprintf(stderr, "stunkit punch: --username needs --password (or STUNKIT_PASSWORD)\n");
        return 2;
    }
    if (!user)
        pass = NULL;
    char offer_desc[4096];
    int offer_from_stdin = answer_tok && !strcmp(answer_tok, "-");
    if (answer_tok && sdp && !offer_from_stdin) {
        fprintf(stderr, "stunkit punch: with --sdp, the offer comes on stdin: --answer -\n");
        return 2;
    }
    if (answer_tok && !offer_from_stdin && token_decode(answer_tok, offer_desc, sizeof(offer_desc)) < 0) {
        fprintf(stderr, "stunkit punch: --answer: not an offer token (it starts with SK1.)\n");
        return 2;
    }
    stunkit_server srv;
    if (stunkit_server_parse(argv[optind], &srv) != 0) {
        fprintf(stderr, "stunkit punch: '%s': expected host[:port] or a stun:, stuns:, turn: or turns: URI\n",
                argv[optind]);
        return 2;
    }
    for (int i = 0; i < nfallbacks; i++) {
        stunkit_server fb;
        if (stunkit_server_parse(fallbacks[i], &fb) != 0) {
            fprintf(stderr, "stunkit punch: --fallback '%s': expected host[:port] or a stun:, stuns:, turn: or turns: "
                            "URI\n", fallbacks[i]);
            return 2;
        }
        if (fb.secure != srv.secure) {
            fprintf(stderr, "stunkit punch: --fallback '%s': %s\n", fallbacks[i],
                    srv.secure ? "SERVER is TLS (turns:): the fallbacks must be too"
                               : "SERVER is not TLS: nor may a fallback be (turns:, stuns:)");
            return 2;
        }
    }
    if (nfallbacks && !room) {
        fprintf(stderr, "stunkit punch: --fallback is for the rendezvous (a ROOM or --secret)\n");
        return 2;
    }
    if ((insecure || ca_file) && !srv.secure) {
        fprintf(stderr, "stunkit punch: --%s is for a TLS server (a turns: or stuns: URI)\n",
                insecure ? "insecure" : "ca-file");
        return 2;
    }
    if (insecure && ca_file) {
        fprintf(stderr, "stunkit punch: --insecure and --ca-file contradict each other\n");
        return 2;
    }
    if (secret)
        stunkit_secret_clear(&sec);

    punch p;
    memset(&p, 0, sizeof(p));
    p.count = (int)count;
    p.fwd_fd = -1;
    p.have_secret = secret != NULL;
    p.tracing = getenv("STUNKIT_TRACE") && *getenv("STUNKIT_TRACE") == '1';
    if (fwd_listen) {
        stunkit_addr la;
        struct sockaddr_storage ss;
        stunkit_addr_parse("127.0.0.1", (uint16_t)fwd_listen, &la);
        stunkit_addr_parse("127.0.0.1", (uint16_t)fwd_app, &p.fwd_app);
        int sl = stunkit_addr_to_sockaddr(&la, &ss);
        p.fwd_fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (p.fwd_fd < 0 || bind(p.fwd_fd, (struct sockaddr *)&ss, (socklen_t)sl) != 0) {
            fprintf(stderr, "stunkit punch: --forward: cannot listen on 127.0.0.1:%d: %s\n", fwd_listen, strerror(errno));
            return 1;
        }
    }
    if (!secret && room && isatty(2)) {
        /* said to a person at a terminal (scripts read one line of error) */
        fprintf(stderr, "stunkit punch: no --secret: whoever comes to room '%s' first is taken for the peer "
                        "(give both sides --secret to authenticate each other)\n", room);
    }

    stunkit_peer_config cfg = STUNKIT_CONFIG_INIT(cfg);
    cfg.server = argv[optind];
    cfg.fallback_servers = fallbacks;
    cfg.n_fallback_servers = (size_t)nfallbacks;
    cfg.username = user;
    cfg.password = pass;
    cfg.ca_file = ca_file;
    cfg.tls_insecure = insecure;
    cfg.room = room ? (secret ? given_room : room) : NULL;
    cfg.secret = secret;
    cfg.own_signalling = !room;
    cfg.controlling = offer;
    cfg.relay_only = relay_only;
    cfg.no_port_mapping = !map;
    cfg.no_guessing = !spray_on;
    cfg.aggressive = aggressive;
    cfg.local_addresses = locals;
    cfg.n_local_addresses = (size_t)nlocals;
    cfg.connect_timeout_ms = (uint32_t)timeout;
    cfg.on_event = on_event;
    cfg.on_data = on_data;
    cfg.user = &p;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    p.t0 = stunkit_now_ms();
    int err = 0;
    char why[200];
    p.peer = stunkit_peer_new(&cfg, &err, why, sizeof(why));
    if (!p.peer) {
        fprintf(stderr, "stunkit punch: %s\n", why[0] ? why : stunkit_strerror(err));
        if (p.fwd_fd >= 0)
            close(p.fwd_fd);
        return err == STUNKIT_ERR_INVAL || err == STUNKIT_ERR_BAD_ADDRESS ? 2 : 1;
    }
    stunkit_peer_get_info(p.peer, &p.info);

    int rc = 1;
    char tok[8192];
    if (room) {
        /* the room first: it says who offers */
        run(&p, stunkit_now_ms() + 30000, has_role);
        if (!p.info.role_known)
            goto report;
        if (!json)
            printf("room        %s: %s\n", room,
                   p.info.controlling ? "first in the room (offering), waiting for the peer"
                                      : "the peer is there (answering)");
        fflush(stdout);
        run(&p, stunkit_now_ms() + (uint64_t)wait_s * 1000u, peer_ready);
        if (!p.info.peer_ready)
            goto report;
        p.stretch = 1;
        /* the peer's own deadline (timeout after the description, stretched
         * by loss) ends it: this one is only a backstop */
        run(&p, stunkit_now_ms() + (uint64_t)timeout * STRETCH_MAX * 2 + 1000u, is_connected);
    } else {
        /* gather first (no trickle through a pasted token), at most 5 s */
        run(&p, stunkit_now_ms() + 5000, is_gathered);
        if (offer_from_stdin && read_description(sdp, offer_desc, sizeof(offer_desc)) < 0) {
            fprintf(stderr, "stunkit punch: expected the offer on stdin (%s)\n", sdp ? "SDP lines" : "SK1.... token");
            goto out;
        }
        if (answer_tok) {
            if (secret && token_sealed(secret, offer_desc, "offer") != 0)
                goto out;
            if (stunkit_peer_apply(p.peer, offer_desc, strlen(offer_desc)) < 0) {
                fprintf(stderr, "stunkit punch: the offer carries a malformed description\n");
                goto out;
            }
        }
        if (describe(&p, sdp, tok, sizeof(tok)) < 0) {
            fprintf(stderr, "stunkit punch: the description does not fit\n");
            goto out;
        }
        printf("%s\n", tok); /* a token, or the SDP lines then the empty line */
        fflush(stdout);
        if (offer) {
            char desc[4096];
            if (read_description(sdp, desc, sizeof(desc)) < 0) {
                fprintf(stderr, "stunkit punch: expected the answer on stdin (%s)\n", sdp ? "SDP lines" : "SK1.... token");
                goto out;
            }
            if (secret && token_sealed(secret, desc, "answer") != 0)
                goto out;
            if (stunkit_peer_apply(p.peer, desc, strlen(desc)) < 0) {
                fprintf(stderr, "stunkit punch: the answer carries a malformed description\n");
                goto out;
            }
        }
        p.stretch = 1;
        run(&p, stunkit_now_ms() + (uint64_t)timeout * STRETCH_MAX * 2 + 1000u, is_connected);
    }
    if (connected(&p)) {
        /* the pings go once birthday punching (if it pays) is over, each
         * resent until answered */
        run(&p, stunkit_now_ms() + (uint64_t)count * PING_EVERY_MS + 3000u +
                    STUNKIT_PEER_GUESS_ROUNDS * 500u + 2000u, pings_done);
        int forwarded = 0;
        if (p.fwd_fd >= 0 && !stop) {
            /* the local application's datagrams both ways, across path
             * changes, until Ctrl-C / SIGTERM, the peer's bye or lost
             * consent */
            fprintf(json ? stderr : stdout,
                    "forwarding  127.0.0.1:%d <-> the peer's application over the %s path (Ctrl-C ends it)\n",
                    fwd_listen, p.info.relayed ? "relayed" : "direct");
            fflush(json ? stderr : stdout);
            run(&p, stunkit_now_ms() + 10ull * 365 * 86400000u, forwarding_over);
            forwarded = 1;
            stop = 0; /* the usual end of a forwarder: the bye below goes */
        }
        send_bye(&p, stunkit_now_ms());
        /* keep answering the other side's pings until it says bye */
        run(&p, stunkit_now_ms() + 3000, bye_done);
        /* success: connected, and data went both ways (a ping of ours
         * answered, or the peer's pings came and it says ours were) */
        rc = !p.count || p.answered > 0 || (p.pings_rx > 0 && p.peer_answered > 0) ? 0 : 1;
        if (forwarded && p.info.state == STUNKIT_PEER_DISCONNECTED)
            rc = 1; /* the path went away under the forwarded traffic */
    }
    p.talk_over = 1;
report:
    if (stop)
        rc = 130; /* interrupted: what is known is reported, then everything is released */
    stunkit_peer_get_info(p.peer, &p.info);
    report(&p, room, json);
out:
    p.talk_over = 1;
    if (p.fwd_fd >= 0)
        close(p.fwd_fd);
    /* the router's mapping deleted, the allocations freed, the room left */
    stunkit_peer_free(p.peer);
    return rc;
}
