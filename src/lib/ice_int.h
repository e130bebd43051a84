/*
 * ice_int.h - the ICE agent's state, shared by its files (internal):
 * ice.c (candidates, pairs, checks, nomination, consent, poll and input)
 * and ice_sdp.c (candidate lines and descriptions, RFC 8839).
 */
#ifndef STUNKIT_ICE_INT_H
#define STUNKIT_ICE_INT_H

#include <stddef.h>
#include <stdint.h>

#include "stunkit/ice.h"
#include "stunkit/integrity.h"
#include "stunkit/turn.h"
#include "stunkit/txn.h"

#include "outq.h"

enum { P_FROZEN, P_WAITING, P_IN_PROGRESS, P_SUCCEEDED, P_FAILED };


#define MAX_PENDING 8
#define MAX_PERMS 32

typedef struct lcand {
    stunkit_ice_candidate c;
    int bi;        /* index into bases */
    int server;    /* the STUN/TURN server it came from, -1 none */
    int turn;      /* relayed: index into turns, else -1 */
    int reported;
    int hidden;    /* relay_only: a host or server-reflexive candidate, never signalled or paired */
} lcand;

typedef struct base_t {
    int id;
    stunkit_addr addr;
    uint16_t local_pref;
    int stream; /* a TCP/TLS connection to a TURN server: no host candidate */
} base_t;

typedef struct gather_t {
    int bi, server;
    stunkit_txn txn;
    uint8_t req[64];
    size_t len;
    int done;
} gather_t;

typedef struct perm_t {
    stunkit_addr peer;
    int state; /* 1 asked, 2 granted, 3 refused */
} perm_t;

typedef struct turn_t {
    stunkit_turn *t;
    int bi, server;
    stunkit_addr addr; /* where it is: the server's address, or the alternate a 300 sent it to */
    int done;   /* allocated or failed */
    int moving; /* over a stream: a 300 named another server; the application reconnects */
    int lc;     /* the relayed candidate, -1 until allocated */
    int lc2;    /* a dual allocation's other-family relayed candidate, -1: none */
    perm_t perms[MAX_PERMS];
    int nperms;
    int bound;  /* a channel to the selected peer was asked for */
} turn_t;

typedef struct pair_t {
    int l, r;       /* local (host or relay) and remote candidates */
    int vl;         /* valid: the local candidate the mapped address names; -1 not valid */
    uint64_t prio;
    int state;
    int nominate;   /* controlling: the next check carries USE-CANDIDATE */
    int nominated;
    int use_cand_rx; /* controlled: the peer nominated it; nominated when it succeeds */
    int queued;     /* in the triggered-check queue */
    int sent_controlling, sent_use_cand;
    uint8_t tid[STUNKIT_TID_LEN], old_tid[STUNKIT_TID_LEN];
    int have_old;
    unsigned sends;
    uint32_t rto;
    uint64_t next_at, valid_at;
    int heard; /* a check from the peer arrived on this pair */
    uint32_t nomination; /* renomination: the value we sent (controlling) or saw (controlled) */
} pair_t;

typedef struct pending_t {
    int base;
    stunkit_addr to;
    size_t len;
    uint8_t data[384];
} pending_t;

struct stunkit_ice {
    stunkit_ice_config cfg;
    stunkit_ice_server servers[STUNKIT_ICE_MAX_SERVERS];
    char user[STUNKIT_ICE_MAX_SERVERS][128], pass[STUNKIT_ICE_MAX_SERVERS][128];
    char software[64];
    char ufrag[257], pwd[257], rufrag[257], rpwd[257];
    uint8_t rkey[STUNKIT_KEY_MAX];
    int rkey_len;
    int remote_set, controlling;
    uint64_t tiebreaker;
    base_t bases[STUNKIT_ICE_MAX_BASES];
    int nbases;
    lcand local[STUNKIT_ICE_MAX_LOCAL];
    int nlocal;
    stunkit_ice_candidate remote[STUNKIT_ICE_MAX_REMOTE];
    int nremote;
    pair_t pairs[STUNKIT_ICE_MAX_PAIRS];
    int npairs;
    int trig[STUNKIT_ICE_MAX_PAIRS];
    int trig_head, ntrig;
    gather_t gathers[STUNKIT_ICE_MAX_BASES * STUNKIT_ICE_MAX_SERVERS];
    int ngathers;
    turn_t turns[STUNKIT_ICE_MAX_BASES * STUNKIT_ICE_MAX_SERVERS];
    int nturns;
    int local_done, remote_done, gathered_reported;
    stunkit_ice_state state;
    uint64_t next_check_at;
    unsigned prflx_seq, foundation_seq;
    /* the selected pair, kept apart from the checklist (it outlives a restart) */
    int have_sel, sel_l, sel_vl, sel_pair; /* sel_vl: the local candidate the peer sees */
    /* renomination (draft-thatcher-ice-renomination): both sides said
     * "a=ice-options:renomination"; the controlling side may then move the
     * nomination from a relayed pair to a direct one found later */
    int renom;
    uint32_t nominations;
    stunkit_ice_candidate sel_r;
    uint64_t consent_next, consent_ok;
    uint8_t consent_tid[STUNKIT_TID_LEN];
    int closing;
    /* loss seen: checks answered, and how many transmissions they took */
    unsigned ans_n, ans_sends;
    /* outputs */
    stunkit_ice_output ev[16], ev_spill; /* ev_spill: what did not fit (outq.h) */
    sk_outq evq;
    pending_t pending[MAX_PENDING];
    int pend_head, npend;
    uint8_t obuf[1500], wbuf[1600];
};

