/*
 * nat_client_test.c STUNKITD STUNKIT - `stunkit nat` and `stunkit addr` on
 * loopback: against our server (no NAT: open internet), against a server
 * without an alternate address (no verdict), and against a fake server that
 * claims an alternate address but ignores CHANGE-REQUEST: the client must
 * notice and refuse to call the filtering endpoint-independent.
 */
#include <fcntl.h>

#include "server_util.h"

static const char *stunkit_cli;

/* Runs `stunkit ARGS...` and captures stdout; returns the exit status. While
 * it runs, serve(fd...) may answer requests (fake server). */
static int run_cli(const char *const *args, char *out, size_t cap, int fake_a, int fake_b, uint16_t other_port)
{
    int pipefd[2];
    if (pipe(pipefd) != 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(pipefd[1], 1);
        close(pipefd[0]);
        char *argv[16];
        int n = 0;
        argv[n++] = (char *)stunkit_cli;
        for (; args[n - 1] && n < 15; n++)
            argv[n] = (char *)args[n - 1];
        argv[n] = NULL;
        execv(stunkit_cli, argv);
        _exit(127);
    }
    close(pipefd[1]);
    fcntl(pipefd[0], F_SETFL, O_NONBLOCK);
    size_t got = 0;
    int status = -1;
    double t0 = su_now();
    while (su_now() - t0 < 20) {
        struct pollfd p[3] = {{pipefd[0], POLLIN, 0}, {fake_a, POLLIN, 0}, {fake_b, POLLIN, 0}};
        int np = fake_a >= 0 ? 3 : 1;
        poll(p, (nfds_t)np, 20);
        ssize_t k = read(pipefd[0], out + got, cap - 1 - got);
        if (k > 0)
            got += (size_t)k;
        for (int i = 1; i < np; i++) {
            if (!(p[i].revents & POLLIN))
                continue;
            /* the fake: answer every request from the socket it reached,
             * whatever CHANGE-REQUEST says, and claim an alternate address */
            uint8_t req[1024], resp[256];
            struct sockaddr_storage ss;
            socklen_t slen = sizeof(ss);
            ssize_t n = recvfrom(p[i].fd, req, sizeof(req), 0, (struct sockaddr *)&ss, &slen);
            stunkit_msg m;
            if (n <= 0 || stunkit_msg_parse(&m, req, (size_t)n) != 0 || m.klass != STUNKIT_CLASS_REQUEST)
                continue;
            stunkit_addr src, other;
            stunkit_addr_from_sockaddr(&src, (struct sockaddr *)&ss);
            stunkit_addr_parse("127.0.0.2", other_port, &other);
            stunkit_writer w;
            stunkit_writer_init(&w, resp, sizeof(resp), STUNKIT_METHOD_BINDING, STUNKIT_CLASS_SUCCESS, m.tid);
            stunkit_put_addr(&w, STUNKIT_ATTR_XOR_MAPPED_ADDRESS, &src);
            stunkit_put_addr(&w, STUNKIT_ATTR_OTHER_ADDRESS, &other);
            int len = stunkit_writer_finish(&w);
            sendto(p[i].fd, resp, (size_t)len, 0, (struct sockaddr *)&ss, slen);
        }
        if (waitpid(pid, &status, WNOHANG) == pid) {
            while ((k = read(pipefd[0], out + got, cap - 1 - got)) > 0)
                got += (size_t)k;
            break;
        }
    }
    if (status == -1) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
    }
    close(pipefd[0]);
    out[got] = '\0';
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void test_against_stunkitd(void)
{
    const char *sargs[] = {"--listen", su_at("127.0.0.1", 830), "--alternate", "127.0.0.2", "--log-level", "warn", NULL};
    pid_t pid = su_start(sargs, su_at("127.0.0.1", 830));
    CHECK(pid > 0);
    if (pid <= 0)
        return;
    char out[4096];
    const char *nat[] = {"nat", "--json", su_at("127.0.0.1", 830), NULL};
    CHECK_EQ(run_cli(nat, out, sizeof(out), -1, -1, 0), 0);
    CHECK(strstr(out, "\"nat\": false") != NULL);
    CHECK(strstr(out, "\"filtering\": \"endpoint-independent\"") != NULL);
    CHECK(strstr(out, "\"classic\": \"open-internet\"") != NULL);
    CHECK(strstr(out, su_fmt("\"other_address\": \"%s\"", su_at("127.0.0.2", 831))) != NULL);

    const char *addr[] = {"addr", "--json", su_at("127.0.0.1", 830), NULL};
    CHECK_EQ(run_cli(addr, out, sizeof(out), -1, -1, 0), 0);
    CHECK(strstr(out, "\"transport\": \"udp\"") && strstr(out, "\"nat\": false"));
    const char *addr_tcp[] = {"addr", "--json", "--tcp", su_fmt("stun:%s", su_at("127.0.0.1", 830)), NULL};
    CHECK_EQ(run_cli(addr_tcp, out, sizeof(out), -1, -1, 0), 0);
    CHECK(strstr(out, "\"transport\": \"tcp\"") && strstr(out, "\"mapped\": \"127.0.0.1:"));
    const char *addr_local[] = {"addr", "--json", "--local", su_at("127.0.0.9", 839), su_at("127.0.0.1", 830), NULL};
    CHECK_EQ(run_cli(addr_local, out, sizeof(out), -1, -1, 0), 0);
    CHECK(strstr(out, su_fmt("\"mapped\": \"%s\"", su_at("127.0.0.9", 839))) != NULL);
    CHECK_EQ(su_stop(pid), 0);

    /* nobody there: addr gives up (1); nat heeds the ICMP port unreachable
     * and the refused TCP: no verdict (1), not "UDP blocked" */
    const char *addr_none[] = {"addr", "--timeout", "300", su_at("127.0.0.1", 838), NULL};
    CHECK_EQ(run_cli(addr_none, out, sizeof(out), -1, -1, 0), 1);
    const char *nat_none[] = {"nat", "--json", "--timeout", "300", su_at("127.0.0.1", 838), NULL};
    CHECK_EQ(run_cli(nat_none, out, sizeof(out), -1, -1, 0), 1);
    CHECK(strstr(out, "\"classic\": null") != NULL);
    CHECK(strstr(out, "\"server_unreachable\": true") != NULL);
}

