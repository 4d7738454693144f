/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Metadata (key 3), versions 0-12.
 *
 * The live brokers and the controller (v1+) as the cluster knows them
 * (cluster.h: this node alone with the local backend; the brokers
 * registered in ZooKeeper with the zookeeper backend). Each partition's
 * leader, leader epoch (v7+), replicas, ISR and offline replicas (v5+:
 * replicas whose broker is not registered) come from the cluster
 * metadata; as in Kafka 2.8, a partition whose leader is not a registered
 * broker (its session expired, the controller has not elected yet) has no
 * leader and LEADER_NOT_AVAILABLE; topic ids from v10. The topics asked for
 * (v0: an empty list means all; v1+: null means all, empty means none)
 * or, from v10, asked for by id (UNKNOWN_TOPIC_ID when there is none).
 *
 * Auto-creation (auto_create_topics in collector.yaml): an unknown topic
 * is created with default_partitions when the request allows it
 * (AllowAutoTopicCreation, v4+; always below v4). Unlike Kafka, which
 * answers LEADER_NOT_AVAILABLE until the new topic's leader is elected,
 * the topic is returned at once: creation is synchronous here.
 *
 * Authorization (server/acl.h), as Kafka's: listing every topic lists
 * those the principal may DESCRIBE; a topic asked for that it may not
 * describe answers TOPIC_AUTHORIZATION_FAILED, and so does an unknown one
 * it may not create (CREATE on the cluster or the topic). Authorized
 * operations (v8+), when requested, are the operations the ACLs allow
 * (all of them with the authorizer off), else Kafka's "not requested"
 * INT32_MIN.
 */
#include "server/server_int.h"

#include "kafka/gen/kafka_messages.h"

/* Kafka's AclOperation codes. */
#define OP_READ 3
#define OP_WRITE 4
#define OP_CREATE 5
#define OP_DELETE 6
#define OP_ALTER 7
#define OP_DESCRIBE 8
#define OP_CLUSTER_ACTION 9
#define OP_DESCRIBE_CONFIGS 10
#define OP_ALTER_CONFIGS 11
#define OP_IDEMPOTENT_WRITE 12

static const int32_t TOPIC_OPS = (1 << OP_READ) | (1 << OP_WRITE) | (1 << OP_CREATE) |
                                 (1 << OP_DELETE) | (1 << OP_ALTER) | (1 << OP_DESCRIBE) |
                                 (1 << OP_DESCRIBE_CONFIGS) | (1 << OP_ALTER_CONFIGS);
static const int32_t CLUSTER_OPS = (1 << OP_CREATE) | (1 << OP_ALTER) | (1 << OP_DESCRIBE) |
                                   (1 << OP_CLUSTER_ACTION) | (1 << OP_DESCRIBE_CONFIGS) |
                                   (1 << OP_ALTER_CONFIGS) | (1 << OP_IDEMPOTENT_WRITE);

static bool fill_topic(coll_req_t *r, const MetadataRequest *req, coll_topic_t *t,
                       MetadataResponse_MetadataResponseTopic *out)
{
    out->ErrorCode = TRIB_KAFKA_NONE;
    out->Name.ptr = t->name;
    out->Name.len = (int32_t)t->name_len;
    out->TopicId = t->id;
    out->IsInternal = t->internal;
    if (req->IncludeTopicAuthorizedOperations) {
        out->TopicAuthorizedOperations =
            coll_authorized_ops(r, COLL_RES_TOPIC, t->name, t->name_len, TOPIC_OPS);
    }
    int32_t n = t->npartitions;
    MetadataResponse_MetadataResponsePartition *parts =
        coll_req_alloc(r, (size_t)n * sizeof(*parts));
    if (!parts && n > 0) {
        return false;
    }
    coll_cluster_t *cl = r->srv->cluster;
    bool replicated = coll_cluster_replicated(cl);
    for (int32_t i = 0; i < n; i++) {
        const coll_partition_t *cp = t->partitions[i];
        MetadataResponse_MetadataResponsePartition *p = &parts[i];
        MetadataResponse_MetadataResponsePartition_init(p);
        p->PartitionIndex = i;
        p->LeaderId = cp->leader;
        p->LeaderEpoch = cp->leader_epoch;
        p->ReplicaNodes.items = cp->replicas;
        p->ReplicaNodes.count = cp->nreplicas;
        p->IsrNodes.items = cp->isr;
        p->IsrNodes.count = cp->nisr;
        p->OfflineReplicas.items = NULL;
        p->OfflineReplicas.count = 0;
        /* Replicas whose broker is not registered are offline (as Kafka lists them). */
        if (replicated && cp->nreplicas > 0) {
            int32_t *off = coll_req_alloc(r, (size_t)cp->nreplicas * sizeof(int32_t));
            if (!off) {
                return false;
            }
            int32_t k = 0;
            coll_broker_info_t bi;
            for (int32_t j = 0; j < cp->nreplicas; j++) {
                if (coll_cluster_broker(cl, cp->replicas[j], &bi) != 0) {
                    off[k++] = cp->replicas[j];
                }
            }
            p->OfflineReplicas.items = off;
            p->OfflineReplicas.count = k;
        }
        /* Kafka: LEADER_NOT_AVAILABLE while a partition has no leader (clients retry),
         * and, as Kafka 2.8's MetadataCache, while its leader is not a registered broker
         * (between a broker's session expiring and the controller's election): no
         * leader then, rather than one the answer's broker list does not name. */
        bool leader_gone = false;
        if (replicated && cp->leader >= 0) {
            coll_broker_info_t lb;
            leader_gone = coll_cluster_broker(cl, cp->leader, &lb) != 0;
        }
        if (leader_gone) {
            p->LeaderId = -1;
        }
        p->ErrorCode =
            cp->leader < 0 || leader_gone ? TRIB_KAFKA_LEADER_NOT_AVAILABLE : TRIB_KAFKA_NONE;
    }
    out->Partitions.items = parts;
    out->Partitions.count = n;
    return true;
}

