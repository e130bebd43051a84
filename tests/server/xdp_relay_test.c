/*
 * xdp_relay_test.c - the TURN channel offload of stunkitd's XDP program
 * (relay() in src/server/xdp.bpf.c) driven by BPF_PROG_TEST_RUN with crafted
 * frames, in a network namespace of the test's own (unshare(2): two veth
 * pairs, static neighbours, lo's forwarding flag; it goes when the test
 * exits). Every relayed frame is compared byte for byte with one built here
 * from the RFCs (xdp_frames.h), every frame left to the sockets must come
 * out untouched:
 *
 *   - ChannelData -> the peer's datagram and back (RFC 8656 12), IPv4, IPv6
 *     and across families, application data of 0..80 bytes and of every
 *     size where the program's sum changes pieces (511..2047), with 0-3
 *     bytes of padding; the incoming UDP checksum valid, absent (IPv4), or a
 *     local sender's seed: relayed; wrong, absent over IPv6, padding over 3,
 *     a length past the datagram, data over 2047 bytes, an Ethernet
 *     trailer: left to the sockets;
 *   - every truncated prefix of a relayable frame: never relayed;
 *   - XDP_TX when the route leaves by the ingress device, XDP_REDIRECT to
 *     another device the program is attached to; to the sockets when it is
 *     not attached there, the neighbour is unknown, there is no route, the
 *     MTU is too small, the entry expired or was removed, forwarding is off;
 *   - the allocation's and the server's bandwidth quotas, and the counters.
 *
 * Root only (77 = skipped otherwise).
 */
#define _GNU_SOURCE
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "test.h"
#include "xdp.h"
#include "xdp_abi.h"
#include "xdp_frames.h"

/* ---- the lab: this process's own network namespace ----
 *
 *   rx0 (ingress) 192.0.2.1/24 2001:db8::1/64   MTU 3000 (XDP on veth: at most ~3.5 KB)
 *       client 192.0.2.7 / 2001:db8::7, peer 192.0.2.9 / 2001:db8::9
 *   rx2           198.51.100.1/24 2001:db8:1::1/64   MTU 1500
 *       peer 198.51.100.9 / 2001:db8:1::9; 198.51.100.10 has no neighbour
 *   no route to 203.0.113.0/24
 */

static const uint8_t MAC_RX0[6] = {2, 0, 0, 0, 0x0a, 0}, MAC_RX2[6] = {2, 0, 0, 0, 0x0b, 0};
static const uint8_t MAC_PEER0[6] = {2, 0, 0, 0, 0, 9}, MAC_PEER2[6] = {2, 0, 0, 0, 0, 0x19};
static unsigned if_rx0, if_rx2;

static int sh(const char *cmd)
{
    int rc = system(cmd);
    if (rc != 0)
        fprintf(stderr, "lab: `%s` failed (%d)\n", cmd, rc);
    return rc;
}

static int put_sysctl(const char *path, const char *v)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    int ok = fputs(v, f) >= 0;
    return (fclose(f) == 0 && ok) ? 0 : -1;
}

