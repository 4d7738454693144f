/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The sink host: runs the sinks configured under `sinks:` in
 * collector.yaml inside the collector.
 *
 *   sinks:
 *     - name: pg-web
 *       type: postgres                     # plugin <type>.so (tributary/sink.h)
 *       topics: ["web.access", "/^web\\..*$/"]
 *       batch: {max_records: 5000, max_bytes: 4MiB, linger: 1s}
 *       retry: {initial: 100ms, max: 30s}
 *       dead_letter_topic: dlq.pg-web
 *       options: {conninfo: "host=127.0.0.1 dbname=logs", table: web_events}
 *
 * Each sink is the consumer group sink.<name>: while it runs it is that
 * group's one member, sink-<name>-<node id> (registered in the coordinator
 * without a connection: group/group.h, "the collector's own members"),
 * assigned the partitions its tasks process, and its committed offsets are
 * ordinary group offsets in __consumer_offsets, so members, assignments
 * and lag show in any Kafka tool. Nobody else can join the group or commit
 * its offsets while the sink runs; `tributary sinks replay` (the HTTP
 * endpoint below) moves them. For each partition of a matching topic that this node leads
 * a task reads the local log from the committed offset, batches records
 * (max_records, max_bytes, linger), hands batches to the plugin on a worker
 * thread, and commits the offset after the last record only once the
 * plugin reported the batch durable (write, then flush when the plugin has
 * one). See host.c for the task state machine.
 *
 * On a cluster (env.peers) every collector runs the sinks; a partition is
 * delivered by its leader, and the group has no members: offsets are read
 * and committed (standalone) at the group's coordinator and dead letters
 * produced to their leader, as a Kafka client (sinks/remote.h) on the
 * sink's workers. With --sinks-only (env.remote) the same host reads by
 * Fetch from a cluster it is not part of.
 */
#ifndef COLLECTOR_SINKS_SINKS_H
#define COLLECTOR_SINKS_SINKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "tributary/config.h"
#include "tributary/error.h"

typedef struct coll_sink_conf_batch {
    uint64_t max_records;
    uint64_t max_bytes;
    int64_t linger;
} coll_sink_conf_batch_t;

typedef struct coll_sink_conf_retry {
    int64_t initial;
    int64_t max;
} coll_sink_conf_retry_t;

typedef struct coll_sink_conf {
    const char *name;
    const char *type;
    trib_config_strlist_t topics;
    coll_sink_conf_batch_t batch;
    coll_sink_conf_retry_t retry;
    const char *dead_letter_topic;
    uint64_t workers;
    trib_config_map_t options;
} coll_sink_conf_t;

/* The rows of one `sinks:` element (collector/conf.c embeds them). */
extern const trib_config_option_t coll_sink_conf_schema[];

/*
 * Validates what the schema cannot: unique names, topic patterns (/regex/
 * compiles), and each sink's `options` against its plugin's schema (the
 * plugin is loaded for that). Errors go to cfg with file:line:col.
 * Returns 0, TRIB_ECONFIG or -ENOMEM.
 */
int coll_sinks_check(trib_config_t *cfg, const coll_sink_conf_t *sinks, size_t n);

typedef struct coll_sinks coll_sinks_t;
struct coll_cluster;
struct coll_groups;
struct coll_partition;
struct coll_append_info;
struct trib_record_in;

/*
 * What the sink host uses of the broker it runs in (main.c wires it from
 * the server): the cluster metadata, the group coordinator its sinks are
 * members of, and the partition's one append path (server/partition.h)
 * for the dead-letter topics: writable() says whether this node may read
 * and write a partition now (it leads it), append() writes records as
 * its leader (coll_prt_led_here(), coll_prt_append_records()). The sinks
 * keep their partitions while the ZooKeeper session is away (their tasks
 * would be dropped and made again otherwise).
 */
