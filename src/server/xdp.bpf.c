/*
 * xdp.bpf.c - stunkitd's XDP program: plain Binding requests answered in the
 * driver, before any socket (stunkitd --xdp IFACE; loaded by xdp.c).
 *
 * A frame enters at stunkit_xdp() below. It is answered in place (XDP_TX)
 * only when the answer is certain and byte for byte what the socket path
 * (handler.c, binding.c) would send; it is dropped only where the socket
 * path drops it too; everything else goes up untouched (XDP_PASS):
 *
 *   not Ethernet IPv4/IPv6 + UDP, VLAN tags, IP options,
 *   IPv6 extension headers, fragments, lengths that disagree
 *   with the frame, broadcast/martian addresses            -> PASS
 *   not a listening UDP address (TLS/DTLS ports included)  -> PASS
 *   first byte > 3 or shorter than 20 (RFC 7983): not STUN -> DROP
 *     (ChannelData 0x40-0x7F and Send indications, with TURN on -> PASS)
 *   the source's general budget spent                      -> DROP
 *   header length not the datagram's, or not a multiple of 4 -> DROP
 *   responses and indications; methods not served         -> DROP
 *   authentication on, TURN, RFC 3489 (no magic cookie),
 *   any comprehension-required attribute (CHANGE-REQUEST,
 *   RESPONSE-PORT, PADDING, USERNAME, MESSAGE-INTEGRITY,
 *   unknown ones: 420), attributes that do not frame (400),
 *   longer than 512 bytes, UDP checksum not proven         -> PASS
 *   FINGERPRINT wrong                                      -> DROP
 *   answer more than twice the request, strict budget spent -> DROP
 *   otherwise: the Binding success response                -> TX
 *
 * RFC 8489 6.3.1: a Binding request is answered with XOR-MAPPED-ADDRESS
 * (the source transport address); RFC 5780 6.1: "The server MUST include
 * both MAPPED-ADDRESS and XOR-MAPPED-ADDRESS", "MUST add a RESPONSE-ORIGIN"
 * and "MUST add an OTHER-ADDRESS" (fixed per listening address: a request
 * answered here has no CHANGE-REQUEST); then SOFTWARE if configured, and
 * FINGERPRINT when the request had one (RFC 8489 7.3).
 *
 * The answer is built in a per-CPU scratch buffer and stored over the
 * request. It is usually longer: the frame grows at the head
 * (bpf_xdp_adjust_head), because veth's small socket buffers have almost
 * no tailroom while every driver leaves headroom for XDP.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>

#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "xdp_abi.h"

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the FINGERPRINT tables (slicing by 8) are laid out for a little-endian machine"
#endif

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Set by the loader before the program is loaded (read-only afterwards, so
 * the verifier knows them and prunes what is off). */
const volatile __u8 cfg_turn;             /* TURN on: its data and Send indications go up */
const volatile __u16 cfg_other_method;    /* another method served (the rendezvous), or 0 */
const volatile __u8 cfg_ttl = 64, cfg_hop_limit = 64;
const volatile __u32 cfg_software_len;    /* 0: no SOFTWARE */
const volatile __u8 cfg_software[SKX_MAX_SOFTWARE + 4];
/* Budgets in nanotokens (1e9 per request): refill per millisecond, burst.
 * A rate of 0 is no limit (as --rate 0). */
const volatile __u64 cfg_rate, cfg_burst, cfg_strict_rate, cfg_strict_burst;
const volatile __u32 crc_tab[8][256]; /* CRC-32 (ISO HDLC), slicing by 8 */
/* TURN channel offload: on, and the bandwidth quotas in bytes per second
 * (0: none) of an allocation and of the whole server. */
const volatile __u8 cfg_relay;
const volatile __u64 cfg_alloc_bps, cfg_total_bps;

/* Counters: a 128-byte block per CPU, read by stunkitd through the mmap'd
 * .bss (no system call, works after --user dropped privileges). */
__u64 counters[SKX_MAX_CPUS][16];
/* Answer Binding here: authentication is off (stunkitd flips it when
 * SIGHUP turns credentials on or off). */
__u32 answer_on;

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 256);
    __type(key, struct skx_listen_key);
    __type(value, struct skx_listen);
} listeners SEC(".maps");

/* The per-source budgets: an LRU table per CPU, as each UDP worker keeps its
 * own (ratelimit.c); max_entries is --rate-table. */
struct {
    __uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
    __uint(max_entries, 65536);
    __type(key, struct skx_src_key);
    __type(value, struct skx_bucket);
} budgets SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct skx_scratch);
} scratch SEC(".maps");

/* TURN channels stunkitd publishes (turn_relay.c through xdp.c); sized by the
 * loader from the allocation and channel limits. */
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 65536);
    __type(key, struct skx_chan_key);
    __type(value, struct skx_hop);
} chans SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 65536);
    __type(key, struct skx_peer_key);
    __type(value, struct skx_hop);
} peers SEC(".maps");

/* Bandwidth buckets: per allocation (entered by stunkitd when a quota is
 * configured), and the server's one. */
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 16384);
    __type(key, __u32);
    __type(value, struct skx_quota);
} quotas SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct skx_quota);
} total SEC(".maps");

/* The interfaces the program is attached to: a relayed datagram is
 * redirected only to one of them (they take XDP frames). */
