/* log.c - see log.h. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

int skd_log_level = SKD_LOG_INFO;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

int skd_log_level_parse(const char *name)
{
    for (int i = 0; i < 4; i++)
        if (!strcmp(name, level_names[i]))
            return i;
    return -1;
}

void skd_log(int level, const char *fmt, ...)
{
    if (level > skd_log_level)
        return;
    char line[1024], stamp[32];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    /* one write per line so threads do not interleave */
    fprintf(stderr, "%s.%03ldZ stunkitd %s: %s\n", stamp, ts.tv_nsec / 1000000, level_names[level], line);
}
