/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The zookeeper backend's topics: every broker reads them from ZooKeeper
 * into the cluster's table (so Metadata lists every topic of the cluster),
 * opens the logs of its own replicas and applies partition states; the
 * admin requests write them.
 *
 * Watches, re-armed on every read:
 *   /brokers/topics                    children: topics appear and go
 *   /config/topics/<t>                 the topic's overrides
 *   /brokers/topics/<t>                the replica assignment
 *   /brokers/topics/<t>/partitions/<p>/state   leader, epoch, ISR
 * A read is `exists` with a watch (which also fires when the znode is
 * created), then `get`; a trigger while a read is in flight runs one more
 * read after it. A state is applied only when its leader_epoch is higher
 * than the applied one, or equal with a higher znode version (an ISR-only
 * change), so a late read never undoes a newer state. After a new session
 * (zk.c: sync, re-register) every znode is read again.
 *
 * A new topic's config is read before its assignment (the admin path
 * writes both in one multi), so its logs open with their config. A
 * partition is hosted here (its log opened or created, partition_added,
 * then partition_changed) once this broker is in its replica list and its
 * state is known; a replica that leaves the list (a reassignment moved it
 * away) stops being hosted and its log is deleted; a topic that leaves
 * /brokers/topics (DeleteTopics, done by the controller) is dropped and
 * its logs deleted. Logs on disk that
 * ZooKeeper does not name are reported once after the first listing and
 * left alone.
 *
 * Admin writes: CreateTopics writes /config/topics/<t> and /brokers/topics/<t>
 * in one multi and answers once this broker shows every partition with a
 * leader (at most CREATE_WAIT_MS); DeleteTopics creates
 * /admin/delete_topics/<t> and answers once the topic is gone here;
 * CreatePartitions rewrites the assignment compared-and-set at the
 * version read; configs rewrite /config/topics/<t>. The leader's ISR
 * changes (coll_cluster_alter_isr) set the state znode at the version
 * read; on BADVERSION the state is read again and the caller gets -ESTALE
 * once it is applied (never a retry on a cached version: KAFKA-2729).
 *
 * Test hook: with TRIB_TEST_ALTER_ISR=<topic> in the environment, a broker
 * that becomes leader of a partition of that topic (once per partition)
 * rewrites the state znode unchanged behind its own back (its cached
 * version is then stale), proposes ISR = [itself] (which must come back
 * -ESTALE, with the newer version applied), and proposes it again from the
 * state it was given (which must succeed, applied before the callback).
 * Counted in /metrics; what the data plane's ISR changes will rely on.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/zk.h"

#ifdef TRIB_HAVE_ZOOKEEPER

#include "cluster/assign.h"
#include "cluster/cluster_int.h"
#include "cluster/zk_int.h"
#include "tributary/buf.h"
#include "tributary/kafka_error.h"
#include "tributary/log.h"
#include "tributary/prom.h"

#define FACILITY "zookeeper"
/* How long CreateTopics, CreatePartitions and DeleteTopics wait to see their effect here. */
#define ADMIN_WAIT_MS 15000
#define WAIT_TICK_MS 100

typedef enum wait_kind { WAIT_CREATE, WAIT_DELETE } wait_kind_t;

typedef struct waiter {
    struct waiter *next;
    wait_kind_t kind;
    char *name;
    int32_t npart;
    uint64_t deadline;
    coll_admin_cb cb;
    void *arg;
} waiter_t;

struct zk_topics {
    const char *test_isr_topic; /* TRIB_TEST_ALTER_ISR */
    uint64_t test_isr_stale, test_isr_ok, test_isr_bad;
    zk_topic_t **buckets;
    size_t nbuckets, n;
    uint64_t gen_next;
    uint64_t sess;
    bool listing, list_again, listed_once, reported_unknown;
    waiter_t *waiters;
    uv_timer_t timer;
    bool timer_open;
    uint64_t alter_isr_ok, alter_isr_stale;
};

typedef enum rd_kind { RD_CFG, RD_ASG, RD_STATE } rd_kind_t;

/* The context of one read: the topic is found again by name when it completes. */
typedef struct rd {
    coll_zk_t *z;
    uint64_t sess, gen;
    rd_kind_t kind;
    int32_t part;
    char name[];
} rd_t;

static void read_cfg(coll_zk_t *z, zk_topic_t *zt);
static void read_asg(coll_zk_t *z, zk_topic_t *zt);
static void test_alter_isr(coll_zk_t *z, zk_topic_t *zt, int32_t i);
static void list_topics(coll_zk_t *z);
static void waiters_check(coll_zk_t *z);
static void maybe_report_unknown(coll_zk_t *z);

/* ---- the map of topics ------------------------------------------------------------------ */

static uint64_t hash(const char *p, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        h = (h ^ (uint8_t)p[i]) * 1099511628211ULL;
    }
    return h;
}

zk_topic_t *coll_zk_topic_find(coll_zk_t *z, const char *name, size_t len)
{
    struct zk_topics *T = z->topics;
    if (!T || !T->nbuckets) {
        return NULL;
    }
    for (zk_topic_t *zt = T->buckets[hash(name, len) % T->nbuckets]; zt; zt = zt->hnext) {
        if (zt->len == len && memcmp(zt->name, name, len) == 0) {
            return zt;
        }
    }
    return NULL;
}

void coll_zk_topics_foreach(coll_zk_t *z, void (*fn)(coll_zk_t *z, zk_topic_t *zt, void *arg),
                            void *arg)
{
    struct zk_topics *T = z->topics;
    for (size_t b = 0; b < T->nbuckets; b++) {
        zk_topic_t *zt = T->buckets[b];
        while (zt) {
            zk_topic_t *next = zt->hnext; /* fn may not remove zt, but be safe */
            fn(z, zt, arg);
            zt = next;
        }
    }
}

static zk_topic_t *topic_add(coll_zk_t *z, const char *name)
{
    struct zk_topics *T = z->topics;
    size_t len = strlen(name);
    if (T->n + 1 > T->nbuckets) {
        size_t nb = T->nbuckets ? T->nbuckets * 2 : 64;
        zk_topic_t **b = calloc(nb, sizeof(*b));
        if (!b) {
            return NULL;
        }
        for (size_t i = 0; i < T->nbuckets; i++) {
            zk_topic_t *zt = T->buckets[i];
            while (zt) {
                zk_topic_t *next = zt->hnext;
                size_t k = hash(zt->name, zt->len) % nb;
                zt->hnext = b[k];
                b[k] = zt;
                zt = next;
            }
        }
        free(T->buckets);
        T->buckets = b;
        T->nbuckets = nb;
    }
    zk_topic_t *zt = calloc(1, sizeof(*zt));
    if (!zt || !(zt->name = strdup(name))) {
        free(zt);
        return NULL;
    }
    zt->len = len;
    zt->gen = ++T->gen_next;
    zt->asg_version = -1;
    zt->rs_base = -1;
    coll_tcfg_init(&zt->ov);
    size_t k = hash(name, len) % T->nbuckets;
    zt->hnext = T->buckets[k];
    T->buckets[k] = zt;
    T->n++;
    return zt;
}

/* Answers a pending ISR change of p with status (p still valid). */
static void isr_answer(zk_part_t *zp, coll_partition_t *p, int status)
{
    if (!zp->isr_cb) {
        return;
    }
    coll_isr_cb cb = zp->isr_cb;
    void *arg = zp->isr_arg;
    zp->isr_cb = NULL;
    zp->isr_arg = NULL;
    zp->isr_inflight = false;
    zp->isr_stale = false;
    cb(arg, p, status);
}

/* Answers a waiting ElectLeaders of zp with code. */
static void elect_answer(zk_part_t *zp, int16_t code, const char *msg)
{
    if (!zp->elect_cb) {
        return;
    }
    coll_admin_cb cb = zp->elect_cb;
    void *arg = zp->elect_arg;
    zp->elect_cb = NULL;
    zp->elect_arg = NULL;
    coll_admin_result_t res;
    res.code = code;
    snprintf(res.msg, sizeof(res.msg), "%s", msg);
    cb(arg, &res);
}

static void parts_reset(zk_topic_t *zt)
{
    for (int32_t i = 0; i < zt->nparts; i++) {
        coll_partition_t *p = zt->t ? coll_cluster_partition(zt->t, i) : NULL;
        if (p) {
            isr_answer(&zt->parts[i], p, -ENOENT);
        }
        elect_answer(&zt->parts[i], TRIB_KAFKA_UNKNOWN_TOPIC_OR_PARTITION,
                     "The topic was deleted.");
    }
    free(zt->parts);
    zt->parts = NULL;
    zt->nparts = 0;
}

