/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tributary groups list|describe|delete|reset-offsets, in the manner of
 * kafka-consumer-groups.sh: describe prints one line per partition the
 * group has a committed offset for or a member is assigned, with the
 * committed offset, the log end offset, the lag between them and the
 * member that owns the partition, then the members.
 *
 *   list           ListGroups v0-4 on every broker
 *   describe       FindCoordinator v0-4, DescribeGroups v0-5,
 *                  OffsetFetch v2-7 (every committed offset), Metadata,
 *                  ListOffsets v1-7 (log end offsets, at the leaders)
 *   delete         DeleteGroups v0-2 at the coordinator
 *   reset-offsets  DescribeGroups (the group must have no members), then
 *                  OffsetCommit v2-8 as a standalone commit (generation -1,
 *                  member ""); a dry run unless --execute, as Kafka's tool
 *
 * Assignments are decoded when the protocol type is "consumer"
 * (ConsumerProtocolAssignment, any version); other groups show their
 * members without partitions.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "tributary/kafka_error.h"

#include "kafka/gen/ConsumerProtocolAssignment.h"
#include "kafka/gen/DeleteGroupsRequest.h"
#include "kafka/gen/DeleteGroupsResponse.h"
#include "kafka/gen/DescribeGroupsRequest.h"
#include "kafka/gen/DescribeGroupsResponse.h"
#include "kafka/gen/FindCoordinatorRequest.h"
#include "kafka/gen/FindCoordinatorResponse.h"
#include "kafka/gen/ListGroupsRequest.h"
#include "kafka/gen/ListGroupsResponse.h"
#include "kafka/gen/ListOffsetsRequest.h"
#include "kafka/gen/ListOffsetsResponse.h"
#include "kafka/gen/OffsetCommitRequest.h"
#include "kafka/gen/OffsetCommitResponse.h"
#include "kafka/gen/OffsetFetchRequest.h"
#include "kafka/gen/OffsetFetchResponse.h"

/* The group API keys (cli.h lists the others). */
enum {
    API_OFFSET_COMMIT = 8,
    API_OFFSET_FETCH = 9,
    API_DESCRIBE_GROUPS = 15,
    API_LIST_GROUPS = 16,
    API_DELETE_GROUPS = 42,
};

#define TS_LATEST (-1)
#define TS_EARLIEST (-2)

static void usage(FILE *out)
{
    fputs("Usage:\n"
          "  tributary groups list\n"
          "  tributary groups describe --group G\n"
          "  tributary groups delete --group G\n"
          "  tributary groups reset-offsets --group G --topic T [--partition P]\n"
          "        (--to-earliest | --to-latest | --to-offset N | --shift-by N) [--execute]\n"
          "\n"
          "describe: per partition the committed offset, the log end offset, the lag\n"
          "  and the member it is assigned to; then the members.\n"
          "reset-offsets: only for a group without members (stop its consumers first;\n"
          "  for a running sink's group sink.NAME, use `tributary sinks replay`);\n"
          "  prints the new offsets, and commits them only with --execute.\n"
          "\n"
          "Common options: --bootstrap HOST:PORT, --request-timeout-ms N, --verbose,\n"
          "  --command-config FILE (TLS and SASL; see tributary --help).\n",
          out);
}

typedef enum reset_mode { RESET_NONE, RESET_EARLIEST, RESET_LATEST, RESET_TO, RESET_SHIFT } reset_t;

typedef struct groups_opts {
    cli_common_t common;
    const char *group;
    const char *topic;
    int64_t partition; /* -1: every partition */
    reset_t reset;
    int64_t value;
    bool execute;
} groups_opts_t;

