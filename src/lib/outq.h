/*
 * outq.h - the machines' output queue (internal): a ring of slots in the
 * machine's own array of outputs (events waiting for poll()). One copy for
 * the ICE agent, the TURN client and the PCP / NAT-PMP machine.
 *
 * Full is an error the application sees, never a silent drop: an output
 * that does not fit is not queued (the queued ones keep their order), the
 * loss is counted, and the machine's poll() returns STUNKIT_ERR_NOBUF once
 * before the outputs that did fit (an application that stopped polling
 * learns that it missed something).
 */
#ifndef STUNKIT_OUTQ_H
#define STUNKIT_OUTQ_H

typedef struct sk_outq {
    unsigned head, n, cap, lost;
} sk_outq;

static inline void sk_outq_init(sk_outq *q, unsigned cap)
{
    q->head = q->n = q->lost = 0;
    q->cap = cap;
}

/* The slot for a new output, or -1 when the queue is full (counted). */
static inline int sk_outq_push(sk_outq *q)
{
    if (q->n == q->cap) {
        q->lost++;
        return -1;
    }
    return (int)((q->head + q->n++) % q->cap);
}

/* The oldest output's slot, taken off the queue, or -1 when empty. */
static inline int sk_outq_pop(sk_outq *q)
{
    if (!q->n)
        return -1;
    int i = (int)q->head;
    q->head = (q->head + 1) % q->cap;
    q->n--;
    return i;
}

/* 1 once after outputs were lost (then the count starts over). */
static inline int sk_outq_take_lost(sk_outq *q)
{
    if (!q->lost)
        return 0;
    q->lost = 0;
    return 1;
}

/* Something for poll() now: an output queued, or a loss to report. */
static inline int sk_outq_pending(const sk_outq *q)
{
    return q->n > 0 || q->lost > 0;
}

#endif
