/*
 * nat_test.c - the NAT discovery machine in process, on a fake clock: a
 * simulated RFC 5780 server (answers built with stunkit_answer_success) and
 * a simulated NAT of each RFC 4787 kind between them. No socket, no sleep:
 * every verdict, and the fake time it took.
 */
#include <string.h>

#include "stunkit/core.h"
#include "test.h"

typedef struct sim {
    int nat;                /* 0: no NAT */
    int mapping_apd;        /* address-and-port-dependent mapping (else endpoint-independent) */
    int filtering;          /* 0 EIF, 1 address-dependent, 2 address-and-port-dependent */
    int hairpin;
    stunkit_addr local[STUNKIT_NAT_MAX_SOCKETS];
    /* NAT state: mappings (sock, destination) -> public port, and what each
     * mapping sent to (the filter) */
    struct {
        int sock;
        stunkit_addr dst; /* for APDM keys */
        uint16_t port;
        stunkit_addr sent_to[16];
        int n_sent;
    } map[64];
    int n_map;
    uint16_t next_port;
    stunkit_addr pub, srv[2][2]; /* [ip][port] */
} sim;

static void rnd(void *ctx, uint8_t *buf, size_t len)
{
    uint32_t *state = ctx;
    for (size_t i = 0; i < len; i++) {
        *state = *state * 1664525u + 1013904223u;
        buf[i] = (uint8_t)(*state >> 24);
    }
}

static int find_map(sim *s, int sock, const stunkit_addr *dst)
{
    for (int i = 0; i < s->n_map; i++)
        if (s->map[i].sock == sock && (!s->mapping_apd || stunkit_addr_equal(&s->map[i].dst, dst)))
            return i;
    return -1;
}

/* Outbound through the NAT: the public source address. */
static stunkit_addr outbound(sim *s, int sock, const stunkit_addr *dst)
{
    if (!s->nat)
        return s->local[sock];
    int i = find_map(s, sock, dst);
    if (i < 0) {
        i = s->n_map++;
        s->map[i].sock = sock;
        s->map[i].dst = *dst;
        s->map[i].port = s->next_port++;
        s->map[i].n_sent = 0;
    }
    if (s->map[i].n_sent < 16)
        s->map[i].sent_to[s->map[i].n_sent++] = *dst;
    stunkit_addr a = s->pub;
    a.port = s->map[i].port;
    return a;
}

/* Inbound to a public port from src: the socket it reaches, or -1. */
static int inbound(sim *s, const stunkit_addr *to, const stunkit_addr *src)
{
    if (!s->nat) {
        for (int k = 0; k < STUNKIT_NAT_MAX_SOCKETS; k++)
            if (stunkit_addr_equal(&s->local[k], to))
                return k;
        return -1;
    }
    for (int i = 0; i < s->n_map; i++) {
        if (s->map[i].port != to->port)
            continue;
        for (int k = 0; k < s->map[i].n_sent; k++) {
            const stunkit_addr *d = &s->map[i].sent_to[k];
            if (s->filtering == 0 || (s->filtering == 1 && stunkit_addr_ip_equal(d, src)) ||
                (s->filtering == 2 && stunkit_addr_equal(d, src)))
                return s->map[i].sock;
        }
    }
    return -1;
}

/* The RFC 5780 server's four addresses: [ip][port]. */
static void server_addresses(stunkit_addr srv[2][2])
{
    stunkit_addr_parse("198.51.100.1:3478", 0, &srv[0][0]);
    stunkit_addr_parse("198.51.100.1:3479", 0, &srv[0][1]);
    stunkit_addr_parse("198.51.100.2:3478", 0, &srv[1][0]);
    stunkit_addr_parse("198.51.100.2:3479", 0, &srv[1][1]);
}

/* A machine asking srv[0][0], its sockets on 192.0.2.10:5000 and up. */
static stunkit_nat *new_machine(stunkit_addr srv[2][2], uint32_t *seed, uint64_t now, stunkit_addr *local)
{
    stunkit_nat_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.server = srv[0][0];
    cfg.random = rnd;
    cfg.random_ctx = seed;
    stunkit_nat *n = stunkit_nat_new(&cfg, now);
    for (int k = 0; k < STUNKIT_NAT_MAX_SOCKETS; k++) {
        char text[64];
        snprintf(text, sizeof(text), "192.0.2.10:%d", 5000 + k);
        stunkit_addr_parse(text, 0, &local[k]);
        stunkit_nat_set_local(n, k, &local[k]);
    }
    return n;
}

