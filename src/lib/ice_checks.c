/*
 * ice_checks.c - the ICE agent's checklist and its schedule (RFC 8445
 * 6.1.4, 7.2, 8.1): when each check goes, is sent again or given up, which
 * pair is nominated and when, and when the checks have all failed. One
 * place for both halves of the machine contract: sk_ice_checks_poll() acts
 * on the schedule that sk_ice_checks_due() reports to stunkit_ice_timeout(),
 * and acts only when it is due, so the two cannot drift apart.
 *
 * What arrives (a check, an answer) is ice.c's (on_request, on_response):
 * it changes the pairs' states, and this file reads them.
 */
#include <string.h>

#include "ice_int.h"

/* Relayed pairs need a TURN permission for the peer first (RFC 8656 9). 1
 * ready; 0 not yet (asked now, or asked before and unanswered); a
 * permission that cannot be asked for fails the pair. */
static int relay_ready(stunkit_ice *a, pair_t *p, uint64_t now)
{
    turn_t *t = sk_ice_turn_of(a, p->l);
    if (!t)
        return 1;
    const stunkit_addr *peer = &a->remote[p->r].addr;
    for (int i = 0; i < t->nperms; i++)
        if (stunkit_addr_ip_equal(&t->perms[i].peer, peer))
            return t->perms[i].state == 2;
    if (t->nperms < MAX_PERMS && stunkit_turn_permit(t->t, peer, now) == 0) {
        t->perms[t->nperms].peer = *peer;
        t->perms[t->nperms++].state = 1;
    } else {
        p->state = P_FAILED;
    }
    return 0;
}

/* A relayed pair whose permission was asked for and is not answered yet:
 * nothing to do for it until the answer comes (an input), so it does not
 * make a check due (else the agent's timeout would say "now" until then,
 * and a driver would spin). */
static int relay_pending(const stunkit_ice *a, const pair_t *p)
{
    turn_t *t = sk_ice_turn_of((stunkit_ice *)a, p->l);
    if (!t)
        return 0;
    for (int i = 0; i < t->nperms; i++)
        if (stunkit_addr_ip_equal(&t->perms[i].peer, &a->remote[p->r].addr))
            return t->perms[i].state == 1;
    return 0;
}

/* Sends the check of pair pi (a new transaction). */
static int send_check(stunkit_ice *a, int pi, uint64_t now, stunkit_ice_output *out)
{
    pair_t *p = &a->pairs[pi];
    a->cfg.env.random(a->cfg.env.random_ctx, p->tid, STUNKIT_TID_LEN);
    p->sent_controlling = a->controlling;
    p->sent_use_cand = a->controlling && (a->cfg.aggressive || p->nominate);
    size_t n = sk_ice_build_check(a, p->l, p->tid, p->sent_use_cand, p->nomination);
    stunkit_ice_route r;
    if (!n || sk_ice_route(a, p->l, &a->remote[p->r].addr, a->obuf, n, a->wbuf, sizeof(a->wbuf), &r) != 0) {
        p->state = P_FAILED;
        return 0;
    }
    p->state = P_IN_PROGRESS;
    p->sends = 1;
    /* 14.3: RTO = MAX(500ms, Ta * (Num-Waiting + Num-In-Progress)) */
    unsigned busy = 0;
    for (int i = 0; i < a->npairs; i++)
        busy += a->pairs[i].state == P_WAITING || a->pairs[i].state == P_IN_PROGRESS;
    p->rto = a->cfg.ta_ms * busy > CHECK_RTO_MS ? a->cfg.ta_ms * busy : CHECK_RTO_MS;
    p->next_at = now + p->rto;
    sk_ice_out_send(out, &r);
    return 1;
}

/* The loss seen, in permille: of the transmissions the answered checks
 * (and STUN gathering requests) took, the share that went unanswered (a
 * lab or WAN round trip is far below the 500 ms RTO, so an answer to the
 * third send means two were lost). 0 until one was answered. */
static unsigned loss_permille(const stunkit_ice *a)
{
    if (!a->ans_n || !a->ans_sends)
        return 0;
    return (unsigned)(1000u * (uint64_t)(a->ans_sends - a->ans_n) / a->ans_sends);
}

