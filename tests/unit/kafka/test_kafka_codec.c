/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The generated Kafka codec, for every message and every valid version:
 *   - a default message encodes, decodes and re-encodes to the same bytes;
 *   - a sample message with random non-default values (filled generically
 *     from the descriptors) round-trips byte-identically, and the JSON of
 *     the sample and of both decodes is the same;
 *   - every truncation of the sample fails to decode, and a few hundred
 *     deterministic mutations per (message, version) never crash (they run
 *     under ASan/UBSan in CI; decode may succeed or fail);
 * plus byte vectors built by hand from the protocol guide, tagged fields
 * (known and unknown), and encode/decode error cases.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "kafka/gen/kafka_messages.h"
#include "tributary/error.h"

#define SAMPLES 4     /* populated samples per (codec, version) */
#define MUTATIONS 150 /* mutated inputs per sample */
#define MAX_PREFIXES 400
#define ARENA_LIMIT (4u << 20)

/* ---- helpers ---------------------------------------------------------------- */

static uint64_t rng;

static uint32_t rnd(void)
{
    /* xorshift64*: deterministic across platforms. */
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return (uint32_t)((rng * 0x2545F4914F6CDD1DULL) >> 32);
}

static uint64_t rnd64(void)
{
    return ((uint64_t)rnd() << 32) | rnd();
}

/* Flattens b into a malloc'd copy of exactly its size (so ASan sees overreads). */
static uint8_t *take_bytes(trib_buf_t *b, size_t *len)
{
    size_t n = trib_buf_len(b);
    uint8_t *p = malloc(n ? n : 1);
    assert_non_null(p);
    assert_int_equal(trib_buf_copyout(b, 0, p, n), n);
    *len = n;
    return p;
}

static char *json_of(const trib_kafka_codec_t *c, const void *m, int16_t v)
{
    trib_buf_t b;
    trib_buf_init(&b);
    assert_int_equal(c->to_json(m, v, &b), 0);
    size_t n;
    uint8_t *p = take_bytes(&b, &n);
    trib_buf_fini(&b);
    char *s = realloc(p, n + 1);
    assert_non_null(s);
    s[n] = '\0';
    return s;
}

static bool f_present(const trib_kafka_field_t *f, int16_t v)
{
    return v >= f->vmin && v <= f->vmax;
}

static bool f_nullable(const trib_kafka_field_t *f, int16_t v)
{
    return (f->flags & TRIB_KAFKA_F_NULLABLE) && v >= f->nmin && v <= f->nmax;
}

/* ---- generic sample fill ------------------------------------------------------- */

static void fill_struct(const trib_kafka_struct_desc_t *d, void *m, int16_t v, trib_arena_t *a);

static void fill_value(const trib_kafka_field_t *f, void *p, int16_t v, bool nullable,
                       trib_arena_t *a)
{
    static const char *const pieces[] = {"a",
                                         "Z",
                                         "0",
                                         "-",
                                         " ",
                                         "\"",
                                         "\\",
                                         "\n",
                                         "\x01",
                                         "\xc3\xa9",
                                         "\xe2\x82\xac",
                                         "\xf0\x9f\x98\x80",
                                         "\xff",
                                         "topic",
                                         "/"};
    switch (f->type) {
    case TRIB_KAFKA_T_BOOL:
        *(bool *)p = rnd() & 1;
        break;
    case TRIB_KAFKA_T_INT8:
        *(int8_t *)p = (int8_t)rnd();
        break;
    case TRIB_KAFKA_T_INT16:
        *(int16_t *)p = (int16_t)rnd();
        break;
    case TRIB_KAFKA_T_UINT16:
        *(uint16_t *)p = (uint16_t)rnd();
        break;
    case TRIB_KAFKA_T_INT32:
        *(int32_t *)p = (int32_t)rnd();
        break;
    case TRIB_KAFKA_T_UINT32:
        *(uint32_t *)p = rnd();
        break;
    case TRIB_KAFKA_T_INT64:
        *(int64_t *)p = (int64_t)rnd64();
        break;
    case TRIB_KAFKA_T_FLOAT64:
        *(double *)p = (double)(int32_t)rnd() / 1024.0;
        break;
    case TRIB_KAFKA_T_UUID:
        for (int i = 0; i < 16; i++) {
            ((trib_uuid_t *)p)->b[i] = (uint8_t)rnd();
        }
        break;
    case TRIB_KAFKA_T_STRING: {
        trib_kstr_t *s = p;
        if (nullable && rnd() % 5 == 0) {
            s->ptr = NULL;
            s->len = -1;
            break;
        }
        char *out = trib_arena_alloc(a, 128);
        assert_non_null(out);
        size_t n = 0, k = rnd() % 8;
        for (size_t i = 0; i < k; i++) {
            const char *piece = pieces[rnd() % (sizeof(pieces) / sizeof(pieces[0]))];
            memcpy(out + n, piece, strlen(piece));
            n += strlen(piece);
        }
        s->ptr = out;
        s->len = (int32_t)n;
        break;
    }
    case TRIB_KAFKA_T_BYTES:
    case TRIB_KAFKA_T_RECORDS: {
        trib_kbytes_t *s = p;
        if (nullable && rnd() % 5 == 0) {
            s->ptr = NULL;
            s->len = -1;
            break;
        }
        /* Sometimes long enough to go out by reference (TRIB_BUF_REF_MIN). */
        size_t n = rnd() % 4 == 0 ? 256 + rnd() % 100 : rnd() % 12;
        uint8_t *out = trib_arena_alloc(a, n ? n : 1);
        assert_non_null(out);
        for (size_t i = 0; i < n; i++) {
            out[i] = (uint8_t)rnd();
        }
        s->ptr = out;
        s->len = (int32_t)n;
        break;
    }
    case TRIB_KAFKA_T_STRUCT:
        if (f->flags & TRIB_KAFKA_F_PTR) {
            if (nullable && rnd() % 4 == 0) {
                *(void **)p = NULL;
                break;
            }
            void *q = trib_arena_alloc(a, f->sub->size);
            assert_non_null(q);
            trib_kafka_struct_init(f->sub, q);
            fill_struct(f->sub, q, v, a);
            *(void **)p = q;
        } else {
            fill_struct(f->sub, p, v, a);
        }
        break;
    }
}

