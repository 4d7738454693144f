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
 * INVALID_FETCH_SESSION_EPOCH. ForgottenTopicsData is ignored. Measured
 * before declining them (2-vCPU VM, load average 9-10 from other builds):
 * a full fetch of 1000 partitions with nothing new is a 16 KB request and
 * a 30 KB response and costs the collector 100-150 us of CPU, against
 * 17-37 us for one partition. A librdkafka consumer long-polling 1000
 * partitions while ~60-90 records/s trickle in fetches ~50-80 times a
 * second; the collector then uses 10-12% of a core (4% for the same
 * trickle on one partition), but a profile shows 88% of that in the
 * kernel for the produce side (fsync for acks=all, page faults on new
 * time indexes) and under 8% in the collector's own code, the whole fetch
 * path (decode, resolve, park, respond) included. A session saves only
 * the decoding and encoding of unchanged partitions, a part of that 8%:
 * under 1% of a core per such consumer, not worth the session cache, its
 * eviction rules and their tests.
 *
 * Replicas: on a cluster only the partition's leader serves
 * (NOT_LEADER_OR_FOLLOWER elsewhere, after the KIP-320 CurrentLeaderEpoch
 * check). A fetch with ReplicaId >= 0 comes from a follower: it must be a
 * replica of the partition, is served up to the log end instead of the
 * high watermark, and its FetchOffset is recorded as the follower's log
 * end before anything is read (server/replica.c), which may move the high
 * watermark; such a fetch is then answered at once. A follower's parked
 * fetch wakes on appends and on high watermark moves; a consumer's only
 * when the high watermark moves (re-checking MinBytes). A consumer between
 * the high watermark and the log end gets an empty answer, parked like one
 * at the end. With the local backend ReplicaId is not looked at.
 *
 * Reassignment throttle (cluster.leader.replication.throttled.rate, as
 * Kafka's leader-side rate): a follower that a reassignment is adding and
 * that is not in the ISR yet gets, over all such partitions, at most the
 * rate's bytes per second from this leader (a token bucket holding up to
 * one second's worth; a first batch larger than what is left is sent
 * whole and the bucket goes below zero). Nothing for it while the bucket
 * is empty: the fetch parks as an empty one. Followers in the ISR are
 * never throttled.
 *
 * Isolation: no transactions, so LastStableOffset = HighWatermark for
 * both levels; AbortedTransactions is null for read_uncommitted and empty
 * for read_committed.
 *
 * Zero copy: the response is framing bytes around file ranges of whole
 * batches (coll_zresp_t), sent with sendfile(2) by conn.c; a partition's
 * records may continue into the next segments (up to FETCH_MAX_RANGES)
 * when the limits leave room. A request's arena holds no record bytes.
 */
#include "server/server_int.h"

#include <string.h>

#include "kafka/gen/kafka_messages.h"

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

/*
 * A follower's fetch (ReplicaId >= 0 on a replicated cluster): served up
 * to the log end, not the high watermark. With the local backend
 * ReplicaId is not looked at.
 */
static bool from_replica(const coll_req_t *r)
{
    const FetchRequest *req = r->body;
    return req->ReplicaId >= 0 && coll_cluster_replicated(r->srv->cluster);
}

/* Where reads stop: the log end for followers, the high watermark for consumers. */
static int64_t read_limit(const coll_req_t *r, coll_log_t *log)
{
    return from_replica(r) ? coll_log_end_offset(log) : coll_log_high_watermark(log);
}

/*
 * True when this fetch is a follower's for a partition a reassignment is
 * adding it to (and it is not in the ISR yet): its catch-up is what
 * cluster.leader.replication.throttled.rate limits.
 */
static bool throttled(const coll_req_t *r, const coll_partition_t *p)
{
    const FetchRequest *req = r->body;
    if (r->srv->cfg.reassignment_throttle == 0 || !from_replica(r) ||
        coll_partition_in_isr(p, req->ReplicaId)) {
        return false;
    }
    int32_t add[COLL_REASSIGN_MAX_REPLICAS], rm[COLL_REASSIGN_MAX_REPLICAS], na, nr;
    if (!coll_cluster_reassignment(r->srv->cluster, p->topic, p->index, add, &na, rm, &nr)) {
        return false;
    }
    for (int32_t k = 0; k < na; k++) {
        if (add[k] == req->ReplicaId) {
            return true;
        }
    }
    return false;
}

