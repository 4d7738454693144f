/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Host metrics and the Prometheus text format.
 *
 * The sampler runs against fixture /proc trees written into a temp dir:
 * two collects with advancing counters give exact percentages and rates;
 * counters that go down skip their sample and the next collect rates from
 * the new baseline; missing and malformed files skip their collector and
 * are counted, never crash (also under a seeded mutation loop); mounts are
 * unescaped, filtered and deduplicated; thousands of devices stay cheap and
 * the series table is bounded. One test reads the real host.
 *
 * The parser is fed tricky escapes, family types, timestamps, special
 * values, CRLF and malformed lines (counted exactly), a 2 MiB line, and
 * seeded mutations of a valid body copied to exact-size buffers so ASan
 * catches any read past the end. The scrape runs
 * against a one-connection HTTP server on 127.0.0.1 served by a thread:
 * 200, 404, a redirect, bodies over the limit (with and without a
 * Content-Length) and a server that never answers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "hostmetrics/hostmetrics.h"

/* ---------------------------------------------------------------------- */
/* Capturing samples                                                      */

typedef struct cap_sample {
    char metric[64];
    char labels[512]; /* "k=v,k=v" in emission order */
    double value;
} cap_sample_t;

typedef struct cap {
    cap_sample_t *s;
    size_t n;
    size_t cap;
} cap_t;

static void cap_emit(void *ud, const agent_hm_sample_t *s)
{
    cap_t *c = ud;
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 64;
        c->s = realloc(c->s, c->cap * sizeof(*c->s));
        assert_non_null(c->s);
    }
    cap_sample_t *d = &c->s[c->n++];
    memset(d, 0, sizeof(*d));
    assert_non_null(s->metric);
    snprintf(d->metric, sizeof(d->metric), "%s", s->metric);
    assert_true(s->nlabels <= AGENT_HM_MAX_LABELS);
    size_t off = 0;
    for (size_t i = 0; i < s->nlabels; i++) {
        int n = snprintf(d->labels + off, sizeof(d->labels) - off, "%s%s=%s", i ? "," : "",
                         s->labels[i].name, s->labels[i].value);
        assert_true(n > 0 && (size_t)n < sizeof(d->labels) - off);
        off += (size_t)n;
    }
    d->value = s->value;
}

static void cap_reset(cap_t *c)
{
    c->n = 0;
}

static void cap_fini(cap_t *c)
{
    free(c->s);
    memset(c, 0, sizeof(*c));
}

static const cap_sample_t *cap_find(const cap_t *c, const char *metric, const char *labels)
{
    const cap_sample_t *found = NULL;
    for (size_t i = 0; i < c->n; i++) {
        if (strcmp(c->s[i].metric, metric) == 0 && strcmp(c->s[i].labels, labels) == 0) {
            assert_null(found); /* one sample per series and collect */
            found = &c->s[i];
        }
    }
    return found;
}

static size_t cap_count(const cap_t *c, const char *metric)
{
    size_t n = 0;
    for (size_t i = 0; i < c->n; i++) {
        n += strcmp(c->s[i].metric, metric) == 0;
    }
    return n;
}

static size_t cap_count_prefix(const cap_t *c, const char *prefix)
{
    size_t n = 0;
    for (size_t i = 0; i < c->n; i++) {
        n += strncmp(c->s[i].metric, prefix, strlen(prefix)) == 0;
    }
    return n;
}

#define assert_value(c, metric, labels, expected)                                                  \
    do {                                                                                           \
        const cap_sample_t *s_ = cap_find((c), (metric), (labels));                                \
        double e_ = (double)(expected);                                                            \
        if (s_ == NULL) {                                                                          \
            fail_msg("no sample %s{%s}", (metric), (labels));                                      \
        }                                                                                          \
        if (fabs(s_->value - e_) > 1e-9 * (fabs(e_) + 1)) {                                        \
            fail_msg("%s{%s} = %.17g, expected %.17g", (metric), (labels), s_->value, e_);         \
        }                                                                                          \
    } while (0)

#define assert_absent(c, metric, labels)                                                           \
    do {                                                                                           \
        if (cap_find((c), (metric), (labels)) != NULL) {                                           \
            fail_msg("unexpected sample %s{%s}", (metric), (labels));                              \
        }                                                                                          \
    } while (0)

/* ---------------------------------------------------------------------- */
/* Fixture /proc trees                                                    */

static char *fx_root(void)
{
    char tmpl[] = "/tmp/test_hostmetrics.XXXXXX";
    assert_non_null(mkdtemp(tmpl));
    char *r = strdup(tmpl);
    assert_non_null(r);
    char p[512];
    snprintf(p, sizeof(p), "%s/proc", r);
    assert_int_equal(mkdir(p, 0755), 0);
    snprintf(p, sizeof(p), "%s/proc/net", r);
    assert_int_equal(mkdir(p, 0755), 0);
    snprintf(p, sizeof(p), "%s/proc/self", r);
    assert_int_equal(mkdir(p, 0755), 0);
    return r;
}

