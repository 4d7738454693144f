/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Log compaction (cleanup.policy=compact), Kafka's cleaner in miniature.
 *
 *   segs:  [ clean ....... | dirty ............ | uncleanable ... | active ]
 *          log start       cleaner point        first uncleanable
 *
 * The cleanable range is the segments before the active one that lie
 * wholly below the high watermark and whose largest timestamp is older
 * than min.compaction.lag.ms. The dirty part starts at the cleaner point
 * (persisted in cleaner-offset-checkpoint). A pass:
 *
 * 1. (pool) Maps every key in the dirty part to its last offset. The map
 *    stores a 128-bit hash of each key (two 64-bit hashes), 24 bytes per
 *    entry, bounded by log.cleaner.dedupe.buffer.size; when it fills, the
 *    pass stops mapping there and cleans up to that offset only.
 * 2. (pool) Rewrites every cleanable segment from the log start up to the
 *    last mapped offset, in groups that fit one segment (segment.bytes,
 *    32-bit relative offsets): a record survives unless the map holds a
 *    later offset for its key, or it is a tombstone whose batch's delete
 *    horizon has passed. Records past the mapped range and null keys are
 *    kept. A batch whose records all survive is copied byte for byte; a
 *    batch with none is dropped; any other batch is rebuilt with record.h's
 *    builder keeping its base offset, the records' offsets and timestamps,
 *    producer id/epoch, base sequence, leader epoch, attributes and codec
 *    (the CRC is recomputed). A batch that keeps a tombstone gets a delete
 *    horizon (KIP-534: attribute bit 6, baseTimestamp = now +
 *    delete.retention.ms), and the tombstone goes in the first pass after
 *    that horizon. Control batches are copied as they are.
 * 3. (pool) Each group is written to <base>.log.cleaned with rebuilt
 *    indexes, fdatasync'd, renamed to *.swap, and the directory fsync'd.
 * 4. (loop) If nothing invalidated the pass (a truncation, a deletion of a
 *    source segment, close), the sources are renamed *.deleted and leave
 *    the segment array, the *.swap files are renamed into place and the
 *    new segments enter the array; readers holding old segments keep
 *    reading them until they let go, and the pool unlinks them. Otherwise
 *    the *.swap files are unlinked and nothing changed.
 *
 * Crash safety follows Kafka's swap protocol: .cleaned files are garbage;
 * a .swap file is complete, and startup finishes its swap (recovery.c).
 * The active segment is never touched, so appends never wait; reads never
 * wait either, since the loop only swaps array entries.
 *
 * Unreadable batches. A batch the cleaner cannot read (a CRC mismatch,
 * records that do not decompress or parse, an unknown codec, a record
 * without a key) is kept byte for byte and maps no keys; the pass goes on
 * around it, logs it (rate-limited, on the loop) and counts it
 * (tributary_cleaner_unreadable_batches_total). Produce refuses such
 * batches for compacted topics, so they come from older versions, other
 * tools or the disk. A pass that fails for another reason (a segment
 * whose framing is broken, an I/O error) leaves the log as it was, and
 * the storage does not pick that log again for a while, so the other
 * compacted logs keep being cleaned (storage.c).
 *
 * Not done (as Kafka does): removing aborted transactional records and
 * obsolete transaction markers, and keeping the last batch of each
 * producer id for idempotence state (an emptied batch is dropped).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "storage/storage_int.h"
#include "tributary/log.h"
#include "tributary/record.h"

#define MAX_DECOMPRESSED (256u << 20)
#define MAP_ENTRY_SIZE 24

/* ---- key map ------------------------------------------------------------------------- */

typedef struct map_entry {
    uint64_t h1, h2;
    int64_t offset; /* -1: empty slot */
} map_entry_t;

typedef struct key_map {
    map_entry_t *v;
    size_t slots, count, max_slots;
} key_map_t;

static uint64_t mix64(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

static uint64_t hash_bytes(const uint8_t *p, size_t n, uint64_t seed, uint64_t mul)
{
    uint64_t h = seed ^ (n * mul);
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        h = mix64(h ^ (v * mul)) * mul + 0x9e3779b97f4a7c15ULL;
        p += 8;
        n -= 8;
    }
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        v |= (uint64_t)p[i] << (8 * i);
    }
    return mix64(h ^ (v * mul) ^ n);
}

static void key_hash(const uint8_t *p, size_t n, uint64_t *h1, uint64_t *h2)
{
    *h1 = hash_bytes(p, n, 0x243f6a8885a308d3ULL, 0x9fb21c651e98df25ULL);
    *h2 = hash_bytes(p, n, 0x13198a2e03707344ULL, 0xc6a4a7935bd1e995ULL);
}

static int map_init(key_map_t *m, uint64_t budget)
{
    memset(m, 0, sizeof(*m));
    size_t max = 1024;
    while ((uint64_t)max * 2 * MAP_ENTRY_SIZE <= budget) {
        max *= 2;
    }
    m->max_slots = max;
    m->slots = max < 65536 ? max : 65536;
    m->v = malloc(m->slots * sizeof(*m->v));
    if (!m->v) {
        return -ENOMEM;
    }
    for (size_t i = 0; i < m->slots; i++) {
        m->v[i].offset = -1;
    }
    return 0;
}

