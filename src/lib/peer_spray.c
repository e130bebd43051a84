/*
 * peer_spray.c - birthday-paradox punching beside the relay (stunkit/peer.h).
 *
 * A symmetric NAT gives each destination a new, random external port, so its
 * peer cannot know where to answer; a port-restricted NAT (or a stateful
 * firewall) on the other side lets in only what it has sent to. If the
 * symmetric ("hard") side opens K mappings and the other ("easy") side sends
 * M probes to guessed ports of the hard side's address, one guess lands
 * with probability 1 - exp(-K*M/N), N = 64511 ports.
 *
 * Tried only where it pays: the path is relayed, both sides have a public
 * address, one NAT's mapping depends on the destination (its side saw a
 * peer-reflexive address of its own with another port than the server saw,
 * or the other side saw its checks come from such a port: RFC 4787
 * address-and-port-dependent mapping) and the other's provably does not
 * (its checks to the peer's relay, another destination than the server,
 * left from its server-reflexive address). The sides tell each other what
 * they saw over the relay ("SKP1 nat SELF PEER": hard, easy or unknown);
 * without evidence both ways (loss, say) nothing is tried.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "peer_int.h"

static void send_text(stunkit_peer *p, const peer_sock *s, const stunkit_addr *to, const char *text)
{
    peer_udp_send(p, s, to, text, strlen(text));
}

/* How many probes may go now (the pacing bucket and the run's budget). */
static long spray_allowed(peer_spray *sp, uint64_t now)
{
    if (!sp->tokens_at) {
        sp->tokens = SPRAY_SOCKS;
    } else if (now > sp->tokens_at) {
        sp->tokens += (double)(now - sp->tokens_at) * SPRAY_PPS / 1000.0;
        if (sp->tokens > SPRAY_SOCKS)
            sp->tokens = SPRAY_SOCKS;
    }
    sp->tokens_at = now;
    long n = (long)sp->tokens, left = SPRAY_BUDGET - sp->sent;
    return n < left ? n : left;
}

static void spray_spent(peer_spray *sp, long n)
{
    sp->tokens -= (double)n;
    sp->sent += n;
}

void peer_spray_close(stunkit_peer *p, int keep)
{
    peer_spray *sp = &p->sp;
    for (int i = 0; i < sp->nfds; i++)
        if (i != keep)
            peer_udp_close(p, &sp->s[i]);
    if (keep >= 0) {
        sp->s[0] = sp->s[keep];
        sp->sock = 0;
    }
    sp->nfds = keep >= 0 ? 1 : 0;
}

static void spray_off(stunkit_peer *p, const char *why)
{
    peer_spray *sp = &p->sp;
    if (sp->state != SPRAY_DIRECT)
        peer_spray_close(p, -1);
    sp->state = SPRAY_OFF;
    snprintf(sp->why, sizeof(sp->why), "%s", why);
}

/* A relayed path works (selected, or before that valid: RFC 8445 12.1
 * lets data go on it): what did our side see of its NAT? Before ICE's
 * selection only where a NAT is already seen to map per destination (ours
 * or the peer's, or the peer said so): then guessing runs beside the relay
 * instead of after its nomination wait. */
