/*
 * stunkit/peer.h - a connection to one other peer, behind whatever NATs:
 * the library does what `stunkit punch` does, and the application sends and
 * receives datagrams.
 *
 *   stunkit_peer_config c;
 *   STUNKIT_CONFIG_INIT(c);
 *   c.server = "turn:stun.example.net"; c.username = "alice"; c.password = "pw";
 *   c.secret = "something both users were given";   (the room comes from it)
 *   c.on_data = got_line;                           (the peer's datagrams)
 *   stunkit_peer *p = stunkit_peer_new(&c, &err);
 *   if (stunkit_peer_wait(p, 30000) == STUNKIT_PEER_CONNECTED)
 *       stunkit_peer_send(p, "hello", 5);
 *
 * What it owns (all released by stunkit_peer_free()): a UDP socket on every
 * usable local address (IPv4 and IPv6; not loopback unless the server is
 * there, not link-local, not tunnel interfaces); the ICE agent (stunkit/ice.h)
 * with STUN and TURN gathering from the server, over UDP and, when UDP to
 * the server is refused or unanswered for a second, TURN over TCP or TLS
 * (a turns: server); a browser's "<uuid>.local" host candidates resolved
 * by multicast DNS on the local link (RFC 6762; when that fails, as it does
 * across NATs, its reflexive addresses serve); a port mapping asked of the
 * router (PCP, NAT-PMP and
 * UPnP IGD at once; deleted at the end); birthday-paradox port guessing
 * beside the relay when exactly one NAT maps per destination; consent
 * freshness and renomination (a relayed path first, a direct one taking
 * over when its checks get through); and the signalling: a room of
 * stunkitd's rendezvous (stunkit/rendezvous.h: the first in the room
 * offers, candidates trickle both ways, TCP when UDP to the server is
 * refused), or the application's own (STUNKIT_PEER_EVENT_DESCRIPTION gives
 * the lines to carry, stunkit_peer_apply() takes the other side's).
 *
 * With a secret both users know (stunkit/secret.h): the room name comes
 * from it, the ICE passwords are derived and never sent, and every
 * description is sealed, so neither a stranger nor the rendezvous server
 * can take the peer's place or steer its checks. Without one, whoever comes
 * to the room first is taken for the peer.
 *
 * Data: stunkit_peer_send() sends one datagram over the selected path (as
 * it is on a direct path: no framing; wrapped for the TURN server on a
 * relayed one); the peer's come to on_data (or stunkit_peer_recv()), the
 * boundaries kept. Only datagrams from the address the peer proved with an
 * authenticated ICE check are taken. Datagrams that begin "SKP1 nat " or
 * "SKP1 spray " are the two peers' own (what each saw of its NAT, for port
 * guessing) and are not handed on. stunkit does not encrypt: the
 * application does (DTLS, WireGuard, ...).
 *
 * Three ways to drive it (one at a time):
 *   - its own thread: stunkit_peer_start_thread(); callbacks come from that
 *     thread; every call below may be made from any thread (a callback may
 *     call stunkit_peer_send());
 *   - the application's event loop: watch stunkit_peer_fd() for reading
 *     (one epoll descriptor for all the peer's sockets) and wake at
 *     stunkit_peer_timeout(); call stunkit_peer_step() on either;
 *   - blocking: stunkit_peer_wait() until connected or failed, then
 *     stunkit_peer_send() and stunkit_peer_recv(timeout).
 * With the application's own network (config io: a simulator, a test, a
 * user-space stack) the peer opens no socket: see stunkit_peer_io.
 * Several peers in one process are independent; there is no global state.
 * Times are milliseconds of the peer's clock (stunkit_now_ms() unless the
 * config gives one).
 */
#ifndef STUNKIT_PEER_H
#define STUNKIT_PEER_H

#include <stddef.h>
#include <stdint.h>

#include "stunkit/addr.h"
#include "stunkit/export.h"
#include "stunkit/ice.h"
#include "stunkit/machine.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct stunkit_peer stunkit_peer;

/* Birthday-paradox punching: the symmetric NAT's side opens this many
 * sockets, the other guesses this many ports, a round; at most this many
 * datagrams a second and in all. */
