/* SPDX-License-Identifier: Apache-2.0 */
/*
 * LeaveGroup (key 13), versions 0-5 (v4+ flexible).
 *
 * v0-2 remove the one member named by MemberId (errors at the top level);
 * v3+ remove a batch of members, each by MemberId or, for static members,
 * by GroupInstanceId (KIP-345), with an error per member. A leave starts a
 * rebalance for those who stay; a group left by its last member becomes
 * Empty with the next generation. v5 Reason is not kept.
 */
#include "server/server_int.h"

#include "group/group.h"
#include "kafka/gen/kafka_messages.h"

void coll_api_leave_group(coll_req_t *r)
{
    const LeaveGroupRequest *req = r->body;
    if (!coll_authorized_k(r, COLL_OP_READ, COLL_RES_GROUP, req->GroupId)) {
        LeaveGroupResponse *resp = coll_req_alloc(r, sizeof(*resp));
        if (!resp) {
            coll_req_reject(r, "out of memory");
            return;
        }
        LeaveGroupResponse_init(resp);
        resp->ErrorCode = TRIB_KAFKA_GROUP_AUTHORIZATION_FAILED;
        coll_req_note_error(r, resp->ErrorCode);
        coll_req_respond(r, &LeaveGroupResponse_codec, resp);
        return;
    }
    coll_gcall_t *c = coll_req_gcall(r);
    if (!c) {
        coll_req_reject(r, "out of memory");
        return;
    }
    coll_group_leave(r->srv->groups, c);
}
