/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The `file` sink: each record as one JSON line (sinkutil.h's shape) in
 * <path>/<topic>-<partition>-<first offset>.jsonl, a new file when the
 * current one reaches rotate_bytes or has been open for rotate_interval.
 *
 * Durability: write() appends; flush() fsyncs the file (and the directory
 * after a file was created), which is when the host may commit. If a
 * write fails part way, the file is truncated back to what the last flush
 * made durable and RETRY is returned: the host then rewrites everything
 * since that flush, so a retried batch does not appear twice. (A crash
 * between flush and the host's commit can still repeat a batch: the sink
 * is at-least-once, every line carries its topic, partition and offset.)
 * It does not dedupe on the event id either: an event an agent sends again
 * after a crash is a second line, with the same headers["event.id"] (a
 * reader that needs each event once keeps the first line of each id, or
 * of each (topic, partition, offset) for lines without one).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sinkutil.h"
#include "tributary/log.h"

typedef struct sink_file_opts {
    const char *path;
    uint64_t rotate_bytes;
    int64_t rotate_interval;
    bool fsync;
} sink_file_opts_t;

static const trib_config_option_t sink_file_options[] = {
    {TRIB_CONFIG_FIELD(sink_file_opts_t, path, STRING), .flags = TRIB_CONFIG_REQUIRED, .min = "1",
     .desc = "directory the files go to (created if missing)"},
    {TRIB_CONFIG_FIELD(sink_file_opts_t, rotate_bytes, SIZE), .def = "64MiB", .min = "1kB",
     .desc = "start a new file when the current one reaches this size"},
    {TRIB_CONFIG_FIELD(sink_file_opts_t, rotate_interval, DURATION), .def = "1h", .min = "1s",
     .desc = "start a new file when the current one is this old"},
    {TRIB_CONFIG_FIELD(sink_file_opts_t, fsync, BOOL), .def = "true",
     .desc = "fsync on flush (off: durable only as far as the page cache)"},
    TRIB_CONFIG_END,
};

typedef struct sink_file {
    const trib_sink_host_t *host;
    trib_sink_ctx_t *ctx;
    sink_file_opts_t o;
    int fd;
    int dirfd;
    char topic[256];
    int32_t partition;
    uint64_t size;         /* bytes written to the current file */
    uint64_t durable_size; /* bytes made durable by the last flush */
    uint64_t opened_ms;
    bool dir_dirty; /* a file was created since the last flush */
    sink_str_t line;
} sink_file_t;

static int sink_file_open(const trib_sink_host_t *host, trib_sink_ctx_t *ctx, const void *options,
                          void **instance, trib_error_t *err)
{
    const sink_file_opts_t *o = options;
    if (mkdir(o->path, 0755) != 0 && errno != EEXIST) {
        return trib_error_set(err, -errno, "cannot create %s: %s", o->path, strerror(errno));
    }
    int dirfd = open(o->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0) {
        return trib_error_set(err, -errno, "cannot open directory %s: %s", o->path,
                              strerror(errno));
    }
    sink_file_t *f = calloc(1, sizeof(*f));
    if (!f) {
        close(dirfd);
        return trib_error_set(err, -ENOMEM, "out of memory");
    }
    f->host = host;
    f->ctx = ctx;
    f->o = *o;
    f->fd = -1;
    f->dirfd = dirfd;
    sink_str_init(&f->line);
    *instance = f;
    return 0;
}

static void close_current(sink_file_t *f)
{
    if (f->fd >= 0) {
        close(f->fd);
        f->fd = -1;
    }
}

/* Opens the file for the batch's first record unless the current one fits. */
static int ensure_file(sink_file_t *f, const trib_sink_batch_t *b, trib_sink_result_t *res)
{
    uint64_t now = f->host->now_ms();
    bool same = f->fd >= 0 && f->partition == b->partition && strcmp(f->topic, b->topic) == 0;
    if (same && f->size < f->o.rotate_bytes &&
        now - f->opened_ms < (uint64_t)f->o.rotate_interval) {
        return 0;
    }
    if (f->fd >= 0 && f->durable_size != f->size) {
        /* Rotating away from undurable bytes: make them durable first. */
        if (f->o.fsync && fsync(f->fd) != 0) {
            snprintf(res->msg, sizeof(res->msg), "fsync: %s", strerror(errno));
            return -1;
        }
    }
    close_current(f);
    char name[512];
    snprintf(name, sizeof(name), "%s-%d-%020" PRId64 ".jsonl", b->topic, (int)b->partition,
             b->records[0].offset);
    for (char *p = name; *p; p++) {
        if (*p == '/') {
            *p = '_';
        }
    }
    /* O_TRUNC: a file of this name from before a crash holds records from
     * this very offset on, which the host is now delivering again. */
    int fd = openat(f->dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(res->msg, sizeof(res->msg), "open %.200s/%.200s: %s", f->o.path, name,
                 strerror(errno));
        return -1;
    }
    f->fd = fd;
    snprintf(f->topic, sizeof(f->topic), "%s", b->topic);
    f->partition = b->partition;
    f->size = f->durable_size = 0;
    f->opened_ms = now;
    f->dir_dirty = true;
    f->host->log(f->ctx, TRIB_LOG_DEBUG, "writing %s/%s", f->o.path, name);
    return 0;
}

static trib_sink_status_t sink_file_write(void *instance, const trib_sink_batch_t *b,
                                          trib_sink_result_t *res)
{
    sink_file_t *f = instance;
    if (b->count == 0) {
        return TRIB_SINK_OK;
    }
    if (ensure_file(f, b, res) != 0) {
        return TRIB_SINK_RETRY;
    }
    sink_str_reset(&f->line);
    for (size_t i = 0; i < b->count; i++) {
        sink_json_record(&f->line, b->topic, b->partition, &b->records[i]);
        sink_str_append(&f->line, "\n", 1);
    }
    if (f->line.err) {
        snprintf(res->msg, sizeof(res->msg), "out of memory");
        return TRIB_SINK_RETRY;
    }
    size_t off = 0;
    while (off < f->line.len) {
        ssize_t n = write(f->fd, f->line.p + off, f->line.len - off);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            snprintf(res->msg, sizeof(res->msg), "write: %s", n < 0 ? strerror(errno) : "short");
            /* Back to what is durable: the host rewrites everything after it. */
            if (ftruncate(f->fd, (off_t)f->durable_size) != 0) {
                close_current(f);
            }
            f->size = f->durable_size;
            return TRIB_SINK_RETRY;
        }
        off += (size_t)n;
    }
    f->size += f->line.len;
    f->host->counter_add(f->ctx, "file_bytes", f->line.len);
    return TRIB_SINK_OK;
}

