/*
 * xdp.h - stunkitd --xdp IFACE: the XDP program (xdp.bpf.c) loaded with
 * libbpf and attached through a bpf_link, so it detaches when stunkitd
 * exits for any reason. It answers plain Binding requests in the driver and
 * drops what the socket path would drop; everything else goes up to the
 * sockets as before. When XDP cannot be had (no privilege, a kernel or
 * device without it, a build without libbpf) one line says why and the
 * socket path serves alone.
 */
#ifndef STUNKITD_XDP_H
#define STUNKITD_XDP_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "stats.h"

typedef struct skd_xdp skd_xdp;

/* Whether this build has XDP (libbpf, clang's BPF target, bpftool). */
int skd_xdp_built(void);

/* Loads the program for this configuration, attached nowhere yet. NULL and
 * one line in err (no newline) when it cannot be loaded. */
skd_xdp *skd_xdp_load(const skd_config *cfg, const skd_handler_cfg *h, char *err, size_t cap);

/* Enters the UDP listening addresses of specs (TLS/DTLS ones excepted);
 * a wildcard one as each address ifname has (NULL: wildcards skipped).
 * Returns how many entries were made, or -1 with err filled. */
int skd_xdp_add_listeners(skd_xdp *x, const skd_sock_spec *specs, int n, const skd_handler_cfg *h,
                          const char *ifname, char *err, size_t cap);

/* Attaches to ifname (native where the driver has XDP, generic
 * otherwise). Returns 0 and describes the mode in info, or -1 and err. */
int skd_xdp_attach(skd_xdp *x, const char *ifname, char *info, char *err, size_t cap);

/* Authentication switched on or off by SIGHUP: answer Binding here only
 * while it is off. */
void skd_xdp_set_answer(skd_xdp *x, int on);

/* The program's descriptor (tests drive it with BPF_PROG_TEST_RUN). */
int skd_xdp_prog_fd(const skd_xdp *x);

/* The program's counters summed over CPUs, indexed by enum skx_counter. */
#define SKD_XDP_N_COUNTERS 16
void skd_xdp_counters(const skd_xdp *x, uint64_t out[SKD_XDP_N_COUNTERS]);
/* Adds them to the server's totals (and to the xdp_* counters). */
void skd_xdp_add_stats(const skd_xdp *x, skd_stats *total);

void skd_xdp_close(skd_xdp *x);

/* ---- TURN channel offload (turn_relay.c publishes, the program relays) ----
 * One bound channel of a UDP allocation: both directions' rewrites. */
typedef struct skd_xdp_channel {
    stunkit_addr client, server; /* the allocation's 5-tuple (the listening side) */
    stunkit_addr relay, peer;    /* the relayed transport address and the peer */
    uint16_t number;
    uint32_t alloc_id;           /* its bandwidth bucket (skd_xdp_quota_add) */
} skd_xdp_channel;

/* Whether the program relays channels (TURN on and attached somewhere). */
int skd_xdp_relaying(const skd_xdp *x);
/* Enters or refreshes a channel, alive for ttl_ms from now. 0, or -1 (the
 * socket path relays it: table full, addresses it cannot take). */
int skd_xdp_channel_put(skd_xdp *x, const skd_xdp_channel *c, uint64_t ttl_ms);
void skd_xdp_channel_del(skd_xdp *x, const skd_xdp_channel *c);
/* A new allocation id, and its bandwidth bucket when a quota is set (0: no
 * XDP, or the bucket could not be made: its channels stay on the sockets). */
uint32_t skd_xdp_quota_add(skd_xdp *x);
void skd_xdp_quota_del(skd_xdp *x, uint32_t id);

/* stunkitd: load, enter the listeners, attach to every --xdp interface.
 * Each failure is one line (error level) and that interface stays on the
 * socket path; NULL when no interface has the program. */
skd_xdp *skd_xdp_start(const skd_config *cfg, const skd_handler_cfg *h, const skd_sock_spec *specs, int n);

#endif
