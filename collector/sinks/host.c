/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The sink host (see sinks.h for the configuration).
 *
 * Threads. Everything but the plugin callbacks runs on the collector's
 * loop thread: reading the partition logs, batching, committing offsets,
 * dead-letter appends. Plugin write/flush calls block (a database round
 * trip), so each sink has `workers` threads taking jobs from a queue; a
 * finished job goes back to the loop through a uv_async_t. A task has at
 * most one job in flight, so a plugin instance (one per task) is used by
 * one thread at a time, as the ABI promises.
 *
 * A task (one per sink x partition) cycles through:
 *
 *   fill     read the log from read_offset up to the high watermark into
 *            the pending batch until max_records / max_bytes, or until
 *            linger has passed since its first record
 *   write    the batch's pending ranges, one job each, in offset order:
 *            OK      the range is durable (after flush, if the plugin has
 *                    one); next range
 *            RETRY   the same range again after backoff: initial * 2^n,
 *                    capped at max, with jitter (between half and all of
 *                    it), forever
 *            REJECT  the range is split: around failed_index when the
 *                    plugin named the record, else in halves, down to one
 *                    record, which goes to the dead-letter topic with the
 *                    error, sink and origin in headers. Without a
 *                    dead-letter topic the record is retried (at max
 *                    backoff) rather than dropped: a sink never loses a
 *                    record silently.
 *   commit   once every range is done (and dead-letter appends are
 *            durable): the offset after the batch is committed to group
 *            sink.<name> as the sink's member, then the batch is released
 *            and the task fills again.
 *
 * Delivery is at-least-once: a crash between the plugin's OK and the
 * commit delivers the batch again, which is why plugins write idempotently
 * keyed by (topic, partition, offset).
 *
 * Membership. The sink is the member sink-<name>-<node id> of its group
 * from start to stop, an internal member of the coordinator (group/group.h:
 * no connection, no heartbeats; see coordinator.c, "Internal members", for
 * why not a JoinGroup over loopback). Its subscription is the topics it has
 * tasks for and its assignment the tasks' partitions, both re-sent when the
 * tasks change (sink_membership). Offsets go through
 * coll_group_internal_commit_check / coll_group_commit / coll_group_offset,
 * behind offsets_fetch() and offsets_commit() below. Since the group has a
 * member, nobody else can join it or commit its offsets; a replay
 * (coll_sinks_http) is the way to move them: each matching task, once it has
 * no job in flight, drops its uncommitted batch, commits the new offset and
 * reads on from there (task_replay).
 *
 * Reload (coll_sinks_reload): a sink removed or changed by SIGHUP is marked
 * stopping; it takes no new batch, and once none of its tasks has a job in
 * flight the tick retires it (workers joined, instances closed, group left,
 * handle closed); a changed sink's successor starts after that, so two
 * instances never deliver the same partitions at once. A partition with no new
 * records has its offset committed again every hour: a group without
 * members loses its offsets offsets.retention.minutes after its last
 * commit, and a forgotten offset means delivering the whole log again.
 *
 * Clusters. On a cluster (env.peers) a partition is delivered by the
 * collector that leads it: leadership is exclusive per epoch and moves when
 * a collector dies, stops or is drained, and a task whose partition is no
 * longer led here finishes its job and is dropped. The group's coordinator
 * and the dead-letter partition's leader may be other collectors, so the
 * committed offset a task starts from, its commits (standalone: the group
 * has no members on a cluster) and its dead letters are calls to the
 * cluster as a Kafka client (sinks/remote.h), made by the sink's workers as
 * jobs of the task (cluster_job). A commit of X by any collector means it
 * made every record from where it started (an offset somebody committed)
 * up to X durable, so a committed offset never passes an undelivered
 * record; moves only redeliver, and the plugins' keys absorb that.
 *
 * --sinks-only (env.remote): no broker at all; records come by Fetch from
 * each partition's leader (task_fill_remote), offsets and dead letters go
 * through the same client, called on the loop thread (it runs nothing
 * else in that mode).
 *
 * Partitions are discovered by a timer (every tick the topic list is
 * matched against each sink's names and /regex/ patterns), since the
 * cluster's partition hooks belong to the server; a task whose partition
 * disappeared is dropped once it is idle.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cluster/cluster.h"
#include "group/group.h"
#include "kafka/gen/ConsumerProtocolAssignment.h"
#include "kafka/gen/ConsumerProtocolSubscription.h"
#include "sinks/remote.h"
#include "sinks/sinks.h"
#include "storage/storage.h"
#include "tributary/arena.h"
#include "tributary/buf.h"
#include "tributary/kafka_error.h"
#include "tributary/log.h"
#include "tributary/prom.h"
#include "tributary/record.h"
#include "tributary/regex.h"
#include "tributary/sink.h"

#define FACILITY "sink"
#define TICK_MS 50
#define READ_CHUNK (1u << 20)
#define MAX_DECOMPRESSED (256u << 20)
#define MAX_COUNTERS 16
#define COMMIT_REFRESH_MS (3600u * 1000u)

/* ---- configuration ---------------------------------------------------------------------- */

static const trib_config_option_t batch_opts[] = {
    {TRIB_CONFIG_FIELD(coll_sink_conf_batch_t, max_records, UINT), .def = "5000", .min = "1",
     .max = "1000000", .desc = "records per batch at most"},
    {TRIB_CONFIG_FIELD(coll_sink_conf_batch_t, max_bytes, SIZE), .def = "4MiB", .min = "1KiB",
     .max = "1GiB", .desc = "key and value bytes per batch at most (one record may exceed it)"},
    {TRIB_CONFIG_FIELD(coll_sink_conf_batch_t, linger, DURATION), .def = "1s", .min = "0",
     .max = "1h", .desc = "how long a batch that is not full waits for more records"},
    TRIB_CONFIG_END,
};

static const trib_config_option_t retry_opts[] = {
    {TRIB_CONFIG_FIELD(coll_sink_conf_retry_t, initial, DURATION), .def = "100ms", .min = "1ms",
     .max = "1h", .desc = "first backoff after a transient failure"},
    {TRIB_CONFIG_FIELD(coll_sink_conf_retry_t, max, DURATION), .def = "30s", .min = "1ms",
     .max = "1d", .desc = "backoff cap (doubling from initial, with jitter; retries never stop)"},
    TRIB_CONFIG_END,
};

const trib_config_option_t coll_sink_conf_schema[] = {
    {TRIB_CONFIG_FIELD(coll_sink_conf_t, name, STRING), .flags = TRIB_CONFIG_REQUIRED, .min = "1",
     .max = "200", .desc = "the sink's name; its consumer group is sink.<name>"},
    {TRIB_CONFIG_FIELD(coll_sink_conf_t, type, STRING), .flags = TRIB_CONFIG_REQUIRED, .min = "1",
     .max = "64", .desc = "the plugin: <type>.so in the sink plugin directory"},
    {TRIB_CONFIG_FIELD(coll_sink_conf_t, topics, STRLIST), .flags = TRIB_CONFIG_REQUIRED,
     .min = "1", .desc = "topic names, and /regex/ patterns"},
    {TRIB_CONFIG_SECTION(coll_sink_conf_t, batch, batch_opts)},
    {TRIB_CONFIG_SECTION(coll_sink_conf_t, retry, retry_opts)},
    {TRIB_CONFIG_FIELD(coll_sink_conf_t, dead_letter_topic, STRING),
     .desc = "where records the target rejects for good go (none: they are retried)"},
    {TRIB_CONFIG_FIELD(coll_sink_conf_t, workers, UINT), .def = "4", .min = "1", .max = "64",
     .desc = "threads calling the plugin (one batch per partition at a time)"},
    {TRIB_CONFIG_FIELD(coll_sink_conf_t, options, MAP), .desc = "the plugin's own options"},
    TRIB_CONFIG_END,
};

static bool is_regex(const char *p)
{
    size_t n = strlen(p);
    return n >= 2 && p[0] == '/' && p[n - 1] == '/';
}

/* Compiles "/re/" (without the slashes); NULL and msg on error. */
static pcre2_code *compile_re(const char *p, char *msg, size_t msglen)
{
    char m[256];
    size_t off;
    pcre2_code *re = trib_regex_compile(p + 1, strlen(p) - 2, NULL, m, sizeof(m), &off);
    if (!re) {
        snprintf(msg, msglen, "bad topic pattern %s at offset %zu: %s", p, off, m);
    }
    return re;
}

/*
 * A check made after loading, reported like the loader's own errors at the
 * position of the value it is about (file:line:col).
 */
static void sink_error(trib_config_t *cfg, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void sink_error(trib_config_t *cfg, const char *path, const char *fmt, ...)
{
    char msg[480];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    int line = 0, col = 0;
    (void)trib_config_position(cfg, path, &line, &col);
    trib_config_add_error(cfg, line, col, "%s", msg);
}

/* The plugin's own offline check (TRIB_SINK_HAS(d, check)), placed at the option it names. */
static int plugin_check(trib_config_t *cfg, const trib_sink_plugin_t *pl, const coll_sink_conf_t *s,
                        size_t i, const void *opts)
{
    const trib_sink_descriptor_t *d = trib_sink_plugin_descriptor(pl);
    if (!TRIB_SINK_HAS(d, check)) {
        return 0;
    }
    trib_error_t err;
    trib_error_clear(&err);
    if (d->check(opts, &err) == 0) {
        return 0;
    }
    int line = s->options.line, col = s->options.col;
    size_t klen = strcspn(err.msg, ":");
    for (size_t k = 0; k < s->options.count; k++) {
        const trib_config_pair_t *pr = &s->options.items[k];
        if (strlen(pr->key) == klen && strncmp(pr->key, err.msg, klen) == 0) {
            line = pr->line;
            col = pr->col;
        }
    }
    trib_config_add_error(cfg, line, col, "sinks[%zu].options.%s", i, err.msg);
    return TRIB_ECONFIG;
}

int coll_sinks_check(trib_config_t *cfg, const coll_sink_conf_t *sinks, size_t n)
{
    int rc = 0;
    char path[96];
    for (size_t i = 0; i < n; i++) {
        const coll_sink_conf_t *s = &sinks[i];
        if (!s->name || !s->type) {
            continue; /* the loader reported it */
        }
        for (size_t j = 0; j < i; j++) {
            if (sinks[j].name && strcmp(sinks[j].name, s->name) == 0) {
                snprintf(path, sizeof(path), "sinks[%zu].name", i);
                sink_error(cfg, path, "the name '%s' of sinks[%zu] is also sinks[%zu]'s", s->name,
                           i, j);
                rc = TRIB_ECONFIG;
            }
        }
        for (size_t t = 0; t < s->topics.count; t++) {
            const char *p = s->topics.items[t];
            snprintf(path, sizeof(path), "sinks[%zu].topics[%zu]", i, t);
            if (is_regex(p)) {
                char msg[400];
                pcre2_code *re = compile_re(p, msg, sizeof(msg));
                if (!re) {
                    sink_error(cfg, path, "%s in %s", msg, path);
                    rc = TRIB_ECONFIG;
                }
                pcre2_code_free(re);
            } else if (!coll_topic_name_valid(p, strlen(p))) {
                sink_error(cfg, path,
                           "'%s' in %s is not a topic name (write /regex/ for a pattern)", p, path);
                rc = TRIB_ECONFIG;
            }
        }
        if (s->dead_letter_topic &&
            !coll_topic_name_valid(s->dead_letter_topic, strlen(s->dead_letter_topic))) {
            snprintf(path, sizeof(path), "sinks[%zu].dead_letter_topic", i);
            sink_error(cfg, path, "'%s' in %s is not a topic name", s->dead_letter_topic, path);
            rc = TRIB_ECONFIG;
        }
        if (s->retry.initial > s->retry.max) {
            snprintf(path, sizeof(path), "sinks[%zu].retry.initial", i);
            sink_error(cfg, path, "sinks[%zu].retry: initial is above max", i);
            rc = TRIB_ECONFIG;
        }
        trib_sink_plugin_t *pl = NULL;
        trib_error_t err;
        trib_error_clear(&err);
        int lrc = trib_sink_plugin_load(s->type, NULL, &pl, &err);
        if (lrc != 0) {
            snprintf(path, sizeof(path), "sinks[%zu].type", i);
            sink_error(cfg, path, "%s (sinks[%zu].type)", err.msg, i);
            rc = TRIB_ECONFIG;
            continue;
        }
        char where[64];
        snprintf(where, sizeof(where), "sinks[%zu].options", i);
        void *opts = NULL;
        int arc = trib_sink_options_apply(pl, cfg, &s->options, where, &opts);
        if (arc == 0) {
            arc = plugin_check(cfg, pl, s, i, opts);
        }
        free(opts);
        trib_sink_plugin_free(pl);
        if (arc == -ENOMEM) {
            return -ENOMEM;
        }
        if (arc != 0 && rc == 0) {
            rc = arc;
        }
    }
    return rc;
}

/* ---- runtime structures ------------------------------------------------------------------ */

typedef struct sink sink_t;
typedef struct task task_t;

/* What a worker does for a task: the plugin's write, or a call to the cluster (clustered). */
typedef enum job_kind { JOB_WRITE, JOB_OFFSET, JOB_COMMIT, JOB_DLQ } job_kind_t;

struct trib_sink_ctx {
    sink_t *sink;
};

typedef struct range {
    size_t a, b; /* records [a, b) of the pending batch */
} range_t;

/* The records being delivered: views into read chunks (or the arena, decompressed). */
typedef struct pbatch {
    trib_sink_record_t *recs;
    size_t n, cap;
    size_t bytes;
    uint8_t **chunks;
    size_t nchunks, chunks_cap;
    trib_arena_t arena;
    int64_t end_offset;  /* the offset to commit once delivered */
    uint64_t started_ms; /* when the first record came in */
} pbatch_t;

struct task {
    task_t *next;  /* in the sink's list */
    task_t *qnext; /* in the job or done queue */
    sink_t *sink;
    char *topic;
    int32_t partition;
    void *inst;
    bool opened;
    int64_t read_offset;
    int64_t committed;
    pbatch_t b;
    range_t *ranges;
    size_t nranges, rhead, ranges_cap;
    /* the job in flight */
    bool busy;
    range_t job;
    trib_sink_result_t res;
    trib_sink_status_t status;
    /* retries */
    uint32_t attempt;
    uint64_t retry_at_ms;
    uint64_t retry_started_ms;
    /* dead-letter appends of this batch, waiting to be durable */
    int64_t dlq_offset; /* -1: none */
    int32_t dlq_partition;
    bool dlq_waiting;
    coll_durable_req_t dreq;
    bool gone;             /* the partition disappeared: free when idle */
    bool delivered;        /* every range done: only the commit is left */
    uint64_t committed_ms; /* when the offset was last committed (refreshed hourly) */
    int64_t replay_to;     /* a replay waiting for the task to be idle; -1: none */
    int64_t remote_hw;     /* --sinks-only: the high watermark of the last fetch (-1: none) */
    /* clustered: a call to the cluster as the job, and its outcome */
    job_kind_t kind;
    bool loading;       /* the committed offset is not read yet */
    int64_t job_offset; /* JOB_COMMIT: the offset; JOB_OFFSET: the answer */
    bool job_batch;     /* JOB_COMMIT: the batch's commit (else a refresh) */
    size_t job_bad;     /* JOB_DLQ: the record */
    range_t job_range;  /* JOB_DLQ: the range it was rejected in */
    int16_t job_code;   /* the Kafka error code of the call */
};

typedef struct counter {
    char name[48];
    uint64_t value;
} counter_t;

/*
 * A loaded configuration that sinks point into; freed with the last sink
 * that uses it when the host owns it (one loaded by a reload).
 */
typedef struct cfgref {
    trib_config_t *cfg;
    bool owned;
    int refs;
} cfgref_t;

struct sink {
    sink_t *next;
    coll_sinks_t *host;
    const coll_sink_conf_t *conf;
    cfgref_t *ref;
    char group[256];
    char member_id[300];
    bool members_dirty; /* the tasks changed: tell the coordinator */
    /* retiring (a reload removed or changed it): no new batches; freed once idle */
    bool stopping;
    bool retire_closing;
    const coll_sink_conf_t *successor; /* started once this one is gone */
    cfgref_t *successor_ref;
    trib_sink_plugin_t *plugin;
    const trib_sink_descriptor_t *d;
    void *opts;
    pcre2_code **res;
    trib_sink_ctx_t ctx;
    task_t *tasks;
    /* workers */
    pthread_t *threads;
    size_t nthreads;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    task_t *queue, *queue_tail; /* jobs */
    task_t *done;               /* finished jobs, for the loop */
    bool quit;
    uv_async_t async;
    bool async_open;
    /* counters */
    pthread_mutex_t cmu;
    counter_t counters[MAX_COUNTERS];
    size_t ncounters;
    trib_log_ratelimit_t rl;
    /* health (loop thread): down from a failed write until one succeeds */
    bool down;
    trib_sink_error_class_t err_class;
    char err_msg[sizeof(((trib_sink_result_t *)0)->msg)];
    int64_t err_wall_ms; /* when the sink last failed (0: never) */
    /* clustered: the client the workers reach the cluster with (opened on first use) */
    pthread_mutex_t rcmu;
    coll_sremote_t *rc;
    trib_log_ratelimit_t
        rrl; /* the cluster calls' own (under rcmu, or the loop with --sinks-only) */
};

struct coll_sinks {
    uv_loop_t *loop;
    coll_sinks_env_t env; /* the broker it runs in */
    cfgref_t *base;       /* the configuration given at start (the caller's) */
    sink_t *sinks;
    uv_timer_t timer;
    bool timer_open;
    bool stopping;
    int closing; /* handles whose close callbacks are outstanding */
    void (*stop_cb)(void *arg);
    void *stop_arg;
    bool stopped;
    uint64_t last_discover;
    size_t seen_topics, seen_partitions; /* cluster counts at the last topic scan */
};

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* On a cluster: offsets and dead letters go through the cluster as a client (see cluster_job). */
static bool clustered(const coll_sinks_t *h)
{
    return h->env.peers && !h->env.remote;
}

/* ---- host services ------------------------------------------------------------------------ */

static void svc_log(trib_sink_ctx_t *ctx, int level, const char *fmt, ...)
{
    if (!TRIB_LOG_ENABLED(level)) {
        return;
    }
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    trib_log_write((trib_log_level_t)level, FACILITY, "[sink:%s] %s", ctx->sink->conf->name, msg);
}

static counter_t *counter_get(sink_t *s, const char *name)
{
    for (size_t i = 0; i < s->ncounters; i++) {
        if (strcmp(s->counters[i].name, name) == 0) {
            return &s->counters[i];
        }
    }
    if (s->ncounters == MAX_COUNTERS) {
        return NULL;
    }
    counter_t *c = &s->counters[s->ncounters++];
    snprintf(c->name, sizeof(c->name), "%s", name);
    c->value = 0;
    return c;
}

static void counter_add(sink_t *s, const char *name, uint64_t delta)
{
    pthread_mutex_lock(&s->cmu);
    counter_t *c = counter_get(s, name);
    if (c) {
        c->value += delta;
    }
    pthread_mutex_unlock(&s->cmu);
}

static void svc_counter_add(trib_sink_ctx_t *ctx, const char *name, uint64_t delta)
{
    counter_add(ctx->sink, name, delta);
}

static void svc_gauge_set(trib_sink_ctx_t *ctx, const char *name, double value)
{
    pthread_mutex_lock(&ctx->sink->cmu);
    counter_t *c = counter_get(ctx->sink, name);
    if (c) {
        c->value = value > 0 ? (uint64_t)value : 0;
    }
    pthread_mutex_unlock(&ctx->sink->cmu);
}

static const char *svc_sink_name(trib_sink_ctx_t *ctx)
{
    return ctx->sink->conf->name;
}

static const trib_sink_host_t host_services = {
    .abi_version = TRIB_SINK_ABI_VERSION,
    .struct_size = sizeof(trib_sink_host_t),
    .log = svc_log,
    .counter_add = svc_counter_add,
    .gauge_set = svc_gauge_set,
    .now_ms = mono_ms,
    .wall_ms = wall_ms,
    .sink_name = svc_sink_name,
};

/* ---- offsets (the group coordinator) ----------------------------------------------------- */

static trib_kstr_t kstr(const char *s)
{
    trib_kstr_t k = {s, s ? (int32_t)strlen(s) : -1};
    return k;
}

/* The committed offset of the task's partition, or -1; -2 when it cannot be known now. */
static int64_t offsets_fetch(task_t *t)
{
    coll_sremote_t *rm = t->sink->host->env.remote;
    if (rm) {
        int64_t off = -1;
        int16_t code = coll_sremote_committed(rm, t->sink->group, t->topic, t->partition, &off);
        return code == TRIB_KAFKA_NONE ? (off >= 0 ? off : -1) : -2;
    }
    coll_groups_t *g = t->sink->host->env.groups;
    if (!g) {
        return -1;
    }
    coll_group_t *grp = coll_groups_find(g, t->sink->group, strlen(t->sink->group));
    if (!grp) {
        return -1;
    }
    const coll_goffset_t *o = coll_group_offset(grp, t->topic, strlen(t->topic), t->partition);
    return o ? o->offset : -1;
}

/* A commit as the sink's member of its group. Returns a Kafka error code. */
static int16_t offsets_commit(task_t *t, int64_t offset)
{
    coll_sremote_t *rm = t->sink->host->env.remote;
    if (rm) {
        return coll_sremote_commit(rm, t->sink->group, t->topic, t->partition, offset);
    }
    coll_groups_t *g = t->sink->host->env.groups;
    if (!g) {
        return TRIB_KAFKA_COORDINATOR_NOT_AVAILABLE;
    }
    coll_group_t *grp = NULL;
    trib_kstr_t none = {NULL, -1};
    int16_t code = coll_group_internal_commit_check(g, t->sink->group, t->sink->member_id, &grp);
    if (code == TRIB_KAFKA_NONE) {
        code = coll_group_commit(g, grp, kstr(t->topic), t->partition, offset, -1, none);
    }
    return code;
}

/* ---- the sink's membership of its group -------------------------------------------------- */

static int task_cmp(const void *a, const void *b)
{
    const task_t *x = *(const task_t *const *)a, *y = *(const task_t *const *)b;
    int c = strcmp(x->topic, y->topic);
    return c ? c : (x->partition > y->partition) - (x->partition < y->partition);
}

/*
 * Tells the coordinator what the sink's member consumes: its subscription
 * (the topics it has tasks for) and its assignment (those tasks'
 * partitions), as ConsumerProtocolSubscription and
 * ConsumerProtocolAssignment version 0, which every Kafka tool decodes.
 */
static int sink_membership(sink_t *s)
{
    coll_groups_t *g = s->host->env.groups;
    if (!g || clustered(s->host)) {
        return 0; /* clustered: standalone commits, the group has no members */
    }
    size_t n = 0;
    for (task_t *t = s->tasks; t; t = t->next) {
        n++;
    }
    task_t **ts = malloc((n ? n : 1) * sizeof(*ts));
    trib_kstr_t *topics = malloc((n ? n : 1) * sizeof(*topics));
    ConsumerProtocolAssignment_TopicPartition *tps = malloc((n ? n : 1) * sizeof(*tps));
    int32_t *parts = malloc((n ? n : 1) * sizeof(*parts));
    trib_buf_t sb, ab;
    trib_buf_init(&sb);
    trib_buf_init(&ab);
    int rc = -ENOMEM;
    if (!ts || !topics || !tps || !parts) {
        goto out;
    }
    n = 0;
    for (task_t *t = s->tasks; t; t = t->next) {
        ts[n++] = t;
    }
    qsort(ts, n, sizeof(*ts), task_cmp);
    int32_t ntopics = 0;
    for (size_t i = 0; i < n; i++) {
        if (ntopics == 0 || strcmp(topics[ntopics - 1].ptr, ts[i]->topic) != 0) {
            topics[ntopics] = kstr(ts[i]->topic);
            ConsumerProtocolAssignment_TopicPartition_init(&tps[ntopics]);
            tps[ntopics].Topic = topics[ntopics];
            tps[ntopics].Partitions.items = &parts[i];
            tps[ntopics].Partitions.count = 0;
            ntopics++;
        }
        parts[i] = ts[i]->partition;
        tps[ntopics - 1].Partitions.count++;
    }
    ConsumerProtocolSubscription sub;
    ConsumerProtocolSubscription_init(&sub);
    sub.Topics.items = topics;
    sub.Topics.count = ntopics;
    ConsumerProtocolAssignment asg;
    ConsumerProtocolAssignment_init(&asg);
    asg.AssignedPartitions.items = tps;
    asg.AssignedPartitions.count = ntopics;
    trib_buf_put_i16(&sb, 0);
    trib_buf_put_i16(&ab, 0);
    if (ConsumerProtocolSubscription_encode(&sub, &sb, 0) != 0 ||
        ConsumerProtocolAssignment_encode(&asg, &ab, 0) != 0) {
        goto out;
    }
    size_t slen = 0, alen = 0;
    const uint8_t *sp = trib_buf_flatten(&sb, &slen);
    const uint8_t *ap = trib_buf_flatten(&ab, &alen);
    if (!sp || !ap) {
        goto out;
    }
    char host[256] = "/";
    if (gethostname(host + 1, sizeof(host) - 2) != 0) {
        snprintf(host, sizeof(host), "/localhost");
    }
    host[sizeof(host) - 1] = '\0';
    coll_ginternal_t in = {
        .member_id = s->member_id,
        .client_id = "tributary-sink",
        .client_host = host,
        .subscription = sp,
        .subscription_len = (int32_t)slen,
        .assignment = ap,
        .assignment_len = (int32_t)alen,
    };
    rc = coll_group_internal_set(g, s->group, &in);
out:
    trib_buf_fini(&sb);
    trib_buf_fini(&ab);
    free(ts);
    free(topics);
    free(tps);
    free(parts);
    return rc;
}

static void sink_leave(sink_t *s)
{
    coll_groups_t *g = s->host->env.groups;
    if (g && !clustered(s->host)) {
        coll_group_internal_leave(g, s->group, s->member_id);
    }
}

/* ---- the pending batch ------------------------------------------------------------------- */

static void pbatch_release(pbatch_t *b)
{
    for (size_t i = 0; i < b->nchunks; i++) {
        free(b->chunks[i]);
    }
    b->nchunks = 0;
    b->n = 0;
    b->bytes = 0;
    b->started_ms = 0;
    trib_arena_reset(&b->arena);
}

static void pbatch_fini(pbatch_t *b)
{
    pbatch_release(b);
    free(b->recs);
    free(b->chunks);
    trib_arena_fini(&b->arena);
    memset(b, 0, sizeof(*b));
}

static int pbatch_push(pbatch_t *b, const trib_record_t *r)
{
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 256;
        trib_sink_record_t *n = realloc(b->recs, cap * sizeof(*n));
        if (!n) {
            return -ENOMEM;
        }
        b->recs = n;
        b->cap = cap;
    }
    trib_sink_record_t *s = &b->recs[b->n++];
    s->offset = r->offset;
    s->timestamp = r->timestamp;
    s->key = r->key;
    s->value = r->value;
    s->header_count = r->header_count;
    s->headers = r->headers;
    s->headers_len = r->headers_len;
    b->bytes +=
        (size_t)(r->key.len > 0 ? r->key.len : 0) + (size_t)(r->value.len > 0 ? r->value.len : 0);
    return 0;
}

static int pbatch_chunk(pbatch_t *b, uint8_t *p)
{
    if (b->nchunks == b->chunks_cap) {
        size_t cap = b->chunks_cap ? b->chunks_cap * 2 : 8;
        uint8_t **n = realloc(b->chunks, cap * sizeof(*n));
        if (!n) {
            return -ENOMEM;
        }
        b->chunks = n;
        b->chunks_cap = cap;
    }
    b->chunks[b->nchunks++] = p;
    return 0;
}

/*
 * True when the sinks may read or append to p here: its log is open and,
 * on a cluster, this node leads it (a follower's copy is delivered, and
 * written, by the leader only; moving sink work between collectors is
 * the group failover's business).
 */
static bool partition_here(const coll_sinks_t *h, coll_partition_t *p)
{
    return h->env.writable(h->env.cluster, p);
}

/* --sinks-only: the topic of the last Metadata, or NULL. */
static const coll_sremote_topic_t *remote_topic(coll_sremote_t *rm, const char *name)
{
    size_t n = 0;
    const coll_sremote_topic_t *ts = coll_sremote_topics(rm, &n);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(ts[i].name, name) == 0) {
            return &ts[i];
        }
    }
    return NULL;
}

