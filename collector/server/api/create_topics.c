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
 *
 * On the zookeeper backend (coll_cluster_admin_async) the request parks
 * while each topic is written to ZooKeeper with a replica assignment over
 * the live brokers (or the request's own, every partition with the same
 * number of distinct registered brokers), and is answered once this
 * broker's metadata shows the topics with leaders, so a client can
 * produce right after (or after a bounded wait). A replication factor
 * above the live brokers gets INVALID_REPLICATION_FACTOR, as Kafka's.
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

/* The request's state while topics are written to ZooKeeper. */
typedef struct ct_wait {
    coll_req_t *r;
    CreateTopicsResponse *resp;
    int left; /* topics still being written, +1 while the handler runs */
} ct_wait_t;

typedef struct ct_item {
    ct_wait_t *w;
    int32_t idx;
    int32_t partitions;
    int16_t replication;
    coll_config_kv_t *kv;
    size_t ncfg;
    bool validate_only;
} ct_item_t;

static void ct_finish(ct_wait_t *w)
{
    if (--w->left > 0) {
        return;
    }
    coll_req_t *r = w->r;
    if (r->pending > 0) {
        r->pending--;
    }
    coll_req_respond(r, &CreateTopicsResponse_codec, w->resp);
}

static void fill_configs_effective(coll_req_t *r, const coll_config_kv_t *kv, size_t ncfg,
                                   CreateTopicsResponse_CreatableTopicResult *out);

static void ct_done(void *arg, const coll_admin_result_t *res)
{
    ct_item_t *it = arg;
    coll_req_t *r = it->w->r;
    const CreateTopicsRequest *req = r->body;
    const CreateTopicsRequest_CreatableTopic *ct = &req->Topics.items[it->idx];
    CreateTopicsResponse_CreatableTopicResult *out = &it->w->resp->Topics.items[it->idx];
    out->ErrorCode = res->code;
    if (res->code != TRIB_KAFKA_NONE) {
        if (r->api_version >= 1) {
            trib_kstr_t m = {res->msg, (int32_t)strlen(res->msg)};
            out->ErrorMessage = trib_kstr(coll_req_strdup(r, m));
        }
        coll_req_note_error(r, res->code);
    } else if (r->api_version >= 5) {
        coll_cluster_t *cl = r->srv->cluster;
        coll_topic_t *t =
            coll_cluster_topic(cl, ct->Name.ptr, (size_t)(ct->Name.len > 0 ? ct->Name.len : 0));
        out->NumPartitions = it->partitions;
        out->ReplicationFactor = it->replication;
        if (t && !it->validate_only) {
            if (r->api_version >= 7) {
                out->TopicId = t->id;
            }
            fill_configs(r, &t->config, t->config_mask, out);
        } else {
            fill_configs_effective(r, it->kv, it->ncfg, out);
        }
    }
    ct_finish(it->w);
}

/* The request's own assignment as npart * rf ids; NULL with res set when it is not one. */
static int32_t *manual_assignment(coll_req_t *r, const CreateTopicsRequest_CreatableTopic *ct,
                                  int32_t *npart, int16_t *rf, coll_admin_result_t *res)
{
    int32_t n = ct->Assignments.count;
    int32_t k0 = -1;
    for (int32_t k = 0; k < n; k++) {
        int32_t c = ct->Assignments.items[k].BrokerIds.count;
        if (k0 < 0) {
            k0 = c;
        }
        if (c != k0 || c <= 0 || c > 64) {
            res->code = TRIB_KAFKA_INVALID_REPLICA_ASSIGNMENT;
            snprintf(res->msg, sizeof(res->msg),
                     "All partitions should have the same number of replicas (1 to 64).");
            return NULL;
        }
    }
    int32_t *ids = coll_req_alloc(r, (size_t)n * (size_t)k0 * sizeof(*ids));
    if (!ids) {
        res->code = TRIB_KAFKA_UNKNOWN_SERVER_ERROR;
        return NULL;
    }
    for (int32_t p = 0; p < n; p++) {
        const CreateTopicsRequest_CreatableReplicaAssignment *a = NULL;
        for (int32_t k = 0; k < n; k++) {
            if (ct->Assignments.items[k].PartitionIndex == p) {
                a = &ct->Assignments.items[k];
            }
        }
        if (!a) {
            res->code = TRIB_KAFKA_INVALID_REPLICA_ASSIGNMENT;
            snprintf(res->msg, sizeof(res->msg), "Partitions must be numbered 0..%d.", (int)n - 1);
            return NULL;
        }
        for (int32_t j = 0; j < k0; j++) {
            int32_t b = a->BrokerIds.items[j];
            for (int32_t i = 0; i < j; i++) {
                if (a->BrokerIds.items[i] == b) {
                    res->code = TRIB_KAFKA_INVALID_REPLICA_ASSIGNMENT;
                    snprintf(res->msg, sizeof(res->msg),
                             "Duplicate replica assignment found: partition %d lists broker %d "
                             "twice.",
                             (int)p, (int)b);
                    return NULL;
                }
            }
            ids[(size_t)p * (size_t)k0 + (size_t)j] = b;
        }
    }
    *npart = n;
    *rf = (int16_t)k0;
    return ids;
}

