/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Compaction: the last record per key survives with its offset and
 * timestamp, tombstones get a delete horizon and go once it passed, the
 * active segment is untouched, batches stay valid (CRC) whether copied or
 * rebuilt (compressed ones too), a held read keeps the old bytes, a
 * truncation racing a pass cancels it, and the result survives restarts.
 */
#include "storage_test.h"

#include "storage/storage_int.h" /* coll_log_roll */

static int g_done, g_status;

static void on_compacted(coll_log_t *log, void *arg, int status)
{
    (void)log;
    (void)arg;
    g_done++;
    g_status = status;
}

static void compact(fixture_t *fx, coll_log_t *log, int expect)
{
    g_done = 0;
    assert_int_equal(coll_log_compact(log, on_compacted, NULL), 0);
    fx_run(fx);
    assert_int_equal(g_done, 1);
    assert_int_equal(g_status, expect);
}

static coll_log_config_t compact_cfg(void)
{
    coll_log_config_t cfg;
    coll_log_config_init(&cfg);
    cfg.cleanup_policy = COLL_CLEANUP_COMPACT;
    cfg.segment_bytes = 2048;
    cfg.index_interval_bytes = 200;
    cfg.delete_retention_ms = 60000;
    return cfg;
}

/* Appends value "<key>=<round>" for keys 0..nkeys-1; tombstones for keys in `dead`. */
static void write_round(coll_log_t *log, int nkeys, int round, const int *dead, size_t ndead,
                        int64_t ts, int codec)
{
    for (int k = 0; k < nkeys; k += 4) {
        const char *keys[4];
        const char *vals[4];
        char kb[4][16], vb[4][32];
        size_t n = 0;
        for (int j = k; j < k + 4 && j < nkeys; j++, n++) {
            snprintf(kb[n], sizeof(kb[n]), "key%d", j);
            snprintf(vb[n], sizeof(vb[n]), "key%d=%d", j, round);
            keys[n] = kb[n];
            vals[n] = vb[n];
            for (size_t d = 0; d < ndead; d++) {
                if (dead[d] == j) {
                    vals[n] = NULL;
                }
            }
        }
        trib_buf_t b;
        trib_buf_init(&b);
        if (codec == TRIB_CODEC_NONE) {
            build_kv_batch(&b, n, keys, vals, ts);
        } else {
            trib_batch_opts_t o;
            trib_batch_opts_init(&o);
            o.codec = codec;
            trib_batch_builder_t bb;
            assert_int_equal(trib_batch_builder_init(&bb, &b, &o), 0);
            for (size_t i = 0; i < n; i++) {
                trib_record_in_t r = {
                    .key = trib_record_bytes(keys[i], (int32_t)strlen(keys[i])),
                    .value = vals[i] ? trib_record_bytes(vals[i], (int32_t)strlen(vals[i]))
                                     : trib_record_null(),
                    .timestamp = ts + (int64_t)i,
                };
                assert_int_equal(trib_batch_builder_add(&bb, &r), 0);
            }
            assert_int_equal(trib_batch_builder_finish(&bb), 0);
            trib_batch_builder_fini(&bb);
        }
        append_buf(log, &b, 2);
        trib_buf_fini(&b);
    }
}

/* Checks, for records below `upto`, that each key appears once with the given round. */
static void check_compacted(const seen_t *s, int64_t upto, int nkeys, int round, const int *dead,
                            size_t ndead, bool tombstones_expected)
{
    int *count = calloc((size_t)nkeys, sizeof(int));
    int64_t prev = -1;
    for (size_t i = 0; i < s->n; i++) {
        const seen_record_t *r = &s->v[i];
        assert_true(r->offset > prev);
        prev = r->offset;
        if (r->offset >= upto) {
            continue;
        }
        int k = atoi(r->key + 3);
        count[k]++;
        bool is_dead = false;
        for (size_t d = 0; d < ndead; d++) {
            is_dead |= dead[d] == k;
        }
        if (is_dead) {
            assert_true(tombstones_expected);
            assert_true(r->value_null);
        } else {
            char want[32];
            snprintf(want, sizeof(want), "key%d=%d", k, round);
            assert_string_equal(r->value, want);
        }
    }
    for (int k = 0; k < nkeys; k++) {
        bool is_dead = false;
        for (size_t d = 0; d < ndead; d++) {
            is_dead |= dead[d] == k;
        }
        assert_int_equal(count[k], is_dead && !tombstones_expected ? 0 : 1);
    }
    free(count);
}

