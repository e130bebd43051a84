/*
 * xdp_test.c - stunkitd's XDP program (src/server/xdp.bpf.c) driven by
 * BPF_PROG_TEST_RUN with crafted frames, each one also handed to the socket
 * path's handler (skd_handle, the code stunkitd runs for a datagram) for
 * the same configuration:
 *
 *   - a frame the program answers (XDP_TX) must be one the socket path
 *     answers, and the STUN bytes must be identical; the headers are the
 *     request's turned around, with valid IPv4 and UDP checksums;
 *   - a frame it drops must be one the socket path drops too;
 *   - what must go up (integrity, CHANGE-REQUEST, RESPONSE-PORT, PADDING,
 *     RFC 3489, VLAN, IP options, fragments, IPv6 extension headers, bad
 *     checksums, other ports and addresses, ...) goes up untouched;
 *   - every truncated prefix of a request and every longer frame goes up
 *     or is dropped, never answered;
 *   - 20000 random mutations of requests: whatever the program answers,
 *     the socket path answers with the same bytes;
 *   - the budgets: the general one drops past the burst, the strict one
 *     holds back answers more than twice the request's size.
 *
 * Root only (77 = skipped otherwise): loading BPF needs it.
 */
#define _GNU_SOURCE
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "handler.h"
#include "log.h"
#include "test.h"
#include "xdp.h"
#include "xdp_abi.h"

#define NOW_S 1795470000ull

#include "xdp_frames.h"

/* ---- the two paths ---- */

static skd_config cfg;
static skd_handler_cfg hcfg;
static skd_sock_spec specs[64];
static int n_specs;
static skd_xdp *xdp;
static int prog;

static void setup(const char *const *args)
{
    char *argv[32];
    int argc = 0;
    argv[argc++] = (char *)"stunkitd";
    for (; *args; args++)
        argv[argc++] = (char *)*args;
    argv[argc] = NULL;
    xdp = xdp_test_load(xdp, &cfg, &hcfg, specs, 64, &n_specs, argc, argv);
    prog = skd_xdp_prog_fd(xdp);
}

static int run(const frame *in, frame *out)
{
    LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = in->b, .data_size_in = (uint32_t)in->len, .data_out = out->b,
                .data_size_out = sizeof(out->b), .repeat = 1);
    int rv = bpf_prog_test_run_opts(prog, &o);
    CHECK_EQ(rv, 0);
    out->len = o.data_size_out;
    return (int)o.retval;
}

/* The socket path on the frame's datagram: skd_handle with the frame's
 * addresses and the listening socket's indexes. */
static uint8_t sp_buf[4096];
static skd_out sp_slots[4];

static skd_verdict socket_path(const frame *f, skd_outbox *ob)
{
    const uint8_t *ip = f->b + 14;
    int v6 = get16(f->b + 12) == 0x86DD;
    skd_request rq;
    memset(&rq, 0, sizeof(rq));
    size_t ihl = v6 ? 40 : (size_t)(ip[0] & 15) * 4;
    const uint8_t *udp = ip + ihl;
    rq.src.family = rq.dst.family = v6 ? STUNKIT_AF_INET6 : STUNKIT_AF_INET;
    memcpy(rq.src.ip, v6 ? ip + 8 : ip + 12, v6 ? 16 : 4);
    memcpy(rq.dst.ip, v6 ? ip + 24 : ip + 16, v6 ? 16 : 4);
    rq.src.port = (uint16_t)get16(udp);
    rq.dst.port = (uint16_t)get16(udp + 2);
    rq.data = udp + 8;
    rq.len = get16(udp + 4) - 8u;
    rq.transport = STUNKIT_UDP;
    rq.now_s = NOW_S;
    for (int i = 0; i < n_specs; i++)
        if (!specs[i].tls && stunkit_addr_equal(&specs[i].addr, &rq.dst)) {
            rq.ip_index = specs[i].ip_index;
            rq.port_index = specs[i].port_index;
        }
    skd_outbox_init(ob, sp_buf, sizeof(sp_buf), sp_slots, 4);
    return skd_handle(&hcfg, &rq, ob);
}

