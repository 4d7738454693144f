/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The leader side of replication (replica/replica.h), Kafka 2.8's
 * Partition as a leader: the followers' fetch state, the high watermark
 * over the ISR, acks=all waiting for it, and ISR shrink and expand
 * written with coll_cluster_alter_isr. The decisions themselves are the
 * pure functions of isr.h; this file applies them to a partition.
 *
 * A partition has a coll_leader_t (prt->leader) from become_leader to
 * become_follower (or its removal), and only with a replicated cluster
 * backend: with the local backend nothing here runs and the high
 * watermark follows the log end (coll_prt_appended).
 *
 * The high watermark moves (never back) when an append, a follower's
 * fetch, the leader's fsync (storage.fsync: ack caps it at the durable
 * offset) or an ISR change allows; a move answers the acks=all appends it
 * covers, wakes consumers' parked fetches, and wakes followers' parked
 * fetches so they learn it without waiting for the next append.
 *
 * ISR changes (one in flight per partition, KIP-497): while one is in
 * flight the high watermark and NOT_ENOUGH_REPLICAS_AFTER_APPEND count
 * the larger of the ISR before and after it. A proposal that finds the
 * state znode moved on (-ESTALE) is dropped; the backend has applied the
 * newer state and the next fetch or tick proposes again from it.
 */
#include "server/server_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/isr.h"

typedef struct isr_token {
    coll_prt_t *prt; /* NULL: the partition's leader state went away */
    bool shrink;
} isr_token_t;

typedef struct ldurable {
    coll_durable_req_t req;
    coll_prt_t *prt; /* NULL: orphaned, freed by its callback */
    bool busy;
} ldurable_t;

struct coll_leader {
    int32_t epoch;
    int64_t epoch_start;     /* the log end when this epoch began (KAFKA-7128's guard) */
    uint64_t epoch_since_ms; /* uv_now() when this node took this epoch */
    coll_follower_t *f;      /* every other replica */
    int32_t nf;
    /* an ISR proposal in flight */
    isr_token_t *token;
    int32_t proposal_epoch; /* p->partition_epoch it was proposed at */
    int32_t *maximal;       /* the committed ISR and the proposal together */
    int32_t nmaximal;
    uint64_t next_shrink_ms;
    ldurable_t *dw;
};

static int32_t self_id(const coll_prt_t *prt)
{
    return coll_cluster_node_id(prt->srv->cluster);
}

static int64_t lag_ms(const coll_prt_t *prt)
{
    int64_t v = prt->srv->cfg.replica_lag_time_max_ms;
    return v > 0 ? v : 30000;
}

static void isr_text(char *out, size_t n, const int32_t *isr, int32_t k)
{
    size_t at = 0;
    out[0] = 0;
    for (int32_t i = 0; i < k && at < n; i++) {
        int w = snprintf(out + at, n - at, "%s%" PRId32, i ? "," : "", isr[i]);
        if (w < 0) {
            break;
        }
        at += (size_t)w;
    }
}

/* The ISR the high watermark counts: committed, or with the proposal in flight. */
static const int32_t *maximal_isr(const coll_prt_t *prt, int32_t *n)
{
    const coll_leader_t *L = prt->leader;
    if (L && L->token && L->maximal && prt->p->partition_epoch == L->proposal_epoch) {
        *n = L->nmaximal;
        return L->maximal;
    }
    *n = prt->p->nisr;
    return prt->p->isr;
}

int32_t coll_replica_maximal_isr_size(const coll_prt_t *prt)
{
    int32_t n;
    maximal_isr(prt, &n);
    return n;
}

static int64_t durable_cap(const coll_prt_t *prt)
{
    return prt->srv->cfg.fsync == COLL_FSYNC_ACK ? coll_log_durable_offset(prt->p->log) : INT64_MAX;
}

/* ---- the high watermark ------------------------------------------------------------------- */

static void hw_moved(coll_prt_t *prt)
{
    int64_t hw = coll_log_high_watermark(prt->p->log);
    int32_t isr = coll_replica_maximal_isr_size(prt);
    coll_hwait_t *w = prt->hwaiters;
    while (w) {
        coll_hwait_t *next = w->next;
        if (w->required <= hw) {
            coll_replica_hwait_cancel(w, isr < w->min_isr
                                             ? TRIB_KAFKA_NOT_ENOUGH_REPLICAS_AFTER_APPEND
                                             : TRIB_KAFKA_NONE);
        }
        w = next;
    }
    coll_purgatory_hw_moved(&prt->srv->purgatory, prt);
}

