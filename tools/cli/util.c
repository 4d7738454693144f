/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Shared by the CLI's subcommands: option parsing, error reporting with
 * Kafka error names, connecting, and Metadata with a bounded wait for
 * leaders (a topic that was just auto-created may briefly have none).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "cli.h"
#include "tributary/kafka_error.h"

#include "kafka/gen/FindCoordinatorRequest.h"
#include "kafka/gen/FindCoordinatorResponse.h"
#include "kafka/gen/MetadataRequest.h"

void cli_common_init(cli_common_t *o)
{
    memset(o, 0, sizeof *o);
    const char *env = getenv("TRIBUTARY_BOOTSTRAP");
    o->bootstrap = env && *env ? env : "127.0.0.1:9092";
    o->request_timeout_ms = 30000;
}

int cli_common_opt(cli_common_t *o, int opt, const char *arg)
{
    int64_t v;
    switch (opt) {
    case 'b':
    case CLI_OPT_BOOTSTRAP:
        o->bootstrap = arg;
        return 1;
    case CLI_OPT_REQUEST_TIMEOUT:
        if (cli_parse_int("--request-timeout-ms", arg, 1, 3600000, &v) < 0) {
            return -1;
        }
        o->request_timeout_ms = (int)v;
        return 1;
    case CLI_OPT_VERBOSE:
        o->verbose = true;
        return 1;
    case CLI_OPT_COMMAND_CONFIG:
        o->command_config = arg;
        return 1;
    default:
        return 0;
    }
}

void cli_errorf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("tributary: error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

int cli_fail(const trib_error_t *err)
{
    cli_errorf("%s", err->msg[0] ? err->msg : trib_strerror(err->code));
    return CLI_ENET;
}

int cli_kafka_fail(int16_t code, trib_kstr_t broker_msg, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("tributary: error: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    if (broker_msg.len > 0) {
        fprintf(stderr, ": %s (%d): %.*s\n", trib_kafka_err_name(code), code, (int)broker_msg.len,
                broker_msg.ptr);
    } else {
        fprintf(stderr, ": %s (%d): %s\n", trib_kafka_err_name(code), code,
                trib_kafka_err_message(code));
    }
    return CLI_EKAFKA;
}

static void command_config_warn(void *arg, const char *msg)
{
    (void)arg;
    fprintf(stderr, "tributary: warning: %s\n", msg);
}

int cli_connect(trib_kclient_t **c, const cli_common_t *o)
{
    trib_kclient_opts_t ko;
    trib_kclient_opts_init(&ko);
    ko.bootstrap = o->bootstrap;
    ko.timeout_ms = o->request_timeout_ms;
    trib_error_t err;
    trib_error_clear(&err);
    trib_kclient_security_t *sec = NULL;
    if (o->command_config) {
        sec = malloc(sizeof(*sec));
        if (!sec) {
            cli_errorf("out of memory");
            return CLI_ENET;
        }
        trib_kclient_security_init(sec);
        if (trib_kclient_security_load(sec, o->command_config, command_config_warn, NULL, &err) <
            0) {
            if (err.file && err.line > 0) {
                cli_errorf("--command-config %s:%d:%d: %s", err.file, err.line, err.col, err.msg);
            } else {
                cli_errorf("--command-config: %s", err.msg);
            }
            OPENSSL_cleanse(sec, sizeof(*sec));
            free(sec);
            return CLI_EUSAGE;
        }
        if (o->verbose) {
            fprintf(stderr, "tributary: %s%s%s%s\n", trib_kclient_protocol_name(sec->protocol),
                    sec->mechanism[0] ? " " : "", sec->mechanism,
                    sec->cert_location[0] ? " with a client certificate" : "");
        }
        ko.security = sec;
    }
    int rc = trib_kclient_open(c, &ko, &err);
    if (sec) {
        OPENSSL_cleanse(sec, sizeof(*sec));
        free(sec);
    }
    if (rc < 0) {
        cli_fail(&err);
        if (!o->command_config && rc == -ECONNRESET) {
            fputs("tributary: a TLS or SASL listener closes plaintext connections: see "
                  "--command-config in tributary --help\n",
                  stderr);
        }
        return rc == -EACCES ? CLI_EKAFKA : CLI_ENET;
    }
    return CLI_OK;
}

int16_t cli_version(trib_kclient_t *c, int16_t api_key, int16_t min, int16_t max)
{
    int16_t v = trib_kclient_version(c, api_key, min, max);
    if (v < 0) {
        const trib_kafka_api_t *api = trib_kafka_api_find(api_key);
        cli_errorf("the broker does not support %s v%d-%d", api ? api->name : "?", min, max);
    }
    return v;
}

int cli_parse_int(const char *opt, const char *s, int64_t min, int64_t max, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max) {
        cli_errorf("%s: '%s' is not an integer in [%lld, %lld]", opt, s, (long long)min,
                   (long long)max);
        return -1;
    }
    *out = v;
    return 0;
}

