/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The replica fetchers (replica/replica.h): the follower side of Kafka's
 * ISR replication, as Kafka 2.8's ReplicaFetcherThread does it, on the
 * collector's loop instead of a thread per leader.
 *
 * One source (fsrc_t) per leader this node follows partitions of: one
 * non-blocking TCP connection, ApiVersions once per connection, then one
 * request at a time covering every partition followed from that leader:
 *
 *   truncating partitions  OffsetForLeaderEpoch (key 23, v3+: ReplicaId)
 *                          with the local log's latest epoch; the answer
 *                          goes through replica/truncate.h (KIP-101/279),
 *                          possibly several rounds
 *   out of range           ListOffsets EARLIEST (key 2) with ReplicaId
 *   fetching partitions    Fetch (v9-12, ReplicaId = this node,
 *                          CurrentLeaderEpoch, FetchOffset = log end,
 *                          MaxWaitMs 500, MinBytes 1)
 *
 * A partition's states:
 *
 *   follow() -> TRUNCATING --(answer: cut, done)--> FETCHING
 *                   ^  |  (another round: KIP-279)        |
 *                   |  +--------------<-------------------+ OFFSET_OUT_OF_RANGE:
 *                   +---------------- OUT_OF_RANGE <------+ ListOffsets first
 *
 * An empty log has no epoch and needs no truncation: it starts FETCHING.
 * Errors (a fenced or unknown epoch, NOT_LEADER_OR_FOLLOWER, bad data,
 * storage errors) delay only that partition (100 ms doubling to 1 s) and
 * it tries again; the control plane's next state calls follow() again
 * with the new leader or epoch, which restarts it at TRUNCATING. A
 * connection that fails or times out (30 s) is closed and reconnected
 * after the same backoff, to the leader's address as the cluster view
 * then tells it; every partition keeps its state.
 *
 * Appends: the fetched batches are checked (CRC32C, layout), appended as
 * they came (COLL_APPEND_FOLLOWER: their offsets and leader epochs are
 * kept, the storage updates the epoch cache), and the partition's
 * producer state is updated from their headers, so a new leader keeps
 * deduplicating idempotent producers. The high watermark becomes
 * min(leader's, log end); the log start follows the leader's
 * (DeleteRecords) up to the high watermark.
 *
 * Durability (storage.fsync: ack): the next Fetch, whose FetchOffset tells
 * the leader how far this replica holds the log, is sent only once every
 * append of the previous response is on disk (coll_log_wait_durable), so
 * the leader's high watermark never counts an offset a follower holds only
 * in its page cache (design §3, KIP-966).
 *
 * Lifetimes: a followed partition (fpart_t) is referenced by its source's
 * list, by the request in flight and by a pending durability wait; unfollow
 * drops it from the list and it is freed when the last reference goes.
 * Its partition is touched only while it is followed. The server is reached
 * only through the coll_fetch_host_t it gave (loop, cluster, settings, and
 * the calls that account an append and a truncation).
 */
#include "replica/replica.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kafka/gen/kafka_messages.h"
#include "cluster/cluster.h"
#include "replica/truncate.h"
#include "storage/storage.h"
#include "tributary/arena.h"
#include "tributary/buf.h"
#include "tributary/kafka_error.h"
#include "tributary/kclient.h"
#include "tributary/log.h"
#include "tributary/prom.h"
#include "tributary/record.h"

#define FACILITY "replica"

#define API_FETCH 1
#define API_LIST_OFFSETS 2
#define API_API_VERSIONS 18
#define API_OFFSET_FOR_LEADER_EPOCH 23

#define FETCH_MAX_WAIT_MS 500
#define FETCH_RESPONSE_MAX_BYTES (10 << 20) /* replica.fetch.response.max.bytes */
#define FETCH_PARTITION_MAX_BYTES (1 << 20) /* replica.fetch.max.bytes */
#define REQUEST_TIMEOUT_MS 30000            /* replica.socket.timeout.ms */
#define MAX_RESPONSE_FRAME ((size_t)256 << 20)
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 1000
#define MAX_TRUNCATION_ROUNDS 64
#define CLIENT_ID "tributary-replica-fetcher"

typedef struct fsrc fsrc_t;
typedef struct fpart fpart_t;

typedef enum fstate {
    FP_TRUNCATING,
    FP_OUT_OF_RANGE,
    FP_FETCHING,
} fstate_t;

struct fpart {
    fpart_t *prev, *next; /* the source's list */
    fpart_t *all_next;    /* every followed partition (metrics) */
    fsrc_t *src;
    coll_partition_t *p; /* NULL once unfollowed */
    int refs;            /* list + request in flight + durability wait */
    fstate_t state;
    int32_t leader, epoch; /* followed at */
    uint64_t gen;          /* bumped on every restart: answers to older requests are dropped */
    uint64_t delay_until;  /* uv_now(); 0: none */
    uint32_t backoff_ms;
    int rounds; /* truncation rounds in this restart */
    coll_durable_req_t dreq;
    fsrc_t *dsrc; /* the source whose durable_waits counts dreq; NULL: no wait */
    coll_fetchers_t *f;
    /* metrics */
    int64_t lag;
    uint64_t fetch_errors, truncations;
};

typedef enum sstate {
    SRC_IDLE,       /* not connected */
    SRC_RESOLVING,  /* getaddrinfo */
    SRC_CONNECTING, /* uv_tcp_connect */
    SRC_VERSIONS,   /* ApiVersions in flight */
    SRC_READY,
    SRC_CLOSING, /* uv_close on the socket; back to IDLE in its callback */
} sstate_t;

typedef enum rkind {
    REQ_NONE,
    REQ_VERSIONS,
    REQ_EPOCHS,
    REQ_OFFSETS,
    REQ_FETCH,
} rkind_t;

struct fsrc {
    fsrc_t *next;
    coll_fetchers_t *f;
    int32_t leader;
    sstate_t state;
    fpart_t *parts; /* the partitions followed from this leader */
    size_t nparts;
    char host[256];
    int port;

    uv_tcp_t tcp;
    uv_connect_t creq;
    uv_getaddrinfo_t gai;
    uv_write_t wreq;
    uv_timer_t timer;
    bool timer_open, gai_busy;
    int handles; /* open handles (timer, tcp) */
    uint64_t delay_until;
    uint32_t backoff_ms;

    /* the request in flight */
    rkind_t kind;
    int16_t version;
    int32_t corr;
    uint64_t deadline;
    trib_buf_t out;
    fpart_t **req;     /* its partitions (referenced) */
    uint64_t *req_gen; /* their generations when sent */
    int64_t *req_off;  /* their fetch offsets */
    size_t nreq, req_cap;
    bool writing;

    /* the response being read */
    uint8_t szb[4];
    size_t szhave;
    uint8_t *frame;
    size_t frame_len, frame_have;

    int16_t v_fetch, v_epoch, v_offsets; /* negotiated; -1: unsupported */
    int durable_waits;                   /* appends of the last response not yet durable */
    bool freeing;                        /* closing for good (no partitions, or shutdown) */
};

struct coll_fetchers {
    coll_fetch_host_t host;
    int32_t self;
    fsrc_t *srcs;
    fpart_t *all; /* singly linked, includes unfollowed ones until freed */
    bool closing;
    int32_t next_corr;
    trib_log_ratelimit_t rl;      /* partition errors */
    trib_log_ratelimit_t rl_conn; /* connection errors */
    /* metrics */
    uint64_t fetch_errors, truncations, connects, connect_errors, bad_batches;
};

static void src_pump(fsrc_t *src);
static void src_drop_connection(fsrc_t *src, const char *why, int rc);
static void src_schedule(fsrc_t *src);
static void src_maybe_free(fsrc_t *src);
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf);

