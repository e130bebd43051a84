/*
 * peer_epoll.c - the peer in the application's own event loop: one
 * descriptor to watch (stunkit_peer_fd), one deadline (stunkit_peer_timeout),
 * one call (stunkit_peer_step). Here the loop is epoll, and the application's
 * other descriptor is stdin: each line typed goes to the peer.
 *
 *   cc peer_epoll.c $(pkg-config --cflags --libs stunkit) -o peer_epoll
 *   ./peer_epoll turn:stun.example.net "our secret" alice password
 */
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>
#include <stunkit/stunkit.h>

static void on_data(stunkit_peer *p, const uint8_t *data, size_t len, void *user)
{
    printf("peer: %.*s\n", (int)len, (const char *)data);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: %s SERVER SECRET USERNAME PASSWORD\n", argv[0]);
        return 2;
    }
    stunkit_peer_config c = STUNKIT_CONFIG_INIT(c);
    c.server = argv[1];
    c.secret = argv[2];
    c.username = argv[3];
    c.password = argv[4];
    c.on_data = on_data;
    char why[200];
    int err;
    stunkit_peer *p = stunkit_peer_new(&c, &err, why, sizeof(why));
    if (!p) {
        fprintf(stderr, "peer_epoll: %s\n", why);
        return 1;
    }

    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = stunkit_peer_fd(p)};
    epoll_ctl(ep, EPOLL_CTL_ADD, stunkit_peer_fd(p), &ev);
    ev.data.fd = 0;
    epoll_ctl(ep, EPOLL_CTL_ADD, 0, &ev);
    for (int open = 1; open;) {
        uint64_t now = stunkit_now_ms(), next = stunkit_peer_timeout(p);
        struct epoll_event got[4];
        int n = epoll_wait(ep, got, 4, next > now ? (int)(next - now) : 0);
        stunkit_peer_step(p, stunkit_now_ms()); /* on either: reads what came, acts on what is due */
        for (int i = 0; i < n; i++) {
            char line[1000];
            if (got[i].data.fd != 0)
                continue;
            ssize_t r = read(0, line, sizeof(line));
            if (r <= 0)
                open = 0;
            else if (stunkit_peer_send(p, line, (size_t)r - (line[r - 1] == '\n')) != 0)
                fprintf(stderr, "(not connected yet: %s)\n", stunkit_peer_state_name(stunkit_peer_get_state(p)));
        }
        stunkit_peer_state s = stunkit_peer_get_state(p);
        if (s == STUNKIT_PEER_FAILED || s == STUNKIT_PEER_DISCONNECTED)
            open = 0;
    }
    close(ep);
    stunkit_peer_free(p);
    return 0;
}