/* True while the task's partition exists (and, in a broker, this node leads it). */
static bool task_here(task_t *t);

static coll_log_t *task_log(task_t *t)
{
    if (t->sink->host->env.remote) {
        return NULL;
    }
    coll_cluster_t *cl = t->sink->host->env.cluster;
    coll_topic_t *tp = coll_cluster_topic(cl, t->topic, strlen(t->topic));
    coll_partition_t *p = tp ? coll_cluster_partition(tp, t->partition) : NULL;
    return partition_here(t->sink->host, p) ? p->log : NULL;
}

/*
 * Takes the records of one chunk of the log (whole batches, as read or
 * fetched) from read_offset on into the pending batch. True when it is full.
 */
static bool fill_chunk(task_t *t, const uint8_t *buf, size_t len, unsigned flags)
{
    sink_t *s = t->sink;
    const coll_sink_conf_batch_t *bc = &s->conf->batch;
    pbatch_t *b = &t->b;
    trib_batch_iter_t it;
    trib_batch_t bt;
    bool full = false;
    trib_batch_iter_init(&it, buf, len, flags);
    while (!full && trib_batch_iter_next(&it, &bt) == 1) {
        int64_t last = trib_batch_last_offset(&bt);
        if (last < t->read_offset) {
            continue;
        }
        if (trib_batch_is_control(&bt)) {
            t->read_offset = last + 1;
            if (b->n == 0) {
                b->end_offset = t->read_offset;
            }
            continue;
        }
        trib_record_iter_t ri;
        trib_record_t r;
        trib_record_iter_init(&ri, &bt, &b->arena, MAX_DECOMPRESSED);
        int irc;
        while ((irc = trib_record_iter_next(&ri, &r)) == 1) {
            if (r.offset < t->read_offset) {
                continue;
            }
            if (b->n >= bc->max_records || b->bytes >= bc->max_bytes) {
                full = true;
                break;
            }
            if (pbatch_push(b, &r) != 0) {
                full = true;
                break;
            }
            if (b->n == 1) {
                b->started_ms = mono_ms();
            }
            t->read_offset = r.offset + 1;
            b->end_offset = t->read_offset;
        }
        if (irc < 0) {
            /* A batch we cannot decode: skip it, loudly (it passed the CRC on append). */
            TRIB_LOG(
                TRIB_LOG_ERROR, FACILITY,
                "[sink:%s] %s-%d: cannot read the batch at offset %" PRId64 ": %s; skipping it",
                s->conf->name, t->topic, (int)t->partition, bt.base_offset, trib_strerror(irc));
            t->read_offset = last + 1;
        } else if (!full) {
            t->read_offset = last + 1;
        }
        trib_record_iter_fini(&ri);
        if (!full && b->n > 0) {
            b->end_offset = t->read_offset;
        }
    }
    return full;
}

