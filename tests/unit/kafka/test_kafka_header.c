/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The hand-written Kafka request and response headers: bytes checked by
 * hand against the protocol guide, round trips, the header-version rules,
 * hostile input, and agreement with the generated RequestHeader and
 * ResponseHeader codecs on the same bytes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kafka/gen/RequestHeader.h"
#include "kafka/gen/ResponseHeader.h"
#include "tributary/error.h"
#include "tributary/kafka.h"

static const uint8_t *encoded(trib_buf_t *b, size_t *n)
{
    return trib_buf_flatten(b, n);
}

static void test_header_versions(void **state)
{
    (void)state;
    /* Produce: flexible from v9. */
    assert_int_equal(trib_kafka_request_header_version(0, 8), 1);
    assert_int_equal(trib_kafka_request_header_version(0, 9), 2);
    assert_int_equal(trib_kafka_response_header_version(0, 8), 0);
    assert_int_equal(trib_kafka_response_header_version(0, 9), 1);
    /* ApiVersions: request flexible from v3, response always v0. */
    assert_int_equal(trib_kafka_request_header_version(18, 2), 1);
    assert_int_equal(trib_kafka_request_header_version(18, 3), 2);
    assert_int_equal(trib_kafka_request_header_version(18, 99), 2); /* a newer client */
    assert_int_equal(trib_kafka_response_header_version(18, 3), 0);
    assert_int_equal(trib_kafka_response_header_version(18, 0), 0);
    /* ControlledShutdown v0 has no client id. */
    assert_int_equal(trib_kafka_request_header_version(7, 0), 0);
    assert_int_equal(trib_kafka_request_header_version(7, 1), 1);
    assert_int_equal(trib_kafka_request_header_version(7, 3), 2);
    /* SaslHandshake never flexible. */
    assert_int_equal(trib_kafka_request_header_version(17, 1), 1);
    assert_int_equal(trib_kafka_response_header_version(17, 1), 0);
    /* Unknown. */
    assert_int_equal(trib_kafka_request_header_version(-1, 0), -1);
    assert_int_equal(trib_kafka_request_header_version(30000, 0), -1);
    assert_int_equal(trib_kafka_response_header_version(0, -1), -1);
}

static void test_request_header_v1_bytes(void **state)
{
    (void)state;
    /* Metadata v1 request header, client id "rdkafka". */
    static const uint8_t want[] = {0x00, 0x03, 0x00, 0x01, 0x00, 0x00, 0x01, 0x02, 0x00,
                                   0x07, 'r',  'd',  'k',  'a',  'f',  'k',  'a'};
    trib_kafka_request_header_t h;
    trib_kafka_request_header_init(&h);
    h.api_key = 3;
    h.api_version = 1;
    h.correlation_id = 258;
    h.client_id = trib_kstr("rdkafka");
    trib_buf_t b;
    trib_buf_init(&b);
    assert_int_equal(trib_kafka_request_header_encode(&h, &b, 1), 0);
    size_t n;
    const uint8_t *p = encoded(&b, &n);
    assert_int_equal(n, sizeof(want));
    assert_memory_equal(p, want, n);

    trib_kafka_request_header_t d;
    trib_slice_t s = trib_slice_make(want, sizeof(want));
    assert_int_equal(trib_kafka_request_header_decode(&d, &s, 1, NULL), 0);
    assert_int_equal(trib_slice_remaining(&s), 0);
    assert_int_equal(d.api_key, 3);
    assert_int_equal(d.api_version, 1);
    assert_int_equal(d.correlation_id, 258);
    assert_int_equal(d.client_id.len, 7);
    assert_ptr_equal(d.client_id.ptr, (const char *)want + 10); /* a view */

    /* A null client id is int16 -1. */
    h.client_id = trib_kstr(NULL);
    trib_buf_reset(&b);
    assert_int_equal(trib_kafka_request_header_encode(&h, &b, 1), 0);
    p = encoded(&b, &n);
    assert_int_equal(n, 10);
    assert_int_equal(p[8], 0xff);
    assert_int_equal(p[9], 0xff);
    trib_buf_fini(&b);
}

