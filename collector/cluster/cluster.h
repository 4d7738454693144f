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

/*
 * A partition and its replica state (Kafka's LeaderAndIsr).
 *
 * With the local backend this node is leader, the only replica and the
 * ISR, leader epoch 0, and nothing ever changes. With the zookeeper
 * backend the fields mirror the partition's state znode
 * (/brokers/topics/<t>/partitions/<p>/state) and the topic's assignment
 * as this broker last read them; the backend updates them and then runs
 * the partition_changed hook. partition_epoch is the state znode's
 * version: the compare-and-set token of an ISR change
 * (coll_cluster_alter_isr).
 *
 * `log` and `rt` are NULL for a partition of which this node holds no
 * replica (the zookeeper backend lists every topic of the cluster for
 * Metadata, but a broker opens logs only for its own replicas).
 */
struct coll_partition {
    coll_topic_t *topic;
    int32_t index;
    int32_t leader_epoch;    /* 0 on a single node */
    int32_t leader;          /* node id; -1: no leader (offline) */
    int32_t partition_epoch; /* the state znode's version; 0 on a single node */
    int32_t nreplicas;       /* assignment, preferred leader first */
    int32_t *replicas;
    int32_t nisr; /* in-sync replicas, as committed in the cluster metadata */
    int32_t *isr;
    coll_log_t *log; /* NULL: no replica here */
    void *rt;        /* the server's runtime state; NULL when log is NULL */
};

/* True when this node holds a replica of p (its log is open). */
static inline bool coll_partition_hosted(const coll_partition_t *p)
{
    return p->log != NULL;
}
/* True when p is hosted here and this node (self) is its leader. */
static inline bool coll_partition_leads(const coll_partition_t *p, int32_t self)
{
    return p->log != NULL && p->leader == self;
}
/* True when id is in p's ISR / replicas. */
bool coll_partition_in_isr(const coll_partition_t *p, int32_t id);
bool coll_partition_is_replica(const coll_partition_t *p, int32_t id);

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
    /*
     * The zookeeper backend applied a new state to a hosted partition:
     * its leader, leader_epoch, ISR or partition_epoch changed (the fields
     * already hold the new values; prev_* are the old ones). Also runs once
     * right after partition_added. The server becomes leader or follower
     * here. The local backend never calls it. NULL is fine.
     */
    void (*partition_changed)(void *arg, coll_partition_t *p, int32_t prev_leader,
                              int32_t prev_leader_epoch);
    /*
     * The zookeeper backend has read every topic ZooKeeper lists, once
     * (coll_cluster_metadata_ready() turns true). Runs once. NULL is fine.
     */
    void (*metadata_ready)(void *arg);
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
    /*
     * The zookeeper backend: topics come from ZooKeeper (cluster/zk_topics.c),
     * not from the metadata file, which keeps the cluster and node ids; its
     * topic lines are neither read nor rewritten, and no log is attached or
     * adopted at open. Logs of topics ZooKeeper does not know are logged
     * and left alone.
     */
    bool zookeeper;
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
/*
 * Whether the topics are known: always with the local backend; with the
 * zookeeper backend once every topic ZooKeeper lists has been read after
 * the start. Until then a broker that restarted would tell clients its
 * topics do not exist, so the server reads no request before it.
 */
bool coll_cluster_metadata_ready(const coll_cluster_t *c);
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
    /* coll_cluster_alter_isr() on this backend; NULL: not supported. */
    int (*alter_isr)(void *arg, coll_partition_t *p, const int32_t *isr, int32_t n,
                     void (*cb)(void *cbarg, coll_partition_t *p, int status), void *cbarg);
    /* coll_cluster_may_lead() on this backend; NULL: always. */
    bool (*may_lead)(void *arg, const coll_partition_t *p);
    void *arg;
} coll_cluster_view_t;

void coll_cluster_set_view(coll_cluster_t *c, const coll_cluster_view_t *v);
/* How many brokers coll_cluster_brokers() lists now. */
size_t coll_cluster_broker_count(const coll_cluster_t *c);
/* Fills out[0..max) with the live brokers, sorted by id; returns the count. */
size_t coll_cluster_brokers(const coll_cluster_t *c, coll_broker_info_t *out, size_t max);
/*
 * One live broker by id: 0 and *out filled (its strings valid until the
 * view changes: copy them), or TRIB_ENOT_FOUND when it is not registered.
 */
