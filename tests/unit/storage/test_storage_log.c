/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The partition log: append and read (within and across segments, byte
 * limits, the high watermark bound), segment rolls by size and age, index
 * and time lookups, retention by size and time, DeleteRecords, truncation,
 * leader epochs, the fd budget and the Kafka files it writes.
 */
#include "storage_test.h"

static void test_append_read(void **state)
{
    (void)state;
    fixture_t fx;
    fx_init(&fx);
    fx_open(&fx);
    coll_log_t *log = fx_log(&fx, "events", 0, NULL);
    assert_int_equal(coll_log_end_offset(log), 0);

    coll_append_info_t a = append_records(log, 5, 0, 100, 10, 1000);
    assert_int_equal(a.base_offset, 0);
    assert_int_equal(a.last_offset, 4);
    assert_int_equal(a.log_end_offset, 5);
    coll_append_info_t b = append_records(log, 3, 5, 100, 10, 2000);
    assert_int_equal(b.base_offset, 5);
    assert_int_equal(b.log_end_offset, 8);
    coll_log_set_high_watermark(log, 8);

    /* The whole log, then from inside the second batch. */
    seen_t s;
    read_all(log, 0, 1 << 20, &s);
    assert_int_equal(s.n, 8);
    for (size_t i = 0; i < s.n; i++) {
        assert_int_equal(s.v[i].offset, (int64_t)i);
    }
    assert_string_equal(s.v[5].key, "k5");
    assert_int_equal(s.v[7].timestamp, 2002);
    seen_fini(&s);

    coll_read_t r;
    assert_int_equal(coll_log_read(log, 6, 1 << 20, INT64_MAX, 0, &r), 0);
    assert_int_equal(r.first_offset, 5); /* the batch holding 6 */
    assert_int_equal(r.next_offset, 8);
    assert_int_equal(r.log_end_offset, 8);
    assert_true(r.fd >= 0);
    coll_read_release(&r);

    /* At the end: empty. Past either end: out of range. */
    assert_int_equal(coll_log_read(log, 8, 1 << 20, INT64_MAX, 0, &r), 0);
    assert_int_equal(r.len, 0);
    assert_int_equal(coll_log_read(log, 9, 1 << 20, INT64_MAX, 0, &r), -ERANGE);
    assert_int_equal(coll_log_read(log, -1, 1 << 20, INT64_MAX, 0, &r), -ERANGE);

    /* A byte limit below one batch still returns that batch, unless strict. */
    assert_int_equal(coll_log_read(log, 0, 10, INT64_MAX, 0, &r), 0);
    assert_int_equal(r.first_offset, 0);
    assert_int_equal(r.next_offset, 5);
    size_t first_len = r.len;
    coll_read_release(&r);
    assert_int_equal(coll_log_read(log, 0, 10, INT64_MAX, COLL_READ_STRICT, &r), 0);
    assert_int_equal(r.len, 0);
    assert_int_equal(coll_log_read(log, 0, first_len + 1, INT64_MAX, 0, &r), 0);
    assert_int_equal(r.len, first_len);
    coll_read_release(&r);

    /* The high watermark bounds what a consumer sees. */
    assert_int_equal(coll_log_read(log, 0, 1 << 20, 5, 0, &r), 0);
    assert_int_equal(r.len, first_len);
    assert_int_equal(r.next_offset, 5);
    coll_read_release(&r);
    assert_int_equal(coll_log_read(log, 5, 1 << 20, 5, 0, &r), 0);
    assert_int_equal(r.len, 0);
    fx_fini(&fx);
}

