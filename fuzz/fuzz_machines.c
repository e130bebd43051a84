/*
 * fuzz_machines.c - libFuzzer target for the input of every sans-I/O
 * machine that hears from the network: NAT discovery (stunkit/nat.h), the
 * TURN client (turn.h), the ICE agent (ice.h) and the rendezvous client
 * (rendezvous.h); PCP / NAT-PMP and SDP text have their own targets
 * (fuzz_portmap.c, fuzz_sdp.c). What a server or a peer sends is hostile.
 *
 * data[0] % 4 picks the machine, data[0] / 4 where datagrams come from (a
 * table per machine: its server, the server's other address, a peer, a
 * stranger). The rest is a series of datagrams: two bytes, 0x8000 set when
 * the machine's last request's transaction ID is to be written into bytes
 * 8..19 (so answers match, and what lies behind the match is reached) and
 * the low 11 bits the length; then the bytes. Time moves to the machine's
 * timeout between datagrams, so retransmissions and give-ups run too.
 *
 * Checked, the contract of stunkit/machine.h: input says NOT_MINE, TAKEN
 * or APP_DATA (never an error: what a peer sends cannot fail a machine),
 * and APP_DATA's view lies inside the datagram; poll runs dry; once it has
 * nothing, the timeout lies in the future.
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

/* the last request a machine sent: its transaction ID */
static uint8_t last_tid[STUNKIT_TID_LEN];
static int have_tid;

static void saw_send(const uint8_t *d, size_t len)
{
    if (len >= 20 && d[0] < 4) {
        memcpy(last_tid, d + 8, STUNKIT_TID_LEN);
        have_tid = 1;
    }
}

static void check_input(int rv, const stunkit_app_data *d, const uint8_t *dgram, size_t len)
{
    if (rv != STUNKIT_INPUT_NOT_MINE && rv != STUNKIT_INPUT_TAKEN && rv != STUNKIT_INPUT_APP_DATA)
        abort();
    if (rv == STUNKIT_INPUT_APP_DATA && d &&
        (d->data < dgram || d->len > len || d->data + d->len > dgram + len))
        abort(); /* a view into the datagram, or nothing */
}

/* ---- one driver per machine: drain poll, check the timeout ---- */

static uint64_t drain_nat(stunkit_nat *n, uint64_t now)
{
    stunkit_nat_output o;
    int k = 0, rv;
    while ((rv = stunkit_nat_poll(n, now, &o)) != 0) {
        if (++k > 4096)
            abort(); /* poll must run dry */
        if (rv < 0)
            continue;
        if (o.send) {
            if (o.sock < 0 || o.sock >= STUNKIT_NAT_MAX_SOCKETS)
                abort();
            stunkit_addr local;
            stunkit_addr_parse("192.0.2.10", (uint16_t)(5000 + o.sock), &local);
            stunkit_nat_set_local(n, o.sock, &local);
            saw_send(o.data, o.len);
        }
    }
    uint64_t t = stunkit_nat_timeout(n);
    if (t <= now)
        abort();
    return t;
}

static uint64_t drain_turn(stunkit_turn *m, uint64_t now)
{
    stunkit_turn_output o;
    int k = 0, rv;
    while ((rv = stunkit_turn_poll(m, now, &o)) != 0) {
        if (++k > 4096)
            abort();
        if (rv < 0)
            continue;
        if (o.send)
            saw_send(o.data, o.len);
        else if (o.event == STUNKIT_TURN_EVENT_ALLOCATED) {
            stunkit_addr peer;
            stunkit_addr_parse("203.0.113.7:4000", 0, &peer);
            stunkit_turn_permit(m, &peer, now);
            stunkit_turn_bind(m, &peer, now);
        }
    }
    uint64_t t = stunkit_turn_timeout(m);
    if (t <= now)
        abort();
    return t;
}

static uint64_t drain_ice(stunkit_ice *a, uint64_t now)
{
    stunkit_ice_output o;
    int k = 0, rv;
    while ((rv = stunkit_ice_poll(a, now, &o)) != 0) {
        if (++k > 4096)
            abort();
        if (rv < 0)
            continue;
        if (o.send)
            saw_send(o.data, o.len);
    }
    uint64_t t = stunkit_ice_timeout(a);
    if (t <= now)
        abort();
    return t;
}

static uint64_t drain_rdv(stunkit_rdv *r, uint64_t now)
{
    stunkit_rdv_output o;
    int k = 0, rv;
    while ((rv = stunkit_rdv_poll(r, now, &o)) != 0) {
        if (++k > 4096)
            abort();
        if (rv < 0)
            continue;
        if (o.send)
            saw_send(o.data, o.len);
    }
    uint64_t t = stunkit_rdv_timeout(r);
    if (t <= now)
        abort();
    return t;
}

/* where datagrams come from: the server, its other address and port (RFC
 * 5780), the peer, a stranger */
