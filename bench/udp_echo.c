/*
 * udp_echo.c - the peer for `stunkit bench --turn`: every datagram goes back
 * to where it came from, in batches (recvmmsg/sendmmsg).
 *
 * Usage: bench_udp_echo IPV4 PORT   (runs until killed)
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
        fprintf(stderr, "usage: bench_udp_echo IPV4 PORT\n");
        return 2;
    }
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)atoi(argv[2]));
    if (inet_pton(AF_INET, argv[1], &a.sin_addr) != 1)
        return 2;
    int fd = socket(AF_INET, SOCK_DGRAM, 0), size = 4 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        perror("bench_udp_echo: bind");
        return 1;
    }
    static uint8_t buf[BATCH][2048];
    struct mmsghdr m[BATCH];
    struct iovec iov[BATCH];
    struct sockaddr_in from[BATCH];
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
