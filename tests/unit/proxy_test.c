/*
 * proxy_test.c - the PROXY protocol v2 parser (proxy.h): IPv4 and IPv6
 * headers as HAProxy sends them (with TLVs after the addresses), LOCAL and
 * UNSPEC (a health check: the connection's own addresses), every
 * truncated prefix (wait for more, never a verdict on half a header),
 * whatever does not start with the signature (the connection's own bytes:
 * TLS, STUN), and what the spec refuses: another version or command, a
 * UNIX or DGRAM block, a block too short for its family, a header longer
 * than the cap. Then every single-byte change of a valid header: no
 * crash, and never an address read past the end.
 */
#include <string.h>

#include "proxy.h"
#include "test.h"

static const uint8_t sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

static size_t header(uint8_t *out, int ver_cmd, int fam_proto, const uint8_t *block, size_t len)
{
    memcpy(out, sig, 12);
    out[12] = (uint8_t)ver_cmd;
    out[13] = (uint8_t)fam_proto;
    out[14] = (uint8_t)(len >> 8);
    out[15] = (uint8_t)len;
    memcpy(out + 16, block, len);
    return 16 + len;
}

static void v4_and_prefixes(void)
{
    /* 203.0.113.77:40123 -> 198.51.100.2:443, then a TLV (PP2_TYPE_ALPN "stun.turn") */
    uint8_t block[12 + 12] = {203, 0, 113, 77, 198, 51, 100, 2, 0x9C, 0xBB, 0x01, 0xBB,
                              0x01, 0x00, 0x09, 's', 't', 'u', 'n', '.', 't', 'u', 'r', 'n'};
    uint8_t h[64], buf[128];
    size_t n = header(h, 0x21, 0x11, block, sizeof(block)), len;
    stunkit_addr src, dst, want_src, want_dst;
    stunkit_addr_parse("203.0.113.77:40123", 0, &want_src);
    stunkit_addr_parse("198.51.100.2:443", 0, &want_dst);
    memcpy(buf, h, n);
    memcpy(buf + n, "\x16\x03\x01", 3); /* the ClientHello that follows */
    CHECK_EQ(skd_proxy_parse(buf, n + 3, &len, &src, &dst), SKD_PROXY_HEADER);
    CHECK_EQ(len, n);
    CHECK(stunkit_addr_equal(&src, &want_src) && stunkit_addr_equal(&dst, &want_dst));
    for (size_t k = 0; k < n; k++) /* every truncated prefix: more */
        CHECK_EQ(skd_proxy_parse(h, k, &len, &src, &dst), SKD_PROXY_MORE);
}

static void v6_local_unspec(void)
{
    uint8_t block[36] = {0x20, 0x01, 0x0d, 0xb8, [15] = 1, [16] = 0x20, [17] = 0x01, [18] = 0x0d, [19] = 0xb8, [31] = 2,
                         [32] = 0x13, [33] = 0x88, [34] = 0x01, [35] = 0xBB};
    uint8_t h[64];
    size_t n = header(h, 0x21, 0x21, block, sizeof(block)), len;
    stunkit_addr src, dst, want;
    stunkit_addr_parse("[2001:db8::1]:5000", 0, &want);
    CHECK_EQ(skd_proxy_parse(h, n, &len, &src, &dst), SKD_PROXY_HEADER);
    CHECK(stunkit_addr_equal(&src, &want));
    /* LOCAL (a health check from the proxy itself), and UNSPEC: no address */
    n = header(h, 0x20, 0x00, block, 0);
    CHECK_EQ(skd_proxy_parse(h, n, &len, &src, &dst), SKD_PROXY_HEADER);
    CHECK_EQ(src.family, 0);
    CHECK_EQ(len, 16);
    n = header(h, 0x20, 0x11, block, 12); /* LOCAL with a block: discarded */
    CHECK_EQ(skd_proxy_parse(h, n, &len, &src, &dst), SKD_PROXY_HEADER);
    CHECK_EQ(src.family, 0);
    n = header(h, 0x21, 0x00, block, 0);
    CHECK_EQ(skd_proxy_parse(h, n, &len, &src, &dst), SKD_PROXY_HEADER);
    CHECK_EQ(src.family, 0);
}

