/*
 * rooms_int.h - what rooms.c (the rooms in this process) and rooms_redis.c
 * (the rooms in Redis, shared by a fleet) share: a peer's place, a parsed
 * request, the answer.
 */
#ifndef STUNKITD_ROOMS_INT_H
#define STUNKITD_ROOMS_INT_H

#include "rooms.h"

typedef struct skd_place {
    int used;
    int left;          /* its peer left or went silent: the other side hears "left" once it asks */
    uint8_t id[8];
    uint16_t gen;      /* changes whenever another peer takes the place */
    uint64_t seen_ms;
    uint32_t len;
    char *desc;        /* desc_max bytes, in the room's allocation */
} skd_place;

typedef struct rdv_req {
    const char *room;
    size_t room_len;
    const uint8_t *id;
    uint32_t ack;
    int has_desc, leave;
    uint32_t offset;
    const uint8_t *desc;
    size_t desc_len;
} rdv_req;

skd_verdict skd_rdv_answer(const skd_handler_cfg *cfg, const skd_request *rq, const stunkit_msg *m,
                           const skd_auth_verdict *authed, skd_outbox *ob, int role, const skd_place *me,
                           const skd_place *other, uint32_t ack);
/* The same method with the rooms in Redis (rooms_redis.c). */
skd_verdict skd_rdv_redis_serve(const skd_handler_cfg *cfg, const skd_request *rq, const stunkit_msg *m,
                                const skd_auth_verdict *authed, skd_outbox *ob, const rdv_req *q);
/* Under the lock: the rooms open in the fleet; each as rooms.c's describe. */
int skd_rdv_redis_rooms(skd_rdv *r, uint64_t now_ms);
size_t skd_rdv_redis_describe(skd_rdv *r, uint64_t now_ms, char *buf, size_t cap, int *n, int *left);
void skd_rdv_redis_close(skd_rdv *r);

#endif
