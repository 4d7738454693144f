/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The part the parse-step fuzz targets (fuzz_parse_json, _logfmt, _regex)
 * share: one line through agent_parse_all() the way a pipeline runs it
 * (the fixed fields first, the scratch buffer reserved as the tail input
 * reserves it), then the promises checked:
 *
 *  - the step returns no match or parsed, and a failed step marks the
 *    event;
 *  - the scratch buffer never moves (fields point into it) and never
 *    grows past its reservation;
 *  - every field's name and value lie inside the line, the scratch
 *    buffer or the configuration;
 *  - the rendered value is one valid JSON object (strings valid UTF-8),
 *    and every field's text and a template over all of them can be read.
 *
 * Sets fuzz_input_valid when the step parsed the line.
 */
#ifndef TRIBUTARY_FUZZ_PARSE_H
#define TRIBUTARY_FUZZ_PARSE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "event.h"
#include "parse/parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int fuzz_input_valid;

/* ---- a strict JSON checker (RFC 8259), for the rendered value ---- */

static const char *fj_value(const char *p, const char *e, int depth);

static const char *fj_ws(const char *p, const char *e)
{
    while (p < e && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) {
        p++;
    }
    return p;
}

static size_t fj_utf8(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t k = c < 0x80                 ? 1
               : c >= 0xc2 && c <= 0xdf ? 2
               : c >= 0xe0 && c <= 0xef ? 3
               : c >= 0xf0 && c <= 0xf4 ? 4
                                        : 0;
    if (k == 0 || k > n) {
        return 0;
    }
    for (size_t i = 1; i < k; i++) {
        if ((s[i] & 0xc0) != 0x80) {
            return 0;
        }
    }
    if ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] > 0x9f) || (c == 0xf0 && s[1] < 0x90) ||
        (c == 0xf4 && s[1] > 0x8f)) {
        return 0;
    }
    return k;
}

static const char *fj_string(const char *p, const char *e)
{
    if (p >= e || *p != '"') {
        return NULL;
    }
    for (p++; p < e;) {
        unsigned char c = (unsigned char)*p;
        if (c == '"') {
            return p + 1;
        }
        if (c < 0x20) {
            return NULL;
        }
        if (c == '\\') {
            if (p + 1 >= e) {
                return NULL;
            }
            char x = p[1];
            if (x == 'u') {
                if (e - p < 6) {
                    return NULL;
                }
                for (int i = 2; i < 6; i++) {
                    char h = p[i];
                    if (!((h >= '0' && h <= '9') || (h >= 'a' && h <= 'f') ||
                          (h >= 'A' && h <= 'F'))) {
                        return NULL;
                    }
                }
                p += 6;
            } else if (x == '"' || x == '\\' || x == '/' || x == 'b' || x == 'f' || x == 'n' ||
                       x == 'r' || x == 't') {
                p += 2;
            } else {
                return NULL;
            }
            continue;
        }
        size_t k = fj_utf8((const unsigned char *)p, (size_t)(e - p));
        if (k == 0) {
            return NULL;
        }
        p += k;
    }
    return NULL;
}

static const char *fj_number(const char *p, const char *e)
{
    if (p < e && *p == '-') {
        p++;
    }
    if (p >= e || *p < '0' || *p > '9') {
        return NULL;
    }
    if (*p == '0') {
        p++;
    } else {
        while (p < e && *p >= '0' && *p <= '9') {
            p++;
        }
    }
    if (p < e && *p == '.') {
        p++;
        if (p >= e || *p < '0' || *p > '9') {
            return NULL;
        }
        while (p < e && *p >= '0' && *p <= '9') {
            p++;
        }
    }
    if (p < e && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < e && (*p == '+' || *p == '-')) {
            p++;
        }
        if (p >= e || *p < '0' || *p > '9') {
            return NULL;
        }
        while (p < e && *p >= '0' && *p <= '9') {
            p++;
        }
    }
    return p;
}

static const char *fj_value(const char *p, const char *e, int depth)
{
    if (p >= e || depth > 10000) {
        return NULL;
    }
    if (*p == '"') {
        return fj_string(p, e);
    }
    if (*p == '{' || *p == '[') {
        char close = *p == '{' ? '}' : ']';
        p = fj_ws(p + 1, e);
        if (p < e && *p == close) {
            return p + 1;
        }
        for (;;) {
            if (close == '}') {
                p = fj_string(p, e);
                if (p == NULL) {
                    return NULL;
                }
                p = fj_ws(p, e);
                if (p >= e || *p != ':') {
                    return NULL;
                }
                p = fj_ws(p + 1, e);
            }
            p = fj_value(p, e, depth + 1);
            if (p == NULL) {
                return NULL;
            }
            p = fj_ws(p, e);
            if (p < e && *p == ',') {
                p = fj_ws(p + 1, e);
                continue;
            }
            return p < e && *p == close ? p + 1 : NULL;
        }
    }
    static const char *const lit[] = {"true", "false", "null"};
    for (int i = 0; i < 3; i++) {
        size_t n = strlen(lit[i]);
        if ((size_t)(e - p) >= n && memcmp(p, lit[i], n) == 0) {
            return p + n;
        }
    }
    return fj_number(p, e);
}

static bool fj_valid_object(const char *s, size_t n)
{
    const char *e = s + n;
    const char *p = fj_ws(s, e);
    if (p >= e || *p != '{') {
        return false;
    }
    p = fj_value(p, e, 0);
    return p != NULL && fj_ws(p, e) == e;
}

/* ---- the run ---- */

