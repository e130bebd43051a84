/*
 * portmap.c - the PCP (RFC 6887) / NAT-PMP (RFC 6886) client machine, see
 * stunkit/portmap.h.
 *
 * PCP MAP request (RFC 6887 7.1 and 11.1), 60 bytes:
 *
 *    0                   1                   2                   3
 *   |  Version = 2  |R|   Opcode    |         Reserved              |
 *   |                 Requested Lifetime (32 bits)                  |
 *   |            PCP Client's IP Address (128 bits)                 |
 *   |                 Mapping Nonce (96 bits)                       |
 *   |   Protocol    |          Reserved (24 bits)                   |
 *   |        Internal Port          |    Suggested External Port    |
 *   |           Suggested External IP Address (128 bits)            |
 *
 * PCP response (7.2 and 11.1), 60 bytes for MAP without options:
 *
 *   |  Version = 2  |R|   Opcode    |   Reserved    |  Result Code  |
 *   |                      Lifetime (32 bits)                       |
 *   |                     Epoch Time (32 bits)                      |
 *   |                      Reserved (96 bits)                       |
 *   |  nonce (96) | protocol, reserved (32) | internal port, assigned
 *   |  external port (32) | assigned external IP address (128)
 *
 * NAT-PMP (RFC 6886 3.2, 3.3): the external address query is 2 bytes
 * (version 0, opcode 0), its answer 12 (version, 128, result, epoch,
 * address); a mapping request 12 bytes (version 0, opcode 1 UDP / 2 TCP,
 * reserved, internal port, suggested external port, lifetime), its answer
 * 16 (version, 128 + opcode, result, epoch, internal port, mapped external
 * port, lifetime).
 */
#include <stdlib.h>
#include <string.h>

#include "config_take.h"
#include "cursor.h"
#include "outq.h"
#include "stunkit/error.h"
#include "stunkit/portmap.h"

#define PCP_VERSION 2
#define PCP_OP_MAP 1
#define PCP_MAP_LEN 60
#define PCP_MAX_LEN 1100 /* 7: "MUST NOT [...] exceed 1100 octets" */
#define PCP_IRT_MS 3000u /* 8.1.1: IRT 3 s, MRT 1024 s, MRC 0, MRD 0 */
#define PCP_MRT_MS 1024000u
#define NATPMP_IRT_MS 250u /* 6886 3.1: 250 ms, doubling, 9 tries */
#define NATPMP_TRIES 9
#define AUTO_GRACE_MS 250u /* NAT-PMP answered, PCP silent this long: NAT-PMP */

enum { S_MAPPING, S_MAPPED, S_DELETING, S_DONE };

struct stunkit_portmap {
    stunkit_portmap_config cfg;
    stunkit_portmap_method method; /* AUTO until one protocol is settled */
    int state;
    uint8_t nonce[12];
    /* the request in flight (one at a time) and its schedule */
    uint8_t req[PCP_MAP_LEN];
    size_t req_len;
    uint64_t send_at, deadline; /* deadline: NAT-PMP gives up; renewal: expiry */
    uint32_t rt_ms;
    int tries;
    /* AUTO: the NAT-PMP address query running beside PCP */
    uint8_t probe[2];
    uint64_t probe_at, natpmp_seen_at;
    uint32_t probe_rt;
    int probe_tries;
    uint8_t natpmp_ip[4];
    int have_natpmp_ip;
    /* the mapping */
    stunkit_addr external;
    uint32_t lifetime_s;
    uint64_t renew_at, expires_at;
    int renewing;
    /* epoch (8.5 / 6886 3.6) */
    int have_epoch;
    uint32_t prev_server_s;
    uint64_t prev_client_ms;
    stunkit_portmap_output events[8], ev_spill; /* ev_spill: what did not fit (outq.h) */
    sk_outq evq;
};

const char *stunkit_portmap_method_name(stunkit_portmap_method m)
{
    switch (m) {
    case STUNKIT_PORTMAP_PCP: return "pcp";
    case STUNKIT_PORTMAP_NATPMP: return "natpmp";
    case STUNKIT_PORTMAP_UPNP: return "upnp";
    case STUNKIT_PORTMAP_AUTO: break;
    }
    return "auto";
}

const char *stunkit_portmap_event_name(stunkit_portmap_event e)
{
    switch (e) {
    case STUNKIT_PORTMAP_EVENT_MAPPED: return "mapped";
    case STUNKIT_PORTMAP_EVENT_RENEWED: return "renewed";
    case STUNKIT_PORTMAP_EVENT_FAILED: return "failed";
    case STUNKIT_PORTMAP_EVENT_RESET: return "reset";
    case STUNKIT_PORTMAP_EVENT_DELETED: return "deleted";
    }
    return "unknown";
}

