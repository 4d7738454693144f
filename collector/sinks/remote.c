/* SPDX-License-Identifier: Apache-2.0 */
/* The sinks against a Kafka-protocol cluster they are not part of (see remote.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sinks/remote.h"
#include "tributary/kafka_error.h"
#include "tributary/kclient.h"
#include "tributary/log.h"

#include "kafka/gen/FetchRequest.h"
#include "kafka/gen/FetchResponse.h"
#include "kafka/gen/FindCoordinatorRequest.h"
#include "kafka/gen/FindCoordinatorResponse.h"
#include "kafka/gen/ListOffsetsRequest.h"
#include "kafka/gen/ListOffsetsResponse.h"
#include "kafka/gen/MetadataRequest.h"
#include "kafka/gen/MetadataResponse.h"
#include "kafka/gen/OffsetCommitRequest.h"
#include "kafka/gen/OffsetCommitResponse.h"
#include "kafka/gen/OffsetFetchRequest.h"
#include "kafka/gen/OffsetFetchResponse.h"
#include "kafka/gen/ProduceRequest.h"
#include "kafka/gen/ProduceResponse.h"

#define FACILITY "sink"
#define API_PRODUCE 0
#define API_FETCH 1
#define API_LIST_OFFSETS 2
#define API_METADATA 3
#define API_OFFSET_COMMIT 8
#define API_OFFSET_FETCH 9
#define API_FIND_COORDINATOR 10
#define REFRESH_MS 1000
#define STALE_RETRY_MS 200
#define PARTITION_MAX_BYTES (4 << 20)
#define MAX_COORDS 16
#define MAX_DOWN 16
#define DOWN_MS 2000

typedef struct coord {
    char *group;
    int32_t node; /* -1: unknown */
} coord_t;

struct coll_sremote {
    char *bootstrap;
    int timeout_ms;
    trib_kclient_t *c;
    coll_sremote_topic_t *topics;
    size_t ntopics;
    bool stale;
    uint64_t refreshed_ms;
    uint64_t tried_ms; /* the last Metadata attempt */
    coord_t coords[MAX_COORDS];
    size_t ncoords;
    /* brokers a call just failed to reach: not called again until the time passed */
    struct {
        int32_t node;
        uint64_t until_ms;
    } down[MAX_DOWN];
};

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static char *kdup(trib_kstr_t s)
{
    size_t n = s.len > 0 ? (size_t)s.len : 0;
    char *d = malloc(n + 1);
    if (d) {
        if (n) {
            memcpy(d, s.ptr, n);
        }
        d[n] = '\0';
    }
    return d;
}

static bool stale_code(int16_t code)
{
    return code == TRIB_KAFKA_NOT_LEADER_OR_FOLLOWER || code == TRIB_KAFKA_LEADER_NOT_AVAILABLE ||
           code == TRIB_KAFKA_UNKNOWN_TOPIC_OR_PARTITION ||
           code == TRIB_KAFKA_FENCED_LEADER_EPOCH || code == TRIB_KAFKA_UNKNOWN_LEADER_EPOCH ||
           code == TRIB_KAFKA_NETWORK_EXCEPTION || code == TRIB_KAFKA_NOT_ENOUGH_REPLICAS ||
           code == TRIB_KAFKA_REQUEST_TIMED_OUT;
}

static void topics_free(coll_sremote_t *r)
{
    for (size_t i = 0; i < r->ntopics; i++) {
        free(r->topics[i].name);
        free(r->topics[i].leaders);
    }
    free(r->topics);
    r->topics = NULL;
    r->ntopics = 0;
}

int coll_sremote_open(const char *bootstrap, int timeout_ms, coll_sremote_t **out,
                      trib_error_t *err)
{
    *out = NULL;
    coll_sremote_t *r = calloc(1, sizeof(*r));
    if (!r || !(r->bootstrap = strdup(bootstrap))) {
        free(r);
        return trib_error_set(err, -ENOMEM, "out of memory");
    }
    r->timeout_ms = timeout_ms;
    r->stale = true;
    trib_kclient_opts_t o;
    trib_kclient_opts_init(&o);
    o.bootstrap = bootstrap;
    o.client_id = "tributary-sink";
    o.timeout_ms = timeout_ms;
    int rc = trib_kclient_open(&r->c, &o, err);
    if (rc != 0) {
        coll_sremote_close(r);
        return rc;
    }
    *out = r;
    return 0;
}

