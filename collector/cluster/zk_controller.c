/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the controller writes (Kafka 2.8's PartitionStateMachine,
 * ReplicaStateMachine and Election, with ZooKeeper watches in place of
 * LeaderAndIsr requests). Every write is a controller multi
 * (coll_zk_controller_multi2: checked against /controller_epoch at the
 * version this broker's election wrote, so a deposed controller writes
 * nothing, KAFKA-6082) that also compares-and-sets the state znode at the
 * version the controller read. A refused write is followed by a fresh read
 * of the state, and the decision is taken again from what was read.
 *
 * The controller works from the same cache every broker keeps
 * (zk_topics.c) and looks at a partition whenever its state is read, when
 * the live brokers change and when it is elected:
 *
 *   no state znode     leader = first live replica in assignment order,
 *                      ISR = the live replicas, leader_epoch 0 (no live
 *                      replica: nothing is written until one registers);
 *   leader gone or     leader = first replica of the assignment that is
 *   shutting down      live and in the ISR; ISR = ISR without dead or
 *                      shutting-down brokers; leader_epoch + 1. With no
 *                      such replica and the leader dead: leader -1, the
 *                      ISR keeps its live members, or its last member
 *                      when none is live (unclean election is off: only
 *                      that replica may lead again). A shutting-down
 *                      leader with no successor keeps leading.
 *   no leader          the same election: the first ISR member to come
 *                      back leads (leader_epoch + 1);
 *   a follower in the  removed from the ISR, leader_epoch + 1 (Kafka's
 *   ISR dead or        OfflineReplica transition bumps the epoch too);
 *   shutting down
 *   leader or ISR      (a cancelled reassignment) handled as a dead one:
 *   member no longer   the leader is elected again among the replicas,
 *   a replica          the ISR keeps only replicas.
 *
 * Reassignments (adding_replicas / removing_replicas in the topic znode)
 * are completed by zk_reassign.c after the checks above.
 *
 * Automatic rebalance (cluster.auto.leader.rebalance.enable, off by
 * default): every cluster.leader.imbalance.check.interval.seconds the
 * controller runs a preferred election (as ElectLeaders) for each
 * partition led by another replica than its first while the first is
 * live and in the ISR, and no reassignment of it is in progress. Kafka
 * waits until a broker's share of such partitions passes
 * leader.imbalance.per.broker.percentage; here any one counts.
 *
 * "Live" is registered in /brokers/ids and not shutting_down; the controller
 * acts only once it has read the live brokers in its session. A broker
 * whose registration has a new broker epoch (czxid) since the controller
 * last looked restarted in between, perhaps unseen: it is first handled as
 * failed (leaderships moved, out of the ISRs), then as a starting broker.
 *
 * Deletion: the admin path creates /admin/delete_topics/<t>; the
 * controller (watching that path's children) deletes the topic's state
 * znodes, partition znodes, the topic znode, its config and then the
 * marker, in that order in one session (ZooKeeper applies one session's
 * requests in order). Every broker then drops the topic from its watch on
 * /brokers/topics and deletes its logs.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/zk.h"

#ifdef TRIB_HAVE_ZOOKEEPER

#include "cluster/cluster_int.h"
#include "cluster/zk_int.h"
#include "tributary/buf.h"
#include "tributary/kafka_error.h"
#include "tributary/log.h"
#include "tributary/prom.h"

#define FACILITY "controller"

struct zk_ctl {
    bool listing, list_again;
    uint64_t elections, isr_removals, states_created, writes_refused, bounces;
    /* Automatic preferred-leader elections: when the next pass is due (0: one interval from now).
     */
    int64_t next_rebalance_ms;
    uint64_t auto_elections, auto_refused;
    /* The brokers (id, epoch) as of the last change handled. */
    coll_zk_broker_t *seen;
    size_t nseen;
    /* During one pass: brokers whose registration is a new one (restarted in between). */
    int32_t *bounced;
    size_t nbounced;
};

typedef struct ctl_op {
    coll_zk_t *z;
    uint64_t gen;
    int32_t part;
    bool leader_change, create;
    coll_admin_cb cb; /* ElectLeaders: answered when written */
    void *cbarg;
    zoo_op_result_t results[1];
    char name[];
} ctl_op_t;

static bool bounced(const coll_zk_t *z, int32_t id)
{
    for (size_t i = 0; z->ctl && i < z->ctl->nbounced; i++) {
        if (z->ctl->bounced[i] == id) {
            return true;
        }
    }
    return false;
}

static bool alive(const coll_zk_t *z, int32_t id)
{
    return id >= 0 && coll_zk_broker_find(z, id) != NULL && !bounced(z, id);
}

static bool up(const coll_zk_t *z, int32_t id)
{
    const coll_zk_broker_t *b = id >= 0 ? coll_zk_broker_find(z, id) : NULL;
    return b && !b->shutting_down && !bounced(z, id);
}

static bool member(const int32_t *v, int32_t n, int32_t id)
{
    for (int32_t i = 0; i < n; i++) {
        if (v[i] == id) {
            return true;
        }
    }
    return false;
}

static bool ready(const coll_zk_t *z)
{
    return z->is_controller && z->brokers_loaded && z->ctl && z->conn == CONN_CONNECTED;
}

static void op_answer(ctl_op_t *op, int16_t code, const char *msg)
{
    if (!op->cb) {
        return;
    }
    coll_admin_result_t res;
    res.code = code;
    snprintf(res.msg, sizeof(res.msg), "%s", msg ? msg : "");
    op->cb(op->cbarg, &res);
    op->cb = NULL;
}

static void written(void *arg, int rc, bool fenced)
{
    ctl_op_t *op = arg;
    coll_zk_t *z = op->z;
    if (rc == ZOK) {
        op_answer(op, 0, NULL);
    } else if (fenced) {
        op_answer(op, TRIB_KAFKA_NOT_CONTROLLER, "This broker is no longer the controller.");
    } else {
        op_answer(op, TRIB_KAFKA_REQUEST_TIMED_OUT,
                  "The partition's state changed meanwhile: ask again.");
    }
    if (coll_zk_gone(z, rc)) {
        free(op);
        return;
    }
    zk_topic_t *zt = coll_zk_topic_find(z, op->name, strlen(op->name));
    if (!zt || zt->gen != op->gen || op->part >= zt->nparts) {
        free(op);
        return;
    }
    zt->parts[op->part].ctl_inflight = false;
    if (rc == ZOK) {
        if (op->create) {
            z->ctl->states_created++;
        } else if (op->leader_change) {
            z->ctl->elections++;
        } else {
            z->ctl->isr_removals++;
        }
    } else if (fenced) {
        TRIB_LOG(TRIB_LOG_WARN, FACILITY,
                 "%s-%d: the write was refused by the controller epoch check: no longer the "
                 "controller",
                 op->name, (int)op->part);
    } else {
        z->ctl->writes_refused++;
        TRIB_LOG(TRIB_LOG_DEBUG, FACILITY, "%s-%d: state write refused (%s): reading it again",
                 op->name, (int)op->part, zerror(rc));
    }
    /* Whatever happened, decide again from what ZooKeeper holds now. */
    coll_zk_read_state(z, zt, op->part);
    free(op);
}

static ctl_op_t *op_new(coll_zk_t *z, zk_topic_t *zt, int32_t i)
{
    ctl_op_t *op = calloc(1, sizeof(*op) + zt->len + 1);
    if (!op) {
        return NULL;
    }
    op->z = z;
    op->gen = zt->gen;
    op->part = i;
    memcpy(op->name, zt->name, zt->len + 1);
    return op;
}

static void ignore_created(int rc, const char *path, const void *data)
{
    (void)rc;
    (void)path;
    (void)data;
}

static void create_state(coll_zk_t *z, zk_topic_t *zt, int32_t i, const coll_partition_t *p)
{
    coll_zk_state_t st;
    memset(&st, 0, sizeof(st));
    st.controller_epoch = z->controller_epoch;
    st.leader = -1;
    for (int32_t k = 0; k < p->nreplicas && st.nisr < COLL_ZK_MAX_REPLICAS; k++) {
        if (up(z, p->replicas[k])) {
            st.isr[st.nisr++] = p->replicas[k];
        }
    }
    if (st.nisr == 0) {
        return; /* no live replica: again when brokers change */
    }
    st.leader = st.isr[0];
    char json[1024], parts[PATH_MAX_ZK], part[PATH_MAX_ZK], path[PATH_MAX_ZK];
    int jl = coll_zk_state_encode(&st, json, sizeof(json));
    if (jl < 0 || coll_zk_topic_path(z, zt->name, 1, i, parts, sizeof(parts)) != 0 ||
        coll_zk_topic_path(z, zt->name, 2, i, part, sizeof(part)) != 0 ||
        coll_zk_topic_path(z, zt->name, 3, i, path, sizeof(path)) != 0) {
        return;
    }
    ctl_op_t *op = op_new(z, zt, i);
    if (!op) {
        return;
    }
    op->create = true;
    /* The parents (empty znodes, as Kafka's), then the state in the fenced multi. */
    zoo_acreate(z->zh, parts, "", 0, &ZOO_OPEN_ACL_UNSAFE, 0, ignore_created, NULL);
    zoo_acreate(z->zh, part, "", 0, &ZOO_OPEN_ACL_UNSAFE, 0, ignore_created, NULL);
    zoo_op_t zop;
    zoo_create_op_init(&zop, path, json, jl, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0);
    if (coll_zk_controller_multi2(z, &zop, 1, op->results, written, op) != 0) {
        free(op);
        return;
    }
    zt->parts[i].ctl_inflight = true;
    TRIB_LOG(TRIB_LOG_INFO, FACILITY,
             "%s-%d: new partition: leader %" PRId32 ", %" PRId32 " in the ISR", zt->name, (int)i,
             st.leader, st.nisr);
}

void coll_zk_ctl_check(coll_zk_t *z, zk_topic_t *zt, int32_t i)
{
    if (i < 0 || i >= zt->nparts) {
        return;
    }
    zk_part_t *zp = &zt->parts[i];
    if (zp->elect_cb && !zp->reading && !zp->ctl_inflight) {
        /* An ElectLeaders that waited for the partition's state to settle. */
        coll_admin_cb cb = zp->elect_cb;
        void *arg = zp->elect_arg;
        zp->elect_cb = NULL;
        zp->elect_arg = NULL;
        coll_zk_ctl_elect_preferred(z, zt, i, cb, arg);
        return;
    }
    if (!ready(z) || !zt->t || zt->deleting) {
        return;
    }
    coll_partition_t *p = coll_cluster_partition(zt->t, i);
    if (!p || zp->reading || zp->ctl_inflight || p->nreplicas == 0) {
        return;
    }
    if (!zp->have_state) {
        if (zp->no_state) {
            create_state(z, zt, i, p);
        }
        return;
    }
    const coll_zk_state_t *cur = &zp->st;
    coll_zk_state_t nw = *cur;
    int32_t L = cur->leader;
    bool leader_change = false;
    if (L < 0 || !up(z, L) || !member(p->replicas, p->nreplicas, L)) {
        int32_t cand = -1;
        for (int32_t k = 0; k < p->nreplicas && cand < 0; k++) {
            int32_t r = p->replicas[k];
            if (up(z, r) && member(cur->isr, cur->nisr, r)) {
                cand = r;
            }
        }
        if (cand >= 0) {
            nw.leader = cand;
            nw.nisr = 0;
            for (int32_t k = 0; k < cur->nisr; k++) {
                if (up(z, cur->isr[k]) && member(p->replicas, p->nreplicas, cur->isr[k])) {
                    nw.isr[nw.nisr++] = cur->isr[k];
                }
            }
            leader_change = cand != L;
        } else if (L >= 0 && alive(z, L)) {
            /* Shutting down with no successor in the ISR: it keeps leading; drop dead followers. */
            nw.nisr = 0;
            for (int32_t k = 0; k < cur->nisr; k++) {
                if (cur->isr[k] == L || alive(z, cur->isr[k])) {
                    nw.isr[nw.nisr++] = cur->isr[k];
                }
            }
        } else {
            /* Offline: no live ISR member. Unclean election is off. */
            nw.leader = -1;
            nw.nisr = 0;
            for (int32_t k = 0; k < cur->nisr; k++) {
                if (alive(z, cur->isr[k])) {
                    nw.isr[nw.nisr++] = cur->isr[k];
                }
            }
            if (nw.nisr == 0 && cur->nisr > 0) {
                /* Keep the last member: only it may lead again. */
                nw.isr[0] = member(cur->isr, cur->nisr, L) ? L : cur->isr[cur->nisr - 1];
                nw.nisr = 1;
            }
            leader_change = L >= 0;
        }
    } else {
        nw.nisr = 0;
        for (int32_t k = 0; k < cur->nisr; k++) {
            if (cur->isr[k] == L ||
                (up(z, cur->isr[k]) && member(p->replicas, p->nreplicas, cur->isr[k]))) {
                nw.isr[nw.nisr++] = cur->isr[k];
            }
        }
    }
    if (nw.leader == cur->leader && nw.nisr == cur->nisr &&
        memcmp(nw.isr, cur->isr, (size_t)nw.nisr * sizeof(int32_t)) == 0) {
        return;
    }
    nw.leader_epoch = cur->leader_epoch + 1;
    nw.controller_epoch = z->controller_epoch;
    char json[1024], path[PATH_MAX_ZK];
    int jl = coll_zk_state_encode(&nw, json, sizeof(json));
    if (jl < 0 || coll_zk_topic_path(z, zt->name, 3, i, path, sizeof(path)) != 0) {
        return;
    }
    ctl_op_t *op = op_new(z, zt, i);
    if (!op) {
        return;
    }
    op->leader_change = leader_change;
    zoo_op_t zop;
    zoo_set_op_init(&zop, path, json, jl, zp->version, NULL);
    if (coll_zk_controller_multi2(z, &zop, 1, op->results, written, op) != 0) {
        free(op);
        return;
    }
    zp->ctl_inflight = true;
    TRIB_LOG(TRIB_LOG_INFO, FACILITY,
             "%s-%d: leader %" PRId32 " -> %" PRId32 ", ISR %" PRId32 " -> %" PRId32
             " members, leader epoch %" PRId32,
             zt->name, (int)i, L, nw.leader, cur->nisr, nw.nisr, nw.leader_epoch);
}

static void check_topic(coll_zk_t *z, zk_topic_t *zt, void *arg)
{
    (void)arg;
    for (int32_t i = 0; i < zt->nparts; i++) {
        coll_zk_ctl_check(z, zt, i);
    }
    coll_zk_reassign_check(z, zt);
}

void coll_zk_ctl_check_all(coll_zk_t *z)
{
    if (!ready(z) || !z->topics) {
        return;
    }
    coll_zk_topics_foreach(z, check_topic, NULL);
}

static void remember_brokers(coll_zk_t *z)
{
    struct zk_ctl *C = z->ctl;
    coll_zk_broker_t *copy = malloc((z->nbrokers ? z->nbrokers : 1) * sizeof(*copy));
    if (!copy) {
        return;
    }
    memcpy(copy, z->brokers, z->nbrokers * sizeof(*copy));
    free(C->seen);
    C->seen = copy;
    C->nseen = z->nbrokers;
}

/*
 * The live brokers changed. A broker whose registration has another epoch
 * (czxid) than the one last seen restarted in between, perhaps without the
 * controller ever seeing it gone: as Kafka's controller does, it is first
 * handled as failed (out of the ISRs, its leaderships moved), then as a
 * broker that starts.
 */
void coll_zk_ctl_brokers_changed(coll_zk_t *z)
{
    struct zk_ctl *C = z->ctl;
    if (!C) {
        return;
    }
    if (ready(z) && z->topics) {
        int32_t *b = malloc((C->nseen ? C->nseen : 1) * sizeof(*b));
        size_t nb = 0;
        for (size_t i = 0; b && i < C->nseen; i++) {
            const coll_zk_broker_t *now = coll_zk_broker_find(z, C->seen[i].id);
            if (now && now->epoch != C->seen[i].epoch) {
                TRIB_LOG(TRIB_LOG_INFO, FACILITY,
                         "broker %" PRId32 " registered again (epoch %" PRId64 " -> %" PRId64
                         "): handled as failed, then as started",
                         now->id, C->seen[i].epoch, now->epoch);
                b[nb++] = now->id;
                C->bounces++;
            }
        }
        if (nb > 0) {
            C->bounced = b;
            C->nbounced = nb;
            coll_zk_topics_foreach(z, check_topic, NULL);
            C->bounced = NULL;
            C->nbounced = 0;
        }
        free(b);
        coll_zk_topics_foreach(z, check_topic, NULL);
    }
    remember_brokers(z);
}

/* ---- preferred leader election (ElectLeaders) ------------------------------------------ */

void coll_zk_ctl_elect_preferred(coll_zk_t *z, zk_topic_t *zt, int32_t i, coll_admin_cb cb,
                                 void *arg)
{
    coll_admin_result_t res;
    res.code = 0;
    res.msg[0] = '\0';
    zk_part_t *zp = &zt->parts[i];
    coll_partition_t *p = zt->t ? coll_cluster_partition(zt->t, i) : NULL;
    if (ready(z) && (zp->reading || zp->ctl_inflight) && !zp->elect_cb) {
        /* Decided once the state in flight is read. */
        zp->elect_cb = cb;
        zp->elect_arg = arg;
        return;
    }
    if (!ready(z)) {
        res.code = TRIB_KAFKA_NOT_CONTROLLER;
        snprintf(res.msg, sizeof(res.msg), "This broker is not the controller.");
    } else if (!p || !zp->have_state || p->nreplicas == 0) {
        res.code = TRIB_KAFKA_UNKNOWN_TOPIC_OR_PARTITION;
        snprintf(res.msg, sizeof(res.msg), "The partition has no state yet.");
    } else if (zp->st.leader == p->replicas[0]) {
        res.code = TRIB_KAFKA_ELECTION_NOT_NEEDED;
        snprintf(res.msg, sizeof(res.msg), "Leader election not needed for %s-%d.", zt->name,
                 (int)i);
    } else if (!up(z, p->replicas[0]) || !member(zp->st.isr, zp->st.nisr, p->replicas[0])) {
        res.code = TRIB_KAFKA_PREFERRED_LEADER_NOT_AVAILABLE;
        snprintf(res.msg, sizeof(res.msg),
                 "Failed to elect leader for partition %s-%d: the preferred replica %" PRId32
                 " is not alive or not in the ISR.",
                 zt->name, (int)i, p->replicas[0]);
    } else if (zp->reading || zp->ctl_inflight) {
        res.code = TRIB_KAFKA_REQUEST_TIMED_OUT;
        snprintf(res.msg, sizeof(res.msg), "Another change of the partition is in flight.");
    }
    if (res.code != 0) {
        cb(arg, &res);
        return;
    }
    coll_zk_state_t nw = zp->st;
    nw.leader = p->replicas[0];
    nw.leader_epoch = zp->st.leader_epoch + 1;
    nw.controller_epoch = z->controller_epoch;
    char json[1024], path[PATH_MAX_ZK];
    int jl = coll_zk_state_encode(&nw, json, sizeof(json));
    ctl_op_t *op = op_new(z, zt, i);
    zoo_op_t zop;
    if (op && jl >= 0 && coll_zk_topic_path(z, zt->name, 3, i, path, sizeof(path)) == 0) {
        op->leader_change = true;
        op->cb = cb;
        op->cbarg = arg;
        zoo_set_op_init(&zop, path, json, jl, zp->version, NULL);
        if (coll_zk_controller_multi2(z, &zop, 1, op->results, written, op) == 0) {
            zp->ctl_inflight = true;
            TRIB_LOG(TRIB_LOG_INFO, FACILITY,
                     "%s-%d: preferred leader %" PRId32 " (was %" PRId32 "), leader epoch %" PRId32,
                     zt->name, (int)i, nw.leader, zp->st.leader, nw.leader_epoch);
            return;
        }
    }
    free(op);
    res.code = TRIB_KAFKA_UNKNOWN_SERVER_ERROR;
    snprintf(res.msg, sizeof(res.msg), "The election could not be written.");
    cb(arg, &res);
}

/* ---- automatic preferred-leader rebalancing ---------------------------------------------- */

static void auto_elected(void *arg, const coll_admin_result_t *res)
{
    coll_zk_t *z = arg;
    if (res->code != 0 && z->ctl) {
        z->ctl->auto_refused++;
        TRIB_LOG(TRIB_LOG_DEBUG, FACILITY, "automatic preferred-leader election: %s", res->msg);
    }
}

static void rebalance_topic(coll_zk_t *z, zk_topic_t *zt, void *arg)
{
    (void)arg;
    if (!zt->t || zt->deleting) {
        return;
    }
    for (int32_t i = 0; i < zt->nparts; i++) {
        zk_part_t *zp = &zt->parts[i];
        coll_partition_t *p = coll_cluster_partition(zt->t, i);
        if (!p || p->nreplicas == 0 || !zp->have_state || zp->reading || zp->ctl_inflight ||
            zp->elect_cb || coll_zk_assignment_reassigning(&zt->asg, i)) {
            continue;
        }
        int32_t pref = p->replicas[0];
        if (zp->st.leader == pref || !up(z, pref) || !member(zp->st.isr, zp->st.nisr, pref)) {
            continue;
        }
        TRIB_LOG(TRIB_LOG_INFO, FACILITY,
                 "%s-%d: automatic rebalance: leadership back to the preferred replica %" PRId32,
                 zt->name, (int)i, pref);
        z->ctl->auto_elections++;
        coll_zk_ctl_elect_preferred(z, zt, i, auto_elected, z);
    }
}

void coll_zk_ctl_tick(coll_zk_t *z)
{
    struct zk_ctl *C = z->ctl;
    if (!C || z->leader_rebalance_ms == 0 || !ready(z) || !z->topics) {
        return;
    }
    int64_t now = coll_zk_now_ms();
    if (C->next_rebalance_ms == 0) {
        C->next_rebalance_ms = now + z->leader_rebalance_ms;
        return;
    }
    if (now < C->next_rebalance_ms) {
        return;
    }
    C->next_rebalance_ms = now + z->leader_rebalance_ms;
    coll_zk_topics_foreach(z, rebalance_topic, NULL);
}

/* ---- deletion ---------------------------------------------------------------------------- */

static void deleted(int rc, const void *data)
{
    (void)data;
    if (rc != ZOK && rc != ZNONODE && rc != ZCLOSING) {
        TRIB_LOG(TRIB_LOG_WARN, FACILITY, "deleting a topic's znode: %s", zerror(rc));
    }
}

static void delete_topic(coll_zk_t *z, zk_topic_t *zt)
{
    char path[PATH_MAX_ZK];
    zt->deleting = true;
    if (zt->delete_issued) {
        return;
    }
    zt->delete_issued = true;
    TRIB_LOG(TRIB_LOG_INFO, FACILITY, "deleting topic %s", zt->name);
    /* Children before parents: one session's requests are applied in order. */
    for (int32_t i = 0; i < zt->nparts; i++) {
        if (coll_zk_topic_path(z, zt->name, 3, i, path, sizeof(path)) == 0) {
            zoo_adelete(z->zh, path, -1, deleted, NULL);
        }
    }
    for (int32_t i = 0; i < zt->nparts; i++) {
        if (coll_zk_topic_path(z, zt->name, 2, i, path, sizeof(path)) == 0) {
            zoo_adelete(z->zh, path, -1, deleted, NULL);
        }
    }
    for (int kind = 1; kind >= 0; kind--) {
        if (coll_zk_topic_path(z, zt->name, kind, 0, path, sizeof(path)) == 0) {
            zoo_adelete(z->zh, path, -1, deleted, NULL);
        }
    }
    if (coll_zk_topic_path(z, zt->name, 4, 0, path, sizeof(path)) == 0) {
        zoo_adelete(z->zh, path, -1, deleted, NULL);
    }
    if (snprintf(path, sizeof(path), "%s/admin/delete_topics/%s", z->root, zt->name) <
        (int)sizeof(path)) {
        zoo_adelete(z->zh, path, -1, deleted, NULL);
    }
    coll_zk_rearm(z);
}

static void markers_listed(int rc, const struct String_vector *names, const void *data)
{
    coll_zk_t *z = (coll_zk_t *)data;
    if (coll_zk_gone(z, rc)) {
        return;
    }
    z->ctl->listing = false;
    if (rc == ZOK && z->is_controller) {
        for (int32_t i = 0; i < names->count; i++) {
            const char *name = names->data[i];
            zk_topic_t *zt = coll_zk_topic_find(z, name, strlen(name));
            if (zt && zt->have_asg) {
                delete_topic(z, zt);
            }
            /* A marker for a topic not read yet: seen again once it is. */
        }
    } else if (rc != ZOK) {
        TRIB_LOG(TRIB_LOG_WARN, FACILITY, "listing /admin/delete_topics: %s", zerror(rc));
    }
    if (z->ctl->list_again) {
        z->ctl->list_again = false;
        coll_zk_ctl_check_deletions(z);
    } else {
        coll_zk_ctl_check_all(z);
    }
}

void coll_zk_ctl_check_deletions(coll_zk_t *z)
{
    if (!z->ctl || !z->is_controller || !z->zh) {
        return;
    }
    if (z->ctl->listing) {
        z->ctl->list_again = true;
        return;
    }
    char path[PATH_MAX_ZK];
    coll_zk_path(z, "/admin/delete_topics", path, sizeof(path));
    z->ctl->listing = true;
    if (zoo_aget_children(z->zh, path, 1, markers_listed, z) != ZOK) {
        z->ctl->listing = false;
    }
    coll_zk_rearm(z);
}

bool coll_zk_ctl_watch(coll_zk_t *z, int type, const char *path)
{
    char p[PATH_MAX_ZK];
    coll_zk_path(z, "/admin/delete_topics", p, sizeof(p));
    if (strcmp(path, p) != 0) {
        return false;
    }
    if (type == ZOO_CHILD_EVENT) {
        coll_zk_ctl_check_deletions(z);
    }
    return true;
}

void coll_zk_ctl_topic_gone(coll_zk_t *z, const char *name)
{
    (void)z;
    (void)name;
}

/* ---- lifetime ------------------------------------------------------------------------------ */

static void forget_deletion(coll_zk_t *z, zk_topic_t *zt, void *arg)
{
    (void)z;
    (void)arg;
    zt->deleting = zt->delete_issued = false;
}

void coll_zk_ctl_elected(coll_zk_t *z)
{
    if (!z->ctl) {
        return;
    }
    z->ctl->listing = z->ctl->list_again = false;
    z->ctl->next_rebalance_ms = 0; /* the first automatic rebalance one interval from now */
    if (z->topics) {
        /* Deletions this broker started in an earlier term are issued again. */
        coll_zk_topics_foreach(z, forget_deletion, NULL);
    }
    remember_brokers(z);
    /* The deletions first (their topics are not to get new states), then every partition. */
    coll_zk_ctl_check_deletions(z);
}

void coll_zk_ctl_resigned(coll_zk_t *z)
{
    (void)z;
}

int coll_zk_ctl_new(coll_zk_t *z)
{
    z->ctl = calloc(1, sizeof(*z->ctl));
    return z->ctl ? 0 : -ENOMEM;
}

void coll_zk_ctl_free(coll_zk_t *z)
{
    if (z->ctl) {
        free(z->ctl->seen);
    }
    free(z->ctl);
    z->ctl = NULL;
}

typedef struct counts {
    uint64_t offline, under;
} counts_t;

static void count_topic(coll_zk_t *z, zk_topic_t *zt, void *arg)
{
    (void)z;
    counts_t *c = arg;
    for (int32_t i = 0; i < zt->nparts && zt->t; i++) {
        const coll_partition_t *p = coll_cluster_partition(zt->t, i);
        if (!p || !zt->parts[i].have_state) {
            continue;
        }
        c->offline += p->leader < 0 ? 1 : 0;
        c->under += p->nisr < p->nreplicas ? 1 : 0;
    }
}

void coll_zk_ctl_render_metrics(coll_zk_t *z, struct trib_buf *b)
{
    if (!z->ctl) {
        return;
    }
    counts_t c = {0, 0};
    if (z->topics && z->is_controller) {
        coll_zk_topics_foreach(z, count_topic, &c);
    }
    trib_prom_header(b, "tributary_cluster_offline_partitions", "gauge",
                     "partitions without a leader (reported by the controller; 0 elsewhere)");
    trib_prom_sample_u64(b, "tributary_cluster_offline_partitions", NULL, c.offline);
    trib_prom_header(b, "tributary_cluster_controller_under_replicated_partitions", "gauge",
                     "partitions whose ISR is smaller than their replica list (controller)");
    trib_prom_sample_u64(b, "tributary_cluster_controller_under_replicated_partitions", NULL,
                         c.under);
    trib_prom_header(b, "tributary_cluster_leader_elections_total", "counter",
                     "leader changes this broker wrote as controller");
    trib_prom_sample_u64(b, "tributary_cluster_leader_elections_total", NULL, z->ctl->elections);
    trib_prom_header(b, "tributary_cluster_controller_isr_removals_total", "counter",
                     "ISR shrinks this broker wrote as controller (dead or leaving brokers)");
    trib_prom_sample_u64(b, "tributary_cluster_controller_isr_removals_total", NULL,
                         z->ctl->isr_removals);
    trib_prom_header(b, "tributary_cluster_partition_states_created_total", "counter",
                     "first states of new partitions this broker wrote as controller");
    trib_prom_sample_u64(b, "tributary_cluster_partition_states_created_total", NULL,
                         z->ctl->states_created);
    trib_prom_header(b, "tributary_cluster_auto_leader_elections_total", "counter",
                     "preferred-leader elections this broker started as controller on its own "
                     "(cluster.auto.leader.rebalance.enable)");
    trib_prom_sample_u64(b, "tributary_cluster_auto_leader_elections_total", NULL,
                         z->ctl->auto_elections);
    trib_prom_header(b, "tributary_cluster_reassignments_completed_total", "counter",
                     "partition reassignments this broker completed as controller");
    trib_prom_sample_u64(b, "tributary_cluster_reassignments_completed_total", NULL,
                         z->ctl_reassign_done);
}

#endif
