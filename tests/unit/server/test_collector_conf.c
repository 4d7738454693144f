/* SPDX-License-Identifier: Apache-2.0 */
/*
 * collector.yaml: the schema is well formed, conf/collector.yaml documents
 * exactly the defaults, bad values name file:line:col, and the settings map
 * onto the storage, cluster and server configurations. The cluster
 * section: the zookeeper backend with its connect string, session timeout
 * and rack; the errors (no connect string, a bad one, rack set twice) at
 * the offending key's file:line:col.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cluster/topic_config.h"
#include "cluster/zk.h"
#include "conf.h"
#include "tributary/log.h"

static char *dump(const coll_conf_t *c)
{
    char *p = NULL;
    size_t n = 0;
    FILE *fp = open_memstream(&p, &n);
    assert_non_null(fp);
    assert_int_equal(trib_config_dump(fp, coll_conf_schema, c, 0), 0);
    fclose(fp);
    return p;
}

/* The repository root, from this file's path (tests/unit/server/). */
static void repo_path(char *out, size_t n, const char *rel)
{
    char root[4096];
    snprintf(root, sizeof(root), "%s", __FILE__);
    char *cut = strstr(root, "tests/unit/server/");
    assert_non_null(cut);
    *cut = '\0';
    assert_true(strlen(root) + strlen(rel) < n);
    memcpy(out, root, strlen(root));
    memcpy(out + strlen(root), rel, strlen(rel) + 1);
}

static void test_schema(void **state)
{
    (void)state;
    trib_error_t err;
    trib_error_clear(&err);
    int rc = trib_config_schema_check(coll_conf_schema, &err);
    if (rc) {
        fprintf(stderr, "%s\n", err.msg);
    }
    assert_int_equal(rc, 0);
}

static void test_defaults(void **state)
{
    (void)state;
    coll_conf_t c;
    trib_config_t *cfg = NULL;
    assert_int_equal(coll_conf_load(&c, &cfg, NULL), 0);
    assert_int_equal(c.node_id, 1);
    assert_string_equal(c.listen.host, "127.0.0.1");
    assert_int_equal(c.listen.port, 9092);
    assert_null(c.advertise.text);
    assert_string_equal(c.data_dir, "./tributary-data");
    assert_true(c.auto_create_topics);
    assert_int_equal(c.default_partitions, 1);
    assert_true(c.metrics.enabled);
    assert_int_equal(c.metrics.listen.port, 9644);
    assert_int_equal(c.storage.fsync, COLL_FSYNC_ACK);
    assert_int_equal(c.server.max_request_bytes, 100u << 20);

    coll_storage_config_t s;
    coll_conf_to_storage(&c, &s);
    assert_string_equal(s.data_dir, "./tributary-data");
    assert_int_equal(s.fsync, COLL_FSYNC_ACK);
    assert_int_equal(s.flush_ms, 1000);
    assert_int_equal(s.log_defaults.segment_bytes, 1u << 30);
    assert_int_equal(s.log_defaults.max_message_bytes, 1048588);
    coll_cluster_config_t cc;
    coll_conf_to_cluster(&c, &cc);
    assert_int_equal(cc.node_id, 1);
    assert_int_equal(cc.defaults_set, 0);
    coll_tcfg_t k;
    coll_tcfg_init(&k);
    assert_memory_equal(&cc.defaults, &k, sizeof(k));
    coll_server_config_t sv;
    coll_conf_to_server(&c, &sv);
    assert_int_equal(sv.listen_port, 9092);
    assert_int_equal(sv.max_inflight, 64);
    assert_int_equal(sv.idle_timeout_ms, 600000);
    assert_int_equal(sv.queued_max_request_bytes, 256u << 20);
    assert_int_equal(sv.request_timeout_ms, 30000);
    assert_int_equal(sv.fetch_max_bytes, 57671680); /* Kafka's fetch.max.bytes default */
    assert_int_equal(sv.producer_expiration_ms, 86400000);
    trib_config_free(cfg);
}

