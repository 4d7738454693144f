/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Request dispatch: the table of implemented APIs (the one ApiVersions
 * advertises), header parsing and body decoding.
 *
 *   key  API                      versions  notes
 *   0    Produce                  0-11      0-2 advertised, answered UNSUPPORTED_VERSION (*)
 *   1    Fetch                    4-12      sessionless (SessionId 0); 13+ need topic ids
 *   2    ListOffsets              1-7
 *   3    Metadata                 0-12
 *   8    OffsetCommit             0-9       v8+ flexible; generation -1 + "" = standalone
 *   9    OffsetFetch              0-9       v6+ flexible; v8+ several groups
 *   10   FindCoordinator          0-4       v3+ flexible; v4 batched keys; group keys only
 *   11   JoinGroup                0-9       v6+ flexible; MEMBER_ID_REQUIRED from v4
 *   12   Heartbeat                0-4       v4 flexible
 *   13   LeaveGroup               0-5       v4+ flexible; v3+ batched members
 *   14   SyncGroup                0-5       v4+ flexible
 *   15   DescribeGroups           0-5       v5 flexible
 *   16   ListGroups               0-5       v3+ flexible
 *   18   ApiVersions              0-4       v3+ body flexible, response header v0 always
 *   19   CreateTopics             0-7
 *   20   DeleteTopics             0-6
 *   21   DeleteRecords            0-2
 *   22   InitProducerId           0-4       idempotence only (no transactions)
 *   23   OffsetForLeaderEpoch     0-4       v4 flexible; leaders answer followers and clients
 *   29   DescribeAcls             0-3       v2+ flexible
 *   30   CreateAcls               0-3       v2+ flexible
 *   31   DeleteAcls               0-3       v2+ flexible
 *   32   DescribeConfigs          1-4
 *   33   AlterConfigs             0-2
 *   37   CreatePartitions         0-3
 *   42   DeleteGroups             0-2       v2 flexible
 *   43   ElectLeaders             0-2       v2 flexible
 *   44   IncrementalAlterConfigs  0-1
 *   45   AlterPartitionReassignments 0    flexible; the controller only
 *   46   ListPartitionReassignments  0    flexible; the controller only
 *   47   OffsetDelete             0
 *   17   SaslHandshake            0-1       v0: bare tokens follow; v1: SaslAuthenticate
 *   36   SaslAuthenticate         0-2       PLAIN, SCRAM-SHA-256, SCRAM-SHA-512
 *   50   DescribeUserScramCredentials 0
 *   51   AlterUserScramCredentials    0
 *   60   DescribeCluster          0-1
 *
 * (*) librdkafka 2.0.2 enables gzip/snappy/lz4 only when the broker's
 * Produce range includes v0, so v0-2 are advertised and refused, as Kafka
 * 4.0 does (KAFKA-18659).
 *
 * The group APIs (8-16, 42, 47) are served by the group coordinator
 * (group/): FindCoordinator v0 in range is what turns on librdkafka
 * 2.0.2's consumer groups and its LZ4 feature gate. Transactions are not
 * supported: FindCoordinator for a transaction key answers
 * COORDINATOR_NOT_AVAILABLE.
 *
 * What the dispatcher refuses, closing the connection with a logged
 * reason, as Kafka does: an unknown API key, an API this build does not
 * implement, a version outside the advertised range (except ApiVersions,
 * which answers UNSUPPORTED_VERSION with a v0 body listing its own range,
 * KIP-511), a header or body that does not decode, and, on a SASL
 * listener, any request but ApiVersions, SaslHandshake and SaslAuthenticate
 * before the client authenticated (Kafka closes such a connection too).
 * After SaslHandshake v0 the next frames are bare SASL tokens, not
 * requests: they go to api/sasl_handshake.c.
 */
#include "server/console.h"
#include "server/server_int.h"

#include <string.h>

#define API_PRODUCE 0
#define API_METADATA 3
#define API_SASL_HANDSHAKE 17
#define API_API_VERSIONS 18
#define API_SASL_AUTHENTICATE 36