static int lab(void)
{
    if (unshare(CLONE_NEWNET) != 0) {
        perror("unshare(CLONE_NEWNET)");
        return -1;
    }
    const char *const cmds[] = {
        "ip link set lo up",
        "ip link add rx0 address 02:00:00:00:0a:00 mtu 3000 type veth peer name rx1 mtu 3000",
        "ip link add rx2 address 02:00:00:00:0b:00 type veth peer name rx3",
        "ip addr add 192.0.2.1/24 dev rx0",
        "ip addr add 2001:db8::1/64 dev rx0 nodad",
        "ip addr add 198.51.100.1/24 dev rx2",
        "ip addr add 2001:db8:1::1/64 dev rx2 nodad",
        "ip link set rx0 up",
        "ip link set rx1 up",
        "ip link set rx2 up",
        "ip link set rx3 up",
        "ip neigh replace 192.0.2.7 lladdr 02:00:00:00:00:02 dev rx0 nud permanent",
        "ip neigh replace 192.0.2.9 lladdr 02:00:00:00:00:09 dev rx0 nud permanent",
        "ip -6 neigh replace 2001:db8::7 lladdr 02:00:00:00:00:02 dev rx0 nud permanent",
        "ip -6 neigh replace 2001:db8::9 lladdr 02:00:00:00:00:09 dev rx0 nud permanent",
        "ip neigh replace 198.51.100.9 lladdr 02:00:00:00:00:19 dev rx2 nud permanent",
        "ip -6 neigh replace 2001:db8:1::9 lladdr 02:00:00:00:00:19 dev rx2 nud permanent",
    };
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
        if (sh(cmds[i]) != 0)
            return -1;
    /* the headers the program writes carry the defaults: pin them */
    if (put_sysctl("/proc/sys/net/ipv4/ip_default_ttl", "64") ||
        put_sysctl("/proc/sys/net/ipv6/conf/default/hop_limit", "64"))
        return -1;
    if_rx0 = if_nametoindex("rx0");
    if_rx2 = if_nametoindex("rx2");
    return if_rx0 && if_rx2 ? 0 : -1;
}

static int lo_forwarding(int on)
{
    const char *v = on ? "1" : "0";
    return put_sysctl("/proc/sys/net/ipv4/conf/lo/forwarding", v) |
           put_sysctl("/proc/sys/net/ipv6/conf/lo/forwarding", v);
}

/* ---- the program ---- */

static skd_config cfg;
static skd_handler_cfg hcfg;
static skd_xdp *xdp;
static int prog;

static void setup(const char *alloc_bps, const char *total_bps)
{
    const char *args[] = {"stunkitd", "--listen", "192.0.2.1:3478", "--listen", "[2001:db8::1]:3478", "--turn",
                          "--credential", "alice:secret", "--rate-limit", "0", "--turn-allocation-bandwidth",
                          alloc_bps, "--turn-total-bandwidth", total_bps, NULL};
    char *argv[16];
    int argc = 0;
    for (; args[argc]; argc++)
        argv[argc] = (char *)args[argc];
    argv[argc] = NULL;
    skd_sock_spec specs[16];
    int n;
    xdp = xdp_test_load(xdp, &cfg, &hcfg, specs, 16, &n, argc, argv);
    /* on rx0, as `--xdp rx0` (channels are published once it is on a device) */
    char info[256], err[256];
    CHECK(skd_xdp_attach(xdp, "rx0", info, err, sizeof(err)) == 0);
    CHECK(skd_xdp_relaying(xdp));
    prog = skd_xdp_prog_fd(xdp);
}

/* One frame in by rx0, as the driver would hand it. */
static int run(const frame *in, frame *out)
{
    struct xdp_md ctx = {.data_end = (uint32_t)in->len, .ingress_ifindex = if_rx0};
    LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = in->b, .data_size_in = (uint32_t)in->len, .data_out = out->b,
                .data_size_out = sizeof(out->b), .ctx_in = &ctx, .ctx_size_in = sizeof(ctx), .repeat = 1);
    int rv = bpf_prog_test_run_opts(prog, &o);
    CHECK_EQ(rv, 0);
    out->len = o.data_size_out;
    return (int)o.retval;
}

static uint64_t counter(int c)
{
    uint64_t v[SKD_XDP_N_COUNTERS];
    skd_xdp_counters(xdp, v);
    return v[c];
}

/* ---- channels and frames ---- */

static void addr(const char *s, stunkit_addr *a)
{
    CHECK(stunkit_addr_parse(s, 0, a) == 0);
}

/* An allocation's channel: client and listening address, relayed address
 * and peer, as turn_relay.c publishes it. */
typedef struct chan {
    const char *client, *server, *relay, *peer;
    uint16_t number;
    uint32_t alloc;
} chan;

