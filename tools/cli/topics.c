/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tributary topics create|list|describe|delete|alter, in the manner of
 * kafka-topics.sh: the same words on output ("Created topic X."), the same
 * describe layout (one topic line, then one line per partition with leader,
 * replicas and ISR). Admin requests go to the controller.
 *
 *   create    CreateTopics v0-7
 *   list      Metadata (all topics)
 *   describe  Metadata (v7+ for leader epochs, v5+ for offline replicas) +
 *             DescribeConfigs v0-4 (topic resources); --under-replicated and
 *             --offline keep only the partitions in that state, as
 *             kafka-topics.sh's --under-replicated-partitions and
 *             --unavailable-partitions do
 *   delete    DeleteTopics v0-6 (names; v6 by Topics[].Name)
 *   alter     CreatePartitions v0-3 (--partitions) and
 *             IncrementalAlterConfigs v0-1 (--config, --delete-config)
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "tributary/kafka_error.h"

#include "kafka/gen/CreatePartitionsRequest.h"
#include "kafka/gen/CreatePartitionsResponse.h"
#include "kafka/gen/CreateTopicsRequest.h"
#include "kafka/gen/CreateTopicsResponse.h"
#include "kafka/gen/DeleteTopicsRequest.h"
#include "kafka/gen/DeleteTopicsResponse.h"
#include "kafka/gen/DescribeConfigsRequest.h"
#include "kafka/gen/DescribeConfigsResponse.h"
#include "kafka/gen/IncrementalAlterConfigsRequest.h"
#include "kafka/gen/IncrementalAlterConfigsResponse.h"

#define RESOURCE_TOPIC 2
#define CONFIG_SOURCE_DYNAMIC_TOPIC 1
#define OP_SET 0
#define OP_DELETE 1
#define MAX_CONFIGS 64
#define MAX_TOPICS 256
#define ADMIN_TIMEOUT_MS 30000

static void usage(FILE *out)
{
    fputs("Usage:\n"
          "  tributary topics create --topic T [--partitions N] [--replication-factor R]\n"
          "                          [--config K=V]... [--if-not-exists]\n"
          "  tributary topics list\n"
          "  tributary topics describe [TOPIC...] [--topic T]... [--all-configs]\n"
          "                            [--under-replicated] [--offline]\n"
          "  tributary topics delete --topic T [--if-exists]\n"
          "  tributary topics alter --topic T [--partitions N] [--config K=V]...\n"
          "                         [--delete-config K]...\n"
          "\n"
          "create: partitions and replication factor default to the broker's defaults.\n"
          "describe: the topics named (as arguments or with --topic), else every topic.\n"
          "  One line per topic (Configs shows the topic's own, non-default settings\n"
          "  unless --all-configs), then one per partition: Leader (none without one),\n"
          "  Replicas, Isr, LeaderEpoch (- when the broker answers Metadata below v7),\n"
          "  Offline (replicas on brokers that are down, when there are any) and\n"
          "  Status: ok, or under-replicated (ISR smaller than the replicas) and/or\n"
          "  offline (no leader, or a leader that is not a live broker).\n"
          "  --under-replicated (--under-replicated-partitions) and --offline\n"
          "  (--unavailable-partitions) print only the partitions in that state (either\n"
          "  state when both are given), without the topic lines.\n"
          "alter: --partitions only grows a topic; --config sets, --delete-config\n"
          "  reverts to the default (IncrementalAlterConfigs).\n"
          "\n"
          "Common options: --bootstrap HOST:PORT[,HOST:PORT...] (the first that answers),\n"
          "  --request-timeout-ms N, --verbose, --command-config FILE (TLS and SASL).\n",
          out);
}

typedef struct topics_opts {
    cli_common_t common;
    const char *topic; /* the first of topics */
    const char *topics[MAX_TOPICS];
    size_t ntopics;
    int64_t partitions;         /* -1 when not given */
    int64_t replication_factor; /* -1 when not given */
    const char *configs[MAX_CONFIGS];
    size_t nconfigs;
    const char *delete_configs[MAX_CONFIGS];
    size_t ndelete;
    bool if_not_exists;
    bool if_exists;
    bool all_configs;
    bool under_replicated;
    bool offline;
} topics_opts_t;

