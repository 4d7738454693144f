/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Replica assignment for new topics and partitions: Kafka's
 * AdminUtils.assignReplicasToBrokers (kafka/admin/AdminUtils.scala), so a
 * topic created here is spread as Kafka would spread it.
 *
 * Without racks: the brokers sorted by id; partition p's first replica is
 * broker (p + start) % n, the others follow at a shift that grows by one
 * every n partitions, so leaders and followers both spread evenly.
 *
 * With racks (every broker has one): the brokers are first arranged
 * rack-alternated (racks sorted by name, brokers of a rack by id, one per
 * rack in turn: a:0,1,2 b:3,4 c:5 -> 0,3,5,1,4,2); a replica is skipped
 * while its rack already holds one and some rack holds none, or its
 * broker already holds one and some broker holds none.
 *
 * Pure code, no ZooKeeper: unit-tested in tests/unit/cluster/test_assign.c.
 */
#ifndef COLLECTOR_CLUSTER_ASSIGN_H
#define COLLECTOR_CLUSTER_ASSIGN_H

#include <stddef.h>
#include <stdint.h>

typedef struct coll_assign_broker {
    int32_t id;
    const char *rack; /* NULL or "": none */
} coll_assign_broker_t;

/*
 * Fills out[p * rf + k] (p < npart, k < rf) with the replicas of
 * partitions start_partition .. start_partition + npart - 1 (the first
 * npart rows: out's row 0 is start_partition). start_index and shift are
 * Kafka's fixedStartIndex / nextReplicaShift: -1 draws them at random, as
 * Kafka does. Returns 0, or -EINVAL with *why (Kafka's messages):
 * npart <= 0, rf <= 0, rf > brokers, some brokers with a rack and some
 * without.
 */
int coll_assign_replicas(const coll_assign_broker_t *brokers, size_t nbrokers, int32_t npart,
                         int32_t rf, int32_t start_index, int32_t shift, int32_t start_partition,
                         int32_t *out, char *why, size_t whylen);

#endif