static skd_xdp_channel entry(const chan *c)
{
    skd_xdp_channel x;
    memset(&x, 0, sizeof(x));
    addr(c->client, &x.client);
    addr(c->server, &x.server);
    addr(c->relay, &x.relay);
    addr(c->peer, &x.peer);
    x.number = c->number;
    x.alloc_id = c->alloc;
    return x;
}

static int publish(const chan *c, uint64_t ttl_ms)
{
    skd_xdp_channel x = entry(c);
    return skd_xdp_channel_put(xdp, &x, ttl_ms);
}

static void unpublish(const chan *c)
{
    skd_xdp_channel x = entry(c);
    skd_xdp_channel_del(xdp, &x);
}

static uint8_t data_byte(size_t i, unsigned seed)
{
    return (uint8_t)(i * 7u + 3u + seed * 13u);
}

/* ChannelData from the client: number, length, data, then pad bytes
 * (not zero: the checksum proof must place them right). */
static void channel_data(frame *f, const chan *c, size_t dlen, size_t pad, unsigned len_extra, unsigned flags,
                         unsigned seed)
{
    static uint8_t p[4096];
    put16(p, c->number);
    put16(p + 2, (unsigned)(dlen + len_extra));
    for (size_t i = 0; i < dlen; i++)
        p[4 + i] = data_byte(i, seed);
    for (size_t i = 0; i < pad; i++)
        p[4 + dlen + i] = (uint8_t)(0xa5 ^ (i * 0x31));
    build(f, c->client, c->server, p, 4 + dlen + pad, flags);
}

/* The peer's datagram to the relayed address. */
static void peer_data(frame *f, const chan *c, size_t dlen, unsigned flags, unsigned seed)
{
    static uint8_t p[4096];
    for (size_t i = 0; i < dlen; i++)
        p[i] = data_byte(i, seed);
    build(f, c->peer, c->relay, p, dlen, flags);
}

/* What must leave: the same data from the relayed address to the peer, or
 * as ChannelData (no padding: RFC 8656 12.5, "over UDP ... MAY") from the
 * listening address to the client; fresh IP headers (DF, ID 0, TTL/hop
 * limit 64) and checksums, the next hop's MAC from the neighbour table. */
static void to_peer(frame *f, const chan *c, size_t dlen, unsigned seed, const uint8_t *dmac, const uint8_t *smac)
{
    static uint8_t p[4096];
    for (size_t i = 0; i < dlen; i++)
        p[i] = data_byte(i, seed);
    build(f, c->relay, c->peer, p, dlen, 0);
    memcpy(f->b, dmac, 6);
    memcpy(f->b + 6, smac, 6);
}

static void to_client(frame *f, const chan *c, size_t dlen, unsigned seed)
{
    static uint8_t p[4096];
    put16(p, c->number);
    put16(p + 2, (unsigned)dlen);
    for (size_t i = 0; i < dlen; i++)
        p[4 + i] = data_byte(i, seed);
    build(f, c->server, c->client, p, 4 + dlen, 0);
    memcpy(f->b, MAC_CLIENT, 6);
    memcpy(f->b + 6, MAC_RX0, 6);
}

/* The verdict, and the bytes: a relayed frame exactly as built, anything
 * passed exactly as it came. */
static int expect(const frame *in, int want, const frame *exp, const char *what, size_t dlen)
{
    frame out;
    int got = run(in, &out);
    if (got != want) {
        fprintf(stderr, "%s (data %zu bytes): verdict %d, wanted %d\n", what, dlen, got, want);
        CHECK_FAIL(what);
        return 0;
    }
    if (want == XDP_DROP)
        return 1;
    const frame *w = (want == XDP_TX || want == XDP_REDIRECT) ? exp : in;
    if (out.len != w->len || memcmp(out.b, w->b, w->len) != 0) {
        size_t at = 0;
        while (at < out.len && at < w->len && out.b[at] == w->b[at])
            at++;
        fprintf(stderr, "%s (data %zu bytes): %zu bytes out, %zu wanted; first difference at byte %zu\n", what, dlen,
                out.len, w->len, at);
        CHECK_FAIL(what);
        return 0;
    }
    return 1;
}