/* ---- partitions -------------------------------------------------------------------------- */

static const char *fp_topic(const fpart_t *fp)
{
    return fp->p ? fp->p->topic->name : "?";
}

static int fp_index(const fpart_t *fp)
{
    return fp->p ? (int)fp->p->index : -1;
}

static void fp_unref(coll_fetchers_t *f, fpart_t *fp)
{
    if (--fp->refs > 0) {
        return;
    }
    for (fpart_t **pp = &f->all; *pp; pp = &(*pp)->all_next) {
        if (*pp == fp) {
            *pp = fp->all_next;
            break;
        }
    }
    free(fp);
}

static fpart_t *fp_find(coll_fetchers_t *f, const coll_partition_t *p)
{
    for (fpart_t *fp = f->all; fp; fp = fp->all_next) {
        if (fp->p == p) {
            return fp;
        }
    }
    return NULL;
}

static void src_unlink(fsrc_t *src, fpart_t *fp)
{
    if (fp->prev) {
        fp->prev->next = fp->next;
    } else {
        src->parts = fp->next;
    }
    if (fp->next) {
        fp->next->prev = fp->prev;
    }
    fp->prev = fp->next = NULL;
    fp->src = NULL;
    src->nparts--;
}

static void src_link(fsrc_t *src, fpart_t *fp)
{
    fp->prev = NULL;
    fp->next = src->parts;
    if (src->parts) {
        src->parts->prev = fp;
    }
    src->parts = fp;
    fp->src = src;
    src->nparts++;
}

/* Starts over at TRUNCATING (or FETCHING for a log without epochs). */
static void fp_restart(fpart_t *fp)
{
    fp->gen++;
    fp->rounds = 0;
    fp->delay_until = 0;
    fp->backoff_ms = 0;
    fp->state = coll_log_latest_epoch(fp->p->log) >= 0 ? FP_TRUNCATING : FP_FETCHING;
}

/* The partition failed this round: it waits, longer each time, then retries. */
static void fp_backoff(fpart_t *fp, uint64_t now)
{
    fp->backoff_ms = fp->backoff_ms ? fp->backoff_ms * 2 : BACKOFF_MIN_MS;
    if (fp->backoff_ms > BACKOFF_MAX_MS) {
        fp->backoff_ms = BACKOFF_MAX_MS;
    }
    fp->delay_until = now + fp->backoff_ms;
}

static void fp_error(coll_fetchers_t *f, fpart_t *fp, uint64_t now, int16_t code, const char *what)
{
    fp->fetch_errors++;
    f->fetch_errors++;
    fp_backoff(fp, now);
    TRIB_LOG_RL(&f->rl, TRIB_LOG_INFO, FACILITY,
                "%s-%d: %s from leader %d (epoch %d): %s; retrying in %u ms", fp_topic(fp),
                fp_index(fp), what, (int)fp->leader, (int)fp->epoch, trib_kafka_err_name(code),
                fp->backoff_ms);
}

/* Cuts the log; counts and logs a truncation that removed something. 0 or an error. */
static int fp_truncate(coll_fetchers_t *f, fpart_t *fp, int64_t offset, const char *why)
{
    coll_log_t *log = fp->p->log;
    int64_t leo = coll_log_end_offset(log);
    int rc = coll_trunc_apply(log, offset);
    if (rc < 0) {
        TRIB_LOG(TRIB_LOG_ERROR, FACILITY, "%s-%d: truncating to %" PRId64 ": %s", fp_topic(fp),
                 fp_index(fp), offset, trib_strerror(rc));
        return rc;
    }
    if (rc > 0) {
        fp->truncations++;
        f->truncations++;
        TRIB_LOG(TRIB_LOG_INFO, FACILITY,
                 "%s-%d: truncated from %" PRId64 " to %" PRId64 " (%s; leader %d, epoch %d)",
                 fp_topic(fp), fp_index(fp), leo, coll_log_end_offset(log), why, (int)fp->leader,
                 (int)fp->epoch);
        f->host.truncated(f->host.ctx, fp->p);
    }
    return 0;
}

/* ---- sources ------------------------------------------------------------------------------ */

static void src_req_release(fsrc_t *src)
{
    for (size_t i = 0; i < src->nreq; i++) {
        fp_unref(src->f, src->req[i]);
    }
    src->nreq = 0;
    src->kind = REQ_NONE;
    free(src->frame);
    src->frame = NULL;
    src->frame_len = src->frame_have = 0;
    src->szhave = 0;
}

static int src_req_add(fsrc_t *src, fpart_t *fp, int64_t off)
{
    if (src->nreq == src->req_cap) {
        size_t cap = src->req_cap ? src->req_cap * 2 : 16;
        fpart_t **r = realloc(src->req, cap * sizeof(*r));
        if (!r) {
            return -ENOMEM;
        }
        src->req = r;
        uint64_t *g = realloc(src->req_gen, cap * sizeof(*g));
        if (!g) {
            return -ENOMEM;
        }
        src->req_gen = g;
        int64_t *o = realloc(src->req_off, cap * sizeof(*o));
        if (!o) {
            return -ENOMEM;
        }
        src->req_off = o;
        src->req_cap = cap;
    }
    fp->refs++;
    src->req[src->nreq] = fp;
    src->req_gen[src->nreq] = fp->gen;
    src->req_off[src->nreq] = off;
    src->nreq++;
    return 0;
}

/* A retired source is freed once its handles are closed and no durability wait counts on it. */
static void src_maybe_free(fsrc_t *src)
{
    if (!src->freeing || src->handles > 0 || src->durable_waits > 0 || src->gai_busy ||
        src->writing) {
        return;
    }
    coll_fetchers_t *f = src->f;
    for (fsrc_t **pp = &f->srcs; *pp; pp = &(*pp)->next) {
        if (*pp == src) {
            *pp = src->next;
            break;
        }
    }
    /* Partitions still listed (a shutdown) keep their list reference until freed. */
    while (src->parts) {
        fpart_t *fp = src->parts;
        src->parts = fp->next;
        fp->prev = fp->next = NULL;
        fp->src = NULL;
    }
    src_req_release(src);
    trib_buf_fini(&src->out);
    free(src->req);
    free(src->req_gen);
    free(src->req_off);
    free(src);
}

static void src_handle_closed(uv_handle_t *h)
{
    fsrc_t *src = h->data;
    src->handles--;
    if ((uv_handle_t *)&src->tcp == h && src->state == SRC_CLOSING) {
        src->state = SRC_IDLE;
        if (!src->freeing) {
            src_schedule(src);
        }
    }
    src_maybe_free(src);
}

static fsrc_t *src_get(coll_fetchers_t *f, int32_t leader)
{
    for (fsrc_t *src = f->srcs; src; src = src->next) {
        if (src->leader == leader && !src->freeing) {
            return src;
        }
    }
    fsrc_t *src = calloc(1, sizeof(*src));
    if (!src) {
        return NULL;
    }
    src->f = f;
    src->leader = leader;
    src->state = SRC_IDLE;
    src->v_fetch = src->v_epoch = src->v_offsets = -1;
    trib_buf_init(&src->out);
    uv_timer_init(f->host.loop, &src->timer);
    src->timer.data = src;
    src->timer_open = true;
    src->handles++;
    src->next = f->srcs;
    f->srcs = src;
    return src;
}