static int add_topic(topics_opts_t *o, const char *name)
{
    if (o->ntopics == MAX_TOPICS) {
        cli_errorf("at most %d topics", MAX_TOPICS);
        return CLI_EUSAGE;
    }
    o->topics[o->ntopics++] = name;
    o->topic = o->topics[0];
    return CLI_OK;
}

static int parse(topics_opts_t *o, int argc, char **argv)
{
    enum { O_TOPIC = 1, O_PARTS, O_RF, O_CONFIG, O_DELCONF, O_INE, O_IE, O_ALL, O_URP, O_OFFLINE };
    static const struct option opts[] = {
        {"topic", required_argument, NULL, O_TOPIC},
        {"partitions", required_argument, NULL, O_PARTS},
        {"replication-factor", required_argument, NULL, O_RF},
        {"config", required_argument, NULL, O_CONFIG},
        {"delete-config", required_argument, NULL, O_DELCONF},
        {"if-not-exists", no_argument, NULL, O_INE},
        {"if-exists", no_argument, NULL, O_IE},
        {"all-configs", no_argument, NULL, O_ALL},
        {"under-replicated", no_argument, NULL, O_URP},
        {"under-replicated-partitions", no_argument, NULL, O_URP},
        {"offline", no_argument, NULL, O_OFFLINE},
        {"unavailable-partitions", no_argument, NULL, O_OFFLINE},
        {"help", no_argument, NULL, 'h'},
        CLI_COMMON_LONGOPTS,
        {NULL, 0, NULL, 0},
    };
    memset(o, 0, sizeof *o);
    cli_common_init(&o->common);
    o->partitions = -1;
    o->replication_factor = -1;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "b:ht:", opts, NULL)) != -1) {
        int r = cli_common_opt(&o->common, c, optarg);
        if (r < 0) {
            return CLI_EUSAGE;
        }
        if (r > 0) {
            continue;
        }
        switch (c) {
        case 't':
        case O_TOPIC:
            if (add_topic(o, optarg) != CLI_OK) {
                return CLI_EUSAGE;
            }
            break;
        case O_PARTS:
            if (cli_parse_int("--partitions", optarg, 1, 100000, &o->partitions) < 0) {
                return CLI_EUSAGE;
            }
            break;
        case O_RF:
            if (cli_parse_int("--replication-factor", optarg, 1, 32767, &o->replication_factor) <
                0) {
                return CLI_EUSAGE;
            }
            break;
        case O_CONFIG:
            if (!strchr(optarg, '=') || optarg[0] == '=') {
                cli_errorf("--config wants KEY=VALUE, not '%s'", optarg);
                return CLI_EUSAGE;
            }
            if (o->nconfigs == MAX_CONFIGS) {
                cli_errorf("at most %d --config options", MAX_CONFIGS);
                return CLI_EUSAGE;
            }
            o->configs[o->nconfigs++] = optarg;
            break;
        case O_DELCONF:
            if (o->ndelete == MAX_CONFIGS) {
                cli_errorf("at most %d --delete-config options", MAX_CONFIGS);
                return CLI_EUSAGE;
            }
            o->delete_configs[o->ndelete++] = optarg;
            break;
        case O_INE:
            o->if_not_exists = true;
            break;
        case O_IE:
            o->if_exists = true;
            break;
        case O_ALL:
            o->all_configs = true;
            break;
        case O_URP:
            o->under_replicated = true;
            break;
        case O_OFFLINE:
            o->offline = true;
            break;
        case 'h':
            usage(stdout);
            return -1;
        default:
            usage(stderr);
            return CLI_EUSAGE;
        }
    }
    while (optind < argc) {
        if (add_topic(o, argv[optind++]) != CLI_OK) {
            return CLI_EUSAGE;
        }
    }
    if (optind < argc) {
        cli_errorf("unexpected argument '%s'", argv[optind]);
        return CLI_EUSAGE;
    }
    return CLI_OK;
}