#define STUNKIT_PEER_GUESS_SOCKETS 256
#define STUNKIT_PEER_GUESS_PORTS 1024
#define STUNKIT_PEER_GUESS_ROUNDS 3
#define STUNKIT_PEER_GUESS_PPS 2500
#define STUNKIT_PEER_GUESS_BUDGET (STUNKIT_PEER_GUESS_ROUNDS * (STUNKIT_PEER_GUESS_SOCKETS + STUNKIT_PEER_GUESS_PORTS))

typedef enum stunkit_peer_state {
    STUNKIT_PEER_MEETING = 0,     /* in the room, or waiting for the peer's description */
    STUNKIT_PEER_CONNECTING = 1,  /* the peer's description is in: checks run */
    STUNKIT_PEER_CONNECTED = 2,   /* a path is selected: data goes */
    STUNKIT_PEER_DISCONNECTED = 3,/* consent lost (RFC 7675: 30 s unanswered): the path is gone */
    STUNKIT_PEER_FAILED = 4,      /* no path, no room, or the peer did not come: reason says */
    STUNKIT_PEER_CLOSED = 5
} stunkit_peer_state;

typedef enum stunkit_peer_event_type {
    STUNKIT_PEER_EVENT_STATE = 1,       /* state (and reason for FAILED / DISCONNECTED) */
    STUNKIT_PEER_EVENT_ROLE = 2,        /* the room said who offers: controlling */
    STUNKIT_PEER_EVENT_PATH = 3,        /* the path changed: local, remote, relayed, why */
    STUNKIT_PEER_EVENT_DESCRIPTION = 4, /* (own signalling) text to carry to the peer, in order */
    STUNKIT_PEER_EVENT_GATHERED = 5,    /* every candidate of ours is known */
    STUNKIT_PEER_EVENT_LOG = 6          /* a line of what happens (text), for debugging */
} stunkit_peer_event_type;

typedef struct stunkit_peer_event {
    stunkit_peer_event_type type;
    stunkit_peer_state state;
    const char *reason; /* FAILED, DISCONNECTED; PATH: "ice", "renominated", "birthday" */
    int controlling;
    stunkit_ice_candidate local, remote; /* PATH */
    int relayed;                         /* PATH: through a TURN relay (either side's) */
    const char *text;                    /* DESCRIPTION, LOG */
    size_t len;
} stunkit_peer_event;

typedef void (*stunkit_peer_event_cb)(stunkit_peer *p, const stunkit_peer_event *ev, void *user);
typedef void (*stunkit_peer_data_cb)(stunkit_peer *p, const uint8_t *data, size_t len, void *user);

/* The application's own network instead of the peer's sockets: a
 * simulator, a test, a user-space stack. The peer then opens no socket
 * (and needs no epoll descriptor to be watched): it asks bind() for a UDP
 * port on each of local_addresses (and one more for the rendezvous, on the
 * first), sends through send(), and takes what arrives from
 * stunkit_peer_input(). Only UDP goes this way: no TCP/TLS fallbacks, no
 * port mapping, no multicast DNS; birthday guessing binds its sockets here
 * too. The application drives the peer (stunkit_peer_timeout() and
 * stunkit_peer_step() on its clock); stunkit_peer_free() sends what closing
 * needs (the allocations' Refresh 0, the room's leave) once, and waits for
 * no answer. */
typedef struct stunkit_peer_io {
    /* A UDP port on ip: 0 and *bound (ip and port), or -1. */
    int (*bind)(void *ctx, const stunkit_addr *ip, stunkit_addr *bound);
    /* One datagram from local (an address bind() gave) to `to`. */
    void (*send)(void *ctx, const stunkit_addr *local, const stunkit_addr *to, const uint8_t *data, size_t len);
    /* The port is no longer the peer's (NULL: nothing to do). */
    void (*unbind)(void *ctx, const stunkit_addr *local);
    void *ctx;
} stunkit_peer_io;

