/*
 * rooms.c - the RENDEZVOUS method (the server side; the client is src/lib/rendezvous.c): rooms of two places, each place a
 * peer (named by the PEER-ID it sends each time) and the description it has
 * uploaded so far. See rendezvous.h for the bounds and stunkit/rendezvous.h
 * for the wire.
 *
 *   request ──> checks (ROOM, PEER-ID, ACK; OFFSET with DESCRIPTION)
 *           ──> the room (opened on first use: 508 / 486 when over the bounds)
 *           ──> the peer's place (found by PEER-ID, else a free or silent
 *               one: 403 when both are taken)
 *           ──> LEAVE, or our bytes appended from OFFSET
 *           ──> answer: STATUS, and the other peer's bytes from ACK on
 */
#include "rooms.h"
#include "rooms_int.h"
#include "json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stunkit/rendezvous.h"


struct skd_room {
    skd_room *next;
    char name[STUNKIT_RDV_ROOM_MAX];
    size_t name_len;
    char user[128];    /* the authenticated user who opened it (named by USERNAME or USERHASH): rooms per user */
    size_t user_len;
    uint64_t opened_ms;
    skd_place place[2];
};

static uint32_t hash_name(const skd_rdv *r, const char *name, size_t len)
{
    uint32_t h = 2166136261u ^ r->seed; /* FNV-1a, seeded */
    for (size_t i = 0; i < len; i++)
        h = (h ^ (uint8_t)name[i]) * 16777619u;
    return h & (r->n_buckets - 1);
}

int skd_rdv_init(skd_rdv *r, const skd_rdv_cfg *cfg, uint32_t seed)
{
    memset(r, 0, sizeof(*r));
    r->cfg = *cfg;
    r->seed = seed;
    r->n_buckets = 64;
    while (r->n_buckets < (uint32_t)cfg->max_rooms && r->n_buckets < (1u << 20))
        r->n_buckets <<= 1;
    r->buckets = calloc(r->n_buckets, sizeof(*r->buckets));
    if (!r->buckets || pthread_mutex_init(&r->lock, NULL) != 0) {
        free(r->buckets);
        r->buckets = NULL;
        return -1;
    }
    return 0;
}

static void room_free(skd_room *room)
{
    /* descriptions carry candidate addresses: not left in freed memory */
    volatile uint8_t *p = (volatile uint8_t *)room->place[0].desc;
    for (size_t i = 0; p && i < room->place[0].len; i++)
        p[i] = 0;
    p = (volatile uint8_t *)room->place[1].desc;
    for (size_t i = 0; p && i < room->place[1].len; i++)
        p[i] = 0;
    free(room);
}

void skd_rdv_free(skd_rdv *r)
{
    if (!r->buckets)
        return;
    for (uint32_t b = 0; b < r->n_buckets; b++)
        for (skd_room *room = r->buckets[b], *next; room; room = next) {
            next = room->next;
            room_free(room);
        }
    free(r->buckets);
    r->buckets = NULL;
    skd_rdv_redis_close(r);
    pthread_mutex_destroy(&r->lock);
}

/* Unlinks and frees every room of bucket b whose lifetime is over, and
 * frees the places of peers silent too long. */
static void sweep_bucket(skd_rdv *r, uint32_t b, uint64_t now)
{
    uint64_t life = (uint64_t)r->cfg.lifetime_s * 1000u, idle = (uint64_t)r->cfg.idle_s * 1000u;
    for (skd_room **pp = &r->buckets[b]; *pp;) {
        skd_room *room = *pp;
        for (int i = 0; i < 2; i++) {
            skd_place *pl = &room->place[i];
            if (pl->used && now - pl->seen_ms > idle) {
                pl->used = 0;
                pl->left = 1;
                pl->len = 0;
            }
        }
        if (now - room->opened_ms > life || (!room->place[0].used && !room->place[1].used)) {
            *pp = room->next;
            r->n_rooms--;
            r->rooms_expired += now - room->opened_ms > life;
            room_free(room);
            continue;
        }
        pp = &room->next;
    }
}

