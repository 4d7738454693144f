/* SPDX-License-Identifier: Apache-2.0 */
/*
 * OffsetFetch (key 9), versions 0-9 (v6+ flexible; v8+ ask for several
 * groups at once in Groups[], KIP-709).
 *
 * A partition without a committed offset answers offset -1, metadata ""
 * and no error, as Kafka does; Topics null (v2+) asks for every committed
 * offset of the group. An unknown group is not an error: all -1. v5+
 * return the committed leader epoch. RequireStable (v7+) never waits:
 * there are no transactional offsets. v9's MemberId/MemberEpoch belong to
 * the KIP-848 protocol and are ignored for classic groups.
 */
#include "server/server_int.h"

#include <string.h>

#include "group/group.h"
#include "kafka/gen/kafka_messages.h"

typedef struct fpart {
    int32_t partition;
    int64_t offset;
    int32_t epoch;
    trib_kstr_t meta;
    int16_t error;
} fpart_t;

static void fill(const coll_group_t *grp, trib_kstr_t topic, int32_t partition, fpart_t *o)
{
    o->partition = partition;
    o->offset = -1;
    o->epoch = -1;
    o->meta = trib_kstr("");
    o->error = TRIB_KAFKA_NONE;
    const coll_goffset_t *c = grp && topic.len > 0
                                  ? coll_group_offset(grp, topic.ptr, (size_t)topic.len, partition)
                                  : NULL;
    if (c) {
        o->offset = c->offset;
        o->epoch = c->leader_epoch;
        o->meta = trib_kstr(c->metadata ? c->metadata : "");
    }
}

/* The distinct topics of a group's offsets, for Topics null. */
static size_t group_topics(coll_req_t *r, const coll_group_t *grp, const char ***out)
{
    *out = NULL;
    if (!grp || !grp->noffsets) {
        return 0;
    }
    const char **names = coll_req_alloc(r, grp->noffsets * sizeof(*names));
    if (!names) {
        return 0;
    }
    size_t n = 0;
    for (size_t i = 0; i < grp->noffsets; i++) {
        bool seen = false;
        for (size_t k = 0; k < n && !seen; k++) {
            seen = strcmp(names[k], grp->offsets[i].topic) == 0;
        }
        if (!seen) {
            names[n++] = grp->offsets[i].topic;
        }
    }
    *out = names;
    return n;
}

/* Results of one group: topic names and their partitions. */
typedef struct gresult {
    int32_t ntopics;
    trib_kstr_t *names;
    int32_t *nparts;
    fpart_t **parts;
    int16_t error;
} gresult_t;

