/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tributary produce: one record per stdin line, batched.
 *
 * Lines are read with read(2) in 64 KiB chunks and appended straight into
 * one record batch builder per partition (no copy of the line is kept). A
 * produce request goes out when a partition's batch reaches --batch-bytes,
 * when stdin has nothing more to give right now (so lines typed by hand
 * are sent at once, and a pipe is sent in large batches), and at EOF. One
 * request per partition leader carries that leader's batches; the next
 * request waits for its response, so records of a partition keep their
 * order.
 *
 * Partitioning: --partition P, else the key's murmur2 hash like the Java
 * client's default partitioner (so a key lands where other clients put it),
 * else one partition per request, moving round-robin (a "sticky"
 * partitioner).
 *
 * Retries: a partition answering NOT_LEADER_OR_FOLLOWER,
 * LEADER_NOT_AVAILABLE, UNKNOWN_TOPIC_OR_PARTITION or NOT_ENOUGH_REPLICAS
 * did not append the batch, so it is sent again after a metadata refresh
 * (at most 5 times). Other errors stop the tool with exit code 1.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "cli.h"
#include "tributary/compress.h"
#include "tributary/kafka_error.h"
#include "tributary/record.h"

#include "kafka/gen/ProduceRequest.h"
#include "kafka/gen/ProduceResponse.h"

#define READ_CHUNK (64 * 1024)
#define MAX_LINE (64u << 20)
#define MAX_ATTEMPTS 5

static void usage(FILE *out)
{
    fputs("Usage: tributary produce --topic T [--key K | --key-separator S] [--partition P]\n"
          "                         [--acks -1|0|1|all] [--compression none|gzip|snappy|lz4|zstd]\n"
          "                         [--batch-bytes N]\n"
          "\n"
          "Writes one record per line of standard input. With --key every record gets\n"
          "key K; with --key-separator each line is KEY<S>VALUE. Records go to\n"
          "--partition P, else to the key's partition (murmur2, as the Java client),\n"
          "else round-robin. The topic is created if the broker auto-creates topics.\n"
          "--acks defaults to -1 (all). Nothing is printed on success (--verbose prints\n"
          "the offsets).\n"
          "\n"
          "Common options: --bootstrap HOST:PORT, --request-timeout-ms N, --verbose,\n"
          "  --command-config FILE (TLS and SASL; see tributary --help).\n",
          out);
}

typedef struct part_state {
    int32_t index;
    int32_t leader;
    trib_buf_t buf;
    trib_batch_builder_t bb;
    bool open;
    int32_t records;
    int attempts;
} part_state_t;

typedef struct producer {
    cli_common_t common;
    const char *topic;
    const char *key;
    const char *key_sep;
    size_t key_sep_len;
    int64_t partition;
    int16_t acks;
    int codec;
    size_t batch_bytes;

    trib_kclient_t *client;
    int16_t version;
    part_state_t *parts;
    int32_t nparts;
    int32_t rr;
    int64_t total;
} producer_t;

static int64_t wall_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* Reads the topic's partitions and leaders (creating the topic if the broker does). */
static int refresh(producer_t *p)
{
    trib_arena_t arena;
    trib_arena_init(&arena);
    MetadataResponse md;
    const char *one[1] = {p->topic};
    int rc = cli_metadata(p->client, one, 1, true, 10000, &md, &arena);
    if (rc != CLI_OK) {
        trib_arena_fini(&arena);
        return rc;
    }
    const MetadataResponse_MetadataResponseTopic *t = cli_find_topic(&md, p->topic);
    if (!t || t->ErrorCode != 0 || t->Partitions.count <= 0) {
        rc = t && t->ErrorCode == 0
                 ? (cli_errorf("topic '%s' has no partitions", p->topic), CLI_EKAFKA)
                 : cli_topic_error(t, p->topic);
        trib_arena_fini(&arena);
        return rc;
    }
    if (!p->parts) {
        p->nparts = t->Partitions.count;
        p->parts = calloc((size_t)p->nparts, sizeof *p->parts);
        if (!p->parts) {
            trib_arena_fini(&arena);
            cli_errorf("out of memory");
            return CLI_ENET;
        }
        for (int32_t i = 0; i < p->nparts; i++) {
            p->parts[i].index = i;
            p->parts[i].leader = -1;
            trib_buf_init(&p->parts[i].buf);
        }
    }
    for (int32_t i = 0; i < t->Partitions.count; i++) {
        const MetadataResponse_MetadataResponsePartition *mp = &t->Partitions.items[i];
        if (mp->PartitionIndex >= 0 && mp->PartitionIndex < p->nparts) {
            p->parts[mp->PartitionIndex].leader = mp->LeaderId;
        }
    }
    trib_arena_fini(&arena);
    return CLI_OK;
}

