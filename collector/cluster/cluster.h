/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Cluster metadata: the brokers, the topics with their ids, partitions and
 * configs, who leads each partition, and producer id allocation.
 *
 * This is the one interface the server talks to; ARCHITECTURE.md plans two
 * backends behind it. This build has `local` (local.c), the single-node
 * default: this node is the only broker, the controller, and the leader of
 * every partition with replicas = ISR = [self] and leader epoch 0. Its state
 * lives in one checkpoint file in the data directory,
 * <data_dir>/cluster-metadata, rewritten atomically (tmp, fdatasync,
 * rename, fsync of the directory) on every change, before the change is
 * visible to clients:
 *
 *   # Tributary cluster metadata (local backend) ...      comment lines
 *   version: 1
 *   cluster.id: Kq3qCmbOTSGnD4Tz6_0xvw                     22 chars, Kafka's Uuid text
 *   node.id: 1                                            refuses to start as another node
 *   producer.id.block: 1000                               next unallocated producer id
 *   topic: quickstart-events AAAAAAAAAAAAAAAAAAAAAA 3     name, topic id, partitions
 *   config: quickstart-events retention.ms 86400000       a topic's override
 *
 * Producer ids are handed out from blocks of COLL_PRODUCER_ID_BLOCK: the
 * block's end is checkpointed before its first id is used, so a restart
 * (even after SIGKILL) never reissues an id.
 *
 * Partition logs belong to the storage (coll_storage_t): creating a topic
 * creates its logs, and at startup every partition of every known topic is
 * attached to its log (created if missing). Log directories of topics the
 * metadata does not know are logged and left alone, except on a first start
 * (no metadata file), when they are adopted as topics so that a data
 * directory written by the storage alone is served.
 *
 * Every coll_partition_t has a `rt` pointer for the server's runtime state
 * (producer state, fetch waiters, counters): the hooks tell the server when
 * partitions appear and before they go away.
 *
 * Threading: the loop thread only, like the storage.
 */
#ifndef COLLECTOR_CLUSTER_CLUSTER_H
#define COLLECTOR_CLUSTER_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster/topic_config.h"
#include "storage/storage.h"
#include "tributary/error.h"
#include "tributary/kafka.h"

#define COLL_CLUSTER_FILE "cluster-metadata"
#define COLL_PRODUCER_ID_BLOCK 1000
/* Kafka's topic name rules. */
#define COLL_TOPIC_NAME_MAX 249
/* Bounds on what one topic, and the node, may hold (files and memory). */
#define COLL_MAX_PARTITIONS_PER_TOPIC 10000

typedef struct coll_cluster coll_cluster_t;
typedef struct coll_topic coll_topic_t;
typedef struct coll_partition coll_partition_t;

struct coll_partition {
    coll_topic_t *topic;
    int32_t index;
    int32_t leader_epoch; /* 0 on a single node */
    coll_log_t *log;
    void *rt; /* the server's runtime state */
};

struct coll_topic {
    char *name; /* NUL-terminated */
    size_t name_len;
    trib_uuid_t id;
    int32_t npartitions;
    coll_partition_t **partitions;
    bool internal;        /* __consumer_offsets, __transaction_state */
    uint32_t config_mask; /* rows overridden (bit i = coll_tcfg_key_t i) */
    coll_tcfg_t overrides;
    coll_tcfg_t config;   /* effective: defaults + overrides */
    coll_topic_t *hnext_; /* private: hash chain */
};

typedef struct coll_cluster_hooks {
    /* A partition (and, for its first partition, its topic) now exists. */
    void (*partition_added)(void *arg, coll_partition_t *p);
    /* A partition is about to be removed: drop everything that points at it. */
    void (*partition_removing)(void *arg, coll_partition_t *p);
    void *arg;
} coll_cluster_hooks_t;

typedef struct coll_cluster_config {
    const char *data_dir;
    int32_t node_id;
    const char *host; /* advertised to clients */
    int32_t port;
    const char *rack; /* NULL: none */
    bool auto_create_topics;
    int32_t default_partitions;
    int16_t default_replication_factor; /* 1 */
    coll_tcfg_t defaults;               /* broker defaults of topic configs */
    uint32_t defaults_set;              /* rows set in collector.yaml (bit i = row i) */
    size_t max_partitions;              /* on the node (0: unlimited) */
} coll_cluster_config_t;

void coll_cluster_config_init(coll_cluster_config_t *c);

/*
 * Loads (or creates) the metadata in cfg->data_dir and attaches every
 * partition to its storage log. The config is copied; host, rack and
 * data_dir must outlive the cluster. Errors: TRIB_ECONFIG with the
 * offending line (bad file, other node id), -errno, -ENOMEM.
 */
int coll_cluster_open(coll_storage_t *st, const coll_cluster_config_t *cfg, coll_cluster_t **out,
                      trib_error_t *err);
/* Frees everything (the storage stays open); writes nothing. NULL is fine. */
void coll_cluster_free(coll_cluster_t *c);

void coll_cluster_set_hooks(coll_cluster_t *c, const coll_cluster_hooks_t *hooks);
const coll_cluster_config_t *coll_cluster_config(const coll_cluster_t *c);
const char *coll_cluster_id(const coll_cluster_t *c);
int32_t coll_cluster_node_id(const coll_cluster_t *c);
/*
 * The controller: this node with the local backend; with the zookeeper
 * backend, whoever holds /controller as last seen (-1: none known).
 */
int32_t coll_cluster_controller_id(const coll_cluster_t *c);

/* One live broker, as Metadata and DescribeCluster list it. */
typedef struct coll_broker_info {
    int32_t id;
    const char *host; /* valid until the view changes (the next loop turn) */
    int32_t port;
    const char *rack; /* NULL: none */
} coll_broker_info_t;

