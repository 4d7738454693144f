/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The fetch purgatory: long-poll fetches parked until enough bytes arrive
 * or their MaxWaitMs runs out (Kafka's DelayedFetch).
 *
 * A parked fetch has one watch per partition it reads, linked into that
 * partition's watcher list (coll_prt_t.watchers), and one entry in a
 * binary min-heap ordered by deadline; a single uv_timer is armed for the
 * earliest deadline. An append calls coll_purgatory_notify() with the
 * bytes it added: every watcher's count grows by them, and a fetch whose
 * count reaches its MinBytes completes (it re-reads the logs; the count is
 * only the trigger, as Kafka's estimate is). Completing removes the fetch
 * from the heap and from every watcher list before its callback runs.
 *
 * Produce requests waiting for durability (acks=all, storage.fsync: ack)
 * do not park here: the storage's group commit calls them back
 * (coll_log_wait_durable); see api/produce.c.
 */
#include "server/server_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void heap_swap(coll_purgatory_t *pg, size_t a, size_t b)
{
    coll_parked_t *t = pg->heap[a];
    pg->heap[a] = pg->heap[b];
    pg->heap[b] = t;
    pg->heap[a]->heap_index = a;
    pg->heap[b]->heap_index = b;
}

static void heap_up(coll_purgatory_t *pg, size_t i)
{
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (pg->heap[parent]->deadline_ms <= pg->heap[i]->deadline_ms) {
            break;
        }
        heap_swap(pg, parent, i);
        i = parent;
    }
}

static void heap_down(coll_purgatory_t *pg, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < pg->n && pg->heap[l]->deadline_ms < pg->heap[m]->deadline_ms) {
            m = l;
        }
        if (r < pg->n && pg->heap[r]->deadline_ms < pg->heap[m]->deadline_ms) {
            m = r;
        }
        if (m == i) {
            return;
        }
        heap_swap(pg, i, m);
        i = m;
    }
}

static void timer_cb(uv_timer_t *t);

static void arm(coll_purgatory_t *pg)
{
    if (pg->closing) {
        return;
    }
    if (pg->n == 0) {
        uv_timer_stop(&pg->timer);
        return;
    }
    uint64_t now = uv_now(pg->timer.loop);
    uint64_t d = pg->heap[0]->deadline_ms;
    uv_timer_start(&pg->timer, timer_cb, d > now ? d - now : 0, 0);
}

static void complete(coll_purgatory_t *pg, coll_parked_t *pk)
{
    coll_purgatory_remove(pg, pk);
    pk->complete(pk);
}

static void timer_cb(uv_timer_t *t)
{
    coll_purgatory_t *pg = t->data;
    uint64_t now = uv_now(t->loop);
    while (pg->n > 0 && pg->heap[0]->deadline_ms <= now) {
        complete(pg, pg->heap[0]);
    }
    arm(pg);
}

int coll_purgatory_init(uv_loop_t *loop, coll_purgatory_t *pg)
{
    memset(pg, 0, sizeof(*pg));
    int rc = uv_timer_init(loop, &pg->timer);
    if (rc) {
        return rc;
    }
    pg->timer.data = pg;
    return 0;
}

void coll_purgatory_close(coll_purgatory_t *pg, uv_close_cb cb)
{
    pg->closing = true;
    free(pg->heap);
    pg->heap = NULL;
    pg->n = pg->cap = 0;
    uv_close((uv_handle_t *)&pg->timer, cb);
}

