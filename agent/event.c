/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Events: a flat list of named fields that point into the line, the
 * configuration or the event's scratch buffer (nothing is copied until the
 * value is rendered), rendered as one JSON object:
 *
 *   {"@timestamp":"2026-11-26T16:05:01.123Z","host":"web-01","agent":"a1",
 *    "source":"/var/log/nginx/access.log","message":"…",<parsed fields>}
 *
 * Strings are escaped as JSON requires; bytes that are not UTF-8 become
 * U+FFFD so the value is always valid JSON. Topic and key templates take
 * fields by name: "web.{method}".
 */
#include "event.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tributary/civil.h"
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

void agent_sbuf_fini(agent_sbuf_t *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
    b->err = 0;
}

int agent_sbuf_reserve(agent_sbuf_t *b, size_t extra)
{
    if (b->err) {
        return b->err;
    }
    if (b->cap - b->len >= extra) {
        return 0;
    }
    size_t n = b->cap ? b->cap : 256;
    while (n - b->len < extra) {
        n *= 2;
    }
    char *p = realloc(b->p, n);
    if (p == NULL) {
        b->err = -ENOMEM;
        return b->err;
    }
    b->p = p;
    b->cap = n;
    return 0;
}

void agent_sbuf_put(agent_sbuf_t *b, const void *p, size_t n)
{
    if (n == 0 || agent_sbuf_reserve(b, n) != 0) {
        return;
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

void agent_sbuf_putc(agent_sbuf_t *b, char c)
{
    if (agent_sbuf_reserve(b, 1) != 0) {
        return;
    }
    b->p[b->len++] = c;
}

void agent_sbuf_puts(agent_sbuf_t *b, const char *s)
{
    agent_sbuf_put(b, s, strlen(s));
}

size_t agent_utf8_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    if (c >= 0xc2 && c <= 0xdf) {
        return n >= 2 && (s[1] & 0xc0) == 0x80 ? 2 : 0;
    }
    if (c >= 0xe0 && c <= 0xef) {
        if (n < 3 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80) {
            return 0;
        }
        if ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] > 0x9f)) {
            return 0; /* overlong, surrogate */
        }
        return 3;
    }
    if (c >= 0xf0 && c <= 0xf4) {
        if (n < 4 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80 || (s[3] & 0xc0) != 0x80) {
            return 0;
        }
        if ((c == 0xf0 && s[1] < 0x90) || (c == 0xf4 && s[1] > 0x8f)) {
            return 0;
        }
        return 4;
    }
    return 0;
}

/* 1 for ASCII bytes that need no escaping in a JSON string: all but control
   bytes, " and \\ (DEL needs none, as the 16-byte scan agrees). */
static const uint8_t json_plain[256] = {
    [0x20] = 1,
    [0x21] = 1,
    [0x23 ... 0x5b] = 1,
    [0x5d ... 0x7f] = 1,
};

/* Whether the bytes of a word need no escaping in a JSON string: no control
   byte, '"', '\\' or byte >= 0x80 (the classic has-a-zero-byte tests, exact
   for whether any byte is one). */
static inline bool plain8(uint64_t x)
{
    const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
    uint64_t ctl = (x - ones * 0x20) & ~x;
    uint64_t q = x ^ (ones * '"');
    uint64_t b = x ^ (ones * '\\');
    q = (q - ones) & ~q;
    b = (b - ones) & ~b;
    return ((x | ctl | q | b) & high) == 0;
}

static inline bool plain4(uint32_t x)
{
    const uint32_t ones = 0x01010101u, high = 0x80808080u;
    uint32_t ctl = (x - ones * 0x20) & ~x;
    uint32_t q = x ^ (ones * '"');
    uint32_t b = x ^ (ones * '\\');
    q = (q - ones) & ~q;
    b = (b - ones) & ~b;
    return ((x | ctl | q | b) & high) == 0;
}

/*
 * Where a string's escaped bytes are, noted while escaping it, so that a
 * slice of it (a regex capture, a logfmt value) can be told plain without
 * scanning it again: plain when no noted offset falls inside it. Only
 * single ASCII bytes are noted; n > JSON_STOPS (too many, or a byte of
 * UTF-8) says nothing is known.
 */
#define JSON_STOPS 16
typedef struct json_stops {
    size_t n;
    size_t at[JSON_STOPS];
} json_stops_t;