/* Moves the high watermark as far as the ISR allows; true when it moved. */
static bool update_hw(coll_prt_t *prt)
{
    coll_leader_t *L = prt->leader;
    coll_log_t *log = prt->p->log;
    if (!L || !log) {
        return false;
    }
    int32_t n;
    const int32_t *isr = maximal_isr(prt, &n);
    int64_t cand = coll_isr_high_watermark(isr, n, self_id(prt), L->f, L->nf,
                                           coll_log_end_offset(log), durable_cap(prt));
    if (cand <= coll_log_high_watermark(log)) {
        return false;
    }
    coll_log_set_high_watermark(log, cand);
    hw_moved(prt);
    return true;
}

static void ensure_durable_wait(coll_prt_t *prt);

static void durable_cb(coll_durable_req_t *req, int status)
{
    ldurable_t *dw = req->data;
    dw->busy = false;
    coll_prt_t *prt = dw->prt;
    if (!prt) {
        free(dw);
        return;
    }
    if (status != 0 && status != -ECANCELED) {
        /* The log refuses writes now; the high watermark stays where it is. */
        TRIB_LOG(TRIB_LOG_ERROR, COLL_SERVER_FACILITY, "%s-%d: fsync: %s", prt->p->topic->name,
                 (int)prt->p->index, trib_strerror(status));
        return;
    }
    update_hw(prt);
    ensure_durable_wait(prt);
}

/* With storage.fsync ack the leader's own log end counts once it is durable: ask for it. */
static void ensure_durable_wait(coll_prt_t *prt)
{
    coll_leader_t *L = prt->leader;
    if (!L || prt->srv->cfg.fsync != COLL_FSYNC_ACK) {
        return;
    }
    coll_log_t *log = prt->p->log;
    int64_t leo = coll_log_end_offset(log);
    if (coll_log_durable_offset(log) >= leo) {
        return;
    }
    if (!L->dw) {
        L->dw = calloc(1, sizeof(*L->dw));
        if (!L->dw) {
            return;
        }
        L->dw->prt = prt;
    }
    if (L->dw->busy) {
        return; /* its callback asks again for what was appended meanwhile */
    }
    L->dw->req.data = L->dw;
    if (coll_log_wait_durable(log, leo - 1, &L->dw->req, durable_cb) == 0) {
        L->dw->busy = true;
    }
}

/* ---- acks=all ------------------------------------------------------------------------------- */

void coll_replica_hwait(coll_prt_t *prt, coll_hwait_t *w)
{
    w->prt = prt;
    w->prev = NULL;
    w->next = prt->hwaiters;
    if (w->next) {
        w->next->prev = w;
    }
    prt->hwaiters = w;
    if (!prt->leader) {
        coll_replica_hwait_cancel(w, TRIB_KAFKA_NOT_LEADER_OR_FOLLOWER);
    } else if (coll_log_high_watermark(prt->p->log) >= w->required) {
        coll_replica_hwait_cancel(w, coll_replica_maximal_isr_size(prt) < w->min_isr
                                         ? TRIB_KAFKA_NOT_ENOUGH_REPLICAS_AFTER_APPEND
                                         : TRIB_KAFKA_NONE);
    }
}

void coll_replica_hwait_cancel(coll_hwait_t *w, int16_t error)
{
    coll_prt_t *prt = w->prt;
    if (!prt) {
        return;
    }
    if (w->prev) {
        w->prev->next = w->next;
    } else {
        prt->hwaiters = w->next;
    }
    if (w->next) {
        w->next->prev = w->prev;
    }
    w->prev = w->next = NULL;
    w->prt = NULL;
    w->done(w, error);
}

static void cancel_all(coll_prt_t *prt, int16_t error)
{
    while (prt->hwaiters) {
        coll_replica_hwait_cancel(prt->hwaiters, error);
    }
}

/* ---- ISR changes -------------------------------------------------------------------------- */

