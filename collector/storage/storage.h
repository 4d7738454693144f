/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The collector's log engine: partition logs in Kafka's on-disk layout.
 *
 * One coll_storage_t owns one data directory and every partition log in
 * it; it runs on one libuv loop and uses that loop's thread pool for
 * everything that may block for long (fdatasync, unlink, compaction,
 * checkpoint writes). A coll_log_t is one partition:
 *
 *   <data_dir>/
 *     recovery-point-offset-checkpoint   \
 *     replication-offset-checkpoint       |  "0\n<count>\n<topic> <partition> <offset>\n..."
 *     log-start-offset-checkpoint         |  written atomically (tmp, fsync, rename, fsync dir)
 *     cleaner-offset-checkpoint          /
 *     .kafka_cleanshutdown               present only between a clean close and the next open
 *     <topic>-<partition>/
 *       00000000000000000000.log         record batches exactly as received
 *       00000000000000000000.index       sparse offset index, 8-byte entries
 *       00000000000000000000.timeindex   sparse time index, 12-byte entries
 *       00000000000000368769.log         the next segment, named by its base offset ...
 *       leader-epoch-checkpoint          "0\n<count>\n<epoch> <start offset>\n..."
 *       partition.metadata               "version: 0\ntopic_id: <base64 uuid>\n"
 *
 * The byte layouts are drawn in index.c, segment.c and checkpoint.c.
 *
 * Threading: every function here must be called on the storage's loop
 * thread. Callbacks run on that thread too. Functions return 0 or a
 * negative error (-errno or TRIB_E*); the ones that take a callback never
 * call it when they return an error, and never call it before returning.
 *
 * Errors specific to the log:
 *   -ERANGE     an offset outside [log start, log end] (Kafka's
 *               OFFSET_OUT_OF_RANGE), or past the high watermark where the
 *               operation needs committed data
 *   -ECANCELED  a durability wait whose offset was truncated away, or the
 *               storage closed before it could be satisfied
 *   -EROFS      the log failed an I/O operation earlier (write or fsync
 *               error) and refuses writes, as Kafka takes a log offline
 *   TRIB_ETOO_LARGE  a batch above max.message.bytes
 *   TRIB_ECRC / TRIB_EMALFORMED / TRIB_ETRUNCATED  invalid batches
 */
#ifndef COLLECTOR_STORAGE_H
#define COLLECTOR_STORAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <uv.h>

#include "tributary/error.h"

typedef struct coll_storage coll_storage_t;
typedef struct coll_log coll_log_t;
typedef struct coll_segment coll_segment_t;

/* Completion of an operation on a log (compaction, deletion). */
typedef void (*coll_log_done_cb)(coll_log_t *log, void *arg, int status);

/* ---- configuration ------------------------------------------------------- */

/* storage.fsync */
typedef enum coll_fsync_policy {
    COLL_FSYNC_ACK = 0,      /* group commit: fsync before acks=all is answered */
    COLL_FSYNC_INTERVAL = 1, /* every flush_ms */
    COLL_FSYNC_NEVER = 2,    /* page cache only; replication protects */
} coll_fsync_policy_t;

/* cleanup.policy bits: "delete", "compact", or "compact,delete". */
#define COLL_CLEANUP_DELETE 0x1
#define COLL_CLEANUP_COMPACT 0x2

/*
 * Per-log settings, named after Kafka's topic configs so the broker can map
 * a topic's configuration onto them. -1 means "no limit" where noted.
 */
typedef struct coll_log_config {
    uint64_t segment_bytes;           /* segment.bytes: roll past this (1 GiB; <= 2 GiB - 1) */
    int64_t segment_ms;               /* segment.ms: roll a segment this old (7 days) */
    uint32_t segment_index_bytes;     /* segment.index.bytes: index preallocation (10 MiB) */
    int64_t retention_bytes;          /* retention.bytes: -1 = unlimited (default) */
    int64_t retention_ms;             /* retention.ms: 7 days; -1 = forever */
    unsigned cleanup_policy;          /* cleanup.policy: COLL_CLEANUP_* (delete) */
    int64_t delete_retention_ms;      /* delete.retention.ms: tombstones kept (1 day) */
    int64_t min_compaction_lag_ms;    /* min.compaction.lag.ms (0) */
    double min_cleanable_dirty_ratio; /* min.cleanable.dirty.ratio (0.5) */
    uint32_t max_message_bytes;       /* max.message.bytes: largest batch (1048588) */
    uint32_t index_interval_bytes;    /* index.interval.bytes (4096) */
} coll_log_config_t;