void coll_sremote_close(coll_sremote_t *r)
{
    if (!r) {
        return;
    }
    topics_free(r);
    for (size_t i = 0; i < r->ncoords; i++) {
        free(r->coords[i].group);
    }
    trib_kclient_close(r->c);
    free(r->bootstrap);
    free(r);
}

/* The client again from the bootstrap list (every known broker failed). */
static int reconnect(coll_sremote_t *r)
{
    trib_kclient_opts_t o;
    trib_kclient_opts_init(&o);
    o.bootstrap = r->bootstrap;
    o.client_id = "tributary-sink";
    o.timeout_ms = r->timeout_ms;
    trib_kclient_t *c = NULL;
    trib_error_t err;
    trib_error_clear(&err);
    int rc = trib_kclient_open(&c, &o, &err);
    if (rc != 0) {
        TRIB_LOG(TRIB_LOG_WARN, FACILITY, "cannot reach the cluster (%s): %s", r->bootstrap,
                 err.msg);
        return rc;
    }
    trib_kclient_close(r->c);
    r->c = c;
    for (size_t i = 0; i < r->ncoords; i++) {
        r->coords[i].node = -1;
    }
    return 0;
}

static int node_call(coll_sremote_t *r, int32_t node, int16_t api_key, int16_t version,
                     const void *req, void *resp, trib_arena_t *arena, trib_error_t *err);

/* A Metadata call (every topic when topic is NULL) on any broker that answers. */
static int metadata_call(coll_sremote_t *r, const char *topic, MetadataResponse *md,
                         trib_arena_t *arena)
{
    int16_t v = trib_kclient_version(r->c, API_METADATA, 1, 12);
    if (v < 0) {
        return TRIB_EUNSUPPORTED;
    }
    MetadataRequest req;
    MetadataRequest_init(&req);
    MetadataRequest_MetadataRequestTopic t;
    if (topic) {
        MetadataRequest_MetadataRequestTopic_init(&t);
        t.Name = trib_kstr(topic);
        req.Topics.items = &t;
        req.Topics.count = 1;
        req.AllowAutoTopicCreation = true;
    } else {
        req.Topics.count = -1;
        req.AllowAutoTopicCreation = false;
    }
    trib_error_t err;
    trib_error_clear(&err);
    if (trib_kclient_call(r->c, TRIB_KCLIENT_ANY, API_METADATA, v, &req, md, arena, &err) == 0) {
        return 0;
    }
    size_t nb = 0;
    const trib_kclient_broker_t *bs = trib_kclient_brokers(r->c, &nb);
    for (size_t i = 0; i < nb; i++) {
        trib_error_clear(&err);
        if (node_call(r, bs[i].node_id, API_METADATA, v, &req, md, arena, &err) == 0) {
            return 0;
        }
    }
    int rc = reconnect(r);
    if (rc != 0) {
        return rc;
    }
    trib_error_clear(&err);
    return trib_kclient_call(r->c, TRIB_KCLIENT_ANY, API_METADATA, v, &req, md, arena, &err);
}

/* Takes the brokers of a Metadata response into the client's table. */
static int take_brokers(coll_sremote_t *r, const MetadataResponse *md)
{
    size_t nb = md->Brokers.count > 0 ? (size_t)md->Brokers.count : 0;
    trib_kclient_broker_t *b = calloc(nb ? nb : 1, sizeof(*b));
    if (!b) {
        return -ENOMEM;
    }
    for (size_t i = 0; i < nb; i++) {
        const MetadataResponse_MetadataResponseBroker *mb = &md->Brokers.items[i];
        b[i].node_id = mb->NodeId;
        snprintf(b[i].host, sizeof(b[i].host), "%.*s", mb->Host.len > 0 ? (int)mb->Host.len : 0,
                 mb->Host.ptr ? mb->Host.ptr : "");
        b[i].port = mb->Port;
    }
    int rc = trib_kclient_set_brokers(r->c, b, nb, md->ControllerId, md->ClusterId.ptr,
                                      md->ClusterId.len > 0 ? (size_t)md->ClusterId.len : 0);
    free(b);
    return rc;
}