struct {
    __uint(type, BPF_MAP_TYPE_DEVMAP_HASH);
    __uint(max_entries, 8);
    __type(key, __u32);
    __type(value, __u32);
} tx_ports SEC(".maps");

#define MAGIC_COOKIE 0x2112A442u
#define ATTR_MAPPED_ADDRESS 0x0001
#define ATTR_XOR_MAPPED_ADDRESS 0x0020
#define ATTR_SOFTWARE 0x8022
#define ATTR_FINGERPRINT 0x8028
#define ATTR_RESPONSE_ORIGIN 0x802B
#define ATTR_OTHER_ADDRESS 0x802C
#define FINGERPRINT_XOR 0x5354554eu
#define MAX_ATTRS 32

static __always_inline void count(int c)
{
    __u32 cpu = bpf_get_smp_processor_id();
    if (cpu < SKX_MAX_CPUS - 1)
        counters[cpu][c]++;
    else
        __sync_fetch_and_add(&counters[SKX_MAX_CPUS - 1][c], 1);
}

static __always_inline int pass(void)
{
    count(SKX_PASSED);
    return XDP_PASS;
}

static __always_inline int drop(int c)
{
    count(c);
    return XDP_DROP;
}

/* ---- the budgets (ratelimit.c's token buckets, in integers) ---- */

static __always_inline __u64 refill(__u64 tokens, __u64 rate, __u64 burst, __u64 elapsed_ms)
{
    tokens += rate * elapsed_ms;
    return tokens > burst ? burst : tokens;
}

/* One token from the general budget (strict_only 0) or from the strict one
 * (1). Returns 1 allowed, 0 limited. A source new to this CPU starts full. */
static __always_inline int budget(const struct skx_src_key *k, __u64 now_ms, int strict_only)
{
    int general_on = !strict_only && cfg_rate;
    int strict_on = strict_only && cfg_strict_rate;
    if (!general_on && !strict_on)
        return 1;
    struct skx_bucket *b = bpf_map_lookup_elem(&budgets, k);
    if (!b) {
        struct skx_bucket fresh = {cfg_burst, cfg_strict_burst, now_ms};
        bpf_map_update_elem(&budgets, k, &fresh, BPF_ANY);
        b = bpf_map_lookup_elem(&budgets, k);
        if (!b)
            return 1;
    } else if (b->last_ms == 0) { /* created on another CPU: this CPU's copy is zero */
        b->tokens = cfg_burst;
        b->strict = cfg_strict_burst;
    } else {
        __u64 elapsed = now_ms - b->last_ms;
        if (now_ms < b->last_ms)
            elapsed = 0;
        if (elapsed > 3600000)
            elapsed = 3600000;
        b->tokens = refill(b->tokens, cfg_rate, cfg_burst, elapsed);
        b->strict = refill(b->strict, cfg_strict_rate, cfg_strict_burst, elapsed);
    }
    b->last_ms = now_ms;
    if ((general_on && b->tokens < 1000000000ull) || (strict_on && b->strict < 1000000000ull))
        return 0;
    if (general_on)
        b->tokens -= 1000000000ull;
    if (strict_on)
        b->strict -= 1000000000ull;
    return 1;
}

/* ---- checksums ---- */

static __always_inline __u16 fold(__u64 s)
{
    s = (s & 0xffffffffull) + (s >> 32);
    s = (s & 0xffff) + (s >> 16);
    s = (s & 0xffff) + (s >> 16);
    s = (s & 0xffff) + (s >> 16);
    return (__u16)s;
}

/* RFC 8489 14.7: CRC-32 of the message up to the FINGERPRINT attribute,
 * XOR 0x5354554e. n is a multiple of 4 and at most SKX_MAX_MSG. */
static __always_inline __u32 crc32(const __u8 *b, __u32 n)
{
    __u32 c = 0xffffffffu;
    for (__u32 i = 0; i < SKX_MAX_MSG / 8; i++) {
        __u32 o = i * 8;
        if (o + 8 > n)
            break;
        __u32 lo = c ^ *(const __u32 *)(b + o), hi = *(const __u32 *)(b + o + 4);
        c = crc_tab[7][lo & 0xff] ^ crc_tab[6][(lo >> 8) & 0xff] ^ crc_tab[5][(lo >> 16) & 0xff] ^
            crc_tab[4][lo >> 24] ^ crc_tab[3][hi & 0xff] ^ crc_tab[2][(hi >> 8) & 0xff] ^
            crc_tab[1][(hi >> 16) & 0xff] ^ crc_tab[0][hi >> 24];
    }
    if (n & 4) {
        __u32 o = (n & ~7u) & (SKX_MAX_MSG - 1);
        __u32 lo = c ^ *(const __u32 *)(b + o);
        c = crc_tab[3][lo & 0xff] ^ crc_tab[2][(lo >> 8) & 0xff] ^ crc_tab[1][(lo >> 16) & 0xff] ^
            crc_tab[0][lo >> 24];
    }
    return ~c;
}

/* ---- the answer ---- */

struct pkt {
    __u8 family; /* 4 or 6 */
    __u8 smac[6], dmac[6];
    __u16 sport, dport; /* network order */
    __u32 src[4], dst[4]; /* network order; IPv4 in [0] */
    __u32 msg_off, msg_len; /* the STUN message in the frame */
    __u16 udp_check;
};

