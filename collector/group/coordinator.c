/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The group coordinator's state machine (Kafka's classic protocol, as its
 * GroupCoordinator runs it).
 *
 *            join (first member)          every known member rejoined
 *   Empty ----------------------> Preparing ------------------------> Completing
 *     ^                           Rebalance   (or rebalance timeout)   Rebalance
 *     |   last member gone            ^   ^                                |
 *     +-------------------------------+   | join/leave/expiry    leader's  |
 *                                     +-------------- Stable <-------------+
 *                                                              SyncGroup
 *
 * - JoinGroup parks its request in the member (member->join_req); when the
 *   join phase completes (all members rejoined and the initial delay of a
 *   new group passed, or the rebalance timeout ran out: members that did
 *   not rejoin are dropped) the generation is bumped, a protocol every
 *   member supports is chosen by vote, and every parked join is answered;
 *   only the leader's answer lists the members and their metadata (opaque
 *   bytes, kept as the clients sent them).
 * - SyncGroup from followers parks (member->sync_req) until the leader's
 *   SyncGroup brings the assignments; then all are answered and the group
 *   is Stable.
 * - JoinGroup v4+ from an unknown member gets MEMBER_ID_REQUIRED with a
 *   fresh id, remembered as "pending" for a session timeout.
 * - Static members (group.instance.id) keep their place across restarts:
 *   a rejoin with an unknown member id but a known instance id takes over
 *   the old member (its parked requests get FENCED_INSTANCE_ID) and, in a
 *   Stable group with unchanged protocols and a non-leader, gets the
 *   current generation back without a rebalance.
 * - A member whose session timeout passes without a heartbeat, join or
 *   sync is removed, as is one that leaves (LeaveGroup); either starts a
 *   rebalance.
 * - A parked request whose connection closes is detached by
 *   coll_group_call_gone() (the member then counts as not rejoined).
 *
 * A 100 ms housekeeping timer expires sessions and pending members and
 * completes join phases whose deadline passed; it also expires committed
 * offsets of Empty groups after offsets.retention.minutes (tombstones).
 */
#include "group/group_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kafka/gen/kafka_messages.h"

#define TICK_MS 100
#define MAX_OFFSET_METADATA 4096

void coll_group_config_init(coll_group_config_t *c)
{
    c->offsets_partitions = 50;
    c->offsets_retention_ms = 7LL * 24 * 3600 * 1000;
    c->min_session_timeout_ms = 6000;
    c->max_session_timeout_ms = 1800000;
    c->initial_rebalance_delay_ms = 3000;
    c->offsets_retention_check_ms = 600000;
    c->offsets_commit_timeout_ms = 5000;
}

const char *coll_group_state_name(coll_group_state_t s)
{
    switch (s) {
    case COLL_GROUP_EMPTY:
        return "Empty";
    case COLL_GROUP_PREPARING_REBALANCE:
        return "PreparingRebalance";
    case COLL_GROUP_COMPLETING_REBALANCE:
        return "CompletingRebalance";
    case COLL_GROUP_STABLE:
        return "Stable";
    default:
        return "Dead";
    }
}

/* ---- hashing -------------------------------------------------------------------- */

int32_t coll_java_string_hash(const char *s, size_t len)
{
    uint32_t h = 0;
    const uint8_t *p = (const uint8_t *)s;
    size_t i = 0;
    while (i < len) {
        uint32_t cp = p[i];
        size_t n = 1;
        if (cp >= 0xf0 && i + 3 < len) {
            cp = ((cp & 0x07u) << 18) | ((p[i + 1] & 0x3fu) << 12) | ((p[i + 2] & 0x3fu) << 6) |
                 (p[i + 3] & 0x3fu);
            n = 4;
        } else if (cp >= 0xe0 && i + 2 < len) {
            cp = ((cp & 0x0fu) << 12) | ((p[i + 1] & 0x3fu) << 6) | (p[i + 2] & 0x3fu);
            n = 3;
        } else if (cp >= 0xc0 && i + 1 < len) {
            cp = ((cp & 0x1fu) << 6) | (p[i + 1] & 0x3fu);
            n = 2;
        }
        if (cp >= 0x10000) {
            cp -= 0x10000;
            h = 31 * h + (0xd800u + (cp >> 10));
            h = 31 * h + (0xdc00u + (cp & 0x3ffu));
        } else {
            h = 31 * h + cp;
        }
        i += n;
    }
    return (int32_t)h;
}

int32_t coll_group_partition_for(const char *group, size_t len, int32_t partitions)
{
    int32_t h = coll_java_string_hash(group, len);
    int32_t a = h == INT32_MIN ? 0 : (h < 0 ? -h : h);
    return partitions > 0 ? a % partitions : 0;
}

/* ---- small helpers ------------------------------------------------------------------ */

char *coll_gdup(const char *s, size_t len)
{
    char *d = malloc(len + 1);
    if (d) {
        if (len) {
            memcpy(d, s, len);
        }
        d[len] = 0;
    }
    return d;
}

static char *kdup(trib_kstr_t s)
{
    return s.len < 0 ? NULL : coll_gdup(s.ptr ? s.ptr : "", (size_t)s.len);
}

static bool keq(trib_kstr_t a, const char *b)
{
    if (a.len < 0 || !b) {
        return a.len < 0 && !b;
    }
    return strlen(b) == (size_t)a.len && memcmp(a.ptr, b, (size_t)a.len) == 0;
}

static uint64_t now_ms(coll_groups_t *g)
{
    return uv_now(g->host.loop);
}

static void set_state(coll_groups_t *g, coll_group_t *grp, coll_group_state_t st)
{
    grp->state = st;
    grp->state_ts = g->host.wall_ms();
}

/* ---- groups and members ------------------------------------------------------------ */

static uint32_t id_hash(const char *id, size_t len)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++) {
        h = (h ^ (uint8_t)id[i]) * 16777619u;
    }
    return h;
}

coll_group_t *coll_groups_find(coll_groups_t *g, const char *id, size_t len)
{
    if (!g->nbuckets) {
        return NULL;
    }
    uint32_t h = id_hash(id, len);
    for (coll_group_t *grp = g->buckets[h & (g->nbuckets - 1)]; grp; grp = grp->hnext) {
        if (grp->hash == h && strlen(grp->id) == len && memcmp(grp->id, id, len) == 0) {
            return grp;
        }
    }
    return NULL;
}

/* Grows the table to keep chains short; false when out of memory. */
static bool buckets_reserve(coll_groups_t *g)
{
    if (g->nbuckets && g->ngroups + 1 <= 2 * g->nbuckets) {
        return true;
    }
    size_t n = g->nbuckets ? g->nbuckets * 2 : 64;
    coll_group_t **b = calloc(n, sizeof(*b));
    if (!b) {
        return g->nbuckets > 0; /* longer chains, still correct */
    }
    for (coll_group_t *grp = g->head; grp; grp = grp->next) {
        grp->hnext = b[grp->hash & (n - 1)];
        b[grp->hash & (n - 1)] = grp;
    }
    free(g->buckets);
    g->buckets = b;
    g->nbuckets = n;
    return true;
}

coll_group_t *coll_groups_get(coll_groups_t *g, const char *id, size_t len, bool create)
{
    coll_group_t *grp = coll_groups_find(g, id, len);
    if (grp || !create || !buckets_reserve(g)) {
        return grp;
    }
    grp = calloc(1, sizeof(*grp));
    if (!grp || !(grp->id = coll_gdup(id, len))) {
        free(grp);
        return NULL;
    }
    set_state(g, grp, COLL_GROUP_EMPTY);
    grp->hash = id_hash(id, len);
    size_t bi = grp->hash & (g->nbuckets - 1);
    grp->hnext = g->buckets[bi];
    g->buckets[bi] = grp;
    if (g->tail) {
        g->tail->next = grp;
    } else {
        g->head = grp;
    }
    g->tail = grp;
    g->ngroups++;
    return grp;
}

void coll_groups_stats(coll_groups_t *g, size_t by_state[4], size_t *members, size_t *offsets)
{
    memset(by_state, 0, 4 * sizeof(size_t));
    *members = *offsets = 0;
    for (coll_group_t *grp = g->head; grp; grp = grp->next) {
        by_state[grp->state <= COLL_GROUP_STABLE ? grp->state : 0]++;
        *members += grp->nmembers;
        *offsets += grp->noffsets;
    }
}

static bool group_active(coll_groups_t *g, const coll_group_t *grp);

size_t coll_groups_list(coll_groups_t *g, coll_group_t **out, size_t max)
{
    size_t n = 0;
    for (coll_group_t *grp = g->head; grp; grp = grp->next) {
        if (grp->state == COLL_GROUP_DEAD || !group_active(g, grp)) {
            continue;
        }
        if (out && n < max) {
            out[n] = grp;
        }
        n++;
    }
    return n;
}

static void member_free_protocols(coll_gmember_t *m)
{
    for (size_t i = 0; i < m->nprotocols; i++) {
        free(m->proto_names[i]);
        free(m->proto_meta[i]);
    }
    free(m->proto_names);
    free(m->proto_meta);
    free(m->proto_meta_len);
    m->proto_names = NULL;
    m->proto_meta = NULL;
    m->proto_meta_len = NULL;
    m->nprotocols = 0;
}

static void member_free(coll_gmember_t *m)
{
    if (!m) {
        return;
    }
    member_free_protocols(m);
    free(m->id);
    free(m->instance_id);
    free(m->client_id);
    free(m->client_host);
    free(m->assignment);
    free(m);
}

static void offsets_free(coll_group_t *grp)
{
    for (size_t i = 0; i < grp->noffsets; i++) {
        free(grp->offsets[i].topic);
        free(grp->offsets[i].metadata);
    }
    free(grp->offsets);
    grp->offsets = NULL;
    grp->noffsets = grp->offsets_cap = 0;
}

static void group_free(coll_group_t *grp)
{
    while (grp->members) {
        coll_gmember_t *m = grp->members;
        grp->members = m->next;
        member_free(m);
    }
    for (size_t i = 0; i < grp->npending; i++) {
        free(grp->pending[i].id);
    }
    free(grp->pending);
    offsets_free(grp);
    free(grp->id);
    free(grp->protocol_type);
    free(grp->protocol);
    free(grp->leader);
    free(grp);
}

void coll_groups_remove(coll_groups_t *g, coll_group_t *grp)
{
    coll_group_t *prev = NULL;
    for (coll_group_t *x = g->head; x; prev = x, x = x->next) {
        if (x == grp) {
            if (prev) {
                prev->next = x->next;
            } else {
                g->head = x->next;
            }
            if (g->tail == x) {
                g->tail = prev;
            }
            g->ngroups--;
            coll_group_t **pp = &g->buckets[x->hash & (g->nbuckets - 1)];
            while (*pp && *pp != x) {
                pp = &(*pp)->hnext;
            }
            if (*pp) {
                *pp = x->hnext;
            }
            group_free(x);
            return;
        }
    }
}

static coll_gmember_t *member_find(const coll_group_t *grp, trib_kstr_t id)
{
    for (coll_gmember_t *m = grp->members; m; m = m->next) {
        if (keq(id, m->id)) {
            return m;
        }
    }
    return NULL;
}

/* A member a client may act as: internal members are not reachable over the wire. */
static coll_gmember_t *member_find_external(const coll_group_t *grp, trib_kstr_t id)
{
    coll_gmember_t *m = member_find(grp, id);
    return m && !m->internal ? m : NULL;
}

static coll_gmember_t *member_by_instance(const coll_group_t *grp, trib_kstr_t inst)
{
    if (inst.len < 0) {
        return NULL;
    }
    for (coll_gmember_t *m = grp->members; m; m = m->next) {
        if (m->instance_id && keq(inst, m->instance_id)) {
            return m;
        }
    }
    return NULL;
}

static bool is_leader(const coll_group_t *grp, const coll_gmember_t *m)
{
    return grp->leader && strcmp(grp->leader, m->id) == 0;
}

const uint8_t *coll_gmember_metadata(const coll_group_t *grp, const coll_gmember_t *m, int32_t *len)
{
    *len = 0;
    for (size_t i = 0; grp->protocol && i < m->nprotocols; i++) {
        if (strcmp(m->proto_names[i], grp->protocol) == 0) {
            *len = m->proto_meta_len[i];
            return m->proto_meta[i];
        }
    }
    return NULL;
}

static bool member_supports(const coll_gmember_t *m, const char *proto)
{
    for (size_t i = 0; i < m->nprotocols; i++) {
        if (strcmp(m->proto_names[i], proto) == 0) {
            return true;
        }
    }
    return false;
}

/* True if the request's protocols are exactly the member's (names and metadata). */
static bool same_protocols(const coll_gmember_t *m, const JoinGroupRequest *req)
{
    if ((size_t)req->Protocols.count != m->nprotocols) {
        return false;
    }
    for (size_t i = 0; i < m->nprotocols; i++) {
        const JoinGroupRequest_JoinGroupRequestProtocol *p = &req->Protocols.items[i];
        if (!keq(p->Name, m->proto_names[i]) || p->Metadata.len != m->proto_meta_len[i] ||
            (p->Metadata.len > 0 &&
             memcmp(p->Metadata.ptr, m->proto_meta[i], (size_t)p->Metadata.len) != 0)) {
            return false;
        }
    }
    return true;
}

