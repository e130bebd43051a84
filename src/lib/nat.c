/*
 * nat.c - NAT behaviour discovery as a state machine (see stunkit/nat.h).
 *
 * Sockets:  0  mapping tests (RFC 5780 4.3) and the hairpin target
 *           1  filtering test II: CHANGE-REQUEST change IP and port (4.4)
 *           2  filtering test III: CHANGE-REQUEST change port (4.4)
 *           3  a second mapping, for hairpinning and the port pattern
 *           4+ binding lifetime probes (4.6), fresh for every probe
 *
 * Phases:   1  test I from socket 0 (UDP connectivity, OTHER-ADDRESS, RTT)
 *           2  in parallel: mapping tests II and III (socket 0), filtering
 *              tests II and III (sockets 1 and 2, never used before, so the
 *              mapping tests cannot have opened their filters), socket 3's
 *              binding
 *           3  hairpinning: socket 3 sends to socket 0's mapped address and
 *              socket 0 to socket 3's, each repeatedly (either arriving
 *              proves the NAT loops packets back)
 *           4  lifetime (optional): socket X binds, then after T seconds a
 *              fresh socket Y asks the server to answer to X's mapped port
 *              (RESPONSE-PORT); X hearing it means the binding lived T.
 *              Several T are probed in parallel, then the gap is narrowed.
 */
#include <stdlib.h>
#include <string.h>

#include "stunkit/txn.h"
#include "stunkit/integrity.h"
#include "stunkit/nat.h"

enum probe_kind {
    P_TEST1,
    P_MAP2,
    P_MAP3,
    P_FILT_BOTH,
    P_FILT_PORT,
    P_BIND3,
    P_HAIR,
    P_HAIR_PRIME,
    P_LIFE_X,
    P_LIFE_Y
};

/* The phases, in order (see the top of this file). */
enum nat_phase {
    PHASE_TEST1 = 1,      /* test I: is there a server, what is OTHER-ADDRESS */
    PHASE_BEHAVIOUR,      /* mapping and filtering tests in parallel */
    PHASE_HAIRPIN,        /* hairpinning both ways */
    PHASE_LIFETIME_START, /* decide whether to measure the lifetime */
    PHASE_LIFETIME,       /* lifetime rounds */
    PHASE_DONE
};

#define MAX_PROBES 96

typedef struct probe {
    int kind;
    int sock;
    stunkit_addr dst;
    uint8_t tid[STUNKIT_TID_LEN];
    uint8_t req[32];
    size_t req_len;
    unsigned sends_left;
    uint64_t next_send, give_up, first_sent, last_sent;
    uint32_t interval, linger;
    int answered, failed, wrong_source;
    int arrived_on; /* socket the answer (or hairpinned request) came in on */
    stunkit_addr mapped, from, other;
    int has_other;
    int t_s;        /* lifetime probes: T in seconds */
    unsigned tcp_sends; /* test I: sends since TCP answered */
    int partner;    /* lifetime: X <-> Y probe index */
} probe;

struct stunkit_nat {
    stunkit_nat_config cfg;
    stunkit_nat_result res;
    probe probes[MAX_PROBES];
    int n_probes;
    int phase;
    int next_sock;
    stunkit_addr local[STUNKIT_NAT_MAX_SOCKETS];
    uint32_t rtt_ms;
    int life_round;
    int life_alive, life_dead; /* bounds so far, seconds; -1 unknown */
    int tcp;               /* TCP_NONE (not raced), TCP_PENDING, TCP_ANSWERED, TCP_FAILED */
    uint64_t tcp_at;       /* when TCP answered */
};

enum { TCP_NONE, TCP_PENDING, TCP_ANSWERED, TCP_FAILED };
#define UDP_AFTER_TCP_MS 500u  /* UDP's time after TCP answered */
#define UDP_AFTER_TCP_SENDS 8u /* and test I's sends by then (51% loss per round trip: 0.5% all lost) */