/*
 * Reads records from read_offset into the pending batch until it is full
 * or the high watermark is reached. Returns true when the batch is full.
 */
static bool task_fill_remote(task_t *t);

static bool task_fill(task_t *t)
{
    sink_t *s = t->sink;
    const coll_sink_conf_batch_t *bc = &s->conf->batch;
    pbatch_t *b = &t->b;
    if (s->host->env.remote) {
        return task_fill_remote(t);
    }
    coll_log_t *log = task_log(t);
    if (!log) {
        t->gone = true;
        return false;
    }
    while (b->n < bc->max_records && b->bytes < bc->max_bytes) {
        int64_t hw = coll_log_high_watermark(log);
        int64_t start = coll_log_start_offset(log);
        if (t->read_offset < start) {
            TRIB_LOG(TRIB_LOG_WARN, FACILITY,
                     "[sink:%s] %s-%d: offsets %" PRId64 "..%" PRId64
                     " were deleted by retention before delivery",
                     s->conf->name, t->topic, (int)t->partition, t->read_offset, start - 1);
            counter_add(s, "records_lost_to_retention", (uint64_t)(start - t->read_offset));
            t->read_offset = start;
            if (b->n == 0) {
                b->end_offset = start;
            }
        }
        if (t->read_offset > coll_log_end_offset(log) && b->n == 0) {
            /* The committed offset is past the log's end: the topic was deleted and made
             * again, or an unclean shutdown lost the log's tail. Start over from the log
             * start, as a Kafka consumer with auto.offset.reset=earliest. */
            TRIB_LOG(TRIB_LOG_WARN, FACILITY,
                     "[sink:%s] %s-%d: offset %" PRId64 " is past the log end %" PRId64
                     "; delivering from the log start %" PRId64,
                     s->conf->name, t->topic, (int)t->partition, t->read_offset,
                     coll_log_end_offset(log), start);
            t->read_offset = start;
            b->end_offset = start;
            continue;
        }
        if (t->read_offset >= hw) {
            break;
        }
        coll_read_t rd;
        int rc = coll_log_read(log, t->read_offset, READ_CHUNK, hw, 0, &rd);
        if (rc != 0 || rd.len == 0) {
            coll_read_release(&rd);
            break;
        }
        uint8_t *buf = malloc(rd.len);
        ssize_t got = buf ? coll_read_copy(&rd, 0, buf, rd.len) : -ENOMEM;
        coll_read_release(&rd);
        if (got <= 0 || pbatch_chunk(b, buf) != 0) {
            free(buf);
            break;
        }
        bool full = fill_chunk(t, buf, (size_t)got, TRIB_BATCH_SKIP_CRC);
        if (full) {
            break;
        }
    }
    return b->n >= bc->max_records || b->bytes >= bc->max_bytes;
}

/*
 * task_fill() of --sinks-only: Fetch from the partition's leader instead of
 * reading the local log, with the same retention and past-the-end rules.
 * A failed fetch ends the fill (the next tick fetches again, from
 * refreshed metadata).
 */
static bool task_fill_remote(task_t *t)
{
    sink_t *s = t->sink;
    const coll_sink_conf_batch_t *bc = &s->conf->batch;
    pbatch_t *b = &t->b;
    coll_sremote_t *rm = s->host->env.remote;
    for (int round = 0; round < 64 && b->n < bc->max_records && b->bytes < bc->max_bytes; round++) {
        uint8_t *buf = NULL;
        size_t len = 0;
        int64_t hw = -1, start = -1;
        int16_t code =
            coll_sremote_fetch(rm, t->topic, t->partition, t->read_offset, &buf, &len, &hw, &start);
        if (code == TRIB_KAFKA_OFFSET_OUT_OF_RANGE && b->n == 0) {
            int64_t earliest = -1;
            if (coll_sremote_earliest(rm, t->topic, t->partition, &earliest) != TRIB_KAFKA_NONE ||
                earliest < 0) {
                break;
            }
            if (t->read_offset < earliest) {
                TRIB_LOG(TRIB_LOG_WARN, FACILITY,
                         "[sink:%s] %s-%d: offsets %" PRId64 "..%" PRId64
                         " were deleted by retention before delivery",
                         s->conf->name, t->topic, (int)t->partition, t->read_offset, earliest - 1);
                counter_add(s, "records_lost_to_retention", (uint64_t)(earliest - t->read_offset));
            } else {
                TRIB_LOG(TRIB_LOG_WARN, FACILITY,
                         "[sink:%s] %s-%d: offset %" PRId64
                         " is past the log end; delivering from the log start %" PRId64,
                         s->conf->name, t->topic, (int)t->partition, t->read_offset, earliest);
            }
            t->read_offset = earliest;
            b->end_offset = earliest;
            continue;
        }
        if (code != TRIB_KAFKA_NONE) {
            free(buf);
            TRIB_LOG_RL(&s->rl, TRIB_LOG_WARN, FACILITY,
                        "[sink:%s] %s-%d: fetching offset %" PRId64 " failed (Kafka error %d); "
                        "retrying",
                        s->conf->name, t->topic, (int)t->partition, t->read_offset, (int)code);
            break;
        }
        t->remote_hw = hw;
        if (!buf || len == 0) {
            free(buf);
            break;
        }
        if (pbatch_chunk(b, buf) != 0) {
            free(buf);
            break;
        }
        int64_t before = t->read_offset;
        bool full = fill_chunk(t, buf, len, 0);
        if (full || t->read_offset == before || t->read_offset >= hw) {
            break;
        }
    }
    return b->n >= bc->max_records || b->bytes >= bc->max_bytes;
}

/* ---- jobs ----------------------------------------------------------------------------------- */

/* ---- clustered: offsets and dead letters through the cluster ------------------------------ */

/*
 * On a cluster the group's coordinator and the dead-letter topic's leader
 * may be any broker, so the sinks reach them as a Kafka client (this
 * broker's own address first, then whatever Metadata names). The calls
 * block, so they run on the sink's workers as jobs (JOB_OFFSET, JOB_COMMIT,
 * JOB_DLQ), one client per sink shared under rcmu; the task is busy
 * meanwhile, as during a write.
 */

