/*
 * metrics.c - a tiny HTTP/1.0 responder for Prometheus: every request gets
 * the counters in the text exposition format (version 0.0.4). One thread,
 * one connection at a time, a 1 s budget per scrape: it serves a scraper,
 * not the public.
 */
#define _GNU_SOURCE
#include "metrics.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"

int skd_metrics_open(skd_metrics *m, const stunkit_addr *addr, skd_server *srv)
{
    struct sockaddr_storage ss;
    int len = stunkit_addr_to_sockaddr(addr, &ss), one = 1;
    char text[STUNKIT_ADDRSTRLEN];
    stunkit_addr_format(addr, text, sizeof(text));
    memset(m, 0, sizeof(*m));
    m->srv = srv;
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
    return 0;
}

static void serve_one(skd_metrics *m, int c)
{
    char req[2048];
    size_t got = 0;
    /* read the request head, at most 1 s */
    while (got < sizeof(req) - 1 && !memmem(req, got, "\r\n\r\n", 4) && !memmem(req, got, "\n\n", 2)) {
        struct pollfd p = {c, POLLIN, 0};
        if (poll(&p, 1, 1000) <= 0)
            return;
        ssize_t n = recv(c, req + got, sizeof(req) - 1 - got, 0);
        if (n <= 0)
            return;
        got += (size_t)n;
    }
    req[got] = '\0';
    int ok = !strncmp(req, "GET /metrics ", 13) || !strncmp(req, "GET / ", 6);
    char body[8192];
    int blen = 0;
    if (ok) {
        skd_stats total;
        skd_stats_sum(&total, m->srv->stats, m->srv->n_workers);
#define SKD__PROM(name, desc)                                                                                          \
    blen += snprintf(body + blen, sizeof(body) - (size_t)blen,                                                         \
                     "# HELP stunkitd_" #name "_total " desc "\n# TYPE stunkitd_" #name "_total counter\n"            \
                     "stunkitd_" #name "_total %llu\n",                                                               \
                     (unsigned long long)total.name);
        SKD_STATS_MAP(SKD__PROM)
#undef SKD__PROM
        blen += snprintf(body + blen, sizeof(body) - (size_t)blen, "# TYPE stunkitd_threads gauge\nstunkitd_threads %d\n",
                         m->srv->n_workers);
    } else {
        blen = snprintf(body, sizeof(body), "only /metrics is here\n");
    }
    char head[256];
    int hlen = snprintf(head, sizeof(head),
                        "HTTP/1.0 %s\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: %d\r\n"
                        "Connection: close\r\n\r\n",
                        ok ? "200 OK" : "404 Not Found", blen);
    if (send(c, head, (size_t)hlen, MSG_NOSIGNAL) == hlen)
        (void)send(c, body, (size_t)blen, MSG_NOSIGNAL);
}

static void *metrics_main(void *arg)
{
    skd_metrics *m = arg;
    for (;;) {
        struct pollfd p[2] = {{m->fd, POLLIN, 0}, {m->srv->stop_fd, POLLIN, 0}};
        if (poll(p, 2, -1) < 0 && errno != EINTR)
            break;
        if (p[1].revents & POLLIN)
            break;
        if (!(p[0].revents & POLLIN))
            continue;
        int c = accept4(m->fd, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0)
            continue;
        serve_one(m, c);
        close(c);
    }
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
}
