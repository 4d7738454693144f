/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Startup recovery: a torn final batch, a flipped byte, corruption in an
 * older segment, missing and corrupt indexes, zero-length segments,
 * leftover files, an interrupted compaction swap, a log start past the log
 * end, and the clean-shutdown marker that skips it all. Each "crash" is a
 * clean close followed by removing the marker and the recovery point
 * checkpoint, then editing the files the way a crash (or a disk) would.
 */
#include "storage_test.h"

/* Log lines go to a file the test can read. */
typedef struct logcap {
    char path[300];
    int fd;
} logcap_t;

static void logcap_start(logcap_t *c, const fixture_t *fx)
{
    snprintf(c->path, sizeof(c->path), "%s.log", fx->dir);
    c->fd = open(c->path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    assert_true(c->fd >= 0);
    trib_log_set_fd(c->fd);
    trib_log_set_level(TRIB_LOG_INFO);
}

/* Stops capturing and returns what was logged (malloc'd). */
static char *logcap_stop(logcap_t *c)
{
    trib_log_set_fd(2);
    trib_log_set_level(TRIB_LOG_ERROR);
    close(c->fd);
    char *s = read_whole(c->path, NULL);
    unlink(c->path);
    assert_non_null(s);
    return s;
}

/* Sorted base offsets of the .log files in a partition directory. */
static size_t list_segments(const char *dir, int64_t *bases, size_t max)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name);
        if (l == 24 && strcmp(de->d_name + 20, ".log") == 0 && n < max) {
            bases[n++] = strtoll(de->d_name, NULL, 10);
        }
    }
    closedir(d);
    for (size_t i = 1; i < n; i++) {
        for (size_t j = i; j > 0 && bases[j - 1] > bases[j]; j--) {
            int64_t t = bases[j];
            bases[j] = bases[j - 1];
            bases[j - 1] = t;
        }
    }
    return n;
}

static void path_of(const fixture_t *fx, const char *logname, int64_t base, const char *sfx,
                    char *out, size_t n)
{
    snprintf(out, n, "%s/%s/%020" PRId64 "%s", fx->dir, logname, base, sfx);
}

/* A log of `batches` batches of 3 records in segments of seg_bytes; closed cleanly. */
static int64_t make_log(fixture_t *fx, const char *topic, uint64_t seg_bytes, int batches)
{
    coll_log_config_t cfg;
    coll_log_config_init(&cfg);
    cfg.segment_bytes = seg_bytes;
    cfg.index_interval_bytes = 300;
    fx->cfg.log_defaults = cfg;
    fx_open(fx);
    coll_log_t *log = fx_log(fx, topic, 0, &cfg);
    for (int i = 0; i < batches; i++) {
        append_records(log, 3, i * 3, 1000000, 60, 1000 + i * 10);
    }
    int64_t leo = coll_log_end_offset(log);
    coll_log_set_high_watermark(log, leo);
    fx_close(fx);
    return leo;
}

static coll_log_t *reopen(fixture_t *fx, const char *topic)
{
    fx_open(fx);
    coll_log_t *log;
    assert_int_equal(coll_storage_get_log(fx->st, topic, 0, &log), 0);
    return log;
}

/* Every record from 0 to the end, in order, CRCs valid. */
static void check_contiguous(coll_log_t *log, int64_t expect_end)
{
    assert_int_equal(coll_log_end_offset(log), expect_end);
    seen_t s;
    read_all(log, coll_log_start_offset(log), 1 << 20, &s);
    assert_int_equal(s.n, (size_t)(expect_end - coll_log_start_offset(log)));
    for (size_t i = 0; i < s.n; i++) {
        assert_int_equal(s.v[i].offset, coll_log_start_offset(log) + (int64_t)i);
    }
    seen_fini(&s);
}

static void test_torn_final_batch(void **state)
{
    (void)state;
    fixture_t fx;
    fx_init(&fx);
    int64_t leo = make_log(&fx, "torn", 4096, 40);
    int64_t bases[64];
    char dir[400], path[512];
    snprintf(dir, sizeof(dir), "%s/torn-0", fx.dir);
    size_t n = list_segments(dir, bases, 64);
    assert_true(n >= 3);
    path_of(&fx, "torn-0", bases[n - 1], ".log", path, sizeof(path));
    off_t size = file_size(path);
    assert_int_equal(truncate(path, size - 17), 0); /* cut mid-batch */
    fx_forget_clean_shutdown(&fx);

    logcap_t cap;
    logcap_start(&cap, &fx);
    coll_log_t *log = reopen(&fx, "torn");
    char *out = logcap_stop(&cap);
    assert_non_null(strstr(out, "torn write"));
    assert_non_null(strstr(out, "recovered"));
    free(out);
    /* The last batch (3 records) is gone; the rest is intact. */
    check_contiguous(log, leo - 3);
    coll_append_info_t a = append_records(log, 3, 0, 10, 60, 5000);
    assert_int_equal(a.base_offset, leo - 3);
    check_contiguous(log, leo);
    fx_fini(&fx);
}

