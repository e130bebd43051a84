/*
 * peer_int.h - the peer's state (stunkit/peer.h), shared by its files:
 *
 *   peer.c         the object, the public calls, the step (where every
 *                  datagram enters: dispatch()), the three drive modes
 *   peer_net.c     the sockets: one per local address, TCP/TLS streams to
 *                  the server, where the agent's datagrams leave (route)
 *   peer_signal.c  the descriptions: ours (trickled, sealed), the peer's
 *                  (opened, applied), the rendezvous and its fallback
 *   peer_map.c     the router's port mapping: PCP / NAT-PMP and UPnP raced
 *   peer_spray.c   birthday-paradox punching beside the relay
 *   peer_mdns.c    a browser's "<uuid>.local" candidates resolved
 */
#ifndef STUNKIT_PEER_INT_H
#define STUNKIT_PEER_INT_H

#include <pthread.h>
#include <stdint.h>

#include "stunkit/stunkit.h"
#include "stunkit/peer.h"
#include "stunkit/mapping.h"
#include "stunkit/rendezvous.h"
#include "stunkit/secret.h"

#define PEER_MAX_SOCKS (STUNKIT_ICE_MAX_BASES - 1) /* one base left for the TURN-over-TCP stream */
#define PEER_FLEET_MAX 8                /* servers: the name's addresses and the fallbacks */
#define PEER_FLEET_SILENCE_MS 4000u     /* with another server to go to: a silent one is left after this */
#define PEER_TURN_STREAM 100   /* the agent's name for the TURN-over-TCP connection */
#define PEER_RDV_UDP_MS 1000u  /* the rendezvous goes over TCP when UDP has no answer by then */
#define PEER_TCP_RELAY_MS 1000u /* TURN over TCP when the server has not answered over UDP by then */
#define PEER_ROLE_WAIT_MS 30000u /* the room says the role by then, or the rendezvous failed */
#define PEER_MAX_DATA 4096
#define PEER_STRETCH_MAX 3u    /* a lossy path stretches a deadline up to threefold */
#define PEER_CTL_NAT "SKP1 nat "
#define PEER_CTL_SPRAY "SKP1 spray "

/* Birthday-paradox punching through a symmetric NAT (beside the relay): the
 * hard side opens SPRAY_SOCKS mappings, the easy side guesses SPRAY_GUESSES
 * ports; a round hits with 1 - exp(-256 * 1024 / 64511) = 98% (measured in
 * the lab: 50 of 50), at most SPRAY_ROUNDS rounds of SPRAY_ROUND_MS. */
#define SPRAY_SOCKS STUNKIT_PEER_GUESS_SOCKETS
#define SPRAY_GUESSES STUNKIT_PEER_GUESS_PORTS
#define SPRAY_ROUNDS STUNKIT_PEER_GUESS_ROUNDS
#define SPRAY_ROUND_MS 500u
/* What a run may send while guessing, in the spirit of RFC 8445's pacing
 * (14.2: checks are paced so that an agent cannot be used to flood): at
 * most SPRAY_PPS datagrams a second (a burst of SPRAY_SOCKS, the hard
 * side's round), at most SPRAY_BUDGET in all, and only ever to the IP
 * address the peer has proven with an authenticated ICE check (or that the
 * TURN server saw its checks come from), never to an address it merely
 * named in a candidate. */
#define SPRAY_PPS STUNKIT_PEER_GUESS_PPS
#define SPRAY_BUDGET STUNKIT_PEER_GUESS_BUDGET
#define SPRAY_MAGIC "SKB1 "

/* What each epoll registration is (the high 32 bits of its data). */
enum { EV_SOCK = 1, EV_RDV, EV_STREAM_TURN, EV_STREAM_RDV, EV_PM, EV_SPRAY, EV_WAKE, EV_MDNS };

/* A UDP socket of the peer's: a descriptor, or (with the application's
 * network, stunkit_peer_io) only the address its bind() gave (fd -1). */
typedef struct peer_sock {
    int fd;
    stunkit_addr local;
    uint32_t id; /* guessing's sockets: the number they are watched by */
} peer_sock;

