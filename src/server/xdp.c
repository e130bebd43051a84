/*
 * xdp.c - loads xdp.bpf.c (built into stunkitd as a libbpf skeleton),
 * fills its tables from the configuration and attaches it; reads its
 * counters. See xdp.h.
 *
 *   skd_xdp_start()          stunkitd --xdp: all of it, one line per failure
 *     skd_xdp_load()         the settings into .rodata, the CRC tables, load
 *     skd_xdp_add_listeners() listening addresses -> answers' fixed parts
 *     skd_xdp_attach()       bpf_link on the interface, native or generic
 */
#define _GNU_SOURCE
#include "xdp.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "peer_policy.h"
#include "xdp_abi.h"

#ifdef STUNKITD_HAVE_XDP

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <ifaddrs.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "stunkit/rendezvous.h"
#include "xdp.skel.h"

#define XDP_MAX_LINKS 8

struct skd_xdp {
    struct skx *skel;
    struct bpf_link *links[XDP_MAX_LINKS];
    int n_links;
    int relay;              /* TURN channels offloaded */
    uint32_t next_alloc;    /* allocation ids (atomic: workers call in) */
};

int skd_xdp_built(void)
{
    return 1;
}

/* libbpf's own messages only at --log-level debug: the operator gets one
 * line from us, not the verifier's log. */
__attribute__((format(printf, 2, 0))) static int libbpf_print(enum libbpf_print_level level, const char *fmt,
                                                               va_list ap)
{
    if (level == LIBBPF_DEBUG || skd_log_level < SKD_LOG_DEBUG)
        return 0;
    char *line = NULL; /* whole: a verifier log runs to many lines */
    if (vasprintf(&line, fmt, ap) < 0)
        return 0;
    size_t n = strlen(line);
    while (n && line[n - 1] == '\n')
        line[--n] = 0;
    if (n < 900) {
        skd_debug("libbpf: %s", line);
    } else { /* the verifier's log: more than a log line holds */
        skd_debug("libbpf: %.*s (continued below)", 200, line);
        fprintf(stderr, "%s\n", line);
    }
    free(line);
    return 0;
}

static const char *why(int err)
{
    switch (err) {
    case EPERM:
    case EACCES: return "not permitted (XDP needs root, or CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON)";
    case ENOSYS:
    case EINVAL: return "the kernel does not take the program (XDP needs Linux 5.18 or later)";
    case EBUSY:
    case EEXIST: return "another XDP program is attached there";
    case EOPNOTSUPP: return "the device does not support XDP";
    default: return strerror(err);
    }
}

static int read_sysctl(const char *path, int fallback)
{
    FILE *f = fopen(path, "r");
    int v = fallback;
    if (f) {
        if (fscanf(f, "%d", &v) != 1 || v < 1 || v > 255)
            v = fallback;
        fclose(f);
    }
    return v;
}

/* Budgets as ratelimit.c keeps them, in nanotokens: 1e9 per request. */
static uint64_t per_ms(double rate)
{
    return rate > 0 ? (uint64_t)(rate * 1e6 + 0.5) : 0;
}

static uint64_t burst_of(double burst)
{
    return (uint64_t)((burst < 1.0 ? 1.0 : burst) * 1e9);
}