/* The strings a step takes from the agent rather than from the line. */
static bool fuzz_parse_own(const char *s, size_t n)
{
    static const char *const known[] = {"parse_error", "parse_error_by", "true",  "regex",
                                        "json",        "logfmt",         "syslog"};
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
        if (strlen(known[i]) == n && memcmp(known[i], s, n) == 0) {
            return true;
        }
    }
    return false;
}

static bool within(const char *p, size_t n, const char *base, size_t len)
{
    return p >= base && (size_t)(p - base) <= len && n <= len - (size_t)(p - base);
}

/* The fields agent_event_begin() sets, as a tail input's event has them. */
static void fixed_fields(agent_event_t *ev, const char *line, size_t size)
{
    ev->fields[0] = (agent_field_t){"host", 4, "\"h\"", 3, true, true};
    ev->fields[1] = (agent_field_t){"agent", 5, "\"a\"", 3, true, true};
    ev->fields[2] = (agent_field_t){"source", 6, "/var/log/x.log", 14, false, true};
    ev->fields[3] = (agent_field_t){"message", 7, line, size, false, true};
    ev->nfields = 4;
}

/* One line through the step p. `own` says whether a field's name or value
   outside the line and the scratch buffer belongs to the configuration
   (the target knows which strings its step may use). */
static void fuzz_parse_run(agent_parse_conf_t *p, const uint8_t *data, size_t size,
                           bool (*own)(const char *s, size_t n))
{
    const char *line = (const char *)data;
    agent_sbuf_t scratch = {0}, out = {0}, tmpl = {0};
    if (agent_sbuf_reserve(&scratch, size * 2 + 1024) != 0) {
        return;
    }
    const char *const sp = scratch.p;
    const size_t cap = scratch.cap;
    agent_event_t ev;
    memset(&ev, 0, sizeof(ev));
    ev.ts_ms = 1795687200000;
    ev.scratch = &scratch;
    fixed_fields(&ev, line, size);
    agent_pipeline_conf_t pc = {.parse = p, .nparse = 1};
    int rc = agent_parse_apply(p, &ev);
    if (rc < -1 || rc > 2) {
        abort();
    }
    /* again through agent_parse_all, which marks a failure (the step may
       have replaced a fixed field: they are set again) */
    fixed_fields(&ev, line, size);
    scratch.len = 0;
    size_t failed = agent_parse_all(&pc, &ev);
    if (failed != (rc != 0) || (failed && agent_event_get(&ev, "parse_error", 11) == NULL)) {
        abort();
    }
    if (scratch.p != sp || scratch.cap != cap || scratch.len > cap) {
        abort(); /* fields point into it: it must not move */
    }
    if (ev.nfields > AGENT_MAX_FIELDS) {
        abort();
    }
    for (size_t i = 4; i < ev.nfields; i++) {
        const agent_field_t *f = &ev.fields[i];
        if (!within(f->name, f->nlen, line, size) && !within(f->name, f->nlen, sp, scratch.len) &&
            !own(f->name, f->nlen)) {
            abort();
        }
        if (!within(f->val, f->vlen, line, size) && !within(f->val, f->vlen, sp, scratch.len) &&
            !own(f->val, f->vlen)) {
            abort();
        }
        const char *t;
        size_t tn;
        agent_field_text(&ev, f, &t, &tn);
        if (scratch.p != sp) {
            abort();
        }
        agent_sbuf_putc(&tmpl, '{');
        agent_sbuf_put(&tmpl, f->name, f->nlen);
        agent_sbuf_puts(&tmpl, "}.");
    }
    agent_event_render(&ev, &out);
    if (out.err || !fj_valid_object(out.p, out.len)) {
        abort();
    }
    agent_sbuf_putc(&tmpl, '\0');
    if (!tmpl.err) {
        out.len = 0;
        agent_template_render(&ev, tmpl.p, false, &out);
        out.len = 0;
        agent_template_render(&ev, tmpl.p, true, &out);
        if (out.len > 249) {
            abort();
        }
    }
    fuzz_input_valid = rc == 0;
    agent_sbuf_fini(&scratch);
    agent_sbuf_fini(&out);
    agent_sbuf_fini(&tmpl);
}

/*
 * The json and logfmt targets: the line through a step of `type` three
 * times, with types: of every kind and an RFC 3339 time, with a unix time,
 * and with a strptime() time format; the last sets fuzz_input_valid.
 */
__attribute__((unused)) static bool fuzz_parse_own_field(const char *s, size_t n)
{
    return fuzz_parse_own(s, n);
}

__attribute__((unused)) static void fuzz_parse_three(int type, const uint8_t *data, size_t size)
{
    trib_config_pair_t types[] = {
        {.key = "status", .value = "int"},
        {.key = "bytes", .value = "float"},
        {.key = "ok", .value = "bool"},
        {.key = "at", .value = "timestamp"},
    };
    agent_parse_conf_t typed = {
        .type = type,
        .field = "message",
        .time_field = "time",
        .time_format = "rfc3339",
        .types = {.items = types, .count = 4},
        .type_codes = {AGENT_TYPE_INT, AGENT_TYPE_FLOAT, AGENT_TYPE_BOOL, AGENT_TYPE_TIMESTAMP},
    };
    agent_parse_conf_t unix_time = {
        .type = type, .field = "message", .time_field = "ts", .time_format = "unix"};
    agent_parse_conf_t strptime_time = {.type = type,
                                        .field = "message",
                                        .time_field = "time",
                                        .time_format = "%Y-%m-%d %H:%M:%S %z"};
    fuzz_parse_run(&unix_time, data, size, fuzz_parse_own_field);
    fuzz_parse_run(&strptime_time, data, size, fuzz_parse_own_field);
    fuzz_parse_run(&typed, data, size, fuzz_parse_own_field);
}

#endif
