/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Record batch codecs: round trips for every codec and size class, the
 * xerial snappy framing byte for byte, formats other writers produce (raw
 * snappy, zstd without content size, lz4 with content size and checksums,
 * concatenated gzip members), the output bound (exact, and against
 * decompression bombs), and corrupt input: every truncation and random bit
 * flips must fail cleanly or decode within the bound, never crash (this
 * also runs under ASan and UBSan).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <lz4frame.h>
#include <snappy-c.h>
#include <zlib.h>
#include <zstd.h>

#include "tributary/buf.h"
#include "tributary/compress.h"
#include "tributary/error.h"

static const int all_codecs[] = {TRIB_CODEC_NONE, TRIB_CODEC_GZIP, TRIB_CODEC_SNAPPY,
                                 TRIB_CODEC_LZ4, TRIB_CODEC_ZSTD};
#define NCODECS (sizeof(all_codecs) / sizeof(all_codecs[0]))

/* Deterministic xorshift, so failures reproduce. */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rng(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

/* Half-compressible test data: text-like runs mixed with noise. */
static uint8_t *make_data(size_t n)
{
    uint8_t *p = malloc(n ? n : 1);
    assert_non_null(p);
    for (size_t i = 0; i < n; i++) {
        p[i] = (i / 64) % 2 ? (uint8_t)rng() : (uint8_t)("tributary log line "[i % 19]);
    }
    return p;
}

/* Compresses into a flat malloc'd copy. */
static uint8_t *compress_flat(int codec, int level, const void *src, size_t n, size_t *out_len)
{
    trib_buf_t b;
    trib_buf_init(&b);
    assert_int_equal(trib_compress(&b, codec, level, src, n), 0);
    size_t len = trib_buf_len(&b);
    uint8_t *p = malloc(len ? len : 1);
    assert_non_null(p);
    assert_int_equal(trib_buf_copyout(&b, 0, p, len), len);
    trib_buf_fini(&b);
    *out_len = len;
    return p;
}

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(trib_codec_name(TRIB_CODEC_NONE), "none");
    assert_string_equal(trib_codec_name(TRIB_CODEC_GZIP), "gzip");
    assert_string_equal(trib_codec_name(TRIB_CODEC_SNAPPY), "snappy");
    assert_string_equal(trib_codec_name(TRIB_CODEC_LZ4), "lz4");
    assert_string_equal(trib_codec_name(TRIB_CODEC_ZSTD), "zstd");
    assert_string_equal(trib_codec_name(5), "unknown");
    assert_string_equal(trib_codec_name(-1), "unknown");
    assert_int_equal(trib_codec_from_name("zstd"), TRIB_CODEC_ZSTD);
    assert_int_equal(trib_codec_from_name("brotli"), TRIB_EUNSUPPORTED);
}

static void test_round_trip_all(void **state)
{
    (void)state;
    static const size_t sizes[] = {0, 1, 7, 100, 4096, 32767, 32768, 32769, 65536, 65537, 200000};
    trib_decompress_out_t out;
    trib_decompress_out_init(&out);
    for (size_t c = 0; c < NCODECS; c++) {
        for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
            size_t n = sizes[s];
            uint8_t *src = make_data(n);
            size_t clen;
            uint8_t *comp = compress_flat(all_codecs[c], 0, src, n, &clen);
            /* Exactly the size: fine. One byte less allowed: too large. */
            assert_int_equal(trib_decompress(all_codecs[c], comp, clen, n, &out), 0);
            assert_int_equal(out.len, n);
            if (n) {
                assert_memory_equal(out.data, src, n);
                assert_int_equal(trib_decompress(all_codecs[c], comp, clen, n - 1, &out),
                                 TRIB_ETOO_LARGE);
            }
            free(comp);
            free(src);
        }
    }
    trib_decompress_out_fini(&out);
}