static const char *const sources[4] = {"192.0.2.1:3478", "192.0.2.2:3479", "203.0.113.7:4000", "198.51.100.9:9"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int which = data[0] % 4;
    stunkit_addr from, server;
    stunkit_addr_parse(sources[(data[0] / 4) % 4], 0, &from);
    stunkit_addr_parse(sources[0], 0, &server);
    uint64_t now = 1000;
    have_tid = 0;

    stunkit_nat *nat = NULL;
    stunkit_turn *turn = NULL;
    stunkit_ice *ice = NULL;
    stunkit_rdv *rdv = NULL;
    if (which == 0) {
        stunkit_nat_config c = STUNKIT_CONFIG_INIT(c);
        c.env.random = zeros;
        c.server = server;
        c.lifetime = 1;
        c.lifetime_max_s = 4;
        nat = stunkit_nat_new(&c, now);
    } else if (which == 1) {
        stunkit_turn_config c = STUNKIT_CONFIG_INIT(c);
        c.env.random = zeros;
        c.server = server;
        c.username = "user";
        c.password = "pass";
        c.dual = data[0] & 0x40 ? 1 : 0;
        turn = stunkit_turn_new(&c, now);
    } else if (which == 2) {
        stunkit_ice_server srv[2];
        memset(srv, 0, sizeof(srv));
        srv[0].addr = server;
        stunkit_addr_parse(sources[1], 0, &srv[1].addr);
        srv[1].turn = 1;
        srv[1].username = "user";
        srv[1].password = "pass";
        stunkit_ice_config c = STUNKIT_CONFIG_INIT(c);
        c.env.random = zeros;
        c.controlling = data[0] & 0x40 ? 1 : 0;
        c.ufrag = "LOCL";
        c.pwd = "localpassword0123456789x";
        c.servers = srv;
        c.n_servers = 2;
        ice = stunkit_ice_new(&c, now);
        stunkit_addr local;
        stunkit_addr_parse("192.0.2.10:5000", 0, &local);
        if (!ice || stunkit_ice_add_base(ice, 1, &local, now) != 0)
            abort();
        stunkit_ice_local_done(ice, now);
        if (stunkit_ice_set_remote(ice, "REMT", "remotepassword0123456789x", now) != 0)
            abort();
        stunkit_ice_candidate rc;
        memset(&rc, 0, sizeof(rc));
        rc.type = STUNKIT_ICE_TYPE_HOST;
        stunkit_addr_parse(sources[2], 0, &rc.addr);
        rc.priority = 2130706431u;
        rc.component = 1;
        strcpy(rc.foundation, "1");
        stunkit_ice_add_remote(ice, &rc, now);
    } else {
        stunkit_rdv_config c = STUNKIT_CONFIG_INIT(c);
        c.env.random = zeros;
        c.room = "fuzz";
        c.username = "user";
        c.password = "pass";
        rdv = stunkit_rdv_new(&c, now);
        if (rdv)
            stunkit_rdv_set_description(rdv, "a=ice-ufrag:LOCL\r\n", 18, now);
    }
    if (!nat && !turn && !ice && !rdv)
        abort(); /* good configs */

    uint64_t next = nat ? drain_nat(nat, now) : turn ? drain_turn(turn, now) : ice ? drain_ice(ice, now)
                                                                                   : drain_rdv(rdv, now);
    size_t i = 1;
    uint8_t dgram[2048];
    while (i + 2 <= size) {
        int patch = data[i] & 0x80;
        size_t len = ((size_t)(data[i] & 0x07) << 8) | data[i + 1];
        i += 2;
        if (len > size - i)
            len = size - i;
        memcpy(dgram, data + i, len);
        i += len;
        if (patch && have_tid && len >= 20)
            memcpy(dgram + 8, last_tid, STUNKIT_TID_LEN);
        stunkit_app_data d;
        if (nat) {
            int sock = stunkit_nat_sockets(nat) > 0 ? (int)(len % (size_t)stunkit_nat_sockets(nat)) : 0;
            check_input(stunkit_nat_input(nat, sock, &from, dgram, len, now), NULL, dgram, len);
            next = drain_nat(nat, now);
        } else if (turn) {
            check_input(stunkit_turn_input(turn, 0, &from, dgram, len, now, &d), &d, dgram, len);
            next = drain_turn(turn, now);
        } else if (ice) {
            check_input(stunkit_ice_input(ice, 1, &from, dgram, len, now, &d), &d, dgram, len);
            next = drain_ice(ice, now);
        } else {
            check_input(stunkit_rdv_input(rdv, 0, &from, dgram, len, now), NULL, dgram, len);
            next = drain_rdv(rdv, now);
        }
        /* time moves on: to the next deadline, at most 5 s */
        if (next != STUNKIT_NEVER)
            now = next < now + 5000 ? next : now + 5000;
        else
            now += 1000;
        next = nat ? drain_nat(nat, now) : turn ? drain_turn(turn, now) : ice ? drain_ice(ice, now)
                                                                              : drain_rdv(rdv, now);
    }
    stunkit_nat_free(nat);
    stunkit_turn_free(turn);
    stunkit_ice_free(ice);
    stunkit_rdv_free(rdv);
    return 0;
}