int coll_sremote_refresh(coll_sremote_t *r, bool force)
{
    uint64_t now = mono_ms();
    if (!force && !r->stale && now - r->refreshed_ms < REFRESH_MS) {
        return 0;
    }
    if (r->stale && now - r->tried_ms < STALE_RETRY_MS) {
        return -EAGAIN; /* a failed broker is not asked again at every call */
    }
    r->tried_ms = now;
    trib_arena_t arena;
    trib_arena_init(&arena);
    MetadataResponse md;
    int rc = metadata_call(r, NULL, &md, &arena);
    if (rc != 0) {
        trib_arena_fini(&arena);
        r->stale = true;
        return rc < 0 ? rc : -EIO;
    }
    rc = take_brokers(r, &md);
    size_t n = md.Topics.count > 0 ? (size_t)md.Topics.count : 0;
    coll_sremote_topic_t *ts = calloc(n ? n : 1, sizeof(*ts));
    if (rc != 0 || !ts) {
        free(ts);
        trib_arena_fini(&arena);
        return -ENOMEM;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const MetadataResponse_MetadataResponseTopic *mt = &md.Topics.items[i];
        if (mt->ErrorCode != 0 || mt->Partitions.count <= 0) {
            continue;
        }
        coll_sremote_topic_t *t = &ts[k];
        t->name = kdup(mt->Name);
        t->internal = mt->IsInternal || (t->name && t->name[0] == '_' && t->name[1] == '_');
        int32_t np = 0;
        for (int32_t p = 0; p < mt->Partitions.count; p++) {
            if (mt->Partitions.items[p].PartitionIndex + 1 > np) {
                np = mt->Partitions.items[p].PartitionIndex + 1;
            }
        }
        t->leaders = malloc((size_t)np * sizeof(*t->leaders));
        if (!t->name || !t->leaders) {
            free(t->name);
            free(t->leaders);
            continue;
        }
        for (int32_t p = 0; p < np; p++) {
            t->leaders[p] = -1;
        }
        for (int32_t p = 0; p < mt->Partitions.count; p++) {
            const MetadataResponse_MetadataResponsePartition *mp = &mt->Partitions.items[p];
            t->leaders[mp->PartitionIndex] = mp->LeaderId;
        }
        t->npartitions = np;
        k++;
    }
    trib_arena_fini(&arena);
    topics_free(r);
    r->topics = ts;
    r->ntopics = k;
    r->stale = false;
    r->refreshed_ms = now;
    return 0;
}

const coll_sremote_topic_t *coll_sremote_topics(const coll_sremote_t *r, size_t *n)
{
    *n = r->ntopics;
    return r->topics;
}

static int32_t leader_of(coll_sremote_t *r, const char *topic, int32_t partition)
{
    if (r->stale) {
        (void)coll_sremote_refresh(r, false);
    }
    for (size_t i = 0; i < r->ntopics; i++) {
        if (strcmp(r->topics[i].name, topic) == 0) {
            return partition < r->topics[i].npartitions ? r->topics[i].leaders[partition] : -1;
        }
    }
    return -1;
}

/*
 * A call to one broker. One that just failed to reach it is not repeated
 * for DOWN_MS: a broker that is gone without refusing connections would
 * otherwise hold every caller for the request timeout, once per partition,
 * until the cluster elects new leaders.
 */
static int node_call(coll_sremote_t *r, int32_t node, int16_t api_key, int16_t version,
                     const void *req, void *resp, trib_arena_t *arena, trib_error_t *err)
{
    uint64_t now = mono_ms();
    size_t slot = MAX_DOWN;
    for (size_t i = 0; i < MAX_DOWN; i++) {
        if (r->down[i].until_ms > now && r->down[i].node == node) {
            return trib_error_set(err, -EHOSTUNREACH, "broker %d failed just now", (int)node);
        }
        if (r->down[i].until_ms <= now && slot == MAX_DOWN) {
            slot = i;
        }
    }
    int rc = trib_kclient_call(r->c, node, api_key, version, req, resp, arena, err);
    if (rc != 0 && slot < MAX_DOWN) {
        r->down[slot].node = node;
        r->down[slot].until_ms = mono_ms() + DOWN_MS;
    }
    return rc;
}

