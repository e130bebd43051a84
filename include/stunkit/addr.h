/*
 * stunkit/addr.h - transport addresses (IP + port) as the codec sees them,
 * their text form ("192.0.2.1:32853", "[2001:db8::1]:32853") and conversion
 * to and from struct sockaddr for the socket drivers.
 */
#ifndef STUNKIT_ADDR_H
#define STUNKIT_ADDR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "stunkit/export.h"

#ifdef __cplusplus
extern "C" {
#endif

#define STUNKIT_AF_INET 4
#define STUNKIT_AF_INET6 6

typedef struct stunkit_addr {
    uint8_t family; /* STUNKIT_AF_INET, STUNKIT_AF_INET6, or 0 for none */
    uint16_t port;  /* host byte order */
    uint8_t ip[16]; /* network byte order; IPv4 uses the first 4 bytes */
} stunkit_addr;

/* Longest text form: "[" + 45 + "]:" + 5 + NUL. */
#define STUNKIT_ADDRSTRLEN 56

/* Writes "192.0.2.1:32853" or "[2001:db8::1]:32853"; returns the length or
 * STUNKIT_ERR_NOBUF / STUNKIT_ERR_BAD_FAMILY. */
STUNKIT_API int stunkit_addr_format(const stunkit_addr *a, char *buf, size_t cap);
/* The IP alone ("2001:db8::1"), no brackets, no port. */
STUNKIT_API int stunkit_addr_format_ip(const stunkit_addr *a, char *buf, size_t cap);

/*
 * Parses a numeric address: "ADDR", "ADDR:PORT", "[V6ADDR]:PORT", "[V6ADDR]"
 * or a bare IPv6 address. default_port is used when no port is given.
 * Returns 0 or STUNKIT_ERR_BAD_ADDRESS (no DNS: names are not addresses).
 */
STUNKIT_API int stunkit_addr_parse(const char *text, uint16_t default_port, stunkit_addr *out);

STUNKIT_API int stunkit_addr_equal(const stunkit_addr *a, const stunkit_addr *b);
STUNKIT_API int stunkit_addr_ip_equal(const stunkit_addr *a, const stunkit_addr *b);

/* The transports STUN runs over: one enum for the library, the machines and
 * the server. */
typedef enum stunkit_transport {
    STUNKIT_UDP = 0,
    STUNKIT_TCP = 1,
    STUNKIT_TLS = 2,
    STUNKIT_DTLS = 3
} stunkit_transport;

/* sockaddr conversion. An IPv4-mapped IPv6 sockaddr (::ffff:a.b.c.d) becomes
 * an IPv4 address. */
STUNKIT_API int stunkit_addr_from_sockaddr(stunkit_addr *out, const struct sockaddr *sa);
/* Returns the sockaddr length, or a negative error. */
STUNKIT_API int stunkit_addr_to_sockaddr(const stunkit_addr *a, struct sockaddr_storage *ss);

#ifdef __cplusplus
}
#endif
#endif
