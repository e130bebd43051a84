/*
 * stunkit/txn.h - a client transaction as a state machine that owns no
 * socket and reads no clock (RFC 8489 6.2): when to send, when to give up,
 * and whether an answer is ours.
 */
#ifndef STUNKIT_TXN_H
#define STUNKIT_TXN_H

#include <stddef.h>
#include <stdint.h>

#include "stunkit/addr.h"
#include "stunkit/export.h"
#include "stunkit/machine.h"
#include "stunkit/msg.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- transactions (RFC 8489 6.2.1 / 6.2.2) ---- */

typedef struct stunkit_rto {
    uint32_t rto_ms;        /* initial RTO, default 500 */
    unsigned rc;            /* requests sent in all, default 7 */
    unsigned rm;            /* last wait is rm x RTO, default 16 */
    uint32_t tcp_timeout_ms; /* reliable transports: default 39500 */
} stunkit_rto;

STUNKIT_API void stunkit_rto_default(stunkit_rto *r);

typedef enum stunkit_txn_action {
    STUNKIT_TXN_SEND = 1,  /* (re)send the request now */
    STUNKIT_TXN_WAIT = 2,  /* nothing to do before stunkit_txn_timeout() */
    STUNKIT_TXN_TIMEOUT = 3 /* given up */
} stunkit_txn_action;

typedef struct stunkit_txn {
    stunkit_rto rto;
    int reliable;
    unsigned sent;
    uint64_t start_ms, next_ms, last_send_ms;
    uint32_t cur_rto;
    uint8_t tid[STUNKIT_TID_LEN];
    const uint8_t *key; /* optional integrity key for answers */
    size_t key_len;
} stunkit_txn;

/* Starts a transaction for a request carrying tid; reliable is 1 over
 * TCP/TLS (one send, one long timeout). */
STUNKIT_API void stunkit_txn_start(stunkit_txn *t, const stunkit_rto *rto, int reliable,
                                   const uint8_t tid[STUNKIT_TID_LEN], uint64_t now_ms);
/* What to do at now_ms. RFC 8489 6.2.1: with RTO 500 ms and Rc 7, requests
 * leave at 0, 500, 1500, 3500, 7500, 15500 and 31500 ms, and the client
 * gives up 16 x RTO = 8 s after the last: at 39500 ms. */
STUNKIT_API stunkit_txn_action stunkit_txn_poll(stunkit_txn *t, uint64_t now_ms);
STUNKIT_API uint64_t stunkit_txn_timeout(const stunkit_txn *t);
/*
 * Checks an incoming datagram against the transaction: parses it (into *m),
 * requires our transaction ID, a response class, a valid FINGERPRINT when
 * one is present and valid MESSAGE-INTEGRITY when a key was set. Returns
 * (stunkit/machine.h) STUNKIT_INPUT_TAKEN, the answer; STUNKIT_INPUT_NOT_MINE,
 * not an answer to this transaction (not STUN, malformed, another ID, not a
 * response); or the check's error for an answer with our ID that fails
 * FINGERPRINT or MESSAGE-INTEGRITY (*m parsed: drop it, or take an unsigned
 * error answer as RFC 8489 allows).
 */
STUNKIT_API int stunkit_txn_match(const stunkit_txn *t, const uint8_t *buf, size_t len, stunkit_msg *m);

/* The mapped address of a response: XOR-MAPPED-ADDRESS, else MAPPED-ADDRESS. */
STUNKIT_API int stunkit_msg_mapped(const stunkit_msg *m, stunkit_addr *out);

#ifdef __cplusplus
}
#endif
#endif