static void test_levels(void **state)
{
    (void)state;
    size_t n = 50000;
    uint8_t *src = make_data(n);
    trib_decompress_out_t out;
    trib_decompress_out_init(&out);
    struct {
        int codec, level, ok;
    } cases[] = {
        {TRIB_CODEC_GZIP, 1, 1},  {TRIB_CODEC_GZIP, 9, 1},   {TRIB_CODEC_GZIP, 10, 0},
        {TRIB_CODEC_GZIP, -2, 0}, {TRIB_CODEC_LZ4, 9, 1},    {TRIB_CODEC_LZ4, 13, 0},
        {TRIB_CODEC_ZSTD, 1, 1},  {TRIB_CODEC_ZSTD, 19, 1},  {TRIB_CODEC_ZSTD, -5, 1},
        {TRIB_CODEC_ZSTD, 99, 0}, {TRIB_CODEC_SNAPPY, 1, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        trib_buf_t b;
        trib_buf_init(&b);
        int rc = trib_compress(&b, cases[i].codec, cases[i].level, src, n);
        if (!cases[i].ok) {
            assert_int_equal(rc, -EINVAL);
        } else {
            assert_int_equal(rc, 0);
            size_t len;
            const uint8_t *p = trib_buf_flatten(&b, &len);
            assert_int_equal(trib_decompress(cases[i].codec, p, len, n, &out), 0);
            assert_int_equal(out.len, n);
            assert_memory_equal(out.data, src, n);
        }
        trib_buf_fini(&b);
    }
    trib_buf_t b;
    trib_buf_init(&b);
    assert_int_equal(trib_compress(&b, 7, 0, src, n), TRIB_EUNSUPPORTED);
    assert_int_equal(trib_decompress(7, src, n, n, &out), TRIB_EUNSUPPORTED);
    trib_buf_fini(&b);
    trib_decompress_out_fini(&out);
    free(src);
}

static uint32_t be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* The framing the Java client (xerial) and kafka-python write. */
static void test_snappy_xerial_framing(void **state)
{
    (void)state;
    size_t n = 70000; /* 32768 + 32768 + 4464: three blocks */
    uint8_t *src = make_data(n);
    size_t clen;
    uint8_t *comp = compress_flat(TRIB_CODEC_SNAPPY, 0, src, n, &clen);
    static const uint8_t hdr[16] = {0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0, 0, 0, 0, 1, 0, 0, 0, 1};
    assert_true(clen > 16);
    assert_memory_equal(comp, hdr, 16);
    size_t pos = 16, blocks = 0, total = 0;
    while (pos < clen) {
        uint32_t blen = be32(comp + pos);
        pos += 4;
        assert_true(blen <= clen - pos);
        size_t ulen;
        assert_int_equal(snappy_uncompressed_length((const char *)comp + pos, blen, &ulen),
                         SNAPPY_OK);
        /* Each block is exactly what raw snappy makes of its 32 KiB. */
        size_t want = n - total < 32768 ? n - total : 32768;
        assert_int_equal(ulen, want);
        size_t rlen = snappy_max_compressed_length(want);
        char *raw = malloc(rlen);
        assert_int_equal(snappy_compress((const char *)src + total, want, raw, &rlen), SNAPPY_OK);
        assert_int_equal(rlen, blen);
        assert_memory_equal(raw, comp + pos, blen);
        free(raw);
        total += ulen;
        pos += blen;
        blocks++;
    }
    assert_int_equal(blocks, 3);
    assert_int_equal(total, n);
    free(comp);

    /* Empty input: the header alone, which decodes to nothing. */
    comp = compress_flat(TRIB_CODEC_SNAPPY, 0, "", 0, &clen);
    assert_int_equal(clen, 16);
    trib_decompress_out_t out;
    trib_decompress_out_init(&out);
    assert_int_equal(trib_decompress(TRIB_CODEC_SNAPPY, comp, clen, 0, &out), 0);
    assert_int_equal(out.len, 0);
    free(comp);

    /* Raw snappy (no framing), as some clients send it. */
    size_t rlen = snappy_max_compressed_length(n);
    char *raw = malloc(rlen);
    assert_int_equal(snappy_compress((const char *)src, n, raw, &rlen), SNAPPY_OK);
    assert_int_equal(trib_decompress(TRIB_CODEC_SNAPPY, raw, rlen, n, &out), 0);
    assert_int_equal(out.len, n);
    assert_memory_equal(out.data, src, n);
    assert_int_equal(trib_decompress(TRIB_CODEC_SNAPPY, raw, rlen, n - 1, &out), TRIB_ETOO_LARGE);
    free(raw);

    /* A xerial block whose length runs past the end. */
    uint8_t bad[24];
    memcpy(bad, hdr, 16);
    bad[16] = 0, bad[17] = 0, bad[18] = 0, bad[19] = 9;
    memset(bad + 20, 0, 4);
    assert_int_equal(trib_decompress(TRIB_CODEC_SNAPPY, bad, sizeof(bad), 1000, &out),
                     TRIB_ECOMPRESSION);
    /* A negative block length. */
    bad[16] = 0x80;
    assert_int_equal(trib_decompress(TRIB_CODEC_SNAPPY, bad, sizeof(bad), 1000, &out),
                     TRIB_ECOMPRESSION);
    trib_decompress_out_fini(&out);
    free(src);
}

/* zstd as the Java client streams it: no content size in the header. */
static void test_zstd_no_content_size(void **state)
{
    (void)state;
    size_t n = 300000;
    uint8_t *src = make_data(n);
    ZSTD_CCtx *cctx = ZSTD_createCCtx();
    assert_non_null(cctx);
    ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, 0);
    ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1);
    size_t cap = ZSTD_compressBound(n) * 2 + 64;
    uint8_t *comp = malloc(cap);
    /* Two frames back to back, fed in pieces as a stream. */
    size_t clen = 0;
    for (int frame = 0; frame < 2; frame++) {
        for (size_t pos = 0; pos < n; pos += 10000) {
            ZSTD_inBuffer in = {src + pos, n - pos < 10000 ? n - pos : 10000, 0};
            ZSTD_EndDirective mode = pos + 10000 >= n ? ZSTD_e_end : ZSTD_e_continue;
            size_t r;
            do {
                ZSTD_outBuffer ob = {comp + clen, cap - clen, 0};
                r = ZSTD_compressStream2(cctx, &ob, &in, mode);
                assert_false(ZSTD_isError(r));
                clen += ob.pos;
            } while (mode == ZSTD_e_end ? r != 0 : in.pos < in.size);
        }
    }
    ZSTD_freeCCtx(cctx);
    assert_int_equal(ZSTD_getFrameContentSize(comp, clen), ZSTD_CONTENTSIZE_UNKNOWN);
    trib_decompress_out_t out;
    trib_decompress_out_init(&out);
    assert_int_equal(trib_decompress(TRIB_CODEC_ZSTD, comp, clen, 2 * n, &out), 0);
    assert_int_equal(out.len, 2 * n);
    assert_memory_equal(out.data, src, n);
    assert_memory_equal(out.data + n, src, n);
    trib_decompress_out_fini(&out);
    assert_int_equal(trib_decompress(TRIB_CODEC_ZSTD, comp, clen, 2 * n - 1, &out),
                     TRIB_ETOO_LARGE);
    assert_true(out.cap <= 2 * n);
    trib_decompress_out_fini(&out);
    free(comp);
    free(src);
}

