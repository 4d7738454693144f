/* SPDX-License-Identifier: Apache-2.0 */
/*
 * IncrementalAlterConfigs (key 44), versions 0-1 (v1 flexible).
 *
 * Per TOPIC resource, operations on single configs: SET (0), DELETE (1,
 * back to the default), APPEND (2) and SUBTRACT (3) for the list-typed
 * cleanup.policy. All operations of a resource are validated before any
 * applies; then as AlterConfigs (alter_configs.c), whose errors apply,
 * plus INVALID_REQUEST for an unknown operation or a config named twice.
 */
#include "server/server_int.h"

#include <string.h>

#include "kafka/gen/kafka_messages.h"

void coll_api_incremental_alter_configs(coll_req_t *r)
{
    const IncrementalAlterConfigsRequest *req = r->body;
    int32_t n = req->Resources.count > 0 ? req->Resources.count : 0;
    IncrementalAlterConfigsResponse *resp = coll_req_alloc(r, sizeof(*resp));
    IncrementalAlterConfigsResponse_AlterConfigsResourceResponse *out =
        coll_req_alloc(r, (size_t)n * sizeof(*out));
    if (!resp || (n && !out)) {
        coll_req_reject(r, "out of memory");
        return;
    }
    IncrementalAlterConfigsResponse_init(resp);
    resp->Responses.items = out;
    resp->Responses.count = n;
    coll_admin_wait_t *w = coll_admin_wait_new(r, &IncrementalAlterConfigsResponse_codec, resp);
    for (int32_t i = 0; i < n; i++) {
        const IncrementalAlterConfigsRequest_AlterConfigsResource *res = &req->Resources.items[i];
        IncrementalAlterConfigsResponse_AlterConfigsResourceResponse *o = &out[i];
        IncrementalAlterConfigsResponse_AlterConfigsResourceResponse_init(o);
        o->ResourceType = res->ResourceType;
        o->ResourceName = res->ResourceName;
        o->ErrorMessage = trib_kstr(NULL);
        bool dup = false;
        for (int32_t j = 0; j < n; j++) {
            const IncrementalAlterConfigsRequest_AlterConfigsResource *x = &req->Resources.items[j];
            dup |= j != i && x->ResourceType == res->ResourceType &&
                   x->ResourceName.len == res->ResourceName.len &&
                   memcmp(x->ResourceName.ptr, res->ResourceName.ptr,
                          (size_t)(x->ResourceName.len > 0 ? x->ResourceName.len : 0)) == 0;
        }
        size_t nc = res->Configs.count > 0 ? (size_t)res->Configs.count : 0;
        coll_config_kv_t *kv = coll_req_alloc(r, (nc ? nc : 1) * sizeof(*kv));
        int8_t *ops = coll_req_alloc(r, nc ? nc : 1);
        if (!kv || !ops) {
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
            ops[k] = res->Configs.items[k].ConfigOperation;
        }
        coll_alter_topic_configs(r, res->ResourceType, res->ResourceName, kv, ops, nc,
                                 req->ValidateOnly, dup, &o->ErrorCode, &o->ErrorMessage, w);
    }
    if (w) {
        coll_admin_wait_done(w);
        return;
    }
    coll_req_respond(r, &IncrementalAlterConfigsResponse_codec, resp);
}