/*
 * Where the brokers and the controller come from when the node is one of
 * a cluster (the zookeeper backend, cluster/zk.h); with no view set the
 * node is alone: the only broker and the controller.
 */
typedef struct coll_cluster_view {
    int32_t (*controller_id)(void *arg);
    /* The cluster id clients see; NULL: this node's own. */
    const char *(*cluster_id)(void *arg);
    /* out == NULL: only the count. */
    size_t (*brokers)(void *arg, coll_broker_info_t *out, size_t max);
    void *arg;
} coll_cluster_view_t;

void coll_cluster_set_view(coll_cluster_t *c, const coll_cluster_view_t *v);
/* How many brokers coll_cluster_brokers() lists now. */
size_t coll_cluster_broker_count(const coll_cluster_t *c);
/* Fills out[0..max) with the live brokers, sorted by id; returns the count. */
size_t coll_cluster_brokers(const coll_cluster_t *c, coll_broker_info_t *out, size_t max);
coll_storage_t *coll_cluster_storage(const coll_cluster_t *c);
/* Updates the advertised endpoint (once the listener's port is known). */
void coll_cluster_set_endpoint(coll_cluster_t *c, const char *host, int32_t port);

/* ---- topics ---------------------------------------------------------------- */

coll_topic_t *coll_cluster_topic(const coll_cluster_t *c, const char *name, size_t len);
coll_topic_t *coll_cluster_topic_by_id(const coll_cluster_t *c, const trib_uuid_t *id);
coll_partition_t *coll_cluster_partition(const coll_topic_t *t, int32_t index);
size_t coll_cluster_topic_count(const coll_cluster_t *c);
size_t coll_cluster_partition_count(const coll_cluster_t *c);
/* Fills out[0..n) with every topic, sorted by name; n = coll_cluster_topic_count(). */
void coll_cluster_topics(const coll_cluster_t *c, coll_topic_t **out);

/* Kafka's rules: 1..249 of [a-zA-Z0-9._-], not "." or "..". */
bool coll_topic_name_valid(const char *name, size_t len);

/* One config of a CreateTopics/AlterConfigs request: a view (value len -1 = null). */
typedef struct coll_config_kv {
    trib_kstr_t name;
    trib_kstr_t value;
} coll_config_kv_t;

/*
 * Result of an admin operation: a Kafka error code (trib_kafka_err_t) and,
 * on error, a message for the response's ErrorMessage.
 */
typedef struct coll_admin_result {
    int16_t code;
    char msg[256];
} coll_admin_result_t;

/*
 * CreateTopics: partitions -1 / replication -1 mean the defaults. With
 * validate_only nothing changes. Errors: INVALID_TOPIC_EXCEPTION,
 * TOPIC_ALREADY_EXISTS, INVALID_PARTITIONS, INVALID_REPLICATION_FACTOR,
 * INVALID_CONFIG, POLICY_VIOLATION (the node's partition limit),
 * KAFKA_STORAGE_ERROR (metadata or logs could not be written).
 */
void coll_cluster_create_topic(coll_cluster_t *c, const char *name, size_t len, int32_t partitions,
                               int16_t replication, const coll_config_kv_t *cfgs, size_t ncfgs,
                               bool validate_only, coll_topic_t **out, coll_admin_result_t *res);

/* Auto-creation (Metadata, Produce) when enabled: NULL if disabled or it failed. */
/* True for the names of the collector's internal topics (__consumer_offsets …). */
bool coll_topic_name_internal(const char *name, size_t len);

coll_topic_t *coll_cluster_auto_create(coll_cluster_t *c, const char *name, size_t len,
                                       int16_t *error);

/* DeleteTopics. The hooks run for each partition first; logs are emptied. */
void coll_cluster_delete_topic(coll_cluster_t *c, coll_topic_t *t, coll_admin_result_t *res);

/* CreatePartitions: grows the topic to `total` partitions. */
void coll_cluster_create_partitions(coll_cluster_t *c, coll_topic_t *t, int32_t total,
                                    bool validate_only, coll_admin_result_t *res);

/*
 * Config changes. `ops` are IncrementalAlterConfigs operations (0 SET,
 * 1 DELETE, 2 APPEND, 3 SUBTRACT); AlterConfigs (legacy) passes
 * `replace` = true and SET for every entry: the overrides become exactly
 * the given ones. All entries are validated before any applies.
 */
#define COLL_CONFIG_OP_SET 0
#define COLL_CONFIG_OP_DELETE 1
#define COLL_CONFIG_OP_APPEND 2
#define COLL_CONFIG_OP_SUBTRACT 3
void coll_cluster_alter_configs(coll_cluster_t *c, coll_topic_t *t, const coll_config_kv_t *cfgs,
                                const int8_t *ops, size_t n, bool replace, bool validate_only,
                                coll_admin_result_t *res);

/* ---- producer ids -------------------------------------------------------------- */

/* A new producer id (InitProducerId); -ENOSPC/-EIO when the block cannot be checkpointed. */
int coll_cluster_next_producer_id(coll_cluster_t *c, int64_t *pid);

/* ---- uuids ----------------------------------------------------------------------- */

/* Kafka's Uuid text: URL-safe base64 without padding, 22 characters (+ NUL). */
void coll_uuid_format(const trib_uuid_t *id, char out[23]);
int coll_uuid_parse(const char *s, size_t len, trib_uuid_t *out);
/* A random id that is not zero and whose text does not start with '-' (as Kafka's). */
void coll_uuid_random(trib_uuid_t *out);
bool coll_uuid_is_zero(const trib_uuid_t *id);

#endif