const char *stunkit_behavior_name(stunkit_behavior b)
{
    switch (b) {
    case STUNKIT_BEHAVIOR_ENDPOINT_INDEPENDENT: return "endpoint-independent";
    case STUNKIT_BEHAVIOR_ADDRESS_DEPENDENT: return "address-dependent";
    case STUNKIT_BEHAVIOR_ADDRESS_AND_PORT_DEPENDENT: return "address-and-port-dependent";
    default: return "unknown";
    }
}

const char *stunkit_classic_name(stunkit_classic c)
{
    static const char *const names[] = {"unknown",           "open-internet", "full-cone",
                                        "restricted-cone",   "port-restricted-cone", "symmetric",
                                        "symmetric-udp-firewall", "udp-blocked"};
    return (unsigned)c < sizeof(names) / sizeof(names[0]) ? names[c] : "unknown";
}

static uint32_t probe_interval(const stunkit_nat *n)
{
    /* a few round trips apart, at least 20 ms, at most 500 ms */
    uint32_t iv = 2 * n->rtt_ms + 10;
    return iv < 20 ? 20 : iv > 500 ? 500 : iv;
}

/* Adds a probe: a Binding request (with CHANGE-REQUEST / RESPONSE-PORT as
 * given) from sock to dst, sent `sends` times `interval` apart, failed
 * `linger` ms after the last send if unanswered. */
static probe *add_probe(stunkit_nat *n, int kind, int sock, const stunkit_addr *dst, uint32_t change,
                        uint16_t rport, unsigned sends, uint32_t interval, uint32_t linger, uint64_t now)
{
    if (n->n_probes >= MAX_PROBES)
        return NULL;
    probe *p = &n->probes[n->n_probes++];
    memset(p, 0, sizeof(*p));
    p->kind = kind;
    p->sock = sock;
    p->dst = *dst;
    p->arrived_on = -1;
    p->partner = -1;
    /* transaction IDs from the caller's randomness (RFC 8489 6: "uniformly
     * and randomly chosen from the interval 0 .. 2**96-1") */
    n->cfg.random(n->cfg.random_ctx, p->tid, sizeof(p->tid));
    stunkit_writer w;
    stunkit_writer_init(&w, p->req, sizeof(p->req), STUNKIT_METHOD_BINDING, STUNKIT_CLASS_REQUEST, p->tid);
    if (change)
        stunkit_put_change_request(&w, change);
    if (rport)
        stunkit_put_response_port(&w, rport);
    p->req_len = (size_t)stunkit_writer_finish(&w);
    p->sends_left = sends;
    p->interval = interval;
    p->next_send = now;
    p->linger = linger;
    p->give_up = now + (uint64_t)interval * (sends ? sends - 1 : 0) + linger;
    if (sock >= n->next_sock)
        n->next_sock = sock + 1;
    return p;
}

static probe *find_kind(stunkit_nat *n, int kind)
{
    for (int i = 0; i < n->n_probes; i++)
        if (n->probes[i].kind == kind)
            return &n->probes[i];
    return NULL;
}

static int settled(const probe *p)
{
    return p->answered || p->failed;
}

