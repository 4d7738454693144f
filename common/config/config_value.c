/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Scalar parsing for the config loader: booleans, integers, doubles,
 * durations, sizes and host:port addresses; ${ENV} substitution; the edit
 * distance behind "did you mean".
 *
 * The parsers are strict on purpose (no leading or trailing blanks, no
 * octal, no silent truncation): a value that is not exactly right is an
 * error, never a guess. Durations and sizes are computed in integers,
 * fractions included ("1.5s" is 1500 ms exactly; "0.5ms" is refused), with
 * overflow checks.
 */
#include "config_int.h"

#include "tributary/buf.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int cfg_parse_bool(const char *s, bool *v)
{
    static const char *const yes[] = {"true", "yes", "on"};
    static const char *const no[] = {"false", "no", "off"};
    for (size_t i = 0; i < 3; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *v = true;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *v = false;
            return 0;
        }
    }
    return -EINVAL;
}

int cfg_parse_int(const char *s, int64_t *v)
{
    const char *d = (*s == '-' || *s == '+') ? s + 1 : s;
    if (!isdigit((unsigned char)*d)) {
        return -EINVAL;
    }
    char *end;
    errno = 0;
    long long x = strtoll(s, &end, 10);
    if (*end != '\0') {
        return -EINVAL;
    }
    if (errno == ERANGE) {
        return -ERANGE;
    }
    *v = (int64_t)x;
    return 0;
}

int cfg_parse_uint(const char *s, uint64_t *v)
{
    const char *d = *s == '+' ? s + 1 : s;
    if (!isdigit((unsigned char)*d)) {
        return *d == '-' && isdigit((unsigned char)d[1]) ? -ERANGE : -EINVAL;
    }
    char *end;
    errno = 0;
    unsigned long long x = strtoull(d, &end, 10);
    if (*end != '\0') {
        return -EINVAL;
    }
    if (errno == ERANGE) {
        return -ERANGE;
    }
    *v = (uint64_t)x;
    return 0;
}

int cfg_parse_double(const char *s, double *v)
{
    const char *d = (*s == '-' || *s == '+') ? s + 1 : s;
    if (!isdigit((unsigned char)*d) && !(*d == '.' && isdigit((unsigned char)d[1]))) {
        return -EINVAL; /* refuses "inf", "nan", hex floats, blanks */
    }
    for (const char *p = d; *p; p++) {
        if (*p == 'x' || *p == 'X' || *p == 'p' || *p == 'P') {
            return -EINVAL;
        }
    }
    char *end;
    errno = 0;
    double x = strtod(s, &end);
    if (*end != '\0') {
        return -EINVAL;
    }
    if (errno == ERANGE || !isfinite(x)) {
        return -ERANGE;
    }
    *v = x;
    return 0;
}

