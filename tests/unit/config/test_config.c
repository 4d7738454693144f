/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The config loader: every option type, defaults, bounds, enums, durations,
 * sizes, addresses, ${ENV}, nested sections, lists of sections, maps,
 * secrets, error collection and positions, dumps, schema checks, limits.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config/config_int.h"
#include "tributary/config.h"

/* ---- a schema using every type ---------------------------------------- */

typedef struct inner {
    int64_t n;
    const char *s;
} inner_t;

typedef struct item {
    const char *name;
    int64_t weight;
    inner_t in;
} item_t;

typedef struct all {
    bool b;
    int64_t i;
    uint64_t u;
    double d;
    const char *s;
    int e;
    int64_t dur;
    uint64_t sz;
    trib_config_addr_t addr;
    trib_config_strlist_t list;
    trib_config_map_t map;
    inner_t sec;
    item_t *items;
    size_t nitems;
    const char *secret;
    int64_t secret_num;
    trib_config_strlist_t deflist;
    trib_config_map_t defmap;
    int noenum; /* enum without a default */
} all_t;

static const char *const colors[] = {"red", "green", "blue", NULL};

static const trib_config_option_t inner_opts[] = {
    {TRIB_CONFIG_FIELD(inner_t, n, INT), .def = "5", .min = "0", .max = "10"},
    {TRIB_CONFIG_FIELD(inner_t, s, STRING), .def = "inner"},
    TRIB_CONFIG_END,
};

static const trib_config_option_t item_opts[] = {
    {TRIB_CONFIG_FIELD(item_t, name, STRING), .flags = TRIB_CONFIG_REQUIRED},
    {TRIB_CONFIG_FIELD(item_t, weight, INT), .def = "1", .min = "1"},
    {TRIB_CONFIG_SECTION(item_t, in, inner_opts)},
    TRIB_CONFIG_END,
};

static const trib_config_option_t all_opts[] = {
    {TRIB_CONFIG_FIELD(all_t, b, BOOL), .def = "true", .desc = "a flag"},
    {TRIB_CONFIG_FIELD(all_t, i, INT), .def = "-7", .min = "-100", .max = "100"},
    {TRIB_CONFIG_FIELD(all_t, u, UINT), .def = "42", .max = "1000"},
    {TRIB_CONFIG_FIELD(all_t, d, DOUBLE), .def = "0.25", .min = "0", .max = "1"},
    {TRIB_CONFIG_FIELD(all_t, s, STRING), .def = "hello", .max = "8"},
    {TRIB_CONFIG_FIELD(all_t, e, ENUM), .def = "green", .choices = colors},
    {TRIB_CONFIG_KEY("duration", all_t, dur, DURATION), .def = "10s", .min = "1ms", .max = "7d"},
    {TRIB_CONFIG_KEY("size", all_t, sz, SIZE), .def = "64MiB", .min = "1KiB", .max = "1TiB"},
    {TRIB_CONFIG_KEY("address", all_t, addr, ADDRESS), .def = "127.0.0.1:9092"},
    {TRIB_CONFIG_FIELD(all_t, list, STRLIST), .max = "3"},
    {TRIB_CONFIG_FIELD(all_t, map, MAP)},
    {TRIB_CONFIG_SECTION(all_t, sec, inner_opts)},
    {TRIB_CONFIG_SECTIONS(all_t, items, nitems, item_t, item_opts), .max = "4"},
    {TRIB_CONFIG_FIELD(all_t, secret, STRING), .flags = TRIB_CONFIG_SECRET},
    {TRIB_CONFIG_FIELD(all_t, secret_num, INT), .flags = TRIB_CONFIG_SECRET, .max = "10"},
    {TRIB_CONFIG_FIELD(all_t, deflist, STRLIST), .def = "[x, \"y z\"]"},
    {TRIB_CONFIG_FIELD(all_t, defmap, MAP), .def = "{linger.ms: 5, acks: all}"},
    {TRIB_CONFIG_FIELD(all_t, noenum, ENUM), .choices = colors},
    TRIB_CONFIG_END,
};

/* ---- helpers ----------------------------------------------------------- */

static int load(const char *yaml, all_t *a, trib_config_t **c)
{
    memset(a, 0xa5, sizeof(*a)); /* the loader must set every field */
    return trib_config_load_string(c, "t.yaml", yaml, strlen(yaml), all_opts, a);
}

/* All error lines, as trib_config_print_errors() writes them (free it). */
static char *errors_of(const trib_config_t *c)
{
    char *text = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&text, &len);
    assert_non_null(fp);
    trib_config_print_errors(c, fp);
    fclose(fp);
    return text;
}

static void assert_errors(const char *yaml, const char *expected)
{
    all_t a;
    trib_config_t *c = NULL;
    int rc = load(yaml, &a, &c);
    char *got = errors_of(c);
    if (strcmp(got, expected) != 0) {
        print_error("YAML:\n%s\nexpected:\n%sgot:\n%s", yaml, expected, got);
    }
    assert_string_equal(got, expected);
    assert_int_equal(rc, expected[0] ? TRIB_ECONFIG : 0);
    free(got);
    trib_config_free(c);
}

static char *dump_of(const trib_config_option_t *schema, const void *src, unsigned flags)
{
    char *text = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&text, &len);
    assert_non_null(fp);
    assert_int_equal(trib_config_dump(fp, schema, src, flags), 0);
    fclose(fp);
    return text;
}

/* ---- tests ------------------------------------------------------------- */

static void test_schema_is_valid(void **state)
{
    (void)state;
    trib_error_t err;
    int rc = trib_config_schema_check(all_opts, &err);
    if (rc != 0) {
        print_error("%s\n", err.msg);
    }
    assert_int_equal(rc, 0);
}

static void test_defaults(void **state)
{
    (void)state;
    all_t a;
    trib_config_t *c = NULL;
    assert_int_equal(load("", &a, &c), 0);
    assert_int_equal(trib_config_error_count(c), 0);
    assert_true(a.b);
    assert_int_equal(a.i, -7);
    assert_int_equal(a.u, 42);
    assert_true(a.d == 0.25);
    assert_string_equal(a.s, "hello");
    assert_int_equal(a.e, 1);
    assert_int_equal(a.dur, 10000);
    assert_int_equal(a.sz, 64u << 20);
    assert_string_equal(a.addr.text, "127.0.0.1:9092");
    assert_string_equal(a.addr.host, "127.0.0.1");
    assert_int_equal(a.addr.port, 9092);
    assert_int_equal(a.list.count, 0);
    assert_int_equal(a.map.count, 0);
    assert_string_equal(a.map.file, "t.yaml");
    assert_int_equal(a.sec.n, 5);
    assert_string_equal(a.sec.s, "inner");
    assert_null(a.items);
    assert_int_equal(a.nitems, 0);
    assert_null(a.secret);
    assert_int_equal(a.secret_num, 0);
    assert_int_equal(a.deflist.count, 2);
    assert_string_equal(a.deflist.items[0], "x");
    assert_string_equal(a.deflist.items[1], "y z");
    assert_int_equal(a.defmap.count, 2);
    assert_string_equal(a.defmap.items[0].key, "linger.ms");
    assert_string_equal(a.defmap.items[0].value, "5");
    assert_string_equal(trib_config_map_get(&a.defmap, "acks"), "all");
    assert_int_equal(a.noenum, -1); /* unset, not silently "red" */
    trib_config_free(c);

    /* Only comments, an explicit null document: the same. */
    assert_int_equal(load("# nothing here\n", &a, &c), 0);
    assert_int_equal(a.i, -7);
    trib_config_free(c);
    assert_int_equal(load("~\n", &a, &c), 0);
    assert_int_equal(a.u, 42);
    trib_config_free(c);
}

