/* SPDX-License-Identifier: Apache-2.0 */
/*
 * OffsetDelete (key 47), version 0 (KIP-496).
 *
 * Deletes committed offsets of a group (tombstones). Allowed for an Empty
 * group, or for topics no member of a "consumer" group subscribes to
 * (per partition GROUP_SUBSCRIBED_TO_TOPIC otherwise); an unknown group
 * is GROUP_ID_NOT_FOUND. A partition without an offset is not an error.
 */
#include "server/server_int.h"

#include "group/group.h"
#include "kafka/gen/kafka_messages.h"

void coll_api_offset_delete(coll_req_t *r)
{
    const OffsetDeleteRequest *req = r->body;
    OffsetDeleteResponse *resp = coll_req_alloc(r, sizeof(*resp));
    int32_t nt = req->Topics.count > 0 ? req->Topics.count : 0;
    OffsetDeleteResponse_OffsetDeleteResponseTopic *ts =
        coll_req_alloc(r, (nt ? (size_t)nt : 1) * sizeof(*ts));
    if (!resp || !ts) {
        coll_req_reject(r, "out of memory");
        return;
    }
    OffsetDeleteResponse_init(resp);
    coll_groups_t *g = r->srv->groups;
    coll_group_t *grp = NULL;
    int16_t ce = coll_groups_coordinator_error(g, req->GroupId.ptr, req->GroupId.len);
    if (!coll_authorized_k(r, COLL_OP_DELETE, COLL_RES_GROUP, req->GroupId)) {
        resp->ErrorCode = TRIB_KAFKA_GROUP_AUTHORIZATION_FAILED;
    } else if (ce != TRIB_KAFKA_NONE) {
        resp->ErrorCode = ce;
    } else if (req->GroupId.len <= 0) {
        resp->ErrorCode = TRIB_KAFKA_INVALID_GROUP_ID;
    } else if (!(grp = coll_groups_find(g, req->GroupId.ptr, (size_t)req->GroupId.len)) ||
               grp->state == COLL_GROUP_DEAD) {
        resp->ErrorCode = TRIB_KAFKA_GROUP_ID_NOT_FOUND;
    }
    coll_req_note_error(r, resp->ErrorCode);
    if (resp->ErrorCode) {
        nt = 0;
    }
    for (int32_t i = 0; i < nt; i++) {
        const OffsetDeleteRequest_OffsetDeleteRequestTopic *t = &req->Topics.items[i];
        OffsetDeleteResponse_OffsetDeleteResponseTopic_init(&ts[i]);
        ts[i].Name = t->Name;
        int32_t np = t->Partitions.count > 0 ? t->Partitions.count : 0;
        OffsetDeleteResponse_OffsetDeleteResponsePartition *ps =
            coll_req_alloc(r, (np ? (size_t)np : 1) * sizeof(*ps));
        if (!ps) {
            coll_req_reject(r, "out of memory");
            return;
        }
        bool subscribed = t->Name.len > 0 && grp->state != COLL_GROUP_EMPTY &&
                          coll_group_subscribed(grp, t->Name.ptr, (size_t)t->Name.len);
        bool topic_ok = coll_authorized_k(r, COLL_OP_READ, COLL_RES_TOPIC, t->Name);
        for (int32_t k = 0; k < np; k++) {
            OffsetDeleteResponse_OffsetDeleteResponsePartition_init(&ps[k]);
            ps[k].PartitionIndex = t->Partitions.items[k].PartitionIndex;
            if (!topic_ok) {
                ps[k].ErrorCode = TRIB_KAFKA_TOPIC_AUTHORIZATION_FAILED;
            } else if (subscribed) {
                ps[k].ErrorCode = TRIB_KAFKA_GROUP_SUBSCRIBED_TO_TOPIC;
            } else if (t->Name.len > 0) {
                coll_group_offset_delete(g, grp, t->Name.ptr, (size_t)t->Name.len,
                                         ps[k].PartitionIndex);
            } else {
                ps[k].ErrorCode = TRIB_KAFKA_UNKNOWN_TOPIC_OR_PARTITION;
            }
            coll_req_note_error(r, ps[k].ErrorCode);
        }
        ts[i].Partitions.items = ps;
        ts[i].Partitions.count = np;
    }
    resp->Topics.items = ts;
    resp->Topics.count = nt;
    coll_req_respond(r, &OffsetDeleteResponse_codec, resp);
}
