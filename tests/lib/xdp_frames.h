/*
 * xdp_frames.h - Ethernet frames for the XDP tests (xdp_test.c,
 * xdp_relay_test.c): IPv4 or IPv6 with UDP, the checksums computed here
 * (RFC 768, RFC 791, RFC 8200 8.1), and the variations the program must
 * tell apart (VLAN, options, fragments, extension headers, checksum
 * absent, seeded, wrong); and the program loaded as stunkitd loads it, and
 * timed per frame.
 */
#ifndef STUNKIT_TESTS_XDP_FRAMES_H
#define STUNKIT_TESTS_XDP_FRAMES_H

#include <bpf/bpf.h>
#include <linux/bpf.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "stunkit/stunkit.h"
#include "test.h"
#include "xdp.h"

enum {
    F_VLAN = 1 << 0,         /* an 802.1Q tag */
    F_IPOPT = 1 << 1,        /* IPv4 options (a NOP word) */
    F_FRAG = 1 << 2,         /* IPv4 more-fragments */
    F_HBH = 1 << 3,          /* IPv6 hop-by-hop header */
    F_CSUM_ZERO = 1 << 4,    /* UDP checksum 0 */
    F_CSUM_PARTIAL = 1 << 5, /* the pseudo-header seed (CHECKSUM_PARTIAL from a local socket) */
    F_CSUM_BAD = 1 << 6,
    F_IPCSUM_BAD = 1 << 7,
    F_BCAST = 1 << 8,        /* broadcast destination MAC */
    F_TCP = 1 << 9,          /* protocol TCP instead of UDP */
};

typedef struct frame {
    uint8_t b[4096]; /* up to the largest relayed datagram and more */
    size_t len;
} frame;

static const uint8_t MAC_SERVER[6] = {0x02, 0, 0, 0, 0, 1}, MAC_CLIENT[6] = {0x02, 0, 0, 0, 0, 2};

