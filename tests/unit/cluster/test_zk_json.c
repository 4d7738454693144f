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
 * - connect strings with and without chroot, and the bad ones;
 * - topic assignments, partition states, topic configs and producer id
 *   blocks: Kafka 2.8's own JSON is read, what is written reads back, and
 *   malformed documents (every truncation, bad partition numbering,
 *   duplicate replicas, wrong types) are refused.
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

static void test_assignment(void **state)
{
    (void)state;
    /* As Kafka 2.8 writes it (keys in any order, partitions unordered). */
    static const char kafka[] =
        "{\"removing_replicas\":{},\"partitions\":{\"1\":[3,1,2],\"0\":[2,3,1],\"2\":[1,2,3]},"
        "\"topic_id\":\"TEvbjMqGTA6H1fZeocxfHA\",\"adding_replicas\":{\"0\":[4]},\"version\":3}";
    coll_zk_assignment_t a;
    const char *why = NULL;
    assert_int_equal(coll_zk_assignment_decode(kafka, strlen(kafka), &a, &why), 0);
    assert_int_equal(a.npartitions, 3);
    assert_string_equal(a.topic_id, "TEvbjMqGTA6H1fZeocxfHA");
    assert_int_equal(a.off[0], 0);
    assert_int_equal(a.off[3], 9);
    assert_int_equal(a.ids[0], 2);
    assert_int_equal(a.ids[3], 3);
    assert_int_equal(a.ids[6], 1);
    size_t len = 0;
    char *json = coll_zk_assignment_encode(&a, &len);
    assert_non_null(json);
    assert_int_equal(strlen(json), len);
    assert_string_equal(json,
                        "{\"version\":3,\"partitions\":{\"0\":[2,3,1],\"1\":[3,1,2],\"2\":[1,2,"
                        "3]},\"topic_id\":\"TEvbjMqGTA6H1fZeocxfHA\",\"adding_replicas\":{},"
                        "\"removing_replicas\":{}}");
    coll_zk_assignment_t b;
    assert_int_equal(coll_zk_assignment_decode(json, len, &b, &why), 0);
    assert_int_equal(b.npartitions, 3);
    assert_memory_equal(a.ids, b.ids, 9 * sizeof(int32_t));
    /* Every truncation is refused, never read past. */
    for (size_t i = 0; i < len; i++) {
        coll_zk_assignment_t c;
        char *cut = malloc(i ? i : 1);
        memcpy(cut, json, i);
        assert_int_equal(coll_zk_assignment_decode(cut, i, &c, &why), -EINVAL);
        free(cut);
    }
    free(json);
    coll_zk_assignment_free(&a);
    coll_zk_assignment_free(&b);
    /* A reassignment in progress: the roles are kept and written back as Kafka does. */
    static const char moving[] =
        "{\"version\":3,\"partitions\":{\"0\":[4,1,2,3],\"1\":[2,3,1]},\"topic_id\":null,"
        "\"adding_replicas\":{\"0\":[4]},\"removing_replicas\":{\"0\":[3],\"1\":[]}}";
    assert_int_equal(coll_zk_assignment_decode(moving, strlen(moving), &a, &why), 0);
    assert_non_null(a.role);
    assert_int_equal(a.role[0], COLL_ZK_ROLE_ADDING);
    assert_int_equal(a.role[1], COLL_ZK_ROLE_NONE);
    assert_int_equal(a.role[3], COLL_ZK_ROLE_REMOVING);
    assert_true(coll_zk_assignment_reassigning(&a, 0));
    assert_false(coll_zk_assignment_reassigning(&a, 1));
    assert_false(coll_zk_assignment_reassigning(&a, 2));
    json = coll_zk_assignment_encode(&a, &len);
    assert_non_null(json);
    assert_string_equal(json, "{\"version\":3,\"partitions\":{\"0\":[4,1,2,3],\"1\":[2,3,1]},"
                              "\"topic_id\":null,\"adding_replicas\":{\"0\":[4]},"
                              "\"removing_replicas\":{\"0\":[3]}}");
    free(json);
    coll_zk_assignment_free(&a);
    /* No topic_id (Kafka before 2.8): read, and written back as null. */
    static const char old[] = "{\"version\":1,\"partitions\":{\"0\":[1]}}";
    assert_int_equal(coll_zk_assignment_decode(old, strlen(old), &a, &why), 0);
    assert_string_equal(a.topic_id, "");
    json = coll_zk_assignment_encode(&a, &len);
    assert_non_null(strstr(json, "\"topic_id\":null"));
    free(json);
    coll_zk_assignment_free(&a);
    static const char *const bad[] = {
        "{\"partitions\":{\"0\":[1],\"2\":[1]}}",     /* a gap */
        "{\"partitions\":{\"1\":[1]}}",               /* not from 0 */
        "{\"partitions\":{\"0\":[1,1]}}",             /* a broker twice */
        "{\"partitions\":{\"0\":[]}}",                /* no replica */
        "{\"partitions\":{\"0\":[-1]}}",              /* negative id */
        "{\"partitions\":{\"00\":[1]}}",              /* leading zero */
        "{\"partitions\":{\"x\":[1]}}",               /* not a number */
        "{\"partitions\":{\"0\":[1],\"0\":[2]}}",     /* listed twice */
        "{\"partitions\":[1,2]}",                     /* not an object */
        "{\"partitions\":{\"0\":[1.5]}}",             /* not an integer */
        "{\"partitions\":{\"0\":[2147483648]}}",      /* out of range */
        "{\"version\":3}",                            /* no partitions */
        "{\"partitions\":{\"0\":[1]},\"topic_id\":1}" /* topic_id not a string */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        why = NULL;
        if (coll_zk_assignment_decode(bad[i], strlen(bad[i]), &a, &why) != -EINVAL) {
            fail_msg("accepted: %s", bad[i]);
        }
        assert_non_null(why);
    }
}

