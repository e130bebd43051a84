/*
 * stunkit/msg.h - the STUN message codec (RFC 8489, with RFC 5389, RFC 5780,
 * RFC 3489 and the ICE attributes of RFC 8445).
 *
 * Decoding never allocates and never copies: stunkit_msg_parse() checks the
 * whole structure once and the message then hands out views (pointer + length)
 * into the caller's buffer, which must outlive the stunkit_msg.
 * Encoding writes into a caller's buffer through a stunkit_writer that keeps
 * the header length current and reports a short buffer as STUNKIT_ERR_NOBUF.
 */
#ifndef STUNKIT_MSG_H
#define STUNKIT_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "stunkit/addr.h"
#include "stunkit/error.h"
#include "stunkit/export.h"

#ifdef __cplusplus
extern "C" {
#endif

#define STUNKIT_HEADER_LEN 20
#define STUNKIT_MAGIC_COOKIE 0x2112A442u
#define STUNKIT_TID_LEN 12        /* RFC 5389/8489 transaction ID */
#define STUNKIT_TID_LEN_RFC3489 16 /* RFC 3489: no cookie, 128-bit ID */
#define STUNKIT_FINGERPRINT_XOR 0x5354554eu

/* Classes (RFC 8489 section 5). */
typedef enum stunkit_class {
    STUNKIT_CLASS_REQUEST = 0,
    STUNKIT_CLASS_INDICATION = 1,
    STUNKIT_CLASS_SUCCESS = 2,
    STUNKIT_CLASS_ERROR = 3
} stunkit_class;

/* Methods: Binding (RFC 8489) and, for naming in captures, TURN's (RFC 8656). */
#define STUNKIT_METHOD_BINDING 0x001
#define STUNKIT_METHOD_SHARED_SECRET 0x002 /* RFC 3489 only */
#define STUNKIT_METHOD_ALLOCATE 0x003
#define STUNKIT_METHOD_REFRESH 0x004
#define STUNKIT_METHOD_SEND 0x006
#define STUNKIT_METHOD_DATA 0x007
#define STUNKIT_METHOD_CREATE_PERMISSION 0x008
#define STUNKIT_METHOD_CHANNEL_BIND 0x009

/* Attribute types. 0x0000-0x7FFF are comprehension-required. */
enum {
    /* RFC 8489 */
    STUNKIT_ATTR_MAPPED_ADDRESS = 0x0001,
    STUNKIT_ATTR_USERNAME = 0x0006,
    STUNKIT_ATTR_MESSAGE_INTEGRITY = 0x0008,
    STUNKIT_ATTR_ERROR_CODE = 0x0009,
    STUNKIT_ATTR_UNKNOWN_ATTRIBUTES = 0x000A,
    STUNKIT_ATTR_REALM = 0x0014,
    STUNKIT_ATTR_NONCE = 0x0015,
    STUNKIT_ATTR_MESSAGE_INTEGRITY_SHA256 = 0x001C,
    STUNKIT_ATTR_PASSWORD_ALGORITHM = 0x001D,
    STUNKIT_ATTR_USERHASH = 0x001E,
    STUNKIT_ATTR_XOR_MAPPED_ADDRESS = 0x0020,
    STUNKIT_ATTR_PASSWORD_ALGORITHMS = 0x8002,
    STUNKIT_ATTR_ALTERNATE_DOMAIN = 0x8003,
    STUNKIT_ATTR_SOFTWARE = 0x8022,
    STUNKIT_ATTR_ALTERNATE_SERVER = 0x8023,
    STUNKIT_ATTR_FINGERPRINT = 0x8028,
    /* RFC 5780 */
    STUNKIT_ATTR_CHANGE_REQUEST = 0x0003,
    STUNKIT_ATTR_PADDING = 0x0026,
    STUNKIT_ATTR_RESPONSE_PORT = 0x0027,
    STUNKIT_ATTR_RESPONSE_ORIGIN = 0x802B,
    STUNKIT_ATTR_OTHER_ADDRESS = 0x802C,
    /* RFC 3489 (parsed, never acted upon) */
    STUNKIT_ATTR_RESPONSE_ADDRESS = 0x0002,
    STUNKIT_ATTR_SOURCE_ADDRESS = 0x0004,
    STUNKIT_ATTR_CHANGED_ADDRESS = 0x0005,
    STUNKIT_ATTR_PASSWORD = 0x0007,
    STUNKIT_ATTR_REFLECTED_FROM = 0x000B,
    /* pre-RFC 5389 drafts (Vovida stun, old clients) */
    STUNKIT_ATTR_XOR_MAPPED_ADDRESS_OLD = 0x8020,
    /* ICE, RFC 8445 */
    STUNKIT_ATTR_PRIORITY = 0x0024,
    STUNKIT_ATTR_USE_CANDIDATE = 0x0025,
    STUNKIT_ATTR_ICE_CONTROLLED = 0x8029,
    STUNKIT_ATTR_ICE_CONTROLLING = 0x802A,
    /* draft-thatcher-ice-renomination (libwebrtc): which nomination counts */
    STUNKIT_ATTR_NOMINATION = 0xC001,
    /* TURN, RFC 8656 */
    STUNKIT_ATTR_CHANNEL_NUMBER = 0x000C,
    STUNKIT_ATTR_LIFETIME = 0x000D,
    STUNKIT_ATTR_XOR_PEER_ADDRESS = 0x0012,
    STUNKIT_ATTR_DATA = 0x0013,
    STUNKIT_ATTR_XOR_RELAYED_ADDRESS = 0x0016,
    STUNKIT_ATTR_REQUESTED_ADDRESS_FAMILY = 0x0017,
    STUNKIT_ATTR_EVEN_PORT = 0x0018,
    STUNKIT_ATTR_REQUESTED_TRANSPORT = 0x0019,
    STUNKIT_ATTR_DONT_FRAGMENT = 0x001A,
    STUNKIT_ATTR_RESERVATION_TOKEN = 0x0022,
    STUNKIT_ATTR_ADDITIONAL_ADDRESS_FAMILY = 0x8000,
    STUNKIT_ATTR_ADDRESS_ERROR_CODE = 0x8001
};

/* CHANGE-REQUEST flags (RFC 5780 section 7.2). */
#define STUNKIT_CHANGE_IP 0x04u
#define STUNKIT_CHANGE_PORT 0x02u

/* PASSWORD-ALGORITHM values (RFC 8489 section 18.5). */
#define STUNKIT_PWALG_MD5 0x0001
#define STUNKIT_PWALG_SHA256 0x0002

#define STUNKIT_MAX_UNKNOWN 16

/* One parsed message: views into the caller's buffer. */
typedef struct stunkit_msg {
    const uint8_t *data; /* first byte of the header */
    size_t len;          /* 20 + the header's length field */
    uint16_t type;       /* the 14-bit message type */
    uint16_t method;     /* 12-bit method */
    stunkit_class klass;
    int rfc3489;        /* no magic cookie: an RFC 3489 message */
    const uint8_t *tid; /* transaction ID: 12 bytes, or 16 for RFC 3489 */
    size_t tid_len;
    /* Offsets of the integrity and fingerprint attributes' headers, or 0. */
    size_t mi_off, mi256_off, fp_off;
    unsigned n_attrs;   /* attributes a receiver processes */
    unsigned n_ignored; /* attributes after MESSAGE-INTEGRITY* (RFC 8489 14.5/14.6) */
    /* Comprehension-required types the codec does not know (for a 420). */
    uint16_t unknown[STUNKIT_MAX_UNKNOWN];
    unsigned n_unknown; /* may exceed STUNKIT_MAX_UNKNOWN; only that many are kept */
} stunkit_msg;

typedef struct stunkit_attr {
    uint16_t type;
    uint16_t len;         /* value length, without padding */
    const uint8_t *value; /* view into the message */
    size_t off;           /* offset of the attribute header in the message */
    int ignored;          /* follows MESSAGE-INTEGRITY*: a receiver ignores it */
} stunkit_attr;

typedef struct stunkit_attr_iter {
    const stunkit_msg *msg;
    size_t pos;
    int include_ignored;
} stunkit_attr_iter;

/*
 * RFC 7983 demultiplexing: a STUN packet's first byte is 0..3. Cheap test for
 * "could this be STUN at all"; stunkit_msg_parse() decides.
 */
STUNKIT_API int stunkit_is_stun(const uint8_t *buf, size_t len);

/*
 * Stream framing (STUN over TCP/TLS, RFC 8489 section 6.2.2): given the first
 * `avail` bytes, stores the whole message's length in *need once the header
 * is in. Returns 0, STUNKIT_ERR_TRUNCATED (fewer than 20 bytes; *need = 20)
 * or STUNKIT_ERR_NOT_STUN / STUNKIT_ERR_BAD_LENGTH.
 */
STUNKIT_API int stunkit_msg_frame(const uint8_t *buf, size_t avail, size_t *need);

/*
 * Checks the header and every attribute's framing and fills *msg. `len` must
 * be exactly one message (20 + length field). Returns 0 or a negative
 * stunkit_err: TRUNCATED, NOT_STUN, BAD_LENGTH, BAD_ATTR_LENGTH,
 * FINGERPRINT_NOT_LAST, BAD_VALUE (integrity/fingerprint value of the wrong
 * size).
 */
STUNKIT_API int stunkit_msg_parse(stunkit_msg *msg, const uint8_t *buf, size_t len);

/* Attributes in wire order; ignored ones (after MESSAGE-INTEGRITY*) only if
 * include_ignored. stunkit_attr_next() returns 1 with *a filled, 0 at the end. */
STUNKIT_API void stunkit_attr_iter_init(stunkit_attr_iter *it, const stunkit_msg *msg, int include_ignored);
STUNKIT_API int stunkit_attr_next(stunkit_attr_iter *it, stunkit_attr *a);

/* First processed attribute of this type: 0, or STUNKIT_ERR_NOT_FOUND. */
STUNKIT_API int stunkit_msg_find(const stunkit_msg *msg, uint16_t type, stunkit_attr *a);

/* ---- attribute values ---- */

/* MAPPED-ADDRESS family: plain or XOR'd by type (XOR-MAPPED-ADDRESS, XOR-PEER-
 * and XOR-RELAYED-ADDRESS, the old 0x8020). Needs the message for the XOR. */
STUNKIT_API int stunkit_attr_addr(const stunkit_msg *msg, const stunkit_attr *a, stunkit_addr *out);
STUNKIT_API int stunkit_attr_is_xor_addr(uint16_t type);
STUNKIT_API int stunkit_attr_u32(const stunkit_attr *a, uint32_t *out);
STUNKIT_API int stunkit_attr_u64(const stunkit_attr *a, uint64_t *out);
/* ERROR-CODE: class*100+number, and the reason phrase as a view. */
STUNKIT_API int stunkit_attr_error_code(const stunkit_attr *a, int *code, const uint8_t **reason,
                                        size_t *reason_len);
/* UNKNOWN-ATTRIBUTES: the i-th listed type; returns the count when out is NULL. */
STUNKIT_API int stunkit_attr_unknown_list(const stunkit_attr *a, uint16_t *out, size_t cap);
/* CHANGE-REQUEST flags (STUNKIT_CHANGE_IP | STUNKIT_CHANGE_PORT). */
STUNKIT_API int stunkit_attr_change_request(const stunkit_attr *a, uint32_t *flags);
STUNKIT_API int stunkit_attr_response_port(const stunkit_attr *a, uint16_t *port);
/* PASSWORD-ALGORITHM, or the i-th entry of PASSWORD-ALGORITHMS (i = 0..).
 * Returns STUNKIT_ERR_NOT_FOUND past the last entry. */
STUNKIT_API int stunkit_attr_password_algorithm(const stunkit_attr *a, size_t index, uint16_t *alg,
                                                const uint8_t **params, uint16_t *params_len);

/*
 * The value as text for people and logs: addresses as "192.0.2.1:32853",
 * strings with control bytes and invalid UTF-8 escaped as \xNN, error codes
 * as "401 Unauthorized", MACs in hex. Returns the length written (always NUL
 * terminated when cap > 0), STUNKIT_ERR_BAD_VALUE when the value is malformed
 * (buf then holds the raw bytes in hex), or STUNKIT_ERR_NOBUF.
 */
STUNKIT_API int stunkit_attr_format(const stunkit_msg *msg, const stunkit_attr *a, char *buf, size_t cap);

/*
 * The value as a JSON value: numbers as numbers (PRIORITY, LIFETIME,
 * FINGERPRINT, RESPONSE-PORT, CHANNEL-NUMBER, REQUESTED-TRANSPORT's protocol;
 * a 64-bit tie-breaker as a string of digits), text as a JSON string
 * (control characters \u-escaped; bytes that are not UTF-8 become U+FFFD and
 * the raw value follows as `, "hex": "..."`), ERROR-CODE as {"code", "reason"},
 * CHANGE-REQUEST as {"change_ip", "change_port"}, UNKNOWN-ATTRIBUTES as an
 * array of numbers, addresses as "ip:port", opaque bytes as a hex string.
 * Returns as stunkit_attr_format (malformed: the raw hex as a string).
 */
STUNKIT_API int stunkit_attr_format_json(const stunkit_msg *msg, const stunkit_attr *a, char *buf, size_t cap);

/* ---- names ---- */
STUNKIT_API const char *stunkit_attr_name(uint16_t type);   /* NULL if unknown */
STUNKIT_API int stunkit_attr_is_known(uint16_t type);       /* understood by the codec */
STUNKIT_API const char *stunkit_method_name(uint16_t method); /* NULL if unknown */
STUNKIT_API const char *stunkit_class_name(stunkit_class k);  /* "request", ... */
STUNKIT_API uint16_t stunkit_msg_type(uint16_t method, stunkit_class k);

/* ---- encoding ---- */

typedef struct stunkit_writer {
    uint8_t *buf;
    size_t cap;
    size_t len;
    int err;       /* first error, sticky: later calls do nothing */
    uint8_t stage; /* 0 open, 1 after MI, 2 after MI-SHA256, 3 after FINGERPRINT */
} stunkit_writer;

/* Starts a message with the magic cookie and a 12-byte transaction ID. */
STUNKIT_API int stunkit_writer_init(stunkit_writer *w, uint8_t *buf, size_t cap, uint16_t method, stunkit_class k,
                                    const uint8_t tid[STUNKIT_TID_LEN]);
/* Starts an RFC 3489 message: a 16-byte transaction ID in place of cookie + ID. */
STUNKIT_API int stunkit_writer_init_rfc3489(stunkit_writer *w, uint8_t *buf, size_t cap, uint16_t method,
                                            stunkit_class k, const uint8_t tid[STUNKIT_TID_LEN_RFC3489]);
/* Any attribute, copied and zero-padded to 4 bytes; value NULL writes len
 * zero bytes (PADDING). */
STUNKIT_API int stunkit_put(stunkit_writer *w, uint16_t type, const void *value, size_t len);
STUNKIT_API int stunkit_put_u32(stunkit_writer *w, uint16_t type, uint32_t v);
STUNKIT_API int stunkit_put_u64(stunkit_writer *w, uint16_t type, uint64_t v);
/* Plain or XOR'd by type, as stunkit_attr_addr(). */
STUNKIT_API int stunkit_put_addr(stunkit_writer *w, uint16_t type, const stunkit_addr *a);
/* ERROR-CODE; reason NULL means the RFC's phrase. */
STUNKIT_API int stunkit_put_error_code(stunkit_writer *w, int code, const char *reason);
STUNKIT_API int stunkit_put_unknown_attributes(stunkit_writer *w, const uint16_t *types, size_t n);
STUNKIT_API int stunkit_put_change_request(stunkit_writer *w, uint32_t flags);
STUNKIT_API int stunkit_put_response_port(stunkit_writer *w, uint16_t port);
/* PASSWORD-ALGORITHM with no parameters; PASSWORD-ALGORITHMS from a list. */
STUNKIT_API int stunkit_put_password_algorithm(stunkit_writer *w, uint16_t alg);
STUNKIT_API int stunkit_put_password_algorithms(stunkit_writer *w, const uint16_t *algs, size_t n);
/* MESSAGE-INTEGRITY (HMAC-SHA1), MESSAGE-INTEGRITY-SHA256 (HMAC-SHA256,
 * truncated to trunc bytes: 16..32, a multiple of 4; 0 means 32) and
 * FINGERPRINT. Only MI-SHA256 and FINGERPRINT may follow MI; only
 * FINGERPRINT may follow MI-SHA256; nothing follows FINGERPRINT. */
STUNKIT_API int stunkit_put_integrity(stunkit_writer *w, const uint8_t *key, size_t key_len);
STUNKIT_API int stunkit_put_integrity_sha256(stunkit_writer *w, const uint8_t *key, size_t key_len, size_t trunc);
STUNKIT_API int stunkit_put_fingerprint(stunkit_writer *w);
/* Total length written, or the first error. */
STUNKIT_API int stunkit_writer_finish(const stunkit_writer *w);

#ifdef __cplusplus
}
#endif
#endif