/* Marks the metadata stale after a failed call; returns the code to report. */
static int16_t failed(coll_sremote_t *r, int16_t code)
{
    if (stale_code(code)) {
        r->stale = true;
    }
    return code;
}

int16_t coll_sremote_fetch(coll_sremote_t *r, const char *topic, int32_t partition, int64_t offset,
                           uint8_t **records, size_t *len, int64_t *hw, int64_t *log_start)
{
    *records = NULL;
    *len = 0;
    int32_t leader = leader_of(r, topic, partition);
    if (leader < 0) {
        return TRIB_KAFKA_LEADER_NOT_AVAILABLE;
    }
    int16_t v = trib_kclient_version(r->c, API_FETCH, 4, 12);
    if (v < 0) {
        return TRIB_KAFKA_UNSUPPORTED_VERSION;
    }
    trib_arena_t arena;
    trib_arena_init(&arena);
    FetchRequest_FetchPartition fp;
    FetchRequest_FetchPartition_init(&fp);
    fp.Partition = partition;
    fp.CurrentLeaderEpoch = -1;
    fp.FetchOffset = offset;
    fp.LastFetchedEpoch = -1;
    fp.LogStartOffset = -1;
    fp.PartitionMaxBytes = PARTITION_MAX_BYTES;
    FetchRequest_FetchTopic ft;
    FetchRequest_FetchTopic_init(&ft);
    ft.Topic = trib_kstr(topic);
    ft.Partitions.items = &fp;
    ft.Partitions.count = 1;
    FetchRequest req;
    FetchRequest_init(&req);
    req.ReplicaId = -1;
    req.MaxWaitMs = 0;
    req.MinBytes = 0;
    req.MaxBytes = PARTITION_MAX_BYTES;
    req.IsolationLevel = 0;
    req.SessionId = 0;
    req.SessionEpoch = -1;
    req.Topics.items = &ft;
    req.Topics.count = 1;
    FetchResponse resp;
    trib_error_t err;
    trib_error_clear(&err);
    int16_t code = TRIB_KAFKA_NONE;
    if (node_call(r, leader, API_FETCH, v, &req, &resp, &arena, &err) != 0) {
        code = TRIB_KAFKA_NETWORK_EXCEPTION;
    } else if (resp.ErrorCode != 0) {
        code = resp.ErrorCode;
    } else {
        code = TRIB_KAFKA_UNKNOWN_SERVER_ERROR;
        for (int32_t t = 0; t < resp.Responses.count; t++) {
            for (int32_t k = 0; k < resp.Responses.items[t].Partitions.count; k++) {
                const FetchResponse_PartitionData *pd =
                    &resp.Responses.items[t].Partitions.items[k];
                if (pd->PartitionIndex != partition) {
                    continue;
                }
                code = pd->ErrorCode;
                *hw = pd->HighWatermark;
                *log_start = pd->LogStartOffset;
                if (code == 0 && pd->Records.len > 0) {
                    *records = malloc((size_t)pd->Records.len);
                    if (!*records) {
                        code = TRIB_KAFKA_UNKNOWN_SERVER_ERROR;
                        break;
                    }
                    memcpy(*records, pd->Records.ptr, (size_t)pd->Records.len);
                    *len = (size_t)pd->Records.len;
                }
            }
        }
    }
    trib_arena_fini(&arena);
    return failed(r, code);
}

