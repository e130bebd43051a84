/*
 * stunkit/nat.h - NAT behaviour discovery (RFC 5780 section 4, RFC 4787
 * terms, the RFC 3489 classic names) as a state machine: it owns no socket
 * and reads no clock. The driver opens the numbered local sockets the
 * machine asks for, sends what it is told to, and feeds back every datagram
 * received, with the time.
 *
 * Independent tests run in parallel; waits derive from the smallest round
 * trip measured. A verdict that rests on "no answer came" (filtering,
 * hairpinning, a binding's expiry) needs evidence that loss cannot explain:
 * each such test has a control probe sent alongside, and silence counts only
 * when Fisher's exact test puts the chance of an open path staying silent,
 * given the control's answers, at 1e-5 or less. Heavy loss brings more
 * batches of probes, then "unknown", never a confident wrong answer. Filtering is tested from fresh sockets that the mapping tests never
 * touched, and a CHANGE-REQUEST answer only counts if it really comes from
 * the changed address and port.
 *
 * The machine keeps the contract of stunkit/machine.h: the driver opens the
 * numbered local sockets it asks for (out.sock), sends what poll gives,
 * feeds back every datagram; MAPPED, VERDICT, LIFETIME and DONE report
 * progress, and the result (stunkit_nat_get_result()) holds the findings.
 */
#ifndef STUNKIT_NAT_H
#define STUNKIT_NAT_H

#include <stddef.h>
#include <stdint.h>

#include "stunkit/addr.h"
#include "stunkit/export.h"
#include "stunkit/machine.h"

