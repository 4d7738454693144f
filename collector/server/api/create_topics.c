/* SPDX-License-Identifier: Apache-2.0 */
/*
 * CreateTopics (key 19), versions 0-7 (v5+ flexible).
 *
 * Topics are created synchronously (metadata checkpointed, logs created)
 * before the response, so a client sees them in Metadata right after;
 * TimeoutMs is therefore never reached. ValidateOnly (v1+) validates and
 * reports without creating.
 *
 * Per topic: an illegal name gets INVALID_TOPIC_EXCEPTION, an existing one
 * TOPIC_ALREADY_EXISTS, NumPartitions -1 / ReplicationFactor -1 (v4+) the
 * defaults (default_partitions, 1); a replication factor above 1
 * INVALID_REPLICATION_FACTOR (one broker); manual Assignments must put
 * every partition on this node only (else INVALID_REPLICA_ASSIGNMENT) and
 * exclude NumPartitions/ReplicationFactor (else INVALID_REQUEST); unknown
 * or invalid configs INVALID_CONFIG; a name listed twice INVALID_REQUEST.
 * v5+ responses carry the partition count, replication factor and every
 * topic config with its source; v7 the topic id.
 */
#include "server/server_int.h"

#include <stdio.h>
#include <string.h>

#include "kafka/gen/kafka_messages.h"

static bool fill_configs(coll_req_t *r, const coll_tcfg_t *c, uint32_t mask,
                         CreateTopicsResponse_CreatableTopicResult *out)
{
    CreateTopicsResponse_CreatableTopicConfigs *items =
        coll_req_alloc(r, COLL_TCFG_COUNT * sizeof(*items));
    if (!items) {
        return false;
    }
    for (int k = 0; k < COLL_TCFG_COUNT; k++) {
        CreateTopicsResponse_CreatableTopicConfigs_init(&items[k]);
        items[k].Name = trib_kstr(coll_tcfg_defs[k].name);
        items[k].Value = trib_kstr(coll_config_value(r, c, k));
        items[k].ReadOnly = false;
        items[k].ConfigSource = coll_topic_config_source(r->srv->cluster, mask, k);
        items[k].IsSensitive = false;
    }
    out->Configs.items = items;
    out->Configs.count = COLL_TCFG_COUNT;
    return true;
}