static void fx_write(const char *root, const char *rel, const char *content, size_t len)
{
    char p[512];
    snprintf(p, sizeof(p), "%s/%s", root, rel);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(content, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static void fx_put(const char *root, const char *rel, const char *content)
{
    fx_write(root, rel, content, strlen(content));
}

static void fx_mkdir(const char *root, const char *rel)
{
    char p[512];
    snprintf(p, sizeof(p), "%s/%s", root, rel);
    assert_int_equal(mkdir(p, 0755), 0);
}

static int fx_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void fx_rm(char *root)
{
    assert_int_equal(nftw(root, fx_rm_one, 16, FTW_DEPTH | FTW_PHYS), 0);
    free(root);
}

static const char net_header[] =
    "Inter-|   Receive                                                |  Transmit\n"
    " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs "
    "drop fifo colls carrier compressed\n";

static void fx_round1(const char *root)
{
    /* Since boot: 1000 jiffies in all; user 10, system 10, idle 70, iowait 10. */
    fx_put(root, "proc/stat",
           "cpu  100 0 100 700 100 0 0 0 0 0\n"
           "cpu0 50 0 50 350 50 0 0 0 0 0\n"
           "cpu1 50 0 50 350 50 0 0 0 0 0\n"
           "intr 12345 1 2 3\n"
           "ctxt 999\n"
           "btime 1700000000\n");
    fx_put(root, "proc/meminfo",
           "MemTotal:       16000000 kB\n"
           "MemFree:         4000000 kB\n"
           "MemAvailable:    8000000 kB\n"
           "Buffers:         1000000 kB\n"
           "Cached:          2000000 kB\n"
           "SwapCached:            0 kB\n"
           "SwapTotal:       2000000 kB\n"
           "SwapFree:         500000 kB\n"
           "HugePages_Total:       0\n");
    fx_put(root, "proc/loadavg", "0.50 1.25 2.00 1/234 5678\n");
    fx_put(root, "proc/diskstats",
           "   7       0 loop0 5 0 10 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
           "   1       0 ram0 5 0 10 0 0 0 0 0 0 0 0\n"
           "   8       0 sda 1000 10 20000 300 500 20 10000 400 0 1000 700 0 0 0 0 0 0\n"
           "   8       1 sda1 900 10 18000 300 400 20 8000 400 0 900 700\n"
           "  11       0 sr0 0 0 0 0 0 0 0 0 0 0 0\n"
           " 252       0 zram0 10 0 80 0 10 0 80 0 0 100 0\n");
    char net[2048];
    snprintf(net, sizeof(net),
             "%s"
             "    lo:    1000      10    0    0    0     0          0         0     1000      10 "
             "   0    0    0     0       0          0\n"
             "  eth0:    5000      50    1    2    0     0          0         0     3000      30 "
             "   3    4    0     0       0          0\n"
             "verylongname0:100 1 0 0 0 0 0 0 100 1 0 0 0 0 0 0\n",
             net_header);
    fx_put(root, "proc/net/dev", net);
}

static void fx_round2(const char *root)
{
    /* total: +250 user, +100 system, +400 idle, +50 iowait, +50 irq,
       +50 softirq, +100 steal = 1000; cpu0: +100 user, +400 idle;
       cpu1 unchanged (no time passed: no sample). */
    fx_put(root, "proc/stat",
           "cpu  350 0 200 1100 150 50 50 100 0 0\n"
           "cpu0 150 0 50 750 50 0 0 0 0 0\n"
           "cpu1 50 0 50 350 50 0 0 0 0 0\n"
           "intr 12400 1 2 3\n");
    /* 2 s later: sda +200 reads, +4000 sectors read, +100 writes,
       +2000 sectors written, +500 ms busy; zram0 busier than the clock. */
    fx_put(root, "proc/diskstats",
           "   7       0 loop0 50 0 100 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
           "   8       0 sda 1200 10 24000 300 600 20 12000 400 0 1500 700 0 0 0 0 0 0\n"
           "   8       1 sda1 900 10 18000 300 400 20 8000 400 0 900 700\n"
           "  11       0 sr0 0 0 0 0 0 0 0 0 0 0 0\n"
           " 252       0 zram0 10 0 80 0 10 0 80 0 0 5100 0\n");
    char net[2048];
    snprintf(net, sizeof(net),
             "%s"
             "    lo:    1000      10    0    0    0     0          0         0     1000      10 "
             "   0    0    0     0       0          0\n"
             "  eth0:    7000      70    5    6    0     0          0         0     4000      34 "
             "   7    8    0     0       0          0\n"
             "verylongname0:300 3 0 0 0 0 0 0 100 1 0 0 0 0 0 0\n",
             net_header);
    fx_put(root, "proc/net/dev", net);
}

/* ---------------------------------------------------------------------- */
/* Sampler tests                                                          */

static void test_collector_bits(void **state)
{
    (void)state;
    assert_int_equal(agent_hm_collector_bit("cpu"), AGENT_HM_CPU);
    assert_int_equal(agent_hm_collector_bit("memory"), AGENT_HM_MEMORY);
    assert_int_equal(agent_hm_collector_bit("load"), AGENT_HM_LOAD);
    assert_int_equal(agent_hm_collector_bit("disk"), AGENT_HM_DISK);
    assert_int_equal(agent_hm_collector_bit("filesystem"), AGENT_HM_FILESYSTEM);
    assert_int_equal(agent_hm_collector_bit("network"), AGENT_HM_NETWORK);
    assert_int_equal(agent_hm_collector_bit("CPU"), 0);
    assert_int_equal(agent_hm_collector_bit("disks"), 0);
    assert_int_equal(agent_hm_collector_bit(""), 0);
    assert_int_equal(agent_hm_collector_bit(NULL), 0);
}

static void test_fixture_two_collects(void **state)
{
    (void)state;
    char *root = fx_root();
    fx_round1(root);
    agent_hostmetrics_t *h = NULL;
    assert_int_equal(agent_hostmetrics_new(&h, AGENT_HM_ALL & ~AGENT_HM_FILESYSTEM, root), 0);
    cap_t c = {0};

    size_t n = agent_hostmetrics_collect(h, 1000, cap_emit, &c);
    assert_int_equal(n, c.n);
    assert_int_equal(agent_hostmetrics_errors(h), 0);
    /* cpu since boot */
    assert_value(&c, "cpu.usage_percent", "cpu=total", 20.0);
    assert_value(&c, "cpu.mode_percent", "cpu=total,mode=user", 10.0);
    assert_value(&c, "cpu.mode_percent", "cpu=total,mode=idle", 70.0);
    assert_value(&c, "cpu.mode_percent", "cpu=total,mode=iowait", 10.0);
    assert_value(&c, "cpu.mode_percent", "cpu=total,mode=steal", 0.0);
    assert_value(&c, "cpu.usage_percent", "cpu=0", 20.0);
    assert_value(&c, "cpu.usage_percent", "cpu=1", 20.0);
    assert_int_equal(cap_count(&c, "cpu.usage_percent"), 3);
    assert_int_equal(cap_count(&c, "cpu.mode_percent"), 24);
    /* memory: kB -> bytes exactly */
    assert_value(&c, "memory.total_bytes", "", 16000000.0 * 1024);
    assert_value(&c, "memory.free_bytes", "", 4000000.0 * 1024);
    assert_value(&c, "memory.available_bytes", "", 8000000.0 * 1024);
    assert_value(&c, "memory.used_bytes", "", 8000000.0 * 1024);
    assert_value(&c, "memory.used_percent", "", 50.0);
    assert_value(&c, "memory.buffers_bytes", "", 1000000.0 * 1024);
    assert_value(&c, "memory.cached_bytes", "", 2000000.0 * 1024);
    assert_value(&c, "swap.total_bytes", "", 2000000.0 * 1024);
    assert_value(&c, "swap.free_bytes", "", 500000.0 * 1024);
    assert_value(&c, "swap.used_bytes", "", 1500000.0 * 1024);
    assert_value(&c, "swap.used_percent", "", 75.0);
    assert_value(&c, "load.1m", "", 0.5);
    assert_value(&c, "load.5m", "", 1.25);
    assert_value(&c, "load.15m", "", 2.0);
    /* rates need two collects; error and drop totals do not */
    assert_int_equal(cap_count_prefix(&c, "disk."), 0);
    assert_int_equal(cap_count(&c, "network.receive_bytes_per_sec"), 0);
    assert_value(&c, "network.receive_errors", "interface=eth0", 1);
    assert_value(&c, "network.transmit_errors", "interface=eth0", 3);
    assert_value(&c, "network.receive_drops", "interface=eth0", 2);
    assert_value(&c, "network.transmit_drops", "interface=eth0", 4);
    assert_value(&c, "network.receive_errors", "interface=lo", 0);
    assert_value(&c, "network.receive_errors", "interface=verylongname0", 0);

    fx_round2(root);
    cap_reset(&c);
    n = agent_hostmetrics_collect(h, 3000, cap_emit, &c);
    assert_int_equal(n, c.n);
    assert_int_equal(agent_hostmetrics_errors(h), 0);
    assert_value(&c, "cpu.usage_percent", "cpu=total", 55.0);
    assert_value(&c, "cpu.mode_percent", "cpu=total,mode=user", 25.0);
    assert_value(&c, "cpu.mode_percent", "cpu=total,mode=nice", 0.0);
    assert_value(&c, "cpu.mode_percent", "cpu=total,mode=system", 10.0);
    assert_value(&c, "cpu.mode_percent", "cpu=total,mode=idle", 40.0);
    assert_value(&c, "cpu.mode_percent", "cpu=total,mode=iowait", 5.0);
    assert_value(&c, "cpu.mode_percent", "cpu=total,mode=irq", 5.0);
    assert_value(&c, "cpu.mode_percent", "cpu=total,mode=softirq", 5.0);
    assert_value(&c, "cpu.mode_percent", "cpu=total,mode=steal", 10.0);
    assert_value(&c, "cpu.usage_percent", "cpu=0", 20.0);
    assert_value(&c, "cpu.mode_percent", "cpu=0,mode=idle", 80.0);
    assert_absent(&c, "cpu.usage_percent", "cpu=1");
    /* disk over 2 s */
    assert_value(&c, "disk.reads_per_sec", "device=sda", 100.0);
    assert_value(&c, "disk.writes_per_sec", "device=sda", 50.0);
    assert_value(&c, "disk.read_bytes_per_sec", "device=sda", 4000.0 * 512 / 2);
    assert_value(&c, "disk.write_bytes_per_sec", "device=sda", 2000.0 * 512 / 2);
    assert_value(&c, "disk.io_time_percent", "device=sda", 25.0);
    assert_value(&c, "disk.reads_per_sec", "device=sda1", 0.0);
    assert_value(&c, "disk.io_time_percent", "device=zram0", 100.0);
    assert_absent(&c, "disk.reads_per_sec", "device=loop0");
    assert_absent(&c, "disk.reads_per_sec", "device=ram0");
    assert_absent(&c, "disk.reads_per_sec", "device=sr0");
    assert_int_equal(cap_count(&c, "disk.reads_per_sec"), 3);
    /* network over 2 s */
    assert_value(&c, "network.receive_bytes_per_sec", "interface=eth0", 1000.0);
    assert_value(&c, "network.receive_packets_per_sec", "interface=eth0", 10.0);
    assert_value(&c, "network.transmit_bytes_per_sec", "interface=eth0", 500.0);
    assert_value(&c, "network.transmit_packets_per_sec", "interface=eth0", 2.0);
    assert_value(&c, "network.receive_errors", "interface=eth0", 5);
    assert_value(&c, "network.transmit_drops", "interface=eth0", 8);
    assert_value(&c, "network.receive_bytes_per_sec", "interface=lo", 0.0);
    assert_value(&c, "network.receive_bytes_per_sec", "interface=verylongname0", 100.0);
    assert_int_equal(cap_count(&c, "network.receive_bytes_per_sec"), 3);

    /* The same time again: no interval, so no rates (and no division by 0). */
    cap_reset(&c);
    agent_hostmetrics_collect(h, 3000, cap_emit, &c);
    assert_int_equal(cap_count_prefix(&c, "disk."), 0);
    assert_int_equal(cap_count(&c, "network.receive_bytes_per_sec"), 0);
    assert_int_equal(cap_count(&c, "network.receive_errors"), 3);

    /* A NULL callback still counts. */
    assert_true(agent_hostmetrics_collect(h, 4000, NULL, NULL) > 0);

    cap_fini(&c);
    agent_hostmetrics_free(h);
    fx_rm(root);
}

static void test_counter_reset(void **state)
{
    (void)state;
    char *root = fx_root();
    fx_round2(root);
    agent_hostmetrics_t *h = NULL;
    assert_int_equal(
        agent_hostmetrics_new(&h, AGENT_HM_CPU | AGENT_HM_DISK | AGENT_HM_NETWORK, root), 0);
    cap_t c = {0};
    agent_hostmetrics_collect(h, 1000, cap_emit, &c);

    /* Every counter of round 1 is below round 2's: a reboot-like reset,
       except lo and sr0, which did not move. */
    fx_round1(root);
    cap_reset(&c);
    agent_hostmetrics_collect(h, 2000, cap_emit, &c);
    assert_int_equal(agent_hostmetrics_errors(h), 0);
    assert_absent(&c, "cpu.usage_percent", "cpu=total");
    assert_absent(&c, "cpu.usage_percent", "cpu=0");
    assert_absent(&c, "disk.reads_per_sec", "device=sda");
    assert_absent(&c, "network.receive_bytes_per_sec", "interface=eth0");
    assert_absent(&c, "network.receive_bytes_per_sec", "interface=verylongname0");
    assert_value(&c, "network.receive_bytes_per_sec", "interface=lo", 0.0);
    /* No negative value anywhere. */
    for (size_t i = 0; i < c.n; i++) {
        assert_false(c.s[i].value < 0);
    }
    /* The totals are still reported. */
    assert_value(&c, "network.receive_errors", "interface=eth0", 1);

    /* The reset values are the new baseline. */
    fx_round2(root);
    cap_reset(&c);
    agent_hostmetrics_collect(h, 4000, cap_emit, &c);
    assert_value(&c, "cpu.usage_percent", "cpu=total", 55.0);
    assert_value(&c, "disk.reads_per_sec", "device=sda", 100.0);
    assert_value(&c, "network.receive_bytes_per_sec", "interface=eth0", 1000.0);

    /* A device that disappears and comes back starts over. */
    fx_put(root, "proc/diskstats", "   8       0 sda 1 0 8 0 1 0 8 0 0 1 0\n");
    cap_reset(&c);
    agent_hostmetrics_collect(h, 5000, cap_emit, &c);
    assert_absent(&c, "disk.reads_per_sec", "device=sda");
    assert_int_equal(cap_count_prefix(&c, "disk."), 0);
    fx_put(root, "proc/diskstats",
           "   8       0 sda 3 0 8 0 1 0 8 0 0 1 0\n"
           "   8      16 sdb 1 0 8 0 1 0 8 0 0 1 0\n");
    cap_reset(&c);
    agent_hostmetrics_collect(h, 6000, cap_emit, &c);
    assert_value(&c, "disk.reads_per_sec", "device=sda", 2.0);
    assert_absent(&c, "disk.reads_per_sec", "device=sdb");

    cap_fini(&c);
    agent_hostmetrics_free(h);
    fx_rm(root);
}

static void test_missing_files(void **state)
{
    (void)state;
    char *root = fx_root();
    agent_hostmetrics_t *h = NULL;
    assert_int_equal(agent_hostmetrics_new(&h, AGENT_HM_ALL, root), 0);
    cap_t c = {0};
    assert_int_equal(agent_hostmetrics_collect(h, 1000, cap_emit, &c), 0);
    assert_int_equal(agent_hostmetrics_errors(h), 6);
    assert_int_equal(agent_hostmetrics_collect(h, 2000, cap_emit, &c), 0);
    assert_int_equal(agent_hostmetrics_errors(h), 12);

    /* One file present: only its collector reports. */
    fx_put(root, "proc/loadavg", "0.00 0.01 0.05 1/1 1\n");
    assert_int_equal(agent_hostmetrics_collect(h, 3000, cap_emit, &c), 3);
    assert_int_equal(agent_hostmetrics_errors(h), 17);
    assert_value(&c, "load.15m", "", 0.05);
    agent_hostmetrics_free(h);

    /* A root that does not exist at all. */
    assert_int_equal(agent_hostmetrics_new(&h, AGENT_HM_ALL, "/nonexistent/hostmetrics"), 0);
    assert_int_equal(agent_hostmetrics_collect(h, 1000, cap_emit, &c), 0);
    assert_int_equal(agent_hostmetrics_errors(h), 6);
    agent_hostmetrics_free(h);

    /* Disabled collectors read nothing and count nothing. */
    assert_int_equal(agent_hostmetrics_new(&h, 0, root), 0);
    assert_int_equal(agent_hostmetrics_collect(h, 1000, cap_emit, &c), 0);
    assert_int_equal(agent_hostmetrics_errors(h), 0);
    agent_hostmetrics_free(h);
    agent_hostmetrics_free(NULL);
    assert_int_equal(agent_hostmetrics_errors(NULL), 0);

    cap_fini(&c);
    fx_rm(root);
}

static void test_malformed_files(void **state)
{
    (void)state;
    char *root = fx_root();
    fx_put(root, "proc/stat",
           "cpu  a b c d\n"
           "cpuX 1 2 3 4\n"
           "cpu0 1 2\n"
           "cpu2 -1 0 0 0\n"
           "cpu3 99999999999999999999999 0 0 0\n"
           "cpu1 10 0 10 60 20\n"
           "cpu1 10 0 10 60 20\n"
           "garbage\n");
    fx_put(root, "proc/meminfo", "MemTotal: lots kB\nMemFree: 1 kB\n");
    fx_put(root, "proc/loadavg", "-1 x 2\n");
    fx_put(root, "proc/diskstats",
           "8 0 sda 1 2 3\n"
           "8 0 sdb x 0 0 0 0 0 0 0 0 0 0\n"
           "8 0 sdc -1 0 0 0 0 0 0 0 0 0 0\n"
           "8 0 sdd 1 0 8 0 1 0 8 0 0 1 0\n");
    char net[1024];
    snprintf(net, sizeof(net), "%s%s", net_header,
             "eth0 1 2 3\n"
             "eth1: 1 2 3\n"
             " : 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n"
             "eth2: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n");
    fx_put(root, "proc/net/dev", net);
    fx_put(root, "proc/self/mounts", "x\n/dev/sda1\n");
    agent_hostmetrics_t *h = NULL;
    assert_int_equal(agent_hostmetrics_new(&h, AGENT_HM_ALL, root), 0);
    cap_t c = {0};
    agent_hostmetrics_collect(h, 1000, cap_emit, &c);
    /* The good lines still count. */
    assert_value(&c, "cpu.usage_percent", "cpu=1", 20.0);
    assert_int_equal(cap_count(&c, "cpu.usage_percent"), 1);
    assert_int_equal(cap_count_prefix(&c, "memory."), 0);
    assert_int_equal(cap_count_prefix(&c, "load."), 0);
    assert_int_equal(cap_count_prefix(&c, "filesystem."), 0);
    assert_value(&c, "network.receive_errors", "interface=eth2", 3);
    assert_int_equal(cap_count(&c, "network.receive_errors"), 1);
    /* cpu: 6 bad lines; memory: 1 line + collector; load: collector;
       disk: 3 lines; filesystem: 2 lines + collector; network: 3 lines. */
    assert_int_equal(agent_hostmetrics_errors(h), 6 + 2 + 1 + 3 + 3 + 3);

    /* Binary junk, NUL bytes and empty files: no crash, nothing emitted. */
    char junk[4096];
    uint32_t x = 12345;
    for (size_t i = 0; i < sizeof(junk); i++) {
        x = x * 1103515245u + 12345u;
        junk[i] = (char)(x >> 16);
    }
    const char *files[] = {"proc/stat",      "proc/meminfo", "proc/loadavg",
                           "proc/diskstats", "proc/net/dev", "proc/self/mounts"};
    for (size_t i = 0; i < 6; i++) {
        fx_write(root, files[i], junk, sizeof(junk));
    }
    cap_reset(&c);
    agent_hostmetrics_collect(h, 2000, cap_emit, &c);
    for (size_t i = 0; i < 6; i++) {
        fx_write(root, files[i], "", 0);
    }
    agent_hostmetrics_collect(h, 3000, cap_emit, &c);
    /* An empty diskstats is a host without disks, not an error. */
    for (size_t i = 0; i < 6; i++) {
        fx_write(root, files[i], "\n\n", 2);
    }
    agent_hostmetrics_collect(h, 4000, cap_emit, &c);
    assert_int_equal(cap_count_prefix(&c, "memory."), 0);

    /* One enormous line (more than the first buffer) of digits. */
    size_t big = 3u << 20;
    char *huge = malloc(big);
    assert_non_null(huge);
    memcpy(huge, "cpu  ", 5);
    memset(huge + 5, '7', big - 6);
    huge[big - 1] = '\n';
    fx_write(root, "proc/stat", huge, big);
    free(huge);
    uint64_t before = agent_hostmetrics_errors(h);
    cap_reset(&c);
    agent_hostmetrics_collect(h, 5000, cap_emit, &c);
    assert_int_equal(cap_count_prefix(&c, "cpu."), 0);
    assert_true(agent_hostmetrics_errors(h) > before);

    cap_fini(&c);
    agent_hostmetrics_free(h);
    fx_rm(root);
}

static void test_memory_without_available(void **state)
{
    (void)state;
    char *root = fx_root();
    /* Kernels before 3.14 have no MemAvailable. */
    fx_put(root, "proc/meminfo",
           "MemTotal:        1000 kB\n"
           "MemFree:          100 kB\n"
           "Buffers:          200 kB\n"
           "Cached:           300 kB\n"
           "SwapTotal:          0 kB\n"
           "SwapFree:           0 kB\n");
    agent_hostmetrics_t *h = NULL;
    assert_int_equal(agent_hostmetrics_new(&h, AGENT_HM_MEMORY, root), 0);
    cap_t c = {0};
    agent_hostmetrics_collect(h, 1000, cap_emit, &c);
    assert_int_equal(agent_hostmetrics_errors(h), 0);
    assert_value(&c, "memory.total_bytes", "", 1024000.0);
    assert_value(&c, "memory.used_bytes", "", 400.0 * 1024);
    assert_value(&c, "memory.used_percent", "", 40.0);
    assert_absent(&c, "memory.available_bytes", "");
    assert_value(&c, "swap.total_bytes", "", 0.0);
    assert_value(&c, "swap.used_percent", "", 0.0);

    /* Available above total (a broken file) does not make used negative. */
    fx_put(root, "proc/meminfo", "MemTotal: 1000 kB\nMemAvailable: 5000 kB\n");
    cap_reset(&c);
    agent_hostmetrics_collect(h, 2000, cap_emit, &c);
    assert_value(&c, "memory.used_bytes", "", 0.0);
    assert_value(&c, "memory.used_percent", "", 0.0);

    /* A MemTotal of 0 is unusable. */
    fx_put(root, "proc/meminfo", "MemTotal: 0 kB\n");
    cap_reset(&c);
    assert_int_equal(agent_hostmetrics_collect(h, 3000, cap_emit, &c), 0);
    assert_int_equal(agent_hostmetrics_errors(h), 1);

    cap_fini(&c);
    agent_hostmetrics_free(h);
    fx_rm(root);
}

static char *many_disks(size_t n, uint64_t reads)
{
    size_t cap = n * 64 + 1;
    char *t = malloc(cap);
    assert_non_null(t);
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        off += (size_t)snprintf(t + off, cap - off, "8 %zu d%zu %llu 0 0 0 0 0 0 0 0 0 0\n", i, i,
                                (unsigned long long)reads);
    }
    return t;
}

static void test_many_series(void **state)
{
    (void)state;
    char *root = fx_root();
    agent_hostmetrics_t *h = NULL;
    assert_int_equal(agent_hostmetrics_new(&h, AGENT_HM_DISK, root), 0);
    cap_t c = {0};
    /* 5000 devices: all tracked, one rate each. */
    char *t = many_disks(5000, 10);
    fx_put(root, "proc/diskstats", t);
    free(t);
    agent_hostmetrics_collect(h, 1000, cap_emit, &c);
    t = many_disks(5000, 30);
    fx_put(root, "proc/diskstats", t);
    free(t);
    cap_reset(&c);
    agent_hostmetrics_collect(h, 2000, cap_emit, &c);
    assert_int_equal(cap_count(&c, "disk.reads_per_sec"), 5000);
    assert_value(&c, "disk.reads_per_sec", "device=d4999", 20.0);
    assert_int_equal(agent_hostmetrics_errors(h), 0);
    /* 9000: the table holds 8192 series; the rest are counted, each round. */
    t = many_disks(9000, 50);
    fx_put(root, "proc/diskstats", t);
    free(t);
    cap_reset(&c);
    agent_hostmetrics_collect(h, 3000, cap_emit, &c);
    assert_int_equal(cap_count(&c, "disk.reads_per_sec"), 5000);
    assert_int_equal(agent_hostmetrics_errors(h), 9000 - 8192);
    cap_fini(&c);
    agent_hostmetrics_free(h);
    fx_rm(root);
}

static void test_filesystems(void **state)
{
    (void)state;
    char *root = fx_root();
    fx_mkdir(root, "mnt");
    fx_mkdir(root, "mnt/my disk");
    fx_mkdir(root, "mnt/tab\there");
    fx_mkdir(root, "mnt/back\\slash");
    fx_mkdir(root, "srv");
    fx_mkdir(root, "srv/bind");
    fx_put(root, "proc/self/mounts",
           "/dev/sda1 / ext4 rw,relatime 0 0\n"
           "proc /proc proc rw,nosuid,nodev,noexec,relatime 0 0\n"
           "sysfs /sys sysfs rw 0 0\n"
           "tmpfs /run tmpfs rw,nosuid,nodev,mode=755 0 0\n"
           "cgroup2 /sys/fs/cgroup cgroup2 rw 0 0\n"
           "/dev/sda1 /srv/bind ext4 rw,relatime 0 0\n"
           "/dev/sdb1 /mnt/my\\040disk xfs rw 0 0\n"
           "/dev/sdb2 /mnt/tab\\011here ext4 rw 0 0\n"
           "/dev/sdb3 /mnt/back\\134slash btrfs rw 0 0\n"
           "overlay /var/lib/docker/overlay2/abc/merged overlay rw 0 0\n"
           "/dev/loop3 /snap/core/1 squashfs ro 0 0\n"
           "server:/export /mnt/nfs nfs4 rw 0 0\n"
           "/dev/sdc1 /does/not/exist ext4 rw 0 0\n");
    agent_hostmetrics_t *h = NULL;
    assert_int_equal(agent_hostmetrics_new(&h, AGENT_HM_FILESYSTEM, root), 0);
    cap_t c = {0};
    agent_hostmetrics_collect(h, 1000, cap_emit, &c);
    /* The mountpoint that does not exist under the root is counted. */
    assert_int_equal(agent_hostmetrics_errors(h), 1);
    assert_int_equal(cap_count(&c, "filesystem.total_bytes"), 4);

    struct statvfs sv;
    assert_int_equal(statvfs(root, &sv), 0);
    double frsize = (double)sv.f_frsize;
    assert_value(&c, "filesystem.total_bytes", "mountpoint=/,device=/dev/sda1,fstype=ext4",
                 (double)sv.f_blocks * frsize);
    assert_non_null(cap_find(&c, "filesystem.total_bytes",
                             "mountpoint=/mnt/my disk,device=/dev/sdb1,fstype=xfs"));
    assert_non_null(cap_find(&c, "filesystem.total_bytes",
                             "mountpoint=/mnt/tab\there,device=/dev/sdb2,fstype=ext4"));
    assert_non_null(cap_find(&c, "filesystem.total_bytes",
                             "mountpoint=/mnt/back\\slash,device=/dev/sdb3,fstype=btrfs"));
    const char *lab = "mountpoint=/,device=/dev/sda1,fstype=ext4";
    const cap_sample_t *pct = cap_find(&c, "filesystem.used_percent", lab);
    assert_non_null(pct);
    assert_true(pct->value >= 0 && pct->value <= 100);
    assert_non_null(cap_find(&c, "filesystem.free_bytes", lab));
    assert_non_null(cap_find(&c, "filesystem.available_bytes", lab));
    assert_non_null(cap_find(&c, "filesystem.used_bytes", lab));

    /* overlay on "/" (a container's root) is reported. */
    fx_put(root, "proc/self/mounts", "overlay / overlay rw,lowerdir=/a:/b 0 0\n");
    cap_reset(&c);
    agent_hostmetrics_collect(h, 2000, cap_emit, &c);
    assert_non_null(
        cap_find(&c, "filesystem.total_bytes", "mountpoint=/,device=overlay,fstype=overlay"));

    /* Under a root, the host's mounts are init's (proc/1), not the agent's. */
    fx_mkdir(root, "proc/1");
    fx_put(root, "proc/1/mounts", "/dev/sdb1 /mnt/my\\040disk xfs rw 0 0\n");
    cap_reset(&c);
    agent_hostmetrics_collect(h, 3000, cap_emit, &c);
    assert_int_equal(cap_count(&c, "filesystem.total_bytes"), 1);
    assert_non_null(cap_find(&c, "filesystem.total_bytes",
                             "mountpoint=/mnt/my disk,device=/dev/sdb1,fstype=xfs"));

    cap_fini(&c);
    agent_hostmetrics_free(h);
    fx_rm(root);
}

static uint64_t real_memtotal_kb(void)
{
    FILE *f = fopen("/proc/meminfo", "r");
    assert_non_null(f);
    char line[256];
    unsigned long long kb = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        if (sscanf(line, "MemTotal: %llu kB", &kb) == 1) {
            break;
        }
    }
    fclose(f);
    assert_true(kb > 0);
    return kb;
}

