/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Idempotent producer state: the sequence rules and the snapshot file
 * (see producer_state.h).
 */
#include "server/producer_state.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tributary/error.h"
#include "tributary/fileio.h"
#include "tributary/kafka_error.h"

void coll_pstate_init(coll_pstate_t *ps)
{
    memset(ps, 0, sizeof(*ps));
}

void coll_pstate_clear(coll_pstate_t *ps)
{
    for (size_t i = 0; i < ps->nbuckets; i++) {
        coll_producer_t *e = ps->buckets[i];
        while (e) {
            coll_producer_t *next = e->hnext;
            free(e);
            e = next;
        }
        ps->buckets[i] = NULL;
    }
    ps->count = 0;
}

void coll_pstate_fini(coll_pstate_t *ps)
{
    coll_pstate_clear(ps);
    free(ps->buckets);
    memset(ps, 0, sizeof(*ps));
}

static size_t bucket(const coll_pstate_t *ps, int64_t pid)
{
    uint64_t h = (uint64_t)pid * 0x9E3779B97F4A7C15ULL;
    return (size_t)(h >> 32) % ps->nbuckets;
}

coll_producer_t *coll_pstate_find(const coll_pstate_t *ps, int64_t pid)
{
    if (!ps->nbuckets) {
        return NULL;
    }
    for (coll_producer_t *e = ps->buckets[bucket(ps, pid)]; e; e = e->hnext) {
        if (e->pid == pid) {
            return e;
        }
    }
    return NULL;
}

int32_t coll_seq_add(int32_t base, int32_t delta)
{
    if (base > INT32_MAX - delta) {
        return delta - (INT32_MAX - base) - 1;
    }
    return base + delta;
}

int16_t coll_pstate_check(const coll_producer_t *e, int16_t epoch, int32_t first_seq,
                          int32_t last_seq, const coll_pbatch_t **dup)
{
    if (dup) {
        *dup = NULL;
    }
    if (first_seq < 0 || last_seq < 0) {
        return TRIB_KAFKA_OUT_OF_ORDER_SEQUENCE_NUMBER;
    }
    if (!e || e->n == 0) {
        if (e && epoch < e->epoch) {
            return TRIB_KAFKA_INVALID_PRODUCER_EPOCH;
        }
        return first_seq == 0 ? TRIB_KAFKA_NONE : TRIB_KAFKA_UNKNOWN_PRODUCER_ID;
    }
    if (epoch == e->epoch) {
        for (int i = 0; i < e->n; i++) {
            if (e->batches[i].first_seq == first_seq && e->batches[i].last_seq == last_seq) {
                if (dup) {
                    *dup = &e->batches[i];
                }
                return TRIB_KAFKA_NONE;
            }
        }
    }
    if (epoch < e->epoch) {
        return TRIB_KAFKA_INVALID_PRODUCER_EPOCH;
    }
    if (epoch > e->epoch) {
        return first_seq == 0 ? TRIB_KAFKA_NONE : TRIB_KAFKA_OUT_OF_ORDER_SEQUENCE_NUMBER;
    }
    if (first_seq == coll_pstate_next_seq(e, epoch)) {
        return TRIB_KAFKA_NONE;
    }
    return TRIB_KAFKA_OUT_OF_ORDER_SEQUENCE_NUMBER;
}

int32_t coll_pstate_next_seq(const coll_producer_t *e, int16_t epoch)
{
    if (!e || e->n == 0 || e->epoch != epoch) {
        return -1;
    }
    return coll_seq_add(e->batches[e->n - 1].last_seq, 1);
}

static int grow(coll_pstate_t *ps)
{
    size_t nb = ps->nbuckets ? ps->nbuckets * 2 : 16;
    coll_producer_t **b = calloc(nb, sizeof(*b));
    if (!b) {
        return -ENOMEM;
    }
    coll_pstate_t tmp = {b, nb, 0};
    for (size_t i = 0; i < ps->nbuckets; i++) {
        coll_producer_t *e = ps->buckets[i];
        while (e) {
            coll_producer_t *next = e->hnext;
            size_t k = bucket(&tmp, e->pid);
            e->hnext = b[k];
            b[k] = e;
            e = next;
        }
    }
    free(ps->buckets);
    ps->buckets = b;
    ps->nbuckets = nb;
    return 0;
}

int coll_pstate_update(coll_pstate_t *ps, int64_t pid, int16_t epoch, const coll_pbatch_t *b,
                       int64_t now_ms)
{
    coll_producer_t *e = coll_pstate_find(ps, pid);
    if (!e) {
        if (ps->count + 1 > ps->nbuckets * 2 || !ps->nbuckets) {
            int rc = grow(ps);
            if (rc) {
                return rc;
            }
        }
        e = calloc(1, sizeof(*e));
        if (!e) {
            return -ENOMEM;
        }
        e->pid = pid;
        e->epoch = epoch;
        size_t k = bucket(ps, pid);
        e->hnext = ps->buckets[k];
        ps->buckets[k] = e;
        ps->count++;
    }
    if (epoch != e->epoch) {
        e->epoch = epoch;
        e->n = 0;
    }
    if (e->n == COLL_PSTATE_BATCHES) {
        memmove(&e->batches[0], &e->batches[1], (COLL_PSTATE_BATCHES - 1) * sizeof(e->batches[0]));
        e->n--;
    }
    e->batches[e->n++] = *b;
    if (now_ms > e->last_ms) {
        e->last_ms = now_ms;
    }
    return 0;
}

