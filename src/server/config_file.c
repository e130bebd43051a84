/*
 * config_file.c - the config file's lexer. One `key = value` per line:
 *
 *   # a comment line
 *   listen = 127.0.0.1:3478        # a comment after a value
 *   software = "stunkit \"edge\""  # quoted: kept exactly, \" and \\ escaped
 *   no-tcp = yes                   # flags take yes/no (or true/false)
 *
 * Keys are the long option names. An unquoted value ends at '#' and loses
 * its surrounding blanks. Errors name FILE:LINE.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"

#define LINE_MAX_LEN 4096

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
        s[--n] = '\0';
    return s;
}

static int syntax(const char *path, int line, const char *what)
{
    fprintf(stderr, "%sstunkitd: %s:%d: %s\n", SKD_ERR_PREFIX, path, line, what);
    return -1;
}

/* Reads a quoted value starting at q (the opening quote) in place; checks
 * that only blanks and a comment follow. */
static int unquote(char *q, const char *path, int line)
{
    char *r = q + 1, *w = q;
    for (;;) {
        if (*r == '\0' || *r == '\n' || *r == '\r')
            return syntax(path, line, "unterminated quoted value (a \" is missing)");
        if (*r == '"')
            break;
        if (*r == '\\') {
            r++;
            if (*r != '"' && *r != '\\')
                return syntax(path, line, "only \\\" and \\\\ are escapes in a quoted value");
        }
        *w++ = *r++;
    }
    char *rest = r + 1;
    *w = '\0';
    while (*rest == ' ' || *rest == '\t' || *rest == '\r' || *rest == '\n')
        rest++;
    if (*rest && *rest != '#')
        return syntax(path, line, "text after the closing quote (comments start with #)");
    return 0;
}

int skd_config_read_file(const char *path, skd_config_apply_fn apply, void *ctx)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "%sstunkitd: cannot read config file %s: %s\n", SKD_ERR_PREFIX, path, strerror(errno));
        return -1;
    }
    char *line = malloc(LINE_MAX_LEN + 2);
    int lineno = 0, rv = 0;
    if (!line) {
        fclose(f);
        fprintf(stderr, "%sstunkitd: %s: out of memory\n", SKD_ERR_PREFIX, path);
        return -1;
    }
    while (rv == 0 && fgets(line, LINE_MAX_LEN + 2, f)) {
        lineno++;
        if (!strchr(line, '\n') && !feof(f)) {
            char what[64];
            snprintf(what, sizeof(what), "line longer than %d bytes", LINE_MAX_LEN);
            rv = syntax(path, lineno, what);
            break;
        }
        char *l = trim(line);
        if (!*l || *l == '#')
            continue;
        char *eq = strchr(l, '=');
        char *hash = strchr(l, '#');
        if (!eq || (hash && hash < eq)) {
            char what[160];
            snprintf(what, sizeof(what), "expected 'key = value', got '%.100s'", l);
            rv = syntax(path, lineno, what);
            break;
        }
        *eq = '\0';
        char *key = trim(l), *val = eq + 1;
        while (*val == ' ' || *val == '\t')
            val++;
        if (!*key) {
            rv = syntax(path, lineno, "a line starts with '=': the key is missing");
            break;
        }
        if (*val == '"') {
            if (unquote(val, path, lineno) != 0) {
                rv = -1;
                break;
            }
        } else {
            char *c = strchr(val, '#');
            if (c)
                *c = '\0';
            val = trim(val);
        }
        char where[512];
        snprintf(where, sizeof(where), "%s:%d: %s", path, lineno, key);
        rv = apply(ctx, key, val, 1, where);
    }
    free(line);
    fclose(f);
    return rv;
}