/* A source without partitions goes away (its connection too). */
static void src_retire(fsrc_t *src)
{
    if (src->freeing) {
        return;
    }
    src->freeing = true;
    if (src->gai_busy) {
        uv_cancel((uv_req_t *)&src->gai);
    }
    if (src->state != SRC_IDLE && src->state != SRC_RESOLVING && src->state != SRC_CLOSING) {
        src->state = SRC_CLOSING;
        uv_close((uv_handle_t *)&src->tcp, src_handle_closed);
    }
    src_req_release(src);
    if (src->timer_open) {
        src->timer_open = false;
        uv_close((uv_handle_t *)&src->timer, src_handle_closed);
    }
}

static void src_backoff(fsrc_t *src)
{
    src->backoff_ms = src->backoff_ms ? src->backoff_ms * 2 : BACKOFF_MIN_MS;
    if (src->backoff_ms > BACKOFF_MAX_MS) {
        src->backoff_ms = BACKOFF_MAX_MS;
    }
    src->delay_until = uv_now(src->f->host.loop) + src->backoff_ms;
}

static void src_drop_connection(fsrc_t *src, const char *why, int rc)
{
    coll_fetchers_t *f = src->f;
    TRIB_LOG_RL(&f->rl_conn, TRIB_LOG_INFO, FACILITY, "leader %d (%s:%d): %s%s%s", (int)src->leader,
                src->host, src->port, why, rc ? ": " : "", rc ? trib_strerror(rc) : "");
    src_req_release(src);
    src->v_fetch = src->v_epoch = src->v_offsets = -1;
    src_backoff(src);
    if (src->state == SRC_CONNECTING || src->state == SRC_VERSIONS || src->state == SRC_READY) {
        src->state = SRC_CLOSING;
        uv_close((uv_handle_t *)&src->tcp, src_handle_closed);
    } else if (src->state != SRC_CLOSING) {
        src->state = SRC_IDLE;
        src_schedule(src);
    }
}

static void on_timer(uv_timer_t *t)
{
    fsrc_t *src = t->data;
    if (src->kind != REQ_NONE && uv_now(src->f->host.loop) >= src->deadline) {
        src_drop_connection(src, "no answer within the request timeout", -ETIMEDOUT);
        return;
    }
    src_pump(src);
}

/* Arms the timer for the request deadline or the nearest delay. */
static void src_schedule(fsrc_t *src)
{
    if (!src->timer_open) {
        return;
    }
    uint64_t now = uv_now(src->f->host.loop);
    uint64_t at = UINT64_MAX;
    if (src->kind != REQ_NONE) {
        at = src->deadline;
    } else if (src->state == SRC_IDLE) {
        at = src->delay_until > now ? src->delay_until : now;
    } else if (src->state == SRC_READY) {
        for (fpart_t *fp = src->parts; fp; fp = fp->next) {
            if (fp->delay_until > now && fp->delay_until < at) {
                at = fp->delay_until;
            }
        }
    }
    if (at == UINT64_MAX) {
        uv_timer_stop(&src->timer);
        return;
    }
    uv_timer_start(&src->timer, on_timer, at > now ? at - now : 0, 0);
}

/* ---- sending ------------------------------------------------------------------------------ */

static void on_write(uv_write_t *w, int status)
{
    fsrc_t *src = w->data;
    src->writing = false;
    if (src->freeing) {
        src_maybe_free(src);
        return;
    }
    if (status == UV_ECANCELED || src->state == SRC_CLOSING) {
        return;
    }
    if (status < 0) {
        src_drop_connection(src, "sending a request", status);
        return;
    }
    /* The answer may have come before this callback (it held the next request back). */
    src_pump(src);
}

static int src_send(fsrc_t *src, rkind_t kind, int16_t api_key, int16_t version, const void *req)
{
    coll_fetchers_t *f = src->f;
    trib_buf_reset(&src->out);
    int32_t corr = f->next_corr++;
    if (f->next_corr < 0) {
        f->next_corr = 0;
    }
    int rc = trib_kclient_frame(&src->out, api_key, version, corr, CLIENT_ID, req);
    if (rc < 0) {
        return rc;
    }
    int cnt = trib_buf_iovcnt(&src->out);
    uv_buf_t stackv[32];
    struct iovec iov[32];
    if (cnt > 32) {
        /* A request is small; a fetch of thousands of partitions is flattened first. */
        size_t len;
        const uint8_t *p = trib_buf_flatten(&src->out, &len);
        if (!p) {
            return -ENOMEM;
        }
        cnt = trib_buf_iovcnt(&src->out);
        if (cnt > 32) {
            return -ENOMEM;
        }
    }
    cnt = trib_buf_iovec(&src->out, iov, cnt);
    for (int i = 0; i < cnt; i++) {
        stackv[i] = uv_buf_init(iov[i].iov_base, (unsigned)iov[i].iov_len);
    }
    src->wreq.data = src;
    rc = uv_write(&src->wreq, (uv_stream_t *)&src->tcp, stackv, (unsigned)cnt, on_write);
    if (rc < 0) {
        return rc;
    }
    src->writing = true;
    TRIB_LOG(TRIB_LOG_DEBUG, FACILITY, "leader %d: sending %s v%d for %zu partitions",
             (int)src->leader, trib_kafka_api_find(api_key)->name, version, src->nreq);
    src->kind = kind;
    src->version = version;
    src->corr = corr;
    src->deadline = uv_now(f->host.loop) + REQUEST_TIMEOUT_MS +
                    (kind == REQ_FETCH ? (uint64_t)FETCH_MAX_WAIT_MS : 0);
    return 0;
}

static int send_versions(fsrc_t *src)
{
    ApiVersionsRequest req;
    ApiVersionsRequest_init(&req);
    req.ClientSoftwareName = trib_kstr("tributary-replica");
    req.ClientSoftwareVersion = trib_kstr("1");
    return src_send(src, REQ_VERSIONS, API_API_VERSIONS, 3, &req);
}

static trib_kstr_t tname(const coll_topic_t *t)
{
    return (trib_kstr_t){t->name, (int32_t)t->name_len};
}

/* Groups the request's partitions by topic (consecutive runs by topic pointer). */
typedef struct topic_run {
    coll_topic_t *t;
    size_t first, n;
} topic_run_t;

static int cmp_req(const void *a, const void *b)
{
    const fpart_t *x = *(fpart_t *const *)a, *y = *(fpart_t *const *)b;
    int c = strcmp(x->p->topic->name, y->p->topic->name);
    if (c) {
        return c;
    }
    return x->p->index < y->p->index ? -1 : x->p->index > y->p->index;
}

/* The request's topics: runs over src->req sorted by (topic, partition). */
static size_t topic_runs(fsrc_t *src, topic_run_t *runs)
{
    size_t nt = 0;
    for (size_t i = 0; i < src->nreq; i++) {
        coll_topic_t *t = src->req[i]->p->topic;
        if (nt == 0 || runs[nt - 1].t != t) {
            runs[nt].t = t;
            runs[nt].first = i;
            runs[nt].n = 0;
            nt++;
        }
        runs[nt - 1].n++;
    }
    return nt;
}

/* Collects the ready partitions in `state` into the request; returns how many. */
static size_t collect(fsrc_t *src, fstate_t state, uint64_t now)
{
    for (fpart_t *fp = src->parts; fp; fp = fp->next) {
        if (fp->state != state || fp->delay_until > now || fp->dsrc) {
            continue; /* (a partition still waiting for its last append to be durable waits) */
        }
        if (src_req_add(src, fp, coll_log_end_offset(fp->p->log)) < 0) {
            break;
        }
    }
    if (src->nreq > 1) {
        /* The offsets follow their partitions: sort a permutation. */
        size_t n = src->nreq;
        fpart_t **sorted = malloc(n * sizeof(*sorted));
        if (sorted) {
            memcpy(sorted, src->req, n * sizeof(*sorted));
            qsort(sorted, n, sizeof(*sorted), cmp_req);
            for (size_t i = 0; i < n; i++) {
                src->req[i] = sorted[i];
                src->req_gen[i] = sorted[i]->gen;
                src->req_off[i] = coll_log_end_offset(sorted[i]->p->log);
            }
            free(sorted);
        }
    }
    return src->nreq;
}

