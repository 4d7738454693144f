/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The `local` cluster metadata backend: one node, one checkpoint file.
 *
 * See cluster.h for the file format and the rules. Every change follows
 * the same order, so a crash at any point leaves a state the next start
 * understands:
 *
 *   1. validate (nothing changed yet; validate_only stops here)
 *   2. change the in-memory metadata
 *   3. rewrite the checkpoint; on failure undo step 2 and report
 *      KAFKA_STORAGE_ERROR
 *   4. create or empty the partition logs, and run the hooks
 *
 * A crash between 3 and 4 is repaired at startup, which creates the logs
 * of every known partition that has none. The checkpoint is written on the
 * loop thread: admin operations are rare and small, and a synchronous write
 * keeps "the response says created" equal to "it survives a crash".
 */
#include "cluster/cluster.h"
#include "cluster/cluster_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tributary/buf.h"
#include "tributary/fileio.h"
#include "tributary/kafka_error.h"
#include "tributary/log.h"

#define FACILITY "cluster"
#define FILE_VERSION 1
#define MAX_LINE 4096

struct coll_cluster {
    coll_storage_t *st;
    coll_cluster_config_t cfg;
    coll_cluster_hooks_t hooks;
    char cluster_id[23];
    char *path; /* <data_dir>/cluster-metadata */
    coll_topic_t **buckets;
    size_t nbuckets;
    size_t ntopics;
    size_t npartitions;
    int64_t next_pid;           /* next producer id to hand out */
    int64_t pid_block;          /* checkpointed: ids below this may have been used */
    coll_cluster_view_t view;   /* brokers and controller of a cluster; unset: alone */
    coll_cluster_admin_t admin; /* the zookeeper backend's admin path; unset: local */
    size_t file_topics;         /* topic lines in the file, unread on the zookeeper backend */
    bool metadata_loaded;       /* zookeeper backend: every listed topic read once */
};

void coll_cluster_config_init(coll_cluster_config_t *c)
{
    memset(c, 0, sizeof(*c));
    c->data_dir = "./tributary-data";
    c->node_id = 1;
    c->host = "127.0.0.1";
    c->port = 9092;
    c->auto_create_topics = true;
    c->default_partitions = 1;
    c->default_replication_factor = 1;
    coll_tcfg_init(&c->defaults);
    c->max_partitions = 100000;
}

/* ---- uuids ------------------------------------------------------------------------ */

static void random_bytes(void *p, size_t n)
{
    uint8_t *b = p;
    while (n > 0) {
        ssize_t r = getrandom(b, n, 0);
        if (r < 0) {
            if (errno == EINTR) {
                continue;
            }
            /* No entropy source: mix the clock and the address space (ids need not be secret). */
            for (size_t i = 0; i < n; i++) {
                b[i] = (uint8_t)(rand() ^ (uintptr_t)b ^ (uintptr_t)time(NULL));
            }
            return;
        }
        b += r;
        n -= (size_t)r;
    }
}

void coll_uuid_random(trib_uuid_t *out)
{
    for (;;) {
        random_bytes(out->b, 16);
        /* Version 4, variant 1, as java.util.UUID.randomUUID(). */
        out->b[6] = (uint8_t)((out->b[6] & 0x0f) | 0x40);
        out->b[8] = (uint8_t)((out->b[8] & 0x3f) | 0x80);
        char text[23];
        trib_uuid_format(out, text);
        if (!trib_uuid_is_zero(out) && text[0] != '-') {
            return;
        }
    }
}

/* ---- topic table --------------------------------------------------------------------- */

bool coll_topic_name_valid(const char *name, size_t len)
{
    if (!name || len == 0 || len > COLL_TOPIC_NAME_MAX) {
        return false;
    }
    if ((len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.')) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        char ch = name[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '_' || ch == '-')) {
            return false;
        }
    }
    return true;
}

static uint64_t name_hash(const char *p, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        h = (h ^ (uint8_t)p[i]) * 1099511628211ULL;
    }
    return h;
}

coll_topic_t *coll_cluster_topic(const coll_cluster_t *c, const char *name, size_t len)
{
    if (!c->nbuckets || !name) {
        return NULL;
    }
    for (coll_topic_t *t = c->buckets[name_hash(name, len) % c->nbuckets]; t; t = t->hnext_) {
        if (t->name_len == len && memcmp(t->name, name, len) == 0) {
            return t;
        }
    }
    return NULL;
}

coll_topic_t *coll_cluster_topic_by_id(const coll_cluster_t *c, const trib_uuid_t *id)
{
    if (trib_uuid_is_zero(id)) {
        return NULL;
    }
    for (size_t b = 0; b < c->nbuckets; b++) {
        for (coll_topic_t *t = c->buckets[b]; t; t = t->hnext_) {
            if (memcmp(t->id.b, id->b, 16) == 0) {
                return t;
            }
        }
    }
    return NULL;
}

coll_partition_t *coll_cluster_partition(const coll_topic_t *t, int32_t index)
{
    if (!t || index < 0 || index >= t->npartitions) {
        return NULL;
    }
    return t->partitions[index];
}

size_t coll_cluster_topic_count(const coll_cluster_t *c)
{
    return c->ntopics;
}

size_t coll_cluster_partition_count(const coll_cluster_t *c)
{
    return c->npartitions;
}

static int cmp_topic(const void *a, const void *b)
{
    const coll_topic_t *x = *(coll_topic_t *const *)a, *y = *(coll_topic_t *const *)b;
    return strcmp(x->name, y->name);
}

void coll_cluster_topics(const coll_cluster_t *c, coll_topic_t **out)
{
    size_t n = 0;
    for (size_t b = 0; b < c->nbuckets; b++) {
        for (coll_topic_t *t = c->buckets[b]; t; t = t->hnext_) {
            out[n++] = t;
        }
    }
    qsort(out, n, sizeof(*out), cmp_topic);
}

static int table_grow(coll_cluster_t *c)
{
    size_t nb = c->nbuckets ? c->nbuckets * 2 : 64;
    coll_topic_t **b = calloc(nb, sizeof(*b));
    if (!b) {
        return -ENOMEM;
    }
    for (size_t i = 0; i < c->nbuckets; i++) {
        coll_topic_t *t = c->buckets[i];
        while (t) {
            coll_topic_t *next = t->hnext_;
            size_t k = name_hash(t->name, t->name_len) % nb;
            t->hnext_ = b[k];
            b[k] = t;
            t = next;
        }
    }
    free(c->buckets);
    c->buckets = b;
    c->nbuckets = nb;
    return 0;
}

static int table_insert(coll_cluster_t *c, coll_topic_t *t)
{
    if (c->ntopics + 1 > c->nbuckets) {
        int rc = table_grow(c);
        if (rc) {
            return rc;
        }
    }
    size_t k = name_hash(t->name, t->name_len) % c->nbuckets;
    t->hnext_ = c->buckets[k];
    c->buckets[k] = t;
    c->ntopics++;
    c->npartitions += (size_t)t->npartitions;
    return 0;
}

static void table_remove(coll_cluster_t *c, coll_topic_t *t)
{
    coll_topic_t **pp = &c->buckets[name_hash(t->name, t->name_len) % c->nbuckets];
    while (*pp && *pp != t) {
        pp = &(*pp)->hnext_;
    }
    if (*pp) {
        *pp = t->hnext_;
        c->ntopics--;
        c->npartitions -= (size_t)t->npartitions;
    }
    t->hnext_ = NULL;
}

/*
 * A partition of the local backend: this node leads it, and is its only
 * replica and its ISR.
 */
static coll_partition_t *partition_new(const coll_cluster_t *c, coll_topic_t *t, int32_t index)
{
    coll_partition_t *p = calloc(1, sizeof(*p));
    if (!p) {
        return NULL;
    }
    p->topic = t;
    p->index = index;
    p->replicas = malloc(sizeof(int32_t));
    p->isr = malloc(sizeof(int32_t));
    if (!p->replicas || !p->isr) {
        free(p->replicas);
        free(p->isr);
        free(p);
        return NULL;
    }
    p->leader = c->cfg.node_id;
    p->replicas[0] = p->isr[0] = c->cfg.node_id;
    p->nreplicas = p->nisr = 1;
    return p;
}

