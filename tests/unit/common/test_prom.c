/* SPDX-License-Identifier: Apache-2.0 */
/* The Prometheus text writer (prom.c): header, samples, label escaping into a buffer and
 * into a string (with what does not fit), a metric of one sample. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "tributary/buf.h"
#include "tributary/prom.h"

static char *text(trib_buf_t *b)
{
    trib_buf_put_u8(b, 0);
    size_t n;
    return (char *)trib_buf_flatten(b, &n);
}

static void test_format(void **state)
{
    (void)state;
    trib_buf_t b;
    trib_buf_init(&b);
    trib_buf_append(&b, "x{t=\"", 5);
    trib_prom_label_escape(&b, "a\"b\\c\nd", 7);
    trib_buf_append(&b, "\"}", 2);
    assert_string_equal(text(&b), "x{t=\"a\\\"b\\\\c\\nd\"}");
    trib_buf_reset(&b);
    trib_prom_sample(&b, "g", "a=\"1\"", 0.5);
    trib_prom_sample_u64(&b, "c", NULL, 18446744073709551615ULL);
    trib_prom_sample_u64(&b, "e", "", 1);
    assert_string_equal(text(&b), "g{a=\"1\"} 0.5\nc 18446744073709551615\ne 1\n");
    trib_buf_reset(&b);
    trib_prom_header(&b, "x_total", "counter", "Things.");
    trib_prom_sample(&b, "inf", NULL, INFINITY);
    trib_prom_sample(&b, "nan", NULL, NAN);
    assert_string_equal(text(&b), "# HELP x_total Things.\n# TYPE x_total counter\ninf +Inf\n"
                                  "nan NaN\n");
    trib_buf_fini(&b);
}

static void test_metric(void **state)
{
    (void)state;
    trib_buf_t b;
    trib_buf_init(&b);
    trib_prom_metric_u64(&b, "drops_total", "counter", "Drops, by reason.", "reason=\"a\"", 3);
    trib_prom_metric_u64(&b, "drops_total", NULL, NULL, "reason=\"b\"", 0);
    trib_prom_metric_u64(&b, "open", "gauge", "Open.", NULL, 7);
    assert_string_equal(text(&b), "# HELP drops_total Drops, by reason.\n"
                                  "# TYPE drops_total counter\n"
                                  "drops_total{reason=\"a\"} 3\n"
                                  "drops_total{reason=\"b\"} 0\n"
                                  "# HELP open Open.\n# TYPE open gauge\nopen 7\n");
    trib_buf_fini(&b);
}

static void test_label_escape_str(void **state)
{
    (void)state;
    char out[64];
    assert_int_equal(trib_prom_label_escape_str(out, sizeof(out), "a\"b\\c\nd"), 10);
    assert_string_equal(out, "a\\\"b\\\\c\\nd");
    assert_int_equal(trib_prom_label_escape_str(out, sizeof(out), ""), 0);
    assert_string_equal(out, "");
    /* a value longer than the room is cut, never in the middle of an escape */
    char small[6];
    assert_int_equal(trib_prom_label_escape_str(small, sizeof(small), "abcdefgh"), 3);
    assert_string_equal(small, "abc");
    assert_int_equal(trib_prom_label_escape_str(small, sizeof(small), "a\"\"\""), 3);
    assert_string_equal(small, "a\\\"");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_metric),
        cmocka_unit_test(test_label_escape_str),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
