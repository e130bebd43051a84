/*
 * ev_kind.h - what an epoll event's pointer points at. Every object the
 * workers put in their epoll sets starts with `int kind`, one of these, so
 * the loop (worker.c) knows where to send the event.
 */
#ifndef STUNKITD_EV_KIND_H
#define STUNKITD_EV_KIND_H

#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>

enum {
    EV_UDP = 1, /* a UDP listening socket (worker_udp.c) */
    EV_LISTEN,  /* a TCP or TLS listener (worker_stream.c) */
    EV_CONN,    /* an accepted connection (worker_stream.c) */
    EV_STOP,    /* the stop eventfd */
    EV_DTLS,    /* a DTLS listening socket (worker_dtls.c) */
    EV_RELAY,   /* a TURN allocation's relay socket (turn_relay.c) */
    EV_DEAD     /* closed (a connection or relay socket) and freed after the batch */
};

/* Adds fd to the epoll set epfd, its events pointing at ptr (an object that
 * starts with its kind). */
static inline int skd_epoll_add(int epfd, int fd, uint32_t events, void *ptr)
{
    struct epoll_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.events = events;
    ev.data.ptr = ptr;
    return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
}

#endif
