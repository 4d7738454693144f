/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fetch (key 1), versions 4-12 (topics by name; 13+ use topic ids).
 *
 * Whole stored batches are returned, from the batch holding FetchOffset
 * (clients skip the records before it), up to the high watermark, which
 * is the log end on a single node. Limits, as Kafka's: PartitionMaxBytes
 * per partition and MaxBytes for the response, both soft for the first
 * batch of the first partition that has data (so a batch larger than the
 * limits still makes progress) and hard after it.
 *
 * Long poll: when fewer than MinBytes are available and MaxWaitMs > 0 the
 * request parks in the purgatory (purgatory.c) until appends bring enough
 * bytes, a watched partition goes away, or MaxWaitMs passes; then the
 * logs are read again and whatever is there is returned. A partition
 * error (unknown partition, OFFSET_OUT_OF_RANGE ...) answers at once.
 *
 * Sessions (KIP-227) are declined: SessionId 0 is always returned, so
 * clients send full fetches; a request naming a session gets
 * FETCH_SESSION_ID_NOT_FOUND, SessionId 0 with an epoch above 0
 * INVALID_FETCH_SESSION_EPOCH. ForgottenTopicsData is ignored.
 *
 * Isolation: no transactions, so LastStableOffset = HighWatermark for
 * both levels; AbortedTransactions is null for read_uncommitted and empty
 * for read_committed.
 *
 * The bytes are copied from the page cache into the response with pread
 * (coll_read_copy) and written with writev; sendfile for plaintext
 * connections is a later optimisation.
 */
#include "server/server_int.h"

#include <string.h>

#include "kafka/gen/kafka_messages.h"
#include "tributary/record.h"

static uint64_t watch_serial;

typedef struct fetch_part {
    coll_partition_t *p; /* NULL on error */
    int16_t error;
} fetch_part_t;

static int64_t lim(int32_t v)
{
    return v < 0 ? 0 : v;
}

/* The request's MaxBytes within the broker's fetch.max.bytes. */
static int64_t response_max(const coll_req_t *r, const FetchRequest *req)
{
    int64_t m = lim(req->MaxBytes);
    int64_t cap = r->srv->cfg.fetch_max_bytes;
    return cap > 0 && m > cap ? cap : m;
}

/* Resolves a partition; returns NULL with the error when it cannot be read. */
static coll_partition_t *resolve(coll_req_t *r, const FetchRequest_FetchTopic *ft,
                                 const FetchRequest_FetchPartition *fp, int16_t *error)
{
    coll_topic_t *t = coll_find_topic(r, ft->Topic, false, error);
    if (!t) {
        return NULL;
    }
    coll_partition_t *p = coll_cluster_partition(t, fp->Partition);
    if (!p) {
        *error = TRIB_KAFKA_UNKNOWN_TOPIC_OR_PARTITION;
        return NULL;
    }
    if (!p->log || !coll_prt(p)) {
        *error = TRIB_KAFKA_KAFKA_STORAGE_ERROR;
        return NULL;
    }
    *error = coll_check_leader_epoch(p, r->api_version >= 9 ? fp->CurrentLeaderEpoch : -1);
    return *error == TRIB_KAFKA_NONE ? p : NULL;
}

/*
 * Bytes a full fetch would return now, without copying; *error when a
 * partition would answer with an error (the fetch must not wait then).
 */
static int64_t available(coll_req_t *r, bool *error)
{
    const FetchRequest *req = r->body;
    int64_t total = 0, remaining = response_max(r, req);
    *error = false;
    for (int32_t i = 0; i < req->Topics.count; i++) {
        const FetchRequest_FetchTopic *ft = &req->Topics.items[i];
        for (int32_t k = 0; k < ft->Partitions.count; k++) {
            const FetchRequest_FetchPartition *fp = &ft->Partitions.items[k];
            int16_t e;
            coll_partition_t *p = resolve(r, ft, fp, &e);
            if (!p) {
                *error = true;
                continue;
            }
            coll_log_t *log = p->log;
            if (fp->FetchOffset < coll_log_start_offset(log) ||
                fp->FetchOffset > coll_log_high_watermark(log)) {
                *error = true;
                continue;
            }
            int64_t max = lim(fp->PartitionMaxBytes);
            if (max > remaining) {
                max = remaining;
            }
            if (max <= 0 && total > 0) {
                continue;
            }
            coll_read_t rd;
            int rc = coll_log_read(log, fp->FetchOffset, (size_t)max, coll_log_high_watermark(log),
                                   total > 0 ? COLL_READ_STRICT : 0, &rd);
            if (rc != 0) {
                *error = true;
            } else {
                total += (int64_t)rd.len;
                remaining -= (int64_t)rd.len;
            }
            coll_read_release(&rd);
        }
    }
    return total;
}