/* The server's answer to a request the machine sent (seen from src): the
 * length written into resp, the address it comes from (CHANGE-REQUEST) in
 * *from, the port it goes to (RESPONSE-PORT, else src's) in *to, the
 * request's CHANGE-REQUEST in *change; -1 when it was not for the server. */
static int server_answer(stunkit_addr srv[2][2], const stunkit_nat_send *out, const stunkit_addr *src, uint8_t *resp,
                         size_t cap, stunkit_addr *from, stunkit_addr *to, uint32_t *change)
{
    int ip = -1, port = -1;
    for (int a = 0; a < 2; a++)
        for (int b = 0; b < 2; b++)
            if (stunkit_addr_equal(&out->to, &srv[a][b]))
                ip = a, port = b;
    stunkit_msg m;
    stunkit_attr at;
    if (ip < 0 || stunkit_msg_parse(&m, out->data, out->len) != 0)
        return -1;
    uint16_t rport = 0;
    *change = 0;
    if (stunkit_msg_find(&m, STUNKIT_ATTR_CHANGE_REQUEST, &at) == 0)
        stunkit_attr_change_request(&at, change);
    if (stunkit_msg_find(&m, STUNKIT_ATTR_RESPONSE_PORT, &at) == 0)
        stunkit_attr_response_port(&at, &rport);
    int oi = ip ^ ((*change & STUNKIT_CHANGE_IP) ? 1 : 0), op = port ^ ((*change & STUNKIT_CHANGE_PORT) ? 1 : 0);
    stunkit_answer a;
    memset(&a, 0, sizeof(a));
    a.response_origin = &srv[oi][op];
    a.other_address = &srv[ip ^ 1][port ^ 1];
    a.plain_mapped = 1;
    *from = srv[oi][op];
    *to = *src;
    if (rport)
        to->port = rport;
    return stunkit_answer_success(out->data, src, &a, resp, cap);
}

static stunkit_nat_result run(sim *s, uint64_t *took_ms)
{
    uint32_t seed = 7;
    server_addresses(s->srv);
    stunkit_addr_parse("203.0.113.1:40000", 0, &s->pub);
    s->next_port = 40000;
    uint64_t now = 1000000;
    stunkit_nat *n = new_machine(s->srv, &seed, now, s->local);
    uint64_t t0 = now;
    for (int steps = 0; steps < 100000; steps++) {
        stunkit_nat_send out;
        int rv = stunkit_nat_poll(n, now, &out);
        if (rv < 0)
            break;
        if (rv == 0) {
            uint64_t next = stunkit_nat_next(n);
            now = next > now ? next : now + 1;
            continue;
        }
        stunkit_addr src = outbound(s, out.sock, &out.to);
        /* to the NAT's own public address: hairpinning */
        if (s->nat && stunkit_addr_ip_equal(&out.to, &s->pub)) {
            int dst_sock = s->hairpin ? inbound(s, &out.to, &src) : -1;
            if (dst_sock >= 0)
                stunkit_nat_input(n, dst_sock, &src, out.data, out.len, now + 1);
            continue;
        }
        /* the server: which of its four addresses, and CHANGE-REQUEST */
        uint8_t resp[256];
        stunkit_addr from, to;
        uint32_t change;
        int len = server_answer(s->srv, &out, &src, resp, sizeof(resp), &from, &to, &change);
        int dst_sock = len > 0 ? inbound(s, &to, &from) : -1;
        if (dst_sock >= 0)
            stunkit_nat_input(n, dst_sock, &from, resp, (size_t)len, now + 20); /* 20 ms away */
    }
    stunkit_nat_result r = *stunkit_nat_get_result(n);
    *took_ms = now - t0;
    stunkit_nat_free(n);
    return r;
}

static void check_kind(int nat, int apd, int filtering, int hairpin, stunkit_classic want, const char *name)
{
    sim s;
    uint64_t took;
    memset(&s, 0, sizeof(s));
    s.nat = nat;
    s.mapping_apd = apd;
    s.filtering = filtering;
    s.hairpin = hairpin;
    stunkit_nat_result r = run(&s, &took);
    fprintf(stderr, "  %-22s -> %-22s mapping %s, filtering %s, hairpin %d, %llu ms of fake time\n", name,
            stunkit_classic_name(r.classic), stunkit_behavior_name(r.mapping), stunkit_behavior_name(r.filtering),
            r.hairpinning, (unsigned long long)took);
    CHECK(r.done);
    CHECK_EQ(r.classic, want);
    CHECK_EQ(r.nat, nat);
    if (nat)
        CHECK_EQ(r.hairpinning, hairpin);
    CHECK(took < 5000);
}