stunkit_nat *stunkit_nat_new(const stunkit_nat_config *cfg, uint64_t now_ms)
{
    if (!cfg->random)
        return NULL;
    stunkit_nat *n = calloc(1, sizeof(*n));
    if (!n)
        return NULL;
    n->cfg = *cfg;
    if (!n->cfg.first_timeout_ms)
        n->cfg.first_timeout_ms = 3000;
    if (!n->cfg.lifetime_max_s)
        n->cfg.lifetime_max_s = 120;
    if (!n->cfg.redundancy)
        n->cfg.redundancy = 5;
    n->res.hairpinning = -1;
    n->res.tcp_answered = -1;
    n->res.port_preservation = -1;
    n->res.lifetime_s = -1;
    n->res.lifetime_dead_s = -1;
    n->life_alive = -1;
    n->life_dead = -1;
    n->phase = PHASE_TEST1;
    /* Test I: RFC 8489-style backoff from 100 ms until first_timeout_ms. */
    probe *p = add_probe(n, P_TEST1, 0, &cfg->server, 0, 0, 1, 100, n->cfg.first_timeout_ms, now_ms);
    if (p) {
        /* sends at 0, 100, 300, 700, 1500, ... within the timeout */
        unsigned sends = 1;
        for (uint32_t t = 100, at = 100; at < n->cfg.first_timeout_ms; t *= 2, at += t)
            sends++;
        p->sends_left = sends;
        p->give_up = now_ms + n->cfg.first_timeout_ms;
    }
    return n;
}

void stunkit_nat_udp_refused(stunkit_nat *n, uint64_t now_ms)
{
    (void)now_ms;
    if (n->phase == PHASE_TEST1)
        n->res.udp_refused = 1;
}

void stunkit_nat_tcp(stunkit_nat *n, int state, uint64_t now_ms)
{
    if (state == 0 && n->tcp == TCP_NONE) {
        n->tcp = TCP_PENDING;
        n->res.tcp_answered = 0;
    } else if (state == 1 && n->tcp != TCP_ANSWERED) {
        n->tcp = TCP_ANSWERED;
        n->tcp_at = now_ms;
        n->res.tcp_answered = 1;
        /* UDP is now asked every 100 ms: enough sends for a confident
         * "blocked" soon */
        probe *t1 = find_kind(n, P_TEST1);
        if (t1 && !t1->answered && !t1->failed) {
            t1->interval = 100;
            t1->sends_left = UDP_AFTER_TCP_SENDS;
            if (t1->next_send > now_ms + 100)
                t1->next_send = now_ms + 100;
        }
    } else if (state < 0 && n->tcp != TCP_ANSWERED) {
        n->tcp = TCP_FAILED;
        n->res.tcp_answered = 0;
    }
}

void stunkit_nat_free(stunkit_nat *n)
{
    free(n);
}

void stunkit_nat_set_local(stunkit_nat *n, int sock, const stunkit_addr *local)
{
    if (sock >= 0 && sock < STUNKIT_NAT_MAX_SOCKETS)
        n->local[sock] = *local;
}

int stunkit_nat_sockets(const stunkit_nat *n)
{
    return n->next_sock;
}

const stunkit_nat_result *stunkit_nat_get_result(const stunkit_nat *n)
{
    return &n->res;
}

