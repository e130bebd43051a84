/*
 * upnp.c - UPnP IGD port mappings through libminiupnpc (see stunkit/upnp.h).
 *
 *   stunkit_upnp_open()   SSDP M-SEARCH (IGD:2, then IGD:1) -> the answers
 *                         whose LOCATION names the gateway -> the device
 *                         description (libminiupnpc parses it) -> control URL
 *   stunkit_upnp_add()    SOAP AddPortMapping / AddAnyPortMapping
 *   stunkit_upnp_delete() SOAP DeletePortMapping
 *   stunkit_upnp_list()   SOAP GetGenericPortMappingEntry 0, 1, ... until 713
 *
 * The router's answers are parsed by libminiupnpc (its fixed-size fields
 * cap what a device can write); what reaches us is checked again here:
 * ports and addresses are parsed, never trusted as text.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stunkit/client.h"
#include "stunkit/error.h"
#include "stunkit/upnp.h"

/* UPnP IGD error codes (WANIPConnection:2 service, 2.5.4) */
#define UPNP_E_NO_SUCH_ENTRY 714
#define UPNP_E_INDEX_INVALID 713
#define UPNP_E_CONFLICT 718
#define UPNP_E_SAME_PORT 724
#define UPNP_E_PERMANENT_ONLY 725
#define UPNP_MAX_LIST 1024u   /* a router's list is read this far at most */
#define UPNP_MOVE_TRIES 8     /* IGD v1: other ports tried after 718 */

const char *stunkit_upnp_error_name(int code)
{
    switch (code) {
    case 402: return "InvalidArgs";
    case 501: return "ActionFailed";
    case 606: return "ActionNotAuthorized";
    case 713: return "SpecifiedArrayIndexInvalid";
    case 714: return "NoSuchEntryInArray";
    case 715: return "WildCardNotPermittedInSrcIP";
    case 716: return "WildCardNotPermittedInExtPort";
    case 718: return "ConflictInMappingEntry";
    case 724: return "SamePortValuesRequired";
    case 725: return "OnlyPermanentLeasesSupported";
    case 726: return "RemoteHostOnlySupportsWildcard";
    case 727: return "ExternalPortOnlySupportsWildcard";
    case 728: return "NoPortMapsAvailable";
    case 729: return "ConflictWithOtherMechanisms";
    case 732: return "WildCardNotPermittedInIntPort";
    case -1: return "no valid answer";
    case -3: return "HTTP error";
    case -4: return "invalid answer";
    }
    return "";
}

#ifndef STUNKIT_HAVE_MINIUPNPC

int stunkit_upnp_available(void)
{
    return 0;
}

static int not_built(char *why, size_t why_len)
{
    if (why && why_len)
        snprintf(why, why_len, "UPnP IGD is not in this build (libstunkit was built without libminiupnpc)");
    return STUNKIT_ERR_UNSUPPORTED;
}

int stunkit_upnp_open(stunkit_upnp **out, const stunkit_addr *gateway, int timeout_ms, char *why, size_t why_len)
{
    (void)gateway, (void)timeout_ms;
    *out = NULL;
    return not_built(why, why_len);
}
const stunkit_upnp_info *stunkit_upnp_get_info(const stunkit_upnp *u)
{
    (void)u;
    return NULL;
}
void stunkit_upnp_close(stunkit_upnp *u)
{
    (void)u;
}
int stunkit_upnp_add(stunkit_upnp *u, stunkit_upnp_mapping *m, int *e, char *why, size_t why_len)
{
    (void)u, (void)m, (void)e;
    return not_built(why, why_len);
}
int stunkit_upnp_renew(stunkit_upnp *u, stunkit_upnp_mapping *m, int *e, char *why, size_t why_len)
{
    (void)u, (void)m, (void)e;
    return not_built(why, why_len);
}
int stunkit_upnp_delete(stunkit_upnp *u, int protocol, uint16_t port, int *e, char *why, size_t why_len)
{
    (void)u, (void)protocol, (void)port, (void)e;
    return not_built(why, why_len);
}
int stunkit_upnp_list(stunkit_upnp *u, stunkit_upnp_mapping *out, size_t max)
{
    (void)u, (void)out, (void)max;
    return STUNKIT_ERR_UNSUPPORTED;
}
int stunkit_upnp_pinhole_add(stunkit_upnp *u, int protocol, const stunkit_addr *internal, uint32_t lifetime_s,
                             char *uid, size_t uid_len, int *e, char *why, size_t why_len)
{
    (void)u, (void)protocol, (void)internal, (void)lifetime_s, (void)uid, (void)uid_len, (void)e;
    return not_built(why, why_len);
}
int stunkit_upnp_pinhole_update(stunkit_upnp *u, const char *uid, uint32_t lifetime_s, int *e)
{
    (void)u, (void)uid, (void)lifetime_s, (void)e;
    return STUNKIT_ERR_UNSUPPORTED;
}
int stunkit_upnp_pinhole_delete(stunkit_upnp *u, const char *uid, int *e)
{
    (void)u, (void)uid, (void)e;
    return STUNKIT_ERR_UNSUPPORTED;
}