static inline void stop_at(json_stops_t **stp, size_t i)
{
    json_stops_t *st = *stp;
    if (st == NULL) {
        return;
    }
    if (st->n < JSON_STOPS) {
        st->at[st->n++] = i;
    } else {
        st->n = JSON_STOPS + 1; /* too many: nothing more to note */
        *stp = NULL;
    }
}

/* A slice [off, off + n) of a string whose stops are st holds none of them
   (they were noted in order: the first at or past off decides). */
static bool stops_clear(const json_stops_t *st, size_t off, size_t n)
{
    if (st->n > JSON_STOPS) {
        return false;
    }
    for (size_t k = 0; k < st->n; k++) {
        if (st->at[k] >= off) {
            return st->at[k] - off >= n;
        }
    }
    return true;
}

/* memcpy() of n bytes, inline for the short ones (names and most values):
   overlapping 8- and 4-byte moves, nothing read or written past n. */
static inline char *copy_short(char *o, const char *s, size_t n)
{
    if (n >= 8 && n <= 16) {
        uint64_t a, b;
        memcpy(&a, s, 8);
        memcpy(&b, s + n - 8, 8);
        memcpy(o, &a, 8);
        memcpy(o + n - 8, &b, 8);
    } else if (n >= 4 && n < 8) {
        uint32_t a, b;
        memcpy(&a, s, 4);
        memcpy(&b, s + n - 4, 4);
        memcpy(o, &a, 4);
        memcpy(o + n - 4, &b, 4);
    } else if (n < 4) {
        for (size_t i = 0; i < n; i++) {
            o[i] = s[i];
        }
    } else {
        memcpy(o, s, n);
    }
    return o + n;
}

/*
 * Escapes n bytes at s into o, which has room for 6 bytes per input byte
 * (\u00XX) plus 16, and returns the end. Plain bytes are copied 16 at a
 * time: the block is stored whole before looking at where it stops, so the
 * bytes past a stop are written and then overwritten, within the 16 spare
 * bytes. The last block (under 16 bytes: most parsed fields are shorter)
 * is copied byte by byte, so nothing past the input is read.
 *
 * With st, where the escaped bytes were is noted (see json_stops_t).
 */
