/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The zookeeper backend's internals, shared by its files:
 *
 *   zk.c            the session on the loop, registration, the live
 *                   brokers, controller election and its fenced multi
 *   zk_topics.c     topics, configs and partition states read into the
 *                   cluster's table (every broker), the admin writes
 *                   (CreateTopics, DeleteTopics, CreatePartitions, configs)
 *                   and the leader's ISR changes
 *   zk_controller.c what the controller writes: the first state of new
 *                   partitions, leader elections, ISR removals, deletions
 *
 * Everything runs on the loop thread (the single-threaded client).
 */
#ifndef COLLECTOR_CLUSTER_ZK_INT_H
#define COLLECTOR_CLUSTER_ZK_INT_H

#include <zookeeper/zookeeper.h>

#include "cluster/cluster.h"
#include "cluster/zk.h"
#include "cluster/zk_json.h"

#define MAX_BROKERS 4096
#define MAX_MULTI 32
#define PATH_MAX_ZK 1024

typedef enum zk_conn {
    CONN_CONNECTING = 0,
    CONN_CONNECTED = 1,
    CONN_EXPIRED = 2,
    CONN_CLOSED = 3,
} zk_conn_t;

typedef struct setup_ctx {
    coll_zk_t *z;
    size_t i;
} setup_ctx_t;

#define SETUP_STEPS 10

struct coll_zk {
    uv_loop_t *loop;
    zhandle_t *zh;
    uv_poll_t *poll; /* NULL when the client has no socket */
    int poll_fd;
    uv_timer_t timer;
    char *hosts;    /* the connect string without the chroot */
    char root[256]; /* the chroot, "" for none */
    uint32_t session_timeout_ms;
    uint32_t leader_rebalance_ms; /* auto.leader.rebalance: 0 = off */
    coll_zk_broker_t self;
    char local_cluster_id[COLL_ZK_CLUSTER_ID_MAX];
    char cluster_id[COLL_ZK_CLUSTER_ID_MAX]; /* "" until read */
    void (*fatal)(void *, const char *);
    void *fatal_arg;
    bool failed, closing, need_new_session, in_process, test_stale_write;

    zk_conn_t conn;
    int64_t session_id;
    bool registered;
    int64_t broker_epoch;

    int32_t controller_id;
    bool is_controller;
    int32_t controller_epoch;    /* last one seen or written */
    int32_t epoch_version;       /* /controller_epoch's version our election wrote */
    int32_t stale_epoch_version; /* the lost term's, for the test hook; -1 none */
    bool electing;
    bool brokers_loaded; /* the live brokers were read in this session */

    /* The live brokers, sorted by id, and a refresh in flight. */
    coll_zk_broker_t *brokers;
    size_t nbrokers;
    coll_zk_broker_t *pending;
    size_t npending, pending_want, pending_got;
    uint64_t refresh_gen;
    bool refresh_again;

    /* Counters for /metrics. */
    uint64_t sessions, expirations, elections_won, fenced_writes, stale_writes_applied;
    uint64_t ctl_reassign_done; /* partition reassignments this broker completed as controller */

    /* The election multi's results. */
    zoo_op_result_t elect_results[2];
    char elect_path[PATH_MAX_ZK];
    int32_t elect_epoch;
    struct Stat elect_stat;
    zoo_op_result_t probe_results[MAX_MULTI];
    bool test_stale_state; /* the probe rewrites the cached partition states */
    int32_t stale_epoch;   /* the controller epoch of the lost term */
    setup_ctx_t setup_ctx[SETUP_STEPS];

    /* Controlled shutdown: waiting until this broker leads nothing. */
    uv_timer_t cs_timer;
    bool cs_active, cs_timer_open;
    uint64_t cs_deadline;
    void (*cs_done)(void *arg);
    void *cs_arg;

    /* Topics and partition states (zk_topics.c), the controller's work (zk_controller.c). */
    coll_cluster_t *cluster;
    struct zk_topics *topics;
    struct zk_ctl *ctl;
    struct zk_pid *pid;
};

