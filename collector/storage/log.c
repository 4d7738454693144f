/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A partition log: an ordered array of segments, the last one active.
 *
 *   segs[0]            segs[1]            ...  segs[n-1] (active)
 *   [base 0 .. 5000)   [5000 .. 9100)          [9100 .. log end)
 *        ^ log start offset may lie inside segs[0]
 *
 * Offsets. log start <= high watermark <= log end; `durable` <= log end
 * is where fsynced data ends; the recovery point is `durable`, held back
 * to the base of any closed segment whose bytes or indexes are not yet on
 * disk (a restart rescans from the segment holding it).
 *
 * Appends (loop thread) validate every batch first, roll the active
 * segment if the append would overflow it (segment.bytes, the index
 * preallocation, 32-bit relative offsets) or its records span more than
 * segment.ms, stamp base offsets and leader epoch in place, and write the
 * buffer with one pwrite at the segment's end. A failed write is undone
 * with ftruncate; if even that fails the log goes offline (-EROFS), as
 * Kafka marks a log directory offline.
 *
 * A full disk is not a failure of the log: the append is refused whole
 * (index blocks are reserved before the batch is written, a partial write
 * is cut off), the producer gets KAFKA_STORAGE_ERROR (retriable), and the
 * log notes write_error so health and metrics can say so. The next append
 * tries again; one that succeeds, or the storage's probe finding space in
 * the data directory, clears the note. Nothing is held back waiting for
 * space: a producer retries, as it does against Kafka.
 *
 * Reads look a segment up by binary search over base offsets, then the
 * batch through the sparse index and a header scan, and answer with a
 * file range of whole batches from that one segment, as Kafka's fetch
 * does (a consumer asks again for the next segment).
 *
 * Retention removes whole segments from the front, never the active one
 * and never one holding offsets at or above the high watermark: those
 * past the log start offset (DeleteRecords), then by time (a segment's
 * largest timestamp older than retention.ms; an expired active segment is
 * rolled first) and by size (oldest first while the log stays above
 * retention.bytes). Removal renames the files to *.deleted on the loop (a
 * metadata update) and hands the unlink to the thread pool once no reader
 * holds the segment.
 *
 * Truncation (a replica diverging from its leader) removes later segments
 * the same way, makes the segment holding the offset active again if it
 * was not, and cuts it at the first batch holding an offset >= target;
 * everything in flight is told through `gen` and the durability clamp.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "storage/storage_int.h"
#include "tributary/log.h"
#include "tributary/record.h"

#define MAX_RECORDS_DECOMPRESSED (256u << 20)

void coll_log_config_init(coll_log_config_t *c)
{
    memset(c, 0, sizeof(*c));
    c->segment_bytes = 1u << 30;
    c->segment_ms = 7LL * 24 * 3600 * 1000;
    c->segment_index_bytes = 10u << 20;
    c->retention_bytes = -1;
    c->retention_ms = 7LL * 24 * 3600 * 1000;
    c->cleanup_policy = COLL_CLEANUP_DELETE;
    c->delete_retention_ms = 24LL * 3600 * 1000;
    c->min_compaction_lag_ms = 0;
    c->min_cleanable_dirty_ratio = 0.5;
    c->max_message_bytes = 1048588;
    c->index_interval_bytes = 4096;
}

int coll_log_config_check(const coll_log_config_t *c)
{
    if (c->segment_bytes < 64 || c->segment_bytes > INT32_MAX ||
        c->segment_index_bytes < 4 * COLL_TIME_ENTRY_SIZE || c->index_interval_bytes == 0 ||
        c->max_message_bytes < TRIB_BATCH_HEADER_SIZE || c->segment_ms <= 0 ||
        (c->cleanup_policy & ~(unsigned)(COLL_CLEANUP_DELETE | COLL_CLEANUP_COMPACT)) != 0 ||
        c->min_cleanable_dirty_ratio < 0 || c->min_cleanable_dirty_ratio > 1) {
        return -EINVAL;
    }
    return 0;
}

