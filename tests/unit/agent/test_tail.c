/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The tail input end to end through --dry-run --once (events printed to a
 * memory stream, the loop closed with uv_loop_close() == 0): short files,
 * long lines split and flagged, multiline records flushed by their timeout,
 * excludes, CRLF; and the checkpoint table's file format.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent.h"
#include "state/checkpoint.h"

static char tmpdir[256];

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_tail.XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd);
}

static void write_file(const char *name, const char *data, size_t len)
{
    char p[512];
    snprintf(p, sizeof(p), "%s/%s", tmpdir, name);
    FILE *fp = fopen(p, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(data, 1, len, fp), len);
    fclose(fp);
}

/* Runs the agent once over tmpdir/<glob> and returns what it printed. */
static char *run_once_out(const char *output_extra, const char *input_extra)
{
    char yaml[2048];
    snprintf(yaml, sizeof(yaml),
             "agent: {id: t, hostname: h, state_dir: %s/state}\n"
             "output: {brokers: [127.0.0.1:1]%s}\n"
             "pipelines:\n"
             "  - name: p\n"
             "    inputs:\n"
             "      - type: tail\n"
             "        paths: [%s/*.log]\n"
             "        exclude: [skip*]\n"
             "        poll_interval: 10ms\n"
             "%s"
             "    topic: t.{source}\n",
             tmpdir, output_extra, tmpdir, input_extra);
    agent_config_t *cfg = NULL;
    int rc = agent_config_load_string(&cfg, "t.yaml", yaml, strlen(yaml));
    if (rc != 0) {
        agent_config_print_errors(cfg, stderr);
    }
    assert_int_equal(rc, 0);
    char *out = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&out, &len);
    agent_options_t o = {.config_path = "t.yaml", .dry_run = true, .once = true, .dry_out = fp};
    agent_t *a = NULL;
    assert_int_equal(agent_new(&a, cfg, &o), 0);
    assert_int_equal(agent_run(a), 0);
    agent_config_t *last = agent_take_config(a);
    assert_int_equal(agent_free(a), 0); /* uv_loop_close() == 0 */
    agent_config_free(last);
    fclose(fp);
    return out;
}

static char *run_once(const char *input_extra)
{
    return run_once_out("", input_extra);
}

static size_t count(const char *s, const char *needle)
{
    size_t n = 0;
    for (const char *p = s; (p = strstr(p, needle)) != NULL; p += strlen(needle)) {
        n++;
    }
    return n;
}

static void test_lines(void **state)
{
    (void)state;
    write_file("a.log", "one\r\ntwo\n", 9);
    write_file("b.log", "x\n", 2); /* shorter than the fingerprint */
    write_file("skip.log", "never\n", 6);
    write_file("c.txt", "not matched\n", 12);
    char *out = run_once("");
    assert_int_equal(count(out, "\n"), 3);
    assert_non_null(strstr(out, "\"message\":\"one\"}"));
    assert_non_null(strstr(out, "\"message\":\"two\"}"));
    assert_non_null(strstr(out, "\"message\":\"x\"}"));
    assert_null(strstr(out, "never"));
    assert_non_null(strstr(out, "\"headers\":{\"source_type\":\"tail\",\"path\":\""));
    assert_non_null(strstr(out, "\"host\":\"h\",\"agent\":\"t\""));
    assert_non_null(strstr(out, "\"topic\":\"t._tmp_test_tail."));
    free(out);
    unlink("a.log");
}

static void test_long_lines_split(void **state)
{
    (void)state;
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -f %s/*.log", tmpdir);
    assert_int_equal(system(cmd), 0);
    size_t n = 1000;
    char *big = malloc(n + 2);
    memset(big, 'z', n);
    big[n] = '\n';
    write_file("long.log", big, n + 1);
    free(big);
    char *out = run_once("        max_line_bytes: 256\n");
    /* 1000 bytes = 3 parts of 256 (flagged partial) and the last 232 */
    assert_int_equal(count(out, "\n"), 4);
    assert_int_equal(count(out, "\"partial\":true"), 3);
    free(out);
}

