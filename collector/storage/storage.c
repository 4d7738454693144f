/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The data directory: every partition log, the housekeeping timer, file
 * descriptor budget, background jobs, data-dir checkpoints, and close.
 *
 * One uv_timer (unref'd: it never keeps a loop alive) ticks every tick_ms
 * and runs what is due:
 *
 *   every flush_ms             fsync: interval -> flush logs with new data
 *   every retention_check_ms   retention pass over every log
 *   every checkpoint_interval  recovery points, high watermarks, log start
 *                              and cleaner offsets to the four checkpoint
 *                              files (one job writes them all, atomically)
 *   every second               close inactive segments idle segment_idle_ms
 *   every cleaner_backoff_ms   start compacting the dirtiest compacted log
 *                              whose dirty ratio passed its minimum (one
 *                              compaction at a time, like log.cleaner.threads=1);
 *                              a log whose pass failed is skipped for ten
 *                              backoffs, so it cannot hold up the others
 *
 * File descriptors. Active segments keep their fd (one per partition).
 * Inactive segments open on use and sit in an LRU list; past
 * max_open_segments the least recently used unreferenced one is closed,
 * and the idle sweep closes those unused for segment_idle_ms. With its fd
 * a segment drops its index mappings, so memory follows the open set.
 *
 * Background jobs (flush, deletion, compaction, file writes) are counted;
 * close proceeds in phases, each waiting for the jobs of the previous one:
 *
 *   1 drain    stop the timer; let running jobs finish
 *   2 flush    trim every active segment's indexes, fsync every log
 *   3 persist  checkpoints (recovery points at the log ends) and dirty
 *              leader epoch files, atomically, in as many jobs as needed
 *   4 marker   .kafka_cleanshutdown, only if everything before succeeded
 *   5 finish   pending callbacks, close the timer and idle handles, free,
 *              call back
 *
 * The clean-shutdown marker lets the next start skip recovery; it is
 * removed as soon as that start has loaded the logs.
 */
#include <dirent.h>
#include <ftw.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "storage/storage_int.h"
#include "tributary/kafka_error.h"
#include "tributary/log.h"

void coll_storage_config_init(coll_storage_config_t *c)
{
    memset(c, 0, sizeof(*c));
    c->data_dir = "tributary-data";
    c->fsync = COLL_FSYNC_ACK;
    c->flush_ms = 1000;
    c->checkpoint_interval_ms = 5000;
    c->retention_check_ms = 300000;
    c->cleaner_backoff_ms = 15000;
    c->cleaner_dedupe_bytes = 128u << 20;
    c->max_open_segments = 256;
    c->segment_idle_ms = 60000;
    c->tick_ms = 100;
    coll_log_config_init(&c->log_defaults);
}

int64_t coll_storage_now(const coll_storage_t *st)
{
    if (st->cfg.clock_ms) {
        return st->cfg.clock_ms(st->cfg.clock_arg);
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- log table ------------------------------------------------------------------- */

static uint64_t log_hash(const char *topic, int32_t partition)
{
    uint64_t h = 1469598103934665603ULL;
    for (const char *p = topic; *p; p++) {
        h = (h ^ (uint8_t)*p) * 1099511628211ULL;
    }
    h = (h ^ (uint32_t)partition) * 1099511628211ULL;
    return h ^ (h >> 29);
}

static int table_insert(coll_storage_t *st, coll_log_t *log)
{
    if (st->nlogs + 1 > st->nbuckets * 3 / 4) {
        size_t nb = st->nbuckets ? st->nbuckets * 2 : 64;
        coll_log_t **b = calloc(nb, sizeof(*b));
        if (!b) {
            return -ENOMEM;
        }
        for (size_t i = 0; i < st->nbuckets; i++) {
            coll_log_t *l = st->buckets[i];
            while (l) {
                coll_log_t *next = l->hnext;
                size_t k = log_hash(l->topic, l->partition) & (nb - 1);
                l->hnext = b[k];
                b[k] = l;
                l = next;
            }
        }
        free(st->buckets);
        st->buckets = b;
        st->nbuckets = nb;
    }
    size_t k = log_hash(log->topic, log->partition) & (st->nbuckets - 1);
    log->hnext = st->buckets[k];
    st->buckets[k] = log;
    st->nlogs++;
    return 0;
}

static void table_remove(coll_storage_t *st, coll_log_t *log)
{
    if (st->nbuckets == 0) {
        return;
    }
    size_t k = log_hash(log->topic, log->partition) & (st->nbuckets - 1);
    for (coll_log_t **pp = &st->buckets[k]; *pp; pp = &(*pp)->hnext) {
        if (*pp == log) {
            *pp = log->hnext;
            log->hnext = NULL;
            st->nlogs--;
            return;
        }
    }
}

int coll_storage_get_log(coll_storage_t *st, const char *topic, int32_t partition, coll_log_t **out)
{
    if (st->nbuckets == 0) {
        return TRIB_ENOT_FOUND;
    }
    size_t k = log_hash(topic, partition) & (st->nbuckets - 1);
    for (coll_log_t *l = st->buckets[k]; l; l = l->hnext) {
        if (l->partition == partition && strcmp(l->topic, topic) == 0) {
            *out = l;
            return 0;
        }
    }
    return TRIB_ENOT_FOUND;
}

void coll_storage_foreach(coll_storage_t *st, void (*fn)(coll_log_t *log, void *arg), void *arg)
{
    for (size_t i = 0; i < st->nbuckets; i++) {
        for (coll_log_t *l = st->buckets[i]; l; l = l->hnext) {
            fn(l, arg);
        }
    }
}

size_t coll_storage_log_count(const coll_storage_t *st)
{
    return st->nlogs;
}

void coll_storage_get_stats(const coll_storage_t *st, coll_storage_stats_t *out)
{
    *out = st->stats;
    out->open_segments = st->open_segments;
    out->pending_jobs = st->pending;
}

/* ---- background work -------------------------------------------------------------------- */

static void close_step(coll_storage_t *st);

int coll_storage_queue(coll_storage_t *st, uv_work_t *req, uv_work_cb work, uv_after_work_cb after)
{
    int rc = uv_queue_work(st->loop, req, work, after);
    if (rc == 0) {
        st->pending++;
    }
    return rc;
}

void coll_storage_work_done(coll_storage_t *st)
{
    st->pending--;
    if (st->closing && st->pending == 0) {
        close_step(st);
    }
}

static void idle_cb(uv_idle_t *h)
{
    coll_storage_t *st = h->data;
    coll_durable_req_t *r = st->ready;
    st->ready = st->ready_tail = NULL;
    uv_idle_stop(&st->idle);
    while (r) {
        coll_durable_req_t *next = r->next_;
        r->next_ = NULL;
        r->cb_(r, (int)r->offset_);
        r = next;
    }
}

void coll_storage_defer(coll_storage_t *st, coll_durable_req_t *req, int status)
{
    req->offset_ = status; /* the offset is no longer needed: it carries the status */
    req->next_ = NULL;
    if (st->ready_tail) {
        st->ready_tail->next_ = req;
    } else {
        st->ready = req;
    }
    st->ready_tail = req;
    if (st->closing < CLOSE_FINISH) {
        uv_idle_start(&st->idle, idle_cb);
    }
}

/* ---- fd budget ---------------------------------------------------------------------------- */

void coll_storage_lru_remove(coll_storage_t *st, coll_segment_t *s)
{
    if (!s->in_lru) {
        return;
    }
    if (s->lru_prev) {
        s->lru_prev->lru_next = s->lru_next;
    } else {
        st->lru_head = s->lru_next;
    }
    if (s->lru_next) {
        s->lru_next->lru_prev = s->lru_prev;
    } else {
        st->lru_tail = s->lru_prev;
    }
    s->lru_prev = s->lru_next = NULL;
    s->in_lru = false;
    st->open_segments--;
}

void coll_storage_lru_touch(coll_storage_t *st, coll_segment_t *s)
{
    if (s->in_lru) {
        if (st->lru_head == s) {
            return;
        }
        coll_storage_lru_remove(st, s);
    }
    s->lru_prev = NULL;
    s->lru_next = st->lru_head;
    if (st->lru_head) {
        st->lru_head->lru_prev = s;
    } else {
        st->lru_tail = s;
    }
    st->lru_head = s;
    s->in_lru = true;
    st->open_segments++;
    /* Over budget: close the least recently used segments nobody holds. */
    coll_segment_t *v = st->lru_tail;
    while (st->open_segments > st->cfg.max_open_segments && v) {
        coll_segment_t *prev = v->lru_prev;
        if (v != s && v->refs == 0) {
            coll_segment_close_files(v);
        }
        v = prev;
    }
}

static void close_idle_segments(coll_storage_t *st, uint64_t now)
{
    coll_segment_t *v = st->lru_tail;
    while (v) {
        coll_segment_t *prev = v->lru_prev;
        if (v->refs == 0 && now - (uint64_t)v->last_used_ms >= st->cfg.segment_idle_ms) {
            coll_segment_close_files(v);
        }
        v = prev;
    }
}

/* ---- segment deletion ------------------------------------------------------------------- */

typedef struct delete_job {
    uv_work_t req;
    coll_storage_t *st;
    coll_segment_t *seg;
    /* Paths are computed on the loop: the worker touches nothing shared. */
    char path[3][COLL_PATH_MAX];
} delete_job_t;

static void delete_work(uv_work_t *req)
{
    delete_job_t *job = req->data;
    coll_segment_t *s = job->seg;
    for (size_t k = 0; k < 3; k++) {
        if (job->path[k][0] && unlink(job->path[k]) != 0 && errno != ENOENT) {
            TRIB_LOG(TRIB_LOG_WARN, COLL_FACILITY, "unlink %s: %s", job->path[k], strerror(errno));
        }
    }
    /* The last close of an unlinked file frees its blocks: also here, off the loop. */
    coll_index_unmap(&s->oi);
    coll_index_unmap(&s->ti);
    if (s->fd >= 0) {
        close(s->fd);
        s->fd = -1;
    }
}

static void delete_after(uv_work_t *req, int status)
{
    delete_job_t *job = req->data;
    coll_storage_t *st = job->st;
    coll_log_t *log = job->seg->log;
    coll_segment_free(job->seg); /* files closed by the worker */
    free(job);
    coll_log_maybe_reap(log);
    coll_storage_work_done(st);
}

static void delete_paths(delete_job_t *job)
{
    static const char *const sfx[] = {COLL_LOG_SUFFIX COLL_DELETED_SUFFIX,
                                      COLL_INDEX_SUFFIX COLL_DELETED_SUFFIX,
                                      COLL_TIMEINDEX_SUFFIX COLL_DELETED_SUFFIX};
    for (size_t k = 0; k < 3; k++) {
        if (coll_segment_path(job->seg->log, job->seg->base_offset, sfx[k], job->path[k],
                              sizeof(job->path[k])) != 0) {
            job->path[k][0] = '\0';
        }
    }
}

void coll_storage_delete_segment(coll_storage_t *st, coll_segment_t *s)
{
    s->delete_queued = true;
    st->stats.segments_deleted++;
    coll_storage_lru_remove(st, s);
    delete_job_t *job = calloc(1, sizeof(*job));
    if (job) {
        job->req.data = job;
        job->st = st;
        job->seg = s;
        delete_paths(job);
        if (coll_storage_queue(st, &job->req, delete_work, delete_after) == 0) {
            return;
        }
        free(job);
    }
    /* No memory for a job: do it here rather than leak the segment. */
    static delete_job_t tmp;
    memset(&tmp, 0, sizeof(tmp));
    tmp.st = st;
    tmp.seg = s;
    tmp.req.data = &tmp;
    delete_paths(&tmp);
    delete_work(&tmp.req);
    coll_log_t *log = s->log;
    coll_segment_free(s);
    coll_log_maybe_reap(log);
}

/* ---- whole directories ----------------------------------------------------------------- */

typedef struct rmdir_job {
    uv_work_t req;
    coll_storage_t *st;
    coll_log_t *log; /* NULL: a leftover found at startup */
    char path[COLL_PATH_MAX + 64];
} rmdir_job_t;

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    if (remove(path) != 0 && errno != ENOENT) {
        TRIB_LOG(TRIB_LOG_WARN, COLL_FACILITY, "remove %s: %s", path, strerror(errno));
    }
    return 0;
}

static void rmdir_work(uv_work_t *req)
{
    rmdir_job_t *job = req->data;
    nftw(job->path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void rmdir_after(uv_work_t *req, int status)
{
    rmdir_job_t *job = req->data;
    coll_storage_t *st = job->st;
    coll_log_t *log = job->log;
    free(job);
    if (log) {
        log->dir_removed = true;
        coll_log_maybe_reap(log);
    }
    coll_storage_work_done(st);
}

static int remove_dir_async(coll_storage_t *st, coll_log_t *log, const char *path)
{
    rmdir_job_t *job = calloc(1, sizeof(*job));
    if (!job) {
        return -ENOMEM;
    }
    job->req.data = job;
    job->st = st;
    job->log = log;
    snprintf(job->path, sizeof(job->path), "%s", path);
    int rc = coll_storage_queue(st, &job->req, rmdir_work, rmdir_after);
    if (rc) {
        free(job);
    }
    return rc;
}

static void fill_random(uint8_t *p, size_t n)
{
    ssize_t got = getrandom(p, n, GRND_NONBLOCK);
    if (got != (ssize_t)n) {
        /* No entropy yet (early boot): time and pid make the name unique enough. */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t v = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ (uint64_t)getpid();
        for (size_t i = 0; i < n; i++) {
            v = v * 6364136223846793005ULL + 1442695040888963407ULL;
            p[i] = (uint8_t)(v >> 56);
        }
    }
}

void coll_log_maybe_reap(coll_log_t *log)
{
    if (!log->zombie || log->flushing || log->cleaning || log->epoch_writing ||
        log->live_segments > 0 || !log->dir_removed) {
        return;
    }
    coll_storage_t *st = log->st;
    for (coll_log_t **pp = &st->zombies; *pp; pp = &(*pp)->zombie_next) {
        if (*pp == log) {
            *pp = log->zombie_next;
            break;
        }
    }
    if (log->delete_cb) {
        log->delete_cb(log, log->delete_arg, 0);
    }
    coll_log_free(log);
}

int coll_storage_delete_log(coll_storage_t *st, coll_log_t *log, coll_log_done_cb cb, void *arg)
{
    if (st->closing || log->zombie) {
        return TRIB_ESTATE;
    }
    TRIB_LOG(TRIB_LOG_INFO, COLL_FACILITY, "deleting log %s", log->name);
    table_remove(st, log);
    for (coll_log_t **pp = &st->dirty_head; *pp; pp = &(*pp)->dirty_next) {
        if (*pp == log) {
            *pp = log->dirty_next;
            break;
        }
    }
    log->in_dirty_list = false;
    log->zombie = true;
    log->delete_cb = cb;
    log->delete_arg = arg;
    log->zombie_next = st->zombies;
    st->zombies = log;
    if (!log->failed) {
        log->failed = -EROFS; /* nothing more is written to it */
    }
    log->epoch_dirty = false;
    log->gen++;
    coll_flush_fail_all(log, -ECANCELED);
    coll_log_remove_segments(log, 0, log->nsegs, "log deleted");

    uint8_t id[16];
    fill_random(id, sizeof(id));
    char to[COLL_PATH_MAX + 64];
    int n = snprintf(to, sizeof(to), "%s.", log->dir);
    for (size_t i = 0; i < sizeof(id) && n > 0 && (size_t)n + 3 < sizeof(to); i++) {
        n += snprintf(to + n, sizeof(to) - (size_t)n, "%02x", id[i]);
    }
    snprintf(to + n, sizeof(to) - (size_t)n, "-delete");
    const char *target = to;
    if (rename(log->dir, to) != 0) {
        TRIB_LOG(TRIB_LOG_ERROR, COLL_FACILITY, "rename %s: %s (removing it in place)", log->dir,
                 strerror(errno));
        target = log->dir;
    }
    if (remove_dir_async(st, log, target) != 0) {
        log->dir_removed = true; /* no memory for the job: the next open removes it */
    }
    return 0;
}

/* ---- atomic file writes ------------------------------------------------------------------- */

#define MAX_FILES 8

typedef struct file_job {
    uv_work_t req;
    coll_storage_t *st;
    size_t n;
    char *path[MAX_FILES];
    char *content[MAX_FILES];
    size_t len[MAX_FILES];
    bool marker; /* then create the clean-shutdown marker */
    int err;
    void (*done)(void *arg, int status);
    void *arg;
} file_job_t;

static void file_job_free(file_job_t *job)
{
    for (size_t i = 0; i < job->n; i++) {
        free(job->path[i]);
        free(job->content[i]);
    }
    free(job);
}

static void file_work(uv_work_t *req)
{
    file_job_t *job = req->data;
    for (size_t i = 0; i < job->n; i++) {
        int rc = trib_write_file_atomic(job->path[i], job->content[i], job->len[i]);
        if (rc && !job->err) {
            job->err = rc;
        }
    }
    if (job->marker && !job->err) {
        char path[COLL_PATH_MAX];
        snprintf(path, sizeof(path), "%s/%s", job->st->data_dir, COLL_CLEAN_SHUTDOWN_FILE);
        job->err = trib_write_file_atomic(path, "", 0);
    }
}

static void file_after(uv_work_t *req, int status)
{
    file_job_t *job = req->data;
    coll_storage_t *st = job->st;
    int err = status ? status : job->err;
    if (job->done) {
        job->done(job->arg, err);
    } else if (err) {
        /* Checkpoints are rewritten every interval: on a full disk, once a minute is enough. */
        TRIB_LOG_RL(&st->file_rl, TRIB_LOG_ERROR, COLL_FACILITY, "writing %s: %s", job->path[0],
                    trib_strerror(err));
    }
    file_job_free(job);
    coll_storage_work_done(st);
}

int coll_storage_write_file(coll_storage_t *st, char *path, char *content, size_t len,
                            void (*done)(void *arg, int status), void *arg)
{
    file_job_t *job = calloc(1, sizeof(*job));
    if (!job) {
        free(path);
        free(content);
        return -ENOMEM;
    }
    job->req.data = job;
    job->st = st;
    job->n = 1;
    job->path[0] = path;
    job->content[0] = content;
    job->len[0] = len;
    job->done = done;
    job->arg = arg;
    int rc = coll_storage_queue(st, &job->req, file_work, file_after);
    if (rc) {
        file_job_free(job);
    }
    return rc;
}

/* ---- checkpoints -------------------------------------------------------------------------- */

static const char *const ckpt_files[4] = {COLL_RECOVERY_POINT_FILE, COLL_REPLICATION_FILE,
                                          COLL_LOG_START_FILE, COLL_CLEANER_FILE};

/*
 * Adds the four data-dir checkpoint files to job; unless `final`, a file
 * whose content did not change since it was last written is left out (an
 * idle broker does not fsync every few seconds for nothing).
 */
static int build_checkpoints(coll_storage_t *st, file_job_t *job, bool final)
{
    coll_ckpt_t c[4];
    int rc = 0;
    for (size_t k = 0; k < 4; k++) {
        coll_ckpt_init(&c[k]);
    }
    for (size_t i = 0; i < st->nbuckets && rc == 0; i++) {
        for (coll_log_t *l = st->buckets[i]; l && rc == 0; l = l->hnext) {
            int64_t rp = coll_log_compute_recovery_point(l);
            if (final && !l->failed) {
                rp = coll_log_end_offset(l);
            }
            rc = coll_ckpt_add(&c[0], l->topic, l->partition, rp);
            if (rc == 0) {
                rc = coll_ckpt_add(&c[1], l->topic, l->partition, l->hw);
            }
            if (rc == 0) {
                rc = coll_ckpt_add(&c[2], l->topic, l->partition, l->log_start);
            }
            if (rc == 0 && (l->cfg.cleanup_policy & COLL_CLEANUP_COMPACT)) {
                rc = coll_ckpt_add(&c[3], l->topic, l->partition, l->cleaner_point);
            }
        }
    }
    for (size_t k = 0; k < 4 && rc == 0; k++) {
        char *content;
        size_t len;
        rc = coll_ckpt_format(&c[k], &content, &len);
        if (rc) {
            break;
        }
        if (!final && st->ckpt_last[k] && st->ckpt_last_len[k] == len &&
            memcmp(st->ckpt_last[k], content, len) == 0) {
            free(content);
            continue;
        }
        size_t plen = strlen(st->data_dir) + strlen(ckpt_files[k]) + 2;
        char *path = malloc(plen);
        char *copy = malloc(len ? len : 1);
        if (!path || !copy) {
            free(path);
            free(copy);
            free(content);
            rc = -ENOMEM;
            break;
        }
        snprintf(path, plen, "%s/%s", st->data_dir, ckpt_files[k]);
        memcpy(copy, content, len);
        /* Remembered now; forgotten again if the write fails (ckpt_done). */
        free(st->ckpt_last[k]);
        st->ckpt_last[k] = copy;
        st->ckpt_last_len[k] = len;
        job->path[job->n] = path;
        job->content[job->n] = content;
        job->len[job->n++] = len;
    }
    for (size_t k = 0; k < 4; k++) {
        coll_ckpt_fini(&c[k]);
    }
    return rc;
}

static void forget_checkpoints(coll_storage_t *st)
{
    for (size_t k = 0; k < 4; k++) {
        free(st->ckpt_last[k]);
        st->ckpt_last[k] = NULL;
    }
}

static void ckpt_done(void *arg, int status)
{
    coll_storage_t *st = arg;
    st->ckpt_writing = false;
    if (status) {
        TRIB_LOG_RL(&st->file_rl, TRIB_LOG_ERROR, COLL_FACILITY, "writing checkpoints in %s: %s",
                    st->data_dir, trib_strerror(status));
        forget_checkpoints(st);
    }
    if (st->ckpt_again && !st->closing) {
        st->ckpt_again = false;
        coll_storage_checkpoint(st);
    }
}

int coll_storage_checkpoint(coll_storage_t *st)
{
    if (st->closing) {
        return TRIB_ESTATE;
    }
    if (st->ckpt_writing) {
        st->ckpt_again = true;
        return 0;
    }
    file_job_t *job = calloc(1, sizeof(*job));
    if (!job) {
        return -ENOMEM;
    }
    job->req.data = job;
    job->st = st;
    job->done = ckpt_done;
    job->arg = st;
    int rc = build_checkpoints(st, job, false);
    if (rc == 0 && job->n == 0) {
        file_job_free(job); /* nothing changed */
        return 0;
    }
    if (rc == 0) {
        rc = coll_storage_queue(st, &job->req, file_work, file_after);
    }
    if (rc) {
        file_job_free(job);
        forget_checkpoints(st);
        return rc;
    }
    st->ckpt_writing = true;
    return 0;
}

/* ---- housekeeping -------------------------------------------------------------------------- */

void coll_storage_enforce_retention(coll_storage_t *st)
{
    int64_t now = coll_storage_now(st);
    for (size_t i = 0; i < st->nbuckets; i++) {
        for (coll_log_t *l = st->buckets[i]; l; l = l->hnext) {
            coll_log_enforce_retention(l, now);
        }
    }
}

static void start_cleaner(coll_storage_t *st);

/* ---- a full disk ---------------------------------------------------------------------------- */

int coll_storage_error_reason(int rc)
{
    switch (rc) {
    case -ENOSPC:
    case -EDQUOT:
        return COLL_WERR_NO_SPACE;
    case -EIO:
    case -EROFS:
        return COLL_WERR_IO;
    default:
        return COLL_WERR_OTHER;
    }
}

const char *coll_storage_error_reason_name(int reason)
{
    static const char *const names[COLL_WERR_N] = {"no_space", "io", "other"};
    return reason >= 0 && reason < COLL_WERR_N ? names[reason] : "other";
}

void coll_storage_append_failed(coll_storage_t *st, coll_log_t *log, size_t len, int rc)
{
    int reason = coll_storage_error_reason(rc);
    st->stats.append_errors[reason]++;
    if (reason == COLL_WERR_NO_SPACE) {
        if (!log->write_error) {
            TRIB_LOG_RL(&st->append_rl, TRIB_LOG_ERROR, COLL_FACILITY,
                        "%s: the disk is full (%s): appends fail with KAFKA_STORAGE_ERROR "
                        "until space is freed",
                        log->name, trib_strerror(rc));
        }
        log->write_error = rc;
        if (!st->disk_full) {
            st->disk_full = true;
            st->next_probe = uv_now(st->loop) + 1000;
        }
        return;
    }
    TRIB_LOG_RL(&st->append_rl, TRIB_LOG_ERROR, COLL_FACILITY, "%s: append of %zu bytes: %s",
                log->name, len, trib_strerror(rc));
}

void coll_storage_append_resumed(coll_storage_t *st, coll_log_t *log)
{
    log->write_error = 0;
    TRIB_LOG(TRIB_LOG_INFO, COLL_FACILITY, "%s: appends succeed again", log->name);
    (void)st;
}

/*
 * While a log has found the disk full, the data directory's free space is
 * looked at every second; once COLL_SPACE_RESUME_BYTES are free the notes
 * go, so /health recovers without waiting for a producer to try again.
 * (Under a quota statvfs does not see, the next append notes it again.)
 */
static void probe_space(coll_storage_t *st)
{
    struct statvfs sv;
    if (statvfs(st->data_dir, &sv) != 0) {
        return;
    }
    uint64_t avail = (uint64_t)sv.f_bavail * (sv.f_frsize ? sv.f_frsize : sv.f_bsize);
    if (avail < COLL_SPACE_RESUME_BYTES) {
        return;
    }
    st->disk_full = false;
    for (size_t i = 0; i < st->nbuckets; i++) {
        for (coll_log_t *l = st->buckets[i]; l; l = l->hnext) {
            l->write_error = 0;
        }
    }
    TRIB_LOG(TRIB_LOG_INFO, COLL_FACILITY, "%s has %" PRIu64 " KiB free again: appends resume",
             st->data_dir, avail >> 10);
}

/*
 * The space reserve, <data_dir>/.space-reserve: space_reserve_bytes of
 * real blocks (posix_fallocate) that nothing else uses. A start that finds
 * the disk full (less than COLL_SPACE_RESUME_BYTES free) empties it before
 * loading anything, so recovery has room for what it must write (rebuilt
 * indexes, checkpoints, the cluster metadata) instead of refusing to start
 * until an operator frees space. It is taken again, once a second, as soon
 * as the disk has the reserve plus COLL_SPACE_RESUME_BYTES free. A disk
 * that fills while running does not touch it: produce answers
 * KAFKA_STORAGE_ERROR then, and the reserve is kept for the restart.
 * Without a reserve (space_reserve 0) a start on a full disk fails with
 * "No space left on device" naming the file it could not write.
 */
#define RESERVE_FILE ".space-reserve"

static bool data_dir_avail(const coll_storage_t *st, uint64_t *avail)
{
    struct statvfs sv;
    if (statvfs(st->data_dir, &sv) != 0) {
        return false;
    }
    *avail = (uint64_t)sv.f_bavail * (sv.f_frsize ? sv.f_frsize : sv.f_bsize);
    return true;
}

static void reserve_release(coll_storage_t *st)
{
    char path[COLL_PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", st->data_dir, RESERVE_FILE);
    if (st->cfg.space_reserve_bytes == 0) {
        (void)unlink(path);
        return;
    }
    st->reserve_short = true;
    struct stat stb;
    uint64_t avail;
    if (stat(path, &stb) != 0 || (uint64_t)stb.st_size < st->cfg.space_reserve_bytes ||
        !data_dir_avail(st, &avail)) {
        return;
    }
    if (avail >= COLL_SPACE_RESUME_BYTES) {
        st->reserve_short = false;
        return;
    }
    if (truncate(path, 0) != 0) {
        TRIB_LOG(TRIB_LOG_WARN, COLL_FACILITY, "%s: %s", path, strerror(errno));
        return;
    }
    TRIB_LOG(TRIB_LOG_WARN, COLL_FACILITY,
             "%s has %" PRIu64 " KiB free: gave up the %" PRIu64
             " KiB space reserve so recovery can write; it is taken again once the disk has room",
             st->data_dir, avail >> 10, st->cfg.space_reserve_bytes >> 10);
}

static void reserve_take(coll_storage_t *st)
{
    uint64_t avail;
    if (!st->reserve_short || !data_dir_avail(st, &avail) ||
        avail < st->cfg.space_reserve_bytes + COLL_SPACE_RESUME_BYTES) {
        return;
    }
    char path[COLL_PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", st->data_dir, RESERVE_FILE);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        return;
    }
    int err = posix_fallocate(fd, 0, (off_t)st->cfg.space_reserve_bytes);
    if (err != 0) {
        /* Someone else took the space first: give back what was got, try
           later (the next try allocates it again either way). */
        if (ftruncate(fd, 0) != 0) {
            TRIB_LOG(TRIB_LOG_WARN, COLL_FACILITY, "%s: cannot give back a partial reserve: %s",
                     path, strerror(errno));
        }
    } else {
        st->reserve_short = false;
        TRIB_LOG(TRIB_LOG_INFO, COLL_FACILITY, "%s: holding %" PRIu64 " KiB in reserve", path,
                 st->cfg.space_reserve_bytes >> 10);
    }
    close(fd);
}

static void tick_cb(uv_timer_t *t)
{
    coll_storage_t *st = t->data;
    if (st->closing) {
        return;
    }
    uint64_t now = uv_now(st->loop);
    if (st->cfg.fsync == COLL_FSYNC_INTERVAL && now >= st->next_flush) {
        st->next_flush = now + st->cfg.flush_ms;
        coll_log_t *l = st->dirty_head;
        st->dirty_head = NULL;
        while (l) {
            coll_log_t *next = l->dirty_next;
            l->in_dirty_list = false;
            l->dirty_next = NULL;
            coll_flush_start(l, false);
            l = next;
        }
    }
    if (now >= st->next_retention) {
        st->next_retention = now + st->cfg.retention_check_ms;
        coll_storage_enforce_retention(st);
    }
    if (now >= st->next_ckpt) {
        st->next_ckpt = now + st->cfg.checkpoint_interval_ms;
        coll_storage_checkpoint(st);
    }
    if (now >= st->next_idle) {
        st->next_idle = now + (st->cfg.segment_idle_ms < 1000 ? st->cfg.segment_idle_ms : 1000);
        close_idle_segments(st, now);
    }
    if (!st->cleaner_busy && now >= st->next_clean) {
        st->next_clean = now + st->cfg.cleaner_backoff_ms;
        start_cleaner(st);
    }
    if (st->disk_full && now >= st->next_probe) {
        st->next_probe = now + 1000;
        probe_space(st);
    }
    if (st->reserve_short && now >= st->next_reserve) {
        st->next_reserve = now + 1000;
        reserve_take(st);
    }
}

static void cleaner_done(coll_log_t *log, void *arg, int status)
{
    coll_storage_t *st = arg;
    st->cleaner_busy = false;
}

static void start_cleaner(coll_storage_t *st)
{
    int64_t now = coll_storage_now(st);
    coll_log_t *best = NULL;
    double best_ratio = -1;
    for (size_t i = 0; i < st->nbuckets; i++) {
        for (coll_log_t *l = st->buckets[i]; l; l = l->hnext) {
            if (!(l->cfg.cleanup_policy & COLL_CLEANUP_COMPACT) || l->cleaning || l->failed ||
                l->cleaner_retry_ms > now) {
                continue; /* a log whose last pass failed lets the others go first */
            }
            double r = coll_cleaner_dirty_ratio(l, now);
            bool due = r >= l->cfg.min_cleanable_dirty_ratio && r > 0;
            if (!due && r >= 0 && l->tombstone_due_ms <= now) {
                due = true; /* tombstones whose delete horizon passed */
            }
            if (due && r > best_ratio) {
                best = l;
                best_ratio = r;
            }
        }
    }
    if (best && coll_cleaner_start(best, cleaner_done, st) == 0) {
        st->cleaner_busy = true;
    }
}

/* ---- open ---------------------------------------------------------------------------------- */

static bool valid_topic(const char *t)
{
    size_t n = strlen(t);
    if (n == 0 || n > 249 || strcmp(t, ".") == 0 || strcmp(t, "..") == 0) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = t[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-')) {
            return false;
        }
    }
    return true;
}

/* "<topic>-<partition>" -> topic (in buf) and partition. */
static bool parse_dir_name(const char *name, char *buf, size_t n, int32_t *partition)
{
    const char *dash = strrchr(name, '-');
    if (!dash || dash == name || !dash[1] || (size_t)(dash - name) >= n) {
        return false;
    }
    for (const char *p = dash + 1; *p; p++) {
        if (*p < '0' || *p > '9') {
            return false;
        }
    }
    if (strlen(dash + 1) > 9) {
        return false;
    }
    memcpy(buf, name, (size_t)(dash - name));
    buf[dash - name] = '\0';
    *partition = (int32_t)strtol(dash + 1, NULL, 10);
    return valid_topic(buf);
}

static void read_ckpt(coll_ckpt_t *c, const char *dir, const char *file)
{
    char path[COLL_PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", dir, file);
    trib_error_t e;
    trib_error_clear(&e);
    if (coll_ckpt_read(c, path, &e) != 0) {
        char msg[700];
        trib_error_format(&e, msg, sizeof(msg));
        TRIB_LOG(TRIB_LOG_WARN, COLL_FACILITY, "%s (ignored: full recovery instead)", msg);
        coll_ckpt_fini(c);
        coll_ckpt_init(c);
    }
}

static void free_storage(coll_storage_t *st)
{
    for (size_t i = 0; i < st->nbuckets; i++) {
        coll_log_t *l = st->buckets[i];
        while (l) {
            coll_log_t *next = l->hnext;
            coll_log_free(l);
            l = next;
        }
    }
    while (st->zombies) {
        coll_log_t *z = st->zombies;
        st->zombies = z->zombie_next;
        coll_log_free(z);
    }
    free(st->buckets);
    forget_checkpoints(st);
    free(st->data_dir);
    free(st);
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int coll_storage_open(uv_loop_t *loop, const coll_storage_config_t *cfg, coll_storage_t **out,
                      trib_error_t *err)
{
    if (!cfg->data_dir || !*cfg->data_dir) {
        return trib_error_set(err, -EINVAL, "storage: no data directory");
    }
    if (cfg->fsync > COLL_FSYNC_NEVER || cfg->tick_ms == 0 || cfg->max_open_segments == 0) {
        return trib_error_set(err, -EINVAL, "storage: invalid settings");
    }
    if (coll_log_config_check(&cfg->log_defaults) != 0) {
        return trib_error_set(err, -EINVAL, "storage: invalid default log settings");
    }
    coll_storage_t *st = calloc(1, sizeof(*st));
    if (!st) {
        return trib_error_set(err, -ENOMEM, "out of memory");
    }
    st->loop = loop;
    st->rl_cleaner = (trib_log_ratelimit_t)TRIB_LOG_RATELIMIT_INIT(60000, 5);
    st->append_rl = (trib_log_ratelimit_t)TRIB_LOG_RATELIMIT_INIT(10000, 5);
    st->file_rl = (trib_log_ratelimit_t)TRIB_LOG_RATELIMIT_INIT(60000, 3);
    st->cfg = *cfg;
    st->data_dir = strdup(cfg->data_dir);
    st->cfg.data_dir = st->data_dir;
    if (!st->data_dir) {
        free(st);
        return trib_error_set(err, -ENOMEM, "out of memory");
    }
    /* The handles exist before any log: loading may already queue work. */
    uv_timer_init(loop, &st->tick);
    uv_idle_init(loop, &st->idle);
    st->tick.data = st;
    st->idle.data = st;
    st->handles_open = 2;

    int rc = trib_mkdirs_durable(st->data_dir, 0755);
    if (rc) {
        rc = trib_error_set(err, rc, "%s: %s", st->data_dir, trib_strerror(rc));
        goto fail;
    }
    reserve_release(st);
    char path[COLL_PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", st->data_dir, COLL_CLEAN_SHUTDOWN_FILE);
    bool clean = access(path, F_OK) == 0;
    coll_ckpt_t ck[4];
    for (size_t k = 0; k < 4; k++) {
        coll_ckpt_init(&ck[k]);
        read_ckpt(&ck[k], st->data_dir, ckpt_files[k]);
    }
    int64_t t0 = mono_ms();
    DIR *d = opendir(st->data_dir);
    if (!d) {
        rc = trib_error_set(err, -errno, "%s: %s", st->data_dir, strerror(errno));
        for (size_t k = 0; k < 4; k++) {
            coll_ckpt_fini(&ck[k]);
        }
        goto fail;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        char topic[256];
        int32_t part;
        size_t nlen = strlen(de->d_name);
        if (nlen > 4 && strcmp(de->d_name + nlen - 4, ".tmp") == 0) {
            /* A checkpoint write a crash interrupted. */
            snprintf(path, sizeof(path), "%s/%s", st->data_dir, de->d_name);
            unlink(path);
            continue;
        }
        if (nlen > 7 && strcmp(de->d_name + nlen - 7, "-delete") == 0) {
            /* A deletion a crash interrupted. */
            snprintf(path, sizeof(path), "%s/%s", st->data_dir, de->d_name);
            remove_dir_async(st, NULL, path);
            continue;
        }
        if (de->d_name[0] == '.' || !parse_dir_name(de->d_name, topic, sizeof(topic), &part)) {
            continue;
        }
        snprintf(path, sizeof(path), "%s/%s", st->data_dir, de->d_name);
        struct stat stb;
        if (stat(path, &stb) != 0 || !S_ISDIR(stb.st_mode)) {
            continue;
        }
        int64_t rp = coll_ckpt_get(&ck[0], topic, part);
        int64_t hw = coll_ckpt_get(&ck[1], topic, part);
        int64_t ls = coll_ckpt_get(&ck[2], topic, part);
        int64_t cp = coll_ckpt_get(&ck[3], topic, part);
        coll_log_t *log;
        rc = coll_log_load(st, topic, part, clean, rp < 0 ? 0 : rp, ls < 0 ? 0 : ls,
                           hw < 0 ? 0 : hw, cp < 0 ? 0 : cp, &log, err);
        if (rc == 0 && (rc = table_insert(st, log)) != 0) {
            coll_log_free(log);
            trib_error_set(err, rc, "out of memory");
        }
        if (rc) {
            break;
        }
    }
    closedir(d);
    for (size_t k = 0; k < 4; k++) {
        coll_ckpt_fini(&ck[k]);
    }
    if (rc) {
        goto fail;
    }
    for (size_t i = 0; i < st->nbuckets; i++) {
        for (coll_log_t *l = st->buckets[i]; l; l = l->hnext) {
            if (l->epoch_dirty) {
                coll_log_mark_epoch_dirty(l);
            }
        }
    }
    if (clean) {
        snprintf(path, sizeof(path), "%s/%s", st->data_dir, COLL_CLEAN_SHUTDOWN_FILE);
        if (unlink(path) != 0 || trib_fsync_dir(st->data_dir) != 0) {
            rc = trib_error_set(err, -errno, "%s: %s", path, strerror(errno));
            goto fail;
        }
    }
    if (st->nlogs > 0) {
        TRIB_LOG(TRIB_LOG_INFO, COLL_FACILITY, "loaded %zu logs from %s in %" PRId64 " ms (%s)",
                 st->nlogs, st->data_dir, mono_ms() - t0,
                 clean ? "clean shutdown" : "recovered after an unclean shutdown");
    }
    uint64_t now = uv_now(loop);
    st->next_flush = now + st->cfg.flush_ms;
    st->next_retention = now + st->cfg.retention_check_ms;
    st->next_ckpt = now; /* the recovery points moved: record them soon */
    st->next_idle = now + (st->cfg.segment_idle_ms < 1000 ? st->cfg.segment_idle_ms : 1000);
    st->next_clean = now + st->cfg.cleaner_backoff_ms;
    reserve_take(st);
    uv_timer_start(&st->tick, tick_cb, st->cfg.tick_ms, st->cfg.tick_ms);
    uv_unref((uv_handle_t *)&st->tick);
    *out = st;
    return 0;
fail:
    /* Work may have been queued while loading: let close collect it. */
    st->closing = CLOSE_FINISH;
    st->close_status = rc;
    st->close_cb = NULL;
    if (st->pending == 0) {
        close_step(st);
    }
    return rc;
}

int coll_storage_create_log(coll_storage_t *st, const char *topic, int32_t partition,
                            const coll_log_config_t *cfg, const uint8_t *topic_id, coll_log_t **out,
                            trib_error_t *err)
{
    if (st->closing) {
        return trib_error_set(err, TRIB_ESTATE, "storage is closing");
    }
    if (!valid_topic(topic) || partition < 0) {
        return trib_error_set(err, -EINVAL, "invalid topic partition '%s-%d'", topic,
                              (int)partition);
    }
    if (!cfg) {
        cfg = &st->cfg.log_defaults;
    }
    if (coll_log_config_check(cfg) != 0) {
        return trib_error_set(err, -EINVAL, "%s-%d: invalid log settings", topic, (int)partition);
    }
    if (coll_storage_get_log(st, topic, partition, out) == 0) {
        return 0;
    }
    coll_log_t *log = coll_log_alloc(st, topic, partition, cfg);
    if (!log) {
        return trib_error_set(err, -ENOMEM, "out of memory");
    }
    int rc = 0;
    if (mkdir(log->dir, 0755) != 0 && errno != EEXIST) {
        rc = trib_error_set(err, -errno, "%s: %s", log->dir, strerror(errno));
        coll_log_free(log);
        return rc;
    }
    log->parent_dir_dirty = true;
    coll_segment_t *s;
    if ((rc = coll_segment_create(log, 0, &s)) != 0) {
        rc = trib_error_set(err, rc, "%s: creating a segment: %s", log->dir, trib_strerror(rc));
        coll_log_free(log);
        return rc;
    }
    if ((rc = coll_log_push_segment(log, s)) != 0 || (rc = table_insert(st, log)) != 0) {
        if (log->nsegs == 0) {
            coll_segment_free(s);
        }
        coll_log_free(log);
        return trib_error_set(err, rc, "out of memory");
    }
    if (topic_id) {
        memcpy(log->topic_id, topic_id, 16);
        log->has_topic_id = true;
        char *content, *path;
        size_t len;
        size_t plen = strlen(log->dir) + sizeof(COLL_METADATA_FILE) + 2;
        if (coll_metadata_format(topic_id, &content, &len) == 0) {
            path = malloc(plen);
            if (path) {
                snprintf(path, plen, "%s/%s", log->dir, COLL_METADATA_FILE);
                coll_storage_write_file(st, path, content, len, NULL, NULL);
            } else {
                free(content);
            }
        }
    }
    TRIB_LOG(TRIB_LOG_INFO, COLL_FACILITY, "created log %s", log->name);
    *out = log;
    return 0;
}

/* ---- close --------------------------------------------------------------------------------- */

static void handle_closed(uv_handle_t *h)
{
    coll_storage_t *st = h->data;
    if (--st->handles_open > 0) {
        return;
    }
    coll_storage_close_cb cb = st->close_cb;
    void *arg = st->close_arg;
    int status = st->close_status;
    free_storage(st);
    if (cb) {
        cb(arg, status);
    }
}

static void final_files_done(void *arg, int status)
{
    coll_storage_t *st = arg;
    if (status == -ENOSPC || status == -EDQUOT) {
        /*
         * Every log is fsynced already: only the checkpoints are missing,
         * so the next start recovers from the older ones. That is a
         * slower start, not a failed stop.
         */
        TRIB_LOG(TRIB_LOG_WARN, COLL_FACILITY,
                 "checkpoints not written at close: %s; the next start recovers the logs",
                 trib_strerror(status));
        st->close_no_marker = true;
    } else if (status && !st->close_status) {
        st->close_status = status;
    }
}

/* Queues a file job made by close; the job is freed on failure. */
static int queue_close_job(coll_storage_t *st, file_job_t *job)
{
    int rc = coll_storage_queue(st, &job->req, file_work, file_after);
    if (rc) {
        file_job_free(job);
    }
    return rc;
}

static file_job_t *new_close_job(coll_storage_t *st)
{
    file_job_t *job = calloc(1, sizeof(*job));
    if (job) {
        job->req.data = job;
        job->st = st;
        job->done = final_files_done;
        job->arg = st;
    }
    return job;
}

/* Phase 3: checkpoints with recovery points at the log ends, dirty epoch files. */
static int persist_files(coll_storage_t *st)
{
    file_job_t *job = new_close_job(st);
    if (!job) {
        return -ENOMEM;
    }
    int rc = build_checkpoints(st, job, true);
    for (size_t i = 0; rc == 0 && i < st->nbuckets; i++) {
        for (coll_log_t *l = st->buckets[i]; l && rc == 0; l = l->hnext) {
            if (!l->epoch_dirty) {
                continue;
            }
            if (job->n == MAX_FILES) {
                rc = queue_close_job(st, job);
                job = rc ? NULL : new_close_job(st);
                if (!job) {
                    return rc ? rc : -ENOMEM;
                }
            }
            size_t plen = strlen(l->dir) + sizeof(COLL_EPOCH_FILE) + 2;
            char *path = malloc(plen);
            char *content = NULL;
            size_t len;
            if (!path || coll_epoch_format(&l->epochs, &content, &len) != 0) {
                free(path);
                rc = -ENOMEM;
                break;
            }
            snprintf(path, plen, "%s/%s", l->dir, COLL_EPOCH_FILE);
            job->path[job->n] = path;
            job->content[job->n] = content;
            job->len[job->n++] = len;
            l->epoch_dirty = false;
        }
    }
    if (rc) {
        file_job_free(job);
        return rc;
    }
    return queue_close_job(st, job);
}

static void close_step(coll_storage_t *st)
{
    if (st->pending > 0) {
        return;
    }
    if (st->closing == CLOSE_DRAIN) {
        st->closing = CLOSE_FLUSH;
        for (size_t i = 0; i < st->nbuckets; i++) {
            for (coll_log_t *l = st->buckets[i]; l; l = l->hnext) {
                if (l->failed) {
                    coll_flush_fail_all(l, l->failed);
                    continue;
                }
                coll_segment_t *act = coll_log_active(l);
                if (act->active) {
                    /* The active segment closes: trimmed indexes, final time entry. */
                    int rc = coll_segment_deactivate(act);
                    if (rc) {
                        TRIB_LOG(TRIB_LOG_WARN, COLL_FACILITY, "%s: trimming indexes: %s", l->name,
                                 trib_strerror(rc));
                    }
                }
                int rc = coll_flush_start(l, false);
                if (rc && !st->close_status) {
                    st->close_status = rc;
                }
            }
        }
        if (st->pending > 0) {
            return;
        }
    }
    if (st->closing == CLOSE_FLUSH) {
        st->closing = CLOSE_PERSIST;
        int rc = persist_files(st);
        if (rc && !st->close_status) {
            st->close_status = rc;
        }
        if (st->pending > 0) {
            return;
        }
    }
    if (st->closing == CLOSE_PERSIST) {
        st->closing = CLOSE_MARKER;
        bool all_ok = st->close_status == 0 && !st->close_no_marker;
        for (size_t i = 0; i < st->nbuckets; i++) {
            for (coll_log_t *l = st->buckets[i]; l; l = l->hnext) {
                all_ok &= !l->failed;
            }
        }
        /* Only once everything else is on disk may the next start skip recovery. */
        if (all_ok) {
            file_job_t *job = new_close_job(st);
            int rc = job ? 0 : -ENOMEM;
            if (job) {
                job->marker = true;
                rc = queue_close_job(st, job);
            }
            if (rc && !st->close_status) {
                st->close_status = rc;
            }
            if (st->pending > 0) {
                return;
            }
        }
    }
    if (st->closing == CLOSE_MARKER) {
        st->closing = CLOSE_FINISH;
    }
    if (st->closing == CLOSE_FINISH) {
        st->closing = CLOSE_DONE;
        for (size_t i = 0; i < st->nbuckets; i++) {
            for (coll_log_t *l = st->buckets[i]; l; l = l->hnext) {
                coll_flush_fail_all(l, -ECANCELED);
            }
        }
        /* Run the callbacks still queued, then close the handles. */
        while (st->ready) {
            idle_cb(&st->idle);
        }
        uv_timer_stop(&st->tick);
        uv_idle_stop(&st->idle);
        uv_close((uv_handle_t *)&st->tick, handle_closed);
        uv_close((uv_handle_t *)&st->idle, handle_closed);
    }
}

int coll_storage_close(coll_storage_t *st, coll_storage_close_cb cb, void *arg)
{
    if (st->closing) {
        return TRIB_ESTATE;
    }
    st->closing = CLOSE_DRAIN;
    st->close_cb = cb;
    st->close_arg = arg;
    uv_timer_stop(&st->tick);
    close_step(st);
    return 0;
}

int16_t coll_kafka_error_from(int rc)
{
    switch (rc) {
    case 0:
        return TRIB_KAFKA_NONE;
    case -ERANGE:
        return TRIB_KAFKA_OFFSET_OUT_OF_RANGE;
    case TRIB_ETOO_LARGE:
        return TRIB_KAFKA_MESSAGE_TOO_LARGE;
    case TRIB_ECRC:
    case TRIB_EMALFORMED:
    case TRIB_ETRUNCATED:
    case TRIB_EUNSUPPORTED_VERSION:
        return TRIB_KAFKA_CORRUPT_MESSAGE;
    case TRIB_ENOT_FOUND:
        return TRIB_KAFKA_UNKNOWN_TOPIC_OR_PARTITION;
    case -EROFS:
    case -EIO:
    case -ENOSPC:
    case -EDQUOT:
        return TRIB_KAFKA_KAFKA_STORAGE_ERROR;
    case -ECANCELED:
        return TRIB_KAFKA_NOT_LEADER_OR_FOLLOWER;
    case TRIB_ESTATE:
        return TRIB_KAFKA_BROKER_NOT_AVAILABLE;
    default:
        return TRIB_KAFKA_UNKNOWN_SERVER_ERROR;
    }
}