static int send_epochs(fsrc_t *src)
{
    trib_arena_t a;
    trib_arena_init(&a);
    topic_run_t *runs = trib_arena_calloc(&a, src->nreq, sizeof(*runs));
    int rc = -ENOMEM;
    if (runs) {
        size_t nt = topic_runs(src, runs);
        OffsetForLeaderEpochRequest req;
        OffsetForLeaderEpochRequest_init(&req);
        req.ReplicaId = src->f->self;
        req.Topics.items = trib_arena_calloc(&a, nt, sizeof(*req.Topics.items));
        req.Topics.count = (int32_t)nt;
        if (req.Topics.items) {
            rc = 0;
            for (size_t i = 0; i < nt && rc == 0; i++) {
                OffsetForLeaderEpochRequest_OffsetForLeaderTopic *t = &req.Topics.items[i];
                OffsetForLeaderEpochRequest_OffsetForLeaderTopic_init(t);
                t->Topic = tname(runs[i].t);
                t->Partitions.items =
                    trib_arena_calloc(&a, runs[i].n, sizeof(*t->Partitions.items));
                t->Partitions.count = (int32_t)runs[i].n;
                if (!t->Partitions.items) {
                    rc = -ENOMEM;
                    break;
                }
                for (size_t k = 0; k < runs[i].n; k++) {
                    fpart_t *fp = src->req[runs[i].first + k];
                    OffsetForLeaderEpochRequest_OffsetForLeaderPartition *pp =
                        &t->Partitions.items[k];
                    OffsetForLeaderEpochRequest_OffsetForLeaderPartition_init(pp);
                    pp->Partition = fp->p->index;
                    pp->CurrentLeaderEpoch = fp->epoch;
                    pp->LeaderEpoch = coll_log_latest_epoch(fp->p->log);
                }
            }
            if (rc == 0) {
                rc = src_send(src, REQ_EPOCHS, API_OFFSET_FOR_LEADER_EPOCH, src->v_epoch, &req);
            }
        }
    }
    trib_arena_fini(&a);
    return rc;
}

static int send_offsets(fsrc_t *src)
{
    trib_arena_t a;
    trib_arena_init(&a);
    topic_run_t *runs = trib_arena_calloc(&a, src->nreq, sizeof(*runs));
    int rc = -ENOMEM;
    if (runs) {
        size_t nt = topic_runs(src, runs);
        ListOffsetsRequest req;
        ListOffsetsRequest_init(&req);
        req.ReplicaId = src->f->self;
        req.Topics.items = trib_arena_calloc(&a, nt, sizeof(*req.Topics.items));
        req.Topics.count = (int32_t)nt;
        if (req.Topics.items) {
            rc = 0;
            for (size_t i = 0; i < nt && rc == 0; i++) {
                ListOffsetsRequest_ListOffsetsTopic *t = &req.Topics.items[i];
                ListOffsetsRequest_ListOffsetsTopic_init(t);
                t->Name = tname(runs[i].t);
                t->Partitions.items =
                    trib_arena_calloc(&a, runs[i].n, sizeof(*t->Partitions.items));
                t->Partitions.count = (int32_t)runs[i].n;
                if (!t->Partitions.items) {
                    rc = -ENOMEM;
                    break;
                }
                for (size_t k = 0; k < runs[i].n; k++) {
                    fpart_t *fp = src->req[runs[i].first + k];
                    ListOffsetsRequest_ListOffsetsPartition *pp = &t->Partitions.items[k];
                    ListOffsetsRequest_ListOffsetsPartition_init(pp);
                    pp->PartitionIndex = fp->p->index;
                    pp->CurrentLeaderEpoch = fp->epoch;
                    pp->Timestamp = -2; /* EARLIEST */
                }
            }
            if (rc == 0) {
                rc = src_send(src, REQ_OFFSETS, API_LIST_OFFSETS, src->v_offsets, &req);
            }
        }
    }
    trib_arena_fini(&a);
    return rc;
}

static int send_fetch(fsrc_t *src)
{
    trib_arena_t a;
    trib_arena_init(&a);
    topic_run_t *runs = trib_arena_calloc(&a, src->nreq, sizeof(*runs));
    int rc = -ENOMEM;
    if (runs) {
        size_t nt = topic_runs(src, runs);
        FetchRequest req;
        FetchRequest_init(&req);
        req.ReplicaId = src->f->self;
        req.MaxWaitMs = FETCH_MAX_WAIT_MS;
        req.MinBytes = 1;
        req.MaxBytes = FETCH_RESPONSE_MAX_BYTES;
        req.IsolationLevel = 0;
        req.SessionId = 0;
        req.SessionEpoch = -1; /* full fetches, no session (KIP-227) */
        req.Topics.items = trib_arena_calloc(&a, nt, sizeof(*req.Topics.items));
        req.Topics.count = (int32_t)nt;
        req.ForgottenTopicsData.count = 0;
        if (req.Topics.items) {
            rc = 0;
            for (size_t i = 0; i < nt && rc == 0; i++) {
                FetchRequest_FetchTopic *t = &req.Topics.items[i];
                FetchRequest_FetchTopic_init(t);
                t->Topic = tname(runs[i].t);
                t->Partitions.items =
                    trib_arena_calloc(&a, runs[i].n, sizeof(*t->Partitions.items));
                t->Partitions.count = (int32_t)runs[i].n;
                if (!t->Partitions.items) {
                    rc = -ENOMEM;
                    break;
                }
                for (size_t k = 0; k < runs[i].n; k++) {
                    size_t j = runs[i].first + k;
                    fpart_t *fp = src->req[j];
                    FetchRequest_FetchPartition *pp = &t->Partitions.items[k];
                    FetchRequest_FetchPartition_init(pp);
                    pp->Partition = fp->p->index;
                    pp->CurrentLeaderEpoch = fp->epoch;
                    pp->FetchOffset = src->req_off[j];
                    pp->LastFetchedEpoch = -1; /* truncation is by OffsetForLeaderEpoch */
                    pp->LogStartOffset = coll_log_start_offset(fp->p->log);
                    pp->PartitionMaxBytes = src->f->host.max_bytes > 0 ? src->f->host.max_bytes
                                                                       : FETCH_PARTITION_MAX_BYTES;
                }
            }
            if (rc == 0) {
                rc = src_send(src, REQ_FETCH, API_FETCH, src->v_fetch, &req);
            }
        }
    }
    trib_arena_fini(&a);
    return rc;
}

/* ---- connecting ---------------------------------------------------------------------------- */

static void on_connect(uv_connect_t *c, int status)
{
    fsrc_t *src = c->data;
    if (status == UV_ECANCELED || src->state != SRC_CONNECTING) {
        return;
    }
    if (status < 0) {
        src->f->connect_errors++;
        src_drop_connection(src, "cannot connect", status);
        return;
    }
    src->f->connects++;
    uv_tcp_nodelay(&src->tcp, 1);
    int rc = uv_read_start((uv_stream_t *)&src->tcp, on_alloc, on_read);
    if (rc < 0) {
        src_drop_connection(src, "reading", rc);
        return;
    }
    src->state = SRC_VERSIONS;
    src_pump(src);
}

