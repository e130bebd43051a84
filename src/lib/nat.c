/*
 * nat.c - NAT behaviour discovery as a state machine (see stunkit/nat.h).
 *
 * Sockets:  0  mapping tests (RFC 5780 4.3) and the hairpin target
 *           1  filtering test II: CHANGE-REQUEST change IP and port (4.4)
 *           2  filtering test III: CHANGE-REQUEST change port (4.4)
 *           3  a second mapping, for hairpinning and the port pattern
 *           4  lifetime: Y, the socket that asks for answers to X's port
 *           5+ lifetime: X, one per idle time probed (4.6)
 *
 * Phases:   1  test I from socket 0 (UDP connectivity, OTHER-ADDRESS, RTT)
 *           2  in parallel: mapping tests II and III (socket 0), filtering
 *              tests II and III (sockets 1 and 2, never used before, so the
 *              mapping tests cannot have opened their filters), socket 3's
 *              binding
 *           3  hairpinning (as soon as socket 3 is bound, alongside phase
 *              2): socket 3 sends to socket 0's mapped address and socket 0
 *              to socket 3's, each repeatedly (either arriving proves the
 *              NAT loops packets back)
 *           4  lifetime (optional): every X socket binds at once; T seconds
 *              after X_T's answer, Y asks the server to answer to X_T's
 *              public port (RESPONSE-PORT); X_T hearing it means the binding
 *              lived T. The T form a grid about 8% apart, so the first T
 *              found dead ends the measurement within ~1.1x the lifetime.
 *
 * Evidence. A test that needs an answer (test I, mapping tests, a binding)
 * is simply sent until answered, up to POSITIVE_SENDS times. A test whose
 * verdict can be "no answer came" (filtering II and III, hairpinning, a
 * lifetime's Y) is a negative test: loss alone must not produce it. Each
 * negative test has a control: a plain Binding from the same socket to the
 * server's primary address, sent right after every send of the test, so it
 * meets the same loss (and, being sent where the socket already sends, it
 * opens no filter the test depends on). Silence counts only when Fisher's
 * exact test says the control's answers make it improbable: with n test
 * sends unanswered and a answers to c control sends, the chance that an
 * open path would have answered none of the n is C(c, a) / C(c + n, a);
 * "no answer" needs that at or below NEGATIVE_P. Sends go in batches; after
 * each batch (and a linger for late answers) the test is evaluated, and the
 * next batch is sized from the loss the controls show. Without loss the
 * first batch decides; under heavy loss more batches run; past
 * NEGATIVE_MAX_SENDS the answer is unknown, never a guess.
 */
#include <stdlib.h>
#include <string.h>

#include "stunkit/txn.h"
#include "stunkit/integrity.h"
#include "stunkit/nat.h"

#include "config_take.h"
#include "outq.h"

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
    P_LIFE_Y,
    P_CONTROL
};

/* The phases, in order (see the top of this file). */
enum nat_phase {
    PHASE_TEST1 = 1,      /* test I: is there a server, what is OTHER-ADDRESS */
    PHASE_BEHAVIOUR,      /* mapping and filtering tests in parallel */
    PHASE_HAIRPIN,        /* hairpinning both ways */
    PHASE_LIFETIME_START, /* decide whether to measure the lifetime */
    PHASE_LIFETIME,       /* the lifetime grid */
    PHASE_DONE
};

/* Questions negative tests answer (lifetime Ys: Q_LIFE + their X's index). */
enum { Q_NONE, Q_FILT_BOTH, Q_FILT_PORT, Q_HAIR, Q_LIFE };
/* Pools of controls (filtering II and III share theirs). */
enum { POOL_NONE, POOL_FILTER, POOL_HAIR, POOL_LIFE };

#define MAX_PROBES 200
#define Y_SOCK 4
#define FIRST_X_SOCK 5
#define POSITIVE_SENDS 20u     /* 51% lost per round trip: 1 in 700000 all lost */
#define NEGATIVE_P 1e-5        /* chance of a false "no answer" we accept */
#define NEGATIVE_MAX_SENDS 60u /* per negative test; then unknown */
#define BATCH_MAX 16u
#define BLOCK_SENDS 16u        /* test I's sends behind "UDP blocked" */
/* Requests whose answers go elsewhere (CHANGE-REQUEST, RESPONSE-PORT) are
 * what a server's amplification guard rations (stunkitd: 20/s per source
 * IP, bursts of 40): they go out at most 15/s after a burst of 20, so the
 * server drops none of them; a dropped test answer with its control answered
 * would read as filtering. */
#define REDIRECT_GAP_MS 67u
#define REDIRECT_BURST_MS (20u * REDIRECT_GAP_MS)
#define UDP_AFTER_TCP_MS 500u  /* and UDP's time after TCP answered */