static bool retriable(int16_t code)
{
    return code == TRIB_KAFKA_NOT_LEADER_OR_FOLLOWER || code == TRIB_KAFKA_LEADER_NOT_AVAILABLE ||
           code == TRIB_KAFKA_UNKNOWN_TOPIC_OR_PARTITION || code == TRIB_KAFKA_NOT_ENOUGH_REPLICAS;
}

static void part_reset(part_state_t *ps)
{
    trib_buf_reset(&ps->buf);
    ps->open = false;
    ps->records = 0;
    ps->attempts = 0;
}

/* Sends the closed batches of one leader; marks partitions done or to retry. */
static int send_leader(producer_t *p, int32_t leader, trib_arena_t *arena)
{
    ProduceRequest_PartitionProduceData *pd =
        trib_arena_calloc(arena, (size_t)p->nparts, sizeof *pd);
    int32_t *which = trib_arena_calloc(arena, (size_t)p->nparts, sizeof *which);
    if (!pd || !which) {
        cli_errorf("out of memory");
        return CLI_ENET;
    }
    int32_t n = 0;
    for (int32_t i = 0; i < p->nparts; i++) {
        part_state_t *ps = &p->parts[i];
        if (ps->records == 0 || ps->leader != leader) {
            continue;
        }
        size_t len;
        const uint8_t *bytes = trib_buf_flatten(&ps->buf, &len);
        if (!bytes) {
            cli_errorf("out of memory");
            return CLI_ENET;
        }
        ProduceRequest_PartitionProduceData_init(&pd[n]);
        pd[n].Index = i;
        pd[n].Records.ptr = bytes;
        pd[n].Records.len = (int32_t)len;
        which[n++] = i;
    }
    if (n == 0) {
        return CLI_OK;
    }
    ProduceRequest req;
    ProduceRequest_init(&req);
    ProduceRequest_TopicProduceData td;
    ProduceRequest_TopicProduceData_init(&td);
    td.Name = trib_kstr(p->topic);
    td.PartitionData.items = pd;
    td.PartitionData.count = n;
    req.Acks = p->acks;
    req.TimeoutMs = p->common.request_timeout_ms;
    req.TopicData.items = &td;
    req.TopicData.count = 1;
    trib_error_t err;
    trib_error_clear(&err);
    if (p->acks == 0) {
        if (trib_kclient_send(p->client, leader, API_PRODUCE, p->version, &req, &err) < 0) {
            return cli_fail(&err);
        }
        for (int32_t k = 0; k < n; k++) {
            p->total += p->parts[which[k]].records;
            part_reset(&p->parts[which[k]]);
        }
        return CLI_OK;
    }
    ProduceResponse resp;
    if (trib_kclient_call(p->client, leader, API_PRODUCE, p->version, &req, &resp, arena, &err) <
        0) {
        return cli_fail(&err);
    }
    for (int32_t t = 0; t < resp.Responses.count; t++) {
        const ProduceResponse_TopicProduceResponse *tr = &resp.Responses.items[t];
        for (int32_t k = 0; k < tr->PartitionResponses.count; k++) {
            const ProduceResponse_PartitionProduceResponse *pr = &tr->PartitionResponses.items[k];
            if (pr->Index < 0 || pr->Index >= p->nparts) {
                continue;
            }
            part_state_t *ps = &p->parts[pr->Index];
            if (ps->records == 0) {
                continue;
            }
            if (pr->ErrorCode == 0) {
                if (p->common.verbose) {
                    fprintf(stderr, "produced %d records to %s-%d at offset %lld\n",
                            (int)ps->records, p->topic, (int)pr->Index, (long long)pr->BaseOffset);
                }
                p->total += ps->records;
                part_reset(ps);
            } else if (retriable(pr->ErrorCode) && ps->attempts + 1 < MAX_ATTEMPTS) {
                ps->attempts++;
                if (p->common.verbose) {
                    fprintf(stderr, "retrying %s-%d after %s\n", p->topic, (int)pr->Index,
                            trib_kafka_err_name(pr->ErrorCode));
                }
            } else {
                return cli_kafka_fail(pr->ErrorCode, pr->ErrorMessage, "cannot produce to %s-%d",
                                      p->topic, (int)pr->Index);
            }
        }
    }
    return CLI_OK;
}

