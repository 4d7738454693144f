/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Helpers shared by the storage unit tests: a fixture owning a loop, a
 * temporary data directory and a storage; batch building; reading a log
 * back record by record; file surgery for the recovery tests. Everything
 * is static so each test executable stays one file plus this header.
 */
#ifndef TRIB_TEST_STORAGE_H
#define TRIB_TEST_STORAGE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <uv.h>

#include "storage/storage.h"
#include "tributary/buf.h"
#include "tributary/log.h"
#include "tributary/record.h"

/* Not every test file uses every helper. */
#define TEST_HELPER static __attribute__((unused))

typedef struct fixture {
    uv_loop_t loop;
    char dir[256];
    coll_storage_config_t cfg;
    coll_storage_t *st;
    int64_t now; /* the storage's clock */
    int closed;
    int close_status;
} fixture_t;

TEST_HELPER int64_t fx_clock(void *arg)
{
    return ((fixture_t *)arg)->now;
}

TEST_HELPER int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

TEST_HELPER void rm_rf(const char *path)
{
    nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* A fresh fixture with test-friendly defaults (small segments, fake clock). */
TEST_HELPER void fx_init(fixture_t *fx)
{
    memset(fx, 0, sizeof(*fx));
    const char *tmp = getenv("TMPDIR");
    snprintf(fx->dir, sizeof(fx->dir), "%s/trib-storage-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    assert_non_null(mkdtemp(fx->dir));
    assert_int_equal(uv_loop_init(&fx->loop), 0);
    coll_storage_config_init(&fx->cfg);
    fx->cfg.data_dir = fx->dir;
    fx->cfg.clock_ms = fx_clock;
    fx->cfg.clock_arg = fx;
    fx->now = 1700000000000LL;
    fx->cfg.log_defaults.segment_index_bytes = 64 * 1024;
    /* Housekeeping only when a test asks for it. */
    fx->cfg.retention_check_ms = 1u << 30;
    fx->cfg.cleaner_backoff_ms = 1u << 30;
    fx->cfg.checkpoint_interval_ms = 1u << 30;
    trib_log_set_level(getenv("TRIB_TEST_VERBOSE") ? TRIB_LOG_DEBUG : TRIB_LOG_ERROR);
}

TEST_HELPER void fx_open(fixture_t *fx)
{
    trib_error_t err;
    trib_error_clear(&err);
    int rc = coll_storage_open(&fx->loop, &fx->cfg, &fx->st, &err);
    if (rc) {
        fprintf(stderr, "coll_storage_open: %s\n", err.msg);
    }
    assert_int_equal(rc, 0);
    fx->closed = 0;
}

/* Runs the loop until no background work is left. */
TEST_HELPER void fx_run(fixture_t *fx)
{
    uv_run(&fx->loop, UV_RUN_DEFAULT);
}

TEST_HELPER void fx_closed_cb(void *arg, int status)
{
    fixture_t *fx = arg;
    fx->closed = 1;
    fx->close_status = status;
}

TEST_HELPER void fx_close(fixture_t *fx)
{
    assert_int_equal(coll_storage_close(fx->st, fx_closed_cb, fx), 0);
    fx_run(fx);
    assert_true(fx->closed);
    assert_int_equal(fx->close_status, 0);
    fx->st = NULL;
}

/* Closes, checks the loop has nothing left, removes the directory. */
TEST_HELPER void fx_fini(fixture_t *fx)
{
    if (fx->st) {
        fx_close(fx);
    }
    assert_int_equal(uv_loop_close(&fx->loop), 0);
    rm_rf(fx->dir);
}

TEST_HELPER coll_log_t *fx_log(fixture_t *fx, const char *topic, int32_t part,
                               const coll_log_config_t *cfg)
{
    coll_log_t *log = NULL;
    trib_error_t err;
    trib_error_clear(&err);
    int rc = coll_storage_create_log(fx->st, topic, part, cfg, NULL, &log, &err);
    if (rc) {
        fprintf(stderr, "create_log: %s\n", err.msg);
    }
    assert_int_equal(rc, 0);
    return log;
}

/* After a clean close: make the next open behave as after a crash. */
TEST_HELPER void fx_forget_clean_shutdown(fixture_t *fx)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/.kafka_cleanshutdown", fx->dir);
    assert_int_equal(unlink(path), 0);
    snprintf(path, sizeof(path), "%s/recovery-point-offset-checkpoint", fx->dir);
    unlink(path);
}

/*
 * One batch of n records; record i has key "k<key_base+i>" (or null key
 * when key_mod is 0), value "v<tag>-<i>" padded to value_len bytes, and
 * timestamp ts + i.
 */
TEST_HELPER void build_batch(trib_buf_t *out, int n, int key_base, int key_mod, const char *tag,
                             size_t value_len, int64_t ts, int codec)
{
    trib_batch_opts_t o;
    trib_batch_opts_init(&o);
    o.codec = codec;
    trib_batch_builder_t bb;
    assert_int_equal(trib_batch_builder_init(&bb, out, &o), 0);
    for (int i = 0; i < n; i++) {
        char key[32], val[4096];
        int kl = snprintf(key, sizeof(key), "k%d", key_mod ? (key_base + i) % key_mod : 0);
        int vl = snprintf(val, sizeof(val), "v%s-%d", tag, i);
        size_t len = value_len > (size_t)vl ? value_len : (size_t)vl;
        assert_true(len < sizeof(val));
        memset(val + vl, '.', len - (size_t)vl);
        trib_record_in_t r = {
            .key = key_mod ? trib_record_bytes(key, kl) : trib_record_null(),
            .value = trib_record_bytes(val, (int32_t)len),
            .timestamp = ts + i,
        };
        assert_int_equal(trib_batch_builder_add(&bb, &r), 0);
    }
    assert_int_equal(trib_batch_builder_finish(&bb), 0);
    trib_batch_builder_fini(&bb);
}

/* A batch with explicit records: keys/values may be NULL (null). */
TEST_HELPER void build_kv_batch(trib_buf_t *out, size_t n, const char *const *keys,
                                const char *const *values, int64_t ts)
{
    trib_batch_opts_t o;
    trib_batch_opts_init(&o);
    trib_batch_builder_t bb;
    assert_int_equal(trib_batch_builder_init(&bb, out, &o), 0);
    for (size_t i = 0; i < n; i++) {
        trib_record_in_t r = {
            .key =
                keys[i] ? trib_record_bytes(keys[i], (int32_t)strlen(keys[i])) : trib_record_null(),
            .value = values[i] ? trib_record_bytes(values[i], (int32_t)strlen(values[i]))
                               : trib_record_null(),
            .timestamp = ts + (int64_t)i,
        };
        assert_int_equal(trib_batch_builder_add(&bb, &r), 0);
    }
    assert_int_equal(trib_batch_builder_finish(&bb), 0);
    trib_batch_builder_fini(&bb);
}

/* Appends a buffer as a leader would; returns the info. */
TEST_HELPER coll_append_info_t append_buf(coll_log_t *log, trib_buf_t *b, int32_t epoch)
{
    size_t len;
    uint8_t *p = (uint8_t *)trib_buf_flatten(b, &len);
    assert_non_null(p);
    coll_append_info_t info;
    int rc = coll_log_append(log, p, len, epoch, 0, &info);
    if (rc) {
        fprintf(stderr, "append: %s\n", trib_strerror(rc));
    }
    assert_int_equal(rc, 0);
    return info;
}

/* Appends one batch of n simple records. */
TEST_HELPER coll_append_info_t append_records(coll_log_t *log, int n, int key_base, int key_mod,
                                              size_t value_len, int64_t ts)
{
    trib_buf_t b;
    trib_buf_init(&b);
    build_batch(&b, n, key_base, key_mod, "x", value_len, ts, TRIB_CODEC_NONE);
    coll_append_info_t info = append_buf(log, &b, 0);
    trib_buf_fini(&b);
    return info;
}

typedef struct seen_record {
    int64_t offset;
    int64_t timestamp;
    char key[32];
    int key_null;
    int value_null;
    char value[64];
} seen_record_t;

typedef struct seen {
    seen_record_t *v;
    size_t n, cap;
    size_t batches;
    size_t reads;
} seen_t;

TEST_HELPER void seen_fini(seen_t *s)
{
    free(s->v);
    memset(s, 0, sizeof(*s));
}

/* Iterates the batches of bytes (CRC checked), adding their records to s. */
TEST_HELPER void collect_batches(seen_t *s, const uint8_t *p, size_t len)
{
    trib_batch_iter_t it;
    trib_batch_iter_init(&it, p, len, 0);
    trib_batch_t b;
    int rc;
    while ((rc = trib_batch_iter_next(&it, &b)) == 1) {
        s->batches++;
        trib_record_iter_t ri;
        assert_int_equal(trib_record_iter_init(&ri, &b, NULL, 64 << 20), 0);
        trib_record_t r;
        while ((rc = trib_record_iter_next(&ri, &r)) == 1) {
            if (s->n == s->cap) {
                s->cap = s->cap ? s->cap * 2 : 256;
                s->v = realloc(s->v, s->cap * sizeof(*s->v));
                assert_non_null(s->v);
            }
            seen_record_t *x = &s->v[s->n++];
            memset(x, 0, sizeof(*x));
            x->offset = r.offset;
            x->timestamp = r.timestamp;
            x->key_null = r.key.len < 0;
            x->value_null = r.value.len < 0;
            if (r.key.len > 0) {
                memcpy(x->key, r.key.ptr, r.key.len < 31 ? (size_t)r.key.len : 31);
            }
            if (r.value.len > 0) {
                memcpy(x->value, r.value.ptr, r.value.len < 63 ? (size_t)r.value.len : 63);
            }
        }
        assert_int_equal(rc, 0);
        trib_record_iter_fini(&ri);
    }
    assert_int_equal(rc, 0);
    assert_int_equal(trib_batch_iter_partial(&it), 0);
}

/* Reads the whole log from `from` with reads of max_bytes, checking every batch. */
TEST_HELPER void read_all(coll_log_t *log, int64_t from, size_t max_bytes, seen_t *s)
{
    memset(s, 0, sizeof(*s));
    int64_t off = from;
    int64_t leo = coll_log_end_offset(log);
    while (off < leo) {
        coll_read_t r;
        assert_int_equal(coll_log_read(log, off, max_bytes, INT64_MAX, 0, &r), 0);
        if (r.len == 0) {
            break;
        }
        uint8_t *buf = malloc(r.len);
        assert_non_null(buf);
        assert_int_equal(coll_read_copy(&r, 0, buf, r.len), (ssize_t)r.len);
        size_t before = s->n;
        collect_batches(s, buf, r.len);
        free(buf);
        s->reads++;
        assert_true(r.next_offset > off);
        assert_true(s->n > before || r.first_offset >= off);
        off = r.next_offset;
        coll_read_release(&r);
    }
}

TEST_HELPER size_t count_files(const char *dir, const char *suffix)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    size_t n = 0, m = strlen(suffix);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name);
        if (l >= m && strcmp(de->d_name + l - m, suffix) == 0) {
            n++;
        }
    }
    closedir(d);
    return n;
}

TEST_HELPER off_t file_size(const char *path)
{
    struct stat stb;
    if (stat(path, &stb) != 0) {
        return -1;
    }
    return stb.st_size;
}

TEST_HELPER char *read_whole(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    size_t got = fread(buf, 1, (size_t)n, f);
    fclose(f);
    buf[got] = '\0';
    if (len) {
        *len = got;
    }
    return buf;
}

TEST_HELPER void seg_path(const coll_log_t *log, int64_t base, const char *suffix, char *out,
                          size_t n)
{
    snprintf(out, n, "%s/%020" PRId64 "%s", coll_log_dir(log), base, suffix);
}

#endif
