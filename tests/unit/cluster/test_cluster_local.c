/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The local cluster metadata backend over a real storage: topics survive a
 * reopen, admin operations validate like Kafka's, hooks run, producer ids
 * are never reused, bad checkpoint files are refused with a line number,
 * and logs found without metadata are adopted on a first start.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "cluster/cluster.h"
#include "tributary/kafka_error.h"
#include "tributary/log.h"

typedef struct fx {
    uv_loop_t loop;
    char dir[256];
    coll_storage_t *st;
    coll_cluster_t *cl;
    coll_cluster_config_t cfg;
    int added, removing;
} fx_t;

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void on_added(void *arg, coll_partition_t *p)
{
    (void)p;
    ((fx_t *)arg)->added++;
}

static void on_removing(void *arg, coll_partition_t *p)
{
    (void)p;
    ((fx_t *)arg)->removing++;
}

static int fx_open(fx_t *f, trib_error_t *err)
{
    assert_int_equal(uv_loop_init(&f->loop), 0);
    coll_storage_config_t sc;
    coll_storage_config_init(&sc);
    sc.data_dir = f->dir;
    sc.log_defaults.segment_index_bytes = 64 * 1024;
    trib_error_clear(err);
    assert_int_equal(coll_storage_open(&f->loop, &sc, &f->st, err), 0);
    f->cfg.data_dir = f->dir;
    int rc = coll_cluster_open(f->st, &f->cfg, &f->cl, err);
    if (rc == 0) {
        coll_cluster_hooks_t h = {
            .partition_added = on_added, .partition_removing = on_removing, .arg = f};
        coll_cluster_set_hooks(f->cl, &h);
    }
    return rc;
}

static void closed(void *arg, int status)
{
    (void)arg;
    assert_int_equal(status, 0);
}

static void fx_close(fx_t *f)
{
    coll_cluster_free(f->cl);
    f->cl = NULL;
    assert_int_equal(coll_storage_close(f->st, closed, f), 0);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
}

