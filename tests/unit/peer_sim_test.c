/*
 * peer_sim_test.c - the library's peer (stunkit/peer.h) on a simulated
 * network, on a fake clock, in one process: no socket carries a datagram.
 *
 *   host A (192.0.2.10)    ── NAT A (203.0.113.1) ──┐
 *                                                   ├── stunkitd's handler (STUN, TURN relay,
 *   host B (198.51.100.10) ── NAT B (203.0.113.2) ──┘   rendezvous) at 127.0.0.1:3478
 *
 * The peers run on the application's network (stunkit_peer_io): their
 * datagrams go through bind/send into this file's world, where each NAT
 * maps and filters as RFC 4787 names it, every datagram takes 10-15 ms, and
 * what comes back is handed in with stunkit_peer_input(). The server is
 * stunkitd's own request handler and relay (handler.c, turn_relay.c,
 * rooms.c) in process; its relay sockets are bound on loopback but carry
 * nothing (this file moves the relayed datagrams).
 *
 * Cases: every pair of NAT kinds (open, full cone, address-restricted,
 * port-restricted, symmetric) through a room: each connects, directly
 * wherever the NATs allow (by guessing between symmetric and
 * port-restricted), through the relay between two symmetric NATs; data
 * both ways; closing releases everything (allocations, the room, every
 * port the peer bound). A relayed path replaced by a direct one when the
 * direct path opens late. Own signalling with a secret. Loss on every leg.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "handler.h"
#include "rooms.h"
#include "server_fixture.h"
#include "stunkit/peer.h"
#include "stunkit/stunkit.h"
#include "test.h"
#include "turn_relay.h"

/* ---- the clock and the randomness ---- */

static uint64_t now_ms = 1000000;
static const uint64_t epoch_s = 1795470000;
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}

static void sim_random(void *ctx, uint8_t *buf, size_t len)
{
    (void)ctx;
    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)rnd();
}

static uint64_t sim_clock(void *ctx)
{
    (void)ctx;
    return now_ms;
}

static stunkit_addr A(const char *ip, uint16_t port)
{
    stunkit_addr a;
    stunkit_addr_parse(ip, port, &a);
    return a;
}

static int same_ip(const stunkit_addr *a, const stunkit_addr *b)
{
    return a->family == b->family && !memcmp(a->ip, b->ip, a->family == STUNKIT_AF_INET ? 4 : 16);
}

/* ---- NATs (RFC 4787: mapping 4.1, filtering 5) ---- */

typedef enum { OPEN, FULL_CONE, RESTRICTED, PORT_RESTRICTED, SYMMETRIC } nat_kind;
static const char *const kind_name[] = {"open", "full-cone", "restricted", "port-restricted", "symmetric"};

typedef struct mapping {
    stunkit_addr inside;   /* the host's address and port */
    stunkit_addr dst;      /* symmetric: per destination (address and port) */
    uint16_t port;         /* outside */
} mapping;

typedef struct contact {
    uint16_t port;         /* the mapping's outside port ... */
    stunkit_addr remote;   /* ... sent to this address */
} contact;

typedef struct nat {
    nat_kind kind;
    stunkit_addr outside;  /* its public IP */
    mapping *maps;
    size_t n_maps, cap_maps;
    contact *seen;
    size_t n_seen, cap_seen;
} nat;

static mapping *find_map(nat *n, const stunkit_addr *inside, const stunkit_addr *dst)
{
    for (size_t i = 0; i < n->n_maps; i++)
        if (stunkit_addr_equal(&n->maps[i].inside, inside) &&
            (n->kind != SYMMETRIC || stunkit_addr_equal(&n->maps[i].dst, dst)))
            return &n->maps[i];
    return NULL;
}

static int port_used(const nat *n, uint16_t port)
{
    for (size_t i = 0; i < n->n_maps; i++)
        if (n->maps[i].port == port)
            return 1;
    return 0;
}

/* Outbound: the mapping (made when none), the contact remembered for the
 * filter; *from becomes the outside address. */