static void test_ipv6_client(void)
{
    int probe = su_udp("::1", 0);
    if (probe < 0) {
        fprintf(stderr, "skip test_ipv6_client: no ::1 on this host\n");
        return;
    }
    close(probe);
    const char *sargs[] = {"--listen", su_at("::1", 836), "--log-level", "warn", NULL};
    pid_t pid = su_start(sargs, su_at("::1", 836));
    CHECK(pid > 0);
    if (pid <= 0)
        return;
    char out[4096];
    const char *udp[] = {"addr", "--json", "-6", su_at("::1", 836), NULL};
    CHECK_EQ(run_cli(udp, out, sizeof(out), -1, -1, 0), 0);
    CHECK(strstr(out, "\"mapped\": \"[::1]:") != NULL);
    const char *tcp[] = {"addr", "--json", "--tcp", su_fmt("stun:%s", su_at("::1", 836)), NULL};
    CHECK_EQ(run_cli(tcp, out, sizeof(out), -1, -1, 0), 0);
    CHECK(strstr(out, "\"transport\": \"tcp\"") && strstr(out, "\"mapped\": \"[::1]:"));
    const char *wrong[] = {"addr", "-4", su_at("::1", 836), NULL}; /* an IPv6 server with -4 */
    CHECK_EQ(run_cli(wrong, out, sizeof(out), -1, -1, 0), 1);
    CHECK_EQ(su_stop(pid), 0);
}

static void test_basic_server(void)
{
    /* No alternate address: no behaviour discovery, no verdict, exit 1. */
    const char *sargs[] = {"--listen", su_at("127.0.0.1", 832), "--log-level", "warn", NULL};
    pid_t pid = su_start(sargs, su_at("127.0.0.1", 832));
    CHECK(pid > 0);
    if (pid <= 0)
        return;
    char out[4096];
    const char *nat[] = {"nat", "--json", su_at("127.0.0.1", 832), NULL};
    CHECK_EQ(run_cli(nat, out, sizeof(out), -1, -1, 0), 1);
    CHECK(strstr(out, "\"behavior_discovery\": false") != NULL);
    CHECK(strstr(out, "\"classic\": null") != NULL);
    CHECK_EQ(su_stop(pid), 0);
}

static void test_server_ignoring_change_request(void)
{
    int a = su_udp("127.0.0.1", su_port(834)), b = su_udp("127.0.0.2", su_port(835));
    CHECK(a >= 0 && b >= 0);
    char out[4096];
    const char *nat[] = {"nat", "--json", su_at("127.0.0.1", 834), NULL};
    int rc = run_cli(nat, out, sizeof(out), a, b, su_port(835));
    fprintf(stderr, "%s", out);
    CHECK_EQ(rc, 1);
    CHECK(strstr(out, "\"server_ignores_change_request\": true") != NULL);
    CHECK(strstr(out, "\"filtering\": null") != NULL);
    CHECK(strstr(out, "\"classic\": null") != NULL);
    close(a);
    close(b);
}

int main(int argc, char **argv)
{
    if (argc < 3)
        return 2;
    su_stunkitd = argv[1];
    stunkit_cli = argv[2];
    RUN(test_against_stunkitd);
    RUN(test_ipv6_client);
    RUN(test_basic_server);
    RUN(test_server_ignoring_change_request);
    TEST_END();
}