static int member_set_protocols(coll_gmember_t *m, const JoinGroupRequest *req)
{
    member_free_protocols(m);
    size_t n = req->Protocols.count > 0 ? (size_t)req->Protocols.count : 0;
    m->proto_names = calloc(n ? n : 1, sizeof(char *));
    m->proto_meta = calloc(n ? n : 1, sizeof(uint8_t *));
    m->proto_meta_len = calloc(n ? n : 1, sizeof(int32_t));
    if (!m->proto_names || !m->proto_meta || !m->proto_meta_len) {
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        const JoinGroupRequest_JoinGroupRequestProtocol *p = &req->Protocols.items[i];
        m->nprotocols = i + 1;
        m->proto_names[i] = kdup(p->Name.len < 0 ? trib_kstr("") : p->Name);
        int32_t len = p->Metadata.len > 0 ? p->Metadata.len : 0;
        m->proto_meta[i] = malloc(len ? (size_t)len : 1);
        if (!m->proto_names[i] || !m->proto_meta[i]) {
            return -ENOMEM;
        }
        if (len) {
            memcpy(m->proto_meta[i], p->Metadata.ptr, (size_t)len);
        }
        m->proto_meta_len[i] = len;
    }
    return 0;
}

/* ---- parking ------------------------------------------------------------------------ */

void coll_group_call_gone(coll_gcall_t *r)
{
    coll_gmember_t *m = r->parked;
    if (m) {
        if (m->join_req == r) {
            m->join_req = NULL;
        }
        if (m->sync_req == r) {
            m->sync_req = NULL;
        }
    }
    r->parked = NULL;
}

static void park(coll_gcall_t *r, coll_gmember_t *m)
{
    r->parked = m;
}

static void unpark(coll_gcall_t *r)
{
    r->parked = NULL;
}

static void *call_alloc(coll_gcall_t *r, size_t n)
{
    return r->ops->alloc(r, n);
}

static void call_reject(coll_gcall_t *r, const char *why)
{
    r->ops->reject(r, why);
}

static void call_note_error(coll_gcall_t *r, int16_t code)
{
    r->ops->note_error(r, code);
}

static void call_respond(coll_gcall_t *r, const trib_kafka_codec_t *codec, const void *resp)
{
    r->ops->respond(r, codec, resp);
}

/* ---- answers ----------------------------------------------------------------------- */

static void join_answer(coll_gcall_t *r, int16_t err, const coll_group_t *grp,
                        const char *member_id, bool leader_view)
{
    unpark(r);
    JoinGroupResponse *resp = call_alloc(r, sizeof(*resp));
    if (!resp) {
        call_reject(r, "out of memory");
        return;
    }
    JoinGroupResponse_init(resp);
    resp->ErrorCode = err;
    resp->GenerationId = -1;
    resp->ProtocolName = r->version >= 7 ? trib_kstr(NULL) : trib_kstr("");
    resp->Leader = trib_kstr("");
    resp->MemberId = trib_kstr(member_id ? member_id : "");
    if (err == TRIB_KAFKA_NONE && grp) {
        resp->GenerationId = grp->generation;
        resp->ProtocolType = trib_kstr(grp->protocol_type);
        resp->ProtocolName = trib_kstr(grp->protocol ? grp->protocol : "");
        resp->Leader = trib_kstr(grp->leader ? grp->leader : "");
        if (leader_view && grp->nmembers) {
            JoinGroupResponse_JoinGroupResponseMember *ms =
                call_alloc(r, grp->nmembers * sizeof(*ms));
            if (!ms) {
                call_reject(r, "out of memory");
                return;
            }
            int32_t n = 0;
            for (coll_gmember_t *m = grp->members; m; m = m->next) {
                JoinGroupResponse_JoinGroupResponseMember *o = &ms[n++];
                JoinGroupResponse_JoinGroupResponseMember_init(o);
                o->MemberId = trib_kstr(m->id);
                o->GroupInstanceId = trib_kstr(m->instance_id);
                int32_t len;
                const uint8_t *md = coll_gmember_metadata(grp, m, &len);
                o->Metadata.ptr = md ? md : (const uint8_t *)"";
                o->Metadata.len = len;
            }
            resp->Members.items = ms;
            resp->Members.count = n;
        }
    }
    call_note_error(r, err);
    call_respond(r, &JoinGroupResponse_codec, resp);
}

static void sync_answer(coll_gcall_t *r, int16_t err, const coll_group_t *grp,
                        const coll_gmember_t *m)
{
    unpark(r);
    SyncGroupResponse *resp = call_alloc(r, sizeof(*resp));
    if (!resp) {
        call_reject(r, "out of memory");
        return;
    }
    SyncGroupResponse_init(resp);
    resp->ErrorCode = err;
    resp->Assignment.ptr = (const uint8_t *)"";
    resp->Assignment.len = 0;
    if (err == TRIB_KAFKA_NONE && grp) {
        resp->ProtocolType = trib_kstr(grp->protocol_type);
        resp->ProtocolName = trib_kstr(grp->protocol);
        if (m && m->assignment) {
            resp->Assignment.ptr = m->assignment;
            resp->Assignment.len = m->assignment_len;
        }
    }
    call_note_error(r, err);
    call_respond(r, &SyncGroupResponse_codec, resp);
}

static void heartbeat_answer(coll_gcall_t *r, int16_t err)
{
    HeartbeatResponse *resp = call_alloc(r, sizeof(*resp));
    if (!resp) {
        call_reject(r, "out of memory");
        return;
    }
    HeartbeatResponse_init(resp);
    resp->ErrorCode = err;
    call_note_error(r, err);
    call_respond(r, &HeartbeatResponse_codec, resp);
}

/* ---- rebalancing -------------------------------------------------------------------- */

static void persist_group(coll_groups_t *g, coll_group_t *grp)
{
    int rc = coll_gstore_group(g, grp->id, grp);
    if (rc) {
        TRIB_LOG(TRIB_LOG_WARN, COLL_GROUP_FACILITY, "group %s: cannot store metadata: %s", grp->id,
                 trib_strerror(rc));
    }
}

static void try_complete_join(coll_groups_t *g, coll_group_t *grp);
static bool clustered(const coll_groups_t *g);
static void sync_store(coll_groups_t *g, coll_group_t *grp);
static void join_store(coll_groups_t *g, coll_group_t *grp, coll_gmember_t *m, coll_gcall_t *r,
                       char *old_id);

/* A write to __consumer_offsets waiting for the high watermark (see "a cluster"). */
typedef enum gwait_kind { GWAIT_COMMIT, GWAIT_SYNC, GWAIT_JOIN } gwait_kind_t;

struct coll_gwait {
    coll_group_hwait_t hw;
    struct coll_gwait *prev, *next; /* g->waits */
    coll_groups_t *g;
    gwait_kind_t kind;
    char *group;
    int64_t end; /* the log end right after the write */
    uint64_t deadline_ms;
    int32_t generation;     /* GWAIT_SYNC: the generation whose assignment was stored */
    char *member;           /* GWAIT_JOIN: the static member's new id, */
    char *old_id;           /* the id it had before (it keeps it if the write fails) */
    coll_gcall_t *call;     /* and its JoinGroup, parked in it */
    coll_goffset_t *commit; /* GWAIT_COMMIT: the offsets, applied when committed */
    size_t ncommit;
    coll_gcommit_cb cb;
    void *arg;
    bool starting, finished;
    int16_t error;
};

static void prepare_rebalance(coll_groups_t *g, coll_group_t *grp, const char *why)
{
    if (grp->state == COLL_GROUP_PREPARING_REBALANCE) {
        return;
    }
    bool was_empty = grp->state == COLL_GROUP_EMPTY;
    if (grp->state == COLL_GROUP_COMPLETING_REBALANCE) {
        for (coll_gmember_t *m = grp->members; m; m = m->next) {
            if (m->sync_req) {
                coll_gcall_t *r = m->sync_req;
                m->sync_req = NULL;
                sync_answer(r, TRIB_KAFKA_REBALANCE_IN_PROGRESS, grp, m);
            }
        }
    }
    int32_t max_rebalance = 0;
    for (coll_gmember_t *m = grp->members; m; m = m->next) {
        if (m->rebalance_timeout_ms > max_rebalance) {
            max_rebalance = m->rebalance_timeout_ms;
        }
    }
    uint64_t now = now_ms(g);
    set_state(g, grp, COLL_GROUP_PREPARING_REBALANCE);
    grp->rebalance_deadline_ms = now + (uint64_t)max_rebalance;
    grp->initial_until_ms = 0;
    if (was_empty) {
        int32_t d = g->cfg.initial_rebalance_delay_ms;
        grp->initial_until_ms = now + (uint64_t)(d < max_rebalance ? d : max_rebalance);
    }
    TRIB_LOG(TRIB_LOG_INFO, COLL_GROUP_FACILITY,
             "group %s: preparing rebalance (generation %" PRId32 "): %s", grp->id, grp->generation,
             why);
}

static void remove_member(coll_groups_t *g, coll_group_t *grp, coll_gmember_t *m, int16_t err,
                          const char *why);

static const char *choose_protocol(const coll_group_t *grp)
{
    const coll_gmember_t *first = grp->members;
    if (!first) {
        return NULL;
    }
    const char *best = NULL;
    int best_votes = -1;
    for (size_t i = 0; i < first->nprotocols; i++) {
        const char *cand = first->proto_names[i];
        bool all = true;
        for (const coll_gmember_t *m = grp->members; m && all; m = m->next) {
            all = member_supports(m, cand);
        }
        if (!all) {
            continue;
        }
        /* Votes: each member votes for its most preferred protocol that all support. */
        int votes = 0;
        for (const coll_gmember_t *m = grp->members; m; m = m->next) {
            for (size_t k = 0; k < m->nprotocols; k++) {
                const char *p = m->proto_names[k];
                bool ok = true;
                for (const coll_gmember_t *x = grp->members; x && ok; x = x->next) {
                    ok = member_supports(x, p);
                }
                if (ok) {
                    votes += strcmp(p, cand) == 0;
                    break;
                }
            }
        }
        if (votes > best_votes) {
            best = cand;
            best_votes = votes;
        }
    }
    return best;
}

static void complete_join(coll_groups_t *g, coll_group_t *grp)
{
    /* Members that did not rejoin in time are dropped. */
    for (;;) {
        coll_gmember_t *late = NULL;
        for (coll_gmember_t *m = grp->members; m; m = m->next) {
            if (!m->join_req) {
                late = m;
                break;
            }
        }
        if (!late) {
            break;
        }
        TRIB_LOG(TRIB_LOG_INFO, COLL_GROUP_FACILITY,
                 "group %s: member %s did not rejoin within the rebalance timeout", grp->id,
                 late->id);
        /* Unlink without triggering anything: we are completing already. */
        coll_gmember_t **pp = &grp->members;
        while (*pp != late) {
            pp = &(*pp)->next;
        }
        *pp = late->next;
        grp->nmembers--;
        if (late->sync_req) {
            coll_gcall_t *r = late->sync_req;
            late->sync_req = NULL;
            sync_answer(r, TRIB_KAFKA_UNKNOWN_MEMBER_ID, grp, NULL);
        }
        if (is_leader(grp, late)) {
            free(grp->leader);
            grp->leader = NULL;
        }
        member_free(late);
    }
    for (size_t i = 0; i < grp->npending; i++) {
        free(grp->pending[i].id);
    }
    grp->npending = 0;
    grp->generation++;
    free(grp->protocol);
    grp->protocol = NULL;
    if (grp->nmembers == 0) {
        free(grp->leader);
        grp->leader = NULL;
        set_state(g, grp, COLL_GROUP_EMPTY);
        TRIB_LOG(TRIB_LOG_INFO, COLL_GROUP_FACILITY, "group %s: generation %" PRId32 " is empty",
                 grp->id, grp->generation);
        persist_group(g, grp);
        return;
    }
    const char *proto = choose_protocol(grp);
    grp->protocol = proto ? coll_gdup(proto, strlen(proto)) : NULL;
    if (!grp->leader) {
        grp->leader = coll_gdup(grp->members->id, strlen(grp->members->id));
    }
    set_state(g, grp, COLL_GROUP_COMPLETING_REBALANCE);
    TRIB_LOG(TRIB_LOG_INFO, COLL_GROUP_FACILITY,
             "group %s: generation %" PRId32 " with %zu members, protocol %s, leader %s", grp->id,
             grp->generation, grp->nmembers, grp->protocol ? grp->protocol : "-",
             grp->leader ? grp->leader : "-");
    uint64_t now = now_ms(g);
    for (coll_gmember_t *m = grp->members; m; m = m->next) {
        free(m->assignment);
        m->assignment = NULL;
        m->assignment_len = 0;
        m->session_deadline_ms = now + (uint64_t)m->session_timeout_ms;
        coll_gcall_t *r = m->join_req;
        m->join_req = NULL;
        if (r) {
            join_answer(r, TRIB_KAFKA_NONE, grp, m->id, is_leader(grp, m));
        }
    }
}

