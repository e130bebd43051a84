/*
 * peer_policy_test.c - the TURN relay's peer policy: every built-in refused
 * range, its edges, the IPv6 forms that carry a refused IPv4 address
 * (IPv4-mapped, IPv4-translated, IPv4-compatible, NAT64, 6to4), and --allowed-peer /
 * --denied-peer. Only addresses as data: nothing is sent anywhere.
 */
#include <string.h>

#include "peer_policy.h"
#include "test.h"

static int allowed(const skd_peer_policy *p, const char *text)
{
    stunkit_addr a;
    if (stunkit_addr_parse(text, 0, &a) != 0) {
        fprintf(stderr, "bad test address %s\n", text);
        return -1;
    }
    return skd_peer_allowed(p, &a);
}

static void test_builtin(void)
{
    skd_peer_policy p;
    memset(&p, 0, sizeof(p));
    static const char *const refused[] = {
        "0.0.0.0", "0.1.2.3", "10.0.0.1", "10.255.255.255", "100.64.0.1", "100.127.255.254", "127.0.0.1",
        "127.255.255.254", "169.254.169.254", "172.16.0.1", "172.31.255.255", "192.0.0.1", "192.168.1.1",
        "198.18.0.1", "198.19.255.255", "224.0.0.1", "239.255.255.250", "240.0.0.1", "255.255.255.255", "::",
        "::1", "fc00::1", "fd12:3456::1", "fe80::1", "ff02::1",
        /* refused IPv4 in IPv6 clothing (CVE-2026-27624 and friends) */
        "::ffff:127.0.0.1", "::ffff:10.1.2.3", "::ffff:0.0.0.0", "::127.0.0.1", "::169.254.169.254",
        "64:ff9b::7f00:1", "64:ff9b::a00:1", "64:ff9b::c0a8:101", "2002:7f00:1::", "2002:a00:1::1",
        "2002:c0a8:101::", "64:ff9b:1::1", "2001::1",
        /* issue 23 item 7: IPv4-translated (RFC 2765), site-local, ::0.0.0.x, discard-only */
        "::ffff:0:7f00:1", "::ffff:0:a00:1", "::ffff:0:c0a8:101", "fec0::1", "feff::1", "::0.0.0.2", "::0.0.0.255",
        "::2", "100::1",
    };
    int wrong = 0;
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
        if (allowed(&p, refused[i]) != 0) {
            fprintf(stderr, "  allowed but should be refused: %s\n", refused[i]);
            wrong++;
        }
    CHECK_EQ(wrong, 0);
    static const char *const fine[] = {
        "9.255.255.255", "11.0.0.0", "100.63.255.255", "100.128.0.0", "126.255.255.255", "128.0.0.0",
        "172.15.255.255", "172.32.0.0", "192.0.1.0", "192.167.255.255", "192.169.0.0", "198.17.255.255",
        "198.20.0.0", "223.255.255.255", "198.51.100.7", "203.0.113.9", "8.8.8.8", "2001:db8::1",
        "2a00:1450::1", "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::", "::ffff:0:808:808", "::8.8.8.8",
        "100:0:0:1::1",
    };
    wrong = 0;
    for (size_t i = 0; i < sizeof(fine) / sizeof(fine[0]); i++)
        if (allowed(&p, fine[i]) != 1) {
            fprintf(stderr, "  refused but should be allowed: %s\n", fine[i]);
            wrong++;
        }
    CHECK_EQ(wrong, 0);
}

static void test_lists(void)
{
    skd_peer_policy p;
    const char *why;
    memset(&p, 0, sizeof(p));
    /* a test lab opens one private range explicitly... */
    CHECK_EQ(skd_cidr_parse("10.1.0.0/16", &p.allowed[p.n_allowed++], &why), 0);
    CHECK_EQ(allowed(&p, "10.1.2.3"), 1);
    CHECK_EQ(allowed(&p, "::ffff:10.1.2.3"), 1); /* the same host in IPv6 form */
    CHECK_EQ(allowed(&p, "10.2.0.1"), 0);
    /* ...and closes a public one */
    CHECK_EQ(skd_cidr_parse("203.0.113.0/24", &p.denied[p.n_denied++], &why), 0);
    CHECK_EQ(allowed(&p, "203.0.113.5"), 0);
    CHECK_EQ(allowed(&p, "::ffff:203.0.113.5"), 0);
    CHECK_EQ(allowed(&p, "64:ff9b::cb00:7105"), 0);
    CHECK_EQ(allowed(&p, "2002:cb00:7105::"), 0);
    CHECK_EQ(allowed(&p, "198.51.100.1"), 1);
    /* a mapped range given in IPv6 is the IPv4 range */
    CHECK_EQ(skd_cidr_parse("::ffff:198.51.100.0/120", &p.denied[p.n_denied++], &why), 0);
    CHECK_EQ(allowed(&p, "198.51.100.1"), 0);
    /* bad ranges */
    skd_cidr c;
    CHECK(skd_cidr_parse("10.0.0.0/33", &c, &why) != 0);
    CHECK(skd_cidr_parse("10.0.0.0/", &c, &why) != 0);
    CHECK(skd_cidr_parse("nonsense", &c, &why) != 0);
    CHECK(skd_cidr_parse("::ffff:1.2.3.4/64", &c, &why) != 0);
    CHECK(skd_cidr_parse("10.0.0.1:5/8", &c, &why) != 0);
}

int main(void)
{
    RUN(test_builtin);
    RUN(test_lists);
    TEST_END();
}