static uint64_t gcd_u64(uint64_t a, uint64_t b)
{
    while (b) {
        uint64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/*
 * Reads "N" or "N.F" at *pp and scales it by `unit`, exactly. Returns 0,
 * -EINVAL (not a number, or a fraction that does not come out whole) or
 * -ERANGE.
 */
static int scaled_number(const char **pp, uint64_t unit, uint64_t *out)
{
    const char *p = *pp;
    uint64_t whole = 0;
    if (!isdigit((unsigned char)*p)) {
        return -EINVAL;
    }
    for (; isdigit((unsigned char)*p); p++) {
        uint64_t d = (uint64_t)(*p - '0');
        if (whole > (UINT64_MAX - d) / 10) {
            return -ERANGE;
        }
        whole = whole * 10 + d;
    }
    uint64_t frac = 0;
    uint64_t scale = 1;
    if (*p == '.') {
        p++;
        if (!isdigit((unsigned char)*p)) {
            return -EINVAL;
        }
        for (; isdigit((unsigned char)*p); p++) {
            if (scale >= 1000000000000ull) {
                return -EINVAL; /* more digits than any unit can use */
            }
            frac = frac * 10 + (uint64_t)(*p - '0');
            scale *= 10;
        }
    }
    if (whole > UINT64_MAX / unit) {
        return -ERANGE;
    }
    uint64_t v = whole * unit;
    if (frac) {
        /*
         * frac/scale * unit must come out whole. Divide both by their
         * common factor first: then frac must be a multiple of what is
         * left of scale, and the product stays below unit (no overflow).
         */
        uint64_t g = gcd_u64(unit, scale);
        uint64_t sc = scale / g;
        if (frac % sc != 0) {
            return -EINVAL;
        }
        uint64_t add = frac / sc * (unit / g);
        if (v > UINT64_MAX - add) {
            return -ERANGE;
        }
        v += add;
    }
    *pp = p;
    *out = v;
    return 0;
}

/* True if [s, end) is "N" or "N.F". */
static bool number_syntax(const char *s, const char *end)
{
    const char *p = s;
    while (p < end && isdigit((unsigned char)*p)) {
        p++;
    }
    if (p == s) {
        return false;
    }
    if (p < end && *p == '.') {
        const char *f = ++p;
        while (p < end && isdigit((unsigned char)*p)) {
            p++;
        }
        if (p == f) {
            return false;
        }
    }
    return p == end;
}

static const char *skip_blanks(const char *p)
{
    while (*p == ' ') {
        p++;
    }
    return p;
}

/* Duration units, longest names first where one is a prefix of another. */
static const struct {
    const char *name;
    uint64_t ms;
} duration_units[] = {
    {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000},
};

int cfg_duration(const char *s, int64_t *ms, const char **why)
{
    const char *p = s;
    bool neg = false;
    uint64_t total = 0;
    const char *dummy;
    if (!why) {
        why = &dummy;
    }
    if (*p == '-') {
        neg = true;
        p++;
    }
    if (strcmp(p, "0") == 0) {
        *ms = 0;
        return 0;
    }
    if (*p == '\0') {
        *why = "empty";
        return -EINVAL;
    }
    while (*p) {
        const char *num = p;
        while (isdigit((unsigned char)*p) || *p == '.') {
            p++;
        }
        if (p == num) {
            *why = "expected a number and a unit (ms, s, m, h, d), e.g. 250ms, 10s, 1h30m";
            return -EINVAL;
        }
        const char *unit = skip_blanks(p);
        if (*unit == '\0') {
            *why = "a unit is needed: ms, s, m, h or d";
            return -EINVAL;
        }
        size_t ulen = 0;
        while (isalpha((unsigned char)unit[ulen])) {
            ulen++;
        }
        uint64_t mult = 0;
        for (size_t i = 0; i < sizeof(duration_units) / sizeof(duration_units[0]); i++) {
            if (strlen(duration_units[i].name) == ulen &&
                memcmp(duration_units[i].name, unit, ulen) == 0) {
                mult = duration_units[i].ms;
            }
        }
        if (!mult) {
            *why = ulen ? "unknown unit: use ms, s, m, h or d"
                        : "expected a number and a unit (ms, s, m, h, d), e.g. 250ms, 10s, 1h30m";
            return -EINVAL;
        }
        if (!number_syntax(num, p)) {
            *why = "expected a number and a unit (ms, s, m, h, d), e.g. 250ms, 10s, 1h30m";
            return -EINVAL;
        }
        uint64_t v;
        const char *q = num;
        int rc = scaled_number(&q, mult, &v);
        if (rc == -EINVAL) {
            *why = "not a whole number of milliseconds";
            return rc;
        }
        if (rc == -ERANGE || v > (uint64_t)INT64_MAX || total > (uint64_t)INT64_MAX - v) {
            *why = "too large";
            return -ERANGE;
        }
        total += v;
        p = unit + ulen;
    }
    *ms = neg ? -(int64_t)total : (int64_t)total;
    return 0;
}

int trib_config_parse_duration(const char *s, int64_t *ms)
{
    return cfg_duration(s, ms, NULL);
}

static const struct {
    const char *name;
    uint64_t bytes;
} size_units[] = {
    {"B", 1},
    {"kB", 1000ull},
    {"MB", 1000ull * 1000},
    {"GB", 1000ull * 1000 * 1000},
    {"TB", 1000ull * 1000 * 1000 * 1000},
    {"PB", 1000ull * 1000 * 1000 * 1000 * 1000},
    {"KiB", 1ull << 10},
    {"MiB", 1ull << 20},
    {"GiB", 1ull << 30},
    {"TiB", 1ull << 40},
    {"PiB", 1ull << 50},
};

#define SIZE_UNITS_TEXT "B, kB, MB, GB, TB, PB, KiB, MiB, GiB, TiB or PiB"

int cfg_size(const char *s, uint64_t *bytes, const char **why)
{
    const char *dummy;
    if (!why) {
        why = &dummy;
    }
    const char *p = s;
    while (isdigit((unsigned char)*p) || *p == '.') {
        p++;
    }
    if (p == s) {
        *why =
            "expected a byte count with an optional unit (" SIZE_UNITS_TEXT "), e.g. 4096, 64MiB";
        return -EINVAL;
    }
    const char *unit = skip_blanks(p);
    uint64_t mult = 1;
    if (*unit) {
        mult = 0;
        for (size_t i = 0; i < sizeof(size_units) / sizeof(size_units[0]); i++) {
            if (strcmp(size_units[i].name, unit) == 0) {
                mult = size_units[i].bytes;
            }
        }
        if (!mult) {
            *why = "unknown unit: use " SIZE_UNITS_TEXT;
            return -EINVAL;
        }
    } else if (unit != p) {
        *why = "trailing blanks";
        return -EINVAL;
    }
    if (!number_syntax(s, p)) {
        *why =
            "expected a byte count with an optional unit (" SIZE_UNITS_TEXT "), e.g. 4096, 64MiB";
        return -EINVAL;
    }
    const char *q = s;
    int rc = scaled_number(&q, mult, bytes);
    if (rc == -EINVAL) {
        *why = "not a whole number of bytes";
    } else if (rc == -ERANGE) {
        *why = "too large";
    }
    return rc;
}

int trib_config_parse_size(const char *s, uint64_t *bytes)
{
    return cfg_size(s, bytes, NULL);
}

void trib_config_format_duration(int64_t ms, char *out, size_t outlen)
{
    static const struct {
        const char *name;
        uint64_t ms;
    } units[] = {{"d", 86400000}, {"h", 3600000}, {"m", 60000}, {"s", 1000}, {"ms", 1}};
    size_t off = 0;
    if (outlen == 0) {
        return;
    }
    out[0] = '\0';
    if (ms == 0) {
        snprintf(out, outlen, "0s");
        return;
    }
    uint64_t v = ms < 0 ? (uint64_t)0 - (uint64_t)ms : (uint64_t)ms;
    if (ms < 0) {
        off += (size_t)snprintf(out, outlen, "-");
    }
    for (size_t i = 0; i < 5 && v; i++) {
        uint64_t n = v / units[i].ms;
        if (n && off < outlen) {
            off += (size_t)snprintf(out + off, outlen - off, "%llu%s", (unsigned long long)n,
                                    units[i].name);
            v -= n * units[i].ms;
        }
    }
}

void trib_config_format_size(uint64_t bytes, char *out, size_t outlen)
{
    /* Binary units first (what people configure), then decimal ones. */
    static const int order[] = {10, 9, 8, 7, 6, 5, 4, 3, 2, 1};
    if (bytes != 0) {
        for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
            uint64_t u = size_units[order[i]].bytes;
            if (bytes % u == 0) {
                snprintf(out, outlen, "%llu%s", (unsigned long long)(bytes / u),
                         size_units[order[i]].name);
                return;
            }
        }
    }
    snprintf(out, outlen, "%llu", (unsigned long long)bytes);
}

static bool host_char(char ch)
{
    return isalnum((unsigned char)ch) || ch == '-' || ch == '.' || ch == '_';
}

int trib_config_parse_address(const char *s, char *host, size_t hostlen, uint16_t *port,
                              const char **why)
{
    const char *colon;
    const char *h = s;
    size_t hl;

    if (*s == '[') {
        const char *close = strchr(s, ']');
        if (!close) {
            *why = "missing ']' after an IPv6 address";
            return -EINVAL;
        }
        h = s + 1;
        hl = (size_t)(close - h);
        if (close[1] != ':') {
            *why = "missing ':port' after ']'";
            return -EINVAL;
        }
        colon = close + 1;
        char tmp[INET6_ADDRSTRLEN + 1];
        struct in6_addr a6;
        if (hl == 0 || hl >= sizeof(tmp)) {
            *why = "not an IPv6 address between the brackets";
            return -EINVAL;
        }
        memcpy(tmp, h, hl);
        tmp[hl] = '\0';
        if (inet_pton(AF_INET6, tmp, &a6) != 1) {
            *why = "not an IPv6 address between the brackets";
            return -EINVAL;
        }
    } else {
        colon = strrchr(s, ':');
        if (!colon) {
            *why = "expected host:port";
            return -EINVAL;
        }
        hl = (size_t)(colon - s);
        if (memchr(s, ':', hl)) {
            *why = "an IPv6 address needs brackets, e.g. [::1]:9092";
            return -EINVAL;
        }
        bool dotted = hl > 0;
        for (size_t i = 0; i < hl; i++) {
            if (!host_char(s[i])) {
                *why = "invalid character in the host name";
                return -EINVAL;
            }
            if (!isdigit((unsigned char)s[i]) && s[i] != '.') {
                dotted = false;
            }
        }
        if (hl > 253 || (hl > 0 && (s[0] == '-' || s[0] == '.' || s[hl - 1] == '-'))) {
            *why = "invalid host name";
            return -EINVAL;
        }
        if (dotted) {
            char tmp[16];
            struct in_addr a4;
            if (hl >= sizeof(tmp)) {
                *why = "not an IPv4 address";
                return -EINVAL;
            }
            memcpy(tmp, s, hl);
            tmp[hl] = '\0';
            if (inet_pton(AF_INET, tmp, &a4) != 1) {
                *why = "not an IPv4 address";
                return -EINVAL;
            }
        }
    }

    const char *ps = colon + 1;
    if (*ps == '\0') {
        *why = "missing port number after ':'";
        return -EINVAL;
    }
    unsigned long pv = 0;
    for (const char *p = ps; *p; p++) {
        if (!isdigit((unsigned char)*p) || p - ps >= 5) {
            *why = isdigit((unsigned char)*p) ? "port out of range (0-65535)"
                                              : "the port is not a number";
            return -EINVAL;
        }
        pv = pv * 10 + (unsigned long)(*p - '0');
    }
    if (pv > 65535) {
        *why = "port out of range (0-65535)";
        return -EINVAL;
    }
    if (hl >= hostlen) {
        *why = "host name too long";
        return -EINVAL;
    }
    memcpy(host, h, hl);
    host[hl] = '\0';
    *port = (uint16_t)pv;
    return 0;
}

const char *cfg_env_expand(trib_arena_t *a, const char *s, size_t len, size_t *outlen, char *why,
                           size_t whylen, bool *oom)
{
    if (!memchr(s, '$', len)) {
        *outlen = len;
        return s;
    }
    trib_buf_t b;
    size_t i = 0;
    const char *result = NULL;
    trib_buf_init(&b);
    while (i < len) {
        if (s[i] != '$') {
            trib_buf_append(&b, s + i, 1);
            i++;
            continue;
        }
        if (i + 2 < len && s[i + 1] == '$' && s[i + 2] == '{') {
            trib_buf_append(&b, "${", 2); /* "$${" escapes "${" */
            i += 3;
            continue;
        }
        if (i + 1 >= len || s[i + 1] != '{') {
            trib_buf_append(&b, "$", 1);
            i++;
            continue;
        }
        /* ${NAME}, ${NAME:-default} */
        size_t name = i + 2;
        size_t p = name;
        while (p < len && (isalnum((unsigned char)s[p]) || s[p] == '_')) {
            p++;
        }
        const char *close = memchr(s + i, '}', len - i);
        if (!close) {
            snprintf(why, whylen, "unterminated '${': missing '}'");
            goto done;
        }
        size_t nlen = p - name;
        bool has_def = p + 1 < len && s[p] == ':' && s[p + 1] == '-';
        if (nlen == 0 || isdigit((unsigned char)s[name]) || (!has_def && s[p] != '}')) {
            snprintf(why, whylen,
                     "invalid variable reference '%.*s': expected ${NAME} or "
                     "${NAME:-default}",
                     (int)(close - (s + i) + 1), s + i);
            goto done;
        }
        char vname[256];
        if (nlen >= sizeof(vname)) {
            snprintf(why, whylen, "variable name too long");
            goto done;
        }
        memcpy(vname, s + name, nlen);
        vname[nlen] = '\0';
        const char *val = getenv(vname);
        if (has_def && (!val || !*val)) {
            const char *d = s + p + 2;
            trib_buf_append(&b, d, (size_t)(close - d));
        } else if (val) {
            trib_buf_append(&b, val, strlen(val));
        } else {
            snprintf(why, whylen, "environment variable '%s' is not set", vname);
            goto done;
        }
        i = (size_t)(close - s) + 1;
    }
    size_t n = 0;
    const uint8_t *flat = trib_buf_flatten(&b, &n);
    if (!trib_buf_error(&b)) {
        result = trib_arena_strndup(a, flat ? (const char *)flat : "", n);
        *outlen = n;
    }
    if (!result) {
        *oom = true;
        snprintf(why, whylen, "out of memory");
    }
done:
    trib_buf_fini(&b);
    return result;
}

size_t cfg_edit_distance(const char *a, const char *b, size_t cap)
{
    enum { MAXLEN = 64 };
    size_t la = strlen(a);
    size_t lb = strlen(b);
    if (la > MAXLEN || lb > MAXLEN) {
        return cap + 1;
    }
    if ((la > lb ? la - lb : lb - la) > cap) {
        return cap + 1;
    }
    /* Three rows: two back (for transpositions), one back, current. */
    size_t rows[3][MAXLEN + 1];
    size_t *pp = rows[0];
    size_t *prev = rows[1];
    size_t *cur = rows[2];
    for (size_t j = 0; j <= lb; j++) {
        prev[j] = j;
    }
    for (size_t i = 1; i <= la; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            int ca = tolower((unsigned char)a[i - 1]);
            int cb = tolower((unsigned char)b[j - 1]);
            size_t cost = ca == cb ? 0 : 1;
            size_t v = prev[j] + 1;
            if (cur[j - 1] + 1 < v) {
                v = cur[j - 1] + 1;
            }
            if (prev[j - 1] + cost < v) {
                v = prev[j - 1] + cost;
            }
            if (i > 1 && j > 1 && ca == tolower((unsigned char)b[j - 2]) &&
                tolower((unsigned char)a[i - 2]) == cb && pp[j - 2] + 1 < v) {
                v = pp[j - 2] + 1;
            }
            cur[j] = v;
        }
        size_t *t = pp;
        pp = prev;
        prev = cur;
        cur = t;
    }
    return prev[lb] > cap ? cap + 1 : prev[lb];
}

