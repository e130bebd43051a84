/*
 * binding.c - the Binding method (RFC 8489 6.3, RFC 5780 6, RFC 3489 8.1):
 * where the answer goes, and from which socket.
 *
 * RFC 5780 6.1, Table 1 (Da/Dp: where the request arrived; Ca/Cp: the other
 * address and port):
 *
 *   +--------------------+----------------+-------------+---------------+
 *   | Flags              | Source Address | Source Port | OTHER-ADDRESS |
 *   +--------------------+----------------+-------------+---------------+
 *   | none               | Da             | Dp          | Ca:Cp         |
 *   | Change IP          | Ca             | Dp          | Ca:Cp         |
 *   | Change port        | Da             | Cp          | Ca:Cp         |
 *   | Change IP and port | Ca             | Cp          | Ca:Cp         |
 *   +--------------------+----------------+-------------+---------------+
 */
#include <string.h>

#include "methods.h"

/* RESPONSE-PORT below this is refused: answers are never aimed at the
 * well-known services of the client's host. */
#define MIN_RESPONSE_PORT 1024

skd_verdict skd_binding(const skd_handler_cfg *cfg, const skd_request *rq, const stunkit_msg *m,
                        const skd_auth_verdict *authed, skd_outbox *ob)
{
    const skd_family *fam = rq->dst.family == STUNKIT_AF_INET6 ? &cfg->v6 : &cfg->v4;
    stunkit_attr a;
    uint32_t change = 0;
    int have_rport = 0, have_padding = 0;
    uint16_t rport = 0;

    if (stunkit_msg_find(m, STUNKIT_ATTR_CHANGE_REQUEST, &a) == 0) {
        if (stunkit_attr_change_request(&a, &change) != 0)
            return skd_reply_error(cfg, rq, m, authed, 400, "Bad CHANGE-REQUEST", NULL, 0, ob);
        change &= STUNKIT_CHANGE_IP | STUNKIT_CHANGE_PORT;
        /* RFC 5780 6.1: "If the Request contains the CHANGE-REQUEST attribute
         * and the server does not have an alternate address and port as
         * described above, the server MUST generate an error response of
         * type 420." */
        if (change && !fam->rfc5780) {
            static const uint16_t cr[] = {STUNKIT_ATTR_CHANGE_REQUEST};
            return skd_reply_error(cfg, rq, m, authed, 420, NULL, cr, 1, ob);
        }
        if (change && rq->transport != STUNKIT_UDP)
            return skd_reply_error(cfg, rq, m, authed, 400, "CHANGE-REQUEST needs UDP", NULL, 0, ob);
    }
    if (stunkit_msg_find(m, STUNKIT_ATTR_RESPONSE_PORT, &a) == 0) {
        /* RESPONSE-PORT belongs to RFC 5780 behaviour discovery: a basic
         * server treats it as the unknown comprehension-required attribute it
         * is for a plain RFC 8489 server (420). */
        if (!fam->rfc5780) {
            static const uint16_t rp[] = {STUNKIT_ATTR_RESPONSE_PORT};
            return skd_reply_error(cfg, rq, m, authed, 420, NULL, rp, 1, ob);
        }
        if (stunkit_attr_response_port(&a, &rport) != 0 || rport < MIN_RESPONSE_PORT)
            return skd_reply_error(cfg, rq, m, authed, 400, "Bad RESPONSE-PORT", NULL, 0, ob);
        if (rq->transport != STUNKIT_UDP)
            return skd_reply_error(cfg, rq, m, authed, 400, "RESPONSE-PORT needs UDP", NULL, 0, ob);
        have_rport = 1;
    }
    if (stunkit_msg_find(m, STUNKIT_ATTR_PADDING, &a) == 0) {
        have_padding = 1;
        /* RFC 5780 7.5: "The server MUST NOT process a request containing a
         * RESPONSE-PORT and a PADDING attribute." and 6.1: "If the Request
         * also contains the RESPONSE-PORT attribute the server MUST return an
         * error response of type 400." */
        if (have_rport)
            return skd_reply_error(cfg, rq, m, authed, 400, "PADDING with RESPONSE-PORT", NULL, 0, ob);
    }
    /* RESPONSE-ADDRESS (RFC 3489) is parsed and never honoured: it would let
     * anyone aim our answers at a third party. */

    int out_ip = rq->ip_index ^ ((change & STUNKIT_CHANGE_IP) ? 1 : 0);
    int out_port = rq->port_index ^ ((change & STUNKIT_CHANGE_PORT) ? 1 : 0);
    stunkit_addr origin = fam->advertise[out_ip], other = fam->advertise[rq->ip_index ^ 1];
    origin.port = fam->port[out_port];
    other.port = fam->port[rq->port_index ^ 1];
    if (!fam->rfc5780) {
        origin = rq->dst; /* basic mode: the address the client reached */
        if (fam->advertise[0].family)
            memcpy(origin.ip, fam->advertise[0].ip, sizeof(origin.ip));
    }

    stunkit_answer ans;
    skd_answer_defaults(cfg, m, authed, &ans);
    if (m->rfc3489) {
        /* CHANGED-ADDRESS is only truthful with an alternate address, so
         * basic mode leaves it out. */
        ans.response_origin = &origin;
        ans.other_address = fam->rfc5780 ? &other : NULL;
    } else if (fam->rfc5780) {
        /* RFC 5780 6.1: "The server MUST include both MAPPED-ADDRESS and
         * XOR-MAPPED-ADDRESS in its Response." "The server MUST add a
         * RESPONSE-ORIGIN attribute" and "MUST add an OTHER-ADDRESS". */
        ans.plain_mapped = 1;
        ans.response_origin = &origin;
        ans.other_address = &other;
    }
    size_t room;
    uint8_t *out = skd_outbox_room(ob, &room);
    if (!out)
        return SKD_DROP_NOBUF;
    if (have_padding)
        /* RFC 5780 6.1: "If the Request contained a PADDING attribute,
         * PADDING MUST be included in the Binding Response. The server SHOULD
         * use a length of PADDING equal to the MTU on the outgoing
         * interface". We pad the answer to the size of the request instead
         * (the client pads its request to its MTU, RFC 5780 5): the fragment
         * test still works and the server never amplifies. */
        ans.pad_to = rq->len < room ? rq->len : room;
    int len = stunkit_answer_success(rq->data, &rq->src, &ans, out, room);
    stunkit_addr to = rq->src;
    if (have_rport)
        to.port = rport;
    if (!skd_outbox_commit(ob, len, &to, out_ip, out_port, 0,
                           (change || have_rport) ? SKD_OUT_REDIRECT : 0u))
        return SKD_DROP_NOBUF;
    return SKD_ANSWERED;
}