static void test_flipped_byte(void **state)
{
    (void)state;
    fixture_t fx;
    fx_init(&fx);
    int64_t leo = make_log(&fx, "flip", 1 << 20, 30);
    char path[512];
    path_of(&fx, "flip-0", 0, ".log", path, sizeof(path));
    off_t size = file_size(path);
    int fd = open(path, O_RDWR);
    uint8_t c;
    assert_int_equal(pread(fd, &c, 1, size - 5), 1);
    c ^= 0x10;
    assert_int_equal(pwrite(fd, &c, 1, size - 5), 1);
    close(fd);
    fx_forget_clean_shutdown(&fx);

    logcap_t cap;
    logcap_start(&cap, &fx);
    coll_log_t *log = reopen(&fx, "flip");
    char *out = logcap_stop(&cap);
    assert_non_null(strstr(out, "CRC mismatch"));
    free(out);
    check_contiguous(log, leo - 3);
    fx_close(&fx);

    /* A flipped byte in a middle batch of the last segment: everything after goes. */
    size = file_size(path);
    fd = open(path, O_RDWR);
    assert_int_equal(pread(fd, &c, 1, size / 2), 1);
    c ^= 0x01;
    assert_int_equal(pwrite(fd, &c, 1, size / 2), 1);
    close(fd);
    fx_forget_clean_shutdown(&fx);
    log = reopen(&fx, "flip");
    int64_t end = coll_log_end_offset(log);
    assert_true(end < leo - 3);
    assert_true(end > 0);
    assert_int_equal(end % 3, 0);
    check_contiguous(log, end);
    assert_true(file_size(path) < size);
    fx_fini(&fx);
}

static void test_corrupt_older_segment(void **state)
{
    (void)state;
    fixture_t fx;
    fx_init(&fx);
    make_log(&fx, "old", 4096, 60);
    int64_t bases[64];
    char dir[400], path[512];
    snprintf(dir, sizeof(dir), "%s/old-0", fx.dir);
    size_t n = list_segments(dir, bases, 64);
    assert_true(n >= 4);
    /* Garbage in the second segment; no recovery point: everything is rescanned. */
    path_of(&fx, "old-0", bases[1], ".log", path, sizeof(path));
    int fd = open(path, O_RDWR);
    uint8_t junk[40];
    memset(junk, 0xee, sizeof(junk));
    assert_int_equal(pwrite(fd, junk, sizeof(junk), 600), (ssize_t)sizeof(junk));
    close(fd);
    fx_forget_clean_shutdown(&fx);
    coll_log_t *log = reopen(&fx, "old");
    int64_t end = coll_log_end_offset(log);
    assert_true(end > bases[1]);
    assert_true(end < bases[2]);
    assert_int_equal(coll_log_segment_count(log), 2);
    check_contiguous(log, end);
    assert_int_equal(count_files(dir, ".log"), 2);
    fx_fini(&fx);
}

static void save_file(const char *path, char **buf, size_t *len)
{
    *buf = read_whole(path, len);
    assert_non_null(*buf);
}

static void expect_file(const char *path, const char *buf, size_t len)
{
    size_t l;
    char *now = read_whole(path, &l);
    assert_non_null(now);
    assert_int_equal(l, len);
    assert_memory_equal(now, buf, len);
    free(now);
}

