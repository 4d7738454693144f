/* SPDX-License-Identifier: Apache-2.0 */
/*
 * CreatePartitions (key 37), versions 0-3 (v2+ flexible).
 *
 * Grows a topic to Count partitions, synchronously (new logs created before
 * the response). Kafka's errors: UNKNOWN_TOPIC_OR_PARTITION, a count not
 * above the current one INVALID_PARTITIONS, Assignments (when given) that
 * do not put each new partition on this node alone
 * INVALID_REPLICA_ASSIGNMENT, a topic listed twice INVALID_REQUEST.
 * ValidateOnly checks without changing anything.
 *
 * On the zookeeper backend the new partitions are assigned as Kafka does
 * (after the existing ones, starting from partition 0's first replica),
 * the topic's assignment is rewritten compared-and-set at the version read,
 * and the request is answered once this broker shows the new partitions
 * with leaders (or after a bounded wait).
 */
#include "server/server_int.h"

#include <stdio.h>
#include <string.h>

#include "kafka/gen/kafka_messages.h"

void coll_api_create_partitions(coll_req_t *r)
{
    const CreatePartitionsRequest *req = r->body;
    coll_cluster_t *cl = r->srv->cluster;
    int32_t node = coll_cluster_node_id(cl);
    int32_t n = req->Topics.count > 0 ? req->Topics.count : 0;
    CreatePartitionsResponse *resp = coll_req_alloc(r, sizeof(*resp));
    CreatePartitionsResponse_CreatePartitionsTopicResult *out =
        coll_req_alloc(r, (size_t)n * sizeof(*out));
    if (!resp || (n && !out)) {
        coll_req_reject(r, "out of memory");
        return;
    }
    CreatePartitionsResponse_init(resp);
    resp->Results.items = out;
    resp->Results.count = n;
    coll_admin_wait_t *w = coll_admin_wait_new(r, &CreatePartitionsResponse_codec, resp);
    for (int32_t i = 0; i < n; i++) {
        const CreatePartitionsRequest_CreatePartitionsTopic *ct = &req->Topics.items[i];
        CreatePartitionsResponse_CreatePartitionsTopicResult *o = &out[i];
        CreatePartitionsResponse_CreatePartitionsTopicResult_init(o);
        o->Name = ct->Name;
        o->ErrorMessage = trib_kstr(NULL);
        coll_admin_result_t res = {TRIB_KAFKA_NONE, ""};
        bool dup = false;
        for (int32_t j = 0; j < n; j++) {
            const trib_kstr_t *x = &req->Topics.items[j].Name;
            dup |= j != i && x->len == ct->Name.len &&
                   memcmp(x->ptr, ct->Name.ptr, (size_t)(x->len > 0 ? x->len : 0)) == 0;
        }
        coll_topic_t *t = coll_cluster_topic(cl, ct->Name.ptr, (size_t)ct->Name.len);
        if (dup) {
            res.code = TRIB_KAFKA_INVALID_REQUEST;
            snprintf(res.msg, sizeof(res.msg), "Duplicate topic in the request.");
        } else if (!coll_authorized_k(r, COLL_OP_ALTER, COLL_RES_TOPIC, ct->Name)) {
            res.code = TRIB_KAFKA_TOPIC_AUTHORIZATION_FAILED;
            snprintf(res.msg, sizeof(res.msg), "Topic authorization failed.");
        } else if (!t) {
            res.code = TRIB_KAFKA_UNKNOWN_TOPIC_OR_PARTITION;
            snprintf(res.msg, sizeof(res.msg), "The topic '%.*s' does not exist.",
                     (int)ct->Name.len, ct->Name.ptr);
        } else if (w) {
            /* The zookeeper backend assigns the new partitions as Kafka does. */
            if (ct->Assignments.count > 0) {
                res.code = TRIB_KAFKA_INVALID_REQUEST;
                snprintf(res.msg, sizeof(res.msg),
                         "Manual assignments of new partitions are not supported: leave them "
                         "out to have them assigned.");
            } else {
                coll_admin_slot_t *slot = coll_admin_slot_new(w, &o->ErrorCode, &o->ErrorMessage);
                if (slot) {
                    coll_cluster_create_partitions_async(cl, t, ct->Count, req->ValidateOnly,
                                                         coll_admin_slot_cb, slot);
                    continue;
                }
                res.code = TRIB_KAFKA_UNKNOWN_SERVER_ERROR;
                snprintf(res.msg, sizeof(res.msg), "out of memory");
            }
        } else {
            if (ct->Assignments.count >= 0) {
                int32_t want = ct->Count - t->npartitions;
                bool ok = ct->Assignments.count == want;
                for (int32_t k = 0; ok && k < ct->Assignments.count; k++) {
                    const trib_karr_int32_t *b = &ct->Assignments.items[k].BrokerIds;
                    ok = b->count == 1 && b->items[0] == node;
                }
                if (!ok && want > 0) {
                    res.code = TRIB_KAFKA_INVALID_REPLICA_ASSIGNMENT;
                    snprintf(res.msg, sizeof(res.msg),
                             "Each new partition must be assigned to broker %d alone.", (int)node);
                }
            }
            if (res.code == TRIB_KAFKA_NONE) {
                coll_cluster_create_partitions(cl, t, ct->Count, req->ValidateOnly, &res);
            }
        }
        o->ErrorCode = res.code;
        if (res.code != TRIB_KAFKA_NONE) {
            trib_kstr_t m = {res.msg, (int32_t)strlen(res.msg)};
            o->ErrorMessage = trib_kstr(coll_req_strdup(r, m));
        }
        coll_req_note_error(r, res.code);
    }
    if (w) {
        coll_admin_wait_done(w);
        return;
    }
    coll_req_respond(r, &CreatePartitionsResponse_codec, resp);
}