typedef struct stunkit_peer_config {
    size_t size;          /* sizeof(stunkit_peer_config) (stunkit/machine.h) */
    stunkit_env env;      /* randomness; NULL random: the OS's */
    /* The STUN/TURN server (and rendezvous): host[:port], or a stun:,
     * turn:, stuns: or turns: URI (turns: carries the TCP fallbacks over
     * TLS). Resolved once by stunkit_peer_new(). */
    const char *server;
    const char *username; /* TURN and the rendezvous; NULL: STUN only, no relay */
    const char *password;
    const char *ca_file;  /* TLS: trust these CAs (PEM) instead of the system's */
    int tls_insecure;     /* TLS: do not check the server's certificate */
    /* Signalling. A room (1-64 of A-Z a-z 0-9 . _ ~ -) or a secret: the
     * rendezvous (needs username). Neither, or own_signalling: the
     * application carries the descriptions (controlling says which side
     * offers; a room's first comer offers). */
    const char *room;
    const char *secret;
    size_t secret_len;    /* 0: strlen(secret) */
    int own_signalling;   /* 1: no rendezvous even with a secret */
    int controlling;
    int trickle;          /* own signalling: DESCRIPTION events as candidates come (else one, gathered) */
    /* Behaviour */
    int relay_only;       /* relayed candidates only (iceTransportPolicy "relay"); no mapping, no guessing */
    int no_port_mapping;  /* do not ask the router (PCP, NAT-PMP, UPnP) */
    int no_guessing;      /* no birthday-paradox punching */
    int aggressive;       /* aggressive nomination */
    int no_mdns;          /* do not resolve a browser's "<uuid>.local" candidates by multicast DNS */
    const char *const *local_addresses; /* only these (textual IPs); NULL: every usable one */
    size_t n_local_addresses;
    uint32_t connect_timeout_ms; /* after the peer's description: 0 = 10000, up to 3x on a lossy path */
    uint32_t meet_timeout_ms;    /* for the peer to come: 0 = forever */
    /* The clock (NULL: stunkit_now_ms()): what `now` means to the peer's
     * timers; a test passes a fake one to move time on. */
    uint64_t (*clock)(void *ctx);
    void *clock_ctx;
    /* Callbacks (either may be NULL: stunkit_peer_recv() then queues the data) */
    stunkit_peer_event_cb on_event;
    stunkit_peer_data_cb on_data;
    void *user;
    /* The application's network (NULL: the peer's own sockets); needs
     * local_addresses. Copied: the struct may go after stunkit_peer_new(). */
    const stunkit_peer_io *io;
    /* Other servers of the same fleet (up to 7, each as `server`, all TLS
     * or none; the same credentials; rooms shared: stunkitd
     * --rendezvous-redis), after the addresses the server's own name gives
     * (DNS SRV, several A/AAAA: those come first, and are a fleet too).
     * When the rendezvous' server goes silent for 4 s, answers 5xx, or
     * refuses or closes the connection, the peer carries the rendezvous on
     * at the next, as the same peer: its place in the room and both
     * descriptions are kept. The ICE agent keeps the server it started
     * with (a relayed candidate dies with it; direct paths do not). */
    const char *const *fallback_servers;
    size_t n_fallback_servers;
} stunkit_peer_config;

/* Resolves the server, opens the sockets, joins the room (or starts the
 * agent with own signalling). NULL with *err: STUNKIT_ERR_INVAL (the
 * config: what is wrong goes to why), STUNKIT_ERR_RESOLVE, STUNKIT_ERR_SYSCALL
 * (no usable local address, a --local that is not ours), STUNKIT_ERR_NOMEM. */
STUNKIT_API stunkit_peer *stunkit_peer_new(const stunkit_peer_config *cfg, int *err, char *why, size_t why_len);

/* Leaves the room, deletes the router's mapping, frees the TURN allocations
 * (waits up to about 1.5 s for their answers), stops the thread, closes
 * every socket. NULL is fine. Not from one of the peer's own callbacks (it
 * waits for the peer's thread to end). */
STUNKIT_API void stunkit_peer_free(stunkit_peer *p);

/* Own signalling: the peer's description, or the next part of it (lines in
 * the order sent). 0, STUNKIT_ERR_INTEGRITY_MISMATCH (with a secret: not
 * sealed with it; nothing used), STUNKIT_ERR_BAD_VALUE (malformed). */
STUNKIT_API int stunkit_peer_apply(stunkit_peer *p, const char *text, size_t len);
/* Our whole description so far (sealed with a secret, ending in
 * end-of-candidates once gathered), for signalling that carries one text. */