static void test_request_header_v2_tags(void **state)
{
    (void)state;
    /* v2: the client id stays a classic STRING; then a tag section, here
     * with one tag (5, 3 bytes) kept raw and written back. */
    static const uint8_t in[] = {0x00, 0x12, 0x00, 0x03, 0x7f, 0xff, 0xff, 0xff, 0x00,
                                 0x02, 'i',  'd',  0x01, 0x05, 0x03, 'a',  'b',  'c'};
    trib_arena_t a;
    trib_arena_init(&a);
    trib_kafka_request_header_t h;
    trib_slice_t s = trib_slice_make(in, sizeof(in));
    int16_t hv;
    assert_int_equal(trib_kafka_request_header_parse(&h, &s, &a, &hv), 0);
    assert_int_equal(hv, 2);
    assert_int_equal(trib_slice_remaining(&s), 0);
    assert_int_equal(h.correlation_id, INT32_MAX);
    assert_int_equal(h.tags.count, 1);
    assert_int_equal(h.tags.items[0].tag, 5);
    assert_int_equal(h.tags.items[0].data.len, 3);
    trib_buf_t b;
    trib_buf_init(&b);
    assert_int_equal(trib_kafka_request_header_encode(&h, &b, 2), 0);
    size_t n;
    const uint8_t *p = encoded(&b, &n);
    assert_int_equal(n, sizeof(in));
    assert_memory_equal(p, in, n);
    /* Tags cannot go into a v1 header. */
    trib_buf_reset(&b);
    assert_int_equal(trib_kafka_request_header_encode(&h, &b, 1), TRIB_EUNSUPPORTED_VERSION);
    trib_buf_fini(&b);

    /* The generated RequestHeader codec reads the same bytes the same way. */
    RequestHeader g;
    s = trib_slice_make(in, sizeof(in));
    assert_int_equal(RequestHeader_decode(&g, &s, 2, &a), 0);
    assert_int_equal(g.RequestApiKey, 18);
    assert_int_equal(g.RequestApiVersion, 3);
    assert_int_equal(g.CorrelationId, INT32_MAX);
    assert_int_equal(g.ClientId.len, 2);
    assert_int_equal(g.unknown_tags.count, 1);
    trib_arena_fini(&a);
}

static void test_controlled_shutdown_v0(void **state)
{
    (void)state;
    static const uint8_t in[] = {0x00, 0x07, 0x00, 0x00, 0x00, 0x00,
                                 0x00, 0x2a, 0x00, 0x00, 0x00, 0x01};
    trib_kafka_request_header_t h;
    trib_slice_t s = trib_slice_make(in, sizeof(in));
    int16_t hv;
    assert_int_equal(trib_kafka_request_header_parse(&h, &s, NULL, &hv), 0);
    assert_int_equal(hv, 0);
    assert_int_equal(h.correlation_id, 42);
    assert_int_equal(h.client_id.len, -1);
    assert_int_equal(trib_slice_remaining(&s), 4); /* the body: BrokerId 1 */
}

static void test_response_headers(void **state)
{
    (void)state;
    trib_arena_t a;
    trib_arena_init(&a);
    trib_kafka_response_header_t h;
    trib_kafka_response_header_init(&h);
    h.correlation_id = -2;
    trib_buf_t b;
    trib_buf_init(&b);
    assert_int_equal(trib_kafka_response_header_encode(&h, &b, 0), 0);
    size_t n;
    const uint8_t *p = encoded(&b, &n);
    static const uint8_t v0[] = {0xff, 0xff, 0xff, 0xfe};
    assert_int_equal(n, 4);
    assert_memory_equal(p, v0, 4);
    trib_buf_reset(&b);
    assert_int_equal(trib_kafka_response_header_encode(&h, &b, 1), 0);
    p = encoded(&b, &n);
    static const uint8_t v1[] = {0xff, 0xff, 0xff, 0xfe, 0x00};
    assert_int_equal(n, 5);
    assert_memory_equal(p, v1, 5);

    static const uint8_t tagged[] = {0x00, 0x00, 0x00, 0x09, 0x02, 0x00,
                                     0x00, 0x80, 0x01, 0x01, 0x7a};
    trib_slice_t s = trib_slice_make(tagged, sizeof(tagged));
    assert_int_equal(trib_kafka_response_header_decode(&h, &s, 1, &a), 0);
    assert_int_equal(trib_slice_remaining(&s), 0);
    assert_int_equal(h.correlation_id, 9);
    assert_int_equal(h.tags.count, 2);
    assert_int_equal(h.tags.items[1].tag, 128);
    assert_int_equal(h.tags.items[1].data.ptr[0], 0x7a);
    trib_buf_reset(&b);
    assert_int_equal(trib_kafka_response_header_encode(&h, &b, 1), 0);
    p = encoded(&b, &n);
    assert_int_equal(n, sizeof(tagged));
    assert_memory_equal(p, tagged, n);

    ResponseHeader g;
    s = trib_slice_make(tagged, sizeof(tagged));
    assert_int_equal(ResponseHeader_decode(&g, &s, 1, &a), 0);
    assert_int_equal(g.CorrelationId, 9);
    assert_int_equal(g.unknown_tags.count, 2);

    assert_int_equal(trib_kafka_response_header_encode(&h, &b, 2), TRIB_EUNSUPPORTED_VERSION);
    s = trib_slice_make(tagged, sizeof(tagged));
    assert_int_equal(trib_kafka_response_header_decode(&h, &s, 2, &a), TRIB_EUNSUPPORTED_VERSION);
    trib_buf_fini(&b);
    trib_arena_fini(&a);
}