#else /* STUNKIT_HAVE_MINIUPNPC */

#include <arpa/inet.h>
#include <miniupnpc/miniupnpc.h>
#include <miniupnpc/upnpcommands.h>
#include <sys/socket.h>
#include <unistd.h>

struct stunkit_upnp {
    stunkit_upnp_info info;
    stunkit_addr gateway;
    struct UPNPUrls urls;
    struct IGDdatas data;
};

int stunkit_upnp_available(void)
{
    return 1;
}

static void say(char *why, size_t why_len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void say(char *why, size_t why_len, const char *fmt, ...)
{
    if (!why || !why_len)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, why_len, fmt, ap);
    va_end(ap);
}

/* The host of an http:// URL ("http://192.0.2.1:5000/x", "http://[2001:db8::1]:80/")
 * as an address; -1 when it is not a literal address. */
static int url_host(const char *url, stunkit_addr *out)
{
    char host[64];
    const char *p = url ? strstr(url, "://") : NULL;
    if (!p)
        return -1;
    p += 3;
    size_t n;
    if (*p == '[') {
        p++;
        n = strcspn(p, "]%");
    } else {
        n = strcspn(p, ":/");
    }
    if (n == 0 || n >= sizeof(host))
        return -1;
    memcpy(host, p, n);
    host[n] = 0;
    return stunkit_addr_parse(host, 0, out) == 0 ? 0 : -1;
}

static int at_gateway(const stunkit_upnp *u, const char *url)
{
    stunkit_addr a;
    return url && *url && url_host(url, &a) == 0 && stunkit_addr_ip_equal(&a, &u->gateway);
}

/* This host's address toward the gateway (the SSDP interface). */
static int local_toward(const stunkit_addr *gw, stunkit_addr *out)
{
    struct sockaddr_storage ss, mine;
    stunkit_addr to = *gw;
    to.port = 1900;
    int sl = stunkit_addr_to_sockaddr(&to, &ss);
    int fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    socklen_t ml = sizeof(mine);
    int rv = fd >= 0 && connect(fd, (struct sockaddr *)&ss, (socklen_t)sl) == 0 &&
                     getsockname(fd, (struct sockaddr *)&mine, &ml) == 0
                 ? stunkit_addr_from_sockaddr(out, (struct sockaddr *)&mine)
                 : -1;
    if (fd >= 0)
        close(fd);
    return rv == 0 ? 0 : -1;
}