void coll_zk_rearm(coll_zk_t *z);
int64_t coll_zk_now_ms(void);
/* True when a completion belongs to a handle being closed: touch nothing. */
bool coll_zk_gone(coll_zk_t *z, int rc);
/* The broker with this id when registered (live), else NULL. */
const coll_zk_broker_t *coll_zk_broker_find(const coll_zk_t *z, int32_t id);

/*
 * A controller multi whose callback also says whether the controller epoch
 * check (the first op) failed: fenced means this broker is no longer the
 * controller, whatever the other ops did.
 */
typedef void (*coll_zk_multi2_cb)(void *arg, int zrc, bool fenced);
int coll_zk_controller_multi2(coll_zk_t *z, const zoo_op_t *ops, int n, zoo_op_result_t *results,
                              coll_zk_multi2_cb cb, void *arg);

/* ---- the cache of topics (zk_topics.c) ---- */

/* One partition's state as last read, and the writes in flight for it. */
typedef struct zk_part {
    bool have_state;    /* a state znode was read and applied */
    bool no_state;      /* the last read found no state znode */
    bool state_read;    /* a read of the state znode completed (found or not) */
    coll_zk_state_t st; /* the applied state */
    int32_t version;    /* its znode version (-1: none) */
    bool reading, again;
    /* The leader's ISR change (coll_cluster_alter_isr) in flight or waiting for a re-read. */
    bool isr_inflight, isr_stale;
    coll_isr_cb isr_cb;
    void *isr_arg;
    /* A controller write in flight. */
    bool ctl_inflight;
    /* An ElectLeaders waiting for that write or a read to finish. */
    coll_admin_cb elect_cb;
    void *elect_arg;
    bool test_done; /* the TRIB_TEST_ALTER_ISR hook ran for this partition */
    /* The resync (zk_topics' sess) in which the state was last read: coll_zk_may_lead. */
    uint64_t read_sess;
} zk_part_t;

/* A topic listed under /brokers/topics. */
typedef struct zk_topic {
    struct zk_topic *hnext;
    char *name;
    size_t len;
    uint64_t gen; /* this incarnation (stale completions are dropped) */
    coll_zk_assignment_t asg;
    bool have_asg;
    int32_t asg_version;
    bool have_cfg;
    coll_tcfg_t ov;
    uint32_t mask;
    bool asg_reading, asg_again, cfg_reading, cfg_again;
    /* A reassignment write in flight, and the assignment version it was written against. */
    bool rs_inflight;
    int32_t rs_base;
    /* An AlterPartitionReassignments answered once its write is read back here. */
    coll_admin_cb rs_cb;
    void *rs_cbarg;
    bool seen;     /* in the last listing */
    bool deleting; /* marked in /admin/delete_topics (the controller's view) */
    bool delete_issued;
    zk_part_t *parts;
    int32_t nparts;
    coll_topic_t *t; /* in the cluster's table once the assignment is read */
} zk_topic_t;

zk_topic_t *coll_zk_topic_find(coll_zk_t *z, const char *name, size_t len);
/* Calls fn for every known topic. */
void coll_zk_topics_foreach(coll_zk_t *z, void (*fn)(coll_zk_t *z, zk_topic_t *zt, void *arg),
                            void *arg);
/* Reads partition p's state again (after a refused write). */
void coll_zk_read_state(coll_zk_t *z, zk_topic_t *zt, int32_t p);
/* The path of a topic's znodes: kind 0 topic, 1 partitions, 2 partition p, 3 state, 4 config. */
int coll_zk_topic_path(const coll_zk_t *z, const char *name, int kind, int32_t p, char *out,
                       size_t n);

/* Reads zt's assignment again (after a refused write). */
void coll_zk_read_asg(coll_zk_t *z, zk_topic_t *zt);

