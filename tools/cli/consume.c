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

#include "kafka/gen/FetchRequest.h"
#include "kafka/gen/FetchResponse.h"
#include "kafka/gen/ListOffsetsRequest.h"
#include "kafka/gen/ListOffsetsResponse.h"

#define EARLIEST (-2)
#define LATEST (-1)
#define MAX_DECOMPRESSED ((size_t)256 << 20)
#define FETCH_MAX_BYTES (50 << 20)
#define PARTITION_MAX_BYTES (1 << 20)
#define MAX_WAIT_MS 500

static void usage(FILE *out)
{
    fputs("Usage: tributary consume --topic T [--from-beginning] [--partition P]\n"
          "                         [--offset N|earliest|latest] [--max N] [--timeout-ms T]\n"
          "                         [--exit-at-end] [--print-key] [--print-partition]\n"
          "                         [--print-offset] [--separator S]\n"
          "\n"
          "Prints each record's value on its own line (null values as 'null'), reading\n"
          "every partition of T, or only --partition P, without a consumer group.\n"
          "Starts at the end unless --from-beginning or --offset. Stops after --max N\n"
          "records, after --timeout-ms T without a record, at the end of every\n"
          "partition with --exit-at-end, or on Ctrl-C. --print-key prints KEY<S>VALUE\n"
          "(S is a tab unless --separator).\n"
          "Exit code 4 when --max N records did not arrive within --timeout-ms.\n"
          "\n"
          "Common options: --bootstrap HOST:PORT, --request-timeout-ms N, --verbose.\n",
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
    bool print_key, print_partition, print_offset;
    const char *sep;

    trib_kclient_t *client;
    cpart_t *parts;
    int32_t nparts;
    int64_t count;
    int16_t fetch_version;
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
    enum { O_FROM_BEGINNING = 1, O_OFFSET, O_MAX, O_TIMEOUT, O_PKEY, O_PPART, O_POFF, O_SEP };
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
    while ((c = getopt_long(argc, argv, "b:ht:p:o:e", opts, NULL)) != -1) {
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
        rc = list_offsets(&cs);
    }
    if (rc == CLI_OK && cs.max != 0) {
        rc = run(&cs);
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
