/*
 * turn_forwarder.c - the ceiling for the TURN relay benchmark: the least
 * work a relay can do. ChannelData from a client loses its 4-byte header and
 * goes to the peer from a relay socket of that client's own (made on its
 * first packet); what the peer sends back gets the header again and goes to
 * the client. No allocation, authentication, permission or channel check.
 * recvmmsg/sendmmsg on the client side, like stunkitd; one thread.
 *
 * Usage: bench_turn_forwarder IPV4 PORT PEER_IPV4 PEER_PORT   (until killed)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define BATCH 32
#define MAX_CLIENTS 4096

typedef struct relay {
    int fd;
    struct sockaddr_in client;
    uint8_t channel[2];
} relay;

static relay relays[MAX_CLIENTS];
static int n_relays;

static relay *relay_for(int ep, const struct sockaddr_in *client, const uint8_t *hdr)
{
    for (int i = 0; i < n_relays; i++)
        if (relays[i].client.sin_port == client->sin_port && relays[i].client.sin_addr.s_addr == client->sin_addr.s_addr)
            return &relays[i];
    if (n_relays == MAX_CLIENTS)
        return NULL;
    relay *r = &relays[n_relays++];
    r->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    r->client = *client;
    memcpy(r->channel, hdr, 2);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = r};
    epoll_ctl(ep, EPOLL_CTL_ADD, r->fd, &ev);
    return r;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: bench_turn_forwarder IPV4 PORT PEER_IPV4 PEER_PORT\n");
        return 2;
    }
    struct sockaddr_in a, peer;
    memset(&a, 0, sizeof(a));
    memset(&peer, 0, sizeof(peer));
    a.sin_family = peer.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)atoi(argv[2]));
    peer.sin_port = htons((uint16_t)atoi(argv[4]));
    if (inet_pton(AF_INET, argv[1], &a.sin_addr) != 1 || inet_pton(AF_INET, argv[3], &peer.sin_addr) != 1)
        return 2;
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0), size = 4 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        perror("bench_turn_forwarder: bind");
        return 1;
    }
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    static uint8_t buf[BATCH][2048];
    struct mmsghdr m[BATCH], out[BATCH];
    struct iovec iov[BATCH], oiov[BATCH];
    struct sockaddr_in from[BATCH];
    for (;;) {
        struct epoll_event evs[64];
        int ne = epoll_wait(ep, evs, 64, -1);
        for (int e = 0; e < ne; e++) {
            relay *r = evs[e].data.ptr;
            int rfd = r ? r->fd : fd;
            for (int i = 0; i < BATCH; i++) {
                iov[i].iov_base = buf[i] + 4;
                iov[i].iov_len = sizeof(buf[i]) - 4;
                memset(&m[i], 0, sizeof(m[i]));
                m[i].msg_hdr.msg_iov = &iov[i];
                m[i].msg_hdr.msg_iovlen = 1;
                m[i].msg_hdr.msg_name = &from[i];
                m[i].msg_hdr.msg_namelen = sizeof(from[i]);
            }
            int n = recvmmsg(rfd, m, BATCH, MSG_DONTWAIT, NULL);
            if (n <= 0)
                continue;
            if (!r) { /* from clients: strip the header, to the peer from each client's relay */
                for (int i = 0; i < n; i++) {
                    relay *x = m[i].msg_len >= 4 ? relay_for(ep, &from[i], buf[i] + 4) : NULL;
                    if (x)
                        sendto(x->fd, buf[i] + 8, m[i].msg_len - 4, MSG_DONTWAIT, (struct sockaddr *)&peer,
                               sizeof(peer));
                }
            } else { /* from the peer: the header back on, to the client */
                for (int i = 0; i < n; i++) {
                    uint8_t *p = buf[i];
                    memcpy(p, r->channel, 2);
                    p[2] = (uint8_t)(m[i].msg_len >> 8);
                    p[3] = (uint8_t)m[i].msg_len;
                    oiov[i].iov_base = p;
                    oiov[i].iov_len = m[i].msg_len + 4;
                    memset(&out[i], 0, sizeof(out[i]));
                    out[i].msg_hdr.msg_iov = &oiov[i];
                    out[i].msg_hdr.msg_iovlen = 1;
                    out[i].msg_hdr.msg_name = &r->client;
                    out[i].msg_hdr.msg_namelen = sizeof(r->client);
                }
                sendmmsg(fd, out, (unsigned)n, MSG_DONTWAIT);
            }
        }
    }
}