int stunkit_upnp_open(stunkit_upnp **out, const stunkit_addr *gateway, int timeout_ms, char *why, size_t why_len)
{
    *out = NULL;
    if (!gateway || !gateway->family || timeout_ms <= 0) {
        say(why, why_len, "no gateway to ask");
        return STUNKIT_ERR_INVAL;
    }
    stunkit_upnp *u = calloc(1, sizeof(*u));
    if (!u)
        return STUNKIT_ERR_NOMEM;
    u->gateway = *gateway;
    u->gateway.port = 0;
    char gtext[STUNKIT_ADDRSTRLEN], iface[STUNKIT_ADDRSTRLEN];
    stunkit_addr_format_ip(gateway, gtext, sizeof(gtext));
    const char *mif = NULL;
    if (local_toward(gateway, &u->info.local) == 0 && gateway->family == STUNKIT_AF_INET) {
        stunkit_addr_format_ip(&u->info.local, iface, sizeof(iface));
        mif = iface; /* M-SEARCH leaves on the interface toward the gateway */
    }
    /* IGD:2 first; a v1 device answers the second search. Each search
     * waits up to half the time for answers. */
    static const char *const types[] = {"urn:schemas-upnp-org:device:InternetGatewayDevice:2",
                                        "urn:schemas-upnp-org:device:InternetGatewayDevice:1", NULL};
    int err = 0;
    struct UPNPDev *devs = upnpDiscoverDevices(types, timeout_ms / 2 > 0 ? timeout_ms / 2 : 1, mif, NULL,
                                               UPNP_LOCAL_PORT_ANY, gateway->family == STUNKIT_AF_INET6, 2, &err, 0);
    if (!devs) {
        say(why, why_len, "no UPnP device answered from %s within %d ms", gtext, timeout_ms);
        free(u);
        return STUNKIT_ERR_TIMEOUT;
    }
    /* Only the gateway: one answer at a time, the others unlinked, so a
     * device elsewhere on the network is never contacted. */
    int best = 0, seen_elsewhere = 0;
    char elsewhere[160] = "";
    for (struct UPNPDev *d = devs; d; d = d->pNext) {
        if (!at_gateway(u, d->descURL)) {
            if (!seen_elsewhere++)
                snprintf(elsewhere, sizeof(elsewhere), "%s", d->descURL ? d->descURL : "?");
            continue;
        }
        struct UPNPDev *next = d->pNext;
        d->pNext = NULL;
        struct UPNPUrls urls;
        struct IGDdatas data;
        char lan[64] = "";
        memset(&urls, 0, sizeof(urls));
        memset(&data, 0, sizeof(data));
        int r = UPNP_GetValidIGD(d, &urls, &data, lan, sizeof(lan));
        d->pNext = next;
        /* 1 connected IGD, 2 an IGD "not connected" (still asked), 3 a
         * UPnP device that is not an IGD; a control URL elsewhere is refused */
        int usable = (r == 1 || r == 2) && at_gateway(u, urls.controlURL);
        if (usable && (best == 0 || r < best)) {
            if (best)
                FreeUPNPUrls(&u->urls);
            best = r;
            u->urls = urls;
            u->data = data;
            snprintf(u->info.location, sizeof(u->info.location), "%s", d->descURL);
        } else if (r) {
            FreeUPNPUrls(&urls);
        }
        if (best == 1)
            break;
    }
    freeUPNPDevlist(devs);
    if (!best) {
        if (seen_elsewhere)
            say(why, why_len, "UPnP answered from elsewhere (%s), not from the gateway %s: not used", elsewhere,
                gtext);
        else
            say(why, why_len, "the UPnP device at %s is not an Internet Gateway Device", gtext);
        free(u);
        return STUNKIT_ERR_NOT_FOUND;
    }
    u->info.connected = best == 1;
    const char *st = u->data.first.servicetype;
    const char *svc = strstr(st, ":service:");
    snprintf(u->info.service, sizeof(u->info.service), "%.47s", svc ? svc + 9 : st);
    size_t sl = strlen(st);
    u->info.igd_version = sl && st[sl - 1] == '2' ? 2 : 1;
    u->info.pinholes = u->urls.controlURL_6FC && at_gateway(u, u->urls.controlURL_6FC) &&
                       u->data.IPv6FC.servicetype[0];
    char ext[40] = "";
    stunkit_addr e;
    if (UPNP_GetExternalIPAddress(u->urls.controlURL, st, ext) == 0 && stunkit_addr_parse(ext, 0, &e) == 0) {
        static const uint8_t zero[16];
        if (memcmp(e.ip, zero, e.family == STUNKIT_AF_INET ? 4 : 16) != 0)
            u->info.external = e;
    }
    *out = u;
    return 0;
}