/* A TCP connection to the server: TURN (a relayed candidate that needs no
 * UDP to the server) or the rendezvous when UDP goes unanswered. */
typedef struct peer_stream {
    int fd;             /* -1: none */
    stunkit_link *link; /* TLS (a turns: or stuns: server): framed by the link */
    int connected, added, closed;
    stunkit_addr local;
    stunkit_addr remote; /* the server it goes to */
    uint8_t rx[16384];
    size_t rx_len;
} peer_stream;

/* One server of the peer's fleet (peer_fleet.c). */
typedef struct peer_server {
    stunkit_addr udp, stream; /* STUN/TURN over UDP; the TCP/TLS fallbacks */
    char *tls_name;           /* the name its certificate must carry */
    int owns_name;
} peer_server;

/* A port mapping asked of the router for the socket on the way to it
 * (peer_map.c, through stunkit/mapping.h): a candidate that lets the peer
 * in even through a NAT whose own mappings depend on the destination. */
typedef struct peer_portmap {
    stunkit_mapping *m;
    int base;             /* the socket mapped (index), -1: none */
    int settled;          /* mapped, refused, or no answer in time: gathering may end */
    stunkit_addr gateway, external;
    stunkit_portmap_method method;
} peer_portmap;

/* The birthday-paradox upgrade from the relay to a direct path (peer_spray.c). */
typedef enum { SPRAY_IDLE, SPRAY_TOLD, SPRAY_RUNNING, SPRAY_DIRECT, SPRAY_OFF } spray_state;

typedef struct peer_spray {
    spray_state state;
    int self_hard;            /* our NAT maps per destination (we or the peer saw it) */
    int self_easy;            /* it does not: our checks to the peer's relay left from our srflx */
    int peer_seen_hard;       /* the peer's checks came from another port than its srflx */
    int peer_kind;            /* what the peer said of itself: 0 nothing yet, 1 easy, 2 hard, 3 off, 4 unknown */
    int peer_sees_us_hard;
    int peer_sees_us_easy;    /* the peer saw our checks come from our srflx exactly */
    int peer_seen_easy;       /* the peer's checks came from its srflx exactly (to another destination than the server) */
    int go;                   /* easy side: the peer's round number to guess for */
    int round, nfds;
    uint32_t serial;          /* the last guessing socket's id */
    peer_sock s[SPRAY_SOCKS]; /* the hard side's guessing sockets (nfds of them) */
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
    /* the direct path found: from s[sock] (hard) or the peer's socks[base] (easy) */
    int sock;
    stunkit_addr to, self_mapped;
    char why[96];             /* why it was not tried */
} peer_spray;

/* A browser's "<uuid>.local" candidate being resolved (peer_mdns.c). */
#define PEER_MDNS_MAX 8
typedef struct peer_mdns_q {
    char name[256];
    char line[512]; /* the candidate line as it came */
    size_t len, at, hlen; /* the name's place in it */
    uint16_t id;
    int tries, done;
    uint64_t next, give_up;
} peer_mdns_q;

#define PEER_MDNS_CACHE 16
typedef struct peer_mdns_rec {
    char name[128];
    stunkit_addr addr;
    uint64_t at; /* heard then (0: empty) */
} peer_mdns_rec;

/* Datagrams sent during a step (answers from callbacks, the agent's checks)
 * leave together at its end: one sendmmsg a socket, as they came in by
 * recvmmsg (peer_net.c). */
typedef struct peer_tx peer_tx;

/* Datagrams for stunkit_peer_recv() when there is no on_data. */
#define PEER_QUEUE 64
typedef struct peer_queue {
    uint8_t (*slot)[PEER_MAX_DATA];
    uint16_t len[PEER_QUEUE];
    int head, n;
} peer_queue;