/* Drops zt's topic from the table (its hosted logs deleted when delete_logs). */
static void topic_drop_table(coll_zk_t *z, zk_topic_t *zt, bool delete_logs)
{
    parts_reset(zt);
    coll_zk_reassign_asg_read(zt, true);
    if (zt->t) {
        TRIB_LOG(TRIB_LOG_INFO, FACILITY, "topic %s is gone from ZooKeeper%s", zt->name,
                 delete_logs ? ": its logs here are deleted" : "");
        coll_cluster_zk_remove_topic(z->cluster, zt->t, delete_logs);
        zt->t = NULL;
    }
    coll_zk_assignment_free(&zt->asg);
    zt->have_asg = false;
    zt->asg_version = -1;
}

static void topic_remove(coll_zk_t *z, zk_topic_t *zt)
{
    struct zk_topics *T = z->topics;
    topic_drop_table(z, zt, true);
    zk_topic_t **pp = &T->buckets[hash(zt->name, zt->len) % T->nbuckets];
    while (*pp && *pp != zt) {
        pp = &(*pp)->hnext;
    }
    if (*pp) {
        *pp = zt->hnext;
        T->n--;
    }
    coll_zk_ctl_topic_gone(z, zt->name);
    free(zt->name);
    free(zt);
}

/* ---- paths ---------------------------------------------------------------------------- */

int coll_zk_topic_path(const coll_zk_t *z, const char *name, int kind, int32_t p, char *out,
                       size_t n)
{
    int w;
    switch (kind) {
    case 0:
        w = snprintf(out, n, "%s/brokers/topics/%s", z->root, name);
        break;
    case 1:
        w = snprintf(out, n, "%s/brokers/topics/%s/partitions", z->root, name);
        break;
    case 2:
        w = snprintf(out, n, "%s/brokers/topics/%s/partitions/%" PRId32, z->root, name, p);
        break;
    case 3:
        w = snprintf(out, n, "%s/brokers/topics/%s/partitions/%" PRId32 "/state", z->root, name, p);
        break;
    default:
        w = snprintf(out, n, "%s/config/topics/%s", z->root, name);
        break;
    }
    return w < 0 || (size_t)w >= n ? -ENAMETOOLONG : 0;
}

static rd_t *rd_new(coll_zk_t *z, zk_topic_t *zt, rd_kind_t kind, int32_t part)
{
    rd_t *r = malloc(sizeof(*r) + zt->len + 1);
    if (!r) {
        return NULL;
    }
    r->z = z;
    r->sess = z->topics->sess;
    r->gen = zt->gen;
    r->kind = kind;
    r->part = part;
    memcpy(r->name, zt->name, zt->len + 1);
    return r;
}

/* The topic of a completed read, or NULL when it is stale (freed then). */
static zk_topic_t *rd_topic(rd_t *r, int rc)
{
    coll_zk_t *z = r->z;
    if (coll_zk_gone(z, rc) || r->sess != z->topics->sess) {
        return NULL;
    }
    zk_topic_t *zt = coll_zk_topic_find(z, r->name, strlen(r->name));
    return zt && zt->gen == r->gen ? zt : NULL;
}

/* ---- configs -------------------------------------------------------------------------- */

typedef struct cfg_acc {
    coll_tcfg_t ov;
    uint32_t mask;
    const char *topic;
} cfg_acc_t;

static int cfg_entry(void *arg, const char *name, const char *value)
{
    cfg_acc_t *a = arg;
    int k = coll_tcfg_find(name, strlen(name));
    if (k < 0) {
        TRIB_LOG(TRIB_LOG_DEBUG, FACILITY, "topic %s: config %s is not one of ours: ignored",
                 a->topic, name);
        return 0;
    }
    char msg[256];
    coll_tcfg_val_t v;
    if (coll_tcfg_parse(k, value, strlen(value), &v, msg, sizeof(msg)) != 0) {
        TRIB_LOG(TRIB_LOG_WARN, FACILITY, "topic %s: %s: ignored", a->topic, msg);
        return 0;
    }
    a->ov.v[k] = v;
    a->mask |= 1u << k;
    return 0;
}

static void cfg_data(int rc, const char *value, int len, const struct Stat *st, const void *data)
{
    (void)st;
    rd_t *r = (rd_t *)data;
    coll_zk_t *z = r->z;
    zk_topic_t *zt = rd_topic(r, rc);
    free(r);
    if (!zt) {
        return;
    }
    zt->cfg_reading = false;
    cfg_acc_t a;
    coll_tcfg_init(&a.ov);
    a.mask = 0;
    a.topic = zt->name;
    if (rc == ZOK) {
        const char *why;
        if (coll_zk_config_decode(value, len > 0 ? (size_t)len : 0, cfg_entry, &a, &why) != 0) {
            TRIB_LOG(TRIB_LOG_WARN, FACILITY, "/config/topics/%s: %s", zt->name, why);
        }
    } else if (rc != ZNONODE) {
        TRIB_LOG(TRIB_LOG_WARN, FACILITY, "reading /config/topics/%s: %s", zt->name, zerror(rc));
    }
    bool first = !zt->have_cfg;
    zt->have_cfg = true;
    zt->ov = a.ov;
    zt->mask = a.mask;
    if (zt->t) {
        coll_cluster_zk_set_config(z->cluster, zt->t, &zt->ov, zt->mask);
    }
    if (zt->cfg_again) {
        zt->cfg_again = false;
        read_cfg(z, zt);
    }
    if (first) {
        read_asg(z, zt);
    }
}

static void cfg_exists(int rc, const struct Stat *st, const void *data)
{
    (void)st;
    rd_t *r = (rd_t *)data;
    coll_zk_t *z = r->z;
    zk_topic_t *zt = rd_topic(r, rc);
    if (!zt) {
        free(r);
        return;
    }
    char path[PATH_MAX_ZK];
    coll_zk_topic_path(z, zt->name, 4, 0, path, sizeof(path));
    if (rc == ZOK && zoo_aget(z->zh, path, 0, cfg_data, r) == ZOK) {
        return;
    }
    /* No overrides (ZNONODE), or an error: as an empty config. */
    cfg_data(rc == ZOK ? ZNONODE : rc, NULL, 0, NULL, r);
}

static void read_cfg(coll_zk_t *z, zk_topic_t *zt)
{
    if (zt->cfg_reading) {
        zt->cfg_again = true;
        return;
    }
    char path[PATH_MAX_ZK];
    rd_t *r = rd_new(z, zt, RD_CFG, 0);
    if (!r || coll_zk_topic_path(z, zt->name, 4, 0, path, sizeof(path)) != 0) {
        free(r);
        return;
    }
    zt->cfg_reading = true;
    if (zoo_aexists(z->zh, path, 1, cfg_exists, r) != ZOK) {
        zt->cfg_reading = false;
        free(r);
    }
    coll_zk_rearm(z);
}

/* ---- partition states ------------------------------------------------------------------- */

static bool in_list(const int32_t *v, int32_t n, int32_t id)
{
    for (int32_t i = 0; i < n; i++) {
        if (v[i] == id) {
            return true;
        }
    }
    return false;
}

/* Hosts p here when this broker is a replica and its state is known; unhosts otherwise. */
static void host_or_not(coll_zk_t *z, zk_topic_t *zt, int32_t i)
{
    coll_partition_t *p = coll_cluster_partition(zt->t, i);
    zk_part_t *zp = &zt->parts[i];
    if (!p) {
        return;
    }
    bool replica = in_list(p->replicas, p->nreplicas, z->self.id);
    if (!replica && coll_partition_hosted(p)) {
        TRIB_LOG(TRIB_LOG_INFO, FACILITY,
                 "%s-%d: this broker is no longer a replica: its copy is deleted", zt->name,
                 (int)i);
        isr_answer(zp, p, -ENOENT);
        coll_cluster_zk_unhost(z->cluster, p, true);
        return;
    }
    if (replica && !coll_partition_hosted(p) && zp->have_state) {
        trib_error_t err;
        trib_error_clear(&err);
        int rc = coll_cluster_zk_host(z->cluster, p, &err);
        if (rc != 0) {
            static trib_log_ratelimit_t rl = TRIB_LOG_RATELIMIT_INIT(60000, 10);
            TRIB_LOG_RL(&rl, TRIB_LOG_ERROR, FACILITY, "%s-%d: cannot open the replica: %s",
                        zt->name, (int)i, err.msg);
            return;
        }
        /* The new replica learns its state: partition_changed after partition_added. */
        p->leader = p->leader_epoch = p->partition_epoch = -1;
        coll_cluster_zk_set_state(z->cluster, p, zp->st.leader, zp->st.leader_epoch, zp->st.isr,
                                  zp->st.nisr, zp->version);
    }
}

