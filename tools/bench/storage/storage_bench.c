/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tributary-bench-storage: how fast the log engine appends, next to what
 * the same disk does raw, measured in the same run.
 *
 *   tributary-bench-storage [-s SIZE] [-r RUNS] [-d DIR] [-t SECONDS] [-j N]
 *
 * For 1 MiB and 16 KiB record batches it measures, RUNS times each
 * (interleaved, median printed):
 *
 *   raw ack     write() + fdatasync() of SIZE bytes in pieces of the batch size
 *   ack         coll_log_append + coll_log_wait_durable, one batch in flight
 *               (storage.fsync=ack; what a producer with acks=all and one
 *               request in flight sees)
 *   ack xN      the same with N appends in flight (-j, default 64): group
 *               commit, one fdatasync for many appends
 *   raw never   write() alone (the page-cache rate)
 *   never       coll_log_append alone (storage.fsync=never), with the batch
 *               CRC checked by the storage, and with it pre-verified (the
 *               produce path may have checked it while parsing)
 *
 * Cases run in turn, in reverse order every other run. Printed: the
 * median rate of each case, its ratio to the median raw rate, and the
 * median of the per-run ratios (each storage figure over the raw figure
 * of the same run), which is steadier on a shared machine.
 *
 * Each case writes a fresh file or log in DIR (default $TMPDIR or /var/tmp)
 * and stops at SIZE bytes (default 1 GiB) or after SECONDS (default 30),
 * whichever comes first; rates are over what was written. Dirty data from
 * the previous case is flushed (syncfs) before each case starts, and the
 * close of a log (which fsyncs) is outside the timing. Batches are real
 * record batches of ~1 KiB records; the same buffer is appended again and
 * again (append stamps offsets in place, as for a produce request).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "storage/storage.h"
#include "tributary/buf.h"
#include "tributary/log.h"
#include "tributary/record.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, int err)
{
    fprintf(stderr, "tributary-bench-storage: %s: %s\n", what, trib_strerror(err));
    exit(1);
}

static void flush_fs(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        syncfs(fd);
        close(fd);
    }
}

static void rm_rf(const char *dir)
{
    char cmd[1200];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "could not remove %s\n", dir);
    }
}

/* A record batch of exactly `size` bytes (records of ~1 KiB). */
static uint8_t *make_batch(size_t size)
{
    static uint8_t value[4096];
    for (size_t i = 0; i < sizeof(value); i++) {
        value[i] = (uint8_t)('a' + i % 26);
    }
    long last = -1; /* the last record's value length, adjusted until the size is exact */
    for (int attempt = 0; attempt < 8; attempt++) {
        trib_buf_t b;
        trib_buf_init(&b);
        trib_batch_opts_t o;
        trib_batch_opts_init(&o);
        trib_batch_builder_t bb;
        if (trib_batch_builder_init(&bb, &b, &o) != 0) {
            die("batch", -ENOMEM);
        }
        char key[32];
        size_t i = 0;
        /* Whole 1000-byte records while there is room for one more and a last one. */
        while (trib_batch_builder_size(&bb) + 2 * 1100 < size) {
            int kl = snprintf(key, sizeof(key), "host-%zu", i++ % 100);
            trib_record_in_t r = {.key = trib_record_bytes(key, kl),
                                  .value = trib_record_bytes(value, 1000),
                                  .timestamp = 1700000000000LL};
            trib_batch_builder_add(&bb, &r);
        }
        if (last < 0) {
            last = (long)size - (long)trib_batch_builder_size(&bb) - 20;
        }
        if (last < 0 || last > (long)sizeof(value)) {
            die("batch size", -EINVAL);
        }
        int kl = snprintf(key, sizeof(key), "host-last");
        trib_record_in_t r = {.key = trib_record_bytes(key, kl),
                              .value = trib_record_bytes(value, (int32_t)last),
                              .timestamp = 1700000000000LL};
        trib_batch_builder_add(&bb, &r);
        int rc = trib_batch_builder_finish(&bb);
        trib_batch_builder_fini(&bb);
        if (rc) {
            die("batch", rc);
        }
        size_t len = trib_buf_len(&b);
        if (len == size) {
            uint8_t *out = malloc(len);
            trib_buf_copyout(&b, 0, out, len);
            trib_buf_fini(&b);
            return out;
        }
        last += (long)size - (long)len; /* its length varint may move by a byte: retry */
        trib_buf_fini(&b);
    }
    die("batch size", -EINVAL);
    return NULL;
}

typedef struct result {
    uint64_t bytes;
    double secs;
    bool capped;
} result_t;

static double mbps(const result_t *r)
{
    return r->secs > 0 ? (double)r->bytes / r->secs / 1e6 : 0;
}

