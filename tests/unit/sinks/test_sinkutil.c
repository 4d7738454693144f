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

/* Every byte alone: escaped, replaced or kept as JSON wants, and a string of it valid or not. */
static void test_json_bytes(void **state)
{
    (void)state;
    sink_str_t s;
    sink_str_init(&s);
    for (int c = 0; c < 256; c++) {
        uint8_t b = (uint8_t)c;
        char want[16];
        if (c == '"' || c == '\\') {
            snprintf(want, sizeof(want), "\"\\%c\"", c);
        } else if (c == '\n' || c == '\t' || c == '\r') {
            snprintf(want, sizeof(want), "\"\\%c\"", c == '\n' ? 'n' : c == '\t' ? 't' : 'r');
        } else if (c < 0x20) {
            snprintf(want, sizeof(want), "\"\\u%04x\"", c);
        } else if (c >= 0x80) {
            snprintf(want, sizeof(want), "\"\xef\xbf\xbd\""); /* alone, never valid UTF-8 */
        } else {
            snprintf(want, sizeof(want), "\"%c\"", c);
        }
        sink_str_reset(&s);
        sink_json_string(&s, &b, 1);
        assert_int_equal(s.err, 0);
        assert_string_equal(s.p, want);
        assert_true(sink_json_valid((const uint8_t *)s.p, s.len));

        /* The same byte inside a longer run of plain text, as the validator meets it. */
        uint8_t q[40];
        memset(q, 'a', sizeof(q));
        q[0] = '"';
        q[20] = b;
        q[39] = '"';
        bool plain = c >= 0x20 && c < 0x80 && c != '"' && c != '\\';
        assert_int_equal(sink_json_valid(q, sizeof(q)), plain);
    }
    sink_str_fini(&s);
}

static void test_str_int(void **state)
{
    (void)state;
    static const int64_t v[] = {0, 7, -1, 10, 4096, -42, INT64_MAX, INT64_MIN, 1700000000000};
    sink_str_t s;
    sink_str_init(&s);
    char want[512] = "";
    size_t n = 0;
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        sink_str_int(&s, v[i]);
        sink_str_append(&s, ",", 1);
        n += (size_t)snprintf(want + n, sizeof(want) - n, "%lld,", (long long)v[i]);
    }
    assert_int_equal(s.err, 0);
    assert_string_equal(s.p, want);
    sink_str_fini(&s);
}

/* Kafka-encoded headers (zigzag varint lengths): path=/x, event.id=<v>. */
static size_t two_headers(uint8_t *out, const char *v)
{
    size_t n = 0, vl = strlen(v);
    out[n++] = 4 << 1;
    memcpy(out + n, "path", 4);
    n += 4;
    out[n++] = 2 << 1;
    memcpy(out + n, "/x", 2);
    n += 2;
    out[n++] = 8 << 1;
    memcpy(out + n, "event.id", 8);
    n += 8;
    out[n++] = (uint8_t)(vl << 1);
    memcpy(out + n, v, vl);
    return n + vl;
}

static void test_event_id(void **state)
{
    (void)state;
    uint8_t h[128];
    trib_sink_record_t r;
    memset(&r, 0, sizeof(r));
    size_t n = 0;
    assert_null(sink_event_id(&r, &n)); /* no headers */
    const char *id = "0123456789abcdef0100000000000006";
    r.header_count = 2;
    r.headers = h;
    r.headers_len = two_headers(h, id);
    const uint8_t *got = sink_event_id(&r, &n);
    assert_non_null(got);
    assert_int_equal(n, 32);
    assert_memory_equal(got, id, 32);
    r.headers_len = two_headers(h, "has space"); /* not printable ASCII: none */
    assert_null(sink_event_id(&r, &n));
    r.headers_len = two_headers(h, ""); /* empty: none */
    assert_null(sink_event_id(&r, &n));
    r.header_count = 1; /* only path */
    r.headers_len = two_headers(h, id);
    assert_null(sink_event_id(&r, &n));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_valid), cmocka_unit_test(test_json_string),
        cmocka_unit_test(test_str),        cmocka_unit_test(test_json_bytes),
        cmocka_unit_test(test_str_int),    cmocka_unit_test(test_event_id),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