static void test_every_type(void **state)
{
    (void)state;
    static const char yaml[] = "b: off\n"
                               "i: -100\n"
                               "u: '1000'\n"
                               "d: 1e-1\n"
                               "s: \"8 chars\"\n"
                               "e: blue\n"
                               "duration: 1h30m\n"
                               "size: 1.5GiB\n"
                               "address: \"[::1]:0\"\n"
                               "list: [a, 'b', \"c\"]\n"
                               "map: {k1: v1, k2: 2}\n"
                               "sec: {n: 10}\n"
                               "items:\n"
                               "  - name: first\n"
                               "  - name: second\n"
                               "    weight: 3\n"
                               "    in: {s: deep}\n"
                               "secret: hunter2\n"
                               "secret_num: 9\n"
                               "deflist: []\n"
                               "defmap: {}\n"
                               "noenum: red\n";
    all_t a;
    trib_config_t *c = NULL;
    int rc = load(yaml, &a, &c);
    if (rc) {
        trib_config_print_errors(c, stderr);
    }
    assert_int_equal(rc, 0);
    assert_false(a.b);
    assert_int_equal(a.i, -100);
    assert_int_equal(a.u, 1000);
    assert_true(a.d == 0.1);
    assert_string_equal(a.s, "8 chars");
    assert_int_equal(a.e, 2);
    assert_int_equal(a.dur, 90 * 60 * 1000);
    assert_int_equal(a.sz, 3ull << 29);
    assert_string_equal(a.addr.host, "::1");
    assert_int_equal(a.addr.port, 0);
    assert_int_equal(a.list.count, 3);
    assert_string_equal(a.list.items[2], "c");
    assert_int_equal(a.map.count, 2);
    assert_string_equal(a.map.items[1].key, "k2");
    assert_string_equal(a.map.items[1].value, "2");
    assert_int_equal(a.map.items[1].line, 11);
    assert_int_equal(a.map.items[1].col, 19);
    assert_int_equal(a.map.items[1].key_line, 11);
    assert_int_equal(a.map.items[1].key_col, 15);
    assert_int_equal(a.sec.n, 10);
    assert_string_equal(a.sec.s, "inner"); /* default beside a set value */
    assert_int_equal(a.nitems, 2);
    assert_string_equal(a.items[0].name, "first");
    assert_int_equal(a.items[0].weight, 1);
    assert_int_equal(a.items[0].in.n, 5);
    assert_string_equal(a.items[1].name, "second");
    assert_int_equal(a.items[1].weight, 3);
    assert_string_equal(a.items[1].in.s, "deep");
    assert_string_equal(a.secret, "hunter2");
    assert_int_equal(a.secret_num, 9);
    assert_int_equal(a.deflist.count, 0); /* an explicit [] beats the default */
    assert_int_equal(a.defmap.count, 0);
    assert_int_equal(a.noenum, 0);
    trib_config_free(c);
}

static void test_bool_forms(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        bool v;
    } ok[] = {{"true", true},   {"True", true}, {"YES", true}, {"on", true},
              {"false", false}, {"No", false},  {"OFF", false}};
    for (size_t k = 0; k < sizeof(ok) / sizeof(ok[0]); k++) {
        bool v = !ok[k].v;
        assert_int_equal(cfg_parse_bool(ok[k].text, &v), 0);
        assert_int_equal(v, ok[k].v);
    }
    bool v;
    assert_int_equal(cfg_parse_bool("1", &v), -EINVAL);
    assert_int_equal(cfg_parse_bool("y", &v), -EINVAL);
    assert_errors("b: maybe\n",
                  "t.yaml:1:4: error: invalid boolean 'maybe' for 'b': expected true or false\n");
}

static void test_numbers_and_bounds(void **state)
{
    (void)state;
    assert_errors("i: 101\n",
                  "t.yaml:1:4: error: value '101' for 'i' is above the maximum (100)\n");
    assert_errors("i: -101\n",
                  "t.yaml:1:4: error: value '-101' for 'i' is below the minimum (-100)\n");
    assert_errors("i: 12abc\n", "t.yaml:1:4: error: invalid integer '12abc' for 'i'\n");
    assert_errors("i: 0x10\n", "t.yaml:1:4: error: invalid integer '0x10' for 'i'\n");
    assert_errors("i: 99999999999999999999\n",
                  "t.yaml:1:4: error: out-of-range integer '99999999999999999999' for 'i'\n");
    assert_errors("u: -1\n", "t.yaml:1:4: error: value '-1' for 'u' is negative\n");
    assert_errors("u: 1001\n",
                  "t.yaml:1:4: error: value '1001' for 'u' is above the maximum (1000)\n");
    assert_errors("d: 1.01\n",
                  "t.yaml:1:4: error: value '1.01' for 'd' is above the maximum (1)\n");
    assert_errors("d: -0.1\n",
                  "t.yaml:1:4: error: value '-0.1' for 'd' is below the minimum (0)\n");
    assert_errors("d: .inf\n", "t.yaml:1:4: error: invalid number '.inf' for 'd'\n");
    assert_errors("d: 1e999\n", "t.yaml:1:4: error: out-of-range number '1e999' for 'd'\n");
    assert_errors("s: \"123456789\"\n",
                  "t.yaml:1:4: error: value '123456789' for 's' is above the maximum length (8)\n");

    int64_t i;
    uint64_t u;
    assert_int_equal(cfg_parse_int("9223372036854775807", &i), 0);
    assert_true(i == INT64_MAX);
    assert_int_equal(cfg_parse_int("-9223372036854775808", &i), 0);
    assert_true(i == INT64_MIN);
    assert_int_equal(cfg_parse_int("9223372036854775808", &i), -ERANGE);
    assert_int_equal(cfg_parse_int(" 1", &i), -EINVAL);
    assert_int_equal(cfg_parse_int("", &i), -EINVAL);
    assert_int_equal(cfg_parse_uint("18446744073709551615", &u), 0);
    assert_true(u == UINT64_MAX);
    assert_int_equal(cfg_parse_uint("18446744073709551616", &u), -ERANGE);
    assert_int_equal(cfg_parse_uint("-0", &u), -ERANGE);
}

