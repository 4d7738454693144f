/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tributary-bench-parse: the agent's per-line work without the rest of the
 * agent. The lines tributary-bench-agent writes (its access-log, JSON and
 * logfmt lines, the same configuration of each parse mode) go through
 * agent_event_begin() and agent_pipeline_process() as a tail input hands
 * them over: the parse step, its time, the rendering of the value JSON
 * and the headers. Nothing is read from disk or sent.
 *
 *   tributary-bench-parse [--parse none,regex,json,logfmt] [--lines N] [--rounds R] [--print]
 *
 * Prints per mode the instructions per line (user space, counted by the
 * CPU through perf_event_open(): the same on a loaded machine as on an
 * idle one) and the thread's CPU nanoseconds per line, the median of R
 * rounds over the same N lines. Where perf events are not allowed, the
 * instruction column says "-". --print writes each value of the first
 * round to standard output, a line each, instead of the figures (to
 * compare two builds' output).
 */
#include <errno.h>
#include <stdbool.h>
#include <linux/perf_event.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "pipeline.h"
#include "stats.h"

#define PATTERN                                                                                    \
    "^(?<client>\\S+) \\S+ \\S+ \\[(?<time>[^\\]]+)\\] \"(?<method>\\S+) (?<path>\\S+)[^\"]*\" "   \
    "(?<status>\\d{3}) (?<bytes>\\d+)"

static const int statuses[] = {200, 200, 200, 304, 404, 500};

/* The lines of agent_bench.py, byte for byte. */
static int line_of(const char *mode, size_t i, char *out, size_t outlen)
{
    unsigned a = (unsigned)(i % 7), b = (unsigned)(i / 7 % 256), c = (unsigned)(i % 251);
    unsigned mi = (unsigned)(i / 60 % 60), se = (unsigned)(i % 60), page = (unsigned)(i % 13);
    int st = statuses[i % 6];
    unsigned bytes = (unsigned)(100 + i % 9000);
    unsigned long long seq = (unsigned long long)i;
    if (strcmp(mode, "json") == 0) {
        return snprintf(out, outlen,
                        "{\"time\":\"2026-11-26T10:%02u:%02uZ\",\"client\":\"10.%u.%u.%u\","
                        "\"method\":\"GET\",\"path\":\"/api/v1/items/%08llu?page=%u\","
                        "\"status\":%d,\"bytes\":%u,"
                        "\"ua\":\"Mozilla/5.0 (X11; Linux x86_64) curl/8.4.0\",\"seq\":%llu}",
                        mi, se, a, b, c, seq, page, st, bytes, seq);
    }
    if (strcmp(mode, "logfmt") == 0) {
        return snprintf(out, outlen,
                        "time=2026-11-26T10:%02u:%02uZ client=10.%u.%u.%u method=GET "
                        "path=/api/v1/items/%08llu?page=%u status=%d bytes=%u "
                        "ua=\"Mozilla/5.0 (X11; Linux x86_64) curl/8.4.0\" seq=%llu",
                        mi, se, a, b, c, seq, page, st, bytes, seq);
    }
    return snprintf(out, outlen,
                    "10.%u.%u.%u - - [26/Nov/2026:10:%02u:%02u +0000] \"GET "
                    "/api/v1/items/%08llu?page=%u HTTP/1.1\" %d %u \"-\" \"Mozilla/5.0 (X11; "
                    "Linux x86_64) curl/8.4.0\" seq=%llu",
                    a, b, c, mi, se, seq, page, st, bytes, seq);
}

static int config_of(const char *mode, char *out, size_t outlen)
{
    int n = snprintf(out, outlen,
                     "agent: {id: bench, hostname: bench-host, state_dir: /nonexistent}\n"
                     "output: {brokers: [\"127.0.0.1:9\"], headers: true}\n"
                     "pipelines:\n  - name: bench\n    inputs:\n      - type: tail\n"
                     "        paths: [\"/var/log/bench/access.log\"]\n");
    if (strcmp(mode, "regex") == 0) {
        n += snprintf(out + n, outlen - (size_t)n,
                      "    parse:\n      - type: regex\n        pattern: '%s'\n"
                      "        time_field: time\n"
                      "        time_format: '%%d/%%b/%%Y:%%H:%%M:%%S %%z'\n",
                      PATTERN);
    } else if (strcmp(mode, "json") == 0 || strcmp(mode, "logfmt") == 0) {
        n += snprintf(out + n, outlen - (size_t)n,
                      "    parse:\n      - type: %s\n        time_field: time\n"
                      "        time_format: rfc3339\n",
                      mode);
    }
    n += snprintf(out + n, outlen - (size_t)n, "    topic: bench\n    key: \"\"\n");
    return n;
}

static int perf_open(void)
{
    struct perf_event_attr pe;
    memset(&pe, 0, sizeof(pe));
    pe.type = PERF_TYPE_HARDWARE;
    pe.size = sizeof(pe);
    pe.config = PERF_COUNT_HW_INSTRUCTIONS;
    pe.disabled = 1;
    pe.exclude_kernel = 1;
    pe.exclude_hv = 1;
    return (int)syscall(SYS_perf_event_open, &pe, 0, -1, -1, 0);
}

static int64_t cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int run_mode(const char *mode, size_t nlines, int rounds, int pfd, bool print)
{
    char text[2048];
    int tl = config_of(mode, text, sizeof(text));
    agent_config_t *cfg = NULL;
    int rc = agent_config_load_string(&cfg, "bench.yaml", text, (size_t)tl);
    if (rc != 0) {
        if (cfg != NULL) {
            agent_config_print_errors(cfg, stderr);
            agent_config_free(cfg);
        }
        fprintf(stderr, "%s: the configuration does not load (%d)\n", mode, rc);
        return -1;
    }
    const agent_conf_t *k = &cfg->conf;
    const agent_pipeline_conf_t *pc = &k->pipelines[0];
    /* the lines, one buffer, as a tail input reads them */
    size_t cap = nlines * 256 + 1, used = 0;
    char *buf = malloc(cap);
    size_t *off = malloc((nlines + 1) * sizeof(*off));
    if (buf == NULL || off == NULL) {
        fprintf(stderr, "out of memory\n");
        return -1;
    }
    for (size_t i = 0; i < nlines; i++) {
        off[i] = used;
        used += (size_t)line_of(mode, i, buf + used, cap - used);
    }
    off[nlines] = used;
    agent_stats_t st;
    agent_input_stats_t ist;
    memset(&st, 0, sizeof(st));
    memset(&ist, 0, sizeof(ist));
    agent_pipeline_t pl;
    if (agent_pipeline_init(&pl, pc, k, &st) != 0) {
        fprintf(stderr, "out of memory\n");
        return -1;
    }
    static const char jpath[] = "\"/var/log/bench/access.log\"";
    agent_source_t src = {"tail", "path", "/var/log/bench/access.log", &ist};
    double *ins = calloc((size_t)rounds, sizeof(double));
    double *ns = calloc((size_t)rounds, sizeof(double));
    size_t bytes_out = 0, failed = 0;
    for (int r = 0; r < rounds; r++) {
        int64_t wall = 1795687200000;
        if (pfd >= 0) {
            ioctl(pfd, PERF_EVENT_IOC_RESET, 0);
            ioctl(pfd, PERF_EVENT_IOC_ENABLE, 0);
        }
        int64_t t0 = cpu_ns();
        for (size_t i = 0; i < nlines; i++) {
            agent_event_t ev;
            size_t len = off[i + 1] - off[i];
            if (agent_event_begin(&ev, &pl, &pc->inputs[0], wall + (int64_t)(i / 4096), jpath,
                                  sizeof(jpath) - 1, true, buf + off[i], len,
                                  len * 2 + 1024) != 0) {
                fprintf(stderr, "out of memory\n");
                return -1;
            }
            agent_msg_t m;
            bool routed = false;
            if (agent_pipeline_process(&pl, &ev, &src, &m, &routed) != 0) {
                failed++;
                continue;
            }
            bytes_out += m.value_len;
            if (print && r == 0) {
                fwrite(m.value, 1, m.value_len, stdout);
                putchar('\n');
            }
        }
        int64_t t1 = cpu_ns();
        long long count = 0;
        if (pfd >= 0) {
            ioctl(pfd, PERF_EVENT_IOC_DISABLE, 0);
            if (read(pfd, &count, sizeof(count)) != (ssize_t)sizeof(count)) {
                count = 0;
            }
        }
        ins[r] = (double)count / (double)nlines;
        ns[r] = (double)(t1 - t0) / (double)nlines;
    }
    qsort(ins, (size_t)rounds, sizeof(double), cmp_double);
    qsort(ns, (size_t)rounds, sizeof(double), cmp_double);
    if (print) {
        rounds = 1;
    }
    char ibuf[32] = "-";
    if (pfd >= 0) {
        snprintf(ibuf, sizeof(ibuf), "%.0f", ins[rounds / 2]);
    }
    if (!print) {
        printf("%-8s %14s %12.1f %14.0f   (%zu not rendered, %zu B per value)\n", mode, ibuf,
               ns[rounds / 2], 1e9 / ns[rounds / 2], failed / (size_t)rounds,
               bytes_out / ((size_t)rounds * nlines));
    }
    free(ins);
    free(ns);
    agent_pipeline_fini(&pl);
    free(buf);
    free(off);
    agent_config_free(cfg);
    return 0;
}

int main(int argc, char **argv)
{
    const char *modes = "none,regex,json,logfmt";
    size_t nlines = 200000;
    int rounds = 5;
    bool print = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--parse") == 0 && i + 1 < argc) {
            modes = argv[++i];
        } else if (strcmp(argv[i], "--lines") == 0 && i + 1 < argc) {
            nlines = strtoul(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) {
            rounds = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--print") == 0) {
            print = true;
        } else {
            fprintf(
                stderr,
                "usage: %s [--parse none,regex,json,logfmt] [--lines N] [--rounds R] [--print]\n",
                argv[0]);
            return 2;
        }
    }
    if (nlines == 0 || rounds < 1) {
        fprintf(stderr, "--lines and --rounds must be positive\n");
        return 2;
    }
    int pfd = perf_open();
    if (!print) {
        printf("%zu lines, %d rounds, medians%s\n", nlines, rounds,
               pfd < 0 ? " (perf events not allowed: no instruction counts)" : "");
        printf("%-8s %14s %12s %14s\n", "parse", "instr/line", "CPU ns/line", "lines/CPU-s");
    }
    char *list = strdup(modes);
    int rc = 0;
    for (char *save = NULL, *m = strtok_r(list, ",", &save); m != NULL;
         m = strtok_r(NULL, ",", &save)) {
        if (strcmp(m, "none") != 0 && strcmp(m, "regex") != 0 && strcmp(m, "json") != 0 &&
            strcmp(m, "logfmt") != 0) {
            fprintf(stderr, "--parse: %s is not one of none, regex, json, logfmt\n", m);
            rc = 2;
            break;
        }
        if (run_mode(m, nlines, rounds, pfd, print) != 0) {
            rc = 1;
            break;
        }
    }
    free(list);
    if (pfd >= 0) {
        close(pfd);
    }
    return rc;
}
