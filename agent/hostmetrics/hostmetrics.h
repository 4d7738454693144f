/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Host metrics read from /proc and statvfs(), and the Prometheus text
 * exposition format (parser and a libcurl scrape). The sampler keeps the
 * previous counters so it reports percentages and per-second rates; it
 * reads from a configurable root so tests can give it fixture files.
 *
 * Samples (names are dotted; labels as listed):
 *   cpu:        cpu.usage_percent{cpu="total"|"0".."N-1"} (100 - idle - iowait),
 *               cpu.mode_percent{cpu, mode="user"|"nice"|"system"|"idle"|"iowait"|
 *                                "irq"|"softirq"|"steal"}
 *   memory:     memory.total_bytes, memory.free_bytes, memory.available_bytes,
 *               memory.used_bytes, memory.used_percent, memory.buffers_bytes,
 *               memory.cached_bytes, swap.total_bytes, swap.free_bytes,
 *               swap.used_bytes, swap.used_percent
 *   load:       load.1m, load.5m, load.15m
 *   disk:       disk.read_bytes_per_sec, disk.write_bytes_per_sec,
 *               disk.reads_per_sec, disk.writes_per_sec,
 *               disk.io_time_percent {device} (whole disks and partitions
 *               from /proc/diskstats; loop and ram devices left out, and
 *               devices whose counters are all zero)
 *   filesystem: filesystem.total_bytes, filesystem.free_bytes,
 *               filesystem.available_bytes, filesystem.used_bytes,
 *               filesystem.used_percent, filesystem.inodes_used_percent
 *               {mountpoint, device, fstype} (real mounts from
 *               <root>/proc/1/mounts under a root, else /proc/self/mounts;
 *               proc, sysfs, tmpfs, cgroup, overlay
 *               lower layers and other pseudo filesystems left out, as are
 *               squashfs images and network filesystems, whose statvfs() can
 *               block; overlay kept on "/" only; bind mounts of one /dev/...
 *               device reported once)
 *   network:    network.receive_bytes_per_sec, network.transmit_bytes_per_sec,
 *               network.receive_packets_per_sec, network.transmit_packets_per_sec,
 *               network.receive_errors, network.transmit_errors,
 *               network.receive_drops, network.transmit_drops {interface}
 *               (lo included; errors and drops are the kernel's running totals)
 * Rates need two samples: the first collect() of a rate metric emits
 * nothing for it; cpu percentages on the first collect() are since boot.
 */
#ifndef TRIBUTARY_AGENT_HOSTMETRICS_H
#define TRIBUTARY_AGENT_HOSTMETRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
    AGENT_HM_CPU = 1u << 0,
    AGENT_HM_MEMORY = 1u << 1,
    AGENT_HM_LOAD = 1u << 2,
    AGENT_HM_DISK = 1u << 3,
    AGENT_HM_FILESYSTEM = 1u << 4,
    AGENT_HM_NETWORK = 1u << 5,
    AGENT_HM_ALL = (1u << 6) - 1,
};

/* "cpu", "memory", ... -> its bit; 0 when unknown. */
unsigned agent_hm_collector_bit(const char *name);

#define AGENT_HM_MAX_LABELS 4

typedef struct agent_hm_label {
    const char *name;
    const char *value;
} agent_hm_label_t;

typedef struct agent_hm_sample {
    const char *metric;
    double value;
    size_t nlabels;
    agent_hm_label_t labels[AGENT_HM_MAX_LABELS];
} agent_hm_sample_t;

/* Called once per sample; the strings are valid during the call only. */
typedef void (*agent_hm_emit_fn)(void *ud, const agent_hm_sample_t *s);

typedef struct agent_hostmetrics agent_hostmetrics_t;

/* root: "" or NULL for the real host, else a directory holding proc/...
   (statvfs is still called on the mountpoints it lists, prefixed by root). */
int agent_hostmetrics_new(agent_hostmetrics_t **out, unsigned collectors, const char *root);
void agent_hostmetrics_free(agent_hostmetrics_t *h);
/* One round of every enabled collector at time now_ms (monotonic, for
   rates). A collector whose files cannot be read is skipped and counted;
   returns the number of samples emitted. A handle is not locked: one
   collect at a time (the parser and the scrape keep no shared state). */
size_t agent_hostmetrics_collect(agent_hostmetrics_t *h, int64_t now_ms, agent_hm_emit_fn emit,
                                 void *ud);
uint64_t agent_hostmetrics_errors(const agent_hostmetrics_t *h);

/* ---------------------------------------------------------------------- */
/* Prometheus text exposition format (version 0.0.4).                     */

#define AGENT_PROM_MAX_LABELS 16

typedef struct agent_prom_sample {
    const char *name;
    size_t name_len;
    size_t nlabels;
    struct {
        const char *name;
        size_t nlen;
        char *value; /* unescaped, NUL-terminated, valid during the call */
        size_t vlen;
    } labels[AGENT_PROM_MAX_LABELS];
    double value; /* NaN, +Inf and -Inf as the text says */
    bool has_ts;
    int64_t ts_ms;
    const char *type; /* from the family's # TYPE line ("counter", ...), or "untyped" */
} agent_prom_sample_t;

typedef void (*agent_prom_emit_fn)(void *ud, const agent_prom_sample_t *s);

/* Parses a whole exposition body, calling emit per sample. Malformed lines
   are skipped and counted; returns that count (0: clean), or -ENOMEM. */
long agent_prom_parse(const char *text, size_t len, agent_prom_emit_fn emit, void *ud);

/* GET url with libcurl (blocking: the agent calls it on the thread pool),
   following no redirects, at most max_bytes of body, total timeout_ms.
   On success returns 0 with *body malloc'd (NUL-terminated) and *len;
   else -1 with a message in err (*body NULL). timeout_ms <= 0 means 10 s,
   max_bytes 0 means 16 MiB. Proxy environment variables are honoured. */
int agent_prom_scrape(const char *url, int64_t timeout_ms, size_t max_bytes, char **body,
                      size_t *len, char *err, size_t errlen);

#endif