static map_entry_t *map_slot(map_entry_t *v, size_t slots, uint64_t h1, uint64_t h2)
{
    size_t i = (size_t)h1 & (slots - 1);
    for (;;) {
        map_entry_t *e = &v[i];
        if (e->offset < 0 || (e->h1 == h1 && e->h2 == h2)) {
            return e;
        }
        i = (i + 1) & (slots - 1);
    }
}

static int map_grow(key_map_t *m)
{
    size_t ns = m->slots * 2;
    map_entry_t *nv = malloc(ns * sizeof(*nv));
    if (!nv) {
        return -ENOMEM;
    }
    for (size_t i = 0; i < ns; i++) {
        nv[i].offset = -1;
    }
    for (size_t i = 0; i < m->slots; i++) {
        if (m->v[i].offset >= 0) {
            *map_slot(nv, ns, m->v[i].h1, m->v[i].h2) = m->v[i];
        }
    }
    free(m->v);
    m->v = nv;
    m->slots = ns;
    return 0;
}

/* 0, or TRIB_ELIMIT when the map is full (the key was not added). */
static int map_put(key_map_t *m, uint64_t h1, uint64_t h2, int64_t offset)
{
    map_entry_t *e = map_slot(m->v, m->slots, h1, h2);
    if (e->offset >= 0) {
        e->offset = offset;
        return 0;
    }
    if ((m->count + 1) * 4 > m->slots * 3) {
        if (m->slots >= m->max_slots) {
            return TRIB_ELIMIT;
        }
        int rc = map_grow(m);
        if (rc) {
            return rc;
        }
        e = map_slot(m->v, m->slots, h1, h2);
    }
    e->h1 = h1;
    e->h2 = h2;
    e->offset = offset;
    m->count++;
    return 0;
}

static int64_t map_get(const key_map_t *m, uint64_t h1, uint64_t h2)
{
    const map_entry_t *e = map_slot(m->v, m->slots, h1, h2);
    return e->offset;
}

/* ---- batch reader ------------------------------------------------------------------------ */

typedef struct batch_reader {
    int fd;
    uint64_t pos, end;
    uint8_t *buf;
    size_t cap;
    uint64_t buf_pos;
    size_t buf_len;
} batch_reader_t;

static int reader_init(batch_reader_t *r, int fd, uint64_t end)
{
    memset(r, 0, sizeof(*r));
    r->fd = fd;
    r->end = end;
    r->cap = 1 << 20;
    r->buf = malloc(r->cap);
    return r->buf ? 0 : -ENOMEM;
}

static void reader_fini(batch_reader_t *r)
{
    free(r->buf);
}

/* 1 and the next whole batch at *p (valid until the next call); 0 at the end. */
static int reader_next(batch_reader_t *r, const uint8_t **p, size_t *size, uint64_t *pos)
{
    if (r->pos >= r->end) {
        return 0;
    }
    if (r->end - r->pos < TRIB_BATCH_HEADER_SIZE) {
        return TRIB_ETRUNCATED;
    }
    for (int pass = 0; pass < 2; pass++) {
        uint64_t in = r->buf_pos + r->buf_len;
        if (r->pos >= r->buf_pos && r->pos + TRIB_BATCH_LOG_OVERHEAD <= in) {
            const uint8_t *b = r->buf + (r->pos - r->buf_pos);
            int32_t blen = (int32_t)coll_rd32(b + TRIB_BATCH_OFF_LENGTH);
            if (blen < TRIB_BATCH_MIN_LENGTH) {
                return TRIB_EMALFORMED;
            }
            uint64_t sz = TRIB_BATCH_LOG_OVERHEAD + (uint64_t)blen;
            if (sz > r->end - r->pos) {
                return TRIB_ETRUNCATED;
            }
            if (r->pos + sz <= in) {
                *p = b;
                *size = (size_t)sz;
                *pos = r->pos;
                r->pos += sz;
                return 1;
            }
            if (sz > r->cap) {
                size_t ncap = r->cap;
                while (ncap < sz) {
                    ncap *= 2;
                }
                uint8_t *nb = realloc(r->buf, ncap);
                if (!nb) {
                    return -ENOMEM;
                }
                r->buf = nb;
                r->cap = ncap;
            }
        }
        size_t want = r->end - r->pos < r->cap ? (size_t)(r->end - r->pos) : r->cap;
        ssize_t got = trib_pread_all(r->fd, r->buf, want, r->pos);
        if (got < 0) {
            return (int)got;
        }
        r->buf_pos = r->pos;
        r->buf_len = (size_t)got;
    }
    return TRIB_ETRUNCATED;
}

/* ---- the job -------------------------------------------------------------------------------- */

typedef struct src_seg {
    coll_segment_t *seg;
    int fd;
    int64_t base;
    uint64_t size;
    int64_t next_base;
} src_seg_t;

typedef struct out_seg {
    int64_t base;
    uint64_t size;
    int64_t next_offset;
    int64_t max_ts, max_ts_offset, last_ti_ts;
    uint32_t oi_entries, ti_entries;
    uint64_t last_index_pos;
    int fd;
    size_t first, nsrc; /* the sources it replaces */
} out_seg_t;