/* How many times a check is sent before its pair fails. RFC 8489 6.2.1:
 * "Rc SHOULD be configurable and SHOULD have a default of 7"; on a path
 * seen losing a share q of transmissions a pair that works still fails
 * with q^Rc (0.6^7 = 2.8% at 20% loss on each of four hops), so Rc grows
 * with q, to 16 (the 1.6 s RTO cap: 22 s in all); and to 16 at once for a
 * pair the peer's checks arrive on (it works at least one way) once any
 * loss is seen. A clean path keeps 7 (a one-way pair fails as before). */
static unsigned check_sends(const stunkit_ice *a, const pair_t *p)
{
    unsigned q = loss_permille(a);
    if (q && p->heard)
        return CHECK_SENDS_MAX;
    return q < 300 ? CHECK_SENDS : q < 500 ? 10u : q < 650 ? 13u : CHECK_SENDS_MAX;
}

unsigned stunkit_ice_loss(const stunkit_ice *a)
{
    return loss_permille(a);
}

/* Retransmits the same transaction (RFC 8489 6.2.1). */
static int resend_check(stunkit_ice *a, int pi, uint64_t now, stunkit_ice_output *out)
{
    pair_t *p = &a->pairs[pi];
    size_t n = sk_ice_build_check(a, p->l, p->tid, p->sent_use_cand, p->nomination);
    stunkit_ice_route r;
    p->sends++;
    p->rto = p->rto * 2 > CHECK_RTO_MAX_MS ? CHECK_RTO_MAX_MS : p->rto * 2;
    p->next_at = now + p->rto;
    if (!n || sk_ice_route(a, p->l, &a->remote[p->r].addr, a->obuf, n, a->wbuf, sizeof(a->wbuf), &r) != 0)
        return 0;
    sk_ice_out_send(out, &r);
    return 1;
}

/* 8.1.1: the controlling agent nominates a valid pair by checking it again
 * with USE-CANDIDATE; "Once the controlling agent has successfully nominated
 * a candidate pair ..., the agent MUST NOT nominate another pair for same
 * component of the data stream within the ICE session", so it waits a little
 * for a better pair still being checked: 200 ms, 1 s when the best so far is
 * relayed. When the peer's checks have arrived on a better direct pair, that
 * path works at least one way and our own check of it may only have been
 * lost (on a lossy path it needs its retransmissions: 0.5 s, 1.5 s, 3.1 s,
 * 4.7 s after the first send): then a relayed pair waits until that check
 * succeeds or fails, at most 5 s after the relayed pair worked. Where no
 * direct path exists no check arrives, and the relay comes as fast as
 * before. */
static uint64_t nominate_time(const stunkit_ice *a, const pair_t *b)
{
    int pending = 0, heard = 0;
    for (int i = 0; i < a->npairs; i++) {
        const pair_t *p = &a->pairs[i];
        if (p->prio <= b->prio || !(p->state == P_WAITING || p->state == P_IN_PROGRESS || p->state == P_FROZEN))
            continue;
        pending = 1;
        heard |= p->heard && !sk_ice_pair_relayed(a, p);
    }
    if (!pending)
        return 0;
    if (!sk_ice_pair_relayed(a, b))
        return b->valid_at + NOMINATE_WAIT_MS;
    /* with renomination the relayed pair goes first and a direct one
     * replaces it when its check gets through */
    return b->valid_at + (heard && !a->renom ? NOMINATE_WAIT_HEARD_MS : NOMINATE_WAIT_RELAY_MS);
}

/* The valid pair the controlling agent would nominate, -1 none (or one is
 * nominated or being nominated already). */
static int nominee(const stunkit_ice *a)
{
    if (!a->controlling || a->cfg.aggressive || a->closing)
        return -1;
    int best = -1;
    for (int i = 0; i < a->npairs; i++) {
        const pair_t *p = &a->pairs[i];
        if (p->nominated && p->state == P_SUCCEEDED)
            return -1; /* done */
        if (p->nominate && p->state != P_FAILED)
            return -1; /* one nomination at a time */
        if (p->state == P_SUCCEEDED && (best < 0 || p->prio > a->pairs[best].prio))
            best = i;
    }
    return best;
}