typedef struct probe {
    int kind;
    int sock;
    stunkit_addr dst;
    uint8_t tid[STUNKIT_TID_LEN];
    uint8_t req[96];
    size_t req_len;
    unsigned sends_left; /* in this batch (negative tests) or in all */
    unsigned sends, answers;
    uint64_t next_send, give_up, first_sent, last_sent, answered_at;
    uint32_t interval;   /* test I only (its own backoff) */
    int answered, failed, unsure, wrong_source;
    int arrived_on; /* socket the answer (or hairpinned request) came in on */
    stunkit_addr mapped, from, other;
    int has_other;
    int question, pool; /* negative tests and controls (Q_*, POOL_*) */
    int control;        /* a negative test's control probe, else -1 */
    int t_s;            /* lifetime X and Y: T in seconds */
    int partner;        /* lifetime: X <-> Y probe index; a control: its test; -1 none */
    int counted;        /* lifetime Y: its verdict taken */
    int redirect;       /* answered from or to elsewhere: paced (REDIRECT_*) */
} probe;

struct stunkit_nat {
    stunkit_nat_config cfg;
    stunkit_nat_result res;
    probe probes[MAX_PROBES];
    int n_probes;
    int phase;
    int next_sock;
    stunkit_addr local[STUNKIT_NAT_MAX_SOCKETS];
    uint32_t rtt_ms;       /* smallest clean sample (Karn: a probe's first send) */
    int have_rtt;
    int life_alive, life_dead; /* bounds so far, seconds; -1 unknown */
    uint64_t redirect_tat; /* redirect pacing: theoretical arrival time (GCRA) */
    int tcp;               /* TCP_NONE (not raced), TCP_PENDING, TCP_ANSWERED, TCP_FAILED */
    uint64_t tcp_at;       /* when TCP answered */
    /* events for poll (outq.h): what was reported so far */
    sk_outq evq;
    stunkit_nat_event ev[8];
    int told_mapped, told_verdict, told_done, told_alive, told_dead;
};

enum { TCP_NONE, TCP_PENDING, TCP_ANSWERED, TCP_FAILED };

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

/* ---- timing: all from the smallest round trip seen so far ---- */

static uint32_t probe_interval(const stunkit_nat *n)
{
    /* a few round trips apart, at least 20 ms, at most 500 ms */
    uint32_t iv = 2 * n->rtt_ms + 10;
    return iv < 20 ? 20 : iv > 500 ? 500 : iv;
}

/* how long an answer to the last send may take */
static uint32_t linger(const stunkit_nat *n)
{
    uint32_t l = 4 * n->rtt_ms + 100;
    return l > 2000 ? 2000 : l;
}

/* Adds a probe: a Binding request (with CHANGE-REQUEST / RESPONSE-PORT as
 * given) from sock to dst, sent up to `sends` times. */
static probe *add_probe(stunkit_nat *n, int kind, int sock, const stunkit_addr *dst, uint32_t change,
                        uint16_t rport, unsigned sends, uint64_t now)
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
    p->control = -1;
    /* transaction IDs from the caller's randomness (RFC 8489 6: "uniformly
     * and randomly chosen from the interval 0 .. 2**96-1") */
    n->cfg.env.random(n->cfg.env.random_ctx, p->tid, sizeof(p->tid));
    stunkit_writer w;
    stunkit_writer_init(&w, p->req, sizeof(p->req), STUNKIT_METHOD_BINDING, STUNKIT_CLASS_REQUEST, p->tid);
    if (change)
        stunkit_put_change_request(&w, change);
    if (rport)
        stunkit_put_response_port(&w, rport);
    /* A request at least half its answer's size: a server that guards
     * against amplification (stunkitd's strict budget, like others, takes
     * answers over twice the request's size for suspect) must not treat
     * behaviour discovery as an attack. RFC 5780 answers carry three or
     * four addresses (up to ~130 bytes over IPv6); SOFTWARE (RFC 8489
     * 14.14, comprehension-optional, so RFC 3489 servers skip it) says who
     * asks and brings the request to 84 bytes. Its length is a multiple of
     * 4: the Vovida server (RFC 3489's SERVER-NAME rules) drops the whole
     * request otherwise. */
    static const char software[] = "stunkit nat: RFC 5780 NAT behaviour discovery...";
    _Static_assert((sizeof(software) - 1) % 4 == 0, "SOFTWARE for RFC 3489 servers: a multiple of 4");
    stunkit_put(&w, STUNKIT_ATTR_SOFTWARE, software, sizeof(software) - 1);
    stunkit_put_fingerprint(&w);
    p->req_len = (size_t)stunkit_writer_finish(&w);
    p->redirect = change || rport;
    p->sends_left = sends;
    p->next_send = now;
    p->give_up = STUNKIT_NEVER; /* set by the last send */
    if (sock >= n->next_sock)
        n->next_sock = sock + 1;
    return p;
}

