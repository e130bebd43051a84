/*
 * outq_test.c - the machines' output queue (src/lib/outq.h): order kept,
 * a full queue refuses the newcomer and counts it, the loss is reported
 * once, and the ring wraps.
 */
#include "outq.h"
#include "test.h"

static void test_order_and_loss(void)
{
    int slots[4];
    sk_outq q;
    sk_outq_init(&q, 4);
    CHECK_EQ(sk_outq_pending(&q), 0);
    CHECK_EQ(sk_outq_pop(&q), -1);
    for (int i = 0; i < 4; i++) {
        int s = sk_outq_push(&q);
        CHECK(s >= 0 && s < 4);
        slots[s] = 100 + i;
    }
    CHECK_EQ(sk_outq_push(&q), -1); /* full: refused, counted */
    CHECK_EQ(sk_outq_push(&q), -1);
    CHECK(sk_outq_pending(&q));
    CHECK_EQ(sk_outq_take_lost(&q), 1); /* reported once */
    CHECK_EQ(sk_outq_take_lost(&q), 0);
    for (int i = 0; i < 4; i++) { /* the queued ones, oldest first */
        int s = sk_outq_pop(&q);
        CHECK(s >= 0);
        CHECK_EQ(slots[s], 100 + i);
    }
    CHECK_EQ(sk_outq_pop(&q), -1);
    CHECK_EQ(sk_outq_pending(&q), 0);
    /* the ring wraps: 10 rounds of 3 in, 3 out */
    int next_in = 0, next_out = 0;
    for (int r = 0; r < 10; r++) {
        for (int k = 0; k < 3; k++) {
            int s = sk_outq_push(&q);
            CHECK(s >= 0);
            slots[s] = next_in++;
        }
        for (int k = 0; k < 3; k++) {
            int s = sk_outq_pop(&q);
            CHECK(s >= 0);
            CHECK_EQ(slots[s], next_out++);
        }
    }
    CHECK_EQ(sk_outq_take_lost(&q), 0);
}

int main(void)
{
    RUN(test_order_and_loss);
    TEST_END();
}
