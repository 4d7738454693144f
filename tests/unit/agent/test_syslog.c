/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Syslog parsing and framing: util-linux logger's exact outputs (local
 * socket, --rfc3164, --rfc5424, TCP with --octet-count), the RFC 5424
 * examples, NILVALUEs and field limits, structured data escapes and
 * malformed structured data, BOM, RFC 3164 year inference across the new
 * year, timezones, every prefix of valid messages, and the framer fed one
 * byte at a time and in random pieces (octet, newline and auto), with
 * oversize frames, end of stream and -EPROTO.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "syslog/syslog.h"

/* UTC milliseconds of a date, through libc (not the parser's arithmetic). */
static int64_t utc_ms(int y, int mo, int d, int h, int mi, int s, int ms)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = s;
    return (int64_t)timegm(&tm) * 1000 + ms;
}

static agent_syslog_opts_t opts_at(int64_t now_ms)
{
    agent_syslog_opts_t o;
    memset(&o, 0, sizeof(o));
    o.now_ms = now_ms;
    return o;
}

/* The message's clock: 2026-11-26T17:40:05Z, zone UTC. */
static agent_syslog_opts_t nov(void)
{
    return opts_at(utc_ms(2026, 11, 26, 17, 40, 5, 0));
}

static int parse(const char *s, const agent_syslog_opts_t *o, agent_syslog_msg_t *m)
{
    return agent_syslog_parse(s, strlen(s), o, m);
}

#define assert_str(f, want)                                                                        \
    do {                                                                                           \
        const char *w_ = (want);                                                                   \
        if (!w_) {                                                                                 \
            assert_null((f).p);                                                                    \
        } else {                                                                                   \
            assert_non_null((f).p);                                                                \
            assert_int_equal((f).n, strlen(w_));                                                   \
            assert_memory_equal((f).p, w_, (f).n);                                                 \
        }                                                                                          \
    } while (0)

/* sd_json of a message's structured data, NUL-terminated (static buffer). */
static const char *sd_json(const agent_syslog_msg_t *m)
{
    static char buf[4096];
    long n = agent_syslog_sd_json(m->sd.p, m->sd.n, buf, sizeof(buf) - 1);
    assert_true(n >= 0);
    buf[n] = '\0';
    return buf;
}

/* ---------------------------------------------------------------------- */
/* logger (util-linux 2.38)                                               */

static void test_logger_rfc3164(void **state)
{
    (void)state;
    agent_syslog_opts_t o = nov();
    agent_syslog_msg_t m;

    /* logger hello (the local socket: no hostname) */
    assert_int_equal(parse("<13>Nov 26 17:40:01 myuser: hello", &o, &m), 0);
    assert_int_equal(m.format, AGENT_SYSLOG_RFC3164);
    assert_int_equal(m.pri, 13);
    assert_int_equal(m.facility, 1);
    assert_int_equal(m.severity, 5);
    assert_true(m.has_ts);
    assert_int_equal(m.ts_ms, utc_ms(2026, 11, 26, 17, 40, 1, 0));
    assert_str(m.hostname, NULL);
    assert_str(m.app, "myuser");
    assert_str(m.procid, NULL);
    assert_str(m.msgid, NULL);
    assert_str(m.sd, NULL);
    assert_str(m.msg, "hello");

    /* logger --rfc3164 hello */
    assert_int_equal(parse("<13>Nov 26 17:40:01 myhost myuser: hello", &o, &m), 0);
    assert_str(m.hostname, "myhost");
    assert_str(m.app, "myuser");
    assert_str(m.msg, "hello");

    /* logger --rfc3164 -p local7.debug -i -t cron job */
    assert_int_equal(parse("<191>Nov 26 17:40:01 vm cron[5928]: job", &o, &m), 0);
    assert_int_equal(m.facility, 23);
    assert_int_equal(m.severity, 7);
    assert_str(m.hostname, "vm");
    assert_str(m.app, "cron");
    assert_str(m.procid, "5928");
    assert_str(m.msg, "job");

    /* logger -i -t app (local socket, with pid) */
    assert_int_equal(parse("<38>Nov  6 01:02:03 sshd[812]: Accepted publickey", &o, &m), 0);
    assert_int_equal(m.ts_ms, utc_ms(2026, 11, 6, 1, 2, 3, 0));
    assert_str(m.hostname, NULL);
    assert_str(m.app, "sshd");
    assert_str(m.procid, "812");
    assert_str(m.msg, "Accepted publickey");
}

static void test_logger_rfc5424(void **state)
{
    (void)state;
    agent_syslog_opts_t o = nov();
    agent_syslog_msg_t m;

    /* logger hello (RFC 5424 is the default) */
    assert_int_equal(parse("<13>1 2026-11-26T17:40:01.123456+00:00 myhost myuser - - "
                           "[timeQuality tzKnown=\"1\" isSynced=\"0\"] hello",
                           &o, &m),
                     0);
    assert_int_equal(m.format, AGENT_SYSLOG_RFC5424);
    assert_int_equal(m.pri, 13);
    assert_int_equal(m.ts_ms, utc_ms(2026, 11, 26, 17, 40, 1, 123));
    assert_str(m.hostname, "myhost");
    assert_str(m.app, "myuser");
    assert_str(m.procid, NULL);
    assert_str(m.msgid, NULL);
    assert_str(m.sd, "[timeQuality tzKnown=\"1\" isSynced=\"0\"]");
    assert_str(m.msg, "hello");
    assert_string_equal(sd_json(&m), "{\"timeQuality\":{\"tzKnown\":\"1\",\"isSynced\":\"0\"}}");

    /* logger --rfc5424=notq -t app -i --msgid ID47 'hello world' */
    assert_int_equal(
        parse("<13>1 2026-11-26T17:25:47.338059+00:00 vm app 5925 ID47 - hello world", &o, &m), 0);
    assert_str(m.app, "app");
    assert_str(m.procid, "5925");
    assert_str(m.msgid, "ID47");
    assert_str(m.sd, NULL);
    assert_str(m.msg, "hello world");

    /* logger --sd-id exampleSDID@32473 --sd-param 'iut="3"'
       --sd-param 'eventSource="App\"x\]"' x */
    assert_int_equal(parse("<13>1 2026-11-26T17:25:47.339177+00:00 vm root - - "
                           "[timeQuality tzKnown=\"1\" isSynced=\"0\"]"
                           "[exampleSDID@32473 iut=\"3\" eventSource=\"App\\\"x\\]\"] x",
                           &o, &m),
                     0);
    assert_str(m.msg, "x");
    assert_string_equal(sd_json(&m), "{\"timeQuality\":{\"tzKnown\":\"1\",\"isSynced\":\"0\"},"
                                     "\"exampleSDID@32473\":{\"iut\":\"3\","
                                     "\"eventSource\":\"App\\\"x]\"}}");

    /* logger --rfc5424=notime,nohost x */
    assert_int_equal(parse("<13>1 - - root - - - x", &o, &m), 0);
    assert_false(m.has_ts);
    assert_str(m.hostname, NULL);
    assert_str(m.app, "root");
    assert_str(m.msg, "x");
}