int stunkit_nat_input(stunkit_nat *n, int sock, const stunkit_addr *from, const uint8_t *data, size_t len,
                      uint64_t now_ms)
{
    stunkit_msg m;
    if (stunkit_msg_parse(&m, data, len) != 0 || m.rfc3489)
        return 0;
    if (m.fp_off && stunkit_check_fingerprint(&m) != 0)
        return 0;
    for (int i = 0; i < n->n_probes; i++) {
        probe *p = &n->probes[i];
        if (memcmp(p->tid, m.tid, STUNKIT_TID_LEN) != 0)
            continue;
        if (p->kind == P_HAIR || p->kind == P_HAIR_PRIME) {
            /* our own request, looped back by the NAT onto another socket */
            if (m.klass == STUNKIT_CLASS_REQUEST && sock != p->sock && !p->answered) {
                p->answered = 1;
                p->arrived_on = sock;
            }
            return 1;
        }
        if (m.klass != STUNKIT_CLASS_SUCCESS || p->answered)
            return 1;
        stunkit_addr mapped;
        if (stunkit_msg_mapped(&m, &mapped) != 0)
            return 1;
        p->from = *from;
        p->mapped = mapped;
        p->arrived_on = sock;
        stunkit_attr a;
        if ((stunkit_msg_find(&m, STUNKIT_ATTR_OTHER_ADDRESS, &a) == 0 ||
             stunkit_msg_find(&m, STUNKIT_ATTR_CHANGED_ADDRESS, &a) == 0) &&
            stunkit_attr_addr(&m, &a, &p->other) == 0)
            p->has_other = 1;
        if (p->kind == P_FILT_BOTH || p->kind == P_FILT_PORT) {
            /* Only an answer from the changed address and port says anything
             * about filtering: a server that ignores CHANGE-REQUEST answers
             * from where we sent, which any NAT lets through. */
            stunkit_addr want = n->res.other;
            if (p->kind == P_FILT_PORT)
                memcpy(want.ip, n->cfg.server.ip, sizeof(want.ip));
            if (!stunkit_addr_equal(from, &want)) {
                p->wrong_source = 1;
                n->res.server_ignores_change = 1;
                return 1; /* keep waiting: a right one may still come */
            }
        }
        /* (a P_LIFE_Y answer arriving on Y itself means X's public port was
         * handed out again: the old binding is gone; arrived_on says so) */
        p->answered = 1;
        if (p->kind == P_TEST1 && !n->rtt_ms)
            n->rtt_ms = (uint32_t)(now_ms - p->last_sent);
        return 1;
    }
    return 0; /* not a transaction of ours */
}

/* ---- verdicts ---- */

static void derive_port_pattern(stunkit_nat *n)
{
    probe *t1 = find_kind(n, P_TEST1), *b3 = find_kind(n, P_BIND3), *m2 = find_kind(n, P_MAP2),
          *m3 = find_kind(n, P_MAP3);
    if (!n->res.nat || !t1 || !t1->answered)
        return;
    int preserved = t1->mapped.port == n->local[0].port;
    if (b3 && b3->answered)
        preserved = preserved && b3->mapped.port == n->local[3].port;
    n->res.port_preservation = preserved;
    /* the public ports the NAT handed out, in the order it did */
    uint16_t ports[4];
    int k = 0;
    ports[k++] = t1->mapped.port;
    if (m2 && m2->answered && m2->mapped.port != ports[k - 1])
        ports[k++] = m2->mapped.port;
    if (m3 && m3->answered && m3->mapped.port != ports[k - 1])
        ports[k++] = m3->mapped.port;
    if (b3 && b3->answered && b3->mapped.port != ports[k - 1])
        ports[k++] = b3->mapped.port;
    if (preserved) {
        n->res.allocation = "preserved";
        return;
    }
    if (k < 2) {
        n->res.allocation = NULL;
        return;
    }
    int sequential = 1;
    for (int i = 1; i < k; i++) {
        int d = (int)ports[i] - (int)ports[i - 1];
        if (d < 1 || d > 16)
            sequential = 0;
    }
    n->res.allocation = sequential ? "sequential" : "random";
}

static void derive_classic(stunkit_nat *n)
{
    stunkit_nat_result *r = &n->res;
    if (r->udp_blocked) {
        r->classic = STUNKIT_CLASSIC_UDP_BLOCKED;
        return;
    }
    if (!r->nat) {
        /* RFC 3489 10.1: no NAT; test II answered: open internet, else a
         * symmetric UDP firewall. */
        if (r->filtering == STUNKIT_BEHAVIOR_ENDPOINT_INDEPENDENT)
            r->classic = STUNKIT_CLASSIC_OPEN_INTERNET;
        else if (r->filtering != STUNKIT_BEHAVIOR_UNKNOWN)
            r->classic = STUNKIT_CLASSIC_SYMMETRIC_UDP_FIREWALL;
        return;
    }
    if (r->mapping == STUNKIT_BEHAVIOR_ADDRESS_DEPENDENT || r->mapping == STUNKIT_BEHAVIOR_ADDRESS_AND_PORT_DEPENDENT) {
        r->classic = STUNKIT_CLASSIC_SYMMETRIC;
        return;
    }
    if (r->mapping != STUNKIT_BEHAVIOR_ENDPOINT_INDEPENDENT)
        return;
    switch (r->filtering) {
    case STUNKIT_BEHAVIOR_ENDPOINT_INDEPENDENT: r->classic = STUNKIT_CLASSIC_FULL_CONE; break;
    case STUNKIT_BEHAVIOR_ADDRESS_DEPENDENT: r->classic = STUNKIT_CLASSIC_RESTRICTED_CONE; break;
    case STUNKIT_BEHAVIOR_ADDRESS_AND_PORT_DEPENDENT: r->classic = STUNKIT_CLASSIC_PORT_RESTRICTED_CONE; break;
    default: break;
    }
}

