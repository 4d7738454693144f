/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Partition runtime state: what the server keeps per partition besides the
 * log itself (coll_prt_t in server_int.h): the idempotent producer state,
 * the parked fetches watching it, the largest timestamp for ListOffsets
 * MAX_TIMESTAMP, and the counters behind the per-partition metrics; and
 * the one append path that keeps them (coll_prt_append, server/partition.h).
 *
 * Attaching a partition rebuilds its producer state: the snapshot written
 * at the last clean shutdown (or the last periodic snapshot) is loaded and
 * every batch header after its offset is replayed from the log, so state
 * survives SIGKILL. Only the 61-byte batch headers are read (scan()), and
 * the snapshot keeps that scan short.
 */
#include "server/partition.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server/server_int.h"
#include "tributary/record.h"

#define SCAN_CHUNK (64u << 20)
#define MAX_DECOMPRESS (64u << 20)

static void snapshot_path(const coll_prt_t *prt, char *out, size_t n)
{
    snprintf(out, n, "%s/%s", coll_log_dir(prt->p->log), COLL_PSTATE_FILE);
}

/*
 * Applies one stored batch to the partition's state: the largest
 * timestamp, and the producer's sequence (now_ms: when the producer was
 * last seen). Returns true when something changed that the snapshot keeps.
 */
static bool account_batch(coll_prt_t *prt, const trib_batch_t *b, int64_t now_ms)
{
    bool changed = false;
    if (b->max_timestamp > prt->max_timestamp) {
        prt->max_timestamp = b->max_timestamp;
        prt->max_timestamp_base = b->base_offset;
        changed = true;
    }
    if (b->producer_id < 0 || trib_batch_is_control(b) || b->base_sequence < 0) {
        return changed;
    }
    coll_pbatch_t pb = {
        .first_seq = b->base_sequence,
        .last_seq = coll_seq_add(b->base_sequence, b->last_offset_delta),
        .first_offset = b->base_offset,
        .last_offset = trib_batch_last_offset(b),
    };
    if (coll_pstate_update(&prt->producers, b->producer_id, b->producer_epoch, &pb, now_ms) == 0) {
        changed = true;
    }
    return changed;
}

/* A batch of the log replayed into the rebuilt state. */
static void replay_batch(coll_prt_t *prt, const trib_batch_t *b)
{
    account_batch(prt, b, b->max_timestamp);
}

static uint64_t be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++) {
        v = (v << 8) | p[i];
    }
    return v;
}

/*
 * Hands the header of every batch of [from, log end) to fn. Only the
 * 61-byte headers are read (one pread each, hopping by batchLength over
 * the file ranges the storage returns), so rebuilding after a crash costs
 * one small read per batch, not a read of the data. The records fields
 * of the trib_batch_t given to fn are not set. Returns 0 or the first
 * read error.
 */
static int scan(coll_prt_t *prt, int64_t from, void (*fn)(coll_prt_t *, const trib_batch_t *))
{
    coll_log_t *log = prt->p->log;
    int64_t off = from > coll_log_start_offset(log) ? from : coll_log_start_offset(log);
    int64_t end = coll_log_end_offset(log);
    int rc = 0;
    while (off < end) {
        coll_read_t rd;
        rc = coll_log_read(log, off, SCAN_CHUNK, INT64_MAX, 0, &rd);
        if (rc != 0 || rd.len == 0) {
            coll_read_release(&rd);
            break;
        }
        size_t at = 0;
        while (at + TRIB_BATCH_HEADER_SIZE <= rd.len) {
            uint8_t h[TRIB_BATCH_HEADER_SIZE];
            ssize_t got = coll_read_copy(&rd, at, h, sizeof(h));
            if (got != (ssize_t)sizeof(h)) {
                rc = got < 0 ? (int)got : TRIB_ETRUNCATED;
                break;
            }
            trib_batch_t b;
            memset(&b, 0, sizeof(b));
            b.base_offset = (int64_t)be(h + TRIB_BATCH_OFF_BASE_OFFSET, 8);
            b.batch_length = (int32_t)be(h + TRIB_BATCH_OFF_LENGTH, 4);
            b.magic = (int8_t)h[TRIB_BATCH_OFF_MAGIC];
            b.attributes = (int16_t)be(h + TRIB_BATCH_OFF_ATTRIBUTES, 2);
            b.last_offset_delta = (int32_t)be(h + TRIB_BATCH_OFF_LAST_OFFSET_DELTA, 4);
            b.base_timestamp = (int64_t)be(h + TRIB_BATCH_OFF_BASE_TIMESTAMP, 8);
            b.max_timestamp = (int64_t)be(h + TRIB_BATCH_OFF_MAX_TIMESTAMP, 8);
            b.producer_id = (int64_t)be(h + TRIB_BATCH_OFF_PRODUCER_ID, 8);
            b.producer_epoch = (int16_t)be(h + TRIB_BATCH_OFF_PRODUCER_EPOCH, 2);
            b.base_sequence = (int32_t)be(h + TRIB_BATCH_OFF_BASE_SEQUENCE, 4);
            b.record_count = (int32_t)be(h + TRIB_BATCH_OFF_RECORDS_COUNT, 4);
            if (b.batch_length < TRIB_BATCH_MIN_LENGTH || b.magic != TRIB_BATCH_MAGIC) {
                rc = TRIB_EMALFORMED; /* the storage validated these: a bug or a torn read */
                break;
            }
            b.size = (size_t)b.batch_length + TRIB_BATCH_LOG_OVERHEAD;
            fn(prt, &b);
            at += b.size;
        }
        int64_t next = rd.next_offset;
        coll_read_release(&rd);
        if (rc != 0 || next <= off) {
            break;
        }
        off = next;
    }
    return rc;
}

