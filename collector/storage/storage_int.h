/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Private structures of the log engine, shared by its files:
 *
 *   checkpoint.c  Kafka's text files (offset checkpoints, leader epochs,
 *                 partition.metadata) and atomic file replacement
 *   epoch.c       the leader epoch cache
 *   index.c       .index / .timeindex files
 *   segment.c     one .log file: append, scan, recover, lookups, truncate
 *   log.c         a partition log: segments, append/read, retention, truncation
 *   flush.c       group commit, durability waits, background fsync
 *   cleaner.c     compaction
 *   storage.c     the data directory: startup, timers, fds, checkpoints, close
 *
 * Ownership and lifetimes. The storage owns its logs; a log owns its
 * segment array. A segment is reference counted: the log's array holds no
 * reference, but a read result, a flush job or a compaction job each hold
 * one while they use the segment's fd. A segment removed from the array
 * (retention, truncation, compaction swap) is marked deleted, its files
 * are renamed to "*.deleted" at once, and when its last reference goes the
 * thread pool unlinks the files and closes the fd — so a sendfile in
 * progress keeps reading the old bytes, and the loop never waits for an
 * unlink (which frees blocks) or a close of the last link.
 *
 * Every uv_work_t goes through coll_storage_queue() so the storage knows
 * how much background work is in flight; close waits for it to drain.
 */
#ifndef COLLECTOR_STORAGE_INT_H
#define COLLECTOR_STORAGE_INT_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "storage/storage.h"
#include "tributary/log.h"
#include "tributary/fileio.h" /* trib_pwrite_all, trib_pread_all, trib_fsync_dir, trib_write_file_atomic, trib_mkdirs_durable */

#define COLL_FACILITY "storage"

/* File name suffixes. */
#define COLL_LOG_SUFFIX ".log"
#define COLL_INDEX_SUFFIX ".index"
#define COLL_TIMEINDEX_SUFFIX ".timeindex"
#define COLL_DELETED_SUFFIX ".deleted"
#define COLL_CLEANED_SUFFIX ".cleaned"
#define COLL_SWAP_SUFFIX ".swap"
#define COLL_EPOCH_FILE "leader-epoch-checkpoint"
#define COLL_METADATA_FILE "partition.metadata"
#define COLL_CLEAN_SHUTDOWN_FILE ".kafka_cleanshutdown"
#define COLL_RECOVERY_POINT_FILE "recovery-point-offset-checkpoint"
#define COLL_REPLICATION_FILE "replication-offset-checkpoint"
#define COLL_LOG_START_FILE "log-start-offset-checkpoint"
#define COLL_CLEANER_FILE "cleaner-offset-checkpoint"

#define COLL_OFFSET_ENTRY_SIZE 8
#define COLL_TIME_ENTRY_SIZE 12
#define COLL_PATH_MAX 4096

/* ---- checkpoint.c ---------------------------------------------------------- */

typedef struct coll_ckpt_entry {
    char *topic;
    int32_t partition;
    int64_t offset;
} coll_ckpt_entry_t;

typedef struct coll_ckpt {
    coll_ckpt_entry_t *v;
    size_t n, cap;
} coll_ckpt_t;

void coll_ckpt_init(coll_ckpt_t *c);
void coll_ckpt_fini(coll_ckpt_t *c);
int coll_ckpt_add(coll_ckpt_t *c, const char *topic, int32_t partition, int64_t offset);
/* -1 when absent. */
int64_t coll_ckpt_get(const coll_ckpt_t *c, const char *topic, int32_t partition);
/* Parses an offset checkpoint file; a missing file is an empty checkpoint. */
int coll_ckpt_read(coll_ckpt_t *c, const char *path, trib_error_t *err);
/* Formats into a malloc'd buffer. */
int coll_ckpt_format(const coll_ckpt_t *c, char **out, size_t *len);

/* partition.metadata */
int coll_metadata_format(const uint8_t topic_id[16], char **out, size_t *len);
int coll_metadata_read(const char *path, uint8_t topic_id[16], trib_error_t *err);

