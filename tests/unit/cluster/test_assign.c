/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Replica assignment (cluster/assign.h) against Kafka's
 * AdminUtils.assignReplicasToBrokers:
 * - the rack-unaware example of AdminUtils' documentation (5 brokers,
 *   10 partitions, 3 replicas, start index 0, shift 0) exactly;
 * - the rack-alternated broker list of its documentation
 *   (a: 0,1,2  b: 3,4  c: 5 -> 0,3,5,1,4,2): the first replicas of
 *   consecutive partitions follow it;
 * - with racks, each partition's replicas are on distinct racks while
 *   racks remain; replicas of a partition are always distinct brokers;
 *   leaders spread evenly;
 * - Kafka's refusals: rf > brokers, rf or partitions <= 0, some brokers
 *   with a rack and some without;
 * - CreatePartitions continues the layout (start_partition).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cluster/assign.h"

static void test_kafka_doc_example(void **state)
{
    (void)state;
    /*
     * broker-0  broker-1  broker-2  broker-3  broker-4
     * p0        p1        p2        p3        p4       (1st replica)
     * p5        p6        p7        p8        p9       (1st replica)
     * p4        p0        p1        p2        p3       (2nd replica)
     * p8        p9        p5        p6        p7       (2nd replica)
     * p3        p4        p0        p1        p2       (3nd replica)
     * p7        p8        p9        p5        p6       (3nd replica)
     */
    coll_assign_broker_t b[5];
    for (int i = 0; i < 5; i++) {
        b[i].id = 4 - i; /* given unsorted: sorted by id inside */
        b[i].rack = NULL;
    }
    int32_t out[10 * 3];
    char why[256];
    assert_int_equal(coll_assign_replicas(b, 5, 10, 3, 0, 0, 0, out, why, sizeof(why)), 0);
    static const int32_t want[10][3] = {{0, 1, 2}, {1, 2, 3}, {2, 3, 4}, {3, 4, 0}, {4, 0, 1},
                                        {0, 2, 3}, {1, 3, 4}, {2, 4, 0}, {3, 0, 1}, {4, 1, 2}};
    for (int p = 0; p < 10; p++) {
        for (int k = 0; k < 3; k++) {
            if (out[p * 3 + k] != want[p][k]) {
                fail_msg("partition %d replica %d: %d, Kafka's %d", p, k, out[p * 3 + k],
                         want[p][k]);
            }
        }
    }
}

static void test_rack_aware(void **state)
{
    (void)state;
    coll_assign_broker_t b[] = {{0, "a"}, {1, "a"}, {2, "a"}, {3, "b"}, {4, "b"}, {5, "c"}};
    int32_t out[6 * 3];
    char why[256];
    assert_int_equal(coll_assign_replicas(b, 6, 6, 3, 0, 0, 0, out, why, sizeof(why)), 0);
    static const int32_t alternated[] = {0, 3, 5, 1, 4, 2};
    const char *rack_of[6] = {"a", "a", "a", "b", "b", "c"};
    int leaders[6] = {0};
    for (int p = 0; p < 6; p++) {
        assert_int_equal(out[p * 3], alternated[p]);
        leaders[out[p * 3]]++;
        /* Three replicas on three racks, distinct brokers. */
        for (int i = 0; i < 3; i++) {
            for (int j = 0; j < i; j++) {
                assert_int_not_equal(out[p * 3 + i], out[p * 3 + j]);
                assert_string_not_equal(rack_of[out[p * 3 + i]], rack_of[out[p * 3 + j]]);
            }
        }
    }
    for (int i = 0; i < 6; i++) {
        assert_int_equal(leaders[i], 1);
    }
    /* Two racks, rf 3: the third replica goes to a rack that has one already. */
    coll_assign_broker_t two[] = {{1, "x"}, {2, "y"}, {3, "x"}, {4, "y"}};
    int32_t o2[8 * 3];
    assert_int_equal(coll_assign_replicas(two, 4, 8, 3, -1, -1, 0, o2, why, sizeof(why)), 0);
    for (int p = 0; p < 8; p++) {
        int32_t *r = &o2[p * 3];
        assert_true(r[0] != r[1] && r[1] != r[2] && r[0] != r[2]);
        /* The first two replicas are on different racks. */
        assert_int_not_equal(r[0] % 2, r[1] % 2);
    }
}

static void test_random_spread(void **state)
{
    (void)state;
    coll_assign_broker_t b[] = {{1, NULL}, {2, ""}, {3, NULL}};
    char why[256];
    for (int round = 0; round < 20; round++) {
        int32_t out[30 * 3];
        int leaders[4] = {0};
        assert_int_equal(coll_assign_replicas(b, 3, 30, 3, -1, -1, 0, out, why, sizeof(why)), 0);
        for (int p = 0; p < 30; p++) {
            leaders[out[p * 3]]++;
            assert_true(out[p * 3] != out[p * 3 + 1] && out[p * 3 + 1] != out[p * 3 + 2] &&
                        out[p * 3] != out[p * 3 + 2]);
        }
        assert_int_equal(leaders[1], 10);
        assert_int_equal(leaders[2], 10);
        assert_int_equal(leaders[3], 10);
    }
}

static void test_refusals(void **state)
{
    (void)state;
    coll_assign_broker_t b[] = {{1, NULL}, {2, NULL}, {3, NULL}};
    int32_t out[16];
    char why[256];
    assert_int_equal(coll_assign_replicas(b, 3, 1, 4, -1, -1, 0, out, why, sizeof(why)), -EINVAL);
    assert_string_equal(why, "Replication factor: 4 larger than available brokers: 3.");
    assert_int_equal(coll_assign_replicas(b, 3, 1, 0, -1, -1, 0, out, why, sizeof(why)), -EINVAL);
    assert_int_equal(coll_assign_replicas(b, 3, 0, 1, -1, -1, 0, out, why, sizeof(why)), -EINVAL);
    assert_int_equal(coll_assign_replicas(b, 0, 1, 1, -1, -1, 0, out, why, sizeof(why)), -EINVAL);
    coll_assign_broker_t mixed[] = {{1, "a"}, {2, NULL}};
    assert_int_equal(coll_assign_replicas(mixed, 2, 1, 1, -1, -1, 0, out, why, sizeof(why)),
                     -EINVAL);
    assert_non_null(strstr(why, "rack"));
    /* One broker, rf 1. */
    assert_int_equal(coll_assign_replicas(b, 1, 3, 1, -1, -1, 0, out, why, sizeof(why)), 0);
    assert_true(out[0] == 1 && out[1] == 1 && out[2] == 1);
}

static void test_continue(void **state)
{
    (void)state;
    /* Partitions 5..9 of the documentation's layout, computed on their own. */
    coll_assign_broker_t b[5];
    for (int i = 0; i < 5; i++) {
        b[i].id = i;
        b[i].rack = NULL;
    }
    int32_t all[10 * 3], tail[5 * 3];
    char why[256];
    assert_int_equal(coll_assign_replicas(b, 5, 10, 3, 0, 0, 0, all, why, sizeof(why)), 0);
    /* Kafka's shift after 5 partitions on 5 brokers is 1 (incremented at partition 5). */
    assert_int_equal(coll_assign_replicas(b, 5, 5, 3, 0, 0, 5, tail, why, sizeof(why)), 0);
    assert_memory_equal(tail, all + 15, sizeof(tail));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kafka_doc_example), cmocka_unit_test(test_rack_aware),
        cmocka_unit_test(test_random_spread),     cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_continue),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
