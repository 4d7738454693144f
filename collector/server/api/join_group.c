/* SPDX-License-Identifier: Apache-2.0 */
/*
 * JoinGroup (key 11), versions 0-9 (v6+ flexible).
 *
 * The classic protocol's join phase; the state machine is in
 * group/coordinator.c. The request parks in its member until the join
 * phase completes (every known member rejoined, or the rebalance timeout
 * passed), so the response may come much later than the request.
 * v0 has no RebalanceTimeoutMs (the session timeout is used); v4+ answer
 * an unknown member with MEMBER_ID_REQUIRED and a member id to come back
 * with (KIP-394); v5+ carry GroupInstanceId (static membership, KIP-345);
 * v7+ echo ProtocolType; v8 Reason is logged nowhere; v9 SkipAssignment
 * is always false (no broker-side assignors).
 *
 * v0-1 are deprecated in Kafka 4 but kept: librdkafka 2.0.2's SASL GSSAPI
 * feature gate tests JoinGroup v0 (KAFKA-19444).
 */
#include "server/server_int.h"

#include "group/group.h"
#include "kafka/gen/kafka_messages.h"

void coll_api_join_group(coll_req_t *r)
{
    const JoinGroupRequest *req = r->body;
    if (!coll_authorized_k(r, COLL_OP_READ, COLL_RES_GROUP, req->GroupId)) {
        JoinGroupResponse *resp = coll_req_alloc(r, sizeof(*resp));
        if (!resp) {
            coll_req_reject(r, "out of memory");
            return;
        }
        JoinGroupResponse_init(resp);
        resp->ErrorCode = TRIB_KAFKA_GROUP_AUTHORIZATION_FAILED;
        resp->GenerationId = -1;
        resp->ProtocolName = r->api_version >= 7 ? trib_kstr(NULL) : trib_kstr("");
        resp->Leader = trib_kstr("");
        resp->MemberId = trib_kstr("");
        coll_req_note_error(r, resp->ErrorCode);
        coll_req_respond(r, &JoinGroupResponse_codec, resp);
        return;
    }
    coll_gcall_t *c = coll_req_gcall(r);
    if (!c) {
        coll_req_reject(r, "out of memory");
        return;
    }
    coll_group_join(r->srv->groups, c);
}
