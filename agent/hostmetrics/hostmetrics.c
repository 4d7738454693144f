/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Host metrics sampled from /proc and statvfs() (see hostmetrics.h for the
 * sample names and labels).
 *
 * Design:
 *  - Every file is read whole into one scratch buffer (procfs reports size
 *    0, so we read until EOF, growing up to HM_FILE_MAX) and parsed line by
 *    line in place. Nothing in the input is trusted: numbers are parsed by
 *    hand (digits only, overflow rejected), short or malformed lines are
 *    skipped and counted in errors, and a file that cannot be read or
 *    yields nothing usable skips its collector for this round (counted).
 *  - Counters for rates (cpu jiffies, disk and network counters) are kept
 *    per series (cpu, device, interface) in a small table per collector,
 *    with the time of the collect that stored them. A series not seen in a
 *    round is dropped, so devices that come and go do not pile up.
 *  - A counter that went down (wrap, reset, device re-created) makes that
 *    series skip its rate samples for the round; the new values become the
 *    baseline. Rates are never negative.
 *  - cpu percentages on the first collect are since boot (the baseline is
 *    zero); disk and network rates need two collects.
 *  - Numbers with a fraction (loadavg) go through strtod() after their
 *    syntax is checked: the agent never calls setlocale(), so the decimal
 *    point is '.'.
 *
 * Choices (documented here because the header leaves them open):
 *  - disk: loop* and ram* devices are left out; zram and device-mapper
 *    devices are kept. A device whose counters are all zero (never used:
 *    empty CD drives, unused nbd slots) emits nothing but is still tracked,
 *    so its first I/O after that shows as a rate. io_time_percent is capped
 *    at 100 (the kernel's io_ticks can run ahead of our clock by a tick).
 *  - filesystem: pseudo and in-memory filesystems are left out (the list
 *    hm_skip_fstypes below, tmpfs included), as are squashfs images (snaps
 *    are always 100% full) and network filesystems (nfs, cifs, ...): a
 *    statvfs() on an unreachable server blocks the collecting thread
 *    without a bound. overlay is kept only when mounted on "/" (the root of
 *    a container); other overlays are container layers. Bind mounts are
 *    deduplicated by device path (the first mount of a /dev/... device
 *    wins, in mount order). Filesystems reporting zero blocks are skipped;
 *    inodes_used_percent is omitted when the filesystem has no inode count
 *    (btrfs). used_percent follows df: used / (used + available).
 *  - network: every interface of /proc/net/dev, lo included. The error and
 *    drop samples are the kernel's running totals, emitted on every collect.
 *  - memory: used = total - available when MemAvailable exists, else
 *    total - free - buffers - cached (older kernels); available_bytes is
 *    then not emitted. swap.used_percent is 0 without swap.
 */
#include "hostmetrics/hostmetrics.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define HM_FILE_MAX (64u << 20) /* no procfs file we read comes near this */
#define HM_NAME_MAX 64          /* cpu, device and interface names */
#define HM_NVALS 8
#define HM_SERIES_MAX 8192 /* per collector: bounds the tables */
#define HM_MAX_TOKENS 24
#define HM_BUF_KEEP (1u << 20) /* a larger scratch buffer is freed after the collect */

typedef struct hm_series {
    char name[HM_NAME_MAX];
    uint64_t v[HM_NVALS];
    bool seen;
} hm_series_t;

typedef struct hm_table {
    hm_series_t *s;
    size_t n;
    size_t cap;
    int64_t ts_ms; /* time of the collect that stored the values */
    bool has_ts;
    size_t hint; /* where the next lookup starts: files list series in a stable order */
} hm_table_t;

struct agent_hostmetrics {
    unsigned collectors;
    char *root;
    uint64_t errors;
    hm_table_t cpu;
    hm_table_t disk;
    hm_table_t net;
    char *buf; /* file scratch */
    size_t bufcap;
    agent_hm_emit_fn emit;
    void *ud;
    size_t emitted;
};

static const struct {
    const char *name;
    unsigned bit;
} hm_collectors[] = {
    {"cpu", AGENT_HM_CPU},   {"memory", AGENT_HM_MEMORY},         {"load", AGENT_HM_LOAD},
    {"disk", AGENT_HM_DISK}, {"filesystem", AGENT_HM_FILESYSTEM}, {"network", AGENT_HM_NETWORK},
};

unsigned agent_hm_collector_bit(const char *name)
{
    if (name == NULL) {
        return 0;
    }
    for (size_t i = 0; i < sizeof(hm_collectors) / sizeof(hm_collectors[0]); i++) {
        if (strcmp(name, hm_collectors[i].name) == 0) {
            return hm_collectors[i].bit;
        }
    }
    return 0;
}

int agent_hostmetrics_new(agent_hostmetrics_t **out, unsigned collectors, const char *root)
{
    if (out == NULL) {
        return -EINVAL;
    }
    *out = NULL;
    agent_hostmetrics_t *h = calloc(1, sizeof(*h));
    if (h == NULL) {
        return -ENOMEM;
    }
    h->collectors = collectors & AGENT_HM_ALL;
    h->root = strdup(root != NULL ? root : "");
    if (h->root == NULL) {
        free(h);
        return -ENOMEM;
    }
    /* "/" and "" both mean the host; a trailing slash would only double up. */
    size_t rl = strlen(h->root);
    while (rl > 0 && h->root[rl - 1] == '/') {
        h->root[--rl] = '\0';
    }
    *out = h;
    return 0;
}

void agent_hostmetrics_free(agent_hostmetrics_t *h)
{
    if (h == NULL) {
        return;
    }
    free(h->cpu.s);
    free(h->disk.s);
    free(h->net.s);
    free(h->buf);
    free(h->root);
    free(h);
}

uint64_t agent_hostmetrics_errors(const agent_hostmetrics_t *h)
{
    return h != NULL ? h->errors : 0;
}

/* ---------------------------------------------------------------------- */
/* Input helpers                                                          */

/* Reads <root>/<rel> whole into h->buf (NUL-terminated); -errno on failure. */
static int hm_read(agent_hostmetrics_t *h, const char *rel, size_t *lenp)
{
    char path[4096];
    int n = snprintf(path, sizeof(path), "%s/%s", h->root, rel);
    if (n < 0 || (size_t)n >= sizeof(path)) {
        return -ENAMETOOLONG;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return -errno;
    }
    size_t len = 0;
    int rc = 0;
    for (;;) {
        if (h->bufcap - len < 4097) {
            size_t ncap = h->bufcap ? h->bufcap * 2 : 16384;
            if (ncap > HM_FILE_MAX + 1) {
                rc = -EFBIG;
                break;
            }
            char *nb = realloc(h->buf, ncap);
            if (nb == NULL) {
                rc = -ENOMEM;
                break;
            }
            h->buf = nb;
            h->bufcap = ncap;
        }
        ssize_t r = read(fd, h->buf + len, h->bufcap - len - 1);
        if (r < 0) {
            if (errno == EINTR) {
                continue;
            }
            rc = -errno;
            break;
        }
        if (r == 0) {
            break;
        }
        len += (size_t)r;
    }
    close(fd);
    if (rc < 0) {
        return rc;
    }
    h->buf[len] = '\0';
    *lenp = len;
    return 0;
}

/* Next line of a NUL-terminated buffer, terminated in place; NULL at the end. */
static char *hm_next_line(char **cur)
{
    char *p = *cur;
    if (p == NULL || *p == '\0') {
        return NULL;
    }
    char *nl = strchr(p, '\n');
    if (nl != NULL) {
        *nl = '\0';
        *cur = nl + 1;
    } else {
        *cur = p + strlen(p);
    }
    return p;
}

/* Splits a line on blanks in place; returns the token count (at most max). */
static size_t hm_split(char *line, char **tok, size_t max)
{
    size_t n = 0;
    char *p = line;
    while (*p != '\0' && n < max) {
        while (*p == ' ' || *p == '\t' || *p == '\r') {
            p++;
        }
        if (*p == '\0') {
            break;
        }
        tok[n++] = p;
        while (*p != '\0' && *p != ' ' && *p != '\t' && *p != '\r') {
            p++;
        }
        if (*p != '\0') {
            *p++ = '\0';
        }
    }
    return n;
}

/* Decimal digits only, no sign, no overflow. */
static bool hm_u64(const char *s, uint64_t *out)
{
    if (s == NULL || *s < '0' || *s > '9') {
        return false;
    }
    uint64_t v = 0;
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9') {
            return false;
        }
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10) {
            return false;
        }
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