typedef struct clean_job {
    uv_work_t req;
    coll_log_t *log;
    uint64_t gen;
    size_t nsrc;
    src_seg_t *src;
    int64_t dirty_start;
    int64_t now;
    int64_t delete_retention_ms;
    uint64_t dedupe_bytes;
    uint64_t segment_bytes;
    uint32_t interval;
    char dir[COLL_PATH_MAX - 64];
    coll_log_done_cb cb;
    void *arg;
    /* results */
    int err;
    int64_t map_end;
    size_t nout;
    out_seg_t *out;
    int64_t min_horizon;
    uint64_t bytes_in, bytes_out, records_in, records_out, tombstones_dropped;
    size_t keys;
    uint64_t unreadable;        /* batches kept as they are */
    int64_t unreadable_offset;  /* the first one's base offset */
    const char *unreadable_why; /* and why */
} clean_job_t;

/* Keys of one batch, put in the map only once the whole batch has been read. */
typedef struct key_vec {
    map_entry_t *v;
    size_t len, cap;
} key_vec_t;

static int kv_push(key_vec_t *kv, uint64_t h1, uint64_t h2, int64_t offset)
{
    if (kv->len == kv->cap) {
        size_t ncap = kv->cap ? kv->cap * 2 : 64;
        map_entry_t *nv = realloc(kv->v, ncap * sizeof(*nv));
        if (!nv) {
            return -ENOMEM;
        }
        kv->v = nv;
        kv->cap = ncap;
    }
    kv->v[kv->len++] = (map_entry_t){h1, h2, offset};
    return 0;
}

/*
 * A batch the cleaner cannot read: a failed parse or record error other
 * than running out of memory. Records why for the pass's log line.
 */
static bool note_unreadable(clean_job_t *job, int rc, const uint8_t *p, const char *why)
{
    if (rc == -ENOMEM) {
        return false;
    }
    if (job->unreadable == 0) {
        job->unreadable_offset = (int64_t)coll_rd64(p + TRIB_BATCH_OFF_BASE_OFFSET);
        job->unreadable_why = why ? why : trib_strerror(rc);
    }
    job->unreadable++;
    return true;
}

static int job_path(const clean_job_t *job, int64_t base, const char *suffix, const char *extra,
                    char *out, size_t n)
{
    int w = snprintf(out, n, "%s/%020" PRId64 "%s%s", job->dir, base, suffix, extra);
    return (w < 0 || (size_t)w >= n) ? -ENAMETOOLONG : 0;
}

/* Step 1: the key map over [dirty_start, end of the cleanable range). */
static int build_map(clean_job_t *job, key_map_t *map, key_vec_t *kv)
{
    int64_t end = job->nsrc ? job->src[job->nsrc - 1].next_base : job->dirty_start;
    job->map_end = end;
    for (size_t i = 0; i < job->nsrc; i++) {
        src_seg_t *s = &job->src[i];
        if (s->next_base <= job->dirty_start) {
            continue;
        }
        batch_reader_t rd;
        int rc = reader_init(&rd, s->fd, s->size);
        if (rc) {
            return rc;
        }
        const uint8_t *p;
        size_t size;
        uint64_t pos;
        while ((rc = reader_next(&rd, &p, &size, &pos)) == 1) {
            trib_batch_t b;
            if (trib_batch_parse(&b, p, size, 0) != 0) {
                rc = 0; /* unreadable: maps nothing, kept by clean_batch */
                continue;
            }
            if (trib_batch_last_offset(&b) < job->dirty_start || trib_batch_is_control(&b)) {
                continue;
            }
            /* The batch's keys go in only if every record reads and has a key. */
            trib_record_iter_t it;
            trib_record_t r;
            kv->len = 0;
            rc = trib_record_iter_init(&it, &b, NULL, MAX_DECOMPRESSED);
            while (rc == 0 && (rc = trib_record_iter_next(&it, &r)) == 1) {
                rc = 0;
                if (trib_record_bytes_is_null(r.key)) {
                    rc = TRIB_EMALFORMED;
                    break;
                }
                if (r.offset < job->dirty_start) {
                    continue;
                }
                uint64_t h1, h2;
                key_hash(r.key.ptr, (size_t)r.key.len, &h1, &h2);
                rc = kv_push(kv, h1, h2, r.offset);
            }
            trib_record_iter_fini(&it);
            if (rc == -ENOMEM) {
                break;
            }
            if (rc < 0) {
                rc = 0; /* unreadable: maps nothing */
                continue;
            }
            for (size_t k = 0; k < kv->len; k++) {
                rc = map_put(map, kv->v[k].h1, kv->v[k].h2, kv->v[k].offset);
                if (rc == TRIB_ELIMIT) {
                    job->map_end = kv->v[k].offset;
                    reader_fini(&rd);
                    job->keys = map->count;
                    return 0;
                }
                if (rc < 0) {
                    break;
                }
            }
            if (rc < 0) {
                break;
            }
        }
        reader_fini(&rd);
        if (rc < 0) {
            return rc;
        }
    }
    job->keys = map->count;
    return 0;
}

typedef struct out_writer {
    int fd;
    uint64_t size;
    uint8_t *buf;
    size_t len, cap;
    coll_index_builder_t ib;
    int64_t base;
    int64_t next_offset;
    int err;
} out_writer_t;

static void ow_write(out_writer_t *w, const uint8_t *p, size_t n)
{
    if (w->err) {
        return;
    }
    if (w->len + n > w->cap) {
        if (w->len > 0) {
            w->err = trib_pwrite_all(w->fd, w->buf, w->len, w->size - w->len);
            w->len = 0;
            if (w->err) {
                return;
            }
        }
        if (n > w->cap) {
            w->err = trib_pwrite_all(w->fd, p, n, w->size);
            w->size += n;
            return;
        }
    }
    memcpy(w->buf + w->len, p, n);
    w->len += n;
    w->size += n;
}

