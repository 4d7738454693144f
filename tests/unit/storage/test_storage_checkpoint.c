/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Kafka's text files and the leader epoch cache: offset checkpoints,
 * leader-epoch-checkpoint and partition.metadata round trip byte for byte,
 * malformed files are errors naming their line, atomic replacement leaves
 * no temporary behind, and the epoch cache follows Kafka's rules.
 */
#include "storage_test.h"

#include "storage/storage_int.h"

static void write_file(const char *path, const char *content)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(content, f);
    fclose(f);
}

static void test_offset_checkpoint(void **state)
{
    (void)state;
    char dir[] = "/tmp/trib-ckpt-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof(path), "%s/recovery-point-offset-checkpoint", dir);

    coll_ckpt_t c;
    coll_ckpt_init(&c);
    assert_int_equal(coll_ckpt_read(&c, path, NULL), 0); /* missing: empty */
    assert_int_equal(c.n, 0);
    assert_int_equal(coll_ckpt_add(&c, "web.access", 0, 1234), 0);
    assert_int_equal(coll_ckpt_add(&c, "my-topic-with-dashes", 11, 0), 0);
    assert_int_equal(coll_ckpt_add(&c, "__consumer_offsets", 49, 9000000000LL), 0);
    char *text;
    size_t len;
    assert_int_equal(coll_ckpt_format(&c, &text, &len), 0);
    assert_string_equal(text, "0\n3\nweb.access 0 1234\nmy-topic-with-dashes 11 0\n"
                              "__consumer_offsets 49 9000000000\n");
    assert_int_equal(trib_write_file_atomic(path, text, len), 0);
    free(text);
    coll_ckpt_fini(&c);
    char tmp[160];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    assert_true(file_size(tmp) < 0);

    coll_ckpt_init(&c);
    assert_int_equal(coll_ckpt_read(&c, path, NULL), 0);
    assert_int_equal(c.n, 3);
    assert_int_equal(coll_ckpt_get(&c, "my-topic-with-dashes", 11), 0);
    assert_int_equal(coll_ckpt_get(&c, "__consumer_offsets", 49), 9000000000LL);
    assert_int_equal(coll_ckpt_get(&c, "web.access", 1), -1);
    coll_ckpt_fini(&c);

    struct {
        const char *text;
        int line;
    } bad[] = {
        {"1\n0\n", 1},
        {"0\n", 2},
        {"0\n2\nt 0 1\n", 4},
        {"0\n1\nt x 1\n", 3},
        {"0\n1\nt 0\n", 3},
        {"0\n1\nt 0 1\nu 1 2\n", 4},
        {"0\n-1\n", 2},
        {"0\n1\nt -1 5\n", 3},
        {"", 1},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        write_file(path, bad[i].text);
        trib_error_t err;
        trib_error_clear(&err);
        coll_ckpt_init(&c);
        assert_int_equal(coll_ckpt_read(&c, path, &err), TRIB_EMALFORMED);
        assert_int_equal(err.line, bad[i].line);
        assert_ptr_equal(err.file, path);
        coll_ckpt_fini(&c);
    }
    rm_rf(dir);
}

