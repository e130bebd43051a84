/*
 * xdp_abi.h - what the XDP program (xdp.bpf.c) and its loader (xdp.c)
 * share: the map layouts and the counters. Plain fixed-size types only, the
 * same bytes on both sides.
 */
#ifndef STUNKITD_XDP_ABI_H
#define STUNKITD_XDP_ABI_H

#include <linux/bpf.h>
#include <linux/types.h>

#define SKX_MAX_SOFTWARE 64 /* stunkitd's own limit on SOFTWARE (config.c) */
#define SKX_MAX_MSG 512     /* longer requests go to the socket path */
#define SKX_MAX_CPUS 256    /* counter blocks; CPUs past it share the last one atomically */
#define SKX_STUN_OFF 64     /* where the answer's STUN message starts in the scratch buffer */

/* The counters, a block of 16 per CPU in the program's .bss. */
enum skx_counter {
    SKX_ANSWERED,     /* Binding requests answered (XDP_TX) */
    SKX_PASSED,       /* datagrams to a listening port left to the socket path */
    SKX_DROP_NOT_STUN,
    SKX_DROP_MALFORMED, /* header length or FINGERPRINT wrong */
    SKX_DROP_NOT_REQUEST, /* responses and indications */
    SKX_DROP_METHOD,      /* methods not served */
    SKX_DROP_RATE,      /* the general per-source budget */
    SKX_DROP_STRICT,    /* the strict budget (answers more than twice the request) */
    SKX_TX_ERRORS,      /* the frame could not be rewritten after it was cut (dropped) */
    SKX_RELAY_TO_PEER,  /* TURN: ChannelData relayed to its peer in XDP */
    SKX_RELAY_TO_CLIENT, /* TURN: a peer's datagram relayed to the client as ChannelData in XDP */
    SKX_RELAY_BYTES,    /* TURN: application bytes relayed to peers */
    SKX_RELAY_OVER_QUOTA, /* TURN: dropped over the allocation's or the server's bandwidth quota */
    SKX_RELAY_PASSED,   /* TURN: a published channel left to the socket path (expired, no route, checksum, size) */
    SKX_RELAY_BYTES_TO_CLIENT, /* TURN: application bytes relayed to clients */
    SKX_N_COUNTERS
};

/* A listening UDP address: family 4 or 6, port in network order. Wildcard
 * listeners are entered once per address the interface has. */
struct skx_listen_key {
    __u8 family;
    __u8 pad;
    __u16 port;
    __u8 ip[16];
};

/* An address as it goes into OTHER-ADDRESS / RESPONSE-ORIGIN (RFC 5780). */
struct skx_addr {
    __u8 family; /* 4 or 6 */
    __u8 pad;
    __u16 port;  /* host order */
    __u8 ip[16];
};

struct skx_listen {
    __u8 rfc5780; /* MAPPED-ADDRESS, RESPONSE-ORIGIN and OTHER-ADDRESS too */
    __u8 pad[3];
    struct skx_addr origin, other;
};

/* A source's budgets, per CPU (LRU_PERCPU_HASH): nanotokens, and the
 * millisecond of the last refill. */
struct skx_src_key {
    __u8 family;
    __u8 pad[3];
    __u8 ip[16];
};

struct skx_bucket {
    __u64 tokens;
    __u64 strict;
    __u64 last_ms;
};

/* The per-CPU scratch space: the request copied out of the packet, and
 * the answer frame built before it is stored back. */
struct skx_scratch {
    __u8 req[SKX_MAX_MSG + 64];
    __u8 out[SKX_STUN_OFF + SKX_MAX_MSG + 64];
};

/* ---- TURN channel offload (RFC 8656 12) ----
 *
 * stunkitd keeps the authority (allocations, permissions, channels, their
 * lifetimes) and publishes, per bound channel, how a datagram is rewritten
 * in each direction; the program relays only what an entry covers and
 * passes the rest. */

/* ChannelData from a client: its 5-tuple and the channel number. */
struct skx_chan_key {
    __u8 family; /* 4 or 6 */
    __u8 pad;
    __u16 number;       /* network order */
    __u16 cport, sport; /* the client's and the listening port, network order */
    __u8 client[16], server[16];
};

/* A datagram from a peer to a relayed transport address. */
struct skx_peer_key {
    __u8 family;
    __u8 pad[3];
    __u16 rport, pport; /* the relay's and the peer's port, network order */
    __u8 relay[16], peer[16];
};

/* What the datagram becomes. */
struct skx_hop {
    __u8 family;        /* of the datagram sent: 4 or 6 */
    __u8 pad;
    __u16 number;       /* toward the client: the channel, network order */
    __u16 sport, dport; /* network order */
    __u32 alloc;        /* the allocation's id: its bandwidth bucket */
    __u8 src[16], dst[16];
    __u64 expires_ns;   /* CLOCK_MONOTONIC: past it the socket path decides */
};

/* An allocation's bandwidth bucket (and the server's, in `total`), in
 * nanobytes (1e9 per byte) of one second's worth, as turn_relay.c's buckets. */
struct skx_quota {
    struct bpf_spin_lock lock;
    __u32 pad;
    __u64 tokens;
    __u64 last_ns;
    __u64 bytes; /* relayed here, both directions */
};

#define SKX_MAX_RELAY 2047 /* longer application data goes to the socket path */

#endif
