/*
 * auth.c - see auth.h. The steps follow RFC 8489 9.1.3 (short-term) and
 * 9.2.4 (long-term), in the RFC's order.
 *
 * The NONCE is stateless, so a fleet needs no shared state:
 *
 *   "obMatJos2" "AAAD" <8 hex: issue time> <16 hex: HMAC-SHA256(key, time | client IP)>
 *
 * "obMatJos2" is the nonce cookie of RFC 8489 9.2; "AAAD" is base64 of the
 * 24 STUN Security Feature bits with "Password algorithms" and "Username
 * anonymity" set (bit numbering per RFC errata 6290). With --auth-secret,
 * "AAAB": no "Username anonymity". RFC 8489 9.2.5 (the client): "If the
 * 'nonce cookie' is present and has the STUN Security Feature 'Username
 * anonymity' bit set to 1, then the USERHASH attribute MUST be used", and
 * a REST-API user ("EXPIRY:NAME") cannot be found by its hash: its
 * password is derived from the name, which the hash hides (every such
 * client got 401 before).
 * Either cookie is taken back: a fleet may mix servers. The nonce key derives
 * from --nonce-key, else from the first --auth-secret, so every server of a
 * fleet accepts the nonces of the others.
 */
#include "auth.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COOKIE_ANON "obMatJos2AAAD"    /* password algorithms, username anonymity */
#define COOKIE_NO_ANON "obMatJos2AAAB" /* password algorithms only: REST-API users need USERNAME */
#define COOKIE_LEN 13

static const uint16_t server_algs[] = {STUNKIT_PWALG_MD5, STUNKIT_PWALG_SHA256};

int skd_auth_add_user(skd_auth *a, const char *spec, const char **why)
{
    const char *colon = strchr(spec, ':');
    if (!colon || colon == spec || !colon[1]) {
        *why = "expected NAME:PASSWORD";
        return -1;
    }
    size_t nlen = (size_t)(colon - spec), plen = strlen(colon + 1);
    if (nlen >= sizeof(a->users[0].name) || plen >= sizeof(a->users[0].password)) {
        *why = "name or password longer than 127 bytes";
        return -1;
    }
    if (a->n_users == SKD_AUTH_MAX_USERS) {
        *why = "too many credentials";
        return -1;
    }
    char prepared[128];
    if (stunkit_opaque_string(colon + 1, plen, prepared, sizeof(prepared)) < 0) {
        *why = "the password is not valid UTF-8 or has control characters";
        return -1;
    }
    skd_credential *c = &a->users[a->n_users++];
    memcpy(c->name, spec, nlen);
    c->name_len = nlen;
    memcpy(c->password, colon + 1, plen);
    c->password_len = plen;
    a->enabled = 1;
    return 0;
}

int skd_auth_add_secret(skd_auth *a, const char *secret, size_t len, const char **why)
{
    if (len < 8 || len > sizeof(a->secrets[0])) {
        *why = "expected a secret of 8 to 128 bytes";
        return -1;
    }
    if (a->n_secrets == SKD_AUTH_MAX_SECRETS) {
        *why = "at most 8 secrets";
        return -1;
    }
    for (size_t i = 0; i < a->n_secrets; i++)
        if (a->secret_lens[i] == len && !memcmp(a->secrets[i], secret, len)) {
            *why = "the same secret twice";
            return -1;
        }
    memcpy(a->secrets[a->n_secrets], secret, len);
    a->secret_lens[a->n_secrets++] = len;
    a->enabled = 1;
    return 0;
}

static int derive_keys(const skd_auth *a, skd_credential *c)
{
    int n = stunkit_key_short_term(c->password, c->password_len, c->key_short, sizeof(c->key_short));
    if (n < 0)
        return -1;
    c->key_short_len = (size_t)n;
    if (stunkit_key_long_term(STUNKIT_PWALG_MD5, c->name, c->name_len, a->realm, a->realm_len, c->password,
                              c->password_len, c->key_md5, sizeof(c->key_md5)) < 0 ||
        stunkit_key_long_term(STUNKIT_PWALG_SHA256, c->name, c->name_len, a->realm, a->realm_len, c->password,
                              c->password_len, c->key_sha256, sizeof(c->key_sha256)) < 0)
        return -1;
    return stunkit_userhash(c->name, c->name_len, a->realm, a->realm_len, c->userhash) != 0 ? -1 : 0;
}

