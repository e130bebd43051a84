/*
 * cmd_decode.c - `stunkit decode`: one STUN message from stdin (hex text or
 * raw bytes) printed for people or as JSON, with its MESSAGE-INTEGRITY and
 * FINGERPRINT verdicts.
 *
 * Exit status: 0 parsed and every check made passed; 1 a check failed;
 * 2 not a well-formed STUN message, or bad usage.
 */
#include <ctype.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "stunkit/stunkit.h"

#define MAX_INPUT (1u << 20)

static void decode_usage(FILE *f)
{
    fprintf(f, "Usage: stunkit decode [--json] [--password P [--username U]] < message\n"
               "\n"
               "Reads one STUN message on stdin, as hex text (whitespace, ':' and '0x' ignored,\n"
               "'#' starts a comment) or as raw bytes, and prints it with the verdicts on\n"
               "MESSAGE-INTEGRITY(-SHA256) and FINGERPRINT.\n"
               "\n"
               "  --json          print one JSON object\n"
               "  --password P    verify integrity: with a REALM in the message the long-term key\n"
               "                  is derived from USERNAME, REALM and P (RFC 8489 9.2.2);\n"
               "                  otherwise P is the short-term password (9.1.1)\n"
               "  --username U    the username for the long-term key when the message has no\n"
               "                  USERNAME (responses, USERHASH requests)\n"
               "\n"
               "Exit status: 0 parsed and every check passed, 1 a check failed,\n"
               "2 not a well-formed STUN message.\n");
}

/* Input: hex if every byte is a hex digit, whitespace or separator. */
static int hex_value(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

static int looks_like_hex(const uint8_t *p, size_t n)
{
    int digits = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '#') { /* comment to end of line */
            while (i < n && p[i] != '\n')
                i++;
            continue;
        }
        if (hex_value(p[i]) >= 0)
            digits = 1;
        else if (!isspace(p[i]) && p[i] != ':' && p[i] != 'x' && p[i] != 'X')
            return 0;
    }
    return digits;
}

/* Converts hex text in place; returns the byte count or -1 with *why set. */
static long hex_to_bytes(uint8_t *p, size_t n, const char **why)
{
    size_t o = 0;
    int hi = -1;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '#') {
            while (i < n && p[i] != '\n')
                i++;
            continue;
        }
        if ((p[i] == 'x' || p[i] == 'X')) {
            /* only as part of a "0x" prefix */
            if (hi != 0 || (i + 1 < n && hex_value(p[i + 1]) < 0) || i + 1 == n) {
                *why = "stray 'x' in hex input";
                return -1;
            }
            hi = -1;
            continue;
        }
        int v = hex_value(p[i]);
        if (v < 0) {
            if (hi >= 0 && (isspace(p[i]) || p[i] == ':')) {
                /* a separator in the middle of a byte: "0 1" is not a byte */
                *why = "odd number of hex digits in a group";
                return -1;
            }
            continue;
        }
        if (hi < 0) {
            hi = v;
        } else {
            p[o++] = (uint8_t)(hi << 4 | v);
            hi = -1;
        }
    }
    if (hi >= 0) {
        *why = "odd number of hex digits";
        return -1;
    }
    return (long)o;
}

typedef struct verdicts {
    const char *integrity;   /* ok | bad | absent | unchecked */
    const char *integrity_detail;
    const char *fingerprint; /* ok | bad | absent */
    int failed;              /* a check was made and did not pass */
    int unchecked;           /* integrity present but not verified */
} verdicts;

static int find_text(const stunkit_msg *m, uint16_t type, const char **s, size_t *n)
{
    stunkit_attr a;
    if (stunkit_msg_find(m, type, &a) != 0)
        return 0;
    *s = (const char *)a.value;
    *n = a.len;
    return 1;
}

