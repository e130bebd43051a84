/*
 * bench_turn.c - `stunkit bench --turn`: N allocations, each with a channel
 * to an echo peer, closed loop with W ChannelData datagrams in flight per
 * allocation; relayed round trips per second and latency percentiles, every
 * echo checked against what was sent. With --forwarder the server is the
 * bare forwarder of bench/ (no TURN set-up: ChannelData straight away).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench_turn.h"
#include "cli.h"
#include "stunkit/stunkit.h"

#define PAYLOAD 100
#define BATCH 32
#define HIST 2048

typedef struct tsock {
    int fd;
    stunkit_turn *m;
    int bound;
    uint16_t channel;
    uint64_t seq;
} tsock;

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void rnd(void *ctx, uint8_t *b, size_t n)
{
    stunkit_random_os(ctx, b, n);
}

/* microseconds, log-ish buckets: 0-1023 us exact, then 1 ms steps */
static int bucket(uint64_t ns)
{
    uint64_t us = ns / 1000;
    if (us < 1024)
        return (int)us;
    uint64_t ms = us / 1000;
    return ms + 1024 < HIST ? (int)(ms + 1024) : HIST - 1;
}

static double bucket_us(int b)
{
    return b < 1024 ? (double)b : (double)(b - 1024) * 1000.0;
}

static double pct(const uint64_t *h, uint64_t total, double q)
{
    uint64_t want = (uint64_t)ceil((double)total * q), acc = 0;
    for (int b = 0; b < HIST; b++) {
        acc += h[b];
        if (acc >= want && acc)
            return bucket_us(b);
    }
    return 0;
}