/* Channels in the four family combinations, every peer behind rx0 (the
 * ingress device: XDP_TX). */
static const chan C44 = {"192.0.2.7:40000", "192.0.2.1:3478", "198.51.100.1:50000", "192.0.2.9:6000", 0x4000, 0};
static const chan C66 = {"[2001:db8::7]:40000", "[2001:db8::1]:3478", "[2001:db8:1::1]:50000", "[2001:db8::9]:6000",
                         0x4001, 0};
static const chan C46 = {"192.0.2.7:40001", "192.0.2.1:3478", "[2001:db8:1::1]:50002", "[2001:db8::9]:6002", 0x7ffe,
                         0};
static const chan C64 = {"[2001:db8::7]:40001", "[2001:db8::1]:3478", "198.51.100.1:50003", "192.0.2.9:6003", 0x4fff,
                         0};
static const chan *const ALL[] = {&C44, &C66, &C46, &C64};
static const char *const NAMES[] = {"IPv4", "IPv6", "IPv4 client, IPv6 peer", "IPv6 client, IPv4 peer"};

static const size_t BIG[] = {127, 128, 129, 255, 256, 511, 512, 513, 1023, 1024, 1025, 1500, 2046, 2047};

/* Every shape both ways, byte for byte. */
static void test_shapes(void)
{
    setup("0", "0");
    CHECK(lo_forwarding(1) == 0);
    int ok = 0;
    for (int k = 0; k < 4; k++) {
        const chan *c = ALL[k];
        CHECK(publish(c, 60000) == 0);
        char what[96];
        for (size_t j = 0; j < 81 + sizeof(BIG) / sizeof(BIG[0]); j++) {
            size_t dlen = j < 81 ? j : BIG[j - 81];
            frame in, exp;
            unsigned seed = (unsigned)k * 1000u + (unsigned)j;
            for (size_t pad = 0; pad < 4; pad++) {
                channel_data(&in, c, dlen, pad, 0, 0, seed);
                to_peer(&exp, c, dlen, seed, MAC_PEER0, MAC_RX0);
                snprintf(what, sizeof(what), "%s: ChannelData, %zu bytes of padding", NAMES[k], pad);
                ok += expect(&in, XDP_TX, &exp, what, dlen);
            }
            peer_data(&in, c, dlen, 0, seed);
            to_client(&exp, c, dlen, seed);
            snprintf(what, sizeof(what), "%s: the peer's datagram", NAMES[k]);
            ok += expect(&in, XDP_TX, &exp, what, dlen);
        }
        unpublish(c);
    }
    fprintf(stderr, "     %d frames relayed byte for byte (4 family pairs, data 0..80 and 127..2047 bytes, padding "
                    "0-3)\n",
            ok);
    CHECK_EQ(ok, 4 * (81 + (int)(sizeof(BIG) / sizeof(BIG[0]))) * 5);
}

