/*
 * control.c - the control socket and its client; see control.h.
 *
 *   accept ──> one line (512 bytes, 2 s) ──> command() ──> JSON ──> close
 *
 * The allocations belong to the workers: each is read or ended with that
 * worker's ctl_lock held (a worker holds it while it handles a batch of
 * events, so it never sees an allocation change under it; what is ended
 * is freed by the worker after its next batch, skd_turn_reap). drain and
 * reload are the signals the main thread already waits for.
 */
#define _GNU_SOURCE
#include "control.h"

#include <errno.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "json.h"
#include "log.h"
#include "revoked.h"
#include "rooms.h"
#include "stunkit/export.h"
#include "turn_relay.h"
#include "worker_int.h"

#define ANSWER_MAX (1u << 20) /* allocations past this are counted, not listed */

static uint64_t mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec;
}

static int unix_addr(const char *path, struct sockaddr_un *sa)
{
    memset(sa, 0, sizeof(*sa));
    sa->sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sa->sun_path))
        return -1;
    memcpy(sa->sun_path, path, strlen(path));
    return 0;
}

int skd_control_open(skd_control *c, const char *path, unsigned mode, const char *group, skd_server *srv)
{
    struct sockaddr_un sa;
    memset(c, 0, sizeof(*c));
    c->fd = -1;
    c->srv = srv;
    c->started_s = mono_s();
    if (unix_addr(path, &sa) != 0) {
        skd_error("the control socket %s: the path is longer than 107 bytes", path);
        return -1;
    }
    snprintf(c->path, sizeof(c->path), "%s", path);
    /* a socket left by a server that died is taken over; a live one is not */
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            skd_error("the control socket %s: a file that is not a socket is there", path);
            return -1;
        }
        int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int live = probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0;
        if (probe >= 0)
            close(probe);
        if (live) {
            skd_error("the control socket %s: another stunkitd answers there", path);
            return -1;
        }
        unlink(path);
    }
    gid_t gid = (gid_t)-1;
    if (group) {
        struct group *g = getgrnam(group);
        if (!g) {
            skd_error("--control-group %s: no such group", group);
            return -1;
        }
        gid = g->gr_gid;
    }
    c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    mode_t old = umask(0177); /* never wider than 0600 between bind and chmod */
    int bound = c->fd >= 0 && bind(c->fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    umask(old);
    if (!bound || chmod(path, (mode_t)mode) != 0 || (gid != (gid_t)-1 && chown(path, (uid_t)-1, gid) != 0) ||
        listen(c->fd, 8) != 0) {
        skd_error("cannot open the control socket %s: %s", path, strerror(errno));
        if (c->fd >= 0)
            close(c->fd);
        if (bound)
            unlink(path);
        c->fd = -1;
        return -1;
    }
    skd_info("control socket %s (mode %03o%s%s)", path, mode, group ? ", group " : "", group ? group : "");
    return 0;
}

/* ---- the answers ---- */

typedef struct answer {
    char *b;
    size_t n, cap;
} answer;