static void fill_struct(const trib_kafka_struct_desc_t *d, void *m, int16_t v, trib_arena_t *a)
{
    for (unsigned i = 0; i < d->nfields; i++) {
        const trib_kafka_field_t *f = &d->fields[i];
        void *p = (char *)m + f->offset;
        if (!f_present(f, v)) {
            continue;
        }
        if (!(f->flags & TRIB_KAFKA_F_ARRAY)) {
            fill_value(f, p, v, f_nullable(f, v), a);
            continue;
        }
        trib_karray_t *arr = p;
        if (f_nullable(f, v) && rnd() % 5 == 0) {
            arr->items = NULL;
            arr->count = -1;
            continue;
        }
        int32_t n = rnd() % 6 == 0 ? 0 : (int32_t)(1 + rnd() % 2);
        char *items = n ? trib_arena_calloc(a, (size_t)n, trib_kafka_field_elem_size(f)) : NULL;
        for (int32_t k = 0; k < n; k++) {
            void *e = items + (size_t)k * trib_kafka_field_elem_size(f);
            if (f->type == TRIB_KAFKA_T_STRUCT) {
                trib_kafka_struct_init(f->sub, e);
            }
            fill_value(f, e, v, false, a);
        }
        arr->items = items;
        arr->count = n;
    }
}

/* ---- every codec, every version ---------------------------------------------- */

typedef struct stats {
    unsigned combos, truncations, mutations, mutation_ok;
    size_t bytes; /* encoded sample bytes */
} stats_t;

static void encode_ok(const trib_kafka_codec_t *c, const void *m, int16_t v, uint8_t **out,
                      size_t *len)
{
    trib_buf_t b;
    trib_buf_init(&b);
    int rc = c->encode(m, &b, v);
    if (rc) {
        print_error("%s v%d: encode: %s\n", c->name, v, trib_strerror(rc));
    }
    assert_int_equal(rc, 0);
    *out = take_bytes(&b, len);
    trib_buf_fini(&b);
}

static void decode_ok(const trib_kafka_codec_t *c, void *m, const uint8_t *p, size_t n, int16_t v,
                      trib_arena_t *a)
{
    trib_slice_t s = trib_slice_make(p, n);
    int rc = c->decode(m, &s, v, a);
    if (rc) {
        print_error("%s v%d: decode: %s\n", c->name, v, trib_strerror(rc));
    }
    assert_int_equal(rc, 0);
    assert_int_equal(trib_slice_remaining(&s), 0);
}

static void check_bytes_equal(const trib_kafka_codec_t *c, int16_t v, const char *what,
                              const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
    if (an != bn || memcmp(a, b, an) != 0) {
        print_error("%s v%d: %s: re-encoding differs (%zu vs %zu bytes)\n", c->name, v, what, an,
                    bn);
        fail();
    }
}

