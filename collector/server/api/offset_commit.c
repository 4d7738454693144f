/* SPDX-License-Identifier: Apache-2.0 */
/*
 * OffsetCommit (key 8), versions 0-9 (v8+ flexible; v9 is v8 for classic
 * groups).
 *
 * A commit from a member is checked against the group's generation and
 * member (ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID v7+,
 * REBALANCE_IN_PROGRESS between JoinGroup and SyncGroup). Generation -1
 * with an empty member id is a standalone commit (manual assignment, v0
 * always): accepted when the group has no members, and it creates the
 * group when there is none. Each offset is written to __consumer_offsets
 * (group/store.c) before it is acknowledged, and with storage.fsync "ack"
 * the answer waits until those records are on disk (fdatasync, shared
 * with the other waits: group commit), as an acks=all produce does. On a
 * cluster the answer waits until the high watermark of the group's
 * partition passes them (acks=all: every in-sync replica has them, on disk
 * with fsync "ack"), as Kafka's coordinator does: COORDINATOR_NOT_AVAILABLE
 * when the ISR is below min.insync.replicas, NOT_COORDINATOR when the
 * leadership moves meanwhile, REQUEST_TIMED_OUT after
 * offsets.commit.timeout.ms (see group/coordinator.c, "a cluster").
 *
 * Differences from Kafka: v1's CommitTimestamp and v2-4's RetentionTimeMs
 * are ignored (retention is the broker's offsets.retention.minutes, as in
 * Kafka 2.1+); a topic or partition that does not exist gets
 * UNKNOWN_TOPIC_OR_PARTITION.
 */
#include "server/server_int.h"

#include "group/group.h"
#include "kafka/gen/kafka_messages.h"

typedef struct cwait {
    coll_durable_req_t dreq;
    coll_req_t *r;
    OffsetCommitResponse *resp;
} cwait_t;

/* Sets every partition answered NONE to e. */
static void fail_committed(coll_req_t *r, OffsetCommitResponse *resp, int16_t e)
{
    for (int32_t i = 0; i < resp->Topics.count; i++) {
        OffsetCommitResponse_OffsetCommitResponseTopic *t = &resp->Topics.items[i];
        for (int32_t k = 0; k < t->Partitions.count; k++) {
            if (t->Partitions.items[k].ErrorCode == TRIB_KAFKA_NONE) {
                t->Partitions.items[k].ErrorCode = e;
                coll_req_note_error(r, e);
            }
        }
    }
}

/* A cluster: the commit reached the high watermark (or could not). */
static void committed_cb(void *arg, int16_t error)
{
    cwait_t *w = arg;
    coll_req_t *r = w->r;
    if (error != TRIB_KAFKA_NONE) {
        fail_committed(r, w->resp, error);
    }
    r->pending--;
    coll_req_respond(r, &OffsetCommitResponse_codec, w->resp);
}

static void durable_cb(coll_durable_req_t *dreq, int status)
{
    cwait_t *w = dreq->data;
    coll_req_t *r = w->r;
    if (status != 0) {
        /* Stored but not known durable: the client retries, which is harmless. */
        fail_committed(r, w->resp, coll_kafka_error_from(status));
    }
    r->pending--;
    coll_req_respond(r, &OffsetCommitResponse_codec, w->resp);
}

