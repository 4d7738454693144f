/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One log segment: <base offset, 20 digits>.log and its two indexes.
 *
 * The .log file is a plain sequence of record batches (magic 2), stored
 * exactly as the producer sent them except for the two fields the broker
 * stamps outside the CRC (baseOffset, partitionLeaderEpoch):
 *
 *   pos 0        batch: baseOffset 8 | batchLength 4 | partitionLeaderEpoch 4
 *                       | magic 1 | crc 4 | attributes 2 | lastOffsetDelta 4
 *                       | baseTimestamp 8 | maxTimestamp 8 | producerId 8
 *                       | producerEpoch 2 | baseSequence 4 | recordsCount 4
 *                       | records ...          (12 + batchLength bytes)
 *   pos 12+len   next batch ...
 *
 * Invariants of a segment's bytes [0, size): batches follow each other
 * without gaps; their offsets increase (lastOffset of one < baseOffset of
 * the next); every offset o satisfies base <= o <= base + INT32_MAX (the
 * index stores 4-byte relative offsets); size < 2 GiB (4-byte positions).
 * Offsets may have gaps (compaction, truncation to a mid-batch offset).
 *
 * Reads never need the records: a scanner reads 61-byte headers through a
 * 4 KiB buffer, starting from the position an index lookup gives, so
 * finding a batch costs one or two preads of page-cached data.
 *
 * Recovery (startup, past the recovery point) reads every byte: each
 * batch's length must fit the file, its magic be 2, its CRC match, and its
 * offsets continue the segment's; the first batch that fails ends the
 * valid region, the file is truncated there (a torn write or garbage from
 * a crash) and the indexes are rebuilt from what remains.
 *
 * File descriptors: the active segment's fd stays open; an inactive one's
 * opens on use and joins the storage's LRU, which closes it (and unmaps
 * its indexes) when idle or over the open-segment budget — unless
 * referenced.
 */
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
#include "tributary/record.h"

int coll_segment_path(const coll_log_t *log, int64_t base, const char *suffix, char *out, size_t n)
{
    int w = snprintf(out, n, "%s/%020" PRId64 "%s", log->dir, base, suffix);
    return (w < 0 || (size_t)w >= n) ? -ENAMETOOLONG : 0;
}

coll_segment_t *coll_segment_new(coll_log_t *log, int64_t base)
{
    coll_segment_t *s = calloc(1, sizeof(*s));
    if (!s) {
        return NULL;
    }
    s->log = log;
    log->live_segments++;
    s->base_offset = base;
    s->next_offset = base;
    s->max_timestamp = -1;
    s->max_ts_offset = -1;
    s->roll_base_ms = -1;
    s->last_ti_ts = -1;
    s->fd = -1;
    coll_index_init(&s->oi, COLL_OFFSET_ENTRY_SIZE);
    coll_index_init(&s->ti, COLL_TIME_ENTRY_SIZE);
    return s;
}

void coll_segment_close_files(coll_segment_t *s)
{
    if (s->in_lru) {
        coll_storage_lru_remove(s->log->st, s);
    }
    coll_index_unmap(&s->oi);
    coll_index_unmap(&s->ti);
    if (s->fd >= 0) {
        close(s->fd);
        s->fd = -1;
    }
}

void coll_segment_free(coll_segment_t *s)
{
    if (!s) {
        return;
    }
    coll_segment_close_files(s);
    s->log->live_segments--;
    free(s);
}

static int open_log_fd(coll_segment_t *s)
{
    char path[COLL_PATH_MAX];
    int rc = coll_segment_path(s->log, s->base_offset, COLL_LOG_SUFFIX, path, sizeof(path));
    if (rc) {
        return rc;
    }
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        return -errno;
    }
    s->fd = fd;
    return 0;
}