static void try_complete_join(coll_groups_t *g, coll_group_t *grp)
{
    if (grp->state != COLL_GROUP_PREPARING_REBALANCE) {
        return;
    }
    uint64_t now = now_ms(g);
    bool all = grp->npending == 0;
    for (coll_gmember_t *m = grp->members; m && all; m = m->next) {
        all = m->join_req != NULL;
    }
    if ((all && now >= grp->initial_until_ms) || now >= grp->rebalance_deadline_ms) {
        complete_join(g, grp);
    }
}

static void remove_member(coll_groups_t *g, coll_group_t *grp, coll_gmember_t *m, int16_t err,
                          const char *why)
{
    TRIB_LOG(TRIB_LOG_INFO, COLL_GROUP_FACILITY, "group %s: member %s removed: %s", grp->id, m->id,
             why);
    if (m->join_req) {
        coll_gcall_t *r = m->join_req;
        m->join_req = NULL;
        join_answer(r, err, grp, m->id, false);
    }
    if (m->sync_req) {
        coll_gcall_t *r = m->sync_req;
        m->sync_req = NULL;
        sync_answer(r, err, grp, NULL);
    }
    coll_gmember_t **pp = &grp->members;
    while (*pp && *pp != m) {
        pp = &(*pp)->next;
    }
    if (*pp) {
        *pp = m->next;
        grp->nmembers--;
    }
    if (is_leader(grp, m)) {
        free(grp->leader);
        grp->leader = NULL;
    }
    member_free(m);
    switch (grp->state) {
    case COLL_GROUP_STABLE:
    case COLL_GROUP_COMPLETING_REBALANCE:
        prepare_rebalance(g, grp, why);
        try_complete_join(g, grp);
        break;
    case COLL_GROUP_PREPARING_REBALANCE:
        try_complete_join(g, grp);
        break;
    default:
        break;
    }
}

/* ---- JoinGroup -------------------------------------------------------------------------- */

static void new_member_id(coll_groups_t *g, coll_gcall_t *r, char *out, size_t n)
{
    trib_uuid_t u;
    coll_uuid_random(&u);
    char uu[23];
    trib_uuid_format(&u, uu);
    trib_kstr_t cid = r->client_id;
    int clen = cid.len > 0 ? (cid.len > 100 ? 100 : cid.len) : 0;
    snprintf(out, n, "%.*s-%" PRIu64 "-%s", clen, clen ? cid.ptr : "", ++g->member_serial, uu);
}

static void client_host(coll_gcall_t *r, char *out, size_t n)
{
    const char *peer = r->peer;
    const char *colon = strrchr(peer, ':');
    size_t len = colon ? (size_t)(colon - peer) : strlen(peer);
    if (len && peer[0] == '[') {
        peer++;
        len -= len >= 2 ? 2 : len;
    }
    snprintf(out, n, "/%.*s", (int)len, peer);
}

static bool protocols_compatible(const coll_group_t *grp, const coll_gmember_t *self,
                                 const JoinGroupRequest *req)
{
    bool others = false;
    for (coll_gmember_t *m = grp->members; m; m = m->next) {
        others |= m != self;
    }
    if (!others) {
        return true;
    }
    if (!grp->protocol_type || !keq(req->ProtocolType, grp->protocol_type)) {
        return false;
    }
    for (int32_t i = 0; i < req->Protocols.count; i++) {
        char name[256];
        trib_kstr_t nm = req->Protocols.items[i].Name;
        if (nm.len < 0 || nm.len >= (int32_t)sizeof(name)) {
            continue;
        }
        memcpy(name, nm.ptr, (size_t)nm.len);
        name[nm.len] = 0;
        bool all = true;
        for (coll_gmember_t *m = grp->members; m && all; m = m->next) {
            all = m == self || member_supports(m, name);
        }
        if (all) {
            return true;
        }
    }
    return false;
}

static int member_update(coll_gmember_t *m, coll_gcall_t *r, const JoinGroupRequest *req)
{
    m->session_timeout_ms = req->SessionTimeoutMs;
    m->rebalance_timeout_ms = r->version >= 1 ? req->RebalanceTimeoutMs : req->SessionTimeoutMs;
    free(m->client_id);
    m->client_id = kdup(r->client_id.len < 0 ? trib_kstr("") : r->client_id);
    char host[80];
    client_host(r, host, sizeof(host));
    free(m->client_host);
    m->client_host = coll_gdup(host, strlen(host));
    if (!m->client_id || !m->client_host) {
        return -ENOMEM;
    }
    return member_set_protocols(m, req);
}

static coll_gmember_t *member_add(coll_group_t *grp, const char *id, trib_kstr_t instance,
                                  coll_gcall_t *r, const JoinGroupRequest *req)
{
    coll_gmember_t *m = calloc(1, sizeof(*m));
    if (!m) {
        return NULL;
    }
    m->id = coll_gdup(id, strlen(id));
    m->instance_id = kdup(instance);
    if (!m->id || (instance.len >= 0 && !m->instance_id) || member_update(m, r, req) != 0) {
        member_free(m);
        return NULL;
    }
    coll_gmember_t **pp = &grp->members;
    while (*pp) {
        pp = &(*pp)->next;
    }
    *pp = m;
    grp->nmembers++;
    return m;
}

static int take_protocol_type(coll_group_t *grp, const JoinGroupRequest *req)
{
    if (grp->protocol_type && keq(req->ProtocolType, grp->protocol_type)) {
        return 0;
    }
    char *pt = kdup(req->ProtocolType);
    if (!pt) {
        return -ENOMEM;
    }
    free(grp->protocol_type);
    grp->protocol_type = pt;
    return 0;
}

/* A member (new or known) has parked its join: move the group along. */
static void joined(coll_groups_t *g, coll_group_t *grp, coll_gmember_t *m, bool is_new,
                   bool protocols_changed)
{
    uint64_t now = now_ms(g);
    m->session_deadline_ms = now + (uint64_t)m->session_timeout_ms;
    switch (grp->state) {
    case COLL_GROUP_EMPTY:
    case COLL_GROUP_STABLE:
        if (grp->state == COLL_GROUP_STABLE && !is_new && !protocols_changed &&
            !is_leader(grp, m)) {
            /* A follower rejoining with nothing new: the current generation stands. */
            coll_gcall_t *r = m->join_req;
            m->join_req = NULL;
            join_answer(r, TRIB_KAFKA_NONE, grp, m->id, false);
            return;
        }
        prepare_rebalance(g, grp, is_new ? "a member joined" : "a member rejoined");
        break;
    case COLL_GROUP_COMPLETING_REBALANCE:
        if (!is_new && !protocols_changed) {
            coll_gcall_t *r = m->join_req;
            m->join_req = NULL;
            join_answer(r, TRIB_KAFKA_NONE, grp, m->id, is_leader(grp, m));
            return;
        }
        prepare_rebalance(g, grp, "a member changed its protocols");
        break;
    case COLL_GROUP_PREPARING_REBALANCE:
        if (is_new && grp->initial_until_ms > now) {
            /* The initial delay grows with each newcomer, up to the rebalance timeout. */
            uint64_t until = now + (uint64_t)g->cfg.initial_rebalance_delay_ms;
            grp->initial_until_ms =
                until < grp->rebalance_deadline_ms ? until : grp->rebalance_deadline_ms;
        }
        break;
    default:
        break;
    }
    try_complete_join(g, grp);
}

void coll_group_join(coll_groups_t *g, coll_gcall_t *r)
{
    const JoinGroupRequest *req = r->body;
    int16_t v = r->version;
    trib_kstr_t instance = v >= 5 ? req->GroupInstanceId : trib_kstr(NULL);
    int16_t ce = coll_groups_coordinator_error(g, req->GroupId.ptr, req->GroupId.len);
    if (ce != TRIB_KAFKA_NONE) {
        join_answer(r, ce, NULL, NULL, false);
        return;
    }
    if (req->GroupId.len <= 0) {
        join_answer(r, TRIB_KAFKA_INVALID_GROUP_ID, NULL, NULL, false);
        return;
    }
    if (req->SessionTimeoutMs < g->cfg.min_session_timeout_ms ||
        req->SessionTimeoutMs > g->cfg.max_session_timeout_ms) {
        join_answer(r, TRIB_KAFKA_INVALID_SESSION_TIMEOUT, NULL, NULL, false);
        return;
    }
    if (req->ProtocolType.len <= 0 || req->Protocols.count <= 0) {
        join_answer(r, TRIB_KAFKA_INCONSISTENT_GROUP_PROTOCOL, NULL, NULL, false);
        return;
    }
    char given_id[512];
    snprintf(given_id, sizeof(given_id), "%.*s", req->MemberId.len > 0 ? (int)req->MemberId.len : 0,
             req->MemberId.len > 0 ? req->MemberId.ptr : "");
    coll_group_t *grp =
        coll_groups_get(g, req->GroupId.ptr, (size_t)req->GroupId.len, req->MemberId.len <= 0);
    if (!grp) {
        join_answer(r,
                    req->MemberId.len > 0 ? TRIB_KAFKA_UNKNOWN_MEMBER_ID
                                          : TRIB_KAFKA_UNKNOWN_SERVER_ERROR,
                    NULL, given_id, false);
        return;
    }
    if (grp->state == COLL_GROUP_DEAD) {
        join_answer(r, TRIB_KAFKA_COORDINATOR_NOT_AVAILABLE, NULL, given_id, false);
        return;
    }
    if (coll_group_has_internal(grp)) {
        /* A running sink's group: its protocol is one no client speaks (see Internal
         * members), so Kafka's answer for a protocol in common with nobody. */
        TRIB_LOG_RL(&g->refused_rl, TRIB_LOG_WARN, COLL_GROUP_FACILITY,
                    "group %s: refused a join from %s (INCONSISTENT_GROUP_PROTOCOL): the group "
                    "belongs to a running sink of this collector",
                    grp->id, r->peer);
        join_answer(r, TRIB_KAFKA_INCONSISTENT_GROUP_PROTOCOL, NULL, given_id, false);
        return;
    }

    if (req->MemberId.len <= 0) {
        coll_gmember_t *st = member_by_instance(grp, instance);
        if (!protocols_compatible(grp, st, req)) {
            join_answer(r, TRIB_KAFKA_INCONSISTENT_GROUP_PROTOCOL, NULL, NULL, false);
            return;
        }
        char id[512];
        new_member_id(g, r, id, sizeof(id));
        if (st) {
            /* A static member back with a new id: it takes the old member's place. */
            char *nid = coll_gdup(id, strlen(id));
            if (!nid) {
                join_answer(r, TRIB_KAFKA_UNKNOWN_SERVER_ERROR, NULL, NULL, false);
                return;
            }
            bool was_leader = is_leader(grp, st);
            bool changed = !same_protocols(st, req);
            if (st->join_req) {
                coll_gcall_t *old = st->join_req;
                st->join_req = NULL;
                join_answer(old, TRIB_KAFKA_FENCED_INSTANCE_ID, NULL, st->id, false);
            }
            if (st->sync_req) {
                coll_gcall_t *old = st->sync_req;
                st->sync_req = NULL;
                sync_answer(old, TRIB_KAFKA_FENCED_INSTANCE_ID, NULL, NULL);
            }
            char *old_id = st->id;
            st->id = nid;
            if (was_leader) {
                free(grp->leader);
                grp->leader = coll_gdup(nid, strlen(nid));
            }
            if (member_update(st, r, req) != 0) {
                free(old_id);
                join_answer(r, TRIB_KAFKA_UNKNOWN_SERVER_ERROR, NULL, NULL, false);
                return;
            }
            TRIB_LOG(TRIB_LOG_INFO, COLL_GROUP_FACILITY,
                     "group %s: static member %s rejoined as %s", grp->id, st->instance_id, nid);
            st->join_req = r;
            park(r, st);
            if (grp->state == COLL_GROUP_STABLE && !was_leader && !changed) {
                st->session_deadline_ms = now_ms(g) + (uint64_t)st->session_timeout_ms;
                if (clustered(g)) {
                    join_store(g, grp, st, r, old_id); /* answers once committed */
                    return;
                }
                free(old_id);
                persist_group(g, grp);
                st->join_req = NULL;
                join_answer(r, TRIB_KAFKA_NONE, grp, st->id, false);
                return;
            }
            free(old_id);
            joined(g, grp, st, false, true);
            return;
        }
        if (instance.len < 0 && v >= 4) {
            /* KIP-394: the member must come back with the id it is given. */
            struct pending_member *pm =
                realloc(grp->pending, (grp->npending + 1) * sizeof(*grp->pending));
            char *pid = coll_gdup(id, strlen(id));
            if (!pm || !pid) {
                if (pm) {
                    grp->pending = pm;
                }
                free(pid);
                join_answer(r, TRIB_KAFKA_UNKNOWN_SERVER_ERROR, NULL, NULL, false);
                return;
            }
            grp->pending = pm;
            pm[grp->npending].id = pid;
            pm[grp->npending].deadline_ms = now_ms(g) + (uint64_t)req->SessionTimeoutMs;
            grp->npending++;
            join_answer(r, TRIB_KAFKA_MEMBER_ID_REQUIRED, NULL, id, false);
            return;
        }
        if (take_protocol_type(grp, req) != 0) {
            join_answer(r, TRIB_KAFKA_UNKNOWN_SERVER_ERROR, NULL, NULL, false);
            return;
        }
        coll_gmember_t *m = member_add(grp, id, instance, r, req);
        if (!m) {
            join_answer(r, TRIB_KAFKA_UNKNOWN_SERVER_ERROR, NULL, NULL, false);
            return;
        }
        m->join_req = r;
        park(r, m);
        joined(g, grp, m, true, true);
        return;
    }

    coll_gmember_t *m = member_find(grp, req->MemberId);
    if (!m) {
        size_t k = grp->npending;
        for (size_t i = 0; i < grp->npending; i++) {
            if (keq(req->MemberId, grp->pending[i].id)) {
                k = i;
            }
        }
        if (k == grp->npending) {
            join_answer(r, TRIB_KAFKA_UNKNOWN_MEMBER_ID, NULL, given_id, false);
            return;
        }
        if (!protocols_compatible(grp, NULL, req)) {
            join_answer(r, TRIB_KAFKA_INCONSISTENT_GROUP_PROTOCOL, NULL, given_id, false);
            return;
        }
        free(grp->pending[k].id);
        grp->pending[k] = grp->pending[--grp->npending];
        if (take_protocol_type(grp, req) != 0 ||
            !(m = member_add(grp, given_id, instance, r, req))) {
            join_answer(r, TRIB_KAFKA_UNKNOWN_SERVER_ERROR, NULL, given_id, false);
            return;
        }
        m->join_req = r;
        park(r, m);
        joined(g, grp, m, true, true);
        return;
    }
    if (instance.len >= 0 && (!m->instance_id || !keq(instance, m->instance_id))) {
        join_answer(r, TRIB_KAFKA_FENCED_INSTANCE_ID, NULL, given_id, false);
        return;
    }
    if (!protocols_compatible(grp, m, req)) {
        join_answer(r, TRIB_KAFKA_INCONSISTENT_GROUP_PROTOCOL, NULL, given_id, false);
        return;
    }
    bool changed = !same_protocols(m, req);
    if (member_update(m, r, req) != 0) {
        join_answer(r, TRIB_KAFKA_UNKNOWN_SERVER_ERROR, NULL, given_id, false);
        return;
    }
    if (m->join_req) {
        coll_gcall_t *old = m->join_req;
        m->join_req = NULL;
        join_answer(old, TRIB_KAFKA_REBALANCE_IN_PROGRESS, NULL, m->id, false);
    }
    m->join_req = r;
    park(r, m);
    joined(g, grp, m, false, changed);
}