/* ---------------------------------------------------------------------- */
/* RFC 5424                                                               */

static void test_rfc5424_examples(void **state)
{
    (void)state;
    agent_syslog_opts_t o = nov();
    agent_syslog_msg_t m;

    assert_int_equal(parse("<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - "
                           "\xEF\xBB\xBF'su root' failed for lonvick on /dev/pts/8",
                           &o, &m),
                     0);
    assert_int_equal(m.facility, 4);
    assert_int_equal(m.severity, 2);
    assert_int_equal(m.ts_ms, utc_ms(2003, 10, 11, 22, 14, 15, 3));
    assert_str(m.hostname, "mymachine.example.com");
    assert_str(m.app, "su");
    assert_str(m.procid, NULL);
    assert_str(m.msgid, "ID47");
    assert_str(m.sd, NULL);
    assert_str(m.msg, "'su root' failed for lonvick on /dev/pts/8"); /* BOM removed */
    assert_string_equal(sd_json(&m), "{}");

    assert_int_equal(parse("<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - "
                           "%% It's time to make the do-nuts.",
                           &o, &m),
                     0);
    assert_int_equal(m.ts_ms, utc_ms(2003, 8, 24, 12, 14, 15, 0));
    assert_str(m.procid, "8710");
    assert_str(m.msg, "%% It's time to make the do-nuts.");

    assert_int_equal(parse("<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 "
                           "[exampleSDID@32473 iut=\"3\" eventSource=\"Application\" "
                           "eventID=\"1011\"][examplePriority@32473 class=\"high\"]",
                           &o, &m),
                     0);
    assert_str(m.msg, "");
    assert_string_equal(sd_json(&m), "{\"exampleSDID@32473\":{\"iut\":\"3\",\"eventSource\":"
                                     "\"Application\",\"eventID\":\"1011\"},"
                                     "\"examplePriority@32473\":{\"class\":\"high\"}}");
}

static void test_rfc5424_nil_and_limits(void **state)
{
    (void)state;
    agent_syslog_opts_t o = nov();
    agent_syslog_msg_t m;
    char buf[1024];

    assert_int_equal(parse("<0>1 - - - - - -", &o, &m), 0);
    assert_int_equal(m.pri, 0);
    assert_false(m.has_ts);
    assert_str(m.hostname, NULL);
    assert_str(m.app, NULL);
    assert_str(m.procid, NULL);
    assert_str(m.msgid, NULL);
    assert_str(m.sd, NULL);
    assert_non_null(m.msg.p);
    assert_int_equal(m.msg.n, 0);

    /* An empty MSG after SP, and "-" as a MSG is just text. */
    assert_int_equal(parse("<0>1 - - - - - - ", &o, &m), 0);
    assert_int_equal(m.msg.n, 0);
    assert_int_equal(parse("<0>1 - - - - - - -", &o, &m), 0);
    assert_str(m.msg, "-");

    /* Each field at its limit, then one longer. */
    static const size_t limits[4] = {255, 48, 128, 32};
    for (int field = 0; field < 4; field++) {
        for (size_t extra = 0; extra <= 1; extra++) {
            size_t len = limits[field] + extra, off = 0;
            off += (size_t)snprintf(buf, sizeof(buf), "<14>1 2026-11-26T17:40:01Z");
            for (int k = 0; k < 4; k++) {
                buf[off++] = ' ';
                size_t fl = k == field ? len : 1;
                memset(buf + off, 'a' + k, fl);
                off += fl;
            }
            memcpy(buf + off, " - m", 5);
            int rc = parse(buf, &o, &m);
            assert_int_equal(rc, extra ? 1 : 0);
            if (!extra) {
                agent_syslog_str_t f[4] = {m.hostname, m.app, m.procid, m.msgid};
                assert_int_equal(f[field].n, len);
                assert_str(m.msg, "m");
            } else {
                assert_int_equal(m.msg.n, strlen(buf)); /* the whole input */
            }
        }
    }
}