int coll_segment_open(coll_segment_t *s)
{
    coll_storage_t *st = s->log->st;
    if (s->fd < 0) {
        int rc = open_log_fd(s);
        if (rc) {
            return rc;
        }
    }
    if (!s->active && !s->oi.map && !s->deleted) {
        char path[COLL_PATH_MAX];
        /*
         * An index that cannot be mapped (removed under us) only costs
         * speed: lookups then scan from the start of the segment.
         */
        if (coll_segment_path(s->log, s->base_offset, COLL_INDEX_SUFFIX, path, sizeof(path)) == 0 &&
            coll_index_map_ro(&s->oi, path) != 0) {
            s->oi.entries = 0;
        }
        if (coll_segment_path(s->log, s->base_offset, COLL_TIMEINDEX_SUFFIX, path, sizeof(path)) ==
                0 &&
            coll_index_map_ro(&s->ti, path) != 0) {
            s->ti.entries = 0;
        }
    }
    if (st) {
        s->last_used_ms = (int64_t)uv_now(st->loop);
        if (!s->active && !s->deleted) {
            coll_storage_lru_touch(st, s);
        }
    }
    return 0;
}

int coll_segment_acquire(coll_segment_t *s)
{
    int rc = coll_segment_open(s);
    if (rc == 0) {
        s->refs++;
    }
    return rc;
}

void coll_segment_release(coll_segment_t *s)
{
    if (!s) {
        return;
    }
    s->refs--;
    if (s->refs == 0 && s->deleted && !s->delete_queued) {
        coll_storage_delete_segment(s->log->st, s);
    }
}

int coll_segment_create(coll_log_t *log, int64_t base, coll_segment_t **out)
{
    char path[COLL_PATH_MAX];
    int rc = coll_segment_path(log, base, COLL_LOG_SUFFIX, path, sizeof(path));
    if (rc) {
        return rc;
    }
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0 && errno == EEXIST) {
        /* A leftover empty file (a crash right after a roll) can be reused. */
        fd = open(path, O_RDWR | O_CLOEXEC);
        struct stat stb;
        if (fd >= 0 && (fstat(fd, &stb) != 0 || stb.st_size != 0)) {
            close(fd);
            TRIB_LOG(TRIB_LOG_ERROR, COLL_FACILITY, "%s: exists and is not empty", path);
            return -EEXIST;
        }
    }
    if (fd < 0) {
        return -errno;
    }
    coll_segment_t *s = coll_segment_new(log, base);
    if (!s) {
        close(fd);
        return -ENOMEM;
    }
    s->fd = fd;
    s->roll_base_ms = -1;
    /* Fresh, empty index files (a leftover's entries would be wrong). */
    if ((rc = coll_segment_path(log, base, COLL_INDEX_SUFFIX, path, sizeof(path))) != 0 ||
        (rc = coll_index_write_file(path, NULL, 0, false)) != 0 ||
        (rc = coll_segment_path(log, base, COLL_TIMEINDEX_SUFFIX, path, sizeof(path))) != 0 ||
        (rc = coll_index_write_file(path, NULL, 0, false)) != 0 ||
        (rc = coll_segment_activate(s)) != 0) {
        coll_segment_free(s);
        return rc;
    }
    log->dir_dirty = true;
    *out = s;
    return 0;
}

int coll_segment_activate(coll_segment_t *s)
{
    char path[COLL_PATH_MAX];
    int rc;
    if (s->in_lru) {
        coll_storage_lru_remove(s->log->st, s);
    }
    if (s->fd < 0 && (rc = open_log_fd(s)) != 0) {
        return rc;
    }
    size_t prealloc = s->log->cfg.segment_index_bytes;
    uint32_t oe = s->oi.entries, te = s->ti.entries;
    if ((rc = coll_segment_path(s->log, s->base_offset, COLL_INDEX_SUFFIX, path, sizeof(path))) !=
            0 ||
        (rc = coll_index_map_rw(&s->oi, path, oe, prealloc)) != 0) {
        return rc;
    }
    if ((rc = coll_segment_path(s->log, s->base_offset, COLL_TIMEINDEX_SUFFIX, path,
                                sizeof(path))) != 0 ||
        (rc = coll_index_map_rw(&s->ti, path, te,
                                prealloc / COLL_TIME_ENTRY_SIZE * COLL_TIME_ENTRY_SIZE)) != 0) {
        coll_index_unmap(&s->oi);
        return rc;
    }
    s->active = true;
    s->clean = false;
    return 0;
}