static char *json_escape(char *o, const unsigned char *s, size_t n, json_stops_t *st)
{
    static const char hex[] = "0123456789abcdef";
    size_t i = 0;
    while (i < n) {
#if defined(__SSE2__)
        /* stop at a control byte, '"', '\\' or a byte >= 0x80 */
        const __m128i lim = _mm_set1_epi8(0x1f), q = _mm_set1_epi8('"'), bs = _mm_set1_epi8('\\');
        while (i < n) {
            if (n - i < 16) {
                /* the last bytes (most parsed fields are shorter than 16):
                   two overlapping words when both need no escaping */
                size_t r = n - i;
                if (r >= 8) {
                    uint64_t a, b;
                    memcpy(&a, s + i, 8);
                    memcpy(&b, s + n - 8, 8);
                    if (plain8(a) && plain8(b)) {
                        memcpy(o, &a, 8);
                        memcpy(o + r - 8, &b, 8);
                        o += r;
                        i = n;
                        break;
                    }
                } else if (r >= 4) {
                    uint32_t a, b;
                    memcpy(&a, s + i, 4);
                    memcpy(&b, s + n - 4, 4);
                    if (plain4(a) && plain4(b)) {
                        memcpy(o, &a, 4);
                        memcpy(o + r - 4, &b, 4);
                        o += r;
                        i = n;
                        break;
                    }
                }
                while (i < n && json_plain[s[i]]) {
                    *o++ = (char)s[i++];
                }
                if (i < n && (s[i] == '"' || s[i] == '\\')) {
                    stop_at(&st, i);
                    o[0] = '\\';
                    o[1] = (char)s[i];
                    o += 2;
                    i++;
                    continue;
                }
                break;
            }
            __m128i v = _mm_loadu_si128((const __m128i *)(s + i));
            __m128i bad = _mm_or_si128(_mm_cmpeq_epi8(_mm_max_epu8(v, lim), lim),
                                       _mm_or_si128(_mm_cmpeq_epi8(v, q), _mm_cmpeq_epi8(v, bs)));
            unsigned mask = (unsigned)(_mm_movemask_epi8(bad) | _mm_movemask_epi8(v));
            _mm_storeu_si128((__m128i *)(void *)o, v);
            if (mask == 0) {
                i += 16;
                o += 16;
                continue;
            }
            /* the '"' and '\\' before the block's first other stop (a line
               of JSON has dozens): escaped one after another, the bytes
               between them moved 16 at a time (32 bytes left: the loads
               stay inside the string) */
            unsigned qb = (unsigned)_mm_movemask_epi8(
                _mm_or_si128(_mm_cmpeq_epi8(v, q), _mm_cmpeq_epi8(v, bs)));
            unsigned other = mask & ~qb;
            unsigned m = other != 0 ? qb & ((1u << __builtin_ctz(other)) - 1) : qb;
            if (m != 0 && n - i >= 32) {
                size_t j = 0;
                for (;;) {
                    size_t k = (size_t)__builtin_ctz(m);
                    o += k - j;
                    stop_at(&st, i + k);
                    o[0] = '\\';
                    o[1] = (char)s[i + k];
                    o += 2;
                    j = k + 1;
                    m &= m - 1;
                    if (m == 0) {
                        break;
                    }
                    _mm_storeu_si128((__m128i *)(void *)o,
                                     _mm_loadu_si128((const __m128i *)(s + i + j)));
                }
                i += j;
                continue;
            }
            size_t k = (size_t)__builtin_ctz(mask);
            i += k;
            o += k;
            if (i < n && (s[i] == '"' || s[i] == '\\')) {
                stop_at(&st, i);
                /* the usual stops in log lines: escaped without leaving the scan */
                o[0] = '\\';
                o[1] = (char)s[i];
                o += 2;
                i++;
                continue;
            }
            break;
        }
#else
        while (i < n && json_plain[s[i]]) {
            *o++ = (char)s[i++];
        }
#endif
        if (i >= n) {
            break;
        }
        unsigned char c = s[i];
        if (st != NULL && c >= 0x80) {
            st->n = JSON_STOPS + 1; /* UTF-8: a slice could cut a sequence */
            st = NULL;
        }
        if (c < 0x80) {
            stop_at(&st, i);
            *o++ = '\\';
            switch (c) {
            case '"':
                *o++ = '"';
                break;
            case '\\':
                *o++ = '\\';
                break;
            case '\n':
                *o++ = 'n';
                break;
            case '\r':
                *o++ = 'r';
                break;
            case '\t':
                *o++ = 't';
                break;
            default:
                *o++ = 'u';
                *o++ = '0';
                *o++ = '0';
                *o++ = hex[c >> 4];
                *o++ = hex[c & 15];
                break;
            }
            i++;
            continue;
        }
        size_t k = agent_utf8_len(s + i, n - i);
        if (k == 0) {
            memcpy(o, "\\ufffd", 6);
            o += 6;
            i++;
        } else {
            memcpy(o, s + i, k);
            o += k;
            i += k;
        }
    }
    return o;
}

void agent_sbuf_json_str(agent_sbuf_t *b, const char *str, size_t n)
{
    /* worst case 6 bytes per input byte, and json_escape's 16 spare bytes */
    if (agent_sbuf_reserve(b, n * 6 + 16) != 0) {
        return;
    }
    char *o = json_escape(b->p + b->len, (const unsigned char *)str, n, NULL);
    b->len = (size_t)(o - b->p);
}

/* memcmp(a, b, n) == 0, inline for names of up to 8 bytes (two
   overlapping words), nothing read past n. */
static inline bool same_name(const char *a, const char *b, size_t n)
{
    if (n >= 4 && n <= 8) {
        uint32_t a0, a1, b0, b1;
        memcpy(&a0, a, 4);
        memcpy(&b0, b, 4);
        memcpy(&a1, a + n - 4, 4);
        memcpy(&b1, b + n - 4, 4);
        return ((a0 ^ b0) | (a1 ^ b1)) == 0;
    }
    return memcmp(a, b, n) == 0;
}