void coll_log_config_init(coll_log_config_t *c);
/* 0, or -EINVAL for a value out of range. */
int coll_log_config_check(const coll_log_config_t *c);

/*
 * Storage-wide settings (the collector's `storage:` section). The clock
 * is the wall clock in milliseconds; tests replace it.
 */
typedef struct coll_storage_config {
    const char *data_dir;            /* storage.data_dir; created if missing */
    coll_fsync_policy_t fsync;       /* storage.fsync: ack */
    uint32_t flush_ms;               /* storage.flush_ms: interval policy period (1000) */
    uint32_t checkpoint_interval_ms; /* recovery point / log start / HW files (5000) */
    uint32_t retention_check_ms;     /* log.retention.check.interval.ms (300000) */
    uint32_t cleaner_backoff_ms;     /* log.cleaner.backoff.ms (15000) */
    uint64_t cleaner_dedupe_bytes;   /* log.cleaner.dedupe.buffer.size (128 MiB) */
    uint32_t max_open_segments;      /* inactive segments whose fds stay open (256) */
    uint32_t segment_idle_ms;        /* close an inactive segment unused this long (60000) */
    uint32_t tick_ms;                /* housekeeping timer period (100) */
    uint64_t space_reserve_bytes;    /* <data_dir>/.space-reserve, see storage.c (0: none) */
    coll_log_config_t log_defaults;  /* for new logs without a config */
    /*
     * Called at startup for every log found on disk, to fill its config
     * (the topic's, as the cluster metadata knows it); NULL, or a non-zero
     * return, means log_defaults.
     */
    int (*log_config)(void *arg, const char *topic, int32_t partition, coll_log_config_t *out);
    void *log_config_arg;
    int64_t (*clock_ms)(void *arg); /* NULL: CLOCK_REALTIME */
    void *clock_arg;
} coll_storage_config_t;

void coll_storage_config_init(coll_storage_config_t *c);

/* ---- the storage ---------------------------------------------------------- */

/*
 * Opens (creating if needed) the data directory and every partition log in
 * it, recovering each past its recovery point: batches are validated
 * (length, CRC, offsets), indexes rebuilt, torn or corrupt tails cut, with
 * a log line for every cut and progress lines for long recoveries. This
 * runs synchronously: it is startup, before the loop serves anything.
 * The storage's timer does not keep the loop alive (it is unref'd).
 */
int coll_storage_open(uv_loop_t *loop, const coll_storage_config_t *cfg, coll_storage_t **out,
                      trib_error_t *err);

typedef void (*coll_storage_close_cb)(void *arg, int status);

/*
 * Closes the storage: waits for background work, fsyncs every log, trims
 * the active indexes, writes the checkpoints and the clean-shutdown
 * marker, frees everything and calls cb (status 0, or the first error,
 * in which case no clean-shutdown marker was written). Pending durability
 * waits complete before cb. Read results must have been released.
 */
int coll_storage_close(coll_storage_t *st, coll_storage_close_cb cb, void *arg);

/* The open log for (topic, partition); TRIB_ENOT_FOUND if there is none. */
int coll_storage_get_log(coll_storage_t *st, const char *topic, int32_t partition,
                         coll_log_t **out);

/*
 * Opens the log for (topic, partition), creating its directory and first
 * segment when it does not exist (an existing log is returned as it is:
 * use coll_log_set_config to change it). cfg NULL means the storage's
 * defaults; topic_id (16 bytes) is written to partition.metadata when
 * given. Topic names follow Kafka's rules: [a-zA-Z0-9._-], 1..249
 * characters. The new directory entries are fsync'd by the log's first
 * flush (or the next checkpoint write), never here.
 */
int coll_storage_create_log(coll_storage_t *st, const char *topic, int32_t partition,
                            const coll_log_config_t *cfg, const uint8_t *topic_id, coll_log_t **out,
                            trib_error_t *err);