static void partition_free(coll_partition_t *p)
{
    if (p) {
        free(p->replicas);
        free(p->isr);
        free(p);
    }
}

static void topic_free(coll_topic_t *t)
{
    if (!t) {
        return;
    }
    for (int32_t i = 0; i < t->npartitions; i++) {
        partition_free(t->partitions[i]);
    }
    free(t->partitions);
    free(t->name);
    free(t);
}

bool coll_topic_name_internal(const char *name, size_t len)
{
    static const char *const names[] = {"__consumer_offsets", "__transaction_state"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (len == strlen(names[i]) && memcmp(name, names[i], len) == 0) {
            return true;
        }
    }
    return false;
}

static bool is_internal(const char *name)
{
    return coll_topic_name_internal(name, strlen(name));
}

static coll_topic_t *topic_new(const coll_cluster_t *c, const char *name, size_t len,
                               const trib_uuid_t *id, int32_t npart)
{
    coll_topic_t *t = calloc(1, sizeof(*t));
    if (!t) {
        return NULL;
    }
    t->name = malloc(len + 1);
    t->partitions = calloc((size_t)(npart > 0 ? npart : 1), sizeof(*t->partitions));
    if (!t->name || !t->partitions) {
        topic_free(t);
        return NULL;
    }
    memcpy(t->name, name, len);
    t->name[len] = '\0';
    t->name_len = len;
    t->id = *id;
    t->internal = is_internal(t->name);
    for (int32_t i = 0; i < npart; i++) {
        coll_partition_t *p = partition_new(c, t, i);
        if (!p) {
            topic_free(t);
            return NULL;
        }
        t->partitions[i] = p;
        t->npartitions = i + 1;
    }
    t->npartitions = npart;
    coll_tcfg_merge(&c->cfg.defaults, &t->overrides, 0, &t->config);
    return t;
}

/* ---- the checkpoint ------------------------------------------------------------------- */

static void put_str(trib_buf_t *b, const char *s)
{
    trib_buf_append(b, s, strlen(s));
}

static int save(coll_cluster_t *c)
{
    size_t n = c->ntopics;
    coll_topic_t **topics = malloc((n ? n : 1) * sizeof(*topics));
    if (!topics) {
        return -ENOMEM;
    }
    coll_cluster_topics(c, topics);
    trib_buf_t b;
    trib_buf_init(&b);
    char line[MAX_LINE];
    put_str(&b, "# Tributary cluster metadata (local backend): topics, ids, partitions and\n"
                "# config overrides. Rewritten atomically on every change; do not edit while\n"
                "# the collector runs.\n");
    snprintf(line, sizeof(line),
             "version: %d\ncluster.id: %s\nnode.id: %" PRId32 "\nproducer.id.block: %" PRId64 "\n",
             FILE_VERSION, c->cluster_id, c->cfg.node_id, c->pid_block);
    put_str(&b, line);
    for (size_t i = 0; i < n; i++) {
        coll_topic_t *t = topics[i];
        char id[23];
        trib_uuid_format(&t->id, id);
        snprintf(line, sizeof(line), "topic: %s %s %" PRId32 "\n", t->name, id, t->npartitions);
        put_str(&b, line);
        for (int k = 0; k < COLL_TCFG_COUNT; k++) {
            if (t->config_mask & (1u << k)) {
                char v[64];
                coll_tcfg_format(k, t->overrides.v[k], v, sizeof(v));
                snprintf(line, sizeof(line), "config: %s %s %s\n", t->name, coll_tcfg_defs[k].name,
                         v);
                put_str(&b, line);
            }
        }
    }
    free(topics);
    size_t len;
    const uint8_t *data = trib_buf_flatten(&b, &len);
    int rc = trib_buf_error(&b);
    if (rc == 0) {
        rc = trib_write_file_atomic(c->path, data, len);
    }
    trib_buf_fini(&b);
    if (rc) {
        TRIB_LOG(TRIB_LOG_ERROR, FACILITY, "writing %s: %s", c->path, trib_strerror(rc));
    }
    return rc;
}

/* Splits line into at most max words separated by single spaces; returns the count. */
static int split_words(char *line, char **w, int max)
{
    int n = 0;
    char *p = line;
    while (*p && n < max) {
        while (*p == ' ') {
            p++;
        }
        if (!*p) {
            break;
        }
        w[n++] = p;
        while (*p && *p != ' ') {
            p++;
        }
        if (*p) {
            *p++ = '\0';
        }
    }
    return *p ? max + 1 : n;
}

static int parse_i64(const char *s, int64_t min, int64_t max, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || errno || v < min || v > max) {
        return -EINVAL;
    }
    *out = v;
    return 0;
}

static int load(coll_cluster_t *c, FILE *fp, trib_error_t *err)
{
    char line[MAX_LINE + 2];
    int lineno = 0;
    bool have_version = false, have_id = false;
    while (fgets(line, sizeof(line), fp)) {
        lineno++;
        size_t len = strlen(line);
        if (len && line[len - 1] == '\n') {
            line[--len] = '\0';
        } else if (!feof(fp)) {
            return trib_error_setpos(err, TRIB_ECONFIG, c->path, lineno, 0, "line too long");
        }
        if (len == 0 || line[0] == '#') {
            continue;
        }
        char *colon = strstr(line, ": ");
        if (!colon) {
            return trib_error_setpos(err, TRIB_ECONFIG, c->path, lineno, 1,
                                     "expected 'key: value'");
        }
        *colon = '\0';
        const char *key = line;
        char *val = colon + 2;
        char *w[4];
        int64_t v;
        if (strcmp(key, "version") == 0) {
            if (parse_i64(val, FILE_VERSION, FILE_VERSION, &v) != 0) {
                return trib_error_setpos(err, TRIB_ECONFIG, c->path, lineno, 10,
                                         "unsupported version '%s' (expected %d)", val,
                                         FILE_VERSION);
            }
            have_version = true;
        } else if (strcmp(key, "cluster.id") == 0) {
            trib_uuid_t id;
            if (trib_uuid_parse(val, strlen(val), &id) != 0) {
                return trib_error_setpos(err, TRIB_ECONFIG, c->path, lineno, 13,
                                         "bad cluster id '%s'", val);
            }
            trib_uuid_format(&id, c->cluster_id);
            have_id = true;
        } else if (strcmp(key, "node.id") == 0) {
            if (parse_i64(val, 0, INT32_MAX, &v) != 0) {
                return trib_error_setpos(err, TRIB_ECONFIG, c->path, lineno, 10, "bad node id '%s'",
                                         val);
            }
            if (v != c->cfg.node_id) {
                return trib_error_setpos(err, TRIB_ECONFIG, c->path, lineno, 10,
                                         "this data directory belongs to node %" PRId64
                                         ", not node %" PRId32 " (start with --node-id %" PRId64
                                         " or use another data directory)",
                                         v, c->cfg.node_id, v);
            }
        } else if (strcmp(key, "producer.id.block") == 0) {
            if (parse_i64(val, 0, INT64_MAX / 2, &v) != 0) {
                return trib_error_setpos(err, TRIB_ECONFIG, c->path, lineno, 20,
                                         "bad producer id block '%s'", val);
            }
            c->pid_block = v;
        } else if (c->cfg.zookeeper && (strcmp(key, "topic") == 0 || strcmp(key, "config") == 0)) {
            /* ZooKeeper holds the topics: the file's stay as they are, unread. */
            c->file_topics += strcmp(key, "topic") == 0 ? 1 : 0;
        } else if (strcmp(key, "topic") == 0) {
            trib_uuid_t id;
            int64_t np;
            if (split_words(val, w, 3) != 3 || !coll_topic_name_valid(w[0], strlen(w[0])) ||
                trib_uuid_parse(w[1], strlen(w[1]), &id) != 0 ||
                parse_i64(w[2], 1, COLL_MAX_PARTITIONS_PER_TOPIC, &np) != 0) {
                return trib_error_setpos(err, TRIB_ECONFIG, c->path, lineno, 8,
                                         "expected 'topic: <name> <id> <partitions>'");
            }
            if (coll_cluster_topic(c, w[0], strlen(w[0]))) {
                return trib_error_setpos(err, TRIB_ECONFIG, c->path, lineno, 8,
                                         "topic '%s' listed twice", w[0]);
            }
            coll_topic_t *t = topic_new(c, w[0], strlen(w[0]), &id, (int32_t)np);
            if (!t || table_insert(c, t) != 0) {
                topic_free(t);
                return trib_error_set(err, -ENOMEM, "out of memory");
            }
        } else if (strcmp(key, "config") == 0) {
            if (split_words(val, w, 3) != 3) {
                return trib_error_setpos(err, TRIB_ECONFIG, c->path, lineno, 9,
                                         "expected 'config: <topic> <name> <value>'");
            }
            coll_topic_t *t = coll_cluster_topic(c, w[0], strlen(w[0]));
            int k = coll_tcfg_find(w[1], strlen(w[1]));
            coll_tcfg_val_t cv;
            char msg[256];
            if (!t) {
                return trib_error_setpos(err, TRIB_ECONFIG, c->path, lineno, 9,
                                         "config for unknown topic '%s'", w[0]);
            }
            if (k < 0) {
                TRIB_LOG(TRIB_LOG_WARN, FACILITY, "%s:%d: unknown topic config '%s' ignored",
                         c->path, lineno, w[1]);
                continue;
            }
            if (coll_tcfg_parse(k, w[2], strlen(w[2]), &cv, msg, sizeof(msg)) != 0) {
                return trib_error_setpos(err, TRIB_ECONFIG, c->path, lineno, 9, "%s", msg);
            }
            t->overrides.v[k] = cv;
            t->config_mask |= 1u << k;
            coll_tcfg_merge(&c->cfg.defaults, &t->overrides, t->config_mask, &t->config);
        } else {
            TRIB_LOG(TRIB_LOG_WARN, FACILITY, "%s:%d: unknown key '%s' ignored", c->path, lineno,
                     key);
        }
    }
    if (ferror(fp)) {
        return trib_error_set(err, -EIO, "%s: read error", c->path);
    }
    if (!have_version || !have_id) {
        return trib_error_setpos(err, TRIB_ECONFIG, c->path, lineno, 0,
                                 "missing 'version' or 'cluster.id'");
    }
    return 0;
}