skd_xdp *skd_xdp_load(const skd_config *cfg, const skd_handler_cfg *h, char *err, size_t cap)
{
    libbpf_set_print(libbpf_print);
    skd_xdp *x = calloc(1, sizeof(*x));
    if (!x) {
        snprintf(err, cap, "out of memory");
        return NULL;
    }
    x->skel = skx__open();
    if (!x->skel) {
        snprintf(err, cap, "cannot open the XDP program: %s", why(errno));
        free(x);
        return NULL;
    }
    struct skx *s = x->skel;
    const skd_auth *auth = h->auth;
    s->rodata->cfg_turn = cfg->turn.enabled ? 1 : 0;
    s->rodata->cfg_other_method = cfg->rdv.enabled ? STUNKIT_METHOD_RENDEZVOUS : 0;
    /* the kernel's defaults for a socket that sets none: the answers
     * leave as the socket path's would */
    s->rodata->cfg_ttl = (uint8_t)read_sysctl("/proc/sys/net/ipv4/ip_default_ttl", 64);
    s->rodata->cfg_hop_limit = (uint8_t)read_sysctl("/proc/sys/net/ipv6/conf/default/hop_limit", 64);
    if (h->software_len > SKX_MAX_SOFTWARE) {
        snprintf(err, cap, "SOFTWARE longer than %d bytes", SKX_MAX_SOFTWARE);
        skx__destroy(s);
        free(x);
        return NULL;
    }
    memset((void *)s->rodata->cfg_software, 0, sizeof(s->rodata->cfg_software));
    if (h->software_len)
        memcpy((void *)s->rodata->cfg_software, h->software, h->software_len);
    s->rodata->cfg_software_len = (uint32_t)h->software_len;
    s->rodata->cfg_rate = per_ms(cfg->rate);
    s->rodata->cfg_burst = burst_of(cfg->burst);
    s->rodata->cfg_strict_rate = per_ms(cfg->rate_redir);
    s->rodata->cfg_strict_burst = burst_of(cfg->burst_redir);
    memcpy((void *)s->rodata->crc_tab, stunkit_crc32_tables(), sizeof(s->rodata->crc_tab)); /* the library's own */
    bpf_map__set_max_entries(s->maps.budgets, (uint32_t)(cfg->rate_slots ? cfg->rate_slots : 1));
    /* TURN channels: every UDP allocation's channels fit (capped at 2^20
     * each way; past that the socket path relays), quotas as configured */
    const skd_turn_cfg *tc = &cfg->turn;
    x->relay = tc->enabled;
    s->rodata->cfg_relay = x->relay ? 1 : 0;
    uint64_t bps_max = UINT64_MAX / 1000000000ull;
    s->rodata->cfg_alloc_bps = tc->alloc_bps > bps_max ? bps_max : tc->alloc_bps;
    s->rodata->cfg_total_bps = tc->total_bps > bps_max ? bps_max : tc->total_bps;
    uint64_t n_ch = x->relay ? (uint64_t)(tc->max_allocations > 0 ? tc->max_allocations : 1) *
                                   (uint64_t)(tc->max_channels > 0 ? tc->max_channels : 1)
                             : 1;
    if (n_ch > (1u << 20))
        n_ch = 1u << 20;
    bpf_map__set_max_entries(s->maps.chans, (uint32_t)n_ch);
    bpf_map__set_max_entries(s->maps.peers, (uint32_t)n_ch);
    uint32_t n_q = x->relay && tc->alloc_bps ? (uint32_t)(tc->max_allocations > 0 ? tc->max_allocations : 1) : 1;
    bpf_map__set_max_entries(s->maps.quotas, n_q);
    int rv = skx__load(s);
    if (rv != 0) {
        snprintf(err, cap, "cannot load the XDP program: %s", why(-rv));
        skx__destroy(s);
        free(x);
        return NULL;
    }
    skd_xdp_set_answer(x, !(auth && auth->enabled));
    return x;
}

void skd_xdp_set_answer(skd_xdp *x, int on)
{
    __atomic_store_n(&x->skel->bss->answer_on, on ? 1u : 0u, __ATOMIC_RELAXED);
}

static void to_skx_addr(const stunkit_addr *a, uint16_t port, struct skx_addr *o)
{
    memset(o, 0, sizeof(*o));
    o->family = a->family == STUNKIT_AF_INET ? 4 : 6;
    o->port = port;
    memcpy(o->ip, a->ip, a->family == STUNKIT_AF_INET ? 4 : 16);
}

static int put_listener(skd_xdp *x, const stunkit_addr *ip, uint16_t port, const skd_family *fam, int ipi, int pi,
                        char *err, size_t cap)
{
    struct skx_listen_key k;
    struct skx_listen v;
    memset(&k, 0, sizeof(k));
    memset(&v, 0, sizeof(v));
    k.family = ip->family == STUNKIT_AF_INET ? 4 : 6;
    k.port = htons(port);
    memcpy(k.ip, ip->ip, ip->family == STUNKIT_AF_INET ? 4 : 16);
    /* binding.c without CHANGE-REQUEST: the answer leaves from where the
     * request arrived; OTHER-ADDRESS is the other IP and the other port */
    v.rfc5780 = fam->rfc5780 ? 1 : 0;
    if (fam->rfc5780) {
        to_skx_addr(&fam->advertise[ipi], fam->port[pi], &v.origin);
        to_skx_addr(&fam->advertise[ipi ^ 1], fam->port[pi ^ 1], &v.other);
    }
    if (bpf_map__update_elem(x->skel->maps.listeners, &k, sizeof(k), &v, sizeof(v), BPF_ANY) != 0) {
        snprintf(err, cap, "cannot enter a listening address: %s", why(errno));
        return -1;
    }
    return 0;
}

