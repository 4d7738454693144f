/* SPDX-License-Identifier: Apache-2.0 */
/* The coordinator's private structures, shared by coordinator.c and store.c. */
#ifndef COLLECTOR_GROUP_GROUP_INT_H
#define COLLECTOR_GROUP_GROUP_INT_H

#include "group/group.h"
#include "tributary/buf.h"
#include "tributary/kafka_error.h"
#include "tributary/log.h"

#define COLL_GROUP_FACILITY "group"

struct coll_groups {
    coll_group_host_t host;
    coll_group_config_t cfg;
    coll_group_t *head, *tail;
    size_t ngroups;
    coll_group_t **buckets; /* by id hash; nbuckets a power of two, grown at 2 per bucket */
    size_t nbuckets;
    uv_timer_t timer;
    uint64_t next_retention_check_ms;
    uint64_t member_serial;
    bool stopping;
    bool loading;                    /* replaying __consumer_offsets: nothing is written */
    trib_log_ratelimit_t refused_rl; /* joins refused from a running sink's group */
    /* a cluster: what this node coordinates, per partition of __consumer_offsets */
    struct coll_gpart *parts;
    int32_t nparts;
    struct coll_gwait *waits; /* writes waiting for the high watermark */
};

/* A partition of __consumer_offsets on a cluster: its groups are loaded here or not. */
typedef enum coll_gpart_state {
    COLL_GPART_UNLOADED, /* another broker leads it (or nobody) */
    COLL_GPART_LOADING,  /* led here; its log is being replayed */
    COLL_GPART_LOADED,   /* led here; its groups answer */
} coll_gpart_state_t;

typedef struct coll_gpart {
    coll_gpart_state_t state;
    int64_t next, end; /* loading: the next offset to replay, the log end when it began */
    size_t records;
    uint64_t started_ms;
} coll_gpart_t;

/* ---- store.c: the records of __consumer_offsets ---- */

/* OffsetCommitKey v1 + OffsetCommitValue v3 (value NULL-ish: tombstone when o is NULL). */
int coll_gstore_offset(coll_groups_t *g, const char *group, const char *topic, int32_t partition,
                       const coll_goffset_t *o);
/* Several offsets of one group as one batch (o[i] NULL: tombstone). */
int coll_gstore_offsets(coll_groups_t *g, const char *group, const char *const *topics,
                        const int32_t *partitions, const coll_goffset_t *const *o, size_t n);
/* GroupMetadataKey v2 + GroupMetadataValue v3; tombstone when grp is NULL. */
int coll_gstore_group(coll_groups_t *g, const char *group, const coll_group_t *grp);
/* Replays every partition of __consumer_offsets into the coordinator. */
int coll_gstore_load(coll_groups_t *g);
/*
 * Replays one chunk of p's log from *next (below end) and moves *next on
 * (to end when there is nothing more); counts the records.
 */
int coll_gstore_load_step(coll_groups_t *g, coll_partition_t *p, int64_t *next, int64_t end,
                          size_t *records);

/* ---- coordinator.c: used by the loader ---- */
coll_group_t *coll_groups_get(coll_groups_t *g, const char *id, size_t len, bool create);
coll_goffset_t *coll_group_offset_set(coll_group_t *grp, const char *topic, size_t tlen,
                                      int32_t partition, int64_t offset, int32_t leader_epoch,
                                      const char *meta, size_t mlen, int64_t ts);
bool coll_group_offset_remove(coll_group_t *grp, const char *topic, size_t tlen, int32_t partition);
void coll_groups_remove(coll_groups_t *g, coll_group_t *grp);
char *coll_gdup(const char *s, size_t len);

#endif
