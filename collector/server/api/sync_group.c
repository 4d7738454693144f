/* SPDX-License-Identifier: Apache-2.0 */
/*
 * SyncGroup (key 14), versions 0-5 (v4+ flexible).
 *
 * Followers park until the leader's SyncGroup brings the assignments
 * (opaque bytes, handed out as they came); then every member gets its own
 * and the group is Stable (group/coordinator.c). v3+ check
 * GroupInstanceId; v5 checks and echoes ProtocolType/ProtocolName
 * (INCONSISTENT_GROUP_PROTOCOL on a mismatch).
 */
#include "server/server_int.h"

#include "group/group.h"
#include "kafka/gen/kafka_messages.h"

void coll_api_sync_group(coll_req_t *r)
{
    const SyncGroupRequest *req = r->body;
    if (!coll_authorized_k(r, COLL_OP_READ, COLL_RES_GROUP, req->GroupId)) {
        SyncGroupResponse *resp = coll_req_alloc(r, sizeof(*resp));
        if (!resp) {
            coll_req_reject(r, "out of memory");
            return;
        }
        SyncGroupResponse_init(resp);
        resp->ErrorCode = TRIB_KAFKA_GROUP_AUTHORIZATION_FAILED;
        resp->Assignment.ptr = (const uint8_t *)"";
        resp->Assignment.len = 0;
        coll_req_note_error(r, resp->ErrorCode);
        coll_req_respond(r, &SyncGroupResponse_codec, resp);
        return;
    }
    coll_gcall_t *c = coll_req_gcall(r);
    if (!c) {
        coll_req_reject(r, "out of memory");
        return;
    }
    coll_group_sync(r->srv->groups, c);
}