static void test_rfc5424_timestamps(void **state)
{
    (void)state;
    agent_syslog_opts_t o = nov();
    agent_syslog_msg_t m;
    struct {
        const char *ts;
        int64_t want; /* 0: not well formed */
    } cases[] = {
        {"2026-11-26T17:40:01Z", utc_ms(2026, 11, 26, 17, 40, 1, 0)},
        {"2026-11-26T17:40:01.5Z", utc_ms(2026, 11, 26, 17, 40, 1, 500)},
        {"2026-11-26T17:40:01.123456Z", utc_ms(2026, 11, 26, 17, 40, 1, 123)},
        {"2026-11-26T17:40:01+05:30", utc_ms(2026, 11, 26, 12, 10, 1, 0)},
        {"2026-11-26T17:40:01-08:00", utc_ms(2026, 11, 27, 1, 40, 1, 0)},
        {"2027-01-01T00:30:00+01:00", utc_ms(2026, 12, 31, 23, 30, 0, 0)},
        {"2028-02-29T12:00:00Z", utc_ms(2028, 2, 29, 12, 0, 0, 0)},
        {"2000-02-29T12:00:00Z", utc_ms(2000, 2, 29, 12, 0, 0, 0)},
        {"1969-12-31T23:59:59.999Z", -1},
        {"2026-11-26T17:40:01.1234567Z", 0}, /* 7 fraction digits */
        {"2026-11-26T17:40:01", 0},          /* no zone */
        {"2026-11-26t17:40:01Z", 0},
        {"2026-11-26T17:40:01z", 0},
        {"2026-11-26T17:40:01+0530", 0},
        {"2026-11-26T17:40:60Z", 0},
        {"2026-11-26T24:00:00Z", 0},
        {"2026-13-01T00:00:00Z", 0},
        {"2026-02-29T00:00:00Z", 0},
        {"1900-02-29T00:00:00Z", 0},
        {"2026-11-31T00:00:00Z", 0},
        {"2026-11-26T17:40:01.Z", 0},
        {"2026-11-26T17:40:01+24:00", 0},
        {"26-11-26T17:40:01Z", 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char buf[128];
        snprintf(buf, sizeof(buf), "<14>1 %s h a p m - x", cases[i].ts);
        int rc = parse(buf, &o, &m);
        if (cases[i].want == 0) {
            assert_int_equal(rc, 1);
            assert_int_equal(m.msg.n, strlen(buf));
        } else {
            assert_int_equal(rc, 0);
            assert_int_equal(m.ts_ms, cases[i].want);
            assert_str(m.msg, "x");
        }
    }
}

/* ---------------------------------------------------------------------- */
/* Structured data                                                        */

static void test_sd_escapes_and_json(void **state)
{
    (void)state;
    agent_syslog_opts_t o = nov();
    agent_syslog_msg_t m;
    char out[256];

    assert_int_equal(parse("<13>1 - h a - - [x@1 q=\"say \\\"hi\\\"\" b=\"back\\\\slash\" "
                           "c=\"br\\]acket\" d=\"lit\\n\" e=\"\"] m",
                           &o, &m),
                     0);
    assert_string_equal(sd_json(&m), "{\"x@1\":{\"q\":\"say \\\"hi\\\"\",\"b\":\"back\\\\slash\","
                                     "\"c\":\"br]acket\",\"d\":\"lit\\\\n\",\"e\":\"\"}}");

    /* A repeated PARAM-NAME becomes an array, in order. */
    assert_int_equal(parse("<13>1 - h a - - [origin ip=\"10.0.0.1\" software=\"t\" "
                           "ip=\"10.0.0.2\" ip=\"10.0.0.3\"] m",
                           &o, &m),
                     0);
    assert_string_equal(
        sd_json(&m),
        "{\"origin\":{\"ip\":[\"10.0.0.1\",\"10.0.0.2\",\"10.0.0.3\"],\"software\":\"t\"}}");

    /* UTF-8 values pass; control characters are escaped for JSON. */
    const char *sd = "[a v=\"Z\xC3\xBCrich \xE2\x9C\x93\x01\tx\"]";
    long n = agent_syslog_sd_json(sd, strlen(sd), out, sizeof(out));
    assert_true(n > 0);
    out[n] = '\0';
    assert_string_equal(out, "{\"a\":{\"v\":\"Z\xC3\xBCrich \xE2\x9C\x93\\u0001\\u0009x\"}}");

    /* Room: exact fits, one byte less does not. */
    sd = "[a b=\"c\"]";
    assert_int_equal(agent_syslog_sd_json(sd, strlen(sd), out, 15), 15);
    assert_memory_equal(out, "{\"a\":{\"b\":\"c\"}}", 15);
    assert_int_equal(agent_syslog_sd_json(sd, strlen(sd), out, 14), -1);
    assert_int_equal(agent_syslog_sd_json("-", 1, out, 2), 2);
    assert_memory_equal(out, "{}", 2);
    assert_int_equal(agent_syslog_sd_json(NULL, 0, out, 2), 2);
    assert_int_equal(agent_syslog_sd_json("-", 1, out, 1), -1);
}

static void test_sd_malformed(void **state)
{
    (void)state;
    agent_syslog_opts_t o = nov();
    agent_syslog_msg_t m;
    char out[512];
    static const char *const bad[] = {
        "[a b=\"c\"",                          /* unterminated element */
        "[a b=\"c]",                           /* unterminated value */
        "[a b=c]",                             /* unquoted value */
        "[a b=\"c]\"]",                        /* ']' not escaped */
        "[]",                                  /* no SD-ID */
        "[a b=\"c\"][a d=\"e\"]",              /* the same SD-ID twice */
        "[a  b=\"c\"]",                        /* two spaces */
        "[a b=\"c\" ]",                        /* space before ']' */
        "[a=b]",                               /* '=' in SD-ID */
        "[a b]",                               /* parameter without value */
        "[a =\"c\"]",                          /* empty PARAM-NAME */
        "[a b\"x=\"c\"]",                      /* '"' in PARAM-NAME */
        "[a b=\"\xFF\"]",                      /* invalid UTF-8 */
        "[a b=\"\xC0\xAF\"]",                  /* overlong UTF-8 */
        "[a b=\"\xED\xA0\x80\"]",              /* a surrogate */
        "[a\x01 b=\"c\"]",                     /* control character in SD-ID */
        "[a b=\"c\"] [d e=\"f\"]",             /* space between elements */
        "[a b=\"c\"]x",                        /* no space before MSG (parser only) */
        "[abcdefghijklmnopqrstuvwxyz0123456]", /* SD-ID of 33 */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char buf[256];
        snprintf(buf, sizeof(buf), "<13>1 - h a - - %s", bad[i]);
        if (strcmp(bad[i], "[a b=\"c\"] [d e=\"f\"]") != 0) {
            assert_int_equal(parse(buf, &o, &m), 1);
            assert_int_equal(m.msg.n, strlen(buf));
            assert_null(m.sd.p);
            assert_str(m.hostname, "h"); /* what came before is kept */
        } else {
            /* the second element is message text */
            assert_int_equal(parse(buf, &o, &m), 0);
            assert_str(m.msg, "[d e=\"f\"]");
        }
        assert_int_equal(agent_syslog_sd_json(bad[i], strlen(bad[i]), out, sizeof(out)), -1);
    }
    /* 32 is fine. */
    assert_int_equal(parse("<13>1 - h a - - [abcdefghijklmnopqrstuvwxyz012345] m", &o, &m), 0);

    /* More elements than AGENT_SYSLOG_SD_MAX_ELEMENTS is not well formed. */
    char big[2048];
    size_t off = (size_t)snprintf(big, sizeof(big), "<13>1 - h a - - ");
    for (int i = 0; i <= AGENT_SYSLOG_SD_MAX_ELEMENTS; i++) {
        off += (size_t)snprintf(big + off, sizeof(big) - off, "[e%d]", i);
    }
    assert_int_equal(parse(big, &o, &m), 1);
    char *last = strrchr(big, '[');
    *last = '\0';
    assert_int_equal(parse(big, &o, &m), 0);
    assert_int_equal(m.msg.n, 0);

    /* AGENT_SYSLOG_SD_MAX_PARAMS in an element, names repeated: fine, and
       converts; one more is not well formed. */
    static char params[8192], json[16384];
    off = (size_t)snprintf(params, sizeof(params), "<13>1 - h a - - [a");
    for (int i = 0; i < AGENT_SYSLOG_SD_MAX_PARAMS; i++) {
        off += (size_t)snprintf(params + off, sizeof(params) - off, " p%d=\"%d\"", i % 3, i);
    }
    memcpy(params + off, "][b c=\"d\"] m", 13);
    assert_int_equal(parse(params, &o, &m), 0);
    assert_str(m.msg, "m");
    long n = agent_syslog_sd_json(m.sd.p, m.sd.n, json, sizeof(json) - 1);
    assert_true(n > 0);
    json[n] = '\0';
    assert_non_null(strstr(json, "{\"a\":{\"p0\":[\"0\",\"3\",\"6\","));
    assert_non_null(strstr(json, "\"p2\":[\"2\",\"5\","));
    assert_non_null(strstr(json, ",\"252\",\"255\"],\"p1\":[\"1\",\"4\","));
    assert_non_null(strstr(json, ",\"254\"]},\"b\":{\"c\":\"d\"}}"));
    memcpy(params + off, " x=\"\"] m", 9);
    assert_int_equal(parse(params, &o, &m), 1);
}

/* ---------------------------------------------------------------------- */
/* RFC 3164                                                               */

static void test_rfc3164_forms(void **state)
{
    (void)state;
    agent_syslog_opts_t o = nov();
    agent_syslog_msg_t m;

    /* rsyslog's RFC 3339 timestamp after PRI, with and without a zone */
    assert_int_equal(parse("<13>2026-11-26T17:40:01.123456+01:00 web01 nginx[4411]: GET /", &o, &m),
                     0);
    assert_int_equal(m.format, AGENT_SYSLOG_RFC3164);
    assert_int_equal(m.ts_ms, utc_ms(2026, 11, 26, 16, 40, 1, 123));
    assert_str(m.hostname, "web01");
    assert_str(m.app, "nginx");
    assert_str(m.procid, "4411");
    assert_str(m.msg, "GET /");
    o.tz.offset = 3600;
    assert_int_equal(parse("<13>2026-11-26T17:40:01 web01 app: x", &o, &m), 0);
    assert_int_equal(m.ts_ms, utc_ms(2026, 11, 26, 16, 40, 1, 0));
    o.tz.offset = 0;

    /* no tag: the rest is message */
    assert_int_equal(parse("<13>Nov 26 17:40:01 host just a message: no tag", &o, &m), 0);
    assert_str(m.hostname, "host");
    assert_str(m.app, NULL);
    assert_str(m.msg, "just a message: no tag");

    /* "app[pid]" without the colon, a zero-padded day, a fraction */
    assert_int_equal(parse("<13>Nov 06 17:40:01.250 host sshd[99] Connection closed", &o, &m), 0);
    assert_int_equal(m.ts_ms, utc_ms(2026, 11, 6, 17, 40, 1, 250));
    assert_str(m.app, "sshd");
    assert_str(m.procid, "99");
    assert_str(m.msg, "Connection closed");

    /* no PRI: facility user, severity notice */
    assert_int_equal(parse("Nov 26 17:40:01 host kernel: [    0.000000] Linux", &o, &m), 0);
    assert_int_equal(m.pri, -1);
    assert_int_equal(m.facility, 1);
    assert_int_equal(m.severity, 5);
    assert_str(m.app, "kernel");
    assert_str(m.msg, "[    0.000000] Linux");

    /* empty message, timestamp only, trailing LF / CRLF / NUL, BOM */
    assert_int_equal(parse("<0>Nov 26 17:40:01 host app[12]:", &o, &m), 0);
    assert_str(m.app, "app");
    assert_non_null(m.msg.p);
    assert_int_equal(m.msg.n, 0);
    assert_int_equal(parse("<13>Nov 26 17:40:01", &o, &m), 0);
    assert_int_equal(m.msg.n, 0);
    assert_int_equal(parse("<13>Nov 26 17:40:01 host app: line\r\n", &o, &m), 0);
    assert_str(m.msg, "line");
    static const char with_nul[] = "<13>Nov 26 17:40:01 host app: z\n"; /* and its NUL */
    assert_int_equal(agent_syslog_parse(with_nul, sizeof(with_nul), &o, &m), 0);
    assert_str(m.msg, "z");
    assert_int_equal(parse("<13>Nov 26 17:40:01 host app: \xEF\xBB\xBFwith a BOM", &o, &m), 0);
    assert_str(m.msg, "with a BOM");

    /* month names in any case; Feb 29 in a year that has none */
    assert_int_equal(parse("<13>nov 26 17:40:01 host app: x", &o, &m), 0);
    assert_int_equal(parse("<13>Feb 29 17:40:01 host app: x", &o, &m), 1);
    agent_syslog_opts_t leap = opts_at(utc_ms(2028, 3, 1, 0, 0, 0, 0));
    assert_int_equal(parse("<13>Feb 29 17:40:01 host app: x", &leap, &m), 0);
    assert_int_equal(m.ts_ms, utc_ms(2028, 2, 29, 17, 40, 1, 0));
}

static void test_rfc3164_year_wrap(void **state)
{
    (void)state;
    agent_syslog_msg_t m;
    /* December seen in January: last year. */
    agent_syslog_opts_t jan = opts_at(utc_ms(2027, 1, 1, 0, 0, 2, 0));
    assert_int_equal(parse("<13>Dec 31 23:59:59 h a: x", &jan, &m), 0);
    assert_int_equal(m.ts_ms, utc_ms(2026, 12, 31, 23, 59, 59, 0));
    assert_int_equal(parse("<13>Jan  1 00:00:01 h a: x", &jan, &m), 0);
    assert_int_equal(m.ts_ms, utc_ms(2027, 1, 1, 0, 0, 1, 0));
    /* January seen in December: next year. */
    agent_syslog_opts_t dec = opts_at(utc_ms(2026, 12, 31, 23, 59, 58, 0));
    assert_int_equal(parse("<13>Jan  1 00:00:01 h a: x", &dec, &m), 0);
    assert_int_equal(m.ts_ms, utc_ms(2027, 1, 1, 0, 0, 1, 0));
    assert_int_equal(parse("<13>Dec 31 23:59:59 h a: x", &dec, &m), 0);
    assert_int_equal(m.ts_ms, utc_ms(2026, 12, 31, 23, 59, 59, 0));
    /* Other months: this year. */
    assert_int_equal(parse("<13>Jun 15 12:00:00 h a: x", &dec, &m), 0);
    assert_int_equal(m.ts_ms, utc_ms(2026, 6, 15, 12, 0, 0, 0));
    /* The month of "now" is taken in the configured zone: 2026-12-31T23:30Z
       is already January at +01:00, so December is last year's. */
    agent_syslog_opts_t eve = opts_at(utc_ms(2026, 12, 31, 23, 30, 0, 0));
    eve.tz.offset = 3600;
    assert_int_equal(parse("<13>Dec 31 10:00:00 h a: x", &eve, &m), 0);
    assert_int_equal(m.ts_ms, utc_ms(2026, 12, 31, 9, 0, 0, 0));
    assert_int_equal(parse("<13>Jun 15 12:00:00 h a: x", &eve, &m), 0);
    assert_int_equal(m.ts_ms, utc_ms(2027, 6, 15, 11, 0, 0, 0));
}

/* Network devices: a year after the day, '*' or '.' before an unsynced clock. */
static void test_rfc3164_device_forms(void **state)
{
    (void)state;
    agent_syslog_msg_t m;
    agent_syslog_opts_t dec = opts_at(utc_ms(2026, 12, 31, 23, 59, 58, 0));
    /* the year is the message's: no wrap inference */
    assert_int_equal(parse("<189>Jan  1 2025 10:11:12 core-sw1 LINK: up", &dec, &m), 0);
    assert_int_equal(m.ts_ms, utc_ms(2025, 1, 1, 10, 11, 12, 0));
    assert_str(m.hostname, "core-sw1");
    assert_str(m.app, "LINK");
    assert_str(m.msg, "up");
    assert_int_equal(parse("<189>Nov 26 2026 17:40:01.250 r1 OSPF: adj", &dec, &m), 0);
    assert_int_equal(m.ts_ms, utc_ms(2026, 11, 26, 17, 40, 1, 250));
    agent_syslog_opts_t o = nov();
    assert_int_equal(parse("<187>*Nov 26 17:40:01.483 r2 SYS: clock not set", &o, &m), 0);
    assert_int_equal(m.ts_ms, utc_ms(2026, 11, 26, 17, 40, 1, 483));
    assert_str(m.hostname, "r2");
    assert_int_equal(parse("<187>.Nov 26 17:40:01 r2 SYS: x", &o, &m), 0);
    assert_int_equal(m.ts_ms, utc_ms(2026, 11, 26, 17, 40, 1, 0));
    /* a 4-digit hostname after the day is not a year without a time after it */
    assert_int_equal(parse("<13>Nov 26 17:40:01 2026 app: x", &o, &m), 0);
    assert_str(m.hostname, "2026");
    /* a year that makes the day impossible is malformed */
    assert_int_equal(parse("<13>Feb 29 2025 10:00:00 h a: x", &o, &m), 1);
}

static void test_timezones(void **state)
{
    (void)state;
    agent_syslog_tz_t tz;
    assert_int_equal(agent_syslog_tz_parse("local", &tz), 0);
    assert_true(tz.local);
    assert_int_equal(agent_syslog_tz_parse("UTC", &tz), 0);
    assert_false(tz.local);
    assert_int_equal(tz.offset, 0);
    assert_int_equal(agent_syslog_tz_parse("+02:00", &tz), 0);
    assert_int_equal(tz.offset, 7200);
    assert_int_equal(agent_syslog_tz_parse("-0530", &tz), 0);
    assert_int_equal(tz.offset, -19800);
    assert_int_equal(agent_syslog_tz_parse("+14", &tz), 0);
    assert_int_equal(tz.offset, 50400);
    static const char *const bad[] = {"",      "x",     "+2",      "+24:00", "+02:60",       "+02:",
                                      "+02:0", "02:00", "+02:00x", "+0200:", "Europe/Berlin"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(agent_syslog_tz_parse(bad[i], &tz), -1);
    }
    assert_int_equal(agent_syslog_tz_parse(NULL, &tz), -1);

    /* A fixed offset applies to RFC 3164 timestamps, not to zoned ones. */
    agent_syslog_msg_t m;
    agent_syslog_opts_t o = nov();
    assert_int_equal(agent_syslog_tz_parse("-05:30", &o.tz), 0);
    assert_int_equal(parse("<13>Nov 26 17:40:01 h a: x", &o, &m), 0);
    assert_int_equal(m.ts_ms, utc_ms(2026, 11, 26, 23, 10, 1, 0));
    assert_int_equal(parse("<13>1 2026-11-26T17:40:01Z h a - - - x", &o, &m), 0);
    assert_int_equal(m.ts_ms, utc_ms(2026, 11, 26, 17, 40, 1, 0));

    /* Local rules, with and without daylight saving time. */
    char *old = getenv("TZ") ? strdup(getenv("TZ")) : NULL;
    setenv("TZ", "Europe/Berlin", 1);
    tzset();
    o.tz.local = true;
    assert_int_equal(parse("<13>Nov 26 17:40:01 h a: x", &o, &m), 0);
    assert_int_equal(m.ts_ms, utc_ms(2026, 11, 26, 16, 40, 1, 0));
    assert_int_equal(parse("<13>Jul  1 12:00:00 h a: x", &o, &m), 0);
    assert_int_equal(m.ts_ms, utc_ms(2026, 7, 1, 10, 0, 0, 0));
    /* at 23:30Z on Dec 31, Berlin is in 2027 already */
    o.now_ms = utc_ms(2026, 12, 31, 23, 30, 0, 0);
    assert_int_equal(parse("<13>Dec 31 12:00:00 h a: x", &o, &m), 0);
    assert_int_equal(m.ts_ms, utc_ms(2026, 12, 31, 11, 0, 0, 0));
    assert_int_equal(parse("<13>Jun 15 12:00:00 h a: x", &o, &m), 0);
    assert_int_equal(m.ts_ms, utc_ms(2027, 6, 15, 10, 0, 0, 0));
    if (old) {
        setenv("TZ", old, 1);
        free(old);
    } else {
        unsetenv("TZ");
    }
    tzset();
}

static void test_malformed(void **state)
{
    (void)state;
    agent_syslog_opts_t o = nov();
    agent_syslog_msg_t m;
    static const char *const no_pri[] = {
        "<192>Nov 26 17:40:01 h a: x",
        "<013>Nov 26 17:40:01 h a: x",
        "<>x",
        "<1234>x",
        "<13",
        "<13x>x",
        "<-1>x",
        "<",
        "",
    };
    for (size_t i = 0; i < sizeof(no_pri) / sizeof(no_pri[0]); i++) {
        assert_int_equal(parse(no_pri[i], &o, &m), 1);
        assert_int_equal(m.pri, -1);
        assert_int_equal(m.facility, 1);
        assert_int_equal(m.severity, 5);
        assert_ptr_equal(m.msg.p, no_pri[i]);
        assert_int_equal(m.msg.n, strlen(no_pri[i]));
    }
    /* PRI but no timestamp: PRI kept, the whole input is the message. */
    static const char *const no_ts[] = {
        "<13>hello world",
        "<13>Nov 26 17:40 h a: x",
        "<13>Nov 32 17:40:01 h a: x",
        "<13>Nov 26 25:40:01 h a: x",
        "<13>Foo 26 17:40:01 h a: x",
        "<13>Nov 26 17:40:01x h a: x",
        "<13>1 hello",
        "<13>1 2026-11-26T17:40:01Z",
        "<13>1 2026-11-26T17:40:01Z h a p m",
        "<13>1 2026-11-26T17:40:01Z h a p m ",
        "<13>1 2026-11-26T17:40:01Z h a  m - x",
    };
    for (size_t i = 0; i < sizeof(no_ts) / sizeof(no_ts[0]); i++) {
        assert_int_equal(parse(no_ts[i], &o, &m), 1);
        assert_int_equal(m.pri, 13);
        assert_ptr_equal(m.msg.p, no_ts[i]);
        assert_int_equal(m.msg.n, strlen(no_ts[i]));
    }
    /* Plain text: not well formed, kept whole. */
    assert_int_equal(parse("just text", &o, &m), 1);
    assert_str(m.msg, "just text");
    assert_int_equal(agent_syslog_parse(NULL, 0, &o, &m), 1);
    assert_non_null(m.msg.p);
    /* A NULL opts uses the clock and UTC. */
    assert_int_equal(parse("<13>1 2026-11-26T17:40:01Z h a - - - x", NULL, &m), 0);
}

/* Every prefix of valid messages, each in an exact-size copy (so a read
   past n is an ASan report), returns 0 or 1 with fields inside it. */
static void test_prefixes(void **state)
{
    (void)state;
    static const char *const valid[] = {
        "<13>Nov 26 17:40:01 myuser: hello",
        "<13>Nov 26 17:40:01 myhost myuser: hello",
        "<191>Nov  6 17:40:01 vm cron[5928]: job",
        "<13>2026-11-26T17:40:01.123456+01:00 web01 nginx[4411]: GET /",
        "<13>1 2026-11-26T17:40:01.123456+00:00 myhost myuser - - [timeQuality tzKnown=\"1\" "
        "isSynced=\"0\"] hello",
        "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 "
        "[exampleSDID@32473 iut=\"3\" eventSource=\"App\\\"x\\]\"][b c=\"\xC3\xBC\"] "
        "\xEF\xBB\xBFmsg",
        "<0>1 - - - - - -",
    };
    agent_syslog_opts_t o = nov();
    agent_syslog_msg_t m;
    char json[2048];
    for (size_t v = 0; v < sizeof(valid) / sizeof(valid[0]); v++) {
        size_t n = strlen(valid[v]);
        assert_int_equal(agent_syslog_parse(valid[v], n, &o, &m), 0);
        for (size_t len = 0; len <= n; len++) {
            char *copy = malloc(len ? len : 1);
            assert_non_null(copy);
            memcpy(copy, valid[v], len);
            int rc = agent_syslog_parse(copy, len, &o, &m);
            assert_true(rc == 0 || rc == 1);
            agent_syslog_str_t f[6] = {m.hostname, m.app, m.procid, m.msgid, m.sd, m.msg};
            for (int k = 0; k < 6; k++) {
                if (f[k].p) {
                    assert_true(f[k].p >= copy && f[k].p + f[k].n <= copy + len);
                }
            }
            if (rc == 1) {
                assert_ptr_equal(m.msg.p, copy);
            }
            if (m.sd.p) {
                assert_true(agent_syslog_sd_json(m.sd.p, m.sd.n, json, sizeof(json)) > 0);
            }
            (void)agent_syslog_sd_json(copy, len, json, sizeof(json));
            free(copy);
        }
    }
}

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(agent_syslog_facility_name(0), "kern");
    assert_string_equal(agent_syslog_facility_name(1), "user");
    assert_string_equal(agent_syslog_facility_name(10), "authpriv");
    assert_string_equal(agent_syslog_facility_name(16), "local0");
    assert_string_equal(agent_syslog_facility_name(23), "local7");
    assert_null(agent_syslog_facility_name(24));
    assert_null(agent_syslog_facility_name(-1));
    assert_string_equal(agent_syslog_severity_name(0), "emerg");
    assert_string_equal(agent_syslog_severity_name(3), "err");
    assert_string_equal(agent_syslog_severity_name(4), "warning");
    assert_string_equal(agent_syslog_severity_name(7), "debug");
    assert_null(agent_syslog_severity_name(8));
    assert_null(agent_syslog_severity_name(-1));
}