static void isr_written(void *arg, coll_partition_t *p, int status)
{
    (void)p;
    isr_token_t *t = arg;
    coll_prt_t *prt = t->prt;
    bool shrink = t->shrink;
    free(t);
    if (!prt || !prt->leader) {
        return; /* the leader state (or the partition) went away: p is not ours to touch */
    }
    coll_leader_t *L = prt->leader;
    L->token = NULL;
    free(L->maximal);
    L->maximal = NULL;
    L->nmaximal = 0;
    coll_server_t *s = prt->srv;
    char isr[128];
    isr_text(isr, sizeof(isr), prt->p->isr, prt->p->nisr);
    if (status == 0) {
        if (shrink) {
            s->metrics.isr_shrinks++;
        } else {
            s->metrics.isr_expands++;
        }
        TRIB_LOG(TRIB_LOG_INFO, COLL_SERVER_FACILITY, "%s-%d: ISR is now [%s] (%s)",
                 prt->p->topic->name, (int)prt->p->index, isr, shrink ? "shrink" : "expand");
    } else if (status == -ESTALE) {
        TRIB_LOG(TRIB_LOG_INFO, COLL_SERVER_FACILITY,
                 "%s-%d: ISR %s not written: the partition state moved on (ISR [%s], partition "
                 "epoch %" PRId32 "); proposing again from it",
                 prt->p->topic->name, (int)prt->p->index, shrink ? "shrink" : "expansion", isr,
                 prt->p->partition_epoch);
    } else {
        TRIB_LOG(TRIB_LOG_WARN, COLL_SERVER_FACILITY, "%s-%d: ISR %s not written: %s",
                 prt->p->topic->name, (int)prt->p->index, shrink ? "shrink" : "expansion",
                 trib_strerror(status));
    }
    update_hw(prt);
}

/* Proposes isr[0..n) (same leader and epoch) unless a proposal is in flight. */
static void propose(coll_prt_t *prt, const int32_t *isr, int32_t n, bool shrink)
{
    coll_leader_t *L = prt->leader;
    coll_partition_t *p = prt->p;
    if (L->token) {
        return;
    }
    isr_token_t *t = calloc(1, sizeof(*t));
    /* The larger of the two: the committed ISR and the proposal. */
    int32_t *mx = calloc((size_t)(p->nisr + n) + 1, sizeof(*mx));
    if (!t || !mx) {
        free(t);
        free(mx);
        return;
    }
    int32_t nmx = 0;
    for (int32_t i = 0; i < p->nisr; i++) {
        mx[nmx++] = p->isr[i];
    }
    for (int32_t i = 0; i < n; i++) {
        if (!coll_partition_in_isr(p, isr[i])) {
            mx[nmx++] = isr[i];
        }
    }
    t->prt = prt;
    t->shrink = shrink;
    char from[128], to[128];
    isr_text(from, sizeof(from), p->isr, p->nisr);
    isr_text(to, sizeof(to), isr, n);
    /* Set before the call: a backend may answer before it returns. */
    L->token = t;
    L->proposal_epoch = p->partition_epoch;
    L->maximal = mx;
    L->nmaximal = nmx;
    int rc = coll_cluster_alter_isr(prt->srv->cluster, p, isr, n, isr_written, t);
    if (rc != 0) {
        if (L->token == t) {
            L->token = NULL;
            L->maximal = NULL;
            L->nmaximal = 0;
        }
        free(t);
        free(mx);
        if (rc != -ENOTSUP) {
            TRIB_LOG(TRIB_LOG_WARN, COLL_SERVER_FACILITY, "%s-%d: ISR change [%s] -> [%s]: %s",
                     p->topic->name, (int)p->index, from, to, trib_strerror(rc));
        }
        return;
    }
    TRIB_LOG(TRIB_LOG_INFO, COLL_SERVER_FACILITY, "%s-%d: %s ISR from [%s] to [%s]", p->topic->name,
             (int)p->index, shrink ? "shrinking" : "expanding", from, to);
}

