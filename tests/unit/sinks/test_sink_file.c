/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The `file` and `stdout` plugins through the ABI, loaded from the build
 * tree as the collector loads them: JSON lines (value embedded when it is
 * JSON, a string otherwise, headers, null keys), durability on flush,
 * rotation by size and by age, and the stdout formats.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "sink_test.h"
#include "tributary/config.h"

typedef struct fixture {
    trib_sink_plugin_t *plugin;
    trib_config_t *cfg;
    void *opts;
    void *inst;
    char dir[PATH_MAX - 64];
} fixture_t;

typedef struct oconf {
    trib_config_map_t options;
} oconf_t;

static const trib_config_option_t oconf_opts[] = {
    {TRIB_CONFIG_FIELD(oconf_t, options, MAP)},
    TRIB_CONFIG_END,
};

/* Loads `type`, applies the YAML options (with %s = the temp dir) and opens an instance. */
static void open_sink(fixture_t *f, const char *type, const char *yaml_fmt)
{
    memset(f, 0, sizeof(*f));
    test_mkdtemp(f->dir, sizeof(f->dir));
    trib_error_t err;
    trib_error_clear(&err);
    assert_int_equal(trib_sink_plugin_load(type, NULL, &f->plugin, &err), 0);
    char yaml[PATH_MAX + 256];
    snprintf(yaml, sizeof(yaml), yaml_fmt, f->dir);
    oconf_t oc;
    assert_int_equal(
        trib_config_load_string(&f->cfg, "t.yaml", yaml, strlen(yaml), oconf_opts, &oc), 0);
    assert_int_equal(trib_sink_options_apply(f->plugin, f->cfg, &oc.options, "options", &f->opts),
                     0);
    const trib_sink_descriptor_t *d = trib_sink_plugin_descriptor(f->plugin);
    assert_int_equal(d->open(&test_host, NULL, f->opts, &f->inst, &err), 0);
}

static void close_sink(fixture_t *f)
{
    trib_sink_plugin_descriptor(f->plugin)->close(f->inst);
    free(f->opts);
    trib_config_free(f->cfg);
    trib_sink_plugin_free(f->plugin);
    test_rmdir(f->dir);
}

static char *slurp(const char *path)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    char *s = calloc(1, 1 << 20);
    size_t n = fread(s, 1, (1 << 20) - 1, fp);
    s[n] = '\0';
    fclose(fp);
    return s;
}

static int count_files(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        n += e->d_name[0] != '.';
    }
    closedir(d);
    return n;
}

static void test_file_json_lines(void **state)
{
    (void)state;
    fixture_t f;
    open_sink(&f, "file", "options: {path: \"%s/out\"}");
    const trib_sink_descriptor_t *d = trib_sink_plugin_descriptor(f.plugin);

    /* headers: one, "h" -> "v\"" */
    static const uint8_t hdrs[] = {0x02, 'h', 0x04, 'v', '"'};
    trib_sink_record_t recs[4] = {
        test_record(7, "host1", "{\"message\":\"GET /\",\"n\":1}"),
        test_record(8, NULL, "plain \"text\"\n\x01"),
        test_record(9, "k", NULL),
        test_record(10, "bad\xff", "[1, 2 ,3]"),
    };
    recs[0].header_count = 1;
    recs[0].headers = hdrs;
    recs[0].headers_len = sizeof(hdrs);
    trib_sink_batch_t b = {.topic = "web.access", .partition = 3, .records = recs, .count = 4};
    trib_sink_result_t res;
    memset(&res, 0, sizeof(res));
    assert_int_equal(d->write(f.inst, &b, &res), TRIB_SINK_OK);
    assert_int_equal(d->flush(f.inst, &res), TRIB_SINK_OK);

    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/out/web.access-3-00000000000000000007.jsonl", f.dir);
    char *text = slurp(path);
    assert_string_equal(
        text, "{\"topic\":\"web.access\",\"partition\":3,\"offset\":7,\"timestamp\":1700000000007,"
              "\"key\":\"host1\",\"headers\":{\"h\":\"v\\\"\"},\"value\":{\"message\":\"GET "
              "/\",\"n\":1}}\n"
              "{\"topic\":\"web.access\",\"partition\":3,\"offset\":8,\"timestamp\":1700000000008,"
              "\"key\":null,\"headers\":{},\"value\":\"plain \\\"text\\\"\\n\\u0001\"}\n"
              "{\"topic\":\"web.access\",\"partition\":3,\"offset\":9,\"timestamp\":1700000000009,"
              "\"key\":\"k\",\"headers\":{},\"value\":null}\n"
              "{\"topic\":\"web.access\",\"partition\":3,\"offset\":10,\"timestamp\":"
              "1700000000010,\"key\":\"bad\xef\xbf\xbd\",\"headers\":{},\"value\":[1, 2 ,3]}\n");
    free(text);
    close_sink(&f);
}

