/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The sink plugin loader: finding plugins on the search path, refusing a
 * plugin built for another ABI version with a message that says so,
 * descriptor checks, and a sink's options validated against a plugin's
 * schema with file:line:col errors.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "sink_test.h"
#include "tributary/config.h"

/* build/tests/<exe> -> build/tests/sink-fixtures */
static void fixture_dir(char *out, size_t len)
{
    char exe[PATH_MAX - 32];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    assert_true(n > 0);
    exe[n] = '\0';
    *strrchr(exe, '/') = '\0';
    snprintf(out, len, "%s/sink-fixtures", exe);
}

static void test_load_builtin_from_build_tree(void **state)
{
    (void)state;
    const char *names[] = {"file", "stdout"};
    for (size_t i = 0; i < 2; i++) {
        trib_sink_plugin_t *p = NULL;
        trib_error_t err;
        trib_error_clear(&err);
        int rc = trib_sink_plugin_load(names[i], NULL, &p, &err);
        if (rc != 0) {
            fprintf(stderr, "%s\n", err.msg);
        }
        assert_int_equal(rc, 0);
        const trib_sink_descriptor_t *d = trib_sink_plugin_descriptor(p);
        assert_string_equal(d->name, names[i]);
        assert_int_equal(d->abi_version, TRIB_SINK_ABI_VERSION);
        assert_non_null(strstr(trib_sink_plugin_path(p), "lib/tributary/sinks/"));
        trib_sink_plugin_free(p);
    }
}

static void test_refuses_other_abi_version(void **state)
{
    (void)state;
    char dir[PATH_MAX];
    fixture_dir(dir, sizeof(dir));
    const char *dirs[] = {dir, NULL};
    trib_sink_plugin_t *p = (trib_sink_plugin_t *)1;
    trib_error_t err;
    trib_error_clear(&err);
    int rc = trib_sink_plugin_load("badabi", dirs, &p, &err);
    assert_int_equal(rc, TRIB_EUNSUPPORTED_VERSION);
    assert_null(p);
    assert_non_null(strstr(err.msg, "badabi.so: ABI version 999"));
    assert_non_null(strstr(err.msg, "speaks sink ABI version 2"));
    assert_non_null(strstr(err.msg, "rebuild the plugin"));
}

static void test_not_found_names_the_path(void **state)
{
    (void)state;
    const char *dirs[] = {"/nonexistent/a", "/nonexistent/b", NULL};
    trib_sink_plugin_t *p = NULL;
    trib_error_t err;
    trib_error_clear(&err);
    assert_int_equal(trib_sink_plugin_load("nosuch", dirs, &p, &err), TRIB_ENOT_FOUND);
    assert_string_equal(
        err.msg, "no sink plugin 'nosuch' (nosuch.so not in /nonexistent/a, /nonexistent/b)");
    assert_int_equal(trib_sink_plugin_load("../etc/x", dirs, &p, &err), -EINVAL);
    assert_int_equal(trib_sink_plugin_load("", dirs, &p, &err), -EINVAL);
}

static int dummy_open(const trib_sink_host_t *h, trib_sink_ctx_t *c, const void *o, void **i,
                      trib_error_t *e)
{
    (void)h;
    (void)c;
    (void)o;
    (void)e;
    *i = NULL;
    return 0;
}

static trib_sink_status_t dummy_write(void *i, const trib_sink_batch_t *b, trib_sink_result_t *r)
{
    (void)i;
    (void)b;
    (void)r;
    return TRIB_SINK_OK;
}

static void dummy_close(void *i)
{
    (void)i;
}

typedef struct dummy_opts {
    const char *a;
    trib_config_strlist_t l;
} dummy_opts_t;

static void test_descriptor_checks(void **state)
{
    (void)state;
    trib_sink_descriptor_t d = {
        .abi_version = TRIB_SINK_ABI_VERSION,
        .struct_size = sizeof(trib_sink_descriptor_t),
        .name = "dummy",
        .open = dummy_open,
        .write = dummy_write,
        .close = dummy_close,
    };
    trib_error_t err;
    trib_error_clear(&err);
    assert_int_equal(trib_sink_descriptor_check(&d, "dummy", "x.so", &err), 0);

    d.struct_size = 16;
    assert_int_equal(trib_sink_descriptor_check(&d, "dummy", "x.so", &err),
                     TRIB_EUNSUPPORTED_VERSION);
    assert_non_null(strstr(err.msg, "descriptor is 16 bytes"));
    d.struct_size = sizeof(d);

    assert_int_equal(trib_sink_descriptor_check(&d, "other", "x.so", &err), -EINVAL);
    assert_non_null(strstr(err.msg, "names itself 'dummy', expected 'other'"));

    d.write = NULL;
    assert_int_equal(trib_sink_descriptor_check(&d, "dummy", "x.so", &err), -EINVAL);
    d.write = dummy_write;

    static const trib_config_option_t listy[] = {
        {TRIB_CONFIG_FIELD(dummy_opts_t, l, STRLIST)},
        TRIB_CONFIG_END,
    };
    d.options = listy;
    d.options_size = sizeof(dummy_opts_t);
    assert_int_equal(trib_sink_descriptor_check(&d, "dummy", "x.so", &err), -EINVAL);
    assert_non_null(strstr(err.msg, "option 'l' is not a scalar type"));

    static const trib_config_option_t outside[] = {
        {TRIB_CONFIG_FIELD(dummy_opts_t, a, STRING)},
        TRIB_CONFIG_END,
    };
    d.options = outside;
    d.options_size = 4;
    assert_int_equal(trib_sink_descriptor_check(&d, "dummy", "x.so", &err), -EINVAL);
    d.options_size = sizeof(dummy_opts_t);
    assert_int_equal(trib_sink_descriptor_check(&d, "dummy", "x.so", &err), 0);

    trib_sink_plugin_t *p = NULL;
    assert_int_equal(trib_sink_plugin_wrap(&d, &p, &err), 0);
    assert_ptr_equal(trib_sink_plugin_descriptor(p), &d);
    trib_sink_plugin_free(p);

    d.abi_version = 0;
    assert_int_equal(trib_sink_plugin_wrap(&d, &p, &err), TRIB_EUNSUPPORTED_VERSION);
    assert_null(p);
}