/* A non-negative decimal like "0.52" (loadavg). */
static bool hm_udouble(const char *s, double *out)
{
    const char *p = s;
    bool digits = false;
    while (*p >= '0' && *p <= '9') {
        p++;
        digits = true;
    }
    if (*p == '.') {
        p++;
        while (*p >= '0' && *p <= '9') {
            p++;
            digits = true;
        }
    }
    if (!digits || *p != '\0') {
        return false;
    }
    *out = strtod(s, NULL);
    return true;
}

/* ---------------------------------------------------------------------- */
/* Series tables                                                          */

static void hm_table_begin(hm_table_t *t)
{
    for (size_t i = 0; i < t->n; i++) {
        t->s[i].seen = false;
    }
    t->hint = 0;
}

/* Drops the series not seen this round and stamps the table with now. */
static void hm_table_end(hm_table_t *t, int64_t now_ms)
{
    size_t w = 0;
    for (size_t i = 0; i < t->n; i++) {
        if (t->s[i].seen) {
            if (w != i) {
                t->s[w] = t->s[i];
            }
            w++;
        }
    }
    t->n = w;
    t->ts_ms = now_ms;
    t->has_ts = true;
}

/* Starts where the last lookup ended, so a file listing its series in the
   same order as last time costs one comparison per line, not a scan. */