/* lz4 as python-lz4 writes it: content size, checksums, linked blocks. */
static void test_lz4_other_frames(void **state)
{
    (void)state;
    size_t n = 150000;
    uint8_t *src = make_data(n);
    LZ4F_preferences_t prefs;
    memset(&prefs, 0, sizeof(prefs));
    prefs.frameInfo.contentSize = n;
    prefs.frameInfo.contentChecksumFlag = LZ4F_contentChecksumEnabled;
    prefs.frameInfo.blockChecksumFlag = LZ4F_blockChecksumEnabled;
    prefs.frameInfo.blockMode = LZ4F_blockLinked;
    prefs.frameInfo.blockSizeID = LZ4F_max4MB;
    size_t cap = LZ4F_compressFrameBound(n, &prefs);
    uint8_t *comp = malloc(cap);
    size_t clen = LZ4F_compressFrame(comp, cap, src, n, &prefs);
    assert_false(LZ4F_isError(clen));
    trib_decompress_out_t out;
    trib_decompress_out_init(&out);
    assert_int_equal(trib_decompress(TRIB_CODEC_LZ4, comp, clen, n, &out), 0);
    assert_int_equal(out.len, n);
    assert_memory_equal(out.data, src, n);
    /* The content checksum is checked. */
    comp[clen - 2] ^= 0x40;
    assert_int_equal(trib_decompress(TRIB_CODEC_LZ4, comp, clen, n, &out), TRIB_ECOMPRESSION);
    trib_decompress_out_fini(&out);
    free(comp);
    free(src);

    /* Our frames: independent 64 KiB blocks, no content size (as Java). */
    src = make_data(1000);
    comp = compress_flat(TRIB_CODEC_LZ4, 0, src, 1000, &clen);
    assert_int_equal(comp[0], 0x04); /* magic 0x184D2204, little-endian */
    assert_int_equal(comp[1], 0x22);
    assert_int_equal(comp[2], 0x4d);
    assert_int_equal(comp[3], 0x18);
    assert_int_equal(comp[4], 0x60); /* FLG: version 01, block independence */
    assert_int_equal(comp[5], 0x40); /* BD: 64 KiB blocks */
    free(comp);
    free(src);
}

