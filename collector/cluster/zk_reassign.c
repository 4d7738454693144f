/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Partition reassignment on the zookeeper backend, as Kafka 2.8's
 * controller does it in ZooKeeper mode (KIP-455):
 *
 *   start     AlterPartitionReassignments reaches the controller, which
 *             rewrites the topic znode (fenced multi, compared-and-set at
 *             the version read): the partition's replicas become
 *             (target ++ original), distinct, with adding_replicas =
 *             target - original and removing_replicas = original - target.
 *             "original" is the list without the replicas being added, so
 *             a second request for a partition in flight replaces the
 *             first. A cancellation (null replicas) writes the original
 *             list back without the roles.
 *   catch-up  every broker reads the new list: a new replica opens its log
 *             and follows the leader, which adds it to the ISR once it has
 *             caught up (the leader's own ISR rule, KAFKA-7128's guard
 *             included).
 *   complete  when every target replica is live and in the ISR, the
 *             controller writes, in one fenced multi: the state (leader
 *             kept when it is a live target replica, else the first live
 *             target replica of the ISR; ISR = ISR ∩ target; leader epoch
 *             + 1) for each such partition, and the topic znode with the
 *             target lists and no roles. A broker that is no longer a
 *             replica stops hosting the partition.
 *
 * The controller looks at a topic's reassignments after every state read
 * of its partitions and after every read of its assignment, so a new
 * controller (elected after a failover) resumes what it finds in the topic
 * znodes. One assignment write per topic is in flight at a time; the next
 * waits until the written version has been read back.
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
#include "tributary/kafka_error.h"
#include "tributary/log.h"

#define FACILITY "controller"
#define MAXR COLL_ZK_MAX_REPLICAS

typedef struct rs_op {
    coll_zk_t *z;
    uint64_t gen;
    int32_t n;
    int32_t parts[MAX_MULTI];
    coll_admin_cb cb; /* AlterPartitionReassignments: answered when written */
    void *cbarg;
    zoo_op_result_t results[MAX_MULTI];
    char name[];
} rs_op_t;

static bool member(const int32_t *v, int32_t n, int32_t id)
{
    for (int32_t i = 0; i < n; i++) {
        if (v[i] == id) {
            return true;
        }
    }
    return false;
}

static bool up(const coll_zk_t *z, int32_t id)
{
    const coll_zk_broker_t *b = id >= 0 ? coll_zk_broker_find(z, id) : NULL;
    return b && !b->shutting_down;
}

static void rs_answer(rs_op_t *op, int16_t code, const char *msg)
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

bool coll_zk_reassign_busy(const zk_topic_t *zt)
{
    return zt->rs_inflight || (zt->rs_base >= 0 && zt->asg_version <= zt->rs_base);
}

void coll_zk_reassign_asg_read(zk_topic_t *zt, bool gone)
{
    if (!zt->rs_cb || (!gone && zt->rs_base >= 0 && zt->asg_version <= zt->rs_base)) {
        return;
    }
    coll_admin_cb cb = zt->rs_cb;
    void *arg = zt->rs_cbarg;
    zt->rs_cb = NULL;
    zt->rs_cbarg = NULL;
    coll_admin_result_t res;
    res.code = gone ? TRIB_KAFKA_UNKNOWN_TOPIC_OR_PARTITION : TRIB_KAFKA_NONE;
    snprintf(res.msg, sizeof(res.msg), "%s", gone ? "The topic is gone." : "");
    cb(arg, &res);
}

