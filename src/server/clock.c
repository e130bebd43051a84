/*
 * clock.c - the server's clocks: monotonic milliseconds for everything
 * that waits or expires (TURN lifetimes, timeouts, rate limits), 64 bits
 * from the start (a 32-bit millisecond count wraps after 49.7 days of
 * uptime), and Unix seconds for what a client can see (nonces,
 * time-limited credentials). The coarse clocks: read per batch, not per
 * packet, a millisecond's precision is enough.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <time.h>

#include "worker_int.h"

uint64_t skd_unix_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME_COARSE, &ts);
    return (uint64_t)ts.tv_sec;
}

uint64_t skd_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}