static __always_inline void put32(__u8 *o, __u32 w, __u32 v)
{
    *(__u32 *)(o + (w & (SKX_MAX_MSG - 1))) = v;
}

/* An address attribute (RFC 8489 14.1/14.2): family, port, IP; XORed with
 * the cookie and transaction ID when x is set. Returns the next offset. */
static __always_inline __u32 put_addr(__u8 *o, __u32 w, __u16 type, __u8 family, __u16 port, const __u32 *ip,
                                      const __u32 *x)
{
    __u32 len = family == 4 ? 8 : 20;
    put32(o, w, bpf_htonl((__u32)type << 16 | len));
    if (x)
        port ^= MAGIC_COOKIE >> 16;
    put32(o, w + 4, bpf_htonl((family == 4 ? 1u : 2u) << 16 | port));
    put32(o, w + 8, ip[0] ^ (x ? x[0] : 0));
    if (family == 6) {
        put32(o, w + 12, ip[1] ^ (x ? x[1] : 0));
        put32(o, w + 16, ip[2] ^ (x ? x[2] : 0));
        put32(o, w + 20, ip[3] ^ (x ? x[3] : 0));
    }
    return w + 4 + len;
}

static __always_inline __u32 put_skx_addr(__u8 *o, __u32 w, __u16 type, const struct skx_addr *a)
{
    __u32 ip[4];
    __builtin_memcpy(ip, a->ip, 16);
    return put_addr(o, w, type, a->family, a->port, ip, 0);
}

/* The Binding success response at out[SKX_STUN_OFF...]; returns its length. */
static __always_inline __u32 build_answer(struct skx_scratch *s, const struct pkt *pk, const struct skx_listen *l,
                                          int fingerprint)
{
    __u8 *o = s->out;
    __u32 x[4]; /* the XOR key: magic cookie, then the transaction ID */
    x[0] = bpf_htonl(MAGIC_COOKIE);
    x[1] = *(__u32 *)(s->req + 8);
    x[2] = *(__u32 *)(s->req + 12);
    x[3] = *(__u32 *)(s->req + 16);
    __u32 w = SKX_STUN_OFF;
    put32(o, w + 4, x[0]);
    put32(o, w + 8, x[1]);
    put32(o, w + 12, x[2]);
    put32(o, w + 16, x[3]);
    w += 20;
    __u16 port = bpf_ntohs(pk->sport);
    w = put_addr(o, w, ATTR_XOR_MAPPED_ADDRESS, pk->family, port, pk->src, x);
    if (l->rfc5780) {
        w = put_addr(o, w, ATTR_MAPPED_ADDRESS, pk->family, port, pk->src, 0);
        w = put_skx_addr(o, w, ATTR_RESPONSE_ORIGIN, &l->origin);
        w = put_skx_addr(o, w, ATTR_OTHER_ADDRESS, &l->other);
    }
    if (cfg_software_len) {
        put32(o, w, bpf_htonl((__u32)ATTR_SOFTWARE << 16 | cfg_software_len));
        w += 4;
        for (__u32 i = 0; i < SKX_MAX_SOFTWARE; i += 4) {
            if (i >= cfg_software_len)
                break;
            put32(o, w + i, *(const volatile __u32 *)(cfg_software + i)); /* zero padded by the loader; volatile: set after compiling */
        }
        w += (cfg_software_len + 3) & ~3u;
    }
    __u32 len = w - SKX_STUN_OFF + (fingerprint ? 8 : 0);
    put32(o, SKX_STUN_OFF, bpf_htonl(0x0101u << 16 | (len - 20)));
    if (fingerprint) {
        put32(o, w, bpf_htonl((__u32)ATTR_FINGERPRINT << 16 | 4));
        __u32 crc = crc32(o + SKX_STUN_OFF, (w - SKX_STUN_OFF) & (SKX_MAX_MSG - 1));
        put32(o, w + 4, bpf_htonl(crc ^ FINGERPRINT_XOR));
    }
    return len;
}

/* The request's UDP checksum: valid, absent (IPv4), or the pseudo-header
 * seed a local sender left for offload (CHECKSUM_PARTIAL: a datagram from a
 * socket on this machine through veth, never on a wire; the kernel trusts
 * it too). Anything else goes to the kernel, which drops what is bad. */
static __always_inline int udp_checksum_ok(struct skx_scratch *s, const struct pkt *pk, __u32 udp_len,
                                           __u64 pseudo)
{
    if (pk->udp_check == 0)
        return pk->family == 4;
    if (pk->udp_check == fold(pseudo))
        return 1;
    __u64 sum = pseudo;
    sum += (__u32)pk->sport | (__u32)pk->dport << 16;
    sum += (__u32)bpf_htons((__u16)udp_len) | (__u32)pk->udp_check << 16;
    __u32 n = pk->msg_len;
    if (n > SKX_MAX_MSG)
        return 0;
    sum += (__u32)bpf_csum_diff(0, 0, (__be32 *)s->req, n, 0);
    return fold(sum) == 0xffff;
}

static __always_inline __u64 pseudo_sum(const __u32 *src, const __u32 *dst, __u8 family, __u32 udp_len)
{
    __u64 s = (__u64)src[0] + dst[0];
    if (family == 6) {
        s += (__u64)src[1] + src[2] + src[3] + dst[1] + dst[2] + dst[3];
        s += bpf_htonl(udp_len) + bpf_htonl(IPPROTO_UDP);
    } else {
        s += bpf_htons((__u16)udp_len) + bpf_htons(IPPROTO_UDP);
    }
    return s;
}

