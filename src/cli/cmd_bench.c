/*
 * cmd_bench.c - `stunkit bench`: a closed-loop STUN load generator.
 *
 * Each socket keeps `window` Binding requests in flight; every answer is
 * checked (its transaction ID must be one we are waiting for, and its
 * XOR-MAPPED-ADDRESS must equal the socket's own address: on loopback there
 * is no NAT) before the slot sends its next request. A request unanswered
 * after --timeout is counted lost and replaced. At the end of the run no
 * new request leaves; the ones in flight get up to --timeout to be answered,
 * and those still unanswered then are lost too (a run the server stalled
 * does not report them as nothing). Sends and receives are batched with
 * sendmmsg/recvmmsg so the generator is not the bottleneck.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>

#include "bench_turn.h"
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "stunkit/stunkit.h"

#define BATCH 64
#define HIST_BUCKETS (64 * 16)

typedef struct slot {
    uint8_t tid[12];
    uint64_t sent_ns;
    int busy;
} slot;

typedef struct bsock {
    int fd;
    stunkit_addr self;
    slot *slots;
    uint32_t seq;
} bsock;

static volatile sig_atomic_t bench_stop; /* SIGINT/SIGTERM: end the run, report what it measured */

static void on_bench_signal(int sig)
{
    (void)sig;
    bench_stop = 1;
}

typedef struct bench_thread {
    pthread_t th;
    const struct bench_opts *o;
    bsock *socks;
    int n_socks;
    uint64_t ok, bad, lost, late, sent;
    uint64_t ok_in_run, run_end_ns; /* answers before the drain, and when it began: the rate's span */
    uint64_t progress_ok, progress_lost; /* copies the main thread may read (atomic) */
    uint64_t hist[HIST_BUCKETS];
    uint64_t max_ns;
    int error;
} bench_thread;

typedef struct bench_opts {
    stunkit_addr server;
    double duration, timeout;
    int sockets, window, threads, json;
    uint64_t deadline_ns;
    const char *username;        /* short-term credentials (RFC 8489 9.1): */
    uint8_t key[STUNKIT_KEY_MAX]; /* USERNAME, MESSAGE-INTEGRITY, FINGERPRINT */
    size_t key_len;
} bench_opts;

#define REQ_MAX 192 /* a request with USERNAME (<= 128), MESSAGE-INTEGRITY and FINGERPRINT */

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Log-linear histogram: 16 sub-buckets per power of two (~6% resolution). */
static int hist_bucket(uint64_t ns)
{
    if (ns < 16)
        return (int)ns;
    int msb = 63 - __builtin_clzll(ns);
    int sub = (int)((ns >> (msb - 4)) & 15u);
    int b = (msb - 3) * 16 + sub;
    return b < HIST_BUCKETS ? b : HIST_BUCKETS - 1;
}

static uint64_t hist_value(int b)
{
    if (b < 16)
        return (uint64_t)b;
    int msb = b / 16 + 3, sub = b % 16;
    return ((uint64_t)(16 + sub) << (msb - 4)) + ((uint64_t)1 << (msb - 4)) / 2;
}

static size_t fill_request(const bench_opts *o, bsock *s, int i, uint8_t *buf)
{
    slot *sl = &s->slots[i];
    /* slot index in the first two bytes, then a sequence number and noise */
    uint32_t seq = ++s->seq;
    sl->tid[0] = (uint8_t)(i >> 8);
    sl->tid[1] = (uint8_t)i;
    memcpy(sl->tid + 2, &seq, 4);
    sl->tid[6] = (uint8_t)(seq * 2654435761u >> 24);
    /* bytes 7..11 keep their random initial value */
    stunkit_writer w;
    stunkit_writer_init(&w, buf, REQ_MAX, STUNKIT_METHOD_BINDING, STUNKIT_CLASS_REQUEST, sl->tid);
    if (o->username) {
        stunkit_put(&w, STUNKIT_ATTR_USERNAME, o->username, strlen(o->username));
        stunkit_put_integrity(&w, o->key, o->key_len);
        stunkit_put_fingerprint(&w);
    }
    return (size_t)stunkit_writer_finish(&w);
}

/* Requests waiting for one sendmmsg on a socket. */
typedef struct outq {
    uint8_t (*out)[REQ_MAX];
    struct mmsghdr *m;
    struct iovec *v;
    int n;
} outq;

