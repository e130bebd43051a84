/*
 * metrics.c - a tiny HTTP/1.0 responder for Prometheus: every request gets
 * the counters in the text exposition format (version 0.0.4). One thread
 * polls up to --metrics-max-conns connections at once; each has 2 s from
 * accept to send its request head, however slowly it trickles, so neither
 * a slow client nor idle connections hold a scrape up. When all slots are
 * taken, the oldest connection makes room. It serves a scraper, not the
 * public: a warning says so when it listens beyond loopback.
 */
#define _GNU_SOURCE
#include "metrics.h"

#include <errno.h>
#include <stdlib.h>
#include <time.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int is_loopback(const stunkit_addr *a)
{
    static const uint8_t v6_loop[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    return a->family == STUNKIT_AF_INET ? a->ip[0] == 127 : memcmp(a->ip, v6_loop, 16) == 0;
}

int skd_metrics_open(skd_metrics *m, const stunkit_addr *addr, int max_conns, skd_server *srv)
{
    struct sockaddr_storage ss;
    int len = stunkit_addr_to_sockaddr(addr, &ss), one = 1;
    char text[STUNKIT_ADDRSTRLEN];
    stunkit_addr_format(addr, text, sizeof(text));
    memset(m, 0, sizeof(*m));
    m->srv = srv;
    m->max_conns = max_conns > 0 ? max_conns : 1;
    m->conns = calloc((size_t)m->max_conns, sizeof(*m->conns));
    if (!m->conns) {
        skd_error("out of memory for the metrics endpoint");
        m->fd = -1;
        return -1;
    }
    for (int i = 0; i < m->max_conns; i++)
        m->conns[i].fd = -1;
    m->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (m->fd < 0 || setsockopt(m->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(m->fd, (struct sockaddr *)&ss, (socklen_t)len) != 0 || listen(m->fd, 16) != 0) {
        skd_error("cannot open the metrics endpoint %s/tcp: %s", text, strerror(errno));
        if (m->fd >= 0)
            close(m->fd);
        m->fd = -1;
        return -1;
    }
    skd_info("metrics on http://%s/metrics", text);
    if (!is_loopback(addr))
        skd_warn("the metrics endpoint %s is not on loopback: anyone who reaches it reads the counters (firewall it, "
                 "or use 127.0.0.1)",
                 text);
    return 0;
}

/* Answers a complete request head. */
static void answer(skd_metrics *m, int c, const char *req)
{
    int ok = !strncmp(req, "GET /metrics ", 13) || !strncmp(req, "GET / ", 6);
    char body[16384];
    int blen = 0;
    if (ok) {
        skd_stats total;
        skd_server_stats(m->srv, &total);
#define SKD__PROM(name, desc)                                                                                          \
    blen += snprintf(body + blen, sizeof(body) - (size_t)blen,                                                         \
                     "# HELP stunkitd_" #name "_total " desc "\n# TYPE stunkitd_" #name "_total counter\n"            \
                     "stunkitd_" #name "_total %llu\n",                                                               \
                     (unsigned long long)total.name);
        SKD_STATS_MAP(SKD__PROM)
#undef SKD__PROM
        blen += snprintf(body + blen, sizeof(body) - (size_t)blen,
                         "# TYPE stunkitd_threads gauge\nstunkitd_threads %d\n", m->srv->n_workers);
    } else {
        blen = snprintf(body, sizeof(body), "only /metrics is here\n");
    }
    char head[256];
    int hlen = snprintf(head, sizeof(head),
                        "HTTP/1.0 %s\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: %d\r\n"
                        "Connection: close\r\n\r\n",
                        ok ? "200 OK" : "404 Not Found", blen);
    /* small enough for the socket buffer: MSG_DONTWAIT never blocks the loop */
    if (send(c, head, (size_t)hlen, MSG_NOSIGNAL | MSG_DONTWAIT) == hlen)
        (void)send(c, body, (size_t)blen, MSG_NOSIGNAL | MSG_DONTWAIT);
}

static void conn_drop(skd_metrics_conn *k)
{
    close(k->fd);
    k->fd = -1;
    k->got = 0;
}

/* Reads what arrived; answers and closes once the head is complete. */
static void conn_read(skd_metrics *m, skd_metrics_conn *k)
{
    ssize_t n = recv(k->fd, k->req + k->got, sizeof(k->req) - 1 - k->got, MSG_DONTWAIT);
    if (n <= 0) {
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        conn_drop(k);
        return;
    }
    k->got += (size_t)n;
    k->req[k->got] = '\0';
    if (memmem(k->req, k->got, "\r\n\r\n", 4) || memmem(k->req, k->got, "\n\n", 2) ||
        k->got == sizeof(k->req) - 1) {
        answer(m, k->fd, k->req);
        conn_drop(k);
    }
}

static void accept_one(skd_metrics *m)
{
    int c = accept4(m->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (c < 0)
        return;
    skd_metrics_conn *slot = NULL, *oldest = NULL;
    for (int i = 0; i < m->max_conns; i++) {
        skd_metrics_conn *k = &m->conns[i];
        if (k->fd < 0) {
            slot = k;
            break;
        }
        if (!oldest || k->deadline_ms < oldest->deadline_ms)
            oldest = k;
    }
    if (!slot) {
        conn_drop(oldest); /* full: the oldest makes room */
        slot = oldest;
    }
    slot->fd = c;
    slot->got = 0;
    slot->deadline_ms = mono_ms() + SKD_METRICS_REQUEST_MS;
}

static void *metrics_main(void *arg)
{
    skd_metrics *m = arg;
    struct pollfd *p = calloc((size_t)m->max_conns + 2, sizeof(*p));
    if (!p)
        return NULL;
    for (;;) {
        int n = 0;
        p[n++] = (struct pollfd){m->fd, POLLIN, 0};
        p[n++] = (struct pollfd){m->srv->stop_fd, POLLIN, 0};
        for (int i = 0; i < m->max_conns; i++)
            if (m->conns[i].fd >= 0)
                p[n++] = (struct pollfd){m->conns[i].fd, POLLIN, 0};
        if (poll(p, (nfds_t)n, 250) < 0 && errno != EINTR)
            break;
        if (p[1].revents & POLLIN)
            break;
        for (int i = 2; i < n; i++) {
            if (!p[i].revents)
                continue;
            for (int k = 0; k < m->max_conns; k++)
                if (m->conns[k].fd == p[i].fd) {
                    conn_read(m, &m->conns[k]);
                    break;
                }
        }
        if (p[0].revents & POLLIN)
            accept_one(m);
        uint64_t now = mono_ms();
        for (int k = 0; k < m->max_conns; k++)
            if (m->conns[k].fd >= 0 && now > m->conns[k].deadline_ms)
                conn_drop(&m->conns[k]); /* a request not complete in time */
    }
    free(p);
    return NULL;
}

int skd_metrics_start(skd_metrics *m)
{
    if (pthread_create(&m->thread, NULL, metrics_main, m) != 0)
        return -1;
    m->running = 1;
    return 0;
}

void skd_metrics_close(skd_metrics *m)
{
    if (m->running)
        pthread_join(m->thread, NULL);
    m->running = 0;
    if (m->fd >= 0)
        close(m->fd);
    m->fd = -1;
    for (int i = 0; m->conns && i < m->max_conns; i++)
        if (m->conns[i].fd >= 0)
            close(m->conns[i].fd);
    free(m->conns);
    m->conns = NULL;
}