/* ---- attaching logs ------------------------------------------------------------------- */

static int attach_partition(coll_cluster_t *c, coll_partition_t *p, bool startup, trib_error_t *err)
{
    coll_topic_t *t = p->topic;
    coll_log_config_t lc;
    coll_tcfg_to_log_config(&t->config, &lc);
    coll_log_t *log = NULL;
    int rc = coll_storage_get_log(c->st, t->name, p->index, &log);
    if (rc == 0) {
        rc = coll_log_set_config(log, &lc);
        if (rc) {
            return trib_error_set(err, rc, "%s-%d: applying the topic config: %s", t->name,
                                  (int)p->index, trib_strerror(rc));
        }
        if (!startup) {
            /* A log left behind by a deleted topic of the same name: start it afresh. */
            coll_log_truncate_fully(log, 0);
        }
    } else {
        rc = coll_storage_create_log(c->st, t->name, p->index, &lc, t->id.b, &log, err);
        if (rc) {
            return rc;
        }
    }
    /*
     * One replica: the high watermark is the log end, on every append and
     * after recovery (everything the storage recovered is the log).
     */
    coll_log_set_high_watermark(log, coll_log_end_offset(log));
    p->log = log;
    p->leader_epoch = 0;
    return 0;
}

static void run_added(coll_cluster_t *c, coll_topic_t *t, int32_t from)
{
    if (!c->hooks.partition_added) {
        return;
    }
    for (int32_t i = from; i < t->npartitions; i++) {
        c->hooks.partition_added(c->hooks.arg, t->partitions[i]);
    }
}

static void run_removing(coll_cluster_t *c, coll_topic_t *t)
{
    if (!c->hooks.partition_removing) {
        return;
    }
    for (int32_t i = 0; i < t->npartitions; i++) {
        c->hooks.partition_removing(c->hooks.arg, t->partitions[i]);
    }
}

typedef struct orphan_ctx {
    coll_cluster_t *c;
    int rc;
    size_t adopted;
} orphan_ctx_t;

static void find_orphan(coll_log_t *log, void *arg)
{
    orphan_ctx_t *o = arg;
    coll_cluster_t *c = o->c;
    const char *name = coll_log_topic(log);
    int32_t part = coll_log_partition(log);
    if (o->rc || part < 0 || part >= COLL_MAX_PARTITIONS_PER_TOPIC) {
        return;
    }
    coll_topic_t *t = coll_cluster_topic(c, name, strlen(name));
    if (!t) {
        trib_uuid_t id;
        if (coll_log_topic_id(log, id.b) != 0) {
            coll_uuid_random(&id);
        }
        t = topic_new(c, name, strlen(name), &id, 0);
        if (!t || table_insert(c, t) != 0) {
            topic_free(t);
            o->rc = -ENOMEM;
            return;
        }
        o->adopted++;
    }
    if (part >= t->npartitions) {
        coll_partition_t **np = realloc(t->partitions, (size_t)(part + 1) * sizeof(*np));
        if (!np) {
            o->rc = -ENOMEM;
            return;
        }
        t->partitions = np;
        for (int32_t i = t->npartitions; i <= part; i++) {
            coll_partition_t *p = partition_new(c, t, i);
            if (!p) {
                o->rc = -ENOMEM;
                return;
            }
            t->partitions[i] = p;
            t->npartitions = i + 1;
            c->npartitions++;
        }
    }
}

typedef struct unknown_ctx {
    coll_cluster_t *c;
    size_t n;
} unknown_ctx_t;

static void count_unknown(coll_log_t *log, void *arg)
{
    unknown_ctx_t *u = arg;
    const char *name = coll_log_topic(log);
    coll_topic_t *t = coll_cluster_topic(u->c, name, strlen(name));
    if (!t || coll_log_partition(log) >= t->npartitions) {
        if (u->n++ < 10) {
            TRIB_LOG(TRIB_LOG_WARN, FACILITY,
                     "log %s-%d is not in the cluster metadata (a deleted topic?): not served",
                     name, (int)coll_log_partition(log));
        }
    }
}

/* ---- open / free --------------------------------------------------------------------- */