static void test_compaction_with_tombstones(void **state)
{
    (void)state;
    fixture_t fx;
    fx_init(&fx);
    coll_log_config_t cfg = compact_cfg();
    fx.cfg.log_defaults = cfg;
    fx_open(&fx);
    coll_log_t *log = fx_log(&fx, "__consumer_offsets", 0, &cfg);
    enum { KEYS = 40, ROUNDS = 6 };
    for (int r = 0; r < ROUNDS; r++) {
        write_round(log, KEYS, r, NULL, 0, 1000 + r * 100, TRIB_CODEC_NONE);
    }
    const int dead[] = {3, 17, 38};
    write_round(log, KEYS, ROUNDS, dead, 3, 2000, TRIB_CODEC_NONE);
    /* A tail the pass must not touch: the active segment. */
    int64_t before_tail = coll_log_end_offset(log);
    coll_log_roll(log, before_tail);
    append_records(log, 2, 0, 5, 10, 3000);
    int64_t leo = coll_log_end_offset(log);
    size_t nseg = coll_log_segment_count(log);
    uint64_t size_before = coll_log_size(log);
    assert_true(nseg > 5);

    /* Nothing below the high watermark yet: the pass has nothing to do. */
    compact(&fx, log, 0);
    assert_int_equal(coll_log_size(log), size_before);
    coll_log_set_high_watermark(log, leo);
    compact(&fx, log, 0);
    assert_int_equal(coll_log_end_offset(log), leo);
    assert_true(coll_log_size(log) < size_before / 3);
    assert_int_equal(coll_log_cleaner_offset(log), before_tail);
    seen_t s;
    read_all(log, 0, 1 << 20, &s);
    check_compacted(&s, before_tail, KEYS, ROUNDS, dead, 3, true);
    /* The active segment's records are all there. */
    assert_int_equal(s.v[s.n - 1].offset, leo - 1);
    assert_int_equal(s.v[s.n - 2].offset, leo - 2);
    /* Survivors keep their offsets and timestamps: key0 was first in the last round. */
    bool found = false;
    for (size_t i = 0; i < s.n; i++) {
        if (strcmp(s.v[i].key, "key0") == 0 && s.v[i].offset < before_tail) {
            assert_int_equal(s.v[i].offset, (int64_t)ROUNDS * KEYS);
            assert_int_equal(s.v[i].timestamp, 2000);
            found = true;
        }
    }
    assert_true(found);
    seen_fini(&s);
    assert_int_equal(count_files(coll_log_dir(log), ".log"), coll_log_segment_count(log));
    assert_int_equal(count_files(coll_log_dir(log), ".swap"), 0);
    assert_int_equal(count_files(coll_log_dir(log), ".cleaned"), 0);
    assert_int_equal(count_files(coll_log_dir(log), ".deleted"), 0);

    /* Before the delete horizon a second pass keeps the tombstones. */
    fx.now += 30000;
    compact(&fx, log, 0);
    read_all(log, 0, 1 << 20, &s);
    check_compacted(&s, before_tail, KEYS, ROUNDS, dead, 3, true);
    seen_fini(&s);
    /* After it, they go. */
    fx.now += 60000;
    compact(&fx, log, 0);
    /* Sources are grouped by size, as Kafka does: the small cleaned segments merged. */
    assert_true(coll_log_segment_count(log) < nseg / 2);
    read_all(log, 0, 1 << 20, &s);
    check_compacted(&s, before_tail, KEYS, ROUNDS, dead, 3, false);
    seen_fini(&s);

    /* Offsets and time lookups still work on the cleaned segments. */
    coll_read_t r;
    assert_int_equal(coll_log_read(log, 5, 1, INT64_MAX, 0, &r), 0);
    assert_true(r.first_offset >= 5 || r.next_offset > 5);
    coll_read_release(&r);
    int64_t off, ts;
    assert_int_equal(coll_log_offset_for_timestamp(log, 1950, &off, &ts), 0);
    assert_int_equal(off, (int64_t)ROUNDS * KEYS);
    assert_int_equal(ts, 2000);

    /* Both a clean and a crash restart read the same thing. */
    fx_close(&fx);
    fx_open(&fx);
    assert_int_equal(coll_storage_get_log(fx.st, "__consumer_offsets", 0, &log), 0);
    assert_int_equal(coll_log_cleaner_offset(log), before_tail);
    read_all(log, 0, 1 << 20, &s);
    check_compacted(&s, before_tail, KEYS, ROUNDS, dead, 3, false);
    seen_fini(&s);
    fx_close(&fx);
    fx_forget_clean_shutdown(&fx);
    fx_open(&fx);
    assert_int_equal(coll_storage_get_log(fx.st, "__consumer_offsets", 0, &log), 0);
    assert_int_equal(coll_log_end_offset(log), leo);
    read_all(log, 0, 1 << 20, &s);
    check_compacted(&s, before_tail, KEYS, ROUNDS, dead, 3, false);
    seen_fini(&s);
    fx_fini(&fx);
}