coll_log_t *coll_log_alloc(coll_storage_t *st, const char *topic, int32_t partition,
                           const coll_log_config_t *cfg)
{
    coll_log_t *log = calloc(1, sizeof(*log));
    if (!log) {
        return NULL;
    }
    log->st = st;
    log->partition = partition;
    log->cfg = *cfg;
    log->topic = strdup(topic);
    size_t nlen = strlen(topic) + 16;
    log->name = malloc(nlen);
    size_t dlen = strlen(st->data_dir) + nlen + 2;
    log->dir = malloc(dlen);
    if (!log->topic || !log->name || !log->dir) {
        coll_log_free(log);
        return NULL;
    }
    snprintf(log->name, nlen, "%s-%" PRId32, topic, partition);
    snprintf(log->dir, dlen, "%s/%s", st->data_dir, log->name);
    coll_epoch_init(&log->epochs);
    log->tombstone_due_ms = INT64_MAX;
    log->flush_clamp = INT64_MAX;
    return log;
}

void coll_log_free(coll_log_t *log)
{
    if (!log) {
        return;
    }
    for (size_t i = 0; i < log->nsegs; i++) {
        coll_segment_free(log->segs[i]);
    }
    free(log->segs);
    coll_epoch_fini(&log->epochs);
    free(log->topic);
    free(log->name);
    free(log->dir);
    free(log);
}

int coll_log_push_segment(coll_log_t *log, coll_segment_t *s)
{
    if (log->nsegs == log->segs_cap) {
        size_t cap = log->segs_cap ? log->segs_cap * 2 : 8;
        coll_segment_t **v = realloc(log->segs, cap * sizeof(*v));
        if (!v) {
            return -ENOMEM;
        }
        log->segs = v;
        log->segs_cap = cap;
    }
    log->segs[log->nsegs++] = s;
    return 0;
}

size_t coll_log_segment_index(const coll_log_t *log, int64_t offset)
{
    size_t lo = 0, hi = log->nsegs;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (log->segs[mid]->base_offset <= offset) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo == 0 ? 0 : lo - 1;
}

/* ---- getters ------------------------------------------------------------------------ */

int64_t coll_log_start_offset(const coll_log_t *log)
{
    return log->log_start;
}

int64_t coll_log_end_offset(const coll_log_t *log)
{
    return coll_log_active(log)->next_offset;
}

int64_t coll_log_high_watermark(const coll_log_t *log)
{
    return log->hw;
}

int64_t coll_log_durable_offset(const coll_log_t *log)
{
    return log->durable;
}

int64_t coll_log_recovery_point(const coll_log_t *log)
{
    return coll_log_compute_recovery_point(log);
}

int64_t coll_log_cleaner_offset(const coll_log_t *log)
{
    return log->cleaner_point;
}

uint64_t coll_log_size(const coll_log_t *log)
{
    uint64_t n = 0;
    for (size_t i = 0; i < log->nsegs; i++) {
        n += log->segs[i]->size;
    }
    return n;
}

size_t coll_log_segment_count(const coll_log_t *log)
{
    return log->nsegs;
}

const char *coll_log_topic(const coll_log_t *log)
{
    return log->topic;
}

int32_t coll_log_partition(const coll_log_t *log)
{
    return log->partition;
}

const char *coll_log_dir(const coll_log_t *log)
{
    return log->dir;
}

const coll_log_config_t *coll_log_config(const coll_log_t *log)
{
    return &log->cfg;
}

int coll_log_set_config(coll_log_t *log, const coll_log_config_t *cfg)
{
    int rc = coll_log_config_check(cfg);
    if (rc) {
        return rc;
    }
    log->cfg = *cfg;
    return 0;
}

int coll_log_topic_id(const coll_log_t *log, uint8_t out[16])
{
    if (!log->has_topic_id) {
        return TRIB_ENOT_FOUND;
    }
    memcpy(out, log->topic_id, 16);
    return 0;
}

void coll_log_set_high_watermark(coll_log_t *log, int64_t hw)
{
    int64_t leo = coll_log_end_offset(log);
    if (hw > leo) {
        hw = leo;
    }
    if (hw < log->log_start) {
        hw = log->log_start;
    }
    log->hw = hw;
}

int64_t coll_log_compute_recovery_point(const coll_log_t *log)
{
    int64_t rp = log->durable;
    for (size_t i = 0; i < log->nsegs; i++) {
        const coll_segment_t *s = log->segs[i];
        if (!s->active && !s->clean) {
            if (s->base_offset < rp) {
                rp = s->base_offset;
            }
            break;
        }
    }
    return rp;
}