static int dlq_write(task_t *t, coll_sremote_t *rm, size_t i, const char *why);

/* A worker runs a cluster call for t; the outcome is t->job_code (and t->job_offset). */
static void cluster_job(sink_t *s, task_t *t)
{
    pthread_mutex_lock(&s->rcmu);
    int16_t code = TRIB_KAFKA_NETWORK_EXCEPTION;
    if (!s->rc) {
        trib_error_t err;
        trib_error_clear(&err);
        if (coll_sremote_open(s->host->env.peers, 10000, &s->rc, &err) != 0) {
            TRIB_LOG_RL(&s->rrl, TRIB_LOG_WARN, FACILITY, "[sink:%s] cannot reach the cluster: %s",
                        s->conf->name, err.msg);
        }
    }
    if (s->rc) {
        switch (t->kind) {
        case JOB_OFFSET:
            code = coll_sremote_committed(s->rc, s->group, t->topic, t->partition, &t->job_offset);
            break;
        case JOB_COMMIT:
            code = coll_sremote_commit(s->rc, s->group, t->topic, t->partition, t->job_offset);
            break;
        case JOB_DLQ:
            code = dlq_write(t, s->rc, t->job_bad, t->res.msg[0] ? t->res.msg : "rejected") == 0
                       ? TRIB_KAFKA_NONE
                       : TRIB_KAFKA_LEADER_NOT_AVAILABLE;
            break;
        case JOB_WRITE:
            break;
        }
    }
    pthread_mutex_unlock(&s->rcmu);
    t->job_code = code;
}

static void submit_kind(task_t *t, job_kind_t kind);

static void *worker_main(void *arg)
{
    sink_t *s = arg;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->queue && !s->quit) {
            pthread_cond_wait(&s->cond, &s->mu);
        }
        if (!s->queue) {
            break;
        }
        task_t *t = s->queue;
        s->queue = t->qnext;
        if (!s->queue) {
            s->queue_tail = NULL;
        }
        pthread_mutex_unlock(&s->mu);

        if (t->kind != JOB_WRITE) {
            cluster_job(s, t);
            pthread_mutex_lock(&s->mu);
            t->qnext = s->done;
            s->done = t;
            pthread_mutex_unlock(&s->mu);
            uv_async_send(&s->async);
            pthread_mutex_lock(&s->mu);
            continue;
        }
        trib_sink_batch_t batch = {
            .topic = t->topic,
            .partition = t->partition,
            .records = t->b.recs + t->job.a,
            .count = t->job.b - t->job.a,
        };
        for (size_t i = t->job.a; i < t->job.b; i++) {
            const trib_sink_record_t *r = &t->b.recs[i];
            batch.bytes += (size_t)(r->key.len > 0 ? r->key.len : 0) +
                           (size_t)(r->value.len > 0 ? r->value.len : 0);
        }
        memset(&t->res, 0, sizeof(t->res));
        t->res.failed_index = -1;
        trib_sink_status_t st = s->d->write(t->inst, &batch, &t->res);
        if (st == TRIB_SINK_OK && s->d->flush) {
            st = s->d->flush(t->inst, &t->res);
            if (st == TRIB_SINK_REJECT) {
                t->res.failed_index = -1;
            }
        }
        if (st != TRIB_SINK_REJECT ||
            (t->res.failed_index >= 0 && (size_t)t->res.failed_index >= batch.count)) {
            t->res.failed_index = -1;
        }
        t->status = st;

        pthread_mutex_lock(&s->mu);
        t->qnext = s->done;
        s->done = t;
        pthread_mutex_unlock(&s->mu);
        uv_async_send(&s->async);
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

static void submit(task_t *t, range_t r)
{
    sink_t *s = t->sink;
    t->busy = true;
    t->job = r;

    pthread_mutex_lock(&s->mu);
    t->qnext = NULL;
    if (s->queue_tail) {
        s->queue_tail->qnext = t;
    } else {
        s->queue = t;
    }
    s->queue_tail = t;
    pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&s->mu);
}

/* A cluster call as t's job (clustered); submit() itself queues plugin writes. */
static void submit_kind(task_t *t, job_kind_t kind)
{
    t->kind = kind;
    submit(t, t->job);
}

static int ranges_set(task_t *t, const range_t *rs, size_t n)
{
    /* Replaces the front range with rs[0..n). */
    size_t rest = t->nranges - t->rhead - 1;
    size_t need = n + rest;
    range_t *nr = malloc((need ? need : 1) * sizeof(*nr));
    if (!nr) {
        return -ENOMEM;
    }
    memcpy(nr, rs, n * sizeof(*nr));
    memcpy(nr + n, t->ranges + t->rhead + 1, rest * sizeof(*nr));
    free(t->ranges);
    t->ranges = nr;
    t->nranges = need;
    t->rhead = 0;
    t->ranges_cap = need;
    return 0;
}

static uint64_t backoff_ms(const coll_sink_conf_retry_t *rc, uint32_t attempt)
{
    uint64_t d = (uint64_t)rc->initial;
    for (uint32_t i = 1; i < attempt && d < (uint64_t)rc->max; i++) {
        d *= 2;
    }
    if (d > (uint64_t)rc->max) {
        d = (uint64_t)rc->max;
    }
    /* Jitter: between half and all of it, so tasks that failed together spread out. */
    uint64_t half = d / 2;
    return half + (half ? (uint64_t)random() % (half + 1) : 0);
}

static void task_drive(task_t *t);

static void schedule_retry(task_t *t, uint32_t min_attempt)
{
    sink_t *s = t->sink;
    if (t->attempt == 0) {
        t->retry_started_ms = mono_ms();
    }
    t->attempt++;
    if (t->attempt < min_attempt) {
        t->attempt = min_attempt;
    }
    uint64_t d = backoff_ms(&s->conf->retry, t->attempt);
    t->retry_at_ms = mono_ms() + d;
    counter_add(s, "batches_retried", 1);
}

static void commit_finish(task_t *t, int64_t off, int16_t code);

static void commit_done(task_t *t)
{
    int64_t off = t->b.end_offset;
    if (clustered(t->sink->host)) {
        t->job_offset = off;
        t->job_batch = true;
        submit_kind(t, JOB_COMMIT); /* commit_finish() when it is back */
        return;
    }
    commit_finish(t, off, offsets_commit(t, off));
}

/* The batch's commit is back: released, or committed again later. */
static void commit_finish(task_t *t, int64_t off, int16_t code)
{
    sink_t *s = t->sink;
    if (code != TRIB_KAFKA_NONE) {
        TRIB_LOG_RL(&s->rl, TRIB_LOG_WARN, FACILITY,
                    "[sink:%s] %s-%d: committing offset %" PRId64 " failed (Kafka error %d); "
                    "retrying",
                    s->conf->name, t->topic, (int)t->partition, off, (int)code);
        t->retry_at_ms = mono_ms() + 500;
        return; /* t->delivered stays: the next drive commits again */
    }
    t->delivered = false;
    counter_add(s, "records_delivered", t->b.n);
    t->committed = off;
    t->committed_ms = mono_ms();
    pbatch_release(&t->b);
    t->b.end_offset = t->read_offset;
    t->nranges = t->rhead = 0;
    t->dlq_offset = -1;
}

static void dlq_durable(coll_durable_req_t *req, int status)
{
    task_t *t = req->data;
    t->dlq_waiting = false;
    if (status != 0) {
        TRIB_LOG(TRIB_LOG_ERROR, FACILITY, "[sink:%s] dead-letter topic not durable: %s",
                 t->sink->conf->name, trib_strerror(status));
        t->retry_at_ms = mono_ms() + 1000;
        return; /* the batch is delivered again: dead letters may repeat, nothing is lost */
    }
    t->dlq_offset = -1;
    commit_done(t);
    if (!t->sink->host->stopping && !t->sink->stopping) {
        task_drive(t);
    } else {
        coll_sinks_stop(t->sink->host, NULL, NULL);
    }
}

/* All ranges written: commit, after the dead letters are durable. */
static void batch_delivered(task_t *t)
{
    sink_t *s = t->sink;
    t->delivered = true;
    if (t->dlq_offset >= 0) {
        coll_cluster_t *cl = s->host->env.cluster;
        const char *dl = s->conf->dead_letter_topic;
        coll_topic_t *tp = coll_cluster_topic(cl, dl, strlen(dl));
        coll_partition_t *p = tp ? coll_cluster_partition(tp, t->dlq_partition) : NULL;
        if (p && p->log) {
            memset(&t->dreq, 0, sizeof(t->dreq));
            t->dreq.data = t;
            if (coll_log_wait_durable(p->log, t->dlq_offset, &t->dreq, dlq_durable) == 0) {
                t->dlq_waiting = true;
                return;
            }
        }
    }
    commit_done(t);
}

/* Appends record i of the pending batch to the dead-letter topic. 0 or an error. */
static int dlq_write(task_t *t, coll_sremote_t *rm, size_t i, const char *why)
{
    sink_t *s = t->sink;
    coll_cluster_t *cl = s->host->env.cluster;
    const char *dl = s->conf->dead_letter_topic;
    int32_t pi = 0;
    coll_partition_t *p = NULL;
    if (rm) {
        /* Produced with acks=all (the topic is created by the Metadata that names it, where the
         * cluster auto-creates topics): durable once answered. */
        (void)coll_sremote_refresh(rm, false);
        const coll_sremote_topic_t *rt = remote_topic(rm, dl);
        pi = rt ? t->partition % rt->npartitions : 0;
    } else {
        coll_topic_t *tp = coll_cluster_topic(cl, dl, strlen(dl));
        if (!tp) {
            coll_admin_result_t ar;
            memset(&ar, 0, sizeof(ar));
            coll_cluster_create_topic(cl, dl, strlen(dl), 1, -1, NULL, 0, false, &tp, &ar);
            if (!tp) {
                TRIB_LOG(TRIB_LOG_ERROR, FACILITY,
                         "[sink:%s] cannot create the dead-letter topic %s: %s (error %d)",
                         s->conf->name, dl, ar.msg, (int)ar.code);
                return TRIB_ESTATE;
            }
        }
        pi = t->partition % tp->npartitions;
        p = coll_cluster_partition(tp, pi);
        if (!partition_here(t->sink->host, p)) {
            return TRIB_ESTATE;
        }
    }
    const trib_sink_record_t *r = &t->b.recs[i];
    /* Original headers, then ours. */
    size_t nh = (size_t)(r->header_count > 0 ? r->header_count : 0);
    trib_record_header_t *hs = calloc(nh + 5, sizeof(*hs));
    if (!hs) {
        return -ENOMEM;
    }
    size_t k = 0;
    if (nh) {
        trib_record_t rec;
        memset(&rec, 0, sizeof(rec));
        rec.header_count = r->header_count;
        rec.headers = r->headers;
        rec.headers_len = r->headers_len;
        trib_record_header_iter_t hi;
        trib_record_header_iter_init(&hi, &rec);
        while (k < nh && trib_record_header_iter_next(&hi, &hs[k]) == 1) {
            k++;
        }
    }
    char part[16], off[32];
    snprintf(part, sizeof(part), "%d", (int)t->partition);
    snprintf(off, sizeof(off), "%" PRId64, r->offset);
    const char *names[5] = {"tributary.error", "tributary.sink", "tributary.origin.topic",
                            "tributary.origin.partition", "tributary.origin.offset"};
    const char *vals[5] = {why, s->conf->name, t->topic, part, off};
    for (size_t j = 0; j < 5; j++, k++) {
        hs[k].key = trib_record_bytes(names[j], (int32_t)strlen(names[j]));
        hs[k].value = trib_record_bytes(vals[j], (int32_t)strlen(vals[j]));
    }
    trib_record_in_t in;
    memset(&in, 0, sizeof(in));
    in.key = r->key;
    in.value = r->value;
    in.timestamp = r->timestamp;
    in.headers = hs;
    in.header_count = k;
    coll_append_info_t info;
    int rc;
    if (rm) {
        int64_t at = -1;
        int16_t code = coll_sremote_produce(rm, dl, pi, &in, &at);
        rc = code == TRIB_KAFKA_NONE ? 0 : TRIB_ESTATE;
        if (rc != 0) {
            TRIB_LOG_RL(&s->rrl, TRIB_LOG_WARN, FACILITY,
                        "[sink:%s] dead-letter produce to %s-%d failed (Kafka error %d); retrying",
                        s->conf->name, dl, (int)pi, (int)code);
        }
        info.last_offset = at;
    } else {
        rc = s->host->env.append(p, &in, 1, &info);
    }
    if (rc == 0 && !rm) {
        t->dlq_offset = info.last_offset; /* durable once the local log says so */
        t->dlq_partition = pi;
    }
    free(hs);
    if (rc == 0) {
        counter_add(s, "records_dead_lettered", 1);
        TRIB_LOG(TRIB_LOG_WARN, FACILITY,
                 "[sink:%s] %s-%d offset %" PRId64 " rejected for good, to %s: %s", s->conf->name,
                 t->topic, (int)t->partition, r->offset, dl, why);
    }
    return rc;
}

