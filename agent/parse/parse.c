/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Parsers: regex (PCRE2 named groups), json (a top-level object's members),
 * logfmt (key=value, key="quoted value") and syslog (an RFC 5424 or RFC 3164
 * line, as /var/log/syslog holds them: facility, severity, hostname, app,
 * procid, msgid, structured data, the message and its time, read in the
 * input's timezone when the line has none: syslog/event.h, the mapping the
 * syslog input uses too). Each adds fields to the
 * event; values point into the parsed text (or, for decoded logfmt
 * strings, into the event's scratch buffer), so nothing is copied before
 * rendering. JSON member values are kept as raw JSON and rendered as they
 * came, so numbers stay numbers and nested objects stay objects.
 *
 * A regex runs under the configured match and depth limits: a pattern that
 * backtracks catastrophically fails that event's parse (counted) instead
 * of spinning the loop. An event whose parse fails keeps its message.
 */
#include "parse/parse.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <string.h>
#include <time.h>

#include "regex.h"
#include "tributary/civil.h"
#include "syslog/syslog_event.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* Where a step notes the field its time_field names, as it sets it, so the
   time is read without looking the field up. */
typedef struct time_slot {
    const char *name; /* the step's time_field, or NULL */
    size_t nlen;
    agent_field_t *f; /* the field, once set */
} time_slot_t;

static inline void time_note(time_slot_t *ts, agent_field_t *f, const char *name, size_t nlen)
{
    if (f != NULL && nlen == ts->nlen && ts->name != NULL &&
        (nlen == 0 || name[0] == ts->name[0]) && memcmp(name, ts->name, nlen) == 0) {
        ts->f = f;
    }
}

static int parse_regex(const agent_parse_conf_t *p, agent_event_t *ev, const char *s, size_t n,
                       time_slot_t *ts)
{
    agent_regex_t *re = p->re;
    int rc = agent_regex_exec(re, s, n);
    if (rc == PCRE2_ERROR_NOMATCH) {
        return 1;
    }
    if (rc < 0) {
        return -1;
    }
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(re->md);
    uint32_t pairs = pcre2_get_ovector_count(re->md);
    if (!re->distinct) {
        /* groups sharing a name ((?J)): each set replaces the last */
        for (uint32_t i = 0; i < re->ngroups; i++) {
            uint32_t g = re->groups[i].num;
            if (g >= pairs || ov[2 * g] == PCRE2_UNSET) {
                continue;
            }
            agent_event_set_name(ev, re->groups[i].name, re->groups[i].nlen, re->groups[i].plain,
                                 s + ov[2 * g], ov[2 * g + 1] - ov[2 * g], false);
        }
        return 0;
    }
    /* the group time_field names, found once for the step */
    if (re->time_key != ts->name) {
        re->time_key = ts->name;
        re->time_idx = -1;
        for (uint32_t i = 0; ts->name != NULL && i < re->ngroups; i++) {
            if (re->groups[i].nlen == ts->nlen &&
                memcmp(re->groups[i].name, ts->name, ts->nlen) == 0) {
                re->time_idx = (int)i;
            }
        }
    }
    /* the names were measured, checked and hashed at load: no strlen(), no
       escaping and (mostly) no look-up per line */
    uint64_t names = agent_event_names(ev);
    for (uint32_t i = 0; i < re->ngroups; i++) {
        uint32_t g = re->groups[i].num;
        if (g >= pairs || ov[2 * g] == PCRE2_UNSET) {
            continue;
        }
        agent_field_t *f =
            agent_event_put(ev, &names, re->groups[i].bit, re->groups[i].name, re->groups[i].nlen,
                            re->groups[i].plain, s + ov[2 * g], ov[2 * g + 1] - ov[2 * g], false);
        if ((int)i == re->time_idx) {
            ts->f = f;
        }
    }
    return 0;
}

static inline const char *skip_ws(const char *p, const char *e)
{
    if (p < e && (unsigned char)*p > ' ') {
        return p; /* the usual case: no white space */
    }
    while (p < e && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) {
        p++;
    }
    return p;
}

/* Past a JSON string starting at p ('"'); NULL unless it is a valid one
   (RFC 8259: escapes, no control bytes, UTF-8), since member values are
   rendered as they came. Plain bytes are skipped 16 at a time. */
static const char *skip_string_esc(const char *p, const char *e, bool *esc)
{
    for (p++; p < e;) {
#if defined(__SSE2__)
        const __m128i lim = _mm_set1_epi8(0x1f), q = _mm_set1_epi8('"'), bs = _mm_set1_epi8('\\');
        while (e - p >= 16) {
            __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
            __m128i stop = _mm_or_si128(_mm_cmpeq_epi8(_mm_max_epu8(v, lim), lim),
                                        _mm_or_si128(_mm_cmpeq_epi8(v, q), _mm_cmpeq_epi8(v, bs)));
            unsigned mask = (unsigned)(_mm_movemask_epi8(stop) | _mm_movemask_epi8(v));
            if (mask != 0) {
                p += __builtin_ctz(mask);
                break;
            }
            p += 16;
        }
        if (p >= e) {
            return NULL;
        }
#endif
        unsigned char c = (unsigned char)*p;
        if (c == '"') {
            return p + 1;
        }
        if (c == '\\') {
            if (e - p < 2) {
                return NULL;
            }
            *esc = true;
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
        if (c < 0x20) {
            return NULL;
        }
        if (c >= 0x80) {
            size_t k = agent_utf8_len((const unsigned char *)p, (size_t)(e - p));
            if (k == 0) {
                return NULL;
            }
            p += k;
            continue;
        }
        p++;
    }
    return NULL;
}

static const char *skip_string(const char *p, const char *e)
{
    bool esc;
    return skip_string_esc(p, e, &esc);
}

/* Past a logfmt quoted value starting at p ('"'); NULL if unterminated.
   Quotes are found with memchr(); one is escaped when an odd run of
   backslashes stands before it. Escapes are not checked: the value is
   decoded (as JSON escapes, leniently) and rendered as a string. */
static const char *skip_quoted(const char *p, const char *e)
{
    for (p++; p < e;) {
        const char *q = memchr(p, '"', (size_t)(e - p));
        if (q == NULL) {
            return NULL;
        }
        const char *b = q;
        while (b > p && b[-1] == '\\') {
            b--;
        }
        if (((q - b) & 1) == 0) {
            return q + 1;
        }
        p = q + 1;
    }
    return NULL;
}

static const char *skip_digits(const char *p, const char *e)
{
    while (p < e && *p >= '0' && *p <= '9') {
        p++;
    }
    return p;
}

/* Past a JSON number (-?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?); NULL if none. */
static const char *skip_number(const char *p, const char *e)
{
    if (p < e && *p == '-') {
        p++;
    }
    if (p >= e || *p < '0' || *p > '9') {
        return NULL;
    }
    p = *p == '0' ? p + 1 : skip_digits(p, e);
    if (p < e && *p == '.') {
        const char *d = p + 1;
        p = skip_digits(d, e);
        if (p == d) {
            return NULL;
        }
    }
    if (p < e && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < e && (*p == '+' || *p == '-')) {
            p++;
        }
        const char *d = p;
        p = skip_digits(d, e);
        if (p == d) {
            return NULL;
        }
    }
    return p;
}

/* Nesting deeper than this fails the parse (the check recurses). */
#define JSON_MAX_DEPTH 64

/* Past one valid JSON value; NULL if malformed. Containers are checked
   member by member, as they are rendered as they came. */
static const char *skip_value(const char *p, const char *e, int depth)
{
    if (p >= e) {
        return NULL;
    }
    if (*p == '"') {
        return skip_string(p, e);
    }
    if (*p == '{' || *p == '[') {
        char close = *p == '{' ? '}' : ']';
        if (depth >= JSON_MAX_DEPTH) {
            return NULL;
        }
        p = skip_ws(p + 1, e);
        if (p < e && *p == close) {
            return p + 1;
        }
        for (;;) {
            if (close == '}') {
                if (p >= e || *p != '"' || (p = skip_string(p, e)) == NULL) {
                    return NULL;
                }
                p = skip_ws(p, e);
                if (p >= e || *p != ':') {
                    return NULL;
                }
                p = skip_ws(p + 1, e);
            }
            p = skip_value(p, e, depth + 1);
            if (p == NULL) {
                return NULL;
            }
            p = skip_ws(p, e);
            if (p < e && *p == ',') {
                p = skip_ws(p + 1, e);
                continue;
            }
            return p < e && *p == close ? p + 1 : NULL;
        }
    }
    size_t n = (size_t)(e - p);
    if (n >= 4 && (memcmp(p, "true", 4) == 0 || memcmp(p, "null", 4) == 0)) {
        return p + 4;
    }
    if (n >= 5 && memcmp(p, "false", 5) == 0) {
        return p + 5;
    }
    return skip_number(p, e);
}

static int parse_json(agent_event_t *ev, const char *s, size_t n, time_slot_t *ts)
{
    const char *e = s + n;
    const char *p = skip_ws(s, e);
    if (p >= e || *p != '{') {
        return 1;
    }
    p = skip_ws(p + 1, e);
    if (p < e && *p == '}') {
        return 0;
    }
    /* One pass that validates and notes where each member is; the fields
       are set only once the whole object is valid, so a malformed object
       adds none. The first JSON_SPANS members are noted; an object with
       more is walked a second time for the rest. */
    enum { JSON_SPANS = 32 };
    struct {
        const char *ks, *ke, *vs, *ve;
        bool kesc; /* the name has escapes */
    } span[JSON_SPANS];
    size_t nspan = 0, members = 0;
    const char *q = p;
    for (;;) {
        if (q >= e || *q != '"') {
            return 1;
        }
        const char *ks = q + 1;
        bool kesc = false;
        const char *ke = skip_string_esc(q, e, &kesc);
        if (ke == NULL) {
            return 1;
        }
        q = skip_ws(ke, e);
        if (q >= e || *q != ':') {
            return 1;
        }
        q = skip_ws(q + 1, e);
        const char *vs = q;
        q = skip_value(q, e, 0);
        if (q == NULL) {
            return 1;
        }
        if (nspan < JSON_SPANS) {
            span[nspan].ks = ks;
            span[nspan].ke = ke - 1;
            span[nspan].vs = vs;
            span[nspan].ve = q;
            span[nspan].kesc = kesc;
            nspan++;
        }
        members++;
        q = skip_ws(q, e);
        if (q < e && *q == ',') {
            q = skip_ws(q + 1, e);
            continue;
        }
        if (q < e && *q == '}') {
            break;
        }
        return 1;
    }
    uint64_t names = agent_event_names(ev);
    for (size_t i = 0; i < members; i++) {
        const char *ks, *ke, *vs, *ve;
        bool kesc = false;
        if (i < nspan) {
            ks = span[i].ks;
            ke = span[i].ke;
            vs = span[i].vs;
            ve = span[i].ve;
            kesc = span[i].kesc;
        } else {
            /* past the noted ones: p is at the next member's key */
            ks = p + 1;
            ke = skip_string_esc(p, e, &kesc) - 1;
            vs = skip_ws(skip_ws(ke + 1, e) + 1, e);
            ve = skip_value(vs, e, 0);
        }
        const char *name = ks;
        size_t nlen = (size_t)(ke - ks);
        if (kesc) {
            agent_field_t tmp = {.val = ks - 1, .vlen = nlen + 2, .raw = true};
            agent_field_text(ev, &tmp, &name, &nlen);
        }
        /* a name without escapes was checked as it was skipped (no control
           byte, no quote, UTF-8): rendered as it came */
        agent_field_t *f = agent_event_put(ev, &names, agent_name_bit(name, nlen), name, nlen,
                                           name == ks, vs, (size_t)(ve - vs), true);
        time_note(ts, f, name, nlen);
        p = skip_ws(skip_ws(ve, e) + 1, e); /* past the ',' to the next key */
    }
    return 0;
}

/* The first byte at or past p that is a, b or c, else e; 16 bytes at a
   time while 16 are left. */
static inline const char *find3(const char *p, const char *e, char a, char b, char c)
{
#if defined(__SSE2__)
    const __m128i va = _mm_set1_epi8(a), vb = _mm_set1_epi8(b), vc = _mm_set1_epi8(c);
    while (e - p >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
        unsigned m = (unsigned)_mm_movemask_epi8(_mm_or_si128(
            _mm_or_si128(_mm_cmpeq_epi8(v, va), _mm_cmpeq_epi8(v, vb)), _mm_cmpeq_epi8(v, vc)));
        if (m != 0) {
            return p + __builtin_ctz(m);
        }
        p += 16;
    }
#endif
    while (p < e && *p != a && *p != b && *p != c) {
        p++;
    }
    return p;
}

static int parse_logfmt(agent_event_t *ev, const char *s, size_t n, time_slot_t *ts)
{
    const char *p = s, *e = s + n;
    int found = 0;
    uint64_t names = agent_event_names(ev);
    while (p < e) {
        while (p < e && (*p == ' ' || *p == '\t')) {
            p++;
        }
        if (p >= e) {
            break;
        }
        const char *ks = p;
        p = find3(p, e, '=', ' ', '\t');
        const char *ke = p;
        if (ke == ks) {
            p++;
            continue;
        }
        if (p >= e || *p != '=') {
            size_t kn = (size_t)(ke - ks);
            /* a bare key */
            time_note(
                ts,
                agent_event_put(ev, &names, agent_name_bit(ks, kn), ks, kn, false, "true", 4, true),
                ks, kn);
            found++;
            continue;
        }
        p++;
        if (p < e && *p == '"') {
            const char *vs = p;
            const char *ve = skip_quoted(p, e);
            if (ve == NULL) {
                return found ? 0 : 1;
            }
            agent_field_t tmp = {.val = vs, .vlen = (size_t)(ve - vs), .raw = true};
            const char *t;
            size_t tn;
            agent_field_text(ev, &tmp, &t, &tn);
            size_t kn = (size_t)(ke - ks);
            time_note(
                ts,
                agent_event_put(ev, &names, agent_name_bit(ks, kn), ks, kn, false, t, tn, false),
                ks, kn);
            p = ve;
        } else {
            const char *vs = p;
            p = find3(p, e, ' ', '\t', '\t');
            size_t kn = (size_t)(ke - ks);
            time_note(ts,
                      agent_event_put(ev, &names, agent_name_bit(ks, kn), ks, kn, false, vs,
                                      (size_t)(p - vs), false),
                      ks, kn);
        }
        found++;
    }
    return found ? 0 : 1;
}

static int digits(const char *s, size_t n, size_t *i, int count)
{
    int v = 0;
    for (int k = 0; k < count; k++) {
        if (*i >= n || s[*i] < '0' || s[*i] > '9') {
            return -1;
        }
        v = v * 10 + (s[(*i)++] - '0');
    }
    return v;
}

static int64_t epoch_ms(int64_t days, int h, int mi, int se, int frac, int off)
{
    return ((days * 86400 + h * 3600 + mi * 60 + se) - off) * 1000 + frac;
}

/* Two ASCII digits as a number, else -1. */
static inline int d2(const char *s)
{
    unsigned a = (unsigned)(unsigned char)s[0] - '0', b = (unsigned)(unsigned char)s[1] - '0';
    return a < 10 && b < 10 ? (int)(a * 10 + b) : -1;
}

/* 1-12 for an English month abbreviation as %b prints it, else 0: the
   three bytes as one number, compared without a call per month. */
static int month_abbr(const char *m)
{
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    uint32_t want = (uint32_t)(unsigned char)m[0] << 16 | (uint32_t)(unsigned char)m[1] << 8 |
                    (unsigned char)m[2];
    for (int k = 0; k < 12; k++) {
        const char *c = months + 3 * k;
        if (want == ((uint32_t)(unsigned char)c[0] << 16 | (uint32_t)(unsigned char)c[1] << 8 |
                     (unsigned char)c[2])) {
            return k + 1;
        }
    }
    return 0;
}

enum { TIME_STRPTIME, TIME_RFC3339, TIME_CLF, TIME_UNIX };

/*
 * The date part of the last time read, per thread, with its day since the
 * epoch: the times of a log differ line by line in their time of day, and
 * their dates come in runs. A time whose first bytes are those of the last
 * one is read from its time of day on.
 */
#define DATE_PREFIX 12
static __thread struct {
    int kind;
    char s[DATE_PREFIX];
    int64_t days;
} last_date;

/* The first len bytes (11 or 12) of s are those of the last date: two
   overlapping words, no memcmp() call. */
static inline bool same_date(int kind, const char *s, size_t len)
{
    uint64_t a, b;
    uint32_t c, d;
    memcpy(&a, s, 8);
    memcpy(&b, last_date.s, 8);
    memcpy(&c, s + len - 4, 4);
    memcpy(&d, last_date.s + len - 4, 4);
    return last_date.kind == kind && ((a ^ b) | (c ^ d)) == 0;
}

static inline void note_date(int kind, const char *s, size_t len, int64_t days)
{
    last_date.kind = kind;
    memcpy(last_date.s, s, len);
    last_date.days = days;
}

/* The common log format's "%d/%b/%Y:%H:%M:%S %z" (nginx, Apache), without
   strptime(): "26/Nov/2026:" is the date part. */
static int parse_clf(const char *s, size_t n, int64_t *ms)
{
    if (n != 26) {
        return -1;
    }
    int64_t days;
    if (same_date(TIME_CLF, s, 12)) {
        days = last_date.days;
    } else {
        int d = d2(s);
        if (d < 1 || d > 31 || s[2] != '/' || s[6] != '/') {
            return -1;
        }
        int mo = month_abbr(s + 3);
        int y1 = d2(s + 7), y2 = d2(s + 9);
        if (mo == 0 || y1 < 0 || y2 < 0 || s[11] != ':') {
            return -1;
        }
        days = trib_days_from_civil(y1 * 100 + y2, (unsigned)mo, (unsigned)d);
        note_date(TIME_CLF, s, 12, days);
    }
    int h = d2(s + 12), mi = d2(s + 15), se = d2(s + 18);
    if (h < 0 || h > 23 || s[14] != ':' || mi < 0 || mi > 59 || s[17] != ':' || se < 0 || se > 60 ||
        s[20] != ' ' || (s[21] != '+' && s[21] != '-')) {
        return -1;
    }
    int sign = s[21] == '-' ? -1 : 1;
    int oh = d2(s + 22), om = d2(s + 24);
    if (oh < 0 || om < 0) {
        return -1;
    }
    *ms = epoch_ms(days, h, mi, se, 0, sign * (oh * 3600 + om * 60));
    return 0;
}

/* "2026-11-26T" is the date part. */
static int parse_rfc3339(const char *s, size_t n, int64_t *ms)
{
    size_t i = 0;
    int64_t days;
    if (n > 11 && same_date(TIME_RFC3339, s, 11)) {
        days = last_date.days;
        i = 11;
    } else {
        int y = digits(s, n, &i, 4);
        if (y < 0 || i >= n || s[i++] != '-') {
            return -1;
        }
        int mo = digits(s, n, &i, 2);
        if (mo < 1 || mo > 12 || i >= n || s[i++] != '-') {
            return -1;
        }
        int d = digits(s, n, &i, 2);
        if (d < 1 || d > 31 || i >= n || (s[i] != 'T' && s[i] != 't' && s[i] != ' ')) {
            return -1;
        }
        i++;
        days = trib_days_from_civil(y, (unsigned)mo, (unsigned)d);
        note_date(TIME_RFC3339, s, 11, days);
    }
    int h = digits(s, n, &i, 2);
    if (h < 0 || h > 23 || i >= n || s[i++] != ':') {
        return -1;
    }
    int mi = digits(s, n, &i, 2);
    if (mi < 0 || mi > 59 || i >= n || s[i++] != ':') {
        return -1;
    }
    int se = digits(s, n, &i, 2);
    if (se < 0 || se > 60) {
        return -1;
    }
    int frac = 0;
    if (i < n && (s[i] == '.' || s[i] == ',')) {
        i++;
        int scale = 100;
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            frac += (s[i] - '0') * scale;
            scale /= 10;
            i++;
        }
    }
    int off = 0;
    if (i < n && (s[i] == 'Z' || s[i] == 'z')) {
        i++;
    } else if (i < n && (s[i] == '+' || s[i] == '-')) {
        int sign = s[i++] == '-' ? -1 : 1;
        int oh = digits(s, n, &i, 2);
        if (oh < 0) {
            return -1;
        }
        if (i < n && s[i] == ':') {
            i++;
        }
        int om = digits(s, n, &i, 2);
        if (om < 0) {
            return -1;
        }
        off = sign * (oh * 3600 + om * 60);
    }
    if (i != n) {
        return -1;
    }
    *ms = epoch_ms(days, h, mi, se, frac, off);
    return 0;
}

/*
 * The last time parsed, per thread, for the formats read with strtod() or
 * strptime() (which, with timegm(), cost more than the rest of a line):
 * log lines come in runs with the same second.
 */
static __thread struct {
    const char *fmt;
    size_t n;
    char s[64];
    int64_t ms;
} last_time;

static int time_kind(const char *fmt);
static int parse_time_uncached(const char *s, size_t n, const char *fmt, int64_t *ms);

int agent_parse_time(const char *s, size_t n, const char *fmt, int64_t *ms)
{
    if (n == 0 || n >= 128) {
        return -1;
    }
    int kind = time_kind(fmt);
    if (kind == TIME_RFC3339) {
        return parse_rfc3339(s, n, ms);
    }
    if (kind == TIME_CLF && parse_clf(s, n, ms) == 0) {
        return 0; /* else strptime() decides (it also takes other spellings) */
    }
    if (last_time.fmt == fmt && last_time.n == n && memcmp(last_time.s, s, n) == 0) {
        *ms = last_time.ms;
        return 0;
    }
    int rc = parse_time_uncached(s, n, fmt, ms);
    if (rc == 0 && n <= sizeof(last_time.s)) {
        last_time.fmt = fmt;
        last_time.n = n;
        memcpy(last_time.s, s, n);
        last_time.ms = *ms;
    }
    return rc;
}

/* The kind of a time format, remembered for the last format string seen
   (a parse step's own, so the same pointer line after line). */
static int time_kind(const char *fmt)
{
    static __thread const char *last_fmt;
    static __thread int last_kind;
    if (fmt == last_fmt) {
        return last_kind;
    }
    int kind = TIME_STRPTIME;
    if (strcmp(fmt, "rfc3339") == 0) {
        kind = TIME_RFC3339;
    } else if (strcmp(fmt, "%d/%b/%Y:%H:%M:%S %z") == 0) {
        kind = TIME_CLF;
    } else if (strcmp(fmt, "unix") == 0 || strcmp(fmt, "unix_ms") == 0) {
        kind = TIME_UNIX;
    }
    last_fmt = fmt;
    last_kind = kind;
    return kind;
}

static int parse_time_uncached(const char *s, size_t n, const char *fmt, int64_t *ms)
{
    char buf[128];
    if (n == 0 || n >= sizeof(buf)) {
        return -1;
    }
    int kind = time_kind(fmt); /* RFC 3339 and the common log format were tried */
    memcpy(buf, s, n);
    buf[n] = '\0';
    if (kind == TIME_UNIX) {
        char *end;
        double v = strtod(buf, &end);
        if (*end != '\0' || end == buf) {
            return -1;
        }
        double m = fmt[4] == '\0' ? v * 1000.0 : v;
        /* NaN, infinities and times past what int64 ms hold (converting
           them is undefined) are not times */
        if (!(m > -9.2e18 && m < 9.2e18)) {
            return -1;
        }
        *ms = (int64_t)m;
        return 0;
    }
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    const char *end = strptime(buf, fmt, &tm);
    if (end == NULL || *end != '\0') {
        return -1;
    }
    long gmtoff = tm.tm_gmtoff; /* set by %z; 0 (UTC) otherwise */
    *ms = ((int64_t)timegm(&tm) - gmtoff) * 1000;
    return 0;
}

int agent_parse_apply(const agent_parse_conf_t *p, agent_event_t *ev)
{
    agent_field_t *src = agent_event_get(ev, p->field, strlen(p->field));
    if (src == NULL) {
        return 1;
    }
    const char *s;
    size_t n;
    agent_field_text(ev, src, &s, &n);
    time_slot_t slot = {p->time_field, p->time_field ? strlen(p->time_field) : 0, NULL};
    int rc;
    switch (p->type) {
    case AGENT_PARSE_REGEX:
        rc = parse_regex(p, ev, s, n, &slot);
        break;
    case AGENT_PARSE_JSON:
        rc = parse_json(ev, s, n, &slot);
        break;
    case AGENT_PARSE_SYSLOG:
        rc = agent_syslog_to_event(ev, s, n);
        break;
    default:
        rc = parse_logfmt(ev, s, n, &slot);
        break;
    }
    if (rc == 0 && p->time_field != NULL) {
        /* the field the step set, else whichever the event has */
        agent_field_t *tf = slot.f != NULL ? slot.f : agent_event_get(ev, slot.name, slot.nlen);
        if (tf != NULL) {
            const char *ts;
            size_t tn;
            int64_t ms;
            agent_field_text(ev, tf, &ts, &tn);
            if (agent_parse_time(ts, tn, p->time_format, &ms) == 0) {
                ev->ts_ms = ms;
            }
        }
    }
    /* types: the captures converted (JSON values, or RFC 3339 strings for
       timestamps); the converted text lives in the event's scratch buffer,
       reserved for the event, and never moves it */
    for (size_t t = 0; rc == 0 && t < p->types.count && t < AGENT_MAX_TYPES; t++) {
        const char *name = p->types.items[t].key;
        agent_field_t *f = agent_event_get(ev, name, strlen(name));
        if (f == NULL) {
            continue;
        }
        const char *fs;
        size_t fn;
        agent_field_text(ev, f, &fs, &fn);
        agent_sbuf_t *sc = ev->scratch;
        char tmp[64];
        size_t cn = agent_convert(p->type_codes[t], fs, fn, p->time_format, tmp, sizeof(tmp));
        if (cn == 0) {
            rc = 2;
            break;
        }
        if (sc == NULL || sc->cap - sc->len < cn) {
            rc = 2; /* no room: leave it a string, marked */
            break;
        }
        char *dst = sc->p + sc->len;
        memcpy(dst, tmp, cn);
        sc->len += cn;
        (void)agent_event_set(ev, name, strlen(name), dst, cn, true);
    }
    return rc;
}

size_t agent_convert(int type, const char *s, size_t n, const char *time_format, char *out,
                     size_t outlen)
{
    char buf[64];
    while (n > 0 && (*s == ' ' || *s == '\t')) {
        s++;
        n--;
    }
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t')) {
        n--;
    }
    if (n == 0 || outlen < 40) {
        return 0;
    }
    switch (type) {
    case AGENT_TYPE_INT:
    case AGENT_TYPE_FLOAT: {
        if (n >= sizeof(buf)) {
            return 0;
        }
        memcpy(buf, s, n);
        buf[n] = '\0';
        char *end = NULL;
        errno = 0;
        if (type == AGENT_TYPE_INT) {
            long long v = strtoll(buf, &end, 10);
            if (end != buf + n || errno != 0) {
                return 0;
            }
            return (size_t)snprintf(out, outlen, "%lld", v);
        }
        double v = strtod(buf, &end);
        if (end != buf + n || errno != 0 || !isfinite(v)) {
            return 0;
        }
        int k = snprintf(out, outlen, "%.15g", v);
        if (strtod(out, NULL) != v) {
            k = snprintf(out, outlen, "%.17g", v);
        }
        return (size_t)k;
    }
    case AGENT_TYPE_BOOL: {
        static const char *const yes[] = {"true", "yes", "on", "1", NULL};
        static const char *const no[] = {"false", "no", "off", "0", NULL};
        for (int i = 0; yes[i] != NULL; i++) {
            if (strlen(yes[i]) == n && strncasecmp(s, yes[i], n) == 0) {
                memcpy(out, "true", 4);
                return 4;
            }
            if (strlen(no[i]) == n && strncasecmp(s, no[i], n) == 0) {
                memcpy(out, "false", 5);
                return 5;
            }
        }
        return 0;
    }
    case AGENT_TYPE_TIMESTAMP: {
        int64_t ms;
        if (agent_parse_time(s, n, time_format ? time_format : "rfc3339", &ms) != 0) {
            return 0;
        }
        char t[32];
        size_t tl = agent_format_time(ms, t);
        out[0] = '"';
        memcpy(out + 1, t, tl);
        out[tl + 1] = '"';
        return tl + 2;
    }
    default:
        return 0;
    }
}

size_t agent_parse_all(const agent_pipeline_conf_t *pc, agent_event_t *ev)
{
    static const char *const names[] = {"regex", "json", "logfmt", "syslog"};
    size_t failed = 0;
    for (size_t i = 0; i < pc->nparse; i++) {
        if (agent_parse_apply(&pc->parse[i], ev) != 0) {
            if (failed++ == 0) {
                const char *by = names[pc->parse[i].type & 3];
                (void)agent_event_set(ev, "parse_error", 11, "true", 4, true);
                (void)agent_event_set(ev, "parse_error_by", 14, by, strlen(by), false);
            }
        }
    }
    return failed;
}