int32_t coll_log_latest_epoch(const coll_log_t *log)
{
    return coll_epoch_latest(&log->epochs);
}

int coll_log_assign_epoch(coll_log_t *log, int32_t epoch, int64_t start_offset)
{
    int rc = coll_epoch_assign(&log->epochs, epoch, start_offset);
    if (rc > 0) {
        coll_log_mark_epoch_dirty(log);
    }
    return rc < 0 ? rc : 0;
}

void coll_log_end_offset_for_epoch(const coll_log_t *log, int32_t epoch, int32_t *found_epoch,
                                   int64_t *end_offset)
{
    coll_epoch_end_offset(&log->epochs, epoch, coll_log_end_offset(log), found_epoch, end_offset);
}

/* ---- leader epoch file -------------------------------------------------------------- */

static void epoch_written(void *arg, int status)
{
    coll_log_t *log = arg;
    log->epoch_writing = false;
    if (log->zombie) {
        coll_log_maybe_reap(log);
        return;
    }
    if (status) {
        TRIB_LOG_RL(&log->st->file_rl, TRIB_LOG_ERROR, COLL_FACILITY, "%s: writing %s: %s",
                    log->name, COLL_EPOCH_FILE, trib_strerror(status));
        log->epoch_dirty = true;
        return;
    }
    if (log->epoch_dirty && !log->st->closing) {
        coll_log_mark_epoch_dirty(log);
    }
}

void coll_log_mark_epoch_dirty(coll_log_t *log)
{
    if (log->zombie) {
        return;
    }
    log->epoch_dirty = true;
    if (log->epoch_writing || log->st->closing) {
        return;
    }
    char *content, *path;
    size_t len;
    if (coll_epoch_format(&log->epochs, &content, &len) != 0) {
        return;
    }
    size_t plen = strlen(log->dir) + sizeof(COLL_EPOCH_FILE) + 2;
    path = malloc(plen);
    if (!path) {
        free(content);
        return;
    }
    snprintf(path, plen, "%s/%s", log->dir, COLL_EPOCH_FILE);
    log->epoch_dirty = false;
    log->epoch_writing = true;
    if (coll_storage_write_file(log->st, path, content, len, epoch_written, log) != 0) {
        log->epoch_writing = false;
        log->epoch_dirty = true;
    }
}

/* ---- segments ------------------------------------------------------------------------ */

static void rename_deleted(coll_log_t *log, int64_t base)
{
    static const char *const sfx[] = {COLL_LOG_SUFFIX, COLL_INDEX_SUFFIX, COLL_TIMEINDEX_SUFFIX};
    for (size_t k = 0; k < 3; k++) {
        char from[COLL_PATH_MAX], to[COLL_PATH_MAX + 16];
        if (coll_segment_path(log, base, sfx[k], from, sizeof(from)) != 0) {
            continue;
        }
        snprintf(to, sizeof(to), "%s%s", from, COLL_DELETED_SUFFIX);
        if (rename(from, to) != 0 && errno != ENOENT) {
            TRIB_LOG(TRIB_LOG_WARN, COLL_FACILITY, "rename %s: %s", from, strerror(errno));
        }
    }
}

void coll_log_remove_segments(coll_log_t *log, size_t i, size_t n, const char *reason)
{
    if (n == 0) {
        return;
    }
    for (size_t k = i; k < i + n; k++) {
        coll_segment_t *s = log->segs[k];
        TRIB_LOG(TRIB_LOG_INFO, COLL_FACILITY,
                 "%s: deleting segment %020" PRId64 " (%" PRIu64 " bytes): %s", log->name,
                 s->base_offset, s->size, reason);
        if (s->active) {
            coll_index_unmap(&s->oi);
            coll_index_unmap(&s->ti);
            s->active = false;
        }
        if (s->in_lru) {
            coll_storage_lru_remove(log->st, s);
        }
        s->deleted = true;
        rename_deleted(log, s->base_offset);
        if (s->refs == 0) {
            coll_storage_delete_segment(log->st, s);
        }
    }
    memmove(&log->segs[i], &log->segs[i + n], (log->nsegs - i - n) * sizeof(log->segs[0]));
    log->nsegs -= n;
    log->dir_dirty = true;
}