static void test_state(void **state)
{
    (void)state;
    static const char kafka[] =
        "{\"controller_epoch\":7,\"leader\":2,\"version\":1,\"leader_epoch\":12,\"isr\":[2,3]}";
    coll_zk_state_t s;
    const char *why = NULL;
    assert_int_equal(coll_zk_state_decode(kafka, strlen(kafka), &s, &why), 0);
    assert_int_equal(s.controller_epoch, 7);
    assert_int_equal(s.leader, 2);
    assert_int_equal(s.leader_epoch, 12);
    assert_int_equal(s.nisr, 2);
    assert_int_equal(s.isr[1], 3);
    char json[256];
    int n = coll_zk_state_encode(&s, json, sizeof(json));
    assert_int_equal(n, (int)strlen(kafka));
    assert_string_equal(json, kafka);
    assert_int_equal(coll_zk_state_encode(&s, json, 20), -ENOSPC);
    for (int i = 0; i < n; i++) {
        assert_int_equal(coll_zk_state_decode(kafka, (size_t)i, &s, &why), -EINVAL);
    }
    /* No leader (offline), and Kafka's -2 while a topic is deleted: both -1 here. */
    static const char none[] =
        "{\"controller_epoch\":1,\"leader\":-1,\"version\":1,\"leader_epoch\":3,\"isr\":[3]}";
    assert_int_equal(coll_zk_state_decode(none, strlen(none), &s, &why), 0);
    assert_int_equal(s.leader, -1);
    static const char del[] =
        "{\"controller_epoch\":1,\"leader\":-2,\"version\":1,\"leader_epoch\":-2,\"isr\":[]}";
    assert_int_equal(coll_zk_state_decode(del, strlen(del), &s, &why), 0);
    assert_int_equal(s.leader, -1);
    assert_int_equal(s.nisr, 0);
    static const char *const bad[] = {
        "{\"leader\":1,\"leader_epoch\":0}",               /* no isr */
        "{\"leader\":1,\"isr\":[1]}",                      /* no epoch */
        "{\"leader_epoch\":0,\"isr\":[1]}",                /* no leader */
        "{\"leader\":1,\"leader_epoch\":0,\"isr\":[1,1]}", /* a broker twice */
        "{\"leader\":-3,\"leader_epoch\":0,\"isr\":[1]}",  /* bad leader */
        "{\"leader\":1,\"leader_epoch\":0,\"isr\":\"1\"}", /* isr not an array */
        "{\"leader\":1,\"leader_epoch\":0,\"isr\":[1]} x", /* trailing bytes */
        "{\"leader\":1,\"leader_epoch\":99999999999,\"isr\":[1]}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        why = NULL;
        if (coll_zk_state_decode(bad[i], strlen(bad[i]), &s, &why) != -EINVAL) {
            fail_msg("accepted: %s", bad[i]);
        }
    }
    /* An ISR longer than the bound is refused, not overflowed. */
    char big[1024] = "{\"leader\":0,\"leader_epoch\":0,\"isr\":[0";
    for (int i = 1; i <= COLL_ZK_MAX_REPLICAS; i++) {
        snprintf(big + strlen(big), sizeof(big) - strlen(big), ",%d", i);
    }
    strcat(big, "]}");
    assert_int_equal(coll_zk_state_decode(big, strlen(big), &s, &why), -EINVAL);
}