int coll_cluster_broker(const coll_cluster_t *c, int32_t id, coll_broker_info_t *out);
/* True with the zookeeper backend (partitions may have other replicas and leaders). */
bool coll_cluster_replicated(const coll_cluster_t *c);
/*
 * Whether this node, the leader of p in its view, may take writes for p
 * now. Always with the local backend. With the zookeeper backend only
 * while its ZooKeeper session is connected, it is registered in it and it
 * has read p's state since (re)connecting: a leader that lost its session
 * keeps its view, but the controller may already have given p a new
 * leader epoch elsewhere (once the session expired), and a write it
 * takes then is one the new leader never sees; its producer state also
 * stops where the new leader's goes on, so an idempotent producer sent
 * back to it by stale metadata would get OUT_OF_ORDER_SEQUENCE_NUMBER
 * (fatal in librdkafka) instead of NOT_LEADER_OR_FOLLOWER. The ZooKeeper
 * client reports the loss after two thirds of the session timeout
 * without an answer, before the ensemble can expire the session, so the
 * old leader stops before a new one can start.
 */
bool coll_cluster_may_lead(const coll_cluster_t *c, const coll_partition_t *p);

/*
 * The leader of p proposes a new ISR (Kafka's AlterIsr, written by the
 * leader itself as in ZooKeeper mode): the state znode is rewritten with
 * the same leader and leader_epoch, compared-and-set at
 * p->partition_epoch. cb(arg, p, status) runs later on the loop:
 *   0        written; the new ISR and partition_epoch are applied (and
 *            partition_changed has run) before cb;
 *   -ESTALE  the znode had moved on (BADVERSION, or another leader or
 *            epoch): the backend re-reads it and applies what it finds;
 *            propose again from the new state, never from a cached version;
 *   other    ZooKeeper unreachable, this node no longer leads p, or the
 *            partition went away (p is then not to be touched).
 * Returns 0, or a negative error without calling cb: -ENOTSUP (local
 * backend), -EBUSY (a proposal for p is in flight), -EINVAL.
 */
typedef void (*coll_isr_cb)(void *arg, coll_partition_t *p, int status);
int coll_cluster_alter_isr(coll_cluster_t *c, coll_partition_t *p, const int32_t *isr, int32_t n,
                           coll_isr_cb cb, void *arg);
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

/* ---- asynchronous admin (the zookeeper backend) ---------------------------------- */

/*
 * With the zookeeper backend an admin change is a ZooKeeper write that every
 * broker then applies from its watches, so it completes later: the request
 * handlers use these calls when coll_cluster_admin_async() is true. cb(arg,
 * res) runs exactly once, possibly before the call returns (a request that
 * fails validation). The synchronous calls above stay those of the local
 * backend; on the zookeeper backend coll_cluster_create_topic (and so
 * auto-creation) starts the creation and answers LEADER_NOT_AVAILABLE, as
 * Kafka's auto-creation does.
 */
typedef void (*coll_admin_cb)(void *arg, const coll_admin_result_t *res);

/*
 * One partition of an AlterPartitionReassignments: its target replica list
 * (preferred leader first), or nreplicas -1 to cancel the reassignment in
 * progress. A partition refused before anything is written gets its own
 * code and msg (nonzero code); the others share the write's result (cb).
 */
#define COLL_REASSIGN_MAX_REPLICAS 64
typedef struct coll_reassign_part {
    int32_t partition;
    int32_t nreplicas; /* -1: cancel */
    int32_t replicas[COLL_REASSIGN_MAX_REPLICAS];
    int16_t code;
    char msg[160];
} coll_reassign_part_t;

