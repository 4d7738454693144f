/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ListGroups (key 16), versions 0-5 (v3+ flexible; v4 StatesFilter and
 * GroupState, v5 TypesFilter and GroupType).
 *
 * Every group this coordinator knows, offsets-only groups included
 * (ProtocolType "" then, as Kafka lists them). All groups are "classic";
 * a TypesFilter without "classic" (case-insensitive) lists nothing.
 */
#include "server/server_int.h"

#include <stdlib.h>
#include <strings.h>

#include "group/group.h"
#include "kafka/gen/kafka_messages.h"

static bool in_filter(const trib_karr_str_t *f, const char *v)
{
    if (f->count <= 0) {
        return true;
    }
    for (int32_t i = 0; i < f->count; i++) {
        trib_kstr_t s = f->items[i];
        if (s.len >= 0 && strlen(v) == (size_t)s.len && strncasecmp(s.ptr, v, (size_t)s.len) == 0) {
            return true;
        }
    }
    return false;
}

void coll_api_list_groups(coll_req_t *r)
{
    const ListGroupsRequest *req = r->body;
    ListGroupsResponse *resp = coll_req_alloc(r, sizeof(*resp));
    if (!resp) {
        coll_req_reject(r, "out of memory");
        return;
    }
    ListGroupsResponse_init(resp);
    coll_groups_t *g = r->srv->groups;
    if (!g) {
        resp->ErrorCode = TRIB_KAFKA_COORDINATOR_NOT_AVAILABLE;
        coll_req_note_error(r, resp->ErrorCode);
        coll_req_respond(r, &ListGroupsResponse_codec, resp);
        return;
    }
    size_t n = coll_groups_list(g, NULL, 0);
    coll_group_t **all = coll_req_alloc(r, (n ? n : 1) * sizeof(*all));
    ListGroupsResponse_ListedGroup *out = coll_req_alloc(r, (n ? n : 1) * sizeof(*out));
    if (!all || !out) {
        coll_req_reject(r, "out of memory");
        return;
    }
    coll_groups_list(g, all, n);
    /* As Kafka: DESCRIBE on the cluster lists every group, else those it may describe. */
    bool every = coll_authorized_quiet(r, COLL_OP_DESCRIBE, COLL_RES_CLUSTER, COLL_ACL_CLUSTER_NAME,
                                       sizeof(COLL_ACL_CLUSTER_NAME) - 1);
    int32_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (!every && !coll_authorized_quiet(r, COLL_OP_DESCRIBE, COLL_RES_GROUP, all[i]->id,
                                             strlen(all[i]->id))) {
            continue;
        }
        const char *state = coll_group_state_name(all[i]->state);
        if (r->api_version >= 4 && !in_filter(&req->StatesFilter, state)) {
            continue;
        }
        if (r->api_version >= 5 && !in_filter(&req->TypesFilter, "classic")) {
            continue;
        }
        ListGroupsResponse_ListedGroup *o = &out[k++];
        ListGroupsResponse_ListedGroup_init(o);
        o->GroupId = trib_kstr(all[i]->id);
        o->ProtocolType = trib_kstr(all[i]->protocol_type ? all[i]->protocol_type : "");
        o->GroupState = trib_kstr(state);
        o->GroupType = trib_kstr("classic");
    }
    resp->Groups.items = out;
    resp->Groups.count = k;
    coll_req_respond(r, &ListGroupsResponse_codec, resp);
}