static void start_connect(fsrc_t *src, const struct sockaddr *sa)
{
    coll_fetchers_t *f = src->f;
    uv_tcp_init(f->host.loop, &src->tcp);
    src->tcp.data = src;
    src->handles++;
    src->state = SRC_CONNECTING;
    src->creq.data = src;
    int rc = uv_tcp_connect(&src->creq, &src->tcp, sa, on_connect);
    if (rc < 0) {
        f->connect_errors++;
        src_drop_connection(src, "cannot connect", rc);
    }
}

static void on_resolved(uv_getaddrinfo_t *g, int status, struct addrinfo *res)
{
    fsrc_t *src = g->data;
    src->gai_busy = false;
    if (src->freeing || status == UV_ECANCELED) {
        uv_freeaddrinfo(res);
        if (src->freeing) {
            src_maybe_free(src);
        } else {
            src->state = SRC_IDLE;
        }
        return;
    }
    src->state = SRC_IDLE;
    if (status < 0 || !res) {
        uv_freeaddrinfo(res);
        src->f->connect_errors++;
        src_drop_connection(src, "cannot resolve the leader's address", status);
        return;
    }
    struct sockaddr_storage ss;
    memcpy(&ss, res->ai_addr, res->ai_addrlen);
    uv_freeaddrinfo(res);
    start_connect(src, (struct sockaddr *)&ss);
}

/* Looks the leader up in the cluster view (again on every attempt) and connects. */
static void src_connect(fsrc_t *src)
{
    coll_fetchers_t *f = src->f;
    coll_broker_info_t b;
    if (coll_cluster_broker(f->host.cluster, src->leader, &b) != 0 || !b.host || b.port <= 0) {
        snprintf(src->host, sizeof(src->host), "?");
        src->port = 0;
        f->connect_errors++;
        src_drop_connection(src, "the leader is not registered", 0);
        return;
    }
    snprintf(src->host, sizeof(src->host), "%s", b.host);
    src->port = b.port;
    struct sockaddr_storage ss;
    if (uv_ip4_addr(src->host, src->port, (struct sockaddr_in *)&ss) == 0 ||
        uv_ip6_addr(src->host, src->port, (struct sockaddr_in6 *)&ss) == 0) {
        start_connect(src, (struct sockaddr *)&ss);
        return;
    }
    char port[16];
    snprintf(port, sizeof(port), "%d", src->port);
    struct addrinfo hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    src->gai.data = src;
    src->state = SRC_RESOLVING;
    int rc = uv_getaddrinfo(f->host.loop, &src->gai, on_resolved, src->host, port, &hints);
    if (rc < 0) {
        src->state = SRC_IDLE;
        f->connect_errors++;
        src_drop_connection(src, "cannot resolve the leader's address", rc);
        return;
    }
    src->gai_busy = true;
}

/* Partitions in a state whose request the leader does not support wait, counted. */
static void unsupported(fsrc_t *src, fstate_t state, uint64_t now)
{
    for (fpart_t *fp = src->parts; fp; fp = fp->next) {
        if (fp->state == state && fp->delay_until <= now) {
            fp_error(src->f, fp, now, TRIB_KAFKA_UNSUPPORTED_VERSION,
                     state == FP_TRUNCATING ? "OffsetForLeaderEpoch" : "ListOffsets");
        }
    }
}

/* ---- the pump: what to send next ------------------------------------------------------------- */

static void src_pump(fsrc_t *src)
{
    coll_fetchers_t *f = src->f;
    if (src->freeing || f->closing) {
        return;
    }
    if (src->nparts == 0) {
        src_retire(src);
        return;
    }
    uint64_t now = uv_now(f->host.loop);
    if (src->state == SRC_IDLE) {
        if (src->delay_until > now) {
            src_schedule(src);
            return;
        }
        src_connect(src);
        return;
    }
    if (src->kind != REQ_NONE || src->writing || src->durable_waits > 0) {
        src_schedule(src);
        return;
    }
    int rc = 0;
    if (src->state == SRC_VERSIONS) {
        rc = send_versions(src);
    } else if (src->state == SRC_READY) {
        if (src->v_epoch < 0) {
            unsupported(src, FP_TRUNCATING, now);
        }
        if (src->v_offsets < 0) {
            unsupported(src, FP_OUT_OF_RANGE, now);
        }
        if (src->v_epoch >= 0 && collect(src, FP_TRUNCATING, now) > 0) {
            rc = send_epochs(src);
        } else if (src->v_offsets >= 0 && collect(src, FP_OUT_OF_RANGE, now) > 0) {
            rc = send_offsets(src);
        } else if (collect(src, FP_FETCHING, now) > 0) {
            rc = send_fetch(src);
        }
    } else {
        return; /* resolving, connecting or closing: their callbacks pump */
    }
    if (rc < 0) {
        src_drop_connection(src, "sending a request", rc);
        return;
    }
    src_schedule(src);
}

/* ---- answers ------------------------------------------------------------------------------------
 */

/* The request's partition for (topic, index), if it is still current; k is a hint. */
static fpart_t *req_match(fsrc_t *src, trib_kstr_t topic, int32_t index, size_t *k, int64_t *off)
{
    for (size_t n = 0; n < src->nreq; n++) {
        size_t i = (*k + n) % src->nreq;
        fpart_t *fp = src->req[i];
        if (!fp->p || fp->src != src) {
            continue;
        }
        const coll_partition_t *p = fp->p;
        if (p->index != index || (size_t)topic.len != p->topic->name_len ||
            memcmp(topic.ptr, p->topic->name, p->topic->name_len) != 0) {
            continue;
        }
        *k = i + 1;
        if (fp->gen != src->req_gen[i]) {
            return NULL; /* restarted meanwhile: the answer is about an older state */
        }
        if (off) {
            *off = src->req_off[i];
        }
        return fp;
    }
    return NULL;
}

static void handle_versions(fsrc_t *src, trib_slice_t *body, trib_arena_t *a)
{
    ApiVersionsResponse resp;
    int rc = ApiVersionsResponse_decode(&resp, body, src->version, a);
    if (rc < 0 || resp.ErrorCode != 0) {
        src_drop_connection(src, "ApiVersions failed", rc < 0 ? rc : TRIB_EUNSUPPORTED);
        return;
    }
    src->v_fetch = src->v_epoch = src->v_offsets = -1;
    static const struct {
        int16_t key, lo, hi;
    } want[] = {{API_FETCH, 9, 12}, {API_OFFSET_FOR_LEADER_EPOCH, 3, 4}, {API_LIST_OFFSETS, 4, 7}};
    int16_t *dst[] = {&src->v_fetch, &src->v_epoch, &src->v_offsets};
    for (int32_t i = 0; i < resp.ApiKeys.count; i++) {
        const ApiVersionsResponse_ApiVersion *v = &resp.ApiKeys.items[i];
        for (size_t w = 0; w < 3; w++) {
            if (v->ApiKey != want[w].key) {
                continue;
            }
            const trib_kafka_api_t *api = trib_kafka_api_find(want[w].key);
            int16_t hi = v->MaxVersion < want[w].hi ? v->MaxVersion : want[w].hi;
            if (api && hi > api->max_version) {
                hi = api->max_version;
            }
            int16_t lo = v->MinVersion > want[w].lo ? v->MinVersion : want[w].lo;
            *dst[w] = hi >= lo ? hi : -1;
        }
    }
    if (src->v_fetch < 0) {
        src_drop_connection(src, "the leader lacks Fetch v9+", TRIB_EUNSUPPORTED);
        return;
    }
    if (src->v_epoch < 0 || src->v_offsets < 0) {
        /* Partitions that need them wait (and say so); the others fetch. */
        TRIB_LOG_RL(&src->f->rl, TRIB_LOG_WARN, FACILITY,
                    "leader %d (%s:%d) lacks %s: partitions that need it cannot follow",
                    (int)src->leader, src->host, src->port,
                    src->v_epoch < 0 ? "OffsetForLeaderEpoch v3+" : "ListOffsets v4+");
    }
    src->state = SRC_READY;
    src->backoff_ms = 0;
    src_req_release(src);
    src_pump(src);
}

