/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tributary: the command-line tool for operators and users. It talks to
 * any Kafka-protocol broker (our collector, Kafka, Redpanda) through the
 * small client in common/kafka/client.c, built on our generated codec.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "tributary/version.h"

/* tributary groups (groups.c). */
int cli_groups(int argc, char **argv);
/* tributary sinks (sinks.c). */
int cli_sinks(int argc, char **argv);

static void usage(FILE *out)
{
    fputs("Usage: tributary [--help] [--version] COMMAND [ARGS]\n"
          "\n"
          "The Tributary command-line tool: topics, producing, consuming and the\n"
          "cluster, over the Kafka protocol.\n"
          "\n"
          "Commands:\n"
          "  topics create|list|describe|delete|alter   manage topics\n"
          "  produce --topic T                          write stdin lines as records\n"
          "  consume --topic T                          print records\n"
          "  cluster describe                           brokers, controller, API versions\n"
          "  groups list|describe|delete|reset-offsets  consumer groups, offsets and lag\n"
          "  sinks replay --sink NAME                   a running sink delivers again\n"
          "  version                                    show versions\n"
          "  help                                       show this help\n"
          "\n"
          "Every command takes --bootstrap HOST:PORT (default 127.0.0.1:9092, or\n"
          "$TRIBUTARY_BOOTSTRAP), --request-timeout-ms N (default 30000) and --verbose.\n"
          "`tributary COMMAND --help` describes a command's options.\n"
          "\n"
          "Exit codes:\n"
          "  0  success\n"
          "  1  the broker answered with a Kafka error (its name is printed)\n"
          "  2  usage error\n"
          "  3  the broker could not be reached, or the connection or protocol failed\n"
          "  4  consume: --max records did not arrive within --timeout-ms\n"
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
        return CLI_EUSAGE;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
        usage(stdout);
        return CLI_OK;
    }
    if (!strcmp(cmd, "-V") || !strcmp(cmd, "--version") || !strcmp(cmd, "version")) {
        trib_version_print(stdout, "tributary");
        return CLI_OK;
    }
    if (!strcmp(cmd, "topics")) {
        return cli_topics(argc - 1, argv + 1);
    }
    if (!strcmp(cmd, "produce")) {
        return cli_produce(argc - 1, argv + 1);
    }
    if (!strcmp(cmd, "consume")) {
        return cli_consume(argc - 1, argv + 1);
    }
    if (!strcmp(cmd, "cluster")) {
        return cli_cluster(argc - 1, argv + 1);
    }
    if (!strcmp(cmd, "groups")) {
        return cli_groups(argc - 1, argv + 1);
    }
    if (!strcmp(cmd, "sinks")) {
        return cli_sinks(argc - 1, argv + 1);
    }
    fprintf(stderr, "tributary: unknown command '%s'\n", cmd);
    usage(stderr);
    return CLI_EUSAGE;
}