static void queue_request(const bench_opts *o, outq *q, bsock *s, int i, uint64_t now)
{
    size_t len = fill_request(o, s, i, q->out[q->n]);
    s->slots[i].sent_ns = now;
    q->v[q->n] = (struct iovec){q->out[q->n], len};
    memset(&q->m[q->n], 0, sizeof(q->m[q->n]));
    q->m[q->n].msg_hdr.msg_iov = &q->v[q->n];
    q->m[q->n].msg_hdr.msg_iovlen = 1;
    q->n++;
}

static void flush_requests(outq *q, bsock *s, bench_thread *t)
{
    if (q->n > 0) {
        int sent = sendmmsg(s->fd, q->m, (unsigned)q->n, 0);
        if (sent > 0)
            t->sent += (uint64_t)sent;
    }
    q->n = 0;
}

static void *bench_run(void *arg)
{
    bench_thread *t = arg;
    const bench_opts *o = t->o;
    int W = o->window;
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct mmsghdr msgs[BATCH];
    struct iovec iov[BATCH];
    static __thread uint8_t bufs[BATCH][2048];
    outq q;
    q.n = 0;
    q.out = calloc((size_t)W, REQ_MAX);
    q.m = calloc((size_t)W, sizeof(*q.m));
    q.v = calloc((size_t)W, sizeof(*q.v));
    if (ep < 0 || !q.out || !q.m || !q.v) {
        t->error = 1;
        return NULL;
    }
    for (int k = 0; k < t->n_socks; k++) {
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)k};
        epoll_ctl(ep, EPOLL_CTL_ADD, t->socks[k].fd, &ev);
    }
    /* Fill every window. */
    uint64_t now = mono_ns();
    for (int k = 0; k < t->n_socks; k++) {
        bsock *s = &t->socks[k];
        for (int i = 0; i < W; i++) {
            s->slots[i].busy = 1;
            queue_request(t->o, &q, s, i, now);
        }
        flush_requests(&q, s, t);
    }
    uint64_t timeout_ns = (uint64_t)(o->timeout * 1e9), next_sweep = now + timeout_ns / 4;
    uint64_t in_flight = (uint64_t)W * (uint64_t)t->n_socks;
    struct epoll_event evs[64];
    uint64_t deadline_ns = o->deadline_ns;
    for (;;) {
        now = mono_ns();
        /* Ctrl-C: the run ends now (what is in flight drains as at the end) */
        if (bench_stop && deadline_ns > now)
            deadline_ns = now;
        /* past the deadline: drain, up to the timeout, sending nothing new */
        int draining = now >= deadline_ns;
        if (draining && !t->run_end_ns) {
            t->run_end_ns = now;
            t->ok_in_run = t->ok;
        }
        if (draining && (in_flight == 0 || now >= deadline_ns + timeout_ns))
            break;
        int n = epoll_wait(ep, evs, 64, 20);
        for (int e = 0; e < n; e++) {
            bsock *s = &t->socks[evs[e].data.u32];
            for (int i = 0; i < BATCH; i++) {
                iov[i] = (struct iovec){bufs[i], sizeof(bufs[i])};
                memset(&msgs[i], 0, sizeof(msgs[i]));
                msgs[i].msg_hdr.msg_iov = &iov[i];
                msgs[i].msg_hdr.msg_iovlen = 1;
            }
            int got = recvmmsg(s->fd, msgs, BATCH, MSG_DONTWAIT, NULL);
            if (got <= 0)
                continue;
            now = mono_ns();
            for (int r = 0; r < got; r++) {
                stunkit_msg m;
                stunkit_attr a;
                stunkit_addr mapped;
                const uint8_t *p = bufs[r];
                if (stunkit_msg_parse(&m, p, msgs[r].msg_len) != 0 || m.rfc3489 || m.klass != STUNKIT_CLASS_SUCCESS) {
                    t->bad++;
                    continue;
                }
                int i = m.tid[0] << 8 | m.tid[1];
                if (i >= W || !s->slots[i].busy || memcmp(s->slots[i].tid, m.tid, 12) != 0) {
                    t->late++; /* an answer to a request already counted lost */
                    continue;
                }
                if (stunkit_msg_find(&m, STUNKIT_ATTR_XOR_MAPPED_ADDRESS, &a) != 0 ||
                    stunkit_attr_addr(&m, &a, &mapped) != 0 || !stunkit_addr_equal(&mapped, &s->self)) {
                    t->bad++;
                } else {
                    uint64_t lat = now - s->slots[i].sent_ns;
                    t->ok++;
                    t->hist[hist_bucket(lat)]++;
                    if (lat > t->max_ns)
                        t->max_ns = lat;
                }
                if (draining) {
                    s->slots[i].busy = 0;
                    in_flight--;
                } else {
                    queue_request(t->o, &q, s, i, now);
                }
            }
            flush_requests(&q, s, t);
            __atomic_store_n(&t->progress_ok, t->ok, __ATOMIC_RELAXED);
        }
        if (now >= next_sweep) {
            /* Requests older than the timeout are lost: send fresh ones. */
            next_sweep = now + timeout_ns / 4;
            for (int k = 0; k < t->n_socks; k++) {
                bsock *s = &t->socks[k];
                for (int i = 0; i < W; i++) {
                    if (!s->slots[i].busy || now - s->slots[i].sent_ns < timeout_ns)
                        continue;
                    t->lost++;
                    if (draining) {
                        s->slots[i].busy = 0;
                        in_flight--;
                    } else {
                        queue_request(t->o, &q, s, i, now);
                    }
                }
                flush_requests(&q, s, t);
            }
            __atomic_store_n(&t->progress_lost, t->lost, __ATOMIC_RELAXED);
        }
    }
    /* unanswered when the drain ended: lost */
    for (int k = 0; k < t->n_socks; k++)
        for (int i = 0; i < W; i++)
            t->lost += (uint64_t)t->socks[k].slots[i].busy;
    close(ep);
    free(q.out);
    free(q.m);
    free(q.v);
    return NULL;
}