int coll_log_roll(coll_log_t *log, int64_t new_base)
{
    coll_segment_t *old = coll_log_active(log);
    if (old->size == 0 && old->base_offset == new_base) {
        return 0;
    }
    int rc = coll_segment_deactivate(old);
    if (rc) {
        /* The indexes could not be trimmed: recovery will find and rebuild them. */
        TRIB_LOG(TRIB_LOG_WARN, COLL_FACILITY, "%s: trimming the indexes of %020" PRId64 ": %s",
                 log->name, old->base_offset, trib_strerror(rc));
    }
    coll_segment_t *s;
    rc = coll_segment_create(log, new_base, &s);
    if (rc == 0) {
        rc = coll_log_push_segment(log, s);
        if (rc) {
            coll_segment_free(s);
        }
    }
    if (rc) {
        TRIB_LOG_RL(&log->st->append_rl, TRIB_LOG_ERROR, COLL_FACILITY,
                    "%s: rolling to %" PRId64 ": %s", log->name, new_base, trib_strerror(rc));
        /* Stay on the old segment. */
        int rc2 = coll_segment_activate(old);
        if (rc2) {
            log->failed = -EROFS;
        }
        return rc;
    }
    coll_segment_open(old); /* joins the LRU as an inactive segment */
    log->st->stats.segments_rolled++;
    TRIB_LOG(TRIB_LOG_DEBUG, COLL_FACILITY, "%s: rolled to segment %020" PRId64, log->name,
             new_base);
    /* A closed segment is synced in the background whatever the policy. */
    coll_flush_start(log, true);
    return 0;
}

/* ---- append -------------------------------------------------------------------------- */

int coll_log_write_error(const coll_log_t *log)
{
    return log->failed ? log->failed : log->write_error;
}

