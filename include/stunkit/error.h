/*
 * stunkit/error.h - the library's one error enum, and the STUN wire error
 * codes (which are a different thing: they travel in ERROR-CODE attributes).
 */
#ifndef STUNKIT_ERROR_H
#define STUNKIT_ERROR_H

#include "stunkit/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * X(name, value, message). One table generates the enum, stunkit_strerror()
 * and stunkit_err_name(), so the three never drift apart (the libuv habit).
 * Every library call returns 0 (or a non-negative count) on success and one of
 * these negative values on failure.
 */
#define STUNKIT_ERRNO_MAP(X)                                                                       \
    X(TRUNCATED, -1, "message is truncated")                                                       \
    X(NOT_STUN, -2, "not a STUN message")                                                          \
    X(BAD_LENGTH, -3, "message length field does not match the data")                             \
    X(BAD_ATTR_LENGTH, -4, "attribute length runs past the end of the message")                   \
    X(FINGERPRINT_NOT_LAST, -5, "FINGERPRINT is not the last attribute")                           \
    X(BAD_VALUE, -6, "attribute value is malformed")                                               \
    X(NOBUF, -7, "output buffer is too small")                                                     \
    X(ORDER, -8, "attribute not allowed after MESSAGE-INTEGRITY or FINGERPRINT")                   \
    X(INVAL, -9, "invalid argument")                                                               \
    X(NOT_FOUND, -10, "attribute not present")                                                     \
    X(INTEGRITY_ABSENT, -11, "message carries no MESSAGE-INTEGRITY")                               \
    X(INTEGRITY_MISMATCH, -12, "MESSAGE-INTEGRITY does not match")                                 \
    X(FINGERPRINT_ABSENT, -13, "message carries no FINGERPRINT")                                   \
    X(FINGERPRINT_MISMATCH, -14, "FINGERPRINT does not match")                                     \
    X(BAD_FAMILY, -15, "unknown address family")                                                   \
    X(CRYPTO, -16, "cryptographic library failure")                                                \
    X(BAD_STRING, -17, "string is not valid UTF-8 or contains disallowed characters")              \
    X(BAD_ADDRESS, -18, "cannot parse address")                                                    \
    X(NOMEM, -19, "out of memory")                                                                 \
    X(TIMEOUT, -20, "timed out")                                                                   \
    X(SYSCALL, -21, "system call failed (see errno)")                                              \
    X(RESOLVE, -22, "cannot resolve host name")                                                    \
    X(UNEXPECTED, -23, "unexpected message")                                                       \
    X(STATE, -24, "operation not valid in this state")                                              \
    X(CLOSED, -25, "the connection was closed by the other side")                                  \
    X(TLS_VERIFY, -26, "the server's certificate was not accepted")                                \
    X(UNSUPPORTED, -27, "not supported by this build")                                              \
    X(REFUSED, -28, "the other side refused the request")

typedef enum stunkit_err {
    STUNKIT_OK = 0,
#define STUNKIT__ERR_ENUM(name, val, msg) STUNKIT_ERR_##name = (val),
    STUNKIT_ERRNO_MAP(STUNKIT__ERR_ENUM)
#undef STUNKIT__ERR_ENUM
} stunkit_err;

/* A sentence describing err ("unknown error" for values outside the table). */
STUNKIT_API const char *stunkit_strerror(int err);
/* The enum's name without prefix, e.g. "TRUNCATED". */
STUNKIT_API const char *stunkit_err_name(int err);

/*
 * STUN wire error codes (RFC 8489 section 14.8, RFC 5780, RFC 8656). These are
 * carried in ERROR-CODE; they are not library errors.
 */
typedef enum stunkit_code {
    STUNKIT_CODE_TRY_ALTERNATE = 300,
    STUNKIT_CODE_BAD_REQUEST = 400,
    STUNKIT_CODE_UNAUTHORIZED = 401,
    STUNKIT_CODE_FORBIDDEN = 403,
    STUNKIT_CODE_UNKNOWN_ATTRIBUTE = 420,
    STUNKIT_CODE_STALE_NONCE = 438,
    STUNKIT_CODE_SERVER_ERROR = 500
} stunkit_code;

/* The RFC's reason phrase for a wire code ("Bad Request"), or NULL. */
STUNKIT_API const char *stunkit_code_reason(int code);

#ifdef __cplusplus
}
#endif
#endif
