/*
 * server_util.h - helpers for tests that run a real stunkitd on loopback:
 * start it by path (and stop it by PID), UDP/TCP sockets, request building.
 */
#ifndef STUNKIT_SERVER_UTIL_H
#define STUNKIT_SERVER_UTIL_H

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "stunkit/stunkit.h"
#include "test.h"

static const char *su_stunkitd; /* path, from argv */

/* Test ports: STUNKIT_TEST_PORT_BASE (CMake sets one per build tree, so two
 * checkouts can run `make check` side by side) plus a per-test offset. */
static inline uint16_t su_port(int offset)
{
    const char *b = getenv("STUNKIT_TEST_PORT_BASE");
    int base = b ? atoi(b) : 0;
    if (base < 1024 || base > 31000)
        base = 21000;
    return (uint16_t)(base + offset);
}

/* Formatted text in one of 64 rotating buffers (test arguments). */
static inline const char *su_fmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline const char *su_fmt(const char *fmt, ...)
{
    static __thread char bufs[64][128]; /* per thread: tests have load threads */
    static __thread int next;
    char *b = bufs[next++ & 63];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b, 128, fmt, ap);
    va_end(ap);
    return b;
}

/* "IP:PORT" (or "[V6]:PORT") for su_port(offset). */
static inline const char *su_at(const char *ip, int offset)
{
    return su_fmt(strchr(ip, ':') ? "[%s]:%u" : "%s:%u", ip, (unsigned)su_port(offset));
}

static inline void su_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static inline double su_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* A UDP socket bound to ip (port 0: any). */
static inline int su_udp(const char *ip, uint16_t port)
{
    stunkit_addr a;
    struct sockaddr_storage ss;
    if (stunkit_addr_parse(ip, port, &a) != 0)
        return -1;
    int len = stunkit_addr_to_sockaddr(&a, &ss);
    int fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&ss, (socklen_t)len) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

/* A TCP connection to "ADDR:PORT" (or "[V6]:PORT"), or -1. */
static inline int su_tcp(const char *to)
{
    stunkit_addr a;
    struct sockaddr_storage ss;
    if (stunkit_addr_parse(to, 3478, &a) != 0)
        return -1;
    int len = stunkit_addr_to_sockaddr(&a, &ss);
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&ss, (socklen_t)len) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

static inline stunkit_addr su_local(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    stunkit_addr a;
    memset(&a, 0, sizeof(a));
    if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0)
        stunkit_addr_from_sockaddr(&a, (struct sockaddr *)&ss);
    return a;
}

static inline int su_sendto(int fd, const uint8_t *buf, size_t len, const char *to)
{
    stunkit_addr a;
    struct sockaddr_storage ss;
    if (stunkit_addr_parse(to, 3478, &a) != 0)
        return -1;
    int slen = stunkit_addr_to_sockaddr(&a, &ss);
    return sendto(fd, buf, len, 0, (struct sockaddr *)&ss, (socklen_t)slen) == (ssize_t)len ? 0 : -1;
}

/* Waits up to ms for a datagram; returns its length or -1. from may be NULL. */
static inline int su_recv(int fd, uint8_t *buf, size_t cap, int ms, stunkit_addr *from)
{
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, ms) <= 0)
        return -1;
    struct sockaddr_storage ss;
    socklen_t slen = sizeof(ss);
    ssize_t n = recvfrom(fd, buf, cap, 0, (struct sockaddr *)&ss, &slen);
    if (n >= 0 && from)
        stunkit_addr_from_sockaddr(from, (struct sockaddr *)&ss);
    return (int)n;
}

static inline void su_tid(uint8_t tid[12])
{
    static uint32_t counter = 0x5eed;
    for (int i = 0; i < 12; i++)
        tid[i] = (uint8_t)((counter * 2654435761u) >> (i % 4 * 8)) ^ (uint8_t)i;
    counter++;
}

/* A series ("stunkitd_turn_allocations", or one with its labels as exported) from the
 * metrics endpoint at "ADDR:PORT", or -1. */