static void test_append_validation(void **state)
{
    (void)state;
    fixture_t fx;
    fx_init(&fx);
    fx_open(&fx);
    coll_log_config_t cfg;
    coll_log_config_init(&cfg);
    cfg.max_message_bytes = 2000;
    coll_log_t *log = fx_log(&fx, "v", 0, &cfg);
    trib_buf_t b;
    trib_buf_init(&b);
    build_batch(&b, 3, 0, 10, "a", 10, 1, TRIB_CODEC_NONE);
    size_t len;
    uint8_t *p = (uint8_t *)trib_buf_flatten(&b, &len);

    /* A flipped bit: CRC. */
    p[len - 1] ^= 1;
    assert_int_equal(coll_log_append(log, p, len, 0, 0, NULL), TRIB_ECRC);
    /* The caller vouches for the CRC: accepted as is. */
    assert_int_equal(coll_log_append(log, p, len, 0, COLL_APPEND_CRC_VERIFIED, NULL), 0);
    p[len - 1] ^= 1;
    /* A partial batch, nothing, a short header. */
    assert_int_equal(coll_log_append(log, p, len - 1, 0, 0, NULL), TRIB_ETRUNCATED);
    assert_int_equal(coll_log_append(log, p, 0, 0, 0, NULL), -EINVAL);
    assert_int_equal(coll_log_append(log, p, 5, 0, 0, NULL), TRIB_ETRUNCATED);
    assert_int_equal(coll_log_end_offset(log), 3);

    /* Too large for max.message.bytes. */
    trib_buf_t big;
    trib_buf_init(&big);
    build_batch(&big, 3, 0, 10, "a", 1000, 1, TRIB_CODEC_NONE);
    size_t blen;
    uint8_t *bp = (uint8_t *)trib_buf_flatten(&big, &blen);
    assert_int_equal(coll_log_append(log, bp, blen, 0, 0, NULL), TRIB_ETOO_LARGE);

    /* Two batches where the second is bad: nothing is written. */
    trib_buf_t two;
    trib_buf_init(&two);
    build_batch(&two, 2, 0, 10, "a", 10, 1, TRIB_CODEC_NONE);
    build_batch(&two, 2, 0, 10, "b", 10, 1, TRIB_CODEC_NONE);
    size_t tlen;
    uint8_t *tp = (uint8_t *)trib_buf_flatten(&two, &tlen);
    tp[tlen - 1] ^= 0x40;
    assert_int_equal(coll_log_append(log, tp, tlen, 0, 0, NULL), TRIB_ECRC);
    assert_int_equal(coll_log_end_offset(log), 3);
    tp[tlen - 1] ^= 0x40;
    coll_append_info_t info;
    assert_int_equal(coll_log_append(log, tp, tlen, 0, 0, &info), 0);
    assert_int_equal(info.base_offset, 3);
    assert_int_equal(info.last_offset, 6);
    assert_int_equal(info.batch_count, 2);
    /* Offsets were stamped in place. */
    trib_batch_t pb;
    assert_int_equal(trib_batch_parse(&pb, tp, tlen, 0), 0);
    assert_int_equal(pb.base_offset, 3);

    /* A follower append keeps its offsets (a gap is fine) but must not go back. */
    trib_buf_t f;
    trib_buf_init(&f);
    trib_batch_opts_t o;
    trib_batch_opts_init(&o);
    o.base_offset = 100;
    o.partition_leader_epoch = 7;
    trib_batch_builder_t bb;
    assert_int_equal(trib_batch_builder_init(&bb, &f, &o), 0);
    trib_record_in_t rin = {.key = trib_record_bytes("k", 1), .value = trib_record_bytes("v", 1)};
    assert_int_equal(trib_batch_builder_add_at(&bb, 0, &rin), 0);
    assert_int_equal(trib_batch_builder_add_at(&bb, 5, &rin), 0);
    assert_int_equal(trib_batch_builder_finish(&bb), 0);
    trib_batch_builder_fini(&bb);
    size_t flen;
    uint8_t *fp = (uint8_t *)trib_buf_flatten(&f, &flen);
    /* As a leader's append it is malformed (lastOffsetDelta != count - 1). */
    assert_int_equal(coll_log_append(log, fp, flen, 0, 0, NULL), TRIB_EMALFORMED);
    assert_int_equal(coll_log_append(log, fp, flen, 0, COLL_APPEND_FOLLOWER, &info), 0);
    assert_int_equal(info.base_offset, 100);
    assert_int_equal(info.log_end_offset, 106);
    assert_int_equal(coll_log_latest_epoch(log), 7);
    assert_int_equal(coll_log_append(log, fp, flen, 0, COLL_APPEND_FOLLOWER, NULL),
                     TRIB_EMALFORMED);
    trib_buf_fini(&f);
    trib_buf_fini(&two);
    trib_buf_fini(&big);
    trib_buf_fini(&b);
    fx_fini(&fx);
}

/* Reads every offset one by one and as a stream, across many segments. */
static void test_segments_and_cross_reads(void **state)
{
    (void)state;
    fixture_t fx;
    fx_init(&fx);
    fx_open(&fx);
    coll_log_config_t cfg;
    coll_log_config_init(&cfg);
    cfg.segment_bytes = 8192;
    cfg.index_interval_bytes = 256;
    coll_log_t *log = fx_log(&fx, "seg", 3, &cfg);
    int64_t total = 0;
    for (int i = 0; i < 300; i++) {
        int n = 1 + i % 7;
        coll_append_info_t a =
            append_records(log, n, (int)total, 1000000, 20 + (size_t)(i % 50), 1000 + i);
        assert_int_equal(a.base_offset, total);
        total += n;
    }
    assert_int_equal(coll_log_end_offset(log), total);
    assert_true(coll_log_segment_count(log) > 5);
    assert_int_equal(count_files(coll_log_dir(log), ".log"), coll_log_segment_count(log));
    coll_log_set_high_watermark(log, total);

    /* Streamed, with several byte limits. */
    size_t limits[] = {1, 300, 4096, 1 << 20};
    for (size_t l = 0; l < sizeof(limits) / sizeof(limits[0]); l++) {
        seen_t s;
        read_all(log, 0, limits[l], &s);
        assert_int_equal(s.n, (size_t)total);
        for (size_t i = 0; i < s.n; i++) {
            assert_int_equal(s.v[i].offset, (int64_t)i);
            char key[32];
            snprintf(key, sizeof(key), "k%zu", i);
            assert_string_equal(s.v[i].key, key);
        }
        if (limits[l] == 1 << 20) {
            /* One read per segment: a read never spans two. */
            assert_int_equal(s.reads, coll_log_segment_count(log));
        }
        seen_fini(&s);
    }
    /* Every single offset finds the batch holding it. */
    for (int64_t off = 0; off < total; off++) {
        coll_read_t r;
        assert_int_equal(coll_log_read(log, off, 1, INT64_MAX, 0, &r), 0);
        assert_true(r.len > 0);
        assert_true(r.first_offset <= off);
        assert_true(r.next_offset > off);
        coll_read_release(&r);
    }
    fx_fini(&fx);
}

