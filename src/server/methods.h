/*
 * methods.h - what a method of the handler's table gets and may use. A
 * method runs after the common checks of skd_handle() (header, FINGERPRINT,
 * credentials, unknown attributes) and appends zero or more datagrams to the
 * outbox.
 */
#ifndef STUNKITD_METHODS_H
#define STUNKITD_METHODS_H

#include "handler.h"
#include "stunkit/responder.h"

typedef skd_verdict (*skd_method_fn)(const skd_handler_cfg *cfg, const skd_request *rq, const stunkit_msg *m,
                                     const skd_auth_verdict *authed, skd_outbox *ob);

enum { SKD_ALWAYS, SKD_WITH_TURN, SKD_WITH_RENDEZVOUS };

typedef struct skd_method {
    uint16_t method;
    skd_method_fn fn;
    int when; /* SKD_ALWAYS, or only when TURN / the rendezvous is on */
} skd_method;

/* The free space in the outbox (NULL when it holds its maximum). */
uint8_t *skd_outbox_room(skd_outbox *ob, size_t *room);
/* Appends the len bytes just written at skd_outbox_room(); NULL if len < 0
 * or there is no room. */
skd_out *skd_outbox_commit(skd_outbox *ob, int len, const stunkit_addr *to, int ip_index, int port_index, int code,
                           unsigned flags);

/* SOFTWARE, integrity (the request's key and MAC) and FINGERPRINT as the
 * request had them. m and av may be NULL. */
void skd_answer_defaults(const skd_handler_cfg *cfg, const stunkit_msg *m, const skd_auth_verdict *av,
                         stunkit_answer *a);

/* Ends a success answer begun in the outbox's free space (w): SOFTWARE,
 * MESSAGE-INTEGRITY(-SHA256) with the request's key, FINGERPRINT when the
 * request had one; then commits it back to the sender. */
skd_verdict skd_answer_finish(const skd_handler_cfg *cfg, const skd_request *rq, const stunkit_msg *m,
                              const skd_auth_verdict *authed, stunkit_writer *w, skd_outbox *ob);

/* An error answer back to the sender, from the socket it arrived on. */
skd_verdict skd_reply_error(const skd_handler_cfg *cfg, const skd_request *rq, const stunkit_msg *m,
                            const skd_auth_verdict *av, int code, const char *reason, const uint16_t *unknown,
                            size_t n_unknown, skd_outbox *ob);

/* binding.c */
skd_verdict skd_binding(const skd_handler_cfg *cfg, const skd_request *rq, const stunkit_msg *m,
                        const skd_auth_verdict *authed, skd_outbox *ob);

#endif
