/*
 * auth_client_test.c - the client's half of long-term credentials
 * (src/lib/auth_client.c, RFC 8489 9.2), the one copy the Binding driver,
 * the TURN client and the rendezvous use: challenges taken (MD5 without
 * PASSWORD-ALGORITHMS, the first supported algorithm with them, USERHASH
 * when the nonce cookie asks for username anonymity), the bid-down check,
 * the retry bounds, signing (and its announced size), verifying answers.
 */
#include <string.h>

#include "auth_client.h"
#include "stunkit/stunkit.h"
#include "test.h"

static uint8_t buf[2048];
static stunkit_msg msg;

/* A 401 (or code) with REALM, NONCE and, when algs, PASSWORD-ALGORITHMS. */
static void challenge(int code, const char *realm, const char *nonce, const uint16_t *algs, size_t nalgs)
{
    static const uint8_t tid[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    stunkit_writer w;
    stunkit_writer_init(&w, buf, sizeof(buf), STUNKIT_METHOD_BINDING, STUNKIT_CLASS_ERROR, tid);
    stunkit_put_error_code(&w, code, code == 401 ? "Unauthenticated" : "Stale Nonce");
    if (realm)
        stunkit_put(&w, STUNKIT_ATTR_REALM, realm, strlen(realm));
    if (nonce)
        stunkit_put(&w, STUNKIT_ATTR_NONCE, nonce, strlen(nonce));
    if (algs)
        stunkit_put_password_algorithms(&w, algs, nalgs);
    int n = stunkit_writer_finish(&w);
    CHECK(n > 0);
    CHECK_EQ(stunkit_msg_parse(&msg, buf, (size_t)n), 0);
}

/* Signs a request with a and parses it back into *m (in req); what was
 * added is the size sk_auth_overhead() announced. */
static size_t sign(const sk_auth_client *a, uint8_t *req, size_t cap, stunkit_msg *m)
{
    static const uint8_t tid[12] = {9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9};
    stunkit_writer w;
    stunkit_writer_init(&w, req, cap, STUNKIT_METHOD_ALLOCATE, STUNKIT_CLASS_REQUEST, tid);
    size_t before = w.len;
    CHECK_EQ(sk_auth_sign(a, &w), 0);
    CHECK_EQ(w.len - before, sk_auth_overhead(a));
    int n = stunkit_writer_finish(&w);
    CHECK(n > 0);
    CHECK_EQ(stunkit_msg_parse(m, req, (size_t)n), 0);
    return (size_t)n;
}

static void test_md5_without_algorithms(void)
{
    sk_auth_client a;
    int tries = 0;
    CHECK_EQ(sk_auth_init(&a, "alice", "wonderland"), 0);
    CHECK_EQ(sk_auth_ready(&a), 0);
    challenge(401, "example.org", "f00dnonce", NULL, 0);
    CHECK_EQ(sk_auth_challenge(&a, &msg, 401, &tries), 1);
    CHECK_EQ(tries, 1);
    CHECK(sk_auth_ready(&a));
    CHECK_EQ(a.alg, STUNKIT_PWALG_MD5);
    CHECK_EQ(a.userhash, 0);
    uint8_t req[1024];
    stunkit_msg m;
    sign(&a, req, sizeof(req), &m);
    stunkit_attr at;
    CHECK(stunkit_msg_find(&m, STUNKIT_ATTR_USERNAME, &at) == 0 && at.len == 5 && !memcmp(at.value, "alice", 5));
    CHECK(stunkit_msg_find(&m, STUNKIT_ATTR_PASSWORD_ALGORITHM, &at) != 0);
    CHECK(m.mi_off && !m.mi256_off);
    /* the key: MD5(alice:example.org:wonderland) */
    uint8_t key[16];
    CHECK_EQ(stunkit_key_long_term(STUNKIT_PWALG_MD5, "alice", 5, "example.org", 11, "wonderland", 10, key, 16), 16);
    CHECK_EQ(stunkit_check_integrity(&m, key, 16), 0);
    /* a second 401 to the signed request: wrong credentials, final */
    challenge(401, "example.org", "f00dnonce2", NULL, 0);
    CHECK_EQ(sk_auth_challenge(&a, &msg, 401, &tries), 0);
    /* a 438 takes the new nonce, up to twice more for this request */
    challenge(438, "example.org", "fresh1", NULL, 0);
    CHECK_EQ(sk_auth_challenge(&a, &msg, 438, &tries), 1);
    CHECK(a.nonce_len == 6 && !memcmp(a.nonce, "fresh1", 6));
    CHECK_EQ(sk_auth_challenge(&a, &msg, 438, &tries), 1);
    CHECK_EQ(sk_auth_challenge(&a, &msg, 438, &tries), 0);
    /* a new request (tries 0): a 401 is answered once again (a server
     * that restarted with another realm) */
    tries = 0;
    challenge(401, "example.net", "n2", NULL, 0);
    CHECK_EQ(sk_auth_challenge(&a, &msg, 401, &tries), 1);
    CHECK(a.realm_len == 11 && !memcmp(a.realm, "example.net", 11));
    /* other codes, and a challenge without REALM or NONCE: final */
    tries = 0;
    CHECK_EQ(sk_auth_challenge(&a, &msg, 403, &tries), 0);
    challenge(401, NULL, "n3", NULL, 0);
    CHECK_EQ(sk_auth_challenge(&a, &msg, 401, &tries), 0);
    challenge(401, "example.org", NULL, NULL, 0);
    CHECK_EQ(sk_auth_challenge(&a, &msg, 401, &tries), 0);
    CHECK(a.realm_len == 11 && !memcmp(a.realm, "example.net", 11)); /* what it had stays */
    sk_auth_clear(&a);
}

/* stunkitd's nonce cookie "obMatJos2AAAD": bits 0 and 1 (password
 * algorithms, username anonymity; erratum 6290: bit 0 the rightmost) */
static void test_sha256_and_userhash(void)
{
    sk_auth_client a;
    int tries = 0;
    uint16_t algs[2] = {STUNKIT_PWALG_SHA256, STUNKIT_PWALG_MD5};
    CHECK_EQ(sk_auth_init(&a, "alice", "wonderland"), 0);
    challenge(401, "example.org", "obMatJos2AAADabcdef", algs, 2);
    CHECK_EQ(sk_auth_challenge(&a, &msg, 401, &tries), 1);
    CHECK_EQ(a.alg, STUNKIT_PWALG_SHA256);
    CHECK_EQ(a.userhash, 1);
    uint8_t req[1024];
    stunkit_msg m;
    sign(&a, req, sizeof(req), &m);
    stunkit_attr at;
    uint8_t hash[32];
    CHECK_EQ(stunkit_userhash("alice", 5, "example.org", 11, hash), 0);
    CHECK(stunkit_msg_find(&m, STUNKIT_ATTR_USERHASH, &at) == 0 && at.len == 32 && !memcmp(at.value, hash, 32));
    CHECK(stunkit_msg_find(&m, STUNKIT_ATTR_USERNAME, &at) != 0);
    CHECK(stunkit_msg_find(&m, STUNKIT_ATTR_PASSWORD_ALGORITHMS, &at) == 0);
    uint16_t alg;
    CHECK(stunkit_msg_find(&m, STUNKIT_ATTR_PASSWORD_ALGORITHM, &at) == 0 &&
          stunkit_attr_password_algorithm(&at, 0, &alg, NULL, NULL) == 0 && alg == STUNKIT_PWALG_SHA256);
    CHECK(m.mi256_off);
    uint8_t key[32];
    CHECK_EQ(stunkit_key_long_term(STUNKIT_PWALG_SHA256, "alice", 5, "example.org", 11, "wonderland", 10, key, 32), 32);
    CHECK_EQ(stunkit_check_integrity_sha256(&m, key, 32), 0);
    /* the first supported algorithm on the list: MD5 when it comes first */
    uint16_t md5_first[2] = {STUNKIT_PWALG_MD5, STUNKIT_PWALG_SHA256};
    tries = 0;
    challenge(401, "example.org", "obMatJos2AAABxyz", md5_first, 2);
    CHECK_EQ(sk_auth_challenge(&a, &msg, 401, &tries), 1);
    CHECK_EQ(a.alg, STUNKIT_PWALG_MD5);
    CHECK_EQ(a.userhash, 0); /* bit 1 clear: USERNAME */
    /* nothing on the list we support: final */
    uint16_t unknown[1] = {0x7777};
    tries = 0;
    challenge(401, "example.org", "obMatJos2AAABxyz", unknown, 1);
    CHECK_EQ(sk_auth_challenge(&a, &msg, 401, &tries), 0);
    sk_auth_clear(&a);
}

/* 9.2.5: the cookie promises PASSWORD-ALGORITHMS and the 401 lacks them:
 * someone stripped them to force MD5; no retry. */
static void test_bid_down(void)
{
    sk_auth_client a;
    int tries = 0;
    CHECK_EQ(sk_auth_init(&a, "alice", "wonderland"), 0);
    challenge(401, "example.org", "obMatJos2AAADabcdef", NULL, 0);
    CHECK_EQ(sk_auth_challenge(&a, &msg, 401, &tries), 0);
    CHECK_EQ(sk_auth_ready(&a), 0);
    CHECK_EQ(tries, 0);
    /* a cookie without the bit (AAAC: username anonymity only): MD5 is fine */
    challenge(401, "example.org", "obMatJos2AAACabcdef", NULL, 0);
    CHECK_EQ(sk_auth_challenge(&a, &msg, 401, &tries), 1);
    CHECK_EQ(a.alg, STUNKIT_PWALG_MD5);
    CHECK_EQ(a.userhash, 1);
    sk_auth_clear(&a);
}

/* Answers: signed with our key pass, anything else fails; too long
 * credentials are refused at init. */
static void test_verify_and_bounds(void)
{
    sk_auth_client a;
    int tries = 0;
    CHECK_EQ(sk_auth_init(&a, "alice", "wonderland"), 0);
    stunkit_msg m;
    challenge(401, "example.org", "n", NULL, 0);
    CHECK_EQ(sk_auth_verify(&a, &msg), -1); /* no key yet */
    CHECK_EQ(sk_auth_challenge(&a, &msg, 401, &tries), 1);
    static const uint8_t tid[12] = {7};
    stunkit_writer w;
    uint8_t ans[256];
    stunkit_writer_init(&w, ans, sizeof(ans), STUNKIT_METHOD_BINDING, STUNKIT_CLASS_SUCCESS, tid);
    stunkit_put_integrity(&w, a.key, a.key_len);
    int n = stunkit_writer_finish(&w);
    CHECK_EQ(stunkit_msg_parse(&m, ans, (size_t)n), 0);
    CHECK_EQ(sk_auth_verify(&a, &m), 0);
    ans[n - 1] ^= 1; /* a flipped bit of the MAC */
    CHECK_EQ(stunkit_msg_parse(&m, ans, (size_t)n), 0);
    CHECK_EQ(sk_auth_verify(&a, &m), -1);
    CHECK_EQ(sk_auth_verify(&a, &msg), -1); /* unsigned */
    char longname[200];
    memset(longname, 'x', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = 0;
    CHECK_EQ(sk_auth_init(&a, longname, "pw"), -1);
    CHECK_EQ(sk_auth_init(&a, "alice", longname), -1);
    /* without a username nothing is answered */
    CHECK_EQ(sk_auth_init(&a, "", ""), 0);
    tries = 0;
    challenge(401, "example.org", "n", NULL, 0);
    CHECK_EQ(sk_auth_challenge(&a, &msg, 401, &tries), 0);
    sk_auth_clear(&a);
}

int main(void)
{
    RUN(test_md5_without_algorithms);
    RUN(test_sha256_and_userhash);
    RUN(test_bid_down);
    RUN(test_verify_and_bounds);
    TEST_END();
}
