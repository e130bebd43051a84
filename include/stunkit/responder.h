/*
 * stunkit/responder.h - answering Binding requests. Two levels:
 *
 *   stunkit_answer_success() / stunkit_answer_error(): build the answer to a
 *   request whose checks the caller made (stunkitd does: RFC 5780, RFC 3489,
 *   long-term credentials).
 *
 *   stunkit_responder_input(): the whole job for an agent that answers
 *   Binding requests on its own sockets (ICE connectivity checks, RFC 8445
 *   7.3; consent, RFC 7675): classify the datagram, check FINGERPRINT,
 *   USERNAME and the short-term MESSAGE-INTEGRITY, and write the answer.
 *
 * Nothing here owns a socket, reads a clock or allocates.
 */
#ifndef STUNKIT_RESPONDER_H
#define STUNKIT_RESPONDER_H

#include <stddef.h>
#include <stdint.h>

#include "stunkit/addr.h"
#include "stunkit/export.h"
#include "stunkit/machine.h"
#include "stunkit/msg.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What goes into an answer besides the mapped address. */
typedef struct stunkit_answer {
    const stunkit_addr *response_origin; /* RFC 5780 RESPONSE-ORIGIN (RFC 3489: SOURCE-ADDRESS); NULL: none */
    const stunkit_addr *other_address;   /* RFC 5780 OTHER-ADDRESS (RFC 3489: CHANGED-ADDRESS); NULL: none */
    int plain_mapped;                    /* MAPPED-ADDRESS besides XOR-MAPPED-ADDRESS (RFC 5780 6.1) */
    const char *software;                /* SOFTWARE, NULL for none */
    size_t software_len;
    size_t pad_to;                       /* > 0: a PADDING attribute making the answer about this long */
    const uint8_t *key;                  /* integrity key, NULL for none */
    size_t key_len;
    int sha256;                          /* MESSAGE-INTEGRITY-SHA256 rather than MESSAGE-INTEGRITY */
    int fingerprint;                     /* FINGERPRINT last */
} stunkit_answer;

/*
 * The success answer to the request whose 20-byte header is req (an RFC 3489
 * request, without the magic cookie, gets MAPPED-ADDRESS and the RFC 3489
 * names). Returns the length written to out, or STUNKIT_ERR_NOBUF.
 */
STUNKIT_API int stunkit_answer_success(const uint8_t *req, const stunkit_addr *mapped, const stunkit_answer *a,
                                       uint8_t *out, size_t cap);

/*
 * An error answer (reason NULL: the RFC's phrase). unknown lists the types
 * for a 420's UNKNOWN-ATTRIBUTES. a may be NULL; its address fields are not
 * used. RFC 3489 requests get text padded with spaces (RFC 3489 11.2.9).
 */
STUNKIT_API int stunkit_answer_error(const uint8_t *req, int code, const char *reason, const uint16_t *unknown,
                                     size_t n_unknown, const stunkit_answer *a, uint8_t *out, size_t cap);

/* ---- the agent's responder ---- */

typedef struct stunkit_responder {
    const char *local_ufrag;  /* USERNAME must start with "local_ufrag:" (RFC 8445 7.3); NULL: any */
    size_t local_ufrag_len;
    const char *password;     /* the short-term password (ours); NULL: no integrity required */
    size_t password_len;
    const char *software;     /* NULL for none */
    size_t software_len;
} stunkit_responder;

/* What a request carried, for the ICE agent (RFC 8445 7.3.1). */
typedef struct stunkit_request_info {
    uint8_t tid[STUNKIT_TID_LEN];
    const uint8_t *remote_ufrag; /* the part of USERNAME after the colon (a view), or NULL */
    size_t remote_ufrag_len;
    uint32_t priority;           /* PRIORITY, 0 if absent */
    int use_candidate;           /* USE-CANDIDATE present */
    uint32_t nomination;         /* NOMINATION (renomination), 0 if absent */
    int controlling, controlled; /* ICE-CONTROLLING / ICE-CONTROLLED present */
    uint64_t tiebreaker;         /* their value */
    int code;                    /* the error code answered, 0 for success */
} stunkit_request_info;

/*
 * Feeds one datagram that arrived from `from` (the input verbs of
 * stunkit/machine.h; the responder keeps no state, so no socket or time).
 * Returns:
 *   STUNKIT_INPUT_NOT_MINE  not a Binding request: not STUN at all (the
 *                           application's data), or STUN of another class
 *                           or method (a response, an indication): hand it on;
 *   STUNKIT_INPUT_TAKEN     a Binding request: *out_len > 0, an answer for
 *                           `from` is in out (info->code says which);
 *                           *out_len == 0, drop it silently (bad
 *                           FINGERPRINT, bad integrity for RFC 8489's "MUST
 *                           be discarded" cases);
 *   STUNKIT_ERR_NOBUF       the answer does not fit in cap.
 * RFC 8445 7.3: a request with a wrong USERNAME or MESSAGE-INTEGRITY is
 * answered 401, one without them 400 (RFC 8489 9.1.3), unknown
 * comprehension-required attributes 420.
 */
STUNKIT_API int stunkit_responder_input(const stunkit_responder *r, const stunkit_addr *from, const uint8_t *data,
                                        size_t len, uint8_t *out, size_t cap, size_t *out_len,
                                        stunkit_request_info *info);

#ifdef __cplusplus
}
#endif
#endif