/* A negative test (see the top of this file) and its control. */
static probe *add_negative(stunkit_nat *n, int kind, int sock, const stunkit_addr *dst, uint32_t change,
                           uint16_t rport, int question, int pool, unsigned first, uint64_t now)
{
    if (n->n_probes + 2 > MAX_PROBES)
        return NULL;
    probe *c = add_probe(n, P_CONTROL, sock, &n->cfg.server, 0, 0, 0, now);
    c->pool = pool;
    probe *p = add_probe(n, kind, sock, dst, change, rport, first, now);
    p->question = question;
    p->pool = pool;
    p->control = (int)(c - n->probes);
    c->partner = (int)(p - n->probes);
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

/* ---- the negative tests' evidence ---- */

/* Fisher's exact test, one-sided: the chance that none of nt sends of an
 * open path is answered, given a answers to nc control sends under the same
 * loss: C(nc, a) / C(nc + nt, a) = prod_{i=1..nt} (nc - a + i) / (nc + i). */
static double silence_p(unsigned nt, unsigned nc, unsigned a)
{
    if (a > nc)
        a = nc;
    double p = 1.0;
    for (unsigned i = 1; i <= nt; i++)
        p *= (double)(nc - a + i) / (double)(nc + i);
    return p;
}

/* A question's batch is over (every test in it sent its batch and waited
 * its linger, none answered): no answer, unknown, or another batch. */
static void evaluate(stunkit_nat *n, int question, uint64_t now)
{
    unsigned nt = 0, nc = 0, a = 0, tests = 0;
    int pool = POOL_NONE;
    for (int i = 0; i < n->n_probes; i++) {
        probe *p = &n->probes[i];
        if (p->question != question)
            continue;
        if (p->answered || p->failed)
            return; /* decided */
        if (p->sends_left || now < p->give_up)
            return; /* a batch still running */
        nt += p->sends;
        tests++;
        pool = p->pool;
    }
    if (!tests)
        return;
    for (int i = 0; i < n->n_probes; i++) {
        const probe *c = &n->probes[i];
        if (c->kind == P_CONTROL && c->pool == pool) {
            nc += c->sends;
            a += c->answers < c->sends ? c->answers : c->sends;
        }
    }
    double pv = silence_p(nt, nc, a);
    int decided = pv <= NEGATIVE_P, give_up = !decided && nt >= NEGATIVE_MAX_SENDS * tests;
    unsigned batch = 0;
    if (!decided && !give_up) {
        /* the next batch from the loss the controls show (an upper
         * estimate): enough that, if it goes on, it decides */
        double q = (double)(nc - a + 1) / (double)(nc + 2), left = pv;
        unsigned need = 0;
        while (left > NEGATIVE_P && need < BATCH_MAX * tests)
            left *= q, need++;
        need = (need + tests - 1) / tests;
        batch = need < 3 ? 3 : need;
    }
    for (int i = 0; i < n->n_probes; i++) {
        probe *p = &n->probes[i];
        if (p->question != question)
            continue;
        if (decided || give_up) {
            p->failed = 1;
            p->unsure = give_up;
        } else {
            p->sends_left = batch;
            p->next_send = now;
            p->give_up = STUNKIT_NEVER;
        }
    }
}

/* ---- setup and driver hints ---- */

stunkit_nat *stunkit_nat_new(const stunkit_nat_config *cfg, uint64_t now_ms)
{
    stunkit_nat_config c;
    if (sk_config_take(&c, sizeof(c), cfg, sizeof(c)) != 0 || !c.env.random)
        return NULL;
    stunkit_nat *n = calloc(1, sizeof(*n));
    if (!n)
        return NULL;
    n->cfg = c;
    sk_outq_init(&n->evq, 8);
    n->told_alive = n->told_dead = -1;
    if (!n->cfg.first_timeout_ms)
        n->cfg.first_timeout_ms = 3000;
    if (!n->cfg.lifetime_max_s)
        n->cfg.lifetime_max_s = 120;
    if (!n->cfg.redundancy)
        n->cfg.redundancy = 7; /* no loss: silence_p(7, 14, 14) = 8.6e-6 decides at once
                                  (a lifetime Y has one control: 10 sends, 5.4e-6) */
    n->res.hairpinning = -1;
    n->res.tcp_answered = -1;
    n->res.port_preservation = -1;
    n->res.lifetime_s = -1;
    n->res.lifetime_dead_s = -1;
    n->res.loss_percent = -1;
    n->life_alive = -1;
    n->life_dead = -1;
    n->phase = PHASE_TEST1;
    /* Test I: sends at 0, 100, 300, 500, ... (every 200 ms after the
     * second) until first_timeout_ms: 16 sends in the default 3 s, so 51%
     * loss per round trip leaves 1 run in 50000 unanswered. */
    probe *p = add_probe(n, P_TEST1, 0, &cfg->server, 0, 0, 1, now_ms);
    if (p) {
        unsigned sends = 1;
        for (uint32_t t = 100, at = 100; at < n->cfg.first_timeout_ms; t = 200, at += t)
            sends++;
        p->sends_left = sends;
        p->interval = 100;
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
        /* UDP is now asked every 50 ms until BLOCK_SENDS: a confident
         * "blocked" soon */
        probe *t1 = find_kind(n, P_TEST1);
        if (t1 && !settled(t1)) {
            t1->interval = 50;
            if (t1->sends + t1->sends_left < BLOCK_SENDS)
                t1->sends_left = BLOCK_SENDS - t1->sends;
            if (t1->next_send > now_ms + 50)
                t1->next_send = now_ms + 50;
            /* set by the last send; with none left, UDP's time runs now */
            t1->give_up = t1->sends_left ? STUNKIT_NEVER : now_ms + UDP_AFTER_TCP_MS;
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
        return STUNKIT_INPUT_NOT_MINE;
    if (m.fp_off && stunkit_check_fingerprint(&m) != 0)
        return STUNKIT_INPUT_NOT_MINE;
    for (int i = 0; i < n->n_probes; i++) {
        probe *p = &n->probes[i];
        if (memcmp(p->tid, m.tid, STUNKIT_TID_LEN) != 0)
            continue;
        if (p->kind == P_HAIR || p->kind == P_HAIR_PRIME) {
            /* our own request, looped back by the NAT onto another socket;
             * where it says it comes from is REQ-9's business */
            if (m.klass == STUNKIT_CLASS_REQUEST && sock != p->sock && !p->answered) {
                p->answered = 1;
                p->answers++;
                p->arrived_on = sock;
                p->from = *from;
            }
            return STUNKIT_INPUT_TAKEN;
        }
        if (m.klass == STUNKIT_CLASS_ERROR && p->kind == P_TEST1 && !n->res.server_error) {
            /* an error to a plain Binding request (401: the server wants
             * credentials) will not change on a retransmission */
            stunkit_attr ea;
            int code = 0;
            if (stunkit_msg_find(&m, STUNKIT_ATTR_ERROR_CODE, &ea) != 0 ||
                stunkit_attr_error_code(&ea, &code, NULL, NULL) != 0 || code <= 0)
                code = 400;
            n->res.server_error = code;
        }
        if (m.klass != STUNKIT_CLASS_SUCCESS)
            return STUNKIT_INPUT_TAKEN;
        stunkit_addr mapped;
        if (stunkit_msg_mapped(&m, &mapped) != 0)
            return STUNKIT_INPUT_TAKEN;
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
                return STUNKIT_INPUT_TAKEN; /* keep waiting: a right one may still come */
            }
        }
        p->answers++;
        /* Karn: only an answer to a probe's single send is a clean round
         * trip; the smallest one is the path's (a first answer delayed by
         * ARP or ND would otherwise slow every later wait) */
        if (p->sends == 1 && (!n->have_rtt || now_ms - p->last_sent < n->rtt_ms)) {
            n->rtt_ms = (uint32_t)(now_ms - p->last_sent);
            n->have_rtt = 1;
            /* sends already scheduled on the old estimate come sooner */
            for (int k = 0; k < n->n_probes; k++) {
                probe *q = &n->probes[k];
                if (q->kind != P_TEST1 && q->sends && q->next_send > q->last_sent + probe_interval(n))
                    q->next_send = q->last_sent + probe_interval(n);
            }
        }
        if (p->answered || p->kind == P_CONTROL)
            return STUNKIT_INPUT_TAKEN;
        if (p->kind == P_TEST1 && !n->have_rtt) {
            /* resent before the answer: the best guess there is */
            n->rtt_ms = (uint32_t)(now_ms - p->last_sent);
            n->have_rtt = 1;
        }
        p->from = *from;
        p->mapped = mapped;
        p->arrived_on = sock;
        p->answered_at = now_ms;
        stunkit_attr a;
        if ((stunkit_msg_find(&m, STUNKIT_ATTR_OTHER_ADDRESS, &a) == 0 ||
             stunkit_msg_find(&m, STUNKIT_ATTR_CHANGED_ADDRESS, &a) == 0) &&
            stunkit_attr_addr(&m, &a, &p->other) == 0)
            p->has_other = 1;
        /* (a P_LIFE_Y answer arriving on Y itself, or anywhere but X, means
         * X's public port was handed out again: the old binding is gone;
         * arrived_on says so) */
        p->answered = 1;
        return STUNKIT_INPUT_TAKEN;
    }
    return STUNKIT_INPUT_NOT_MINE; /* not a transaction of ours */
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


/* Round-trip loss as the probes saw it: answers against sends of the tests
 * that need answers and of the controls (-1 with too few sends to say). A
 * last send less than a round trip ago is left out: its answer may be on
 * the way (an answered test stopped with the send that was answered). */
static void estimate_loss(stunkit_nat *n, uint64_t now)
{
    unsigned sends = 0, answers = 0;
    for (int i = 0; i < n->n_probes; i++) {
        const probe *p = &n->probes[i];
        if (p->kind == P_CONTROL || p->kind == P_TEST1 || p->kind == P_MAP2 || p->kind == P_MAP3 ||
            p->kind == P_BIND3 || p->kind == P_LIFE_X) {
            unsigned s = p->sends, a = p->answers < p->sends ? p->answers : p->sends;
            if (a < s && !p->answered && now <= p->last_sent + n->rtt_ms * 3 / 2 + 5)
                s--;
            sends += s;
            answers += a;
        }
    }
    n->res.loss_sends = sends;
    n->res.loss_answers = answers;
    n->res.loss_percent = sends >= 5 ? (int)((100u * (sends - answers) + sends / 2) / sends) : -1;
}

/* ---- phases ---- */

static void start_behaviour(stunkit_nat *n, uint64_t now)
{
    probe *t1 = find_kind(n, P_TEST1);
    stunkit_nat_result *r = &n->res;
    r->mapped = t1->mapped;
    r->local = n->local[0];
    r->nat = !stunkit_addr_equal(&t1->mapped, &n->local[0]);
    if (!t1->has_other || t1->other.family != n->cfg.server.family ||
        stunkit_addr_ip_equal(&t1->other, &n->cfg.server) || t1->other.port == n->cfg.server.port) {
        r->behavior_discovery = 0;
        n->phase = PHASE_DONE; /* nothing more can be learnt from this server */
        return;
    }
    r->behavior_discovery = 1;
    r->other = t1->other;
    stunkit_addr a2p1 = t1->other, a2p2 = t1->other;
    a2p1.port = n->cfg.server.port;
    /* mapping tests II and III (RFC 5780 4.3), from socket 0 */
    add_probe(n, P_MAP2, 0, &a2p1, 0, 0, POSITIVE_SENDS, now);
    add_probe(n, P_MAP3, 0, &a2p2, 0, 0, POSITIVE_SENDS, now);
    /* filtering tests II and III (4.4), each from a socket of its own */
    add_negative(n, P_FILT_BOTH, 1, &n->cfg.server, STUNKIT_CHANGE_IP | STUNKIT_CHANGE_PORT, 0, Q_FILT_BOTH,
                 POOL_FILTER, n->cfg.redundancy, now);
    add_negative(n, P_FILT_PORT, 2, &n->cfg.server, STUNKIT_CHANGE_PORT, 0, Q_FILT_PORT, POOL_FILTER,
                 n->cfg.redundancy, now);
    /* a second mapping, for hairpinning and the port allocation pattern */
    add_probe(n, P_BIND3, 3, &n->cfg.server, 0, 0, POSITIVE_SENDS, now);
    n->phase = PHASE_BEHAVIOUR;
}

static void finish_behaviour(stunkit_nat *n)
{
    stunkit_nat_result *r = &n->res;
    probe *t1 = find_kind(n, P_TEST1), *m2 = find_kind(n, P_MAP2), *m3 = find_kind(n, P_MAP3),
          *fb = find_kind(n, P_FILT_BOTH), *fp = find_kind(n, P_FILT_PORT);

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
     * "Else" is a negative test's silence, which only counts when it is
     * sure (failed, not unsure: see the top of this file), and only when
     * the server proved it honours CHANGE-REQUEST or at least never
     * answered from the wrong place. */
    if (fb->answered)
        r->filtering = STUNKIT_BEHAVIOR_ENDPOINT_INDEPENDENT;
    else if (fb->unsure || r->server_ignores_change)
        r->filtering = STUNKIT_BEHAVIOR_UNKNOWN;
    else if (fp->answered)
        r->filtering = STUNKIT_BEHAVIOR_ADDRESS_DEPENDENT;
    else if (!fp->unsure)
        r->filtering = STUNKIT_BEHAVIOR_ADDRESS_AND_PORT_DEPENDENT;

    derive_port_pattern(n);
    n->phase = find_kind(n, P_HAIR) ? PHASE_HAIRPIN : PHASE_LIFETIME_START;
}

/* Phase 3 starts as soon as socket 3 is bound, alongside the rest of
 * phase 2: hairpinning, both ways, each with a control. */
static void start_hairpin(stunkit_nat *n, uint64_t now)
{
    probe *t1 = find_kind(n, P_TEST1), *b3 = find_kind(n, P_BIND3);
    if (!n->res.nat || !b3->answered || find_kind(n, P_HAIR))
        return;
    add_negative(n, P_HAIR, 3, &t1->mapped, 0, 0, Q_HAIR, POOL_HAIR, n->cfg.redundancy, now);
    add_negative(n, P_HAIR_PRIME, 0, &b3->mapped, 0, 0, Q_HAIR, POOL_HAIR, n->cfg.redundancy, now);
}

/* RFC 4787 6: "REQ-9: A NAT MUST support 'Hairpinning'. a) A NAT
 * Hairpinning behavior MUST be 'External source IP address and port'." A
 * looped-back packet that still carries the sender's inside address (or the
 * router's own LAN address) gets through here, but breaks an application
 * that matches peers by their public address. */
static void finish_hairpin(stunkit_nat *n)
{
    probe *h = find_kind(n, P_HAIR), *hp = find_kind(n, P_HAIR_PRIME), *t1 = find_kind(n, P_TEST1),
          *b3 = find_kind(n, P_BIND3);
    probe *got = h->answered ? h : hp->answered ? hp : NULL;
    if (got) {
        n->res.hairpinning = 1;
        /* the sender's public mapping, and its inside address */
        const probe *sender_map = got == h ? b3 : t1;
        const stunkit_addr *inside = &n->local[got->sock];
        n->res.hairpin_from = got->from;
        if (stunkit_addr_ip_equal(&got->from, &sender_map->mapped))
            n->res.hairpin_source = "external";
        else if (stunkit_addr_equal(&got->from, inside))
            n->res.hairpin_source = "internal";
        else
            n->res.hairpin_source = "other";
    } else {
        n->res.hairpinning = (h->unsure || hp->unsure) ? -1 : 0;
    }
    n->phase = PHASE_LIFETIME_START;
}

/* ---- lifetime ---- */

/* The idle times probed: 1, 2, 3, ... growing ~8% (or more, to fit the
 * sockets there are) up to lifetime_max_s. */
static int life_grid(const stunkit_nat *n, int *ts, int cap)
{
    int max = (int)n->cfg.lifetime_max_s;
    for (int pct = 108;; pct += 2) {
        int k = 0, t = 1;
        while (k < cap && t < max) {
            ts[k++] = t;
            int next = (t * pct + 99) / 100; /* t * pct%, rounded up */
            t = next > t ? next : t + 1;
        }
        if (t >= max && k < cap) {
            ts[k++] = max;
            return k;
        }
    }
}

static void life_start(stunkit_nat *n, uint64_t now)
{
    int ts[STUNKIT_NAT_MAX_SOCKETS];
    int k = life_grid(n, ts, STUNKIT_NAT_MAX_SOCKETS - FIRST_X_SOCK);
    if (n->next_sock < Y_SOCK + 1)
        n->next_sock = Y_SOCK + 1;
    for (int i = 0; i < k; i++) {
        probe *x = add_probe(n, P_LIFE_X, FIRST_X_SOCK + i, &n->cfg.server, 0, 0, POSITIVE_SENDS, now);
        if (!x)
            break;
        x->t_s = ts[i];
    }
    n->phase = PHASE_LIFETIME;
}

/* An X (and its Y) past a known expiry, or at or below a known survival,
 * has nothing left to say. */
static int life_moot(const stunkit_nat *n, const probe *x)
{
    return (n->life_dead >= 0 && x->t_s >= n->life_dead) || (n->life_alive >= 0 && x->t_s <= n->life_alive);
}

static void life_cancel(stunkit_nat *n, probe *x)
{
    x->failed = 1;
    x->sends_left = 0;
    x->counted = 1;
    if (x->partner >= 0) {
        probe *y = &n->probes[x->partner];
        y->failed = 1;
        y->sends_left = 0;
        y->counted = 1;
        if (y->control >= 0)
            n->probes[y->control].sends_left = 0;
    }
}

static void life_step(stunkit_nat *n, uint64_t now)
{
    for (int i = 0; i < n->n_probes; i++) {
        probe *x = &n->probes[i];
        if (x->kind != P_LIFE_X || x->counted)
            continue;
        if (x->failed && !x->answered) { /* never bound */
            x->counted = 1;
            continue;
        }
        if (!x->answered)
            continue;
        if (x->partner < 0) {
            /* X is bound: T seconds after its answer, Y asks the server to
             * answer to X's public port */
            if (now >= x->answered_at + (uint64_t)x->t_s * 1000u) {
                probe *y = add_negative(n, P_LIFE_Y, Y_SOCK, &n->cfg.server, 0, x->mapped.port, Q_LIFE + i,
                                        POOL_LIFE + i, n->cfg.redundancy + 3, now);
                if (!y) {
                    x->counted = 1;
                    continue;
                }
                y->t_s = x->t_s;
                y->partner = i;
                x->partner = (int)(y - n->probes);
            }
            continue;
        }
        probe *y = &n->probes[x->partner];
        if (!settled(y))
            continue;
        /* alive: Y's answer reached X; gone: it reached another socket
         * (the port was handed out again) or surely none came */
        int alive = y->answered && y->arrived_on == x->sock;
        if (alive && x->t_s > n->life_alive)
            n->life_alive = x->t_s;
        else if (!alive && !y->unsure && (n->life_dead < 0 || x->t_s < n->life_dead))
            n->life_dead = x->t_s;
        x->counted = y->counted = 1;
        n->res.lifetime_s = n->life_alive;
        n->res.lifetime_dead_s = n->life_dead;
    }
    int pending = 0;
    for (int i = 0; i < n->n_probes; i++) {
        probe *x = &n->probes[i];
        if (x->kind != P_LIFE_X || x->counted)
            continue;
        if (life_moot(n, x))
            life_cancel(n, x);
        else
            pending = 1;
    }
    if (!pending) {
        n->res.lifetime_s = n->life_alive;
        n->res.lifetime_dead_s = n->life_dead;
        n->phase = PHASE_DONE;
    }
}

/* ---- the loop ---- */

static void sent(stunkit_nat *n, probe *p, uint64_t now)
{
    p->sends_left--;
    p->sends++;
    if (!p->first_sent)
        p->first_sent = now;
    p->last_sent = now;
    if (p->kind == P_TEST1) {
        p->next_send = now + p->interval;
        if (n->tcp != TCP_ANSWERED)
            p->interval = 200;
        else if (!p->sends_left) /* "blocked" after the last send's linger, 0.5 s after TCP answered */
            p->give_up = now + linger(n) > n->tcp_at + UDP_AFTER_TCP_MS ? now + linger(n)
                                                                         : n->tcp_at + UDP_AFTER_TCP_MS;
    } else {
        p->next_send = now + probe_interval(n);
    }
    /* the answer to the last send gets its linger from that send, even
     * when the sends ran late (a busy host) */
    if (!p->sends_left && p->kind != P_TEST1 && p->kind != P_CONTROL)
        p->give_up = now + linger(n);
    if (p->question) {
        /* its control goes right behind it, and so do those of its pool's
         * tests that were answered (the pool's evidence keeps growing) */
        for (int i = 0; i < n->n_probes; i++) {
            probe *c = &n->probes[i];
            if (c->kind == P_CONTROL && c->pool == p->pool &&
                (c == &n->probes[p->control] || n->probes[c->partner].answered)) {
                c->sends_left++;
                c->next_send = now;
            }
        }
    }
}

/* The schedule: a datagram due now (1, into out), nothing yet (0), or
 * finished (-1). poll runs it and reports its progress as events. */
static int step(stunkit_nat *n, uint64_t now, stunkit_nat_output *out)
{
    /* due sends first (a test before its control: controls come later in
     * the table, which is its order) */
    for (int i = 0; i < n->n_probes; i++) {
        probe *p = &n->probes[i];
        if (settled(p) || !p->sends_left || now < p->next_send)
            continue;
        if (p->redirect && now + REDIRECT_BURST_MS < n->redirect_tat)
            continue; /* paced */
        if (p->redirect)
            n->redirect_tat = (n->redirect_tat > now ? n->redirect_tat : now) + REDIRECT_GAP_MS;
        sent(n, p, now);
        out->sock = p->sock;
        out->to = p->dst;
        out->data = p->req;
        out->len = p->req_len;
        return 1;
    }
    for (int i = 0; i < n->n_probes; i++) {
        probe *p = &n->probes[i];
        if (settled(p) || p->sends_left || now < p->give_up || p->kind == P_CONTROL)
            continue;
        if (p->question)
            evaluate(n, p->question, now);
        else if (p->kind != P_TEST1)
            p->failed = 1;
    }
    switch (n->phase) {
    case PHASE_TEST1: {
        probe *t1 = find_kind(n, P_TEST1);
        if (t1->answered) {
            start_behaviour(n, now);
            return step(n, now, out);
        }
        if (n->res.server_error) { /* it answered, with an error: no verdict */
            t1->failed = 1;
            n->res.local = n->local[0];
            n->phase = PHASE_DONE;
            break;
        }
        /* UDP refused or silent: what TCP said decides (see nat.h) */
        int timed_out = now >= t1->give_up && !t1->sends_left, blocked = 0, unreachable = 0;
        if (n->tcp == TCP_ANSWERED && (timed_out || n->res.udp_refused))
            blocked = 1;
        else if (n->res.udp_refused && (n->tcp == TCP_NONE || n->tcp == TCP_FAILED))
            unreachable = 1;
        else if (timed_out)
            n->tcp == TCP_NONE ? (blocked = 1) : (unreachable = 1);
        if (blocked || unreachable) {
            t1->failed = 1;
            n->res.udp_blocked = blocked;
            n->res.server_unreachable = unreachable;
            n->res.local = n->local[0];
            n->phase = PHASE_DONE;
        }
        break;
    }
    case PHASE_BEHAVIOUR: {
        probe *t1 = find_kind(n, P_TEST1), *m2 = find_kind(n, P_MAP2), *m3 = find_kind(n, P_MAP3);
        if (!find_kind(n, P_HAIR) && find_kind(n, P_BIND3)->answered && n->res.nat) {
            start_hairpin(n, now);
            return step(n, now, out);
        }
        /* test II matching test I decides the mapping: test III is moot */
        if (!settled(m3) && m2->answered && stunkit_addr_equal(&m2->mapped, &t1->mapped))
            m3->failed = 1, m3->sends_left = 0;
        int all = 1;
        for (int k = P_MAP2; k <= P_BIND3; k++)
            all = all && settled(find_kind(n, k));
        if (all) {
            finish_behaviour(n);
            return step(n, now, out);
        }
        break;
    }
    case PHASE_HAIRPIN: {
        probe *h = find_kind(n, P_HAIR), *hp = find_kind(n, P_HAIR_PRIME);
        if ((h->answered || hp->answered) || (settled(h) && settled(hp))) {
            finish_hairpin(n);
            return step(n, now, out);
        }
        break;
    }
    case PHASE_LIFETIME_START:
        /* the verdict about the NAT is complete: a driver may show it now */
        derive_classic(n);
        estimate_loss(n, now);
        n->res.rtt_ms = n->rtt_ms;
        n->res.verdict = 1;
        if (n->cfg.lifetime && n->res.nat) {
            life_start(n, now);
            return step(n, now, out);
        }
        n->phase = PHASE_DONE;
        break;
    case PHASE_LIFETIME:
        life_step(n, now);
        if (n->phase == PHASE_LIFETIME)
            break;
        return step(n, now, out);
    default:
        break;
    }
    if (n->phase == PHASE_DONE) {
        if (!n->res.done) {
            if (!n->res.verdict)
                derive_classic(n);
            estimate_loss(n, now);
            n->res.rtt_ms = n->rtt_ms;
            n->res.verdict = 1;
            n->res.done = 1;
        }
        return -1;
    }
    return 0;
}

/* When poll weighs the silence of a negative test's probes (evaluate()):
 * once none of them sends any more and the last one's linger is over;
 * never while one is still sending (its sends are due first) or once the
 * question is decided. poll acts on a question at this time and no
 * sooner, so the schedule names it rather than one probe's own linger
 * (which would have a driver poll in vain until the others are done). */
static uint64_t question_due(const stunkit_nat *n, int question)
{
    uint64_t due = 0;
    for (int i = 0; i < n->n_probes; i++) {
        const probe *p = &n->probes[i];
        if (p->question != question)
            continue;
        if (settled(p) || p->sends_left)
            return STUNKIT_NEVER;
        if (p->give_up > due)
            due = p->give_up;
    }
    return due;
}

/* The schedule step() acts on: when the next probe is due to be sent, or
 * its silence to be weighed, or a lifetime test's wait ends. */
static uint64_t probes_due(const stunkit_nat *n)
{
    uint64_t next = STUNKIT_NEVER;
    for (int i = 0; i < n->n_probes; i++) {
        const probe *p = &n->probes[i];
        if (p->kind == P_LIFE_X && p->answered && p->partner < 0 && !p->counted) {
            /* a bound X waiting for its Y */
            uint64_t at = p->answered_at + (uint64_t)p->t_s * 1000u;
            if (at < next)
                next = at;
            continue;
        }
        if (settled(p) || (p->kind == P_CONTROL && !p->sends_left))
            continue;
        uint64_t t = p->sends_left ? p->next_send : p->question ? question_due(n, p->question) : p->give_up;
        if (p->sends_left && p->redirect && t + REDIRECT_BURST_MS < n->redirect_tat)
            t = n->redirect_tat - REDIRECT_BURST_MS;
        if (t < next)
            next = t;
    }
    return next;
}

uint64_t stunkit_nat_timeout(const stunkit_nat *n)
{
    if (sk_outq_pending(&n->evq))
        return 0; /* events wait for poll */
    if (n->told_done)
        return STUNKIT_NEVER;
    return probes_due(n);
}

static void push_event(stunkit_nat *n, stunkit_nat_event e)
{
    int slot = sk_outq_push(&n->evq);
    if (slot >= 0)
        n->ev[slot] = e;
}

/* What step() changed in the result, as events (each once; LIFETIME as
 * the bounds move). */
static void note_events(stunkit_nat *n)
{
    if (!n->told_mapped && n->res.mapped.family) {
        n->told_mapped = 1;
        push_event(n, STUNKIT_NAT_EVENT_MAPPED);
    }
    if (!n->told_verdict && n->res.verdict) {
        n->told_verdict = 1;
        push_event(n, STUNKIT_NAT_EVENT_VERDICT);
    }
    if (n->told_verdict && !n->told_done &&
        (n->res.lifetime_s != n->told_alive || n->res.lifetime_dead_s != n->told_dead)) {
        n->told_alive = n->res.lifetime_s;
        n->told_dead = n->res.lifetime_dead_s;
        push_event(n, STUNKIT_NAT_EVENT_LIFETIME);
    }
    if (!n->told_done && n->res.done) {
        n->told_done = 1;
        push_event(n, STUNKIT_NAT_EVENT_DONE);
    }
}

static int pop_event(stunkit_nat *n, stunkit_nat_output *out)
{
    if (sk_outq_take_lost(&n->evq))
        return STUNKIT_ERR_NOBUF;
    int slot = sk_outq_pop(&n->evq);
    if (slot < 0)
        return 0;
    out->send = 0;
    out->event = n->ev[slot];
    return 1;
}

int stunkit_nat_poll(stunkit_nat *n, uint64_t now, stunkit_nat_output *out)
{
    memset(out, 0, sizeof(*out));
    if (sk_outq_pending(&n->evq))
        return pop_event(n, out);
    if (n->told_done)
        return 0;
    /* a step may schedule probes for now (a lifetime test's next pair):
     * they go at once, so that with nothing to do the timeout is later */
    for (int round = 0; round < 4; round++) {
        int rv = step(n, now, out);
        note_events(n);
        if (rv == 1) {
            out->send = 1;
            return 1;
        }
        if (rv < 0 || sk_outq_pending(&n->evq) || probes_due(n) > now)
            break;
    }
    return pop_event(n, out);
}

