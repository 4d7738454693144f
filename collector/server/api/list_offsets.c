/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ListOffsets (key 2), versions 1-7.
 *
 *   Timestamp -2 (earliest)       the log start offset
 *   Timestamp -1 (latest)         the high watermark (= last stable offset:
 *                                 no transactions), for both isolation levels
 *   Timestamp -3 (max timestamp)  v7+: the offset of the first record with
 *                                 the partition's largest timestamp (KIP-734),
 *                                 and that timestamp; -1/-1 when empty
 *   Timestamp >= 0                the first offset whose record timestamp is
 *                                 >= it (the storage's time index, then the
 *                                 batch), -1/-1 when none is that recent
 *
 * LeaderEpoch (v4+) is the partition's epoch (0 on a single node);
 * CurrentLeaderEpoch is checked as Kafka does (FENCED_LEADER_EPOCH /
 * UNKNOWN_LEADER_EPOCH), and a partition listed twice gets INVALID_REQUEST, as
 * in Kafka. On a cluster only the leader answers (NOT_LEADER_OR_FOLLOWER
 * elsewhere), and a follower asking (ReplicaId >= 0) gets the log end for
 * "latest", as Kafka answers replicas. Differences from Kafka: -4 (earliest local) and
 * -5 (latest tiered) are versions we do not advertise and get
 * UNSUPPORTED_VERSION; other negative timestamps get INVALID_REQUEST.
 */
#include "server/server_int.h"

#include "kafka/gen/kafka_messages.h"

#define EARLIEST (-2)
#define LATEST (-1)
#define MAX_TIMESTAMP (-3)

static void one(coll_req_t *r, coll_topic_t *t, int16_t terr,
                const ListOffsetsRequest_ListOffsetsPartition *lp,
                ListOffsetsResponse_ListOffsetsPartitionResponse *out)
{
    ListOffsetsResponse_ListOffsetsPartitionResponse_init(out);
    out->PartitionIndex = lp->PartitionIndex;
    out->Timestamp = -1;
    out->Offset = -1;
    int16_t e = terr;
    coll_partition_t *p = t ? coll_cluster_partition(t, lp->PartitionIndex) : NULL;
    if (t && !p) {
        e = TRIB_KAFKA_UNKNOWN_TOPIC_OR_PARTITION;
    }
    if (p) {
        e = coll_check_partition(r, p, r->api_version >= 4 ? lp->CurrentLeaderEpoch : -1);
    }
    if (!p || e != TRIB_KAFKA_NONE) {
        out->ErrorCode = e;
        coll_req_note_error(r, e);
        return;
    }
    coll_log_t *log = p->log;
    int64_t ts = lp->Timestamp;
    /* A follower (ReplicaId >= 0) sees up to the log end, as Kafka answers replicas. */
    const ListOffsetsRequest *req = r->body;
    int64_t hw = req->ReplicaId >= 0 && coll_cluster_replicated(r->srv->cluster)
                     ? coll_log_end_offset(log)
                     : coll_log_high_watermark(log);
    int rc = 0;
    if (ts == EARLIEST) {
        out->Offset = coll_log_start_offset(log);
    } else if (ts == LATEST) {
        out->Offset = hw;
    } else if (ts == MAX_TIMESTAMP && r->api_version >= 7) {
        int64_t off, mts;
        rc = coll_prt_max_timestamp(coll_prt(p), &off, &mts);
        if (rc == 0 && off >= 0 && off < hw) {
            out->Offset = off;
            out->Timestamp = mts;
        }
    } else if (ts < 0) {
        e = ts >= -5 ? TRIB_KAFKA_UNSUPPORTED_VERSION : TRIB_KAFKA_INVALID_REQUEST;
    } else {
        int64_t off, rts;
        rc = coll_log_offset_for_timestamp(log, ts, &off, &rts);
        if (rc == TRIB_ENOT_FOUND) {
            rc = 0;
        } else if (rc == 0 && off < hw) {
            out->Offset = off;
            out->Timestamp = rts;
        }
    }
    if (rc != 0) {
        e = coll_kafka_error_from(rc);
    }
    if (e != TRIB_KAFKA_NONE) {
        out->ErrorCode = e;
        out->Offset = -1;
        out->Timestamp = -1;
        coll_req_note_error(r, e);
        return;
    }
    if (r->api_version >= 4) {
        out->LeaderEpoch = p->leader_epoch;
    }
}

static bool listed_twice(const ListOffsetsRequest_ListOffsetsTopic *lt, int32_t k)
{
    int32_t idx = lt->Partitions.items[k].PartitionIndex;
    for (int32_t j = 0; j < lt->Partitions.count; j++) {
        if (j != k && lt->Partitions.items[j].PartitionIndex == idx) {
            return true;
        }
    }
    return false;
}

void coll_api_list_offsets(coll_req_t *r)
{
    const ListOffsetsRequest *req = r->body;
    ListOffsetsResponse *resp = coll_req_alloc(r, sizeof(*resp));
    int32_t nt = req->Topics.count > 0 ? req->Topics.count : 0;
    ListOffsetsResponse_ListOffsetsTopicResponse *topics =
        coll_req_alloc(r, (size_t)nt * sizeof(*topics));
    if (!resp || (nt && !topics)) {
        coll_req_reject(r, "out of memory");
        return;
    }
    ListOffsetsResponse_init(resp);
    for (int32_t i = 0; i < nt; i++) {
        const ListOffsetsRequest_ListOffsetsTopic *lt = &req->Topics.items[i];
        ListOffsetsResponse_ListOffsetsTopicResponse *to = &topics[i];
        ListOffsetsResponse_ListOffsetsTopicResponse_init(to);
        to->Name = lt->Name;
        int16_t terr = TRIB_KAFKA_NONE;
        coll_topic_t *t = NULL;
        if (!coll_authorized_k(r, COLL_OP_DESCRIBE, COLL_RES_TOPIC, lt->Name)) {
            terr = TRIB_KAFKA_TOPIC_AUTHORIZATION_FAILED;
        } else {
            t = coll_find_topic(r, lt->Name, false, &terr);
        }
        int32_t np = lt->Partitions.count > 0 ? lt->Partitions.count : 0;
        ListOffsetsResponse_ListOffsetsPartitionResponse *parts =
            coll_req_alloc(r, (size_t)np * sizeof(*parts));
        if (np && !parts) {
            coll_req_reject(r, "out of memory");
            return;
        }
        for (int32_t k = 0; k < np; k++) {
            if (listed_twice(lt, k)) {
                /* Kafka refuses a partition asked for twice in one request. */
                ListOffsetsResponse_ListOffsetsPartitionResponse_init(&parts[k]);
                parts[k].PartitionIndex = lt->Partitions.items[k].PartitionIndex;
                parts[k].ErrorCode = TRIB_KAFKA_INVALID_REQUEST;
                coll_req_note_error(r, TRIB_KAFKA_INVALID_REQUEST);
                continue;
            }
            one(r, t, terr, &lt->Partitions.items[k], &parts[k]);
        }
        to->Partitions.items = parts;
        to->Partitions.count = np;
    }
    resp->Topics.items = topics;
    resp->Topics.count = nt;
    coll_req_respond(r, &ListOffsetsResponse_codec, resp);
}
