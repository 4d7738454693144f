/* SPDX-License-Identifier: Apache-2.0 */
/* The segment buffer: appends, references, back-patching, CRC ranges, iovecs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tributary/buf.h"
#include "tributary/crc32c.h"
#include "tributary/slice.h"

static void test_put_and_read_back(void **state)
{
    (void)state;
    trib_buf_t b;
    trib_buf_init(&b);
    trib_buf_put_bool(&b, true);
    trib_buf_put_i8(&b, -1);
    trib_buf_put_i16(&b, -32768);
    trib_buf_put_i32(&b, 0x12345678);
    trib_buf_put_i64(&b, -2);
    trib_buf_put_f64(&b, 1.5);
    trib_buf_put_uvarint(&b, 300);
    trib_buf_put_varint(&b, -2);
    trib_buf_put_varlong(&b, INT64_MIN);
    trib_buf_put_u16(&b, 0xbeef);
    trib_buf_put_u32(&b, 0xdeadbeef);
    assert_int_equal(trib_buf_error(&b), 0);
    size_t len;
    const uint8_t *p = trib_buf_flatten(&b, &len);
    assert_non_null(p);
    assert_int_equal(len, trib_buf_len(&b));
    trib_slice_t s = trib_slice_make(p, len);
    assert_true(trib_slice_bool(&s));
    assert_int_equal(trib_slice_i8(&s), -1);
    assert_int_equal(trib_slice_i16(&s), -32768);
    assert_int_equal(trib_slice_i32(&s), 0x12345678);
    assert_true(trib_slice_i64(&s) == -2);
    assert_true(trib_slice_f64(&s) == 1.5);
    assert_int_equal(trib_slice_uvarint32(&s), 300);
    assert_int_equal(trib_slice_varint(&s), -2);
    assert_true(trib_slice_varlong(&s) == INT64_MIN);
    assert_int_equal(trib_slice_u16(&s), 0xbeef);
    assert_int_equal(trib_slice_u32(&s), 0xdeadbeef);
    assert_int_equal(trib_slice_remaining(&s), 0);
    assert_true(trib_slice_ok(&s));
    trib_buf_fini(&b);
}

/* Large appends span segments; copyout and flatten see the same bytes. */
static void test_segments(void **state)
{
    (void)state;
    enum { N = 200000 };
    uint8_t *src = malloc(N);
    assert_non_null(src);
    for (size_t i = 0; i < N; i++) {
        src[i] = (uint8_t)(i * 7 + 3);
    }
    trib_buf_t b;
    trib_buf_init(&b);
    /* Odd-sized pieces so segment boundaries fall everywhere. */
    size_t at = 0, step = 1;
    while (at < N) {
        size_t n = step < N - at ? step : N - at;
        trib_buf_append(&b, src + at, n);
        at += n;
        step = step * 3 + 1;
        if (step > 5000) {
            step = 1;
        }
    }
    assert_int_equal(trib_buf_len(&b), N);
    assert_true(trib_buf_iovcnt(&b) > 1);
    uint8_t *out = malloc(N);
    assert_non_null(out);
    assert_int_equal(trib_buf_copyout(&b, 0, out, N), N);
    assert_memory_equal(out, src, N);
    assert_int_equal(trib_buf_copyout(&b, N - 10, out, 100), 10);
    assert_int_equal(trib_buf_copyout(&b, N, out, 1), 0);
    assert_int_equal(trib_buf_crc32c(&b, 1000, 150000), trib_crc32c(0, src + 1000, 149000));
    size_t len;
    const uint8_t *flat = trib_buf_flatten(&b, &len);
    assert_int_equal(len, N);
    assert_memory_equal(flat, src, N);
    assert_int_equal(trib_buf_iovcnt(&b), 1);
    trib_buf_fini(&b);
    free(out);
    free(src);
}

/* A length prefix and a CRC reserved first and filled in at the end. */
static void test_backpatch(void **state)
{
    (void)state;
    trib_buf_t b;
    trib_buf_init(&b);
    trib_buf_put_i16(&b, 7);
    size_t len_pos = trib_buf_reserve(&b, 4);
    size_t crc_pos = trib_buf_reserve(&b, 4);
    size_t body = trib_buf_len(&b);
    uint8_t payload[3000];
    for (size_t i = 0; i < sizeof(payload); i++) {
        payload[i] = (uint8_t)i;
    }
    trib_buf_append(&b, payload, sizeof(payload));
    trib_buf_append_ref(&b, payload, sizeof(payload)); /* a reference segment */
    trib_buf_put_i32(&b, 42);
    size_t end = trib_buf_len(&b);
    trib_buf_patch_i32(&b, len_pos, (int32_t)(end - len_pos - 4));
    trib_buf_patch_u32(&b, crc_pos, trib_buf_crc32c(&b, body, end));
    assert_int_equal(trib_buf_error(&b), 0);

    uint8_t *flat = malloc(end);
    assert_non_null(flat);
    assert_int_equal(trib_buf_copyout(&b, 0, flat, end), end);
    trib_slice_t s = trib_slice_make(flat, end);
    assert_int_equal(trib_slice_i16(&s), 7);
    assert_int_equal(trib_slice_i32(&s), (int32_t)(end - 6));
    uint32_t crc = trib_slice_u32(&s);
    assert_int_equal(crc, trib_crc32c(0, flat + body, end - body));
    assert_memory_equal(flat + body, payload, sizeof(payload));
    assert_memory_equal(flat + body + sizeof(payload), payload, sizeof(payload));

    /* Patching past the end, or across the end, changes nothing. */
    trib_buf_patch_i64(&b, end - 4, -1);
    assert_int_equal(trib_buf_copyout(&b, 0, flat, end), end);
    assert_int_equal(flat[end - 1], 42);
    free(flat);
    trib_buf_fini(&b);
}

static void test_iovec_and_refs(void **state)
{
    (void)state;
    static uint8_t big[4096];
    memset(big, 'r', sizeof(big));
    trib_buf_t b;
    trib_buf_init(&b);
    trib_buf_append(&b, "head", 4);
    trib_buf_append_ref(&b, big, sizeof(big));
    trib_buf_append(&b, "tail", 4);
    trib_buf_append_ref(&b, "tiny", 4); /* small refs are copied */
    assert_int_equal(trib_buf_iovcnt(&b), 3);
    struct iovec iov[8];
    int n = trib_buf_iovec(&b, iov, 8);
    assert_int_equal(n, 3);
    assert_ptr_equal(iov[1].iov_base, big); /* zero-copy */
    assert_int_equal(iov[1].iov_len, sizeof(big));
    assert_int_equal(iov[0].iov_len, 4);
    assert_int_equal(iov[2].iov_len, 8);
    assert_memory_equal(iov[2].iov_base, "tailtiny", 8);
    assert_int_equal(trib_buf_iovec(&b, iov, 2), 2);
    trib_buf_reset(&b);
    assert_int_equal(trib_buf_len(&b), 0);
    assert_int_equal(trib_buf_iovcnt(&b), 0);
    size_t len = 99;
    assert_null(trib_buf_flatten(&b, &len));
    assert_int_equal(len, 0);
    trib_buf_fini(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_and_read_back),
        cmocka_unit_test(test_segments),
        cmocka_unit_test(test_backpatch),
        cmocka_unit_test(test_iovec_and_refs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