/* ---- SyncGroup -------------------------------------------------------------------------- */

void coll_group_sync(coll_groups_t *g, coll_gcall_t *r)
{
    const SyncGroupRequest *req = r->body;
    int16_t ce = coll_groups_coordinator_error(g, req->GroupId.ptr, req->GroupId.len);
    if (ce != TRIB_KAFKA_NONE) {
        sync_answer(r, ce, NULL, NULL);
        return;
    }
    coll_group_t *grp = req->GroupId.len > 0
                            ? coll_groups_find(g, req->GroupId.ptr, (size_t)req->GroupId.len)
                            : NULL;
    if (!grp) {
        sync_answer(
            r, req->GroupId.len > 0 ? TRIB_KAFKA_UNKNOWN_MEMBER_ID : TRIB_KAFKA_INVALID_GROUP_ID,
            NULL, NULL);
        return;
    }
    coll_gmember_t *m = member_find_external(grp, req->MemberId);
    if (!m) {
        sync_answer(r, TRIB_KAFKA_UNKNOWN_MEMBER_ID, NULL, NULL);
        return;
    }
    trib_kstr_t instance = r->version >= 3 ? req->GroupInstanceId : trib_kstr(NULL);
    if (instance.len >= 0 && (!m->instance_id || !keq(instance, m->instance_id))) {
        sync_answer(r, TRIB_KAFKA_FENCED_INSTANCE_ID, NULL, NULL);
        return;
    }
    if (req->GenerationId != grp->generation) {
        sync_answer(r, TRIB_KAFKA_ILLEGAL_GENERATION, NULL, NULL);
        return;
    }
    if (r->version >= 5 &&
        ((req->ProtocolType.len >= 0 && !keq(req->ProtocolType, grp->protocol_type)) ||
         (req->ProtocolName.len >= 0 && !keq(req->ProtocolName, grp->protocol)))) {
        sync_answer(r, TRIB_KAFKA_INCONSISTENT_GROUP_PROTOCOL, NULL, NULL);
        return;
    }
    m->session_deadline_ms = now_ms(g) + (uint64_t)m->session_timeout_ms;
    switch (grp->state) {
    case COLL_GROUP_PREPARING_REBALANCE:
        sync_answer(r, TRIB_KAFKA_REBALANCE_IN_PROGRESS, NULL, NULL);
        return;
    case COLL_GROUP_STABLE:
        sync_answer(r, TRIB_KAFKA_NONE, grp, m);
        return;
    case COLL_GROUP_COMPLETING_REBALANCE:
        break;
    default:
        sync_answer(r, TRIB_KAFKA_UNKNOWN_MEMBER_ID, NULL, NULL);
        return;
    }
    if (m->sync_req) {
        coll_gcall_t *old = m->sync_req;
        m->sync_req = NULL;
        sync_answer(old, TRIB_KAFKA_REBALANCE_IN_PROGRESS, NULL, NULL);
    }
    m->sync_req = r;
    park(r, m);
    if (!is_leader(grp, m)) {
        return;
    }
    for (coll_gmember_t *x = grp->members; x; x = x->next) {
        free(x->assignment);
        x->assignment = NULL;
        x->assignment_len = 0;
        for (int32_t i = 0; i < req->Assignments.count; i++) {
            const SyncGroupRequest_SyncGroupRequestAssignment *a = &req->Assignments.items[i];
            if (keq(a->MemberId, x->id) && a->Assignment.len > 0) {
                x->assignment = malloc((size_t)a->Assignment.len);
                if (x->assignment) {
                    memcpy(x->assignment, a->Assignment.ptr, (size_t)a->Assignment.len);
                    x->assignment_len = a->Assignment.len;
                }
                break;
            }
        }
    }
    if (clustered(g)) {
        sync_store(g, grp); /* answers once the assignment is below the high watermark */
        return;
    }
    set_state(g, grp, COLL_GROUP_STABLE);
    persist_group(g, grp);
    for (coll_gmember_t *x = grp->members; x; x = x->next) {
        if (x->sync_req) {
            coll_gcall_t *pr = x->sync_req;
            x->sync_req = NULL;
            sync_answer(pr, TRIB_KAFKA_NONE, grp, x);
        }
    }
}

/* ---- Heartbeat ------------------------------------------------------------------------- */

void coll_group_heartbeat(coll_groups_t *g, coll_gcall_t *r)
{
    const HeartbeatRequest *req = r->body;
    int16_t err = TRIB_KAFKA_NONE;
    coll_group_t *grp = req->GroupId.len > 0
                            ? coll_groups_find(g, req->GroupId.ptr, (size_t)req->GroupId.len)
                            : NULL;
    coll_gmember_t *m = grp ? member_find_external(grp, req->MemberId) : NULL;
    trib_kstr_t instance = r->version >= 3 ? req->GroupInstanceId : trib_kstr(NULL);
    int16_t ce = coll_groups_coordinator_error(g, req->GroupId.ptr, req->GroupId.len);
    if (ce == TRIB_KAFKA_COORDINATOR_LOAD_IN_PROGRESS) {
        /* Kafka answers a heartbeat blindly while the group loads: the member stays. */
        err = TRIB_KAFKA_NONE;
    } else if (ce != TRIB_KAFKA_NONE) {
        err = ce;
    } else if (req->GroupId.len <= 0) {
        err = TRIB_KAFKA_INVALID_GROUP_ID;
    } else if (!m) {
        err = TRIB_KAFKA_UNKNOWN_MEMBER_ID;
    } else if (instance.len >= 0 && (!m->instance_id || !keq(instance, m->instance_id))) {
        err = TRIB_KAFKA_FENCED_INSTANCE_ID;
    } else if (req->GenerationId != grp->generation) {
        err = TRIB_KAFKA_ILLEGAL_GENERATION;
    } else {
        m->session_deadline_ms = now_ms(g) + (uint64_t)m->session_timeout_ms;
        switch (grp->state) {
        case COLL_GROUP_PREPARING_REBALANCE:
            err = TRIB_KAFKA_REBALANCE_IN_PROGRESS;
            break;
        case COLL_GROUP_STABLE:
        case COLL_GROUP_COMPLETING_REBALANCE:
            break;
        default:
            err = TRIB_KAFKA_UNKNOWN_MEMBER_ID;
            break;
        }
    }
    heartbeat_answer(r, err);
}

/* ---- LeaveGroup -------------------------------------------------------------------------- */

static int16_t leave_one(coll_groups_t *g, coll_group_t *grp, trib_kstr_t member,
                         trib_kstr_t instance)
{
    if (!grp) {
        return TRIB_KAFKA_UNKNOWN_MEMBER_ID;
    }
    coll_gmember_t *m = NULL;
    if (member.len > 0) {
        m = member_find_external(grp, member);
    } else {
        m = member_by_instance(grp, instance);
    }
    if (!m) {
        /* A pending member (MEMBER_ID_REQUIRED) that gives up. */
        for (size_t i = 0; member.len > 0 && i < grp->npending; i++) {
            if (keq(member, grp->pending[i].id)) {
                free(grp->pending[i].id);
                grp->pending[i] = grp->pending[--grp->npending];
                try_complete_join(g, grp);
                return TRIB_KAFKA_NONE;
            }
        }
        return TRIB_KAFKA_UNKNOWN_MEMBER_ID;
    }
    if (instance.len >= 0 && (!m->instance_id || !keq(instance, m->instance_id))) {
        return TRIB_KAFKA_FENCED_INSTANCE_ID;
    }
    remove_member(g, grp, m, TRIB_KAFKA_UNKNOWN_MEMBER_ID, "left the group");
    return TRIB_KAFKA_NONE;
}

void coll_group_leave(coll_groups_t *g, coll_gcall_t *r)
{
    const LeaveGroupRequest *req = r->body;
    LeaveGroupResponse *resp = call_alloc(r, sizeof(*resp));
    if (!resp) {
        call_reject(r, "out of memory");
        return;
    }
    LeaveGroupResponse_init(resp);
    coll_group_t *grp = req->GroupId.len > 0
                            ? coll_groups_find(g, req->GroupId.ptr, (size_t)req->GroupId.len)
                            : NULL;
    int16_t ce = coll_groups_coordinator_error(g, req->GroupId.ptr, req->GroupId.len);
    if (ce != TRIB_KAFKA_NONE) {
        resp->ErrorCode = ce;
    } else if (req->GroupId.len <= 0) {
        resp->ErrorCode = TRIB_KAFKA_INVALID_GROUP_ID;
    } else if (r->version < 3) {
        resp->ErrorCode = leave_one(g, grp, req->MemberId, trib_kstr(NULL));
    } else {
        int32_t n = req->Members.count > 0 ? req->Members.count : 0;
        LeaveGroupResponse_MemberResponse *out = call_alloc(r, (size_t)n * sizeof(*out));
        if (n && !out) {
            call_reject(r, "out of memory");
            return;
        }
        if (!grp) {
            resp->ErrorCode = TRIB_KAFKA_UNKNOWN_MEMBER_ID;
        }
        for (int32_t i = 0; i < n; i++) {
            const LeaveGroupRequest_MemberIdentity *id = &req->Members.items[i];
            LeaveGroupResponse_MemberResponse_init(&out[i]);
            out[i].MemberId = id->MemberId;
            out[i].GroupInstanceId = id->GroupInstanceId;
            out[i].ErrorCode = leave_one(g, grp, id->MemberId, id->GroupInstanceId);
            call_note_error(r, out[i].ErrorCode);
        }
        resp->Members.items = out;
        resp->Members.count = n;
    }
    call_note_error(r, resp->ErrorCode);
    call_respond(r, &LeaveGroupResponse_codec, resp);
}

/* ---- internal members --------------------------------------------------------------------- */

/*
 * Internal members. A sink inside the collector is a consumer of its group
 * sink.<name>, but it has no connection to the coordinator. Rather than
 * have it run the classic protocol over a loopback socket (JoinGroup,
 * SyncGroup, heartbeats, session timeouts and rebalances that could only
 * ever have one outcome), the sink host registers it here directly: the
 * member is added to the group with the sink's subscription and the
 * partitions its tasks process, the generation is bumped, and the group is
 * Stable at once. Tools see an ordinary consumer group (protocol type
 * "consumer", ConsumerProtocol bytes) through ListGroups, DescribeGroups
 * and OffsetFetch.
 *
 * Nobody may share the group with it: a JoinGroup gets
 * INCONSISTENT_GROUP_PROTOCOL (what Kafka answers a member whose protocols
 * the group's members do not all support, and the protocol here is one no
 * client offers), and the member cannot be named over the wire (SyncGroup,
 * Heartbeat, LeaveGroup, OffsetCommit get UNKNOWN_MEMBER_ID), so neither
 * its partitions nor its offsets can be taken over. A standalone commit
 * (generation -1, as kafka-consumer-groups --reset-offsets and
 * AdminClient.alterConsumerGroupOffsets send) is refused with
 * UNKNOWN_MEMBER_ID because the group is not empty, as in Kafka.
 */

