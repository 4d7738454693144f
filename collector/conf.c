/* SPDX-License-Identifier: Apache-2.0 */
/*
 * collector.yaml: the schema rows and the mapping onto the modules'
 * settings (see conf.h). Every default here is also written, with its
 * explanation, in conf/collector.yaml; test_collector_conf checks that the
 * two agree.
 */
#include "conf.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "cluster/zk.h"
#include "tributary/log.h"
#include "tributary/scram.h"

static const char *const fsync_modes[] = {"ack", "interval", "never", NULL};
static const char *const log_levels[] = {"error", "warn", "info", "debug", "trace", NULL};
static const char *const log_formats[] = {"text", "json", NULL};
static const char *const cleanup_policies[] = {"delete", "compact", "compact,delete", NULL};
static const char *const compression_types[] = {"producer", NULL};
static const char *const timestamp_types[] = {"CreateTime", "LogAppendTime", NULL};

static const char *const backends[] = {"local", "zookeeper", NULL};
static const char *const securities[] = {"plaintext", "ssl", "sasl_plaintext", "sasl_ssl", NULL};
static const char *const client_auths[] = {"none", "requested", "required", NULL};

static const trib_config_option_t tls_opts[] = {
    {TRIB_CONFIG_FIELD(coll_conf_tls_t, cert, STRING), .min = "1",
     .desc = "PEM file: the listener's certificate (and its chain)"},
    {TRIB_CONFIG_FIELD(coll_conf_tls_t, key, STRING), .min = "1",
     .desc = "PEM file: the certificate's private key (not encrypted)"},
    {TRIB_CONFIG_FIELD(coll_conf_tls_t, ca, STRING), .min = "1",
     .desc = "PEM file: the CAs client certificates are checked against"},
    {TRIB_CONFIG_FIELD(coll_conf_tls_t, client_auth, ENUM), .def = "none", .choices = client_auths,
     .desc = "client certificates: none; requested (checked when sent); required (mTLS); "
             "the principal is the certificate's subject"},
    TRIB_CONFIG_END,
};

static const trib_config_option_t listener_opts[] = {
    {TRIB_CONFIG_FIELD(coll_conf_listener_t, name, STRING), .flags = TRIB_CONFIG_REQUIRED,
     .min = "1", .max = "64", .desc = "the listener's name (logs, the ready file)"},
    {TRIB_CONFIG_FIELD(coll_conf_listener_t, address, ADDRESS), .flags = TRIB_CONFIG_REQUIRED,
     .desc = "host:port to listen on (port 0: any free port)"},
    {TRIB_CONFIG_FIELD(coll_conf_listener_t, advertise, ADDRESS),
     .desc = "host:port given to this listener's clients; default: the address"},
    {TRIB_CONFIG_FIELD(coll_conf_listener_t, security, ENUM), .def = "plaintext",
     .choices = securities, .desc = "plaintext, ssl, sasl_plaintext or sasl_ssl"},
    {TRIB_CONFIG_SECTION(coll_conf_listener_t, tls, tls_opts)},
    {TRIB_CONFIG_FIELD(coll_conf_listener_t, sasl_mechanisms, STRLIST), .max = "3",
     .desc = "PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 (sasl_* listeners; default: both SCRAM)"},
    TRIB_CONFIG_END,
};