typedef struct coll_sinks_env {
    struct coll_cluster *cluster;
    struct coll_groups *groups;
    bool (*writable)(const struct coll_cluster *cl, const struct coll_partition *p);
    int (*append)(struct coll_partition *p, const struct trib_record_in *recs, size_t n,
                  struct coll_append_info *info);
    /*
     * --sinks-only: the cluster the sinks read from and commit to when they
     * run outside any broker (sinks/remote.h); cluster, groups, writable and
     * append are then NULL. Every partition of a matching topic is
     * delivered by this process.
     */
    struct coll_sremote *remote;
    /*
     * On a cluster (the zookeeper backend): this broker's own Kafka address,
     * HOST:PORT, through which the sinks reach the cluster as a client for
     * what may live on another broker: their group's offsets (at its
     * coordinator, wherever it is) and their dead-letter topic (at its
     * partition's leader). NULL on a single node.
     */
    const char *peers;
} coll_sinks_env_t;

/*
 * Starts every sink: loads its plugin, applies its options (into cfg,
 * which must outlive the host), starts its workers and the task timer.
 * env is copied. The configuration must have passed coll_sinks_check().
 * Returns 0 or an error with err set; nothing is left running on error.
 */
int coll_sinks_start(uv_loop_t *loop, const coll_sinks_env_t *env, trib_config_t *cfg,
                     const coll_sink_conf_t *sinks, size_t n, coll_sinks_t **out,
                     trib_error_t *err);

/*
 * Stops taking new batches, waits for the ones in flight (their outcome is
 * committed if durable), closes the plugins and the handles, then calls cb
 * from the loop. The server must still be running until cb.
 */
void coll_sinks_stop(coll_sinks_t *h, void (*cb)(void *arg), void *arg);

/*
 * Appends the sinks' metrics in Prometheus text format (loop thread):
 * tributary_sink_records_delivered_total, _batches_retried_total,
 * _records_dead_lettered_total, _records_lost_to_retention_total (per
 * sink), tributary_sink_lag_records (per sink and partition) and the
 * plugins' own counters. NULL is fine (nothing).
 */
struct trib_buf;
void coll_sinks_render_metrics(coll_sinks_t *h, struct trib_buf *b);

/*
 * For /health (loop thread): appends "sink NAME: down (CLASS error): MSG"
 * for each sink that is down; true when none is. NULL is fine (true).
 */
bool coll_sinks_health(coll_sinks_t *h, struct trib_buf *b);

/*
 * SIGHUP: applies a new `sinks:` list, which must have passed
 * coll_sinks_check(). Sinks with new names start; sinks no longer listed
 * stop once their batches in flight are done (what is durable is
 * committed) and leave their groups; sinks whose configuration changed
 * stop that way, then start again with the new one. Unchanged sinks keep
 * running. Takes cfg (freed once no sink uses it). 0 or an error.
 */
int coll_sinks_reload(coll_sinks_t *h, trib_config_t *cfg, const coll_sink_conf_t *sinks, size_t n);

/*
 * The HTTP admin endpoint (on the metrics listener):
 *
 *   POST /sinks/NAME/replay?to=earliest|offset=N|time=MS[&topic=T][&partition=P]
 *
 * moves the sink's read position and committed offset of every matching
 * partition (each clamped into the log) while it runs; a partition with a
 * batch in flight moves once that batch is back (its outcome is dropped).
 * Accepted from a loopback peer only. Returns the HTTP status with a
 * text body, or 0 when the target is not the sinks' (target not /sinks/...).
 */
struct trib_buf;
int coll_sinks_http(coll_sinks_t *h, const char *method, const char *target, bool loopback,
                    struct trib_buf *body);

/* One sink's state for the console (loop thread; the strings live until the next turn). */
typedef struct coll_sink_status {
    const char *name, *type, *group, *dead_letter_topic; /* dead_letter_topic may be NULL */
    uint64_t delivered, dead_lettered, retried, lost_to_retention;
    bool up;
    const char *error_class; /* NULL while up */
    const char *last_error;  /* "" when it never failed */
    int64_t last_error_ms;   /* wall ms of the last failure, 0: none */
} coll_sink_status_t;

/* Calls fn for each running sink. NULL is fine (none). */
void coll_sinks_status(coll_sinks_t *h, void (*fn)(void *arg, const coll_sink_status_t *st),
                       void *arg);

/* Frees the host after the stop callback. NULL is fine. */
void coll_sinks_free(coll_sinks_t *h);

#endif
