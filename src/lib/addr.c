/* addr.c - text and sockaddr forms of stunkit_addr. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stunkit/addr.h"
#include "stunkit/error.h"

int stunkit_addr_format_ip(const stunkit_addr *a, char *buf, size_t cap)
{
    char tmp[INET6_ADDRSTRLEN];
    if (a->family == STUNKIT_AF_INET)
        inet_ntop(AF_INET, a->ip, tmp, sizeof(tmp));
    else if (a->family == STUNKIT_AF_INET6)
        inet_ntop(AF_INET6, a->ip, tmp, sizeof(tmp));
    else
        return STUNKIT_ERR_BAD_FAMILY;
    size_t n = strlen(tmp);
    if (n + 1 > cap)
        return STUNKIT_ERR_NOBUF;
    memcpy(buf, tmp, n + 1);
    return (int)n;
}

int stunkit_addr_format(const stunkit_addr *a, char *buf, size_t cap)
{
    char ip[INET6_ADDRSTRLEN];
    int rv = stunkit_addr_format_ip(a, ip, sizeof(ip));
    if (rv < 0)
        return rv;
    int n = snprintf(buf, cap, a->family == STUNKIT_AF_INET6 ? "[%s]:%u" : "%s:%u", ip, (unsigned)a->port);
    if (n < 0 || (size_t)n >= cap)
        return STUNKIT_ERR_NOBUF;
    return n;
}

static int parse_port(const char *s, uint16_t *port)
{
    char *end;
    if (*s < '0' || *s > '9')
        return STUNKIT_ERR_BAD_ADDRESS;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || *end || v > 65535)
        return STUNKIT_ERR_BAD_ADDRESS;
    *port = (uint16_t)v;
    return 0;
}

int stunkit_addr_parse(const char *text, uint16_t default_port, stunkit_addr *out)
{
    char host[INET6_ADDRSTRLEN + 1];
    const char *port_s = NULL;
    size_t hlen;
    int bracketed = 0;

    memset(out, 0, sizeof(*out));
    if (!text || !*text)
        return STUNKIT_ERR_BAD_ADDRESS;
    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (!close)
            return STUNKIT_ERR_BAD_ADDRESS;
        hlen = (size_t)(close - text - 1);
        if (close[1] == ':')
            port_s = close + 2;
        else if (close[1] != '\0')
            return STUNKIT_ERR_BAD_ADDRESS;
        text++;
        bracketed = 1;
    } else {
        const char *colon = strchr(text, ':');
        if (colon && strchr(colon + 1, ':')) {
            hlen = strlen(text); /* bare IPv6, no port */
        } else if (colon) {
            hlen = (size_t)(colon - text);
            port_s = colon + 1;
        } else {
            hlen = strlen(text);
        }
    }
    if (hlen == 0 || hlen >= sizeof(host))
        return STUNKIT_ERR_BAD_ADDRESS;
    memcpy(host, text, hlen);
    host[hlen] = '\0';
    out->port = default_port;
    if (port_s && parse_port(port_s, &out->port) != 0)
        return STUNKIT_ERR_BAD_ADDRESS;
    if (inet_pton(AF_INET, host, out->ip) == 1)
        out->family = STUNKIT_AF_INET;
    else if (inet_pton(AF_INET6, host, out->ip) == 1)
        out->family = STUNKIT_AF_INET6;
    else
        return STUNKIT_ERR_BAD_ADDRESS;
    /* "[192.0.2.1]:80" is not a thing. */
    if (bracketed && out->family != STUNKIT_AF_INET6)
        return STUNKIT_ERR_BAD_ADDRESS;
    return 0;
}

int stunkit_addr_ip_equal(const stunkit_addr *a, const stunkit_addr *b)
{
    if (a->family != b->family)
        return 0;
    return memcmp(a->ip, b->ip, a->family == STUNKIT_AF_INET ? 4 : 16) == 0;
}

int stunkit_addr_equal(const stunkit_addr *a, const stunkit_addr *b)
{
    return a->port == b->port && stunkit_addr_ip_equal(a, b);
}

int stunkit_addr_from_sockaddr(stunkit_addr *out, const struct sockaddr *sa)
{
    static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    memset(out, 0, sizeof(*out));
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s = (const struct sockaddr_in *)(const void *)sa;
        out->family = STUNKIT_AF_INET;
        memcpy(out->ip, &s->sin_addr, 4);
        out->port = ntohs(s->sin_port);
        return 0;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)(const void *)sa;
        out->port = ntohs(s->sin6_port);
        if (memcmp(&s->sin6_addr, v4mapped, 12) == 0) {
            out->family = STUNKIT_AF_INET;
            memcpy(out->ip, (const uint8_t *)&s->sin6_addr + 12, 4);
        } else {
            out->family = STUNKIT_AF_INET6;
            memcpy(out->ip, &s->sin6_addr, 16);
        }
        return 0;
    }
    return STUNKIT_ERR_BAD_FAMILY;
}

int stunkit_addr_to_sockaddr(const stunkit_addr *a, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    if (a->family == STUNKIT_AF_INET) {
        struct sockaddr_in *s = (struct sockaddr_in *)(void *)ss;
        s->sin_family = AF_INET;
        s->sin_port = htons(a->port);
        memcpy(&s->sin_addr, a->ip, 4);
        return (int)sizeof(*s);
    }
    if (a->family == STUNKIT_AF_INET6) {
        struct sockaddr_in6 *s = (struct sockaddr_in6 *)(void *)ss;
        s->sin6_family = AF_INET6;
        s->sin6_port = htons(a->port);
        memcpy(&s->sin6_addr, a->ip, 16);
        return (int)sizeof(*s);
    }
    return STUNKIT_ERR_BAD_FAMILY;
}
