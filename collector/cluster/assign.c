/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Kafka's replica assignment (see assign.h).
 */
#include "cluster/assign.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

static int32_t rand_below(int32_t n)
{
    uint32_t v = 0;
    if (getrandom(&v, sizeof(v), 0) != (ssize_t)sizeof(v)) {
        v = (uint32_t)rand();
    }
    return (int32_t)(v % (uint32_t)n);
}

static int32_t replica_index(int32_t first, int64_t shift, int32_t k, int32_t n)
{
    int32_t s = 1 + (int32_t)((shift + k) % (n - 1));
    return (first + s) % n;
}

static bool has_rack(const coll_assign_broker_t *b)
{
    return b->rack && b->rack[0];
}

static int cmp_id(const void *x, const void *y)
{
    const coll_assign_broker_t *a = x, *b = y;
    return a->id < b->id ? -1 : a->id > b->id;
}

static int cmp_rack_id(const void *x, const void *y)
{
    const coll_assign_broker_t *a = x, *b = y;
    int c = strcmp(a->rack, b->rack);
    return c ? c : cmp_id(x, y);
}

int coll_assign_replicas(const coll_assign_broker_t *brokers, size_t nbrokers, int32_t npart,
                         int32_t rf, int32_t start_index, int32_t shift, int32_t start_partition,
                         int32_t *out, char *why, size_t whylen)
{
    if (npart <= 0) {
        snprintf(why, whylen, "Number of partitions must be larger than 0.");
        return -EINVAL;
    }
    if (rf <= 0) {
        snprintf(why, whylen, "Replication factor must be larger than 0.");
        return -EINVAL;
    }
    if ((size_t)rf > nbrokers) {
        snprintf(why, whylen, "Replication factor: %" PRId32 " larger than available brokers: %zu.",
                 rf, nbrokers);
        return -EINVAL;
    }
    size_t racked = 0;
    for (size_t i = 0; i < nbrokers; i++) {
        racked += has_rack(&brokers[i]) ? 1 : 0;
    }
    if (racked != 0 && racked != nbrokers) {
        snprintf(why, whylen,
                 "Not all brokers have rack information for replica rack aware assignment.");
        return -EINVAL;
    }
    int32_t n = (int32_t)nbrokers;
    coll_assign_broker_t *arr = malloc(nbrokers * sizeof(*arr));
    /* Rack bookkeeping: rack index of each arranged broker. */
    int32_t *rack_of = malloc(nbrokers * sizeof(*rack_of));
    bool *rack_used = calloc(nbrokers, sizeof(*rack_used));
    bool *broker_used = calloc(nbrokers, sizeof(*broker_used));
    if (!arr || !rack_of || !rack_used || !broker_used) {
        free(arr);
        free(rack_of);
        free(rack_used);
        free(broker_used);
        snprintf(why, whylen, "out of memory");
        return -ENOMEM;
    }
    int32_t nracks = 0;
    if (racked == 0) {
        memcpy(arr, brokers, nbrokers * sizeof(*arr));
        qsort(arr, nbrokers, sizeof(*arr), cmp_id);
    } else {
        /* Rack-alternated: racks sorted, each rack's brokers sorted, one per rack in turn. */
        coll_assign_broker_t *sorted = malloc(nbrokers * sizeof(*sorted));
        int32_t *rstart = malloc((nbrokers + 1) * sizeof(*rstart));
        int32_t *rnext = malloc(nbrokers * sizeof(*rnext));
        if (!sorted || !rstart || !rnext) {
            free(sorted);
            free(rstart);
            free(rnext);
            free(arr);
            free(rack_of);
            free(rack_used);
            free(broker_used);
            snprintf(why, whylen, "out of memory");
            return -ENOMEM;
        }
        memcpy(sorted, brokers, nbrokers * sizeof(*sorted));
        qsort(sorted, nbrokers, sizeof(*sorted), cmp_rack_id);
        for (size_t i = 0; i < nbrokers; i++) {
            if (i == 0 || strcmp(sorted[i].rack, sorted[i - 1].rack) != 0) {
                rstart[nracks++] = (int32_t)i;
            }
        }
        rstart[nracks] = n;
        for (int32_t r = 0; r < nracks; r++) {
            rnext[r] = rstart[r];
        }
        int32_t k = 0, r = 0;
        while (k < n) {
            if (rnext[r] < rstart[r + 1]) {
                rack_of[k] = r;
                arr[k++] = sorted[rnext[r]++];
            }
            r = (r + 1) % nracks;
        }
        free(sorted);
        free(rstart);
        free(rnext);
    }
    int32_t start = start_index >= 0 ? start_index : rand_below(n);
    int32_t next_shift = shift >= 0 ? shift : rand_below(n);
    int32_t pid = start_partition > 0 ? start_partition : 0;
    for (int32_t row = 0; row < npart; row++, pid++) {
        if (pid > 0 && pid % n == 0) {
            next_shift++;
        }
        int32_t first = (int32_t)(((int64_t)pid + start) % n);
        int32_t *rep = out + (size_t)row * (size_t)rf;
        rep[0] = arr[first].id;
        if (racked == 0) {
            for (int32_t j = 0; j < rf - 1; j++) {
                rep[1 + j] = arr[replica_index(first, next_shift, j, n)].id;
            }
            continue;
        }
        memset(rack_used, 0, nbrokers * sizeof(*rack_used));
        memset(broker_used, 0, nbrokers * sizeof(*broker_used));
        rack_used[rack_of[first]] = true;
        broker_used[first] = true;
        int32_t racks_with = 1, brokers_with = 1, k = 0;
        for (int32_t j = 0; j < rf - 1; j++) {
            for (;;) {
                int32_t b = replica_index(first, (int64_t)next_shift * nracks, k, n);
                k++;
                int32_t rk = rack_of[b];
                if ((!rack_used[rk] || racks_with == nracks) &&
                    (!broker_used[b] || brokers_with == n)) {
                    rep[1 + j] = arr[b].id;
                    if (!rack_used[rk]) {
                        rack_used[rk] = true;
                        racks_with++;
                    }
                    if (!broker_used[b]) {
                        broker_used[b] = true;
                        brokers_with++;
                    }
                    break;
                }
            }
        }
    }
    free(arr);
    free(rack_of);
    free(rack_used);
    free(broker_used);
    return 0;
}