static bool one_group(coll_req_t *r, trib_kstr_t gid, int32_t nreq, const trib_kstr_t *tnames,
                      const trib_karr_int32_t *tparts, bool all, gresult_t *out)
{
    coll_groups_t *g = r->srv->groups;
    memset(out, 0, sizeof(*out));
    int16_t ce = coll_groups_coordinator_error(g, gid.ptr, gid.len);
    if (ce != TRIB_KAFKA_NONE) {
        out->error = ce;
        return true;
    }
    if (gid.len <= 0) {
        out->error = TRIB_KAFKA_INVALID_GROUP_ID;
        return true;
    }
    if (!coll_authorized_k(r, COLL_OP_DESCRIBE, COLL_RES_GROUP, gid)) {
        /* As Kafka: the error at the top (v2+) and on every partition asked for (v0-1). */
        out->error = TRIB_KAFKA_GROUP_AUTHORIZATION_FAILED;
        if (all) {
            return true;
        }
        out->ntopics = nreq;
        out->names = coll_req_alloc(r, (nreq ? (size_t)nreq : 1) * sizeof(*out->names));
        out->nparts = coll_req_alloc(r, (nreq ? (size_t)nreq : 1) * sizeof(*out->nparts));
        out->parts = coll_req_alloc(r, (nreq ? (size_t)nreq : 1) * sizeof(*out->parts));
        if (!out->names || !out->nparts || !out->parts) {
            return false;
        }
        for (int32_t i = 0; i < nreq; i++) {
            int32_t np = tparts[i].count > 0 ? tparts[i].count : 0;
            out->names[i] = tnames[i];
            out->nparts[i] = np;
            out->parts[i] = coll_req_alloc(r, (np ? (size_t)np : 1) * sizeof(fpart_t));
            if (!out->parts[i]) {
                return false;
            }
            for (int32_t k = 0; k < np; k++) {
                fill(NULL, tnames[i], tparts[i].items[k], &out->parts[i][k]);
                out->parts[i][k].error = out->error;
            }
        }
        return true;
    }
    const coll_group_t *grp = coll_groups_find(g, gid.ptr, (size_t)gid.len);
    if (all) {
        const char **names;
        size_t n = group_topics(r, grp, &names);
        /* Only the topics the principal may describe (Kafka leaves the others out). */
        size_t kept = 0;
        for (size_t i = 0; i < n; i++) {
            if (coll_authorized_quiet(r, COLL_OP_DESCRIBE, COLL_RES_TOPIC, names[i],
                                      strlen(names[i]))) {
                names[kept++] = names[i];
            }
        }
        n = kept;
        out->ntopics = (int32_t)n;
        out->names = coll_req_alloc(r, (n ? n : 1) * sizeof(*out->names));
        out->nparts = coll_req_alloc(r, (n ? n : 1) * sizeof(*out->nparts));
        out->parts = coll_req_alloc(r, (n ? n : 1) * sizeof(*out->parts));
        if (!out->names || !out->nparts || !out->parts) {
            return false;
        }
        for (size_t i = 0; i < n; i++) {
            out->names[i] = trib_kstr(names[i]);
            size_t cnt = 0;
            for (size_t k = 0; k < grp->noffsets; k++) {
                cnt += strcmp(grp->offsets[k].topic, names[i]) == 0;
            }
            out->parts[i] = coll_req_alloc(r, (cnt ? cnt : 1) * sizeof(fpart_t));
            if (!out->parts[i]) {
                return false;
            }
            int32_t m = 0;
            for (size_t k = 0; k < grp->noffsets; k++) {
                if (strcmp(grp->offsets[k].topic, names[i]) == 0) {
                    fill(grp, out->names[i], grp->offsets[k].partition, &out->parts[i][m++]);
                }
            }
            out->nparts[i] = m;
        }
        return true;
    }
    out->ntopics = nreq;
    out->names = coll_req_alloc(r, (nreq ? (size_t)nreq : 1) * sizeof(*out->names));
    out->nparts = coll_req_alloc(r, (nreq ? (size_t)nreq : 1) * sizeof(*out->nparts));
    out->parts = coll_req_alloc(r, (nreq ? (size_t)nreq : 1) * sizeof(*out->parts));
    if (!out->names || !out->nparts || !out->parts) {
        return false;
    }
    for (int32_t i = 0; i < nreq; i++) {
        out->names[i] = tnames[i];
        int32_t np = tparts[i].count > 0 ? tparts[i].count : 0;
        out->parts[i] = coll_req_alloc(r, (np ? (size_t)np : 1) * sizeof(fpart_t));
        if (!out->parts[i]) {
            return false;
        }
        bool topic_ok = coll_authorized_k(r, COLL_OP_DESCRIBE, COLL_RES_TOPIC, tnames[i]);
        for (int32_t k = 0; k < np; k++) {
            fill(grp, tnames[i], tparts[i].items[k], &out->parts[i][k]);
            if (!topic_ok) {
                out->parts[i][k].offset = -1;
                out->parts[i][k].epoch = -1;
                out->parts[i][k].meta = trib_kstr("");
                out->parts[i][k].error = TRIB_KAFKA_TOPIC_AUTHORIZATION_FAILED;
            }
        }
        out->nparts[i] = np;
    }
    return true;
}

static void respond_legacy(coll_req_t *r)
{
    const OffsetFetchRequest *req = r->body;
    bool all = req->Topics.count < 0 && r->api_version >= 2;
    int32_t n = req->Topics.count > 0 ? req->Topics.count : 0;
    trib_kstr_t *names = coll_req_alloc(r, (n ? (size_t)n : 1) * sizeof(*names));
    trib_karr_int32_t *parts = coll_req_alloc(r, (n ? (size_t)n : 1) * sizeof(*parts));
    OffsetFetchResponse *resp = coll_req_alloc(r, sizeof(*resp));
    gresult_t gr;
    if (!names || !parts || !resp) {
        coll_req_reject(r, "out of memory");
        return;
    }
    for (int32_t i = 0; i < n; i++) {
        names[i] = req->Topics.items[i].Name;
        parts[i] = req->Topics.items[i].PartitionIndexes;
    }
    if (!one_group(r, req->GroupId, n, names, parts, all, &gr)) {
        coll_req_reject(r, "out of memory");
        return;
    }
    OffsetFetchResponse_init(resp);
    resp->ErrorCode = gr.error;
    coll_req_note_error(r, gr.error);
    OffsetFetchResponse_OffsetFetchResponseTopic *ts =
        coll_req_alloc(r, (gr.ntopics ? (size_t)gr.ntopics : 1) * sizeof(*ts));
    if (!ts) {
        coll_req_reject(r, "out of memory");
        return;
    }
    for (int32_t i = 0; i < gr.ntopics; i++) {
        OffsetFetchResponse_OffsetFetchResponseTopic_init(&ts[i]);
        ts[i].Name = gr.names[i];
        OffsetFetchResponse_OffsetFetchResponsePartition *ps =
            coll_req_alloc(r, (gr.nparts[i] ? (size_t)gr.nparts[i] : 1) * sizeof(*ps));
        if (!ps) {
            coll_req_reject(r, "out of memory");
            return;
        }
        for (int32_t k = 0; k < gr.nparts[i]; k++) {
            OffsetFetchResponse_OffsetFetchResponsePartition_init(&ps[k]);
            ps[k].PartitionIndex = gr.parts[i][k].partition;
            ps[k].CommittedOffset = gr.parts[i][k].offset;
            ps[k].CommittedLeaderEpoch = gr.parts[i][k].epoch;
            ps[k].Metadata = gr.parts[i][k].meta;
            /* v0-1 have no top-level error: the group's error goes on each partition. */
            ps[k].ErrorCode = gr.parts[i][k].error ? gr.parts[i][k].error
                              : r->api_version < 2 ? gr.error
                                                   : 0;
        }
        ts[i].Partitions.items = ps;
        ts[i].Partitions.count = gr.nparts[i];
    }
    resp->Topics.items = ts;
    resp->Topics.count = gr.ntopics;
    coll_req_respond(r, &OffsetFetchResponse_codec, resp);
}