/* Bytes the throttle allows now: the bucket fills at the rate, up to one second's worth. */
static int64_t throttle_quota(coll_server_t *s)
{
    coll_throttle_t *T = &s->throttle;
    uint64_t now = uv_now(s->loop);
    double rate = (double)s->cfg.reassignment_throttle;
    if (T->last_ms == 0) {
        T->tokens = 0;
        T->last_ms = now;
    } else if (now > T->last_ms) {
        T->tokens += rate * (double)(now - T->last_ms) / 1000.0;
        if (T->tokens > rate) {
            T->tokens = rate;
        }
        T->last_ms = now;
    }
    return T->tokens >= 1.0 ? (int64_t)T->tokens : 0;
}

/*
 * Authorization: a follower needs CLUSTER_ACTION on the cluster, a
 * consumer READ on the topic; else TOPIC_AUTHORIZATION_FAILED (Kafka's
 * answer for both). `note` counts and logs a refusal (once per request).
 */
static bool may_fetch(coll_req_t *r, const FetchRequest_FetchTopic *ft, bool note)
{
    trib_kstr_t name = ft->Topic;
    const char *n = name.len > 0 ? name.ptr : "";
    size_t len = name.len > 0 ? (size_t)name.len : 0;
    if (from_replica(r)) {
        return (note ? coll_authorized : coll_authorized_quiet)(
            r, COLL_OP_CLUSTER_ACTION, COLL_RES_CLUSTER, COLL_ACL_CLUSTER_NAME,
            sizeof(COLL_ACL_CLUSTER_NAME) - 1);
    }
    return (note ? coll_authorized : coll_authorized_quiet)(r, COLL_OP_READ, COLL_RES_TOPIC, n,
                                                            len);
}