static void handle_epochs(fsrc_t *src, trib_slice_t *body, trib_arena_t *a)
{
    coll_fetchers_t *f = src->f;
    OffsetForLeaderEpochResponse resp;
    int rc = OffsetForLeaderEpochResponse_decode(&resp, body, src->version, a);
    if (rc < 0) {
        src_drop_connection(src, "malformed OffsetForLeaderEpoch response", rc);
        return;
    }
    uint64_t now = uv_now(f->host.loop);
    size_t hint = 0;
    for (int32_t i = 0; i < resp.Topics.count; i++) {
        const OffsetForLeaderEpochResponse_OffsetForLeaderTopicResult *t = &resp.Topics.items[i];
        for (int32_t k = 0; k < t->Partitions.count; k++) {
            const OffsetForLeaderEpochResponse_EpochEndOffset *e = &t->Partitions.items[k];
            fpart_t *fp = req_match(src, t->Topic, e->Partition, &hint, NULL);
            if (!fp || fp->state != FP_TRUNCATING) {
                continue;
            }
            if (e->ErrorCode != TRIB_KAFKA_NONE) {
                fp_error(f, fp, now, e->ErrorCode, "OffsetForLeaderEpoch");
                continue;
            }
            int64_t off;
            coll_trunc_action_t act =
                coll_trunc_decide_log(fp->p->log, e->LeaderEpoch, e->EndOffset, &off);
            if (act == COLL_TRUNC_RETRY) {
                fp_error(f, fp, now, TRIB_KAFKA_NONE, "no end offset for our latest epoch");
                continue;
            }
            if (fp_truncate(f, fp, off, "the leader's epoch end") < 0) {
                fp_backoff(fp, now);
                continue;
            }
            if (act == COLL_TRUNC_AGAIN && ++fp->rounds < MAX_TRUNCATION_ROUNDS &&
                coll_log_latest_epoch(fp->p->log) >= 0) {
                continue; /* KIP-279: ask again with the new latest epoch */
            }
            if (act == COLL_TRUNC_AGAIN && fp->rounds >= MAX_TRUNCATION_ROUNDS) {
                fp->rounds = 0;
                fp_backoff(fp, now);
                continue;
            }
            fp->state = FP_FETCHING;
            fp->backoff_ms = 0;
        }
    }
}

static void handle_offsets(fsrc_t *src, trib_slice_t *body, trib_arena_t *a)
{
    coll_fetchers_t *f = src->f;
    ListOffsetsResponse resp;
    int rc = ListOffsetsResponse_decode(&resp, body, src->version, a);
    if (rc < 0) {
        src_drop_connection(src, "malformed ListOffsets response", rc);
        return;
    }
    uint64_t now = uv_now(f->host.loop);
    size_t hint = 0;
    for (int32_t i = 0; i < resp.Topics.count; i++) {
        const ListOffsetsResponse_ListOffsetsTopicResponse *t = &resp.Topics.items[i];
        for (int32_t k = 0; k < t->Partitions.count; k++) {
            const ListOffsetsResponse_ListOffsetsPartitionResponse *e = &t->Partitions.items[k];
            fpart_t *fp = req_match(src, t->Name, e->PartitionIndex, &hint, NULL);
            if (!fp || fp->state != FP_OUT_OF_RANGE) {
                continue;
            }
            if (e->ErrorCode != TRIB_KAFKA_NONE || e->Offset < 0) {
                fp_error(f, fp, now, e->ErrorCode, "ListOffsets");
                continue;
            }
            coll_log_t *log = fp->p->log;
            if (e->Offset > coll_log_end_offset(log)) {
                /*
                 * The leader deleted everything this replica has and more
                 * (retention, DeleteRecords): start over at its log start.
                 */
                TRIB_LOG(TRIB_LOG_INFO, FACILITY,
                         "%s-%d: the leader's log starts at %" PRId64
                         ", past this log's end %" PRId64 ": truncating fully",
                         fp_topic(fp), fp_index(fp), e->Offset, coll_log_end_offset(log));
                if (coll_log_truncate_fully(log, e->Offset) < 0) {
                    fp_backoff(fp, now);
                    continue;
                }
                fp->truncations++;
                f->truncations++;
                f->host.truncated(f->host.ctx, fp->p);
                fp->state = FP_FETCHING;
            } else {
                /* The leader's end may be below ours: the epochs say where to cut. */
                fp->state = coll_log_latest_epoch(log) >= 0 ? FP_TRUNCATING : FP_FETCHING;
                fp->rounds = 0;
                fp_backoff(fp, now);
            }
        }
    }
}

static void on_durable(coll_durable_req_t *req, int status)
{
    fpart_t *fp = req->data;
    fsrc_t *src = fp->dsrc;
    coll_fetchers_t *f = fp->f;
    fp->dsrc = NULL;
    if (status != 0 && status != -ECANCELED && fp->p) {
        TRIB_LOG(TRIB_LOG_ERROR, FACILITY, "%s-%d: fsync of fetched data: %s", fp_topic(fp),
                 fp_index(fp), trib_strerror(status));
        fp_backoff(fp, uv_now(f->host.loop));
    }
    fsrc_t *now_src = fp->p ? fp->src : NULL;
    fp_unref(f, fp);
    if (src && --src->durable_waits == 0) {
        if (src->freeing) {
            src_maybe_free(src);
        } else {
            src_pump(src); /* everything of the last response is on disk: the next fetch */
        }
    }
    if (now_src && now_src != src && !f->closing) {
        src_pump(now_src); /* it moved to another leader meanwhile: it may fetch now */
    }
}

/*
 * The batches of one partition's answer, appended. Returns 0, or a Kafka
 * error code to count (CORRUPT_MESSAGE, KAFKA_STORAGE_ERROR).
 */
