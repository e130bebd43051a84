/*
 * ice_gather.c - the ICE agent's gathering (RFC 8445 5.1.1): a socket the
 * application adds is a base and a host candidate; from it a Binding to
 * each STUN server gives a server-reflexive candidate, and a TURN client
 * (stunkit/turn.h) per TURN server a relayed one (and its mapped address
 * as server-reflexive); a TCP/TLS stream to a TURN server is a base of its
 * own. Everything these servers send comes in here first
 * (sk_ice_gather_input()): their answers, and the peer's data a TURN server
 * relays, which goes on to the checks (a check through the relay) or out
 * to the application.
 */
#include <stdio.h>
#include <string.h>

#include "stunkit/error.h"
#include "stunkit/msg.h"

#include "ice_int.h"

/* A TURN client for server s over base bi (its transport: the server's). */
static int add_turn(stunkit_ice *a, int bi, int s, uint64_t now_ms)
{
    const stunkit_ice_server *srv = &a->servers[s];
    turn_t *t = &a->turns[a->nturns];
    stunkit_turn_config tc = STUNKIT_CONFIG_INIT(tc);
    tc.env = a->cfg.env;
    tc.server = srv->addr;
    tc.username = srv->username;
    tc.password = srv->password;
    tc.family = srv->addr.family;
    /* both families from one allocation (RFC 8656 7.2) where the server
     * gives them: an IPv4-only peer and an IPv6-only one meet through it */
    tc.dual = 1;
    tc.software = a->cfg.software;
    tc.transport = srv->transport;
    memset(t, 0, sizeof(*t));
    t->t = stunkit_turn_new(&tc, now_ms);
    if (!t->t)
        return STUNKIT_ERR_NOMEM;
    t->bi = bi;
    t->server = s;
    t->addr = srv->addr;
    t->lc = t->lc2 = -1;
    a->nturns++;
    return 0;
}

int stunkit_ice_add_stream(stunkit_ice *a, int base, size_t server, const stunkit_addr *local, uint64_t now_ms)
{
    if (!local || !local->family || server >= a->cfg.n_servers || sk_ice_find_base(a, base) >= 0 ||
        !a->servers[server].turn || a->servers[server].transport == STUNKIT_UDP)
        return STUNKIT_ERR_INVAL;
    if (a->nbases == STUNKIT_ICE_MAX_BASES)
        return STUNKIT_ERR_NOMEM;
    int bi = a->nbases++;
    base_t *b = &a->bases[bi];
    b->id = base;
    b->addr = *local;
    b->stream = 1;
    /* 5.1.2.1: relayed candidates over TCP/TLS below those over UDP (a
     * last resort: head-of-line blocking, and one more hop of setup) */
    b->local_pref = (uint16_t)(4096 - bi);
    int rv = add_turn(a, bi, (int)server, now_ms);
    if (rv != 0)
        a->nbases--;
    return rv;
}

void stunkit_ice_stream_closed(stunkit_ice *a, int base, uint64_t now_ms)
{
    (void)now_ms;
    int bi = sk_ice_find_base(a, base);
    if (bi < 0 || !a->bases[bi].stream)
        return;
    for (int i = 0; i < a->nturns; i++) {
        turn_t *t = &a->turns[i];
        if (t->bi != bi)
            continue;
        /* RFC 8656 3.1: the allocation is gone with the connection; its
         * pairs cannot carry anything any more */
        t->moving = 0;
        stunkit_turn_disconnected(t->t);
        for (int k = 0; t->lc >= 0 && k < a->npairs; k++)
            if (a->pairs[k].l == t->lc || a->pairs[k].l == t->lc2)
                a->pairs[k].state = P_FAILED;
    }
}

int stunkit_ice_stream_moved(stunkit_ice *a, int base, const stunkit_addr *local, uint64_t now_ms)
{
    (void)now_ms;
    int bi = sk_ice_find_base(a, base);
    if (bi < 0 || !a->bases[bi].stream || !local || !local->family)
        return STUNKIT_ERR_INVAL;
    for (int i = 0; i < a->nturns; i++) {
        turn_t *t = &a->turns[i];
        if (t->bi == bi && t->moving) {
            t->moving = 0; /* its Allocate, asked again, goes out at the next poll */
            a->bases[bi].addr = *local;
            return 0;
        }
    }
    return STUNKIT_ERR_INVAL;
}

