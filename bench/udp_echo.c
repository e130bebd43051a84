/*
 * udp_echo.c - the peer for `stunkit bench --turn`: every datagram goes back
 * to where it came from, in batches (recvmmsg/sendmmsg).
 *
 * Usage: bench_udp_echo ADDR PORT   (IPv4 or IPv6; runs until killed)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define BATCH 64

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: bench_udp_echo ADDR PORT\n");
        return 2;
    }
    struct sockaddr_in6 a6;
    struct sockaddr_in a4;
    memset(&a6, 0, sizeof(a6));
    memset(&a4, 0, sizeof(a4));
    uint16_t port = htons((uint16_t)atoi(argv[2]));
    int v6 = strchr(argv[1], ':') != NULL;
    a6.sin6_family = AF_INET6;
    a6.sin6_port = port;
    a4.sin_family = AF_INET;
    a4.sin_port = port;
    if (v6 ? inet_pton(AF_INET6, argv[1], &a6.sin6_addr) != 1 : inet_pton(AF_INET, argv[1], &a4.sin_addr) != 1) {
        fprintf(stderr, "bench_udp_echo: '%s' is not an IP address\n", argv[1]);
        return 2;
    }
    int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM, 0), size = 4 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
    if (v6 ? bind(fd, (struct sockaddr *)&a6, sizeof(a6)) != 0 : bind(fd, (struct sockaddr *)&a4, sizeof(a4)) != 0) {
        perror("bench_udp_echo: bind");
        return 1;
    }
    static uint8_t buf[BATCH][2048];
    struct mmsghdr m[BATCH];
    struct iovec iov[BATCH];
    struct sockaddr_storage from[BATCH];
    for (;;) {
        for (int i = 0; i < BATCH; i++) {
            iov[i].iov_base = buf[i];
            iov[i].iov_len = sizeof(buf[i]);
            memset(&m[i], 0, sizeof(m[i]));
            m[i].msg_hdr.msg_iov = &iov[i];
            m[i].msg_hdr.msg_iovlen = 1;
            m[i].msg_hdr.msg_name = &from[i];
            m[i].msg_hdr.msg_namelen = sizeof(from[i]);
        }
        int n = recvmmsg(fd, m, BATCH, MSG_WAITFORONE, NULL);
        for (int i = 0; i < n; i++)
            iov[i].iov_len = m[i].msg_len;
        if (n > 0)
            sendmmsg(fd, m, (unsigned)n, 0);
    }
}
