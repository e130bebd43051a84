/*
 * chat.c - two people behind any two NATs type lines to each other. Both
 * run the same command with the same secret; the library finds the other
 * side (a room of stunkitd's rendezvous, named by the secret), the direct
 * path where the NATs allow one, the server's relay where not.
 *
 *   cc chat.c $(pkg-config --cflags --libs stunkit) -o chat
 *   ./chat turn:stun.example.net "our secret" alice password
 */
#include <stdio.h>
#include <string.h>
#include <stunkit/stunkit.h>

static void on_line(stunkit_peer *p, const uint8_t *data, size_t len, void *user)
{
    printf("peer: %.*s\n", (int)len, (const char *)data);
    fflush(stdout);
}

static void on_event(stunkit_peer *p, const stunkit_peer_event *ev, void *user)
{
    if (ev->type == STUNKIT_PEER_EVENT_PATH)
        fprintf(stderr, "(path: %s, by %s)\n", ev->relayed ? "through the relay" : "direct", ev->reason);
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: %s SERVER SECRET USERNAME PASSWORD\n", argv[0]);
        return 2;
    }
    stunkit_peer_config c = STUNKIT_CONFIG_INIT(c);
    c.server = argv[1];
    c.secret = argv[2]; /* the room, the ICE passwords and the seals come from it */
    c.username = argv[3];
    c.password = argv[4];
    c.on_data = on_line;
    c.on_event = on_event;

    char why[200];
    int err;
    stunkit_peer *p = stunkit_peer_new(&c, &err, why, sizeof(why));
    if (!p) {
        fprintf(stderr, "chat: %s\n", why);
        return 1;
    }
    stunkit_peer_start_thread(p); /* the peer runs itself; on_line is called from its thread */
    if (stunkit_peer_wait(p, 120000) != STUNKIT_PEER_CONNECTED) {
        stunkit_peer_info info;
        stunkit_peer_get_info(p, &info);
        fprintf(stderr, "chat: no connection: %s\n", info.reason[0] ? info.reason : "the peer did not come");
        stunkit_peer_free(p);
        return 1;
    }
    fprintf(stderr, "(connected: type away)\n");
    char line[1000];
    while (fgets(line, sizeof(line), stdin))
        stunkit_peer_send(p, line, strcspn(line, "\n"));
    stunkit_peer_free(p); /* leaves the room, frees the relay, deletes the router's mapping */
    return 0;
}