static void test_round_trips(void **state)
{
    (void)state;
    trib_arena_t a;
    trib_arena_init(&a);
    for (int16_t hv = 0; hv <= 2; hv++) {
        trib_kafka_request_header_t h, d;
        trib_kafka_request_header_init(&h);
        h.api_key = 1;
        h.api_version = 12;
        h.correlation_id = 123456;
        h.client_id = hv ? trib_kstr("consumer-1") : trib_kstr(NULL);
        trib_buf_t b;
        trib_buf_init(&b);
        assert_int_equal(trib_kafka_request_header_encode(&h, &b, hv), 0);
        size_t n;
        const uint8_t *p = encoded(&b, &n);
        assert_int_equal(n, 8 + (hv >= 1 ? 12 : 0) + (hv >= 2 ? 1 : 0));
        trib_slice_t s = trib_slice_make(p, n);
        assert_int_equal(trib_kafka_request_header_decode(&d, &s, hv, &a), 0);
        assert_int_equal(trib_slice_remaining(&s), 0);
        assert_int_equal(d.api_key, 1);
        assert_int_equal(d.api_version, 12);
        assert_int_equal(d.correlation_id, 123456);
        assert_int_equal(d.client_id.len, h.client_id.len);

        /* The generated codec encodes identical bytes. */
        RequestHeader g;
        RequestHeader_init(&g);
        g.RequestApiKey = 1;
        g.RequestApiVersion = 12;
        g.CorrelationId = 123456;
        g.ClientId = h.client_id;
        trib_buf_t gb;
        trib_buf_init(&gb);
        assert_int_equal(RequestHeader_encode(&g, &gb, hv), 0);
        size_t gn;
        const uint8_t *gp = encoded(&gb, &gn);
        assert_int_equal(gn, n);
        assert_memory_equal(gp, p, n);
        trib_buf_fini(&gb);
        trib_buf_fini(&b);
    }
    trib_arena_fini(&a);
}

static void test_hostile(void **state)
{
    (void)state;
    trib_arena_t a;
    trib_arena_init(&a);
    trib_kafka_request_header_t h;
    static const uint8_t full[] = {0x00, 0x03, 0x00, 0x0c, 0x00, 0x00, 0x00,
                                   0x01, 0x00, 0x02, 'i',  'd',  0x00};
    /* Every truncation fails. */
    for (size_t len = 0; len < sizeof(full); len++) {
        uint8_t *p = malloc(len ? len : 1);
        assert_non_null(p);
        memcpy(p, full, len);
        trib_slice_t s = trib_slice_make(p, len);
        assert_true(trib_kafka_request_header_decode(&h, &s, 2, &a) < 0);
        s = trib_slice_make(p, len);
        assert_true(trib_kafka_request_header_parse(&h, &s, &a, NULL) < 0);
        free(p);
    }
    /* Negative client id length other than -1. */
    static const uint8_t neg[] = {0x00, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x80, 0x00};
    trib_slice_t s = trib_slice_make(neg, sizeof(neg));
    assert_int_equal(trib_kafka_request_header_decode(&h, &s, 1, &a), TRIB_EMALFORMED);
    /* A huge tag count. */
    static const uint8_t tags[] = {0x00, 0x03, 0x00, 0x0c, 0x00, 0x00, 0x00,
                                   0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f};
    s = trib_slice_make(tags, sizeof(tags));
    assert_int_equal(trib_kafka_request_header_decode(&h, &s, 2, &a), TRIB_ETRUNCATED);
    /* Unknown API key: the correlation id is still there to answer with. */
    static const uint8_t unknown[] = {0x7f, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05};
    s = trib_slice_make(unknown, sizeof(unknown));
    int16_t hv;
    assert_int_equal(trib_kafka_request_header_parse(&h, &s, &a, &hv), TRIB_EUNSUPPORTED_VERSION);
    assert_int_equal(hv, -1);
    assert_int_equal(h.api_key, 0x7f00);
    assert_int_equal(h.correlation_id, 5);
    /* Header versions out of range. */
    s = trib_slice_make(full, sizeof(full));
    assert_int_equal(trib_kafka_request_header_decode(&h, &s, 3, &a), TRIB_EUNSUPPORTED_VERSION);
    trib_buf_t b;
    trib_buf_init(&b);
    assert_int_equal(trib_kafka_request_header_encode(&h, &b, -1), TRIB_EUNSUPPORTED_VERSION);
    trib_buf_fini(&b);
    trib_arena_fini(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_versions),
        cmocka_unit_test(test_request_header_v1_bytes),
        cmocka_unit_test(test_request_header_v2_tags),
        cmocka_unit_test(test_controlled_shutdown_v0),
        cmocka_unit_test(test_response_headers),
        cmocka_unit_test(test_round_trips),
        cmocka_unit_test(test_hostile),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