int16_t coll_sremote_earliest(coll_sremote_t *r, const char *topic, int32_t partition,
                              int64_t *offset)
{
    int32_t leader = leader_of(r, topic, partition);
    if (leader < 0) {
        return TRIB_KAFKA_LEADER_NOT_AVAILABLE;
    }
    int16_t v = trib_kclient_version(r->c, API_LIST_OFFSETS, 1, 7);
    if (v < 0) {
        return TRIB_KAFKA_UNSUPPORTED_VERSION;
    }
    trib_arena_t arena;
    trib_arena_init(&arena);
    ListOffsetsRequest_ListOffsetsPartition lp;
    ListOffsetsRequest_ListOffsetsPartition_init(&lp);
    lp.PartitionIndex = partition;
    lp.CurrentLeaderEpoch = -1;
    lp.Timestamp = -2; /* earliest */
    ListOffsetsRequest_ListOffsetsTopic lt;
    ListOffsetsRequest_ListOffsetsTopic_init(&lt);
    lt.Name = trib_kstr(topic);
    lt.Partitions.items = &lp;
    lt.Partitions.count = 1;
    ListOffsetsRequest req;
    ListOffsetsRequest_init(&req);
    req.ReplicaId = -1;
    req.Topics.items = &lt;
    req.Topics.count = 1;
    ListOffsetsResponse resp;
    trib_error_t err;
    trib_error_clear(&err);
    int16_t code = TRIB_KAFKA_UNKNOWN_SERVER_ERROR;
    if (node_call(r, leader, API_LIST_OFFSETS, v, &req, &resp, &arena, &err) != 0) {
        code = TRIB_KAFKA_NETWORK_EXCEPTION;
    } else {
        for (int32_t t = 0; t < resp.Topics.count; t++) {
            for (int32_t k = 0; k < resp.Topics.items[t].Partitions.count; k++) {
                const ListOffsetsResponse_ListOffsetsPartitionResponse *pr =
                    &resp.Topics.items[t].Partitions.items[k];
                if (pr->PartitionIndex == partition) {
                    code = pr->ErrorCode;
                    *offset = pr->Offset;
                }
            }
        }
    }
    trib_arena_fini(&arena);
    return failed(r, code);
}

static coord_t *coord_get(coll_sremote_t *r, const char *group)
{
    for (size_t i = 0; i < r->ncoords; i++) {
        if (strcmp(r->coords[i].group, group) == 0) {
            return &r->coords[i];
        }
    }
    if (r->ncoords == MAX_COORDS) {
        return &r->coords[0]; /* more sinks than slots: share the first, looked up again */
    }
    char *g = strdup(group);
    if (!g) {
        return NULL;
    }
    coord_t *c = &r->coords[r->ncoords++];
    c->group = g;
    c->node = -1;
    return c;
}

/* The group's coordinator node (FindCoordinator when unknown); -1 with *code set. */
static int32_t coordinator(coll_sremote_t *r, const char *group, int16_t *code)
{
    coord_t *c = coord_get(r, group);
    if (!c) {
        *code = TRIB_KAFKA_UNKNOWN_SERVER_ERROR;
        return -1;
    }
    if (strcmp(c->group, group) != 0) {
        free(c->group);
        c->group = strdup(group);
        c->node = -1;
        if (!c->group) {
            *code = TRIB_KAFKA_UNKNOWN_SERVER_ERROR;
            return -1;
        }
    }
    if (c->node >= 0) {
        return c->node;
    }
    if (r->stale) {
        (void)coll_sremote_refresh(r, false);
    }
    int16_t v = trib_kclient_version(r->c, API_FIND_COORDINATOR, 0, 3);
    if (v < 0) {
        *code = TRIB_KAFKA_UNSUPPORTED_VERSION;
        return -1;
    }
    FindCoordinatorRequest req;
    FindCoordinatorRequest_init(&req);
    req.Key = trib_kstr(group);
    req.KeyType = 0;
    trib_arena_t arena;
    trib_arena_init(&arena);
    FindCoordinatorResponse resp;
    trib_error_t err;
    trib_error_clear(&err);
    int32_t node = -1;
    *code = TRIB_KAFKA_NETWORK_EXCEPTION;
    int rc = trib_kclient_call(r->c, TRIB_KCLIENT_ANY, API_FIND_COORDINATOR, v, &req, &resp, &arena,
                               &err);
    size_t nb = 0;
    const trib_kclient_broker_t *bs = trib_kclient_brokers(r->c, &nb);
    for (size_t i = 0; rc != 0 && i < nb; i++) {
        trib_error_clear(&err);
        rc = node_call(r, bs[i].node_id, API_FIND_COORDINATOR, v, &req, &resp, &arena, &err);
    }
    if (rc == 0) {
        *code = resp.ErrorCode;
        if (resp.ErrorCode == 0) {
            node = resp.NodeId;
            c->node = node;
        }
    } else {
        r->stale = true;
    }
    trib_arena_fini(&arena);
    return node;
}