static int parse(groups_opts_t *o, int argc, char **argv)
{
    enum { O_GROUP = 1, O_TOPIC, O_PART, O_EARLIEST, O_LATEST, O_TO, O_SHIFT, O_EXECUTE };
    static const struct option opts[] = {
        {"group", required_argument, NULL, O_GROUP},
        {"topic", required_argument, NULL, O_TOPIC},
        {"partition", required_argument, NULL, O_PART},
        {"to-earliest", no_argument, NULL, O_EARLIEST},
        {"to-latest", no_argument, NULL, O_LATEST},
        {"to-offset", required_argument, NULL, O_TO},
        {"shift-by", required_argument, NULL, O_SHIFT},
        {"execute", no_argument, NULL, O_EXECUTE},
        {"help", no_argument, NULL, 'h'},
        CLI_COMMON_LONGOPTS,
        {NULL, 0, NULL, 0},
    };
    memset(o, 0, sizeof *o);
    cli_common_init(&o->common);
    o->partition = -1;
    optind = 1;
    int c;
    int modes = 0;
    while ((c = getopt_long(argc, argv, "b:g:ht:", opts, NULL)) != -1) {
        int r = cli_common_opt(&o->common, c, optarg);
        if (r < 0) {
            return CLI_EUSAGE;
        }
        if (r > 0) {
            continue;
        }
        switch (c) {
        case 'g':
        case O_GROUP:
            o->group = optarg;
            break;
        case 't':
        case O_TOPIC:
            o->topic = optarg;
            break;
        case O_PART:
            if (cli_parse_int("--partition", optarg, 0, INT32_MAX, &o->partition) < 0) {
                return CLI_EUSAGE;
            }
            break;
        case O_EARLIEST:
            o->reset = RESET_EARLIEST;
            modes++;
            break;
        case O_LATEST:
            o->reset = RESET_LATEST;
            modes++;
            break;
        case O_TO:
            if (cli_parse_int("--to-offset", optarg, 0, INT64_MAX, &o->value) < 0) {
                return CLI_EUSAGE;
            }
            o->reset = RESET_TO;
            modes++;
            break;
        case O_SHIFT:
            if (cli_parse_int("--shift-by", optarg, INT64_MIN / 2, INT64_MAX / 2, &o->value) < 0) {
                return CLI_EUSAGE;
            }
            o->reset = RESET_SHIFT;
            modes++;
            break;
        case O_EXECUTE:
            o->execute = true;
            break;
        case 'h':
            usage(stdout);
            return -1;
        default:
            usage(stderr);
            return CLI_EUSAGE;
        }
    }
    if (optind < argc && !o->group) {
        o->group = argv[optind++];
    }
    if (optind < argc) {
        cli_errorf("unexpected argument '%s'", argv[optind]);
        return CLI_EUSAGE;
    }
    if (modes > 1) {
        cli_errorf("give one of --to-earliest, --to-latest, --to-offset, --shift-by");
        return CLI_EUSAGE;
    }
    return CLI_OK;
}

/* ---- helpers ------------------------------------------------------------------------ */

static trib_kstr_t no_msg(void)
{
    trib_kstr_t s = {NULL, -1};
    return s;
}

static char *kdup(trib_arena_t *a, trib_kstr_t s)
{
    return trib_arena_strndup(a, s.len > 0 ? s.ptr : "", s.len > 0 ? (size_t)s.len : 0);
}

/* The coordinator's node id (the client's broker table must know it: Metadata first). */
typedef struct gpart {
    const char *topic;
    int32_t partition;
    int64_t committed; /* -1: none */
    int64_t start, end;
    const char *member, *host, *client;
} gpart_t;

typedef struct gpart_list {
    gpart_t *items;
    size_t n, cap;
} gpart_list_t;

static gpart_t *gpart_get(gpart_list_t *l, trib_arena_t *a, const char *topic, int32_t partition)
{
    for (size_t i = 0; i < l->n; i++) {
        if (l->items[i].partition == partition && strcmp(l->items[i].topic, topic) == 0) {
            return &l->items[i];
        }
    }
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        gpart_t *n = trib_arena_calloc(a, cap, sizeof *n);
        if (!n) {
            return NULL;
        }
        if (l->n) {
            memcpy(n, l->items, l->n * sizeof *n);
        }
        l->items = n;
        l->cap = cap;
    }
    gpart_t *p = &l->items[l->n++];
    memset(p, 0, sizeof *p);
    p->topic = topic;
    p->partition = partition;
    p->committed = -1;
    p->start = -1;
    p->end = -1;
    return p;
}