/* ---------------------------------------------------------------------- */
/* Framer                                                                 */

typedef struct frames {
    char text[8192]; /* messages, each followed by '|' ('#' when truncated) */
    size_t len;
    int count;
    int err;
} frames_t;

static void collect(agent_syslog_framer_t *f, frames_t *out, bool eof)
{
    const char *msg;
    size_t len;
    bool trunc;
    int rc;
    while ((rc = eof ? agent_syslog_framer_finish(f, &msg, &len, &trunc)
                     : agent_syslog_framer_next(f, &msg, &len, &trunc)) == 1) {
        assert_true(len <= f->max_msg);
        assert_true(out->len + len + 1 < sizeof(out->text));
        memcpy(out->text + out->len, msg, len);
        out->len += len;
        out->text[out->len++] = trunc ? '#' : '|';
        out->text[out->len] = '\0';
        out->count++;
    }
    if (rc < 0) {
        out->err = rc;
    }
}

/* Frames a stream pushed in pieces: `piece` bytes, or random 1..13 (seed). */
static frames_t frame(int mode, size_t max_msg, const char *s, size_t n, size_t piece,
                      unsigned seed)
{
    agent_syslog_framer_t f;
    frames_t out;
    memset(&out, 0, sizeof(out));
    assert_int_equal(agent_syslog_framer_init(&f, mode, max_msg), 0);
    size_t off = 0;
    while (off < n && !out.err) {
        size_t want = piece ? piece : 1 + (size_t)(rand_r(&seed) % 13);
        if (want > n - off) {
            want = n - off;
        }
        size_t got = agent_syslog_framer_push(&f, s + off, want);
        assert_true(f.len - f.pos <= max_msg + 32);
        off += got;
        collect(&f, &out, false);
        if (got == 0) {
            assert_int_not_equal(out.err, 0); /* full only on error */
        }
    }
    if (!out.err) {
        collect(&f, &out, true);
    }
    agent_syslog_framer_fini(&f);
    return out;
}