/* ---- raw ---------------------------------------------------------------------------------- */

static result_t run_raw(const char *dir, const uint8_t *batch, size_t bsize, uint64_t total,
                        bool sync, double max_s)
{
    char path[1100];
    snprintf(path, sizeof(path), "%s/raw.bin", dir);
    flush_fs(dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        die(path, -errno);
    }
    result_t r = {0};
    double t0 = now_s();
    while (r.bytes < total) {
        if (write(fd, batch, bsize) != (ssize_t)bsize) {
            die("write", -errno);
        }
        if (sync && fdatasync(fd) != 0) {
            die("fdatasync", -errno);
        }
        r.bytes += bsize;
        if (now_s() - t0 > max_s) {
            r.capped = r.bytes < total;
            break;
        }
    }
    r.secs = now_s() - t0;
    close(fd);
    unlink(path);
    return r;
}

/* ---- the log engine -------------------------------------------------------------------------- */

typedef struct waiter {
    coll_durable_req_t req;
    struct bench *b;
} waiter_t;

typedef struct bench {
    coll_log_t *log;
    uint8_t *batch;
    size_t bsize;
    uint64_t total, appended, acked;
    int inflight, max_inflight;
    unsigned flags;
    double t0, max_s;
    bool stop;
    waiter_t *free_list[1024];
    int nfree;
} bench_t;

static void pump(bench_t *b);

static void on_durable(coll_durable_req_t *req, int status)
{
    waiter_t *w = req->data;
    bench_t *b = w->b;
    if (status) {
        die("durability", status);
    }
    b->inflight--;
    b->acked += b->bsize;
    b->free_list[b->nfree++] = w;
    pump(b);
}

static void pump(bench_t *b)
{
    while (!b->stop && b->inflight < b->max_inflight && b->appended < b->total) {
        coll_append_info_t info;
        int rc = coll_log_append(b->log, b->batch, b->bsize, 0, b->flags, &info);
        if (rc) {
            die("append", rc);
        }
        b->appended += b->bsize;
        waiter_t *w = b->free_list[--b->nfree];
        w->req.data = w;
        rc = coll_log_wait_durable(b->log, info.last_offset, &w->req, on_durable);
        if (rc) {
            die("wait", rc);
        }
        b->inflight++;
        if (now_s() - b->t0 > b->max_s) {
            b->stop = true;
        }
    }
}

static int closed;

static void on_closed(void *arg, int status)
{
    (void)arg;
    if (status) {
        die("close", status);
    }
    closed = 1;
}