int stunkit_ice_add_base(stunkit_ice *a, int base, const stunkit_addr *local, uint64_t now_ms)
{
    if (!local || !local->family || !local->port || sk_ice_find_base(a, base) >= 0)
        return STUNKIT_ERR_INVAL;
    if (a->nbases == STUNKIT_ICE_MAX_BASES || a->nlocal == STUNKIT_ICE_MAX_LOCAL)
        return STUNKIT_ERR_NOMEM;
    int bi = a->nbases++;
    base_t *b = &a->bases[bi];
    b->id = base;
    b->addr = *local;
    /* RFC 8421 4: IPv6 before IPv4; then the order bases were given */
    b->local_pref = (uint16_t)((local->family == STUNKIT_AF_INET6 ? 65535 : 65535 - 128) - bi);
    sk_ice_add_lcand(a, STUNKIT_ICE_TYPE_HOST, local, NULL, bi, -1, -1);
    for (size_t s = 0; s < a->cfg.n_servers; s++) {
        const stunkit_ice_server *srv = &a->servers[s];
        if (srv->addr.family != local->family)
            continue;
        if (srv->transport != STUNKIT_UDP)
            continue; /* over a stream the application opened: stunkit_ice_add_stream() */
        if (!srv->turn && a->cfg.relay_only)
            continue; /* a server-reflexive address would not be used */
        if (srv->turn) {
            add_turn(a, bi, (int)s, now_ms);
        } else {
            gather_t *g = &a->gathers[a->ngathers++];
            memset(g, 0, sizeof(*g));
            g->bi = bi;
            g->server = (int)s;
            uint8_t tid[STUNKIT_TID_LEN];
            a->cfg.env.random(a->cfg.env.random_ctx, tid, sizeof(tid));
            stunkit_writer w;
            stunkit_writer_init(&w, g->req, sizeof(g->req), STUNKIT_METHOD_BINDING, STUNKIT_CLASS_REQUEST, tid);
            stunkit_put_fingerprint(&w);
            g->len = (size_t)stunkit_writer_finish(&w);
            /* gathering gives up sooner than RFC 8489's 39.5 s: sends at
             * 0, 0.5 and 1.5 s, done at 3.5 s */
            stunkit_rto rto = {500, 3, 4, 39500};
            stunkit_txn_start(&g->txn, &rto, 0, tid, now_ms);
        }
    }
    return 0;
}

int sk_ice_turn_events(stunkit_ice *a, uint64_t now, stunkit_ice_output *out)
{
    for (int i = 0; i < a->nturns; i++) {
        turn_t *t = &a->turns[i];
        stunkit_turn_output to;
        if (t->moving)
            continue; /* its stream is being reconnected: nothing to the old one */
        for (int pr; (pr = stunkit_turn_poll(t->t, now, &to)) != 0;) {
            if (pr < 0)
                continue; /* STUNKIT_ERR_NOBUF: events were lost; the rest follow */
            if (to.send) {
                memset(out, 0, sizeof(*out));
                out->send = 1;
                out->base = a->bases[t->bi].id;
                out->to = t->addr;
                out->data = to.data;
                out->len = to.len;
                return 1;
            }
            switch (to.event) {
            case STUNKIT_TURN_EVENT_ALLOCATED:
                t->done = 1;
                if (to.mapped.family && !stunkit_addr_equal(&to.mapped, &a->bases[t->bi].addr))
                    sk_ice_add_lcand(a, STUNKIT_ICE_TYPE_SRFLX, &to.mapped, &a->bases[t->bi].addr, t->bi, t->server, -1);
                /* RFC 8839 5.1: a relayed candidate's raddr is its mapped address */
                t->lc = sk_ice_add_lcand(a, STUNKIT_ICE_TYPE_RELAY, &to.relayed, to.mapped.family ? &to.mapped : NULL, t->bi,
                                  t->server, i);
                if (to.relayed2.family) {
                    /* the other family's relayed address (a dual
                     * allocation): its own candidate, one local preference
                     * below (5.1.2.1: unique among a base's candidates) */
                    a->bases[t->bi].local_pref--;
                    t->lc2 = sk_ice_add_lcand(a, STUNKIT_ICE_TYPE_RELAY, &to.relayed2, to.mapped.family ? &to.mapped : NULL,
                                       t->bi, t->server, i);
                    a->bases[t->bi].local_pref++;
                }
                break;
            case STUNKIT_TURN_EVENT_REDIRECTED:
                /* 300 Try Alternate (RFC 8489 10): over UDP the machine's
                 * datagrams go to the alternate from now on; a stream is
                 * the application's to reconnect there, and the machine
                 * (which asks again at once) waits for it */
                t->addr = to.peer;
                if (a->servers[t->server].transport == STUNKIT_UDP)
                    break;
                t->moving = 1;
                memset(out, 0, sizeof(*out));
                out->event = STUNKIT_ICE_EVENT_STREAM_REDIRECTED;
                out->base = a->bases[t->bi].id;
                out->to = to.peer;
                snprintf(out->reason, sizeof(out->reason), "%.95s", to.reason);
                return 1;
            case STUNKIT_TURN_EVENT_PERMITTED:
                for (int k = 0; k < t->nperms; k++)
                    if (stunkit_addr_ip_equal(&t->perms[k].peer, &to.peer))
                        t->perms[k].state = 2;
                break;
            case STUNKIT_TURN_EVENT_FAILED:
                if (to.peer.family) {
                    for (int k = 0; k < t->nperms; k++)
                        if (stunkit_addr_ip_equal(&t->perms[k].peer, &to.peer))
                            t->perms[k].state = 3;
                    for (int k = 0; k < a->npairs; k++)
                        if ((a->pairs[k].l == t->lc || a->pairs[k].l == t->lc2) &&
                            stunkit_addr_ip_equal(&a->remote[a->pairs[k].r].addr, &to.peer) &&
                            a->pairs[k].state != P_SUCCEEDED)
                            a->pairs[k].state = P_FAILED;
                } else {
                    t->done = 1;
                }
                break;
            default: break;
            }
        }
    }
    return 0;
}