/* The same result pushed whole, a byte at a time and in random pieces. */
static frames_t frame_all_ways(int mode, size_t max_msg, const char *s, size_t n)
{
    frames_t whole = frame(mode, max_msg, s, n, n ? n : 1, 0);
    frames_t bytes = frame(mode, max_msg, s, n, 1, 0);
    assert_string_equal(whole.text, bytes.text);
    assert_int_equal(whole.err, bytes.err);
    for (unsigned seed = 1; seed <= 20; seed++) {
        frames_t r = frame(mode, max_msg, s, n, 0, seed);
        assert_string_equal(whole.text, r.text);
        assert_int_equal(whole.err, r.err);
    }
    return whole;
}

/* logger -T --octet-count hello there; logger -T --rfc3164 hi */
#define LOGGER_OCTET                                                                               \
    "101 <13>1 2026-11-26T17:25:49.794870+00:00 vm root - - [timeQuality tzKnown=\"1\" "           \
    "isSynced=\"0\"] hello there"
#define LOGGER_OCTET_BODY                                                                          \
    "<13>1 2026-11-26T17:25:49.794870+00:00 vm root - - [timeQuality tzKnown=\"1\" "               \
    "isSynced=\"0\"] hello there"
#define LOGGER_LINE "<13>Nov 26 17:25:49 vm root: hi\n"
#define LOGGER_OCTET2 "43 <13>Nov 26 17:25:49 vm sshd[6755]: Accepted"