const char *stunkit_portmap_result_name(stunkit_portmap_method m, int r)
{
    static const char *const pcp[] = {"SUCCESS", "UNSUPP_VERSION", "NOT_AUTHORIZED", "MALFORMED_REQUEST",
                                      "UNSUPP_OPCODE", "UNSUPP_OPTION", "MALFORMED_OPTION", "NETWORK_FAILURE",
                                      "NO_RESOURCES", "UNSUPP_PROTOCOL", "USER_EX_QUOTA",
                                      "CANNOT_PROVIDE_EXTERNAL", "ADDRESS_MISMATCH", "EXCESSIVE_REMOTE_PEERS"};
    static const char *const natpmp[] = {"Success", "Unsupported Version", "Not Authorized/Refused",
                                         "Network Failure", "Out of resources", "Unsupported opcode"};
    if (r < 0)
        return "no answer";
    if (m == STUNKIT_PORTMAP_NATPMP)
        return (size_t)r < sizeof(natpmp) / sizeof(natpmp[0]) ? natpmp[r] : "unknown result";
    return (size_t)r < sizeof(pcp) / sizeof(pcp[0]) ? pcp[r] : "unknown result";
}

static stunkit_portmap_output *event(stunkit_portmap *p, stunkit_portmap_event e)
{
    int slot = sk_outq_push(&p->evq);
    stunkit_portmap_output *o = slot < 0 ? &p->ev_spill : &p->events[slot];
    memset(o, 0, sizeof(*o));
    o->event = e;
    o->method = p->method;
    o->external = p->external;
    o->lifetime_s = p->lifetime_s;
    return o;
}

static void failed(stunkit_portmap *p, int result, const char *reason)
{
    stunkit_portmap_output *o = event(p, STUNKIT_PORTMAP_EVENT_FAILED);
    o->result = result;
    strncpy(o->reason, reason, sizeof(o->reason) - 1);
    p->state = S_DONE;
}

/* 8.1.1: RT = (1 + RAND) * base, RAND uniform in [-0.1, +0.1] */
static uint32_t jitter(stunkit_portmap *p, uint32_t base)
{
    uint8_t r[2];
    p->cfg.env.random(p->cfg.env.random_ctx, r, 2);
    int32_t permille = (int32_t)(sk__get16(r) % 201u) - 100;
    return (uint32_t)((int64_t)base * (1000 + permille) / 1000);
}

/* 128-bit address fields: IPv4 as ::ffff:a.b.c.d (RFC 6887 5) */
static void put_ip128(uint8_t *dst, const stunkit_addr *a)
{
    memset(dst, 0, 16);
    if (a->family == STUNKIT_AF_INET) {
        dst[10] = dst[11] = 0xFF;
        memcpy(dst + 12, a->ip, 4);
    } else if (a->family == STUNKIT_AF_INET6) {
        memcpy(dst, a->ip, 16);
    }
}

static void get_ip128(stunkit_addr *a, const uint8_t *src)
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};
    uint16_t port = a->port;
    memset(a, 0, sizeof(*a));
    a->port = port;
    if (!memcmp(src, mapped, 12)) {
        a->family = STUNKIT_AF_INET;
        memcpy(a->ip, src + 12, 4);
    } else {
        a->family = STUNKIT_AF_INET6;
        memcpy(a->ip, src, 16);
    }
}