/*
 * A write failed (loop thread): the sink is down. A transient failure is
 * logged per task as before (rate-limited); a permanent one (schema, auth,
 * database) once per sink for each new message, since every retry and
 * every partition would say the same thing. True if it is permanent.
 */
static bool sink_failed(sink_t *s, const trib_sink_result_t *res)
{
    bool permanent = res->error_class != TRIB_SINK_ERR_TRANSIENT;
    bool changed =
        !s->down || s->err_class != res->error_class || strcmp(s->err_msg, res->msg) != 0;
    s->down = true;
    s->err_class = res->error_class;
    s->err_wall_ms = wall_ms();
    snprintf(s->err_msg, sizeof(s->err_msg), "%s", res->msg[0] ? res->msg : "transient failure");
    if (permanent && changed) {
        TRIB_LOG(TRIB_LOG_ERROR, FACILITY,
                 "[sink:%s] %s error, retrying every %.0f s until fixed: %s", s->conf->name,
                 trib_sink_error_class_name(res->error_class), (double)s->conf->retry.max / 1000.0,
                 s->err_msg);
    }
    return permanent;
}

static void sink_recovered(sink_t *s)
{
    if (s->down) {
        TRIB_LOG(TRIB_LOG_INFO, FACILITY, "[sink:%s] delivering again (was down: %s error)",
                 s->conf->name, trib_sink_error_class_name(s->err_class));
        s->down = false;
    }
}

bool coll_sinks_health(coll_sinks_t *h, trib_buf_t *b)
{
    bool all_up = true;
    for (sink_t *s = h ? h->sinks : NULL; s; s = s->next) {
        if (s->down) {
            char line[1400];
            int n = snprintf(line, sizeof(line), "sink %s: down (%s error): %s\n", s->conf->name,
                             trib_sink_error_class_name(s->err_class), s->err_msg);
            trib_buf_append(b, line, n < (int)sizeof(line) ? (size_t)n : sizeof(line) - 1);
            all_up = false;
        }
    }
    return all_up;
}

/* Record bad of range r is in the dead-letter topic: the rest of r is written on. */
static void dlq_done(task_t *t, range_t r, size_t bad)
{
    range_t parts[2];
    size_t np = 0;
    if (bad > r.a) {
        parts[np++] = (range_t){r.a, bad};
    }
    if (bad + 1 < r.b) {
        parts[np++] = (range_t){bad + 1, r.b};
    }
    if (ranges_set(t, parts, np) != 0) {
        schedule_retry(t, 0);
        return;
    }
    t->attempt = 0;
    if (t->rhead == t->nranges) {
        batch_delivered(t);
    }
}

/* A job came back (loop thread). */
static void dlq_done(task_t *t, range_t r, size_t bad);
static void task_loaded(task_t *t, int64_t committed);

static void cluster_job_done(task_t *t)
{
    sink_t *s = t->sink;
    int16_t code = t->job_code;
    switch (t->kind) {
    case JOB_OFFSET:
        if (code != TRIB_KAFKA_NONE) {
            TRIB_LOG_RL(&s->rl, TRIB_LOG_WARN, FACILITY,
                        "[sink:%s] %s-%d: reading the committed offset failed (Kafka error %d); "
                        "retrying",
                        s->conf->name, t->topic, (int)t->partition, (int)code);
            t->retry_at_ms = mono_ms() + 500;
            return;
        }
        task_loaded(t, t->job_offset >= 0 ? t->job_offset : -1);
        return;
    case JOB_COMMIT:
        if (t->job_batch) {
            commit_finish(t, t->job_offset, code);
        } else if (code == TRIB_KAFKA_NONE) {
            t->committed = t->job_offset;
            t->committed_ms = mono_ms();
        }
        return;
    case JOB_DLQ:
        if (code != TRIB_KAFKA_NONE) {
            schedule_retry(t, 0); /* the range is written again, rejected again, sent again */
            return;
        }
        dlq_done(t, t->job_range, t->job_bad);
        return;
    case JOB_WRITE:
        return;
    }
}

static void job_done(task_t *t)
{
    sink_t *s = t->sink;
    t->busy = false;
    if (t->kind != JOB_WRITE) {
        cluster_job_done(t);
        return;
    }
    range_t r = t->job;
    switch (t->status) {
    case TRIB_SINK_OK:
        sink_recovered(s);
        if (t->attempt > 0) {
            TRIB_LOG(TRIB_LOG_INFO, FACILITY,
                     "[sink:%s] %s-%d: delivered after %u retries (%.1f s)", s->conf->name,
                     t->topic, (int)t->partition, t->attempt,
                     (double)(mono_ms() - t->retry_started_ms) / 1000.0);
        }
        t->attempt = 0;
        t->rhead++;
        if (t->rhead == t->nranges) {
            batch_delivered(t);
        }
        break;
    case TRIB_SINK_RETRY:
        if (sink_failed(s, &t->res)) {
            /* Waiting cannot fix a schema, credentials or a database name: retry at the cap. */
            schedule_retry(t, 0);
            t->retry_at_ms = mono_ms() + (uint64_t)s->conf->retry.max;
            break;
        }
        schedule_retry(t, 0);
        TRIB_LOG_RL(&s->rl, TRIB_LOG_WARN, FACILITY,
                    "[sink:%s] %s-%d offsets %" PRId64 "..%" PRId64 ": %s; retry %u in %" PRIu64
                    " ms",
                    s->conf->name, t->topic, (int)t->partition, t->b.recs[r.a].offset,
                    t->b.recs[r.b - 1].offset, t->res.msg[0] ? t->res.msg : "transient failure",
                    t->attempt, t->retry_at_ms - mono_ms());
        break;
    case TRIB_SINK_REJECT: {
        size_t n = r.b - r.a;
        if (n == 1 || t->res.failed_index >= 0) {
            size_t bad = n == 1 ? r.a : r.a + (size_t)t->res.failed_index;
            if (!s->conf->dead_letter_topic) {
                TRIB_LOG_RL(&s->rl, TRIB_LOG_ERROR, FACILITY,
                            "[sink:%s] %s-%d offset %" PRId64
                            " rejected: %s; no dead_letter_topic, so it is retried",
                            s->conf->name, t->topic, (int)t->partition, t->b.recs[bad].offset,
                            t->res.msg);
                schedule_retry(t, 30);
                break;
            }
            if (clustered(s->host)) {
                t->job_bad = bad;
                t->job_range = r;
                submit_kind(t, JOB_DLQ); /* dlq_done() when it is back */
                return;
            }
            if (dlq_write(t, s->host->env.remote, bad, t->res.msg[0] ? t->res.msg : "rejected") !=
                0) {
                schedule_retry(t, 0);
                break;
            }
            dlq_done(t, r, bad);
            break;
        } else {
            range_t parts[2] = {{r.a, r.a + n / 2}, {r.a + n / 2, r.b}};
            if (ranges_set(t, parts, 2) != 0) {
                schedule_retry(t, 0);
                break;
            }
        }
        t->attempt = 0;
        if (t->rhead == t->nranges) {
            batch_delivered(t);
        }
        break;
    }
    }
}

static void task_free(task_t *t)
{
    if (t->opened) {
        t->sink->d->close(t->inst);
    }
    pbatch_fini(&t->b);
    free(t->ranges);
    free(t->topic);
    free(t);
}

/*
 * Applies a replay to an idle task: the batch being delivered is dropped
 * (none of it was committed), the committed offset becomes the replay's,
 * and reading starts there. False when the commit failed (tried again).
 */
static bool task_replay(task_t *t)
{
    sink_t *s = t->sink;
    int64_t to = t->replay_to;
    int16_t code = offsets_commit(t, to);
    if (code != TRIB_KAFKA_NONE) {
        TRIB_LOG_RL(&s->rl, TRIB_LOG_WARN, FACILITY,
                    "[sink:%s] %s-%d: committing the replay offset %" PRId64
                    " failed (Kafka error %d); retrying",
                    s->conf->name, t->topic, (int)t->partition, to, (int)code);
        return false;
    }
    TRIB_LOG(TRIB_LOG_INFO, FACILITY,
             "[sink:%s] %s-%d: replay: delivering from offset %" PRId64 " (was at %" PRId64 ")",
             s->conf->name, t->topic, (int)t->partition, to, t->read_offset);
    t->replay_to = -1;
    pbatch_release(&t->b);
    t->nranges = t->rhead = 0;
    t->delivered = false;
    t->dlq_offset = -1;
    t->attempt = 0;
    t->retry_at_ms = 0;
    t->read_offset = to;
    t->b.end_offset = to;
    t->committed = to;
    t->committed_ms = mono_ms();
    return true;
}

/* Moves the task along: a pending replay, a pending range, a retry, a fill. */
static void task_drive(task_t *t)
{
    sink_t *s = t->sink;
    if (t->busy || t->dlq_waiting || s->host->stopping || s->stopping) {
        return;
    }
    uint64_t now = mono_ms();
    if (t->replay_to >= 0 && !task_replay(t)) {
        return;
    }
    if (now < t->retry_at_ms) {
        return;
    }
    if (t->loading) {
        if (task_log(t)) {
            submit_kind(t, JOB_OFFSET); /* the last read failed: again */
        }
        return;
    }
    if (!t->opened) {
        trib_error_t err;
        trib_error_clear(&err);
        if (s->d->open(&host_services, &s->ctx, s->opts, &t->inst, &err) != 0) {
            TRIB_LOG_RL(&s->rl, TRIB_LOG_ERROR, FACILITY, "[sink:%s] %s-%d: open: %s",
                        s->conf->name, t->topic, (int)t->partition, err.msg);
            schedule_retry(t, 0);
            return;
        }
        t->opened = true;
        t->attempt = 0;
    }
    if (t->rhead < t->nranges) {
        t->kind = JOB_WRITE;
        submit(t, t->ranges[t->rhead]);
        return;
    }
    if (t->delivered) {
        /* Every range done but the commit failed: commit again. */
        batch_delivered(t);
        return;
    }
    bool full = task_fill(t);
    if (t->b.n == 0 && t->committed >= 0 && now - t->committed_ms >= COMMIT_REFRESH_MS) {
        /* An idle partition: commit the same offset again, so that offset retention
         * (offsets.retention.minutes, counted from the last commit of a group without
         * members) never forgets where the sink is. */
        if (clustered(s->host)) {
            t->job_offset = t->committed;
            t->job_batch = false;
            submit_kind(t, JOB_COMMIT);
            return;
        }
        if (offsets_commit(t, t->committed) == TRIB_KAFKA_NONE) {
            t->committed_ms = now;
        }
    }
    if (t->b.n == 0) {
        if (t->b.end_offset > t->committed && t->b.end_offset == t->read_offset &&
            t->b.end_offset > 0 && t->committed >= 0) {
            /* Only control records or retention gaps: move the commit along. */
            if (clustered(s->host)) {
                t->job_offset = t->b.end_offset;
                t->job_batch = false;
                submit_kind(t, JOB_COMMIT);
                return;
            }
            if (offsets_commit(t, t->b.end_offset) == TRIB_KAFKA_NONE) {
                t->committed = t->b.end_offset;
                t->committed_ms = now;
            }
        }
        return;
    }
    if (!full && now - t->b.started_ms < (uint64_t)s->conf->batch.linger) {
        return;
    }
    if (t->ranges_cap < 1) {
        range_t *nr = malloc(sizeof(*nr));
        if (!nr) {
            return;
        }
        free(t->ranges);
        t->ranges = nr;
        t->ranges_cap = 1;
    }
    t->ranges[0] = (range_t){0, t->b.n};
    t->nranges = 1;
    t->rhead = 0;
    t->kind = JOB_WRITE;
    submit(t, t->ranges[0]);
}

/* ---- discovery --------------------------------------------------------------------------- */

