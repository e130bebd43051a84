/*
 * auth_client.h - a client's half of STUN long-term credentials (RFC 8489
 * 9.2), written once for every client machine: the Binding driver
 * (driver.c), the TURN client (turn_client.c) and the rendezvous client
 * (rendezvous.c). Internal to the library.
 *
 *   request, unsigned ----------------------> server
 *   <--------------- 401, REALM, NONCE [, PASSWORD-ALGORITHMS]
 *   sk_auth_challenge(): take them, derive the key (MD5 or SHA-256)
 *   request, sk_auth_sign(): USERNAME or USERHASH, REALM, NONCE,
 *     [PASSWORD-ALGORITHMS, PASSWORD-ALGORITHM,] MESSAGE-INTEGRITY(-SHA256)
 *   <--------------- success: sk_auth_verify() (signed with our key)
 *   <--------------- 438 Stale Nonce: sk_auth_challenge() again (new NONCE)
 *
 * The caller keeps one counter per request (several may be in flight) and
 * hands it to sk_auth_challenge(), which bounds the retries.
 */
#ifndef STUNKIT_AUTH_CLIENT_H
#define STUNKIT_AUTH_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "stunkit/integrity.h"
#include "stunkit/msg.h"

typedef struct sk_auth_client {
    char username[129], password[129];
    char realm[764], nonce[764]; /* RFC 8489 14.9, 14.10: fewer than 128 characters (up to 763 bytes) */
    size_t realm_len, nonce_len;
    uint8_t algs[64];            /* PASSWORD-ALGORITHMS as the server sent it (copied back) */
    size_t algs_len;
    int offered_algs;            /* the server sent PASSWORD-ALGORITHMS */
    uint16_t alg;                /* the algorithm chosen: STUNKIT_PWALG_MD5 or _SHA256 */
    int userhash;                /* the nonce cookie asks for username anonymity */
    uint8_t hash[32];            /* USERHASH, when userhash */
    uint8_t key[STUNKIT_KEY_MAX];
    size_t key_len;              /* 0: no challenge taken yet (requests go unsigned) */
} sk_auth_client;

/* -1 when the username or password is too long (128 bytes each at most). */
int sk_auth_init(sk_auth_client *a, const char *username, const char *password);

/* An error answer with `code` to a request that has had *tries challenges
 * answered so far. 1: a challenge answered (REALM and NONCE taken, the key
 * derived, *tries counted): send the request again, signed. 0: final. A 401
 * is answered once per request (a second one means wrong credentials), a
 * 438 Stale Nonce up to twice; a 401 whose nonce cookie promises
 * PASSWORD-ALGORITHMS but lacks them is a bid-down attempt: final. */
int sk_auth_challenge(sk_auth_client *a, const stunkit_msg *m, int code, int *tries);

/* Puts the credential attributes and the MESSAGE-INTEGRITY(-SHA256) at the
 * writer's end (FINGERPRINT may follow). 0 and nothing put before a
 * challenge was taken. */
int sk_auth_sign(const sk_auth_client *a, stunkit_writer *w);

/* The bytes sk_auth_sign() adds (for requests padded to a size). */
size_t sk_auth_overhead(const sk_auth_client *a);

/* 0 when an answer carries MESSAGE-INTEGRITY(-SHA256) made with our key
 * (RFC 8489 9.2.5: a success answer must be), else -1. */
int sk_auth_verify(const sk_auth_client *a, const stunkit_msg *m);

/* 1 once a challenge was taken (requests are signed). */
int sk_auth_ready(const sk_auth_client *a);

/* Wipes the password and the key. */
void sk_auth_clear(sk_auth_client *a);

#endif