static void put(answer *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(answer *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(a->b + a->n, a->cap - a->n, fmt, ap);
    va_end(ap);
    if (n > 0)
        a->n += (size_t)n < a->cap - a->n ? (size_t)n : a->cap - a->n - 1;
}

static void put_text(answer *a, const char *s, size_t len)
{
    if (a->n < a->cap)
        a->n += skd_json_text(a->b + a->n, a->cap - a->n, s, len);
}

static int live_allocations(const skd_server *srv)
{
    return srv->turn_limits ? __atomic_load_n(&srv->turn_limits->n_held, __ATOMIC_RELAXED) : 0;
}

/* Every relaying worker's allocations, each with its lock held. */
static void allocations(skd_control *c, answer *a)
{
    int first = 0, left = 0;
    put(a, "{\"ok\": true, \"allocations\": [");
    for (int i = 0; i < c->srv->n_workers; i++) {
        skd_worker *w = c->srv->workers[i];
        if (!w->turn_on)
            continue;
        pthread_mutex_lock(&w->ctl_lock);
        a->n += skd_turn_describe(&w->turn, skd_now_ms(), a->b + a->n, a->cap - a->n - 64, &first, &left);
        pthread_mutex_unlock(&w->ctl_lock);
    }
    put(a, "%s], \"count\": %d, \"not_listed\": %d}\n", first ? "\n" : "", first + left, left);
}

static int kick(skd_control *c, const char *user, size_t len)
{
    int n = 0;
    for (int i = 0; i < c->srv->n_workers; i++) {
        skd_worker *w = c->srv->workers[i];
        if (!w->turn_on)
            continue;
        pthread_mutex_lock(&w->ctl_lock);
        n += skd_turn_kick(&w->turn, user, len);
        pthread_mutex_unlock(&w->ctl_lock);
    }
    return n;
}

static const char *const usage_line =
    "commands: status, allocations, rooms, kick USER, revoke USER, unrevoke USER, revoked, drain, reload";

/* One command line (without its newline) into a. */
static void command(skd_control *c, char *line, answer *a)
{
    skd_server *srv = c->srv;
    char *arg = strchr(line, ' ');
    if (arg) {
        *arg++ = 0;
        while (*arg == ' ')
            arg++;
    }
    size_t alen = arg ? strlen(arg) : 0;
    int needs_user = !strcmp(line, "kick") || !strcmp(line, "revoke") || !strcmp(line, "unrevoke");
    if (needs_user && (alen == 0 || alen > 127)) {
        put(a, "{\"ok\": false, \"error\": \"%s needs a user name (1-127 bytes)\"}\n", line);
        return;
    }
    if (!needs_user && alen) {
        put(a, "{\"ok\": false, \"error\": \"%s takes no argument\"}\n", line);
        return;
    }
    if (!strcmp(line, "status")) {
        skd_rdv_counters rc = {0};
        if (srv->hcfg.rdv)
            skd_rdv_counters_get(srv->hcfg.rdv, skd_now_ms(), &rc);
        put(a,
            "{\"ok\": true, \"version\": \"%s\", \"pid\": %d, \"uptime_s\": %llu, \"threads\": %d, \"draining\": %s, "
            "\"turn\": %s, \"allocations\": %d, \"rendezvous\": %s, \"rooms\": %d, \"revoked\": %d}\n",
            STUNKIT_VERSION, (int)getpid(), (unsigned long long)(mono_s() - c->started_s), srv->n_workers,
            __atomic_load_n(&srv->draining, __ATOMIC_ACQUIRE) ? "true" : "false", srv->turn_limits ? "true" : "false",
            live_allocations(srv), srv->hcfg.rdv ? "true" : "false", rc.rooms_open,
            srv->hcfg.revoked ? __atomic_load_n(&srv->hcfg.revoked->n, __ATOMIC_ACQUIRE) : 0);
    } else if (!strcmp(line, "allocations")) {
        allocations(c, a);
    } else if (!strcmp(line, "rooms")) {
        int n = 0, left = 0;
        put(a, "{\"ok\": true, \"rooms\": [");
        if (srv->hcfg.rdv)
            a->n += skd_rdv_describe(srv->hcfg.rdv, skd_now_ms(), a->b + a->n, a->cap - a->n - 64, &n, &left);
        put(a, "%s], \"count\": %d, \"not_listed\": %d}\n", n ? "\n" : "", n + left, left);
    } else if (!strcmp(line, "kick")) {
        int n = kick(c, arg, alen);
        skd_info("control: kick %s: %d allocation%s ended", arg, n, n == 1 ? "" : "s");
        put(a, "{\"ok\": true, \"user\": ");
        put_text(a, arg, alen);
        put(a, ", \"allocations_ended\": %d}\n", n);
    } else if (!strcmp(line, "revoke")) {
        int added = skd_revoked_add(srv->hcfg.revoked, arg, alen);
        if (added < 0) {
            put(a, "{\"ok\": false, \"error\": \"the revocation list is full (%d names)\"}\n", SKD_REVOKED_MAX);
            return;
        }
        /* after the list: a request that raced the kick is refused by it */
        int n = kick(c, arg, alen);
        skd_info("control: revoke %s: %d allocation%s ended", arg, n, n == 1 ? "" : "s");
        put(a, "{\"ok\": true, \"user\": ");
        put_text(a, arg, alen);
        put(a, ", \"revoked\": true, \"already\": %s, \"allocations_ended\": %d}\n", added ? "false" : "true", n);
    } else if (!strcmp(line, "unrevoke")) {
        int removed = skd_revoked_remove(srv->hcfg.revoked, arg, alen);
        skd_info("control: unrevoke %s%s", arg, removed ? "" : " (was not revoked)");
        put(a, "{\"ok\": %s, \"user\": ", removed ? "true" : "false");
        put_text(a, arg, alen);
        put(a, removed ? ", \"revoked\": false}\n" : ", \"error\": \"not revoked\"}\n");
    } else if (!strcmp(line, "revoked")) {
        char list[8192];
        int n = skd_revoked_list(srv->hcfg.revoked, list, sizeof(list));
        put(a, "{\"ok\": true, \"revoked\": [");
        int k = 0;
        for (char *s = list, *e; *s && (e = strchr(s, '\n')); s = e + 1, k++) {
            put(a, k ? ", " : "");
            put_text(a, s, (size_t)(e - s));
        }
        put(a, "], \"count\": %d}\n", n);
    } else if (!strcmp(line, "drain")) {
        kill(getpid(), SIGUSR2); /* the main thread waits for it (main.c) */
        put(a, "{\"ok\": true, \"draining\": true, \"allocations\": %d}\n", live_allocations(srv));
    } else if (!strcmp(line, "reload")) {
        kill(getpid(), SIGHUP);
        put(a, "{\"ok\": true, \"reloading\": true, \"note\": \"the log says whether the configuration parsed\"}\n");
    } else {
        put(a, "{\"ok\": false, \"error\": \"unknown command '");
        for (const char *s = line; *s && a->n < 200; s++)
            put(a, "%c", (*s >= 0x20 && *s != '"' && *s != '\\') ? *s : '?');
        put(a, "'; %s\"}\n", usage_line);
    }
}

/* One client: its line within 2 s, the answer, closed. */
static void serve_one(skd_control *c, int fd, answer *a)
{
    char line[513];
    size_t got = 0;
    uint64_t end = mono_s() + 2;
    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 500) < 0 && errno != EINTR)
            return;
        ssize_t r = recv(fd, line + got, sizeof(line) - 1 - got, MSG_DONTWAIT);
        if (r > 0)
            got += (size_t)r;
        else if (r == 0 || (errno != EAGAIN && errno != EINTR))
            break;
        line[got] = 0;
        if (memchr(line, '\n', got) || got == sizeof(line) - 1 || mono_s() >= end)
            break;
    }
    line[got] = 0;
    char *nl = strchr(line, '\n');
    a->n = 0;
    a->b[0] = 0;
    if (!nl) {
        put(a, "{\"ok\": false, \"error\": \"%s\"}\n",
            got == sizeof(line) - 1 ? "a command is at most 512 bytes and ends with a newline"
                                    : "no command (a line ending with a newline) within 2 s");
    } else {
        *nl = 0;
        if (nl > line && nl[-1] == '\r')
            nl[-1] = 0;
        command(c, line, a);
    }
    for (size_t off = 0; off < a->n;) {
        struct pollfd p = {fd, POLLOUT, 0};
        if (poll(&p, 1, 2000) <= 0)
            break;
        ssize_t w = send(fd, a->b + off, a->n - off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w <= 0 && errno != EAGAIN)
            break;
        if (w > 0)
            off += (size_t)w;
    }
}

