/*
 * reflector.c - the ceiling for `make bench`: the least work a UDP STUN
 * responder can do. recvmmsg a batch, turn each datagram into a Binding
 * success response carrying XOR-MAPPED-ADDRESS (no validation at all),
 * sendmmsg the batch back. SO_REUSEPORT, one socket per thread, like stunkitd.
 *
 * Usage: bench_reflector IPV4 PORT THREADS   (runs until killed)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define BATCH 32

static struct sockaddr_in bind_addr;

static void *reflect(void *arg)
{
    (void)arg;
    int one = 1, fd = socket(AF_INET, SOCK_DGRAM, 0);
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&bind_addr, sizeof(bind_addr)) != 0) {
        perror("bench_reflector: bind");
        exit(1);
    }
    static __thread uint8_t buf[BATCH][2048];
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
        for (int i = 0; i < n; i++) {
            uint8_t *p = buf[i];
            p[0] = 0x01; /* Binding success */
            p[1] = 0x01;
            p[2] = 0;
            p[3] = 12;
            uint8_t *a = p + 20;
            a[0] = 0x00; a[1] = 0x20; a[2] = 0; a[3] = 8; /* XOR-MAPPED-ADDRESS */
            a[4] = 0; a[5] = 1;
            uint16_t port = ntohs(from[i].sin_port) ^ 0x2112;
            a[6] = (uint8_t)(port >> 8);
            a[7] = (uint8_t)port;
            uint8_t ip[4];
            memcpy(ip, &from[i].sin_addr, 4);
            for (int k = 0; k < 4; k++)
                a[8 + k] = ip[k] ^ p[4 + k];
            iov[i].iov_len = 32;
        }
        if (n > 0)
            sendmmsg(fd, m, (unsigned)n, 0);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: bench_reflector IPV4 PORT THREADS\n");
        return 2;
    }
    bind_addr.sin_family = AF_INET;
    bind_addr.sin_port = htons((uint16_t)atoi(argv[2]));
    if (inet_pton(AF_INET, argv[1], &bind_addr.sin_addr) != 1) {
        fprintf(stderr, "bench_reflector: bad address %s\n", argv[1]);
        return 2;
    }
    int n = atoi(argv[3]);
    pthread_t th[64];
    for (int i = 1; i < n && i < 64; i++)
        pthread_create(&th[i], NULL, reflect, NULL);
    reflect(NULL);
    return 0;
}