static const trib_config_option_t cluster_opts[] = {
    {TRIB_CONFIG_FIELD(coll_conf_cluster_t, backend, ENUM), .def = "local", .choices = backends,
     .desc = "local: this node alone (metadata in the data dir); zookeeper: brokers of a "
             "cluster that register and elect a controller in ZooKeeper"},
    {TRIB_CONFIG_FIELD(coll_conf_cluster_t, zookeeper, STRING),
     .desc = "ZooKeeper connect string host:port[,host:port...][/chroot] (zookeeper.connect)"},
    {TRIB_CONFIG_FIELD(coll_conf_cluster_t, session_timeout, DURATION), .def = "18s", .min = "2s",
     .max = "10m", .desc = "ZooKeeper session timeout (zookeeper.session.timeout.ms)"},
    {TRIB_CONFIG_FIELD(coll_conf_cluster_t, rack, STRING),
     .desc = "this node's rack (broker.rack); the top-level rack is the same option"},
    {TRIB_CONFIG_KEY("replica.lag.time.max.ms", coll_conf_cluster_t, replica_lag_time_max_ms, INT),
     .def = "30000", .min = "1", .max = "2147483647",
     .desc = "a follower not caught up with the leader's log end for this long leaves the ISR "
             "(checked every half of it)"},
    {TRIB_CONFIG_KEY("auto.leader.rebalance.enable", coll_conf_cluster_t, auto_leader_rebalance,
                     BOOL),
     .def = "false",
     .desc = "the controller moves each partition's leadership back to its preferred (first) "
             "replica when that one is live and in the ISR, every check interval"},
    {TRIB_CONFIG_KEY("leader.imbalance.check.interval.seconds", coll_conf_cluster_t,
                     leader_imbalance_check_interval_s, INT),
     .def = "300", .min = "1", .max = "86400",
     .desc = "how often the controller looks for partitions to give back to their preferred "
             "leader (with auto.leader.rebalance.enable)"},
    {TRIB_CONFIG_KEY("leader.replication.throttled.rate", coll_conf_cluster_t,
                     reassignment_throttle, SIZE),
     .def = "0", .min = "0", .max = "1TiB",
     .desc = "bytes per second this broker, as leader, sends to the replicas that a partition "
             "reassignment is adding (their catch-up), over all partitions; 0 = unthrottled. "
             "Replicas already in the ISR are never throttled"},
    {TRIB_CONFIG_KEY("replica.fetch.max.bytes", coll_conf_cluster_t, replica_fetch_max_bytes, SIZE),
     .def = "1MiB", .min = "1KiB", .max = "1GiB",
     .desc = "bytes a follower asks per partition in each fetch from its leader (at least one "
             "batch is returned however large)"},
    TRIB_CONFIG_END,
};

static const trib_config_option_t metrics_opts[] = {
    {TRIB_CONFIG_FIELD(coll_conf_metrics_t, enabled, BOOL), .def = "true",
     .desc = "serve Prometheus metrics and the health check over HTTP"},
    {TRIB_CONFIG_FIELD(coll_conf_metrics_t, listen, ADDRESS), .def = "127.0.0.1:9644",
     .desc = "host:port of the metrics endpoint (port 0: any free port)"},
    TRIB_CONFIG_END,
};

static const trib_config_option_t log_opts[] = {
    {TRIB_CONFIG_FIELD(coll_conf_log_t, level, ENUM), .def = "info", .choices = log_levels,
     .desc = "the most detailed level logged"},
    {TRIB_CONFIG_FIELD(coll_conf_log_t, format, ENUM), .def = "text", .choices = log_formats,
     .desc = "text lines or JSON lines on stderr"},
    TRIB_CONFIG_END,
};

static const trib_config_option_t server_opts[] = {
    {TRIB_CONFIG_FIELD(coll_conf_server_t, max_request_bytes, SIZE), .def = "100MiB", .min = "1KiB",
     .max = "2147483647",
     .desc = "a larger request frame closes its connection (socket.request.max.bytes)"},
    {TRIB_CONFIG_FIELD(coll_conf_server_t, queued_max_request_bytes, SIZE), .def = "256MiB",
     .max = "1TiB",
     .desc = "memory all connections' requests being read and handled may hold together; a "
             "connection waits, not reading, until its request fits "
             "(queued.max.request.bytes); 0 = no limit"},
    {TRIB_CONFIG_FIELD(coll_conf_server_t, request_timeout, DURATION), .def = "30s",
     .desc = "close a connection whose request stops arriving for this long (its memory goes "
             "back to queued_max_request_bytes); 0 = never"},
    {TRIB_CONFIG_FIELD(coll_conf_server_t, fetch_max_bytes, SIZE), .def = "55MiB", .min = "1KiB",
     .max = "2147483647",
     .desc = "the most record bytes a Fetch response carries, whatever its MaxBytes "
             "(fetch.max.bytes); the first batch is returned whole even if larger"},
    {TRIB_CONFIG_FIELD(coll_conf_server_t, max_inflight_requests, UINT), .def = "64", .min = "1",
     .max = "100000", .desc = "requests per connection in flight before reading pauses"},
    {TRIB_CONFIG_FIELD(coll_conf_server_t, max_connections, UINT), .def = "10000", .max = "1000000",
     .desc = "further connections are refused; 0 = no limit"},
    {TRIB_CONFIG_FIELD(coll_conf_server_t, idle_timeout, DURATION), .def = "10m",
     .desc = "close connections idle this long (connections.max.idle.ms); 0 = never"},
    {TRIB_CONFIG_FIELD(coll_conf_server_t, shutdown_timeout, DURATION), .def = "10s", .max = "1h",
     .desc = "how long in-flight requests may take at SIGTERM"},
    {TRIB_CONFIG_FIELD(coll_conf_server_t, backlog, UINT), .def = "1024", .min = "1",
     .max = "65535", .desc = "listen(2) backlog"},
    {TRIB_CONFIG_FIELD(coll_conf_server_t, failed_authentication_delay, DURATION), .def = "100ms",
     .max = "1m",
     .desc = "a failed SASL login is answered this late, then its connection closes "
             "(connection.failed.authentication.delay.ms)"},
    TRIB_CONFIG_END,
};