/* ---- epoch.c --------------------------------------------------------------- */

typedef struct coll_epoch_entry {
    int32_t epoch;
    int64_t start_offset;
} coll_epoch_entry_t;

typedef struct coll_epoch_cache {
    coll_epoch_entry_t *v;
    size_t n, cap;
} coll_epoch_cache_t;

void coll_epoch_init(coll_epoch_cache_t *c);
void coll_epoch_fini(coll_epoch_cache_t *c);
int32_t coll_epoch_latest(const coll_epoch_cache_t *c);
/* Records that `epoch` starts at `start`; returns 1 if the cache changed. */
int coll_epoch_assign(coll_epoch_cache_t *c, int32_t epoch, int64_t start);
/* Drops entries starting at or after `end`; returns 1 if changed. */
int coll_epoch_truncate_end(coll_epoch_cache_t *c, int64_t end);
/* Drops entries wholly before `start`, moving the survivor's start up; 1 if changed. */
int coll_epoch_truncate_start(coll_epoch_cache_t *c, int64_t start);
void coll_epoch_clear(coll_epoch_cache_t *c);
void coll_epoch_end_offset(const coll_epoch_cache_t *c, int32_t epoch, int64_t log_end,
                           int32_t *found_epoch, int64_t *end_offset);
int coll_epoch_format(const coll_epoch_cache_t *c, char **out, size_t *len);
int coll_epoch_read(coll_epoch_cache_t *c, const char *path, trib_error_t *err);

/* ---- index.c --------------------------------------------------------------- */

typedef struct coll_index {
    uint8_t *map; /* NULL when not mapped */
    size_t map_len;
    uint32_t entries;  /* valid entries */
    uint32_t capacity; /* entries the mapping can hold */
    uint8_t entry_size;
    bool writable;
    size_t backed; /* writable: bytes from 0 known to have disk blocks (see index.c) */
} coll_index_t;

void coll_index_init(coll_index_t *ix, unsigned entry_size);
/* Maps an index file read-only; entries = file size / entry size. */
int coll_index_map_ro(coll_index_t *ix, const char *path);
/*
 * Maps an index file read-write for the active segment, keeping its first
 * `entries` entries and sizing it (sparse) to prealloc bytes. Appends
 * only store where blocks are known to exist (see index.c).
 */
int coll_index_map_rw(coll_index_t *ix, const char *path, uint32_t entries, size_t prealloc);
/* True when the next `more` entries already have disk blocks. */
bool coll_index_backed_for(const coll_index_t *ix, uint32_t more);
/*
 * Gives the next `more` entries disk blocks (posix_fallocate on path, the
 * mapped file), so appending them cannot fault. 0, or -ENOSPC / -EDQUOT /
 * -errno with nothing changed.
 */
int coll_index_reserve(coll_index_t *ix, const char *path, uint32_t more);
void coll_index_unmap(coll_index_t *ix);
/* Unmaps and truncates the file to its valid entries. */
int coll_index_trim(coll_index_t *ix, const char *path);
bool coll_index_full(const coll_index_t *ix, uint32_t more);

/* Offset index: 4-byte relative offset, 4-byte position. */
int coll_oindex_append(coll_index_t *ix, uint32_t rel, uint32_t pos);
void coll_oindex_entry(const coll_index_t *ix, uint32_t i, uint32_t *rel, uint32_t *pos);
/* Largest entry with rel offset <= rel; false when none (start at 0). */
bool coll_oindex_lookup(const coll_index_t *ix, uint32_t rel, uint32_t *erel, uint32_t *epos);
/* Largest entry with position <= pos and rel offset < max_rel; false when none. */
bool coll_oindex_lookup_pos(const coll_index_t *ix, uint32_t pos, uint32_t max_rel, uint32_t *erel,
                            uint32_t *epos);
/* Drops entries with rel offset >= rel. */
void coll_oindex_truncate(coll_index_t *ix, uint32_t rel);