int coll_log_append(coll_log_t *log, void *data, size_t len, int32_t leader_epoch, unsigned flags,
                    coll_append_info_t *info)
{
    if (log->failed) {
        log->st->stats.append_errors[COLL_WERR_IO]++;
        return -EROFS;
    }
    if (log->st->closing) {
        return TRIB_ESTATE;
    }
    if (!data || len == 0) {
        return -EINVAL;
    }
    bool follower = (flags & COLL_APPEND_FOLLOWER) != 0;
    coll_batch_hdr_t stack_hdrs[32];
    coll_batch_hdr_t *hdrs = stack_hdrs;
    size_t n = 0, cap = sizeof(stack_hdrs) / sizeof(stack_hdrs[0]);
    int64_t leo = coll_log_end_offset(log);
    int64_t next = leo;
    int64_t max_ts = -1;
    int rc = 0;
    bool lat = (flags & COLL_APPEND_LOG_APPEND_TIME) != 0 && !follower;
    int64_t now = coll_storage_now(log->st);

    trib_batch_iter_t it;
    trib_batch_iter_init(&it, data, len,
                         (flags & COLL_APPEND_CRC_VERIFIED) ? TRIB_BATCH_SKIP_CRC : 0);
    trib_batch_t b;
    while ((rc = trib_batch_iter_next(&it, &b)) == 1) {
        if (b.size > log->cfg.max_message_bytes) {
            rc = TRIB_ETOO_LARGE;
            goto out;
        }
        if (b.last_offset_delta < 0) {
            rc = TRIB_EMALFORMED;
            goto out;
        }
        if (n == cap) {
            coll_batch_hdr_t *nh = malloc(cap * 2 * sizeof(*nh));
            if (!nh) {
                rc = -ENOMEM;
                goto out;
            }
            memcpy(nh, hdrs, n * sizeof(*nh));
            if (hdrs != stack_hdrs) {
                free(hdrs);
            }
            hdrs = nh;
            cap *= 2;
        }
        coll_batch_hdr_t *h = &hdrs[n++];
        h->pos = (uint64_t)(b.data - (const uint8_t *)data);
        h->size = (uint32_t)b.size;
        h->attributes = b.attributes;
        h->record_count = b.record_count;
        h->base_timestamp = b.base_timestamp;
        h->max_timestamp = lat ? now : b.max_timestamp;
        if (follower) {
            if (b.base_offset < next) {
                rc = TRIB_EMALFORMED; /* offsets must increase from the log end */
                goto out;
            }
            h->base_offset = b.base_offset;
            h->leader_epoch = b.partition_leader_epoch;
        } else {
            if (b.record_count < 1 || b.last_offset_delta != b.record_count - 1) {
                rc = TRIB_EMALFORMED;
                goto out;
            }
            h->base_offset = next;
            h->leader_epoch = leader_epoch;
        }
        h->last_offset = h->base_offset + b.last_offset_delta;
        if (h->last_offset < h->base_offset) {
            rc = TRIB_EMALFORMED; /* overflow */
            goto out;
        }
        next = h->last_offset + 1;
        if (h->max_timestamp > max_ts) {
            max_ts = h->max_timestamp;
        }
    }
    if (rc < 0) {
        goto out;
    }
    if (trib_batch_iter_partial(&it) || n == 0) {
        rc = n == 0 && !trib_batch_iter_partial(&it) ? -EINVAL : TRIB_ETRUNCATED;
        goto out;
    }
    if (len > INT32_MAX) {
        rc = TRIB_ETOO_LARGE;
        goto out;
    }

    /* Roll first if this append does not belong in the active segment. */
    coll_segment_t *seg = coll_log_active(log);
    int64_t first = hdrs[0].base_offset, last = hdrs[n - 1].last_offset;
    bool roll = false;
    if (seg->size > 0) {
        int64_t waited =
            seg->roll_base_ms >= 0 ? max_ts - seg->roll_base_ms : now - seg->created_ms;
        roll = seg->size + len > log->cfg.segment_bytes || waited > log->cfg.segment_ms ||
               coll_index_full(&seg->oi, (uint32_t)n) || coll_index_full(&seg->ti, (uint32_t)n + 1);
    }
    if (last - seg->base_offset > INT32_MAX || first < seg->base_offset) {
        roll = true;
    }
    if (roll) {
        rc = coll_log_roll(log, first);
        if (rc) {
            coll_storage_append_failed(log->st, log, len, rc);
            goto out;
        }
        seg = coll_log_active(log);
    }

    if (!follower) {
        uint8_t *p = data;
        for (size_t i = 0; i < n; i++) {
            trib_batch_set_base_offset(p + hdrs[i].pos, hdrs[i].size, hdrs[i].base_offset);
            trib_batch_set_partition_leader_epoch(p + hdrs[i].pos, hdrs[i].size, leader_epoch);
            if (lat) {
                trib_batch_set_max_timestamp(p + hdrs[i].pos, hdrs[i].size,
                                             TRIB_TIMESTAMP_LOG_APPEND_TIME, now);
            }
        }
    }
    rc = coll_segment_append(seg, data, len, hdrs, n);
    if (rc) {
        if (rc == -EROFS || rc == -EIO) {
            log->failed = -EROFS;
        }
        coll_storage_append_failed(log->st, log, len, rc);
        goto out;
    }
    if (log->write_error) {
        coll_storage_append_resumed(log->st, log);
    }
    /* Leader epochs, as Kafka learns them from the batches. */
    for (size_t i = 0; i < n; i++) {
        int32_t e = hdrs[i].leader_epoch;
        if (e >= 0 && e > coll_epoch_latest(&log->epochs) &&
            coll_epoch_assign(&log->epochs, e, hdrs[i].base_offset) > 0) {
            coll_log_mark_epoch_dirty(log);
        }
    }
    coll_flush_mark_dirty(log);
    if (info) {
        info->base_offset = first;
        info->last_offset = last;
        info->log_end_offset = coll_log_end_offset(log);
        info->log_start_offset = log->log_start;
        info->max_timestamp = max_ts;
        info->batch_count = (int32_t)n;
        info->log_append_time = lat ? now : -1;
    }
out:
    if (hdrs != stack_hdrs) {
        free(hdrs);
    }
    return rc;
}

/* ---- read ---------------------------------------------------------------------------- */

