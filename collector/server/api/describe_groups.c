/* SPDX-License-Identifier: Apache-2.0 */
/*
 * DescribeGroups (key 15), versions 0-5 (v5 flexible; v3+ authorized
 * operations, v4+ GroupInstanceId).
 *
 * State, protocol type, and the members; for a Stable group also the
 * chosen protocol and each member's metadata (for that protocol) and
 * assignment, as Kafka's GroupMetadata.summary does. An unknown group is
 * answered as Kafka does: no error, state "Dead", no members. A group the
 * principal may not DESCRIBE gets GROUP_AUTHORIZATION_FAILED.
 * AuthorizedOperations is the "not requested" value (INT32_MIN) unless
 * asked, then the group operations (READ, DESCRIBE, DELETE) the ACLs allow.
 */
#include "server/server_int.h"

#include "group/group.h"
#include "kafka/gen/kafka_messages.h"

/* Bits of AclOperation: READ 3, DELETE 6, DESCRIBE 8. */
#define GROUP_OPERATIONS ((1 << 3) | (1 << 6) | (1 << 8))

void coll_api_describe_groups(coll_req_t *r)
{
    const DescribeGroupsRequest *req = r->body;
    int32_t n = req->Groups.count > 0 ? req->Groups.count : 0;
    DescribeGroupsResponse *resp = coll_req_alloc(r, sizeof(*resp));
    DescribeGroupsResponse_DescribedGroup *out =
        coll_req_alloc(r, (n ? (size_t)n : 1) * sizeof(*out));
    if (!resp || !out) {
        coll_req_reject(r, "out of memory");
        return;
    }
    DescribeGroupsResponse_init(resp);
    coll_groups_t *g = r->srv->groups;
    for (int32_t i = 0; i < n; i++) {
        trib_kstr_t id = req->Groups.items[i];
        DescribeGroupsResponse_DescribedGroup *o = &out[i];
        DescribeGroupsResponse_DescribedGroup_init(o);
        o->GroupId = id;
        o->GroupState = trib_kstr("Dead");
        o->ProtocolType = trib_kstr("");
        o->ProtocolData = trib_kstr("");
        o->AuthorizedOperations =
            req->IncludeAuthorizedOperations
                ? coll_authorized_ops(r, COLL_RES_GROUP, id.len > 0 ? id.ptr : "",
                                      id.len > 0 ? (size_t)id.len : 0, GROUP_OPERATIONS)
                : INT32_MIN;
        if (!coll_authorized_k(r, COLL_OP_DESCRIBE, COLL_RES_GROUP, id)) {
            o->ErrorCode = TRIB_KAFKA_GROUP_AUTHORIZATION_FAILED;
            coll_req_note_error(r, o->ErrorCode);
            continue;
        }
        int16_t ce = coll_groups_coordinator_error(g, id.ptr, id.len);
        if (ce != TRIB_KAFKA_NONE) {
            o->ErrorCode = ce;
            coll_req_note_error(r, o->ErrorCode);
            continue;
        }
        if (id.len <= 0) {
            o->ErrorCode = TRIB_KAFKA_INVALID_GROUP_ID;
            coll_req_note_error(r, o->ErrorCode);
            continue;
        }
        const coll_group_t *grp = coll_groups_find(g, id.ptr, (size_t)id.len);
        if (!grp) {
            continue;
        }
        o->GroupState = trib_kstr(coll_group_state_name(grp->state));
        o->ProtocolType = trib_kstr(grp->protocol_type ? grp->protocol_type : "");
        /* As Kafka: protocol, member metadata and assignments only for a Stable group. */
        bool stable = grp->state == COLL_GROUP_STABLE;
        if (stable) {
            o->ProtocolData = trib_kstr(grp->protocol ? grp->protocol : "");
        }
        DescribeGroupsResponse_DescribedGroupMember *ms =
            coll_req_alloc(r, (grp->nmembers ? grp->nmembers : 1) * sizeof(*ms));
        if (!ms) {
            coll_req_reject(r, "out of memory");
            return;
        }
        int32_t k = 0;
        for (const coll_gmember_t *m = grp->members; m; m = m->next) {
            DescribeGroupsResponse_DescribedGroupMember *om = &ms[k++];
            DescribeGroupsResponse_DescribedGroupMember_init(om);
            om->MemberId = trib_kstr(m->id);
            om->GroupInstanceId = trib_kstr(m->instance_id);
            om->ClientId = trib_kstr(m->client_id ? m->client_id : "");
            om->ClientHost = trib_kstr(m->client_host ? m->client_host : "");
            int32_t len;
            const uint8_t *md = stable ? coll_gmember_metadata(grp, m, &len) : NULL;
            om->MemberMetadata.ptr = md ? md : (const uint8_t *)"";
            om->MemberMetadata.len = md ? len : 0;
            om->MemberAssignment.ptr =
                stable && m->assignment ? m->assignment : (const uint8_t *)"";
            om->MemberAssignment.len = stable && m->assignment ? m->assignment_len : 0;
        }
        o->Members.items = ms;
        o->Members.count = k;
    }
    resp->Groups.items = out;
    resp->Groups.count = n;
    coll_req_respond(r, &DescribeGroupsResponse_codec, resp);
}
