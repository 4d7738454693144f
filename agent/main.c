/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tributary-agent: the host agent's entry point.
 *
 * This build parses the command line and reports versions; the pipelines
 * (inputs, parsers, filters, the producer) land with the agent issue.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include <librdkafka/rdkafka.h>
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "tributary/version.h"

static void usage(FILE *out)
{
    fputs("Usage: tributary-agent [OPTIONS]\n"
          "\n"
          "The Tributary agent: tails files, receives syslog and samples host\n"
          "metrics, parses them and ships them as keyed events to Kafka-protocol\n"
          "brokers.\n"
          "\n"
          "Options:\n"
          "  -c, --config FILE   configuration (default /etc/tributary/agent.yaml)\n"
          "      --check-config  validate the configuration and exit\n"
          "      --dry-run       print events as JSON lines instead of shipping them\n"
          "  -h, --help          show this help and exit\n"
          "  -V, --version       show versions and exit\n",
          out);
}

int main(int argc, char **argv)
{
    enum { OPT_CHECK = 256, OPT_DRY_RUN };
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},    {"check-config", no_argument, NULL, OPT_CHECK},
        {"dry-run", no_argument, NULL, OPT_DRY_RUN}, {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},         {NULL, 0, NULL, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "c:hV", opts, NULL)) != -1) {
        switch (c) {
        case 'h':
            usage(stdout);
            return 0;
        case 'V': {
            char pcre[64] = "";
            pcre2_config(PCRE2_CONFIG_VERSION, pcre);
            trib_version_print(stdout, "tributary-agent");
            printf("  librdkafka %s\n", rd_kafka_version_str());
            printf("  pcre2 %s\n", pcre);
            return 0;
        }
        case 'c':
        case OPT_CHECK:
        case OPT_DRY_RUN:
            break;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "tributary-agent: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    fputs("tributary-agent: pipelines are not part of this build yet\n", stderr);
    return 1;
}