typedef struct coll_cluster_admin {
    /* Validated already; assignment: npart * rf broker ids, or NULL to compute one. */
    void (*create_topic)(void *arg, const char *name, size_t len, int32_t partitions, int16_t rf,
                         const int32_t *assignment, const coll_tcfg_t *overrides, uint32_t mask,
                         bool validate_only, coll_admin_cb cb, void *cbarg);
    void (*delete_topic)(void *arg, coll_topic_t *t, coll_admin_cb cb, void *cbarg);
    void (*create_partitions)(void *arg, coll_topic_t *t, int32_t total, bool validate_only,
                              coll_admin_cb cb, void *cbarg);
    void (*alter_configs)(void *arg, coll_topic_t *t, const coll_tcfg_t *overrides, uint32_t mask,
                          coll_admin_cb cb, void *cbarg);
    /* ElectLeaders (PREFERRED) for one partition; only the controller elects. */
    void (*elect_preferred)(void *arg, coll_topic_t *t, int32_t partition, coll_admin_cb cb,
                            void *cbarg);
    /* 0, or -EAGAIN while no producer id block is at hand (fetched meanwhile). */
    int (*next_producer_id)(void *arg, int64_t *pid);
    /* AlterPartitionReassignments for partitions of one topic (see below). */
    void (*reassign)(void *arg, coll_topic_t *t, coll_reassign_part_t *parts, size_t n,
                     coll_admin_cb cb, void *cbarg);
    /* The replicas being added and removed of a partition; false: none. */
    bool (*reassignment)(void *arg, const coll_topic_t *t, int32_t partition, int32_t *adding,
                         int32_t *nadding, int32_t *removing, int32_t *nremoving);
    void *arg;
} coll_cluster_admin_t;

void coll_cluster_set_admin(coll_cluster_t *c, const coll_cluster_admin_t *a);
/* True when admin changes complete asynchronously (the zookeeper backend). */
bool coll_cluster_admin_async(const coll_cluster_t *c);

/*
 * CreateTopics on the zookeeper backend. assignment (npart * rf ids, the
 * request's manual assignment) or NULL; then partitions and replication
 * are -1. Success means the topic is written in ZooKeeper; the backend
 * answers once this broker's cache shows it with leaders, or after a
 * bounded wait.
 */
void coll_cluster_create_topic_async(coll_cluster_t *c, const char *name, size_t len,
                                     int32_t partitions, int16_t replication,
                                     const int32_t *assignment, const coll_config_kv_t *cfgs,
                                     size_t ncfgs, bool validate_only, coll_admin_cb cb, void *arg);
void coll_cluster_delete_topic_async(coll_cluster_t *c, coll_topic_t *t, coll_admin_cb cb,
                                     void *arg);
void coll_cluster_create_partitions_async(coll_cluster_t *c, coll_topic_t *t, int32_t total,
                                          bool validate_only, coll_admin_cb cb, void *arg);
/*
 * ElectLeaders, preferred election: the partition's first replica leads when
 * it is alive and in the ISR (ELECTION_NOT_NEEDED when it leads already,
 * PREFERRED_LEADER_NOT_AVAILABLE when it cannot; NOT_CONTROLLER on a
 * broker that is not the controller).
 */
void coll_cluster_elect_preferred_async(coll_cluster_t *c, coll_topic_t *t, int32_t partition,
                                        coll_admin_cb cb, void *arg);
void coll_cluster_alter_configs_async(coll_cluster_t *c, coll_topic_t *t,
                                      const coll_config_kv_t *cfgs, const int8_t *ops, size_t n,
                                      bool replace, bool validate_only, coll_admin_cb cb,
                                      void *arg);
/*
 * AlterPartitionReassignments (KIP-455, as Kafka 2.8 in ZooKeeper mode):
 * only the controller starts one; the topic znode then lists the union of
 * the old and the new replicas with adding_replicas / removing_replicas,
 * and the controller completes each partition once its new replicas are
 * in the ISR. cb runs once for the partitions that were not refused (with
 * nothing left, it still runs, with code 0). On the local backend every
 * partition is refused.
 */
void coll_cluster_reassign_async(coll_cluster_t *c, coll_topic_t *t, coll_reassign_part_t *parts,
                                 size_t n, coll_admin_cb cb, void *arg);
/* ListPartitionReassignments: false when the partition is not being reassigned. */
bool coll_cluster_reassignment(const coll_cluster_t *c, const coll_topic_t *t, int32_t partition,
                               int32_t *adding, int32_t *nadding, int32_t *removing,
                               int32_t *nremoving);

/* ---- producer ids -------------------------------------------------------------- */

/*
 * A new producer id (InitProducerId); -ENOSPC/-EIO when the block cannot be
 * checkpointed; -EAGAIN on the zookeeper backend while the next block is
 * being fetched (a retriable error for the client).
 */
int coll_cluster_next_producer_id(coll_cluster_t *c, int64_t *pid);

/* ---- uuids ----------------------------------------------------------------------- */

/* A random id that is not zero and whose text (trib_uuid_format) does not start with '-'
 * (as Kafka's). */
void coll_uuid_random(trib_uuid_t *out);

#endif