int sk_ice_gathering_done(const stunkit_ice *a)
{
    for (int i = 0; i < a->ngathers; i++)
        if (!a->gathers[i].done)
            return 0;
    for (int i = 0; i < a->nturns; i++)
        if (!a->turns[i].done)
            return 0;
    return a->local_done;
}

/* The Binding requests to STUN servers (sends at 0, 0.5 and 1.5 s, done
 * at 3.5 s): 1 with one in *out. */
int sk_ice_gather_poll(stunkit_ice *a, uint64_t now, stunkit_ice_output *out)
{
    for (int i = 0; i < a->ngathers; i++) {
        gather_t *g = &a->gathers[i];
        if (g->done)
            continue;
        stunkit_txn_action act = stunkit_txn_poll(&g->txn, now);
        if (act == STUNKIT_TXN_SEND) {
            memset(out, 0, sizeof(*out));
            out->send = 1;
            out->base = a->bases[g->bi].id;
            out->to = a->servers[g->server].addr;
            out->data = g->req;
            out->len = g->len;
            return 1;
        }
        if (act == STUNKIT_TXN_TIMEOUT)
            g->done = 1;
    }
    return 0;
}

/* When the Binding requests next need poll (STUNKIT_NEVER: none). */
uint64_t sk_ice_gather_due(const stunkit_ice *a)
{
    uint64_t next = STUNKIT_NEVER;
    for (int i = 0; i < a->ngathers; i++)
        if (!a->gathers[i].done && stunkit_txn_timeout(&a->gathers[i].txn) < next)
            next = stunkit_txn_timeout(&a->gathers[i].txn);
    return next;
}

/* A datagram on base bi from one of the servers: a TURN client's (its
 * answers, or data it relays), or a STUN server's answer. NOT_MINE when
 * it came from elsewhere (or was no answer of ours). */
int sk_ice_gather_input(stunkit_ice *a, int bi, const stunkit_addr *from, const uint8_t *data, size_t len,
                        uint64_t now, stunkit_app_data *d)
{
    /* from a TURN server of this base: its answers, and relayed data */
    for (int i = 0; i < a->nturns; i++) {
        turn_t *t = &a->turns[i];
        if (t->bi != bi || t->moving || !stunkit_addr_equal(from, &t->addr))
            continue;
        stunkit_app_data td;
        int r = stunkit_turn_input(t->t, a->bases[bi].id, from, data, len, now, &td);
        if (r == STUNKIT_INPUT_TAKEN)
            return STUNKIT_INPUT_TAKEN;
        if (r == STUNKIT_INPUT_APP_DATA) {
            /* to the relayed address of the peer's family */
            int lc = t->lc2 >= 0 && td.from.family == a->local[t->lc2].c.addr.family ? t->lc2 : t->lc;
            if (lc >= 0 && sk_ice_on_datagram(a, lc, &td.from, td.data, td.len, now))
                return STUNKIT_INPUT_TAKEN;
            if (d) {
                d->from = td.from;
                d->data = td.data;
                d->len = td.len;
            }
            return STUNKIT_INPUT_APP_DATA;
        }
    }
    /* a STUN server's answer: a server-reflexive candidate */
    for (int i = 0; i < a->ngathers; i++) {
        gather_t *g = &a->gathers[i];
        stunkit_msg m;
        stunkit_addr mapped;
        if (g->done || g->bi != bi || !stunkit_addr_equal(from, &a->servers[g->server].addr) ||
            stunkit_txn_match(&g->txn, data, len, &m) != STUNKIT_INPUT_TAKEN)
            continue;
        g->done = 1;
        a->ans_n++; /* the server's answer counts in the loss seen too */
        a->ans_sends += g->txn.sent ? g->txn.sent : 1;
        if (m.klass == STUNKIT_CLASS_SUCCESS && stunkit_msg_mapped(&m, &mapped) == 0 &&
            !stunkit_addr_equal(&mapped, &a->bases[bi].addr))
            sk_ice_add_lcand(a, STUNKIT_ICE_TYPE_SRFLX, &mapped, &a->bases[bi].addr, bi, g->server, -1);
        return STUNKIT_INPUT_TAKEN;
    }
    return STUNKIT_INPUT_NOT_MINE;
}