const stunkit_upnp_info *stunkit_upnp_get_info(const stunkit_upnp *u)
{
    return u ? &u->info : NULL;
}

void stunkit_upnp_close(stunkit_upnp *u)
{
    if (!u)
        return;
    FreeUPNPUrls(&u->urls);
    free(u);
}

static const char *proto_name(int protocol)
{
    return protocol == 6 ? "TCP" : "UDP";
}

static void refused(char *why, size_t why_len, const char *what, int r)
{
    const char *name = stunkit_upnp_error_name(r);
    say(why, why_len, "the router refused %s: UPnP error %d%s%s%s", what, r, *name ? " (" : "", name,
        *name ? ")" : "");
}

/* AddPortMapping for exactly `port`, falling back to a permanent lease on
 * 725. The UPnP error, or 0. */
static int add_exact(stunkit_upnp *u, stunkit_upnp_mapping *m, uint16_t port)
{
    char ext[8], in[8], client[STUNKIT_ADDRSTRLEN], lease[16];
    snprintf(ext, sizeof(ext), "%u", port);
    snprintf(in, sizeof(in), "%u", m->internal.port);
    stunkit_addr_format_ip(&m->internal, client, sizeof(client));
    snprintf(lease, sizeof(lease), "%u", m->permanent ? 0u : m->lifetime_s);
    const char *desc = m->description[0] ? m->description : "stunkit";
    int r = UPNP_AddPortMapping(u->urls.controlURL, u->data.first.servicetype, ext, in, client, desc,
                                proto_name(m->protocol), NULL, lease);
    if (r == UPNP_E_PERMANENT_ONLY && !m->permanent) {
        /* "OnlyPermanentLeasesSupported": ask for a permanent one, which
         * the caller removes when done */
        m->permanent = 1;
        r = UPNP_AddPortMapping(u->urls.controlURL, u->data.first.servicetype, ext, in, client, desc,
                                proto_name(m->protocol), NULL, "0");
    }
    if (r == 0) {
        m->external_port = port;
        if (m->permanent)
            m->lifetime_s = 0;
    }
    return r;
}

/* The lease the router holds for the mapping, when it tells. */
static void read_lease(stunkit_upnp *u, stunkit_upnp_mapping *m)
{
    char ext[8], client[40] = "", in[8] = "", desc[80] = "", en[4] = "", dur[16] = "";
    snprintf(ext, sizeof(ext), "%u", m->external_port);
    if (UPNP_GetSpecificPortMappingEntry(u->urls.controlURL, u->data.first.servicetype, ext, proto_name(m->protocol),
                                         NULL, client, in, desc, en, dur) != 0)
        return;
    char *end;
    unsigned long v = strtoul(dur, &end, 10);
    if (end != dur && !*end && v <= UINT32_MAX)
        m->lifetime_s = (uint32_t)v;
    if (m->lifetime_s == 0)
        m->permanent = 1;
}

static int check_mapping(const stunkit_upnp *u, const stunkit_upnp_mapping *m, char *why, size_t why_len)
{
    if (!u || !m || (m->protocol != 6 && m->protocol != 17) || m->internal.family != STUNKIT_AF_INET ||
        !m->internal.port) {
        say(why, why_len, "a UPnP port mapping needs UDP or TCP and an IPv4 client address and port");
        return STUNKIT_ERR_INVAL;
    }
    return 0;
}

