/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Durability: group commit on the thread pool.
 *
 * storage.fsync decides who asks for a flush:
 *   ack       the broker calls coll_log_wait_durable() for an acks=all
 *             produce; acks=0/1 never wait
 *   interval  the storage timer flushes every log with new data every
 *             flush_ms
 *   never     nothing on the append path (replication protects the data)
 * and, whatever the policy, a segment that rolls is synced in the
 * background so the recovery point keeps moving and restarts stay short.
 *
 * One flush at a time per log. A flush snapshots the log end offset
 * (its target), takes a reference on every segment it must sync (the
 * active one, and closed ones not yet clean), and runs on the pool:
 *
 *   fdatasync(segment fds) ; fdatasync(index files of closed segments)
 *   fsync(partition dir) if a segment file was created, renamed or deleted
 *   fsync(data dir) if the partition directory is new
 *
 * When it returns, every offset below the target is durable. Waits that
 * arrived while it ran are not covered (their data may have been written
 * after fdatasync started), so they stay queued and the next flush starts
 * at once: under load each fdatasync covers every append made while the
 * previous one ran — one fdatasync for many appends, and a producer never
 * waits for more than two.
 *
 *   appends:   a1 a2 a3 | a4 a5 a6 a7 | a8
 *   flushes:   [--F1 covers a1..a3--][--F2 covers a4..a7--][F3 ...
 *
 * A truncation while a flush runs lowers the flush's result to the
 * truncation point (flush_clamp), so new data written at reused offsets
 * is never reported durable by an older fdatasync. A failed fdatasync is
 * final (the page cache may have dropped the dirty pages: retrying could
 * report lost data as durable), so the log goes offline and every waiter
 * gets the error.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "storage/storage_int.h"
#include "tributary/log.h"

typedef struct flush_item {
    coll_segment_t *seg;
    int fd;
    bool closed; /* also sync the index files */
    uint64_t size;
} flush_item_t;

typedef struct flush_job {
    uv_work_t req;
    coll_log_t *log;
    int64_t target;
    uint64_t gen;
    bool sync_dir, sync_parent;
    int err;
    size_t n;
    flush_item_t items[];
} flush_job_t;

void coll_flush_mark_dirty(coll_log_t *log)
{
    coll_storage_t *st = log->st;
    if (st->cfg.fsync != COLL_FSYNC_INTERVAL || log->in_dirty_list) {
        return;
    }
    log->in_dirty_list = true;
    log->dirty_next = st->dirty_head;
    st->dirty_head = log;
}

/*
 * Takes the waiters that match off the list: those below `below` (status
 * 0), those at or above it (an error), or all. Returns them as a chain.
 */
static coll_durable_req_t *take_waiters(coll_log_t *log, int64_t below, int status, bool all)
{
    coll_durable_req_t *done = NULL, **done_tail = &done;
    coll_durable_req_t **pp = &log->waiters;
    coll_durable_req_t *prev = NULL;
    while (*pp) {
        coll_durable_req_t *r = *pp;
        bool match = all || (status == 0 ? r->offset_ < below : r->offset_ >= below);
        if (match) {
            *pp = r->next_;
            r->next_ = NULL;
            *done_tail = r;
            done_tail = &r->next_;
        } else {
            prev = r;
            pp = &r->next_;
        }
    }
    log->waiters_tail = prev;
    return done;
}

/* Completion from inside an API call: deferred to the loop, never synchronous. */
static void complete_waiters(coll_log_t *log, int64_t below, int status, bool all)
{
    coll_durable_req_t *r = take_waiters(log, below, status, all);
    while (r) {
        coll_durable_req_t *next = r->next_;
        coll_storage_defer(log->st, r, status);
        r = next;
    }
}

/* Completion from a loop callback (a flush finished): called right away. */
static void call_waiters(coll_durable_req_t *r, int status)
{
    while (r) {
        coll_durable_req_t *next = r->next_;
        r->next_ = NULL;
        r->cb_(r, status);
        r = next;
    }
}

void coll_flush_cancel_above(coll_log_t *log, int64_t offset, int status)
{
    complete_waiters(log, offset, status, offset < 0);
}

void coll_flush_fail_all(coll_log_t *log, int status)
{
    complete_waiters(log, 0, status, true);
}

static int sync_path(const coll_log_t *log, int64_t base, const char *suffix)
{
    char path[COLL_PATH_MAX];
    int rc = coll_segment_path(log, base, suffix, path, sizeof(path));
    if (rc) {
        return rc;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return errno == ENOENT ? 0 : -errno;
    }
    rc = fdatasync(fd) ? -errno : 0;
    close(fd);
    return rc;
}

static void flush_work(uv_work_t *req)
{
    flush_job_t *job = req->data;
    const coll_log_t *log = job->log; /* only immutable fields are read here */
    for (size_t i = 0; i < job->n && !job->err; i++) {
        flush_item_t *it = &job->items[i];
        if (fdatasync(it->fd) != 0) {
            job->err = -errno;
            break;
        }
        if (it->closed) {
            int rc = sync_path(log, it->seg->base_offset, COLL_INDEX_SUFFIX);
            if (rc == 0) {
                rc = sync_path(log, it->seg->base_offset, COLL_TIMEINDEX_SUFFIX);
            }
            if (rc) {
                job->err = rc;
            }
        }
    }
    if (!job->err && job->sync_dir) {
        job->err = trib_fsync_dir(log->dir);
    }
    if (!job->err && job->sync_parent) {
        job->err = trib_fsync_dir(log->st->data_dir);
    }
}

static void flush_after(uv_work_t *req, int status)
{
    flush_job_t *job = req->data;
    coll_log_t *log = job->log;
    coll_storage_t *st = log->st;
    int err = status ? status : job->err;
    coll_durable_req_t *done = NULL;
    int done_status = 0;
    log->flushing = false;
    if (err) {
        TRIB_LOG(TRIB_LOG_ERROR, COLL_FACILITY, "%s: fsync failed, taking the log offline: %s",
                 log->name, trib_strerror(err));
        log->failed = -EROFS;
        done = take_waiters(log, 0, err, true);
        done_status = err;
    } else if (!log->zombie) {
        for (size_t i = 0; i < job->n; i++) {
            coll_segment_t *s = job->items[i].seg;
            if (s->deleted) {
                continue;
            }
            if (job->gen == log->gen && job->items[i].size > s->synced_size) {
                s->synced_size = job->items[i].size;
            }
            if (job->items[i].closed && !s->active && job->gen == log->gen) {
                s->clean = true;
            }
        }
        int64_t upto = job->target;
        if (job->gen != log->gen && log->flush_clamp < upto) {
            upto = log->flush_clamp;
        }
        int64_t leo = coll_log_end_offset(log);
        if (upto > leo) {
            upto = leo;
        }
        if (upto > log->durable) {
            log->durable = upto;
        }
        done = take_waiters(log, log->durable, 0, false);
    }
    for (size_t i = 0; i < job->n; i++) {
        coll_segment_release(job->items[i].seg);
    }
    free(job);
    /* The next flush starts before the callbacks run: they may append and wait again. */
    if (!log->failed && (log->flush_again || log->flush_again_closed || log->waiters)) {
        bool full = log->waiters != NULL || log->flush_again;
        log->flush_again = false;
        log->flush_again_closed = false;
        coll_flush_start(log, !full);
    }
    call_waiters(done, done_status);
    coll_log_maybe_reap(log);
    coll_storage_work_done(st);
}

int coll_flush_start(coll_log_t *log, bool closed_only)
{
    coll_storage_t *st = log->st;
    if (log->failed) {
        coll_flush_fail_all(log, log->failed);
        return log->failed;
    }
    bool full = !closed_only || log->waiters != NULL;
    if (log->flushing) {
        if (full) {
            log->flush_again = true;
        } else {
            log->flush_again_closed = true;
        }
        return 0;
    }
    coll_segment_t *act = coll_log_active(log);
    size_t n = 0;
    for (size_t i = 0; i < log->nsegs; i++) {
        coll_segment_t *s = log->segs[i];
        if (s->active ? (full && s->synced_size < s->size) : !s->clean) {
            n++;
        }
    }
    int64_t target = full ? coll_log_end_offset(log) : act->base_offset;
    if (target < log->durable) {
        target = log->durable;
    }
    if (n == 0 && !log->dir_dirty && !log->parent_dir_dirty) {
        /* Nothing to write: everything appended is already durable. */
        if (full && target > log->durable) {
            log->durable = target;
        }
        complete_waiters(log, log->durable, 0, false);
        return 0;
    }
    flush_job_t *job = calloc(1, sizeof(*job) + n * sizeof(job->items[0]));
    if (!job) {
        return -ENOMEM;
    }
    job->req.data = job;
    job->log = log;
    job->target = target;
    job->gen = log->gen;
    job->sync_dir = log->dir_dirty;
    job->sync_parent = log->parent_dir_dirty;
    for (size_t i = 0; i < log->nsegs && job->n < n; i++) {
        coll_segment_t *s = log->segs[i];
        if (!(s->active ? (full && s->synced_size < s->size) : !s->clean)) {
            continue;
        }
        int rc = coll_segment_acquire(s);
        if (rc) {
            for (size_t k = 0; k < job->n; k++) {
                coll_segment_release(job->items[k].seg);
            }
            free(job);
            return rc;
        }
        flush_item_t *it = &job->items[job->n++];
        it->seg = s;
        it->fd = s->fd;
        it->closed = !s->active;
        it->size = s->size;
    }
    int rc = coll_storage_queue(st, &job->req, flush_work, flush_after);
    if (rc) {
        for (size_t k = 0; k < job->n; k++) {
            coll_segment_release(job->items[k].seg);
        }
        free(job);
        return rc;
    }
    log->dir_dirty = false;
    log->parent_dir_dirty = false;
    log->flushing = true;
    st->stats.flushes++;
    log->flush_clamp = INT64_MAX;
    return 0;
}

int coll_log_flush(coll_log_t *log)
{
    return coll_flush_start(log, false);
}

bool coll_log_is_durable(const coll_log_t *log, int64_t offset)
{
    return offset < log->durable;
}

int coll_log_wait_durable(coll_log_t *log, int64_t offset, coll_durable_req_t *req,
                          coll_durable_cb cb)
{
    if (!req || !cb) {
        return -EINVAL;
    }
    if (log->failed) {
        return log->failed;
    }
    if (log->st->closing > CLOSE_DRAIN) {
        return TRIB_ESTATE;
    }
    if (offset >= coll_log_end_offset(log)) {
        return -ERANGE;
    }
    log->st->stats.durable_waits++;
    req->log_ = log;
    req->cb_ = cb;
    req->offset_ = offset;
    req->next_ = NULL;
    if (offset < log->durable) {
        coll_storage_defer(log->st, req, 0);
        return 0;
    }
    if (log->waiters_tail) {
        log->waiters_tail->next_ = req;
    } else {
        log->waiters = req;
    }
    log->waiters_tail = req;
    int rc = coll_flush_start(log, false);
    if (rc && rc != log->failed) {
        /* Could not start (no memory): the wait stays queued for the next flush. */
        TRIB_LOG(TRIB_LOG_WARN, COLL_FACILITY, "%s: flush: %s", log->name, trib_strerror(rc));
    }
    return 0;
}