/* After a coordinator call: forget the coordinator when it moved or failed. */
static int16_t coord_result(coll_sremote_t *r, const char *group, int16_t code)
{
    if (code == TRIB_KAFKA_NOT_COORDINATOR || code == TRIB_KAFKA_COORDINATOR_NOT_AVAILABLE ||
        code == TRIB_KAFKA_NETWORK_EXCEPTION) {
        coord_t *c = coord_get(r, group);
        if (c) {
            c->node = -1;
        }
        if (code == TRIB_KAFKA_NETWORK_EXCEPTION) {
            r->stale = true;
        }
    }
    return code;
}

int16_t coll_sremote_committed(coll_sremote_t *r, const char *group, const char *topic,
                               int32_t partition, int64_t *offset)
{
    *offset = -1;
    int16_t code;
    int32_t node = coordinator(r, group, &code);
    if (node < 0) {
        return code;
    }
    int16_t v = trib_kclient_version(r->c, API_OFFSET_FETCH, 1, 7);
    if (v < 0) {
        return TRIB_KAFKA_UNSUPPORTED_VERSION;
    }
    OffsetFetchRequest_OffsetFetchRequestTopic t;
    OffsetFetchRequest_OffsetFetchRequestTopic_init(&t);
    t.Name = trib_kstr(topic);
    t.PartitionIndexes.items = &partition;
    t.PartitionIndexes.count = 1;
    OffsetFetchRequest req;
    OffsetFetchRequest_init(&req);
    req.GroupId = trib_kstr(group);
    req.Topics.items = &t;
    req.Topics.count = 1;
    trib_arena_t arena;
    trib_arena_init(&arena);
    OffsetFetchResponse resp;
    trib_error_t err;
    trib_error_clear(&err);
    code = TRIB_KAFKA_UNKNOWN_SERVER_ERROR;
    if (node_call(r, node, API_OFFSET_FETCH, v, &req, &resp, &arena, &err) != 0) {
        code = TRIB_KAFKA_NETWORK_EXCEPTION;
    } else if (v >= 2 && resp.ErrorCode != 0) {
        code = resp.ErrorCode;
    } else {
        for (int32_t i = 0; i < resp.Topics.count; i++) {
            for (int32_t k = 0; k < resp.Topics.items[i].Partitions.count; k++) {
                const OffsetFetchResponse_OffsetFetchResponsePartition *p =
                    &resp.Topics.items[i].Partitions.items[k];
                if (p->PartitionIndex == partition) {
                    code = p->ErrorCode;
                    *offset = p->CommittedOffset;
                }
            }
        }
    }
    trib_arena_fini(&arena);
    return coord_result(r, group, code);
}

int16_t coll_sremote_commit(coll_sremote_t *r, const char *group, const char *topic,
                            int32_t partition, int64_t offset)
{
    int16_t code;
    int32_t node = coordinator(r, group, &code);
    if (node < 0) {
        return code;
    }
    int16_t v = trib_kclient_version(r->c, API_OFFSET_COMMIT, 2, 8);
    if (v < 0) {
        return TRIB_KAFKA_UNSUPPORTED_VERSION;
    }
    OffsetCommitRequest_OffsetCommitRequestPartition p;
    OffsetCommitRequest_OffsetCommitRequestPartition_init(&p);
    p.PartitionIndex = partition;
    p.CommittedOffset = offset;
    p.CommittedLeaderEpoch = -1;
    p.CommittedMetadata = trib_kstr("");
    OffsetCommitRequest_OffsetCommitRequestTopic t;
    OffsetCommitRequest_OffsetCommitRequestTopic_init(&t);
    t.Name = trib_kstr(topic);
    t.Partitions.items = &p;
    t.Partitions.count = 1;
    OffsetCommitRequest req;
    OffsetCommitRequest_init(&req);
    req.GroupId = trib_kstr(group);
    req.GenerationIdOrMemberEpoch = -1;
    req.MemberId = trib_kstr("");
    req.GroupInstanceId.len = -1;
    req.RetentionTimeMs = -1;
    req.Topics.items = &t;
    req.Topics.count = 1;
    trib_arena_t arena;
    trib_arena_init(&arena);
    OffsetCommitResponse resp;
    trib_error_t err;
    trib_error_clear(&err);
    code = TRIB_KAFKA_UNKNOWN_SERVER_ERROR;
    if (node_call(r, node, API_OFFSET_COMMIT, v, &req, &resp, &arena, &err) != 0) {
        code = TRIB_KAFKA_NETWORK_EXCEPTION;
    } else {
        for (int32_t i = 0; i < resp.Topics.count; i++) {
            for (int32_t k = 0; k < resp.Topics.items[i].Partitions.count; k++) {
                if (resp.Topics.items[i].Partitions.items[k].PartitionIndex == partition) {
                    code = resp.Topics.items[i].Partitions.items[k].ErrorCode;
                }
            }
        }
    }
    trib_arena_fini(&arena);
    return coord_result(r, group, code);
}