int coll_log_read(coll_log_t *log, int64_t offset, size_t max_bytes, int64_t max_offset,
                  unsigned flags, coll_read_t *out)
{
    memset(out, 0, sizeof(*out));
    out->fd = -1;
    int64_t leo = coll_log_end_offset(log);
    out->log_start_offset = log->log_start;
    out->high_watermark = log->hw;
    out->log_end_offset = leo;
    out->first_offset = offset;
    out->next_offset = offset;
    if (offset < log->log_start || offset > leo) {
        return -ERANGE;
    }
    if (offset == leo || offset >= max_offset) {
        return 0;
    }
    for (size_t i = coll_log_segment_index(log, offset); i < log->nsegs; i++) {
        coll_segment_t *s = log->segs[i];
        coll_batch_hdr_t h;
        int rc = coll_segment_find(s, offset, &h);
        if (rc < 0) {
            return rc;
        }
        if (rc == 0) {
            continue;
        }
        uint64_t end;
        int64_t next;
        rc = coll_segment_read_end(s, &h, max_bytes, max_offset, (flags & COLL_READ_STRICT) != 0,
                                   &end, &next);
        if (rc) {
            return rc;
        }
        if (end > h.pos) {
            rc = coll_segment_acquire(s);
            if (rc) {
                return rc;
            }
            out->fd = s->fd;
            out->pos = h.pos;
            out->len = (size_t)(end - h.pos);
            out->first_offset = h.base_offset;
            out->next_offset = next;
            out->segment_end = end >= s->size;
            out->seg_ = s;
        }
        return 0;
    }
    return 0;
}

ssize_t coll_read_copy(const coll_read_t *r, size_t at, void *dst, size_t n)
{
    if (!r->seg_ || at > r->len) {
        return -EINVAL;
    }
    if (n > r->len - at) {
        n = r->len - at;
    }
    return trib_pread_all(r->fd, dst, n, r->pos + at);
}

void coll_read_release(coll_read_t *r)
{
    if (r->seg_) {
        coll_segment_release(r->seg_);
        r->seg_ = NULL;
    }
    r->fd = -1;
    r->len = 0;
}

/* ---- time lookup --------------------------------------------------------------------- */

/* First record of the batch at h with timestamp >= ts and offset >= min_offset. */
static int search_batch(coll_segment_t *s, const coll_batch_hdr_t *h, int64_t ts,
                        int64_t min_offset, int64_t *offset, int64_t *timestamp)
{
    uint8_t *buf;
    int rc = coll_segment_read_batch(s->fd, h, &buf);
    if (rc) {
        return rc;
    }
    trib_batch_t b;
    rc = trib_batch_parse(&b, buf, h->size, TRIB_BATCH_SKIP_CRC);
    if (rc == 0) {
        trib_record_iter_t it;
        rc = trib_record_iter_init(&it, &b, NULL, MAX_RECORDS_DECOMPRESSED);
        trib_record_t r;
        int found = 0;
        while (rc == 0 && (rc = trib_record_iter_next(&it, &r)) == 1) {
            rc = 0;
            if (r.offset >= min_offset && r.timestamp >= ts) {
                *offset = r.offset;
                *timestamp = r.timestamp;
                found = 1;
                break;
            }
        }
        trib_record_iter_fini(&it);
        rc = rc < 0 ? rc : found;
    }
    free(buf);
    return rc;
}

int coll_log_offset_for_timestamp(coll_log_t *log, int64_t ts, int64_t *offset, int64_t *timestamp)
{
    for (size_t i = coll_log_segment_index(log, log->log_start); i < log->nsegs; i++) {
        coll_segment_t *s = log->segs[i];
        if (s->size == 0 || s->max_timestamp < ts) {
            continue;
        }
        int rc = coll_segment_open(s);
        if (rc) {
            return rc;
        }
        uint64_t pos = 0;
        int64_t ets;
        uint32_t trel, erel, epos;
        if (coll_tindex_lookup(&s->ti, ts, &ets, &trel) &&
            coll_oindex_lookup(&s->oi, trel, &erel, &epos) && epos < s->size) {
            pos = epos;
        }
        coll_scan_t sc;
        coll_scan_init(&sc, s->fd, pos, s->size);
        coll_batch_hdr_t h;
        while ((rc = coll_scan_next(&sc, &h)) == 1) {
            if (h.max_timestamp < ts || h.last_offset < log->log_start) {
                continue;
            }
            rc = search_batch(s, &h, ts, log->log_start, offset, timestamp);
            if (rc != 0) {
                return rc < 0 ? rc : 0;
            }
        }
        if (rc < 0) {
            return rc;
        }
    }
    return TRIB_ENOT_FOUND;
}

