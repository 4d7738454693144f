/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Syslog message parser: RFC 5424 and RFC 3164 (with the RFC 3339
 * timestamps rsyslog forwards), structured data as JSON, and the timezone
 * option for timestamps without a zone.
 *
 * Design:
 *  - One pass over the bytes with an index that is always checked against
 *    n before a byte is read; fields are slices into the input, nothing is
 *    allocated and nothing is written outside *out.
 *  - The format is chosen after PRI: "[1-9][0-9]{0,2} " is RFC 5424's
 *    VERSION, anything else is RFC 3164.
 *  - RFC 5424 is parsed by its grammar (field lengths, timestamp ranges,
 *    structured data). RFC 3164 is a convention rather than a grammar, so
 *    its parser is lenient: hostname and TAG are recognised where they look
 *    like what syslog(3), logger and rsyslog send, and the rest is message.
 *  - A message that is not well formed keeps what was recognised and gets
 *    the whole input as its message: nothing a sender wrote is lost.
 *
 * Structured data is validated here with the same scanner that turns it
 * into JSON, so a message the parser accepts always converts (given room):
 *
 *   SD-ELEMENT = "[" SD-ID *(SP PARAM-NAME "=" DQUOTE PARAM-VALUE DQUOTE) "]"
 *   SD-ID, PARAM-NAME: 1..32 of %d33-126 except '=', SP, ']', '"'
 *   PARAM-VALUE: UTF-8; '"', '\' and ']' escaped with '\'; a '\' before
 *   any other character is kept as a '\'.
 *
 * A SD-ID may appear once per message (RFC 5424 §6.3.2); a PARAM-NAME may
 * repeat (the "ip" of "origin"), and the JSON then holds an array of its
 * values. Element and parameter counts are bounded
 * (AGENT_SYSLOG_SD_MAX_ELEMENTS, AGENT_SYSLOG_SD_MAX_PARAMS) so that the
 * duplicate checks stay cheap on hostile input.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "syslog/syslog.h"

/* ---------------------------------------------------------------------- */
/* Characters and UTF-8                                                   */

static bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

/* RFC 5424's PRINTUSASCII. */
static bool is_print(unsigned char c)
{
    return c >= 33 && c <= 126;
}

/* Reads `count` digits at s[*i] into *v; false when they are not all there. */
static bool digits(const char *s, size_t n, size_t *i, int count, int *v)
{
    int x = 0;
    if (n - *i < (size_t)count) {
        return false;
    }
    for (int k = 0; k < count; k++) {
        unsigned char c = (unsigned char)s[*i + (size_t)k];
        if (!is_digit(c)) {
            return false;
        }
        x = x * 10 + (c - '0');
    }
    *i += (size_t)count;
    *v = x;
    return true;
}

/*
 * Length of the UTF-8 sequence at s[0..n), or 0 when it is not valid:
 * overlong forms, surrogates and code points past U+10FFFF are refused.
 */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF; /* range of the second byte */
    if (c < 0x80) {
        return 1;
    } else if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0) {
            lo = 0xA0;
        } else if (c == 0xED) {
            hi = 0x9F;
        }
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0) {
            lo = 0x90;
        } else if (c == 0xF4) {
            hi = 0x8F;
        }
    } else {
        return 0;
    }
    if (n < len || s[1] < lo || s[1] > hi) {
        return 0;
    }
    for (size_t k = 2; k < len; k++) {
        if (s[k] < 0x80 || s[k] > 0xBF) {
            return 0;
        }
    }
    return len;
}

/* ---------------------------------------------------------------------- */
/* Dates                                                                  */