/* The in-place indexes equal the ones recovery rebuilds; lookups by time. */
static void test_index_and_time_lookup(void **state)
{
    (void)state;
    fixture_t fx;
    fx_init(&fx);
    fx_open(&fx);
    coll_log_config_t cfg;
    coll_log_config_init(&cfg);
    cfg.segment_bytes = 16 * 1024;
    cfg.index_interval_bytes = 512;
    fx.cfg.log_defaults = cfg; /* what a restart applies: the topic's config */
    coll_log_t *log = fx_log(&fx, "time", 0, &cfg);
    /* Timestamps mostly rise, with some going back. */
    int64_t ts_of[2000];
    int64_t off = 0;
    for (int i = 0; i < 400; i++) {
        int64_t ts = 10000 + i * 10 - ((i % 5 == 0) ? 35 : 0);
        coll_append_info_t a = append_records(log, 3, 0, 0, 40, ts);
        for (int k = 0; k < 3; k++) {
            ts_of[off + k] = ts + k;
        }
        off = a.log_end_offset;
    }
    int64_t total = off;
    size_t nseg = coll_log_segment_count(log);
    assert_true(nseg >= 3);

    for (int64_t t = 9900; t <= 10000 + 400 * 10 + 10; t += 7) {
        int64_t want = -1;
        for (int64_t o = 0; o < total; o++) {
            if (ts_of[o] >= t) {
                want = o;
                break;
            }
        }
        int64_t got, got_ts;
        int rc = coll_log_offset_for_timestamp(log, t, &got, &got_ts);
        if (want < 0) {
            assert_int_equal(rc, TRIB_ENOT_FOUND);
        } else {
            assert_int_equal(rc, 0);
            assert_int_equal(got, want);
            assert_int_equal(got_ts, ts_of[want]);
        }
    }

    /* Save the index files, crash-reopen (indexes rebuilt), compare byte for byte. */
    char path[512];
    size_t n_idx = 0;
    char *saved[64][2];
    size_t saved_len[64][2];
    fx_close(&fx);
    char logdir[300];
    snprintf(logdir, sizeof(logdir), "%s/time-0", fx.dir);
    int64_t bases[64];
    DIR *d = opendir(logdir);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name);
        if (l == 24 && strcmp(de->d_name + 20, ".log") == 0 && n_idx < 64) {
            bases[n_idx++] = strtoll(de->d_name, NULL, 10);
        }
    }
    closedir(d);
    for (size_t i = 0; i < n_idx; i++) {
        snprintf(path, sizeof(path), "%s/%020" PRId64 ".index", logdir, bases[i]);
        saved[i][0] = read_whole(path, &saved_len[i][0]);
        snprintf(path, sizeof(path), "%s/%020" PRId64 ".timeindex", logdir, bases[i]);
        saved[i][1] = read_whole(path, &saved_len[i][1]);
        assert_non_null(saved[i][0]);
        assert_non_null(saved[i][1]);
        if (saved_len[i][0] > 0) {
            assert_int_equal(saved_len[i][0] % 8, 0);
        }
    }
    fx_forget_clean_shutdown(&fx);
    fx_open(&fx);
    assert_int_equal(coll_storage_get_log(fx.st, "time", 0, &log), 0);
    assert_int_equal(coll_log_end_offset(log), total);
    fx_close(&fx);
    for (size_t i = 0; i < n_idx; i++) {
        size_t l0, l1;
        snprintf(path, sizeof(path), "%s/%020" PRId64 ".index", logdir, bases[i]);
        char *a = read_whole(path, &l0);
        snprintf(path, sizeof(path), "%s/%020" PRId64 ".timeindex", logdir, bases[i]);
        char *b = read_whole(path, &l1);
        assert_int_equal(l0, saved_len[i][0]);
        assert_memory_equal(a, saved[i][0], l0);
        assert_int_equal(l1, saved_len[i][1]);
        assert_memory_equal(b, saved[i][1], l1);
        free(a);
        free(b);
        free(saved[i][0]);
        free(saved[i][1]);
    }
    fx_open(&fx);
    assert_int_equal(coll_storage_get_log(fx.st, "time", 0, &log), 0);
    int64_t got, got_ts;
    assert_int_equal(coll_log_offset_for_timestamp(log, 10000 + 201 * 10, &got, &got_ts), 0);
    assert_int_equal(got_ts, 10000 + 201 * 10);
    fx_fini(&fx);
}