static void test_enums(void **state)
{
    (void)state;
    assert_errors("e: gren\n", "t.yaml:1:4: error: invalid value 'gren' for 'e': expected red, "
                               "green or blue (did you mean 'green'?)\n");
    assert_errors("e: BLUE\n", "t.yaml:1:4: error: invalid value 'BLUE' for 'e': expected red, "
                               "green or blue (did you mean 'blue'?)\n");
    assert_errors("e: purple\n", "t.yaml:1:4: error: invalid value 'purple' for 'e': expected red, "
                                 "green or blue\n");
    assert_errors("e: [red]\n", "t.yaml:1:4: error: expected a name for 'e', got a sequence\n");
}

static void test_durations(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int64_t ms;
    } ok[] = {
        {"0", 0},         {"250ms", 250},    {"10s", 10000},     {"2m", 120000},
        {"1h", 3600000},  {"7d", 604800000}, {"1h30m", 5400000}, {"1.5s", 1500},
        {"0.25m", 15000}, {"-1s", -1000},    {"10 s", 10000},    {"1d2h3m4s5ms", 93784005},
        {"0ms", 0},       {"0.001s", 1},
    };
    for (size_t k = 0; k < sizeof(ok) / sizeof(ok[0]); k++) {
        int64_t v = -42;
        int rc = trib_config_parse_duration(ok[k].text, &v);
        if (rc != 0 || v != ok[k].ms) {
            print_error("duration '%s': rc %d, %lld\n", ok[k].text, rc, (long long)v);
        }
        assert_int_equal(rc, 0);
        assert_true(v == ok[k].ms);
    }
    static const char *const bad[] = {"",    "10",   "s",    "10x",    "1.5ms", "1..5s",
                                      "1.s", "ms10", "10sx", "1h 30",  "+1s",   "1e3s",
                                      "10S", "- 1s", "1s ",  "0.0001s"};
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        int64_t v;
        int rc = trib_config_parse_duration(bad[k], &v);
        if (rc == 0) {
            print_error("duration '%s' parsed as %lld\n", bad[k], (long long)v);
        }
        assert_int_equal(rc, -EINVAL);
    }
    int64_t v;
    assert_int_equal(trib_config_parse_duration("106751991168d", &v), -ERANGE);
    assert_int_equal(trib_config_parse_duration("99999999999999999999ms", &v), -ERANGE);

    static const struct {
        int64_t ms;
        const char *text;
    } fmt[] = {{0, "0s"},         {250, "250ms"},    {10000, "10s"}, {5400000, "1h30m"},
               {1500, "1s500ms"}, {604800000, "7d"}, {-1000, "-1s"}, {INT64_MIN, NULL}};
    for (size_t k = 0; k < sizeof(fmt) / sizeof(fmt[0]); k++) {
        char buf[64];
        trib_config_format_duration(fmt[k].ms, buf, sizeof(buf));
        if (fmt[k].text) {
            assert_string_equal(buf, fmt[k].text);
        }
        int64_t back;
        if (fmt[k].ms != INT64_MIN) {
            assert_int_equal(trib_config_parse_duration(buf, &back), 0);
            assert_true(back == fmt[k].ms);
        }
    }

    assert_errors("duration: 10\n", "t.yaml:1:11: error: invalid duration '10' for 'duration': "
                                    "a unit is needed: ms, s, m, h or d\n");
    assert_errors("duration: 10sec\n",
                  "t.yaml:1:11: error: invalid duration '10sec' for 'duration': "
                  "unknown unit: use ms, s, m, h or d\n");
    assert_errors("duration: 8d\n",
                  "t.yaml:1:11: error: value '8d' for 'duration' is above the maximum (7d)\n");
    assert_errors("duration: 0\n",
                  "t.yaml:1:11: error: value '0' for 'duration' is below the minimum (1ms)\n");
}

static void test_sizes(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        uint64_t bytes;
    } ok[] = {
        {"0", 0},
        {"4096", 4096},
        {"1kB", 1000},
        {"1KiB", 1024},
        {"64MiB", 64ull << 20},
        {"1GiB", 1ull << 30},
        {"1.5KiB", 1536},
        {"2 MB", 2000000},
        {"1TB", 1000000000000ull},
        {"1PiB", 1ull << 50},
        {"10B", 10},
        {"18446744073709551615", UINT64_MAX},
    };
    for (size_t k = 0; k < sizeof(ok) / sizeof(ok[0]); k++) {
        uint64_t v = 42;
        int rc = trib_config_parse_size(ok[k].text, &v);
        if (rc != 0 || v != ok[k].bytes) {
            print_error("size '%s': rc %d, %llu\n", ok[k].text, rc, (unsigned long long)v);
        }
        assert_int_equal(rc, 0);
        assert_true(v == ok[k].bytes);
    }
    static const char *const bad[] = {"",   "64M",   "1K", "1KB", "1mb", "1.5B",
                                      "-1", "1.2.3", "1 ", "MiB", "1e3", "0x10"};
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        uint64_t v;
        int rc = trib_config_parse_size(bad[k], &v);
        if (rc == 0) {
            print_error("size '%s' parsed as %llu\n", bad[k], (unsigned long long)v);
        }
        assert_int_equal(rc, -EINVAL);
    }
    uint64_t v;
    assert_int_equal(trib_config_parse_size("18446744073709551616", &v), -ERANGE);
    assert_int_equal(trib_config_parse_size("20000PiB", &v), -ERANGE);

    static const struct {
        uint64_t bytes;
        const char *text;
    } fmt[] = {{0, "0"},
               {1024, "1KiB"},
               {64ull << 20, "64MiB"},
               {1000, "1kB"},
               {1536, "1536"},
               {1000001, "1000001"},
               {1ull << 50, "1PiB"},
               {UINT64_MAX, "18446744073709551615"}};
    for (size_t k = 0; k < sizeof(fmt) / sizeof(fmt[0]); k++) {
        char buf[64];
        trib_config_format_size(fmt[k].bytes, buf, sizeof(buf));
        assert_string_equal(buf, fmt[k].text);
        uint64_t back;
        assert_int_equal(trib_config_parse_size(buf, &back), 0);
        assert_true(back == fmt[k].bytes);
    }

    assert_errors("size: 64M\n", "t.yaml:1:7: error: invalid size '64M' for 'size': unknown "
                                 "unit: use B, kB, MB, GB, TB, PB, KiB, MiB, GiB, TiB or PiB\n");
    assert_errors("size: 1000\n",
                  "t.yaml:1:7: error: value '1000' for 'size' is below the minimum (1KiB)\n");
    assert_errors("size: 2TiB\n",
                  "t.yaml:1:7: error: value '2TiB' for 'size' is above the maximum (1TiB)\n");
}

