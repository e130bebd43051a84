/*
 * stunkit/ice.h - an ICE agent (RFC 8445) as a sans-I/O machine with the
 * contract of stunkit/machine.h: datagrams and `now` in, datagrams and
 * events out. The application owns the sockets (and may share them with its
 * own traffic: input says whether a datagram was ICE's), the clock and the
 * signalling; descriptions are SDP attribute lines (RFC 8839), so any
 * signalling can carry them and other agents understand them.
 *
 *   stunkit_ice_new()          credentials, role, STUN/TURN servers
 *   stunkit_ice_add_base()     a local socket: a host candidate, and from it
 *                              server-reflexive (STUN) and relayed (TURN
 *                              over UDP) candidates, each reported as it is
 *                              found (trickle, RFC 8838), then GATHERED
 *   stunkit_ice_add_local()    a candidate found elsewhere (a port mapping
 *                              from stunkit/portmap.h or UPnP)
 *   stunkit_ice_set_remote()   the peer's ufrag and pwd; candidates with
 *   stunkit_ice_add_remote()   (any time), stunkit_ice_remote_done() for
 *                              end-of-candidates; stunkit_ice_apply() takes
 *                              the SDP lines whole
 *   poll / timeout / input     checks paced every Ta (50 ms), triggered
 *                              checks, peer-reflexive candidates, 487 role
 *                              conflicts, regular or aggressive nomination;
 *                              SELECTED names the pair, CONNECTED follows
 *   stunkit_ice_send()         where (and how wrapped) application data goes
 *   consent (RFC 7675)         the selected pair is re-checked every 5 s
 *                              (+-20%); 30 s without an answer: DISCONNECTED
 *   stunkit_ice_restart()      new credentials, checks start over (RFC 8445 9)
 *   renomination               when both descriptions carry
 *                              "a=ice-options:renomination" (libwebrtc's
 *                              draft-thatcher-ice-renomination): a relayed
 *                              pair is used first and a direct pair whose
 *                              checks get through later takes its place
 *                              (a new SELECTED); NOMINATION says which
 *
 * One component, one data stream, UDP candidates (relayed ones reach the
 * TURN server over UDP, or over a TCP/TLS stream the application opens:
 * stunkit_ice_add_stream()). Memory is taken by stunkit_ice_new() and by
 * the TURN client each TURN server gets when a base is added
 * (stunkit_ice_add_base(), stunkit_ice_add_stream()); none after that. No
 * clock or randomness of its own.
 */
#ifndef STUNKIT_ICE_H
#define STUNKIT_ICE_H

#include <stddef.h>
#include <stdint.h>

#include "stunkit/addr.h"
#include "stunkit/export.h"
#include "stunkit/machine.h"

