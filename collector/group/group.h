/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The group coordinator (classic protocol): consumer groups, their
 * rebalances, and committed offsets kept in the internal compacted topic
 * __consumer_offsets.
 *
 * The coordinator is one object per server, driven from the loop thread
 * by the API handlers in server/api/ (find_coordinator.c, join_group.c
 * ...). It knows nothing of the server: what it needs of it (the loop,
 * the cluster metadata, the partition append path and the wait for its
 * high watermark, whether the server is stopping) comes in a
 * coll_group_host_t, and a client's request comes as a coll_gcall_t,
 * which says how to answer it. JoinGroup and SyncGroup park their call
 * in the member they belong to (the request stays in its
 * connection's queue, answered later; a closed connection detaches it
 * with coll_group_call_gone()); the others answer at once. See
 * coordinator.c for the state machine and store.c for the record formats.
 */
#ifndef COLLECTOR_GROUP_GROUP_H
#define COLLECTOR_GROUP_GROUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "cluster/cluster.h"
#include "storage/storage.h"
#include "tributary/kafka.h"
#include "tributary/record.h"

#define COLL_OFFSETS_TOPIC "__consumer_offsets"

typedef struct coll_groups coll_groups_t;
typedef struct coll_group coll_group_t;
typedef struct coll_gmember coll_gmember_t;
typedef struct coll_gcall coll_gcall_t;

/*
 * A write of the coordinator's to __consumer_offsets waiting for the high
 * watermark of its partition to pass it (acks=all, on a cluster), through
 * coll_group_host_t's hw_wait. The coordinator's memory, set by it before
 * hw_wait(); `host` is the host's while it waits (NULL otherwise).
 */
typedef struct coll_group_hwait coll_group_hwait_t;
struct coll_group_hwait {
    int64_t required; /* the high watermark to reach: the log end after the write */
    int32_t min_isr;  /* min.insync.replicas of the partition */
    /*
     * Runs exactly once: NONE when the high watermark reached `required`
     * with at least min_isr replicas in sync,
     * NOT_ENOUGH_REPLICAS_AFTER_APPEND when it did with fewer,
     * NOT_LEADER_OR_FOLLOWER when the partition stops being led here, or
     * the error given to hw_cancel().
     */
    void (*done)(coll_group_hwait_t *w, int16_t error);
    void *data; /* the coordinator's */
    void *host; /* the host's */
};

/*
 * What the coordinator uses of the server that runs it, copied at
 * coll_groups_new(). append and writable are the partition's one append
 * path (server/partition.h, coll_prt_append_records() and
 * coll_prt_writable()): the coordinator writes its records to
 * __consumer_offsets through them, as Kafka's GroupMetadataManager
 * through the ReplicaManager, and with hw_wait and hw_cancel waits, as
 * Produce with acks=all, for the replica layer's high watermark
 * (server/replica.c) to pass them before it answers.
 */
typedef struct coll_group_host {
    uv_loop_t *loop;
    coll_cluster_t *cluster;
    void *arg;                   /* for stopping() */
    bool (*stopping)(void *arg); /* true once the server stops: COORDINATOR_NOT_AVAILABLE */
    int64_t (*wall_ms)(void);    /* record and state timestamps */
    /*
     * This node may append to p now (on a cluster: it leads p, its leader
     * state set up, and its ZooKeeper session is there: coll_prt_writable()).
     */
    bool (*writable)(const coll_cluster_t *cl, const coll_partition_t *p);
    /*
     * p is led here (coll_prt_led_here(): writable but for the ZooKeeper
     * session): what its groups load and unload on, so that a session
     * that comes back does not unload and reload them.
     */
    bool (*led_here)(const coll_cluster_t *cl, const coll_partition_t *p);
    int (*append)(coll_partition_t *p, const trib_record_in_t *recs, size_t n,
                  coll_append_info_t *info);
    /*
     * Parks w (required, min_isr, done set) on p's high watermark; done may
     * run before it returns. 0, or TRIB_ESTATE when p has no high watermark
     * to wait on here (not a replicated partition led here), or -ENOMEM;
     * done never runs then.
     */
    int (*hw_wait)(coll_partition_t *p, coll_group_hwait_t *w);
    /* Answers w with error now (its done runs), if it still waits. */
    void (*hw_cancel)(coll_group_hwait_t *w, int16_t error);
} coll_group_host_t;

