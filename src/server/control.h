/*
 * control.h - the control socket (--control PATH, off by default): a Unix
 * stream socket, owner root (or who started stunkitd), mode --control-mode
 * (default 0600), group --control-group. One command a connection, one
 * JSON answer, in the manner of eturnalctl and `wg show`:
 *
 *   status               version, uptime, threads, draining, allocations, rooms, revoked
 *   allocations          each: user, client, transport, relayed addresses,
 *                        lifetime left, datagrams each way, permissions, channels
 *   rooms                each: name, user, age, peers
 *   kick USER            that user's allocations end now
 *   revoke USER          kick, and the user's credentials count no more (401)
 *                        until unrevoke or a restart; a REST user by its NAME
 *   unrevoke USER, revoked
 *   drain                as SIGUSR2
 *   reload               as SIGHUP
 *
 * `stunkitd ctl [--socket PATH] COMMAND [USER]` is the client
 * (skd_ctl_main). Requests are capped at 512 bytes and 2 s; one client at
 * a time.
 */
#ifndef STUNKITD_CONTROL_H
#define STUNKITD_CONTROL_H

#include <pthread.h>

#include "worker.h"

#define SKD_CONTROL_DEFAULT "/run/stunkitd/control"

typedef struct skd_control {
    int fd; /* -1: off */
    int running;
    pthread_t thread;
    skd_server *srv;
    char path[108];
    uint64_t started_s; /* monotonic */
} skd_control;

/* Binds the socket (before privileges are dropped). 0, or -1 (logged). */
int skd_control_open(skd_control *c, const char *path, unsigned mode, const char *group, skd_server *srv);
int skd_control_start(skd_control *c);
/* Stops with the server's stop eventfd; joins, closes, removes the socket. */
void skd_control_close(skd_control *c);

/* `stunkitd ctl ...`: the exit status. */
int skd_ctl_main(int argc, char **argv);

#endif
