/*
 * ice.c - the ICE agent (RFC 8445, trickle RFC 8838, SDP RFC 8839, consent
 * RFC 7675) as a sans-I/O machine; see stunkit/ice.h.
 *
 * Where things happen:
 *   gathering      ice_gather.c: add_base() -> host candidate; a Binding
 *                  per STUN server (srflx) and a TURN client per TURN
 *                  server (relay, and its mapped address as srflx); what
 *                  the servers send enters input() there first
 *   pairing        pair_local(), pair_remote(): local host/relay x remote,
 *                  same family (srflx locals are "replaced by their base",
 *                  6.1.2.4)
 *   checks         ice_checks.c: one check per Ta, triggered queue first
 *                  (6.1.4.2), retransmissions, nomination, on the one
 *                  schedule poll() acts on and timeout() reports
 *   a check in     input() -> on_request(): answer, role conflict, prflx
 *                  remote, triggered check, USE-CANDIDATE
 *   its answer     input() -> on_response(): symmetric?, 487?, prflx local,
 *                  valid pair, unfreeze, nomination
 *   nomination     ice_checks.c nominate(): the controlling agent picks
 *                  the best valid pair and checks it again with
 *                  USE-CANDIDATE (8.1.1); renominee(): under renomination
 *                  a direct pair found after a relayed one was nominated
 *                  takes its place
 *   SDP text       ice_sdp.c (RFC 8839 lines, descriptions)
 *   consent        consent(): the selected pair, every 5 s (RFC 7675)
 *
 * A relayed candidate's checks and answers go through the TURN client
 * (stunkit/turn.h) to the server; what the server relays back comes out of
 * input() like anything else.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_take.h"
#include "stunkit/error.h"
#include "stunkit/ice.h"
#include "stunkit/integrity.h"
#include "stunkit/msg.h"
#include "stunkit/responder.h"
#include "stunkit/turn.h"
#include "stunkit/txn.h"

#include "ice_int.h"

/* 5.1.2.2: "The RECOMMENDED values for type preferences are 126 for host
 * candidates, 110 for peer-reflexive candidates, 100 for server-reflexive
 * candidates, and 0 for relayed candidates." */
static const uint32_t type_pref[] = {126, 100, 110, 0};

/* ---------------------------------------------------------------- helpers */

uint32_t sk_ice_rand32(stunkit_ice *a)
{
    uint8_t b[4];
    a->cfg.env.random(a->cfg.env.random_ctx, b, 4);
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

static int ice_string_ok(const char *s, size_t min, size_t max)
{
    size_t n = strlen(s);
    if (n < min || n > max)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!sk_ice_char((unsigned char)s[i]))
            return 0;
    return 1;
}