static trib_kstr_t kstr_n(const char *p, size_t n)
{
    trib_kstr_t s = {p, (int32_t)n};
    return s;
}

/* ---- create ------------------------------------------------------------------ */

static int topics_create(trib_kclient_t *c, const topics_opts_t *o, trib_arena_t *arena)
{
    int16_t v = cli_version(c, API_CREATE_TOPICS, 0, 7);
    if (v < 0) {
        return CLI_EKAFKA;
    }
    CreateTopicsRequest req;
    CreateTopicsRequest_init(&req);
    CreateTopicsRequest_CreatableTopic t;
    CreateTopicsRequest_CreatableTopic_init(&t);
    t.Name = trib_kstr(o->topic);
    /* v4+ takes -1 as "the broker's default"; older versions need a number. */
    t.NumPartitions = (int32_t)(o->partitions > 0 ? o->partitions : (v >= 4 ? -1 : 1));
    t.ReplicationFactor =
        (int16_t)(o->replication_factor > 0 ? o->replication_factor : (v >= 4 ? -1 : 1));
    CreateTopicsRequest_CreatableTopicConfig cfg[MAX_CONFIGS];
    for (size_t i = 0; i < o->nconfigs; i++) {
        CreateTopicsRequest_CreatableTopicConfig_init(&cfg[i]);
        const char *eq = strchr(o->configs[i], '=');
        cfg[i].Name = kstr_n(o->configs[i], (size_t)(eq - o->configs[i]));
        cfg[i].Value = trib_kstr(eq + 1);
    }
    t.Configs.items = cfg;
    t.Configs.count = (int32_t)o->nconfigs;
    req.Topics.items = &t;
    req.Topics.count = 1;
    req.timeoutMs = ADMIN_TIMEOUT_MS;

    CreateTopicsResponse resp;
    trib_error_t err;
    trib_error_clear(&err);
    if (trib_kclient_call(c, TRIB_KCLIENT_CONTROLLER, API_CREATE_TOPICS, v, &req, &resp, arena,
                          &err) < 0) {
        return cli_fail(&err);
    }
    for (int32_t i = 0; i < resp.Topics.count; i++) {
        const CreateTopicsResponse_CreatableTopicResult *r = &resp.Topics.items[i];
        if (!cli_kstr_eq(r->Name, o->topic)) {
            continue;
        }
        if (r->ErrorCode == TRIB_KAFKA_TOPIC_ALREADY_EXISTS && o->if_not_exists) {
            return CLI_OK;
        }
        if (r->ErrorCode != 0) {
            return cli_kafka_fail(r->ErrorCode, r->ErrorMessage, "cannot create topic '%s'",
                                  o->topic);
        }
        printf("Created topic %s.\n", o->topic);
        return CLI_OK;
    }
    cli_errorf("CreateTopics response does not mention topic '%s'", o->topic);
    return CLI_ENET;
}

/* ---- list -------------------------------------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int topics_list(trib_kclient_t *c, trib_arena_t *arena)
{
    MetadataResponse md;
    int rc = cli_metadata(c, NULL, 0, false, 0, &md, arena);
    if (rc != CLI_OK) {
        return rc;
    }
    int32_t n = md.Topics.count > 0 ? md.Topics.count : 0;
    char **names = trib_arena_calloc(arena, (size_t)n + 1, sizeof *names);
    if (!names) {
        cli_errorf("out of memory");
        return CLI_ENET;
    }
    int32_t k = 0;
    for (int32_t i = 0; i < n; i++) {
        const MetadataResponse_MetadataResponseTopic *t = &md.Topics.items[i];
        if (t->Name.len > 0) {
            names[k++] = trib_arena_strndup(arena, t->Name.ptr, (size_t)t->Name.len);
        }
    }
    qsort(names, (size_t)k, sizeof *names, cmp_str);
    for (int32_t i = 0; i < k; i++) {
        puts(names[i]);
    }
    return CLI_OK;
}

/* ---- describe ------------------------------------------------------------------ */

