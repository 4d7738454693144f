/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tributary: the command-line tool for operators and users. It talks to
 * any Kafka-protocol broker (our collector, Kafka, Redpanda) through the
 * small client in common/kafka/client.c, built on our generated codec.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stdbool.h>

#include "cli.h"
#include "tributary/version.h"

/* tributary groups (groups.c). */
int cli_groups(int argc, char **argv);
/* tributary sinks (sinks.c). */
int cli_sinks(int argc, char **argv);
/* tributary users (users.c). */
int cli_users(int argc, char **argv);
/* tributary acls (acls.c). */
int cli_acls(int argc, char **argv);

static int dispatch(int argc, char **argv, char **args);

static void usage(FILE *out)
{
    fputs("Usage: tributary [--help] [--version] [COMMON OPTIONS] COMMAND [ARGS]\n"
          "\n"
          "The Tributary command-line tool: topics, producing, consuming and the\n"
          "cluster, over the Kafka protocol.\n"
          "\n"
          "Commands:\n"
          "  topics create|list|describe|delete|alter   manage topics\n"
          "  produce --topic T                          write stdin lines as records\n"
          "  consume --topic T                          print records\n"
          "  cluster describe                           brokers, controller, under-replicated\n"
          "                                             and offline partitions\n"
          "  cluster drain --broker N                   move every replica off a broker\n"
          "  partitions reassign|status|elect-leaders   move replicas, watch the moves,\n"
          "                                             preferred-leader elections\n"
          "  groups list|describe|delete|reset-offsets  consumer groups, offsets and lag\n"
          "  sinks replay --sink NAME                   a running sink delivers again\n"
          "  users list|set|delete                      SCRAM users of SASL listeners\n"
          "  acls create|list|delete                    ACLs (Kafka's model)\n"
          "  version                                    show versions\n"
          "  help                                       show this help\n"
          "\n"
          "Every command takes the common options --bootstrap HOST:PORT[,HOST:PORT...]\n"
          "(-b; the first address that answers is used; default 127.0.0.1:9092, or\n"
          "$TRIBUTARY_BOOTSTRAP), --request-timeout-ms N (default 30000), --verbose and\n"
          "--command-config FILE, before the command (tributary -b HOST:PORT topics\n"
          "list) or after it.\n"
          "\n"
          "--command-config FILE reads TLS and SASL settings from a properties file, as\n"
          "Kafka's tools do (key=value lines, # comments):\n"
          "  security.protocol=PLAINTEXT|SSL|SASL_PLAINTEXT|SASL_SSL\n"
          "  ssl.ca.location=FILE           PEM CA certificates (default: the system's)\n"
          "  ssl.certificate.location=FILE  PEM client certificate, for mTLS\n"
          "  ssl.key.location=FILE          its PEM private key (ssl.key.password=...)\n"
          "  ssl.endpoint.identification.algorithm=https|none   check the host name\n"
          "  sasl.mechanism=PLAIN|SCRAM-SHA-256|SCRAM-SHA-512\n"
          "  sasl.username=NAME  sasl.password=SECRET   (or Kafka's sasl.jaas.config)\n"
          "TLS is 1.2 or 1.3 and the broker's certificate is always verified.\n"
          "`tributary COMMAND --help` describes a command's options.\n"
          "\n"
          "Exit codes:\n"
          "  0  success\n"
          "  1  the broker answered with a Kafka error (its name is printed), or\n"
          "     refused the SASL login\n"
          "  2  usage error\n"
          "  3  the broker could not be reached, or the connection or protocol failed\n"
          "  4  consume: --max records did not arrive within --timeout-ms\n"
          "\n"
          "Options:\n"
          "  -h, --help     show this help and exit\n"
          "  -V, --version  show versions and exit\n",
          out);
}

/*
 * Common options before the command ("tributary -b X topics list") move
 * after the command's own arguments, where every subcommand's parser takes
 * them (before a "--", if there is one). Returns the new argc, or -1 for a
 * common option missing its value.
 */
static int hoist_common(int argc, char **argv, char **out)
{
    int n = 0, i = 1;
    char *common[64];
    int nc = 0;
    while (i < argc && argv[i][0] == '-' && nc + 2 <= 64) {
        const char *a = argv[i];
        bool takes = !strcmp(a, "-b") || !strcmp(a, "--bootstrap") ||
                     !strcmp(a, "--bootstrap-server") || !strcmp(a, "--request-timeout-ms") ||
                     !strcmp(a, "--command-config");
        bool joined = !strncmp(a, "--bootstrap=", 12) || !strncmp(a, "--bootstrap-server=", 19) ||
                      !strncmp(a, "--request-timeout-ms=", 21) ||
                      !strncmp(a, "--command-config=", 17) ||
                      (!strncmp(a, "-b", 2) && a[2] != '\0');
        if (takes) {
            if (i + 1 >= argc) {
                fprintf(stderr, "tributary: error: %s needs a value\n", a);
                return -1;
            }
            common[nc++] = argv[i++];
            common[nc++] = argv[i++];
        } else if (joined || !strcmp(a, "--verbose")) {
            common[nc++] = argv[i++];
        } else {
            break; /* --help, --version, or not ours: the command line as it is */
        }
    }
    out[n++] = argv[0];
    int dashdash = argc;
    for (int k = i; k < argc; k++) {
        if (!strcmp(argv[k], "--")) {
            dashdash = k;
            break;
        }
    }
    for (int k = i; k < dashdash; k++) {
        out[n++] = argv[k];
    }
    for (int k = 0; k < nc; k++) {
        out[n++] = common[k];
    }
    for (int k = dashdash; k < argc; k++) {
        out[n++] = argv[k];
    }
    out[n] = NULL;
    return n;
}

int main(int argc, char **argv)
{
    char **args = calloc((size_t)argc + 1, sizeof(*args));
    if (!args) {
        fprintf(stderr, "tributary: error: out of memory\n");
        return CLI_ENET;
    }
    int rc = dispatch(argc, argv, args);
    free(args);
    return rc;
}

static int dispatch(int argc, char **argv, char **args)
{
    argc = hoist_common(argc, argv, args);
    if (argc < 0) {
        return CLI_EUSAGE;
    }
    argv = args;
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
    if (!strcmp(cmd, "partitions")) {
        return cli_partitions(argc - 1, argv + 1);
    }
    if (!strcmp(cmd, "groups")) {
        return cli_groups(argc - 1, argv + 1);
    }
    if (!strcmp(cmd, "sinks")) {
        return cli_sinks(argc - 1, argv + 1);
    }
    if (!strcmp(cmd, "users")) {
        return cli_users(argc - 1, argv + 1);
    }
    if (!strcmp(cmd, "acls")) {
        return cli_acls(argc - 1, argv + 1);
    }
    fprintf(stderr, "tributary: unknown command '%s'\n", cmd);
    usage(stderr);
    return CLI_EUSAGE;
}