static int16_t append_fetched(fsrc_t *src, fpart_t *fp, const FetchResponse_PartitionData *pd,
                              int64_t fetch_offset)
{
    coll_fetchers_t *f = src->f;
    coll_partition_t *p = fp->p;
    coll_log_t *log = p->log;
    if (pd->Records.len <= 0) {
        return TRIB_KAFKA_NONE;
    }
    uint8_t *data = (uint8_t *)pd->Records.ptr;
    size_t len = (size_t)pd->Records.len;
    int64_t leo = coll_log_end_offset(log);
    if (leo != fetch_offset) {
        return TRIB_KAFKA_NONE; /* the log moved meanwhile: fetch again from its end */
    }
    /*
     * Every batch is checked (CRC32C and layout) before anything is
     * written. The leader answers with whole batches from the one holding
     * FetchOffset: one that ends below our log end is skipped; a partial
     * batch at the end (a size limit) is left for the next fetch.
     */
    trib_batch_iter_t it;
    trib_batch_iter_init(&it, data, len, 0);
    trib_batch_t b;
    int rc;
    size_t skip = 0, end = 0;
    int64_t first_base = -1;
    while ((rc = trib_batch_iter_next(&it, &b)) == 1) {
        size_t at = (size_t)(b.data - data);
        if (trib_batch_last_offset(&b) < leo) {
            skip = at + b.size;
            continue;
        }
        if (first_base < 0) {
            first_base = b.base_offset;
        }
        end = at + b.size;
    }
    if (rc < 0) {
        f->bad_batches++;
        TRIB_LOG_RL(&f->rl, TRIB_LOG_WARN, FACILITY,
                    "%s-%d: leader %d sent an invalid record batch at offset %" PRId64 ": %s",
                    fp_topic(fp), fp_index(fp), (int)fp->leader, fetch_offset, trib_strerror(rc));
        return TRIB_KAFKA_CORRUPT_MESSAGE;
    }
    if (end <= skip) {
        return TRIB_KAFKA_NONE;
    }
    if (first_base < leo) {
        if (leo == coll_log_start_offset(log) && coll_log_end_offset(log) == leo) {
            /* An empty log starting inside the leader's first batch (DeleteRecords). */
            if (coll_log_truncate_fully(log, first_base) < 0) {
                return TRIB_KAFKA_KAFKA_STORAGE_ERROR;
            }
        } else {
            f->bad_batches++;
            TRIB_LOG_RL(&f->rl, TRIB_LOG_WARN, FACILITY,
                        "%s-%d: leader %d sent a batch at %" PRId64
                        " overlapping this log's end %" PRId64,
                        fp_topic(fp), fp_index(fp), (int)fp->leader, first_base, leo);
            return TRIB_KAFKA_CORRUPT_MESSAGE;
        }
    }
    coll_append_info_t info;
    rc = coll_log_append(log, data + skip, end - skip, 0,
                         COLL_APPEND_FOLLOWER | COLL_APPEND_CRC_VERIFIED, &info);
    if (rc != 0) {
        TRIB_LOG_RL(&f->rl, TRIB_LOG_WARN, FACILITY,
                    "%s-%d: appending fetched data at %" PRId64 ": %s", fp_topic(fp), fp_index(fp),
                    leo, trib_strerror(rc));
        return rc == TRIB_ECRC || rc == TRIB_EMALFORMED || rc == TRIB_ETRUNCATED ||
                       rc == TRIB_ETOO_LARGE
                   ? TRIB_KAFKA_CORRUPT_MESSAGE
                   : TRIB_KAFKA_KAFKA_STORAGE_ERROR;
    }
    f->host.appended(f->host.ctx, p, data + skip, end - skip);
    if (f->host.fsync_ack) {
        fp->dreq.data = fp;
        fp->dsrc = src;
        fp->refs++;
        src->durable_waits++;
        rc = coll_log_wait_durable(log, info.last_offset, &fp->dreq, on_durable);
        if (rc != 0) {
            fp->dsrc = NULL;
            fp->refs--;
            src->durable_waits--;
            return TRIB_KAFKA_KAFKA_STORAGE_ERROR;
        }
    }
    return TRIB_KAFKA_NONE;
}

static void handle_fetch(fsrc_t *src, trib_slice_t *body, trib_arena_t *a)
{
    coll_fetchers_t *f = src->f;
    FetchResponse resp;
    int rc = FetchResponse_decode(&resp, body, src->version, a);
    if (rc < 0) {
        src_drop_connection(src, "malformed Fetch response", rc);
        return;
    }
    uint64_t now = uv_now(f->host.loop);
    if (resp.ErrorCode != TRIB_KAFKA_NONE) {
        for (size_t i = 0; i < src->nreq; i++) {
            fpart_t *fp = src->req[i];
            if (fp->p && fp->src == src && fp->gen == src->req_gen[i]) {
                fp_error(f, fp, now, resp.ErrorCode, "Fetch");
            }
        }
        return;
    }
    size_t hint = 0;
    for (int32_t i = 0; i < resp.Responses.count; i++) {
        const FetchResponse_FetchableTopicResponse *t = &resp.Responses.items[i];
        for (int32_t k = 0; k < t->Partitions.count; k++) {
            const FetchResponse_PartitionData *pd = &t->Partitions.items[k];
            int64_t fetch_offset = -1;
            fpart_t *fp = req_match(src, t->Topic, pd->PartitionIndex, &hint, &fetch_offset);
            if (!fp || fp->state != FP_FETCHING) {
                continue;
            }
            coll_log_t *log = fp->p->log;
            switch (pd->ErrorCode) {
            case TRIB_KAFKA_NONE: {
                int16_t e = append_fetched(src, fp, pd, fetch_offset);
                if (e != TRIB_KAFKA_NONE) {
                    fp_error(f, fp, now, e, "Fetch");
                    continue;
                }
                int64_t leo = coll_log_end_offset(log);
                if (pd->HighWatermark >= 0) {
                    int64_t hw = pd->HighWatermark < leo ? pd->HighWatermark : leo;
                    coll_log_set_high_watermark(log, hw);
                    fp->lag = pd->HighWatermark > leo ? pd->HighWatermark - leo : 0;
                }
                /* DeleteRecords on the leader moves our log start too, up to our HW. */
                int64_t lso = pd->LogStartOffset;
                int64_t hw = coll_log_high_watermark(log);
                if (lso > hw) {
                    lso = hw;
                }
                if (lso > coll_log_start_offset(log)) {
                    coll_log_delete_records(log, lso, NULL);
                }
                fp->backoff_ms = 0;
                break;
            }
            case TRIB_KAFKA_OFFSET_OUT_OF_RANGE:
                fp->fetch_errors++;
                f->fetch_errors++;
                fp->state = FP_OUT_OF_RANGE;
                break;
            default:
                fp_error(f, fp, now, pd->ErrorCode, "Fetch");
                break;
            }
        }
    }
}

/* ---- reading
 * ------------------------------------------------------------------------------------- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    fsrc_t *src = h->data;
    (void)suggested;
    if (src->szhave < 4) {
        *buf = uv_buf_init((char *)src->szb + src->szhave, (unsigned)(4 - src->szhave));
    } else {
        *buf = uv_buf_init((char *)src->frame + src->frame_have,
                           (unsigned)(src->frame_len - src->frame_have));
    }
}

static void handle_frame(fsrc_t *src)
{
    trib_arena_t a;
    trib_arena_init(&a);
    trib_slice_t s = trib_slice_make(src->frame, src->frame_len);
    trib_kafka_response_header_t h;
    trib_kafka_response_header_init(&h);
    int16_t api = src->kind == REQ_VERSIONS  ? API_API_VERSIONS
                  : src->kind == REQ_EPOCHS  ? API_OFFSET_FOR_LEADER_EPOCH
                  : src->kind == REQ_OFFSETS ? API_LIST_OFFSETS
                                             : API_FETCH;
    int rc = trib_kafka_response_header_decode(
        &h, &s, trib_kafka_response_header_version(api, src->version), &a);
    if (rc < 0 || h.correlation_id != src->corr || src->kind == REQ_NONE) {
        trib_arena_fini(&a);
        src_drop_connection(src, "a response that does not answer the request", TRIB_EMALFORMED);
        return;
    }
    rkind_t kind = src->kind;
    switch (kind) {
    case REQ_VERSIONS:
        handle_versions(src, &s, &a);
        break;
    case REQ_EPOCHS:
        handle_epochs(src, &s, &a);
        break;
    case REQ_OFFSETS:
        handle_offsets(src, &s, &a);
        break;
    default:
        handle_fetch(src, &s, &a);
        break;
    }
    trib_arena_fini(&a);
    if (src->kind == kind && src->state == SRC_READY) {
        src_req_release(src);
        src->backoff_ms = 0;
        src_pump(src);
    }
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    fsrc_t *src = st->data;
    (void)buf;
    if (n == 0) {
        return;
    }
    if (n < 0) {
        src_drop_connection(src, n == UV_EOF ? "the leader closed the connection" : "reading",
                            n == UV_EOF ? 0 : (int)n);
        return;
    }
    if (src->szhave < 4) {
        src->szhave += (size_t)n;
        if (src->szhave < 4) {
            return;
        }
        uint32_t size = (uint32_t)src->szb[0] << 24 | (uint32_t)src->szb[1] << 16 |
                        (uint32_t)src->szb[2] << 8 | src->szb[3];
        if (size < 4 || size > MAX_RESPONSE_FRAME || src->kind == REQ_NONE) {
            src_drop_connection(src, "a response frame of a bad size", TRIB_EMALFORMED);
            return;
        }
        src->frame = malloc(size);
        if (!src->frame) {
            src_drop_connection(src, "no memory for a response", -ENOMEM);
            return;
        }
        src->frame_len = size;
        src->frame_have = 0;
        return;
    }
    src->frame_have += (size_t)n;
    if (src->frame_have < src->frame_len) {
        return;
    }
    handle_frame(src);
}

/* ---- the public side --------------------------------------------------------------------------
 */

