/*
 * fuzz_peer.c - libFuzzer target for what the peer (stunkit/peer.h) takes
 * from the other side: its description, in parts as signalling carries it
 * (stunkit_peer_apply: lines kept whole across parts, credentials first,
 * seals with a secret, ".local" names for mDNS), the datagrams that reach
 * the application path (the peers' own "SKP1 nat / spray" messages among
 * them: peer_app_in), and a multicast DNS answer (sk_mdns_records). The
 * agent is stepped on a fake clock between parts, so checks are scheduled
 * toward whatever the input names; the peer's sockets are taken away
 * first, so nothing it is fed makes it send a packet anywhere.
 *
 * Input: byte 0 picks the secret (bit 0), the role (bit 1); the rest is
 * split at 0xff bytes: the first parts are the description, applied one
 * by one; a part that starts with 0xfe is a datagram of the peer's instead.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mdns.h"
#include "peer_int.h"
#include "stunkit/stunkit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t fake_now;

static uint64_t fuzz_clock(void *ctx)
{
    (void)ctx;
    return fake_now;
}

static void fixed(void *ctx, uint8_t *buf, size_t len)
{
    (void)ctx;
    memset(buf, 0x41, len);
}

static void record(void *ctx, const char *name, const stunkit_addr *a)
{
    (void)ctx;
    if (strlen(name) > 255 || (a->family != STUNKIT_AF_INET && a->family != STUNKIT_AF_INET6))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    (void)sk_mdns_records(data, size, record, NULL);
    fake_now = 1000000;
    stunkit_peer_config c = STUNKIT_CONFIG_INIT(c);
    c.server = "127.0.0.1:1";
    c.own_signalling = 1;
    c.trickle = 1;
    c.secret = data[0] & 1 ? "fuzz" : NULL;
    c.controlling = (data[0] >> 1) & 1;
    c.no_port_mapping = 1;
    c.no_mdns = 1;
    c.clock = fuzz_clock;
    c.env.random = fixed;
    const char *lo[] = {"127.0.0.1"};
    c.local_addresses = lo;
    c.n_local_addresses = 1;
    int err;
    stunkit_peer *p = stunkit_peer_new(&c, &err, NULL, 0);
    if (!p)
        return 0;
    /* no socket to send on: whatever the input names, nothing leaves */
    for (int i = 0; i < p->nsocks; i++) {
        close(p->socks[i].fd);
        p->socks[i].fd = -1;
    }
    const uint8_t *end = data + size;
    for (const uint8_t *part = data + 1; part < end;) {
        const uint8_t *sep = memchr(part, 0xff, (size_t)(end - part));
        size_t n = sep ? (size_t)(sep - part) : (size_t)(end - part);
        if (n && part[0] == 0xfe) {
            pthread_mutex_lock(&p->lock);
            peer_app_in(p, part + 1, n - 1, fake_now);
            pthread_mutex_unlock(&p->lock);
        } else {
            int rv = stunkit_peer_apply(p, (const char *)part, n);
            if (rv > 0)
                abort(); /* 0 or an error */
        }
        fake_now += 50;
        stunkit_peer_step(p, fake_now);
        part += n + 1;
    }
    char desc[8192];
    int n = stunkit_peer_describe(p, desc, sizeof(desc));
    if (n >= 0 && (size_t)n != strlen(desc))
        abort();
    stunkit_peer_info info;
    stunkit_peer_get_info(p, &info);
    stunkit_peer_free(p);
    return 0;
}