/* Renomination (regular nomination only): the selected pair is relayed. */
int sk_ice_upgrade_mode(const stunkit_ice *a)
{
    return a->renom && !a->cfg.aggressive && !a->closing && a->have_sel && a->sel_pair >= 0 &&
           sk_ice_pair_relayed(a, &a->pairs[a->sel_pair]);
}

/* A pair that would replace a selected relayed one: direct and better. */
int sk_ice_upgrade_pair(const stunkit_ice *a, const pair_t *p)
{
    return !sk_ice_pair_relayed(a, p) && p->prio > a->pairs[a->sel_pair].prio;
}

/* Renomination: a direct pair that worked after a relayed one was
 * nominated is nominated in its place (the best such, one at a time);
 * the controlled side follows the larger NOMINATION value. */
static int renominee(const stunkit_ice *a)
{
    if (!a->controlling || !sk_ice_upgrade_mode(a))
        return -1;
    int best = -1;
    for (int i = 0; i < a->npairs; i++) {
        const pair_t *p = &a->pairs[i];
        if (p->nominate && !p->nominated && p->state != P_FAILED)
            return -1; /* one nomination at a time */
        if (p->state == P_SUCCEEDED && !p->nominated && sk_ice_upgrade_pair(a, p) &&
            (best < 0 || p->prio > a->pairs[best].prio))
            best = i;
    }
    return best;
}

static void nominate(stunkit_ice *a, uint64_t now)
{
    int best = nominee(a);
    if (best >= 0 && now < nominate_time(a, &a->pairs[best]))
        return;
    if (best < 0 && (best = renominee(a)) < 0)
        return;
    pair_t *p = &a->pairs[best];
    p->nominate = 1;
    p->nomination = a->renom ? ++a->nominations : 0;
    sk_ice_enqueue(a, best);
}

static uint64_t nominate_at(const stunkit_ice *a)
{
    int best = nominee(a);
    if (best >= 0)
        return nominate_time(a, &a->pairs[best]);
    return renominee(a) >= 0 ? 0 : STUNKIT_NEVER;
}

static void check_failed(stunkit_ice *a)
{
    if (a->have_sel || a->state == STUNKIT_ICE_STATE_FAILED || a->state == STUNKIT_ICE_STATE_CLOSED || !a->remote_done ||
        !a->gathered_reported)
        return;
    for (int i = 0; i < a->npairs; i++)
        if (a->pairs[i].state != P_FAILED)
            return;
    sk_ice_set_state(a, STUNKIT_ICE_STATE_FAILED,
              a->npairs ? "every candidate pair failed its checks" : "no candidate pairs (no common address family?)");
}

/* When the checklist next needs poll: a check in progress to send again
 * or give up, a new check (one per Ta, 6.1.4.2) while a pair waits or can
 * be unfrozen and checks have not stopped (8.1.2: a selection stops
 * ordinary checks, but for aggressive nomination, triggered checks and the
 * direct pairs that may replace a relayed one under renomination), or a
 * nomination due. STUNKIT_NEVER: nothing. */
uint64_t sk_ice_checks_due(const stunkit_ice *a)
{
    uint64_t next = STUNKIT_NEVER;
    int trig = 0, upgrade = sk_ice_upgrade_mode(a);
    for (int k = 0; k < a->ntrig && !trig; k++) {
        const pair_t *p = &a->pairs[a->trig[(a->trig_head + k) % STUNKIT_ICE_MAX_PAIRS]];
        trig = p->state != P_WAITING || !relay_pending(a, p); /* to send, or to drop from the queue */
    }
    int waiting = trig;
    for (int i = 0; i < a->npairs; i++) {
        const pair_t *p = &a->pairs[i];
        if (p->state == P_IN_PROGRESS && p->next_at < next)
            next = p->next_at;
        if ((p->state == P_WAITING || (p->state == P_FROZEN && !sk_ice_foundation_busy(a, p))) &&
            (!upgrade || sk_ice_upgrade_pair(a, p)) && (p->state == P_FROZEN || !relay_pending(a, p)))
            waiting = 1; /* a check to send (a Frozen pair is unfrozen first) */
    }
    if (waiting && (a->sel_pair < 0 || trig || a->cfg.aggressive || upgrade) && a->next_check_at < next)
        next = a->next_check_at;
    uint64_t nom = nominate_at(a);
    if (nom < next)
        next = nom;
    return next;
}