const coll_api_t coll_apis[] = {
    {0, 0, 11, coll_api_produce},
    {1, 4, 12, coll_api_fetch},
    {2, 1, 7, coll_api_list_offsets},
    {3, 0, 12, coll_api_metadata},
    {8, 0, 9, coll_api_offset_commit},
    {9, 0, 9, coll_api_offset_fetch},
    {10, 0, 4, coll_api_find_coordinator},
    {11, 0, 9, coll_api_join_group},
    {12, 0, 4, coll_api_heartbeat},
    {13, 0, 5, coll_api_leave_group},
    {14, 0, 5, coll_api_sync_group},
    {15, 0, 5, coll_api_describe_groups},
    {16, 0, 5, coll_api_list_groups},
    {17, 0, 1, coll_api_sasl_handshake},
    {18, 0, 4, coll_api_api_versions},
    {19, 0, 7, coll_api_create_topics},
    {20, 0, 6, coll_api_delete_topics},
    {21, 0, 2, coll_api_delete_records},
    {22, 0, 4, coll_api_init_producer_id},
    {23, 0, 4, coll_api_offset_for_leader_epoch},
    {29, 0, 3, coll_api_describe_acls},
    {30, 0, 3, coll_api_create_acls},
    {31, 0, 3, coll_api_delete_acls},
    {32, 1, 4, coll_api_describe_configs},
    {33, 0, 2, coll_api_alter_configs},
    {36, 0, 2, coll_api_sasl_authenticate},
    {37, 0, 3, coll_api_create_partitions},
    {42, 0, 2, coll_api_delete_groups},
    {43, 0, 2, coll_api_elect_leaders},
    {44, 0, 1, coll_api_incremental_alter_configs},
    {45, 0, 0, coll_api_alter_partition_reassignments},
    {46, 0, 0, coll_api_list_partition_reassignments},
    {47, 0, 0, coll_api_offset_delete},
    {50, 0, 0, coll_api_describe_user_scram_credentials},
    {51, 0, 0, coll_api_alter_user_scram_credentials},
    {60, 0, 1, coll_api_describe_cluster},
};
const size_t coll_api_count = sizeof(coll_apis) / sizeof(coll_apis[0]);

const coll_api_t *coll_api_find(int16_t key)
{
    for (size_t i = 0; i < coll_api_count; i++) {
        if (coll_apis[i].key == key) {
            return &coll_apis[i];
        }
    }
    return NULL;
}

void coll_dispatch(coll_req_t *r)
{
    coll_conn_t *c = r->conn;
    if (c->sasl_state == COLL_SASL_RAW) {
        coll_sasl_raw_token(r);
        return;
    }
    trib_slice_t s = trib_slice_make(r->frame, r->frame_len);
    int16_t hv = -1;
    int rc = trib_kafka_request_header_parse(&r->hdr, &s, &r->arena, &hv);
    r->api_key = r->hdr.api_key;
    r->api_version = r->hdr.api_version;
    r->correlation_id = r->hdr.correlation_id;
    r->kapi = trib_kafka_api_find(r->api_key);
    if (rc != 0) {
        if (!r->kapi) {
            coll_req_reject(r, "unknown API key %d (version %d)", (int)r->api_key,
                            (int)r->api_version);
        } else {
            coll_req_reject(r, "malformed %s v%d request header: %s", r->kapi->name,
                            (int)r->api_version, trib_strerror(rc));
        }
        return;
    }
    if (c->needs_sasl && c->sasl_state != COLL_SASL_DONE && r->api_key != API_API_VERSIONS &&
        r->api_key != API_SASL_HANDSHAKE && r->api_key != API_SASL_AUTHENTICATE) {
        r->srv->metrics.unauthenticated_rejected++;
        coll_req_reject(r, "%s (API key %d) before SASL authentication",
                        r->kapi ? r->kapi->name : "unknown API", (int)r->api_key);
        return;
    }
    const coll_api_t *api = coll_api_find(r->api_key);
    if (r->api_key == API_API_VERSIONS && r->api_version > api->max_version) {
        /* A newer client: answer in v0 so it can pick a version we have. */
        r->rest = s;
        coll_api_versions_unsupported(r);
        return;
    }
    if (!api) {
        coll_req_reject(r, "%s (API key %d) is not supported by this collector", r->kapi->name,
                        (int)r->api_key);
        return;
    }
    if (r->api_version < api->min_version || r->api_version > api->max_version) {
        coll_req_reject(r, "%s v%d is not supported (versions %d-%d are)", r->kapi->name,
                        (int)r->api_version, (int)api->min_version, (int)api->max_version);
        return;
    }
    r->api = api;
    const trib_kafka_codec_t *codec = r->kapi->request;
    r->body = trib_arena_alloc(&r->arena, codec->size);
    if (!r->body) {
        coll_req_reject(r, "%s v%d request: out of memory", r->kapi->name, (int)r->api_version);
        return;
    }
    r->rest = s;
    rc = codec->decode(r->body, &s, r->api_version, &r->arena);
    if (rc != 0) {
        coll_req_reject(r, "cannot decode %s v%d request (%zu bytes): %s", r->kapi->name,
                        (int)r->api_version, r->frame_len, trib_strerror(rc));
        return;
    }
    /* The response is the server's own making: no input-driven bound from here on. */
    trib_arena_set_limit(&r->arena, 0);
    if (r->api_key == API_PRODUCE) {
        coll_console_note_produce(r->srv->console, r);
    }
    if (r->api_key == API_METADATA && coll_req_defer_until_turn(r)) {
        return; /* handled by coll_conn_pump() once the requests before it are answered */
    }
    api->handle(r);
}