static void bench_usage(FILE *f)
{
    fprintf(f, "Usage: stunkit bench [options] SERVER\n"
               "\n"
               "Closed-loop load against a STUN server (host, host:port, [v6]:port or\n"
               "stun:host[:port]; port 3478 by default). A first Binding request checks that\n"
               "the server answers; then every answer is checked: transaction ID, and\n"
               "XOR-MAPPED-ADDRESS equal to the socket's own address (so run it where there is\n"
               "no NAT in between, e.g. on loopback). Progress goes to stderr once a second.\n"
               "\n"
               "  -d, --duration S   how long to run (default 5, at most 600)\n"
               "  -s, --sockets N    UDP sockets (default 32)\n"
               "  -w, --window W     requests in flight per socket (default 8)\n"
               "      --threads T    generator threads (default 1)\n"
               "  -t, --timeout MS   a request unanswered this long is lost (default 1000)\n"
               "      --json         one JSON object instead of text (keys: man stunkit)\n"
               "      --username U, --password P\n"
               "                     send short-term credentials (USERNAME, MESSAGE-INTEGRITY,\n"
               "                     FINGERPRINT): measures a server's authenticated path\n"
               "\n"
               "TURN relay: stunkit bench --turn --peer ECHO:PORT --username U --password P SERVER\n"
               "      --turn         -s allocations, each with a channel to --peer (a UDP echo),\n"
               "                     -w ChannelData datagrams in flight each; relayed round trips\n"
               "                     per second and latency (--username/--password: long-term);\n"
               "                     an IPv6 --peer asks for an IPv6 relayed address\n"
               "      --forwarder    SERVER is bench_turn_forwarder (no TURN set-up): the ceiling\n"
               "\n"
               "Exit status: 0 answers were counted, 1 the server did not answer, 2 bad usage.\n");
}