void skd_rdv_counters_get(skd_rdv *r, uint64_t now_ms, skd_rdv_counters *c)
{
    pthread_mutex_lock(&r->lock);
    /* a gauge says what is true now: rooms past their lifetime (or left by
     * both peers' silence) are closed first, not counted until a lazy sweep
     * happens to reach them */
    for (uint32_t b = 0; b < r->n_buckets && !r->cfg.redis; b++)
        sweep_bucket(r, b, now_ms);
    c->rooms_opened = r->rooms_opened;
    c->rooms_expired = r->rooms_expired;
    c->peers_met = r->peers_met;
    c->refused_full = r->refused_full;
    c->refused_quota = r->refused_quota;
    c->refused_capacity = r->refused_capacity;
    c->refused_size = r->refused_size;
    c->rooms_open = r->cfg.redis ? skd_rdv_redis_rooms(r, now_ms) : r->n_rooms;
    pthread_mutex_unlock(&r->lock);
}

size_t skd_rdv_describe(skd_rdv *r, uint64_t now_ms, char *buf, size_t cap, int *n, int *left)
{
    size_t off = 0;
    if (cap)
        buf[0] = 0;
    pthread_mutex_lock(&r->lock);
    if (r->cfg.redis) {
        off = skd_rdv_redis_describe(r, now_ms, buf, cap, n, left);
        pthread_mutex_unlock(&r->lock);
        return off;
    }
    for (uint32_t b = 0; b < r->n_buckets; b++) {
        sweep_bucket(r, b, now_ms);
        for (const skd_room *room = r->buckets[b]; room; room = room->next) {
            char user[300], one[512];
            skd_json_text(user, sizeof(user), room->user, room->user_len);
            int m = snprintf(one, sizeof(one), "%s{\"room\": \"%.*s\", \"user\": %s, \"age_s\": %llu, \"peers\": %d}",
                             *n ? ",\n  " : "\n  ", (int)room->name_len, room->name, user,
                             (unsigned long long)((now_ms - room->opened_ms) / 1000),
                             room->place[0].used + room->place[1].used);
            if (m < 0 || (size_t)m >= cap - off) {
                (*left)++;
                continue;
            }
            memcpy(buf + off, one, (size_t)m + 1);
            off += (size_t)m;
            (*n)++;
        }
    }
    pthread_mutex_unlock(&r->lock);
    return off;
}

/* A room still counts for its user: within its lifetime, and a peer in it
 * has spoken within the idle time (what the sweep would close is not
 * counted, whether or not the sweep has reached it yet). */
static int room_alive(const skd_rdv *r, const skd_room *room, uint64_t now)
{
    uint64_t life = (uint64_t)r->cfg.lifetime_s * 1000u, idle = (uint64_t)r->cfg.idle_s * 1000u;
    if (now - room->opened_ms > life)
        return 0;
    for (int i = 0; i < 2; i++)
        if (room->place[i].used && now - room->place[i].seen_ms <= idle)
            return 1;
    return 0;
}

/* Rooms the user has open now. */
static int user_rooms(const skd_rdv *r, const char *user, size_t len, uint64_t now)
{
    int n = 0;
    for (uint32_t b = 0; b < r->n_buckets; b++)
        for (const skd_room *room = r->buckets[b]; room; room = room->next)
            n += room->user_len == len && !memcmp(room->user, user, len) && room_alive(r, room, now);
    return n;
}

/* ---- the answer ---- */

skd_verdict skd_rdv_answer(const skd_handler_cfg *cfg, const skd_request *rq, const stunkit_msg *m,
                           const skd_auth_verdict *authed, skd_outbox *ob, int role, const skd_place *me,
                           const skd_place *other, uint32_t ack)
{
    stunkit_writer w;
    size_t room;
    uint8_t *out = skd_outbox_room(ob, &room);
    if (!out)
        return SKD_DROP_NOBUF;
    uint8_t st[STUNKIT_RDV_STATUS_LEN];
    uint32_t held = me ? me->len : 0, peer_len = other->used ? other->len : 0;
    st[0] = (uint8_t)role;
    st[1] = other->used ? 1 : other->left ? 2 : 0;
    st[2] = (uint8_t)(other->gen >> 8);
    st[3] = (uint8_t)other->gen;
    for (int i = 0; i < 4; i++) {
        st[4 + i] = (uint8_t)(held >> (24 - 8 * i));
        st[8 + i] = (uint8_t)(peer_len >> (24 - 8 * i));
    }
    stunkit_writer_init(&w, out, room, m->method, STUNKIT_CLASS_SUCCESS, m->tid);
    stunkit_put(&w, STUNKIT_ATTR_RDV_STATUS, st, sizeof(st));
    /* The peer's bytes from ACK on, within twice the request's size: the
     * rest of this answer (header, STATUS, OFFSET, SOFTWARE, integrity,
     * FINGERPRINT) stays under 256 bytes, so 2 x len - 256 is left for the
     * description (and never more than 1 KiB, to stay within one MTU). */
    long cap = 2 * (long)rq->len - 256;
    if (cap > 1024)
        cap = 1024;
    if (other->used && ack < other->len && cap >= 4) {
        uint32_t n = other->len - ack;
        if (n > (uint32_t)cap)
            n = (uint32_t)cap;
        stunkit_put_u32(&w, STUNKIT_ATTR_RDV_OFFSET, ack);
        stunkit_put(&w, STUNKIT_ATTR_RDV_DESCRIPTION, other->desc + ack, n);
    }
    return skd_answer_finish(cfg, rq, m, authed, &w, ob);
}

