/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A partition as the rest of the collector writes it: the one append
 * path for records this node writes as the partition's leader, used by
 * Produce (server/api/produce.c), the group coordinator's records in
 * __consumer_offsets (group/store.c) and the sink host's dead letters
 * (sinks/host.c); those two get it from the server as a function
 * (coll_group_host_t, coll_sinks_env_t), so they include nothing of it. What the server keeps per
 * partition beside the log (producer state, parked fetches, acks=all waiters, counters) stays
 * private to server/ (server_int.h); this header is what other modules
 * may use.
 *
 * One append, in this order, all on the loop thread:
 *   1. coll_log_append(): offsets and the leader epoch stamped in place,
 *      the bytes written once (storage/storage.h);
 *   2. per batch, from the headers as stored: the idempotent producer
 *      state, the largest timestamp (ListOffsets MAX_TIMESTAMP), the
 *      partition's counters; a client's Produce also counts in the
 *      server's totals;
 *   3. the high watermark and the parked fetches: on a single node it
 *      moves to the log end and fetches wake (with storage.fsync ack: to
 *      the durable offset, as each fsync completes); on a replicated
 *      partition led here it moves with the ISR (server/replica.c), and
 *      followers' parked fetches wake at once to copy the new batches.
 *
 * Waiting for acks=all (the high watermark passing an offset, or the
 * fsync) stays with the caller: Produce does it, and on a cluster so does
 * the coordinator, for its commits and assignments, through its host's
 * hw_wait (coll_group_host_t, the replica layer's waiters in server.c);
 * the dead letters do not wait.
 */
#ifndef COLLECTOR_SERVER_PARTITION_H
#define COLLECTOR_SERVER_PARTITION_H

#include <stdbool.h>
#include <stddef.h>

#include "cluster/cluster.h"
#include "storage/storage.h"
#include "tributary/record.h"

/*
 * Flag for coll_prt_append(), beside the storage's COLL_APPEND_CRC_VERIFIED
 * and COLL_APPEND_LOG_APPEND_TIME: the records came from a client's
 * Produce, so they count in the server's Produce totals
 * (tributary_records_in_total ...). The partition's own counters count
 * every append.
 */
#define COLL_PRT_APPEND_PRODUCE 0x100u

/*
 * True when p is led here: its log is open, its runtime is attached and,
 * on a cluster, this node leads it with its leader state set up (a
 * follower's copy is written by the replica fetcher only). What the
 * coordinator loads and unloads a partition's groups on, and what the
 * sinks read: it does not change while the ZooKeeper session is away.
 */
bool coll_prt_led_here(const coll_cluster_t *cl, const coll_partition_t *p);

/*
 * True when this node may append to p now: coll_prt_led_here() and, on a
 * cluster, coll_cluster_may_lead() (a ZooKeeper session in which p's
 * state was read), the check Produce makes: a leader cut off from
 * ZooKeeper cannot know it still leads, another node may lead a later
 * epoch already, so it takes no group or offset writes either.
 */
bool coll_prt_writable(const coll_cluster_t *cl, const coll_partition_t *p);

/*
 * Appends whole record batches data[0..len) to p as its leader (see the
 * top): data is stamped in place and written; info (may be NULL) tells
 * the offsets. 0, or the storage's error (nothing appended, nothing
 * counted), or TRIB_ESTATE when p has no log or runtime here. The caller
 * checked the batches (CRC with COLL_APPEND_CRC_VERIFIED, producer
 * sequences) and that it may write p (coll_prt_writable()).
 */
int coll_prt_append(coll_partition_t *p, void *data, size_t len, unsigned flags,
                    coll_append_info_t *info);

/*
 * The collector's own records (the coordinator's offsets and groups, the
 * sink host's dead letters): recs[0..n) built into one uncompressed batch
 * and appended with coll_prt_append(), all or nothing. 0 or an error
 * (-ENOMEM, the storage's).
 */
int coll_prt_append_records(coll_partition_t *p, const trib_record_in_t *recs, size_t n,
                            coll_append_info_t *info);

#endif