static void maybe_expand(coll_prt_t *prt, const coll_follower_t *f)
{
    coll_leader_t *L = prt->leader;
    coll_partition_t *p = prt->p;
    if (L->token || coll_partition_in_isr(p, f->id) || !coll_partition_is_replica(p, f->id) ||
        !coll_follower_can_join(f, coll_log_high_watermark(p->log), L->epoch_start)) {
        return;
    }
    int32_t *isr = malloc(((size_t)p->nisr + 1) * sizeof(*isr));
    if (!isr) {
        return;
    }
    memcpy(isr, p->isr, (size_t)p->nisr * sizeof(*isr));
    isr[p->nisr] = f->id;
    /* What the expansion guard saw: an operator (and test 0645) can check it. */
    TRIB_LOG(TRIB_LOG_INFO, COLL_SERVER_FACILITY,
             "%s-%d: broker %" PRId32 " caught up: offset %" PRId64 " (high watermark %" PRId64
             ", epoch %" PRId32 " from offset %" PRId64 ")",
             p->topic->name, (int)p->index, f->id, f->leo, coll_log_high_watermark(p->log),
             L->epoch, L->epoch_start);
    propose(prt, isr, p->nisr + 1, false);
    free(isr);
}

static void maybe_shrink(coll_prt_t *prt, uint64_t now)
{
    coll_leader_t *L = prt->leader;
    coll_partition_t *p = prt->p;
    if (L->token || p->nisr <= 1) {
        return;
    }
    int64_t leo = coll_log_end_offset(p->log);
    int32_t self = self_id(prt);
    int32_t *isr = malloc((size_t)p->nisr * sizeof(*isr));
    if (!isr) {
        return;
    }
    int32_t n = 0;
    for (int32_t i = 0; i < p->nisr; i++) {
        int32_t id = p->isr[i];
        const coll_follower_t *f = id == self ? NULL : coll_follower_find(L->f, L->nf, id);
        if (id != self && (!f || coll_follower_out_of_sync(f, leo, now, lag_ms(prt)))) {
            continue;
        }
        isr[n++] = id;
    }
    if (n < p->nisr) {
        propose(prt, isr, n, true);
    }
    free(isr);
}

/* ---- roles --------------------------------------------------------------------------------- */

/* Follower entries for exactly the other replicas (new ones reset, known ones kept). */
static void sync_followers(coll_prt_t *prt, bool reset_all, uint64_t now)
{
    coll_leader_t *L = prt->leader;
    coll_partition_t *p = prt->p;
    int32_t self = self_id(prt);
    int64_t leo = coll_log_end_offset(p->log);
    coll_follower_t *nf = calloc((size_t)p->nreplicas + 1, sizeof(*nf));
    if (!nf) {
        return;
    }
    int32_t k = 0;
    for (int32_t i = 0; i < p->nreplicas; i++) {
        int32_t id = p->replicas[i];
        if (id == self || coll_follower_find(nf, k, id)) {
            continue;
        }
        coll_follower_t *old = reset_all ? NULL : coll_follower_find(L->f, L->nf, id);
        if (old) {
            nf[k++] = *old;
        } else {
            coll_follower_reset(&nf[k++], id, leo, now, coll_partition_in_isr(p, id));
        }
    }
    free(L->f);
    L->f = nf;
    L->nf = k;
}

static void leader_free(coll_prt_t *prt)
{
    coll_leader_t *L = prt->leader;
    if (!L) {
        return;
    }
    if (L->token) {
        L->token->prt = NULL; /* freed by its callback */
    }
    if (L->dw) {
        if (L->dw->busy) {
            L->dw->prt = NULL; /* freed by its callback */
        } else {
            free(L->dw);
        }
    }
    free(L->maximal);
    free(L->f);
    free(L);
    prt->leader = NULL;
}

