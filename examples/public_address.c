/*
 * public_address.c - what a P2P application needs from STUN in a few lines:
 * its public address and port, as a server sees it.
 *
 *   cc public_address.c $(pkg-config --cflags --libs stunkit) -o public_address
 *   ./public_address stun.example.org
 */
#include <stdio.h>
#include <stunkit/stunkit.h>

int main(int argc, char **argv)
{
    stunkit_server server;
    stunkit_addr candidates[4];
    stunkit_binding_result res;
    char text[STUNKIT_ADDRSTRLEN];

    if (argc != 2 || stunkit_server_parse(argv[1], &server) != 0) {
        fprintf(stderr, "usage: %s host[:port] | stun:host[:port]\n", argv[0]);
        return 2;
    }
    int n = stunkit_server_resolve(&server, STUNKIT_UDP, 0, candidates, 4);
    for (int i = 0; i < n; i++) {
        /* one Binding transaction, RFC 8489 retransmissions, 5 s at most */
        if (stunkit_binding(&candidates[i], STUNKIT_UDP, NULL, NULL, 5000, &res) == 0) {
            stunkit_addr_format(&res.mapped, text, sizeof(text));
            printf("public address: %s\n", text);
            return 0;
        }
    }
    fprintf(stderr, "no answer from %s\n", argv[1]);
    return 1;
}