static void test_addresses(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        const char *host;
        uint16_t port;
    } ok[] = {
        {"127.0.0.1:80", "127.0.0.1", 80},
        {"[::1]:9092", "::1", 9092},
        {":9092", "", 9092},
        {"host-name.example:0", "host-name.example", 0},
        {"[fe80::1]:65535", "fe80::1", 65535},
        {"my_host:1", "my_host", 1},
    };
    for (size_t k = 0; k < sizeof(ok) / sizeof(ok[0]); k++) {
        char host[256];
        uint16_t port = 1;
        const char *why = NULL;
        int rc = trib_config_parse_address(ok[k].text, host, sizeof(host), &port, &why);
        if (rc != 0) {
            print_error("address '%s': %s\n", ok[k].text, why);
        }
        assert_int_equal(rc, 0);
        assert_string_equal(host, ok[k].host);
        assert_int_equal(port, ok[k].port);
    }
    static const struct {
        const char *text;
        const char *why;
    } bad[] = {
        {"localhost", "expected host:port"},
        {"::1:80", "an IPv6 address needs brackets, e.g. [::1]:9092"},
        {"[::1]80", "missing ':port' after ']'"},
        {"[::1:80", "missing ']' after an IPv6 address"},
        {"[zz]:1", "not an IPv6 address between the brackets"},
        {"h:", "missing port number after ':'"},
        {"h:abc", "the port is not a number"},
        {"h:65536", "port out of range (0-65535)"},
        {"h:123456", "port out of range (0-65535)"},
        {"300.1.1.1:80", "not an IPv4 address"},
        {"bad host:1", "invalid character in the host name"},
        {"-h:1", "invalid host name"},
    };
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        char host[256];
        uint16_t port;
        const char *why = NULL;
        assert_int_equal(trib_config_parse_address(bad[k].text, host, sizeof(host), &port, &why),
                         -EINVAL);
        assert_string_equal(why, bad[k].why);
    }
    assert_errors("address: localhost\n",
                  "t.yaml:1:10: error: invalid address 'localhost' for 'address': expected "
                  "host:port\n");
}

static void test_env(void **state)
{
    (void)state;
    setenv("TRIB_UT_A", "hello", 1);
    setenv("TRIB_UT_EMPTY", "", 1);
    setenv("TRIB_UT_NUM", "77", 1);
    unsetenv("TRIB_UT_UNSET");

    static const char yaml[] = "s: ${TRIB_UT_A}\n"
                               "i: ${TRIB_UT_NUM}\n"
                               "address: \"${TRIB_UT_UNSET:-localhost}:${TRIB_UT_NUM}\"\n";
    all_t a;
    trib_config_t *c = NULL;
    int rc = load(yaml, &a, &c);
    if (rc) {
        trib_config_print_errors(c, stderr);
    }
    assert_int_equal(rc, 0);
    assert_string_equal(a.s, "hello");
    assert_int_equal(a.i, 77);
    assert_string_equal(a.addr.text, "localhost:77");
    assert_int_equal(a.addr.port, 77);
    trib_config_free(c);
}

static void test_env_values(void **state)
{
    (void)state;
    setenv("TRIB_UT_A", "hello", 1);
    setenv("TRIB_UT_EMPTY", "", 1);
    unsetenv("TRIB_UT_UNSET");
    /* In flow collections, ${...} must be quoted: { and } are YAML indicators there. */
    static const char yaml[] = "deflist: ['x-${TRIB_UT_A}-y', '${TRIB_UT_UNSET:-dflt}',"
                               " \"${TRIB_UT_EMPTY:-e}\", '${TRIB_UT_EMPTY}', '$${TRIB_UT_A}']\n"
                               "map: {'${TRIB_UT_A}': \"$HOME and $ alone\"}\n"
                               "sec: {s: '${TRIB_UT_A}${TRIB_UT_A}'}\n";
    all_t a;
    trib_config_t *c = NULL;
    int rc = load(yaml, &a, &c);
    if (rc) {
        trib_config_print_errors(c, stderr);
    }
    assert_int_equal(rc, 0);
    assert_int_equal(a.deflist.count, 5);
    assert_string_equal(a.deflist.items[0], "x-hello-y");
    assert_string_equal(a.deflist.items[1], "dflt");
    assert_string_equal(a.deflist.items[2], "e");
    assert_string_equal(a.deflist.items[3], "");
    assert_string_equal(a.deflist.items[4], "${TRIB_UT_A}");
    /* Keys are not substituted; a lone $ stays. */
    assert_string_equal(a.map.items[0].key, "${TRIB_UT_A}");
    assert_string_equal(a.map.items[0].value, "$HOME and $ alone");
    assert_string_equal(a.sec.s, "hellohello");
    trib_config_free(c);

    assert_errors("s: ab${TRIB_UT_UNSET}\n"
                  "i: ${TRIB_UT_UNSET}\n"
                  "sec: {s: '${1BAD}'}\n"
                  "list: ['${TRIB_UT_A']\n"
                  "map: {k: '${}'}\n",
                  "t.yaml:1:4: error: environment variable 'TRIB_UT_UNSET' is not set, in 's'\n"
                  "t.yaml:2:4: error: environment variable 'TRIB_UT_UNSET' is not set, in 'i'\n"
                  "t.yaml:3:10: error: invalid variable reference '${1BAD}': expected ${NAME} "
                  "or ${NAME:-default}, in 'sec.s'\n"
                  "t.yaml:4:8: error: unterminated '${': missing '}', in 'list[0]'\n"
                  "t.yaml:5:10: error: invalid variable reference '${}': expected ${NAME} or "
                  "${NAME:-default}, in 'map.k'\n");
}

static void test_env_count_limit(void **state)
{
    (void)state;
    /* list takes at most 3 entries. */
    assert_errors("list: [a, b, c, d]\n",
                  "t.yaml:1:7: error: 'list' takes at most 3 entries, got 4\n");
}

static void test_sections(void **state)
{
    (void)state;
    all_t a;
    trib_config_t *c = NULL;
    /* A null section is an empty one: its defaults. */
    assert_int_equal(load("sec:\n", &a, &c), 0);
    assert_int_equal(a.sec.n, 5);
    trib_config_free(c);

    assert_errors("sec: 3\n", "t.yaml:1:6: error: expected a mapping for 'sec', got a scalar\n");
    assert_errors("sec: [1]\n",
                  "t.yaml:1:6: error: expected a mapping for 'sec', got a sequence\n");
    assert_errors("sec:\n  n: 11\n  x: 1\n",
                  "t.yaml:2:6: error: value '11' for 'sec.n' is above the maximum (10)\n"
                  "t.yaml:3:3: error: unknown key 'x' in sec\n");
    /* A bad value leaves the default behind. */
    assert_int_equal(load("sec: {n: 99}\n", &a, &c), TRIB_ECONFIG);
    assert_int_equal(a.sec.n, 5);
    trib_config_free(c);
}

static void test_list_of_sections(void **state)
{
    (void)state;
    assert_errors("items:\n"
                  "  - name: a\n"
                  "  - weight: 0\n"
                  "    in: {n: -1, t: 2}\n"
                  "  - x\n"
                  "  -\n",
                  "t.yaml:3:5: error: missing required key 'name' in items[1]\n"
                  "t.yaml:3:13: error: value '0' for 'items[1].weight' is below the minimum (1)\n"
                  "t.yaml:4:13: error: value '-1' for 'items[1].in.n' is below the minimum (0)\n"
                  "t.yaml:4:17: error: unknown key 't' in items[1].in\n"
                  "t.yaml:5:5: error: expected a mapping for 'items[2]', got a scalar\n"
                  "t.yaml:6:4: error: expected a mapping for 'items[3]', got an empty value\n");
    assert_errors("items: {name: a}\n",
                  "t.yaml:1:8: error: expected a sequence of mappings for 'items', got a "
                  "mapping\n");
    assert_errors("items: [{name: a}, {name: b}, {name: c}, {name: d}, {name: e}]\n",
                  "t.yaml:1:8: error: 'items' takes at most 4 entries, got 5\n");

    all_t a;
    trib_config_t *c = NULL;
    assert_int_equal(load("items: []\n", &a, &c), 0);
    assert_int_equal(a.nitems, 0);
    trib_config_free(c);
    assert_int_equal(load("items:\n", &a, &c), 0);
    assert_int_equal(a.nitems, 0);
    assert_null(a.items);
    trib_config_free(c);
}