static void rebuild(coll_prt_t *prt, bool quiet)
{
    coll_log_t *log = prt->p->log;
    char path[4096];
    snapshot_path(prt, path, sizeof(path));
    int64_t off = 0, mts = -1, mbase = -1;
    int64_t end = coll_log_end_offset(log);
    int rc = coll_pstate_read(&prt->producers, path, &off, &mts, &mbase);
    if (rc == 0 && off > end) {
        TRIB_LOG(quiet ? TRIB_LOG_DEBUG : TRIB_LOG_WARN, COLL_SERVER_FACILITY,
                 "%s-%d: producer snapshot at offset %" PRId64 " is past the log end %" PRId64
                 ": rebuilding from the log",
                 prt->p->topic->name, (int)prt->p->index, off, end);
        coll_pstate_clear(&prt->producers);
        /*
         * It describes a history the log no longer has (a truncation, or a
         * power loss that took the tail): once the log grows past its
         * offset again it would be taken as this history's state at the
         * next start. Gone now; the next snapshot is written from the log.
         */
        if (unlink(path) != 0 && errno != ENOENT) {
            TRIB_LOG(TRIB_LOG_WARN, COLL_SERVER_FACILITY, "%s: %s", path, strerror(errno));
        }
        rc = TRIB_EMALFORMED;
    } else if (rc != 0 && rc != TRIB_ENOT_FOUND) {
        TRIB_LOG(TRIB_LOG_WARN, COLL_SERVER_FACILITY,
                 "%s-%d: producer snapshot unreadable (%s): rebuilding from the log",
                 prt->p->topic->name, (int)prt->p->index, trib_strerror(rc));
    }
    if (rc != 0) {
        off = 0;
        mts = mbase = -1;
    }
    prt->max_timestamp = mts;
    prt->max_timestamp_base = mbase;
    if (off < end) {
        int64_t from = off > coll_log_start_offset(log) ? off : coll_log_start_offset(log);
        rc = scan(prt, from, replay_batch);
        if (rc) {
            TRIB_LOG(TRIB_LOG_ERROR, COLL_SERVER_FACILITY,
                     "%s-%d: reading the log for producer state: %s", prt->p->topic->name,
                     (int)prt->p->index, trib_strerror(rc));
        }
        if (end - from > 0) {
            TRIB_LOG(TRIB_LOG_DEBUG, COLL_SERVER_FACILITY,
                     "%s-%d: producer state rebuilt from offset %" PRId64 " (%zu producers)",
                     prt->p->topic->name, (int)prt->p->index, from, prt->producers.count);
        }
        prt->snapshot_dirty = true;
    }
}

/*
 * A single node with storage.fsync ack: the high watermark follows the
 * durable offset. One wait per partition at a time; its callback moves
 * the high watermark and asks again for what was appended meanwhile. The
 * wait outlives the partition's runtime when that goes first (prt NULL:
 * the callback frees it).
 */
