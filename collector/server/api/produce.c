/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Produce (key 0), versions 3-11; 0-2 are advertised (librdkafka 2.0.2's
 * compression feature gate needs v0 in the range) and answered with
 * UNSUPPORTED_VERSION on every partition, as Kafka 4.0 does.
 *
 * The hot path. A partition's records are whole v2 batches in the request
 * frame (read straight from the socket into it, see conn.c). Each batch's
 * 61-byte header is parsed and its CRC32C checked (SSE4.2 when available);
 * the bytes are otherwise opaque: no decompression, no per-record work, no
 * re-encoding. coll_log_append() stamps baseOffset and partitionLeaderEpoch
 * in place (outside the CRC) and writes the frame's bytes to the segment
 * with one pwrite: the records' only copy after the socket read.
 *
 * acks:
 *    0  no response; an error on any partition closes the connection so
 *       the client notices (Kafka's behaviour)
 *    1  answered after the append (page cache)
 *   -1  answered after the append is durable when storage.fsync is "ack"
 *       (the storage's group commit: one fdatasync covers every request
 *       waiting at that moment); with "interval" or "never", like 1. On a
 *       single node the ISR is [self], so min.insync.replicas above 1 fails
 *       acks=-1 with NOT_ENOUGH_REPLICAS, as Kafka would.
 *   other INVALID_REQUIRED_ACKS
 *
 * On a single node the high watermark moves to the log end after every
 * append (one replica, see cluster/local.c), or with storage.fsync "ack"
 * to the durable offset as each fsync completes (server/partition.c):
 * consumers never read a record a power loss could take back. With
 * "interval" or "never" they may read a batch before it is durable,
 * exactly as on a single Kafka broker.
 *
 * On a cluster (a replicated backend) only the partition's leader takes
 * appends (NOT_LEADER_OR_FOLLOWER elsewhere), and acks=-1 is Kafka's:
 * NOT_ENOUGH_REPLICAS before the append when the committed ISR is smaller
 * than min.insync.replicas; otherwise the partition waits until the high
 * watermark (the minimum log end over the ISR, see server/replica.c)
 * passes its last offset, then NONE, or NOT_ENOUGH_REPLICAS_AFTER_APPEND
 * (offset kept) when the ISR fell below the minimum meanwhile;
 * REQUEST_TIMED_OUT at TimeoutMs; NOT_LEADER_OR_FOLLOWER if leadership is
 * lost while waiting. With fsync "ack" the high watermark counts the
 * leader's log end only once it is durable, so no local wait is added.
 *
 * Idempotent producers (ProducerId >= 0): per (producer id, partition) the
 * last five batches are remembered (server/producer_state.h); a retried
 * batch is answered with its original base offset and not appended again
 * (Kafka's behaviour: success, not DUPLICATE_SEQUENCE_NUMBER), after the
 * same acks=-1 wait as a new append (high watermark, or durability);
 * gaps give
 * OUT_OF_ORDER_SEQUENCE_NUMBER, stale epochs INVALID_PRODUCER_EPOCH, an
 * unknown producer continuing mid-sequence UNKNOWN_PRODUCER_ID. Unlike
 * Kafka: a gap (or an unknown producer) that is exactly a batch this
 * connection refused before its append with a retriable error
 * (NOT_LEADER_OR_FOLLOWER while leadership arrives, NOT_ENOUGH_REPLICAS)
 * gets that batch's error instead, so that a client pipelining five
 * batches retries them in order. librdkafka 2.0.2 (Debian 12) answers the
 * OUT_OF_ORDER_SEQUENCE_NUMBER of a batch behind a failed one with an
 * epoch bump that renumbers every unacknowledged batch, re-sending as new
 * ones an earlier leader had already written (duplicates the checker
 * caught after a leader pause, 3 in 406,857 writes).
 *
 * Compacted topics (cleanup.policy has "compact"), as Kafka's
 * LogValidator: every record of every batch must parse (a compressed batch
 * is decompressed to check) with consecutive offset deltas and a non-null
 * key; otherwise the partition gets INVALID_RECORD with the record's index
 * in RecordErrors and ErrorMessage (v8+), or CORRUPT_MESSAGE before v8.
 * The cleaner reads every record of these topics, so nothing it cannot
 * read gets in through a client. Clients cannot produce to internal
 * topics (__consumer_offsets): INVALID_TOPIC_EXCEPTION, as Kafka answers;
 * the group coordinator appends to the log directly (group/store.c).
 *
 * A full disk: the append is refused whole (nothing of it stays in the
 * log) and the partition answers KAFKA_STORAGE_ERROR, as Kafka answers
 * for a log directory it cannot write; clients treat it as retriable.
 * Kafka then keeps the directory offline until a restart; here the next
 * append tries again, so produce works as soon as there is space. The
 * request is not held waiting for space: a producer's own retries and
 * timeouts already bound how long it waits, and a held request would pin
 * its memory and its connection's order behind a disk nobody may free.
 *
 * Differences from Kafka:
 *   - records inside a batch of a non-compacted topic are not validated
 *     (Kafka decompresses compressed batches to check offsets and record
 *     layout); the header (magic 2, lengths, recordsCount/lastOffsetDelta)
 *     and the CRC are;
 *   - transactions are not supported: a TransactionalId or a
 *     transactional batch gets INVALID_TXN_STATE, and control batches from
 *     clients get CORRUPT_MESSAGE;
 *   - compression.type is always "producer" (batches stored as sent);
 *   - TimeoutMs bounds only the wait for the ISR on a cluster: an fsync is
 *     not abandoned half-way.
 *   - RecordErrors (v8+) name at most the first faulty record (Kafka lists
 *     every one); a request is accepted or refused whole either way.
 */
#include "server/server_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kafka/gen/kafka_messages.h"
#include "server/partition.h"
#include "tributary/record.h"

typedef struct batch_info {
    int64_t pid;
    int16_t epoch;
    int32_t first_seq, last_seq;
} batch_info_t;

typedef struct pwait {
    coll_durable_req_t dreq;
    coll_req_t *r;
    coll_prt_t *prt;
    ProduceResponse_PartitionProduceResponse *out;
} pwait_t;

/* A partition waiting for the high watermark (acks=all on a replicated partition). */
typedef struct hwait {
    coll_hwait_t w;
    coll_req_t *r;
    ProduceResponse_PartitionProduceResponse *out;
    struct hwait *next_in_req;
} hwait_t;

typedef struct produce_ctx {
    ProduceResponse *resp;
    bool waiting;
    hwait_t *hwaits;     /* this request's partitions parked on a high watermark */
    coll_parked_t timer; /* TimeoutMs for them, in the purgatory (no watches) */
    bool timer_parked;
} produce_ctx_t;

static void produce_done(coll_req_t *r)
{
    produce_ctx_t *ctx = r->ctx;
    if (ctx->timer_parked) {
        ctx->timer_parked = false;
        coll_purgatory_remove(&r->srv->purgatory, &ctx->timer);
    }
    if (ctx->waiting) {
        ctx->waiting = false;
        r->srv->produce_waiting--;
    }
    coll_req_respond(r, &ProduceResponse_codec, ctx->resp);
}

static void hwait_done(coll_hwait_t *cw, int16_t error)
{
    hwait_t *w = cw->data;
    coll_req_t *r = w->r;
    produce_ctx_t *ctx = r->ctx;
    if (error != TRIB_KAFKA_NONE) {
        w->out->ErrorCode = error;
        if (error != TRIB_KAFKA_NOT_ENOUGH_REPLICAS_AFTER_APPEND) {
            /* Kafka keeps the offset only for NOT_ENOUGH_REPLICAS_AFTER_APPEND. */
            w->out->BaseOffset = -1;
        }
        coll_req_note_error(r, error);
    }
    r->pending--;
    if (r->pending == 0 && ctx->waiting) {
        produce_done(r);
    }
}

/* TimeoutMs ran out (or the server stops) with partitions still waiting. */
static void hwait_timeout(coll_parked_t *pk)
{
    coll_req_t *r = pk->req;
    produce_ctx_t *ctx = r->ctx;
    ctx->timer_parked = false;
    int16_t e = r->srv->stopping ? TRIB_KAFKA_NOT_LEADER_OR_FOLLOWER : TRIB_KAFKA_REQUEST_TIMED_OUT;
    /*
     * The last cancel answers the request and may free it (and its arena,
     * where the list lives): collect the waiting ones first.
     */
    size_t n = 0;
    for (hwait_t *w = ctx->hwaits; w; w = w->next_in_req) {
        n += w->w.prt != NULL;
    }
    hwait_t *one[8];
    hwait_t **v = n <= 8 ? one : malloc(n * sizeof(*v));
    if (!v) {
        /* No memory for the list: answer them one by one from the head (never the freed tail). */
        hwait_t *w = ctx->hwaits;
        while (n-- > 0) {
            while (!w->w.prt) {
                w = w->next_in_req;
            }
            hwait_t *next = w->next_in_req;
            coll_replica_hwait_cancel(&w->w, e);
            w = next;
        }
        return;
    }
    size_t k = 0;
    for (hwait_t *w = ctx->hwaits; w; w = w->next_in_req) {
        if (w->w.prt) {
            v[k++] = w;
        }
    }
    for (size_t i = 0; i < k; i++) {
        coll_replica_hwait_cancel(&v[i]->w, e);
    }
    if (v != one) {
        free(v);
    }
}

static void durable_cb(coll_durable_req_t *dreq, int status)
{
    pwait_t *w = dreq->data;
    coll_req_t *r = w->r;
    if (status != 0) {
        w->out->ErrorCode = coll_kafka_error_from(status);
        w->out->BaseOffset = -1;
        coll_req_note_error(r, w->out->ErrorCode);
    } else {
        coll_prt_durable(w->prt);
    }
    r->pending--;
    if (r->pending == 0) {
        produce_done(r);
    }
}

static int16_t fail(coll_req_t *r, ProduceResponse_PartitionProduceResponse *out, int16_t code,
                    const char *msg)
{
    out->ErrorCode = code;
    if (msg && r->api_version >= 8) {
        out->ErrorMessage = trib_kstr(msg);
    }
    coll_req_note_error(r, code);
    return code;
}

/* Decompressed records of one batch that a compacted topic's check reads at most. */
#define VALIDATE_MAX_DECOMPRESSED (256u << 20)

/*
 * A compacted topic's check of one batch's records (see the top). Returns
 * NONE, INVALID_RECORD with out's RecordErrors filled (v8+), or
 * UNKNOWN_SERVER_ERROR when memory runs out.
 */
static int16_t validate_compacted(coll_req_t *r, const trib_batch_t *b, int32_t first_index,
                                  ProduceResponse_PartitionProduceResponse *out, const char **why)
{
    trib_record_fault_t f;
    int rc =
        trib_batch_validate_records(b, TRIB_VALIDATE_REQUIRE_KEY, VALIDATE_MAX_DECOMPRESSED, &f);
    if (rc == 0) {
        return TRIB_KAFKA_NONE;
    }
    if (rc == -ENOMEM) {
        *why = "out of memory validating records";
        return TRIB_KAFKA_UNKNOWN_SERVER_ERROR;
    }
    *why = f.why ? f.why : "records do not parse";
    if (r->api_version >= 8) {
        ProduceResponse_BatchIndexAndErrorMessage *e = coll_req_alloc(r, sizeof(*e));
        if (e) {
            ProduceResponse_BatchIndexAndErrorMessage_init(e);
            /* The record's index in the partition's records, counted across its batches. */
            e->BatchIndex = first_index + (f.index >= 0 ? f.index : 0);
            e->BatchIndexErrorMessage = trib_kstr(*why);
            out->RecordErrors.items = e;
            out->RecordErrors.count = 1;
        }
    }
    return TRIB_KAFKA_INVALID_RECORD;
}

/* Validates the batches; fills infos (arena) and their count. */
static int16_t validate(coll_req_t *r, coll_partition_t *p, uint8_t *data, size_t len,
                        batch_info_t **infos, size_t *ninfos,
                        ProduceResponse_PartitionProduceResponse *out, const char **why)
{
    const coll_tcfg_t *tc = &p->topic->config;
    bool compacted = (tc->v[COLL_TCFG_CLEANUP_POLICY].i & COLL_CLEANUP_COMPACT) != 0;
    int32_t records_before = 0;
    size_t cap = 4, n = 0;
    batch_info_t *bi = coll_req_alloc(r, cap * sizeof(*bi));
    if (!bi) {
        return TRIB_KAFKA_UNKNOWN_SERVER_ERROR;
    }
    trib_batch_iter_t it;
    trib_batch_iter_init(&it, data, len, 0);
    trib_batch_t b;
    int rc;
    while ((rc = trib_batch_iter_next(&it, &b)) == 1) {
        if (b.size > (size_t)tc->v[COLL_TCFG_MAX_MESSAGE_BYTES].i) {
            *why = "batch larger than max.message.bytes";
            return TRIB_KAFKA_MESSAGE_TOO_LARGE;
        }
        if (trib_batch_is_control(&b)) {
            *why = "control batches cannot be produced";
            return TRIB_KAFKA_CORRUPT_MESSAGE;
        }
        if (trib_batch_is_transactional(&b)) {
            *why = "transactions are not supported by this collector";
            return TRIB_KAFKA_INVALID_TXN_STATE;
        }
        if (b.record_count < 1 || b.last_offset_delta != b.record_count - 1) {
            *why = "recordsCount and lastOffsetDelta disagree";
            return TRIB_KAFKA_CORRUPT_MESSAGE;
        }
        if (compacted) {
            int16_t e = validate_compacted(r, &b, records_before, out, why);
            if (e != TRIB_KAFKA_NONE) {
                return e;
            }
        }
        records_before += b.record_count;
        if (n == cap) {
            batch_info_t *nb = coll_req_alloc(r, cap * 2 * sizeof(*nb));
            if (!nb) {
                return TRIB_KAFKA_UNKNOWN_SERVER_ERROR;
            }
            memcpy(nb, bi, n * sizeof(*bi));
            bi = nb;
            cap *= 2;
        }
        batch_info_t *x = &bi[n++];
        x->pid = b.producer_id;
        x->epoch = b.producer_epoch;
        x->first_seq = b.base_sequence;
        x->last_seq =
            b.base_sequence >= 0 ? coll_seq_add(b.base_sequence, b.last_offset_delta) : -1;
    }
    if (rc < 0) {
        *why = rc == TRIB_ECRC                   ? "CRC mismatch"
               : rc == TRIB_EUNSUPPORTED_VERSION ? "only record batches of magic 2 are accepted"
                                                 : "malformed record batch";
        return TRIB_KAFKA_CORRUPT_MESSAGE;
    }
    if (trib_batch_iter_partial(&it) || n == 0) {
        *why = n == 0 ? "no record batch" : "truncated record batch";
        return TRIB_KAFKA_CORRUPT_MESSAGE;
    }
    if (len > (size_t)tc->v[COLL_TCFG_SEGMENT_BYTES].i) {
        *why = "record set larger than segment.bytes";
        return TRIB_KAFKA_RECORD_LIST_TOO_LARGE;
    }
    *infos = bi;
    *ninfos = n;
    return TRIB_KAFKA_NONE;
}

/*
 * Checks the idempotence rules for every batch that carries a producer id.
 * Returns an error, or NONE with *dup set when the (single) batch is a
 * retry of one already appended.
 */
static int16_t check_sequences(coll_prt_t *prt, const batch_info_t *bi, size_t n,
                               const coll_pbatch_t **dup)
{
    *dup = NULL;
    for (size_t i = 0; i < n; i++) {
        if (bi[i].pid < 0) {
            continue;
        }
        /* A later batch of the same producer in this request continues the earlier one. */
        const batch_info_t *prev = NULL;
        for (size_t k = i; k-- > 0;) {
            if (bi[k].pid == bi[i].pid) {
                prev = &bi[k];
                break;
            }
        }
        if (prev) {
            if (bi[i].epoch != prev->epoch || bi[i].first_seq != coll_seq_add(prev->last_seq, 1)) {
                return TRIB_KAFKA_OUT_OF_ORDER_SEQUENCE_NUMBER;
            }
            continue;
        }
        const coll_pbatch_t *d = NULL;
        int16_t e = coll_pstate_check(coll_pstate_find(&prt->producers, bi[i].pid), bi[i].epoch,
                                      bi[i].first_seq, bi[i].last_seq, &d);
        if (e != TRIB_KAFKA_NONE) {
            return e;
        }
        if (d) {
            /* Kafka answers the whole append with the duplicate's offsets. */
            *dup = d;
            return TRIB_KAFKA_NONE;
        }
    }
    return TRIB_KAFKA_NONE;
}

/*
 * acks=-1: the partition's answer waits until last_offset is committed
 * (the high watermark passes it on a cluster) or, on a single node with
 * storage.fsync ack, durable. Nothing to wait for otherwise.
 */
static void wait_acks(coll_req_t *r, coll_prt_t *prt, coll_log_t *log,
                      ProduceResponse_PartitionProduceResponse *out, int16_t acks, int64_t min_isr,
                      int64_t last_offset)
{
    if (acks == -1 && prt->leader) {
        /*
         * The high watermark passing the batch means every member of the
         * ISR has it (and, with fsync ack, has it on disk, the leader too).
         */
        hwait_t *w = coll_req_alloc(r, sizeof(*w));
        if (!w) {
            fail(r, out, TRIB_KAFKA_UNKNOWN_SERVER_ERROR, "out of memory");
            return;
        }
        produce_ctx_t *ctx = r->ctx;
        w->r = r;
        w->out = out;
        w->w.required = last_offset + 1;
        w->w.min_isr = (int32_t)min_isr;
        w->w.done = hwait_done;
        w->w.data = w;
        w->next_in_req = ctx->hwaits;
        ctx->hwaits = w;
        r->pending++;
        coll_replica_hwait(prt, &w->w);
        return;
    }
    if (acks == -1 && r->srv->cfg.fsync == COLL_FSYNC_ACK) {
        pwait_t *w = coll_req_alloc(r, sizeof(*w));
        if (!w) {
            fail(r, out, TRIB_KAFKA_UNKNOWN_SERVER_ERROR, "out of memory");
            return;
        }
        w->r = r;
        w->prt = prt;
        w->out = out;
        w->dreq.data = w;
        int rc = coll_log_wait_durable(log, last_offset, &w->dreq, durable_cb);
        if (rc != 0) {
            fail(r, out, coll_kafka_error_from(rc), trib_strerror(rc));
            return;
        }
        r->pending++;
    }
}

/* The producer fields of the first batch of a record set; false without one. */
static bool first_batch_producer(const uint8_t *d, size_t len, int64_t *pid, int16_t *epoch,
                                 int32_t *seq)
{
    trib_batch_t b;
    if (trib_batch_parse(&b, d, len, TRIB_BATCH_SKIP_CRC) != 0) {
        return false;
    }
    *pid = b.producer_id;
    *epoch = b.producer_epoch;
    *seq = b.base_sequence;
    return *pid >= 0 && *seq >= 0;
}

/*
 * A refusal before the append with a retriable error: the connection notes
 * the idempotent batch it refused. librdkafka (2.0.2, Debian 12) pipelines up to
 * five batches of a partition and, when the first is refused retriably
 * (NOT_LEADER_OR_FOLLOWER while this broker is becoming the leader) but a
 * later one reaches the sequence check, takes that one's
 * OUT_OF_ORDER_SEQUENCE_NUMBER for a gap, bumps its producer epoch and
 * renumbers everything it has not had acknowledged, on every partition:
 * batches already written by the previous leader are then written again
 * under the new epoch, duplicates no broker can recognize.
 */
static int16_t refuse(coll_req_t *r, coll_partition_t *p,
                      const ProduceRequest_PartitionProduceData *pd,
                      ProduceResponse_PartitionProduceResponse *out, int16_t code, const char *msg)
{
    int64_t pid;
    int16_t epoch;
    int32_t seq;
    coll_conn_t *c = r->conn;
    if (c && p && pd->Records.len > 0 &&
        first_batch_producer((const uint8_t *)pd->Records.ptr, (size_t)pd->Records.len, &pid,
                             &epoch, &seq)) {
        struct coll_produce_gap *g = NULL;
        size_t n = sizeof(c->produce_gaps) / sizeof(c->produce_gaps[0]);
        for (size_t i = 0; i < n && !g; i++) {
            if (c->produce_gaps[i].p == p && c->produce_gaps[i].pid == pid) {
                g = &c->produce_gaps[i];
            }
        }
        if (!g) {
            g = &c->produce_gaps[c->produce_gap_next++ % n];
        } else if (g->epoch == epoch && g->first_seq <= seq) {
            /* The gap starts at the earlier refused batch: keep it. */
            return fail(r, out, code, msg);
        }
        *g = (struct coll_produce_gap){p, pid, epoch, code, seq};
    }
    return fail(r, out, code, msg);
}

/*
 * A batch out of sequence (or of a producer not known yet, past sequence 0)
 * only because this connection refused, retriably, the batch that fills the
 * gap: the refused batch's error (the client sends both again, in order),
 * or NONE.
 */
static int16_t behind_refused(coll_req_t *r, coll_partition_t *p, coll_prt_t *prt,
                              const batch_info_t *bi)
{
    coll_conn_t *c = r->conn;
    if (!c || bi->pid < 0) {
        return TRIB_KAFKA_NONE;
    }
    const coll_producer_t *e = coll_pstate_find(&prt->producers, bi->pid);
    size_t n = sizeof(c->produce_gaps) / sizeof(c->produce_gaps[0]);
    for (size_t i = 0; i < n; i++) {
        const struct coll_produce_gap *g = &c->produce_gaps[i];
        if (g->p != p || g->pid != bi->pid || g->epoch != bi->epoch || g->err == 0) {
            continue;
        }
        int32_t next = coll_pstate_next_seq(e, bi->epoch);
        if (g->first_seq == (next < 0 ? 0 : next) && bi->first_seq > g->first_seq) {
            return g->err;
        }
    }
    return TRIB_KAFKA_NONE;
}

/*
 * A batch ahead of its producer's next sequence (or of a producer this
 * leader does not know yet) within GAP_AFTER_ELECTION_MS of this node
 * taking the partition's leadership. The missing batches were most likely
 * sent to the previous leader and are still unanswered (a request times out
 * after 30 s by default): a client that resends in order finds them written
 * (a duplicate, answered with its offsets) or writes them now. Kafka
 * answers OUT_OF_ORDER_SEQUENCE_NUMBER, on which librdkafka 2.0.2 bumps its
 * epoch and re-sends them all as new records; NOT_LEADER_OR_FOLLOWER makes
 * it wait for its requests in flight and retry in order instead.
 */
#define GAP_AFTER_ELECTION_MS 30000

static bool ahead_after_leader_change(coll_prt_t *prt, const batch_info_t *bi)
{
    if (bi->pid < 0 || coll_replica_leading_ms(prt) >= GAP_AFTER_ELECTION_MS) {
        return false;
    }
    const coll_producer_t *e = coll_pstate_find(&prt->producers, bi->pid);
    if (!e || e->n == 0) {
        return bi->first_seq > 0;
    }
    int32_t next = coll_pstate_next_seq(e, bi->epoch);
    if (next < 0) {
        return false; /* a new epoch not at 0, or a stale one: Kafka's answer stands */
    }
    /* Ahead, not behind (a sequence far below is a client bug: Kafka's answer stands). */
    int32_t ahead = bi->first_seq - next;
    return ahead > 0 && ahead < (1 << 30);
}

/* An append of this producer's batch on this connection closes its gap. */
static void gap_closed(coll_req_t *r, coll_partition_t *p, int64_t pid)
{
    coll_conn_t *c = r->conn;
    if (!c || pid < 0 || c->produce_gap_next == 0) { /* nothing ever refused here: the usual case */
        return;
    }
    size_t n = sizeof(c->produce_gaps) / sizeof(c->produce_gaps[0]);
    for (size_t i = 0; i < n; i++) {
        if (c->produce_gaps[i].p == p && c->produce_gaps[i].pid == pid) {
            c->produce_gaps[i] = (struct coll_produce_gap){0};
        }
    }
}

static void produce_partition(coll_req_t *r, coll_topic_t *t, int16_t topic_err, int16_t acks,
                              const ProduceRequest_PartitionProduceData *pd,
                              ProduceResponse_PartitionProduceResponse *out)
{
    coll_server_t *s = r->srv;
    ProduceResponse_PartitionProduceResponse_init(out);
    out->Index = pd->Index;
    out->BaseOffset = -1;
    out->LogAppendTimeMs = -1;
    out->LogStartOffset = -1;
    if (!t) {
        fail(r, out, topic_err,
             topic_err == TRIB_KAFKA_INVALID_TOPIC_EXCEPTION ? "not a topic clients can produce to"
                                                             : NULL);
        return;
    }
    if (t->internal) {
        /* Only the collector writes its internal topics (the group store appends directly). */
        fail(r, out, TRIB_KAFKA_INVALID_TOPIC_EXCEPTION,
             "clients cannot produce to an internal topic");
        return;
    }
    coll_partition_t *p = coll_cluster_partition(t, pd->Index);
    if (!p) {
        fail(r, out, TRIB_KAFKA_UNKNOWN_TOPIC_OR_PARTITION, NULL);
        return;
    }
    coll_prt_t *prt = coll_prt(p);
    bool replicated = coll_cluster_replicated(s->cluster);
    if (replicated &&
        (!coll_partition_leads(p, coll_cluster_node_id(s->cluster)) || (prt && !prt->leader))) {
        refuse(r, p, pd, out, TRIB_KAFKA_NOT_LEADER_OR_FOLLOWER, NULL);
        return;
    }
    if (replicated && !coll_cluster_may_lead(s->cluster, p)) {
        /*
         * The leader in this node's view, but without a ZooKeeper session
         * (or before its state is read again in a new one): another node
         * may lead a later epoch already (coll_cluster_may_lead).
         */
        s->metrics.produce_no_session++;
        refuse(r, p, pd, out, TRIB_KAFKA_NOT_LEADER_OR_FOLLOWER,
               "this broker has no ZooKeeper session: it cannot know it still leads");
        return;
    }
    if (!prt || !p->log) {
        fail(r, out, TRIB_KAFKA_KAFKA_STORAGE_ERROR, "partition not available");
        return;
    }
    if (pd->Records.len <= 0) {
        fail(r, out, TRIB_KAFKA_CORRUPT_MESSAGE, "no records");
        return;
    }
    int64_t min_isr = t->config.v[COLL_TCFG_MIN_INSYNC_REPLICAS].i;
    if (acks == -1 && !replicated && min_isr > 1) {
        refuse(r, p, pd, out, TRIB_KAFKA_NOT_ENOUGH_REPLICAS,
               "min.insync.replicas is above 1 and this node is the only replica");
        return;
    }
    if (acks == -1 && replicated && p->nisr < min_isr) {
        /* Kafka counts the committed ISR here, before anything is appended. */
        char msg[128];
        snprintf(msg, sizeof(msg), "the ISR has %d replicas, min.insync.replicas is %d",
                 (int)p->nisr, (int)min_isr);
        refuse(r, p, pd, out, TRIB_KAFKA_NOT_ENOUGH_REPLICAS, coll_req_strdup(r, trib_kstr(msg)));
        return;
    }
    /* The records are a view into the request frame, which this request owns. */
    uint8_t *data = (uint8_t *)pd->Records.ptr;
    size_t len = (size_t)pd->Records.len;
    batch_info_t *bi = NULL;
    size_t n = 0;
    const char *why = NULL;
    int16_t e = validate(r, p, data, len, &bi, &n, out, &why);
    if (e == TRIB_KAFKA_INVALID_RECORD && r->api_version < 8) {
        e = TRIB_KAFKA_CORRUPT_MESSAGE; /* INVALID_RECORD came with v8 (KIP-467) */
    }
    if (e != TRIB_KAFKA_NONE) {
        fail(r, out, e, why);
        return;
    }
    const coll_pbatch_t *dup = NULL;
    e = check_sequences(prt, bi, n, &dup);
    if (e == TRIB_KAFKA_OUT_OF_ORDER_SEQUENCE_NUMBER || e == TRIB_KAFKA_UNKNOWN_PRODUCER_ID) {
        int16_t behind = behind_refused(r, p, prt, &bi[0]);
        if (behind != TRIB_KAFKA_NONE) {
            s->metrics.produce_behind_refused++;
            refuse(r, p, pd, out, behind,
                   "an earlier batch of this producer was refused on this connection");
            return;
        }
        if (replicated && ahead_after_leader_change(prt, &bi[0])) {
            s->metrics.produce_gap_after_election++;
            refuse(r, p, pd, out, TRIB_KAFKA_NOT_LEADER_OR_FOLLOWER,
                   "a sequence gap right after a leader change: the missing batches may still "
                   "be answered by the previous leader; retry in order");
            return;
        }
    }
    if (e != TRIB_KAFKA_NONE) {
        fail(r, out, e, NULL);
        return;
    }
    coll_log_t *log = p->log;
    if (dup) {
        /*
         * A retry of a batch already in the log: answered with its
         * original offsets, but only once they are as safe as a fresh
         * append's would be (Kafka's DelayedProduce waits for a duplicate
         * too). The original may still be above the high watermark (its
         * first attempt timed out waiting for the ISR), and a leader cut
         * off from its followers would otherwise acknowledge records it
         * is about to lose to the new leader's truncation.
         */
        s->metrics.duplicates++;
        out->BaseOffset = dup->first_offset;
        out->LogStartOffset = coll_log_start_offset(log);
        wait_acks(r, prt, log, out, acks, min_isr, dup->last_offset);
        return;
    }
    /*
     * LogAppendTime: the storage stamps maxTimestamp and the type bit and
     * recomputes the CRC (the one edit inside the CRC), with its clock.
     * The partition's append path keeps the producer state, the max
     * timestamp and the counters, and moves the high watermark.
     */
    bool log_append_time =
        t->config.v[COLL_TCFG_MESSAGE_TIMESTAMP_TYPE].i == COLL_TS_LOG_APPEND_TIME;
    unsigned flags = COLL_APPEND_CRC_VERIFIED | COLL_PRT_APPEND_PRODUCE |
                     (log_append_time ? COLL_APPEND_LOG_APPEND_TIME : 0);
    coll_append_info_t info;
    int rc = coll_prt_append(p, data, len, flags, &info);
    if (rc != 0) {
        e = coll_kafka_error_from(rc);
        /* Storage errors are logged (rate-limited) and counted by the storage. */
        if (e == TRIB_KAFKA_UNKNOWN_SERVER_ERROR) {
            TRIB_LOG(TRIB_LOG_ERROR, COLL_SERVER_FACILITY, "%s-%d: append: %s", t->name,
                     (int)p->index, trib_strerror(rc));
        }
        fail(r, out, e, trib_strerror(rc));
        return;
    }
    out->BaseOffset = info.base_offset;
    out->LogStartOffset = info.log_start_offset;
    out->LogAppendTimeMs = log_append_time ? info.log_append_time : -1;
    gap_closed(r, p, n > 0 ? bi[0].pid : -1);

    wait_acks(r, prt, log, out, acks, min_isr, info.last_offset);
}

void coll_api_produce(coll_req_t *r)
{
    const ProduceRequest *req = r->body;
    ProduceResponse *resp = coll_req_alloc(r, sizeof(*resp));
    produce_ctx_t *ctx = coll_req_alloc(r, sizeof(*ctx));
    if (!resp || !ctx) {
        coll_req_reject(r, "out of memory");
        return;
    }
    ProduceResponse_init(resp);
    ctx->resp = resp;
    r->ctx = ctx;
    int16_t acks = req->Acks;
    int16_t global = TRIB_KAFKA_NONE;
    const char *global_msg = NULL;
    if (r->api_version < 3) {
        global = TRIB_KAFKA_UNSUPPORTED_VERSION;
        global_msg = "Produce v0-2 (message format v0/v1) is not supported; use v3+";
    } else if (acks != 0 && acks != 1 && acks != -1) {
        global = TRIB_KAFKA_INVALID_REQUIRED_ACKS;
    } else if (req->TransactionalId.len >= 0 &&
               !coll_authorized_k(r, COLL_OP_WRITE, COLL_RES_TRANSACTIONAL_ID,
                                  req->TransactionalId)) {
        global = TRIB_KAFKA_TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
    } else if (req->TransactionalId.len >= 0) {
        global = TRIB_KAFKA_INVALID_TXN_STATE;
        global_msg = "transactions are not supported by this collector";
    }
    int32_t nt = req->TopicData.count > 0 ? req->TopicData.count : 0;
    ProduceResponse_TopicProduceResponse *topics = coll_req_alloc(r, (size_t)nt * sizeof(*topics));
    if (nt && !topics) {
        coll_req_reject(r, "out of memory");
        return;
    }
    bool any_error = false;
    for (int32_t i = 0; i < nt; i++) {
        const ProduceRequest_TopicProduceData *td = &req->TopicData.items[i];
        ProduceResponse_TopicProduceResponse *to = &topics[i];
        ProduceResponse_TopicProduceResponse_init(to);
        to->Name = td->Name;
        int32_t np = td->PartitionData.count > 0 ? td->PartitionData.count : 0;
        ProduceResponse_PartitionProduceResponse *parts =
            coll_req_alloc(r, (size_t)np * sizeof(*parts));
        if (np && !parts) {
            coll_req_reject(r, "out of memory");
            return;
        }
        to->PartitionResponses.items = parts;
        to->PartitionResponses.count = np;
        int16_t terr = TRIB_KAFKA_NONE;
        coll_topic_t *t = NULL;
        if (global == TRIB_KAFKA_NONE) {
            /* Clients neither write nor auto-create internal topics. */
            bool internal =
                td->Name.len > 0 && coll_topic_name_internal(td->Name.ptr, (size_t)td->Name.len);
            if (!coll_authorized_k(r, COLL_OP_WRITE, COLL_RES_TOPIC, td->Name)) {
                terr = TRIB_KAFKA_TOPIC_AUTHORIZATION_FAILED;
            } else {
                t = coll_find_topic(r, td->Name, !internal, &terr);
            }
            if (internal && terr != TRIB_KAFKA_TOPIC_AUTHORIZATION_FAILED) {
                t = NULL;
                terr = TRIB_KAFKA_INVALID_TOPIC_EXCEPTION;
            }
        }
        for (int32_t k = 0; k < np; k++) {
            ProduceResponse_PartitionProduceResponse *out = &parts[k];
            if (global != TRIB_KAFKA_NONE) {
                ProduceResponse_PartitionProduceResponse_init(out);
                out->Index = td->PartitionData.items[k].Index;
                out->BaseOffset = -1;
                fail(r, out, global, global_msg);
            } else {
                produce_partition(r, t, terr, acks, &td->PartitionData.items[k], out);
            }
            any_error |= out->ErrorCode != TRIB_KAFKA_NONE;
        }
    }
    resp->Responses.items = topics;
    resp->Responses.count = nt;
    if (acks == 0) {
        if (any_error) {
            coll_req_reject(r, "acks=0 produce failed (%s): closing so the client notices",
                            trib_kafka_err_name(r->first_error));
        } else {
            coll_req_no_response(r);
        }
        return;
    }
    if (r->pending > 0) {
        ctx->waiting = true;
        r->srv->produce_waiting++;
        if (ctx->hwaits) {
            /* Kafka's DelayedProduce: REQUEST_TIMED_OUT for what is still waiting at TimeoutMs. */
            ctx->timer.req = r;
            ctx->timer.complete = hwait_timeout;
            uint64_t now = uv_now(r->srv->loop);
            ctx->timer.deadline_ms = now + (uint64_t)(req->TimeoutMs > 0 ? req->TimeoutMs : 0);
            if (coll_purgatory_park(&r->srv->purgatory, &ctx->timer, now) == 0) {
                ctx->timer_parked = true;
            } else {
                hwait_timeout(&ctx->timer); /* stopping: answer now */
            }
        }
        return;
    }
    produce_done(r);
}
