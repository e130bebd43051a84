/*
 * server_stream_test.c STUNKITD - STUN over TCP under a hostile or careless
 * client, against a real stunkitd on loopback:
 *   - pipelining (RFC 8489 6.2.2): 257 requests, or 9 requests with 1 KiB of
 *     PADDING, in one write all get answers; a client that writes 2000
 *     requests before reading any gets all 2000 (backpressure, not a close);
 *   - a request trickled a byte at a time is cut off at --request-timeout;
 *   - slowloris: 6,000 connections from 6,000 addresses trickling a byte
 *     every 2 s do not stop newcomers being served;
 *   - a per-source cap;
 *   - out of descriptors: no busy loop, one log line, served again after.
 * Bounded in count and time; every process stopped by PID.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "server_util.h"

static size_t binding(uint8_t *buf, size_t cap, size_t padding)
{
    uint8_t tid[12];
    stunkit_writer w;
    su_tid(tid);
    stunkit_writer_init(&w, buf, cap, STUNKIT_METHOD_BINDING, STUNKIT_CLASS_REQUEST, tid);
    if (padding)
        stunkit_put(&w, STUNKIT_ATTR_PADDING, NULL, padding);
    return (size_t)stunkit_writer_finish(&w);
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k <= 0)
            return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

/* Reads framed STUN answers until want are in or ms pass without progress;
 * returns how many success answers arrived. */
static int read_answers(int fd, int want, int ms)
{
    static uint8_t buf[1 << 16];
    size_t have = 0;
    int got = 0;
    while (got < want) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, ms) <= 0)
            break;
        ssize_t n = recv(fd, buf + have, sizeof(buf) - have, 0);
        if (n <= 0)
            break;
        have += (size_t)n;
        for (;;) {
            size_t need;
            if (stunkit_msg_frame(buf, have, &need) != 0 || have < need)
                break;
            stunkit_msg m;
            if (stunkit_msg_parse(&m, buf, need) == 0 && m.klass == STUNKIT_CLASS_SUCCESS)
                got++;
            memmove(buf, buf + need, have - need);
            have -= need;
        }
    }
    return got;
}

/* A TCP connection from a given source IP (port chosen by the kernel). */
static int tcp_from(const char *src_ip, const char *to, int nonblock)
{
    stunkit_addr s, d;
    struct sockaddr_storage ss, ds;
    stunkit_addr_parse(src_ip, 0, &s);
    stunkit_addr_parse(to, 0, &d);
    int sl = stunkit_addr_to_sockaddr(&s, &ss), dl = stunkit_addr_to_sockaddr(&d, &ds);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0);
    if (fd < 0)
        return -1;
    if (bind(fd, (struct sockaddr *)&ss, (socklen_t)sl) != 0 ||
        (connect(fd, (struct sockaddr *)&ds, (socklen_t)dl) != 0 && errno != EINPROGRESS)) {
        close(fd);
        return -1;
    }
    return fd;
}

/* One Binding over a fresh connection from src_ip; 1 if answered within ms. */
static int served(const char *src_ip, const char *to, int ms)
{
    uint8_t req[64];
    int fd = tcp_from(src_ip, to, 0);
    if (fd < 0)
        return 0;
    size_t len = binding(req, sizeof(req), 0);
    int ok = write_all(fd, req, len) == 0 && read_answers(fd, 1, ms) == 1;
    close(fd);
    return ok;
}