static void test_verdicts(void)
{
    check_kind(0, 0, 0, 0, STUNKIT_CLASSIC_OPEN_INTERNET, "no NAT");
    check_kind(1, 0, 0, 1, STUNKIT_CLASSIC_FULL_CONE, "EIM + EIF, hairpin");
    check_kind(1, 0, 1, 0, STUNKIT_CLASSIC_RESTRICTED_CONE, "EIM + ADF");
    check_kind(1, 0, 2, 1, STUNKIT_CLASSIC_PORT_RESTRICTED_CONE, "EIM + APDF, hairpin");
    check_kind(1, 1, 2, 0, STUNKIT_CLASSIC_SYMMETRIC, "APDM + APDF");
}

static void test_contract(void)
{
    stunkit_nat_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    stunkit_addr_parse("198.51.100.1:3478", 0, &cfg.server);
    CHECK(stunkit_nat_new(&cfg, 0) == NULL); /* no randomness, no machine */
    uint32_t seed = 1;
    cfg.random = rnd;
    cfg.random_ctx = &seed;
    stunkit_nat *n = stunkit_nat_new(&cfg, 0);
    CHECK(n != NULL);
    stunkit_addr from;
    stunkit_addr_parse("198.51.100.1:3478", 0, &from);
    static const uint8_t rtp[12] = {0x80, 0x60};
    CHECK_EQ(stunkit_nat_input(n, 0, &from, rtp, sizeof(rtp), 0), 0); /* not its own: handed on */
    stunkit_nat_send out;
    CHECK_EQ(stunkit_nat_poll(n, 0, &out), 1);
    uint8_t other[20];
    memcpy(other, out.data, 20);
    other[19] ^= 0xff; /* a response to a transaction that is not its own */
    other[0] = 0x01;
    other[1] = 0x01;
    CHECK_EQ(stunkit_nat_input(n, 0, &from, other, 20, 1), 0);
    stunkit_nat_free(n);
}

/* A client run late (a busy host): after the behaviour probes' first sends
 * it is not scheduled for 500 ms, so their other sends go out late, and the
 * server answers only each probe's fifth (last) send, 30 ms later. The answer to the last
 * send still counts (it gets its linger from that send, not from when the
 * probe was made): no NAT, every test answered, open internet. */
static void test_late_sends(void)
{
    stunkit_addr srv[2][2], local[STUNKIT_NAT_MAX_SOCKETS];
    uint32_t seed = 3;
    uint64_t now = 1000;
    server_addresses(srv);
    stunkit_nat *n = new_machine(srv, &seed, now, local);
    /* pending answers: (due, sock, from, bytes); only the newest per request kept */
    struct {
        uint64_t due;
        int sock, on;
        stunkit_addr from;
        uint8_t tid[12];
        uint8_t data[256];
        size_t len;
        int sends;
    } q[16];
    memset(q, 0, sizeof(q));
    int stalled = 0, behaviour_sends = 0;
    for (int steps = 0; steps < 10000; steps++) {
        for (int i = 0; i < 16; i++)
            if (q[i].on && q[i].due <= now) {
                stunkit_nat_input(n, q[i].sock, &q[i].from, q[i].data, q[i].len, now);
                q[i].on = 0;
            }
        stunkit_nat_send out;
        int rv = stunkit_nat_poll(n, now, &out);
        if (rv < 0)
            break;
        if (rv == 0) {
            uint64_t next = stunkit_nat_next(n);
            for (int i = 0; i < 16; i++)
                if (q[i].on && q[i].due < next)
                    next = q[i].due;
            if (behaviour_sends && !stalled) {
                stalled = 1;
                next = now + 500; /* descheduled */
            }
            now = next > now ? next : now + 1;
            continue;
        }
        /* the slot of this transaction (bytes 8-19 of the request): each
         * send replaces the answer, so only the last send's answer is ever
         * delivered */
        const uint8_t *tid = out.data + 8;
        int slot = -1;
        for (int i = 0; i < 16 && slot < 0; i++)
            if (q[i].len && !memcmp(q[i].tid, tid, 12))
                slot = i;
        for (int i = 0; i < 16 && slot < 0; i++)
            if (!q[i].len)
                slot = i;
        if (slot < 0)
            continue;
        stunkit_addr to;
        uint32_t change;
        int len = server_answer(srv, &out, &local[out.sock], q[slot].data, sizeof(q[slot].data), &q[slot].from, &to,
                                &change);
        CHECK(len > 0);
        /* test I: socket 0 to the primary address, nothing changed */
        int test1 = out.sock == 0 && !change && stunkit_addr_equal(&out.to, &srv[0][0]);
        behaviour_sends += !test1;
        q[slot].len = (size_t)len;
        memcpy(q[slot].tid, tid, 12);
        q[slot].sock = out.sock;
        q[slot].due = now + (test1 ? 1 : 30);
        q[slot].on = test1 || ++q[slot].sends == 5;
    }
    const stunkit_nat_result *r = stunkit_nat_get_result(n);
    CHECK(stalled);
    CHECK_EQ(r->nat, 0);
    CHECK_EQ(r->filtering, STUNKIT_BEHAVIOR_ENDPOINT_INDEPENDENT);
    CHECK_EQ(r->classic, STUNKIT_CLASSIC_OPEN_INTERNET);
    stunkit_nat_free(n);
}

