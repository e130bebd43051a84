/*
 * main.c - the stunkit command: a table of subcommands, one file each
 * (cmd_<name>.c), dispatched by the first argument.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "stunkit/stunkit.h"

static int cmd_help(int argc, char **argv);
static int cmd_version(int argc, char **argv);

static const cli_cmd commands[] = {
    {"addr", cmd_addr, "print your public address and port as a STUN server sees it"},
    {"nat", cmd_nat, "name your NAT: mapping, filtering, hairpinning, lifetime (RFC 5780)"},
    {"decode", cmd_decode, "decode a STUN message (hex or raw) from stdin and verify it"},
    {"bench", cmd_bench, "closed-loop load against a STUN server, every answer checked"},
    {"turn", cmd_turn, "check a TURN server end to end: allocate, permit, bind, relay, delete"},
    {"map", cmd_map, "ask the router for a port (PCP, NAT-PMP, UPnP) and keep it renewed"},
    {"punch", cmd_punch, "connect two peers behind NATs (ICE): directly, or through the relay"},
    {"version", cmd_version, "print the version"},
    {"help", cmd_help, "show this list"},
};
#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *f)
{
    fprintf(f, "Usage: stunkit <command> [options]\n\nCommands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\n`stunkit <command> --help` describes a command's options.\n");
}

/* `stunkit help` lists the commands; `stunkit help CMD` is `stunkit CMD --help`. */
static int cmd_help(int argc, char **argv)
{
    if (argc < 2) {
        usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (!strcmp(argv[1], commands[i].name)) {
            if (commands[i].run == cmd_help) {
                usage(stdout);
                return 0;
            }
            char *args[] = {argv[1], (char *)"--help", NULL};
            return commands[i].run(2, args);
        }
    fprintf(stderr, "stunkit help: unknown command '%s' (try 'stunkit help')\n", argv[1]);
    return 2;
}

static int cmd_version(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    printf("stunkit %s\n", STUNKIT_VERSION);
    return 0;
}

void json_string(FILE *f, const char *s, size_t n)
{
    fputc('"', f);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20 || c == 0x7F)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

int cli_server_udp(const char *cmd, const char *text, int family, stunkit_addr *out)
{
    stunkit_server srv;
    if (stunkit_server_parse(text, &srv) != 0) {
        fprintf(stderr, "stunkit %s: '%s' is not a server (host, host:port, [v6]:port or stun:host[:port])\n", cmd,
                text);
        return 2;
    }
    if (stunkit_server_resolve(&srv, STUNKIT_UDP, family, out, 1) <= 0) {
        fprintf(stderr, "stunkit %s: %s: the name does not resolve%s\n", cmd, srv.host,
                family ? " to an address of the family asked for" : "");
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))
        return cmd_help(0, NULL);
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) /* as stunkitd -V */
        return cmd_version(0, NULL);
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "stunkit: unknown command '%s' (try 'stunkit help')\n", argv[1]);
    return 2;
}