static void test_gzip_members(void **state)
{
    (void)state;
    size_t a_len, b_len;
    uint8_t *a = compress_flat(TRIB_CODEC_GZIP, 0, "hello ", 6, &a_len);
    uint8_t *b = compress_flat(TRIB_CODEC_GZIP, 9, "world", 5, &b_len);
    uint8_t *ab = malloc(a_len + b_len);
    memcpy(ab, a, a_len);
    memcpy(ab + a_len, b, b_len);
    assert_int_equal(a[0], 0x1f);
    assert_int_equal(a[1], 0x8b);
    trib_decompress_out_t out;
    trib_decompress_out_init(&out);
    assert_int_equal(trib_decompress(TRIB_CODEC_GZIP, ab, a_len + b_len, 100, &out), 0);
    assert_int_equal(out.len, 11);
    assert_memory_equal(out.data, "hello world", 11);
    /* Trailing garbage after a member is not a member. */
    ab[a_len] = 0x00;
    assert_int_equal(trib_decompress(TRIB_CODEC_GZIP, ab, a_len + b_len, 100, &out),
                     TRIB_ECOMPRESSION);
    /* A zlib (not gzip) stream is refused: Kafka says gzip. */
    uint8_t z[64];
    uLongf zlen = sizeof(z);
    assert_int_equal(compress2(z, &zlen, (const Bytef *)"hello", 5, 6), Z_OK);
    assert_int_equal(trib_decompress(TRIB_CODEC_GZIP, z, zlen, 100, &out), TRIB_ECOMPRESSION);
    trib_decompress_out_fini(&out);
    free(a);
    free(b);
    free(ab);
}

/*
 * A bomb: 64 MiB of zeros compress to a few KiB. With a 1 MiB bound every
 * codec stops at the bound, and never holds more than bound + 1 bytes.
 */
static void test_bomb(void **state)
{
    (void)state;
    size_t n = 64u << 20;
    uint8_t *zeros = calloc(n, 1);
    assert_non_null(zeros);
    trib_decompress_out_t out;
    trib_decompress_out_init(&out);
    for (size_t c = 1; c < NCODECS; c++) {
        size_t clen;
        uint8_t *comp = compress_flat(all_codecs[c], 0, zeros, n, &clen);
        assert_true(clen < n / 20);
        trib_decompress_out_fini(&out);
        assert_int_equal(trib_decompress(all_codecs[c], comp, clen, 1u << 20, &out),
                         TRIB_ETOO_LARGE);
        assert_true(out.cap <= (1u << 20) + 1);
        /* The arena variant allocates nothing on failure. */
        trib_arena_t arena;
        trib_arena_init(&arena);
        const uint8_t *data;
        size_t len;
        assert_int_equal(
            trib_decompress_arena(all_codecs[c], comp, clen, 1u << 20, &arena, &data, &len),
            TRIB_ETOO_LARGE);
        assert_null(data);
        assert_int_equal(trib_arena_used(&arena), 0);
        trib_arena_fini(&arena);
        free(comp);
    }
    trib_decompress_out_fini(&out);
    free(zeros);
}

static void test_arena(void **state)
{
    (void)state;
    size_t n = 100000;
    uint8_t *src = make_data(n);
    for (size_t c = 0; c < NCODECS; c++) {
        size_t clen;
        uint8_t *comp = compress_flat(all_codecs[c], 0, src, n, &clen);
        trib_arena_t arena;
        trib_arena_init(&arena);
        const uint8_t *data;
        size_t len;
        assert_int_equal(trib_decompress_arena(all_codecs[c], comp, clen, n, &arena, &data, &len),
                         0);
        assert_int_equal(len, n);
        assert_memory_equal(data, src, n);
        /* An arena limit is an allocation failure. */
        trib_arena_t small;
        trib_arena_init(&small);
        trib_arena_set_limit(&small, 1000);
        assert_int_equal(trib_decompress_arena(all_codecs[c], comp, clen, n, &small, &data, &len),
                         -ENOMEM);
        trib_arena_fini(&small);
        trib_arena_fini(&arena);
        free(comp);
    }
    free(src);
}