/*
 * Deletes a partition log (DeleteTopics): it leaves the storage at once (a
 * new log of the same name may be created right away), durability waits
 * fail with -ECANCELED, its directory is renamed
 * "<topic>-<partition>.<32 hex>-delete" (as Kafka names it) and removed on
 * the thread pool. The caller must not use the log again, except that read
 * results it holds stay valid until released. cb (may be NULL) runs once
 * the log's memory is released: background work on it finished, every
 * segment let go, the directory removed. Directories ending in "-delete"
 * that a crash left behind are removed at the next open.
 */
int coll_storage_delete_log(coll_storage_t *st, coll_log_t *log, coll_log_done_cb cb, void *arg);

/* Calls fn for every log (in no particular order); fn must not add or remove logs. */
void coll_storage_foreach(coll_storage_t *st, void (*fn)(coll_log_t *log, void *arg), void *arg);
size_t coll_storage_log_count(const coll_storage_t *st);

/* Runs the retention pass over every log now (deletions on the thread pool). */
void coll_storage_enforce_retention(coll_storage_t *st);

/* Writes the data-dir checkpoint files now (on the thread pool). */
int coll_storage_checkpoint(coll_storage_t *st);

/* Why a write failed, for metrics: no_space (ENOSPC, EDQUOT), io (EIO, an offline log), other. */
enum { COLL_WERR_NO_SPACE, COLL_WERR_IO, COLL_WERR_OTHER, COLL_WERR_N };

/* Counters since open, for metrics and tests. */
typedef struct coll_storage_stats {
    uint64_t flushes;       /* flush jobs (each: fdatasyncs covering many appends) */
    uint64_t durable_waits; /* coll_log_wait_durable calls */
    uint64_t segments_rolled;
    uint64_t segments_deleted;
    uint64_t compactions;                /* passes that swapped segments in */
    uint64_t cleaner_unreadable_batches; /* batches compaction kept unread, per pass */
    uint64_t cleaner_failures;           /* passes that failed (the log waits, others go on) */
    size_t open_segments;                /* fds held for inactive segments now */
    size_t pending_jobs;                 /* thread pool jobs in flight now */
    /* Appends that failed writing, by coll_storage_error_reason(). */
    uint64_t append_errors[COLL_WERR_N];
} coll_storage_stats_t;

int coll_storage_error_reason(int rc);
/* "no_space", "io", "other". */
const char *coll_storage_error_reason_name(int reason);

/*
 * Why appends to this log fail now: 0 when they do not; -ENOSPC or -EDQUOT
 * after an append found the disk full, until an append succeeds again or
 * the data directory has COLL_SPACE_RESUME_BYTES free (checked every
 * second); -EROFS when the log is offline after an I/O error (until a
 * restart, as Kafka takes a log directory offline).
 */
int coll_log_write_error(const coll_log_t *log);
#define COLL_SPACE_RESUME_BYTES (1u << 20)

void coll_storage_get_stats(const coll_storage_t *st, coll_storage_stats_t *out);

/* ---- appending ------------------------------------------------------------ */

/* Flags for coll_log_append(). */
#define COLL_APPEND_CRC_VERIFIED 0x1 /* the caller already checked every batch's CRC */
/*
 * A replica's append: base offsets are already assigned (increasing, from
 * the log end on) and leader epochs stamped; nothing is rewritten.
 */
#define COLL_APPEND_FOLLOWER 0x2
/*
 * message.timestamp.type=LogAppendTime: each batch gets the timestamp-type
 * bit and maxTimestamp = the storage clock, and its CRC recomputed (the
 * only rewrite the storage does, 10 bytes per batch, as Kafka's broker).
 */
#define COLL_APPEND_LOG_APPEND_TIME 0x4

typedef struct coll_append_info {
    int64_t base_offset;    /* first offset of the first batch */
    int64_t last_offset;    /* last offset of the last batch */
    int64_t log_end_offset; /* after the append */
    int64_t log_start_offset;
    int64_t max_timestamp; /* the largest maxTimestamp appended */
    int32_t batch_count;
    int64_t log_append_time; /* with COLL_APPEND_LOG_APPEND_TIME, else -1 */
} coll_append_info_t;

/*
 * Appends one or more whole record batches (data[0..len), as a Produce
 * request carries them). As leader, stamps each batch's baseOffset and
 * partitionLeaderEpoch in place (outside the CRC, so data is modified but
 * never re-encoded), writes the bytes as they are, updates the indexes and
 * the leader epoch cache, rolls the segment by size or age first if
 * needed. Nothing is written unless every batch is valid: magic 2, whole
 * (no trailing partial batch), CRC unless COLL_APPEND_CRC_VERIFIED,
 * lastOffsetDelta == recordsCount - 1 for leader appends, at most
 * max.message.bytes. The data reaches the page cache before this returns;
 * durability is coll_log_wait_durable()'s business.
 */