/* ---- the method ---- */


/* The request's attributes: NULL, or why it is malformed (400). */
static const char *parse(const stunkit_msg *m, rdv_req *q)
{
    stunkit_attr a;
    memset(q, 0, sizeof(*q));
    if (stunkit_msg_find(m, STUNKIT_ATTR_RDV_ROOM, &a) != 0 || !stunkit_rdv_room_valid((const char *)a.value, a.len))
        return "ROOM missing or not 1-64 of A-Z a-z 0-9 . _ ~ -";
    q->room = (const char *)a.value;
    q->room_len = a.len;
    if (stunkit_msg_find(m, STUNKIT_ATTR_RDV_PEER_ID, &a) != 0 || a.len != 8)
        return "PEER-ID missing or not 8 bytes";
    q->id = a.value;
    if (stunkit_msg_find(m, STUNKIT_ATTR_RDV_ACK, &a) != 0 || stunkit_attr_u32(&a, &q->ack) != 0)
        return "ACK missing or not 4 bytes";
    int has_off = stunkit_msg_find(m, STUNKIT_ATTR_RDV_OFFSET, &a) == 0;
    if (has_off && stunkit_attr_u32(&a, &q->offset) != 0)
        return "OFFSET not 4 bytes";
    q->has_desc = stunkit_msg_find(m, STUNKIT_ATTR_RDV_DESCRIPTION, &a) == 0;
    if (q->has_desc != has_off)
        return "DESCRIPTION and OFFSET go together";
    if (q->has_desc) {
        q->desc = a.value;
        q->desc_len = a.len;
    }
    q->leave = stunkit_msg_find(m, STUNKIT_ATTR_RDV_LEAVE, &a) == 0;
    return NULL;
}

static skd_verdict refuse(const skd_handler_cfg *cfg, const skd_request *rq, const stunkit_msg *m,
                          const skd_auth_verdict *authed, skd_outbox *ob, skd_rdv *r, int code, const char *why)
{
    pthread_mutex_unlock(&r->lock);
    return skd_reply_error(cfg, rq, m, authed, code, why, NULL, 0, ob);
}

