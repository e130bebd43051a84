/*
 * peer_load.c - load and latency through a UDP path that ends in an echo
 * (bench_udp_echo): for `make bench`'s peer paths (bare, punch --forward
 * direct, through the relay). Datagrams of SIZE bytes carry a sequence
 * number and their send time; WINDOW of them are kept in flight for
 * SECONDS; then one at a time for the latency (1000 round trips).
 *
 * Usage: bench_peer_load BIND_ADDR:PORT TO_ADDR:PORT SIZE SECONDS WINDOW
 * Prints: "dgrams_per_s P50_US P99_US LOST BUSY_CORES" (IPv4); BUSY_CORES is
 * how many of the machine's cores were busy (not idle, /proc/stat) during
 * the throughput phase, whatever ran there: the load, the echo, the
 * forwarders and the kernel's network path between them.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int parse(const char *s, struct sockaddr_in *a)
{
    char ip[64];
    const char *c = strrchr(s, ':');
    if (!c || (size_t)(c - s) >= sizeof(ip))
        return -1;
    memcpy(ip, s, (size_t)(c - s));
    ip[c - s] = 0;
    memset(a, 0, sizeof(*a));
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)atoi(c + 1));
    return inet_pton(AF_INET, ip, &a->sin_addr) == 1 ? 0 : -1;
}

static int cmp(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
    return a < b ? -1 : a > b;
}

/* busy and all jiffies since boot, every core */
static void cpu(unsigned long long *busy, unsigned long long *all)
{
    unsigned long long v[10] = {0};
    FILE *f = fopen("/proc/stat", "r");
    *busy = *all = 0;
    if (!f)
        return;
    if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6],
               &v[7]) == 8) {
        for (int i = 0; i < 8; i++)
            *all += v[i];
        *busy = *all - v[3] - v[4]; /* idle, iowait */
    }
    fclose(f);
}

typedef struct stamp {
    uint64_t seq, sent;
} stamp;

int main(int argc, char **argv)
{
    struct sockaddr_in me, to;
    if (argc != 6 || parse(argv[1], &me) || parse(argv[2], &to)) {
        fprintf(stderr, "usage: bench_peer_load BIND_ADDR:PORT TO_ADDR:PORT SIZE SECONDS WINDOW\n");
        return 2;
    }
    size_t size = (size_t)atoi(argv[3]);
    int secs = atoi(argv[4]), window = atoi(argv[5]);
    if (size < sizeof(stamp) || size > 1400 || secs < 1 || secs > 60 || window < 1 || window > 4096) {
        fprintf(stderr, "bench_peer_load: SIZE 16-1400, SECONDS 1-60, WINDOW 1-4096\n");
        return 2;
    }
    int fd = socket(AF_INET, SOCK_DGRAM, 0), big = 4 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
    if (bind(fd, (struct sockaddr *)&me, sizeof(me)) != 0 || connect(fd, (struct sockaddr *)&to, sizeof(to)) != 0) {
        perror("bench_peer_load");
        return 1;
    }
    uint8_t buf[1500];
    memset(buf, 0x5a, sizeof(buf));
    stamp st;
    uint64_t seq = 0, got = 0, sent = 0;
    /* throughput: a window in flight; a datagram lost is replaced after 200 ms of silence */
    unsigned long long b0, a0, b1, a1;
    cpu(&b0, &a0);
    uint64_t start = now_ns(), end = start + (uint64_t)secs * 1000000000u, last_rx = start;
    int inflight = 0;
    while (now_ns() < end) {
        while (inflight < window) {
            st.seq = seq++;
            st.sent = now_ns();
            memcpy(buf, &st, sizeof(st));
            if (send(fd, buf, size, MSG_DONTWAIT) < 0)
                break;
            sent++;
            inflight++;
        }
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 200) <= 0) {
            if (now_ns() - last_rx > 200000000u)
                inflight = 0; /* lost: refill */
            continue;
        }
        ssize_t n;
        while ((n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0) {
            got++;
            if (inflight > 0)
                inflight--;
            last_rx = now_ns();
        }
    }
    double rate = (double)got / ((double)(now_ns() - start) / 1e9);
    cpu(&b1, &a1);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    double busy = a1 > a0 ? (double)(b1 - b0) / (double)(a1 - a0) * (double)cores : 0;
    /* drain what is still in flight */
    struct pollfd p = {fd, POLLIN, 0};
    while (poll(&p, 1, 300) > 0 && recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0)
        ;
    /* latency: one at a time */
    enum { N = 1000 };
    static uint64_t rtt[N];
    int k = 0, lost = 0, in_row = 0;
    for (int i = 0; i < N && in_row < 10; i++) { /* ten lost in a row: the path is gone */
        st.seq = seq++;
        st.sent = now_ns();
        memcpy(buf, &st, sizeof(st));
        send(fd, buf, size, 0);
        for (;;) {
            struct pollfd q = {fd, POLLIN, 0};
            if (poll(&q, 1, 500) <= 0) {
                lost++;
                in_row++;
                break;
            }
            in_row = 0;
            if (recv(fd, buf, sizeof(buf), 0) < (ssize_t)sizeof(st))
                continue;
            stamp back;
            memcpy(&back, buf, sizeof(back));
            if (back.seq != st.seq)
                continue; /* a late one from the window */
            rtt[k++] = now_ns() - back.sent;
            break;
        }
    }
    qsort(rtt, (size_t)k, sizeof(rtt[0]), cmp);
    double p50 = k ? (double)rtt[k / 2] / 1000.0 : -1, p99 = k ? (double)rtt[(k * 99) / 100] / 1000.0 : -1;
    printf("%.0f %.1f %.1f %d %.2f\n", rate, p50, p99, lost, busy);
    (void)sent;
    return 0;
}