static void nat_out(nat *n, stunkit_addr *from, const stunkit_addr *to)
{
    mapping *m = find_map(n, from, to);
    if (!m) {
        uint16_t port = from->port; /* cone NATs keep the port when they can (Linux does) */
        if (n->kind == SYMMETRIC || port_used(n, port))
            do
                port = (uint16_t)(1024 + rnd() % 64512);
            while (port_used(n, port));
        if (n->n_maps == n->cap_maps) {
            n->cap_maps = n->cap_maps ? n->cap_maps * 2 : 64;
            n->maps = realloc(n->maps, n->cap_maps * sizeof(*n->maps));
        }
        m = &n->maps[n->n_maps++];
        m->inside = *from;
        m->dst = *to;
        m->port = port;
    }
    int known = 0;
    for (size_t i = 0; i < n->n_seen && !known; i++)
        known = n->seen[i].port == m->port && stunkit_addr_equal(&n->seen[i].remote, to);
    if (!known) {
        if (n->n_seen == n->cap_seen) {
            n->cap_seen = n->cap_seen ? n->cap_seen * 2 : 64;
            n->seen = realloc(n->seen, n->cap_seen * sizeof(*n->seen));
        }
        n->seen[n->n_seen++] = (contact){m->port, *to};
    }
    *from = n->outside;
    from->port = m->port;
}

/* Inbound to the outside port: 1 and *to the inside address, or 0 (no
 * mapping, or the filter drops it). */
static int nat_in(nat *n, const stunkit_addr *from, stunkit_addr *to)
{
    mapping *m = NULL;
    for (size_t i = 0; i < n->n_maps && !m; i++)
        if (n->maps[i].port == to->port)
            m = &n->maps[i];
    if (!m)
        return 0;
    int pass = n->kind == FULL_CONE;
    for (size_t i = 0; i < n->n_seen && !pass; i++) {
        const contact *c = &n->seen[i];
        if (c->port != m->port)
            continue;
        pass = n->kind == RESTRICTED ? same_ip(&c->remote, from) : stunkit_addr_equal(&c->remote, from);
    }
    if (pass)
        *to = m->inside;
    return pass;
}

/* ---- hosts ---- */

#define MAX_BOUND 2048
typedef struct host {
    const char *name;
    stunkit_addr ip;       /* its own (inside the NAT, or public when open) */
    nat nat;
    stunkit_peer *peer;
    uint16_t next_port;
    stunkit_addr bound[MAX_BOUND];
    int n_bound;           /* ports the peer holds now */
    int binds;             /* ports it was ever given */
    /* what the peer said */
    stunkit_peer_state state;
    uint64_t connected_at, role_at;
    int paths, relayed, direct_after_relay;
    char path_why[32];
    char reason[200];
    int got;               /* the other side's datagrams */
    char last[64];
    /* own signalling: descriptions for the other side */
    char out[8192];
    size_t out_len, out_sent;
} host;

static host hosts[2];

static int sim_bind(void *ctx, const stunkit_addr *ip, stunkit_addr *bound)
{
    host *h = ctx;
    if (!same_ip(ip, &h->ip) || h->n_bound == MAX_BOUND)
        return -1;
    *bound = h->ip;
    bound->port = h->next_port++;
    h->bound[h->n_bound++] = *bound;
    h->binds++;
    return 0;
}

static void sim_unbind(void *ctx, const stunkit_addr *local)
{
    host *h = ctx;
    for (int i = 0; i < h->n_bound; i++)
        if (stunkit_addr_equal(&h->bound[i], local)) {
            h->bound[i] = h->bound[--h->n_bound];
            return;
        }
}

/* ---- the wire: datagrams in flight, in order of arrival ---- */

typedef struct pkt {
    uint64_t at, seq;
    stunkit_addr from, to;
    size_t len;
    uint8_t *data;
} pkt;

static pkt *heap;
static size_t n_heap, cap_heap;
static uint64_t seq;
static int loss_pct;                 /* each datagram, each way */
static uint64_t direct_blocked_until; /* peer to peer (not via the server) dropped until then */
static unsigned long delivered, dropped_filter, dropped_loss, dropped_block, relayed_pkts;

static int before(const pkt *a, const pkt *b)
{
    return a->at < b->at || (a->at == b->at && a->seq < b->seq);
}

static void heap_push(pkt p)
{
    if (n_heap == cap_heap) {
        cap_heap = cap_heap ? cap_heap * 2 : 1024;
        heap = realloc(heap, cap_heap * sizeof(*heap));
    }
    size_t i = n_heap++;
    heap[i] = p;
    while (i && before(&heap[i], &heap[(i - 1) / 2])) {
        pkt t = heap[i];
        heap[i] = heap[(i - 1) / 2];
        heap[(i - 1) / 2] = t;
        i = (i - 1) / 2;
    }
}