/* Configs of one topic as "k=v,k=v" (sensitive values hidden). */
static int describe_configs(trib_kclient_t *c, const char *topic, bool all, char **out,
                            trib_arena_t *arena)
{
    *out = "";
    int16_t v = trib_kclient_version(c, API_DESCRIBE_CONFIGS, 0, 4);
    if (v < 0) {
        *out = "(DescribeConfigs not supported by the broker)";
        return CLI_OK;
    }
    DescribeConfigsRequest req;
    DescribeConfigsRequest_init(&req);
    DescribeConfigsRequest_DescribeConfigsResource res;
    DescribeConfigsRequest_DescribeConfigsResource_init(&res);
    res.ResourceType = RESOURCE_TOPIC;
    res.ResourceName = trib_kstr(topic);
    res.ConfigurationKeys.count = -1;
    req.Resources.items = &res;
    req.Resources.count = 1;
    DescribeConfigsResponse resp;
    trib_error_t err;
    trib_error_clear(&err);
    if (trib_kclient_call(c, TRIB_KCLIENT_ANY, API_DESCRIBE_CONFIGS, v, &req, &resp, arena, &err) <
        0) {
        return cli_fail(&err);
    }
    trib_buf_t b;
    trib_buf_init(&b);
    for (int32_t i = 0; i < resp.Results.count; i++) {
        const DescribeConfigsResponse_DescribeConfigsResult *r = &resp.Results.items[i];
        if (r->ErrorCode != 0) {
            trib_buf_fini(&b);
            return cli_kafka_fail(r->ErrorCode, r->ErrorMessage, "cannot describe configs of '%s'",
                                  topic);
        }
        for (int32_t j = 0; j < r->Configs.count; j++) {
            const DescribeConfigsResponse_DescribeConfigsResourceResult *e = &r->Configs.items[j];
            bool own = v >= 1 ? e->ConfigSource == CONFIG_SOURCE_DYNAMIC_TOPIC : !e->IsDefault;
            if (!all && !own) {
                continue;
            }
            if (trib_buf_len(&b)) {
                trib_buf_append(&b, ",", 1);
            }
            trib_buf_append(&b, e->Name.ptr, e->Name.len > 0 ? (size_t)e->Name.len : 0);
            trib_buf_append(&b, "=", 1);
            if (e->IsSensitive) {
                trib_buf_append(&b, "(sensitive)", 11);
            } else if (e->Value.len >= 0) {
                trib_buf_append(&b, e->Value.ptr, (size_t)e->Value.len);
            } else {
                trib_buf_append(&b, "null", 4);
            }
        }
    }
    size_t len;
    const uint8_t *p = trib_buf_flatten(&b, &len);
    *out = trib_arena_strndup(arena, p ? (const char *)p : "", p ? len : 0);
    trib_buf_fini(&b);
    if (!*out) {
        cli_errorf("out of memory");
        return CLI_ENET;
    }
    return CLI_OK;
}

static int cmp_topic(const void *a, const void *b)
{
    const MetadataResponse_MetadataResponseTopic *x = a, *y = b;
    int32_t n = x->Name.len < y->Name.len ? x->Name.len : y->Name.len;
    int r = n > 0 ? memcmp(x->Name.ptr, y->Name.ptr, (size_t)n) : 0;
    return r ? r : (x->Name.len > y->Name.len) - (x->Name.len < y->Name.len);
}

static int cmp_partition(const void *a, const void *b)
{
    const MetadataResponse_MetadataResponsePartition *x = a, *y = b;
    return (x->PartitionIndex > y->PartitionIndex) - (x->PartitionIndex < y->PartitionIndex);
}