static void apply_state(coll_zk_t *z, zk_topic_t *zt, int32_t i, const coll_zk_state_t *st,
                        int32_t version)
{
    zk_part_t *zp = &zt->parts[i];
    zp->no_state = false;
    if (zp->have_state && (st->leader_epoch < zp->st.leader_epoch ||
                           (st->leader_epoch == zp->st.leader_epoch && version <= zp->version))) {
        return; /* older than what is applied */
    }
    bool was = zp->have_state;
    zp->st = *st;
    zp->version = version;
    zp->have_state = true;
    coll_partition_t *p = zt->t ? coll_cluster_partition(zt->t, i) : NULL;
    if (!p) {
        return;
    }
    (void)was;
    if (!coll_partition_hosted(p)) {
        host_or_not(z, zt, i); /* hosting applies the state, with the hooks */
        if (!coll_partition_hosted(p)) {
            coll_cluster_zk_set_state(z->cluster, p, st->leader, st->leader_epoch, st->isr,
                                      st->nisr, version);
        }
    } else {
        coll_cluster_zk_set_state(z->cluster, p, st->leader, st->leader_epoch, st->isr, st->nisr,
                                  version);
    }
    test_alter_isr(z, zt, i);
}

/* ---- the TRIB_TEST_ALTER_ISR hook ---- */

static void test_isr_second(void *arg, coll_partition_t *p, int status)
{
    coll_zk_t *z = arg;
    int32_t self = z->self.id;
    bool applied = p->nisr == 1 && p->isr[0] == self;
    if (status == 0 && applied) {
        z->topics->test_isr_ok++;
        TRIB_LOG(TRIB_LOG_INFO, FACILITY,
                 "test: %s-%d: ISR [%" PRId32 "] written at version %" PRId32 " and applied",
                 p->topic->name, (int)p->index, self, p->partition_epoch);
    } else {
        z->topics->test_isr_bad++;
        TRIB_LOG(TRIB_LOG_ERROR, FACILITY, "test: %s-%d: the second proposal: status %d, %s",
                 p->topic->name, (int)p->index, status, applied ? "applied" : "not applied");
    }
}

static void test_isr_first(void *arg, coll_partition_t *p, int status)
{
    coll_zk_t *z = arg;
    if (status != -ESTALE) {
        z->topics->test_isr_bad++;
        TRIB_LOG(TRIB_LOG_ERROR, FACILITY,
                 "test: %s-%d: a proposal at a stale version answered %d, not -ESTALE",
                 p->topic->name, (int)p->index, status);
        return;
    }
    z->topics->test_isr_stale++;
    TRIB_LOG(TRIB_LOG_INFO, FACILITY,
             "test: %s-%d: a proposal at a stale version was refused; now at version %" PRId32,
             p->topic->name, (int)p->index, p->partition_epoch);
    int32_t self = z->self.id;
    int rc = coll_zk_alter_isr(z, p, &self, 1, test_isr_second, z);
    if (rc != 0) {
        z->topics->test_isr_bad++;
        TRIB_LOG(TRIB_LOG_ERROR, FACILITY, "test: the second proposal: %d", rc);
    }
}

static void test_bumped(int rc, const struct Stat *st, const void *data)
{
    (void)st;
    (void)data;
    (void)rc;
}

static void test_alter_isr(coll_zk_t *z, zk_topic_t *zt, int32_t i)
{
    struct zk_topics *T = z->topics;
    zk_part_t *zp = &zt->parts[i];
    coll_partition_t *p = zt->t ? coll_cluster_partition(zt->t, i) : NULL;
    if (!T->test_isr_topic || zp->test_done || !p || !coll_partition_leads(p, z->self.id) ||
        strcmp(zt->name, T->test_isr_topic) != 0 || p->nisr < 2) {
        return;
    }
    zp->test_done = true;
    /* The znode moves on (same content, next version) before the proposal arrives. */
    char json[1024], path[PATH_MAX_ZK];
    int jl = coll_zk_state_encode(&zp->st, json, sizeof(json));
    coll_zk_topic_path(z, zt->name, 3, i, path, sizeof(path));
    if (jl < 0 || zoo_aset(z->zh, path, json, jl, -1, test_bumped, NULL) != ZOK) {
        T->test_isr_bad++;
        return;
    }
    int32_t self = z->self.id;
    int rc = coll_zk_alter_isr(z, p, &self, 1, test_isr_first, z);
    if (rc != 0) {
        T->test_isr_bad++;
        TRIB_LOG(TRIB_LOG_ERROR, FACILITY, "test: the first proposal: %d", rc);
    }
}

static void state_read_done(coll_zk_t *z, zk_topic_t *zt, int32_t i)
{
    zk_part_t *zp = &zt->parts[i];
    zp->reading = false;
    if (zp->isr_stale && zt->t) {
        coll_partition_t *p = coll_cluster_partition(zt->t, i);
        z->topics->alter_isr_stale++;
        isr_answer(zp, p, -ESTALE);
    }
    if (zp->again) {
        zp->again = false;
        coll_zk_read_state(z, zt, i);
    } else {
        coll_zk_ctl_check(z, zt, i);
        coll_zk_reassign_check(z, zt);
    }
    waiters_check(z);
}

static void state_data(int rc, const char *value, int len, const struct Stat *st, const void *data)
{
    rd_t *r = (rd_t *)data;
    coll_zk_t *z = r->z;
    int32_t i = r->part;
    zk_topic_t *zt = rd_topic(r, rc);
    free(r);
    if (!zt || i >= zt->nparts) {
        return;
    }
    if (rc == ZOK) {
        coll_zk_state_t s;
        const char *why;
        if (coll_zk_state_decode(value, len > 0 ? (size_t)len : 0, &s, &why) == 0) {
            apply_state(z, zt, i, &s, st->version);
            zt->parts[i].read_sess = z->topics->sess;
        } else {
            TRIB_LOG(TRIB_LOG_WARN, FACILITY, "%s-%d state: %s", zt->name, (int)i, why);
        }
    } else if (rc == ZNONODE) {
        zt->parts[i].no_state = !zt->parts[i].have_state;
    } else {
        TRIB_LOG(TRIB_LOG_WARN, FACILITY, "reading the state of %s-%d: %s", zt->name, (int)i,
                 zerror(rc));
    }
    if (rc == ZOK || rc == ZNONODE) {
        zt->parts[i].state_read = true;
    }
    state_read_done(z, zt, i);
    maybe_report_unknown(z);
}

static void state_exists(int rc, const struct Stat *st, const void *data)
{
    (void)st;
    rd_t *r = (rd_t *)data;
    coll_zk_t *z = r->z;
    zk_topic_t *zt = rd_topic(r, rc);
    if (!zt || r->part >= zt->nparts) {
        free(r);
        return;
    }
    char path[PATH_MAX_ZK];
    coll_zk_topic_path(z, zt->name, 3, r->part, path, sizeof(path));
    if (rc == ZOK && zoo_aget(z->zh, path, 0, state_data, r) == ZOK) {
        return;
    }
    state_data(rc == ZOK ? ZCONNECTIONLOSS : rc, NULL, 0, NULL, r);
}

void coll_zk_read_state(coll_zk_t *z, zk_topic_t *zt, int32_t i)
{
    if (i < 0 || i >= zt->nparts) {
        return;
    }
    zk_part_t *zp = &zt->parts[i];
    if (zp->reading) {
        zp->again = true;
        return;
    }
    char path[PATH_MAX_ZK];
    rd_t *r = rd_new(z, zt, RD_STATE, i);
    if (!r || coll_zk_topic_path(z, zt->name, 3, i, path, sizeof(path)) != 0) {
        free(r);
        return;
    }
    zp->reading = true;
    if (zoo_aexists(z->zh, path, 1, state_exists, r) != ZOK) {
        zp->reading = false;
        free(r);
    }
    coll_zk_rearm(z);
}

/* ---- assignments ------------------------------------------------------------------------- */