static result_t run_storage(const char *dir, uint8_t *batch, size_t bsize, uint64_t total,
                            coll_fsync_policy_t policy, int inflight, unsigned flags, double max_s)
{
    char data[1100];
    snprintf(data, sizeof(data), "%s/data", dir);
    rm_rf(data);
    flush_fs(dir);
    uv_loop_t loop;
    uv_loop_init(&loop);
    coll_storage_config_t cfg;
    coll_storage_config_init(&cfg);
    cfg.data_dir = data;
    cfg.fsync = policy;
    coll_storage_t *st;
    trib_error_t err;
    int rc = coll_storage_open(&loop, &cfg, &st, &err);
    if (rc) {
        die(err.msg, rc);
    }
    coll_log_config_t lc;
    coll_log_config_init(&lc);
    lc.max_message_bytes = (uint32_t)bsize + 1024;
    coll_log_t *log;
    rc = coll_storage_create_log(st, "bench", 0, &lc, NULL, &log, &err);
    if (rc) {
        die(err.msg, rc);
    }
    /* The new directory entries are synced before timing starts. */
    if (policy != COLL_FSYNC_NEVER) {
        coll_log_flush(log);
        uv_run(&loop, UV_RUN_DEFAULT);
    }
    result_t r = {0};
    static bench_t b;
    memset(&b, 0, sizeof(b));
    b.log = log;
    b.batch = batch;
    b.bsize = bsize;
    b.total = total;
    b.flags = flags;
    b.max_s = max_s;
    b.max_inflight = inflight;
    waiter_t *ws = calloc((size_t)inflight, sizeof(*ws));
    for (int i = 0; i < inflight; i++) {
        ws[i].b = &b;
        b.free_list[b.nfree++] = &ws[i];
    }
    b.t0 = now_s();
    if (policy == COLL_FSYNC_NEVER) {
        while (b.appended < total) {
            coll_append_info_t info;
            rc = coll_log_append(log, batch, bsize, 0, flags, &info);
            if (rc) {
                die("append", rc);
            }
            b.appended += bsize;
            if (now_s() - b.t0 > max_s) {
                r.capped = b.appended < total;
                break;
            }
        }
        r.bytes = b.appended;
    } else {
        pump(&b);
        uv_run(&loop, UV_RUN_DEFAULT);
        r.bytes = b.acked;
        r.capped = b.stop && b.acked < total;
    }
    r.secs = now_s() - b.t0;
    closed = 0;
    coll_storage_close(st, on_closed, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    if (!closed || uv_loop_close(&loop) != 0) {
        die("close", -EBUSY);
    }
    free(ws);
    rm_rf(data);
    return r;
}

/* ---- report -----------------------------------------------------------------------------------
 */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(double), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static const char *fs_name(long type)
{
    switch ((unsigned long)type) {
    case 0xEF53:
        return "ext4";
    case 0x58465342:
        return "xfs";
    case 0x9123683E:
        return "btrfs";
    case 0x01021994:
        return "tmpfs";
    case 0x794c7630:
        return "overlayfs";
    case 0x2FC12FC1:
        return "zfs";
    default:
        return "unknown";
    }
}

/* The device of the mount holding path (from /proc/self/mountinfo). */
static void mount_source(const char *path, char *out, size_t n)
{
    snprintf(out, n, "?");
    char real[1024];
    if (!realpath(path, real)) {
        return;
    }
    FILE *f = fopen("/proc/self/mountinfo", "r");
    if (!f) {
        return;
    }
    char line[4096];
    size_t best = 0;
    while (fgets(line, sizeof(line), f)) {
        char mnt[1024], src[1024];
        /* id parent major:minor root mountpoint options ... - fstype source superopts */
        if (sscanf(line, "%*s %*s %*s %*s %1023s", mnt) != 1) {
            continue;
        }
        char *dash = strstr(line, " - ");
        if (!dash || sscanf(dash + 3, "%*s %1023s", src) != 1) {
            continue;
        }
        size_t l = strlen(mnt);
        if (strncmp(real, mnt, l) == 0 && (real[l] == '/' || real[l] == '\0' || l == 1) &&
            l >= best) {
            best = l;
            snprintf(out, n, "%s", src);
        }
    }
    fclose(f);
}

static uint64_t parse_size(const char *s)
{
    char *e;
    double v = strtod(s, &e);
    switch (*e) {
    case 'k':
    case 'K':
        v *= 1024;
        break;
    case 'm':
    case 'M':
        v *= 1024 * 1024;
        break;
    case 'g':
    case 'G':
        v *= 1024.0 * 1024 * 1024;
        break;
    default:
        break;
    }
    return (uint64_t)v;
}

enum { RAW_ACK, ACK, ACK_PRE, ACK_PIPE, RAW_NEVER, NEVER, NEVER_PRE, NCASES };

int main(int argc, char **argv)
{
    uint64_t total = 1ULL << 30;
    int runs = 3, inflight = 64;
    double max_s = 30;
    const char *tmp = getenv("TMPDIR");
    const char *base = tmp && *tmp ? tmp : "/var/tmp";
    int o;
    size_t sizes[8] = {1 << 20, 16 << 10};
    size_t nsizes = 2;
    while ((o = getopt(argc, argv, "s:r:d:t:j:b:h")) != -1) {
        switch (o) {
        case 'b': {
            /* A comma-separated list of batch sizes: -b 1M,16K */
            nsizes = 0;
            char *copy = strdup(optarg);
            for (char *tok = strtok(copy, ","); tok && nsizes < 8; tok = strtok(NULL, ",")) {
                sizes[nsizes++] = (size_t)parse_size(tok);
            }
            free(copy);
            break;
        }
        case 's':
            total = parse_size(optarg);
            break;
        case 'r':
            runs = atoi(optarg);
            break;
        case 'd':
            base = optarg;
            break;
        case 't':
            max_s = atof(optarg);
            break;
        case 'j':
            inflight = atoi(optarg);
            break;
        default:
            fprintf(stderr,
                    "usage: %s [-s SIZE (1G)] [-r RUNS (3)] [-d DIR] [-t SECONDS (30)] "
                    "[-j IN_FLIGHT (64)] [-b BATCH_SIZES (1M,16K)]\n",
                    argv[0]);
            return o == 'h' ? 0 : 2;
        }
    }
    bool sizes_ok = nsizes > 0;
    for (size_t i = 0; i < nsizes; i++) {
        sizes_ok &= sizes[i] >= 4096 && sizes[i] <= (64 << 20);
    }
    if (runs < 1 || runs > 99 || inflight < 1 || inflight > 1024 || total < (1 << 20) ||
        !sizes_ok) {
        fprintf(stderr, "tributary-bench-storage: bad arguments\n");
        return 2;
    }
    trib_log_set_level(TRIB_LOG_WARN);
    char dir[1024];
    snprintf(dir, sizeof(dir), "%s/trib-bench-XXXXXX", base);
    if (!mkdtemp(dir)) {
        die(base, -errno);
    }
    struct statfs sfs;
    statfs(dir, &sfs);
    char src[1024];
    mount_source(dir, src, sizeof(src));
    printf("tributary-bench-storage: %" PRIu64 " MiB per case (or %.0f s), %d runs, median shown\n"
           "  dir %s: %s on %s, %ld CPUs\n",
           total >> 20, max_s, runs, dir, fs_name((long)sfs.f_type), src,
           sysconf(_SC_NPROCESSORS_ONLN));

    static const char *const names[NCASES] = {
        [RAW_ACK] = "raw write+fdatasync",
        [ACK] = "ack, 1 in flight",
        [ACK_PRE] = "ack, 1, CRC pre-verified",
        [ACK_PIPE] = "ack, N in flight",
        [RAW_NEVER] = "raw write",
        [NEVER] = "never (CRC checked)",
        [NEVER_PRE] = "never (CRC pre-verified)",
    };
    for (size_t si = 0; si < nsizes; si++) {
        size_t bsize = sizes[si];
        uint8_t *batch = make_batch(bsize);
        double v[NCASES][100];
        bool capped[NCASES] = {false};
        double ratio[NCASES][100];
        for (int run = 0; run < runs; run++) {
            result_t r[NCASES];
            /* Every other run goes backwards, so neither side always runs first. */
            for (int k = 0; k < NCASES; k++) {
                int c = run % 2 ? NCASES - 1 - k : k;
                switch (c) {
                case RAW_ACK:
                    r[c] = run_raw(dir, batch, bsize, total, true, max_s);
                    break;
                case ACK:
                    r[c] = run_storage(dir, batch, bsize, total, COLL_FSYNC_ACK, 1, 0, max_s);
                    break;
                case ACK_PRE:
                    r[c] = run_storage(dir, batch, bsize, total, COLL_FSYNC_ACK, 1,
                                       COLL_APPEND_CRC_VERIFIED, max_s);
                    break;
                case ACK_PIPE:
                    r[c] =
                        run_storage(dir, batch, bsize, total, COLL_FSYNC_ACK, inflight, 0, max_s);
                    break;
                case RAW_NEVER:
                    r[c] = run_raw(dir, batch, bsize, total, false, max_s);
                    break;
                case NEVER:
                    r[c] = run_storage(dir, batch, bsize, total, COLL_FSYNC_NEVER, 1, 0, max_s);
                    break;
                case NEVER_PRE:
                    r[c] = run_storage(dir, batch, bsize, total, COLL_FSYNC_NEVER, 1,
                                       COLL_APPEND_CRC_VERIFIED, max_s);
                    break;
                }
            }
            for (int c = 0; c < NCASES; c++) {
                v[c][run] = mbps(&r[c]);
                capped[c] |= r[c].capped;
            }
            for (int c = 0; c < NCASES; c++) {
                double raw = c <= ACK_PIPE ? v[RAW_ACK][run] : v[RAW_NEVER][run];
                ratio[c][run] = raw > 0 ? v[c][run] / raw : 0;
            }
            fprintf(stderr, "  run %d, %zu KiB batches:", run + 1, bsize >> 10);
            for (int c = 0; c < NCASES; c++) {
                fprintf(stderr, " %.0f", v[c][run]);
            }
            fprintf(stderr, " MB/s\n");
        }
        double m[NCASES], mr[NCASES];
        for (int c = 0; c < NCASES; c++) {
            m[c] = median(v[c], runs);
            mr[c] = median(ratio[c], runs);
        }
        printf("\n  %zu KiB batches            MB/s   vs raw: medians  per-run ratio\n",
               bsize >> 10);
        for (int c = 0; c < NCASES; c++) {
            double raw = c <= ACK_PIPE ? m[RAW_ACK] : m[RAW_NEVER];
            char label[64];
            snprintf(label, sizeof(label), "%s", names[c]);
            if (c == ACK_PIPE) {
                snprintf(label, sizeof(label), "ack, %d in flight", inflight);
            }
            if (c == RAW_ACK || c == RAW_NEVER) {
                printf("  %-26s %8.0f%s\n", label, m[c], capped[c] ? "  (time-capped)" : "");
            } else {
                printf("  %-26s %8.0f  %13.0f%%  %13.0f%%%s\n", label, m[c],
                       raw > 0 ? 100 * m[c] / raw : 0, 100 * mr[c],
                       capped[c] ? "  (time-capped)" : "");
            }
        }
        free(batch);
    }
    rm_rf(dir);
    return 0;
}
