/* SPDX-License-Identifier: Apache-2.0 */
/* CRC32C: RFC 3720 vectors, hardware vs software, incremental use. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tributary/crc32c.h"

typedef uint32_t (*crc_fn)(uint32_t, const void *, size_t);

static void check_vectors(crc_fn fn)
{
    uint8_t buf[32];
    assert_int_equal(fn(0, "123456789", 9), 0xE3069283u);
    assert_int_equal(fn(0, "", 0), 0u);
    memset(buf, 0, sizeof(buf));
    assert_int_equal(fn(0, buf, 32), 0x8A9136AAu);
    memset(buf, 0xff, sizeof(buf));
    assert_int_equal(fn(0, buf, 32), 0x62A8AB43u);
    for (int i = 0; i < 32; i++) {
        buf[i] = (uint8_t)i;
    }
    assert_int_equal(fn(0, buf, 32), 0x46DD794Eu);
    for (int i = 0; i < 32; i++) {
        buf[i] = (uint8_t)(31 - i);
    }
    assert_int_equal(fn(0, buf, 32), 0x113FDB5Cu);
}

static void test_vectors_sw(void **state)
{
    (void)state;
    check_vectors(trib_crc32c_sw);
}

static void test_vectors_hw(void **state)
{
    (void)state;
    if (!trib_crc32c_hw_available()) {
        print_message("SKIP: this CPU has no CRC32C instruction (SSE4.2), "
                      "only the table-driven code is tested\n");
        skip();
    }
    check_vectors(trib_crc32c_hw);
}

static void test_vectors_dispatch(void **state)
{
    (void)state;
    check_vectors(trib_crc32c);
}

/* Every length and alignment up to 300 bytes: hw == sw, and split == whole. */
static void test_agree_and_incremental(void **state)
{
    (void)state;
    uint8_t data[320];
    uint32_t x = 12345;
    for (size_t i = 0; i < sizeof(data); i++) {
        x = x * 1103515245u + 12345u;
        data[i] = (uint8_t)(x >> 16);
    }
    for (size_t off = 0; off < 8; off++) {
        for (size_t n = 0; n + off <= 300; n++) {
            uint32_t sw = trib_crc32c_sw(0, data + off, n);
            assert_int_equal(trib_crc32c(0, data + off, n), sw);
            if (trib_crc32c_hw_available()) {
                assert_int_equal(trib_crc32c_hw(0, data + off, n), sw);
            }
            size_t cut = n / 3;
            uint32_t part = trib_crc32c(0, data + off, cut);
            assert_int_equal(trib_crc32c(part, data + off + cut, n - cut), sw);
        }
    }
}

/* Long inputs take the three-lane path: lengths around its block sizes. */
static void test_long_inputs(void **state)
{
    (void)state;
    enum { MAX = 3 * 4096 * 3 + 777 };
    static uint8_t data[MAX + 8];
    uint32_t x = 99;
    for (size_t i = 0; i < sizeof(data); i++) {
        x = x * 1664525u + 1013904223u;
        data[i] = (uint8_t)(x >> 24);
    }
    const size_t lens[] = {767,
                           768,
                           769,
                           3 * 256 * 2,
                           3 * 256 * 2 + 5,
                           12287,
                           3 * 4096,
                           3 * 4096 + 1,
                           3 * 4096 + 3 * 256 + 9,
                           20000,
                           2 * 3 * 4096,
                           MAX};
    for (size_t off = 0; off < 8; off += 3) {
        for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
            uint32_t sw = trib_crc32c_sw(0, data + off, lens[i]);
            assert_int_equal(trib_crc32c(0, data + off, lens[i]), sw);
            /* A running CRC continues correctly into a long input. */
            uint32_t head = trib_crc32c(0, data + off, 5);
            assert_int_equal(trib_crc32c(head, data + off + 5, lens[i] - 5), sw);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors_sw),       cmocka_unit_test(test_vectors_hw),
        cmocka_unit_test(test_vectors_dispatch), cmocka_unit_test(test_agree_and_incremental),
        cmocka_unit_test(test_long_inputs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