static void random_ice_string(stunkit_ice *a, char *out, size_t n)
{
    static const char set[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    uint8_t r[64];
    a->cfg.env.random(a->cfg.env.random_ctx, r, n);
    for (size_t i = 0; i < n; i++)
        out[i] = set[r[i] & 63];
    out[n] = 0;
}

stunkit_ice_output *sk_ice_event(stunkit_ice *a, stunkit_ice_event e)
{
    int slot = sk_outq_push(&a->evq);
    stunkit_ice_output *o = slot < 0 ? &a->ev_spill : &a->ev[slot];
    memset(o, 0, sizeof(*o));
    o->event = e;
    o->state = a->state;
    o->controlling = a->controlling;
    return o;
}

void sk_ice_set_state(stunkit_ice *a, stunkit_ice_state s, const char *reason)
{
    if (a->state == s)
        return;
    a->state = s;
    stunkit_ice_output *o = sk_ice_event(a, STUNKIT_ICE_EVENT_STATE);
    if (reason)
        snprintf(o->reason, sizeof(o->reason), "%s", reason);
}

/* 5.1.2.1: priority = (2^24)*(type preference) + (2^8)*(local preference)
 * + (2^0)*(256 - component ID) */
static uint32_t cand_priority(stunkit_ice_type t, uint16_t local_pref)
{
    return (type_pref[t] << 24) | ((uint32_t)local_pref << 8) | (256u - 1u);
}

/* 6.1.2.3: "Let G be the priority for the candidate provided by the
 * controlling agent. Let D be the priority for the candidate provided by
 * the controlled agent. pair priority = 2^32*MIN(G,D) + 2*MAX(G,D) +
 * (G>D?1:0)" */
static uint64_t pair_priority(const stunkit_ice *a, uint32_t local, uint32_t remote)
{
    uint64_t g = a->controlling ? local : remote, d = a->controlling ? remote : local;
    uint64_t lo = g < d ? g : d, hi = g < d ? d : g;
    return (lo << 32) + (hi << 1) + (g > d ? 1u : 0u);
}

int sk_ice_find_base(const stunkit_ice *a, int id)
{
    for (int i = 0; i < a->nbases; i++)
        if (a->bases[i].id == id)
            return i;
    return -1;
}

static int find_local(const stunkit_ice *a, const stunkit_addr *addr, int bi)
{
    for (int i = 0; i < a->nlocal; i++)
        if (a->local[i].bi == bi && stunkit_addr_equal(&a->local[i].c.addr, addr))
            return i;
    return -1;
}

static int find_remote(const stunkit_ice *a, const stunkit_addr *addr)
{
    for (int i = 0; i < a->nremote; i++)
        if (!a->remote[i].tcp && stunkit_addr_equal(&a->remote[i].addr, addr))
            return i;
    return -1;
}

static int find_pair(const stunkit_ice *a, int l, int r)
{
    for (int i = 0; i < a->npairs; i++)
        if (a->pairs[i].l == l && a->pairs[i].r == r)
            return i;
    return -1;
}

/* The local candidate of a base that receives directly (its host). */
static int host_of(const stunkit_ice *a, int bi)
{
    for (int i = 0; i < a->nlocal; i++)
        if (a->local[i].bi == bi && a->local[i].c.type == STUNKIT_ICE_TYPE_HOST)
            return i;
    return -1;
}

/* 5.1.1.3: the same type, base address, server and transport share a
 * foundation. */
static void foundation(stunkit_ice *a, lcand *lc)
{
    for (int i = 0; i < a->nlocal; i++) {
        const lcand *o = &a->local[i];
        if (o != lc && o->c.type == lc->c.type && o->server == lc->server &&
            stunkit_addr_ip_equal(&a->bases[o->bi].addr, &a->bases[lc->bi].addr)) {
            memcpy(lc->c.foundation, o->c.foundation, sizeof(lc->c.foundation));
            return;
        }
    }
    snprintf(lc->c.foundation, sizeof(lc->c.foundation), "%u", ++a->foundation_seq);
}

static int pair_foundation_equal(const stunkit_ice *a, const pair_t *p, const pair_t *q)
{
    return !strcmp(a->local[p->l].c.foundation, a->local[q->l].c.foundation) &&
           !strcmp(a->remote[p->r].foundation, a->remote[q->r].foundation);
}

/* ---------------------------------------------------------------- pairs */

static void add_pair(stunkit_ice *a, int l, int r)
{
    if (a->npairs == STUNKIT_ICE_MAX_PAIRS || find_pair(a, l, r) >= 0)
        return;
    pair_t *p = &a->pairs[a->npairs];
    memset(p, 0, sizeof(*p));
    p->l = l;
    p->r = r;
    p->vl = -1;
    p->prio = pair_priority(a, a->local[l].c.priority, a->remote[r].priority);
    /* 6.1.2.6 and RFC 8838 10: a pair waits unless a pair of the same
     * foundation is already Waiting or In-Progress (it then stays Frozen
     * until that one succeeds) */
    p->state = P_WAITING;
    for (int i = 0; i < a->npairs; i++)
        if ((a->pairs[i].state == P_WAITING || a->pairs[i].state == P_IN_PROGRESS) &&
            pair_foundation_equal(a, &a->pairs[i], p))
            p->state = P_FROZEN;
    a->npairs++;
}

/* A pair of the same foundation is Waiting or In-Progress (6.1.2.6). */
int sk_ice_foundation_busy(const stunkit_ice *a, const pair_t *p)
{
    for (int k = 0; k < a->npairs; k++)
        if ((a->pairs[k].state == P_WAITING || a->pairs[k].state == P_IN_PROGRESS) &&
            pair_foundation_equal(a, &a->pairs[k], p))
            return 1;
    return 0;
}

static int pairable(const stunkit_ice *a, int l, int r)
{
    const stunkit_ice_candidate *lc = &a->local[l].c, *rc = &a->remote[r];
    if (a->cfg.relay_only && lc->type != STUNKIT_ICE_TYPE_RELAY)
        return 0;
    return (lc->type == STUNKIT_ICE_TYPE_HOST || lc->type == STUNKIT_ICE_TYPE_RELAY) && !rc->tcp && !lc->tcp &&
           lc->addr.family == rc->addr.family && rc->component == 1;
}

static void pair_local(stunkit_ice *a, int l)
{
    for (int r = 0; r < a->nremote; r++)
        if (pairable(a, l, r))
            add_pair(a, l, r);
}

static void pair_remote(stunkit_ice *a, int r)
{
    for (int l = 0; l < a->nlocal; l++)
        if (pairable(a, l, r))
            add_pair(a, l, r);
}

static void reprioritize(stunkit_ice *a)
{
    for (int i = 0; i < a->npairs; i++)
        a->pairs[i].prio = pair_priority(a, a->local[a->pairs[i].l].c.priority, a->remote[a->pairs[i].r].priority);
}

void sk_ice_enqueue(stunkit_ice *a, int pi)
{
    pair_t *p = &a->pairs[pi];
    if (p->state == P_IN_PROGRESS) { /* 7.3.1.4: cancelled, but its answer still counts */
        memcpy(p->old_tid, p->tid, STUNKIT_TID_LEN);
        p->have_old = 1;
    }
    p->state = P_WAITING;
    if (p->queued || a->ntrig == STUNKIT_ICE_MAX_PAIRS)
        return;
    p->queued = 1;
    a->trig[(a->trig_head + a->ntrig++) % STUNKIT_ICE_MAX_PAIRS] = pi;
}

/* ---------------------------------------------------------------- creation */

stunkit_ice *stunkit_ice_new(const stunkit_ice_config *cfg, uint64_t now_ms)
{
    stunkit_ice_config taken; /* versioned by size (config_take.h): the first layout ended before relay_only */
    if (sk_config_take(&taken, sizeof(taken), cfg, offsetof(stunkit_ice_config, relay_only)) != 0)
        return NULL;
    cfg = &taken;
    if (!cfg->env.random || cfg->n_servers > STUNKIT_ICE_MAX_SERVERS ||
        (cfg->n_servers && !cfg->servers) || (cfg->ufrag && !ice_string_ok(cfg->ufrag, 4, 256)) ||
        (cfg->pwd && !ice_string_ok(cfg->pwd, 22, 256)))
        return NULL;
    for (size_t i = 0; i < cfg->n_servers; i++) {
        const stunkit_ice_server *s = &cfg->servers[i];
        if (!s->addr.family || !s->addr.port ||
            (s->turn && (!s->username || !s->password || strlen(s->username) >= 128 || strlen(s->password) >= 128)))
            return NULL;
    }
    stunkit_ice *a = calloc(1, sizeof(*a));
    if (!a)
        return NULL;
    a->cfg = *cfg;
    sk_outq_init(&a->evq, sizeof(a->ev) / sizeof(a->ev[0]));
    for (size_t i = 0; i < cfg->n_servers; i++) {
        a->servers[i] = cfg->servers[i];
        if (cfg->servers[i].turn) {
            snprintf(a->user[i], sizeof(a->user[i]), "%s", cfg->servers[i].username);
            snprintf(a->pass[i], sizeof(a->pass[i]), "%s", cfg->servers[i].password);
            a->servers[i].username = a->user[i];
            a->servers[i].password = a->pass[i];
        }
    }
    a->cfg.servers = a->servers;
    if (cfg->software) {
        snprintf(a->software, sizeof(a->software), "%s", cfg->software);
        a->cfg.software = a->software;
    }
    if (!a->cfg.ta_ms)
        a->cfg.ta_ms = 50;
    if (!a->cfg.consent_ms)
        a->cfg.consent_ms = 5000;
    if (!a->cfg.consent_timeout_ms)
        a->cfg.consent_timeout_ms = 30000;
    /* 5.3: the ufrag "MUST contain at least 24 bits of randomness", the
     * password at least 128 */
    if (cfg->ufrag)
        snprintf(a->ufrag, sizeof(a->ufrag), "%s", cfg->ufrag);
    else
        random_ice_string(a, a->ufrag, 8);
    if (cfg->pwd)
        snprintf(a->pwd, sizeof(a->pwd), "%s", cfg->pwd);
    else
        random_ice_string(a, a->pwd, 24);
    a->controlling = cfg->controlling ? 1 : 0;
    uint8_t tb[8];
    a->cfg.env.random(a->cfg.env.random_ctx, tb, 8);
    for (int i = 0; i < 8; i++)
        a->tiebreaker = a->tiebreaker << 8 | tb[i];
    a->state = STUNKIT_ICE_STATE_NEW;
    a->sel_pair = -1;
    a->next_check_at = now_ms;
    return a;
}

void stunkit_ice_free(stunkit_ice *a)
{
    if (!a)
        return;
    for (int i = 0; i < a->nturns; i++)
        stunkit_turn_free(a->turns[i].t);
    free(a);
}

const char *stunkit_ice_ufrag(const stunkit_ice *a)
{
    return a->ufrag;
}

const char *stunkit_ice_pwd(const stunkit_ice *a)
{
    return a->pwd;
}

int stunkit_ice_controlling(const stunkit_ice *a)
{
    return a->controlling;
}

stunkit_ice_state stunkit_ice_get_state(const stunkit_ice *a)
{
    return a->state;
}

/* ---------------------------------------------------------------- local side */

int sk_ice_add_lcand(stunkit_ice *a, stunkit_ice_type t, const stunkit_addr *addr, const stunkit_addr *related,
                     int bi, int server, int turn)
{
    if (a->nlocal == STUNKIT_ICE_MAX_LOCAL)
        return -1;
    for (int i = 0; i < a->nlocal; i++) /* the same address from the same base: one candidate */
        if (a->local[i].bi == bi && stunkit_addr_equal(&a->local[i].c.addr, addr))
            return i;
    lcand *lc = &a->local[a->nlocal];
    memset(lc, 0, sizeof(*lc));
    lc->c.type = t;
    lc->c.addr = *addr;
    if (related)
        lc->c.related = *related;
    lc->c.component = 1;
    lc->c.base = a->bases[bi].id;
    lc->c.priority = cand_priority(t, a->bases[bi].local_pref);
    lc->bi = bi;
    lc->server = server;
    lc->turn = turn;
    /* peer-reflexive candidates are not signalled (7.2.5.3.1); under
     * relay_only, nothing but relayed ones */
    lc->hidden = a->cfg.relay_only && t != STUNKIT_ICE_TYPE_RELAY && t != STUNKIT_ICE_TYPE_PRFLX;
    lc->reported = t == STUNKIT_ICE_TYPE_PRFLX || lc->hidden;
    foundation(a, lc);
    int idx = a->nlocal++;
    pair_local(a, idx);
    return idx;
}

int stunkit_ice_add_local(stunkit_ice *a, const stunkit_ice_candidate *c, uint64_t now_ms)
{
    (void)now_ms;
    int bi = c ? sk_ice_find_base(a, c->base) : -1;
    if (bi < 0 || !c->addr.family || c->type == STUNKIT_ICE_TYPE_PRFLX || c->type == STUNKIT_ICE_TYPE_RELAY || c->tcp)
        return STUNKIT_ERR_INVAL;
    return sk_ice_add_lcand(a, c->type, &c->addr, c->related.family ? &c->related : &a->bases[bi].addr, bi, -1, -1) < 0
               ? STUNKIT_ERR_NOMEM
               : 0;
}

int stunkit_ice_get_local(const stunkit_ice *a, stunkit_ice_candidate *out, int max)
{
    for (int i = 0; i < a->nlocal && i < max; i++)
        out[i] = a->local[i].c;
    return a->nlocal;
}

int stunkit_ice_get_remote(const stunkit_ice *a, stunkit_ice_candidate *out, int max)
{
    for (int i = 0; i < a->nremote && i < max; i++)
        out[i] = a->remote[i];
    return a->nremote;
}

void stunkit_ice_local_done(stunkit_ice *a, uint64_t now_ms)
{
    (void)now_ms;
    a->local_done = 1;
}

/* ---------------------------------------------------------------- remote side */

int stunkit_ice_set_remote(stunkit_ice *a, const char *ufrag, const char *pwd, uint64_t now_ms)
{
    (void)now_ms;
    if (!ufrag || !pwd || !ice_string_ok(ufrag, 4, 256) || !ice_string_ok(pwd, 22, 256))
        return STUNKIT_ERR_INVAL;
    if (a->remote_set && strcmp(a->rufrag, ufrag) != 0) {
        /* the peer restarted (9): its candidates and our checks start over */
        a->nremote = a->npairs = a->ntrig = 0;
        a->renom = 0; /* its new description says again */
        a->remote_done = 0;
        if (a->state == STUNKIT_ICE_STATE_FAILED)
            a->state = STUNKIT_ICE_STATE_NEW;
    }
    snprintf(a->rufrag, sizeof(a->rufrag), "%s", ufrag);
    snprintf(a->rpwd, sizeof(a->rpwd), "%s", pwd);
    a->rkey_len = stunkit_key_short_term(a->rpwd, strlen(a->rpwd), a->rkey, sizeof(a->rkey));
    if (a->rkey_len < 0)
        return a->rkey_len;
    a->remote_set = 1;
    return 0;
}

static int add_rcand(stunkit_ice *a, const stunkit_ice_candidate *c)
{
    int r = c->tcp ? -1 : find_remote(a, &c->addr);
    if (r >= 0) {
        /* a peer-reflexive candidate signalled later: take the signalled
         * type, priority and foundation */
        if (a->remote[r].type == STUNKIT_ICE_TYPE_PRFLX && c->type != STUNKIT_ICE_TYPE_PRFLX) {
            a->remote[r] = *c;
            reprioritize(a);
            /* the selected pair's copy too: a path through the peer's
             * relay, first seen as peer-reflexive, is reported relayed */
            if (a->have_sel && stunkit_addr_equal(&a->sel_r.addr, &c->addr))
                a->sel_r = *c;
        }
        return r;
    }
    if (a->nremote == STUNKIT_ICE_MAX_REMOTE)
        return -1;
    r = a->nremote++;
    a->remote[r] = *c;
    pair_remote(a, r);
    return r;
}

int stunkit_ice_add_remote(stunkit_ice *a, const stunkit_ice_candidate *c, uint64_t now_ms)
{
    (void)now_ms;
    if (!c || !c->addr.family || !c->addr.port || c->component < 1 || !c->foundation[0])
        return STUNKIT_ERR_INVAL;
    if (add_rcand(a, c) < 0)
        return STUNKIT_ERR_NOMEM;
    if (a->state == STUNKIT_ICE_STATE_NEW)
        sk_ice_set_state(a, STUNKIT_ICE_STATE_CHECKING, NULL);
    return 0;
}

void stunkit_ice_remote_done(stunkit_ice *a, uint64_t now_ms)
{
    (void)now_ms;
    a->remote_done = 1;
}

/* ---------------------------------------------------------------- sending */

turn_t *sk_ice_turn_of(stunkit_ice *a, int l)
{
    return a->local[l].turn >= 0 ? &a->turns[a->local[l].turn] : NULL;
}

/* A datagram from local candidate l to `to`: direct from its base, or
 * wrapped for the TURN server. 0, or -1 when it cannot go (yet). */
int sk_ice_route(stunkit_ice *a, int l, const stunkit_addr *to, const uint8_t *data, size_t len, uint8_t *buf,
                 size_t cap, stunkit_ice_route *r)
{
    const lcand *lc = &a->local[l];
    r->base = a->bases[lc->bi].id;
    r->relayed = 0;
    if (lc->turn < 0) {
        r->to = *to;
        r->data = data;
        r->len = len;
        return 0;
    }
    turn_t *t = &a->turns[lc->turn];
    int n = stunkit_turn_send(t->t, to, data, len, buf, cap);
    if (n < 0)
        return -1;
    r->to = t->addr;
    r->data = buf;
    r->len = (size_t)n;
    r->relayed = 1;
    return 0;
}

/* Queues an answer (made during input) for the next poll. */
static void queue_answer(stunkit_ice *a, int l, const stunkit_addr *to, const uint8_t *ans, size_t len)
{
    if (a->npend == MAX_PENDING)
        return; /* a flood of checks: the peer retransmits */
    pending_t *pd = &a->pending[(a->pend_head + a->npend) % MAX_PENDING];
    stunkit_ice_route r;
    if (sk_ice_route(a, l, to, ans, len, pd->data, sizeof(pd->data), &r) != 0 || r.len > sizeof(pd->data))
        return;
    if (!r.relayed)
        memcpy(pd->data, ans, len);
    pd->len = r.len;
    pd->base = r.base;
    pd->to = r.to;
    a->npend++;
}

void sk_ice_out_send(stunkit_ice_output *o, const stunkit_ice_route *r)
{
    memset(o, 0, sizeof(*o));
    o->send = 1;
    o->base = r->base;
    o->to = r->to;
    o->data = r->data;
    o->len = r->len;
}

/* The priority a peer-reflexive candidate from this local candidate would
 * have: the PRIORITY attribute (7.2.2: "MUST be set equal to the priority
 * that would be assigned [...] to a peer-reflexive candidate"). */
static uint32_t prflx_priority(const stunkit_ice *a, int l)
{
    return cand_priority(STUNKIT_ICE_TYPE_PRFLX, a->bases[a->local[l].bi].local_pref);
}

/* A check (or a consent request) from pair p into a->obuf. */
size_t sk_ice_build_check(stunkit_ice *a, int l, const uint8_t tid[STUNKIT_TID_LEN], int use_candidate,
                          uint32_t nomination)
{
    stunkit_writer w;
    char user[520];
    int un = snprintf(user, sizeof(user), "%s:%s", a->rufrag, a->ufrag);
    stunkit_writer_init(&w, a->obuf, sizeof(a->obuf), STUNKIT_METHOD_BINDING, STUNKIT_CLASS_REQUEST, tid);
    stunkit_put(&w, STUNKIT_ATTR_USERNAME, user, (size_t)un);
    stunkit_put_u32(&w, STUNKIT_ATTR_PRIORITY, prflx_priority(a, l));
    /* 7.2.2: ICE-CONTROLLING or ICE-CONTROLLED with the tie-breaker */
    stunkit_put_u64(&w, a->controlling ? STUNKIT_ATTR_ICE_CONTROLLING : STUNKIT_ATTR_ICE_CONTROLLED, a->tiebreaker);
    if (use_candidate)
        stunkit_put(&w, STUNKIT_ATTR_USE_CANDIDATE, NULL, 0);
    if (use_candidate && nomination) /* renomination: which nomination this is */
        stunkit_put_u32(&w, STUNKIT_ATTR_NOMINATION, nomination);
    if (a->cfg.software)
        stunkit_put(&w, STUNKIT_ATTR_SOFTWARE, a->cfg.software, strlen(a->cfg.software));
    stunkit_put_integrity(&w, a->rkey, (size_t)a->rkey_len);
    stunkit_put_fingerprint(&w);
    int n = stunkit_writer_finish(&w);
    return n > 0 ? (size_t)n : 0;
}

/* ---------------------------------------------------------------- selection */

static void select_pair(stunkit_ice *a, int pi, uint64_t now)
{
    pair_t *p = &a->pairs[pi];
    int vl = p->vl >= 0 ? p->vl : p->l;
    if (a->have_sel && a->sel_pair == pi)
        return;
    a->have_sel = 1;
    a->sel_pair = pi;
    a->sel_l = p->l;
    a->sel_vl = vl;
    a->sel_r = a->remote[p->r];
    a->consent_ok = now;
    a->consent_next = now + a->cfg.consent_ms * (800u + sk_ice_rand32(a) % 401u) / 1000u;
    stunkit_ice_output *o = sk_ice_event(a, STUNKIT_ICE_EVENT_SELECTED);
    o->local = a->local[vl].c;
    o->remote = a->remote[p->r];
    /* data through a relay goes as ChannelData once bound */
    turn_t *t = sk_ice_turn_of(a, p->l);
    if (t && !t->bound) {
        t->bound = 1;
        stunkit_turn_bind(t->t, &a->remote[p->r].addr, now);
    }
    sk_ice_set_state(a, STUNKIT_ICE_STATE_CONNECTED, NULL);
}

/* Data on this pair goes through a TURN relay, ours or the peer's. */
int sk_ice_pair_relayed(const stunkit_ice *a, const pair_t *p)
{
    return a->local[p->l].c.type == STUNKIT_ICE_TYPE_RELAY || a->remote[p->r].type == STUNKIT_ICE_TYPE_RELAY;
}

/* The best nominated valid pair becomes (or stays) the selected one: the
 * highest priority (8.1.1), or under renomination the latest nomination
 * (draft-thatcher-ice-renomination: the controlled side "MUST select the
 * candidate pair with the largest nomination value"). */
static void update_selection(stunkit_ice *a, uint64_t now)
{
    int best = -1;
    for (int i = 0; i < a->npairs; i++) {
        const pair_t *p = &a->pairs[i];
        if (!p->nominated || p->state != P_SUCCEEDED)
            continue;
        if (best < 0 || p->nomination > a->pairs[best].nomination ||
            (p->nomination == a->pairs[best].nomination && p->prio > a->pairs[best].prio))
            best = i;
    }
    if (best >= 0)
        select_pair(a, best, now);
}

/* ---------------------------------------------------------------- poll */

static int consent(stunkit_ice *a, uint64_t now, stunkit_ice_output *out)
{
    if (!a->have_sel || a->state == STUNKIT_ICE_STATE_DISCONNECTED || a->closing)
        return 0;
    /* RFC 7675 5.1: "Consent expires after 30 seconds" without a response */
    if (now >= a->consent_ok + a->cfg.consent_timeout_ms) {
        sk_ice_set_state(a, STUNKIT_ICE_STATE_DISCONNECTED, "consent expired: the peer stopped answering (RFC 7675)");
        return 0;
    }
    if (now < a->consent_next || !a->remote_set)
        return 0;
    /* "the interval [...] MUST be randomized: 0.8 to 1.2 times the basic
     * period" */
    a->consent_next = now + a->cfg.consent_ms * (800u + sk_ice_rand32(a) % 401u) / 1000u;
    a->cfg.env.random(a->cfg.env.random_ctx, a->consent_tid, STUNKIT_TID_LEN);
    size_t n = sk_ice_build_check(a, a->sel_l, a->consent_tid, 0, 0);
    stunkit_ice_route r;
    if (!n || sk_ice_route(a, a->sel_l, &a->sel_r.addr, a->obuf, n, a->wbuf, sizeof(a->wbuf), &r) != 0)
        return 0;
    sk_ice_out_send(out, &r);
    return 1;
}

/* One output, from the first stage that has one; SK_ICE_AGAIN: a stage
 * queued events (or found its work gone), look again from the top. */
static int poll_once(stunkit_ice *a, uint64_t now, stunkit_ice_output *out)
{
    if (sk_outq_take_lost(&a->evq))
        return STUNKIT_ERR_NOBUF;
    int slot = sk_outq_pop(&a->evq);
    if (slot >= 0) {
        *out = a->ev[slot];
        return 1;
    }
    if (a->npend) {
        pending_t *pd = &a->pending[a->pend_head];
        a->pend_head = (a->pend_head + 1) % MAX_PENDING;
        a->npend--;
        memset(out, 0, sizeof(*out));
        out->send = 1;
        out->base = pd->base;
        out->to = pd->to;
        out->data = pd->data;
        out->len = pd->len;
        return 1;
    }
    if (sk_ice_turn_events(a, now, out))
        return 1;
    if (sk_outq_pending(&a->evq))
        return SK_ICE_AGAIN;
    if (a->state == STUNKIT_ICE_STATE_CLOSED)
        return 0;
    /* new local candidates are reported (trickle) */
    for (int i = 0; i < a->nlocal; i++) {
        if (!a->local[i].reported) {
            a->local[i].reported = 1;
            memset(out, 0, sizeof(*out));
            out->event = STUNKIT_ICE_EVENT_CANDIDATE;
            out->state = a->state;
            out->controlling = a->controlling;
            out->local = a->local[i].c;
            return 1;
        }
    }
    /* server-reflexive gathering (ice_gather.c) */
    if (sk_ice_gather_poll(a, now, out))
        return 1;
    if (!a->gathered_reported && sk_ice_gathering_done(a)) {
        a->gathered_reported = 1;
        memset(out, 0, sizeof(*out));
        out->event = STUNKIT_ICE_EVENT_GATHERED;
        out->state = a->state;
        out->controlling = a->controlling;
        return 1;
    }
    if (a->closing)
        return 0;
    if (consent(a, now, out))
        return 1;
    if (sk_outq_pending(&a->evq))
        return SK_ICE_AGAIN;
    if (!a->remote_set)
        return 0;
    /* the checklist (ice_checks.c), on the schedule the timeout reports */
    return sk_ice_checks_poll(a, now, out);
}

int stunkit_ice_poll(stunkit_ice *a, uint64_t now, stunkit_ice_output *out)
{
    for (;;) {
        int rv = poll_once(a, now, out);
        if (rv != SK_ICE_AGAIN)
            return rv;
    }
}

uint64_t stunkit_ice_timeout(const stunkit_ice *a)
{
    if (sk_outq_pending(&a->evq) || a->npend)
        return 0;
    for (int i = 0; i < a->nlocal; i++)
        if (!a->local[i].reported)
            return 0;
    if (!a->gathered_reported && sk_ice_gathering_done(a))
        return 0;
    uint64_t next = STUNKIT_NEVER;
    for (int i = 0; i < a->nturns; i++) {
        uint64_t t = a->turns[i].moving ? STUNKIT_NEVER : stunkit_turn_timeout(a->turns[i].t);
        if (t < next)
            next = t;
    }
    if (a->state == STUNKIT_ICE_STATE_CLOSED)
        return next;
    if (sk_ice_gather_due(a) < next)
        next = sk_ice_gather_due(a);
    if (a->closing)
        return next;
    if (a->have_sel && a->state != STUNKIT_ICE_STATE_DISCONNECTED) {
        if (a->consent_next < next)
            next = a->consent_next;
        if (a->consent_ok + a->cfg.consent_timeout_ms < next)
            next = a->consent_ok + a->cfg.consent_timeout_ms;
    }
    if (!a->remote_set)
        return next;
    return sk_ice_checks_due(a) < next ? sk_ice_checks_due(a) : next;
}

/* ---------------------------------------------------------------- input */

static void switch_role(stunkit_ice *a)
{
    /* 7.3.1.1 / 7.2.5.1: switch, and "recompute the candidate pair
     * priorities" */
    a->controlling = !a->controlling;
    reprioritize(a);
    sk_ice_event(a, STUNKIT_ICE_EVENT_ROLE);
}

/* A Binding request that arrived at local candidate l (a host, or a relay
 * when the TURN server relayed it) from `from` (7.3.1). */
static void on_request(stunkit_ice *a, int l, const stunkit_addr *from, const uint8_t *data, size_t len,
                       uint64_t now)
{
    uint8_t ans[256];
    stunkit_request_info info;
    stunkit_responder resp = {a->ufrag, strlen(a->ufrag), a->pwd, strlen(a->pwd), NULL, 0};
    size_t n;
    if (stunkit_responder_input(&resp, from, data, len, ans, sizeof(ans), &n, &info) != STUNKIT_INPUT_TAKEN || !n)
        return; /* dropped silently */
    if (info.code) {
        queue_answer(a, l, from, ans, n);
        return;
    }
    /* 7.3.1.1, detecting and repairing role conflicts */
    int conflict = 0;
    if (a->controlling && info.controlling) {
        /* "If the agent's tiebreaker value is larger than or equal to the
         * contents of the ICE-CONTROLLING attribute, the agent generates a
         * Binding error response and includes an ERROR-CODE attribute with
         * a value of 487 (Role Conflict) but retains its role." Else it
         * "MUST switch to the controlled role." */
        if (a->tiebreaker >= info.tiebreaker)
            conflict = 1;
        else
            switch_role(a);
    } else if (!a->controlling && info.controlled) {
        /* "If the agent's tiebreaker value is larger than or equal to the
         * contents of the ICE-CONTROLLED attribute, the agent switches to
         * the controlling role." Else 487. */
        if (a->tiebreaker >= info.tiebreaker)
            switch_role(a);
        else
            conflict = 1;
    }
    if (conflict) {
        uint8_t key[STUNKIT_KEY_MAX];
        int kl = stunkit_key_short_term(a->pwd, strlen(a->pwd), key, sizeof(key));
        stunkit_answer an;
        memset(&an, 0, sizeof(an));
        an.key = key;
        an.key_len = (size_t)kl;
        an.fingerprint = 1;
        int m = stunkit_answer_error(data, 487, NULL, NULL, 0, &an, ans, sizeof(ans));
        if (m > 0)
            queue_answer(a, l, from, ans, (size_t)m);
        return;
    }
    queue_answer(a, l, from, ans, n);
    if (a->closing)
        return;
    /* 7.3.1.3: an unknown source is a peer-reflexive remote candidate,
     * priority from PRIORITY, "a foundation [...] different from the
     * foundations of all other remote candidates" */
    int r = find_remote(a, from);
    if (r < 0) {
        stunkit_ice_candidate c;
        memset(&c, 0, sizeof(c));
        c.type = STUNKIT_ICE_TYPE_PRFLX;
        c.addr = *from;
        c.priority = info.priority ? info.priority : cand_priority(STUNKIT_ICE_TYPE_PRFLX, 0);
        c.component = 1;
        snprintf(c.foundation, sizeof(c.foundation), "prflx%u", ++a->prflx_seq);
        r = add_rcand(a, &c);
        if (r < 0)
            return;
    }
    if (a->state == STUNKIT_ICE_STATE_NEW)
        sk_ice_set_state(a, STUNKIT_ICE_STATE_CHECKING, NULL);
    /* 7.3.1.4: the triggered check */
    int pi = find_pair(a, l, r);
    if (pi < 0 && pairable(a, l, r)) {
        add_pair(a, l, r);
        pi = find_pair(a, l, r);
    }
    if (pi < 0)
        return;
    pair_t *p = &a->pairs[pi];
    p->heard = 1;
    if (p->state != P_SUCCEEDED) {
        /* Frozen, Waiting or Failed: into the triggered queue; In-Progress:
         * the transaction is cancelled (its answer still counts) and a new
         * one queued */
        sk_ice_enqueue(a, pi);
    }
    /* 7.3.1.5: USE-CANDIDATE, on the controlled side */
    if (info.use_candidate && !a->controlling) {
        if (info.nomination > p->nomination)
            p->nomination = info.nomination;
        if (p->state == P_SUCCEEDED) {
            p->nominated = 1;
            update_selection(a, now);
        } else {
            p->use_cand_rx = 1;
        }
    }
}

/* The answer to a check of pair pi (7.2.5). */
static void on_response(stunkit_ice *a, int pi, int l, const stunkit_addr *from, const stunkit_msg *m, uint64_t now)
{
    pair_t *p = &a->pairs[pi];
    /* 7.2.5.1: integrity with the peer's password; a response that fails
     * it is discarded */
    if (!m->mi_off || stunkit_check_integrity(m, a->rkey, (size_t)a->rkey_len) != 0)
        return;
    /* 7.2.5.2.1: "the source and destination transport addresses [...]
     * are symmetric": else the check fails */
    if (!stunkit_addr_equal(from, &a->remote[p->r].addr) || l != p->l) {
        p->state = P_FAILED;
        return;
    }
    if (p->state == P_IN_PROGRESS) {
        a->ans_n++;
        a->ans_sends += p->sends;
    }
    if (m->klass == STUNKIT_CLASS_ERROR) {
        stunkit_attr at;
        int code = 0;
        const uint8_t *reason;
        size_t rl;
        if (stunkit_msg_find(m, STUNKIT_ATTR_ERROR_CODE, &at) == 0)
            stunkit_attr_error_code(&at, &code, &reason, &rl);
        if (code == 487) {
            /* 7.2.5.1: "the agent MUST switch to the controlled role if it
             * sent ICE-CONTROLLING [...] or controlling role if it sent
             * ICE-CONTROLLED" - once - "and enqueue the candidate pair" */
            if (p->sent_controlling == a->controlling)
                switch_role(a);
            sk_ice_enqueue(a, pi);
        } else {
            p->state = P_FAILED;
        }
        return;
    }
    stunkit_addr mapped;
    if (stunkit_msg_mapped(m, &mapped) != 0) {
        p->state = P_FAILED;
        return;
    }
    /* 7.2.5.3.1: the mapped address names a local candidate, or it is a
     * new peer-reflexive one (priority: the PRIORITY we sent) */
    int bi = a->local[p->l].bi;
    int vl = find_local(a, &mapped, bi);
    if (vl < 0 && a->local[p->l].c.type != STUNKIT_ICE_TYPE_RELAY)
        vl = sk_ice_add_lcand(a, STUNKIT_ICE_TYPE_PRFLX, &mapped, &a->bases[bi].addr, bi, -1, -1);
    if (vl < 0)
        vl = p->l;
    p->vl = vl;
    p->state = P_SUCCEEDED;
    p->valid_at = now;
    if (a->state == STUNKIT_ICE_STATE_NEW)
        sk_ice_set_state(a, STUNKIT_ICE_STATE_CHECKING, NULL);
    /* 7.2.5.3.3: "The agent MUST set the states for all other Frozen
     * candidate pairs in all checklists with the same foundation to
     * Waiting." */
    for (int i = 0; i < a->npairs; i++)
        if (a->pairs[i].state == P_FROZEN && pair_foundation_equal(a, &a->pairs[i], p))
            a->pairs[i].state = P_WAITING;
    /* 7.2.5.3.4 / 8.1.1: a nominating check that succeeded, or a pair the
     * controlled side saw USE-CANDIDATE for */
    if ((a->controlling && p->sent_use_cand) || (!a->controlling && p->use_cand_rx))
        p->nominated = 1;
    update_selection(a, now);
}

/* STUN (or application data) at local candidate l from `from`. 1 ICE's, 0 not. */
int sk_ice_on_datagram(stunkit_ice *a, int l, const stunkit_addr *from, const uint8_t *data, size_t len,
                       uint64_t now)
{
    /* STUN has the magic cookie (RFC 8489 5); RFC 7983's first byte alone
     * (0..3) is not enough on a socket shared with any UDP application: a
     * WireGuard message starts with 1..4. Anything else is the
     * application's. */
    if (!stunkit_is_stun(data, len) || data[4] != 0x21 || data[5] != 0x12 || data[6] != 0xA4 || data[7] != 0x42)
        return STUNKIT_INPUT_NOT_MINE;
    stunkit_msg m;
    if (stunkit_msg_parse(&m, data, len) != 0)
        return STUNKIT_INPUT_TAKEN; /* STUN, malformed: dropped */
    if (m.method != STUNKIT_METHOD_BINDING)
        return 0;
    if (m.klass == STUNKIT_CLASS_REQUEST) {
        /* relay_only: our own addresses are not for the peer to reach */
        if (!(a->cfg.relay_only && a->local[l].c.type != STUNKIT_ICE_TYPE_RELAY))
            on_request(a, l, from, data, len, now);
        return 1;
    }
    if (m.klass != STUNKIT_CLASS_SUCCESS && m.klass != STUNKIT_CLASS_ERROR)
        return 1; /* indications: nothing to do (keepalives) */
    if (m.fp_off && stunkit_check_fingerprint(&m) != 0)
        return 1;
    for (int i = 0; i < a->npairs; i++) {
        pair_t *p = &a->pairs[i];
        if (!memcmp(p->tid, m.tid, STUNKIT_TID_LEN) ||
            (p->have_old && !memcmp(p->old_tid, m.tid, STUNKIT_TID_LEN))) {
            if (p->state == P_IN_PROGRESS || p->state == P_WAITING)
                on_response(a, i, l, from, &m, now);
            return 1;
        }
    }
    /* consent (RFC 7675 5.1): a valid, authenticated answer from the peer */
    if (a->have_sel && !memcmp(a->consent_tid, m.tid, STUNKIT_TID_LEN) && m.klass == STUNKIT_CLASS_SUCCESS &&
        stunkit_addr_equal(from, &a->sel_r.addr) && l == a->sel_l && m.mi_off &&
        stunkit_check_integrity(&m, a->rkey, (size_t)a->rkey_len) == 0) {
        a->consent_ok = now;
        if (a->state == STUNKIT_ICE_STATE_DISCONNECTED)
            sk_ice_set_state(a, STUNKIT_ICE_STATE_CONNECTED, NULL);
    }
    return 1;
}

int stunkit_ice_input(stunkit_ice *a, int base, const stunkit_addr *from, const uint8_t *data, size_t len,
                      uint64_t now, stunkit_app_data *d)
{
    int bi = sk_ice_find_base(a, base);
    if (bi < 0 || !from || !data)
        return STUNKIT_INPUT_NOT_MINE;
    /* from a STUN or TURN server of this base: answers, and relayed data
     * (ice_gather.c) */
    int r = sk_ice_gather_input(a, bi, from, data, len, now, d);
    if (r != STUNKIT_INPUT_NOT_MINE)
        return r;
    /* else a check or an answer to ours (or the application's data) */
    int l = host_of(a, bi);
    return l >= 0 ? sk_ice_on_datagram(a, l, from, data, len, now) : STUNKIT_INPUT_NOT_MINE;
}

/* Before a selection, data may go on a valid pair (RFC 8445 12.1: "An ICE
 * agent MAY send data on any valid pair before selected pairs have been
 * produced for the data stream"): the best one we checked, or one the
 * controlling peer nominated, whose checks do reach us (its data may come
 * before our own check of that pair succeeds). -1: none. */
static int valid_best(const stunkit_ice *a)
{
    int best = -1;
    for (int i = 0; i < a->npairs; i++) {
        const pair_t *p = &a->pairs[i];
        if ((p->state == P_SUCCEEDED || p->use_cand_rx) && (best < 0 || p->prio > a->pairs[best].prio))
            best = i;
    }
    return best;
}

int stunkit_ice_send(stunkit_ice *a, const uint8_t *data, size_t len, uint8_t *buf, size_t cap,
                     stunkit_ice_route *r)
{
    /* RFC 7675 5.1: without consent "the agent MUST cease transmission" */
    if (a->state == STUNKIT_ICE_STATE_DISCONNECTED || a->state == STUNKIT_ICE_STATE_CLOSED)
        return STUNKIT_ERR_STATE;
    if (a->have_sel)
        return sk_ice_route(a, a->sel_l, &a->sel_r.addr, data, len, buf, cap, r) != 0 ? STUNKIT_ERR_NOBUF : 0;
    int best = valid_best(a);
    if (best < 0)
        return STUNKIT_ERR_STATE;
    const pair_t *p = &a->pairs[best];
    return sk_ice_route(a, p->l, &a->remote[p->r].addr, data, len, buf, cap, r) != 0 ? STUNKIT_ERR_NOBUF : 0;
}

int stunkit_ice_path(const stunkit_ice *a, stunkit_ice_candidate *local, stunkit_ice_candidate *remote)
{
    if (a->state == STUNKIT_ICE_STATE_DISCONNECTED || a->state == STUNKIT_ICE_STATE_CLOSED)
        return 0;
    int l, best = -1;
    const stunkit_ice_candidate *r;
    if (a->have_sel) {
        l = a->sel_vl;
        r = &a->sel_r;
    } else if ((best = valid_best(a)) >= 0) {
        l = a->pairs[best].vl >= 0 ? a->pairs[best].vl : a->pairs[best].l;
        r = &a->remote[a->pairs[best].r];
    } else {
        return 0;
    }
    if (local)
        *local = a->local[l].c;
    if (remote)
        *remote = *r;
    return a->have_sel ? 1 : 2;
}

int stunkit_ice_proven(const stunkit_ice *a, const stunkit_addr *addr, int ip_only)
{
    if (!a || !addr)
        return 0;
    for (int i = 0; i < a->npairs; i++) {
        const pair_t *p = &a->pairs[i];
        const stunkit_addr *r = &a->remote[p->r].addr;
        /* heard: a check request from it passed MESSAGE-INTEGRITY (on_request
         * runs after the check); succeeded: our check was answered with it */
        if ((p->heard || p->state == P_SUCCEEDED) &&
            (ip_only ? stunkit_addr_ip_equal(r, addr) : stunkit_addr_equal(r, addr)))
            return 1;
    }
    return 0;
}

int stunkit_ice_upgrading(const stunkit_ice *a)
{
    if (!sk_ice_upgrade_mode(a))
        return 0;
    for (int i = 0; i < a->npairs; i++) {
        const pair_t *p = &a->pairs[i];
        if (!sk_ice_upgrade_pair(a, p) || p->state == P_FAILED || p->nominated)
            continue;
        /* worked (the controlling side nominates it), being nominated, or
         * still being checked with a chance: the peer's checks arrive on it,
         * or ours are in their first 3 s (the answer to the third send is
         * awaited until its retransmission) */
        if (p->state == P_SUCCEEDED || p->nominate || p->heard || p->sends < UPGRADE_HOPE_SENDS ||
            (p->state == P_IN_PROGRESS && p->sends == UPGRADE_HOPE_SENDS))
            return 1;
    }
    return 0;
}

int stunkit_ice_restart(stunkit_ice *a, uint64_t now_ms)
{
    (void)now_ms;
    random_ice_string(a, a->ufrag, 8);
    random_ice_string(a, a->pwd, 24);
    a->remote_set = 0;
    a->nremote = a->npairs = a->ntrig = 0;
    a->remote_done = 0;
    a->sel_pair = -1; /* the selected route stays in use until a new nomination */
    for (int i = 0; i < a->nlocal; i++)
        a->local[i].reported = a->local[i].c.type == STUNKIT_ICE_TYPE_PRFLX || a->local[i].hidden;
    a->gathered_reported = 0;
    if (a->state == STUNKIT_ICE_STATE_FAILED || a->state == STUNKIT_ICE_STATE_NEW)
        a->state = STUNKIT_ICE_STATE_NEW;
    return 0;
}

void stunkit_ice_close(stunkit_ice *a, uint64_t now_ms)
{
    a->closing = 1;
    for (int i = 0; i < a->nturns; i++) {
        if (a->turns[i].moving) { /* no stream to close it over: nothing was allocated */
            a->turns[i].moving = 0;
            stunkit_turn_disconnected(a->turns[i].t);
        }
        stunkit_turn_close(a->turns[i].t, now_ms);
    }
    sk_ice_set_state(a, STUNKIT_ICE_STATE_CLOSED, NULL);
}

const char *stunkit_ice_state_name(stunkit_ice_state s)
{
    static const char *const n[] = {"new", "checking", "connected", "failed", "disconnected", "closed"};
    return (unsigned)s < 6 ? n[s] : "unknown";
}

const char *stunkit_ice_event_name(stunkit_ice_event e)
{
    switch (e) {
    case STUNKIT_ICE_EVENT_CANDIDATE: return "candidate";
    case STUNKIT_ICE_EVENT_GATHERED: return "gathered";
    case STUNKIT_ICE_EVENT_STATE: return "state";
    case STUNKIT_ICE_EVENT_SELECTED: return "selected";
    case STUNKIT_ICE_EVENT_ROLE: return "role";
    case STUNKIT_ICE_EVENT_STREAM_REDIRECTED: return "stream-redirected";
    }
    return "unknown";
}