/* Closes every open batch and sends them all, retrying what may be retried. */
static int flush(producer_t *p)
{
    for (int32_t i = 0; i < p->nparts; i++) {
        part_state_t *ps = &p->parts[i];
        if (ps->open) {
            int rc = trib_batch_builder_finish(&ps->bb);
            trib_batch_builder_fini(&ps->bb);
            ps->open = false;
            if (rc < 0) {
                cli_errorf("cannot build a record batch: %s", trib_strerror(rc));
                return CLI_ENET;
            }
        }
    }
    for (int round = 0; round < MAX_ATTEMPTS; round++) {
        bool pending = false;
        for (int32_t i = 0; i < p->nparts; i++) {
            pending |= p->parts[i].records > 0;
        }
        if (!pending) {
            return CLI_OK;
        }
        if (round > 0) {
            cli_sleep_ms(100 * round);
            int rc = refresh(p);
            if (rc != CLI_OK) {
                return rc;
            }
        }
        /* One request per leader with data, each leader once a round. */
        int32_t *leaders = calloc((size_t)p->nparts, sizeof *leaders);
        int32_t nleaders = 0;
        if (!leaders) {
            cli_errorf("out of memory");
            return CLI_ENET;
        }
        for (int32_t i = 0; i < p->nparts; i++) {
            int32_t leader = p->parts[i].leader;
            bool seen = false;
            for (int32_t k = 0; k < nleaders; k++) {
                seen |= leaders[k] == leader;
            }
            if (p->parts[i].records > 0 && leader >= 0 && !seen) {
                leaders[nleaders++] = leader;
            }
        }
        for (int32_t li = 0; li < nleaders; li++) {
            int32_t leader = leaders[li];
            trib_arena_t arena;
            trib_arena_init(&arena);
            int rc = send_leader(p, leader, &arena);
            trib_arena_fini(&arena);
            if (rc != CLI_OK) {
                free(leaders);
                return rc;
            }
        }
        free(leaders);
    }
    for (int32_t i = 0; i < p->nparts; i++) {
        if (p->parts[i].records > 0) {
            cli_errorf("%s-%d has no leader after %d attempts", p->topic, (int)i, MAX_ATTEMPTS);
            return CLI_EKAFKA;
        }
    }
    return CLI_OK;
}

static int32_t choose_partition(producer_t *p, const uint8_t *key, int32_t klen)
{
    if (p->partition >= 0) {
        return (int32_t)p->partition;
    }
    if (klen >= 0) {
        return trib_kafka_partition_for_key(key, (size_t)klen, p->nparts);
    }
    return p->rr;
}

