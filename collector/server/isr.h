/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The leader's replica bookkeeping as pure functions (Kafka 2.8's
 * Partition and Replica): the followers' fetch state, the high watermark
 * over the ISR, and who leaves or joins the ISR. No I/O and no clock of
 * their own, so the unit tests drive them with any history
 * (tests/unit/server/test_isr.c); replica.c applies their answers.
 *
 * Rules, each as Kafka 2.8 has it:
 *
 *   fetch state   a follower's log end offset (LEO) is the FetchOffset of
 *                 its latest fetch (-1 until it fetches from this leader).
 *                 It was "caught up" at the time of a fetch at or past the
 *                 leader's LEO, or, for a fetch at or past the leader's
 *                 LEO as of the previous fetch, at that previous fetch's
 *                 time (Replica.updateFetchState's lastCaughtUpTimeMs).
 *   maximal ISR   the committed ISR, plus the follower being added while
 *                 an expansion is in flight; while a shrink is in flight,
 *                 the ISR before the shrink (KIP-497): the high watermark
 *                 and acks=all never count on a smaller ISR than the one
 *                 that may be committed.
 *   high watermark  min(LEO) over the maximal ISR, the leader's own LEO
 *                 capped at its durable offset when storage.fsync is ack;
 *                 it only ever moves forward on a leader.
 *   shrink        a follower of the committed ISR leaves when its LEO is
 *                 not the leader's and it was last caught up more than
 *                 replica.lag.time.max.ms ago.
 *   expand        a replica outside the ISR joins when its LEO is at or
 *                 past the high watermark and at or past the start offset
 *                 of the leader's current epoch (KAFKA-7128: a follower
 *                 below it may still hold a diverged tail).
 */
#ifndef COLLECTOR_SERVER_ISR_H
#define COLLECTOR_SERVER_ISR_H

#include <stdbool.h>
#include <stdint.h>

/* What the leader knows of one follower. */
typedef struct coll_follower {
    int32_t id;
    int64_t leo;                   /* FetchOffset of the latest fetch; -1: none yet */
    uint64_t last_caught_up_ms;    /* 0: never */
    int64_t last_fetch_leader_leo; /* the leader's LEO at the previous fetch */
    uint64_t last_fetch_ms;
} coll_follower_t;

/*
 * A new leader (or a follower newly in the assignment): LEO unknown, the
 * previous fetch taken as now at leader_leo, caught up now when the
 * follower is in the ISR (so it gets a full lag time to fetch) and never
 * otherwise (Kafka's resetLastCaughtUpTime).
 */
void coll_follower_reset(coll_follower_t *f, int32_t id, int64_t leader_leo, uint64_t now_ms,
                         bool in_isr);

/* A fetch from f at fetch_offset, when the leader's LEO is leader_leo. */
void coll_follower_fetched(coll_follower_t *f, int64_t fetch_offset, int64_t leader_leo,
                           uint64_t now_ms);

/* True when f is out of sync: behind the leader's LEO and not caught up for lag_ms. */
bool coll_follower_out_of_sync(const coll_follower_t *f, int64_t leader_leo, uint64_t now_ms,
                               int64_t lag_ms);

/* True when a replica outside the ISR may join it (see the top). */
bool coll_follower_can_join(const coll_follower_t *f, int64_t hw, int64_t epoch_start);

/*
 * The high watermark the ISR allows: min over isr[0..n) of the LEOs, the
 * leader's (self) being min(leader_leo, leader_durable). A member with no
 * known LEO (or no entry in f) gives -1: nothing is allowed. The caller
 * applies it only when it is above the current high watermark.
 */
int64_t coll_isr_high_watermark(const int32_t *isr, int32_t n, int32_t self,
                                const coll_follower_t *f, int32_t nf, int64_t leader_leo,
                                int64_t leader_durable);

/* The follower entry of id in f[0..nf), or NULL. */
coll_follower_t *coll_follower_find(coll_follower_t *f, int32_t nf, int32_t id);

#endif
