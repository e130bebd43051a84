/*
 * fuzz_sdp.c - libFuzzer target for the ICE agent's text (ice_sdp.c, RFC
 * 8839): the input is a peer's description, the most hostile text an agent
 * reads. Each line is parsed as a candidate; what parses must format and
 * parse back to the same candidate. The whole input is then applied to a
 * fresh agent (ufrag, pwd, options, candidates, end-of-candidates) and the
 * agent's own description written: neither may crash, and the description
 * must fit what stunkit_ice_describe() says it wrote. The same text as a
 * sealed description (stunkit/secret.h, punch --secret): what the seals
 * are said to cover lies inside it, and resealing the covered part checks.
 */
#include <stdlib.h>
#include <string.h>

#include "stunkit/stunkit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void zeros(void *ctx, uint8_t *buf, size_t len)
{
    (void)ctx;
    memset(buf, 0x41, len);
}

static int same(const stunkit_ice_candidate *a, const stunkit_ice_candidate *b)
{
    return a->type == b->type && stunkit_addr_equal(&a->addr, &b->addr) && a->priority == b->priority &&
           a->component == b->component && a->tcp == b->tcp && !strcmp(a->foundation, b->foundation);
}

/* The input as a sealed description from a peer (punch --secret). */
static void sealed(const char *text, size_t size)
{
    static stunkit_secret key;
    static int have;
    if (!have)
        have = stunkit_secret_init(&key, "fuzz", 4) == 0;
    size_t ok = 12345;
    int rv = stunkit_secret_open(&key, text, size, &ok);
    if ((rv != 0 && rv != STUNKIT_ERR_INTEGRITY_MISMATCH) || ok > size)
        abort();
    if (ok > 0) {
        /* a covered part ends with a seal line that checks: the same
         * text resealed without its last seal line gives that line */
        char line[STUNKIT_SECRET_MAC_LINE_LEN + 1];
        size_t body = ok - (text[ok - 2] == '\r' ? STUNKIT_SECRET_MAC_LINE_LEN : STUNKIT_SECRET_MAC_LINE_LEN - 1);
        if (stunkit_secret_seal(&key, text, body, line, sizeof(line)) != STUNKIT_SECRET_MAC_LINE_LEN ||
            memcmp(line, text + body, 16 + 64) != 0)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    sealed(text, size);
    for (size_t off = 0; off < size;) {
        const char *nl = memchr(text + off, '\n', size - off);
        size_t len = nl ? (size_t)(nl - (text + off)) : size - off;
        stunkit_ice_candidate c, back;
        if (stunkit_ice_candidate_parse(text + off, len, &c) == 0) {
            char line[512];
            int n = stunkit_ice_candidate_format(&c, line, sizeof(line));
            if (n <= 0 || (size_t)n >= sizeof(line) || stunkit_ice_candidate_parse(line, (size_t)n, &back) != 0 ||
                !same(&c, &back))
                abort(); /* what parses must round-trip */
        }
        off += len + 1;
    }
    stunkit_ice_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.size = sizeof(cfg);
    cfg.env.random = zeros;
    stunkit_ice *a = stunkit_ice_new(&cfg, 0);
    if (!a)
        abort();
    stunkit_addr local;
    stunkit_addr_parse("192.0.2.1:5000", 0, &local);
    stunkit_ice_add_base(a, 1, &local, 0);
    stunkit_ice_apply(a, text, size, 0);
    char desc[8192];
    int n = stunkit_ice_describe(a, desc, sizeof(desc));
    if (n >= (int)sizeof(desc) || (n >= 0 && strlen(desc) != (size_t)n))
        abort();
    stunkit_ice_output o;
    for (int i = 0; i < 256 && stunkit_ice_poll(a, 0, &o) == 1; i++)
        ;
    stunkit_ice_free(a);
    return 0;
}