agent_field_t *agent_event_get(agent_event_t *ev, const char *name, size_t nlen)
{
    for (size_t i = 0; i < ev->nfields; i++) {
        agent_field_t *f = &ev->fields[i];
        /* the first byte before the rest: most names differ there */
        if (f->nlen == nlen &&
            (nlen == 0 || (f->name[0] == name[0] && same_name(f->name, name, nlen)))) {
            return f;
        }
    }
    return NULL;
}

bool agent_event_set(agent_event_t *ev, const char *name, size_t nlen, const char *val, size_t vlen,
                     bool raw)
{
    return agent_event_set_name(ev, name, nlen, false, val, vlen, raw);
}

bool agent_event_set_name(agent_event_t *ev, const char *name, size_t nlen, bool plain_name,
                          const char *val, size_t vlen, bool raw)
{
    agent_field_t *f = agent_event_get(ev, name, nlen);
    if (f == NULL) {
        if (ev->nfields >= AGENT_MAX_FIELDS) {
            return false;
        }
        f = &ev->fields[ev->nfields++];
        f->name = name;
        f->nlen = nlen;
        f->plain_name = plain_name;
    }
    f->val = val;
    f->vlen = vlen;
    f->raw = raw;
    return true;
}

uint64_t agent_event_names(const agent_event_t *ev)
{
    uint64_t names = 0;
    for (size_t i = 0; i < ev->nfields; i++) {
        names |= agent_name_bit(ev->fields[i].name, ev->fields[i].nlen);
    }
    return names;
}

void agent_event_remove(agent_event_t *ev, const char *name, size_t nlen)
{
    agent_field_t *f = agent_event_get(ev, name, nlen);
    if (f == NULL) {
        return;
    }
    size_t i = (size_t)(f - ev->fields);
    memmove(&ev->fields[i], &ev->fields[i + 1], (ev->nfields - i - 1) * sizeof(*f));
    ev->nfields--;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* Decodes the inside of a JSON string into out (which has room for n bytes). */
static size_t json_unescape(const char *s, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c != '\\' || i + 1 >= n) {
            out[o++] = c;
            continue;
        }
        c = s[++i];
        switch (c) {
        case 'n':
            out[o++] = '\n';
            break;
        case 't':
            out[o++] = '\t';
            break;
        case 'r':
            out[o++] = '\r';
            break;
        case 'b':
            out[o++] = '\b';
            break;
        case 'f':
            out[o++] = '\f';
            break;
        case 'u': {
            if (i + 4 >= n) {
                out[o++] = '?';
                break;
            }
            unsigned cp = 0;
            for (int k = 1; k <= 4; k++) {
                int h = hexval(s[i + k]);
                cp = cp * 16 + (unsigned)(h < 0 ? 0 : h);
            }
            i += 4;
            /* \uXXXX takes 6 input bytes; its UTF-8 takes at most 3 */
            if (cp < 0x80) {
                out[o++] = (char)cp;
            } else if (cp < 0x800) {
                out[o++] = (char)(0xc0 | (cp >> 6));
                out[o++] = (char)(0x80 | (cp & 0x3f));
            } else {
                out[o++] = (char)(0xe0 | (cp >> 12));
                out[o++] = (char)(0x80 | ((cp >> 6) & 0x3f));
                out[o++] = (char)(0x80 | (cp & 0x3f));
            }
            break;
        }
        default:
            out[o++] = c; /* \" \\ \/ */
            break;
        }
    }
    return o;
}

void agent_field_text(agent_event_t *ev, const agent_field_t *f, const char **s, size_t *n)
{
    if (!f->raw || f->vlen < 2 || f->val[0] != '"') {
        *s = f->val;
        *n = f->vlen;
        return;
    }
    const char *in = f->val + 1;
    size_t len = f->vlen - 2;
    if (memchr(in, '\\', len) == NULL || ev->scratch == NULL ||
        agent_sbuf_reserve(ev->scratch, len) != 0) {
        *s = in;
        *n = len;
        return;
    }
    /* the scratch buffer was reserved for the event: this never moves it */
    char *out = ev->scratch->p + ev->scratch->len;
    size_t o = json_unescape(in, len, out);
    ev->scratch->len += o;
    *s = out;
    *n = o;
}

static void put2(char *o, int v)
{
    o[0] = (char)('0' + v / 10);
    o[1] = (char)('0' + v % 10);
}