static int ow_flush(out_writer_t *w)
{
    if (!w->err && w->len > 0) {
        w->err = trib_pwrite_all(w->fd, w->buf, w->len, w->size - w->len);
        w->len = 0;
    }
    return w->err;
}

/* Appends one finished batch (its header tells offsets and timestamps). */
static void ow_batch(out_writer_t *w, const uint8_t *p, size_t n)
{
    if (w->err) {
        return;
    }
    if (w->size + n > INT32_MAX) {
        w->err = TRIB_ETOO_LARGE;
        return;
    }
    int64_t base = (int64_t)coll_rd64(p + TRIB_BATCH_OFF_BASE_OFFSET);
    int32_t delta = (int32_t)coll_rd32(p + TRIB_BATCH_OFF_LAST_OFFSET_DELTA);
    /* An unreadable batch's header may be damaged: its offsets never go backwards. */
    int64_t last = delta > 0 ? base + delta : base;
    if (last < w->next_offset - 1) {
        last = w->next_offset - 1;
    }
    int64_t max_ts = (int64_t)coll_rd64(p + TRIB_BATCH_OFF_MAX_TIMESTAMP);
    coll_index_builder_add(&w->ib, w->base, w->size, (uint32_t)n, last, max_ts);
    ow_write(w, p, n);
    w->next_offset = last + 1;
}

typedef struct hdr_vec {
    trib_record_header_t *v;
    size_t cap;
} hdr_vec_t;

/* Step 2 for one batch: copy, drop or rebuild. */
static int clean_batch(clean_job_t *job, const key_map_t *map, const uint8_t *p, size_t size,
                       out_writer_t *w, hdr_vec_t *hv, trib_buf_t *scratch)
{
    trib_batch_t b;
    job->bytes_in += size;
    int rc = trib_batch_parse(&b, p, size, 0);
    if (rc || trib_batch_is_control(&b)) {
        if (rc && !note_unreadable(job, rc, p, NULL)) {
            return rc;
        }
        ow_batch(w, p, size); /* control batches, and unreadable ones, as they are */
        job->bytes_out += size;
        return w->err;
    }
    bool has_horizon = trib_batch_has_delete_horizon(&b);
    int64_t horizon = b.base_timestamp;
    trib_record_iter_t it;
    trib_record_t r;
    int32_t total = 0, kept = 0, tomb_kept = 0;
    /* First pass: decide. */
    const char *why = NULL;
    rc = trib_record_iter_init(&it, &b, NULL, MAX_DECOMPRESSED);
    while (rc == 0 && (rc = trib_record_iter_next(&it, &r)) == 1) {
        rc = 0;
        if (trib_record_bytes_is_null(r.key)) {
            rc = TRIB_EMALFORMED;
            why = "a record without a key";
            break;
        }
        total++;
        bool keep = true;
        if (!trib_record_bytes_is_null(r.key) && r.offset < job->map_end) {
            uint64_t h1, h2;
            key_hash(r.key.ptr, (size_t)r.key.len, &h1, &h2);
            int64_t last = map_get(map, h1, h2);
            if (last > r.offset) {
                keep = false;
            }
        }
        if (keep && trib_record_bytes_is_null(r.value)) {
            if (has_horizon && job->now >= horizon) {
                keep = false;
                job->tombstones_dropped++;
            } else {
                tomb_kept++;
            }
        }
        kept += keep;
    }
    trib_record_iter_fini(&it);
    if (rc < 0) {
        if (!note_unreadable(job, rc, p, why)) {
            return rc;
        }
        ow_batch(w, p, size);
        job->bytes_out += size;
        return w->err;
    }
    job->records_in += (uint64_t)total;
    job->records_out += (uint64_t)kept;
    bool needs_horizon = tomb_kept > 0 && !has_horizon;
    if (tomb_kept > 0) {
        int64_t h = needs_horizon ? job->now + job->delete_retention_ms : horizon;
        if (h < job->min_horizon) {
            job->min_horizon = h;
        }
    }
    if (kept == 0) {
        return 0;
    }
    if (kept == total && !needs_horizon) {
        ow_batch(w, p, size);
        job->bytes_out += size;
        return w->err;
    }
    /* Rebuild with the survivors, keeping everything the batch said about them. */
    trib_batch_opts_t o;
    trib_batch_opts_init(&o);
    o.base_offset = b.base_offset;
    o.partition_leader_epoch = b.partition_leader_epoch;
    o.producer_id = b.producer_id;
    o.producer_epoch = b.producer_epoch;
    o.base_sequence = b.base_sequence;
    o.codec = trib_batch_codec(&b);
    o.timestamp_type = trib_batch_timestamp_type(&b);
    o.log_append_time = b.max_timestamp;
    o.transactional = trib_batch_is_transactional(&b);
    o.use_base_timestamp = true;
    o.base_timestamp = b.base_timestamp;
    if (has_horizon || needs_horizon) {
        o.delete_horizon = true;
        o.base_timestamp = needs_horizon ? job->now + job->delete_retention_ms : horizon;
    }
    trib_buf_reset(scratch);
    trib_batch_builder_t bb;
    rc = trib_batch_builder_init(&bb, scratch, &o);
    if (rc == 0) {
        rc = trib_record_iter_init(&it, &b, NULL, MAX_DECOMPRESSED);
    } else {
        memset(&it, 0, sizeof(it));
    }
    while (rc == 0 && (rc = trib_record_iter_next(&it, &r)) == 1) {
        rc = 0;
        bool keep = true;
        if (!trib_record_bytes_is_null(r.key) && r.offset < job->map_end) {
            uint64_t h1, h2;
            key_hash(r.key.ptr, (size_t)r.key.len, &h1, &h2);
            if (map_get(map, h1, h2) > r.offset) {
                keep = false;
            }
        }
        if (keep && trib_record_bytes_is_null(r.value) && has_horizon && job->now >= horizon) {
            keep = false;
        }
        if (!keep) {
            continue;
        }
        if ((size_t)r.header_count > hv->cap) {
            size_t ncap = (size_t)r.header_count;
            trib_record_header_t *nv = realloc(hv->v, ncap * sizeof(*nv));
            if (!nv) {
                rc = -ENOMEM;
                break;
            }
            hv->v = nv;
            hv->cap = ncap;
        }
        trib_record_header_iter_t hi;
        trib_record_header_iter_init(&hi, &r);
        size_t nh = 0;
        while (nh < (size_t)r.header_count && trib_record_header_iter_next(&hi, &hv->v[nh]) == 1) {
            nh++;
        }
        trib_record_in_t in = {
            .key = r.key,
            .value = r.value,
            /* The original create time, whatever the batch's timestamp type. */
            .timestamp = b.base_timestamp + r.timestamp_delta,
            .headers = hv->v,
            .header_count = nh,
            .attributes = r.attributes,
        };
        rc = trib_batch_builder_add_at(&bb, r.offset_delta, &in);
    }
    trib_record_iter_fini(&it);
    if (rc == 0) {
        rc = trib_batch_builder_finish(&bb);
    }
    trib_batch_builder_fini(&bb);
    if (rc < 0) {
        return rc;
    }
    size_t n;
    const uint8_t *nb = trib_buf_flatten(scratch, &n);
    if (!nb) {
        return trib_buf_error(scratch) ? trib_buf_error(scratch) : -ENOMEM;
    }
    ow_batch(w, nb, n);
    job->bytes_out += n;
    return w->err;
}