static int cmp_gpart(const void *a, const void *b)
{
    const gpart_t *x = a, *y = b;
    int c = strcmp(x->topic, y->topic);
    return c ? c : (x->partition > y->partition) - (x->partition < y->partition);
}

/* Log start or end offsets (ts = TS_EARLIEST / TS_LATEST) of the listed partitions. */
static int list_offsets(trib_kclient_t *c, const MetadataResponse *md, gpart_list_t *l, int64_t ts,
                        trib_arena_t *arena)
{
    int16_t v = cli_version(c, API_LIST_OFFSETS, 1, 7);
    if (v < 0) {
        return CLI_EKAFKA;
    }
    for (size_t i = 0; i < l->n; i++) {
        gpart_t *g = &l->items[i];
        const MetadataResponse_MetadataResponseTopic *t = cli_find_topic(md, g->topic);
        int32_t leader = -1;
        for (int32_t k = 0; t && k < t->Partitions.count; k++) {
            if (t->Partitions.items[k].PartitionIndex == g->partition) {
                leader = t->Partitions.items[k].LeaderId;
            }
        }
        if (leader < 0) {
            continue; /* a deleted topic or partition: no log end, no lag */
        }
        ListOffsetsRequest_ListOffsetsPartition lp;
        ListOffsetsRequest_ListOffsetsPartition_init(&lp);
        lp.PartitionIndex = g->partition;
        lp.CurrentLeaderEpoch = -1;
        lp.Timestamp = ts;
        ListOffsetsRequest_ListOffsetsTopic lt;
        ListOffsetsRequest_ListOffsetsTopic_init(&lt);
        lt.Name = trib_kstr(g->topic);
        lt.Partitions.items = &lp;
        lt.Partitions.count = 1;
        ListOffsetsRequest req;
        ListOffsetsRequest_init(&req);
        req.ReplicaId = -1;
        req.Topics.items = &lt;
        req.Topics.count = 1;
        ListOffsetsResponse resp;
        trib_error_t err;
        trib_error_clear(&err);
        if (trib_kclient_call(c, leader, API_LIST_OFFSETS, v, &req, &resp, arena, &err) < 0) {
            return cli_fail(&err);
        }
        for (int32_t k = 0; k < resp.Topics.count; k++) {
            for (int32_t q = 0; q < resp.Topics.items[k].Partitions.count; q++) {
                const ListOffsetsResponse_ListOffsetsPartitionResponse *pr =
                    &resp.Topics.items[k].Partitions.items[q];
                if (pr->ErrorCode != 0) {
                    return cli_kafka_fail(pr->ErrorCode, no_msg(), "ListOffsets %s-%d", g->topic,
                                          (int)g->partition);
                }
                if (ts == TS_EARLIEST) {
                    g->start = pr->Offset;
                } else {
                    g->end = pr->Offset;
                }
            }
        }
    }
    return CLI_OK;
}

/* DescribeGroups for one group at its coordinator. */
static int describe_group(trib_kclient_t *c, int32_t node, const char *group,
                          DescribeGroupsResponse_DescribedGroup **out, trib_arena_t *arena)
{
    int16_t v = cli_version(c, API_DESCRIBE_GROUPS, 0, 5);
    if (v < 0) {
        return CLI_EKAFKA;
    }
    DescribeGroupsRequest req;
    DescribeGroupsRequest_init(&req);
    trib_kstr_t g = trib_kstr(group);
    req.Groups.items = &g;
    req.Groups.count = 1;
    DescribeGroupsResponse *resp = trib_arena_calloc(arena, 1, sizeof *resp);
    if (!resp) {
        cli_errorf("out of memory");
        return CLI_ENET;
    }
    trib_error_t err;
    trib_error_clear(&err);
    if (trib_kclient_call(c, node, API_DESCRIBE_GROUPS, v, &req, resp, arena, &err) < 0) {
        return cli_fail(&err);
    }
    if (resp->Groups.count != 1) {
        cli_errorf("DescribeGroups answered %d groups", (int)resp->Groups.count);
        return CLI_ENET;
    }
    *out = &resp->Groups.items[0];
    if ((*out)->ErrorCode != 0) {
        return cli_kafka_fail((*out)->ErrorCode, no_msg(), "cannot describe group '%s'", group);
    }
    return CLI_OK;
}

