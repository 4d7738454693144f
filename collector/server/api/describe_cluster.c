/* SPDX-License-Identifier: Apache-2.0 */
/*
 * DescribeCluster (key 60), versions 0-1 (flexible).
 *
 * The live brokers and the controller as the cluster knows them: with the
 * local backend this node alone, which is also the controller; with the
 * zookeeper backend the brokers registered in ZooKeeper and the holder of
 * /controller (-1 while none is known). v1's EndpointType
 * 1 (brokers) is served; 2 (controllers) gets UNSUPPORTED_ENDPOINT_TYPE, as
 * from a Kafka broker. Authorized operations, when asked for, are those
 * the ACLs allow on the cluster (all with the authorizer off).
 */
#include "server/server_int.h"

#include "kafka/gen/kafka_messages.h"

void coll_api_describe_cluster(coll_req_t *r)
{
    const DescribeClusterRequest *req = r->body;
    coll_cluster_t *cl = r->srv->cluster;
    size_t maxb = coll_cluster_broker_count(cl);
    DescribeClusterResponse *resp = coll_req_alloc(r, sizeof(*resp));
    DescribeClusterResponse_DescribeClusterBroker *b =
        coll_req_alloc(r, (maxb ? maxb : 1) * sizeof(*b));
    coll_broker_info_t *info = coll_req_alloc(r, (maxb ? maxb : 1) * sizeof(*info));
    if (!resp || !b || !info) {
        coll_req_reject(r, "out of memory");
        return;
    }
    DescribeClusterResponse_init(resp);
    resp->ClusterId = trib_kstr(coll_cluster_id(cl));
    resp->ControllerId = coll_cluster_controller_id(cl);
    if (r->api_version >= 1) {
        resp->EndpointType = req->EndpointType;
    }
    if (r->api_version >= 1 && req->EndpointType != 1) {
        resp->ErrorCode = TRIB_KAFKA_UNSUPPORTED_ENDPOINT_TYPE;
        resp->ErrorMessage = trib_kstr("only broker endpoints (EndpointType 1) are served");
        coll_req_note_error(r, resp->ErrorCode);
        resp->Brokers.count = 0;
    } else {
        size_t n = coll_cluster_brokers(cl, info, maxb);
        for (size_t i = 0; i < n; i++) {
            DescribeClusterResponse_DescribeClusterBroker_init(&b[i]);
            b[i].BrokerId = info[i].id;
            b[i].Host = trib_kstr(info[i].host);
            b[i].Port = info[i].port;
            coll_req_endpoint(r, info[i].id, &b[i].Host, &b[i].Port);
            b[i].Rack = trib_kstr(info[i].rack);
        }
        resp->Brokers.items = b;
        resp->Brokers.count = (int32_t)n;
    }
    if (req->IncludeClusterAuthorizedOperations) {
        /* CREATE, ALTER, DESCRIBE, CLUSTER_ACTION, DESCRIBE_CONFIGS, ALTER_CONFIGS,
         * IDEMPOTENT_WRITE */
        resp->ClusterAuthorizedOperations = coll_authorized_ops(
            r, COLL_RES_CLUSTER, COLL_ACL_CLUSTER_NAME, sizeof(COLL_ACL_CLUSTER_NAME) - 1,
            (1 << 5) | (1 << 7) | (1 << 8) | (1 << 9) | (1 << 10) | (1 << 11) | (1 << 12));
    }
    coll_req_respond(r, &DescribeClusterResponse_codec, resp);
}