/* Step 2 and 3 for one group of sources. */
static int clean_group(clean_job_t *job, const key_map_t *map, out_seg_t *o, hdr_vec_t *hv,
                       trib_buf_t *scratch)
{
    char path[COLL_PATH_MAX], to[COLL_PATH_MAX];
    int rc = job_path(job, o->base, COLL_LOG_SUFFIX, COLL_CLEANED_SUFFIX, path, sizeof(path));
    if (rc) {
        return rc;
    }
    out_writer_t w;
    memset(&w, 0, sizeof(w));
    w.base = o->base;
    w.next_offset = o->base;
    w.cap = 1 << 20;
    w.buf = malloc(w.cap);
    coll_index_builder_init(&w.ib, job->interval);
    w.fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (!w.buf || w.fd < 0) {
        rc = w.fd < 0 ? -errno : -ENOMEM;
        goto out;
    }
    for (size_t i = o->first; i < o->first + o->nsrc && rc == 0; i++) {
        src_seg_t *s = &job->src[i];
        batch_reader_t rd;
        if ((rc = reader_init(&rd, s->fd, s->size)) != 0) {
            break;
        }
        const uint8_t *p;
        size_t size;
        uint64_t pos;
        while ((rc = reader_next(&rd, &p, &size, &pos)) == 1) {
            rc = clean_batch(job, map, p, size, &w, hv, scratch);
            if (rc) {
                break;
            }
        }
        reader_fini(&rd);
    }
    if (rc == 0) {
        rc = ow_flush(&w);
    }
    if (rc == 0 && w.ib.err) {
        rc = w.ib.err;
    }
    if (rc == 0 && fdatasync(w.fd) != 0) {
        rc = -errno;
    }
    if (rc) {
        goto out;
    }
    coll_index_builder_finish(&w.ib, o->base);
    if ((rc = job_path(job, o->base, COLL_INDEX_SUFFIX, COLL_CLEANED_SUFFIX, path, sizeof(path))) !=
            0 ||
        (rc = coll_index_write_file(path, w.ib.oi, w.ib.oi_len, true)) != 0 ||
        (rc = job_path(job, o->base, COLL_TIMEINDEX_SUFFIX, COLL_CLEANED_SUFFIX, path,
                       sizeof(path))) != 0 ||
        (rc = coll_index_write_file(path, w.ib.ti, w.ib.ti_len, true)) != 0) {
        goto out;
    }
    /* .cleaned -> .swap: from here on, startup completes this swap. Index files first. */
    static const char *const sfx[] = {COLL_INDEX_SUFFIX, COLL_TIMEINDEX_SUFFIX, COLL_LOG_SUFFIX};
    for (size_t k = 0; k < 3 && rc == 0; k++) {
        job_path(job, o->base, sfx[k], COLL_CLEANED_SUFFIX, path, sizeof(path));
        job_path(job, o->base, sfx[k], COLL_SWAP_SUFFIX, to, sizeof(to));
        if (rename(path, to) != 0) {
            rc = -errno;
        }
    }
    o->size = w.size;
    o->next_offset = w.next_offset;
    o->max_ts = w.ib.max_ts;
    o->max_ts_offset = w.ib.max_ts_offset;
    o->last_ti_ts = w.ib.last_ti_ts;
    o->oi_entries = (uint32_t)(w.ib.oi_len / COLL_OFFSET_ENTRY_SIZE);
    o->ti_entries = (uint32_t)(w.ib.ti_len / COLL_TIME_ENTRY_SIZE);
    o->last_index_pos = w.ib.last_index_pos;
out:
    if (rc == 0) {
        o->fd = w.fd;
    } else {
        if (w.fd >= 0) {
            close(w.fd);
        }
        o->fd = -1;
    }
    coll_index_builder_fini(&w.ib);
    free(w.buf);
    return rc;
}

