/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The `zookeeper` cluster backend's session: broker registration,
 * controller election fenced by the controller epoch, and the cache of
 * live brokers and the controller that Metadata and DescribeCluster answer
 * from (through coll_cluster_set_view). See zk.c for the design.
 *
 * Built only when the ZooKeeper C client was found (TRIB_HAVE_ZOOKEEPER);
 * coll_zk_available() says whether it was.
 *
 * Threading: the loop thread only.
 */
#ifndef COLLECTOR_CLUSTER_ZK_H
#define COLLECTOR_CLUSTER_ZK_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "cluster/cluster.h"
#include "tributary/error.h"

struct trib_buf;

typedef struct coll_zk coll_zk_t;

typedef struct coll_zk_config {
    const char *connect; /* "host:port[,host:port…][/chroot]" */
    uint32_t session_timeout_ms;
    /* Automatic preferred-leader elections by the controller: every this long; 0 = off. */
    uint32_t leader_rebalance_ms;
    int32_t node_id;
    const char *host; /* the advertised Kafka endpoint */
    int32_t port;
    const char *rack;       /* NULL: none */
    const char *cluster_id; /* proposed for /cluster/id when it is absent */
    /*
     * The table the topics and partition states are read into
     * (zk_topics.c), and whose admin path and alter_isr this backend
     * provides; NULL: brokers and controller only.
     */
    coll_cluster_t *cluster;
    /* Called once when this broker cannot run in the cluster (its id is
     * registered by another live broker): the caller stops the process. */
    void (*fatal)(void *arg, const char *why);
    void *arg;
} coll_zk_config_t;

bool coll_zk_available(void);

/*
 * Checks a connect string: 0, or -EINVAL with *why set. Hosts are
 * host:port (port 1..65535) separated by commas; an optional chroot is an
 * absolute path without empty, "." or ".." components or a trailing '/'.
 */
int coll_zk_check_connect(const char *connect, const char **why);

/*
 * Starts the session on the loop; registration and the election follow
 * asynchronously. The config's strings are copied. -ENOTSUP when built
 * without the client; TRIB_ECONFIG (err) for a bad connect string.
 */
int coll_zk_start(uv_loop_t *loop, const coll_zk_config_t *cfg, coll_zk_t **out, trib_error_t *err);
/*
 * Controlled shutdown (SIGTERM): the registration is rewritten with
 * "shutting_down": true, so the controller moves this broker's leaderships
 * to other live ISR members and takes it out of the ISRs; done(arg) runs
 * once this broker leads no partition, or after timeout_ms, or at once
 * when it is not registered or no partition it leads has another live
 * in-sync replica (then close the session). Called once.
 */
void coll_zk_controlled_shutdown(coll_zk_t *z, uint32_t timeout_ms, void (*done)(void *arg),
                                 void *arg);
/* Closes the session (ZooKeeper drops the registration at once) and the handles. */
void coll_zk_close(coll_zk_t *z);
/* After the loop has run the close callbacks. NULL is fine. */
void coll_zk_free(coll_zk_t *z);

/* What the cluster answers Metadata and DescribeCluster from. */
void coll_zk_view(coll_zk_t *z, coll_cluster_view_t *out);

int32_t coll_zk_controller_id(const coll_zk_t *z); /* -1: none known */
bool coll_zk_is_controller(const coll_zk_t *z);
bool coll_zk_registered(const coll_zk_t *z);

/* Prometheus samples: controller status, session state, expirations. */
void coll_zk_render_metrics(coll_zk_t *z, struct trib_buf *b);

#ifdef TRIB_HAVE_ZOOKEEPER
#include <zookeeper/zookeeper.h>

/*
 * The one way controller code writes to ZooKeeper: `ops` run as one multi
 * whose first op checks /controller_epoch at the version this broker's
 * election wrote, so a broker that lost the controllership (a pause past
 * its session, KAFKA-6082) has every write refused (ZBADVERSION, or
 * ZNONODE / a session error). Paths in ops are absolute (coll_zk_path).
 * `results` (n entries) must live until cb. Returns 0 and calls cb(arg, rc)
 * later with rc the multi's ZooKeeper result; or a negative error without
 * calling cb (-EPERM: not the controller; -ENOTCONN; -EINVAL: n too large).
 */
typedef void (*coll_zk_multi_cb)(void *arg, int zrc);
int coll_zk_controller_multi(coll_zk_t *z, const zoo_op_t *ops, int n, zoo_op_result_t *results,
                             coll_zk_multi_cb cb, void *arg);

/* The absolute path of `rel` ("/brokers/ids") under the chroot. */
int coll_zk_path(const coll_zk_t *z, const char *rel, char *out, size_t n);
#endif

#endif
