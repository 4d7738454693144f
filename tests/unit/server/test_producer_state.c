/* SPDX-License-Identifier: Apache-2.0 */
/* Idempotent producer state: Kafka's sequence rules, expiry and snapshots. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server/producer_state.h"
#include "tributary/error.h"
#include "tributary/kafka_error.h"

static coll_pbatch_t pb(int32_t first, int32_t last, int64_t off)
{
    coll_pbatch_t b = {first, last, off, off + (last >= first ? last - first : 0)};
    return b;
}

static void test_seq_add(void **state)
{
    (void)state;
    assert_int_equal(coll_seq_add(0, 4), 4);
    assert_int_equal(coll_seq_add(INT32_MAX, 1), 0);
    assert_int_equal(coll_seq_add(INT32_MAX - 1, 3), 1);
    assert_int_equal(coll_seq_add(INT32_MAX, 0), INT32_MAX);
}

static void test_rules(void **state)
{
    (void)state;
    coll_pstate_t ps;
    coll_pstate_init(&ps);
    const coll_pbatch_t *dup = NULL;
    /* Unknown producer: must start at 0. */
    assert_int_equal(coll_pstate_check(NULL, 0, 0, 9, &dup), TRIB_KAFKA_NONE);
    assert_null(dup);
    assert_int_equal(coll_pstate_check(NULL, 0, 5, 9, &dup), TRIB_KAFKA_UNKNOWN_PRODUCER_ID);
    coll_pbatch_t b = pb(0, 9, 100);
    assert_int_equal(coll_pstate_update(&ps, 7, 0, &b, 1000), 0);
    coll_producer_t *e = coll_pstate_find(&ps, 7);
    assert_non_null(e);
    /* In sequence, duplicate, gap, stale epoch, bumped epoch. */
    assert_int_equal(coll_pstate_check(e, 0, 10, 19, &dup), TRIB_KAFKA_NONE);
    assert_null(dup);
    assert_int_equal(coll_pstate_check(e, 0, 0, 9, &dup), TRIB_KAFKA_NONE);
    assert_non_null(dup);
    assert_int_equal(dup->first_offset, 100);
    assert_int_equal(coll_pstate_check(e, 0, 11, 19, &dup),
                     TRIB_KAFKA_OUT_OF_ORDER_SEQUENCE_NUMBER);
    assert_int_equal(coll_pstate_check(e, 0, 0, 4, &dup), TRIB_KAFKA_OUT_OF_ORDER_SEQUENCE_NUMBER);
    assert_int_equal(coll_pstate_check(e, 1, 10, 19, &dup),
                     TRIB_KAFKA_OUT_OF_ORDER_SEQUENCE_NUMBER);
    assert_int_equal(coll_pstate_check(e, 1, 0, 3, &dup), TRIB_KAFKA_NONE);
    assert_null(dup);
    b = pb(0, 3, 200);
    assert_int_equal(coll_pstate_update(&ps, 7, 1, &b, 1001), 0);
    assert_int_equal(e->epoch, 1);
    assert_int_equal(e->n, 1);
    assert_int_equal(coll_pstate_check(e, 0, 4, 5, &dup), TRIB_KAFKA_INVALID_PRODUCER_EPOCH);
    /* Negative sequence with a producer id. */
    assert_int_equal(coll_pstate_check(e, 1, -1, -1, &dup),
                     TRIB_KAFKA_OUT_OF_ORDER_SEQUENCE_NUMBER);
    /* Five batches remembered, the oldest forgotten. */
    int32_t seq = 4;
    for (int i = 0; i < 6; i++) {
        b = pb(seq, seq + 1, 300 + i * 2);
        assert_int_equal(coll_pstate_check(e, 1, seq, seq + 1, &dup), TRIB_KAFKA_NONE);
        assert_int_equal(coll_pstate_update(&ps, 7, 1, &b, 1002), 0);
        seq += 2;
    }
    assert_int_equal(e->n, COLL_PSTATE_BATCHES);
    assert_int_equal(coll_pstate_check(e, 1, 6, 7, &dup), TRIB_KAFKA_NONE);
    assert_non_null(dup);
    assert_int_equal(dup->first_offset, 302);
    assert_int_equal(coll_pstate_check(e, 1, 4, 5, &dup), TRIB_KAFKA_OUT_OF_ORDER_SEQUENCE_NUMBER);
    /* Wrap at INT32_MAX. */
    b = pb(INT32_MAX - 1, INT32_MAX, 500);
    assert_int_equal(coll_pstate_update(&ps, 8, 0, &b, 1003), 0);
    assert_int_equal(coll_pstate_check(coll_pstate_find(&ps, 8), 0, 0, 5, &dup), TRIB_KAFKA_NONE);
    coll_pstate_fini(&ps);
}