int coll_cluster_open(coll_storage_t *st, const coll_cluster_config_t *cfg, coll_cluster_t **out,
                      trib_error_t *err)
{
    *out = NULL;
    coll_cluster_t *c = calloc(1, sizeof(*c));
    if (!c) {
        return trib_error_set(err, -ENOMEM, "out of memory");
    }
    c->st = st;
    c->cfg = *cfg;
    size_t plen = strlen(cfg->data_dir) + sizeof(COLL_CLUSTER_FILE) + 2;
    c->path = malloc(plen);
    if (!c->path) {
        free(c);
        return trib_error_set(err, -ENOMEM, "out of memory");
    }
    snprintf(c->path, plen, "%s/%s", cfg->data_dir, COLL_CLUSTER_FILE);
    int rc = 0;
    bool first_start = false;
    FILE *fp = fopen(c->path, "re");
    if (fp) {
        rc = load(c, fp, err);
        fclose(fp);
        if (rc) {
            goto fail;
        }
    } else if (errno == ENOENT) {
        first_start = true;
        trib_uuid_t id;
        coll_uuid_random(&id);
        trib_uuid_format(&id, c->cluster_id);
    } else {
        rc = trib_error_set(err, -errno, "%s: %s", c->path, strerror(errno));
        goto fail;
    }

    if (c->cfg.zookeeper) {
        /*
         * The zookeeper backend: no topic from the file, no adoption, no log
         * attached here (zk_topics.c attaches this node's replicas as it
         * reads them). The file is written only when it is new.
         */
        if (c->file_topics) {
            TRIB_LOG(TRIB_LOG_INFO, FACILITY,
                     "%s lists %zu topics: not used with the zookeeper backend (ZooKeeper holds "
                     "the topics; their logs are left alone)",
                     c->path, c->file_topics);
        }
        if (first_start && (rc = save(c)) != 0) {
            rc = trib_error_set(err, rc, "%s: %s", c->path, trib_strerror(rc));
            goto fail;
        }
        TRIB_LOG(TRIB_LOG_INFO, FACILITY, "cluster %s, node %" PRId32 ": topics from ZooKeeper",
                 c->cluster_id, c->cfg.node_id);
        *out = c;
        return 0;
    }
    if (first_start) {
        orphan_ctx_t o = {c, 0, 0};
        coll_storage_foreach(st, find_orphan, &o);
        if (o.rc) {
            rc = trib_error_set(err, o.rc, "out of memory");
            goto fail;
        }
        if (o.adopted) {
            TRIB_LOG(TRIB_LOG_INFO, FACILITY,
                     "no %s: adopted %zu topics found in the data directory", COLL_CLUSTER_FILE,
                     o.adopted);
        }
    } else {
        unknown_ctx_t u = {c, 0};
        coll_storage_foreach(st, count_unknown, &u);
        if (u.n > 10) {
            TRIB_LOG(TRIB_LOG_WARN, FACILITY, "%zu logs in all are not in the cluster metadata",
                     u.n);
        }
    }
    /* Never reuse a producer id that a previous run may have handed out. */
    c->next_pid = c->pid_block;
    if ((rc = save(c)) != 0) {
        rc = trib_error_set(err, rc, "%s: %s", c->path, trib_strerror(rc));
        goto fail;
    }
    size_t n = c->ntopics;
    coll_topic_t **topics = malloc((n ? n : 1) * sizeof(*topics));
    if (!topics) {
        rc = trib_error_set(err, -ENOMEM, "out of memory");
        goto fail;
    }
    coll_cluster_topics(c, topics);
    for (size_t i = 0; i < n && rc == 0; i++) {
        for (int32_t k = 0; k < topics[i]->npartitions && rc == 0; k++) {
            rc = attach_partition(c, topics[i]->partitions[k], true, err);
        }
    }
    free(topics);
    if (rc) {
        goto fail;
    }
    TRIB_LOG(TRIB_LOG_INFO, FACILITY, "cluster %s, node %" PRId32 ": %zu topics, %zu partitions",
             c->cluster_id, c->cfg.node_id, c->ntopics, c->npartitions);
    *out = c;
    return 0;
fail:
    if (err && err->file == c->path) {
        /* The path dies with the cluster: fold the position into the message. */
        char msg[sizeof(err->msg)];
        snprintf(msg, sizeof(msg), "%s", err->msg);
        trib_error_set(err, err->code, "%s:%d:%d: %s", c->path, err->line, err->col, msg);
    }
    coll_cluster_free(c);
    return rc;
}

void coll_cluster_free(coll_cluster_t *c)
{
    if (!c) {
        return;
    }
    for (size_t b = 0; b < c->nbuckets; b++) {
        coll_topic_t *t = c->buckets[b];
        while (t) {
            coll_topic_t *next = t->hnext_;
            topic_free(t);
            t = next;
        }
    }
    free(c->buckets);
    free(c->path);
    free(c);
}

void coll_cluster_set_hooks(coll_cluster_t *c, const coll_cluster_hooks_t *hooks)
{
    c->hooks = *hooks;
}

const coll_cluster_config_t *coll_cluster_config(const coll_cluster_t *c)
{
    return &c->cfg;
}

const char *coll_cluster_id(const coll_cluster_t *c)
{
    const char *id = c->view.cluster_id ? c->view.cluster_id(c->view.arg) : NULL;
    return id ? id : c->cluster_id;
}

int32_t coll_cluster_node_id(const coll_cluster_t *c)
{
    return c->cfg.node_id;
}

int32_t coll_cluster_controller_id(const coll_cluster_t *c)
{
    if (c->view.controller_id) {
        return c->view.controller_id(c->view.arg);
    }
    return c->cfg.node_id;
}

void coll_cluster_set_view(coll_cluster_t *c, const coll_cluster_view_t *v)
{
    if (v) {
        c->view = *v;
    } else {
        memset(&c->view, 0, sizeof(c->view));
    }
}

size_t coll_cluster_broker_count(const coll_cluster_t *c)
{
    return c->view.brokers ? c->view.brokers(c->view.arg, NULL, 0) : 1;
}

size_t coll_cluster_brokers(const coll_cluster_t *c, coll_broker_info_t *out, size_t max)
{
    if (c->view.brokers) {
        return c->view.brokers(c->view.arg, out, max);
    }
    if (max == 0) {
        return 0;
    }
    out[0].id = c->cfg.node_id;
    out[0].host = c->cfg.host;
    out[0].port = c->cfg.port;
    out[0].rack = c->cfg.rack;
    return 1;
}

int coll_cluster_broker(const coll_cluster_t *c, int32_t id, coll_broker_info_t *out)
{
    size_t n = coll_cluster_broker_count(c);
    coll_broker_info_t small[16];
    coll_broker_info_t *all = n <= 16 ? small : malloc(n * sizeof(*all));
    if (!all) {
        return -ENOMEM;
    }
    n = coll_cluster_brokers(c, all, n);
    int rc = TRIB_ENOT_FOUND;
    for (size_t i = 0; i < n; i++) {
        if (all[i].id == id) {
            *out = all[i];
            rc = 0;
            break;
        }
    }
    if (all != small) {
        free(all);
    }
    return rc;
}

bool coll_cluster_replicated(const coll_cluster_t *c)
{
    return c->view.brokers != NULL;
}

bool coll_cluster_may_lead(const coll_cluster_t *c, const coll_partition_t *p)
{
    return !c->view.may_lead || c->view.may_lead(c->view.arg, p);
}

bool coll_partition_in_isr(const coll_partition_t *p, int32_t id)
{
    for (int32_t i = 0; i < p->nisr; i++) {
        if (p->isr[i] == id) {
            return true;
        }
    }
    return false;
}

bool coll_partition_is_replica(const coll_partition_t *p, int32_t id)
{
    for (int32_t i = 0; i < p->nreplicas; i++) {
        if (p->replicas[i] == id) {
            return true;
        }
    }
    return false;
}

int coll_cluster_alter_isr(coll_cluster_t *c, coll_partition_t *p, const int32_t *isr, int32_t n,
                           coll_isr_cb cb, void *arg)
{
    if (!c->view.alter_isr) {
        return -ENOTSUP;
    }
    if (!p || !isr || n <= 0 || !cb) {
        return -EINVAL;
    }
    return c->view.alter_isr(c->view.arg, p, isr, n, cb, arg);
}

coll_storage_t *coll_cluster_storage(const coll_cluster_t *c)
{
    return c->st;
}

void coll_cluster_set_endpoint(coll_cluster_t *c, const char *host, int32_t port)
{
    c->cfg.host = host;
    c->cfg.port = port;
}

/* ---- admin operations ----------------------------------------------------------------- */