static hm_series_t *hm_table_find(hm_table_t *t, const char *name)
{
    for (size_t k = 0; k < t->n; k++) {
        size_t i = (t->hint + k) % t->n;
        if (strcmp(t->s[i].name, name) == 0) {
            t->hint = i + 1 < t->n ? i + 1 : 0;
            return &t->s[i];
        }
    }
    return NULL;
}

/* A new series (values zero, not seen); NULL when the table is full or
   memory is short. */
static hm_series_t *hm_table_add(hm_table_t *t, const char *name)
{
    if (t->n == t->cap) {
        if (t->cap >= HM_SERIES_MAX) {
            return NULL;
        }
        size_t ncap = t->cap ? t->cap * 2 : 16;
        hm_series_t *ns = realloc(t->s, ncap * sizeof(*ns));
        if (ns == NULL) {
            return NULL;
        }
        t->s = ns;
        t->cap = ncap;
    }
    hm_series_t *s = &t->s[t->n++];
    memset(s, 0, sizeof(*s));
    snprintf(s->name, sizeof(s->name), "%s", name);
    return s;
}

/* ---------------------------------------------------------------------- */
/* Emission                                                               */

/* put(h, metric, value, nlabels, name0, value0, name1, value1, ...) */
static void hm_put(agent_hostmetrics_t *h, const char *metric, double value, size_t nlabels, ...)
{
    agent_hm_sample_t s;
    memset(&s, 0, sizeof(s));
    s.metric = metric;
    s.value = value;
    s.nlabels = nlabels < AGENT_HM_MAX_LABELS ? nlabels : AGENT_HM_MAX_LABELS;
    va_list ap;
    va_start(ap, nlabels);
    for (size_t i = 0; i < s.nlabels; i++) {
        s.labels[i].name = va_arg(ap, const char *);
        s.labels[i].value = va_arg(ap, const char *);
    }
    va_end(ap);
    if (h->emit != NULL) {
        h->emit(h->ud, &s);
    }
    h->emitted++;
}

static double hm_pct(double part, double whole)
{
    if (whole <= 0) {
        return 0;
    }
    double p = part / whole * 100.0;
    return p < 0 ? 0 : (p > 100 ? 100 : p);
}

/* ---------------------------------------------------------------------- */
/* cpu: /proc/stat                                                        */

static const char *const hm_cpu_modes[HM_NVALS] = {
    "user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal",
};

