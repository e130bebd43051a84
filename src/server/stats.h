/*
 * stats.h - per-worker counters. Each worker writes only its own block with
 * relaxed atomic stores (plain moves on x86); the main thread sums them with
 * relaxed loads when asked (SIGUSR1, exit). No locks, no shared cache lines.
 */
#ifndef STUNKITD_STATS_H
#define STUNKITD_STATS_H

#include <stdint.h>
#include <stdio.h>

#define SKD_STATS_MAP(X)                                                                                               \
    X(udp_rx, "UDP datagrams received")                                                                                \
    X(udp_tx, "UDP datagrams sent")                                                                                    \
    X(tcp_rx, "TCP messages received")                                                                                 \
    X(tcp_tx, "TCP messages sent")                                                                                     \
    X(dtls_rx, "DTLS messages received")                                                                               \
    X(dtls_tx, "DTLS messages sent")                                                                                   \
    X(udp_rx_bytes, "UDP bytes received")                                                                              \
    X(udp_tx_bytes, "UDP bytes sent")                                                                                  \
    X(tcp_rx_bytes, "TCP/TLS bytes of messages received")                                                              \
    X(tcp_tx_bytes, "TCP/TLS bytes of messages sent")                                                                  \
    X(dtls_rx_bytes, "DTLS bytes of messages received")                                                                \
    X(dtls_tx_bytes, "DTLS bytes of messages sent")                                                                    \
    X(success, "success responses")                                                                                    \
    X(err_300, "300 Try Alternate responses")                                                                          \
    X(err_400, "400 Bad Request responses")                                                                            \
    X(err_401, "401 Unauthenticated responses")                                                                        \
    X(err_403, "403 Forbidden responses")                                                                              \
    X(err_420, "420 Unknown Attribute responses")                                                                      \
    X(err_437, "437 Allocation Mismatch responses")                                                                    \
    X(err_438, "438 Stale Nonce responses")                                                                            \
    X(err_440, "440 Address Family not Supported responses")                                                           \
    X(err_441, "441 Wrong Credentials responses")                                                                      \
    X(err_442, "442 Unsupported Transport Protocol responses")                                                         \
    X(err_443, "443 Peer Address Family Mismatch responses")                                                           \
    X(err_486, "486 Allocation Quota Reached responses")                                                               \
    X(err_487, "487 Role Conflict responses")                                                                          \
    X(err_500, "500 Server Error responses")                                                                           \
    X(err_508, "508 Insufficient Capacity responses")                                                                  \
    X(err_other, "error responses with another code")                                                                  \
    X(redirected, "answers sent elsewhere (CHANGE-REQUEST, RESPONSE-PORT)")                                            \
    X(rfc3489, "RFC 3489 requests answered")                                                                           \
    X(drop_not_stun, "dropped: not STUN")                                                                              \
    X(drop_malformed, "dropped: malformed header or bad FINGERPRINT")                                                  \
    X(drop_not_request, "dropped: indications and responses")                                                          \
    X(drop_method, "dropped: unsupported method")                                                                      \
    X(drop_rate, "dropped: rate limited")                                                                              \
    X(drop_rate_redirect, "dropped: strict budget exhausted (redirects, 401/438)")                                                        \
    X(send_errors, "send errors")                                                                                      \
    X(xdp_answered, "Binding requests answered in XDP (also in udp_rx, udp_tx, success)")                              \
    X(xdp_passed, "datagrams to a listening port XDP left to the sockets")                                            \
    X(xdp_dropped, "datagrams dropped in XDP (also in udp_rx and the drop_* counters)")                                \
    X(xdp_relayed, "TURN channel datagrams relayed in XDP, both ways (also in turn_to_peer, turn_to_client)")          \
    X(tcp_accepted, "TCP connections accepted")                                                                        \
    X(tcp_rejected, "TCP connections refused (limit)")                                                                 \
    X(tcp_idle_closed, "TCP connections closed idle")                                                                  \
    X(tcp_timeout_closed, "TCP/TLS connections closed: request or handshake not complete in time")                     \
    X(tcp_evicted, "TCP/TLS connections evicted to make room for a newcomer")                                          \
    X(tcp_paused, "TCP/TLS reads paused: answers not read fast enough")                                                \
    X(dtls_hello_verify, "DTLS HelloVerifyRequests sent (stateless)")                                                  \
    X(dtls_sessions, "DTLS sessions created (after a valid cookie)")                                                   \
    X(dtls_refused, "DTLS sessions refused: per-source cap")                                                           \
    X(tcp_bad_framing, "TCP connections closed: not STUN or too large")                                                \
    X(tcp_proxied, "TCP/TLS connections whose PROXY v2 header named the client")                                       \
    X(tcp_proxy_refused, "TCP/TLS connections closed: a PROXY header from an unlisted address, or malformed")         \
    X(turn_allocations, "TURN allocations made")                                                                       \
    X(turn_expired, "TURN allocations expired")                                                                        \
    X(turn_live, "TURN allocations now (a gauge)")                                                                     \
    X(turn_to_peer, "TURN datagrams relayed to peers")                                                                 \
    X(turn_to_client, "TURN datagrams relayed to clients")                                                             \
    X(turn_to_peer_bytes, "TURN application bytes relayed to peers")                                                   \
    X(turn_to_client_bytes, "TURN application bytes relayed to clients")                                               \
    X(turn_peer_refused, "TURN peers refused by policy (403)")                                                         \
    X(turn_no_permission, "TURN datagrams dropped: no permission")                                                     \
    X(turn_over_quota, "TURN datagrams dropped: over the bandwidth quota")                                             \
    X(turn_too_big, "TURN datagrams dropped: over the 4096-byte receive buffer (data over 4092 bytes)")              \
    X(rdv_rooms_opened, "rendezvous rooms opened")                                                                     \
    X(rdv_rooms_open, "rendezvous rooms open now (a gauge)")                                                           \
    X(rdv_rooms_expired, "rendezvous rooms closed at the end of their lifetime")                                       \
    X(rdv_peers_met, "rendezvous: second peers that joined a room")                                                    \
    X(rdv_refused_full, "rendezvous: refused, room full (403)")                                                        \
    X(rdv_refused_quota, "rendezvous: refused, rooms per user (486)")                                                  \
    X(rdv_refused_capacity, "rendezvous: refused, no room left (508)")                                                 \
    X(rdv_refused_size, "rendezvous: refused, description too long (400)")

typedef struct skd_stats {
#define SKD__FIELD(name, desc) uint64_t name;
    SKD_STATS_MAP(SKD__FIELD)
#undef SKD__FIELD
    char pad[64];
} skd_stats;

#define SKD_STAT_ADD(st, field, n) __atomic_store_n(&(st)->field, (st)->field + (uint64_t)(n), __ATOMIC_RELAXED)
#define SKD_STAT_INC(st, field) SKD_STAT_ADD(st, field, 1)
#define SKD_STAT_SET(st, field, v) __atomic_store_n(&(st)->field, (uint64_t)(v), __ATOMIC_RELAXED)

void skd_stats_sum(skd_stats *total, const skd_stats *per_worker, int n);
void skd_stats_print(FILE *f, const skd_stats *s);

#endif