static void apply_asg(coll_zk_t *z, zk_topic_t *zt, coll_zk_assignment_t *a, int32_t version)
{
    if (zt->have_asg && version <= zt->asg_version) {
        coll_zk_assignment_free(a);
        return;
    }
    trib_uuid_t id;
    memset(&id, 0, sizeof(id));
    if (a->topic_id[0] && trib_uuid_parse(a->topic_id, strlen(a->topic_id), &id) != 0) {
        TRIB_LOG(TRIB_LOG_WARN, FACILITY, "topic %s: bad topic_id '%s'", zt->name, a->topic_id);
        memset(&id, 0, sizeof(id));
    }
    if (zt->t && memcmp(zt->t->id.b, id.b, 16) != 0) {
        /* Deleted and created again while this broker was not watching. */
        TRIB_LOG(TRIB_LOG_INFO, FACILITY, "topic %s has a new topic id: the old one is dropped",
                 zt->name);
        topic_drop_table(z, zt, true);
    }
    int32_t n = a->npartitions;
    if (zt->t && n < zt->t->npartitions) {
        TRIB_LOG(TRIB_LOG_WARN, FACILITY,
                 "topic %s: the assignment lists %" PRId32 " partitions, fewer than the %" PRId32
                 " known: the others are kept",
                 zt->name, n, zt->t->npartitions);
    }
    if (n > zt->nparts) {
        zk_part_t *np = realloc(zt->parts, (size_t)n * sizeof(*np));
        if (!np) {
            coll_zk_assignment_free(a);
            return;
        }
        memset(np + zt->nparts, 0, (size_t)(n - zt->nparts) * sizeof(*np));
        for (int32_t i = zt->nparts; i < n; i++) {
            np[i].version = -1;
        }
        zt->parts = np;
    }
    int32_t old = zt->nparts;
    if (n > zt->nparts) {
        zt->nparts = n;
    }
    if (!zt->t) {
        zt->t = coll_cluster_zk_add_topic(z->cluster, zt->name, zt->len, &id, n);
        if (!zt->t) {
            TRIB_LOG(TRIB_LOG_ERROR, FACILITY, "topic %s: out of memory", zt->name);
            coll_zk_assignment_free(a);
            return;
        }
        coll_cluster_zk_set_config(z->cluster, zt->t, &zt->ov, zt->mask);
        TRIB_LOG(TRIB_LOG_INFO, FACILITY, "topic %s: %" PRId32 " partitions", zt->name, n);
        if (z->is_controller) {
            coll_zk_ctl_check_deletions(z);
        }
    } else if (n > zt->t->npartitions) {
        if (coll_cluster_zk_grow_topic(z->cluster, zt->t, n) != 0) {
            TRIB_LOG(TRIB_LOG_ERROR, FACILITY, "topic %s: out of memory", zt->name);
        }
        TRIB_LOG(TRIB_LOG_INFO, FACILITY, "topic %s now has %" PRId32 " partitions", zt->name, n);
    }
    coll_zk_assignment_free(&zt->asg);
    zt->asg = *a;
    memset(a, 0, sizeof(*a));
    zt->have_asg = true;
    zt->asg_version = version;
    for (int32_t i = 0; i < n && i < zt->t->npartitions; i++) {
        coll_partition_t *p = coll_cluster_partition(zt->t, i);
        coll_cluster_zk_set_replicas(p, zt->asg.ids + zt->asg.off[i],
                                     zt->asg.off[i + 1] - zt->asg.off[i]);
        host_or_not(z, zt, i);
        if (i >= old || (!zt->parts[i].have_state && !zt->parts[i].reading)) {
            coll_zk_read_state(z, zt, i);
        } else {
            /* A new replica list (a reassignment): the leader and ISR may need the controller. */
            coll_zk_ctl_check(z, zt, i);
        }
    }
    coll_zk_reassign_asg_read(zt, false);
    coll_zk_reassign_check(z, zt);
    maybe_report_unknown(z);
    waiters_check(z);
}

static void asg_data(int rc, const char *value, int len, const struct Stat *st, const void *data)
{
    rd_t *r = (rd_t *)data;
    coll_zk_t *z = r->z;
    zk_topic_t *zt = rd_topic(r, rc);
    free(r);
    if (!zt) {
        return;
    }
    zt->asg_reading = false;
    if (rc == ZOK) {
        coll_zk_assignment_t a;
        const char *why;
        if (coll_zk_assignment_decode(value, len > 0 ? (size_t)len : 0, &a, &why) == 0) {
            apply_asg(z, zt, &a, st->version);
        } else {
            TRIB_LOG(TRIB_LOG_WARN, FACILITY, "/brokers/topics/%s: %s", zt->name, why);
        }
    } else if (rc != ZNONODE) {
        TRIB_LOG(TRIB_LOG_WARN, FACILITY, "reading /brokers/topics/%s: %s", zt->name, zerror(rc));
    }
    if (zt->asg_again) {
        zt->asg_again = false;
        read_asg(z, zt);
    }
}

static void asg_exists(int rc, const struct Stat *st, const void *data)
{
    (void)st;
    rd_t *r = (rd_t *)data;
    coll_zk_t *z = r->z;
    zk_topic_t *zt = rd_topic(r, rc);
    if (!zt) {
        free(r);
        return;
    }
    char path[PATH_MAX_ZK];
    coll_zk_topic_path(z, zt->name, 0, 0, path, sizeof(path));
    if (rc == ZOK && zoo_aget(z->zh, path, 0, asg_data, r) == ZOK) {
        return;
    }
    asg_data(rc == ZOK ? ZCONNECTIONLOSS : rc, NULL, 0, NULL, r);
}

static void read_asg(coll_zk_t *z, zk_topic_t *zt)
{
    if (!zt->have_cfg) {
        return; /* the config read that is under way reads the assignment next */
    }
    if (zt->asg_reading) {
        zt->asg_again = true;
        return;
    }
    char path[PATH_MAX_ZK];
    rd_t *r = rd_new(z, zt, RD_ASG, 0);
    if (!r || coll_zk_topic_path(z, zt->name, 0, 0, path, sizeof(path)) != 0) {
        free(r);
        return;
    }
    zt->asg_reading = true;
    if (zoo_aexists(z->zh, path, 1, asg_exists, r) != ZOK) {
        zt->asg_reading = false;
        free(r);
    }
    coll_zk_rearm(z);
}

void coll_zk_read_asg(coll_zk_t *z, zk_topic_t *zt)
{
    read_asg(z, zt);
}

/* ---- the list of topics ------------------------------------------------------------------- */

static void count_unread(coll_zk_t *z, zk_topic_t *zt, void *arg)
{
    (void)z;
    size_t unread = zt->have_asg ? 0 : 1;
    for (int32_t i = 0; zt->have_asg && i < zt->nparts; i++) {
        unread += zt->parts[i].state_read ? 0 : 1;
    }
    *(size_t *)arg += unread;
}

/*
 * Once every listed topic and its partitions' states are read: the logs on
 * disk that none of them names, and the server may read requests.
 */
static void maybe_report_unknown(coll_zk_t *z)
{
    struct zk_topics *T = z->topics;
    if (T->reported_unknown || !T->listed_once) {
        return;
    }
    size_t unread = 0;
    coll_zk_topics_foreach(z, count_unread, &unread);
    if (unread == 0) {
        T->reported_unknown = true;
        coll_cluster_zk_report_unknown_logs(z->cluster);
        coll_cluster_zk_metadata_loaded(z->cluster);
    }
}

static void unsee(coll_zk_t *z, zk_topic_t *zt, void *arg)
{
    (void)z;
    (void)arg;
    zt->seen = false;
}

typedef struct gone_list {
    zk_topic_t **v;
    size_t n, cap;
} gone_list_t;

static void collect_unseen(coll_zk_t *z, zk_topic_t *zt, void *arg)
{
    (void)z;
    gone_list_t *g = arg;
    if (zt->seen) {
        return;
    }
    if (g->n == g->cap) {
        size_t nc = g->cap ? g->cap * 2 : 16;
        zk_topic_t **nv = realloc(g->v, nc * sizeof(*nv));
        if (!nv) {
            return;
        }
        g->v = nv;
        g->cap = nc;
    }
    g->v[g->n++] = zt;
}

static void topics_listed(int rc, const struct String_vector *names, const void *data)
{
    coll_zk_t *z = (coll_zk_t *)data;
    if (coll_zk_gone(z, rc)) {
        return;
    }
    struct zk_topics *T = z->topics;
    T->listing = false;
    if (rc != ZOK) {
        TRIB_LOG(TRIB_LOG_WARN, FACILITY, "listing /brokers/topics: %s", zerror(rc));
        return;
    }
    coll_zk_topics_foreach(z, unsee, NULL);
    for (int32_t i = 0; i < names->count; i++) {
        const char *name = names->data[i];
        size_t len = strlen(name);
        if (!coll_topic_name_valid(name, len)) {
            continue;
        }
        zk_topic_t *zt = coll_zk_topic_find(z, name, len);
        if (!zt) {
            zt = topic_add(z, name);
            if (!zt) {
                TRIB_LOG(TRIB_LOG_ERROR, FACILITY, "topic %s: out of memory", name);
                continue;
            }
            read_cfg(z, zt);
        }
        zt->seen = true;
    }
    gone_list_t g = {NULL, 0, 0};
    coll_zk_topics_foreach(z, collect_unseen, &g);
    for (size_t i = 0; i < g.n; i++) {
        topic_remove(z, g.v[i]);
    }
    free(g.v);
    T->listed_once = true;
    maybe_report_unknown(z);
    if (T->list_again) {
        T->list_again = false;
        list_topics(z);
    }
    waiters_check(z);
}

static void list_topics(coll_zk_t *z)
{
    struct zk_topics *T = z->topics;
    if (T->listing) {
        T->list_again = true;
        return;
    }
    char path[PATH_MAX_ZK];
    coll_zk_path(z, "/brokers/topics", path, sizeof(path));
    T->listing = true;
    if (zoo_aget_children(z->zh, path, 1, topics_listed, z) != ZOK) {
        T->listing = false;
    }
    coll_zk_rearm(z);
}

