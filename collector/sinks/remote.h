/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The sinks' view of a Kafka-protocol cluster they are not part of
 * (tributary-collector --sinks-only --bootstrap HOST:PORT,...): topics and
 * leaders from Metadata, records by Fetch from each partition's leader,
 * committed offsets by OffsetFetch and OffsetCommit at the group's
 * coordinator (FindCoordinator), dead letters by Produce with acks=all.
 *
 * Calls block (one request, one response, bounded by the request timeout)
 * on the thread that makes them; the --sinks-only process has no broker on
 * its loop for them to hold up. A call that fails on the network or with
 * a stale-metadata error marks the metadata for a refresh, and the next
 * refresh tries every known broker and then the bootstrap list again, so
 * the loss of any one broker is ridden out.
 *
 * Offsets are committed standalone (generation -1, no member id), as
 * kafka-consumer-groups --reset-offsets does: the group sink.<name> has no
 * members, so one --sinks-only process per sink.
 */
#ifndef COLLECTOR_SINKS_REMOTE_H
#define COLLECTOR_SINKS_REMOTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tributary/error.h"
#include "tributary/record.h"

typedef struct coll_sremote coll_sremote_t;

/* One topic of the last Metadata. */
typedef struct coll_sremote_topic {
    char *name;
    int32_t npartitions;
    bool internal;
    int32_t *leaders; /* per partition, -1: none */
} coll_sremote_topic_t;

/* Connects to the first reachable bootstrap address. 0 or an error with err set. */
int coll_sremote_open(const char *bootstrap, int timeout_ms, coll_sremote_t **out,
                      trib_error_t *err);
void coll_sremote_close(coll_sremote_t *r);

/* Reads Metadata for every topic when due (or marked stale). 0 or a negative error. */
int coll_sremote_refresh(coll_sremote_t *r, bool force);

/* The topics of the last Metadata (valid until the next refresh). */
const coll_sremote_topic_t *coll_sremote_topics(const coll_sremote_t *r, size_t *n);

/*
 * Fetches from offset on: *records (malloc'd, the caller frees it; NULL
 * when empty) and its length, the high watermark and log start offset.
 * Returns a Kafka error code (NETWORK_EXCEPTION when the call failed).
 */
int16_t coll_sremote_fetch(coll_sremote_t *r, const char *topic, int32_t partition, int64_t offset,
                           uint8_t **records, size_t *len, int64_t *hw, int64_t *log_start);

/* The log start offset (earliest) of a partition. A Kafka error code. */
int16_t coll_sremote_earliest(coll_sremote_t *r, const char *topic, int32_t partition,
                              int64_t *offset);

/* The group's committed offset of a partition (-1: none). A Kafka error code. */
int16_t coll_sremote_committed(coll_sremote_t *r, const char *group, const char *topic,
                               int32_t partition, int64_t *offset);

/* A standalone commit. A Kafka error code. */
int16_t coll_sremote_commit(coll_sremote_t *r, const char *group, const char *topic,
                            int32_t partition, int64_t offset);

/* Appends one record with acks=all; *offset is its offset. A Kafka error code. */
int16_t coll_sremote_produce(coll_sremote_t *r, const char *topic, int32_t partition,
                             const trib_record_in_t *rec, int64_t *offset);

#endif