static void test_missing_and_corrupt_index(void **state)
{
    (void)state;
    fixture_t fx;
    fx_init(&fx);
    int64_t leo = make_log(&fx, "idx", 4096, 60);
    int64_t bases[64];
    char dir[400], oi[512], ti[512], oi2[512], ti2[512];
    snprintf(dir, sizeof(dir), "%s/idx-0", fx.dir);
    size_t n = list_segments(dir, bases, 64);
    assert_true(n >= 4);
    path_of(&fx, "idx-0", bases[1], ".index", oi, sizeof(oi));
    path_of(&fx, "idx-0", bases[1], ".timeindex", ti, sizeof(ti));
    path_of(&fx, "idx-0", bases[n - 1], ".index", oi2, sizeof(oi2));
    path_of(&fx, "idx-0", bases[n - 1], ".timeindex", ti2, sizeof(ti2));
    char *so, *st, *so2, *st2;
    size_t lo, lt, lo2, lt2;
    save_file(oi, &so, &lo);
    save_file(ti, &st, &lt);
    save_file(oi2, &so2, &lo2);
    save_file(ti2, &st2, &lt2);
    assert_true(lo > 0);
    assert_true(lt > 0);

    /* Missing indexes, after a clean shutdown (no recovery otherwise). */
    assert_int_equal(unlink(oi), 0);
    assert_int_equal(unlink(ti), 0);
    assert_int_equal(unlink(oi2), 0);
    logcap_t cap;
    logcap_start(&cap, &fx);
    coll_log_t *log = reopen(&fx, "idx");
    char *out = logcap_stop(&cap);
    assert_non_null(strstr(out, "rebuilding"));
    free(out);
    check_contiguous(log, leo);
    int64_t got, got_ts;
    assert_int_equal(coll_log_offset_for_timestamp(log, 1000 + 30 * 10, &got, &got_ts), 0);
    assert_int_equal(got, 90);
    fx_close(&fx);
    expect_file(oi, so, lo);
    expect_file(ti, st, lt);
    expect_file(oi2, so2, lo2);
    expect_file(ti2, st2, lt2);

    /* Corrupt ones: out of order entries, a partial entry, a position past the end. */
    FILE *f = fopen(oi, "r+b");
    uint8_t bad[8] = {0, 0, 0, 9, 0, 0, 0, 1};
    fseek(f, 8, SEEK_SET);
    fwrite(bad, 1, sizeof(bad), f);
    fclose(f);
    f = fopen(ti, "ab");
    fwrite("xyz", 1, 3, f);
    fclose(f);
    f = fopen(oi2, "r+b");
    uint8_t past[8] = {0, 0, 0, 1, 0x7f, 0, 0, 0};
    fwrite(past, 1, sizeof(past), f);
    fclose(f);
    log = reopen(&fx, "idx");
    check_contiguous(log, leo);
    coll_read_t r;
    for (int64_t o = bases[1]; o < bases[2]; o++) {
        assert_int_equal(coll_log_read(log, o, 1, INT64_MAX, 0, &r), 0);
        assert_true(r.first_offset <= o && r.next_offset > o);
        coll_read_release(&r);
    }
    fx_close(&fx);
    expect_file(oi, so, lo);
    expect_file(ti, st, lt);
    expect_file(oi2, so2, lo2);
    free(so);
    free(st);
    free(so2);
    free(st2);
    fx_open(&fx);
    fx_fini(&fx);
}

static void test_zero_length_segments(void **state)
{
    (void)state;
    fixture_t fx;
    fx_init(&fx);
    int64_t leo = make_log(&fx, "zero", 4096, 40);
    int64_t bases[64];
    char dir[400], path[512];
    snprintf(dir, sizeof(dir), "%s/zero-0", fx.dir);
    size_t n = list_segments(dir, bases, 64);
    assert_true(n >= 3);

    /* A crash right after a roll: an empty new segment, no index files. */
    path_of(&fx, "zero-0", leo, ".log", path, sizeof(path));
    int fd = open(path, O_CREAT | O_WRONLY, 0644);
    close(fd);
    fx_forget_clean_shutdown(&fx);
    coll_log_t *log = reopen(&fx, "zero");
    assert_int_equal(coll_log_segment_count(log), n + 1);
    check_contiguous(log, leo);
    coll_append_info_t a = append_records(log, 3, 0, 10, 60, 9000);
    assert_int_equal(a.base_offset, leo);
    assert_true(file_size(path) > 0);
    fx_close(&fx);

    /* An empty segment in the middle (compaction can leave one). */
    path_of(&fx, "zero-0", bases[1], ".log", path, sizeof(path));
    assert_int_equal(truncate(path, 0), 0);
    path_of(&fx, "zero-0", bases[1], ".index", path, sizeof(path));
    unlink(path);
    fx_forget_clean_shutdown(&fx);
    log = reopen(&fx, "zero");
    assert_int_equal(coll_log_end_offset(log), leo + 3);
    seen_t s;
    read_all(log, 0, 1 << 20, &s);
    assert_int_equal(s.n, (size_t)(leo + 3 - (bases[2] - bases[1])));
    assert_int_equal(s.v[bases[1]].offset, bases[2]); /* the gap is skipped */
    seen_fini(&s);
    coll_read_t r;
    assert_int_equal(coll_log_read(log, bases[1] + 1, 1 << 20, INT64_MAX, 0, &r), 0);
    assert_int_equal(r.first_offset, bases[2]);
    coll_read_release(&r);
    fx_close(&fx);

    /* A log whose only segment is empty, without indexes. */
    char d2[400];
    snprintf(d2, sizeof(d2), "%s/empty-0", fx.dir);
    assert_int_equal(mkdir(d2, 0755), 0);
    snprintf(path, sizeof(path), "%s/00000000000000000042.log", d2);
    fd = open(path, O_CREAT | O_WRONLY, 0644);
    close(fd);
    log = reopen(&fx, "empty");
    assert_int_equal(coll_log_start_offset(log), 42);
    assert_int_equal(coll_log_end_offset(log), 42);
    a = append_records(log, 2, 0, 10, 6, 9000);
    assert_int_equal(a.base_offset, 42);
    fx_fini(&fx);
}

