/* SPDX-License-Identifier: Apache-2.0 */
/* Kafka error codes: the values clients depend on, names, retriability. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "tributary/kafka_error.h"

static void test_codes(void **state)
{
    (void)state;
    /* Codes the broker issues and clients branch on (protocol.html). */
    assert_int_equal(TRIB_KAFKA_UNKNOWN_SERVER_ERROR, -1);
    assert_int_equal(TRIB_KAFKA_NONE, 0);
    assert_int_equal(TRIB_KAFKA_OFFSET_OUT_OF_RANGE, 1);
    assert_int_equal(TRIB_KAFKA_CORRUPT_MESSAGE, 2);
    assert_int_equal(TRIB_KAFKA_UNKNOWN_TOPIC_OR_PARTITION, 3);
    assert_int_equal(TRIB_KAFKA_NOT_LEADER_OR_FOLLOWER, 6);
    assert_int_equal(TRIB_KAFKA_MESSAGE_TOO_LARGE, 10);
    assert_int_equal(TRIB_KAFKA_NOT_COORDINATOR, 16);
    assert_int_equal(TRIB_KAFKA_REBALANCE_IN_PROGRESS, 27);
    assert_int_equal(TRIB_KAFKA_UNSUPPORTED_VERSION, 35);
    assert_int_equal(TRIB_KAFKA_INVALID_REQUEST, 42);
    assert_int_equal(TRIB_KAFKA_OUT_OF_ORDER_SEQUENCE_NUMBER, 45);
    assert_int_equal(TRIB_KAFKA_INVALID_PRODUCER_EPOCH, 47);
    assert_int_equal(TRIB_KAFKA_UNKNOWN_PRODUCER_ID, 59);
    assert_int_equal(TRIB_KAFKA_MEMBER_ID_REQUIRED, 79);
    assert_int_equal(TRIB_KAFKA_FENCED_INSTANCE_ID, 82);
    assert_int_equal(TRIB_KAFKA_UNKNOWN_TOPIC_ID, 100);
}

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(trib_kafka_err_name(3), "UNKNOWN_TOPIC_OR_PARTITION");
    assert_string_equal(trib_kafka_err_name(-1), "UNKNOWN_SERVER_ERROR");
    assert_string_equal(trib_kafka_err_name(999), "UNKNOWN");
    assert_string_equal(trib_kafka_err_message(35), "The version of API is not supported.");
    assert_true(trib_kafka_err_retriable(TRIB_KAFKA_NOT_LEADER_OR_FOLLOWER));
    assert_true(trib_kafka_err_retriable(TRIB_KAFKA_COORDINATOR_LOAD_IN_PROGRESS));
    assert_false(trib_kafka_err_retriable(TRIB_KAFKA_MESSAGE_TOO_LARGE));
    assert_false(trib_kafka_err_retriable(999));
    /* The list is dense from -1 to its end. */
    int16_t last = -1;
    while (trib_kafka_err_known((int16_t)(last + 1))) {
        last++;
    }
    assert_true(last >= 127);
    assert_false(trib_kafka_err_known(-2));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_codes),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