static void print_partition(const char *name, const MetadataResponse *md,
                            const MetadataResponse_MetadataResponsePartition *pt, bool epochs)
{
    printf("\tTopic: %s\tPartition: %d\tLeader: ", name, (int)pt->PartitionIndex);
    if (pt->LeaderId >= 0) {
        printf("%d", (int)pt->LeaderId);
    } else {
        fputs("none", stdout);
    }
    fputs("\tReplicas: ", stdout);
    cli_print_int_list(&pt->ReplicaNodes);
    fputs("\tIsr: ", stdout);
    cli_print_int_list(&pt->IsrNodes);
    if (epochs) {
        printf("\tLeaderEpoch: %d", (int)pt->LeaderEpoch);
    } else {
        fputs("\tLeaderEpoch: -", stdout);
    }
    if (pt->OfflineReplicas.count > 0) {
        fputs("\tOffline: ", stdout);
        cli_print_int_list(&pt->OfflineReplicas);
    }
    bool urp = cli_partition_under_replicated(pt), off = cli_partition_offline(md, pt);
    printf("\tStatus: %s%s%s", urp || off ? "" : "ok", off ? "offline" : "",
           urp ? (off ? ",under-replicated" : "under-replicated") : "");
    if (pt->ErrorCode != 0) {
        printf("\tError: %s", trib_kafka_err_name(pt->ErrorCode));
    }
    putchar('\n');
}

static int topics_describe(trib_kclient_t *c, const topics_opts_t *o, trib_arena_t *arena)
{
    MetadataResponse md;
    int rc = cli_metadata(c, o->topics, o->ntopics, false, 0, &md, arena);
    if (rc != CLI_OK) {
        return rc;
    }
    /* LeaderEpoch is in Metadata v7+; cli_metadata used the newest both sides have. */
    bool epochs = trib_kclient_version(c, API_METADATA, 7, 12) >= 7;
    bool filtered = o->under_replicated || o->offline;
    for (size_t i = 0; i < o->ntopics; i++) {
        const MetadataResponse_MetadataResponseTopic *t = cli_find_topic(&md, o->topics[i]);
        if (!t || t->ErrorCode != 0) {
            return cli_topic_error(t, o->topics[i]);
        }
    }
    if (md.Topics.count > 1) {
        qsort(md.Topics.items, (size_t)md.Topics.count, sizeof *md.Topics.items, cmp_topic);
    }
    for (int32_t i = 0; i < md.Topics.count; i++) {
        MetadataResponse_MetadataResponseTopic *t = &md.Topics.items[i];
        char *name =
            trib_arena_strndup(arena, t->Name.ptr, t->Name.len > 0 ? (size_t)t->Name.len : 0);
        if (!name) {
            cli_errorf("out of memory");
            return CLI_ENET;
        }
        if (t->ErrorCode != 0) {
            trib_kstr_t none = {NULL, -1};
            cli_kafka_fail(t->ErrorCode, none, "topic '%s'", name);
            rc = CLI_EKAFKA;
            continue;
        }
        if (t->Partitions.count > 1) {
            qsort(t->Partitions.items, (size_t)t->Partitions.count, sizeof *t->Partitions.items,
                  cmp_partition);
        }
        if (!filtered) {
            char *configs;
            int crc = describe_configs(c, name, o->all_configs, &configs, arena);
            if (crc != CLI_OK) {
                return crc;
            }
            int32_t rf = t->Partitions.count > 0 ? t->Partitions.items[0].ReplicaNodes.count : 0;
            char id[23] = "";
            if (!trib_uuid_is_zero(&t->TopicId)) {
                trib_uuid_format(&t->TopicId, id);
            }
            printf("Topic: %s\tTopicId: %s\tPartitionCount: %d\tReplicationFactor: %d\t"
                   "Configs: %s\n",
                   name, id[0] ? id : "-", (int)t->Partitions.count, (int)rf, configs);
        }
        for (int32_t p = 0; p < t->Partitions.count; p++) {
            const MetadataResponse_MetadataResponsePartition *pt = &t->Partitions.items[p];
            if (filtered && !(o->under_replicated && cli_partition_under_replicated(pt)) &&
                !(o->offline && cli_partition_offline(&md, pt))) {
                continue;
            }
            print_partition(name, &md, pt, epochs);
        }
    }
    return rc;
}

/* ---- delete -------------------------------------------------------------------- */