static void test_compaction_compressed_and_held_reads(void **state)
{
    (void)state;
    fixture_t fx;
    fx_init(&fx);
    coll_log_config_t cfg = compact_cfg();
    fx_open(&fx);
    coll_log_t *log = fx_log(&fx, "zc", 1, &cfg);
    int codecs[] = {TRIB_CODEC_GZIP, TRIB_CODEC_LZ4, TRIB_CODEC_ZSTD, TRIB_CODEC_SNAPPY};
    for (int r = 0; r < 7; r++) {
        write_round(log, 24, r, NULL, 0, 1000 + r * 100, codecs[r % 4]);
    }
    /* Round 7 only for key0 and key1: round 6's first batch (zstd) is rebuilt. */
    write_round(log, 2, 7, NULL, 0, 5000, TRIB_CODEC_GZIP);
    int64_t end = coll_log_end_offset(log);
    coll_log_roll(log, end);
    coll_log_set_high_watermark(log, end);
    /* A reader holds the first segment across the swap. */
    coll_read_t held;
    assert_int_equal(coll_log_read(log, 0, 1 << 20, INT64_MAX, 0, &held), 0);
    uint8_t *before = malloc(held.len);
    assert_int_equal(coll_read_copy(&held, 0, before, held.len), (ssize_t)held.len);
    compact(&fx, log, 0);
    uint8_t *after = malloc(held.len);
    assert_int_equal(coll_read_copy(&held, 0, after, held.len), (ssize_t)held.len);
    assert_memory_equal(before, after, held.len);
    free(before);
    free(after);
    coll_read_release(&held);
    fx_run(&fx);
    assert_int_equal(count_files(coll_log_dir(log), ".deleted"), 0);

    seen_t s;
    read_all(log, 0, 1 << 20, &s); /* checks every CRC */
    assert_int_equal(s.n, 24);
    for (size_t i = 0; i < s.n; i++) {
        int k = atoi(s.v[i].key + 3);
        char want[32];
        snprintf(want, sizeof(want), "key%d=%d", k, k < 2 ? 7 : 6);
        assert_string_equal(s.v[i].value, want);
        if (k == 2) {
            assert_int_equal(s.v[i].offset, 6 * 24 + 2);
            assert_int_equal(s.v[i].timestamp, 1000 + 6 * 100 + 2);
        }
    }
    seen_fini(&s);
    /* The rebuilt batch kept its codec, leader epoch and offsets. */
    coll_read_t r;
    assert_int_equal(coll_log_read(log, 0, 1 << 20, INT64_MAX, 0, &r), 0);
    uint8_t *buf = malloc(r.len);
    assert_int_equal(coll_read_copy(&r, 0, buf, r.len), (ssize_t)r.len);
    trib_batch_t b;
    assert_int_equal(trib_batch_parse(&b, buf, r.len, 0), 0);
    assert_int_equal(trib_batch_codec(&b), TRIB_CODEC_ZSTD);
    assert_int_equal(b.partition_leader_epoch, 2);
    assert_int_equal(b.base_offset, 6 * 24);
    assert_int_equal(b.record_count, 2);
    assert_int_equal(b.last_offset_delta, 3);
    free(buf);
    coll_read_release(&r);
    fx_fini(&fx);
}