static int hm_collect_cpu(agent_hostmetrics_t *h, int64_t now_ms)
{
    size_t len;
    int rc = hm_read(h, "proc/stat", &len);
    if (rc < 0) {
        return rc;
    }
    hm_table_begin(&h->cpu);
    size_t used = 0;
    char *cur = h->buf;
    char *line;
    while ((line = hm_next_line(&cur)) != NULL) {
        if (strncmp(line, "cpu", 3) != 0) {
            continue;
        }
        char *tok[HM_MAX_TOKENS];
        size_t nt = hm_split(line, tok, HM_MAX_TOKENS);
        /* "cpu" (total) or "cpuN"; then at least user nice system idle. */
        const char *id = tok[0] + 3;
        uint64_t cpuno;
        bool total = *id == '\0';
        if ((!total && !hm_u64(id, &cpuno)) || nt < 5 || strlen(tok[0]) >= HM_NAME_MAX) {
            h->errors++;
            continue;
        }
        uint64_t v[HM_NVALS] = {0};
        bool ok = true;
        for (size_t i = 1; i < nt && i <= HM_NVALS; i++) {
            if (!hm_u64(tok[i], &v[i - 1])) {
                ok = false;
            }
        }
        if (!ok) {
            h->errors++;
            continue;
        }
        hm_series_t *s = hm_table_find(&h->cpu, tok[0]);
        if (s != NULL && s->seen) {
            h->errors++; /* the same cpu twice */
            continue;
        }
        uint64_t zero[HM_NVALS] = {0};
        const uint64_t *prev = s != NULL ? s->v : zero;
        if (s == NULL && (s = hm_table_add(&h->cpu, tok[0])) == NULL) {
            h->errors++;
            continue;
        }
        s->seen = true;
        used++;
        uint64_t d[HM_NVALS];
        uint64_t sum = 0;
        bool reset = false;
        for (size_t i = 0; i < HM_NVALS; i++) {
            if (v[i] < prev[i]) {
                reset = true;
            }
            d[i] = v[i] - prev[i];
            sum += d[i];
        }
        memcpy(s->v, v, sizeof(v));
        if (reset || sum == 0) {
            continue;
        }
        const char *label = total ? "total" : id;
        double whole = (double)sum;
        hm_put(h, "cpu.usage_percent", hm_pct((double)(sum - d[3] - d[4]), whole), 1, "cpu", label);
        for (size_t i = 0; i < HM_NVALS; i++) {
            hm_put(h, "cpu.mode_percent", hm_pct((double)d[i], whole), 2, "cpu", label, "mode",
                   hm_cpu_modes[i]);
        }
    }
    hm_table_end(&h->cpu, now_ms);
    return used > 0 ? 0 : -EINVAL;
}

/* ---------------------------------------------------------------------- */
/* memory: /proc/meminfo                                                  */

enum { MI_TOTAL, MI_FREE, MI_AVAIL, MI_BUFFERS, MI_CACHED, MI_SWAP_TOTAL, MI_SWAP_FREE, MI_N };

static const char *const hm_mi_keys[MI_N] = {
    "MemTotal:", "MemFree:", "MemAvailable:", "Buffers:", "Cached:", "SwapTotal:", "SwapFree:",
};

static int hm_collect_memory(agent_hostmetrics_t *h)
{
    size_t len;
    int rc = hm_read(h, "proc/meminfo", &len);
    if (rc < 0) {
        return rc;
    }
    uint64_t v[MI_N] = {0};
    bool has[MI_N] = {false};
    char *cur = h->buf;
    char *line;
    while ((line = hm_next_line(&cur)) != NULL) {
        char *tok[4];
        size_t nt = hm_split(line, tok, 4);
        if (nt == 0) {
            continue;
        }
        for (int k = 0; k < MI_N; k++) {
            if (strcmp(tok[0], hm_mi_keys[k]) != 0) {
                continue;
            }
            uint64_t kb;
            if (nt != 3 || strcmp(tok[2], "kB") != 0 || !hm_u64(tok[1], &kb) ||
                kb > UINT64_MAX / 1024) {
                h->errors++;
            } else {
                v[k] = kb * 1024;
                has[k] = true;
            }
            break;
        }
    }
    if (!has[MI_TOTAL] || v[MI_TOTAL] == 0) {
        return -EINVAL;
    }
    double total = (double)v[MI_TOTAL];
    uint64_t used;
    if (has[MI_AVAIL]) {
        used = v[MI_AVAIL] < v[MI_TOTAL] ? v[MI_TOTAL] - v[MI_AVAIL] : 0;
    } else {
        uint64_t freeish = v[MI_FREE] + v[MI_BUFFERS] + v[MI_CACHED];
        used = freeish < v[MI_TOTAL] ? v[MI_TOTAL] - freeish : 0;
    }
    hm_put(h, "memory.total_bytes", total, 0);
    if (has[MI_FREE]) {
        hm_put(h, "memory.free_bytes", (double)v[MI_FREE], 0);
    }
    if (has[MI_AVAIL]) {
        hm_put(h, "memory.available_bytes", (double)v[MI_AVAIL], 0);
    }
    hm_put(h, "memory.used_bytes", (double)used, 0);
    hm_put(h, "memory.used_percent", hm_pct((double)used, total), 0);
    if (has[MI_BUFFERS]) {
        hm_put(h, "memory.buffers_bytes", (double)v[MI_BUFFERS], 0);
    }
    if (has[MI_CACHED]) {
        hm_put(h, "memory.cached_bytes", (double)v[MI_CACHED], 0);
    }
    if (has[MI_SWAP_TOTAL] && has[MI_SWAP_FREE]) {
        uint64_t st = v[MI_SWAP_TOTAL];
        uint64_t sf = v[MI_SWAP_FREE] < st ? v[MI_SWAP_FREE] : st;
        hm_put(h, "swap.total_bytes", (double)st, 0);
        hm_put(h, "swap.free_bytes", (double)sf, 0);
        hm_put(h, "swap.used_bytes", (double)(st - sf), 0);
        hm_put(h, "swap.used_percent", hm_pct((double)(st - sf), (double)st), 0);
    }
    return 0;
}

