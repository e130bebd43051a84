/*
 * fuzz_config.c - libFuzzer target for stunkitd's config file: the lexer
 * and every option's checks, through the real skd_config_parse() with
 * --config pointing at the input (a memfd). Whatever the bytes, parsing
 * ends in a result, frees what it took, and an accepted config is sane.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"
#include "log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        fd = memfd_create("stunkitd-fuzz.conf", 0);
        if (fd < 0)
            abort();
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
        abort();
    char *argv[] = {"stunkitd", "--config", path, NULL};
    skd_config cfg;
    int rv = skd_config_parse(&cfg, 3, argv);
    if (rv == 0) {
        if (cfg.threads < 1 || cfg.threads > 256 || (!cfg.udp && !cfg.tcp) || cfg.n_listen > SKD_MAX_LISTEN)
            abort();
        if (cfg.software && strlen(cfg.software) > SKD_SOFTWARE_MAX)
            abort();
        skd_sock_spec specs[64];
        skd_handler_cfg h;
        if (skd_config_sockets(&cfg, specs, 64, &h) < 0)
            abort();
    }
    skd_config_free(&cfg);
    return 0;
}
