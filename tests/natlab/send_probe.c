/*
 * send_probe.c - sends hand-made requests to a server for the capture tests
 * and waits briefly for each answer. Usage: send_probe IPV4 PORT
 * With --answer: one plain Binding request, its raw answer on stdout (for
 * `stunkit decode`).
 */
#include "server_util.h"

static void send_and_wait(int fd, const uint8_t *buf, size_t len, const char *to)
{
    uint8_t resp[4096];
    su_sendto(fd, buf, len, to);
    su_recv(fd, resp, sizeof(resp), 300, NULL);
}

static int answer(const char *ip, const char *port)
{
    char to[64];
    uint8_t req[20], resp[2048], tid[12];
    stunkit_writer w;
    snprintf(to, sizeof(to), "%s:%s", ip, port);
    int fd = su_udp("127.0.0.1", 0);
    su_tid(tid);
    stunkit_writer_init(&w, req, sizeof(req), STUNKIT_METHOD_BINDING, STUNKIT_CLASS_REQUEST, tid);
    su_sendto(fd, req, (size_t)stunkit_writer_finish(&w), to);
    int n = su_recv(fd, resp, sizeof(resp), 1000, NULL);
    close(fd);
    return n > 0 && fwrite(resp, 1, (size_t)n, stdout) == (size_t)n ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc == 4 && !strcmp(argv[1], "--answer"))
        return answer(argv[2], argv[3]);
    if (argc != 3)
        return 2;
    char to[64];
    snprintf(to, sizeof(to), "%s:%s", argv[1], argv[2]);
    int fd = su_udp("127.0.0.1", 0);
    uint8_t buf[2048], tid[12];
    static const uint8_t id16[16] = {0x11, 0x22, 0x33, 0x44, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    stunkit_writer w;
    size_t len;

    /* unknown comprehension-required attribute -> 420 */
    su_tid(tid);
    stunkit_writer_init(&w, buf, sizeof(buf), STUNKIT_METHOD_BINDING, STUNKIT_CLASS_REQUEST, tid);
    stunkit_put(&w, 0x7f01, "abcd", 4);
    send_and_wait(fd, buf, (size_t)stunkit_writer_finish(&w), to);
    /* the same from an RFC 3489 client -> 420, list padded to 4 bytes */
    stunkit_writer_init_rfc3489(&w, buf, sizeof(buf), STUNKIT_METHOD_BINDING, STUNKIT_CLASS_REQUEST, id16);
    stunkit_put(&w, 0x7f01, "abcd", 4);
    send_and_wait(fd, buf, (size_t)stunkit_writer_finish(&w), to);
    /* attributes that do not frame -> 400 */
    su_tid(tid);
    stunkit_writer_init(&w, buf, sizeof(buf), STUNKIT_METHOD_BINDING, STUNKIT_CLASS_REQUEST, tid);
    stunkit_put(&w, STUNKIT_ATTR_SOFTWARE, "abcd", 4);
    len = (size_t)stunkit_writer_finish(&w);
    buf[23] = 9;
    send_and_wait(fd, buf, len, to);
    /* FINGERPRINT -> answered with one */
    su_tid(tid);
    stunkit_writer_init(&w, buf, sizeof(buf), STUNKIT_METHOD_BINDING, STUNKIT_CLASS_REQUEST, tid);
    stunkit_put_fingerprint(&w);
    send_and_wait(fd, buf, (size_t)stunkit_writer_finish(&w), to);
    /* PADDING -> a padded answer */
    su_tid(tid);
    stunkit_writer_init(&w, buf, sizeof(buf), STUNKIT_METHOD_BINDING, STUNKIT_CLASS_REQUEST, tid);
    stunkit_put(&w, STUNKIT_ATTR_PADDING, NULL, 500);
    stunkit_put_fingerprint(&w);
    send_and_wait(fd, buf, (size_t)stunkit_writer_finish(&w), to);
    /* CHANGE-REQUEST with FINGERPRINT */
    su_tid(tid);
    stunkit_writer_init(&w, buf, sizeof(buf), STUNKIT_METHOD_BINDING, STUNKIT_CLASS_REQUEST, tid);
    stunkit_put_change_request(&w, STUNKIT_CHANGE_PORT);
    stunkit_put_fingerprint(&w);
    send_and_wait(fd, buf, (size_t)stunkit_writer_finish(&w), to);
    close(fd);

    /* TCP: a plain request and a CHANGE-REQUEST (-> 400) in one segment */
    int s = su_tcp(to);
    if (s >= 0) {
        su_tid(tid);
        stunkit_writer_init(&w, buf, sizeof(buf), STUNKIT_METHOD_BINDING, STUNKIT_CLASS_REQUEST, tid);
        len = (size_t)stunkit_writer_finish(&w);
        su_tid(tid);
        stunkit_writer_init(&w, buf + len, sizeof(buf) - len, STUNKIT_METHOD_BINDING, STUNKIT_CLASS_REQUEST, tid);
        stunkit_put_change_request(&w, STUNKIT_CHANGE_IP);
        len += (size_t)stunkit_writer_finish(&w);
        if (send(s, buf, len, 0) == (ssize_t)len) {
            struct pollfd p = {s, POLLIN, 0};
            if (poll(&p, 1, 500) == 1 && recv(s, buf, sizeof(buf), 0) < 0)
                perror("recv");
        }
    }
    if (s >= 0)
        close(s);
    return 0;
}