struct stunkit_peer {
    stunkit_peer_config cfg;
    stunkit_env env;
    pthread_mutex_t lock; /* recursive: a callback may call back in */
    pthread_cond_t changed;
    pthread_t thread;
    int thread_on, thread_stop;
    int efd, wake_fd;
    stunkit_peer_io io; /* the application's network (has_io), else the peer's sockets */
    int has_io;
    stunkit_ice *ice;
    stunkit_ice_server servers[2];
    size_t n_servers;
    char *username, *password, *ca_file; /* copies */
    const char *tls_name;  /* the current server's (fleet[at]) */
    peer_server fleet[PEER_FLEET_MAX];
    int n_fleet, at;
    unsigned moves, moves_unanswered; /* to the next server: in all, and since the last answer */
    uint64_t moved_ms;
    peer_spray sp;
    int spray_on;
    peer_portmap pm;
    int map;
    peer_sock socks[PEER_MAX_SOCKS];
    int nsocks;
    int gathered, connected, failed, disconnected, closed;
    int selected;       /* ICE selected a pair (sel_local, sel_remote) */
    stunkit_peer_state state; /* as last reported */
    stunkit_addr server;
    stunkit_addr stream_server; /* the streams' server: TCP, or TLS (its own port) */
    int tls;
    char tls_error[160];
    peer_stream turn_tcp;
    stunkit_addr turn_server;  /* where turn_tcp goes: the stream server, or the alternate a 300 named */
    char turn_tls_name[256];   /* its certificate's name when a 300 gave one (ALTERNATE-DOMAIN), else tls_name's */
    int turn_moving;           /* the agent waits for turn_tcp to reach the alternate */
    unsigned turn_redirects;   /* 300s that moved turn_tcp */
    int tcp_relay;      /* credentials given: TURN over TCP is the fallback */
    int udp_server_ok;  /* the server answered over UDP (a candidate from it, or the rendezvous) */
    uint64_t t0;
    uint64_t t_role, t_tcp_relay; /* ms after t0 */
    int tcp_relay_opened;
    /* the rendezvous */
    stunkit_rdv *rdv;
    peer_stream rdv_tcp;
    int rdv_on_tcp, udp_refused; /* udp_refused: ICMP said no to UDP to the server */
    uint64_t rdv_start;
    peer_sock rdv_sock; /* UDP to the server for the rendezvous (connected) */
    int role_known, controlling, rdv_failed, rdv_left;
    char room[72];
    /* descriptions */
    char local_desc[STUNKIT_RDV_DESC_MAX];
    size_t local_len, local_told; /* own signalling: bytes already given out */
    char peer_desc[STUNKIT_RDV_DESC_MAX + 1];
    size_t peer_len, peer_applied;
    int peer_ready;     /* the peer's credentials are applied */
    int have_secret;
    stunkit_secret secret;
    char ufrag[9], pwd[33];
    uint64_t peer_ms;   /* the peer's description came */
    uint64_t peer_last_ms; /* ... and its last part (a peer still gathering trickles for a while) */
    char reason[200];
    stunkit_ice_candidate sel_local, sel_remote;
    uint64_t connect_ms, upgraded_ms;
    unsigned long sent, received, dropped;
    peer_queue q;
    peer_tx *tx;        /* allocated at the first step */
    int batching;       /* in a step: sends wait in tx */
    peer_mdns_q mq[PEER_MDNS_MAX];
    int n_mq, mdns_fd, mdns_group_fd;
    peer_mdns_rec mc[PEER_MDNS_CACHE];
};