static const trib_config_option_t authorizer_opts[] = {
    {TRIB_CONFIG_FIELD(coll_conf_authorizer_t, enabled, BOOL), .def = "false",
     .desc = "check every request against the ACLs (CreateAcls, `tributary acls`); what no "
             "ACL allows is refused"},
    {TRIB_CONFIG_FIELD(coll_conf_authorizer_t, super_users, STRLIST), .max = "1000",
     .desc = "principals (User:NAME) allowed everything whatever the ACLs (super.users)"},
    TRIB_CONFIG_END,
};

static const trib_config_option_t storage_opts[] = {
    {TRIB_CONFIG_FIELD(coll_conf_storage_t, fsync, ENUM), .def = "ack", .choices = fsync_modes,
     .desc = "ack: acks=all waits for fsync (group commit); interval: every flush_interval; "
             "never: page cache only"},
    {TRIB_CONFIG_FIELD(coll_conf_storage_t, flush_interval, DURATION), .def = "1s", .min = "1ms",
     .max = "1h", .desc = "the fsync period of the interval policy"},
    {TRIB_CONFIG_FIELD(coll_conf_storage_t, checkpoint_interval, DURATION), .def = "5s",
     .min = "100ms", .max = "1h", .desc = "how often the offset checkpoint files are written"},
    {TRIB_CONFIG_FIELD(coll_conf_storage_t, retention_check_interval, DURATION), .def = "5m",
     .min = "100ms", .max = "1d",
     .desc = "how often retention runs (log.retention.check.interval.ms)"},
    {TRIB_CONFIG_FIELD(coll_conf_storage_t, cleaner_backoff, DURATION), .def = "15s",
     .min = "100ms", .max = "1d", .desc = "pause between compaction passes"},
    {TRIB_CONFIG_FIELD(coll_conf_storage_t, cleaner_dedupe_buffer, SIZE), .def = "128MiB",
     .min = "1MiB", .max = "16GiB", .desc = "memory for one compaction pass's key map"},
    {TRIB_CONFIG_FIELD(coll_conf_storage_t, max_open_segments, UINT), .def = "256", .min = "1",
     .max = "1000000", .desc = "inactive segments whose files stay open"},
    {TRIB_CONFIG_FIELD(coll_conf_storage_t, segment_idle, DURATION), .def = "1m", .min = "1s",
     .max = "1d", .desc = "close an inactive segment's files after this long unused"},
    {TRIB_CONFIG_FIELD(coll_conf_storage_t, space_reserve, SIZE), .def = "4MiB", .min = "0",
     .max = "1GiB",
     .desc = "disk space held in data_dir/.space-reserve and given up by a start on a full disk, "
             "so recovery can write"},
    TRIB_CONFIG_END,
};

static const trib_config_option_t producer_opts[] = {
    {TRIB_CONFIG_FIELD(coll_conf_producers_t, id_expiration, DURATION), .def = "1d", .min = "1s",
     .desc = "forget idle idempotent producers (producer.id.expiration.ms)"},
    {TRIB_CONFIG_FIELD(coll_conf_producers_t, snapshot_interval, DURATION), .def = "1m",
     .min = "1s", .max = "1d", .desc = "how often producer state snapshots are written"},
    TRIB_CONFIG_END,
};

static const trib_config_option_t group_opts[] = {
    {TRIB_CONFIG_KEY("offsets.topic.num.partitions", coll_conf_groups_t,
                     offsets_topic_num_partitions, INT),
     .def = "50", .min = "1", .max = "1000",
     .desc = "partitions of __consumer_offsets when it is created (changing it later moves "
             "groups to other partitions: their offsets are lost)"},
    {TRIB_CONFIG_KEY("offsets.retention.minutes", coll_conf_groups_t, offsets_retention_minutes,
                     INT),
     .def = "10080", .min = "1",
     .desc = "committed offsets of an empty group are deleted this long after it became empty"},
    {TRIB_CONFIG_KEY("offsets.retention.check.interval.ms", coll_conf_groups_t,
                     offsets_retention_check_interval_ms, INT),
     .def = "600000", .min = "1", .desc = "how often expired offsets are looked for"},
    {TRIB_CONFIG_KEY("group.min.session.timeout.ms", coll_conf_groups_t, min_session_timeout_ms,
                     INT),
     .def = "6000", .min = "1", .max = "2147483647",
     .desc = "JoinGroup with a shorter session timeout gets INVALID_SESSION_TIMEOUT"},
    {TRIB_CONFIG_KEY("group.max.session.timeout.ms", coll_conf_groups_t, max_session_timeout_ms,
                     INT),
     .def = "1800000", .min = "1", .max = "2147483647",
     .desc = "JoinGroup with a longer session timeout gets INVALID_SESSION_TIMEOUT"},
    {TRIB_CONFIG_KEY("group.initial.rebalance.delay.ms", coll_conf_groups_t,
                     initial_rebalance_delay_ms, INT),
     .def = "3000", .min = "0", .max = "2147483647",
     .desc = "a new group waits this long (more per newcomer, up to the rebalance timeout) "
             "for more members before its first generation"},
    {TRIB_CONFIG_KEY("offsets.commit.timeout.ms", coll_conf_groups_t, offsets_commit_timeout_ms,
                     INT),
     .def = "5000", .min = "1", .max = "2147483647",
     .desc = "on a cluster, an offset commit (or a group's assignment) not yet on every in-sync "
             "replica this long after it was written is answered REQUEST_TIMED_OUT"},
    TRIB_CONFIG_END,
};