static void spray_begin(stunkit_peer *p, uint64_t now)
{
    peer_spray *sp = &p->sp;
    stunkit_ice_candidate c[STUNKIT_ICE_MAX_REMOTE];
    stunkit_ice_candidate pl, pr;
    if (sp->state != SPRAY_IDLE)
        return;
    int k = stunkit_ice_path(p->ice, &pl, &pr);
    if (!k || (pl.type != STUNKIT_ICE_TYPE_RELAY && pr.type != STUNKIT_ICE_TYPE_RELAY))
        return;
    int early = k == 2;
    if (early && !p->spray_on)
        return;
    sp->base = sp->sock = -1;
    if (!p->spray_on) {
        peer_send_ctl(p, "SKP1 nat off");
        spray_off(p, "off (--no-spray)");
        return;
    }
    /* our address as the server saw it: a relayed candidate's raddr (RFC
     * 8839 5.1: its mapped address; the host's own when there is no NAT) */
    int n = stunkit_ice_get_local(p->ice, c, STUNKIT_ICE_MAX_REMOTE);
    for (int i = 0; i < n && i < STUNKIT_ICE_MAX_REMOTE; i++)
        if (c[i].type == STUNKIT_ICE_TYPE_RELAY && c[i].related.family == STUNKIT_AF_INET && c[i].base >= 0 &&
            c[i].base < p->nsocks && sp->base < 0) {
            sp->base = c[i].base;
            sp->self_srflx = c[i].related;
        }
    /* RFC 4787 4.1: a check's answer that names another port of the same
     * address than the server saw: the mapping depends on the destination */
    for (int i = 0; i < n && i < STUNKIT_ICE_MAX_REMOTE; i++)
        if (c[i].type == STUNKIT_ICE_TYPE_PRFLX && c[i].base == sp->base && sp->base >= 0 &&
            !memcmp(c[i].addr.ip, sp->self_srflx.ip, 4) && c[i].addr.port != sp->self_srflx.port)
            sp->self_hard = 1;
    /* the selected pair: our srflx (or host: no NAT) to the peer's relay */
    sp->self_easy = !sp->self_hard && pr.type == STUNKIT_ICE_TYPE_RELAY && pl.base == sp->base &&
                    (pl.type == STUNKIT_ICE_TYPE_SRFLX || pl.type == STUNKIT_ICE_TYPE_HOST);
    /* the peer's public address: what its candidates claim (a relayed
     * candidate's raddr, a srflx), taken only when the peer has proven that
     * IP with an authenticated check (stunkit_ice_proven): a malicious peer
     * must not aim our guesses at a third party */
    n = stunkit_ice_get_remote(p->ice, c, STUNKIT_ICE_MAX_REMOTE);
    int claimed = 0;
    for (int i = 0; i < n && i < STUNKIT_ICE_MAX_REMOTE; i++)
        if (c[i].type == STUNKIT_ICE_TYPE_RELAY && c[i].related.family == STUNKIT_AF_INET && !sp->peer_srflx.family &&
            memcmp(c[i].related.ip, "\0\0\0\0", 4)) {
            claimed = 1;
            if (stunkit_ice_proven(p->ice, &c[i].related, 1))
                sp->peer_srflx = c[i].related;
        }
    for (int i = 0; i < n && i < STUNKIT_ICE_MAX_REMOTE; i++)
        if (c[i].type == STUNKIT_ICE_TYPE_SRFLX && c[i].addr.family == STUNKIT_AF_INET && !sp->peer_srflx.family) {
            claimed = 1;
            if (stunkit_ice_proven(p->ice, &c[i].addr, 1))
                sp->peer_srflx = c[i].addr;
        }
    /* no claim proven (a peer that lied about its address, or whose srflx
     * we could not check): the address its authenticated checks came from */
    for (int i = 0; i < n && i < STUNKIT_ICE_MAX_REMOTE; i++)
        if (c[i].type == STUNKIT_ICE_TYPE_PRFLX && c[i].addr.family == STUNKIT_AF_INET && !sp->peer_srflx.family &&
            stunkit_ice_proven(p->ice, &c[i].addr, 0))
            sp->peer_srflx = c[i].addr;
    /* the peer's checks (to our relay, say) from its srflx address but
     * another port: the peer's NAT maps per destination */
    for (int i = 0; i < n && i < STUNKIT_ICE_MAX_REMOTE; i++)
        if (c[i].type == STUNKIT_ICE_TYPE_PRFLX && sp->peer_srflx.family && c[i].addr.family == STUNKIT_AF_INET &&
            !memcmp(c[i].addr.ip, sp->peer_srflx.ip, 4) && c[i].addr.port != sp->peer_srflx.port)
            sp->peer_seen_hard = 1;
    /* ... or from exactly its srflx (or host: no NAT) as our relay saw them, or
     * answering from there: its NAT kept the mapping the server saw for
     * another destination (RFC 4787 endpoint-independent), whatever pair
     * ICE selected */
    for (int i = 0; i < n && i < STUNKIT_ICE_MAX_REMOTE; i++)
        if ((c[i].type == STUNKIT_ICE_TYPE_SRFLX || c[i].type == STUNKIT_ICE_TYPE_HOST) && /* host: no NAT, a firewall */
            stunkit_addr_equal(&c[i].addr, &sp->peer_srflx) && stunkit_ice_proven(p->ice, &c[i].addr, 0))
            sp->peer_seen_easy = !sp->peer_seen_hard;
    if (early && (sp->base < 0 || !sp->peer_srflx.family ||
                  !(sp->self_hard || sp->peer_seen_hard || sp->peer_kind == 2))) {
        /* not yet: evidence may come with the next checks (or never: then
         * after ICE's selection, as before) */
        memset(&sp->peer_srflx, 0, sizeof(sp->peer_srflx));
        sp->self_hard = sp->self_easy = sp->peer_seen_hard = sp->peer_seen_easy = 0;
        return;
    }
    if (sp->base < 0 || !sp->peer_srflx.family) {
        peer_send_ctl(p, "SKP1 nat off");
        spray_off(p, claimed && sp->base >= 0
                          ? "the peer's public address is not proven by an authenticated check"
                          : "no public IPv4 address known on both sides (a relay over UDP gives it)");
        return;
    }
    sp->state = SPRAY_TOLD;
    sp->start = now;
}