static void reread_topic(coll_zk_t *z, zk_topic_t *zt, void *arg)
{
    (void)arg;
    zt->cfg_reading = zt->cfg_again = zt->asg_reading = zt->asg_again = false;
    for (int32_t i = 0; i < zt->nparts; i++) {
        zt->parts[i].reading = zt->parts[i].again = false;
        zt->parts[i].ctl_inflight = false;
    }
    read_cfg(z, zt);
    read_asg(z, zt);
    for (int32_t i = 0; i < zt->nparts; i++) {
        coll_zk_read_state(z, zt, i);
    }
}

bool coll_zk_may_lead(void *arg, const coll_partition_t *p)
{
    coll_zk_t *z = arg;
    struct zk_topics *T = z->topics;
    if (!T || z->conn != CONN_CONNECTED || !z->registered || !p->topic) {
        return false;
    }
    zk_topic_t *zt = coll_zk_topic_find(z, p->topic->name, p->topic->name_len);
    if (!zt || zt->t != p->topic || p->index < 0 || p->index >= zt->nparts) {
        return false;
    }
    return zt->parts[p->index].read_sess == T->sess;
}

void coll_zk_topics_resync(coll_zk_t *z)
{
    struct zk_topics *T = z->topics;
    if (!T || !z->cluster) {
        return;
    }
    T->sess++;
    T->listing = T->list_again = false;
    coll_zk_pid_resync(z);
    list_topics(z);
    coll_zk_topics_foreach(z, reread_topic, NULL);
}

bool coll_zk_topics_watch(coll_zk_t *z, int type, const char *path)
{
    if (!z->topics || !z->cluster) {
        return false;
    }
    size_t rl = strlen(z->root);
    if (strncmp(path, z->root, rl) != 0) {
        return false;
    }
    const char *rel = path + rl;
    static const char topics[] = "/brokers/topics", config[] = "/config/topics/";
    if (strcmp(rel, topics) == 0) {
        if (type == ZOO_CHILD_EVENT) {
            list_topics(z);
        }
        return true;
    }
    if (strncmp(rel, config, sizeof(config) - 1) == 0) {
        const char *name = rel + sizeof(config) - 1;
        zk_topic_t *zt = coll_zk_topic_find(z, name, strlen(name));
        if (zt) {
            read_cfg(z, zt);
        }
        return true;
    }
    if (strncmp(rel, topics, sizeof(topics) - 1) != 0 || rel[sizeof(topics) - 1] != '/') {
        return false;
    }
    const char *name = rel + sizeof(topics);
    const char *slash = strchr(name, '/');
    size_t nl = slash ? (size_t)(slash - name) : strlen(name);
    zk_topic_t *zt = coll_zk_topic_find(z, name, nl);
    if (!zt) {
        return true;
    }
    if (!slash) {
        read_asg(z, zt);
        return true;
    }
    /* /partitions/<p>/state */
    static const char parts[] = "/partitions/";
    if (strncmp(slash, parts, sizeof(parts) - 1) != 0) {
        return true;
    }
    char *end;
    long pi = strtol(slash + sizeof(parts) - 1, &end, 10);
    if (strcmp(end, "/state") == 0 && pi >= 0 && pi < zt->nparts) {
        coll_zk_read_state(z, zt, (int32_t)pi);
    }
    return true;
}

void coll_zk_topics_brokers_changed(coll_zk_t *z)
{
    if (!z->topics || !z->cluster) {
        return;
    }
    coll_zk_ctl_brokers_changed(z);
}

/* ---- waiting for the effect of an admin write ----------------------------------------- */

static bool topic_led(coll_zk_t *z, const char *name, int32_t npart)
{
    coll_topic_t *t = coll_cluster_topic(z->cluster, name, strlen(name));
    if (!t || t->npartitions < npart) {
        return false;
    }
    for (int32_t i = 0; i < t->npartitions; i++) {
        if (t->partitions[i]->leader < 0) {
            return false;
        }
    }
    return true;
}

static void answer(coll_admin_cb cb, void *arg, int16_t code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void answer(coll_admin_cb cb, void *arg, int16_t code, const char *fmt, ...)
{
    if (!cb) {
        return;
    }
    coll_admin_result_t res;
    res.code = code;
    res.msg[0] = '\0';
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(res.msg, sizeof(res.msg), fmt, ap);
        va_end(ap);
    }
    cb(arg, &res);
}

static void waiters_check(coll_zk_t *z)
{
    struct zk_topics *T = z->topics;
    if (!T || !T->waiters) {
        return;
    }
    uint64_t now = uv_now(z->loop);
    waiter_t **pp = &T->waiters;
    while (*pp) {
        waiter_t *w = *pp;
        bool done = w->kind == WAIT_CREATE
                        ? topic_led(z, w->name, w->npart)
                        : !coll_cluster_topic(z->cluster, w->name, strlen(w->name));
        if (!done && now < w->deadline) {
            pp = &w->next;
            continue;
        }
        *pp = w->next;
        if (!done) {
            TRIB_LOG(TRIB_LOG_INFO, FACILITY, "topic %s: written in ZooKeeper, not yet %s here",
                     w->name, w->kind == WAIT_CREATE ? "led" : "gone");
        }
        answer(w->cb, w->arg, TRIB_KAFKA_NONE, NULL);
        free(w->name);
        free(w);
        pp = &T->waiters; /* the callback may have added or answered waiters */
    }
    if (!T->waiters && T->timer_open) {
        uv_timer_stop(&T->timer);
    }
}

static void wait_tick(uv_timer_t *t)
{
    waiters_check(t->data);
}

static void wait_for(coll_zk_t *z, wait_kind_t kind, const char *name, int32_t npart,
                     coll_admin_cb cb, void *arg)
{
    struct zk_topics *T = z->topics;
    if (!cb) {
        return;
    }
    waiter_t *w = calloc(1, sizeof(*w));
    if (!w || !(w->name = strdup(name))) {
        free(w);
        answer(cb, arg, TRIB_KAFKA_NONE, NULL);
        return;
    }
    w->kind = kind;
    w->npart = npart;
    w->deadline = uv_now(z->loop) + ADMIN_WAIT_MS;
    w->cb = cb;
    w->arg = arg;
    w->next = T->waiters;
    T->waiters = w;
    if (T->timer_open && !uv_is_active((uv_handle_t *)&T->timer)) {
        uv_timer_start(&T->timer, wait_tick, WAIT_TICK_MS, WAIT_TICK_MS);
    }
    waiters_check(z);
}

/* ---- admin writes ------------------------------------------------------------------------- */

typedef struct admin_op {
    coll_zk_t *z;
    coll_admin_cb cb;
    void *arg;
    char name[COLL_TOPIC_NAME_MAX + 1];
    int32_t npart;
    char *asg_json, *cfg_json;
    size_t asg_len, cfg_len;
    zoo_op_result_t results[2];
} admin_op_t;

static void admin_op_free(admin_op_t *op)
{
    free(op->asg_json);
    free(op->cfg_json);
    free(op);
}

static bool usable(coll_zk_t *z, coll_admin_cb cb, void *arg)
{
    if (z->zh && z->conn == CONN_CONNECTED && z->registered && !z->closing) {
        return true;
    }
    answer(cb, arg, TRIB_KAFKA_NOT_CONTROLLER,
           "This broker is not connected to ZooKeeper: retry on another broker.");
    return false;
}

/* The config JSON of overrides (the rows in mask), malloc'ed. */
static char *config_json(const coll_tcfg_t *ov, uint32_t mask, size_t *len)
{
    const char *names[COLL_TCFG_COUNT];
    char vals[COLL_TCFG_COUNT][64];
    const char *values[COLL_TCFG_COUNT];
    size_t n = 0;
    for (int k = 0; k < COLL_TCFG_COUNT; k++) {
        if (mask & (1u << k)) {
            names[n] = coll_tcfg_defs[k].name;
            coll_tcfg_format(k, ov->v[k], vals[n], sizeof(vals[n]));
            values[n] = vals[n];
            n++;
        }
    }
    return coll_zk_config_encode(names, values, n, len);
}

static int16_t zk_error(int rc)
{
    switch (rc) {
    case ZCONNECTIONLOSS:
    case ZOPERATIONTIMEOUT:
    case ZSESSIONEXPIRED:
    case ZCLOSING:
        return TRIB_KAFKA_REQUEST_TIMED_OUT;
    default:
        return TRIB_KAFKA_UNKNOWN_SERVER_ERROR;
    }
}