static void unlink_outputs(clean_job_t *job, const char *extra)
{
    static const char *const sfx[] = {COLL_LOG_SUFFIX, COLL_INDEX_SUFFIX, COLL_TIMEINDEX_SUFFIX};
    for (size_t i = 0; i < job->nout; i++) {
        for (size_t k = 0; k < 3; k++) {
            char path[COLL_PATH_MAX];
            if (job_path(job, job->out[i].base, sfx[k], extra, path, sizeof(path)) == 0) {
                unlink(path);
            }
        }
    }
}

static void clean_work(uv_work_t *req)
{
    clean_job_t *job = req->data;
    if (job->nsrc == 0) {
        return;
    }
    key_map_t map;
    int rc = map_init(&map, job->dedupe_bytes);
    if (rc) {
        job->err = rc;
        return;
    }
    key_vec_t kv = {0};
    rc = build_map(job, &map, &kv);
    free(kv.v);
    if (rc == 0) {
        /* Sources that hold mapped offsets, in groups of one segment's size. */
        size_t nclean = 0;
        while (nclean < job->nsrc && job->src[nclean].base < job->map_end) {
            nclean++;
        }
        job->out = calloc(nclean ? nclean : 1, sizeof(*job->out));
        if (!job->out) {
            rc = -ENOMEM;
        }
        for (size_t a = 0; rc == 0 && a < nclean;) {
            size_t b = a + 1;
            uint64_t bytes = job->src[a].size;
            while (b < nclean && bytes + job->src[b].size <= job->segment_bytes &&
                   job->src[b].next_base - job->src[a].base <= INT32_MAX) {
                bytes += job->src[b].size;
                b++;
            }
            out_seg_t *o = &job->out[job->nout++];
            o->base = job->src[a].base;
            o->first = a;
            o->nsrc = b - a;
            o->fd = -1;
            a = b;
        }
        hdr_vec_t hv = {0};
        trib_buf_t scratch;
        trib_buf_init(&scratch);
        for (size_t i = 0; rc == 0 && i < job->nout; i++) {
            rc = clean_group(job, &map, &job->out[i], &hv, &scratch);
        }
        trib_buf_fini(&scratch);
        free(hv.v);
        if (rc == 0 && job->nout > 0) {
            rc = trib_fsync_dir(job->dir);
        }
        if (rc == 0) {
            /* Reopen each output under its swap name for the loop to adopt. */
            for (size_t i = 0; i < job->nout; i++) {
                close(job->out[i].fd);
                job->out[i].fd = -1;
            }
            for (size_t i = 0; rc == 0 && i < job->nout; i++) {
                char path[COLL_PATH_MAX];
                job_path(job, job->out[i].base, COLL_LOG_SUFFIX, COLL_SWAP_SUFFIX, path,
                         sizeof(path));
                job->out[i].fd = open(path, O_RDWR | O_CLOEXEC);
                if (job->out[i].fd < 0) {
                    rc = -errno;
                }
            }
        }
        if (rc) {
            for (size_t i = 0; i < job->nout; i++) {
                if (job->out[i].fd >= 0) {
                    close(job->out[i].fd);
                    job->out[i].fd = -1;
                }
            }
            unlink_outputs(job, COLL_CLEANED_SUFFIX);
            unlink_outputs(job, COLL_SWAP_SUFFIX);
        }
    }
    free(map.v);
    job->err = rc;
}

/* ---- loop side --------------------------------------------------------------------------- */

typedef struct unlink_job {
    uv_work_t req;
    coll_storage_t *st;
    clean_job_t *cj;
} unlink_job_t;

static void unlink_work(uv_work_t *req)
{
    unlink_job_t *u = req->data;
    for (size_t i = 0; i < u->cj->nout; i++) {
        if (u->cj->out[i].fd >= 0) {
            close(u->cj->out[i].fd);
        }
    }
    unlink_outputs(u->cj, COLL_SWAP_SUFFIX);
}

static void unlink_after(uv_work_t *req, int status)
{
    unlink_job_t *u = req->data;
    coll_storage_t *st = u->st;
    clean_job_t *job = u->cj;
    coll_log_t *log = job->log;
    log->cleaning = false;
    if (job->cb) {
        job->cb(log, job->arg, job->err);
    }
    free(job->out);
    free(job->src);
    free(job);
    free(u);
    coll_log_maybe_reap(log);
    coll_storage_work_done(st);
}

