/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The follower's truncation decision (KIP-101, KIP-279): given the
 * leader's answer to OffsetForLeaderEpoch and what the local log knows,
 * where to cut the local log and whether to ask again.
 *
 * A pure function, so the rules are tested without a network:
 *
 *   answer (epoch E, end offset O) for the asked epoch A (the local log's
 *   latest), local log end LEO, local lookup (F, FEND) = the largest local
 *   epoch <= E and where it ends:
 *
 *   O == -1 (UNDEFINED)         the leader knows no epoch <= A: it has not
 *                               recorded its own epoch yet, or it is behind
 *                               (a stale leader). Nothing is cut; the
 *                               follower backs off and asks again (Kafka
 *                               would truncate to its initial fetch offset,
 *                               the high watermark for logs without epochs:
 *                               never here, our logs always have epochs)
 *   E == -1, O >= 0             an answer without epochs (v0 shape):
 *                               cut to min(O, LEO), done
 *   no local epoch <= E         cut to min(O, LEO), done
 *   F != E                      the leader's epoch is unknown here (a fast
 *                               double failover, KIP-279): cut to
 *                               min(FEND, LEO) and ask again with the
 *                               (now lower) latest local epoch
 *   F == E                      cut to min(O, FEND, LEO), done
 *
 * The local high watermark is never an input: truncating to it loses
 * acknowledged records or leaves logs divergent (KIP-101's scenarios).
 */
#ifndef COLLECTOR_REPLICA_TRUNCATE_H
#define COLLECTOR_REPLICA_TRUNCATE_H

#include <stdint.h>

#include "storage/storage.h"

typedef enum coll_trunc_action {
    COLL_TRUNC_DONE = 0,  /* cut to *offset (may be the log end: nothing to cut), then fetch */
    COLL_TRUNC_AGAIN = 1, /* cut to *offset, then ask again with the new latest epoch */
    COLL_TRUNC_RETRY = 2, /* cut nothing; ask again after a backoff */
} coll_trunc_action_t;

/*
 * The decision above. local_epoch/local_end: the local lookup for the
 * answer's epoch (coll_log_end_offset_for_epoch(log, answer_epoch)), -1/-1
 * when there is none or the answer has no epoch.
 */
coll_trunc_action_t coll_trunc_decide(int32_t answer_epoch, int64_t answer_end, int32_t local_epoch,
                                      int64_t local_end, int64_t leo, int64_t *offset);

/* The decision for a log: does the local lookup, then coll_trunc_decide(). */
coll_trunc_action_t coll_trunc_decide_log(const coll_log_t *log, int32_t answer_epoch,
                                          int64_t answer_end, int64_t *offset);

/*
 * Cuts the log to offset: coll_log_truncate_to, or coll_log_truncate_fully
 * when offset is below the log start (as Kafka's Log.truncateTo). Returns
 * 1 when something was cut, 0 when offset was at or past the log end, or
 * a negative error from the storage.
 */
int coll_trunc_apply(coll_log_t *log, int64_t offset);

#endif
