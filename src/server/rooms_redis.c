/*
 * rooms_redis.c - the rendezvous rooms in Redis (--rendezvous-redis), so
 * two peers that reach two servers of a fleet meet, and a server restart
 * loses no room. The same method as rooms.c, step for step, run as one Lua
 * script (EVAL: atomic in Redis, so two servers answering the two peers of
 * one room at once cannot both take a place), through hiredis. The bounds
 * are the same: a room's lifetime is its key's expiry, a silent peer loses
 * its place after the idle time, rooms in all and per user are counted in
 * two sorted sets (by opening time, pruned as they age). Times are Redis's
 * own clock (TIME, Unix milliseconds): one clock for the whole fleet.
 *
 *   PREFIX room:NAME   hash: opened, user; per place p (0, 1): u (taken), l (left),
 *                      i (PEER-ID), g (generation), s (last seen, ms), d (description)
 *   PREFIX rooms       sorted set: the room names by opening time
 *   PREFIX user:USER   sorted set: USER's rooms
 *   PREFIX gen         the place generations' counter
 *
 * Redis is input too: a reply of the wrong shape is an error, its strings
 * are bounded by the description's maximum. Redis down (or slow: 250 ms)
 * gives 500 Server Error to the rendezvous (the client may retry, RFC 8489
 * 6.3.4) and never touches STUN or TURN; reconnection is tried again after
 * a second. One connection for the server, under the rooms' lock.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rooms_int.h"
#include "stunkit/stunkit.h"

#ifdef STUNKITD_HAVE_HIREDIS
#include <hiredis/hiredis.h>

#include "json.h"
#include "log.h"

static const char script[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local life, idle = tonumber(ARGV[2]), tonumber(ARGV[3])\n"
    "local max_rooms, user_max, desc_max = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])\n"
    "local name, id, user = ARGV[7], ARGV[8], ARGV[9]\n"
    "local leave, has_desc = ARGV[10] == '1', ARGV[11] == '1'\n"
    "local offset, desc, ack, P = tonumber(ARGV[12]), ARGV[13], tonumber(ARGV[14]), ARGV[15]\n"
    "local room, rooms, genk = KEYS[1], KEYS[2], KEYS[3]\n"
    "redis.call('ZREMRANGEBYSCORE', rooms, '-inf', '(' .. (now - life))\n"
    "local r = {}\n"
    "local h = redis.call('HGETALL', room)\n"
    "for i = 1, #h, 2 do r[h[i]] = h[i + 1] end\n"
    "local function close_room()\n"
    "  redis.call('DEL', room)\n"
    "  redis.call('ZREM', rooms, name)\n"
    "  if r.user then redis.call('ZREM', P .. 'user:' .. r.user, name) end\n"
    "end\n"
    "local function save()\n"
    "  redis.call('HSET', room, 'opened', r.opened, 'user', r.user,\n"
    "    'u0', r.u0, 'l0', r.l0, 'i0', r.i0, 'g0', r.g0, 's0', r.s0, 'd0', r.d0,\n"
    "    'u1', r.u1, 'l1', r.l1, 'i1', r.i1, 'g1', r.g1, 's1', r.s1, 'd1', r.d1)\n"
    "  redis.call('PEXPIREAT', room, tonumber(r.opened) + life)\n"
    "end\n"
    "local exists = r.opened ~= nil\n"
    "if exists then\n"
    "  for p = 0, 1 do\n"
    "    if r['u' .. p] == '1' and now - tonumber(r['s' .. p]) > idle then\n"
    "      r['u' .. p] = '0'; r['l' .. p] = '1'; r['d' .. p] = ''\n"
    "    end\n"
    "  end\n"
    "  if now - tonumber(r.opened) > life or (r.u0 ~= '1' and r.u1 ~= '1') then\n"
    "    close_room(); exists = false; r = {}\n"
    "  end\n"
    "end\n"
    "local opened = 0\n"
    "if not exists then\n"
    "  if leave then return {1} end\n"
    "  if redis.call('ZCARD', rooms) >= max_rooms then return {508} end\n"
    "  local uk = P .. 'user:' .. user\n"
    "  redis.call('ZREMRANGEBYSCORE', uk, '-inf', '(' .. (now - life))\n"
    "  local alive = 0\n"
    "  for _, n in ipairs(redis.call('ZRANGE', uk, 0, -1)) do\n"
    "    if redis.call('EXISTS', P .. 'room:' .. n) == 1 then alive = alive + 1 else redis.call('ZREM', uk, n) end\n"
    "  end\n"
    "  if alive >= user_max then return {486} end\n"
    "  r = {opened = tostring(now), user = user, u0 = '0', l0 = '0', i0 = '', g0 = '0', s0 = '0', d0 = '',\n"
    "       u1 = '0', l1 = '0', i1 = '', g1 = '0', s1 = '0', d1 = ''}\n"
    "  redis.call('ZADD', rooms, now, name)\n"
    "  redis.call('ZADD', uk, now, name)\n"
    "  opened = 1\n"
    "end\n"
    "local me = -1\n"
    "for p = 0, 1 do if me < 0 and r['u' .. p] == '1' and r['i' .. p] == id then me = p end end\n"
    "if me < 0 and leave then return {1} end\n"
    "local met = 0\n"
    "for p = 0, 1 do\n"
    "  if me < 0 and r['u' .. p] ~= '1' then\n"
    "    me = p; r['u' .. p] = '1'; r['l' .. p] = '0'; r['d' .. p] = ''; r['i' .. p] = id\n"
    "    r['g' .. p] = tostring(redis.call('INCR', genk) % 65536)\n"
    "    if r['u' .. (1 - p)] == '1' then met = 1 end\n"
    "  end\n"
    "end\n"
    "if me < 0 then return {403} end\n"
    "local o = 1 - me\n"
    "r['s' .. me] = tostring(now)\n"
    "if leave then\n"
    "  r['u' .. me] = '0'; r['l' .. me] = '1'; r['d' .. me] = ''\n"
    "  if r['u' .. o] ~= '1' then close_room() else save() end\n"
    "else\n"
    "  if has_desc then\n"
    "    if offset + #desc > desc_max then save(); return {400, opened, met} end\n"
    "    local cur = r['d' .. me]\n"
    "    if offset <= #cur and offset + #desc > #cur then r['d' .. me] = cur .. string.sub(desc, #cur - offset + 1) end\n"
    "  end\n"
    "  save()\n"
    "end\n"
    "local od = r['d' .. o] or ''\n"
    "local ostate = 0\n"
    "if r['u' .. o] == '1' then ostate = 1 elseif r['l' .. o] == '1' then ostate = 2 end\n"
    "local from = ''\n"
    "if ostate == 1 and not leave and ack < #od then from = string.sub(od, ack + 1) end\n"
    "local held = 0\n"
    "if not leave then held = #r['d' .. me] end\n"
    "local olen = 0\n"
    "if ostate == 1 then olen = #od end\n"
    "return {0, opened, met, me, ostate, tonumber(r['g' .. o] or '0'), held, olen, from}\n";

/* The connection (under r->lock): made or remade, at most once a second. */
static redisContext *connection(skd_rdv *r, uint64_t now)
{
    redisContext *c = r->redis;
    if (c && !c->err)
        return c;
    if (c) {
        redisFree(c);
        r->redis = NULL;
    }
    if (now < r->redis_retry_ms)
        return NULL;
    r->redis_retry_ms = now + 1000;
    struct timeval tv = {0, 250000};
    const char *where = r->cfg.redis;
    if (where[0] == '/') {
        c = redisConnectUnixWithTimeout(where, tv);
    } else {
        char host[256];
        int port = 6379;
        snprintf(host, sizeof(host), "%s", where);
        char *colon = strrchr(host, ':');
        if (colon && !strchr(colon, ']') && (!strchr(host, ':') || colon == strchr(host, ':') || host[0] == '[')) {
            *colon = 0;
            port = atoi(colon + 1);
        }
        if (host[0] == '[') { /* [v6]:port */
            memmove(host, host + 1, strlen(host));
            char *end = strchr(host, ']');
            if (end)
                *end = 0;
        }
        c = redisConnectWithTimeout(host, port, tv);
    }
    if (!c || c->err) {
        skd_warn("rendezvous: cannot reach Redis at %s: %s (rooms answer 500 until it is back)", where,
                 c ? c->errstr : "out of memory");
        if (c)
            redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, tv);
    skd_info("rendezvous: rooms in Redis at %s", where);
    r->redis = c;
    return c;
}

