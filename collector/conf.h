/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The collector's configuration (collector.yaml): the schema, the struct it
 * fills, and its mapping onto the storage, cluster and server settings.
 * conf/collector.yaml documents every option with its default; a unit test
 * loads it and checks that it matches the schema's defaults exactly.
 */
#ifndef COLLECTOR_CONF_H
#define COLLECTOR_CONF_H

#include <stdbool.h>
#include <stdint.h>

#include "cluster/cluster.h"
#include "server/server.h"
#include "sinks/sinks.h"
#include "storage/storage.h"
#include "tributary/config.h"

typedef struct coll_conf_metrics {
    bool enabled;
    trib_config_addr_t listen;
} coll_conf_metrics_t;

typedef struct coll_conf_log {
    int level;  /* trib_log_level_t */
    int format; /* trib_log_format_t */
} coll_conf_log_t;

/* listeners[].tls */
typedef struct coll_conf_tls {
    const char *cert, *key, *ca;
    int client_auth; /* coll_client_auth_t */
} coll_conf_tls_t;

/* listeners[]: a Kafka listener as Kafka has them (name, security protocol, TLS, SASL). */
typedef struct coll_conf_listener {
    const char *name;
    trib_config_addr_t address;
    trib_config_addr_t advertise;
    int security; /* coll_security_t */
    coll_conf_tls_t tls;
    trib_config_strlist_t sasl_mechanisms;
} coll_conf_listener_t;

#define COLL_CONF_MAX_LISTENERS 16

typedef struct coll_conf_server {
    uint64_t max_request_bytes;
    uint64_t queued_max_request_bytes;
    int64_t request_timeout;
    uint64_t fetch_max_bytes;
    uint64_t max_inflight_requests;
    uint64_t max_connections;
    int64_t idle_timeout;
    int64_t shutdown_timeout;
    uint64_t backlog;
    int64_t failed_authentication_delay;
} coll_conf_server_t;

typedef struct coll_conf_storage {
    int fsync; /* coll_fsync_policy_t */
    int64_t flush_interval;
    int64_t checkpoint_interval;
    int64_t retention_check_interval;
    int64_t cleaner_backoff;
    uint64_t cleaner_dedupe_buffer;
    uint64_t max_open_segments;
    int64_t segment_idle;
    uint64_t space_reserve;
} coll_conf_storage_t;

typedef struct coll_conf_producers {
    int64_t id_expiration;
    int64_t snapshot_interval;
} coll_conf_producers_t;

/* Broker defaults of topic configs, under Kafka's topic config names. */
typedef struct coll_conf_topic_defaults {
    int cleanup_policy;
    int compression_type;
    int64_t delete_retention_ms;
    uint64_t index_interval_bytes;
    uint64_t max_message_bytes;
    int message_timestamp_type;
    double min_cleanable_dirty_ratio;
    int64_t min_compaction_lag_ms;
    int64_t min_insync_replicas;
    int64_t retention_bytes;
    int64_t retention_ms;
    uint64_t segment_bytes;
    uint64_t segment_index_bytes;
    int64_t segment_ms;
} coll_conf_topic_defaults_t;

/* The group coordinator, under Kafka's broker config names. */
typedef struct coll_conf_groups {
    int64_t offsets_topic_num_partitions;
    int64_t offsets_retention_minutes;
    int64_t offsets_retention_check_interval_ms;
    int64_t min_session_timeout_ms;
    int64_t max_session_timeout_ms;
    int64_t initial_rebalance_delay_ms;
    int64_t offsets_commit_timeout_ms;
} coll_conf_groups_t;

/* cluster: the backend that holds the cluster metadata (cluster/cluster.h). */
typedef enum coll_conf_backend {
    COLL_BACKEND_LOCAL = 0,
    COLL_BACKEND_ZOOKEEPER = 1,
} coll_conf_backend_t;

typedef struct coll_conf_cluster {
    int backend; /* coll_conf_backend_t */
    const char *zookeeper;
    int64_t session_timeout; /* ms */
    const char *rack;
    int64_t replica_lag_time_max_ms;
    uint64_t replica_fetch_max_bytes;
    uint64_t reassignment_throttle; /* leader.replication.throttled.rate, bytes/s; 0 = off */
    bool auto_leader_rebalance;     /* auto.leader.rebalance.enable (false) */
    int64_t leader_imbalance_check_interval_s; /* its interval (300) */
} coll_conf_cluster_t;

/* authorizer: ACLs with Kafka's model (server/acl.h). */
typedef struct coll_conf_authorizer {
    bool enabled;
    trib_config_strlist_t super_users;
} coll_conf_authorizer_t;

typedef struct coll_conf {
    int64_t node_id;
    trib_config_addr_t listen;
    trib_config_addr_t advertise;
    coll_conf_listener_t *listeners; /* listeners[]; none: `listen` is the one listener */
    size_t nlisteners;
    bool listen_flag; /* --listen was given: a plaintext listener before listeners[] */
    const char *data_dir;
    const char *rack;
    bool auto_create_topics;
    int64_t default_partitions;
    int64_t default_replication_factor; /* 0: the backend's (1 local, 3 zookeeper) */
    uint64_t max_partitions;
    coll_conf_cluster_t cluster;
    coll_conf_metrics_t metrics;
    coll_conf_log_t log;
    coll_conf_server_t server;
    coll_conf_authorizer_t authorizer;
    coll_conf_storage_t storage;
    coll_conf_producers_t producers;
    coll_conf_groups_t groups;
    coll_conf_topic_defaults_t topic_defaults;
    coll_sink_conf_t *sinks; /* sinks[] (sinks/sinks.h) */
    size_t nsinks;
    /* Not options: whether the file set topic_defaults' min.insync.replicas. */
    bool min_insync_set;
} coll_conf_t;

extern const trib_config_option_t coll_conf_schema[];

/*
 * Loads `path` into c, or the defaults alone when path is NULL. Returns 0
 * or TRIB_ECONFIG / -ENOMEM; *cfg (freed by the caller with
 * trib_config_free) holds the strings and the errors.
 */
int coll_conf_load(coll_conf_t *c, trib_config_t **cfg, const char *path);

/*
 * The checks that span options (the zookeeper backend needs a connect
 * string and a collector built with the ZooKeeper client; rack set once),
 * added to cfg's errors at the offending key. 0 or TRIB_ECONFIG. Run by
 * coll_conf_load; run it again after command-line flags change `c`.
 */
int coll_conf_check(const coll_conf_t *c, trib_config_t *cfg);
/* The rack: cluster.rack, else the top-level rack, else NULL. */
const char *coll_conf_rack(const coll_conf_t *c);

void coll_conf_to_storage(const coll_conf_t *c, coll_storage_config_t *out);
void coll_conf_to_cluster(const coll_conf_t *c, coll_cluster_config_t *out);
void coll_conf_to_server(const coll_conf_t *c, coll_server_config_t *out);
/*
 * The listeners for the server into out[COLL_CONF_MAX_LISTENERS + 1]: with
 * listeners[] configured, those (after a plaintext one from --listen when
 * listen_flag is set); else none (the server makes one from listen and
 * advertise). Returns how many.
 */
size_t coll_conf_listeners(const coll_conf_t *c, coll_listener_config_t *out);
/* The topic defaults as topic configs, and which differ from Kafka's (bit per row). */
void coll_conf_topic_defaults(const coll_conf_t *c, coll_tcfg_t *out, uint32_t *set_mask);

#endif