static void *control_main(void *arg)
{
    skd_control *c = arg;
    answer a = {malloc(ANSWER_MAX), 0, ANSWER_MAX};
    if (!a.b)
        return NULL;
    for (;;) {
        struct pollfd p[2] = {{c->fd, POLLIN, 0}, {c->srv->stop_fd, POLLIN, 0}};
        if (poll(p, 2, -1) < 0 && errno != EINTR)
            break;
        if (p[1].revents)
            break;
        if (!(p[0].revents & POLLIN))
            continue;
        int fd = accept4(c->fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            continue;
        serve_one(c, fd, &a);
        close(fd);
    }
    free(a.b);
    return NULL;
}

int skd_control_start(skd_control *c)
{
    if (c->fd < 0)
        return 0;
    if (pthread_create(&c->thread, NULL, control_main, c) != 0) {
        skd_error("cannot start the control socket's thread");
        return -1;
    }
    c->running = 1;
    return 0;
}

void skd_control_close(skd_control *c)
{
    if (c->running)
        pthread_join(c->thread, NULL); /* it ends with the server's stop eventfd */
    c->running = 0;
    if (c->fd >= 0) {
        close(c->fd);
        unlink(c->path);
    }
    c->fd = -1;
}

/* ---- the client: stunkitd ctl ---- */

static int ctl_usage(FILE *f)
{
    fprintf(f,
            "Usage: stunkitd ctl [--socket PATH] COMMAND [USER]\n"
            "\n"
            "Talks to a running stunkitd through its control socket (--control PATH;\n"
            "default %s) and prints its JSON answer.\n"
            "\n"
            "  status             version, uptime, threads, draining, allocations, rooms, revoked\n"
            "  allocations        the live allocations: user, client address, transport, relayed\n"
            "                     addresses, lifetime left, datagrams each way\n"
            "  rooms              the rendezvous rooms open\n"
            "  kick USER          end USER's allocations now\n"
            "  revoke USER        kick, and refuse USER's credentials (401) until unrevoke or a\n"
            "                     restart; a REST username \"EXPIRY:NAME\" is revoked by NAME\n"
            "  unrevoke USER      accept them again\n"
            "  revoked            the users revoked\n"
            "  drain              no new allocations, exit when the last ends (as SIGUSR2)\n"
            "  reload             read the configuration again (as SIGHUP)\n"
            "\n"
            "Exit status: 0 done, 1 refused or no server there, 2 bad usage.\n",
            SKD_CONTROL_DEFAULT);
    return f == stdout ? 0 : 2;
}

int skd_ctl_main(int argc, char **argv)
{
    const char *path = SKD_CONTROL_DEFAULT;
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
            return ctl_usage(stdout);
        if (!strcmp(argv[i], "--socket") && i + 1 < argc) {
            path = argv[++i];
        } else if (!strncmp(argv[i], "--socket=", 9)) {
            path = argv[i] + 9;
        } else {
            fprintf(stderr, "stunkitd ctl: unknown option '%s'\n", argv[i]);
            return 2;
        }
    }
    if (i >= argc)
        return ctl_usage(stderr);
    static const char *const known[] = {"status", "allocations", "rooms", "kick", "revoke",
                                        "unrevoke", "revoked", "drain", "reload"};
    int found = 0, with_user = 0;
    for (size_t k = 0; k < sizeof(known) / sizeof(known[0]); k++)
        if (!strcmp(argv[i], known[k])) {
            found = 1;
            with_user = k >= 3 && k <= 5;
        }
    if (!found) {
        fprintf(stderr, "stunkitd ctl: unknown command '%s' (%s)\n", argv[i], usage_line);
        return 2;
    }
    if (with_user != (argc - i == 2) || argc - i > 2) {
        fprintf(stderr, "stunkitd ctl: %s %s\n", argv[i], with_user ? "needs one USER" : "takes no argument");
        return 2;
    }
    char line[600];
    int n = snprintf(line, sizeof(line), "%s%s%s\n", argv[i], with_user ? " " : "", with_user ? argv[i + 1] : "");
    if (n < 0 || (size_t)n >= 513 || (with_user && strchr(argv[i + 1], '\n'))) {
        fprintf(stderr, "stunkitd ctl: the command is too long or holds a newline\n");
        return 2;
    }
    struct sockaddr_un sa;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (unix_addr(path, &sa) != 0 || fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        fprintf(stderr, "stunkitd ctl: cannot reach %s: %s (is stunkitd running with --control %s?)\n", path,
                strerror(errno), path);
        if (fd >= 0)
            close(fd);
        return 1;
    }
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (send(fd, line, (size_t)n, MSG_NOSIGNAL) != n) {
        fprintf(stderr, "stunkitd ctl: cannot send: %s\n", strerror(errno));
        close(fd);
        return 1;
    }
    char buf[65536];
    size_t total = 0;
    int ok = 0;
    ssize_t r;
    while ((r = recv(fd, buf, sizeof(buf), 0)) > 0) {
        if (!total)
            ok = r >= 12 && !strncmp(buf, "{\"ok\": true", 11);
        fwrite(buf, 1, (size_t)r, stdout);
        total += (size_t)r;
    }
    close(fd);
    if (!total) {
        fprintf(stderr, "stunkitd ctl: no answer from %s\n", path);
        return 1;
    }
    return ok ? 0 : 1;
}