/*
 * Every truncation and many random bit flips of valid compressed data:
 * each must fail with a codec error or decode within the bound.
 */
static void test_corrupt(void **state)
{
    (void)state;
    size_t n = 3000;
    uint8_t *src = make_data(n);
    trib_decompress_out_t out;
    trib_decompress_out_init(&out);
    for (size_t c = 1; c < NCODECS; c++) {
        size_t clen;
        uint8_t *comp = compress_flat(all_codecs[c], 0, src, n, &clen);
        for (size_t cut = 0; cut < clen; cut++) {
            /* An exact-size copy, so ASan sees any read past the cut. */
            uint8_t *t = malloc(cut ? cut : 1);
            memcpy(t, comp, cut);
            int rc = trib_decompress(all_codecs[c], t, cut, n, &out);
            if (rc == 0) {
                /* Only a clean block boundary of a framing may end early. */
                assert_true(out.len <= n);
                assert_memory_equal(out.data, src, out.len);
            } else {
                assert_true(rc == TRIB_ECOMPRESSION || rc == TRIB_ETOO_LARGE);
            }
            free(t);
        }
        uint8_t *t = malloc(clen);
        for (int round = 0; round < 3000; round++) {
            memcpy(t, comp, clen);
            int flips = 1 + (int)(rng() % 4);
            for (int f = 0; f < flips; f++) {
                size_t bit = rng() % (clen * 8);
                t[bit / 8] ^= (uint8_t)(1u << (bit % 8));
            }
            int rc = trib_decompress(all_codecs[c], t, clen, n, &out);
            if (rc == 0) {
                assert_true(out.len <= n);
            } else {
                assert_true(rc == TRIB_ECOMPRESSION || rc == TRIB_ETOO_LARGE);
            }
            assert_true(out.cap <= n + 1 || out.cap <= 4 * clen + 1024);
        }
        free(t);
        free(comp);
    }
    /* Garbage of every small length for every codec. */
    for (size_t c = 1; c < NCODECS; c++) {
        for (size_t len = 0; len < 64; len++) {
            uint8_t *g = malloc(len ? len : 1);
            for (size_t i = 0; i < len; i++) {
                g[i] = (uint8_t)rng();
            }
            int rc = trib_decompress(all_codecs[c], g, len, 1 << 16, &out);
            assert_true(rc == 0 || rc == TRIB_ECOMPRESSION || rc == TRIB_ETOO_LARGE);
            free(g);
        }
    }
    trib_decompress_out_fini(&out);
    free(src);
}

/* One output buffer reused across calls and codecs keeps its memory. */
static void test_reuse(void **state)
{
    (void)state;
    trib_decompress_out_t out;
    trib_decompress_out_init(&out);
    size_t big = 100000, small = 10;
    uint8_t *a = make_data(big);
    size_t clen;
    uint8_t *comp = compress_flat(TRIB_CODEC_ZSTD, 0, a, big, &clen);
    assert_int_equal(trib_decompress(TRIB_CODEC_ZSTD, comp, clen, big, &out), 0);
    free(comp);
    uint8_t *keep = out.data;
    comp = compress_flat(TRIB_CODEC_GZIP, 0, a, small, &clen);
    assert_int_equal(trib_decompress(TRIB_CODEC_GZIP, comp, clen, small, &out), 0);
    assert_ptr_equal(out.data, keep);
    assert_int_equal(out.len, small);
    assert_memory_equal(out.data, a, small);
    free(comp);
    assert_int_equal(trib_decompress(TRIB_CODEC_NONE, a, 0, 0, &out), 0);
    assert_int_equal(out.len, 0);
    assert_int_equal(trib_decompress(TRIB_CODEC_NONE, a, 5, 4, &out), TRIB_ETOO_LARGE);
    trib_decompress_out_fini(&out);
    free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_round_trip_all),
        cmocka_unit_test(test_levels),
        cmocka_unit_test(test_snappy_xerial_framing),
        cmocka_unit_test(test_zstd_no_content_size),
        cmocka_unit_test(test_lz4_other_frames),
        cmocka_unit_test(test_gzip_members),
        cmocka_unit_test(test_bomb),
        cmocka_unit_test(test_arena),
        cmocka_unit_test(test_corrupt),
        cmocka_unit_test(test_reuse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
