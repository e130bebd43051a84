/*
 * peer_signal.c - the peer's descriptions (stunkit/peer.h): ours grows as
 * the agent finds candidates (trickle, RFC 8838: credentials first, then a
 * line per candidate, then end-of-candidates; with a secret each part is
 * sealed), and goes to the rendezvous room or out to the application; the
 * peer's is applied line by line as it comes (with a secret: only what its
 * seals cover, its password derived, never sent). The agent's events
 * (candidates, selection, states) are taken here too.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "peer_int.h"

static void seal_local(stunkit_peer *p);

static void log_cand(stunkit_peer *p, uint64_t now, const char *what, const stunkit_ice_candidate *c)
{
    char line[300];
    if (p->cfg.on_event && stunkit_ice_candidate_format(c, line, sizeof(line)) > 0)
        peer_log(p, now, "%s %s", what, line);
}

void peer_ice_pump(stunkit_peer *p, uint64_t now)
{
    stunkit_ice_output o;
    for (int pr; (pr = stunkit_ice_poll(p->ice, now, &o)) != 0;) {
        if (pr < 0)
            continue; /* STUNKIT_ERR_NOBUF: events were lost; the rest follow */
        if (o.send) {
            stunkit_ice_route r = {o.base, o.to, o.data, o.len, 0};
            peer_route(p, &r);
            continue;
        }
        switch (o.event) {
        case STUNKIT_ICE_EVENT_CANDIDATE:
            log_cand(p, now, "local", &o.local);
            if ((o.local.type == STUNKIT_ICE_TYPE_SRFLX || o.local.type == STUNKIT_ICE_TYPE_RELAY) && o.local.base != PEER_TURN_STREAM)
                p->udp_server_ok = 1;
            /* trickle: our description only grows, line by line */
            {
                char line[300];
                memcpy(line, "a=", 2);
                int n = stunkit_ice_candidate_format(&o.local, line + 2, sizeof(line) - 4);
                if (n > 0) {
                    memcpy(line + 2 + n, "\r\n", 2);
                    peer_local_grow(p, line, (size_t)n + 4, now);
                }
            }
            break;
        case STUNKIT_ICE_EVENT_STREAM_REDIRECTED:
            peer_turn_stream_redirected(p, &o.to, o.reason, now);
            break;
        case STUNKIT_ICE_EVENT_GATHERED:
            peer_log(p, now, "gathered");
            p->gathered = 1;
            peer_local_grow(p, "a=end-of-candidates\r\n", 21, now);
            {
                stunkit_peer_event ev = {.type = STUNKIT_PEER_EVENT_GATHERED};
                peer_emit(p, &ev);
            }
            if (!p->rdv && !p->cfg.trickle) {
                /* own signalling in one piece: the whole description */
                char desc[STUNKIT_RDV_DESC_MAX];
                int n = stunkit_peer_describe(p, desc, sizeof(desc));
                if (n > 0) {
                    stunkit_peer_event ev = {.type = STUNKIT_PEER_EVENT_DESCRIPTION, .text = desc, .len = (size_t)n};
                    peer_emit(p, &ev);
                }
            }
            break;
        case STUNKIT_ICE_EVENT_SELECTED:
            /* renomination: a direct pair replaced the relayed one */
            {
                int upgrade = p->connected && peer_selected_relayed(p) && o.local.type != STUNKIT_ICE_TYPE_RELAY &&
                              o.remote.type != STUNKIT_ICE_TYPE_RELAY;
                if (upgrade)
                    p->upgraded_ms = now - p->peer_ms;
                p->sel_local = o.local;
                p->sel_remote = o.remote;
                p->selected = 1;
                log_cand(p, now, "selected local", &o.local);
                log_cand(p, now, "selected remote", &o.remote);
                if (p->sp.state != SPRAY_DIRECT)
                    peer_path_changed(p, upgrade ? "renominated" : "ice");
            }
            break;
        case STUNKIT_ICE_EVENT_STATE:
            peer_log(p, now, "state %s%s%s (loss %u permille)", stunkit_ice_state_name(o.state), o.reason[0] ? ": " : "",
                  o.reason, stunkit_ice_loss(p->ice));
            if (o.state == STUNKIT_ICE_STATE_CONNECTED && !p->connected) {
                p->connected = 1;
                p->connect_ms = now - p->peer_ms;
            } else if (o.state == STUNKIT_ICE_STATE_FAILED) {
                peer_fail(p, now, "%s", o.reason);
            } else if (o.state == STUNKIT_ICE_STATE_DISCONNECTED) {
                p->disconnected = 1;
            }
            break;
        default: break;
        }
    }
}