struct coll_hdurable {
    coll_durable_req_t req;
    coll_prt_t *prt;
    bool busy;
};

static void hdurable_update(coll_prt_t *prt);

static void hdurable_cb(coll_durable_req_t *req, int status)
{
    struct coll_hdurable *hd = req->data;
    hd->busy = false;
    coll_prt_t *prt = hd->prt;
    if (!prt) {
        free(hd);
        return;
    }
    if (status != 0 && status != -ECANCELED) {
        /* The log refuses writes now; the high watermark stays where it is. */
        TRIB_LOG(TRIB_LOG_ERROR, COLL_SERVER_FACILITY, "%s-%d: fsync: %s", prt->p->topic->name,
                 (int)prt->p->index, trib_strerror(status));
        return;
    }
    hdurable_update(prt);
}

/* Moves the high watermark to the durable offset (waking fetches) and waits for the rest. */
static void hdurable_update(coll_prt_t *prt)
{
    coll_log_t *log = prt->p->log;
    if (!log) {
        return;
    }
    int64_t leo = coll_log_end_offset(log);
    int64_t durable = coll_log_durable_offset(log);
    int64_t hw = durable < leo ? durable : leo;
    if (hw > coll_log_high_watermark(log)) {
        coll_log_set_high_watermark(log, hw);
        /* Consumers' parked fetches re-check what they may read now. */
        coll_purgatory_hw_moved(&prt->srv->purgatory, prt);
    }
    if (hw >= leo) {
        return;
    }
    if (!prt->hdurable) {
        prt->hdurable = calloc(1, sizeof(*prt->hdurable));
        if (!prt->hdurable) {
            return;
        }
        prt->hdurable->prt = prt;
    }
    struct coll_hdurable *hd = prt->hdurable;
    if (hd->busy) {
        return; /* its callback asks again for what was appended meanwhile */
    }
    hd->req.data = hd;
    if (coll_log_wait_durable(log, leo - 1, &hd->req, hdurable_cb) == 0) {
        hd->busy = true;
    }
}

void coll_prt_durable(coll_prt_t *prt)
{
    if (!prt->leader && !coll_cluster_replicated(prt->srv->cluster) &&
        prt->srv->cfg.fsync == COLL_FSYNC_ACK) {
        hdurable_update(prt);
    }
}

void coll_prt_attach(coll_server_t *s, coll_partition_t *p)
{
    if (p->rt) {
        return;
    }
    coll_prt_t *prt = calloc(1, sizeof(*prt));
    if (!prt) {
        /* Nothing works without it; the partition answers UNKNOWN_SERVER_ERROR. */
        TRIB_LOG(TRIB_LOG_ERROR, COLL_SERVER_FACILITY, "%s-%d: out of memory", p->topic->name,
                 (int)p->index);
        return;
    }
    prt->p = p;
    prt->srv = s;
    prt->max_timestamp = prt->max_timestamp_base = -1;
    coll_pstate_init(&prt->producers);
    p->rt = prt;
    if (p->log) {
        rebuild(prt, false);
    }
}

void coll_prt_detach(coll_server_t *s, coll_partition_t *p, bool deleted)
{
    coll_prt_t *prt = p->rt;
    if (!prt) {
        return;
    }
    coll_replica_detach(prt);
    coll_purgatory_wake(&s->purgatory, prt);
    if (deleted && p->log) {
        char path[4096];
        snapshot_path(prt, path, sizeof(path));
        unlink(path);
    }
    coll_pstate_fini(&prt->producers);
    if (prt->hdurable) {
        if (prt->hdurable->busy) {
            prt->hdurable->prt = NULL; /* its callback frees it */
        } else {
            free(prt->hdurable);
        }
    }
    p->rt = NULL;
    free(prt);
}

/*
 * After an append: on a single node the high watermark moves to the log
 * end (with storage.fsync ack: to the durable offset, as its fsync
 * completes) and parked fetches wake; a replicated leader's moves with
 * the ISR (replica.c); a follower's comes from its leader.
 */
