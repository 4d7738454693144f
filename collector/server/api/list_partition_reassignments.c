/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ListPartitionReassignments (key 46), version 0 (flexible), KIP-455.
 *
 * The partitions being reassigned, with their full replica list (target
 * and original, preferred first), the replicas being added and those
 * being removed, as the topic znodes say (every broker reads them; Kafka
 * answers on the controller only, and so does this one: NOT_CONTROLLER
 * elsewhere, so a client sees the controller's view). Null topics means
 * every topic; a named topic or partition that does not exist, or is not
 * moving, is left out, as Kafka does. Authorization: DESCRIBE on the
 * cluster, else CLUSTER_AUTHORIZATION_FAILED.
 */
#include "server/server_int.h"

#include <string.h>

#include "kafka/gen/kafka_messages.h"

typedef ListPartitionReassignmentsResponse_OngoingTopicReassignment otopic_t;
typedef ListPartitionReassignmentsResponse_OngoingPartitionReassignment opart_t;

static trib_karr_int32_t copy_ids(coll_req_t *r, const int32_t *ids, int32_t n)
{
    trib_karr_int32_t a = {NULL, 0};
    a.items = coll_req_alloc(r, (size_t)(n ? n : 1) * sizeof(int32_t));
    if (a.items) {
        memcpy(a.items, ids, (size_t)n * sizeof(int32_t));
        a.count = n;
    }
    return a;
}

/* Fills o with t's moving partitions among parts[0..np) (all when parts is NULL); false if none. */
static bool one_topic(coll_req_t *r, const coll_cluster_t *cl, coll_topic_t *t,
                      const int32_t *parts, int32_t np, otopic_t *o)
{
    int32_t n = parts ? np : t->npartitions;
    opart_t *v = coll_req_alloc(r, (size_t)(n ? n : 1) * sizeof(*v));
    if (!v) {
        return false;
    }
    int32_t k = 0;
    for (int32_t j = 0; j < n; j++) {
        int32_t i = parts ? parts[j] : j;
        coll_partition_t *p = coll_cluster_partition(t, i);
        int32_t add[COLL_REASSIGN_MAX_REPLICAS], rm[COLL_REASSIGN_MAX_REPLICAS], na, nr;
        if (!p || !coll_cluster_reassignment(cl, t, i, add, &na, rm, &nr)) {
            continue;
        }
        ListPartitionReassignmentsResponse_OngoingPartitionReassignment_init(&v[k]);
        v[k].PartitionIndex = i;
        v[k].Replicas = copy_ids(r, p->replicas, p->nreplicas);
        v[k].AddingReplicas = copy_ids(r, add, na);
        v[k].RemovingReplicas = copy_ids(r, rm, nr);
        k++;
    }
    if (k == 0) {
        return false;
    }
    ListPartitionReassignmentsResponse_OngoingTopicReassignment_init(o);
    o->Name = trib_kstr(coll_req_strdup(r, trib_kstr(t->name)));
    o->Partitions.items = v;
    o->Partitions.count = k;
    return true;
}

void coll_api_list_partition_reassignments(coll_req_t *r)
{
    const ListPartitionReassignmentsRequest *req = r->body;
    coll_cluster_t *cl = r->srv->cluster;
    ListPartitionReassignmentsResponse *resp = coll_req_alloc(r, sizeof(*resp));
    if (!resp) {
        coll_req_reject(r, "out of memory");
        return;
    }
    ListPartitionReassignmentsResponse_init(resp);
    resp->ErrorMessage = trib_kstr(NULL);
    if (!coll_authorized_cluster(r, COLL_OP_DESCRIBE)) {
        resp->ErrorCode = TRIB_KAFKA_CLUSTER_AUTHORIZATION_FAILED;
        coll_req_note_error(r, resp->ErrorCode);
        resp->Topics.count = 0;
        coll_req_respond(r, &ListPartitionReassignmentsResponse_codec, resp);
        return;
    }
    if (coll_cluster_replicated(cl) && coll_cluster_controller_id(cl) != coll_cluster_node_id(cl)) {
        resp->ErrorCode = TRIB_KAFKA_NOT_CONTROLLER;
        resp->ErrorMessage = trib_kstr("This broker is not the controller.");
        coll_req_note_error(r, resp->ErrorCode);
        resp->Topics.count = 0;
        coll_req_respond(r, &ListPartitionReassignmentsResponse_codec, resp);
        return;
    }
    size_t nt;
    coll_topic_t **all = NULL;
    if (req->Topics.count < 0) {
        nt = coll_cluster_topic_count(cl);
        all = coll_req_alloc(r, (nt ? nt : 1) * sizeof(*all));
        if (!all) {
            coll_req_reject(r, "out of memory");
            return;
        }
        coll_cluster_topics(cl, all);
    } else {
        nt = (size_t)req->Topics.count;
    }
    otopic_t *out = coll_req_alloc(r, (nt ? nt : 1) * sizeof(*out));
    if (!out) {
        coll_req_reject(r, "out of memory");
        return;
    }
    int32_t k = 0;
    for (size_t i = 0; i < nt; i++) {
        if (all) {
            k += one_topic(r, cl, all[i], NULL, 0, &out[k]) ? 1 : 0;
            continue;
        }
        const ListPartitionReassignmentsRequest_ListPartitionReassignmentsTopics *t =
            &req->Topics.items[i];
        coll_topic_t *topic =
            t->Name.len > 0 ? coll_cluster_topic(cl, t->Name.ptr, (size_t)t->Name.len) : NULL;
        if (topic) {
            int32_t np = t->PartitionIndexes.count > 0 ? t->PartitionIndexes.count : 0;
            k += one_topic(r, cl, topic, t->PartitionIndexes.items, np, &out[k]) ? 1 : 0;
        }
    }
    resp->Topics.items = out;
    resp->Topics.count = k;
    coll_req_respond(r, &ListPartitionReassignmentsResponse_codec, resp);
}