static void test_file_rotation(void **state)
{
    (void)state;
    fixture_t f;
    open_sink(&f, "file", "options: {path: \"%s\", rotate_bytes: 1kB, rotate_interval: 10s}");
    const trib_sink_descriptor_t *d = trib_sink_plugin_descriptor(f.plugin);
    trib_sink_result_t res;
    char value[200];
    memset(value, 'x', sizeof(value) - 1);
    value[sizeof(value) - 1] = '\0';
    /* 10 batches of 1 record, ~330 bytes each: a new file after every 4th. */
    test_now_ms_value = 1000;
    for (int i = 0; i < 10; i++) {
        trib_sink_record_t r = test_record(i, "k", value);
        trib_sink_batch_t b = {.topic = "t", .partition = 0, .records = &r, .count = 1};
        assert_int_equal(d->write(f.inst, &b, &res), TRIB_SINK_OK);
    }
    assert_int_equal(d->flush(f.inst, &res), TRIB_SINK_OK);
    assert_int_equal(count_files(f.dir), 3);
    /* Age: the next write after 10 s starts a file even though this one is small. */
    test_now_ms_value += 10000;
    trib_sink_record_t r = test_record(10, "k", "1");
    trib_sink_batch_t b = {.topic = "t", .partition = 0, .records = &r, .count = 1};
    assert_int_equal(d->write(f.inst, &b, &res), TRIB_SINK_OK);
    assert_int_equal(count_files(f.dir), 4);
    /* Another partition: its own file. */
    b.partition = 1;
    assert_int_equal(d->write(f.inst, &b, &res), TRIB_SINK_OK);
    assert_int_equal(d->flush(f.inst, &res), TRIB_SINK_OK);
    assert_int_equal(count_files(f.dir), 5);
    test_now_ms_value = 0;
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/t-0-00000000000000000004.jsonl", f.dir);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    close_sink(&f);
}

static void test_stdout_formats(void **state)
{
    (void)state;
    const char *fmts[] = {"options: {}", "options: {format: value}"};
    const char *want[] = {"{\"topic\":\"t\",\"partition\":0,\"offset\":1,\"timestamp\":"
                          "1700000000001,\"key\":null,\"headers\":{},\"value\":{\"a\":1}}\n",
                          "{\"a\":1}\n"};
    for (int i = 0; i < 2; i++) {
        fixture_t f;
        open_sink(&f, "stdout", fmts[i]);
        const trib_sink_descriptor_t *d = trib_sink_plugin_descriptor(f.plugin);
        assert_null(d->flush);
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s/stdout", f.dir);
        fflush(stdout);
        int saved = dup(1);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fd, 1);
        close(fd);
        trib_sink_record_t r = test_record(1, NULL, "{\"a\":1}");
        trib_sink_batch_t b = {.topic = "t", .partition = 0, .records = &r, .count = 1};
        trib_sink_result_t res;
        trib_sink_status_t st = d->write(f.inst, &b, &res);
        dup2(saved, 1);
        close(saved);
        assert_int_equal(st, TRIB_SINK_OK);
        char *text = slurp(path);
        assert_string_equal(text, want[i]);
        free(text);
        close_sink(&f);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_file_json_lines),
        cmocka_unit_test(test_file_rotation),
        cmocka_unit_test(test_stdout_formats),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