skd_verdict skd_rendezvous(const skd_handler_cfg *cfg, const skd_request *rq, const stunkit_msg *m,
                           const skd_auth_verdict *authed, skd_outbox *ob)
{
    skd_rdv *r = cfg->rdv;
    rdv_req q;
    const char *why = parse(m, &q);
    if (why)
        return skd_reply_error(cfg, rq, m, authed, STUNKIT_CODE_BAD_REQUEST, why, NULL, 0, ob);
    uint64_t now = rq->now_ms;
    if (r->cfg.redis)
        return skd_rdv_redis_serve(cfg, rq, m, authed, ob, &q);
    pthread_mutex_lock(&r->lock);
    /* a little of the table is swept with every request */
    uint32_t b = hash_name(r, q.room, q.room_len);
    sweep_bucket(r, b, now);
    sweep_bucket(r, r->sweep++ & (r->n_buckets - 1), now);

    skd_room *room = r->buckets[b];
    while (room && !(room->name_len == q.room_len && !memcmp(room->name, q.room, q.room_len)))
        room = room->next;
    /* Only members hear about a room: a LEAVE from anyone else (no room,
     * or a room whose places are others') gets the same empty answer, with
     * no place, no description and nothing that tells the two apart. */
    static const skd_place nobody;
    if (!room) {
        if (q.leave) { /* nothing to leave */
            skd_verdict v = skd_rdv_answer(cfg, rq, m, authed, ob, 0, NULL, &nobody, 0);
            pthread_mutex_unlock(&r->lock);
            return v;
        }
        if (r->n_rooms >= r->cfg.max_rooms)
            for (uint32_t i = 0; i < r->n_buckets; i++)
                sweep_bucket(r, i, now);
        if (r->n_rooms >= r->cfg.max_rooms) {
            r->refused_capacity++;
            return refuse(cfg, rq, m, authed, ob, r, 508, "Insufficient Capacity: no room left on this server");
        }
        /* the authenticated user ("" without authentication: --rendezvous
         * needs credentials, but the handler also runs without them) */
        const char *user = authed ? authed->user : "";
        size_t user_len = authed ? authed->user_len : 0;
        if (user_rooms(r, user, user_len, now) >= r->cfg.user_rooms) {
            r->refused_quota++;
            return refuse(cfg, rq, m, authed, ob, r, 486, "Quota Reached: too many rooms open for this user");
        }
        room = calloc(1, sizeof(*room) + 2 * (size_t)r->cfg.desc_max);
        if (!room) {
            r->refused_capacity++;
            return refuse(cfg, rq, m, authed, ob, r, 508, "Insufficient Capacity");
        }
        memcpy(room->name, q.room, q.room_len);
        room->name_len = q.room_len;
        memcpy(room->user, user, user_len);
        room->user_len = user_len;
        room->opened_ms = now;
        room->place[0].desc = (char *)(room + 1);
        room->place[1].desc = room->place[0].desc + r->cfg.desc_max;
        room->next = r->buckets[b];
        r->buckets[b] = room;
        r->n_rooms++;
        r->rooms_opened++;
    }

    /* the peer's place: its own, else a free one (the first free place is
     * the offerer's when both are free) */
    int me = -1;
    for (int i = 0; i < 2 && me < 0; i++)
        if (room->place[i].used && !memcmp(room->place[i].id, q.id, 8))
            me = i;
    if (me < 0 && q.leave) {
        skd_verdict v = skd_rdv_answer(cfg, rq, m, authed, ob, 0, NULL, &nobody, 0);
        pthread_mutex_unlock(&r->lock);
        return v;
    }
    for (int i = 0; i < 2 && me < 0; i++)
        if (!room->place[i].used) {
            skd_place *pl = &room->place[i];
            me = i;
            pl->used = 1;
            pl->left = 0;
            pl->len = 0;
            memcpy(pl->id, q.id, 8);
            pl->gen = ++r->next_gen;
            if (room->place[!i].used)
                r->peers_met++;
        }
    if (me < 0) {
        r->refused_full++;
        return refuse(cfg, rq, m, authed, ob, r, 403, "Forbidden: the room is full (two peers are in it)");
    }
    skd_place *pl = &room->place[me], *other = &room->place[!me];
    pl->seen_ms = now;
    if (q.leave) {
        pl->used = 0;
        pl->left = 1;
        pl->len = 0;
        skd_verdict v = skd_rdv_answer(cfg, rq, m, authed, ob, me, NULL, other, 0);
        if (!other->used) { /* the last one out closes the room */
            for (skd_room **pp = &r->buckets[b]; *pp; pp = &(*pp)->next)
                if (*pp == room) {
                    *pp = room->next;
                    break;
                }
            r->n_rooms--;
            room_free(room);
        }
        pthread_mutex_unlock(&r->lock);
        return v;
    }
    if (q.has_desc) {
        if ((uint64_t)q.offset + q.desc_len > r->cfg.desc_max) {
            r->refused_size++;
            char text[96];
            snprintf(text, sizeof(text), "Bad Request: a description holds at most %u bytes", r->cfg.desc_max);
            return refuse(cfg, rq, m, authed, ob, r, STUNKIT_CODE_BAD_REQUEST, text);
        }
        /* append what is new; bytes we hold already (a retransmission) are
         * skipped; a gap (we forgot this peer) is ignored: the answer says
         * how much we hold and the peer sends again from there */
        if (q.offset <= pl->len && q.offset + q.desc_len > pl->len) {
            size_t skip = pl->len - q.offset;
            memcpy(pl->desc + pl->len, q.desc + skip, q.desc_len - skip);
            pl->len = q.offset + (uint32_t)q.desc_len;
        }
    }
    skd_verdict v = skd_rdv_answer(cfg, rq, m, authed, ob, me, pl, other, q.ack);
    pthread_mutex_unlock(&r->lock);
    return v;
}