static void test_framer_newline(void **state)
{
    (void)state;
    const char *s = LOGGER_LINE "<13>Nov 26 17:40:01 h a: two\r\n\n\r\n"
                                "<13>Nov 26 17:40:01 h a: tail";
    frames_t r = frame_all_ways(AGENT_SYSLOG_FRAME_NEWLINE, 1024, s, strlen(s));
    assert_string_equal(r.text, "<13>Nov 26 17:25:49 vm root: hi|<13>Nov 26 17:40:01 h a: two|"
                                "<13>Nov 26 17:40:01 h a: tail|");
    assert_int_equal(r.count, 3);

    /* In newline mode a leading count is message text. */
    s = LOGGER_OCTET2 "\n";
    r = frame_all_ways(AGENT_SYSLOG_FRAME_NEWLINE, 1024, s, strlen(s));
    assert_string_equal(r.text, LOGGER_OCTET2 "|");

    /* Lines longer than max_msg: cut and flagged, the rest dropped; a line
       of exactly max_msg with CR LF is whole. */
    s = "0123456789abc\nshort\n0123456789\r\n0123456789A\r\nend";
    r = frame_all_ways(AGENT_SYSLOG_FRAME_NEWLINE, 10, s, strlen(s));
    assert_string_equal(r.text, "0123456789#short|0123456789|0123456789#end|");

    /* An unterminated line longer than max_msg at the end. */
    s = "x\n0123456789abcdefghijklmnopqrstuvwxyz0123456789";
    r = frame_all_ways(AGENT_SYSLOG_FRAME_NEWLINE, 10, s, strlen(s));
    assert_string_equal(r.text, "x|0123456789#");
}