void coll_replica_become_leader(coll_prt_t *prt)
{
    coll_partition_t *p = prt->p;
    if (!p->log) {
        return;
    }
    coll_log_t *log = p->log;
    uint64_t now = uv_now(prt->srv->loop);
    if (!prt->leader) {
        prt->leader = calloc(1, sizeof(*prt->leader));
        if (!prt->leader) {
            TRIB_LOG(TRIB_LOG_ERROR, COLL_SERVER_FACILITY, "%s-%d: out of memory", p->topic->name,
                     (int)p->index);
            return;
        }
    }
    coll_leader_t *L = prt->leader;
    if (L->epoch_since_ms == 0 || L->epoch != p->leader_epoch) {
        L->epoch_since_ms = now ? now : 1;
    }
    int64_t leo = coll_log_end_offset(log);
    /* The new epoch starts at the log end, in the cache before any append of it. */
    int rc = coll_log_assign_epoch(log, p->leader_epoch, leo);
    if (rc != 0) {
        TRIB_LOG(TRIB_LOG_ERROR, COLL_SERVER_FACILITY, "%s-%d: leader epoch %" PRId32 ": %s",
                 p->topic->name, (int)p->index, p->leader_epoch, trib_strerror(rc));
    }
    L->epoch = p->leader_epoch;
    L->epoch_start = leo;
    L->next_shrink_ms = now + (uint64_t)lag_ms(prt) / 2;
    sync_followers(prt, true, now);
    char isr[128];
    isr_text(isr, sizeof(isr), p->isr, p->nisr);
    TRIB_LOG(TRIB_LOG_INFO, COLL_SERVER_FACILITY,
             "%s-%d: leader at epoch %" PRId32 " from offset %" PRId64 " (high watermark %" PRId64
             ", ISR [%s])",
             p->topic->name, (int)p->index, p->leader_epoch, leo, coll_log_high_watermark(log),
             isr);
    update_hw(prt);
    ensure_durable_wait(prt);
}

uint64_t coll_replica_leading_ms(const coll_prt_t *prt)
{
    if (!prt->leader || prt->leader->epoch_since_ms == 0) {
        return UINT64_MAX;
    }
    return uv_now(prt->srv->loop) - prt->leader->epoch_since_ms;
}

void coll_replica_become_follower(coll_prt_t *prt)
{
    bool was = prt->leader != NULL;
    leader_free(prt);
    cancel_all(prt, TRIB_KAFKA_NOT_LEADER_OR_FOLLOWER);
    /* Parked fetches answer now: NOT_LEADER_OR_FOLLOWER for this partition. */
    coll_purgatory_wake(&prt->srv->purgatory, prt);
    if (was) {
        TRIB_LOG(TRIB_LOG_INFO, COLL_SERVER_FACILITY,
                 "%s-%d: no longer leader (leader %" PRId32 ", epoch %" PRId32 ")",
                 prt->p->topic->name, (int)prt->p->index, prt->p->leader, prt->p->leader_epoch);
    }
}

void coll_replica_isr_changed(coll_prt_t *prt)
{
    if (!prt->leader) {
        coll_replica_become_leader(prt);
        return;
    }
    sync_followers(prt, false, uv_now(prt->srv->loop));
    update_hw(prt);
}

void coll_replica_detach(coll_prt_t *prt)
{
    leader_free(prt);
    cancel_all(prt, TRIB_KAFKA_NOT_LEADER_OR_FOLLOWER);
}

/* ---- the data path ------------------------------------------------------------------------- */

int16_t coll_replica_follower_fetch(coll_prt_t *prt, int32_t replica, int64_t fetch_offset,
                                    bool *hw_moved_out)
{
    *hw_moved_out = false;
    coll_leader_t *L = prt->leader;
    coll_partition_t *p = prt->p;
    if (!L || replica == self_id(prt)) {
        return TRIB_KAFKA_NOT_LEADER_OR_FOLLOWER;
    }
    coll_follower_t *f = coll_follower_find(L->f, L->nf, replica);
    if (!f && coll_partition_is_replica(p, replica)) {
        /* A replica added to the assignment (a reassignment) since the followers were listed. */
        sync_followers(prt, false, uv_now(prt->srv->loop));
        f = coll_follower_find(L->f, L->nf, replica);
    }
    if (!f) {
        return TRIB_KAFKA_NOT_LEADER_OR_FOLLOWER; /* not in the assignment */
    }
    coll_log_t *log = p->log;
    int64_t leo = coll_log_end_offset(log);
    if (fetch_offset < coll_log_start_offset(log) || fetch_offset > leo) {
        return TRIB_KAFKA_OFFSET_OUT_OF_RANGE;
    }
    coll_follower_fetched(f, fetch_offset, leo, uv_now(prt->srv->loop));
    maybe_expand(prt, f);
    *hw_moved_out = update_hw(prt);
    return TRIB_KAFKA_NONE;
}

void coll_replica_leader_appended(coll_prt_t *prt, size_t bytes)
{
    coll_purgatory_notify_replicas(&prt->srv->purgatory, prt, bytes);
    update_hw(prt);
    ensure_durable_wait(prt);
}

