/*
 * secret_test.c - stunkit/secret.h: keys from a shared secret. The expected
 * values were computed independently (Python's hmac and hashlib, RFC 5869
 * HKDF written out by hand) for the secret "correct horse battery staple".
 */
#include <string.h>

#include "stunkit/error.h"
#include "stunkit/secret.h"
#include "test.h"

static const char SECRET[] = "correct horse battery staple";

static void test_derivations(void)
{
    stunkit_secret s;
    CHECK_EQ(stunkit_secret_init(&s, "", 0), STUNKIT_ERR_INVAL);
    CHECK_EQ(stunkit_secret_init(&s, SECRET, strlen(SECRET)), 0);
    char out[128];
    CHECK_EQ(stunkit_secret_room(&s, "lab", out, sizeof(out)), 32);
    CHECK(!strcmp(out, "s08909b622637924ef99329942f89750"));
    CHECK_EQ(stunkit_secret_room(&s, NULL, out, sizeof(out)), 32);
    CHECK(!strcmp(out, "s74382cc9cd628e877ad1af02672b8e7"));
    CHECK_EQ(stunkit_secret_room(&s, "lab", out, 32), STUNKIT_ERR_NOBUF);
    CHECK_EQ(stunkit_secret_ice_pwd(&s, "abcd1234", out, sizeof(out)), 32);
    CHECK(!strcmp(out, "Mk3Fs3/m9J9KFVscLjCg7Ng1isgMgx+G"));
    CHECK_EQ(stunkit_secret_ice_pwd(&s, "", out, sizeof(out)), STUNKIT_ERR_INVAL);
    const char *d = "a=ice-ufrag:abcd1234\r\n";
    CHECK_EQ(stunkit_secret_seal(&s, d, strlen(d), out, sizeof(out)), STUNKIT_SECRET_MAC_LINE_LEN);
    CHECK(!strcmp(out, "a=x-stunkit-mac:13f311f4e63260eaf434bf8d61ea51953490b538087e604989ac42a11e4272bd\r\n"));
    /* another secret: other keys */
    stunkit_secret t;
    CHECK_EQ(stunkit_secret_init(&t, "correct horse battery stapler", 29), 0);
    char room2[64];
    CHECK_EQ(stunkit_secret_room(&t, "lab", room2, sizeof(room2)), 32);
    CHECK(strcmp(room2, "s08909b622637924ef99329942f89750") != 0);
    stunkit_secret_clear(&t);
    static const uint8_t zero[sizeof(stunkit_secret)];
    CHECK(!memcmp(&t, zero, sizeof(t)));
}

/* A description trickled in three parts, each sealed as it went. */
static size_t build(const stunkit_secret *s, char *buf, size_t cap, size_t *seal_ends)
{
    static const char *const parts[3] = {
        "a=ice-ufrag:abcd1234\r\na=ice-options:trickle renomination\r\n",
        "a=candidate:1 1 UDP 2130706431 192.0.2.2 41000 typ host\r\n",
        ("a=candidate:2 1 UDP 1694498815 198.51.100.7 52000 typ srflx raddr 192.0.2.2 rport 41000\r\n"
         "a=end-of-candidates\r\n")};
    size_t len = 0;
    for (int i = 0; i < 3; i++) {
        size_t n = strlen(parts[i]);
        memcpy(buf + len, parts[i], n);
        len += n;
        int m = stunkit_secret_seal(s, buf, len, buf + len, cap - len);
        CHECK_EQ(m, STUNKIT_SECRET_MAC_LINE_LEN);
        len += (size_t)m;
        seal_ends[i] = len;
    }
    buf[len] = 0;
    return len;
}

static void test_open(void)
{
    stunkit_secret s, wrong;
    stunkit_secret_init(&s, SECRET, strlen(SECRET));
    stunkit_secret_init(&wrong, "guess", 5);
    char buf[1024];
    size_t ends[3], v;
    size_t len = build(&s, buf, sizeof(buf), ends);
    CHECK_EQ(stunkit_secret_open(&s, buf, len, &v), 0);
    CHECK_EQ(v, len);
    /* another secret: the first seal fails, nothing is usable */
    CHECK_EQ(stunkit_secret_open(&wrong, buf, len, &v), STUNKIT_ERR_INTEGRITY_MISMATCH);
    CHECK_EQ(v, 0u);
    /* every prefix (the description as it trickles in): what is verified
     * ends at the last complete seal line inside the prefix, never beyond */
    for (size_t k = 0; k <= len; k++) {
        CHECK_EQ(stunkit_secret_open(&s, buf, k, &v), 0);
        size_t want = 0;
        for (int i = 0; i < 3; i++)
            if (ends[i] <= k)
                want = ends[i];
        CHECK_EQ(v, want);
    }
    /* one byte changed anywhere before a seal: that seal fails, and what
     * came before the changed part stays usable */
    for (size_t k = 0; k < ends[2]; k++) {
        char copy[1024];
        memcpy(copy, buf, len);
        copy[k] ^= 0x01;
        int rv = stunkit_secret_open(&s, copy, len, &v);
        int i = 0;
        while (ends[i] <= k)
            i++;
        size_t before = i ? ends[i - 1] : 0;
        if (rv == 0) {
            /* the flip turned a seal line into another line (its prefix
             * no longer reads a=x-stunkit-mac:): then a later seal,
             * covering the changed byte, fails, unless it was the last */
            CHECK(v <= before || k >= ends[2] - STUNKIT_SECRET_MAC_LINE_LEN);
        } else {
            CHECK_EQ(rv, STUNKIT_ERR_INTEGRITY_MISMATCH);
            CHECK(v <= before);
        }
    }
    /* a candidate injected after a seal: not covered, not used */
    char more[1200];
    memcpy(more, buf, len);
    const char *inj = "a=candidate:9 1 UDP 2130706431 203.0.113.66 9 typ host\r\n";
    memcpy(more + len, inj, strlen(inj));
    CHECK_EQ(stunkit_secret_open(&s, more, len + strlen(inj), &v), 0);
    CHECK_EQ(v, len);
    /* ... nor sealed with a seal line the channel made up */
    memcpy(more + len + strlen(inj), buf + ends[0] - STUNKIT_SECRET_MAC_LINE_LEN, STUNKIT_SECRET_MAC_LINE_LEN);
    CHECK_EQ(stunkit_secret_open(&s, more, len + strlen(inj) + STUNKIT_SECRET_MAC_LINE_LEN, &v),
             STUNKIT_ERR_INTEGRITY_MISMATCH);
    CHECK_EQ(v, len);
}

int main(void)
{
    RUN(test_derivations);
    RUN(test_open);
    TEST_END();
}
