/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The leader epoch cache of a partition: which leader epoch started at
 * which offset, as Kafka's LeaderEpochFileCache keeps it (KIP-101/279).
 * Followers use it through OffsetForLeaderEpoch to find where their log
 * diverges from a new leader's and truncate there.
 *
 *   epoch  start offset
 *   0      0
 *   3      1500          <- epochs 1 and 2 wrote nothing
 *   4      1730          <- the latest: it runs to the log end
 *
 * Invariants: epochs strictly increase and start offsets never decrease.
 * Assigning an epoch removes any entry it contradicts (an equal or newer
 * epoch, or a start at or after the new start), exactly as Kafka does. The
 * cache is persisted in leader-epoch-checkpoint (checkpoint.c) whenever it
 * changes, and rebuilt from the batches' partitionLeaderEpoch during
 * recovery.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "storage/storage_int.h"

void coll_epoch_init(coll_epoch_cache_t *c)
{
    memset(c, 0, sizeof(*c));
}

void coll_epoch_fini(coll_epoch_cache_t *c)
{
    free(c->v);
    memset(c, 0, sizeof(*c));
}

void coll_epoch_clear(coll_epoch_cache_t *c)
{
    c->n = 0;
}

int32_t coll_epoch_latest(const coll_epoch_cache_t *c)
{
    return c->n ? c->v[c->n - 1].epoch : -1;
}

int coll_epoch_assign(coll_epoch_cache_t *c, int32_t epoch, int64_t start)
{
    if (epoch < 0 || start < 0) {
        return 0;
    }
    if (c->n > 0) {
        const coll_epoch_entry_t *last = &c->v[c->n - 1];
        if (last->epoch == epoch && last->start_offset <= start) {
            return 0;
        }
    }
    while (c->n > 0 && (c->v[c->n - 1].epoch >= epoch || c->v[c->n - 1].start_offset >= start)) {
        c->n--;
    }
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 8;
        coll_epoch_entry_t *v = realloc(c->v, cap * sizeof(*v));
        if (!v) {
            return -ENOMEM;
        }
        c->v = v;
        c->cap = cap;
    }
    c->v[c->n].epoch = epoch;
    c->v[c->n].start_offset = start;
    c->n++;
    return 1;
}

int coll_epoch_truncate_end(coll_epoch_cache_t *c, int64_t end)
{
    size_t n = c->n;
    while (c->n > 0 && c->v[c->n - 1].start_offset >= end) {
        c->n--;
    }
    return n != c->n;
}

int coll_epoch_truncate_start(coll_epoch_cache_t *c, int64_t start)
{
    size_t k = 0;
    while (k < c->n && c->v[k].start_offset <= start) {
        k++;
    }
    if (k == 0) {
        return 0;
    }
    /* Keep the last entry at or before start, moved up to start. */
    coll_epoch_entry_t keep = {c->v[k - 1].epoch, start};
    bool changed = k > 1 || c->v[0].start_offset != start;
    memmove(&c->v[1], &c->v[k], (c->n - k) * sizeof(c->v[0]));
    c->n -= k - 1;
    c->v[0] = keep;
    return changed;
}

void coll_epoch_end_offset(const coll_epoch_cache_t *c, int32_t epoch, int64_t log_end,
                           int32_t *found_epoch, int64_t *end_offset)
{
    *found_epoch = -1;
    *end_offset = -1;
    if (epoch < 0 || c->n == 0) {
        return;
    }
    if (epoch == c->v[c->n - 1].epoch) {
        *found_epoch = epoch;
        *end_offset = log_end;
        return;
    }
    size_t hi = 0;
    while (hi < c->n && c->v[hi].epoch <= epoch) {
        hi++;
    }
    if (hi == c->n) {
        return; /* newer than anything we know */
    }
    *found_epoch = hi == 0 ? epoch : c->v[hi - 1].epoch;
    *end_offset = c->v[hi].start_offset;
}