static int add_line(producer_t *p, const uint8_t *line, size_t len, bool *full)
{
    const uint8_t *key = NULL;
    int32_t klen = -1;
    const uint8_t *val = line;
    size_t vlen = len;
    if (p->key) {
        key = (const uint8_t *)p->key;
        klen = (int32_t)strlen(p->key);
    } else if (p->key_sep) {
        const uint8_t *s = memmem(line, len, p->key_sep, p->key_sep_len);
        if (!s) {
            cli_errorf("line without the key separator '%s': '%.*s'", p->key_sep,
                       (int)(len > 60 ? 60 : len), (const char *)line);
            return CLI_EUSAGE;
        }
        key = line;
        klen = (int32_t)(s - line);
        val = s + p->key_sep_len;
        vlen = len - (size_t)klen - p->key_sep_len;
    }
    int32_t part = choose_partition(p, key, klen);
    part_state_t *ps = &p->parts[part];
    if (!ps->open) {
        trib_batch_opts_t bo;
        trib_batch_opts_init(&bo);
        bo.codec = p->codec;
        if (trib_batch_builder_init(&ps->bb, &ps->buf, &bo) < 0) {
            cli_errorf("out of memory");
            return CLI_ENET;
        }
        ps->open = true;
    }
    trib_record_in_t r;
    memset(&r, 0, sizeof r);
    r.key = klen >= 0 ? trib_record_bytes(key, klen) : trib_record_null();
    r.value = trib_record_bytes(val, (int32_t)vlen);
    r.timestamp = wall_ms();
    int rc = trib_batch_builder_add(&ps->bb, &r);
    if (rc < 0) {
        cli_errorf("cannot add a record: %s", trib_strerror(rc));
        return CLI_ENET;
    }
    ps->records++;
    if (trib_batch_builder_size(&ps->bb) >= p->batch_bytes) {
        *full = true;
    }
    return CLI_OK;
}

/* True when standard input has bytes (or EOF) ready without blocking. */
static bool stdin_ready(void)
{
    struct pollfd pfd = {.fd = 0, .events = POLLIN};
    return poll(&pfd, 1, 0) > 0;
}

