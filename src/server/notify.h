/*
 * notify.h - the service manager's readiness protocol (systemd's sd_notify,
 * man sd_notify(3)), without libsystemd: one datagram with "KEY=VALUE"
 * lines to the AF_UNIX socket named by $NOTIFY_SOCKET ('@' first: an
 * abstract name). Nothing happens when the variable is not set.
 *
 *   READY=1       the sockets are bound and the workers run (Type=notify)
 *   RELOADING=1   a SIGHUP is being applied (READY=1 follows)
 *   STOPPING=1    SIGINT/SIGTERM: shutting down
 */
#ifndef STUNKITD_NOTIFY_H
#define STUNKITD_NOTIFY_H

/* Sends state; 1 when sent, 0 when there is no manager, -1 on failure. */
int skd_notify(const char *state);

#endif