static void check(const stunkit_msg *m, const char *password, const char *username, verdicts *v)
{
    int fp = stunkit_check_fingerprint(m);
    v->fingerprint = fp == 0 ? "ok" : fp == STUNKIT_ERR_FINGERPRINT_ABSENT ? "absent" : "bad";
    v->failed = fp != 0 && fp != STUNKIT_ERR_FINGERPRINT_ABSENT;
    v->unchecked = 0;

    v->integrity_detail = NULL;
    if (!m->mi_off && !m->mi256_off) {
        v->integrity = "absent";
        return;
    }
    if (!password) {
        v->integrity = "unchecked";
        v->integrity_detail = "no --password given";
        return;
    }

    uint8_t key[STUNKIT_KEY_MAX];
    int klen;
    const char *realm, *user;
    size_t realm_len, user_len;
    if (find_text(m, STUNKIT_ATTR_REALM, &realm, &realm_len)) {
        uint16_t alg = STUNKIT_PWALG_MD5;
        stunkit_attr pa;
        if (stunkit_msg_find(m, STUNKIT_ATTR_PASSWORD_ALGORITHM, &pa) == 0)
            stunkit_attr_password_algorithm(&pa, 0, &alg, NULL, NULL);
        if (username) {
            user = username;
            user_len = strlen(username);
        } else if (!find_text(m, STUNKIT_ATTR_USERNAME, &user, &user_len)) {
            v->integrity = "unchecked";
            v->unchecked = 1;
            v->integrity_detail = "long-term credentials need a username: pass --username";
            return;
        }
        klen = stunkit_key_long_term(alg, user, user_len, realm, realm_len, password, strlen(password), key,
                                     sizeof(key));
        v->integrity_detail = alg == STUNKIT_PWALG_SHA256 ? "long-term key, SHA-256" : "long-term key, MD5";
    } else {
        klen = stunkit_key_short_term(password, strlen(password), key, sizeof(key));
        v->integrity_detail = "short-term key";
    }
    if (klen < 0) {
        v->integrity = "unchecked";
        v->unchecked = 1;
        v->integrity_detail = stunkit_strerror(klen);
        return;
    }
    int ok = 1;
    if (m->mi_off && stunkit_check_integrity(m, key, (size_t)klen) != 0)
        ok = 0;
    if (m->mi256_off && stunkit_check_integrity_sha256(m, key, (size_t)klen) != 0)
        ok = 0;
    v->integrity = ok ? "ok" : "bad";
    if (!ok)
        v->failed = 1;
}

/* The RFC's name of an attribute type, or its number in hex. */
static const char *attr_label(uint16_t type, char *buf, size_t cap)
{
    const char *name = stunkit_attr_name(type);
    if (name)
        return name;
    snprintf(buf, cap, "0x%04x", type);
    return buf;
}

static void hex_tid(const stunkit_msg *m, char *out)
{
    for (size_t i = 0; i < m->tid_len; i++)
        sprintf(out + 2 * i, "%02x", m->tid[i]);
}

static void print_human(const stunkit_msg *m, const verdicts *v)
{
    const char *method = stunkit_method_name(m->method);
    static const char *const klass[] = {"request", "indication", "success response", "error response"};
    char tid[2 * STUNKIT_TID_LEN_RFC3489 + 1], val[4096];
    hex_tid(m, tid);

    if (method)
        printf("%c%s %s", toupper((unsigned char)method[0]), method + 1, klass[m->klass]);
    else
        printf("Method 0x%03x %s", m->method, klass[m->klass]);
    printf(" (%s)\n", m->rfc3489 ? "RFC 3489: no magic cookie" : "RFC 5389/8489");
    printf("  transaction ID  %s\n", tid);
    printf("  length          %zu (%zu bytes with header)\n", m->len - STUNKIT_HEADER_LEN, m->len);
    printf("  attributes      %u%s\n", m->n_attrs + m->n_ignored, m->n_attrs + m->n_ignored ? "" : " (none)");

    stunkit_attr_iter it;
    stunkit_attr a;
    stunkit_attr_iter_init(&it, m, 1);
    while (stunkit_attr_next(&it, &a)) {
        char namebuf[16];
        const char *name = attr_label(a.type, namebuf, sizeof(namebuf));
        int rv = stunkit_attr_format(m, &a, val, sizeof(val));
        printf("    %-25s ", name);
        if (rv >= 0 && (a.type == STUNKIT_ATTR_USERNAME || a.type == STUNKIT_ATTR_REALM ||
                        a.type == STUNKIT_ATTR_NONCE || a.type == STUNKIT_ATTR_SOFTWARE ||
                        a.type == STUNKIT_ATTR_PASSWORD || a.type == STUNKIT_ATTR_ALTERNATE_DOMAIN))
            printf("\"%s\"", val);
        else
            printf("%s", val[0] ? val : "(empty)");
        if (rv == STUNKIT_ERR_BAD_VALUE)
            printf("  (malformed value)");
        else if (rv == STUNKIT_ERR_NOBUF)
            printf("...  (%u bytes)", (unsigned)a.len);
        if (!stunkit_attr_name(a.type))
            printf("  (unknown, comprehension-%s)", a.type < 0x8000 ? "required" : "optional");
        if (a.ignored)
            printf("  (ignored: follows MESSAGE-INTEGRITY)");
        printf("\n");
    }
    printf("  integrity       %s", v->integrity);
    if (v->integrity_detail)
        printf(" (%s)", v->integrity_detail);
    printf("\n  fingerprint     %s\n", v->fingerprint);
}

