/* log.h - leveled logging to stderr. Never called per packet: peer-caused
 * problems are counted (stats.h), not logged one by one. */
#ifndef STUNKITD_LOG_H
#define STUNKITD_LOG_H

enum { SKD_LOG_ERROR = 0, SKD_LOG_WARN, SKD_LOG_INFO, SKD_LOG_DEBUG };

extern int skd_log_level;

int skd_log_level_parse(const char *name); /* -1 if unknown */
/* Decides the format once, at start: journald's (priority prefix, no time
 * or name: it adds them) when stderr is the journal, else timestamped. */
void skd_log_init(void);
int skd_log_to_journal(void);
/* before a usage or config error printed directly: journald's "error" */
#define SKD_ERR_PREFIX (skd_log_to_journal() ? "<3>" : "")
void skd_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define skd_error(...) skd_log(SKD_LOG_ERROR, __VA_ARGS__)
#define skd_warn(...) skd_log(SKD_LOG_WARN, __VA_ARGS__)
#define skd_info(...) skd_log(SKD_LOG_INFO, __VA_ARGS__)
#define skd_debug(...) skd_log(SKD_LOG_DEBUG, __VA_ARGS__)

#endif