/* Time index: 8-byte timestamp, 4-byte relative offset. */
int coll_tindex_append(coll_index_t *ix, int64_t ts, uint32_t rel);
void coll_tindex_entry(const coll_index_t *ix, uint32_t i, int64_t *ts, uint32_t *rel);
/* Largest entry with timestamp < ts; false when none. */
bool coll_tindex_lookup(const coll_index_t *ix, int64_t ts, int64_t *ets, uint32_t *erel);
void coll_tindex_truncate(coll_index_t *ix, uint32_t rel);

/*
 * Checks an index file against its segment: whole entries, increasing
 * offsets (and positions / timestamps), everything inside the segment.
 * 0 when sane, TRIB_EMALFORMED (with the reason in *why) otherwise; a
 * missing file is -ENOENT. On success the last time-index entry is
 * returned through last_ts/last_rel (time index only).
 */
int coll_index_check(const char *path, unsigned entry_size, uint64_t seg_size, const char **why,
                     int64_t *last_ts, uint32_t *last_rel, uint32_t *last_pos);
/* Writes a whole index file from memory (rebuilds, cleaned segments). */
int coll_index_write_file(const char *path, const void *entries, size_t len, bool sync);

/* A growable in-memory index, used while scanning or compacting. */
typedef struct coll_index_builder {
    uint8_t *oi;
    size_t oi_len, oi_cap;
    uint8_t *ti;
    size_t ti_len, ti_cap;
    uint64_t last_index_pos;
    bool have_entry;
    int64_t max_ts;
    int64_t max_ts_offset;
    int64_t last_ti_ts;
    uint32_t interval;
    int err;
} coll_index_builder_t;

void coll_index_builder_init(coll_index_builder_t *b, uint32_t interval);
void coll_index_builder_fini(coll_index_builder_t *b);
/* Accounts one batch at position pos, as an append would. */
void coll_index_builder_add(coll_index_builder_t *b, int64_t base, uint64_t pos, uint32_t size,
                            int64_t last_offset, int64_t max_ts);
/* The final time-index entry of a closed segment. */
void coll_index_builder_finish(coll_index_builder_t *b, int64_t base);

/* ---- segment.c ------------------------------------------------------------- */

/* What a scan sees of one batch (the header only). */
typedef struct coll_batch_hdr {
    uint64_t pos;
    uint32_t size; /* whole batch */
    int64_t base_offset;
    int64_t last_offset;
    int32_t leader_epoch;
    int16_t attributes;
    int32_t record_count;
    int64_t base_timestamp;
    int64_t max_timestamp;
} coll_batch_hdr_t;

/* Reads batch headers sequentially through a small buffer (few preads). */
typedef struct coll_scan {
    int fd;
    uint64_t pos; /* next batch */
    uint64_t end; /* stop here */
    uint64_t buf_pos;
    size_t buf_len;
    uint8_t buf[4096];
} coll_scan_t;

void coll_scan_init(coll_scan_t *s, int fd, uint64_t pos, uint64_t end);
/* 1 and a header; 0 at the end; TRIB_ETRUNCATED / TRIB_EMALFORMED / -errno. */
int coll_scan_next(coll_scan_t *s, coll_batch_hdr_t *h);

struct coll_segment {
    coll_log_t *log;
    int64_t base_offset;
    int64_t next_offset;   /* after the last batch (closed: may be the next base) */
    uint64_t size;         /* bytes of valid batches */
    uint64_t synced_size;  /* bytes known to be on disk */
    int64_t max_timestamp; /* -1: none */
    int64_t max_ts_offset;
    int64_t roll_base_ms;    /* first batch's maxTimestamp, -1 when empty */
    int64_t created_ms;      /* wall clock at creation (file mtime when loaded) */
    uint64_t last_index_pos; /* position of the last offset index entry (0: none) */
    int64_t last_ti_ts;      /* timestamp of the last time index entry */
    coll_index_t oi, ti;
    int fd; /* -1 when closed */
    int refs;
    bool active;   /* the log's last segment, writable */
    bool clean;    /* closed, and log + indexes are on disk */
    bool deleted;  /* out of the log; files renamed *.deleted */
    bool cleaning; /* source of a running compaction */
    bool delete_queued;
    int64_t last_used_ms; /* uv_now of the last use */
    coll_segment_t *lru_prev, *lru_next;
    bool in_lru;
};