#ifdef __cplusplus
extern "C" {
#endif

#define STUNKIT_NAT_MAX_SOCKETS 64

typedef enum stunkit_behavior {
    STUNKIT_BEHAVIOR_UNKNOWN = 0,
    STUNKIT_BEHAVIOR_ENDPOINT_INDEPENDENT,
    STUNKIT_BEHAVIOR_ADDRESS_DEPENDENT,
    STUNKIT_BEHAVIOR_ADDRESS_AND_PORT_DEPENDENT
} stunkit_behavior;

typedef enum stunkit_classic {
    STUNKIT_CLASSIC_UNKNOWN = 0,
    STUNKIT_CLASSIC_OPEN_INTERNET,
    STUNKIT_CLASSIC_FULL_CONE,
    STUNKIT_CLASSIC_RESTRICTED_CONE,
    STUNKIT_CLASSIC_PORT_RESTRICTED_CONE,
    STUNKIT_CLASSIC_SYMMETRIC,
    STUNKIT_CLASSIC_SYMMETRIC_UDP_FIREWALL,
    STUNKIT_CLASSIC_UDP_BLOCKED
} stunkit_classic;

typedef struct stunkit_nat_config {
    size_t size;             /* sizeof(stunkit_nat_config) (stunkit/machine.h) */
    stunkit_env env;         /* randomness for transaction IDs (required) */
    stunkit_addr server;     /* primary address of an RFC 5780 server */
    int lifetime;            /* also measure the binding lifetime (slow) */
    uint32_t first_timeout_ms; /* give up on the server after this (default 3000) */
    uint32_t lifetime_max_s; /* longest lifetime searched (default 120) */
    unsigned redundancy;     /* a negative test's first batch of sends (default 7) */
} stunkit_nat_config;

typedef struct stunkit_nat_result {
    int done;            /* finished (lifetime included) */
    int verdict;         /* the NAT's verdict is known (the lifetime may still be
                            measured: lifetime_s and lifetime_dead_s grow meanwhile) */
    stunkit_addr local;  /* socket 0's local address */
    stunkit_addr mapped; /* socket 0's mapped address */
    stunkit_addr other;  /* the server's OTHER-ADDRESS (or CHANGED-ADDRESS) */
    uint32_t rtt_ms;
    int udp_blocked;     /* the server never answered over UDP (and, when the driver
                            raced TCP, it did answer over TCP) */
    int server_unreachable; /* no verdict: UDP was refused (ICMP) or went
                            unanswered, and TCP did not answer either (or was
                            not tried after a refusal) */
    int udp_refused;     /* an ICMP error came back for UDP to the server */
    int server_error;    /* the server answered the first Binding request with this
                            error (401: it wants credentials): no verdict, at once */
    int tcp_answered;    /* 1 answered over TCP, 0 not, -1 not tried */
    int behavior_discovery; /* the server gave an alternate address */
    int server_ignores_change; /* CHANGE-REQUEST answered from the wrong place */
    int nat;             /* mapped != local */
    stunkit_behavior mapping, filtering;
    int hairpinning;       /* 1, 0, or -1: not tested / not applicable / unsure */
    /* where a hairpinned packet said it came from: "external" (the sender's
     * public address, as RFC 4787 REQ-9 wants), "internal" (the sender's
     * inside address), "other" (e.g. the router's LAN address), or NULL */
    const char *hairpin_source;
    stunkit_addr hairpin_from;
    int port_preservation; /* 1, 0, or -1 */
    const char *allocation; /* "preserved", "sequential", "random" or NULL */
    int lifetime_s;         /* longest lifetime seen alive, -1 if not measured */
    int lifetime_dead_s;    /* shortest seen expired, -1 if none */
    int loss_percent;       /* round-trip loss the probes saw, -1 too few sends */
    unsigned loss_sends, loss_answers; /* what it rests on */
    stunkit_classic classic;
} stunkit_nat_result;

typedef enum stunkit_nat_event {
    STUNKIT_NAT_EVENT_MAPPED = 1, /* test I was answered: result's local, mapped, other, rtt_ms */
    STUNKIT_NAT_EVENT_VERDICT,    /* the verdict is in the result (mapping, filtering,
                                     hairpinning, classic; or none: udp_blocked,
                                     server_unreachable, server_error); the lifetime
                                     may still be measured */
    STUNKIT_NAT_EVENT_LIFETIME,   /* the lifetime measure moved: lifetime_s, lifetime_dead_s */
    STUNKIT_NAT_EVENT_DONE        /* finished: the result is final, poll has nothing more */
} stunkit_nat_event;

typedef struct stunkit_nat_output {
    int send;               /* 1: send data[0..len) from socket `sock` to `to`; 0: an event */
    int sock;               /* 0..STUNKIT_NAT_MAX_SOCKETS-1; open it on first use */
    stunkit_addr to;
    const uint8_t *data;
    size_t len;
    stunkit_nat_event event; /* the result (stunkit_nat_get_result()) holds what it reports */
} stunkit_nat_output;

typedef struct stunkit_nat stunkit_nat;

/* NULL when cfg lacks random or no memory. */
STUNKIT_API stunkit_nat *stunkit_nat_new(const stunkit_nat_config *cfg, uint64_t now_ms);
STUNKIT_API void stunkit_nat_free(stunkit_nat *n);
/* The driver reports each socket's local address when it opens it. Socket 0
 * must be bound to a specific local IP (the one the route to the server
 * uses) so "mapped == local" can tell that there is no NAT. */
STUNKIT_API void stunkit_nat_set_local(stunkit_nat *n, int sock, const stunkit_addr *local);
/* stunkit/machine.h: 1, *out holds a datagram to send or an event (call
 * again); 0, nothing before stunkit_nat_timeout() or a datagram (after
 * DONE: nothing more, the timeout is STUNKIT_NEVER); STUNKIT_ERR_NOBUF
 * (once): LIFETIME events were not polled in time and some were lost. */
STUNKIT_API int stunkit_nat_poll(stunkit_nat *n, uint64_t now_ms, stunkit_nat_output *out);
STUNKIT_API uint64_t stunkit_nat_timeout(const stunkit_nat *n);
/* A datagram that arrived on sock (stunkit/machine.h): STUNKIT_INPUT_TAKEN
 * when it was the machine's (an answer to one of its transactions, or its
 * own hairpinned request), STUNKIT_INPUT_NOT_MINE when it is not: a socket
 * shared with other traffic hands that on. */
STUNKIT_API int stunkit_nat_input(stunkit_nat *n, int sock, const stunkit_addr *from, const uint8_t *data,
                                  size_t len, uint64_t now_ms);
STUNKIT_API const stunkit_nat_result *stunkit_nat_get_result(const stunkit_nat *n);
/* Telling "no server" from "UDP blocked" (optional; a driver that calls
 * neither gets the old reading: no UDP answer within first_timeout_ms is
 * UDP blocked). refused: an ICMP error (port or host unreachable) came back
 * for UDP to the server, e.g. on a connected socket of the driver's own.
 * tcp: the driver races a Binding over TCP to the same server: 0 started,
 * 1 answered, -1 refused or failed. TCP answering while UDP stays silent
 * reads as UDP blocked once test I had 16 sends (50 ms apart after the TCP
 * answer) and 0.5 s passed since it (not after first_timeout_ms); nothing
 * answering either way, or a
 * refusal without a TCP answer, is server_unreachable: no verdict. */
STUNKIT_API void stunkit_nat_udp_refused(stunkit_nat *n, uint64_t now_ms);
STUNKIT_API void stunkit_nat_tcp(stunkit_nat *n, int state, uint64_t now_ms);
/* Sockets in use so far (the driver can close the rest). */
STUNKIT_API int stunkit_nat_sockets(const stunkit_nat *n);

STUNKIT_API const char *stunkit_behavior_name(stunkit_behavior b);  /* "endpoint-independent", ... */
STUNKIT_API const char *stunkit_classic_name(stunkit_classic c);    /* "full-cone", ... */

#ifdef __cplusplus
}
#endif
#endif