static void created(int rc, const void *data)
{
    admin_op_t *op = (admin_op_t *)data;
    coll_zk_t *z = op->z;
    if (rc == ZOK) {
        TRIB_LOG(TRIB_LOG_INFO, FACILITY, "created topic %s (%" PRId32 " partitions)", op->name,
                 op->npart);
        if (!coll_zk_gone(z, rc)) {
            wait_for(z, WAIT_CREATE, op->name, op->npart, op->cb, op->arg);
        } else {
            answer(op->cb, op->arg, TRIB_KAFKA_NONE, NULL);
        }
    } else if (rc == ZNODEEXISTS) {
        answer(op->cb, op->arg, TRIB_KAFKA_TOPIC_ALREADY_EXISTS, "Topic '%s' already exists.",
               op->name);
    } else {
        answer(op->cb, op->arg, zk_error(rc), "Writing the topic to ZooKeeper failed: %s",
               zerror(rc));
    }
    admin_op_free(op);
}

static void config_checked(int rc, const struct Stat *st, const void *data)
{
    admin_op_t *op = (admin_op_t *)data;
    coll_zk_t *z = op->z;
    if (coll_zk_gone(z, rc) || (rc != ZOK && rc != ZNONODE)) {
        answer(op->cb, op->arg, zk_error(rc), "ZooKeeper: %s", zerror(rc));
        admin_op_free(op);
        return;
    }
    char cpath[PATH_MAX_ZK], tpath[PATH_MAX_ZK];
    coll_zk_topic_path(z, op->name, 4, 0, cpath, sizeof(cpath));
    coll_zk_topic_path(z, op->name, 0, 0, tpath, sizeof(tpath));
    zoo_op_t ops[2];
    if (rc == ZOK) {
        /* A config left by an earlier topic of this name: replaced in the same multi. */
        zoo_set_op_init(&ops[0], cpath, op->cfg_json, (int)op->cfg_len, st->version, NULL);
    } else {
        zoo_create_op_init(&ops[0], cpath, op->cfg_json, (int)op->cfg_len, &ZOO_OPEN_ACL_UNSAFE, 0,
                           NULL, 0);
    }
    zoo_create_op_init(&ops[1], tpath, op->asg_json, (int)op->asg_len, &ZOO_OPEN_ACL_UNSAFE, 0,
                       NULL, 0);
    if (zoo_amulti(z->zh, 2, ops, op->results, created, op) != ZOK) {
        answer(op->cb, op->arg, TRIB_KAFKA_REQUEST_TIMED_OUT, "ZooKeeper is not reachable.");
        admin_op_free(op);
        return;
    }
    coll_zk_rearm(z);
}

/* The registered brokers as the assignment wants them. */
static size_t assign_brokers(coll_zk_t *z, coll_assign_broker_t **out)
{
    size_t n = z->nbrokers;
    bool self = coll_zk_broker_find(z, z->self.id) != NULL;
    coll_assign_broker_t *b = calloc(n + 1, sizeof(*b));
    if (!b) {
        *out = NULL;
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        b[i].id = z->brokers[i].id;
        b[i].rack = z->brokers[i].rack;
    }
    if (!self) {
        b[n].id = z->self.id;
        b[n].rack = z->self.rack;
        n++;
    }
    *out = b;
    return n;
}

static void zk_create_topic(void *arg, const char *name, size_t len, int32_t partitions, int16_t rf,
                            const int32_t *assignment, const coll_tcfg_t *ov, uint32_t mask,
                            bool validate_only, coll_admin_cb cb, void *cbarg)
{
    coll_zk_t *z = arg;
    if (len > COLL_TOPIC_NAME_MAX) {
        answer(cb, cbarg, TRIB_KAFKA_INVALID_TOPIC_EXCEPTION, "Topic name too long.");
        return;
    }
    if (!usable(z, cb, cbarg)) {
        return;
    }
    coll_zk_assignment_t a;
    memset(&a, 0, sizeof(a));
    a.npartitions = partitions;
    a.off = malloc((size_t)(partitions + 1) * sizeof(*a.off));
    a.ids = malloc((size_t)partitions * (size_t)rf * sizeof(*a.ids));
    admin_op_t *op = calloc(1, sizeof(*op));
    if (!a.off || !a.ids || !op) {
        coll_zk_assignment_free(&a);
        free(op);
        answer(cb, cbarg, TRIB_KAFKA_UNKNOWN_SERVER_ERROR, "out of memory");
        return;
    }
    for (int32_t p = 0; p <= partitions; p++) {
        a.off[p] = p * rf;
    }
    if (assignment) {
        for (int32_t i = 0; i < partitions * rf; i++) {
            if (!coll_zk_broker_find(z, assignment[i]) && assignment[i] != z->self.id) {
                coll_zk_assignment_free(&a);
                free(op);
                answer(cb, cbarg, TRIB_KAFKA_INVALID_REPLICA_ASSIGNMENT,
                       "Unknown broker %" PRId32 " in the replica assignment.", assignment[i]);
                return;
            }
        }
        memcpy(a.ids, assignment, (size_t)partitions * (size_t)rf * sizeof(*a.ids));
    } else {
        coll_assign_broker_t *brokers;
        size_t nb = assign_brokers(z, &brokers);
        char why[256];
        int rc = brokers ? coll_assign_replicas(brokers, nb, partitions, rf, -1, -1, 0, a.ids, why,
                                                sizeof(why))
                         : -ENOMEM;
        free(brokers);
        if (rc != 0) {
            coll_zk_assignment_free(&a);
            free(op);
            answer(cb, cbarg,
                   rc == -ENOMEM ? TRIB_KAFKA_UNKNOWN_SERVER_ERROR
                                 : TRIB_KAFKA_INVALID_REPLICATION_FACTOR,
                   "%s", rc == -ENOMEM ? "out of memory" : why);
            return;
        }
    }
    if (validate_only) {
        coll_zk_assignment_free(&a);
        free(op);
        answer(cb, cbarg, TRIB_KAFKA_NONE, NULL);
        return;
    }
    trib_uuid_t id;
    coll_uuid_random(&id);
    trib_uuid_format(&id, a.topic_id);
    op->z = z;
    op->cb = cb;
    op->arg = cbarg;
    memcpy(op->name, name, len);
    op->name[len] = '\0';
    op->npart = partitions;
    op->asg_json = coll_zk_assignment_encode(&a, &op->asg_len);
    op->cfg_json = config_json(ov, mask, &op->cfg_len);
    coll_zk_assignment_free(&a);
    char cpath[PATH_MAX_ZK];
    if (!op->asg_json || !op->cfg_json ||
        coll_zk_topic_path(z, op->name, 4, 0, cpath, sizeof(cpath)) != 0) {
        answer(cb, cbarg, TRIB_KAFKA_UNKNOWN_SERVER_ERROR, "out of memory");
        admin_op_free(op);
        return;
    }
    if (zoo_aexists(z->zh, cpath, 0, config_checked, op) != ZOK) {
        answer(cb, cbarg, TRIB_KAFKA_REQUEST_TIMED_OUT, "ZooKeeper is not reachable.");
        admin_op_free(op);
        return;
    }
    coll_zk_rearm(z);
}

static void delete_marked(int rc, const char *path, const void *data)
{
    (void)path;
    admin_op_t *op = (admin_op_t *)data;
    coll_zk_t *z = op->z;
    if (rc == ZOK || rc == ZNODEEXISTS) {
        TRIB_LOG(TRIB_LOG_INFO, FACILITY, "topic %s marked for deletion", op->name);
        if (!coll_zk_gone(z, rc)) {
            wait_for(z, WAIT_DELETE, op->name, 0, op->cb, op->arg);
        } else {
            answer(op->cb, op->arg, TRIB_KAFKA_NONE, NULL);
        }
    } else {
        answer(op->cb, op->arg, zk_error(rc), "Marking the topic for deletion failed: %s",
               zerror(rc));
    }
    admin_op_free(op);
}

static void zk_delete_topic(void *arg, coll_topic_t *t, coll_admin_cb cb, void *cbarg)
{
    coll_zk_t *z = arg;
    if (!usable(z, cb, cbarg)) {
        return;
    }
    admin_op_t *op = calloc(1, sizeof(*op));
    char path[PATH_MAX_ZK];
    if (!op || snprintf(path, sizeof(path), "%s/admin/delete_topics/%s", z->root, t->name) >=
                   (int)sizeof(path)) {
        free(op);
        answer(cb, cbarg, TRIB_KAFKA_UNKNOWN_SERVER_ERROR, "out of memory");
        return;
    }
    op->z = z;
    op->cb = cb;
    op->arg = cbarg;
    snprintf(op->name, sizeof(op->name), "%s", t->name);
    if (zoo_acreate(z->zh, path, "", 0, &ZOO_OPEN_ACL_UNSAFE, 0, delete_marked, op) != ZOK) {
        answer(cb, cbarg, TRIB_KAFKA_REQUEST_TIMED_OUT, "ZooKeeper is not reachable.");
        admin_op_free(op);
        return;
    }
    coll_zk_rearm(z);
}