/* peer.c */
uint64_t peer_now(const stunkit_peer *p);
void peer_log(stunkit_peer *p, uint64_t now, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void peer_emit(stunkit_peer *p, const stunkit_peer_event *ev);
void peer_fail(stunkit_peer *p, uint64_t now, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void peer_app_in(stunkit_peer *p, const uint8_t *d, size_t len, uint64_t now);
int peer_from_peer(const stunkit_peer *p, const stunkit_addr *from, int relayed);
int peer_selected_relayed(const stunkit_peer *p);
void peer_path_changed(stunkit_peer *p, const char *why);
void peer_watch(stunkit_peer *p, int fd, int kind, uint32_t index, int writable);

/* peer_net.c */
int peer_open_sock(stunkit_peer *p, const stunkit_addr *ip);
void peer_open_all(stunkit_peer *p);
void peer_route(stunkit_peer *p, const stunkit_ice_route *r);
int peer_udp_open(stunkit_peer *p, const stunkit_addr *ip, peer_sock *s, int kind, uint32_t index);
void peer_udp_send(stunkit_peer *p, const peer_sock *s, const stunkit_addr *to, const void *data, size_t len);
void peer_udp_close(stunkit_peer *p, peer_sock *s);
void peer_tx_flush(stunkit_peer *p);
void peer_tx_begin(stunkit_peer *p);
void peer_tx_free(stunkit_peer *p);
void peer_sock_datagram(stunkit_peer *p, int i, const stunkit_addr *src, const uint8_t *buf, size_t n, uint64_t now);
int peer_send_ctl(stunkit_peer *p, const char *text);
void peer_stream_open(stunkit_peer *p, peer_stream *st, int kind);
void peer_stream_close(peer_stream *st);
void peer_stream_send(peer_stream *st, const uint8_t *data, size_t len);
void peer_stream_event(stunkit_peer *p, peer_stream *st, int turn, uint64_t now);
void peer_streams_step(stunkit_peer *p, uint64_t now);
void peer_turn_stream_redirected(stunkit_peer *p, const stunkit_addr *to, const char *domain, uint64_t now);
uint64_t peer_streams_timeout(const stunkit_peer *p);
void peer_sock_readable(stunkit_peer *p, int i, uint64_t now);
int peer_udp_refusal(int e);

/* peer_fleet.c */
int peer_fleet_add(stunkit_peer *p, const stunkit_server *srv);
void peer_fleet_free(stunkit_peer *p);
void peer_fleet_use(stunkit_peer *p, int i);
int peer_fleet_move(stunkit_peer *p, uint64_t now, const char *why);
int peer_fleet_answered_here(const stunkit_peer *p);

/* peer_signal.c */
int peer_start_agent(stunkit_peer *p, int controlling, uint64_t now);
void peer_ice_pump(stunkit_peer *p, uint64_t now);
void peer_local_grow(stunkit_peer *p, const char *text, size_t len, uint64_t now);
int peer_apply(stunkit_peer *p, uint64_t now);
void peer_rdv_pump(stunkit_peer *p, uint64_t now);
void peer_rdv_readable(stunkit_peer *p, uint64_t now);
void peer_rdv_send(stunkit_peer *p, const uint8_t *data, size_t len);

/* peer_map.c */
void peer_map_start(stunkit_peer *p, uint64_t now);
void peer_map_pump(stunkit_peer *p, uint64_t now);
void peer_map_readable(stunkit_peer *p, uint64_t now);
uint64_t peer_map_timeout(const stunkit_peer *p);
void peer_map_end(stunkit_peer *p);

/* peer_mdns.c */
void peer_mdns_listen(stunkit_peer *p);
void peer_mdns_want(stunkit_peer *p, const char *line, size_t len, uint64_t now);
void peer_mdns_step(stunkit_peer *p, uint64_t now);
uint64_t peer_mdns_timeout(const stunkit_peer *p);
void peer_mdns_readable(stunkit_peer *p, int group, uint64_t now);

/* peer_spray.c */
void peer_spray_step(stunkit_peer *p, uint64_t now);
void peer_spray_input(stunkit_peer *p, int k, const stunkit_addr *from, const uint8_t *d, size_t len, uint64_t now);
void peer_spray_ctl(stunkit_peer *p, const char *msg, size_t len);
void peer_spray_close(stunkit_peer *p, int keep);
int peer_spray_busy(const stunkit_peer *p);
void peer_spray_readable(stunkit_peer *p, int fd, uint64_t now);
void peer_spray_datagram(stunkit_peer *p, int k, const stunkit_addr *src, const uint8_t *buf, size_t n, uint64_t now);
uint64_t peer_spray_timeout(const stunkit_peer *p, uint64_t now);
void peer_spray_pair(const stunkit_peer *p, stunkit_ice_candidate *l, stunkit_ice_candidate *r);

#endif
