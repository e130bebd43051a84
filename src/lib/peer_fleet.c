/*
 * peer_fleet.c - the peer's servers, and moving to the next when the one
 * that carries the rendezvous goes away.
 *
 * The servers: every address the server's name gives (DNS SRV, RFC 8489
 * 8.1, in RFC 2782's order; several A/AAAA records), then the application's
 * fallbacks, each resolved the same way; up to PEER_FLEET_MAX, of the first
 * one's address family. They are one fleet: the same credentials, the
 * rooms shared (stunkitd --rendezvous-redis), so a peer that moves finds
 * its place and its peer's description at the next server.
 *
 * When to move (only with more than one server): the rendezvous' server
 * has been silent for PEER_FLEET_SILENCE_MS (its requests went out, none
 * was answered), or answered 5xx (500: its store is down, 503, 508: full),
 * or refused UDP (ICMP) after it had answered over UDP, or closed the
 * rendezvous' TCP/TLS connection. The peer then sends the rendezvous to
 * the next server (stunkit_rdv_move: the same peer, from where it was);
 * after every other server was tried without an answer, the rendezvous
 * fails. The ICE agent keeps the server it started with (its relayed
 * candidate dies with that server; the direct paths do not): an agent not
 * started yet starts with the server the peer is at.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "peer_int.h"

static int fleet_has(const stunkit_peer *p, const stunkit_addr *a)
{
    for (int i = 0; i < p->n_fleet; i++)
        if (stunkit_addr_equal(&p->fleet[i].udp, a))
            return 1;
    return 0;
}

/* Adds the server's addresses: 0, -1 (does not resolve), -2 (only to
 * another address family than the first server's: one socket carries the
 * rendezvous), STUNKIT_ERR_NOMEM. */
int peer_fleet_add(stunkit_peer *p, const stunkit_server *srv)
{
    /* a TLS server (turns:host[:port], 5349 by default) carries the TCP
     * fallbacks; UDP goes to the same host's STUN port */
    stunkit_server udp_srv = *srv;
    stunkit_addr udp[PEER_FLEET_MAX], stream[PEER_FLEET_MAX];
    int family = p->n_fleet ? p->fleet[0].udp.family : 0;
    if (srv->secure) {
        udp_srv.secure = 0;
        udp_srv.port = 0;
    }
    int n = stunkit_server_resolve(&udp_srv, STUNKIT_UDP, family, udp, PEER_FLEET_MAX);
    if (n < 1)
        return family && stunkit_server_resolve(&udp_srv, STUNKIT_UDP, 0, udp, 1) > 0 ? -2 : -1;
    int ns = n;
    if (srv->secure) {
        ns = stunkit_server_resolve(srv, STUNKIT_TLS, udp[0].family, stream, PEER_FLEET_MAX);
        if (ns < 1)
            return -1;
    } else {
        memcpy(stream, udp, sizeof(udp[0]) * (size_t)n);
    }
    char *name = strdup(srv->host);
    if (!name)
        return STUNKIT_ERR_NOMEM;
    int added = 0;
    for (int i = 0; i < n && p->n_fleet < PEER_FLEET_MAX; i++) {
        if ((p->n_fleet && udp[i].family != p->fleet[0].udp.family) || fleet_has(p, &udp[i]))
            continue;
        peer_server *s = &p->fleet[p->n_fleet++];
        s->udp = udp[i];
        s->stream = stream[i < ns ? i : ns - 1]; /* SRV's TLS records paired in order */
        s->tls_name = name;
        s->owns_name = !added;
        added++;
    }
    if (!added)
        free(name);
    return 0;
}

void peer_fleet_free(stunkit_peer *p)
{
    for (int i = 0; i < p->n_fleet; i++)
        if (p->fleet[i].owns_name)
            free(p->fleet[i].tls_name);
    p->n_fleet = 0;
}

/* The peer's server is fleet[i] from now on: where the rendezvous goes,
 * the TCP/TLS fallbacks open, and (before the agent starts) its TURN. */
void peer_fleet_use(stunkit_peer *p, int i)
{
    p->at = i;
    p->server = p->fleet[i].udp;
    p->stream_server = p->fleet[i].stream;
    p->tls_name = p->fleet[i].tls_name;
    if (!p->ice) {
        p->servers[0].addr = p->server;
        if (p->n_servers > 1)
            p->servers[1].addr = p->stream_server;
        p->turn_server = p->stream_server;
    }
}

int peer_fleet_move(stunkit_peer *p, uint64_t now, const char *why)
{
    if (!p->rdv || p->n_fleet < 2 || p->closed)
        return 0;
    /* every other server tried since the last answer: give up */
    uint64_t heard = stunkit_rdv_last_answer(p->rdv);
    if (heard && heard >= p->moved_ms)
        p->moves_unanswered = 0;
    if (p->moves_unanswered >= (unsigned)p->n_fleet - 1)
        return 0;
    char from[64], to[64];
    stunkit_addr_format(&p->server, from, sizeof(from));
    peer_fleet_use(p, (p->at + 1) % p->n_fleet);
    stunkit_addr_format(&p->server, to, sizeof(to));
    peer_log(p, now, "rendezvous: %s %s; on to %s", from, why, to);
    p->moves++;
    p->moves_unanswered++;
    p->moved_ms = now;
    /* the way to the new server: UDP first, as at the start */
    if (!p->has_io && p->rdv_sock.fd >= 0) {
        struct sockaddr_storage ss;
        int sl = stunkit_addr_to_sockaddr(&p->server, &ss);
        if (connect(p->rdv_sock.fd, (struct sockaddr *)&ss, (socklen_t)sl) != 0)
            peer_log(p, now, "rendezvous: cannot connect to %s: %s", to, strerror(errno));
    }
    peer_stream_close(&p->rdv_tcp);
    p->rdv_tcp.closed = p->has_io; /* the new server gets its own TCP fallback */
    p->rdv_on_tcp = 0;
    p->udp_refused = 0;
    p->rdv_start = now;
    p->rdv_failed = 0;
    p->reason[0] = 0;
    stunkit_rdv_move(p->rdv, STUNKIT_UDP, now);
    return 1;
}

int peer_fleet_answered_here(const stunkit_peer *p)
{
    uint64_t heard = p->rdv ? stunkit_rdv_last_answer(p->rdv) : 0;
    return heard && heard >= p->moved_ms;
}