static void mutate_and_decode(const trib_kafka_codec_t *c, int16_t v, const uint8_t *good, size_t n,
                              void *m, void *m2, stats_t *st)
{
    for (int i = 0; i < MUTATIONS; i++) {
        size_t len = n;
        uint8_t *p = malloc(n + 1);
        assert_non_null(p);
        memcpy(p, good, n);
        int edits = 1 + (int)(rnd() % 3);
        for (int e = 0; e < edits && len > 0; e++) {
            size_t at = rnd() % len;
            switch (rnd() % 6) {
            case 0:
                p[at] ^= (uint8_t)(1u << (rnd() % 8));
                break;
            case 1:
                p[at] = (uint8_t)rnd();
                break;
            case 2:
                p[at] = 0xff;
                break;
            case 3:
                p[at] = (uint8_t)(rnd() & 1 ? 0x7f : 0x80);
                break;
            case 4:
                p[at] = 0;
                break;
            default:
                len = at + (size_t)(rnd() % (len - at + 1)); /* truncate too */
                break;
            }
        }
        uint8_t *q = malloc(len ? len : 1); /* exact size for ASan */
        assert_non_null(q);
        memcpy(q, p, len);
        free(p);

        trib_arena_t a;
        trib_arena_init(&a);
        trib_arena_set_limit(&a, ARENA_LIMIT);
        trib_slice_t s = trib_slice_make(q, len);
        int rc = c->decode(m, &s, v, &a);
        if (rc == 0) {
            /* Whatever decodes is valid for its version: it must encode,
             * and the re-encoded bytes must decode to the same JSON. */
            trib_buf_t b;
            trib_buf_init(&b);
            rc = c->encode(m, &b, v);
            if (rc) {
                print_error("%s v%d: a decoded mutation does not encode: %s\n", c->name, v,
                            trib_strerror(rc));
            }
            assert_int_equal(rc, 0);
            size_t n2;
            uint8_t *e2 = take_bytes(&b, &n2);
            trib_buf_fini(&b);
            char *j1 = json_of(c, m, v);
            decode_ok(c, m2, e2, n2, v, &a);
            char *j2 = json_of(c, m2, v);
            assert_string_equal(j1, j2);
            free(j1);
            free(j2);
            free(e2);
            st->mutation_ok++;
        } else {
            assert_true(rc < 0);
        }
        st->mutations++;
        trib_arena_fini(&a);
        free(q);
    }
}

/* (b) and (c) for one populated sample. */
static void check_sample(const trib_kafka_codec_t *c, int16_t v, int k, void *m, void *m2, void *m3,
                         trib_arena_t *a, stats_t *st)
{
    uint8_t *e1, *e2;
    size_t n1, n2;
    rng = 0x9E3779B97F4A7C15ULL ^ ((uint64_t)st->combos * 0x100000001B3ULL) ^ ((uint64_t)k << 48);
    c->init(m);
    fill_struct(c->desc, m, v, a);
    encode_ok(c, m, v, &e1, &n1);
    decode_ok(c, m2, e1, n1, v, a);
    encode_ok(c, m2, v, &e2, &n2);
    check_bytes_equal(c, v, "sample", e1, n1, e2, n2);
    decode_ok(c, m3, e2, n2, v, a);
    char *j1 = json_of(c, m, v), *j2 = json_of(c, m2, v), *j3 = json_of(c, m3, v);
    if (strcmp(j1, j2) != 0 || strcmp(j2, j3) != 0) {
        print_error("%s v%d: JSON differs:\n  %s\n  %s\n  %s\n", c->name, v, j1, j2, j3);
        fail();
    }
    free(j1);
    free(j2);
    free(j3);
    st->bytes += n1;

    /* (c) every truncation fails (a sample of them for long messages) */
    size_t step = n1 > MAX_PREFIXES ? n1 / MAX_PREFIXES : 1;
    for (size_t len = 0; len < n1; len += (len < 64 ? 1 : step)) {
        uint8_t *p = malloc(len ? len : 1);
        assert_non_null(p);
        memcpy(p, e1, len);
        trib_arena_t ta;
        trib_arena_init(&ta);
        trib_slice_t s = trib_slice_make(p, len);
        int rc = c->decode(m3, &s, v, &ta);
        if (rc == 0) {
            print_error("%s v%d: a %zu-byte prefix of %zu decoded\n", c->name, v, len, n1);
        }
        assert_true(rc < 0);
        trib_arena_fini(&ta);
        free(p);
        st->truncations++;
    }

    /* (c) mutations */
    mutate_and_decode(c, v, e1, n1, m3, m2, st);
    free(e1);
    free(e2);
}

static void check_codec_version(const trib_kafka_codec_t *c, int16_t v, stats_t *st)
{
    trib_arena_t a;
    trib_arena_init(&a);
    void *m = calloc(1, c->size), *m2 = calloc(1, c->size), *m3 = calloc(1, c->size);
    assert_non_null(m);
    assert_non_null(m2);
    assert_non_null(m3);
    uint8_t *e1, *e2;
    size_t n1, n2;

    /* (a) defaults */
    c->init(m);
    encode_ok(c, m, v, &e1, &n1);
    decode_ok(c, m2, e1, n1, v, &a);
    encode_ok(c, m2, v, &e2, &n2);
    check_bytes_equal(c, v, "defaults", e1, n1, e2, n2);
    free(e1);
    free(e2);

    for (int k = 0; k < SAMPLES; k++) {
        check_sample(c, v, k, m, m2, m3, &a, st);
    }

    free(m);
    free(m2);
    free(m3);
    trib_arena_fini(&a);
    st->combos++;
}

