/*
 * handler_test.c - stunkitd's request handler in process, on a fake clock:
 * dispatch by method, where answers go, RESPONSE-PORT rules, nonces going
 * stale without waiting, answers that do not tell which users exist, the
 * outbox bounds, and every truncated prefix of a request.
 */
#include <string.h>

#include "handler.h"
#include "test.h"

#define NOW 1795470000ull

static skd_handler_cfg cfg;
static uint8_t outbuf[8192];
static skd_out slots[4];

static void setup(int rfc5780, const skd_auth *auth)
{
    memset(&cfg, 0, sizeof(cfg));
    stunkit_addr_parse("198.51.100.1", 3478, &cfg.v4.ip[0]);
    stunkit_addr_parse("198.51.100.2", 3479, &cfg.v4.ip[1]);
    cfg.v4.advertise[0] = cfg.v4.ip[0];
    cfg.v4.advertise[1] = cfg.v4.ip[1];
    cfg.v4.port[0] = 3478;
    cfg.v4.port[1] = 3479;
    cfg.v4.rfc5780 = rfc5780;
    cfg.auth = auth;
}

static skd_verdict handle(const uint8_t *req, size_t len, uint64_t now_s, skd_outbox *ob)
{
    skd_request rq;
    memset(&rq, 0, sizeof(rq));
    rq.data = req;
    rq.len = len;
    stunkit_addr_parse("192.0.2.7:40000", 0, &rq.src);
    rq.dst = cfg.v4.ip[0];
    rq.dst.port = 3478;
    rq.transport = STUNKIT_UDP;
    rq.now_s = now_s;
    skd_outbox_init(ob, outbuf, sizeof(outbuf), slots, 4);
    return skd_handle(&cfg, &rq, ob);
}

static const uint8_t TID[12] = {0xa, 0xb, 0xc, 0xd, 1, 2, 3, 4, 5, 6, 7, 8};

static size_t request(uint8_t *buf, uint16_t method, stunkit_class k, int rport)
{
    stunkit_writer w;
    stunkit_writer_init(&w, buf, 512, method, k, TID);
    if (rport >= 0)
        stunkit_put_response_port(&w, (uint16_t)rport);
    stunkit_put_fingerprint(&w);
    return (size_t)stunkit_writer_finish(&w);
}

static int code_of(const skd_out *o)
{
    stunkit_msg m;
    stunkit_attr a;
    int code = -1;
    if (stunkit_msg_parse(&m, o->data, o->len) != 0)
        return -1;
    if (m.klass == STUNKIT_CLASS_SUCCESS)
        return 0;
    if (stunkit_msg_find(&m, STUNKIT_ATTR_ERROR_CODE, &a) != 0 || stunkit_attr_error_code(&a, &code, NULL, NULL))
        return -1;
    return code;
}

static void test_dispatch(void)
{
    uint8_t req[512];
    skd_outbox ob;
    setup(0, NULL);
    size_t len = request(req, STUNKIT_METHOD_BINDING, STUNKIT_CLASS_REQUEST, -1);
    CHECK_EQ(handle(req, len, NOW, &ob), SKD_ANSWERED);
    CHECK_EQ(ob.n, 1u);
    CHECK_EQ(code_of(&ob.out[0]), 0);
    CHECK_EQ(ob.out[0].flags, 0u);
    /* methods not in the table: silently discarded (RFC 8489 6.3) */
    len = request(req, STUNKIT_METHOD_ALLOCATE, STUNKIT_CLASS_REQUEST, -1);
    CHECK_EQ(handle(req, len, NOW, &ob), SKD_DROP_METHOD);
    CHECK_EQ(ob.n, 0u);
    len = request(req, STUNKIT_METHOD_BINDING, STUNKIT_CLASS_INDICATION, -1);
    CHECK_EQ(handle(req, len, NOW, &ob), SKD_DROP_NOT_REQUEST);
    len = request(req, STUNKIT_METHOD_BINDING, STUNKIT_CLASS_SUCCESS, -1);
    CHECK_EQ(handle(req, len, NOW, &ob), SKD_DROP_NOT_REQUEST);
    /* an outbox without room: counted, nothing half-written */
    skd_request rq;
    memset(&rq, 0, sizeof(rq));
    len = request(req, STUNKIT_METHOD_BINDING, STUNKIT_CLASS_REQUEST, -1);
    rq.data = req;
    rq.len = len;
    stunkit_addr_parse("192.0.2.7:40000", 0, &rq.src);
    rq.dst = cfg.v4.ip[0];
    skd_outbox_init(&ob, outbuf, 30, slots, 4);
    CHECK_EQ(skd_handle(&cfg, &rq, &ob), SKD_DROP_NOBUF);
    CHECK_EQ(ob.n, 0u);
    /* every truncated prefix: dropped or a 400, never a success */
    int successes = 0;
    for (size_t k = 0; k < len; k++)
        if (handle(req, k, NOW, &ob) == SKD_ANSWERED && code_of(&ob.out[0]) == 0)
            successes++;
    CHECK_EQ(successes, 0);
}

