/*
 * metrics.c - a tiny HTTP/1.0 responder for Prometheus: every request gets
 * the counters in the text exposition format (version 0.0.4). One thread
 * polls up to --metrics-max-conns connections at once; each has 2 s from
 * accept to send its request head, however slowly it trickles, and 5 s to
 * take its answer (about 9 KB: more than a small socket buffer holds, so
 * it goes out as the reader takes it, never blocking the thread), so
 * neither a slow client nor idle connections hold a scrape or a health
 * check up. When all slots are taken, the oldest connection makes room.
 * It serves a scraper, not the public: a warning says so when it listens
 * beyond loopback.
 */
#define _GNU_SOURCE
#include "metrics.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/opensslv.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "stunkit/export.h"

#ifdef STUNKITD_HAVE_XDP
#define STUNKITD_HAVE_XDP_TEXT "yes"
#else
#define STUNKITD_HAVE_XDP_TEXT "no"
#endif

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

/* The exposition (text format 0.0.4): families of one name each, labelled
 * where the server counts the same thing several ways; counters end in
 * _total, gauges do not. Each row: a family (HELP and TYPE once, at its
 * first row), its labels, the value's field. */
typedef struct prom_row {
    const char *family, *type, *help, *labels;
    size_t off;
} prom_row;

#define F(field) offsetof(skd_stats, field)
static const prom_row rows[] = {
    {"stunkitd_received_total", "counter", "Messages received (UDP datagrams; TCP, TLS and DTLS messages)", "transport=\"udp\"", F(udp_rx)},
    {"stunkitd_received_total", NULL, NULL, "transport=\"tcp\"", F(tcp_rx)},
    {"stunkitd_received_total", NULL, NULL, "transport=\"dtls\"", F(dtls_rx)},
    {"stunkitd_sent_total", "counter", "Messages sent", "transport=\"udp\"", F(udp_tx)},
    {"stunkitd_sent_total", NULL, NULL, "transport=\"tcp\"", F(tcp_tx)},
    {"stunkitd_sent_total", NULL, NULL, "transport=\"dtls\"", F(dtls_tx)},
    {"stunkitd_received_bytes_total", "counter", "Bytes received", "transport=\"udp\"", F(udp_rx_bytes)},
    {"stunkitd_received_bytes_total", NULL, NULL, "transport=\"tcp\"", F(tcp_rx_bytes)},
    {"stunkitd_received_bytes_total", NULL, NULL, "transport=\"dtls\"", F(dtls_rx_bytes)},
    {"stunkitd_sent_bytes_total", "counter", "Bytes sent", "transport=\"udp\"", F(udp_tx_bytes)},
    {"stunkitd_sent_bytes_total", NULL, NULL, "transport=\"tcp\"", F(tcp_tx_bytes)},
    {"stunkitd_sent_bytes_total", NULL, NULL, "transport=\"dtls\"", F(dtls_tx_bytes)},
    {"stunkitd_responses_total", "counter", "Responses by STUN error code (success: no error)", "code=\"success\"", F(success)},
    {"stunkitd_responses_total", NULL, NULL, "code=\"300\"", F(err_300)},
    {"stunkitd_responses_total", NULL, NULL, "code=\"400\"", F(err_400)},
    {"stunkitd_responses_total", NULL, NULL, "code=\"401\"", F(err_401)},
    {"stunkitd_responses_total", NULL, NULL, "code=\"403\"", F(err_403)},
    {"stunkitd_responses_total", NULL, NULL, "code=\"420\"", F(err_420)},
    {"stunkitd_responses_total", NULL, NULL, "code=\"437\"", F(err_437)},
    {"stunkitd_responses_total", NULL, NULL, "code=\"438\"", F(err_438)},
    {"stunkitd_responses_total", NULL, NULL, "code=\"440\"", F(err_440)},
    {"stunkitd_responses_total", NULL, NULL, "code=\"441\"", F(err_441)},
    {"stunkitd_responses_total", NULL, NULL, "code=\"442\"", F(err_442)},
    {"stunkitd_responses_total", NULL, NULL, "code=\"443\"", F(err_443)},
    {"stunkitd_responses_total", NULL, NULL, "code=\"486\"", F(err_486)},
    {"stunkitd_responses_total", NULL, NULL, "code=\"487\"", F(err_487)},
    {"stunkitd_responses_total", NULL, NULL, "code=\"500\"", F(err_500)},
    {"stunkitd_responses_total", NULL, NULL, "code=\"508\"", F(err_508)},
    {"stunkitd_responses_total", NULL, NULL, "code=\"other\"", F(err_other)},
    {"stunkitd_redirected_total", "counter", "Answers sent elsewhere (CHANGE-REQUEST, RESPONSE-PORT)", "", F(redirected)},
    {"stunkitd_rfc3489_total", "counter", "RFC 3489 requests answered", "", F(rfc3489)},
    {"stunkitd_dropped_total", "counter", "Messages dropped without an answer, by reason", "reason=\"not_stun\"", F(drop_not_stun)},
    {"stunkitd_dropped_total", NULL, NULL, "reason=\"malformed\"", F(drop_malformed)},
    {"stunkitd_dropped_total", NULL, NULL, "reason=\"not_request\"", F(drop_not_request)},
    {"stunkitd_dropped_total", NULL, NULL, "reason=\"method\"", F(drop_method)},
    {"stunkitd_dropped_total", NULL, NULL, "reason=\"rate\"", F(drop_rate)},
    {"stunkitd_dropped_total", NULL, NULL, "reason=\"rate_strict\"", F(drop_rate_redirect)},
    {"stunkitd_dropped_total", NULL, NULL, "reason=\"turn_no_permission\"", F(turn_no_permission)},
    {"stunkitd_dropped_total", NULL, NULL, "reason=\"turn_over_quota\"", F(turn_over_quota)},
    {"stunkitd_dropped_total", NULL, NULL, "reason=\"turn_too_big\"", F(turn_too_big)},
    {"stunkitd_send_errors_total", "counter", "Datagrams the kernel would not send", "", F(send_errors)},
    {"stunkitd_xdp_total", "counter", "Datagrams the XDP program handled (also in the families above)", "action=\"answered\"", F(xdp_answered)},
    {"stunkitd_xdp_total", NULL, NULL, "action=\"passed\"", F(xdp_passed)},
    {"stunkitd_xdp_total", NULL, NULL, "action=\"dropped\"", F(xdp_dropped)},
    {"stunkitd_xdp_total", NULL, NULL, "action=\"relayed\"", F(xdp_relayed)},
    {"stunkitd_connections_total", "counter", "TCP/TLS connections, by what happened to them", "event=\"accepted\"", F(tcp_accepted)},
    {"stunkitd_connections_total", NULL, NULL, "event=\"refused\"", F(tcp_rejected)},
    {"stunkitd_connections_total", NULL, NULL, "event=\"idle_closed\"", F(tcp_idle_closed)},
    {"stunkitd_connections_total", NULL, NULL, "event=\"timeout_closed\"", F(tcp_timeout_closed)},
    {"stunkitd_connections_total", NULL, NULL, "event=\"evicted\"", F(tcp_evicted)},
    {"stunkitd_connections_total", NULL, NULL, "event=\"bad_framing\"", F(tcp_bad_framing)},
    {"stunkitd_connections_total", NULL, NULL, "event=\"proxied\"", F(tcp_proxied)},
    {"stunkitd_connections_total", NULL, NULL, "event=\"proxy_refused\"", F(tcp_proxy_refused)},
    {"stunkitd_connection_reads_paused_total", "counter", "TCP/TLS reads paused: answers not read fast enough", "", F(tcp_paused)},
    {"stunkitd_dtls_total", "counter", "DTLS handshakes, by step", "event=\"hello_verify\"", F(dtls_hello_verify)},
    {"stunkitd_dtls_total", NULL, NULL, "event=\"session\"", F(dtls_sessions)},
    {"stunkitd_dtls_total", NULL, NULL, "event=\"refused\"", F(dtls_refused)},
    {"stunkitd_turn_allocations_made_total", "counter", "TURN allocations made", "", F(turn_allocations)},
    {"stunkitd_turn_allocations_expired_total", "counter", "TURN allocations that ended (expired or deleted)", "", F(turn_expired)},
    {"stunkitd_turn_allocations", "gauge", "TURN allocations now", "", F(turn_live)},
    {"stunkitd_turn_relayed_total", "counter", "TURN datagrams relayed", "direction=\"to_peer\"", F(turn_to_peer)},
    {"stunkitd_turn_relayed_total", NULL, NULL, "direction=\"to_client\"", F(turn_to_client)},
    {"stunkitd_turn_relayed_bytes_total", "counter", "TURN application bytes relayed", "direction=\"to_peer\"", F(turn_to_peer_bytes)},
    {"stunkitd_turn_relayed_bytes_total", NULL, NULL, "direction=\"to_client\"", F(turn_to_client_bytes)},
    {"stunkitd_turn_peers_refused_total", "counter", "TURN peers refused by policy (403)", "", F(turn_peer_refused)},
    {"stunkitd_rendezvous_rooms_opened_total", "counter", "Rendezvous rooms opened", "", F(rdv_rooms_opened)},
    {"stunkitd_rendezvous_rooms_expired_total", "counter", "Rendezvous rooms closed at the end of their lifetime", "", F(rdv_rooms_expired)},
    {"stunkitd_rendezvous_rooms", "gauge", "Rendezvous rooms open now", "", F(rdv_rooms_open)},
    {"stunkitd_rendezvous_peers_met_total", "counter", "Rendezvous: second peers that joined a room", "", F(rdv_peers_met)},
    {"stunkitd_rendezvous_refused_total", "counter", "Rendezvous requests refused, by reason", "reason=\"full\"", F(rdv_refused_full)},
    {"stunkitd_rendezvous_refused_total", NULL, NULL, "reason=\"quota\"", F(rdv_refused_quota)},
    {"stunkitd_rendezvous_refused_total", NULL, NULL, "reason=\"capacity\"", F(rdv_refused_capacity)},
    {"stunkitd_rendezvous_refused_total", NULL, NULL, "reason=\"size\"", F(rdv_refused_size)},
};
#undef F

