/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The Prometheus text exposition format, version 0.0.4: a parser that calls
 * back per sample, and a bounded libcurl scrape.
 *
 * Grammar, one construct per line (lines end in \n, an optional \r before
 * it is dropped; blanks are spaces and tabs, any number between tokens):
 *
 *   line     = blank* ( comment | sample )?
 *   comment  = "#" blank* ( "HELP" blank+ name (blank+ text)?
 *                         | "TYPE" blank+ name blank+ type
 *                         | anything else )            -- a plain comment
 *   sample   = name blank* ( "{" labels? "}" )? blank+ value ( blank+ ts )? blank*
 *   labels   = label ( blank* "," blank* label )* blank* ","?
 *   label    = lname blank* "=" blank* '"' ( char | "\\" | "\"" | "\n" )* '"'
 *   name     = [a-zA-Z_:][a-zA-Z0-9_:]*     lname = [a-zA-Z_][a-zA-Z0-9_]*
 *   value    = a decimal float, "NaN", "+Inf", "-Inf" (case-insensitive,
 *              "Inf"/"Infinity" too, as Go's ParseFloat takes them)
 *   ts       = [+-]? digits   (milliseconds since the epoch)
 *   type     = counter | gauge | histogram | summary | untyped
 *
 * A line that does not match is skipped and counted. A second TYPE for the
 * same family is counted and the first one stands. A sample's type is its
 * own name's TYPE, else the TYPE of the name without a family suffix:
 * _bucket (histogram), _sum and _count (histogram, summary), _total
 * (counter) and _created (counter, histogram, summary).
 *
 * Values go through strtod() only after their syntax is checked (no hex, no
 * locale-dependent forms); the agent never calls setlocale(), so the
 * decimal point is '.'.
 *
 * Memory: TYPE names are kept in an open-addressing hash table pointing
 * into the input (valid for the whole parse). Per sample, the metric name,
 * the label names and the unescaped label values are copied, NUL-terminated,
 * into one scratch buffer sized from the line (an unescaped value is never
 * longer than its escaped text), so a sample's strings are valid during its
 * callback only. The parser allocates nothing per sample once the scratch
 * buffer has grown to the longest line.
 */
#include "hostmetrics/hostmetrics.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

/* ---------------------------------------------------------------------- */
/* TYPE table                                                             */

typedef struct prom_family {
    const char *name; /* into the input; NULL: empty slot */
    size_t len;
    const char *type; /* a static string */
} prom_family_t;

typedef struct prom_types {
    prom_family_t *slot;
    size_t cap; /* a power of two */
    size_t n;
} prom_types_t;

static uint64_t prom_hash(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h;
}

static const char *prom_types_get(const prom_types_t *t, const char *name, size_t len)
{
    if (t->cap == 0) {
        return NULL;
    }
    size_t mask = t->cap - 1;
    for (size_t i = (size_t)prom_hash(name, len) & mask;; i = (i + 1) & mask) {
        const prom_family_t *f = &t->slot[i];
        if (f->name == NULL) {
            return NULL;
        }
        if (f->len == len && memcmp(f->name, name, len) == 0) {
            return f->type;
        }
    }
}

/* 0 added, 1 already there, -ENOMEM. */
static int prom_types_put(prom_types_t *t, const char *name, size_t len, const char *type)
{
    if ((t->n + 1) * 2 > t->cap) {
        size_t ncap = t->cap ? t->cap * 2 : 64;
        prom_family_t *ns = calloc(ncap, sizeof(*ns));
        if (ns == NULL) {
            return -ENOMEM;
        }
        for (size_t i = 0; i < t->cap; i++) {
            prom_family_t *f = &t->slot[i];
            if (f->name == NULL) {
                continue;
            }
            size_t j = (size_t)prom_hash(f->name, f->len) & (ncap - 1);
            while (ns[j].name != NULL) {
                j = (j + 1) & (ncap - 1);
            }
            ns[j] = *f;
        }
        free(t->slot);
        t->slot = ns;
        t->cap = ncap;
    }
    size_t mask = t->cap - 1;
    for (size_t i = (size_t)prom_hash(name, len) & mask;; i = (i + 1) & mask) {
        prom_family_t *f = &t->slot[i];
        if (f->name == NULL) {
            f->name = name;
            f->len = len;
            f->type = type;
            t->n++;
            return 0;
        }
        if (f->len == len && memcmp(f->name, name, len) == 0) {
            return 1;
        }
    }
}

static const struct {
    const char *suffix;
    const char *types[3];
} prom_suffixes[] = {
    {"_bucket", {"histogram"}},
    {"_sum", {"histogram", "summary"}},
    {"_count", {"histogram", "summary"}},
    {"_total", {"counter"}},
    {"_created", {"counter", "histogram", "summary"}},
};

static const char *prom_type_of(const prom_types_t *t, const char *name, size_t len)
{
    const char *ty = prom_types_get(t, name, len);
    if (ty != NULL) {
        return ty;
    }
    for (size_t i = 0; i < sizeof(prom_suffixes) / sizeof(prom_suffixes[0]); i++) {
        size_t sl = strlen(prom_suffixes[i].suffix);
        if (len <= sl || memcmp(name + len - sl, prom_suffixes[i].suffix, sl) != 0) {
            continue;
        }
        const char *base = prom_types_get(t, name, len - sl);
        for (size_t k = 0; base != NULL && k < 3 && prom_suffixes[i].types[k] != NULL; k++) {
            if (strcmp(base, prom_suffixes[i].types[k]) == 0) {
                return base;
            }
        }
    }
    return "untyped";
}

/* ---------------------------------------------------------------------- */
/* Lexing                                                                 */

typedef struct prom_cur {
    const char *p;
    const char *end;
} prom_cur_t;

static bool prom_blank(char c)
{
    return c == ' ' || c == '\t';
}

static void prom_skip_blanks(prom_cur_t *c)
{
    while (c->p < c->end && prom_blank(*c->p)) {
        c->p++;
    }
}

static bool prom_name_start(char c, bool colon)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon && c == ':');
}