/* Every committed offset of the group (OffsetFetch with Topics null). */
static int fetch_offsets(trib_kclient_t *c, int32_t node, const char *group, gpart_list_t *l,
                         trib_arena_t *arena)
{
    int16_t v = cli_version(c, API_OFFSET_FETCH, 2, 7);
    if (v < 0) {
        return CLI_EKAFKA;
    }
    OffsetFetchRequest req;
    OffsetFetchRequest_init(&req);
    req.GroupId = trib_kstr(group);
    req.Topics.count = -1;
    OffsetFetchResponse resp;
    trib_error_t err;
    trib_error_clear(&err);
    if (trib_kclient_call(c, node, API_OFFSET_FETCH, v, &req, &resp, arena, &err) < 0) {
        return cli_fail(&err);
    }
    if (resp.ErrorCode != 0) {
        return cli_kafka_fail(resp.ErrorCode, no_msg(), "cannot fetch the offsets of '%s'", group);
    }
    for (int32_t i = 0; i < resp.Topics.count; i++) {
        const OffsetFetchResponse_OffsetFetchResponseTopic *t = &resp.Topics.items[i];
        char *name = kdup(arena, t->Name);
        for (int32_t k = 0; name && k < t->Partitions.count; k++) {
            const OffsetFetchResponse_OffsetFetchResponsePartition *p = &t->Partitions.items[k];
            if (p->ErrorCode != 0 || p->CommittedOffset < 0) {
                continue;
            }
            gpart_t *g = gpart_get(l, arena, name, p->PartitionIndex);
            if (!g) {
                cli_errorf("out of memory");
                return CLI_ENET;
            }
            g->committed = p->CommittedOffset;
        }
    }
    return CLI_OK;
}

/* The partitions of a consumer-protocol assignment; false when it does not decode. */
static bool decode_assignment(trib_kbytes_t b, ConsumerProtocolAssignment *a, trib_arena_t *arena)
{
    ConsumerProtocolAssignment_init(a);
    if (b.len < 2) {
        return false;
    }
    trib_slice_t s = trib_slice_make(b.ptr, (size_t)b.len);
    int16_t ver = trib_slice_i16(&s);
    if (ver < 0) {
        return false;
    }
    if (ver > 3) {
        ver = 3; /* later versions add fields at the end */
    }
    return ConsumerProtocolAssignment_decode(a, &s, ver, arena) == 0;
}

/* ---- commands ----------------------------------------------------------------------- */

static int groups_list(trib_kclient_t *c, trib_arena_t *arena)
{
    int16_t v = cli_version(c, API_LIST_GROUPS, 0, 4);
    if (v < 0) {
        return CLI_EKAFKA;
    }
    MetadataResponse md;
    int rc = cli_metadata(c, NULL, 0, false, 0, &md, arena);
    if (rc != CLI_OK) {
        return rc;
    }
    size_t nb;
    const trib_kclient_broker_t *brokers = trib_kclient_brokers(c, &nb);
    printf("%-40s %-20s %s\n", "GROUP", "STATE", "PROTOCOL-TYPE");
    for (size_t i = 0; i < nb; i++) {
        ListGroupsRequest req;
        ListGroupsRequest_init(&req);
        ListGroupsResponse resp;
        trib_error_t err;
        trib_error_clear(&err);
        if (trib_kclient_call(c, brokers[i].node_id, API_LIST_GROUPS, v, &req, &resp, arena, &err) <
            0) {
            return cli_fail(&err);
        }
        if (resp.ErrorCode != 0) {
            return cli_kafka_fail(resp.ErrorCode, no_msg(), "ListGroups on broker %d",
                                  (int)brokers[i].node_id);
        }
        for (int32_t k = 0; k < resp.Groups.count; k++) {
            const ListGroupsResponse_ListedGroup *g = &resp.Groups.items[k];
            printf("%-40.*s %-20.*s %.*s\n", (int)g->GroupId.len, g->GroupId.ptr,
                   v >= 4 ? (int)g->GroupState.len : 1, v >= 4 ? g->GroupState.ptr : "-",
                   (int)g->ProtocolType.len, g->ProtocolType.ptr);
        }
    }
    return CLI_OK;
}