void coll_api_metadata(coll_req_t *r)
{
    const MetadataRequest *req = r->body;
    coll_cluster_t *cl = r->srv->cluster;
    size_t maxb = coll_cluster_broker_count(cl);
    MetadataResponse *resp = coll_req_alloc(r, sizeof(*resp));
    MetadataResponse_MetadataResponseBroker *broker =
        coll_req_alloc(r, (maxb ? maxb : 1) * sizeof(*broker));
    coll_broker_info_t *info = coll_req_alloc(r, (maxb ? maxb : 1) * sizeof(*info));
    if (!resp || !broker || !info) {
        coll_req_reject(r, "out of memory");
        return;
    }
    MetadataResponse_init(resp);
    size_t nb = coll_cluster_brokers(cl, info, maxb);
    for (size_t i = 0; i < nb; i++) {
        MetadataResponse_MetadataResponseBroker_init(&broker[i]);
        broker[i].NodeId = info[i].id;
        broker[i].Host = trib_kstr(info[i].host);
        broker[i].Port = info[i].port;
        coll_req_endpoint(r, info[i].id, &broker[i].Host, &broker[i].Port);
        broker[i].Rack = trib_kstr(info[i].rack);
    }
    resp->Brokers.items = broker;
    resp->Brokers.count = (int32_t)nb;
    resp->ClusterId = trib_kstr(coll_cluster_id(cl));
    resp->ControllerId = coll_cluster_controller_id(cl);
    if (req->IncludeClusterAuthorizedOperations) {
        resp->ClusterAuthorizedOperations =
            coll_authorized_ops(r, COLL_RES_CLUSTER, COLL_ACL_CLUSTER_NAME,
                                sizeof(COLL_ACL_CLUSTER_NAME) - 1, CLUSTER_OPS);
    }

    bool all = req->Topics.count < 0 || (r->api_version == 0 && req->Topics.count == 0);
    bool allow_create = r->api_version < 4 || req->AllowAutoTopicCreation;
    if (all) {
        size_t n = coll_cluster_topic_count(cl);
        coll_topic_t **topics = coll_req_alloc(r, n * sizeof(*topics));
        MetadataResponse_MetadataResponseTopic *out = coll_req_alloc(r, n * sizeof(*out));
        if (!topics || !out) {
            coll_req_reject(r, "out of memory");
            return;
        }
        coll_cluster_topics(cl, topics);
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
            if (!coll_authorized_quiet(r, COLL_OP_DESCRIBE, COLL_RES_TOPIC, topics[i]->name,
                                       topics[i]->name_len)) {
                continue;
            }
            MetadataResponse_MetadataResponseTopic_init(&out[k]);
            if (!fill_topic(r, req, topics[i], &out[k++])) {
                coll_req_reject(r, "out of memory");
                return;
            }
        }
        resp->Topics.items = out;
        resp->Topics.count = (int32_t)k;
    } else {
        int32_t n = req->Topics.count;
        MetadataResponse_MetadataResponseTopic *out = coll_req_alloc(r, (size_t)n * sizeof(*out));
        if (!out && n > 0) {
            coll_req_reject(r, "out of memory");
            return;
        }
        for (int32_t i = 0; i < n; i++) {
            const MetadataRequest_MetadataRequestTopic *rt = &req->Topics.items[i];
            MetadataResponse_MetadataResponseTopic *o = &out[i];
            MetadataResponse_MetadataResponseTopic_init(o);
            coll_topic_t *t = NULL;
            int16_t err = TRIB_KAFKA_NONE;
            if (rt->Name.len < 0) {
                /* v10+: by topic id. */
                t = coll_cluster_topic_by_id(cl, &rt->TopicId);
                err = t ? TRIB_KAFKA_NONE : TRIB_KAFKA_UNKNOWN_TOPIC_ID;
                if (t &&
                    !coll_authorized(r, COLL_OP_DESCRIBE, COLL_RES_TOPIC, t->name, t->name_len)) {
                    t = NULL;
                    err = TRIB_KAFKA_TOPIC_AUTHORIZATION_FAILED;
                }
                o->TopicId = rt->TopicId;
                /* The response's name is nullable from v12 only. */
                o->Name = r->api_version >= 12 ? trib_kstr(NULL) : trib_kstr("");
            } else {
                o->Name = rt->Name;
                if (!coll_authorized_k(r, COLL_OP_DESCRIBE, COLL_RES_TOPIC, rt->Name)) {
                    err = TRIB_KAFKA_TOPIC_AUTHORIZATION_FAILED;
                } else {
                    t = coll_find_topic(r, rt->Name, allow_create, &err);
                }
            }
            if (t) {
                if (!fill_topic(r, req, t, o)) {
                    coll_req_reject(r, "out of memory");
                    return;
                }
            } else {
                o->ErrorCode = err;
                o->Partitions.count = 0;
                coll_req_note_error(r, err);
            }
        }
        resp->Topics.items = out;
        resp->Topics.count = n;
    }
    coll_req_respond(r, &MetadataResponse_codec, resp);
}