static void print_json(const stunkit_msg *m, const verdicts *v)
{
    char tid[2 * STUNKIT_TID_LEN_RFC3489 + 1], val[4096];
    hex_tid(m, tid);
    const char *method = stunkit_method_name(m->method);
    printf("{\"class\": \"%s\", ", stunkit_class_name(m->klass));
    if (method)
        printf("\"method\": \"%s\", ", method);
    else
        printf("\"method\": null, ");
    printf("\"method_code\": %u, \"transaction_id\": \"%s\", \"magic_cookie\": %s, \"length\": %zu, \"attributes\": [",
           (unsigned)m->method, tid, m->rfc3489 ? "false" : "true", m->len - STUNKIT_HEADER_LEN);
    stunkit_attr_iter it;
    stunkit_attr a;
    int first = 1;
    stunkit_attr_iter_init(&it, m, 1);
    while (stunkit_attr_next(&it, &a)) {
        char namebuf[16];
        const char *name = attr_label(a.type, namebuf, sizeof(namebuf));
        int rv = stunkit_attr_format_json(m, &a, val, sizeof(val));
        printf("%s{\"type\": \"%s\", \"type_code\": %u, \"length\": %u, \"value\": %s", first ? "" : ", ", name,
               (unsigned)a.type, (unsigned)a.len, rv == STUNKIT_ERR_NOBUF ? "null" : val);
        if (rv == STUNKIT_ERR_BAD_VALUE)
            printf(", \"malformed\": true");
        if (rv == STUNKIT_ERR_NOBUF)
            printf(", \"truncated\": true");
        if (a.ignored)
            printf(", \"ignored\": true");
        printf("}");
        first = 0;
    }
    printf("], \"integrity\": \"%s\", \"fingerprint\": \"%s\"}\n", v->integrity, v->fingerprint);
}

int cmd_decode(int argc, char **argv)
{
    static const struct option opts[] = {{"json", no_argument, NULL, 'j'},
                                         {"password", required_argument, NULL, 'p'},
                                         {"username", required_argument, NULL, 'u'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int json = 0, c;
    const char *password = NULL, *username = NULL;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "jp:u:h", opts, NULL)) != -1) {
        switch (c) {
        case 'j': json = 1; break;
        case 'p': password = optarg; break;
        case 'u': username = optarg; break;
        case 'h': decode_usage(stdout); return 0;
        default:
            fprintf(stderr, "stunkit decode: unknown or incomplete option '%s' (try --help)\n", argv[optind - 1]);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "stunkit decode: unexpected argument '%s': the message is read from stdin\n", argv[optind]);
        return 2;
    }

    uint8_t *buf = malloc(MAX_INPUT + 1);
    if (!buf) {
        fprintf(stderr, "stunkit decode: out of memory\n");
        return 2;
    }
    size_t n = fread(buf, 1, MAX_INPUT + 1, stdin);
    if (ferror(stdin)) {
        fprintf(stderr, "stunkit decode: cannot read stdin\n");
        free(buf);
        return 2;
    }
    if (n > MAX_INPUT) {
        fprintf(stderr, "stunkit decode: input larger than %u bytes\n", MAX_INPUT);
        free(buf);
        return 2;
    }
    if (n == 0) {
        fprintf(stderr, "stunkit decode: no input on stdin\n");
        free(buf);
        return 2;
    }
    if (looks_like_hex(buf, n)) {
        const char *why = NULL;
        long got = hex_to_bytes(buf, n, &why);
        if (got < 0) {
            fprintf(stderr, "stunkit decode: bad hex input: %s\n", why);
            free(buf);
            return 2;
        }
        n = (size_t)got;
    }

    stunkit_msg m;
    int rv = stunkit_msg_parse(&m, buf, n);
    if (rv != 0) {
        if (rv == STUNKIT_ERR_BAD_LENGTH && n >= STUNKIT_HEADER_LEN && (buf[0] & 0xC0) == 0)
            fprintf(stderr, "stunkit decode: not a well-formed STUN message: %s (header says %u, input has %zu)\n",
                    stunkit_strerror(rv), (unsigned)(buf[2] << 8 | buf[3]), n - STUNKIT_HEADER_LEN);
        else
            fprintf(stderr, "stunkit decode: not a well-formed STUN message: %s (%zu bytes)\n", stunkit_strerror(rv),
                    n);
        free(buf);
        return 2;
    }
    verdicts v;
    check(&m, password, username, &v);
    if (json)
        print_json(&m, &v);
    else
        print_human(&m, &v);
    if (password && v.unchecked)
        fprintf(stderr, "stunkit decode: integrity not checked: %s\n", v.integrity_detail);
    int status = v.failed ? 1 : 0;
    free(buf);
    return status;
}
