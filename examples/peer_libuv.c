/*
 * peer_libuv.c - the peer in a libuv loop: a uv_poll_t on stunkit_peer_fd()
 * and a uv_timer_t at stunkit_peer_timeout(), both calling stunkit_peer_step().
 * Each line on stdin goes to the peer; the peer's lines are printed.
 *
 *   cc peer_libuv.c $(pkg-config --cflags --libs stunkit libuv) -o peer_libuv
 *   ./peer_libuv turn:stun.example.net "our secret" alice password
 */
#include <stdio.h>
#include <string.h>
#include <uv.h>
#include <stunkit/stunkit.h>

static stunkit_peer *peer;
static uv_poll_t peer_io;
static uv_timer_t peer_timer;
static uv_pipe_t input;

static void step(void);

static void on_timer(uv_timer_t *t)
{
    step();
}

static void on_io(uv_poll_t *h, int status, int events)
{
    step();
}

/* One step, then the timer re-armed at the peer's next deadline. */
static void step(void)
{
    stunkit_peer_step(peer, stunkit_now_ms());
    uint64_t now = stunkit_now_ms(), next = stunkit_peer_timeout(peer);
    uv_timer_start(&peer_timer, on_timer, next > now ? next - now : 0, 0);
}

static void alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    static char line[1000];
    *b = uv_buf_init(line, sizeof(line));
}

static void on_stdin(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    if (n < 0) { /* end of input: done */
        uv_stop(uv_default_loop());
        return;
    }
    if (n > 0 && stunkit_peer_send(peer, b->base, (size_t)n - (b->base[n - 1] == '\n')) != 0)
        fprintf(stderr, "(not connected yet)\n");
}

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
    peer = stunkit_peer_new(&c, &err, why, sizeof(why));
    if (!peer) {
        fprintf(stderr, "peer_libuv: %s\n", why);
        return 1;
    }
    uv_loop_t *loop = uv_default_loop();
    uv_poll_init(loop, &peer_io, stunkit_peer_fd(peer));
    uv_poll_start(&peer_io, UV_READABLE, on_io);
    uv_timer_init(loop, &peer_timer);
    uv_pipe_init(loop, &input, 0);
    uv_pipe_open(&input, 0);
    uv_read_start((uv_stream_t *)&input, alloc_cb, on_stdin);
    step();
    uv_run(loop, UV_RUN_DEFAULT);
    stunkit_peer_free(peer);
    return 0;
}