static int topics_delete(trib_kclient_t *c, const topics_opts_t *o, trib_arena_t *arena)
{
    int16_t v = cli_version(c, API_DELETE_TOPICS, 0, 6);
    if (v < 0) {
        return CLI_EKAFKA;
    }
    DeleteTopicsRequest req;
    DeleteTopicsRequest_init(&req);
    DeleteTopicsRequest_DeleteTopicState st;
    trib_kstr_t name = trib_kstr(o->topic);
    if (v >= 6) {
        DeleteTopicsRequest_DeleteTopicState_init(&st);
        st.Name = name;
        req.Topics.items = &st;
        req.Topics.count = 1;
    } else {
        req.TopicNames.items = &name;
        req.TopicNames.count = 1;
    }
    req.TimeoutMs = ADMIN_TIMEOUT_MS;
    DeleteTopicsResponse resp;
    trib_error_t err;
    trib_error_clear(&err);
    if (trib_kclient_call(c, TRIB_KCLIENT_CONTROLLER, API_DELETE_TOPICS, v, &req, &resp, arena,
                          &err) < 0) {
        return cli_fail(&err);
    }
    for (int32_t i = 0; i < resp.Responses.count; i++) {
        const DeleteTopicsResponse_DeletableTopicResult *r = &resp.Responses.items[i];
        if (r->ErrorCode == TRIB_KAFKA_UNKNOWN_TOPIC_OR_PARTITION && o->if_exists) {
            return CLI_OK;
        }
        if (r->ErrorCode != 0) {
            return cli_kafka_fail(r->ErrorCode, r->ErrorMessage, "cannot delete topic '%s'",
                                  o->topic);
        }
    }
    printf("Deleted topic %s.\n", o->topic);
    return CLI_OK;
}

/* ---- alter --------------------------------------------------------------------- */

static int alter_partitions(trib_kclient_t *c, const topics_opts_t *o, trib_arena_t *arena)
{
    int16_t v = cli_version(c, API_CREATE_PARTITIONS, 0, 3);
    if (v < 0) {
        return CLI_EKAFKA;
    }
    CreatePartitionsRequest req;
    CreatePartitionsRequest_init(&req);
    CreatePartitionsRequest_CreatePartitionsTopic t;
    CreatePartitionsRequest_CreatePartitionsTopic_init(&t);
    t.Name = trib_kstr(o->topic);
    t.Count = (int32_t)o->partitions;
    t.Assignments.count = -1;
    req.Topics.items = &t;
    req.Topics.count = 1;
    req.TimeoutMs = ADMIN_TIMEOUT_MS;
    CreatePartitionsResponse resp;
    trib_error_t err;
    trib_error_clear(&err);
    if (trib_kclient_call(c, TRIB_KCLIENT_CONTROLLER, API_CREATE_PARTITIONS, v, &req, &resp, arena,
                          &err) < 0) {
        return cli_fail(&err);
    }
    for (int32_t i = 0; i < resp.Results.count; i++) {
        const CreatePartitionsResponse_CreatePartitionsTopicResult *r = &resp.Results.items[i];
        if (r->ErrorCode != 0) {
            return cli_kafka_fail(r->ErrorCode, r->ErrorMessage,
                                  "cannot change the partitions of '%s'", o->topic);
        }
    }
    return CLI_OK;
}

