/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Replication's data plane: how a hosted partition becomes leader or
 * follower, and the contract between the leader side (server/, the Fetch
 * and Produce handlers) and the follower side (replica/fetcher.c).
 *
 * The control plane (cluster/zk*.c) applies partition states read from
 * ZooKeeper to coll_partition_t (leader, leader_epoch, isr,
 * partition_epoch) and runs the cluster's partition_changed hook; the
 * server's hook (server.c) calls, for a hosted partition:
 *
 *   p->leader == self:   coll_replica_become_leader(prt)
 *                        (again on a new leader_epoch; on an ISR-only
 *                        change coll_replica_isr_changed(prt))
 *   p->leader != self:   coll_replica_become_follower(prt), then
 *                        coll_fetchers_follow(fetchers, p)
 *
 * The wire between follower and leader is Kafka's own protocol, so each
 * side is written and tested against Kafka's definition, not against the
 * other side's code:
 *
 *   Fetch (v12) with ReplicaId = follower's node id, CurrentLeaderEpoch =
 *   the epoch the follower knows, FetchOffset = the follower's log end
 *   (durable when storage.fsync is ack: the follower sends its next fetch
 *   only once its previous append is on disk). The leader serves
 *   replicas up to its log end, records the follower's log end offset,
 *   advances the high watermark over the ISR and answers with it;
 *   FENCED_LEADER_EPOCH when the follower's epoch is older,
 *   UNKNOWN_LEADER_EPOCH when newer, NOT_LEADER_OR_FOLLOWER when this
 *   node does not lead the partition.
 *
 *   OffsetForLeaderEpoch (key 23, v3+ with ReplicaId) from a follower
 *   that starts following (KIP-101/279): the leader answers the largest
 *   epoch <= the asked one and its end offset; the follower truncates to
 *   min(answer, its log end), and when the answer's epoch is one it does
 *   not have, to the end of its largest epoch below it, then asks again.
 *   Never truncated to the high watermark.
 *
 * Threading: the loop thread only.
 */
#ifndef COLLECTOR_REPLICA_REPLICA_H
#define COLLECTOR_REPLICA_REPLICA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "cluster/cluster.h"

typedef struct coll_prt coll_prt_t;
typedef struct coll_fetchers coll_fetchers_t;

/* ---- leader side (server/) --------------------------------------------------------- */

/*
 * This node now leads prt's partition at p->leader_epoch: records
 * (epoch, log end) in the leader epoch cache before any append, starts
 * tracking every other replica's log end offset, keeps the high
 * watermark (it never moves back on a leader) and rebuilds nothing
 * (producer state is kept current by follower appends).
 */
void coll_replica_become_leader(coll_prt_t *prt);
/*
 * This node now follows (or hosts a replica of a partition without a
 * leader): parked acks=all produce requests are answered
 * NOT_LEADER_OR_FOLLOWER, parked fetches are woken, follower tracking
 * is dropped.
 */
void coll_replica_become_follower(coll_prt_t *prt);
/* As leader: the committed ISR (or partition_epoch) changed. */
void coll_replica_isr_changed(coll_prt_t *prt);

/* ---- follower side (replica/fetcher.c) --------------------------------------------- */

/*
 * The replica fetchers: one connection to each leader this node follows
 * partitions of, fetching all of them in one Fetch request at a time.
 */
typedef struct coll_fetch_host {
    uv_loop_t *loop;
    coll_cluster_t *cluster;
    bool fsync_ack;    /* storage.fsync is ack: the next Fetch waits for the appends' fsync */
    int32_t max_bytes; /* a Fetch's PartitionMaxBytes; <= 0: 1 MiB */
    void *ctx;
    /* The fetcher appended len bytes of batches to p's log: producer state, counters,
     * parked fetches (the server's coll_prt_account and purgatory). */
    void (*appended)(void *ctx, coll_partition_t *p, const void *data, size_t len);
    /* p's log was truncated: what the server keeps about its end is rebuilt. */
    void (*truncated)(void *ctx, coll_partition_t *p);
} coll_fetch_host_t;

/* host is copied. */
int coll_fetchers_new(const coll_fetch_host_t *host, coll_fetchers_t **out);
/* Closes every connection; after the loop ran the close callbacks, free. */
void coll_fetchers_close(coll_fetchers_t *f);
void coll_fetchers_free(coll_fetchers_t *f);
/*
 * Starts (or restarts, on a new leader or epoch) following p from p->leader at p->leader_epoch:
 * truncation first (OffsetForLeaderEpoch), then fetching. A partition without a leader
 * (-1) waits for one.
 */
void coll_fetchers_follow(coll_fetchers_t *f, coll_partition_t *p);
/* Stops following p (it became leader, or is going away). */
void coll_fetchers_unfollow(coll_fetchers_t *f, coll_partition_t *p);
/* Prometheus samples: follower lag per partition, fetch errors, truncations. NULL is fine. */
struct trib_buf;
void coll_fetchers_render_metrics(coll_fetchers_t *f, struct trib_buf *b);

#endif