static void test_log_append_time(void **state)
{
    (void)state;
    fixture_t fx;
    fx_init(&fx);
    fx_open(&fx);
    coll_log_t *log = fx_log(&fx, "lat", 0, NULL);
    trib_buf_t b;
    trib_buf_init(&b);
    build_batch(&b, 4, 0, 10, "a", 10, 5, TRIB_CODEC_NONE);
    size_t len;
    uint8_t *p = (uint8_t *)trib_buf_flatten(&b, &len);
    coll_append_info_t info;
    assert_int_equal(coll_log_append(log, p, len, 0, COLL_APPEND_LOG_APPEND_TIME, &info), 0);
    assert_int_equal(info.log_append_time, fx.now);
    assert_int_equal(info.max_timestamp, fx.now);
    trib_buf_fini(&b);
    seen_t s;
    read_all(log, 0, 1 << 20, &s); /* CRCs checked */
    assert_int_equal(s.n, 4);
    for (size_t i = 0; i < s.n; i++) {
        assert_int_equal(s.v[i].timestamp, fx.now);
    }
    seen_fini(&s);
    int64_t off, ts;
    assert_int_equal(coll_log_offset_for_timestamp(log, fx.now, &off, &ts), 0);
    assert_int_equal(off, 0);
    assert_int_equal(coll_log_offset_for_timestamp(log, fx.now + 1, &off, &ts), TRIB_ENOT_FOUND);
    fx_fini(&fx);
}

static void test_roll_by_age(void **state)
{
    (void)state;
    fixture_t fx;
    fx_init(&fx);
    fx_open(&fx);
    coll_log_config_t cfg;
    coll_log_config_init(&cfg);
    cfg.segment_ms = 1000;
    coll_log_t *log = fx_log(&fx, "age", 0, &cfg);
    append_records(log, 2, 0, 10, 5, 5000);
    append_records(log, 2, 0, 10, 5, 5900); /* within segment.ms of the first batch */
    assert_int_equal(coll_log_segment_count(log), 1);
    append_records(log, 2, 0, 10, 5, 6001); /* spans more than segment.ms: roll */
    assert_int_equal(coll_log_segment_count(log), 2);
    fx_fini(&fx);
}

static void test_retention_by_size(void **state)
{
    (void)state;
    fixture_t fx;
    fx_init(&fx);
    fx_open(&fx);
    coll_log_config_t cfg;
    coll_log_config_init(&cfg);
    cfg.segment_bytes = 4096;
    cfg.retention_bytes = 3 * 4096;
    coll_log_t *log = fx_log(&fx, "size", 0, &cfg);
    for (int i = 0; i < 100; i++) {
        append_records(log, 4, 0, 10, 100, fx.now);
    }
    size_t before = coll_log_segment_count(log);
    assert_true(before > 6);
    /* Nothing is committed yet: nothing may go. */
    coll_storage_enforce_retention(fx.st);
    assert_int_equal(coll_log_segment_count(log), before);
    coll_log_set_high_watermark(log, coll_log_end_offset(log));
    coll_storage_enforce_retention(fx.st);
    assert_true(coll_log_segment_count(log) < before);
    assert_true(coll_log_size(log) >= 3 * 4096 - 4096);
    assert_true(coll_log_size(log) <= 3 * 4096 + 4096);
    int64_t start = coll_log_start_offset(log);
    assert_true(start > 0);
    fx_run(&fx);
    assert_int_equal(count_files(coll_log_dir(log), ".log"), coll_log_segment_count(log));
    assert_int_equal(count_files(coll_log_dir(log), ".deleted"), 0);
    coll_read_t r;
    assert_int_equal(coll_log_read(log, start - 1, 100, INT64_MAX, 0, &r), -ERANGE);
    seen_t s;
    read_all(log, start, 1 << 20, &s);
    assert_int_equal(s.v[0].offset, start);
    assert_int_equal(s.v[s.n - 1].offset, coll_log_end_offset(log) - 1);
    seen_fini(&s);
    fx_close(&fx);
    /* The log start survives a restart through its checkpoint. */
    fx_open(&fx);
    assert_int_equal(coll_storage_get_log(fx.st, "size", 0, &log), 0);
    assert_int_equal(coll_log_start_offset(log), start);
    fx_fini(&fx);
}

static void test_retention_by_time(void **state)
{
    (void)state;
    fixture_t fx;
    fx_init(&fx);
    fx_open(&fx);
    coll_log_config_t cfg;
    coll_log_config_init(&cfg);
    cfg.segment_bytes = 4096;
    cfg.retention_ms = 60000;
    coll_log_t *log = fx_log(&fx, "time", 1, &cfg);
    /* Old records (an hour ago), then recent ones. */
    for (int i = 0; i < 40; i++) {
        append_records(log, 4, 0, 10, 100, fx.now - 3600000 + i);
    }
    int64_t old_end = coll_log_end_offset(log);
    for (int i = 0; i < 40; i++) {
        append_records(log, 4, 0, 10, 100, fx.now - 1000 + i);
    }
    coll_log_set_high_watermark(log, coll_log_end_offset(log));
    coll_storage_enforce_retention(fx.st);
    fx_run(&fx);
    /* Every old segment went; the one holding both old and new stays. */
    int64_t start = coll_log_start_offset(log);
    assert_true(start > 0);
    assert_true(start <= old_end);
    coll_read_t r;
    assert_int_equal(coll_log_read(log, start, 1 << 20, INT64_MAX, 0, &r), 0);
    assert_true(r.len > 0);
    coll_read_release(&r);

    /* Everything expires: the active segment is rolled and goes too. */
    fx.now += 3600000;
    int64_t leo = coll_log_end_offset(log);
    coll_storage_enforce_retention(fx.st);
    fx_run(&fx);
    assert_int_equal(coll_log_start_offset(log), leo);
    assert_int_equal(coll_log_end_offset(log), leo);
    assert_int_equal(coll_log_segment_count(log), 1);
    assert_int_equal(coll_log_size(log), 0);
    coll_append_info_t a = append_records(log, 1, 0, 10, 1, fx.now);
    assert_int_equal(a.base_offset, leo);
    fx_fini(&fx);
}