/* The incoming checksum: proven or passed. */
static void test_checksums(void)
{
    setup("0", "0");
    for (int k = 0; k < 4; k++) {
        const chan *c = ALL[k];
        int v6_in = k == 1 || k == 3;              /* the client's side is IPv6 */
        int v6_peer = k == 1 || k == 2;            /* the peer's side */
        CHECK(publish(c, 60000) == 0);
        for (size_t dlen = 0; dlen < 24; dlen++) {
            frame in, exp;
            char what[96];
            for (size_t pad = 0; pad < 4; pad++) {
                to_peer(&exp, c, dlen, 7, MAC_PEER0, MAC_RX0);
                channel_data(&in, c, dlen, pad, 0, F_CSUM_PARTIAL, 7);
                snprintf(what, sizeof(what), "%s: ChannelData with a local sender's seed", NAMES[k]);
                expect(&in, XDP_TX, &exp, what, dlen);
                channel_data(&in, c, dlen, pad, 0, F_CSUM_ZERO, 7);
                snprintf(what, sizeof(what), "%s: ChannelData without a checksum", NAMES[k]);
                expect(&in, v6_in ? XDP_PASS : XDP_TX, &exp, what, dlen); /* RFC 8200 8.1: IPv6 needs one */
                channel_data(&in, c, dlen, pad, 0, F_CSUM_BAD, 7);
                snprintf(what, sizeof(what), "%s: ChannelData with a wrong checksum", NAMES[k]);
                expect(&in, XDP_PASS, NULL, what, dlen);
            }
            to_client(&exp, c, dlen, 7);
            peer_data(&in, c, dlen, F_CSUM_PARTIAL, 7);
            snprintf(what, sizeof(what), "%s: the peer's datagram with a seed", NAMES[k]);
            expect(&in, XDP_TX, &exp, what, dlen);
            peer_data(&in, c, dlen, F_CSUM_ZERO, 7);
            snprintf(what, sizeof(what), "%s: the peer's datagram without a checksum", NAMES[k]);
            expect(&in, v6_peer ? XDP_PASS : XDP_TX, &exp, what, dlen);
            peer_data(&in, c, dlen, F_CSUM_BAD, 7);
            snprintf(what, sizeof(what), "%s: the peer's datagram with a wrong checksum", NAMES[k]);
            expect(&in, XDP_PASS, NULL, what, dlen);
        }
        /* a wrong checksum that only a pad byte makes wrong */
        frame in;
        channel_data(&in, c, 5, 3, 0, 0, 9);
        in.b[in.len - 1] ^= 0x40;
        expect(&in, XDP_PASS, NULL, "a pad byte changed after the checksum", 5);
        unpublish(c);
    }
}

/* Lengths that do not frame, sizes past the limit, and truncations. */
static void test_lengths(void)
{
    setup("0", "0");
    frame in, exp, out;
    for (int k = 0; k < 4; k++) {
        const chan *c = ALL[k];
        CHECK(publish(c, 60000) == 0);
        for (unsigned extra = 1; extra <= 8; extra++) {
            /* RFC 8656 12.4: a length past the datagram is malformed (the
             * socket path drops it) */
            channel_data(&in, c, 40, extra > 4 ? 0 : extra - 1, extra, 0, 1);
            expect(&in, XDP_PASS, NULL, "ChannelData longer than its datagram", 40);
        }
        for (size_t pad = 4; pad < 8; pad++) {
            channel_data(&in, c, 40, pad, 0, 0, 1);
            expect(&in, XDP_PASS, NULL, "padding over 3 bytes", 40);
        }
        channel_data(&in, c, 2048, 0, 0, 0, 1);
        expect(&in, XDP_PASS, NULL, "ChannelData over 2047 bytes", 2048);
        peer_data(&in, c, 2048, 0, 1);
        expect(&in, XDP_PASS, NULL, "a peer's datagram over 2047 bytes", 2048);
        /* an Ethernet trailer (a short frame padded to 60 bytes): the IP
         * length is not the frame's; the kernel trims it */
        channel_data(&in, c, 2, 0, 0, 0, 1);
        memset(in.b + in.len, 0, 16);
        in.len = in.len < 60 ? 60 : in.len + 4;
        expect(&in, XDP_PASS, NULL, "ChannelData in a frame with a trailer", 2);

        /* every prefix of a relayable frame, both ways: never relayed */
        int bad = 0;
        for (int way = 0; way < 2; way++) {
            frame whole;
            if (way == 0)
                channel_data(&whole, c, 37, 3, 0, 0, 2);
            else
                peer_data(&whole, c, 37, 0, 2);
            for (size_t n = 14; n < whole.len; n++) {
                frame cut = whole;
                cut.len = n;
                int v = run(&cut, &out);
                if (v == XDP_TX || v == XDP_REDIRECT) {
                    fprintf(stderr, "%s: a %zu-byte prefix of a %zu-byte frame relayed\n", NAMES[k], n, whole.len);
                    bad++;
                }
            }
            /* and the whole still is */
            if (way == 0)
                to_peer(&exp, c, 37, 2, MAC_PEER0, MAC_RX0);
            else
                to_client(&exp, c, 37, 2);
            expect(&whole, XDP_TX, &exp, "the frame whose prefixes were tried", 37);
        }
        CHECK_EQ(bad, 0);
        unpublish(c);
    }
    /* another channel number, another client port: not published */
    CHECK(publish(&C44, 60000) == 0);
    chan other = C44;
    other.number = 0x4002;
    channel_data(&in, &other, 10, 0, 0, 0, 1);
    expect(&in, XDP_PASS, NULL, "an unpublished channel number", 10);
    other = C44;
    other.client = "192.0.2.7:40009";
    channel_data(&in, &other, 10, 0, 0, 0, 1);
    expect(&in, XDP_PASS, NULL, "the channel from another client port", 10);
    other = C44;
    other.peer = "192.0.2.9:6001";
    peer_data(&in, &other, 10, 0, 1);
    expect(&in, XDP_PASS, NULL, "a datagram from another peer port", 10);
    unpublish(&C44);
}