/* Redis's clock, Unix milliseconds (fallback: what we have). */
static uint64_t redis_now_ms(redisContext *c, uint64_t fallback)
{
    redisReply *t = redisCommand(c, "TIME");
    uint64_t ms = fallback;
    if (t && t->type == REDIS_REPLY_ARRAY && t->elements == 2 && t->element[0]->type == REDIS_REPLY_STRING &&
        t->element[1]->type == REDIS_REPLY_STRING)
        ms = strtoull(t->element[0]->str, NULL, 10) * 1000u + strtoull(t->element[1]->str, NULL, 10) / 1000u;
    if (t)
        freeReplyObject(t);
    return ms;
}

skd_verdict skd_rdv_redis_serve(const skd_handler_cfg *cfg, const skd_request *rq, const stunkit_msg *m,
                                const skd_auth_verdict *authed, skd_outbox *ob, const rdv_req *q)
{
    skd_rdv *r = cfg->rdv;
    const char *prefix = r->cfg.redis_prefix ? r->cfg.redis_prefix : "stunkitd:";
    char k_room[160], k_rooms[96], k_gen[96], a[8][24];
    snprintf(k_room, sizeof(k_room), "%sroom:%.*s", prefix, (int)q->room_len, q->room);
    snprintf(k_rooms, sizeof(k_rooms), "%srooms", prefix);
    snprintf(k_gen, sizeof(k_gen), "%sgen", prefix);
    snprintf(a[0], sizeof(a[0]), "%llu", (unsigned long long)rq->now_ms);
    snprintf(a[1], sizeof(a[1]), "%llu", (unsigned long long)r->cfg.lifetime_s * 1000ull);
    snprintf(a[2], sizeof(a[2]), "%llu", (unsigned long long)r->cfg.idle_s * 1000ull);
    snprintf(a[3], sizeof(a[3]), "%d", r->cfg.max_rooms);
    snprintf(a[4], sizeof(a[4]), "%d", r->cfg.user_rooms);
    snprintf(a[5], sizeof(a[5]), "%u", r->cfg.desc_max);
    snprintf(a[6], sizeof(a[6]), "%u", q->offset);
    snprintf(a[7], sizeof(a[7]), "%u", q->ack);
    /* the PEER-ID as hex: 8 bytes, any of them */
    char id[17];
    for (int i = 0; i < 8; i++)
        snprintf(id + 2 * i, 3, "%02x", q->id[i]);
    const char *user = authed ? authed->user : "";
    size_t user_len = authed ? authed->user_len : 0;
    const char *argv[] = {"EVAL", script, "3", k_room, k_rooms, k_gen, a[0], a[1], a[2], a[3], a[4], a[5],
                          q->room, id, user, q->leave ? "1" : "0", q->has_desc ? "1" : "0", a[6],
                          q->has_desc ? (const char *)q->desc : "", a[7], prefix};
    size_t lens[sizeof(argv) / sizeof(argv[0])];
    for (size_t i = 0; i < sizeof(argv) / sizeof(argv[0]); i++)
        lens[i] = strlen(argv[i]);
    lens[12] = q->room_len;
    lens[14] = user_len;
    lens[18] = q->has_desc ? q->desc_len : 0;

    pthread_mutex_lock(&r->lock);
    redisContext *c = connection(r, rq->now_ms);
    redisReply *rep = c ? redisCommandArgv(c, (int)(sizeof(argv) / sizeof(argv[0])), argv, lens) : NULL;
    if (!rep && c && (c->err == REDIS_ERR_EOF || c->err == REDIS_ERR_IO)) {
        /* the connection died since the last request (Redis restarted, a
         * failover): one new connection at once, the request again */
        r->redis_retry_ms = 0;
        c = connection(r, rq->now_ms);
        rep = c ? redisCommandArgv(c, (int)(sizeof(argv) / sizeof(argv[0])), argv, lens) : NULL;
    }
    int code = -1;
    long long v[8] = {0};
    const char *from = "";
    size_t from_len = 0;
    if (rep && rep->type == REDIS_REPLY_ARRAY && rep->elements >= 1 && rep->element[0]->type == REDIS_REPLY_INTEGER) {
        code = (int)rep->element[0]->integer;
        for (size_t i = 1; i < rep->elements && i < 9; i++) {
            redisReply *e = rep->element[i];
            if (i < 8 && e->type == REDIS_REPLY_INTEGER)
                v[i - 1] = e->integer;
            else if (i == 8 && e->type == REDIS_REPLY_STRING && e->len <= r->cfg.desc_max) {
                from = e->str;
                from_len = e->len;
            }
        }
        if (code == 0 && (rep->elements != 9 || v[2] < 0 || v[2] > 1 || v[3] < 0 || v[3] > 2 || v[5] < 0 ||
                          v[5] > r->cfg.desc_max || v[6] < 0 || v[6] > r->cfg.desc_max ||
                          rep->element[8]->type != REDIS_REPLY_STRING))
            code = -1; /* not the shape the script returns */
    } else if (rep || c) {
        skd_warn("rendezvous: Redis: %s", rep && rep->type == REDIS_REPLY_ERROR ? rep->str
                                          : c && c->err                     ? c->errstr
                                                                              : "an unexpected reply");
    }
    if (code < 0) {
        r->redis_errors++;
        if (rep)
            freeReplyObject(rep);
        pthread_mutex_unlock(&r->lock);
        return skd_reply_error(cfg, rq, m, authed, 500, "Server Error: the rooms' store is unreachable", NULL, 0, ob);
    }
    r->rooms_opened += code == 0 && v[0];
    r->peers_met += code == 0 && v[1];
    r->refused_full += code == 403;
    r->refused_quota += code == 486;
    r->refused_capacity += code == 508;
    r->refused_size += code == 400;
    skd_verdict verdict;
    if (code == 1) {
        static const skd_place nobody;
        verdict = skd_rdv_answer(cfg, rq, m, authed, ob, 0, NULL, &nobody, 0);
    } else if (code == 0) {
        /* the peer's bytes came from ack on: the answer reads them at ack */
        skd_place me = {0}, other = {0};
        me.len = (uint32_t)v[5];
        other.used = v[3] == 1;
        other.left = v[3] == 2;
        other.gen = (uint16_t)v[4];
        other.len = (uint32_t)v[6];
        char *held = NULL;
        if (other.used && from_len) {
            /* the answer reads the peer's bytes at ack: laid out so */
            held = calloc(1, (size_t)q->ack + from_len);
            if (held)
                memcpy(held + q->ack, from, from_len);
            other.desc = held;
            other.len = held ? q->ack + (uint32_t)from_len : 0; /* what came is what there is */
        }
        verdict = skd_rdv_answer(cfg, rq, m, authed, ob, (int)v[2], q->leave ? NULL : &me, &other, q->ack);
        free(held);
    } else {
        char text[96];
        if (code == 400)
            snprintf(text, sizeof(text), "Bad Request: a description holds at most %u bytes", r->cfg.desc_max);
        verdict = skd_reply_error(cfg, rq, m, authed, code,
                                  code == 403   ? "Forbidden: the room is full (two peers are in it)"
                                  : code == 486 ? "Quota Reached: too many rooms open for this user"
                                  : code == 508 ? "Insufficient Capacity: no room left in the fleet"
                                                : text,
                                  NULL, 0, ob);
    }
    freeReplyObject(rep);
    pthread_mutex_unlock(&r->lock);
    return verdict;
}