int coll_segment_path(const coll_log_t *log, int64_t base, const char *suffix, char *out, size_t n);
coll_segment_t *coll_segment_new(coll_log_t *log, int64_t base);
void coll_segment_free(coll_segment_t *s);
/* Creates the files of a new, empty, active segment. */
int coll_segment_create(coll_log_t *log, int64_t base, coll_segment_t **out);
/* Makes a segment the active one: fd open, indexes mapped read-write. */
int coll_segment_activate(coll_segment_t *s);
/* Rolls away from a segment: final time entry, indexes trimmed. */
int coll_segment_deactivate(coll_segment_t *s);
/* Opens the fd (and the indexes of an inactive segment) if closed; marks use. */
int coll_segment_open(coll_segment_t *s);
/* Closes fd and index mappings (inactive, unreferenced segments only). */
void coll_segment_close_files(coll_segment_t *s);
/* Takes a reference, opening the fd; coll_segment_release drops it. */
int coll_segment_acquire(coll_segment_t *s);
void coll_segment_release(coll_segment_t *s);
/* Writes batches at the end; hdrs describe them (positions relative to data). */
int coll_segment_append(coll_segment_t *s, const void *data, size_t len,
                        const coll_batch_hdr_t *hdrs, size_t n);
/*
 * The first batch whose last offset >= offset, starting at the index's
 * hint. 1 and *h; 0 when the segment holds none; negative on error.
 */
int coll_segment_find(coll_segment_t *s, int64_t offset, coll_batch_hdr_t *h);
/* End of a read that starts at `start`; see coll_log_read. */
int coll_segment_read_end(coll_segment_t *s, const coll_batch_hdr_t *first, size_t max_bytes,
                          int64_t max_offset, bool strict, uint64_t *end, int64_t *next);

typedef struct coll_recover_stats {
    uint64_t bytes_scanned;
    uint64_t bytes_truncated;
    uint32_t batches;
    int64_t first_bad_offset; /* -1 */
    const char *why;          /* why the tail was cut */
} coll_recover_stats_t;

/*
 * Scans the whole segment, validates every batch (length, magic, CRC,
 * offsets in order and within the segment), rebuilds both index files and
 * truncates the file at the first invalid batch. Fills size, next_offset,
 * max timestamp and the index state. The caller holds the fd open.
 * epochs, if not NULL, learns the leader epochs it sees.
 */
int coll_segment_recover(coll_segment_t *s, coll_epoch_cache_t *epochs, bool is_last,
                         coll_recover_stats_t *st);

/*
 * Cuts the segment at `offset`: batches whose last offset >= offset go,
 * the indexes are cut to match. Returns the new size through *size.
 */
int coll_segment_truncate_to(coll_segment_t *s, int64_t offset);

/* Reads a whole batch at h->pos into a malloc'd buffer. */
int coll_segment_read_batch(int fd, const coll_batch_hdr_t *h, uint8_t **out);

/* ---- log.c ----------------------------------------------------------------- */

struct coll_log {
    coll_storage_t *st;
    char *topic;
    int32_t partition;
    char *name; /* "<topic>-<partition>" */
    char *dir;
    coll_log_config_t cfg;

    coll_segment_t **segs; /* by base offset; the last one is active */
    size_t nsegs, segs_cap;

    int64_t log_start;
    int64_t hw;
    int64_t durable;          /* every offset below is on disk */
    int64_t cleaner_point;    /* compacted up to here */
    int64_t cleaner_retry_ms; /* after a failed pass, not picked again before this */
    uint64_t gen;             /* bumped by truncation: invalidates jobs in flight */
    int failed;               /* sticky I/O error: the log is offline */
    int write_error;          /* -ENOSPC/-EDQUOT: the last append found the disk full */