/* The standard process metrics (what Prometheus' client libraries export),
 * from /proc. */
static int process_metrics(char *b, size_t cap)
{
    int n = 0;
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        n += snprintf(b + n, cap - (size_t)n,
                      "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n"
                      "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total %.3f\n",
                      (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                          (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6);
    long page = sysconf(_SC_PAGESIZE);
    unsigned long vm = 0, rss = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f && fscanf(f, "%lu %lu", &vm, &rss) == 2 && (size_t)n < cap)
        n += snprintf(b + n, cap - (size_t)n,
                      "# HELP process_virtual_memory_bytes Virtual memory size in bytes.\n"
                      "# TYPE process_virtual_memory_bytes gauge\nprocess_virtual_memory_bytes %lu\n"
                      "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
                      "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes %lu\n",
                      vm * (unsigned long)page, rss * (unsigned long)page);
    if (f)
        fclose(f);
    int fds = 0;
    DIR *d = opendir("/proc/self/fd");
    if (d) {
        for (struct dirent *e; (e = readdir(d));)
            fds += e->d_name[0] != '.';
        closedir(d);
        fds--; /* the directory's own descriptor */
        n += snprintf(b + n, cap - (size_t)n,
                      "# HELP process_open_fds Number of open file descriptors.\n"
                      "# TYPE process_open_fds gauge\nprocess_open_fds %d\n", fds);
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && (size_t)n < cap)
        n += snprintf(b + n, cap - (size_t)n,
                      "# HELP process_max_fds Maximum number of open file descriptors.\n"
                      "# TYPE process_max_fds gauge\nprocess_max_fds %llu\n", (unsigned long long)rl.rlim_cur);
    /* the start: field 22 of /proc/self/stat (clock ticks after boot) plus the boot time */
    char st[1024];
    unsigned long long start_ticks = 0, btime = 0;
    f = fopen("/proc/self/stat", "r");
    size_t got = f ? fread(st, 1, sizeof(st) - 1, f) : 0;
    if (f)
        fclose(f);
    st[got] = 0;
    const char *p = strrchr(st, ')'); /* the command name may hold spaces */
    for (int field = 2; p && *p && field < 22; p++)
        if (*p == ' ')
            field++;
    if (p)
        start_ticks = strtoull(p, NULL, 10);
    f = fopen("/proc/stat", "r");
    char line[256];
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "btime %llu", &btime) == 1)
            break;
    if (f)
        fclose(f);
    if (btime && (size_t)n < cap)
        n += snprintf(b + n, cap - (size_t)n,
                      "# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.\n"
                      "# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds %.2f\n",
                      (double)btime + (double)start_ticks / (double)sysconf(_SC_CLK_TCK));
    return (size_t)n < cap ? n : (int)cap - 1;
}

