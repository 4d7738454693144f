/* SPDX-License-Identifier: Apache-2.0 */
/*
 * DeleteRecords (key 21), versions 0-2 (v2 flexible).
 *
 * Moves a partition's log start offset up to Offset (-1: the high
 * watermark); whole segments below it are deleted by the storage in the
 * background. An offset past the high watermark gets OFFSET_OUT_OF_RANGE;
 * one below the current log start changes nothing. LowWatermark is the
 * resulting log start offset. On a single node there is no follower to
 * wait for, so the answer is immediate and TimeoutMs is not used. On a
 * cluster the leader answers (NOT_LEADER_OR_FOLLOWER elsewhere) once its
 * own log start moved; unlike Kafka it does not wait for the followers'
 * log start offsets.
 */
#include "server/server_int.h"

#include "kafka/gen/kafka_messages.h"

void coll_api_delete_records(coll_req_t *r)
{
    const DeleteRecordsRequest *req = r->body;
    int32_t nt = req->Topics.count > 0 ? req->Topics.count : 0;
    DeleteRecordsResponse *resp = coll_req_alloc(r, sizeof(*resp));
    DeleteRecordsResponse_DeleteRecordsTopicResult *topics =
        coll_req_alloc(r, (size_t)nt * sizeof(*topics));
    if (!resp || (nt && !topics)) {
        coll_req_reject(r, "out of memory");
        return;
    }
    DeleteRecordsResponse_init(resp);
    for (int32_t i = 0; i < nt; i++) {
        const DeleteRecordsRequest_DeleteRecordsTopic *dt = &req->Topics.items[i];
        DeleteRecordsResponse_DeleteRecordsTopicResult *to = &topics[i];
        DeleteRecordsResponse_DeleteRecordsTopicResult_init(to);
        to->Name = dt->Name;
        int16_t terr = TRIB_KAFKA_TOPIC_AUTHORIZATION_FAILED;
        coll_topic_t *t = coll_authorized_k(r, COLL_OP_DELETE, COLL_RES_TOPIC, dt->Name)
                              ? coll_find_topic(r, dt->Name, false, &terr)
                              : NULL;
        int32_t np = dt->Partitions.count > 0 ? dt->Partitions.count : 0;
        DeleteRecordsResponse_DeleteRecordsPartitionResult *parts =
            coll_req_alloc(r, (size_t)np * sizeof(*parts));
        if (np && !parts) {
            coll_req_reject(r, "out of memory");
            return;
        }
        for (int32_t k = 0; k < np; k++) {
            const DeleteRecordsRequest_DeleteRecordsPartition *dp = &dt->Partitions.items[k];
            DeleteRecordsResponse_DeleteRecordsPartitionResult *o = &parts[k];
            DeleteRecordsResponse_DeleteRecordsPartitionResult_init(o);
            o->PartitionIndex = dp->PartitionIndex;
            o->LowWatermark = -1;
            coll_partition_t *p = t ? coll_cluster_partition(t, dp->PartitionIndex) : NULL;
            int16_t e = t ? TRIB_KAFKA_UNKNOWN_TOPIC_OR_PARTITION : terr;
            if (p) {
                e = coll_check_partition(r, p, -1);
            }
            if (p && e == TRIB_KAFKA_NONE) {
                coll_log_t *log = p->log;
                int64_t off = dp->Offset;
                if (off == -1) {
                    off = coll_log_high_watermark(log);
                }
                if (off < 0 || off > coll_log_high_watermark(log)) {
                    e = TRIB_KAFKA_OFFSET_OUT_OF_RANGE;
                } else if (off <= coll_log_start_offset(log)) {
                    e = TRIB_KAFKA_NONE;
                    o->LowWatermark = coll_log_start_offset(log);
                } else {
                    int64_t low = -1;
                    int rc = coll_log_delete_records(log, off, &low);
                    e = coll_kafka_error_from(rc);
                    if (rc == 0) {
                        o->LowWatermark = low;
                    }
                }
            }
            o->ErrorCode = e;
            coll_req_note_error(r, e);
        }
        to->Partitions.items = parts;
        to->Partitions.count = np;
    }
    resp->Topics.items = topics;
    resp->Topics.count = nt;
    coll_req_respond(r, &DeleteRecordsResponse_codec, resp);
}