/* Ethernet, IP and UDP headers in front of the answer; returns where the
 * frame starts in out[]. */
static __always_inline __u32 build_headers(struct skx_scratch *s, const struct pkt *pk, __u32 stun_len)
{
    __u8 *o = s->out;
    __u32 udp_len = 8 + stun_len;
    __u32 start = pk->family == 4 ? SKX_STUN_OFF - 42 : SKX_STUN_OFF - 62;
    __u8 *e = o + start;
    __builtin_memcpy(e, pk->smac, 6); /* back to where it came from */
    __builtin_memcpy(e + 6, pk->dmac, 6);
    struct udphdr *u = (struct udphdr *)(o + SKX_STUN_OFF - 8);
    u->source = pk->dport;
    u->dest = pk->sport;
    u->len = bpf_htons((__u16)udp_len);
    u->check = 0;
    __u64 sum;
    if (pk->family == 4) {
        *(__u16 *)(e + 12) = bpf_htons(ETH_P_IP);
        struct iphdr *ip = (struct iphdr *)(e + 14);
        /* as the kernel sends from an unconnected UDP socket: DF (path MTU
         * discovery), ID 0, TOS 0, the default TTL */
        ip->version = 4;
        ip->ihl = 5;
        ip->tos = 0;
        ip->tot_len = bpf_htons((__u16)(20 + udp_len));
        ip->id = 0;
        ip->frag_off = bpf_htons(0x4000);
        ip->ttl = cfg_ttl;
        ip->protocol = IPPROTO_UDP;
        ip->check = 0;
        ip->saddr = pk->dst[0];
        ip->daddr = pk->src[0];
        __u64 h = 0;
        const __u16 *hw = (const __u16 *)ip;
        for (int i = 0; i < 10; i++)
            h += hw[i];
        ip->check = (__u16)~fold(h);
        sum = pseudo_sum(pk->dst, pk->src, 4, udp_len);
    } else {
        *(__u16 *)(e + 12) = bpf_htons(ETH_P_IPV6);
        struct ipv6hdr *ip6 = (struct ipv6hdr *)(e + 14);
        *(__u32 *)ip6 = bpf_htonl(6u << 28); /* traffic class and flow label 0 */
        ip6->payload_len = bpf_htons((__u16)udp_len);
        ip6->nexthdr = IPPROTO_UDP;
        ip6->hop_limit = cfg_hop_limit;
        __builtin_memcpy(&ip6->saddr, pk->dst, 16);
        __builtin_memcpy(&ip6->daddr, pk->src, 16);
        sum = pseudo_sum(pk->dst, pk->src, 6, udp_len);
    }
    if (udp_len <= SKX_MAX_MSG)
        sum += (__u32)bpf_csum_diff(0, 0, (__be32 *)(o + SKX_STUN_OFF - 8), udp_len, 0);
    __u16 c = (__u16)~fold(sum);
    u->check = c ? c : 0xffff; /* RFC 768: a computed 0 is sent as all ones */
    return start;
}

/* ---- the frame ---- */

/* Fills pk from the Ethernet/IP/UDP headers; 0 to pass the frame. */
static __always_inline int parse(struct xdp_md *ctx, struct pkt *pk)
{
    void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
    struct ethhdr *eth = data;
    if ((void *)(eth + 1) > end)
        return 0;
    /* group addresses either way: not a conversation to answer here */
    if ((eth->h_dest[0] & 1) || (eth->h_source[0] & 1))
        return 0;
    __builtin_memcpy(pk->smac, eth->h_source, 6);
    __builtin_memcpy(pk->dmac, eth->h_dest, 6);
    __u64 frame = (__u64)(end - data);
    struct udphdr *udp;
    __u32 udp_len;
    if (eth->h_proto == bpf_htons(ETH_P_IP)) {
        struct iphdr *ip = (void *)(eth + 1);
        if ((void *)(ip + 1) > end)
            return 0;
        /* options, fragments, or a length that is not the frame's
         * (Ethernet padding, truncation): the kernel's business */
        if (ip->version != 4 || ip->ihl != 5 || ip->protocol != IPPROTO_UDP || (ip->frag_off & bpf_htons(0x3fff)))
            return 0;
        __u32 tot = bpf_ntohs(ip->tot_len);
        if (tot != frame - 14 || tot < 28)
            return 0;
        __u64 h = 0;
        const __u16 *hw = (const __u16 *)ip;
        for (int i = 0; i < 10; i++)
            h += hw[i];
        if (fold(h) != 0xffff)
            return 0;
        __u8 first = (__u8)(bpf_ntohl(ip->saddr) >> 24);
        /* martians the kernel drops: 0/8, loopback, multicast, class E */
        if (first == 0 || first == 127 || first >= 224)
            return 0;
        pk->family = 4;
        pk->src[0] = ip->saddr;
        pk->dst[0] = ip->daddr;
        udp = (void *)(ip + 1);
        udp_len = tot - 20;
        pk->msg_off = 14 + 20 + 8;
    } else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
        struct ipv6hdr *ip6 = (void *)(eth + 1);
        if ((void *)(ip6 + 1) > end)
            return 0;
        if (ip6->version != 6 || ip6->nexthdr != IPPROTO_UDP)
            return 0;
        udp_len = bpf_ntohs(ip6->payload_len);
        if (udp_len != frame - 54 || udp_len < 8)
            return 0;
        __builtin_memcpy(pk->src, &ip6->saddr, 16);
        __builtin_memcpy(pk->dst, &ip6->daddr, 16);
        __u8 first = (__u8)pk->src[0];
        /* multicast, unspecified, loopback, IPv4-mapped sources */
        if (first == 0xff || (pk->src[0] == 0 && pk->src[1] == 0 &&
                              (pk->src[2] == 0 || pk->src[2] == bpf_htonl(0xffff))))
            return 0;
        pk->family = 6;
        udp = (void *)(ip6 + 1);
        pk->msg_off = 14 + 40 + 8;
    } else {
        return 0; /* ARP, VLAN tags, anything else */
    }
    if ((void *)(udp + 1) > end)
        return 0;
    if (bpf_ntohs(udp->len) != udp_len)
        return 0;
    pk->sport = udp->source;
    pk->dport = udp->dest;
    pk->udp_check = udp->check;
    pk->msg_len = udp_len - 8;
    return 1;
}