int coll_purgatory_park(coll_purgatory_t *pg, coll_parked_t *pk, uint64_t now_ms)
{
    (void)now_ms;
    if (pg->closing) {
        return TRIB_ESTATE;
    }
    if (pg->n == pg->cap) {
        size_t cap = pg->cap ? pg->cap * 2 : 64;
        coll_parked_t **h = realloc(pg->heap, cap * sizeof(*h));
        if (!h) {
            return -ENOMEM;
        }
        pg->heap = h;
        pg->cap = cap;
    }
    pk->heap_index = pg->n;
    pg->heap[pg->n++] = pk;
    heap_up(pg, pk->heap_index);
    for (size_t i = 0; i < pk->nwatches; i++) {
        coll_watch_t *w = &pk->watches[i];
        w->parked = pk;
        w->prev = NULL;
        w->next = w->prt->watchers;
        if (w->next) {
            w->next->prev = w;
        }
        w->prt->watchers = w;
    }
    if (pg->heap[0] == pk) {
        arm(pg);
    }
    return 0;
}

void coll_purgatory_remove(coll_purgatory_t *pg, coll_parked_t *pk)
{
    for (size_t i = 0; i < pk->nwatches; i++) {
        coll_watch_t *w = &pk->watches[i];
        if (!w->prt) {
            continue;
        }
        if (w->prev) {
            w->prev->next = w->next;
        } else if (w->prt->watchers == w) {
            w->prt->watchers = w->next;
        }
        if (w->next) {
            w->next->prev = w->prev;
        }
        w->prev = w->next = NULL;
        w->prt = NULL;
    }
    size_t i = pk->heap_index;
    if (i < pg->n && pg->heap[i] == pk) {
        bool was_first = i == 0;
        pg->n--;
        if (i != pg->n) {
            pg->heap[i] = pg->heap[pg->n];
            pg->heap[i]->heap_index = i;
            heap_down(pg, i);
            heap_up(pg, i);
        }
        if (was_first) {
            arm(pg);
        }
    }
    pk->heap_index = SIZE_MAX;
}

void coll_purgatory_notify(coll_purgatory_t *pg, coll_prt_t *prt, size_t bytes)
{
    coll_watch_t *w = prt->watchers;
    while (w) {
        /* Completing w's fetch unlinks only w from this list (one watch per partition). */
        coll_watch_t *next = w->next;
        coll_parked_t *pk = w->parked;
        pk->bytes += (int64_t)bytes;
        if (pk->bytes >= pk->min_bytes) {
            complete(pg, pk);
        }
        w = next;
    }
}

void coll_purgatory_notify_replicas(coll_purgatory_t *pg, coll_prt_t *prt, size_t bytes)
{
    coll_watch_t *w = prt->watchers;
    while (w) {
        coll_watch_t *next = w->next;
        coll_parked_t *pk = w->parked;
        if (pk->replica) {
            pk->bytes += (int64_t)bytes;
            if (pk->bytes >= pk->min_bytes) {
                complete(pg, pk);
            }
        }
        w = next;
    }
}

void coll_purgatory_hw_moved(coll_purgatory_t *pg, coll_prt_t *prt)
{
    /*
     * Completing one fetch unlinks only its own watch, but a recheck may
     * not complete it: walk a snapshot of the list by restarting after
     * each completion, marking what was looked at.
     */
    uint64_t mark = ++pg->hw_serial;
    bool again = true;
    while (again) {
        again = false;
        for (coll_watch_t *w = prt->watchers; w; w = w->next) {
            coll_parked_t *pk = w->parked;
            if (pk->hw_mark == mark) {
                continue;
            }
            pk->hw_mark = mark;
            if (!pk->replica && pk->recheck) {
                int64_t have = pk->recheck(pk);
                if (have >= 0 && have < pk->min_bytes) {
                    pk->bytes = have;
                    continue;
                }
            }
            complete(pg, pk);
            again = true;
            break;
        }
    }
}

void coll_purgatory_wake(coll_purgatory_t *pg, coll_prt_t *prt)
{
    while (prt->watchers) {
        complete(pg, prt->watchers->parked);
    }
}

void coll_purgatory_wake_all(coll_purgatory_t *pg)
{
    while (pg->n > 0) {
        complete(pg, pg->heap[0]);
    }
}

size_t coll_purgatory_size(const coll_purgatory_t *pg)
{
    return pg->n;
}
