/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tributary-agent: the host agent's entry point.
 *
 * Exit status: 0 after a clean stop (SIGTERM/SIGINT drained) or a good
 * --check-config; 2 for a bad command line or configuration (errors are
 * printed file:line:col); 1 for anything else (state_dir unusable or locked
 * by another agent, a producer that cannot be made).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "agent.h"
#include "tributary/version.h"

static void usage(FILE *out)
{
    fputs("Usage: tributary-agent [OPTIONS]\n"
          "\n"
          "The Tributary agent: tails files, parses and filters their lines and\n"
          "ships them as keyed JSON events to Kafka-protocol brokers, at least once.\n"
          "\n"
          "Options:\n"
          "  -c, --config FILE   configuration (default /etc/tributary/agent.yaml)\n"
          "      --check-config  validate the configuration and exit (0 good, 2 bad)\n"
          "      --dry-run       print events as JSON lines on stdout instead of shipping\n"
          "                      them (checkpoints are read, never written)\n"
          "      --once          exit once every file is read to its end and acknowledged\n"
          "  -h, --help          show this help and exit\n"
          "  -V, --version       show versions and exit\n"
          "\n"
          "Signals: SIGHUP reloads the configuration, SIGTERM drains and exits.\n",
          out);
}

int main(int argc, char **argv)
{
    enum { OPT_CHECK = 256, OPT_DRY_RUN, OPT_ONCE };
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"check-config", no_argument, NULL, OPT_CHECK},
        {"dry-run", no_argument, NULL, OPT_DRY_RUN},
        {"once", no_argument, NULL, OPT_ONCE},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    const char *config = "/etc/tributary/agent.yaml";
    bool check = false;
    agent_options_t o;
    memset(&o, 0, sizeof(o));
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
            config = optarg;
            break;
        case OPT_CHECK:
            check = true;
            break;
        case OPT_DRY_RUN:
            o.dry_run = true;
            break;
        case OPT_ONCE:
            o.once = true;
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
    agent_config_t *cfg = NULL;
    int rc = agent_config_load(&cfg, config);
    if (rc == -ENOMEM || cfg == NULL) {
        fputs("tributary-agent: out of memory\n", stderr);
        agent_config_free(cfg);
        return 1;
    }
    if (rc != 0) {
        agent_config_print_errors(cfg, stderr);
        size_t n = agent_config_error_count(cfg);
        fprintf(stderr, "%s: %zu error%s\n", config, n, n == 1 ? "" : "s");
        agent_config_free(cfg);
        return 2;
    }
    if (check) {
        printf("%s: ok\n", config);
        agent_config_free(cfg);
        return 0;
    }
    o.config_path = config;
    agent_t *a = NULL;
    rc = agent_new(&a, cfg, &o);
    int status;
    if (rc != 0) {
        status = 1;
    } else {
        status = agent_run(a);
    }
    /* the agent may have swapped in a reloaded configuration */
    if (a != NULL) {
        cfg = NULL;
    }
    agent_config_t *last = a != NULL ? agent_take_config(a) : NULL;
    agent_free(a);
    agent_config_free(last != NULL ? last : cfg);
    return status;
}