static void rs_written(void *arg, int rc, bool fenced)
{
    rs_op_t *op = arg;
    coll_zk_t *z = op->z;
    if (rc == ZOK && op->cb && !coll_zk_gone(z, rc)) {
        /* Answered once this broker has read the new assignment back (ListPartitionReassignments
         * then shows it). */
        zk_topic_t *zt = coll_zk_topic_find(z, op->name, strlen(op->name));
        if (zt && zt->gen == op->gen && !zt->rs_cb) {
            zt->rs_cb = op->cb;
            zt->rs_cbarg = op->cbarg;
            op->cb = NULL;
        }
    }
    if (rc == ZOK) {
        rs_answer(op, 0, NULL);
    } else if (fenced) {
        rs_answer(op, TRIB_KAFKA_NOT_CONTROLLER, "This broker is no longer the controller.");
    } else if (rc == ZBADVERSION) {
        rs_answer(op, TRIB_KAFKA_REQUEST_TIMED_OUT,
                  "The topic's assignment changed meanwhile: ask again.");
    } else {
        rs_answer(op, TRIB_KAFKA_REQUEST_TIMED_OUT, "ZooKeeper did not take the write: ask again.");
    }
    if (coll_zk_gone(z, rc)) {
        free(op);
        return;
    }
    zk_topic_t *zt = coll_zk_topic_find(z, op->name, strlen(op->name));
    if (!zt || zt->gen != op->gen) {
        free(op);
        return;
    }
    zt->rs_inflight = false;
    if (rc != ZOK) {
        zt->rs_base = -1;
        if (!fenced) {
            TRIB_LOG(TRIB_LOG_INFO, FACILITY, "topic %s: reassignment write refused (%s)", zt->name,
                     zerror(rc));
        }
        coll_zk_read_asg(z, zt);
    }
    for (int32_t k = 0; k < op->n; k++) {
        int32_t i = op->parts[k];
        if (i < zt->nparts) {
            zt->parts[i].ctl_inflight = false;
            coll_zk_read_state(z, zt, i);
        }
    }
    free(op);
}

static rs_op_t *rs_new(coll_zk_t *z, zk_topic_t *zt)
{
    rs_op_t *op = calloc(1, sizeof(*op) + zt->len + 1);
    if (op) {
        op->z = z;
        op->gen = zt->gen;
        memcpy(op->name, zt->name, zt->len + 1);
    }
    return op;
}

/* Partition i's lists of a: target (not being removed), original (not being added). */
static void lists(const coll_zk_assignment_t *a, int32_t i, int32_t *target, int32_t *nt,
                  int32_t *orig, int32_t *no)
{
    *nt = *no = 0;
    for (int32_t k = a->off[i]; k < a->off[i + 1]; k++) {
        uint8_t role = a->role ? a->role[k] : COLL_ZK_ROLE_NONE;
        if (role != COLL_ZK_ROLE_REMOVING && *nt < MAXR) {
            target[(*nt)++] = a->ids[k];
        }
        if (role != COLL_ZK_ROLE_ADDING && *no < MAXR) {
            orig[(*no)++] = a->ids[k];
        }
    }
}

/*
 * A copy of cur with partition i's list replaced by ids/roles when
 * lists[i].n >= 0. Returns the encoded JSON (malloc'ed) or NULL.
 */
typedef struct new_list {
    int32_t n; /* -1: unchanged */
    int32_t ids[2 * MAXR];
    uint8_t role[2 * MAXR];
} new_list_t;

static char *rewrite(const coll_zk_assignment_t *cur, const new_list_t *nl, size_t *len)
{
    int32_t np = cur->npartitions;
    size_t total = 0;
    for (int32_t i = 0; i < np; i++) {
        total += nl[i].n >= 0 ? (size_t)nl[i].n : (size_t)(cur->off[i + 1] - cur->off[i]);
    }
    coll_zk_assignment_t a;
    memset(&a, 0, sizeof(a));
    memcpy(a.topic_id, cur->topic_id, sizeof(a.topic_id));
    a.npartitions = np;
    a.off = malloc((size_t)(np + 1) * sizeof(*a.off));
    a.ids = malloc((total ? total : 1) * sizeof(*a.ids));
    a.role = calloc(total ? total : 1, sizeof(*a.role));
    char *json = NULL;
    if (a.off && a.ids && a.role) {
        int32_t o = 0;
        for (int32_t i = 0; i < np; i++) {
            a.off[i] = o;
            if (nl[i].n >= 0) {
                memcpy(a.ids + o, nl[i].ids, (size_t)nl[i].n * sizeof(int32_t));
                memcpy(a.role + o, nl[i].role, (size_t)nl[i].n);
                o += nl[i].n;
            } else {
                int32_t m = cur->off[i + 1] - cur->off[i];
                memcpy(a.ids + o, cur->ids + cur->off[i], (size_t)m * sizeof(int32_t));
                if (cur->role) {
                    memcpy(a.role + o, cur->role + cur->off[i], (size_t)m);
                }
                o += m;
            }
        }
        a.off[np] = o;
        json = coll_zk_assignment_encode(&a, len);
    }
    coll_zk_assignment_free(&a);
    return json;
}