static void coll_prt_appended(coll_prt_t *prt, size_t bytes)
{
    if (prt->leader) {
        /* A replicated partition led here: the high watermark moves with the ISR. */
        coll_replica_leader_appended(prt, bytes);
        return;
    }
    if (coll_cluster_replicated(prt->srv->cluster)) {
        /* A follower's append: its high watermark comes from the leader (the fetcher sets it). */
        return;
    }
    coll_log_t *log = prt->p->log;
    if (prt->srv->cfg.fsync == COLL_FSYNC_ACK) {
        /*
         * storage.fsync ack: consumers read only what is on disk, as a
         * replicated leader caps its high watermark at its durable offset
         * (design §3). Otherwise a consumer could read a record that a
         * power loss then takes away, and the offset is reused for another
         * record after the restart. The fsync's completion moves the high
         * watermark and wakes the parked fetches (hdurable_cb).
         */
        hdurable_update(prt);
        return;
    }
    coll_log_set_high_watermark(log, coll_log_end_offset(log));
    coll_purgatory_notify(&prt->srv->purgatory, prt, bytes);
}

void coll_prt_account(coll_prt_t *prt, const void *data, size_t len, bool produce)
{
    int64_t now = coll_server_wall_ms();
    uint64_t records = 0, batches = 0;
    trib_batch_iter_t it;
    trib_batch_iter_init(&it, data, len, TRIB_BATCH_SKIP_CRC);
    trib_batch_t b;
    while (trib_batch_iter_next(&it, &b) == 1) {
        if (account_batch(prt, &b, now)) {
            prt->snapshot_dirty = true;
        }
        records += (uint64_t)(b.record_count > 0 ? b.record_count : 0);
        batches++;
    }
    prt->bytes_in += len;
    prt->records_in += records;
    prt->batches_in += batches;
    if (produce) {
        coll_metrics_t *m = &prt->srv->metrics;
        m->bytes_in += len;
        m->records_in += records;
        m->batches_in += batches;
    }
}

bool coll_prt_led_here(const coll_cluster_t *cl, const coll_partition_t *p)
{
    if (!p || !p->log || !p->rt) {
        return false;
    }
    if (!coll_cluster_replicated(cl)) {
        return true;
    }
    return coll_partition_leads(p, coll_cluster_node_id(cl)) && coll_prt(p)->leader;
}

bool coll_prt_writable(const coll_cluster_t *cl, const coll_partition_t *p)
{
    if (!coll_prt_led_here(cl, p)) {
        return false;
    }
    return !coll_cluster_replicated(cl) || coll_cluster_may_lead(cl, p);
}

int coll_prt_append(coll_partition_t *p, void *data, size_t len, unsigned flags,
                    coll_append_info_t *info)
{
    coll_prt_t *prt = coll_prt(p);
    if (!prt || !p->log) {
        return TRIB_ESTATE;
    }
    coll_append_info_t local;
    if (!info) {
        info = &local;
    }
    unsigned sflags = flags & (COLL_APPEND_CRC_VERIFIED | COLL_APPEND_LOG_APPEND_TIME);
    int rc = coll_log_append(p->log, data, len, p->leader_epoch, sflags, info);
    if (rc != 0) {
        return rc;
    }
    /*
     * The headers as stored: offsets (and with LogAppendTime, maxTimestamp)
     * were stamped in place, and the storage checked every batch.
     */
    coll_prt_account(prt, data, len, (flags & COLL_PRT_APPEND_PRODUCE) != 0);
    coll_prt_appended(prt, len);
    return 0;
}

int coll_prt_append_records(coll_partition_t *p, const trib_record_in_t *recs, size_t n,
                            coll_append_info_t *info)
{
    trib_buf_t out;
    trib_buf_init(&out);
    trib_batch_opts_t o;
    trib_batch_opts_init(&o);
    trib_batch_builder_t bb;
    int rc = trib_batch_builder_init(&bb, &out, &o);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        rc = trib_batch_builder_add(&bb, &recs[i]);
    }
    if (rc == 0) {
        rc = trib_batch_builder_finish(&bb);
    }
    trib_batch_builder_fini(&bb);
    size_t len = 0;
    const uint8_t *flat = rc == 0 ? trib_buf_flatten(&out, &len) : NULL;
    /* A copy the storage may stamp (offsets, leader epoch) in place. */
    uint8_t *data = flat ? malloc(len) : NULL;
    if (rc == 0 && !data) {
        rc = -ENOMEM;
    }
    if (rc == 0) {
        memcpy(data, flat, len);
        rc = coll_prt_append(p, data, len, COLL_APPEND_CRC_VERIFIED, info);
    }
    free(data);
    trib_buf_fini(&out);
    return rc;
}