/* With a secret: our description so far gets a seal line (covering it all). */
static void seal_local(stunkit_peer *p)
{
    if (!p->have_secret || p->local_len + STUNKIT_SECRET_MAC_LINE_LEN + 1 > sizeof(p->local_desc))
        return;
    int n = stunkit_secret_seal(&p->secret, p->local_desc, p->local_len, p->local_desc + p->local_len,
                                sizeof(p->local_desc) - p->local_len);
    if (n > 0)
        p->local_len += (size_t)n;
}

/* --secret: the lines of in[0..len) that the agent takes, with the peer's
 * password (derived from its ufrag, never sent) after its ufrag line; the
 * seal lines and any ice-pwd line dropped. The length written, or -1 when
 * the peer's ufrag is ours (our own description reflected back). */
static int unsealed_lines(const stunkit_peer *p, const char *in, size_t len, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        const char *nl = memchr(in + i, '\n', len - i);
        size_t n = nl ? (size_t)(nl - (in + i)) + 1 : len - i;
        const char *line = in + i;
        i += n;
        if (!strncmp(line, STUNKIT_SECRET_MAC_LINE, 16) || !strncmp(line, "a=ice-pwd:", 10))
            continue;
        if (o + n + 64 > cap)
            return -1;
        memcpy(out + o, line, n);
        o += n;
        if (!strncmp(line, "a=ice-ufrag:", 12)) {
            char uf[257];
            size_t un = n - 12;
            while (un && (line[12 + un - 1] == '\n' || line[12 + un - 1] == '\r'))
                un--;
            if (un >= sizeof(uf))
                return -1;
            memcpy(uf, line + 12, un);
            uf[un] = 0;
            char pw[40];
            if (!strcmp(uf, p->ufrag) || stunkit_secret_ice_pwd(&p->secret, uf, pw, sizeof(pw)) < 0)
                return -1;
            o += (size_t)snprintf(out + o, cap - o, "a=ice-pwd:%s\r\n", pw);
        }
    }
    out[o] = 0;
    return (int)o;
}

/* Candidate lines whose address is a ".local" name: to be resolved. */
static void mdns_lines(stunkit_peer *p, const char *text, size_t len, uint64_t now)
{
    for (size_t i = 0; i < len;) {
        const char *nl = memchr(text + i, '\n', len - i);
        size_t n = nl ? (size_t)(nl - (text + i)) : len - i;
        size_t m = n && text[i + n - 1] == '\r' ? n - 1 : n;
        if (m > 12 && (!strncmp(text + i, "a=candidate:", 12) || !strncmp(text + i, "candidate:", 10)) &&
            memmem(text + i, m, ".local ", 7))
            peer_mdns_want(p, text + i, m, now);
        i += n + 1;
    }
}

/* The peer's description as it comes: whole lines only, and only once its
 * ufrag and pwd are both in (the agent takes them together). With
 * --secret: only what its seals cover, and its password derived. */