/*
 * "YYYY-MM-DDTHH:MM:SS" of a second since the epoch, by arithmetic (Howard
 * Hinnant's civil_from_days): log times change second every line, and
 * gmtime_r() plus strftime() cost more than the rest of the time field.
 * Years outside 0..9999 take strftime()'s spelling.
 */
static size_t format_sec(int64_t sec, char *out, size_t outlen)
{
    /* the date of the last day formatted: lines of one day differ in the
       time of day only */
    static __thread int64_t last_day = INT64_MIN;
    static __thread char last_date[11];
    int64_t days = sec >= 0 ? sec / 86400 : (sec - 86399) / 86400;
    int64_t rem = sec - days * 86400;
    if (days != last_day) {
        int64_t y;
        int m, d;
        trib_civil_from_days(days, &y, &m, &d);
        if (y < 0 || y > 9999) {
            struct tm tm;
            time_t t = (time_t)sec;
            if (gmtime_r(&t, &tm) == NULL) {
                return 0;
            }
            return strftime(out, outlen, "%Y-%m-%dT%H:%M:%S", &tm);
        }
        put2(last_date, (int)(y / 100));
        put2(last_date + 2, (int)(y % 100));
        last_date[4] = '-';
        put2(last_date + 5, m);
        last_date[7] = '-';
        put2(last_date + 8, d);
        last_date[10] = 'T';
        last_day = days;
    }
    memcpy(out, last_date, 11);
    put2(out + 11, (int)(rem / 3600));
    out[13] = ':';
    put2(out + 14, (int)(rem / 60 % 60));
    out[16] = ':';
    put2(out + 17, (int)(rem % 60));
    out[19] = '\0';
    return 19;
}

size_t agent_format_time(int64_t ms, char out[32])
{
    /* "YYYY-MM-DDTHH:MM:" of the last minute formatted (its length 0 for a
       year outside 0..9999, formatted whole every time) */
    static __thread int64_t cached_min = INT64_MIN;
    static __thread char cached[32];
    static __thread size_t cached_len;
    /* the events of one read share their time: the last result, whole */
    static __thread int64_t last_ms = INT64_MIN;
    static __thread char last[32];
    static __thread size_t last_len;
    if (ms == last_ms) {
        memcpy(out, last, 32);
        return last_len;
    }
    int64_t sec = ms >= 0 ? ms / 1000 : (ms - 999) / 1000;
    int milli = (int)(ms - sec * 1000);
    int64_t min = sec >= 0 ? sec / 60 : (sec - 59) / 60;
    int s = (int)(sec - min * 60);
    size_t n;
    if (min != cached_min) {
        n = format_sec(min * 60, cached, sizeof(cached));
        cached_len = n == 19 ? 17 : 0;
        cached_min = min;
    }
    if (cached_len == 17) {
        memcpy(out, cached, 24); /* the prefix, and bytes overwritten below */
        put2(out + 17, s);
        n = 19;
    } else {
        n = format_sec(sec, out, 24);
    }
    out[n++] = '.';
    out[n++] = (char)('0' + milli / 100);
    out[n++] = (char)('0' + milli / 10 % 10);
    out[n++] = (char)('0' + milli % 10);
    out[n++] = 'Z';
    out[n] = '\0';
    memcpy(last, out, 32);
    last_ms = ms;
    last_len = n;
    return n;
}

/*
 * Writes the event with one reservation for its worst case, then plain
 * stores. Where the escaped bytes of a long string (the message) are is
 * noted, and a later field whose value is a slice of it without any (a
 * regex capture, a logfmt value) is copied as it is, not scanned again.
 */