static void test_delete_records(void **state)
{
    (void)state;
    fixture_t fx;
    fx_init(&fx);
    fx_open(&fx);
    coll_log_config_t cfg;
    coll_log_config_init(&cfg);
    cfg.segment_bytes = 2048;
    coll_log_t *log = fx_log(&fx, "dr", 0, &cfg);
    for (int i = 0; i < 50; i++) {
        append_records(log, 5, 0, 10, 50, fx.now);
    }
    int64_t leo = coll_log_end_offset(log);
    int64_t low;
    assert_int_equal(coll_log_delete_records(log, 10, &low), -ERANGE); /* above the HW (0) */
    coll_log_set_high_watermark(log, 120);
    size_t before = coll_log_segment_count(log);
    assert_int_equal(coll_log_delete_records(log, 103, &low), 0);
    assert_int_equal(low, 103);
    assert_int_equal(coll_log_start_offset(log), 103);
    assert_true(coll_log_segment_count(log) < before);
    coll_read_t r;
    assert_int_equal(coll_log_read(log, 102, 100, INT64_MAX, 0, &r), -ERANGE);
    seen_t s;
    read_all(log, 103, 1 << 20, &s);
    /* The batch holding 103 comes whole; nothing below it is lost track of. */
    assert_true(s.v[0].offset <= 103);
    assert_int_equal(s.v[s.n - 1].offset, leo - 1);
    seen_fini(&s);
    assert_int_equal(coll_log_delete_records(log, -1, &low), 0);
    assert_int_equal(low, 120);
    fx_run(&fx);
    assert_int_equal(count_files(coll_log_dir(log), ".log"), coll_log_segment_count(log));
    fx_fini(&fx);
}

static void test_truncation(void **state)
{
    (void)state;
    fixture_t fx;
    fx_init(&fx);
    fx_open(&fx);
    coll_log_config_t cfg;
    coll_log_config_init(&cfg);
    cfg.segment_bytes = 2048;
    cfg.index_interval_bytes = 128;
    coll_log_t *log = fx_log(&fx, "tr", 0, &cfg);
    trib_buf_t b;
    for (int i = 0; i < 60; i++) {
        trib_buf_init(&b);
        build_batch(&b, 4, i * 4, 1000000, "e", 40, 1000 + i, TRIB_CODEC_NONE);
        append_buf(log, &b, i < 20 ? 1 : i < 40 ? 3 : 6);
        trib_buf_fini(&b);
    }
    assert_int_equal(coll_log_end_offset(log), 240);
    coll_log_set_high_watermark(log, 240);
    int32_t ep;
    int64_t end;
    coll_log_end_offset_for_epoch(log, 3, &ep, &end);
    assert_int_equal(ep, 3);
    assert_int_equal(end, 160);
    coll_log_end_offset_for_epoch(log, 2, &ep, &end);
    assert_int_equal(ep, 1);
    assert_int_equal(end, 80);
    coll_log_end_offset_for_epoch(log, 6, &ep, &end);
    assert_int_equal(end, 240);
    size_t nseg = coll_log_segment_count(log);
    assert_true(nseg > 4);

    /* Into the middle of an older segment (mid-batch: that batch goes). */
    assert_int_equal(coll_log_truncate_to(log, 90), 0);
    assert_int_equal(coll_log_end_offset(log), 90);
    assert_int_equal(coll_log_high_watermark(log), 90);
    assert_true(coll_log_segment_count(log) < nseg);
    assert_int_equal(coll_log_latest_epoch(log), 3);
    coll_log_end_offset_for_epoch(log, 3, &ep, &end);
    assert_int_equal(end, 90);
    seen_t s;
    read_all(log, 0, 1 << 20, &s);
    assert_int_equal(s.n, 88); /* the batch 88..91 was cut whole */
    seen_fini(&s);
    /* Appends continue at the new end, as the leader's offsets say. */
    coll_append_info_t a = append_records(log, 4, 0, 10, 40, 5000);
    assert_int_equal(a.base_offset, 90);
    fx_run(&fx);
    assert_int_equal(count_files(coll_log_dir(log), ".log"), coll_log_segment_count(log));
    coll_log_set_high_watermark(log, 94);

    /* A restart sees the truncated log (clean, then crash-style). */
    fx_close(&fx);
    fx_open(&fx);
    assert_int_equal(coll_storage_get_log(fx.st, "tr", 0, &log), 0);
    assert_int_equal(coll_log_end_offset(log), 94);
    /* The last append's epoch 0 is older than 3: the cache keeps 3, as Kafka's does. */
    assert_int_equal(coll_log_latest_epoch(log), 3);
    coll_log_end_offset_for_epoch(log, 3, &ep, &end);
    assert_int_equal(ep, 3);
    assert_int_equal(end, 94);
    fx_close(&fx);
    fx_forget_clean_shutdown(&fx);
    fx_open(&fx);
    assert_int_equal(coll_storage_get_log(fx.st, "tr", 0, &log), 0);
    assert_int_equal(coll_log_end_offset(log), 94);
    read_all(log, 0, 1 << 20, &s);
    assert_int_equal(s.n, 92);
    seen_fini(&s);

    /* Truncating fully restarts the log elsewhere. */
    assert_int_equal(coll_log_truncate_to(log, -1), -EINVAL);
    assert_int_equal(coll_log_truncate_fully(log, 1000), 0);
    assert_int_equal(coll_log_start_offset(log), 1000);
    assert_int_equal(coll_log_end_offset(log), 1000);
    assert_int_equal(coll_log_segment_count(log), 1);
    a = append_records(log, 2, 0, 10, 4, 6000);
    assert_int_equal(a.base_offset, 1000);
    fx_run(&fx);
    assert_int_equal(count_files(coll_log_dir(log), ".log"), 1);
    fx_fini(&fx);
}