/* ---- TURN channels (RFC 8656 11, 12) ----
 *
 *   client -> peer  ChannelData to a listening address whose 5-tuple and
 *                   channel are in `chans`: the 4-byte header (and any
 *                   padding) cut, sent from the relayed address to the peer
 *   peer -> client  a datagram to a relayed address from a peer in
 *                   `peers`: the header put in front, sent from the
 *                   listening address to the client
 *
 * Only while the entry lives (stunkitd's channel, permission and allocation
 * lifetimes, the smallest) and only when the frame's checksum is proven, the
 * route is known (neighbour resolved, MTU fits) and leaves through an
 * interface the program is attached to; anything else goes up to the relay
 * sockets, which decide as without XDP. */

static __always_inline int relay_pass(void)
{
    count(SKX_RELAY_PASSED);
    return XDP_PASS;
}

/* The ones'-complement sum (unfolded, in the frame's byte order) of frame
 * bytes [off, off + len), off even from the UDP header; an odd last byte
 * counts as the high half of its word. -1 when the frame is shorter. */
#define SUM_PIECE(k)                                                                                                   \
    if (len & (k)) {                                                                                                   \
        __u8 *p = data + off;                                                                                          \
        if ((void *)(p + (k)) > end)                                                                                   \
            return -1;                                                                                                 \
        sum += (__u32)bpf_csum_diff(0, 0, (__be32 *)p, (k), 0);                                                        \
        off += (k);                                                                                                    \
    }
static __always_inline long payload_sum(struct xdp_md *ctx, __u32 off, __u32 len, __u64 *out)
{
    void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
    __u64 sum = 0;
    off &= 127;
    len &= SKX_MAX_RELAY;
    if (len & 1024) {
        __u8 *p = data + off;
        if ((void *)(p + 1024) > end)
            return -1;
        sum += (__u32)bpf_csum_diff(0, 0, (__be32 *)p, 512, 0);
        sum += (__u32)bpf_csum_diff(0, 0, (__be32 *)(p + 512), 512, 0);
        off += 1024;
    }
    SUM_PIECE(512)
    SUM_PIECE(256)
    SUM_PIECE(128)
    SUM_PIECE(64)
    SUM_PIECE(32)
    SUM_PIECE(16)
    SUM_PIECE(8)
    SUM_PIECE(4)
    __u8 *p = data + off;
    if (len & 2) {
        if ((void *)(p + 2) > end)
            return -1;
        sum += *(__u16 *)p;
        p += 2;
    }
    if (len & 1) {
        if ((void *)(p + 1) > end)
            return -1;
        sum += *p; /* little-endian: the byte at an even offset is the word's first */
    }
    *out = sum;
    return 0;
}

/* Takes len bytes from a bucket of rate bytes per second; 1 when allowed. */
static __always_inline int quota_take(struct skx_quota *q, __u64 rate, __u64 now, __u64 len)
{
    __u64 cap = rate * 1000000000ull, need = len * 1000000000ull;
    int ok;
    bpf_spin_lock(&q->lock);
    if (q->last_ns == 0) {
        q->tokens = cap; /* a new bucket starts full */
        q->last_ns = now;
    } else if (now > q->last_ns) {
        /* (another CPU may have read a later clock before taking the
         * lock: no refill then, and never a reset) */
        __u64 el = now - q->last_ns;
        if (el > 1000000000ull)
            el = 1000000000ull;
        q->tokens += el * rate;
        if (q->tokens > cap)
            q->tokens = cap;
        q->last_ns = now;
    }
    ok = q->tokens >= need;
    if (ok)
        q->tokens -= need;
    bpf_spin_unlock(&q->lock);
    return ok;
}

static __always_inline void put_ip4(struct iphdr *ip, __u32 src, __u32 dst, __u32 tot)
{
    /* as the relay socket sends (unconnected UDP): DF, ID 0, TOS 0, the
     * default TTL */
    ip->version = 4;
    ip->ihl = 5;
    ip->tos = 0;
    ip->tot_len = bpf_htons((__u16)tot);
    ip->id = 0;
    ip->frag_off = bpf_htons(0x4000);
    ip->ttl = cfg_ttl;
    ip->protocol = IPPROTO_UDP;
    ip->check = 0;
    ip->saddr = src;
    ip->daddr = dst;
    __u64 h = 0;
    const __u16 *hw = (const __u16 *)ip;
    for (int i = 0; i < 10; i++)
        h += hw[i];
    ip->check = (__u16)~fold(h);
}