static bool sink_wants_name(const sink_t *s, const char *name, size_t name_len, bool internal)
{
    if (internal) {
        return false;
    }
    if (s->conf->dead_letter_topic && strcmp(name, s->conf->dead_letter_topic) == 0) {
        return false;
    }
    for (size_t i = 0; i < s->conf->topics.count; i++) {
        const char *p = s->conf->topics.items[i];
        if (s->res[i]) {
            pcre2_match_data *md = pcre2_match_data_create_from_pattern(s->res[i], NULL);
            int rc = md ? pcre2_match(s->res[i], (PCRE2_SPTR)name, name_len, 0, 0, md, NULL) : -1;
            pcre2_match_data_free(md);
            if (rc >= 0) {
                return true;
            }
        } else if (strcmp(p, name) == 0) {
            return true;
        }
    }
    return false;
}

static bool sink_wants(const sink_t *s, const coll_topic_t *tp)
{
    return sink_wants_name(s, tp->name, tp->name_len, tp->internal);
}

static bool task_here(task_t *t)
{
    coll_sremote_t *rm = t->sink->host->env.remote;
    if (rm) {
        const coll_sremote_topic_t *rt = remote_topic(rm, t->topic);
        return rt && t->partition < rt->npartitions;
    }
    return task_log(t) != NULL;
}

static task_t *task_find(sink_t *s, const char *topic, int32_t partition)
{
    for (task_t *t = s->tasks; t; t = t->next) {
        if (t->partition == partition && strcmp(t->topic, topic) == 0) {
            return t;
        }
    }
    return NULL;
}

/* Returns false when the task could not be made (the next scan tries again). */
static bool task_new(sink_t *s, const char *topic, coll_topic_t *tp, int32_t partition)
{
    coll_partition_t *p = tp ? coll_cluster_partition(tp, partition) : NULL;
    if (tp && !partition_here(s->host, p)) {
        return false;
    }
    task_t *t = calloc(1, sizeof(*t));
    if (!t || !(t->topic = strdup(topic))) {
        free(t);
        return false;
    }
    t->sink = s;
    t->partition = partition;
    t->dlq_offset = -1;
    t->replay_to = -1;
    t->remote_hw = -1;
    trib_arena_init(&t->b.arena);
    if (clustered(s->host)) {
        /* The committed offset comes from the coordinator, on a worker (task_loaded()). */
        t->loading = true;
        t->committed = -1;
        t->read_offset = -1;
        t->b.end_offset = -1;
        t->next = s->tasks;
        s->tasks = t;
        submit_kind(t, JOB_OFFSET);
        return true;
    }
    int64_t committed = offsets_fetch(t);
    int64_t start = -1;
    if (committed == -2) {
        /* The coordinator cannot say now: starting anywhere else could skip or repeat. */
        free(t->topic);
        free(t);
        return false;
    }
    if (p) {
        start = coll_log_start_offset(p->log);
    } else if (committed < 0 && coll_sremote_earliest(s->host->env.remote, topic, partition,
                                                      &start) != TRIB_KAFKA_NONE) {
        free(t->topic);
        free(t);
        return false;
    }
    t->committed = committed;
    t->committed_ms = mono_ms();
    t->read_offset = committed >= 0 ? committed : start;
    t->b.end_offset = t->read_offset;
    t->next = s->tasks;
    s->tasks = t;
    s->members_dirty = true;
    TRIB_LOG(TRIB_LOG_INFO, FACILITY, "[sink:%s] %s-%d: delivering from offset %" PRId64 "%s",
             s->conf->name, t->topic, (int)partition, t->read_offset,
             committed >= 0 ? " (committed)" : " (log start)");
    return true;
}

/* Clustered: the committed offset of a new task is known (-1: none); it starts there. */
static void task_loaded(task_t *t, int64_t committed)
{
    sink_t *s = t->sink;
    coll_log_t *log = task_log(t);
    if (!log) {
        t->gone = true; /* no longer led here: dropped by the next scan */
        return;
    }
    t->loading = false;
    t->committed = committed;
    t->committed_ms = mono_ms();
    t->read_offset = committed >= 0 ? committed : coll_log_start_offset(log);
    t->b.end_offset = t->read_offset;
    TRIB_LOG(TRIB_LOG_INFO, FACILITY, "[sink:%s] %s-%d: delivering from offset %" PRId64 "%s",
             s->conf->name, t->topic, (int)t->partition, t->read_offset,
             committed >= 0 ? " (committed)" : " (log start)");
}

/* Drops idle tasks whose partition is gone; tells the coordinator when the tasks changed. */
static void prune_tasks(sink_t *s)
{
    task_t **pp = &s->tasks;
    while (*pp) {
        task_t *t = *pp;
        if (!t->busy && !t->dlq_waiting && !task_here(t)) {
            TRIB_LOG(TRIB_LOG_INFO, FACILITY, "[sink:%s] %s-%d: partition gone", s->conf->name,
                     t->topic, (int)t->partition);
            *pp = t->next;
            task_free(t);
            s->members_dirty = true;
            continue;
        }
        pp = &t->next;
    }
    if (s->members_dirty && sink_membership(s) == 0) {
        s->members_dirty = false;
    }
}

/* discover() of --sinks-only: the topics of the remote cluster's Metadata. */
static void discover_remote(coll_sinks_t *h)
{
    coll_sremote_t *rm = h->env.remote;
    if (coll_sremote_refresh(rm, false) != 0) {
        return; /* logged by the client; the tasks keep what they have */
    }
    size_t n = 0;
    const coll_sremote_topic_t *ts = coll_sremote_topics(rm, &n);
    for (sink_t *s = h->sinks; s; s = s->next) {
        if (s->stopping) {
            continue;
        }
        for (size_t i = 0; i < n; i++) {
            if (!sink_wants_name(s, ts[i].name, strlen(ts[i].name), ts[i].internal)) {
                continue;
            }
            for (int32_t p = 0; p < ts[i].npartitions; p++) {
                if (!task_find(s, ts[i].name, p)) {
                    (void)task_new(s, ts[i].name, NULL, p);
                }
            }
        }
        prune_tasks(s);
    }
}

static void discover(coll_sinks_t *h)
{
    if (h->env.remote) {
        discover_remote(h);
        return;
    }
    coll_cluster_t *cl = h->env.cluster;
    size_t n = coll_cluster_topic_count(cl);
    size_t np = coll_cluster_partition_count(cl);
    /* The topic scan is O(partitions x tasks): only when the counts moved. */
    bool scan = n != h->seen_topics || np != h->seen_partitions;
    h->seen_topics = n;
    h->seen_partitions = np;
    coll_topic_t **topics = scan ? malloc((n ? n : 1) * sizeof(*topics)) : NULL;
    if (scan && !topics) {
        h->seen_topics = (size_t)-1; /* try again next time */
        return;
    }
    if (scan) {
        coll_cluster_topics(cl, topics);
    }
    for (sink_t *s = h->sinks; s; s = s->next) {
        if (s->stopping) {
            continue;
        }
        for (size_t i = 0; scan && i < n; i++) {
            if (!sink_wants(s, topics[i])) {
                continue;
            }
            for (int32_t p = 0; p < topics[i]->npartitions; p++) {
                if (!task_find(s, topics[i]->name, p) &&
                    !task_new(s, topics[i]->name, topics[i], p)) {
                    h->seen_topics = (size_t)-1; /* rescan next time */
                }
            }
        }
        prune_tasks(s);
    }
    free(topics);
}

static void sink_retire(sink_t *s);

static void on_tick(uv_timer_t *timer)
{
    coll_sinks_t *h = timer->data;
    uint64_t now = mono_ms();
    if (now - h->last_discover >= 1000 || h->last_discover == 0) {
        h->last_discover = now;
        discover(h);
    }
    for (sink_t *s = h->sinks, *next; s; s = next) {
        next = s->next; /* a retired sink may be freed */
        if (s->stopping) {
            sink_retire(s);
            continue;
        }
        for (task_t *t = s->tasks; t; t = t->next) {
            task_drive(t);
        }
    }
}

static void on_async(uv_async_t *a)
{
    sink_t *s = a->data;
    pthread_mutex_lock(&s->mu);
    task_t *done = s->done;
    s->done = NULL;
    pthread_mutex_unlock(&s->mu);
    /* The list is newest first; order between tasks does not matter. */
    while (done) {
        task_t *t = done;
        done = t->qnext;
        job_done(t);
        if (!s->host->stopping && !s->stopping) {
            task_drive(t);
        }
    }
    if (s->host->stopping) {
        coll_sinks_stop(s->host, NULL, NULL);
    }
}

/* ---- start and stop ---------------------------------------------------------------------- */

static void ref_release(cfgref_t *r)
{
    if (r && --r->refs == 0) {
        if (r->owned) {
            trib_config_free(r->cfg);
        }
        free(r);
    }
}

static void sink_free(sink_t *s)
{
    if (!s) {
        return;
    }
    while (s->tasks) {
        task_t *t = s->tasks;
        s->tasks = t->next;
        task_free(t);
    }
    for (size_t i = 0; s->res && i < s->conf->topics.count; i++) {
        pcre2_code_free(s->res[i]);
    }
    free(s->res);
    free(s->threads);
    free(s->opts);
    trib_sink_plugin_free(s->plugin);
    ref_release(s->ref);
    ref_release(s->successor_ref);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cond);
    pthread_mutex_destroy(&s->cmu);
    coll_sremote_close(s->rc);
    pthread_mutex_destroy(&s->rcmu);
    free(s);
}

static void join_workers(sink_t *s)
{
    pthread_mutex_lock(&s->mu);
    s->quit = true;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->mu);
    for (size_t i = 0; i < s->nthreads; i++) {
        pthread_join(s->threads[i], NULL);
    }
    s->nthreads = 0;
}

static int sink_start(coll_sinks_t *h, const coll_sink_conf_t *c, cfgref_t *ref, sink_t **out,
                      trib_error_t *err)
{
    sink_t *s = calloc(1, sizeof(*s));
    if (!s) {
        return trib_error_set(err, -ENOMEM, "out of memory");
    }
    s->host = h;
    s->conf = c;
    s->ref = ref;
    ref->refs++;
    s->members_dirty = true;
    s->ctx.sink = s;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cond, NULL);
    pthread_mutex_init(&s->cmu, NULL);
    pthread_mutex_init(&s->rcmu, NULL);
    trib_log_ratelimit_t rl = TRIB_LOG_RATELIMIT_INIT(10000, 5);
    s->rl = rl;
    s->rrl = rl;
    snprintf(s->group, sizeof(s->group), "sink.%s", c->name);
    snprintf(s->member_id, sizeof(s->member_id), "sink-%s-%" PRId32, c->name,
             h->env.cluster ? coll_cluster_node_id(h->env.cluster) : -1);
    int rc = trib_sink_plugin_load(c->type, NULL, &s->plugin, err);
    if (rc != 0) {
        goto fail;
    }
    s->d = trib_sink_plugin_descriptor(s->plugin);
    char where[64];
    snprintf(where, sizeof(where), "sinks.%s.options", c->name);
    rc = trib_sink_options_apply(s->plugin, ref->cfg, &c->options, where, &s->opts);
    if (rc != 0) {
        trib_error_set(err, rc, "sink %s: bad options (run --check-config)", c->name);
        goto fail;
    }
    s->res = calloc(c->topics.count ? c->topics.count : 1, sizeof(*s->res));
    if (!s->res) {
        rc = trib_error_set(err, -ENOMEM, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < c->topics.count; i++) {
        if (is_regex(c->topics.items[i])) {
            char msg[400];
            s->res[i] = compile_re(c->topics.items[i], msg, sizeof(msg));
            if (!s->res[i]) {
                rc = trib_error_set(err, TRIB_ECONFIG, "sink %s: %s", c->name, msg);
                goto fail;
            }
        }
    }
    s->threads = calloc(c->workers, sizeof(*s->threads));
    if (!s->threads) {
        rc = trib_error_set(err, -ENOMEM, "out of memory");
        goto fail;
    }
    rc = uv_async_init(h->loop, &s->async, on_async);
    if (rc != 0) {
        trib_error_set(err, rc, "sink %s: %s", c->name, uv_strerror(rc));
        goto fail;
    }
    s->async.data = s;
    s->async_open = true;
    for (size_t i = 0; i < c->workers; i++) {
        int prc = pthread_create(&s->threads[i], NULL, worker_main, s);
        if (prc != 0) {
            rc = trib_error_set(err, -prc, "sink %s: pthread_create: %s", c->name, strerror(prc));
            goto fail;
        }
        s->nthreads++;
    }
    TRIB_LOG(TRIB_LOG_INFO, FACILITY, "[sink:%s] type %s (%s), group %s, %zu workers", c->name,
             c->type, trib_sink_plugin_path(s->plugin), s->group, (size_t)c->workers);
    /* A member from now on (its partitions follow at the first scan): from here its group
     * is not Empty, so nobody resets its offsets under it. */
    if (sink_membership(s) == 0) {
        s->members_dirty = false;
    }
    *out = s;
    return 0;
fail:
    join_workers(s);
    if (s->async_open) {
        /* Closed by the caller's cleanup path: hand it over. */
        *out = s;
        return rc ? rc : -EINVAL;
    }
    sink_free(s);
    *out = NULL;
    return rc ? rc : -EINVAL;
}