static const trib_config_option_t topic_default_opts[] = {
    {TRIB_CONFIG_KEY("cleanup.policy", coll_conf_topic_defaults_t, cleanup_policy, ENUM),
     .def = "delete", .choices = cleanup_policies},
    {TRIB_CONFIG_KEY("compression.type", coll_conf_topic_defaults_t, compression_type, ENUM),
     .def = "producer", .choices = compression_types},
    {TRIB_CONFIG_KEY("delete.retention.ms", coll_conf_topic_defaults_t, delete_retention_ms, INT),
     .def = "86400000", .min = "0"},
    {TRIB_CONFIG_KEY("index.interval.bytes", coll_conf_topic_defaults_t, index_interval_bytes,
                     SIZE),
     .def = "4096", .min = "1", .max = "2147483647"},
    {TRIB_CONFIG_KEY("max.message.bytes", coll_conf_topic_defaults_t, max_message_bytes, SIZE),
     .def = "1048588", .min = "61", .max = "2147483647"},
    {TRIB_CONFIG_KEY("message.timestamp.type", coll_conf_topic_defaults_t, message_timestamp_type,
                     ENUM),
     .def = "CreateTime", .choices = timestamp_types},
    {TRIB_CONFIG_KEY("min.cleanable.dirty.ratio", coll_conf_topic_defaults_t,
                     min_cleanable_dirty_ratio, DOUBLE),
     .def = "0.5", .min = "0", .max = "1"},
    {TRIB_CONFIG_KEY("min.compaction.lag.ms", coll_conf_topic_defaults_t, min_compaction_lag_ms,
                     INT),
     .def = "0", .min = "0"},
    {TRIB_CONFIG_KEY("min.insync.replicas", coll_conf_topic_defaults_t, min_insync_replicas, INT),
     .def = "1", .min = "1", .max = "2147483647"},
    {TRIB_CONFIG_KEY("retention.bytes", coll_conf_topic_defaults_t, retention_bytes, INT),
     .def = "-1", .min = "-1"},
    {TRIB_CONFIG_KEY("retention.ms", coll_conf_topic_defaults_t, retention_ms, INT),
     .def = "604800000", .min = "-1"},
    {TRIB_CONFIG_KEY("segment.bytes", coll_conf_topic_defaults_t, segment_bytes, SIZE),
     .def = "1GiB", .min = "1KiB", .max = "2147483647"},
    {TRIB_CONFIG_KEY("segment.index.bytes", coll_conf_topic_defaults_t, segment_index_bytes, SIZE),
     .def = "10MiB", .min = "1KiB", .max = "2147483647"},
    {TRIB_CONFIG_KEY("segment.ms", coll_conf_topic_defaults_t, segment_ms, INT), .def = "604800000",
     .min = "1"},
    TRIB_CONFIG_END,
};