static void test_shipped_file(void **state)
{
    (void)state;
    char path[4096];
    repo_path(path, sizeof(path), "conf/collector.yaml");
    coll_conf_t d, f;
    trib_config_t *dc = NULL, *fc = NULL;
    assert_int_equal(coll_conf_load(&d, &dc, NULL), 0);
    int rc = coll_conf_load(&f, &fc, path);
    if (rc) {
        trib_config_print_errors(fc, stderr);
    }
    assert_int_equal(rc, 0);
    char *a = dump(&d), *b = dump(&f);
    assert_string_equal(a, b);
    free(a);
    free(b);
    trib_config_free(dc);
    trib_config_free(fc);
}

static void test_topic_defaults(void **state)
{
    (void)state;
    static const char yaml[] = "topic_defaults:\n"
                               "  retention.ms: -1\n"
                               "  segment.bytes: 64MiB\n"
                               "  cleanup.policy: compact,delete\n"
                               "  message.timestamp.type: LogAppendTime\n"
                               "  min.cleanable.dirty.ratio: 0.25\n";
    coll_conf_t c;
    trib_config_t *cfg = NULL;
    assert_int_equal(trib_config_load_string(&cfg, "t.yaml", yaml, sizeof(yaml) - 1,
                                             coll_conf_schema, (memset(&c, 0, sizeof(c)), &c)),
                     0);
    coll_tcfg_t t;
    uint32_t mask;
    coll_conf_topic_defaults(&c, &t, &mask);
    assert_int_equal(t.v[COLL_TCFG_RETENTION_MS].i, -1);
    assert_int_equal(t.v[COLL_TCFG_SEGMENT_BYTES].i, 64 << 20);
    assert_int_equal(t.v[COLL_TCFG_CLEANUP_POLICY].i, COLL_CLEANUP_COMPACT | COLL_CLEANUP_DELETE);
    assert_int_equal(t.v[COLL_TCFG_MESSAGE_TIMESTAMP_TYPE].i, COLL_TS_LOG_APPEND_TIME);
    assert_true(t.v[COLL_TCFG_MIN_CLEANABLE_DIRTY_RATIO].d == 0.25);
    assert_int_equal(mask, (1u << COLL_TCFG_RETENTION_MS) | (1u << COLL_TCFG_SEGMENT_BYTES) |
                               (1u << COLL_TCFG_CLEANUP_POLICY) |
                               (1u << COLL_TCFG_MESSAGE_TIMESTAMP_TYPE) |
                               (1u << COLL_TCFG_MIN_CLEANABLE_DIRTY_RATIO));
    trib_config_free(cfg);

    /* Every bound of the YAML rows is one the topic config parser accepts too. */
    const trib_config_option_t *td = NULL;
    for (const trib_config_option_t *o = coll_conf_schema; o->name; o++) {
        if (strcmp(o->name, "topic_defaults") == 0) {
            td = o->sub;
        }
    }
    assert_non_null(td);
    for (const trib_config_option_t *o = td; o->name; o++) {
        int key = coll_tcfg_find(o->name, strlen(o->name));
        assert_true(key >= 0);
        const char *vals[] = {o->def, o->min, o->max};
        for (int i = 0; i < 3; i++) {
            if (!vals[i] || o->type == TRIB_CONFIG_ENUM) {
                continue;
            }
            uint64_t bytes;
            char buf[64];
            const char *v = vals[i];
            if (o->type == TRIB_CONFIG_SIZE) {
                assert_int_equal(trib_config_parse_size(v, &bytes), 0);
                snprintf(buf, sizeof(buf), "%llu", (unsigned long long)bytes);
                v = buf;
            }
            coll_tcfg_val_t out;
            char msg[256];
            if (coll_tcfg_parse(key, v, strlen(v), &out, msg, sizeof(msg)) != 0) {
                fail_msg("%s: %s", o->name, msg);
            }
        }
    }
}