/* ---- completion (the controller) ------------------------------------------------------- */

void coll_zk_reassign_check(coll_zk_t *z, zk_topic_t *zt)
{
    if (!z->is_controller || !z->brokers_loaded || z->conn != CONN_CONNECTED || !zt->have_asg ||
        !zt->t || zt->deleting || !zt->asg.role || coll_zk_reassign_busy(zt)) {
        return;
    }
    const coll_zk_assignment_t *cur = &zt->asg;
    int32_t np = cur->npartitions < zt->nparts ? cur->npartitions : zt->nparts;
    new_list_t *nl = NULL;
    int32_t nready = 0;
    zoo_op_t ops[MAX_MULTI];
    char json[MAX_MULTI - 1][1024], path[MAX_MULTI][PATH_MAX_ZK];
    int32_t ready[MAX_MULTI];
    for (int32_t i = 0; i < np && nready < MAX_MULTI - 1; i++) {
        zk_part_t *zp = &zt->parts[i];
        if (!coll_zk_assignment_reassigning(cur, i) || !zp->have_state || zp->reading ||
            zp->ctl_inflight) {
            continue;
        }
        int32_t target[MAXR], orig[MAXR], nt, no;
        lists(cur, i, target, &nt, orig, &no);
        bool all_in = nt > 0;
        for (int32_t k = 0; k < nt && all_in; k++) {
            all_in = up(z, target[k]) && member(zp->st.isr, zp->st.nisr, target[k]);
        }
        if (!all_in) {
            continue; /* catching up: the leader's ISR expansion brings us back */
        }
        coll_zk_state_t nw = zp->st;
        if (!member(target, nt, nw.leader) || !up(z, nw.leader)) {
            nw.leader = -1;
            for (int32_t k = 0; k < nt && nw.leader < 0; k++) {
                if (up(z, target[k]) && member(zp->st.isr, zp->st.nisr, target[k])) {
                    nw.leader = target[k];
                }
            }
            if (nw.leader < 0) {
                continue;
            }
        }
        nw.nisr = 0;
        for (int32_t k = 0; k < zp->st.nisr; k++) {
            if (member(target, nt, zp->st.isr[k])) {
                nw.isr[nw.nisr++] = zp->st.isr[k];
            }
        }
        if (!nl) {
            nl = malloc((size_t)(cur->npartitions > 0 ? cur->npartitions : 1) * sizeof(*nl));
            if (!nl) {
                return;
            }
            for (int32_t k = 0; k < cur->npartitions; k++) {
                nl[k].n = -1;
            }
        }
        nl[i].n = nt;
        memcpy(nl[i].ids, target, (size_t)nt * sizeof(int32_t));
        memset(nl[i].role, COLL_ZK_ROLE_NONE, (size_t)nt);
        bool changed = nw.leader != zp->st.leader || nw.nisr != zp->st.nisr;
        if (changed) {
            nw.leader_epoch = zp->st.leader_epoch + 1;
            nw.controller_epoch = z->controller_epoch;
            int jl = coll_zk_state_encode(&nw, json[nready], sizeof(json[nready]));
            if (jl < 0 || coll_zk_topic_path(z, zt->name, 3, i, path[nready + 1],
                                             sizeof(path[nready + 1])) != 0) {
                nl[i].n = -1;
                continue;
            }
            zoo_set_op_init(&ops[nready + 1], path[nready + 1], json[nready], jl, zp->version,
                            NULL);
        } else {
            /* The state stays: a check that it is still the one read. */
            if (coll_zk_topic_path(z, zt->name, 3, i, path[nready + 1], sizeof(path[nready + 1])) !=
                0) {
                nl[i].n = -1;
                continue;
            }
            zoo_check_op_init(&ops[nready + 1], path[nready + 1], zp->version);
        }
        ready[nready++] = i;
        TRIB_LOG(TRIB_LOG_INFO, FACILITY,
                 "%s-%d: reassignment complete: %" PRId32 " replicas, leader %" PRId32
                 " -> %" PRId32 ", ISR %" PRId32 " -> %" PRId32 " members",
                 zt->name, (int)i, nt, zp->st.leader, nw.leader, zp->st.nisr, nw.nisr);
    }
    if (nready == 0) {
        free(nl);
        return;
    }
    size_t len = 0;
    char *asg = rewrite(cur, nl, &len);
    free(nl);
    rs_op_t *op = rs_new(z, zt);
    if (!asg || !op || coll_zk_topic_path(z, zt->name, 0, 0, path[0], sizeof(path[0])) != 0) {
        free(asg);
        free(op);
        return;
    }
    zoo_set_op_init(&ops[0], path[0], asg, (int)len, zt->asg_version, NULL);
    op->n = nready;
    memcpy(op->parts, ready, (size_t)nready * sizeof(int32_t));
    int rc = coll_zk_controller_multi2(z, ops, nready + 1, op->results, rs_written, op);
    free(asg);
    if (rc != 0) {
        free(op);
        return;
    }
    zt->rs_inflight = true;
    zt->rs_base = zt->asg_version;
    z->ctl_reassign_done += (uint64_t)nready;
    for (int32_t k = 0; k < nready; k++) {
        zt->parts[ready[k]].ctl_inflight = true;
    }
}