/*
 * A client's request to the coordinator (JoinGroup, SyncGroup, Heartbeat,
 * LeaveGroup), as its handler in server/api/ hands it over: the decoded
 * request, who sent it, and how to answer. The coordinator answers each
 * call exactly once, at once or later (then it is parked in its member);
 * the call, and memory from alloc(), live until the answer is written.
 */
typedef struct coll_gcall_ops {
    /* Zeroed memory that lives as long as the call; NULL when out of memory. */
    void *(*alloc)(coll_gcall_t *c, size_t n);
    /* Counts a Kafka error code in the metrics (NONE is not counted). */
    void (*note_error)(coll_gcall_t *c, int16_t code);
    /* Encodes resp with codec at the call's version and answers. */
    void (*respond)(coll_gcall_t *c, const trib_kafka_codec_t *codec, const void *resp);
    /* Gives up (out of memory): the client's connection closes. */
    void (*reject)(coll_gcall_t *c, const char *why);
} coll_gcall_ops_t;

struct coll_gcall {
    const coll_gcall_ops_t *ops;
    void *req;              /* the server's request */
    const void *body;       /* JoinGroupRequest, SyncGroupRequest ... (kafka_messages.h) */
    int16_t version;        /* of the request */
    trib_kstr_t client_id;  /* from the request header */
    const char *peer;       /* the client's "host:port" */
    coll_gmember_t *parked; /* the coordinator's: the member it waits in, NULL if none */
};

/*
 * The call's client went away before it was answered (its connection
 * closed): the coordinator forgets it (the member then counts as not
 * rejoined). Nothing happens for a call that is not parked.
 */
void coll_group_call_gone(coll_gcall_t *c);

typedef struct coll_group_config {
    int32_t offsets_partitions;         /* offsets.topic.num.partitions (50) */
    int64_t offsets_retention_ms;       /* offsets.retention.minutes (7 days) */
    int32_t min_session_timeout_ms;     /* group.min.session.timeout.ms (6000) */
    int32_t max_session_timeout_ms;     /* group.max.session.timeout.ms (1800000) */
    int32_t initial_rebalance_delay_ms; /* group.initial.rebalance.delay.ms (3000) */
    int64_t offsets_retention_check_ms; /* offsets.retention.check.interval.ms (600000) */
    int32_t offsets_commit_timeout_ms;  /* offsets.commit.timeout.ms (5000): cluster writes */
} coll_group_config_t;

void coll_group_config_init(coll_group_config_t *c);

typedef enum coll_group_state {
    COLL_GROUP_EMPTY,
    COLL_GROUP_PREPARING_REBALANCE,
    COLL_GROUP_COMPLETING_REBALANCE,
    COLL_GROUP_STABLE,
    COLL_GROUP_DEAD,
} coll_group_state_t;

const char *coll_group_state_name(coll_group_state_t s);

/* One committed offset. */
typedef struct coll_goffset {
    char *topic;
    int32_t partition;
    int64_t offset;
    int32_t leader_epoch;
    char *metadata;
    int64_t commit_ts;
    int64_t log_end; /* offset after its record in __consumer_offsets (0: not known) */
} coll_goffset_t;

struct coll_gmember {
    coll_gmember_t *next;
    char *id;
    char *instance_id; /* NULL: dynamic member */
    char *client_id;
    char *client_host;
    int32_t session_timeout_ms, rebalance_timeout_ms;
    size_t nprotocols;
    char **proto_names;
    uint8_t **proto_meta;
    int32_t *proto_meta_len;
    uint8_t *assignment;
    int32_t assignment_len;
    coll_gcall_t *join_req; /* parked JoinGroup */
    coll_gcall_t *sync_req; /* parked SyncGroup */
    uint64_t session_deadline_ms;
    bool internal; /* the collector's own member (coll_group_internal_set) */
};

struct coll_group {
    coll_group_t *next;  /* all groups, in creation order */
    coll_group_t *hnext; /* the id hash bucket's chain */
    uint32_t hash;       /* FNV-1a of the id */
    char *id;
    coll_group_state_t state;
    int32_t generation;
    char *protocol_type; /* NULL: none yet (an offsets-only group) */
    char *protocol;      /* chosen protocol, NULL when empty */
    char *leader;        /* leader member id, NULL when empty */
    coll_gmember_t *members;
    size_t nmembers;
    struct pending_member {
        char *id;
        uint64_t deadline_ms;
    } * pending;
    size_t npending;
    uint64_t rebalance_deadline_ms;
    uint64_t initial_until_ms; /* initial rebalance delay: no join completes before */
    coll_goffset_t *offsets;
    size_t noffsets, offsets_cap;
    int64_t state_ts; /* wall ms of the last state change (Empty since ...) */
};