int skd_auth_finish(skd_auth *a)
{
    if (!a->realm_len) {
        memcpy(a->realm, "stunkit", 7);
        a->realm_len = 7;
    }
    if (!a->nonce_lifetime_s)
        a->nonce_lifetime_s = 600;
    const uint8_t *seed = a->nonce_seed_len ? a->nonce_seed : a->n_secrets ? a->secrets[0] : NULL;
    size_t seed_len = a->nonce_seed_len ? a->nonce_seed_len : a->n_secrets ? a->secret_lens[0] : 0;
    if (a->n_secrets)
        a->enabled = 1;
    if (seed) {
        if (stunkit_hmac_sha256(seed, seed_len, (const uint8_t *)"stunkitd nonce key", 18, NULL, 0, a->nonce_key) != 0)
            return -1;
    } else if (RAND_bytes(a->nonce_key, sizeof(a->nonce_key)) != 1) {
        return -1;
    }
    for (size_t i = 0; i < a->n_users; i++)
        if (derive_keys(a, &a->users[i]) != 0)
            return -1;
    /* the stand-in for unknown users: a random password nobody knows */
    uint8_t rnd[16];
    if (RAND_bytes(rnd, sizeof(rnd)) != 1)
        return -1;
    memset(&a->dummy, 0, sizeof(a->dummy));
    memcpy(a->dummy.name, "unknown", 7);
    a->dummy.name_len = 7;
    for (size_t i = 0; i < sizeof(rnd); i++)
        snprintf(a->dummy.password + 2 * i, 3, "%02x", rnd[i]);
    a->dummy.password_len = 2 * sizeof(rnd);
    return derive_keys(a, &a->dummy);
}

static void nonce_mac(const skd_auth *a, uint32_t ts, const stunkit_addr *client, char hex[17])
{
    uint8_t in[4 + 16], mac[32];
    in[0] = (uint8_t)(ts >> 24);
    in[1] = (uint8_t)(ts >> 16);
    in[2] = (uint8_t)(ts >> 8);
    in[3] = (uint8_t)ts;
    size_t iplen = client->family == STUNKIT_AF_INET ? 4 : 16;
    memcpy(in + 4, client->ip, iplen);
    stunkit_hmac_sha256(a->nonce_key, sizeof(a->nonce_key), in, 4 + iplen, NULL, 0, mac);
    for (int i = 0; i < 8; i++)
        snprintf(hex + 2 * i, 3, "%02x", mac[i]);
}

void skd_auth_nonce(const skd_auth *a, const stunkit_addr *client, uint64_t now_s, char out[SKD_NONCE_LEN])
{
    char buf[SKD_NONCE_LEN + 1], mac[17];
    uint32_t ts = (uint32_t)now_s;
    nonce_mac(a, ts, client, mac);
    snprintf(buf, sizeof(buf), "%s%08x%s", a->n_secrets ? COOKIE_NO_ANON : COOKIE_ANON, (unsigned)ts, mac);
    memcpy(out, buf, SKD_NONCE_LEN);
}

/* 0 valid, 1 stale (ours, but old), -1 not ours. */
static int nonce_state(const skd_auth *a, const stunkit_attr *n, const stunkit_addr *client, uint64_t now_s)
{
    if (n->len != SKD_NONCE_LEN ||
        (memcmp(n->value, COOKIE_ANON, COOKIE_LEN) != 0 && memcmp(n->value, COOKIE_NO_ANON, COOKIE_LEN) != 0))
        return -1;
    char hex[9], mac[17];
    memcpy(hex, n->value + COOKIE_LEN, 8);
    hex[8] = '\0';
    char *end;
    unsigned long ts = strtoul(hex, &end, 16);
    if (*end)
        return -1;
    nonce_mac(a, (uint32_t)ts, client, mac);
    if (!stunkit_ct_equal((const uint8_t *)mac, n->value + COOKIE_LEN + 8, 16))
        return -1;
    if (ts > now_s + 60)
        return -1;
    return now_s - ts > a->nonce_lifetime_s ? 1 : 0;
}

int skd_auth_rest_password(const uint8_t *secret, size_t secret_len, const char *user, size_t user_len, char *out,
                           size_t cap)
{
    uint8_t mac[20];
    if (cap < 29 || stunkit_hmac_sha1(secret, secret_len, (const uint8_t *)user, user_len, NULL, 0, mac) != 0)
        return -1;
    return EVP_EncodeBlock((unsigned char *)out, mac, 20); /* 28 chars + NUL */
}

static int verdict(skd_auth_verdict *v, int code, int challenge, const char *reason)
{
    v->code = code;
    v->challenge = challenge;
    v->reason = reason;
    return code;
}

/* A REST-API username ("EXPIRY" or "EXPIRY:NAME", Unix seconds) not yet
 * expired: its credential from secret i, password and keys derived now into
 * *tmp. NULL: not that form, expired, or no secret i. */
