/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The zookeeper backend's znode JSON (cluster/zk_json.h) and connect
 * strings (coll_zk_check_connect):
 * - a registration round-trips (host, port, rack or none, shutting_down),
 *   IPv6 hosts in brackets, strings that need escaping;
 * - Kafka 2.8's own registration JSON is read (endpoints first, host/port
 *   as the fallback, unknown keys and nested values skipped);
 * - hostile input is refused with a reason, never read past its length:
 *   truncations of a valid document at every byte, bad escapes, deep
 *   nesting, overlong strings, trailing bytes, wrong types;
 * - /controller, /controller_epoch and /cluster/id values;
 * - connect strings with and without chroot, and the bad ones.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/zk.h"
#include "cluster/zk_json.h"

static void test_broker_roundtrip(void **state)
{
    (void)state;
    coll_zk_broker_t b, r;
    memset(&b, 0, sizeof(b));
    snprintf(b.host, sizeof(b.host), "collector-1.example.com");
    b.port = 9092;
    snprintf(b.rack, sizeof(b.rack), "rack \"a\"\\1\n");
    b.shutting_down = true;
    char json[2048];
    int n = coll_zk_broker_encode(&b, 1700000000000, json, sizeof(json));
    assert_true(n > 0);
    assert_int_equal((size_t)n, strlen(json));
    const char *why = NULL;
    memset(&r, 0x55, sizeof(r));
    assert_int_equal(coll_zk_broker_decode(json, (size_t)n, &r, &why), 0);
    assert_string_equal(r.host, b.host);
    assert_int_equal(r.port, 9092);
    assert_string_equal(r.rack, b.rack);
    assert_true(r.shutting_down);

    /* No rack: null; IPv6 in brackets in the endpoint. */
    snprintf(b.host, sizeof(b.host), "::1");
    b.rack[0] = '\0';
    b.shutting_down = false;
    b.port = 0;
    n = coll_zk_broker_encode(&b, 1, json, sizeof(json));
    assert_true(n > 0);
    assert_non_null(strstr(json, "\"PLAINTEXT://[::1]:0\""));
    assert_non_null(strstr(json, "\"rack\":null"));
    assert_int_equal(coll_zk_broker_decode(json, (size_t)n, &r, &why), 0);
    assert_string_equal(r.host, "::1");
    assert_int_equal(r.port, 0);
    assert_string_equal(r.rack, "");
    assert_false(r.shutting_down);

    /* Too small a buffer is an error, not a truncated document. */
    assert_int_equal(coll_zk_broker_encode(&b, 1, json, 40), -ENOSPC);
}

static void test_broker_kafka(void **state)
{
    (void)state;
    /* As Kafka 2.8 writes it (BrokerIdZNode.encode, version 5). */
    static const char kafka[] =
        "{\"features\":{\"a\":{\"min_version\":1,\"max_version\":[1,2,{\"x\":null}]}},"
        "\"listener_security_protocol_map\":{\"PLAINTEXT\":\"PLAINTEXT\",\"SSL\":\"SSL\"},"
        "\"endpoints\":[\"SSL://h2:9093\",\"PLAINTEXT://kafka-2.local:9092\"],"
        "\"jmx_port\":-1,\"port\":9999,\"host\":\"other\",\"timestamp\":\"1700000000000\","
        "\"version\":5,\"rack\":\"eu-1a\",\"weird\":1.5e3}";
    coll_zk_broker_t r;
    const char *why = NULL;
    assert_int_equal(coll_zk_broker_decode(kafka, sizeof(kafka) - 1, &r, &why), 0);
    assert_string_equal(r.host, "kafka-2.local");
    assert_int_equal(r.port, 9092);
    assert_string_equal(r.rack, "eu-1a");
    assert_false(r.shutting_down);

    /* No PLAINTEXT endpoint: host and port. */
    static const char old[] = " {\"host\":\"h\",\"port\":1234,\"endpoints\":[]} ";
    assert_int_equal(coll_zk_broker_decode(old, sizeof(old) - 1, &r, &why), 0);
    assert_string_equal(r.host, "h");
    assert_int_equal(r.port, 1234);
}

static void expect_bad(const char *json, size_t len)
{
    coll_zk_broker_t r;
    const char *why = NULL;
    int rc = coll_zk_broker_decode(json, len, &r, &why);
    if (rc != -EINVAL) {
        fail_msg("accepted: %.*s", (int)len, json);
    }
    assert_non_null(why);
}