bool coll_group_has_internal(const coll_group_t *grp)
{
    for (const coll_gmember_t *m = grp->members; m; m = m->next) {
        if (m->internal) {
            return true;
        }
    }
    return false;
}

static bool bytes_eq(const uint8_t *a, int32_t alen, const uint8_t *b, int32_t blen)
{
    return alen == blen && (alen == 0 || memcmp(a, b, (size_t)alen) == 0);
}

static uint8_t *bytes_dup(const uint8_t *p, int32_t len)
{
    uint8_t *d = malloc(len > 0 ? (size_t)len : 1);
    if (d && len > 0) {
        memcpy(d, p, (size_t)len);
    }
    return d;
}

/*
 * Evicts every member that is not internal (their parked requests fail):
 * clients that joined while the sink was not running, or the sink's own
 * member as the previous run stored it (reloaded from __consumer_offsets).
 */
static void evict_external(coll_group_t *grp, const char *internal_id)
{
    coll_gmember_t **pp = &grp->members;
    while (*pp) {
        coll_gmember_t *m = *pp;
        if (m->internal) {
            pp = &m->next;
            continue;
        }
        if (strcmp(m->id, internal_id) == 0) {
            TRIB_LOG(TRIB_LOG_INFO, COLL_GROUP_FACILITY,
                     "group %s: member %s of the previous run replaced", grp->id, m->id);
        } else {
            TRIB_LOG(TRIB_LOG_WARN, COLL_GROUP_FACILITY,
                     "group %s: member %s (%s) evicted: the group belongs to a sink of this "
                     "collector",
                     grp->id, m->id, m->client_host ? m->client_host : "-");
        }
        if (m->join_req) {
            coll_gcall_t *r = m->join_req;
            m->join_req = NULL;
            join_answer(r, TRIB_KAFKA_UNKNOWN_MEMBER_ID, NULL, m->id, false);
        }
        if (m->sync_req) {
            coll_gcall_t *r = m->sync_req;
            m->sync_req = NULL;
            sync_answer(r, TRIB_KAFKA_UNKNOWN_MEMBER_ID, NULL, NULL);
        }
        *pp = m->next;
        grp->nmembers--;
        member_free(m);
    }
    for (size_t i = 0; i < grp->npending; i++) {
        free(grp->pending[i].id);
    }
    grp->npending = 0;
}

int coll_group_internal_set(coll_groups_t *g, const char *group, const coll_ginternal_t *in)
{
    coll_group_t *grp = coll_groups_get(g, group, strlen(group), true);
    if (!grp) {
        return -ENOMEM;
    }
    coll_gmember_t *m = NULL;
    for (coll_gmember_t *x = grp->members; x; x = x->next) {
        if (x->internal && strcmp(x->id, in->member_id) == 0) {
            m = x;
        }
    }
    if (m && grp->state == COLL_GROUP_STABLE && m->nprotocols == 1 &&
        bytes_eq(m->proto_meta[0], m->proto_meta_len[0], in->subscription, in->subscription_len) &&
        bytes_eq(m->assignment, m->assignment_len, in->assignment, in->assignment_len)) {
        return 0; /* nothing new */
    }
    char *pt = coll_gdup("consumer", 8);
    char *proto = coll_gdup(COLL_GROUP_INTERNAL_PROTOCOL, strlen(COLL_GROUP_INTERNAL_PROTOCOL));
    char *leader = coll_gdup(in->member_id, strlen(in->member_id));
    char *pname = coll_gdup(COLL_GROUP_INTERNAL_PROTOCOL, strlen(COLL_GROUP_INTERNAL_PROTOCOL));
    char **names = calloc(1, sizeof(*names));
    uint8_t **metas = calloc(1, sizeof(*metas));
    int32_t *lens = calloc(1, sizeof(*lens));
    uint8_t *meta = bytes_dup(in->subscription, in->subscription_len);
    uint8_t *asg = bytes_dup(in->assignment, in->assignment_len);
    char *cid = coll_gdup(in->client_id, strlen(in->client_id));
    char *host = coll_gdup(in->client_host, strlen(in->client_host));
    coll_gmember_t *nm = m ? NULL : calloc(1, sizeof(*nm));
    char *mid = m ? NULL : coll_gdup(in->member_id, strlen(in->member_id));
    if (!pt || !proto || !leader || !pname || !names || !metas || !lens || !meta || !asg || !cid ||
        !host || (!m && (!nm || !mid))) {
        free(pt);
        free(proto);
        free(leader);
        free(pname);
        free(names);
        free(metas);
        free(lens);
        free(meta);
        free(asg);
        free(cid);
        free(host);
        free(nm);
        free(mid);
        return -ENOMEM;
    }
    evict_external(grp, in->member_id);
    if (!m) {
        m = nm;
        m->id = mid;
        m->internal = true;
        m->session_timeout_ms = 10000;
        m->rebalance_timeout_ms = 10000;
        coll_gmember_t **pp = &grp->members;
        while (*pp) {
            pp = &(*pp)->next;
        }
        *pp = m;
        grp->nmembers++;
        TRIB_LOG(TRIB_LOG_INFO, COLL_GROUP_FACILITY, "group %s: internal member %s joined", grp->id,
                 m->id);
    }
    member_free_protocols(m);
    names[0] = pname;
    metas[0] = meta;
    lens[0] = in->subscription_len;
    m->proto_names = names;
    m->proto_meta = metas;
    m->proto_meta_len = lens;
    m->nprotocols = 1;
    free(m->assignment);
    m->assignment = asg;
    m->assignment_len = in->assignment_len;
    free(m->client_id);
    m->client_id = cid;
    free(m->client_host);
    m->client_host = host;
    free(grp->protocol_type);
    grp->protocol_type = pt;
    free(grp->protocol);
    grp->protocol = proto;
    free(grp->leader);
    grp->leader = leader;
    grp->generation++;
    set_state(g, grp, COLL_GROUP_STABLE);
    persist_group(g, grp);
    return 0;
}

void coll_group_internal_leave(coll_groups_t *g, const char *group, const char *member_id)
{
    coll_group_t *grp = coll_groups_find(g, group, strlen(group));
    if (!grp) {
        return;
    }
    coll_gmember_t **pp = &grp->members;
    while (*pp && !((*pp)->internal && strcmp((*pp)->id, member_id) == 0)) {
        pp = &(*pp)->next;
    }
    coll_gmember_t *m = *pp;
    if (!m) {
        return;
    }
    *pp = m->next;
    grp->nmembers--;
    TRIB_LOG(TRIB_LOG_INFO, COLL_GROUP_FACILITY, "group %s: internal member %s left", grp->id,
             m->id);
    member_free(m);
    free(grp->leader);
    grp->leader = NULL;
    free(grp->protocol);
    grp->protocol = NULL;
    grp->generation++;
    if (grp->nmembers == 0) {
        set_state(g, grp, COLL_GROUP_EMPTY);
    }
    if (!g->stopping) {
        persist_group(g, grp);
    }
}

int16_t coll_group_internal_commit_check(coll_groups_t *g, const char *group, const char *member_id,
                                         coll_group_t **out)
{
    *out = NULL;
    int16_t ce = coll_groups_coordinator_error(g, group, (int32_t)strlen(group));
    if (ce != TRIB_KAFKA_NONE) {
        return ce;
    }
    coll_group_t *grp = coll_groups_find(g, group, strlen(group));
    if (!grp || grp->state == COLL_GROUP_DEAD) {
        return TRIB_KAFKA_UNKNOWN_MEMBER_ID;
    }
    for (coll_gmember_t *m = grp->members; m; m = m->next) {
        if (m->internal && strcmp(m->id, member_id) == 0) {
            *out = grp;
            return TRIB_KAFKA_NONE;
        }
    }
    return TRIB_KAFKA_UNKNOWN_MEMBER_ID;
}

/* ---- offsets ------------------------------------------------------------------------------ */

int16_t coll_group_commit_check(coll_groups_t *g, trib_kstr_t group, int32_t generation,
                                trib_kstr_t member, trib_kstr_t instance, coll_group_t **out)
{
    *out = NULL;
    int16_t ce = coll_groups_coordinator_error(g, group.ptr, group.len);
    if (ce != TRIB_KAFKA_NONE) {
        return ce;
    }
    if (group.len <= 0) {
        return TRIB_KAFKA_INVALID_GROUP_ID;
    }
    coll_group_t *grp = coll_groups_find(g, group.ptr, (size_t)group.len);
    if (!grp) {
        if (generation >= 0) {
            return TRIB_KAFKA_ILLEGAL_GENERATION;
        }
        grp = coll_groups_get(g, group.ptr, (size_t)group.len, true);
        if (!grp) {
            return TRIB_KAFKA_UNKNOWN_SERVER_ERROR;
        }
        *out = grp;
        return TRIB_KAFKA_NONE;
    }
    if (grp->state == COLL_GROUP_DEAD) {
        return TRIB_KAFKA_COORDINATOR_NOT_AVAILABLE;
    }
    if (generation < 0 && grp->state == COLL_GROUP_EMPTY) {
        *out = grp;
        return TRIB_KAFKA_NONE;
    }
    if (grp->state == COLL_GROUP_COMPLETING_REBALANCE) {
        return TRIB_KAFKA_REBALANCE_IN_PROGRESS;
    }
    /* A group with members (a running sink's too) takes commits from its members only:
     * a standalone commit gets UNKNOWN_MEMBER_ID, as Kafka answers an AdminClient's
     * alterConsumerGroupOffsets on a non-empty group. */
    coll_gmember_t *m = member_find_external(grp, member);
    if (!m) {
        return TRIB_KAFKA_UNKNOWN_MEMBER_ID;
    }
    if (instance.len >= 0 && (!m->instance_id || !keq(instance, m->instance_id))) {
        return TRIB_KAFKA_FENCED_INSTANCE_ID;
    }
    if (generation != grp->generation) {
        return TRIB_KAFKA_ILLEGAL_GENERATION;
    }
    m->session_deadline_ms = now_ms(g) + (uint64_t)m->session_timeout_ms;
    *out = grp;
    return TRIB_KAFKA_NONE;
}

static coll_goffset_t *offset_find(const coll_group_t *grp, const char *topic, size_t len,
                                   int32_t partition)
{
    for (size_t i = 0; i < grp->noffsets; i++) {
        coll_goffset_t *o = &grp->offsets[i];
        if (o->partition == partition && strlen(o->topic) == len &&
            memcmp(o->topic, topic, len) == 0) {
            return o;
        }
    }
    return NULL;
}

const coll_goffset_t *coll_group_offset(const coll_group_t *grp, const char *topic, size_t len,
                                        int32_t partition)
{
    return offset_find(grp, topic, len, partition);
}

coll_goffset_t *coll_group_offset_set(coll_group_t *grp, const char *topic, size_t tlen,
                                      int32_t partition, int64_t offset, int32_t leader_epoch,
                                      const char *meta, size_t mlen, int64_t ts)
{
    coll_goffset_t *o = offset_find(grp, topic, tlen, partition);
    if (!o) {
        if (grp->noffsets == grp->offsets_cap) {
            size_t cap = grp->offsets_cap ? grp->offsets_cap * 2 : 8;
            coll_goffset_t *n = realloc(grp->offsets, cap * sizeof(*n));
            if (!n) {
                return NULL;
            }
            grp->offsets = n;
            grp->offsets_cap = cap;
        }
        char *t = coll_gdup(topic, tlen);
        if (!t) {
            return NULL;
        }
        o = &grp->offsets[grp->noffsets++];
        memset(o, 0, sizeof(*o));
        o->topic = t;
        o->partition = partition;
    }
    char *m = meta ? coll_gdup(meta, mlen) : NULL;
    free(o->metadata);
    o->metadata = m;
    o->offset = offset;
    o->leader_epoch = leader_epoch;
    o->commit_ts = ts;
    return o;
}

bool coll_group_offset_remove(coll_group_t *grp, const char *topic, size_t tlen, int32_t partition)
{
    coll_goffset_t *o = offset_find(grp, topic, tlen, partition);
    if (!o) {
        return false;
    }
    free(o->topic);
    free(o->metadata);
    *o = grp->offsets[--grp->noffsets];
    return true;
}