    coll_epoch_cache_t epochs;
    bool epoch_dirty, epoch_writing;
    uint8_t topic_id[16];
    bool has_topic_id;

    /* flush.c */
    bool flushing;
    bool flush_again;        /* a full flush is wanted after the running one */
    bool flush_again_closed; /* closed segments want syncing after it */
    bool dir_dirty;          /* a segment file was created or renamed */
    bool parent_dir_dirty;   /* the partition directory itself is new */
    int64_t flush_clamp;     /* truncation point seen while a flush ran */
    coll_durable_req_t *waiters, *waiters_tail;
    bool in_dirty_list;
    coll_log_t *dirty_next;

    /* cleaner.c */
    bool cleaning;
    int64_t tombstone_due_ms; /* earliest delete horizon kept, or INT64_MAX */

    coll_log_t *hnext; /* storage hash chain */

    /* Deletion (storage.c): a zombie is out of the table, waiting to be freed. */
    size_t live_segments; /* segment objects still allocated, in the array or not */
    bool zombie;
    bool dir_removed;
    coll_log_done_cb delete_cb;
    void *delete_arg;
    coll_log_t *zombie_next;
};

coll_log_t *coll_log_alloc(coll_storage_t *st, const char *topic, int32_t partition,
                           const coll_log_config_t *cfg);
void coll_log_free(coll_log_t *log);
static inline coll_segment_t *coll_log_active(const coll_log_t *log)
{
    return log->segs[log->nsegs - 1];
}
int coll_log_push_segment(coll_log_t *log, coll_segment_t *s);
/* Index of the segment holding offset (floor by base); 0 if below all. */
size_t coll_log_segment_index(const coll_log_t *log, int64_t offset);
/* Removes segs[i .. i+n) from the log and schedules their deletion. */
void coll_log_remove_segments(coll_log_t *log, size_t i, size_t n, const char *reason);
/* The retention pass of one log; returns segments deleted. */
size_t coll_log_enforce_retention(coll_log_t *log, int64_t now_ms);
/* Recovery point: durable, but not past a closed segment that is not yet clean. */
int64_t coll_log_compute_recovery_point(const coll_log_t *log);
void coll_log_mark_epoch_dirty(coll_log_t *log);
int coll_log_roll(coll_log_t *log, int64_t new_base);
/* Frees a deleted log once nothing refers to it any more (calls its callback). */
void coll_log_maybe_reap(coll_log_t *log);

/* Loads an existing partition directory (startup). */
int coll_log_load(coll_storage_t *st, const char *topic, int32_t partition, bool clean_shutdown,
                  int64_t recovery_point, int64_t log_start, int64_t hw, int64_t cleaner_point,
                  coll_log_t **out, trib_error_t *err);

/* ---- flush.c --------------------------------------------------------------- */

/* Starts a flush if anything is dirty; `closing` also syncs trimmed active indexes. */
int coll_flush_start(coll_log_t *log, bool closed_only);
/* Fails waiters above `offset` (after truncation). */
void coll_flush_cancel_above(coll_log_t *log, int64_t offset, int status);
/* Completes every waiter with status (close, failure). */
void coll_flush_fail_all(coll_log_t *log, int status);
void coll_flush_mark_dirty(coll_log_t *log);

/* ---- cleaner.c ------------------------------------------------------------- */

/* Dirty ratio of a compacted log; -1 when nothing is cleanable. */
/* A log whose compaction failed waits this many cleaner backoffs before the next try. */
#define COLL_CLEANER_RETRY_FACTOR 10

double coll_cleaner_dirty_ratio(coll_log_t *log, int64_t now_ms);
/* Starts a pass (cb may be NULL). */
int coll_cleaner_start(coll_log_t *log, coll_log_done_cb cb, void *arg);

/* ---- storage.c ------------------------------------------------------------- */