int skd_xdp_add_listeners(skd_xdp *x, const skd_sock_spec *specs, int n, const skd_handler_cfg *h,
                          const char *ifname, char *err, size_t cap)
{
    int made = 0;
    struct ifaddrs *ifa = NULL;
    if (ifname && getifaddrs(&ifa) != 0)
        ifa = NULL;
    for (int i = 0; i < n; i++) {
        const skd_sock_spec *sp = &specs[i];
        if (sp->tls)
            continue; /* DTLS: the socket path */
        const skd_family *fam = sp->addr.family == STUNKIT_AF_INET6 ? &h->v6 : &h->v4;
        if (!sp->wildcard) {
            if (put_listener(x, &sp->addr, sp->addr.port, fam, sp->ip_index, sp->port_index, err, cap) != 0)
                goto fail;
            made++;
            continue;
        }
        for (struct ifaddrs *a = ifa; a; a = a->ifa_next) {
            stunkit_addr local;
            if (!a->ifa_addr || strcmp(a->ifa_name, ifname) != 0 ||
                stunkit_addr_from_sockaddr(&local, a->ifa_addr) != 0 || local.family != sp->addr.family)
                continue;
            if (put_listener(x, &local, sp->addr.port, fam, sp->ip_index, sp->port_index, err, cap) != 0)
                goto fail;
            made++;
        }
    }
    if (ifa)
        freeifaddrs(ifa);
    return made;
fail:
    if (ifa)
        freeifaddrs(ifa);
    return -1;
}

/* XDP here parses Ethernet: other link types (tun, WireGuard, ...) are
 * refused rather than misread. */
static int is_ethernet(const char *ifname)
{
    struct ifreq ifr;
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 1; /* cannot tell: the kernel's attach decides */
    memset(&ifr, 0, sizeof(ifr));
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
    int ok = ioctl(fd, SIOCGIFHWADDR, &ifr) != 0 || ifr.ifr_hwaddr.sa_family == ARPHRD_ETHER;
    close(fd);
    return ok;
}

int skd_xdp_attach(skd_xdp *x, const char *ifname, char *info, char *err, size_t cap)
{
    unsigned idx = if_nametoindex(ifname);
    if (!idx) {
        snprintf(err, cap, "no such interface");
        return -1;
    }
    if (!is_ethernet(ifname)) {
        snprintf(err, cap, "not an Ethernet device (the program reads Ethernet frames)");
        return -1;
    }
    if (x->n_links == XDP_MAX_LINKS) {
        snprintf(err, cap, "more than %d interfaces", XDP_MAX_LINKS);
        return -1;
    }
    struct bpf_link *link = bpf_program__attach_xdp(x->skel->progs.stunkit_xdp, (int)idx);
    if (!link) {
        snprintf(err, cap, "cannot attach: %s", why(errno));
        return -1;
    }
    x->links[x->n_links++] = link;
    /* relayed datagrams may leave by any interface the program is on */
    uint32_t ifx = idx;
    bpf_map__update_elem(x->skel->maps.tx_ports, &ifx, sizeof(ifx), &ifx, sizeof(ifx), BPF_ANY);
    LIBBPF_OPTS(bpf_xdp_query_opts, q);
    const char *mode = "attached";
    if (bpf_xdp_query((int)idx, 0, &q) == 0) {
        if (q.attach_mode == XDP_ATTACHED_DRV)
            mode = "native mode (in the driver)";
        else if (q.attach_mode == XDP_ATTACHED_SKB)
            mode = "generic mode (the driver has no XDP: after the socket buffer is built, still before the stack)";
        else if (q.attach_mode == XDP_ATTACHED_HW)
            mode = "offloaded to the device";
    }
    struct bpf_prog_info pi;
    uint32_t len = sizeof(pi);
    memset(&pi, 0, sizeof(pi));
    unsigned id = bpf_obj_get_info_by_fd(bpf_program__fd(x->skel->progs.stunkit_xdp), &pi, &len) == 0 ? pi.id : 0;
    snprintf(info, cap, "%s, program id %u", mode, id);
    return 0;
}