static int reserve_index(coll_segment_t *s, coll_index_t *ix, const char *suffix, uint32_t more)
{
    if (coll_index_backed_for(ix, more)) {
        return 0;
    }
    char path[COLL_PATH_MAX];
    int rc = coll_segment_path(s->log, s->base_offset, suffix, path, sizeof(path));
    return rc ? rc : coll_index_reserve(ix, path, more);
}

/* The maximum timestamp is recorded in the time index if it grew. */
static void time_entry(coll_segment_t *s)
{
    if (s->max_timestamp > s->last_ti_ts && s->max_ts_offset >= s->base_offset &&
        coll_tindex_append(&s->ti, s->max_timestamp,
                           (uint32_t)(s->max_ts_offset - s->base_offset)) == 0) {
        s->last_ti_ts = s->max_timestamp;
    }
}

int coll_segment_deactivate(coll_segment_t *s)
{
    char path[COLL_PATH_MAX];
    int rc = 0, rc2;
    /* Appends reserve this entry; a segment activated on a full disk may not have. */
    if (s->ti.writable) {
        (void)reserve_index(s, &s->ti, COLL_TIMEINDEX_SUFFIX, 1);
    }
    time_entry(s);
    if ((rc2 = coll_segment_path(s->log, s->base_offset, COLL_INDEX_SUFFIX, path, sizeof(path))) !=
            0 ||
        (rc2 = coll_index_trim(&s->oi, path)) != 0) {
        rc = rc2;
    }
    if ((rc2 = coll_segment_path(s->log, s->base_offset, COLL_TIMEINDEX_SUFFIX, path,
                                 sizeof(path))) != 0 ||
        (rc2 = coll_index_trim(&s->ti, path)) != 0) {
        rc = rc ? rc : rc2;
    }
    s->active = false;
    return rc;
}

int coll_segment_append(coll_segment_t *s, const void *data, size_t len,
                        const coll_batch_hdr_t *hdrs, size_t n)
{
    uint64_t pos0 = s->size;
    /*
     * Blocks for the index entries this append may add (one offset entry
     * per batch, one time entry per batch and the one a roll adds) come
     * first: on a full disk the append fails here, before any byte of it
     * is in the log.
     */
    int rc = reserve_index(s, &s->oi, COLL_INDEX_SUFFIX, (uint32_t)n);
    if (rc == 0) {
        rc = reserve_index(s, &s->ti, COLL_TIMEINDEX_SUFFIX, (uint32_t)n + 1);
    }
    if (rc) {
        return rc;
    }
    rc = trib_pwrite_all(s->fd, data, len, pos0);
    if (rc) {
        /* Take back whatever part of the write landed. */
        if (ftruncate(s->fd, (off_t)pos0) != 0) {
            TRIB_LOG(TRIB_LOG_ERROR, COLL_FACILITY, "%s: cannot undo a failed write: %s",
                     s->log->name, strerror(errno));
            return -EROFS;
        }
        return rc;
    }
    uint32_t interval = s->log->cfg.index_interval_bytes;
    for (size_t i = 0; i < n; i++) {
        const coll_batch_hdr_t *h = &hdrs[i];
        uint64_t pos = pos0 + h->pos;
        if (h->max_timestamp > s->max_timestamp) {
            s->max_timestamp = h->max_timestamp;
            s->max_ts_offset = h->last_offset;
        }
        if (pos - s->last_index_pos > interval) {
            if (coll_oindex_append(&s->oi, (uint32_t)(h->last_offset - s->base_offset),
                                   (uint32_t)pos) == 0) {
                time_entry(s);
                s->last_index_pos = pos;
            }
        }
    }
    if (pos0 == 0 && n > 0) {
        s->roll_base_ms = hdrs[0].max_timestamp;
    }
    s->size += len;
    if (n > 0) {
        s->next_offset = hdrs[n - 1].last_offset + 1;
    }
    return 0;
}