/* ---- largest timestamp ------------------------------------------------------------- */

int coll_log_max_timestamp(coll_log_t *log, int64_t *offset, int64_t *timestamp)
{
    /* The segment with the largest maxTimestamp, the earliest on ties. */
    coll_segment_t *best = NULL;
    for (size_t i = coll_log_segment_index(log, log->log_start); i < log->nsegs; i++) {
        coll_segment_t *s = log->segs[i];
        if (s->size > 0 && s->max_timestamp >= 0 && s->max_ts_offset >= log->log_start &&
            (!best || s->max_timestamp > best->max_timestamp)) {
            best = s;
        }
    }
    if (!best) {
        return TRIB_ENOT_FOUND;
    }
    int rc = coll_segment_open(best);
    if (rc) {
        return rc;
    }
    /* Its batch (max_ts_offset is that batch's last offset), then the first record with it. */
    coll_batch_hdr_t h;
    rc = coll_segment_find(best, best->max_ts_offset, &h);
    if (rc == 1 && h.max_timestamp == best->max_timestamp) {
        rc = search_batch(best, &h, best->max_timestamp, log->log_start, offset, timestamp);
        if (rc == 1) {
            return 0;
        }
    }
    if (rc < 0) {
        return rc;
    }
    /* The index pointed elsewhere (it cannot, short of damage): scan the segment. */
    coll_scan_t sc;
    coll_scan_init(&sc, best->fd, 0, best->size);
    while ((rc = coll_scan_next(&sc, &h)) == 1) {
        if (h.max_timestamp == best->max_timestamp && h.last_offset >= log->log_start) {
            rc = search_batch(best, &h, best->max_timestamp, log->log_start, offset, timestamp);
            if (rc != 0) {
                return rc < 0 ? rc : 0;
            }
        }
    }
    return rc < 0 ? rc : TRIB_ENOT_FOUND;
}

/* ---- log start, retention ------------------------------------------------------------- */

static void advance_log_start(coll_log_t *log, int64_t start)
{
    if (start <= log->log_start) {
        return;
    }
    log->log_start = start;
    if (log->hw < start) {
        log->hw = start;
    }
    if (log->cleaner_point < start) {
        log->cleaner_point = start;
    }
    if (coll_epoch_truncate_start(&log->epochs, start) > 0) {
        coll_log_mark_epoch_dirty(log);
    }
}

/* Leading segments wholly below the log start offset. */
static size_t below_log_start(const coll_log_t *log)
{
    size_t k = 0;
    while (k + 1 < log->nsegs && log->segs[k + 1]->base_offset <= log->log_start) {
        k++;
    }
    return k;
}

int coll_log_delete_records(coll_log_t *log, int64_t offset, int64_t *low_watermark)
{
    if (offset == -1) {
        offset = log->hw;
    }
    if (offset < 0) {
        return -EINVAL;
    }
    if (offset > log->hw) {
        return -ERANGE;
    }
    advance_log_start(log, offset);
    size_t k = below_log_start(log);
    if (k > 0) {
        coll_log_remove_segments(log, 0, k, "below the log start offset (DeleteRecords)");
    }
    if (low_watermark) {
        *low_watermark = log->log_start;
    }
    return 0;
}

static int64_t segment_age_ts(const coll_segment_t *s)
{
    return s->max_timestamp >= 0 ? s->max_timestamp : s->created_ms;
}