/* Positions of loaded values, and errors added after loading. */
static void test_positions(void **state)
{
    (void)state;
    all_t a;
    trib_config_t *c = NULL;
    assert_int_equal(load("i: 3\n"
                          "items:\n"
                          "  - name: a\n"
                          "    in: {n: 2}\n"
                          "  - {name: a}\n"
                          "list: [x, y]\n",
                          &a, &c),
                     0);
    int line = 0, col = 0;
    assert_int_equal(trib_config_position(c, "i", &line, &col), 0);
    assert_int_equal(line, 1);
    assert_int_equal(col, 4);
    assert_int_equal(trib_config_position(c, "items[0].name", &line, &col), 0);
    assert_int_equal(line, 3);
    assert_int_equal(col, 11);
    assert_int_equal(trib_config_position(c, "items[0].in.n", &line, &col), 0);
    assert_int_equal(line, 4);
    assert_int_equal(col, 13);
    assert_int_equal(trib_config_position(c, "items[1]", &line, &col), 0);
    assert_int_equal(line, 5);
    assert_int_equal(col, 5);
    assert_int_equal(trib_config_position(c, "list[1]", &line, &col), 0);
    assert_int_equal(line, 6);
    assert_int_equal(col, 11);
    /* A default has no position; neither has a value that is not there. */
    assert_int_equal(trib_config_position(c, "u", &line, &col), TRIB_ENOT_FOUND);
    assert_int_equal(trib_config_position(c, "items[2].name", &line, &col), TRIB_ENOT_FOUND);
    /* A check made by the caller: the same name twice. */
    assert_int_equal(trib_config_position(c, "items[1].name", &line, &col), 0);
    trib_config_add_error(c, line, col, "the name '%s' is also items[0]'s", a.items[1].name);
    trib_config_add_error(c, 1, 1, "first by position");
    char *got = errors_of(c);
    assert_string_equal(got, "t.yaml:1:1: error: first by position\n"
                             "t.yaml:5:12: error: the name 'a' is also items[0]'s\n");
    free(got);
    assert_int_equal(trib_config_error_count(c), 2);
    trib_config_free(c);
}

static void test_maps(void **state)
{
    (void)state;
    all_t a;
    trib_config_t *c = NULL;
    assert_int_equal(load("map:\n  z: 1\n  a: two\n  m.n: ''\n", &a, &c), 0);
    assert_int_equal(a.map.count, 3);
    assert_string_equal(a.map.items[0].key, "z"); /* file order, not sorted */
    assert_string_equal(a.map.items[1].key, "a");
    assert_string_equal(a.map.items[2].value, "");
    assert_int_equal(a.map.line, 2);
    assert_int_equal(a.map.col, 3);
    assert_string_equal(trib_config_map_get(&a.map, "a"), "two");
    assert_null(trib_config_map_get(&a.map, "b"));
    trib_config_free(c);

    assert_errors("map:\n  a: 1\n  b: {c: 1}\n  a: 2\n  d: [1]\n  e:\n",
                  "t.yaml:3:6: error: expected a scalar for 'map.b', got a mapping\n"
                  "t.yaml:4:3: error: duplicate key 'a' in map (first defined at line 2, "
                  "column 3)\n"
                  "t.yaml:5:6: error: expected a scalar for 'map.d', got a sequence\n"
                  "t.yaml:6:5: error: missing value for 'map.e'\n");
    assert_errors("map: [a]\n",
                  "t.yaml:1:6: error: expected a mapping for 'map', got a sequence\n");
}

static void test_strlists(void **state)
{
    (void)state;
    assert_errors("list: one\n",
                  "t.yaml:1:7: error: expected a sequence of strings for 'list', got a scalar\n");
    assert_errors("list: [a, [b], {c: d}, ~]\n",
                  "t.yaml:1:7: error: 'list' takes at most 3 entries, got 4\n"
                  "t.yaml:1:11: error: expected a string for 'list[1]', got a sequence\n"
                  "t.yaml:1:16: error: expected a string for 'list[2]', got a mapping\n"
                  "t.yaml:1:24: error: missing value for 'list[3]'\n");
    all_t a;
    trib_config_t *c = NULL;
    assert_int_equal(load("list:\n  - '1'\n  - 2\n", &a, &c), 0);
    assert_int_equal(a.list.count, 2);
    assert_string_equal(a.list.items[1], "2");
    trib_config_free(c);
}

typedef struct commas {
    trib_config_strlist_t commas;
} commas_t;

static const trib_config_option_t commas_opts[] = {
    {TRIB_CONFIG_FIELD(commas_t, commas, STRLIST), .flags = TRIB_CONFIG_COMMAS, .max = "3"},
    TRIB_CONFIG_END,
};

static int load_commas(const char *yaml, commas_t *a, trib_config_t **c)
{
    return trib_config_load_string(c, "t.yaml", yaml, strlen(yaml), commas_opts, a);
}

static void assert_commas_error(const char *yaml, const char *want)
{
    commas_t a;
    trib_config_t *c = NULL;
    assert_int_equal(load_commas(yaml, &a, &c), TRIB_ECONFIG);
    char *got = errors_of(c);
    assert_string_equal(got, want);
    free(got);
    trib_config_free(c);
}

static void test_comma_strlists(void **state)
{
    (void)state;
    commas_t a;
    trib_config_t *c = NULL;
    assert_int_equal(load_commas("commas: \"a:1, b:2 ,c:3\"\n", &a, &c), 0);
    assert_int_equal(a.commas.count, 3);
    assert_string_equal(a.commas.items[0], "a:1");
    assert_string_equal(a.commas.items[1], "b:2");
    assert_string_equal(a.commas.items[2], "c:3");
    trib_config_free(c);
    c = NULL;
    assert_int_equal(load_commas("commas: [x, y]\n", &a, &c), 0);
    assert_int_equal(a.commas.count, 2);
    assert_string_equal(a.commas.items[1], "y");
    trib_config_free(c);
    c = NULL;
    assert_int_equal(load_commas("commas: solo\n", &a, &c), 0);
    assert_int_equal(a.commas.count, 1);
    assert_string_equal(a.commas.items[0], "solo");
    trib_config_free(c);
    assert_commas_error("commas: a,,b\n",
                        "t.yaml:1:9: error: empty item in the list 'commas' (item 2)\n");
    assert_commas_error("commas: \"a,b,\"\n",
                        "t.yaml:1:9: error: empty item in the list 'commas' (item 3)\n");
    assert_commas_error("commas: a,b,c,d\n",
                        "t.yaml:1:9: error: 'commas' takes at most 3 entries, got 4\n");
    assert_commas_error("commas: {a: b}\n",
                        "t.yaml:1:9: error: expected a sequence of strings or a "
                        "comma-separated string for 'commas', got a mapping\n");
}