static bool is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int64_t y, int m)
{
    static const int dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : dim[m - 1];
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* Leap days in the years 1..y (y may be 0 or negative: proleptic). */
static int64_t leaps_through(int64_t y)
{
    return floor_div(y, 4) - floor_div(y, 100) + floor_div(y, 400);
}

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar. */
static int64_t days_since_epoch(int64_t y, int m, int d)
{
    static const int before[12] = {0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334};
    int64_t days = 365 * (y - 1970) + leaps_through(y - 1) - leaps_through(1969);
    days += before[m - 1] + (m > 2 && is_leap(y) ? 1 : 0);
    return days + d - 1;
}

/* A broken-down timestamp as read from the message. */
typedef struct ts {
    int64_t year;
    int mon, day, hour, min, sec, ms;
    bool has_year; /* "Mmm dd yyyy hh:mm:ss" (network devices) */
    bool has_off;
    int32_t off; /* seconds east of UTC */
} ts_t;

static int64_t ts_to_ms(const ts_t *t, const agent_syslog_tz_t *tz)
{
    int64_t secs =
        days_since_epoch(t->year, t->mon, t->day) * 86400 + t->hour * 3600 + t->min * 60 + t->sec;
    if (t->has_off) {
        secs -= t->off;
    } else if (tz->local) {
        struct tm tm;
        memset(&tm, 0, sizeof(tm));
        tm.tm_year = (int)(t->year - 1900);
        tm.tm_mon = t->mon - 1;
        tm.tm_mday = t->day;
        tm.tm_hour = t->hour;
        tm.tm_min = t->min;
        tm.tm_sec = t->sec;
        tm.tm_isdst = -1;
        time_t lt = mktime(&tm);
        if (lt != (time_t)-1) {
            secs = (int64_t)lt;
        }
        /* else: a time the host's rules cannot place; read it as UTC */
    } else {
        secs -= tz->offset;
    }
    return secs * 1000 + t->ms;
}

/* Year and month (1..12) of now_ms in the given timezone. */
static void now_year_month(int64_t now_ms, const agent_syslog_tz_t *tz, int64_t *year, int *mon)
{
    struct tm tm;
    time_t secs = (time_t)floor_div(now_ms, 1000);
    struct tm *r;
    if (tz->local) {
        r = localtime_r(&secs, &tm);
    } else {
        secs += tz->offset;
        r = gmtime_r(&secs, &tm);
    }
    if (r) {
        *year = (int64_t)tm.tm_year + 1900;
        *mon = tm.tm_mon + 1;
    } else {
        *year = 1970;
        *mon = 1;
    }
}

/* Up to max_digits of fraction after '.'; the first three make ms. */
static bool fraction(const char *s, size_t n, size_t *i, int max_digits, int *ms)
{
    size_t k = *i + 1; /* past '.' */
    int count = 0, v = 0;
    while (k < n && is_digit((unsigned char)s[k])) {
        if (count < 3) {
            v = v * 10 + (s[k] - '0');
        }
        count++;
        k++;
    }
    if (count == 0 || count > max_digits) {
        return false;
    }
    for (int c = count; c < 3; c++) {
        v *= 10;
    }
    *ms = v;
    *i = k;
    return true;
}

/*
 * RFC 3339 "YYYY-MM-DDThh:mm:ss[.frac](Z|+hh:mm)". Strict (RFC 5424): 'T'
 * and 'Z' upper case, at most 6 fraction digits, a zone, no leap second.
 * Lenient (after a RFC 3164 PRI): also 't'/'z', 9 digits, "+hhmm", and no
 * zone (then the configured one applies).
 */
static bool parse_rfc3339(const char *s, size_t n, size_t *pi, bool strict, ts_t *t)
{
    size_t i = *pi;
    int y;
    memset(t, 0, sizeof(*t));
    if (!digits(s, n, &i, 4, &y) || i >= n || s[i++] != '-' || !digits(s, n, &i, 2, &t->mon) ||
        i >= n || s[i++] != '-' || !digits(s, n, &i, 2, &t->day) || i >= n) {
        return false;
    }
    t->year = y;
    if (!(s[i] == 'T' || (!strict && s[i] == 't'))) {
        return false;
    }
    i++;
    if (!digits(s, n, &i, 2, &t->hour) || i >= n || s[i++] != ':' ||
        !digits(s, n, &i, 2, &t->min) || i >= n || s[i++] != ':' || !digits(s, n, &i, 2, &t->sec)) {
        return false;
    }
    if (t->mon < 1 || t->mon > 12 || t->day < 1 || t->day > days_in_month(t->year, t->mon) ||
        t->hour > 23 || t->min > 59 || t->sec > (strict ? 59 : 60)) {
        return false;
    }
    if (i < n && s[i] == '.' && !fraction(s, n, &i, strict ? 6 : 9, &t->ms)) {
        return false;
    }
    if (i < n && (s[i] == 'Z' || (!strict && s[i] == 'z'))) {
        t->has_off = true;
        i++;
    } else if (i < n && (s[i] == '+' || s[i] == '-')) {
        int sign = s[i] == '-' ? -1 : 1, oh, om;
        i++;
        if (!digits(s, n, &i, 2, &oh)) {
            return false;
        }
        if (i < n && s[i] == ':') {
            i++;
        } else if (strict) {
            return false;
        }
        if (!digits(s, n, &i, 2, &om) || oh > 23 || om > 59) {
            return false;
        }
        t->has_off = true;
        t->off = sign * (oh * 3600 + om * 60);
    } else if (strict) {
        return false;
    }
    *pi = i;
    return true;
}

/*
 * RFC 3164 "Mmm dd hh:mm:ss": the day space-padded (" 6") or, as some
 * senders write it, zero-padded or a single digit; an optional fraction.
 * Network devices also write a year after the day ("Mmm dd yyyy
 * hh:mm:ss") and mark an unsynchronised clock with a leading '*' or '.'.
 * Without a year, the year is left to the caller.
 */
static bool parse_bsd_ts(const char *s, size_t n, size_t *pi, ts_t *t)
{
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    size_t i = *pi;
    memset(t, 0, sizeof(*t));
    if (i < n && (s[i] == '*' || s[i] == '.')) {
        i++;
    }
    if (n - i < 4 || s[i + 3] != ' ') {
        return false;
    }
    for (int m = 0; m < 12; m++) {
        if (strncasecmp(s + i, months[m], 3) == 0) {
            t->mon = m + 1;
        }
    }
    if (t->mon == 0) {
        return false;
    }
    i += 4;
    if (i < n && s[i] == ' ') {
        i++;
        if (!digits(s, n, &i, 1, &t->day)) {
            return false;
        }
    } else if (!digits(s, n, &i, 2, &t->day) && !digits(s, n, &i, 1, &t->day)) {
        return false;
    }
    if (n - i >= 6 && s[i] == ' ' && is_digit((unsigned char)s[i + 1]) && s[i + 5] == ' ') {
        size_t j = i + 1;
        int y;
        if (digits(s, n, &j, 4, &y)) {
            t->year = y;
            t->has_year = true;
            i = j;
        }
    }
    if (i >= n || s[i++] != ' ' || !digits(s, n, &i, 2, &t->hour) || i >= n || s[i++] != ':' ||
        !digits(s, n, &i, 2, &t->min) || i >= n || s[i++] != ':' || !digits(s, n, &i, 2, &t->sec)) {
        return false;
    }
    if (t->day < 1 || t->day > 31 || t->hour > 23 || t->min > 59 || t->sec > 60) {
        return false;
    }
    if (i < n && s[i] == '.' && !fraction(s, n, &i, 9, &t->ms)) {
        return false;
    }
    *pi = i;
    return true;
}

/* ---------------------------------------------------------------------- */
/* Structured data                                                        */

/* SD-NAME at s[*i]: its length (1..32), 0 when there is none. */
static size_t sd_name(const char *s, size_t n, size_t *i)
{
    size_t k = *i;
    while (k < n && k - *i <= 32) {
        unsigned char c = (unsigned char)s[k];
        if (!is_print(c) || c == '=' || c == ']' || c == '"') {
            break;
        }
        k++;
    }
    size_t len = k - *i;
    if (len == 0 || len > 32) {
        return 0;
    }
    *i = k;
    return len;
}

/*
 * PARAM-VALUE with its quotes at s[*i] == '"'; *i ends past the closing
 * quote. `checked`: the text was validated before, only find the end.
 */
static bool sd_value(const char *s, size_t n, size_t *i, bool checked)
{
    size_t k = *i + 1;
    while (k < n) {
        unsigned char c = (unsigned char)s[k];
        if (c == '"') {
            *i = k + 1;
            return true;
        }
        if (c == ']') {
            return false; /* must be escaped */
        }
        if (c == '\\') {
            k += (k + 1 < n && (s[k + 1] == '"' || s[k + 1] == '\\' || s[k + 1] == ']')) ? 2 : 1;
            continue;
        }
        if (checked || c < 0x80) {
            k++;
            continue;
        }
        size_t len = utf8_len((const unsigned char *)s + k, n - k);
        if (len == 0) {
            return false;
        }
        k += len;
    }
    return false;
}

/* One parameter of an element, as a scanner yields it. */
typedef struct sd_param {
    const char *name;
    size_t nlen;
    const char *val; /* inside the quotes, still escaped */
    size_t vlen;
} sd_param_t;

/*
 * At s[*i] inside an element (past the SD-ID or a previous parameter):
 * 1 with *p set for the next " NAME=\"VALUE\"", 0 at the closing ']'
 * (*i is past it), -1 when malformed.
 */
static int sd_next_param(const char *s, size_t n, size_t *i, sd_param_t *p, bool checked)
{
    size_t k = *i;
    if (k < n && s[k] == ']') {
        *i = k + 1;
        return 0;
    }
    if (k >= n || s[k] != ' ') {
        return -1;
    }
    k++;
    p->name = s + k;
    p->nlen = sd_name(s, n, &k);
    if (p->nlen == 0 || k + 1 >= n || s[k] != '=' || s[k + 1] != '"') {
        return -1;
    }
    k++;
    size_t v = k;
    if (!sd_value(s, n, &k, checked)) {
        return -1;
    }
    p->val = s + v + 1;
    p->vlen = k - v - 2;
    *i = k;
    return 1;
}

/*
 * Validates the SD-ELEMENTs at s[0] == '['; returns their length (the
 * first byte after a ']' that is not followed by '['), 0 when malformed.
 */
static size_t sd_scan(const char *s, size_t n)
{
    size_t ids[AGENT_SYSLOG_SD_MAX_ELEMENTS], idlen[AGENT_SYSLOG_SD_MAX_ELEMENTS];
    size_t nids = 0, i = 0;
    while (i < n && s[i] == '[') {
        if (nids == AGENT_SYSLOG_SD_MAX_ELEMENTS) {
            return 0;
        }
        i++;
        size_t id = i, len = sd_name(s, n, &i);
        if (len == 0) {
            return 0;
        }
        for (size_t k = 0; k < nids; k++) {
            if (idlen[k] == len && memcmp(s + ids[k], s + id, len) == 0) {
                return 0; /* the same SD-ID twice */
            }
        }
        ids[nids] = id;
        idlen[nids++] = len;
        sd_param_t p;
        int rc, params = 0;
        while ((rc = sd_next_param(s, n, &i, &p, false)) == 1) {
            if (++params > AGENT_SYSLOG_SD_MAX_PARAMS) {
                return 0;
            }
        }
        if (rc < 0) {
            return 0;
        }
    }
    return i;
}

/* An output buffer that remembers running out of room. */
typedef struct jout {
    char *p;
    size_t len, cap;
    bool full;
} jout_t;

static void jput(jout_t *o, const char *s, size_t n)
{
    if (o->full || o->cap - o->len < n) {
        o->full = true;
        return;
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
}

static void jputc(jout_t *o, char c)
{
    jput(o, &c, 1);
}

/* s as a JSON string with quotes; RFC 5424's escapes decoded when `sd_escapes`. */
static void jstr(jout_t *o, const char *s, size_t n, bool sd_escapes)
{
    static const char hex[] = "0123456789abcdef";
    jputc(o, '"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (sd_escapes && c == '\\' && i + 1 < n &&
            (s[i + 1] == '"' || s[i + 1] == '\\' || s[i + 1] == ']')) {
            c = (unsigned char)s[++i];
        }
        if (c == '"' || c == '\\') {
            jputc(o, '\\');
            jputc(o, (char)c);
        } else if (c < 0x20) {
            char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            jput(o, u, sizeof(u));
        } else {
            jputc(o, (char)c);
        }
    }
    jputc(o, '"');
}

static bool same_name(const sd_param_t *a, const sd_param_t *b)
{
    return a->nlen == b->nlen && memcmp(a->name, b->name, a->nlen) == 0;
}

/* The parameters of the element whose first parameter starts at s[start]. */
static void sd_element_json(jout_t *o, const char *s, size_t n, size_t *i)
{
    sd_param_t ps[AGENT_SYSLOG_SD_MAX_PARAMS];
    size_t np = 0;
    while (np < AGENT_SYSLOG_SD_MAX_PARAMS && sd_next_param(s, n, i, &ps[np], true) == 1) {
        np++;
    }
    if (np == AGENT_SYSLOG_SD_MAX_PARAMS) {
        sd_param_t end;
        (void)sd_next_param(s, n, i, &end, true); /* past ']' (sd_scan bounded the count) */
    }
    bool first = true;
    jputc(o, '{');
    for (size_t k = 0; k < np; k++) {
        /* A repeated name was written with its first occurrence. */
        size_t prev = 0, later = 0;
        while (prev < k && !same_name(&ps[prev], &ps[k])) {
            prev++;
        }
        if (prev < k) {
            continue;
        }
        for (size_t j = k + 1; j < np; j++) {
            later += same_name(&ps[j], &ps[k]);
        }
        if (!first) {
            jputc(o, ',');
        }
        first = false;
        jstr(o, ps[k].name, ps[k].nlen, false);
        jputc(o, ':');
        if (later == 0) {
            jstr(o, ps[k].val, ps[k].vlen, true);
            continue;
        }
        jputc(o, '[');
        jstr(o, ps[k].val, ps[k].vlen, true);
        for (size_t j = k + 1; j < np; j++) {
            if (same_name(&ps[j], &ps[k])) {
                jputc(o, ',');
                jstr(o, ps[j].val, ps[j].vlen, true);
            }
        }
        jputc(o, ']');
    }
    jputc(o, '}');
}

long agent_syslog_sd_json(const char *sd, size_t n, char *out, size_t cap)
{
    jout_t o = {out, 0, cap, false};
    if (n == 0 || (n == 1 && sd[0] == '-')) {
        jput(&o, "{}", 2);
        return o.full ? -1 : (long)o.len;
    }
    if (sd_scan(sd, n) != n) {
        return -1;
    }
    jputc(&o, '{');
    size_t i = 0;
    while (i < n && !o.full) {
        i++; /* '[' */
        size_t id = i, len = sd_name(sd, n, &i);
        if (id > 1) {
            jputc(&o, ',');
        }
        jstr(&o, sd + id, len, false);
        jputc(&o, ':');
        sd_element_json(&o, sd, n, &i);
    }
    jputc(&o, '}');
    return o.full ? -1 : (long)o.len;
}

/* ---------------------------------------------------------------------- */
/* Messages                                                               */

/* The result for input that is not well formed: the whole input as message. */
static int malformed(const char *s, size_t n, agent_syslog_msg_t *out)
{
    out->msg.p = s;
    out->msg.n = n;
    return 1;
}

static void set_msg(const char *s, size_t n, size_t i, agent_syslog_msg_t *out)
{
    if (n - i >= 3 && memcmp(s + i, "\xEF\xBB\xBF", 3) == 0) {
        i += 3;
    }
    out->msg.p = s + i;
    out->msg.n = n - i;
}

/*
 * A RFC 5424 header field: NILVALUE or 1..max PRINTUSASCII, followed by
 * SP. NILVALUE leaves f->p NULL.
 */
static bool header_field(const char *s, size_t n, size_t *i, size_t max, agent_syslog_str_t *f)
{
    size_t k = *i;
    while (k < n && is_print((unsigned char)s[k]) && k - *i <= max) {
        k++;
    }
    size_t len = k - *i;
    if (len == 0 || len > max || k >= n || s[k] != ' ') {
        return false;
    }
    if (!(len == 1 && s[*i] == '-')) {
        f->p = s + *i;
        f->n = len;
    }
    *i = k + 1;
    return true;
}

static int parse_5424(const char *s, size_t n, size_t i, const agent_syslog_opts_t *o,
                      agent_syslog_msg_t *out)
{
    out->format = AGENT_SYSLOG_RFC5424;
    if (i < n && s[i] == '-') {
        i++;
    } else {
        ts_t t;
        if (!parse_rfc3339(s, n, &i, true, &t)) {
            return malformed(s, n, out);
        }
        out->has_ts = true;
        out->ts_ms = ts_to_ms(&t, &o->tz);
    }
    if (i >= n || s[i++] != ' ' || !header_field(s, n, &i, 255, &out->hostname) ||
        !header_field(s, n, &i, 48, &out->app) || !header_field(s, n, &i, 128, &out->procid)) {
        return malformed(s, n, out);
    }
    /* MSGID is followed by SP and STRUCTURED-DATA, never by the end. */
    if (!header_field(s, n, &i, 32, &out->msgid) || i >= n) {
        return malformed(s, n, out);
    }
    if (s[i] == '-') {
        i++;
    } else {
        size_t len = s[i] == '[' ? sd_scan(s + i, n - i) : 0;
        if (len == 0) {
            return malformed(s, n, out);
        }
        if (i + len < n && s[i + len] != ' ') {
            return malformed(s, n, out);
        }
        out->sd.p = s + i;
        out->sd.n = len;
        i += len;
    }
    if (i < n) {
        if (s[i] != ' ') {
            return malformed(s, n, out);
        }
        i++;
    }
    set_msg(s, n, i, out);
    return 0;
}

/*
 * RFC 3164 TAG at s[i]: "app:", "app[pid]:" or "app[pid]" followed by SP
 * or the end. Returns where the message starts; i when there is no TAG.
 */
static size_t parse_tag(const char *s, size_t n, size_t i, agent_syslog_msg_t *out)
{
    size_t j = i, k;
    while (j < n && is_print((unsigned char)s[j]) && s[j] != '[' && s[j] != ':') {
        j++;
    }
    if (j == i || j >= n) {
        return i;
    }
    if (s[j] == '[') {
        k = j + 1;
        while (k < n && is_print((unsigned char)s[k]) && s[k] != ']' && k - j - 1 <= 128) {
            k++;
        }
        if (k >= n || s[k] != ']' || k == j + 1 || k - j - 1 > 128) {
            return i;
        }
        out->procid.p = s + j + 1;
        out->procid.n = k - j - 1;
        k++;
        if (k < n && s[k] == ':') {
            k++;
        }
    } else if (s[j] == ':') {
        k = j + 1;
    } else {
        return i;
    }
    if (k < n && s[k] != ' ') {
        out->procid.p = NULL;
        out->procid.n = 0;
        return i;
    }
    out->app.p = s + i;
    out->app.n = j - i;
    return k < n ? k + 1 : k;
}

static int parse_3164(const char *s, size_t n, size_t i, const agent_syslog_opts_t *o,
                      agent_syslog_msg_t *out)
{
    ts_t t;
    out->format = AGENT_SYSLOG_RFC3164;
    if (parse_bsd_ts(s, n, &i, &t)) {
        int64_t now_year;
        int now_mon;
        now_year_month(o->now_ms, &o->tz, &now_year, &now_mon);
        if (!t.has_year) {
            t.year = now_year;
            if (t.mon == 12 && now_mon == 1) {
                t.year--;
            } else if (t.mon == 1 && now_mon == 12) {
                t.year++;
            }
        }
        if (t.day > days_in_month(t.year, t.mon)) {
            return malformed(s, n, out);
        }
    } else if (!parse_rfc3339(s, n, &i, false, &t)) {
        return malformed(s, n, out);
    }
    out->has_ts = true;
    out->ts_ms = ts_to_ms(&t, &o->tz);
    if (i < n && s[i] != ' ') {
        return malformed(s, n, out);
    }
    if (i < n) {
        i++;
    }
    /*
     * HOSTNAME, unless the token looks like a TAG: the local socket form
     * ("<13>Nov 26 17:40:01 app[12]: msg") has no hostname.
     */
    size_t t_end = i;
    bool tag_like = false, host_ok = true;
    while (t_end < n && s[t_end] != ' ') {
        unsigned char c = (unsigned char)s[t_end];
        tag_like |= c == '[';
        host_ok &= is_print(c);
        t_end++;
    }
    tag_like |= t_end > i && s[t_end - 1] == ':';
    if (t_end > i && !tag_like && host_ok && t_end - i <= 255) {
        out->hostname.p = s + i;
        out->hostname.n = t_end - i;
        i = t_end < n ? t_end + 1 : t_end;
    }
    i = parse_tag(s, n, i, out);
    set_msg(s, n, i, out);
    return 0;
}

int agent_syslog_parse(const char *s, size_t n, const agent_syslog_opts_t *o,
                       agent_syslog_msg_t *out)
{
    agent_syslog_opts_t defaults;
    memset(out, 0, sizeof(*out));
    out->pri = -1;
    out->facility = 1;
    out->severity = 5;
    if (!s) {
        s = "";
        n = 0;
    }
    if (!o) {
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        memset(&defaults, 0, sizeof(defaults));
        defaults.now_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
        o = &defaults;
    }
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == '\0')) {
        n--;
    }
    out->msg.p = s;
    out->msg.n = n;

    size_t i = 0;
    if (n > 0 && s[0] == '<') {
        int pri = 0, nd = 0;
        i = 1;
        while (i < n && is_digit((unsigned char)s[i]) && nd < 4) {
            pri = pri * 10 + (s[i] - '0');
            nd++;
            i++;
        }
        if (nd == 0 || nd > 3 || i >= n || s[i] != '>' || pri > 191 || (nd > 1 && s[1] == '0')) {
            return malformed(s, n, out);
        }
        i++;
        out->pri = pri;
        out->facility = pri / 8;
        out->severity = pri % 8;
    }
    /* VERSION: "[1-9][0-9]{0,2} " right after PRI. */
    size_t v = i;
    while (v < n && v - i < 4 && is_digit((unsigned char)s[v])) {
        v++;
    }
    if (out->pri >= 0 && v > i && v - i <= 3 && s[i] != '0' && v < n && s[v] == ' ') {
        return parse_5424(s, n, v + 1, o, out);
    }
    return parse_3164(s, n, i, o, out);
}