static void test_real_host(void **state)
{
    (void)state;
    agent_hostmetrics_t *h = NULL;
    assert_int_equal(agent_hostmetrics_new(&h, AGENT_HM_ALL, NULL), 0);
    cap_t c = {0};
    agent_hostmetrics_collect(h, 1000, cap_emit, &c);
    const cap_sample_t *mt = cap_find(&c, "memory.total_bytes", "");
    assert_non_null(mt);
    assert_true(mt->value == (double)(real_memtotal_kb() * 1024));

    /* Wait for the jiffies to move rather than for a fixed time. */
    cap_reset(&c);
    for (int i = 0; i < 200 && cap_find(&c, "cpu.usage_percent", "cpu=total") == NULL; i++) {
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
        cap_reset(&c);
        agent_hostmetrics_collect(h, 1100 + 20 * i, cap_emit, &c);
    }
    const cap_sample_t *u = cap_find(&c, "cpu.usage_percent", "cpu=total");
    assert_non_null(u);
    assert_true(u->value >= 0 && u->value <= 100);
    const cap_sample_t *l = cap_find(&c, "load.1m", "");
    assert_non_null(l);
    assert_true(l->value >= 0);
    assert_true(cap_count(&c, "network.receive_errors") >= 1);
    assert_true(cap_count(&c, "network.receive_bytes_per_sec") >= 1);
    assert_true(cap_count(&c, "filesystem.total_bytes") >= 1);
    for (size_t i = 0; i < c.n; i++) {
        assert_false(isnan(c.s[i].value));
        assert_false(c.s[i].value < 0);
    }
    print_message("real host: %zu samples, %llu errors\n", c.n,
                  (unsigned long long)agent_hostmetrics_errors(h));
    cap_fini(&c);
    agent_hostmetrics_free(h);
}