#ifdef __cplusplus
extern "C" {
#endif

#define STUNKIT_ICE_MAX_LOCAL 16
#define STUNKIT_ICE_MAX_REMOTE 32
#define STUNKIT_ICE_MAX_PAIRS 100 /* RFC 8445 6.1.2.5: "a default of 100" */
#define STUNKIT_ICE_MAX_SERVERS 4
#define STUNKIT_ICE_MAX_BASES 8

typedef enum stunkit_ice_type {
    STUNKIT_ICE_TYPE_HOST = 0,
    STUNKIT_ICE_TYPE_SRFLX = 1,
    STUNKIT_ICE_TYPE_PRFLX = 2,
    STUNKIT_ICE_TYPE_RELAY = 3
} stunkit_ice_type;

typedef struct stunkit_ice_candidate {
    stunkit_ice_type type;
    stunkit_addr addr;     /* the transport address */
    stunkit_addr related;  /* raddr/rport; family 0: none */
    uint32_t priority;
    uint32_t component;    /* 1 */
    int tcp;               /* 0: UDP. TCP candidates are parsed but not paired */
    char foundation[33];   /* 1 to 32 ice-chars */
    int base;              /* local candidates: the application's socket */
} stunkit_ice_candidate;

/* "candidate:1 1 UDP 2130706431 192.0.2.2 41000 typ host" (no "a="): the
 * length written, or STUNKIT_ERR_NOBUF. */
STUNKIT_API int stunkit_ice_candidate_format(const stunkit_ice_candidate *c, char *buf, size_t cap);
/* Parses an RFC 8839 candidate attribute, with or without "a=": 0, or
 * STUNKIT_ERR_BAD_VALUE (malformed), STUNKIT_ERR_BAD_ADDRESS (a host name,
 * e.g. an mDNS ".local" name: resolve it and fill addr yourself). Unknown
 * extensions are skipped. */
STUNKIT_API int stunkit_ice_candidate_parse(const char *text, size_t len, stunkit_ice_candidate *c);
STUNKIT_API const char *stunkit_ice_type_name(stunkit_ice_type t);

typedef struct stunkit_ice_server {
    stunkit_addr addr;
    int turn;             /* 0: STUN (server-reflexive); 1: TURN (relayed, and reflexive) */
    const char *username; /* TURN */
    const char *password;
    /* To the server: STUNKIT_UDP (0) from every base; STUNKIT_TCP or
     * STUNKIT_TLS (TURN only) over a connection the application opens and
     * hands over with stunkit_ice_add_stream(): the relayed candidate that
     * works when UDP is blocked (RFC 8656 3.1; the relayed side is UDP). */
    stunkit_transport transport;
} stunkit_ice_server;

typedef struct stunkit_ice_config {
    size_t size;          /* sizeof(stunkit_ice_config) (stunkit/machine.h) */
    stunkit_env env;      /* randomness (required): credentials, tie-breaker, transaction IDs */
    int controlling;      /* the initial role (a 487 may switch it) */
    int aggressive;       /* aggressive nomination: every check nominates (RFC 5245 8.1.1.2) */
    const char *ufrag;    /* NULL: random (8 ice-chars); else 4 to 256 ice-chars */
    const char *pwd;      /* NULL: random (24 ice-chars); else 22 to 256 ice-chars */
    const stunkit_ice_server *servers;
    size_t n_servers;     /* at most STUNKIT_ICE_MAX_SERVERS */
    uint32_t ta_ms;       /* check pacing; 0: 50 (RFC 8445 14.2) */
    uint32_t consent_ms;  /* consent check interval; 0: 5000 (RFC 7675 5.1) */
    uint32_t consent_timeout_ms; /* 0: 30000 (RFC 7675 5.1) */
    const char *software; /* SOFTWARE in requests, NULL for none */
    /* (added 2026-12-07; an older, shorter config reads it as 0)
     * 1: relayed candidates only, WebRTC's iceTransportPolicy "relay": the
     * host and server-reflexive addresses are neither signalled nor used
     * (no STUN gathering; checks arriving on them go unanswered), so the
     * peer learns only the relay's address. */
    int relay_only;
} stunkit_ice_config;

typedef enum stunkit_ice_state {
    STUNKIT_ICE_STATE_NEW = 0,       /* no remote candidates yet */
    STUNKIT_ICE_STATE_CHECKING,      /* checks running */
    STUNKIT_ICE_STATE_CONNECTED,     /* a pair is selected (nominated) */
    STUNKIT_ICE_STATE_FAILED,        /* every pair failed and both sides are done gathering */
    STUNKIT_ICE_STATE_DISCONNECTED,  /* consent expired on the selected pair (RFC 7675) */
    STUNKIT_ICE_STATE_CLOSED
} stunkit_ice_state;

typedef enum stunkit_ice_event {
    STUNKIT_ICE_EVENT_CANDIDATE = 1, /* local: a candidate to signal (trickle) */
    STUNKIT_ICE_EVENT_GATHERED,      /* every local candidate was reported: signal end-of-candidates */
    STUNKIT_ICE_EVENT_STATE,         /* state (and reason for FAILED/DISCONNECTED) */
    STUNKIT_ICE_EVENT_SELECTED,      /* local, remote: the pair application data takes now */
    STUNKIT_ICE_EVENT_ROLE,          /* controlling: the role changed (a role conflict, RFC 8445 7.3.1.1) */
    /* base: the TURN server of that TCP/TLS stream answered 300 Try
     * Alternate (RFC 8489 10, a server draining or full): close the stream,
     * connect one to `to` (over TLS: reason is the ALTERNATE-DOMAIN its
     * certificate must name, empty: the same name as before) and hand it
     * over with stunkit_ice_stream_moved(); the Allocate runs again there.
     * Nothing goes to the old stream meanwhile. (UDP follows on its own.) */
    STUNKIT_ICE_EVENT_STREAM_REDIRECTED
} stunkit_ice_event;

typedef struct stunkit_ice_output {
    int send;                  /* 1: send data[0..len) from socket `base` to `to`; 0: an event */
    int base;
    stunkit_addr to;
    const uint8_t *data;       /* valid until the next call into the agent */
    size_t len;
    stunkit_ice_event event;
    stunkit_ice_state state;
    int controlling;
    stunkit_ice_candidate local, remote;
    char reason[96];
} stunkit_ice_output;

typedef struct stunkit_ice stunkit_ice;

/* NULL for bad settings (no randomness, bad credentials, too many
 * servers) or without memory. */
STUNKIT_API stunkit_ice *stunkit_ice_new(const stunkit_ice_config *cfg, uint64_t now_ms);
STUNKIT_API void stunkit_ice_free(stunkit_ice *a);

/* Our credentials (valid while the agent lives; a restart changes them). */
STUNKIT_API const char *stunkit_ice_ufrag(const stunkit_ice *a);
STUNKIT_API const char *stunkit_ice_pwd(const stunkit_ice *a);
STUNKIT_API int stunkit_ice_controlling(const stunkit_ice *a);
STUNKIT_API stunkit_ice_state stunkit_ice_get_state(const stunkit_ice *a);

/* A local socket bound to `local` (a concrete address, not a wildcard),
 * named by `base` (any int the application likes, e.g. its descriptor).
 * 0, STUNKIT_ERR_NOMEM (too many), STUNKIT_ERR_INVAL. */
STUNKIT_API int stunkit_ice_add_base(stunkit_ice *a, int base, const stunkit_addr *local, uint64_t now_ms);
/* A TCP or TLS connection the application opened to servers[server] (a
 * TURN server with transport TCP or TLS), named by `base` like a socket
 * (local: its local address). A relayed candidate is allocated over it.
 * Outputs for this base are written to the stream in order (requests are
 * not retransmitted there; ChannelData is padded, RFC 8656 12.5); what the
 * stream brings is cut into messages with stunkit_turn_frame() and each
 * given to stunkit_ice_input() with `from` = the server's address.
 * 0, STUNKIT_ERR_INVAL (not such a server), STUNKIT_ERR_NOMEM. */
STUNKIT_API int stunkit_ice_add_stream(stunkit_ice *a, int base, size_t server, const stunkit_addr *local,
                                       uint64_t now_ms);
/* The connection ended: its allocation is gone (RFC 8656 3.1), and the
 * pairs of its relayed candidate fail. */
STUNKIT_API void stunkit_ice_stream_closed(stunkit_ice *a, int base, uint64_t now_ms);
/* After STUNKIT_ICE_EVENT_STREAM_REDIRECTED: the stream named base now
 * goes to the alternate (local: the new connection's local address); the
 * Allocate is sent there. 0, STUNKIT_ERR_INVAL (no stream of that name
 * waits to move). When the alternate cannot be reached, say
 * stunkit_ice_stream_closed() instead. */
STUNKIT_API int stunkit_ice_stream_moved(stunkit_ice *a, int base, const stunkit_addr *local, uint64_t now_ms);
/* A local candidate found by other means (c->base names its socket; type
 * srflx for a port mapping): reported and paired like the others. */
STUNKIT_API int stunkit_ice_add_local(stunkit_ice *a, const stunkit_ice_candidate *c, uint64_t now_ms);
/* No more bases or local candidates will be added by hand: GATHERED comes
 * once the servers have answered (or not). */
STUNKIT_API void stunkit_ice_local_done(stunkit_ice *a, uint64_t now_ms);

STUNKIT_API int stunkit_ice_set_remote(stunkit_ice *a, const char *ufrag, const char *pwd, uint64_t now_ms);
STUNKIT_API int stunkit_ice_add_remote(stunkit_ice *a, const stunkit_ice_candidate *c, uint64_t now_ms);
STUNKIT_API void stunkit_ice_remote_done(stunkit_ice *a, uint64_t now_ms);
/* The peer's a=ice-options value (space-separated) when it comes by other
 * means than stunkit_ice_apply(): "renomination" turns renomination on. */
STUNKIT_API void stunkit_ice_set_remote_options(stunkit_ice *a, const char *options);
/* The peer's description as SDP lines (a=ice-ufrag, a=ice-pwd,
 * a=candidate, a=end-of-candidates; other lines ignored, CRLF or LF).
 * Returns how many candidates were added, or an error for a malformed
 * ufrag/pwd line. Candidates with host names are skipped. A different ufrag
 * than before is an ICE restart by the peer. */
STUNKIT_API int stunkit_ice_apply(stunkit_ice *a, const char *sdp, size_t len, uint64_t now_ms);
/* Our candidates so far, the peer-reflexive ones included (addresses the
 * peer's answers named that no server did: a NAT whose mapping depends on
 * the destination shows here, RFC 4787 4.1). Copies up to max into out;
 * returns how many there are. */
STUNKIT_API int stunkit_ice_get_local(const stunkit_ice *a, stunkit_ice_candidate *out, int max);
/* The peer's candidates so far (signalled and peer-reflexive), the same way. */
STUNKIT_API int stunkit_ice_get_remote(const stunkit_ice *a, stunkit_ice_candidate *out, int max);

/* Our description so far: ufrag, pwd, ice-options (trickle renomination), the candidates
 * reported, and end-of-candidates once GATHERED. Length or NOBUF. */
STUNKIT_API int stunkit_ice_describe(const stunkit_ice *a, char *buf, size_t cap);

/* 1: *out holds a datagram to send or an event (call again); 0: nothing
 * before stunkit_ice_timeout() or a datagram; STUNKIT_ERR_NOBUF (once): events
 * were lost, the application did not poll them in time (call again: the
 * ones that fit follow). */
STUNKIT_API int stunkit_ice_poll(stunkit_ice *a, uint64_t now_ms, stunkit_ice_output *out);
STUNKIT_API uint64_t stunkit_ice_timeout(const stunkit_ice *a);


/* A datagram that arrived on socket `base` from `from` (stunkit/machine.h):
 * STUNKIT_INPUT_NOT_MINE, not ICE's (the application's own data on a
 * direct path); STUNKIT_INPUT_TAKEN, ICE's (or dropped as invalid);
 * STUNKIT_INPUT_APP_DATA, application data relayed by TURN, in *d. */
STUNKIT_API int stunkit_ice_input(stunkit_ice *a, int base, const stunkit_addr *from, const uint8_t *data,
                                  size_t len, uint64_t now_ms, stunkit_app_data *d);

/* Where application data goes: from socket `base` to `to`, the bytes at
 * data (the caller's own, or wrapped for the TURN server into buf). */
typedef struct stunkit_ice_route {
    int base;
    stunkit_addr to;
    const uint8_t *data;
    size_t len;
    int relayed;
} stunkit_ice_route;

/* STUNKIT_ERR_STATE when no pair is selected or consent has expired
 * (RFC 7675: sending MUST stop), STUNKIT_ERR_NOBUF. */
STUNKIT_API int stunkit_ice_send(stunkit_ice *a, const uint8_t *data, size_t len, uint8_t *buf, size_t cap,
                                 stunkit_ice_route *r);

/* The pair application data goes on now (stunkit_ice_send()): 1 the
 * selected pair, 2 before a selection the best valid one (RFC 8445 12.1),
 * 0 none. local is the candidate the peer sees (a peer-reflexive one where
 * the check's answer named it). Either pointer may be NULL. */
STUNKIT_API int stunkit_ice_path(const stunkit_ice *a, stunkit_ice_candidate *local, stunkit_ice_candidate *remote);

/* 1 when the peer has proven addr: a connectivity check from it passed the
 * integrity check with our password, or our check to it was answered with
 * the peer's (RFC 8445 7.2.5.1, 7.3.1.1). Through a TURN relay the address
 * is the one the TURN server saw. ip_only: any port of addr's IP. What an
 * application sends to an address it learned from the peer (beyond ICE's
 * own checks) should go only where this says 1: a candidate is only the
 * peer's claim. */
STUNKIT_API int stunkit_ice_proven(const stunkit_ice *a, const stunkit_addr *addr, int ip_only);

/* The loss the checks have seen, in permille (0-1000): of the
 * transmissions the answered checks (and STUN gathering requests) needed,
 * the share that went unanswered; 0 until one was answered. A check is
 * sent more often than RFC 8489's default 7 times on a lossy path; an
 * application may scale its own deadlines by 1000 / (1000 - loss)
 * (stunkit punch does). */
STUNKIT_API unsigned stunkit_ice_loss(const stunkit_ice *a);

/* 1 while the selected pair is relayed and, under renomination, a direct
 * pair may still take its place (it worked and is being nominated, the
 * peer's checks arrive on it, or ours are in their first 3 s): worth
 * waiting for where the path matters. */
STUNKIT_API int stunkit_ice_upgrading(const stunkit_ice *a);

/* ICE restart (RFC 8445 9): new local credentials, the peer's forgotten
 * until stunkit_ice_set_remote(); the selected pair stays in use until a
 * new one is nominated. Candidates are reported again. */
STUNKIT_API int stunkit_ice_restart(stunkit_ice *a, uint64_t now_ms);
/* Releases TURN allocations (Refresh with lifetime 0) and stops checks:
 * poll until it returns 0 to send the last datagrams. */
STUNKIT_API void stunkit_ice_close(stunkit_ice *a, uint64_t now_ms);

STUNKIT_API const char *stunkit_ice_state_name(stunkit_ice_state s);
STUNKIT_API const char *stunkit_ice_event_name(stunkit_ice_event e);

#ifdef __cplusplus
}
#endif
#endif
