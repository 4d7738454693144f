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
#include "buffer/buffer.h"
#include "tributary/version.h"

#if defined(TRIB_JEMALLOC)
/*
 * jemalloc's options, read when it starts (MALLOC_CONF in the environment
 * still overrides them). Messages and their headers are allocated a batch
 * at a time and freed a batch at a time when its delivery reports arrive,
 * which overflows the default thread caches (20 to 200 chunks per size
 * class, shrunk by a GC between bursts): most calls then go to the arena.
 * Here the caches hold 2048 chunks and are not shrunk, for the size classes
 * up to 1 KiB only (the message and headers of an event from a line of up
 * to some 600 bytes): at most 2048 times the sum of those classes, 13 MiB,
 * and 2 to 7 MiB in the benchmarks. Larger chunks (long lines, librdkafka's
 * request buffers) bypass the caches.
 */
const char *malloc_conf =
    "tcache_max:1024,tcache_nslots_small_min:2048,tcache_nslots_small_max:2048,"
    "tcache_gc_incr_bytes:1000000000";
#endif

static void usage(FILE *out)
{
    fputs("Usage: tributary-agent [OPTIONS]\n"
          "\n"
          "The Tributary agent: tails files, receives syslog, samples host and\n"
          "Prometheus metrics, parses and filters the events and ships them as keyed\n"
          "JSON to Kafka-protocol brokers, at least once (events that cannot be read\n"
          "again wait in a disk buffer until they are acknowledged).\n"
          "\n"
          "Options:\n"
          "  -c, --config FILE   configuration (default /etc/tributary/agent.yaml)\n"
          "      --check-config  validate the configuration and exit (0 good, 2 bad)\n"
          "      --dry-run       print events as JSON lines on stdout instead of shipping\n"
          "                      them: checkpoints are read, never written; state_dir is\n"
          "                      not locked; syslog listeners and the metrics endpoint are\n"
          "                      not started, so a dry run beside the running agent takes\n"
          "                      none of its ports or messages\n"
          "      --input FILE    with --dry-run: the lines of FILE ('-': stdin) go through\n"
          "                      the pipeline of one input instead of its own source (files\n"
          "                      or listener); the agent exits once they are printed\n"
          "      --input-id ID   the input --input feeds (needed when there are several)\n"
          "      --once          read the files to their end, deliver, exit; syslog, metrics\n"
          "                      and prometheus inputs (which have no end) are not started\n"
          "  -h, --help          show this help and exit\n"
          "  -V, --version       show versions and exit\n"
          "\n"
          "       tributary-agent buffer check|dump [-c FILE | --dir DIR]\n"
          "\n"
          "Inspects the disk buffer (state_dir/buffer of the configuration, or DIR)\n"
          "without changing it; stop the agent first. check prints what it found and\n"
          "exits 0 when the buffer is intact, 1 when it found damage; dump prints every\n"
          "event not yet acknowledged as a JSON line.\n"
          "\n"
          "Signals: SIGHUP reloads the configuration, SIGTERM drains and exits.\n",
          out);
}

/* tributary-agent buffer check|dump [-c FILE | --dir DIR] */
static int buffer_cmd(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"dir", required_argument, NULL, 'd'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *config = "/etc/tributary/agent.yaml";
    const char *dir = NULL;
    int c;
    optind = 2;
    while ((c = getopt_long(argc, argv, "c:d:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            config = optarg;
            break;
        case 'd':
            dir = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind + 1 != argc ||
        (strcmp(argv[optind], "check") != 0 && strcmp(argv[optind], "dump") != 0)) {
        fputs("tributary-agent: buffer needs check or dump\n", stderr);
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[optind];
    char path[4096];
    agent_config_t *cfg = NULL;
    if (dir == NULL) {
        int rc = agent_config_load(&cfg, config);
        if (rc != 0) {
            if (cfg != NULL) {
                agent_config_print_errors(cfg, stderr);
            }
            agent_config_free(cfg);
            return rc == -ENOMEM ? 1 : 2;
        }
        snprintf(path, sizeof(path), "%s/buffer", cfg->conf.agent.state_dir);
        agent_config_free(cfg);
        dir = path;
    }
    int rc;
    if (strcmp(cmd, "check") == 0) {
        agent_buffer_report_t r;
        rc = agent_buffer_check(dir, stdout, &r);
    } else {
        rc = agent_buffer_dump(dir, stdout);
    }
    if (rc < 0) {
        fprintf(stderr, "tributary-agent: %s: %s\n", dir, strerror(-rc));
        return 1;
    }
    return rc;
}

int main(int argc, char **argv)
{
    enum { OPT_CHECK = 256, OPT_DRY_RUN, OPT_ONCE, OPT_INPUT, OPT_INPUT_ID };
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"check-config", no_argument, NULL, OPT_CHECK},
        {"dry-run", no_argument, NULL, OPT_DRY_RUN},
        {"once", no_argument, NULL, OPT_ONCE},
        {"input", required_argument, NULL, OPT_INPUT},
        {"input-id", required_argument, NULL, OPT_INPUT_ID},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    if (argc >= 2 && strcmp(argv[1], "buffer") == 0) {
        return buffer_cmd(argc, argv);
    }
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
        case OPT_INPUT:
            o.input_path = optarg;
            break;
        case OPT_INPUT_ID:
            o.input_id = optarg;
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
    if ((o.input_path != NULL || o.input_id != NULL) && !o.dry_run) {
        fputs("tributary-agent: --input and --input-id need --dry-run\n", stderr);
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
