/*
 * cmd_punch.c - `stunkit punch SERVER`: two peers behind NATs find each
 * other and talk, directly where the NATs allow, through the TURN relay
 * where they do not. The ICE agent is stunkit/ice.h; this file owns the
 * sockets (one per local address), the clock, the signalling and the pings.
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
#include "map_upnp.h"
#include "stunkit/stunkit.h"

#define MAX_SOCKS (STUNKIT_ICE_MAX_BASES - 1) /* one base left for the TURN-over-TCP stream */
#define PING_MAGIC "SKP1 "
#define TURN_STREAM 100   /* the agent's name for the TURN-over-TCP connection */
#define RDV_UDP_MS 1000u  /* the rendezvous goes over TCP when UDP has no answer by then */
#define TCP_RELAY_MS 1000u /* TURN over TCP when the server has not answered over UDP by then */
#define MAP_WAIT_MS 1000u  /* a router that has not answered PCP / NAT-PMP by then has neither */
#define UPNP_SEARCH_MS 600u /* UPnP: two SSDP searches (IGD:2, IGD:1) of 300 ms each (a LAN answers in ms) */
#define UPNP_WAIT_MS 1500u  /* ... then HTTP to the IGD: called off after this */
#define MAP_LIFETIME_S 600u /* renewed while we run, deleted when we end */
/* Birthday-paradox punching through a symmetric NAT (after the relay): the
 * hard side opens SPRAY_SOCKS mappings, the easy side guesses SPRAY_GUESSES
 * ports; a round hits with 1 - exp(-256 * 1024 / 64511) = 98% (measured in
 * the lab: 50 of 50), at most SPRAY_ROUNDS rounds of SPRAY_ROUND_MS. */
#define SPRAY_SOCKS 256
#define SPRAY_GUESSES 1024
#define SPRAY_ROUNDS 3
#define SPRAY_ROUND_MS 500u
/* What a run may send while guessing, in the spirit of RFC 8445's pacing
 * (14.2: checks are paced so that an agent cannot be used to flood): at
 * most SPRAY_PPS datagrams a second (a burst of SPRAY_SOCKS, the hard
 * side's round), at most SPRAY_BUDGET in all, and only ever to the IP
 * address the peer has proven with an authenticated ICE check (or that the
 * TURN server saw its checks come from), never to an address it merely
 * named in a candidate. */
#define SPRAY_PPS 2500
#define SPRAY_BUDGET (SPRAY_ROUNDS * (SPRAY_SOCKS + SPRAY_GUESSES))
#define SPRAY_MAGIC "SKB1 "
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
               "  -t, --timeout MS   give up connecting MS after the peer's description came\n"
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
            SPRAY_SOCKS, SPRAY_GUESSES, SPRAY_PPS, SPRAY_BUDGET);
}

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

typedef struct sock {
    int fd;
    stunkit_addr local;
} sock;

/* A TCP connection to the server: TURN (a relayed candidate that needs no
 * UDP to the server) or the rendezvous when UDP goes unanswered. */
typedef struct stream {
    int fd;         /* -1: none */
    stunkit_link *link; /* TLS (SERVER a turns: or stuns: URI): framed by the link */
    int connected, added, closed;
    stunkit_addr local;
    uint8_t rx[16384];
    size_t rx_len;
} stream;

/* A port mapping asked of the router for the socket on the way to it: a
 * candidate that lets the peer in even through a NAT whose own mappings
 * depend on the destination. PCP or NAT-PMP (stunkit/portmap.h) and UPnP
 * IGD (map_upnp.h, its own thread) are asked at once; the first mapping is
 * the candidate, one the other method grants later is given back. */
enum { UPNP_NONE, UPNP_ASKING, UPNP_MAPPED, UPNP_DONE };
enum { MAP_NONE, MAP_PCP, MAP_UPNP }; /* whose mapping is the candidate */
typedef struct portmap {
    stunkit_portmap *m;
    int fd;               /* connected to the gateway's 5351, from the base's address */
    int base;             /* the socket mapped (index), -1: none */
    int settled;          /* mapped, refused, or no answer in time: gathering may end */
    int mapped;           /* PCP / NAT-PMP holds a mapping */
    map_upnp *u;
    int u_state;
    int use;              /* MAP_PCP or MAP_UPNP once a candidate came */
    int asked;            /* portmap_start() asked the router */
    uint64_t deadline, u_deadline;
    stunkit_addr gateway, external;
    stunkit_portmap_method method;
} portmap;

/* The birthday-paradox upgrade from the relay to a direct path, tried only
 * where it pays: the path is relayed, both sides have a public address,
 * one NAT's mapping depends on the destination (its side saw a
 * peer-reflexive address of its own with another port than the server saw,
 * or the other side saw its checks come from such a port: RFC 4787
 * address-and-port-dependent mapping) and the other's provably does not
 * (its checks to the peer's relay, another destination than the server,
 * left from its server-reflexive address). The sides tell each other what
 * they saw over the relay ("SKP1 nat SELF PEER": hard, easy or unknown);
 * without evidence both ways (loss, say) nothing is tried. */
typedef enum { SPRAY_IDLE, SPRAY_TOLD, SPRAY_RUNNING, SPRAY_DIRECT, SPRAY_OFF } spray_state;

typedef struct spray {
    spray_state state;
    int self_hard;            /* our NAT maps per destination (we or the peer saw it) */
    int self_easy;            /* it does not: our checks to the peer's relay left from our srflx */
    int peer_seen_hard;       /* the peer's checks came from another port than its srflx */
    int peer_kind;            /* what the peer said of itself: 0 nothing yet, 1 easy, 2 hard, 3 off, 4 unknown */
    int peer_sees_us_hard;
    int peer_sees_us_easy;    /* the peer saw our checks come from our srflx exactly */
    int peer_seen_easy;       /* the peer's checks came from its srflx exactly (to another destination than the server) */
    int go;                   /* easy side: the peer's round number to guess for */
    int round, fds[SPRAY_SOCKS], nfds;
    int base;                 /* the socket whose srflx the peer knows */
    stunkit_addr self_srflx, peer_srflx;
    long guesses, guessed;    /* easy side: this round's target and progress */
    uint8_t used[65536 / 8];
    uint64_t start, round_end, ms, told_at;
    uint64_t at;              /* the direct path found, ms after the checks started */
    int answer;               /* the peer asked ("?"): tell it once more */
    long sent;                /* probes sent, all rounds (at most SPRAY_BUDGET) */
    double tokens;            /* the pacing bucket: SPRAY_PPS, a burst of SPRAY_SOCKS */
    uint64_t tokens_at;
    /* the direct path found: from fds[sock] (hard) or socks[base] (easy) */
    int sock;
    stunkit_addr to, self_mapped;
    char why[96];             /* why it was not tried */
} spray;

typedef struct punch {
    stunkit_ice *ice;
    spray sp;
    int spray_on;       /* --no-spray: never */
    portmap pm;
    int map;            /* ask the router for a port (--no-map: do not) */
    sock socks[MAX_SOCKS];
    int nsocks;
    int gathered, connected, failed, disconnected;
    int selected;       /* ICE selected a pair (sel_local, sel_remote) */
    stunkit_addr server;
    /* the streams' server: SERVER over TCP, or over TLS (its own port) */
    stunkit_addr stream_server;
    int tls, insecure;
    const char *tls_name, *ca_file;
    char tls_error[160];
    stream turn_tcp;
    int tcp_relay;      /* credentials given: TURN over TCP is the fallback */
    int udp_server_ok;  /* the server answered over UDP (a candidate from it, or the rendezvous) */
    uint64_t t0;
    /* timing, ms after the start (t0): the room said our role, TURN over
     * TCP was opened, the first ping went (0: not) */
    uint64_t t_role, t_tcp_relay, t_ping;
    int tcp_relay_opened;
    /* the rendezvous (ROOM mode) */
    stunkit_rdv *rdv;
    stream rdv_tcp;
    int rdv_on_tcp, udp_refused; /* udp_refused: ICMP said no to UDP to the server */
    uint64_t rdv_start;
    int rdv_fd, role_known, offerer, rdv_failed, rdv_left;
    char local_desc[STUNKIT_RDV_DESC_MAX];
    size_t local_len;
    char peer_desc[STUNKIT_RDV_DESC_MAX + 1];
    size_t peer_len, peer_applied;
    int peer_ready; /* the peer's credentials are applied */
    /* --secret (stunkit/secret.h): ICE passwords derived, never sent;
     * descriptions sealed, and only what a seal covers is used */
    int have_secret;
    stunkit_secret secret;
    int relay_only; /* --relay-only: relayed candidates only (the agent's relay_only) */
    /* --forward LISTEN:APP: the local application's datagrams (to
     * 127.0.0.1:LISTEN) go to the peer, the peer's to 127.0.0.1:APP */
    int fwd_fd;
    stunkit_addr fwd_app;
    unsigned long fwd_out, fwd_in, fwd_dropped;
    char ufrag[9], pwd[33];
    uint64_t peer_ms;
    char reason[160];
    stunkit_ice_candidate sel_local, sel_remote;
    uint64_t start_ms, connect_ms;
    uint64_t upgraded_ms; /* renomination moved a relayed path to a direct one then (0: not) */
    int json;
    int stretch;        /* run(): the deadline grows with the loss the checks saw */
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
} punch;

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

/* ---- sockets ---- */

static int open_sock(punch *p, const stunkit_addr *ip)
{
    if (p->nsocks == MAX_SOCKS)
        return -1;
    struct sockaddr_storage ss;
    stunkit_addr a = *ip;
    a.port = 0;
    int sl = stunkit_addr_to_sockaddr(&a, &ss);
    int fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
    if (ss.ss_family == AF_INET6) {
        int one = 1;
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    }
    struct sockaddr_storage mine;
    socklen_t ml = sizeof(mine);
    if (bind(fd, (struct sockaddr *)&ss, (socklen_t)sl) != 0 || getsockname(fd, (struct sockaddr *)&mine, &ml) != 0) {
        close(fd);
        return -1;
    }
    sock *s = &p->socks[p->nsocks++];
    s->fd = fd;
    stunkit_addr_from_sockaddr(&s->local, (struct sockaddr *)&mine);
    return 0;
}

/* 1 for an interface without a link layer of its own (ARPHRD_NONE: tun
 * devices, WireGuard, other layer-3 tunnels): a path through it may be a
 * path through the very tunnel punch carries (--forward), which would
 * carry itself; ICE must not find it. (A PPP uplink is ARPHRD_PPP: kept.) */
static int tunnel_interface(const char *name)
{
    char path[128], buf[16];
    snprintf(path, sizeof(path), "/sys/class/net/%s/type", name);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    int tunnel = fgets(buf, sizeof(buf), f) && atoi(buf) == 65534;
    fclose(f);
    return tunnel;
}

/* Every usable local address: up, not loopback (unless the server is on
 * loopback), not on a tunnel interface, IPv6 only global or unique-local. */
