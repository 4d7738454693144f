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
#include <netdb.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "agent.h"
#include "buffer/buffer.h"
#include "regex.h"
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
          "       tributary-agent status [-c FILE]\n"
          "\n"
          "Prints the running agent's state, asked over its metrics endpoint\n"
          "(agent.metrics, GET /status): health, output, disk buffer, and per input\n"
          "its files with the offset read, the offset acknowledged, the size and the\n"
          "lag in bytes. Exits 1 when the agent cannot be reached.\n"
          "\n"
          "Signals: SIGHUP reloads the configuration, SIGTERM drains and exits.\n",
          out);
}

/*
 * tributary-agent status [-c FILE]: asks the running agent, over its
 * metrics endpoint (agent.metrics of the configuration), for GET /status
 * and prints it. 0: printed; 1: the agent cannot be reached; 2: usage or
 * configuration.
 */
static int status_cmd(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *config = "/etc/tributary/agent.yaml";
    int c;
    optind = 2;
    while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            config = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }
    agent_config_t *cfg = NULL;
    int rc = agent_config_load(&cfg, config);
    if (rc != 0) {
        if (cfg != NULL) {
            agent_config_print_errors(cfg, stderr);
        }
        agent_config_free(cfg);
        return rc == -ENOMEM ? 1 : 2;
    }
    const trib_config_addr_t *m = &cfg->conf.agent.metrics;
    if (m->text == NULL) {
        fprintf(stderr,
                "tributary-agent: %s sets no agent.metrics: the agent serves its status there\n",
                config);
        agent_config_free(cfg);
        return 2;
    }
    char host[256], port[16];
    snprintf(host, sizeof(host), "%s",
             m->host[0] == '\0' || strcmp(m->host, "0.0.0.0") == 0 ? "127.0.0.1"
             : strcmp(m->host, "::") == 0                          ? "::1"
                                                                   : m->host);
    snprintf(port, sizeof(port), "%u", (unsigned)m->port);
    agent_config_free(cfg);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST};
    struct addrinfo *ai = NULL;
    int fd = -1;
    if (getaddrinfo(host, port, &hints, &ai) == 0) {
        fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct timeval tv = {.tv_sec = 10};
        if (fd >= 0) {
            (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
            (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        }
        if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
            int e = errno;
            close(fd);
            fd = -1;
            errno = e;
        }
        freeaddrinfo(ai);
    } else {
        errno = EINVAL;
    }
    if (fd < 0) {
        fprintf(stderr, "tributary-agent: cannot reach the agent at %s:%s: %s (is it running?)\n",
                host, port, strerror(errno));
        return 1;
    }
    static const char req[] = "GET /status HTTP/1.0\r\nHost: agent\r\n\r\n";
    char *resp = NULL;
    size_t len = 0;
    bool ok = write(fd, req, sizeof(req) - 1) == (ssize_t)(sizeof(req) - 1);
    for (size_t cap = 0; ok;) {
        if (len + 4096 > cap) {
            cap = cap ? cap * 2 : 65536;
            char *n = realloc(resp, cap + 1);
            if (n == NULL) {
                ok = false;
                break;
            }
            resp = n;
        }
        ssize_t r = read(fd, resp + len, cap - len);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            ok = r == 0;
            break;
        }
        len += (size_t)r;
    }
    close(fd);
    const char *body = NULL;
    if (ok && resp != NULL) {
        resp[len] = '\0';
        body = strstr(resp, "\r\n\r\n");
    }
    if (body == NULL || strncmp(resp, "HTTP/1.", 7) != 0 || strncmp(resp + 8, " 200", 4) != 0) {
        fprintf(stderr, "tributary-agent: no status from %s:%s (%s)\n", host, port,
                resp != NULL && len > 0 ? "unexpected answer" : strerror(errno));
        free(resp);
        return 1;
    }
    fputs(body + 4, stdout);
    free(resp);
    return 0;
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
    if (argc >= 2 && strcmp(argv[1], "status") == 0) {
        return status_cmd(argc, argv);
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
        (void)agent_config_print_warnings(cfg, stderr);
        size_t n = agent_config_error_count(cfg);
        fprintf(stderr, "%s: %zu error%s\n", config, n, n == 1 ? "" : "s");
        agent_config_free(cfg);
        return 2;
    }
    size_t nwarn = agent_config_print_warnings(cfg, stderr);
    if (check) {
        if (nwarn > 0) {
            printf("%s: ok, %zu warning%s\n", config, nwarn, nwarn == 1 ? "" : "s");
            agent_config_free(cfg);
            return 0;
        }
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