/* ---------------------------------------------------------------------- */
/* Prometheus parser                                                      */

typedef struct prom_cap {
    char text[64][512]; /* name{l="v",...} value [ts] type */
    double value[64];
    size_t n;
} prom_cap_t;

static void prom_emit(void *ud, const agent_prom_sample_t *s)
{
    prom_cap_t *c = ud;
    assert_true(c->n < 64);
    char *t = c->text[c->n];
    size_t cap = sizeof(c->text[0]);
    assert_int_equal(strlen(s->name), s->name_len);
    size_t off = (size_t)snprintf(t, cap, "%s{", s->name);
    for (size_t i = 0; i < s->nlabels; i++) {
        assert_int_equal(strlen(s->labels[i].name), s->labels[i].nlen);
        assert_int_equal(s->labels[i].value[s->labels[i].vlen], '\0');
        off += (size_t)snprintf(t + off, cap - off, "%s%s=", i ? "," : "", s->labels[i].name);
        /* values may hold newlines and quotes: print them visibly */
        for (size_t k = 0; k < s->labels[i].vlen && off + 3 < cap; k++) {
            char ch = s->labels[i].value[k];
            if (ch == '\n') {
                t[off++] = '\\';
                t[off++] = 'n';
            } else {
                t[off++] = ch;
            }
        }
        t[off] = '\0';
    }
    off += (size_t)snprintf(t + off, cap - off, "} %s", s->type);
    if (s->has_ts) {
        snprintf(t + off, cap - off, " @%lld", (long long)s->ts_ms);
    }
    c->value[c->n] = s->value;
    c->n++;
}

