/* SPDX-License-Identifier: Apache-2.0 */
/* The sticky-error slice reader: big-endian reads, varints, sticky errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "tributary/error.h"
#include "tributary/slice.h"

static void test_reads(void **state)
{
    (void)state;
    const uint8_t in[] = {
        0x01,                                           /* bool */
        0xff,                                           /* i8 -1 */
        0x80, 0x00,                                     /* i16 -32768 */
        0x12, 0x34, 0x56, 0x78,                         /* i32 */
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe, /* i64 -2 */
        0x3f, 0xf0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* f64 1.0 */
        0xac, 0x02,                                     /* uvarint 300 */
        0x03,                                           /* varint -2 */
        0x01,                                           /* varlong -1 */
    };
    trib_slice_t s = trib_slice_make(in, sizeof(in));
    assert_true(trib_slice_bool(&s));
    assert_int_equal(trib_slice_i8(&s), -1);
    assert_int_equal(trib_slice_i16(&s), -32768);
    assert_int_equal(trib_slice_i32(&s), 0x12345678);
    assert_true(trib_slice_i64(&s) == -2);
    assert_true(trib_slice_f64(&s) == 1.0);
    assert_int_equal(trib_slice_uvarint32(&s), 300);
    assert_int_equal(trib_slice_varint(&s), -2);
    assert_true(trib_slice_varlong(&s) == -1);
    assert_true(trib_slice_ok(&s));
    assert_int_equal(trib_slice_remaining(&s), 0);
}

static void test_sticky(void **state)
{
    (void)state;
    const uint8_t in[] = {0x00, 0x05, 0xaa, 0xbb, 0xcc};
    trib_slice_t s = trib_slice_make(in, sizeof(in));
    assert_int_equal(trib_slice_i16(&s), 5);
    /* Short read: returns zero, consumes nothing, sets the error. */
    assert_int_equal(trib_slice_i32(&s), 0);
    assert_int_equal(s.err, TRIB_ETRUNCATED);
    assert_int_equal(trib_slice_remaining(&s), 0);
    /* Everything after the error reads zero even though bytes remain. */
    assert_int_equal(trib_slice_u8(&s), 0);
    assert_null(trib_slice_take(&s, 1));
    assert_int_equal(trib_slice_fail(&s, TRIB_EMALFORMED), TRIB_ETRUNCATED);
}

static void test_take_and_sub(void **state)
{
    (void)state;
    const uint8_t in[] = "abcdefgh";
    trib_slice_t s = trib_slice_make(in, 8);
    const uint8_t *p = trib_slice_take(&s, 3);
    assert_ptr_equal(p, in);
    trib_slice_t sub = trib_slice_sub(&s, 2);
    assert_true(trib_slice_ok(&sub));
    assert_int_equal(sub.len, 2);
    assert_int_equal(trib_slice_u8(&sub), 'd');
    assert_int_equal(trib_slice_u8(&sub), 'e');
    assert_int_equal(trib_slice_u8(&sub), 0);
    assert_int_equal(sub.err, TRIB_ETRUNCATED);
    assert_true(trib_slice_ok(&s)); /* the parent is unaffected */
    trib_slice_skip(&s, 3);
    assert_int_equal(trib_slice_remaining(&s), 0);
    trib_slice_t bad = trib_slice_sub(&s, 1);
    assert_false(trib_slice_ok(&bad));
    assert_false(trib_slice_ok(&s));
    /* A huge count never wraps the pointer. */
    trib_slice_t t = trib_slice_make(in, 8);
    assert_null(trib_slice_take(&t, SIZE_MAX));
    assert_int_equal(t.err, TRIB_ETRUNCATED);
}

static void test_varint_errors(void **state)
{
    (void)state;
    const uint8_t overlong[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x01};
    trib_slice_t s = trib_slice_make(overlong, sizeof(overlong));
    assert_int_equal(trib_slice_uvarint32(&s), 0);
    assert_int_equal(s.err, TRIB_EMALFORMED);
    s = trib_slice_make(overlong, sizeof(overlong));
    assert_int_equal(trib_slice_uvarint64(&s), (uint64_t)1 << 35);
    assert_true(trib_slice_ok(&s));
    s = trib_slice_make(overlong, 3);
    assert_int_equal(trib_slice_varint(&s), 0);
    assert_int_equal(s.err, TRIB_ETRUNCATED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reads),
        cmocka_unit_test(test_sticky),
        cmocka_unit_test(test_take_and_sub),
        cmocka_unit_test(test_varint_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