static void test_many_and_expire(void **state)
{
    (void)state;
    coll_pstate_t ps;
    coll_pstate_init(&ps);
    for (int64_t pid = 0; pid < 5000; pid++) {
        coll_pbatch_t b = pb(0, 0, pid);
        assert_int_equal(coll_pstate_update(&ps, pid, 0, &b, pid < 2500 ? 10 : 20), 0);
    }
    assert_int_equal(ps.count, 5000);
    for (int64_t pid = 0; pid < 5000; pid += 97) {
        assert_non_null(coll_pstate_find(&ps, pid));
    }
    assert_null(coll_pstate_find(&ps, 5000));
    assert_int_equal(coll_pstate_expire(&ps, 15), 2500);
    assert_int_equal(ps.count, 2500);
    assert_null(coll_pstate_find(&ps, 10));
    assert_non_null(coll_pstate_find(&ps, 4000));
    coll_pstate_fini(&ps);
}

static void test_snapshot(void **state)
{
    (void)state;
    char dir[] = "/tmp/trib-pstate-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", dir, COLL_PSTATE_FILE);
    coll_pstate_t ps, back;
    coll_pstate_init(&ps);
    coll_pstate_init(&back);
    int64_t off, mts, mbase;
    assert_int_equal(coll_pstate_read(&back, path, &off, &mts, &mbase), TRIB_ENOT_FOUND);
    for (int64_t pid = 1; pid <= 40; pid++) {
        for (int k = 0; k < (int)(pid % 7); k++) {
            coll_pbatch_t b = pb(k * 10, k * 10 + 9, pid * 1000 + k * 10);
            assert_int_equal(coll_pstate_update(&ps, pid, (int16_t)(pid % 3), &b, 1234 + pid), 0);
        }
    }
    /* A producer with an epoch but no batches. */
    coll_pbatch_t b = pb(0, 0, 0);
    assert_int_equal(coll_pstate_update(&ps, 77, 4, &b, 99), 0);
    coll_pstate_find(&ps, 77)->n = 0;
    assert_int_equal(coll_pstate_write(&ps, path, 4242, 1700000000000LL, 4000), 0);
    assert_int_equal(coll_pstate_read(&back, path, &off, &mts, &mbase), 0);
    assert_int_equal(off, 4242);
    assert_int_equal(mts, 1700000000000LL);
    assert_int_equal(mbase, 4000);
    assert_int_equal(back.count, ps.count);
    for (int64_t pid = 1; pid <= 40; pid++) {
        coll_producer_t *x = coll_pstate_find(&ps, pid), *y = coll_pstate_find(&back, pid);
        if (!x) {
            assert_null(y);
            continue;
        }
        assert_non_null(y);
        assert_int_equal(x->epoch, y->epoch);
        assert_int_equal(x->n, y->n);
        assert_int_equal(x->last_ms, y->last_ms);
        assert_memory_equal(x->batches, y->batches, sizeof(coll_pbatch_t) * x->n);
    }
    coll_producer_t *z = coll_pstate_find(&back, 77);
    assert_non_null(z);
    assert_int_equal(z->epoch, 4);
    assert_int_equal(z->n, 0);
    /* A torn file (no end line) and garbage are refused, leaving nothing behind. */
    FILE *fp = fopen(path, "r+");
    assert_non_null(fp);
    fseek(fp, 0, SEEK_END);
    long size = ftell(fp);
    fclose(fp);
    assert_int_equal(truncate(path, size - 4), 0);
    assert_int_equal(coll_pstate_read(&back, path, &off, &mts, &mbase), TRIB_EMALFORMED);
    assert_int_equal(back.count, 0);
    fp = fopen(path, "w");
    fputs("tributary-producer-state 2\n", fp);
    fclose(fp);
    assert_int_equal(coll_pstate_read(&back, path, &off, &mts, &mbase), TRIB_EMALFORMED);
    fp = fopen(path, "w");
    fputs("tributary-producer-state 1\noffset 5\nmax-timestamp -1 -1\nbatch 0 1 2 3\nend 0\n", fp);
    fclose(fp);
    assert_int_equal(coll_pstate_read(&back, path, &off, &mts, &mbase), TRIB_EMALFORMED);
    unlink(path);
    rmdir(dir);
    coll_pstate_fini(&ps);
    coll_pstate_fini(&back);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seq_add),
        cmocka_unit_test(test_rules),
        cmocka_unit_test(test_many_and_expire),
        cmocka_unit_test(test_snapshot),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