typedef struct kvs {
    char names[8][64], values[8][64];
    int n;
} kvs_t;

static int kv_acc(void *arg, const char *name, const char *value)
{
    kvs_t *k = arg;
    if (k->n >= 8) {
        return -1;
    }
    snprintf(k->names[k->n], 64, "%s", name);
    snprintf(k->values[k->n], 64, "%s", value);
    k->n++;
    return 0;
}

static void test_config(void **state)
{
    (void)state;
    static const char kafka[] =
        "{\"version\":1,\"config\":{\"retention.ms\":\"3600000\",\"cleanup.policy\":\"compact\"}}";
    kvs_t k;
    memset(&k, 0, sizeof(k));
    const char *why = NULL;
    assert_int_equal(coll_zk_config_decode(kafka, strlen(kafka), kv_acc, &k, &why), 0);
    assert_int_equal(k.n, 2);
    assert_string_equal(k.names[0], "retention.ms");
    assert_string_equal(k.values[0], "3600000");
    const char *names[] = {"retention.ms", "cleanup.policy"};
    const char *values[] = {"3600000", "compact"};
    size_t len;
    char *json = coll_zk_config_encode(names, values, 2, &len);
    assert_string_equal(json, kafka);
    free(json);
    json = coll_zk_config_encode(NULL, NULL, 0, &len);
    assert_string_equal(json, "{\"version\":1,\"config\":{}}");
    free(json);
    static const char *const bad[] = {"{\"config\":{\"a\":1}}", "{\"config\":[\"a\"]}",
                                      "{\"config\":{\"a\":\"b\"}", "{\"config\":{\"a\" \"b\"}}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(&k, 0, sizeof(k));
        if (coll_zk_config_decode(bad[i], strlen(bad[i]), kv_acc, &k, &why) != -EINVAL) {
            fail_msg("accepted: %s", bad[i]);
        }
    }
}

static void test_pid_block(void **state)
{
    (void)state;
    static const char kafka[] =
        "{\"version\":1,\"broker\":2,\"block_start\":\"1000\",\"block_end\":\"1999\"}";
    coll_zk_pid_block_t b;
    const char *why = NULL;
    assert_int_equal(coll_zk_pid_block_decode(kafka, strlen(kafka), &b, &why), 0);
    assert_int_equal(b.broker, 2);
    assert_int_equal(b.start, 1000);
    assert_int_equal(b.end, 1999);
    char json[256];
    assert_int_equal(coll_zk_pid_block_encode(&b, json, sizeof(json)), (int)strlen(kafka));
    assert_string_equal(json, kafka);
    static const char *const bad[] = {
        "{\"broker\":1,\"block_start\":1000,\"block_end\":\"1999\"}", /* not a string */
        "{\"broker\":1,\"block_start\":\"1x\",\"block_end\":\"1999\"}",
        "{\"broker\":1,\"block_start\":\"2000\",\"block_end\":\"1999\"}", /* reversed */
        "{\"broker\":1,\"block_start\":\"-5\",\"block_end\":\"1999\"}",
        "{\"broker\":1,\"block_end\":\"1999\"}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (coll_zk_pid_block_decode(bad[i], strlen(bad[i]), &b, &why) != -EINVAL) {
            fail_msg("accepted: %s", bad[i]);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_broker_roundtrip),
        cmocka_unit_test(test_broker_kafka),
        cmocka_unit_test(test_broker_bad),
        cmocka_unit_test(test_controller),
        cmocka_unit_test(test_connect),
        cmocka_unit_test(test_assignment),
        cmocka_unit_test(test_state),
        cmocka_unit_test(test_config),
        cmocka_unit_test(test_pid_block),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