int peer_apply(stunkit_peer *p, uint64_t now)
{
    p->peer_desc[p->peer_len] = 0;
    if (p->have_secret) {
        size_t ok = 0;
        char lines[STUNKIT_RDV_DESC_MAX + 512];
        int n = -1;
        if (p->failed)
            return STUNKIT_ERR_STATE;
        if (stunkit_secret_open(&p->secret, p->peer_desc, p->peer_len, &ok) != 0 ||
            (ok > p->peer_applied &&
             (n = unsealed_lines(p, p->peer_desc + p->peer_applied, ok - p->peer_applied, lines, sizeof(lines))) < 0)) {
            peer_fail(p, now,
                      "the peer's description does not check against the secret (another secret, our own sent "
                      "back, or changed on the way): not used");
            return STUNKIT_ERR_INTEGRITY_MISMATCH;
        }
        if (ok <= p->peer_applied) {
            /* nothing sealed beyond: a peer with the secret seals each part
             * as it sends it, so complete lines that stay unsealed (or an
             * ICE password, which a sealed description never carries) come
             * from someone without it */
            const char *rest = p->peer_desc + ok, *nl = memrchr(rest, '\n', p->peer_len - ok);
            if (nl && (memmem(rest, (size_t)(nl - rest), "a=ice-pwd:", 10) || nl - rest > 1024)) {
                peer_fail(p, now, "the peer %shas no secret (its description is not sealed): not used",
                          p->rdv ? "in the room " : "");
                return STUNKIT_ERR_INTEGRITY_MISMATCH;
            }
            return 0;
        }
        if (!p->peer_ready && !strstr(lines, "a=ice-ufrag:"))
            return 0; /* the credentials come first */
        peer_log(p, now, "peer's lines (sealed): %s", lines);
        int rv = stunkit_ice_apply(p->ice, lines, (size_t)n, now);
        mdns_lines(p, lines, (size_t)n, now);
        p->peer_last_ms = now;
        p->peer_applied = ok;
        if (!p->peer_ready) {
            p->peer_ready = 1;
            p->peer_ms = now;
        }
        return rv < 0 ? rv : 0;
    }
    if (!p->peer_ready) {
        const char *pw = strstr(p->peer_desc, "a=ice-pwd:");
        if (!strstr(p->peer_desc, "a=ice-ufrag:") || !pw || !strchr(pw, '\n'))
            return 0;
    }
    const char *last = NULL;
    for (const char *q = p->peer_desc + p->peer_applied; (q = strchr(q, '\n')); q++)
        last = q;
    if (!last)
        return 0;
    size_t upto = (size_t)(last - p->peer_desc) + 1;
    peer_log(p, now, "peer's lines: %.*s", (int)(upto - p->peer_applied), p->peer_desc + p->peer_applied);
    int rv = stunkit_ice_apply(p->ice, p->peer_desc + p->peer_applied, upto - p->peer_applied, now);
    mdns_lines(p, p->peer_desc + p->peer_applied, upto - p->peer_applied, now);
    p->peer_last_ms = now;
    p->peer_applied = upto;
    if (!p->peer_ready) {
        p->peer_ready = 1;
        p->peer_ms = now;
    }
    return rv < 0 ? rv : 0;
}

void peer_rdv_pump(stunkit_peer *p, uint64_t now)
{
    stunkit_rdv_output o;
    if (!p->rdv)
        return;
    while (stunkit_rdv_poll(p->rdv, now, &o) == 1) {
        if (o.send) {
            peer_rdv_send(p, o.data, o.len);
            continue;
        }
        switch (o.event) {
        case STUNKIT_RDV_EVENT_ROLE:
            if (!p->role_known)
                p->t_role = now - p->t0;
            p->role_known = 1;
            p->controlling = o.offerer;
            {
                stunkit_peer_event ev = {.type = STUNKIT_PEER_EVENT_ROLE, .controlling = o.offerer};
                peer_emit(p, &ev);
            }
            if (!p->ice && peer_start_agent(p, o.offerer, now) != 0)
                peer_fail(p, now, "cannot start the ICE agent");
            break;
        case STUNKIT_RDV_EVENT_PEER_DATA:
            if (p->peer_len + o.len <= STUNKIT_RDV_DESC_MAX) {
                memcpy(p->peer_desc + p->peer_len, o.data, o.len);
                p->peer_len += o.len;
                if (p->ice)
                    peer_apply(p, now);
            }
            break;
        case STUNKIT_RDV_EVENT_PEER_LEFT:
            /* another peer may take the place: its description starts over
             * (its new ufrag is an ICE restart to the agent) */
            p->peer_len = p->peer_applied = 0;
            p->peer_ready = 0;
            if (p->have_secret && p->failed && !p->connected)
                p->failed = 0; /* a forged description is gone with its sender */
            break;
        case STUNKIT_RDV_EVENT_FAILED:
            /* silent, or failing itself (500: its store is down; 503; 508:
             * full): another server of the fleet may carry on. 4xx are
             * about us (credentials, the room full): the same anywhere */
            if ((o.error_code == 0 || o.error_code >= 500) &&
                peer_fleet_move(p, now, o.error_code ? o.reason : "does not answer"))
                break;
            peer_log(p, now, "rendezvous failed");
            p->rdv_failed = 1;
            snprintf(p->reason, sizeof(p->reason), "the rendezvous failed: %s",
                     o.error_code ? o.reason : "no answer from the server (is it run with --rendezvous?)");
            break;
        case STUNKIT_RDV_EVENT_LEFT: p->rdv_left = 1; break;
        }
    }
}