/* ---- scanning -------------------------------------------------------------------- */

void coll_scan_init(coll_scan_t *s, int fd, uint64_t pos, uint64_t end)
{
    s->fd = fd;
    s->pos = pos;
    s->end = end;
    s->buf_pos = 0;
    s->buf_len = 0;
}

static void parse_hdr(const uint8_t *p, uint64_t pos, coll_batch_hdr_t *h)
{
    h->pos = pos;
    h->base_offset = (int64_t)coll_rd64(p + TRIB_BATCH_OFF_BASE_OFFSET);
    h->size = (uint32_t)(TRIB_BATCH_LOG_OVERHEAD + coll_rd32(p + TRIB_BATCH_OFF_LENGTH));
    h->leader_epoch = (int32_t)coll_rd32(p + TRIB_BATCH_OFF_LEADER_EPOCH);
    h->attributes =
        (int16_t)((p[TRIB_BATCH_OFF_ATTRIBUTES] << 8) | p[TRIB_BATCH_OFF_ATTRIBUTES + 1]);
    int32_t lod = (int32_t)coll_rd32(p + TRIB_BATCH_OFF_LAST_OFFSET_DELTA);
    h->last_offset = h->base_offset + lod;
    h->base_timestamp = (int64_t)coll_rd64(p + TRIB_BATCH_OFF_BASE_TIMESTAMP);
    h->max_timestamp = (int64_t)coll_rd64(p + TRIB_BATCH_OFF_MAX_TIMESTAMP);
    h->record_count = (int32_t)coll_rd32(p + TRIB_BATCH_OFF_RECORDS_COUNT);
}

/* Header sanity that does not need the records. */
static int check_hdr(const uint8_t *p)
{
    int32_t blen = (int32_t)coll_rd32(p + TRIB_BATCH_OFF_LENGTH);
    if (p[TRIB_BATCH_OFF_MAGIC] != TRIB_BATCH_MAGIC) {
        return TRIB_EUNSUPPORTED_VERSION;
    }
    if (blen < TRIB_BATCH_MIN_LENGTH ||
        (int32_t)coll_rd32(p + TRIB_BATCH_OFF_LAST_OFFSET_DELTA) < 0) {
        return TRIB_EMALFORMED;
    }
    return 0;
}

int coll_scan_next(coll_scan_t *s, coll_batch_hdr_t *h)
{
    if (s->pos >= s->end) {
        return 0;
    }
    if (s->end - s->pos < TRIB_BATCH_HEADER_SIZE) {
        return TRIB_ETRUNCATED;
    }
    if (s->pos < s->buf_pos || s->pos + TRIB_BATCH_HEADER_SIZE > s->buf_pos + s->buf_len) {
        size_t want = sizeof(s->buf);
        if (s->end - s->pos < want) {
            want = (size_t)(s->end - s->pos);
        }
        ssize_t r = trib_pread_all(s->fd, s->buf, want, s->pos);
        if (r < 0) {
            return (int)r;
        }
        s->buf_pos = s->pos;
        s->buf_len = (size_t)r;
        if ((size_t)r < TRIB_BATCH_HEADER_SIZE) {
            return TRIB_ETRUNCATED;
        }
    }
    const uint8_t *p = s->buf + (s->pos - s->buf_pos);
    int rc = check_hdr(p);
    if (rc) {
        return rc;
    }
    parse_hdr(p, s->pos, h);
    if (h->size > s->end - s->pos) {
        return TRIB_ETRUNCATED;
    }
    s->pos += h->size;
    return 1;
}