static void test_errors(void **state)
{
    (void)state;
    static const char yaml[] = "node_id: -3\n"
                               "listen: nowhere\n"
                               "storage:\n"
                               "  fsync: always\n"
                               "topic_defaults:\n"
                               "  segment.bytes: 10\n"
                               "  retention.mss: 5\n";
    coll_conf_t c;
    trib_config_t *cfg = NULL;
    memset(&c, 0, sizeof(c));
    assert_int_equal(
        trib_config_load_string(&cfg, "bad.yaml", yaml, sizeof(yaml) - 1, coll_conf_schema, &c),
        TRIB_ECONFIG);
    assert_int_equal(trib_config_error_count(cfg), 5);
    const trib_error_t *e = trib_config_error(cfg, 0);
    assert_int_equal(e->line, 1);
    assert_string_equal(e->file, "bad.yaml");
    e = trib_config_error(cfg, 4);
    assert_int_equal(e->line, 7);
    assert_non_null(strstr(e->msg, "retention.ms"));
    trib_config_free(cfg);
}

static void write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

static void test_cluster(void **state)
{
    (void)state;
    char path[] = "/tmp/test_collector_conf.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    coll_conf_t c;
    trib_config_t *cfg = NULL;

    /* The defaults: local, 18 s. */
    assert_int_equal(coll_conf_load(&c, &cfg, NULL), 0);
    assert_int_equal(c.cluster.backend, COLL_BACKEND_LOCAL);
    assert_int_equal(c.cluster.session_timeout, 18000);
    assert_int_equal(c.cluster.replica_lag_time_max_ms, 30000);
    assert_null(coll_conf_rack(&c));
    trib_config_free(cfg);

    write_file(path, "cluster:\n"
                     "  backend: zookeeper\n"
                     "  zookeeper: zk1:2181,zk2:2181/tributary\n"
                     "  session_timeout: 6s\n"
                     "  rack: r1\n"
                     "  replica.lag.time.max.ms: 10000\n");
    int rc = coll_conf_load(&c, &cfg, path);
    if (coll_zk_available()) {
        assert_int_equal(rc, 0);
        assert_int_equal(c.cluster.backend, COLL_BACKEND_ZOOKEEPER);
        assert_string_equal(c.cluster.zookeeper, "zk1:2181,zk2:2181/tributary");
        assert_int_equal(c.cluster.session_timeout, 6000);
        assert_int_equal(c.cluster.replica_lag_time_max_ms, 10000);
        assert_string_equal(coll_conf_rack(&c), "r1");
        coll_cluster_config_t cc;
        coll_conf_to_cluster(&c, &cc);
        assert_string_equal(cc.rack, "r1");
        coll_server_config_t sc;
        coll_conf_to_server(&c, &sc);
        assert_int_equal(sc.replica_lag_time_max_ms, 10000);
    } else {
        /* Built without the client: a clear error at the backend. */
        assert_int_equal(rc, TRIB_ECONFIG);
        const trib_error_t *e = trib_config_error(cfg, 0);
        assert_int_equal(e->line, 2);
        assert_non_null(strstr(e->msg, "without the ZooKeeper C client"));
    }
    trib_config_free(cfg);

    /* The zookeeper backend without a connect string; a bad one; rack twice; a short session. */
    write_file(path, "rack: a\n"
                     "cluster:\n"
                     "  backend: zookeeper\n"
                     "  rack: b\n"
                     "  session_timeout: 1s\n");
    assert_int_equal(coll_conf_load(&c, &cfg, path), TRIB_ECONFIG);
    size_t n = trib_config_error_count(cfg);
    bool need_connect = false, twice = false, short_session = false;
    for (size_t i = 0; i < n; i++) {
        const trib_error_t *e = trib_config_error(cfg, i);
        assert_string_equal(e->file, path);
        if (strstr(e->msg, "needs cluster.zookeeper")) {
            need_connect = true;
            assert_int_equal(e->line, 3);
            assert_int_equal(e->col, 12);
        }
        if (strstr(e->msg, "rack is set twice")) {
            twice = true;
            assert_int_equal(e->line, 4);
        }
        if (e->line == 5) {
            short_session = true;
        }
    }
    assert_true(need_connect);
    assert_true(twice);
    assert_true(short_session);
    trib_config_free(cfg);

    write_file(path, "cluster:\n"
                     "  zookeeper: zk1:2181/a//b\n");
    assert_int_equal(coll_conf_load(&c, &cfg, path), TRIB_ECONFIG);
    const trib_error_t *e = trib_config_error(cfg, 0);
    assert_int_equal(e->line, 2);
    assert_int_equal(e->col, 14);
    assert_non_null(strstr(e->msg, "chroot"));
    trib_config_free(cfg);
    unlink(path);
}