static void test_epoch_cache(void **state)
{
    (void)state;
    coll_epoch_cache_t c;
    coll_epoch_init(&c);
    assert_int_equal(coll_epoch_latest(&c), -1);
    assert_int_equal(coll_epoch_assign(&c, 0, 0), 1);
    assert_int_equal(coll_epoch_assign(&c, 0, 10), 0); /* same epoch later: no change */
    assert_int_equal(coll_epoch_assign(&c, 3, 100), 1);
    assert_int_equal(coll_epoch_assign(&c, 4, 170), 1);
    assert_int_equal(coll_epoch_latest(&c), 4);

    int32_t e;
    int64_t end;
    coll_epoch_end_offset(&c, 4, 300, &e, &end);
    assert_int_equal(e, 4);
    assert_int_equal(end, 300);
    coll_epoch_end_offset(&c, 3, 300, &e, &end);
    assert_int_equal(e, 3);
    assert_int_equal(end, 170);
    coll_epoch_end_offset(&c, 2, 300, &e, &end); /* epochs 1, 2 wrote nothing */
    assert_int_equal(e, 0);
    assert_int_equal(end, 100);
    coll_epoch_end_offset(&c, 9, 300, &e, &end);
    assert_int_equal(e, -1);
    assert_int_equal(end, -1);

    char *text;
    size_t len;
    assert_int_equal(coll_epoch_format(&c, &text, &len), 0);
    assert_string_equal(text, "0\n3\n0 0\n3 100\n4 170\n");
    free(text);

    /* An epoch that contradicts the tail replaces it (Kafka's truncateAndAppend). */
    assert_int_equal(coll_epoch_assign(&c, 3, 200), 1);
    assert_int_equal(coll_epoch_latest(&c), 3);
    assert_int_equal(c.n, 2);
    assert_int_equal(c.v[1].start_offset, 200);

    assert_int_equal(coll_epoch_assign(&c, 5, 250), 1);
    assert_int_equal(coll_epoch_truncate_end(&c, 250), 1);
    assert_int_equal(coll_epoch_latest(&c), 3);
    assert_int_equal(coll_epoch_truncate_end(&c, 250), 0);
    assert_int_equal(coll_epoch_truncate_start(&c, 220), 1);
    assert_int_equal(c.n, 1);
    assert_int_equal(c.v[0].epoch, 3);
    assert_int_equal(c.v[0].start_offset, 220);
    assert_int_equal(coll_epoch_truncate_start(&c, 50), 0);
    coll_epoch_fini(&c);

    char dir[] = "/tmp/trib-epoch-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof(path), "%s/leader-epoch-checkpoint", dir);
    coll_epoch_init(&c);
    write_file(path, "0\n2\n1 5\n7 90\n");
    assert_int_equal(coll_epoch_read(&c, path, NULL), 0);
    assert_int_equal(c.n, 2);
    assert_int_equal(coll_epoch_latest(&c), 7);
    const char *bad[] = {"0\n2\n1 5\n1 90\n", "0\n1\n1\n", "2\n0\n", "0\n1\n-1 0\n"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        write_file(path, bad[i]);
        assert_int_equal(coll_epoch_read(&c, path, NULL), TRIB_EMALFORMED);
        assert_int_equal(c.n, 0);
    }
    coll_epoch_fini(&c);
    rm_rf(dir);
}

static void test_topic_id(void **state)
{
    (void)state;
    /* Kafka's Uuid.toString(): URL-safe base64, no padding. */
    uint8_t id[16], back[16];
    for (int i = 0; i < 16; i++) {
        id[i] = (uint8_t)(0xf0 + i);
    }
    char *text;
    size_t len;
    assert_int_equal(coll_metadata_format(id, &text, &len), 0);
    assert_string_equal(text, "version: 0\ntopic_id: 8PHy8_T19vf4-fr7_P3-_w\n");
    free(text);

    char dir[] = "/tmp/trib-meta-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof(path), "%s/partition.metadata", dir);
    assert_int_equal(coll_metadata_read(path, back, NULL), TRIB_ENOT_FOUND);
    write_file(path, "version: 0\ntopic_id: 8PHy8_T19vf4-fr7_P3-_w\n");
    assert_int_equal(coll_metadata_read(path, back, NULL), 0);
    assert_int_equal(back[0], 0xf0);
    write_file(path, "version: 1\ntopic_id: 8PHy8_T19vf4-fr7_P3-_w\n");
    assert_int_equal(coll_metadata_read(path, back, NULL), TRIB_EMALFORMED);
    write_file(path, "version: 0\ntopic: x\n");
    assert_int_equal(coll_metadata_read(path, back, NULL), TRIB_EMALFORMED);
    rm_rf(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_offset_checkpoint),
        cmocka_unit_test(test_epoch_cache),
        cmocka_unit_test(test_topic_id),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
