/*
 * worker_int.h - what the worker's files share. A worker is one thread with
 * its own sockets; its code is split by role:
 *
 *   worker.c         lifecycle (open, start, stop, close), the event loop,
 *                    serve(): rate limit -> skd_handle() -> counters
 *   worker_udp.c     the UDP path: recvmmsg -> serve -> sendmmsg
 *   worker_stream.c  TCP and TLS connections: accept, framing, pipelining,
 *                    deadlines, eviction
 *   worker_dtls.c    glue between the UDP socket on the TLS port and dtls.c
 */
#ifndef STUNKITD_WORKER_INT_H
#define STUNKITD_WORKER_INT_H

#include <netinet/in.h>
#include <openssl/ssl.h>
#include <sys/socket.h>

#include "dtls.h"
#include "ev_kind.h"
#include "turn_relay.h"
#include "worker.h"

#define BATCH 32
#define RX_SIZE 4096  /* larger datagrams are counted malformed */
#define TX_SIZE 4096  /* also caps a PADDING echo */
#define CTL_SIZE 64   /* room for one in6_pktinfo control message */
#define TCP_IN 4096   /* largest STUN message accepted over TCP */
#define TCP_OUT 16384 /* answers waiting for a slow reader: reads pause when less than TX_SIZE is free */
#define MAX_DRAIN 8   /* batches per socket per wake, to stay fair */
#define SRC_BUCKETS 4096


typedef struct skd_sock {
    int kind; /* EV_UDP, EV_LISTEN or EV_DTLS; first, like skd_conn's */
    int fd;
    int wildcard;
    int tls;
    int ip_index, port_index;
    int paused; /* a listener taken out of epoll (no descriptors left) */
    stunkit_addr bound;
} skd_sock;

typedef struct skd_conn skd_conn;
typedef struct skd_conn_list {
    skd_conn *head, *tail;
} skd_conn_list;

struct skd_conn {
    int kind; /* EV_CONN */
    int fd;
    skd_conn_hook hook;  /* a TURN allocation's relayed data comes back through it (worker_stream.c) */
    const skd_sock *listener;
    SSL *ssl;            /* STUN over TLS */
    int handshaking;     /* TLS handshake not finished */
    int pool;            /* 0 TCP, 1 TLS: its listener's (the pools count connections by the port they came to) */
    int sniffing;        /* its first bytes not seen yet: a PROXY header? TLS or STUN? (worker_stream.c) */
    int from_proxy;      /* the TCP source is a listed proxy (--proxy-from): a PROXY v2 header is taken */
    int proxy_seen;      /* past the PROXY header (or there was none) */
    int reading_paused;  /* answers queued faster than the client reads them */
    int answered;        /* a request of its got a success answer (not a stranger: eviction takes strangers first) */
    uint32_t events;     /* the epoll events currently asked for */
    stunkit_addr peer, local;
    uint64_t useful_ms;  /* accept, or the last complete request */
    uint64_t started_ms; /* first byte of the request being read (or accept, for a TLS handshake) */
    size_t in_len, out_len;
    skd_conn *prev, *next;   /* pool's list by useful_ms: the least useful first */
    skd_conn *dprev, *dnext; /* the deadline list: a request or handshake under way, oldest first */
    int on_deadline;
    skd_conn *hnext, *hprev; /* same-source chain, for the per-source cap */
    uint8_t in[TCP_IN];
    uint8_t out[TCP_OUT];
};

/* TCP and TLS have separate pools, so one cannot starve the other. */
typedef struct skd_pool {
    skd_conn_list lru;      /* by useful_ms */
    skd_conn_list deadline; /* by started_ms */
    int n, max;
} skd_pool;

struct skd_worker {
    skd_server *srv;
    int id;
    /* held while the worker handles a batch of events: the control socket
     * (control.c) takes it to read or end this worker's allocations */
    pthread_mutex_t ctl_lock;
    uint64_t dbg_made, dbg_expired; /* TURN totals last logged (debug) */
    pthread_t thread;
    int started;
    int epfd;
    int stop_kind; /* epoll tag for the stop eventfd */
    skd_sock udp[SKD_MAX_SOCKS];
    int n_udp;
    skd_sock listeners[SKD_MAX_SOCKS];
    int n_listeners;
    skd_sock *by_index[2][2][2]; /* [is IPv6][ip index][port index] */
    skd_stats *st;
    skd_ratelimit rl;
    skd_pool pools[2]; /* [0] TCP, [1] TLS */
    skd_conn *by_source[SRC_BUCKETS];
    skd_conn *dead; /* closed during this batch of events, freed after it */
    int per_source;
    int reserve_fd; /* kept open to be given up when accept() hits EMFILE */
    uint64_t emfile_logged_ms;
    uint64_t listeners_paused_ms;
    skd_dtls dtls;
    int dtls_on;
    skd_turn turn;
    int turn_on;
    int stream_role; /* 0: plain UDP; 1: TCP, TLS and DTLS */
    int blocking;    /* one UDP socket and nothing else: no epoll on it */
    uint32_t idle_ms, request_ms;
    volatile uint64_t epoch; /* the reclamation epoch this worker last saw (worker.c) */

    struct mmsghdr rx[BATCH];
    struct iovec rx_iov[BATCH];
    struct sockaddr_storage rx_addr[BATCH];
    uint8_t rx_ctl[BATCH][CTL_SIZE];
    uint8_t rx_buf[BATCH][RX_SIZE];

    struct mmsghdr tx[BATCH];
    struct iovec tx_iov[BATCH];
    struct sockaddr_storage tx_addr[BATCH];
    uint8_t tx_ctl[BATCH][CTL_SIZE];
    int tx_fd[BATCH];
    skd_out tx_out[BATCH];
    uint8_t tx_buf[BATCH * TX_SIZE];

    skd_out one_out[4];
    uint8_t one_buf[4 * TX_SIZE]; /* the outbox for a stream or DTLS request */
};

/* The server's clocks (clock.c): CLOCK_MONOTONIC in milliseconds, 64 bits
 * (a 32-bit count wraps after 49.7 days of uptime), and Unix seconds. */
uint64_t skd_now_ms(void);
uint64_t skd_unix_now(void);

/* serve.c. Rate limit, handle, count: what every transport does with a request. The
 * general budget is taken before anything is parsed; answers sent elsewhere,
 * unauthenticated challenges and answers over twice the request's size also
 * need the strict budget. Returns the number of datagrams the outbox gained. */
size_t skd_serve(skd_worker *w, const skd_request *rq, skd_outbox *ob, uint64_t now);
void skd_send_relayed(skd_worker *w, const skd_out *o);

void skd_udp_drain(skd_worker *w, skd_sock *s, int blocking);
void skd_relay_drain(skd_worker *w, skd_relay *r);
void skd_dtls_drain(skd_worker *w, skd_sock *s);
void skd_stream_accept(skd_worker *w, skd_sock *l);
void skd_stream_event(skd_worker *w, skd_conn *c, uint32_t events);
void skd_stream_timers(skd_worker *w);
void skd_stream_close_all(skd_worker *w);
void skd_stream_reap(skd_worker *w);
void skd_dtls_session_ended(void *ctx, const skd_dtls_session *s);
int skd_dtls_session_holds(void *ctx, const skd_dtls_session *s);
int skd_stream_pending(const skd_worker *w);

/* Reclamation (reclaim.c): no shared pointer held / about to block. */
void skd_worker_quiescent(skd_worker *w);
void skd_worker_offline(skd_worker *w);

#endif