const trib_config_option_t coll_conf_schema[] = {
    {TRIB_CONFIG_FIELD(coll_conf_t, node_id, INT), .def = "1", .min = "0", .max = "2147483647",
     .desc = "this node's id (broker.id)"},
    {TRIB_CONFIG_FIELD(coll_conf_t, listen, ADDRESS), .def = "127.0.0.1:9092",
     .desc = "host:port of the Kafka listener (port 0: any free port)"},
    {TRIB_CONFIG_FIELD(coll_conf_t, advertise, ADDRESS),
     .desc = "host:port given to clients; default: the listen address"},
    {TRIB_CONFIG_SECTIONS(coll_conf_t, listeners, nlisteners, coll_conf_listener_t, listener_opts),
     .max = "16",
     .desc = "Kafka listeners with their security; when set, they replace listen/advertise"},
    {TRIB_CONFIG_FIELD(coll_conf_t, data_dir, STRING), .def = "./tributary-data", .min = "1",
     .desc = "where partition logs and metadata live (log.dirs)"},
    {TRIB_CONFIG_FIELD(coll_conf_t, rack, STRING), .desc = "this node's rack (broker.rack)"},
    {TRIB_CONFIG_FIELD(coll_conf_t, auto_create_topics, BOOL), .def = "true",
     .desc = "create unknown topics on Metadata and Produce (auto.create.topics.enable)"},
    {TRIB_CONFIG_FIELD(coll_conf_t, default_partitions, INT), .def = "1", .min = "1",
     .max = "10000", .desc = "partitions of auto-created topics (num.partitions)"},
    {TRIB_CONFIG_FIELD(coll_conf_t, default_replication_factor, INT), .def = "0", .min = "0",
     .max = "64",
     .desc = "replication factor of topics created without one, __consumer_offsets included "
             "(default.replication.factor); 0: the backend's, 1 with local, 3 with zookeeper"},
    {TRIB_CONFIG_FIELD(coll_conf_t, max_partitions, UINT), .def = "100000",
     .desc = "partitions this node hosts at most; 0 = no limit"},
    {TRIB_CONFIG_SECTION(coll_conf_t, cluster, cluster_opts)},
    {TRIB_CONFIG_SECTION(coll_conf_t, metrics, metrics_opts)},
    {TRIB_CONFIG_SECTION(coll_conf_t, log, log_opts)},
    {TRIB_CONFIG_SECTION(coll_conf_t, server, server_opts)},
    {TRIB_CONFIG_SECTION(coll_conf_t, authorizer, authorizer_opts)},
    {TRIB_CONFIG_SECTION(coll_conf_t, storage, storage_opts)},
    {TRIB_CONFIG_SECTION(coll_conf_t, producers, producer_opts)},
    {TRIB_CONFIG_SECTION(coll_conf_t, groups, group_opts)},
    {TRIB_CONFIG_SECTION(coll_conf_t, topic_defaults, topic_default_opts)},
    {TRIB_CONFIG_SECTIONS(coll_conf_t, sinks, nsinks, coll_sink_conf_t, coll_sink_conf_schema),
     .desc = "sinks run inside the collector (sinks/sinks.h)"},
    TRIB_CONFIG_END,
};

int coll_conf_load(coll_conf_t *c, trib_config_t **cfg, const char *path)
{
    memset(c, 0, sizeof(*c));
    int rc;
    if (path) {
        rc = trib_config_load_file(cfg, path, coll_conf_schema, c);
    } else {
        rc = trib_config_load_string(cfg, "(defaults)", "", 0, coll_conf_schema, c);
    }
    int line, col;
    c->min_insync_set =
        *cfg && trib_config_position(*cfg, "topic_defaults.min.insync.replicas", &line, &col) == 0;
    if (*cfg && rc != -ENOMEM) {
        int crc = coll_conf_check(c, *cfg);
        if (rc == 0) {
            rc = crc;
        }
    }
    /* Sink options are checked against their plugin's schema (file:line:col). */
    if (*cfg && c->nsinks > 0 && rc != -ENOMEM) {
        int src = coll_sinks_check(*cfg, c->sinks, c->nsinks);
        if (rc == 0) {
            rc = src;
        }
    }
    return rc;
}

static void add_error_at(trib_config_t *cfg, const char *path, const char *msg)
{
    int line = 0, col = 0;
    if (trib_config_position(cfg, path, &line, &col) != 0) {
        line = col = 0;
    }
    trib_config_add_error(cfg, line, col, "%s", msg);
}