static void test_pipelining(void)
{
    const char *to = su_at("127.0.0.1", 300);
    const char *args[] = {"--listen", to, "--threads", "1", "--rate-limit", "0", "--log-level", "warn", NULL};
    pid_t pid = su_start(args, to);
    CHECK(pid > 0);
    if (pid <= 0)
        return;
    static uint8_t batch[2000 * 20];
    /* 257 requests in one write */
    size_t off = 0;
    for (int i = 0; i < 257; i++)
        off += binding(batch + off, sizeof(batch) - off, 0);
    int fd = su_tcp(to);
    CHECK(fd >= 0 && write_all(fd, batch, off) == 0);
    int got = read_answers(fd, 257, 2000);
    fprintf(stderr, "257 pipelined requests: %d answers\n", got);
    CHECK_EQ(got, 257);
    close(fd);
    /* 9 requests with 1 KiB of PADDING each (answers padded as large) */
    off = 0;
    for (int i = 0; i < 9; i++)
        off += binding(batch + off, sizeof(batch) - off, 1024);
    fd = su_tcp(to);
    CHECK(fd >= 0 && write_all(fd, batch, off) == 0);
    got = read_answers(fd, 9, 2000);
    fprintf(stderr, "9 padded pipelined requests: %d answers\n", got);
    CHECK_EQ(got, 9);
    close(fd);
    /* 2000 requests written before reading a byte: the server pauses
     * reading while its answers wait, and every one arrives */
    off = 0;
    for (int i = 0; i < 2000; i++)
        off += binding(batch + off, sizeof(batch) - off, 0);
    fd = su_tcp(to);
    int small = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    CHECK(fd >= 0 && write_all(fd, batch, off) == 0);
    su_sleep_ms(300); /* the server fills our receive buffer and must wait */
    got = read_answers(fd, 2000, 2000);
    fprintf(stderr, "2000 requests before reading: %d answers\n", got);
    CHECK_EQ(got, 2000);
    close(fd);
    CHECK_EQ(su_stop(pid), 0);
}

static void test_request_deadline(void)
{
    const char *to = su_at("127.0.0.1", 301);
    const char *args[] = {"--listen", to, "--threads", "1", "--request-timeout", "2", "--tcp-idle", "60",
                          "--log-level", "warn", NULL};
    pid_t pid = su_start(args, to);
    CHECK(pid > 0);
    if (pid <= 0)
        return;
    uint8_t req[64];
    size_t len = binding(req, sizeof(req), 0);
    int fd = su_tcp(to);
    double t0 = su_now();
    int closed = 0;
    /* one byte every 400 ms: the whole request would take 8 s */
    for (size_t i = 0; i < len && su_now() - t0 < 6; i++) {
        if (send(fd, req + i, 1, MSG_NOSIGNAL) != 1) {
            closed = 1;
            break;
        }
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 400) > 0) {
            char c;
            if (recv(fd, &c, 1, 0) <= 0) {
                closed = 1;
                break;
            }
        }
    }
    double when = su_now() - t0;
    fprintf(stderr, "trickled request closed: %s after %.1f s\n", closed ? "yes" : "no", when);
    CHECK(closed);
    CHECK(when < 4.5);
    /* an idle connection with nothing under way is kept (idle 60 s) */
    fd = su_tcp(to);
    su_sleep_ms(2600);
    CHECK(write_all(fd, req, len) == 0 && read_answers(fd, 1, 1000) == 1);
    close(fd);
    CHECK_EQ(su_stop(pid), 0);
}

