/*
 * stunkit/machine.h - the contract every sans-I/O machine of libstunkit
 * keeps: NAT discovery (nat.h), PCP / NAT-PMP (portmap.h), the TURN client
 * (turn.h), the ICE agent (ice.h), the rendezvous (rendezvous.h), and the
 * STUN transaction they are built from (txn.h). The shape is ngtcp2's and
 * str0m's: the machine owns no socket, no clock and no randomness; the
 * application (or one of the drivers in the CLI) owns all three.
 *
 *   X *stunkit_X_new(const stunkit_X_config *cfg, uint64_t now_ms)
 *       The config starts with `size` (sizeof(stunkit_X_config) as the
 *       application was compiled: a newer library takes an older, shorter
 *       config and reads the fields it lacks as zero; see
 *       STUNKIT_CONFIG_INIT) and carries a stunkit_env (randomness). NULL
 *       for bad settings or no memory; nothing is allocated after new.
 *
 *   int stunkit_X_input(X *m, int sock, const stunkit_addr *from,
 *                       const uint8_t *data, size_t len, uint64_t now_ms
 *                       [, stunkit_app_data *d])
 *       A datagram (or a message cut from a stream) that arrived on the
 *       application's socket `sock` from `from`. Returns
 *         STUNKIT_INPUT_NOT_MINE  not this machine's: hand it on (to
 *                                 another machine, or to the application);
 *         STUNKIT_INPUT_TAKEN     the machine's, consumed (also when it was
 *                                 the machine's but invalid and dropped);
 *         STUNKIT_INPUT_APP_DATA  (TURN and ICE) application data that came
 *                                 wrapped by a TURN server: *d is a view
 *                                 into `data`.
 *       Never a negative error: what a peer sends cannot fail the machine.
 *       Machines with one socket (portmap, turn, rendezvous) ignore `sock`;
 *       those with one server (turn, rendezvous) take `from` NULL where the
 *       socket is connected to it (a stream, a connected UDP socket).
 *
 *   int stunkit_X_poll(X *m, uint64_t now_ms, stunkit_X_output *out)
 *       1: *out holds one output, a datagram to send (out->send = 1: data,
 *       len, and where it goes) or an event (out->send = 0: out->event,
 *       STUNKIT_X_EVENT_*, and its fields); call again. 0: nothing now.
 *       STUNKIT_ERR_NOBUF (once): events were queued faster than the
 *       application polled them and some were lost (the queue never drops
 *       silently); call again, the ones that fit follow. Data views in
 *       *out are valid until the next call into the machine.
 *
 *   uint64_t stunkit_X_timeout(const X *m)
 *       When poll has something to do next (absolute, in the clock `now_ms`
 *       is given in), computed from the same schedule poll acts on; poll
 *       at or after it, or when a datagram arrives. STUNKIT_NEVER: nothing
 *       is scheduled (finished, or waiting for the application).
 *
 *   void stunkit_X_free(X *m)
 *
 * The clock is any monotonic millisecond count (stunkit_now_ms() is one);
 * the machines only compare and add, so its origin does not matter.
 * Events are STUNKIT_X_EVENT_*; states and other enums have their own
 * prefixes (STUNKIT_ICE_STATE_*, STUNKIT_ICE_TYPE_*).
 */
#ifndef STUNKIT_MACHINE_H
#define STUNKIT_MACHINE_H

#include <stddef.h>
#include <stdint.h>

#include "stunkit/addr.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The environment a machine runs in, as picotls's context carries its
 * random_bytes: the one thing a machine needs from the host that is not a
 * datagram or the time. One struct, the same in every config. */
typedef struct stunkit_env {
    /* Fills buf with len unpredictable bytes (required): transaction IDs,
     * ICE credentials and tie-breakers, PCP nonces, jitter.
     * stunkit_random_os (stunkit/client.h) is one to pass; tests pass a
     * seeded one to replay a run. */
    void (*random)(void *ctx, uint8_t *buf, size_t len);
    void *random_ctx;
} stunkit_env;

/* What input made of a datagram. */
typedef enum stunkit_input_result {
    STUNKIT_INPUT_NOT_MINE = 0,
    STUNKIT_INPUT_TAKEN = 1,
    STUNKIT_INPUT_APP_DATA = 2
} stunkit_input_result;

/* Application data that came through a TURN relay: a view into the
 * datagram given to input, and the peer it came from. */
typedef struct stunkit_app_data {
    stunkit_addr from;
    const uint8_t *data;
    size_t len;
} stunkit_app_data;

/* _timeout(): nothing scheduled. */
#define STUNKIT_NEVER UINT64_MAX

/* A config, zeroed, with its size set: stunkit_X_config c = STUNKIT_CONFIG_INIT(c); */
#define STUNKIT_CONFIG_INIT(cfg) {.size = sizeof(cfg)}

#ifdef __cplusplus
}
#endif
#endif
