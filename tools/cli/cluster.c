/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tributary cluster describe: cluster id, controller and brokers
 * (DescribeCluster v0-1 when the broker has it, else Metadata), the
 * under-replicated and offline partitions of every topic (Metadata), and
 * with --api-versions the ranges the broker advertised next to the version
 * this tool would use.
 *
 * The broker lines are the only ones that start with two spaces and hold a
 * tab ("  ID<TAB>HOST:PORT<TAB>rack: R"); partition lines hold no tab, so
 * scripts can tell them apart.
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "tributary/kafka_error.h"

#include "kafka/gen/DescribeClusterRequest.h"
#include "kafka/gen/DescribeClusterResponse.h"

static void usage(FILE *out)
{
    fputs("Usage: tributary cluster describe [--api-versions]\n"
          "       tributary cluster drain --broker N [--wait] [--timeout-ms N]\n"
          "\n"
          "Prints the cluster id, the controller, the brokers (id, host:port, rack),\n"
          "then the count and list of under-replicated partitions (ISR smaller than\n"
          "the replicas) and of offline partitions (no leader, or a leader that is not\n"
          "a live broker); --api-versions adds the API versions the broker advertises.\n"
          "\n"
          "drain moves every replica of broker N to the live brokers holding the\n"
          "fewest replicas (a partition reassignment, see `tributary partitions\n"
          "--help`), so it leads nothing and is in no ISR; with --wait it returns\n"
          "once the moves are complete (exit 4 after --timeout-ms, default 600000),\n"
          "and the broker can then be stopped.\n"
          "\n"
          "Common options: --bootstrap HOST:PORT[,HOST:PORT...] (the first that answers),\n"
          "  --request-timeout-ms N, --verbose, --command-config FILE (TLS and SASL).\n",
          out);
}