static const skd_credential *rest_user(const skd_auth *a, const stunkit_msg *m, size_t i, uint64_t now_s,
                                       skd_credential *tmp)
{
    stunkit_attr u;
    if (i >= a->n_secrets || a->short_term || stunkit_msg_find(m, STUNKIT_ATTR_USERNAME, &u) != 0 ||
        u.len >= sizeof(tmp->name))
        return NULL;
    char text[128];
    memcpy(text, u.value, u.len);
    text[u.len] = '\0';
    char *end;
    unsigned long long expiry = strtoull(text, &end, 10);
    if (end == text || (*end != ':' && *end != '\0') || expiry < now_s)
        return NULL;
    memset(tmp, 0, sizeof(*tmp));
    memcpy(tmp->name, u.value, u.len);
    tmp->name_len = u.len;
    int n = skd_auth_rest_password(a->secrets[i], a->secret_lens[i], text, u.len, tmp->password, sizeof(tmp->password));
    if (n < 0)
        return NULL;
    tmp->password_len = (size_t)n;
    if (stunkit_key_long_term(STUNKIT_PWALG_MD5, tmp->name, tmp->name_len, a->realm, a->realm_len, tmp->password,
                              tmp->password_len, tmp->key_md5, sizeof(tmp->key_md5)) < 0 ||
        stunkit_key_long_term(STUNKIT_PWALG_SHA256, tmp->name, tmp->name_len, a->realm, a->realm_len, tmp->password,
                              tmp->password_len, tmp->key_sha256, sizeof(tmp->key_sha256)) < 0)
        return NULL;
    return tmp;
}

/*
 * The static credential for the request's USERNAME or USERHASH (keys derived
 * at load). NULL when there is none (a REST-API user is rest_user's).
 */
static const skd_credential *lookup(const skd_auth *a, const stunkit_msg *m)
{
    stunkit_attr u;
    if (stunkit_msg_find(m, STUNKIT_ATTR_USERNAME, &u) == 0) {
        if (u.len >= sizeof(a->users[0].name))
            return NULL;
        for (size_t i = 0; i < a->n_users; i++)
            if (a->users[i].name_len == u.len && memcmp(a->users[i].name, u.value, u.len) == 0)
                return &a->users[i];
        return NULL;
    }
    /* RFC 8489 14.4 USERHASH: only static credentials can be found by hash */
    if (stunkit_msg_find(m, STUNKIT_ATTR_USERHASH, &u) == 0 && u.len == 32) {
        for (size_t i = 0; i < a->n_users; i++)
            if (stunkit_ct_equal(a->users[i].userhash, u.value, 32))
                return &a->users[i];
    }
    return NULL;
}

static int check_mac(const stunkit_msg *m, const uint8_t *key, size_t klen, skd_auth_verdict *v)
{
    /* With both present the SHA-256 one decides (RFC 8489 9.2.4 step 7). */
    v->sha256 = m->mi256_off != 0;
    int rv = v->sha256 ? stunkit_check_integrity_sha256(m, key, klen) : stunkit_check_integrity(m, key, klen);
    memcpy(v->key, key, klen);
    v->key_len = klen;
    return rv;
}

