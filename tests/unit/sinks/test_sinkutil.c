/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The plugins' shared helpers (plugins/sinkutil): the JSON validator that
 * decides whether a value is embedded or quoted (and whether the postgres
 * sink rejects it up front), string escaping with invalid UTF-8 replaced,
 * and the growable string. sinkutil is a static library of the plugins,
 * not of tributary_common, so its source is compiled in here.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../../../plugins/sinkutil/sinkutil.c"

static bool valid(const char *s)
{
    return sink_json_valid((const uint8_t *)s, strlen(s));
}

static void test_json_valid(void **state)
{
    (void)state;
    const char *good[] = {
        "{}",
        "[]",
        " {\"a\" : [1, -2.5e+3, true, false, null, \"x\\u00e9\\n\"]} ",
        "0",
        "-0.1",
        "\"\"",
        "\"caf\xc3\xa9 \xf0\x9f\x99\x82\"",
        "[[[[]]]]",
        "1E5",
        "{\"a\":{\"b\":{}}}",
    };
    const char *bad[] = {
        "",
        "{",
        "{\"a\"}",
        "{\"a\":1,}",
        "[1,]",
        "01",
        "1.",
        ".5",
        "+1",
        "tru",
        "nul",
        "{a:1}",
        "\"\\x\"",
        "\"\\u12G4\"",
        "\"a\nb\"",
        "\"\xc3\"",
        "\"\xed\xa0\x80\"",
        "\"\xc0\x80\"",
        "{} {}",
        "[1] x",
        "not json {",
        "'a'",
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        if (!valid(good[i])) {
            fail_msg("rejected valid JSON: %s", good[i]);
        }
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (valid(bad[i])) {
            fail_msg("accepted invalid JSON: %s", bad[i]);
        }
    }
    /* Nesting is bounded (128): deeper input is refused, not a stack overflow. */
    char deep[600];
    memset(deep, '[', 300);
    memset(deep + 300, ']', 300);
    assert_false(sink_json_valid((const uint8_t *)deep, 600));
    assert_true(sink_json_valid((const uint8_t *)deep + 200, 200));
}

static void test_json_string(void **state)
{
    (void)state;
    sink_str_t s;
    sink_str_init(&s);
    const char in[] = "a\"b\\c\n\t\x01\x1f caf\xc3\xa9 \xff\xc3";
    sink_json_string(&s, (const uint8_t *)in, sizeof(in) - 1);
    assert_int_equal(s.err, 0);
    assert_string_equal(s.p,
                        "\"a\\\"b\\\\c\\n\\t\\u0001\\u001f caf\xc3\xa9 \xef\xbf\xbd\xef\xbf\xbd\"");
    assert_true(sink_json_valid((const uint8_t *)s.p, s.len));

    sink_str_reset(&s);
    sink_json_value(&s, trib_record_null());
    sink_json_value(&s, trib_record_bytes("", 0));
    sink_json_value(&s, trib_record_bytes(" {\"a\":1} ", 9));
    sink_json_value(&s, trib_record_bytes("{\"a\":", 5));
    assert_string_equal(s.p, "null\"\" {\"a\":1} \"{\\\"a\\\":\"");
    sink_str_fini(&s);
}

static void test_str(void **state)
{
    (void)state;
    sink_str_t s;
    sink_str_init(&s);
    for (int i = 0; i < 10000; i++) {
        sink_str_printf(&s, "%d,", i % 10);
    }
    assert_int_equal(s.len, 20000);
    assert_int_equal(s.p[s.len], '\0');
    assert_memory_equal(s.p, "0,1,2,", 6);
    sink_str_reset(&s);
    assert_int_equal(s.len, 0);
    sink_str_puts(&s, "x");
    assert_string_equal(s.p, "x");
    sink_str_fini(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_valid),
        cmocka_unit_test(test_json_string),
        cmocka_unit_test(test_str),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
