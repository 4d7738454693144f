/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tributary: the command-line tool for operators (topics, groups, configs).
 * Subcommands arrive with the issues that give them something to talk to.
 */
#include <stdio.h>
#include <string.h>

#include "tributary/version.h"

static void usage(FILE *out)
{
    fputs("Usage: tributary [--help] [--version] COMMAND [ARGS]\n"
          "\n"
          "The Tributary command-line tool.\n"
          "\n"
          "Commands:\n"
          "  version     show versions\n"
          "  help        show this help\n"
          "\n"
          "Options:\n"
          "  -h, --help     show this help and exit\n"
          "  -V, --version  show versions and exit\n",
          out);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(cmd, "-V") || !strcmp(cmd, "--version") || !strcmp(cmd, "version")) {
        trib_version_print(stdout, "tributary");
        return 0;
    }
    fprintf(stderr, "tributary: unknown command '%s'\n", cmd);
    usage(stderr);
    return 2;
}
