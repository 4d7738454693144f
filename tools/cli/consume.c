/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tributary consume: prints records, one per line, by manual assignment
 * (no consumer group): ListOffsets for the start position, then Fetch
 * long-polls on each partition leader.
 *
 * Start: --offset N (on every selected partition), --offset earliest or
 * --from-beginning, --offset latest (the default, as kafka-console-consumer).
 * Stop: --max N records, --timeout-ms T without a new record (exit 4 if
 * --max was given and not reached), --exit-at-end once every partition is
 * read up to its high watermark, or SIGINT/SIGTERM. Like
 * kafka-console-consumer it ends with "Processed a total of N messages" on
 * stderr.
 *
 * With --group G the tool is one member of consumer group G (the classic
 * protocol, as the Java console consumer): FindCoordinator, JoinGroup
 * (protocol type "consumer", assignor "range"; the leader assigns the
 * topic's partitions in ranges over the members subscribed to it),
 * SyncGroup, then OffsetFetch for the start positions (committed offsets;
 * without one, the --offset/--from-beginning rule). While it reads it
 * heartbeats every 3 s and commits the next offset of each assigned
 * partition every 5 s and when it stops; a rebalance (REBALANCE_IN_PROGRESS
 * on a heartbeat) commits, joins again and takes the new assignment. It
 * leaves the group (LeaveGroup) on the way out.
 *
 * --print-headers prints each record's headers before the key and value
 * as key:value pairs joined by commas (NO_HEADERS when there are none),
 * as kafka-console-consumer's print.headers.
 *
 * Fetch v4-12 (topic names; v13+ would need topic ids), isolation
 * read_uncommitted, no fetch session (SessionId 0, epoch -1). Each batch's
 * CRC is checked; control batches are skipped; records below the fetch
 * offset (a batch starting earlier) are skipped.
 */
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "tributary/kafka_error.h"
#include "tributary/record.h"

#include "kafka/gen/ConsumerProtocolAssignment.h"
#include "kafka/gen/ConsumerProtocolSubscription.h"
#include "kafka/gen/FetchRequest.h"
#include "kafka/gen/FetchResponse.h"
#include "kafka/gen/ListOffsetsRequest.h"
#include "kafka/gen/FindCoordinatorRequest.h"
#include "kafka/gen/FindCoordinatorResponse.h"
#include "kafka/gen/HeartbeatRequest.h"
#include "kafka/gen/HeartbeatResponse.h"
#include "kafka/gen/JoinGroupRequest.h"
#include "kafka/gen/JoinGroupResponse.h"
#include "kafka/gen/LeaveGroupRequest.h"
#include "kafka/gen/LeaveGroupResponse.h"
#include "kafka/gen/ListOffsetsResponse.h"
#include "kafka/gen/OffsetCommitRequest.h"
#include "kafka/gen/OffsetCommitResponse.h"
#include "kafka/gen/OffsetFetchRequest.h"
#include "kafka/gen/OffsetFetchResponse.h"
#include "kafka/gen/SyncGroupRequest.h"
#include "kafka/gen/SyncGroupResponse.h"

#define EARLIEST (-2)
#define LATEST (-1)
#define MAX_DECOMPRESSED ((size_t)256 << 20)
#define FETCH_MAX_BYTES (50 << 20)
#define PARTITION_MAX_BYTES (1 << 20)
#define MAX_WAIT_MS 500
#define SESSION_TIMEOUT_MS 10000
#define REBALANCE_TIMEOUT_MS 10000
#define HEARTBEAT_MS 3000
#define COMMIT_MS 5000

enum {
    API_OFFSET_COMMIT = 8,
    API_OFFSET_FETCH = 9,
    API_JOIN_GROUP = 11,
    API_HEARTBEAT = 12,
    API_LEAVE_GROUP = 13,
    API_SYNC_GROUP = 14,
};

static void usage(FILE *out)
{
    fputs("Usage: tributary consume --topic T [--group G | --partition P]\n"
          "                         [--from-beginning] [--offset N|earliest|latest]\n"
          "                         [--max N] [--timeout-ms T] [--exit-at-end]\n"
          "                         [--print-key] [--print-headers] [--print-partition]\n"
          "                         [--print-offset] [--separator S]\n"
          "\n"
          "Prints each record's value on its own line (null values as 'null'), reading\n"
          "every partition of T, or only --partition P, without a consumer group.\n"
          "With --group G it is a member of consumer group G instead: it reads the\n"
          "partitions the group assigns it (range assignment), from the group's\n"
          "committed offsets, and commits what it printed (every 5 s and when it stops),\n"
          "so a second run with the same group reads only newer records.\n"
          "Starts at the end unless --from-beginning or --offset (with --group: where\n"
          "the group has no committed offset). Stops after --max N records, after\n"
          "--timeout-ms T without a record, at the end of every partition with\n"
          "--exit-at-end, or on Ctrl-C. --print-key prints KEY<S>VALUE (S is a tab\n"
          "unless --separator); --print-headers prints the headers first, as\n"
          "k1:v1,k2:v2 (NO_HEADERS when none).\n"
          "Exit code 4 when --max N records did not arrive within --timeout-ms.\n"
          "\n"
          "Common options: --bootstrap HOST:PORT, --request-timeout-ms N, --verbose,\n"
          "  --command-config FILE (TLS and SASL; see tributary --help).\n",
          out);
}

typedef struct cpart {
    int32_t index;
    int32_t leader;
    int64_t offset; /* next offset to read */
    int64_t hwm;    /* -1 until a fetch answered */
    int32_t max_bytes;
} cpart_t;

typedef struct consumer {
    cli_common_t common;
    const char *topic;
    int64_t partition;
    int64_t start; /* EARLIEST, LATEST or an offset */
    int64_t max;   /* -1 = no limit */
    int64_t timeout_ms;
    bool exit_at_end;
    bool print_key, print_partition, print_offset, print_headers;
    const char *sep;
    const char *group;
    int32_t topic_partitions; /* from the last Metadata */

    trib_kclient_t *client;
    cpart_t *parts;
    int32_t nparts;
    int64_t count;
    int16_t fetch_version;
    /* --group */
    int32_t coordinator;
    char member_id[256];
    int32_t generation;
    int64_t last_heartbeat_ms, last_commit_ms;
} consumer_t;

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static int load_partitions(consumer_t *cs)
{
    trib_arena_t arena;
    trib_arena_init(&arena);
    MetadataResponse md;
    const char *one[1] = {cs->topic};
    int rc = cli_metadata(cs->client, one, 1, false, 5000, &md, &arena);
    if (rc != CLI_OK) {
        trib_arena_fini(&arena);
        return rc;
    }
    const MetadataResponse_MetadataResponseTopic *t = cli_find_topic(&md, cs->topic);
    if (!t || t->ErrorCode != 0) {
        rc = cli_topic_error(t, cs->topic);
        trib_arena_fini(&arena);
        return rc;
    }
    cs->topic_partitions = t->Partitions.count;
    if (!cs->parts) {
        int32_t total = t->Partitions.count;
        if (cs->partition >= total) {
            cli_errorf("topic '%s' has %d partitions: there is no partition %lld", cs->topic,
                       (int)total, (long long)cs->partition);
            trib_arena_fini(&arena);
            return CLI_EUSAGE;
        }
        cs->nparts = cs->partition >= 0 ? 1 : total;
        cs->parts = calloc((size_t)(cs->nparts ? cs->nparts : 1), sizeof *cs->parts);
        if (!cs->parts) {
            trib_arena_fini(&arena);
            cli_errorf("out of memory");
            return CLI_ENET;
        }
        for (int32_t i = 0; i < cs->nparts; i++) {
            cs->parts[i].index = cs->partition >= 0 ? (int32_t)cs->partition : i;
            cs->parts[i].leader = -1;
            cs->parts[i].offset = cs->start;
            cs->parts[i].hwm = -1;
            cs->parts[i].max_bytes = PARTITION_MAX_BYTES;
        }
    }
    for (int32_t i = 0; i < t->Partitions.count; i++) {
        const MetadataResponse_MetadataResponsePartition *mp = &t->Partitions.items[i];
        for (int32_t k = 0; k < cs->nparts; k++) {
            if (cs->parts[k].index == mp->PartitionIndex) {
                cs->parts[k].leader = mp->LeaderId;
            }
        }
    }
    trib_arena_fini(&arena);
    return CLI_OK;
}

/* Resolves EARLIEST/LATEST start positions with ListOffsets, leader by leader. */
static int list_offsets(consumer_t *cs)
{
    int16_t v = cli_version(cs->client, API_LIST_OFFSETS, 1, 10);
    if (v < 0) {
        return CLI_EKAFKA;
    }
    for (int32_t i = 0; i < cs->nparts; i++) {
        if (cs->parts[i].offset >= 0) {
            continue;
        }
        int32_t leader = cs->parts[i].leader;
        if (leader < 0) {
            cli_errorf("%s-%d has no leader", cs->topic, (int)cs->parts[i].index);
            return CLI_EKAFKA;
        }
        trib_arena_t arena;
        trib_arena_init(&arena);
        ListOffsetsRequest_ListOffsetsPartition *lp =
            trib_arena_calloc(&arena, (size_t)cs->nparts, sizeof *lp);
        if (!lp) {
            trib_arena_fini(&arena);
            cli_errorf("out of memory");
            return CLI_ENET;
        }
        int32_t n = 0;
        for (int32_t k = i; k < cs->nparts; k++) {
            if (cs->parts[k].offset < 0 && cs->parts[k].leader == leader) {
                ListOffsetsRequest_ListOffsetsPartition_init(&lp[n]);
                lp[n].PartitionIndex = cs->parts[k].index;
                lp[n].CurrentLeaderEpoch = -1;
                lp[n].Timestamp = cs->parts[k].offset;
                n++;
            }
        }
        ListOffsetsRequest req;
        ListOffsetsRequest_init(&req);
        ListOffsetsRequest_ListOffsetsTopic lt;
        ListOffsetsRequest_ListOffsetsTopic_init(&lt);
        lt.Name = trib_kstr(cs->topic);
        lt.Partitions.items = lp;
        lt.Partitions.count = n;
        req.ReplicaId = -1;
        req.IsolationLevel = 0;
        req.Topics.items = &lt;
        req.Topics.count = 1;
        if (v >= 10) {
            req.TimeoutMs = cs->common.request_timeout_ms;
        }
        ListOffsetsResponse resp;
        trib_error_t err;
        trib_error_clear(&err);
        if (trib_kclient_call(cs->client, leader, API_LIST_OFFSETS, v, &req, &resp, &arena, &err) <
            0) {
            trib_arena_fini(&arena);
            return cli_fail(&err);
        }
        for (int32_t t = 0; t < resp.Topics.count; t++) {
            const ListOffsetsResponse_ListOffsetsTopicResponse *tr = &resp.Topics.items[t];
            for (int32_t k = 0; k < tr->Partitions.count; k++) {
                const ListOffsetsResponse_ListOffsetsPartitionResponse *pr =
                    &tr->Partitions.items[k];
                if (pr->ErrorCode != 0) {
                    trib_kstr_t none = {NULL, -1};
                    int rc = cli_kafka_fail(pr->ErrorCode, none, "ListOffsets %s-%d", cs->topic,
                                            (int)pr->PartitionIndex);
                    trib_arena_fini(&arena);
                    return rc;
                }
                for (int32_t q = 0; q < cs->nparts; q++) {
                    if (cs->parts[q].index == pr->PartitionIndex && cs->parts[q].offset < 0) {
                        cs->parts[q].offset = pr->Offset;
                    }
                }
            }
        }
        trib_arena_fini(&arena);
        for (int32_t k = i; k < cs->nparts; k++) {
            if (cs->parts[k].leader == leader && cs->parts[k].offset < 0) {
                cli_errorf("ListOffsets did not answer for %s-%d", cs->topic,
                           (int)cs->parts[k].index);
                return CLI_EKAFKA;
            }
        }
    }
    return CLI_OK;
}

static void print_bytes(trib_record_bytes_t b)
{
    if (trib_record_bytes_is_null(b)) {
        fputs("null", stdout);
    } else if (b.len > 0) {
        fwrite(b.ptr, 1, (size_t)b.len, stdout);
    }
}

/* k1:v1,k2:v2 (null values as null), or NO_HEADERS, as kafka-console-consumer prints them. */
static void print_headers(const trib_record_t *r)
{
    trib_record_header_iter_t hi;
    trib_record_header_iter_init(&hi, r);
    trib_record_header_t h;
    int n = 0;
    while (trib_record_header_iter_next(&hi, &h) == 1) {
        if (n++) {
            putchar(',');
        }
        print_bytes(h.key);
        putchar(':');
        print_bytes(h.value);
    }
    if (n == 0) {
        fputs("NO_HEADERS", stdout);
    }
}

static bool done(const consumer_t *cs)
{
    return cs->max >= 0 && cs->count >= cs->max;
}

/* Prints the records of one partition's fetched data; advances its offset. */
static int consume_records(consumer_t *cs, cpart_t *cp, trib_kbytes_t records, trib_arena_t *arena)
{
    if (records.len <= 0) {
        return CLI_OK;
    }
    trib_batch_iter_t it;
    trib_batch_iter_init(&it, records.ptr, (size_t)records.len, 0);
    trib_batch_t b;
    int rc;
    bool any = false;
    while (!done(cs) && (rc = trib_batch_iter_next(&it, &b)) == 1) {
        any = true;
        if (trib_batch_last_offset(&b) < cp->offset) {
            continue;
        }
        if (!trib_batch_is_control(&b)) {
            trib_record_iter_t ri;
            int irc = trib_record_iter_init(&ri, &b, arena, MAX_DECOMPRESSED);
            trib_record_t r;
            while (irc == 0 && !done(cs) && (irc = trib_record_iter_next(&ri, &r)) == 1) {
                irc = 0;
                if (r.offset < cp->offset) {
                    continue;
                }
                if (cs->print_partition) {
                    printf("Partition:%d%s", (int)cp->index, cs->sep);
                }
                if (cs->print_offset) {
                    printf("Offset:%lld%s", (long long)r.offset, cs->sep);
                }
                if (cs->print_headers) {
                    print_headers(&r);
                    fputs(cs->sep, stdout);
                }
                if (cs->print_key) {
                    print_bytes(r.key);
                    fputs(cs->sep, stdout);
                }
                print_bytes(r.value);
                putchar('\n');
                cs->count++;
                cp->offset = r.offset + 1;
            }
            trib_record_iter_fini(&ri);
            if (irc < 0) {
                cli_errorf("%s-%d: batch at offset %lld: %s", cs->topic, (int)cp->index,
                           (long long)b.base_offset, trib_strerror(irc));
                return CLI_EKAFKA;
            }
            if (done(cs)) {
                break;
            }
        }
        cp->offset = trib_batch_last_offset(&b) + 1;
    }
    if (!done(cs) && rc < 0) {
        cli_errorf("%s-%d: bad record batch near offset %lld: %s", cs->topic, (int)cp->index,
                   (long long)cp->offset, trib_strerror(rc));
        return CLI_EKAFKA;
    }
    if (!any && trib_batch_iter_partial(&it) > 0 && cp->max_bytes < (64 << 20)) {
        cp->max_bytes *= 2; /* one batch larger than what we asked for */
    }
    return CLI_OK;
}

static bool refreshable(int16_t code)
{
    return code == TRIB_KAFKA_NOT_LEADER_OR_FOLLOWER || code == TRIB_KAFKA_LEADER_NOT_AVAILABLE ||
           code == TRIB_KAFKA_UNKNOWN_TOPIC_OR_PARTITION ||
           code == TRIB_KAFKA_FENCED_LEADER_EPOCH || code == TRIB_KAFKA_UNKNOWN_LEADER_EPOCH;
}

/* One Fetch to one leader for its partitions. *refresh set when metadata is stale. */
static int fetch_leader(consumer_t *cs, int32_t leader, int wait_ms, bool *refresh)
{
    trib_arena_t arena;
    trib_arena_init(&arena);
    FetchRequest_FetchPartition *fp = trib_arena_calloc(&arena, (size_t)cs->nparts, sizeof *fp);
    if (!fp) {
        trib_arena_fini(&arena);
        cli_errorf("out of memory");
        return CLI_ENET;
    }
    int32_t n = 0;
    for (int32_t i = 0; i < cs->nparts; i++) {
        if (cs->parts[i].leader != leader) {
            continue;
        }
        FetchRequest_FetchPartition_init(&fp[n]);
        fp[n].Partition = cs->parts[i].index;
        fp[n].CurrentLeaderEpoch = -1;
        fp[n].FetchOffset = cs->parts[i].offset;
        fp[n].LastFetchedEpoch = -1;
        fp[n].LogStartOffset = -1;
        fp[n].PartitionMaxBytes = cs->parts[i].max_bytes;
        n++;
    }
    FetchRequest req;
    FetchRequest_init(&req);
    FetchRequest_FetchTopic ft;
    FetchRequest_FetchTopic_init(&ft);
    ft.Topic = trib_kstr(cs->topic);
    ft.Partitions.items = fp;
    ft.Partitions.count = n;
    req.ReplicaId = -1;
    req.MaxWaitMs = wait_ms;
    req.MinBytes = 1;
    req.MaxBytes = FETCH_MAX_BYTES;
    req.IsolationLevel = 0;
    req.SessionId = 0;
    req.SessionEpoch = -1;
    req.Topics.items = &ft;
    req.Topics.count = 1;
    req.ForgottenTopicsData.count = 0;
    FetchResponse resp;
    trib_error_t err;
    trib_error_clear(&err);
    if (trib_kclient_call(cs->client, leader, API_FETCH, cs->fetch_version, &req, &resp, &arena,
                          &err) < 0) {
        trib_arena_fini(&arena);
        return cli_fail(&err);
    }
    trib_kstr_t none = {NULL, -1};
    if (resp.ErrorCode != 0) {
        trib_arena_fini(&arena);
        return cli_kafka_fail(resp.ErrorCode, none, "Fetch");
    }
    int rc = CLI_OK;
    for (int32_t t = 0; t < resp.Responses.count && rc == CLI_OK; t++) {
        const FetchResponse_FetchableTopicResponse *tr = &resp.Responses.items[t];
        for (int32_t k = 0; k < tr->Partitions.count && rc == CLI_OK; k++) {
            const FetchResponse_PartitionData *pd = &tr->Partitions.items[k];
            cpart_t *cp = NULL;
            for (int32_t q = 0; q < cs->nparts; q++) {
                if (cs->parts[q].index == pd->PartitionIndex) {
                    cp = &cs->parts[q];
                }
            }
            if (!cp) {
                continue;
            }
            if (pd->ErrorCode != 0) {
                if (refreshable(pd->ErrorCode)) {
                    *refresh = true;
                    continue;
                }
                rc = cli_kafka_fail(pd->ErrorCode, none, "fetching %s-%d at offset %lld", cs->topic,
                                    (int)cp->index, (long long)cp->offset);
                break;
            }
            cp->hwm = pd->HighWatermark;
            rc = consume_records(cs, cp, pd->Records, &arena);
        }
    }
    fflush(stdout);
    trib_arena_fini(&arena);
    return rc;
}

/* ---- --group: one member of a classic consumer group ---------------------------------- */

static trib_kstr_t no_msg(void)
{
    trib_kstr_t s = {NULL, -1};
    return s;
}

static int cmp_member(const void *a, const void *b)
{
    const JoinGroupResponse_JoinGroupResponseMember *x = a, *y = b;
    int32_t n = x->MemberId.len < y->MemberId.len ? x->MemberId.len : y->MemberId.len;
    int c = memcmp(x->MemberId.ptr, y->MemberId.ptr, (size_t)(n > 0 ? n : 0));
    return c ? c : (x->MemberId.len > y->MemberId.len) - (x->MemberId.len < y->MemberId.len);
}

/* Does a member's subscription (version-prefixed ConsumerProtocolSubscription) name topic? */
static bool subscribes(trib_kbytes_t meta, const char *topic, trib_arena_t *arena)
{
    if (meta.len < 2) {
        return false;
    }
    trib_slice_t sl = trib_slice_make(meta.ptr, (size_t)meta.len);
    int16_t ver = trib_slice_i16(&sl);
    if (ver < 0) {
        return false;
    }
    ConsumerProtocolSubscription sub;
    ConsumerProtocolSubscription_init(&sub);
    if (ConsumerProtocolSubscription_decode(&sub, &sl, ver > 3 ? 3 : ver, arena) != 0) {
        return false;
    }
    for (int32_t i = 0; i < sub.Topics.count; i++) {
        if (cli_kstr_eq(sub.Topics.items[i], topic)) {
            return true;
        }
    }
    return false;
}

/* The leader's range assignment: the topic's partitions in contiguous ranges, members sorted. */
static int assign_ranges(consumer_t *cs, JoinGroupResponse *jr, SyncGroupRequest *sr,
                         trib_arena_t *arena)
{
    int32_t nm = jr->Members.count;
    qsort(jr->Members.items, (size_t)nm, sizeof(*jr->Members.items), cmp_member);
    SyncGroupRequest_SyncGroupRequestAssignment *as =
        trib_arena_calloc(arena, (size_t)(nm ? nm : 1), sizeof *as);
    bool *sub = trib_arena_calloc(arena, (size_t)(nm ? nm : 1), sizeof *sub);
    if (!as || !sub) {
        cli_errorf("out of memory");
        return CLI_ENET;
    }
    int32_t nsub = 0;
    for (int32_t i = 0; i < nm; i++) {
        sub[i] = subscribes(jr->Members.items[i].Metadata, cs->topic, arena);
        nsub += sub[i];
    }
    int32_t np = cs->topic_partitions, k = 0;
    for (int32_t i = 0; i < nm; i++) {
        int32_t from = 0, count = 0;
        if (sub[i]) {
            count = np / nsub + (k < np % nsub ? 1 : 0);
            from = k * (np / nsub) + (k < np % nsub ? k : np % nsub);
            k++;
        }
        int32_t *parts = trib_arena_calloc(arena, (size_t)(count ? count : 1), sizeof *parts);
        if (!parts) {
            cli_errorf("out of memory");
            return CLI_ENET;
        }
        for (int32_t p = 0; p < count; p++) {
            parts[p] = from + p;
        }
        ConsumerProtocolAssignment_TopicPartition tp;
        ConsumerProtocolAssignment_TopicPartition_init(&tp);
        tp.Topic = trib_kstr(cs->topic);
        tp.Partitions.items = parts;
        tp.Partitions.count = count;
        ConsumerProtocolAssignment a;
        ConsumerProtocolAssignment_init(&a);
        a.AssignedPartitions.items = &tp;
        a.AssignedPartitions.count = count ? 1 : 0;
        a.UserData.len = -1;
        trib_buf_t b;
        trib_buf_init(&b);
        trib_buf_put_i16(&b, 0);
        int rc = ConsumerProtocolAssignment_encode(&a, &b, 0);
        size_t len = 0;
        const uint8_t *flat = rc == 0 ? trib_buf_flatten(&b, &len) : NULL;
        uint8_t *copy = flat ? trib_arena_alloc(arena, len ? len : 1) : NULL;
        if (copy) {
            memcpy(copy, flat, len);
        }
        trib_buf_fini(&b);
        if (!copy) {
            cli_errorf("cannot encode the assignment");
            return CLI_ENET;
        }
        SyncGroupRequest_SyncGroupRequestAssignment_init(&as[i]);
        as[i].MemberId = jr->Members.items[i].MemberId;
        as[i].Assignment.ptr = copy;
        as[i].Assignment.len = (int32_t)len;
    }
    sr->Assignments.items = as;
    sr->Assignments.count = nm;
    return CLI_OK;
}

/*
 * Joins the group (again, after a rebalance) and takes the partitions it
 * assigns: cs->parts becomes them, each starting at the group's committed
 * offset, or at cs->start where there is none.
 */
static int group_join(consumer_t *cs)
{
    trib_arena_t arena;
    trib_arena_init(&arena);
    int rc = cli_find_coordinator(cs->client, cs->group, &cs->coordinator, &arena);
    int16_t vj = rc == CLI_OK ? cli_version(cs->client, API_JOIN_GROUP, 1, 9) : -1;
    int16_t vs = vj >= 0 ? cli_version(cs->client, API_SYNC_GROUP, 1, 5) : -1;
    int16_t vf = vs >= 0 ? cli_version(cs->client, API_OFFSET_FETCH, 2, 7) : -1;
    if (rc == CLI_OK && vf < 0) {
        rc = CLI_EKAFKA;
    }
    /* Our subscription: ConsumerProtocolSubscription v0, version-prefixed. */
    trib_buf_t meta;
    trib_buf_init(&meta);
    trib_kstr_t topic = trib_kstr(cs->topic);
    ConsumerProtocolSubscription sub;
    ConsumerProtocolSubscription_init(&sub);
    sub.Topics.items = &topic;
    sub.Topics.count = 1;
    sub.UserData.len = -1;
    trib_buf_put_i16(&meta, 0);
    size_t mlen = 0;
    const uint8_t *mp = NULL;
    if (rc == CLI_OK && ConsumerProtocolSubscription_encode(&sub, &meta, 0) == 0) {
        mp = trib_buf_flatten(&meta, &mlen);
    }
    JoinGroupResponse jr;
    for (int attempt = 0; rc == CLI_OK; attempt++) {
        JoinGroupRequest_JoinGroupRequestProtocol proto;
        JoinGroupRequest_JoinGroupRequestProtocol_init(&proto);
        proto.Name = trib_kstr("range");
        proto.Metadata.ptr = mp;
        proto.Metadata.len = (int32_t)mlen;
        JoinGroupRequest req;
        JoinGroupRequest_init(&req);
        req.GroupId = trib_kstr(cs->group);
        req.SessionTimeoutMs = SESSION_TIMEOUT_MS;
        req.RebalanceTimeoutMs = REBALANCE_TIMEOUT_MS;
        req.MemberId = trib_kstr(cs->member_id);
        req.GroupInstanceId.len = -1;
        req.ProtocolType = trib_kstr("consumer");
        req.Protocols.items = &proto;
        req.Protocols.count = 1;
        trib_error_t err;
        trib_error_clear(&err);
        if (trib_kclient_call(cs->client, cs->coordinator, API_JOIN_GROUP, vj, &req, &jr, &arena,
                              &err) < 0) {
            rc = cli_fail(&err);
            break;
        }
        if (jr.ErrorCode == TRIB_KAFKA_MEMBER_ID_REQUIRED && attempt < 3) {
            snprintf(cs->member_id, sizeof cs->member_id, "%.*s", (int)jr.MemberId.len,
                     jr.MemberId.ptr);
            continue;
        }
        if ((jr.ErrorCode == TRIB_KAFKA_UNKNOWN_MEMBER_ID ||
             jr.ErrorCode == TRIB_KAFKA_REBALANCE_IN_PROGRESS) &&
            attempt < 5) {
            if (jr.ErrorCode == TRIB_KAFKA_UNKNOWN_MEMBER_ID) {
                cs->member_id[0] = '\0';
            }
            continue;
        }
        if (jr.ErrorCode != 0) {
            rc = cli_kafka_fail(jr.ErrorCode, no_msg(), "cannot join group '%s'", cs->group);
        }
        break;
    }
    SyncGroupResponse sres;
    if (rc == CLI_OK) {
        snprintf(cs->member_id, sizeof cs->member_id, "%.*s", (int)jr.MemberId.len,
                 jr.MemberId.ptr);
        cs->generation = jr.GenerationId;
        SyncGroupRequest sreq;
        SyncGroupRequest_init(&sreq);
        sreq.GroupId = trib_kstr(cs->group);
        sreq.GenerationId = jr.GenerationId;
        sreq.MemberId = trib_kstr(cs->member_id);
        sreq.GroupInstanceId.len = -1;
        sreq.ProtocolType = trib_kstr("consumer");
        sreq.ProtocolName = trib_kstr("range");
        if (cli_kstr_eq(jr.Leader, cs->member_id)) {
            rc = assign_ranges(cs, &jr, &sreq, &arena);
        }
        trib_error_t err;
        trib_error_clear(&err);
        if (rc == CLI_OK && trib_kclient_call(cs->client, cs->coordinator, API_SYNC_GROUP, vs,
                                              &sreq, &sres, &arena, &err) < 0) {
            rc = cli_fail(&err);
        } else if (rc == CLI_OK && sres.ErrorCode != 0) {
            rc = cli_kafka_fail(sres.ErrorCode, no_msg(), "cannot sync group '%s'", cs->group);
        }
    }
    /* Our partitions of the topic. */
    int32_t *mine = NULL, nmine = 0;
    if (rc == CLI_OK && sres.Assignment.len >= 2) {
        trib_slice_t sl = trib_slice_make(sres.Assignment.ptr, (size_t)sres.Assignment.len);
        int16_t ver = trib_slice_i16(&sl);
        ConsumerProtocolAssignment a;
        ConsumerProtocolAssignment_init(&a);
        if (ver < 0 || ConsumerProtocolAssignment_decode(&a, &sl, ver > 3 ? 3 : ver, &arena) != 0) {
            cli_errorf("group '%s': the assignment does not decode", cs->group);
            rc = CLI_EKAFKA;
        }
        for (int32_t i = 0; rc == CLI_OK && i < a.AssignedPartitions.count; i++) {
            if (cli_kstr_eq(a.AssignedPartitions.items[i].Topic, cs->topic)) {
                mine = a.AssignedPartitions.items[i].Partitions.items;
                nmine = a.AssignedPartitions.items[i].Partitions.count;
            }
        }
    }
    if (rc == CLI_OK) {
        free(cs->parts);
        cs->parts = calloc((size_t)(nmine ? nmine : 1), sizeof *cs->parts);
        if (!cs->parts) {
            cli_errorf("out of memory");
            rc = CLI_ENET;
        }
        cs->nparts = cs->parts ? nmine : 0;
        for (int32_t i = 0; i < cs->nparts; i++) {
            cs->parts[i].index = mine[i];
            cs->parts[i].leader = -1;
            cs->parts[i].offset = cs->start;
            cs->parts[i].hwm = -1;
            cs->parts[i].max_bytes = PARTITION_MAX_BYTES;
        }
    }
    /* Where the group left off. */
    if (rc == CLI_OK && cs->nparts > 0) {
        int32_t *idx = trib_arena_calloc(&arena, (size_t)cs->nparts, sizeof *idx);
        for (int32_t i = 0; idx && i < cs->nparts; i++) {
            idx[i] = cs->parts[i].index;
        }
        OffsetFetchRequest_OffsetFetchRequestTopic ft;
        OffsetFetchRequest_OffsetFetchRequestTopic_init(&ft);
        ft.Name = trib_kstr(cs->topic);
        ft.PartitionIndexes.items = idx;
        ft.PartitionIndexes.count = cs->nparts;
        OffsetFetchRequest req;
        OffsetFetchRequest_init(&req);
        req.GroupId = trib_kstr(cs->group);
        req.Topics.items = &ft;
        req.Topics.count = 1;
        OffsetFetchResponse resp;
        trib_error_t err;
        trib_error_clear(&err);
        if (!idx) {
            cli_errorf("out of memory");
            rc = CLI_ENET;
        } else if (trib_kclient_call(cs->client, cs->coordinator, API_OFFSET_FETCH, vf, &req, &resp,
                                     &arena, &err) < 0) {
            rc = cli_fail(&err);
        } else if (resp.ErrorCode != 0) {
            rc = cli_kafka_fail(resp.ErrorCode, no_msg(), "cannot fetch the offsets of '%s'",
                                cs->group);
        }
        for (int32_t t = 0; rc == CLI_OK && t < resp.Topics.count; t++) {
            for (int32_t k = 0; k < resp.Topics.items[t].Partitions.count; k++) {
                const OffsetFetchResponse_OffsetFetchResponsePartition *p =
                    &resp.Topics.items[t].Partitions.items[k];
                for (int32_t q = 0; p->ErrorCode == 0 && p->CommittedOffset >= 0 && q < cs->nparts;
                     q++) {
                    if (cs->parts[q].index == p->PartitionIndex) {
                        cs->parts[q].offset = p->CommittedOffset;
                    }
                }
            }
        }
    }
    trib_buf_fini(&meta);
    trib_arena_fini(&arena);
    if (rc == CLI_OK) {
        if (cs->common.verbose) {
            fprintf(stderr, "tributary: group %s generation %d, member %s: %d partition%s\n",
                    cs->group, (int)cs->generation, cs->member_id, (int)cs->nparts,
                    cs->nparts == 1 ? "" : "s");
        }
        rc = load_partitions(cs); /* the leaders of the new partitions */
    }
    if (rc == CLI_OK) {
        rc = list_offsets(cs); /* the start of partitions the group had no offset for */
    }
    cs->last_heartbeat_ms = cs->last_commit_ms = cli_now_ms();
    return rc;
}

/* Commits the next offset of every assigned partition read so far. */
static int group_commit(consumer_t *cs)
{
    cs->last_commit_ms = cli_now_ms();
    if (cs->nparts == 0) {
        return CLI_OK;
    }
    int16_t v = cli_version(cs->client, API_OFFSET_COMMIT, 2, 8);
    if (v < 0) {
        return CLI_EKAFKA;
    }
    trib_arena_t arena;
    trib_arena_init(&arena);
    OffsetCommitRequest_OffsetCommitRequestPartition *ps =
        trib_arena_calloc(&arena, (size_t)cs->nparts, sizeof *ps);
    if (!ps) {
        trib_arena_fini(&arena);
        cli_errorf("out of memory");
        return CLI_ENET;
    }
    int32_t n = 0;
    for (int32_t i = 0; i < cs->nparts; i++) {
        if (cs->parts[i].offset < 0) {
            continue;
        }
        OffsetCommitRequest_OffsetCommitRequestPartition_init(&ps[n]);
        ps[n].PartitionIndex = cs->parts[i].index;
        ps[n].CommittedOffset = cs->parts[i].offset;
        ps[n].CommittedLeaderEpoch = -1;
        ps[n].CommittedMetadata = trib_kstr("");
        n++;
    }
    OffsetCommitRequest_OffsetCommitRequestTopic ot;
    OffsetCommitRequest_OffsetCommitRequestTopic_init(&ot);
    ot.Name = trib_kstr(cs->topic);
    ot.Partitions.items = ps;
    ot.Partitions.count = n;
    OffsetCommitRequest req;
    OffsetCommitRequest_init(&req);
    req.GroupId = trib_kstr(cs->group);
    req.GenerationIdOrMemberEpoch = cs->generation;
    req.MemberId = trib_kstr(cs->member_id);
    req.GroupInstanceId.len = -1;
    req.RetentionTimeMs = -1;
    req.Topics.items = &ot;
    req.Topics.count = 1;
    OffsetCommitResponse resp;
    trib_error_t err;
    trib_error_clear(&err);
    int rc = CLI_OK;
    if (trib_kclient_call(cs->client, cs->coordinator, API_OFFSET_COMMIT, v, &req, &resp, &arena,
                          &err) < 0) {
        rc = cli_fail(&err);
    }
    for (int32_t i = 0; rc == CLI_OK && i < resp.Topics.count; i++) {
        for (int32_t k = 0; rc == CLI_OK && k < resp.Topics.items[i].Partitions.count; k++) {
            int16_t code = resp.Topics.items[i].Partitions.items[k].ErrorCode;
            if (code != 0) {
                rc = cli_kafka_fail(code, no_msg(), "commit %s-%d for group '%s'", cs->topic,
                                    (int)resp.Topics.items[i].Partitions.items[k].PartitionIndex,
                                    cs->group);
            }
        }
    }
    trib_arena_fini(&arena);
    return rc;
}

/* Heartbeats when due; a rebalance commits and joins again. */
static int group_tick(consumer_t *cs)
{
    int64_t now = cli_now_ms();
    int rc = CLI_OK;
    if (now - cs->last_commit_ms >= COMMIT_MS) {
        rc = group_commit(cs);
    }
    if (rc != CLI_OK || now - cs->last_heartbeat_ms < HEARTBEAT_MS) {
        return rc;
    }
    cs->last_heartbeat_ms = now;
    int16_t v = cli_version(cs->client, API_HEARTBEAT, 0, 4);
    if (v < 0) {
        return CLI_EKAFKA;
    }
    trib_arena_t arena;
    trib_arena_init(&arena);
    HeartbeatRequest req;
    HeartbeatRequest_init(&req);
    req.GroupId = trib_kstr(cs->group);
    req.GenerationId = cs->generation;
    req.MemberId = trib_kstr(cs->member_id);
    req.GroupInstanceId.len = -1;
    HeartbeatResponse resp;
    trib_error_t err;
    trib_error_clear(&err);
    if (trib_kclient_call(cs->client, cs->coordinator, API_HEARTBEAT, v, &req, &resp, &arena,
                          &err) < 0) {
        rc = cli_fail(&err);
    } else if (resp.ErrorCode == TRIB_KAFKA_REBALANCE_IN_PROGRESS) {
        rc = group_commit(cs);
        if (rc == CLI_OK) {
            rc = group_join(cs);
        }
    } else if (resp.ErrorCode == TRIB_KAFKA_UNKNOWN_MEMBER_ID ||
               resp.ErrorCode == TRIB_KAFKA_ILLEGAL_GENERATION) {
        /* Fenced (the session expired): what we printed since the last commit may come again. */
        if (resp.ErrorCode == TRIB_KAFKA_UNKNOWN_MEMBER_ID) {
            cs->member_id[0] = '\0';
        }
        rc = group_join(cs);
    } else if (resp.ErrorCode != 0) {
        rc = cli_kafka_fail(resp.ErrorCode, no_msg(), "heartbeat in group '%s'", cs->group);
    }
    trib_arena_fini(&arena);
    return rc;
}

static void group_leave(consumer_t *cs)
{
    int16_t v = trib_kclient_version(cs->client, API_LEAVE_GROUP, 0, 5);
    if (v < 0 || !cs->member_id[0]) {
        return;
    }
    trib_arena_t arena;
    trib_arena_init(&arena);
    LeaveGroupRequest req;
    LeaveGroupRequest_init(&req);
    req.GroupId = trib_kstr(cs->group);
    LeaveGroupRequest_MemberIdentity me;
    LeaveGroupRequest_MemberIdentity_init(&me);
    me.MemberId = trib_kstr(cs->member_id);
    me.GroupInstanceId.len = -1;
    if (v >= 3) {
        req.Members.items = &me;
        req.Members.count = 1;
    } else {
        req.MemberId = trib_kstr(cs->member_id);
    }
    LeaveGroupResponse resp;
    trib_error_t err;
    trib_error_clear(&err);
    trib_kclient_call(cs->client, cs->coordinator, API_LEAVE_GROUP, v, &req, &resp, &arena, &err);
    trib_arena_fini(&arena);
}

static bool at_end(const consumer_t *cs)
{
    for (int32_t i = 0; i < cs->nparts; i++) {
        if (cs->parts[i].hwm < 0 || cs->parts[i].offset < cs->parts[i].hwm) {
            return false;
        }
    }
    return true;
}

static int run(consumer_t *cs)
{
    int64_t last = cli_now_ms();
    bool refresh = false;
    int rc = CLI_OK;
    while (!stop_requested && !done(cs)) {
        if (cs->group) {
            rc = group_tick(cs);
            if (rc != CLI_OK) {
                return rc;
            }
        }
        if (refresh) {
            cli_sleep_ms(100);
            rc = load_partitions(cs);
            if (rc != CLI_OK) {
                return rc;
            }
            refresh = false;
        }
        int wait = MAX_WAIT_MS;
        if (cs->timeout_ms >= 0) {
            int64_t left = cs->timeout_ms - (cli_now_ms() - last);
            if (left <= 0) {
                return cs->max >= 0 ? CLI_ETIMEOUT : CLI_OK;
            }
            if (left < wait) {
                wait = (int)left;
            }
        }
        int64_t before = cs->count;
        bool any_leader = false;
        for (int32_t i = 0; i < cs->nparts && rc == CLI_OK && !done(cs); i++) {
            int32_t leader = cs->parts[i].leader;
            bool first = true;
            for (int32_t k = 0; k < i; k++) {
                first &= cs->parts[k].leader != leader;
            }
            if (!first) {
                continue;
            }
            if (leader < 0) {
                refresh = true;
                continue;
            }
            any_leader = true;
            rc = fetch_leader(cs, leader, wait, &refresh);
        }
        if (rc != CLI_OK) {
            return rc;
        }
        if (!any_leader) {
            cli_sleep_ms(wait);
        }
        if (cs->count > before) {
            last = cli_now_ms();
        }
        if (cs->exit_at_end && at_end(cs)) {
            break;
        }
    }
    return CLI_OK;
}

int cli_consume(int argc, char **argv)
{
    enum {
        O_FROM_BEGINNING = 1,
        O_OFFSET,
        O_MAX,
        O_TIMEOUT,
        O_PKEY,
        O_PPART,
        O_POFF,
        O_SEP,
        O_PHEADERS,
    };
    static const struct option opts[] = {
        {"topic", required_argument, NULL, 't'},
        {"partition", required_argument, NULL, 'p'},
        {"from-beginning", no_argument, NULL, O_FROM_BEGINNING},
        {"offset", required_argument, NULL, 'o'},
        {"max", required_argument, NULL, O_MAX},
        {"max-messages", required_argument, NULL, O_MAX},
        {"timeout-ms", required_argument, NULL, O_TIMEOUT},
        {"exit-at-end", no_argument, NULL, 'e'},
        {"print-key", no_argument, NULL, O_PKEY},
        {"print-partition", no_argument, NULL, O_PPART},
        {"print-offset", no_argument, NULL, O_POFF},
        {"print-headers", no_argument, NULL, O_PHEADERS},
        {"group", required_argument, NULL, 'g'},
        {"separator", required_argument, NULL, O_SEP},
        {"help", no_argument, NULL, 'h'},
        CLI_COMMON_LONGOPTS,
        {NULL, 0, NULL, 0},
    };
    consumer_t cs;
    memset(&cs, 0, sizeof cs);
    cli_common_init(&cs.common);
    cs.partition = -1;
    cs.start = LATEST;
    cs.max = -1;
    cs.timeout_ms = -1;
    cs.sep = "\t";
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "b:ht:p:o:eg:", opts, NULL)) != -1) {
        int r = cli_common_opt(&cs.common, c, optarg);
        if (r < 0) {
            return CLI_EUSAGE;
        }
        if (r > 0) {
            continue;
        }
        switch (c) {
        case 't':
            cs.topic = optarg;
            break;
        case 'p':
            if (cli_parse_int("--partition", optarg, 0, INT32_MAX, &cs.partition) < 0) {
                return CLI_EUSAGE;
            }
            break;
        case O_FROM_BEGINNING:
            cs.start = EARLIEST;
            break;
        case 'o':
            if (!strcmp(optarg, "earliest") || !strcmp(optarg, "beginning")) {
                cs.start = EARLIEST;
            } else if (!strcmp(optarg, "latest") || !strcmp(optarg, "end")) {
                cs.start = LATEST;
            } else if (cli_parse_int("--offset", optarg, 0, INT64_MAX, &cs.start) < 0) {
                return CLI_EUSAGE;
            }
            break;
        case O_MAX:
            if (cli_parse_int("--max", optarg, 0, INT64_MAX, &cs.max) < 0) {
                return CLI_EUSAGE;
            }
            break;
        case O_TIMEOUT:
            if (cli_parse_int("--timeout-ms", optarg, 0, INT32_MAX, &cs.timeout_ms) < 0) {
                return CLI_EUSAGE;
            }
            break;
        case 'e':
            cs.exit_at_end = true;
            break;
        case O_PKEY:
            cs.print_key = true;
            break;
        case O_PPART:
            cs.print_partition = true;
            break;
        case O_POFF:
            cs.print_offset = true;
            break;
        case O_SEP:
            cs.sep = optarg;
            break;
        case O_PHEADERS:
            cs.print_headers = true;
            break;
        case 'g':
            cs.group = optarg;
            break;
        case 'h':
            usage(stdout);
            return CLI_OK;
        default:
            usage(stderr);
            return CLI_EUSAGE;
        }
    }
    if (optind < argc) {
        cli_errorf("unexpected argument '%s'", argv[optind]);
        return CLI_EUSAGE;
    }
    if (!cs.topic) {
        cli_errorf("consume needs --topic");
        return CLI_EUSAGE;
    }
    if (cs.group && (!*cs.group || cs.partition >= 0)) {
        cli_errorf(*cs.group ? "--group and --partition do not go together (the group assigns "
                               "the partitions)"
                             : "--group needs a name");
        return CLI_EUSAGE;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    int rc = cli_connect(&cs.client, &cs.common);
    if (rc != CLI_OK) {
        return rc;
    }
    cs.fetch_version = cli_version(cs.client, API_FETCH, 4, 12);
    if (cs.fetch_version < 0) {
        rc = CLI_EKAFKA;
    }
    if (rc == CLI_OK) {
        rc = load_partitions(&cs);
    }
    if (rc == CLI_OK) {
        rc = cs.group ? group_join(&cs) : list_offsets(&cs);
    }
    if (rc == CLI_OK && cs.max != 0) {
        rc = run(&cs);
    }
    if (cs.group && cs.member_id[0]) {
        /* What was printed is committed, then the group may hand it to others. */
        if ((rc == CLI_OK || rc == CLI_ETIMEOUT) && cs.generation > 0) {
            int crc = group_commit(&cs);
            rc = crc != CLI_OK ? crc : rc;
        }
        group_leave(&cs);
    }
    fflush(stdout);
    if (rc == CLI_OK || rc == CLI_ETIMEOUT) {
        fprintf(stderr, "Processed a total of %lld messages\n", (long long)cs.count);
    }
    if (rc == CLI_ETIMEOUT) {
        cli_errorf("%lld of %lld records arrived within %lld ms", (long long)cs.count,
                   (long long)cs.max, (long long)cs.timeout_ms);
    }
    free(cs.parts);
    trib_kclient_close(cs.client);
    return rc;
}