/* Phases of coll_storage_close (storage.c). */
enum {
    CLOSE_DRAIN = 1,   /* background work finishes */
    CLOSE_FLUSH = 2,   /* every log fsync'd, active indexes trimmed */
    CLOSE_PERSIST = 3, /* checkpoints and epoch files written */
    CLOSE_MARKER = 4,  /* .kafka_cleanshutdown written */
    CLOSE_FINISH = 5,  /* handles closing */
    CLOSE_DONE = 6,
};

struct coll_storage {
    uv_loop_t *loop;
    coll_storage_config_t cfg;
    char *data_dir;

    coll_log_t **buckets;
    size_t nbuckets, nlogs;

    uv_timer_t tick;
    uv_idle_t idle;
    coll_durable_req_t *ready, *ready_tail; /* waits already satisfied */

    /* LRU of inactive segments with an open fd: head = most recent. */
    coll_segment_t *lru_head, *lru_tail;
    size_t open_segments;

    coll_log_t *dirty_head; /* logs with unflushed data (interval policy) */
    coll_log_t *zombies;    /* deleted logs not freed yet */

    size_t pending; /* uv_work_t in flight */
    coll_storage_stats_t stats;
    uint64_t next_flush, next_retention, next_ckpt, next_idle, next_clean;
    bool ckpt_writing, ckpt_again;
    char *ckpt_last[4]; /* content last written to each checkpoint file */
    size_t ckpt_last_len[4];
    bool cleaner_busy;
    trib_log_ratelimit_t rl_cleaner;

    /* A full disk (log.c): rate-limited lines, and a probe for space (storage.c). */
    trib_log_ratelimit_t append_rl, file_rl;
    bool disk_full;       /* some log has write_error set */
    uint64_t next_probe;  /* loop time of the next statvfs while disk_full */
    bool close_no_marker; /* close could not write its checkpoints (disk full) */
    bool reserve_short;   /* .space-reserve is not (wholly) held */
    uint64_t next_reserve;

    int closing; /* 0, or the close phase */
    int close_status;
    coll_storage_close_cb close_cb;
    void *close_arg;
    int handles_open;
};

int64_t coll_storage_now(const coll_storage_t *st);
/* Queues work on the loop's thread pool, counted in pending. */
int coll_storage_queue(coll_storage_t *st, uv_work_t *req, uv_work_cb work, uv_after_work_cb after);
/* Every after-work callback calls this last. */
void coll_storage_work_done(coll_storage_t *st);
/* Queues a durability callback to run from the loop soon. */
void coll_storage_defer(coll_storage_t *st, coll_durable_req_t *req, int status);
/* Fd accounting for inactive segments. */
void coll_storage_lru_touch(coll_storage_t *st, coll_segment_t *s);
void coll_storage_lru_remove(coll_storage_t *st, coll_segment_t *s);
/* Writes a file atomically on the thread pool; the content is taken. */
int coll_storage_write_file(coll_storage_t *st, char *path, char *content, size_t len,
                            void (*done)(void *arg, int status), void *arg);
/* Queues the deletion (unlink, close, free) of an unreferenced deleted segment. */
void coll_storage_delete_segment(coll_storage_t *st, coll_segment_t *s);
/* Counts a failed append (and notes a full disk) under its reason; logs it rate-limited. */
void coll_storage_append_failed(coll_storage_t *st, coll_log_t *log, size_t len, int rc);
/* The log took an append again after a full disk. */
void coll_storage_append_resumed(coll_storage_t *st, coll_log_t *log);

static inline uint32_t coll_rd32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static inline uint64_t coll_rd64(const uint8_t *p)
{
    return ((uint64_t)coll_rd32(p) << 32) | coll_rd32(p + 4);
}

static inline void coll_wr32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static inline void coll_wr64(uint8_t *p, uint64_t v)
{
    coll_wr32(p, (uint32_t)(v >> 32));
    coll_wr32(p + 4, (uint32_t)v);
}

#endif