/* GET path from an HTTP endpoint at "ADDR:PORT": the whole answer (status
 * line, head and body; valid until the next call), NULL when nothing came. */
static inline const char *su_http_get(const char *at, const char *path)
{
    int fd = su_tcp(at);
    if (fd < 0)
        return NULL;
    char get[256];
    snprintf(get, sizeof(get), "GET %s HTTP/1.0\r\n\r\n", path);
    send(fd, get, strlen(get), MSG_NOSIGNAL);
    static __thread char text[65536];
    size_t n = 0;
    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 2000) <= 0 || n + 1 >= sizeof(text))
            break;
        ssize_t r = recv(fd, text + n, sizeof(text) - 1 - n, 0);
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    text[n] = 0;
    return n ? text : NULL;
}

static inline long long su_metric(const char *at, const char *name)
{
    const char *text = su_http_get(at, "/metrics");
    if (!text)
        return -1;
    char key[128];
    snprintf(key, sizeof(key), "\n%s ", name); /* the series as exported: name{labels} */
    const char *hit = strstr(text, key);
    return hit ? atoll(hit + strlen(key)) : -1;
}

/* Starts stunkitd with the given NULL-terminated arguments; waits until it
 * answers a Binding request on probe (UDP) or gives up after 5 s. */
static inline pid_t su_start(const char *const *args, const char *probe)
{
    /* STUNKIT_TEST_WRAPPER runs the server under a tool, e.g.
     * "valgrind --error-exitcode=99 -q": its words go before the program. */
    char *argv[64], wrapper[512];
    int n = 0;
    const char *wrap = getenv("STUNKIT_TEST_WRAPPER");
    if (wrap && *wrap) {
        snprintf(wrapper, sizeof(wrapper), "%s", wrap);
        for (char *tok = strtok(wrapper, " "); tok && n < 20; tok = strtok(NULL, " "))
            argv[n++] = tok;
    }
    int first = n;
    argv[n++] = (char *)su_stunkitd;
    for (int i = 0; args[i] && n < 63; i++)
        argv[n++] = (char *)args[i];
    argv[n] = NULL;
    pid_t pid = fork();
    if (pid == 0) {
        if (first > 0)
            execvp(argv[0], argv);
        else
            execv(su_stunkitd, argv);
        _exit(127);
    }
    if (pid < 0)
        return -1;
    int fd = su_udp(strchr(probe, '[') ? "::1" : "127.0.0.5", 0);
    for (int i = 0; i < 400; i++) {
        uint8_t req[20], resp[512], tid[12];
        stunkit_writer w;
        su_tid(tid);
        stunkit_writer_init(&w, req, sizeof(req), STUNKIT_METHOD_BINDING, STUNKIT_CLASS_REQUEST, tid);
        su_sendto(fd, req, 20, probe);
        if (su_recv(fd, resp, sizeof(resp), 50, NULL) > 0) {
            close(fd);
            return pid;
        }
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            fprintf(stderr, "su_start: stunkitd %s %d before it answered on %s\n",
                    WIFEXITED(status) ? "exited with status" : "died of signal",
                    WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), probe);
            close(fd);
            return -1;
        }
    }
    fprintf(stderr, "su_start: stunkitd did not answer on %s within 20 s\n", probe);
    close(fd);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

/* A process's resident memory in kB (VmRSS), or -1. */
static inline long su_rss_kb(pid_t pid)
{
    char path[64], line[256];
    long kb = -1;
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %ld", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb;
}

/* Raises the soft descriptor limit to the hard one; returns the limit. */
static inline unsigned long su_raise_nofile(void)
{
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    return (unsigned long)rl.rlim_cur;
}

/* SIGTERM, then the exit status (or -1 if it had to be killed). */
static inline int su_stop(pid_t pid)
{
    int status;
    kill(pid, SIGTERM);
    for (int i = 0; i < 500; i++) {
        if (waitpid(pid, &status, WNOHANG) == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        su_sleep_ms(20);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return -1;
}

#endif
