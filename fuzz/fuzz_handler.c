/*
 * fuzz_handler.c - libFuzzer target for stunkitd's request handler, in
 * process: any datagram, as UDP or TCP, basic or RFC 5780 mode. Whatever the
 * input, an answer must parse, fit the buffer, never be larger than the
 * request unless it is a fixed-size success or error answer, and only go to
 * the sender's IP. Half the runs have authentication on; without it, some
 * have the rendezvous on (stunkitd refuses that pairing, but it lets the
 * fuzzer reach the rooms without forging MESSAGE-INTEGRITY): its answers
 * stay within twice the request.
 */
#include <stdlib.h>
#include <string.h>

#include "handler.h"
#include "rooms.h"
#include "stunkit/rendezvous.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t out[SKD_REPLY_MAX];
    static skd_out slots[4];
    skd_handler_cfg cfg;
    skd_request rq;
    skd_outbox ob;

    if (size < 1)
        return 0;
    uint8_t mode = data[0];
    data++;
    size--;
    memset(&cfg, 0, sizeof(cfg));
    stunkit_addr_parse("198.51.100.1", 3478, &cfg.v4.ip[0]);
    stunkit_addr_parse("198.51.100.2", 3479, &cfg.v4.ip[1]);
    cfg.v4.advertise[0] = cfg.v4.ip[0];
    cfg.v4.advertise[1] = cfg.v4.ip[1];
    cfg.v4.port[0] = 3478;
    cfg.v4.port[1] = 3479;
    cfg.v4.rfc5780 = mode & 1;
    if (mode & 2) {
        cfg.software = "fuzz";
        cfg.software_len = 4;
    }
    memset(&rq, 0, sizeof(rq));
    rq.data = data;
    rq.len = size;
    stunkit_addr_parse("192.0.2.7:40000", 0, &rq.src);
    rq.dst = cfg.v4.ip[(mode >> 2) & 1];
    rq.transport = (mode & 8) ? STUNKIT_TCP : STUNKIT_UDP;
    rq.ip_index = (mode >> 2) & 1;
    rq.port_index = (mode >> 4) & 1;
    size_t cap = (mode & 32) ? 4096 : sizeof(out);
    static skd_auth auth;
    static int auth_ready;
    if (!auth_ready) {
        const char *why;
        skd_auth_add_user(&auth, "alice:s3cret", &why);
        memcpy(auth.secrets[0], "fuzz-secret-123", 15);
        auth.secret_lens[0] = 15;
        memcpy(auth.secrets[1], "fuzz-secret-456", 15);
        auth.secret_lens[1] = 15;
        auth.n_secrets = 2;
        skd_auth_finish(&auth);
        auth_ready = 1;
    }
    if (mode & 64)
        cfg.auth = &auth; /* long-term credentials, REST-API secret, nonces */
    rq.now_s = 1795470000;
    static skd_rdv rooms;
    static int rooms_ready;
    static uint64_t clock_ms = 1000000;
    if (!rooms_ready) {
        skd_rdv_cfg rc = {1, 64, 8, 60, 5, 1024, NULL, NULL};
        skd_rdv_init(&rooms, &rc, 1);
        rooms_ready = 1;
    }
    if (!(mode & 64) && (mode & 128))
        cfg.rdv = &rooms;
    clock_ms += 250; /* rooms and places expire as runs go by */
    rq.now_ms = clock_ms;

    skd_outbox_init(&ob, out, cap, slots, 4);
    if (skd_handle(&cfg, &rq, &ob) != SKD_ANSWERED)
        return 0;
    if (ob.n > 1)
        abort(); /* Binding answers once */
    for (size_t i = 0; i < ob.n; i++) {
        const skd_out *r = &ob.out[i];
        stunkit_msg m;
        if (r->len > cap || stunkit_msg_parse(&m, r->data, r->len) != 0)
            abort();
        if (!stunkit_addr_ip_equal(&r->to, &rq.src))
            abort(); /* never aimed at a third party */
        if ((r->flags & SKD_OUT_REDIRECT) && rq.transport != STUNKIT_UDP)
            abort();
        if ((r->flags & SKD_OUT_REDIRECT) && r->to.port != rq.src.port && r->to.port < 1024)
            abort(); /* RESPONSE-PORT never below 1024 */
        /* no amplification beyond a fixed bound: the largest fixed answer is a
         * 5780 success with SOFTWARE and FINGERPRINT, or a 420 listing 16 types */
        if (m.method == STUNKIT_METHOD_RENDEZVOUS && r->code == 0) {
            if (r->len > 2 * size)
                abort(); /* the rendezvous: never more than twice the request */
        } else if (r->len > size && r->len > 20 + 4 * 24 + 12 + 8 + 64)
            abort();
    }
    return 0;
}