static void noop_timer(uv_timer_t *t)
{
    (void)t;
}

static void test_fd_budget(void **state)
{
    (void)state;
    fixture_t fx;
    fx_init(&fx);
    fx.cfg.max_open_segments = 2;
    fx.cfg.segment_idle_ms = 1;
    fx.cfg.tick_ms = 1;
    fx_open(&fx);
    coll_log_config_t cfg;
    coll_log_config_init(&cfg);
    cfg.segment_bytes = 1024;
    coll_log_t *log = fx_log(&fx, "fd", 0, &cfg);
    for (int i = 0; i < 60; i++) {
        append_records(log, 2, 0, 10, 100, fx.now);
    }
    assert_true(coll_log_segment_count(log) > 10);
    coll_storage_stats_t stats;
    coll_storage_get_stats(fx.st, &stats);
    assert_true(stats.open_segments <= 2);
    seen_t s;
    read_all(log, 0, 100, &s);
    assert_int_equal(s.n, 120);
    seen_fini(&s);
    coll_storage_get_stats(fx.st, &stats);
    assert_true(stats.open_segments <= 2);
    /* A held read keeps its segment open past the budget. */
    coll_read_t held;
    assert_int_equal(coll_log_read(log, 0, 100, INT64_MAX, 0, &held), 0);
    read_all(log, 0, 100, &s);
    seen_fini(&s);
    uint8_t byte;
    assert_int_equal(coll_read_copy(&held, 0, &byte, 1), 1);
    coll_read_release(&held);
    /* Background syncs of the rolled segments hold them open while they run. */
    fx_run(&fx);
    /* The idle sweep closes the rest (the timer runs while a handle keeps the loop). */
    uv_timer_t t;
    uv_timer_init(&fx.loop, &t);
    assert_int_equal(uv_timer_start(&t, noop_timer, 50, 0), 0);
    uv_run(&fx.loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&fx.loop, UV_RUN_DEFAULT);
    coll_storage_get_stats(fx.st, &stats);
    assert_int_equal(stats.open_segments, 0);
    fx_fini(&fx);
}

static int g_deleted;

static void on_deleted(coll_log_t *log, void *arg, int status)
{
    (void)log;
    (void)arg;
    assert_int_equal(status, 0);
    g_deleted++;
}

typedef struct wait_probe {
    coll_durable_req_t req;
    int status, calls;
} wait_probe_t;

static void on_wait(coll_durable_req_t *req, int status)
{
    wait_probe_t *w = req->data;
    w->status = status;
    w->calls++;
}

static void test_delete_log(void **state)
{
    (void)state;
    fixture_t fx;
    fx_init(&fx);
    /* A deletion a crash interrupted is finished by the next open. */
    char left[512];
    snprintf(left, sizeof(left), "%s/old-3.0123456789abcdef0123456789abcdef-delete", fx.dir);
    assert_int_equal(mkdir(left, 0755), 0);
    char f[600];
    snprintf(f, sizeof(f), "%s/00000000000000000000.log", left);
    close(open(f, O_CREAT | O_WRONLY, 0644));
    fx_open(&fx);
    fx_run(&fx);
    assert_true(file_size(left) < 0);

    coll_log_config_t cfg;
    coll_log_config_init(&cfg);
    cfg.segment_bytes = 2048;
    coll_log_t *log = fx_log(&fx, "gone", 0, &cfg);
    for (int i = 0; i < 20; i++) {
        append_records(log, 3, 0, 10, 50, 1);
    }
    coll_read_t held;
    assert_int_equal(coll_log_read(log, 0, 1 << 20, INT64_MAX, 0, &held), 0);
    uint8_t *before = malloc(held.len);
    assert_int_equal(coll_read_copy(&held, 0, before, held.len), (ssize_t)held.len);
    wait_probe_t w = {.req = {.data = &w}};
    assert_int_equal(coll_log_wait_durable(log, coll_log_end_offset(log) - 1, &w.req, on_wait), 0);
    g_deleted = 0;
    char dir[512];
    snprintf(dir, sizeof(dir), "%s", coll_log_dir(log));
    assert_int_equal(coll_storage_delete_log(fx.st, log, on_deleted, NULL), 0);
    assert_int_equal(g_deleted, 0);
    assert_int_equal(coll_storage_get_log(fx.st, "gone", 0, &log), TRIB_ENOT_FOUND);
    assert_true(file_size(dir) < 0); /* renamed away at once */
    /* The same name again, right away. */
    coll_log_t *again = fx_log(&fx, "gone", 0, &cfg);
    assert_int_equal(coll_log_end_offset(again), 0);
    append_records(again, 2, 0, 10, 5, 1);
    fx_run(&fx);
    assert_int_equal(w.calls, 1);
    assert_true(w.status == -ECANCELED || w.status == 0);
    /* The held read still has the old bytes; the log waits for it. */
    assert_int_equal(g_deleted, 0);
    uint8_t *after = malloc(held.len);
    assert_int_equal(coll_read_copy(&held, 0, after, held.len), (ssize_t)held.len);
    assert_memory_equal(before, after, held.len);
    coll_read_release(&held);
    fx_run(&fx);
    assert_int_equal(g_deleted, 1);
    free(before);
    free(after);
    assert_int_equal(coll_storage_log_count(fx.st), 1);
    fx_close(&fx);
    /* Only the new log is there after a restart. */
    fx_open(&fx);
    assert_int_equal(coll_storage_log_count(fx.st), 1);
    assert_int_equal(coll_storage_get_log(fx.st, "gone", 0, &log), 0);
    assert_int_equal(coll_log_end_offset(log), 2);
    DIR *d = opendir(fx.dir);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        assert_null(strstr(de->d_name, "-delete"));
    }
    closedir(d);
    fx_fini(&fx);
}

