/* SPDX-License-Identifier: Apache-2.0 */
/* Shared helpers of the in-tree sink plugins; see sinkutil.h. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sinkutil.h"

static size_t utf8_len(const uint8_t *p, const uint8_t *end);

void sink_str_init(sink_str_t *s)
{
    memset(s, 0, sizeof(*s));
}

void sink_str_fini(sink_str_t *s)
{
    free(s->p);
    memset(s, 0, sizeof(*s));
}

void sink_str_reset(sink_str_t *s)
{
    s->len = 0;
    s->err = 0;
    if (s->p) {
        s->p[0] = '\0';
    }
}

static bool grow(sink_str_t *s, size_t n)
{
    if (s->err) {
        return false;
    }
    if (s->len + n + 1 <= s->cap) {
        return true;
    }
    size_t cap = s->cap ? s->cap : 256;
    while (cap < s->len + n + 1) {
        cap *= 2;
    }
    char *np = realloc(s->p, cap);
    if (!np) {
        s->err = -ENOMEM;
        return false;
    }
    s->p = np;
    s->cap = cap;
    return true;
}

void sink_str_append(sink_str_t *s, const void *p, size_t n)
{
    if (!grow(s, n)) {
        return;
    }
    memcpy(s->p + s->len, p, n);
    s->len += n;
    s->p[s->len] = '\0';
}

char *sink_str_room(sink_str_t *s, size_t n)
{
    return grow(s, n) ? s->p + s->len : NULL;
}

void sink_str_puts(sink_str_t *s, const char *z)
{
    sink_str_append(s, z, strlen(z));
}

void sink_str_int(sink_str_t *s, int64_t v)
{
    char d[24];
    size_t n = sizeof(d);
    /* The magnitude as unsigned, so INT64_MIN has one too. */
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        d[--n] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0) {
        d[--n] = '-';
    }
    sink_str_append(s, d + n, sizeof(d) - n);
}

void sink_str_printf(sink_str_t *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !grow(s, (size_t)n)) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(s->p + s->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    s->len += (size_t)n;
}

/* ---- validation ---------------------------------------------------------- */

typedef struct jv {
    const uint8_t *p, *end;
    int depth;
} jv_t;

static void ws(jv_t *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r')) {
        j->p++;
    }
}

size_t sink_utf8_seq(const uint8_t *p, const uint8_t *end)
{
    return utf8_len(p, end);
}

/* Length of the UTF-8 sequence at p (1..4), or 0 if invalid. */
static size_t utf8_len(const uint8_t *p, const uint8_t *end)
{
    uint8_t c = p[0];
    size_t n;
    uint32_t cp;
    if (c < 0x80) {
        return 1;
    } else if ((c & 0xe0) == 0xc0) {
        n = 2;
        cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
        n = 3;
        cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if ((size_t)(end - p) < n) {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80) {
            return 0;
        }
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
        cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
        return 0;
    }
    return n;
}

static bool hex4(jv_t *j)
{
    for (int i = 0; i < 4; i++) {
        if (j->p >= j->end) {
            return false;
        }
        uint8_t c = *j->p++;
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
            return false;
        }
    }
    return true;
}

/* Bytes that a JSON string holds as they are (printable ASCII but '"' and '\\'): 1. */
static const uint8_t json_plain[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 00 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 10 */
    1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 20 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 30 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 40 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, /* 50 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 60 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 70 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 80 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 90 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* a0 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* b0 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* c0 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* d0 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* e0 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* f0 */
};

static bool jstring(jv_t *j)
{
    j->p++; /* the quote */
    while (j->p < j->end) {
        /* The common case first: a run of plain ASCII, one table look-up a byte. */
        while (j->p < j->end && json_plain[*j->p]) {
            j->p++;
        }
        if (j->p >= j->end) {
            break;
        }
        uint8_t c = *j->p;
        if (c == '"') {
            j->p++;
            return true;
        }
        if (c < 0x20) {
            return false;
        }
        if (c == '\\') {
            j->p++;
            if (j->p >= j->end) {
                return false;
            }
            c = *j->p++;
            if (c == 'u') {
                if (!hex4(j)) {
                    return false;
                }
            } else if (!strchr("\"\\/bfnrt", c) || c == 0) {
                return false;
            }
            continue;
        }
        size_t n = utf8_len(j->p, j->end);
        if (n == 0) {
            return false;
        }
        j->p += n;
    }
    return false;
}