static int parse_pos(const char *opt, const char *arg, double lo, double hi, double *out)
{
    char *end;
    double v = strtod(arg, &end);
    if (end == arg || *end || !(v >= lo && v <= hi)) {
        fprintf(stderr, "stunkit bench: %s '%s': expected a number from %g to %g\n", opt, arg, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

static double percentile(const uint64_t *hist, uint64_t total, double q)
{
    uint64_t want = (uint64_t)ceil((double)total * q), acc = 0;
    for (int b = 0; b < HIST_BUCKETS; b++) {
        acc += hist[b];
        if (acc >= want && acc > 0)
            return (double)hist_value(b);
    }
    return 0;
}

static void fmt_dur(char *buf, size_t cap, double ns)
{
    if (ns < 1e3)
        snprintf(buf, cap, "%.0f ns", ns);
    else if (ns < 1e6)
        snprintf(buf, cap, "%.0f us", ns / 1e3);
    else
        snprintf(buf, cap, "%.2f ms", ns / 1e6);
}

int cmd_bench(int argc, char **argv)
{
    static const struct option opts[] = {{"duration", required_argument, NULL, 'd'},
                                         {"sockets", required_argument, NULL, 's'},
                                         {"window", required_argument, NULL, 'w'},
                                         {"threads", required_argument, NULL, 'N'},
                                         {"timeout", required_argument, NULL, 't'},
                                         {"json", no_argument, NULL, 'j'},
                                         {"username", required_argument, NULL, 'u'},
                                         {"turn", no_argument, NULL, 'R'},
                                         {"peer", required_argument, NULL, 'P'},
                                         {"forwarder", no_argument, NULL, 'F'},
                                         {"password", required_argument, NULL, 'p'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    bench_opts o = {.duration = 5, .timeout = 1, .sockets = 32, .window = 8, .threads = 1};
    int turn = 0, forwarder = 0;
    const char *password = NULL;
    stunkit_addr peer;
    memset(&peer, 0, sizeof(peer));
    double v;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":d:s:w:t:h", opts, NULL)) != -1) {
        const char *opt = argv[optind - 1];
        switch (c) {
        case 'd':
            if (parse_pos("--duration", optarg, 0.1, 600, &o.duration))
                return 2;
            break;
        case 's':
            if (parse_pos("--sockets", optarg, 1, 16384, &v))
                return 2;
            o.sockets = (int)v;
            break;
        case 'w':
            if (parse_pos("--window", optarg, 1, 1024, &v))
                return 2;
            o.window = (int)v;
            break;
        case 'N':
            if (parse_pos("--threads", optarg, 1, 64, &v))
                return 2;
            o.threads = (int)v;
            break;
        case 't': /* milliseconds, as everywhere in stunkit */
            if (parse_pos("--timeout", optarg, 10, 60000, &v))
                return 2;
            o.timeout = v / 1000.0;
            break;
        case 'j': o.json = 1; break;
        case 'u':
            if (!*optarg || strlen(optarg) > 128) {
                fprintf(stderr, "stunkit bench: --username '%s': expected 1 to 128 bytes\n", optarg);
                return 2;
            }
            o.username = optarg;
            break;
        case 'R': turn = 1; break;
        case 'F': forwarder = 1; break;
        case 'P':
            if (stunkit_addr_parse(optarg, 0, &peer) != 0 || peer.port == 0) {
                fprintf(stderr, "stunkit bench: --peer '%s': expected ADDR:PORT\n", optarg);
                return 2;
            }
            break;
        case 'p': {
            password = optarg;
            int n = stunkit_key_short_term(optarg, strlen(optarg), o.key, sizeof(o.key));
            if (n < 0) {
                fprintf(stderr, "stunkit bench: --password: not valid UTF-8 text\n");
                return 2;
            }
            o.key_len = (size_t)n;
            break;
        }
        case 'h': bench_usage(stdout); return 0;
        case ':': fprintf(stderr, "stunkit bench: option %s needs a value\n", opt); return 2;
        default: fprintf(stderr, "stunkit bench: unknown option '%s' (try --help)\n", opt); return 2;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "stunkit bench: name one SERVER (try --help)\n");
        return 2;
    }
    int bad = cli_server_udp("bench", argv[optind], 0, &o.server);
    if (bad)
        return bad;
    if (turn) {
        if (!peer.port || (!forwarder && (!o.username || !password))) {
            fprintf(stderr, "stunkit bench --turn: needs --peer ADDR:PORT (an echo) and --username/--password "
                            "(unless --forwarder)\n");
            return 2;
        }
        bench_turn_opts t = {o.server, peer, argv[optind], o.username, password, o.sockets, o.window, o.json,
                             forwarder, o.duration};
        return bench_turn_run(&t);
    }
    if (!o.username != !o.key_len) {
        fprintf(stderr, "stunkit bench: --username and --password go together\n");
        return 2;
    }
    if (o.threads > o.sockets)
        o.threads = o.sockets;
    char server[STUNKIT_ADDRSTRLEN];
    stunkit_addr_format(&o.server, server, sizeof(server));
    {
        /* is anybody there? (an error answer, e.g. 401, counts as there) */
        stunkit_binding_result res;
        char why[256];
        stunkit_binding_options bo = {.size = sizeof(bo), .timeout_ms = 2000, .error_text = why,
                                      .error_text_cap = sizeof(why)};
        stunkit_credentials cred = {o.username, password, 1};
        if (o.username)
            bo.cred = &cred;
        int rv = stunkit_binding_ex(&o.server, STUNKIT_UDP, &bo, &res);
        if (rv == STUNKIT_ERR_UNEXPECTED && res.error_code) {
            /* it is there, but answers with an error: every request of the
             * run would, and none would count */
            fprintf(stderr, "stunkit bench: %s (%s) answers a Binding request with %d (%s)%s\n", argv[optind], server,
                    res.error_code, stunkit_code_reason(res.error_code),
                    res.error_code == 401 && !o.username
                        ? ": it wants credentials (--username and --password, short-term)"
                    : res.error_code == 401 ? ": wrong username or password"
                                            : "");
            return 1;
        }
        if (rv != 0) {
            fprintf(stderr, "stunkit bench: %s (%s) does not answer a Binding request: %s\n", argv[optind], server,
                    why[0] ? why : rv == STUNKIT_ERR_TIMEOUT ? "no answer within 2000 ms" : stunkit_strerror(rv));
            return 1;
        }
    }

    /* Open and connect every socket first, so the clock measures load only. */
    bench_thread *threads = calloc((size_t)o.threads, sizeof(*threads));
    bsock *socks = calloc((size_t)o.sockets, sizeof(*socks));
    if (!threads || !socks) {
        fprintf(stderr, "stunkit bench: out of memory\n");
        return 2;
    }
    struct sockaddr_storage ss;
    int slen = stunkit_addr_to_sockaddr(&o.server, &ss);
    for (int k = 0; k < o.sockets; k++) {
        bsock *s = &socks[k];
        struct sockaddr_storage ls;
        socklen_t llen = sizeof(ls);
        s->fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        int size = 1 << 20;
        if (s->fd >= 0)
            setsockopt(s->fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
        if (s->fd < 0 || connect(s->fd, (struct sockaddr *)&ss, (socklen_t)slen) != 0 ||
            getsockname(s->fd, (struct sockaddr *)&ls, &llen) != 0) {
            fprintf(stderr, "stunkit bench: cannot open a socket to %s: %s\n", argv[optind], strerror(errno));
            return 2;
        }
        stunkit_addr_from_sockaddr(&s->self, (struct sockaddr *)&ls);
        s->slots = calloc((size_t)o.window, sizeof(slot));
        if (!s->slots)
            return 2;
        for (int i = 0; i < o.window; i++)
            if (getrandom(s->slots[i].tid, 12, 0) != 12)
                memset(s->slots[i].tid, 0x5a, 12);
    }
    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_bench_signal;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    uint64_t start = mono_ns();
    o.deadline_ns = start + (uint64_t)(o.duration * 1e9);
    for (int i = 0; i < o.threads; i++) {
        threads[i].o = &o;
        threads[i].socks = socks + (size_t)i * (size_t)o.sockets / (size_t)o.threads;
        threads[i].n_socks = (int)((size_t)(i + 1) * (size_t)o.sockets / (size_t)o.threads -
                                   (size_t)i * (size_t)o.sockets / (size_t)o.threads);
        pthread_create(&threads[i].th, NULL, bench_run, &threads[i]);
    }
    /* progress once a second, on stderr (not into --json unless a person
     * watches) */
    int show = !o.json || isatty(2);
    for (double at = 1.0; at < o.duration - 0.05 && !bench_stop; at += 1.0) {
        uint64_t wake = start + (uint64_t)(at * 1e9), now_ns = mono_ns();
        if (wake > now_ns) {
            struct timespec ts = {(time_t)((wake - now_ns) / 1000000000u), (long)((wake - now_ns) % 1000000000u)};
            nanosleep(&ts, NULL);
        }
        if (bench_stop)
            break; /* Ctrl-C woke us: the summary follows */
        uint64_t ok = 0, lost = 0;
        for (int i = 0; i < o.threads; i++) {
            ok += __atomic_load_n(&threads[i].progress_ok, __ATOMIC_RELAXED);
            lost += __atomic_load_n(&threads[i].progress_lost, __ATOMIC_RELAXED);
        }
        if (show)
            fprintf(stderr, "  %4.0f s  %llu answered (%.0f/s), %llu lost\n", at, (unsigned long long)ok,
                    (double)ok / at, (unsigned long long)lost);
    }
    bench_thread sum;
    memset(&sum, 0, sizeof(sum));
    for (int i = 0; i < o.threads; i++) {
        pthread_join(threads[i].th, NULL);
        sum.ok += threads[i].ok;
        sum.bad += threads[i].bad;
        sum.lost += threads[i].lost;
        sum.late += threads[i].late;
        sum.sent += threads[i].sent;
        sum.error |= threads[i].error;
        if (threads[i].max_ns > sum.max_ns)
            sum.max_ns = threads[i].max_ns;
        for (int b = 0; b < HIST_BUCKETS; b++)
            sum.hist[b] += threads[i].hist[b];
    }
    /* the rate over the run, without the drain (up to --timeout when the
     * last requests were lost) */
    uint64_t ok_in_run = 0, run_end = start;
    for (int i = 0; i < o.threads; i++) {
        ok_in_run += threads[i].ok_in_run;
        if (threads[i].run_end_ns > run_end)
            run_end = threads[i].run_end_ns;
    }
    double elapsed = run_end > start ? (double)(run_end - start) / 1e9 : o.duration;
    double rps = (double)ok_in_run / elapsed;
    double p50 = percentile(sum.hist, sum.ok, 0.50), p90 = percentile(sum.hist, sum.ok, 0.90);
    double p99 = percentile(sum.hist, sum.ok, 0.99), p999 = percentile(sum.hist, sum.ok, 0.999);
    if (o.json) {
        char lat[160] = "null"; /* no answer: no latency */
        if (sum.ok)
            snprintf(lat, sizeof(lat), "{\"p50\": %.1f, \"p90\": %.1f, \"p99\": %.1f, \"p999\": %.1f, \"max\": %.1f}",
                     p50 / 1e3, p90 / 1e3, p99 / 1e3, p999 / 1e3, (double)sum.max_ns / 1e3);
        printf("{\"server\": ");
        json_string(stdout, argv[optind], strlen(argv[optind]));
        printf(", \"server_address\": \"%s\", \"duration_s\": %.3f, \"sockets\": %d, \"window\": %d, "
               "\"threads\": %d, \"timeout_ms\": %.0f, \"answered\": %llu, \"requests_per_s\": %.0f, "
               "\"latency_us\": %s, \"lost\": %llu, \"bad\": %llu, \"late\": %llu}\n",
               server, elapsed, o.sockets, o.window, o.threads, o.timeout * 1000.0, (unsigned long long)sum.ok, rps,
               lat, (unsigned long long)sum.lost, (unsigned long long)sum.bad, (unsigned long long)sum.late);
    } else {
        char a[32], b[32], cc[32], d[32], e[32];
        fmt_dur(a, sizeof(a), p50);
        fmt_dur(b, sizeof(b), p90);
        fmt_dur(cc, sizeof(cc), p99);
        fmt_dur(d, sizeof(d), p999);
        fmt_dur(e, sizeof(e), (double)sum.max_ns);
        printf("stunkit bench %s: %.1f s, %d socket%s x window %d, %d thread%s\n", server, elapsed, o.sockets,
               o.sockets == 1 ? "" : "s", o.window, o.threads, o.threads == 1 ? "" : "s");
        printf("  answered   %llu (%.0f requests/s)\n", (unsigned long long)sum.ok, rps);
        if (sum.ok)
            printf("  latency    p50 %s   p90 %s   p99 %s   p99.9 %s   max %s\n", a, b, cc, d, e);
        else
            printf("  latency    none measured: no request was answered\n");
        printf("  lost %llu   bad %llu   late %llu\n", (unsigned long long)sum.lost, (unsigned long long)sum.bad,
               (unsigned long long)sum.late);
        if (sum.lost > sum.ok && sum.bad > sum.lost / 2)
            printf("  (most requests were lost or answered with something else than a success: 'bad')\n");
        else if (sum.lost > sum.ok)
            printf("  (most requests were lost: stunkitd's rate limit drops what is over it per source;\n"
                   "   --rate-limit 0 turns it off)\n");
    }
    for (int k = 0; k < o.sockets; k++) {
        close(socks[k].fd);
        free(socks[k].slots);
    }
    free(socks);
    free(threads);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    if (sum.error)
        return 2;
    if (bench_stop)
        return 130; /* interrupted: the summary above covers what ran */
    return sum.ok > 0 ? 0 : 1;
}
