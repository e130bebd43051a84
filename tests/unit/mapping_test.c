/*
 * mapping_test.c - the port-mapping race (stunkit/mapping.h) where no
 * router is needed: every bad setting refused with its reason, and a
 * "router" on loopback that runs neither PCP nor NAT-PMP (ICMP port
 * unreachable from 127.0.0.1:5351) gives one FAILED that says so. (The
 * race against real routers, miniupnpd with PCP, NAT-PMP and UPnP IGD, is
 * the NAT lab's: map_lab, map_quirks, map_double_nat, punch_lab.) UPnP is
 * not asked here: its SSDP search would leave the host.
 */
#include <poll.h>
#include <string.h>

#include "stunkit/stunkit.h"
#include "test.h"

static stunkit_mapping_config base(void)
{
    stunkit_mapping_config c;
    memset(&c, 0, sizeof(c));
    c.size = sizeof(c);
    stunkit_addr_parse("127.0.0.1", 0, &c.gateway);
    stunkit_addr_parse("127.0.0.1", 40000, &c.internal);
    c.protocol = 17;
    c.method = STUNKIT_PORTMAP_PCP;
    c.timeout_ms = 3000;
    return c;
}

static void refused(stunkit_mapping_config c, const char *want)
{
    int err = 0;
    char why[200] = "";
    stunkit_mapping *m = stunkit_mapping_start(&c, stunkit_now_ms(), &err, why, sizeof(why));
    CHECK(m == NULL);
    CHECK_EQ(err, STUNKIT_ERR_INVAL);
    CHECK(strstr(why, want) != NULL);
    if (!strstr(why, want))
        fprintf(stderr, "  why: '%s', want '%s'\n", why, want);
    stunkit_mapping_free(m);
}

static void bad_settings(void)
{
    stunkit_mapping_config c = base();
    c.internal.port = 0;
    refused(c, "a port");
    c = base();
    stunkit_addr_parse("::1", 40000, &c.internal);
    refused(c, "one family");
    c = base();
    c.size = 3;
    refused(c, "size");
    c = base();
    stunkit_addr_parse("::1", 0, &c.gateway);
    stunkit_addr_parse("::1", 40000, &c.internal);
    c.method = STUNKIT_PORTMAP_UPNP;
    refused(c, stunkit_upnp_available() ? "IPv4" : "not in this build");
    c.method = STUNKIT_PORTMAP_NATPMP;
    refused(c, "NAT-PMP");
}

/* Nothing listens on the gateway's 5351: ICMP says so at once (no waiting
 * out the timeout), one FAILED with PCP's reason, UPnP not asked. */
static void nobody_maps(void)
{
    stunkit_mapping_config c = base();
    int err = 0;
    char why[200];
    uint64_t t0 = stunkit_now_ms();
    stunkit_mapping *m = stunkit_mapping_start(&c, t0, &err, why, sizeof(why));
    CHECK(m != NULL);
    if (!m)
        return;
    CHECK(stunkit_mapping_fd(m) >= 0);
    CHECK_EQ(stunkit_mapping_method(m), STUNKIT_PORTMAP_AUTO);
    stunkit_mapping_event ev;
    int got = 0, events = 0;
    while (!got && stunkit_now_ms() - t0 < 5000) {
        uint64_t now = stunkit_now_ms();
        while (stunkit_mapping_poll(m, now, &ev) == 1) {
            events++;
            got = ev.e.o.event == STUNKIT_PORTMAP_EVENT_FAILED;
        }
        uint64_t next = stunkit_mapping_timeout(m);
        struct pollfd pf = {stunkit_mapping_fd(m), POLLIN, 0};
        (void)poll(&pf, 1, next <= now ? 0 : next - now > 100 ? 100 : (int)(next - now));
    }
    CHECK(got);
    CHECK_EQ(events, 1);
    CHECK(stunkit_now_ms() - t0 < c.timeout_ms); /* ICMP, not the timeout */
    CHECK(ev.pcp_asked && !ev.upnp_asked);
    CHECK_EQ(ev.pcp_result, -1);
    CHECK(strstr(ev.pcp_reason, "ICMP") != NULL);
    CHECK_EQ(stunkit_mapping_delete(m, stunkit_now_ms()), STUNKIT_ERR_STATE); /* nothing to delete */
    CHECK_EQ(stunkit_mapping_poll(m, stunkit_now_ms(), &ev), 0); /* and nothing more to say */
    stunkit_mapping_close(m, 100);
    stunkit_mapping_close(NULL, 0);
}

int main(void)
{
    RUN(bad_settings);
    RUN(nobody_maps);
    TEST_END();
}
