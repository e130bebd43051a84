/*
 * server_flood_test.c STUNKITD - a garbage flood (random bytes, truncated and
 * mangled STUN, valid requests from one hot source) at full speed from one
 * address, while a well-behaved client on another address sends a request
 * every 5 ms: the server must stay up and the client must lose no replies.
 * Bounded: 3 seconds or 5 million datagrams, whichever comes first.
 */
#define _GNU_SOURCE
#include <pthread.h>

#include "server_util.h"

#define TO su_at("127.0.0.1", 860)

static int flood_stop; /* atomic */
static unsigned long flood_sent;

static void *flood(void *arg)
{
    (void)arg;
    int fd = su_udp("127.0.0.1", 0);
    stunkit_addr to;
    struct sockaddr_storage ss;
    stunkit_addr_parse(TO, 0, &to);
    int slen = stunkit_addr_to_sockaddr(&to, &ss);
    connect(fd, (struct sockaddr *)&ss, (socklen_t)slen);
    static uint8_t bufs[64][256];
    struct mmsghdr m[64];
    struct iovec iov[64];
    unsigned seed = 42;
    uint8_t valid[20];
    stunkit_writer w;
    uint8_t tid[12] = {0};
    stunkit_writer_init(&w, valid, sizeof(valid), STUNKIT_METHOD_BINDING, STUNKIT_CLASS_REQUEST, tid);
    double t0 = su_now();
    while (!__atomic_load_n(&flood_stop, __ATOMIC_RELAXED) && su_now() - t0 < 3.0 && flood_sent < 5000000) {
        for (int i = 0; i < 64; i++) {
            uint8_t *b = bufs[i];
            size_t len;
            switch (rand_r(&seed) % 4) {
            case 0: /* random bytes */
                len = 1 + (size_t)(rand_r(&seed) % 200);
                for (size_t k = 0; k < len; k++)
                    b[k] = (uint8_t)rand_r(&seed);
                break;
            case 1: /* a truncated request */
                len = (size_t)(rand_r(&seed) % 20);
                memcpy(b, valid, len);
                break;
            case 2: /* a mangled request: random attributes under a sound header */
                len = 20 + 4 * (size_t)(rand_r(&seed) % 40);
                memcpy(b, valid, 20);
                for (size_t k = 20; k < len; k++)
                    b[k] = (uint8_t)rand_r(&seed);
                b[2] = (uint8_t)((len - 20) >> 8);
                b[3] = (uint8_t)(len - 20);
                break;
            default: /* valid requests: the rate limiter's business */
                len = 20;
                memcpy(b, valid, 20);
                b[8] = (uint8_t)rand_r(&seed);
                break;
            }
            iov[i] = (struct iovec){b, len ? len : 1};
            memset(&m[i], 0, sizeof(m[i]));
            m[i].msg_hdr.msg_iov = &iov[i];
            m[i].msg_hdr.msg_iovlen = 1;
        }
        int n = sendmmsg(fd, m, 64, 0);
        if (n > 0)
            flood_sent += (unsigned long)n;
        /* drain the few answers the limiter lets through */
        uint8_t sink[512];
        while (recv(fd, sink, sizeof(sink), MSG_DONTWAIT) > 0)
            ;
    }
    close(fd);
    return NULL;
}

static void test_flood(void)
{
    const char *args[] = {"--listen", TO, "--log-level", "warn", NULL};
    pid_t pid = su_start(args, TO);
    CHECK(pid > 0);
    if (pid <= 0)
        return;
    pthread_t th;
    pthread_create(&th, NULL, flood, NULL);
    su_sleep_ms(200); /* the flood is under way */

    int fd = su_udp("127.0.0.3", 0);
    int sent = 0, answered = 0;
    uint8_t req[20], resp[512], tid[12];
    double t0 = su_now();
    while (su_now() - t0 < 2.0) {
        stunkit_writer w;
        su_tid(tid);
        stunkit_writer_init(&w, req, sizeof(req), STUNKIT_METHOD_BINDING, STUNKIT_CLASS_REQUEST, tid);
        su_sendto(fd, req, 20, TO);
        sent++;
        int n = su_recv(fd, resp, sizeof(resp), 1000, NULL);
        stunkit_msg m;
        if (n > 0 && stunkit_msg_parse(&m, resp, (size_t)n) == 0 && !memcmp(m.tid, tid, 12))
            answered++;
        if (sent == 50)
            kill(pid, SIGUSR1); /* counters read while the workers write them */
        su_sleep_ms(5);
    }
    __atomic_store_n(&flood_stop, 1, __ATOMIC_RELAXED);
    pthread_join(th, NULL);
    fprintf(stderr, "flood: %lu datagrams; good client: %d of %d answered\n", flood_sent, answered, sent);
    CHECK(flood_sent > 10000);
    CHECK(sent > 100);
    CHECK_EQ(answered, sent);
    /* still serving, and stops cleanly */
    int kill_rc = kill(pid, 0);
    CHECK_EQ(kill_rc, 0);
    close(fd);
    CHECK_EQ(su_stop(pid), 0);
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    su_stunkitd = argv[1];
    RUN(test_flood);
    TEST_END();
}