static void fx_init(fx_t *f)
{
    memset(f, 0, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/trib-cluster-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    coll_cluster_config_init(&f->cfg);
    f->cfg.defaults.v[COLL_TCFG_SEGMENT_INDEX_BYTES].i = 64 * 1024;
    trib_log_set_level(getenv("TRIB_TEST_VERBOSE") ? TRIB_LOG_DEBUG : TRIB_LOG_ERROR);
}

static void fx_fini(fx_t *f)
{
    nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static coll_config_kv_t kv(const char *n, const char *v)
{
    coll_config_kv_t x = {trib_kstr(n), trib_kstr(v)};
    return x;
}

static int16_t create(fx_t *f, const char *name, int32_t parts, int16_t rf,
                      const coll_config_kv_t *c, size_t nc, bool validate)
{
    coll_admin_result_t res;
    coll_topic_t *t = NULL;
    coll_cluster_create_topic(f->cl, name, strlen(name), parts, rf, c, nc, validate, &t, &res);
    if (res.code == 0 && !validate) {
        assert_non_null(t);
    }
    return res.code;
}

static void test_create_and_reopen(void **state)
{
    (void)state;
    fx_t f;
    fx_init(&f);
    trib_error_t err;
    assert_int_equal(fx_open(&f, &err), 0);
    char cid[23];
    snprintf(cid, sizeof(cid), "%s", coll_cluster_id(f.cl));
    assert_int_equal(strlen(cid), 22);
    coll_config_kv_t c[] = {kv("retention.ms", "1000"), kv("cleanup.policy", "compact")};
    assert_int_equal(create(&f, "alpha", 3, 1, c, 2, false), 0);
    assert_int_equal(create(&f, "beta", -1, -1, NULL, 0, false), 0);
    assert_int_equal(f.added, 4);
    coll_topic_t *a = coll_cluster_topic(f.cl, "alpha", 5);
    assert_non_null(a);
    trib_uuid_t id = a->id;
    assert_false(trib_uuid_is_zero(&id));
    assert_ptr_equal(coll_cluster_topic_by_id(f.cl, &id), a);
    assert_int_equal(coll_cluster_partition_count(f.cl), 4);
    assert_int_equal(coll_log_config(a->partitions[2]->log)->retention_ms, 1000);
    assert_int_equal(coll_log_config(a->partitions[2]->log)->cleanup_policy, COLL_CLEANUP_COMPACT);
    fx_close(&f);

    assert_int_equal(fx_open(&f, &err), 0);
    assert_string_equal(coll_cluster_id(f.cl), cid);
    a = coll_cluster_topic(f.cl, "alpha", 5);
    assert_non_null(a);
    assert_memory_equal(&a->id, &id, 16);
    assert_int_equal(a->npartitions, 3);
    assert_int_equal(a->config_mask,
                     (1u << COLL_TCFG_RETENTION_MS) | (1u << COLL_TCFG_CLEANUP_POLICY));
    assert_int_equal(a->config.v[COLL_TCFG_RETENTION_MS].i, 1000);
    for (int i = 0; i < 3; i++) {
        assert_non_null(a->partitions[i]->log);
        assert_int_equal(a->partitions[i]->leader_epoch, 0);
        assert_int_equal(coll_log_config(a->partitions[i]->log)->retention_ms, 1000);
    }
    coll_topic_t *b = coll_cluster_topic(f.cl, "beta", 4);
    assert_non_null(b);
    assert_int_equal(b->npartitions, 1);
    coll_topic_t *all[2];
    assert_int_equal(coll_cluster_topic_count(f.cl), 2);
    coll_cluster_topics(f.cl, all);
    assert_ptr_equal(all[0], a);
    assert_ptr_equal(all[1], b);
    fx_close(&f);
    fx_fini(&f);
}

static void test_validation(void **state)
{
    (void)state;
    fx_t f;
    fx_init(&f);
    f.cfg.max_partitions = 10;
    trib_error_t err;
    assert_int_equal(fx_open(&f, &err), 0);
    assert_int_equal(create(&f, "ok", 2, 1, NULL, 0, false), 0);
    assert_int_equal(create(&f, "ok", 2, 1, NULL, 0, false), TRIB_KAFKA_TOPIC_ALREADY_EXISTS);
    assert_int_equal(create(&f, "", 1, 1, NULL, 0, false), TRIB_KAFKA_INVALID_TOPIC_EXCEPTION);
    assert_int_equal(create(&f, "..", 1, 1, NULL, 0, false), TRIB_KAFKA_INVALID_TOPIC_EXCEPTION);
    assert_int_equal(create(&f, "a b", 1, 1, NULL, 0, false), TRIB_KAFKA_INVALID_TOPIC_EXCEPTION);
    char longname[300];
    memset(longname, 'x', 250);
    longname[250] = '\0';
    assert_int_equal(create(&f, longname, 1, 1, NULL, 0, false),
                     TRIB_KAFKA_INVALID_TOPIC_EXCEPTION);
    longname[249] = '\0';
    assert_int_equal(create(&f, longname, 1, 1, NULL, 0, true), 0);
    assert_int_equal(create(&f, "p0", 0, 1, NULL, 0, false), TRIB_KAFKA_INVALID_PARTITIONS);
    assert_int_equal(create(&f, "p0", -5, 1, NULL, 0, false), TRIB_KAFKA_INVALID_PARTITIONS);
    assert_int_equal(create(&f, "rf", 1, 2, NULL, 0, false), TRIB_KAFKA_INVALID_REPLICATION_FACTOR);
    assert_int_equal(create(&f, "rf", 1, 0, NULL, 0, false), TRIB_KAFKA_INVALID_REPLICATION_FACTOR);
    assert_int_equal(create(&f, "many", 9, 1, NULL, 0, false), TRIB_KAFKA_POLICY_VIOLATION);
    coll_config_kv_t bad[] = {kv("retention.ms", "abc")};
    assert_int_equal(create(&f, "cfg", 1, 1, bad, 1, false), TRIB_KAFKA_INVALID_CONFIG);
    coll_config_kv_t unknown[] = {kv("retention.mss", "1")};
    assert_int_equal(create(&f, "cfg", 1, 1, unknown, 1, false), TRIB_KAFKA_INVALID_CONFIG);
    coll_config_kv_t dup[] = {kv("retention.ms", "1"), kv("retention.ms", "2")};
    assert_int_equal(create(&f, "cfg", 1, 1, dup, 2, false), TRIB_KAFKA_INVALID_REQUEST);
    assert_int_equal(create(&f, "vonly", 1, 1, NULL, 0, true), 0);
    assert_null(coll_cluster_topic(f.cl, "vonly", 5));
    assert_int_equal(coll_cluster_topic_count(f.cl), 1);

    /* Auto-creation. */
    int16_t e = -5;
    assert_non_null(coll_cluster_auto_create(f.cl, "auto", 4, &e));
    assert_int_equal(e, 0);
    assert_non_null(coll_cluster_auto_create(f.cl, "auto", 4, &e)); /* exists: returned */
    assert_null(coll_cluster_auto_create(f.cl, "bad name", 8, &e));
    assert_int_equal(e, TRIB_KAFKA_INVALID_TOPIC_EXCEPTION);
    fx_close(&f);
    f.cfg.auto_create_topics = false;
    assert_int_equal(fx_open(&f, &err), 0);
    assert_null(coll_cluster_auto_create(f.cl, "auto2", 5, &e));
    assert_int_equal(e, TRIB_KAFKA_UNKNOWN_TOPIC_OR_PARTITION);
    fx_close(&f);
    fx_fini(&f);
}

static void test_delete_and_partitions(void **state)
{
    (void)state;
    fx_t f;
    fx_init(&f);
    trib_error_t err;
    assert_int_equal(fx_open(&f, &err), 0);
    assert_int_equal(create(&f, "t", 2, 1, NULL, 0, false), 0);
    coll_topic_t *t = coll_cluster_topic(f.cl, "t", 1);
    trib_uuid_t old = t->id;
    coll_admin_result_t res;
    coll_cluster_create_partitions(f.cl, t, 2, false, &res);
    assert_int_equal(res.code, TRIB_KAFKA_INVALID_PARTITIONS);
    coll_cluster_create_partitions(f.cl, t, 1, false, &res);
    assert_int_equal(res.code, TRIB_KAFKA_INVALID_PARTITIONS);
    coll_cluster_create_partitions(f.cl, t, 5, true, &res);
    assert_int_equal(res.code, 0);
    assert_int_equal(t->npartitions, 2);
    f.added = 0;
    coll_cluster_create_partitions(f.cl, t, 5, false, &res);
    assert_int_equal(res.code, 0);
    assert_int_equal(t->npartitions, 5);
    assert_int_equal(f.added, 3);
    assert_non_null(t->partitions[4]->log);
    fx_close(&f);

    assert_int_equal(fx_open(&f, &err), 0);
    t = coll_cluster_topic(f.cl, "t", 1);
    assert_int_equal(t->npartitions, 5);
    coll_cluster_delete_topic(f.cl, t, &res);
    assert_int_equal(res.code, 0);
    assert_int_equal(f.removing, 5);
    assert_null(coll_cluster_topic(f.cl, "t", 1));
    assert_int_equal(coll_cluster_partition_count(f.cl), 0);
    fx_close(&f);

    /* Gone after a restart (its empty directories are ignored); created again, fresh. */
    assert_int_equal(fx_open(&f, &err), 0);
    assert_null(coll_cluster_topic(f.cl, "t", 1));
    assert_int_equal(create(&f, "t", 1, 1, NULL, 0, false), 0);
    t = coll_cluster_topic(f.cl, "t", 1);
    assert_memory_not_equal(&t->id, &old, 16);
    assert_int_equal(coll_log_end_offset(t->partitions[0]->log), 0);
    fx_close(&f);
    fx_fini(&f);
}

static void test_alter_configs(void **state)
{
    (void)state;
    fx_t f;
    fx_init(&f);
    trib_error_t err;
    assert_int_equal(fx_open(&f, &err), 0);
    assert_int_equal(create(&f, "c", 1, 1, NULL, 0, false), 0);
    coll_topic_t *t = coll_cluster_topic(f.cl, "c", 1);
    coll_admin_result_t res;
    coll_config_kv_t set[] = {kv("retention.ms", "5000"), kv("segment.bytes", "1048576")};
    int8_t ops[] = {COLL_CONFIG_OP_SET, COLL_CONFIG_OP_SET};
    coll_cluster_alter_configs(f.cl, t, set, ops, 2, false, false, &res);
    assert_int_equal(res.code, 0);
    assert_int_equal(coll_log_config(t->partitions[0]->log)->segment_bytes, 1048576);
    coll_config_kv_t app[] = {kv("cleanup.policy", "compact")};
    int8_t op_app[] = {COLL_CONFIG_OP_APPEND};
    coll_cluster_alter_configs(f.cl, t, app, op_app, 1, false, false, &res);
    assert_int_equal(res.code, 0);
    assert_int_equal(t->config.v[COLL_TCFG_CLEANUP_POLICY].i,
                     COLL_CLEANUP_COMPACT | COLL_CLEANUP_DELETE);
    coll_config_kv_t sub[] = {kv("cleanup.policy", "compact,delete")};
    int8_t op_sub[] = {COLL_CONFIG_OP_SUBTRACT};
    coll_cluster_alter_configs(f.cl, t, sub, op_sub, 1, false, false, &res);
    assert_int_equal(res.code, TRIB_KAFKA_INVALID_CONFIG); /* would be empty */
    coll_config_kv_t app2[] = {kv("retention.ms", "1")};
    coll_cluster_alter_configs(f.cl, t, app2, op_app, 1, false, false, &res);
    assert_int_equal(res.code, TRIB_KAFKA_INVALID_CONFIG); /* not a list */
    int8_t bad_op[] = {9};
    coll_cluster_alter_configs(f.cl, t, app2, bad_op, 1, false, false, &res);
    assert_int_equal(res.code, TRIB_KAFKA_INVALID_REQUEST);
    /* A bad entry changes nothing, even after good ones. */
    coll_config_kv_t mixed[] = {kv("retention.ms", "7"), kv("segment.bytes", "1")};
    coll_cluster_alter_configs(f.cl, t, mixed, ops, 2, false, false, &res);
    assert_int_equal(res.code, TRIB_KAFKA_INVALID_CONFIG);
    assert_int_equal(t->config.v[COLL_TCFG_RETENTION_MS].i, 5000);
    int8_t del[] = {COLL_CONFIG_OP_DELETE};
    coll_config_kv_t d[] = {kv("retention.ms", NULL)};
    coll_cluster_alter_configs(f.cl, t, d, del, 1, false, false, &res);
    assert_int_equal(res.code, 0);
    assert_int_equal(t->config.v[COLL_TCFG_RETENTION_MS].i, 604800000);
    fx_close(&f);

    assert_int_equal(fx_open(&f, &err), 0);
    t = coll_cluster_topic(f.cl, "c", 1);
    assert_int_equal(t->config_mask,
                     (1u << COLL_TCFG_SEGMENT_BYTES) | (1u << COLL_TCFG_CLEANUP_POLICY));
    /* Legacy AlterConfigs: replace everything. */
    coll_config_kv_t only[] = {kv("max.message.bytes", "5000")};
    coll_cluster_alter_configs(f.cl, t, only, NULL, 1, true, false, &res);
    assert_int_equal(res.code, 0);
    assert_int_equal(t->config_mask, 1u << COLL_TCFG_MAX_MESSAGE_BYTES);
    assert_int_equal(coll_log_config(t->partitions[0]->log)->segment_bytes, 1u << 30);
    fx_close(&f);
    fx_fini(&f);
}

static void test_producer_ids(void **state)
{
    (void)state;
    fx_t f;
    fx_init(&f);
    trib_error_t err;
    assert_int_equal(fx_open(&f, &err), 0);
    int64_t a, b, c;
    assert_int_equal(coll_cluster_next_producer_id(f.cl, &a), 0);
    assert_int_equal(coll_cluster_next_producer_id(f.cl, &b), 0);
    assert_int_equal(a, 0);
    assert_int_equal(b, 1);
    fx_close(&f);
    assert_int_equal(fx_open(&f, &err), 0);
    assert_int_equal(coll_cluster_next_producer_id(f.cl, &c), 0);
    assert_int_equal(c, COLL_PRODUCER_ID_BLOCK);
    for (int i = 0; i < COLL_PRODUCER_ID_BLOCK + 5; i++) {
        assert_int_equal(coll_cluster_next_producer_id(f.cl, &c), 0);
    }
    assert_int_equal(c, 2 * COLL_PRODUCER_ID_BLOCK + 5);
    fx_close(&f);
    assert_int_equal(fx_open(&f, &err), 0);
    assert_int_equal(coll_cluster_next_producer_id(f.cl, &c), 0);
    assert_int_equal(c, 3 * COLL_PRODUCER_ID_BLOCK);
    fx_close(&f);
    fx_fini(&f);
}

static void write_file(const char *dir, const char *text)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, COLL_CLUSTER_FILE);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

static void expect_error(fx_t *f, const char *text, int line, const char *words)
{
    write_file(f->dir, text);
    trib_error_t err;
    assert_int_equal(fx_open(f, &err), TRIB_ECONFIG);
    /* The position is folded into the message: the file name dies with the cluster. */
    char pos[600];
    snprintf(pos, sizeof(pos), "%s/%s:%d:", f->dir, COLL_CLUSTER_FILE, line);
    if (!strstr(err.msg, words) || strncmp(err.msg, pos, strlen(pos)) != 0) {
        fail_msg("'%s' or '%s' not in '%s'", pos, words, err.msg);
    }
    f->cl = NULL;
    fx_close(f);
}

static void test_bad_files(void **state)
{
    (void)state;
    fx_t f;
    fx_init(&f);
    static const char head[] = "version: 1\ncluster.id: MRM1btaRTdCXCkhVwuIzjQ\nnode.id: 1\n";
    char text[1024];
    snprintf(text, sizeof(text), "%snode.id: 2\n", head);
    expect_error(&f, "version: 1\ncluster.id: MRM1btaRTdCXCkhVwuIzjQ\nnode.id: 7\n", 3,
                 "belongs to node 7");
    expect_error(&f, "version: 2\n", 1, "unsupported version");
    expect_error(&f, "version: 1\ncluster.id: short\n", 2, "bad cluster id");
    snprintf(text, sizeof(text), "%stopic: a AAAAAAAAAAAAAAAAAAAAAA 0\n", head);
    expect_error(&f, text, 4, "expected 'topic");
    snprintf(text, sizeof(text),
             "%stopic: a AAAAAAAAAAAAAAAAAAAAAA 1\ntopic: a AAAAAAAAAAAAAAAAAAAAAA 1\n", head);
    expect_error(&f, text, 5, "listed twice");
    snprintf(text, sizeof(text), "%sconfig: nope retention.ms 5\n", head);
    expect_error(&f, text, 4, "unknown topic");
    snprintf(text, sizeof(text), "%stopic: a AAAAAAAAAAAAAAAAAAAAAA 1\nconfig: a retention.ms -9\n",
             head);
    expect_error(&f, text, 5, "retention.ms");
    expect_error(&f, "just garbage\n", 1, "key: value");
    expect_error(&f, "# only a comment\n", 1, "missing");
    /* Unknown keys and unknown topic configs are tolerated (a newer writer). */
    snprintf(text, sizeof(text),
             "%sfuture.key: 1\ntopic: a AAAAAAAAAAAAAAAAAAAAAA 2\nconfig: a future.config 1\n",
             head);
    write_file(f.dir, text);
    trib_error_t err;
    assert_int_equal(fx_open(&f, &err), 0);
    assert_non_null(coll_cluster_topic(f.cl, "a", 1));
    assert_string_equal(coll_cluster_id(f.cl), "MRM1btaRTdCXCkhVwuIzjQ");
    fx_close(&f);
    fx_fini(&f);
}

static void test_adopt(void **state)
{
    (void)state;
    fx_t f;
    fx_init(&f);
    /* A data directory written by the storage alone. */
    assert_int_equal(uv_loop_init(&f.loop), 0);
    coll_storage_config_t sc;
    coll_storage_config_init(&sc);
    sc.data_dir = f.dir;
    sc.log_defaults.segment_index_bytes = 64 * 1024;
    trib_error_t err;
    assert_int_equal(coll_storage_open(&f.loop, &sc, &f.st, &err), 0);
    coll_log_t *log;
    uint8_t id[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    assert_int_equal(coll_storage_create_log(f.st, "old", 0, NULL, id, &log, &err), 0);
    assert_int_equal(coll_storage_create_log(f.st, "old", 2, NULL, id, &log, &err), 0);
    assert_int_equal(coll_storage_close(f.st, closed, &f), 0);
    uv_run(&f.loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f.loop), 0);

    assert_int_equal(fx_open(&f, &err), 0);
    coll_topic_t *t = coll_cluster_topic(f.cl, "old", 3);
    assert_non_null(t);
    assert_int_equal(t->npartitions, 3);
    assert_memory_equal(t->id.b, id, 16);
    assert_non_null(t->partitions[1]->log);
    fx_close(&f);
    fx_fini(&f);
}

static void test_uuid(void **state)
{
    (void)state;
    trib_uuid_t a, b;
    char text[23];
    for (int i = 0; i < 1000; i++) {
        coll_uuid_random(&a);
        trib_uuid_format(&a, text);
        assert_int_equal(strlen(text), 22);
        assert_true(text[0] != '-');
        assert_int_equal(trib_uuid_parse(text, 22, &b), 0);
        assert_memory_equal(&a, &b, 16);
    }
    assert_true(coll_topic_name_valid("a.b_c-D9", 8));
    assert_false(coll_topic_name_valid(".", 1));
    assert_false(coll_topic_name_valid("a\0b", 3));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_and_reopen),
        cmocka_unit_test(test_validation),
        cmocka_unit_test(test_delete_and_partitions),
        cmocka_unit_test(test_alter_configs),
        cmocka_unit_test(test_producer_ids),
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_adopt),
        cmocka_unit_test(test_uuid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
