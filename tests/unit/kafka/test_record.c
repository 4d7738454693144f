/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Record batch v2: known vectors assembled by hand from the protocol docs
 * (CRCs from an independent CRC32C), round trips through every codec,
 * CRC and structure errors, varint edge cases inside records, the batch
 * splitter with a partial tail, broker stamps, control records, and
 * hostile input: every truncation and random bit flips of valid batches,
 * compressed or not, must fail cleanly or parse within bounds (ASan/UBSan
 * runs check the "within bounds").
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tributary/buf.h"
#include "tributary/compress.h"
#include "tributary/crc32c.h"
#include "tributary/error.h"
#include "tributary/record.h"

static const int all_codecs[] = {TRIB_CODEC_NONE, TRIB_CODEC_GZIP, TRIB_CODEC_SNAPPY,
                                 TRIB_CODEC_LZ4, TRIB_CODEC_ZSTD};
#define NCODECS (sizeof(all_codecs) / sizeof(all_codecs[0]))
#define MAXD (16u << 20)

static uint64_t rng_state = 0x2545F4914F6CDD1Dull;
static uint64_t rng(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

/* A built batch, flattened into malloc'd memory of exactly its size. */
typedef struct {
    uint8_t *p;
    size_t len;
} blob_t;

static blob_t flat(trib_buf_t *b)
{
    blob_t o;
    o.len = trib_buf_len(b);
    o.p = malloc(o.len ? o.len : 1);
    assert_non_null(o.p);
    assert_int_equal(trib_buf_copyout(b, 0, o.p, o.len), o.len);
    return o;
}

static trib_record_in_t rin(const char *key, const char *value, int64_t ts)
{
    trib_record_in_t r;
    memset(&r, 0, sizeof(r));
    r.key = key ? trib_record_bytes(key, (int32_t)strlen(key)) : trib_record_null();
    r.value = value ? trib_record_bytes(value, (int32_t)strlen(value)) : trib_record_null();
    r.timestamp = ts;
    return r;
}

static void assert_view(trib_record_bytes_t v, const char *s)
{
    if (!s) {
        assert_int_equal(v.len, -1);
        assert_null(v.ptr);
        return;
    }
    assert_int_equal(v.len, (int32_t)strlen(s));
    assert_memory_equal(v.ptr, s, strlen(s));
}

/* ---- known vectors -------------------------------------------------------- */

/*
 * One record, key "k", value "v", timestamp 1000, no producer, leader
 * epoch -1. CRC 0x716a6189 from a separate CRC32C implementation.
 */
/* clang-format off */
static const uint8_t vec1[] = {
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* baseOffset 0 */
    0x00, 0x00, 0x00, 0x3a,                         /* batchLength 58 */
    0xff, 0xff, 0xff, 0xff,                         /* partitionLeaderEpoch -1 */
    0x02,                                           /* magic */
    0x71, 0x6a, 0x61, 0x89,                         /* crc */
    0x00, 0x00,                                     /* attributes */
    0x00, 0x00, 0x00, 0x00,                         /* lastOffsetDelta 0 */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0xe8, /* baseTimestamp 1000 */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0xe8, /* maxTimestamp 1000 */
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, /* producerId -1 */
    0xff, 0xff,                                     /* producerEpoch -1 */
    0xff, 0xff, 0xff, 0xff,                         /* baseSequence -1 */
    0x00, 0x00, 0x00, 0x01,                         /* records 1 */
    0x10,                                           /* length 8 */
    0x00,                                           /* attributes */
    0x00,                                           /* timestampDelta 0 */
    0x00,                                           /* offsetDelta 0 */
    0x02, 'k',                                      /* key */
    0x02, 'v',                                      /* value */
    0x00,                                           /* headers 0 */
};

/*
 * Transactional, base offset 100, leader epoch 7, producer 42/3/9, two
 * records with an offset gap (deltas 0 and 2), a null value, a null key,
 * headers with a null value and an empty key, a two-byte timestamp delta.
 */
static const uint8_t vec2[] = {
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x64, /* baseOffset 100 */
    0x00, 0x00, 0x00, 0x4d,                         /* batchLength 77 */
    0x00, 0x00, 0x00, 0x07,                         /* partitionLeaderEpoch 7 */
    0x02,                                           /* magic */
    0xce, 0xc8, 0x68, 0x09,                         /* crc */
    0x00, 0x10,                                     /* attributes: transactional */
    0x00, 0x00, 0x00, 0x02,                         /* lastOffsetDelta 2 */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x13, 0x88, /* baseTimestamp 5000 */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x14, 0xb4, /* maxTimestamp 5300 */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x2a, /* producerId 42 */
    0x00, 0x03,                                     /* producerEpoch 3 */
    0x00, 0x00, 0x00, 0x09,                         /* baseSequence 9 */
    0x00, 0x00, 0x00, 0x02,                         /* records 2 */
    /* record 0 */
    0x1c,                   /* length 14 */
    0x00, 0x00, 0x00,       /* attributes, timestampDelta 0, offsetDelta 0 */
    0x04, 'a', 'b',         /* key "ab" */
    0x01,                   /* value null */
    0x04,                   /* 2 headers */
    0x02, 'h', 0x01,        /* "h" = null */
    0x00, 0x02, 'x',        /* "" = "x" */
    /* record 1 */
    0x18,                   /* length 12 */
    0x00, 0xd8, 0x04, 0x04, /* attributes, timestampDelta 300, offsetDelta 2 */
    0x01,                   /* key null */
    0x0a, 'h', 'e', 'l', 'l', 'o', /* value "hello" */
    0x00,                   /* no headers */
};
/* clang-format on */

static void test_vector1_build_and_parse(void **state)
{
    (void)state;
    trib_buf_t out;
    trib_buf_init(&out);
    trib_batch_opts_t o;
    trib_batch_opts_init(&o);
    trib_batch_builder_t bb;
    assert_int_equal(trib_batch_builder_init(&bb, &out, &o), 0);
    trib_record_in_t r = rin("k", "v", 1000);
    assert_int_equal(trib_batch_builder_add(&bb, &r), 0);
    assert_int_equal(trib_batch_builder_size(&bb), sizeof(vec1));
    assert_int_equal(trib_batch_builder_finish(&bb), 0);
    assert_int_equal(trib_batch_builder_add(&bb, &r), TRIB_ESTATE);
    trib_batch_builder_fini(&bb);
    blob_t b = flat(&out);
    assert_int_equal(b.len, sizeof(vec1));
    assert_memory_equal(b.p, vec1, sizeof(vec1));

    trib_batch_t batch;
    assert_int_equal(trib_batch_parse(&batch, vec1, sizeof(vec1), 0), 0);
    assert_int_equal(batch.base_offset, 0);
    assert_int_equal(batch.batch_length, 58);
    assert_int_equal(batch.partition_leader_epoch, -1);
    assert_int_equal(batch.magic, 2);
    assert_int_equal(batch.crc, 0x716a6189u);
    assert_int_equal(batch.record_count, 1);
    assert_int_equal(batch.producer_id, -1);
    assert_int_equal(batch.size, sizeof(vec1));
    assert_int_equal(trib_batch_compute_crc(vec1, sizeof(vec1)), 0x716a6189u);
    assert_int_equal(trib_batch_codec(&batch), TRIB_CODEC_NONE);
    assert_false(trib_batch_is_transactional(&batch));
    trib_record_iter_t it;
    assert_int_equal(trib_record_iter_init(&it, &batch, NULL, MAXD), 0);
    trib_record_t rec;
    assert_int_equal(trib_record_iter_next(&it, &rec), 1);
    assert_view(rec.key, "k");
    assert_view(rec.value, "v");
    assert_int_equal(rec.timestamp, 1000);
    assert_int_equal(rec.offset, 0);
    assert_int_equal(rec.header_count, 0);
    assert_int_equal(rec.raw_len, 9);
    assert_ptr_equal(rec.raw, vec1 + 61);
    assert_int_equal(trib_record_iter_next(&it, &rec), 0);
    assert_int_equal(trib_record_iter_next(&it, &rec), 0);
    trib_record_iter_fini(&it);
    free(b.p);
    trib_buf_fini(&out);
}

static void test_vector2_build_and_parse(void **state)
{
    (void)state;
    trib_buf_t out;
    trib_buf_init(&out);
    trib_buf_put_i32(&out, 12345); /* a batch need not start the buffer */
    trib_batch_opts_t o;
    trib_batch_opts_init(&o);
    o.base_offset = 100;
    o.partition_leader_epoch = 7;
    o.producer_id = 42;
    o.producer_epoch = 3;
    o.base_sequence = 9;
    o.transactional = true;
    trib_batch_builder_t bb;
    assert_int_equal(trib_batch_builder_init(&bb, &out, &o), 0);
    trib_record_header_t hs[2] = {
        {trib_record_bytes("h", 1), trib_record_null()},
        {trib_record_bytes("", 0), trib_record_bytes("x", 1)},
    };
    trib_record_in_t r0 = rin("ab", NULL, 5000);
    r0.headers = hs;
    r0.header_count = 2;
    trib_record_in_t r1 = rin(NULL, "hello", 5300);
    assert_int_equal(trib_batch_builder_add(&bb, &r0), 0);
    assert_int_equal(trib_batch_builder_add_at(&bb, 0, &r1), -EINVAL); /* not increasing */
    trib_batch_builder_fini(&bb);

    trib_buf_reset(&out);
    trib_buf_put_i32(&out, 12345);
    assert_int_equal(trib_batch_builder_init(&bb, &out, &o), 0);
    assert_int_equal(trib_batch_builder_add(&bb, &r0), 0);
    assert_int_equal(trib_batch_builder_add_at(&bb, 2, &r1), 0);
    assert_int_equal(trib_batch_builder_count(&bb), 2);
    assert_int_equal(trib_batch_builder_finish(&bb), 0);
    trib_batch_builder_fini(&bb);
    blob_t b = flat(&out);
    assert_int_equal(b.len, 4 + sizeof(vec2));
    assert_memory_equal(b.p + 4, vec2, sizeof(vec2));
    free(b.p);
    trib_buf_fini(&out);

    trib_batch_t batch;
    assert_int_equal(trib_batch_parse(&batch, vec2, sizeof(vec2), 0), 0);
    assert_true(trib_batch_is_transactional(&batch));
    assert_false(trib_batch_is_control(&batch));
    assert_int_equal(trib_batch_timestamp_type(&batch), TRIB_TIMESTAMP_CREATE_TIME);
    assert_int_equal(batch.last_offset_delta, 2);
    assert_int_equal(trib_batch_last_offset(&batch), 102);
    assert_int_equal(batch.base_timestamp, 5000);
    assert_int_equal(batch.max_timestamp, 5300);
    assert_int_equal(batch.producer_id, 42);
    assert_int_equal(batch.producer_epoch, 3);
    assert_int_equal(batch.base_sequence, 9);
    assert_int_equal(batch.partition_leader_epoch, 7);

    trib_arena_t arena;
    trib_arena_init(&arena);
    trib_record_iter_t it;
    assert_int_equal(trib_record_iter_init(&it, &batch, &arena, MAXD), 0);
    trib_record_t rec;
    assert_int_equal(trib_record_iter_next(&it, &rec), 1);
    assert_view(rec.key, "ab");
    assert_view(rec.value, NULL);
    assert_int_equal(rec.offset, 100);
    assert_int_equal(rec.timestamp, 5000);
    assert_int_equal(rec.header_count, 2);
    trib_record_header_iter_t hi;
    trib_record_header_t h;
    trib_record_header_iter_init(&hi, &rec);
    assert_int_equal(trib_record_header_iter_next(&hi, &h), 1);
    assert_view(h.key, "h");
    assert_view(h.value, NULL);
    assert_int_equal(trib_record_header_iter_next(&hi, &h), 1);
    assert_view(h.key, "");
    assert_view(h.value, "x");
    assert_int_equal(trib_record_header_iter_next(&hi, &h), 0);
    assert_int_equal(trib_record_iter_next(&it, &rec), 1);
    assert_view(rec.key, NULL);
    assert_view(rec.value, "hello");
    assert_int_equal(rec.offset, 102);
    assert_int_equal(rec.offset_delta, 2);
    assert_int_equal(rec.timestamp_delta, 300);
    assert_int_equal(rec.timestamp, 5300);
    assert_int_equal(trib_record_iter_next(&it, &rec), 0);
    trib_record_iter_fini(&it);
    trib_arena_fini(&arena);
}

/* ---- round trips ---------------------------------------------------------- */

typedef struct {
    char key[32];
    uint8_t *value;
    int32_t value_len;
    int64_t ts;
    int nh;
    trib_record_header_t hs[3];
} gen_rec_t;

static const char *const hkeys[] = {"trace", "", "source"};

static void gen_records(gen_rec_t *g, int n, size_t big)
{
    for (int i = 0; i < n; i++) {
        snprintf(g[i].key, sizeof(g[i].key), "key-%d", i);
        g[i].value_len = (i % 7 == 3) ? -1 : (int32_t)((i % 5 == 0) ? big : (size_t)(i * 3));
        g[i].value = NULL;
        if (g[i].value_len > 0) {
            g[i].value = malloc((size_t)g[i].value_len);
            for (int32_t j = 0; j < g[i].value_len; j++) {
                g[i].value[j] = (uint8_t)((j * 7 + i) & 0xff);
            }
        }
        g[i].ts = 1700000000000LL + (i % 3 == 1 ? -i * 1000 : i * 1000);
        g[i].nh = i % 4;
        for (int k = 0; k < g[i].nh && k < 3; k++) {
            g[i].hs[k].key = trib_record_bytes(hkeys[k], (int32_t)strlen(hkeys[k]));
            g[i].hs[k].value = k == 1 ? trib_record_null() : trib_record_bytes(g[i].key, 3);
        }
        if (g[i].nh > 3) {
            g[i].nh = 3;
        }
    }
}

static void free_records(gen_rec_t *g, int n)
{
    for (int i = 0; i < n; i++) {
        free(g[i].value);
    }
}

static trib_record_in_t gen_in(const gen_rec_t *g, int i)
{
    trib_record_in_t r;
    memset(&r, 0, sizeof(r));
    r.key =
        (i % 6 == 2) ? trib_record_null() : trib_record_bytes(g[i].key, (int32_t)strlen(g[i].key));
    r.value =
        g[i].value_len < 0 ? trib_record_null() : trib_record_bytes(g[i].value, g[i].value_len);
    r.timestamp = g[i].ts;
    r.headers = g[i].hs;
    r.header_count = (size_t)g[i].nh;
    return r;
}

static blob_t build_gen(const gen_rec_t *g, int n, int codec, bool borrow)
{
    trib_buf_t out;
    trib_buf_init(&out);
    trib_batch_opts_t o;
    trib_batch_opts_init(&o);
    o.codec = codec;
    o.base_offset = 1000;
    o.producer_id = 77;
    o.producer_epoch = 1;
    o.base_sequence = 500;
    o.borrow_values = borrow;
    trib_batch_builder_t bb;
    assert_int_equal(trib_batch_builder_init(&bb, &out, &o), 0);
    for (int i = 0; i < n; i++) {
        trib_record_in_t r = gen_in(g, i);
        assert_int_equal(trib_batch_builder_add(&bb, &r), 0);
    }
    assert_int_equal(trib_batch_builder_finish(&bb), 0);
    trib_batch_builder_fini(&bb);
    blob_t b = flat(&out);
    trib_buf_fini(&out);
    return b;
}

static void check_gen(const uint8_t *p, size_t len, const gen_rec_t *g, int n, int codec,
                      trib_arena_t *arena)
{
    trib_batch_t batch;
    assert_int_equal(trib_batch_parse(&batch, p, len, 0), 0);
    assert_int_equal(trib_batch_codec(&batch), codec);
    assert_int_equal(batch.record_count, n);
    assert_int_equal(batch.last_offset_delta, n - 1);
    int64_t maxts = INT64_MIN;
    for (int i = 0; i < n; i++) {
        maxts = g[i].ts > maxts ? g[i].ts : maxts;
    }
    assert_int_equal(batch.max_timestamp, maxts);
    assert_int_equal(batch.base_timestamp, g[0].ts);
    trib_record_iter_t it;
    assert_int_equal(trib_record_iter_init(&it, &batch, arena, MAXD), 0);
    trib_record_t rec;
    for (int i = 0; i < n; i++) {
        assert_int_equal(trib_record_iter_next(&it, &rec), 1);
        trib_record_in_t want = gen_in(g, i);
        assert_int_equal(rec.offset, 1000 + i);
        assert_int_equal(rec.timestamp, g[i].ts);
        assert_int_equal(rec.key.len, want.key.len);
        if (want.key.len > 0) {
            assert_memory_equal(rec.key.ptr, want.key.ptr, (size_t)want.key.len);
        }
        assert_int_equal(rec.value.len, want.value.len);
        if (want.value.len > 0) {
            assert_memory_equal(rec.value.ptr, want.value.ptr, (size_t)want.value.len);
        }
        assert_int_equal(rec.header_count, g[i].nh);
        trib_record_header_iter_t hi;
        trib_record_header_iter_init(&hi, &rec);
        trib_record_header_t h;
        for (int k = 0; k < g[i].nh; k++) {
            assert_int_equal(trib_record_header_iter_next(&hi, &h), 1);
            assert_int_equal(h.key.len, g[i].hs[k].key.len);
            assert_memory_equal(h.key.ptr, g[i].hs[k].key.ptr, (size_t)h.key.len);
            assert_int_equal(h.value.len, g[i].hs[k].value.len);
        }
        assert_int_equal(trib_record_header_iter_next(&hi, &h), 0);
    }
    assert_int_equal(trib_record_iter_next(&it, &rec), 0);
    trib_record_iter_fini(&it);
}

static void test_round_trip_codecs(void **state)
{
    (void)state;
    enum { N = 200 };
    static gen_rec_t g[N];
    gen_records(g, N, 5000);
    for (size_t c = 0; c < NCODECS; c++) {
        for (int borrow = 0; borrow < 2; borrow++) {
            blob_t b = build_gen(g, N, all_codecs[c], borrow);
            check_gen(b.p, b.len, g, N, all_codecs[c], NULL);
            trib_arena_t arena;
            trib_arena_init(&arena);
            check_gen(b.p, b.len, g, N, all_codecs[c], &arena);
            trib_arena_fini(&arena);
            /* The same records, uncompressed: identical record bytes. */
            if (all_codecs[c] != TRIB_CODEC_NONE && !borrow) {
                blob_t plain = build_gen(g, N, TRIB_CODEC_NONE, false);
                trib_batch_t bp, bc;
                assert_int_equal(trib_batch_parse(&bp, plain.p, plain.len, 0), 0);
                assert_int_equal(trib_batch_parse(&bc, b.p, b.len, 0), 0);
                trib_decompress_out_t d;
                trib_decompress_out_init(&d);
                assert_int_equal(
                    trib_decompress(all_codecs[c], bc.records, bc.records_len, MAXD, &d), 0);
                assert_int_equal(d.len, bp.records_len);
                assert_memory_equal(d.data, bp.records, d.len);
                /* And iterating caller-decompressed records works too. */
                trib_record_iter_t it;
                assert_int_equal(trib_record_iter_init_raw(&it, &bc, d.data, d.len), 0);
                trib_record_t rec;
                int seen = 0;
                while (trib_record_iter_next(&it, &rec) == 1) {
                    seen++;
                }
                assert_int_equal(seen, N);
                trib_record_iter_fini(&it);
                trib_decompress_out_fini(&d);
                free(plain.p);
            }
            free(b.p);
        }
    }
    free_records(g, N);
}

static void test_empty_batch(void **state)
{
    (void)state;
    for (size_t c = 0; c < NCODECS; c++) {
        trib_buf_t out;
        trib_buf_init(&out);
        trib_batch_opts_t o;
        trib_batch_opts_init(&o);
        o.codec = all_codecs[c];
        trib_batch_builder_t bb;
        assert_int_equal(trib_batch_builder_init(&bb, &out, &o), 0);
        assert_int_equal(trib_batch_builder_finish(&bb), 0);
        trib_batch_builder_fini(&bb);
        blob_t b = flat(&out);
        trib_batch_t batch;
        assert_int_equal(trib_batch_parse(&batch, b.p, b.len, 0), 0);
        assert_int_equal(batch.record_count, 0);
        assert_int_equal(batch.base_timestamp, -1);
        assert_int_equal(batch.max_timestamp, -1);
        trib_record_iter_t it;
        assert_int_equal(trib_record_iter_init(&it, &batch, NULL, MAXD), 0);
        trib_record_t rec;
        assert_int_equal(trib_record_iter_next(&it, &rec), 0);
        trib_record_iter_fini(&it);
        free(b.p);
        trib_buf_fini(&out);
    }
}

/* ---- errors --------------------------------------------------------------- */

static uint8_t *dup(const void *p, size_t n)
{
    uint8_t *d = malloc(n);
    memcpy(d, p, n);
    return d;
}

/* Iterates all records; returns the first non-record result. */
static int drain(const uint8_t *p, size_t len, unsigned flags, int *count)
{
    trib_batch_t batch;
    int rc = trib_batch_parse(&batch, p, len, flags);
    *count = 0;
    if (rc) {
        return rc;
    }
    trib_record_iter_t it;
    rc = trib_record_iter_init(&it, &batch, NULL, 1u << 20);
    trib_record_t rec;
    while ((rc = trib_record_iter_next(&it, &rec)) == 1) {
        /* Touch every byte of every view. */
        volatile uint8_t sink = 0;
        for (int32_t i = 0; i < rec.key.len; i++) {
            sink ^= rec.key.ptr[i];
        }
        for (int32_t i = 0; i < rec.value.len; i++) {
            sink ^= rec.value.ptr[i];
        }
        trib_record_header_iter_t hi;
        trib_record_header_t h;
        trib_record_header_iter_init(&hi, &rec);
        int hr;
        while ((hr = trib_record_header_iter_next(&hi, &h)) == 1) {
            for (int32_t i = 0; i < h.key.len; i++) {
                sink ^= h.key.ptr[i];
            }
            for (int32_t i = 0; i < h.value.len; i++) {
                sink ^= h.value.ptr[i];
            }
        }
        assert_int_equal(hr, 0);
        (void)sink;
        (*count)++;
    }
    trib_record_iter_fini(&it);
    return rc;
}

static void test_crc_and_header_errors(void **state)
{
    (void)state;
    int n;
    uint8_t *b = dup(vec2, sizeof(vec2));
    /* A flipped bit anywhere in the CRC range is caught. */
    for (size_t i = TRIB_BATCH_OFF_ATTRIBUTES; i < sizeof(vec2); i++) {
        b[i] ^= 0x04;
        assert_int_equal(drain(b, sizeof(vec2), 0, &n), TRIB_ECRC);
        b[i] ^= 0x04;
    }
    /* ...and in the stored CRC itself. */
    b[TRIB_BATCH_OFF_CRC + 3] ^= 1;
    assert_int_equal(drain(b, sizeof(vec2), 0, &n), TRIB_ECRC);
    b[TRIB_BATCH_OFF_CRC + 3] ^= 1;
    /* Outside the CRC: base offset and leader epoch may change. */
    b[3] ^= 0xff;
    b[TRIB_BATCH_OFF_LEADER_EPOCH] ^= 0x10;
    assert_int_equal(drain(b, sizeof(vec2), 0, &n), 0);
    assert_int_equal(n, 2);
    /* Magic 1 and 0: the old message formats are not ours. */
    b[TRIB_BATCH_OFF_MAGIC] = 1;
    assert_int_equal(drain(b, sizeof(vec2), 0, &n), TRIB_EUNSUPPORTED_VERSION);
    b[TRIB_BATCH_OFF_MAGIC] = 2;
    /* batchLength below the header, negative, or past the input. */
    b[TRIB_BATCH_OFF_LENGTH + 3] = 48;
    assert_int_equal(drain(b, sizeof(vec2), 0, &n), TRIB_EMALFORMED);
    b[TRIB_BATCH_OFF_LENGTH] = 0x80;
    assert_int_equal(drain(b, sizeof(vec2), 0, &n), TRIB_EMALFORMED);
    b[TRIB_BATCH_OFF_LENGTH] = 0;
    b[TRIB_BATCH_OFF_LENGTH + 3] = 0x4e;
    assert_int_equal(drain(b, sizeof(vec2), 0, &n), TRIB_ETRUNCATED);
    b[TRIB_BATCH_OFF_LENGTH + 3] = 0x4d;
    assert_int_equal(drain(b, sizeof(vec2), 0, &n), 0);
    /* Extra bytes after the batch are not its business. */
    uint8_t *longer = malloc(sizeof(vec2) + 5);
    memcpy(longer, vec2, sizeof(vec2));
    memset(longer + sizeof(vec2), 0xee, 5);
    trib_batch_t batch;
    assert_int_equal(trib_batch_parse(&batch, longer, sizeof(vec2) + 5, 0), 0);
    assert_int_equal(batch.size, sizeof(vec2));
    free(longer);
    /* Unknown codec 5: parses (the CRC is fine), iteration refuses it. */
    b[TRIB_BATCH_OFF_ATTRIBUTES + 1] = 0x15;
    assert_int_equal(trib_batch_update_crc(b, sizeof(vec2)), 0);
    assert_int_equal(drain(b, sizeof(vec2), 0, &n), TRIB_EUNSUPPORTED);
    free(b);
}

/*
 * Patches record bytes of a copy of vec2 (keeping or fixing the CRC) and
 * checks the verdict. `at` is relative to the first record.
 */
static int mutate_vec2(size_t at, const uint8_t *bytes, size_t n, int32_t count)
{
    uint8_t *b = dup(vec2, sizeof(vec2));
    if (n) {
        memcpy(b + TRIB_BATCH_HEADER_SIZE + at, bytes, n);
    }
    if (count >= 0) {
        b[TRIB_BATCH_OFF_RECORDS_COUNT + 3] = (uint8_t)count;
    }
    assert_int_equal(trib_batch_update_crc(b, sizeof(vec2)), 0);
    int got;
    int rc = drain(b, sizeof(vec2), 0, &got);
    free(b);
    return rc;
}

static void test_malformed_records(void **state)
{
    (void)state;
    /* Record 0 starts at 0 (length byte), record 1 at 15. */
    uint8_t x;
    /* Record length one too long / too short. */
    x = 0x1e;
    assert_int_equal(mutate_vec2(0, &x, 1, -1), TRIB_EMALFORMED);
    x = 0x1a;
    assert_int_equal(mutate_vec2(0, &x, 1, -1), TRIB_EMALFORMED);
    /* Record length past the end of the batch. */
    x = 0x7e;
    assert_int_equal(mutate_vec2(15, &x, 1, -1), TRIB_EMALFORMED);
    /* Negative record length. */
    x = 0x03;
    assert_int_equal(mutate_vec2(0, &x, 1, -1), TRIB_EMALFORMED);
    /* Key length 3 past the record (the record holds "ab" + 8 more). */
    x = 0x7e;
    assert_int_equal(mutate_vec2(4, &x, 1, -1), TRIB_EMALFORMED);
    /* Key length -2. */
    x = 0x03;
    assert_int_equal(mutate_vec2(4, &x, 1, -1), TRIB_EMALFORMED);
    /* Value length -2 (record 1's value). */
    x = 0x03;
    assert_int_equal(mutate_vec2(15 + 6, &x, 1, -1), TRIB_EMALFORMED);
    /* A null header key (-1). */
    x = 0x01;
    assert_int_equal(mutate_vec2(9, &x, 1, -1), TRIB_EMALFORMED);
    /* Header count -1, and more headers than the bytes can hold. */
    x = 0x01;
    assert_int_equal(mutate_vec2(8, &x, 1, -1), TRIB_EMALFORMED);
    x = 0x06;
    assert_int_equal(mutate_vec2(8, &x, 1, -1), TRIB_EMALFORMED);
    /* Count mismatch: more than there are, fewer than there are. */
    assert_int_equal(mutate_vec2(0, NULL, 0, 3), TRIB_EMALFORMED);
    assert_int_equal(mutate_vec2(0, NULL, 0, 1), TRIB_EMALFORMED);
    /* Count absurdly large for the bytes (bounded before anything). */
    assert_int_equal(mutate_vec2(0, NULL, 0, 0x7f), TRIB_EMALFORMED);
    /* Unchanged: fine. */
    assert_int_equal(mutate_vec2(0, NULL, 0, -1), 0);
}

/* Varints in records: overlong, over-wide, extreme values. */
static void test_record_varints(void **state)
{
    (void)state;
    /* A record by hand with 5-byte (non-minimal) encodings: still valid. */
    static const uint8_t rec_overlong[] = {
        0x1a,                         /* length 13 */
        0x00,                         /* attributes */
        0x80, 0x80, 0x80, 0x80, 0x00, /* timestampDelta 0, five bytes */
        0x80, 0x00,                   /* offsetDelta 0, two bytes */
        0x01,                         /* key null */
        0x02, 'z',                    /* value "z" */
        0x80, 0x00,                   /* no headers, two bytes */
    };
    /* The same with a 6-byte varint for the offset delta: malformed. */
    static const uint8_t rec_6byte[] = {
        0x1a, 0x00, 0x00, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00, 0x01, 0x02, 'z', 0x00, 0x00,
    };
    /* A 5-byte varint whose value passes 32 bits: malformed. */
    static const uint8_t rec_wide[] = {
        0x1a, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0x7f, 0x01, 0x02, 'z', 0x00, 0x00, 0x00,
    };
    /* A varint that never ends inside the record: malformed. */
    static const uint8_t rec_open[] = {0x04, 0x00, 0x80, 0x80};
    struct {
        const uint8_t *rec;
        size_t len;
        int want;
    } cases[] = {
        {rec_overlong, sizeof(rec_overlong), 0},
        {rec_6byte, sizeof(rec_6byte), TRIB_EMALFORMED},
        {rec_wide, sizeof(rec_wide), TRIB_EMALFORMED},
        {rec_open, sizeof(rec_open), TRIB_EMALFORMED},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t len = TRIB_BATCH_HEADER_SIZE + cases[i].len;
        uint8_t *b = calloc(1, len);
        memcpy(b, vec1, TRIB_BATCH_HEADER_SIZE);
        memcpy(b + TRIB_BATCH_HEADER_SIZE, cases[i].rec, cases[i].len);
        b[TRIB_BATCH_OFF_LENGTH + 3] = (uint8_t)(len - 12);
        assert_int_equal(trib_batch_update_crc(b, len), 0);
        int n;
        assert_int_equal(drain(b, len, 0, &n), cases[i].want);
        free(b);
    }

    /* Extreme deltas round-trip, wrapping arithmetic included. */
    static const int64_t tss[] = {0, INT64_MAX, INT64_MIN, -1, 1LL << 40};
    trib_buf_t out;
    trib_buf_init(&out);
    trib_batch_opts_t o;
    trib_batch_opts_init(&o);
    o.base_offset = INT64_MAX - 5; /* offsets wrap past the end */
    trib_batch_builder_t bb;
    assert_int_equal(trib_batch_builder_init(&bb, &out, &o), 0);
    for (size_t i = 0; i < sizeof(tss) / sizeof(tss[0]); i++) {
        trib_record_in_t r = rin("", "", tss[i]);
        int32_t delta = i == 4 ? INT32_MAX : (int32_t)i * 1000;
        assert_int_equal(trib_batch_builder_add_at(&bb, delta, &r), 0);
    }
    trib_record_in_t r = rin("", "", 0);
    assert_int_equal(trib_batch_builder_add(&bb, &r), TRIB_ETOO_LARGE); /* delta past INT32_MAX */
    trib_batch_builder_fini(&bb);
    trib_buf_reset(&out);
    assert_int_equal(trib_batch_builder_init(&bb, &out, &o), 0);
    for (size_t i = 0; i < sizeof(tss) / sizeof(tss[0]); i++) {
        trib_record_in_t ri = rin("", "", tss[i]);
        int32_t delta = i == 4 ? INT32_MAX : (int32_t)i * 1000;
        assert_int_equal(trib_batch_builder_add_at(&bb, delta, &ri), 0);
    }
    assert_int_equal(trib_batch_builder_finish(&bb), 0);
    trib_batch_builder_fini(&bb);
    blob_t b = flat(&out);
    trib_batch_t batch;
    assert_int_equal(trib_batch_parse(&batch, b.p, b.len, 0), 0);
    assert_int_equal(batch.last_offset_delta, INT32_MAX);
    assert_int_equal(batch.max_timestamp, INT64_MAX);
    trib_record_iter_t it;
    assert_int_equal(trib_record_iter_init(&it, &batch, NULL, MAXD), 0);
    trib_record_t rec;
    for (size_t i = 0; i < sizeof(tss) / sizeof(tss[0]); i++) {
        assert_int_equal(trib_record_iter_next(&it, &rec), 1);
        assert_int_equal(rec.timestamp, tss[i]);
        assert_int_equal(rec.offset_delta, i == 4 ? INT32_MAX : (int32_t)i * 1000);
        assert_int_equal(rec.offset,
                         (int64_t)((uint64_t)(INT64_MAX - 5) + (uint64_t)rec.offset_delta));
        assert_int_equal(rec.key.len, 0);
        assert_non_null(rec.key.ptr);
    }
    assert_int_equal(trib_record_iter_next(&it, &rec), 0);
    trib_record_iter_fini(&it);
    free(b.p);
    trib_buf_fini(&out);
}

static void test_builder_rejects(void **state)
{
    (void)state;
    trib_buf_t out;
    trib_buf_init(&out);
    trib_batch_opts_t o;
    trib_batch_opts_init(&o);
    trib_batch_builder_t bb;
    o.codec = 6;
    assert_int_equal(trib_batch_builder_init(&bb, &out, &o), -EINVAL);
    assert_int_equal(trib_batch_builder_finish(&bb), -EINVAL);
    trib_batch_builder_fini(&bb);
    o.codec = 0;
    o.timestamp_type = 2;
    assert_int_equal(trib_batch_builder_init(&bb, &out, &o), -EINVAL);
    trib_batch_builder_fini(&bb);
    o.timestamp_type = 0;

    static const uint8_t e[1] = {0};
    struct {
        trib_record_bytes_t key, value, hkey, hval;
    } bad[] = {
        {{-2, NULL}, {0, NULL}, {0, e}, {0, e}},    {{0, NULL}, {-7, NULL}, {0, e}, {0, e}},
        {{3, NULL}, {0, NULL}, {0, e}, {0, e}},     {{0, NULL}, {0, NULL}, {-1, NULL}, {0, e}},
        {{0, NULL}, {0, NULL}, {0, e}, {-2, NULL}},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        trib_buf_reset(&out);
        assert_int_equal(trib_batch_builder_init(&bb, &out, &o), 0);
        trib_record_header_t h = {bad[i].hkey, bad[i].hval};
        trib_record_in_t r;
        memset(&r, 0, sizeof(r));
        r.key = bad[i].key;
        r.value = bad[i].value;
        r.headers = &h;
        r.header_count = 1;
        assert_int_equal(trib_batch_builder_add(&bb, &r), -EINVAL);
        /* The error sticks. */
        trib_record_in_t ok = rin("a", "b", 1);
        assert_int_equal(trib_batch_builder_add(&bb, &ok), -EINVAL);
        assert_int_equal(trib_batch_builder_finish(&bb), -EINVAL);
        trib_batch_builder_fini(&bb);
    }
    trib_buf_fini(&out);
}

/* ---- batch splitting ------------------------------------------------------ */

static void test_batch_iter(void **state)
{
    (void)state;
    size_t total = sizeof(vec1) + sizeof(vec2) + sizeof(vec1);
    uint8_t *set = malloc(total);
    memcpy(set, vec1, sizeof(vec1));
    memcpy(set + sizeof(vec1), vec2, sizeof(vec2));
    memcpy(set + sizeof(vec1) + sizeof(vec2), vec1, sizeof(vec1));
    /* Every cut: the complete batches, then a partial tail. */
    for (size_t cut = 0; cut <= total; cut++) {
        uint8_t *p = dup(set, cut ? cut : 1);
        trib_batch_iter_t it;
        trib_batch_iter_init(&it, p, cut, 0);
        trib_batch_t b;
        int n = 0, rc;
        size_t used = 0;
        while ((rc = trib_batch_iter_next(&it, &b)) == 1) {
            used += b.size;
            n++;
        }
        assert_int_equal(rc, 0);
        int want = cut >= total ? 3 : cut >= sizeof(vec1) + sizeof(vec2) ? 2 : cut >= sizeof(vec1);
        assert_int_equal(n, want);
        assert_int_equal(trib_batch_iter_partial(&it), cut - used);
        free(p);
    }
    /* A damaged middle batch stops the iteration with its error. */
    set[sizeof(vec1) + 40] ^= 1;
    trib_batch_iter_t it;
    trib_batch_iter_init(&it, set, total, 0);
    trib_batch_t b;
    assert_int_equal(trib_batch_iter_next(&it, &b), 1);
    assert_int_equal(trib_batch_iter_next(&it, &b), TRIB_ECRC);
    assert_int_equal(trib_batch_iter_next(&it, &b), TRIB_ECRC);
    /* ... unless CRCs are skipped. */
    trib_batch_iter_init(&it, set, total, TRIB_BATCH_SKIP_CRC);
    int n = 0;
    while (trib_batch_iter_next(&it, &b) == 1) {
        n++;
    }
    assert_int_equal(n, 3);
    /* An old-format message set in the middle. */
    set[sizeof(vec1) + 40] ^= 1;
    set[sizeof(vec1) + TRIB_BATCH_OFF_MAGIC] = 1;
    trib_batch_iter_init(&it, set, total, 0);
    assert_int_equal(trib_batch_iter_next(&it, &b), 1);
    assert_int_equal(trib_batch_iter_next(&it, &b), TRIB_EUNSUPPORTED_VERSION);
    /* trib_batch_read consumes exactly one batch from a slice. */
    set[sizeof(vec1) + TRIB_BATCH_OFF_MAGIC] = 2;
    trib_slice_t s = trib_slice_make(set, total);
    assert_int_equal(trib_batch_read(&s, &b, 0), 0);
    assert_int_equal(trib_slice_remaining(&s), total - sizeof(vec1));
    assert_int_equal(trib_batch_read(&s, &b, 0), 0);
    assert_int_equal(b.base_offset, 100);
    free(set);
}

/* ---- broker stamps -------------------------------------------------------- */

static void test_stamps(void **state)
{
    (void)state;
    uint8_t *b = dup(vec2, sizeof(vec2));
    assert_int_equal(trib_batch_set_base_offset(b, sizeof(vec2), 1LL << 40), 0);
    assert_int_equal(trib_batch_set_partition_leader_epoch(b, sizeof(vec2), 12), 0);
    trib_batch_t batch;
    assert_int_equal(trib_batch_parse(&batch, b, sizeof(vec2), 0), 0); /* CRC still good */
    assert_int_equal(batch.base_offset, 1LL << 40);
    assert_int_equal(batch.partition_leader_epoch, 12);
    assert_int_equal(batch.crc, 0xcec86809u);

    /* LogAppendTime: every record's timestamp becomes maxTimestamp. */
    assert_int_equal(
        trib_batch_set_max_timestamp(b, sizeof(vec2), TRIB_TIMESTAMP_LOG_APPEND_TIME, 9999), 0);
    assert_int_equal(trib_batch_parse(&batch, b, sizeof(vec2), 0), 0);
    assert_int_equal(trib_batch_timestamp_type(&batch), TRIB_TIMESTAMP_LOG_APPEND_TIME);
    assert_true(trib_batch_is_transactional(&batch)); /* other bits kept */
    assert_int_equal(batch.max_timestamp, 9999);
    trib_record_iter_t it;
    assert_int_equal(trib_record_iter_init(&it, &batch, NULL, MAXD), 0);
    trib_record_t rec;
    while (trib_record_iter_next(&it, &rec) == 1) {
        assert_int_equal(rec.timestamp, 9999);
        assert_int_equal(rec.offset, (1LL << 40) + rec.offset_delta);
    }
    trib_record_iter_fini(&it);
    /* Back to create time restores the original bytes but the offsets. */
    assert_int_equal(
        trib_batch_set_max_timestamp(b, sizeof(vec2), TRIB_TIMESTAMP_CREATE_TIME, 5300), 0);
    assert_memory_equal(b + TRIB_BATCH_OFF_MAGIC, vec2 + TRIB_BATCH_OFF_MAGIC,
                        sizeof(vec2) - TRIB_BATCH_OFF_MAGIC);
    assert_int_equal(trib_batch_set_max_timestamp(b, sizeof(vec2), 3, 0), -EINVAL);
    /* Stamps refuse short or foreign input. */
    assert_int_equal(trib_batch_set_base_offset(b, sizeof(vec2) - 1, 0), TRIB_ETRUNCATED);
    assert_int_equal(trib_batch_update_crc(b, 10), TRIB_ETRUNCATED);
    b[TRIB_BATCH_OFF_MAGIC] = 1;
    assert_int_equal(trib_batch_set_partition_leader_epoch(b, sizeof(vec2), 1),
                     TRIB_EUNSUPPORTED_VERSION);
    free(b);

    /* Builder with LogAppendTime and a fixed base timestamp. */
    trib_buf_t out;
    trib_buf_init(&out);
    trib_batch_opts_t o;
    trib_batch_opts_init(&o);
    o.timestamp_type = TRIB_TIMESTAMP_LOG_APPEND_TIME;
    o.log_append_time = 123456;
    o.use_base_timestamp = true;
    o.base_timestamp = 100;
    o.delete_horizon = true;
    trib_batch_builder_t bb;
    assert_int_equal(trib_batch_builder_init(&bb, &out, &o), 0);
    trib_record_in_t r = rin("k", "v", 150);
    assert_int_equal(trib_batch_builder_add(&bb, &r), 0);
    assert_int_equal(trib_batch_builder_finish(&bb), 0);
    trib_batch_builder_fini(&bb);
    blob_t f = flat(&out);
    assert_int_equal(trib_batch_parse(&batch, f.p, f.len, 0), 0);
    assert_true(trib_batch_has_delete_horizon(&batch));
    assert_int_equal(batch.base_timestamp, 100);
    assert_int_equal(batch.max_timestamp, 123456);
    assert_int_equal(trib_record_iter_init(&it, &batch, NULL, MAXD), 0);
    assert_int_equal(trib_record_iter_next(&it, &rec), 1);
    assert_int_equal(rec.timestamp_delta, 50);
    assert_int_equal(rec.timestamp, 123456);
    trib_record_iter_fini(&it);
    free(f.p);
    trib_buf_fini(&out);
}

/* ---- control records ------------------------------------------------------ */

static void test_control(void **state)
{
    (void)state;
    trib_buf_t out;
    trib_buf_init(&out);
    trib_batch_opts_t o;
    trib_batch_opts_init(&o);
    o.control = true;
    o.transactional = true;
    o.producer_id = 5;
    o.producer_epoch = 2;
    trib_batch_builder_t bb;
    assert_int_equal(trib_batch_builder_init(&bb, &out, &o), 0);
    uint8_t key[TRIB_CONTROL_KEY_SIZE], val[TRIB_CONTROL_MARKER_VALUE_SIZE];
    trib_control_record_key(key, TRIB_CONTROL_COMMIT);
    trib_control_marker_value(val, 17);
    trib_record_in_t r;
    memset(&r, 0, sizeof(r));
    r.key = trib_record_bytes(key, sizeof(key));
    r.value = trib_record_bytes(val, sizeof(val));
    r.timestamp = 42;
    assert_int_equal(trib_batch_builder_add(&bb, &r), 0);
    assert_int_equal(trib_batch_builder_finish(&bb), 0);
    trib_batch_builder_fini(&bb);
    blob_t b = flat(&out);
    assert_memory_equal(key, "\x00\x00\x00\x01", 4);
    assert_memory_equal(val, "\x00\x00\x00\x00\x00\x11", 6);
    trib_batch_t batch;
    assert_int_equal(trib_batch_parse(&batch, b.p, b.len, 0), 0);
    assert_true(trib_batch_is_control(&batch));
    assert_true(trib_batch_is_transactional(&batch));
    assert_int_equal(batch.attributes, 0x30);
    trib_record_iter_t it;
    assert_int_equal(trib_record_iter_init(&it, &batch, NULL, MAXD), 0);
    trib_record_t rec;
    assert_int_equal(trib_record_iter_next(&it, &rec), 1);
    trib_control_record_t c;
    assert_int_equal(trib_control_record_parse(&rec, &c), 0);
    assert_int_equal(c.version, 0);
    assert_int_equal(c.type, TRIB_CONTROL_COMMIT);
    assert_true(c.has_coordinator_epoch);
    assert_int_equal(c.coordinator_epoch, 17);
    trib_record_iter_fini(&it);

    /* Bad keys and values. */
    trib_record_t fake;
    memset(&fake, 0, sizeof(fake));
    fake.key = trib_record_null();
    fake.value = trib_record_null();
    assert_int_equal(trib_control_record_parse(&fake, &c), TRIB_EMALFORMED);
    fake.key = trib_record_bytes("\x00\x00\x00", 3);
    assert_int_equal(trib_control_record_parse(&fake, &c), TRIB_EMALFORMED);
    fake.key = trib_record_bytes("\xff\xff\x00\x00", 4);
    assert_int_equal(trib_control_record_parse(&fake, &c), TRIB_EMALFORMED);
    fake.key = trib_record_bytes("\x00\x00\x00\x00", 4); /* abort, no value */
    assert_int_equal(trib_control_record_parse(&fake, &c), 0);
    assert_int_equal(c.type, TRIB_CONTROL_ABORT);
    assert_false(c.has_coordinator_epoch);
    fake.value = trib_record_bytes("\x00\x00\x00", 3);
    assert_int_equal(trib_control_record_parse(&fake, &c), TRIB_EMALFORMED);
    fake.key = trib_record_bytes("\x00\x01\x00\x02", 4); /* unknown type, later version */
    assert_int_equal(trib_control_record_parse(&fake, &c), 0);
    assert_int_equal(c.version, 1);
    assert_int_equal(c.type, 2);
    free(b.p);
    trib_buf_fini(&out);
}

/* ---- hostile input -------------------------------------------------------- */

/*
 * Each truncation, then random bit flips with the CRC fixed up (so the
 * damage reaches the record parser and the codecs): never a crash, only
 * clean errors, and a bounded decompression.
 */
static void fuzz_batch(const uint8_t *p, size_t len)
{
    int n;
    for (size_t cut = 0; cut < len; cut++) {
        uint8_t *t = dup(p, cut ? cut : 1);
        int rc = drain(t, cut, 0, &n);
        assert_int_equal(rc, TRIB_ETRUNCATED);
        rc = drain(t, cut, TRIB_BATCH_SKIP_CRC, &n);
        assert_true(rc == TRIB_ETRUNCATED);
        free(t);
    }
    uint8_t *t = malloc(len);
    for (int round = 0; round < 4000; round++) {
        memcpy(t, p, len);
        int flips = 1 + (int)(rng() % 3);
        for (int f = 0; f < flips; f++) {
            size_t bit = rng() % (len * 8);
            t[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        }
        int rc = drain(t, len, 0, &n);
        assert_true(rc <= 0);
        (void)trib_batch_update_crc(t, len);
        rc = drain(t, len, 0, &n);
        assert_true(rc == 0 || rc == TRIB_EMALFORMED || rc == TRIB_ETRUNCATED ||
                    rc == TRIB_ECOMPRESSION || rc == TRIB_ETOO_LARGE || rc == TRIB_EUNSUPPORTED ||
                    rc == TRIB_EUNSUPPORTED_VERSION);
    }
    free(t);
}

static void test_hostile(void **state)
{
    (void)state;
    fuzz_batch(vec1, sizeof(vec1));
    fuzz_batch(vec2, sizeof(vec2));
    enum { N = 12 };
    gen_rec_t g[N];
    gen_records(g, N, 40);
    for (size_t c = 0; c < NCODECS; c++) {
        blob_t b = build_gen(g, N, all_codecs[c], false);
        fuzz_batch(b.p, b.len);
        free(b.p);
    }
    free_records(g, N);
}

/* The iterator's decompression bound. */
static void test_decompression_bound(void **state)
{
    (void)state;
    size_t big = 4u << 20;
    uint8_t *zeros = calloc(big, 1);
    for (size_t c = 1; c < NCODECS; c++) {
        trib_buf_t out;
        trib_buf_init(&out);
        trib_batch_opts_t o;
        trib_batch_opts_init(&o);
        o.codec = all_codecs[c];
        trib_batch_builder_t bb;
        assert_int_equal(trib_batch_builder_init(&bb, &out, &o), 0);
        trib_record_in_t r;
        memset(&r, 0, sizeof(r));
        r.key = trib_record_null();
        r.value = trib_record_bytes(zeros, (int32_t)big);
        assert_int_equal(trib_batch_builder_add(&bb, &r), 0);
        assert_int_equal(trib_batch_builder_finish(&bb), 0);
        trib_batch_builder_fini(&bb);
        blob_t b = flat(&out);
        assert_true(b.len < big / 10); /* snappy tops out near 21:1 */
        trib_batch_t batch;
        assert_int_equal(trib_batch_parse(&batch, b.p, b.len, 0), 0);
        trib_record_iter_t it;
        assert_int_equal(trib_record_iter_init(&it, &batch, NULL, 1u << 20), TRIB_ETOO_LARGE);
        trib_record_t rec;
        assert_int_equal(trib_record_iter_next(&it, &rec), TRIB_ETOO_LARGE);
        trib_record_iter_fini(&it);
        assert_int_equal(trib_record_iter_init(&it, &batch, NULL, big + 20), 0);
        assert_int_equal(trib_record_iter_next(&it, &rec), 1);
        assert_int_equal(rec.value.len, (int32_t)big);
        trib_record_iter_fini(&it);
        free(b.p);
        trib_buf_fini(&out);
    }
    free(zeros);
}

/* Builds a batch of the given keys (NULL: a null key) with codec; returns it flat. */
static blob_t keyed_batch(const char *const *keys, int n, int codec)
{
    trib_buf_t out;
    trib_buf_init(&out);
    trib_batch_opts_t o;
    trib_batch_opts_init(&o);
    o.codec = codec;
    trib_batch_builder_t bb;
    assert_int_equal(trib_batch_builder_init(&bb, &out, &o), 0);
    for (int i = 0; i < n; i++) {
        trib_record_in_t r = rin(keys[i], "value", 1000 + i);
        assert_int_equal(trib_batch_builder_add(&bb, &r), 0);
    }
    assert_int_equal(trib_batch_builder_finish(&bb), 0);
    trib_batch_builder_fini(&bb);
    blob_t b = flat(&out);
    trib_buf_fini(&out);
    return b;
}

static void test_validate_records(void **state)
{
    (void)state;
    static const char *const good[] = {"a", "b", "c"};
    static const char *const keyless[] = {"a", "b", NULL, "d"};
    for (size_t c = 0; c < NCODECS; c++) {
        blob_t b = keyed_batch(good, 3, all_codecs[c]);
        trib_batch_t batch;
        trib_record_fault_t f;
        assert_int_equal(trib_batch_parse(&batch, b.p, b.len, 0), 0);
        assert_int_equal(
            trib_batch_validate_records(&batch, TRIB_VALIDATE_REQUIRE_KEY, 1 << 20, &f), 0);
        free(b.p);
        b = keyed_batch(keyless, 4, all_codecs[c]);
        assert_int_equal(trib_batch_parse(&batch, b.p, b.len, 0), 0);
        /* A null key is fine unless keys are required; then record 2 is at fault. */
        assert_int_equal(trib_batch_validate_records(&batch, 0, 1 << 20, &f), 0);
        assert_int_equal(
            trib_batch_validate_records(&batch, TRIB_VALIDATE_REQUIRE_KEY, 1 << 20, &f),
            TRIB_EMALFORMED);
        assert_int_equal(f.index, 2);
        assert_non_null(strstr(f.why, "key"));
        if (all_codecs[c] != TRIB_CODEC_NONE) {
            /* Garbage where the compressed records were: no decompression, whole batch at fault. */
            for (size_t i = TRIB_BATCH_HEADER_SIZE; i < b.len; i++) {
                b.p[i] = (uint8_t)(0xA5 ^ i);
            }
            assert_int_equal(trib_batch_parse(&batch, b.p, b.len, TRIB_BATCH_SKIP_CRC), 0);
            assert_true(trib_batch_validate_records(&batch, 0, 1 << 20, &f) < 0);
            assert_non_null(f.why);
        }
        free(b.p);
    }
    /* Offset deltas must run 0, 1, 2: a gap is a fault at the record after it. */
    trib_buf_t out;
    trib_buf_init(&out);
    trib_batch_opts_t o;
    trib_batch_opts_init(&o);
    trib_batch_builder_t bb;
    assert_int_equal(trib_batch_builder_init(&bb, &out, &o), 0);
    trib_record_in_t r = rin("k", "v", 1000);
    assert_int_equal(trib_batch_builder_add_at(&bb, 0, &r), 0);
    assert_int_equal(trib_batch_builder_add_at(&bb, 5, &r), 0);
    assert_int_equal(trib_batch_builder_finish(&bb), 0);
    trib_batch_builder_fini(&bb);
    blob_t b = flat(&out);
    trib_batch_t batch;
    trib_record_fault_t f;
    assert_int_equal(trib_batch_parse(&batch, b.p, b.len, 0), 0);
    assert_int_equal(trib_batch_validate_records(&batch, 0, 1 << 20, &f), TRIB_EMALFORMED);
    assert_int_equal(f.index, 1);
    /* An unknown codec. */
    b.p[TRIB_BATCH_OFF_ATTRIBUTES + 1] |= 7;
    assert_int_equal(trib_batch_parse(&batch, b.p, b.len, TRIB_BATCH_SKIP_CRC), 0);
    assert_int_equal(trib_batch_validate_records(&batch, 0, 1 << 20, &f), TRIB_EUNSUPPORTED);
    assert_int_equal(f.index, -1);
    free(b.p);
    trib_buf_fini(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vector1_build_and_parse),
        cmocka_unit_test(test_vector2_build_and_parse),
        cmocka_unit_test(test_round_trip_codecs),
        cmocka_unit_test(test_empty_batch),
        cmocka_unit_test(test_crc_and_header_errors),
        cmocka_unit_test(test_malformed_records),
        cmocka_unit_test(test_record_varints),
        cmocka_unit_test(test_builder_rejects),
        cmocka_unit_test(test_batch_iter),
        cmocka_unit_test(test_stamps),
        cmocka_unit_test(test_control),
        cmocka_unit_test(test_hostile),
        cmocka_unit_test(test_decompression_bound),
        cmocka_unit_test(test_validate_records),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