int skd_xdp_prog_fd(const skd_xdp *x)
{
    return bpf_program__fd(x->skel->progs.stunkit_xdp);
}

void skd_xdp_counters(const skd_xdp *x, uint64_t out[SKD_XDP_N_COUNTERS])
{
    memset(out, 0, sizeof(uint64_t) * SKD_XDP_N_COUNTERS);
    for (int cpu = 0; cpu < SKX_MAX_CPUS; cpu++)
        for (int c = 0; c < SKD_XDP_N_COUNTERS; c++)
            out[c] += __atomic_load_n(&x->skel->bss->counters[cpu][c], __ATOMIC_RELAXED);
}

/* ---- TURN channels ---- */

int skd_xdp_relaying(const skd_xdp *x)
{
    return x && x->relay && x->n_links > 0;
}

/* IPv4-mapped IPv6 as IPv4 (a dual-stack socket's view): the frames carry
 * the plain family. Returns 4 or 6. */
static int canon(const stunkit_addr *a, uint8_t ip[16], uint16_t *port_be)
{
    stunkit_addr c;
    skd_peer_canonical(a, &c);
    memset(ip, 0, 16);
    memcpy(ip, c.ip, c.family == STUNKIT_AF_INET ? 4 : 16);
    *port_be = htons(c.port);
    return c.family == STUNKIT_AF_INET ? 4 : 6;
}

static void channel_keys(const skd_xdp_channel *c, struct skx_chan_key *ck, struct skx_peer_key *pk,
                         struct skx_hop *to_peer, struct skx_hop *to_client, int *ok)
{
    memset(ck, 0, sizeof(*ck));
    memset(pk, 0, sizeof(*pk));
    memset(to_peer, 0, sizeof(*to_peer));
    memset(to_client, 0, sizeof(*to_client));
    int fc = canon(&c->client, ck->client, &ck->cport);
    int fs = canon(&c->server, ck->server, &ck->sport);
    int fr = canon(&c->relay, pk->relay, &pk->rport);
    int fp = canon(&c->peer, pk->peer, &pk->pport);
    *ok = fc == fs && fr == fp;
    ck->family = (uint8_t)fc;
    ck->number = htons(c->number);
    pk->family = (uint8_t)fr;
    /* client -> peer: from the relayed address to the peer */
    to_peer->family = (uint8_t)fr;
    to_peer->sport = pk->rport;
    to_peer->dport = pk->pport;
    memcpy(to_peer->src, pk->relay, 16);
    memcpy(to_peer->dst, pk->peer, 16);
    to_peer->alloc = c->alloc_id;
    /* peer -> client: from the listening address to the client */
    to_client->family = (uint8_t)fc;
    to_client->number = htons(c->number);
    to_client->sport = ck->sport;
    to_client->dport = ck->cport;
    memcpy(to_client->src, ck->server, 16);
    memcpy(to_client->dst, ck->client, 16);
    to_client->alloc = c->alloc_id;
}

int skd_xdp_channel_put(skd_xdp *x, const skd_xdp_channel *c, uint64_t ttl_ms)
{
    if (!skd_xdp_relaying(x))
        return -1;
    struct skx_chan_key ck;
    struct skx_peer_key pk;
    struct skx_hop to_peer, to_client;
    int ok;
    channel_keys(c, &ck, &pk, &to_peer, &to_client, &ok);
    if (!ok)
        return -1;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts); /* bpf_ktime_get_ns()'s clock */
    uint64_t exp = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec + ttl_ms * 1000000ull;
    to_peer.expires_ns = to_client.expires_ns = exp;
    if (bpf_map__update_elem(x->skel->maps.chans, &ck, sizeof(ck), &to_peer, sizeof(to_peer), BPF_ANY) != 0)
        return -1;
    if (bpf_map__update_elem(x->skel->maps.peers, &pk, sizeof(pk), &to_client, sizeof(to_client), BPF_ANY) != 0) {
        bpf_map__delete_elem(x->skel->maps.chans, &ck, sizeof(ck), 0);
        return -1;
    }
    return 0;
}

