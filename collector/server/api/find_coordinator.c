/* SPDX-License-Identifier: Apache-2.0 */
/*
 * FindCoordinator (key 10), versions 0-4 (v3+ flexible, v4 batches the
 * keys in CoordinatorKeys, KIP-699).
 *
 * Key type 0 (group): the coordinator of a group is the leader of
 * partition abs(hashCode(group)) % partitions of __consumer_offsets: on
 * a single node always this broker (our own node id and advertised
 * address), on a cluster that partition's leader as this broker last
 * read it (COORDINATOR_NOT_AVAILABLE while it has none). Key type 1 (transaction) gets
 * COORDINATOR_NOT_AVAILABLE: transactions are not supported. Other key
 * types (share groups, v6) get INVALID_REQUEST.
 *
 * v0 must stay advertised: librdkafka 2.0.2 turns its consumer groups
 * and its lz4 support on only when the range includes it.
 */
#include "server/server_int.h"

#include <string.h>

#include "group/group.h"
#include "kafka/gen/kafka_messages.h"

/* A coordinator's node id and endpoint, copied into the request's arena. */
typedef struct coord {
    int32_t node;
    trib_kstr_t host;
    int32_t port;
} coord_t;

static int16_t lookup(coll_req_t *r, int8_t key_type, trib_kstr_t key, coord_t *out)
{
    out->node = -1;
    out->host = trib_kstr("");
    out->port = -1;
    if (key_type == 1) {
        return coll_authorized_k(r, COLL_OP_DESCRIBE, COLL_RES_TRANSACTIONAL_ID, key)
                   ? TRIB_KAFKA_COORDINATOR_NOT_AVAILABLE
                   : TRIB_KAFKA_TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
    }
    if (key_type == 0 && !coll_authorized_k(r, COLL_OP_DESCRIBE, COLL_RES_GROUP, key)) {
        return TRIB_KAFKA_GROUP_AUTHORIZATION_FAILED;
    }
    if (key_type != 0) {
        return TRIB_KAFKA_INVALID_REQUEST;
    }
    if (!r->srv->groups || r->srv->stopping) {
        return TRIB_KAFKA_COORDINATOR_NOT_AVAILABLE;
    }
    /* Kafka creates the offsets topic at the first FindCoordinator; so do we. */
    coll_topic_t *t = coll_groups_topic(r->srv->groups, true);
    if (!t || key.len < 0) {
        return t ? TRIB_KAFKA_INVALID_REQUEST : TRIB_KAFKA_COORDINATOR_NOT_AVAILABLE;
    }
    coll_cluster_t *cl = r->srv->cluster;
    int32_t pi = coll_group_partition_for(key.ptr, (size_t)key.len, t->npartitions);
    coll_partition_t *p = coll_cluster_partition(t, pi);
    if (!p) {
        return TRIB_KAFKA_COORDINATOR_NOT_AVAILABLE;
    }
    if (!coll_cluster_replicated(cl)) {
        /* A single node: us, once the partition's log is open. */
        if (!p->log) {
            return TRIB_KAFKA_COORDINATOR_NOT_AVAILABLE;
        }
        const coll_cluster_config_t *cc = coll_cluster_config(cl);
        out->node = cc->node_id;
        out->host = trib_kstr(cc->host);
        out->port = cc->port;
        return TRIB_KAFKA_NONE;
    }
    /* A cluster: the leader of the group's partition, if it has one and is registered. */
    coll_broker_info_t b;
    if (p->leader < 0 || coll_cluster_broker(cl, p->leader, &b) != 0) {
        return TRIB_KAFKA_COORDINATOR_NOT_AVAILABLE;
    }
    char *host = coll_req_strdup(r, trib_kstr(b.host ? b.host : ""));
    if (!host) {
        return TRIB_KAFKA_COORDINATOR_NOT_AVAILABLE;
    }
    out->node = b.id;
    out->host = trib_kstr(host);
    out->port = b.port;
    return TRIB_KAFKA_NONE;
}

void coll_api_find_coordinator(coll_req_t *r)
{
    const FindCoordinatorRequest *req = r->body;
    FindCoordinatorResponse *resp = coll_req_alloc(r, sizeof(*resp));
    if (!resp) {
        coll_req_reject(r, "out of memory");
        return;
    }
    FindCoordinatorResponse_init(resp);
    int8_t key_type = r->api_version >= 1 ? req->KeyType : 0;
    if (r->api_version < 4) {
        coord_t c;
        resp->ErrorCode = lookup(r, key_type, req->Key, &c);
        resp->NodeId = c.node;
        resp->Host = c.host;
        resp->Port = c.port;
        if (!resp->ErrorCode) {
            coll_req_endpoint(r, c.node, &resp->Host, &resp->Port);
        }
        if (resp->ErrorCode && r->api_version >= 1) {
            resp->ErrorMessage = trib_kstr(trib_kafka_err_message(resp->ErrorCode));
        }
        coll_req_note_error(r, resp->ErrorCode);
    } else {
        int32_t n = req->CoordinatorKeys.count > 0 ? req->CoordinatorKeys.count : 0;
        FindCoordinatorResponse_Coordinator *cs = coll_req_alloc(r, (size_t)n * sizeof(*cs));
        if (n && !cs) {
            coll_req_reject(r, "out of memory");
            return;
        }
        for (int32_t i = 0; i < n; i++) {
            FindCoordinatorResponse_Coordinator *c = &cs[i];
            FindCoordinatorResponse_Coordinator_init(c);
            c->Key = req->CoordinatorKeys.items[i];
            coord_t co;
            c->ErrorCode = lookup(r, key_type, c->Key, &co);
            c->NodeId = co.node;
            c->Host = co.host;
            c->Port = co.port;
            if (!c->ErrorCode) {
                coll_req_endpoint(r, co.node, &c->Host, &c->Port);
            }
            if (c->ErrorCode) {
                c->ErrorMessage = trib_kstr(trib_kafka_err_message(c->ErrorCode));
            }
            coll_req_note_error(r, c->ErrorCode);
        }
        resp->Coordinators.items = cs;
        resp->Coordinators.count = n;
    }
    coll_req_respond(r, &FindCoordinatorResponse_codec, resp);
}