static void test_prom_basic(void **state)
{
    (void)state;
    static const char text[] =
        "# HELP http_requests_total The total number of HTTP requests.\n"
        "# TYPE http_requests_total counter\n"
        "http_requests_total{method=\"post\",code=\"200\"} 1027 1395066363000\n"
        "http_requests_total{method=\"post\",code=\"400\"}    3 1395066363000\n"
        "\n"
        "# A plain comment\n"
        "#TYPE  temp   gauge\n"
        "temp -3.5e2\n"
        "metric_without_timestamp_and_labels 12.47\n"
        "something_weird{problem=\"division by zero\"} +Inf -3982045\n"
        "# TYPE rpc_duration_seconds summary\n"
        "rpc_duration_seconds{quantile=\"0.01\"} 3102\n"
        "rpc_duration_seconds_sum 1.7560473e+07\n"
        "rpc_duration_seconds_count 2693\n"
        "rpc_duration_seconds_bucket 1\n"
        "# TYPE lat histogram\n"
        "lat_bucket{le=\"0.05\"} 24054\n"
        "lat_bucket{le=\"+Inf\"} 144320\n"
        "lat_sum 53423\n"
        "lat_count 144320\n"
        "# TYPE jobs counter\n"
        "jobs_total 7\n"
        "jobs_created 1.7e9\n"
        "untyped_one 1\n"
        "nan_val NaN\n"
        "neg_inf -Inf\n"
        "dot .5\n"
        "trail{a=\"1\",} 2\n"
        "empty{} 3\n"
        "  spaced\t{ a = \"x\" , b=\"y\" }\t 4 \t-5\t\n"
        "colon:name:x 6\n"
        "last_no_newline 9";
    prom_cap_t c = {0};
    assert_int_equal(agent_prom_parse(text, sizeof(text) - 1, prom_emit, &c), 0);
    const char *want[] = {
        "http_requests_total{method=post,code=200} counter @1395066363000",
        "http_requests_total{method=post,code=400} counter @1395066363000",
        "temp{} gauge",
        "metric_without_timestamp_and_labels{} untyped",
        "something_weird{problem=division by zero} untyped @-3982045",
        "rpc_duration_seconds{quantile=0.01} summary",
        "rpc_duration_seconds_sum{} summary",
        "rpc_duration_seconds_count{} summary",
        "rpc_duration_seconds_bucket{} untyped",
        "lat_bucket{le=0.05} histogram",
        "lat_bucket{le=+Inf} histogram",
        "lat_sum{} histogram",
        "lat_count{} histogram",
        "jobs_total{} counter",
        "jobs_created{} counter",
        "untyped_one{} untyped",
        "nan_val{} untyped",
        "neg_inf{} untyped",
        "dot{} untyped",
        "trail{a=1} untyped",
        "empty{} untyped",
        "spaced{a=x,b=y} untyped @-5",
        "colon:name:x{} untyped",
        "last_no_newline{} untyped",
    };
    size_t nw = sizeof(want) / sizeof(want[0]);
    assert_int_equal(c.n, nw);
    for (size_t i = 0; i < nw; i++) {
        assert_string_equal(c.text[i], want[i]);
    }
    assert_true(c.value[0] == 1027);
    assert_true(c.value[2] == -350);
    assert_true(c.value[3] == 12.47);
    assert_true(isinf(c.value[4]) && c.value[4] > 0);
    assert_true(c.value[6] == 1.7560473e+07);
    assert_true(isnan(c.value[16]));
    assert_true(isinf(c.value[17]) && c.value[17] < 0);
    assert_true(c.value[18] == 0.5);
    assert_true(c.value[21] == 4);
    assert_true(c.value[23] == 9);

    /* Nothing at all, and NULL. */
    assert_int_equal(agent_prom_parse("", 0, prom_emit, &c), 0);
    assert_int_equal(agent_prom_parse(NULL, 0, prom_emit, &c), 0);
}