static int exposition(skd_metrics *m, char *b, size_t cap)
{
    skd_stats total;
    skd_server_stats(m->srv, &total);
    int n = 0;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]) && (size_t)n < cap; i++) {
        const prom_row *r = &rows[i];
        uint64_t v;
        memcpy(&v, (const char *)&total + r->off, sizeof(v));
        if (r->type)
            n += snprintf(b + n, cap - (size_t)n, "# HELP %s %s\n# TYPE %s %s\n", r->family, r->help, r->family, r->type);
        if ((size_t)n < cap)
            n += snprintf(b + n, cap - (size_t)n, r->labels[0] ? "%s{%s} %llu\n" : "%s%s %llu\n", r->family, r->labels,
                          (unsigned long long)v);
    }
    if ((size_t)n < cap)
        n += snprintf(b + n, cap - (size_t)n,
                      "# HELP stunkitd_worker_threads Worker threads (UDP and TCP/TLS/DTLS)\n"
                      "# TYPE stunkitd_worker_threads gauge\nstunkitd_worker_threads %d\n"
                      "# HELP stunkitd_build_info The build: version, and the optional parts compiled in\n"
                      "# TYPE stunkitd_build_info gauge\n"
                      "stunkitd_build_info{version=\"%s\",xdp=\"%s\",openssl=\"%s\"} 1\n",
                      m->srv->n_workers, STUNKIT_VERSION, STUNKITD_HAVE_XDP_TEXT, OPENSSL_VERSION_STR);
    if ((size_t)n < cap)
        n += process_metrics(b + n, cap - (size_t)n);
    return (size_t)n < cap ? n : (int)cap - 1;
}