/* listeners[]: the mapping onto the server's listeners, and the checks at file:line:col. */
static void test_listeners(void **state)
{
    (void)state;
    char path[] = "/tmp/test_collector_conf.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    coll_conf_t c;
    trib_config_t *cfg = NULL;
    coll_listener_config_t l[COLL_CONF_MAX_LISTENERS + 1];

    /* No listeners: the server makes one from listen. */
    assert_int_equal(coll_conf_load(&c, &cfg, NULL), 0);
    assert_int_equal(coll_conf_listeners(&c, l), 0);
    trib_config_free(cfg);

    write_file(path, "listeners:\n"
                     "  - name: in\n"
                     "    address: 127.0.0.1:9092\n"
                     "  - name: out\n"
                     "    address: :9093\n"
                     "    advertise: kafka.example.com:19093\n"
                     "    security: sasl_ssl\n"
                     "    tls: {cert: c.pem, key: k.pem, ca: ca.pem, client_auth: requested}\n"
                     "    sasl_mechanisms: [PLAIN, SCRAM-SHA-512]\n"
                     "  - name: scram\n"
                     "    address: 127.0.0.1:9094\n"
                     "    security: sasl_plaintext\n"
                     "server:\n"
                     "  failed_authentication_delay: 2s\n");
    int rc = coll_conf_load(&c, &cfg, path);
    if (rc) {
        trib_config_print_errors(cfg, stderr);
    }
    assert_int_equal(rc, 0);
    assert_int_equal(coll_conf_listeners(&c, l), 3);
    assert_string_equal(l[0].name, "in");
    assert_int_equal(l[0].security, COLL_SEC_PLAINTEXT);
    assert_int_equal(l[0].port, 9092);
    assert_null(l[0].advertise_host);
    assert_string_equal(l[1].host, "");
    assert_int_equal(l[1].security, COLL_SEC_SASL_SSL);
    assert_string_equal(l[1].advertise_host, "kafka.example.com");
    assert_int_equal(l[1].advertise_port, 19093);
    assert_string_equal(l[1].tls_ca, "ca.pem");
    assert_int_equal(l[1].client_auth, COLL_CLIENT_AUTH_REQUESTED);
    assert_int_equal(l[1].sasl_mechanisms, COLL_SASL_PLAIN | COLL_SASL_SCRAM_SHA_512);
    /* sasl_* without sasl_mechanisms: both SCRAM mechanisms. */
    assert_int_equal(l[2].sasl_mechanisms, COLL_SASL_SCRAM_SHA_256 | COLL_SASL_SCRAM_SHA_512);
    coll_server_config_t sv;
    coll_conf_to_server(&c, &sv);
    assert_int_equal(sv.failed_auth_delay_ms, 2000);
    /* --listen puts a plaintext listener first. */
    c.listen_flag = true;
    assert_int_equal(coll_conf_listeners(&c, l), 4);
    assert_string_equal(l[0].name, "plaintext");
    assert_string_equal(l[1].name, "in");
    trib_config_free(cfg);

    write_file(path, "listen: 127.0.0.1:9092\n"
                     "listeners:\n"
                     "  - name: a\n"
                     "    address: 127.0.0.1:9093\n"
                     "    security: ssl\n"
                     "  - name: a\n"
                     "    address: 127.0.0.1:9094\n"
                     "    tls: {cert: c.pem, key: k.pem}\n"
                     "    sasl_mechanisms: [PLAIN]\n"
                     "  - name: b\n"
                     "    address: 127.0.0.1:9095\n"
                     "    security: sasl_ssl\n"
                     "    tls: {cert: c.pem, key: k.pem, client_auth: required}\n"
                     "    sasl_mechanisms: [SCRAM-SHA-1]\n");
    assert_int_equal(coll_conf_load(&c, &cfg, path), TRIB_ECONFIG);
    static const struct {
        int line, col;
        const char *msg;
    } want[] = {
        {1, 9, "listen and listeners are both set"},
        {5, 15, "needs tls.cert and tls.key"},
        {6, 11, "listener name 'a' is used twice"},
        {8, 10, "tls files are set on a listener without TLS"},
        {9, 22, "sasl_mechanisms on a listener without SASL"},
        {13, 49, "client_auth requested or required needs tls.ca"},
        {14, 23, "unknown SASL mechanism 'SCRAM-SHA-1'"},
    };
    size_t n = trib_config_error_count(cfg);
    if (n != sizeof(want) / sizeof(want[0])) {
        trib_config_print_errors(cfg, stderr);
    }
    assert_int_equal(n, sizeof(want) / sizeof(want[0]));
    for (size_t i = 0; i < n; i++) {
        const trib_error_t *e = trib_config_error(cfg, i);
        if (e->line != want[i].line || e->col != want[i].col || !strstr(e->msg, want[i].msg)) {
            fprintf(stderr, "error %zu: %d:%d %s\n", i, e->line, e->col, e->msg);
        }
        assert_int_equal(e->line, want[i].line);
        assert_int_equal(e->col, want[i].col);
        assert_non_null(strstr(e->msg, want[i].msg));
    }
    trib_config_free(cfg);
    unlink(path);
}