static void print_cell(const char *s, int width)
{
    printf("%-*s ", width, s && *s ? s : "-");
}

static int groups_describe(trib_kclient_t *c, const groups_opts_t *o, trib_arena_t *arena)
{
    MetadataResponse md;
    int rc = cli_metadata(c, NULL, 0, false, 0, &md, arena);
    int32_t node;
    if (rc != CLI_OK || (rc = cli_find_coordinator(c, o->group, &node, arena)) != CLI_OK) {
        return rc;
    }
    DescribeGroupsResponse_DescribedGroup *dg;
    if ((rc = describe_group(c, node, o->group, &dg, arena)) != CLI_OK) {
        return rc;
    }
    gpart_list_t l = {NULL, 0, 0};
    if ((rc = fetch_offsets(c, node, o->group, &l, arena)) != CLI_OK) {
        return rc;
    }
    if (cli_kstr_eq(dg->GroupState, "Dead") && l.n == 0) {
        /* Kafka answers an unknown group as Dead with nothing in it. */
        return cli_kafka_fail(TRIB_KAFKA_GROUP_ID_NOT_FOUND, no_msg(), "group '%s'", o->group);
    }
    bool consumer = cli_kstr_eq(dg->ProtocolType, "consumer");
    int32_t *nassigned = trib_arena_calloc(arena, (size_t)dg->Members.count + 1, sizeof(int32_t));
    if (!nassigned) {
        cli_errorf("out of memory");
        return CLI_ENET;
    }
    for (int32_t i = 0; consumer && i < dg->Members.count; i++) {
        const DescribeGroupsResponse_DescribedGroupMember *m = &dg->Members.items[i];
        ConsumerProtocolAssignment a;
        if (!decode_assignment(m->MemberAssignment, &a, arena)) {
            continue;
        }
        for (int32_t t = 0; t < a.AssignedPartitions.count; t++) {
            const ConsumerProtocolAssignment_TopicPartition *tp = &a.AssignedPartitions.items[t];
            char *name = kdup(arena, tp->Topic);
            for (int32_t k = 0; name && k < tp->Partitions.count; k++) {
                gpart_t *g = gpart_get(&l, arena, name, tp->Partitions.items[k]);
                if (!g) {
                    cli_errorf("out of memory");
                    return CLI_ENET;
                }
                g->member = kdup(arena, m->MemberId);
                g->host = kdup(arena, m->ClientHost);
                g->client = kdup(arena, m->ClientId);
                nassigned[i]++;
            }
        }
    }
    if ((rc = list_offsets(c, &md, &l, TS_LATEST, arena)) != CLI_OK) {
        return rc;
    }
    if (l.n > 1) {
        qsort(l.items, l.n, sizeof *l.items, cmp_gpart);
    }
    printf("Group %s: state %.*s, protocol %.*s/%.*s, %d member%s\n\n", o->group,
           (int)dg->GroupState.len, dg->GroupState.ptr, (int)dg->ProtocolType.len,
           dg->ProtocolType.ptr, dg->ProtocolData.len > 0 ? (int)dg->ProtocolData.len : 1,
           dg->ProtocolData.len > 0 ? dg->ProtocolData.ptr : "-", (int)dg->Members.count,
           dg->Members.count == 1 ? "" : "s");
    int wt = 5, wm = 11, wh = 4, wc = 9;
    for (size_t i = 0; i < l.n; i++) {
        const gpart_t *g = &l.items[i];
        wt = (int)strlen(g->topic) > wt ? (int)strlen(g->topic) : wt;
        wm = g->member && (int)strlen(g->member) > wm ? (int)strlen(g->member) : wm;
        wh = g->host && (int)strlen(g->host) > wh ? (int)strlen(g->host) : wh;
        wc = g->client && (int)strlen(g->client) > wc ? (int)strlen(g->client) : wc;
    }
    printf("%-*s %-9s %-14s %-14s %-8s %-*s %-*s %s\n", wt, "TOPIC", "PARTITION", "CURRENT-OFFSET",
           "LOG-END-OFFSET", "LAG", wm, "CONSUMER-ID", wh, "HOST", "CLIENT-ID");
    for (size_t i = 0; i < l.n; i++) {
        const gpart_t *g = &l.items[i];
        char cur[32] = "-", end[32] = "-", lag[32] = "-";
        if (g->committed >= 0) {
            snprintf(cur, sizeof cur, "%" PRId64, g->committed);
        }
        if (g->end >= 0) {
            snprintf(end, sizeof end, "%" PRId64, g->end);
        }
        if (g->committed >= 0 && g->end >= 0) {
            snprintf(lag, sizeof lag, "%" PRId64,
                     g->end > g->committed ? g->end - g->committed : 0);
        }
        printf("%-*s %-9d %-14s %-14s %-8s ", wt, g->topic, (int)g->partition, cur, end, lag);
        print_cell(g->member, wm);
        print_cell(g->host, wh);
        printf("%s\n", g->client && *g->client ? g->client : "-");
    }
    printf("\nMEMBERS\n");
    printf("%-*s %-*s %-*s %-11s %s\n", wm, "CONSUMER-ID", wh, "HOST", wc, "CLIENT-ID",
           "#PARTITIONS", "INSTANCE-ID");
    for (int32_t i = 0; i < dg->Members.count; i++) {
        const DescribeGroupsResponse_DescribedGroupMember *m = &dg->Members.items[i];
        printf("%-*.*s %-*.*s %-*.*s %-11d %.*s\n", wm, (int)m->MemberId.len, m->MemberId.ptr, wh,
               (int)m->ClientHost.len, m->ClientHost.ptr, wc, (int)m->ClientId.len, m->ClientId.ptr,
               (int)nassigned[i], m->GroupInstanceId.len > 0 ? (int)m->GroupInstanceId.len : 1,
               m->GroupInstanceId.len > 0 ? m->GroupInstanceId.ptr : "-");
    }
    return CLI_OK;
}

