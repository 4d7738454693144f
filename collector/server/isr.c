/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The leader's replica bookkeeping (isr.h): pure functions.
 */
#include "server/isr.h"

#include <stddef.h>

void coll_follower_reset(coll_follower_t *f, int32_t id, int64_t leader_leo, uint64_t now_ms,
                         bool in_isr)
{
    f->id = id;
    f->leo = -1;
    f->last_caught_up_ms = in_isr ? now_ms : 0;
    f->last_fetch_leader_leo = leader_leo;
    f->last_fetch_ms = now_ms;
}

void coll_follower_fetched(coll_follower_t *f, int64_t fetch_offset, int64_t leader_leo,
                           uint64_t now_ms)
{
    if (fetch_offset >= leader_leo) {
        if (now_ms > f->last_caught_up_ms) {
            f->last_caught_up_ms = now_ms;
        }
    } else if (fetch_offset >= f->last_fetch_leader_leo) {
        /* It has everything the leader had at its previous fetch: caught up as of then. */
        if (f->last_fetch_ms > f->last_caught_up_ms) {
            f->last_caught_up_ms = f->last_fetch_ms;
        }
    }
    f->leo = fetch_offset;
    f->last_fetch_leader_leo = leader_leo;
    f->last_fetch_ms = now_ms;
}

bool coll_follower_out_of_sync(const coll_follower_t *f, int64_t leader_leo, uint64_t now_ms,
                               int64_t lag_ms)
{
    if (f->leo == leader_leo) {
        return false;
    }
    uint64_t since = now_ms > f->last_caught_up_ms ? now_ms - f->last_caught_up_ms : 0;
    return since > (uint64_t)(lag_ms > 0 ? lag_ms : 0);
}

bool coll_follower_can_join(const coll_follower_t *f, int64_t hw, int64_t epoch_start)
{
    return f->leo >= 0 && f->leo >= hw && f->leo >= epoch_start;
}

coll_follower_t *coll_follower_find(coll_follower_t *f, int32_t nf, int32_t id)
{
    for (int32_t i = 0; i < nf; i++) {
        if (f[i].id == id) {
            return &f[i];
        }
    }
    return NULL;
}

int64_t coll_isr_high_watermark(const int32_t *isr, int32_t n, int32_t self,
                                const coll_follower_t *f, int32_t nf, int64_t leader_leo,
                                int64_t leader_durable)
{
    int64_t hw = leader_leo < leader_durable ? leader_leo : leader_durable;
    for (int32_t i = 0; i < n; i++) {
        if (isr[i] == self) {
            continue;
        }
        const coll_follower_t *x = coll_follower_find((coll_follower_t *)f, nf, isr[i]);
        int64_t leo = x ? x->leo : -1;
        if (leo < hw) {
            hw = leo;
        }
    }
    return hw;
}