static void test_max_timestamp(void **state)
{
    (void)state;
    fixture_t fx;
    fx_init(&fx);
    fx_open(&fx);
    coll_log_config_t cfg;
    coll_log_config_init(&cfg);
    cfg.segment_bytes = 1024;
    coll_log_t *log = fx_log(&fx, "maxts", 0, &cfg);
    int64_t off, ts;
    assert_int_equal(coll_log_max_timestamp(log, &off, &ts), TRIB_ENOT_FOUND);
    for (int i = 0; i < 30; i++) {
        /* The peak (5000 + 2, twice) is in batch 12, records 2 and 3 of 4. */
        int64_t base = i == 12 ? 5000 : 1000 + i * 10;
        trib_buf_t b;
        trib_buf_init(&b);
        trib_batch_opts_t o;
        trib_batch_opts_init(&o);
        trib_batch_builder_t bb;
        assert_int_equal(trib_batch_builder_init(&bb, &b, &o), 0);
        for (int k = 0; k < 4; k++) {
            trib_record_in_t r = {.key = trib_record_bytes("k", 1),
                                  .value = trib_record_bytes("0123456789012345678901234567890", 31),
                                  .timestamp = base + (k == 3 ? 2 : k)};
            assert_int_equal(trib_batch_builder_add(&bb, &r), 0);
        }
        assert_int_equal(trib_batch_builder_finish(&bb), 0);
        trib_batch_builder_fini(&bb);
        append_buf(log, &b, 0);
        trib_buf_fini(&b);
    }
    assert_true(coll_log_segment_count(log) > 3);
    assert_int_equal(coll_log_max_timestamp(log, &off, &ts), 0);
    assert_int_equal(ts, 5002);
    assert_int_equal(off, 12 * 4 + 2);
    fx_close(&fx);
    fx_open(&fx);
    assert_int_equal(coll_storage_get_log(fx.st, "maxts", 0, &log), 0);
    assert_int_equal(coll_log_max_timestamp(log, &off, &ts), 0);
    assert_int_equal(off, 12 * 4 + 2);
    fx_fini(&fx);
}

static size_t count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    size_t n = 0;
    while (d && readdir(d)) {
        n++;
    }
    if (d) {
        closedir(d);
    }
    return n;
}

/* Many partitions: one fd each for the active segment, checkpoints for all. */
static void test_many_partitions(void **state)
{
    (void)state;
    fixture_t fx;
    fx_init(&fx);
    fx_open(&fx);
    enum { N = 300 };
    size_t fds0 = count_fds();
    for (int i = 0; i < N; i++) {
        coll_log_t *log = fx_log(&fx, i % 2 ? "odd" : "even", i, NULL);
        append_records(log, 1 + i % 3, 0, 10, 10, 1);
        coll_log_set_high_watermark(log, 1);
    }
    fx_run(&fx);
    assert_true(count_fds() <= fds0 + N + 8);
    assert_int_equal(coll_storage_log_count(fx.st), N);
    /* A new epoch everywhere, then close at once: the epoch files are written by close. */
    for (int i = 0; i < N; i++) {
        coll_log_t *log;
        assert_int_equal(coll_storage_get_log(fx.st, i % 2 ? "odd" : "even", i, &log), 0);
        trib_buf_t b;
        trib_buf_init(&b);
        build_batch(&b, 1, 0, 10, "e", 5, 1, TRIB_CODEC_NONE);
        append_buf(log, &b, 3);
        trib_buf_fini(&b);
        trib_buf_init(&b);
        build_batch(&b, 1, 0, 10, "f", 5, 1, TRIB_CODEC_NONE);
        append_buf(log, &b, 4);
        trib_buf_fini(&b);
    }
    fx_close(&fx);
    for (int i = 0; i < N; i += 37) {
        char epath[512], want[64];
        snprintf(epath, sizeof(epath), "%s/%s-%d/leader-epoch-checkpoint", fx.dir,
                 i % 2 ? "odd" : "even", i);
        char *e = read_whole(epath, NULL);
        assert_non_null(e);
        int end = 1 + i % 3;
        snprintf(want, sizeof(want), "0\n3\n0 0\n3 %d\n4 %d\n", end, end + 1);
        assert_string_equal(e, want);
        free(e);
    }
    char path[512];
    snprintf(path, sizeof(path), "%s/replication-offset-checkpoint", fx.dir);
    size_t len;
    char *c = read_whole(path, &len);
    assert_non_null(c);
    assert_memory_equal(c, "0\n300\n", 6);
    free(c);
    fx_open(&fx);
    assert_int_equal(coll_storage_log_count(fx.st), N);
    for (int i = 0; i < N; i++) {
        coll_log_t *log;
        assert_int_equal(coll_storage_get_log(fx.st, i % 2 ? "odd" : "even", i, &log), 0);
        assert_int_equal(coll_log_end_offset(log), 3 + i % 3);
        assert_int_equal(coll_log_high_watermark(log), 1);
        assert_int_equal(coll_log_latest_epoch(log), 4);
    }
    coll_log_t *none;
    assert_int_equal(coll_storage_get_log(fx.st, "odd", 0, &none), TRIB_ENOT_FOUND);
    fx_fini(&fx);
}