static int groups_delete(trib_kclient_t *c, const groups_opts_t *o, trib_arena_t *arena)
{
    MetadataResponse md;
    int rc = cli_metadata(c, NULL, 0, false, 0, &md, arena);
    int32_t node;
    if (rc != CLI_OK || (rc = cli_find_coordinator(c, o->group, &node, arena)) != CLI_OK) {
        return rc;
    }
    int16_t v = cli_version(c, API_DELETE_GROUPS, 0, 2);
    if (v < 0) {
        return CLI_EKAFKA;
    }
    DeleteGroupsRequest req;
    DeleteGroupsRequest_init(&req);
    trib_kstr_t g = trib_kstr(o->group);
    req.GroupsNames.items = &g;
    req.GroupsNames.count = 1;
    DeleteGroupsResponse resp;
    trib_error_t err;
    trib_error_clear(&err);
    if (trib_kclient_call(c, node, API_DELETE_GROUPS, v, &req, &resp, arena, &err) < 0) {
        return cli_fail(&err);
    }
    for (int32_t i = 0; i < resp.Results.count; i++) {
        if (resp.Results.items[i].ErrorCode != 0) {
            return cli_kafka_fail(resp.Results.items[i].ErrorCode, no_msg(),
                                  "cannot delete group '%s'", o->group);
        }
    }
    printf("Deleted group %s.\n", o->group);
    return CLI_OK;
}