static pkt heap_pop(void)
{
    pkt top = heap[0];
    heap[0] = heap[--n_heap];
    for (size_t i = 0;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n_heap && before(&heap[l], &heap[m]))
            m = l;
        if (r < n_heap && before(&heap[r], &heap[m]))
            m = r;
        if (m == i)
            break;
        pkt t = heap[i];
        heap[i] = heap[m];
        heap[m] = t;
        i = m;
    }
    return top;
}

static void wire(const stunkit_addr *from, const stunkit_addr *to, const uint8_t *data, size_t len)
{
    pkt p = {now_ms + 10 + rnd() % 6, seq++, *from, *to, len, malloc(len ? len : 1)};
    memcpy(p.data, data, len);
    heap_push(p);
}

static const stunkit_addr *server_addr(void);
static const stunkit_addr *server2_addr(void);

static int via_server(const stunkit_addr *a)
{
    /* the servers (127.0.0.1, 127.0.0.2) and their relays (127.0.0.1) */
    return same_ip(a, server_addr()) || same_ip(a, server2_addr());
}

static void sim_send(void *ctx, const stunkit_addr *local, const stunkit_addr *to, const uint8_t *data, size_t len)
{
    host *h = ctx;
    stunkit_addr from = *local;
    if (loss_pct && (int)(rnd() % 100) < loss_pct) {
        dropped_loss++;
        return;
    }
    if (h->nat.kind != OPEN)
        nat_out(&h->nat, &from, to);
    wire(&from, to, data, len);
}

/* ---- the server: stunkitd's handler, relay and rooms ---- */

/* Two servers of one fleet: 127.0.0.1 and 127.0.0.2, each its own
 * handler, one TURN relay table and one rooms store between them (what
 * Redis is to a real fleet). server1_dead: the first is killed: nothing
 * reaches it or its allocations' relays, nothing comes from them. */
static skd_handler_cfg cfg, cfg2;
static int server1_dead;
static unsigned long dropped_dead;
static skd_auth auth;
static skd_turn_cfg tcfg;
static skd_turn_limits limits;
static skd_turn turn;
static skd_rdv rooms;

static const stunkit_addr *server_addr(void)
{
    static stunkit_addr a;
    a = cfg.v4.ip[0];
    a.port = cfg.v4.port[0];
    return &a;
}

static const stunkit_addr *server2_addr(void)
{
    static stunkit_addr a;
    a = cfg2.v4.ip[0];
    a.port = cfg2.v4.port[0];
    return &a;
}

static uint16_t test_port(int offset)
{
    const char *b = getenv("STUNKIT_TEST_PORT_BASE");
    int base = b ? atoi(b) : 0;
    if (base < 1024 || base > 31000)
        base = 21000;
    return (uint16_t)(base + offset);
}

static void server_up(void)
{
    const char *why;
    static const char *const users[] = {"alice:wonderland", NULL};
    fx_server_config(&cfg, &auth, users, "example.org", 0);
    /* relay ports: 16 of this tree's (the sockets are real, bound on loopback, never used) */
    fx_turn_config(&tcfg, test_port(944), 10);
    tcfg.port_max = (uint16_t)(tcfg.port_min + 15);
    skd_cidr_parse("127.0.0.1/32", &tcfg.policy.allowed[tcfg.policy.n_allowed++], &why);
    skd_cidr_parse("203.0.113.0/24", &tcfg.policy.allowed[tcfg.policy.n_allowed++], &why);
    skd_turn_limits_init(&limits, tcfg.max_allocations, tcfg.user_quota, 7);
    skd_turn_init(&turn, &tcfg, &limits, epoll_create1(EPOLL_CLOEXEC), 1, 99, now_ms);
    skd_rdv_cfg rc = {1, 100, 10, 600, 30, 4096, NULL, NULL};
    skd_rdv_init(&rooms, &rc, 7);
    cfg.rdv = &rooms;
    cfg2 = cfg;
    stunkit_addr_parse("127.0.0.2", 0, &cfg2.v4.ip[0]);
    server1_dead = 0;
}

static void server_down(void)
{
    close(turn.epfd);
    skd_turn_free(&turn);
    skd_turn_limits_free(&limits);
    skd_rdv_free(&rooms);
}