/*
 * Creates the coordinator: makes sure __consumer_offsets exists (compacted,
 * cfg->offsets_partitions partitions), reloads the groups and offsets from
 * it, and starts its housekeeping timer (unreferenced).
 */
int coll_groups_new(const coll_group_host_t *host, const coll_group_config_t *cfg,
                    coll_groups_t **out);
/* Answers every parked request (shutdown): COORDINATOR_NOT_AVAILABLE / NOT_COORDINATOR. */
void coll_groups_stop(coll_groups_t *g);
/* The timer handle, for the server to close at shutdown. */
uv_handle_t *coll_groups_timer(coll_groups_t *g);
/* Frees everything (after the timer is closed). */
void coll_groups_free(coll_groups_t *g);

/*
 * Whether this node coordinates the group now: NONE, or
 * COORDINATOR_NOT_AVAILABLE (stopping; on a cluster, no __consumer_offsets
 * yet or its partition has no leader) or NOT_COORDINATOR (on a cluster,
 * another broker leads the group's partition). On a single node it is
 * always this one. A group id of length <= 0 is left to the caller.
 */
int16_t coll_groups_coordinator_error(coll_groups_t *g, const char *id, int32_t len);

/*
 * The cluster backend applied a new state to a hosted partition (or is
 * about to remove it: `removing`). For a partition of __consumer_offsets
 * this is where groups move with leadership: on becoming its leader the
 * coordinator loads the partition's groups and offsets from its log, a
 * chunk at a time (COORDINATOR_LOAD_IN_PROGRESS meanwhile); on losing it,
 * it unloads them (NOT_COORDINATOR). Other partitions, and the local
 * backend, are ignored. g may be NULL.
 */
struct coll_partition;
void coll_groups_partition_changed(coll_groups_t *g, struct coll_partition *p, bool removing);

/* Kafka's String.hashCode of the group id, abs, modulo the partition count. */
int32_t coll_group_partition_for(const char *group, size_t len, int32_t partitions);
/* Java String.hashCode over the UTF-16 code units of a UTF-8 string. */
int32_t coll_java_string_hash(const char *s, size_t len);

coll_group_t *coll_groups_find(coll_groups_t *g, const char *id, size_t len);
/* All groups, in creation order; returns the count (out may be NULL to count). */
size_t coll_groups_list(coll_groups_t *g, coll_group_t **out, size_t max);

/* Groups by state (Empty .. Stable), their members and committed offsets (metrics). */
void coll_groups_stats(coll_groups_t *g, size_t by_state[4], size_t *members, size_t *offsets);

/* The parking handlers: each answers c now or later. */
void coll_group_join(coll_groups_t *g, coll_gcall_t *c);
void coll_group_sync(coll_groups_t *g, coll_gcall_t *c);
void coll_group_heartbeat(coll_groups_t *g, coll_gcall_t *c);
void coll_group_leave(coll_groups_t *g, coll_gcall_t *c);

/*
 * __consumer_offsets, created on first use (as Kafka does at the first
 * FindCoordinator) when `create`; NULL if it does not exist or cannot be
 * created. Looked up each time: the topic may be deleted under us.
 */
coll_topic_t *coll_groups_topic(coll_groups_t *g, bool create);

/* ---- the collector's own members ---- */

/*
 * The sink host's membership (see coordinator.c, "Internal members"). A
 * running sink is member `member_id` of its group, with protocol type
 * "consumer", protocol COLL_GROUP_INTERNAL_PROTOCOL, and ConsumerProtocol
 * subscription and assignment bytes (version 2-prefixed, as clients send
 * them) so any Kafka tool decodes its partitions. The member has no
 * connection: it never heartbeats or expires, and the group stays Stable
 * while it is there. Members of the group that came over the network are
 * evicted when it arrives, and no client may join, sync, heartbeat, leave
 * or commit as a member of a group that has one.
 */
#define COLL_GROUP_INTERNAL_PROTOCOL "tributary-sink"