/* "SKP1 nat SELF PEER [?]": what we saw of both NATs, "?" while we have not
 * heard the peer (it answers once). Over the relay, so resent while unheard. */
static void spray_tell(stunkit_peer *p, uint64_t now)
{
    peer_spray *sp = &p->sp;
    char tell[64];
    snprintf(tell, sizeof(tell), "SKP1 nat %s %s%s", sp->self_hard ? "hard" : sp->self_easy ? "easy" : "unknown",
             sp->peer_seen_hard ? "hard" : sp->peer_seen_easy ? "easy" : "unknown", sp->peer_kind ? "" : " ?");
    peer_send_ctl(p, tell);
    sp->told_at = now;
}

/* The hard side's round: fresh sockets, one probe from each to the easy
 * side's address (the easy NAT drops them, but each leaves a mapping open
 * in ours), then "go" over the relay. */
static void spray_round(stunkit_peer *p, uint64_t now)
{
    peer_spray *sp = &p->sp;
    char probe[64], go[64];
    peer_spray_close(p, -1);
    sp->round++;
    snprintf(probe, sizeof(probe), SPRAY_MAGIC "? %d", sp->round);
    long allowed = spray_allowed(sp, now);
    for (int i = 0; i < SPRAY_SOCKS && i < allowed; i++) {
        /* watched by a number of their own: the list is compacted when a
         * guess hits, the socket kept moves to the front */
        peer_sock *s = &sp->s[sp->nfds];
        if (peer_udp_open(p, &p->socks[sp->base].local, s, EV_SPRAY, ++sp->serial) != 0)
            break;
        s->id = sp->serial;
        sp->nfds++;
        send_text(p, s, &sp->peer_srflx, probe);
        spray_spent(sp, 1);
    }
    snprintf(go, sizeof(go), "SKP1 spray go %d", sp->round);
    peer_send_ctl(p, go);
    peer_send_ctl(p, go); /* over the relay: a lost one would waste the round */
    sp->round_end = now + SPRAY_ROUND_MS;
}

void peer_spray_step(stunkit_peer *p, uint64_t now)
{
    peer_spray *sp = &p->sp;
    spray_begin(p, now);
    /* begun beside the relay, and ICE found a direct path after all */
    if ((sp->state == SPRAY_TOLD || sp->state == SPRAY_RUNNING) && p->selected && !peer_selected_relayed(p))
        spray_off(p, "ICE found a direct path");
    if (sp->answer && sp->state != SPRAY_IDLE && sp->state != SPRAY_OFF) {
        sp->answer = 0;
        spray_tell(p, now);
    }
    if (sp->state == SPRAY_TOLD) {
        if (!sp->peer_kind) {
            if (now - sp->start > 1500)
                spray_off(p, "the peer did not say what its NAT does");
            else if (!sp->told_at || now - sp->told_at >= 150)
                spray_tell(p, now);
        } else if (sp->peer_kind == 3) {
            spray_off(p, "off on the peer's side");
        } else {
            /* what we saw and what the peer saw, together */
            sp->self_hard |= sp->peer_sees_us_hard;
            sp->self_easy |= sp->peer_sees_us_easy;
            sp->self_easy &= !sp->self_hard;
            sp->peer_seen_hard |= sp->peer_kind == 2;
            int peer_easy = (sp->peer_kind == 1 || sp->peer_seen_easy) && !sp->peer_seen_hard;
            if (sp->self_hard && sp->peer_seen_hard) {
                spray_off(p, "both NATs map per destination: guessing does not pay");
            } else if (!(sp->self_hard && peer_easy) && !(sp->self_easy && sp->peer_seen_hard)) {
                spray_off(p, !sp->self_hard && !sp->peer_seen_hard ? "neither NAT is seen to map per destination"
                                                                    : "the other NAT's mapping is unknown");
            } else {
                sp->state = SPRAY_RUNNING;
                if (sp->self_hard)
                    spray_round(p, now);
            }
        }
    }
    if (sp->state != SPRAY_RUNNING)
        return;
    if (sp->self_hard) {
        if (now >= sp->round_end) {
            if (sp->round < SPRAY_ROUNDS)
                spray_round(p, now);
            else
                spray_off(p, "no guess hit");
        }
        return;
    }
    /* the easy side: this round's guesses, 64 at a time (about 20 ms for
     * 1024), each to a port of the hard side's address not guessed before */
    if (sp->go > sp->round) {
        sp->round = sp->go;
        sp->guessed = 0;
        sp->guesses = SPRAY_GUESSES;
    }
    char probe[64];
    snprintf(probe, sizeof(probe), SPRAY_MAGIC "? %d", sp->round);
    long allowed = spray_allowed(sp, now);
    for (int k = 0; k < 64 && k < allowed && sp->guessed < sp->guesses; k++) {
        uint16_t port;
        do
            p->env.random(p->env.random_ctx, (uint8_t *)&port, sizeof(port));
        while (port < 1024 || (sp->used[port / 8] & (1u << (port % 8))));
        sp->used[port / 8] |= (uint8_t)(1u << (port % 8));
        stunkit_addr to = sp->peer_srflx;
        to.port = port;
        send_text(p, &p->socks[sp->base], &to, probe);
        sp->guessed++;
        spray_spent(sp, 1);
    }
    if (sp->sent >= SPRAY_BUDGET && sp->guessed < sp->guesses)
        sp->guesses = sp->guessed; /* the run's budget is spent */
    if (now - sp->start > SPRAY_ROUNDS * SPRAY_ROUND_MS + 2000)
        spray_off(p, "no guess hit");
}