/* ---- phases ---- */

static void start_behaviour(stunkit_nat *n, uint64_t now)
{
    probe *t1 = find_kind(n, P_TEST1);
    stunkit_nat_result *r = &n->res;
    r->mapped = t1->mapped;
    r->local = n->local[0];
    r->rtt_ms = n->rtt_ms;
    r->nat = !stunkit_addr_equal(&t1->mapped, &n->local[0]);
    if (!t1->has_other || t1->other.family != n->cfg.server.family ||
        stunkit_addr_ip_equal(&t1->other, &n->cfg.server) || t1->other.port == n->cfg.server.port) {
        r->behavior_discovery = 0;
        n->phase = PHASE_DONE; /* nothing more can be learnt from this server */
        return;
    }
    r->behavior_discovery = 1;
    r->other = t1->other;
    uint32_t iv = probe_interval(n), linger = 4 * n->rtt_ms + 100;
    unsigned red = n->cfg.redundancy;
    stunkit_addr a2p1 = t1->other, a2p2 = t1->other;
    a2p1.port = n->cfg.server.port;
    /* mapping tests II and III (RFC 5780 4.3), from socket 0 */
    add_probe(n, P_MAP2, 0, &a2p1, 0, 0, red, iv, linger, now);
    add_probe(n, P_MAP3, 0, &a2p2, 0, 0, red, iv, linger, now);
    /* filtering tests II and III (4.4), each from a socket of its own */
    add_probe(n, P_FILT_BOTH, 1, &n->cfg.server, STUNKIT_CHANGE_IP | STUNKIT_CHANGE_PORT, 0, red, iv, linger, now);
    add_probe(n, P_FILT_PORT, 2, &n->cfg.server, STUNKIT_CHANGE_PORT, 0, red, iv, linger, now);
    /* a second mapping, for hairpinning and the port allocation pattern */
    add_probe(n, P_BIND3, 3, &n->cfg.server, 0, 0, red, iv, linger, now);
    n->phase = PHASE_BEHAVIOUR;
}

