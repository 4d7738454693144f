/* SPDX-License-Identifier: Apache-2.0 */
/*
 * AlterConfigs (key 33), versions 0-2 (v2 flexible): the legacy,
 * replace-everything form. A TOPIC resource's overrides become exactly the
 * configs given (a null value resets one); everything is validated before
 * anything changes, then the metadata checkpoint is rewritten and the new
 * settings apply to the topic's logs (coll_log_set_config: from the next
 * append or retention pass). ValidateOnly validates only.
 *
 * Errors: UNKNOWN_TOPIC_OR_PARTITION; INVALID_CONFIG for an unknown name
 * or a bad value (with Kafka's message); INVALID_REQUEST for BROKER
 * resources (broker settings live in collector.yaml and are read-only
 * here), other resource types, and a resource listed twice.
 */
#include "server/server_int.h"

#include <stdio.h>
#include <string.h>

#include "kafka/gen/kafka_messages.h"

#define RES_TOPIC 2
#define RES_BROKER 4

/* Shared with IncrementalAlterConfigs: one resource. ops NULL = legacy replace. */
void coll_alter_topic_configs(coll_req_t *r, int8_t type, trib_kstr_t name,
                              const coll_config_kv_t *kv, const int8_t *ops, size_t n,
                              bool validate_only, bool duplicate, int16_t *code, trib_kstr_t *msg)
{
    coll_cluster_t *cl = r->srv->cluster;
    coll_admin_result_t res = {TRIB_KAFKA_NONE, ""};
    if (duplicate) {
        res.code = TRIB_KAFKA_INVALID_REQUEST;
        snprintf(res.msg, sizeof(res.msg), "Resource listed more than once.");
    } else if (type == RES_BROKER) {
        res.code = TRIB_KAFKA_INVALID_REQUEST;
        snprintf(res.msg, sizeof(res.msg),
                 "Broker configs are read-only: change collector.yaml and restart.");
    } else if (type != RES_TOPIC) {
        res.code = TRIB_KAFKA_INVALID_REQUEST;
        snprintf(res.msg, sizeof(res.msg), "Only TOPIC resources can be altered.");
    } else {
        coll_topic_t *t = name.len > 0 ? coll_cluster_topic(cl, name.ptr, (size_t)name.len) : NULL;
        if (!t) {
            res.code = TRIB_KAFKA_UNKNOWN_TOPIC_OR_PARTITION;
            snprintf(res.msg, sizeof(res.msg), "Topic '%.*s' does not exist.",
                     (int)(name.len > 0 ? name.len : 0), name.ptr ? name.ptr : "");
        } else {
            coll_cluster_alter_configs(cl, t, kv, ops, n, ops == NULL, validate_only, &res);
        }
    }
    *code = res.code;
    if (res.code != TRIB_KAFKA_NONE) {
        trib_kstr_t m = {res.msg, (int32_t)strlen(res.msg)};
        *msg = trib_kstr(coll_req_strdup(r, m));
    }
    coll_req_note_error(r, res.code);
}

void coll_api_alter_configs(coll_req_t *r)
{
    const AlterConfigsRequest *req = r->body;
    int32_t n = req->Resources.count > 0 ? req->Resources.count : 0;
    AlterConfigsResponse *resp = coll_req_alloc(r, sizeof(*resp));
    AlterConfigsResponse_AlterConfigsResourceResponse *out =
        coll_req_alloc(r, (size_t)n * sizeof(*out));
    if (!resp || (n && !out)) {
        coll_req_reject(r, "out of memory");
        return;
    }
    AlterConfigsResponse_init(resp);
    for (int32_t i = 0; i < n; i++) {
        const AlterConfigsRequest_AlterConfigsResource *res = &req->Resources.items[i];
        AlterConfigsResponse_AlterConfigsResourceResponse *o = &out[i];
        AlterConfigsResponse_AlterConfigsResourceResponse_init(o);
        o->ResourceType = res->ResourceType;
        o->ResourceName = res->ResourceName;
        o->ErrorMessage = trib_kstr(NULL);
        bool dup = false;
        for (int32_t j = 0; j < n; j++) {
            const AlterConfigsRequest_AlterConfigsResource *x = &req->Resources.items[j];
            dup |= j != i && x->ResourceType == res->ResourceType &&
                   x->ResourceName.len == res->ResourceName.len &&
                   memcmp(x->ResourceName.ptr, res->ResourceName.ptr,
                          (size_t)(x->ResourceName.len > 0 ? x->ResourceName.len : 0)) == 0;
        }
        size_t nc = res->Configs.count > 0 ? (size_t)res->Configs.count : 0;
        coll_config_kv_t *kv = coll_req_alloc(r, (nc ? nc : 1) * sizeof(*kv));
        if (!kv) {
            coll_req_reject(r, "out of memory");
            return;
        }
        for (size_t k = 0; k < nc; k++) {
            kv[k].name = res->Configs.items[k].Name;
            kv[k].value = res->Configs.items[k].Value;
        }
        coll_alter_topic_configs(r, res->ResourceType, res->ResourceName, kv, NULL, nc,
                                 req->ValidateOnly, dup, &o->ErrorCode, &o->ErrorMessage);
    }
    resp->Responses.items = out;
    resp->Responses.count = n;
    coll_req_respond(r, &AlterConfigsResponse_codec, resp);
}