static void test_multiline(void **state)
{
    (void)state;
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -f %s/*.log", tmpdir);
    assert_int_equal(system(cmd), 0);
    const char *log = "2026-01-01 first\n  at a\n  at b\n2026-01-02 second\n2026-01-03 third\n"
                      "  tail line\n";
    write_file("m.log", log, strlen(log));
    char *out = run_once("        multiline: {start: '^\\d{4}-', timeout: 50ms, max_lines: 2}\n");
    /* max_lines 2 cuts the first record after "  at a" */
    assert_int_equal(count(out, "\n"), 4);
    assert_non_null(strstr(out, "\"message\":\"2026-01-01 first\\n  at a\"}"));
    assert_non_null(strstr(out, "\"message\":\"  at b\"}"));
    assert_non_null(strstr(out, "\"message\":\"2026-01-03 third\\n  tail line\"}"));
    free(out);
}

static void test_open_file_cap(void **state)
{
    (void)state;
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -f %s/*.log", tmpdir);
    assert_int_equal(system(cmd), 0);
    write_file("f1.log", "a\n", 2);
    write_file("f2.log", "b\n", 2);
    write_file("f3.log", "c\n", 2);
    /* one file at a time: the others wait until an idle one is closed */
    char *out = run_once("        max_open_files: 1\n        close_inactive: 1s\n"
                         "        scan_interval: 50ms\n        inotify: false\n");
    assert_int_equal(count(out, "\n"), 3);
    assert_non_null(strstr(out, "\"message\":\"a\"}"));
    assert_non_null(strstr(out, "\"message\":\"b\"}"));
    assert_non_null(strstr(out, "\"message\":\"c\"}"));
    free(out);
}

static void test_read_from_end(void **state)
{
    (void)state;
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -f %s/*.log", tmpdir);
    assert_int_equal(system(cmd), 0);
    write_file("old.log", "before\n", 7);
    /* the input's first run (no checkpoints): existing content is skipped */
    char *out = run_once("        read_from: end\n");
    assert_string_equal(out, "");
    free(out);
}

/* The event.id header of the nth (from 0) event whose message is msg, in
   out[33]; "" if none. */
static void id_nth(const char *all, const char *msg, int nth, char out[33])
{
    char want[128];
    snprintf(want, sizeof(want), "\"message\":\"%s\"}", msg);
    const char *m = strstr(all, want);
    for (int i = 0; i < nth && m != NULL; i++) {
        m = strstr(m + 1, want);
    }
    assert_non_null(m);
    const char *line = m;
    while (line > all && line[-1] != '\n') {
        line--;
    }
    const char *h = strstr(line, "\"event.id\":\"");
    out[0] = '\0';
    if (h != NULL && h < m) {
        memcpy(out, h + 12, 32);
        out[32] = '\0';
    }
}

static void id_of(const char *all, const char *msg, char out[33])
{
    id_nth(all, msg, 0, out);
}

/* The same line gets the same id in every run (a restart), after a rename
   (rotation), and after the file grew past fingerprint_bytes; a record's
   id ends in its kind and start offset; another file's lines get others;
   output.event_id: false sends none. */