static void respond_groups(coll_req_t *r)
{
    const OffsetFetchRequest *req = r->body;
    int32_t ng = req->Groups.count > 0 ? req->Groups.count : 0;
    OffsetFetchResponse *resp = coll_req_alloc(r, sizeof(*resp));
    OffsetFetchResponse_OffsetFetchResponseGroup *gs =
        coll_req_alloc(r, (ng ? (size_t)ng : 1) * sizeof(*gs));
    if (!resp || !gs) {
        coll_req_reject(r, "out of memory");
        return;
    }
    OffsetFetchResponse_init(resp);
    for (int32_t gi = 0; gi < ng; gi++) {
        const OffsetFetchRequest_OffsetFetchRequestGroup *rg = &req->Groups.items[gi];
        bool all = rg->Topics.count < 0;
        int32_t n = rg->Topics.count > 0 ? rg->Topics.count : 0;
        trib_kstr_t *names = coll_req_alloc(r, (n ? (size_t)n : 1) * sizeof(*names));
        trib_karr_int32_t *parts = coll_req_alloc(r, (n ? (size_t)n : 1) * sizeof(*parts));
        gresult_t gr;
        if (!names || !parts) {
            coll_req_reject(r, "out of memory");
            return;
        }
        for (int32_t i = 0; i < n; i++) {
            names[i] = rg->Topics.items[i].Name;
            parts[i] = rg->Topics.items[i].PartitionIndexes;
        }
        if (!one_group(r, rg->GroupId, n, names, parts, all, &gr)) {
            coll_req_reject(r, "out of memory");
            return;
        }
        OffsetFetchResponse_OffsetFetchResponseGroup *og = &gs[gi];
        OffsetFetchResponse_OffsetFetchResponseGroup_init(og);
        og->GroupId = rg->GroupId;
        og->ErrorCode = gr.error;
        coll_req_note_error(r, gr.error);
        OffsetFetchResponse_OffsetFetchResponseTopics *ts =
            coll_req_alloc(r, (gr.ntopics ? (size_t)gr.ntopics : 1) * sizeof(*ts));
        if (!ts) {
            coll_req_reject(r, "out of memory");
            return;
        }
        for (int32_t i = 0; i < gr.ntopics; i++) {
            OffsetFetchResponse_OffsetFetchResponseTopics_init(&ts[i]);
            ts[i].Name = gr.names[i];
            OffsetFetchResponse_OffsetFetchResponsePartitions *ps =
                coll_req_alloc(r, (gr.nparts[i] ? (size_t)gr.nparts[i] : 1) * sizeof(*ps));
            if (!ps) {
                coll_req_reject(r, "out of memory");
                return;
            }
            for (int32_t k = 0; k < gr.nparts[i]; k++) {
                OffsetFetchResponse_OffsetFetchResponsePartitions_init(&ps[k]);
                ps[k].PartitionIndex = gr.parts[i][k].partition;
                ps[k].CommittedOffset = gr.parts[i][k].offset;
                ps[k].CommittedLeaderEpoch = gr.parts[i][k].epoch;
                ps[k].Metadata = gr.parts[i][k].meta;
                ps[k].ErrorCode = gr.parts[i][k].error;
            }
            ts[i].Partitions.items = ps;
            ts[i].Partitions.count = gr.nparts[i];
        }
        og->Topics.items = ts;
        og->Topics.count = gr.ntopics;
    }
    resp->Groups.items = gs;
    resp->Groups.count = ng;
    coll_req_respond(r, &OffsetFetchResponse_codec, resp);
}

void coll_api_offset_fetch(coll_req_t *r)
{
    if (r->api_version >= 8) {
        respond_groups(r);
    } else {
        respond_legacy(r);
    }
}