static skd_alloc *alloc_where(int fd, const stunkit_addr *relay, skd_relay **r)
{
    for (size_t b = 0; b < SKD_TURN_BUCKETS; b++)
        for (skd_alloc *a = turn.by_tuple[b]; a; a = a->hnext) {
            skd_relay *x[2] = {&a->relay, &a->relay2};
            for (int k = 0; k < 2; k++)
                if (x[k]->fd >= 0 && ((fd >= 0 && x[k]->fd == fd) || (relay && stunkit_addr_equal(&x[k]->addr, relay)))) {
                    *r = x[k];
                    return a;
                }
        }
    return NULL;
}

/* What a server sends: from the server the client uses (server), or
 * from a relay. */
static void server_out(skd_outbox *ob, const stunkit_addr *server)
{
    for (size_t i = 0; i < ob->n; i++) {
        skd_out *o = &ob->out[i];
        stunkit_addr from = *server;
        skd_relay *r;
        if (o->relay_fd >= 0) {
            if (!alloc_where(o->relay_fd, NULL, &r))
                continue;
            from = r->addr;
            relayed_pkts++;
        }
        wire(&from, &o->to, o->data, o->len);
    }
}

static void to_server(const pkt *p)
{
    static uint8_t obuf[65536];
    static skd_out slots[16];
    skd_outbox ob;
    skd_outbox_init(&ob, obuf, sizeof(obuf), slots, 16);
    stunkit_addr server = *server_addr();
    if (stunkit_addr_equal(&p->to, server_addr()) || stunkit_addr_equal(&p->to, server2_addr())) {
        server = p->to;
        if (server1_dead && stunkit_addr_equal(&p->to, server_addr())) {
            dropped_dead++;
            return;
        }
        skd_request rq;
        memset(&rq, 0, sizeof(rq));
        rq.data = p->data;
        rq.len = p->len;
        rq.src = p->from;
        rq.dst = server;
        rq.transport = STUNKIT_UDP;
        rq.now_s = epoch_s + now_ms / 1000;
        rq.now_ms = now_ms;
        rq.turn = &turn;
        if (!skd_turn_from_client(&turn, &rq, &ob))
            skd_handle(stunkit_addr_equal(&server, server_addr()) ? &cfg : &cfg2, &rq, &ob);
    } else {
        skd_relay *r;
        skd_alloc *a = alloc_where(-1, &p->to, &r);
        if (!a)
            return; /* no allocation there (any more) */
        if (server1_dead && stunkit_addr_equal(&a->server, server_addr())) {
            dropped_dead++; /* its relays died with it */
            return;
        }
        server = a->server;
        skd_turn_from_peer(&turn, r, &p->from, p->data, p->len, now_ms, &ob);
    }
    server_out(&ob, &server);
    skd_turn_reap(&turn);
}

/* ---- delivery ---- */

static void deliver(pkt *p)
{
    if (!via_server(&p->from) && !via_server(&p->to) && now_ms < direct_blocked_until) {
        dropped_block++;
        return;
    }
    if (via_server(&p->to)) {
        delivered++;
        to_server(p);
        return;
    }
    for (int k = 0; k < 2; k++) {
        host *h = &hosts[k];
        stunkit_addr to = p->to;
        if (h->nat.kind == OPEN ? !same_ip(&to, &h->ip) : !same_ip(&to, &h->nat.outside))
            continue;
        if (h->nat.kind != OPEN && !nat_in(&h->nat, &p->from, &to)) {
            dropped_filter++;
            return;
        }
        delivered++;
        if (h->peer)
            stunkit_peer_input(h->peer, &to, &p->from, p->data, p->len, now_ms);
        return;
    }
    /* to an address no one routes (a host candidate behind a NAT): gone */
}

/* ---- the peers ---- */

