/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Agent events, parsers and filters: JSON escaping (control characters,
 * bad UTF-8), rendering, templates, regex/json/logfmt/syslog parsers, time
 * formats, grep/exclude/set/remove/rename.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "event.h"
#include "filter/filter.h"
#include "parse/parse.h"
#include "regex.h"

static char *json_str(const char *s, size_t n)
{
    agent_sbuf_t b = {0};
    agent_sbuf_json_str(&b, s, n);
    agent_sbuf_putc(&b, '\0');
    return b.p;
}

static void test_json_escape(void **state)
{
    (void)state;
    char *s = json_str("a\"b\\c\n\t\x01", 8);
    assert_string_equal(s, "a\\\"b\\\\c\\n\\t\\u0001");
    free(s);
    s = json_str("caf\xc3\xa9 \xe2\x82\xac", 9); /* valid UTF-8 passes */
    assert_string_equal(s, "caf\xc3\xa9 \xe2\x82\xac");
    free(s);
    /* long runs (the 16-byte scan) with each kind of byte that stops it */
    const char *in = "0123456789abcdefghij\x01KLMNOPQRSTUVWXYZ0123\"456789abcdefghijklm\\"
                     "nopqrstuvwxyzABCDEFG\xc3\xa9HIJKLMNOPQRSTUVWXYZ\x7f"
                     "0123456789abcdef";
    s = json_str(in, strlen(in));
    assert_string_equal(s, "0123456789abcdefghij\\u0001KLMNOPQRSTUVWXYZ0123\\\"456789abcdefghijklm"
                           "\\\\nopqrstuvwxyzABCDEFG\xc3\xa9HIJKLMNOPQRSTUVWXYZ\x7f"
                           "0123456789abcdef");
    free(s);
    s = json_str("x\xff\xc3y\xed\xa0\x80", 7); /* bad bytes, a truncated pair, a surrogate */
    assert_string_equal(s, "x\\ufffd\\ufffdy\\ufffd\\ufffd\\ufffd");
    free(s);
}

/* A small deterministic generator for the escaping comparison. */
static uint32_t rnd(uint32_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 17;
    *x ^= *x << 5;
    return *x;
}

/*
 * Strings of up to 300 bytes mixing plain runs with every kind of byte the
 * 16-byte scan stops at, escaped whole (full blocks, stores past each stop)
 * and in pieces of under 16 bytes (each a short last block). Pieces end
 * before an ASCII byte, where no UTF-8 sequence can continue, so both must
 * give the same text.
 */
static void test_json_escape_blocks(void **state)
{
    (void)state;
    static const char *const bits[] = {
        "a",
        "bcdefghijklmnopqrstu",
        "\"",
        "\\",
        "\n",
        "\x01",
        "\x1f",
        "\x7f",
        "\xc3\xa9",
        "\xe2\x82\xac",
        "\xf0\x9f\x98\x80",
        "\xff",
        "\xc3",
        "\xed\xa0\x80",
        " ",
    };
    uint32_t x = 2463534242u;
    char in[400];
    for (int iter = 0; iter < 5000; iter++) {
        size_t n = 0;
        size_t want = rnd(&x) % 300;
        while (n < want) {
            const char *b = bits[rnd(&x) % (sizeof(bits) / sizeof(bits[0]))];
            size_t bl = strlen(b);
            if (b[0] == 'a' || b[0] == 'b') {
                bl = 1 + rnd(&x) % bl; /* plain runs of varied length */
            }
            memcpy(in + n, b, bl);
            n += bl;
        }
        char *whole = json_str(in, n);
        agent_sbuf_t pieces = {0};
        size_t i = 0;
        while (i < n) {
            size_t j = i + 1;
            size_t cut = n;
            for (; j < n && j - i < 16; j++) {
                if ((unsigned char)in[j] < 0x80) {
                    cut = j;
                }
            }
            if (j >= n) {
                cut = n;
            } else if (cut == n) {
                cut = j; /* no ASCII byte in reach: a longer piece */
                while (cut < n && (unsigned char)in[cut] >= 0x80) {
                    cut++;
                }
            }
            agent_sbuf_json_str(&pieces, in + i, cut - i);
            i = cut;
        }
        agent_sbuf_putc(&pieces, '\0');
        assert_string_equal(whole, pieces.p);
        free(whole);
        agent_sbuf_fini(&pieces);
    }
}

