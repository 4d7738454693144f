/* SPDX-License-Identifier: Apache-2.0 */
/*
 * DescribeConfigs (key 32), versions 1-4 (v4 flexible).
 *
 * TOPIC resources (2): every topic config the collector knows
 * (cluster/topic_config.c: cleanup.policy, compression.type,
 * delete.retention.ms, index.interval.bytes, max.message.bytes,
 * message.timestamp.type, min.cleanable.dirty.ratio, min.compaction.lag.ms,
 * min.insync.replicas, retention.bytes, retention.ms, segment.bytes,
 * segment.index.bytes, segment.ms), or those named in ConfigurationKeys
 * (unknown names are skipped, as Kafka does). ConfigSource is
 * TOPIC_CONFIG for an override, STATIC_BROKER_CONFIG when collector.yaml's
 * topic_defaults sets it, DEFAULT_CONFIG otherwise; synonyms (v1+, when
 * asked) list the override and the broker default under its broker name
 * (retention.ms -> log.retention.ms); ConfigType and Documentation (v3+).
 *
 * BROKER resources (4), named "" or this node's id: read-only settings
 * from collector.yaml under Kafka's names (node.id, broker.id, log.dirs,
 * listeners, advertised.listeners, auto.create.topics.enable,
 * num.partitions, default.replication.factor, socket.request.max.bytes,
 * and the log.* defaults of the topic configs). Broker configs are static:
 * they change in collector.yaml, not through AlterConfigs.
 *
 * Differences from Kafka: BROKER_LOGGER (8) and other resource types get
 * INVALID_REQUEST; v0 is not advertised (deprecated by Kafka).
 */
#include "server/server_int.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "kafka/gen/kafka_messages.h"

#define RES_TOPIC 2
#define RES_BROKER 4

typedef DescribeConfigsResponse_DescribeConfigsResourceResult entry_t;

static bool wanted(const DescribeConfigsRequest_DescribeConfigsResource *res, const char *name)
{
    if (res->ConfigurationKeys.count < 0) {
        return true;
    }
    size_t len = strlen(name);
    for (int32_t i = 0; i < res->ConfigurationKeys.count; i++) {
        trib_kstr_t k = res->ConfigurationKeys.items[i];
        if (k.len >= 0 && (size_t)k.len == len && memcmp(k.ptr, name, len) == 0) {
            return true;
        }
    }
    return false;
}

static void set_common(coll_req_t *r, const DescribeConfigsRequest *req, entry_t *e,
                       const char *name, const char *value, bool read_only, int8_t source,
                       int8_t type, const char *doc)
{
    DescribeConfigsResponse_DescribeConfigsResourceResult_init(e);
    e->Name = trib_kstr(name);
    e->Value = trib_kstr(value);
    e->ReadOnly = read_only;
    e->ConfigSource = source;
    e->IsSensitive = false;
    if (r->api_version >= 3) {
        e->ConfigType = type;
        e->Documentation = req->IncludeDocumentation ? trib_kstr(doc) : trib_kstr(NULL);
    }
    e->Synonyms.items = NULL;
    e->Synonyms.count = 0;
}