static void test_prom_escapes_crlf(void **state)
{
    (void)state;
    static const char text[] = "# TYPE esc gauge\r\n"
                               "esc{path=\"C:\\\\dir\\\\\",msg=\"say \\\"hi\\\"\\nbye\","
                               "brace=\"}{,=\",empty=\"\"} 1\r\n"
                               "\r\n"
                               "esc{utf8=\"caf\xc3\xa9 \xe2\x82\xac\"} 2\r\n";
    prom_cap_t c = {0};
    assert_int_equal(agent_prom_parse(text, sizeof(text) - 1, prom_emit, &c), 0);
    assert_int_equal(c.n, 2);
    assert_string_equal(c.text[0],
                        "esc{path=C:\\dir\\,msg=say \"hi\"\\nbye,brace=}{,=,empty=} gauge");
    assert_string_equal(c.text[1], "esc{utf8=caf\xc3\xa9 \xe2\x82\xac} gauge");
}

static void test_prom_malformed(void **state)
{
    (void)state;
    static const char text[] = "ok 1\n"
                               "unterminated{a=\"x} 1\n"
                               "unquoted{a=x} 1\n"
                               "1leading_digit 2\n"
                               "no_value\n"
                               "no_value_labels{a=\"b\"}\n"
                               "word_value abc\n"
                               "too many fields 1 2\n"
                               "float_ts 1 12.5\n"
                               "bad_escape{a=\"\\x\"} 1\n"
                               "dup{a=\"1\",a=\"2\"} 1\n"
                               "exp 1e\n"
                               "hex 0x10\n"
                               "stuck-1\n"
                               "missing_eq{a\"b\"} 1\n"
                               "missing_comma{a=\"1\"b=\"2\"} 1\n"
                               "ts_overflow 1 99999999999999999999\n"
                               "# TYPE ok bogus\n"
                               "# TYPE\n"
                               "# TYPE twice counter\n"
                               "# TYPE twice gauge\n"
                               "# HELP\n"
                               "{a=\"b\"} 1\n"
                               "ok 2\n";
    prom_cap_t c = {0};
    assert_int_equal(agent_prom_parse(text, sizeof(text) - 1, prom_emit, &c), 21);
    assert_int_equal(c.n, 2);
    assert_string_equal(c.text[0], "ok{} untyped");
    assert_string_equal(c.text[1], "ok{} untyped");

    /* 17 labels is one more than a sample holds. */
    char many[1024];
    size_t off = (size_t)snprintf(many, sizeof(many), "many{");
    for (int i = 0; i < 17; i++) {
        off += (size_t)snprintf(many + off, sizeof(many) - off, "l%d=\"v\",", i);
    }
    snprintf(many + off, sizeof(many) - off, "} 1\nfine{l=\"v\"} 1\n");
    c.n = 0;
    assert_int_equal(agent_prom_parse(many, strlen(many), prom_emit, &c), 1);
    assert_int_equal(c.n, 1);

    /* The parse stops at len: bytes past it are not read. */
    c.n = 0;
    assert_int_equal(agent_prom_parse("a 1\nb 2\n", 4, prom_emit, &c), 0);
    assert_int_equal(c.n, 1);
    /* An embedded NUL is just a bad byte. */
    c.n = 0;
    assert_int_equal(agent_prom_parse("a\0b 1\nc 2\n", 10, prom_emit, &c), 1);
    assert_int_equal(c.n, 1);
}