bool cli_kstr_eq(trib_kstr_t k, const char *s)
{
    size_t n = strlen(s);
    return k.len >= 0 && (size_t)k.len == n && memcmp(k.ptr, s, n) == 0;
}

void cli_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

int64_t cli_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const MetadataResponse_MetadataResponseTopic *cli_find_topic(const MetadataResponse *m,
                                                             const char *name)
{
    for (int32_t i = 0; i < m->Topics.count; i++) {
        if (cli_kstr_eq(m->Topics.items[i].Name, name)) {
            return &m->Topics.items[i];
        }
    }
    return NULL;
}

int cli_topic_error(const MetadataResponse_MetadataResponseTopic *t, const char *name)
{
    trib_kstr_t none = {NULL, -1};
    if (!t) {
        return cli_kafka_fail(TRIB_KAFKA_UNKNOWN_TOPIC_OR_PARTITION, none, "topic '%s'", name);
    }
    return cli_kafka_fail(t->ErrorCode, none, "topic '%s'", name);
}

bool cli_partition_under_replicated(const MetadataResponse_MetadataResponsePartition *p)
{
    return p->IsrNodes.count < p->ReplicaNodes.count;
}

bool cli_partition_offline(const MetadataResponse *m,
                           const MetadataResponse_MetadataResponsePartition *p)
{
    if (p->LeaderId < 0) {
        return true;
    }
    for (int32_t i = 0; i < m->Brokers.count; i++) {
        if (m->Brokers.items[i].NodeId == p->LeaderId) {
            return false;
        }
    }
    return true;
}

void cli_print_int_list(const trib_karr_int32_t *a)
{
    for (int32_t i = 0; i < a->count; i++) {
        printf("%s%d", i ? "," : "", (int)a->items[i]);
    }
}

/* True when a requested topic is still settling (no leader yet). */
static bool settling(const MetadataResponse *m, const char *const *topics, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const MetadataResponse_MetadataResponseTopic *t = cli_find_topic(m, topics[i]);
        if (!t) {
            continue;
        }
        if (t->ErrorCode == TRIB_KAFKA_LEADER_NOT_AVAILABLE) {
            return true;
        }
        if (t->ErrorCode != 0) {
            continue;
        }
        for (int32_t p = 0; p < t->Partitions.count; p++) {
            if (t->Partitions.items[p].LeaderId < 0) {
                return true;
            }
        }
    }
    return false;
}

static void copy_kstr(char *dst, size_t cap, trib_kstr_t s)
{
    size_t n = s.len > 0 ? (size_t)s.len : 0;
    if (n >= cap) {
        n = cap - 1;
    }
    if (n) {
        memcpy(dst, s.ptr, n);
    }
    dst[n] = '\0';
}