int16_t coll_group_commit(coll_groups_t *g, coll_group_t *grp, trib_kstr_t topic, int32_t partition,
                          int64_t offset, int32_t leader_epoch, trib_kstr_t metadata)
{
    if (metadata.len > MAX_OFFSET_METADATA) {
        return TRIB_KAFKA_OFFSET_METADATA_TOO_LARGE;
    }
    coll_goffset_t o = {
        .topic = NULL,
        .partition = partition,
        .offset = offset,
        .leader_epoch = leader_epoch,
        .metadata = NULL,
        .commit_ts = g->host.wall_ms(),
    };
    char meta[MAX_OFFSET_METADATA + 1];
    size_t mlen = metadata.len > 0 ? (size_t)metadata.len : 0;
    memcpy(meta, mlen ? metadata.ptr : "", mlen);
    meta[mlen] = 0;
    o.metadata = meta;
    char tname[256];
    if (topic.len <= 0 || topic.len >= (int32_t)sizeof(tname)) {
        return TRIB_KAFKA_UNKNOWN_TOPIC_OR_PARTITION;
    }
    memcpy(tname, topic.ptr, (size_t)topic.len);
    tname[topic.len] = 0;
    int rc = coll_gstore_offset(g, grp->id, tname, partition, &o);
    if (rc) {
        return coll_kafka_error_from(rc) == TRIB_KAFKA_UNKNOWN_SERVER_ERROR
                   ? TRIB_KAFKA_UNKNOWN_SERVER_ERROR
                   : TRIB_KAFKA_COORDINATOR_NOT_AVAILABLE;
    }
    coll_group_offset_set(grp, tname, (size_t)topic.len, partition, offset, leader_epoch, meta,
                          mlen, o.commit_ts);
    return TRIB_KAFKA_NONE;
}

static int16_t store_error(int rc)
{
    return coll_kafka_error_from(rc) == TRIB_KAFKA_UNKNOWN_SERVER_ERROR
               ? TRIB_KAFKA_UNKNOWN_SERVER_ERROR
               : TRIB_KAFKA_COORDINATOR_NOT_AVAILABLE;
}

static int16_t write_check(coll_groups_t *g, const char *group);
static void gwait_free(struct coll_gwait *w);
static int gwait_start(coll_groups_t *g, const char *group, struct coll_gwait *w);
static void apply_offsets(coll_groups_t *g, const char *group, const coll_goffset_t *v, size_t n,
                          int64_t end);

size_t coll_group_commit_many(coll_groups_t *g, coll_group_t *grp, coll_gcommit_t *c, size_t n,
                              coll_gcommit_cb done, void *arg, bool *waiting)
{
    size_t k = 0;
    if (waiting) {
        *waiting = false;
    }
    coll_goffset_t *vals = calloc(n ? n : 1, sizeof(*vals));
    const coll_goffset_t **vp = calloc(n ? n : 1, sizeof(*vp));
    const char **topics = calloc(n ? n : 1, sizeof(*topics));
    int32_t *parts = calloc(n ? n : 1, sizeof(*parts));
    size_t *idx = calloc(n ? n : 1, sizeof(*idx));
    if (!topics || !parts || !vals || !vp || !idx) {
        for (size_t i = 0; i < n; i++) {
            c[i].error = c[i].error ? c[i].error : TRIB_KAFKA_UNKNOWN_SERVER_ERROR;
        }
        goto out;
    }
    int64_t now = g->host.wall_ms();
    for (size_t i = 0; i < n; i++) {
        if (c[i].error != TRIB_KAFKA_NONE) {
            continue;
        }
        if (c[i].metadata.len > MAX_OFFSET_METADATA) {
            c[i].error = TRIB_KAFKA_OFFSET_METADATA_TOO_LARGE;
            continue;
        }
        char *t = c[i].topic.len > 0 ? coll_gdup(c[i].topic.ptr, (size_t)c[i].topic.len) : NULL;
        char *m = coll_gdup(c[i].metadata.len > 0 ? c[i].metadata.ptr : "",
                            c[i].metadata.len > 0 ? (size_t)c[i].metadata.len : 0);
        if (!t || !m) {
            free(t);
            free(m);
            c[i].error = c[i].topic.len > 0 ? TRIB_KAFKA_UNKNOWN_SERVER_ERROR
                                            : TRIB_KAFKA_UNKNOWN_TOPIC_OR_PARTITION;
            continue;
        }
        topics[k] = t;
        parts[k] = c[i].partition;
        vals[k].topic = t;
        vals[k].partition = c[i].partition;
        vals[k].offset = c[i].offset;
        vals[k].leader_epoch = c[i].leader_epoch;
        vals[k].metadata = m;
        vals[k].commit_ts = now;
        vp[k] = &vals[k];
        idx[k] = i;
        k++;
    }
    /* A cluster: visible and answered once below the high watermark (see the header). */
    bool defer = done && waiting && k > 0 && clustered(g);
    int16_t err = defer ? write_check(g, grp->id) : TRIB_KAFKA_NONE;
    if (err == TRIB_KAFKA_NONE) {
        int rc = coll_gstore_offsets(g, grp->id, topics, parts, vp, k);
        err = rc ? store_error(rc) : TRIB_KAFKA_NONE;
    }
    bool apply = err == TRIB_KAFKA_NONE;
    if (err == TRIB_KAFKA_NONE && defer) {
        struct coll_gwait *w = calloc(1, sizeof(*w));
        if (w && (w->group = coll_gdup(grp->id, strlen(grp->id)))) {
            w->commit = vals; /* the wait owns the values (their strings too) from here */
            w->ncommit = k;
            vals = NULL;
            w->cb = done;
            w->arg = arg;
            int st = gwait_start(g, grp->id, w);
            if (st == 0) {
                *waiting = true;
                apply = false;
            } else {
                /* answered already (or nothing to wait on): applied here */
                err = st > 0 ? w->error : TRIB_KAFKA_NONE;
                if (err == TRIB_KAFKA_NONE) {
                    apply_offsets(g, grp->id, w->commit, w->ncommit, w->end);
                }
                apply = false;
                gwait_free(w);
            }
        } else {
            if (w) {
                free(w);
            }
            err = TRIB_KAFKA_UNKNOWN_SERVER_ERROR;
        }
    }
    for (size_t j = 0; j < k; j++) {
        if (apply && vals) {
            coll_group_offset_set(grp, topics[j], strlen(topics[j]), parts[j], vals[j].offset,
                                  vals[j].leader_epoch, vals[j].metadata, strlen(vals[j].metadata),
                                  now);
        }
        if (err != TRIB_KAFKA_NONE) {
            c[idx[j]].error = err;
        }
        if (vals) {
            free((char *)topics[j]);
            free(vals[j].metadata);
        }
    }
    if (err != TRIB_KAFKA_NONE) {
        k = 0;
    }
out:
    free(topics);
    free(parts);
    free(vals);
    free(vp);
    free(idx);
    return k;
}

bool coll_group_offset_delete(coll_groups_t *g, coll_group_t *grp, const char *topic, size_t len,
                              int32_t partition)
{
    if (!offset_find(grp, topic, len, partition)) {
        return false;
    }
    char tname[256];
    snprintf(tname, sizeof(tname), "%.*s", (int)len, topic);
    coll_gstore_offset(g, grp->id, tname, partition, NULL);
    return coll_group_offset_remove(grp, topic, len, partition);
}

bool coll_group_subscribed(const coll_group_t *grp, const char *topic, size_t len)
{
    if (!grp->protocol_type || strcmp(grp->protocol_type, "consumer") != 0) {
        return false;
    }
    bool found = false;
    for (const coll_gmember_t *m = grp->members; m && !found; m = m->next) {
        int32_t mlen;
        const uint8_t *md = coll_gmember_metadata(grp, m, &mlen);
        if (!md && m->nprotocols) {
            md = m->proto_meta[0];
            mlen = m->proto_meta_len[0];
        }
        if (!md || mlen < 2) {
            continue;
        }
        trib_arena_t a;
        trib_arena_init(&a);
        trib_slice_t s = trib_slice_make(md, (size_t)mlen);
        int16_t ver = trib_slice_i16(&s);
        ConsumerProtocolSubscription sub;
        ConsumerProtocolSubscription_init(&sub);
        if (ver > 3) {
            ver = 3; /* newer versions only add fields at the end */
        }
        if (ver >= 0 && ConsumerProtocolSubscription_decode(&sub, &s, ver, &a) == 0) {
            for (int32_t i = 0; i < sub.Topics.count; i++) {
                trib_kstr_t t = sub.Topics.items[i];
                if (t.len == (int32_t)len && memcmp(t.ptr, topic, len) == 0) {
                    found = true;
                }
            }
        }
        trib_arena_fini(&a);
    }
    return found;
}

int16_t coll_group_delete(coll_groups_t *g, const char *id, size_t len)
{
    int16_t ce = coll_groups_coordinator_error(g, id, (int32_t)len);
    if (ce != TRIB_KAFKA_NONE) {
        return ce;
    }
    coll_group_t *grp = coll_groups_find(g, id, len);
    if (!grp || grp->state == COLL_GROUP_DEAD) {
        return TRIB_KAFKA_GROUP_ID_NOT_FOUND;
    }
    if (grp->state != COLL_GROUP_EMPTY) {
        return TRIB_KAFKA_NON_EMPTY_GROUP;
    }
    for (size_t i = 0; i < grp->noffsets; i++) {
        coll_gstore_offset(g, grp->id, grp->offsets[i].topic, grp->offsets[i].partition, NULL);
    }
    coll_gstore_group(g, grp->id, NULL);
    TRIB_LOG(TRIB_LOG_INFO, COLL_GROUP_FACILITY, "group %s deleted", grp->id);
    coll_groups_remove(g, grp);
    return TRIB_KAFKA_NONE;
}

/* ---- a cluster: groups move with the leadership of __consumer_offsets -------------------------
 */

/*
 * On a cluster the coordinator of a group is the leader of its partition
 * of __consumer_offsets (Kafka's GroupMetadataManager):
 *
 * - Becoming its leader (coll_groups_partition_changed) starts a load: the
 *   partition's log is replayed from its start to the log end it had then,
 *   one chunk per turn of the housekeeping timer, and the partition's
 *   groups answer COORDINATOR_LOAD_IN_PROGRESS until it ends (Heartbeat
 *   NONE, as Kafka). The log end, not the high watermark: a new leader's
 *   high watermark may trail commits that were acknowledged, and nothing
 *   below its log end is ever truncated while it leads. Then the groups
 *   answer, their members' sessions counted from the end of the load.
 * - Losing it (a follower now, or the partition removed) unloads its
 *   groups: parked JoinGroup/SyncGroup get NOT_COORDINATOR, and every
 *   request after that too, so clients look the coordinator up again.
 *   Groups of a running sink (internal members) stay: moving sinks is the
 *   sink host's business.
 * - A write is acknowledged once the high watermark passes it (acks=all):
 *   NOT_ENOUGH_REPLICAS before the append becomes COORDINATOR_NOT_AVAILABLE,
 *   as in Kafka, and so does an ISR that fell below min.insync.replicas
 *   meanwhile; losing the leadership gives NOT_COORDINATOR and
 *   offsets.commit.timeout.ms REQUEST_TIMED_OUT. Committed offsets are
 *   visible only after that (in log order: an offset read from a later
 *   record is not replaced by an earlier one), and the leader's SyncGroup
 *   assignment is handed out only after it, so what a member was told
 *   survives a failover.
 */

static bool clustered(const coll_groups_t *g)
{
    return coll_cluster_replicated(g->host.cluster);
}

/* The group's partition of __consumer_offsets, or NULL. */
static coll_partition_t *group_partition(coll_groups_t *g, const char *id, size_t len)
{
    coll_topic_t *t = coll_groups_topic(g, false);
    return t ? coll_cluster_partition(t, coll_group_partition_for(id, len, t->npartitions)) : NULL;
}

static coll_gpart_t *gpart_of(coll_groups_t *g, const char *id, size_t len)
{
    coll_partition_t *p = group_partition(g, id, len);
    return p && p->index >= 0 && p->index < g->nparts ? &g->parts[p->index] : NULL;
}

/* True when the group answers here (always with the local backend). */
static bool group_active(coll_groups_t *g, const coll_group_t *grp)
{
    if (!clustered(g)) {
        return true;
    }
    const coll_gpart_t *gp = gpart_of(g, grp->id, strlen(grp->id));
    return gp && gp->state == COLL_GPART_LOADED;
}

static void answer_parked(coll_group_t *grp, int16_t err)
{
    for (coll_gmember_t *m = grp->members; m; m = m->next) {
        if (m->join_req) {
            coll_gcall_t *r = m->join_req;
            m->join_req = NULL;
            join_answer(r, err, NULL, m->id, false);
        }
        if (m->sync_req) {
            coll_gcall_t *r = m->sync_req;
            m->sync_req = NULL;
            sync_answer(r, err, NULL, NULL);
        }
    }
}

/* Kafka's mapping of an append's error to the coordinator's answer. */
static int16_t write_error(int16_t e)
{
    switch (e) {
    case TRIB_KAFKA_NONE:
    case TRIB_KAFKA_REQUEST_TIMED_OUT:
        return e;
    case TRIB_KAFKA_NOT_LEADER_OR_FOLLOWER:
    case TRIB_KAFKA_KAFKA_STORAGE_ERROR:
        return TRIB_KAFKA_NOT_COORDINATOR;
    default:
        return TRIB_KAFKA_COORDINATOR_NOT_AVAILABLE;
    }
}