typedef struct long_cap {
    size_t n;
    size_t vlen;
} long_cap_t;

static void long_emit(void *ud, const agent_prom_sample_t *s)
{
    long_cap_t *c = ud;
    c->n++;
    assert_int_equal(s->nlabels, 1);
    c->vlen = s->labels[0].vlen;
    assert_int_equal(strlen(s->labels[0].value), s->labels[0].vlen);
}

static void test_prom_long_line(void **state)
{
    (void)state;
    size_t vlen = 1u << 20;
    char *t = malloc(vlen * 2 + 64);
    assert_non_null(t);
    size_t off = (size_t)sprintf(t, "long{v=\"");
    for (size_t i = 0; i < vlen; i++) {
        /* every other byte escaped: "\\" unescapes to one backslash */
        if (i % 2) {
            t[off++] = '\\';
            t[off++] = '\\';
        } else {
            t[off++] = 'x';
        }
    }
    off += (size_t)sprintf(t + off, "\"} 1\n");
    long_cap_t c = {0};
    assert_int_equal(agent_prom_parse(t, off, long_emit, &c), 0);
    assert_int_equal(c.n, 1);
    assert_int_equal(c.vlen, vlen);
    /* Cut anywhere, the line is malformed but never overread. */
    for (size_t cut = 0; cut < 40; cut++) {
        c.n = 0;
        long r = agent_prom_parse(t, cut, long_emit, &c);
        assert_true(r == 0 || r == 1);
        assert_int_equal(c.n, 0);
    }
    free(t);
}

static uint32_t rnd_next(uint32_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 17;
    *x ^= *x << 5;
    return *x;
}

/* Mutates buf in place (len bytes): flips a bit, writes a syntax byte, or
   cuts the text; returns the new length. */
static size_t mutate(char *buf, size_t len, uint32_t *x)
{
    static const char syntax[] = "{}\",=\\\n\r\t #:-+.e0123456789 ";
    int k = (int)(rnd_next(x) % 4) + 1;
    for (int i = 0; i < k && len > 0; i++) {
        size_t at = rnd_next(x) % len;
        switch (rnd_next(x) % 4) {
        case 0:
            buf[at] = (char)(buf[at] ^ (1 << (rnd_next(x) % 8)));
            break;
        case 1:
        case 2:
            buf[at] = syntax[rnd_next(x) % (sizeof(syntax) - 1)];
            break;
        default:
            len = at;
            break;
        }
    }
    return len;
}

static void count_emit(void *ud, const agent_prom_sample_t *s)
{
    size_t *n = ud;
    assert_true(s->nlabels <= AGENT_PROM_MAX_LABELS);
    assert_int_equal(strlen(s->name), s->name_len);
    for (size_t i = 0; i < s->nlabels; i++) {
        assert_int_equal(s->labels[i].value[s->labels[i].vlen], '\0');
    }
    (*n)++;
}

static void test_prom_mutations(void **state)
{
    (void)state;
    static const char seed[] = "# HELP a_total Help with \\\\ and \\n.\n"
                               "# TYPE a_total counter\n"
                               "a_total{x=\"1\",y=\"q\\\"\\\\\\n\"} 1.5e3 1700000000000\n"
                               "# TYPE h histogram\n"
                               "h_bucket{le=\"+Inf\"} 3\r\n"
                               "h_sum NaN\n"
                               "h_count -Inf -12\n";
    size_t n0 = 0;
    assert_int_equal(agent_prom_parse(seed, sizeof(seed) - 1, count_emit, &n0), 0);
    assert_int_equal(n0, 4);
    uint32_t x = 0x9e3779b9u;
    char buf[sizeof(seed)];
    for (int round = 0; round < 20000; round++) {
        memcpy(buf, seed, sizeof(seed) - 1);
        size_t len = mutate(buf, sizeof(seed) - 1, &x);
        /* An exact-size copy, so ASan sees any read past len. */
        char *exact = malloc(len ? len : 1);
        assert_non_null(exact);
        memcpy(exact, buf, len);
        size_t n = 0;
        long bad = agent_prom_parse(exact, len, count_emit, &n);
        assert_true(bad >= 0);
        free(exact);
    }
}

static void test_hostmetrics_mutations(void **state)
{
    (void)state;
    char *root = fx_root();
    fx_put(root, "proc/self/mounts", "/dev/sda1 / ext4 rw 0 0\ntmpfs /run tmpfs rw 0 0\n");
    fx_round1(root);
    const char *files[] = {"proc/stat",      "proc/meminfo", "proc/loadavg",
                           "proc/diskstats", "proc/net/dev", "proc/self/mounts"};
    char *orig[6];
    size_t olen[6];
    for (size_t i = 0; i < 6; i++) {
        char p[512];
        snprintf(p, sizeof(p), "%s/%s", root, files[i]);
        FILE *f = fopen(p, "rb");
        assert_non_null(f);
        orig[i] = malloc(8192);
        assert_non_null(orig[i]);
        olen[i] = fread(orig[i], 1, 8192, f);
        fclose(f);
    }
    agent_hostmetrics_t *h = NULL;
    assert_int_equal(agent_hostmetrics_new(&h, AGENT_HM_ALL, root), 0);
    cap_t c = {0};
    uint32_t x = 0x2545f491u;
    char buf[8192];
    for (int round = 0; round < 600; round++) {
        size_t i = rnd_next(&x) % 6;
        memcpy(buf, orig[i], olen[i]);
        size_t len = mutate(buf, olen[i], &x);
        fx_write(root, files[i], buf, len);
        cap_reset(&c);
        agent_hostmetrics_collect(h, 1000 + 1000 * round, cap_emit, &c);
        for (size_t k = 0; k < c.n; k++) {
            assert_false(c.s[k].value < 0);
            assert_false(isnan(c.s[k].value));
        }
        if (round % 7 == 0) {
            fx_write(root, files[i], orig[i], olen[i]);
        }
    }
    for (size_t i = 0; i < 6; i++) {
        free(orig[i]);
    }
    cap_fini(&c);
    agent_hostmetrics_free(h);
    fx_rm(root);
}

/* ---------------------------------------------------------------------- */
/* Scrape against a one-connection HTTP server                            */

enum { SRV_OK, SRV_404, SRV_REDIRECT, SRV_BIG_CHUNKED, SRV_BIG_LENGTH, SRV_SILENT };

typedef struct srv {
    int lfd;
    int port;
    int mode;
    char req[8192];
    size_t reqlen;
    pthread_t th;
} srv_t;

static const char srv_body[] = "# TYPE up gauge\nup{job=\"x\"} 1\n";

static void srv_send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0) {
            return; /* the client gave up: expected for the big bodies */
        }
        p += w;
        n -= (size_t)w;
    }
}