static void rename_swap(coll_log_t *log, int64_t base)
{
    static const char *const sfx[] = {COLL_INDEX_SUFFIX, COLL_TIMEINDEX_SUFFIX, COLL_LOG_SUFFIX};
    for (size_t k = 0; k < 3; k++) {
        char from[COLL_PATH_MAX + 16], to[COLL_PATH_MAX];
        coll_segment_path(log, base, sfx[k], to, sizeof(to));
        snprintf(from, sizeof(from), "%s%s", to, COLL_SWAP_SUFFIX);
        if (rename(from, to) != 0) {
            TRIB_LOG(TRIB_LOG_ERROR, COLL_FACILITY, "rename %s: %s", from, strerror(errno));
        }
    }
}

/* Step 4: installs the cleaned segments; false if the pass went stale. */
static bool swap_in(clean_job_t *job)
{
    coll_log_t *log = job->log;
    if (job->gen != log->gen || log->failed || log->st->closing) {
        return false;
    }
    for (size_t i = 0; i < job->nsrc; i++) {
        if (job->src[i].seg->deleted) {
            return false;
        }
    }
    /* Sources of each group must still sit together in the array. */
    size_t start = 0;
    while (start < log->nsegs && log->segs[start] != job->src[0].seg) {
        start++;
    }
    size_t used = 0;
    for (size_t i = 0; i < job->nout; i++) {
        used += job->out[i].nsrc;
    }
    if (start + used > log->nsegs) {
        return false;
    }
    for (size_t j = 0; j < used; j++) {
        if (log->segs[start + j] != job->src[j].seg) {
            return false;
        }
    }
    /* New segment objects first, so nothing fails halfway through the swap. */
    coll_segment_t **news = calloc(job->nout, sizeof(*news));
    if (!news) {
        return false;
    }
    for (size_t i = 0; i < job->nout; i++) {
        news[i] = coll_segment_new(log, job->out[i].base);
        if (!news[i]) {
            for (size_t k = 0; k < i; k++) {
                coll_segment_free(news[k]);
            }
            free(news);
            return false;
        }
    }
    coll_log_remove_segments(log, start, used, "replaced by its compacted copy");
    for (size_t i = 0; i < job->nout; i++) {
        rename_swap(log, job->out[i].base);
    }
    /* Make room and insert the new segments where the sources were. */
    for (size_t i = 0; i < job->nout; i++) {
        coll_log_push_segment(log, news[i]); /* grows the array; reordered below */
    }
    size_t n = log->nsegs;
    memmove(&log->segs[start + job->nout], &log->segs[start],
            (n - job->nout - start) * sizeof(log->segs[0]));
    for (size_t i = 0; i < job->nout; i++) {
        out_seg_t *o = &job->out[i];
        coll_segment_t *s = news[i];
        s->size = o->size;
        s->synced_size = o->size;
        s->next_offset =
            i + 1 < job->nout ? job->out[i + 1].base : job->src[o->first + o->nsrc - 1].next_base;
        s->max_timestamp = o->max_ts;
        s->max_ts_offset = o->max_ts_offset;
        s->last_ti_ts = o->last_ti_ts;
        s->last_index_pos = o->last_index_pos;
        s->created_ms = job->src[o->first].seg->created_ms;
        s->clean = true;
        s->fd = o->fd;
        o->fd = -1;
        log->segs[start + i] = s;
        coll_segment_open(s);
    }
    free(news);
    return true;
}

static void clean_after(uv_work_t *req, int status)
{
    clean_job_t *job = req->data;
    coll_log_t *log = job->log;
    coll_storage_t *st = log->st;
    int err = status ? status : job->err;
    if (err && job->gen != log->gen) {
        err = -ECANCELED; /* a truncation under the pass explains any failure */
    }
    log->cleaning = false;
    for (size_t i = 0; i < job->nsrc; i++) {
        job->src[i].seg->cleaning = false;
    }
    bool swapped = false;
    if (err == 0 && job->nout > 0) {
        swapped = swap_in(job);
        st->stats.compactions += swapped;
        if (!swapped) {
            err = -ECANCELED;
        }
    }
    if (job->unreadable > 0) {
        st->stats.cleaner_unreadable_batches += job->unreadable;
        TRIB_LOG_RL(&st->rl_cleaner, TRIB_LOG_WARN, COLL_FACILITY,
                    "%s: compaction kept %" PRIu64 " unreadable batches as they are (the first "
                    "at offset %" PRId64 ": %s)",
                    log->name, job->unreadable, job->unreadable_offset, job->unreadable_why);
    }
    if (err == 0) {
        if (job->map_end > log->cleaner_point) {
            log->cleaner_point = job->map_end;
        }
        if (job->nout > 0) {
            log->tombstone_due_ms = job->min_horizon;
            TRIB_LOG(TRIB_LOG_INFO, COLL_FACILITY,
                     "%s: compacted %zu segments into %zu up to offset %" PRId64 ": %" PRIu64
                     " -> %" PRIu64 " bytes, %" PRIu64 " -> %" PRIu64 " records, %zu keys, %" PRIu64
                     " tombstones dropped",
                     log->name, job->nsrc, job->nout, job->map_end, job->bytes_in, job->bytes_out,
                     job->records_in, job->records_out, job->keys, job->tombstones_dropped);
        }
    } else if (err != -ECANCELED) {
        st->stats.cleaner_failures++;
        log->cleaner_retry_ms =
            coll_storage_now(st) + COLL_CLEANER_RETRY_FACTOR * (int64_t)st->cfg.cleaner_backoff_ms;
        TRIB_LOG_RL(&st->rl_cleaner, TRIB_LOG_ERROR, COLL_FACILITY,
                    "%s: compaction failed: %s (other logs go first; this one is tried again "
                    "in %" PRId64 " s)",
                    log->name, trib_strerror(err),
                    COLL_CLEANER_RETRY_FACTOR * (int64_t)st->cfg.cleaner_backoff_ms / 1000);
    }
    for (size_t i = 0; i < job->nsrc; i++) {
        coll_segment_release(job->src[i].seg);
    }
    bool discard = !swapped && job->nout > 0 && job->err == 0 && status == 0;
    if (discard) {
        /*
         * The pass is over once its swap files are gone: until then the log
         * stays "cleaning", so a new pass cannot write swap files of the
         * same names that this unlink would then remove.
         */
        log->cleaning = true;
        job->err = err;
        unlink_job_t *u = calloc(1, sizeof(*u));
        if (u) {
            u->req.data = u;
            u->st = st;
            u->cj = job;
            if (coll_storage_queue(st, &u->req, unlink_work, unlink_after) == 0) {
                coll_storage_work_done(st);
                return;
            }
            free(u);
        }
        /* No job: clean up here (rare). */
        unlink_job_t tmp = {.st = st, .cj = job};
        tmp.req.data = &tmp;
        unlink_work(&tmp.req);
        log->cleaning = false;
    }
    if (job->cb) {
        job->cb(log, job->arg, err);
    }
    free(job->out);
    free(job->src);
    free(job);
    coll_log_maybe_reap(log);
    coll_storage_work_done(st);
}