static void print_partition(const MetadataResponse_MetadataResponseTopic *t,
                            const MetadataResponse_MetadataResponsePartition *p)
{
    printf("  %.*s partition %d: leader ", (int)t->Name.len, t->Name.ptr, (int)p->PartitionIndex);
    if (p->LeaderId >= 0) {
        printf("%d", (int)p->LeaderId);
    } else {
        fputs("none", stdout);
    }
    fputs(", replicas ", stdout);
    cli_print_int_list(&p->ReplicaNodes);
    fputs(", isr ", stdout);
    cli_print_int_list(&p->IsrNodes);
    if (p->OfflineReplicas.count > 0) {
        fputs(", offline ", stdout);
        cli_print_int_list(&p->OfflineReplicas);
    }
    putchar('\n');
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

/* Under-replicated, then offline partitions of md's topics (sorted in place). */
static void print_partition_health(MetadataResponse *md)
{
    if (md->Topics.count > 1) {
        qsort(md->Topics.items, (size_t)md->Topics.count, sizeof *md->Topics.items, cmp_topic);
    }
    for (int32_t i = 0; i < md->Topics.count; i++) {
        MetadataResponse_MetadataResponseTopic *t = &md->Topics.items[i];
        if (t->Partitions.count > 1) {
            qsort(t->Partitions.items, (size_t)t->Partitions.count, sizeof *t->Partitions.items,
                  cmp_partition);
        }
    }
    for (int pass = 0; pass < 2; pass++) {
        int n = 0;
        for (int32_t i = 0; i < md->Topics.count; i++) {
            const MetadataResponse_MetadataResponseTopic *t = &md->Topics.items[i];
            for (int32_t p = 0; t->ErrorCode == 0 && p < t->Partitions.count; p++) {
                const MetadataResponse_MetadataResponsePartition *pt = &t->Partitions.items[p];
                n += pass == 0 ? cli_partition_under_replicated(pt) : cli_partition_offline(md, pt);
            }
        }
        printf("%s partitions: %d\n", pass == 0 ? "Under-replicated" : "Offline", n);
        for (int32_t i = 0; i < md->Topics.count; i++) {
            const MetadataResponse_MetadataResponseTopic *t = &md->Topics.items[i];
            for (int32_t p = 0; t->ErrorCode == 0 && p < t->Partitions.count; p++) {
                const MetadataResponse_MetadataResponsePartition *pt = &t->Partitions.items[p];
                if (pass == 0 ? cli_partition_under_replicated(pt)
                              : cli_partition_offline(md, pt)) {
                    print_partition(t, pt);
                }
            }
        }
    }
}

static int describe(trib_kclient_t *c, bool api_versions, trib_arena_t *arena)
{
    /* Metadata of every topic first: it also points the client at the live brokers. */
    MetadataResponse md;
    int rc = cli_metadata(c, NULL, 0, false, 0, &md, arena);
    if (rc != CLI_OK) {
        return rc;
    }
    int16_t v = trib_kclient_version(c, API_DESCRIBE_CLUSTER, 0, 1);
    if (v >= 0) {
        DescribeClusterRequest req;
        DescribeClusterRequest_init(&req);
        DescribeClusterResponse resp;
        trib_error_t err;
        trib_error_clear(&err);
        if (trib_kclient_call(c, TRIB_KCLIENT_ANY, API_DESCRIBE_CLUSTER, v, &req, &resp, arena,
                              &err) < 0) {
            return cli_fail(&err);
        }
        if (resp.ErrorCode != 0) {
            return cli_kafka_fail(resp.ErrorCode, resp.ErrorMessage, "DescribeCluster");
        }
        printf("Cluster ID: %.*s\n", resp.ClusterId.len > 0 ? (int)resp.ClusterId.len : 4,
               resp.ClusterId.len > 0 ? resp.ClusterId.ptr : "null");
        printf("Controller: %d\n", (int)resp.ControllerId);
        printf("Brokers:\n");
        for (int32_t i = 0; i < resp.Brokers.count; i++) {
            const DescribeClusterResponse_DescribeClusterBroker *b = &resp.Brokers.items[i];
            printf("  %d\t%.*s:%d\track: %.*s\n", (int)b->BrokerId, (int)b->Host.len, b->Host.ptr,
                   (int)b->Port, b->Rack.len >= 0 ? (int)b->Rack.len : 4,
                   b->Rack.len >= 0 ? b->Rack.ptr : "null");
        }
    } else {
        printf("Cluster ID: %s\n",
               trib_kclient_cluster_id(c)[0] ? trib_kclient_cluster_id(c) : "null");
        printf("Controller: %d\n", (int)trib_kclient_controller(c));
        printf("Brokers:\n");
        size_t n;
        const trib_kclient_broker_t *b = trib_kclient_brokers(c, &n);
        for (size_t i = 0; i < n; i++) {
            printf("  %d\t%s:%d\track: %s\n", (int)b[i].node_id, b[i].host, b[i].port,
                   b[i].rack[0] ? b[i].rack : "null");
        }
    }
    print_partition_health(&md);
    if (api_versions) {
        size_t n;
        const trib_kclient_api_range_t *r = trib_kclient_api_ranges(c, &n);
        printf("API versions (key name: broker min-max, tool uses):\n");
        for (size_t i = 0; i < n; i++) {
            const trib_kafka_api_t *api = trib_kafka_api_find(r[i].api_key);
            int16_t use = trib_kclient_version(c, r[i].api_key, 0, INT16_MAX);
            printf("  %3d %-30s %d-%d", (int)r[i].api_key, api ? api->name : "unknown",
                   (int)r[i].min_version, (int)r[i].max_version);
            if (use >= 0) {
                printf("\t(codec: up to v%d)\n", (int)use);
            } else {
                printf("\t(not in our codec)\n");
            }
        }
    }
    return CLI_OK;
}

int cli_cluster(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_EUSAGE : CLI_OK;
    }
    bool drain = !strcmp(argv[1], "drain");
    if (strcmp(argv[1], "describe") != 0 && !drain) {
        cli_errorf("unknown cluster action '%s'", argv[1]);
        usage(stderr);
        return CLI_EUSAGE;
    }
    enum { O_APIV = 1, O_BROKER, O_WAIT, O_TMO };
    static const struct option opts[] = {
        {"api-versions", no_argument, NULL, O_APIV},
        {"broker", required_argument, NULL, O_BROKER},
        {"wait", no_argument, NULL, O_WAIT},
        {"timeout-ms", required_argument, NULL, O_TMO},
        {"help", no_argument, NULL, 'h'},
        CLI_COMMON_LONGOPTS,
        {NULL, 0, NULL, 0},
    };
    cli_common_t common;
    cli_common_init(&common);
    bool apiv = false, wait = false;
    int64_t broker = -1, tmo = 600000;
    optind = 1;
    int ch;
    argc--;
    argv++;
    while ((ch = getopt_long(argc, argv, "b:h", opts, NULL)) != -1) {
        int r = cli_common_opt(&common, ch, optarg);
        if (r < 0) {
            return CLI_EUSAGE;
        }
        if (r > 0) {
            continue;
        }
        if (ch == O_APIV && !drain) {
            apiv = true;
        } else if (ch == O_BROKER && drain) {
            if (cli_parse_int("--broker", optarg, 0, INT32_MAX, &broker) != 0) {
                return CLI_EUSAGE;
            }
        } else if (ch == O_WAIT && drain) {
            wait = true;
        } else if (ch == O_TMO && drain) {
            if (cli_parse_int("--timeout-ms", optarg, 1, INT32_MAX, &tmo) != 0) {
                return CLI_EUSAGE;
            }
        } else if (ch == 'h') {
            usage(stdout);
            return CLI_OK;
        } else {
            usage(stderr);
            return CLI_EUSAGE;
        }
    }
    if (optind < argc) {
        cli_errorf("unexpected argument '%s'", argv[optind]);
        return CLI_EUSAGE;
    }
    if (drain && broker < 0) {
        cli_errorf("drain needs --broker N");
        return CLI_EUSAGE;
    }
    trib_kclient_t *c;
    int rc = cli_connect(&c, &common);
    if (rc != CLI_OK) {
        return rc;
    }
    trib_arena_t arena;
    trib_arena_init(&arena);
    rc = drain ? cli_cluster_drain(c, (int32_t)broker, wait, tmo, &arena)
               : describe(c, apiv, &arena);
    trib_arena_fini(&arena);
    trib_kclient_close(c);
    return rc;
}
