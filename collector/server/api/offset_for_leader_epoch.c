/* SPDX-License-Identifier: Apache-2.0 */
/*
 * OffsetForLeaderEpoch (key 23), versions 0-4 (v4 flexible; ReplicaId
 * from v3, CurrentLeaderEpoch from v2).
 *
 * For each partition, the largest leader epoch <= LeaderEpoch that the
 * partition's leader epoch cache knows, and its end offset: the start of
 * the next epoch, or the log end for the current one
 * (coll_log_end_offset_for_epoch, Kafka's LeaderEpochFileCache.endOffsetFor).
 * An epoch newer than any known gets -1/-1 with no error, as Kafka.
 *
 * Followers ask it when they start following (ReplicaId >= 0, KIP-101 and
 * KIP-279) and consumers to detect a truncated log (ReplicaId -1, KIP-320);
 * both are answered by the leader only: NOT_LEADER_OR_FOLLOWER elsewhere,
 * FENCED_LEADER_EPOCH / UNKNOWN_LEADER_EPOCH when CurrentLeaderEpoch is
 * older / newer than the partition's (coll_check_partition).
 *
 * The current epoch always answers the log end, also when the cache has
 * no entry for it yet (a single node whose log has never been written: the
 * local backend does not record epochs before the first append, where
 * Kafka's leader records its epoch when it becomes leader).
 */
#include "server/server_int.h"

#include "kafka/gen/kafka_messages.h"

static void one(coll_req_t *r, coll_topic_t *t, int16_t terr,
                const OffsetForLeaderEpochRequest_OffsetForLeaderPartition *rp,
                OffsetForLeaderEpochResponse_EpochEndOffset *out)
{
    OffsetForLeaderEpochResponse_EpochEndOffset_init(out);
    out->Partition = rp->Partition;
    out->LeaderEpoch = -1;
    out->EndOffset = -1;
    int16_t e = terr;
    coll_partition_t *p = t ? coll_cluster_partition(t, rp->Partition) : NULL;
    if (t && !p) {
        e = TRIB_KAFKA_UNKNOWN_TOPIC_OR_PARTITION;
    }
    if (p) {
        e = coll_check_partition(r, p, r->api_version >= 2 ? rp->CurrentLeaderEpoch : -1);
    }
    if (!p || e != TRIB_KAFKA_NONE) {
        out->ErrorCode = e;
        coll_req_note_error(r, e);
        return;
    }
    coll_log_t *log = p->log;
    int32_t epoch = -1;
    int64_t end = -1;
    if (rp->LeaderEpoch >= 0 && rp->LeaderEpoch == p->leader_epoch &&
        coll_log_latest_epoch(log) <= p->leader_epoch) {
        epoch = p->leader_epoch;
        end = coll_log_end_offset(log);
    } else {
        coll_log_end_offset_for_epoch(log, rp->LeaderEpoch, &epoch, &end);
    }
    out->LeaderEpoch = epoch;
    out->EndOffset = end;
}

void coll_api_offset_for_leader_epoch(coll_req_t *r)
{
    const OffsetForLeaderEpochRequest *req = r->body;
    OffsetForLeaderEpochResponse *resp = coll_req_alloc(r, sizeof(*resp));
    int32_t nt = req->Topics.count > 0 ? req->Topics.count : 0;
    OffsetForLeaderEpochResponse_OffsetForLeaderTopicResult *topics =
        coll_req_alloc(r, (size_t)nt * sizeof(*topics));
    if (!resp || (nt && !topics)) {
        coll_req_reject(r, "out of memory");
        return;
    }
    OffsetForLeaderEpochResponse_init(resp);
    for (int32_t i = 0; i < nt; i++) {
        const OffsetForLeaderEpochRequest_OffsetForLeaderTopic *rt = &req->Topics.items[i];
        OffsetForLeaderEpochResponse_OffsetForLeaderTopicResult *to = &topics[i];
        OffsetForLeaderEpochResponse_OffsetForLeaderTopicResult_init(to);
        to->Topic = rt->Topic;
        int16_t terr = TRIB_KAFKA_TOPIC_AUTHORIZATION_FAILED;
        /* A follower (ReplicaId >= 0, v3+) needs CLUSTER_ACTION, a client DESCRIBE on the topic. */
        bool ok = r->api_version >= 3 && req->ReplicaId >= 0
                      ? coll_authorized_cluster(r, COLL_OP_CLUSTER_ACTION)
                      : coll_authorized_k(r, COLL_OP_DESCRIBE, COLL_RES_TOPIC, rt->Topic);
        coll_topic_t *t = ok ? coll_find_topic(r, rt->Topic, false, &terr) : NULL;
        int32_t np = rt->Partitions.count > 0 ? rt->Partitions.count : 0;
        OffsetForLeaderEpochResponse_EpochEndOffset *parts =
            coll_req_alloc(r, (size_t)np * sizeof(*parts));
        if (np && !parts) {
            coll_req_reject(r, "out of memory");
            return;
        }
        for (int32_t k = 0; k < np; k++) {
            one(r, t, terr, &rt->Partitions.items[k], &parts[k]);
        }
        to->Partitions.items = parts;
        to->Partitions.count = np;
    }
    resp->Topics.items = topics;
    resp->Topics.count = nt;
    coll_req_respond(r, &OffsetForLeaderEpochResponse_codec, resp);
}