int cli_metadata(trib_kclient_t *c, const char *const *topics, size_t n, bool allow_auto_create,
                 int wait_ms, MetadataResponse *out, trib_arena_t *arena)
{
    int16_t v = cli_version(c, API_METADATA, 1, 12);
    if (v < 0) {
        return CLI_EKAFKA;
    }
    MetadataRequest req;
    MetadataRequest_init(&req);
    if (n == 0) {
        req.Topics.count = -1; /* every topic */
    } else {
        req.Topics.items = trib_arena_calloc(arena, n, sizeof *req.Topics.items);
        if (!req.Topics.items) {
            cli_errorf("out of memory");
            return CLI_ENET;
        }
        req.Topics.count = (int32_t)n;
        for (size_t i = 0; i < n; i++) {
            MetadataRequest_MetadataRequestTopic_init(&req.Topics.items[i]);
            req.Topics.items[i].Name = trib_kstr(topics[i]);
        }
    }
    req.AllowAutoTopicCreation = allow_auto_create || v < 4; /* v0-3 always allow it */
    int64_t deadline = cli_now_ms() + wait_ms;
    for (int attempt = 0;; attempt++) {
        trib_error_t err;
        trib_error_clear(&err);
        int rc = trib_kclient_call(c, TRIB_KCLIENT_ANY, API_METADATA, v, &req, out, arena, &err);
        if (rc < 0) {
            return cli_fail(&err);
        }
        if (!settling(out, topics, n) || cli_now_ms() >= deadline || attempt >= 100) {
            break;
        }
        cli_sleep_ms(attempt < 5 ? 20 : 100);
    }
    size_t nb = out->Brokers.count > 0 ? (size_t)out->Brokers.count : 0;
    trib_kclient_broker_t *b = trib_arena_calloc(arena, nb ? nb : 1, sizeof *b);
    if (!b) {
        cli_errorf("out of memory");
        return CLI_ENET;
    }
    for (size_t i = 0; i < nb; i++) {
        b[i].node_id = out->Brokers.items[i].NodeId;
        copy_kstr(b[i].host, sizeof b[i].host, out->Brokers.items[i].Host);
        b[i].port = out->Brokers.items[i].Port;
        copy_kstr(b[i].rack, sizeof b[i].rack, out->Brokers.items[i].Rack);
    }
    if (trib_kclient_set_brokers(c, b, nb, out->ControllerId, out->ClusterId.ptr,
                                 out->ClusterId.len > 0 ? (size_t)out->ClusterId.len : 0) < 0) {
        cli_errorf("out of memory");
        return CLI_ENET;
    }
    return CLI_OK;
}

int cli_find_coordinator(trib_kclient_t *c, const char *group, int32_t *node, trib_arena_t *arena)
{
    int16_t v = cli_version(c, API_FIND_COORDINATOR, 0, 4);
    if (v < 0) {
        return CLI_EKAFKA;
    }
    FindCoordinatorRequest req;
    FindCoordinatorRequest_init(&req);
    trib_kstr_t key = trib_kstr(group);
    req.KeyType = 0;
    if (v >= 4) {
        req.CoordinatorKeys.items = &key;
        req.CoordinatorKeys.count = 1;
    } else {
        req.Key = key;
    }
    FindCoordinatorResponse resp;
    trib_error_t err;
    trib_error_clear(&err);
    if (trib_kclient_call(c, TRIB_KCLIENT_ANY, API_FIND_COORDINATOR, v, &req, &resp, arena, &err) <
        0) {
        return cli_fail(&err);
    }
    int16_t code = resp.ErrorCode;
    trib_kstr_t msg = resp.ErrorMessage;
    *node = resp.NodeId;
    if (v >= 4) {
        if (resp.Coordinators.count < 1) {
            cli_errorf("FindCoordinator answered no coordinator for '%s'", group);
            return CLI_ENET;
        }
        code = resp.Coordinators.items[0].ErrorCode;
        msg = resp.Coordinators.items[0].ErrorMessage;
        *node = resp.Coordinators.items[0].NodeId;
    }
    if (code != 0) {
        return cli_kafka_fail(code, msg, "no coordinator for group '%s'", group);
    }
    return CLI_OK;
}