static void test_response_port(void)
{
    uint8_t req[512];
    skd_outbox ob;
    /* basic mode: RESPONSE-PORT is an unknown comprehension-required
     * attribute for a server without RFC 5780 (420), never honoured */
    setup(0, NULL);
    size_t len = request(req, STUNKIT_METHOD_BINDING, STUNKIT_CLASS_REQUEST, 5000);
    CHECK_EQ(handle(req, len, NOW, &ob), SKD_ANSWERED);
    CHECK_EQ(code_of(&ob.out[0]), 420);
    CHECK_EQ(ob.out[0].to.port, 40000);
    /* RFC 5780 mode: honoured for ports from 1024, refused below */
    setup(1, NULL);
    len = request(req, STUNKIT_METHOD_BINDING, STUNKIT_CLASS_REQUEST, 5000);
    CHECK_EQ(handle(req, len, NOW, &ob), SKD_ANSWERED);
    CHECK_EQ(code_of(&ob.out[0]), 0);
    CHECK_EQ(ob.out[0].to.port, 5000);
    CHECK(ob.out[0].flags & SKD_OUT_REDIRECT);
    len = request(req, STUNKIT_METHOD_BINDING, STUNKIT_CLASS_REQUEST, 53);
    CHECK_EQ(handle(req, len, NOW, &ob), SKD_ANSWERED);
    CHECK_EQ(code_of(&ob.out[0]), 400);
    CHECK_EQ(ob.out[0].to.port, 40000);
}

/* ---- credentials ---- */

static skd_auth auth;

static size_t signed_request(uint8_t *buf, const char *user, const char *password, const char *nonce, int long_term)
{
    stunkit_writer w;
    uint8_t key[STUNKIT_KEY_MAX];
    int klen;
    stunkit_writer_init(&w, buf, 512, STUNKIT_METHOD_BINDING, STUNKIT_CLASS_REQUEST, TID);
    stunkit_put(&w, STUNKIT_ATTR_USERNAME, user, strlen(user));
    if (long_term) {
        stunkit_put(&w, STUNKIT_ATTR_REALM, "stunkit", 7);
        stunkit_put(&w, STUNKIT_ATTR_NONCE, nonce, strlen(nonce));
        klen = stunkit_key_long_term(STUNKIT_PWALG_MD5, user, strlen(user), "stunkit", 7, password, strlen(password),
                                     key, sizeof(key));
    } else {
        klen = stunkit_key_short_term(password, strlen(password), key, sizeof(key));
    }
    stunkit_put_integrity(&w, key, (size_t)klen);
    return (size_t)stunkit_writer_finish(&w);
}

static void load_users(int short_term)
{
    const char *why;
    memset(&auth, 0, sizeof(auth));
    auth.short_term = short_term;
    skd_auth_add_user(&auth, "alice:correct horse", &why);
    skd_auth_finish(&auth);
}

static void test_no_user_enumeration(void)
{
    uint8_t req[512], a[512], b[512];
    skd_outbox ob;
    size_t alen, blen;

    /* short-term: an unknown user and a wrong password get the same bytes */
    load_users(1);
    setup(0, &auth);
    size_t len = signed_request(req, "alice", "correct horse", NULL, 0);
    CHECK_EQ(handle(req, len, NOW, &ob), SKD_ANSWERED);
    CHECK_EQ(code_of(&ob.out[0]), 0);
    len = signed_request(req, "alice", "wrong", NULL, 0);
    handle(req, len, NOW, &ob);
    CHECK_EQ(code_of(&ob.out[0]), 401);
    alen = ob.out[0].len;
    memcpy(a, ob.out[0].data, alen);
    len = signed_request(req, "mallory", "wrong", NULL, 0);
    handle(req, len, NOW, &ob);
    blen = ob.out[0].len;
    memcpy(b, ob.out[0].data, blen);
    CHECK_EQ(alen, blen);
    CHECK(alen == blen && memcmp(a, b, alen) == 0);

    /* long-term: the same, challenge and all */
    load_users(0);
    setup(0, &auth);
    char nonce[SKD_NONCE_LEN + 1];
    stunkit_addr client;
    stunkit_addr_parse("192.0.2.7:40000", 0, &client);
    skd_auth_nonce(&auth, &client, NOW, nonce);
    nonce[SKD_NONCE_LEN] = '\0';
    len = signed_request(req, "alice", "correct horse", nonce, 1);
    handle(req, len, NOW, &ob);
    CHECK_EQ(code_of(&ob.out[0]), 0);
    len = signed_request(req, "alice", "wrong", nonce, 1);
    handle(req, len, NOW, &ob);
    alen = ob.out[0].len;
    memcpy(a, ob.out[0].data, alen);
    CHECK_EQ(code_of(&ob.out[0]), 401);
    len = signed_request(req, "mallory", "wrong", nonce, 1);
    handle(req, len, NOW, &ob);
    blen = ob.out[0].len;
    memcpy(b, ob.out[0].data, blen);
    CHECK(alen == blen && memcmp(a, b, alen) == 0);
    CHECK(ob.out[0].flags & SKD_OUT_CHALLENGE);

    /* the nonce goes stale after its lifetime (600 s): 438, on a fake clock */
    len = signed_request(req, "alice", "correct horse", nonce, 1);
    handle(req, len, NOW + 599, &ob);
    CHECK_EQ(code_of(&ob.out[0]), 0);
    handle(req, len, NOW + 601, &ob);
    CHECK_EQ(code_of(&ob.out[0]), 438);
    /* a nonce from the future (beyond a minute's clock skew) is not ours */
    skd_auth_nonce(&auth, &client, NOW + 3600, nonce);
    len = signed_request(req, "alice", "correct horse", nonce, 1);
    handle(req, len, NOW, &ob);
    CHECK_EQ(code_of(&ob.out[0]), 401);
}

int main(void)
{
    RUN(test_dispatch);
    RUN(test_response_port);
    RUN(test_no_user_enumeration);
    TEST_END();
}