static trib_sink_status_t sink_file_flush(void *instance, trib_sink_result_t *res)
{
    sink_file_t *f = instance;
    if (f->fd < 0) {
        return TRIB_SINK_OK;
    }
    if (f->o.fsync && f->size != f->durable_size && fdatasync(f->fd) != 0) {
        snprintf(res->msg, sizeof(res->msg), "fdatasync: %s", strerror(errno));
        if (ftruncate(f->fd, (off_t)f->durable_size) != 0) {
            close_current(f);
        }
        f->size = f->durable_size;
        return TRIB_SINK_RETRY;
    }
    if (f->o.fsync && f->dir_dirty && fsync(f->dirfd) != 0) {
        snprintf(res->msg, sizeof(res->msg), "fsync %s: %s", f->o.path, strerror(errno));
        return TRIB_SINK_RETRY;
    }
    f->dir_dirty = false;
    f->durable_size = f->size;
    return TRIB_SINK_OK;
}

static void sink_file_close(void *instance)
{
    sink_file_t *f = instance;
    if (!f) {
        return;
    }
    close_current(f);
    close(f->dirfd);
    sink_str_fini(&f->line);
    free(f);
}

TRIB_SINK_EXPORT const trib_sink_descriptor_t *tributary_sink_descriptor(void);

TRIB_SINK_EXPORT const trib_sink_descriptor_t *tributary_sink_descriptor(void)
{
    static const trib_sink_descriptor_t d = {
        .abi_version = TRIB_SINK_ABI_VERSION,
        .struct_size = sizeof(trib_sink_descriptor_t),
        .name = "file",
        .description = "JSON lines in files under a directory, rotated by size and age",
        .options = sink_file_options,
        .options_size = sizeof(sink_file_opts_t),
        .open = sink_file_open,
        .write = sink_file_write,
        .flush = sink_file_flush,
        .close = sink_file_close,
    };
    return &d;
}
