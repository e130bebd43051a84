/*
 * conn_hook.h - a TCP/TLS connection or a DTLS session as the TURN relay
 * sees the client's end of an allocation made over it (RFC 8656 3.1: the
 * allocation lives as long as the connection): where relayed data for the
 * client goes back. The connection's owner (worker_stream.c,
 * worker_dtls.c) embeds one and fills it in; the reader of the relay's
 * sockets (worker_udp.c) calls deliver() without knowing which it is.
 */
#ifndef STUNKITD_CONN_HOOK_H
#define STUNKITD_CONN_HOOK_H

struct skd_worker;
struct skd_outbox;

typedef struct skd_conn_hook {
    /* the datagrams in ob (ChannelData or Data indications) to the client */
    void (*deliver)(struct skd_worker *w, struct skd_conn_hook *h, const struct skd_outbox *ob);
    int stream; /* a byte stream: ChannelData is padded to four bytes (RFC 8656 12.5) */
} skd_conn_hook;

#endif
