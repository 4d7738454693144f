/* SPDX-License-Identifier: Apache-2.0 */
/*
 * DeleteTopics (key 20), versions 0-6 (v4+ flexible; v6 by name or id).
 *
 * Deletion is synchronous: the topic leaves the metadata checkpoint, its
 * parked fetches are answered (they see the topic gone), and its partition
 * logs are emptied. Differences from Kafka: the storage cannot remove a
 * log directory yet, so each <topic>-<partition> directory stays behind,
 * empty, and is ignored at startup (and reused if the topic is created
 * again). A name or id listed twice gets INVALID_REQUEST.
 *
 * On the zookeeper backend each topic is marked in /admin/delete_topics;
 * the controller removes its znodes, every broker drops it and deletes
 * its logs, and the request is answered once this broker no longer lists
 * the topic (or after a bounded wait).
 */
#include "server/server_int.h"

#include <string.h>

#include "kafka/gen/kafka_messages.h"

void coll_api_delete_topics(coll_req_t *r)
{
    const DeleteTopicsRequest *req = r->body;
    coll_cluster_t *cl = r->srv->cluster;
    bool v6 = r->api_version >= 6;
    int32_t n = v6 ? req->Topics.count : req->TopicNames.count;
    if (n < 0) {
        n = 0;
    }
    DeleteTopicsResponse *resp = coll_req_alloc(r, sizeof(*resp));
    DeleteTopicsResponse_DeletableTopicResult *out = coll_req_alloc(r, (size_t)n * sizeof(*out));
    if (!resp || (n && !out)) {
        coll_req_reject(r, "out of memory");
        return;
    }
    DeleteTopicsResponse_init(resp);
    /* Resolve everything first, so duplicates are seen before anything is deleted. */
    coll_topic_t **topics = coll_req_alloc(r, (size_t)(n ? n : 1) * sizeof(*topics));
    if (!topics) {
        coll_req_reject(r, "out of memory");
        return;
    }
    for (int32_t i = 0; i < n; i++) {
        DeleteTopicsResponse_DeletableTopicResult *o = &out[i];
        DeleteTopicsResponse_DeletableTopicResult_init(o);
        trib_kstr_t name = v6 ? req->Topics.items[i].Name : req->TopicNames.items[i];
        coll_topic_t *t = NULL;
        if (v6 && name.len < 0) {
            t = coll_cluster_topic_by_id(cl, &req->Topics.items[i].TopicId);
            o->TopicId = req->Topics.items[i].TopicId;
            o->ErrorCode = t ? TRIB_KAFKA_NONE : TRIB_KAFKA_UNKNOWN_TOPIC_ID;
            if (t) {
                o->Name = trib_kstr(t->name);
            }
        } else {
            o->Name = name;
            t = name.len >= 0 ? coll_cluster_topic(cl, name.ptr, (size_t)name.len) : NULL;
            o->ErrorCode = t ? TRIB_KAFKA_NONE : TRIB_KAFKA_UNKNOWN_TOPIC_OR_PARTITION;
            if (t && v6) {
                o->TopicId = t->id;
            }
        }
        /* DELETE on the topic; an unknown topic one may not describe is refused too. */
        trib_kstr_t tn = t ? (trib_kstr_t){t->name, (int32_t)t->name_len} : name;
        if ((t || tn.len >= 0) && !coll_authorized_k(r, COLL_OP_DELETE, COLL_RES_TOPIC, tn)) {
            if (t ||
                !coll_authorized_quiet(r, COLL_OP_DESCRIBE, COLL_RES_TOPIC,
                                       tn.len > 0 ? tn.ptr : "", tn.len > 0 ? (size_t)tn.len : 0)) {
                o->ErrorCode = TRIB_KAFKA_TOPIC_AUTHORIZATION_FAILED;
                t = NULL;
            }
        }
        topics[i] = t;
        for (int32_t j = 0; t && j < i; j++) {
            if (topics[j] == t) {
                o->ErrorCode = TRIB_KAFKA_INVALID_REQUEST;
                out[j].ErrorCode = TRIB_KAFKA_INVALID_REQUEST;
            }
        }
    }
    resp->Responses.items = out;
    resp->Responses.count = n;
    coll_admin_wait_t *w = coll_admin_wait_new(r, &DeleteTopicsResponse_codec, resp);
    for (int32_t i = 0; i < n; i++) {
        DeleteTopicsResponse_DeletableTopicResult *o = &out[i];
        if (o->ErrorCode == TRIB_KAFKA_NONE && topics[i]) {
            if (o->Name.ptr == topics[i]->name) {
                /* The name points into the topic about to be freed: copy it. */
                trib_kstr_t nm = {topics[i]->name, (int32_t)topics[i]->name_len};
                o->Name = trib_kstr(coll_req_strdup(r, nm));
            }
            coll_admin_slot_t *slot =
                w ? coll_admin_slot_new(w, &o->ErrorCode,
                                        r->api_version >= 5 ? &o->ErrorMessage : NULL)
                  : NULL;
            if (slot) {
                coll_cluster_delete_topic_async(cl, topics[i], coll_admin_slot_cb, slot);
                continue;
            }
            coll_admin_result_t res;
            coll_cluster_delete_topic(cl, topics[i], &res);
            o->ErrorCode = res.code;
            if (res.code != TRIB_KAFKA_NONE && r->api_version >= 5) {
                trib_kstr_t m = {res.msg, (int32_t)strlen(res.msg)};
                o->ErrorMessage = trib_kstr(coll_req_strdup(r, m));
            }
        } else if (o->ErrorCode == TRIB_KAFKA_INVALID_REQUEST && r->api_version >= 5) {
            o->ErrorMessage = trib_kstr("topic listed more than once");
        }
        coll_req_note_error(r, o->ErrorCode);
    }
    if (w) {
        coll_admin_wait_done(w);
        return;
    }
    coll_req_respond(r, &DeleteTopicsResponse_codec, resp);
}