static void partitions_written(int rc, const struct Stat *st, const void *data)
{
    (void)st;
    admin_op_t *op = (admin_op_t *)data;
    coll_zk_t *z = op->z;
    if (rc == ZOK) {
        TRIB_LOG(TRIB_LOG_INFO, FACILITY, "topic %s: %" PRId32 " partitions written", op->name,
                 op->npart);
        if (!coll_zk_gone(z, rc)) {
            wait_for(z, WAIT_CREATE, op->name, op->npart, op->cb, op->arg);
        } else {
            answer(op->cb, op->arg, TRIB_KAFKA_NONE, NULL);
        }
    } else if (rc == ZBADVERSION) {
        answer(op->cb, op->arg, TRIB_KAFKA_REASSIGNMENT_IN_PROGRESS,
               "The topic's assignment changed meanwhile: retry.");
    } else if (rc == ZNONODE) {
        answer(op->cb, op->arg, TRIB_KAFKA_UNKNOWN_TOPIC_OR_PARTITION, "Topic '%s' does not exist.",
               op->name);
    } else {
        answer(op->cb, op->arg, zk_error(rc), "Writing the assignment failed: %s", zerror(rc));
    }
    admin_op_free(op);
}

static void zk_create_partitions(void *arg, coll_topic_t *t, int32_t total, bool validate_only,
                                 coll_admin_cb cb, void *cbarg)
{
    coll_zk_t *z = arg;
    if (!usable(z, cb, cbarg)) {
        return;
    }
    zk_topic_t *zt = coll_zk_topic_find(z, t->name, t->name_len);
    if (!zt || !zt->have_asg || zt->asg.npartitions <= 0) {
        answer(cb, cbarg, TRIB_KAFKA_UNKNOWN_TOPIC_OR_PARTITION,
               "The topic's assignment is not known yet.");
        return;
    }
    const coll_zk_assignment_t *cur = &zt->asg;
    for (int32_t i = 0; i < cur->npartitions; i++) {
        if (coll_zk_assignment_reassigning(cur, i)) {
            answer(cb, cbarg, TRIB_KAFKA_REASSIGNMENT_IN_PROGRESS,
                   "Partition %" PRId32 " of the topic is being reassigned: retry when it is done.",
                   i);
            return;
        }
    }
    int32_t old = cur->npartitions, add = total - old;
    int32_t rf = cur->off[1] - cur->off[0];
    coll_assign_broker_t *brokers;
    size_t nb = assign_brokers(z, &brokers);
    coll_zk_assignment_t a;
    memset(&a, 0, sizeof(a));
    a.npartitions = total;
    a.off = malloc((size_t)(total + 1) * sizeof(*a.off));
    a.ids = malloc(((size_t)cur->off[old] + (size_t)add * (size_t)rf) * sizeof(*a.ids));
    int32_t *fresh = malloc((size_t)add * (size_t)rf * sizeof(*fresh));
    admin_op_t *op = calloc(1, sizeof(*op));
    if (!brokers || !a.off || !a.ids || !fresh || !op) {
        free(brokers);
        free(fresh);
        free(op);
        coll_zk_assignment_free(&a);
        answer(cb, cbarg, TRIB_KAFKA_UNKNOWN_SERVER_ERROR, "out of memory");
        return;
    }
    /* Kafka: start at the position of partition 0's first replica among the brokers. */
    int32_t start = 0;
    for (size_t i = 0; i < nb; i++) {
        if (brokers[i].id >= cur->ids[0]) {
            start = (int32_t)i;
            break;
        }
    }
    char why[256];
    int rc = coll_assign_replicas(brokers, nb, add, rf, start, start, old, fresh, why, sizeof(why));
    free(brokers);
    if (rc != 0) {
        free(fresh);
        free(op);
        coll_zk_assignment_free(&a);
        answer(cb, cbarg, TRIB_KAFKA_INVALID_REPLICATION_FACTOR, "%s", why);
        return;
    }
    memcpy(a.off, cur->off, (size_t)(old + 1) * sizeof(*a.off));
    memcpy(a.ids, cur->ids, (size_t)cur->off[old] * sizeof(*a.ids));
    for (int32_t p = 0; p < add; p++) {
        memcpy(a.ids + a.off[old + p], fresh + (size_t)p * (size_t)rf,
               (size_t)rf * sizeof(int32_t));
        a.off[old + p + 1] = a.off[old + p] + rf;
    }
    free(fresh);
    memcpy(a.topic_id, cur->topic_id, sizeof(a.topic_id));
    if (validate_only) {
        coll_zk_assignment_free(&a);
        free(op);
        answer(cb, cbarg, TRIB_KAFKA_NONE, NULL);
        return;
    }
    op->z = z;
    op->cb = cb;
    op->arg = cbarg;
    snprintf(op->name, sizeof(op->name), "%s", t->name);
    op->npart = total;
    op->asg_json = coll_zk_assignment_encode(&a, &op->asg_len);
    coll_zk_assignment_free(&a);
    char path[PATH_MAX_ZK];
    coll_zk_topic_path(z, op->name, 0, 0, path, sizeof(path));
    if (!op->asg_json || zoo_aset(z->zh, path, op->asg_json, (int)op->asg_len, zt->asg_version,
                                  partitions_written, op) != ZOK) {
        answer(cb, cbarg, TRIB_KAFKA_UNKNOWN_SERVER_ERROR, "Writing the assignment failed.");
        admin_op_free(op);
        return;
    }
    coll_zk_rearm(z);
}

static void config_written(int rc, const struct Stat *st, const void *data)
{
    (void)st;
    admin_op_t *op = (admin_op_t *)data;
    if (rc == ZOK) {
        TRIB_LOG(TRIB_LOG_INFO, FACILITY, "altered the config of topic %s", op->name);
        answer(op->cb, op->arg, TRIB_KAFKA_NONE, NULL);
    } else {
        answer(op->cb, op->arg, zk_error(rc), "Writing the config failed: %s", zerror(rc));
    }
    admin_op_free(op);
}

static void config_created(int rc, const char *path, const void *data)
{
    (void)path;
    config_written(rc, NULL, data);
}

static void config_target(int rc, const struct Stat *st, const void *data)
{
    (void)st;
    admin_op_t *op = (admin_op_t *)data;
    coll_zk_t *z = op->z;
    char path[PATH_MAX_ZK];
    coll_zk_topic_path(z, op->name, 4, 0, path, sizeof(path));
    int zrc;
    if (rc == ZOK) {
        zrc = zoo_aset(z->zh, path, op->cfg_json, (int)op->cfg_len, -1, config_written, op);
    } else if (rc == ZNONODE) {
        zrc = zoo_acreate(z->zh, path, op->cfg_json, (int)op->cfg_len, &ZOO_OPEN_ACL_UNSAFE, 0,
                          config_created, op);
    } else {
        config_written(rc, NULL, op);
        return;
    }
    if (zrc != ZOK) {
        config_written(zrc, NULL, op);
        return;
    }
    coll_zk_rearm(z);
}

static void zk_alter_configs(void *arg, coll_topic_t *t, const coll_tcfg_t *ov, uint32_t mask,
                             coll_admin_cb cb, void *cbarg)
{
    coll_zk_t *z = arg;
    if (!usable(z, cb, cbarg)) {
        return;
    }
    admin_op_t *op = calloc(1, sizeof(*op));
    if (!op || !(op->cfg_json = config_json(ov, mask, &op->cfg_len))) {
        free(op);
        answer(cb, cbarg, TRIB_KAFKA_UNKNOWN_SERVER_ERROR, "out of memory");
        return;
    }
    op->z = z;
    op->cb = cb;
    op->arg = cbarg;
    snprintf(op->name, sizeof(op->name), "%s", t->name);
    char path[PATH_MAX_ZK];
    coll_zk_topic_path(z, op->name, 4, 0, path, sizeof(path));
    if (zoo_aexists(z->zh, path, 0, config_target, op) != ZOK) {
        answer(cb, cbarg, TRIB_KAFKA_REQUEST_TIMED_OUT, "ZooKeeper is not reachable.");
        admin_op_free(op);
        return;
    }
    coll_zk_rearm(z);
}

static void zk_elect_preferred(void *arg, coll_topic_t *t, int32_t partition, coll_admin_cb cb,
                               void *cbarg)
{
    coll_zk_t *z = arg;
    zk_topic_t *zt = coll_zk_topic_find(z, t->name, t->name_len);
    if (!zt || partition < 0 || partition >= zt->nparts) {
        answer(cb, cbarg, TRIB_KAFKA_UNKNOWN_TOPIC_OR_PARTITION, "Unknown partition.");
        return;
    }
    coll_zk_ctl_elect_preferred(z, zt, partition, cb, cbarg);
}

static void zk_reassign(void *arg, coll_topic_t *t, coll_reassign_part_t *parts, size_t n,
                        coll_admin_cb cb, void *cbarg)
{
    coll_zk_t *z = arg;
    if (!usable(z, cb, cbarg)) {
        return;
    }
    coll_zk_reassign(z, coll_zk_topic_find(z, t->name, t->name_len), parts, n, cb, cbarg);
}