/* Relays the frame as h says; to_client: a peer's datagram becomes
 * ChannelData, else ChannelData becomes the peer's datagram. */
static __always_inline int relay(struct xdp_md *ctx, const struct pkt *pk, const struct skx_hop *h, int to_client)
{
    __u64 now = bpf_ktime_get_ns();
    if (now >= h->expires_ns)
        return relay_pass(); /* the socket path knows whether it was refreshed */
    void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
    __u32 off = pk->msg_off & 127, dlen, pad = 0;
    __u16 chan_hdr[2] = {0, 0};
    if (to_client) {
        dlen = pk->msg_len;
    } else {
        __u8 *m = data + off;
        if ((void *)(m + 4) > end)
            return relay_pass();
        chan_hdr[0] = *(__u16 *)m;
        chan_hdr[1] = *(__u16 *)(m + 2);
        dlen = bpf_ntohs(chan_hdr[1]);
        /* RFC 8656 11.5: over UDP the datagram may be longer than the
         * length (padding); shorter is malformed (the socket path drops) */
        if (dlen + 4 > pk->msg_len)
            return relay_pass();
        pad = pk->msg_len - 4 - dlen;
        if (pad > 3)
            return relay_pass();
        off += 4;
    }
    if (dlen > SKX_MAX_RELAY)
        return relay_pass();
    __u64 dsum;
    if (payload_sum(ctx, off, dlen, &dsum) != 0)
        return relay_pass();

    /* The datagram's UDP checksum: valid, absent (IPv4), or a local
     * sender's offload seed, as for a Binding request. */
    __u32 udp_len = pk->msg_len + 8;
    __u64 pseudo = pseudo_sum(pk->src, pk->dst, pk->family, udp_len);
    if (pk->udp_check == 0) {
        if (pk->family != 4)
            return relay_pass();
    } else if (pk->udp_check != fold(pseudo)) {
        __u64 in = pseudo + dsum + chan_hdr[0] + chan_hdr[1];
        in += (__u32)pk->sport | (__u32)pk->dport << 16;
        in += (__u32)bpf_htons((__u16)udp_len) | (__u32)pk->udp_check << 16;
        if (pad) { /* the padding bytes (the frame's last), at their places in the words */
            __u8 last[4];
            __u32 flen = (__u32)((long)ctx->data_end - (long)ctx->data);
            if (flen < 46 || bpf_xdp_load_bytes(ctx, flen - 4, last, 4) != 0)
                return relay_pass();
            for (__u32 j = 0; j < 3; j++) {
                if (j >= pad)
                    break;
                __u8 b = last[(4 - pad + j) & 3];
                in += ((dlen + j) & 1) ? (__u32)b << 8 : b;
            }
        }
        if (fold(in) != 0xffff)
            return relay_pass(); /* the kernel drops a bad one */
    }

    /* Where it goes: the route and the next hop's address, as the kernel
     * would send it. bpf_fib_lookup() answers only for a device with
     * forwarding on: lo's (net.ipv{4,6}.conf.lo.forwarding=1; nothing
     * arrives on lo to be forwarded, so the host does not become a router),
     * else the interface the datagram came in by, where an operator has
     * turned forwarding on. */
    __u32 new_udp = 8 + dlen + (to_client ? 4 : 0);
    __u32 ip_len = h->family == 4 ? 20 : 40;
    struct bpf_fib_lookup f;
    long rc = BPF_FIB_LKUP_RET_FWD_DISABLED;
    for (int i = 0; i < 2 && rc == BPF_FIB_LKUP_RET_FWD_DISABLED; i++) {
        __builtin_memset(&f, 0, sizeof(f));
        f.family = h->family == 4 ? 2 /* AF_INET */ : 10 /* AF_INET6 */;
        f.l4_protocol = IPPROTO_UDP;
        f.sport = h->sport;
        f.dport = h->dport;
        f.tot_len = (__u16)(ip_len + new_udp); /* over the route's MTU: FRAG_NEEDED */
        f.ifindex = i == 0 ? 1 /* lo */ : ctx->ingress_ifindex;
        __builtin_memcpy(f.ipv6_src, h->src, 16);
        __builtin_memcpy(f.ipv6_dst, h->dst, 16);
        rc = bpf_fib_lookup(ctx, &f, sizeof(f), 0);
    }
    if (rc != BPF_FIB_LKUP_RET_SUCCESS)
        return relay_pass(); /* no neighbour yet, too big, unroutable: the socket sends or says why */
    __u32 out_if = f.ifindex;
    if (out_if != ctx->ingress_ifindex && !bpf_map_lookup_elem(&tx_ports, &out_if))
        return relay_pass();

    /* The bandwidth quotas (turn_relay.c bandwidth_ok): over them, dropped. */
    if (cfg_alloc_bps) {
        __u32 id = h->alloc;
        struct skx_quota *q = bpf_map_lookup_elem(&quotas, &id);
        if (!q)
            return relay_pass();
        if (!quota_take(q, cfg_alloc_bps, now, dlen)) {
            count(SKX_RELAY_OVER_QUOTA);
            return XDP_DROP;
        }
    }
    if (cfg_total_bps) {
        __u32 zero = 0;
        struct skx_quota *q = bpf_map_lookup_elem(&total, &zero);
        if (!q || !quota_take(q, cfg_total_bps, now, dlen)) {
            count(SKX_RELAY_OVER_QUOTA);
            return XDP_DROP;
        }
    }

    /* The new checksum: new pseudo-header and ports, the channel header
     * toward the client, the same application data. */
    __u16 out_hdr[2] = {h->number, bpf_htons((__u16)dlen)};
    __u64 sum = pseudo_sum((const __u32 *)h->src, (const __u32 *)h->dst, h->family, new_udp) + dsum;
    sum += (__u32)h->sport | (__u32)h->dport << 16;
    sum += (__u32)bpf_htons((__u16)new_udp);
    if (to_client)
        sum += (__u32)out_hdr[0] + out_hdr[1];
    __u16 check = (__u16)~fold(sum);
    if (!check)
        check = 0xffff;

    /* Cut the padding, then move the start to where the new headers go. */
    if (pad && bpf_xdp_adjust_tail(ctx, -(int)pad) != 0)
        return relay_pass();
    int head = (int)off - (int)(14 + ip_len + 8 + (to_client ? 4 : 0));
    if (bpf_xdp_adjust_head(ctx, head) != 0) {
        if (pad)
            return drop(SKX_TX_ERRORS); /* already cut */
        return relay_pass();
    }
    data = (void *)(long)ctx->data;
    end = (void *)(long)ctx->data_end;
    struct ethhdr *eth = data;
    struct udphdr *u;
    if (h->family == 4) {
        if (data + 14 + 20 + 8 > end)
            return drop(SKX_TX_ERRORS);
        eth->h_proto = bpf_htons(ETH_P_IP);
        put_ip4((struct iphdr *)(eth + 1), *(__u32 *)h->src, *(__u32 *)h->dst, 20 + new_udp);
        u = (void *)(data + 14 + 20);
    } else {
        if (data + 14 + 40 + 8 > end)
            return drop(SKX_TX_ERRORS);
        eth->h_proto = bpf_htons(ETH_P_IPV6);
        struct ipv6hdr *ip6 = (void *)(eth + 1);
        *(__u32 *)ip6 = bpf_htonl(6u << 28);
        ip6->payload_len = bpf_htons((__u16)new_udp);
        ip6->nexthdr = IPPROTO_UDP;
        ip6->hop_limit = cfg_hop_limit;
        __builtin_memcpy(&ip6->saddr, h->src, 16);
        __builtin_memcpy(&ip6->daddr, h->dst, 16);
        u = (void *)(data + 14 + 40);
    }
    __builtin_memcpy(eth->h_dest, f.dmac, 6);
    __builtin_memcpy(eth->h_source, f.smac, 6);
    u->source = h->sport;
    u->dest = h->dport;
    u->len = bpf_htons((__u16)new_udp);
    u->check = check;
    if (to_client) {
        __u16 *c = (void *)(u + 1);
        if ((void *)(c + 2) > end)
            return drop(SKX_TX_ERRORS);
        c[0] = out_hdr[0];
        c[1] = out_hdr[1];
    }
    count(to_client ? SKX_RELAY_TO_CLIENT : SKX_RELAY_TO_PEER);
    __u32 cpu = bpf_get_smp_processor_id();
    int bytes = to_client ? SKX_RELAY_BYTES_TO_CLIENT : SKX_RELAY_BYTES;
    if (cpu < SKX_MAX_CPUS - 1)
        counters[cpu][bytes] += dlen;
    else
        __sync_fetch_and_add(&counters[SKX_MAX_CPUS - 1][bytes], dlen);
    if (out_if == ctx->ingress_ifindex)
        return XDP_TX;
    return bpf_redirect_map(&tx_ports, out_if, 0);
}

