/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The agent's configuration: the schema tables pass the loader's checks,
 * a full file loads with its defaults, node positions are found by path,
 * and the agent's own validation reports regexes at the offending column.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "agent.h"

static void test_schema_check(void **state)
{
    (void)state;
    trib_error_t err;
    trib_error_clear(&err);
    int rc = trib_config_schema_check(agent_conf_schema, &err);
    if (rc != 0) {
        fprintf(stderr, "schema: %s\n", err.msg);
    }
    assert_int_equal(rc, 0);
}

static const char good[] = "agent: {id: a1, state_dir: /tmp/x}\n"
                           "output:\n"
                           "  brokers: [127.0.0.1:9092]\n"
                           "  options: {linger.ms: 20}\n"
                           "pipelines:\n"
                           "  - name: web\n"
                           "    inputs:\n"
                           "      - type: tail\n"
                           "        paths: [/var/log/*.log]\n"
                           "        multiline: {start: '^\\d'}\n"
                           "    parse:\n"
                           "      - {type: json}\n"
                           "    topic: web\n";

static void test_load_defaults(void **state)
{
    (void)state;
    agent_config_t *c = NULL;
    int rc = agent_config_load_string(&c, "good.yaml", good, strlen(good));
    if (rc != 0) {
        agent_config_print_errors(c, stderr);
    }
    assert_int_equal(rc, 0);
    agent_conf_t *k = &c->conf;
    assert_string_equal(k->agent.id, "a1");
    assert_non_null(k->agent.hostname);
    assert_int_equal(k->agent.memory_limit, 64u << 20);
    assert_int_equal(k->agent.checkpoint_interval_ms, 1000);
    assert_int_equal(k->output.compression, AGENT_COMP_SNAPPY);
    assert_int_equal(k->npipelines, 1);
    agent_input_conf_t *in = &k->pipelines[0].inputs[0];
    assert_string_equal(in->id, "web/0");
    assert_int_equal(in->max_line_bytes, 64u << 10);
    assert_int_equal(in->multiline.timeout_ms, 2000);
    assert_int_equal(in->multiline.max_lines, 500);
    assert_non_null(in->multiline.re);
    assert_int_equal(in->read_from, AGENT_READ_BEGINNING);
    assert_string_equal(k->pipelines[0].parse[0].field, "message");
    assert_string_equal(k->pipelines[0].key, "");
    agent_config_free(c);
}

static void test_locate(void **state)
{
    (void)state;
    int line, col, style;
    assert_int_equal(
        agent_yaml_locate(good, strlen(good), "pipelines.0.inputs.0.paths.0", &line, &col, &style),
        0);
    assert_int_equal(line, 9);
    assert_int_equal(col, 17);
    assert_int_equal(
        agent_yaml_locate(good, strlen(good), "output.options.linger.ms", &line, &col, &style),
        -1); /* a key with a dot is not a path */
    assert_int_equal(
        agent_yaml_locate(good, strlen(good), "pipelines.0.topic", &line, &col, &style), 0);
    assert_int_equal(line, 13);
    assert_int_equal(col, 12);
    assert_int_equal(agent_yaml_locate(good, strlen(good), "pipelines.1", &line, &col, &style), -1);
    assert_int_equal(agent_yaml_locate(good, strlen(good), "", &line, &col, &style), 0);
    assert_int_equal(line, 1);
}

/* What agent_config_print_errors prints (free it). */
static char *errors_text(agent_config_t *c)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&buf, &len);
    assert_non_null(fp);
    agent_config_print_errors(c, fp);
    fclose(fp);
    return buf;
}

static void test_errors(void **state)
{
    (void)state;
    static const char bad[] = "output: {brokers: [b:1], options: {acks: 0}}\n"
                              "pipelines:\n"
                              "  - name: p\n"
                              "    inputs: [{type: tail, paths: [/x]}]\n"
                              "    parse:\n"
                              "      - type: regex\n"
                              "        pattern: '(?<a>x))'\n"
                              "    topic: t\n";
    agent_config_t *c = NULL;
    assert_int_equal(agent_config_load_string(&c, "bad.yaml", bad, strlen(bad)), TRIB_ECONFIG);
    assert_int_equal(agent_config_error_count(c), 2);
    char *buf = errors_text(c);
    assert_non_null(strstr(buf, "bad.yaml:1:42: error: output.options.acks must be 'all'"));
    /* the unmatched ')' is at offset 7 of the pattern, column 26 */
    assert_non_null(
        strstr(buf, "bad.yaml:7:26: error: bad regex in pipelines[0].parse[0].pattern"));
    free(buf);
    agent_config_free(c);
}

/* output.brokers entries are read as the configuration's ADDRESS type (trib_config_parse_address)
   with a host and a port above 0. */
static void test_brokers(void **state)
{
    (void)state;
    static const struct {
        const char *brokers;
        bool ok;
    } cases[] = {
        {"[127.0.0.1:9092, '[::1]:9093', kafka-1.example:1]", true},
        {"[b:0]", false},
        {"[':9092']", false},
        {"['::1:9092']", false},
        {"[b]", false},
        {"['b:1 ']", false},
        {"[b:65536]", false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char y[256];
        snprintf(y, sizeof(y),
                 "output: {brokers: %s}\n"
                 "pipelines: [{name: p, inputs: [{type: tail, paths: [/x]}], topic: t}]\n",
                 cases[i].brokers);
        agent_config_t *c = NULL;
        int rc = agent_config_load_string(&c, "b.yaml", y, strlen(y));
        if (cases[i].ok) {
            assert_int_equal(rc, 0);
        } else {
            assert_int_equal(rc, TRIB_ECONFIG);
            char *buf = errors_text(c);
            assert_non_null(strstr(buf, "is not host:port (port 1-65535)"));
            free(buf);
        }
        agent_config_free(c);
    }
}

/* A template field no step of the pipeline makes is a warning at its
   column (the configuration still loads); fields that cannot be known at
   load time (a json step) are not warned about. */
static void test_template_warnings(void **state)
{
    (void)state;
    static const char y[] = "output: {brokers: [b:1]}\n"
                            "pipelines:\n"
                            "  - name: p\n"
                            "    inputs: [{type: tail, paths: [/x]}]\n"
                            "    parse:\n"
                            "      - {type: regex, pattern: '(?<status>\\d+) (?<lvl>\\w+)'}\n"
                            "    filters: [{type: set, field: env, value: prod}]\n"
                            "    topic: 'web.{stauts}.{lvl}.{env}.{host}'\n"
                            "    key: '{message}-{lvl.x}-{levle:-none}'\n"
                            "  - name: q\n"
                            "    inputs: [{type: tail, id: q, paths: [/y]}]\n"
                            "    parse: [{type: json}]\n"
                            "    topic: 'j.{http.status:-x}.{anything}'\n";
    agent_config_t *c = NULL;
    assert_int_equal(agent_config_load_string(&c, "w.yaml", y, strlen(y)), 0);
    assert_int_equal(agent_config_error_count(c), 0);
    char *buf = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&buf, &len);
    assert_int_equal(agent_config_print_warnings(c, fp), 2);
    fclose(fp);
    assert_non_null(strstr(buf, "w.yaml:8:18: warning: pipelines[0].topic names field 'stauts'"));
    assert_non_null(strstr(buf, "w.yaml:9:30: warning: pipelines[0].key names field 'levle'"));
    free(buf);
    agent_config_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_schema_check), cmocka_unit_test(test_load_defaults),
        cmocka_unit_test(test_locate),       cmocka_unit_test(test_errors),
        cmocka_unit_test(test_brokers),      cmocka_unit_test(test_template_warnings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
