/*
 * peer_api.c - what an application gets from the library's peer
 * (stunkit/peer.h) itself, no forwarder between: `load` sends datagrams of
 * SIZE bytes with stunkit_peer_send(), WINDOW in flight for SECONDS, then
 * 1000 one at a time for the latency; `echo` sends every datagram back. Both
 * drive their peer in their own loop (fd, timeout, step), as an application
 * would. For `make bench` (scripts/bench-peer.sh).
 *
 * Usage: bench_peer_api echo|load SERVER ROOM USER PASSWORD [SIZE SECONDS WINDOW]
 * load prints: "round_trips_per_s P50_US P99_US LOST BUSY_CORES PATH"
 */
#define _GNU_SOURCE
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "stunkit/stunkit.h"

static int echo_mode;
static uint64_t got, want_seq;
static uint64_t last_rtt;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void on_data(stunkit_peer *p, const uint8_t *d, size_t len, void *user)
{
    (void)user;
    if (echo_mode) {
        stunkit_peer_send(p, d, len);
        return;
    }
    uint64_t stamp[2];
    if (len < sizeof(stamp))
        return;
    memcpy(stamp, d, sizeof(stamp));
    got++;
    if (stamp[0] == want_seq)
        last_rtt = now_ns() - stamp[1];
}

static void turn(stunkit_peer *p, int max_ms)
{
    uint64_t now = stunkit_now_ms(), next = stunkit_peer_timeout(p);
    int ms = next <= now ? 0 : next - now > (uint64_t)max_ms ? max_ms : (int)(next - now);
    struct pollfd pf = {stunkit_peer_fd(p), POLLIN, 0};
    (void)poll(&pf, 1, ms);
    stunkit_peer_step(p, stunkit_now_ms());
}

static void cpu(unsigned long long *busy, unsigned long long *all)
{
    unsigned long long v[8] = {0};
    FILE *f = fopen("/proc/stat", "r");
    *busy = *all = 0;
    if (f && fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
                    &v[6], &v[7]) == 8) {
        for (int i = 0; i < 8; i++)
            *all += v[i];
        *busy = *all - v[3] - v[4];
    }
    if (f)
        fclose(f);
}

static int cmp(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
    return a < b ? -1 : a > b;
}

int main(int argc, char **argv)
{
    if (argc < 6 || (strcmp(argv[1], "echo") && strcmp(argv[1], "load"))) {
        fprintf(stderr, "usage: bench_peer_api echo|load SERVER ROOM USER PASSWORD [SIZE SECONDS WINDOW]\n");
        return 2;
    }
    echo_mode = !strcmp(argv[1], "echo");
    size_t size = argc > 6 ? (size_t)atoi(argv[6]) : 200;
    int secs = argc > 7 ? atoi(argv[7]) : 3, window = argc > 8 ? atoi(argv[8]) : 64;
    if (size < 16 || size > 1400 || secs < 1 || secs > 60 || window < 1 || window > 4096)
        return 2;
    stunkit_peer_config c = STUNKIT_CONFIG_INIT(c);
    c.server = argv[2];
    c.room = argv[3];
    c.username = argv[4];
    c.password = argv[5];
    c.no_port_mapping = 1;
    c.on_data = on_data;
    char why[200];
    int err;
    stunkit_peer *p = stunkit_peer_new(&c, &err, why, sizeof(why));
    if (!p) {
        fprintf(stderr, "bench_peer_api: %s\n", why);
        return 1;
    }
    uint64_t until = stunkit_now_ms() + 20000;
    while (stunkit_peer_get_state(p) != STUNKIT_PEER_CONNECTED && stunkit_now_ms() < until)
        turn(p, 50);
    if (stunkit_peer_get_state(p) != STUNKIT_PEER_CONNECTED) {
        fprintf(stderr, "bench_peer_api: not connected\n");
        stunkit_peer_free(p);
        return 1;
    }
    if (echo_mode) {
        /* until the load side is done (its bye: the path goes), 90 s at most */
        until = stunkit_now_ms() + 90000;
        while (stunkit_peer_get_state(p) == STUNKIT_PEER_CONNECTED && stunkit_now_ms() < until)
            turn(p, 100);
        stunkit_peer_free(p);
        return 0;
    }
    /* wait out guessing / renomination (the path settles), then load */
    for (int i = 0; i < 40; i++)
        turn(p, 50);
    stunkit_peer_info info;
    stunkit_peer_get_info(p, &info);
    uint8_t buf[1500];
    memset(buf, 0x5a, sizeof(buf));
    uint64_t seq = 0, stamp[2];
    unsigned long long b0, a0, b1, a1;
    cpu(&b0, &a0);
    uint64_t start = now_ns(), end = start + (uint64_t)secs * 1000000000u;
    uint64_t sent = 0;
    while (now_ns() < end) {
        while (sent - got < (uint64_t)window) {
            stamp[0] = seq++;
            stamp[1] = now_ns();
            memcpy(buf, stamp, sizeof(stamp));
            if (stunkit_peer_send(p, buf, size) != 0)
                break;
            sent++;
        }
        uint64_t before = got;
        turn(p, 200);
        if (got == before && sent - got >= (uint64_t)window)
            sent = got; /* silence: what was in flight is lost, refill */
    }
    double rate = (double)got / ((double)(now_ns() - start) / 1e9);
    cpu(&b1, &a1);
    double busy = a1 > a0 ? (double)(b1 - b0) / (double)(a1 - a0) * (double)sysconf(_SC_NPROCESSORS_ONLN) : 0;
    for (int i = 0; i < 10; i++)
        turn(p, 30); /* drain */
    enum { N = 1000 };
    static uint64_t rtt[N];
    int k = 0, lost = 0, in_row = 0;
    for (int i = 0; i < N && in_row < 10; i++) {
        want_seq = stamp[0] = seq++;
        stamp[1] = now_ns();
        memcpy(buf, stamp, sizeof(stamp));
        last_rtt = 0;
        stunkit_peer_send(p, buf, size);
        uint64_t give_up = now_ns() + 500000000u;
        while (!last_rtt && now_ns() < give_up)
            turn(p, 100);
        if (last_rtt) {
            rtt[k++] = last_rtt;
            in_row = 0;
        } else {
            lost++;
            in_row++;
        }
    }
    qsort(rtt, (size_t)k, sizeof(rtt[0]), cmp);
    printf("%.0f %.1f %.1f %d %.2f %s\n", rate, k ? (double)rtt[k / 2] / 1000.0 : -1.0,
           k ? (double)rtt[(k * 99) / 100] / 1000.0 : -1.0, lost, busy, info.relayed ? "relayed" : "direct");
    stunkit_peer_free(p);
    return 0;
}