int coll_log_append(coll_log_t *log, void *data, size_t len, int32_t leader_epoch, unsigned flags,
                    coll_append_info_t *info);

/* ---- durability ----------------------------------------------------------- */

typedef struct coll_durable_req coll_durable_req_t;
typedef void (*coll_durable_cb)(coll_durable_req_t *req, int status);

/* Caller-owned; `data` is the caller's. The rest is private. */
struct coll_durable_req {
    void *data;
    coll_durable_req_t *next_;
    coll_log_t *log_;
    int64_t offset_;
    coll_durable_cb cb_;
};

/*
 * Calls cb once every offset <= `offset` is on disk (fdatasync'd, with
 * the directory entries of new segment files). All waits that arrive while
 * no flush runs share the next fdatasync (group commit): one flush on the
 * thread pool covers everything appended before it started. The callback
 * always runs later from the loop, even when the offset is already durable.
 * status: 0, -ECANCELED (truncated away, or the storage closed), or the
 * fsync error (-EIO ...), after which the log refuses writes.
 */
int coll_log_wait_durable(coll_log_t *log, int64_t offset, coll_durable_req_t *req,
                          coll_durable_cb cb);

/* True when every offset <= offset is already durable. */
bool coll_log_is_durable(const coll_log_t *log, int64_t offset);

/* Starts a flush of everything appended so far (no-op if clean); does not wait. */
int coll_log_flush(coll_log_t *log);

/* ---- reading ---------------------------------------------------------------- */

/* Flags for coll_log_read(). */
#define COLL_READ_STRICT 0x1 /* never return more than max_bytes, even one batch */

/*
 * A read result: a byte range of one segment file holding whole batches,
 * for sendfile(fd, ..., pos, len) or coll_read_copy(). It holds a
 * reference on the segment (its fd stays valid even if retention deletes
 * it meanwhile) until coll_read_release().
 */
typedef struct coll_read {
    int fd;
    uint64_t pos;
    size_t len;           /* 0: nothing to read (at the end, or above max_offset) */
    int64_t first_offset; /* base offset of the first batch returned */
    int64_t next_offset;  /* offset after the last batch returned */
    int64_t log_start_offset;
    int64_t high_watermark;
    int64_t log_end_offset;
    bool segment_end;     /* the range ends where its segment ends: more may follow in the next */
    coll_segment_t *seg_; /* private */
} coll_read_t;

/*
 * Reads whole batches starting with the one that holds `offset`, from one
 * segment: as many as fit in max_bytes (at least one, however large,
 * unless COLL_READ_STRICT), only batches whose base offset is below
 * max_offset (pass the high watermark for consumers, or INT64_MAX / the
 * log end for replicas). -ERANGE when offset is below the log start or
 * above the log end; offset == log end gives an empty result.
 */
int coll_log_read(coll_log_t *log, int64_t offset, size_t max_bytes, int64_t max_offset,
                  unsigned flags, coll_read_t *out);

/*
 * Copies n bytes from `at` within the result into dst (pread; for TLS
 * connections and in-process readers). Returns bytes copied (n unless the
 * file was truncated meanwhile) or a negative errno.
 */
ssize_t coll_read_copy(const coll_read_t *r, size_t at, void *dst, size_t n);

/* Drops the segment reference; safe on an empty or released result. */
void coll_read_release(coll_read_t *r);

/*
 * Offset lookup by timestamp (ListOffsets): the first offset at or after
 * the log start whose record timestamp is >= ts, and that timestamp.
 * TRIB_ENOT_FOUND when no record is that recent.
 */
int coll_log_offset_for_timestamp(coll_log_t *log, int64_t ts, int64_t *offset, int64_t *timestamp);

/*
 * ListOffsets MAX_TIMESTAMP (-3, KIP-734): the offset and timestamp of the
 * first record with the largest timestamp at or after the log start.
 * TRIB_ENOT_FOUND for an empty log.
 */
int coll_log_max_timestamp(coll_log_t *log, int64_t *offset, int64_t *timestamp);

/* ---- offsets -------------------------------------------------------------- */