/* The rooms open in the fleet (the gauge), under the lock. */
int skd_rdv_redis_rooms(skd_rdv *r, uint64_t now_ms)
{
    const char *prefix = r->cfg.redis_prefix ? r->cfg.redis_prefix : "stunkitd:";
    redisContext *c = connection(r, now_ms);
    if (!c)
        return 0;
    char key[96], min[32];
    uint64_t unix_ms = redis_now_ms(c, now_ms);
    snprintf(key, sizeof(key), "%srooms", prefix);
    snprintf(min, sizeof(min), "%llu", (unsigned long long)(unix_ms - (uint64_t)r->cfg.lifetime_s * 1000u));
    redisReply *rep = redisCommand(c, "ZCOUNT %s %s +inf", key, min);
    int n = rep && rep->type == REDIS_REPLY_INTEGER ? (int)rep->integer : 0;
    if (rep)
        freeReplyObject(rep);
    return n;
}

size_t skd_rdv_redis_describe(skd_rdv *r, uint64_t now_ms, char *buf, size_t cap, int *n, int *left)
{
    const char *prefix = r->cfg.redis_prefix ? r->cfg.redis_prefix : "stunkitd:";
    redisContext *c = connection(r, now_ms);
    size_t off = 0;
    if (!c)
        return 0;
    now_ms = redis_now_ms(c, now_ms); /* the rooms' times are Redis's */
    redisReply *list = redisCommand(c, "ZRANGE %srooms 0 999 WITHSCORES", prefix);
    for (size_t i = 0; list && list->type == REDIS_REPLY_ARRAY && i + 1 < list->elements; i += 2) {
        redisReply *name = list->element[i], *score = list->element[i + 1];
        if (name->type != REDIS_REPLY_STRING || name->len > 64 || !stunkit_rdv_room_valid(name->str, name->len))
            continue;
        uint64_t opened = score->type == REDIS_REPLY_STRING ? strtoull(score->str, NULL, 10) : now_ms;
        redisReply *h = redisCommand(c, "HMGET %sroom:%b user u0 u1", prefix, name->str, name->len);
        if (!h || h->type != REDIS_REPLY_ARRAY || h->elements != 3 || h->element[0]->type != REDIS_REPLY_STRING) {
            if (h)
                freeReplyObject(h);
            continue;
        }
        char user[300], one[512];
        skd_json_text(user, sizeof(user), h->element[0]->str, h->element[0]->len);
        int peers = 0;
        for (int p = 1; p <= 2; p++)
            peers += h->element[p]->type == REDIS_REPLY_STRING && h->element[p]->len == 1 && h->element[p]->str[0] == '1';
        int w = snprintf(one, sizeof(one), "%s{\"room\": \"%.*s\", \"user\": %s, \"age_s\": %llu, \"peers\": %d}",
                         *n ? ",\n  " : "\n  ", (int)name->len, name->str, user,
                         (unsigned long long)(now_ms > opened ? (now_ms - opened) / 1000 : 0), peers);
        freeReplyObject(h);
        if (w < 0 || (size_t)w >= cap - off) {
            (*left)++;
            continue;
        }
        memcpy(buf + off, one, (size_t)w + 1);
        off += (size_t)w;
        (*n)++;
    }
    if (list)
        freeReplyObject(list);
    return off;
}

void skd_rdv_redis_close(skd_rdv *r)
{
    if (r->redis)
        redisFree(r->redis);
    r->redis = NULL;
}

int skd_rdv_redis_available(void)
{
    return 1;
}

#else /* built without hiredis: --rendezvous-redis is refused at start */

skd_verdict skd_rdv_redis_serve(const skd_handler_cfg *cfg, const skd_request *rq, const stunkit_msg *m,
                                const skd_auth_verdict *authed, skd_outbox *ob, const rdv_req *q)
{
    (void)q;
    return skd_reply_error(cfg, rq, m, authed, 500, "Server Error: built without Redis", NULL, 0, ob);
}

int skd_rdv_redis_rooms(skd_rdv *r, uint64_t now_ms)
{
    (void)r;
    (void)now_ms;
    return 0;
}

size_t skd_rdv_redis_describe(skd_rdv *r, uint64_t now_ms, char *buf, size_t cap, int *n, int *left)
{
    (void)r, (void)now_ms, (void)buf, (void)cap, (void)n, (void)left;
    return 0;
}

void skd_rdv_redis_close(skd_rdv *r)
{
    (void)r;
}

int skd_rdv_redis_available(void)
{
    return 0;
}
#endif