int coll_conf_check(const coll_conf_t *c, trib_config_t *cfg)
{
    int rc = 0;
    const char *why;
    char msg[512];
    if (c->rack && c->cluster.rack) {
        add_error_at(cfg, "cluster.rack", "rack is set twice (rack and cluster.rack): keep one");
        rc = TRIB_ECONFIG;
    }
    if (c->cluster.backend == COLL_BACKEND_ZOOKEEPER) {
        if (!coll_zk_available()) {
            add_error_at(cfg, "cluster.backend",
                         "backend zookeeper: this collector was built without the ZooKeeper C "
                         "client (libzookeeper-st-dev)");
            rc = TRIB_ECONFIG;
        }
        if (!c->cluster.zookeeper) {
            add_error_at(cfg, "cluster.backend",
                         "backend zookeeper needs cluster.zookeeper (host:port[,...][/chroot])");
            rc = TRIB_ECONFIG;
        }
    }
    if (c->cluster.zookeeper && coll_zk_check_connect(c->cluster.zookeeper, &why) != 0) {
        snprintf(msg, sizeof(msg), "cluster.zookeeper: %s", why);
        add_error_at(cfg, "cluster.zookeeper", msg);
        rc = TRIB_ECONFIG;
    }
    int line, col;
    if (c->nlisteners > 0 && !c->listen_flag) {
        if (trib_config_position(cfg, "listen", &line, &col) == 0) {
            add_error_at(cfg, "listen", "listen and listeners are both set: keep listeners");
            rc = TRIB_ECONFIG;
        }
        if (trib_config_position(cfg, "advertise", &line, &col) == 0) {
            add_error_at(cfg, "advertise",
                         "advertise and listeners are both set: give each listener its advertise");
            rc = TRIB_ECONFIG;
        }
    }
    for (size_t i = 0; i < c->nlisteners; i++) {
        const coll_conf_listener_t *l = &c->listeners[i];
        char path[96];
        bool tls = coll_security_tls((coll_security_t)l->security);
        bool sasl = coll_security_sasl((coll_security_t)l->security);
        for (size_t k = 0; k < i; k++) {
            if (l->name && c->listeners[k].name && strcmp(l->name, c->listeners[k].name) == 0) {
                snprintf(path, sizeof(path), "listeners[%zu].name", i);
                snprintf(msg, sizeof(msg), "listener name '%s' is used twice", l->name);
                add_error_at(cfg, path, msg);
                rc = TRIB_ECONFIG;
            }
        }
        snprintf(path, sizeof(path), "listeners[%zu].security", i);
        if (trib_config_position(cfg, path, &line, &col) != 0) {
            snprintf(path, sizeof(path), "listeners[%zu]", i);
        }
        if (tls && (!l->tls.cert || !l->tls.key)) {
            add_error_at(cfg, path, "an ssl or sasl_ssl listener needs tls.cert and tls.key");
            rc = TRIB_ECONFIG;
        }
        if (!tls && (l->tls.cert || l->tls.key || l->tls.ca)) {
            snprintf(path, sizeof(path), "listeners[%zu].tls", i);
            add_error_at(cfg, path,
                         "tls files are set on a listener without TLS (security: "
                         "ssl or sasl_ssl)");
            rc = TRIB_ECONFIG;
        }
        if (tls && l->tls.client_auth > 0 && !l->tls.ca) {
            snprintf(path, sizeof(path), "listeners[%zu].tls.client_auth", i);
            add_error_at(cfg, path, "client_auth requested or required needs tls.ca");
            rc = TRIB_ECONFIG;
        }
        if (!sasl && l->sasl_mechanisms.count > 0) {
            snprintf(path, sizeof(path), "listeners[%zu].sasl_mechanisms", i);
            add_error_at(cfg, path,
                         "sasl_mechanisms on a listener without SASL (security: "
                         "sasl_plaintext or sasl_ssl)");
            rc = TRIB_ECONFIG;
        }
        for (size_t k = 0; k < l->sasl_mechanisms.count; k++) {
            const char *m = l->sasl_mechanisms.items[k];
            if (strcmp(m, "PLAIN") != 0 && !trib_scram_mech_parse(m)) {
                snprintf(path, sizeof(path), "listeners[%zu].sasl_mechanisms[%zu]", i, k);
                snprintf(msg, sizeof(msg),
                         "unknown SASL mechanism '%s' (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)", m);
                add_error_at(cfg, path, msg);
                rc = TRIB_ECONFIG;
            }
        }
    }
    /* A super user is a principal, TYPE:NAME (User:admin); a bare name would never match. */
    for (size_t k = 0; k < c->authorizer.super_users.count; k++) {
        const char *u = c->authorizer.super_users.items[k];
        const char *colon = strchr(u, ':');
        if (!colon || colon == u || !colon[1]) {
            char path[64];
            snprintf(path, sizeof(path), "authorizer.super_users[%zu]", k);
            snprintf(msg, sizeof(msg), "super user '%s' is not a principal: write User:%s", u, u);
            add_error_at(cfg, path, msg);
            rc = TRIB_ECONFIG;
        }
    }
    return rc;
}

const char *coll_conf_rack(const coll_conf_t *c)
{
    const char *r = c->cluster.rack ? c->cluster.rack : c->rack;
    return r && *r ? r : NULL;
}