/* Where it leaves, and when it does not. */
static void test_routes(void)
{
    setup("0", "0");
    char err[256], info[256];
    frame in, exp;
    chan c = {"192.0.2.7:40000", "192.0.2.1:3478", "198.51.100.1:50000", "198.51.100.9:6000", 0x4000, 0};
    chan c6 = {"[2001:db8::7]:40000", "[2001:db8::1]:3478", "[2001:db8:1::1]:50000", "[2001:db8:1::9]:6000", 0x4001,
               0};
    CHECK(publish(&c, 60000) == 0);
    CHECK(publish(&c6, 60000) == 0);
    /* the program is not on rx2: the sockets send */
    channel_data(&in, &c, 100, 0, 0, 0, 3);
    expect(&in, XDP_PASS, NULL, "to a device the program is not on", 100);
    uint64_t passed = counter(SKX_RELAY_PASSED);
    CHECK(passed >= 1);
    /* attached to rx2: redirected there, from rx2's MAC */
    CHECK(skd_xdp_attach(xdp, "rx2", info, err, sizeof(err)) == 0);
    to_peer(&exp, &c, 100, 3, MAC_PEER2, MAC_RX2);
    expect(&in, XDP_REDIRECT, &exp, "IPv4, to another device the program is on", 100);
    channel_data(&in, &c6, 100, 2, 0, 0, 3);
    to_peer(&exp, &c6, 100, 3, MAC_PEER2, MAC_RX2);
    expect(&in, XDP_REDIRECT, &exp, "IPv6, to another device the program is on", 100);
    /* rx2's MTU is 1500: 1472 bytes fit in IPv4, 1473 do not */
    channel_data(&in, &c, 1472, 0, 0, 0, 4);
    to_peer(&exp, &c, 1472, 4, MAC_PEER2, MAC_RX2);
    expect(&in, XDP_REDIRECT, &exp, "a datagram that fits the MTU", 1472);
    channel_data(&in, &c, 1473, 0, 0, 0, 4);
    expect(&in, XDP_PASS, NULL, "a datagram over the MTU", 1473);
    channel_data(&in, &c6, 1453, 0, 0, 0, 4);
    expect(&in, XDP_PASS, NULL, "an IPv6 datagram over the MTU", 1453);
    unpublish(&c);
    unpublish(&c6);
    /* no neighbour, no route */
    chan nn = c;
    nn.peer = "198.51.100.10:6000";
    CHECK(publish(&nn, 60000) == 0);
    channel_data(&in, &nn, 50, 0, 0, 0, 5);
    expect(&in, XDP_PASS, NULL, "a peer without a neighbour entry", 50);
    unpublish(&nn);
    nn.peer = "203.0.113.9:6000";
    CHECK(publish(&nn, 60000) == 0);
    channel_data(&in, &nn, 50, 0, 0, 0, 5);
    expect(&in, XDP_PASS, NULL, "a peer without a route", 50);
    unpublish(&nn);

    /* forwarding: off on lo and rx0, nothing is relayed; on for rx0 only
     * (an operator's router), relayed again */
    CHECK(publish(&C44, 60000) == 0);
    channel_data(&in, &C44, 30, 0, 0, 0, 6);
    to_peer(&exp, &C44, 30, 6, MAC_PEER0, MAC_RX0);
    CHECK(lo_forwarding(0) == 0);
    expect(&in, XDP_PASS, NULL, "lo's forwarding off", 30);
    CHECK(put_sysctl("/proc/sys/net/ipv4/conf/rx0/forwarding", "1") == 0);
    expect(&in, XDP_TX, &exp, "forwarding on the ingress device only", 30);
    CHECK(put_sysctl("/proc/sys/net/ipv4/conf/rx0/forwarding", "0") == 0);
    CHECK(lo_forwarding(1) == 0);
    expect(&in, XDP_TX, &exp, "lo's forwarding on again", 30);

    /* the entry's lifetime, and its removal */
    CHECK(publish(&C44, 20) == 0);
    expect(&in, XDP_TX, &exp, "an entry alive for 20 ms", 30);
    struct timespec ts = {0, 40 * 1000000};
    nanosleep(&ts, NULL);
    expect(&in, XDP_PASS, NULL, "the same, 40 ms later", 30);
    peer_data(&in, &C44, 30, 0, 6);
    expect(&in, XDP_PASS, NULL, "the peer's datagram for the expired entry", 30);
    CHECK(publish(&C44, 60000) == 0);
    unpublish(&C44);
    channel_data(&in, &C44, 30, 0, 0, 0, 6);
    expect(&in, XDP_PASS, NULL, "a removed channel", 30);
    peer_data(&in, &C44, 30, 0, 6);
    expect(&in, XDP_PASS, NULL, "a removed channel, the peer's side", 30);
}