static void test_per_source(void)
{
    const char *to = su_at("127.0.0.1", 302);
    const char *args[] = {"--listen", to, "--threads", "1", "--tcp-per-source", "4", "--log-level", "warn", NULL};
    pid_t pid = su_start(args, to);
    CHECK(pid > 0);
    if (pid <= 0)
        return;
    int fds[10];
    for (int i = 0; i < 10; i++)
        fds[i] = tcp_from("127.0.0.20", to, 0);
    su_sleep_ms(200);
    uint8_t req[64];
    size_t len = binding(req, sizeof(req), 0);
    int answered = 0;
    for (int i = 0; i < 10; i++)
        answered += fds[i] >= 0 && write_all(fds[i], req, len) == 0 && read_answers(fds[i], 1, 500) == 1;
    fprintf(stderr, "one source, 10 connections, cap 4: %d answered\n", answered);
    CHECK_EQ(answered, 4);
    CHECK(served("127.0.0.21", to, 1000)); /* another source is not affected */
    for (int i = 0; i < 10; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    CHECK_EQ(su_stop(pid), 0);
}

#define ATTACKERS 6000

static void test_slowloris(void)
{
    const char *to = su_at("127.0.0.1", 303);
    const char *args[] = {"--listen", to, "--threads", "1", "--tcp-max-conns", "1000", "--tcp-idle", "60",
                          "--request-timeout", "30", "--log-level", "warn", NULL};
    unsigned long limit = su_raise_nofile();
    if (limit < ATTACKERS + 200) {
        fprintf(stderr, "skip slowloris: descriptor limit %lu\n", limit);
        return;
    }
    pid_t pid = su_start(args, to);
    CHECK(pid > 0);
    if (pid <= 0)
        return;
    static int fds[ATTACKERS];
    static double next[ATTACKERS];
    char ip[32];
    /* 6,000 sources: 127.1.x.y */
    for (int i = 0; i < ATTACKERS; i++) {
        snprintf(ip, sizeof(ip), "127.1.%d.%d", i / 250, i % 250 + 1);
        fds[i] = tcp_from(ip, to, 1);
        next[i] = su_now() + (double)(i % 2000) / 1000.0;
    }
    uint8_t req[64];
    binding(req, sizeof(req), 0);
    int good = 0, tries = 0, reconnects = 0;
    double t0 = su_now(), next_good = t0 + 1.0;
    while (su_now() - t0 < 9.0) {
        double now = su_now();
        /* each attacker: one byte every 2 s; reconnect when cut off */
        for (int i = 0; i < ATTACKERS; i++) {
            if (now < next[i])
                continue;
            next[i] = now + 2.0;
            if (fds[i] < 0 || send(fds[i], req + (i % 4), 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
                if (fds[i] >= 0 && errno == EAGAIN)
                    continue;
                if (fds[i] >= 0)
                    close(fds[i]);
                snprintf(ip, sizeof(ip), "127.1.%d.%d", i / 250, i % 250 + 1);
                fds[i] = tcp_from(ip, to, 1);
                reconnects++;
            }
        }
        /* a newcomer every 250 ms must be answered within 1 s */
        if (now >= next_good) {
            next_good = now + 0.25;
            tries++;
            good += served("127.0.0.30", to, 1000);
        }
        su_sleep_ms(10);
    }
    fprintf(stderr, "slowloris: %d of %d newcomers served; attackers reconnected %d times\n", good, tries,
            reconnects);
    CHECK(tries >= 20);
    CHECK_EQ(good, tries);
    for (int i = 0; i < ATTACKERS; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    CHECK_EQ(su_stop(pid), 0);
}

static double cpu_seconds(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    unsigned long ut = 0, st = 0;
    /* fields after the name: state ppid ... utime(14) stime(15) */
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static void test_out_of_descriptors(void)
{
    const char *to = su_at("127.0.0.1", 304);
    char log[] = "/tmp/stunkit-emfile-XXXXXX";
    int logfd = mkstemp(log);
    pid_t pid = fork();
    if (pid == 0) {
        /* a hard limit of 48 descriptors: the server runs out quickly */
        struct rlimit rl = {48, 48};
        setrlimit(RLIMIT_NOFILE, &rl);
        dup2(logfd, 2);
        execl(su_stunkitd, su_stunkitd, "--listen", to, "--threads", "1", "--no-udp", "--log-level", "warn",
              (char *)NULL);
        _exit(127);
    }
    close(logfd);
    CHECK(pid > 0);
    int up = 0;
    for (int i = 0; i < 100 && !up; i++) {
        int fd = su_tcp(to);
        if (fd >= 0) {
            up = 1;
            close(fd);
        } else {
            su_sleep_ms(50);
        }
    }
    CHECK(up);
    int fds[120];
    for (int i = 0; i < 120; i++)
        fds[i] = tcp_from("127.0.0.40", to, 1);
    su_sleep_ms(500);
    double c0 = cpu_seconds(pid);
    su_sleep_ms(1500);
    double used = cpu_seconds(pid) - c0;
    fprintf(stderr, "out of descriptors: %.2f s of CPU in 1.5 s\n", used);
    CHECK(used >= 0 && used < 0.5); /* a spinning accept loop would burn ~1.5 s */
    for (int i = 0; i < 120; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    su_sleep_ms(300);
    CHECK(served("127.0.0.41", to, 2000)); /* descriptors back: served again */
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    FILE *f = fopen(log, "r");
    char line[512];
    int lines = 0;
    while (f && fgets(line, sizeof(line), f))
        lines += strstr(line, "accept:") != NULL;
    if (f)
        fclose(f);
    unlink(log);
    fprintf(stderr, "accept failure log lines: %d\n", lines);
    CHECK_EQ(lines, 1);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s STUNKITD\n", argv[0]);
        return 2;
    }
    su_stunkitd = argv[1];
    signal(SIGPIPE, SIG_IGN);
    RUN(test_pipelining);
    RUN(test_request_deadline);
    RUN(test_per_source);
    RUN(test_out_of_descriptors);
    RUN(test_slowloris);
    TEST_END();
}