size_t coll_log_enforce_retention(coll_log_t *log, int64_t now_ms)
{
    if (log->failed) {
        return 0;
    }
    size_t k = below_log_start(log);
    const char *reason = "below the log start offset";
    if (log->cfg.cleanup_policy & COLL_CLEANUP_DELETE) {
        if (log->cfg.retention_ms >= 0) {
            /* An expired active segment is rolled so that it can go too. */
            coll_segment_t *act = coll_log_active(log);
            int64_t leo = coll_log_end_offset(log);
            if (act->size > 0 && leo <= log->hw &&
                segment_age_ts(act) < now_ms - log->cfg.retention_ms && !act->cleaning) {
                coll_log_roll(log, leo);
            }
            int64_t upper = coll_log_active(log)->base_offset;
            if (log->hw < upper) {
                upper = log->hw;
            }
            size_t j = k;
            while (j + 1 < log->nsegs && log->segs[j + 1]->base_offset <= upper &&
                   segment_age_ts(log->segs[j]) < now_ms - log->cfg.retention_ms) {
                j++;
            }
            if (j > k) {
                k = j;
                reason = "retention.ms";
            }
        }
        if (log->cfg.retention_bytes >= 0) {
            int64_t upper = coll_log_active(log)->base_offset;
            if (log->hw < upper) {
                upper = log->hw;
            }
            int64_t diff = -log->cfg.retention_bytes;
            for (size_t i = k; i < log->nsegs; i++) {
                diff += (int64_t)log->segs[i]->size;
            }
            size_t j = k;
            while (j + 1 < log->nsegs && log->segs[j + 1]->base_offset <= upper &&
                   diff - (int64_t)log->segs[j]->size >= 0) {
                diff -= (int64_t)log->segs[j]->size;
                j++;
            }
            if (j > k) {
                k = j;
                reason = "retention.bytes";
            }
        }
    }
    if (k == 0) {
        return 0;
    }
    coll_log_remove_segments(log, 0, k, reason);
    advance_log_start(log, log->segs[0]->base_offset);
    return k;
}

/* ---- truncation -------------------------------------------------------------------------- */

static void after_truncation(coll_log_t *log, int64_t offset)
{
    log->gen++;
    if (log->hw > offset) {
        log->hw = offset;
    }
    if (log->durable > offset) {
        log->durable = offset;
    }
    if (log->flush_clamp > offset) {
        log->flush_clamp = offset;
    }
    if (log->cleaner_point > offset) {
        log->cleaner_point = offset;
    }
    if (coll_epoch_truncate_end(&log->epochs, offset) > 0) {
        coll_log_mark_epoch_dirty(log);
    }
    coll_flush_cancel_above(log, offset, -ECANCELED);
}

int coll_log_truncate_to(coll_log_t *log, int64_t offset)
{
    if (offset < 0) {
        return -EINVAL;
    }
    if (log->failed) {
        return -EROFS;
    }
    int64_t leo = coll_log_end_offset(log);
    if (offset >= leo) {
        return 0;
    }
    if (offset < log->log_start) {
        return -ERANGE;
    }
    size_t i = coll_log_segment_index(log, offset);
    TRIB_LOG(TRIB_LOG_INFO, COLL_FACILITY, "%s: truncating from %" PRId64 " to %" PRId64, log->name,
             leo, offset);
    if (i + 1 < log->nsegs) {
        coll_log_remove_segments(log, i + 1, log->nsegs - i - 1, "truncation");
    }
    coll_segment_t *s = log->segs[i];
    int rc = 0;
    if (!s->active) {
        rc = coll_segment_open(s);
        if (rc == 0) {
            rc = coll_segment_activate(s);
        }
    }
    if (rc == 0) {
        rc = coll_segment_truncate_to(s, offset);
    }
    if (rc < 0) {
        TRIB_LOG(TRIB_LOG_ERROR, COLL_FACILITY, "%s: truncation to %" PRId64 ": %s", log->name,
                 offset, trib_strerror(rc));
        log->failed = -EROFS;
        after_truncation(log, offset);
        return rc;
    }
    s->next_offset = offset;
    after_truncation(log, offset);
    return 0;
}

int coll_log_truncate_fully(coll_log_t *log, int64_t offset)
{
    if (offset < 0) {
        return -EINVAL;
    }
    if (log->failed) {
        return -EROFS;
    }
    TRIB_LOG(TRIB_LOG_INFO, COLL_FACILITY, "%s: truncating fully, restarting at %" PRId64,
             log->name, offset);
    coll_log_remove_segments(log, 0, log->nsegs, "full truncation");
    coll_segment_t *s;
    int rc = coll_segment_create(log, offset, &s);
    if (rc == 0 && (rc = coll_log_push_segment(log, s)) != 0) {
        coll_segment_free(s);
    }
    if (rc) {
        log->failed = -EROFS;
        return rc;
    }
    log->gen++;
    log->log_start = log->hw = log->durable = log->cleaner_point = offset;
    log->flush_clamp = INT64_MIN;
    coll_epoch_clear(&log->epochs);
    coll_log_mark_epoch_dirty(log);
    coll_flush_cancel_above(log, -1, -ECANCELED);
    return 0;
}
