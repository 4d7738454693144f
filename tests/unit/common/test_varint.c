/* SPDX-License-Identifier: Apache-2.0 */
/* Varints and zigzag: known encodings, limits, overlong and truncated input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "tributary/error.h"
#include "tributary/varint.h"

static void test_known_encodings(void **state)
{
    (void)state;
    uint8_t out[TRIB_VARINT_MAX64];
    assert_int_equal(trib_uvarint_encode(out, 0), 1);
    assert_int_equal(out[0], 0);
    assert_int_equal(trib_uvarint_encode(out, 127), 1);
    assert_int_equal(out[0], 0x7f);
    assert_int_equal(trib_uvarint_encode(out, 128), 2);
    assert_memory_equal(out, "\x80\x01", 2);
    assert_int_equal(trib_uvarint_encode(out, 300), 2);
    assert_memory_equal(out, "\xac\x02", 2);
    assert_int_equal(trib_uvarint_encode(out, UINT32_MAX), 5);
    assert_memory_equal(out, "\xff\xff\xff\xff\x0f", 5);
    assert_int_equal(trib_uvarint_encode(out, UINT64_MAX), 10);
    assert_int_equal(out[9], 0x01);
    assert_int_equal(trib_uvarint_size(UINT64_MAX), 10);
    assert_int_equal(trib_uvarint_size(300), 2);
}

static void test_zigzag(void **state)
{
    (void)state;
    assert_int_equal(trib_zigzag64(0), 0);
    assert_int_equal(trib_zigzag64(-1), 1);
    assert_int_equal(trib_zigzag64(1), 2);
    assert_int_equal(trib_zigzag64(-2), 3);
    assert_true(trib_zigzag64(INT64_MIN) == UINT64_MAX);
    assert_true(trib_zigzag64(INT64_MAX) == UINT64_MAX - 1);
    assert_int_equal(trib_zigzag32(INT32_MIN), UINT32_MAX);
    const int64_t vals[] = {0, 1, -1, 63, -64, 64, 1000000, -1000000, INT64_MAX, INT64_MIN};
    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
        assert_true(trib_unzigzag64(trib_zigzag64(vals[i])) == vals[i]);
        if (vals[i] >= INT32_MIN && vals[i] <= INT32_MAX) {
            int32_t v = (int32_t)vals[i];
            assert_int_equal(trib_unzigzag32(trib_zigzag32(v)), v);
        }
    }
}

static void test_roundtrip(void **state)
{
    (void)state;
    uint8_t out[TRIB_VARINT_MAX64];
    for (int bit = 0; bit < 64; bit++) {
        uint64_t vs[3] = {(uint64_t)1 << bit, ((uint64_t)1 << bit) - 1, ((uint64_t)1 << bit) + 1};
        for (int k = 0; k < 3; k++) {
            size_t n = trib_uvarint_encode(out, vs[k]);
            uint64_t back = 0;
            assert_int_equal(trib_uvarint_decode(out, n, TRIB_VARINT_MAX64, &back), (int)n);
            assert_true(back == vs[k]);
            /* Every truncation fails as truncated. */
            for (size_t cut = 0; cut < n; cut++) {
                assert_int_equal(trib_uvarint_decode(out, cut, TRIB_VARINT_MAX64, &back),
                                 TRIB_ETRUNCATED);
            }
        }
    }
}

static void test_bad_input(void **state)
{
    (void)state;
    uint64_t v = 0;
    /* 32-bit varint: 6 bytes is overlong, and 5 bytes above UINT32_MAX overflow. */
    assert_int_equal(
        trib_uvarint_decode((const uint8_t *)"\x80\x80\x80\x80\x80\x00", 6, TRIB_VARINT_MAX32, &v),
        TRIB_EMALFORMED);
    assert_int_equal(
        trib_uvarint_decode((const uint8_t *)"\xff\xff\xff\xff\x1f", 5, TRIB_VARINT_MAX32, &v),
        TRIB_EMALFORMED);
    /* Non-minimal but in range: accepted, as Kafka's readers do. */
    assert_int_equal(trib_uvarint_decode((const uint8_t *)"\x81\x00", 2, TRIB_VARINT_MAX32, &v), 2);
    assert_int_equal(v, 1);
    /* 64-bit: 11 bytes, or a 10th byte above 1, overflow. */
    const uint8_t big[11] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0x00};
    assert_int_equal(trib_uvarint_decode(big, 10, TRIB_VARINT_MAX64, &v), TRIB_EMALFORMED);
    const uint8_t longer[11] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00};
    assert_int_equal(trib_uvarint_decode(longer, 11, TRIB_VARINT_MAX64, &v), TRIB_EMALFORMED);
    assert_int_equal(trib_uvarint_decode(NULL, 0, TRIB_VARINT_MAX64, &v), TRIB_ETRUNCATED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_encodings),
        cmocka_unit_test(test_zigzag),
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
