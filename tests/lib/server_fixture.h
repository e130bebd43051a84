/*
 * server_fixture.h - stunkitd's request handler in process, for the unit
 * tests that talk to it (the TURN relay, the TURN client, the rendezvous
 * client): one listening address, 127.0.0.1:3478, with long-term users,
 * and the TURN relay's settings the tests start from. Each test adds what
 * it needs (its ports, quotas, peers it lets the relay reach, rooms).
 */
#ifndef STUNKIT_SERVER_FIXTURE_H
#define STUNKIT_SERVER_FIXTURE_H

#include <string.h>

#include "handler.h"
#include "turn_relay.h"

/* cfg listens on 127.0.0.1:3478 with the users ("name:password", NULL
 * ended) of auth; realm and nonce lifetime when given (else the
 * defaults). */
static inline void fx_server_config(skd_handler_cfg *cfg, skd_auth *auth, const char *const *users, const char *realm,
                                    uint32_t nonce_lifetime_s)
{
    const char *why;
    memset(cfg, 0, sizeof(*cfg));
    stunkit_addr_parse("127.0.0.1", 3478, &cfg->v4.ip[0]);
    cfg->v4.advertise[0] = cfg->v4.ip[0];
    cfg->v4.port[0] = 3478;
    memset(auth, 0, sizeof(*auth));
    for (; *users; users++)
        skd_auth_add_user(auth, *users, &why);
    if (realm) {
        memcpy(auth->realm, realm, strlen(realm));
        auth->realm_len = strlen(realm);
    }
    if (nonce_lifetime_s)
        auth->nonce_lifetime_s = nonce_lifetime_s;
    skd_auth_finish(auth);
    cfg->auth = auth;
}

/* The TURN relay on: relay ports port_min..port_min+999, an hour at most,
 * 10 minutes by default, RFC 8656's permission (300 s) and channel (600 s)
 * lifetimes, 100 allocations, user_quota per user, 8 permissions and 8
 * channels each. */
static inline void fx_turn_config(skd_turn_cfg *t, uint16_t port_min, int user_quota)
{
    memset(t, 0, sizeof(*t));
    t->enabled = 1;
    t->port_min = port_min;
    t->port_max = (uint16_t)(port_min + 999);
    t->max_lifetime_s = 3600;
    t->default_lifetime_s = 600;
    t->permission_s = 300;
    t->channel_s = 600;
    t->max_allocations = 100;
    t->user_quota = user_quota;
    t->max_permissions = 8;
    t->max_channels = 8;
}

#endif
