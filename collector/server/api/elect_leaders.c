/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ElectLeaders (key 43), versions 0-2 (v2 flexible).
 *
 * PREFERRED (ElectionType 0, and every v0 request): the partition's first
 * replica becomes leader when it is alive and in the ISR. On the
 * zookeeper backend the controller writes the new state (leader epoch + 1,
 * compared-and-set, fenced by the controller epoch) and answers once it is
 * written; another broker answers NOT_CONTROLLER, as Kafka's. A partition
 * already led by its preferred replica gets ELECTION_NOT_NEEDED (always
 * the case on the local backend, where this node leads everything), one
 * whose preferred replica is dead or out of the ISR
 * PREFERRED_LEADER_NOT_AVAILABLE.
 *
 * UNCLEAN (ElectionType 1): unclean election is off on this cluster. A
 * partition with a leader gets ELECTION_NOT_NEEDED, one without
 * ELIGIBLE_LEADERS_NOT_AVAILABLE: a replica outside the ISR is never made
 * leader.
 *
 * A null topic list means every partition of every topic; unknown topics
 * and partitions get UNKNOWN_TOPIC_OR_PARTITION.
 */
#include "server/server_int.h"

#include <stdio.h>
#include <string.h>

#include "kafka/gen/kafka_messages.h"

typedef ElectLeadersResponse_PartitionResult presult_t;

static void set(coll_req_t *r, presult_t *o, int16_t code, const char *msg)
{
    o->ErrorCode = code;
    o->ErrorMessage = msg ? trib_kstr(coll_req_strdup(r, trib_kstr(msg))) : trib_kstr(NULL);
    coll_req_note_error(r, code);
}

static void one(coll_req_t *r, coll_topic_t *t, int32_t index, int8_t type, presult_t *o,
                coll_admin_wait_t *w)
{
    coll_cluster_t *cl = r->srv->cluster;
    ElectLeadersResponse_PartitionResult_init(o);
    o->PartitionId = index;
    o->ErrorMessage = trib_kstr(NULL);
    coll_partition_t *p = t ? coll_cluster_partition(t, index) : NULL;
    if (!p) {
        set(r, o, TRIB_KAFKA_UNKNOWN_TOPIC_OR_PARTITION, "Unknown topic or partition.");
        return;
    }
    if (type == 1) {
        if (p->leader >= 0) {
            set(r, o, TRIB_KAFKA_ELECTION_NOT_NEEDED, "The partition has a leader.");
        } else {
            set(r, o, TRIB_KAFKA_ELIGIBLE_LEADERS_NOT_AVAILABLE,
                "Unclean leader election is disabled: only an in-sync replica may lead.");
        }
        return;
    }
    if (!w) {
        /* The local backend: this node is the only replica and leads. */
        set(r, o, TRIB_KAFKA_ELECTION_NOT_NEEDED, "Leader election not needed.");
        return;
    }
    coll_admin_slot_t *slot = coll_admin_slot_new(w, &o->ErrorCode, &o->ErrorMessage);
    if (!slot) {
        set(r, o, TRIB_KAFKA_UNKNOWN_SERVER_ERROR, "out of memory");
        return;
    }
    coll_cluster_elect_preferred_async(cl, t, index, coll_admin_slot_cb, slot);
}

void coll_api_elect_leaders(coll_req_t *r)
{
    const ElectLeadersRequest *req = r->body;
    coll_cluster_t *cl = r->srv->cluster;
    int8_t type = r->api_version >= 1 ? req->ElectionType : 0;
    ElectLeadersResponse *resp = coll_req_alloc(r, sizeof(*resp));
    if (!resp) {
        coll_req_reject(r, "out of memory");
        return;
    }
    ElectLeadersResponse_init(resp);
    /* ALTER on the cluster: v1+ answer at the top, v0 (no top-level error) per partition. */
    bool denied = !coll_authorized_cluster(r, COLL_OP_ALTER);
    if (denied && r->api_version >= 1) {
        resp->ErrorCode = TRIB_KAFKA_CLUSTER_AUTHORIZATION_FAILED;
        coll_req_note_error(r, resp->ErrorCode);
        coll_req_respond(r, &ElectLeadersResponse_codec, resp);
        return;
    }
    if (type != 0 && type != 1) {
        resp->ErrorCode = TRIB_KAFKA_INVALID_REQUEST;
        coll_req_note_error(r, resp->ErrorCode);
        coll_req_respond(r, &ElectLeadersResponse_codec, resp);
        return;
    }
    /* The topics asked for, or all of them. */
    size_t nt;
    coll_topic_t **all = NULL;
    if (req->TopicPartitions.count < 0) {
        nt = coll_cluster_topic_count(cl);
        all = coll_req_alloc(r, (nt ? nt : 1) * sizeof(*all));
        if (!all) {
            coll_req_reject(r, "out of memory");
            return;
        }
        coll_cluster_topics(cl, all);
    } else {
        nt = (size_t)req->TopicPartitions.count;
    }
    ElectLeadersResponse_ReplicaElectionResult *res =
        coll_req_alloc(r, (nt ? nt : 1) * sizeof(*res));
    if (!res) {
        coll_req_reject(r, "out of memory");
        return;
    }
    resp->ReplicaElectionResults.items = res;
    resp->ReplicaElectionResults.count = (int32_t)nt;
    coll_admin_wait_t *w = coll_admin_wait_new(r, &ElectLeadersResponse_codec, resp);
    for (size_t i = 0; i < nt; i++) {
        ElectLeadersResponse_ReplicaElectionResult_init(&res[i]);
        coll_topic_t *t;
        int32_t np;
        const int32_t *parts = NULL;
        if (all) {
            t = all[i];
            res[i].Topic = trib_kstr(coll_req_strdup(r, trib_kstr(t->name)));
            np = t->npartitions;
        } else {
            const ElectLeadersRequest_TopicPartitions *tp = &req->TopicPartitions.items[i];
            res[i].Topic = tp->Topic;
            t = tp->Topic.len > 0 ? coll_cluster_topic(cl, tp->Topic.ptr, (size_t)tp->Topic.len)
                                  : NULL;
            np = tp->Partitions.count > 0 ? tp->Partitions.count : 0;
            parts = tp->Partitions.items;
        }
        presult_t *o = coll_req_alloc(r, (size_t)(np ? np : 1) * sizeof(*o));
        if (!o) {
            res[i].PartitionResult.count = 0;
            continue;
        }
        res[i].PartitionResult.items = o;
        res[i].PartitionResult.count = np;
        for (int32_t k = 0; k < np; k++) {
            if (denied) {
                ElectLeadersResponse_PartitionResult_init(&o[k]);
                o[k].PartitionId = parts ? parts[k] : k;
                set(r, &o[k], TRIB_KAFKA_CLUSTER_AUTHORIZATION_FAILED, NULL);
                continue;
            }
            one(r, t, parts ? parts[k] : k, type, &o[k], w);
        }
    }
    if (w) {
        coll_admin_wait_done(w);
        return;
    }
    coll_req_respond(r, &ElectLeadersResponse_codec, resp);
}