static void test_secrets(void **state)
{
    (void)state;
    /* Bad secret values never appear in a message. */
    assert_errors("secret_num: 11\nsecret: [x]\n",
                  "t.yaml:1:13: error: value (secret) for 'secret_num' is above the maximum "
                  "(10)\n"
                  "t.yaml:2:9: error: expected a string for 'secret', got a sequence\n");
    assert_errors("secret_num: hunter2\n",
                  "t.yaml:1:13: error: invalid integer (secret) for 'secret_num'\n");

    all_t a;
    trib_config_t *c = NULL;
    assert_int_equal(load("secret: hunter2\nsecret_num: 3\n", &a, &c), 0);
    char *d = dump_of(all_opts, &a, 0);
    assert_null(strstr(d, "hunter2"));
    assert_non_null(strstr(d, "\nsecret: \"********\"\n"));
    assert_non_null(strstr(d, "\nsecret_num: \"********\"\n"));
    free(d);
    trib_config_free(c);

    /* Unset secrets say so, without a value. */
    assert_int_equal(load("", &a, &c), 0);
    d = dump_of(all_opts, &a, 0);
    assert_non_null(strstr(d, "\n# secret: (unset)\n"));
    free(d);
    trib_config_free(c);
}

static void test_many_errors_collected(void **state)
{
    (void)state;
    assert_errors("# every line is wrong\n"
                  "b: 2\n"
                  "i: 1000\n"
                  "e: yellow\n"
                  "sise: 1MiB\n"
                  "duration: 5\n"
                  "sec: {n: x, s: [1]}\n"
                  "b: true\n"
                  "items:\n"
                  "  - {weight: 2}\n",
                  "t.yaml:2:4: error: invalid boolean '2' for 'b': expected true or false\n"
                  "t.yaml:3:4: error: value '1000' for 'i' is above the maximum (100)\n"
                  "t.yaml:4:4: error: invalid value 'yellow' for 'e': expected red, green or "
                  "blue\n"
                  "t.yaml:5:1: error: unknown key 'sise' (did you mean 'size'?)\n"
                  "t.yaml:6:11: error: invalid duration '5' for 'duration': a unit is needed: ms, "
                  "s, m, h or d\n"
                  "t.yaml:7:10: error: invalid integer 'x' for 'sec.n'\n"
                  "t.yaml:7:16: error: expected a string for 'sec.s', got a sequence\n"
                  "t.yaml:8:1: error: duplicate key 'b' (first defined at line 2, column 1)\n"
                  "t.yaml:10:5: error: missing required key 'name' in items[0]\n");
}

static void test_unknown_keys(void **state)
{
    (void)state;
    assert_errors("adress: x\nsec: {nn: 1}\nzzzzzz: 1\nitems: [{nme: a, name: b}]\n",
                  "t.yaml:1:1: error: unknown key 'adress' (did you mean 'address'?)\n"
                  "t.yaml:2:7: error: unknown key 'nn' in sec (did you mean 'n'?)\n"
                  "t.yaml:3:1: error: unknown key 'zzzzzz'\n"
                  "t.yaml:4:10: error: unknown key 'nme' in items[0] (did you mean 'name'?)\n");
    /* Keys with odd characters are quoted safely on one line. */
    assert_errors("\"a\\nb\": 1\n", "t.yaml:1:1: error: unknown key 'a\\nb'\n");
    /* A key that is not a scalar. */
    assert_errors("? [a]\n: 1\ni: 3\n", "t.yaml:1:3: error: mapping keys must be scalars\n");
}

static void test_edit_distance(void **state)
{
    (void)state;
    assert_int_equal(cfg_edit_distance("topik", "topic", 3), 1);
    assert_int_equal(cfg_edit_distance("sotrage", "storage", 3), 1); /* transposition */
    assert_int_equal(cfg_edit_distance("LEVEL", "level", 3), 0);
    assert_int_equal(cfg_edit_distance("", "abc", 3), 3);
    assert_int_equal(cfg_edit_distance("abcdefgh", "zzzzzzzz", 3), 4); /* capped */
    const char *const cands[] = {"listen", "data_dir", "node_id", "storage"};
    assert_string_equal(cfg_suggest("lisen", cands, 4), "listen");
    assert_string_equal(cfg_suggest("node-id", cands, 4), "node_id");
    assert_string_equal(cfg_suggest("sotrage", cands, 4), "storage");
    assert_null(cfg_suggest("foo", cands, 4));
    assert_null(cfg_suggest("x", cands, 4));
}

static void test_yaml_errors(void **state)
{
    (void)state;
    assert_errors("i: 1\n  j: 2\n",
                  "t.yaml:2:4: error: mapping values are not allowed in this context\n");
    assert_errors("i: [1, 2\n",
                  "t.yaml:2:1: error: did not find expected ',' or ']' (while parsing a flow "
                  "sequence at line 1, column 4)\n");
    assert_errors("i: 1\nsec:\n\tn: 2\n",
                  "t.yaml:3:1: error: found character that cannot start any token (while "
                  "scanning for the next token); a tab: YAML indents with spaces only\n");
    assert_errors("i: \"abc\n",
                  "t.yaml:2:1: error: found unexpected end of stream (while scanning a quoted "
                  "scalar at line 1, column 4)\n");
    assert_errors("i: 1\n---\ni: 2\n",
                  "t.yaml:2:1: error: a second YAML document: a configuration file holds one\n");
    assert_errors("- 1\n", "t.yaml:1:1: error: expected a mapping at the top level, got a "
                           "sequence\n");
    assert_errors("hello\n", "t.yaml:1:1: error: expected a mapping at the top level, got a "
                             "scalar\n");
    assert_errors("s: \"a\\0b\"\n", "t.yaml:1:4: error: NUL character in the value of 's'\n");
    /* The reader points at the offending byte: the one after \xc3. */
    assert_errors("i: 1\ns: \"\xc3\x28\"\n", "t.yaml:2:6: error: invalid trailing UTF-8 octet "
                                             "(byte 0x28)\n");
    /* On a syntax error the struct still holds defaults. */
    all_t a;
    trib_config_t *c = NULL;
    assert_int_equal(load("i: [\n", &a, &c), TRIB_ECONFIG);
    assert_int_equal(a.i, -7);
    assert_int_equal(a.nitems, 0);
    trib_config_free(c);
}

static void test_anchors_refused(void **state)
{
    (void)state;
    assert_errors("sec: &s {n: 1}\nitems: [{name: a, in: *s}]\ns: &x str\n",
                  "t.yaml:1:6: error: anchors are not supported (&s); write the value out\n"
                  "t.yaml:2:23: error: aliases are not supported (*s); write the value out\n"
                  "t.yaml:3:4: error: anchors are not supported (&x); write the value out\n");
}

