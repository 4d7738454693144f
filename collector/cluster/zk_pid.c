/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Producer ids on the zookeeper backend, from blocks reserved in
 * /latest_producer_id_block as Kafka 2.8 does (ProducerIdManager):
 * {"version":1,"broker":B,"block_start":"N","block_end":"M"} names the
 * last block handed to any broker; a broker takes the next one by
 * compare-and-set on that znode's version (creating it for the first
 * block), so two brokers never reserve the same ids, and a restart takes
 * a new block (ids of a block are never reissued, used or not).
 *
 * A broker reserves its first block once registered and the next one when
 * three quarters of the current one are used, so InitProducerId is served
 * from memory; while no id is at hand it answers -EAGAIN (InitProducerId
 * then says COORDINATOR_LOAD_IN_PROGRESS, which clients retry).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/zk.h"

#ifdef TRIB_HAVE_ZOOKEEPER

#include "cluster/zk_int.h"
#include "tributary/log.h"

#define FACILITY "zookeeper"
#define BLOCK_SIZE 1000

struct zk_pid {
    int64_t next, end;              /* the block in use: next .. end; next > end: none */
    int64_t ready_start, ready_end; /* the next block, when reserved (start > end: none) */
    bool fetching;
    uint64_t sess; /* the session of the fetch in flight */
    uint64_t blocks;
};

static void fetch(coll_zk_t *z);

static void take(coll_zk_t *z, int64_t start, int64_t end)
{
    struct zk_pid *P = z->pid;
    P->blocks++;
    TRIB_LOG(TRIB_LOG_INFO, FACILITY, "producer id block %" PRId64 "..%" PRId64 " reserved", start,
             end);
    if (P->next > P->end) {
        P->next = start;
        P->end = end;
    } else {
        P->ready_start = start;
        P->ready_end = end;
    }
}

static void written(int rc, const struct Stat *st, const void *data);

typedef struct pid_op {
    coll_zk_t *z;
    uint64_t sess;
    coll_zk_pid_block_t b;
} pid_op_t;

static bool stale(pid_op_t *op, int rc)
{
    coll_zk_t *z = op->z;
    if (coll_zk_gone(z, rc) || !z->pid || op->sess != z->pid->sess) {
        return true;
    }
    return false;
}

static void done_fetch(coll_zk_t *z)
{
    z->pid->fetching = false;
}

static void created(int rc, const char *path, const void *data)
{
    (void)path;
    pid_op_t *op = (pid_op_t *)data;
    coll_zk_t *z = op->z;
    if (stale(op, rc)) {
        free(op);
        return;
    }
    done_fetch(z);
    if (rc == ZOK) {
        take(z, op->b.start, op->b.end);
    } else if (rc == ZNODEEXISTS) {
        fetch(z); /* another broker took the first block: the next one */
    } else {
        TRIB_LOG(TRIB_LOG_WARN, FACILITY, "creating /latest_producer_id_block: %s", zerror(rc));
    }
    free(op);
}

static void written(int rc, const struct Stat *st, const void *data)
{
    (void)st;
    pid_op_t *op = (pid_op_t *)data;
    coll_zk_t *z = op->z;
    if (stale(op, rc)) {
        free(op);
        return;
    }
    done_fetch(z);
    if (rc == ZOK) {
        take(z, op->b.start, op->b.end);
    } else if (rc == ZBADVERSION) {
        fetch(z); /* another broker took that block: read again */
    } else {
        TRIB_LOG(TRIB_LOG_WARN, FACILITY, "reserving a producer id block: %s", zerror(rc));
    }
    free(op);
}