static void finish_behaviour(stunkit_nat *n, uint64_t now)
{
    stunkit_nat_result *r = &n->res;
    probe *t1 = find_kind(n, P_TEST1), *m2 = find_kind(n, P_MAP2), *m3 = find_kind(n, P_MAP3),
          *fb = find_kind(n, P_FILT_BOTH), *fp = find_kind(n, P_FILT_PORT), *b3 = find_kind(n, P_BIND3);

    /* RFC 5780 4.3: "If the XOR-MAPPED-ADDRESS in the Binding Response is
     * the same as test I the NAT currently has Endpoint-Independent Mapping.
     * If not, test III [...] If the XOR-MAPPED-ADDRESS matches test II, the
     * NAT currently has Address-Dependent Mapping; if it doesn't match it
     * currently has Address and Port-Dependent Mapping." Without a NAT the
     * mapping is trivially endpoint-independent. */
    if (!r->nat)
        r->mapping = STUNKIT_BEHAVIOR_ENDPOINT_INDEPENDENT;
    else if (m2->answered && stunkit_addr_equal(&m2->mapped, &t1->mapped))
        r->mapping = STUNKIT_BEHAVIOR_ENDPOINT_INDEPENDENT;
    else if (m2->answered && m3->answered)
        r->mapping = stunkit_addr_equal(&m3->mapped, &m2->mapped) ? STUNKIT_BEHAVIOR_ADDRESS_DEPENDENT
                                                                   : STUNKIT_BEHAVIOR_ADDRESS_AND_PORT_DEPENDENT;

    /* RFC 5780 4.4: test II answered: endpoint-independent filtering; else
     * test III answered: address-dependent; else address-and-port-dependent.
     * "No answer" only counts when the server proved it honours
     * CHANGE-REQUEST (an answer came from a changed address) or at least
     * never answered from the wrong place; and only if socket 3's plain
     * binding, sent alongside, got through: loss that heavy is no verdict. */
    int path_ok = b3->answered;
    if (fb->answered)
        r->filtering = STUNKIT_BEHAVIOR_ENDPOINT_INDEPENDENT;
    else if (fp->answered)
        r->filtering = path_ok ? STUNKIT_BEHAVIOR_ADDRESS_DEPENDENT : STUNKIT_BEHAVIOR_UNKNOWN;
    else if (!r->server_ignores_change && path_ok)
        r->filtering = STUNKIT_BEHAVIOR_ADDRESS_AND_PORT_DEPENDENT;
    if (r->server_ignores_change && !fb->answered && !fp->answered)
        r->filtering = STUNKIT_BEHAVIOR_UNKNOWN;

    derive_port_pattern(n);

    if (r->nat && b3->answered) {
        /* phase 3: hairpinning, both ways, repeatedly */
        uint32_t iv = probe_interval(n), linger = 4 * n->rtt_ms + 100;
        add_probe(n, P_HAIR, 3, &t1->mapped, 0, 0, n->cfg.redundancy, iv, linger, now);
        add_probe(n, P_HAIR_PRIME, 0, &b3->mapped, 0, 0, n->cfg.redundancy, iv, linger, now);
        n->phase = PHASE_HAIRPIN;
    } else {
        n->phase = PHASE_LIFETIME_START;
    }
}

static void finish_hairpin(stunkit_nat *n)
{
    probe *h = find_kind(n, P_HAIR), *hp = find_kind(n, P_HAIR_PRIME);
    n->res.hairpinning = (h->answered || hp->answered) ? 1 : 0;
    n->phase = PHASE_LIFETIME_START;
}

/* ---- lifetime ---- */

static void life_round(stunkit_nat *n, uint64_t now)
{
    int lo = n->life_alive < 0 ? 0 : n->life_alive;
    int hi = n->life_dead < 0 ? (int)n->cfg.lifetime_max_s : n->life_dead;
    int ts[8], k = 0;
    if (n->life_dead < 0 && n->life_alive < 0) {
        for (int t = 1; t <= (int)n->cfg.lifetime_max_s && k < 8; t *= 2)
            ts[k++] = t;
    } else if (n->life_dead < 0) {
        /* everything tried was alive: go further */
        for (int t = lo * 2; t <= (int)n->cfg.lifetime_max_s && k < 2; t *= 2)
            ts[k++] = t;
    } else {
        /* narrow the gap: three points between the bounds */
        for (int i = 1; i <= 3; i++) {
            int t = lo + (hi - lo) * i / 4;
            if (t > lo && t < hi && (k == 0 || t != ts[k - 1]))
                ts[k++] = t;
        }
    }
    if (k == 0) {
        n->res.lifetime_s = n->life_alive;
        n->res.lifetime_dead_s = n->life_dead;
        n->phase = PHASE_DONE;
        return;
    }
    uint32_t iv = probe_interval(n);
    for (int i = 0; i < k && n->next_sock + 2 <= STUNKIT_NAT_MAX_SOCKETS; i++) {
        int xs = n->next_sock, ys = n->next_sock + 1;
        probe *x = add_probe(n, P_LIFE_X, xs, &n->cfg.server, 0, 0, n->cfg.redundancy, iv, 4 * n->rtt_ms + 200, now);
        if (!x)
            break;
        x->t_s = ts[i];
        /* reserve Y's socket number now; Y's probe is added when X answers */
        n->next_sock = ys + 1;
        x->partner = ys;
    }
    n->life_round++;
    n->phase = PHASE_LIFETIME;
}