static void test_missing_required_positions(void **state)
{
    (void)state;
    /* The enclosing mapping: the first key of a block mapping, the brace of a flow one. */
    assert_errors("items:\n"
                  "  - weight: 2\n"
                  "  - {weight: 3}\n"
                  "  - weight: 4\n"
                  "    name: ok\n",
                  "t.yaml:2:5: error: missing required key 'name' in items[0]\n"
                  "t.yaml:3:5: error: missing required key 'name' in items[1]\n");
}

static void test_file_load(void **state)
{
    (void)state;
    char path[] = "/tmp/trib_config_test_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    static const char yaml[] = "i: 3\nsec:\n  n: 12\n";
    assert_int_equal(write(fd, yaml, sizeof(yaml) - 1), (ssize_t)(sizeof(yaml) - 1));
    close(fd);

    all_t a;
    trib_config_t *c = NULL;
    assert_int_equal(trib_config_load_file(&c, path, all_opts, &a), TRIB_ECONFIG);
    assert_int_equal(a.i, 3);
    assert_int_equal(trib_config_error_count(c), 1);
    const trib_error_t *e = trib_config_error(c, 0);
    assert_string_equal(e->file, path);
    assert_int_equal(e->line, 3);
    assert_int_equal(e->col, 6);
    assert_int_equal(e->code, TRIB_ECONFIG);
    assert_null(trib_config_error(c, 1));
    trib_config_free(c);
    unlink(path);

    /* A missing file: one error naming it, defaults in the struct. */
    assert_int_equal(trib_config_load_file(&c, path, all_opts, &a), TRIB_ECONFIG);
    char *got = errors_of(c);
    char want[256];
    snprintf(want, sizeof(want), "%s: error: cannot open: No such file or directory\n", path);
    assert_string_equal(got, want);
    assert_int_equal(a.i, -7);
    free(got);
    trib_config_free(c);
    trib_config_free(NULL);
    assert_int_equal(trib_config_error_count(NULL), 0);
}

static void test_dump_round_trip(void **state)
{
    (void)state;
    static const char yaml[] = "b: false\n"
                               "i: 0\n"
                               "d: 0.3\n"
                               "s: \"q\\\"\\\\\\t\"\n"
                               "duration: 36h\n"
                               "size: 2000\n"
                               "list: [\"a b\", '#c']\n"
                               "map: {\"odd key\": 'x: y', plain.key: v}\n"
                               "items: [{name: one, in: {n: 0}}, {name: two}]\n";
    all_t a;
    trib_config_t *c = NULL;
    int rc0 = load(yaml, &a, &c);
    if (rc0) {
        trib_config_print_errors(c, stderr);
    }
    assert_int_equal(rc0, 0);
    char *d1 = dump_of(all_opts, &a, 0);
    static const char want[] = "b: false\n"
                               "i: 0\n"
                               "u: 42\n"
                               "d: 0.3\n"
                               "s: \"q\\\"\\\\\\t\"\n"
                               "e: green\n"
                               "duration: 1d12h\n"
                               "size: 2kB\n"
                               "address: \"127.0.0.1:9092\"\n"
                               "list:\n"
                               "  - \"a b\"\n"
                               "  - \"#c\"\n"
                               "map:\n"
                               "  \"odd key\": \"x: y\"\n"
                               "  plain.key: \"v\"\n"
                               "sec:\n"
                               "  n: 5\n"
                               "  s: \"inner\"\n"
                               "items:\n"
                               "  - name: \"one\"\n"
                               "    weight: 1\n"
                               "    in:\n"
                               "      n: 0\n"
                               "      s: \"inner\"\n"
                               "  - name: \"two\"\n"
                               "    weight: 1\n"
                               "    in:\n"
                               "      n: 5\n"
                               "      s: \"inner\"\n"
                               "# secret: (unset)\n"
                               "secret_num: \"********\"\n"
                               "deflist:\n"
                               "  - \"x\"\n"
                               "  - \"y z\"\n"
                               "defmap:\n"
                               "  linger.ms: \"5\"\n"
                               "  acks: \"all\"\n"
                               "# noenum: (unset)\n";
    assert_string_equal(d1, want);

    /* Without the secret, what prints loads back to the same. */
    all_t b;
    trib_config_t *c2 = NULL;
    char *nosecret = strstr(d1, "secret_num:");
    memcpy(nosecret, "#", 1);
    int rc = trib_config_load_string(&c2, "dump", d1, strlen(d1), all_opts, &b);
    if (rc) {
        trib_config_print_errors(c2, stderr);
    }
    assert_int_equal(rc, 0);
    memcpy(nosecret, "s", 1);
    char *d2 = dump_of(all_opts, &b, 0);
    assert_string_equal(d2, d1);
    free(d1);
    free(d2);
    trib_config_free(c);
    trib_config_free(c2);

    /* Descriptions as comments. */
    assert_int_equal(load("", &a, &c), 0);
    char *d3 = dump_of(all_opts, &a, TRIB_CONFIG_DUMP_DESC);
    assert_memory_equal(d3, "# a flag\nb: true\n", 16);
    free(d3);
    trib_config_free(c);
}

/* A plugin's flat option table, applied to a map loaded earlier. */
typedef struct plugin_conf {
    const char *path;
    uint64_t rotate;
    int64_t retries;
    const char *token;
} plugin_conf_t;

static const trib_config_option_t plugin_opts[] = {
    {TRIB_CONFIG_FIELD(plugin_conf_t, path, STRING), .flags = TRIB_CONFIG_REQUIRED},
    {TRIB_CONFIG_FIELD(plugin_conf_t, rotate, SIZE), .def = "1GiB"},
    {TRIB_CONFIG_FIELD(plugin_conf_t, retries, INT), .def = "3", .min = "0", .max = "10"},
    {TRIB_CONFIG_FIELD(plugin_conf_t, token, STRING), .flags = TRIB_CONFIG_SECRET},
    TRIB_CONFIG_END,
};

static void test_apply_map(void **state)
{
    (void)state;
    all_t a;
    plugin_conf_t p;
    trib_config_t *c = NULL;
    assert_int_equal(trib_config_schema_check(plugin_opts, NULL), 0);

    assert_int_equal(load("map:\n  path: /tmp/x\n  rotate: 2MiB\n", &a, &c), 0);
    assert_int_equal(trib_config_apply_map(c, &a.map, "map", plugin_opts, &p), 0);
    assert_string_equal(p.path, "/tmp/x");
    assert_int_equal(p.rotate, 2u << 20);
    assert_int_equal(p.retries, 3);
    assert_null(p.token);
    trib_config_free(c);

    assert_int_equal(load("i: 1\nmap:\n  pth: /tmp/x\n  retries: 11\n  token: 5ecret\n", &a, &c),
                     0);
    assert_int_equal(trib_config_apply_map(c, &a.map, "sinks[0].options", plugin_opts, &p),
                     TRIB_ECONFIG);
    char *got = errors_of(c);
    assert_string_equal(got, "t.yaml:3:3: error: unknown key 'pth' in sinks[0].options (did you "
                             "mean 'path'?); valid keys: path, rotate, retries, token\n"
                             "t.yaml:3:3: error: missing required key 'path' in "
                             "sinks[0].options\n"
                             "t.yaml:4:12: error: value '11' for 'sinks[0].options.retries' is "
                             "above the maximum (10)\n");
    assert_int_equal(p.retries, 3);
    assert_string_equal(p.token, "5ecret");
    free(got);
    trib_config_free(c);
}

