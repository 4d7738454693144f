/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Loading a partition directory at startup, and crash recovery.
 *
 * 1. Leftovers. "*.deleted" (a deletion the crash interrupted) and
 *    "*.cleaned" (a compaction that never reached its swap) are removed;
 *    "*.tmp" files too (an interrupted atomic write). An index without its
 *    .log is an orphan and goes.
 * 2. Swaps. "<base>.log.swap" is a compacted segment that was fsynced and
 *    renamed but whose swap did not finish: the segments it replaces (base
 *    offsets in [base, swap's next offset)) are deleted and the swap files
 *    renamed into place, as Kafka completes swaps.
 * 3. Segments. Every "<20 digits>.log" is a segment. After an unclean
 *    shutdown (no .kafka_cleanshutdown marker), the segment holding the
 *    recovery point and every later one are recovered: each batch is
 *    validated (length inside the file, magic 2, CRC32C, offsets increasing
 *    and inside the segment), the indexes are rebuilt, and the file is
 *    truncated at the first invalid batch, with a log line saying how many
 *    bytes were cut and why; segments after a corrupt one are deleted
 *    (their offsets can no longer follow on). Earlier segments, and all of
 *    them after a clean shutdown, only have their indexes checked; a
 *    missing or inconsistent index is rebuilt by scanning its segment,
 *    never a fatal error. Zero-length segments are valid (an empty active
 *    segment, or one emptied by compaction).
 * 4. Recovered bytes are fdatasync'd (with their indexes and the
 *    directory) before the log is used, so the recovery point can be set
 *    to the log end: this is startup, before the loop serves anything.
 * 5. Offsets. log start = max(checkpoint, first segment's base); a log
 *    start beyond the log end restarts the log empty there; high watermark
 *    clamped into [log start, log end]; the leader epoch cache is read and
 *    cut to the log.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "storage/storage_int.h"
#include "tributary/log.h"

typedef struct name_list {
    int64_t *v;
    size_t n, cap;
} name_list_t;

static int list_add(name_list_t *l, int64_t base)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        int64_t *v = realloc(l->v, cap * sizeof(*v));
        if (!v) {
            return -ENOMEM;
        }
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = base;
    return 0;
}

static bool list_has(const name_list_t *l, int64_t base)
{
    for (size_t i = 0; i < l->n; i++) {
        if (l->v[i] == base) {
            return true;
        }
    }
    return false;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* "<20 digits><suffix>" -> base and a pointer to the suffix; false otherwise. */
static bool parse_segment_name(const char *name, int64_t *base, const char **suffix)
{
    for (int i = 0; i < 20; i++) {
        if (name[i] < '0' || name[i] > '9') {
            return false;
        }
    }
    if (name[20] != '.') {
        return false;
    }
    char digits[21];
    memcpy(digits, name, 20);
    digits[20] = '\0';
    errno = 0;
    unsigned long long v = strtoull(digits, NULL, 10);
    if (errno || v > INT64_MAX) {
        return false;
    }
    *base = (int64_t)v;
    *suffix = name + 20;
    return true;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static void unlink_quiet(const char *dir, const char *name)
{
    char path[COLL_PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if (unlink(path) != 0 && errno != ENOENT) {
        TRIB_LOG(TRIB_LOG_WARN, COLL_FACILITY, "unlink %s: %s", path, strerror(errno));
    }
}

static void unlink_segment_files(coll_log_t *log, int64_t base, const char *extra)
{
    static const char *const sfx[] = {COLL_LOG_SUFFIX, COLL_INDEX_SUFFIX, COLL_TIMEINDEX_SUFFIX};
    for (size_t k = 0; k < 3; k++) {
        char path[COLL_PATH_MAX], full[COLL_PATH_MAX + 16];
        if (coll_segment_path(log, base, sfx[k], path, sizeof(path)) != 0) {
            continue;
        }
        snprintf(full, sizeof(full), "%s%s", path, extra);
        if (unlink(full) != 0 && errno != ENOENT) {
            TRIB_LOG(TRIB_LOG_WARN, COLL_FACILITY, "unlink %s: %s", full, strerror(errno));
        }
    }
}

/* Finishes an interrupted compaction swap (step 2). */
static int complete_swap(coll_log_t *log, int64_t base, name_list_t *logs)
{
    char path[COLL_PATH_MAX + 32], to[COLL_PATH_MAX + 32];
    coll_segment_path(log, base, COLL_LOG_SUFFIX COLL_SWAP_SUFFIX, path, sizeof(path));
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        /* Only index swaps: the .log swap never got its name. */
        char stem[COLL_PATH_MAX];
        coll_segment_path(log, base, "", stem, sizeof(stem));
        for (const char *const *s =
                 (const char *const[]){COLL_INDEX_SUFFIX COLL_SWAP_SUFFIX,
                                       COLL_TIMEINDEX_SUFFIX COLL_SWAP_SUFFIX, NULL};
             *s; s++) {
            snprintf(to, sizeof(to), "%s%s", stem, *s);
            unlink(to);
        }
        return 0;
    }
    struct stat stb;
    int64_t next = base;
    if (fstat(fd, &stb) == 0) {
        coll_scan_t sc;
        coll_scan_init(&sc, fd, 0, (uint64_t)stb.st_size);
        coll_batch_hdr_t h;
        while (coll_scan_next(&sc, &h) == 1) {
            next = h.last_offset + 1;
        }
    }
    close(fd);
    TRIB_LOG(TRIB_LOG_INFO, COLL_FACILITY,
             "%s: completing the swap of compacted segment %020" PRId64 " (offsets up to %" PRId64
             ")",
             log->name, base, next);
    for (size_t i = 0; i < logs->n;) {
        if (logs->v[i] >= base && (logs->v[i] < next || logs->v[i] == base)) {
            unlink_segment_files(log, logs->v[i], "");
            logs->v[i] = logs->v[--logs->n];
        } else {
            i++;
        }
    }
    static const char *const sfx[] = {COLL_LOG_SUFFIX, COLL_INDEX_SUFFIX, COLL_TIMEINDEX_SUFFIX};
    for (size_t k = 0; k < 3; k++) {
        char final[COLL_PATH_MAX];
        coll_segment_path(log, base, sfx[k], final, sizeof(final));
        snprintf(path, sizeof(path), "%s%s", final, COLL_SWAP_SUFFIX);
        snprintf(to, sizeof(to), "%s", final);
        if (rename(path, to) != 0 && errno != ENOENT) {
            return -errno;
        }
    }
    return list_add(logs, base);
}

/* Reads the index files of a segment that needs no recovery; false if they need a rebuild. */
static bool load_indexes(coll_segment_t *s, const char **why)
{
    char path[COLL_PATH_MAX];
    int64_t last_ts = -1;
    uint32_t last_rel = 0, last_pos = 0, trel = 0;
    coll_segment_path(s->log, s->base_offset, COLL_INDEX_SUFFIX, path, sizeof(path));
    if (coll_index_check(path, COLL_OFFSET_ENTRY_SIZE, s->size, why, NULL, &last_rel, &last_pos) !=
        0) {
        return false;
    }
    struct stat stb;
    if (stat(path, &stb) != 0) {
        *why = "missing";
        return false;
    }
    s->oi.entries = (uint32_t)(stb.st_size / COLL_OFFSET_ENTRY_SIZE);
    s->last_index_pos = s->oi.entries ? last_pos : 0;
    coll_segment_path(s->log, s->base_offset, COLL_TIMEINDEX_SUFFIX, path, sizeof(path));
    if (coll_index_check(path, COLL_TIME_ENTRY_SIZE, s->size, why, &last_ts, &trel, NULL) != 0) {
        return false;
    }
    if (stat(path, &stb) != 0) {
        *why = "missing";
        return false;
    }
    s->ti.entries = (uint32_t)(stb.st_size / COLL_TIME_ENTRY_SIZE);
    s->max_timestamp = last_ts;
    s->max_ts_offset = last_ts >= 0 ? s->base_offset + trel : -1;
    s->last_ti_ts = last_ts;
    return true;
}

/*
 * The tail of a segment that needs no recovery: its next offset, and its
 * first batch's timestamp (for segment.ms). Fails on anything but whole
 * batches, so the caller can fall back to a full recovery.
 */
static int load_tail(coll_segment_t *s)
{
    coll_scan_t sc;
    coll_batch_hdr_t h;
    int rc;
    s->next_offset = s->base_offset;
    s->roll_base_ms = -1;
    if (s->size == 0) {
        return 0;
    }
    coll_scan_init(&sc, s->fd, 0, s->size);
    if ((rc = coll_scan_next(&sc, &h)) != 1) {
        return rc < 0 ? rc : TRIB_ETRUNCATED;
    }
    s->roll_base_ms = h.max_timestamp;
    s->next_offset = h.last_offset + 1;
    coll_scan_init(&sc, s->fd, s->last_index_pos, s->size);
    while ((rc = coll_scan_next(&sc, &h)) == 1) {
        s->next_offset = h.last_offset + 1;
        if (h.max_timestamp > s->max_timestamp) {
            s->max_timestamp = h.max_timestamp;
            s->max_ts_offset = h.last_offset;
        }
    }
    return rc;
}

static int sync_segment(coll_segment_t *s)
{
    if (fdatasync(s->fd) != 0) {
        return -errno;
    }
    static const char *const sfx[] = {COLL_INDEX_SUFFIX, COLL_TIMEINDEX_SUFFIX};
    for (size_t k = 0; k < 2; k++) {
        char path[COLL_PATH_MAX];
        coll_segment_path(s->log, s->base_offset, sfx[k], path, sizeof(path));
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            return -errno;
        }
        int rc = fdatasync(fd) ? -errno : 0;
        close(fd);
        if (rc) {
            return rc;
        }
    }
    return 0;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int coll_log_load(coll_storage_t *st, const char *topic, int32_t partition, bool clean_shutdown,
                  int64_t recovery_point, int64_t log_start, int64_t hw, int64_t cleaner_point,
                  coll_log_t **out, trib_error_t *err)
{
    int64_t t0 = mono_ms();
    coll_log_config_t cfg = st->cfg.log_defaults;
    if (st->cfg.log_config) {
        coll_log_config_t c = cfg;
        if (st->cfg.log_config(st->cfg.log_config_arg, topic, partition, &c) == 0 &&
            coll_log_config_check(&c) == 0) {
            cfg = c;
        }
    }
    coll_log_t *log = coll_log_alloc(st, topic, partition, &cfg);
    if (!log) {
        return trib_error_set(err, -ENOMEM, "out of memory");
    }
    name_list_t logs = {0}, swaps = {0}, indexes = {0};
    int rc = 0;
    bool recovered_any = false;
    DIR *d = opendir(log->dir);
    if (!d) {
        rc = trib_error_set(err, -errno, "%s: %s", log->dir, strerror(errno));
        goto fail;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        const char *name = de->d_name;
        int64_t base;
        const char *sfx;
        if (name[0] == '.' && (!name[1] || (name[1] == '.' && !name[2]))) {
            continue;
        }
        if (ends_with(name, COLL_DELETED_SUFFIX) || ends_with(name, COLL_CLEANED_SUFFIX) ||
            ends_with(name, ".tmp")) {
            unlink_quiet(log->dir, name);
            continue;
        }
        if (!parse_segment_name(name, &base, &sfx)) {
            continue; /* leader-epoch-checkpoint, partition.metadata, others' files */
        }
        if (strcmp(sfx, COLL_LOG_SUFFIX) == 0) {
            rc = list_add(&logs, base);
        } else if (strcmp(sfx, COLL_LOG_SUFFIX COLL_SWAP_SUFFIX) == 0 ||
                   strcmp(sfx, COLL_INDEX_SUFFIX COLL_SWAP_SUFFIX) == 0 ||
                   strcmp(sfx, COLL_TIMEINDEX_SUFFIX COLL_SWAP_SUFFIX) == 0) {
            rc = list_has(&swaps, base) ? 0 : list_add(&swaps, base);
        } else if (strcmp(sfx, COLL_INDEX_SUFFIX) == 0 || strcmp(sfx, COLL_TIMEINDEX_SUFFIX) == 0) {
            rc = list_has(&indexes, base) ? 0 : list_add(&indexes, base);
        }
        if (rc) {
            closedir(d);
            rc = trib_error_set(err, rc, "out of memory");
            goto fail;
        }
    }
    closedir(d);

    if (swaps.n > 1) {
        qsort(swaps.v, swaps.n, sizeof(int64_t), cmp_i64);
    }
    for (size_t i = 0; i < swaps.n; i++) {
        if ((rc = complete_swap(log, swaps.v[i], &logs)) != 0) {
            rc = trib_error_set(err, rc, "%s: completing a compaction swap: %s", log->dir,
                                trib_strerror(rc));
            goto fail;
        }
    }
    for (size_t i = 0; i < indexes.n; i++) {
        if (!list_has(&logs, indexes.v[i])) {
            unlink_segment_files(log, indexes.v[i], "");
        }
    }
    if (logs.n > 1) {
        qsort(logs.v, logs.n, sizeof(int64_t), cmp_i64);
    }

    trib_error_t eerr;
    trib_error_clear(&eerr);
    char path[COLL_PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", log->dir, COLL_EPOCH_FILE);
    if (coll_epoch_read(&log->epochs, path, &eerr) != 0) {
        char msg[700];
        trib_error_format(&eerr, msg, sizeof(msg));
        TRIB_LOG(TRIB_LOG_WARN, COLL_FACILITY, "%s (ignored: rebuilt from the batches)", msg);
        log->epoch_dirty = true;
    }
    snprintf(path, sizeof(path), "%s/%s", log->dir, COLL_METADATA_FILE);
    trib_error_clear(&eerr);
    int mrc = coll_metadata_read(path, log->topic_id, &eerr);
    if (mrc == 0) {
        log->has_topic_id = true;
    } else if (mrc != TRIB_ENOT_FOUND) {
        char msg[700];
        trib_error_format(&eerr, msg, sizeof(msg));
        TRIB_LOG(TRIB_LOG_WARN, COLL_FACILITY, "%s (ignored)", msg);
    }

    /* Segments. */
    size_t recover_from = logs.n;
    if (!clean_shutdown) {
        recover_from = 0;
        while (recover_from + 1 < logs.n && logs.v[recover_from + 1] <= recovery_point) {
            recover_from++;
        }
    }
    for (size_t i = 0; i < logs.n; i++) {
        coll_segment_t *s = coll_segment_new(log, logs.v[i]);
        if (!s || coll_log_push_segment(log, s) != 0) {
            coll_segment_free(s);
            rc = trib_error_set(err, -ENOMEM, "out of memory");
            goto fail;
        }
        if ((rc = coll_segment_open(s)) != 0) {
            rc = trib_error_set(err, rc, "%s: opening segment %020" PRId64 ": %s", log->dir,
                                s->base_offset, trib_strerror(rc));
            goto fail;
        }
        /* Nothing may be mapped before the indexes are checked or rebuilt. */
        coll_index_unmap(&s->oi);
        coll_index_unmap(&s->ti);
        struct stat stb;
        if (fstat(s->fd, &stb) != 0) {
            rc = trib_error_set(err, -errno, "%s: %s", log->dir, strerror(errno));
            goto fail;
        }
        s->size = (uint64_t)stb.st_size;
        s->created_ms = (int64_t)stb.st_mtim.tv_sec * 1000 + stb.st_mtim.tv_nsec / 1000000;
        bool is_last = i + 1 == logs.n;
        bool recover = i >= recover_from;
        const char *why = NULL;
        if (!recover) {
            if (s->size > INT32_MAX) {
                why = "a segment over 2 GiB";
            } else if (!load_indexes(s, &why)) {
                TRIB_LOG(TRIB_LOG_WARN, COLL_FACILITY,
                         "%s: index of segment %020" PRId64 " is %s: rebuilding it", log->name,
                         s->base_offset, why);
                recover = true;
            } else if (is_last && load_tail(s) != 0) {
                TRIB_LOG(TRIB_LOG_WARN, COLL_FACILITY,
                         "%s: segment %020" PRId64 " does not end on a whole batch: recovering it",
                         log->name, s->base_offset);
                recover = true;
            } else {
                s->clean = true;
                s->synced_size = s->size;
                if (!is_last) {
                    s->next_offset = logs.v[i + 1];
                }
            }
            if (why && !recover) {
                recover = true;
            }
        }
        if (recover) {
            coll_recover_stats_t rs;
            rc = coll_segment_recover(s, &log->epochs, is_last, &rs);
            if (rc) {
                rc = trib_error_set(err, rc, "%s: recovering segment %020" PRId64 ": %s", log->dir,
                                    s->base_offset, trib_strerror(rc));
                goto fail;
            }
            recovered_any = true;
            if (rs.bytes_truncated > 0) {
                TRIB_LOG(TRIB_LOG_WARN, COLL_FACILITY,
                         "%s: segment %020" PRId64 ": cut %" PRIu64 " bytes at position %" PRIu64
                         " after %" PRIu32 " valid batches: %s",
                         log->name, s->base_offset, rs.bytes_truncated, rs.bytes_scanned,
                         rs.batches, rs.why ? rs.why : "invalid data");
                if (i >= recover_from && !is_last) {
                    /* Later segments cannot follow a cut: they go. */
                    for (size_t k = i + 1; k < logs.n; k++) {
                        TRIB_LOG(TRIB_LOG_WARN, COLL_FACILITY,
                                 "%s: deleting segment %020" PRId64 " after the cut", log->name,
                                 logs.v[k]);
                        unlink_segment_files(log, logs.v[k], "");
                    }
                    logs.n = i + 1;
                    is_last = true;
                }
            }
            if (!is_last) {
                /* Closed: the final time entry was written by the rebuild. */
                if (i + 1 < logs.n && s->next_offset < logs.v[i + 1]) {
                    s->next_offset = logs.v[i + 1];
                }
            }
            rc = sync_segment(s);
            if (rc) {
                rc = trib_error_set(err, rc, "%s: syncing recovered segment %020" PRId64 ": %s",
                                    log->dir, s->base_offset, trib_strerror(rc));
                goto fail;
            }
            s->synced_size = s->size;
            s->clean = !is_last;
        }
        if (!is_last) {
            coll_segment_close_files(s);
        }
    }
    if (recovered_any) {
        rc = trib_fsync_dir(log->dir);
        if (rc) {
            rc = trib_error_set(err, rc, "%s: fsync: %s", log->dir, trib_strerror(rc));
            goto fail;
        }
    }

    if (log->nsegs == 0) {
        coll_segment_t *s;
        int64_t base = log_start > 0 ? log_start : 0;
        if ((rc = coll_segment_create(log, base, &s)) != 0) {
            rc = trib_error_set(err, rc, "%s: creating a segment: %s", log->dir, trib_strerror(rc));
            goto fail;
        }
        if (coll_log_push_segment(log, s) != 0) {
            coll_segment_free(s);
            rc = trib_error_set(err, -ENOMEM, "out of memory");
            goto fail;
        }
    } else {
        coll_segment_t *last = coll_log_active(log);
        if ((rc = coll_segment_activate(last)) != 0) {
            rc = trib_error_set(err, rc, "%s: opening the active segment: %s", log->dir,
                                trib_strerror(rc));
            goto fail;
        }
    }
    log->durable = coll_log_end_offset(log);

    /* Offsets. */
    int64_t leo = coll_log_end_offset(log);
    log->log_start = log->segs[0]->base_offset;
    if (log_start > log->log_start) {
        log->log_start = log_start;
    }
    if (log->log_start > leo) {
        TRIB_LOG(TRIB_LOG_WARN, COLL_FACILITY,
                 "%s: log start offset %" PRId64 " is past the log end %" PRId64
                 ": restarting the log there",
                 log->name, log->log_start, leo);
        int64_t start = log->log_start;
        if ((rc = coll_log_truncate_fully(log, start)) != 0) {
            rc = trib_error_set(err, rc, "%s: %s", log->dir, trib_strerror(rc));
            goto fail;
        }
        leo = start;
    }
    log->hw = hw < log->log_start ? log->log_start : hw > leo ? leo : hw;
    log->cleaner_point = cleaner_point < log->log_start ? log->log_start
                         : cleaner_point > leo          ? leo
                                                        : cleaner_point;
    if (coll_epoch_truncate_end(&log->epochs, leo) > 0) {
        log->epoch_dirty = true;
    }
    if (coll_epoch_truncate_start(&log->epochs, log->log_start) > 0) {
        log->epoch_dirty = true;
    }
    if (recovered_any) {
        log->epoch_dirty = true;
        TRIB_LOG(TRIB_LOG_INFO, COLL_FACILITY,
                 "%s: recovered in %" PRId64 " ms: %zu segments, offsets %" PRId64 "..%" PRId64,
                 log->name, mono_ms() - t0, log->nsegs, log->log_start, leo);
    }
    free(logs.v);
    free(swaps.v);
    free(indexes.v);
    *out = log;
    return 0;
fail:
    free(logs.v);
    free(swaps.v);
    free(indexes.v);
    coll_log_free(log);
    return rc;
}