static void life_step(stunkit_nat *n, uint64_t now)
{
    int pending = 0;
    for (int i = 0; i < n->n_probes; i++) {
        probe *p = &n->probes[i];
        if (p->kind == P_LIFE_X) {
            if (p->failed)
                continue;
            if (!p->answered) {
                pending = 1;
                continue;
            }
            if (p->partner >= 0) {
                /* X is bound: T seconds after its first answer, Y asks the
                 * server to answer to X's public port. */
                uint64_t at = p->last_sent + (uint64_t)p->t_s * 1000u;
                if (now >= at) {
                    uint32_t iv = probe_interval(n);
                    probe *y = add_probe(n, P_LIFE_Y, p->partner, &n->cfg.server, 0, p->mapped.port,
                                         n->cfg.redundancy, iv, 4 * n->rtt_ms + 200, now);
                    if (y)
                        y->partner = i;
                    p->partner = -1;
                }
                pending = 1;
            }
        } else if (p->kind == P_LIFE_Y && !p->t_s) {
            probe *x = &n->probes[p->partner];
            if (!settled(p)) {
                /* an answer that reached X's socket ends it early */
                pending = 1;
                continue;
            }
            int alive = p->answered && p->arrived_on == x->sock;
            if (alive && x->t_s > n->life_alive)
                n->life_alive = x->t_s;
            if (!alive && (n->life_dead < 0 || x->t_s < n->life_dead))
                n->life_dead = x->t_s;
            p->t_s = -1; /* counted */
        }
    }
    /* probes beyond a known expiry, or below a known survival, need not wait */
    for (int i = 0; i < n->n_probes; i++) {
        probe *p = &n->probes[i];
        if (p->kind == P_LIFE_X && p->partner >= 0 &&
            ((n->life_dead >= 0 && p->t_s >= n->life_dead) || (n->life_alive >= 0 && p->t_s <= n->life_alive))) {
            p->partner = -1;
            p->failed = 1;
        }
    }
    if (pending)
        return;
    int lo = n->life_alive, hi = n->life_dead;
    int precise = hi >= 0 && lo >= 0 && (hi - lo <= 1 || (hi - lo) * 10 <= hi);
    if (precise || n->life_round >= 6 || (lo >= (int)n->cfg.lifetime_max_s) ||
        (hi >= 0 && hi <= 1) || (hi < 0 && lo >= 0 && lo * 2 > (int)n->cfg.lifetime_max_s)) {
        n->res.lifetime_s = lo;
        n->res.lifetime_dead_s = hi;
        n->phase = PHASE_DONE;
        return;
    }
    life_round(n, now);
}

/* ---- the loop ---- */