static void test_event_id(void **state)
{
    (void)state;
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -f %s/*.log", tmpdir);
    assert_int_equal(system(cmd), 0);
    write_file("a.log", "alpha\nbeta\ngamma\n", 17);
    char *out = run_once("");
    char a0[33], b0[33], g0[33], x[33];
    id_of(out, "alpha", a0);
    id_of(out, "beta", b0);
    id_of(out, "gamma", g0);
    free(out);
    assert_int_equal(strlen(a0), 32);
    assert_string_equal(a0 + 16, "0100000000000000"); /* tailed, offset 0 */
    assert_string_equal(b0 + 16, "0100000000000006");
    assert_string_equal(g0 + 16, "010000000000000b");
    assert_string_not_equal(a0, b0);
    /* again: a restart reads the same lines */
    out = run_once("");
    id_of(out, "alpha", x);
    assert_string_equal(x, a0);
    id_of(out, "gamma", x);
    assert_string_equal(x, g0);
    free(out);
    /* renamed (rotation by rename), then grown past fingerprint_bytes (1 KiB) */
    char from[300], to[300];
    snprintf(from, sizeof(from), "%s/a.log", tmpdir);
    snprintf(to, sizeof(to), "%s/a.log.1.log", tmpdir);
    assert_int_equal(rename(from, to), 0);
    FILE *fp = fopen(to, "ab");
    assert_non_null(fp);
    for (int i = 0; i < 200; i++) {
        fprintf(fp, "more line %d\n", i);
    }
    fclose(fp);
    out = run_once("");
    id_of(out, "alpha", x);
    assert_string_equal(x, a0);
    id_of(out, "beta", x);
    assert_string_equal(x, b0);
    id_of(out, "gamma", x);
    assert_string_equal(x, g0);
    char m150[33], m151[33];
    id_of(out, "more line 150", m150);
    id_of(out, "more line 151", m151);
    assert_memory_equal(m150, m151, 16); /* the same file identity past 1 KiB */
    assert_string_not_equal(m150, m151);
    free(out);
    /* another file with the same first lines: other ids */
    write_file("b.log", "alpha\nbeta\ngamma\n", 17);
    out = run_once("");
    assert_int_equal(count(out, "\"message\":\"alpha\"}"), 2);
    char a1[33], a2[33];
    id_nth(out, "alpha", 0, a1);
    id_nth(out, "alpha", 1, a2);
    assert_string_not_equal(a1, a2);
    free(out);
    /* off */
    out = run_once_out(", event_id: false", "");
    assert_null(strstr(out, "event.id"));
    assert_non_null(strstr(out, "\"message\":\"alpha\"}"));
    free(out);
    assert_int_equal(system(cmd), 0);
}

static void test_checkpoint_file(void **state)
{
    (void)state;
    agent_ckpt_table_t t = {0};
    agent_ckpt_t *c = agent_ckpt_add(&t, "web/0", "/var/log/a b\t%\n.log", 2049, 77);
    assert_non_null(c);
    c->fp_len = 1024;
    c->fp_crc = 0xdeadbeef;
    c->offset = 123456789012ull;
    c->closed_ms = 5;
    assert_non_null(agent_ckpt_add(&t, "other", "/x", 1, 2));
    assert_int_equal(agent_ckpt_save(&t, tmpdir), 0);
    agent_ckpt_table_t u = {0};
    assert_int_equal(agent_ckpt_load(&u, tmpdir), 0);
    assert_int_equal(u.count, 2);
    agent_ckpt_t *d = agent_ckpt_find(&u, "web/0", 2049, 77);
    assert_non_null(d);
    assert_string_equal(d->path, "/var/log/a b\t%\n.log");
    assert_int_equal(d->fp_len, 1024);
    assert_int_equal(d->fp_crc, 0xdeadbeef);
    assert_int_equal(d->offset, 123456789012ull);
    assert_null(agent_ckpt_find(&u, "web/1", 2049, 77)); /* namespaced by input */
    /* closed entries expire; the other input's entry was held open: it stays */
    d->closed_ms = 1000;
    agent_ckpt_t *o = agent_ckpt_find(&u, "other", 1, 2);
    o->closed_ms = 0;
    agent_ckpt_expire(&u, 100000, 5000);
    assert_int_equal(u.count, 1);
    assert_non_null(agent_ckpt_find(&u, "other", 1, 2));
    char p[512];
    snprintf(p, sizeof(p), "%s/checkpoints.tmp", tmpdir);
    assert_int_not_equal(access(p, F_OK), 0); /* renamed away */
    agent_ckpt_clear(&t);
    agent_ckpt_clear(&u);
    /* a missing table is an empty one */
    snprintf(p, sizeof(p), "%s/none", tmpdir);
    assert_int_equal(agent_ckpt_load(&u, p), 0);
    assert_int_equal(u.count, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lines),         cmocka_unit_test(test_long_lines_split),
        cmocka_unit_test(test_multiline),     cmocka_unit_test(test_open_file_cap),
        cmocka_unit_test(test_read_from_end), cmocka_unit_test(test_checkpoint_file),
        cmocka_unit_test(test_event_id),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