/* Builds the request for the current method and lifetime (0 deletes). */
static void build(stunkit_portmap *p, uint32_t lifetime)
{
    uint8_t *b = p->req;
    if (p->method == STUNKIT_PORTMAP_NATPMP) {
        /* 6886 3.3; deleting: "the suggested external port [...] MUST
         * be set to zero" along with the lifetime (3.4) */
        b[0] = 0;
        b[1] = p->cfg.protocol == 6 ? 2 : 1;
        sk__put16(b + 2, 0);
        sk__put16(b + 4, p->cfg.internal.port);
        uint16_t ext = p->external.port ? p->external.port
                                        : (p->cfg.external_port ? p->cfg.external_port : p->cfg.internal.port);
        sk__put16(b + 6, lifetime ? ext : 0);
        sk__put32(b + 8, lifetime);
        p->req_len = 12;
        return;
    }
    memset(b, 0, PCP_MAP_LEN);
    b[0] = PCP_VERSION;
    b[1] = PCP_OP_MAP; /* R = 0: a request */
    sk__put32(b + 4, lifetime);
    put_ip128(b + 8, &p->cfg.internal);
    /* 11.1: the nonce stays the same for renewals and the deletion */
    memcpy(b + 24, p->nonce, 12);
    b[36] = (uint8_t)p->cfg.protocol;
    sk__put16(b + 40, p->cfg.internal.port);
    /* 11.1: suggest what we have (renewal), else what was asked; the
     * address family asks for the external family: ::ffff:0.0.0.0 is "any
     * IPv4", :: "any IPv6" */
    sk__put16(b + 42, p->external.port ? p->external.port : p->cfg.external_port);
    if (p->external.family)
        put_ip128(b + 44, &p->external);
    else if (p->cfg.internal.family == STUNKIT_AF_INET)
        b[54] = b[55] = 0xFF;
    p->req_len = PCP_MAP_LEN;
}

/* The lifetime a fresh request asks for: 0 when only deleting. */
static uint32_t wanted(const stunkit_portmap *p)
{
    return p->cfg.delete_only ? 0 : p->cfg.lifetime_s;
}

/* Starts (or restarts) the request on the method's schedule. */
static void request(stunkit_portmap *p, uint32_t lifetime, uint64_t now)
{
    build(p, lifetime);
    p->tries = 0;
    p->send_at = now;
    p->rt_ms = p->method == STUNKIT_PORTMAP_NATPMP ? NATPMP_IRT_MS : jitter(p, PCP_IRT_MS);
}

stunkit_portmap *stunkit_portmap_new(const stunkit_portmap_config *cfg, uint64_t now_ms)
{
    stunkit_portmap_config taken; /* versioned by size (config_take.h) */
    if (sk_config_take(&taken, sizeof(taken), cfg, sizeof(taken)) != 0)
        return NULL;
    cfg = &taken;
    if (!cfg->env.random || !cfg->gateway.family || !cfg->internal.port ||
        cfg->gateway.family != cfg->internal.family || (cfg->protocol != 6 && cfg->protocol != 17) ||
        (unsigned)cfg->method > STUNKIT_PORTMAP_NATPMP ||
        (cfg->method == STUNKIT_PORTMAP_NATPMP && cfg->gateway.family != STUNKIT_AF_INET))
        return NULL;
    stunkit_portmap *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->cfg = *cfg;
    sk_outq_init(&p->evq, 8);
    p->cfg.gateway.port = STUNKIT_PORTMAP_PORT;
    if (!p->cfg.lifetime_s)
        p->cfg.lifetime_s = 7200;
    /* NAT-PMP is IPv4 only: AUTO over IPv6 is PCP */
    p->method = cfg->method == STUNKIT_PORTMAP_AUTO && cfg->gateway.family == STUNKIT_AF_INET6 ? STUNKIT_PORTMAP_PCP
                                                                                               : cfg->method;
    if (cfg->use_nonce)
        memcpy(p->nonce, cfg->nonce, sizeof(p->nonce));
    else
        p->cfg.env.random(p->cfg.env.random_ctx, p->nonce, sizeof(p->nonce));
    p->state = cfg->delete_only ? S_DELETING : S_MAPPING;
    if (p->method == STUNKIT_PORTMAP_AUTO) {
        stunkit_portmap_method m = p->method;
        p->method = STUNKIT_PORTMAP_PCP; /* build PCP's request ... */
        request(p, wanted(p), now_ms);
        p->method = m; /* ... while still undecided */
        p->probe[0] = 0;
        p->probe[1] = 0;
        p->probe_at = now_ms;
        p->probe_rt = NATPMP_IRT_MS;
    } else {
        request(p, wanted(p), now_ms);
    }
    if (p->method == STUNKIT_PORTMAP_NATPMP) {
        p->probe_at = now_ms; /* NAT-PMP learns the external address by its own query */
        p->probe_rt = NATPMP_IRT_MS;
    } else if (p->method == STUNKIT_PORTMAP_PCP) {
        p->probe_at = STUNKIT_NEVER;
    }
    return p;
}

void stunkit_portmap_get_nonce(const stunkit_portmap *p, uint8_t nonce[12])
{
    memcpy(nonce, p->nonce, sizeof(p->nonce));
}

void stunkit_portmap_free(stunkit_portmap *p)
{
    free(p);
}