/* ---------------------------------------------------------------------- */
/* Names and the timezone option                                          */

const char *agent_syslog_facility_name(int facility)
{
    static const char *const names[24] = {
        "kern",   "user",   "mail",     "daemon", "auth",   "syslog",   "lpr",     "news",
        "uucp",   "cron",   "authpriv", "ftp",    "ntp",    "security", "console", "solaris-cron",
        "local0", "local1", "local2",   "local3", "local4", "local5",   "local6",  "local7",
    };
    return facility >= 0 && facility < 24 ? names[facility] : NULL;
}

const char *agent_syslog_severity_name(int severity)
{
    static const char *const names[8] = {"emerg",   "alert",  "crit", "err",
                                         "warning", "notice", "info", "debug"};
    return severity >= 0 && severity < 8 ? names[severity] : NULL;
}

int agent_syslog_tz_parse(const char *s, agent_syslog_tz_t *tz)
{
    if (!s) {
        return -1;
    }
    if (strcasecmp(s, "local") == 0) {
        tz->local = true;
        tz->offset = 0;
        return 0;
    }
    if (strcasecmp(s, "UTC") == 0 || strcmp(s, "Z") == 0) {
        tz->local = false;
        tz->offset = 0;
        return 0;
    }
    /* "+hh", "+hhmm" or "+hh:mm" */
    size_t n = strlen(s), i = 1;
    int h, m = 0;
    if (n < 3 || (s[0] != '+' && s[0] != '-') || !digits(s, n, &i, 2, &h)) {
        return -1;
    }
    if (i < n && s[i] == ':') {
        i++;
        if (i == n) {
            return -1;
        }
    }
    if (i < n && !digits(s, n, &i, 2, &m)) {
        return -1;
    }
    if (i != n || h > 23 || m > 59) {
        return -1;
    }
    tz->local = false;
    tz->offset = (s[0] == '-' ? -1 : 1) * (h * 3600 + m * 60);
    return 0;
}