void skd_xdp_channel_del(skd_xdp *x, const skd_xdp_channel *c)
{
    if (!skd_xdp_relaying(x))
        return;
    struct skx_chan_key ck;
    struct skx_peer_key pk;
    struct skx_hop to_peer, to_client;
    int ok;
    channel_keys(c, &ck, &pk, &to_peer, &to_client, &ok);
    bpf_map__delete_elem(x->skel->maps.chans, &ck, sizeof(ck), 0);
    bpf_map__delete_elem(x->skel->maps.peers, &pk, sizeof(pk), 0);
}

uint32_t skd_xdp_quota_add(skd_xdp *x)
{
    if (!skd_xdp_relaying(x))
        return 0;
    uint32_t id = __atomic_add_fetch(&x->next_alloc, 1, __ATOMIC_RELAXED);
    if (id == 0)
        id = __atomic_add_fetch(&x->next_alloc, 1, __ATOMIC_RELAXED);
    if (x->skel->rodata->cfg_alloc_bps) {
        struct skx_quota q;
        memset(&q, 0, sizeof(q)); /* last_ns 0: starts full, as turn_relay.c's */
        if (bpf_map__update_elem(x->skel->maps.quotas, &id, sizeof(id), &q, sizeof(q), BPF_NOEXIST) != 0)
            return 0;
    }
    return id;
}

void skd_xdp_quota_del(skd_xdp *x, uint32_t id)
{
    if (id && skd_xdp_relaying(x) && x->skel->rodata->cfg_alloc_bps)
        bpf_map__delete_elem(x->skel->maps.quotas, &id, sizeof(id), 0);
}

void skd_xdp_close(skd_xdp *x)
{
    if (!x)
        return;
    for (int i = 0; i < x->n_links; i++)
        bpf_link__destroy(x->links[i]);
    skx__destroy(x->skel);
    free(x);
}

#else /* no libbpf in this build */

struct skd_xdp {
    int unused;
};

int skd_xdp_built(void)
{
    return 0;
}

skd_xdp *skd_xdp_load(const skd_config *cfg, const skd_handler_cfg *h, char *err, size_t cap)
{
    (void)cfg;
    (void)h;
    snprintf(err, cap, "this stunkitd was built without XDP (install clang, libbpf-dev and bpftool, and rebuild)");
    return NULL;
}

int skd_xdp_add_listeners(skd_xdp *x, const skd_sock_spec *specs, int n, const skd_handler_cfg *h,
                          const char *ifname, char *err, size_t cap)
{
    (void)x, (void)specs, (void)n, (void)h, (void)ifname, (void)err, (void)cap;
    return -1;
}

int skd_xdp_attach(skd_xdp *x, const char *ifname, char *info, char *err, size_t cap)
{
    (void)x, (void)ifname, (void)info, (void)err, (void)cap;
    return -1;
}

void skd_xdp_set_answer(skd_xdp *x, int on)
{
    (void)x, (void)on;
}

int skd_xdp_prog_fd(const skd_xdp *x)
{
    (void)x;
    return -1;
}

void skd_xdp_counters(const skd_xdp *x, uint64_t out[SKD_XDP_N_COUNTERS])
{
    (void)x;
    memset(out, 0, sizeof(uint64_t) * SKD_XDP_N_COUNTERS);
}

void skd_xdp_close(skd_xdp *x)
{
    (void)x;
}

int skd_xdp_relaying(const skd_xdp *x)
{
    (void)x;
    return 0;
}

int skd_xdp_channel_put(skd_xdp *x, const skd_xdp_channel *c, uint64_t ttl_ms)
{
    (void)x, (void)c, (void)ttl_ms;
    return -1;
}

void skd_xdp_channel_del(skd_xdp *x, const skd_xdp_channel *c)
{
    (void)x, (void)c;
}

uint32_t skd_xdp_quota_add(skd_xdp *x)
{
    (void)x;
    return 0;
}

void skd_xdp_quota_del(skd_xdp *x, uint32_t id)
{
    (void)x, (void)id;
}

#endif