/* ice-char (RFC 8839 5.4): what ufrag, pwd and foundation are made of */
/* The checklist's constants (ice_checks.c) */
#define CHECK_RTO_MS 500u      /* 14.3: RTO "SHOULD NOT be less than 500 ms" */
#define CHECK_RTO_MAX_MS 1600u
#define CHECK_SENDS 7u         /* RFC 8489 6.2.1: "Rc SHOULD be configurable and SHOULD have a default of 7" */
#define CHECK_SENDS_MAX 16u    /* ... more when the path is seen losing checks (check_sends()) */
#define NOMINATE_WAIT_MS 200u  /* a better direct pair may still answer */
#define NOMINATE_WAIT_RELAY_MS 1000u
#define UPGRADE_HOPE_SENDS 3u /* sent at 0, 0.5 and 1.5 s; the last awaited until 3.1 s */
#define NOMINATE_WAIT_HEARD_MS 5000u /* ... while the peer's checks arrive on a better direct pair */

/* ice.c: what the checklist uses */
stunkit_ice_output *sk_ice_event(stunkit_ice *a, stunkit_ice_event e);
void sk_ice_set_state(stunkit_ice *a, stunkit_ice_state s, const char *reason);
uint32_t sk_ice_rand32(stunkit_ice *a);
int sk_ice_foundation_busy(const stunkit_ice *a, const pair_t *p);
void sk_ice_enqueue(stunkit_ice *a, int pi);
turn_t *sk_ice_turn_of(stunkit_ice *a, int l);
int sk_ice_route(stunkit_ice *a, int l, const stunkit_addr *to, const uint8_t *data, size_t len, uint8_t *buf,
                 size_t cap, stunkit_ice_route *r);
void sk_ice_out_send(stunkit_ice_output *o, const stunkit_ice_route *r);
size_t sk_ice_build_check(stunkit_ice *a, int l, const uint8_t tid[STUNKIT_TID_LEN], int use_candidate,
                          uint32_t nomination);
int sk_ice_pair_relayed(const stunkit_ice *a, const pair_t *p);

int sk_ice_find_base(const stunkit_ice *a, int id);
int sk_ice_add_lcand(stunkit_ice *a, stunkit_ice_type t, const stunkit_addr *addr, const stunkit_addr *related,
                     int bi, int server, int turn);
int sk_ice_on_datagram(stunkit_ice *a, int l, const stunkit_addr *from, const uint8_t *data, size_t len,
                       uint64_t now);

/* ice_gather.c: bases, STUN and TURN servers, and what they send */
int sk_ice_turn_events(stunkit_ice *a, uint64_t now, stunkit_ice_output *out);
int sk_ice_gathering_done(const stunkit_ice *a);
int sk_ice_gather_poll(stunkit_ice *a, uint64_t now, stunkit_ice_output *out);
uint64_t sk_ice_gather_due(const stunkit_ice *a);
int sk_ice_gather_input(stunkit_ice *a, int bi, const stunkit_addr *from, const uint8_t *data, size_t len,
                        uint64_t now, stunkit_app_data *d);

/* ice_checks.c: the checklist and its schedule */
#define SK_ICE_AGAIN (-100) /* sk_ice_checks_poll(): look again from the top */
uint64_t sk_ice_checks_due(const stunkit_ice *a);
int sk_ice_checks_poll(stunkit_ice *a, uint64_t now, stunkit_ice_output *out);
int sk_ice_upgrade_mode(const stunkit_ice *a);
int sk_ice_upgrade_pair(const stunkit_ice *a, const pair_t *p);

int sk_ice_char(int c);

#endif