void agent_event_render(agent_event_t *ev, agent_sbuf_t *out)
{
    static const char ts_key[] = "{\"@timestamp\":\"";
    static const char partial[] = ",\"partial\":true";
    size_t need = (sizeof(ts_key) - 1) + 32 + 1 + (sizeof(partial) - 1) + 1 + 16;
    for (size_t i = 0; i < ev->nfields; i++) {
        const agent_field_t *f = &ev->fields[i];
        need += 6 + (f->nlen + f->vlen) * 6; /* a raw value needs vlen */
    }
    if (agent_sbuf_reserve(out, need) != 0) {
        return;
    }
    char *o = out->p + out->len;
    memcpy(o, ts_key, sizeof(ts_key) - 1);
    o += sizeof(ts_key) - 1;
    o += agent_format_time(ev->ts_ms, o);
    *o++ = '"';
    json_stops_t stops; /* of the string at known, already rendered */
    uintptr_t known = 0;
    size_t known_len = 0;
    for (size_t i = 0; i < ev->nfields; i++) {
        const agent_field_t *f = &ev->fields[i];
        *o++ = ',';
        *o++ = '"';
        if (f->plain_name) {
            o = copy_short(o, f->name, f->nlen);
        } else {
            o = json_escape(o, (const unsigned char *)f->name, f->nlen, NULL);
        }
        *o++ = '"';
        *o++ = ':';
        if (f->raw) {
            o = copy_short(o, f->val, f->vlen);
        } else {
            *o++ = '"';
            uintptr_t v = (uintptr_t)f->val;
            if (known_len > 0 && v >= known && v - known <= known_len &&
                f->vlen <= known_len - (v - known) && stops_clear(&stops, v - known, f->vlen)) {
#if defined(__SSE2__)
                if (f->vlen <= 16 && known_len - (v - known) >= 16) {
                    /* 16 bytes of the string are there to read, and the
                       reservation has 16 to spare */
                    _mm_storeu_si128((__m128i *)(void *)o,
                                     _mm_loadu_si128((const __m128i *)(const void *)f->val));
                    o += f->vlen;
                } else {
                    o = copy_short(o, f->val, f->vlen);
                }
#else
                o = copy_short(o, f->val, f->vlen);
#endif
            } else if (f->vlen > known_len && f->vlen >= 64) {
                /* a long string (the message, say): its stops are noted */
                stops.n = 0;
                o = json_escape(o, (const unsigned char *)f->val, f->vlen, &stops);
                known = v;
                known_len = stops.n <= JSON_STOPS ? f->vlen : 0;
            } else {
                o = json_escape(o, (const unsigned char *)f->val, f->vlen, NULL);
            }
            *o++ = '"';
        }
    }
    if (ev->partial) {
        memcpy(o, partial, sizeof(partial) - 1);
        o += sizeof(partial) - 1;
    }
    *o++ = '}';
    out->len = (size_t)(o - out->p);
}

static bool topic_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
}

static const char *tj_ws(const char *p, const char *e)
{
    while (p < e && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) {
        p++;
    }
    return p;
}

/* Past one JSON value at p (strings, nesting); NULL when malformed. */
static const char *tj_skip(const char *p, const char *e)
{
    int depth = 0;
    do {
        if (p >= e) {
            return NULL;
        }
        if (*p == '"') {
            for (p++; p < e && *p != '"'; p++) {
                p += *p == '\\';
            }
            if (p >= e) {
                return NULL;
            }
            p++;
        } else if (*p == '{' || *p == '[') {
            depth++;
            p++;
        } else if (*p == '}' || *p == ']') {
            depth--;
            p++;
        } else if (depth > 0 && (*p == ',' || *p == ':' || *p == ' ' || *p == '\t' || *p == '\n' ||
                                 *p == '\r')) {
            p++;
        } else {
            while (p < e && *p != ',' && *p != '}' && *p != ']' && *p != ' ' && *p != '\n' &&
                   *p != '\t' && *p != '\r') {
                p++;
            }
        }
    } while (depth > 0);
    return p;
}

/* The raw value of member `key` of the JSON object obj; false if none. */
static bool tj_member(const char *obj, size_t n, const char *key, size_t klen, const char **v,
                      size_t *vn)
{
    const char *p = obj, *e = obj + n;
    p = tj_ws(p, e);
    if (p >= e || *p != '{') {
        return false;
    }
    p = tj_ws(p + 1, e);
    while (p < e && *p == '"') {
        const char *ks = p + 1;
        const char *ke = tj_skip(p, e);
        if (ke == NULL) {
            return false;
        }
        bool match = (size_t)(ke - 1 - ks) == klen && memcmp(ks, key, klen) == 0;
        p = tj_ws(ke, e);
        if (p >= e || *p != ':') {
            return false;
        }
        p = tj_ws(p + 1, e);
        const char *vs = p;
        p = tj_skip(p, e);
        if (p == NULL) {
            return false;
        }
        if (match) {
            *v = vs;
            *vn = (size_t)(p - vs);
            return true;
        }
        p = tj_ws(p, e);
        if (p < e && *p == ',') {
            p = tj_ws(p + 1, e);
        } else {
            break;
        }
    }
    return false;
}