static int run(producer_t *p)
{
    size_t cap = READ_CHUNK * 2, len = 0;
    uint8_t *buf = malloc(cap);
    if (!buf) {
        cli_errorf("out of memory");
        return CLI_ENET;
    }
    int rc = CLI_OK;
    bool eof = false;
    while (!eof && rc == CLI_OK) {
        if (cap - len < READ_CHUNK) {
            if (cap >= MAX_LINE) {
                cli_errorf("a line is longer than %u bytes", MAX_LINE);
                rc = CLI_EUSAGE;
                break;
            }
            uint8_t *nb = realloc(buf, cap * 2);
            if (!nb) {
                cli_errorf("out of memory");
                rc = CLI_ENET;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t n = read(0, buf + len, cap - len);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            cli_errorf("reading standard input: %s", strerror(errno));
            rc = CLI_EUSAGE;
            break;
        }
        if (n == 0) {
            eof = true;
            if (len > 0) {
                buf[len++] = '\n'; /* the last line had no newline */
            }
        } else {
            len += (size_t)n;
        }
        size_t start = 0;
        bool full = false;
        for (size_t i = 0; i < len && rc == CLI_OK; i++) {
            if (buf[i] != '\n') {
                continue;
            }
            rc = add_line(p, buf + start, i - start, &full);
            start = i + 1;
            if (full && rc == CLI_OK) {
                rc = flush(p);
                p->rr = (p->rr + 1) % p->nparts;
                full = false;
            }
        }
        memmove(buf, buf + start, len - start);
        len -= start;
        if (rc == CLI_OK && (eof || !stdin_ready())) {
            rc = flush(p);
            p->rr = (p->rr + 1) % p->nparts;
        }
    }
    free(buf);
    return rc;
}

int cli_produce(int argc, char **argv)
{
    enum { O_KEYSEP = 1, O_ACKS, O_BATCH };
    static const struct option opts[] = {
        {"topic", required_argument, NULL, 't'},
        {"key", required_argument, NULL, 'k'},
        {"key-separator", required_argument, NULL, O_KEYSEP},
        {"partition", required_argument, NULL, 'p'},
        {"acks", required_argument, NULL, O_ACKS},
        {"compression", required_argument, NULL, 'z'},
        {"batch-bytes", required_argument, NULL, O_BATCH},
        {"help", no_argument, NULL, 'h'},
        CLI_COMMON_LONGOPTS,
        {NULL, 0, NULL, 0},
    };
    producer_t p;
    memset(&p, 0, sizeof p);
    cli_common_init(&p.common);
    p.partition = -1;
    p.acks = -1;
    p.codec = TRIB_CODEC_NONE;
    p.batch_bytes = 1 << 20;
    optind = 1;
    int c;
    int64_t v;
    while ((c = getopt_long(argc, argv, "b:ht:k:p:z:", opts, NULL)) != -1) {
        int r = cli_common_opt(&p.common, c, optarg);
        if (r < 0) {
            return CLI_EUSAGE;
        }
        if (r > 0) {
            continue;
        }
        switch (c) {
        case 't':
            p.topic = optarg;
            break;
        case 'k':
            p.key = optarg;
            break;
        case O_KEYSEP:
            if (!*optarg) {
                cli_errorf("--key-separator must not be empty");
                return CLI_EUSAGE;
            }
            p.key_sep = optarg;
            p.key_sep_len = strlen(optarg);
            break;
        case 'p':
            if (cli_parse_int("--partition", optarg, 0, INT32_MAX, &p.partition) < 0) {
                return CLI_EUSAGE;
            }
            break;
        case O_ACKS:
            if (!strcmp(optarg, "all")) {
                v = -1;
            } else if (cli_parse_int("--acks", optarg, -1, 1, &v) < 0) {
                return CLI_EUSAGE;
            }
            p.acks = (int16_t)v;
            break;
        case 'z':
            p.codec = trib_codec_from_name(optarg);
            if (p.codec < 0) {
                cli_errorf("--compression: unknown codec '%s' (none, gzip, snappy, lz4, zstd)",
                           optarg);
                return CLI_EUSAGE;
            }
            break;
        case O_BATCH:
            if (cli_parse_int("--batch-bytes", optarg, 1024, 64 << 20, &v) < 0) {
                return CLI_EUSAGE;
            }
            p.batch_bytes = (size_t)v;
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
    if (!p.topic) {
        cli_errorf("produce needs --topic");
        return CLI_EUSAGE;
    }
    if (p.key && p.key_sep) {
        cli_errorf("--key and --key-separator exclude each other");
        return CLI_EUSAGE;
    }
    int rc = cli_connect(&p.client, &p.common);
    if (rc != CLI_OK) {
        return rc;
    }
    /* v3 is the first with record batch v2; zstd needs v7. */
    p.version = cli_version(p.client, API_PRODUCE, p.codec == TRIB_CODEC_ZSTD ? 7 : 3, 11);
    if (p.version < 0) {
        rc = CLI_EKAFKA;
    }
    if (rc == CLI_OK) {
        rc = refresh(&p);
    }
    if (rc == CLI_OK && p.partition >= p.nparts) {
        cli_errorf("topic '%s' has %d partitions: there is no partition %lld", p.topic,
                   (int)p.nparts, (long long)p.partition);
        rc = CLI_EUSAGE;
    }
    if (rc == CLI_OK) {
        rc = run(&p);
    }
    if (p.common.verbose && rc == CLI_OK) {
        fprintf(stderr, "%lld records produced to %s\n", (long long)p.total, p.topic);
    }
    for (int32_t i = 0; i < p.nparts; i++) {
        if (p.parts[i].open) {
            trib_batch_builder_fini(&p.parts[i].bb);
        }
        trib_buf_fini(&p.parts[i].buf);
    }
    free(p.parts);
    trib_kclient_close(p.client);
    return rc;
}
