/* SPDX-License-Identifier: Apache-2.0 */
/* The per-request arena: alignment, growth, limits, overflow, reset. */
#include <setjmp.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "tributary/arena.h"

static void test_alloc_align(void **state)
{
    (void)state;
    trib_arena_t a;
    trib_arena_init(&a);
    for (size_t n = 1; n < 5000; n += 37) {
        uint8_t *p = trib_arena_alloc(&a, n);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % alignof(max_align_t), 0);
        memset(p, 0xab, n); /* ASan catches an overrun */
    }
    /* A big allocation gets its own chunk. */
    uint8_t *big = trib_arena_alloc(&a, 1 << 20);
    assert_non_null(big);
    memset(big, 1, 1 << 20);
    uint8_t *after = trib_arena_alloc(&a, 16);
    assert_non_null(after);
    trib_arena_fini(&a);
}

static void test_calloc_and_dup(void **state)
{
    (void)state;
    trib_arena_t a;
    trib_arena_init(&a);
    uint32_t *z = trib_arena_calloc(&a, 100, sizeof(uint32_t));
    assert_non_null(z);
    for (int i = 0; i < 100; i++) {
        assert_int_equal(z[i], 0);
    }
    assert_null(trib_arena_calloc(&a, SIZE_MAX / 2, 4)); /* overflow */
    assert_null(trib_arena_alloc(&a, SIZE_MAX));
    char *s = trib_arena_strndup(&a, "hello world", 5);
    assert_string_equal(s, "hello");
    uint8_t *d = trib_arena_memdup(&a, "\x01\x02\x03", 3);
    assert_memory_equal(d, "\x01\x02\x03", 3);
    assert_non_null(trib_arena_calloc(&a, 0, 8));
    trib_arena_fini(&a);
}

static void test_limit(void **state)
{
    (void)state;
    trib_arena_t a;
    trib_arena_init(&a);
    trib_arena_set_limit(&a, 4096);
    size_t got = 0;
    while (trib_arena_alloc(&a, 100)) {
        got++;
        assert_true(got < 1000);
    }
    assert_true(trib_arena_used(&a) <= 4096);
    assert_true(got >= 30);
    assert_null(trib_arena_alloc(&a, 5000));
    trib_arena_reset(&a);
    assert_int_equal(trib_arena_used(&a), 0);
    assert_non_null(trib_arena_alloc(&a, 100));
    trib_arena_fini(&a);
}

static void test_reset_reuses(void **state)
{
    (void)state;
    trib_arena_t a;
    trib_arena_init(&a);
    for (int round = 0; round < 10; round++) {
        for (int i = 0; i < 500; i++) {
            char *p = trib_arena_alloc(&a, 64);
            assert_non_null(p);
            memset(p, round, 64);
        }
        trib_arena_reset(&a);
    }
    trib_arena_fini(&a);
    trib_arena_fini(&a); /* twice is harmless */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alloc_align),
        cmocka_unit_test(test_calloc_and_dup),
        cmocka_unit_test(test_limit),
        cmocka_unit_test(test_reset_reuses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