/*
 * The text of a template reference: a field by its whole name, else a
 * dotted path into a field holding a JSON object ({http.status}); JSON
 * strings are decoded, other values come as their JSON text. false when
 * it names nothing (or null).
 */
static bool template_value(agent_event_t *ev, const char *name, size_t nlen, agent_sbuf_t *out)
{
    agent_field_t *f = agent_event_get(ev, name, nlen);
    if (f != NULL) {
        const char *s;
        size_t n;
        agent_field_text(ev, f, &s, &n);
        agent_sbuf_put(out, s, n);
        return true;
    }
    const char *dot = memchr(name, '.', nlen);
    if (dot == NULL) {
        return false;
    }
    f = agent_event_get(ev, name, (size_t)(dot - name));
    if (f == NULL || !f->raw) {
        return false;
    }
    const char *v = f->val;
    size_t vn = f->vlen;
    const char *end = name + nlen;
    for (const char *seg = dot + 1; seg <= end;) {
        const char *next = memchr(seg, '.', (size_t)(end - seg));
        size_t sl = next ? (size_t)(next - seg) : (size_t)(end - seg);
        if (!tj_member(v, vn, seg, sl, &v, &vn)) {
            return false;
        }
        if (next == NULL) {
            break;
        }
        seg = next + 1;
    }
    if (vn == 4 && memcmp(v, "null", 4) == 0) {
        return false;
    }
    if (vn >= 2 && v[0] == '"') {
        if (agent_sbuf_reserve(out, vn) != 0) {
            return false;
        }
        out->len += json_unescape(v + 1, vn - 2, out->p + out->len);
        return true;
    }
    agent_sbuf_put(out, v, vn);
    return true;
}

void agent_template_render(agent_event_t *ev, const char *tmpl, bool topic, agent_sbuf_t *out)
{
    const char *p = tmpl;
    while (*p) {
        const char *brace = strchr(p, '{');
        const char *close = brace ? strchr(brace, '}') : NULL;
        if (brace == NULL || close == NULL) {
            agent_sbuf_puts(out, p);
            break;
        }
        agent_sbuf_put(out, p, (size_t)(brace - p));
        /* {name} or {name:-default} */
        const char *name = brace + 1;
        size_t nlen = (size_t)(close - name);
        const char *def = NULL;
        for (size_t i = 0; i + 1 < nlen; i++) {
            if (name[i] == ':' && name[i + 1] == '-') {
                def = name + i + 2;
                nlen = i;
                break;
            }
        }
        size_t start = out->len;
        if (!template_value(ev, name, nlen, out) || out->len == start) {
            out->len = start;
            if (def != NULL) {
                agent_sbuf_put(out, def, (size_t)(close - def));
            }
        }
        if (topic) {
            if (out->len == start) {
                agent_sbuf_putc(out, '_'); /* a missing field */
            }
            for (size_t i = start; i < out->len && !out->err; i++) {
                if (!topic_char(out->p[i])) {
                    out->p[i] = '_';
                }
            }
        }
        p = close + 1;
    }
    if (topic && out->len > 249 && !out->err) {
        out->len = 249; /* Kafka's longest topic name */
    }
}

int64_t agent_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME_COARSE, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t agent_fnv64(uint64_t h, const void *p, size_t n)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

void agent_event_id_tail(uint8_t id[AGENT_EVENT_ID_LEN], uint64_t ident, uint64_t start_off)
{
    for (int i = 0; i < 8; i++) {
        id[i] = (uint8_t)(ident >> (56 - 8 * i));
    }
    id[8] = AGENT_EVENT_ID_TAIL;
    for (int i = 0; i < 7; i++) {
        id[9 + i] = (uint8_t)(start_off >> (48 - 8 * i));
    }
}

void agent_event_id_hex(const uint8_t id[AGENT_EVENT_ID_LEN], char out[2 * AGENT_EVENT_ID_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < AGENT_EVENT_ID_LEN; i++) {
        out[2 * i] = hex[id[i] >> 4];
        out[2 * i + 1] = hex[id[i] & 15];
    }
    out[2 * AGENT_EVENT_ID_LEN] = '\0';
}