static void test_kafka_files(void **state)
{
    (void)state;
    fixture_t fx;
    fx_init(&fx);
    fx_open(&fx);
    uint8_t id[16];
    for (int i = 0; i < 16; i++) {
        id[i] = (uint8_t)(i * 17 + 3);
    }
    coll_log_t *log;
    trib_error_t err;
    assert_int_equal(coll_storage_create_log(fx.st, "my.topic_x-y", 12, NULL, id, &log, &err), 0);
    assert_int_equal(coll_storage_create_log(fx.st, "../etc", 0, NULL, NULL, &log, &err), -EINVAL);
    assert_int_equal(coll_storage_create_log(fx.st, "my.topic_x-y", 12, NULL, id, &log, &err), 0);
    trib_buf_t b;
    trib_buf_init(&b);
    build_batch(&b, 3, 0, 10, "a", 5, 100, TRIB_CODEC_NONE);
    append_buf(log, &b, 4);
    trib_buf_fini(&b);
    coll_log_set_high_watermark(log, 2);
    fx_close(&fx);

    char path[512];
    snprintf(path, sizeof(path), "%s/my.topic_x-y-12/00000000000000000000.log", fx.dir);
    assert_true(file_size(path) > 0);
    snprintf(path, sizeof(path), "%s/my.topic_x-y-12/leader-epoch-checkpoint", fx.dir);
    char *c = read_whole(path, NULL);
    assert_string_equal(c, "0\n1\n4 0\n");
    free(c);
    snprintf(path, sizeof(path), "%s/my.topic_x-y-12/partition.metadata", fx.dir);
    c = read_whole(path, NULL);
    assert_string_equal(c, "version: 0\ntopic_id: AxQlNkdYaXqLnK2-z-DxAg\n");
    free(c);
    snprintf(path, sizeof(path), "%s/replication-offset-checkpoint", fx.dir);
    c = read_whole(path, NULL);
    assert_string_equal(c, "0\n1\nmy.topic_x-y 12 2\n");
    free(c);
    snprintf(path, sizeof(path), "%s/recovery-point-offset-checkpoint", fx.dir);
    c = read_whole(path, NULL);
    assert_string_equal(c, "0\n1\nmy.topic_x-y 12 3\n");
    free(c);
    snprintf(path, sizeof(path), "%s/log-start-offset-checkpoint", fx.dir);
    c = read_whole(path, NULL);
    assert_string_equal(c, "0\n1\nmy.topic_x-y 12 0\n");
    free(c);
    snprintf(path, sizeof(path), "%s/.kafka_cleanshutdown", fx.dir);
    assert_true(file_size(path) == 0);
    fx_open(&fx);
    assert_true(file_size(path) < 0); /* removed by the open */
    assert_int_equal(coll_storage_get_log(fx.st, "my.topic_x-y", 12, &log), 0);
    uint8_t got[16];
    assert_int_equal(coll_log_topic_id(log, got), 0);
    assert_memory_equal(got, id, 16);
    assert_int_equal(coll_log_high_watermark(log), 2);
    assert_int_equal(coll_log_end_offset(log), 3);
    fx_fini(&fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append_read),
        cmocka_unit_test(test_append_validation),
        cmocka_unit_test(test_segments_and_cross_reads),
        cmocka_unit_test(test_index_and_time_lookup),
        cmocka_unit_test(test_log_append_time),
        cmocka_unit_test(test_roll_by_age),
        cmocka_unit_test(test_retention_by_size),
        cmocka_unit_test(test_retention_by_time),
        cmocka_unit_test(test_delete_records),
        cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_fd_budget),
        cmocka_unit_test(test_many_partitions),
        cmocka_unit_test(test_delete_log),
        cmocka_unit_test(test_max_timestamp),
        cmocka_unit_test(test_kafka_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