/* A probe or answer ("SKB1 ? R", "SKB1 ! R", "SKB1 = R ADDRESS") on our
 * socket `fd` (an index into sp->s, or -1: the base) from `from`. */
void peer_spray_input(stunkit_peer *p, int fd, const stunkit_addr *from, const uint8_t *d, size_t len, uint64_t now)
{
    peer_spray *sp = &p->sp;
    char msg[128], kind;
    int round;
    if (len >= sizeof(msg) || (sp->state != SPRAY_RUNNING && sp->state != SPRAY_DIRECT) ||
        memcmp(from->ip, sp->peer_srflx.ip, 4) != 0)
        return;
    memcpy(msg, d, len);
    msg[len] = 0;
    if (sscanf(msg, SPRAY_MAGIC "%c %d", &kind, &round) != 2 || round < 1 || round > SPRAY_ROUNDS)
        return;
    if (kind == '=' && sp->state == SPRAY_DIRECT && sp->self_hard) { /* the easy side saw us come from here */
        const char *a = strrchr(msg, ' ');
        stunkit_addr m;
        if (a && stunkit_addr_parse(a + 1, 0, &m) == 0)
            sp->self_mapped = m;
        return;
    }
    if (sp->state == SPRAY_DIRECT || (kind != '?' && kind != '!'))
        return;
    char reply[96];
    snprintf(reply, sizeof(reply), SPRAY_MAGIC "! %d", round);
    if (sp->self_hard && fd >= 0) {
        /* a guess landed on one of our mappings: answer from that socket */
        for (int r = 0; r < 2 && kind == '?'; r++)
            send_text(p, &sp->s[fd], from, reply);
        sp->to = *from;
        peer_spray_close(p, fd);
    } else if (!sp->self_hard && fd < 0) {
        /* the hard side answered (or its probe came through our hole) */
        char seen[STUNKIT_ADDRSTRLEN], tell[128];
        stunkit_addr_format(from, seen, sizeof(seen));
        snprintf(tell, sizeof(tell), SPRAY_MAGIC "= %d %s", round, seen);
        if (kind == '?')
            send_text(p, &p->socks[sp->base], from, reply);
        for (int r = 0; r < 2; r++)
            send_text(p, &p->socks[sp->base], from, tell);
        sp->to = *from;
        sp->sock = -1;
    } else {
        return;
    }
    sp->state = SPRAY_DIRECT;
    sp->ms = now - sp->start;
    sp->at = now - p->peer_ms;
    if (!p->connected) { /* found before ICE's selection: connected now */
        p->connected = 1;
        p->connect_ms = sp->at;
    }
    peer_path_changed(p, "birthday");
}

int peer_spray_busy(const stunkit_peer *p)
{
    const peer_spray *sp = &p->sp;
    return sp->state == SPRAY_TOLD || sp->state == SPRAY_RUNNING ||
           (sp->state == SPRAY_IDLE && p->selected && peer_selected_relayed(p));
}

/* The path the pings took: ICE's selected pair, or the one birthday
 * punching found (the hard side: its mapping as the easy side saw it). */