/* An answered frame: the request turned around, checksums valid, and the
 * STUN bytes the socket path sends. */
static int check_answer(const frame *req, const frame *ans, const char *what)
{
    int bad = 0;
#define ACHECK(c)                                                                                                      \
    do {                                                                                                               \
        if (!(c)) {                                                                                                    \
            fprintf(stderr, "%s: %s\n", what, #c);                                                                     \
            bad = 1;                                                                                                   \
        }                                                                                                              \
    } while (0)
    skd_outbox ob;
    skd_verdict v = socket_path(req, &ob);
    ACHECK(v == SKD_ANSWERED && ob.n == 1 && ob.out[0].flags == 0);
    int v6 = get16(req->b + 12) == 0x86DD;
    size_t ihl = v6 ? 40 : 20, hdr = 14 + ihl + 8;
    const uint8_t *qi = req->b + 14, *ai = ans->b + 14;
    ACHECK(ans->len >= hdr);
    if (bad)
        return 0;
    ACHECK(memcmp(ans->b, MAC_CLIENT, 6) == 0 && memcmp(ans->b + 6, MAC_SERVER, 6) == 0);
    ACHECK(get16(ans->b + 12) == get16(req->b + 12));
    const uint8_t *qu = qi + ihl, *au = ai + ihl;
    ACHECK(get16(au) == get16(qu + 2) && get16(au + 2) == get16(qu));
    size_t ulen = get16(au + 4);
    ACHECK(ulen == ans->len - 14 - ihl);
    stunkit_addr s, d;
    s.family = d.family = v6 ? STUNKIT_AF_INET6 : STUNKIT_AF_INET;
    if (v6) {
        ACHECK(ai[0] == 0x60 && ai[1] == 0 && ai[2] == 0 && ai[3] == 0); /* class and flow label 0 */
        ACHECK(get16(ai + 4) == ulen && ai[6] == 17 && ai[7] == 64);
        ACHECK(memcmp(ai + 8, qi + 24, 16) == 0 && memcmp(ai + 24, qi + 8, 16) == 0);
        memcpy(s.ip, ai + 8, 16);
        memcpy(d.ip, ai + 24, 16);
    } else {
        ACHECK(ai[0] == 0x45 && ai[1] == 0 && get16(ai + 2) == 20 + ulen);
        ACHECK(get16(ai + 4) == 0 && get16(ai + 6) == 0x4000 && ai[8] == 64 && ai[9] == 17); /* id 0, DF, TTL */
        ACHECK(fold(sum16(ai, 20, 0)) == 0xffff);
        ACHECK(memcmp(ai + 12, qi + 16, 4) == 0 && memcmp(ai + 16, qi + 12, 4) == 0);
        memcpy(s.ip, ai + 12, 4);
        memcpy(d.ip, ai + 16, 4);
    }
    ACHECK(get16(au + 6) != 0 && fold(sum16(au, ulen, pseudo(&s, &d, ulen, 17))) == 0xffff);
    ACHECK(ulen - 8 == ob.out[0].len && memcmp(au + 8, ob.out[0].data, ob.out[0].len) == 0);
    if (bad) {
        fprintf(stderr, "  xdp:    ");
        for (size_t i = hdr; i < ans->len; i++)
            fprintf(stderr, "%02x", ans->b[i]);
        fprintf(stderr, "\n  socket: ");
        for (size_t i = 0; i < ob.out[0].len; i++)
            fprintf(stderr, "%02x", ob.out[0].data[i]);
        fprintf(stderr, "\n");
    }
    return !bad;
#undef ACHECK
}

/* ---- requests ---- */

static const uint8_t TID[16] = {0xa, 0xb, 0xc, 0xd, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}; /* 16 for RFC 3489 */

enum { R_FP = 1, R_SOFTWARE = 2, R_OPTIONAL = 4, R_CHANGE = 8, R_RPORT = 16, R_PADDING = 32, R_USER_MI = 64,
       R_UNKNOWN_REQ = 128, R_RFC3489 = 256, R_BAD_FP = 512 };

static size_t request(uint8_t *buf, uint16_t method, stunkit_class k, unsigned what)
{
    stunkit_writer w;
    if (what & R_RFC3489)
        stunkit_writer_init_rfc3489(&w, buf, 512, method, k, TID);
    else
        stunkit_writer_init(&w, buf, 512, method, k, TID);
    if (what & R_SOFTWARE)
        stunkit_put(&w, STUNKIT_ATTR_SOFTWARE, "a client 1.0", 12);
    if (what & R_OPTIONAL)
        stunkit_put(&w, 0x8055, "\x01\x02\x03", 3);
    if (what & R_CHANGE)
        stunkit_put_change_request(&w, STUNKIT_CHANGE_PORT);
    if (what & R_RPORT)
        stunkit_put_response_port(&w, 40000);
    if (what & R_PADDING)
        stunkit_put(&w, STUNKIT_ATTR_PADDING, NULL, 64);
    if (what & R_UNKNOWN_REQ)
        stunkit_put(&w, 0x0fff, "\x00\x00\x00\x00", 4);
    if (what & R_USER_MI) {
        stunkit_put(&w, STUNKIT_ATTR_USERNAME, "alice", 5);
        stunkit_put_integrity(&w, (const uint8_t *)"key", 3);
    }
    if (what & (R_FP | R_BAD_FP))
        stunkit_put_fingerprint(&w);
    int n = stunkit_writer_finish(&w);
    CHECK(n > 0);
    if (what & R_BAD_FP)
        buf[n - 1] ^= 1;
    return (size_t)n;
}

static const char *const V4C = "192.0.2.7:40000", *const V4S = "192.0.2.1:3478";
static const char *const V6C = "[2001:db8::7]:40000", *const V6S = "[2001:db8::1]:3478";

/* A row: the frame, what the program must do with it, and for a drop, that
 * the socket path drops it too. */
static void expect(const frame *f, int want, const char *what)
{
    frame out;
    int got = run(f, &out);
    if (got != want) {
        fprintf(stderr, "%s: XDP verdict %d, wanted %d\n", what, got, want);
        CHECK_FAIL(what);
        return;
    }
    if (want == XDP_TX)
        CHECK(check_answer(f, &out, what));
    if (want == XDP_PASS) /* untouched */
        CHECK(out.len == f->len && memcmp(out.b, f->b, f->len) == 0);
    if (want == XDP_DROP) {
        skd_outbox ob;
        int v6 = get16(f->b + 12) == 0x86DD;
        if (f->len >= 14 + (v6 ? 48u : 28u)) {
            skd_verdict v = socket_path(f, &ob);
            if (v == SKD_ANSWERED)
                fprintf(stderr, "%s: dropped in XDP, answered by the socket path\n", what);
            CHECK(v != SKD_ANSWERED);
        }
    }
}

static void row(const char *src, const char *dst, const uint8_t *pl, size_t n, unsigned flags, int want,
                const char *what)
{
    frame f;
    build(&f, src, dst, pl, n, flags);
    expect(&f, want, what);
}

static void row_req(unsigned what_req, unsigned flags, int want, const char *what)
{
    uint8_t req[512];
    size_t n = request(req, STUNKIT_METHOD_BINDING, STUNKIT_CLASS_REQUEST, what_req);
    row(V4C, V4S, req, n, flags, want, what);
    if (!(flags & (F_IPOPT | F_FRAG | F_IPCSUM_BAD)))
        row(V6C, V6S, req, n, flags, want, what);
}

static const char *const BASIC[] = {"--listen", "192.0.2.1:3478", "--listen", "[2001:db8::1]:3478", "--software",
                                    "stunkitd xdp test", "--rate-limit", "0", "--redirect-rate-limit", "0", NULL};

static void test_table(void)
{
    setup(BASIC);
    uint8_t req[512];
    size_t n;
    row_req(0, 0, XDP_TX, "plain Binding");
    row_req(R_FP, 0, XDP_TX, "with FINGERPRINT");
    row_req(R_SOFTWARE | R_FP, 0, XDP_TX, "SOFTWARE and FINGERPRINT");
    row_req(R_OPTIONAL, 0, XDP_TX, "an unknown comprehension-optional attribute");
    row(V4C, V4S, req, request(req, 1, STUNKIT_CLASS_REQUEST, R_FP), F_CSUM_ZERO, XDP_TX, "IPv4 UDP checksum 0");
    row(V6C, V6S, req, request(req, 1, STUNKIT_CLASS_REQUEST, R_FP), F_CSUM_ZERO, XDP_PASS, "IPv6 UDP checksum 0");
    row_req(R_FP, F_CSUM_PARTIAL, XDP_TX, "UDP checksum left for offload by a local sender");
    row_req(R_FP, F_CSUM_BAD, XDP_PASS, "UDP checksum wrong");
    row_req(R_FP, F_IPCSUM_BAD, XDP_PASS, "IPv4 header checksum wrong");
    row_req(R_FP, F_VLAN, XDP_PASS, "802.1Q tag");
    row_req(R_FP, F_IPOPT, XDP_PASS, "IPv4 options");
    row_req(R_FP, F_FRAG, XDP_PASS, "a fragment");
    row(V6C, V6S, req, request(req, 1, STUNKIT_CLASS_REQUEST, R_FP), F_HBH, XDP_PASS, "IPv6 hop-by-hop header");
    row_req(R_FP, F_TCP, XDP_PASS, "TCP");
    row_req(R_FP, F_BCAST, XDP_PASS, "broadcast MAC");
    row("127.0.0.1:40000", V4S, req, request(req, 1, STUNKIT_CLASS_REQUEST, 0), 0, XDP_PASS, "loopback source");
    row("224.0.0.1:40000", V4S, req, request(req, 1, STUNKIT_CLASS_REQUEST, 0), 0, XDP_PASS, "multicast source");
    row("[ff02::1]:40000", V6S, req, request(req, 1, STUNKIT_CLASS_REQUEST, 0), 0, XDP_PASS, "IPv6 multicast source");
    row("[::ffff:192.0.2.7]:40000", V6S, req, request(req, 1, STUNKIT_CLASS_REQUEST, 0), 0, XDP_PASS,
        "IPv4-mapped source");
    row(V4C, "192.0.2.1:3479", req, request(req, 1, STUNKIT_CLASS_REQUEST, 0), 0, XDP_PASS, "another port");
    row(V4C, "192.0.2.99:3478", req, request(req, 1, STUNKIT_CLASS_REQUEST, 0), 0, XDP_PASS, "another address");
    row_req(R_CHANGE, 0, XDP_PASS, "CHANGE-REQUEST");
    row_req(R_RPORT, 0, XDP_PASS, "RESPONSE-PORT");
    row_req(R_PADDING, 0, XDP_PASS, "PADDING");
    row_req(R_USER_MI | R_FP, 0, XDP_PASS, "USERNAME and MESSAGE-INTEGRITY");
    row_req(R_UNKNOWN_REQ, 0, XDP_PASS, "an unknown comprehension-required attribute (420)");
    row_req(R_RFC3489, 0, XDP_PASS, "RFC 3489 (no magic cookie)");
    row_req(R_BAD_FP, 0, XDP_DROP, "FINGERPRINT wrong");

    /* attributes that do not frame (400), FINGERPRINT not last (400) */
    n = request(req, 1, STUNKIT_CLASS_REQUEST, R_OPTIONAL);
    put16(req + 22, 200);
    row(V4C, V4S, req, n, 0, XDP_PASS, "an attribute longer than the message");
    n = request(req, 1, STUNKIT_CLASS_REQUEST, R_FP);
    memcpy(req + n, "\x80\x55\x00\x00", 4);
    put16(req + 2, (unsigned)(n + 4 - 20));
    row(V4C, V4S, req, n + 4, 0, XDP_PASS, "an attribute after FINGERPRINT");
    /* header length wrong, not a multiple of 4: dropped by both */
    n = request(req, 1, STUNKIT_CLASS_REQUEST, R_FP);
    put16(req + 2, (unsigned)(n - 20 + 4));
    row(V4C, V4S, req, n, 0, XDP_DROP, "header length longer than the datagram");
    put16(req + 2, (unsigned)(n - 20 - 2));
    row(V4C, V4S, req, n, 0, XDP_DROP, "header length not a multiple of 4");
    row(V4C, V4S, req, request(req, 1, STUNKIT_CLASS_INDICATION, 0), 0, XDP_DROP, "a Binding indication");
    row(V4C, V4S, req, request(req, 1, STUNKIT_CLASS_SUCCESS, 0), 0, XDP_DROP, "a Binding success response");
    row(V4C, V4S, req, request(req, STUNKIT_METHOD_ALLOCATE, STUNKIT_CLASS_REQUEST, 0), 0, XDP_DROP,
        "Allocate without TURN");
    row(V4C, V4S, req, request(req, 0x0B0, STUNKIT_CLASS_REQUEST, 0), 0, XDP_DROP, "rendezvous when it is off");
    /* not STUN (RFC 7983) */
    memset(req, 0x80, 64);
    row(V4C, V4S, req, 64, 0, XDP_DROP, "RTP-like bytes");
    req[0] = 0x16;
    row(V4C, V4S, req, 64, 0, XDP_DROP, "a DTLS record on the STUN port");
    req[0] = 0x40;
    row(V4C, V4S, req, 64, 0, XDP_DROP, "ChannelData without TURN");
    memset(req, 0, 20);
    row(V4C, V4S, req, 19, 0, XDP_DROP, "19 bytes");
    row(V4C, V4S, req, 2, 0, XDP_DROP, "2 bytes");
    row(V4C, V4S, req, 0, 0, XDP_DROP, "an empty datagram");
    /* longer than the program looks at: the socket path answers */
    uint8_t big[640];
    stunkit_writer w;
    stunkit_writer_init(&w, big, sizeof(big), 1, STUNKIT_CLASS_REQUEST, TID);
    stunkit_put(&w, 0x8055, NULL, 500);
    int bn = stunkit_writer_finish(&w);
    CHECK_EQ(bn, 524);
    row(V4C, V4S, big, (size_t)bn, 0, XDP_PASS, "a 524-byte request");
    /* ARP */
    frame f;
    memset(&f, 0, sizeof(f));
    memcpy(f.b, MAC_SERVER, 6);
    memcpy(f.b + 6, MAC_CLIENT, 6);
    put16(f.b + 12, 0x0806);
    f.len = 60;
    expect(&f, XDP_PASS, "ARP");
}

/* Every prefix of a request's frame, and the frame with bytes after it
 * (Ethernet padding), and IP/UDP lengths that disagree with the frame. */
static void test_truncations(void)
{
    setup(BASIC);
    uint8_t req[512];
    size_t n = request(req, 1, STUNKIT_CLASS_REQUEST, R_SOFTWARE | R_FP);
    for (int v6 = 0; v6 < 2; v6++) {
        frame full, f, out;
        build(&full, v6 ? V6C : V4C, v6 ? V6S : V4S, req, n, 0);
        int answered = 0;
        for (size_t len = 0; len < full.len; len++) {
            f = full;
            f.len = len;
            if (len < 14) /* test_run wants an Ethernet header */
                continue;
            int v = run(&f, &out);
            if (v == XDP_TX)
                answered++;
        }
        CHECK_EQ(answered, 0);
        f = full;
        memset(f.b + f.len, 0, 8);
        f.len += 8;
        expect(&f, XDP_PASS, "8 bytes after the datagram");
        f = full;
        put16(f.b + 14 + (v6 ? 4 : 2), get16(f.b + 14 + (v6 ? 4 : 2)) - 4);
        expect(&f, XDP_PASS, "an IP length shorter than the frame");
        f = full;
        size_t u = 14 + (v6 ? 40u : 20u);
        put16(f.b + u + 4, get16(f.b + u + 4) - 4);
        expect(&f, XDP_PASS, "a UDP length shorter than the IP payload");
    }
}

/* RFC 5780 mode: MAPPED-ADDRESS, RESPONSE-ORIGIN and OTHER-ADDRESS, fixed
 * per listening address, on each of the four addresses of each family. */
static void test_rfc5780(void)
{
    static const char *const args[] = {"--listen", "192.0.2.1:3478", "--alternate", "192.0.2.9:3479", "--advertise",
                                       "203.0.113.1", "--advertise-alternate", "203.0.113.9", "--listen",
                                       "[2001:db8::1]:3478", "--alternate", "[2001:db8::9]:3479", "--rate-limit",
                                       "0", NULL};
    setup(args);
    static const char *const dsts[] = {"192.0.2.1:3478", "192.0.2.1:3479", "192.0.2.9:3478", "192.0.2.9:3479",
                                       "[2001:db8::1]:3478", "[2001:db8::1]:3479", "[2001:db8::9]:3478",
                                       "[2001:db8::9]:3479"};
    uint8_t req[512];
    for (int i = 0; i < 8; i++)
        for (int fp = 0; fp < 2; fp++) {
            size_t n = request(req, 1, STUNKIT_CLASS_REQUEST, fp ? R_FP : 0);
            row(i < 4 ? V4C : V6C, dsts[i], req, n, 0, XDP_TX, dsts[i]);
        }
    /* CHANGE-REQUEST still goes to the socket path */
    size_t n = request(req, 1, STUNKIT_CLASS_REQUEST, R_CHANGE);
    row(V4C, V4S, req, n, 0, XDP_PASS, "RFC 5780 CHANGE-REQUEST");
}

/* Credentials on: no Binding is answered here (the socket path says 401),
 * until they are switched off (SIGHUP); RFC 3489 and rendezvous pass. */
static void test_auth(void)
{
    static const char *const args[] = {"--listen", "192.0.2.1:3478", "--credential", "alice:secret",
                                       "--rendezvous", "--rate-limit", "0", NULL};
    setup(args);
    uint8_t req[512];
    size_t n = request(req, 1, STUNKIT_CLASS_REQUEST, R_FP);
    row(V4C, V4S, req, n, 0, XDP_PASS, "Binding with credentials on");
    row(V4C, V4S, req, request(req, 0x0B0, STUNKIT_CLASS_REQUEST, 0), 0, XDP_PASS, "a rendezvous request");
    row(V4C, V4S, req, request(req, 0x0B1, STUNKIT_CLASS_REQUEST, 0), 0, XDP_DROP, "an unknown method");
    n = request(req, 1, STUNKIT_CLASS_REQUEST, R_FP);
    skd_xdp_set_answer(xdp, 1);
    hcfg.auth = NULL;
    row(V4C, V4S, req, n, 0, XDP_TX, "Binding after credentials were switched off");
    skd_xdp_set_answer(xdp, 0);
    hcfg.auth = cfg.auth;
    row(V4C, V4S, req, n, 0, XDP_PASS, "Binding after they came back");
}

/* TURN on: its data goes up (ChannelData, Send indications, requests);
 * what is neither STUN nor ChannelData is dropped. */
static void test_turn(void)
{
    static const char *const args[] = {"--listen", "192.0.2.1:3478", "--credential", "alice:secret", "--turn",
                                       "--rate-limit", "0", NULL};
    setup(args);
    uint8_t req[512];
    memset(req, 0, sizeof(req));
    put16(req, 0x4001);
    put16(req + 2, 8);
    row(V4C, V4S, req, 12, 0, XDP_PASS, "ChannelData");
    req[0] = 0x7f;
    row(V4C, V4S, req, 12, 0, XDP_PASS, "ChannelData 0x7Fxx");
    req[0] = 0x80;
    row(V4C, V4S, req, 12, 0, XDP_DROP, "0x80: neither STUN nor a channel");
    row(V4C, V4S, req, request(req, 0x006, STUNKIT_CLASS_INDICATION, 0), 0, XDP_PASS, "a Send indication");
    row(V4C, V4S, req, request(req, STUNKIT_METHOD_ALLOCATE, STUNKIT_CLASS_REQUEST, 0), 0, XDP_PASS, "Allocate");
    row(V4C, V4S, req, request(req, 1, STUNKIT_CLASS_REQUEST, R_FP), 0, XDP_PASS, "Binding (401 from the socket path)");
}

/* The budgets: a burst of 3 at 1 per 100 s, then drops; the strict budget (burst 2)
 * for answers more than twice the request's size. */
static void test_budgets(void)
{
    static const char *const args[] = {"--listen", "192.0.2.1:3478", "--software",
                                       "a long SOFTWARE value so that the answer is big", "--rate-limit", "0.01",
                                       "--rate-burst", "3", "--redirect-rate-limit", "0.001", NULL};
    setup(args);
    uint8_t req[512];
    frame f, out;
    size_t n = request(req, 1, STUNKIT_CLASS_REQUEST, 0); /* 20 bytes: the answer is over 40 */
    build(&f, V4C, V4S, req, n, 0);
    uint64_t c[SKD_XDP_N_COUNTERS];
    int v[5];
    for (int i = 0; i < 5; i++)
        v[i] = run(&f, &out);
    /* burst_redir is 2 x rate_redir, at least 1: one strict token */
    CHECK_EQ(v[0], XDP_TX);
    CHECK_EQ(v[1], XDP_DROP);
    CHECK_EQ(v[2], XDP_DROP);
    CHECK_EQ(v[3], XDP_DROP);
    CHECK_EQ(v[4], XDP_DROP);
    skd_xdp_counters(xdp, c);
    CHECK_EQ(c[SKX_ANSWERED], 1);
    CHECK_EQ(c[SKX_DROP_STRICT], 2);
    CHECK_EQ(c[SKX_DROP_RATE], 2);
    /* another source has its own budgets */
    build(&f, "192.0.2.8:40000", V4S, req, n, 0);
    CHECK_EQ(run(&f, &out), XDP_TX);
    /* a request with SOFTWARE and FINGERPRINT is big enough: no strict
     * token needed, only the general budget (spent for 192.0.2.7) */
    n = request(req, 1, STUNKIT_CLASS_REQUEST, R_OPTIONAL | R_SOFTWARE | R_FP);
    build(&f, "192.0.2.8:40000", V4S, req, n, 0);
    CHECK_EQ(run(&f, &out), XDP_TX);
    build(&f, V4C, V4S, req, n, 0);
    CHECK_EQ(run(&f, &out), XDP_DROP);
}

/* Random mutations of requests (checksums recomputed, so they reach the
 * STUN code): whatever the program answers, the socket path answers with
 * the same bytes; whatever it drops, the socket path drops. */
static void test_mutations(void)
{
    static const char *const args[] = {"--listen", "192.0.2.1:3478", "--alternate", "192.0.2.9:3479", "--listen",
                                       "[2001:db8::1]:3478", "--software", "mutant", "--rate-limit", "0", "--redirect-rate-limit", "0", NULL};
    setup(args);
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    int tx = 0, drop = 0, pass = 0;
    for (int i = 0; i < 20000; i++) {
        uint8_t req[512];
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        unsigned what = (unsigned)(seed >> 33) & (R_FP | R_SOFTWARE | R_OPTIONAL);
        size_t n = request(req, 1, STUNKIT_CLASS_REQUEST, what);
        int flips = 1 + (int)((seed >> 20) & 3);
        for (int k = 0; k < flips; k++) {
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            size_t at = (size_t)(seed >> 40) % n;
            /* mostly the header and attribute heads, where the decisions are */
            req[at] = (uint8_t)(seed >> 8);
        }
        size_t cut = 4 * (1 + (size_t)(seed >> 16) % 3);
        if ((seed >> 12) % 8 == 0 && cut < n)
            n -= cut; /* cut at a word boundary */
        frame f, out;
        build(&f, (i & 1) ? V6C : V4C, (i & 1) ? V6S : V4S, req, n, 0);
        int v = run(&f, &out);
        if (v == XDP_TX) {
            tx++;
            if (!check_answer(&f, &out, "mutation")) {
                CHECK_FAIL("a mutated request answered unlike the socket path");
                break;
            }
        } else if (v == XDP_DROP) {
            drop++;
            skd_outbox ob;
            if (socket_path(&f, &ob) == SKD_ANSWERED) {
                fprintf(stderr, "  request: ");
                for (size_t k = 0; k < n; k++)
                    fprintf(stderr, "%02x", req[k]);
                fprintf(stderr, "\n  socket path: %d bytes, code %d\n", (int)ob.out[0].len, ob.out[0].code);
                CHECK_FAIL("a mutated request dropped in XDP, answered by the socket path");
                break;
            }
        } else {
            pass++;
        }
    }
    fprintf(stderr, "     mutations: %d answered (same bytes as the socket path), %d dropped (as there), %d passed\n",
            tx, drop, pass);
    CHECK(tx > 1000 && drop > 1000);
}

/* The counters the server merges, and the program's own time per frame
 * (printed, never asserted: the bench reports it). */
static void test_counters_and_time(void)
{
    setup(BASIC);
    uint8_t req[512];
    frame f, out;
    size_t n = request(req, 1, STUNKIT_CLASS_REQUEST, R_FP);
    build(&f, V4C, V4S, req, n, 0);
    run(&f, &out);
    run(&f, &out);
    memset(req, 0x80, 32);
    build(&f, V4C, V4S, req, 32, 0);
    run(&f, &out);
    n = request(req, 1, STUNKIT_CLASS_REQUEST, R_CHANGE);
    build(&f, V4C, V4S, req, n, 0);
    run(&f, &out);
    skd_stats st;
    memset(&st, 0, sizeof(st));
    skd_xdp_add_stats(xdp, &st);
    CHECK_EQ(st.xdp_answered, 2);
    CHECK_EQ(st.success, 2);
    CHECK_EQ(st.udp_tx, 2);
    CHECK_EQ(st.udp_rx, 3);
    CHECK_EQ(st.xdp_dropped, 1);
    CHECK_EQ(st.drop_not_stun, 1);
    CHECK_EQ(st.xdp_passed, 1);

    n = request(req, 1, STUNKIT_CLASS_REQUEST, R_FP);
    build(&f, V4C, V4S, req, n, 0);
    int v = -1;
    double ns = xdp_prog_ns(prog, &f, 0, 20000, &v);
    CHECK_EQ(v, XDP_TX);
    if (ns >= 0)
        fprintf(stderr, "     program time: %.0f ns per Binding request with FINGERPRINT answered (kernel's run-time "
                        "statistics, 20000 runs)\n",
                ns);
}

int main(void)
{
    if (geteuid() != 0) {
        fprintf(stderr, "skip: loading BPF needs root\n");
        return 77;
    }
    if (getenv("XDP_TEST_VERBOSE"))
        skd_log_level = SKD_LOG_DEBUG; /* libbpf's and the verifier's words */
    /* the budgets are per CPU: keep every run on one */
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(0, &one);
    sched_setaffinity(0, sizeof(one), &one);
    RUN(test_table);
    RUN(test_truncations);
    RUN(test_rfc5780);
    RUN(test_auth);
    RUN(test_turn);
    RUN(test_budgets);
    RUN(test_mutations);
    RUN(test_counters_and_time);
    skd_xdp_close(xdp);
    skd_config_free(&cfg);
    return t_failures ? 1 : 0;
}