/* The agent, once the role is known: every local socket a base. */
int peer_start_agent(stunkit_peer *p, int controlling, uint64_t now)
{
    stunkit_ice_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.size = sizeof(cfg);
    cfg.controlling = controlling;
    cfg.aggressive = p->cfg.aggressive;
    cfg.servers = p->servers;
    cfg.n_servers = p->n_servers;
    cfg.env = p->env;
    cfg.relay_only = p->cfg.relay_only;
    if (p->have_secret) {
        /* our ufrag at random, our password from it and the secret: the
         * peer derives it too, and it never crosses the wire */
        static const char ice_chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        uint8_t r[8];
        p->env.random(p->env.random_ctx, r, sizeof(r));
        for (int i = 0; i < 8; i++)
            p->ufrag[i] = ice_chars[r[i] & 63];
        p->ufrag[8] = 0;
        if (stunkit_secret_ice_pwd(&p->secret, p->ufrag, p->pwd, sizeof(p->pwd)) < 0)
            return -1;
        cfg.ufrag = p->ufrag;
        cfg.pwd = p->pwd;
    }
    p->ice = stunkit_ice_new(&cfg, now);
    if (!p->ice)
        return -1;
    p->controlling = controlling;
    /* what trickles out starts with our credentials (with a secret, the
     * password is derived by the peer: not sent) */
    char cred[200];
    int n = p->have_secret ? snprintf(cred, sizeof(cred), "a=ice-ufrag:%s\r\na=ice-options:trickle renomination\r\n",
                                      stunkit_ice_ufrag(p->ice))
                           : snprintf(cred, sizeof(cred),
                                      "a=ice-ufrag:%s\r\na=ice-pwd:%s\r\na=ice-options:trickle renomination\r\n",
                                      stunkit_ice_ufrag(p->ice), stunkit_ice_pwd(p->ice));
    peer_local_grow(p, cred, (size_t)n, now);
    if (p->peer_len)
        peer_apply(p, now);
    for (int i = 0; i < p->nsocks; i++)
        stunkit_ice_add_base(p->ice, i, &p->socks[i].local, now);
    /* gathering ends once the router has answered (or not) about a port */
    peer_map_start(p, now);
    if (p->pm.settled)
        stunkit_ice_local_done(p->ice, now);
    return 0;
}

/* Our description grows by text (whole lines): sealed with a secret, up to
 * the room, or out to the application (own signalling, trickled). */
void peer_local_grow(stunkit_peer *p, const char *text, size_t len, uint64_t now)
{
    if (p->local_len + len + STUNKIT_SECRET_MAC_LINE_LEN + 1 > sizeof(p->local_desc))
        return;
    memcpy(p->local_desc + p->local_len, text, len);
    p->local_len += len;
    seal_local(p);
    if (p->rdv) {
        stunkit_rdv_set_description(p->rdv, p->local_desc, p->local_len, now);
    } else if (p->cfg.trickle && p->local_len > p->local_told) {
        stunkit_peer_event ev = {.type = STUNKIT_PEER_EVENT_DESCRIPTION,
                                 .text = p->local_desc + p->local_told,
                                 .len = p->local_len - p->local_told};
        p->local_told = p->local_len;
        peer_emit(p, &ev);
    }
}

/* A message to the rendezvous: over TCP once it moved there, else UDP
 * (our socket is connected to the server). */
void peer_rdv_send(stunkit_peer *p, const uint8_t *data, size_t len)
{
    if (p->rdv_on_tcp)
        peer_stream_send(&p->rdv_tcp, data, len);
    else if (p->has_io)
        peer_udp_send(p, &p->rdv_sock, &p->server, data, len);
    else
        (void)send(p->rdv_sock.fd, data, len, 0);
}

/* The rendezvous' socket (UDP, connected to the server) is readable, or
 * an ICMP error says UDP to the server is refused. */
void peer_rdv_readable(stunkit_peer *p, uint64_t now)
{
    uint8_t buf[2048];
    ssize_t n;
    while ((n = recv(p->rdv_sock.fd, buf, sizeof(buf), MSG_DONTWAIT)) >= 0 || peer_udp_refusal(errno)) {
        if (n < 0) { /* ICMP: nothing listens for UDP there, or a firewall refuses it */
            /* after it answered over UDP: the server went away (another
             * of the fleet, if there is one); before: try TCP */
            if (!p->rdv_on_tcp && peer_fleet_answered_here(p) && peer_fleet_move(p, now, "refuses UDP now"))
                return;
            p->udp_refused = 1;
            continue;
        }
        stunkit_rdv_input(p->rdv, p->rdv_sock.fd, NULL, buf, (size_t)n, now);
    }
}
