/* SPDX-License-Identifier: Apache-2.0 */
/*
 * AlterPartitionReassignments (key 45), version 0 (flexible), KIP-455.
 *
 * Each partition names its target replicas (preferred leader first), or
 * null to cancel the reassignment in progress. Only the controller
 * starts reassignments (another broker answers NOT_CONTROLLER, in the
 * top-level ErrorCode, as Kafka's); the controller records the move in
 * the topic znode and completes it once the new replicas are in sync
 * (cluster/zk_reassign.c). The answer comes once the move is recorded,
 * not when it is complete: ListPartitionReassignments shows it until then.
 *
 * Per partition: UNKNOWN_TOPIC_OR_PARTITION, INVALID_REPLICA_ASSIGNMENT
 * (an empty list, a broker twice, a broker that is not registered),
 * NO_REASSIGNMENT_IN_PROGRESS (cancelling a partition that is not
 * moving), REQUEST_TIMED_OUT (another change of the topic's assignment
 * was being written: ask again). The local backend refuses every
 * partition (INVALID_REPLICA_ASSIGNMENT: a single node). Authorization:
 * ALTER on the cluster, else CLUSTER_AUTHORIZATION_FAILED at the top.
 */
#include "server/server_int.h"

#include <stdio.h>
#include <string.h>

#include "kafka/gen/kafka_messages.h"

typedef AlterPartitionReassignmentsResponse_ReassignablePartitionResponse presp_t;

typedef struct topic_ctx {
    coll_req_t *r;
    coll_admin_wait_t *w;
    AlterPartitionReassignmentsResponse *resp;
    coll_reassign_part_t *parts;
    presp_t *out;
    int32_t n;
} topic_ctx_t;

static void set(coll_req_t *r, presp_t *o, int16_t code, const char *msg)
{
    o->ErrorCode = code;
    o->ErrorMessage = code && msg ? trib_kstr(coll_req_strdup(r, trib_kstr(msg))) : trib_kstr(NULL);
    coll_req_note_error(r, code);
}

static void topic_done(void *arg, const coll_admin_result_t *res)
{
    topic_ctx_t *c = arg;
    for (int32_t k = 0; k < c->n; k++) {
        if (c->parts[k].code != 0) {
            set(c->r, &c->out[k], c->parts[k].code, c->parts[k].msg);
        } else {
            set(c->r, &c->out[k], res->code, res->msg);
        }
    }
    if (res->code == TRIB_KAFKA_NOT_CONTROLLER) {
        c->resp->ErrorCode = TRIB_KAFKA_NOT_CONTROLLER;
        c->resp->ErrorMessage = trib_kstr(coll_req_strdup(c->r, trib_kstr(res->msg)));
    }
    if (c->w) {
        coll_admin_wait_done(c->w);
    }
}

void coll_api_alter_partition_reassignments(coll_req_t *r)
{
    const AlterPartitionReassignmentsRequest *req = r->body;
    coll_cluster_t *cl = r->srv->cluster;
    AlterPartitionReassignmentsResponse *resp = coll_req_alloc(r, sizeof(*resp));
    if (!resp) {
        coll_req_reject(r, "out of memory");
        return;
    }
    AlterPartitionReassignmentsResponse_init(resp);
    resp->ErrorMessage = trib_kstr(NULL);
    if (!coll_authorized_cluster(r, COLL_OP_ALTER)) {
        /* ALTER on the cluster, as Kafka's: the whole request is refused at the top. */
        resp->ErrorCode = TRIB_KAFKA_CLUSTER_AUTHORIZATION_FAILED;
        coll_req_note_error(r, resp->ErrorCode);
        resp->Responses.count = 0;
        coll_req_respond(r, &AlterPartitionReassignmentsResponse_codec, resp);
        return;
    }
    int32_t nt = req->Topics.count > 0 ? req->Topics.count : 0;
    AlterPartitionReassignmentsResponse_ReassignableTopicResponse *tr =
        coll_req_alloc(r, (size_t)(nt ? nt : 1) * sizeof(*tr));
    if (!tr) {
        coll_req_reject(r, "out of memory");
        return;
    }
    resp->Responses.items = tr;
    resp->Responses.count = nt;
    coll_admin_wait_t *w = coll_admin_wait_new(r, &AlterPartitionReassignmentsResponse_codec, resp);
    for (int32_t i = 0; i < nt; i++) {
        const AlterPartitionReassignmentsRequest_ReassignableTopic *t = &req->Topics.items[i];
        AlterPartitionReassignmentsResponse_ReassignableTopicResponse_init(&tr[i]);
        tr[i].Name = t->Name;
        int32_t np = t->Partitions.count > 0 ? t->Partitions.count : 0;
        presp_t *out = coll_req_alloc(r, (size_t)(np ? np : 1) * sizeof(*out));
        coll_reassign_part_t *parts = coll_req_alloc(r, (size_t)(np ? np : 1) * sizeof(*parts));
        topic_ctx_t *c = coll_req_alloc(r, sizeof(*c));
        if (!out || !parts || !c) {
            tr[i].Partitions.count = 0;
            continue;
        }
        tr[i].Partitions.items = out;
        tr[i].Partitions.count = np;
        coll_topic_t *topic =
            t->Name.len > 0 ? coll_cluster_topic(cl, t->Name.ptr, (size_t)t->Name.len) : NULL;
        for (int32_t k = 0; k < np; k++) {
            const AlterPartitionReassignmentsRequest_ReassignablePartition *rp =
                &t->Partitions.items[k];
            AlterPartitionReassignmentsResponse_ReassignablePartitionResponse_init(&out[k]);
            out[k].PartitionIndex = rp->PartitionIndex;
            out[k].ErrorMessage = trib_kstr(NULL);
            memset(&parts[k], 0, sizeof(parts[k]));
            parts[k].partition = rp->PartitionIndex;
            if (rp->Replicas.count < 0) {
                parts[k].nreplicas = -1;
            } else if (rp->Replicas.count > COLL_REASSIGN_MAX_REPLICAS) {
                parts[k].code = TRIB_KAFKA_INVALID_REPLICA_ASSIGNMENT;
                snprintf(parts[k].msg, sizeof(parts[k].msg), "Too many replicas.");
            } else {
                parts[k].nreplicas = rp->Replicas.count;
                memcpy(parts[k].replicas, rp->Replicas.items,
                       (size_t)rp->Replicas.count * sizeof(int32_t));
            }
            if (!topic) {
                parts[k].code = TRIB_KAFKA_UNKNOWN_TOPIC_OR_PARTITION;
                snprintf(parts[k].msg, sizeof(parts[k].msg), "Unknown topic.");
            }
        }
        c->r = r;
        c->w = w;
        c->resp = resp;
        c->parts = parts;
        c->out = out;
        c->n = np;
        if (w) {
            w->left++;
        }
        if (!topic || np == 0) {
            coll_admin_result_t ok = {TRIB_KAFKA_NONE, ""};
            topic_done(c, &ok);
            continue;
        }
        coll_cluster_reassign_async(cl, topic, parts, (size_t)np, topic_done, c);
    }
    if (w) {
        coll_admin_wait_done(w);
        return;
    }
    coll_req_respond(r, &AlterPartitionReassignmentsResponse_codec, resp);
}