/* Formatting repeats and moves across milliseconds and seconds (both cached). */
static void test_format_time(void **state)
{
    (void)state;
    static const struct {
        int64_t ms;
        const char *want;
    } cases[] = {
        {1764172800123, "2025-11-26T16:00:00.123Z"},
        {1764172800123, "2025-11-26T16:00:00.123Z"},
        {1764172800999, "2025-11-26T16:00:00.999Z"},
        {1764172801000, "2025-11-26T16:00:01.000Z"},
        {1764172800123, "2025-11-26T16:00:00.123Z"},
        {0, "1970-01-01T00:00:00.000Z"},
        {-1, "1969-12-31T23:59:59.999Z"},
        /* leap days, century rules and the ends of the four-digit years */
        {951782400000, "2000-02-29T00:00:00.000Z"},
        {4107542399999, "2100-02-28T23:59:59.999Z"},
        {4107542400000, "2100-03-01T00:00:00.000Z"},
        {1709164800500, "2024-02-29T00:00:00.500Z"},
        {-62135596800000, "0001-01-01T00:00:00.000Z"},
        {253402300799999, "9999-12-31T23:59:59.999Z"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[32];
        size_t n = agent_format_time(cases[i].ms, out);
        assert_int_equal(n, strlen(cases[i].want));
        assert_string_equal(out, cases[i].want);
    }
}

static void init_event(agent_event_t *ev, agent_sbuf_t *scratch, const char *msg)
{
    memset(ev, 0, sizeof(*ev));
    ev->ts_ms = 1764172800123; /* 2025-11-26T16:00:00.123Z */
    ev->scratch = scratch;
    scratch->len = 0;
    assert_int_equal(agent_sbuf_reserve(scratch, strlen(msg) * 2 + 1024), 0);
    agent_event_set(ev, "host", 4, "h1", 2, false);
    agent_event_set(ev, "message", 7, msg, strlen(msg), false);
}

static void test_render_and_fields(void **state)
{
    (void)state;
    agent_sbuf_t scratch = {0}, out = {0};
    agent_event_t ev;
    init_event(&ev, &scratch, "hello \"world\"");
    agent_event_set(&ev, "n", 1, "42", 2, true);
    agent_event_set(&ev, "host", 4, "h2", 2, false); /* replaces */
    agent_event_render(&ev, &out);
    agent_sbuf_putc(&out, '\0');
    assert_string_equal(out.p, "{\"@timestamp\":\"2025-11-26T16:00:00.123Z\",\"host\":\"h2\","
                               "\"message\":\"hello \\\"world\\\"\",\"n\":42}");
    /* a name marked plain is copied as it is: the same object */
    agent_event_get(&ev, "host", 4)->plain_name = true;
    agent_event_get(&ev, "message", 7)->plain_name = true;
    out.len = 0;
    agent_event_render(&ev, &out);
    agent_sbuf_putc(&out, '\0');
    assert_string_equal(out.p, "{\"@timestamp\":\"2025-11-26T16:00:00.123Z\",\"host\":\"h2\","
                               "\"message\":\"hello \\\"world\\\"\",\"n\":42}");
    agent_event_remove(&ev, "host", 4);
    assert_null(agent_event_get(&ev, "host", 4));
    assert_int_equal(ev.nfields, 2);
    out.len = 0;
    ev.partial = true;
    agent_event_render(&ev, &out);
    agent_sbuf_putc(&out, '\0');
    assert_non_null(strstr(out.p, ",\"partial\":true}"));
    /* the event is full at AGENT_MAX_FIELDS */
    static char names[AGENT_MAX_FIELDS + 2][16];
    size_t added = 0;
    for (int i = 0; i < AGENT_MAX_FIELDS + 2; i++) {
        snprintf(names[i], sizeof(names[i]), "f%d", i);
        added += agent_event_set(&ev, names[i], strlen(names[i]), "v", 1, false);
    }
    assert_int_equal(ev.nfields, AGENT_MAX_FIELDS);
    assert_int_equal(added, AGENT_MAX_FIELDS - 2);
    agent_sbuf_fini(&scratch);
    agent_sbuf_fini(&out);
}

static void test_templates(void **state)
{
    (void)state;
    agent_sbuf_t scratch = {0}, out = {0};
    agent_event_t ev;
    init_event(&ev, &scratch, "m");
    agent_event_set(&ev, "method", 6, "GET", 3, false);
    agent_event_set(&ev, "svc", 3, "\"a/b c\"", 7, true); /* a raw JSON string */
    agent_template_render(&ev, "web.{method}", true, &out);
    agent_sbuf_putc(&out, '\0');
    assert_string_equal(out.p, "web.GET");
    out.len = 0;
    agent_template_render(&ev, "x.{svc}.{missing}", true, &out);
    agent_sbuf_putc(&out, '\0');
    assert_string_equal(out.p, "x.a_b_c._");
    out.len = 0;
    agent_template_render(&ev, "{svc}-{missing}", false, &out); /* a key: verbatim */
    agent_sbuf_putc(&out, '\0');
    assert_string_equal(out.p, "a/b c-");
    agent_sbuf_fini(&scratch);
    agent_sbuf_fini(&out);
}

/* Nested fields ({http.status} in a JSON object field) and defaults ({f:-d}). */
static void test_templates_nested(void **state)
{
    (void)state;
    agent_sbuf_t scratch = {0}, out = {0};
    agent_event_t ev;
    init_event(&ev, &scratch, "m");
    const char *http =
        "{\"method\": \"GET\", \"req\": {\"path\": \"/a\\\"b\", \"n\": [1, {\"x\": 2}]},"
        " \"status\": 503, \"gone\": null}";
    agent_event_set(&ev, "http", 4, http, strlen(http), true);
    agent_event_set(&ev, "a.b", 3, "dotted", 6, false); /* a field named with a dot wins */
    agent_event_set(&ev, "a", 1, "{\"b\": \"member\"}", 15, true);
    static const struct {
        const char *tmpl;
        bool topic;
        const char *want;
    } cases[] = {
        {"{http.status}", false, "503"},
        {"{http.method}-{http.status}", true, "GET-503"},
        {"{http.req.path}", false, "/a\"b"},        /* a JSON string, decoded */
        {"{http.req.n}", false, "[1, {\"x\": 2}]"}, /* a nested value as its JSON */
        {"{http.nope}", true, "_"},
        {"{http.gone:-none}", false, "none"},    /* null is missing */
        {"{http.status.deeper:-d}", false, "d"}, /* a number has no members */
        {"{level:-unknown}", true, "unknown"},
        {"{level:-}", false, ""},
        {"{http.method:-x}", false, "GET"},
        {"{a.b}", false, "dotted"},
        {"{message:-x}.{host}", false, "m.h1"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        out.len = 0;
        agent_template_render(&ev, cases[i].tmpl, cases[i].topic, &out);
        agent_sbuf_putc(&out, '\0');
        assert_string_equal(out.p, cases[i].want);
    }
    /* malformed JSON in the object field: nothing, never a read past it */
    agent_event_set(&ev, "bad", 3, "{\"k\": \"unterminated", 18, true);
    out.len = 0;
    agent_template_render(&ev, "{bad.k:-fallback}", false, &out);
    agent_sbuf_putc(&out, '\0');
    assert_string_equal(out.p, "fallback");
    agent_sbuf_fini(&scratch);
    agent_sbuf_fini(&out);
}

/* types: captures converted to JSON numbers, booleans and RFC 3339 times. */
static void test_types(void **state)
{
    (void)state;
    char out[64];
    static const struct {
        int type;
        const char *in, *fmt, *want;
    } ok[] = {
        {AGENT_TYPE_INT, "200", NULL, "200"},
        {AGENT_TYPE_INT, " -42 ", NULL, "-42"},
        {AGENT_TYPE_INT, "007", NULL, "7"},
        {AGENT_TYPE_FLOAT, "0.25", NULL, "0.25"},
        {AGENT_TYPE_FLOAT, "1e3", NULL, "1000"},
        {AGENT_TYPE_FLOAT, "12", NULL, "12"},
        {AGENT_TYPE_BOOL, "true", NULL, "true"},
        {AGENT_TYPE_BOOL, "Yes", NULL, "true"},
        {AGENT_TYPE_BOOL, "0", NULL, "false"},
        {AGENT_TYPE_BOOL, "OFF", NULL, "false"},
        {AGENT_TYPE_TIMESTAMP, "2026-11-26T10:00:00+01:00", "rfc3339",
         "\"2026-11-26T09:00:00.000Z\""},
        {AGENT_TYPE_TIMESTAMP, "26/Nov/2026:10:00:00 +0000", "%d/%b/%Y:%H:%M:%S %z",
         "\"2026-11-26T10:00:00.000Z\""},
        {AGENT_TYPE_TIMESTAMP, "1795687200", "unix", "\"2026-11-26T10:00:00.000Z\""},
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        size_t n =
            agent_convert(ok[i].type, ok[i].in, strlen(ok[i].in), ok[i].fmt, out, sizeof(out));
        assert_int_equal(n, strlen(ok[i].want));
        assert_memory_equal(out, ok[i].want, n);
    }
    static const struct {
        int type;
        const char *in;
    } bad[] = {
        {AGENT_TYPE_INT, "12a"},
        {AGENT_TYPE_INT, ""},
        {AGENT_TYPE_INT, "1.5"},
        {AGENT_TYPE_INT, "99999999999999999999"},
        {AGENT_TYPE_FLOAT, "x"},
        {AGENT_TYPE_FLOAT, "nan"},
        {AGENT_TYPE_FLOAT, "inf"},
        {AGENT_TYPE_BOOL, "maybe"},
        {AGENT_TYPE_TIMESTAMP, "yesterday"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(
            agent_convert(bad[i].type, bad[i].in, strlen(bad[i].in), "rfc3339", out, sizeof(out)),
            0);
    }
}

static agent_regex_t *re(const char *p)
{
    char err[128];
    size_t off;
    agent_regex_t *r = agent_regex_new(p, 100000, 10000, err, sizeof(err), &off);
    assert_non_null(r);
    return r;
}

static const char *text(agent_event_t *ev, const char *name)
{
    static char buf[256];
    agent_field_t *f = agent_event_get(ev, name, strlen(name));
    if (f == NULL) {
        return NULL;
    }
    const char *s;
    size_t n;
    agent_field_text(ev, f, &s, &n);
    snprintf(buf, sizeof(buf), "%.*s", (int)n, s);
    return buf;
}

/* A regex step with types, run through agent_parse_all: converted values,
   and a failed step (no match, or a value not of its type) marks the event. */
static void test_parse_types_and_errors(void **state)
{
    (void)state;
    agent_sbuf_t scratch = {0}, out = {0};
    agent_event_t ev;
    trib_config_pair_t types[] = {
        {.key = "status", .value = "int"},
        {.key = "ok", .value = "bool"},
        {.key = "at", .value = "timestamp"},
    };
    agent_parse_conf_t p = {
        .type = AGENT_PARSE_REGEX,
        .field = "message",
        .time_format = "rfc3339",
        .types = {.items = types, .count = 3},
        .re = re("^(?<status>\\S+) (?<ok>\\S+) (?<at>\\S+)$"),
        .type_codes = {AGENT_TYPE_INT, AGENT_TYPE_BOOL, AGENT_TYPE_TIMESTAMP},
    };
    agent_pipeline_conf_t pc = {.parse = &p, .nparse = 1};
    init_event(&ev, &scratch, "200 yes 2026-11-26T10:00:00Z");
    assert_int_equal(agent_parse_all(&pc, &ev), 0);
    agent_event_render(&ev, &out);
    agent_sbuf_putc(&out, '\0');
    for (const char *const *w = (const char *const[]){"\"status\":200", "\"ok\":true",
                                                      "\"at\":\"2026-11-26T10:00:00.000Z\"", NULL};
         *w != NULL; w++) {
        const char *at = strstr(out.p, *w); /* a JSON value, not a string */
        assert_non_null(at);
        assert_true(at[strlen(*w)] == ',' || at[strlen(*w)] == '}');
    }
    assert_null(strstr(out.p, "parse_error"));
    /* not a number: the step fails and marks the event */
    init_event(&ev, &scratch, "abc yes 2026-11-26T10:00:00Z");
    assert_int_equal(agent_parse_all(&pc, &ev), 1);
    out.len = 0;
    agent_event_render(&ev, &out);
    agent_sbuf_putc(&out, '\0');
    assert_non_null(strstr(out.p, "\"parse_error\":true"));
    assert_non_null(strstr(out.p, "\"parse_error_by\":\"regex\""));
    /* no match: marked, the message kept */
    init_event(&ev, &scratch, "nothing");
    assert_int_equal(agent_parse_all(&pc, &ev), 1);
    assert_string_equal(text(&ev, "parse_error_by"), "regex");
    assert_string_equal(text(&ev, "message"), "nothing");
    agent_regex_free(p.re);
    agent_sbuf_fini(&scratch);
    agent_sbuf_fini(&out);
}

static void test_parse_regex(void **state)
{
    (void)state;
    agent_sbuf_t scratch = {0};
    agent_event_t ev;
    const char *line =
        "10.0.0.1 - - [26/Nov/2026:10:00:00 +0100] \"GET /api?q=1 HTTP/1.1\" 404 512";
    init_event(&ev, &scratch, line);
    agent_parse_conf_t p = {
        .type = AGENT_PARSE_REGEX,
        .field = "message",
        .time_field = "time",
        .time_format = "%d/%b/%Y:%H:%M:%S %z",
        .re = re("^(?<client>\\S+) \\S+ \\S+ \\[(?<time>[^\\]]+)\\] \"(?<method>\\S+) "
                 "(?<path>\\S+)[^\"]*\" (?<status>\\d{3}) (?<bytes>\\d+)(?<opt> x)?"),
    };
    assert_int_equal(agent_parse_apply(&p, &ev), 0);
    assert_string_equal(text(&ev, "client"), "10.0.0.1");
    assert_string_equal(text(&ev, "method"), "GET");
    assert_string_equal(text(&ev, "path"), "/api?q=1");
    assert_string_equal(text(&ev, "status"), "404");
    assert_null(agent_event_get(&ev, "opt", 3)); /* an unset group adds nothing */
    assert_int_equal(ev.ts_ms, 1795687200000LL - 3600000LL);
    init_event(&ev, &scratch, "no match here");
    assert_int_equal(agent_parse_apply(&p, &ev), 1);
    assert_int_equal(ev.nfields, 2);
    agent_regex_free(p.re);
    /* catastrophic backtracking hits the match limit: an error, not a hang */
    char err[128];
    size_t off;
    agent_regex_t *bad = agent_regex_new("^(a+)+$", 1000, 1000, err, sizeof(err), &off);
    assert_non_null(bad);
    char s[64];
    memset(s, 'a', 40);
    s[40] = 'b';
    assert_true(agent_regex_match(bad, s, 41) < 0);
    agent_regex_free(bad);
    assert_null(agent_regex_new("(?<x", 1000, 1000, err, sizeof(err), &off));
    assert_int_equal(off, 4);
    agent_sbuf_fini(&scratch);
}

static void test_parse_json(void **state)
{
    (void)state;
    agent_sbuf_t scratch = {0}, out = {0};
    agent_event_t ev;
    agent_parse_conf_t p = {
        .type = AGENT_PARSE_JSON, .field = "message", .time_field = "ts", .time_format = "rfc3339"};
    init_event(
        &ev, &scratch,
        "{\"level\":\"warn\",\"n\":-1.5e3,\"ok\":true,\"obj\":{\"a\":[1,\"}\"]},"
        "\"msg\":\"a\\\"b\\nc\",\"ts\":\"2026-11-26T10:00:00.250+01:00\",\"k\\u0041\":null}");
    assert_int_equal(agent_parse_apply(&p, &ev), 0);
    assert_string_equal(text(&ev, "level"), "warn");
    assert_string_equal(text(&ev, "msg"), "a\"b\nc");
    assert_non_null(agent_event_get(&ev, "kA", 2));
    assert_int_equal(ev.ts_ms, 1795687200000LL - 3600000LL + 250);
    agent_event_render(&ev, &out);
    agent_sbuf_putc(&out, '\0');
    assert_non_null(strstr(out.p, "\"n\":-1.5e3,\"ok\":true,\"obj\":{\"a\":[1,\"}\"]}"));
    /* malformed objects add nothing */
    const char *bad[] = {"{\"a\":1,}", "{\"a\" 1}", "{\"a\":tru}", "[1]", "{\"a\":\"x}", "x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        init_event(&ev, &scratch, bad[i]);
        assert_int_equal(agent_parse_apply(&p, &ev), 1);
        assert_int_equal(ev.nfields, 2);
    }
    agent_sbuf_fini(&scratch);
    agent_sbuf_fini(&out);
}

/* Objects with more members than the parser notes in one pass, and
   strings that end in escaped backslashes or hold escaped quotes. */
static void test_parse_json_many_members(void **state)
{
    (void)state;
    agent_sbuf_t scratch = {0}, msg = {0};
    agent_event_t ev;
    agent_parse_conf_t p = {.type = AGENT_PARSE_JSON, .field = "message"};
    agent_sbuf_putc(&msg, '{');
    for (int i = 0; i < 40; i++) {
        char m[64];
        snprintf(m, sizeof(m), "%s\"k%d\" : \"v%d\\\\\\\"x\\\\\"", i ? " , " : "", i, i);
        agent_sbuf_puts(&msg, m); /* "kI" : "vI\\\"x\\" */
    }
    agent_sbuf_puts(&msg, "}");
    agent_sbuf_putc(&msg, '\0');
    init_event(&ev, &scratch, msg.p);
    assert_int_equal(agent_parse_apply(&p, &ev), 0);
    assert_int_equal(ev.nfields, 42);
    for (int i = 0; i < 40; i++) {
        char k[16], want[32];
        snprintf(k, sizeof(k), "k%d", i);
        snprintf(want, sizeof(want), "v%d\\\"x\\", i);
        assert_string_equal(text(&ev, k), want);
    }
    /* a bad member past the first 32 still leaves the event as it was */
    msg.len -= 2; /* the '}' and the NUL */
    agent_sbuf_puts(&msg, ",\"late\":tru}");
    agent_sbuf_putc(&msg, '\0');
    init_event(&ev, &scratch, msg.p);
    assert_int_equal(agent_parse_apply(&p, &ev), 1);
    assert_int_equal(ev.nfields, 2);
    agent_sbuf_fini(&scratch);
    agent_sbuf_fini(&msg);
}

/* Member values are rendered as they came, so an object is taken only
   when every value in it is valid JSON (found by fuzz_parse_json: an
   invalid escape went into the event's value as it was). */
static void test_parse_json_strict(void **state)
{
    (void)state;
    agent_sbuf_t scratch = {0};
    agent_event_t ev;
    agent_parse_conf_t p = {.type = AGENT_PARSE_JSON, .field = "message"};
    const char *bad[] = {
        "{\"a\":\"x\\qy\"}",  "{\"a\":\"\\u12g4\"}", "{\"a\":\"tab\there\"}",
        "{\"a\":\"\xff\"}",   "{\"a\":[1 2]}",       "{\"a\":{\"b\" 1}}",
        "{\"a\":[tru]}",      "{\"a\":01}",          "{\"a\":1.}",
        "{\"a\":-}",          "{\"a\":1e}",          "{\"a\":[1,]}",
        "{\"a\":{\"b\":1,}}", "{\"a\":truex}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        init_event(&ev, &scratch, bad[i]);
        assert_int_equal(agent_parse_apply(&p, &ev), 1);
        assert_int_equal(ev.nfields, 2);
    }
    const char *good[] = {
        "{\"a\":\"\\u00e9 \xc3\xa9 \\/\"}",
        "{\"a\":[1,-0.5e+3,{\"b\":[]},null,false]}",
        "{\"a\" : 0 , \"b\":\"x\"}",
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        init_event(&ev, &scratch, good[i]);
        assert_int_equal(agent_parse_apply(&p, &ev), 0);
        assert_non_null(agent_event_get(&ev, "a", 1));
    }
    agent_sbuf_fini(&scratch);
}

static void test_parse_logfmt_and_time(void **state)
{
    (void)state;
    agent_sbuf_t scratch = {0};
    agent_event_t ev;
    agent_parse_conf_t p = {.type = AGENT_PARSE_LOGFMT,
                            .field = "message",
                            .time_field = "t",
                            .time_format = "unix_ms"};
    init_event(&ev, &scratch,
               "level=info msg=\"hello \\\"there\\\"\" dur=1.5s debug t=1700000000123");
    assert_int_equal(agent_parse_apply(&p, &ev), 0);
    assert_string_equal(text(&ev, "level"), "info");
    assert_string_equal(text(&ev, "msg"), "hello \"there\"");
    assert_string_equal(text(&ev, "dur"), "1.5s");
    assert_string_equal(text(&ev, "debug"), "true");
    assert_int_equal(ev.ts_ms, 1700000000123LL);
    int64_t ms;
    assert_int_equal(agent_parse_time("1700000000.5", 12, "unix", &ms), 0);
    assert_int_equal(ms, 1700000000500LL);
    assert_int_equal(agent_parse_time("2026-11-26T10:00:00Z", 20, "rfc3339", &ms), 0);
    assert_int_equal(ms, 1795687200000LL);
    assert_int_equal(agent_parse_time("2026-13-26T10:00:00Z", 20, "rfc3339", &ms), -1);
    assert_int_equal(agent_parse_time("2026-11-26T10:00:00Zx", 21, "rfc3339", &ms), -1);
    assert_int_equal(agent_parse_time("26/Nov/2026", 11, "%d/%b/%Y %H", &ms), -1);
    /* the common log format's fast path agrees with strptime() + timegm() */
    const char *clf = "%d/%b/%Y:%H:%M:%S %z";
    assert_int_equal(agent_parse_time("29/Feb/2024:23:59:59 -0530", 26, clf, &ms), 0);
    assert_int_equal(ms, 1709270999000LL);
    assert_int_equal(agent_parse_time("31/Dec/1969:23:00:00 +0000", 26, clf, &ms), 0);
    assert_int_equal(ms, -3600000LL);
    assert_int_equal(agent_parse_time("31/Foo/1969:23:00:00 +0000", 26, clf, &ms), -1);
    assert_int_equal(agent_parse_time("2026-02-28T23:59:59.5-01:00", 27, "rfc3339", &ms), 0);
    assert_int_equal(ms, 1772326799500LL);
    agent_sbuf_fini(&scratch);
}

static void test_parse_syslog(void **state)
{
    (void)state;
    agent_sbuf_t scratch = {0}, out = {0};
    agent_event_t ev;
    agent_parse_conf_t p = {.type = AGENT_PARSE_SYSLOG, .field = "message"};
    /* /var/log/syslog on Debian 12: RFC 3339 time, no PRI */
    init_event(&ev, &scratch,
               "2026-11-26T17:40:01.123456+01:00 vm systemd[1]: Started Daily apt upgrade.");
    assert_int_equal(agent_parse_apply(&p, &ev), 0);
    assert_string_equal(text(&ev, "hostname"), "vm");
    assert_string_equal(text(&ev, "app"), "systemd");
    assert_string_equal(text(&ev, "procid"), "1");
    assert_string_equal(text(&ev, "message"), "Started Daily apt upgrade.");
    /* no PRI: user.notice, as RFC 3164 §4.3.3 says and the syslog input says */
    assert_string_equal(text(&ev, "facility"), "user");
    assert_string_equal(text(&ev, "severity"), "notice");
    assert_null(agent_event_get(&ev, "pri", 3));
    assert_int_equal(ev.ts_ms, 1795687200000LL + 7 * 3600000LL + 40 * 60000LL + 1123LL - 3600000LL);
    /* RFC 5424 with structured data, rendered as a JSON object */
    init_event(&ev, &scratch,
               "<165>1 2026-11-26T10:00:00Z web-9 app 77 ID47 [ex@32473 a=\"1\" b=\"x\\\"y\"] "
               "hello");
    assert_int_equal(agent_parse_apply(&p, &ev), 0);
    assert_string_equal(text(&ev, "facility"), "local4");
    assert_string_equal(text(&ev, "severity"), "notice");
    assert_string_equal(text(&ev, "msgid"), "ID47");
    assert_string_equal(text(&ev, "pri"), "165");
    assert_string_equal(text(&ev, "message"), "hello");
    assert_int_equal(ev.ts_ms, 1795687200000LL);
    agent_event_render(&ev, &out);
    agent_sbuf_putc(&out, '\0');
    assert_non_null(
        strstr(out.p, "\"structured_data\":{\"ex@32473\":{\"a\":\"1\",\"b\":\"x\\\"y\"}}"));
    /* not syslog: the message kept, no PRI and no sender claimed */
    init_event(&ev, &scratch, "just a line");
    assert_int_equal(agent_parse_apply(&p, &ev), 1);
    assert_string_equal(text(&ev, "message"), "just a line");
    assert_null(agent_event_get(&ev, "pri", 3));
    assert_null(agent_event_get(&ev, "hostname", 8));
    /* RFC 3164 carries no zone: the event's (the input's timezone) */
    init_event(&ev, &scratch, "<13>Nov 26 10:00:01 web-9 app[78]: two");
    ev.tz_offset_s = 2 * 3600;
    assert_int_equal(agent_parse_apply(&p, &ev), 0);
    assert_string_equal(text(&ev, "pri"), "13");
    assert_int_equal(ev.ts_ms, 1764151201000LL - 2 * 3600000LL); /* 2025-11-26T10:00:01+02:00 */
    agent_sbuf_fini(&scratch);
    agent_sbuf_fini(&out);
}

static void test_filters(void **state)
{
    (void)state;
    agent_sbuf_t scratch = {0};
    agent_event_t ev;
    init_event(&ev, &scratch, "m");
    agent_event_set(&ev, "status", 6, "503", 3, false);
    agent_filter_conf_t grep = {.type = AGENT_FILTER_GREP, .field = "status", .re = re("^[45]")};
    agent_filter_conf_t excl = {.type = AGENT_FILTER_EXCLUDE, .field = "status", .re = grep.re};
    agent_filter_conf_t gmiss = {.type = AGENT_FILTER_GREP, .field = "nope", .re = grep.re};
    agent_filter_conf_t emiss = {.type = AGENT_FILTER_EXCLUDE, .field = "nope", .re = grep.re};
    assert_true(agent_filter_apply(&grep, &ev));
    assert_false(agent_filter_apply(&excl, &ev));
    assert_false(agent_filter_apply(&gmiss, &ev));
    assert_true(agent_filter_apply(&emiss, &ev));
    agent_filter_conf_t set = {.type = AGENT_FILTER_SET, .field = "env", .value = "prod"};
    agent_filter_conf_t ren = {.type = AGENT_FILTER_RENAME, .field = "env", .to = "host"};
    agent_filter_conf_t rem = {.type = AGENT_FILTER_REMOVE, .field = "status"};
    assert_true(agent_filter_apply(&set, &ev));
    assert_string_equal(text(&ev, "env"), "prod");
    assert_true(agent_filter_apply(&ren, &ev)); /* replaces the existing host */
    assert_null(agent_event_get(&ev, "env", 3));
    assert_string_equal(text(&ev, "host"), "prod");
    assert_true(agent_filter_apply(&rem, &ev));
    assert_null(agent_event_get(&ev, "status", 6));
    assert_int_equal(ev.nfields, 2);
    agent_regex_free(grep.re);
    agent_sbuf_fini(&scratch);
}

/* The number of fields named `name`. */
static size_t count_named(const agent_event_t *ev, const char *name)
{
    size_t n = 0;
    for (size_t i = 0; i < ev->nfields; i++) {
        n += ev->fields[i].nlen == strlen(name) &&
             memcmp(ev->fields[i].name, name, ev->fields[i].nlen) == 0;
    }
    return n;
}

/* Parsers add fields without looking each name up (a set of the event's
   names): a name the event has is replaced, never doubled, whether a
   regex group, (?J) groups sharing a name or a JSON member given twice;
   the time is read from the field as the step left it, or from the
   event's own field of that name when the step set none. */
static void test_parse_names_once(void **state)
{
    (void)state;
    agent_sbuf_t scratch = {0}, out = {0};
    agent_event_t ev;
    agent_parse_conf_t p = {
        .type = AGENT_PARSE_REGEX,
        .field = "message",
        .time_field = "time",
        .time_format = "rfc3339",
        .re = re("^(?<host>\\S+) (?<message>\\S+)(?: (?<time>\\S+))?"),
    };
    init_event(&ev, &scratch, "web7 hello 2026-11-26T10:00:00Z");
    assert_int_equal(agent_parse_apply(&p, &ev), 0);
    assert_int_equal(ev.nfields, 3);
    assert_string_equal(text(&ev, "host"), "web7");
    assert_string_equal(text(&ev, "message"), "hello");
    assert_int_equal(ev.ts_ms, 1795687200000LL);
    /* the time group unset: the event's own "time" field is read */
    init_event(&ev, &scratch, "web7 hello");
    agent_event_set(&ev, "time", 4, "2026-11-27T10:00:00Z", 20, false);
    assert_int_equal(agent_parse_apply(&p, &ev), 0);
    assert_int_equal(ev.ts_ms, 1795687200000LL + 86400000LL);
    assert_int_equal(count_named(&ev, "time"), 1);
    agent_regex_free(p.re);
    /* groups sharing a name: one field, the group that matched */
    p.re = re("(?J)^(?:(?<a>x+)|(?<a>y+)) (?<time>\\S+)");
    for (int round = 0; round < 2; round++) {
        init_event(&ev, &scratch, round ? "xx 2026-11-26T10:00:01Z" : "yy 2026-11-26T10:00:01Z");
        assert_int_equal(agent_parse_apply(&p, &ev), 0);
        assert_int_equal(count_named(&ev, "a"), 1);
        assert_string_equal(text(&ev, "a"), round ? "xx" : "yy");
        assert_int_equal(ev.ts_ms, 1795687201000LL);
    }
    agent_regex_free(p.re);
    /* a JSON member given twice: the last, once; the time from the last */
    agent_parse_conf_t pj = {.type = AGENT_PARSE_JSON,
                             .field = "message",
                             .time_field = "time",
                             .time_format = "rfc3339"};
    init_event(&ev, &scratch,
               "{\"time\":\"2026-11-26T10:00:00Z\",\"a\":1,\"host\":\"h9\",\"time\":"
               "\"2026-11-28T10:00:00Z\",\"a\":2}");
    assert_int_equal(agent_parse_apply(&pj, &ev), 0);
    assert_int_equal(ev.nfields, 4);
    assert_int_equal(count_named(&ev, "a"), 1);
    assert_int_equal(count_named(&ev, "host"), 1);
    assert_string_equal(text(&ev, "a"), "2");
    assert_string_equal(text(&ev, "host"), "h9");
    assert_int_equal(ev.ts_ms, 1795687200000LL + 2 * 86400000LL);
    /* a name with an escape is decoded, and still found once */
    init_event(&ev, &scratch, "{\"\\u0061\":1,\"a\":3}");
    assert_int_equal(agent_parse_apply(&pj, &ev), 0);
    assert_int_equal(count_named(&ev, "a"), 1);
    assert_string_equal(text(&ev, "a"), "3");
    agent_event_render(&ev, &out);
    agent_sbuf_putc(&out, '\0');
    assert_non_null(strstr(out.p, ",\"a\":3}"));
    /* logfmt: the same key twice, and a key named as a fixed field */
    agent_parse_conf_t pl = {.type = AGENT_PARSE_LOGFMT,
                             .field = "message",
                             .time_field = "time",
                             .time_format = "rfc3339"};
    init_event(&ev, &scratch, "time=2026-11-26T10:00:00Z a=1 host=h3 a=\"two 2\" flag time=bad");
    assert_int_equal(agent_parse_apply(&pl, &ev), 0);
    assert_int_equal(count_named(&ev, "a"), 1);
    assert_int_equal(count_named(&ev, "host"), 1);
    assert_int_equal(count_named(&ev, "time"), 1);
    assert_string_equal(text(&ev, "a"), "two 2");
    assert_string_equal(text(&ev, "flag"), "true");
    assert_int_equal(ev.ts_ms, 1764172800123LL); /* "bad" is not a time: kept */
    agent_sbuf_fini(&scratch);
    agent_sbuf_fini(&out);
}

/* Times read from the date noted for the last one when their date part is
   the same: a new date, a change past the date part, a bad time of day
   after a good date, the turn of a year; formatted times across minutes. */
static void test_time_dates_noted(void **state)
{
    (void)state;
    static const struct {
        const char *s, *fmt;
        int rc;
        int64_t ms;
    } cases[] = {
        {"2026-11-26T10:00:00Z", "rfc3339", 0, 1795687200000LL},
        {"2026-11-27T10:00:00Z", "rfc3339", 0, 1795687200000LL + 86400000LL},
        {"2026-11-27T10:00:01.5+01:00", "rfc3339", 0,
         1795687200000LL + 86400000LL + 1500 - 3600000},
        {"2026-11-27 10:00:00Z", "rfc3339", 0, 1795687200000LL + 86400000LL},
        {"2026-11-27X10:00:00Z", "rfc3339", -1, 0},
        {"2026-11-27T25:00:00Z", "rfc3339", -1, 0},
        {"2026-11-27T", "rfc3339", -1, 0},
        {"2026-11-27T10:00:00Z", "rfc3339", 0, 1795687200000LL + 86400000LL},
        {"26/Nov/2026:10:00:00 +0000", "%d/%b/%Y:%H:%M:%S %z", 0, 1795687200000LL},
        {"27/Nov/2026:10:00:00 +0000", "%d/%b/%Y:%H:%M:%S %z", 0, 1795687200000LL + 86400000LL},
        {"27/Nov/2026:10:00:00 -0130", "%d/%b/%Y:%H:%M:%S %z", 0,
         1795687200000LL + 86400000LL + 5400000LL},
        {"27/Nov/2026:24:00:00 +0000", "%d/%b/%Y:%H:%M:%S %z", -1, 0},
        {"27/Nov/2026:10:0x:00 +0000", "%d/%b/%Y:%H:%M:%S %z", -1, 0},
        {"31/Dec/2026:23:59:59 +0000", "%d/%b/%Y:%H:%M:%S %z", 0, 1798761599000LL},
        {"01/Jan/2027:00:00:00 +0000", "%d/%b/%Y:%H:%M:%S %z", 0, 1798761600000LL},
        {"2026-11-27T10:00:00Z", "rfc3339", 0, 1795687200000LL + 86400000LL},
        {"27/Nov/2026:10:00:00 +0000", "%d/%b/%Y:%H:%M:%S %z", 0, 1795687200000LL + 86400000LL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t ms = 0;
        int rc = agent_parse_time(cases[i].s, strlen(cases[i].s), cases[i].fmt, &ms);
        assert_int_equal(rc, cases[i].rc);
        if (rc == 0) {
            assert_int_equal(ms, cases[i].ms);
        }
    }
    /* formatting: every 7.3 s over two hours, both sides of the epoch and
       of a day, against gmtime_r() */
    static const int64_t starts[] = {-3600000, 1795687200000LL - 3600000,
                                     1798761600000LL - 3600000};
    for (size_t k = 0; k < sizeof(starts) / sizeof(starts[0]); k++) {
        for (int64_t ms = starts[k]; ms < starts[k] + 7200000; ms += 7300) {
            char out[32], want[40];
            int64_t sec = ms >= 0 ? ms / 1000 : (ms - 999) / 1000;
            time_t t = (time_t)sec;
            struct tm tm;
            assert_non_null(gmtime_r(&t, &tm));
            size_t wn = strftime(want, sizeof(want), "%Y-%m-%dT%H:%M:%S", &tm);
            snprintf(want + wn, sizeof(want) - wn, ".%03dZ", (int)(ms - sec * 1000));
            size_t n = agent_format_time(ms, out);
            assert_int_equal(n, strlen(want));
            assert_string_equal(out, want);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_escape),
        cmocka_unit_test(test_json_escape_blocks),
        cmocka_unit_test(test_format_time),
        cmocka_unit_test(test_render_and_fields),
        cmocka_unit_test(test_templates),
        cmocka_unit_test(test_templates_nested),
        cmocka_unit_test(test_types),
        cmocka_unit_test(test_parse_types_and_errors),
        cmocka_unit_test(test_parse_regex),
        cmocka_unit_test(test_parse_json),
        cmocka_unit_test(test_parse_json_many_members),
        cmocka_unit_test(test_parse_json_strict),
        cmocka_unit_test(test_parse_logfmt_and_time),
        cmocka_unit_test(test_parse_syslog),
        cmocka_unit_test(test_filters),
        cmocka_unit_test(test_parse_names_once),
        cmocka_unit_test(test_time_dates_noted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