int coll_fetchers_new(const coll_fetch_host_t *host, coll_fetchers_t **out)
{
    *out = NULL;
    coll_fetchers_t *f = calloc(1, sizeof(*f));
    if (!f) {
        return -ENOMEM;
    }
    f->host = *host;
    f->self = coll_cluster_node_id(host->cluster);
    f->rl = (trib_log_ratelimit_t)TRIB_LOG_RATELIMIT_INIT(10000, 50);
    f->rl_conn = (trib_log_ratelimit_t)TRIB_LOG_RATELIMIT_INIT(10000, 10);
    *out = f;
    return 0;
}

void coll_fetchers_close(coll_fetchers_t *f)
{
    if (!f || f->closing) {
        return;
    }
    f->closing = true;
    for (fsrc_t *src = f->srcs; src; src = src->next) {
        src_retire(src);
    }
}

void coll_fetchers_free(coll_fetchers_t *f)
{
    if (!f) {
        return;
    }
    while (f->srcs) {
        fsrc_t *src = f->srcs;
        f->srcs = src->next;
        src_req_release(src);
        trib_buf_fini(&src->out);
        free(src->req);
        free(src->req_gen);
        free(src->req_off);
        free(src);
    }
    while (f->all) {
        fpart_t *fp = f->all;
        f->all = fp->all_next;
        free(fp);
    }
    free(f);
}

void coll_fetchers_follow(coll_fetchers_t *f, coll_partition_t *p)
{
    if (!f || f->closing || !p || !p->log) {
        return;
    }
    fpart_t *fp = fp_find(f, p);
    if (p->leader < 0 || p->leader == f->self) {
        /* No leader (offline): wait for the next state. */
        if (fp) {
            coll_fetchers_unfollow(f, p);
        }
        return;
    }
    if (fp && fp->src && fp->leader == p->leader && fp->epoch == p->leader_epoch) {
        return; /* an ISR-only change: keep going */
    }
    if (!fp) {
        fp = calloc(1, sizeof(*fp));
        if (!fp) {
            TRIB_LOG(TRIB_LOG_ERROR, FACILITY, "%s-%d: out of memory", p->topic->name,
                     (int)p->index);
            return;
        }
        fp->p = p;
        fp->f = f;
        fp->refs = 1;
        fp->all_next = f->all;
        f->all = fp;
    }
    fsrc_t *src = src_get(f, p->leader);
    if (!src) {
        TRIB_LOG(TRIB_LOG_ERROR, FACILITY, "%s-%d: out of memory", p->topic->name, (int)p->index);
        return;
    }
    if (fp->src && fp->src != src) {
        fsrc_t *old = fp->src;
        src_unlink(old, fp);
        src_pump(old); /* retires it when it has nothing left */
    }
    if (!fp->src) {
        src_link(src, fp);
    }
    fp->leader = p->leader;
    fp->epoch = p->leader_epoch;
    fp->lag = 0;
    fp_restart(fp);
    TRIB_LOG(TRIB_LOG_INFO, FACILITY,
             "%s-%d: following leader %d at epoch %d from offset %" PRId64
             " (latest local epoch %d)",
             p->topic->name, (int)p->index, (int)p->leader, (int)p->leader_epoch,
             coll_log_end_offset(p->log), (int)coll_log_latest_epoch(p->log));
    src_pump(src);
}

void coll_fetchers_unfollow(coll_fetchers_t *f, coll_partition_t *p)
{
    if (!f || !p) {
        return;
    }
    fpart_t *fp = fp_find(f, p);
    if (!fp) {
        return;
    }
    fsrc_t *src = fp->src;
    if (src) {
        src_unlink(src, fp);
    }
    fp->p = NULL;
    fp->gen++;
    fp_unref(f, fp);
    if (src) {
        src_pump(src);
    }
}

/* ---- metrics
 * -------------------------------------------------------------------------------------- */

void coll_fetchers_render_metrics(coll_fetchers_t *f, trib_buf_t *b)
{
    if (!f) {
        return;
    }
    trib_prom_header(b, "tributary_replica_fetch_errors_total", "counter",
                     "Partition errors in the follower's fetches (fenced or unknown epoch, not the "
                     "leader, out of range, bad data, storage), each followed by a backoff.");
    trib_prom_sample_u64(b, "tributary_replica_fetch_errors_total", NULL, f->fetch_errors);
    trib_prom_header(b, "tributary_replica_truncations_total", "counter",
                     "Follower logs cut to the leader's (by leader epoch, or fully to its log "
                     "start).");
    trib_prom_sample_u64(b, "tributary_replica_truncations_total", NULL, f->truncations);
    trib_prom_header(b, "tributary_replica_invalid_batches_total", "counter",
                     "Fetched record batches refused (CRC or layout) before anything was written.");
    trib_prom_sample_u64(b, "tributary_replica_invalid_batches_total", NULL, f->bad_batches);
    trib_prom_header(b, "tributary_replica_connections_total", "counter",
                     "Connections the fetchers made to leaders, and attempts that failed.");
    trib_prom_sample_u64(b, "tributary_replica_connections_total", "result=\"ok\"", f->connects);
    trib_prom_sample_u64(b, "tributary_replica_connections_total", "result=\"error\"",
                         f->connect_errors);
    trib_prom_header(b, "tributary_replica_follower_lag", "gauge",
                     "Per followed partition: the leader's high watermark minus this replica's "
                     "log end, as the last fetch told (0 when caught up).");
    for (fpart_t *fp = f->all; fp; fp = fp->all_next) {
        if (!fp->p) {
            continue;
        }
        trib_buf_t lb;
        trib_buf_init(&lb);
        trib_buf_append(&lb, "topic=\"", 7);
        trib_prom_label_escape(&lb, fp->p->topic->name, fp->p->topic->name_len);
        char tail[64];
        int n = snprintf(tail, sizeof(tail), "\",partition=\"%d\",leader=\"%d\"", (int)fp->p->index,
                         (int)fp->leader);
        trib_buf_append(&lb, tail, (size_t)n);
        trib_buf_put_u8(&lb, 0);
        size_t len;
        const char *labels = (const char *)trib_buf_flatten(&lb, &len);
        if (labels) {
            trib_prom_sample_u64(b, "tributary_replica_follower_lag", labels,
                                 (uint64_t)(fp->lag > 0 ? fp->lag : 0));
        }
        trib_buf_fini(&lb);
    }
}