static bool prom_name_char(char c, bool colon)
{
    return prom_name_start(c, colon) || (c >= '0' && c <= '9');
}

/* A metric name (colon true) or a label name; its length, 0 if none. */
static size_t prom_name(prom_cur_t *c, bool colon)
{
    const char *s = c->p;
    if (s >= c->end || !prom_name_start(*s, colon)) {
        return 0;
    }
    while (c->p < c->end && prom_name_char(*c->p, colon)) {
        c->p++;
    }
    return (size_t)(c->p - s);
}

/* The next run of non-blanks. */
static size_t prom_token(prom_cur_t *c, const char **tok)
{
    *tok = c->p;
    while (c->p < c->end && !prom_blank(*c->p)) {
        c->p++;
    }
    return (size_t)(c->p - *tok);
}

static bool prom_ieq(const char *s, size_t n, const char *lit)
{
    size_t ln = strlen(lit);
    if (n != ln) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char a = s[i];
        if (a >= 'A' && a <= 'Z') {
            a = (char)(a - 'A' + 'a');
        }
        if (a != lit[i]) {
            return false;
        }
    }
    return true;
}

/* A float as Go's ParseFloat reads the exposition's values (decimal only);
   tmp has room for n + 1 bytes. */
static bool prom_value(const char *s, size_t n, char *tmp, double *out)
{
    size_t i = 0;
    bool neg = false;
    if (n > 0 && (s[0] == '+' || s[0] == '-')) {
        neg = s[0] == '-';
        i = 1;
    }
    if (i == 0 && prom_ieq(s, n, "nan")) {
        *out = NAN;
        return true;
    }
    if (prom_ieq(s + i, n - i, "inf") || prom_ieq(s + i, n - i, "infinity")) {
        *out = neg ? -INFINITY : INFINITY;
        return true;
    }
    size_t digits = 0;
    while (i < n && s[i] >= '0' && s[i] <= '9') {
        i++;
        digits++;
    }
    if (i < n && s[i] == '.') {
        i++;
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            i++;
            digits++;
        }
    }
    if (digits == 0) {
        return false;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-')) {
            i++;
        }
        size_t ed = 0;
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            i++;
            ed++;
        }
        if (ed == 0) {
            return false;
        }
    }
    if (i != n) {
        return false;
    }
    /* Only [+-0-9.eE] reach strtod, so neither locale nor hex forms apply. */
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    *out = strtod(tmp, NULL);
    return true;
}

static bool prom_timestamp(const char *s, size_t n, int64_t *out)
{
    size_t i = 0;
    bool neg = false;
    if (n > 0 && (s[0] == '+' || s[0] == '-')) {
        neg = s[0] == '-';
        i = 1;
    }
    if (i == n) {
        return false;
    }
    uint64_t v = 0;
    uint64_t lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return false;
        }
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (lim - d) / 10) {
            return false;
        }
        v = v * 10 + d;
    }
    if (neg) {
        *out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
    } else {
        *out = (int64_t)v;
    }
    return true;
}