const char *cfg_suggest(const char *word, const char *const *candidates, size_t n)
{
    const char *best = NULL;
    size_t best_d = SIZE_MAX;
    size_t lw = strlen(word);
    for (size_t i = 0; i < n; i++) {
        size_t lc = strlen(candidates[i]);
        size_t longest = lw > lc ? lw : lc;
        size_t cap = 1 + longest / 4;
        if (cap > 3) {
            cap = 3;
        }
        size_t d = cfg_edit_distance(word, candidates[i], cap);
        if (d <= cap && d < longest && d < best_d) {
            best = candidates[i];
            best_d = d;
        }
    }
    return best;
}

const char *cfg_type_noun(trib_config_type_t t)
{
    switch (t) {
    case TRIB_CONFIG_BOOL:
        return "a boolean";
    case TRIB_CONFIG_INT:
        return "an integer";
    case TRIB_CONFIG_UINT:
        return "a non-negative integer";
    case TRIB_CONFIG_DOUBLE:
        return "a number";
    case TRIB_CONFIG_STRING:
        return "a string";
    case TRIB_CONFIG_ENUM:
        return "a name";
    case TRIB_CONFIG_DURATION:
        return "a duration";
    case TRIB_CONFIG_SIZE:
        return "a size";
    case TRIB_CONFIG_ADDRESS:
        return "a host:port address";
    case TRIB_CONFIG_STRLIST:
        return "a sequence of strings";
    case TRIB_CONFIG_MAP:
        return "a mapping";
    case TRIB_CONFIG_SECTION:
        return "a mapping";
    case TRIB_CONFIG_SECTIONS:
        return "a sequence of mappings";
    default:
        return "a value";
    }
}