static void test_authorizer(void **state)
{
    (void)state;
    char path[] = "/tmp/test_collector_conf.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    coll_conf_t c;
    trib_config_t *cfg = NULL;
    write_file(path, "authorizer:\n"
                     "  enabled: true\n"
                     "  super_users: [User:admin, \"User:CN=x,O=y\"]\n");
    assert_int_equal(coll_conf_load(&c, &cfg, path), 0);
    coll_server_config_t sv;
    coll_conf_to_server(&c, &sv);
    assert_true(sv.authorizer);
    assert_int_equal(sv.nsuper_users, 2);
    assert_string_equal(sv.super_users[1], "User:CN=x,O=y");
    trib_config_free(cfg);
    write_file(path, "authorizer:\n"
                     "  super_users: [User:a, admin]\n");
    assert_int_equal(coll_conf_load(&c, &cfg, path), TRIB_ECONFIG);
    assert_int_equal(trib_config_error_count(cfg), 1);
    const trib_error_t *e = trib_config_error(cfg, 0);
    assert_int_equal(e->line, 2);
    assert_int_equal(e->col, 25);
    assert_non_null(strstr(e->msg, "super user 'admin' is not a principal"));
    trib_config_free(cfg);
    unlink(path);
}

int main(void)
{
    trib_log_set_level(TRIB_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_authorizer),     cmocka_unit_test(test_schema),
        cmocka_unit_test(test_defaults),       cmocka_unit_test(test_shipped_file),
        cmocka_unit_test(test_topic_defaults), cmocka_unit_test(test_errors),
        cmocka_unit_test(test_cluster),        cmocka_unit_test(test_listeners),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