void coll_prt_truncated(coll_prt_t *prt)
{
    /*
     * The producer state may remember batches that are gone: rebuilt from
     * the snapshot if it is still below the log end, else from the whole
     * log (a snapshot past the end is expected here, not a warning).
     */
    coll_pstate_clear(&prt->producers);
    rebuild(prt, true);
    coll_purgatory_wake(&prt->srv->purgatory, prt);
}

int coll_prt_snapshot(coll_prt_t *prt, bool force)
{
    if (!prt->p->log || (!prt->snapshot_dirty && !force)) {
        return 0;
    }
    char path[4096];
    snapshot_path(prt, path, sizeof(path));
    int rc = coll_pstate_write(&prt->producers, path, coll_log_end_offset(prt->p->log),
                               prt->max_timestamp, prt->max_timestamp_base);
    if (rc) {
        TRIB_LOG(TRIB_LOG_WARN, COLL_SERVER_FACILITY, "%s: %s", path, trib_strerror(rc));
        return rc;
    }
    prt->snapshot_dirty = false;
    return 0;
}

static void replay_max(coll_prt_t *prt, const trib_batch_t *b)
{
    if (b->max_timestamp > prt->max_timestamp) {
        prt->max_timestamp = b->max_timestamp;
        prt->max_timestamp_base = b->base_offset;
    }
}

int coll_prt_max_timestamp(coll_prt_t *prt, int64_t *offset, int64_t *timestamp)
{
    coll_log_t *log = prt->p->log;
    *offset = *timestamp = -1;
    if (prt->max_timestamp >= 0 && prt->max_timestamp_base < coll_log_start_offset(log)) {
        /* The batch holding the maximum went with retention: find the new one. */
        prt->max_timestamp = prt->max_timestamp_base = -1;
        int rc = scan(prt, coll_log_start_offset(log), replay_max);
        if (rc) {
            return rc;
        }
        prt->snapshot_dirty = true;
    }
    if (prt->max_timestamp < 0) {
        return 0;
    }
    coll_read_t rd;
    int rc = coll_log_read(log, prt->max_timestamp_base, TRIB_BATCH_HEADER_SIZE, INT64_MAX, 0, &rd);
    if (rc != 0 || rd.len == 0) {
        coll_read_release(&rd);
        return rc;
    }
    /* Only the first batch of the result is wanted; it may be followed by others. */
    uint8_t hdr[TRIB_BATCH_HEADER_SIZE];
    ssize_t got = coll_read_copy(&rd, 0, hdr, sizeof(hdr));
    trib_batch_t b;
    if (got != (ssize_t)sizeof(hdr)) {
        coll_read_release(&rd);
        return got < 0 ? (int)got : TRIB_ETRUNCATED;
    }
    int32_t blen = (int32_t)(((uint32_t)hdr[8] << 24) | ((uint32_t)hdr[9] << 16) |
                             ((uint32_t)hdr[10] << 8) | hdr[11]);
    size_t size = (size_t)blen + TRIB_BATCH_LOG_OVERHEAD;
    uint8_t *buf = blen > 0 && size <= rd.len ? malloc(size) : NULL;
    if (!buf) {
        coll_read_release(&rd);
        return -ENOMEM;
    }
    got = coll_read_copy(&rd, 0, buf, size);
    coll_read_release(&rd);
    rc = got == (ssize_t)size ? trib_batch_parse(&b, buf, size, TRIB_BATCH_SKIP_CRC) : -EIO;
    if (rc == 0) {
        *timestamp = b.max_timestamp;
        *offset = trib_batch_last_offset(&b);
        if (!(b.attributes & TRIB_BATCH_ATTR_LOG_APPEND_TIME)) {
            trib_record_iter_t it;
            trib_record_t rec;
            if (trib_record_iter_init(&it, &b, NULL, MAX_DECOMPRESS) == 0) {
                while (trib_record_iter_next(&it, &rec) == 1) {
                    if (rec.timestamp == b.max_timestamp) {
                        *offset = rec.offset;
                        break;
                    }
                }
            }
            trib_record_iter_fini(&it);
        } else {
            *offset = b.base_offset;
        }
    }
    free(buf);
    return rc;
}