STUNKIT_API int stunkit_peer_describe(stunkit_peer *p, char *buf, size_t cap);

/* One datagram to the peer: 0, STUNKIT_ERR_STATE (not connected),
 * STUNKIT_ERR_NOBUF (over 4096 bytes), STUNKIT_ERR_SYSCALL. */
STUNKIT_API int stunkit_peer_send(stunkit_peer *p, const void *data, size_t len);

STUNKIT_API stunkit_peer_state stunkit_peer_get_state(const stunkit_peer *p);
STUNKIT_API const char *stunkit_peer_state_name(stunkit_peer_state s);

/* Event loop: the descriptor to watch for reading, when to step next (an
 * absolute stunkit_now_ms() time), and the step (reads what came, acts on
 * what is due, calls back). */
STUNKIT_API int stunkit_peer_fd(const stunkit_peer *p);
STUNKIT_API uint64_t stunkit_peer_timeout(stunkit_peer *p);
STUNKIT_API void stunkit_peer_step(stunkit_peer *p, uint64_t now_ms);

/* The application's network (config io): one datagram that came to local
 * (an address io.bind gave the peer) from `from`, then the peer's step.
 * 0, STUNKIT_ERR_STATE (no io, or closed), STUNKIT_ERR_NOT_FOUND (local is
 * not the peer's: dropped). */
STUNKIT_API int stunkit_peer_input(stunkit_peer *p, const stunkit_addr *local, const stunkit_addr *from,
                                   const void *data, size_t len, uint64_t now_ms);

/* Own thread: 0, or STUNKIT_ERR_SYSCALL. Stopped by stunkit_peer_free(). */
STUNKIT_API int stunkit_peer_start_thread(stunkit_peer *p);

/* Blocking: drives the peer (unless its thread does) until it is connected,
 * failed or closed, or timeout_ms passed; the state then. */
STUNKIT_API stunkit_peer_state stunkit_peer_wait(stunkit_peer *p, uint32_t timeout_ms);
/* Blocking: the next datagram of the peer's (when no on_data is set) into
 * buf: its length, 0 after timeout_ms, STUNKIT_ERR_NOBUF (cut to cap),
 * STUNKIT_ERR_CLOSED (failed, disconnected or closed and nothing queued). */
STUNKIT_API int stunkit_peer_recv(stunkit_peer *p, void *buf, size_t cap, uint32_t timeout_ms);

/* What happened, for reports (stunkit punch's). */
typedef struct stunkit_peer_info {
    stunkit_peer_state state;
    char reason[200];
    int controlling, role_known, gathered, peer_ready;
    int connected;         /* a path was found (it may have gone since: state says) */
    int selected, relayed;
    stunkit_ice_candidate local, remote; /* the path (birthday: as found) */
    int tcp_relay, tls;                  /* the path's relay is our TURN over TCP (TLS) */
    uint64_t connect_ms;   /* from the peer's description to the first path */
    uint64_t upgraded_ms;  /* ... to a direct path replacing a relayed one (0: none) */
    uint64_t role_ms, tcp_relay_ms; /* from the start (UINT64_MAX: not) */
    unsigned check_loss, rendezvous_loss; /* per mille */
    int upgrading;         /* ICE: a direct path may still replace the relayed one */
    /* the router's port mapping */
    int mapped;
    const char *mapping_method;
    stunkit_addr mapping_external;
    /* birthday-paradox punching */
    int birthday_tried, birthday_running /* guessing may still replace the relayed path */, birthday_direct, birthday_hard_side, birthday_rounds;
    long birthday_probes, birthday_sockets;
    uint64_t birthday_ms, birthday_at_ms;
    char birthday_why[96];
    unsigned long sent, received, dropped; /* application datagrams */
    /* the fleet: the server the rendezvous is at now, and the moves to it */
    stunkit_addr server;
    unsigned server_moves;
    int n_servers;
    unsigned tcp_relay_redirects; /* 300s that sent the TURN-over-TCP/TLS stream to an alternate */
} stunkit_peer_info;

STUNKIT_API void stunkit_peer_get_info(stunkit_peer *p, stunkit_peer_info *out);

#ifdef __cplusplus
}
#endif
#endif
