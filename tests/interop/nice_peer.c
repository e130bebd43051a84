/*
 * nice_peer.c - libnice (Debian libnice-dev) as the other ICE agent for
 * tests/ice_interop_test.sh: the peer no one here wrote.
 *
 *   nice_peer offer|answer STUN_IP STUN_PORT
 *
 * Speaks the stdio protocol of `stunkit punch --sdp`: the offer side prints
 * its SDP block (a=ice-ufrag, a=ice-pwd, a=candidate..., an empty line) and
 * reads the answer's; the answer side reads first. Once READY it answers
 * "SKP1 ping N" with "SKP1 pong N", sends its own "SKP1 ping 100" and
 * expects the pong, and ends on "SKP1 bye" (said back). The last line on
 * stdout: "nice: ready=1 pong=1 bye=1 controlling=1 local=<type> remote=<type>".
 * Exit 0 when ready and its ping was answered.
 */
#include <nice/agent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static GMainLoop *loop;
static NiceAgent *agent;
static guint stream;
static int ready, pong, bye, failed, gathered;

static void send_text(const char *t)
{
    nice_agent_send(agent, stream, 1, (guint)strlen(t), t);
}

static void on_gathered(NiceAgent *a, guint s, gpointer d)
{
    (void)a, (void)s, (void)d;
    gathered = 1;
    g_main_loop_quit(loop);
}

static void on_state(NiceAgent *a, guint s, guint c, guint state, gpointer d)
{
    (void)a, (void)s, (void)c, (void)d;
    if (state == NICE_COMPONENT_STATE_READY && !ready) {
        ready = 1;
        send_text("SKP1 ping 100");
    } else if (state == NICE_COMPONENT_STATE_FAILED) {
        failed = 1;
        g_main_loop_quit(loop);
    }
}

static void on_recv(NiceAgent *a, guint s, guint c, guint len, gchar *buf, gpointer d)
{
    (void)a, (void)s, (void)c, (void)d;
    char msg[128];
    unsigned seq;
    if (len >= sizeof(msg))
        return;
    memcpy(msg, buf, len);
    msg[len] = 0;
    if (sscanf(msg, "SKP1 ping %u", &seq) == 1) {
        char p[64];
        snprintf(p, sizeof(p), "SKP1 pong %u", seq);
        send_text(p);
    } else if (!strcmp(msg, "SKP1 pong 100")) {
        pong = 1;
    } else if (!strncmp(msg, "SKP1 bye", 8)) {
        send_text("SKP1 bye");
        bye = 1;
        g_main_loop_quit(loop);
    }
}

static gboolean on_timeout(gpointer d)
{
    (void)d;
    g_main_loop_quit(loop);
    return FALSE;
}

static void print_block(void)
{
    gchar *ufrag = NULL, *pwd = NULL;
    nice_agent_get_local_credentials(agent, stream, &ufrag, &pwd);
    printf("a=ice-ufrag:%s\na=ice-pwd:%s\n", ufrag, pwd);
    GSList *cands = nice_agent_get_local_candidates(agent, stream, 1);
    for (GSList *i = cands; i; i = i->next) {
        gchar *line = nice_agent_generate_local_candidate_sdp(agent, i->data);
        printf("%s\n", line);
        g_free(line);
    }
    g_slist_free_full(cands, (GDestroyNotify)nice_candidate_free);
    printf("a=end-of-candidates\n\n");
    fflush(stdout);
    g_free(ufrag);
    g_free(pwd);
}

static int read_block(void)
{
    char line[1024], ufrag[1024] = "", pwd[1024] = "";
    GSList *cands = NULL;
    int any = 0;
    while (fgets(line, sizeof(line), stdin)) {
        line[strcspn(line, "\r\n")] = 0;
        if (!line[0]) {
            if (any)
                break;
            continue;
        }
        any = 1;
        if (!strncmp(line, "a=ice-ufrag:", 12))
            snprintf(ufrag, sizeof(ufrag), "%s", line + 12);
        else if (!strncmp(line, "a=ice-pwd:", 10))
            snprintf(pwd, sizeof(pwd), "%s", line + 10);
        else if (!strncmp(line, "a=candidate:", 12)) {
            NiceCandidate *c = nice_agent_parse_remote_candidate_sdp(agent, stream, line);
            if (c)
                cands = g_slist_append(cands, c);
        } else if (!strncmp(line, "a=end-of-candidates", 19))
            break;
    }
    if (!ufrag[0] || !pwd[0] || !nice_agent_set_remote_credentials(agent, stream, ufrag, pwd))
        return -1;
    int n = nice_agent_set_remote_candidates(agent, stream, 1, cands);
    g_slist_free_full(cands, (GDestroyNotify)nice_candidate_free);
    return n;
}

static const char *type_name(NiceCandidateType t)
{
    switch (t) {
    case NICE_CANDIDATE_TYPE_HOST: return "host";
    case NICE_CANDIDATE_TYPE_SERVER_REFLEXIVE: return "srflx";
    case NICE_CANDIDATE_TYPE_PEER_REFLEXIVE: return "prflx";
    case NICE_CANDIDATE_TYPE_RELAYED: return "relay";
    }
    return "?";
}

int main(int argc, char **argv)
{
    if (argc != 4 || (strcmp(argv[1], "offer") && strcmp(argv[1], "answer"))) {
        fprintf(stderr, "usage: nice_peer offer|answer STUN_IP STUN_PORT\n");
        return 2;
    }
    int offer = !strcmp(argv[1], "offer");
    loop = g_main_loop_new(NULL, FALSE);
    agent = nice_agent_new(g_main_loop_get_context(loop), NICE_COMPATIBILITY_RFC5245);
    g_object_set(agent, "controlling-mode", offer, "stun-server", argv[2], "stun-server-port", atoi(argv[3]),
                 "ice-tcp", FALSE, NULL);
    g_signal_connect(agent, "candidate-gathering-done", G_CALLBACK(on_gathered), NULL);
    g_signal_connect(agent, "component-state-changed", G_CALLBACK(on_state), NULL);
    stream = nice_agent_add_stream(agent, 1);
    nice_agent_attach_recv(agent, stream, 1, g_main_loop_get_context(loop), on_recv, NULL);
    guint gather_timer = g_timeout_add(5000, on_timeout, NULL);
    nice_agent_gather_candidates(agent, stream);
    g_main_loop_run(loop);
    if (!gathered)
        fprintf(stderr, "nice_peer: gathering did not finish in 5 s\n");
    else
        g_source_remove(gather_timer); /* else it would end the connection's loop 5 s after the start */
    if (offer)
        print_block();
    if (read_block() < 0) {
        fprintf(stderr, "nice_peer: no usable remote description\n");
        return 1;
    }
    if (!offer)
        print_block();
    g_timeout_add(15000, on_timeout, NULL);
    g_main_loop_run(loop);
    NiceCandidate *l = NULL, *r = NULL;
    gboolean controlling = FALSE;
    g_object_get(agent, "controlling-mode", &controlling, NULL);
    nice_agent_get_selected_pair(agent, stream, 1, &l, &r);
    printf("nice: ready=%d pong=%d bye=%d failed=%d controlling=%d local=%s remote=%s\n", ready, pong, bye, failed,
           controlling, l ? type_name(l->type) : "none", r ? type_name(r->type) : "none");
    fflush(stdout);
    g_object_unref(agent);
    g_main_loop_unref(loop);
    return ready && pong ? 0 : 1;
}
