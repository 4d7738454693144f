/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The `postgres` plugin against a real PostgreSQL 15 that the test starts
 * (pgtest.sh: initdb + pg_ctl in a temp dir, 127.0.0.1, ephemeral port,
 * stopped when the test ends however it ends): the table is created, rows
 * land with their JSONB value and mapped columns, a batch written twice
 * inserts nothing twice, a value that is not JSON is rejected naming the
 * record, batches go straight into the table (COPY) only when none of their
 * rows can be there yet, across a new connection (a restart) and another
 * writer of the same partition, a data error from the server is a REJECT without one, and a
 * stopped server is a RETRY until it is back.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "sink_test.h"
#include "tributary/config.h"

static char tmpdir[PATH_MAX - 128];
static char pgdir[PATH_MAX];
static char script[PATH_MAX];
static int pg_port;

/* Runs pgtest.sh; returns its exit status; first line of output to out. */
static int pgtest(char *out, size_t outlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int pgtest(char *out, size_t outlen, const char *fmt, ...)
{
    char args[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof(args), fmt, ap);
    va_end(ap);
    char cmd[PATH_MAX + 2048 + 8];
    snprintf(cmd, sizeof(cmd), "'%s' %s", script, args);
    FILE *fp = popen(cmd, "r");
    assert_non_null(fp);
    char line[1024] = "";
    if (!fgets(line, sizeof(line), fp)) {
        line[0] = '\0';
    }
    char sink[256];
    while (fgets(sink, sizeof(sink), fp)) {
    }
    int st = pclose(fp);
    line[strcspn(line, "\n")] = '\0';
    if (out) {
        snprintf(out, outlen, "%s", line);
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static long long sql_int(const char *sql)
{
    char out[256];
    assert_int_equal(pgtest(out, sizeof(out), "psql '%s' \"%s\"", pgdir, sql), 0);
    return strtoll(out, NULL, 10);
}

static int setup_pg(void **state)
{
    (void)state;
    snprintf(script, sizeof(script), "%s", __FILE__);
    *strrchr(script, '/') = '\0';
    strcat(script, "/pgtest.sh");
    test_mkdtemp(tmpdir, sizeof(tmpdir));
    snprintf(pgdir, sizeof(pgdir), "%s/pg", tmpdir);
    char port[64];
    int rc = pgtest(port, sizeof(port), "start '%s' %d", pgdir, (int)getpid());
    if (rc == 77) {
        print_message("SKIP: no PostgreSQL server binaries (/usr/lib/postgresql/*/bin/initdb; "
                      "install postgresql)\n");
        return 0; /* no server: the tests skip */
    }
    assert_int_equal(rc, 0);
    pg_port = atoi(port);
    return pg_port > 0 ? 0 : -1;
}

static int teardown_pg(void **state)
{
    (void)state;
    if (pg_port) {
        pgtest(NULL, 0, "kill '%s'", pgdir);
    }
    test_rmdir(tmpdir);
    return 0;
}

typedef struct oconf {
    trib_config_map_t options;
} oconf_t;

static const trib_config_option_t oconf_opts[] = {
    {TRIB_CONFIG_FIELD(oconf_t, options, MAP)},
    TRIB_CONFIG_END,
};

typedef struct pgsink {
    trib_sink_plugin_t *plugin;
    const trib_sink_descriptor_t *d;
    trib_config_t *cfg;
    void *opts;
    void *inst;
} pgsink_t;

static void open_pg(pgsink_t *s, const char *extra)
{
    memset(s, 0, sizeof(*s));
    trib_error_t err;
    trib_error_clear(&err);
    assert_int_equal(trib_sink_plugin_load("postgres", NULL, &s->plugin, &err), 0);
    s->d = trib_sink_plugin_descriptor(s->plugin);
    char yaml[1024];
    snprintf(yaml, sizeof(yaml),
             "options: {conninfo: \"host=127.0.0.1 port=%d user=postgres dbname=postgres\", "
             "connect_timeout: 2s%s}",
             pg_port, extra);
    oconf_t oc;
    assert_int_equal(
        trib_config_load_string(&s->cfg, "t.yaml", yaml, strlen(yaml), oconf_opts, &oc), 0);
    int rc = trib_sink_options_apply(s->plugin, s->cfg, &oc.options, "options", &s->opts);
    if (rc != 0) {
        trib_config_print_errors(s->cfg, stderr);
    }
    assert_int_equal(rc, 0);
    assert_int_equal(s->d->open(&test_host, NULL, s->opts, &s->inst, &err), 0);
}

static void close_pg(pgsink_t *s)
{
    s->d->close(s->inst);
    free(s->opts);
    trib_config_free(s->cfg);
    trib_sink_plugin_free(s->plugin);
}

#define N 1000

static void test_rows_once(void **state)
{
    (void)state;
    if (!pg_port) {
        skip();
    }
    pgsink_t s;
    open_pg(&s, ", table: web_events, columns: \"host, status:integer\"");
    static char values[N][128];
    static trib_sink_record_t recs[N];
    for (int i = 0; i < N; i++) {
        snprintf(values[i], sizeof(values[i]),
                 "{\"message\":\"GET /%d\\ttab\\\\\",\"host\":\"h%d\",\"status\":%d}", i, i % 3,
                 200 + i % 2);
        recs[i] = test_record(100 + i, i % 2 ? "k\n\\" : NULL, values[i]);
    }
    trib_sink_batch_t b = {.topic = "web.access", .partition = 2, .records = recs, .count = N};
    trib_sink_result_t res;
    memset(&res, 0, sizeof(res));
    trib_sink_status_t st = s.d->write(s.inst, &b, &res);
    if (st != TRIB_SINK_OK) {
        fprintf(stderr, "%s\n", res.msg);
    }
    assert_int_equal(st, TRIB_SINK_OK);
    assert_int_equal(sql_int("select count(*) from web_events"), N);
    /* Again, and an overlapping half: nothing twice. */
    assert_int_equal(s.d->write(s.inst, &b, &res), TRIB_SINK_OK);
    b.records = recs + N / 2;
    b.count = N / 2;
    assert_int_equal(s.d->write(s.inst, &b, &res), TRIB_SINK_OK);
    assert_int_equal(sql_int("select count(*) from web_events"), N);
    assert_int_equal(sql_int("select count(distinct (topic, \\\"partition\\\", \\\"offset\\\")) "
                             "from web_events where topic = 'web.access' and \\\"partition\\\" = 2 "
                             "and \\\"offset\\\" between 100 and 1099"),
                     N);
    /* The value is JSONB, the mapped columns are typed, the text survived. */
    assert_int_equal(sql_int("select count(*) from web_events where value->>'message' = "
                             "E'GET /7\\\\ttab\\\\\\\\' and status = 201 and host = 'h1' "
                             "and key = E'k\\\\n\\\\\\\\' and ts = to_timestamp(1700000000.107)"),
                     1);
    assert_int_equal(sql_int("select sum(status) from web_events"), 200 * N + N / 2);
    close_pg(&s);
}

/* Writes records [a, b) of partition 0 of topic "d" through s; returns the status. */
static trib_sink_status_t write_range(pgsink_t *s, int64_t a, int64_t b, int64_t ts)
{
    static char values[512][96];
    static trib_sink_record_t recs[512];
    assert_true(b - a <= 512);
    for (int64_t o = a; o < b; o++) {
        snprintf(values[o - a], sizeof(values[o - a]), "{\"seq\":%lld}", (long long)o);
        recs[o - a] = test_record(o, "k", values[o - a]);
        if (ts != 0) {
            recs[o - a].timestamp = ts;
        }
    }
    trib_sink_batch_t bt = {
        .topic = "d", .partition = 0, .records = recs, .count = (size_t)(b - a)};
    trib_sink_result_t res;
    memset(&res, 0, sizeof(res));
    trib_sink_status_t st = s->d->write(s->inst, &bt, &res);
    if (st != TRIB_SINK_OK) {
        fprintf(stderr, "write [%lld, %lld): %s\n", (long long)a, (long long)b, res.msg);
    }
    return st;
}

/* Every offset of [0, n) is in table d exactly once, with its own value. */
static void assert_once(long long n)
{
    assert_int_equal(sql_int("select count(*) from direct"), n);
    assert_int_equal(sql_int("select count(*) from direct where topic = 'd' and "
                             "\\\"partition\\\" = 0 and \\\"offset\\\" between 0 and "
                             "999 and (value->>'seq')::bigint = \\\"offset\\\""),
                     n);
}

static void test_direct_once(void **state)
{
    (void)state;
    if (!pg_port) {
        skip();
    }
    pgsink_t s;
    open_pg(&s, ", table: direct");
    uint64_t direct0 = test_counter("postgres_batches_direct");
    uint64_t staged0 = test_counter("postgres_batches_staged");
    /* An empty table: straight in, and the next batch too. */
    assert_int_equal(write_range(&s, 0, 100, 0), TRIB_SINK_OK);
    assert_int_equal(write_range(&s, 100, 200, 0), TRIB_SINK_OK);
    assert_int_equal(test_counter("postgres_batches_direct") - direct0, 2);
    assert_once(200);
    /* The timestamp written as text is the instant the staging path computes. */
    assert_int_equal(sql_int("select count(*) from direct where \\\"offset\\\" = 7 and ts = "
                             "to_timestamp(1700000000007 / 1000.0)"),
                     1);
    close_pg(&s);

    /* A restart before the offset commit: the host delivers from an older offset, on a new
     * connection. The overlapping batch goes through staging; the one after it is direct. */
    open_pg(&s, ", table: direct");
    assert_int_equal(write_range(&s, 150, 250, 0), TRIB_SINK_OK);
    assert_int_equal(test_counter("postgres_batches_staged") - staged0, 1);
    assert_int_equal(write_range(&s, 250, 300, 0), TRIB_SINK_OK);
    assert_int_equal(test_counter("postgres_batches_direct") - direct0, 3);
    assert_once(300);

    /* Another writer put a row of the next batch there: the direct COPY meets it, rolls back
     * whole, and the batch goes through staging, each row once. */
    assert_int_equal(pgtest(NULL, 0,
                            "psql '%s' \"insert into direct (topic, \\\"partition\\\", "
                            "\\\"offset\\\", value) values ('d', 0, 320, '{\\\"seq\\\": 320}')\"",
                            pgdir),
                     0);
    uint64_t conflicts0 = test_counter("postgres_direct_conflicts");
    assert_int_equal(write_range(&s, 300, 350, 0), TRIB_SINK_OK);
    assert_int_equal(test_counter("postgres_direct_conflicts") - conflicts0, 1);
    assert_int_equal(test_counter("postgres_batches_staged") - staged0, 2);
    assert_once(350);

    /* A timestamp beyond year 9999 is the server's to judge: staging, then a data error. */
    assert_int_equal(write_range(&s, 350, 360, 1000000000000000000LL), TRIB_SINK_REJECT);
    assert_once(350);
    assert_int_equal(write_range(&s, 350, 360, -1), TRIB_SINK_OK);
    assert_int_equal(sql_int("select count(*) from direct where ts = '1969-12-31 "
                             "23:59:59.999+00'"),
                     10);
    assert_once(360);
    close_pg(&s);
}

static void test_rejects(void **state)
{
    (void)state;
    if (!pg_port) {
        skip();
    }
    pgsink_t s;
    open_pg(&s, ", table: rej, columns: \"n:integer\"");
    trib_sink_record_t recs[4] = {
        test_record(0, NULL, "{\"n\":1}"),
        test_record(1, NULL, "{\"n\":2}"),
        test_record(2, NULL, "not json"),
        test_record(3, NULL, "{\"n\":4}"),
    };
    trib_sink_batch_t b = {.topic = "t", .partition = 0, .records = recs, .count = 4};
    trib_sink_result_t res;
    memset(&res, 0, sizeof(res));
    assert_int_equal(s.d->write(s.inst, &b, &res), TRIB_SINK_REJECT);
    assert_int_equal(res.failed_index, 2);
    assert_non_null(strstr(res.msg, "offset 2 is not JSON"));
    /* Valid JSON the server refuses (n is an integer column): REJECT, index unknown. */
    recs[2] = test_record(2, NULL, "{\"n\":\"three\"}");
    assert_int_equal(s.d->write(s.inst, &b, &res), TRIB_SINK_REJECT);
    assert_int_equal(res.failed_index, -1);
    assert_non_null(strstr(res.msg, "22P02"));
    assert_int_equal(sql_int("select count(*) from rej"), 0);
    /* The session is still usable: the good records go in. */
    b.count = 2;
    assert_int_equal(s.d->write(s.inst, &b, &res), TRIB_SINK_OK);
    assert_int_equal(sql_int("select count(*) from rej"), 2);
    close_pg(&s);
}

static void test_server_down_is_retry(void **state)
{
    (void)state;
    if (!pg_port) {
        skip();
    }
    pgsink_t s;
    open_pg(&s, ", table: outage");
    trib_sink_record_t r = test_record(0, NULL, "{}");
    trib_sink_batch_t b = {.topic = "t", .partition = 0, .records = &r, .count = 1};
    trib_sink_result_t res;
    memset(&res, 0, sizeof(res));
    assert_int_equal(s.d->write(s.inst, &b, &res), TRIB_SINK_OK);
    assert_int_equal(pgtest(NULL, 0, "stop '%s'", pgdir), 0);
    r.offset = 1;
    assert_int_equal(s.d->write(s.inst, &b, &res), TRIB_SINK_RETRY);
    fprintf(stderr, "while down: %s\n", res.msg);
    assert_int_equal(s.d->write(s.inst, &b, &res), TRIB_SINK_RETRY);
    assert_int_equal(pgtest(NULL, 0, "restart '%s'", pgdir), 0);
    assert_int_equal(s.d->write(s.inst, &b, &res), TRIB_SINK_OK);
    assert_int_equal(sql_int("select count(*) from outage"), 2);
    close_pg(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rows_once),
        cmocka_unit_test(test_direct_once),
        cmocka_unit_test(test_rejects),
        cmocka_unit_test(test_server_down_is_retry),
    };
    return cmocka_run_group_tests(tests, setup_pg, teardown_pg);
}