static void on_event(stunkit_peer *p, const stunkit_peer_event *ev, void *user)
{
    host *h = user;
    (void)p;
    switch (ev->type) {
    case STUNKIT_PEER_EVENT_STATE:
        h->state = ev->state;
        if (ev->state == STUNKIT_PEER_CONNECTED && !h->connected_at)
            h->connected_at = now_ms;
        if (ev->reason)
            snprintf(h->reason, sizeof(h->reason), "%s", ev->reason);
        break;
    case STUNKIT_PEER_EVENT_ROLE:
        if (!h->role_at)
            h->role_at = now_ms;
        break;
    case STUNKIT_PEER_EVENT_PATH:
        if (h->paths && h->relayed && !ev->relayed)
            h->direct_after_relay = 1;
        h->paths++;
        h->relayed = ev->relayed;
        snprintf(h->path_why, sizeof(h->path_why), "%s", ev->reason ? ev->reason : "");
        break;
    case STUNKIT_PEER_EVENT_DESCRIPTION:
        if (h->out_len + ev->len <= sizeof(h->out)) {
            memcpy(h->out + h->out_len, ev->text, ev->len);
            h->out_len += ev->len;
        }
        break;
    case STUNKIT_PEER_EVENT_LOG:
        if (getenv("PEER_SIM_TRACE"))
            fprintf(stderr, "  [%s %llu] %.*s\n", h->name, (unsigned long long)now_ms, (int)ev->len, ev->text);
        break;
    default: break;
    }
}

static void on_data(stunkit_peer *p, const uint8_t *data, size_t len, void *user)
{
    host *h = user;
    (void)p;
    h->got++;
    snprintf(h->last, sizeof(h->last), "%.*s", (int)(len < 60 ? len : 60), (const char *)data);
}

static stunkit_peer_io sim_io_for(host *h)
{
    stunkit_peer_io io = {sim_bind, sim_send, sim_unbind, h};
    return io;
}

typedef struct setup {
    nat_kind a, b;
    const char *room;   /* the rendezvous, or NULL: own signalling */
    const char *secret;
    int fleet;          /* A at server 1, B at server 2, each with the other as its fallback */
} setup;

static stunkit_peer_io ios[2];

static void world_up(const setup *s)
{
    static const char *const ips[2] = {"192.0.2.10", "198.51.100.10"};
    static const char *const outs[2] = {"203.0.113.1", "203.0.113.2"};
    nat_kind kinds[2] = {s->a, s->b};
    server_up();
    for (int k = 0; k < 2; k++) {
        host *h = &hosts[k];
        memset(h, 0, sizeof(*h));
        h->name = k ? "B" : "A";
        h->nat.kind = kinds[k];
        /* an open host has its public address on itself */
        h->ip = A(kinds[k] == OPEN ? outs[k] : ips[k], 0);
        h->nat.outside = A(outs[k], 0);
        h->next_port = 40000;
        ios[k] = sim_io_for(h);
        const char *local[1];
        char ipbuf[64];
        stunkit_addr_format(&h->ip, ipbuf, sizeof(ipbuf));
        ipbuf[strcspn(ipbuf, ":")] = 0;
        local[0] = ipbuf;
        stunkit_peer_config c = STUNKIT_CONFIG_INIT(c);
        c.env.random = sim_random;
        static const char *const at[2] = {"127.0.0.1:3478", "127.0.0.2:3478"};
        const char *fallback[1] = {at[!k]};
        c.server = s->fleet ? at[k] : at[0];
        if (s->fleet) {
            c.fallback_servers = fallback;
            c.n_fallback_servers = 1;
        }
        c.username = "alice";
        c.password = "wonderland";
        c.room = s->room;
        c.secret = s->secret;
        c.own_signalling = s->room == NULL;
        c.controlling = k == 0;
        c.trickle = 1;
        c.no_port_mapping = 1;
        c.local_addresses = local;
        c.n_local_addresses = 1;
        c.clock = sim_clock;
        c.on_event = on_event;
        c.on_data = on_data;
        c.user = h;
        c.io = &ios[k];
        int err = 0;
        char why[200];
        h->peer = stunkit_peer_new(&c, &err, why, sizeof(why));
        CHECK(h->peer != NULL);
        if (!h->peer)
            fprintf(stderr, "  peer %s: %d %s\n", h->name, err, why);
    }
}

/* Own signalling: what each side said, carried to the other (50 ms late). */
static uint64_t signal_at[2];

static void carry_descriptions(void)
{
    for (int k = 0; k < 2; k++) {
        host *h = &hosts[k], *o = &hosts[!k];
        if (h->out_sent == h->out_len || !o->peer)
            continue;
        if (!signal_at[k])
            signal_at[k] = now_ms + 50;
        if (now_ms < signal_at[k])
            continue;
        CHECK_EQ(stunkit_peer_apply(o->peer, h->out + h->out_sent, h->out_len - h->out_sent), 0);
        h->out_sent = h->out_len;
        signal_at[k] = 0;
    }
}

