/* SPDX-License-Identifier: Apache-2.0 */
/*
 * InitProducerId (key 22), versions 0-4 (v2+ flexible).
 *
 * Idempotent producers only: every request without a TransactionalId gets
 * a new producer id with epoch 0, as Kafka does for non-transactional
 * producers (it ignores the ProducerId/ProducerEpoch of v3+ then too). Ids
 * come from the cluster metadata in checkpointed blocks, so a restart
 * never hands out an id twice. On the zookeeper backend the blocks are
 * reserved in ZooKeeper (/latest_producer_id_block), unique across the
 * brokers; while a broker has none at hand it answers
 * COORDINATOR_LOAD_IN_PROGRESS, which clients retry.
 *
 * Differences from Kafka: transactions are not supported; a request with
 * a TransactionalId gets INVALID_REQUEST (clients reach that only after a
 * FindCoordinator(TRANSACTION), which this collector does not advertise).
 *
 * Authorization, as Kafka's: WRITE on the transactional id
 * (TRANSACTIONAL_ID_AUTHORIZATION_FAILED); an idempotent producer needs
 * IDEMPOTENT_WRITE on the cluster or WRITE on some topic
 * (CLUSTER_AUTHORIZATION_FAILED).
 */
#include "server/server_int.h"

#include <errno.h>

#include "kafka/gen/kafka_messages.h"

void coll_api_init_producer_id(coll_req_t *r)
{
    const InitProducerIdRequest *req = r->body;
    InitProducerIdResponse *resp = coll_req_alloc(r, sizeof(*resp));
    if (!resp) {
        coll_req_reject(r, "out of memory");
        return;
    }
    InitProducerIdResponse_init(resp);
    resp->ProducerId = -1;
    resp->ProducerEpoch = -1;
    if (req->TransactionalId.len >= 0 &&
        !coll_authorized_k(r, COLL_OP_WRITE, COLL_RES_TRANSACTIONAL_ID, req->TransactionalId)) {
        resp->ErrorCode = TRIB_KAFKA_TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
    } else if (req->TransactionalId.len >= 0) {
        resp->ErrorCode = TRIB_KAFKA_INVALID_REQUEST;
    } else if (!coll_authorized_quiet(r, COLL_OP_IDEMPOTENT_WRITE, COLL_RES_CLUSTER,
                                      COLL_ACL_CLUSTER_NAME, sizeof(COLL_ACL_CLUSTER_NAME) - 1) &&
               !coll_authorized_any(r, COLL_OP_WRITE, COLL_RES_TOPIC)) {
        /* An idempotent producer: IDEMPOTENT_WRITE on the cluster or WRITE on some topic. */
        r->srv->metrics.authorization_failed++;
        resp->ErrorCode = TRIB_KAFKA_CLUSTER_AUTHORIZATION_FAILED;
    } else {
        int64_t pid;
        int rc = coll_cluster_next_producer_id(r->srv->cluster, &pid);
        if (rc == 0) {
            resp->ProducerId = pid;
            resp->ProducerEpoch = 0;
        } else if (rc == -EAGAIN) {
            resp->ErrorCode = TRIB_KAFKA_COORDINATOR_LOAD_IN_PROGRESS;
        } else {
            resp->ErrorCode = TRIB_KAFKA_UNKNOWN_SERVER_ERROR;
        }
    }
    coll_req_note_error(r, resp->ErrorCode);
    coll_req_respond(r, &InitProducerIdResponse_codec, resp);
}
