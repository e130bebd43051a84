/* cli.h - the stunkit command's subcommands and their shared helpers. */
#ifndef STUNKIT_CLI_H
#define STUNKIT_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct cli_cmd {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary; /* one line for `stunkit help` */
} cli_cmd;

int cmd_decode(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_addr(int argc, char **argv);
int cmd_nat(int argc, char **argv);
int cmd_turn(int argc, char **argv);
int cmd_map(int argc, char **argv);
int cmd_punch(int argc, char **argv);

/* JSON string output: quotes, backslashes and control bytes escaped. */
void json_string(FILE *f, const char *s, size_t n);

/* SERVER as the user wrote it (host, host:port, [v6]:port, stun: URI) to its
 * first address over UDP of the given family (0: any): 0, or the exit status
 * after one line on stderr ("stunkit CMD: ..."): 2 not a server, 1 the name
 * does not resolve. */
struct stunkit_addr;
int cli_server_udp(const char *cmd, const char *text, int family, struct stunkit_addr *out);

#endif