int coll_segment_read_batch(int fd, const coll_batch_hdr_t *h, uint8_t **out)
{
    uint8_t *buf = malloc(h->size);
    if (!buf) {
        return -ENOMEM;
    }
    ssize_t r = trib_pread_all(fd, buf, h->size, h->pos);
    if (r < 0 || (size_t)r != h->size) {
        free(buf);
        return r < 0 ? (int)r : TRIB_ETRUNCATED;
    }
    *out = buf;
    return 0;
}

/* ---- lookups ----------------------------------------------------------------------- */

static uint32_t rel_clamp(const coll_segment_t *s, int64_t offset)
{
    if (offset <= s->base_offset) {
        return 0;
    }
    if (offset - s->base_offset > (int64_t)UINT32_MAX) {
        return UINT32_MAX;
    }
    return (uint32_t)(offset - s->base_offset);
}

int coll_segment_find(coll_segment_t *s, int64_t offset, coll_batch_hdr_t *h)
{
    int rc = coll_segment_open(s);
    if (rc) {
        return rc;
    }
    uint64_t start = 0;
    uint32_t erel, epos;
    if (offset > s->base_offset && coll_oindex_lookup(&s->oi, rel_clamp(s, offset), &erel, &epos) &&
        epos < s->size) {
        start = epos;
    }
    coll_scan_t sc;
    coll_scan_init(&sc, s->fd, start, s->size);
    while ((rc = coll_scan_next(&sc, h)) == 1) {
        if (h->last_offset >= offset) {
            return 1;
        }
    }
    return rc;
}

int coll_segment_read_end(coll_segment_t *s, const coll_batch_hdr_t *first, size_t max_bytes,
                          int64_t max_offset, bool strict, uint64_t *end, int64_t *next)
{
    *end = first->pos;
    *next = first->base_offset;
    if (first->base_offset >= max_offset) {
        return 0;
    }
    if (first->size > max_bytes) {
        if (!strict) {
            *end = first->pos + first->size;
            *next = first->last_offset + 1;
        }
        return 0;
    }
    uint64_t limit = first->pos + max_bytes;
    if (limit < first->pos || limit > s->size) {
        limit = s->size;
    }
    /* Jump close to the limit through the index when it is far. */
    uint64_t from = first->pos;
    uint32_t erel, epos;
    uint32_t max_rel = rel_clamp(s, max_offset);
    if (limit - first->pos > 2 * (uint64_t)s->log->cfg.index_interval_bytes &&
        coll_oindex_lookup_pos(&s->oi, limit > UINT32_MAX ? UINT32_MAX : (uint32_t)limit, max_rel,
                               &erel, &epos) &&
        epos > first->pos) {
        from = epos;
    }
    *end = from;
    *next = first->last_offset + 1;
    coll_scan_t sc;
    coll_scan_init(&sc, s->fd, from, s->size);
    coll_batch_hdr_t h;
    int rc;
    bool any = false;
    while ((rc = coll_scan_next(&sc, &h)) == 1) {
        if (h.base_offset >= max_offset || h.pos + h.size > limit) {
            if (from != first->pos || any) {
                *next = h.base_offset;
            }
            break;
        }
        any = true;
        *end = h.pos + h.size;
        *next = h.last_offset + 1;
    }
    return rc < 0 ? rc : 0;
}