static void fill_partition(coll_req_t *r, const FetchRequest *req,
                           const FetchRequest_FetchTopic *ft, const FetchRequest_FetchPartition *fp,
                           FetchResponse_PartitionData *out, int64_t *total, int64_t *remaining)
{
    FetchResponse_PartitionData_init(out);
    out->PartitionIndex = fp->Partition;
    out->HighWatermark = -1;
    out->LastStableOffset = -1;
    out->LogStartOffset = -1;
    out->PreferredReadReplica = -1;
    out->Records.ptr = (const uint8_t *)"";
    out->Records.len = 0;
    if (req->IsolationLevel == 1) {
        out->AbortedTransactions.items = NULL;
        out->AbortedTransactions.count = 0;
    } else {
        out->AbortedTransactions.count = -1;
    }
    int16_t e;
    coll_partition_t *p = resolve(r, ft, fp, &e);
    if (!p) {
        out->ErrorCode = e;
        coll_req_note_error(r, e);
        return;
    }
    coll_log_t *log = p->log;
    coll_prt_t *prt = coll_prt(p);
    int64_t hw = coll_log_high_watermark(log);
    out->HighWatermark = hw;
    out->LastStableOffset = hw;
    out->LogStartOffset = coll_log_start_offset(log);
    int64_t max = lim(fp->PartitionMaxBytes);
    if (max > *remaining) {
        max = *remaining;
    }
    if (max <= 0 && *total > 0) {
        return;
    }
    coll_read_t rd;
    int rc = coll_log_read(log, fp->FetchOffset, (size_t)max, hw, *total > 0 ? COLL_READ_STRICT : 0,
                           &rd);
    if (rc != 0) {
        out->ErrorCode = coll_kafka_error_from(rc);
        coll_read_release(&rd);
        coll_req_note_error(r, out->ErrorCode);
        return;
    }
    if (rd.len > 0) {
        uint8_t *buf = trib_arena_alloc(&r->arena, rd.len);
        ssize_t got = buf ? coll_read_copy(&rd, 0, buf, rd.len) : -1;
        if (got > 0) {
            out->Records.ptr = buf;
            out->Records.len = (int32_t)got;
            *total += got;
            *remaining -= got;
            uint64_t records = 0;
            trib_batch_iter_t it;
            trib_batch_iter_init(&it, buf, (size_t)got, TRIB_BATCH_SKIP_CRC);
            trib_batch_t b;
            while (trib_batch_iter_next(&it, &b) == 1) {
                records += (uint64_t)b.record_count;
            }
            prt->bytes_out += (uint64_t)got;
            prt->records_out += records;
            r->srv->metrics.bytes_out += (uint64_t)got;
            r->srv->metrics.records_out += records;
        } else if (got < 0) {
            out->ErrorCode = TRIB_KAFKA_KAFKA_STORAGE_ERROR;
            coll_req_note_error(r, out->ErrorCode);
        }
    }
    coll_read_release(&rd);
}

