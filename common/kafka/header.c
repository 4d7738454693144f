/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Kafka request and response headers, by hand (see kafka.h).
 *
 * The headers are read before anything else on the hot path, and their
 * version depends on the API key and version they carry, so they are not
 * run through the generic engine (RequestHeader.json/ResponseHeader.json
 * still have generated codecs, used by the tests as a cross-check).
 *
 *   request header v0             request header v1           request header v2
 *   +---------------------------+ +-------------------------+ +-------------------------+
 *   | request_api_key     int16 | | v0                      | | v1                      |
 *   | request_api_version int16 | | client_id  STRING, -1 = | | tagged fields (uvarint  |
 *   | correlation_id      int32 | |            null (never  | |   count, tag, size,     |
 *   +---------------------------+ |            compact)     | |   data)                 |
 *                                 +-------------------------+ +-------------------------+
 *   response header v0: correlation_id int32; v1: v0 + tagged fields.
 *
 * Which header an API version uses (Kafka's ApiMessageType):
 *   flexible versions -> request v2 / response v1, others -> v1 / v0;
 *   ControlledShutdown v0 -> request v0 (no client id);
 *   ApiVersions -> response v0 always, so an old client can read the error
 *   telling it to downgrade (KIP-511).
 */
#include <string.h>

#include "tributary/error.h"
#include "tributary/kafka.h"

#define API_CONTROLLED_SHUTDOWN 7
#define API_API_VERSIONS 18

static bool api_flexible(const trib_kafka_api_t *api, int16_t api_version)
{
    return api->first_flexible >= 0 && api_version >= api->first_flexible;
}

int16_t trib_kafka_request_header_version(int16_t api_key, int16_t api_version)
{
    const trib_kafka_api_t *api = trib_kafka_api_find(api_key);
    if (!api || api_version < 0) {
        return -1;
    }
    if (api_key == API_CONTROLLED_SHUTDOWN && api_version == 0) {
        return 0;
    }
    return api_flexible(api, api_version) ? 2 : 1;
}

int16_t trib_kafka_response_header_version(int16_t api_key, int16_t api_version)
{
    const trib_kafka_api_t *api = trib_kafka_api_find(api_key);
    if (!api || api_version < 0) {
        return -1;
    }
    if (api_key == API_API_VERSIONS) {
        return 0;
    }
    return api_flexible(api, api_version) ? 1 : 0;
}

void trib_kafka_request_header_init(trib_kafka_request_header_t *h)
{
    memset(h, 0, sizeof(*h));
    h->client_id.ptr = NULL;
    h->client_id.len = -1;
    h->tags.items = NULL;
}

int trib_kafka_request_header_decode(trib_kafka_request_header_t *h, trib_slice_t *s,
                                     int16_t header_version, trib_arena_t *a)
{
    trib_kafka_request_header_init(h);
    if (header_version < 0 || header_version > 2) {
        return TRIB_EUNSUPPORTED_VERSION;
    }
    h->api_key = trib_slice_i16(s);
    h->api_version = trib_slice_i16(s);
    h->correlation_id = trib_slice_i32(s);
    if (s->err) {
        return s->err;
    }
    if (header_version >= 1) {
        int rc = trib_kafka_str_decode(&h->client_id, s, false, true);
        if (rc) {
            return rc;
        }
    }
    if (header_version >= 2) {
        return trib_kafka_tags_decode(&h->tags, s, a);
    }
    return 0;
}

int trib_kafka_request_header_encode(const trib_kafka_request_header_t *h, trib_buf_t *b,
                                     int16_t header_version)
{
    if (header_version < 0 || header_version > 2) {
        return TRIB_EUNSUPPORTED_VERSION;
    }
    if (header_version < 2 && h->tags.count != 0) {
        return TRIB_EUNSUPPORTED_VERSION;
    }
    trib_buf_put_i16(b, h->api_key);
    trib_buf_put_i16(b, h->api_version);
    trib_buf_put_i32(b, h->correlation_id);
    if (header_version >= 1) {
        int rc = trib_kafka_str_encode(h->client_id, b, false, true);
        if (rc) {
            return rc;
        }
    } /* v0 has no client id; the schema marks it ignorable, so it is dropped. */
    if (header_version >= 2) {
        return trib_kafka_tags_encode(&h->tags, b);
    }
    return trib_buf_error(b);
}

int trib_kafka_request_header_parse(trib_kafka_request_header_t *h, trib_slice_t *s,
                                    trib_arena_t *a, int16_t *header_version)
{
    trib_kafka_request_header_init(h);
    if (header_version) {
        *header_version = -1;
    }
    if (s->err) {
        return s->err;
    }
    /* Peek at the key and version without consuming them. */
    trib_slice_t peek = *s;
    int16_t key = trib_slice_i16(&peek);
    int16_t version = trib_slice_i16(&peek);
    if (peek.err) {
        return trib_slice_fail(s, peek.err);
    }
    int16_t hv = trib_kafka_request_header_version(key, version);
    if (hv < 0) {
        h->api_key = key;
        h->api_version = version;
        h->correlation_id = trib_slice_i32(&peek);
        return TRIB_EUNSUPPORTED_VERSION;
    }
    if (header_version) {
        *header_version = hv;
    }
    return trib_kafka_request_header_decode(h, s, hv, a);
}

void trib_kafka_response_header_init(trib_kafka_response_header_t *h)
{
    memset(h, 0, sizeof(*h));
    h->tags.items = NULL;
}

int trib_kafka_response_header_decode(trib_kafka_response_header_t *h, trib_slice_t *s,
                                      int16_t header_version, trib_arena_t *a)
{
    trib_kafka_response_header_init(h);
    if (header_version < 0 || header_version > 1) {
        return TRIB_EUNSUPPORTED_VERSION;
    }
    h->correlation_id = trib_slice_i32(s);
    if (s->err) {
        return s->err;
    }
    if (header_version >= 1) {
        return trib_kafka_tags_decode(&h->tags, s, a);
    }
    return 0;
}

int trib_kafka_response_header_encode(const trib_kafka_response_header_t *h, trib_buf_t *b,
                                      int16_t header_version)
{
    if (header_version < 0 || header_version > 1) {
        return TRIB_EUNSUPPORTED_VERSION;
    }
    if (header_version < 1 && h->tags.count != 0) {
        return TRIB_EUNSUPPORTED_VERSION;
    }
    trib_buf_put_i32(b, h->correlation_id);
    if (header_version >= 1) {
        return trib_kafka_tags_encode(&h->tags, b);
    }
    return trib_buf_error(b);
}