/* ---- recovery ---------------------------------------------------------------------- */

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int coll_segment_recover(coll_segment_t *s, coll_epoch_cache_t *epochs, bool is_last,
                         coll_recover_stats_t *st)
{
    memset(st, 0, sizeof(*st));
    st->first_bad_offset = -1;
    int rc = 0;
    struct stat stb;
    if (s->fd < 0 && (rc = open_log_fd(s)) != 0) {
        return rc;
    }
    if (fstat(s->fd, &stb) != 0) {
        return -errno;
    }
    coll_index_unmap(&s->oi);
    coll_index_unmap(&s->ti);
    uint64_t file_size = (uint64_t)stb.st_size;
    size_t cap = 1 << 20;
    uint8_t *buf = malloc(cap);
    if (!buf) {
        return -ENOMEM;
    }
    coll_index_builder_t ib;
    coll_index_builder_init(&ib, s->log->cfg.index_interval_bytes);
    uint64_t buf_pos = 0;
    size_t buf_len = 0;
    uint64_t pos = 0;
    int64_t expect = s->base_offset;
    int64_t first_ts = -1;
    int64_t last_progress = mono_ms();
    const char *why = NULL;

    while (pos < file_size) {
        uint64_t left = file_size - pos;
        if (left < TRIB_BATCH_HEADER_SIZE) {
            why = "a partial batch header";
            break;
        }
        /* Make sure the header is buffered. */
        if (pos < buf_pos || pos + TRIB_BATCH_HEADER_SIZE > buf_pos + buf_len) {
            size_t want = left < cap ? (size_t)left : cap;
            ssize_t r = trib_pread_all(s->fd, buf, want, pos);
            if (r < 0) {
                rc = (int)r;
                goto out;
            }
            buf_pos = pos;
            buf_len = (size_t)r;
        }
        const uint8_t *p = buf + (pos - buf_pos);
        size_t avail = buf_len - (size_t)(pos - buf_pos);
        if (avail < TRIB_BATCH_HEADER_SIZE) {
            why = "a partial batch header";
            break;
        }
        int32_t blen = (int32_t)coll_rd32(p + TRIB_BATCH_OFF_LENGTH);
        if (blen < TRIB_BATCH_MIN_LENGTH) {
            why = "an invalid batch length";
            break;
        }
        if (p[TRIB_BATCH_OFF_MAGIC] != TRIB_BATCH_MAGIC) {
            why = "an unknown magic byte";
            break;
        }
        uint64_t size = TRIB_BATCH_LOG_OVERHEAD + (uint64_t)blen;
        if (size > left) {
            why = "a batch cut short (torn write)";
            break;
        }
        if (size > avail) {
            if (size > cap) {
                size_t ncap = cap;
                while (ncap < size) {
                    ncap *= 2;
                }
                uint8_t *nb = realloc(buf, ncap);
                if (!nb) {
                    rc = -ENOMEM;
                    goto out;
                }
                buf = nb;
                cap = ncap;
            }
            size_t want = left < cap ? (size_t)left : cap;
            ssize_t r = trib_pread_all(s->fd, buf, want, pos);
            if (r < 0) {
                rc = (int)r;
                goto out;
            }
            buf_pos = pos;
            buf_len = (size_t)r;
            p = buf;
            if (buf_len < size) {
                why = "a batch cut short (torn write)";
                break;
            }
        }
        trib_batch_t b;
        int prc = trib_batch_parse(&b, p, (size_t)size, 0);
        if (prc) {
            why = prc == TRIB_ECRC ? "a CRC mismatch" : "a malformed batch";
            st->first_bad_offset = (int64_t)coll_rd64(p);
            break;
        }
        int64_t last = trib_batch_last_offset(&b);
        if (b.base_offset < expect || b.last_offset_delta < 0 ||
            last - s->base_offset > INT32_MAX) {
            why = "offsets out of order";
            st->first_bad_offset = b.base_offset;
            break;
        }
        if (pos + size > INT32_MAX) {
            why = "a segment over 2 GiB";
            break;
        }
        if (epochs && b.partition_leader_epoch >= 0 &&
            b.partition_leader_epoch > coll_epoch_latest(epochs)) {
            if (coll_epoch_assign(epochs, b.partition_leader_epoch, b.base_offset) < 0) {
                rc = -ENOMEM;
                goto out;
            }
        }
        if (first_ts < 0 && st->batches == 0) {
            first_ts = b.max_timestamp;
        }
        coll_index_builder_add(&ib, s->base_offset, pos, (uint32_t)size, last, b.max_timestamp);
        pos += size;
        expect = last + 1;
        st->batches++;
        if (mono_ms() - last_progress >= 5000) {
            last_progress = mono_ms();
            TRIB_LOG(TRIB_LOG_INFO, COLL_FACILITY,
                     "recovering %s: segment %020" PRId64 " at %" PRIu64 " of %" PRIu64 " MiB",
                     s->log->name, s->base_offset, pos >> 20, file_size >> 20);
        }
    }
    if (ib.err) {
        rc = ib.err;
        goto out;
    }
    st->bytes_scanned = pos;
    if (pos < file_size) {
        st->bytes_truncated = file_size - pos;
        st->why = why;
        if (ftruncate(s->fd, (off_t)pos) != 0) {
            rc = -errno;
            goto out;
        }
    }
    if (!is_last) {
        coll_index_builder_finish(&ib, s->base_offset);
    }
    char path[COLL_PATH_MAX];
    if ((rc = coll_segment_path(s->log, s->base_offset, COLL_INDEX_SUFFIX, path, sizeof(path))) !=
            0 ||
        (rc = coll_index_write_file(path, ib.oi, ib.oi_len, false)) != 0 ||
        (rc = coll_segment_path(s->log, s->base_offset, COLL_TIMEINDEX_SUFFIX, path,
                                sizeof(path))) != 0 ||
        (rc = coll_index_write_file(path, ib.ti, ib.ti_len, false)) != 0) {
        goto out;
    }
    s->size = pos;
    s->synced_size = 0;
    s->next_offset = st->batches ? expect : s->base_offset;
    s->max_timestamp = ib.max_ts;
    s->max_ts_offset = ib.max_ts_offset;
    s->last_ti_ts = ib.last_ti_ts;
    s->last_index_pos = ib.last_index_pos;
    s->oi.entries = (uint32_t)(ib.oi_len / COLL_OFFSET_ENTRY_SIZE);
    s->ti.entries = (uint32_t)(ib.ti_len / COLL_TIME_ENTRY_SIZE);
    s->roll_base_ms = first_ts;
out:
    coll_index_builder_fini(&ib);
    free(buf);
    return rc;
}