static void out_send(const stunkit_portmap *p, stunkit_portmap_output *out, const uint8_t *data, size_t len)
{
    memset(out, 0, sizeof(*out));
    out->send = 1;
    out->data = data;
    out->len = len;
    out->to = p->cfg.gateway;
    out->method = p->method;
}

int stunkit_portmap_poll(stunkit_portmap *p, uint64_t now, stunkit_portmap_output *out)
{
    if (sk_outq_take_lost(&p->evq))
        return STUNKIT_ERR_NOBUF;
    int slot = sk_outq_pop(&p->evq);
    if (slot >= 0) {
        *out = p->events[slot];
        return 1;
    }
    if (p->state == S_DONE)
        return 0;
    /* AUTO: NAT-PMP answered its query and PCP kept silent: speak NAT-PMP */
    if (p->method == STUNKIT_PORTMAP_AUTO && p->natpmp_seen_at && now >= p->natpmp_seen_at + AUTO_GRACE_MS) {
        p->method = STUNKIT_PORTMAP_NATPMP;
        request(p, wanted(p), now);
    }
    if (p->state == S_MAPPED && !p->renewing && now >= p->renew_at) {
        p->renewing = 1;
        request(p, p->cfg.lifetime_s, now);
        p->deadline = p->expires_at;
    }
    if (p->state == S_MAPPED && now >= p->expires_at) {
        failed(p, -1, "the mapping expired: the router did not answer the renewals");
        return stunkit_portmap_poll(p, now, out);
    }
    /* the NAT-PMP external address query (AUTO's probe, or NAT-PMP's own) */
    if (p->probe_at != STUNKIT_NEVER && now >= p->probe_at && !p->have_natpmp_ip &&
        (p->method == STUNKIT_PORTMAP_AUTO || p->method == STUNKIT_PORTMAP_NATPMP)) {
        if (p->probe_tries == NATPMP_TRIES) {
            p->probe_at = STUNKIT_NEVER;
        } else {
            p->probe_tries++;
            p->probe_at = now + p->probe_rt;
            p->probe_rt *= 2;
            out_send(p, out, p->probe, 2);
            return 1;
        }
    }
    int requesting = p->state == S_MAPPING || p->state == S_DELETING || (p->state == S_MAPPED && p->renewing);
    if (requesting && now >= p->send_at) {
        if (p->method == STUNKIT_PORTMAP_NATPMP && p->tries == NATPMP_TRIES) {
            if (p->state == S_MAPPED) { /* renewals: keep trying until expiry */
                p->tries = 0;
                p->rt_ms = NATPMP_IRT_MS;
            } else {
                failed(p, -1, "no answer from the router (NAT-PMP)");
                return stunkit_portmap_poll(p, now, out);
            }
        }
        p->tries++;
        p->send_at = now + p->rt_ms;
        if (p->method == STUNKIT_PORTMAP_NATPMP) {
            /* 6886 3.1: 9 sends at 0, 0.25, 0.75, ... 63.75 s; "after 64
             * seconds" without an answer, no NAT-PMP */
            if (p->tries == NATPMP_TRIES)
                p->send_at = now + NATPMP_IRT_MS;
            p->rt_ms *= 2;
        } else {
            uint32_t next = p->rt_ms * 2 > PCP_MRT_MS ? PCP_MRT_MS : p->rt_ms * 2;
            p->rt_ms = jitter(p, next);
        }
        out_send(p, out, p->req, p->req_len);
        return 1;
    }
    return 0;
}

uint64_t stunkit_portmap_timeout(const stunkit_portmap *p)
{
    if (sk_outq_pending(&p->evq))
        return 0;
    if (p->state == S_DONE)
        return STUNKIT_NEVER;
    uint64_t next = STUNKIT_NEVER;
    if (p->state == S_MAPPING || p->state == S_DELETING || p->renewing)
        next = p->send_at;
    if (p->state == S_MAPPED) {
        if (!p->renewing && p->renew_at < next)
            next = p->renew_at;
        if (p->expires_at < next)
            next = p->expires_at;
    }
    if (!p->have_natpmp_ip && p->probe_at < next &&
        (p->method == STUNKIT_PORTMAP_AUTO || p->method == STUNKIT_PORTMAP_NATPMP))
        next = p->probe_at;
    if (p->method == STUNKIT_PORTMAP_AUTO && p->natpmp_seen_at && p->natpmp_seen_at + AUTO_GRACE_MS < next)
        next = p->natpmp_seen_at + AUTO_GRACE_MS;
    return next;
}