static void test_framer_octet(void **state)
{
    (void)state;
    const char *s = LOGGER_OCTET LOGGER_OCTET2 "\n" LOGGER_OCTET2;
    frames_t r = frame_all_ways(AGENT_SYSLOG_FRAME_OCTET, 1024, s, strlen(s));
    assert_string_equal(r.text, LOGGER_OCTET_BODY "|<13>Nov 26 17:25:49 vm sshd[6755]: Accepted|"
                                                  "<13>Nov 26 17:25:49 vm sshd[6755]: Accepted|");
    assert_int_equal(r.err, 0);

    /* A frame longer than max_msg: its first max_msg bytes, flagged; the
       rest skipped; the next frame intact. */
    s = "20 abcdefghijklmnopqrst3 xyz1 \n";
    r = frame_all_ways(AGENT_SYSLOG_FRAME_OCTET, 10, s, strlen(s));
    assert_string_equal(r.text, "abcdefghij#xyz|\n|");

    /* A frame with a count far beyond the data skipped as it arrives. */
    agent_syslog_framer_t f;
    const char *msg;
    size_t len;
    bool trunc;
    assert_int_equal(agent_syslog_framer_init(&f, AGENT_SYSLOG_FRAME_OCTET, 8), 0);
    assert_int_equal(agent_syslog_framer_push(&f, "100000 ", 7), 7);
    assert_int_equal(agent_syslog_framer_next(&f, &msg, &len, &trunc), 0);
    char junk[32];
    memset(junk, 'j', sizeof(junk));
    assert_int_equal(agent_syslog_framer_push(&f, junk, sizeof(junk)), sizeof(junk));
    assert_int_equal(agent_syslog_framer_next(&f, &msg, &len, &trunc), 1);
    assert_int_equal(len, 8);
    assert_true(trunc);
    assert_int_equal(f.truncated, 1);
    for (int i = 0; i < 3000; i++) {
        assert_int_equal(agent_syslog_framer_next(&f, &msg, &len, &trunc), 0);
        assert_int_equal(agent_syslog_framer_push(&f, junk, sizeof(junk)), sizeof(junk));
    }
    assert_int_equal(agent_syslog_framer_next(&f, &msg, &len, &trunc), 0);
    size_t left = 100000 - 8 - 24 - 3000 * 32;
    assert_int_equal(f.skip, left);
    while (left > 0) {
        size_t n = left < sizeof(junk) ? left : sizeof(junk);
        assert_int_equal(agent_syslog_framer_push(&f, junk, n), n);
        assert_int_equal(agent_syslog_framer_next(&f, &msg, &len, &trunc), 0);
        left -= n;
    }
    assert_int_equal(agent_syslog_framer_push(&f, "2 ok", 4), 4);
    assert_int_equal(agent_syslog_framer_next(&f, &msg, &len, &trunc), 1);
    assert_int_equal(len, 2);
    assert_memory_equal(msg, "ok", 2);
    assert_false(trunc);
    agent_syslog_framer_fini(&f);

    /* A frame cut short by the end of the stream: what came, flagged. */
    s = "5 abcde9 fgh";
    r = frame_all_ways(AGENT_SYSLOG_FRAME_OCTET, 100, s, strlen(s));
    assert_string_equal(r.text, "abcde|fgh#");
}

