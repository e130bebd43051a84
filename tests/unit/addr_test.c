/* addr_test.c - address text forms and sockaddr conversion. */
#include <arpa/inet.h>
#include <netinet/in.h>

#include "stunkit/stunkit.h"
#include "test.h"

static void round_trip(const char *in, uint16_t def, const char *want)
{
    stunkit_addr a;
    char text[STUNKIT_ADDRSTRLEN];
    CHECK_EQ(stunkit_addr_parse(in, def, &a), 0);
    CHECK(stunkit_addr_format(&a, text, sizeof(text)) > 0);
    CHECK_STR(text, want);
}

static void test_parse_format(void)
{
    round_trip("192.0.2.1", 3478, "192.0.2.1:3478");
    round_trip("192.0.2.1:32853", 3478, "192.0.2.1:32853");
    round_trip("[2001:db8::1]:32853", 3478, "[2001:db8::1]:32853");
    round_trip("[2001:db8::1]", 3478, "[2001:db8::1]:3478");
    round_trip("2001:db8::1", 3478, "[2001:db8::1]:3478");
    round_trip("::1", 1, "[::1]:1");
    round_trip("0.0.0.0:0", 3478, "0.0.0.0:0");
    round_trip("[2001:0DB8:0000::0001]:65535", 3478, "[2001:db8::1]:65535");

    stunkit_addr a;
    static const char *const bad[] = {"", "host.example:3478", "192.0.2.1:", "192.0.2.1:65536", "192.0.2.1:-1",
                                      "192.0.2.1:80x", "[2001:db8::1", "[2001:db8::1]x", "[192.0.2.1]:80",
                                      "192.0.2.256", "[]:80", "1.2.3.4:5:6:7"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rv = stunkit_addr_parse(bad[i], 3478, &a);
        if (rv != STUNKIT_ERR_BAD_ADDRESS)
            fprintf(stderr, "accepted bad address \"%s\"\n", bad[i]);
        CHECK_EQ(rv, STUNKIT_ERR_BAD_ADDRESS);
    }
    char small[8];
    stunkit_addr_parse("192.0.2.1:32853", 0, &a);
    CHECK_EQ(stunkit_addr_format(&a, small, sizeof(small)), STUNKIT_ERR_NOBUF);
    a.family = 9;
    CHECK_EQ(stunkit_addr_format(&a, small, sizeof(small)), STUNKIT_ERR_BAD_FAMILY);
}

static void test_sockaddr(void)
{
    stunkit_addr a, b;
    struct sockaddr_storage ss;
    stunkit_addr_parse("[2001:db8::7]:9", 0, &a);
    CHECK_EQ(stunkit_addr_to_sockaddr(&a, &ss), (int)sizeof(struct sockaddr_in6));
    CHECK_EQ(stunkit_addr_from_sockaddr(&b, (struct sockaddr *)&ss), 0);
    CHECK(stunkit_addr_equal(&a, &b));

    stunkit_addr_parse("198.51.100.4:3478", 0, &a);
    CHECK_EQ(stunkit_addr_to_sockaddr(&a, &ss), (int)sizeof(struct sockaddr_in));
    CHECK_EQ(((struct sockaddr_in *)&ss)->sin_port, htons(3478));
    CHECK_EQ(stunkit_addr_from_sockaddr(&b, (struct sockaddr *)&ss), 0);
    CHECK(stunkit_addr_equal(&a, &b));

    /* an IPv4-mapped IPv6 sockaddr is an IPv4 address */
    struct sockaddr_in6 s6;
    memset(&s6, 0, sizeof(s6));
    s6.sin6_family = AF_INET6;
    s6.sin6_port = htons(5);
    inet_pton(AF_INET6, "::ffff:192.0.2.7", &s6.sin6_addr);
    CHECK_EQ(stunkit_addr_from_sockaddr(&b, (struct sockaddr *)&s6), 0);
    CHECK_EQ(b.family, STUNKIT_AF_INET);
    char text[STUNKIT_ADDRSTRLEN];
    stunkit_addr_format(&b, text, sizeof(text));
    CHECK_STR(text, "192.0.2.7:5");

    CHECK(!stunkit_addr_equal(&a, &b));
    b = a;
    b.port++;
    CHECK(stunkit_addr_ip_equal(&a, &b) && !stunkit_addr_equal(&a, &b));
}

int main(void)
{
    RUN(test_parse_format);
    RUN(test_sockaddr);
    TEST_END();
}