static void topic_configs(coll_req_t *r, const DescribeConfigsRequest *req,
                          const DescribeConfigsRequest_DescribeConfigsResource *res,
                          coll_topic_t *t, DescribeConfigsResponse_DescribeConfigsResult *o)
{
    coll_cluster_t *cl = r->srv->cluster;
    const coll_cluster_config_t *cc = coll_cluster_config(cl);
    entry_t *items = coll_req_alloc(r, COLL_TCFG_COUNT * sizeof(*items));
    if (!items) {
        o->ErrorCode = TRIB_KAFKA_UNKNOWN_SERVER_ERROR;
        return;
    }
    int32_t n = 0;
    for (int k = 0; k < COLL_TCFG_COUNT; k++) {
        const coll_tcfg_def_t *d = &coll_tcfg_defs[k];
        if (!wanted(res, d->name)) {
            continue;
        }
        entry_t *e = &items[n++];
        int8_t src = coll_topic_config_source(cl, t->config_mask, k);
        set_common(r, req, e, d->name, coll_config_value(r, &t->config, k), false, src,
                   (int8_t)d->type, d->doc);
        if (req->IncludeSynonyms) {
            DescribeConfigsResponse_DescribeConfigsSynonym *syn =
                coll_req_alloc(r, 2 * sizeof(*syn));
            if (!syn) {
                continue;
            }
            int32_t ns = 0;
            if (t->config_mask & (1u << k)) {
                DescribeConfigsResponse_DescribeConfigsSynonym_init(&syn[ns]);
                syn[ns].Name = trib_kstr(d->name);
                syn[ns].Value = trib_kstr(coll_config_value(r, &t->overrides, k));
                syn[ns].Source = COLL_CONFIG_SOURCE_TOPIC;
                ns++;
            }
            DescribeConfigsResponse_DescribeConfigsSynonym_init(&syn[ns]);
            syn[ns].Name = trib_kstr(d->broker_name);
            syn[ns].Value = trib_kstr(coll_config_value(r, &cc->defaults, k));
            syn[ns].Source = (cc->defaults_set & (1u << k)) ? COLL_CONFIG_SOURCE_STATIC_BROKER
                                                            : COLL_CONFIG_SOURCE_DEFAULT;
            ns++;
            e->Synonyms.items = syn;
            e->Synonyms.count = ns;
        }
    }
    o->Configs.items = items;
    o->Configs.count = n;
}

static char *fmt(coll_req_t *r, const char *f, ...) __attribute__((format(printf, 2, 3)));

static char *fmt(coll_req_t *r, const char *f, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, f);
    vsnprintf(buf, sizeof(buf), f, ap);
    va_end(ap);
    trib_kstr_t s = {buf, (int32_t)strlen(buf)};
    return coll_req_strdup(r, s);
}

static void broker_configs(coll_req_t *r, const DescribeConfigsRequest *req,
                           const DescribeConfigsRequest_DescribeConfigsResource *res,
                           DescribeConfigsResponse_DescribeConfigsResult *o)
{
    coll_server_t *s = r->srv;
    const coll_cluster_config_t *cc = coll_cluster_config(s->cluster);
    struct {
        const char *name;
        char *value;
        int8_t type;
        const char *doc;
    } fixed[] = {
        {"node.id", fmt(r, "%" PRId32, cc->node_id), COLL_CONFIG_TYPE_INT, "This node's id."},
        {"broker.id", fmt(r, "%" PRId32, cc->node_id), COLL_CONFIG_TYPE_INT, "Same as node.id."},
        {"log.dirs", fmt(r, "%s", cc->data_dir), COLL_CONFIG_TYPE_STRING,
         "The data directory (collector.yaml data_dir)."},
        {"listeners", fmt(r, "PLAINTEXT://%s", s->kafka_addr), COLL_CONFIG_TYPE_LIST,
         "The Kafka listener."},
        {"advertised.listeners", fmt(r, "PLAINTEXT://%s:%d", cc->host, (int)cc->port),
         COLL_CONFIG_TYPE_LIST, "The address given to clients."},
        {"auto.create.topics.enable", fmt(r, "%s", cc->auto_create_topics ? "true" : "false"),
         COLL_CONFIG_TYPE_BOOLEAN, "Create unknown topics on Metadata and Produce."},
        {"num.partitions", fmt(r, "%" PRId32, cc->default_partitions), COLL_CONFIG_TYPE_INT,
         "Partitions of auto-created topics."},
        {"default.replication.factor", fmt(r, "1"), COLL_CONFIG_TYPE_INT,
         "A single node keeps one replica."},
        {"socket.request.max.bytes", fmt(r, "%zu", s->cfg.max_request_bytes), COLL_CONFIG_TYPE_INT,
         "The largest request accepted."},
    };
    size_t nfixed = sizeof(fixed) / sizeof(fixed[0]);
    entry_t *items = coll_req_alloc(r, (nfixed + COLL_TCFG_COUNT) * sizeof(*items));
    if (!items) {
        o->ErrorCode = TRIB_KAFKA_UNKNOWN_SERVER_ERROR;
        return;
    }
    int32_t n = 0;
    for (size_t i = 0; i < nfixed; i++) {
        if (wanted(res, fixed[i].name) && fixed[i].value) {
            set_common(r, req, &items[n++], fixed[i].name, fixed[i].value, true,
                       COLL_CONFIG_SOURCE_STATIC_BROKER, fixed[i].type, fixed[i].doc);
        }
    }
    for (int k = 0; k < COLL_TCFG_COUNT; k++) {
        const coll_tcfg_def_t *d = &coll_tcfg_defs[k];
        if (!wanted(res, d->broker_name) ||
            coll_tcfg_find_broker(d->broker_name, strlen(d->broker_name)) != k) {
            continue;
        }
        int8_t src = (cc->defaults_set & (1u << k)) ? COLL_CONFIG_SOURCE_STATIC_BROKER
                                                    : COLL_CONFIG_SOURCE_DEFAULT;
        set_common(r, req, &items[n++], d->broker_name, coll_config_value(r, &cc->defaults, k),
                   true, src, (int8_t)d->type, d->doc);
    }
    o->Configs.items = items;
    o->Configs.count = n;
}