int stunkit_upnp_add(stunkit_upnp *u, stunkit_upnp_mapping *m, int *upnp_error, char *why, size_t why_len)
{
    int rv = check_mapping(u, m, why, why_len);
    if (rv)
        return rv;
    m->permanent = m->moved = 0;
    uint16_t want = m->external_port ? m->external_port : m->internal.port;
    int r = add_exact(u, m, want);
    if (r == UPNP_E_CONFLICT) {
        /* 718: another host holds the port. IGD v2 lets the router pick;
         * on v1 a few other ports are tried. */
        if (u->info.igd_version == 2) {
            char ext[8], in[8], client[STUNKIT_ADDRSTRLEN], lease[16], got[8] = "";
            snprintf(ext, sizeof(ext), "%u", want);
            snprintf(in, sizeof(in), "%u", m->internal.port);
            stunkit_addr_format_ip(&m->internal, client, sizeof(client));
            snprintf(lease, sizeof(lease), "%u", m->lifetime_s);
            r = UPNP_AddAnyPortMapping(u->urls.controlURL, u->data.first.servicetype, ext, in, client,
                                       m->description[0] ? m->description : "stunkit", proto_name(m->protocol),
                                       NULL, lease, got);
            char *end;
            unsigned long p = strtoul(got, &end, 10);
            if (r == 0 && (end == got || *end || p == 0 || p > 65535)) {
                say(why, why_len, "the router answered AddAnyPortMapping with no valid port ('%.8s')", got);
                return STUNKIT_ERR_UNEXPECTED;
            }
            if (r == 0)
                m->external_port = (uint16_t)p;
        } else {
            for (int i = 0; i < UPNP_MOVE_TRIES && r == UPNP_E_CONFLICT; i++) {
                uint8_t rnd[2];
                stunkit_random_os(NULL, rnd, 2);
                r = add_exact(u, m, (uint16_t)(49152u + ((unsigned)rnd[0] << 8 | rnd[1]) % 16384u));
            }
        }
        m->moved = r == 0;
    }
    if (upnp_error)
        *upnp_error = r;
    if (r != 0) {
        refused(why, why_len, "the mapping", r);
        return STUNKIT_ERR_REFUSED;
    }
    if (!m->permanent)
        read_lease(u, m);
    return 0;
}

int stunkit_upnp_renew(stunkit_upnp *u, stunkit_upnp_mapping *m, int *upnp_error, char *why, size_t why_len)
{
    int rv = check_mapping(u, m, why, why_len);
    if (rv)
        return rv;
    int r = add_exact(u, m, m->external_port);
    if (upnp_error)
        *upnp_error = r;
    if (r != 0) {
        refused(why, why_len, "to renew the mapping", r);
        return STUNKIT_ERR_REFUSED;
    }
    if (!m->permanent)
        read_lease(u, m);
    return 0;
}

int stunkit_upnp_delete(stunkit_upnp *u, int protocol, uint16_t external_port, int *upnp_error, char *why,
                        size_t why_len)
{
    if (!u || (protocol != 6 && protocol != 17) || !external_port)
        return STUNKIT_ERR_INVAL;
    char ext[8];
    snprintf(ext, sizeof(ext), "%u", external_port);
    int r = UPNP_DeletePortMapping(u->urls.controlURL, u->data.first.servicetype, ext, proto_name(protocol), NULL);
    if (upnp_error)
        *upnp_error = r;
    if (r != 0) {
        refused(why, why_len, "to delete the mapping", r);
        return r == UPNP_E_NO_SUCH_ENTRY ? STUNKIT_ERR_NOT_FOUND : STUNKIT_ERR_REFUSED;
    }
    return 0;
}

static int parse_port(const char *s, uint16_t *out)
{
    char *end;
    unsigned long v = strtoul(s, &end, 10);
    if (end == s || *end || v == 0 || v > 65535)
        return -1;
    *out = (uint16_t)v;
    return 0;
}