/* ---------------------------------------------------------------------- */
/* Lines                                                                  */

typedef struct prom_parser {
    prom_types_t types;
    char *scratch;
    size_t scap;
    agent_prom_emit_fn emit;
    void *ud;
} prom_parser_t;

/* A comment line (c->p just past '#'): 0 fine, -1 malformed, -ENOMEM. */
static int prom_comment(prom_parser_t *ps, prom_cur_t *c)
{
    prom_skip_blanks(c);
    const char *kw;
    size_t kn = prom_token(c, &kw);
    bool help = kn == 4 && memcmp(kw, "HELP", 4) == 0;
    bool type = kn == 4 && memcmp(kw, "TYPE", 4) == 0;
    if (!help && !type) {
        return 0;
    }
    prom_skip_blanks(c);
    const char *name = c->p;
    size_t nl = prom_name(c, true);
    if (nl == 0 || (c->p < c->end && !prom_blank(*c->p))) {
        return -1;
    }
    if (help) {
        return 0; /* the docstring is not kept */
    }
    prom_skip_blanks(c);
    const char *tn;
    size_t tl = prom_token(c, &tn);
    prom_skip_blanks(c);
    if (c->p != c->end) {
        return -1;
    }
    static const char *const known[] = {"counter", "gauge", "histogram", "summary", "untyped"};
    const char *ty = NULL;
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
        if (tl == strlen(known[i]) && memcmp(tn, known[i], tl) == 0) {
            ty = known[i];
        }
    }
    if (ty == NULL) {
        return -1;
    }
    int rc = prom_types_put(&ps->types, name, nl, ty);
    if (rc < 0) {
        return rc;
    }
    return rc == 1 ? -1 : 0;
}

/* Copies n bytes to the scratch at *w, NUL-terminated; returns the copy. */
static char *prom_stash(char **w, const char *s, size_t n)
{
    char *d = *w;
    memcpy(d, s, n);
    d[n] = '\0';
    *w += n + 1;
    return d;
}

/* A sample line: 0 emitted, -1 malformed. The scratch holds >= line + 32. */
static int prom_sample(prom_parser_t *ps, prom_cur_t *c)
{
    agent_prom_sample_t s;
    memset(&s, 0, sizeof(s));
    char *w = ps->scratch;
    const char *name = c->p;
    size_t nl = prom_name(c, true);
    if (nl == 0) {
        return -1;
    }
    s.name = prom_stash(&w, name, nl);
    s.name_len = nl;
    prom_skip_blanks(c);
    if (c->p < c->end && *c->p == '{') {
        c->p++;
        for (;;) {
            prom_skip_blanks(c);
            if (c->p < c->end && *c->p == '}') {
                c->p++;
                break;
            }
            const char *ln = c->p;
            size_t ll = prom_name(c, false);
            if (ll == 0 || s.nlabels == AGENT_PROM_MAX_LABELS) {
                return -1;
            }
            for (size_t i = 0; i < s.nlabels; i++) {
                if (s.labels[i].nlen == ll && memcmp(s.labels[i].name, ln, ll) == 0) {
                    return -1; /* the same label twice */
                }
            }
            prom_skip_blanks(c);
            if (c->p >= c->end || *c->p != '=') {
                return -1;
            }
            c->p++;
            prom_skip_blanks(c);
            if (c->p >= c->end || *c->p != '"') {
                return -1;
            }
            c->p++;
            size_t k = s.nlabels;
            s.labels[k].name = prom_stash(&w, ln, ll);
            s.labels[k].nlen = ll;
            char *v = w;
            size_t vl = 0;
            bool closed = false;
            while (c->p < c->end) {
                char ch = *c->p++;
                if (ch == '"') {
                    closed = true;
                    break;
                }
                if (ch == '\\') {
                    if (c->p >= c->end) {
                        return -1;
                    }
                    char e = *c->p++;
                    if (e == 'n') {
                        ch = '\n';
                    } else if (e == '\\' || e == '"') {
                        ch = e;
                    } else {
                        return -1;
                    }
                }
                v[vl++] = ch;
            }
            if (!closed) {
                return -1;
            }
            v[vl] = '\0';
            w += vl + 1;
            s.labels[k].value = v;
            s.labels[k].vlen = vl;
            s.nlabels++;
            prom_skip_blanks(c);
            if (c->p < c->end && *c->p == ',') {
                c->p++;
            } else if (c->p >= c->end || *c->p != '}') {
                return -1;
            }
        }
    }
    /* At least one blank before the value ("a{}1" is taken as well). */
    prom_skip_blanks(c);
    const char *vt;
    size_t vn = prom_token(c, &vt);
    if (vn == 0 || !prom_value(vt, vn, w, &s.value)) {
        return -1;
    }
    prom_skip_blanks(c);
    if (c->p < c->end) {
        const char *tt;
        size_t tn = prom_token(c, &tt);
        if (!prom_timestamp(tt, tn, &s.ts_ms)) {
            return -1;
        }
        s.has_ts = true;
        prom_skip_blanks(c);
        if (c->p != c->end) {
            return -1;
        }
    }
    if (vt == name + nl) {
        return -1; /* "name1" style: no separator between name and value */
    }
    s.type = prom_type_of(&ps->types, name, nl);
    if (ps->emit != NULL) {
        ps->emit(ps->ud, &s);
    }
    return 0;
}