SEC("xdp")
int stunkit_xdp(struct xdp_md *ctx)
{
    struct pkt pk = {};
    if (!parse(ctx, &pk))
        return XDP_PASS; /* not ours: not counted */
    if (cfg_relay) {
        /* a peer's datagram to a relayed address with a channel */
        struct skx_peer_key pkey = {.family = pk.family, .rport = pk.dport, .pport = pk.sport};
        __builtin_memcpy(pkey.relay, pk.dst, 16);
        __builtin_memcpy(pkey.peer, pk.src, 16);
        struct skx_hop *h = bpf_map_lookup_elem(&peers, &pkey);
        if (h)
            return relay(ctx, &pk, h, 1);
    }
    struct skx_listen_key lk = {.family = pk.family, .port = pk.dport};
    __builtin_memcpy(lk.ip, pk.dst, 16);
    struct skx_listen *l = bpf_map_lookup_elem(&listeners, &lk);
    if (!l)
        return XDP_PASS;

    void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
    __u8 *m = data + (pk.msg_off & 127);
    if ((void *)(m + 4) > end)
        return drop(SKX_DROP_NOT_STUN); /* shorter than 4: not STUN, not ChannelData */
    /* RFC 7983: 0..3 is STUN, 64..79 TURN channels (stunkitd takes up to
     * 127, as RFC 5766 did). */
    if (pk.msg_len < 20 || m[0] > 3) {
        if (cfg_turn && m[0] >= 0x40 && m[0] <= 0x7F) {
            if (cfg_relay) {
                struct skx_chan_key ck = {.family = pk.family, .cport = pk.sport, .sport = pk.dport};
                ck.number = *(__u16 *)m;
                __builtin_memcpy(ck.client, pk.src, 16);
                __builtin_memcpy(ck.server, pk.dst, 16);
                struct skx_hop *h = bpf_map_lookup_elem(&chans, &ck);
                if (h)
                    return relay(ctx, &pk, h, 0);
            }
            return pass();
        }
        return drop(SKX_DROP_NOT_STUN);
    }
    /* a Send indication is TURN data, not a request: no budget */
    if (cfg_turn && m[0] == 0x00 && m[1] == 0x16)
        return pass();

    struct skx_src_key sk = {.family = pk.family};
    __builtin_memcpy(sk.ip, pk.src, 16);
    /* the clock only where a budget is on (the verifier drops the rest) */
    __u64 now_ms = (cfg_rate || cfg_strict_rate) ? bpf_ktime_get_ns() / 1000000 : 0;
    /* the general budget first, before any parsing (worker.c, skd_serve) */
    if (!budget(&sk, now_ms, 0))
        return drop(SKX_DROP_RATE);
    if ((void *)(m + 20) > end)
        return pass();
    /* RFC 8489 6.3: "checks that the first two bits are 0, that the magic
     * cookie field has the correct value, that the message length is
     * sensible, and that the method value is a supported method. [...] If
     * any errors are detected, the message is silently discarded." */
    __u32 hlen = (__u32)m[2] << 8 | m[3];
    if ((hlen & 3) || 20 + hlen != pk.msg_len)
        return drop(SKX_DROP_MALFORMED);
    if (cfg_turn)
        return pass(); /* TURN's methods, all authenticated */
    __u16 type = (__u16)m[0] << 8 | m[1];
    if ((type & 0x0110) != 0) /* the class bits: not a request */
        return drop(SKX_DROP_NOT_REQUEST);
    __u16 method = (type & 0x000F) | ((type & 0x00E0) >> 1) | ((type & 0x3E00) >> 2);
    if (method != 0x001) {
        if (cfg_other_method && method == cfg_other_method)
            return pass();
        return drop(SKX_DROP_METHOD);
    }
    if (!answer_on || *(__u32 *)(m + 4) != bpf_htonl(MAGIC_COOKIE))
        return pass(); /* credentials to check; RFC 3489 clients */

    __u32 n = pk.msg_len;
    if (n > SKX_MAX_MSG)
        return pass();
    __u32 zero = 0;
    struct skx_scratch *s = bpf_map_lookup_elem(&scratch, &zero);
    if (!s)
        return pass();
    if (bpf_xdp_load_bytes(ctx, pk.msg_off, s->req, n) != 0)
        return pass();

    /* The attributes: only comprehension-optional ones (which a Binding
     * ignores) and a final FINGERPRINT are answered here. */
    __u32 pos = 20, fp_off = 0;
    for (int i = 0; i < MAX_ATTRS; i++) {
        if (pos >= n)
            break;
        if (fp_off)
            return pass(); /* RFC 8489 14.7: FINGERPRINT "MUST be the last": 400 */
        __u32 p = pos & (SKX_MAX_MSG - 1);
        __u32 at = (__u32)s->req[p] << 8 | s->req[p + 1];
        __u32 alen = (__u32)s->req[p + 2] << 8 | s->req[p + 3];
        __u32 next = pos + 4 + ((alen + 3) & ~3u);
        if (next > n)
            return pass(); /* does not frame: 400 */
        if (at == ATTR_FINGERPRINT) {
            if (alen != 4)
                return pass();
            fp_off = pos;
        } else if (at < 0x8000) {
            return pass();
        }
        pos = next;
    }
    if (pos < n)
        return pass(); /* more attributes than we look at */
    if (fp_off) {
        __u32 want = bpf_ntohl(*(__u32 *)(s->req + ((fp_off + 4) & (SKX_MAX_MSG - 1))));
        if ((crc32(s->req, fp_off & (SKX_MAX_MSG - 1)) ^ FINGERPRINT_XOR) != want)
            return drop(SKX_DROP_MALFORMED); /* RFC 8489 7.3: not STUN */
    }
    if (!udp_checksum_ok(s, &pk, n + 8, pseudo_sum(pk.src, pk.dst, pk.family, n + 8)))
        return pass();

    __u32 alen = build_answer(s, &pk, l, fp_off != 0);
    /* worker.c: an answer more than twice the request also needs the
     * strict budget (no amplification for spoofed sources) */
    if (alen > 2 * n && !budget(&sk, now_ms, 1))
        return drop(SKX_DROP_STRICT);
    __u32 start = build_headers(s, &pk, alen);
    __u32 flen = (pk.family == 4 ? 42 : 62) + alen;
    if (flen > 320)
        return pass();
    int delta = (int)(end - data) - (int)flen;
    if (bpf_xdp_adjust_head(ctx, delta) != 0)
        return pass(); /* no headroom: the socket path answers */
    if (bpf_xdp_store_bytes(ctx, 0, s->out + (start & 63), flen) != 0)
        return drop(SKX_TX_ERRORS); /* the request is already cut */
    count(SKX_ANSWERED);
    return XDP_TX;
}
