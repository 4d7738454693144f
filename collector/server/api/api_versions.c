/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ApiVersions (key 18), versions 0-4.
 *
 * Lists exactly the APIs of the dispatch table (dispatch.c) with their
 * ranges. v3+ bodies are flexible, but the response header is v0 for every
 * version (KIP-511). Differences from Kafka:
 *   - no SupportedFeatures / FinalizedFeatures (no KRaft features here);
 *     FinalizedFeaturesEpoch stays -1 and ZkMigrationReady false;
 *   - a request for a version above 4 gets UNSUPPORTED_VERSION with a v0
 *     body that lists ApiVersions 0-4, as Kafka does, so librdkafka and
 *     the Java client retry with a version we have;
 *   - v3+ ClientSoftwareName/Version are validated with Kafka's pattern
 *     ([a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?); a bad one gets
 *     INVALID_REQUEST (with the full list, as Kafka).
 */
#include "server/server_int.h"

#include "kafka/gen/kafka_messages.h"

static bool software_ok(trib_kstr_t s)
{
    if (s.len <= 0) {
        return s.len == 0 ? false : true;
    }
    for (int32_t i = 0; i < s.len; i++) {
        char ch = s.ptr[i];
        bool alnum =
            (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
        bool edge = i == 0 || i == s.len - 1;
        if (!alnum && (edge || (ch != '-' && ch != '.'))) {
            return false;
        }
    }
    return true;
}

static void fill(coll_req_t *r, ApiVersionsResponse *resp, bool only_self)
{
    size_t n = only_self ? 1 : coll_api_count;
    ApiVersionsResponse_ApiVersion *items = coll_req_alloc(r, n * sizeof(*items));
    if (!items) {
        return;
    }
    size_t k = 0;
    for (size_t i = 0; i < coll_api_count; i++) {
        if (only_self && coll_apis[i].key != 18) {
            continue;
        }
        ApiVersionsResponse_ApiVersion_init(&items[k]);
        items[k].ApiKey = coll_apis[i].key;
        items[k].MinVersion = coll_apis[i].min_version;
        items[k].MaxVersion = coll_apis[i].max_version;
        k++;
    }
    resp->ApiKeys.items = items;
    resp->ApiKeys.count = (int32_t)k;
}

void coll_api_api_versions(coll_req_t *r)
{
    const ApiVersionsRequest *req = r->body;
    ApiVersionsResponse *resp = coll_req_alloc(r, sizeof(*resp));
    if (!resp) {
        coll_req_reject(r, "out of memory");
        return;
    }
    ApiVersionsResponse_init(resp);
    if (r->api_version >= 3 &&
        (!software_ok(req->ClientSoftwareName) || !software_ok(req->ClientSoftwareVersion))) {
        resp->ErrorCode = TRIB_KAFKA_INVALID_REQUEST;
        coll_req_note_error(r, resp->ErrorCode);
    }
    fill(r, resp, false);
    coll_req_respond(r, &ApiVersionsResponse_codec, resp);
}

void coll_api_versions_unsupported(coll_req_t *r)
{
    ApiVersionsResponse *resp = coll_req_alloc(r, sizeof(*resp));
    if (!resp) {
        coll_req_reject(r, "out of memory");
        return;
    }
    ApiVersionsResponse_init(resp);
    resp->ErrorCode = TRIB_KAFKA_UNSUPPORTED_VERSION;
    coll_req_note_error(r, resp->ErrorCode);
    fill(r, resp, true);
    r->api_version = 0; /* the body (and the header, always) in v0 */
    coll_req_respond(r, &ApiVersionsResponse_codec, resp);
}