static void test_compaction_cancelled_by_truncation(void **state)
{
    (void)state;
    fixture_t fx;
    fx_init(&fx);
    coll_log_config_t cfg = compact_cfg();
    fx_open(&fx);
    coll_log_t *log = fx_log(&fx, "race", 0, &cfg);
    for (int r = 0; r < 6; r++) {
        write_round(log, 30, r, NULL, 0, 1000, TRIB_CODEC_NONE);
    }
    int64_t end = coll_log_end_offset(log);
    coll_log_roll(log, end);
    coll_log_set_high_watermark(log, end);
    uint64_t size = coll_log_size(log);
    g_done = 0;
    assert_int_equal(coll_log_compact(log, on_compacted, NULL), 0);
    assert_int_equal(coll_log_compact(log, on_compacted, NULL), TRIB_ESTATE);
    assert_int_equal(coll_log_truncate_to(log, end - 10), 0);
    fx_run(&fx);
    assert_int_equal(g_done, 1);
    assert_int_equal(g_status, -ECANCELED);
    assert_int_equal(count_files(coll_log_dir(log), ".swap"), 0);
    assert_int_equal(count_files(coll_log_dir(log), ".cleaned"), 0);
    assert_true(coll_log_size(log) < size);
    assert_int_equal(coll_log_end_offset(log), end - 10);
    /* Retention on a compact-only log deletes nothing. */
    coll_storage_enforce_retention(fx.st);
    assert_int_equal(coll_log_start_offset(log), 0);
    /* A delete-policy log cannot be compacted. */
    coll_log_t *plain = fx_log(&fx, "plain", 0, NULL);
    assert_int_equal(coll_log_compact(plain, on_compacted, NULL), -EINVAL);
    fx_fini(&fx);
}

typedef struct watch {
    uv_timer_t t;
    coll_log_t *log;
    int64_t end;
    int left;
} watch_t;

/* Keeps the loop alive until the cleaner reached `end` (or 2 s passed). */
static void watch_cb(uv_timer_t *t)
{
    watch_t *w = t->data;
    if (coll_log_cleaner_offset(w->log) >= w->end || --w->left == 0) {
        uv_close((uv_handle_t *)t, NULL);
    }
}

static void test_background_cleaner(void **state)
{
    (void)state;
    fixture_t fx;
    fx_init(&fx);
    fx.cfg.cleaner_backoff_ms = 10;
    fx.cfg.tick_ms = 5;
    fx_open(&fx);
    coll_log_config_t cfg = compact_cfg();
    coll_log_t *log = fx_log(&fx, "bg", 0, &cfg);
    for (int r = 0; r < 6; r++) {
        write_round(log, 30, r, NULL, 0, 1000, TRIB_CODEC_NONE);
    }
    int64_t end = coll_log_end_offset(log);
    coll_log_roll(log, end);
    coll_log_set_high_watermark(log, end);
    uint64_t size = coll_log_size(log);
    /* The storage timer picks the dirty log up by itself. */
    watch_t w = {.log = log, .end = end, .left = 400};
    uv_timer_init(&fx.loop, &w.t);
    w.t.data = &w;
    uv_timer_start(&w.t, watch_cb, 5, 5);
    fx_run(&fx);
    assert_int_equal(coll_log_cleaner_offset(log), end);
    assert_true(coll_log_size(log) < size / 2);
    coll_storage_stats_t stats;
    coll_storage_get_stats(fx.st, &stats);
    assert_true(stats.compactions >= 1);
    fx_fini(&fx);
}

/* A batch of keys key<first>..: built, then spoiled by `how`, then appended unchecked. */
enum { SPOIL_CRC, SPOIL_NO_KEY, SPOIL_GZIP, SPOIL_CODEC };