int stunkit_upnp_list(stunkit_upnp *u, stunkit_upnp_mapping *out, size_t max)
{
    if (!u || (!out && max))
        return STUNKIT_ERR_INVAL;
    size_t n = 0;
    for (unsigned i = 0; i < UPNP_MAX_LIST && n < max; i++) {
        char idx[8], ext[8] = "", client[40] = "", in[8] = "", proto[4] = "", desc[80] = "", en[4] = "",
                     rhost[64] = "", dur[16] = "";
        snprintf(idx, sizeof(idx), "%u", i);
        int r = UPNP_GetGenericPortMappingEntry(u->urls.controlURL, u->data.first.servicetype, idx, ext, client, in,
                                                proto, desc, en, rhost, dur);
        if (r == UPNP_E_INDEX_INVALID || r == UPNP_E_NO_SUCH_ENTRY)
            break; /* the end of the list */
        if (r != 0)
            return n ? (int)n : STUNKIT_ERR_REFUSED;
        stunkit_upnp_mapping *m = &out[n];
        memset(m, 0, sizeof(*m));
        uint16_t inport;
        char *end;
        unsigned long life = strtoul(dur, &end, 10);
        /* an entry that does not parse is skipped, not guessed at */
        if (parse_port(ext, &m->external_port) != 0 || parse_port(in, &inport) != 0 ||
            stunkit_addr_parse(client, inport, &m->internal) != 0 || end == dur || *end || life > UINT32_MAX)
            continue;
        m->internal.port = inport;
        m->protocol = !strcmp(proto, "TCP") ? 6 : !strcmp(proto, "UDP") ? 17 : 0;
        if (!m->protocol)
            continue;
        m->lifetime_s = (uint32_t)life;
        m->permanent = life == 0;
        m->enabled = !strcmp(en, "1");
        snprintf(m->description, sizeof(m->description), "%.63s", desc);
        n++;
    }
    return (int)n;
}

int stunkit_upnp_pinhole_add(stunkit_upnp *u, int protocol, const stunkit_addr *internal, uint32_t lifetime_s,
                             char *uid, size_t uid_len, int *upnp_error, char *why, size_t why_len)
{
    if (!u || !internal || internal->family != STUNKIT_AF_INET6 || !internal->port || !uid || uid_len < 8) {
        say(why, why_len, "a pinhole needs an IPv6 address and port");
        return STUNKIT_ERR_INVAL;
    }
    if (!u->info.pinholes) {
        say(why, why_len, "the router offers no IPv6 firewall control (WANIPv6FirewallControl)");
        return STUNKIT_ERR_UNSUPPORTED;
    }
    char client[STUNKIT_ADDRSTRLEN], in[8], lease[16], id[8] = "";
    stunkit_addr_format_ip(internal, client, sizeof(client));
    snprintf(in, sizeof(in), "%u", internal->port);
    snprintf(lease, sizeof(lease), "%u", lifetime_s);
    /* RemoteHost empty and RemotePort 0: from anywhere */
    int r = UPNP_AddPinhole(u->urls.controlURL_6FC, u->data.IPv6FC.servicetype, "", "0", client, in,
                            protocol == 6 ? "6" : "17", lease, id);
    if (upnp_error)
        *upnp_error = r;
    if (r != 0) {
        refused(why, why_len, "the pinhole", r);
        return STUNKIT_ERR_REFUSED;
    }
    snprintf(uid, uid_len, "%s", id);
    return 0;
}

int stunkit_upnp_pinhole_update(stunkit_upnp *u, const char *uid, uint32_t lifetime_s, int *upnp_error)
{
    if (!u || !uid || !u->info.pinholes)
        return STUNKIT_ERR_INVAL;
    char lease[16];
    snprintf(lease, sizeof(lease), "%u", lifetime_s);
    int r = UPNP_UpdatePinhole(u->urls.controlURL_6FC, u->data.IPv6FC.servicetype, uid, lease);
    if (upnp_error)
        *upnp_error = r;
    return r ? STUNKIT_ERR_REFUSED : 0;
}

int stunkit_upnp_pinhole_delete(stunkit_upnp *u, const char *uid, int *upnp_error)
{
    if (!u || !uid || !u->info.pinholes)
        return STUNKIT_ERR_INVAL;
    int r = UPNP_DeletePinhole(u->urls.controlURL_6FC, u->data.IPv6FC.servicetype, uid);
    if (upnp_error)
        *upnp_error = r;
    return r ? STUNKIT_ERR_REFUSED : 0;
}

#endif /* STUNKIT_HAVE_MINIUPNPC */