void coll_conf_to_storage(const coll_conf_t *c, coll_storage_config_t *out)
{
    coll_storage_config_init(out);
    out->data_dir = c->data_dir;
    out->fsync = (coll_fsync_policy_t)c->storage.fsync;
    out->flush_ms = (uint32_t)c->storage.flush_interval;
    out->checkpoint_interval_ms = (uint32_t)c->storage.checkpoint_interval;
    out->retention_check_ms = (uint32_t)c->storage.retention_check_interval;
    out->cleaner_backoff_ms = (uint32_t)c->storage.cleaner_backoff;
    out->cleaner_dedupe_bytes = c->storage.cleaner_dedupe_buffer;
    out->max_open_segments = (uint32_t)c->storage.max_open_segments;
    out->segment_idle_ms = (uint32_t)c->storage.segment_idle;
    out->space_reserve_bytes = c->storage.space_reserve;
    coll_tcfg_t d;
    uint32_t mask;
    coll_conf_topic_defaults(c, &d, &mask);
    coll_tcfg_to_log_config(&d, &out->log_defaults);
}

void coll_conf_topic_defaults(const coll_conf_t *c, coll_tcfg_t *out, uint32_t *set_mask)
{
    const coll_conf_topic_defaults_t *t = &c->topic_defaults;
    coll_tcfg_t k;
    coll_tcfg_init(&k);
    coll_tcfg_init(out);
    static const int64_t cleanup_bits[] = {COLL_CLEANUP_DELETE, COLL_CLEANUP_COMPACT,
                                           COLL_CLEANUP_DELETE | COLL_CLEANUP_COMPACT};
    out->v[COLL_TCFG_CLEANUP_POLICY].i = t->cleanup_policy >= 0 && t->cleanup_policy < 3
                                             ? cleanup_bits[t->cleanup_policy]
                                             : COLL_CLEANUP_DELETE;
    out->v[COLL_TCFG_COMPRESSION_TYPE].i = 0;
    out->v[COLL_TCFG_DELETE_RETENTION_MS].i = t->delete_retention_ms;
    out->v[COLL_TCFG_INDEX_INTERVAL_BYTES].i = (int64_t)t->index_interval_bytes;
    out->v[COLL_TCFG_MAX_MESSAGE_BYTES].i = (int64_t)t->max_message_bytes;
    out->v[COLL_TCFG_MESSAGE_TIMESTAMP_TYPE].i = t->message_timestamp_type > 0 ? 1 : 0;
    out->v[COLL_TCFG_MIN_CLEANABLE_DIRTY_RATIO].d = t->min_cleanable_dirty_ratio;
    out->v[COLL_TCFG_MIN_COMPACTION_LAG_MS].i = t->min_compaction_lag_ms;
    out->v[COLL_TCFG_MIN_INSYNC_REPLICAS].i = t->min_insync_replicas;
    out->v[COLL_TCFG_RETENTION_BYTES].i = t->retention_bytes;
    out->v[COLL_TCFG_RETENTION_MS].i = t->retention_ms;
    out->v[COLL_TCFG_SEGMENT_BYTES].i = (int64_t)t->segment_bytes;
    out->v[COLL_TCFG_SEGMENT_INDEX_BYTES].i = (int64_t)t->segment_index_bytes;
    out->v[COLL_TCFG_SEGMENT_MS].i = t->segment_ms;
    *set_mask = 0;
    for (int i = 0; i < COLL_TCFG_COUNT; i++) {
        if (!coll_tcfg_equal(i, out->v[i], k.v[i])) {
            *set_mask |= 1u << i;
        }
    }
}

void coll_conf_to_cluster(const coll_conf_t *c, coll_cluster_config_t *out)
{
    coll_cluster_config_init(out);
    out->data_dir = c->data_dir;
    out->node_id = (int32_t)c->node_id;
    out->rack = coll_conf_rack(c);
    out->auto_create_topics = c->auto_create_topics;
    out->default_partitions = (int32_t)c->default_partitions;
    out->max_partitions = (size_t)c->max_partitions;
    coll_conf_topic_defaults(c, &out->defaults, &out->defaults_set);
    out->zookeeper = c->cluster.backend == COLL_BACKEND_ZOOKEEPER;
    if (c->default_replication_factor > 0) {
        out->default_replication_factor = (int16_t)c->default_replication_factor;
    } else if (out->zookeeper) {
        out->default_replication_factor = 3;
    }
    if (out->zookeeper && !c->min_insync_set) {
        /* A cluster's default: an acknowledged write is on two replicas. */
        out->defaults.v[COLL_TCFG_MIN_INSYNC_REPLICAS].i = 2;
    }
}

