/*
 * birthday_probe.c - one side of a birthday-paradox punch through a
 * symmetric NAT (the measurement of tests/birthday_lab.sh).
 *
 * A symmetric NAT (RFC 4787: address-and-port-dependent mapping) gives each
 * new destination a new external port, so the peer cannot learn the port to
 * answer. The hard side opens K sockets and sends one probe from each to the
 * easy side's public address: K mappings open, at K unknown ports. The easy
 * side (endpoint-independent mapping, any filtering) sends M probes from one
 * socket to M distinct random ports of the hard side's public address: each
 * opens its own NAT's filter for that port, and one that lands on an open
 * mapping reaches its socket. With N usable ports, a hit comes with about
 * 1 - exp(-K*M/N): 64% for 256 x 256 over 64511 ports.
 *
 *   birthday_probe hard PEER_IP:PORT K TIMEOUT_MS
 *   birthday_probe easy LOCAL_PORT PEER_IP M TIMEOUT_MS
 *
 * Both print one line "hit MS SENT" or "miss MS SENT" (milliseconds since
 * start, probes sent) and exit 0 on a hit, 1 on a miss, 2 on bad usage.
 * The hard side counts a hit when a probe reaches one of its sockets (it
 * answers from that socket); the easy side when that answer comes back: the
 * path works both ways.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_K 4096
#define PROBE "BDAY?"
#define REPLY "BDAY!"

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int udp(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        perror("birthday_probe: socket");
        exit(2);
    }
    return fd;
}

static int parse_ip(const char *s, struct sockaddr_in *a)
{
    memset(a, 0, sizeof(*a));
    a->sin_family = AF_INET;
    return inet_pton(AF_INET, s, &a->sin_addr) == 1 ? 0 : -1;
}

static int hard(const char *peer, long k, long timeout)
{
    static int fds[MAX_K];
    static struct pollfd pf[MAX_K];
    char ip[64];
    const char *colon = strrchr(peer, ':');
    struct sockaddr_in to;
    if (!colon || (size_t)(colon - peer) >= sizeof(ip))
        return 2;
    memcpy(ip, peer, (size_t)(colon - peer));
    ip[colon - peer] = 0;
    if (parse_ip(ip, &to) != 0)
        return 2;
    to.sin_port = htons((uint16_t)atoi(colon + 1));
    uint64_t t0 = now_ms();
    for (long i = 0; i < k; i++) {
        fds[i] = udp(0);
        sendto(fds[i], PROBE, 5, 0, (struct sockaddr *)&to, sizeof(to));
        pf[i] = (struct pollfd){fds[i], POLLIN, 0};
    }
    while (now_ms() - t0 < (uint64_t)timeout) {
        if (poll(pf, (nfds_t)k, 20) <= 0)
            continue;
        for (long i = 0; i < k; i++) {
            char buf[64];
            struct sockaddr_in from;
            socklen_t fl = sizeof(from);
            if (!(pf[i].revents & POLLIN))
                continue;
            ssize_t n = recvfrom(fds[i], buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl);
            if (n == 5 && !memcmp(buf, PROBE, 5) && from.sin_addr.s_addr == to.sin_addr.s_addr) {
                for (int r = 0; r < 3; r++)
                    sendto(fds[i], REPLY, 5, 0, (struct sockaddr *)&from, fl);
                printf("hit %llu %ld\n", (unsigned long long)(now_ms() - t0), k);
                return 0;
            }
        }
    }
    printf("miss %llu %ld\n", (unsigned long long)(now_ms() - t0), k);
    return 1;
}

static int easy(long port, const char *peer, long m, long timeout)
{
    static uint8_t used[65536];
    struct sockaddr_in to;
    if (parse_ip(peer, &to) != 0 || port < 1 || port > 65535)
        return 2;
    int fd = udp((uint16_t)port);
    uint64_t t0 = now_ms();
    long sent = 0;
    while (now_ms() - t0 < (uint64_t)timeout) {
        /* one probe per 50 us: M = 256 takes about 13 ms */
        for (int burst = 0; burst < 4 && sent < m; burst++) {
            uint16_t p;
            do {
                if (getrandom(&p, sizeof(p), 0) != sizeof(p))
                    return 2;
            } while (p < 1024 || used[p]);
            used[p] = 1;
            to.sin_port = htons(p);
            sendto(fd, PROBE, 5, 0, (struct sockaddr *)&to, sizeof(to));
            sent++;
        }
        struct pollfd pf = {fd, POLLIN, 0};
        if (poll(&pf, 1, sent < m ? 0 : 20) <= 0) {
            if (sent < m)
                usleep(200);
            continue;
        }
        char buf[64];
        struct sockaddr_in from;
        socklen_t fl = sizeof(from);
        ssize_t n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl);
        if (n == 5 && (!memcmp(buf, REPLY, 5) || !memcmp(buf, PROBE, 5)) && from.sin_addr.s_addr == to.sin_addr.s_addr) {
            printf("hit %llu %ld\n", (unsigned long long)(now_ms() - t0), sent);
            return 0;
        }
    }
    printf("miss %llu %ld\n", (unsigned long long)(now_ms() - t0), sent);
    return 1;
}

int main(int argc, char **argv)
{
    struct rlimit rl; /* K sockets: the soft descriptor limit up to the hard one */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (argc == 5 && !strcmp(argv[1], "hard")) {
        long k = atol(argv[3]);
        if (k < 1 || k > MAX_K)
            return 2;
        return hard(argv[2], k, atol(argv[4]));
    }
    if (argc == 6 && !strcmp(argv[1], "easy"))
        return easy(atol(argv[2]), argv[3], atol(argv[4]), atol(argv[5]));
    fprintf(stderr, "usage: birthday_probe hard PEER_IP:PORT K TIMEOUT_MS | easy LOCAL_PORT PEER_IP M TIMEOUT_MS\n");
    return 2;
}