void coll_replica_tick(coll_server_t *s, coll_partition_t *p, uint64_t now)
{
    coll_prt_t *prt = coll_prt(p);
    if (!prt || !prt->leader) {
        return;
    }
    if (prt->hwaiters && !coll_cluster_may_lead(s->cluster, p)) {
        /*
         * The ZooKeeper session is gone: a new leader may be elected before
         * these writes are committed, and the new leader may not have them.
         * Kafka answers a parked write NOT_LEADER_OR_FOLLOWER once the
         * partition is no longer led here; answered now rather than with
         * REQUEST_TIMED_OUT at TimeoutMs, which a client takes for "possibly
         * written" (librdkafka before 2.3 then counts the batch as its
         * acknowledged sequence and makes the new leader's
         * OUT_OF_ORDER_SEQUENCE_NUMBER for the next one fatal). An
         * idempotent retry of a batch the new leader does have is answered
         * there with its original offsets.
         */
        cancel_all(prt, TRIB_KAFKA_NOT_LEADER_OR_FOLLOWER);
    }
    coll_leader_t *L = prt->leader;
    if (now >= L->next_shrink_ms) {
        L->next_shrink_ms = now + (uint64_t)lag_ms(prt) / 2;
        maybe_shrink(prt, now);
    }
}

/* ---- metrics ------------------------------------------------------------------------------- */

typedef struct mstate {
    coll_server_t *s;
    trib_buf_t *b;
    int pass;
    uint64_t under, led;
    int64_t max_lag;
} mstate_t;

static void metrics_one(coll_server_t *s, coll_partition_t *p, mstate_t *m)
{
    coll_prt_t *prt = coll_prt(p);
    if (!prt || !prt->leader) {
        return;
    }
    coll_leader_t *L = prt->leader;
    m->led++;
    if (p->nisr < p->nreplicas) {
        m->under++;
    }
    int64_t leo = coll_log_end_offset(p->log);
    for (int32_t i = 0; i < L->nf; i++) {
        int64_t lag = L->f[i].leo < 0 ? leo : leo - L->f[i].leo;
        if (lag > m->max_lag) {
            m->max_lag = lag;
        }
    }
    (void)s;
}

void coll_replica_metrics(coll_server_t *s, trib_buf_t *b)
{
    mstate_t m = {s, b, 0, 0, 0, 0};
    size_t n = coll_cluster_topic_count(s->cluster);
    coll_topic_t **topics = malloc((n ? n : 1) * sizeof(*topics));
    if (topics) {
        coll_cluster_topics(s->cluster, topics);
        for (size_t i = 0; i < n; i++) {
            for (int32_t k = 0; k < topics[i]->npartitions; k++) {
                metrics_one(s, topics[i]->partitions[k], &m);
            }
        }
        free(topics);
    }
    trib_prom_header(b, "tributary_leader_partitions", "gauge",
                     "Replicated partitions this node leads.");
    trib_prom_sample_u64(b, "tributary_leader_partitions", NULL, m.led);
    trib_prom_header(b, "tributary_under_replicated_partitions", "gauge",
                     "Partitions led here whose ISR is smaller than their replica set.");
    trib_prom_sample_u64(b, "tributary_under_replicated_partitions", NULL, m.under);
    trib_prom_header(b, "tributary_isr_shrinks_total", "counter",
                     "ISR shrinks written by this node as leader.");
    trib_prom_sample_u64(b, "tributary_isr_shrinks_total", NULL, s->metrics.isr_shrinks);
    trib_prom_header(b, "tributary_isr_expands_total", "counter",
                     "ISR expansions written by this node as leader.");
    trib_prom_sample_u64(b, "tributary_isr_expands_total", NULL, s->metrics.isr_expands);
    trib_prom_header(b, "tributary_reassignment_throttled_bytes_total", "counter",
                     "Bytes this leader sent, under cluster.leader.replication.throttled.rate, "
                     "to replicas a reassignment is adding.");
    trib_prom_sample_u64(b, "tributary_reassignment_throttled_bytes_total", NULL,
                         s->throttle.throttled_bytes);
    trib_prom_header(b, "tributary_replica_max_lag", "gauge",
                     "Largest lag in offsets of a follower behind this node's log end, over the "
                     "partitions it leads.");
    trib_prom_sample_u64(b, "tributary_replica_max_lag", NULL, (uint64_t)m.max_lag);
}