/* ---------------------------------------------------------------------- */
/* load: /proc/loadavg                                                    */

static int hm_collect_load(agent_hostmetrics_t *h)
{
    size_t len;
    int rc = hm_read(h, "proc/loadavg", &len);
    if (rc < 0) {
        return rc;
    }
    char *cur = h->buf;
    char *line = hm_next_line(&cur);
    char *tok[6];
    size_t nt = line != NULL ? hm_split(line, tok, 6) : 0;
    double l[3];
    if (nt < 3 || !hm_udouble(tok[0], &l[0]) || !hm_udouble(tok[1], &l[1]) ||
        !hm_udouble(tok[2], &l[2])) {
        return -EINVAL;
    }
    hm_put(h, "load.1m", l[0], 0);
    hm_put(h, "load.5m", l[1], 0);
    hm_put(h, "load.15m", l[2], 0);
    return 0;
}

/* ---------------------------------------------------------------------- */
/* disk: /proc/diskstats                                                  */

/*
 * A /proc/diskstats line (Documentation/admin-guide/iostats.rst), tokens:
 *   0 major  1 minor  2 name
 *   3 reads completed   4 reads merged   5 sectors read    6 ms reading
 *   7 writes completed  8 writes merged  9 sectors written 10 ms writing
 *  11 I/Os in progress 12 ms doing I/O  13 weighted ms   (14.. discard, flush)
 * Sectors are 512 bytes whatever the device's block size.
 */
enum { DK_READS, DK_RSECT, DK_WRITES, DK_WSECT, DK_IOMS };

static int hm_collect_disk(agent_hostmetrics_t *h, int64_t now_ms)
{
    size_t len;
    int rc = hm_read(h, "proc/diskstats", &len);
    if (rc < 0) {
        return rc;
    }
    hm_table_t *t = &h->disk;
    bool can_rate = t->has_ts && now_ms > t->ts_ms;
    double dt_s = can_rate ? (double)(now_ms - t->ts_ms) / 1000.0 : 0;
    hm_table_begin(t);
    char *cur = h->buf;
    char *line;
    size_t lines = 0, good = 0;
    while ((line = hm_next_line(&cur)) != NULL) {
        char *tok[HM_MAX_TOKENS];
        size_t nt = hm_split(line, tok, HM_MAX_TOKENS);
        if (nt == 0) {
            continue;
        }
        lines++;
        uint64_t f[14];
        bool ok = nt >= 14 && strlen(tok[2]) < HM_NAME_MAX;
        bool allzero = true;
        for (size_t i = 0; ok && i < 14; i++) {
            if (i == 2) {
                continue;
            }
            ok = hm_u64(tok[i], &f[i]);
            if (ok && i >= 3 && f[i] != 0) {
                allzero = false;
            }
        }
        if (!ok) {
            h->errors++;
            continue;
        }
        good++;
        const char *name = tok[2];
        if (strncmp(name, "loop", 4) == 0 || strncmp(name, "ram", 3) == 0) {
            continue;
        }
        uint64_t v[HM_NVALS] = {f[3], f[5], f[7], f[9], f[12]};
        hm_series_t *s = hm_table_find(t, name);
        if (s != NULL && s->seen) {
            h->errors++;
            continue;
        }
        bool had = s != NULL;
        if (s == NULL && (s = hm_table_add(t, name)) == NULL) {
            h->errors++;
            continue;
        }
        s->seen = true;
        bool reset = false;
        for (size_t i = 0; i <= DK_IOMS; i++) {
            if (v[i] < s->v[i]) {
                reset = true;
            }
        }
        uint64_t d[DK_IOMS + 1];
        for (size_t i = 0; i <= DK_IOMS; i++) {
            d[i] = v[i] - s->v[i];
        }
        memcpy(s->v, v, sizeof(v));
        if (!had || !can_rate || reset || allzero) {
            continue;
        }
        hm_put(h, "disk.read_bytes_per_sec", (double)d[DK_RSECT] * 512.0 / dt_s, 1, "device", name);
        hm_put(h, "disk.write_bytes_per_sec", (double)d[DK_WSECT] * 512.0 / dt_s, 1, "device",
               name);
        hm_put(h, "disk.reads_per_sec", (double)d[DK_READS] / dt_s, 1, "device", name);
        hm_put(h, "disk.writes_per_sec", (double)d[DK_WRITES] / dt_s, 1, "device", name);
        hm_put(h, "disk.io_time_percent", hm_pct((double)d[DK_IOMS], dt_s * 1000.0), 1, "device",
               name);
    }
    hm_table_end(t, now_ms);
    /* An empty file is a host without block devices; only garbage is an error. */
    return lines > 0 && good == 0 ? -EINVAL : 0;
}