static void async_closed(uv_handle_t *hd)
{
    sink_t *s = hd->data;
    coll_sinks_t *h = s->host;
    h->closing--;
    if (h->closing == 0 && h->stop_cb) {
        h->stopped = true;
        void (*cb)(void *) = h->stop_cb;
        h->stop_cb = NULL;
        cb(h->stop_arg);
    }
}

static void timer_closed(uv_handle_t *hd)
{
    coll_sinks_t *h = hd->data;
    h->closing--;
    if (h->closing == 0 && h->stop_cb) {
        h->stopped = true;
        void (*cb)(void *) = h->stop_cb;
        h->stop_cb = NULL;
        cb(h->stop_arg);
    }
}

int coll_sinks_start(uv_loop_t *loop, const coll_sinks_env_t *env, trib_config_t *cfg,
                     const coll_sink_conf_t *sinks, size_t n, coll_sinks_t **out, trib_error_t *err)
{
    *out = NULL;
    coll_sinks_t *h = calloc(1, sizeof(*h));
    if (!h) {
        return trib_error_set(err, -ENOMEM, "out of memory");
    }
    h->loop = loop;
    h->env = *env;
    h->base = calloc(1, sizeof(*h->base));
    if (!h->base) {
        free(h);
        return trib_error_set(err, -ENOMEM, "out of memory");
    }
    h->base->cfg = cfg;
    h->base->refs = 1;
    srandom((unsigned)mono_ms());
    int rc = 0;
    sink_t **tail = &h->sinks;
    for (size_t i = 0; i < n; i++) {
        sink_t *s = NULL;
        rc = sink_start(h, &sinks[i], h->base, &s, err);
        if (s) {
            *tail = s;
            tail = &s->next;
        }
        if (rc != 0) {
            break;
        }
    }
    if (rc == 0 && (rc = uv_timer_init(loop, &h->timer)) == 0) {
        h->timer.data = h;
        h->timer_open = true;
        uv_timer_start(&h->timer, on_tick, TICK_MS, TICK_MS);
    } else if (rc == 0) {
        trib_error_set(err, rc, "sinks: %s", uv_strerror(rc));
    }
    *out = h; /* on error too: the caller stops and frees it */
    return rc;
}

static bool all_idle(coll_sinks_t *h)
{
    for (sink_t *s = h->sinks; s; s = s->next) {
        for (task_t *t = s->tasks; t; t = t->next) {
            if (t->busy || t->dlq_waiting) {
                return false;
            }
        }
    }
    return true;
}

void coll_sinks_stop(coll_sinks_t *h, void (*cb)(void *arg), void *arg)
{
    if (cb) {
        if (h->stopping) {
            return;
        }
        h->stopping = true;
        h->stop_cb = cb;
        h->stop_arg = arg;
        if (h->timer_open) {
            uv_timer_stop(&h->timer);
        }
        TRIB_LOG(TRIB_LOG_INFO, FACILITY, "stopping the sinks");
    }
    if (!h->stopping || h->closing > 0 || h->stopped || !all_idle(h)) {
        return; /* called again when the last job comes back */
    }
    /* Nothing in flight: end the workers, close the plugins, then the handles. */
    for (sink_t *s = h->sinks; s; s = s->next) {
        join_workers(s);
        for (task_t *t = s->tasks; t; t = t->next) {
            if (t->opened) {
                s->d->close(t->inst);
                t->opened = false;
            }
        }
        /* Every commit is done: the group is Empty until the sink runs again. */
        sink_leave(s);
    }
    h->closing = 1; /* held until every close is started */
    if (h->timer_open) {
        h->closing++;
        h->timer_open = false;
        uv_close((uv_handle_t *)&h->timer, timer_closed);
    }
    for (sink_t *s = h->sinks; s; s = s->next) {
        if (s->async_open) {
            h->closing++;
            s->async_open = false;
            uv_close((uv_handle_t *)&s->async, async_closed);
        }
    }
    h->closing--;
    if (h->closing == 0 && h->stop_cb) {
        h->stopped = true;
        void (*done)(void *) = h->stop_cb;
        h->stop_cb = NULL;
        done(h->stop_arg);
    }
}

void coll_sinks_free(coll_sinks_t *h)
{
    if (!h) {
        return;
    }
    while (h->sinks) {
        sink_t *s = h->sinks;
        h->sinks = s->next;
        sink_free(s);
    }
    ref_release(h->base);
    free(h);
}

/* ---- reload: sinks added, removed or changed -------------------------------------------- */