static int alter_configs(trib_kclient_t *c, const topics_opts_t *o, trib_arena_t *arena)
{
    int16_t v = cli_version(c, API_INCREMENTAL_ALTER_CONFIGS, 0, 1);
    if (v < 0) {
        return CLI_EKAFKA;
    }
    IncrementalAlterConfigsRequest req;
    IncrementalAlterConfigsRequest_init(&req);
    IncrementalAlterConfigsRequest_AlterConfigsResource res;
    IncrementalAlterConfigsRequest_AlterConfigsResource_init(&res);
    IncrementalAlterConfigsRequest_AlterableConfig cfg[2 * MAX_CONFIGS];
    size_t n = 0;
    for (size_t i = 0; i < o->nconfigs; i++, n++) {
        IncrementalAlterConfigsRequest_AlterableConfig_init(&cfg[n]);
        const char *eq = strchr(o->configs[i], '=');
        cfg[n].Name = kstr_n(o->configs[i], (size_t)(eq - o->configs[i]));
        cfg[n].ConfigOperation = OP_SET;
        cfg[n].Value = trib_kstr(eq + 1);
    }
    for (size_t i = 0; i < o->ndelete; i++, n++) {
        IncrementalAlterConfigsRequest_AlterableConfig_init(&cfg[n]);
        cfg[n].Name = trib_kstr(o->delete_configs[i]);
        cfg[n].ConfigOperation = OP_DELETE;
        cfg[n].Value.len = -1;
    }
    res.ResourceType = RESOURCE_TOPIC;
    res.ResourceName = trib_kstr(o->topic);
    res.Configs.items = cfg;
    res.Configs.count = (int32_t)n;
    req.Resources.items = &res;
    req.Resources.count = 1;
    IncrementalAlterConfigsResponse resp;
    trib_error_t err;
    trib_error_clear(&err);
    if (trib_kclient_call(c, TRIB_KCLIENT_ANY, API_INCREMENTAL_ALTER_CONFIGS, v, &req, &resp, arena,
                          &err) < 0) {
        return cli_fail(&err);
    }
    for (int32_t i = 0; i < resp.Responses.count; i++) {
        const IncrementalAlterConfigsResponse_AlterConfigsResourceResponse *r =
            &resp.Responses.items[i];
        if (r->ErrorCode != 0) {
            return cli_kafka_fail(r->ErrorCode, r->ErrorMessage,
                                  "cannot change the configs of '%s'", o->topic);
        }
    }
    return CLI_OK;
}

static int topics_alter(trib_kclient_t *c, const topics_opts_t *o, trib_arena_t *arena)
{
    int rc = CLI_OK;
    if (o->partitions > 0) {
        rc = alter_partitions(c, o, arena);
    }
    if (rc == CLI_OK && (o->nconfigs || o->ndelete)) {
        rc = alter_configs(c, o, arena);
    }
    if (rc == CLI_OK) {
        printf("Altered topic %s.\n", o->topic);
    }
    return rc;
}

int cli_topics(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_EUSAGE : CLI_OK;
    }
    const char *action = argv[1];
    topics_opts_t o;
    int rc = parse(&o, argc - 1, argv + 1);
    if (rc != CLI_OK) {
        return rc < 0 ? CLI_OK : rc;
    }
    bool need_topic = strcmp(action, "list") != 0 && strcmp(action, "describe") != 0;
    if (strcmp(action, "create") && strcmp(action, "list") && strcmp(action, "describe") &&
        strcmp(action, "delete") && strcmp(action, "alter")) {
        cli_errorf("unknown topics action '%s'", action);
        usage(stderr);
        return CLI_EUSAGE;
    }
    if (strcmp(action, "describe") != 0 && o.ntopics > 1) {
        cli_errorf("unexpected argument '%s' (topics %s takes one topic)", o.topics[1], action);
        return CLI_EUSAGE;
    }
    if (strcmp(action, "describe") != 0 && (o.under_replicated || o.offline)) {
        cli_errorf("--under-replicated and --offline are options of topics describe");
        return CLI_EUSAGE;
    }
    if (need_topic && !o.topic) {
        cli_errorf("topics %s needs --topic", action);
        return CLI_EUSAGE;
    }
    if (!strcmp(action, "alter") && o.partitions < 0 && !o.nconfigs && !o.ndelete) {
        cli_errorf("topics alter needs --partitions, --config or --delete-config");
        return CLI_EUSAGE;
    }
    trib_kclient_t *c;
    rc = cli_connect(&c, &o.common);
    if (rc != CLI_OK) {
        return rc;
    }
    trib_arena_t arena;
    trib_arena_init(&arena);
    if (!strcmp(action, "create")) {
        rc = topics_create(c, &o, &arena);
    } else if (!strcmp(action, "list")) {
        rc = topics_list(c, &arena);
    } else if (!strcmp(action, "describe")) {
        rc = topics_describe(c, &o, &arena);
    } else if (!strcmp(action, "delete")) {
        rc = topics_delete(c, &o, &arena);
    } else {
        rc = topics_alter(c, &o, &arena);
    }
    trib_arena_fini(&arena);
    trib_kclient_close(c);
    return rc;
}
