/* error.c - stunkit_strerror(), stunkit_err_name() and wire reason phrases,
 * all generated from the tables in stunkit/error.h. */
#include "stunkit/error.h"

#include <stddef.h>

const char *stunkit_strerror(int err)
{
    switch (err) {
    case STUNKIT_OK:
        return "success";
#define STUNKIT__ERR_STR(name, val, msg)                                                                               \
    case (val):                                                                                                        \
        return msg;
        STUNKIT_ERRNO_MAP(STUNKIT__ERR_STR)
#undef STUNKIT__ERR_STR
    default:
        return "unknown error";
    }
}

const char *stunkit_err_name(int err)
{
    switch (err) {
    case STUNKIT_OK:
        return "OK";
#define STUNKIT__ERR_NAME(name, val, msg)                                                                              \
    case (val):                                                                                                        \
        return #name;
        STUNKIT_ERRNO_MAP(STUNKIT__ERR_NAME)
#undef STUNKIT__ERR_NAME
    default:
        return "UNKNOWN";
    }
}

/* Reason phrases as the RFCs spell them (RFC 8489 14.8, RFC 8656 18). */
const char *stunkit_code_reason(int code)
{
    switch (code) {
    case 300: return "Try Alternate";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 405: return "Mobility Forbidden";
    case 420: return "Unknown Attribute";
    case 437: return "Allocation Mismatch";
    case 438: return "Stale Nonce";
    case 440: return "Address Family not Supported";
    case 441: return "Wrong Credentials";
    case 442: return "Unsupported Transport Protocol";
    case 443: return "Peer Address Family Mismatch";
    case 486: return "Allocation Quota Reached";
    case 500: return "Server Error";
    case 508: return "Insufficient Capacity";
    default: return NULL;
    }
}