/* ---------------------------------------------------------------------- */
/* network: /proc/net/dev                                                 */

/*
 * After two header lines, one line per interface: "name:" then 16 counters,
 *   receive:  0 bytes  1 packets  2 errs  3 drop  4 fifo 5 frame 6 compressed 7 multicast
 *   transmit: 8 bytes  9 packets 10 errs 11 drop 12 fifo 13 colls 14 carrier 15 compressed
 * The name is right-aligned and a long one may touch its first counter
 * ("verylongname0:123"), so the line is split at the colon first.
 */
enum { NT_RXB, NT_RXP, NT_TXB, NT_TXP };

static int hm_collect_network(agent_hostmetrics_t *h, int64_t now_ms)
{
    size_t len;
    int rc = hm_read(h, "proc/net/dev", &len);
    if (rc < 0) {
        return rc;
    }
    hm_table_t *t = &h->net;
    bool can_rate = t->has_ts && now_ms > t->ts_ms;
    double dt_s = can_rate ? (double)(now_ms - t->ts_ms) / 1000.0 : 0;
    hm_table_begin(t);
    char *cur = h->buf;
    char *line;
    size_t good = 0;
    while ((line = hm_next_line(&cur)) != NULL) {
        char *colon = strchr(line, ':');
        if (colon == NULL) {
            /* The two header lines have '|' and no colon; blank lines are fine. */
            if (strchr(line, '|') == NULL && strspn(line, " \t\r") != strlen(line)) {
                h->errors++;
            }
            continue;
        }
        *colon = '\0';
        char *nametok[2];
        if (hm_split(line, nametok, 2) != 1 || strlen(nametok[0]) >= HM_NAME_MAX) {
            h->errors++;
            continue;
        }
        const char *name = nametok[0];
        char *tok[HM_MAX_TOKENS];
        size_t nt = hm_split(colon + 1, tok, HM_MAX_TOKENS);
        uint64_t f[12];
        bool ok = nt >= 12;
        for (size_t i = 0; ok && i < 12; i++) {
            ok = hm_u64(tok[i], &f[i]);
        }
        if (!ok) {
            h->errors++;
            continue;
        }
        hm_series_t *s = hm_table_find(t, name);
        if (s != NULL && s->seen) {
            h->errors++;
            continue;
        }
        bool had = s != NULL;
        if (s == NULL && (s = hm_table_add(t, name)) == NULL) {
            h->errors++;
            continue;
        }
        s->seen = true;
        good++;
        uint64_t v[HM_NVALS] = {f[0], f[1], f[8], f[9]};
        bool reset = false;
        uint64_t d[NT_TXP + 1];
        for (size_t i = 0; i <= NT_TXP; i++) {
            if (v[i] < s->v[i]) {
                reset = true;
            }
            d[i] = v[i] - s->v[i];
        }
        memcpy(s->v, v, sizeof(v));
        if (had && can_rate && !reset) {
            hm_put(h, "network.receive_bytes_per_sec", (double)d[NT_RXB] / dt_s, 1, "interface",
                   name);
            hm_put(h, "network.transmit_bytes_per_sec", (double)d[NT_TXB] / dt_s, 1, "interface",
                   name);
            hm_put(h, "network.receive_packets_per_sec", (double)d[NT_RXP] / dt_s, 1, "interface",
                   name);
            hm_put(h, "network.transmit_packets_per_sec", (double)d[NT_TXP] / dt_s, 1, "interface",
                   name);
        }
        hm_put(h, "network.receive_errors", (double)f[2], 1, "interface", name);
        hm_put(h, "network.transmit_errors", (double)f[10], 1, "interface", name);
        hm_put(h, "network.receive_drops", (double)f[3], 1, "interface", name);
        hm_put(h, "network.transmit_drops", (double)f[11], 1, "interface", name);
    }
    hm_table_end(t, now_ms);
    return good > 0 ? 0 : -EINVAL;
}

