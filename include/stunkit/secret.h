/*
 * stunkit/secret.h - a secret both users know, for the signalling. Two peers
 * meet through a channel someone else runs (a rendezvous server, a chat that
 * carries the pasted tokens); without more, whoever reaches that channel
 * first is trusted as the peer, and the channel itself sees the ICE
 * passwords and could swap the candidates. With a secret both sides were
 * given (out of band: said aloud, a QR code, a config file):
 *
 *   - the room name is derived from it, so a stranger cannot guess the room
 *     from a name people use (stunkit_secret_room());
 *   - the ICE passwords never cross the wire: each side's is derived from
 *     its ufrag and the secret (stunkit_secret_ice_pwd()), so no one without
 *     the secret can answer a check or send one that passes (RFC 8445 7.2.2:
 *     MESSAGE-INTEGRITY with the password), and a replayed old description
 *     gets nowhere;
 *   - each description is sealed: a line "a=x-stunkit-mac:<hex>" after each
 *     trickled part authenticates every byte before it (HMAC-SHA256,
 *     stunkit_secret_seal()); the other side applies only what a seal covers
 *     (stunkit_secret_open()), so the channel can neither inject a candidate
 *     (steering the checks elsewhere) nor drop one unseen.
 *
 * Keys come from the secret by HKDF-SHA256 (RFC 5869; salt "stunkit secret
 * v1", one info string per use). A secret is only as strong as its
 * entropy: a short word can be guessed offline by anyone who saw a sealed
 * description. The descriptions are authenticated, not encrypted: the
 * channel still sees the candidates (addresses).
 */
#ifndef STUNKIT_SECRET_H
#define STUNKIT_SECRET_H

#include <stddef.h>
#include <stdint.h>

#include "stunkit/export.h"

#ifdef __cplusplus
extern "C" {
#endif

#define STUNKIT_SECRET_MAC_LINE "a=x-stunkit-mac:" /* then 64 hex digits, CRLF */
#define STUNKIT_SECRET_MAC_LINE_LEN (16 + 64 + 2)

typedef struct stunkit_secret {
    uint8_t room_key[32], desc_key[32], pwd_key[32];
} stunkit_secret;

/* Keys from len bytes of secret: 0, or STUNKIT_ERR_INVAL (empty). */
STUNKIT_API int stunkit_secret_init(stunkit_secret *s, const char *secret, size_t len);
/* Forgets the keys (the memory is cleared). */
STUNKIT_API void stunkit_secret_clear(stunkit_secret *s);

/* The room both sides meet in: "s" and 31 hex digits, from the secret and
 * the name the users gave (NULL or "": the secret alone). The length (32),
 * or STUNKIT_ERR_NOBUF. */
STUNKIT_API int stunkit_secret_room(const stunkit_secret *s, const char *name, char *out, size_t cap);

/* The ICE password of the side whose ufrag is ufrag: 32 ice-chars
 * (RFC 8445 5.3: at least 128 bits of randomness; here 192 bits of HMAC).
 * The length, or STUNKIT_ERR_NOBUF (cap < 33), STUNKIT_ERR_INVAL (no ufrag). */
STUNKIT_API int stunkit_secret_ice_pwd(const stunkit_secret *s, const char *ufrag, char *out, size_t cap);

/* The seal line for desc[0..len) (everything sent so far, earlier seal
 * lines included): STUNKIT_SECRET_MAC_LINE, 64 hex digits, CRLF, written to
 * out. The length, or STUNKIT_ERR_NOBUF. */
STUNKIT_API int stunkit_secret_seal(const stunkit_secret *s, const char *desc, size_t len, char *out, size_t cap);

/* Checks the seal lines of a description received so far (a prefix may
 * end anywhere: a line without its CRLF yet is left for later). 0 with
 * *verified the bytes up to the end of the last seal line that checks (0:
 * none yet); STUNKIT_ERR_INTEGRITY_MISMATCH when a complete seal line does
 * not check (another secret, or the channel changed something): nothing
 * after the last good seal may be used. */
STUNKIT_API int stunkit_secret_open(const stunkit_secret *s, const char *desc, size_t len, size_t *verified);

#ifdef __cplusplus
}
#endif
#endif
