/* bench_turn.h - `stunkit bench --turn` (bench_turn.c), called by cmd_bench.c. */
#ifndef STUNKIT_BENCH_TURN_H
#define STUNKIT_BENCH_TURN_H

#include "stunkit/addr.h"

typedef struct bench_turn_opts {
    stunkit_addr server, peer;
    const char *server_text;
    const char *username, *password;
    int allocations, window, json, forwarder;
    double duration;
} bench_turn_opts;

int bench_turn_run(const bench_turn_opts *o);

#endif