/* ---- AlterPartitionReassignments --------------------------------------------------------- */

static void refuse(coll_reassign_part_t *rp, int16_t code, const char *msg)
{
    rp->code = code;
    snprintf(rp->msg, sizeof(rp->msg), "%s", msg);
}

void coll_zk_reassign(coll_zk_t *z, zk_topic_t *zt, coll_reassign_part_t *parts, size_t n,
                      coll_admin_cb cb, void *cbarg)
{
    coll_admin_result_t res = {TRIB_KAFKA_NONE, ""};
    if (!z->is_controller || !z->brokers_loaded || z->conn != CONN_CONNECTED) {
        res.code = TRIB_KAFKA_NOT_CONTROLLER;
        snprintf(res.msg, sizeof(res.msg), "This broker is not the controller.");
        cb(cbarg, &res);
        return;
    }
    if (!zt || !zt->have_asg || !zt->t || zt->deleting) {
        res.code = TRIB_KAFKA_UNKNOWN_TOPIC_OR_PARTITION;
        snprintf(res.msg, sizeof(res.msg), "The topic is not known (or is being deleted).");
        cb(cbarg, &res);
        return;
    }
    if (coll_zk_reassign_busy(zt)) {
        res.code = TRIB_KAFKA_REQUEST_TIMED_OUT;
        snprintf(res.msg, sizeof(res.msg),
                 "Another change of the topic's assignment is being written: ask again.");
        cb(cbarg, &res);
        return;
    }
    const coll_zk_assignment_t *cur = &zt->asg;
    new_list_t *nl = malloc((size_t)(cur->npartitions > 0 ? cur->npartitions : 1) * sizeof(*nl));
    if (!nl) {
        res.code = TRIB_KAFKA_UNKNOWN_SERVER_ERROR;
        snprintf(res.msg, sizeof(res.msg), "out of memory");
        cb(cbarg, &res);
        return;
    }
    for (int32_t k = 0; k < cur->npartitions; k++) {
        nl[k].n = -1;
    }
    size_t nwrite = 0;
    for (size_t j = 0; j < n; j++) {
        coll_reassign_part_t *rp = &parts[j];
        int32_t i = rp->partition;
        if (rp->code != 0) {
            continue;
        }
        if (i < 0 || i >= cur->npartitions) {
            refuse(rp, TRIB_KAFKA_UNKNOWN_TOPIC_OR_PARTITION, "Unknown partition.");
            continue;
        }
        if (nl[i].n >= 0) {
            refuse(rp, TRIB_KAFKA_INVALID_REQUEST, "The partition is listed twice.");
            continue;
        }
        int32_t target[MAXR], orig[MAXR], nt, no;
        lists(cur, i, target, &nt, orig, &no);
        bool moving = coll_zk_assignment_reassigning(cur, i);
        if (rp->nreplicas < 0) {
            if (!moving) {
                refuse(rp, TRIB_KAFKA_NO_REASSIGNMENT_IN_PROGRESS,
                       "No reassignment of the partition is in progress.");
                continue;
            }
            nl[i].n = no;
            memcpy(nl[i].ids, orig, (size_t)no * sizeof(int32_t));
            memset(nl[i].role, COLL_ZK_ROLE_NONE, (size_t)no);
            nwrite++;
            TRIB_LOG(TRIB_LOG_INFO, FACILITY, "%s-%d: reassignment cancelled", zt->name, (int)i);
            continue;
        }
        const char *bad = NULL;
        if (rp->nreplicas == 0 || rp->nreplicas > MAXR) {
            bad = "The replica list is empty or too long.";
        }
        for (int32_t k = 0; !bad && k < rp->nreplicas; k++) {
            if (rp->replicas[k] < 0 || member(rp->replicas, k, rp->replicas[k])) {
                bad = "The replica list names a broker twice or a negative id.";
            } else if (!coll_zk_broker_find(z, rp->replicas[k])) {
                bad = "The replica list names a broker that is not registered.";
            }
        }
        if (bad) {
            refuse(rp, TRIB_KAFKA_INVALID_REPLICA_ASSIGNMENT, bad);
            continue;
        }
        /* Full list: target ++ original, distinct; the roles from the difference. */
        new_list_t *l = &nl[i];
        l->n = 0;
        for (int32_t k = 0; k < rp->nreplicas; k++) {
            l->ids[l->n] = rp->replicas[k];
            l->role[l->n++] =
                member(orig, no, rp->replicas[k]) ? COLL_ZK_ROLE_NONE : COLL_ZK_ROLE_ADDING;
        }
        for (int32_t k = 0; k < no; k++) {
            if (!member(rp->replicas, rp->nreplicas, orig[k])) {
                l->ids[l->n] = orig[k];
                l->role[l->n++] = COLL_ZK_ROLE_REMOVING;
            }
        }
        if (l->n > MAXR) {
            /* The old and new replicas together must fit one replica list of the znode. */
            l->n = -1;
            refuse(rp, TRIB_KAFKA_INVALID_REPLICA_ASSIGNMENT,
                   "The old and new replicas together are too many for one partition.");
            continue;
        }
        nwrite++;
        TRIB_LOG(TRIB_LOG_INFO, FACILITY, "%s-%d: reassignment to %" PRId32 " replicas started",
                 zt->name, (int)i, rp->nreplicas);
    }
    if (nwrite == 0) {
        free(nl);
        cb(cbarg, &res);
        return;
    }
    size_t len = 0;
    char *asg = rewrite(cur, nl, &len);
    free(nl);
    rs_op_t *op = rs_new(z, zt);
    char path[PATH_MAX_ZK];
    zoo_op_t zop;
    if (!asg || !op || coll_zk_topic_path(z, zt->name, 0, 0, path, sizeof(path)) != 0) {
        free(asg);
        free(op);
        res.code = TRIB_KAFKA_UNKNOWN_SERVER_ERROR;
        snprintf(res.msg, sizeof(res.msg), "out of memory");
        cb(cbarg, &res);
        return;
    }
    zoo_set_op_init(&zop, path, asg, (int)len, zt->asg_version, NULL);
    op->cb = cb;
    op->cbarg = cbarg;
    int rc = coll_zk_controller_multi2(z, &zop, 1, op->results, rs_written, op);
    free(asg);
    if (rc != 0) {
        free(op);
        res.code = rc == -EPERM ? TRIB_KAFKA_NOT_CONTROLLER : TRIB_KAFKA_REQUEST_TIMED_OUT;
        snprintf(res.msg, sizeof(res.msg), "The reassignment could not be written.");
        cb(cbarg, &res);
        return;
    }
    zt->rs_inflight = true;
    zt->rs_base = zt->asg_version;
}

bool coll_zk_reassignment(const zk_topic_t *zt, int32_t i, int32_t *adding, int32_t *nadding,
                          int32_t *removing, int32_t *nremoving)
{
    *nadding = *nremoving = 0;
    if (!zt || !zt->have_asg || !coll_zk_assignment_reassigning(&zt->asg, i)) {
        return false;
    }
    const coll_zk_assignment_t *a = &zt->asg;
    for (int32_t k = a->off[i]; k < a->off[i + 1]; k++) {
        if (a->role[k] == COLL_ZK_ROLE_ADDING) {
            adding[(*nadding)++] = a->ids[k];
        } else if (a->role[k] == COLL_ZK_ROLE_REMOVING) {
            removing[(*nremoving)++] = a->ids[k];
        }
    }
    return true;
}

#endif