static void not_a_header(void)
{
    static const uint8_t stun[20] = {0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xA4, 0x42};
    static const uint8_t tls[5] = {0x16, 0x03, 0x01, 0x02, 0x00};
    static const char v1[] = "PROXY TCP4 203.0.113.7 198.51.100.2 5000 443\r\n";
    size_t len;
    stunkit_addr src, dst;
    CHECK_EQ(skd_proxy_parse(stun, sizeof(stun), &len, &src, &dst), SKD_PROXY_NONE);
    CHECK_EQ(skd_proxy_parse(tls, sizeof(tls), &len, &src, &dst), SKD_PROXY_NONE);
    CHECK_EQ(skd_proxy_parse((const uint8_t *)v1, sizeof(v1) - 1, &len, &src, &dst), SKD_PROXY_NONE);
    CHECK_EQ(skd_proxy_parse(sig, 5, &len, &src, &dst), SKD_PROXY_MORE); /* a prefix of the signature */
    uint8_t near[12];
    memcpy(near, sig, 12);
    near[11] ^= 1;
    CHECK_EQ(skd_proxy_parse(near, 12, &len, &src, &dst), SKD_PROXY_NONE);
}

static void refused(void)
{
    uint8_t block[64] = {203, 0, 113, 77, 198, 51, 100, 2, 0x9C, 0xBB, 0x01, 0xBB};
    uint8_t h[2048];
    size_t len;
    stunkit_addr src, dst;
    static const int bad[][3] = {
        {0x11, 0x11, 12}, /* version 1 in the binary form */
        {0x31, 0x11, 12}, /* version 3 */
        {0x22, 0x11, 12}, /* command 2 */
        {0x21, 0x12, 12}, /* DGRAM on a stream */
        {0x21, 0x31, 12}, /* UNIX */
        {0x21, 0x11, 8},  /* INET, the block too short */
        {0x21, 0x21, 12}, /* INET6, the block too short */
        {0x21, 0x41, 12}, /* an unknown family */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        size_t n = header(h, bad[i][0], bad[i][1], block, (size_t)bad[i][2]);
        CHECK_EQ(skd_proxy_parse(h, n, &len, &src, &dst), SKD_PROXY_BAD);
    }
    /* longer than the cap: refused from the 16 bytes that say so, not waited for */
    memcpy(h, sig, 12);
    h[12] = 0x21;
    h[13] = 0x11;
    h[14] = (uint8_t)((SKD_PROXY_MAX - 15) >> 8);
    h[15] = (uint8_t)(SKD_PROXY_MAX - 15);
    CHECK_EQ(skd_proxy_parse(h, 16, &len, &src, &dst), SKD_PROXY_BAD);
}

static void every_byte_changed(void)
{
    uint8_t block[12] = {203, 0, 113, 77, 198, 51, 100, 2, 0x9C, 0xBB, 0x01, 0xBB};
    uint8_t h[64], m[64];
    size_t n = header(h, 0x21, 0x11, block, sizeof(block)), len;
    stunkit_addr src, dst;
    long verdicts[4] = {0};
    for (size_t i = 0; i < n; i++)
        for (int v = 0; v < 256; v++) {
            memcpy(m, h, n);
            m[i] = (uint8_t)v;
            skd_proxy_result r = skd_proxy_parse(m, n, &len, &src, &dst);
            CHECK(r == SKD_PROXY_BAD || r == SKD_PROXY_MORE || r == SKD_PROXY_NONE || r == SKD_PROXY_HEADER);
            if (r == SKD_PROXY_HEADER)
                CHECK(len <= n);
            verdicts[r < 0 ? 3 : r]++;
        }
    CHECK(verdicts[3] > 0 && verdicts[2] > 0 && verdicts[1] > 0 && verdicts[0] > 0);
}

int main(void)
{
    RUN(v4_and_prefixes);
    RUN(v6_local_unspec);
    RUN(not_a_header);
    RUN(refused);
    RUN(every_byte_changed);
    TEST_END();
}