void skd_xdp_add_stats(const skd_xdp *x, skd_stats *t)
{
    if (!x)
        return;
    uint64_t c[SKD_XDP_N_COUNTERS];
    skd_xdp_counters(x, c);
    uint64_t dropped = c[SKX_DROP_NOT_STUN] + c[SKX_DROP_MALFORMED] + c[SKX_DROP_NOT_REQUEST] + c[SKX_DROP_METHOD] +
                       c[SKX_DROP_RATE] + c[SKX_DROP_STRICT] + c[SKX_TX_ERRORS];
    t->xdp_answered += c[SKX_ANSWERED];
    t->xdp_passed += c[SKX_PASSED];
    t->xdp_dropped += dropped;
    /* what the program handled never reached a socket: the totals count it
     * as the socket path would have */
    t->udp_rx += c[SKX_ANSWERED] + dropped;
    t->udp_tx += c[SKX_ANSWERED];
    t->success += c[SKX_ANSWERED];
    t->drop_not_stun += c[SKX_DROP_NOT_STUN];
    t->drop_malformed += c[SKX_DROP_MALFORMED];
    t->drop_not_request += c[SKX_DROP_NOT_REQUEST];
    t->drop_method += c[SKX_DROP_METHOD];
    t->drop_rate += c[SKX_DROP_RATE];
    t->drop_rate_redirect += c[SKX_DROP_STRICT];
    t->send_errors += c[SKX_TX_ERRORS];
    /* TURN channels relayed here */
    t->xdp_relayed += c[SKX_RELAY_TO_PEER] + c[SKX_RELAY_TO_CLIENT];
    t->turn_to_peer += c[SKX_RELAY_TO_PEER];
    t->turn_to_client += c[SKX_RELAY_TO_CLIENT];
    t->turn_to_peer_bytes += c[SKX_RELAY_BYTES];
    t->turn_to_client_bytes += c[SKX_RELAY_BYTES_TO_CLIENT];
    t->turn_over_quota += c[SKX_RELAY_OVER_QUOTA];
}

static int read_flag(const char *path)
{
    FILE *f = fopen(path, "r");
    int v = 0;
    if (f) {
        if (fscanf(f, "%d", &v) != 1)
            v = 0;
        fclose(f);
    }
    return v;
}

skd_xdp *skd_xdp_start(const skd_config *cfg, const skd_handler_cfg *h, const skd_sock_spec *specs, int n)
{
    char err[256], info[256];
    if (cfg->n_xdp == 0)
        return NULL;
    if (!cfg->udp) {
        skd_error("--xdp: UDP is off (--no-udp): nothing for XDP to answer; the program is not loaded");
        return NULL;
    }
    skd_xdp *x = skd_xdp_load(cfg, h, err, sizeof(err));
    if (!x) {
        skd_error("--xdp: %s; serving on the socket path only", err);
        return NULL;
    }
    int attached = 0;
    for (int i = 0; i < cfg->n_xdp; i++) {
        const char *ifname = cfg->xdp[i];
        int made = skd_xdp_add_listeners(x, specs, n, h, ifname, err, sizeof(err));
        if (made < 0) {
            skd_error("--xdp %s: %s; this interface stays on the socket path", ifname, err);
            continue;
        }
        if (skd_xdp_attach(x, ifname, info, err, sizeof(err)) != 0) {
            skd_error("--xdp %s: %s; this interface stays on the socket path", ifname, err);
            continue;
        }
        attached++;
        skd_info("XDP on %s: %s; Binding requests to %d listening address%s answered there%s", ifname, info, made,
                 made == 1 ? "" : "es", h->auth && h->auth->enabled ? " once authentication is off" : "");
    }
    if (!attached) {
        skd_xdp_close(x);
        return NULL;
    }
    if (cfg->turn.enabled) {
        /* the program's route lookup (bpf_fib_lookup) answers only for a
         * device with forwarding on; lo's is enough and makes no router */
        int v4 = read_flag("/proc/sys/net/ipv4/conf/lo/forwarding");
        int v6 = read_flag("/proc/sys/net/ipv6/conf/lo/forwarding");
        if (v4 && v6)
            skd_info("XDP: TURN channels of UDP allocations are relayed there");
        else if (v4 || v6)
            skd_warn("XDP: TURN channels are relayed there over %s; over %s they stay on the socket path where the "
                     "interfaces do not forward: `sysctl -w net.ipv%d.conf.lo.forwarding=1` lets the program look "
                     "routes up (lo only: the host does not become a router)",
                     v4 ? "IPv4" : "IPv6", v4 ? "IPv6" : "IPv4", v4 ? 6 : 4);
        else
            skd_warn("XDP: TURN channels stay on the socket path where the interfaces do not forward: "
                     "`sysctl -w net.ipv4.conf.lo.forwarding=1 net.ipv6.conf.lo.forwarding=1` lets the program "
                     "look routes up (lo only: the host does not become a router)");
    }
    return x;
}
