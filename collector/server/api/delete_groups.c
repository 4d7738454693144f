/* SPDX-License-Identifier: Apache-2.0 */
/*
 * DeleteGroups (key 42), versions 0-2 (v2 flexible).
 *
 * Deletes Empty groups with their committed offsets (tombstones in
 * __consumer_offsets); a group with members gets NON_EMPTY_GROUP, an
 * unknown one GROUP_ID_NOT_FOUND.
 */
#include "server/server_int.h"

#include "group/group.h"
#include "kafka/gen/kafka_messages.h"

void coll_api_delete_groups(coll_req_t *r)
{
    const DeleteGroupsRequest *req = r->body;
    int32_t n = req->GroupsNames.count > 0 ? req->GroupsNames.count : 0;
    DeleteGroupsResponse *resp = coll_req_alloc(r, sizeof(*resp));
    DeleteGroupsResponse_DeletableGroupResult *out =
        coll_req_alloc(r, (n ? (size_t)n : 1) * sizeof(*out));
    if (!resp || !out) {
        coll_req_reject(r, "out of memory");
        return;
    }
    DeleteGroupsResponse_init(resp);
    for (int32_t i = 0; i < n; i++) {
        trib_kstr_t id = req->GroupsNames.items[i];
        DeleteGroupsResponse_DeletableGroupResult_init(&out[i]);
        out[i].GroupId = id;
        if (!coll_authorized_k(r, COLL_OP_DELETE, COLL_RES_GROUP, id)) {
            out[i].ErrorCode = TRIB_KAFKA_GROUP_AUTHORIZATION_FAILED;
        } else if (!r->srv->groups || r->srv->stopping) {
            out[i].ErrorCode = TRIB_KAFKA_COORDINATOR_NOT_AVAILABLE;
        } else if (id.len <= 0) {
            out[i].ErrorCode = TRIB_KAFKA_INVALID_GROUP_ID;
        } else {
            out[i].ErrorCode = coll_group_delete(r->srv->groups, id.ptr, (size_t)id.len);
        }
        coll_req_note_error(r, out[i].ErrorCode);
    }
    resp->Results.items = out;
    resp->Results.count = n;
    coll_req_respond(r, &DeleteGroupsResponse_codec, resp);
}