static int groups_reset(trib_kclient_t *c, const groups_opts_t *o, trib_arena_t *arena)
{
    if (!o->topic || o->reset == RESET_NONE) {
        cli_errorf("reset-offsets needs --topic and one of --to-earliest, --to-latest, "
                   "--to-offset, --shift-by");
        return CLI_EUSAGE;
    }
    const char *topics[1] = {o->topic};
    MetadataResponse md;
    int rc = cli_metadata(c, topics, 1, false, 0, &md, arena);
    if (rc != CLI_OK) {
        return rc;
    }
    const MetadataResponse_MetadataResponseTopic *t = cli_find_topic(&md, o->topic);
    if (!t || t->ErrorCode != 0) {
        return cli_topic_error(t, o->topic);
    }
    int32_t node;
    if ((rc = cli_find_coordinator(c, o->group, &node, arena)) != CLI_OK) {
        return rc;
    }
    DescribeGroupsResponse_DescribedGroup *dg;
    if ((rc = describe_group(c, node, o->group, &dg, arena)) != CLI_OK) {
        return rc;
    }
    if (dg->Members.count > 0 && cli_kstr_eq(dg->ProtocolData, "tributary-sink") &&
        strncmp(o->group, "sink.", 5) == 0) {
        cli_errorf("group '%s' is the running sink '%s' of the collector: its offsets cannot be "
                   "reset while it runs (the sink would commit over them); replay it instead "
                   "with `tributary sinks replay --sink %s --to-earliest|--to-offset N|"
                   "--to-time T`",
                   o->group, o->group + 5, o->group + 5);
        return CLI_EKAFKA;
    }
    if (dg->Members.count > 0) {
        cli_errorf("group '%s' has %d active member%s (state %.*s): stop its consumers first",
                   o->group, (int)dg->Members.count, dg->Members.count == 1 ? "" : "s",
                   (int)dg->GroupState.len, dg->GroupState.ptr);
        return CLI_EKAFKA;
    }
    gpart_list_t committed = {NULL, 0, 0}, l = {NULL, 0, 0};
    if ((rc = fetch_offsets(c, node, o->group, &committed, arena)) != CLI_OK) {
        return rc;
    }
    for (int32_t k = 0; k < t->Partitions.count; k++) {
        int32_t p = t->Partitions.items[k].PartitionIndex;
        if (o->partition >= 0 && p != o->partition) {
            continue;
        }
        if (!gpart_get(&l, arena, o->topic, p)) {
            cli_errorf("out of memory");
            return CLI_ENET;
        }
    }
    if (l.n == 0) {
        cli_errorf("topic '%s' has no partition %" PRId64, o->topic, o->partition);
        return CLI_EUSAGE;
    }
    if ((rc = list_offsets(c, &md, &l, TS_EARLIEST, arena)) != CLI_OK ||
        (rc = list_offsets(c, &md, &l, TS_LATEST, arena)) != CLI_OK) {
        return rc;
    }
    qsort(l.items, l.n, sizeof *l.items, cmp_gpart);
    OffsetCommitRequest_OffsetCommitRequestPartition *ps =
        trib_arena_calloc(arena, l.n, sizeof *ps);
    if (!ps) {
        cli_errorf("out of memory");
        return CLI_ENET;
    }
    printf("%-30s %-9s %s\n", "TOPIC", "PARTITION", "NEW-OFFSET");
    for (size_t i = 0; i < l.n; i++) {
        gpart_t *g = &l.items[i];
        int64_t cur = -1;
        for (size_t k = 0; k < committed.n; k++) {
            if (committed.items[k].partition == g->partition &&
                strcmp(committed.items[k].topic, g->topic) == 0) {
                cur = committed.items[k].committed;
            }
        }
        int64_t off;
        switch (o->reset) {
        case RESET_EARLIEST:
            off = g->start;
            break;
        case RESET_LATEST:
            off = g->end;
            break;
        case RESET_TO:
            off = o->value;
            break;
        default:
            off = (cur >= 0 ? cur : g->start) + o->value;
            break;
        }
        /* As Kafka's tool: clamp into the log's range. */
        if (off < g->start) {
            off = g->start;
        }
        if (off > g->end) {
            off = g->end;
        }
        OffsetCommitRequest_OffsetCommitRequestPartition_init(&ps[i]);
        ps[i].PartitionIndex = g->partition;
        ps[i].CommittedOffset = off;
        ps[i].CommittedLeaderEpoch = -1;
        ps[i].CommittedMetadata = trib_kstr("");
        printf("%-30s %-9d %" PRId64 "\n", g->topic, (int)g->partition, off);
    }
    if (!o->execute) {
        printf("(dry run: add --execute to commit these offsets)\n");
        return CLI_OK;
    }
    int16_t v = cli_version(c, API_OFFSET_COMMIT, 2, 8);
    if (v < 0) {
        return CLI_EKAFKA;
    }
    OffsetCommitRequest_OffsetCommitRequestTopic ot;
    OffsetCommitRequest_OffsetCommitRequestTopic_init(&ot);
    ot.Name = trib_kstr(o->topic);
    ot.Partitions.items = ps;
    ot.Partitions.count = (int32_t)l.n;
    OffsetCommitRequest req;
    OffsetCommitRequest_init(&req);
    req.GroupId = trib_kstr(o->group);
    req.GenerationIdOrMemberEpoch = -1;
    req.MemberId = trib_kstr("");
    req.RetentionTimeMs = -1;
    req.Topics.items = &ot;
    req.Topics.count = 1;
    OffsetCommitResponse resp;
    trib_error_t err;
    trib_error_clear(&err);
    if (trib_kclient_call(c, node, API_OFFSET_COMMIT, v, &req, &resp, arena, &err) < 0) {
        return cli_fail(&err);
    }
    for (int32_t i = 0; i < resp.Topics.count; i++) {
        for (int32_t k = 0; k < resp.Topics.items[i].Partitions.count; k++) {
            const OffsetCommitResponse_OffsetCommitResponsePartition *p =
                &resp.Topics.items[i].Partitions.items[k];
            if (p->ErrorCode == TRIB_KAFKA_UNKNOWN_MEMBER_ID) {
                /* The group gained members since DescribeGroups (Kafka answers this for a
                 * standalone commit to a non-empty group). */
                cli_errorf("group '%s' is running now (it has members), so the broker refused "
                           "the new offsets (UNKNOWN_MEMBER_ID): stop its consumers first%s",
                           o->group,
                           strncmp(o->group, "sink.", 5) == 0
                               ? ", or for a sink of the collector use `tributary sinks replay`"
                               : "");
                return CLI_EKAFKA;
            }
            if (p->ErrorCode != 0) {
                return cli_kafka_fail(p->ErrorCode, no_msg(), "commit %s-%d for group '%s'",
                                      o->topic, (int)p->PartitionIndex, o->group);
            }
        }
    }
    printf("Committed the new offsets of group %s.\n", o->group);
    return CLI_OK;
}