static void got(int rc, const char *value, int len, const struct Stat *st, const void *data)
{
    pid_op_t *op = (pid_op_t *)data;
    coll_zk_t *z = op->z;
    if (stale(op, rc)) {
        free(op);
        return;
    }
    char path[PATH_MAX_ZK], json[256];
    coll_zk_path(z, "/latest_producer_id_block", path, sizeof(path));
    op->b.broker = z->self.id;
    int zrc;
    if (rc == ZNONODE) {
        op->b.start = 0;
        op->b.end = BLOCK_SIZE - 1;
        int jl = coll_zk_pid_block_encode(&op->b, json, sizeof(json));
        zrc = jl < 0 ? ZBADARGUMENTS
                     : zoo_acreate(z->zh, path, json, jl, &ZOO_OPEN_ACL_UNSAFE, 0, created, op);
    } else if (rc == ZOK) {
        coll_zk_pid_block_t last;
        const char *why;
        if (coll_zk_pid_block_decode(value, len > 0 ? (size_t)len : 0, &last, &why) != 0 ||
            last.end > INT64_MAX / 2) {
            TRIB_LOG(TRIB_LOG_ERROR, FACILITY, "/latest_producer_id_block: %s",
                     last.end > INT64_MAX / 2 ? "the ids are exhausted" : why);
            done_fetch(z);
            free(op);
            return;
        }
        op->b.start = last.end + 1;
        op->b.end = last.end + BLOCK_SIZE;
        int jl = coll_zk_pid_block_encode(&op->b, json, sizeof(json));
        zrc = jl < 0 ? ZBADARGUMENTS : zoo_aset(z->zh, path, json, jl, st->version, written, op);
    } else {
        TRIB_LOG(TRIB_LOG_WARN, FACILITY, "reading /latest_producer_id_block: %s", zerror(rc));
        done_fetch(z);
        free(op);
        return;
    }
    if (zrc != ZOK) {
        done_fetch(z);
        free(op);
        return;
    }
    coll_zk_rearm(z);
}

static void fetch(coll_zk_t *z)
{
    struct zk_pid *P = z->pid;
    if (!P || P->fetching || !z->zh || z->conn != CONN_CONNECTED || !z->registered) {
        return;
    }
    pid_op_t *op = calloc(1, sizeof(*op));
    if (!op) {
        return;
    }
    op->z = z;
    op->sess = P->sess;
    char path[PATH_MAX_ZK];
    coll_zk_path(z, "/latest_producer_id_block", path, sizeof(path));
    P->fetching = true;
    if (zoo_aget(z->zh, path, 0, got, op) != ZOK) {
        P->fetching = false;
        free(op);
        return;
    }
    coll_zk_rearm(z);
}

int coll_zk_next_producer_id(void *arg, int64_t *pid)
{
    coll_zk_t *z = arg;
    struct zk_pid *P = z->pid;
    if (!P) {
        return -EAGAIN;
    }
    if (P->next > P->end && P->ready_start <= P->ready_end) {
        P->next = P->ready_start;
        P->end = P->ready_end;
        P->ready_start = 1;
        P->ready_end = 0;
    }
    if (P->next > P->end) {
        fetch(z);
        return -EAGAIN;
    }
    *pid = P->next++;
    /* Three quarters used: reserve the next block now. */
    if (P->ready_start > P->ready_end && P->end - P->next < BLOCK_SIZE / 4) {
        fetch(z);
    }
    return 0;
}

void coll_zk_pid_resync(coll_zk_t *z)
{
    struct zk_pid *P = z->pid;
    if (!P) {
        return;
    }
    P->sess++;
    P->fetching = false;
    if (P->next > P->end || P->ready_start > P->ready_end) {
        fetch(z);
    }
}

int coll_zk_pid_new(coll_zk_t *z)
{
    z->pid = calloc(1, sizeof(*z->pid));
    if (!z->pid) {
        return -ENOMEM;
    }
    z->pid->next = 1;
    z->pid->end = 0;
    z->pid->ready_start = 1;
    z->pid->ready_end = 0;
    return 0;
}

void coll_zk_pid_free(coll_zk_t *z)
{
    free(z->pid);
    z->pid = NULL;
}

#endif