void coll_conf_to_server(const coll_conf_t *c, coll_server_config_t *out)
{
    coll_server_config_init(out);
    out->listen_host = c->listen.host;
    out->listen_port = c->listen.port;
    out->advertise_host = c->advertise.text ? c->advertise.host : NULL;
    out->advertise_port = c->advertise.text ? c->advertise.port : 0;
    out->metrics_enabled = c->metrics.enabled;
    out->metrics_host = c->metrics.listen.host;
    out->metrics_port = c->metrics.listen.port;
    out->max_request_bytes = (size_t)c->server.max_request_bytes;
    out->max_inflight = (uint32_t)c->server.max_inflight_requests;
    out->queued_max_request_bytes = c->server.queued_max_request_bytes;
    out->request_timeout_ms = c->server.request_timeout;
    out->fetch_max_bytes = (int32_t)c->server.fetch_max_bytes;
    out->max_connections = (size_t)c->server.max_connections;
    out->idle_timeout_ms = c->server.idle_timeout;
    out->shutdown_timeout_ms = c->server.shutdown_timeout;
    out->backlog = (int)c->server.backlog;
    out->failed_auth_delay_ms = c->server.failed_authentication_delay;
    out->authorizer = c->authorizer.enabled;
    out->super_users = c->authorizer.super_users.items;
    out->nsuper_users = c->authorizer.super_users.count;
    out->data_dir = c->data_dir;
    out->producer_expiration_ms = c->producers.id_expiration;
    out->producer_snapshot_interval_ms = c->producers.snapshot_interval;
    out->fsync = (coll_fsync_policy_t)c->storage.fsync;
    out->groups.offsets_partitions = (int32_t)c->groups.offsets_topic_num_partitions;
    out->groups.offsets_retention_ms = c->groups.offsets_retention_minutes * 60 * 1000;
    out->groups.offsets_retention_check_ms = c->groups.offsets_retention_check_interval_ms;
    out->groups.min_session_timeout_ms = (int32_t)c->groups.min_session_timeout_ms;
    out->groups.max_session_timeout_ms = (int32_t)c->groups.max_session_timeout_ms;
    out->groups.initial_rebalance_delay_ms = (int32_t)c->groups.initial_rebalance_delay_ms;
    out->groups.offsets_commit_timeout_ms = (int32_t)c->groups.offsets_commit_timeout_ms;
    out->replica_lag_time_max_ms = c->cluster.replica_lag_time_max_ms;
    out->replica_fetch_max_bytes = (int32_t)c->cluster.replica_fetch_max_bytes;
    out->reassignment_throttle = c->cluster.reassignment_throttle;
}

size_t coll_conf_listeners(const coll_conf_t *c, coll_listener_config_t *out)
{
    size_t n = 0;
    if (c->nlisteners == 0) {
        return 0;
    }
    if (c->listen_flag) {
        memset(&out[n], 0, sizeof(out[n]));
        out[n].name = "plaintext";
        out[n].host = c->listen.host;
        out[n].port = c->listen.port;
        out[n].advertise_host = c->advertise.text ? c->advertise.host : NULL;
        out[n].advertise_port = c->advertise.text ? c->advertise.port : 0;
        n++;
    }
    for (size_t i = 0; i < c->nlisteners && i < COLL_CONF_MAX_LISTENERS; i++) {
        const coll_conf_listener_t *l = &c->listeners[i];
        coll_listener_config_t *o = &out[n++];
        memset(o, 0, sizeof(*o));
        o->name = l->name;
        o->host = l->address.host;
        o->port = l->address.port;
        o->advertise_host = l->advertise.text ? l->advertise.host : NULL;
        o->advertise_port = l->advertise.text ? l->advertise.port : 0;
        o->security = (coll_security_t)(l->security < 0 ? 0 : l->security);
        o->tls_cert = l->tls.cert;
        o->tls_key = l->tls.key;
        o->tls_ca = l->tls.ca;
        o->client_auth = (coll_client_auth_t)(l->tls.client_auth < 0 ? 0 : l->tls.client_auth);
        if (l->sasl_mechanisms.count == 0) {
            o->sasl_mechanisms = COLL_SASL_SCRAM_SHA_256 | COLL_SASL_SCRAM_SHA_512;
        }
        for (size_t k = 0; k < l->sasl_mechanisms.count; k++) {
            const char *m = l->sasl_mechanisms.items[k];
            o->sasl_mechanisms |= strcmp(m, "PLAIN") == 0           ? COLL_SASL_PLAIN
                                  : strcmp(m, "SCRAM-SHA-256") == 0 ? COLL_SASL_SCRAM_SHA_256
                                  : strcmp(m, "SCRAM-SHA-512") == 0 ? COLL_SASL_SCRAM_SHA_512
                                                                    : 0;
        }
    }
    return n;
}