int cli_groups(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_EUSAGE : CLI_OK;
    }
    const char *sub = argv[1];
    groups_opts_t o;
    int rc = parse(&o, argc - 1, argv + 1);
    if (rc < 0) {
        return CLI_OK;
    }
    if (rc != CLI_OK) {
        return rc;
    }
    bool list = !strcmp(sub, "list");
    if (!list && strcmp(sub, "describe") && strcmp(sub, "delete") && strcmp(sub, "reset-offsets")) {
        cli_errorf("unknown groups command '%s'", sub);
        usage(stderr);
        return CLI_EUSAGE;
    }
    if (!list && !o.group) {
        cli_errorf("groups %s needs --group", sub);
        return CLI_EUSAGE;
    }
    trib_kclient_t *c;
    if ((rc = cli_connect(&c, &o.common)) != CLI_OK) {
        return rc;
    }
    trib_arena_t arena;
    trib_arena_init(&arena);
    if (list) {
        rc = groups_list(c, &arena);
    } else if (!strcmp(sub, "describe")) {
        rc = groups_describe(c, &o, &arena);
    } else if (!strcmp(sub, "delete")) {
        rc = groups_delete(c, &o, &arena);
    } else {
        rc = groups_reset(c, &o, &arena);
    }
    trib_arena_fini(&arena);
    trib_kclient_close(c);
    return rc;
}
