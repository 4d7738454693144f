/* SPDX-License-Identifier: Apache-2.0 */
/* The leader's replica rules as pure functions (server/isr.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "server/isr.h"

/* Kafka's lastCaughtUpTimeMs: at the fetch's time when at the log end, else at the previous. */
static void test_caught_up(void **state)
{
    (void)state;
    coll_follower_t f;
    coll_follower_reset(&f, 2, 100, 1000, true);
    assert_int_equal(f.leo, -1);
    assert_int_equal(f.last_caught_up_ms, 1000);
    /* Behind the leader's log end (100) and behind its log end at the reset: no catch-up. */
    coll_follower_fetched(&f, 50, 120, 2000);
    assert_int_equal(f.leo, 50);
    assert_int_equal(f.last_caught_up_ms, 1000);
    /* Has what the leader had at the previous fetch (120): caught up as of then (2000). */
    coll_follower_fetched(&f, 120, 150, 3000);
    assert_int_equal(f.last_caught_up_ms, 2000);
    /* At the log end: caught up now. */
    coll_follower_fetched(&f, 150, 150, 4000);
    assert_int_equal(f.last_caught_up_ms, 4000);
    /* Never moves back. */
    coll_follower_fetched(&f, 10, 150, 3500);
    assert_int_equal(f.last_caught_up_ms, 4000);
    /* Not in the ISR at reset: never caught up. */
    coll_follower_reset(&f, 3, 100, 1000, false);
    assert_int_equal(f.last_caught_up_ms, 0);
}

static void test_out_of_sync(void **state)
{
    (void)state;
    coll_follower_t f;
    coll_follower_reset(&f, 2, 100, 1000, true);
    /* Unknown log end, lag not yet passed. */
    assert_false(coll_follower_out_of_sync(&f, 100, 1000 + 500, 1000));
    assert_false(coll_follower_out_of_sync(&f, 100, 1000 + 1000, 1000));
    assert_true(coll_follower_out_of_sync(&f, 100, 1000 + 1001, 1000));
    /* At the leader's log end it is never out of sync, however old its last catch-up. */
    coll_follower_fetched(&f, 100, 100, 1500);
    assert_false(coll_follower_out_of_sync(&f, 100, 90000, 1000));
    /* Behind again: out of sync once the lag passes from its last catch-up (1500). */
    assert_false(coll_follower_out_of_sync(&f, 130, 2400, 1000));
    assert_true(coll_follower_out_of_sync(&f, 130, 2600, 1000));
}

/* KAFKA-7128: at or past the HW is not enough; also at or past the epoch's start offset. */
static void test_can_join(void **state)
{
    (void)state;
    coll_follower_t f;
    coll_follower_reset(&f, 3, 10, 0, false);
    assert_false(coll_follower_can_join(&f, 0, 0)); /* never fetched */
    coll_follower_fetched(&f, 7, 10, 1);
    assert_false(coll_follower_can_join(&f, 8, 5)); /* below the HW */
    assert_false(coll_follower_can_join(&f, 5, 8)); /* at the HW, below the epoch start */
    assert_true(coll_follower_can_join(&f, 7, 7));
    assert_true(coll_follower_can_join(&f, 5, 6));
}

static void test_high_watermark(void **state)
{
    (void)state;
    coll_follower_t f[2];
    coll_follower_reset(&f[0], 2, 0, 0, true);
    coll_follower_reset(&f[1], 3, 0, 0, true);
    int32_t all[] = {1, 2, 3}, two[] = {1, 2}, self[] = {1};
    /* Unknown follower log ends allow nothing. */
    assert_int_equal(coll_isr_high_watermark(all, 3, 1, f, 2, 100, INT64_MAX), -1);
    coll_follower_fetched(&f[0], 80, 100, 1);
    coll_follower_fetched(&f[1], 60, 100, 1);
    /* The minimum over the ISR; a replica outside the ISR does not hold it back. */
    assert_int_equal(coll_isr_high_watermark(all, 3, 1, f, 2, 100, INT64_MAX), 60);
    assert_int_equal(coll_isr_high_watermark(two, 2, 1, f, 2, 100, INT64_MAX), 80);
    /* The leader's own log end counts only as far as it is durable. */
    assert_int_equal(coll_isr_high_watermark(two, 2, 1, f, 2, 100, 70), 70);
    assert_int_equal(coll_isr_high_watermark(self, 1, 1, f, 2, 100, INT64_MAX), 100);
    assert_int_equal(coll_isr_high_watermark(self, 1, 1, f, 2, 100, 90), 90);
    /* An ISR member the leader has no entry for allows nothing. */
    int32_t odd[] = {1, 9};
    assert_int_equal(coll_isr_high_watermark(odd, 2, 1, f, 2, 100, INT64_MAX), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_caught_up),
        cmocka_unit_test(test_out_of_sync),
        cmocka_unit_test(test_can_join),
        cmocka_unit_test(test_high_watermark),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