/* ---- zk_reassign.c: partition reassignment ---- */
/* The controller completes zt's partitions whose new replicas are all in the ISR. */
void coll_zk_reassign_check(coll_zk_t *z, zk_topic_t *zt);
/* An assignment write of the reassignment code is in flight or not read back yet. */
bool coll_zk_reassign_busy(const zk_topic_t *zt);
/* AlterPartitionReassignments on the controller. */
void coll_zk_reassign(coll_zk_t *z, zk_topic_t *zt, coll_reassign_part_t *parts, size_t n,
                      coll_admin_cb cb, void *cbarg);
/* The assignment was read (version applied) or the topic dropped (gone): a parked answer. */
void coll_zk_reassign_asg_read(zk_topic_t *zt, bool gone);
bool coll_zk_reassignment(const zk_topic_t *zt, int32_t i, int32_t *adding, int32_t *nadding,
                          int32_t *removing, int32_t *nremoving);

/* ---- zk_topics.c ---- */
int coll_zk_topics_new(coll_zk_t *z);
void coll_zk_topics_free(coll_zk_t *z);
/* Registered in a new session (or reconnected): read everything again. */
void coll_zk_topics_resync(coll_zk_t *z);
/* A watch fired on one of the topics' paths; true when it was one. */
bool coll_zk_topics_watch(coll_zk_t *z, int type, const char *path);
/* The live brokers changed (after the refresh). */
void coll_zk_topics_brokers_changed(coll_zk_t *z);
/* The session is closing: pending admin requests are answered. */
void coll_zk_topics_closing(coll_zk_t *z);
int coll_zk_alter_isr(void *arg, coll_partition_t *p, const int32_t *isr, int32_t n, coll_isr_cb cb,
                      void *cbarg);
/* coll_cluster_may_lead(): connected, registered, and p's state read since the last resync. */
bool coll_zk_may_lead(void *arg, const coll_partition_t *p);
void coll_zk_topics_render_metrics(coll_zk_t *z, struct trib_buf *b);

/* ---- zk_pid.c: producer id blocks ---- */
int coll_zk_pid_new(coll_zk_t *z);
void coll_zk_pid_free(coll_zk_t *z);
/* Registered in a (new) session: reserve a block if none is at hand. */
void coll_zk_pid_resync(coll_zk_t *z);
/* coll_cluster_next_producer_id on this backend: 0, or -EAGAIN. */
int coll_zk_next_producer_id(void *arg, int64_t *pid);

/* ---- zk_controller.c (driven by zk_topics.c's cache) ---- */
int coll_zk_ctl_new(coll_zk_t *z);
void coll_zk_ctl_free(coll_zk_t *z);
/* This broker became (or stopped being) the controller. */
void coll_zk_ctl_elected(coll_zk_t *z);
void coll_zk_ctl_resigned(coll_zk_t *z);
/* After a state read of zt's partition p (applied or not, or none found). */
void coll_zk_ctl_check(coll_zk_t *z, zk_topic_t *zt, int32_t p);
/* Every partition again (elected, deletions listed). */
void coll_zk_ctl_check_all(coll_zk_t *z);
/* The live brokers changed: restarted ones are handled as failed first. */
void coll_zk_ctl_brokers_changed(coll_zk_t *z);
/* A watch on /admin/delete_topics; true when it was one. */
bool coll_zk_ctl_watch(coll_zk_t *z, int type, const char *path);
/* ElectLeaders (preferred) for zt's partition p; cb answers once written. */
void coll_zk_ctl_elect_preferred(coll_zk_t *z, zk_topic_t *zt, int32_t p, coll_admin_cb cb,
                                 void *arg);
/* Lists /admin/delete_topics (with a watch) and deletes the marked topics. */
void coll_zk_ctl_check_deletions(coll_zk_t *z);
/* A topic disappeared from the cache. */
void coll_zk_ctl_topic_gone(coll_zk_t *z, const char *name);
void coll_zk_ctl_render_metrics(coll_zk_t *z, struct trib_buf *b);
/* The client's timer ran: the controller's periodic work (automatic leader rebalance). */
void coll_zk_ctl_tick(coll_zk_t *z);

#endif