static void test_framer_eproto(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "x",   "0 a",  "01 a",       "1234567890 a", /* ten digits */
        "12a", "-1 a", "3 abc<13>x", "3 abc 3 abc",  /* a space where a count belongs */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        frames_t r = frame_all_ways(AGENT_SYSLOG_FRAME_OCTET, 100, bad[i], strlen(bad[i]));
        assert_int_equal(r.err, -EPROTO);
    }
    /* Sticky: the stream stays in error; _finish hands out nothing more. */
    agent_syslog_framer_t f;
    const char *msg;
    size_t len;
    bool trunc;
    assert_int_equal(agent_syslog_framer_init(&f, AGENT_SYSLOG_FRAME_OCTET, 100), 0);
    assert_int_equal(agent_syslog_framer_push(&f, "3 abcx3 abc", 11), 11);
    assert_int_equal(agent_syslog_framer_next(&f, &msg, &len, &trunc), 1);
    assert_int_equal(agent_syslog_framer_next(&f, &msg, &len, &trunc), -EPROTO);
    assert_int_equal(agent_syslog_framer_next(&f, &msg, &len, &trunc), -EPROTO);
    assert_int_equal(f.framing_errors, 1);
    assert_int_equal(agent_syslog_framer_finish(&f, &msg, &len, &trunc), 0);
    agent_syslog_framer_fini(&f);

    /* A count header cut by the end of the stream is a framing error. */
    assert_int_equal(agent_syslog_framer_init(&f, AGENT_SYSLOG_FRAME_OCTET, 100), 0);
    assert_int_equal(agent_syslog_framer_push(&f, "12", 2), 2);
    assert_int_equal(agent_syslog_framer_next(&f, &msg, &len, &trunc), 0);
    assert_int_equal(agent_syslog_framer_finish(&f, &msg, &len, &trunc), 0);
    assert_int_equal(f.framing_errors, 1);
    agent_syslog_framer_fini(&f);

    assert_int_equal(agent_syslog_framer_init(&f, 3, 100), -EINVAL);
    assert_int_equal(agent_syslog_framer_init(&f, AGENT_SYSLOG_FRAME_AUTO, 0), -EINVAL);
}

static void test_framer_auto(void **state)
{
    (void)state;
    /* logger's octet-counted and newline frames mixed, a line that starts
       with digits but no count, ten digits (no count), and a final line. */
    const char *s =
        LOGGER_OCTET LOGGER_LINE LOGGER_OCTET2 "\n"
                                               "2026-11-26 17:40:01 a digit first\n"
                                               "12abc\n"
                                               "1234567890 ten digits\n" LOGGER_OCTET2 "0 zero\n"
                                               "tail";
    frames_t r = frame_all_ways(AGENT_SYSLOG_FRAME_AUTO, 1024, s, strlen(s));
    assert_int_equal(r.err, 0);
    assert_string_equal(r.text, LOGGER_OCTET_BODY "|<13>Nov 26 17:25:49 vm root: hi|"
                                                  "<13>Nov 26 17:25:49 vm sshd[6755]: Accepted|"
                                                  "2026-11-26 17:40:01 a digit first|"
                                                  "12abc|"
                                                  "1234567890 ten digits|"
                                                  "<13>Nov 26 17:25:49 vm sshd[6755]: Accepted|"
                                                  "0 zero|tail|");

    /* Oversize in both kinds; digits only at the end are a line. */
    s = "12 abcdefghijkl<13>a very long line\n123";
    r = frame_all_ways(AGENT_SYSLOG_FRAME_AUTO, 8, s, strlen(s));
    assert_string_equal(r.text, "abcdefgh#<13>a ve#123|");
    assert_int_equal(r.err, 0);
}

static void test_framer_bounded(void **state)
{
    (void)state;
    agent_syslog_framer_t f;
    const char *msg;
    size_t len;
    bool trunc;
    char data[200];
    memset(data, 'a', sizeof(data));
    assert_int_equal(agent_syslog_framer_init(&f, AGENT_SYSLOG_FRAME_NEWLINE, 16), 0);
    assert_int_equal(agent_syslog_framer_room(&f), 48);
    /* A caller that does not take messages out gets no more room. */
    assert_int_equal(agent_syslog_framer_push(&f, data, sizeof(data)), 48);
    assert_int_equal(agent_syslog_framer_room(&f), 0);
    assert_int_equal(agent_syslog_framer_push(&f, data, 1), 0);
    assert_int_equal(agent_syslog_framer_next(&f, &msg, &len, &trunc), 1);
    assert_int_equal(len, 16);
    assert_true(trunc);
    /* The rest of the line is being discarded. */
    assert_int_equal(agent_syslog_framer_next(&f, &msg, &len, &trunc), 0);
    assert_int_equal(agent_syslog_framer_room(&f), 48);
    assert_int_equal(agent_syslog_framer_push(&f, "aaa\nok\n", 7), 7);
    assert_int_equal(agent_syslog_framer_next(&f, &msg, &len, &trunc), 1);
    assert_int_equal(len, 2);
    assert_memory_equal(msg, "ok", 2);
    assert_false(trunc);
    assert_int_equal(agent_syslog_framer_next(&f, &msg, &len, &trunc), 0);
    assert_int_equal(agent_syslog_framer_finish(&f, &msg, &len, &trunc), 0);
    assert_int_equal(f.truncated, 1);
    agent_syslog_framer_fini(&f);
    agent_syslog_framer_fini(&f); /* twice is harmless */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_logger_rfc3164),     cmocka_unit_test(test_logger_rfc5424),
        cmocka_unit_test(test_rfc5424_examples),   cmocka_unit_test(test_rfc5424_nil_and_limits),
        cmocka_unit_test(test_rfc5424_timestamps), cmocka_unit_test(test_sd_escapes_and_json),
        cmocka_unit_test(test_sd_malformed),       cmocka_unit_test(test_rfc3164_forms),
        cmocka_unit_test(test_rfc3164_year_wrap),  cmocka_unit_test(test_rfc3164_device_forms),
        cmocka_unit_test(test_timezones),          cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_prefixes),           cmocka_unit_test(test_names),
        cmocka_unit_test(test_framer_newline),     cmocka_unit_test(test_framer_octet),
        cmocka_unit_test(test_framer_eproto),      cmocka_unit_test(test_framer_auto),
        cmocka_unit_test(test_framer_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