static void append_poison(coll_log_t *log, int how, trib_buf_t *keep)
{
    const char *keys[3] = {"key0", "key1", "key2"};
    const char *vals[3] = {"poison-0", "poison-1", "poison-2"};
    trib_buf_t b;
    trib_buf_init(&b);
    if (how == SPOIL_NO_KEY) {
        keys[1] = NULL;
    }
    if (how == SPOIL_GZIP) {
        trib_batch_opts_t o;
        trib_batch_opts_init(&o);
        o.codec = TRIB_CODEC_GZIP;
        trib_batch_builder_t bb;
        assert_int_equal(trib_batch_builder_init(&bb, &b, &o), 0);
        for (int i = 0; i < 3; i++) {
            trib_record_in_t r = {
                .key = trib_record_bytes(keys[i], 4),
                .value = trib_record_bytes(vals[i], 8),
                .timestamp = 1000 + i,
            };
            assert_int_equal(trib_batch_builder_add(&bb, &r), 0);
        }
        assert_int_equal(trib_batch_builder_finish(&bb), 0);
        trib_batch_builder_fini(&bb);
    } else {
        build_kv_batch(&b, 3, keys, vals, 1000);
    }
    size_t len;
    uint8_t *p = (uint8_t *)trib_buf_flatten(&b, &len);
    assert_non_null(p);
    if (how == SPOIL_CRC) {
        p[len - 3] ^= 0x55; /* inside the last value: the CRC no longer matches */
    } else if (how == SPOIL_GZIP) {
        for (size_t i = TRIB_BATCH_HEADER_SIZE + 10; i < len - 8; i++) {
            p[i] ^= 0xA5; /* the deflate stream is garbage; the CRC is made to match */
        }
        assert_int_equal(trib_batch_update_crc(p, len), 0);
    } else if (how == SPOIL_CODEC) {
        p[TRIB_BATCH_OFF_ATTRIBUTES + 1] |= 7; /* codec 7: none Kafka knows */
        assert_int_equal(trib_batch_update_crc(p, len), 0);
    }
    coll_append_info_t info;
    assert_int_equal(coll_log_append(log, p, len, 2, COLL_APPEND_CRC_VERIFIED, &info), 0);
    trib_buf_reset(keep);
    trib_buf_append(keep, p, len);
    trib_buf_fini(&b);
}

/*
 * A poison batch written straight into a segment (no produce validation):
 * the cleaner keeps each one byte for byte and compacts the records around
 * them, and counts them.
 */
static void test_compaction_keeps_unreadable_batches(void **state)
{
    (void)state;
    fixture_t fx;
    fx_init(&fx);
    coll_log_config_t cfg = compact_cfg();
    fx_open(&fx);
    coll_log_t *log = fx_log(&fx, "poison", 0, &cfg);
    trib_buf_t poison[4];
    write_round(log, 16, 0, NULL, 0, 1000, TRIB_CODEC_NONE);
    for (int i = 0; i < 4; i++) {
        trib_buf_init(&poison[i]);
        append_poison(log, i, &poison[i]);
        write_round(log, 16, i + 1, NULL, 0, 1000, TRIB_CODEC_NONE);
    }
    int64_t end = coll_log_end_offset(log);
    coll_log_roll(log, end);
    coll_log_set_high_watermark(log, end);
    uint64_t size = coll_log_size(log);
    compact(&fx, log, 0);
    fx_run(&fx);
    assert_true(coll_log_size(log) < size / 2);
    assert_int_equal(coll_log_cleaner_offset(log), end);
    coll_storage_stats_t stats;
    coll_storage_get_stats(fx.st, &stats);
    assert_int_equal(stats.cleaner_unreadable_batches, 4);

    /* Read the log's bytes back: the poison batches are there as written, the rest compacted. */
    int found = 0, rc;
    int count[16] = {0};
    int64_t next = 0;
    while (next < end) {
        coll_read_t r;
        assert_int_equal(coll_log_read(log, next, 1 << 20, INT64_MAX, 0, &r), 0);
        assert_true(r.len > 0);
        uint8_t *buf = malloc(r.len);
        assert_int_equal(coll_read_copy(&r, 0, buf, r.len), (ssize_t)r.len);
        trib_batch_iter_t it;
        trib_batch_iter_init(&it, buf, r.len, TRIB_BATCH_SKIP_CRC);
        trib_batch_t b;
        while ((rc = trib_batch_iter_next(&it, &b)) == 1) {
            next = trib_batch_last_offset(&b) + 1;
            bool is_poison = false;
            for (int i = 0; i < 4; i++) {
                size_t plen;
                const uint8_t *pp = trib_buf_flatten(&poison[i], &plen);
                /* Equal past baseOffset, batchLength and partitionLeaderEpoch (set on append). */
                if (plen == b.size &&
                    memcmp(pp + TRIB_BATCH_OFF_MAGIC, b.data + TRIB_BATCH_OFF_MAGIC,
                           plen - TRIB_BATCH_OFF_MAGIC) == 0) {
                    is_poison = true;
                    found |= 1 << i;
                }
            }
            if (is_poison) {
                continue;
            }
            assert_int_equal(trib_batch_parse(&b, b.data, b.size, 0), 0); /* CRC intact */
            trib_record_iter_t ri;
            trib_record_t rec;
            assert_int_equal(trib_record_iter_init(&ri, &b, NULL, 1 << 20), 0);
            while ((rc = trib_record_iter_next(&ri, &rec)) == 1) {
                char key[16] = {0}, val[32] = {0};
                memcpy(key, rec.key.ptr, (size_t)rec.key.len);
                memcpy(val, rec.value.ptr, (size_t)rec.value.len);
                int k = atoi(key + 3);
                count[k]++;
                char want[32];
                snprintf(want, sizeof(want), "key%d=4", k);
                assert_string_equal(val, want);
            }
            assert_int_equal(rc, 0);
            trib_record_iter_fini(&ri);
        }
        assert_int_equal(rc, 0);
        free(buf);
        coll_read_release(&r);
    }
    assert_int_equal(found, 0xF);
    for (int k = 0; k < 16; k++) {
        assert_int_equal(count[k], 1);
    }
    for (int i = 0; i < 4; i++) {
        trib_buf_fini(&poison[i]);
    }
    fx_fini(&fx);
}