static void *srv_main(void *arg)
{
    srv_t *s = arg;
    struct pollfd pl = {.fd = s->lfd, .events = POLLIN};
    if (poll(&pl, 1, 10000) != 1) {
        return NULL;
    }
    int fd = accept(s->lfd, NULL, NULL);
    if (fd < 0) {
        return NULL;
    }
    while (s->reqlen < sizeof(s->req) - 1) {
        ssize_t r = recv(fd, s->req + s->reqlen, sizeof(s->req) - 1 - s->reqlen, 0);
        if (r <= 0) {
            break;
        }
        s->reqlen += (size_t)r;
        s->req[s->reqlen] = '\0';
        if (strstr(s->req, "\r\n\r\n") != NULL) {
            break;
        }
    }
    char hdr[512];
    size_t big = 1u << 20;
    switch (s->mode) {
    case SRV_OK:
        snprintf(hdr, sizeof(hdr),
                 "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n"
                 "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                 sizeof(srv_body) - 1);
        srv_send_all(fd, hdr, strlen(hdr));
        srv_send_all(fd, srv_body, sizeof(srv_body) - 1);
        break;
    case SRV_404:
        snprintf(hdr, sizeof(hdr),
                 "HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\r\n"
                 "not found");
        srv_send_all(fd, hdr, strlen(hdr));
        break;
    case SRV_REDIRECT:
        snprintf(hdr, sizeof(hdr),
                 "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:%d/elsewhere\r\n"
                 "Content-Length: 0\r\nConnection: close\r\n\r\n",
                 s->port);
        srv_send_all(fd, hdr, strlen(hdr));
        break;
    case SRV_BIG_CHUNKED:
    case SRV_BIG_LENGTH: {
        if (s->mode == SRV_BIG_LENGTH) {
            snprintf(hdr, sizeof(hdr),
                     "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n", big);
        } else {
            snprintf(hdr, sizeof(hdr), "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
        }
        srv_send_all(fd, hdr, strlen(hdr));
        char *b = malloc(big);
        if (b != NULL) {
            memset(b, '#', big);
            srv_send_all(fd, b, big);
            free(b);
        }
        break;
    }
    case SRV_SILENT: {
        /* Answer nothing; wait until the client hangs up. */
        char tmp[256];
        struct pollfd pc = {.fd = fd, .events = POLLIN};
        while (poll(&pc, 1, 10000) == 1 && recv(fd, tmp, sizeof(tmp), 0) > 0) {
        }
        break;
    }
    }
    close(fd);
    return NULL;
}

static void srv_start(srv_t *s, int mode)
{
    memset(s, 0, sizeof(*s));
    s->mode = mode;
    s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(s->lfd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(s->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(s->lfd, 4), 0);
    socklen_t al = sizeof(a);
    assert_int_equal(getsockname(s->lfd, (struct sockaddr *)&a, &al), 0);
    s->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&s->th, NULL, srv_main, s), 0);
}

static void srv_stop(srv_t *s)
{
    assert_int_equal(pthread_join(s->th, NULL), 0);
    close(s->lfd);
}

static int scrape(srv_t *s, const char *path, int64_t timeout_ms, size_t max, char **body,
                  size_t *len, char *err, size_t errlen)
{
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", s->port, path);
    return agent_prom_scrape(url, timeout_ms, max, body, len, err, errlen);
}

static int scrape_setup(void **state)
{
    (void)state;
    /* The scrape honours proxy variables; this server is local. */
    const char *vars[] = {"http_proxy",  "HTTP_PROXY", "https_proxy",
                          "HTTPS_PROXY", "all_proxy",  "ALL_PROXY"};
    for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
        unsetenv(vars[i]);
    }
    return 0;
}

static void test_scrape_ok(void **state)
{
    (void)state;
    srv_t s;
    srv_start(&s, SRV_OK);
    char *body = NULL;
    size_t len = 0;
    char err[256];
    int rc = scrape(&s, "/metrics", 5000, 4096, &body, &len, err, sizeof(err));
    srv_stop(&s);
    if (rc != 0) {
        fail_msg("scrape: %s", err);
    }
    assert_non_null(body);
    assert_int_equal(len, sizeof(srv_body) - 1);
    assert_string_equal(body, srv_body);
    assert_non_null(strstr(s.req, "GET /metrics HTTP/1.1\r\n"));
    assert_non_null(strstr(s.req, "\r\nAccept: text/plain;version=0.0.4\r\n"));
    prom_cap_t c = {0};
    assert_int_equal(agent_prom_parse(body, len, prom_emit, &c), 0);
    assert_int_equal(c.n, 1);
    assert_string_equal(c.text[0], "up{job=x} gauge");
    free(body);

    /* Defaults for 0, and a limit too large for curl_off_t. */
    srv_start(&s, SRV_OK);
    rc = scrape(&s, "/", 0, 0, &body, &len, err, sizeof(err));
    srv_stop(&s);
    assert_int_equal(rc, 0);
    free(body);
    srv_start(&s, SRV_OK);
    rc = scrape(&s, "/", 5000, SIZE_MAX, &body, &len, err, sizeof(err));
    srv_stop(&s);
    assert_int_equal(rc, 0);
    free(body);

    /* The limit is inclusive: a body of exactly max_bytes is fine. */
    srv_start(&s, SRV_OK);
    rc = scrape(&s, "/", 5000, sizeof(srv_body) - 1, &body, &len, err, sizeof(err));
    srv_stop(&s);
    assert_int_equal(rc, 0);
    free(body);
}

static void test_scrape_errors(void **state)
{
    (void)state;
    srv_t s;
    char *body = (char *)1;
    size_t len = 7;
    char err[256];

    srv_start(&s, SRV_404);
    assert_int_equal(scrape(&s, "/nope", 5000, 4096, &body, &len, err, sizeof(err)), -1);
    srv_stop(&s);
    assert_null(body);
    assert_int_equal(len, 0);
    assert_non_null(strstr(err, "404"));

    srv_start(&s, SRV_REDIRECT);
    assert_int_equal(scrape(&s, "/", 5000, 4096, &body, &len, err, sizeof(err)), -1);
    srv_stop(&s);
    assert_non_null(strstr(err, "302"));

    srv_start(&s, SRV_BIG_CHUNKED);
    assert_int_equal(scrape(&s, "/", 5000, 1000, &body, &len, err, sizeof(err)), -1);
    srv_stop(&s);
    assert_null(body);
    assert_non_null(strstr(err, "larger than 1000"));

    srv_start(&s, SRV_BIG_LENGTH);
    assert_int_equal(scrape(&s, "/", 5000, 1000, &body, &len, err, sizeof(err)), -1);
    srv_stop(&s);
    assert_non_null(strstr(err, "larger than 1000"));

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    srv_start(&s, SRV_SILENT);
    assert_int_equal(scrape(&s, "/", 300, 4096, &body, &len, err, sizeof(err)), -1);
    srv_stop(&s);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    assert_true(secs < 5.0);
    assert_non_null(strstr(err, "timed out"));

    /* Only http and https. */
    assert_int_equal(
        agent_prom_scrape("file:///etc/hostname", 1000, 4096, &body, &len, err, sizeof(err)), -1);
    assert_true(err[0] != '\0');
    assert_null(body);
    assert_int_equal(agent_prom_scrape(NULL, 1000, 4096, &body, &len, err, sizeof(err)), -1);

    /* Nobody listening: a closed port is refused. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t al = sizeof(a);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", ntohs(a.sin_port));
    assert_int_equal(agent_prom_scrape(url, 2000, 4096, &body, &len, err, sizeof(err)), -1);
    close(fd);
    assert_true(err[0] != '\0');
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_collector_bits),
        cmocka_unit_test(test_fixture_two_collects),
        cmocka_unit_test(test_counter_reset),
        cmocka_unit_test(test_missing_files),
        cmocka_unit_test(test_malformed_files),
        cmocka_unit_test(test_memory_without_available),
        cmocka_unit_test(test_many_series),
        cmocka_unit_test(test_filesystems),
        cmocka_unit_test(test_hostmetrics_mutations),
        cmocka_unit_test(test_real_host),
        cmocka_unit_test(test_prom_basic),
        cmocka_unit_test(test_prom_escapes_crlf),
        cmocka_unit_test(test_prom_malformed),
        cmocka_unit_test(test_prom_long_line),
        cmocka_unit_test(test_prom_mutations),
        cmocka_unit_test(test_scrape_ok),
        cmocka_unit_test(test_scrape_errors),
    };
    return cmocka_run_group_tests(tests, scrape_setup, NULL);
}