static bool digits(jv_t *j)
{
    const uint8_t *s = j->p;
    while (j->p < j->end && *j->p >= '0' && *j->p <= '9') {
        j->p++;
    }
    return j->p > s;
}

static bool jnumber(jv_t *j)
{
    if (*j->p == '-') {
        j->p++;
    }
    if (j->p < j->end && *j->p == '0') {
        j->p++;
    } else if (!digits(j)) {
        return false;
    }
    if (j->p < j->end && *j->p == '.') {
        j->p++;
        if (!digits(j)) {
            return false;
        }
    }
    if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
        j->p++;
        if (j->p < j->end && (*j->p == '+' || *j->p == '-')) {
            j->p++;
        }
        if (!digits(j)) {
            return false;
        }
    }
    return true;
}

static bool lit(jv_t *j, const char *w)
{
    size_t n = strlen(w);
    if ((size_t)(j->end - j->p) < n || memcmp(j->p, w, n) != 0) {
        return false;
    }
    j->p += n;
    return true;
}

static bool jvalue(jv_t *j)
{
    ws(j);
    if (j->p >= j->end) {
        return false;
    }
    switch (*j->p) {
    case '"':
        return jstring(j);
    case 't':
        return lit(j, "true");
    case 'f':
        return lit(j, "false");
    case 'n':
        return lit(j, "null");
    case '[':
    case '{': {
        uint8_t close = *j->p == '[' ? ']' : '}';
        bool obj = close == '}';
        if (++j->depth > 128) {
            return false;
        }
        j->p++;
        ws(j);
        if (j->p < j->end && *j->p == close) {
            j->p++;
            j->depth--;
            return true;
        }
        for (;;) {
            if (obj) {
                ws(j);
                if (j->p >= j->end || *j->p != '"' || !jstring(j)) {
                    return false;
                }
                ws(j);
                if (j->p >= j->end || *j->p++ != ':') {
                    return false;
                }
            }
            if (!jvalue(j)) {
                return false;
            }
            ws(j);
            if (j->p >= j->end) {
                return false;
            }
            uint8_t c = *j->p++;
            if (c == close) {
                j->depth--;
                return true;
            }
            if (c != ',') {
                return false;
            }
        }
    }
    default:
        if (*j->p == '-' || (*j->p >= '0' && *j->p <= '9')) {
            return jnumber(j);
        }
        return false;
    }
}

bool sink_json_valid(const uint8_t *p, size_t len)
{
    jv_t j = {p, p + len, 0};
    if (!jvalue(&j)) {
        return false;
    }
    ws(&j);
    return j.p == j.end;
}

/* ---- rendering ----------------------------------------------------------- */

void sink_json_string(sink_str_t *s, const uint8_t *p, size_t len)
{
    static const char hexd[] = "0123456789abcdef";
    sink_str_append(s, "\"", 1);
    size_t run = 0; /* start of the plain run */
    size_t i = 0;
    while (i < len) {
        uint8_t c = p[i];
        if (json_plain[c]) {
            i++;
            continue;
        }
        if (c >= 0x80) {
            size_t n = utf8_len(p + i, p + len);
            if (n) {
                i += n;
                continue;
            }
        }
        sink_str_append(s, p + run, i - run);
        if (c == '"') {
            sink_str_append(s, "\\\"", 2);
        } else if (c == '\\') {
            sink_str_append(s, "\\\\", 2);
        } else if (c == '\n') {
            sink_str_append(s, "\\n", 2);
        } else if (c == '\t') {
            sink_str_append(s, "\\t", 2);
        } else if (c == '\r') {
            sink_str_append(s, "\\r", 2);
        } else if (c < 0x20) {
            char e[6] = {'\\', 'u', '0', '0', hexd[c >> 4], hexd[c & 15]};
            sink_str_append(s, e, 6);
        } else {
            sink_str_append(s, "\xef\xbf\xbd", 3); /* invalid UTF-8 */
        }
        i++;
        run = i;
    }
    sink_str_append(s, p + run, len - run);
    sink_str_append(s, "\"", 1);
}