/* Runs the world until done() or `ms` of its time passed. */
static void run(int (*done)(void), uint64_t ms)
{
    uint64_t end = now_ms + ms;
    for (long spins = 0; now_ms < end; spins++) {
        if (done && done())
            return;
        if (spins > 5000000) {
            CHECK_FAIL("the world does not move on");
            fprintf(stderr, "  now %llu heap %zu next %llu A %llu B %llu\n", (unsigned long long)now_ms, n_heap,
                    (unsigned long long)(n_heap ? heap[0].at : 0),
                    (unsigned long long)(hosts[0].peer ? stunkit_peer_timeout(hosts[0].peer) : 0),
                    (unsigned long long)(hosts[1].peer ? stunkit_peer_timeout(hosts[1].peer) : 0));
            return;
        }
        uint64_t next = end;
        if (n_heap && heap[0].at < next)
            next = heap[0].at;
        for (int k = 0; k < 2; k++) {
            if (hosts[k].peer) {
                uint64_t t = stunkit_peer_timeout(hosts[k].peer);
                if (t < next)
                    next = t;
            }
            if (signal_at[k] && signal_at[k] < next)
                next = signal_at[k];
            if (hosts[k].out_sent < hosts[k].out_len && !signal_at[k])
                next = now_ms;
        }
        if (next > now_ms)
            now_ms = next;
        while (n_heap && heap[0].at <= now_ms) {
            pkt p = heap_pop();
            deliver(&p);
            free(p.data);
        }
        carry_descriptions();
        for (int k = 0; k < 2; k++)
            if (hosts[k].peer && stunkit_peer_timeout(hosts[k].peer) <= now_ms)
                stunkit_peer_step(hosts[k].peer, now_ms);
        skd_turn_tick(&turn, now_ms);
        skd_turn_reap(&turn);
    }
}

static int a_has_role(void)
{
    return hosts[0].role_at != 0;
}

static int both_connected(void)
{
    return hosts[0].state == STUNKIT_PEER_CONNECTED && hosts[1].state == STUNKIT_PEER_CONNECTED;
}

static int both_settled(void)
{
    for (int k = 0; k < 2; k++)
        if (hosts[k].state == STUNKIT_PEER_MEETING || hosts[k].state == STUNKIT_PEER_CONNECTING)
            return 0;
    return 1;
}

static int both_got(void)
{
    return hosts[0].got > 0 && hosts[1].got > 0;
}

static int guessing_over(void)
{
    stunkit_peer_info i;
    stunkit_peer_get_info(hosts[0].peer, &i);
    return !i.birthday_running && !i.upgrading;
}

static int wire_empty(void)
{
    return n_heap == 0;
}

/* Each side sends a line; each must hear the other's. */
static void exchange(const char *what)
{
    hosts[0].got = hosts[1].got = 0;
    for (int k = 0; k < 2; k++) {
        char line[64];
        snprintf(line, sizeof(line), "%s from %s", what, hosts[k].name);
        CHECK_EQ(stunkit_peer_send(hosts[k].peer, line, strlen(line)), 0);
    }
    run(both_got, 2000);
    for (int k = 0; k < 2; k++) {
        char want[64];
        snprintf(want, sizeof(want), "%s from %s", what, hosts[!k].name);
        CHECK_STR(hosts[k].last, want);
    }
}

/* Closing: both peers freed; what they sent on the way out reaches the
 * server; then nothing of theirs is left anywhere. */
static void world_down(void)
{
    for (int k = 0; k < 2; k++) {
        stunkit_peer_free(hosts[k].peer);
        hosts[k].peer = NULL;
        CHECK_EQ(hosts[k].n_bound, 0); /* every port it bound given back */
    }
    run(wire_empty, 5000);
    CHECK_EQ(turn.n_allocs, 0);
    CHECK_EQ(limits.n_held, 0);
    skd_rdv_counters rc;
    skd_rdv_counters_get(&rooms, now_ms, &rc);
    CHECK_EQ(rc.rooms_open, 0);
    server_down();
    for (int k = 0; k < 2; k++) {
        free(hosts[k].nat.maps);
        free(hosts[k].nat.seen);
    }
    while (n_heap)
        free(heap_pop().data);
    loss_pct = 0;
    direct_blocked_until = 0;
    signal_at[0] = signal_at[1] = 0;
}