/* A server that never answers over UDP; what the driver learnt besides
 * (ICMP refusal at refused_at, TCP started at 0 and then answered or failed
 * at tcp_at) decides between "UDP blocked" and "no verdict". */
static stunkit_nat_result silent(int refused_at, int tcp_state, int tcp_at, uint64_t *took, unsigned *sends)
{
    stunkit_addr srv[2][2], local[STUNKIT_NAT_MAX_SOCKETS];
    uint32_t seed = 5;
    uint64_t t0 = 1000, now = t0;
    server_addresses(srv);
    stunkit_nat *n = new_machine(srv, &seed, now, local);
    if (tcp_state)
        stunkit_nat_tcp(n, 0, now);
    *sends = 0;
    int refused_done = 0, tcp_done = 0;
    for (int steps = 0; steps < 10000; steps++) {
        if (refused_at >= 0 && !refused_done && now >= t0 + (uint64_t)refused_at) {
            stunkit_nat_udp_refused(n, now);
            refused_done = 1;
        }
        if (tcp_state && !tcp_done && now >= t0 + (uint64_t)tcp_at) {
            stunkit_nat_tcp(n, tcp_state, now);
            tcp_done = 1;
        }
        stunkit_nat_send out;
        int rv = stunkit_nat_poll(n, now, &out);
        if (rv < 0)
            break;
        if (rv == 1) {
            (*sends)++;
            continue;
        }
        uint64_t next = stunkit_nat_next(n);
        if (refused_at >= 0 && !refused_done && t0 + (uint64_t)refused_at < next)
            next = t0 + (uint64_t)refused_at;
        if (tcp_state && !tcp_done && t0 + (uint64_t)tcp_at < next)
            next = t0 + (uint64_t)tcp_at;
        now = next > now ? next : now + 1;
    }
    stunkit_nat_result r = *stunkit_nat_get_result(n);
    *took = now - t0;
    stunkit_nat_free(n);
    return r;
}

static void test_no_server(void)
{
    uint64_t took;
    unsigned sends;
    /* no driver help: silence for first_timeout_ms is UDP blocked (as before) */
    stunkit_nat_result r = silent(-1, 0, 0, &took, &sends);
    CHECK(r.udp_blocked && !r.server_unreachable && r.classic == STUNKIT_CLASSIC_UDP_BLOCKED);
    CHECK_EQ(took, 3000);
    CHECK_EQ(r.tcp_answered, -1);
    /* ICMP refusal and no TCP: no verdict, at once */
    r = silent(5, 0, 0, &took, &sends);
    CHECK(!r.udp_blocked && r.server_unreachable && r.udp_refused && r.classic == STUNKIT_CLASSIC_UNKNOWN);
    CHECK(took < 100);
    /* TCP answers at 10 ms, UDP silent: blocked after 8 more sends and
     * 0.5 s, not after 3 s */
    r = silent(-1, 1, 10, &took, &sends);
    CHECK(r.udp_blocked && !r.server_unreachable && r.tcp_answered == 1);
    CHECK(took >= 510 && took < 1500);
    CHECK(sends >= 9);
    /* refused, then TCP answers: blocked as soon as TCP says so */
    r = silent(5, 1, 40, &took, &sends);
    CHECK(r.udp_blocked && r.udp_refused && took < 100);
    /* refused while TCP is pending, then TCP fails: no verdict */
    r = silent(5, -1, 200, &took, &sends);
    CHECK(r.server_unreachable && !r.udp_blocked && took >= 200 && took < 300);
    CHECK_EQ(r.tcp_answered, 0);
    /* TCP tried and silent, UDP silent: no verdict after the timeout (not
     * "blocked": nothing at all came back) */
    r = silent(-1, -1, 100000, &took, &sends);
    CHECK(r.server_unreachable && !r.udp_blocked);
    CHECK_EQ(took, 3000);
}

int main(void)
{
    RUN(test_verdicts);
    RUN(test_contract);
    RUN(test_late_sends);
    RUN(test_no_server);
    TEST_END();
}