static void one(coll_req_t *r, const CreateTopicsRequest *req, int32_t idx,
                CreateTopicsResponse_CreatableTopicResult *out, ct_wait_t *w)
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
    /* CREATE on the cluster, or on the topic (Kafka's order: after the duplicate check). */
    if (!coll_authorized_quiet(r, COLL_OP_CREATE, COLL_RES_CLUSTER, COLL_ACL_CLUSTER_NAME,
                               sizeof(COLL_ACL_CLUSTER_NAME) - 1) &&
        !coll_authorized_k(r, COLL_OP_CREATE, COLL_RES_TOPIC, ct->Name)) {
        res.code = TRIB_KAFKA_TOPIC_AUTHORIZATION_FAILED;
        snprintf(res.msg, sizeof(res.msg), "Authorization failed.");
        goto done;
    }
    int32_t partitions = ct->NumPartitions;
    int16_t replication = ct->ReplicationFactor;
    const int32_t *assignment = NULL;
    if (w && ct->Assignments.count > 0) {
        if (partitions != -1 || replication != -1) {
            res.code = TRIB_KAFKA_INVALID_REQUEST;
            snprintf(res.msg, sizeof(res.msg),
                     "Both numPartitions or replicationFactor and replicasAssignments were set. "
                     "Both cannot be used at the same time.");
            goto done;
        }
        assignment = manual_assignment(r, ct, &partitions, &replication, &res);
        if (!assignment) {
            goto done;
        }
    } else if (ct->Assignments.count > 0) {
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
    if (w) {
        ct_item_t *it = coll_req_alloc(r, sizeof(*it));
        if (!it) {
            res.code = TRIB_KAFKA_UNKNOWN_SERVER_ERROR;
            goto done;
        }
        const coll_cluster_config_t *cc = coll_cluster_config(cl);
        it->w = w;
        it->idx = idx;
        it->partitions = partitions == -1 ? cc->default_partitions : partitions;
        it->replication = replication == -1 ? cc->default_replication_factor : replication;
        it->kv = kv;
        it->ncfg = ncfg;
        it->validate_only = validate_only;
        w->left++;
        coll_cluster_create_topic_async(
            cl, ct->Name.ptr, (size_t)(ct->Name.len > 0 ? ct->Name.len : 0), partitions,
            replication, assignment, kv, ncfg, validate_only, ct_done, it);
        return;
    }
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
        fill_configs_effective(r, kv, ncfg, out);
    }
done:
    out->ErrorCode = res.code;
    if (res.code != TRIB_KAFKA_NONE && r->api_version >= 1) {
        trib_kstr_t m = {res.msg, (int32_t)strlen(res.msg)};
        out->ErrorMessage = trib_kstr(coll_req_strdup(r, m));
    }
    coll_req_note_error(r, res.code);
}

/* validate_only: what the topic would get. */
static void fill_configs_effective(coll_req_t *r, const coll_config_kv_t *kv, size_t ncfg,
                                   CreateTopicsResponse_CreatableTopicResult *out)
{
    const coll_cluster_config_t *cc = coll_cluster_config(r->srv->cluster);
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
    resp->Topics.items = out;
    resp->Topics.count = n;
    ct_wait_t *w = NULL;
    if (coll_cluster_admin_async(r->srv->cluster)) {
        w = coll_req_alloc(r, sizeof(*w));
        if (!w) {
            coll_req_reject(r, "out of memory");
            return;
        }
        w->r = r;
        w->resp = resp;
        w->left = 1;
        r->pending++;
    }
    for (int32_t i = 0; i < n; i++) {
        one(r, req, i, &out[i], w);
    }
    if (w) {
        ct_finish(w);
        return;
    }
    coll_req_respond(r, &CreateTopicsResponse_codec, resp);
}