static void test_leftovers_and_clean_marker(void **state)
{
    (void)state;
    fixture_t fx;
    fx_init(&fx);
    int64_t leo = make_log(&fx, "left", 4096, 30);
    char dir[400], path[512];
    snprintf(dir, sizeof(dir), "%s/left-0", fx.dir);
    const char *junk[] = {"00000000000000000007.log.deleted", "00000000000000000007.index.deleted",
                          "00000000000000000000.log.cleaned", "leader-epoch-checkpoint.tmp",
                          "00000000000000999999.index",       "00000000000000999999.timeindex"};
    for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, junk[i]);
        int fd = open(path, O_CREAT | O_WRONLY, 0644);
        assert_int_equal(write(fd, "junk", 4), 4);
        close(fd);
    }
    char top_tmp[512];
    snprintf(top_tmp, sizeof(top_tmp), "%s/recovery-point-offset-checkpoint.tmp", fx.dir);
    int tfd = open(top_tmp, O_CREAT | O_WRONLY, 0644);
    close(tfd);
    /* Clean shutdown: no recovery, but the junk still goes. */
    logcap_t cap;
    logcap_start(&cap, &fx);
    coll_log_t *log = reopen(&fx, "left");
    char *out = logcap_stop(&cap);
    assert_null(strstr(out, "recovered"));
    assert_non_null(strstr(out, "clean shutdown"));
    free(out);
    check_contiguous(log, leo);
    for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, junk[i]);
        assert_true(file_size(path) < 0);
    }
    assert_true(file_size(top_tmp) < 0);
    fx_fini(&fx);
}

static void test_swap_completion(void **state)
{
    (void)state;
    fixture_t fx;
    fx_init(&fx);
    int64_t leo = make_log(&fx, "swap", 4096, 50);
    int64_t bases[64];
    char dir[400], a[512], b[512], sw[512];
    snprintf(dir, sizeof(dir), "%s/swap-0", fx.dir);
    size_t n = list_segments(dir, bases, 64);
    assert_true(n >= 4);
    /* A "compacted" copy of segments 0 and 1 that a crash left as a swap. */
    path_of(&fx, "swap-0", bases[0], ".log", a, sizeof(a));
    path_of(&fx, "swap-0", bases[1], ".log", b, sizeof(b));
    path_of(&fx, "swap-0", bases[0], ".log.swap", sw, sizeof(sw));
    size_t la, lb;
    char *da = read_whole(a, &la), *db = read_whole(b, &lb);
    FILE *f = fopen(sw, "wb");
    fwrite(da, 1, la, f);
    fwrite(db, 1, lb, f);
    fclose(f);
    free(da);
    free(db);
    fx_forget_clean_shutdown(&fx);
    coll_log_t *log = reopen(&fx, "swap");
    assert_int_equal(coll_log_segment_count(log), n - 1);
    check_contiguous(log, leo);
    assert_int_equal(count_files(dir, ".swap"), 0);
    assert_int_equal(file_size(a), (off_t)(la + lb));
    assert_true(file_size(b) < 0);
    fx_fini(&fx);
}

static void test_log_start_past_end(void **state)
{
    (void)state;
    fixture_t fx;
    fx_init(&fx);
    int64_t leo = make_log(&fx, "ls", 1 << 20, 5);
    char path[512];
    snprintf(path, sizeof(path), "%s/log-start-offset-checkpoint", fx.dir);
    FILE *f = fopen(path, "w");
    fprintf(f, "0\n1\nls 0 %" PRId64 "\n", leo + 100);
    fclose(f);
    coll_log_t *log = reopen(&fx, "ls");
    assert_int_equal(coll_log_start_offset(log), leo + 100);
    assert_int_equal(coll_log_end_offset(log), leo + 100);
    coll_append_info_t ai = append_records(log, 1, 0, 10, 5, 1);
    assert_int_equal(ai.base_offset, leo + 100);
    fx_close(&fx);
    /* A corrupt checkpoint file only costs a full recovery. */
    f = fopen(path, "w");
    fprintf(f, "0\n5\nls 0 x\n");
    fclose(f);
    log = reopen(&fx, "ls");
    assert_int_equal(coll_log_start_offset(log), leo + 100);
    assert_int_equal(coll_log_end_offset(log), leo + 101);
    fx_fini(&fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_torn_final_batch),
        cmocka_unit_test(test_flipped_byte),
        cmocka_unit_test(test_corrupt_older_segment),
        cmocka_unit_test(test_missing_and_corrupt_index),
        cmocka_unit_test(test_zero_length_segments),
        cmocka_unit_test(test_leftovers_and_clean_marker),
        cmocka_unit_test(test_swap_completion),
        cmocka_unit_test(test_log_start_past_end),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