static void open_all(punch *p, const stunkit_addr *server)
{
    struct ifaddrs *ifs, *i;
    int loop_server = (server->family == STUNKIT_AF_INET && server->ip[0] == 127) ||
                      (server->family == STUNKIT_AF_INET6 && !memcmp(server->ip, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\1", 16));
    if (getifaddrs(&ifs) != 0)
        return;
    for (i = ifs; i; i = i->ifa_next) {
        if (!i->ifa_addr || !(i->ifa_flags & IFF_UP))
            continue;
        if (i->ifa_addr->sa_family != AF_INET && i->ifa_addr->sa_family != AF_INET6)
            continue;
        stunkit_addr a;
        if (stunkit_addr_from_sockaddr(&a, i->ifa_addr) != 0)
            continue;
        int loop = (i->ifa_flags & IFF_LOOPBACK) != 0;
        if (loop != loop_server)
            continue;
        if (a.family == STUNKIT_AF_INET6 && !loop && (a.ip[0] == 0xfe && (a.ip[1] & 0xc0) == 0x80))
            continue; /* link-local: needs a scope, and the peer is not on this link */
        if (tunnel_interface(i->ifa_name))
            continue;
        open_sock(p, &a);
    }
    freeifaddrs(ifs);
}

/* A whole message to the server over a stream (TLS: through the link). */
static void stream_send(stream *st, const uint8_t *data, size_t len)
{
    if (st->link)
        (void)stunkit_link_send(st->link, data, len, 1000);
    else
        (void)send(st->fd, data, len, MSG_NOSIGNAL);
}

/* ---- the port mapping (PCP / NAT-PMP) ---- */

/* Asks the default gateway for a mapping of the socket whose address is the
 * way to it. Nothing to ask (no gateway, no such socket): settled at once. */
static void portmap_start(punch *p, uint64_t now)
{
    portmap *pm = &p->pm;
    pm->fd = pm->base = -1;
    pm->settled = 1;
    /* a server on loopback: a test on this host, nothing to ask a router */
    if (!p->map || (p->server.family == STUNKIT_AF_INET && p->server.ip[0] == 127) ||
        p->server.family != STUNKIT_AF_INET || cli_default_gateway(STUNKIT_AF_INET, &pm->gateway) != 0)
        return;
    pm->gateway.port = STUNKIT_PORTMAP_PORT;
    struct sockaddr_storage ss, mine;
    socklen_t ml = sizeof(mine);
    int sl = stunkit_addr_to_sockaddr(&pm->gateway, &ss);
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    stunkit_addr src;
    if (fd < 0 || connect(fd, (struct sockaddr *)&ss, (socklen_t)sl) != 0 ||
        getsockname(fd, (struct sockaddr *)&mine, &ml) != 0 || stunkit_addr_from_sockaddr(&src, (struct sockaddr *)&mine) != 0) {
        if (fd >= 0)
            close(fd);
        return;
    }
    for (int i = 0; i < p->nsocks; i++)
        if (p->socks[i].local.family == src.family && !memcmp(p->socks[i].local.ip, src.ip, 4))
            pm->base = i;
    stunkit_portmap_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.size = sizeof(cfg);
    cfg.gateway = pm->gateway;
    cfg.protocol = 17;
    cfg.lifetime_s = MAP_LIFETIME_S;
    cfg.method = STUNKIT_PORTMAP_AUTO;
    cfg.env.random = stunkit_random_os;
    if (pm->base >= 0) {
        cfg.internal = p->socks[pm->base].local;
        pm->m = stunkit_portmap_new(&cfg, now);
        if (stunkit_upnp_available()) {
            stunkit_addr gw = pm->gateway;
            gw.port = 0;
            pm->u = map_upnp_start(&gw, &cfg.internal, 17, cfg.internal.port, MAP_LIFETIME_S, (int)UPNP_SEARCH_MS);
            pm->u_state = pm->u ? UPNP_ASKING : UPNP_NONE;
        }
    }
    if (!pm->m) {
        close(fd);
        fd = -1;
    }
    if (!pm->m && !pm->u) {
        pm->base = -1;
        return;
    }
    pm->fd = fd;
    pm->settled = 0;
    pm->asked = 1;
    pm->deadline = now + MAP_WAIT_MS;
    pm->u_deadline = now + UPNP_WAIT_MS;
}

/* The mapping of one method: the candidate if it is the first (or its
 * renewal moved), 0; -1 when the other method's mapping is the candidate. */
static int portmap_candidate(punch *p, int who, const stunkit_portmap_output *o, uint64_t now)
{
    portmap *pm = &p->pm;
    if (pm->use && pm->use != who)
        return -1;
    pm->use = who;
    pm->method = o->method;
    /* a router that does not tell its external address (some NAT-PMP ones
     * when asked in PCP, an IGD without GetExternalIPAddress) gives no
     * candidate */
    if (o->external.family && memcmp(o->external.ip, "\0\0\0\0", 4) && !stunkit_addr_equal(&o->external, &pm->external)) {
        pm->external = o->external;
        stunkit_ice_candidate c;
        memset(&c, 0, sizeof(c));
        c.type = STUNKIT_ICE_TYPE_SRFLX; /* RFC 8445 5.1.1.2: mapped like a NAT's, signalled as srflx */
        c.addr = o->external;
        c.related = p->socks[pm->base].local;
        c.base = pm->base;
        if (p->ice)
            stunkit_ice_add_local(p->ice, &c, now);
    }
    return 0;
}

static void portmap_settle(punch *p, uint64_t now)
{
    if (p->pm.settled)
        return;
    p->pm.settled = 1;
    if (p->ice)
        stunkit_ice_local_done(p->ice, now);
}

/* Gathering may end once a mapping is a candidate, or both methods are out:
 * PCP / NAT-PMP unanswered after MAP_WAIT_MS, UPnP after UPNP_WAIT_MS (its
 * search is then called off). A network without either router waits
 * about 1 s, PCP's and NAT-PMP's silence. */
static void portmap_check(punch *p, uint64_t now)
{
    portmap *pm = &p->pm;
    if (pm->settled || !pm->asked)
        return;
    if (now >= pm->u_deadline && pm->u_state == UPNP_ASKING) {
        map_upnp_stop(pm->u, 1); /* a mapping made just now is deleted, not left to lapse */
        pm->u_state = UPNP_DONE;
    }
    if (pm->use || ((!pm->m || now >= pm->deadline) && pm->u_state != UPNP_ASKING))
        portmap_settle(p, now);
}

/* When the mapping attempts next need a look (UINT64_MAX: not). */
static uint64_t portmap_next(const portmap *pm)
{
    uint64_t next = pm->m ? stunkit_portmap_timeout(pm->m) : UINT64_MAX;
    if (!pm->settled) {
        if (pm->m && pm->deadline < next)
            next = pm->deadline;
        if (pm->u_state == UPNP_ASKING && pm->u_deadline < next)
            next = pm->u_deadline;
    }
    return next;
}

static void pump_upnp(punch *p, uint64_t now)
{
    portmap *pm = &p->pm;
    map_upnp_event ev;
    while (pm->u && map_upnp_poll(pm->u, &ev) == 1) {
        switch (ev.o.event) {
        case STUNKIT_PORTMAP_EVENT_MAPPED:
        case STUNKIT_PORTMAP_EVENT_RENEWED:
            if (pm->u_state == UPNP_DONE)
                break; /* called off meanwhile: the thread deletes it or lets it lapse */
            pm->u_state = UPNP_MAPPED;
            if (portmap_candidate(p, MAP_UPNP, &ev.o, now) < 0) { /* PCP came first: give it back */
                map_upnp_stop(pm->u, 1);
                pm->u_state = UPNP_DONE;
            }
            break;
        case STUNKIT_PORTMAP_EVENT_FAILED:
        case STUNKIT_PORTMAP_EVENT_DELETED: pm->u_state = UPNP_DONE; break;
        default: break;
        }
    }
    portmap_check(p, now);
}

/* A router that mapped nothing has nothing to renew or delete. */
static void portmap_stop(portmap *pm)
{
    stunkit_portmap_free(pm->m);
    pm->m = NULL;
    if (pm->fd >= 0)
        close(pm->fd);
    pm->fd = -1;
}

static void pump_pm(punch *p, uint64_t now)
{
    portmap *pm = &p->pm;
    stunkit_portmap_output o;
    pump_upnp(p, now);
    if (!pm->m)
        return;
    for (int pr; pm->m && (pr = stunkit_portmap_poll(pm->m, now, &o)) != 0;) {
        if (pr < 0)
            continue; /* STUNKIT_ERR_NOBUF: events were lost; the rest follow */
        if (o.send) {
            /* an ICMP error for the previous datagram is reported here */
            if (send(pm->fd, o.data, o.len, 0) < 0 && errno == ECONNREFUSED) {
                portmap_stop(pm);
                portmap_check(p, now);
                return;
            }
            continue;
        }
        switch (o.event) {
        case STUNKIT_PORTMAP_EVENT_MAPPED:
        case STUNKIT_PORTMAP_EVENT_RENEWED:
            pm->mapped = 1;
            if (portmap_candidate(p, MAP_PCP, &o, now) < 0) /* UPnP came first: give it back */
                stunkit_portmap_delete(pm->m, now);
            break;
        case STUNKIT_PORTMAP_EVENT_FAILED:
        case STUNKIT_PORTMAP_EVENT_DELETED:
            pm->mapped = 0;
            portmap_stop(pm);
            break;
        default: break;
        }
    }
    if (pm->m && !pm->mapped && !pm->settled && now >= pm->deadline)
        portmap_stop(pm);
    portmap_check(p, now);
}

static void portmap_readable(punch *p)
{
    uint8_t buf[1100];
    ssize_t n;
    while (p->pm.fd >= 0 && ((n = recv(p->pm.fd, buf, sizeof(buf), 0)) >= 0 || errno == ECONNREFUSED)) {
        uint64_t now = stunkit_now_ms();
        if (n < 0) { /* ICMP: the router runs neither PCP nor NAT-PMP */
            portmap_stop(&p->pm);
            portmap_check(p, now);
            return;
        }
        stunkit_portmap_input(p->pm.m, p->pm.fd, &p->pm.gateway, buf, (size_t)n, now);
        pump_pm(p, now);
    }
}

/* At the end: the router removes the mappings (PCP and NAT-PMP answer at
 * once; half a second at most; UPnP's thread deletes its own, a second at
 * most, and is waited for). */
static void portmap_end(punch *p)
{
    portmap *pm = &p->pm;
    if (pm->u) {
        if (pm->u_state == UPNP_MAPPED) {
            map_upnp_stop(pm->u, 1);
            uint64_t end = stunkit_now_ms() + 1000;
            map_upnp_event ev;
            for (int gone = 0; !gone && stunkit_now_ms() < end;) {
                struct pollfd pf = {map_upnp_fd(pm->u), POLLIN, 0};
                (void)poll(&pf, 1, 100);
                while (map_upnp_poll(pm->u, &ev) == 1)
                    gone |= ev.o.event == STUNKIT_PORTMAP_EVENT_DELETED || ev.o.event == STUNKIT_PORTMAP_EVENT_FAILED;
            }
        }
        map_upnp_free(pm->u);
        pm->u = NULL;
        pm->u_state = UPNP_NONE;
    }
    if (pm->m && pm->mapped && stunkit_portmap_delete(pm->m, stunkit_now_ms()) == 0) {
        uint64_t end = stunkit_now_ms() + 500;
        while (pm->m && pm->mapped) {
            uint64_t now = stunkit_now_ms();
            pump_pm(p, now);
            if (!pm->m || now >= end)
                break;
            struct pollfd pf = {pm->fd, POLLIN, 0};
            uint64_t next = stunkit_portmap_timeout(pm->m);
            if (next > end)
                next = end;
            if (poll(&pf, 1, next > now ? (int)(next - now) : 0) > 0)
                portmap_readable(p);
        }
    }
    portmap_stop(pm);
}

/* ---- the loop ---- */

static void send_route(punch *p, const stunkit_ice_route *r)
{
    if (r->base == TURN_STREAM) {
        if (p->turn_tcp.connected && !p->turn_tcp.closed)
            stream_send(&p->turn_tcp, r->data, r->len);
        return;
    }
    for (int i = 0; i < p->nsocks; i++) {
        if (i != r->base)
            continue;
        struct sockaddr_storage ss;
        int sl = stunkit_addr_to_sockaddr(&r->to, &ss);
        sendto(p->socks[i].fd, r->data, r->len, 0, (struct sockaddr *)&ss, (socklen_t)sl);
    }
}

static int selected_relayed(const punch *p)
{
    return p->selected && (p->sel_local.type == STUNKIT_ICE_TYPE_RELAY || p->sel_remote.type == STUNKIT_ICE_TYPE_RELAY);
}

/* STUNKIT_TRACE=1: what happens, with the time since the start, on stderr
 * (for debugging a lab run) */
static int tracing = -1;

__attribute__((format(printf, 3, 4))) static void trace(const punch *p, uint64_t now, const char *fmt, ...)
{
    if (tracing < 0)
        tracing = getenv("STUNKIT_TRACE") && *getenv("STUNKIT_TRACE") == '1';
    if (!tracing)
        return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "trace %6llu ms: ", (unsigned long long)(now - p->t0));
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static void trace_cand(const punch *p, uint64_t now, const char *what, const stunkit_ice_candidate *c)
{
    char line[300];
    if (stunkit_ice_candidate_format(c, line, sizeof(line)) > 0)
        trace(p, now, "%s %s", what, line);
}

static void seal_local(punch *p);

static void pump(punch *p, uint64_t now)
{
    stunkit_ice_output o;
    for (int pr; (pr = stunkit_ice_poll(p->ice, now, &o)) != 0;) {
        if (pr < 0)
            continue; /* STUNKIT_ERR_NOBUF: events were lost; the rest follow */
        if (o.send) {
            stunkit_ice_route r = {o.base, o.to, o.data, o.len, 0};
            send_route(p, &r);
            continue;
        }
        switch (o.event) {
        case STUNKIT_ICE_EVENT_CANDIDATE:
            trace_cand(p, now, "local", &o.local);
            if ((o.local.type == STUNKIT_ICE_TYPE_SRFLX || o.local.type == STUNKIT_ICE_TYPE_RELAY) && o.local.base != TURN_STREAM)
                p->udp_server_ok = 1;
            /* trickle: our description only grows, line by line */
            if (p->rdv && p->local_len + 260 < sizeof(p->local_desc)) {
                memcpy(p->local_desc + p->local_len, "a=", 2);
                int n = stunkit_ice_candidate_format(&o.local, p->local_desc + p->local_len + 2,
                                                     sizeof(p->local_desc) - p->local_len - 4);
                if (n > 0) {
                    memcpy(p->local_desc + p->local_len + 2 + n, "\r\n", 2);
                    p->local_len += 2 + (size_t)n + 2;
                    seal_local(p);
                    stunkit_rdv_set_description(p->rdv, p->local_desc, p->local_len, now);
                }
            }
            break;
        case STUNKIT_ICE_EVENT_GATHERED:
            trace(p, now, "gathered");
            p->gathered = 1;
            if (p->rdv && p->local_len + 24 < sizeof(p->local_desc)) {
                memcpy(p->local_desc + p->local_len, "a=end-of-candidates\r\n", 21);
                p->local_len += 21;
                seal_local(p);
                stunkit_rdv_set_description(p->rdv, p->local_desc, p->local_len, now);
            }
            break;
        case STUNKIT_ICE_EVENT_SELECTED:
            /* renomination: a direct pair replaced the relayed one */
            if (p->connected && selected_relayed(p) && o.local.type != STUNKIT_ICE_TYPE_RELAY &&
                o.remote.type != STUNKIT_ICE_TYPE_RELAY)
                p->upgraded_ms = now - p->start_ms;
            p->sel_local = o.local;
            p->sel_remote = o.remote;
            p->selected = 1;
            trace_cand(p, now, "selected local", &o.local);
            trace_cand(p, now, "selected remote", &o.remote);
            break;
        case STUNKIT_ICE_EVENT_STATE:
            trace(p, now, "state %s%s%s (loss %u permille)", stunkit_ice_state_name(o.state), o.reason[0] ? ": " : "",
                  o.reason, stunkit_ice_loss(p->ice));
            if (o.state == STUNKIT_ICE_STATE_CONNECTED && !p->connected) {
                p->connected = 1;
                p->connect_ms = now - p->start_ms;
            } else if (o.state == STUNKIT_ICE_STATE_FAILED) {
                p->failed = 1;
                snprintf(p->reason, sizeof(p->reason), "%s", o.reason);
            } else if (o.state == STUNKIT_ICE_STATE_DISCONNECTED) {
                p->disconnected = 1;
            }
            break;
        default: break;
        }
    }
}

/* --secret: our description so far gets a seal line (covering it all). */
static void seal_local(punch *p)
{
    if (!p->have_secret || p->local_len + STUNKIT_SECRET_MAC_LINE_LEN + 1 > sizeof(p->local_desc))
        return;
    int n = stunkit_secret_seal(&p->secret, p->local_desc, p->local_len, p->local_desc + p->local_len,
                                sizeof(p->local_desc) - p->local_len);
    if (n > 0)
        p->local_len += (size_t)n;
}

/* --secret: the lines of in[0..len) that the agent takes, with the peer's
 * password (derived from its ufrag, never sent) after its ufrag line; the
 * seal lines and any ice-pwd line dropped. The length written, or -1 when
 * the peer's ufrag is ours (our own description reflected back). */
static int unsealed_lines(const punch *p, const char *in, size_t len, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        const char *nl = memchr(in + i, '\n', len - i);
        size_t n = nl ? (size_t)(nl - (in + i)) + 1 : len - i;
        const char *line = in + i;
        i += n;
        if (!strncmp(line, STUNKIT_SECRET_MAC_LINE, 16) || !strncmp(line, "a=ice-pwd:", 10))
            continue;
        if (o + n + 64 > cap)
            return -1;
        memcpy(out + o, line, n);
        o += n;
        if (!strncmp(line, "a=ice-ufrag:", 12)) {
            char uf[257];
            size_t un = n - 12;
            while (un && (line[12 + un - 1] == '\n' || line[12 + un - 1] == '\r'))
                un--;
            if (un >= sizeof(uf))
                return -1;
            memcpy(uf, line + 12, un);
            uf[un] = 0;
            char pw[40];
            if (!strcmp(uf, p->ufrag) || stunkit_secret_ice_pwd(&p->secret, uf, pw, sizeof(pw)) < 0)
                return -1;
            o += (size_t)snprintf(out + o, cap - o, "a=ice-pwd:%s\r\n", pw);
        }
    }
    out[o] = 0;
    return (int)o;
}

/* The peer's description as it comes: whole lines only, and only once its
 * ufrag and pwd are both in (the agent takes them together). With
 * --secret: only what its seals cover, and its password derived. */
static void apply_peer(punch *p, uint64_t now)
{
    p->peer_desc[p->peer_len] = 0;
    if (p->have_secret) {
        size_t ok = 0;
        char lines[STUNKIT_RDV_DESC_MAX + 512];
        int n = -1;
        if (p->failed)
            return;
        if (stunkit_secret_open(&p->secret, p->peer_desc, p->peer_len, &ok) != 0 ||
            (ok > p->peer_applied &&
             (n = unsealed_lines(p, p->peer_desc + p->peer_applied, ok - p->peer_applied, lines, sizeof(lines))) < 0)) {
            p->failed = 1;
            snprintf(p->reason, sizeof(p->reason),
                     "the peer's description does not check against the secret (another secret, our own sent "
                     "back, or changed on the way): not used");
            trace(p, now, "%s", p->reason);
            return;
        }
        if (ok <= p->peer_applied) {
            /* nothing sealed beyond: a peer with the secret seals each part
             * as it sends it, so complete lines that stay unsealed (or an
             * ICE password, which a sealed description never carries) come
             * from someone without it */
            const char *rest = p->peer_desc + ok, *nl = memrchr(rest, '\n', p->peer_len - ok);
            if (nl && (memmem(rest, (size_t)(nl - rest), "a=ice-pwd:", 10) || nl - rest > 1024)) {
                p->failed = 1;
                snprintf(p->reason, sizeof(p->reason),
                         "the peer in the room has no secret (its description is not sealed): not used");
                trace(p, now, "%s", p->reason);
            }
            return;
        }
        if (!p->peer_ready && !strstr(lines, "a=ice-ufrag:"))
            return; /* the credentials come first */
        trace(p, now, "peer's lines (sealed): %s", lines);
        stunkit_ice_apply(p->ice, lines, (size_t)n, now);
        p->peer_applied = ok;
        if (!p->peer_ready) {
            p->peer_ready = 1;
            p->peer_ms = now;
        }
        return;
    }
    if (!p->peer_ready) {
        const char *pw = strstr(p->peer_desc, "a=ice-pwd:");
        if (!strstr(p->peer_desc, "a=ice-ufrag:") || !pw || !strchr(pw, '\n'))
            return;
    }
    const char *last = NULL;
    for (const char *q = p->peer_desc + p->peer_applied; (q = strchr(q, '\n')); q++)
        last = q;
    if (!last)
        return;
    size_t upto = (size_t)(last - p->peer_desc) + 1;
    trace(p, now, "peer's lines: %.*s", (int)(upto - p->peer_applied), p->peer_desc + p->peer_applied);
    stunkit_ice_apply(p->ice, p->peer_desc + p->peer_applied, upto - p->peer_applied, now);
    p->peer_applied = upto;
    if (!p->peer_ready) {
        p->peer_ready = 1;
        p->peer_ms = now;
    }
}

static void pump_rdv(punch *p, uint64_t now)
{
    stunkit_rdv_output o;
    if (!p->rdv)
        return;
    while (stunkit_rdv_poll(p->rdv, now, &o) == 1) {
        if (o.send) {
            if (p->rdv_on_tcp)
                stream_send(&p->rdv_tcp, o.data, o.len);
            else
                (void)send(p->rdv_fd, o.data, o.len, 0);
            continue;
        }
        switch (o.event) {
        case STUNKIT_RDV_EVENT_ROLE:
            if (!p->role_known)
                p->t_role = now - p->t0;
            p->role_known = 1;
            p->offerer = o.offerer;
            break;
        case STUNKIT_RDV_EVENT_PEER_DATA:
            if (p->peer_len + o.len <= STUNKIT_RDV_DESC_MAX) {
                memcpy(p->peer_desc + p->peer_len, o.data, o.len);
                p->peer_len += o.len;
                if (p->ice)
                    apply_peer(p, now);
            }
            break;
        case STUNKIT_RDV_EVENT_PEER_LEFT:
            /* another peer may take the place: its description starts over
             * (its new ufrag is an ICE restart to the agent) */
            p->peer_len = p->peer_applied = 0;
            p->peer_ready = 0;
            if (p->have_secret && p->failed && !p->connected)
                p->failed = 0; /* a forged description is gone with its sender */
            break;
        case STUNKIT_RDV_EVENT_FAILED:
            trace(p, now, "rendezvous failed");
            p->rdv_failed = 1;
            snprintf(p->reason, sizeof(p->reason), "the rendezvous failed: %s",
                     o.error_code ? o.reason : "no answer from the server (is it run with --rendezvous?)");
            break;
        case STUNKIT_RDV_EVENT_LEFT: p->rdv_left = 1; break;
        }
    }
}

static void send_to(int fd, const stunkit_addr *to, const char *text)
{
    struct sockaddr_storage ss;
    int sl = stunkit_addr_to_sockaddr(to, &ss);
    (void)sendto(fd, text, strlen(text), 0, (struct sockaddr *)&ss, (socklen_t)sl);
}

/* A datagram of the local application's (--forward) to the peer, as it
 * is on a direct path (no framing), wrapped for the relay otherwise. */
static void send_data(punch *p, const uint8_t *data, size_t len)
{
    uint8_t buf[4096 + 64];
    stunkit_ice_route r;
    if (p->talk_over || !p->connected || len > 4096) {
        p->fwd_dropped++;
        return;
    }
    if (p->sp.state == SPRAY_DIRECT) {
        struct sockaddr_storage ss;
        int sl = stunkit_addr_to_sockaddr(&p->sp.to, &ss);
        int fd = p->sp.sock >= 0 ? p->sp.fds[p->sp.sock] : p->socks[p->sp.base].fd;
        if (sendto(fd, data, len, 0, (struct sockaddr *)&ss, (socklen_t)sl) < 0)
            p->fwd_dropped++;
        else
            p->fwd_out++;
        return;
    }
    if (stunkit_ice_send(p->ice, data, len, buf, sizeof(buf), &r) == 0) {
        send_route(p, &r);
        p->fwd_out++;
    } else {
        p->fwd_dropped++;
    }
}

/* Through ICE's selected pair, or the direct path birthday punching found. */
static void send_app(punch *p, const char *text)
{
    uint8_t buf[512];
    stunkit_ice_route r;
    if (p->talk_over)
        return;
    if (p->sp.state == SPRAY_DIRECT) {
        send_to(p->sp.sock >= 0 ? p->sp.fds[p->sp.sock] : p->socks[p->sp.base].fd, &p->sp.to, text);
        return;
    }
    if (stunkit_ice_send(p->ice, (const uint8_t *)text, strlen(text), buf, sizeof(buf), &r) == 0)
        send_route(p, &r);
}

/* ---- birthday-paradox punching (after the relay) ---- */


/* How many probes may go now (the pacing bucket and the run's budget). */
static long spray_allowed(spray *sp, uint64_t now)
{
    if (!sp->tokens_at) {
        sp->tokens = SPRAY_SOCKS;
    } else if (now > sp->tokens_at) {
        sp->tokens += (double)(now - sp->tokens_at) * SPRAY_PPS / 1000.0;
        if (sp->tokens > SPRAY_SOCKS)
            sp->tokens = SPRAY_SOCKS;
    }
    sp->tokens_at = now;
    long n = (long)sp->tokens, left = SPRAY_BUDGET - sp->sent;
    return n < left ? n : left;
}

static void spray_spent(spray *sp, long n)
{
    sp->tokens -= (double)n;
    sp->sent += n;
}

static void spray_close(spray *sp, int keep)
{
    for (int i = 0; i < sp->nfds; i++)
        if (i != keep)
            close(sp->fds[i]);
    if (keep >= 0) {
        sp->fds[0] = sp->fds[keep];
        sp->sock = 0;
    }
    sp->nfds = keep >= 0 ? 1 : 0;
}

static void spray_off(spray *sp, const char *why)
{
    if (sp->state != SPRAY_DIRECT)
        spray_close(sp, -1);
    sp->state = SPRAY_OFF;
    snprintf(sp->why, sizeof(sp->why), "%s", why);
}

/* A relayed path works (selected, or before that valid: RFC 8445 12.1
 * lets data go on it): what did our side see of its NAT? Before ICE's
 * selection only where a NAT is already seen to map per destination (ours
 * or the peer's, or the peer said so): then guessing runs beside the relay
 * instead of after its nomination wait. */
static void spray_begin(punch *p, uint64_t now)
{
    spray *sp = &p->sp;
    stunkit_ice_candidate c[STUNKIT_ICE_MAX_REMOTE];
    stunkit_ice_candidate pl, pr;
    if (sp->state != SPRAY_IDLE)
        return;
    int k = stunkit_ice_path(p->ice, &pl, &pr);
    if (!k || (pl.type != STUNKIT_ICE_TYPE_RELAY && pr.type != STUNKIT_ICE_TYPE_RELAY))
        return;
    int early = k == 2;
    if (early && !p->spray_on)
        return;
    sp->base = sp->sock = -1;
    if (!p->spray_on) {
        send_app(p, "SKP1 nat off");
        spray_off(sp, "off (--no-spray)");
        return;
    }
    /* our address as the server saw it: a relayed candidate's raddr (RFC
     * 8839 5.1: its mapped address; the host's own when there is no NAT) */
    int n = stunkit_ice_get_local(p->ice, c, STUNKIT_ICE_MAX_REMOTE);
    for (int i = 0; i < n && i < STUNKIT_ICE_MAX_REMOTE; i++)
        if (c[i].type == STUNKIT_ICE_TYPE_RELAY && c[i].related.family == STUNKIT_AF_INET && c[i].base >= 0 &&
            c[i].base < p->nsocks && sp->base < 0) {
            sp->base = c[i].base;
            sp->self_srflx = c[i].related;
        }
    /* RFC 4787 4.1: a check's answer that names another port of the same
     * address than the server saw: the mapping depends on the destination */
    for (int i = 0; i < n && i < STUNKIT_ICE_MAX_REMOTE; i++)
        if (c[i].type == STUNKIT_ICE_TYPE_PRFLX && c[i].base == sp->base && sp->base >= 0 &&
            !memcmp(c[i].addr.ip, sp->self_srflx.ip, 4) && c[i].addr.port != sp->self_srflx.port)
            sp->self_hard = 1;
    /* the selected pair: our srflx (or host: no NAT) to the peer's relay */
    sp->self_easy = !sp->self_hard && pr.type == STUNKIT_ICE_TYPE_RELAY && pl.base == sp->base &&
                    (pl.type == STUNKIT_ICE_TYPE_SRFLX || pl.type == STUNKIT_ICE_TYPE_HOST);
    /* the peer's public address: what its candidates claim (a relayed
     * candidate's raddr, a srflx), taken only when the peer has proven that
     * IP with an authenticated check (stunkit_ice_proven): a malicious peer
     * must not aim our guesses at a third party */
    n = stunkit_ice_get_remote(p->ice, c, STUNKIT_ICE_MAX_REMOTE);
    int claimed = 0;
    for (int i = 0; i < n && i < STUNKIT_ICE_MAX_REMOTE; i++)
        if (c[i].type == STUNKIT_ICE_TYPE_RELAY && c[i].related.family == STUNKIT_AF_INET && !sp->peer_srflx.family &&
            memcmp(c[i].related.ip, "\0\0\0\0", 4)) {
            claimed = 1;
            if (stunkit_ice_proven(p->ice, &c[i].related, 1))
                sp->peer_srflx = c[i].related;
        }
    for (int i = 0; i < n && i < STUNKIT_ICE_MAX_REMOTE; i++)
        if (c[i].type == STUNKIT_ICE_TYPE_SRFLX && c[i].addr.family == STUNKIT_AF_INET && !sp->peer_srflx.family) {
            claimed = 1;
            if (stunkit_ice_proven(p->ice, &c[i].addr, 1))
                sp->peer_srflx = c[i].addr;
        }
    /* no claim proven (a peer that lied about its address, or whose srflx
     * we could not check): the address its authenticated checks came from */
    for (int i = 0; i < n && i < STUNKIT_ICE_MAX_REMOTE; i++)
        if (c[i].type == STUNKIT_ICE_TYPE_PRFLX && c[i].addr.family == STUNKIT_AF_INET && !sp->peer_srflx.family &&
            stunkit_ice_proven(p->ice, &c[i].addr, 0))
            sp->peer_srflx = c[i].addr;
    /* the peer's checks (to our relay, say) from its srflx address but
     * another port: the peer's NAT maps per destination */
    for (int i = 0; i < n && i < STUNKIT_ICE_MAX_REMOTE; i++)
        if (c[i].type == STUNKIT_ICE_TYPE_PRFLX && sp->peer_srflx.family && c[i].addr.family == STUNKIT_AF_INET &&
            !memcmp(c[i].addr.ip, sp->peer_srflx.ip, 4) && c[i].addr.port != sp->peer_srflx.port)
            sp->peer_seen_hard = 1;
    /* ... or from exactly its srflx (or host: no NAT) as our relay saw them, or
     * answering from there: its NAT kept the mapping the server saw for
     * another destination (RFC 4787 endpoint-independent), whatever pair
     * ICE selected */
    for (int i = 0; i < n && i < STUNKIT_ICE_MAX_REMOTE; i++)
        if ((c[i].type == STUNKIT_ICE_TYPE_SRFLX || c[i].type == STUNKIT_ICE_TYPE_HOST) && /* host: no NAT, a firewall */
            stunkit_addr_equal(&c[i].addr, &sp->peer_srflx) && stunkit_ice_proven(p->ice, &c[i].addr, 0))
            sp->peer_seen_easy = !sp->peer_seen_hard;
    if (early && (sp->base < 0 || !sp->peer_srflx.family ||
                  !(sp->self_hard || sp->peer_seen_hard || sp->peer_kind == 2))) {
        /* not yet: evidence may come with the next checks (or never: then
         * after ICE's selection, as before) */
        memset(&sp->peer_srflx, 0, sizeof(sp->peer_srflx));
        sp->self_hard = sp->self_easy = sp->peer_seen_hard = sp->peer_seen_easy = 0;
        return;
    }
    if (sp->base < 0 || !sp->peer_srflx.family) {
        send_app(p, "SKP1 nat off");
        spray_off(sp, claimed && sp->base >= 0
                          ? "the peer's public address is not proven by an authenticated check"
                          : "no public IPv4 address known on both sides (a relay over UDP gives it)");
        return;
    }
    sp->state = SPRAY_TOLD;
    sp->start = now;
}

/* "SKP1 nat SELF PEER [?]": what we saw of both NATs, "?" while we have not
 * heard the peer (it answers once). Over the relay, so resent while unheard. */
static void spray_tell(punch *p, uint64_t now)
{
    spray *sp = &p->sp;
    char tell[64];
    snprintf(tell, sizeof(tell), "SKP1 nat %s %s%s", sp->self_hard ? "hard" : sp->self_easy ? "easy" : "unknown",
             sp->peer_seen_hard ? "hard" : sp->peer_seen_easy ? "easy" : "unknown", sp->peer_kind ? "" : " ?");
    send_app(p, tell);
    sp->told_at = now;
}

/* The hard side's round: fresh sockets, one probe from each to the easy
 * side's address (the easy NAT drops them, but each leaves a mapping open
 * in ours), then "go" over the relay. */
static void spray_round(punch *p, uint64_t now)
{
    spray *sp = &p->sp;
    char probe[64], go[64];
    spray_close(sp, -1);
    sp->round++;
    snprintf(probe, sizeof(probe), SPRAY_MAGIC "? %d", sp->round);
    struct sockaddr_storage ss;
    stunkit_addr any = p->socks[sp->base].local;
    any.port = 0;
    int sl = stunkit_addr_to_sockaddr(&any, &ss);
    long allowed = spray_allowed(sp, now);
    for (int i = 0; i < SPRAY_SOCKS && i < allowed; i++) {
        int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
            break;
        if (bind(fd, (struct sockaddr *)&ss, (socklen_t)sl) != 0) {
            close(fd);
            break;
        }
        sp->fds[sp->nfds++] = fd;
        send_to(fd, &sp->peer_srflx, probe);
        spray_spent(sp, 1);
    }
    snprintf(go, sizeof(go), "SKP1 spray go %d", sp->round);
    send_app(p, go);
    send_app(p, go); /* over the relay: a lost one would waste the round */
    sp->round_end = now + SPRAY_ROUND_MS;
}

static void spray_step(punch *p, uint64_t now)
{
    spray *sp = &p->sp;
    spray_begin(p, now);
    /* begun beside the relay, and ICE found a direct path after all */
    if ((sp->state == SPRAY_TOLD || sp->state == SPRAY_RUNNING) && p->selected && !selected_relayed(p))
        spray_off(sp, "ICE found a direct path");
    if (sp->answer && sp->state != SPRAY_IDLE && sp->state != SPRAY_OFF) {
        sp->answer = 0;
        spray_tell(p, now);
    }
    if (sp->state == SPRAY_TOLD) {
        if (!sp->peer_kind) {
            if (now - sp->start > 1500)
                spray_off(sp, "the peer did not say what its NAT does");
            else if (!sp->told_at || now - sp->told_at >= 150)
                spray_tell(p, now);
        } else if (sp->peer_kind == 3) {
            spray_off(sp, "off on the peer's side");
        } else {
            /* what we saw and what the peer saw, together */
            sp->self_hard |= sp->peer_sees_us_hard;
            sp->self_easy |= sp->peer_sees_us_easy;
            sp->self_easy &= !sp->self_hard;
            sp->peer_seen_hard |= sp->peer_kind == 2;
            int peer_easy = (sp->peer_kind == 1 || sp->peer_seen_easy) && !sp->peer_seen_hard;
            if (sp->self_hard && sp->peer_seen_hard) {
                spray_off(sp, "both NATs map per destination: guessing does not pay");
            } else if (!(sp->self_hard && peer_easy) && !(sp->self_easy && sp->peer_seen_hard)) {
                spray_off(sp, !sp->self_hard && !sp->peer_seen_hard ? "neither NAT is seen to map per destination"
                                                                    : "the other NAT's mapping is unknown");
            } else {
                sp->state = SPRAY_RUNNING;
                if (sp->self_hard)
                    spray_round(p, now);
            }
        }
    }
    if (sp->state != SPRAY_RUNNING)
        return;
    if (sp->self_hard) {
        if (now >= sp->round_end) {
            if (sp->round < SPRAY_ROUNDS)
                spray_round(p, now);
            else
                spray_off(sp, "no guess hit");
        }
        return;
    }
    /* the easy side: this round's guesses, 64 at a time (about 20 ms for
     * 1024), each to a port of the hard side's address not guessed before */
    if (sp->go > sp->round) {
        sp->round = sp->go;
        sp->guessed = 0;
        sp->guesses = SPRAY_GUESSES;
    }
    char probe[64];
    snprintf(probe, sizeof(probe), SPRAY_MAGIC "? %d", sp->round);
    long allowed = spray_allowed(sp, now);
    for (int k = 0; k < 64 && k < allowed && sp->guessed < sp->guesses; k++) {
        uint16_t port;
        do
            stunkit_random_os(NULL, (uint8_t *)&port, sizeof(port));
        while (port < 1024 || (sp->used[port / 8] & (1u << (port % 8))));
        sp->used[port / 8] |= (uint8_t)(1u << (port % 8));
        stunkit_addr to = sp->peer_srflx;
        to.port = port;
        send_to(p->socks[sp->base].fd, &to, probe);
        sp->guessed++;
        spray_spent(sp, 1);
    }
    if (sp->sent >= SPRAY_BUDGET && sp->guessed < sp->guesses)
        sp->guesses = sp->guessed; /* the run's budget is spent */
    if (now - sp->start > SPRAY_ROUNDS * SPRAY_ROUND_MS + 2000)
        spray_off(sp, "no guess hit");
}

/* A probe or answer ("SKB1 ? R", "SKB1 ! R", "SKB1 = R ADDRESS") on our
 * socket `fd` (an index into sp->fds, or -1: the base) from `from`. */
static void spray_input(punch *p, int fd, const stunkit_addr *from, const uint8_t *d, size_t len, uint64_t now)
{
    spray *sp = &p->sp;
    char msg[128], kind;
    int round;
    if (len >= sizeof(msg) || (sp->state != SPRAY_RUNNING && sp->state != SPRAY_DIRECT) ||
        memcmp(from->ip, sp->peer_srflx.ip, 4) != 0)
        return;
    memcpy(msg, d, len);
    msg[len] = 0;
    if (sscanf(msg, SPRAY_MAGIC "%c %d", &kind, &round) != 2 || round < 1 || round > SPRAY_ROUNDS)
        return;
    if (kind == '=' && sp->state == SPRAY_DIRECT && sp->self_hard) { /* the easy side saw us come from here */
        const char *a = strrchr(msg, ' ');
        stunkit_addr m;
        if (a && stunkit_addr_parse(a + 1, 0, &m) == 0)
            sp->self_mapped = m;
        return;
    }
    if (sp->state == SPRAY_DIRECT || (kind != '?' && kind != '!'))
        return;
    char reply[96];
    snprintf(reply, sizeof(reply), SPRAY_MAGIC "! %d", round);
    if (sp->self_hard && fd >= 0) {
        /* a guess landed on one of our mappings: answer from that socket */
        for (int r = 0; r < 2 && kind == '?'; r++)
            send_to(sp->fds[fd], from, reply);
        sp->to = *from;
        spray_close(sp, fd);
    } else if (!sp->self_hard && fd < 0) {
        /* the hard side answered (or its probe came through our hole) */
        char seen[STUNKIT_ADDRSTRLEN], tell[128];
        stunkit_addr_format(from, seen, sizeof(seen));
        snprintf(tell, sizeof(tell), SPRAY_MAGIC "= %d %s", round, seen);
        if (kind == '?')
            send_to(p->socks[sp->base].fd, from, reply);
        for (int r = 0; r < 2; r++)
            send_to(p->socks[sp->base].fd, from, tell);
        sp->to = *from;
        sp->sock = -1;
    } else {
        return;
    }
    sp->state = SPRAY_DIRECT;
    sp->ms = now - sp->start;
    sp->at = now - p->start_ms;
    if (!p->connected) { /* found before ICE's selection: connected now */
        p->connected = 1;
        p->connect_ms = sp->at;
    }
}

static int spray_busy(const punch *p)
{
    const spray *sp = &p->sp;
    return sp->state == SPRAY_TOLD || sp->state == SPRAY_RUNNING ||
           (sp->state == SPRAY_IDLE && p->selected && selected_relayed(p));
}

/* Whether application data from `from` is the peer's: from an address the
 * peer proved with an authenticated ICE check (through our relay: as the
 * TURN server saw it; relayed: a permission is per IP, so any port of that
 * IP), or from the direct path birthday punching found. Anything else
 * (a stranger's "SKP1 nat hard" aimed at making us spray) is dropped. */
static int from_peer(const punch *p, const stunkit_addr *from, int relayed)
{
    if (p->sp.state == SPRAY_DIRECT && stunkit_addr_equal(from, &p->sp.to))
        return 1;
    return stunkit_ice_proven(p->ice, from, relayed);
}

static void on_app(punch *p, const uint8_t *d, size_t len, uint64_t now)
{
    char msg[128];
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
    int round;
    char self[8], seen[8];
    if (!strcmp(msg, "SKP1 nat off")) {
        p->sp.peer_kind = 3;
    } else if (sscanf(msg, "SKP1 nat %7s %7s", self, seen) == 2) {
        p->sp.peer_kind = !strcmp(self, "hard") ? 2 : !strcmp(self, "easy") ? 1 : 4;
        p->sp.peer_sees_us_hard = !strcmp(seen, "hard");
        p->sp.peer_sees_us_easy = !strcmp(seen, "easy");
        p->sp.answer = len > 2 && msg[len - 1] == '?';
    } else if (sscanf(msg, "SKP1 spray go %d", &round) == 1) {
        if (round > p->sp.go && round <= SPRAY_ROUNDS)
            p->sp.go = round;
    } else if (sscanf(msg, "SKP1 ping %u", &seq) == 1) {
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

/* ---- TCP and TLS streams to the server ---- */

/* TCP: connects in the background (stream_writable says when). TLS: the
 * link connects and completes the handshake before returning (at most 5 s;
 * only ever a fallback, when UDP has gone unanswered). */
static void stream_open(punch *p, stream *st)
{
    struct sockaddr_storage ss;
    int sl = stunkit_addr_to_sockaddr(&p->stream_server, &ss);
    memset(st, 0, sizeof(*st));
    if (p->tls) {
        stunkit_link_config lc;
        memset(&lc, 0, sizeof(lc));
        lc.size = sizeof(lc);
        lc.transport = STUNKIT_TLS;
        lc.tls_name = p->tls_name;
        lc.tls_insecure = p->insecure;
        lc.ca_file = p->ca_file;
        lc.timeout_ms = 5000;
        lc.error_text = p->tls_error;
        lc.error_text_cap = sizeof(p->tls_error);
        if (stunkit_link_open(&st->link, &p->stream_server, &lc) != 0) {
            st->link = NULL;
            st->fd = -1;
            st->closed = 1;
            return;
        }
        st->fd = stunkit_link_fd(st->link);
        st->local = stunkit_link_local(st->link);
        st->connected = 1;
        return;
    }
    st->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (st->fd < 0)
        return;
    if (connect(st->fd, (struct sockaddr *)&ss, (socklen_t)sl) != 0 && errno != EINPROGRESS) {
        close(st->fd);
        st->fd = -1;
    }
}

static void stream_close(stream *st)
{
    if (st->link)
        stunkit_link_close(st->link); /* its descriptor with it */
    else if (st->fd >= 0)
        close(st->fd);
    st->link = NULL;
    st->fd = -1;
    st->closed = 1;
}

/* One whole message from the stream: TURN messages and ChannelData (RFC
 * 8656 12.5) to the agent, STUN to the rendezvous. */
static void stream_message(punch *p, int turn, const uint8_t *msg, size_t len)
{
    uint64_t now = stunkit_now_ms();
    if (turn && p->ice) {
        stunkit_app_data d;
        if (stunkit_ice_input(p->ice, TURN_STREAM, &p->stream_server, msg, len, now, &d) == STUNKIT_INPUT_APP_DATA &&
            from_peer(p, &d.from, 1))
            on_app(p, d.data, d.len, now);
    } else if (!turn && p->rdv) {
        stunkit_rdv_input(p->rdv, 0, NULL, msg, len, now);
    }
}

static void stream_lost(punch *p, stream *st, int turn)
{
    stream_close(st);
    if (turn && p->ice && st->added)
        stunkit_ice_stream_closed(p->ice, TURN_STREAM, stunkit_now_ms());
    if (!turn && p->rdv_on_tcp) {
        p->rdv_failed = 1;
        snprintf(p->reason, sizeof(p->reason), "the rendezvous failed: the server closed the connection");
    }
}

/* The connection finished connecting (or failed). */
static void stream_writable(stream *st)
{
    int err = 0;
    socklen_t el = sizeof(err);
    struct sockaddr_storage mine;
    socklen_t ml = sizeof(mine);
    if (getsockopt(st->fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0 || err ||
        getsockname(st->fd, (struct sockaddr *)&mine, &ml) != 0) {
        stream_close(st);
        return;
    }
    stunkit_addr_from_sockaddr(&st->local, (struct sockaddr *)&mine);
    st->connected = 1;
}

/* Reads what came and hands each whole message on: TURN messages and
 * ChannelData (RFC 8656 12.5) to the agent, STUN to the rendezvous. */
static void stream_readable(punch *p, stream *st, int turn)
{
    if (st->link) { /* the link frames: one message at a time, all it holds */
        int n;
        while ((n = stunkit_link_recv(st->link, st->rx, sizeof(st->rx), 0)) > 0)
            stream_message(p, turn, st->rx, (size_t)n);
        if (n < 0)
            stream_lost(p, st, turn);
        return;
    }
    ssize_t n = recv(st->fd, st->rx + st->rx_len, sizeof(st->rx) - st->rx_len, 0);
    if (n <= 0) {
        if (n == 0 || (errno != EAGAIN && errno != EINTR))
            stream_lost(p, st, turn);
        return;
    }
    st->rx_len += (size_t)n;
    size_t off = 0;
    for (;;) {
        size_t need = 0;
        int rv = turn ? stunkit_turn_frame(st->rx + off, st->rx_len - off, &need)
                      : stunkit_msg_frame(st->rx + off, st->rx_len - off, &need);
        if (rv == STUNKIT_ERR_TRUNCATED || (rv == 0 && need > st->rx_len - off)) {
            if (rv == 0 && need > sizeof(st->rx)) {
                stream_close(st); /* larger than anything the server sends */
                return;
            }
            break;
        }
        if (rv != 0) {
            stream_close(st); /* not STUN: the stream is lost */
            return;
        }
        stream_message(p, turn, st->rx + off, need);
        off += need;
    }
    memmove(st->rx, st->rx + off, st->rx_len - off);
    st->rx_len -= off;
}

/* An ICMP error on the connected rendezvous socket: port unreachable
 * (ECONNREFUSED), a firewall's administratively prohibited (EHOSTUNREACH),
 * no route (ENETUNREACH), a local firewall (EPERM, EACCES). UDP to the
 * server is refused: the TCP fallbacks start at once, not after their wait. */
static int udp_refusal(int e)
{
    return e == ECONNREFUSED || e == EHOSTUNREACH || e == ENETUNREACH || e == EPERM || e == EACCES;
}

/* What the streams need now: the TURN stream handed to the agent once both
 * exist; the rendezvous moved to TCP when UDP stays unanswered. */
static void streams_step(punch *p, uint64_t now)
{
    /* RFC 8656 3.1: TURN over TCP for networks without UDP. Only then: its
     * candidate would add pairs to every check list (and the check RTO
     * grows with their number, RFC 8445 14.3), slowing the usual paths */
    if (p->rdv && !p->rdv_on_tcp && stunkit_rdv_answered(p->rdv))
        p->udp_server_ok = 1;
    if (p->tcp_relay && p->turn_tcp.fd < 0 && !p->turn_tcp.closed && !p->udp_server_ok &&
        (p->udp_refused || now - p->t0 >= TCP_RELAY_MS)) {
        p->t_tcp_relay = now - p->t0;
        p->tcp_relay_opened = 1;
        stream_open(p, &p->turn_tcp);
    }
    if (p->ice && p->turn_tcp.connected && !p->turn_tcp.added && !p->turn_tcp.closed) {
        stunkit_ice_add_stream(p->ice, TURN_STREAM, 1, &p->turn_tcp.local, now);
        p->turn_tcp.added = 1;
    }
    if (p->rdv && !p->rdv_on_tcp && !stunkit_rdv_answered(p->rdv)) {
        if (p->rdv_tcp.fd < 0 && !p->rdv_tcp.closed && (p->udp_refused || now - p->rdv_start >= RDV_UDP_MS)) {
            stream_open(p, &p->rdv_tcp);
            if (p->rdv_tcp.closed && p->tls) {
                p->rdv_failed = 1;
                snprintf(p->reason, sizeof(p->reason), "the rendezvous failed: TLS to the server: %.110s", p->tls_error);
            }
        }
        if (p->rdv_tcp.connected && !p->rdv_tcp.closed) {
            p->rdv_on_tcp = 1;
            stunkit_rdv_set_transport(p->rdv, STUNKIT_TCP, now);
        }
    }
}

/* A deadline stretched by the loss ICE's checks saw: a path that loses a
 * share q of what is sent needs about 1 / (1 - q) times as long for every
 * exchange (at most STRETCH_MAX times). */
static uint64_t stretched(const punch *p, uint64_t from, uint64_t deadline)
{
    /* the checks' loss, or the rendezvous' (the same path to the server,
     * seen before a check is answered: a TURN allocation that needs its
     * retransmissions comes seconds later) */
    unsigned q = p->ice ? stunkit_ice_loss(p->ice) : 0;
    if (p->rdv && stunkit_rdv_loss(p->rdv) > q)
        q = stunkit_rdv_loss(p->rdv);
    if (!p->stretch || !q || deadline <= from)
        return deadline;
    if (q > 1000 - 1000 / STRETCH_MAX)
        q = 1000 - 1000 / STRETCH_MAX;
    return from + (deadline - from) * 1000u / (1000u - q);
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

/* The next ping (new or resent) due, or UINT64_MAX. */
static uint64_t pings_next(const punch *p)
{
    uint64_t next = UINT64_MAX;
    if (!p->connected || spray_busy(p))
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
    if (!p->connected || spray_busy(p) || p->talk_over || !p->ice)
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

/* Runs until `done(p)` or the deadline; 0 done, -1 deadline or stopped. */
static int run(punch *p, uint64_t deadline, int (*done)(const punch *))
{
    uint64_t entered = stunkit_now_ms();
    for (;;) {
        uint64_t now = stunkit_now_ms();
        streams_step(p, now);
        pump_pm(p, now);
        if (p->ice) {
            pump(p, now);
            spray_step(p, now);
        }
        pump_rdv(p, now);
        if (done(p))
            return 0;
        uint64_t dl = stretched(p, entered, deadline);
        if (now >= dl || stop)
            return -1;
        pings_step(p, now);
        uint64_t next = p->ice ? stunkit_ice_timeout(p->ice) : UINT64_MAX;
        if (p->rdv && stunkit_rdv_timeout(p->rdv) < next)
            next = stunkit_rdv_timeout(p->rdv);
        uint64_t pn = portmap_next(&p->pm);
        if (pn < next)
            next = pn;
        if (dl < next)
            next = dl;
        uint64_t pn_ping = pings_next(p);
        if (pn_ping < next)
            next = pn_ping;
        if (p->sp.state == SPRAY_TOLD && p->sp.told_at + 150 < next)
            next = p->sp.told_at + 150;
        if (p->sp.state == SPRAY_RUNNING)
            next = p->sp.self_hard ? (p->sp.round_end < next ? p->sp.round_end : next)
                                   : (p->sp.guessed < p->sp.guesses ? now + 1 : now + 20 < next ? now + 20 : next);
        int wait = next <= now ? 0 : next - now > 200 ? 200 : (int)(next - now);
        if (((p->rdv && !p->rdv_on_tcp && !stunkit_rdv_answered(p->rdv) && p->rdv_tcp.fd < 0) ||
             (p->tcp_relay && !p->udp_server_ok && p->turn_tcp.fd < 0)) && wait > 100)
            wait = 100; /* a TCP fallback may be due (RDV_UDP_MS, TCP_RELAY_MS) */
        struct pollfd pf[MAX_SOCKS + 6 + SPRAY_SOCKS];
        int nsocks = p->ice ? p->nsocks : 0;
        stream *sts[2] = {&p->turn_tcp, &p->rdv_tcp};
        for (int i = 0; i < nsocks; i++)
            pf[i] = (struct pollfd){p->socks[i].fd, POLLIN, 0};
        pf[nsocks] = (struct pollfd){p->rdv ? p->rdv_fd : -1, POLLIN, 0};
        for (int k = 0; k < 2; k++)
            pf[nsocks + 1 + k] = (struct pollfd){sts[k]->fd, (short)(sts[k]->connected ? POLLIN : POLLOUT), 0};
        pf[nsocks + 3] = (struct pollfd){p->pm.fd, POLLIN, 0};
        int nspray = p->sp.nfds;
        for (int k = 0; k < nspray; k++)
            pf[nsocks + 4 + k] = (struct pollfd){p->sp.fds[k], POLLIN, 0};
        /* the UPnP thread's events (last: the indexes above stay) */
        pf[nsocks + 4 + nspray] = (struct pollfd){p->pm.u ? map_upnp_fd(p->pm.u) : -1, POLLIN, 0};
        /* the local application's datagrams (--forward) */
        pf[nsocks + 5 + nspray] = (struct pollfd){p->fwd_fd, POLLIN, 0};
        if (poll(pf, (nfds_t)(nsocks + 6 + nspray), wait) <= 0)
            continue;
        if (p->fwd_fd >= 0 && (pf[nsocks + 5 + nspray].revents & POLLIN)) {
            uint8_t buf[4096];
            ssize_t n;
            for (int k = 0; k < 64 && (n = recv(p->fwd_fd, buf, sizeof(buf), MSG_DONTWAIT)) >= 0; k++)
                send_data(p, buf, (size_t)n);
        }
        for (int k = 0; k < nspray && k < p->sp.nfds; k++) {
            uint8_t buf[256];
            struct sockaddr_storage from;
            socklen_t fl = sizeof(from);
            stunkit_addr src;
            ssize_t n;
            if (!(pf[nsocks + 4 + k].revents & POLLIN) || p->sp.fds[k] != pf[nsocks + 4 + k].fd)
                continue;
            while ((fl = sizeof(from), n = recvfrom(p->sp.fds[k], buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl)) >= 0) {
                if (stunkit_addr_from_sockaddr(&src, (struct sockaddr *)&from) != 0)
                    continue;
                if (n >= 5 && !memcmp(buf, SPRAY_MAGIC, 5))
                    spray_input(p, k, &src, buf, (size_t)n, stunkit_now_ms());
                else if (from_peer(p, &src, 0))
                    on_app(p, buf, (size_t)n, stunkit_now_ms());
                if (k >= p->sp.nfds || p->sp.fds[k] != pf[nsocks + 4 + k].fd)
                    break; /* the sockets changed (a hit closed the others) */
            }
        }
        if (pf[nsocks + 3].revents & (POLLIN | POLLERR))
            portmap_readable(p);
        if (pf[nsocks].revents & (POLLIN | POLLERR)) {
            uint8_t buf[2048];
            ssize_t n;
            while ((n = recv(p->rdv_fd, buf, sizeof(buf), 0)) >= 0 || udp_refusal(errno)) {
                if (n < 0) { /* ICMP: nothing listens for UDP there, or a firewall refuses it */
                    p->udp_refused = 1;
                    continue;
                }
                stunkit_rdv_input(p->rdv, p->rdv_fd, NULL, buf, (size_t)n, stunkit_now_ms());
            }
        }
        for (int k = 0; k < 2; k++) {
            stream *st = sts[k];
            short ev = pf[nsocks + 1 + k].revents;
            if (st->fd < 0 || !ev)
                continue;
            if (!st->connected)
                stream_writable(st);
            else
                stream_readable(p, st, k == 0);
        }
        for (int i = 0; i < nsocks; i++) {
            if (!(pf[i].revents & POLLIN))
                continue;
            uint8_t buf[2048];
            struct sockaddr_storage from;
            socklen_t fl;
            ssize_t n;
            while ((fl = sizeof(from), n = recvfrom(p->socks[i].fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl)) >= 0) {
                stunkit_addr src;
                if (stunkit_addr_from_sockaddr(&src, (struct sockaddr *)&from) != 0)
                    continue;
                stunkit_app_data d;
                uint64_t t = stunkit_now_ms();
                if (i == p->sp.base && n >= 5 && !memcmp(buf, SPRAY_MAGIC, 5)) {
                    spray_input(p, -1, &src, buf, (size_t)n, t);
                    continue;
                }
                int r = stunkit_ice_input(p->ice, i, &src, buf, (size_t)n, t, &d);
                if (r == STUNKIT_INPUT_NOT_MINE && from_peer(p, &src, 0))
                    on_app(p, buf, (size_t)n, t);
                else if (r == STUNKIT_INPUT_APP_DATA && from_peer(p, &d.from, 1))
                    on_app(p, d.data, d.len, t);
            }
        }
    }
}

static int is_gathered(const punch *p)
{
    return p->gathered;
}

static int is_connected(const punch *p)
{
    return p->connected || p->failed || p->rdv_failed;
}

static int has_role(const punch *p)
{
    return p->role_known || p->rdv_failed;
}

static int peer_ready(const punch *p)
{
    return p->peer_ready || p->rdv_failed || p->failed;
}

static int rdv_left(const punch *p)
{
    return p->rdv_left || p->rdv_failed;
}

/* the pings are answered, and no direct path may still replace a relayed
 * one (renomination: the run's deadline bounds the wait) */
static int pings_done(const punch *p)
{
    return p->disconnected ||
           (p->sent >= p->count && p->answered >= p->count && !(p->ice && stunkit_ice_upgrading(p->ice)));
}

/* --forward runs until the peer leaves or the path is gone (or a signal) */
static int forwarding_over(const punch *p)
{
    return p->bye_rx || p->disconnected || p->failed;
}

/* the peer said bye, and acknowledged ours */
static int bye_done(const punch *p)
{
    return (p->bye_rx && p->bye_acked) || p->disconnected;
}

/* "tcp" for a candidate over TCP, and for our relayed candidate whose
 * allocation lives on the TCP connection to the server */
static const char *cand_protocol(const stunkit_ice_candidate *c)
{
    return c->tcp || (c->type == STUNKIT_ICE_TYPE_RELAY && c->base == TURN_STREAM) ? "tcp" : "udp";
}

static void print_cand(const punch *p, const char *name, const stunkit_ice_candidate *c)
{
    char a[STUNKIT_ADDRSTRLEN];
    stunkit_addr_format(&c->addr, a, sizeof(a));
    printf("\"%s\": {\"type\": \"%s\", \"address\": \"%s\", \"protocol\": \"%s\"%s}", name, stunkit_ice_type_name(c->type),
           a, cand_protocol(c), p->tls && c->type == STUNKIT_ICE_TYPE_RELAY && c->base == TURN_STREAM ? ", \"tls\": true" : "");
}

static int describe_token(punch *p, char *tok, size_t cap)
{
    char desc[4096];
    int n = stunkit_ice_describe(p->ice, desc, sizeof(desc) - STUNKIT_SECRET_MAC_LINE_LEN - 1);
    if (n < 0)
        return -1;
    if (p->have_secret) {
        /* the password stays home; the rest is sealed */
        char *pw = strstr(desc, "a=ice-pwd:"), *end = pw ? strchr(pw, '\n') : NULL;
        if (pw && end) {
            memmove(pw, end + 1, strlen(end + 1) + 1);
            n = (int)strlen(desc);
        }
        int m = stunkit_secret_seal(&p->secret, desc, (size_t)n, desc + n, sizeof(desc) - (size_t)n);
        if (m < 0)
            return -1;
        n += m;
    }
    return token_encode(desc, (size_t)n, tok, cap);
}

/* A pasted token's description for the agent: as it is, or with --secret
 * its sealed lines with the peer's password derived. The text, or NULL
 * when the seal does not check (reason written to stderr). */
static const char *token_description(punch *p, const char *desc, char *buf, size_t cap, const char *what)
{
    if (!p->have_secret)
        return desc;
    size_t ok = 0, len = strlen(desc);
    if (stunkit_secret_open(&p->secret, desc, len, &ok) != 0 || !ok ||
        unsealed_lines(p, desc, ok, buf, cap) < 0) {
        fprintf(stderr, "stunkit punch: the %s does not check against the secret (another secret, or changed on "
                        "the way): not used\n", what);
        return NULL;
    }
    return buf;
}

/* The agent, once the role is known: every local socket a base. */
static int start_agent(punch *p, int controlling, int aggressive, const stunkit_ice_server *servers, size_t nserv)
{
    stunkit_ice_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.size = sizeof(cfg);
    cfg.controlling = controlling;
    cfg.aggressive = aggressive;
    cfg.servers = servers;
    cfg.n_servers = nserv;
    cfg.env.random = stunkit_random_os;
    cfg.relay_only = p->relay_only;
    if (p->have_secret) {
        /* our ufrag at random, our password from it and the secret: the
         * peer derives it too, and it never crosses the wire */
        static const char ice_chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        uint8_t r[8];
        stunkit_random_os(NULL, r, sizeof(r));
        for (int i = 0; i < 8; i++)
            p->ufrag[i] = ice_chars[r[i] & 63];
        p->ufrag[8] = 0;
        if (stunkit_secret_ice_pwd(&p->secret, p->ufrag, p->pwd, sizeof(p->pwd)) < 0)
            return -1;
        cfg.ufrag = p->ufrag;
        cfg.pwd = p->pwd;
    }
    p->ice = stunkit_ice_new(&cfg, stunkit_now_ms());
    if (!p->ice)
        return -1;
    if (p->rdv) { /* what trickles up starts with our credentials */
        int n = p->have_secret ? snprintf(p->local_desc, sizeof(p->local_desc),
                                          "a=ice-ufrag:%s\r\na=ice-options:trickle renomination\r\n",
                                          stunkit_ice_ufrag(p->ice))
                               : snprintf(p->local_desc, sizeof(p->local_desc),
                                          "a=ice-ufrag:%s\r\na=ice-pwd:%s\r\na=ice-options:trickle renomination\r\n",
                                          stunkit_ice_ufrag(p->ice), stunkit_ice_pwd(p->ice));
        p->local_len = (size_t)n;
        seal_local(p);
        stunkit_rdv_set_description(p->rdv, p->local_desc, p->local_len, stunkit_now_ms());
        if (p->peer_len)
            apply_peer(p, stunkit_now_ms());
    }
    for (int i = 0; i < p->nsocks; i++)
        stunkit_ice_add_base(p->ice, i, &p->socks[i].local, stunkit_now_ms());
    /* gathering ends once the router has answered (or not) about a port */
    portmap_start(p, stunkit_now_ms());
    if (p->pm.settled)
        stunkit_ice_local_done(p->ice, stunkit_now_ms());
    return 0;
}

/* A UDP socket connected to the server, for the rendezvous. */
static int open_rdv_sock(const stunkit_addr *server)
{
    struct sockaddr_storage ss;
    int sl = stunkit_addr_to_sockaddr(server, &ss);
    int fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&ss, (socklen_t)sl) != 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

/* The path the pings took: ICE's selected pair, or the one birthday
 * punching found (the hard side: its mapping as the easy side saw it). */
static void direct_pair(const punch *p, stunkit_ice_candidate *l, stunkit_ice_candidate *r)
{
    const spray *sp = &p->sp;
    memset(l, 0, sizeof(*l));
    memset(r, 0, sizeof(*r));
    if (sp->self_hard) {
        l->type = sp->self_mapped.family ? STUNKIT_ICE_TYPE_PRFLX : STUNKIT_ICE_TYPE_HOST;
        l->addr = sp->self_mapped.family ? sp->self_mapped : p->socks[sp->base].local;
        /* a peer without NAT (a firewall) signalled it as its host candidate */
        stunkit_ice_candidate c[STUNKIT_ICE_MAX_REMOTE];
        int n = stunkit_ice_get_remote(p->ice, c, STUNKIT_ICE_MAX_REMOTE);
        r->type = STUNKIT_ICE_TYPE_SRFLX;
        for (int i = 0; i < n && i < STUNKIT_ICE_MAX_REMOTE; i++)
            if (c[i].type == STUNKIT_ICE_TYPE_HOST && stunkit_addr_equal(&c[i].addr, &sp->to))
                r->type = STUNKIT_ICE_TYPE_HOST;
    } else {
        l->type = stunkit_addr_equal(&sp->self_srflx, &p->socks[sp->base].local) ? STUNKIT_ICE_TYPE_HOST : STUNKIT_ICE_TYPE_SRFLX;
        l->addr = sp->self_srflx;
        r->type = STUNKIT_ICE_TYPE_PRFLX;
    }
    r->addr = sp->to;
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
    const spray *sp = &p->sp;
    printf("\"birthday\": ");
    if (sp->round == 0 && !sp->why[0]) {
        printf("null, ");
        return;
    }
    printf("{\"side\": \"%s\", \"rounds\": %d, \"sockets\": %d, \"probes\": %ld, \"direct\": %s", sp->self_hard ? "hard" : "easy",
           sp->round, sp->self_hard ? SPRAY_SOCKS * sp->round : 0, sp->sent, sp->state == SPRAY_DIRECT ? "true" : "false");
    if (sp->state == SPRAY_DIRECT)
        printf(", \"ms\": %llu, \"at_ms\": %llu", (unsigned long long)sp->ms, (unsigned long long)sp->at);
    else if (sp->why[0]) {
        printf(", \"reason\": ");
        json_string(stdout, sp->why, strlen(sp->why));
    }
    printf("}, ");
}

static void report(punch *p, const char *room, int json)
{
    if (p->sp.state == SPRAY_DIRECT)
        direct_pair(p, &p->sel_local, &p->sel_remote);
    int relayed = p->sel_local.type == STUNKIT_ICE_TYPE_RELAY || p->sel_remote.type == STUNKIT_ICE_TYPE_RELAY;
    char tls_why[360];
    snprintf(tls_why, sizeof(tls_why), "%s (and TLS to the server failed: %s)", p->reason, p->tls_error);
    const char *why = p->rdv_failed ? p->reason
                      : p->failed && p->tls_error[0] ? tls_why
                      : p->failed   ? p->reason
                      : stop        ? "interrupted"
                      : room && !p->peer_ready ? "the peer did not come to the room in time"
                                               : "nothing answered within the timeout";
    if (json) {
        printf("{\"connected\": %s, ", p->connected ? "true" : "false");
        if (room) {
            printf("\"room\": ");
            json_string(stdout, room, strlen(room));
            printf(", \"role\": %s, ", !p->role_known ? "null" : p->offerer ? "\"offer\"" : "\"answer\"");
        }
        printf("\"authenticated\": %s, ", p->have_secret ? "true" : "false");
        if (p->fwd_fd >= 0)
            printf("\"forwarded\": {\"to_peer\": %lu, \"from_peer\": %lu, \"dropped\": %lu}, ", p->fwd_out, p->fwd_in,
                   p->fwd_dropped);
        if (p->connected) {
            printf("\"path\": \"%s\", ", relayed ? "relay" : "direct");
            print_cand(p, "local", &p->sel_local);
            printf(", ");
            print_cand(p, "remote", &p->sel_remote);
            printf(", \"connect_ms\": %llu, ", (unsigned long long)p->connect_ms);
            if (p->upgraded_ms)
                printf("\"upgraded_ms\": %llu, ", (unsigned long long)p->upgraded_ms);
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
        if (p->pm.external.family) {
            char e[STUNKIT_ADDRSTRLEN];
            stunkit_addr_format(&p->pm.external, e, sizeof(e));
            printf("{\"method\": \"%s\", \"external\": \"%s\"}, ", stunkit_portmap_method_name(p->pm.method), e);
        } else {
            printf("null, ");
        }
        report_spray(p);
        printf("\"timing\": {\"role_ms\": ");
        print_ms(p->role_known ? p->t_role : UINT64_MAX);
        printf(", \"tcp_relay_ms\": ");
        print_ms(p->tcp_relay_opened ? p->t_tcp_relay : UINT64_MAX);
        printf(", \"first_ping_ms\": ");
        print_ms(p->t_ping ? p->t_ping : UINT64_MAX);
        printf("}, ");
        printf("\"check_loss_pct\": %.1f, ", p->ice ? stunkit_ice_loss(p->ice) / 10.0 : 0.0);
        printf("\"rendezvous_loss_pct\": %.1f, ", p->rdv ? stunkit_rdv_loss(p->rdv) / 10.0 : 0.0);
        printf("\"pings\": {\"sent\": %d, \"answered\": %d, \"resent\": %d, \"received\": %d}, ", p->sent,
               p->answered, p->resent, p->pings_rx);
        printf("\"bye\": {\"received\": %s, \"acknowledged\": %s}}\n", p->bye_rx ? "true" : "false",
               p->bye_acked ? "true" : "false");
    } else if (p->connected) {
        char l[STUNKIT_ADDRSTRLEN], r[STUNKIT_ADDRSTRLEN];
        stunkit_addr_format(&p->sel_local.addr, l, sizeof(l));
        stunkit_addr_format(&p->sel_remote.addr, r, sizeof(r));
        printf("path        %s: %s %s <-> %s %s (%s)\n", relayed ? "relay" : "direct",
               stunkit_ice_type_name(p->sel_local.type), l, stunkit_ice_type_name(p->sel_remote.type), r,
               strcmp(cand_protocol(&p->sel_local), "tcp") ? "udp" : p->tls ? "TLS to the relay" : "TCP to the relay");
        printf("connected   in %llu ms\n", (unsigned long long)p->connect_ms);
        if (p->upgraded_ms)
            printf("upgraded    relayed first, direct after %llu ms\n", (unsigned long long)p->upgraded_ms);
        if (p->pm.external.family) {
            char e[STUNKIT_ADDRSTRLEN];
            stunkit_addr_format(&p->pm.external, e, sizeof(e));
            printf("mapping     %s %s from the router\n", stunkit_portmap_method_name(p->pm.method), e);
        }
        if (p->sp.state == SPRAY_DIRECT)
            printf("birthday    direct after %llu ms: %s side, round %d, %ld probes\n", (unsigned long long)p->sp.ms,
                   p->sp.self_hard ? "the symmetric NAT's" : "the guessing", p->sp.round, p->sp.sent);
        else if (p->sp.round)
            printf("birthday    no direct path: %s (%d rounds, %ld probes)\n", p->sp.why, p->sp.round, p->sp.sent);
        if (p->rtt_n)
            printf("pings       %d sent, %d answered (%d resent), rtt %.1f ms\n", p->sent, p->answered, p->resent,
                   p->rtt_sum / p->rtt_n);
        else if (p->answered)
            printf("pings       %d sent, %d answered (%d resent)\n", p->sent, p->answered, p->resent);
        else
            printf("pings       %d sent, none answered\n", p->sent);
        if (stunkit_ice_loss(p->ice))
            printf("loss        %.1f%% of the checks' sends went unanswered\n", stunkit_ice_loss(p->ice) / 10.0);
    } else if (p->rdv_failed) {
        fprintf(stderr, "stunkit punch: %s\n", why);
    } else {
        fprintf(stderr, "stunkit punch: no path: %s\n", why);
    }
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
    stunkit_server srv, udp_srv;
    stunkit_addr server, stream_server;
    if (stunkit_server_parse(argv[optind], &srv) != 0) {
        fprintf(stderr, "stunkit punch: '%s': expected host[:port] or a stun:, stuns:, turn: or turns: URI\n",
                argv[optind]);
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
    /* a TLS server (turns:host[:port], 5349 by default) carries the TCP
     * fallbacks; UDP goes to the same host's STUN port */
    udp_srv = srv;
    if (srv.secure) {
        udp_srv.secure = 0;
        udp_srv.port = 0;
    }
    if (stunkit_server_resolve(&udp_srv, STUNKIT_UDP, 0, &server, 1) < 1 ||
        (srv.secure && stunkit_server_resolve(&srv, STUNKIT_TLS, server.family, &stream_server, 1) < 1)) {
        fprintf(stderr, "stunkit punch: cannot resolve the server '%s'\n", argv[optind]);
        return 1;
    }
    if (!srv.secure)
        stream_server = server;

    punch p;
    memset(&p, 0, sizeof(p));
    p.json = json;
    p.count = (int)count;
    p.rdv_fd = -1;
    p.turn_tcp.fd = p.rdv_tcp.fd = p.pm.fd = -1;
    p.map = map;
    p.spray_on = spray_on;
    p.sp.base = p.sp.sock = -1;
    p.server = server;
    p.stream_server = stream_server;
    p.tls = srv.secure;
    p.tls_name = srv.host;
    p.insecure = insecure;
    p.ca_file = ca_file;
    p.relay_only = relay_only;
    p.fwd_fd = -1;
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
    if (relay_only) {
        /* our own addresses stay ours: no port mapped, no guessing */
        p.map = 0;
        p.spray_on = 0;
    }
    p.t0 = stunkit_now_ms();
    if (secret) {
        p.have_secret = 1;
        p.secret = sec;
        stunkit_secret_clear(&sec);
    } else if (room && isatty(2)) {
        /* said to a person at a terminal (scripts read one line of error) */
        fprintf(stderr, "stunkit punch: no --secret: whoever comes to room '%s' first is taken for the peer "
                        "(give both sides --secret to authenticate each other)\n", room);
    }
    if (nlocals) {
        for (int i = 0; i < nlocals; i++) {
            stunkit_addr a;
            if (stunkit_addr_parse(locals[i], 0, &a) != 0 || open_sock(&p, &a) != 0) {
                fprintf(stderr, "stunkit punch: --local '%s': not an address of this host\n", locals[i]);
                return 2;
            }
        }
    } else {
        open_all(&p, &server);
    }
    if (!p.nsocks) {
        fprintf(stderr, "stunkit punch: no usable local address\n");
        return 1;
    }
    stunkit_ice_server servers[2];
    size_t nserv = 1;
    memset(servers, 0, sizeof(servers));
    servers[0].addr = server;
    if (user) {
        /* the same server relays (its Allocate answer gives the reflexive
         * address too), over UDP and over TCP: the TCP relay is the path
         * when UDP is blocked (RFC 8656 3.1, lowest priority otherwise) */
        servers[0].turn = 1;
        servers[0].username = user;
        servers[0].password = pass;
        servers[1] = servers[0];
        servers[1].addr = stream_server;
        servers[1].transport = srv.secure ? STUNKIT_TLS : STUNKIT_TCP;
        nserv = 2;
        p.tcp_relay = 1; /* opened when UDP to the server goes unanswered */
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    int rc = 1;
    char tok[8192];
    if (room) {
        /* the room first: it says who offers */
        stunkit_rdv_config rc_cfg;
        memset(&rc_cfg, 0, sizeof(rc_cfg));
        rc_cfg.size = sizeof(rc_cfg);
        rc_cfg.room = room;
        rc_cfg.username = user;
        rc_cfg.password = pass;
        rc_cfg.env.random = stunkit_random_os;
        p.rdv = stunkit_rdv_new(&rc_cfg, stunkit_now_ms());
        p.rdv_start = stunkit_now_ms();
        p.rdv_fd = open_rdv_sock(&server);
        if (!p.rdv || p.rdv_fd < 0) {
            fprintf(stderr, "stunkit punch: cannot reach the server for the rendezvous\n");
            goto out;
        }
        run(&p, stunkit_now_ms() + 30000, has_role);
        if (!p.role_known)
            goto report;
        if (start_agent(&p, p.offerer, aggressive, servers, nserv) != 0) {
            fprintf(stderr, "stunkit punch: cannot start the ICE agent\n");
            goto out;
        }
        if (!json)
            printf("room        %s: %s\n", room,
                   p.offerer ? "first in the room (offering), waiting for the peer" : "the peer is there (answering)");
        fflush(stdout);
        run(&p, stunkit_now_ms() + (uint64_t)wait_s * 1000u, peer_ready);
        if (!p.peer_ready)
            goto report;
        p.start_ms = p.peer_ms;
        p.stretch = 1;
        run(&p, p.start_ms + (uint64_t)timeout, is_connected);
    } else {
        if (start_agent(&p, offer, aggressive, servers, nserv) != 0) {
            fprintf(stderr, "stunkit punch: cannot start the ICE agent\n");
            goto out;
        }
        /* gather first (no trickle through a pasted token), at most 5 s */
        run(&p, stunkit_now_ms() + 5000, is_gathered);
        if (offer_from_stdin && read_description(sdp, offer_desc, sizeof(offer_desc)) < 0) {
            fprintf(stderr, "stunkit punch: expected the offer on stdin (%s)\n", sdp ? "SDP lines" : "SK1.... token");
            goto out;
        }
        char sealed[8192];
        const char *od = answer_tok ? token_description(&p, offer_desc, sealed, sizeof(sealed), "offer") : NULL;
        if (answer_tok && !od)
            goto out;
        if (answer_tok && stunkit_ice_apply(p.ice, od, strlen(od), stunkit_now_ms()) < 0) {
            fprintf(stderr, "stunkit punch: the offer carries a malformed description\n");
            goto out;
        }
        if (sdp) {
            int n = stunkit_ice_describe(p.ice, tok, sizeof(tok));
            if (n < 0) {
                fprintf(stderr, "stunkit punch: the description does not fit\n");
                goto out;
            }
            printf("%s\n", tok); /* the SDP lines, then the empty line */
        } else {
            if (describe_token(&p, tok, sizeof(tok)) < 0) {
                fprintf(stderr, "stunkit punch: the description does not fit\n");
                goto out;
            }
            printf("%s\n", tok);
        }
        fflush(stdout);
        p.start_ms = stunkit_now_ms();
        if (offer) {
            char desc[4096];
            if (read_description(sdp, desc, sizeof(desc)) < 0) {
                fprintf(stderr, "stunkit punch: expected the answer on stdin (%s)\n", sdp ? "SDP lines" : "SK1.... token");
                goto out;
            }
            p.start_ms = stunkit_now_ms();
            const char *ad = token_description(&p, desc, sealed, sizeof(sealed), "answer");
            if (!ad)
                goto out;
            if (stunkit_ice_apply(p.ice, ad, strlen(ad), p.start_ms) < 0) {
                fprintf(stderr, "stunkit punch: the answer carries a malformed description\n");
                goto out;
            }
        }
        p.stretch = 1;
        run(&p, p.start_ms + (uint64_t)timeout, is_connected);
    }
    if (p.connected) {
        /* the pings go once birthday punching (if it pays) is over, each
         * resent until answered */
        run(&p, stunkit_now_ms() + (uint64_t)count * PING_EVERY_MS + 3000u + SPRAY_ROUNDS * SPRAY_ROUND_MS + 2000u,
            pings_done);
        int forwarded = 0;
        if (p.fwd_fd >= 0 && !stop) {
            /* the local application's datagrams both ways, across path
             * changes, until Ctrl-C / SIGTERM, the peer's bye or lost
             * consent */
            fprintf(json ? stderr : stdout,
                    "forwarding  127.0.0.1:%d <-> the peer's application over the %s path (Ctrl-C ends it)\n",
                    fwd_listen, selected_relayed(&p) ? "relayed" : "direct");
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
        if (forwarded && p.disconnected)
            rc = 1; /* the path went away under the forwarded traffic */
    }
    p.talk_over = 1;
report:
    if (stop)
        rc = 130; /* interrupted: what is known is reported, then everything is released */
    report(&p, room, json);
out:
    p.talk_over = 1;
    if (p.fwd_fd >= 0)
        close(p.fwd_fd);
    portmap_end(&p);
    spray_close(&p.sp, -1);
    if (p.ice) {
        stunkit_ice_close(p.ice, stunkit_now_ms());
        pump(&p, stunkit_now_ms());
        stunkit_ice_free(p.ice);
        p.ice = NULL;
    }
    if (p.rdv) { /* free our place in the room */
        stunkit_rdv_leave(p.rdv, stunkit_now_ms());
        stop = 0;
        run(&p, stunkit_now_ms() + 1000, rdv_left);
        stunkit_rdv_free(p.rdv);
    }
    if (p.rdv_fd >= 0)
        close(p.rdv_fd);
    stream_close(&p.turn_tcp);
    stream_close(&p.rdv_tcp);
    for (int i = 0; i < p.nsocks; i++)
        close(p.socks[i].fd);
    return rc;
}