static int64_t seg_ts(const coll_segment_t *s)
{
    return s->max_timestamp >= 0 ? s->max_timestamp : s->created_ms;
}

/* Number of leading cleanable segments. */
static size_t cleanable_count(const coll_log_t *log, int64_t now)
{
    size_t k = 0;
    while (k + 1 < log->nsegs && log->segs[k + 1]->base_offset <= log->hw &&
           !log->segs[k]->active &&
           (log->cfg.min_compaction_lag_ms <= 0 ||
            seg_ts(log->segs[k]) <= now - log->cfg.min_compaction_lag_ms)) {
        k++;
    }
    return k;
}

double coll_cleaner_dirty_ratio(coll_log_t *log, int64_t now_ms)
{
    size_t k = cleanable_count(log, now_ms);
    if (k == 0) {
        return -1;
    }
    uint64_t clean = 0, dirty = 0;
    for (size_t i = 0; i < k; i++) {
        if (log->segs[i + 1]->base_offset <= log->cleaner_point) {
            clean += log->segs[i]->size;
        } else {
            dirty += log->segs[i]->size;
        }
    }
    if (clean + dirty == 0) {
        return -1;
    }
    return (double)dirty / (double)(clean + dirty);
}

int coll_cleaner_start(coll_log_t *log, coll_log_done_cb cb, void *arg)
{
    coll_storage_t *st = log->st;
    if (!(log->cfg.cleanup_policy & COLL_CLEANUP_COMPACT)) {
        return -EINVAL;
    }
    if (log->failed) {
        return -EROFS;
    }
    if (log->cleaning || st->closing) {
        return TRIB_ESTATE;
    }
    int64_t now = coll_storage_now(st);
    size_t k = cleanable_count(log, now);
    int64_t dirty_start = log->cleaner_point > log->log_start ? log->cleaner_point : log->log_start;
    if (k > 0 && log->segs[k]->base_offset <= dirty_start && log->tombstone_due_ms > now) {
        k = 0; /* nothing new to clean, no tombstone due: an empty pass */
    }
    clean_job_t *job = calloc(1, sizeof(*job));
    if (!job || (k > 0 && !(job->src = calloc(k, sizeof(*job->src))))) {
        free(job);
        return -ENOMEM;
    }
    job->req.data = job;
    job->log = log;
    job->gen = log->gen;
    job->dirty_start = dirty_start;
    job->now = now;
    job->delete_retention_ms = log->cfg.delete_retention_ms;
    job->dedupe_bytes = st->cfg.cleaner_dedupe_bytes;
    job->segment_bytes = log->cfg.segment_bytes;
    job->interval = log->cfg.index_interval_bytes;
    job->min_horizon = INT64_MAX;
    job->cb = cb;
    job->arg = arg;
    snprintf(job->dir, sizeof(job->dir), "%s", log->dir);
    for (size_t i = 0; i < k; i++) {
        coll_segment_t *s = log->segs[i];
        int rc = coll_segment_acquire(s);
        if (rc) {
            for (size_t j = 0; j < job->nsrc; j++) {
                job->src[j].seg->cleaning = false;
                coll_segment_release(job->src[j].seg);
            }
            free(job->src);
            free(job);
            return rc;
        }
        s->cleaning = true;
        src_seg_t *src = &job->src[job->nsrc++];
        src->seg = s;
        src->fd = s->fd;
        src->base = s->base_offset;
        src->size = s->size;
        src->next_base = log->segs[i + 1]->base_offset;
    }
    int rc = coll_storage_queue(st, &job->req, clean_work, clean_after);
    if (rc) {
        for (size_t j = 0; j < job->nsrc; j++) {
            job->src[j].seg->cleaning = false;
            coll_segment_release(job->src[j].seg);
        }
        free(job->src);
        free(job);
        return rc;
    }
    log->cleaning = true;
    return 0;
}

int coll_log_compact(coll_log_t *log, coll_log_done_cb cb, void *arg)
{
    return coll_cleaner_start(log, cb, arg);
}