static void one(coll_req_t *r, const CreateTopicsRequest *req, int32_t idx,
                CreateTopicsResponse_CreatableTopicResult *out)
{
    const CreateTopicsRequest_CreatableTopic *ct = &req->Topics.items[idx];
    coll_cluster_t *cl = r->srv->cluster;
    int32_t node = coll_cluster_node_id(cl);
    CreateTopicsResponse_CreatableTopicResult_init(out);
    out->Name = ct->Name;
    out->ErrorMessage = trib_kstr(NULL);
    out->NumPartitions = -1;
    out->ReplicationFactor = -1;
    coll_admin_result_t res;
    res.code = TRIB_KAFKA_NONE;
    res.msg[0] = '\0';

    for (int32_t j = 0; j < req->Topics.count; j++) {
        const trib_kstr_t *o = &req->Topics.items[j].Name;
        if (j != idx && o->len == ct->Name.len &&
            memcmp(o->ptr, ct->Name.ptr, (size_t)o->len) == 0) {
            res.code = TRIB_KAFKA_INVALID_REQUEST;
            snprintf(res.msg, sizeof(res.msg),
                     "Create topics request contains multiple entries for the topic.");
            goto done;
        }
    }
    int32_t partitions = ct->NumPartitions;
    int16_t replication = ct->ReplicationFactor;
    if (ct->Assignments.count > 0) {
        if (partitions != -1 || replication != -1) {
            res.code = TRIB_KAFKA_INVALID_REQUEST;
            snprintf(res.msg, sizeof(res.msg),
                     "Both numPartitions or replicationFactor and replicasAssignments were set. "
                     "Both cannot be used at the same time.");
            goto done;
        }
        int32_t n = ct->Assignments.count;
        for (int32_t k = 0; k < n; k++) {
            const CreateTopicsRequest_CreatableReplicaAssignment *a = &ct->Assignments.items[k];
            bool seen = false;
            for (int32_t j = 0; j < n; j++) {
                seen |= ct->Assignments.items[j].PartitionIndex == k;
            }
            if (!seen || a->BrokerIds.count != 1 || a->BrokerIds.items[0] != node) {
                res.code = TRIB_KAFKA_INVALID_REPLICA_ASSIGNMENT;
                snprintf(res.msg, sizeof(res.msg),
                         "Partitions must be numbered 0..%d and each assigned to broker %d only "
                         "(this is a single-node cluster).",
                         (int)n - 1, (int)node);
                goto done;
            }
        }
        partitions = n;
        replication = 1;
    }
    size_t ncfg = ct->Configs.count > 0 ? (size_t)ct->Configs.count : 0;
    coll_config_kv_t *kv = coll_req_alloc(r, (ncfg ? ncfg : 1) * sizeof(*kv));
    if (!kv) {
        res.code = TRIB_KAFKA_UNKNOWN_SERVER_ERROR;
        goto done;
    }
    for (size_t k = 0; k < ncfg; k++) {
        kv[k].name = ct->Configs.items[k].Name;
        kv[k].value = ct->Configs.items[k].Value;
    }
    bool validate_only = r->api_version >= 1 && req->validateOnly;
    coll_topic_t *t = NULL;
    coll_cluster_create_topic(cl, ct->Name.ptr, (size_t)(ct->Name.len > 0 ? ct->Name.len : 0),
                              partitions, replication, kv, ncfg, validate_only, &t, &res);
    if (res.code != TRIB_KAFKA_NONE || r->api_version < 5) {
        if (t && r->api_version >= 7) {
            out->TopicId = t->id;
        }
        goto done;
    }
    const coll_cluster_config_t *cc = coll_cluster_config(cl);
    out->NumPartitions = partitions == -1 ? cc->default_partitions : partitions;
    out->ReplicationFactor = 1;
    if (t) {
        out->TopicId = r->api_version >= 7 ? t->id : out->TopicId;
        fill_configs(r, &t->config, t->config_mask, out);
    } else {
        /* validate_only: what the topic would get. */
        coll_tcfg_t eff = cc->defaults;
        uint32_t mask = 0;
        for (size_t k = 0; k < ncfg; k++) {
            int key = coll_tcfg_find(kv[k].name.ptr, (size_t)kv[k].name.len);
            coll_tcfg_val_t v;
            if (key >= 0 && kv[k].value.len >= 0 &&
                coll_tcfg_parse(key, kv[k].value.ptr, (size_t)kv[k].value.len, &v, NULL, 0) == 0) {
                eff.v[key] = v;
                mask |= 1u << key;
            }
        }
        fill_configs(r, &eff, mask, out);
    }
done:
    out->ErrorCode = res.code;
    if (res.code != TRIB_KAFKA_NONE && r->api_version >= 1) {
        trib_kstr_t m = {res.msg, (int32_t)strlen(res.msg)};
        out->ErrorMessage = trib_kstr(coll_req_strdup(r, m));
    }
    coll_req_note_error(r, res.code);
}

void coll_api_create_topics(coll_req_t *r)
{
    const CreateTopicsRequest *req = r->body;
    CreateTopicsResponse *resp = coll_req_alloc(r, sizeof(*resp));
    int32_t n = req->Topics.count > 0 ? req->Topics.count : 0;
    CreateTopicsResponse_CreatableTopicResult *out = coll_req_alloc(r, (size_t)n * sizeof(*out));
    if (!resp || (n && !out)) {
        coll_req_reject(r, "out of memory");
        return;
    }
    CreateTopicsResponse_init(resp);
    for (int32_t i = 0; i < n; i++) {
        one(r, req, i, &out[i]);
    }
    resp->Topics.items = out;
    resp->Topics.count = n;
    coll_req_respond(r, &CreateTopicsResponse_codec, resp);
}
