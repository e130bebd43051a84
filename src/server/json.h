/*
 * json.h - text as a JSON string for the server's JSON answers (the control
 * socket, `stunkitd ctl`): user names and the like come from clients, so
 * quotes, backslashes and control characters are escaped.
 */
#ifndef STUNKITD_JSON_H
#define STUNKITD_JSON_H

#include <stddef.h>

/* s[0..len) quoted and escaped into out (always NUL-terminated; cut short
 * when cap is too small, still a closed string): the length written. */
size_t skd_json_text(char *out, size_t cap, const char *s, size_t len);

#endif