int stunkit_nat_poll(stunkit_nat *n, uint64_t now, stunkit_nat_send *out)
{
    /* due sends first */
    for (int i = 0; i < n->n_probes; i++) {
        probe *p = &n->probes[i];
        if (settled(p) || !p->sends_left || now < p->next_send)
            continue;
        if (p->kind == P_LIFE_Y && p->t_s < 0)
            continue;
        p->sends_left--;
        if (!p->first_sent)
            p->first_sent = now;
        p->last_sent = now;
        if (p->kind == P_TEST1 && n->tcp != TCP_ANSWERED)
            p->next_send = now + p->interval, p->interval *= 2;
        else if (p->kind == P_TEST1)
            p->next_send = now + p->interval, p->tcp_sends++;
        else
            p->next_send = now + p->interval;
        /* the answer to the last send gets its linger even when the sends
         * ran late (a busy host): no answer is "no answer" only then */
        if (!p->sends_left && p->kind != P_TEST1 && now + p->linger > p->give_up)
            p->give_up = now + p->linger;
        out->sock = p->sock;
        out->to = p->dst;
        out->data = p->req;
        out->len = p->req_len;
        return 1;
    }
    for (int i = 0; i < n->n_probes; i++) {
        probe *p = &n->probes[i];
        if (!settled(p) && now >= p->give_up && !p->sends_left)
            p->failed = 1;
        /* a Y probe whose answer reached Y (port reused) is settled */
    }
    switch (n->phase) {
    case PHASE_TEST1: {
        probe *t1 = find_kind(n, P_TEST1);
        if (t1->answered) {
            start_behaviour(n, now);
            return stunkit_nat_poll(n, now, out);
        }
        /* UDP refused or silent: what TCP said decides (see nat.h) */
        int blocked = 0, unreachable = 0;
        if (n->tcp == TCP_ANSWERED && (t1->failed || n->res.udp_refused ||
                                       (t1->tcp_sends >= UDP_AFTER_TCP_SENDS && now >= n->tcp_at + UDP_AFTER_TCP_MS)))
            blocked = 1;
        else if (n->res.udp_refused && (n->tcp == TCP_NONE || n->tcp == TCP_FAILED))
            unreachable = 1;
        else if (t1->failed)
            n->tcp == TCP_NONE ? (blocked = 1) : (unreachable = 1);
        if (blocked || unreachable) {
            n->res.udp_blocked = blocked;
            n->res.server_unreachable = unreachable;
            n->res.local = n->local[0];
            n->phase = PHASE_DONE;
        }
        break;
    }
    case PHASE_BEHAVIOUR: {
        int all = 1;
        for (int k = P_MAP2; k <= P_BIND3; k++)
            all = all && settled(find_kind(n, k));
        /* the mapping tests may end early once they decide */
        if (all) {
            finish_behaviour(n, now);
            return stunkit_nat_poll(n, now, out);
        }
        break;
    }
    case PHASE_HAIRPIN: {
        probe *h = find_kind(n, P_HAIR), *hp = find_kind(n, P_HAIR_PRIME);
        if ((h->answered || hp->answered) || (settled(h) && settled(hp))) {
            finish_hairpin(n);
            return stunkit_nat_poll(n, now, out);
        }
        break;
    }
    case PHASE_LIFETIME_START:
        if (n->cfg.lifetime && n->res.nat) {
            life_round(n, now);
            return stunkit_nat_poll(n, now, out);
        }
        n->phase = PHASE_DONE;
        break;
    case PHASE_LIFETIME:
        life_step(n, now);
        if (n->phase == PHASE_LIFETIME || n->phase == PHASE_DONE)
            break;
        return stunkit_nat_poll(n, now, out);
    default:
        break;
    }
    if (n->phase == PHASE_DONE) {
        if (!n->res.done) {
            derive_classic(n);
            n->res.done = 1;
        }
        return -1;
    }
    return 0;
}

uint64_t stunkit_nat_next(const stunkit_nat *n)
{
    uint64_t next = UINT64_MAX;
    for (int i = 0; i < n->n_probes; i++) {
        const probe *p = &n->probes[i];
        if (p->kind == P_LIFE_X && p->answered && p->partner >= 0) {
            /* a bound X waiting for its Y */
            uint64_t at = p->last_sent + (uint64_t)p->t_s * 1000u;
            if (at < next)
                next = at;
            continue;
        }
        if (settled(p))
            continue;
        uint64_t t = p->sends_left ? p->next_send : p->give_up;
        if (t < next)
            next = t;
    }
    return next;
}
