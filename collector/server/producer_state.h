/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Idempotent producer state of one partition (KIP-98), as Kafka's
 * ProducerStateManager keeps it: per producer id, its epoch and the
 * metadata of its last five batches (first/last sequence, first/last
 * offset), enough to answer a retried batch with its original offsets and
 * to reject gaps.
 *
 * The rules, checked per batch that carries a producer id (>= 0), in
 * Kafka's order:
 *
 *   same epoch and the same first/last sequence as a remembered batch
 *       -> duplicate: nothing is appended; the original offsets are returned
 *   epoch below the producer's            -> INVALID_PRODUCER_EPOCH
 *   producer unknown, first sequence != 0 -> UNKNOWN_PRODUCER_ID
 *   epoch above the producer's (a bump), first sequence != 0
 *                                          -> OUT_OF_ORDER_SEQUENCE_NUMBER
 *   same epoch, first sequence != last sequence + 1 (with the wrap from
 *   INT32_MAX to 0)                        -> OUT_OF_ORDER_SEQUENCE_NUMBER
 *
 * Producers idle longer than producer.id.expiration.ms are forgotten.
 *
 * Snapshots: the state at a log offset is written to a small text file in
 * the partition's directory (tributary-producer-state, atomically via a
 * .tmp and rename), at a clean shutdown and periodically; at startup the
 * state is loaded from it and rebuilt from the batch headers of the log
 * after that offset, so a SIGKILL loses nothing. A snapshot that does not
 * parse, or that claims an offset past the recovered log end, is ignored
 * and the whole log is scanned instead.
 *
 *   tributary-producer-state 1
 *   offset 1234                         the log end the state covers
 *   max-timestamp 1732630099123 1200    largest batch timestamp, its batch's base
 *   producer 4000 0 1732630099123 2     id, epoch, last append (wall ms), batches
 *   batch 0 9 1200 1209                 first/last sequence, first/last offset
 *   batch 10 19 1210 1219
 *   end 1                               producers written (a torn file has none)
 */
#ifndef COLLECTOR_SERVER_PRODUCER_STATE_H
#define COLLECTOR_SERVER_PRODUCER_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define COLL_PSTATE_BATCHES 5
#define COLL_PSTATE_FILE "tributary-producer-state"

typedef struct coll_pbatch {
    int32_t first_seq, last_seq;
    int64_t first_offset, last_offset;
} coll_pbatch_t;

typedef struct coll_producer {
    struct coll_producer *hnext;
    int64_t pid;
    int16_t epoch;
    uint8_t n; /* batches remembered, oldest first */
    coll_pbatch_t batches[COLL_PSTATE_BATCHES];
    int64_t last_ms;
} coll_producer_t;

typedef struct coll_pstate {
    coll_producer_t **buckets;
    size_t nbuckets;
    size_t count;
} coll_pstate_t;

void coll_pstate_init(coll_pstate_t *ps);
void coll_pstate_fini(coll_pstate_t *ps);
/* Forgets everything. */
void coll_pstate_clear(coll_pstate_t *ps);

coll_producer_t *coll_pstate_find(const coll_pstate_t *ps, int64_t pid);

/* The last sequence of a batch: base + delta, wrapping past INT32_MAX to 0 as Kafka's. */
int32_t coll_seq_add(int32_t base, int32_t delta);

/* The sequence producer e's next batch at `epoch` must start at; -1 when e has none at it. */
int32_t coll_pstate_next_seq(const coll_producer_t *e, int16_t epoch);

/*
 * Checks one batch of producer e (NULL: unknown producer). Returns a Kafka
 * error code, or NONE; on NONE *dup (if not NULL) is the remembered batch
 * this one duplicates, or NULL for a new batch.
 */
int16_t coll_pstate_check(const coll_producer_t *e, int16_t epoch, int32_t first_seq,
                          int32_t last_seq, const coll_pbatch_t **dup);

/* Records an appended batch (creating the producer). 0 or -ENOMEM. */
int coll_pstate_update(coll_pstate_t *ps, int64_t pid, int16_t epoch, const coll_pbatch_t *b,
                       int64_t now_ms);

/* Forgets producers whose last append is older than cutoff_ms; returns how many. */
size_t coll_pstate_expire(coll_pstate_t *ps, int64_t cutoff_ms);

/* Writes a snapshot (see above) to path atomically. 0 or -errno. */
int coll_pstate_write(const coll_pstate_t *ps, const char *path, int64_t offset, int64_t max_ts,
                      int64_t max_ts_base);

/*
 * Loads a snapshot into ps (cleared first). 0; TRIB_ENOT_FOUND when there
 * is none; TRIB_EMALFORMED (ps cleared) when it does not parse.
 */
int coll_pstate_read(coll_pstate_t *ps, const char *path, int64_t *offset, int64_t *max_ts,
                     int64_t *max_ts_base);

#endif