static void respond(coll_req_t *r, int16_t top_error)
{
    const FetchRequest *req = r->body;
    FetchResponse *resp = coll_req_alloc(r, sizeof(*resp));
    if (!resp) {
        coll_req_reject(r, "out of memory");
        return;
    }
    FetchResponse_init(resp);
    resp->ErrorCode = top_error;
    resp->SessionId = 0;
    if (top_error != TRIB_KAFKA_NONE) {
        coll_req_note_error(r, top_error);
        resp->Responses.count = 0;
        coll_req_respond(r, &FetchResponse_codec, resp);
        return;
    }
    int32_t nt = req->Topics.count > 0 ? req->Topics.count : 0;
    FetchResponse_FetchableTopicResponse *topics = coll_req_alloc(r, (size_t)nt * sizeof(*topics));
    if (nt && !topics) {
        coll_req_reject(r, "out of memory");
        return;
    }
    int64_t total = 0, remaining = response_max(r, req);
    for (int32_t i = 0; i < nt; i++) {
        const FetchRequest_FetchTopic *ft = &req->Topics.items[i];
        FetchResponse_FetchableTopicResponse *to = &topics[i];
        FetchResponse_FetchableTopicResponse_init(to);
        to->Topic = ft->Topic;
        to->TopicId = ft->TopicId;
        int32_t np = ft->Partitions.count > 0 ? ft->Partitions.count : 0;
        FetchResponse_PartitionData *parts = coll_req_alloc(r, (size_t)np * sizeof(*parts));
        if (np && !parts) {
            coll_req_reject(r, "out of memory");
            return;
        }
        for (int32_t k = 0; k < np; k++) {
            fill_partition(r, req, ft, &ft->Partitions.items[k], &parts[k], &total, &remaining);
        }
        to->Partitions.items = parts;
        to->Partitions.count = np;
    }
    resp->Responses.items = topics;
    resp->Responses.count = nt;
    coll_req_respond(r, &FetchResponse_codec, resp);
}

static void parked_done(coll_parked_t *pk)
{
    coll_req_t *r = pk->req;
    r->parked = NULL;
    respond(r, TRIB_KAFKA_NONE);
}

/* Parks the fetch; false when it cannot (then it is answered at once). */
static bool park(coll_req_t *r, int64_t have)
{
    const FetchRequest *req = r->body;
    coll_server_t *s = r->srv;
    size_t n = 0;
    for (int32_t i = 0; i < req->Topics.count; i++) {
        n += (size_t)(req->Topics.items[i].Partitions.count > 0
                          ? req->Topics.items[i].Partitions.count
                          : 0);
    }
    coll_parked_t *pk = coll_req_alloc(r, sizeof(*pk));
    coll_watch_t *w = coll_req_alloc(r, (n ? n : 1) * sizeof(*w));
    if (!pk || !w) {
        return false;
    }
    uint64_t serial = ++watch_serial;
    size_t nw = 0;
    for (int32_t i = 0; i < req->Topics.count; i++) {
        const FetchRequest_FetchTopic *ft = &req->Topics.items[i];
        for (int32_t k = 0; k < ft->Partitions.count; k++) {
            int16_t e;
            coll_partition_t *p = resolve(r, ft, &ft->Partitions.items[k], &e);
            coll_prt_t *prt = p ? coll_prt(p) : NULL;
            if (!prt || prt->watch_mark == serial) {
                continue;
            }
            prt->watch_mark = serial;
            w[nw].prt = prt;
            nw++;
        }
    }
    pk->req = r;
    pk->watches = w;
    pk->nwatches = nw;
    pk->bytes = have;
    pk->min_bytes = req->MinBytes;
    pk->complete = parked_done;
    uint64_t now = uv_now(s->loop);
    pk->deadline_ms = now + (uint64_t)req->MaxWaitMs;
    if (coll_purgatory_park(&s->purgatory, pk, now) != 0) {
        return false;
    }
    r->parked = pk;
    return true;
}

void coll_api_fetch(coll_req_t *r)
{
    const FetchRequest *req = r->body;
    if (r->api_version >= 7) {
        if (req->SessionId != 0) {
            respond(r, TRIB_KAFKA_FETCH_SESSION_ID_NOT_FOUND);
            return;
        }
        if (req->SessionEpoch > 0) {
            respond(r, TRIB_KAFKA_INVALID_FETCH_SESSION_EPOCH);
            return;
        }
    }
    if (req->MaxWaitMs > 0 && req->MinBytes > 0 && !r->srv->stopping) {
        bool error;
        int64_t have = available(r, &error);
        if (!error && have < req->MinBytes && park(r, have)) {
            return;
        }
    }
    respond(r, TRIB_KAFKA_NONE);
}