static bool str_eq(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* True when two configurations of a sink would run the same way. */
static bool conf_equal(const coll_sink_conf_t *a, const coll_sink_conf_t *b)
{
    if (!str_eq(a->name, b->name) || !str_eq(a->type, b->type) ||
        !str_eq(a->dead_letter_topic, b->dead_letter_topic) || a->workers != b->workers ||
        a->batch.max_records != b->batch.max_records || a->batch.max_bytes != b->batch.max_bytes ||
        a->batch.linger != b->batch.linger || a->retry.initial != b->retry.initial ||
        a->retry.max != b->retry.max || a->topics.count != b->topics.count ||
        a->options.count != b->options.count) {
        return false;
    }
    for (size_t i = 0; i < a->topics.count; i++) {
        if (!str_eq(a->topics.items[i], b->topics.items[i])) {
            return false;
        }
    }
    for (size_t i = 0; i < a->options.count; i++) {
        if (!str_eq(a->options.items[i].key, b->options.items[i].key) ||
            !str_eq(a->options.items[i].value, b->options.items[i].value)) {
            return false;
        }
    }
    return true;
}

static void sink_link(coll_sinks_t *h, sink_t *s)
{
    sink_t **pp = &h->sinks;
    while (*pp) {
        pp = &(*pp)->next;
    }
    *pp = s;
}

static void sink_unlink(coll_sinks_t *h, sink_t *s)
{
    sink_t **pp = &h->sinks;
    while (*pp && *pp != s) {
        pp = &(*pp)->next;
    }
    if (*pp) {
        *pp = s->next;
    }
}

/* Starts a sink of a reload; a failure is logged (the sink does not run). */
static void sink_start_logged(coll_sinks_t *h, const coll_sink_conf_t *c, cfgref_t *ref)
{
    sink_t *s = NULL;
    trib_error_t err;
    trib_error_clear(&err);
    if (sink_start(h, c, ref, &s, &err) != 0) {
        TRIB_LOG(TRIB_LOG_ERROR, FACILITY, "[sink:%s] cannot start: %s", c->name, err.msg);
        if (s) {
            s->stopping = true; /* its handle is open: retired (closed) by the next tick */
            sink_link(h, s);
        }
        return;
    }
    TRIB_LOG(TRIB_LOG_INFO, FACILITY, "[sink:%s] started by the reload", c->name);
    sink_link(h, s);
    /* Its tasks come from the topic scan, which otherwise runs only when the cluster's topic or
     * partition counts move: a changed sink's successor starts after its predecessor drained,
     * possibly after the scan the reload asked for, and would then get no partition at all. */
    h->seen_topics = (size_t)-1;
}

static void retire_closed(uv_handle_t *hd)
{
    sink_t *s = hd->data;
    coll_sinks_t *h = s->host;
    h->closing--;
    sink_unlink(h, s);
    const coll_sink_conf_t *next = s->successor;
    cfgref_t *nref = s->successor_ref;
    s->successor_ref = NULL;
    TRIB_LOG(TRIB_LOG_INFO, FACILITY, "[sink:%s] stopped%s", s->conf->name,
             next ? "; starting it with its new configuration" : "");
    sink_free(s);
    if (next && !h->stopping) {
        sink_start_logged(h, next, nref);
    }
    ref_release(nref);
    if (h->stopping) {
        coll_sinks_stop(h, NULL, NULL); /* it waited for this close */
    }
}

/*
 * A sink a reload removed or changed, once none of its tasks has a batch
 * in flight: what the plugin made durable was committed, the rest of a
 * batch is delivered again by whoever takes the partitions next. Its
 * workers end, its plugin instances close, it leaves its group, and its
 * handle closes (retire_closed frees it).
 */
static void sink_retire(sink_t *s)
{
    coll_sinks_t *h = s->host;
    if (s->retire_closing || h->stopping) {
        return;
    }
    for (task_t *t = s->tasks; t; t = t->next) {
        if (t->busy || t->dlq_waiting) {
            return;
        }
    }
    join_workers(s);
    while (s->tasks) {
        task_t *t = s->tasks;
        s->tasks = t->next;
        task_free(t);
    }
    sink_leave(s);
    s->retire_closing = true;
    if (s->async_open) {
        s->async_open = false;
        h->closing++;
        uv_close((uv_handle_t *)&s->async, retire_closed);
    } else {
        sink_unlink(h, s);
        sink_free(s);
    }
}

int coll_sinks_reload(coll_sinks_t *h, trib_config_t *cfg, const coll_sink_conf_t *sinks, size_t n)
{
    if (h->stopping) {
        trib_config_free(cfg);
        return TRIB_ESTATE;
    }
    cfgref_t *ref = calloc(1, sizeof(*ref));
    if (!ref) {
        trib_config_free(cfg);
        return -ENOMEM;
    }
    ref->cfg = cfg;
    ref->owned = true;
    ref->refs = 1; /* ours, until the end of this function */
    size_t added = 0, removed = 0, changed = 0, same = 0;
    /* Running sinks the new configuration drops or changes retire. */
    for (sink_t *s = h->sinks; s; s = s->next) {
        const coll_sink_conf_t *nc = NULL;
        for (size_t i = 0; i < n; i++) {
            if (strcmp(sinks[i].name, s->conf->name) == 0) {
                nc = &sinks[i];
            }
        }
        if (s->stopping) {
            /* Still draining from an earlier reload: what follows it is this reload's. */
            ref_release(s->successor_ref);
            s->successor = nc;
            s->successor_ref = nc ? ref : NULL;
            ref->refs += nc ? 1 : 0;
            continue;
        }
        if (nc && conf_equal(nc, s->conf)) {
            same++;
            continue;
        }
        s->stopping = true;
        if (nc) {
            changed++;
            s->successor = nc;
            s->successor_ref = ref;
            ref->refs++;
            TRIB_LOG(TRIB_LOG_INFO, FACILITY,
                     "[sink:%s] configuration changed: restarting it once its batches in flight "
                     "are done",
                     s->conf->name);
        } else {
            removed++;
            TRIB_LOG(TRIB_LOG_INFO, FACILITY,
                     "[sink:%s] removed from the configuration: stopping it once its batches in "
                     "flight are done",
                     s->conf->name);
        }
    }
    /* New names start now (a changed sink's successor waits for its predecessor). */
    for (size_t i = 0; i < n; i++) {
        bool known = false;
        for (sink_t *s = h->sinks; s && !known; s = s->next) {
            known = (!s->stopping && strcmp(s->conf->name, sinks[i].name) == 0) ||
                    (s->successor && strcmp(s->successor->name, sinks[i].name) == 0);
        }
        if (!known) {
            added++;
            sink_start_logged(h, &sinks[i], ref);
        }
    }
    TRIB_LOG(TRIB_LOG_INFO, FACILITY,
             "reload: %zu sinks added, %zu removed, %zu changed, %zu unchanged", added, removed,
             changed, same);
    ref_release(ref);
    return 0;
}

/* ---- replay (POST /sinks/NAME/replay on the HTTP port) ----------------------------------- */

/* Decodes %XX and '+' in place; false on a bad escape. */
static bool url_decode(char *p)
{
    char *o = p;
    for (; *p; p++) {
        if (*p == '%') {
            unsigned v;
            if (!p[1] || !p[2] || sscanf(p + 1, "%2x", &v) != 1 || v == 0) {
                return false;
            }
            *o++ = (char)v;
            p += 2;
        } else {
            *o++ = *p == '+' ? ' ' : *p;
        }
    }
    *o = '\0';
    return true;
}

static bool parse_i64(const char *p, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(p, &end, 10);
    if (!*p || *end || errno) {
        return false;
    }
    *out = v;
    return true;
}

static int http_text(trib_buf_t *body, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int http_text(trib_buf_t *body, int code, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (n > 0) {
        trib_buf_append(body, msg, (size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg) - 1);
    }
    return code;
}

/*
 * Sets where every matching task of the sink delivers from next: the log
 * start (earliest), an offset, or the first record at or after a time
 * (wall ms), each clamped into the log's range as Kafka's reset-offsets
 * does. A task with a batch in flight takes it once the batch comes back.
 */
static int sink_replay(sink_t *s, const char *to, int64_t value, const char *topic,
                       int64_t partition, trib_buf_t *body)
{
    size_t n = 0;
    trib_buf_t rows;
    trib_buf_init(&rows);
    for (task_t *t = s->tasks; t; t = t->next) {
        if ((topic && strcmp(topic, t->topic) != 0) ||
            (partition >= 0 && partition != t->partition)) {
            continue;
        }
        coll_log_t *log = task_log(t);
        if (!log) {
            continue;
        }
        int64_t start = coll_log_start_offset(log), end = coll_log_high_watermark(log);
        int64_t target = start;
        if (strcmp(to, "offset") == 0) {
            target = value;
        } else if (strcmp(to, "time") == 0) {
            int64_t off, ts;
            int rc = coll_log_offset_for_timestamp(log, value, &off, &ts);
            target = rc == 0 ? off : end;
        }
        target = target < start ? start : target > end ? end : target;
        t->replay_to = target;
        char line[600];
        char committed[24] = "-";
        if (t->committed >= 0) {
            snprintf(committed, sizeof(committed), "%" PRId64, t->committed);
        }
        int len = snprintf(line, sizeof(line), "%-30s %-9d %-12s %" PRId64 "%s\n", t->topic,
                           (int)t->partition, committed, target,
                           t->busy || t->dlq_waiting ? "  (after the batch in flight)" : "");
        trib_buf_append(&rows, line, (size_t)len < sizeof(line) ? (size_t)len : sizeof(line) - 1);
        n++;
        task_drive(t);
    }
    int code;
    if (n == 0) {
        code = http_text(body, 404,
                         "sink '%s' has no partition%s%s%s to replay (is the topic there yet?)\n",
                         s->conf->name, topic ? " of topic " : "", topic ? topic : "",
                         partition >= 0 ? " with that number" : "");
    } else {
        code = http_text(body, 200,
                         "sink %s (group %s): replaying %zu partition%s\n%-30s "
                         "%-9s %-12s %s\n",
                         s->conf->name, s->group, n, n == 1 ? "" : "s", "TOPIC", "PARTITION",
                         "COMMITTED", "NEW-OFFSET");
        size_t len = 0;
        const uint8_t *p = trib_buf_flatten(&rows, &len);
        if (p) {
            trib_buf_append(body, p, len);
        }
        TRIB_LOG(TRIB_LOG_INFO, FACILITY, "[sink:%s] replay of %zu partitions requested (%s)",
                 s->conf->name, n, to);
    }
    trib_buf_fini(&rows);
    return code;
}

int coll_sinks_http(coll_sinks_t *h, const char *method, const char *target, bool loopback,
                    trib_buf_t *body)
{
    if (strncmp(target, "/sinks/", 7) != 0 || !h) {
        return 0;
    }
    char path[1024];
    snprintf(path, sizeof(path), "%s", target + 7);
    char *query = strchr(path, '?');
    if (query) {
        *query++ = '\0';
    }
    char *slash = strrchr(path, '/');
    if (!slash || strcmp(slash + 1, "replay") != 0) {
        return http_text(body, 404, "not found: POST /sinks/NAME/replay\n");
    }
    *slash = '\0';
    if (strcmp(method, "POST") != 0) {
        return http_text(body, 405, "method not allowed: POST /sinks/NAME/replay\n");
    }
    if (h->stopping) {
        return http_text(body, 503, "the collector is stopping\n");
    }
    if (h->env.remote || clustered(h)) {
        return http_text(body, 501,
                         "not implemented with --sinks-only: move the group's offsets with the "
                         "cluster's own tools while the sink is stopped\n");
    }
    if (!loopback) {
        return http_text(body, 403,
                         "forbidden: sinks are replayed from the collector's host only "
                         "(127.0.0.1 or ::1)\n");
    }
    if (!url_decode(path)) {
        return http_text(body, 400, "bad request: bad %%-escape in the sink name\n");
    }
    sink_t *s = NULL;
    for (sink_t *x = h->sinks; x; x = x->next) {
        if (!x->stopping && strcmp(x->conf->name, path) == 0) {
            s = x;
        }
    }
    if (!s) {
        return http_text(body, 404, "no running sink named '%s'\n", path);
    }
    const char *to = NULL, *topic = NULL;
    int64_t value = 0, partition = -1;
    for (char *save = NULL, *kv = query ? strtok_r(query, "&", &save) : NULL; kv;
         kv = strtok_r(NULL, "&", &save)) {
        char *eq = strchr(kv, '=');
        char *v = eq ? eq + 1 : (char *)"";
        if (eq) {
            *eq = '\0';
        }
        if (!url_decode(kv) || !url_decode(v)) {
            return http_text(body, 400, "bad request: bad %%-escape\n");
        }
        if (strcmp(kv, "to") == 0 && strcmp(v, "earliest") == 0) {
            to = "earliest";
        } else if (strcmp(kv, "offset") == 0 && parse_i64(v, &value) && value >= 0) {
            to = "offset";
        } else if (strcmp(kv, "time") == 0 && parse_i64(v, &value) && value >= 0) {
            to = "time";
        } else if (strcmp(kv, "topic") == 0 && *v) {
            topic = v;
        } else if (strcmp(kv, "partition") == 0 && parse_i64(v, &partition) && partition >= 0 &&
                   partition <= INT32_MAX) {
        } else {
            return http_text(body, 400,
                             "bad request: '%s=%s' (expected to=earliest, offset=N or time=MS, "
                             "and optionally topic=T and partition=P)\n",
                             kv, v);
        }
    }
    if (!to) {
        return http_text(body, 400,
                         "bad request: say where to replay from: to=earliest, offset=N or "
                         "time=MS\n");
    }
    return sink_replay(s, to, value, topic, partition, body);
}

/* ---- metrics ------------------------------------------------------------------------------- */

static uint64_t counter_value(sink_t *s, const char *name)
{
    uint64_t v = 0;
    pthread_mutex_lock(&s->cmu);
    for (size_t i = 0; i < s->ncounters; i++) {
        if (strcmp(s->counters[i].name, name) == 0) {
            v = s->counters[i].value;
        }
    }
    pthread_mutex_unlock(&s->cmu);
    return v;
}

void coll_sinks_status(coll_sinks_t *h, void (*fn)(void *arg, const coll_sink_status_t *st),
                       void *arg)
{
    if (!h) {
        return;
    }
    for (sink_t *s = h->sinks; s; s = s->next) {
        coll_sink_status_t st = {
            .name = s->conf->name,
            .type = s->conf->type,
            .group = s->group,
            .dead_letter_topic = s->conf->dead_letter_topic,
            .delivered = counter_value(s, "records_delivered"),
            .dead_lettered = counter_value(s, "records_dead_lettered"),
            .retried = counter_value(s, "batches_retried"),
            .lost_to_retention = counter_value(s, "records_lost_to_retention"),
            .up = !s->down,
            .error_class = s->down ? trib_sink_error_class_name(s->err_class) : NULL,
            .last_error = s->err_msg,
            .last_error_ms = s->err_wall_ms,
        };
        fn(arg, &st);
    }
}

void coll_sinks_render_metrics(coll_sinks_t *h, trib_buf_t *b)
{
    if (!h || !h->sinks) {
        return;
    }
    static const struct {
        const char *counter;
        const char *metric;
        const char *help;
    } host_counters[] = {
        {"records_delivered", "tributary_sink_records_delivered_total",
         "records the sink's plugin made durable and whose offsets were committed"},
        {"batches_retried", "tributary_sink_batches_retried_total",
         "transient failures (each retried after backoff)"},
        {"records_dead_lettered", "tributary_sink_records_dead_lettered_total",
         "records rejected for good and written to the dead-letter topic"},
        {"records_lost_to_retention", "tributary_sink_records_lost_to_retention_total",
         "records deleted by retention before the sink delivered them"},
    };
    char label[1024], esc[256], tesc[512];
    for (size_t k = 0; k < sizeof(host_counters) / sizeof(host_counters[0]); k++) {
        trib_prom_header(b, host_counters[k].metric, "counter", host_counters[k].help);
        for (sink_t *s = h->sinks; s; s = s->next) {
            uint64_t v = 0;
            pthread_mutex_lock(&s->cmu);
            for (size_t i = 0; i < s->ncounters; i++) {
                if (strcmp(s->counters[i].name, host_counters[k].counter) == 0) {
                    v = s->counters[i].value;
                }
            }
            pthread_mutex_unlock(&s->cmu);
            trib_prom_label_escape_str(esc, sizeof(esc), s->conf->name);
            snprintf(label, sizeof(label), "sink=\"%s\"", esc);
            trib_prom_sample_u64(b, host_counters[k].metric, label, v);
        }
    }
    trib_prom_header(b, "tributary_sink_up", "gauge",
                     "1 while the sink delivers, 0 from a failed write until one succeeds");
    for (sink_t *s = h->sinks; s; s = s->next) {
        trib_prom_label_escape_str(esc, sizeof(esc), s->conf->name);
        snprintf(label, sizeof(label), "sink=\"%s\"", esc);
        trib_prom_sample_u64(b, "tributary_sink_up", label, s->down ? 0 : 1);
    }
    trib_prom_header(b, "tributary_sink_last_error_timestamp_seconds", "gauge",
                     "when the sink's last failed write ended (0: none since start)");
    for (sink_t *s = h->sinks; s; s = s->next) {
        trib_prom_label_escape_str(esc, sizeof(esc), s->conf->name);
        snprintf(label, sizeof(label), "sink=\"%s\"", esc);
        trib_prom_sample_u64(b, "tributary_sink_last_error_timestamp_seconds", label,
                             (uint64_t)(s->err_wall_ms / 1000));
    }
    trib_prom_header(b, "tributary_sink_error_info", "gauge",
                     "1 for a sink that is down, labelled with the class of its error "
                     "(transient, schema, auth, database)");
    for (sink_t *s = h->sinks; s; s = s->next) {
        if (s->down) {
            trib_prom_label_escape_str(esc, sizeof(esc), s->conf->name);
            snprintf(label, sizeof(label), "sink=\"%s\",class=\"%s\"", esc,
                     trib_sink_error_class_name(s->err_class));
            trib_prom_sample_u64(b, "tributary_sink_error_info", label, 1);
        }
    }
    trib_prom_header(b, "tributary_sink_lag_records", "gauge",
                     "records in the partition after the sink's committed offset");
    for (sink_t *s = h->sinks; s; s = s->next) {
        trib_prom_label_escape_str(esc, sizeof(esc), s->conf->name);
        for (task_t *t = s->tasks; t; t = t->next) {
            coll_log_t *log = task_log(t);
            if (!log && (!h->env.remote || t->remote_hw < 0 || t->committed < 0)) {
                continue;
            }
            int64_t end = log ? coll_log_end_offset(log) : t->remote_hw;
            int64_t from = t->committed >= 0 ? t->committed : coll_log_start_offset(log);
            trib_prom_label_escape_str(tesc, sizeof(tesc), t->topic);
            snprintf(label, sizeof(label), "sink=\"%s\",topic=\"%s\",partition=\"%d\"", esc, tesc,
                     (int)t->partition);
            trib_prom_sample_u64(b, "tributary_sink_lag_records", label,
                                 (uint64_t)(end > from ? end - from : 0));
        }
    }
    /* What plugins count through the host's counter_add, by name. */
    trib_prom_header(b, "tributary_sink_plugin_total", "counter",
                     "counters kept by the sink plugins (host services counter_add)");
    for (sink_t *s = h->sinks; s; s = s->next) {
        trib_prom_label_escape_str(esc, sizeof(esc), s->conf->name);
        pthread_mutex_lock(&s->cmu);
        for (size_t i = 0; i < s->ncounters; i++) {
            const counter_t *c = &s->counters[i];
            bool host_own = false;
            for (size_t k = 0; k < sizeof(host_counters) / sizeof(host_counters[0]); k++) {
                host_own = host_own || strcmp(c->name, host_counters[k].counter) == 0;
            }
            if (!host_own) {
                snprintf(label, sizeof(label), "sink=\"%s\",name=\"%s\"", esc, c->name);
                trib_prom_sample_u64(b, "tributary_sink_plugin_total", label, c->value);
            }
        }
        pthread_mutex_unlock(&s->cmu);
    }
}