void peer_spray_pair(const stunkit_peer *p, stunkit_ice_candidate *l, stunkit_ice_candidate *r)
{
    const peer_spray *sp = &p->sp;
    memset(l, 0, sizeof(*l));
    memset(r, 0, sizeof(*r));
    if (sp->self_hard) {
        l->type = sp->self_mapped.family ? STUNKIT_ICE_TYPE_PRFLX : STUNKIT_ICE_TYPE_HOST;
        l->addr = sp->self_mapped.family ? sp->self_mapped : p->socks[sp->base].local;
        /* a peer without NAT (a firewall) signalled it as its host candidate */
        stunkit_ice_candidate c[STUNKIT_ICE_MAX_REMOTE];
        int n = stunkit_ice_get_remote(p->ice, c, STUNKIT_ICE_MAX_REMOTE);
        r->type = STUNKIT_ICE_TYPE_SRFLX;
        for (int i = 0; i < n && i < STUNKIT_ICE_MAX_REMOTE; i++)
            if (c[i].type == STUNKIT_ICE_TYPE_HOST && stunkit_addr_equal(&c[i].addr, &sp->to))
                r->type = STUNKIT_ICE_TYPE_HOST;
    } else {
        l->type = stunkit_addr_equal(&sp->self_srflx, &p->socks[sp->base].local) ? STUNKIT_ICE_TYPE_HOST : STUNKIT_ICE_TYPE_SRFLX;
        l->addr = sp->self_srflx;
        r->type = STUNKIT_ICE_TYPE_PRFLX;
    }
    r->addr = sp->to;
}


/* The peers' own messages over the path: "SKP1 nat SELF PEER [?]", "SKP1
 * nat off", "SKP1 spray go R". */
void peer_spray_ctl(stunkit_peer *p, const char *msg, size_t len)
{
    int round;
    char self[8], seen[8];
    if (!strcmp(msg, "SKP1 nat off")) {
        p->sp.peer_kind = 3;
    } else if (sscanf(msg, "SKP1 nat %7s %7s", self, seen) == 2) {
        p->sp.peer_kind = !strcmp(self, "hard") ? 2 : !strcmp(self, "easy") ? 1 : 4;
        p->sp.peer_sees_us_hard = !strcmp(seen, "hard");
        p->sp.peer_sees_us_easy = !strcmp(seen, "easy");
        p->sp.answer = len > 2 && msg[len - 1] == '?';
    } else if (sscanf(msg, "SKP1 spray go %d", &round) == 1) {
        if (round > p->sp.go && round <= SPRAY_ROUNDS)
            p->sp.go = round;
    }
}

/* A datagram that came to guessing socket k: probes and answers, or (once
 * a guess hit, on the socket kept) the peer's data. */
void peer_spray_datagram(stunkit_peer *p, int k, const stunkit_addr *src, const uint8_t *buf, size_t n, uint64_t now)
{
    if (n >= 5 && !memcmp(buf, SPRAY_MAGIC, 5))
        peer_spray_input(p, k, src, buf, n, now);
    else if (peer_from_peer(p, src, 0))
        peer_app_in(p, buf, n, now);
}

/* The guessing socket watched as `id` is readable. */
void peer_spray_readable(stunkit_peer *p, int id, uint64_t now)
{
    int k;
    for (k = 0; k < p->sp.nfds && p->sp.s[k].id != (uint32_t)id; k++)
        ;
    if (k == p->sp.nfds)
        return; /* closed meanwhile (its descriptor went with it) */
    int fd = p->sp.s[k].fd;
    uint8_t buf[PEER_MAX_DATA];
    struct sockaddr_storage from;
    socklen_t fl;
    stunkit_addr src;
    ssize_t n;
    while ((fl = sizeof(from), n = recvfrom(fd, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&from, &fl)) >= 0) {
        if (stunkit_addr_from_sockaddr(&src, (struct sockaddr *)&from) != 0)
            continue;
        peer_spray_datagram(p, k, &src, buf, (size_t)n, now);
        if (k >= p->sp.nfds || p->sp.s[k].fd != fd)
            break; /* the sockets changed (a hit closed the others) */
    }
}

/* When guessing needs a step (UINT64_MAX: not). */
uint64_t peer_spray_timeout(const stunkit_peer *p, uint64_t now)
{
    const peer_spray *sp = &p->sp;
    uint64_t next = UINT64_MAX;
    if (sp->state == SPRAY_TOLD)
        next = sp->told_at + 150;
    if (sp->state == SPRAY_RUNNING)
        next = sp->self_hard ? sp->round_end : sp->guessed < sp->guesses ? now + 1 : now + 20;
    return next;
}
