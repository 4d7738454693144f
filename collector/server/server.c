/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The server's lifecycle: listeners, the ready file, the housekeeping
 * timer, the metrics exposition, and the graceful stop.
 *
 * One libuv loop runs everything: accepting, reading and decoding
 * requests, appending to the logs (the storage's thread pool does the
 * fsyncs), answering. Per-partition state is touched only from that loop,
 * so nothing here locks.
 *
 * Graceful stop (SIGTERM):
 *   1. the Kafka listener closes; every connection stops reading;
 *   2. parked fetches are answered with what they have;
 *   3. connections whose queue is empty close; the others (a produce
 *      waiting for its fsync) close once answered, or at the deadline;
 *   4. with every connection gone: producer state snapshots are written,
 *      the purgatory and housekeeping timers and the metrics endpoint
 *      close, and the stop callback runs. main.c then closes the storage.
 *
 * Listeners. collector.yaml's listeners[] (or the one plaintext listener
 * of listen/--listen) each bind a socket; a connection remembers its
 * listener, whose security decides TLS (conn.c, tls.c) and SASL
 * (sasl.c). Metadata, FindCoordinator and DescribeCluster give a client
 * the advertised address of the listener it came in on, as Kafka does.
 * The first listener's advertised address is the one the cluster
 * registers (other brokers and the ready file's `kafka` line).
 */
#include "server/server_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "server/console.h"
#include "server/partition.h"
#include "server/tls.h"
#include "tributary/fileio.h"
#include "tributary/version.h"

#define TICK_MS 1000

/* The group coordinator asks (coll_group_host_t). */
static bool server_stopping(void *arg)
{
    return ((const coll_server_t *)arg)->stopping;
}

/*
 * The coordinator's wait for the high watermark (coll_group_hwait_t) as
 * one of the replica layer's acks=all waiters, beside Produce's: answered
 * by the same high watermark moves, ISR checks and leadership changes
 * (replica.c).
 */
typedef struct group_hwait {
    coll_hwait_t hw;
    coll_group_hwait_t *gw;
} group_hwait_t;

static void group_hwait_done(coll_hwait_t *hw, int16_t error)
{
    group_hwait_t *b = hw->data;
    coll_group_hwait_t *gw = b->gw;
    gw->host = NULL;
    free(b);
    gw->done(gw, error);
}

static int group_hw_wait(coll_partition_t *p, coll_group_hwait_t *gw)
{
    coll_prt_t *prt = p ? coll_prt(p) : NULL;
    if (!prt || !coll_prt_replicated_leader(prt) || !p->log) {
        return TRIB_ESTATE;
    }
    group_hwait_t *b = calloc(1, sizeof(*b));
    if (!b) {
        return -ENOMEM;
    }
    b->gw = gw;
    b->hw.required = gw->required;
    b->hw.min_isr = gw->min_isr;
    b->hw.done = group_hwait_done;
    b->hw.data = b;
    gw->host = b;
    coll_replica_hwait(prt, &b->hw); /* may answer at once */
    return 0;
}

static void group_hw_cancel(coll_group_hwait_t *gw, int16_t error)
{
    group_hwait_t *b = gw->host;
    if (b) {
        coll_replica_hwait_cancel(&b->hw, error);
    }
}

int64_t coll_server_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void coll_server_config_init(coll_server_config_t *c)
{
    memset(c, 0, sizeof(*c));
    c->listen_host = "127.0.0.1";
    c->listen_port = 9092;
    c->metrics_enabled = true;
    c->metrics_host = "127.0.0.1";
    c->metrics_port = 9644;
    c->max_request_bytes = 100u << 20;
    c->queued_max_request_bytes = 256u << 20;
    c->request_timeout_ms = 30 * 1000;
    c->fetch_max_bytes = 55 << 20;
    c->max_inflight = 64;
    c->max_connections = 10000;
    c->idle_timeout_ms = 10 * 60 * 1000;
    c->producer_expiration_ms = 24LL * 3600 * 1000;
    c->producer_snapshot_interval_ms = 60 * 1000;
    c->shutdown_timeout_ms = 10 * 1000;
    c->fsync = COLL_FSYNC_ACK;
    c->backlog = 1024;
    c->replica_lag_time_max_ms = 30 * 1000;
    c->replica_fetch_max_bytes = 1 << 20;
    coll_group_config_init(&c->groups);
}

/* ---- partitions -------------------------------------------------------------------------- */

static void on_partition_added(void *arg, coll_partition_t *p)
{
    coll_prt_attach(arg, p);
}

static void on_partition_removing(void *arg, coll_partition_t *p)
{
    coll_server_t *s = arg;
    if (p->rt && s->fetchers) {
        coll_fetchers_unfollow(s->fetchers, p);
    }
    coll_groups_partition_changed(s->groups, p, true);
    coll_prt_detach(s, p, true);
}

/* The replica fetchers' host: what a follower's append and truncation change here. */
static void on_fetched(void *arg, coll_partition_t *p, const void *data, size_t len)
{
    coll_server_t *s = arg;
    coll_prt_t *prt = coll_prt(p);
    coll_prt_account(prt, data, len, false);
    coll_purgatory_notify(&s->purgatory, prt, len);
}

static void on_fetch_truncated(void *arg, coll_partition_t *p)
{
    (void)arg;
    coll_prt_truncated(coll_prt(p));
}

int coll_server_start_fetchers(coll_server_t *s)
{
    coll_fetch_host_t host = {
        .loop = s->loop,
        .cluster = s->cluster,
        .fsync_ack = s->cfg.fsync == COLL_FSYNC_ACK,
        .max_bytes = s->cfg.replica_fetch_max_bytes,
        .ctx = s,
        .appended = on_fetched,
        .truncated = on_fetch_truncated,
    };
    return coll_fetchers_new(&host, &s->fetchers);
}

/* The zookeeper backend applied a new partition state (replica/replica.h). */
static void on_metadata_ready(void *arg)
{
    coll_conn_metadata_ready((coll_server_t *)arg);
}

static void on_partition_changed(void *arg, coll_partition_t *p, int32_t prev_leader,
                                 int32_t prev_leader_epoch)
{
    coll_server_t *s = arg;
    if (!p->rt) {
        return;
    }
    coll_prt_t *prt = coll_prt(p);
    int32_t self = coll_cluster_node_id(s->cluster);
    if (p->leader == self) {
        if (s->fetchers) {
            coll_fetchers_unfollow(s->fetchers, p);
        }
        if (prev_leader != self || prev_leader_epoch != p->leader_epoch) {
            coll_replica_become_leader(prt);
        } else {
            coll_replica_isr_changed(prt);
        }
    } else {
        if (prev_leader == self || prev_leader_epoch != p->leader_epoch ||
            prev_leader != p->leader) {
            coll_replica_become_follower(prt);
        }
        if (!s->fetchers && !s->stopping && coll_server_start_fetchers(s) != 0) {
            TRIB_LOG(TRIB_LOG_ERROR, COLL_SERVER_FACILITY, "replica fetchers: out of memory");
        }
        if (s->fetchers) {
            coll_fetchers_follow(s->fetchers, p);
        }
    }
    /* A partition of __consumer_offsets: its groups load or unload with the leadership. */
    coll_groups_partition_changed(s->groups, p, false);
}

typedef void (*prt_fn)(coll_server_t *s, coll_partition_t *p, void *arg);

static void foreach_partition(coll_server_t *s, prt_fn fn, void *arg)
{
    size_t n = coll_cluster_topic_count(s->cluster);
    coll_topic_t **topics = malloc((n ? n : 1) * sizeof(*topics));
    if (!topics) {
        return;
    }
    coll_cluster_topics(s->cluster, topics);
    for (size_t i = 0; i < n; i++) {
        for (int32_t k = 0; k < topics[i]->npartitions; k++) {
            fn(s, topics[i]->partitions[k], arg);
        }
    }
    free(topics);
}

static void attach_one(coll_server_t *s, coll_partition_t *p, void *arg)
{
    (void)arg;
    coll_prt_attach(s, p);
}

static void detach_one(coll_server_t *s, coll_partition_t *p, void *arg)
{
    (void)arg;
    coll_prt_detach(s, p, false);
}

static void snapshot_one(coll_server_t *s, coll_partition_t *p, void *arg)
{
    (void)s;
    coll_prt_t *prt = coll_prt(p);
    if (prt) {
        coll_prt_snapshot(prt, *(bool *)arg);
    }
}

static void expire_one(coll_server_t *s, coll_partition_t *p, void *arg)
{
    coll_prt_t *prt = coll_prt(p);
    if (prt && coll_pstate_expire(&prt->producers, *(int64_t *)arg) > 0) {
        prt->snapshot_dirty = true;
    }
    (void)s;
}

/* ---- metrics --------------------------------------------------------------------------- */

typedef struct render_ctx {
    trib_buf_t *b;
    int pass;
} render_ctx_t;

static void render_storage(coll_server_t *s, trib_buf_t *b);

static void render_partition(coll_server_t *s, coll_partition_t *p, void *arg)
{
    (void)s;
    render_ctx_t *rc = arg;
    coll_prt_t *prt = coll_prt(p);
    if (!p->log || !prt) {
        return;
    }
    trib_buf_t lb;
    trib_buf_init(&lb);
    trib_buf_append(&lb, "topic=\"", 7);
    trib_prom_label_escape(&lb, p->topic->name, p->topic->name_len);
    char tail[48];
    int n = snprintf(tail, sizeof(tail), "\",partition=\"%d\"", (int)p->index);
    trib_buf_append(&lb, tail, (size_t)n);
    trib_buf_put_u8(&lb, 0);
    size_t len;
    const char *labels = (const char *)trib_buf_flatten(&lb, &len);
    if (labels) {
        switch (rc->pass) {
        case 0:
            trib_prom_sample_u64(rc->b, "tributary_partition_log_start_offset", labels,
                                 (uint64_t)coll_log_start_offset(p->log));
            break;
        case 1:
            trib_prom_sample_u64(rc->b, "tributary_partition_log_end_offset", labels,
                                 (uint64_t)coll_log_end_offset(p->log));
            break;
        case 2:
            trib_prom_sample_u64(rc->b, "tributary_partition_high_watermark", labels,
                                 (uint64_t)coll_log_high_watermark(p->log));
            break;
        case 3:
            trib_prom_sample_u64(rc->b, "tributary_partition_size_bytes", labels,
                                 coll_log_size(p->log));
            break;
        case 4:
            trib_prom_sample_u64(rc->b, "tributary_partition_segments", labels,
                                 coll_log_segment_count(p->log));
            break;
        case 5:
            trib_prom_sample_u64(rc->b, "tributary_partition_bytes_in_total", labels,
                                 prt->bytes_in);
            break;
        case 6:
            trib_prom_sample_u64(rc->b, "tributary_partition_records_in_total", labels,
                                 prt->records_in);
            break;
        case 7:
            trib_prom_sample_u64(rc->b, "tributary_partition_bytes_out_total", labels,
                                 prt->bytes_out);
            break;
        case 8:
            trib_prom_sample_u64(rc->b, "tributary_partition_records_out_total", labels,
                                 prt->records_out);
            break;
        default:
            trib_prom_sample_u64(rc->b, "tributary_partition_producers", labels,
                                 prt->producers.count);
            break;
        }
    }
    trib_buf_fini(&lb);
}

static void render_metrics(void *arg, trib_buf_t *b)
{
    coll_server_t *s = arg;
    const coll_metrics_t *m = &s->metrics;
    char labels[128];
    snprintf(labels, sizeof(labels), "version=\"%s\"", TRIB_VERSION);
    trib_prom_header(b, "tributary_build_info", "gauge", "The collector's version.");
    trib_prom_sample_u64(b, "tributary_build_info", labels, 1);
    trib_prom_header(b, "tributary_uptime_seconds", "gauge", "Seconds since the start.");
    trib_prom_sample(b, "tributary_uptime_seconds", NULL,
                     (double)(coll_server_wall_ms() - m->start_ms) / 1000.0);

    static const struct {
        const char *name, *help;
        size_t off;
    } counters[] = {
        {"tributary_bytes_in_total", "Record batch bytes appended by Produce.",
         offsetof(coll_metrics_t, bytes_in)},
        {"tributary_records_in_total", "Records appended by Produce (from batch headers).",
         offsetof(coll_metrics_t, records_in)},
        {"tributary_batches_in_total", "Record batches appended by Produce.",
         offsetof(coll_metrics_t, batches_in)},
        {"tributary_bytes_out_total", "Record batch bytes returned by Fetch.",
         offsetof(coll_metrics_t, bytes_out)},
        {"tributary_records_out_total",
         "Records returned by Fetch (from batch offsets: compacted logs count their gaps).",
         offsetof(coll_metrics_t, records_out)},
        {"tributary_network_received_bytes_total", "Bytes read from Kafka connections.",
         offsetof(coll_metrics_t, net_bytes_received)},
        {"tributary_network_sent_bytes_total", "Bytes written to Kafka connections.",
         offsetof(coll_metrics_t, net_bytes_sent)},
        {"tributary_fetch_send_waits_total",
         "Times a Fetch response, sent from the segment files, waited for a full socket.",
         offsetof(coll_metrics_t, fetch_send_waits)},
        {"tributary_connections_accepted_total", "Kafka connections accepted.",
         offsetof(coll_metrics_t, connections_accepted)},
        {"tributary_connections_rejected_total", "Connections refused (max_connections).",
         offsetof(coll_metrics_t, connections_rejected)},
        {"tributary_connections_idle_closed_total", "Connections closed after idle_timeout.",
         offsetof(coll_metrics_t, idle_closed)},
        {"tributary_requests_timed_out_total",
         "Connections closed because a request stopped arriving (request_timeout).",
         offsetof(coll_metrics_t, request_timeouts)},
        {"tributary_requests_rejected_total",
         "Connections closed for a frame or request that could not be served (logged).",
         offsetof(coll_metrics_t, frames_rejected)},
        {"tributary_produce_duplicates_total",
         "Idempotent retries answered with their original offsets.",
         offsetof(coll_metrics_t, duplicates)},
        {"tributary_produce_no_session_total",
         "Produce partitions refused (NOT_LEADER_OR_FOLLOWER) by a leader without its ZooKeeper "
         "session.",
         offsetof(coll_metrics_t, produce_no_session)},
        {"tributary_produce_behind_refused_total",
         "Idempotent batches refused with the retriable error of an earlier batch of their "
         "producer that the same connection refused, instead of OUT_OF_ORDER_SEQUENCE_NUMBER.",
         offsetof(coll_metrics_t, produce_behind_refused)},
        {"tributary_produce_gap_after_election_total",
         "Idempotent batches ahead of their producer's sequence within 30 s of this broker "
         "taking the partition's leadership, refused NOT_LEADER_OR_FOLLOWER (retried in order) "
         "instead of OUT_OF_ORDER_SEQUENCE_NUMBER.",
         offsetof(coll_metrics_t, produce_gap_after_election)},
        {"tributary_topics_auto_created_total", "Topics created by Metadata or Produce.",
         offsetof(coll_metrics_t, auto_created_topics)},
        {"tributary_tls_handshakes_total", "TLS handshakes completed on the Kafka listeners.",
         offsetof(coll_metrics_t, tls_handshakes)},
        {"tributary_tls_handshake_failures_total",
         "TLS handshakes that failed (protocol, cipher or certificate refused; logged).",
         offsetof(coll_metrics_t, tls_handshake_failures)},
        {"tributary_sasl_authentications_total", "SASL logins that succeeded.",
         offsetof(coll_metrics_t, sasl_auth_ok)},
        {"tributary_sasl_authentication_failures_total",
         "SASL logins that failed (unknown user, wrong password, bad message; logged, answered "
         "after failed_authentication_delay).",
         offsetof(coll_metrics_t, sasl_auth_failed)},
        {"tributary_unauthenticated_requests_total",
         "Connections closed for a request other than ApiVersions or SASL before authenticating.",
         offsetof(coll_metrics_t, unauthenticated_rejected)},
        {"tributary_authorization_failures_total",
         "Actions the ACLs refused (with the authorizer enabled): each topic, group or cluster "
         "check that failed.",
         offsetof(coll_metrics_t, authorization_failed)},
    };
    for (size_t i = 0; i < sizeof(counters) / sizeof(counters[0]); i++) {
        trib_prom_header(b, counters[i].name, "counter", counters[i].help);
        trib_prom_sample_u64(b, counters[i].name, NULL,
                             *(const uint64_t *)((const char *)m + counters[i].off));
    }
    trib_prom_header(b, "tributary_connections", "gauge", "Open Kafka connections.");
    trib_prom_sample_u64(b, "tributary_connections", NULL, s->nconns);
    trib_prom_header(b, "tributary_request_memory_bytes", "gauge",
                     "Request memory reserved by all connections (declared frame sizes).");
    trib_prom_sample_u64(b, "tributary_request_memory_bytes", NULL, s->mem_used);
    trib_prom_header(b, "tributary_request_memory_limit_bytes", "gauge",
                     "queued_max_request_bytes (0: no limit).");
    trib_prom_sample_u64(b, "tributary_request_memory_limit_bytes", NULL,
                         s->cfg.queued_max_request_bytes);
    trib_prom_header(b, "tributary_request_memory_waiting_connections", "gauge",
                     "Connections not reading until request memory is free.");
    trib_prom_sample_u64(b, "tributary_request_memory_waiting_connections", NULL, s->mem_waiting);
    trib_prom_header(b, "tributary_fetch_parked", "gauge", "Long-poll fetches waiting.");
    trib_prom_sample_u64(b, "tributary_fetch_parked", NULL, coll_purgatory_size(&s->purgatory));
    trib_prom_header(b, "tributary_produce_waiting", "gauge",
                     "acks=all produce requests waiting for an fsync.");
    trib_prom_sample_u64(b, "tributary_produce_waiting", NULL, s->produce_waiting);
    if (s->st) {
        coll_storage_stats_t ss;
        coll_storage_get_stats(s->st, &ss);
        trib_prom_header(b, "tributary_cleaner_unreadable_batches_total", "counter",
                         "Batches compaction could not read and kept as they are (each pass).");
        trib_prom_sample_u64(b, "tributary_cleaner_unreadable_batches_total", NULL,
                             ss.cleaner_unreadable_batches);
        trib_prom_header(b, "tributary_cleaner_failures_total", "counter",
                         "Compaction passes that failed (the log waits, the others go on).");
        trib_prom_sample_u64(b, "tributary_cleaner_failures_total", NULL, ss.cleaner_failures);
    }
    trib_prom_header(b, "tributary_topics", "gauge", "Topics.");
    trib_prom_sample_u64(b, "tributary_topics", NULL, coll_cluster_topic_count(s->cluster));
    trib_prom_header(b, "tributary_partitions", "gauge", "Partitions (all led by this node).");
    trib_prom_sample_u64(b, "tributary_partitions", NULL, coll_cluster_partition_count(s->cluster));
    if (s->groups) {
        static const char *const states[] = {"Empty", "PreparingRebalance", "CompletingRebalance",
                                             "Stable"};
        size_t ngroups[4], members, offsets;
        coll_groups_stats(s->groups, ngroups, &members, &offsets);
        trib_prom_header(b, "tributary_groups", "gauge", "Consumer groups by state.");
        for (int i = 0; i < 4; i++) {
            char gl_labels[64];
            snprintf(gl_labels, sizeof(gl_labels), "state=\"%s\"", states[i]);
            trib_prom_sample_u64(b, "tributary_groups", gl_labels, ngroups[i]);
        }
        trib_prom_header(b, "tributary_group_members", "gauge", "Members of those groups.");
        trib_prom_sample_u64(b, "tributary_group_members", NULL, members);
        trib_prom_header(b, "tributary_group_committed_offsets", "gauge",
                         "Committed offsets held by those groups.");
        trib_prom_sample_u64(b, "tributary_group_committed_offsets", NULL, offsets);
        coll_console_render_group_lag(s, b);
    }
    coll_metrics_render_requests(m, b);
    coll_fetchers_render_metrics(s->fetchers, b);

    static const struct {
        const char *name, *type, *help;
    } per[] = {
        {"tributary_partition_log_start_offset", "gauge", "First offset of the partition."},
        {"tributary_partition_log_end_offset", "gauge", "Offset of the next record appended."},
        {"tributary_partition_high_watermark", "gauge", "Offset consumers may read up to."},
        {"tributary_partition_size_bytes", "gauge", "Bytes in the partition's segments."},
        {"tributary_partition_segments", "gauge", "Segment files of the partition."},
        {"tributary_partition_bytes_in_total", "counter", "Record batch bytes appended."},
        {"tributary_partition_records_in_total", "counter", "Records appended."},
        {"tributary_partition_bytes_out_total", "counter", "Record batch bytes fetched."},
        {"tributary_partition_records_out_total", "counter", "Records fetched."},
        {"tributary_partition_producers", "gauge", "Idempotent producers remembered."},
    };
    for (int pass = 0; pass < (int)(sizeof(per) / sizeof(per[0])); pass++) {
        trib_prom_header(b, per[pass].name, per[pass].type, per[pass].help);
        render_ctx_t rc = {b, pass};
        foreach_partition(s, render_partition, &rc);
    }
    if (coll_cluster_replicated(s->cluster)) {
        coll_replica_metrics(s, b);
    }
    render_storage(s, b);
    if (s->metrics_hook) {
        s->metrics_hook(s->metrics_hook_arg, b);
    }
}

void coll_server_set_metrics_hook(coll_server_t *s, coll_server_metrics_fn fn, void *arg)
{
    s->metrics_hook = fn;
    s->metrics_hook_arg = arg;
}

void coll_server_set_http_admin(coll_server_t *s, trib_http_admin_cb fn, void *arg)
{
    if (s->http.open) {
        trib_http_set_admin(&s->http, fn, arg);
    }
}

typedef struct health_ctx {
    trib_buf_t *why;
    size_t n;
} health_ctx_t;

static void health_log(coll_log_t *log, void *arg)
{
    health_ctx_t *h = arg;
    int err = coll_log_write_error(log);
    if (!err) {
        return;
    }
    if (h->n++ < 10) {
        char line[512];
        int n = snprintf(line, sizeof(line), "storage: %s-%d: %s%s\n", coll_log_topic(log),
                         (int)coll_log_partition(log), trib_strerror(err),
                         err == -EROFS ? " (offline until a restart)" : "");
        trib_buf_append(h->why, line, n < (int)sizeof(line) ? (size_t)n : sizeof(line) - 1);
    }
}

/*
 * Unhealthy while stopping, and while any partition cannot be written: the
 * disk is full (until space returns) or the log went offline.
 */
static bool healthy(void *arg, trib_buf_t *why)
{
    coll_server_t *s = arg;
    if (s->stopping) {
        trib_buf_append(why, "stopping\n", 9);
        return false;
    }
    health_ctx_t h = {why, 0};
    if (s->st) {
        coll_storage_foreach(s->st, health_log, &h);
    }
    if (h.n > 10) {
        char line[64];
        int n = snprintf(line, sizeof(line), "storage: %zu more partitions\n", h.n - 10);
        trib_buf_append(why, line, (size_t)n);
    }
    return h.n == 0;
}

static void render_storage_error(coll_log_t *log, void *arg)
{
    trib_buf_t *b = arg;
    int err = coll_log_write_error(log);
    if (!err) {
        return;
    }
    trib_buf_t lb;
    trib_buf_init(&lb);
    const char *topic = coll_log_topic(log);
    trib_buf_append(&lb, "topic=\"", 7);
    trib_prom_label_escape(&lb, topic, strlen(topic));
    char tail[80];
    int n = snprintf(tail, sizeof(tail), "\",partition=\"%d\",reason=\"%s\"",
                     (int)coll_log_partition(log),
                     coll_storage_error_reason_name(coll_storage_error_reason(err)));
    trib_buf_append(&lb, tail, (size_t)n);
    trib_buf_put_u8(&lb, 0);
    size_t len;
    const char *labels = (const char *)trib_buf_flatten(&lb, &len);
    if (labels) {
        trib_prom_sample_u64(b, "tributary_storage_partition_error", labels, 1);
    }
    trib_buf_fini(&lb);
}

static void render_storage(coll_server_t *s, trib_buf_t *b)
{
    if (!s->st) {
        return;
    }
    coll_storage_stats_t ss;
    coll_storage_get_stats(s->st, &ss);
    trib_prom_header(b, "tributary_storage_append_errors_total", "counter",
                     "Appends the storage could not write (the producer got KAFKA_STORAGE_ERROR), "
                     "by reason.");
    for (int r = 0; r < COLL_WERR_N; r++) {
        char labels[48];
        snprintf(labels, sizeof(labels), "reason=\"%s\"", coll_storage_error_reason_name(r));
        trib_prom_sample_u64(b, "tributary_storage_append_errors_total", labels,
                             ss.append_errors[r]);
    }
    trib_prom_header(b, "tributary_storage_partition_error", "gauge",
                     "1 for each partition that cannot be written now (no_space: the disk is "
                     "full; io: offline after an I/O error).");
    coll_storage_foreach(s->st, render_storage_error, b);
}

static bool health_detail(void *arg, trib_buf_t *b)
{
    coll_server_t *s = arg;
    return !s->health_hook || s->health_hook(s->health_hook_arg, b);
}

void coll_server_set_health_hook(coll_server_t *s, coll_server_health_fn fn, void *arg)
{
    s->health_hook = fn;
    s->health_hook_arg = arg;
}

/* ---- housekeeping -------------------------------------------------------------------------- */

static void replica_tick_one(coll_server_t *s, coll_partition_t *p, void *arg)
{
    coll_replica_tick(s, p, *(const uint64_t *)arg);
}

static void tick_cb(uv_timer_t *t)
{
    coll_server_t *s = t->data;
    uint64_t now = uv_now(s->loop);
    if (s->stopping) {
        coll_server_check_stop(s);
        return;
    }
    if (s->cfg.idle_timeout_ms > 0) {
        for (coll_conn_t *c = s->conns; c; c = c->next) {
            /* A frame started and never finished counts as idle too (slowloris). */
            if (!c->closing && !c->head &&
                now - c->last_active_ms > (uint64_t)s->cfg.idle_timeout_ms) {
                s->metrics.idle_closed++;
                coll_conn_close(c, TRIB_LOG_DEBUG, "idle (idle_timeout)");
            }
        }
    }
    if (s->cfg.request_timeout_ms > 0) {
        for (coll_conn_t *c = s->conns; c; c = c->next) {
            /* A request that stopped arriving holds request memory: let it go. */
            if (!c->closing && c->reading && !c->paused &&
                now - c->last_active_ms > (uint64_t)s->cfg.request_timeout_ms) {
                s->metrics.request_timeouts++;
                TRIB_LOG_RL(&s->rl_reject, TRIB_LOG_WARN, COLL_SERVER_FACILITY,
                            "%s: closing the connection: a %zu-byte request stalled at %zu bytes "
                            "(request_timeout)",
                            c->peer, c->reading->frame_len, c->reading->frame_have);
                coll_conn_close(c, TRIB_LOG_DEBUG, "request stalled (request_timeout)");
            }
        }
    }
    if (coll_cluster_replicated(s->cluster)) {
        foreach_partition(s, replica_tick_one, &now);
    }
    if (s->cfg.producer_snapshot_interval_ms > 0 &&
        now - s->last_snapshot_ms >= (uint64_t)s->cfg.producer_snapshot_interval_ms) {
        s->last_snapshot_ms = now;
        int64_t cutoff = coll_server_wall_ms() - s->cfg.producer_expiration_ms;
        foreach_partition(s, expire_one, &cutoff);
        bool force = false;
        foreach_partition(s, snapshot_one, &force);
    }
}

/* ---- start ------------------------------------------------------------------------------- */

static int resolve(const char *host, int port, struct sockaddr_storage *ss)
{
    const char *ip = host && *host ? host : "0.0.0.0";
    if (uv_ip4_addr(ip, port, (struct sockaddr_in *)ss) == 0) {
        return 0;
    }
    if (uv_ip6_addr(ip, port, (struct sockaddr_in6 *)ss) == 0) {
        return 0;
    }
    /* A name: resolve it once, synchronously (startup). */
    uv_getaddrinfo_t req;
    struct addrinfo hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int rc = uv_getaddrinfo(uv_default_loop(), &req, NULL, ip, NULL, &hints);
    if (rc != 0) {
        return rc;
    }
    memcpy(ss, req.addrinfo->ai_addr, req.addrinfo->ai_addrlen);
    if (ss->ss_family == AF_INET6) {
        ((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
    } else {
        ((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
    }
    uv_freeaddrinfo(req.addrinfo);
    return 0;
}

static void on_connection(uv_stream_t *listener, int status)
{
    coll_listener_t *l = listener->data;
    coll_server_t *s = l->srv;
    if (status < 0) {
        TRIB_LOG_RL(&s->rl_conn, TRIB_LOG_WARN, COLL_SERVER_FACILITY, "accept: %s",
                    uv_strerror(status));
        return;
    }
    coll_conn_accept(s, l);
}

static bool is_wildcard(const char *h)
{
    return !h || !*h || strcmp(h, "0.0.0.0") == 0 || strcmp(h, "::") == 0;
}

static void format_addr(char *out, size_t n, const char *host, int port)
{
    if (strchr(host, ':')) {
        snprintf(out, n, "[%s]:%d", host, port);
    } else {
        snprintf(out, n, "%s:%d", host, port);
    }
}

static int write_ready_file(coll_server_t *s, trib_error_t *err)
{
    const char *path = s->cfg.ready_file;
    char *text = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&text, &len);
    if (!fp) {
        return trib_error_set(err, -ENOMEM, "out of memory");
    }
    fprintf(fp, "kafka %s\nmetrics %s\n", s->kafka_addr, s->metrics_addr);
    /* Named listeners, when configured (the single --listen listener keeps two lines). */
    for (size_t i = 0; i < s->nlisteners && s->cfg.nlisteners > 0; i++) {
        fprintf(fp, "listener %s %s\n", s->listeners[i]->cfg.name, s->listeners[i]->addr);
    }
    /* Read by whoever started the collector, as soon as it appears; no power-loss concern. */
    int rc = trib_write_memstream_atomic(path, fp, &text, &len, 0644, TRIB_WRITE_NOSYNC);
    if (rc) {
        rc = trib_error_set(err, rc, "%s: %s", path, trib_strerror(rc));
    }
    return rc;
}

static void handle_closed(uv_handle_t *h)
{
    coll_server_t *s = h->data;
    s->stop_handles--;
    coll_server_check_stop(s);
}

/* Binds one listener (its TLS context first) and adds it to s->listeners. */
static int listener_start(coll_server_t *s, const coll_listener_config_t *lc, trib_error_t *err)
{
    coll_listener_t *l = calloc(1, sizeof(*l));
    if (!l) {
        return trib_error_set(err, -ENOMEM, "out of memory");
    }
    l->srv = s;
    l->cfg = *lc;
    if (!l->cfg.name) {
        l->cfg.name = "plaintext";
    }
    if (coll_security_tls(lc->security) && !(l->ctx = coll_tls_ctx_new(lc, err))) {
        free(l);
        return err->code ? err->code : TRIB_ECONFIG;
    }
    struct sockaddr_storage ss;
    int rc = resolve(lc->host, lc->port, &ss);
    if (rc != 0) {
        SSL_CTX_free(l->ctx);
        free(l);
        return trib_error_set(err, rc, "listener %s: address '%s': %s",
                              lc->name ? lc->name : "plaintext", lc->host ? lc->host : "",
                              uv_strerror(rc));
    }
    uv_tcp_init(s->loop, &l->tcp);
    l->tcp.data = l;
    l->open = true;
    s->listeners[s->nlisteners++] = l;
    if ((rc = uv_tcp_bind(&l->tcp, (struct sockaddr *)&ss, 0)) != 0 ||
        (rc = uv_listen((uv_stream_t *)&l->tcp, s->cfg.backlog, on_connection)) != 0) {
        char a[300];
        format_addr(a, sizeof(a), is_wildcard(lc->host) ? "0.0.0.0" : lc->host, lc->port);
        return trib_error_set(err, rc, "listener %s: cannot listen on %s: %s", l->cfg.name, a,
                              uv_strerror(rc));
    }
    struct sockaddr_storage bound;
    int blen = sizeof(bound);
    uv_tcp_getsockname(&l->tcp, (struct sockaddr *)&bound, &blen);
    l->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                : ((struct sockaddr_in *)&bound)->sin_port);
    format_addr(l->addr, sizeof(l->addr),
                is_wildcard(lc->host) ? (lc->host && *lc->host ? lc->host : "0.0.0.0") : lc->host,
                l->port);
    if (lc->advertise_host && *lc->advertise_host) {
        snprintf(l->adv_host, sizeof(l->adv_host), "%s", lc->advertise_host);
    } else if (!is_wildcard(lc->host)) {
        snprintf(l->adv_host, sizeof(l->adv_host), "%s", lc->host);
    } else if (gethostname(l->adv_host, sizeof(l->adv_host) - 1) != 0) {
        snprintf(l->adv_host, sizeof(l->adv_host), "localhost");
    }
    l->adv_port = lc->advertise_port > 0 ? lc->advertise_port : l->port;
    return 0;
}

int coll_server_reload_tls(coll_server_t *s)
{
    int failed = 0;
    for (size_t i = 0; i < s->nlisteners; i++) {
        coll_listener_t *l = s->listeners[i];
        if (!coll_security_tls(l->cfg.security)) {
            continue;
        }
        trib_error_t err;
        trib_error_clear(&err);
        SSL_CTX *ctx = coll_tls_ctx_new(&l->cfg, &err);
        if (!ctx) {
            TRIB_LOG(TRIB_LOG_ERROR, COLL_SERVER_FACILITY,
                     "SIGHUP: %s; listener %s keeps its certificate", err.msg, l->cfg.name);
            failed++;
            continue;
        }
        SSL_CTX_free(l->ctx); /* connections hold their own reference */
        l->ctx = ctx;
        TRIB_LOG(TRIB_LOG_INFO, COLL_SERVER_FACILITY,
                 "SIGHUP: listener %s loaded %s again (new connections use it)", l->cfg.name,
                 l->cfg.tls_cert);
    }
    return failed;
}

/* ---- failed logins answered late ---- */

static void auth_timer_cb(uv_timer_t *t)
{
    coll_server_t *s = t->data;
    uint64_t now = uv_now(s->loop);
    while (s->auth_delayed && (s->auth_delayed->delay_due_ms <= now || s->stopping)) {
        coll_req_t *r = s->auth_delayed;
        s->auth_delayed = r->delay_next;
        if (!s->auth_delayed) {
            s->auth_delayed_tail = NULL;
        }
        r->delay_next = NULL;
        r->pending--;
        r->delay_fire(r);
    }
    if (s->auth_delayed && s->auth_timer_open) {
        uv_timer_start(&s->auth_timer, auth_timer_cb, s->auth_delayed->delay_due_ms - now, 0);
    }
}

void coll_req_delay(coll_req_t *r, void (*fire)(coll_req_t *r))
{
    coll_server_t *s = r->srv;
    if (s->stopping || !s->auth_timer_open) {
        fire(r);
        return;
    }
    r->delay_fire = fire;
    r->pending++;
    r->delay_due_ms = uv_now(s->loop) + (uint64_t)s->cfg.failed_auth_delay_ms;
    r->delay_next = NULL;
    if (s->auth_delayed_tail) {
        s->auth_delayed_tail->delay_next = r;
    } else {
        s->auth_delayed = r;
        uv_timer_start(&s->auth_timer, auth_timer_cb, (uint64_t)s->cfg.failed_auth_delay_ms, 0);
    }
    s->auth_delayed_tail = r;
}

int coll_server_start(uv_loop_t *loop, const coll_server_config_t *cfg, coll_cluster_t *cluster,
                      coll_storage_t *st, coll_server_t **out, trib_error_t *err)
{
    *out = NULL;
    coll_server_t *s = calloc(1, sizeof(*s));
    if (!s) {
        return trib_error_set(err, -ENOMEM, "out of memory");
    }
    s->loop = loop;
    s->cfg = *cfg;
    if (s->cfg.max_inflight < 1) {
        s->cfg.max_inflight = 1;
    }
    s->cluster = cluster;
    s->st = st;
    s->rl_reject = (trib_log_ratelimit_t)TRIB_LOG_RATELIMIT_INIT(10000, 20);
    s->rl_conn = (trib_log_ratelimit_t)TRIB_LOG_RATELIMIT_INIT(10000, 10);
    coll_metrics_init(&s->metrics);
    snprintf(s->metrics_addr, sizeof(s->metrics_addr), "off");
    *out = s;

    int rc = coll_purgatory_init(loop, &s->purgatory);
    if (rc) {
        /* Nothing is open yet: nothing to stop. */
        free(s);
        *out = NULL;
        return trib_error_set(err, rc, "timer: %s", uv_strerror(rc));
    }
    s->purgatory.timer.data = &s->purgatory;
    uv_timer_init(loop, &s->tick);
    s->tick.data = s;
    s->tick_open = true;

    /* Partition runtime state first: a client may ask as soon as the port is open. */
    coll_cluster_hooks_t hooks = {
        .partition_added = on_partition_added,
        .partition_removing = on_partition_removing,
        .partition_changed = on_partition_changed,
        .metadata_ready = on_metadata_ready,
        .arg = s,
    };
    coll_cluster_set_hooks(cluster, &hooks);
    foreach_partition(s, attach_one, NULL);

    /* The group coordinator: creates or reloads __consumer_offsets. */
    coll_group_host_t gh = {
        .loop = loop,
        .cluster = cluster,
        .arg = s,
        .stopping = server_stopping,
        .wall_ms = coll_server_wall_ms,
        .writable = coll_prt_writable,
        .led_here = coll_prt_led_here,
        .append = coll_prt_append_records,
        .hw_wait = group_hw_wait,
        .hw_cancel = group_hw_cancel,
    };
    if ((rc = coll_groups_new(&gh, &s->cfg.groups, &s->groups)) != 0) {
        return trib_error_set(err, rc, "group coordinator: cannot load %s: %s", COLL_OFFSETS_TOPIC,
                              trib_strerror(rc));
    }

    if (cfg->data_dir) {
        s->creds = coll_creds_new(cfg->data_dir);
        if (!s->creds) {
            return trib_error_set(err, -ENOMEM, "out of memory");
        }
        if ((rc = coll_creds_load(s->creds, err)) != 0) {
            return rc;
        }
    }
    s->acls = coll_acls_new(cfg->data_dir);
    if (!s->acls) {
        return trib_error_set(err, -ENOMEM, "out of memory");
    }
    if ((rc = coll_acls_load(s->acls, err)) != 0) {
        return rc;
    }
    if (s->cfg.authorizer) {
        TRIB_LOG(TRIB_LOG_INFO, COLL_SERVER_FACILITY,
                 "authorizer enabled: %zu ACLs, %zu super users; what no ACL allows is refused",
                 coll_acls_count(s->acls), s->cfg.nsuper_users);
        if (coll_cluster_replicated(s->cluster)) {
            TRIB_LOG(TRIB_LOG_WARN, COLL_SERVER_FACILITY,
                     "authorizer: each broker of a cluster keeps its own ACLs (data_dir/acls; "
                     "they are not in ZooKeeper): create them on every broker, and let the "
                     "brokers' own principal (User:ANONYMOUS on a plaintext listener) do "
                     "ClusterAction on the cluster or be a super user, or replication stops");
        }
    }
    if (s->cfg.failed_auth_delay_ms > 0) {
        uv_timer_init(loop, &s->auth_timer);
        s->auth_timer.data = s;
        s->auth_timer_open = true;
    }

    /* The listeners: the configured ones, or one plaintext listener from listen_host/port. */
    coll_listener_config_t single;
    const coll_listener_config_t *lc = cfg->listeners;
    size_t nl = cfg->nlisteners;
    if (nl == 0) {
        memset(&single, 0, sizeof(single));
        single.name = "plaintext";
        single.host = cfg->listen_host;
        single.port = cfg->listen_port;
        single.advertise_host = cfg->advertise_host;
        single.advertise_port = cfg->advertise_port;
        lc = &single;
        nl = 1;
    }
    s->listeners = calloc(nl, sizeof(*s->listeners));
    if (!s->listeners) {
        return trib_error_set(err, -ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < nl; i++) {
        if ((rc = listener_start(s, &lc[i], err)) != 0) {
            return rc;
        }
    }
    coll_listener_t *first = s->listeners[0];
    snprintf(s->kafka_addr, sizeof(s->kafka_addr), "%s", first->addr);
    s->kafka_port = first->port;
    snprintf(s->advertised_host, sizeof(s->advertised_host), "%s", first->adv_host);
    coll_cluster_set_endpoint(cluster, first->adv_host, first->adv_port);

    if (cfg->metrics_enabled) {
        rc = trib_http_start(&s->http, loop, cfg->metrics_host, cfg->metrics_port, cfg->backlog,
                             render_metrics, healthy, s);
        if (rc) {
            char a[300];
            format_addr(a, sizeof(a), cfg->metrics_host ? cfg->metrics_host : "0.0.0.0",
                        cfg->metrics_port);
            return trib_error_set(err, rc, "cannot serve metrics on %s: %s", a, uv_strerror(rc));
        }
        s->metrics_port = s->http.port;
        trib_http_set_detail(&s->http, health_detail);
        if ((rc = coll_console_start(s)) != 0) {
            return trib_error_set(err, rc, "console: %s", trib_strerror(rc));
        }
        format_addr(s->metrics_addr, sizeof(s->metrics_addr),
                    cfg->metrics_host && *cfg->metrics_host ? cfg->metrics_host : "0.0.0.0",
                    s->metrics_port);
    }
    s->last_snapshot_ms = uv_now(loop);
    uv_timer_start(&s->tick, tick_cb, TICK_MS, TICK_MS);
    uv_unref((uv_handle_t *)&s->tick);

    static const char *const sec_names[] = {"plaintext", "ssl", "sasl_plaintext", "sasl_ssl"};
    for (size_t i = 0; i < s->nlisteners && cfg->nlisteners > 0; i++) {
        coll_listener_t *l = s->listeners[i];
        TRIB_LOG(TRIB_LOG_INFO, COLL_SERVER_FACILITY,
                 "listener %s: %s on %s (advertised as %s:%d)%s", l->cfg.name,
                 sec_names[l->cfg.security], l->addr, l->adv_host, l->adv_port,
                 coll_security_sasl(l->cfg.security) && (!s->creds || !coll_creds_count(s->creds))
                     ? "; no SASL users yet (tributary-collector --add-user)"
                     : "");
    }
    TRIB_LOG(TRIB_LOG_INFO, COLL_SERVER_FACILITY,
             "listening on %s (advertised as %s:%d), metrics %s", s->kafka_addr,
             coll_cluster_config(cluster)->host, (int)coll_cluster_config(cluster)->port,
             s->metrics_addr);
    if (cfg->ready_file && (rc = write_ready_file(s, err)) != 0) {
        return rc;
    }
    return 0;
}

/* ---- stop ---------------------------------------------------------------------------------- */

static void http_stopped(trib_http_t *h)
{
    coll_server_t *s = (coll_server_t *)((char *)h - offsetof(coll_server_t, http));
    s->stop_handles--;
    coll_server_check_stop(s);
}

static void close_handle(coll_server_t *s, uv_handle_t *h)
{
    h->data = s;
    s->stop_handles++;
    uv_close(h, handle_closed);
}

/* A listener's handle is closed: the listener itself is freed with the server. */
static void listener_handle_closed(uv_handle_t *h)
{
    coll_listener_t *l = h->data;
    coll_server_t *s = l->srv;
    s->stop_handles--;
    coll_server_check_stop(s);
}

void coll_server_check_stop(coll_server_t *s)
{
    if (!s->stopping) {
        return;
    }
    if (s->stop_phase == 1) {
        bool late = uv_now(s->loop) >= s->stop_deadline_ms;
        for (coll_conn_t *c = s->conns; c; c = c->next) {
            if (!c->closing && (!c->head || late)) {
                coll_conn_close(c, late ? TRIB_LOG_WARN : TRIB_LOG_DEBUG,
                                late ? "shutdown deadline reached" : "shutting down");
            }
        }
        if (s->conns) {
            return;
        }
        /* Every connection is gone: no more appends. Snapshot, then close our handles. */
        s->stop_phase = 2;
        bool force = true;
        foreach_partition(s, snapshot_one, &force);
        coll_purgatory_wake_all(&s->purgatory);
        s->purgatory.closing = true;
        uv_timer_stop(&s->purgatory.timer);
        close_handle(s, (uv_handle_t *)&s->purgatory.timer);
        if (s->tick_open) {
            s->tick_open = false;
            close_handle(s, (uv_handle_t *)&s->tick);
        }
        if (s->groups) {
            close_handle(s, coll_groups_timer(s->groups));
        }
        if (s->console) {
            close_handle(s, coll_console_timer(s->console));
        }
        if (s->auth_timer_open) {
            s->auth_timer_open = false;
            uv_timer_stop(&s->auth_timer);
            close_handle(s, (uv_handle_t *)&s->auth_timer);
        }
        s->stop_handles++;
        trib_http_stop(&s->http, http_stopped);
        return;
    }
    if (s->stop_phase == 2 && s->stop_handles == 0) {
        s->stop_phase = 3;
        TRIB_LOG(TRIB_LOG_INFO, COLL_SERVER_FACILITY, "server stopped");
        if (s->stop_cb) {
            s->stop_cb(s->stop_arg);
        }
    }
}

void coll_server_stop(coll_server_t *s, void (*cb)(void *arg), void *arg)
{
    if (s->stopping) {
        return;
    }
    s->stopping = true;
    s->stop_phase = 1;
    s->stop_cb = cb;
    s->stop_arg = arg;
    s->stop_deadline_ms = uv_now(s->loop) + (uint64_t)s->cfg.shutdown_timeout_ms;
    TRIB_LOG(TRIB_LOG_INFO, COLL_SERVER_FACILITY, "stopping: %zu connections", s->nconns);
    for (size_t i = 0; i < s->nlisteners; i++) {
        coll_listener_t *l = s->listeners[i];
        if (l->open) {
            l->open = false;
            s->stop_handles++;
            uv_close((uv_handle_t *)&l->tcp, listener_handle_closed);
        }
    }
    if (s->auth_timer_open) {
        auth_timer_cb(&s->auth_timer); /* failed logins are answered now */
    }
    for (coll_conn_t *c = s->conns; c; c = c->next) {
        coll_conn_stop_reading(c);
    }
    coll_purgatory_wake_all(&s->purgatory);
    coll_fetchers_close(s->fetchers); /* no more appends from leaders */
    coll_groups_stop(s->groups);
    if (s->tick_open) {
        uv_ref((uv_handle_t *)&s->tick);
    }
    coll_server_check_stop(s);
}

void coll_server_free(coll_server_t *s)
{
    if (!s) {
        return;
    }
    coll_groups_free(s->groups);
    s->groups = NULL;
    coll_console_free(s->console);
    s->console = NULL;
    coll_fetchers_free(s->fetchers);
    s->fetchers = NULL;
    foreach_partition(s, detach_one, NULL);
    coll_cluster_hooks_t none = {0};
    coll_cluster_set_hooks(s->cluster, &none);
    coll_frame_pool_drain(s);
    coll_tls_chunks_drain(s);
    for (size_t i = 0; i < s->nlisteners; i++) {
        SSL_CTX_free(s->listeners[i]->ctx);
        free(s->listeners[i]);
    }
    free(s->listeners);
    free(s->tls_cbuf);
    coll_creds_free(s->creds);
    coll_acls_free(s->acls);
    free(s->purgatory.heap);
    free(s);
}

coll_cluster_t *coll_server_cluster(const coll_server_t *s)
{
    return s->cluster;
}

coll_groups_t *coll_server_groups(const coll_server_t *s)
{
    return s->groups;
}

const char *coll_server_kafka_address(const coll_server_t *s)
{
    return s->kafka_addr;
}

const char *coll_server_metrics_address(const coll_server_t *s)
{
    return s->metrics_addr;
}

int coll_server_kafka_port(const coll_server_t *s)
{
    return s->kafka_port;
}

int coll_server_metrics_port(const coll_server_t *s)
{
    return s->metrics_port;
}