void sink_json_value(sink_str_t *s, trib_record_bytes_t v)
{
    if (trib_record_bytes_is_null(v)) {
        sink_str_append(s, "null", 4);
    } else if (v.len > 0 && sink_json_valid(v.ptr, (size_t)v.len)) {
        sink_str_append(s, v.ptr, (size_t)v.len);
    } else {
        sink_json_string(s, v.ptr, (size_t)v.len);
    }
}

const uint8_t *sink_event_id(const trib_sink_record_t *r, size_t *n)
{
    if (r->header_count <= 0) {
        return NULL;
    }
    trib_record_t rec;
    memset(&rec, 0, sizeof(rec));
    rec.header_count = r->header_count;
    rec.headers = r->headers;
    rec.headers_len = r->headers_len;
    trib_record_header_iter_t it;
    trib_record_header_t h;
    trib_record_header_iter_init(&it, &rec);
    while (trib_record_header_iter_next(&it, &h) == 1) {
        if (h.key.len == 8 && memcmp(h.key.ptr, "event.id", 8) == 0 &&
            !trib_record_bytes_is_null(h.value) && h.value.len > 0 && h.value.len <= 128) {
            for (int32_t i = 0; i < h.value.len; i++) {
                if (h.value.ptr[i] < 0x21 || h.value.ptr[i] > 0x7e) {
                    return NULL;
                }
            }
            *n = (size_t)h.value.len;
            return h.value.ptr;
        }
    }
    return NULL;
}

void sink_json_headers(sink_str_t *s, const trib_sink_record_t *r)
{
    trib_record_t rec;
    memset(&rec, 0, sizeof(rec));
    rec.header_count = r->header_count;
    rec.headers = r->headers;
    rec.headers_len = r->headers_len;
    trib_record_header_iter_t it;
    trib_record_header_t h;
    trib_record_header_iter_init(&it, &rec);
    sink_str_append(s, "{", 1);
    bool first = true;
    while (r->header_count > 0 && trib_record_header_iter_next(&it, &h) == 1) {
        if (!first) {
            sink_str_append(s, ",", 1);
        }
        first = false;
        sink_json_string(s, h.key.ptr, (size_t)h.key.len);
        sink_str_append(s, ":", 1);
        if (trib_record_bytes_is_null(h.value)) {
            sink_str_append(s, "null", 4);
        } else {
            sink_json_string(s, h.value.ptr, (size_t)h.value.len);
        }
    }
    sink_str_append(s, "}", 1);
}

void sink_json_record(sink_str_t *s, const char *topic, int32_t partition,
                      const trib_sink_record_t *r)
{
    sink_str_append(s, "{\"topic\":", 9);
    sink_json_string(s, (const uint8_t *)topic, strlen(topic));
    sink_str_append(s, ",\"partition\":", 13);
    sink_str_int(s, partition);
    sink_str_append(s, ",\"offset\":", 10);
    sink_str_int(s, r->offset);
    sink_str_append(s, ",\"timestamp\":", 13);
    sink_str_int(s, r->timestamp);
    sink_str_append(s, ",\"key\":", 7);
    if (trib_record_bytes_is_null(r->key)) {
        sink_str_append(s, "null", 4);
    } else {
        sink_json_string(s, r->key.ptr, (size_t)r->key.len);
    }
    sink_str_append(s, ",\"headers\":", 11);
    sink_json_headers(s, r);
    sink_str_append(s, ",\"value\":", 9);
    sink_json_value(s, r->value);
    sink_str_append(s, "}", 1);
}