/* The quotas: an allocation's bucket holds one second's worth (1000 bytes
 * at 1000 B/s), so ten 100-byte datagrams go and the eleventh is dropped;
 * another allocation has its own; the server's total bucket holds for all. */
static void test_quotas(void)
{
    setup("1000", "0");
    frame in, out;
    chan a = C44, b = C44;
    a.alloc = skd_xdp_quota_add(xdp);
    b.alloc = skd_xdp_quota_add(xdp);
    b.client = "192.0.2.7:40001";
    b.relay = "198.51.100.1:50001";
    b.peer = "192.0.2.9:6001";
    CHECK(a.alloc != 0 && b.alloc != 0 && a.alloc != b.alloc);
    CHECK(publish(&a, 60000) == 0);
    CHECK(publish(&b, 60000) == 0);
    uint64_t over0 = counter(SKX_RELAY_OVER_QUOTA), bytes0 = counter(SKX_RELAY_BYTES) + counter(SKX_RELAY_BYTES_TO_CLIENT);
    int sent = 0;
    channel_data(&in, &a, 100, 0, 0, 0, 1);
    for (int i = 0; i < 12; i++)
        sent += run(&in, &out) == XDP_TX;
    CHECK_EQ(sent, 10);
    CHECK_EQ(counter(SKX_RELAY_OVER_QUOTA) - over0, 2);
    /* the other direction takes from the same bucket */
    peer_data(&in, &a, 100, 0, 1);
    CHECK_EQ(run(&in, &out), XDP_DROP);
    /* the other allocation: its own */
    sent = 0;
    peer_data(&in, &b, 100, 0, 1);
    for (int i = 0; i < 12; i++)
        sent += run(&in, &out) == XDP_TX;
    CHECK_EQ(sent, 10);
    CHECK_EQ(counter(SKX_RELAY_BYTES) + counter(SKX_RELAY_BYTES_TO_CLIENT) - bytes0, 2000);
    /* a bucket removed (the allocation gone): the sockets decide */
    skd_xdp_quota_del(xdp, b.alloc);
    CHECK_EQ(run(&in, &out), XDP_PASS);

    setup("0", "1500");
    a.alloc = b.alloc = 0;
    CHECK(publish(&a, 60000) == 0);
    CHECK(publish(&b, 60000) == 0);
    sent = 0;
    for (int i = 0; i < 10; i++) {
        channel_data(&in, (i & 1) ? &b : &a, 100, 0, 0, 0, 1);
        sent += run(&in, &out) == XDP_TX;
    }
    CHECK_EQ(sent, 10);
    for (int i = 0; i < 10; i++) {
        peer_data(&in, (i & 1) ? &b : &a, 100, 0, 1);
        sent += run(&in, &out) == XDP_TX;
    }
    CHECK_EQ(sent, 15); /* 1500 bytes for the whole server */
}