static bool zk_reassignment(void *arg, const coll_topic_t *t, int32_t partition, int32_t *adding,
                            int32_t *nadding, int32_t *removing, int32_t *nremoving)
{
    coll_zk_t *z = arg;
    return coll_zk_reassignment(coll_zk_topic_find(z, t->name, t->name_len), partition, adding,
                                nadding, removing, nremoving);
}

/* ---- the leader's ISR changes ------------------------------------------------------------ */

typedef struct isr_op {
    rd_t *rd;
    coll_zk_state_t st;
} isr_op_t;

static void isr_written(int rc, const struct Stat *st, const void *data)
{
    isr_op_t *op = (isr_op_t *)data;
    rd_t *r = op->rd;
    coll_zk_t *z = r->z;
    int32_t i = r->part;
    zk_topic_t *zt = rd_topic(r, rc);
    coll_zk_state_t s = op->st;
    free(r);
    free(op);
    if (!zt || i >= zt->nparts || !zt->t) {
        return; /* the partition went away: its pending change was answered then */
    }
    zk_part_t *zp = &zt->parts[i];
    coll_partition_t *p = coll_cluster_partition(zt->t, i);
    if (!zp->isr_inflight || !p) {
        return;
    }
    if (rc == ZOK) {
        z->topics->alter_isr_ok++;
        apply_state(z, zt, i, &s, st->version);
        isr_answer(zp, p, 0);
        return;
    }
    if (rc == ZBADVERSION || rc == ZNONODE) {
        /* Moved on: read what is there, then tell the leader (never retry on this version). */
        zp->isr_stale = true;
        coll_zk_read_state(z, zt, i);
        return;
    }
    isr_answer(zp, p, -EIO);
}

int coll_zk_alter_isr(void *arg, coll_partition_t *p, const int32_t *isr, int32_t n, coll_isr_cb cb,
                      void *cbarg)
{
    coll_zk_t *z = arg;
    if (n <= 0 || n > COLL_ZK_MAX_REPLICAS || !coll_partition_leads(p, z->self.id)) {
        return -EINVAL;
    }
    zk_topic_t *zt = coll_zk_topic_find(z, p->topic->name, p->topic->name_len);
    if (!zt || p->index >= zt->nparts || !zt->parts[p->index].have_state) {
        return -EINVAL;
    }
    zk_part_t *zp = &zt->parts[p->index];
    if (zp->isr_inflight) {
        return -EBUSY;
    }
    for (int32_t k = 0; k < n; k++) {
        /*
         * A replica joins the ISR only while it is registered and not
         * shutting down (Kafka's KIP-841): a broker in its controlled
         * shutdown still fetches, and letting it back in would only make
         * the controller take it out again with another leader epoch.
         */
        const coll_zk_broker_t *b = coll_zk_broker_find(z, isr[k]);
        if (!coll_partition_in_isr(p, isr[k]) && (!b || b->shutting_down)) {
            return -EAGAIN;
        }
    }
    if (!z->zh || z->conn != CONN_CONNECTED || z->closing) {
        return -ENOTCONN;
    }
    isr_op_t *op = malloc(sizeof(*op));
    rd_t *r = rd_new(z, zt, RD_STATE, p->index);
    if (!op || !r) {
        free(op);
        free(r);
        return -ENOMEM;
    }
    op->rd = r;
    op->st = zp->st;
    op->st.leader = p->leader;
    op->st.leader_epoch = p->leader_epoch;
    op->st.nisr = n;
    memcpy(op->st.isr, isr, (size_t)n * sizeof(*isr));
    char json[1024], path[PATH_MAX_ZK];
    int jl = coll_zk_state_encode(&op->st, json, sizeof(json));
    coll_zk_topic_path(z, zt->name, 3, p->index, path, sizeof(path));
    if (jl < 0 || zoo_aset(z->zh, path, json, jl, p->partition_epoch, isr_written, op) != ZOK) {
        free(op);
        free(r);
        return -EIO;
    }
    zp->isr_inflight = true;
    zp->isr_cb = cb;
    zp->isr_arg = cbarg;
    coll_zk_rearm(z);
    return 0;
}

/* ---- lifetime --------------------------------------------------------------------------- */

static const coll_cluster_admin_t *admin_ops(void)
{
    static coll_cluster_admin_t ops;
    ops.create_topic = zk_create_topic;
    ops.delete_topic = zk_delete_topic;
    ops.create_partitions = zk_create_partitions;
    ops.alter_configs = zk_alter_configs;
    ops.elect_preferred = zk_elect_preferred;
    ops.reassign = zk_reassign;
    ops.reassignment = zk_reassignment;
    return &ops;
}

int coll_zk_topics_new(coll_zk_t *z)
{
    if (!z->cluster) {
        return 0;
    }
    struct zk_topics *T = calloc(1, sizeof(*T));
    if (!T) {
        return -ENOMEM;
    }
    z->topics = T;
    const char *test = getenv("TRIB_TEST_ALTER_ISR");
    T->test_isr_topic = test && *test ? test : NULL;
    uv_timer_init(z->loop, &T->timer);
    T->timer.data = z;
    T->timer_open = true;
    coll_cluster_admin_t a = *admin_ops();
    a.arg = z;
    a.next_producer_id = coll_zk_next_producer_id;
    coll_cluster_set_admin(z->cluster, &a);
    return 0;
}

static void cancel_isr(coll_zk_t *z, zk_topic_t *zt, void *arg)
{
    (void)z;
    (void)arg;
    for (int32_t i = 0; i < zt->nparts; i++) {
        coll_partition_t *p = zt->t ? coll_cluster_partition(zt->t, i) : NULL;
        if (p) {
            isr_answer(&zt->parts[i], p, -ECANCELED);
        }
        elect_answer(&zt->parts[i], TRIB_KAFKA_REQUEST_TIMED_OUT, "The broker is stopping.");
    }
    if (zt->rs_cb) {
        /* The reassignment was written; only its read-back is cut short. */
        coll_admin_cb cb = zt->rs_cb;
        void *cbarg = zt->rs_cbarg;
        zt->rs_cb = NULL;
        zt->rs_cbarg = NULL;
        answer(cb, cbarg, TRIB_KAFKA_NONE, NULL);
    }
}

void coll_zk_topics_closing(coll_zk_t *z)
{
    struct zk_topics *T = z->topics;
    if (!T) {
        return;
    }
    coll_zk_topics_foreach(z, cancel_isr, NULL);
    while (T->waiters) {
        waiter_t *w = T->waiters;
        T->waiters = w->next;
        answer(w->cb, w->arg, TRIB_KAFKA_NONE, NULL);
        free(w->name);
        free(w);
    }
    if (T->timer_open) {
        T->timer_open = false;
        uv_close((uv_handle_t *)&T->timer, NULL);
    }
}

static void free_topic(coll_zk_t *z, zk_topic_t *zt, void *arg)
{
    (void)z;
    (void)arg;
    coll_zk_assignment_free(&zt->asg);
    free(zt->parts);
    free(zt->name);
    free(zt);
}

void coll_zk_topics_free(coll_zk_t *z)
{
    struct zk_topics *T = z->topics;
    if (!T) {
        return;
    }
    coll_zk_topics_foreach(z, free_topic, NULL);
    free(T->buckets);
    free(T);
    z->topics = NULL;
}

void coll_zk_topics_render_metrics(coll_zk_t *z, struct trib_buf *b)
{
    struct zk_topics *T = z->topics;
    if (!T) {
        return;
    }
    trib_prom_header(b, "tributary_cluster_isr_writes_total", "counter",
                     "ISR changes this broker wrote as leader");
    trib_prom_sample_u64(b, "tributary_cluster_isr_writes_total", NULL, T->alter_isr_ok);
    trib_prom_header(b, "tributary_cluster_isr_writes_stale_total", "counter",
                     "ISR changes refused because the state had moved on (read again)");
    trib_prom_sample_u64(b, "tributary_cluster_isr_writes_stale_total", NULL, T->alter_isr_stale);
    if (T->test_isr_topic) {
        trib_prom_header(b, "tributary_test_alter_isr_stale_total", "counter",
                         "test hook: ISR proposals at a stale version answered -ESTALE");
        trib_prom_sample_u64(b, "tributary_test_alter_isr_stale_total", NULL, T->test_isr_stale);
        trib_prom_header(b, "tributary_test_alter_isr_ok_total", "counter",
                         "test hook: ISR proposals written and applied before the callback");
        trib_prom_sample_u64(b, "tributary_test_alter_isr_ok_total", NULL, T->test_isr_ok);
        trib_prom_header(b, "tributary_test_alter_isr_bad_total", "counter",
                         "test hook: ISR proposals answered otherwise");
        trib_prom_sample_u64(b, "tributary_test_alter_isr_bad_total", NULL, T->test_isr_bad);
    }
}

#endif