long agent_prom_parse(const char *text, size_t len, agent_prom_emit_fn emit, void *ud)
{
    prom_parser_t ps;
    memset(&ps, 0, sizeof(ps));
    ps.emit = emit;
    ps.ud = ud;
    long bad = 0;
    long rc = 0;
    if (text == NULL) {
        return 0;
    }
    const char *p = text;
    const char *end = text + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl != NULL ? nl : end;
        prom_cur_t c = {p, le};
        p = nl != NULL ? nl + 1 : end;
        if (c.end > c.p && c.end[-1] == '\r') {
            c.end--;
        }
        prom_skip_blanks(&c);
        if (c.p == c.end) {
            continue;
        }
        int r;
        if (*c.p == '#') {
            c.p++;
            r = prom_comment(&ps, &c);
        } else {
            size_t need = (size_t)(c.end - c.p) + 2 * AGENT_PROM_MAX_LABELS + 32;
            if (need > ps.scap) {
                size_t ncap = ps.scap ? ps.scap : 256;
                while (ncap < need) {
                    ncap *= 2;
                }
                char *ns = realloc(ps.scratch, ncap);
                if (ns == NULL) {
                    rc = -ENOMEM;
                    break;
                }
                ps.scratch = ns;
                ps.scap = ncap;
            }
            r = prom_sample(&ps, &c);
        }
        if (r == -ENOMEM) {
            rc = -ENOMEM;
            break;
        }
        if (r < 0) {
            bad++;
        }
    }
    free(ps.scratch);
    free(ps.types.slot);
    return rc < 0 ? rc : bad;
}

/* ---------------------------------------------------------------------- */
/* Scrape                                                                 */

#define PROM_DEFAULT_TIMEOUT_MS 10000
#define PROM_DEFAULT_MAX_BYTES (16u << 20)

typedef struct prom_body {
    char *p;
    size_t len;
    size_t cap;
    size_t max;
    bool too_big;
    bool nomem;
} prom_body_t;

