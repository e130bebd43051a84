/*
 * txn.c - the client transaction (RFC 8489 6.2): when to send and resend,
 * when to give up, and which answers are ours. No socket, no clock: the
 * caller passes now_ms.
 *
 * RFC 8489 6.2.1: "A client SHOULD retransmit a STUN request message
 * starting with an interval of RTO ("Retransmission TimeOut"), doubling
 * after each retransmission. [...] Retransmissions continue until a response
 * is received or until a total of Rc requests have been sent. [...] If,
 * after the last request, a duration equal to Rm times the RTO has passed
 * without a response [...], the client SHOULD consider the transaction to
 * have failed." 6.2.2: over TCP "the client SHOULD consider the
 * transaction a failure" after 39.5 seconds, and does not retransmit.
 */
#include <string.h>

#include "cursor.h"
#include "stunkit/txn.h"
#include "stunkit/integrity.h"

void stunkit_rto_default(stunkit_rto *r)
{
    r->rto_ms = 500;
    r->rc = 7;
    r->rm = 16;
    r->tcp_timeout_ms = 39500;
}

void stunkit_txn_start(stunkit_txn *t, const stunkit_rto *rto, int reliable, const uint8_t tid[STUNKIT_TID_LEN],
                       uint64_t now_ms)
{
    memset(t, 0, sizeof(*t));
    if (rto)
        t->rto = *rto;
    else
        stunkit_rto_default(&t->rto);
    if (t->rto.rc == 0)
        t->rto.rc = 1;
    t->reliable = reliable;
    t->start_ms = now_ms;
    t->next_ms = now_ms; /* first send right away */
    t->cur_rto = t->rto.rto_ms;
    memcpy(t->tid, tid, STUNKIT_TID_LEN);
}

stunkit_txn_action stunkit_txn_poll(stunkit_txn *t, uint64_t now_ms)
{
    if (now_ms < t->next_ms)
        return STUNKIT_TXN_WAIT;
    if (t->reliable) {
        if (t->sent == 0) {
            t->sent = 1;
            t->last_send_ms = now_ms;
            t->next_ms = now_ms + t->rto.tcp_timeout_ms;
            return STUNKIT_TXN_SEND;
        }
        return STUNKIT_TXN_TIMEOUT;
    }
    if (t->sent >= t->rto.rc)
        return STUNKIT_TXN_TIMEOUT;
    t->sent++;
    t->last_send_ms = now_ms;
    if (t->sent == t->rto.rc) {
        t->next_ms = now_ms + (uint64_t)t->rto.rm * t->rto.rto_ms; /* the last wait: Rm x RTO */
    } else {
        t->next_ms = now_ms + t->cur_rto;
        t->cur_rto *= 2;
    }
    return STUNKIT_TXN_SEND;
}

uint64_t stunkit_txn_timeout(const stunkit_txn *t)
{
    return t->next_ms;
}

int stunkit_txn_match(const stunkit_txn *t, const uint8_t *buf, size_t len, stunkit_msg *m)
{
    int rv = stunkit_msg_parse(m, buf, len);
    if (rv != 0)
        return STUNKIT_INPUT_NOT_MINE; /* not STUN, or not well formed: not an answer of ours */
    if (m->rfc3489 || memcmp(m->tid, t->tid, STUNKIT_TID_LEN) != 0)
        return STUNKIT_INPUT_NOT_MINE;
    if (m->klass != STUNKIT_CLASS_SUCCESS && m->klass != STUNKIT_CLASS_ERROR)
        return STUNKIT_INPUT_NOT_MINE;
    if (m->fp_off && (rv = stunkit_check_fingerprint(m)) != 0)
        return rv;
    if (t->key) {
        if (m->mi256_off)
            rv = stunkit_check_integrity_sha256(m, t->key, t->key_len);
        else
            rv = stunkit_check_integrity(m, t->key, t->key_len);
        if (rv != 0)
            return rv;
    }
    return STUNKIT_INPUT_TAKEN;
}

int stunkit_msg_mapped(const stunkit_msg *m, stunkit_addr *out)
{
    stunkit_attr a;
    if (stunkit_msg_find(m, STUNKIT_ATTR_XOR_MAPPED_ADDRESS, &a) == 0 && stunkit_attr_addr(m, &a, out) == 0)
        return 0;
    if (stunkit_msg_find(m, STUNKIT_ATTR_MAPPED_ADDRESS, &a) == 0 && stunkit_attr_addr(m, &a, out) == 0)
        return 0;
    return STUNKIT_ERR_NOT_FOUND;
}
