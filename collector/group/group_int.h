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
};

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

/* ---- coordinator.c: used by the loader ---- */
coll_group_t *coll_groups_get(coll_groups_t *g, const char *id, size_t len, bool create);
void coll_group_offset_set(coll_group_t *grp, const char *topic, size_t tlen, int32_t partition,
                           int64_t offset, int32_t leader_epoch, const char *meta, size_t mlen,
                           int64_t ts);
bool coll_group_offset_remove(coll_group_t *grp, const char *topic, size_t tlen, int32_t partition);
void coll_groups_remove(coll_groups_t *g, coll_group_t *grp);
char *coll_gdup(const char *s, size_t len);

#endif