static void test_broker_bad(void **state)
{
    (void)state;
    coll_zk_broker_t b;
    memset(&b, 0, sizeof(b));
    snprintf(b.host, sizeof(b.host), "h");
    b.port = 1;
    char json[2048];
    int n = coll_zk_broker_encode(&b, 1, json, sizeof(json));
    assert_true(n > 0);
    /* Every truncation; the copy has no NUL after it, so a read past it is caught by ASan. */
    for (int i = 0; i < n; i++) {
        char *cut = malloc(i ? (size_t)i : 1);
        assert_non_null(cut);
        memcpy(cut, json, (size_t)i);
        expect_bad(cut, (size_t)i);
        free(cut);
    }
    static const char *const bad[] = {
        "[]",
        "{\"host\":\"h\",\"port\":1}x",
        "{\"host\":\"h\",\"port\":70000}",
        "{\"host\":\"h\",\"port\":1.5}",
        "{\"host\":\"h\",\"port\":\"1\"}",
        "{\"host\":\"h\\q\",\"port\":1}",
        "{\"host\":\"h\\u00\",\"port\":1}",
        "{\"host\":\"h\\u00e9\",\"port\":1}",
        "{\"host\":\"h\",\"port\":1,\"shutting_down\":1}",
        "{\"host\":\"h\",\"port\":1,\"endpoints\":\"PLAINTEXT://h:1\"}",
        "{\"host\":\"h\",\"port\":1,\"x\":[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]}",
        "{\"host\":\"h\" \"port\":1}",
        "{\"host\":\"h\",\"port\":1,}",
        "{\"port\":1}",
        "{\"host\":\"\",\"port\":1}",
        "{\"host\":\"h\",\"port\":99999999999999999999999}",
        "{\"host\":\"a\tb\",\"port\":1}",
        "{\"host\":\"h\",\"port\":1,\"x\":tru}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        expect_bad(bad[i], strlen(bad[i]));
    }
    /* A host longer than the buffer. */
    char big[COLL_ZK_HOST_MAX + 64];
    int o = snprintf(big, sizeof(big), "{\"port\":1,\"host\":\"");
    memset(big + o, 'a', COLL_ZK_HOST_MAX);
    snprintf(big + o + COLL_ZK_HOST_MAX, sizeof(big) - (size_t)o - COLL_ZK_HOST_MAX, "\"}");
    expect_bad(big, strlen(big));
}

static void test_controller(void **state)
{
    (void)state;
    char json[128];
    int n = coll_zk_controller_encode(7, 1700000000000, json, sizeof(json));
    assert_true(n > 0);
    int32_t id = -1;
    const char *why = NULL;
    assert_int_equal(coll_zk_controller_decode(json, (size_t)n, &id, &why), 0);
    assert_int_equal(id, 7);
    static const char kafka[] = "{\"version\":1,\"brokerid\":2,\"timestamp\":\"1\"}";
    assert_int_equal(coll_zk_controller_decode(kafka, sizeof(kafka) - 1, &id, &why), 0);
    assert_int_equal(id, 2);
    assert_int_equal(coll_zk_controller_decode("{\"brokerid\":-1}", 15, &id, &why), -EINVAL);
    assert_int_equal(coll_zk_controller_decode("{\"version\":1}", 13, &id, &why), -EINVAL);
    assert_int_equal(coll_zk_controller_encode(1, 1, json, 10), -ENOSPC);

    char cid[COLL_ZK_CLUSTER_ID_MAX];
    n = coll_zk_cluster_id_encode("Kq3qCmbOTSGnD4Tz6_0xvw", json, sizeof(json));
    assert_true(n > 0);
    assert_string_equal(json, "{\"version\":\"1\",\"id\":\"Kq3qCmbOTSGnD4Tz6_0xvw\"}");
    assert_int_equal(coll_zk_cluster_id_decode(json, (size_t)n, cid, &why), 0);
    assert_string_equal(cid, "Kq3qCmbOTSGnD4Tz6_0xvw");
    assert_int_equal(coll_zk_cluster_id_decode("{\"id\":\"a b\"}", 12, cid, &why), -EINVAL);
    assert_int_equal(coll_zk_cluster_id_decode("{\"id\":\"\"}", 9, cid, &why), -EINVAL);
    assert_int_equal(coll_zk_cluster_id_decode("{\"version\":\"1\"}", 15, cid, &why), -EINVAL);

    int32_t e = -1;
    assert_int_equal(coll_zk_epoch_decode("0", 1, &e), 0);
    assert_int_equal(e, 0);
    assert_int_equal(coll_zk_epoch_decode("2147483647", 10, &e), 0);
    assert_int_equal(e, 2147483647);
    assert_int_equal(coll_zk_epoch_decode("2147483648", 10, &e), -EINVAL);
    assert_int_equal(coll_zk_epoch_decode("", 0, &e), -EINVAL);
    assert_int_equal(coll_zk_epoch_decode("-1", 2, &e), -EINVAL);
    assert_int_equal(coll_zk_epoch_decode("1 ", 2, &e), -EINVAL);
}

static void test_connect(void **state)
{
    (void)state;
    const char *why = NULL;
    static const char *const good[] = {"127.0.0.1:2181", "a:1,b:2,c:65535", "zk:2181/tributary",
                                       "zk:2181/a/b-c_d", "[::1]:2181"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        if (coll_zk_check_connect(good[i], &why) != 0) {
            fail_msg("%s refused: %s", good[i], why);
        }
    }
    static const char *const bad[] = {"",         "zk",      "zk:",     ":2181",    "zk:0",
                                      "zk:65536", "zk:21x",  "a:1,",    "a:1,,b:2", "/chroot",
                                      "zk:1/",    "zk:1//a", "zk:1/a/", "zk:1/./a", "zk:1/a/.."};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        why = NULL;
        if (coll_zk_check_connect(bad[i], &why) != -EINVAL) {
            fail_msg("'%s' accepted", bad[i]);
        }
        assert_non_null(why);
    }
    assert_int_equal(coll_zk_check_connect(NULL, &why), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_broker_roundtrip), cmocka_unit_test(test_broker_kafka),
        cmocka_unit_test(test_broker_bad),       cmocka_unit_test(test_controller),
        cmocka_unit_test(test_connect),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