/* ---- truncation -------------------------------------------------------------------- */

int coll_segment_truncate_to(coll_segment_t *s, int64_t offset)
{
    coll_batch_hdr_t h;
    int rc = coll_segment_find(s, offset, &h);
    if (rc <= 0) {
        return rc;
    }
    uint64_t cut = h.pos;
    if (ftruncate(s->fd, (off_t)cut) != 0) {
        return -errno;
    }
    s->size = cut;
    if (s->synced_size > cut) {
        s->synced_size = cut;
    }
    uint32_t rel = rel_clamp(s, offset);
    coll_oindex_truncate(&s->oi, rel);
    coll_tindex_truncate(&s->ti, rel);
    /* Rebuild the in-memory maxima from the surviving entries and the tail. */
    s->max_timestamp = -1;
    s->max_ts_offset = -1;
    s->last_ti_ts = -1;
    if (s->ti.entries > 0) {
        int64_t ts;
        uint32_t trel;
        coll_tindex_entry(&s->ti, s->ti.entries - 1, &ts, &trel);
        s->max_timestamp = ts;
        s->max_ts_offset = s->base_offset + trel;
        s->last_ti_ts = ts;
    }
    uint64_t from = 0;
    s->last_index_pos = 0;
    if (s->oi.entries > 0) {
        uint32_t erel, epos;
        coll_oindex_entry(&s->oi, s->oi.entries - 1, &erel, &epos);
        from = epos;
        s->last_index_pos = epos;
    }
    coll_scan_t sc;
    coll_scan_init(&sc, s->fd, from, cut);
    int64_t first_ts = -1;
    while ((rc = coll_scan_next(&sc, &h)) == 1) {
        if (h.pos == 0) {
            first_ts = h.max_timestamp;
        }
        if (h.max_timestamp > s->max_timestamp) {
            s->max_timestamp = h.max_timestamp;
            s->max_ts_offset = h.last_offset;
        }
    }
    if (cut == 0) {
        s->roll_base_ms = -1;
    } else if (from == 0) {
        s->roll_base_ms = first_ts;
    }
    return rc < 0 ? rc : 1;
}
