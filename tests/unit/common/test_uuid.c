/* SPDX-License-Identifier: Apache-2.0 */
/* Kafka's Uuid text (kafka/uuid.c): known encodings, round trips, what is refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "tributary/error.h"
#include "tributary/kafka.h"

static void test_known(void **state)
{
    (void)state;
    trib_uuid_t id, back;
    char out[23];
    for (int i = 0; i < 16; i++) {
        id.b[i] = (uint8_t)i;
    }
    trib_uuid_format(&id, out);
    assert_string_equal(out, "AAECAwQFBgcICQoLDA0ODw");
    for (int i = 0; i < 16; i++) {
        id.b[i] = (uint8_t)(0xf0 + i);
    }
    trib_uuid_format(&id, out);
    assert_string_equal(out, "8PHy8_T19vf4-fr7_P3-_w");
    assert_int_equal(trib_uuid_parse(out, strlen(out), &back), 0);
    assert_memory_equal(&id, &back, 16);
    memset(id.b, 0xff, sizeof id.b);
    trib_uuid_format(&id, out);
    assert_string_equal(out, "_____________________w");
    assert_false(trib_uuid_is_zero(&id));
    memset(id.b, 0, sizeof id.b);
    assert_true(trib_uuid_is_zero(&id));
    trib_uuid_format(&id, out);
    assert_string_equal(out, "AAAAAAAAAAAAAAAAAAAAAA");
}

static void test_round_trip(void **state)
{
    (void)state;
    trib_uuid_t id, back;
    char out[23];
    uint32_t x = 12345;
    for (int n = 0; n < 2000; n++) {
        for (int i = 0; i < 16; i++) {
            x = x * 1103515245u + 12345u;
            id.b[i] = (uint8_t)(x >> 16);
        }
        trib_uuid_format(&id, out);
        assert_int_equal(strlen(out), 22);
        assert_int_equal(trib_uuid_parse(out, 22, &back), 0);
        assert_memory_equal(&id, &back, 16);
    }
}

static void test_refused(void **state)
{
    (void)state;
    trib_uuid_t back;
    memset(back.b, 0x5a, sizeof back.b);
    /* the last character's low 4 bits are not part of the 16 bytes: must be zero */
    assert_int_equal(trib_uuid_parse("AAAAAAAAAAAAAAAAAAAAAB", 22, &back), TRIB_EMALFORMED);
    assert_int_equal(trib_uuid_parse("AAAAAAAAAAAAAAAAAAAAA", 21, &back), TRIB_EMALFORMED);
    assert_int_equal(trib_uuid_parse("AAAAAAAAAAAAAAAAAAAAAAA", 23, &back), TRIB_EMALFORMED);
    assert_int_equal(trib_uuid_parse("AAAAAAAAAAAAAAAAAAAA+A", 22, &back), TRIB_EMALFORMED);
    assert_int_equal(trib_uuid_parse("AAAAAAAAAAAAAAAAAAAA*A", 22, &back), TRIB_EMALFORMED);
    assert_int_equal(trib_uuid_parse("AAAAAAAAAA\0AAAAAAAAAAA", 22, &back), TRIB_EMALFORMED);
    assert_int_equal(trib_uuid_parse("AAAA", 4, &back), TRIB_EMALFORMED);
    for (int i = 0; i < 16; i++) {
        assert_int_equal(back.b[i], 0x5a); /* untouched on failure */
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