static void test_every_codec_every_version(void **state)
{
    (void)state;
    stats_t st = {0};
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (size_t i = 0; i < trib_kafka_codec_count; i++) {
        const trib_kafka_codec_t *c = trib_kafka_codecs[i];
        for (int v = c->min_version; v <= c->max_version; v++) {
            check_codec_version(c, (int16_t)v, &st);
        }
        /* Out-of-range versions are refused both ways. */
        trib_buf_t b;
        trib_buf_init(&b);
        void *m = calloc(1, c->size);
        assert_non_null(m);
        c->init(m);
        assert_int_equal(c->encode(m, &b, (int16_t)(c->max_version + 1)),
                         TRIB_EUNSUPPORTED_VERSION);
        assert_int_equal(c->encode(m, &b, -1), TRIB_EUNSUPPORTED_VERSION);
        trib_slice_t s = trib_slice_make("", 0);
        assert_int_equal(c->decode(m, &s, (int16_t)(c->max_version + 1), NULL),
                         TRIB_EUNSUPPORTED_VERSION);
        free(m);
        trib_buf_fini(&b);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("kafka codec: %zu codecs, %u (codec, version) combinations round-tripped; "
           "%u samples (%zu bytes), %u truncations, %u mutations (%u decoded) in %.2f s\n",
           trib_kafka_codec_count, st.combos, st.combos * SAMPLES, st.bytes, st.truncations,
           st.mutations, st.mutation_ok, secs);
    fflush(stdout);
    assert_int_equal(trib_kafka_codec_count, 186);
}

/* ---- tables ------------------------------------------------------------------- */

static void test_tables(void **state)
{
    (void)state;
    const trib_kafka_api_t *api = trib_kafka_api_find(0);
    assert_non_null(api);
    assert_string_equal(api->name, "Produce");
    assert_ptr_equal(api->request, &ProduceRequest_codec);
    assert_ptr_equal(api->response, &ProduceResponse_codec);
    assert_int_equal(api->first_flexible, 9);
    api = trib_kafka_api_find(18);
    assert_non_null(api);
    assert_string_equal(api->name, "ApiVersions");
    assert_null(trib_kafka_api_find(-1));
    assert_null(trib_kafka_api_find(9999));
    assert_int_equal(trib_kafka_api_count, 88);
    for (size_t i = 0; i < trib_kafka_api_count; i++) {
        const trib_kafka_api_t *x = &trib_kafka_apis[i];
        assert_ptr_equal(trib_kafka_api_find(x->api_key), x);
        assert_int_equal(x->request->min_version, x->min_version);
        assert_int_equal(x->response->max_version, x->max_version);
        if (i > 0) {
            assert_true(trib_kafka_apis[i - 1].api_key < x->api_key);
        }
    }
    for (size_t i = 0; i < trib_kafka_codec_count; i++) {
        assert_ptr_equal(trib_kafka_codec_find(trib_kafka_codecs[i]->name), trib_kafka_codecs[i]);
    }
    assert_ptr_equal(trib_kafka_codec_find("ConsumerProtocolAssignment"),
                     &ConsumerProtocolAssignment_codec);
    assert_ptr_equal(trib_kafka_codec_find("LeaderChangeMessage"), &LeaderChangeMessage_codec);
    assert_ptr_equal(trib_kafka_codec_find("RequestHeader"), &RequestHeader_codec);
    assert_null(trib_kafka_codec_find("NoSuchMessage"));
    assert_null(trib_kafka_codec_find(NULL));
    assert_int_equal(ConsumerProtocolAssignment_codec.first_flexible, -1);
}

/* ---- hand-built vectors ---------------------------------------------------------- */

static void test_metadata_v1_request(void **state)
{
    (void)state;
    /* Metadata v1 body: Topics = ["foo", "bar"] (ARRAY of STRING structs). */
    static const uint8_t body[] = {0x00, 0x00, 0x00, 0x02, 0x00, 0x03, 'f',
                                   'o',  'o',  0x00, 0x03, 'b',  'a',  'r'};
    trib_arena_t a;
    trib_arena_init(&a);
    MetadataRequest m;
    trib_slice_t s = trib_slice_make(body, sizeof(body));
    assert_int_equal(MetadataRequest_decode(&m, &s, 1, &a), 0);
    assert_int_equal(trib_slice_remaining(&s), 0);
    assert_int_equal(m.Topics.count, 2);
    assert_int_equal(m.Topics.items[0].Name.len, 3);
    assert_memory_equal(m.Topics.items[0].Name.ptr, "foo", 3);
    assert_memory_equal(m.Topics.items[1].Name.ptr, "bar", 3);
    assert_true(m.AllowAutoTopicCreation); /* absent in v1: default true */
    char *j = json_of(&MetadataRequest_codec, &m, 1);
    assert_string_equal(j, "{\"Topics\":[{\"Name\":\"foo\"},{\"Name\":\"bar\"}]}");
    free(j);

    /* v1 allows a null topic array (all topics): int32 -1. */
    static const uint8_t all[] = {0xff, 0xff, 0xff, 0xff};
    s = trib_slice_make(all, sizeof(all));
    assert_int_equal(MetadataRequest_decode(&m, &s, 1, &a), 0);
    assert_int_equal(m.Topics.count, -1);
    /* v0 does not: the array is not nullable there. */
    s = trib_slice_make(all, sizeof(all));
    assert_int_equal(MetadataRequest_decode(&m, &s, 0, &a), TRIB_EMALFORMED);

    /* Encode it back the same. */
    trib_buf_t b;
    trib_buf_init(&b);
    s = trib_slice_make(body, sizeof(body));
    assert_int_equal(MetadataRequest_decode(&m, &s, 1, &a), 0);
    assert_int_equal(MetadataRequest_encode(&m, &b, 1), 0);
    size_t n;
    const uint8_t *p = trib_buf_flatten(&b, &n);
    assert_int_equal(n, sizeof(body));
    assert_memory_equal(p, body, n);
    trib_buf_fini(&b);
    trib_arena_fini(&a);
}

static void test_api_versions_requests(void **state)
{
    (void)state;
    trib_arena_t a;
    trib_arena_init(&a);
    /* A full ApiVersions v0 request as a client sends it: header v1, empty body. */
    static const uint8_t v0[] = {0x00, 0x12, 0x00, 0x00, 0x00, 0x00, 0x00,
                                 0x07, 0x00, 0x04, 'k',  'c',  'a',  't'};
    trib_slice_t s = trib_slice_make(v0, sizeof(v0));
    trib_kafka_request_header_t h;
    int16_t hv;
    assert_int_equal(trib_kafka_request_header_parse(&h, &s, &a, &hv), 0);
    assert_int_equal(hv, 1);
    assert_int_equal(h.api_key, 18);
    assert_int_equal(h.api_version, 0);
    assert_int_equal(h.correlation_id, 7);
    assert_int_equal(h.client_id.len, 4);
    assert_memory_equal(h.client_id.ptr, "kcat", 4);
    ApiVersionsRequest req;
    assert_int_equal(ApiVersionsRequest_decode(&req, &s, h.api_version, &a), 0);
    assert_int_equal(trib_slice_remaining(&s), 0);

    /* ApiVersions v3: header v2 (client id still a classic STRING, then tags),
     * body with compact strings and a tag section. */
    static const uint8_t v3[] = {0x00, 0x12, 0x00, 0x03, 0x00, 0x00,
                                 0x00, 0x01, 0x00, 0x01, 'c',  0x00, /* header tags */
                                 0x05, 'k',  'c',  'a',  't',        /* ClientSoftwareName */
                                 0x06, '1',  '.',  '7',  '.',  '0',  /* ClientSoftwareVersion */
                                 0x00};
    s = trib_slice_make(v3, sizeof(v3));
    assert_int_equal(trib_kafka_request_header_parse(&h, &s, &a, &hv), 0);
    assert_int_equal(hv, 2);
    assert_int_equal(h.api_version, 3);
    assert_int_equal(ApiVersionsRequest_decode(&req, &s, 3, &a), 0);
    assert_int_equal(trib_slice_remaining(&s), 0);
    assert_int_equal(req.ClientSoftwareName.len, 4);
    assert_memory_equal(req.ClientSoftwareName.ptr, "kcat", 4);
    assert_memory_equal(req.ClientSoftwareVersion.ptr, "1.7.0", 5);
    char *j = json_of(&ApiVersionsRequest_codec, &req, 3);
    assert_string_equal(j, "{\"ClientSoftwareName\":\"kcat\",\"ClientSoftwareVersion\":\"1.7.0\"}");
    free(j);
    trib_arena_fini(&a);
}

static void test_produce_v3_zero_copy(void **state)
{
    (void)state;
    uint8_t body[300 + 29];
    static const uint8_t head[] = {
        0xff, 0xff,             /* TransactionalId: null */
        0xff, 0xff,             /* Acks: -1 */
        0x00, 0x00, 0x03, 0xe8, /* TimeoutMs: 1000 */
        0x00, 0x00, 0x00, 0x01, /* TopicData: 1 */
        0x00, 0x01, 't',        /*   Name */
        0x00, 0x00, 0x00, 0x01, /*   PartitionData: 1 */
        0x00, 0x00, 0x00, 0x05, /*     Index: 5 */
        0x00, 0x00, 0x01, 0x2c, /*     Records: 300 bytes */
    };
    memcpy(body, head, sizeof(head));
    for (size_t i = sizeof(head); i < sizeof(head) + 300; i++) {
        body[i] = (uint8_t)i;
    }
    size_t n = sizeof(head) + 300;
    trib_arena_t a;
    trib_arena_init(&a);
    ProduceRequest m;
    trib_slice_t s = trib_slice_make(body, n);
    assert_int_equal(ProduceRequest_decode(&m, &s, 3, &a), 0);
    assert_int_equal(trib_slice_remaining(&s), 0);
    assert_int_equal(m.TransactionalId.len, -1);
    assert_int_equal(m.Acks, -1);
    assert_int_equal(m.TimeoutMs, 1000);
    const ProduceRequest_PartitionProduceData *pd = &m.TopicData.items[0].PartitionData.items[0];
    assert_int_equal(pd->Index, 5);
    assert_int_equal(pd->Records.len, 300);
    assert_ptr_equal(pd->Records.ptr, body + sizeof(head)); /* a view, not a copy */

    trib_buf_t b;
    trib_buf_init(&b);
    assert_int_equal(ProduceRequest_encode(&m, &b, 3), 0);
    assert_int_equal(trib_buf_iovcnt(&b), 2); /* header bytes + the records by reference */
    struct iovec iov[2];
    trib_buf_iovec(&b, iov, 2);
    assert_ptr_equal(iov[1].iov_base, body + sizeof(head));
    size_t len;
    const uint8_t *p = trib_buf_flatten(&b, &len);
    assert_int_equal(len, n);
    assert_memory_equal(p, body, n);

    /* A transactional id set on v2 cannot be dropped silently. */
    m.TransactionalId = trib_kstr("txn");
    trib_buf_reset(&b);
    assert_int_equal(ProduceRequest_encode(&m, &b, 2), TRIB_EUNSUPPORTED_VERSION);
    /* A topic name cannot be null. */
    m.TransactionalId = trib_kstr(NULL);
    m.TopicData.items[0].Name = trib_kstr(NULL);
    trib_buf_reset(&b);
    assert_int_equal(ProduceRequest_encode(&m, &b, 3), TRIB_EMALFORMED);
    trib_buf_fini(&b);
    trib_arena_fini(&a);
}

static void test_tagged_fields(void **state)
{
    (void)state;
    /* ApiVersionsResponse v3 with one known tag (1: FinalizedFeaturesEpoch)
     * and two unknown ones (0x07 before and 0x21 after it would be out of
     * order, so 7 and 33 both after). */
    static const uint8_t body[] = {
        0x00, 0x00,                                           /* ErrorCode */
        0x02,                                                 /* ApiKeys: 1 element */
        0x00, 0x00, 0x00, 0x00, 0x00, 0x09, 0x00,             /*   Produce 0-9, no tags */
        0x00, 0x00, 0x00, 0x00,                               /* ThrottleTimeMs */
        0x03,                                                 /* 3 tagged fields */
        0x01, 0x08, 0,    0,    0,    0,    0,    0, 0, 0x05, /* tag 1, 8 bytes: epoch 5 */
        0x07, 0x02, 'x',  'y',                                /* tag 7: unknown */
        0x21, 0x00,                                           /* tag 33: unknown, empty */
    };
    trib_arena_t a;
    trib_arena_init(&a);
    ApiVersionsResponse m;
    trib_slice_t s = trib_slice_make(body, sizeof(body));
    assert_int_equal(ApiVersionsResponse_decode(&m, &s, 3, &a), 0);
    assert_int_equal(trib_slice_remaining(&s), 0);
    assert_int_equal(m.ApiKeys.count, 1);
    assert_int_equal(m.ApiKeys.items[0].MaxVersion, 9);
    assert_int_equal(m.FinalizedFeaturesEpoch, 5);
    assert_int_equal(m.SupportedFeatures.count, 0);
    assert_int_equal(m.unknown_tags.count, 2);
    assert_int_equal(m.unknown_tags.items[0].tag, 7);
    assert_int_equal(m.unknown_tags.items[0].data.len, 2);
    assert_int_equal(m.unknown_tags.items[1].tag, 33);

    trib_buf_t b;
    trib_buf_init(&b);
    assert_int_equal(ApiVersionsResponse_encode(&m, &b, 3), 0);
    size_t n;
    const uint8_t *p = trib_buf_flatten(&b, &n);
    assert_int_equal(n, sizeof(body));
    assert_memory_equal(p, body, n);

    /* JSON keeps known tagged fields, drops unknown ones. */
    char *j = json_of(&ApiVersionsResponse_codec, &m, 3);
    assert_non_null(strstr(j, "\"FinalizedFeaturesEpoch\":5"));
    assert_non_null(strstr(j, "\"ZkMigrationReady\":false"));
    assert_null(strstr(j, "xy"));
    free(j);

    /* At v2 (not flexible) unknown tags cannot be written. */
    trib_buf_reset(&b);
    m.FinalizedFeaturesEpoch = -1;
    assert_int_equal(ApiVersionsResponse_encode(&m, &b, 2), TRIB_EUNSUPPORTED_VERSION);
    /* Unknown tags out of order, or colliding with a known tag, are refused. */
    m.FinalizedFeaturesEpoch = 5;
    m.unknown_tags.items[0].tag = 1;
    trib_buf_reset(&b);
    assert_int_equal(ApiVersionsResponse_encode(&m, &b, 3), TRIB_EMALFORMED);
    m.unknown_tags.items[0].tag = 40;
    trib_buf_reset(&b);
    assert_int_equal(ApiVersionsResponse_encode(&m, &b, 3), TRIB_EMALFORMED);
    trib_buf_fini(&b);

    /* Decode: tags must ascend, and a known tag must fill its size exactly. */
    uint8_t bad[sizeof(body)];
    memcpy(bad, body, sizeof(body));
    bad[25] = 0x05; /* tag 7 -> tag 5, still ascending: fine */
    s = trib_slice_make(bad, sizeof(bad));
    assert_int_equal(ApiVersionsResponse_decode(&m, &s, 3, &a), 0);
    bad[25] = 0x01; /* tag 1 twice */
    s = trib_slice_make(bad, sizeof(bad));
    assert_int_equal(ApiVersionsResponse_decode(&m, &s, 3, &a), TRIB_EMALFORMED);
    memcpy(bad, body, sizeof(body));
    bad[16] = 0x09; /* epoch declared 9 bytes: it reads 8 and leaves one */
    s = trib_slice_make(bad, sizeof(bad));
    assert_int_not_equal(ApiVersionsResponse_decode(&m, &s, 3, &a), 0);
    trib_arena_fini(&a);
}

static const uint8_t *encode_view(trib_buf_t *b, const trib_kafka_codec_t *c, const void *m,
                                  int16_t v, size_t *n)
{
    trib_buf_reset(b);
    assert_int_equal(c->encode(m, b, v), 0);
    return trib_buf_flatten(b, n);
}

static void test_tagged_struct_and_nullable_struct(void **state)
{
    (void)state;
    trib_arena_t a;
    trib_arena_init(&a);
    trib_buf_t b;
    trib_buf_init(&b);
    size_t n0, n1;

    /* A tagged struct (CurrentLeader, tag 0 of ProduceResponse v10+
     * partitions) is written only when it differs from the default struct. */
    ProduceResponse r;
    ProduceResponse_TopicProduceResponse t;
    ProduceResponse_PartitionProduceResponse pr;
    ProduceResponse_init(&r);
    ProduceResponse_TopicProduceResponse_init(&t);
    ProduceResponse_PartitionProduceResponse_init(&pr);
    assert_int_equal(pr.LogAppendTimeMs, -1);
    assert_int_equal(pr.CurrentLeader.LeaderId, -1);
    t.Name = trib_kstr("t");
    t.PartitionResponses.items = &pr;
    t.PartitionResponses.count = 1;
    r.Responses.items = &t;
    r.Responses.count = 1;
    (void)encode_view(&b, &ProduceResponse_codec, &r, 10, &n0);
    pr.CurrentLeader.LeaderId = 3;
    const uint8_t *p = encode_view(&b, &ProduceResponse_codec, &r, 10, &n1);
    /* + tag, size, LeaderId, LeaderEpoch, the struct's own empty tag section */
    assert_int_equal(n1, n0 + 1 + 1 + 4 + 4 + 1);
    ProduceResponse d;
    trib_slice_t s = trib_slice_make(p, n1);
    assert_int_equal(ProduceResponse_decode(&d, &s, 10, &a), 0);
    assert_int_equal(d.Responses.items[0].PartitionResponses.items[0].CurrentLeader.LeaderId, 3);
    assert_int_equal(d.Responses.items[0].PartitionResponses.items[0].CurrentLeader.LeaderEpoch,
                     -1);
    /* v9 has no CurrentLeader and it is not ignorable. */
    trib_buf_reset(&b);
    assert_int_equal(ProduceResponse_encode(&r, &b, 9), TRIB_EUNSUPPORTED_VERSION);

    /* A nullable struct: int8 -1 for null, 1 then the struct when present. */
    ConsumerGroupHeartbeatResponse h;
    ConsumerGroupHeartbeatResponse_init(&h);
    assert_null(h.Assignment);
    assert_int_equal(h.ErrorMessage.len, -1);
    p = encode_view(&b, &ConsumerGroupHeartbeatResponse_codec, &h, 0, &n0);
    /* throttle, error, message (null), member id (null), epoch, interval, assignment, tags */
    assert_int_equal(n0, 4 + 2 + 1 + 1 + 4 + 4 + 1 + 1);
    assert_int_equal(p[16], 0xff);
    ConsumerGroupHeartbeatResponse_Assignment asg;
    ConsumerGroupHeartbeatResponse_TopicPartitions tp;
    ConsumerGroupHeartbeatResponse_Assignment_init(&asg);
    ConsumerGroupHeartbeatResponse_TopicPartitions_init(&tp);
    int32_t parts[] = {0, 2};
    tp.TopicId.b[15] = 1;
    tp.Partitions.items = parts;
    tp.Partitions.count = 2;
    asg.TopicPartitions.items = &tp;
    asg.TopicPartitions.count = 1;
    h.Assignment = &asg;
    p = encode_view(&b, &ConsumerGroupHeartbeatResponse_codec, &h, 0, &n1);
    assert_int_equal(p[16], 0x01);
    s = trib_slice_make(p, n1);
    ConsumerGroupHeartbeatResponse hd;
    assert_int_equal(ConsumerGroupHeartbeatResponse_decode(&hd, &s, 0, &a), 0);
    assert_non_null(hd.Assignment);
    assert_int_equal(hd.Assignment->TopicPartitions.count, 1);
    assert_int_equal(hd.Assignment->TopicPartitions.items[0].Partitions.items[1], 2);
    char *j = json_of(&ConsumerGroupHeartbeatResponse_codec, &hd, 0);
    assert_non_null(strstr(j, "\"Assignment\":{\"TopicPartitions\":[{\"TopicId\":"
                              "\"00000000000000000000000000000001\",\"Partitions\":[0,2]}]}"));
    assert_non_null(strstr(j, "\"ErrorMessage\":null"));
    free(j);
    trib_buf_fini(&b);
    trib_arena_fini(&a);
}

static void test_hostile_lengths(void **state)
{
    (void)state;
    trib_arena_t a;
    trib_arena_init(&a);
    trib_arena_set_limit(&a, 1 << 20);
    MetadataRequest m;
    /* A huge topic count with nothing behind it: refused before allocating. */
    static const uint8_t huge[] = {0x7f, 0xff, 0xff, 0xff, 0x00};
    trib_slice_t s = trib_slice_make(huge, sizeof(huge));
    assert_int_equal(MetadataRequest_decode(&m, &s, 1, &a), TRIB_ETRUNCATED);
    assert_int_equal(trib_arena_used(&a), 0);
    /* Negative lengths other than -1. */
    static const uint8_t neg[] = {0xff, 0xff, 0xff, 0xfe};
    s = trib_slice_make(neg, sizeof(neg));
    assert_int_equal(MetadataRequest_decode(&m, &s, 1, &a), TRIB_EMALFORMED);
    static const uint8_t negstr[] = {0x00, 0x00, 0x00, 0x01, 0xff, 0xfe};
    s = trib_slice_make(negstr, sizeof(negstr));
    assert_int_equal(MetadataRequest_decode(&m, &s, 1, &a), TRIB_EMALFORMED);
    /* A null topic name where v1 does not allow it (nullable from v10). */
    static const uint8_t nullname[] = {0x00, 0x00, 0x00, 0x01, 0xff, 0xff};
    s = trib_slice_make(nullname, sizeof(nullname));
    assert_int_equal(MetadataRequest_decode(&m, &s, 1, &a), TRIB_EMALFORMED);
    /* String longer than the bytes left. */
    static const uint8_t longstr[] = {0x00, 0x00, 0x00, 0x01, 0x00, 0x09, 'a'};
    s = trib_slice_make(longstr, sizeof(longstr));
    assert_int_equal(MetadataRequest_decode(&m, &s, 1, &a), TRIB_ETRUNCATED);
    /* Flexible (v9): compact array count 2^32-1 and an overlong varint. */
    static const uint8_t bigc[] = {0xff, 0xff, 0xff, 0xff, 0x0f, 0x00};
    s = trib_slice_make(bigc, sizeof(bigc));
    assert_int_equal(MetadataRequest_decode(&m, &s, 9, &a), TRIB_ETRUNCATED);
    static const uint8_t overlong[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    s = trib_slice_make(overlong, sizeof(overlong));
    assert_int_equal(MetadataRequest_decode(&m, &s, 9, &a), TRIB_EMALFORMED);
    /* Many tagged fields claimed, none there. */
    static const uint8_t tags[] = {0x01, 0x01, 0x00, 0x00, 0xff, 0x0f};
    s = trib_slice_make(tags, sizeof(tags));
    assert_int_equal(MetadataRequest_decode(&m, &s, 9, &a), TRIB_ETRUNCATED);
    /* The arena limit is the last bound: 200k empty structs fit the input
     * but not a 1 KiB arena. */
    trib_arena_t small;
    trib_arena_init(&small);
    trib_arena_set_limit(&small, 1024);
    size_t cnt = 200000;
    uint8_t *in = calloc(1, 4 + cnt * 2);
    assert_non_null(in);
    in[0] = 0x00;
    in[1] = 0x03;
    in[2] = 0x0d;
    in[3] = 0x40; /* 200000 topics, each a 2-byte empty name */
    s = trib_slice_make(in, 4 + cnt * 2);
    assert_int_equal(MetadataRequest_decode(&m, &s, 1, &small), TRIB_ETOO_LARGE);
    free(in);
    trib_arena_fini(&small);
    trib_arena_fini(&a);
}

static void test_json_escaping(void **state)
{
    (void)state;
    trib_buf_t b;
    trib_buf_init(&b);
    const char in[] = "q\"b\\n\n\x01\xc3\xa9\xff\xe2\x80\xa8\xe2\x80\xa9";
    trib_kafka_json_str(&b, in, (int32_t)(sizeof(in) - 1));
    trib_kafka_json_str(&b, NULL, -1);
    size_t n;
    const uint8_t *p = trib_buf_flatten(&b, &n);
    const char want[] = "\"q\\\"b\\\\n\\n\\u0001\xc3\xa9\\ufffd\\u2028\\u2029\"null";
    assert_int_equal(n, sizeof(want) - 1);
    assert_memory_equal(p, want, n);
    trib_buf_fini(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tables),
        cmocka_unit_test(test_metadata_v1_request),
        cmocka_unit_test(test_api_versions_requests),
        cmocka_unit_test(test_produce_v3_zero_copy),
        cmocka_unit_test(test_tagged_fields),
        cmocka_unit_test(test_tagged_struct_and_nullable_struct),
        cmocka_unit_test(test_hostile_lengths),
        cmocka_unit_test(test_json_escaping),
        cmocka_unit_test(test_every_codec_every_version),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
