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
 *
 * On the zookeeper backend the new overrides are written to
 * /config/topics/<t> and the request is answered once ZooKeeper has them;
 * every broker applies them from its watch.
 */
#include "server/server_int.h"

#include <stdio.h>
#include <string.h>

#include "kafka/gen/kafka_messages.h"

#define RES_TOPIC 2
#define RES_BROKER 4

coll_admin_wait_t *coll_admin_wait_new(coll_req_t *r, const trib_kafka_codec_t *codec, void *resp)
{
    if (!coll_cluster_admin_async(r->srv->cluster)) {
        return NULL;
    }
    coll_admin_wait_t *w = coll_req_alloc(r, sizeof(*w));
    if (w) {
        w->r = r;
        w->codec = codec;
        w->resp = resp;
        w->left = 1;
        r->pending++;
    }
    return w;
}

void coll_admin_wait_done(coll_admin_wait_t *w)
{
    if (--w->left > 0) {
        return;
    }
    if (w->r->pending > 0) {
        w->r->pending--;
    }
    coll_req_respond(w->r, w->codec, w->resp);
}

coll_admin_slot_t *coll_admin_slot_new(coll_admin_wait_t *w, int16_t *code, trib_kstr_t *msg)
{
    coll_admin_slot_t *s = coll_req_alloc(w->r, sizeof(*s));
    if (s) {
        s->w = w;
        s->code = code;
        s->msg = msg;
        w->left++;
    }
    return s;
}

void coll_admin_slot_cb(void *arg, const coll_admin_result_t *res)
{
    coll_admin_slot_t *s = arg;
    coll_req_t *r = s->w->r;
    *s->code = res->code;
    if (res->code != TRIB_KAFKA_NONE && s->msg) {
        trib_kstr_t m = {res->msg, (int32_t)strlen(res->msg)};
        *s->msg = trib_kstr(coll_req_strdup(r, m));
    }
    coll_req_note_error(r, res->code);
    coll_admin_wait_done(s->w);
}

/* Shared with IncrementalAlterConfigs: one resource. ops NULL = legacy replace. */
void coll_alter_topic_configs(coll_req_t *r, int8_t type, trib_kstr_t name,
                              const coll_config_kv_t *kv, const int8_t *ops, size_t n,
                              bool validate_only, bool duplicate, int16_t *code, trib_kstr_t *msg,
                              coll_admin_wait_t *w)
{
    coll_cluster_t *cl = r->srv->cluster;
    coll_admin_result_t res = {TRIB_KAFKA_NONE, ""};
    if (duplicate) {
        res.code = TRIB_KAFKA_INVALID_REQUEST;
        snprintf(res.msg, sizeof(res.msg), "Resource listed more than once.");
    } else if (type == RES_BROKER && !coll_authorized_cluster(r, COLL_OP_ALTER_CONFIGS)) {
        res.code = TRIB_KAFKA_CLUSTER_AUTHORIZATION_FAILED;
        snprintf(res.msg, sizeof(res.msg), "Cluster authorization failed.");
    } else if (type == RES_TOPIC &&
               !coll_authorized_k(r, COLL_OP_ALTER_CONFIGS, COLL_RES_TOPIC, name)) {
        res.code = TRIB_KAFKA_TOPIC_AUTHORIZATION_FAILED;
        snprintf(res.msg, sizeof(res.msg), "Topic authorization failed.");
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
        } else if (w) {
            coll_admin_slot_t *slot = coll_admin_slot_new(w, code, msg);
            if (slot) {
                coll_cluster_alter_configs_async(cl, t, kv, ops, n, ops == NULL, validate_only,
                                                 coll_admin_slot_cb, slot);
                return;
            }
            res.code = TRIB_KAFKA_UNKNOWN_SERVER_ERROR;
            snprintf(res.msg, sizeof(res.msg), "out of memory");
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
    resp->Responses.items = out;
    resp->Responses.count = n;
    coll_admin_wait_t *w = coll_admin_wait_new(r, &AlterConfigsResponse_codec, resp);
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
            if (w) {
                o->ErrorCode = TRIB_KAFKA_UNKNOWN_SERVER_ERROR;
                continue;
            }
            coll_req_reject(r, "out of memory");
            return;
        }
        for (size_t k = 0; k < nc; k++) {
            kv[k].name = res->Configs.items[k].Name;
            kv[k].value = res->Configs.items[k].Value;
        }
        coll_alter_topic_configs(r, res->ResourceType, res->ResourceName, kv, NULL, nc,
                                 req->ValidateOnly, dup, &o->ErrorCode, &o->ErrorMessage, w);
    }
    if (w) {
        coll_admin_wait_done(w);
        return;
    }
    coll_req_respond(r, &AlterConfigsResponse_codec, resp);
}