static void put16(uint8_t *p, unsigned v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static unsigned get16(const uint8_t *p)
{
    return (unsigned)p[0] << 8 | p[1];
}

static uint32_t sum16(const uint8_t *p, size_t n, uint32_t s)
{
    for (size_t i = 0; i + 1 < n; i += 2)
        s += get16(p + i);
    if (n & 1)
        s += (uint32_t)p[n - 1] << 8;
    return s;
}

static uint16_t fold(uint32_t s)
{
    while (s >> 16)
        s = (s & 0xffff) + (s >> 16);
    return (uint16_t)s;
}

/* The pseudo header's sum (RFC 768, RFC 8200 8.1). */
static uint32_t pseudo(const stunkit_addr *src, const stunkit_addr *dst, size_t udp_len, int proto)
{
    size_t n = src->family == STUNKIT_AF_INET ? 4 : 16;
    uint32_t s = sum16(src->ip, n, 0);
    s = sum16(dst->ip, n, s);
    return s + (uint32_t)proto + (uint32_t)udp_len;
}

static void build(frame *f, const char *src, const char *dst, const uint8_t *pl, size_t n, unsigned flags)
{
    stunkit_addr s, d;
    CHECK(stunkit_addr_parse(src, 0, &s) == 0);
    CHECK(stunkit_addr_parse(dst, 0, &d) == 0);
    int v6 = s.family == STUNKIT_AF_INET6;
    uint8_t *p = f->b;
    memset(f->b, 0, sizeof(f->b));
    memcpy(p, (flags & F_BCAST) ? (const uint8_t *)"\xff\xff\xff\xff\xff\xff" : MAC_SERVER, 6);
    memcpy(p + 6, MAC_CLIENT, 6);
    p += 12;
    if (flags & F_VLAN) {
        put16(p, 0x8100);
        put16(p + 2, 7);
        p += 4;
    }
    put16(p, v6 ? 0x86DD : 0x0800);
    p += 2;
    uint8_t *ip = p;
    size_t ihl = v6 ? 40 : ((flags & F_IPOPT) ? 24 : 20), ext = (v6 && (flags & F_HBH)) ? 8 : 0;
    int proto = (flags & F_TCP) ? 6 : 17;
    uint8_t *udp = ip + ihl + ext;
    size_t ulen = 8 + n;
    if (v6) {
        ip[0] = 0x60;
        put16(ip + 4, (unsigned)(ulen + ext));
        ip[6] = ext ? 0 : (uint8_t)proto;
        ip[7] = 64;
        memcpy(ip + 8, s.ip, 16);
        memcpy(ip + 24, d.ip, 16);
        if (ext) {
            udp[-8] = (uint8_t)proto; /* hop-by-hop: next header, length 0, PadN */
            udp[-6] = 1;
            udp[-5] = 4;
        }
    } else {
        ip[0] = (uint8_t)(0x40 | ihl / 4);
        put16(ip + 2, (unsigned)(ihl + ulen));
        put16(ip + 6, (flags & F_FRAG) ? 0x2000 : 0x4000);
        ip[8] = 64;
        ip[9] = (uint8_t)proto;
        memcpy(ip + 12, s.ip, 4);
        memcpy(ip + 16, d.ip, 4);
        if (flags & F_IPOPT)
            memset(ip + 20, 1, 4); /* NOPs */
        put16(ip + 10, (uint16_t)~fold(sum16(ip, ihl, 0)) ^ ((flags & F_IPCSUM_BAD) ? 0x5a5a : 0));
    }
    put16(udp, s.port);
    put16(udp + 2, d.port);
    put16(udp + 4, (unsigned)ulen);
    memcpy(udp + 8, pl, n);
    uint32_t ps = pseudo(&s, &d, ulen, 17);
    uint16_t c = (uint16_t)~fold(sum16(udp, ulen, ps));
    if (c == 0)
        c = 0xffff;
    if (flags & F_CSUM_ZERO)
        c = 0;
    if (flags & F_CSUM_PARTIAL)
        c = fold(ps);
    if (flags & F_CSUM_BAD)
        c ^= 0x1234;
    put16(udp + 6, c);
    f->len = (size_t)(udp + ulen - f->b);
}

/* stunkitd's program for the command line argv (argv[0] included), with its
 * listening addresses entered, as stunkitd loads it; *old is closed and cfg
 * reparsed first. Exits when it cannot load. */
static skd_xdp *xdp_test_load(skd_xdp *old, skd_config *cfg, skd_handler_cfg *h, skd_sock_spec *specs, int cap,
                              int *n_specs, int argc, char **argv)
{
    if (old)
        skd_xdp_close(old);
    skd_config_free(cfg);
    memset(cfg, 0, sizeof(*cfg));
    CHECK(skd_config_parse(cfg, argc, argv) == 0);
    *n_specs = skd_config_sockets(cfg, specs, cap, h);
    h->auth = cfg->auth;
    char err[256];
    skd_xdp *x = skd_xdp_load(cfg, h, err, sizeof(err));
    if (!x) {
        fprintf(stderr, "cannot load: %s\n", err);
        exit(1);
    }
    CHECK(skd_xdp_add_listeners(x, specs, *n_specs, h, NULL, err, sizeof(err)) > 0);
    return x;
}

/* The program's own time per frame, ns: n runs of one fresh copy each
 * (BPF_PROG_TEST_RUN with repeat > 1 runs the program again on the frame it
 * has just rewritten, so it would time the answer, not the request), timed
 * by the kernel's run-time statistics (on while the fd is open); the
 * verdict of the last run in *verdict. -1 when the statistics are off. */
static double xdp_prog_ns(int prog, const frame *in, unsigned ifindex, int n, int *verdict)
{
    int stats = bpf_enable_stats(BPF_STATS_RUN_TIME);
    if (stats < 0)
        return -1;
    struct bpf_prog_info a, b;
    uint32_t len = sizeof(a);
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    bpf_obj_get_info_by_fd(prog, &a, &len);
    static frame out;
    struct xdp_md ctx = {.data_end = (uint32_t)in->len, .ingress_ifindex = ifindex};
    for (int i = 0; i < n; i++) {
        LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = in->b, .data_size_in = (uint32_t)in->len, .data_out = out.b,
                    .data_size_out = sizeof(out.b), .repeat = 1);
        if (ifindex) {
            o.ctx_in = &ctx;
            o.ctx_size_in = sizeof(ctx);
        }
        if (bpf_prog_test_run_opts(prog, &o) != 0)
            break;
        *verdict = (int)o.retval;
    }
    len = sizeof(b);
    bpf_obj_get_info_by_fd(prog, &b, &len);
    close(stats);
    if (b.run_cnt <= a.run_cnt)
        return -1;
    return (double)(b.run_time_ns - a.run_time_ns) / (double)(b.run_cnt - a.run_cnt);
}

#endif