/* ---- the cases ---- */

/* Every pair of NAT kinds through a room: connected (directly unless both
 * map per destination), data both ways, everything released. */
static void every_pair(void)
{
    char room[32];
    int n = 0;
    for (int a = OPEN; a <= SYMMETRIC; a++)
        for (int b = a; b <= SYMMETRIC; b++) {
            setup s = {(nat_kind)a, (nat_kind)b, room, NULL, 0};
            snprintf(room, sizeof(room), "sim-%d-%d", a, b);
            world_up(&s);
            uint64_t t0 = now_ms;
            run(both_connected, 30000);
            /* a direct path may still take over from the relay (ICE or guessing): let it */
            run(guessing_over, 10000);
            stunkit_peer_info ia, ib;
            stunkit_peer_get_info(hosts[0].peer, &ia);
            stunkit_peer_get_info(hosts[1].peer, &ib);
            int want_relay = a == SYMMETRIC && b == SYMMETRIC;
            int guessed = ia.birthday_direct || ib.birthday_direct;
            fprintf(stderr, "  %-15s %-15s %-9s %-9s A %4llu ms  %s%s\n", kind_name[a], kind_name[b],
                    stunkit_peer_state_name(hosts[0].state), stunkit_peer_state_name(hosts[1].state),
                    (unsigned long long)(hosts[0].connected_at ? hosts[0].connected_at - t0 : 0),
                    ia.relayed ? "relayed" : "direct", guessed ? " (guessed)" : "");
            CHECK_EQ(hosts[0].state, STUNKIT_PEER_CONNECTED);
            CHECK_EQ(hosts[1].state, STUNKIT_PEER_CONNECTED);
            CHECK_EQ(ia.relayed, want_relay);
            CHECK_EQ(ib.relayed, want_relay);
            /* only symmetric against port-restricted needs guessing */
            CHECK_EQ(guessed, (a == PORT_RESTRICTED && b == SYMMETRIC));
            if (both_connected())
                exchange("hello");
            world_down();
            n++;
        }
    CHECK_EQ(n, 15);
}

/* The direct path opens 4 s late (a firewall rule, a NAT slow to learn):
 * the relay carries first, then the direct path takes over and data goes
 * on. */
static void relay_then_direct(void)
{
    setup s = {PORT_RESTRICTED, PORT_RESTRICTED, "sim-upgrade", NULL, 0};
    world_up(&s);
    direct_blocked_until = now_ms + 4000;
    run(both_connected, 30000);
    CHECK_EQ(hosts[0].state, STUNKIT_PEER_CONNECTED);
    CHECK(hosts[0].relayed && hosts[1].relayed);
    exchange("over the relay");
    unsigned long relayed_before = relayed_pkts;
    CHECK(relayed_before > 0);
    run(NULL, 15000);
    stunkit_peer_info ia;
    stunkit_peer_get_info(hosts[0].peer, &ia);
    fprintf(stderr, "  relayed first, then %s (%s) after %llu ms\n", ia.relayed ? "still relayed" : "direct",
            hosts[0].path_why, (unsigned long long)ia.upgraded_ms);
    CHECK(!ia.relayed);
    CHECK(hosts[0].direct_after_relay || hosts[1].direct_after_relay);
    CHECK(ia.upgraded_ms > 0);
    unsigned long relayed_mid = relayed_pkts;
    exchange("direct");
    CHECK_EQ(relayed_pkts, relayed_mid); /* nothing through the relay any more */
    world_down();
}

/* Own signalling with a secret (no rendezvous): the descriptions sealed,
 * carried by the application. */
static void own_signalling(void)
{
    setup s = {SYMMETRIC, FULL_CONE, NULL, "the sim's secret", 0};
    world_up(&s);
    run(both_connected, 30000);
    CHECK_EQ(hosts[0].state, STUNKIT_PEER_CONNECTED);
    CHECK_EQ(hosts[1].state, STUNKIT_PEER_CONNECTED);
    CHECK(strstr(hosts[0].out, "a=ice-pwd") == NULL); /* the password derived, never sent */
    if (both_connected())
        exchange("sealed");
    world_down();
}

/* 10% of every datagram lost, each way, between two symmetric NATs: the
 * relay still connects them. */