/* Resolves a partition; returns NULL with the error when it cannot be read. */
static coll_partition_t *resolve(coll_req_t *r, const FetchRequest_FetchTopic *ft,
                                 const FetchRequest_FetchPartition *fp, int16_t *error)
{
    if (!may_fetch(r, ft, false)) {
        *error = TRIB_KAFKA_TOPIC_AUTHORIZATION_FAILED;
        return NULL;
    }
    coll_topic_t *t = coll_find_topic(r, ft->Topic, false, error);
    if (!t) {
        return NULL;
    }
    coll_partition_t *p = coll_cluster_partition(t, fp->Partition);
    if (!p) {
        *error = TRIB_KAFKA_UNKNOWN_TOPIC_OR_PARTITION;
        return NULL;
    }
    *error = coll_check_partition(r, p, r->api_version >= 9 ? fp->CurrentLeaderEpoch : -1);
    if (*error == TRIB_KAFKA_NONE && from_replica(r) &&
        !coll_partition_is_replica(p, ((const FetchRequest *)r->body)->ReplicaId)) {
        *error = TRIB_KAFKA_NOT_LEADER_OR_FOLLOWER;
    }
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
            int64_t limit = read_limit(r, log);
            /* Between the high watermark and the log end a consumer waits (as Kafka's). */
            if (fp->FetchOffset < coll_log_start_offset(log) ||
                fp->FetchOffset > coll_log_end_offset(log)) {
                *error = true;
                continue;
            }
            if (fp->FetchOffset >= limit) {
                continue;
            }
            int64_t max = lim(fp->PartitionMaxBytes);
            if (max > remaining) {
                max = remaining;
            }
            if (throttled(r, p)) {
                int64_t q = throttle_quota(r->srv);
                if (q <= 0) {
                    continue; /* nothing for this replica until the budget fills again */
                }
                max = max > q ? q : max;
            }
            if (max <= 0 && total > 0) {
                continue;
            }
            coll_read_t rd;
            int rc = coll_log_read(log, fp->FetchOffset, (size_t)max, limit,
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

/* Most segments one partition's records may span in one response. */
#define FETCH_MAX_RANGES 8

/* Kafka's array, string and bytes lengths: compact (uvarint n+1) in flexible versions. */
static void put_len(coll_zresp_t *z, bool flex, int32_t n)
{
    if (flex) {
        coll_zresp_put_uvarint(z, n < 0 ? 0 : (uint64_t)n + 1);
    } else {
        coll_zresp_put_i32(z, n);
    }
}

static void put_str(coll_zresp_t *z, bool flex, trib_kstr_t s)
{
    if (flex) {
        coll_zresp_put_uvarint(z, s.len < 0 ? 0 : (uint64_t)s.len + 1);
    } else {
        coll_zresp_put_i16(z, (int16_t)s.len);
    }
    if (s.len > 0) {
        coll_zresp_put(z, s.ptr, (size_t)s.len);
    }
}

/*
 * One PartitionData: its fields, then its records as file ranges of whole
 * batches, possibly from several segments in a row (each range holds its
 * segment until it is sent).
 */
static void fill_partition(coll_req_t *r, coll_zresp_t *z, const FetchRequest *req,
                           const FetchRequest_FetchTopic *ft, const FetchRequest_FetchPartition *fp,
                           int64_t *total, int64_t *remaining)
{
    int16_t v = r->api_version;
    bool flex = v >= 12;
    int16_t error = TRIB_KAFKA_NONE;
    int64_t hw = -1, lso = -1, log_start = -1;
    coll_read_t rds[FETCH_MAX_RANGES];
    int nr = 0;
    size_t got = 0;
    coll_prt_t *prt = NULL;
    coll_partition_t *p = resolve(r, ft, fp, &error);
    if (p) {
        coll_log_t *log = p->log;
        prt = coll_prt(p);
        hw = coll_log_high_watermark(log);
        lso = hw;
        int64_t limit = read_limit(r, log);
        log_start = coll_log_start_offset(log);
        int64_t max = lim(fp->PartitionMaxBytes);
        if (max > *remaining) {
            max = *remaining;
        }
        bool thr = throttled(r, p);
        int64_t q = thr ? throttle_quota(r->srv) : 0;
        if (thr) {
            max = max > q ? q : max;
        }
        int64_t at = fp->FetchOffset;
        while (nr < FETCH_MAX_RANGES && (!thr || q > 0)) {
            /* Soft only for the first batch of the response. */
            unsigned flags = *total + (int64_t)got > 0 ? COLL_READ_STRICT : 0;
            size_t room = max > (int64_t)got ? (size_t)max - got : 0;
            if (room == 0 && flags) {
                break;
            }
            int rc = coll_log_read(log, at, room, limit, flags, &rds[nr]);
            if (rc != 0 || rds[nr].len == 0) {
                coll_read_release(&rds[nr]);
                if (rc != 0 && nr == 0) {
                    error = coll_kafka_error_from(rc);
                }
                break;
            }
            got += rds[nr].len;
            at = rds[nr].next_offset;
            nr++;
            if (at >= limit) {
                break;
            }
        }
        if (thr) {
            /* A first batch larger than the budget is sent whole: the budget goes below 0. */
            r->srv->throttle.tokens -= (double)got;
            r->srv->throttle.throttled_bytes += got;
            r->srv->throttle.throttled_fetches++;
        }
    }
    coll_req_note_error(r, error);
    coll_zresp_put_i32(z, fp->Partition);
    coll_zresp_put_i16(z, error);
    coll_zresp_put_i64(z, hw);
    coll_zresp_put_i64(z, lso);
    if (v >= 5) {
        coll_zresp_put_i64(z, log_start);
    }
    /* AbortedTransactions: null for read_uncommitted, empty for read_committed. */
    put_len(z, flex, req->IsolationLevel == 1 ? 0 : -1);
    if (v >= 11) {
        coll_zresp_put_i32(z, -1); /* PreferredReadReplica */
    }
    put_len(z, flex, (int32_t)got);
    /* Records by offsets: exact for logs without gaps (all but compacted topics). */
    uint64_t records = nr > 0 ? (uint64_t)(rds[nr - 1].next_offset - rds[0].first_offset) : 0;
    for (int i = 0; i < nr; i++) {
        coll_zresp_file(z, &rds[i]); /* the records are sent from the file */
    }
    if (flex) {
        coll_zresp_put_uvarint(z, 0); /* no tagged fields */
    }
    if (got > 0) {
        *total += (int64_t)got;
        *remaining -= (int64_t)got;
        prt->bytes_out += got;
        prt->records_out += records;
        r->srv->metrics.bytes_out += got;
        r->srv->metrics.records_out += records;
    }
}

/*
 * The response, encoded here rather than by the generated codec so that
 * record data can stay in the files: versions 4-12 (12 is flexible).
 *
 *   header     CorrelationId int32 [v12: tags]
 *   body       ThrottleTimeMs int32 | v7+: ErrorCode int16, SessionId int32
 *              Responses [Topic string | Partitions [PartitionData] | v12: tags]
 *              v12: tags
 *   PartitionData  PartitionIndex int32 | ErrorCode int16 | HighWatermark int64
 *              LastStableOffset int64 | v5+: LogStartOffset int64
 *              AbortedTransactions nullable array | v11+: PreferredReadReplica int32
 *              Records nullable bytes | v12: tags
 *
 * Arrays, strings and bytes are compact in v12; nothing else is tagged.
 * test_server.c (test_fetch_encoding) checks these bytes against the
 * generated codec for every version.
 */
void coll_fetch_encode_header(coll_zresp_t *z, int16_t v, int32_t correlation_id, int16_t top_error)
{
    coll_zresp_put_i32(z, correlation_id);
    if (v >= 12) {
        coll_zresp_put_uvarint(z, 0);
    }
    coll_zresp_put_i32(z, 0); /* ThrottleTimeMs */
    if (v >= 7) {
        coll_zresp_put_i16(z, top_error);
        coll_zresp_put_i32(z, 0); /* SessionId: sessions are declined */
    }
}

static void respond(coll_req_t *r, int16_t top_error)
{
    const FetchRequest *req = r->body;
    int16_t v = r->api_version;
    bool flex = v >= 12;
    coll_zresp_t *z = coll_req_zresp(r);
    if (!z) {
        coll_req_reject(r, "out of memory");
        return;
    }
    coll_fetch_encode_header(z, v, r->correlation_id, top_error);
    if (top_error != TRIB_KAFKA_NONE) {
        coll_req_note_error(r, top_error);
        put_len(z, flex, 0);
    } else {
        int32_t nt = req->Topics.count > 0 ? req->Topics.count : 0;
        int64_t total = 0, remaining = response_max(r, req);
        put_len(z, flex, nt);
        for (int32_t i = 0; i < nt; i++) {
            const FetchRequest_FetchTopic *ft = &req->Topics.items[i];
            int32_t np = ft->Partitions.count > 0 ? ft->Partitions.count : 0;
            put_str(z, flex, ft->Topic);
            put_len(z, flex, np);
            for (int32_t k = 0; k < np; k++) {
                fill_partition(r, z, req, ft, &ft->Partitions.items[k], &total, &remaining);
            }
            if (flex) {
                coll_zresp_put_uvarint(z, 0);
            }
        }
    }
    if (flex) {
        coll_zresp_put_uvarint(z, 0);
    }
    coll_req_respond_zresp(r);
}

static void parked_done(coll_parked_t *pk)
{
    coll_req_t *r = pk->req;
    r->parked = NULL;
    respond(r, TRIB_KAFKA_NONE);
}

/* A consumer's parked fetch after a high watermark move: bytes readable now, -1 on an error. */
static int64_t parked_recheck(coll_parked_t *pk)
{
    bool error;
    int64_t have = available(pk->req, &error);
    return error ? -1 : have;
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
    pk->replica = from_replica(r);
    pk->recheck = pk->replica ? NULL : parked_recheck;
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
    /*
     * A follower's FetchOffset is its log end: recorded once per request,
     * before anything is read, so the high watermark in the answer counts
     * it. A fetch that moved the high watermark is answered at once: the
     * follower learns the new one without waiting for the next append.
     */
    bool hw_moved = false;
    for (int32_t i = 0; i < req->Topics.count && r->srv->cfg.authorizer; i++) {
        (void)may_fetch(r, &req->Topics.items[i], true); /* counts and logs refusals */
    }
    if (from_replica(r)) {
        for (int32_t i = 0; i < req->Topics.count; i++) {
            const FetchRequest_FetchTopic *ft = &req->Topics.items[i];
            for (int32_t k = 0; k < ft->Partitions.count; k++) {
                const FetchRequest_FetchPartition *fp = &ft->Partitions.items[k];
                int16_t e;
                coll_partition_t *p = resolve(r, ft, fp, &e);
                bool moved = false;
                if (p) {
                    coll_replica_follower_fetch(coll_prt(p), req->ReplicaId, fp->FetchOffset,
                                                &moved);
                }
                hw_moved |= moved;
            }
        }
    }
    if (req->MaxWaitMs > 0 && req->MinBytes > 0 && !r->srv->stopping && !hw_moved) {
        bool error;
        int64_t have = available(r, &error);
        if (!error && have < req->MinBytes && park(r, have)) {
            return;
        }
    }
    respond(r, TRIB_KAFKA_NONE);
}
