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
    int done;   /* allocated or failed */
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
int sk_ice_char(int c);

#endif