static void lossy_relay(void)
{
    setup s = {SYMMETRIC, SYMMETRIC, "sim-loss", NULL, 0};
    world_up(&s);
    loss_pct = 10;
    run(both_settled, 40000);
    CHECK_EQ(hosts[0].state, STUNKIT_PEER_CONNECTED);
    CHECK_EQ(hosts[1].state, STUNKIT_PEER_CONNECTED);
    fprintf(stderr, "  10%% loss: %s, %lu datagrams lost\n", stunkit_peer_state_name(hosts[0].state), dropped_loss);
    loss_pct = 0;
    if (both_connected())
        exchange("lossy");
    world_down();
}

/* A fleet of two servers that share the rooms (Redis's part): A comes to
 * server 1, B to server 2, each with the other as its fallback. Server 1
 * is killed the moment A has its role (mid-exchange: A's description still
 * going up, its agent's gathering from server 1 cut short). A carries the
 * rendezvous on at server 2 as the same peer; the two meet and connect.
 * With first_down, server 1 is dead from the start: A has never been
 * answered, and moves all the same. */
static void fleet_case(int first_down)
{
    setup s = {PORT_RESTRICTED, FULL_CONE, first_down ? "sim-fleet-down" : "sim-fleet", NULL, 1};
    world_up(&s);
    server1_dead = first_down;
    if (!first_down) {
        run(a_has_role, 10000);
        CHECK(hosts[0].role_at != 0);
        server1_dead = 1;
    }
    uint64_t killed = now_ms;
    unsigned long dead_before = dropped_dead;
    run(both_connected, 40000);
    stunkit_peer_info ia, ib;
    stunkit_peer_get_info(hosts[0].peer, &ia);
    stunkit_peer_get_info(hosts[1].peer, &ib);
    char at[64];
    stunkit_addr_format(&ia.server, at, sizeof(at));
    fprintf(stderr, "  server 1 %s; A at %s after %u move(s), both connected %llu ms after (%s)\n",
            first_down ? "dead from the start" : "killed when A had its role", at, ia.server_moves,
            (unsigned long long)(hosts[0].connected_at ? hosts[0].connected_at - killed : 0),
            ia.relayed ? "relayed" : "direct");
    CHECK_EQ(hosts[0].state, STUNKIT_PEER_CONNECTED);
    CHECK_EQ(hosts[1].state, STUNKIT_PEER_CONNECTED);
    CHECK_EQ(ia.n_servers, 2);
    CHECK_EQ(ia.server_moves, 1);
    CHECK(stunkit_addr_equal(&ia.server, server2_addr()));
    CHECK_EQ(ib.server_moves, 0);
    CHECK(dropped_dead > dead_before); /* A did talk to the dead server */
    CHECK_EQ(ia.controlling, !first_down); /* killed mid-way: A kept its place (the first) */
    skd_rdv_counters rc;
    skd_rdv_counters_get(&rooms, now_ms, &rc);
    CHECK_EQ(rc.rooms_open, 1);
    CHECK_EQ(rc.peers_met, 1);
    if (both_connected())
        exchange("after the failover");
    server1_dead = 0; /* A's leftovers there (if any) are freed by its closing */
    world_down();
}

static void fleet_failover(void)
{
    fleet_case(0);
    fleet_case(1);
}

/* The peer's input names a port it does not hold: dropped, said. */
static void stray_input(void)
{
    setup s = {OPEN, OPEN, "sim-stray", NULL, 0};
    world_up(&s);
    stunkit_addr nobody = A("192.0.2.99", 1), from = A("203.0.113.50", 9);
    CHECK_EQ(stunkit_peer_input(hosts[0].peer, &nobody, &from, "x", 1, now_ms), STUNKIT_ERR_NOT_FOUND);
    run(both_connected, 30000);
    CHECK(both_connected());
    world_down();
}

int main(void)
{
    RUN(every_pair);
    RUN(relay_then_direct);
    RUN(own_signalling);
    RUN(lossy_relay);
    RUN(stray_input);
    RUN(fleet_failover);
    fprintf(stderr, "  wire: %lu delivered, %lu filtered by NATs, %lu lost, %lu blocked, %lu relayed\n", delivered,
            dropped_filter, dropped_loss, dropped_block, relayed_pkts);
    free(heap);
    TEST_END();
}