/* What the server merges into its metrics. */
static void test_counters(void)
{
    setup("0", "0");
    frame in, out;
    CHECK(publish(&C66, 60000) == 0);
    channel_data(&in, &C66, 10, 2, 0, 0, 1);
    CHECK_EQ(run(&in, &out), XDP_TX);
    peer_data(&in, &C66, 20, 0, 1);
    CHECK_EQ(run(&in, &out), XDP_TX);
    peer_data(&in, &C66, 20, F_CSUM_BAD, 1);
    CHECK_EQ(run(&in, &out), XDP_PASS);
    CHECK_EQ(counter(SKX_RELAY_TO_PEER), 1);
    CHECK_EQ(counter(SKX_RELAY_TO_CLIENT), 1);
    CHECK_EQ(counter(SKX_RELAY_BYTES) + counter(SKX_RELAY_BYTES_TO_CLIENT), 30);
    CHECK_EQ(counter(SKX_RELAY_PASSED), 1);
    skd_stats st;
    memset(&st, 0, sizeof(st));
    skd_xdp_add_stats(xdp, &st);
    CHECK_EQ(st.xdp_relayed, 2);
    CHECK_EQ(st.turn_to_peer, 1);
    CHECK_EQ(st.turn_to_client, 1);

    /* the program's own time (printed, never asserted: the bench reports it) */
    const chan *cs[] = {&C44, &C66};
    for (int k = 0; k < 2; k++) {
        CHECK(publish(cs[k], 60000) == 0);
        channel_data(&in, cs[k], 100, 0, 0, 0, 1);
        int v = -1;
        double ns = xdp_prog_ns(prog, &in, if_rx0, 20000, &v);
        CHECK_EQ(v, XDP_TX);
        if (ns >= 0)
            fprintf(stderr, "     program time: %.0f ns per 100-byte ChannelData relayed (%s)\n", ns,
                    k ? "IPv6" : "IPv4");
    }
}

int main(void)
{
    if (geteuid() != 0) {
        fprintf(stderr, "skip: loading BPF and a network namespace need root\n");
        return 77;
    }
    if (getenv("XDP_TEST_VERBOSE"))
        skd_log_level = SKD_LOG_DEBUG;
    if (lab() != 0) {
        fprintf(stderr, "cannot set up the namespace\n");
        return 1;
    }
    /* the quotas' clock and the per-CPU counters: one CPU */
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(0, &one);
    sched_setaffinity(0, sizeof(one), &one);
    RUN(test_shapes);
    RUN(test_checksums);
    RUN(test_lengths);
    RUN(test_routes);
    RUN(test_quotas);
    RUN(test_counters);
    skd_xdp_close(xdp);
    skd_config_free(&cfg);
    return t_failures ? 1 : 0;
}