int64_t coll_log_start_offset(const coll_log_t *log);
int64_t coll_log_end_offset(const coll_log_t *log);
int64_t coll_log_high_watermark(const coll_log_t *log);
int64_t coll_log_recovery_point(const coll_log_t *log);
/* Every offset below this one is durable. */
int64_t coll_log_durable_offset(const coll_log_t *log);
/* Bytes in all segments. */
uint64_t coll_log_size(const coll_log_t *log);
size_t coll_log_segment_count(const coll_log_t *log);
const char *coll_log_topic(const coll_log_t *log);
int32_t coll_log_partition(const coll_log_t *log);
const char *coll_log_dir(const coll_log_t *log);
const coll_log_config_t *coll_log_config(const coll_log_t *log);
/* Replaces the config (a topic config change); applies from the next append / pass. */
int coll_log_set_config(coll_log_t *log, const coll_log_config_t *cfg);
/* 0 and the topic id, or TRIB_ENOT_FOUND. */
int coll_log_topic_id(const coll_log_t *log, uint8_t out[16]);

/* Sets the high watermark, clamped to [log start, log end]. */
void coll_log_set_high_watermark(coll_log_t *log, int64_t hw);

/*
 * DeleteRecords: moves the log start offset up to `offset` (-1 = the high
 * watermark). -ERANGE past the high watermark. Whole segments below the
 * new start are deleted on the thread pool; *low_watermark gets the new
 * log start offset.
 */
int coll_log_delete_records(coll_log_t *log, int64_t offset, int64_t *low_watermark);

/*
 * Truncates the log to `offset` (a replica diverging from its leader):
 * batches with records at or past it are removed, the log end becomes
 * offset, later segments are deleted, the leader epoch cache is cut, and
 * durability waits past it fail with -ECANCELED. No-op if offset >= log
 * end; -ERANGE below the log start (use coll_log_truncate_fully).
 */
int coll_log_truncate_to(coll_log_t *log, int64_t offset);

/* Deletes every segment and restarts the log empty at `offset`. */
int coll_log_truncate_fully(coll_log_t *log, int64_t offset);

/* ---- leader epochs -------------------------------------------------------- */

/* The latest epoch in the leader epoch cache, or -1. */
int32_t coll_log_latest_epoch(const coll_log_t *log);

/*
 * A new leader's epoch starts at start_offset (its log end when it becomes
 * leader, before any append: Kafka's maybeAssignEpochStartOffset), so
 * OffsetForLeaderEpoch answers for an epoch that has not written yet.
 * Entries it contradicts are removed; an equal latest epoch starting at
 * or before start_offset is kept. The checkpoint file is rewritten in
 * the background. 0 or -ENOMEM.
 */
int coll_log_assign_epoch(coll_log_t *log, int32_t epoch, int64_t start_offset);

/*
 * OffsetForLeaderEpoch: the largest epoch <= `epoch` the log knows and the
 * offset where it ended (the start of the next epoch, or the log end for
 * the latest). Both -1 when the log has no such epoch.
 */
void coll_log_end_offset_for_epoch(const coll_log_t *log, int32_t epoch, int32_t *found_epoch,
                                   int64_t *end_offset);

/* ---- compaction ----------------------------------------------------------- */

/*
 * Runs one compaction pass now on a log whatever its dirty ratio (its
 * policy must include compact): keeps the last record per key among the
 * segments below the active one (and below the high watermark and
 * min.compaction.lag.ms), drops tombstones whose delete horizon passed,
 * and swaps the cleaned segments in. Runs on the thread pool; cb gets 0
 * (also when there was nothing to do), -ECANCELED when a truncation,
 * deletion or close raced it (nothing changed then), or an I/O error.
 * Returns -EINVAL for a log without the compact policy, TRIB_ESTATE while
 * another pass runs on it, -EROFS for a failed log.
 */
int coll_log_compact(coll_log_t *log, coll_log_done_cb cb, void *arg);

/* Offset up to which the log has been compacted (the cleaner checkpoint). */
int64_t coll_log_cleaner_offset(const coll_log_t *log);

/*
 * The Kafka error code (tributary/kafka_error.h) a client is given for a
 * local error of the storage (a full disk: KAFKA_STORAGE_ERROR ...);
 * UNKNOWN_SERVER_ERROR for anything unexpected.
 */
int16_t coll_kafka_error_from(int rc);

#endif
