/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Heartbeat (key 12), versions 0-4 (v4 flexible).
 *
 * Keeps a member's session alive. Errors, as Kafka's: UNKNOWN_MEMBER_ID
 * (not a member, or the group is Empty), ILLEGAL_GENERATION,
 * FENCED_INSTANCE_ID (v3+), REBALANCE_IN_PROGRESS while the group prepares
 * a rebalance (the member must rejoin). A heartbeat between JoinGroup and
 * SyncGroup (CompletingRebalance) is accepted, as in Kafka 2.4+.
 */
#include "server/server_int.h"

#include "group/group.h"
#include "kafka/gen/kafka_messages.h"

void coll_api_heartbeat(coll_req_t *r)
{
    const HeartbeatRequest *req = r->body;
    if (!coll_authorized_k(r, COLL_OP_READ, COLL_RES_GROUP, req->GroupId)) {
        HeartbeatResponse *resp = coll_req_alloc(r, sizeof(*resp));
        if (!resp) {
            coll_req_reject(r, "out of memory");
            return;
        }
        HeartbeatResponse_init(resp);
        resp->ErrorCode = TRIB_KAFKA_GROUP_AUTHORIZATION_FAILED;
        coll_req_note_error(r, resp->ErrorCode);
        coll_req_respond(r, &HeartbeatResponse_codec, resp);
        return;
    }
    coll_gcall_t *c = coll_req_gcall(r);
    if (!c) {
        coll_req_reject(r, "out of memory");
        return;
    }
    coll_group_heartbeat(r->srv->groups, c);
}