void coll_api_offset_commit(coll_req_t *r)
{
    const OffsetCommitRequest *req = r->body;
    OffsetCommitResponse *resp = coll_req_alloc(r, sizeof(*resp));
    int32_t nt = req->Topics.count > 0 ? req->Topics.count : 0;
    OffsetCommitResponse_OffsetCommitResponseTopic *ts =
        coll_req_alloc(r, (size_t)nt * sizeof(*ts));
    if (!resp || (nt && !ts)) {
        coll_req_reject(r, "out of memory");
        return;
    }
    OffsetCommitResponse_init(resp);
    coll_group_t *grp = NULL;
    int32_t gen = r->api_version >= 1 ? req->GenerationIdOrMemberEpoch : -1;
    trib_kstr_t member = r->api_version >= 1 ? req->MemberId : trib_kstr("");
    trib_kstr_t instance = r->api_version >= 7 ? req->GroupInstanceId : trib_kstr(NULL);
    int16_t gerr =
        coll_authorized_k(r, COLL_OP_READ, COLL_RES_GROUP, req->GroupId)
            ? coll_group_commit_check(r->srv->groups, req->GroupId, gen, member, instance, &grp)
            : TRIB_KAFKA_GROUP_AUTHORIZATION_FAILED;
    /* Every partition's verdict first, then one batch for all the accepted offsets. */
    size_t total = 0;
    for (int32_t i = 0; i < nt; i++) {
        total += req->Topics.items[i].Partitions.count > 0
                     ? (size_t)req->Topics.items[i].Partitions.count
                     : 0;
    }
    coll_gcommit_t *cs = coll_req_alloc(r, (total ? total : 1) * sizeof(*cs));
    if (!cs) {
        coll_req_reject(r, "out of memory");
        return;
    }
    size_t n = 0;
    for (int32_t i = 0; i < nt; i++) {
        const OffsetCommitRequest_OffsetCommitRequestTopic *t = &req->Topics.items[i];
        int32_t np = t->Partitions.count > 0 ? t->Partitions.count : 0;
        int16_t terr = TRIB_KAFKA_NONE;
        bool topic_ok = gerr || coll_authorized_k(r, COLL_OP_READ, COLL_RES_TOPIC, t->Name);
        coll_topic_t *topic = gerr || !topic_ok ? NULL : coll_find_topic(r, t->Name, false, &terr);
        for (int32_t k = 0; k < np; k++, n++) {
            const OffsetCommitRequest_OffsetCommitRequestPartition *p = &t->Partitions.items[k];
            coll_gcommit_t *c = &cs[n];
            c->topic = t->Name;
            c->partition = p->PartitionIndex;
            c->offset = p->CommittedOffset;
            c->leader_epoch = r->api_version >= 6 ? p->CommittedLeaderEpoch : -1;
            c->metadata = p->CommittedMetadata;
            c->error = gerr;
            if (!gerr && !topic_ok) {
                c->error = TRIB_KAFKA_TOPIC_AUTHORIZATION_FAILED;
            } else if (!gerr && (!topic || !coll_cluster_partition(topic, p->PartitionIndex))) {
                c->error = TRIB_KAFKA_UNKNOWN_TOPIC_OR_PARTITION;
            }
        }
    }
    cwait_t *hw = coll_req_alloc(r, sizeof(*hw));
    if (!hw) {
        coll_req_reject(r, "out of memory");
        return;
    }
    hw->r = r;
    hw->resp = resp;
    bool waiting = false;
    bool committed =
        grp && coll_group_commit_many(r->srv->groups, grp, cs, n, committed_cb, hw, &waiting) > 0;
    n = 0;
    for (int32_t i = 0; i < nt; i++) {
        const OffsetCommitRequest_OffsetCommitRequestTopic *t = &req->Topics.items[i];
        OffsetCommitResponse_OffsetCommitResponseTopic *o = &ts[i];
        OffsetCommitResponse_OffsetCommitResponseTopic_init(o);
        o->Name = t->Name;
        int32_t np = t->Partitions.count > 0 ? t->Partitions.count : 0;
        OffsetCommitResponse_OffsetCommitResponsePartition *ps =
            coll_req_alloc(r, (size_t)np * sizeof(*ps));
        if (np && !ps) {
            coll_req_reject(r, "out of memory");
            return;
        }
        for (int32_t k = 0; k < np; k++, n++) {
            OffsetCommitResponse_OffsetCommitResponsePartition_init(&ps[k]);
            ps[k].PartitionIndex = cs[n].partition;
            ps[k].ErrorCode = cs[n].error;
            coll_req_note_error(r, cs[n].error);
        }
        o->Partitions.items = ps;
        o->Partitions.count = np;
    }
    resp->Topics.items = ts;
    resp->Topics.count = nt;
    if (waiting) {
        r->pending++; /* committed_cb answers, in a later turn of the loop */
        return;
    }
    coll_log_t *log =
        committed && r->srv->cfg.fsync == COLL_FSYNC_ACK
            ? coll_group_log(r->srv->groups, req->GroupId.ptr, (size_t)req->GroupId.len)
            : NULL;
    cwait_t *w = log ? coll_req_alloc(r, sizeof(*w)) : NULL;
    if (w) {
        w->r = r;
        w->resp = resp;
        w->dreq.data = w;
        if (coll_log_wait_durable(log, coll_log_end_offset(log) - 1, &w->dreq, durable_cb) == 0) {
            r->pending++;
            return;
        }
    }
    coll_req_respond(r, &OffsetCommitResponse_codec, resp);
}