/* ---------------------------------------------------------------------- */
/* filesystem: <root>/proc/1/mounts (else proc/self/mounts), statvfs()   */

static const char *const hm_skip_fstypes[] = {
    /* kernel pseudo filesystems */
    "proc", "sysfs", "devtmpfs", "devpts", "cgroup", "cgroup2", "pstore", "bpf", "tracefs",
    "debugfs", "securityfs", "configfs", "fusectl", "mqueue", "hugetlbfs", "autofs", "binfmt_misc",
    "nsfs", "efivarfs", "rpc_pipefs", "selinuxfs", "rootfs", "sockfs", "pipefs", "anon_inodefs",
    "nfsd", "devfs", "usbfs", "fuse.lxcfs", "fuse.gvfsd-fuse", "fuse.portal", "fuse.snapfuse",
    /* memory-backed */
    "tmpfs", "ramfs",
    /* read-only images, always full */
    "squashfs", "iso9660",
    /* network filesystems: statvfs() can block without a bound */
    "nfs", "nfs4", "cifs", "smb3", "smbfs", "ceph", "glusterfs", "fuse.glusterfs", "fuse.sshfs",
    "lustre", "afs", "fuse.s3fs", "fuse.rclone"};

static bool hm_fstype_skipped(const char *type, const char *mnt)
{
    if (strcmp(type, "overlay") == 0 || strcmp(type, "aufs") == 0) {
        return strcmp(mnt, "/") != 0;
    }
    for (size_t i = 0; i < sizeof(hm_skip_fstypes) / sizeof(hm_skip_fstypes[0]); i++) {
        if (strcmp(type, hm_skip_fstypes[i]) == 0) {
            return true;
        }
    }
    return false;
}

/* The kernel escapes space, tab, newline and backslash as \ooo (octal). */
static void hm_unescape_octal(char *s)
{
    char *w = s;
    for (char *r = s; *r != '\0';) {
        if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' &&
            r[3] >= '0' && r[3] <= '7') {
            int c = (r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0');
            if (c != 0) {
                *w++ = (char)c;
                r += 4;
                continue;
            }
        }
        *w++ = *r++;
    }
    *w = '\0';
}