int16_t coll_sremote_produce(coll_sremote_t *r, const char *topic, int32_t partition,
                             const trib_record_in_t *rec, int64_t *offset)
{
    int32_t leader = leader_of(r, topic, partition);
    if (leader < 0) {
        /* Perhaps not there yet: a Metadata naming it creates it where auto-creation is on. */
        trib_arena_t a;
        trib_arena_init(&a);
        MetadataResponse md;
        (void)metadata_call(r, topic, &md, &a);
        trib_arena_fini(&a);
        r->stale = true;
        return TRIB_KAFKA_LEADER_NOT_AVAILABLE;
    }
    int16_t v = trib_kclient_version(r->c, API_PRODUCE, 3, 9);
    if (v < 0) {
        return TRIB_KAFKA_UNSUPPORTED_VERSION;
    }
    trib_buf_t buf;
    trib_buf_init(&buf);
    trib_batch_opts_t bo;
    trib_batch_opts_init(&bo);
    trib_batch_builder_t bb;
    int rc = trib_batch_builder_init(&bb, &buf, &bo);
    if (rc == 0) {
        rc = trib_batch_builder_add(&bb, rec);
    }
    if (rc == 0) {
        rc = trib_batch_builder_finish(&bb);
    }
    trib_batch_builder_fini(&bb);
    size_t len = 0;
    const uint8_t *bytes = rc == 0 ? trib_buf_flatten(&buf, &len) : NULL;
    if (!bytes) {
        trib_buf_fini(&buf);
        return TRIB_KAFKA_UNKNOWN_SERVER_ERROR;
    }
    ProduceRequest_PartitionProduceData pd;
    ProduceRequest_PartitionProduceData_init(&pd);
    pd.Index = partition;
    pd.Records.ptr = bytes;
    pd.Records.len = (int32_t)len;
    ProduceRequest_TopicProduceData td;
    ProduceRequest_TopicProduceData_init(&td);
    td.Name = trib_kstr(topic);
    td.PartitionData.items = &pd;
    td.PartitionData.count = 1;
    ProduceRequest req;
    ProduceRequest_init(&req);
    req.Acks = -1;
    req.TimeoutMs = r->timeout_ms;
    req.TopicData.items = &td;
    req.TopicData.count = 1;
    trib_arena_t arena;
    trib_arena_init(&arena);
    ProduceResponse resp;
    trib_error_t err;
    trib_error_clear(&err);
    int16_t code = TRIB_KAFKA_UNKNOWN_SERVER_ERROR;
    if (node_call(r, leader, API_PRODUCE, v, &req, &resp, &arena, &err) != 0) {
        code = TRIB_KAFKA_NETWORK_EXCEPTION;
    } else {
        for (int32_t t = 0; t < resp.Responses.count; t++) {
            for (int32_t k = 0; k < resp.Responses.items[t].PartitionResponses.count; k++) {
                const ProduceResponse_PartitionProduceResponse *pr =
                    &resp.Responses.items[t].PartitionResponses.items[k];
                if (pr->Index == partition) {
                    code = pr->ErrorCode;
                    *offset = pr->BaseOffset;
                }
            }
        }
    }
    trib_arena_fini(&arena);
    trib_buf_fini(&buf);
    return failed(r, code);
}