/* The epoch check (RFC 6887 8.5, the stricter reading of RFC 6886 3.6):
 * 0 valid, 1 the router lost its state. Seconds on both sides. */
static int epoch_lost(stunkit_portmap *p, uint32_t server_s, uint64_t now)
{
    int lost = 0;
    if (p->have_epoch) {
        /* "If the current PCP server Epoch time (curr_server_time) is less
         * than the previously received PCP server Epoch time
         * (prev_server_time) by more than one second, then the client
         * treats the Epoch time as obviously invalid" */
        if ((uint64_t)server_s + 1 < p->prev_server_s) {
            lost = 1;
        } else {
            /* "If client_delta+2 < server_delta - server_delta/16 or
             * server_delta+2 < client_delta - client_delta/16, then the
             * client treats the Epoch Time value as invalid" */
            int64_t client_delta = (int64_t)((now - p->prev_client_ms) / 1000u);
            int64_t server_delta = (int64_t)server_s - (int64_t)p->prev_server_s;
            lost = client_delta + 2 < server_delta - server_delta / 16 ||
                   server_delta + 2 < client_delta - client_delta / 16;
        }
    }
    p->have_epoch = 1;
    p->prev_server_s = server_s;
    p->prev_client_ms = now;
    return lost;
}

/* A mapping was granted (or renewed) with lifetime life. */
static void granted(stunkit_portmap *p, uint32_t life, uint64_t now)
{
    int renewal = p->state == S_MAPPED;
    p->lifetime_s = life;
    p->expires_at = now + (uint64_t)life * 1000u;
    /* PCP 11.2.1: renew "between 1/2 and 5/8 of the way to expiry" (a
     * random point); NAT-PMP 3.3: "halfway to expiry" */
    uint64_t half = (uint64_t)life * 500u;
    if (p->method == STUNKIT_PORTMAP_PCP) {
        uint8_t r[2];
        p->cfg.env.random(p->cfg.env.random_ctx, r, 2);
        half += (uint64_t)life * 125u * sk__get16(r) / 65535u;
    }
    p->renew_at = now + half;
    p->renewing = 0;
    p->state = S_MAPPED;
    event(p, renewal ? STUNKIT_PORTMAP_EVENT_RENEWED : STUNKIT_PORTMAP_EVENT_MAPPED);
}

/* The router lost its state: map again at once (RFC 6886 3.6: "MUST
 * immediately renew all its active port mapping leases"; RFC 6887 8.5). */
static void reset(stunkit_portmap *p, uint64_t now)
{
    if (p->state != S_MAPPED && p->state != S_MAPPING)
        return;
    if (p->state == S_MAPPED) {
        event(p, STUNKIT_PORTMAP_EVENT_RESET);
        p->renewing = 1;
        p->deadline = p->expires_at = now + (uint64_t)p->lifetime_s * 1000u;
    }
    request(p, p->cfg.lifetime_s, now);
}

/* What PCP and NAT-PMP answers share once matched to our request: the
 * epoch check, the deletion's outcome, a refusal. 1 when that settled it,
 * 0 when the answer grants a mapping. */
static int settled(stunkit_portmap *p, int result, uint32_t epoch, uint64_t now)
{
    if (epoch_lost(p, epoch, now)) {
        reset(p, now);
        return 1;
    }
    if (p->state == S_DELETING) {
        if (result == 0) {
            event(p, STUNKIT_PORTMAP_EVENT_DELETED);
            p->state = S_DONE;
        } else {
            failed(p, result, "the router refused to delete the mapping");
        }
        return 1;
    }
    if (result != 0) {
        /* RFC 6887 7.4: a refused renewal ends the mapping at its expiry */
        failed(p, result, p->state == S_MAPPED ? "the router refused to renew the mapping"
                                               : "the router refused the mapping");
        return 1;
    }
    return 0;
}