size_t coll_pstate_expire(coll_pstate_t *ps, int64_t cutoff_ms)
{
    size_t n = 0;
    for (size_t i = 0; i < ps->nbuckets; i++) {
        coll_producer_t **pp = &ps->buckets[i];
        while (*pp) {
            coll_producer_t *e = *pp;
            if (e->last_ms < cutoff_ms) {
                *pp = e->hnext;
                free(e);
                ps->count--;
                n++;
            } else {
                pp = &e->hnext;
            }
        }
    }
    return n;
}

int coll_pstate_write(const coll_pstate_t *ps, const char *path, int64_t offset, int64_t max_ts,
                      int64_t max_ts_base)
{
    char *text = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&text, &len);
    if (!fp) {
        return -errno;
    }
    fprintf(fp,
            "tributary-producer-state 1\noffset %" PRId64 "\nmax-timestamp %" PRId64 " %" PRId64
            "\n",
            offset, max_ts, max_ts_base);
    size_t count = 0;
    for (size_t i = 0; i < ps->nbuckets; i++) {
        for (const coll_producer_t *e = ps->buckets[i]; e; e = e->hnext) {
            fprintf(fp, "producer %" PRId64 " %d %" PRId64 " %d\n", e->pid, (int)e->epoch,
                    e->last_ms, (int)e->n);
            for (int k = 0; k < e->n; k++) {
                const coll_pbatch_t *b = &e->batches[k];
                fprintf(fp, "batch %" PRId32 " %" PRId32 " %" PRId64 " %" PRId64 "\n", b->first_seq,
                        b->last_seq, b->first_offset, b->last_offset);
            }
            count++;
        }
    }
    fprintf(fp, "end %zu\n", count);
    /*
     * No fsync: a lost or torn snapshot only means a longer scan at the next
     * start, and one newer than the recovered log is detected and ignored.
     */
    return trib_write_memstream_atomic(path, fp, &text, &len, 0644, TRIB_WRITE_NOSYNC);
}

int coll_pstate_read(coll_pstate_t *ps, const char *path, int64_t *offset, int64_t *max_ts,
                     int64_t *max_ts_base)
{
    coll_pstate_clear(ps);
    FILE *fp = fopen(path, "re");
    if (!fp) {
        return errno == ENOENT ? TRIB_ENOT_FOUND : -errno;
    }
    char line[256];
    int version = 0;
    int64_t off = -1, mts = -1, mbase = -1;
    size_t producers = 0;
    int rc = TRIB_EMALFORMED;
    int64_t pid = 0, last_ms = 0;
    int epoch = 0, nb = 0, seen_batches = 0;
    if (!fgets(line, sizeof(line), fp) ||
        sscanf(line, "tributary-producer-state %d", &version) != 1 || version != 1) {
        goto out;
    }
    if (!fgets(line, sizeof(line), fp) || sscanf(line, "offset %" SCNd64, &off) != 1 || off < 0) {
        goto out;
    }
    if (!fgets(line, sizeof(line), fp) ||
        sscanf(line, "max-timestamp %" SCNd64 " %" SCNd64, &mts, &mbase) != 2) {
        goto out;
    }
    while (fgets(line, sizeof(line), fp)) {
        size_t end_count;
        if (sscanf(line, "producer %" SCNd64 " %d %" SCNd64 " %d", &pid, &epoch, &last_ms, &nb) ==
            4) {
            if (seen_batches != 0 || pid < 0 || epoch < 0 || epoch > INT16_MAX || nb < 0 ||
                nb > COLL_PSTATE_BATCHES) {
                goto out;
            }
            seen_batches = nb;
            producers++;
            if (nb == 0) {
                /* A producer whose batches were all forgotten still has an epoch. */
                coll_pbatch_t dummy = {0, 0, 0, 0};
                if (coll_pstate_update(ps, pid, (int16_t)epoch, &dummy, last_ms) != 0) {
                    rc = -ENOMEM;
                    goto out;
                }
                coll_pstate_find(ps, pid)->n = 0;
            }
        } else if (strncmp(line, "batch ", 6) == 0) {
            coll_pbatch_t b;
            if (seen_batches <= 0 ||
                sscanf(line, "batch %" SCNd32 " %" SCNd32 " %" SCNd64 " %" SCNd64, &b.first_seq,
                       &b.last_seq, &b.first_offset, &b.last_offset) != 4) {
                goto out;
            }
            if (coll_pstate_update(ps, pid, (int16_t)epoch, &b, last_ms) != 0) {
                rc = -ENOMEM;
                goto out;
            }
            seen_batches--;
        } else if (sscanf(line, "end %zu", &end_count) == 1) {
            if (end_count != producers || seen_batches != 0) {
                goto out;
            }
            *offset = off;
            *max_ts = mts;
            *max_ts_base = mbase;
            rc = 0;
            goto out;
        } else {
            goto out;
        }
    }
out:
    fclose(fp);
    if (rc) {
        coll_pstate_clear(ps);
    }
    return rc;
}