/* Before a write: the ISR must be at least min.insync.replicas (NOT_ENOUGH_REPLICAS). */
static int16_t write_check(coll_groups_t *g, const char *group)
{
    coll_partition_t *p = group_partition(g, group, strlen(group));
    if (!p) {
        return TRIB_KAFKA_COORDINATOR_NOT_AVAILABLE;
    }
    int64_t min_isr = p->topic->config.v[COLL_TCFG_MIN_INSYNC_REPLICAS].i;
    if (p->nisr < min_isr) {
        static trib_log_ratelimit_t rl = TRIB_LOG_RATELIMIT_INIT(10000, 3);
        TRIB_LOG_RL(&rl, TRIB_LOG_WARN, COLL_GROUP_FACILITY,
                    "group %s: not written: %s-%d has %d in-sync replicas, min.insync.replicas "
                    "is %d",
                    group, COLL_OFFSETS_TOPIC, (int)p->index, (int)p->nisr, (int)min_isr);
        return write_error(TRIB_KAFKA_NOT_ENOUGH_REPLICAS);
    }
    return TRIB_KAFKA_NONE;
}

static void apply_offsets(coll_groups_t *g, const char *group, const coll_goffset_t *v, size_t n,
                          int64_t end)
{
    coll_group_t *grp = coll_groups_find(g, group, strlen(group));
    if (!grp) {
        return; /* unloaded meanwhile: the log has them for the next load */
    }
    for (size_t i = 0; i < n; i++) {
        size_t tlen = strlen(v[i].topic);
        const coll_goffset_t *cur = offset_find(grp, v[i].topic, tlen, v[i].partition);
        if (cur && cur->log_end >= end) {
            continue; /* a later record's offset is there already */
        }
        coll_goffset_t *o = coll_group_offset_set(grp, v[i].topic, tlen, v[i].partition,
                                                  v[i].offset, v[i].leader_epoch, v[i].metadata,
                                                  strlen(v[i].metadata), v[i].commit_ts);
        if (o) {
            o->log_end = end;
        }
    }
}

static void gwait_free(struct coll_gwait *w)
{
    for (size_t i = 0; i < w->ncommit; i++) {
        free(w->commit[i].topic);
        free(w->commit[i].metadata);
    }
    free(w->commit);
    free(w->group);
    free(w->member);
    free(w->old_id);
    free(w);
}

static void sync_propagate(coll_groups_t *g, coll_group_t *grp, int16_t err);
static void join_finish(coll_group_t *grp, const char *member, coll_gcall_t *r, char *old_id,
                        int16_t err);

static void gwait_finish(struct coll_gwait *w)
{
    coll_groups_t *g = w->g;
    if (w->kind == GWAIT_COMMIT) {
        if (w->error == TRIB_KAFKA_NONE) {
            apply_offsets(g, w->group, w->commit, w->ncommit, w->end);
        }
        w->cb(w->arg, w->error);
    } else if (w->kind == GWAIT_JOIN) {
        join_finish(coll_groups_find(g, w->group, strlen(w->group)), w->member, w->call,
                    w->old_id, w->error);
        w->old_id = NULL;
    } else {
        coll_group_t *grp = coll_groups_find(g, w->group, strlen(w->group));
        if (grp && grp->state == COLL_GROUP_COMPLETING_REBALANCE &&
            grp->generation == w->generation) {
            sync_propagate(g, grp, w->error);
        }
    }
    gwait_free(w);
}

static void gwait_unlink(struct coll_gwait *w)
{
    coll_groups_t *g = w->g;
    if (w->prev) {
        w->prev->next = w->next;
    } else {
        g->waits = w->next;
    }
    if (w->next) {
        w->next->prev = w->prev;
    }
    w->prev = w->next = NULL;
}

static void gwait_done(coll_group_hwait_t *hw, int16_t error)
{
    struct coll_gwait *w = hw->data;
    gwait_unlink(w);
    w->error = write_error(error);
    w->finished = true;
    if (!w->starting) {
        gwait_finish(w);
    }
}

/*
 * Waits (the host's hw_wait) for the high watermark of the group's
 * partition to pass what was just appended. 0: waiting (gwait_finish runs
 * later); 1: answered at once (w->error; the caller finishes and frees w);
 * -1: no leader state to wait on (the caller applies at once and frees w).
 */
static int gwait_start(coll_groups_t *g, const char *group, struct coll_gwait *w)
{
    coll_partition_t *p = group_partition(g, group, strlen(group));
    if (!p || !p->log) {
        return -1;
    }
    w->g = g;
    w->end = coll_log_end_offset(p->log);
    w->deadline_ms =
        now_ms(g) +
        (uint64_t)(g->cfg.offsets_commit_timeout_ms > 0 ? g->cfg.offsets_commit_timeout_ms : 5000);
    w->hw.required = w->end;
    w->hw.min_isr = (int32_t)p->topic->config.v[COLL_TCFG_MIN_INSYNC_REPLICAS].i;
    w->hw.done = gwait_done;
    w->hw.data = w;
    w->next = g->waits;
    if (w->next) {
        w->next->prev = w;
    }
    g->waits = w;
    w->starting = true;
    int rc = g->host.hw_wait(p, &w->hw);
    w->starting = false;
    if (rc != 0) {
        gwait_unlink(w); /* done never ran */
        if (rc == TRIB_ESTATE) {
            return -1;
        }
        w->error = TRIB_KAFKA_UNKNOWN_SERVER_ERROR; /* out of memory */
        return 1;
    }
    return w->finished ? 1 : 0;
}

/* Answers every waiting write whose deadline passed (all of them with `all`). */
static void gwaits_expire(coll_groups_t *g, bool all, int16_t error)
{
    uint64_t now = now_ms(g);
    for (;;) {
        struct coll_gwait *w = g->waits;
        while (w && !all && w->deadline_ms > now) {
            w = w->next;
        }
        if (!w) {
            return;
        }
        g->host.hw_cancel(&w->hw, error); /* unlinks it */
    }
}

/* The end of a SyncGroup's wait: the assignment is handed out, or the rebalance starts over. */
static void sync_propagate(coll_groups_t *g, coll_group_t *grp, int16_t err)
{
    if (err == TRIB_KAFKA_NONE) {
        set_state(g, grp, COLL_GROUP_STABLE);
        for (coll_gmember_t *x = grp->members; x; x = x->next) {
            if (x->sync_req) {
                coll_gcall_t *pr = x->sync_req;
                x->sync_req = NULL;
                sync_answer(pr, TRIB_KAFKA_NONE, grp, x);
            }
        }
        return;
    }
    TRIB_LOG(TRIB_LOG_WARN, COLL_GROUP_FACILITY,
             "group %s: the assignment of generation %" PRId32 " was not stored: %s", grp->id,
             grp->generation, trib_kafka_err_name(err));
    for (coll_gmember_t *x = grp->members; x; x = x->next) {
        free(x->assignment);
        x->assignment = NULL;
        x->assignment_len = 0;
        if (x->sync_req) {
            coll_gcall_t *pr = x->sync_req;
            x->sync_req = NULL;
            sync_answer(pr, err, NULL, NULL);
        }
    }
    if (err != TRIB_KAFKA_NOT_COORDINATOR) {
        prepare_rebalance(g, grp, "the assignment could not be stored");
    }
}

/* The leader's SyncGroup on a cluster: store the assignment, answer once it is committed. */
static void sync_store(coll_groups_t *g, coll_group_t *grp)
{
    int16_t err = write_check(g, grp->id);
    if (err == TRIB_KAFKA_NONE) {
        int rc = coll_gstore_group(g, grp->id, grp);
        err = rc ? store_error(rc) : TRIB_KAFKA_NONE;
    }
    if (err == TRIB_KAFKA_NONE) {
        struct coll_gwait *w = calloc(1, sizeof(*w));
        if (!w || !(w->group = coll_gdup(grp->id, strlen(grp->id)))) {
            free(w);
            err = TRIB_KAFKA_UNKNOWN_SERVER_ERROR;
        } else {
            w->kind = GWAIT_SYNC;
            w->generation = grp->generation;
            int st = gwait_start(g, grp->id, w);
            if (st == 0) {
                return;
            }
            err = st > 0 ? w->error : TRIB_KAFKA_NONE;
            gwait_free(w);
        }
    }
    sync_propagate(g, grp, err);
}

/*
 * The end of a static member's JoinGroup that replaced its member id in a
 * Stable group on a cluster (join_store): answered with its new id once
 * the group's record is committed; otherwise it keeps the old id and the
 * call gets the error (Kafka's storeGroup mapping: a timeout asks for a
 * rejoin). Nothing when the call was answered meanwhile (fenced, a
 * rebalance, the partition unloaded, the client gone). Frees old_id.
 */
static void join_finish(coll_group_t *grp, const char *member, coll_gcall_t *r, char *old_id,
                        int16_t err)
{
    coll_gmember_t *m = grp ? member_find(grp, trib_kstr(member)) : NULL;
    if (!m || m->join_req != r) {
        free(old_id);
        return;
    }
    m->join_req = NULL;
    if (err == TRIB_KAFKA_NONE) {
        join_answer(r, TRIB_KAFKA_NONE, grp, m->id, false);
        free(old_id);
        return;
    }
    TRIB_LOG(TRIB_LOG_WARN, COLL_GROUP_FACILITY,
             "group %s: static member %s keeps its id %s: its new one was not stored: %s",
             grp->id, m->instance_id ? m->instance_id : "-", old_id ? old_id : m->id,
             trib_kafka_err_name(err));
    if (old_id && !member_find(grp, trib_kstr(old_id))) {
        free(m->id);
        m->id = old_id;
        old_id = NULL;
    }
    free(old_id);
    join_answer(r, err == TRIB_KAFKA_REQUEST_TIMED_OUT ? TRIB_KAFKA_REBALANCE_IN_PROGRESS : err,
                NULL, NULL, false);
}

/*
 * A static member back with a new id in a Stable group, on a cluster: the
 * group's record with the new id is written and the JoinGroup (parked in
 * m) answered once it is below the high watermark, as Kafka answers it
 * from storeGroup's callback; old_id is kept meanwhile (taken).
 */
static void join_store(coll_groups_t *g, coll_group_t *grp, coll_gmember_t *m, coll_gcall_t *r,
                       char *old_id)
{
    int16_t err = write_check(g, grp->id);
    if (err == TRIB_KAFKA_NONE) {
        int rc = coll_gstore_group(g, grp->id, grp);
        err = rc ? store_error(rc) : TRIB_KAFKA_NONE;
    }
    if (err == TRIB_KAFKA_NONE) {
        struct coll_gwait *w = calloc(1, sizeof(*w));
        if (!w || !(w->group = coll_gdup(grp->id, strlen(grp->id))) ||
            !(w->member = coll_gdup(m->id, strlen(m->id)))) {
            if (w) {
                gwait_free(w);
            }
            err = TRIB_KAFKA_UNKNOWN_SERVER_ERROR;
        } else {
            w->kind = GWAIT_JOIN;
            w->call = r;
            w->old_id = old_id;
            int st = gwait_start(g, grp->id, w);
            if (st == 0) {
                return;
            }
            err = st > 0 ? w->error : TRIB_KAFKA_NONE;
            w->old_id = NULL;
            gwait_free(w);
        }
    }
    join_finish(grp, m->id, r, old_id, err);
}

static void tick(uv_timer_t *t);

/* Drops the partition's groups (but a running sink's): they answer NOT_COORDINATOR now. */
static void unload(coll_groups_t *g, int32_t index, const char *why)
{
    coll_gpart_t *gp = &g->parts[index];
    size_t ngroups = 0, noffsets = 0;
    coll_group_t *grp = g->head;
    while (grp) {
        coll_group_t *next = grp->next;
        coll_partition_t *p = group_partition(g, grp->id, strlen(grp->id));
        if (p && p->index == index && !coll_group_has_internal(grp)) {
            answer_parked(grp, TRIB_KAFKA_NOT_COORDINATOR);
            ngroups++;
            noffsets += grp->noffsets;
            coll_groups_remove(g, grp);
        }
        grp = next;
    }
    bool was_loading = gp->state == COLL_GPART_LOADING;
    gp->state = COLL_GPART_UNLOADED;
    TRIB_LOG(TRIB_LOG_INFO, COLL_GROUP_FACILITY,
             "%s-%d: %s: unloaded %zu groups and %zu committed offsets%s", COLL_OFFSETS_TOPIC,
             (int)index, why, ngroups, noffsets, was_loading ? " (while loading)" : "");
}

static void load_start(coll_groups_t *g, coll_partition_t *p)
{
    coll_gpart_t *gp = &g->parts[p->index];
    gp->state = COLL_GPART_LOADING;
    gp->next = coll_log_start_offset(p->log);
    gp->end = coll_log_end_offset(p->log);
    gp->records = 0;
    gp->started_ms = now_ms(g);
    TRIB_LOG(TRIB_LOG_INFO, COLL_GROUP_FACILITY,
             "%s-%d: led here at epoch %" PRId32 ": loading its groups from offsets %" PRId64
             " to %" PRId64,
             COLL_OFFSETS_TOPIC, (int)p->index, p->leader_epoch, gp->next, gp->end);
    uv_timer_start(&g->timer, tick, 0, TICK_MS);
}