/*
 * A log whose pass fails every time (a segment whose framing is broken)
 * does not keep the background cleaner from the other compacted logs.
 */
static void test_failing_log_does_not_block_others(void **state)
{
    (void)state;
    fixture_t fx;
    fx_init(&fx);
    fx.cfg.cleaner_backoff_ms = 10;
    fx.cfg.tick_ms = 5;
    fx_open(&fx);
    coll_log_config_t cfg = compact_cfg();
    coll_log_t *ok = fx_log(&fx, "ok", 0, &cfg);
    coll_log_t *bad = fx_log(&fx, "broken", 0, &cfg);
    /* ok: compacted once, then dirtied again, so its dirty ratio stays below broken's (1.0). */
    for (int r = 0; r < 4; r++) {
        write_round(ok, 30, r, NULL, 0, 1000, TRIB_CODEC_NONE);
    }
    int64_t mid = coll_log_end_offset(ok);
    coll_log_roll(ok, mid);
    coll_log_set_high_watermark(ok, mid);
    compact(&fx, ok, 0);
    for (int r = 4; r < 10; r++) {
        write_round(ok, 30, r, NULL, 0, 1000, TRIB_CODEC_NONE);
    }
    int64_t end = coll_log_end_offset(ok);
    coll_log_roll(ok, end);
    coll_log_set_high_watermark(ok, end);
    for (int r = 0; r < 6; r++) {
        write_round(bad, 30, r, NULL, 0, 1000, TRIB_CODEC_NONE);
    }
    int64_t bend = coll_log_end_offset(bad);
    coll_log_roll(bad, bend);
    coll_log_set_high_watermark(bad, bend);
    /* batchLength 10 in the first batch of broken's first segment: no batch can be framed. */
    char path[512];
    snprintf(path, sizeof(path), "%s/%020d.log", coll_log_dir(bad), 0);
    int fd = open(path, O_WRONLY);
    assert_true(fd >= 0);
    uint8_t len10[4] = {0, 0, 0, 10};
    assert_int_equal(pwrite(fd, len10, 4, TRIB_BATCH_OFF_LENGTH), 4);
    close(fd);
    assert_true(coll_cleaner_dirty_ratio(bad, 0) > coll_cleaner_dirty_ratio(ok, 0));

    watch_t w = {.log = ok, .end = end, .left = 400};
    uv_timer_init(&fx.loop, &w.t);
    w.t.data = &w;
    uv_timer_start(&w.t, watch_cb, 5, 5);
    fx_run(&fx);
    assert_int_equal(coll_log_cleaner_offset(ok), end);
    assert_true(coll_log_cleaner_offset(bad) < bend);
    coll_storage_stats_t stats;
    coll_storage_get_stats(fx.st, &stats);
    assert_true(stats.cleaner_failures >= 1);
    fx_fini(&fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_compaction_with_tombstones),
        cmocka_unit_test(test_compaction_compressed_and_held_reads),
        cmocka_unit_test(test_compaction_cancelled_by_truncation),
        cmocka_unit_test(test_background_cleaner),
        cmocka_unit_test(test_compaction_keeps_unreadable_batches),
        cmocka_unit_test(test_failing_log_does_not_block_others),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