/* The checklist's part of poll: retransmissions and timeouts of checks in
 * progress, nomination, the end of the checks (FAILED), and a new check
 * when its Ta has come. 1: *out holds a check to send; 0: nothing now;
 * SK_ICE_AGAIN: events were queued, or a check could not go: poll looks
 * again from the top. */
int sk_ice_checks_poll(stunkit_ice *a, uint64_t now, stunkit_ice_output *out)
{
    if (sk_ice_checks_due(a) > now) {
        check_failed(a); /* an answer or an input may have failed the last pair */
        return sk_outq_pending(&a->evq) ? SK_ICE_AGAIN : 0;
    }
    /* retransmissions and timeouts of checks in progress */
    for (int i = 0; i < a->npairs; i++) {
        pair_t *p = &a->pairs[i];
        if (p->state != P_IN_PROGRESS || now < p->next_at)
            continue;
        if (p->sends >= check_sends(a, p)) {
            p->state = P_FAILED;
            p->nominate = 0;
            continue;
        }
        if (resend_check(a, i, now, out))
            return 1;
    }
    nominate(a, now);
    check_failed(a);
    if (sk_outq_pending(&a->evq))
        return SK_ICE_AGAIN;
    /* one new check per Ta (6.1.4.2): the triggered queue first, then the
     * highest-priority Waiting pair, else a Frozen pair is unfrozen */
    if (now < a->next_check_at)
        return 0;
    int pick = -1;
    for (int count = a->ntrig; count > 0 && pick < 0; count--) {
        int pi = a->trig[a->trig_head];
        a->trig_head = (a->trig_head + 1) % STUNKIT_ICE_MAX_PAIRS;
        a->ntrig--;
        a->pairs[pi].queued = 0;
        if (a->pairs[pi].state != P_WAITING)
            continue;
        if (relay_ready(a, &a->pairs[pi], now))
            pick = pi;
        else
            sk_ice_enqueue(a, pi); /* its TURN permission first: later */
    }
    /* selected: ordinary checks stop (8.1.2), but for the direct pairs
     * that may still replace a relayed one under renomination */
    int upgrade = sk_ice_upgrade_mode(a);
    if (pick < 0 && a->sel_pair >= 0 && !a->cfg.aggressive && !upgrade)
        return 0;
    for (int round = 0; pick < 0 && round < 2; round++) {
        for (int i = 0; i < a->npairs; i++) {
            pair_t *p = &a->pairs[i];
            if (p->state == P_WAITING && (!upgrade || sk_ice_upgrade_pair(a, p)) &&
                (pick < 0 || p->prio > a->pairs[pick].prio) && relay_ready(a, p, now))
                pick = i;
        }
        if (pick >= 0 || round)
            break;
        /* "If there is no pair in the Waiting state, and if there are one
         * or more pairs in the Frozen state, the agent checks the foundation
         * associated with each pair in the Frozen state. For a given
         * foundation, if there is no pair [...] in the Waiting or
         * In-Progress state, the agent puts the candidate pair state to
         * Waiting" */
        for (int i = 0; i < a->npairs; i++) {
            pair_t *p = &a->pairs[i];
            if (p->state != P_FROZEN || (upgrade && !sk_ice_upgrade_pair(a, p)))
                continue;
            if (!sk_ice_foundation_busy(a, p))
                p->state = P_WAITING;
        }
    }
    if (pick < 0)
        return 0;
    a->next_check_at = now + a->cfg.ta_ms;
    if (send_check(a, pick, now, out))
        return 1;
    return SK_ICE_AGAIN; /* it could not go: look again */
}
