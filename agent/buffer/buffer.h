/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The agent's disk buffer: events that cannot be replayed from their
 * source (syslog, metrics samples) are written here before they are
 * produced, and leave only when their delivery has been acknowledged.
 *
 * Layout of state_dir/buffer/:
 *   seg-<20-digit first id>.buf   segments: a header, then frames
 *                                 [u32 len][u32 crc32c(payload)][payload]
 *   ledger                        the first id not yet acknowledged (every
 *                                 record below it was delivered); written
 *                                 atomically (tmp, fsync, rename, fsync dir)
 *   quarantine/                   damaged segments moved aside at recovery
 *                                 (the AGENT_BUFFER_QUARANTINE_KEEP newest
 *                                 files are kept; older ones are removed at
 *                                 open):
 *                                 <name>.corrupt (a copy; the segment is
 *                                 rewritten with its intact frames) and
 *                                 <name>.bad-header (moved)
 *   lock                          write-locked while open (a second open
 *                                 fails with -EBUSY)
 *
 * Record ids are consecutive from 1 over the buffer's life; a segment's
 * name carries its first id, so an id maps to (segment, ordinal). Every
 * frame also carries its id: records that survive damage keep theirs.
 *
 * Single-threaded: every call is made on the agent's loop thread. Appends
 * are write(2)s (so a SIGKILLed agent loses nothing it accepted);
 * agent_buffer_sync() adds fdatasync for power loss.
 */
#ifndef TRIBUTARY_AGENT_BUFFER_H
#define TRIBUTARY_AGENT_BUFFER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "msg.h"

typedef struct agent_buffer agent_buffer_t;

typedef struct agent_buffer_opts {
    const char *dir;       /* state_dir/buffer; created when missing */
    uint64_t max_size;     /* bytes of live segments, frames included */
    uint64_t segment_size; /* roll at this size (when 0: 8 MiB, at most max_size / 4);
                              never above max_size */
} agent_buffer_opts_t;

/* A header of a buffered message. */
typedef agent_msg_hdr_t agent_buffer_hdr_t;

#define AGENT_BUFFER_MAX_HDRS AGENT_MSG_MAX_HDRS
#define AGENT_BUFFER_QUARANTINE_KEEP 16

/* A record: a rendered Kafka message, the agent's message (msg.h; its
   topic_fixed is not stored). Pointers are the caller's on append and the
   buffer's (valid until the next call) on read. */
typedef agent_msg_t agent_buffer_rec_t;

/* What recovery found at open (and what check reports). */
typedef struct agent_buffer_report {
    uint64_t segments;
    uint64_t records;         /* intact records not yet acknowledged */
    uint64_t bytes;           /* live bytes */
    uint64_t torn_bytes;      /* cut off the end of the last segment */
    uint64_t corrupt_records; /* records lost in damaged frames (ids skipped; a
                                 damaged stretch at the end of the last
                                 segment counts as one) */
    uint64_t corrupt_bytes;
    uint64_t quarantined; /* segments moved to quarantine/ */
    uint64_t first_id, next_id;
    uint64_t bad_ledger; /* 1: the ledger was unreadable; started from the first segment */
} agent_buffer_report_t;

typedef struct agent_buffer_stats {
    uint64_t appended, append_bytes;
    uint64_t acked;
    uint64_t full;           /* appends refused with -ENOSPC: over max_size */
    uint64_t disk_full;      /* appends refused with -ENOSPC: the filesystem is full */
    bool disk_full_now;      /* the last append found the filesystem full */
    uint64_t bytes, records; /* live now */
    uint64_t segments_deleted;
    uint64_t syncs, sync_errors;
    uint64_t write_errors; /* failed writes, and failed cuts of the partial frame one left */
    uint64_t read_errors;  /* failed reads and frames found damaged while reading */
} agent_buffer_stats_t;

/*
 * Opens (creating) the buffer and recovers it: a torn tail of the last
 * segment is truncated; a segment with corrupt frames keeps every intact
 * frame (the reader re-synchronises on the next valid frame) and a copy
 * of it goes to quarantine/; a segment that cannot be read at all is
 * moved to quarantine/. Never fails because of damaged data: only on I/O
 * errors (-errno) or -ENOMEM. `report` may be NULL.
 */
int agent_buffer_open(agent_buffer_t **out, const agent_buffer_opts_t *o,
                      agent_buffer_report_t *report);
/* Syncs (like agent_buffer_sync) and closes. */
void agent_buffer_close(agent_buffer_t *b);

/* Appends; *id (may be NULL) gets the record's id. 0, -ENOSPC when the
   record does not fit under max_size or the filesystem is full (ENOSPC or
   EDQUOT; nothing is left written, and the stats tell the two apart),
   -EMSGSIZE when it could never fit, or -errno on a write error. A write that fails part
   way leaves nothing of the record: the partial frame is cut off, and
   while that cut fails every append tries it again and fails with its
   -errno. */
int agent_buffer_append(agent_buffer_t *b, const agent_buffer_rec_t *r, uint64_t *id);
/* Bytes a record takes (to test for room before accepting input); SIZE_MAX
   when it cannot be encoded (a field longer than its length field allows,
   more than AGENT_BUFFER_MAX_HDRS headers, a payload over 64 MiB). */
size_t agent_buffer_rec_size(const agent_buffer_rec_t *r);
/* Free bytes under max_size. */
uint64_t agent_buffer_room(const agent_buffer_t *b);

/* The next record not yet handed out: 1 with *r and *id set, 0 when none
   (also after a read error, which is logged and counted in read_errors;
   the next call tries again). */
int agent_buffer_next(agent_buffer_t *b, agent_buffer_rec_t *r, uint64_t *id);
/* Takes back the record the last agent_buffer_next() handed out (one the
   caller could not send): the next call hands it out again. Only right
   after that next(); false when there is nothing to take back. */
bool agent_buffer_unnext(agent_buffer_t *b);
/* Marks a record delivered (any order; repeated acks are ignored). The
   acknowledged prefix advances; segments wholly below it are deleted after
   the ledger has been written. */
void agent_buffer_ack(agent_buffer_t *b, uint64_t id);
/* Hands out again every record handed out but not acknowledged (after the
   producer was rebuilt and its queue purged). Records acknowledged out of
   order are not handed out again; only the acknowledged prefix survives a
   restart, so after one they are (at-least-once). */
void agent_buffer_rewind(agent_buffer_t *b);
/* Records handed out and not yet acknowledged. */
uint64_t agent_buffer_inflight(const agent_buffer_t *b);
/* fdatasync the segment being written and write the ledger if it moved.
   0 or -errno. */
int agent_buffer_sync(agent_buffer_t *b);
void agent_buffer_stats(const agent_buffer_t *b, agent_buffer_stats_t *st);

/* Offline inspection (the buffer must not be open elsewhere; nothing is
   changed). check prints a summary and each problem; returns 0 when the
   buffer is intact, 1 when it found damage, -errno when it cannot read.
   dump prints each unacknowledged record as a JSON line
   {"id":..,"topic":..,"key":..,"ts":..,"headers":{..},"value":..}. */
int agent_buffer_check(const char *dir, FILE *out, agent_buffer_report_t *report);
int agent_buffer_dump(const char *dir, FILE *out);

#endif