void coll_api_describe_configs(coll_req_t *r)
{
    const DescribeConfigsRequest *req = r->body;
    coll_cluster_t *cl = r->srv->cluster;
    int32_t n = req->Resources.count > 0 ? req->Resources.count : 0;
    DescribeConfigsResponse *resp = coll_req_alloc(r, sizeof(*resp));
    DescribeConfigsResponse_DescribeConfigsResult *out =
        coll_req_alloc(r, (size_t)n * sizeof(*out));
    if (!resp || (n && !out)) {
        coll_req_reject(r, "out of memory");
        return;
    }
    DescribeConfigsResponse_init(resp);
    char node[16];
    snprintf(node, sizeof(node), "%" PRId32, coll_cluster_node_id(cl));
    for (int32_t i = 0; i < n; i++) {
        const DescribeConfigsRequest_DescribeConfigsResource *res = &req->Resources.items[i];
        DescribeConfigsResponse_DescribeConfigsResult *o = &out[i];
        DescribeConfigsResponse_DescribeConfigsResult_init(o);
        o->ResourceType = res->ResourceType;
        o->ResourceName = res->ResourceName;
        o->ErrorMessage = trib_kstr(NULL);
        o->Configs.count = 0;
        if (res->ResourceType == RES_TOPIC &&
            !coll_authorized_k(r, COLL_OP_DESCRIBE_CONFIGS, COLL_RES_TOPIC, res->ResourceName)) {
            o->ErrorCode = TRIB_KAFKA_TOPIC_AUTHORIZATION_FAILED;
            o->ErrorMessage = trib_kstr("Topic authorization failed.");
        } else if (res->ResourceType == RES_BROKER &&
                   !coll_authorized_cluster(r, COLL_OP_DESCRIBE_CONFIGS)) {
            o->ErrorCode = TRIB_KAFKA_CLUSTER_AUTHORIZATION_FAILED;
            o->ErrorMessage = trib_kstr("Cluster authorization failed.");
        } else if (res->ResourceType == RES_TOPIC) {
            coll_topic_t *t =
                coll_cluster_topic(cl, res->ResourceName.ptr,
                                   (size_t)(res->ResourceName.len > 0 ? res->ResourceName.len : 0));
            if (!t) {
                o->ErrorCode = TRIB_KAFKA_UNKNOWN_TOPIC_OR_PARTITION;
                o->ErrorMessage = trib_kstr("Topic does not exist.");
            } else {
                topic_configs(r, req, res, t, o);
            }
        } else if (res->ResourceType == RES_BROKER) {
            trib_kstr_t nm = res->ResourceName;
            if (nm.len > 0 &&
                !((size_t)nm.len == strlen(node) && memcmp(nm.ptr, node, strlen(node)) == 0)) {
                o->ErrorCode = TRIB_KAFKA_INVALID_REQUEST;
                o->ErrorMessage = trib_kstr("Unexpected broker id: this node is the only broker.");
            } else {
                broker_configs(r, req, res, o);
            }
        } else {
            o->ErrorCode = TRIB_KAFKA_INVALID_REQUEST;
            o->ErrorMessage = trib_kstr("Only TOPIC (2) and BROKER (4) resources are supported.");
        }
        coll_req_note_error(r, o->ErrorCode);
    }
    resp->Results.items = out;
    resp->Results.count = n;
    coll_req_respond(r, &DescribeConfigsResponse_codec, resp);
}