/* Builds the answer to a complete request head into k->out (NULL: no
 * memory; the connection is dropped). */
static void answer(skd_metrics *m, skd_metrics_conn *k, const char *req)
{
    int ok = !strncmp(req, "GET /metrics ", 13) || !strncmp(req, "GET / ", 6);
    static __thread char body[32768];
    int blen = 0;
    const char *status = ok ? "200 OK" : "404 Not Found";
    if (ok) {
        blen = exposition(m, body, sizeof(body));
    } else if (!strncmp(req, "GET /live ", 10)) {
        /* the process answers: its threads run (a health check's "alive") */
        status = "200 OK";
        blen = snprintf(body, sizeof(body), "live\n");
    } else if (!strncmp(req, "GET /ready ", 11)) {
        /* ready for new clients: bound, serving, not draining */
        int draining = __atomic_load_n(&m->srv->draining, __ATOMIC_ACQUIRE);
        status = draining ? "503 Service Unavailable" : "200 OK";
        blen = snprintf(body, sizeof(body), draining ? "draining\n" : "ready\n");
    } else {
        blen = snprintf(body, sizeof(body), "/metrics, /live and /ready are here\n");
    }
    char head[256];
    int hlen = snprintf(head, sizeof(head),
                        "HTTP/1.0 %s\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: %d\r\n"
                        "Connection: close\r\n\r\n",
                        status, blen);
    k->out = malloc((size_t)hlen + (size_t)blen);
    if (!k->out)
        return;
    memcpy(k->out, head, (size_t)hlen);
    memcpy(k->out + hlen, body, (size_t)blen);
    k->out_len = (size_t)hlen + (size_t)blen;
    k->out_off = 0;
    k->deadline_ms = mono_ms() + SKD_METRICS_ANSWER_MS;
}

static void conn_drop(skd_metrics_conn *k)
{
    close(k->fd);
    k->fd = -1;
    k->got = 0;
    free(k->out);
    k->out = NULL;
    k->out_len = k->out_off = 0;
}

/* Sends what the socket takes now; closes once all is out (or the reader
 * is gone). */
static void conn_write(skd_metrics_conn *k)
{
    while (k->out_off < k->out_len) {
        ssize_t w = send(k->fd, k->out + k->out_off, k->out_len - k->out_off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0 && (errno == EAGAIN || errno == EINTR))
            return; /* POLLOUT says when there is room */
        if (w <= 0)
            break;
        k->out_off += (size_t)w;
    }
    conn_drop(k);
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
        answer(m, k, k->req);
        if (!k->out)
            conn_drop(k);
        else
            conn_write(k);
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
    slot->out = NULL;
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
                p[n++] = (struct pollfd){m->conns[i].fd, m->conns[i].out ? POLLOUT : POLLIN, 0};
        if (poll(p, (nfds_t)n, 250) < 0 && errno != EINTR)
            break;
        if (p[1].revents & POLLIN)
            break;
        for (int i = 2; i < n; i++) {
            if (!p[i].revents)
                continue;
            for (int k = 0; k < m->max_conns; k++)
                if (m->conns[k].fd == p[i].fd) {
                    if (m->conns[k].out)
                        conn_write(&m->conns[k]);
                    else
                        conn_read(m, &m->conns[k]);
                    break;
                }
        }
        if (p[0].revents & POLLIN)
            accept_one(m);
        uint64_t now = mono_ms();
        for (int k = 0; k < m->max_conns; k++)
            if (m->conns[k].fd >= 0 && now > m->conns[k].deadline_ms)
                conn_drop(&m->conns[k]); /* a request not complete in time, or an answer not taken */
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
            conn_drop(&m->conns[i]);
    free(m->conns);
    m->conns = NULL;
}