typedef struct coll_ginternal {
    const char *member_id;
    const char *client_id;
    const char *client_host;
    const uint8_t *subscription; /* ConsumerProtocolSubscription (int16 version first) */
    int32_t subscription_len;
    const uint8_t *assignment; /* ConsumerProtocolAssignment (int16 version first) */
    int32_t assignment_len;
} coll_ginternal_t;

/*
 * Makes m the group's internal member, or updates it: a new member or a
 * changed subscription or assignment is a new generation (at once: nobody
 * else takes part). Creates the group if needed. 0 or -ENOMEM.
 */
int coll_group_internal_set(coll_groups_t *g, const char *group, const coll_ginternal_t *m);
/* Removes the internal member (the group becomes Empty). */
void coll_group_internal_leave(coll_groups_t *g, const char *group, const char *member_id);
/* The commit check for the internal member (coll_group_commit_check's, by its id). */
int16_t coll_group_internal_commit_check(coll_groups_t *g, const char *group, const char *member_id,
                                         coll_group_t **grp);
/* True if the group has an internal member (a running sink). */
bool coll_group_has_internal(const coll_group_t *grp);

/* ---- offsets ---- */

/*
 * Checks whether a commit is allowed (generation -1 with an empty member id
 * is a standalone commit, accepted when the group has no members); returns
 * a Kafka error code. Creates the group when needed (*grp).
 */
int16_t coll_group_commit_check(coll_groups_t *g, trib_kstr_t group, int32_t generation,
                                trib_kstr_t member, trib_kstr_t instance, coll_group_t **grp);
/* Stores and persists one offset; returns a Kafka error code. */
int16_t coll_group_commit(coll_groups_t *g, coll_group_t *grp, trib_kstr_t topic, int32_t partition,
                          int64_t offset, int32_t leader_epoch, trib_kstr_t metadata);
/* One offset of a batch commit; `error` in: a caller's verdict (NONE to commit), out: result. */
typedef struct coll_gcommit {
    trib_kstr_t topic;
    int32_t partition;
    int64_t offset;
    int32_t leader_epoch;
    trib_kstr_t metadata;
    int16_t error;
} coll_gcommit_t;
/* The end of a commit's wait for the high watermark: NONE or the error of every entry. */
typedef void (*coll_gcommit_cb)(void *arg, int16_t error);
/*
 * Commits every entry whose error is NONE as one record batch (as Kafka
 * appends an OffsetCommit's offsets in one go: all or none are stored).
 * Returns the number committed.
 *
 * On a cluster the commit counts only once the high watermark of the
 * group's __consumer_offsets partition passes the batch (acks=all, as
 * Kafka's coordinator appends): when `done` is given and the batch was
 * appended, *waiting is set and done(arg, error) runs once, later, with
 * NONE or the error for every committed entry (COORDINATOR_NOT_AVAILABLE
 * when the ISR is or falls below min.insync.replicas, NOT_COORDINATOR when
 * leadership moves, REQUEST_TIMED_OUT after offsets.commit.timeout.ms);
 * the offsets are visible (OffsetFetch) only after NONE. With the local
 * backend, or done NULL, they are visible at once and nothing waits.
 */
size_t coll_group_commit_many(coll_groups_t *g, coll_group_t *grp, coll_gcommit_t *c, size_t n,
                              coll_gcommit_cb done, void *arg, bool *waiting);
const coll_goffset_t *coll_group_offset(const coll_group_t *grp, const char *topic, size_t len,
                                        int32_t partition);
/* Removes one offset (tombstone); returns true if there was one. */
bool coll_group_offset_delete(coll_groups_t *g, coll_group_t *grp, const char *topic, size_t len,
                              int32_t partition);
/* True if an active member's subscription names the topic. */
bool coll_group_subscribed(const coll_group_t *grp, const char *topic, size_t len);
/* DeleteGroups: NON_EMPTY_GROUP, GROUP_ID_NOT_FOUND or NONE (tombstones written). */
int16_t coll_group_delete(coll_groups_t *g, const char *id, size_t len);

/* The log of the group's __consumer_offsets partition (NULL if it does not exist). */
coll_log_t *coll_group_log(coll_groups_t *g, const char *id, size_t len);

/* The member's metadata for the group's chosen protocol (NULL/0 if none). */
const uint8_t *coll_gmember_metadata(const coll_group_t *grp, const coll_gmember_t *m,
                                     int32_t *len);

#endif
