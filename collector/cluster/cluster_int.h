/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The topic table's internal entry points for the zookeeper backend
 * (cluster/zk_topics.c), which applies what it reads from ZooKeeper to
 * the same coll_cluster_t the local backend fills from its file. None of
 * these write the metadata file. Loop thread only.
 */
#ifndef COLLECTOR_CLUSTER_CLUSTER_INT_H
#define COLLECTOR_CLUSTER_CLUSTER_INT_H

#include "cluster/cluster.h"

/*
 * A topic with npart partitions that this node does not host yet: no
 * replicas, no ISR, leader -1, log NULL. NULL: no memory (or the name is
 * taken).
 */
coll_topic_t *coll_cluster_zk_add_topic(coll_cluster_t *c, const char *name, size_t len,
                                        const trib_uuid_t *id, int32_t npart);
/* Grows t to `total` partitions (new ones as above). 0 or -ENOMEM. */
int coll_cluster_zk_grow_topic(coll_cluster_t *c, coll_topic_t *t, int32_t total);
/*
 * Removes t: partition_removing runs for each hosted partition; with
 * delete_logs their logs are deleted (else left in the storage). t is freed.
 */
void coll_cluster_zk_remove_topic(coll_cluster_t *c, coll_topic_t *t, bool delete_logs);
/* Sets p's replica list (assignment). 0 or -ENOMEM. */
int coll_cluster_zk_set_replicas(coll_partition_t *p, const int32_t *ids, int32_t n);
/*
 * This node holds a replica of p: opens its log (created with the topic's
 * id if missing; a log left by an earlier topic of the same name, with
 * another topic id, was deleted in the cluster: it is deleted here and a
 * new one created) and runs partition_added. 0, or an error with err set.
 */
int coll_cluster_zk_host(coll_cluster_t *c, coll_partition_t *p, trib_error_t *err);
/*
 * p is no longer hosted here: partition_removing runs; the log stays in the
 * storage, or is deleted with delete_log (a replica moved away by a
 * reassignment, as Kafka's StopReplica with deletePartition).
 */
void coll_cluster_zk_unhost(coll_cluster_t *c, coll_partition_t *p, bool delete_log);
/*
 * Applies a state read from ZooKeeper: leader, leader_epoch, ISR and
 * partition_epoch, then partition_changed when p is hosted. 0 or -ENOMEM.
 */
int coll_cluster_zk_set_state(coll_cluster_t *c, coll_partition_t *p, int32_t leader,
                              int32_t leader_epoch, const int32_t *isr, int32_t nisr,
                              int32_t partition_epoch);
/* Sets t's overrides and applies the effective config to its open logs. */
void coll_cluster_zk_set_config(coll_cluster_t *c, coll_topic_t *t, const coll_tcfg_t *ov,
                                uint32_t mask);
/*
 * Validates configs of a CreateTopics (t NULL) or an alter (t set, ops
 * and replace as coll_cluster_alter_configs) into overrides and a mask.
 */
bool coll_cluster_parse_configs(const coll_cluster_t *c, const coll_topic_t *t,
                                const coll_config_kv_t *cfgs, const int8_t *ops, size_t n,
                                bool replace, coll_tcfg_t *ov, uint32_t *mask,
                                coll_admin_result_t *res);
/* Logs (a few of) the logs in the storage whose topic or partition the table lacks. */
void coll_cluster_zk_report_unknown_logs(coll_cluster_t *c);
/* Every topic ZooKeeper listed has been read once: the metadata_ready hook runs. */
void coll_cluster_zk_metadata_loaded(coll_cluster_t *c);

#endif