static int input_natpmp(stunkit_portmap *p, const uint8_t *d, size_t len, uint64_t now)
{
    if (len < 8 || d[0] != 0 || !(d[1] & 0x80))
        return 1;
    uint16_t result = sk__get16(d + 2);
    uint32_t epoch = sk__get32(d + 4);
    uint8_t op = d[1] & 0x7F;
    /* a NAT-PMP router's answer to our PCP request (not to the address
     * query, op 0): RFC 6887 9, version 0 with "unsupported version":
     * fall back to NAT-PMP (IPv4 only) */
    if (result == 1 && op != 0 && (p->method == STUNKIT_PORTMAP_AUTO || p->method == STUNKIT_PORTMAP_PCP) &&
        (p->state == S_MAPPING || (p->state == S_DELETING && p->cfg.delete_only))) {
        if (p->cfg.method == STUNKIT_PORTMAP_PCP) {
            failed(p, 1, "the router speaks NAT-PMP only (try --method natpmp)");
            return 1;
        }
        p->method = STUNKIT_PORTMAP_NATPMP;
        request(p, wanted(p), now);
        return 1;
    }
    if (p->method != STUNKIT_PORTMAP_NATPMP && p->method != STUNKIT_PORTMAP_AUTO)
        return 1;
    if (op == 0) { /* the external address (3.2) */
        if (len != 12)
            return 1;
        if (epoch_lost(p, epoch, now))
            reset(p, now);
        if (result != 0)
            return 1; /* the mapping request will say why */
        memcpy(p->natpmp_ip, d + 8, 4);
        p->have_natpmp_ip = 1;
        if (p->method == STUNKIT_PORTMAP_AUTO && !p->natpmp_seen_at)
            p->natpmp_seen_at = now ? now : 1;
        if (p->method == STUNKIT_PORTMAP_NATPMP && p->state == S_MAPPED) {
            memcpy(p->external.ip, p->natpmp_ip, 4);
            p->external.family = STUNKIT_AF_INET;
        }
        return 1;
    }
    if (p->method != STUNKIT_PORTMAP_NATPMP || p->req_len != 12 || op != p->req[1] || len != 16 ||
        sk__get16(d + 8) != p->cfg.internal.port)
        return 1; /* not an answer to our request */
    if (settled(p, result, epoch, now))
        return 1;
    uint32_t life = sk__get32(d + 12);
    p->external.port = sk__get16(d + 10);
    p->external.family = STUNKIT_AF_INET;
    if (p->have_natpmp_ip)
        memcpy(p->external.ip, p->natpmp_ip, 4);
    if (!life || !p->external.port)
        return 1;
    granted(p, life, now);
    return 1;
}

static int input_pcp(stunkit_portmap *p, const uint8_t *d, size_t len, uint64_t now)
{
    /* 8.3: "the length is not a multiple of 4, or is greater than 1100
     * octets [...] silently discard"; the R bit and our opcode */
    if (len < 24 || len > PCP_MAX_LEN || (len & 3) || d[0] != PCP_VERSION || d[1] != (0x80 | PCP_OP_MAP))
        return 1;
    uint8_t result = d[3];
    uint32_t life = sk__get32(d + 4), epoch = sk__get32(d + 8);
    if (p->method == STUNKIT_PORTMAP_NATPMP)
        return 1;
    /* 11.3: "the PCP client MUST [match] the Mapping Nonce, Protocol,
     * Internal Port"; error answers carry the MAP fields too (7.2) */
    if (len < PCP_MAP_LEN || memcmp(d + 24, p->nonce, 12) != 0 || d[36] != (uint8_t)p->cfg.protocol ||
        sk__get16(d + 40) != p->cfg.internal.port)
        return 1;
    if (p->method == STUNKIT_PORTMAP_AUTO)
        p->method = STUNKIT_PORTMAP_PCP; /* PCP answered: settled */
    if (settled(p, result, epoch, now))
        return 1;
    if (!life)
        return 1;
    p->external.port = sk__get16(d + 42);
    get_ip128(&p->external, d + 44);
    granted(p, life, now);
    return 1;
}

int stunkit_portmap_input(stunkit_portmap *p, int sock, const stunkit_addr *from, const uint8_t *data, size_t len,
                          uint64_t now_ms)
{
    (void)sock; /* one socket */
    /* 8.3: "the source IP address and port [...] match the destination of
     * the request" */
    if (!stunkit_addr_equal(from, &p->cfg.gateway))
        return STUNKIT_INPUT_NOT_MINE;
    if (p->state == S_DONE || len < 2)
        return STUNKIT_INPUT_TAKEN;
    if (data[0] == 0)
        return input_natpmp(p, data, len, now_ms);
    if (data[0] == PCP_VERSION)
        return input_pcp(p, data, len, now_ms);
    return STUNKIT_INPUT_TAKEN;
}

int stunkit_portmap_delete(stunkit_portmap *p, uint64_t now_ms)
{
    if (p->state != S_MAPPED)
        return STUNKIT_ERR_STATE;
    p->state = S_DELETING;
    p->renewing = 0;
    request(p, 0, now_ms);
    return 0;
}