static void set_result(coll_admin_result_t *res, int16_t code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_result(coll_admin_result_t *res, int16_t code, const char *fmt, ...)
{
    res->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(res->msg, sizeof(res->msg), fmt, ap);
    va_end(ap);
}

static void clear_result(coll_admin_result_t *res)
{
    res->code = TRIB_KAFKA_NONE;
    res->msg[0] = '\0';
}

/* Applies config entries to a copy of the overrides; fills res on the first bad entry. */
static bool apply_configs(const coll_cluster_t *c, const coll_topic_t *t,
                          const coll_config_kv_t *cfgs, const int8_t *ops, size_t n, bool replace,
                          coll_tcfg_t *ov, uint32_t *mask, coll_admin_result_t *res)
{
    if (replace) {
        *mask = 0;
    }
    for (size_t i = 0; i < n; i++) {
        trib_kstr_t name = cfgs[i].name;
        trib_kstr_t value = cfgs[i].value;
        int8_t op = ops ? ops[i] : COLL_CONFIG_OP_SET;
        if (name.len < 0) {
            set_result(res, TRIB_KAFKA_INVALID_REQUEST, "Null config name");
            return false;
        }
        for (size_t j = 0; j < i; j++) {
            if (cfgs[j].name.len == name.len &&
                memcmp(cfgs[j].name.ptr, name.ptr, (size_t)name.len) == 0) {
                set_result(res, TRIB_KAFKA_INVALID_REQUEST, "Duplicate config name %.*s",
                           (int)name.len, name.ptr);
                return false;
            }
        }
        int k = coll_tcfg_find(name.ptr, (size_t)name.len);
        if (k < 0) {
            set_result(res, TRIB_KAFKA_INVALID_CONFIG, "Unknown topic config name: %.*s",
                       (int)name.len, name.ptr);
            return false;
        }
        coll_tcfg_val_t v;
        char msg[256];
        switch (op) {
        case COLL_CONFIG_OP_SET:
            if (value.len < 0) {
                /* AlterConfigs with a null value (and Kafka's SET of null) resets it. */
                *mask &= ~(1u << k);
                continue;
            }
            if (coll_tcfg_parse(k, value.ptr, (size_t)value.len, &v, msg, sizeof(msg)) != 0) {
                set_result(res, TRIB_KAFKA_INVALID_CONFIG, "%s", msg);
                return false;
            }
            ov->v[k] = v;
            *mask |= 1u << k;
            break;
        case COLL_CONFIG_OP_DELETE:
            *mask &= ~(1u << k);
            break;
        case COLL_CONFIG_OP_APPEND:
        case COLL_CONFIG_OP_SUBTRACT: {
            if (coll_tcfg_defs[k].type != COLL_CONFIG_TYPE_LIST) {
                set_result(res, TRIB_KAFKA_INVALID_CONFIG,
                           "Config value append is not allowed for config key: %s",
                           coll_tcfg_defs[k].name);
                return false;
            }
            if (value.len < 0 ||
                coll_tcfg_parse(k, value.ptr, (size_t)value.len, &v, msg, sizeof(msg)) != 0) {
                set_result(res, TRIB_KAFKA_INVALID_CONFIG, "%s",
                           value.len < 0 ? "Null value not supported for APPEND/SUBTRACT" : msg);
                return false;
            }
            int64_t cur = (*mask & (1u << k)) ? ov->v[k].i : t->config.v[k].i;
            int64_t nv = op == COLL_CONFIG_OP_APPEND ? (cur | v.i) : (cur & ~v.i);
            if (nv == 0) {
                set_result(res, TRIB_KAFKA_INVALID_CONFIG,
                           "Invalid value for configuration cleanup.policy: the list would be "
                           "empty");
                return false;
            }
            ov->v[k].i = nv;
            *mask |= 1u << k;
            break;
        }
        default:
            set_result(res, TRIB_KAFKA_INVALID_REQUEST, "Unknown config operation %d", (int)op);
            return false;
        }
    }
    (void)c;
    return true;
}

static int16_t storage_error(int rc)
{
    return rc == -ENOMEM ? TRIB_KAFKA_UNKNOWN_SERVER_ERROR : TRIB_KAFKA_KAFKA_STORAGE_ERROR;
}

/*
 * The checks of CreateTopics, in Kafka's order; partitions and replication
 * get their defaults. `single`: this node is the only broker (local).
 */
static bool check_create(const coll_cluster_t *c, const char *name, size_t len,
                         int32_t *partitions_io, int16_t *replication_io,
                         const coll_config_kv_t *cfgs, size_t ncfgs, bool single, coll_tcfg_t *ov,
                         uint32_t *mask, coll_admin_result_t *res)
{
    int32_t partitions = *partitions_io;
    int16_t replication = *replication_io;
    if (!coll_topic_name_valid(name, len)) {
        set_result(res, TRIB_KAFKA_INVALID_TOPIC_EXCEPTION,
                   "Topic name \"%.*s\" is illegal: it must be 1 to 249 characters of ASCII "
                   "alphanumerics, '.', '_' and '-' (and not \".\" or \"..\")",
                   (int)(len > 300 ? 300 : len), name ? name : "");
        return false;
    }
    if (coll_cluster_topic(c, name, len)) {
        set_result(res, TRIB_KAFKA_TOPIC_ALREADY_EXISTS, "Topic '%.*s' already exists.", (int)len,
                   name);
        return false;
    }
    if (partitions == -1) {
        partitions = c->cfg.default_partitions;
    }
    if (replication == -1) {
        replication = c->cfg.default_replication_factor;
    }
    *partitions_io = partitions;
    *replication_io = replication;
    if (partitions <= 0 || partitions > COLL_MAX_PARTITIONS_PER_TOPIC) {
        set_result(res, TRIB_KAFKA_INVALID_PARTITIONS,
                   "Number of partitions must be between 1 and %d, not %" PRId32 ".",
                   COLL_MAX_PARTITIONS_PER_TOPIC, partitions);
        return false;
    }
    if (replication <= 0) {
        set_result(res, TRIB_KAFKA_INVALID_REPLICATION_FACTOR,
                   "Replication factor must be larger than 0, or -1 to use the default value.");
        return false;
    }
    if (single && replication > 1) {
        set_result(res, TRIB_KAFKA_INVALID_REPLICATION_FACTOR,
                   "Unable to replicate the partition %d time(s): The target replication factor "
                   "of %d cannot be reached because only 1 broker(s) are registered.",
                   (int)replication, (int)replication);
        return false;
    }
    if (single && c->cfg.max_partitions &&
        c->npartitions + (size_t)partitions > c->cfg.max_partitions) {
        set_result(res, TRIB_KAFKA_POLICY_VIOLATION,
                   "The node hosts %zu partitions; %" PRId32
                   " more would exceed max_partitions (%zu).",
                   c->npartitions, partitions, c->cfg.max_partitions);
        return false;
    }
    coll_tcfg_init(ov);
    *mask = 0;
    coll_topic_t probe;
    memset(&probe, 0, sizeof(probe));
    probe.config = c->cfg.defaults;
    return apply_configs(c, &probe, cfgs, NULL, ncfgs, false, ov, mask, res);
}

void coll_cluster_create_topic(coll_cluster_t *c, const char *name, size_t len, int32_t partitions,
                               int16_t replication, const coll_config_kv_t *cfgs, size_t ncfgs,
                               bool validate_only, coll_topic_t **out, coll_admin_result_t *res)
{
    clear_result(res);
    if (out) {
        *out = NULL;
    }
    coll_tcfg_t ov;
    uint32_t mask = 0;
    if (c->cfg.zookeeper) {
        /* The zookeeper backend: start the creation; the topic comes from the watches. */
        if (!check_create(c, name, len, &partitions, &replication, cfgs, ncfgs, false, &ov, &mask,
                          res) ||
            validate_only) {
            return;
        }
        if (c->admin.create_topic) {
            c->admin.create_topic(c->admin.arg, name, len, partitions, replication, NULL, &ov, mask,
                                  false, NULL, NULL);
        }
        set_result(res, TRIB_KAFKA_LEADER_NOT_AVAILABLE,
                   "Topic '%.*s' is being created: its partitions have no leader yet.", (int)len,
                   name);
        return;
    }
    if (!check_create(c, name, len, &partitions, &replication, cfgs, ncfgs, true, &ov, &mask,
                      res)) {
        return;
    }
    if (validate_only) {
        return;
    }
    trib_uuid_t id;
    coll_uuid_random(&id);
    coll_topic_t *t = topic_new(c, name, len, &id, partitions);
    if (!t || table_insert(c, t) != 0) {
        topic_free(t);
        set_result(res, TRIB_KAFKA_UNKNOWN_SERVER_ERROR, "out of memory");
        return;
    }
    t->overrides = ov;
    t->config_mask = mask;
    coll_tcfg_merge(&c->cfg.defaults, &t->overrides, mask, &t->config);
    int rc = save(c);
    if (rc) {
        table_remove(c, t);
        topic_free(t);
        set_result(res, storage_error(rc), "Writing the cluster metadata failed: %s",
                   trib_strerror(rc));
        return;
    }
    trib_error_t err;
    trib_error_clear(&err);
    for (int32_t i = 0; i < partitions; i++) {
        rc = attach_partition(c, t->partitions[i], false, &err);
        if (rc) {
            /* Undo: the topic goes, its checkpoint entry too. */
            TRIB_LOG(TRIB_LOG_ERROR, FACILITY, "creating topic %s: %s", t->name, err.msg);
            set_result(res, storage_error(rc), "Creating the partition logs failed: %s", err.msg);
            table_remove(c, t);
            topic_free(t);
            save(c);
            return;
        }
    }
    TRIB_LOG(TRIB_LOG_INFO, FACILITY, "created topic %s with %" PRId32 " partitions", t->name,
             partitions);
    run_added(c, t, 0);
    if (out) {
        *out = t;
    }
}

coll_topic_t *coll_cluster_auto_create(coll_cluster_t *c, const char *name, size_t len,
                                       int16_t *error)
{
    if (!c->cfg.auto_create_topics) {
        *error = TRIB_KAFKA_UNKNOWN_TOPIC_OR_PARTITION;
        return NULL;
    }
    coll_admin_result_t res;
    coll_topic_t *t = NULL;
    coll_cluster_create_topic(c, name, len, -1, -1, NULL, 0, false, &t, &res);
    if (res.code == TRIB_KAFKA_TOPIC_ALREADY_EXISTS) {
        t = coll_cluster_topic(c, name, len);
        res.code = TRIB_KAFKA_NONE;
    }
    *error = res.code;
    return t;
}

void coll_cluster_delete_topic(coll_cluster_t *c, coll_topic_t *t, coll_admin_result_t *res)
{
    clear_result(res);
    if (c->cfg.zookeeper) {
        set_result(res, TRIB_KAFKA_UNKNOWN_SERVER_ERROR,
                   "The zookeeper backend changes topics asynchronously only.");
        return;
    }
    table_remove(c, t);
    int rc = save(c);
    if (rc) {
        table_insert(c, t);
        set_result(res, storage_error(rc), "Writing the cluster metadata failed: %s",
                   trib_strerror(rc));
        return;
    }
    run_removing(c, t);
    for (int32_t i = 0; i < t->npartitions; i++) {
        coll_log_t *log = t->partitions[i]->log;
        /* The directory is renamed "...-delete" now and removed on the thread pool. */
        if (log) {
            t->partitions[i]->log = NULL;
            int trc = coll_storage_delete_log(c->st, log, NULL, NULL);
            if (trc) {
                TRIB_LOG(TRIB_LOG_WARN, FACILITY, "deleting %s-%d: %s", t->name, (int)i,
                         trib_strerror(trc));
            }
        }
    }
    TRIB_LOG(TRIB_LOG_INFO, FACILITY, "deleted topic %s", t->name);
    topic_free(t);
}

void coll_cluster_create_partitions(coll_cluster_t *c, coll_topic_t *t, int32_t total,
                                    bool validate_only, coll_admin_result_t *res)
{
    clear_result(res);
    if (c->cfg.zookeeper) {
        set_result(res, TRIB_KAFKA_UNKNOWN_SERVER_ERROR,
                   "The zookeeper backend changes topics asynchronously only.");
        return;
    }
    if (total <= t->npartitions) {
        set_result(res, TRIB_KAFKA_INVALID_PARTITIONS,
                   total == t->npartitions ? "Topic already has %" PRId32 " partitions."
                                           : "Topic currently has %" PRId32
                                             " partitions, which is higher than the "
                                             "requested count.",
                   t->npartitions);
        return;
    }
    if (total > COLL_MAX_PARTITIONS_PER_TOPIC) {
        set_result(res, TRIB_KAFKA_INVALID_PARTITIONS, "Number of partitions must be at most %d.",
                   COLL_MAX_PARTITIONS_PER_TOPIC);
        return;
    }
    size_t add = (size_t)(total - t->npartitions);
    if (c->cfg.max_partitions && c->npartitions + add > c->cfg.max_partitions) {
        set_result(res, TRIB_KAFKA_POLICY_VIOLATION,
                   "%zu more partitions would exceed max_partitions (%zu).", add,
                   c->cfg.max_partitions);
        return;
    }
    if (validate_only) {
        return;
    }
    coll_partition_t **np = realloc(t->partitions, (size_t)total * sizeof(*np));
    if (!np) {
        set_result(res, TRIB_KAFKA_UNKNOWN_SERVER_ERROR, "out of memory");
        return;
    }
    t->partitions = np;
    int32_t old = t->npartitions;
    for (int32_t i = old; i < total; i++) {
        coll_partition_t *p = partition_new(c, t, i);
        if (!p) {
            for (int32_t k = old; k < i; k++) {
                partition_free(t->partitions[k]);
            }
            set_result(res, TRIB_KAFKA_UNKNOWN_SERVER_ERROR, "out of memory");
            return;
        }
        t->partitions[i] = p;
    }
    t->npartitions = total;
    c->npartitions += add;
    int rc = save(c);
    trib_error_t err;
    trib_error_clear(&err);
    for (int32_t i = old; i < total && rc == 0; i++) {
        rc = attach_partition(c, t->partitions[i], false, &err);
        if (rc) {
            TRIB_LOG(TRIB_LOG_ERROR, FACILITY, "adding partitions to %s: %s", t->name, err.msg);
        }
    }
    if (rc) {
        for (int32_t k = old; k < total; k++) {
            free(t->partitions[k]);
        }
        t->npartitions = old;
        c->npartitions -= add;
        save(c);
        set_result(res, storage_error(rc), "Adding partitions failed: %s", trib_strerror(rc));
        return;
    }
    TRIB_LOG(TRIB_LOG_INFO, FACILITY, "topic %s now has %" PRId32 " partitions", t->name, total);
    run_added(c, t, old);
}

void coll_cluster_alter_configs(coll_cluster_t *c, coll_topic_t *t, const coll_config_kv_t *cfgs,
                                const int8_t *ops, size_t n, bool replace, bool validate_only,
                                coll_admin_result_t *res)
{
    clear_result(res);
    if (c->cfg.zookeeper) {
        set_result(res, TRIB_KAFKA_UNKNOWN_SERVER_ERROR,
                   "The zookeeper backend changes topics asynchronously only.");
        return;
    }
    coll_tcfg_t ov = t->overrides;
    uint32_t mask = t->config_mask;
    if (!apply_configs(c, t, cfgs, ops, n, replace, &ov, &mask, res) || validate_only) {
        return;
    }
    coll_tcfg_t old_ov = t->overrides;
    uint32_t old_mask = t->config_mask;
    t->overrides = ov;
    t->config_mask = mask;
    int rc = save(c);
    if (rc) {
        t->overrides = old_ov;
        t->config_mask = old_mask;
        set_result(res, storage_error(rc), "Writing the cluster metadata failed: %s",
                   trib_strerror(rc));
        return;
    }
    coll_tcfg_merge(&c->cfg.defaults, &t->overrides, t->config_mask, &t->config);
    coll_log_config_t lc;
    coll_tcfg_to_log_config(&t->config, &lc);
    for (int32_t i = 0; i < t->npartitions; i++) {
        if (t->partitions[i]->log) {
            int lrc = coll_log_set_config(t->partitions[i]->log, &lc);
            if (lrc) {
                TRIB_LOG(TRIB_LOG_ERROR, FACILITY, "%s-%d: applying the config: %s", t->name,
                         (int)i, trib_strerror(lrc));
            }
        }
    }
    TRIB_LOG(TRIB_LOG_INFO, FACILITY, "altered the config of topic %s", t->name);
}

int coll_cluster_next_producer_id(coll_cluster_t *c, int64_t *pid)
{
    if (c->admin.next_producer_id) {
        return c->admin.next_producer_id(c->admin.arg, pid);
    }
    if (c->next_pid >= c->pid_block) {
        int64_t old = c->pid_block;
        c->pid_block = c->next_pid + COLL_PRODUCER_ID_BLOCK;
        int rc = save(c);
        if (rc) {
            c->pid_block = old;
            return rc;
        }
    }
    *pid = c->next_pid++;
    return 0;
}

/* ---- the zookeeper backend's entry points (cluster_int.h) ------------------------------- */

void coll_cluster_set_admin(coll_cluster_t *c, const coll_cluster_admin_t *a)
{
    if (a) {
        c->admin = *a;
    } else {
        memset(&c->admin, 0, sizeof(c->admin));
    }
}

bool coll_cluster_admin_async(const coll_cluster_t *c)
{
    return c->cfg.zookeeper;
}

static void admin_unavailable(coll_admin_cb cb, void *arg)
{
    coll_admin_result_t res;
    set_result(&res, TRIB_KAFKA_NOT_CONTROLLER,
               "This broker is not connected to the cluster yet: retry on another broker.");
    cb(arg, &res);
}

void coll_cluster_create_topic_async(coll_cluster_t *c, const char *name, size_t len,
                                     int32_t partitions, int16_t replication,
                                     const int32_t *assignment, const coll_config_kv_t *cfgs,
                                     size_t ncfgs, bool validate_only, coll_admin_cb cb, void *arg)
{
    if (!c->admin.create_topic) {
        admin_unavailable(cb, arg);
        return;
    }
    coll_admin_result_t res;
    clear_result(&res);
    coll_tcfg_t ov;
    uint32_t mask = 0;
    int32_t p = assignment ? 1 : partitions;
    int16_t r = assignment ? 1 : replication;
    if (!check_create(c, name, len, &p, &r, cfgs, ncfgs, false, &ov, &mask, &res)) {
        cb(arg, &res);
        return;
    }
    c->admin.create_topic(c->admin.arg, name, len, assignment ? partitions : p,
                          assignment ? replication : r, assignment, &ov, mask, validate_only, cb,
                          arg);
}

void coll_cluster_delete_topic_async(coll_cluster_t *c, coll_topic_t *t, coll_admin_cb cb,
                                     void *arg)
{
    if (!c->admin.delete_topic) {
        admin_unavailable(cb, arg);
        return;
    }
    c->admin.delete_topic(c->admin.arg, t, cb, arg);
}

void coll_cluster_create_partitions_async(coll_cluster_t *c, coll_topic_t *t, int32_t total,
                                          bool validate_only, coll_admin_cb cb, void *arg)
{
    if (!c->admin.create_partitions) {
        admin_unavailable(cb, arg);
        return;
    }
    coll_admin_result_t res;
    clear_result(&res);
    if (total <= t->npartitions) {
        set_result(&res, TRIB_KAFKA_INVALID_PARTITIONS,
                   total == t->npartitions ? "Topic already has %" PRId32 " partitions."
                                           : "Topic currently has %" PRId32
                                             " partitions, which is higher than the "
                                             "requested count.",
                   t->npartitions);
        cb(arg, &res);
        return;
    }
    if (total > COLL_MAX_PARTITIONS_PER_TOPIC) {
        set_result(&res, TRIB_KAFKA_INVALID_PARTITIONS, "Number of partitions must be at most %d.",
                   COLL_MAX_PARTITIONS_PER_TOPIC);
        cb(arg, &res);
        return;
    }
    c->admin.create_partitions(c->admin.arg, t, total, validate_only, cb, arg);
}

void coll_cluster_elect_preferred_async(coll_cluster_t *c, coll_topic_t *t, int32_t partition,
                                        coll_admin_cb cb, void *arg)
{
    if (!c->admin.elect_preferred) {
        admin_unavailable(cb, arg);
        return;
    }
    c->admin.elect_preferred(c->admin.arg, t, partition, cb, arg);
}

void coll_cluster_reassign_async(coll_cluster_t *c, coll_topic_t *t, coll_reassign_part_t *parts,
                                 size_t n, coll_admin_cb cb, void *arg)
{
    if (!c->admin.reassign) {
        for (size_t i = 0; i < n; i++) {
            parts[i].code = TRIB_KAFKA_INVALID_REPLICA_ASSIGNMENT;
            snprintf(parts[i].msg, sizeof(parts[i].msg),
                     "A single node has no other broker to move replicas to.");
        }
        coll_admin_result_t res = {TRIB_KAFKA_NONE, ""};
        cb(arg, &res);
        return;
    }
    c->admin.reassign(c->admin.arg, t, parts, n, cb, arg);
}

bool coll_cluster_reassignment(const coll_cluster_t *c, const coll_topic_t *t, int32_t partition,
                               int32_t *adding, int32_t *nadding, int32_t *removing,
                               int32_t *nremoving)
{
    *nadding = *nremoving = 0;
    if (!c->admin.reassignment) {
        return false;
    }
    return c->admin.reassignment(c->admin.arg, t, partition, adding, nadding, removing, nremoving);
}

void coll_cluster_alter_configs_async(coll_cluster_t *c, coll_topic_t *t,
                                      const coll_config_kv_t *cfgs, const int8_t *ops, size_t n,
                                      bool replace, bool validate_only, coll_admin_cb cb, void *arg)
{
    if (!c->admin.alter_configs) {
        admin_unavailable(cb, arg);
        return;
    }
    coll_admin_result_t res;
    clear_result(&res);
    coll_tcfg_t ov = t->overrides;
    uint32_t mask = t->config_mask;
    if (!apply_configs(c, t, cfgs, ops, n, replace, &ov, &mask, &res) || validate_only) {
        cb(arg, &res);
        return;
    }
    c->admin.alter_configs(c->admin.arg, t, &ov, mask, cb, arg);
}

bool coll_cluster_parse_configs(const coll_cluster_t *c, const coll_topic_t *t,
                                const coll_config_kv_t *cfgs, const int8_t *ops, size_t n,
                                bool replace, coll_tcfg_t *ov, uint32_t *mask,
                                coll_admin_result_t *res)
{
    clear_result(res);
    coll_topic_t probe;
    if (!t) {
        memset(&probe, 0, sizeof(probe));
        probe.config = c->cfg.defaults;
        coll_tcfg_init(ov);
        *mask = 0;
        t = &probe;
    }
    return apply_configs(c, t, cfgs, ops, n, replace, ov, mask, res);
}

/* A partition of the zookeeper backend before its state is read: no replica, no leader. */
static coll_partition_t *zk_partition_new(coll_topic_t *t, int32_t index)
{
    coll_partition_t *p = calloc(1, sizeof(*p));
    if (!p) {
        return NULL;
    }
    p->topic = t;
    p->index = index;
    p->leader = -1;
    p->leader_epoch = -1;
    p->partition_epoch = -1;
    return p;
}

coll_topic_t *coll_cluster_zk_add_topic(coll_cluster_t *c, const char *name, size_t len,
                                        const trib_uuid_t *id, int32_t npart)
{
    if (coll_cluster_topic(c, name, len)) {
        return NULL;
    }
    coll_topic_t *t = topic_new(c, name, len, id, 0);
    if (!t) {
        return NULL;
    }
    if (table_insert(c, t) != 0) {
        topic_free(t);
        return NULL;
    }
    if (coll_cluster_zk_grow_topic(c, t, npart) != 0) {
        table_remove(c, t);
        topic_free(t);
        return NULL;
    }
    return t;
}

int coll_cluster_zk_grow_topic(coll_cluster_t *c, coll_topic_t *t, int32_t total)
{
    if (total <= t->npartitions) {
        return 0;
    }
    coll_partition_t **np = realloc(t->partitions, (size_t)total * sizeof(*np));
    if (!np) {
        return -ENOMEM;
    }
    t->partitions = np;
    for (int32_t i = t->npartitions; i < total; i++) {
        coll_partition_t *p = zk_partition_new(t, i);
        if (!p) {
            return -ENOMEM;
        }
        t->partitions[i] = p;
        t->npartitions = i + 1;
        c->npartitions++;
    }
    return 0;
}

void coll_cluster_zk_remove_topic(coll_cluster_t *c, coll_topic_t *t, bool delete_logs)
{
    table_remove(c, t);
    for (int32_t i = 0; i < t->npartitions; i++) {
        coll_partition_t *p = t->partitions[i];
        if (!p->log) {
            continue;
        }
        if (c->hooks.partition_removing) {
            c->hooks.partition_removing(c->hooks.arg, p);
        }
        coll_log_t *log = p->log;
        p->log = NULL;
        if (delete_logs) {
            int trc = coll_storage_delete_log(c->st, log, NULL, NULL);
            if (trc) {
                TRIB_LOG(TRIB_LOG_WARN, FACILITY, "deleting %s-%d: %s", t->name, (int)i,
                         trib_strerror(trc));
            }
        }
    }
    topic_free(t);
}

int coll_cluster_zk_set_replicas(coll_partition_t *p, const int32_t *ids, int32_t n)
{
    if (n == p->nreplicas && memcmp(p->replicas, ids, (size_t)n * sizeof(*ids)) == 0) {
        return 0;
    }
    int32_t *r = malloc((size_t)(n > 0 ? n : 1) * sizeof(*r));
    if (!r) {
        return -ENOMEM;
    }
    memcpy(r, ids, (size_t)n * sizeof(*r));
    free(p->replicas);
    p->replicas = r;
    p->nreplicas = n;
    return 0;
}

int coll_cluster_zk_host(coll_cluster_t *c, coll_partition_t *p, trib_error_t *err)
{
    if (p->log) {
        return 0;
    }
    coll_topic_t *t = p->topic;
    coll_log_config_t lc;
    coll_tcfg_to_log_config(&t->config, &lc);
    coll_log_t *log = NULL;
    int rc = coll_storage_get_log(c->st, t->name, p->index, &log);
    if (rc == 0) {
        trib_uuid_t id;
        if (coll_log_topic_id(log, id.b) == 0 && !trib_uuid_is_zero(&t->id) &&
            memcmp(id.b, t->id.b, 16) != 0) {
            /*
             * A log of an earlier topic of this name, deleted in the cluster
             * while this node was away: ZooKeeper names this topic with
             * another id, so that incarnation is gone everywhere. Its log
             * is deleted and the replica starts empty, as a new one.
             */
            char a[23], b[23];
            trib_uuid_format(&id, a);
            trib_uuid_format(&t->id, b);
            TRIB_LOG(TRIB_LOG_WARN, FACILITY,
                     "%s-%d: the log on disk belongs to topic id %s, deleted in the cluster; "
                     "the topic is now %s: the old log is deleted",
                     t->name, (int)p->index, a, b);
            rc = coll_storage_delete_log(c->st, log, NULL, NULL);
            log = NULL;
            if (rc) {
                return trib_error_set(err, rc, "%s-%d: deleting the old log: %s", t->name,
                                      (int)p->index, trib_strerror(rc));
            }
            rc = coll_storage_create_log(c->st, t->name, p->index, &lc, t->id.b, &log, err);
            if (rc) {
                return rc;
            }
        }
        rc = coll_log_set_config(log, &lc);
        if (rc) {
            return trib_error_set(err, rc, "%s-%d: applying the topic config: %s", t->name,
                                  (int)p->index, trib_strerror(rc));
        }
    } else {
        rc = coll_storage_create_log(c->st, t->name, p->index, &lc, t->id.b, &log, err);
        if (rc) {
            return rc;
        }
    }
    p->log = log;
    if (c->hooks.partition_added) {
        c->hooks.partition_added(c->hooks.arg, p);
    }
    return 0;
}

void coll_cluster_zk_unhost(coll_cluster_t *c, coll_partition_t *p, bool delete_log)
{
    if (!p->log) {
        return;
    }
    if (c->hooks.partition_removing) {
        c->hooks.partition_removing(c->hooks.arg, p);
    }
    coll_log_t *log = p->log;
    p->log = NULL;
    if (delete_log) {
        int rc = coll_storage_delete_log(c->st, log, NULL, NULL);
        if (rc) {
            TRIB_LOG(TRIB_LOG_WARN, FACILITY, "deleting %s-%d: %s", p->topic->name, (int)p->index,
                     trib_strerror(rc));
        }
    }
}

int coll_cluster_zk_set_state(coll_cluster_t *c, coll_partition_t *p, int32_t leader,
                              int32_t leader_epoch, const int32_t *isr, int32_t nisr,
                              int32_t partition_epoch)
{
    int32_t *ni = malloc((size_t)(nisr > 0 ? nisr : 1) * sizeof(*ni));
    if (!ni) {
        return -ENOMEM;
    }
    memcpy(ni, isr, (size_t)(nisr > 0 ? nisr : 0) * sizeof(*ni));
    int32_t prev_leader = p->leader, prev_epoch = p->leader_epoch;
    free(p->isr);
    p->isr = ni;
    p->nisr = nisr;
    p->leader = leader;
    p->leader_epoch = leader_epoch;
    p->partition_epoch = partition_epoch;
    if (p->log && c->hooks.partition_changed) {
        c->hooks.partition_changed(c->hooks.arg, p, prev_leader, prev_epoch);
    }
    return 0;
}

void coll_cluster_zk_set_config(coll_cluster_t *c, coll_topic_t *t, const coll_tcfg_t *ov,
                                uint32_t mask)
{
    t->overrides = *ov;
    t->config_mask = mask;
    coll_tcfg_merge(&c->cfg.defaults, &t->overrides, t->config_mask, &t->config);
    coll_log_config_t lc;
    coll_tcfg_to_log_config(&t->config, &lc);
    for (int32_t i = 0; i < t->npartitions; i++) {
        if (t->partitions[i]->log) {
            int lrc = coll_log_set_config(t->partitions[i]->log, &lc);
            if (lrc) {
                TRIB_LOG(TRIB_LOG_ERROR, FACILITY, "%s-%d: applying the config: %s", t->name,
                         (int)i, trib_strerror(lrc));
            }
        }
    }
}

bool coll_cluster_metadata_ready(const coll_cluster_t *c)
{
    return !c->cfg.zookeeper || c->metadata_loaded;
}

void coll_cluster_zk_metadata_loaded(coll_cluster_t *c)
{
    if (c->metadata_loaded) {
        return;
    }
    c->metadata_loaded = true;
    TRIB_LOG(TRIB_LOG_INFO, FACILITY, "%zu topics read from ZooKeeper: serving clients",
             c->ntopics);
    if (c->hooks.metadata_ready) {
        c->hooks.metadata_ready(c->hooks.arg);
    }
}

void coll_cluster_zk_report_unknown_logs(coll_cluster_t *c)
{
    unknown_ctx_t u = {c, 0};
    coll_storage_foreach(c->st, count_unknown, &u);
    if (u.n > 10) {
        TRIB_LOG(TRIB_LOG_WARN, FACILITY, "%zu logs in all are not in the cluster metadata", u.n);
    }
}