/* A collector-shaped schema: sinks[] with a type and pass-through options. */
typedef struct tsink {
    const char *name;
    const char *type;
    trib_config_map_t options;
} tsink_t;

typedef struct tconf {
    tsink_t *sinks;
    size_t nsinks;
} tconf_t;

static const trib_config_option_t tsink_opts[] = {
    {TRIB_CONFIG_FIELD(tsink_t, name, STRING)},
    {TRIB_CONFIG_FIELD(tsink_t, type, STRING)},
    {TRIB_CONFIG_FIELD(tsink_t, options, MAP)},
    TRIB_CONFIG_END,
};

static const trib_config_option_t tconf_opts[] = {
    {TRIB_CONFIG_SECTIONS(tconf_t, sinks, nsinks, tsink_t, tsink_opts)},
    TRIB_CONFIG_END,
};

/* Loads yaml, applies each sink's options through its plugin; returns the error text. */
static char *apply(const char *yaml, int *rc_out)
{
    tconf_t conf;
    trib_config_t *cfg = NULL;
    memset(&conf, 0, sizeof(conf));
    int rc = trib_config_load_string(&cfg, "collector.yaml", yaml, strlen(yaml), tconf_opts, &conf);
    assert_int_equal(rc, 0);
    for (size_t i = 0; i < conf.nsinks; i++) {
        trib_sink_plugin_t *p = NULL;
        trib_error_t err;
        trib_error_clear(&err);
        assert_int_equal(trib_sink_plugin_load(conf.sinks[i].type, NULL, &p, &err), 0);
        char where[64];
        snprintf(where, sizeof(where), "sinks[%zu].options", i);
        void *opts = NULL;
        int r = trib_sink_options_apply(p, cfg, &conf.sinks[i].options, where, &opts);
        if (r != 0) {
            rc = r;
        }
        free(opts);
        trib_sink_plugin_free(p);
    }
    char *text = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&text, &len);
    trib_config_print_errors(cfg, fp);
    fclose(fp);
    trib_config_free(cfg);
    *rc_out = rc;
    return text;
}

static void test_options_validated_with_positions(void **state)
{
    (void)state;
    int rc;
    char *text = apply("sinks:\n"
                       "  - name: f\n"
                       "    type: file\n"
                       "    options: {path: /tmp/x, rotate_bytes: 10MiB}\n"
                       "  - name: s\n"
                       "    type: stdout\n",
                       &rc);
    assert_int_equal(rc, 0);
    assert_string_equal(text, "");
    free(text);

    text = apply("sinks:\n"
                 "  - name: f\n"
                 "    type: file\n"
                 "    options:\n"
                 "      pth: /tmp/x\n"
                 "      rotate_bytes: lots\n"
                 "  - name: s\n"
                 "    type: stdout\n"
                 "    options: {format: yaml}\n",
                 &rc);
    assert_int_equal(rc, TRIB_ECONFIG);
    fprintf(stderr, "%s", text);
    assert_non_null(strstr(text, "collector.yaml:5:7: error: missing required key 'path' in "
                                 "sinks[0].options"));
    assert_non_null(strstr(text, "collector.yaml:5:7: error: unknown key 'pth' in "
                                 "sinks[0].options (did you mean 'path'?)"));
    assert_non_null(strstr(text, "collector.yaml:6:21: error:"));
    assert_non_null(strstr(
        text, "collector.yaml:9:23: error: invalid value 'yaml' for 'sinks[1].options.format'"));
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_builtin_from_build_tree),
        cmocka_unit_test(test_refuses_other_abi_version),
        cmocka_unit_test(test_not_found_names_the_path),
        cmocka_unit_test(test_descriptor_checks),
        cmocka_unit_test(test_options_validated_with_positions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