static void load_done(coll_groups_t *g, int32_t index)
{
    coll_gpart_t *gp = &g->parts[index];
    uint64_t now = now_ms(g);
    size_t ngroups = 0, noffsets = 0;
    for (coll_group_t *grp = g->head; grp; grp = grp->next) {
        coll_partition_t *p = group_partition(g, grp->id, strlen(grp->id));
        if (!p || p->index != index) {
            continue;
        }
        ngroups++;
        noffsets += grp->noffsets;
        for (coll_gmember_t *m = grp->members; m; m = m->next) {
            m->session_deadline_ms = now + (uint64_t)m->session_timeout_ms;
        }
    }
    gp->state = COLL_GPART_LOADED;
    TRIB_LOG(TRIB_LOG_INFO, COLL_GROUP_FACILITY,
             "%s-%d: loaded %zu groups and %zu committed offsets from %zu records in %" PRIu64
             " ms",
             COLL_OFFSETS_TOPIC, (int)index, ngroups, noffsets, gp->records, now - gp->started_ms);
}

/* One chunk of every loading partition; true when some have more. */
static bool load_some(coll_groups_t *g)
{
    coll_topic_t *t = g->nparts ? coll_groups_topic(g, false) : NULL;
    bool more = false;
    for (int32_t i = 0; t && i < g->nparts; i++) {
        coll_gpart_t *gp = &g->parts[i];
        if (gp->state != COLL_GPART_LOADING) {
            continue;
        }
        coll_partition_t *p = coll_cluster_partition(t, i);
        if (!p || !p->log) {
            unload(g, i, "gone while loading");
            continue;
        }
        g->loading = true;
        int rc = coll_gstore_load_step(g, p, &gp->next, gp->end, &gp->records);
        g->loading = false;
        if (rc != 0) {
            static trib_log_ratelimit_t rl = TRIB_LOG_RATELIMIT_INIT(60000, 3);
            TRIB_LOG_RL(&rl, TRIB_LOG_ERROR, COLL_GROUP_FACILITY, "%s-%d: cannot load: %s",
                        COLL_OFFSETS_TOPIC, (int)i, trib_strerror(rc));
            unload(g, i, "load failed");
            gp->state = COLL_GPART_LOADING; /* from the start again at the next tick */
            gp->next = coll_log_start_offset(p->log);
            gp->end = coll_log_end_offset(p->log);
            gp->records = 0;
            continue;
        }
        if (gp->next >= gp->end) {
            load_done(g, i);
        } else {
            more = true;
        }
    }
    return more;
}

void coll_groups_partition_changed(coll_groups_t *g, coll_partition_t *p, bool removing)
{
    if (!g || !clustered(g) || !p->topic || p->index < 0 ||
        strcmp(p->topic->name, COLL_OFFSETS_TOPIC) != 0) {
        return;
    }
    if (p->index >= g->nparts) {
        coll_gpart_t *np = realloc(g->parts, ((size_t)p->index + 1) * sizeof(*np));
        if (!np) {
            TRIB_LOG(TRIB_LOG_ERROR, COLL_GROUP_FACILITY, "%s-%d: out of memory",
                     COLL_OFFSETS_TOPIC, (int)p->index);
            return;
        }
        memset(np + g->nparts, 0, ((size_t)p->index + 1 - (size_t)g->nparts) * sizeof(*np));
        g->parts = np;
        g->nparts = p->index + 1;
    }
    /* Led here with its leader state set up (writes also need the ZooKeeper session). */
    bool lead = !removing && !g->stopping && g->host.led_here(g->host.cluster, p);
    coll_gpart_t *gp = &g->parts[p->index];
    if (lead && gp->state == COLL_GPART_UNLOADED) {
        load_start(g, p);
    } else if (!lead && gp->state != COLL_GPART_UNLOADED) {
        unload(g, p->index, removing ? "removed here" : "no longer led here");
    }
}

/* ---- housekeeping ------------------------------------------------------------------------ */

static void expire_offsets(coll_groups_t *g)
{
    int64_t now = g->host.wall_ms();
    coll_group_t *grp = g->head;
    while (grp) {
        coll_group_t *next = grp->next;
        if (grp->state == COLL_GROUP_EMPTY && group_active(g, grp)) {
            /* Kafka 2.1+: an Empty group's offsets expire retention after it became empty
             * (offsets-only groups: after their commit). */
            for (size_t i = 0; i < grp->noffsets;) {
                coll_goffset_t *o = &grp->offsets[i];
                int64_t base = grp->protocol_type ? grp->state_ts : o->commit_ts;
                if (base + g->cfg.offsets_retention_ms <= now) {
                    TRIB_LOG(TRIB_LOG_INFO, COLL_GROUP_FACILITY,
                             "group %s: committed offset of %s-%" PRId32 " expired", grp->id,
                             o->topic, o->partition);
                    coll_gstore_offset(g, grp->id, o->topic, o->partition, NULL);
                    free(o->topic);
                    free(o->metadata);
                    *o = grp->offsets[--grp->noffsets];
                } else {
                    i++;
                }
            }
            if (grp->noffsets == 0 && grp->nmembers == 0 &&
                grp->state_ts + g->cfg.offsets_retention_ms <= now) {
                coll_gstore_group(g, grp->id, NULL);
                coll_groups_remove(g, grp);
            }
        }
        grp = next;
    }
}

static void tick(uv_timer_t *t)
{
    coll_groups_t *g = t->data;
    if (g->stopping) {
        return;
    }
    bool more = load_some(g);
    gwaits_expire(g, false, TRIB_KAFKA_REQUEST_TIMED_OUT);
    uint64_t now = now_ms(g);
    for (coll_group_t *grp = g->head; grp; grp = grp->next) {
        if (!group_active(g, grp)) {
            continue; /* loading: sessions count from the end of the load */
        }
        for (size_t i = 0; i < grp->npending;) {
            if (grp->pending[i].deadline_ms <= now) {
                free(grp->pending[i].id);
                grp->pending[i] = grp->pending[--grp->npending];
            } else {
                i++;
            }
        }
        for (;;) {
            coll_gmember_t *dead = NULL;
            for (coll_gmember_t *m = grp->members; m; m = m->next) {
                if (!m->internal && !m->join_req && !m->sync_req && m->session_deadline_ms <= now) {
                    dead = m;
                    break;
                }
            }
            if (!dead) {
                break;
            }
            remove_member(g, grp, dead, TRIB_KAFKA_UNKNOWN_MEMBER_ID, "session timeout expired");
        }
        try_complete_join(g, grp);
    }
    if (now >= g->next_retention_check_ms) {
        g->next_retention_check_ms = now + (uint64_t)g->cfg.offsets_retention_check_ms;
        expire_offsets(g);
    }
    if (more) {
        uv_timer_start(&g->timer, tick, 1, TICK_MS); /* the next chunk soon, between requests */
    }
}

int16_t coll_groups_coordinator_error(coll_groups_t *g, const char *id, int32_t len)
{
    if (!g || g->stopping || g->host.stopping(g->host.arg)) {
        return TRIB_KAFKA_COORDINATOR_NOT_AVAILABLE;
    }
    coll_cluster_t *cl = g->host.cluster;
    if (!coll_cluster_replicated(cl) || len <= 0) {
        return TRIB_KAFKA_NONE;
    }
    coll_topic_t *t = coll_groups_topic(g, false);
    coll_partition_t *p =
        t ? coll_cluster_partition(t, coll_group_partition_for(id, (size_t)len, t->npartitions))
          : NULL;
    if (!p || p->leader < 0) {
        return TRIB_KAFKA_COORDINATOR_NOT_AVAILABLE;
    }
    if (!coll_partition_leads(p, coll_cluster_node_id(cl))) {
        return TRIB_KAFKA_NOT_COORDINATOR;
    }
    /* Led here: its groups answer once loaded (see "a cluster" above). */
    const coll_gpart_t *gp = p->index < g->nparts ? &g->parts[p->index] : NULL;
    return gp && gp->state == COLL_GPART_LOADED ? TRIB_KAFKA_NONE
                                                : TRIB_KAFKA_COORDINATOR_LOAD_IN_PROGRESS;
}

coll_log_t *coll_group_log(coll_groups_t *g, const char *id, size_t len)
{
    coll_topic_t *t = coll_groups_topic(g, false);
    if (!t) {
        return NULL;
    }
    coll_partition_t *p =
        coll_cluster_partition(t, coll_group_partition_for(id, len, t->npartitions));
    return p ? p->log : NULL;
}

/* ---- lifecycle ----------------------------------------------------------------------------- */

coll_topic_t *coll_groups_topic(coll_groups_t *g, bool create)
{
    coll_cluster_t *cl = g->host.cluster;
    const char *name = COLL_OFFSETS_TOPIC;
    coll_topic_t *t = coll_cluster_topic(cl, name, strlen(name));
    if (t || !create) {
        return t;
    }
    coll_config_kv_t kv[] = {
        {trib_kstr("cleanup.policy"), trib_kstr("compact")},
        {trib_kstr("segment.bytes"), trib_kstr("104857600")},
    };
    coll_admin_result_t res;
    coll_cluster_create_topic(cl, name, strlen(name), g->cfg.offsets_partitions, -1, kv, 2, false,
                              &t, &res);
    if (res.code != TRIB_KAFKA_NONE || !t) {
        /* Every FindCoordinator asks again (a full disk): a few lines a minute say it. */
        static trib_log_ratelimit_t rl = TRIB_LOG_RATELIMIT_INIT(60000, 3);
        /* On a cluster the creation goes through ZooKeeper: under way, not failed. */
        bool pending = res.code == TRIB_KAFKA_LEADER_NOT_AVAILABLE;
        TRIB_LOG_RL(&rl, pending ? TRIB_LOG_INFO : TRIB_LOG_ERROR, COLL_GROUP_FACILITY, "%s %s: %s",
                    pending ? "creating" : "cannot create", name, res.msg);
        return NULL;
    }
    return t;
}

int coll_groups_new(const coll_group_host_t *host, const coll_group_config_t *cfg,
                    coll_groups_t **out)
{
    *out = NULL;
    coll_groups_t *g = calloc(1, sizeof(*g));
    if (!g) {
        return -ENOMEM;
    }
    g->host = *host;
    g->cfg = *cfg;
    trib_log_ratelimit_t rl = TRIB_LOG_RATELIMIT_INIT(10000, 5);
    g->refused_rl = rl;
    g->loading = true;
    int rc = coll_gstore_load(g);
    g->loading = false;
    if (rc) {
        coll_groups_free(g);
        return rc;
    }
    uv_timer_init(g->host.loop, &g->timer);
    g->timer.data = g;
    g->next_retention_check_ms = uv_now(g->host.loop) + (uint64_t)g->cfg.offsets_retention_check_ms;
    uv_timer_start(&g->timer, tick, TICK_MS, TICK_MS);
    uv_unref((uv_handle_t *)&g->timer);
    uint64_t now = uv_now(g->host.loop);
    for (coll_group_t *grp = g->head; grp; grp = grp->next) {
        for (coll_gmember_t *m = grp->members; m; m = m->next) {
            m->session_deadline_ms = now + (uint64_t)m->session_timeout_ms;
        }
    }
    *out = g;
    return 0;
}

uv_handle_t *coll_groups_timer(coll_groups_t *g)
{
    return (uv_handle_t *)&g->timer;
}

void coll_groups_stop(coll_groups_t *g)
{
    if (!g) {
        return;
    }
    g->stopping = true;
    uv_timer_stop(&g->timer);
    /* Writes still waiting: the client asks the next coordinator. */
    gwaits_expire(g, true, TRIB_KAFKA_NOT_LEADER_OR_FOLLOWER);
    for (coll_group_t *grp = g->head; grp; grp = grp->next) {
        for (coll_gmember_t *m = grp->members; m; m = m->next) {
            if (m->join_req) {
                coll_gcall_t *r = m->join_req;
                m->join_req = NULL;
                join_answer(r, TRIB_KAFKA_COORDINATOR_NOT_AVAILABLE, NULL, m->id, false);
            }
            if (m->sync_req) {
                coll_gcall_t *r = m->sync_req;
                m->sync_req = NULL;
                sync_answer(r, TRIB_KAFKA_COORDINATOR_NOT_AVAILABLE, NULL, NULL);
            }
        }
    }
}

void coll_groups_free(coll_groups_t *g)
{
    if (!g) {
        return;
    }
    while (g->head) {
        coll_group_t *grp = g->head;
        g->head = grp->next;
        /* Parked requests were answered at stop; detach any left (connection teardown). */
        for (coll_gmember_t *m = grp->members; m; m = m->next) {
            if (m->join_req) {
                unpark(m->join_req);
            }
            if (m->sync_req) {
                unpark(m->sync_req);
            }
        }
        group_free(grp);
    }
    free(g->buckets);
    free(g->parts);
    free(g);
}
