/* gateway.c - this host's default gateway (for the port mapping protocols:
 * PCP and NAT-PMP talk to it, UPnP trusts only it). */
#include <stdio.h>
#include <string.h>

#include "stunkit/client.h"

int stunkit_default_gateway(int family, stunkit_addr *out)
{
    char line[512];
    memset(out, 0, sizeof(*out));
    if (family == STUNKIT_AF_INET6) {
        FILE *f = fopen("/proc/net/ipv6_route", "r");
        if (!f)
            return -1;
        while (fgets(line, sizeof(line), f)) {
            char dst[33], gw[33];
            unsigned dlen;
            if (sscanf(line, "%32s %x %*s %*s %32s", dst, &dlen, gw) == 3 && dlen == 0 &&
                !strcmp(dst, "00000000000000000000000000000000") && strcmp(gw, "00000000000000000000000000000000")) {
                out->family = STUNKIT_AF_INET6;
                for (int i = 0; i < 16; i++) {
                    unsigned b;
                    sscanf(gw + 2 * i, "%2x", &b);
                    out->ip[i] = (uint8_t)b;
                }
                break;
            }
        }
        fclose(f);
        return out->family ? 0 : -1;
    }
    FILE *f = fopen("/proc/net/route", "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f)) {
        char ifname[64];
        unsigned dst, gw, flags;
        if (sscanf(line, "%63s %x %x %x", ifname, &dst, &gw, &flags) == 4 && dst == 0 && gw != 0 && (flags & 2)) {
            out->family = STUNKIT_AF_INET;
            memcpy(out->ip, &gw, 4); /* the kernel prints it in network order, read as a host int */
            break;
        }
    }
    fclose(f);
    return out->family ? 0 : -1;
}