static size_t prom_write_cb(char *data, size_t size, size_t nmemb, void *ud)
{
    prom_body_t *b = ud;
    size_t n = size * nmemb;
    if (n > b->max - b->len) {
        b->too_big = true;
        return 0; /* fewer bytes than given: libcurl aborts the transfer */
    }
    if (b->len + n + 1 > b->cap) {
        size_t ncap = b->cap ? b->cap : 4096;
        while (ncap < b->len + n + 1) {
            ncap *= 2;
        }
        char *np = realloc(b->p, ncap);
        if (np == NULL) {
            b->nomem = true;
            return 0;
        }
        b->p = np;
        b->cap = ncap;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = '\0';
    return n;
}

static pthread_once_t prom_curl_once = PTHREAD_ONCE_INIT;
static CURLcode prom_curl_init_rc = CURLE_OK;

static void prom_curl_init(void)
{
    prom_curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

__attribute__((format(printf, 3, 4))) static void prom_err(char *err, size_t errlen,
                                                           const char *fmt, ...)
{
    if (err != NULL && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
}

int agent_prom_scrape(const char *url, int64_t timeout_ms, size_t max_bytes, char **body,
                      size_t *len, char *err, size_t errlen)
{
    if (body != NULL) {
        *body = NULL;
    }
    if (len != NULL) {
        *len = 0;
    }
    if (err != NULL && errlen > 0) {
        err[0] = '\0';
    }
    if (url == NULL || body == NULL || len == NULL) {
        prom_err(err, errlen, "invalid arguments");
        return -1;
    }
    if (timeout_ms <= 0) {
        timeout_ms = PROM_DEFAULT_TIMEOUT_MS;
    }
    if (max_bytes == 0) {
        max_bytes = PROM_DEFAULT_MAX_BYTES;
    }
    if (max_bytes > (size_t)INT64_MAX - 1) {
        max_bytes = (size_t)INT64_MAX - 1; /* curl_off_t, and room for the NUL */
    }
    pthread_once(&prom_curl_once, prom_curl_init);
    if (prom_curl_init_rc != CURLE_OK) {
        prom_err(err, errlen, "libcurl initialisation failed: %s (%ld)",
                 curl_easy_strerror(prom_curl_init_rc), (long)prom_curl_init_rc);
        return -1;
    }
    CURL *e = curl_easy_init();
    if (e == NULL) {
        prom_err(err, errlen, "curl_easy_init failed");
        return -1;
    }
    int ret = -1;
    CURLcode rc = CURLE_OK;
    struct curl_slist *hdrs = NULL;
    prom_body_t b = {.max = max_bytes};
    char cerr[CURL_ERROR_SIZE];
    cerr[0] = '\0';
    struct curl_slist *h1 = curl_slist_append(NULL, "Accept: text/plain;version=0.0.4");
    if (h1 == NULL) {
        prom_err(err, errlen, "out of memory");
        goto out;
    }
    hdrs = h1;
    /* Each setopt can only fail on memory or an unsupported option; the
       first failure is kept and reported. */
#define PROM_SETOPT(opt, val)                                                                      \
    do {                                                                                           \
        if (rc == CURLE_OK) {                                                                      \
            rc = curl_easy_setopt(e, opt, val);                                                    \
        }                                                                                          \
    } while (0)
    PROM_SETOPT(CURLOPT_URL, url);
    PROM_SETOPT(CURLOPT_NOSIGNAL, 1L);
    PROM_SETOPT(CURLOPT_FOLLOWLOCATION, 0L);
#if LIBCURL_VERSION_NUM >= 0x075500
    PROM_SETOPT(CURLOPT_PROTOCOLS_STR, "http,https");
#else
    PROM_SETOPT(CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    PROM_SETOPT(CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    PROM_SETOPT(CURLOPT_CONNECTTIMEOUT_MS, (long)timeout_ms);
    PROM_SETOPT(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)max_bytes);
    PROM_SETOPT(CURLOPT_HTTPHEADER, hdrs);
    PROM_SETOPT(CURLOPT_USERAGENT, "tributary-agent");
    PROM_SETOPT(CURLOPT_ACCEPT_ENCODING,
                ""); /* what libcurl can decode; max_bytes counts decoded */
    PROM_SETOPT(CURLOPT_WRITEFUNCTION, prom_write_cb);
    PROM_SETOPT(CURLOPT_WRITEDATA, &b);
    PROM_SETOPT(CURLOPT_ERRORBUFFER, cerr);
#undef PROM_SETOPT
    if (rc != CURLE_OK) {
        prom_err(err, errlen, "curl_easy_setopt: %s (%ld)", curl_easy_strerror(rc), (long)rc);
        goto out;
    }
    rc = curl_easy_perform(e);
    if (b.too_big || rc == CURLE_FILESIZE_EXCEEDED) {
        prom_err(err, errlen, "response body larger than %zu bytes", max_bytes);
        goto out;
    }
    if (b.nomem) {
        prom_err(err, errlen, "out of memory reading the response");
        goto out;
    }
    if (rc != CURLE_OK) {
        prom_err(err, errlen, "%s (curl error %ld)", cerr[0] ? cerr : curl_easy_strerror(rc),
                 (long)rc);
        goto out;
    }
    long status = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    if (status != 200) {
        prom_err(err, errlen, "HTTP status %ld", status);
        goto out;
    }
    if (b.p == NULL) {
        b.p = malloc(1);
        if (b.p == NULL) {
            prom_err(err, errlen, "out of memory");
            goto out;
        }
        b.p[0] = '\0';
    }
    *body = b.p;
    *len = b.len;
    b.p = NULL;
    ret = 0;
out:
    free(b.p);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(e);
    return ret;
}
