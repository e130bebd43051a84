/* log.c - see log.h. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

/* Under systemd, stderr is a stream into journald (JOURNAL_STREAM names its
 * device and inode): journald adds the time and the name itself, and reads
 * a priority from a "<N>" prefix (sd-daemon(3)), so `journalctl -p err`
 * finds a bind failure. Anywhere else: a timestamped line for a terminal or
 * a file. */
static int journal;

void skd_log_init(void)
{
    const char *js = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;
    journal = js && sscanf(js, "%llu:%llu", &dev, &ino) == 2 && fstat(2, &st) == 0 &&
              (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

int skd_log_to_journal(void)
{
    return journal;
}

void skd_log(int level, const char *fmt, ...)
{
    if (level > skd_log_level)
        return;
    char line[1024], stamp[32];
    if (journal) {
        static const int prio[] = {3, 4, 6, 7}; /* LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG */
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(line, sizeof(line), fmt, ap);
        va_end(ap);
        fprintf(stderr, "<%d>%s\n", prio[level], line);
        return;
    }
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
