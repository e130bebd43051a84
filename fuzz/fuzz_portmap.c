/*
 * fuzz_portmap.c - libFuzzer target for the PCP / NAT-PMP machine: every
 * answer from the router is hostile input. The first byte picks the method,
 * the family and whether to delete once mapped; the rest is a series of
 * datagrams (a length byte, then the bytes) fed as if from the gateway's
 * port 5351, with time moving on between them. The randomness is all
 * zeros, so the nonce is known and inputs can reach the mapped state.
 * Checked: what the machine sends is a well-formed request of the right
 * size, events come one at a time, and nothing is sent after FAILED or
 * DELETED.
 */
#include <stdlib.h>
#include <string.h>

#include "stunkit/stunkit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void zeros(void *ctx, uint8_t *buf, size_t len)
{
    (void)ctx;
    memset(buf, 0, len);
}

/* Drains the machine; aborts when an invariant breaks. 1 when it is done. */
static int drain(stunkit_portmap *p, uint64_t now, int *mapped)
{
    stunkit_portmap_output o;
    int done = 0, n = 0;
    while (stunkit_portmap_poll(p, now, &o) == 1) {
        if (++n > 64)
            abort(); /* poll must run dry */
        if (o.send) {
            if (done || !o.data || (o.len != 2 && o.len != 12 && o.len != 60))
                abort();
            continue;
        }
        if (o.event == STUNKIT_PORTMAP_EVENT_MAPPED)
            *mapped = 1;
        if (o.event == STUNKIT_PORTMAP_EVENT_FAILED || o.event == STUNKIT_PORTMAP_EVENT_DELETED)
            done = 1;
    }
    return done;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t sel = data[0];
    stunkit_portmap_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.size = sizeof(cfg);
    int v6 = (sel >> 2) & 1;
    stunkit_addr_parse(v6 ? "2001:db8::1" : "192.0.2.1", 5351, &cfg.gateway);
    stunkit_addr_parse(v6 ? "2001:db8::2" : "192.0.2.2", 41000, &cfg.internal);
    cfg.protocol = (sel & 8) ? 6 : 17;
    cfg.method = (stunkit_portmap_method)(sel & 3) == STUNKIT_PORTMAP_UPNP ? STUNKIT_PORTMAP_AUTO
                                                                           : (stunkit_portmap_method)(sel & 3);
    if (v6 && cfg.method == STUNKIT_PORTMAP_NATPMP)
        cfg.method = STUNKIT_PORTMAP_PCP;
    cfg.lifetime_s = 10u + (sel >> 5);
    cfg.delete_only = (sel >> 4) & 1 && (sel >> 5) == 7;
    cfg.env.random = zeros;
    uint64_t now = 1000;
    stunkit_portmap *p = stunkit_portmap_new(&cfg, now);
    if (!p)
        abort(); /* a good config */
    int mapped = 0, deleted = 0, done = drain(p, now, &mapped);
    stunkit_addr other = cfg.gateway;
    other.port = 5350;
    size_t i = 1;
    while (i < size && !done) {
        size_t len = data[i++];
        if (len > size - i)
            len = size - i;
        /* a stranger's datagram is not the machine's */
        if (stunkit_portmap_input(p, 0, &other, data + i, len, now) != 0)
            abort();
        stunkit_portmap_input(p, 0, &cfg.gateway, data + i, len, now);
        i += len;
        now += (uint64_t)(len ? data[i - 1] : 1) * 37u;
        done = drain(p, now, &mapped);
        if (mapped && (sel & 0x10) && !deleted) {
            deleted = 1;
            if (stunkit_portmap_delete(p, now) != 0 && !done)
                abort(); /* mapped and not done: deleting is allowed */
            done = drain(p, now, &mapped);
        }
        uint64_t next = stunkit_portmap_timeout(p);
        if (next < now && !done)
            abort(); /* nothing may be due in the past after a drain */
    }
    stunkit_portmap_free(p);
    return 0;
}