static int hm_collect_filesystem(agent_hostmetrics_t *h)
{
    size_t len;
    /* Under a root (the host's / mounted in a container) the host's mounts
       are those of its init, proc/1; proc/self would be the agent's own
       mount namespace. */
    int rc = h->root[0] != '\0' ? hm_read(h, "proc/1/mounts", &len) : -ENOENT;
    if (rc < 0) {
        rc = hm_read(h, "proc/self/mounts", &len);
    }
    if (rc < 0) {
        return rc;
    }
    /* Devices already reported this round (bind mounts): pointers into h->buf. */
    const char **devs = NULL;
    size_t ndevs = 0, capdevs = 0;
    size_t lines = 0, good = 0;
    char *cur = h->buf;
    char *line;
    while ((line = hm_next_line(&cur)) != NULL) {
        char *tok[8];
        size_t nt = hm_split(line, tok, 8);
        if (nt == 0) {
            continue;
        }
        lines++;
        if (nt < 4 || tok[1][0] != '/') {
            h->errors++;
            continue;
        }
        good++;
        char *dev = tok[0], *mnt = tok[1], *type = tok[2];
        hm_unescape_octal(dev);
        hm_unescape_octal(mnt);
        hm_unescape_octal(type);
        if (hm_fstype_skipped(type, mnt)) {
            continue;
        }
        bool block = strncmp(dev, "/dev/", 5) == 0;
        if (block) {
            bool dup = false;
            for (size_t i = 0; i < ndevs && !dup; i++) {
                dup = strcmp(devs[i], dev) == 0;
            }
            if (dup) {
                continue;
            }
        }
        char path[4096];
        int n = snprintf(path, sizeof(path), "%s%s", h->root, mnt);
        struct statvfs sv;
        if (n < 0 || (size_t)n >= sizeof(path) || statvfs(path, &sv) != 0) {
            h->errors++;
            continue;
        }
        if (block) {
            if (ndevs == capdevs) {
                size_t ncap = capdevs ? capdevs * 2 : 16;
                const char **nd = realloc(devs, ncap * sizeof(*nd));
                if (nd != NULL) {
                    devs = nd;
                    capdevs = ncap;
                }
            }
            if (ndevs < capdevs) {
                devs[ndevs++] = dev;
            }
        }
        if (sv.f_blocks == 0) {
            continue;
        }
        double frsize = (double)(sv.f_frsize ? sv.f_frsize : sv.f_bsize);
        double total = (double)sv.f_blocks * frsize;
        uint64_t bfree = sv.f_bfree < sv.f_blocks ? sv.f_bfree : sv.f_blocks;
        uint64_t bavail = sv.f_bavail < bfree ? sv.f_bavail : bfree;
        double used = (double)(sv.f_blocks - bfree) * frsize;
        double avail = (double)bavail * frsize;
        hm_put(h, "filesystem.total_bytes", total, 3, "mountpoint", mnt, "device", dev, "fstype",
               type);
        hm_put(h, "filesystem.free_bytes", (double)bfree * frsize, 3, "mountpoint", mnt, "device",
               dev, "fstype", type);
        hm_put(h, "filesystem.available_bytes", avail, 3, "mountpoint", mnt, "device", dev,
               "fstype", type);
        hm_put(h, "filesystem.used_bytes", used, 3, "mountpoint", mnt, "device", dev, "fstype",
               type);
        hm_put(h, "filesystem.used_percent", hm_pct(used, used + avail), 3, "mountpoint", mnt,
               "device", dev, "fstype", type);
        if (sv.f_files > 0) {
            uint64_t ffree = sv.f_ffree < sv.f_files ? sv.f_ffree : sv.f_files;
            hm_put(h, "filesystem.inodes_used_percent",
                   hm_pct((double)(sv.f_files - ffree), (double)sv.f_files), 3, "mountpoint", mnt,
                   "device", dev, "fstype", type);
        }
    }
    free(devs);
    return lines > 0 && good == 0 ? -EINVAL : 0;
}

/* ---------------------------------------------------------------------- */

size_t agent_hostmetrics_collect(agent_hostmetrics_t *h, int64_t now_ms, agent_hm_emit_fn emit,
                                 void *ud)
{
    if (h == NULL) {
        return 0;
    }
    h->emit = emit;
    h->ud = ud;
    h->emitted = 0;
    unsigned c = h->collectors;
    /* A collector that fails is counted once and emits nothing more. */
    if ((c & AGENT_HM_CPU) && hm_collect_cpu(h, now_ms) < 0) {
        h->errors++;
    }
    if ((c & AGENT_HM_MEMORY) && hm_collect_memory(h) < 0) {
        h->errors++;
    }
    if ((c & AGENT_HM_LOAD) && hm_collect_load(h) < 0) {
        h->errors++;
    }
    if ((c & AGENT_HM_DISK) && hm_collect_disk(h, now_ms) < 0) {
        h->errors++;
    }
    if ((c & AGENT_HM_FILESYSTEM) && hm_collect_filesystem(h) < 0) {
        h->errors++;
    }
    if ((c & AGENT_HM_NETWORK) && hm_collect_network(h, now_ms) < 0) {
        h->errors++;
    }
    h->emit = NULL;
    h->ud = NULL;
    if (h->bufcap > HM_BUF_KEEP) {
        free(h->buf);
        h->buf = NULL;
        h->bufcap = 0;
    }
    return h->emitted;
}