static int setup(tsock *s, int n, const bench_turn_opts *o)
{
    struct sockaddr_storage ss;
    int sl = stunkit_addr_to_sockaddr(&o->server, &ss);
    for (int i = 0; i < n; i++) {
        s[i].fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (s[i].fd < 0 || connect(s[i].fd, (struct sockaddr *)&ss, (socklen_t)sl) != 0)
            return -1;
        int size = 1 << 20;
        setsockopt(s[i].fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
        if (o->forwarder) {
            s[i].bound = 1;
            s[i].channel = 0x4000;
            continue;
        }
        stunkit_turn_config tc = STUNKIT_CONFIG_INIT(tc);
        tc.env.random = rnd;
        tc.server = o->server;
        tc.username = o->username;
        tc.password = o->password;
        if (o->peer.family == STUNKIT_AF_INET6) /* an IPv6 relayed address (RFC 8656 7.1) */
            tc.family = STUNKIT_AF_INET6;
        s[i].m = stunkit_turn_new(&tc, stunkit_now_ms());
        if (!s[i].m)
            return -1;
    }
    if (o->forwarder)
        return 0;
    uint64_t deadline = stunkit_now_ms() + 15000;
    int bound = 0;
    while (bound < n && stunkit_now_ms() < deadline) {
        uint64_t now = stunkit_now_ms();
        for (int i = 0; i < n; i++) {
            stunkit_turn_output out;
            for (int pr; (pr = stunkit_turn_poll(s[i].m, now, &out)) != 0;) {
                if (pr < 0)
                    continue; /* STUNKIT_ERR_NOBUF: events were lost; the rest follow */
                if (out.send) {
                    (void)send(s[i].fd, out.data, out.len, 0);
                } else if (out.event == STUNKIT_TURN_EVENT_ALLOCATED) {
                    stunkit_turn_bind(s[i].m, &o->peer, now);
                } else if (out.event == STUNKIT_TURN_EVENT_BOUND) {
                    s[i].bound = 1;
                    s[i].channel = out.channel;
                    bound++;
                } else if (out.event == STUNKIT_TURN_EVENT_FAILED) {
                    fprintf(stderr, "stunkit bench: allocation %d failed: %d %s\n", i, out.error_code, out.reason);
                    return -1;
                }
            }
            uint8_t buf[2048];
            ssize_t r;
            stunkit_app_data d;
            while ((r = recv(s[i].fd, buf, sizeof(buf), 0)) > 0)
                stunkit_turn_input(s[i].m, s[i].fd, NULL, buf, (size_t)r, stunkit_now_ms(), &d);
        }
        poll(NULL, 0, 2);
    }
    return bound == n ? 0 : -1;
}

static void teardown(tsock *s, int n)
{
    uint64_t end = stunkit_now_ms() + 1500;
    for (int i = 0; i < n; i++)
        if (s[i].m)
            stunkit_turn_close(s[i].m, stunkit_now_ms());
    while (stunkit_now_ms() < end) {
        int open = 0;
        for (int i = 0; i < n; i++) {
            if (!s[i].m)
                continue;
            stunkit_turn_output out;
            for (int pr; (pr = stunkit_turn_poll(s[i].m, stunkit_now_ms(), &out)) != 0;) {
                if (pr < 0)
                    continue; /* STUNKIT_ERR_NOBUF: events were lost; the rest follow */
                if (out.send)
                    (void)send(s[i].fd, out.data, out.len, 0);
                else if (out.event == STUNKIT_TURN_EVENT_CLOSED || out.event == STUNKIT_TURN_EVENT_FAILED) {
                    stunkit_turn_free(s[i].m);
                    s[i].m = NULL;
                    break;
                }
            }
            if (!s[i].m)
                continue;
            open = 1;
            uint8_t buf[2048];
            ssize_t r;
            stunkit_app_data d;
            while ((r = recv(s[i].fd, buf, sizeof(buf), 0)) > 0)
                stunkit_turn_input(s[i].m, s[i].fd, NULL, buf, (size_t)r, stunkit_now_ms(), &d);
        }
        if (!open)
            break;
        poll(NULL, 0, 5);
    }
    for (int i = 0; i < n; i++) {
        stunkit_turn_free(s[i].m);
        close(s[i].fd);
    }
}

/* One datagram: ChannelData header, then socket index, sequence, send time. */
static size_t fill(uint8_t *p, const tsock *s, int idx)
{
    uint64_t t = mono_ns();
    p[0] = (uint8_t)(s->channel >> 8);
    p[1] = (uint8_t)s->channel;
    p[2] = 0;
    p[3] = PAYLOAD;
    memcpy(p + 4, &idx, 4);
    memcpy(p + 8, &s->seq, 8);
    memcpy(p + 16, &t, 8);
    memset(p + 24, 0x5a, PAYLOAD - 20);
    return 4 + PAYLOAD;
}

int bench_turn_run(const bench_turn_opts *o)
{
    int n = o->allocations, w = o->window;
    tsock *s = calloc((size_t)n, sizeof(*s));
    uint64_t *hist = calloc(HIST, sizeof(uint64_t));
    if (!s || !hist)
        return 1;
    if (setup(s, n, o) != 0) {
        fprintf(stderr, "stunkit bench: TURN set-up failed (allocations with a channel to the peer)\n");
        teardown(s, n);
        free(s);
        free(hist);
        return 1;
    }
    int ep = epoll_create1(EPOLL_CLOEXEC);
    for (int i = 0; i < n; i++) {
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        epoll_ctl(ep, EPOLL_CTL_ADD, s[i].fd, &ev);
    }
    static uint8_t out[BATCH][4 + PAYLOAD], in[BATCH][2048];
    struct mmsghdr om[BATCH], im[BATCH];
    struct iovec oio[BATCH], iio[BATCH];
    uint64_t answered = 0, bad = 0, sent = 0;
    /* fill every window */
    for (int i = 0; i < n; i++) {
        for (int k = 0; k < w && k < BATCH; k++) {
            oio[k] = (struct iovec){out[k], fill(out[k], &s[i], i)};
            s[i].seq++;
            memset(&om[k], 0, sizeof(om[k]));
            om[k].msg_hdr.msg_iov = &oio[k];
            om[k].msg_hdr.msg_iovlen = 1;
        }
        int got = sendmmsg(s[i].fd, om, (unsigned)(w < BATCH ? w : BATCH), 0);
        sent += got > 0 ? (uint64_t)got : 0;
    }
    uint64_t t0 = mono_ns(), end = t0 + (uint64_t)(o->duration * 1e9), last_progress = t0;
    while (mono_ns() < end) {
        struct epoll_event evs[64];
        int ne = epoll_wait(ep, evs, 64, 20);
        uint64_t now = mono_ns();
        if (ne <= 0) {
            /* nothing for a while: refill every window (losses) */
            if (now - last_progress > 200000000u) {
                for (int i = 0; i < n; i++) {
                    uint8_t p[4 + PAYLOAD];
                    size_t len = fill(p, &s[i], i);
                    s[i].seq++;
                    if (send(s[i].fd, p, len, 0) > 0)
                        sent++;
                }
                last_progress = now;
            }
            continue;
        }
        for (int e = 0; e < ne; e++) {
            int i = (int)evs[e].data.u32;
            for (int k = 0; k < BATCH; k++) {
                iio[k] = (struct iovec){in[k], sizeof(in[k])};
                memset(&im[k], 0, sizeof(im[k]));
                im[k].msg_hdr.msg_iov = &iio[k];
                im[k].msg_hdr.msg_iovlen = 1;
            }
            int r = recvmmsg(s[i].fd, im, BATCH, MSG_DONTWAIT, NULL);
            if (r <= 0)
                continue;
            now = mono_ns();
            last_progress = now;
            int refill = 0;
            for (int k = 0; k < r; k++) {
                const uint8_t *p = in[k];
                int idx;
                uint64_t t;
                if (im[k].msg_len != 4 + PAYLOAD || p[0] != (uint8_t)(s[i].channel >> 8) || p[3] != PAYLOAD ||
                    (memcpy(&idx, p + 4, 4), idx != i)) {
                    bad++;
                    continue;
                }
                memcpy(&t, p + 16, 8);
                hist[bucket(now - t)]++;
                answered++;
                refill++;
            }
            for (int k = 0; k < refill; k++) {
                oio[k] = (struct iovec){out[k], fill(out[k], &s[i], i)};
                s[i].seq++;
                memset(&om[k], 0, sizeof(om[k]));
                om[k].msg_hdr.msg_iov = &oio[k];
                om[k].msg_hdr.msg_iovlen = 1;
            }
            if (refill) {
                int got = sendmmsg(s[i].fd, om, (unsigned)refill, 0);
                sent += got > 0 ? (uint64_t)got : 0;
            }
        }
    }
    double secs = (double)(mono_ns() - t0) / 1e9;
    double rate = (double)answered / secs;
    if (o->json) {
        printf("{\"server\": \"%s\", \"mode\": \"%s\", \"allocations\": %d, \"window\": %d, \"duration_s\": %.3f, "
               "\"relayed_round_trips\": %llu, \"round_trips_per_s\": %.0f, \"latency_us\": {\"p50\": %.0f, \"p99\": "
               "%.0f}, \"sent\": %llu, \"bad\": %llu}\n",
               o->server_text, o->forwarder ? "forwarder" : "turn", n, w, secs, (unsigned long long)answered, rate,
               pct(hist, answered, 0.5), pct(hist, answered, 0.99), (unsigned long long)sent,
               (unsigned long long)bad);
    } else {
        printf("stunkit bench --turn %s: %.1f s, %d allocations x window %d, ChannelData of %d bytes\n",
               o->server_text, secs, n, w, PAYLOAD);
        printf("  relayed round trips  %llu (%.0f/s; each crosses the relay twice)\n", (unsigned long long)answered,
               rate);
        printf("  latency              p50 %.0f us   p99 %.0f us\n", pct(hist, answered, 0.5),
               pct(hist, answered, 0.99));
        printf("  sent %llu   bad %llu\n", (unsigned long long)sent, (unsigned long long)bad);
        if (!answered)
            printf("  nothing came back: is the peer an echo, and does the server let the peer in?\n");
    }
    close(ep);
    teardown(s, n);
    free(s);
    free(hist);
    return answered ? 0 : 1;
}