static void test_schema_check(void **state)
{
    (void)state;
    typedef struct s {
        int64_t a;
        int64_t b;
        int e;
        bool f;
        inner_t in;
        trib_config_strlist_t l;
    } s_t;
    static const char *const none[] = {NULL};
    static const struct {
        trib_config_option_t rows[3];
        const char *msg;
    } bad[] = {
        {{{TRIB_CONFIG_FIELD(s_t, a, INT)}, {TRIB_CONFIG_KEY("a", s_t, b, INT)}, TRIB_CONFIG_END},
         "'a': defined twice"},
        {{{TRIB_CONFIG_FIELD(s_t, a, INT), .def = "x"}, TRIB_CONFIG_END},
         "option 'a': schema default: invalid integer 'x' for 'a'"},
        {{{TRIB_CONFIG_FIELD(s_t, a, INT), .def = "20", .max = "10"}, TRIB_CONFIG_END},
         "option 'a': schema default: value '20' for 'a' is above the maximum (10)"},
        {{{TRIB_CONFIG_FIELD(s_t, e, ENUM), .def = "red", .choices = none}, TRIB_CONFIG_END},
         "'e': enum without choices"},
        {{{TRIB_CONFIG_FIELD(s_t, e, ENUM), .def = "pink", .choices = colors}, TRIB_CONFIG_END},
         "option 'e': schema default: invalid value 'pink' for 'e': expected red, green or "
         "blue"},
        {{{TRIB_CONFIG_FIELD(s_t, a, INT), .def = "1", .flags = TRIB_CONFIG_REQUIRED},
          TRIB_CONFIG_END},
         "'a': required and with a default"},
        {{{TRIB_CONFIG_FIELD(s_t, a, INT), .min = "5", .max = "1"}, TRIB_CONFIG_END},
         "'a': min is above max"},
        {{{TRIB_CONFIG_FIELD(s_t, a, INT), .min = "1s"}, TRIB_CONFIG_END},
         "'a': min/max do not parse"},
        {{{TRIB_CONFIG_FIELD(s_t, f, BOOL), .max = "1"}, TRIB_CONFIG_END},
         "'f': this type takes no min/max"},
        {{{TRIB_CONFIG_SECTION(s_t, in, NULL)}, TRIB_CONFIG_END}, "'in': no sub-table"},
        {{{TRIB_CONFIG_FIELD(s_t, l, STRLIST), .def = "[a"}, TRIB_CONFIG_END},
         "option 'l': schema default: cannot parse the default of 'l'"},
        {{{.name = "z", .type = (trib_config_type_t)99}, TRIB_CONFIG_END}, "'z': unknown type 99"},
    };
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        trib_error_t err;
        assert_int_equal(trib_config_schema_check(bad[k].rows, &err), -EINVAL);
        if (strcmp(err.msg, bad[k].msg) != 0) {
            print_error("case %zu: %s\n", k, err.msg);
        }
        assert_string_equal(err.msg, bad[k].msg);
    }
}

static void test_limits(void **state)
{
    (void)state;
    all_t a;
    trib_config_t *c = NULL;

    /* More errors than the cap: the rest are counted in one last line. */
    size_t cap = 64 * 1024;
    char *yaml = malloc(cap);
    size_t off = 0;
    for (int k = 0; k < 150; k++) {
        off += (size_t)snprintf(yaml + off, cap - off, "unknown_%d: 1\n", k);
    }
    assert_int_equal(load(yaml, &a, &c), TRIB_ECONFIG);
    assert_int_equal(trib_config_error_count(c), TRIB_CONFIG_MAX_ERRORS);
    char *got = errors_of(c);
    assert_non_null(strstr(got, "t.yaml: error: too many errors; 50 more not shown\n"));
    free(got);
    trib_config_free(c);

    /* Nesting deeper than the bound. */
    off = 0;
    off += (size_t)snprintf(yaml + off, cap - off, "map: ");
    for (int k = 0; k < TRIB_CONFIG_MAX_DEPTH + 5; k++) {
        yaml[off++] = '[';
    }
    yaml[off] = '\0';
    assert_int_equal(load(yaml, &a, &c), TRIB_ECONFIG);
    got = errors_of(c);
    assert_non_null(strstr(got, "nesting deeper than 64 levels"));
    free(got);
    trib_config_free(c);

    /* A big map: duplicates found by hashing, all entries kept. */
    free(yaml);
    cap = 1 << 20;
    yaml = malloc(cap);
    off = (size_t)snprintf(yaml, cap, "map:\n");
    for (int k = 0; k < 20000; k++) {
        off += (size_t)snprintf(yaml + off, cap - off, "  key%d: %d\n", k, k);
    }
    off += (size_t)snprintf(yaml + off, cap - off, "  key123: again\n");
    assert_int_equal(load(yaml, &a, &c), TRIB_ECONFIG);
    assert_int_equal(a.map.count, 20000);
    got = errors_of(c);
    assert_string_equal(got, "t.yaml:20002:3: error: duplicate key 'key123' in map (first "
                             "defined at line 125, column 3)\n");
    free(got);
    trib_config_free(c);
    free(yaml);

    /* Too big to load at all. */
    assert_int_equal(
        trib_config_load_string(&c, "big", "", (size_t)TRIB_CONFIG_MAX_BYTES + 1, all_opts, &a),
        TRIB_ECONFIG);
    assert_int_equal(a.i, -7);
    trib_config_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_schema_is_valid),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_every_type),
        cmocka_unit_test(test_bool_forms),
        cmocka_unit_test(test_numbers_and_bounds),
        cmocka_unit_test(test_enums),
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_addresses),
        cmocka_unit_test(test_env),
        cmocka_unit_test(test_env_values),
        cmocka_unit_test(test_env_count_limit),
        cmocka_unit_test(test_sections),
        cmocka_unit_test(test_list_of_sections),
        cmocka_unit_test(test_positions),
        cmocka_unit_test(test_maps),
        cmocka_unit_test(test_strlists),
        cmocka_unit_test(test_comma_strlists),
        cmocka_unit_test(test_secrets),
        cmocka_unit_test(test_many_errors_collected),
        cmocka_unit_test(test_unknown_keys),
        cmocka_unit_test(test_edit_distance),
        cmocka_unit_test(test_yaml_errors),
        cmocka_unit_test(test_anchors_refused),
        cmocka_unit_test(test_missing_required_positions),
        cmocka_unit_test(test_file_load),
        cmocka_unit_test(test_dump_round_trip),
        cmocka_unit_test(test_apply_map),
        cmocka_unit_test(test_schema_check),
        cmocka_unit_test(test_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