int skd_auth_check(const skd_auth *a, const stunkit_msg *m, const stunkit_addr *client, uint64_t now_s,
                   skd_auth_verdict *v)
{
    stunkit_attr attr;
    skd_credential tmp;
    memset(v, 0, sizeof(*v));
    int has_mi = m->mi_off || m->mi256_off;

    if (a->short_term) {
        /* RFC 8489 9.1.3: "If the message does not contain 1) a MESSAGE-
         * INTEGRITY or a MESSAGE-INTEGRITY-SHA256 attribute and 2) a USERNAME
         * attribute: the server MUST reject the request with an error response.
         * This response MUST use an error code of 400 (Bad Request)." Then an
         * unknown username or a wrong MAC: 401. Both 401s are the same answer
         * after the same work (a MAC with a stand-in key for an unknown
         * user), so the answer does not tell which names exist. */
        if (!has_mi || stunkit_msg_find(m, STUNKIT_ATTR_USERNAME, &attr) != 0)
            return verdict(v, 400, 0, "Credentials required");
        const skd_credential *c = lookup(a, m);
        int known = c != NULL;
        if (!c)
            c = &a->dummy;
        if (check_mac(m, c->key_short, c->key_short_len, v) != 0 || !known) {
            v->key_len = 0;
            return verdict(v, 401, 0, "Integrity check failed");
        }
        memcpy(v->user, c->name, c->name_len);
        v->user_len = c->name_len;
        if (c == &tmp)
            memset(&tmp, 0, sizeof(tmp));
        return 0;
    }

    /* RFC 8489 9.2.4, long-term credentials, in order: */
    /* 1. "If the message does not contain a MESSAGE-INTEGRITY or MESSAGE-
     * INTEGRITY-SHA256 attribute, the server MUST generate an error response
     * with an error code of 401 (Unauthenticated)" with REALM and NONCE. */
    if (!has_mi)
        return verdict(v, 401, 1, NULL);
    /* 2. integrity but no USERNAME/USERHASH, REALM or NONCE: 400 */
    stunkit_attr nonce, realm;
    if ((stunkit_msg_find(m, STUNKIT_ATTR_USERNAME, &attr) != 0 &&
         stunkit_msg_find(m, STUNKIT_ATTR_USERHASH, &attr) != 0) ||
        stunkit_msg_find(m, STUNKIT_ATTR_REALM, &realm) != 0 || stunkit_msg_find(m, STUNKIT_ATTR_NONCE, &nonce) != 0)
        return verdict(v, 400, 0, "Missing USERNAME, REALM or NONCE");
    /* 3. "If the NONCE is no longer valid, the server MUST generate an error
     * response with an error code of 438 (Stale Nonce)". A nonce we never
     * issued gets a 401 and a fresh one. */
    int ns = nonce_state(a, &nonce, client, now_s);
    if (ns > 0)
        return verdict(v, 438, 1, NULL);
    if (ns < 0)
        return verdict(v, 401, 1, "Invalid nonce");
    /* 4. password algorithms (the nonce cookie says we offered them):
     * neither attribute means MD5; otherwise "unless (1) PASSWORD-ALGORITHM
     * and PASSWORD-ALGORITHMS are both present, (2) PASSWORD-ALGORITHMS
     * matches the value sent in the response that sent this NONCE, and (3)
     * PASSWORD-ALGORITHM matches one of the entries in PASSWORD-ALGORITHMS,
     * the server MUST generate an error response with an error code of 400". */
    uint16_t alg = STUNKIT_PWALG_MD5;
    stunkit_attr pa, pas;
    int has_pa = stunkit_msg_find(m, STUNKIT_ATTR_PASSWORD_ALGORITHM, &pa) == 0;
    int has_pas = stunkit_msg_find(m, STUNKIT_ATTR_PASSWORD_ALGORITHMS, &pas) == 0;
    if (has_pa || has_pas) {
        int ok = has_pa && has_pas && stunkit_attr_password_algorithm(&pa, 0, &alg, NULL, NULL) == 0;
        size_t i = 0;
        int listed = 0;
        uint16_t x, plen;
        for (; ok; i++) {
            int rv = stunkit_attr_password_algorithm(&pas, i, &x, NULL, &plen);
            if (rv == STUNKIT_ERR_NOT_FOUND)
                break;
            if (rv != 0 || i >= 2 || x != server_algs[i] || plen != 0)
                ok = 0;
            else if (x == alg)
                listed = 1;
        }
        if (!ok || i != 2 || !listed)
            return verdict(v, 400, 0, "PASSWORD-ALGORITHMS mismatch");
    }
    /* 5. REALM must be ours; the user must be known */
    if (realm.len != a->realm_len || memcmp(realm.value, a->realm, a->realm_len) != 0)
        return verdict(v, 401, 1, "Wrong realm");
    /* 6. the key and the MAC. An unknown user gets the same answer after the
     * same work: a MAC check with a stand-in key. */
    const skd_credential *c = lookup(a, m);
    int known = c != NULL, bad = 1;
    if (c) {
        bad = check_mac(m, alg == STUNKIT_PWALG_SHA256 ? c->key_sha256 : c->key_md5,
                        alg == STUNKIT_PWALG_SHA256 ? sizeof(c->key_sha256) : sizeof(c->key_md5), v) != 0;
    } else if (rest_user(a, m, 0, now_s, &tmp)) {
        /* a REST-API user: each secret in turn (the newest first) until one
         * makes the MAC */
        known = 1;
        for (size_t i = 0; bad && (c = rest_user(a, m, i, now_s, &tmp)) != NULL; i++)
            bad = check_mac(m, alg == STUNKIT_PWALG_SHA256 ? c->key_sha256 : c->key_md5,
                            alg == STUNKIT_PWALG_SHA256 ? sizeof(c->key_sha256) : sizeof(c->key_md5), v) != 0;
        c = &tmp;
    } else {
        c = &a->dummy; /* the same work as for a known user */
        check_mac(m, alg == STUNKIT_PWALG_SHA256 ? c->key_sha256 : c->key_md5,
                  alg == STUNKIT_PWALG_SHA256 ? sizeof(c->key_sha256) : sizeof(c->key_md5), v);
    }
    if (!bad && known) {
        memcpy(v->user, c->name, c->name_len);
        v->user_len = c->name_len;
    }
    if (c == &tmp)
        memset(&tmp, 0, sizeof(tmp));
    if (bad || !known) {
        v->key_len = 0;
        return verdict(v, 401, 1, "Integrity check failed");
    }
    return 0;
}
