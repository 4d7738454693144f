/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The znode JSON of the ZooKeeper backend (see zk_json.h): a writer with
 * escaping, and a strict reader of one flat object. The reader is a
 * cursor over the bytes that never reads past `len`; nesting is bounded
 * (MAX_DEPTH) so hostile znode contents cannot exhaust the stack.
 */
#include "cluster/zk_json.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdarg.h>
#include <string.h>

#define MAX_DEPTH 16

typedef struct cur {
    const char *p, *end;
    const char *why;
} cur_t;

static void ws(cur_t *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r')) {
        c->p++;
    }
}

static bool fail(cur_t *c, const char *why)
{
    if (!c->why) {
        c->why = why;
    }
    return false;
}

static bool lit(cur_t *c, const char *s)
{
    size_t n = strlen(s);
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, s, n) != 0) {
        return fail(c, "invalid literal");
    }
    c->p += n;
    return true;
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9') {
        return ch - '0';
    }
    if (ch >= 'a' && ch <= 'f') {
        return ch - 'a' + 10;
    }
    if (ch >= 'A' && ch <= 'F') {
        return ch - 'A' + 10;
    }
    return -1;
}

/* A string; its unescaped bytes go to out (when not NULL, truncation is an error). */
static bool str(cur_t *c, char *out, size_t n)
{
    size_t o = 0;
    if (c->p >= c->end || *c->p != '"') {
        return fail(c, "expected a string");
    }
    c->p++;
    for (;;) {
        if (c->p >= c->end) {
            return fail(c, "unterminated string");
        }
        unsigned char ch = (unsigned char)*c->p++;
        if (ch == '"') {
            break;
        }
        if (ch < 0x20) {
            return fail(c, "control character in a string");
        }
        if (ch == '\\') {
            if (c->p >= c->end) {
                return fail(c, "unterminated string");
            }
            char e = *c->p++;
            switch (e) {
            case '"':
            case '\\':
            case '/':
                ch = (unsigned char)e;
                break;
            case 'b':
                ch = '\b';
                break;
            case 'f':
                ch = '\f';
                break;
            case 'n':
                ch = '\n';
                break;
            case 'r':
                ch = '\r';
                break;
            case 't':
                ch = '\t';
                break;
            case 'u': {
                if (c->end - c->p < 4) {
                    return fail(c, "short \\u escape");
                }
                unsigned v = 0;
                for (int i = 0; i < 4; i++) {
                    int h = hexval(c->p[i]);
                    if (h < 0) {
                        return fail(c, "bad \\u escape");
                    }
                    v = v << 4 | (unsigned)h;
                }
                c->p += 4;
                if (v >= 0x80) {
                    /* Names and hosts are ASCII; keep the reader small. */
                    if (out) {
                        return fail(c, "non-ASCII \\u escape in a value that is read");
                    }
                    v = '?';
                }
                ch = (unsigned char)v;
                if (ch == 0 && out) {
                    return fail(c, "NUL in a string");
                }
                break;
            }
            default:
                return fail(c, "bad escape");
            }
        }
        if (out) {
            if (o + 1 >= n) {
                return fail(c, "string too long");
            }
            out[o++] = (char)ch;
        }
    }
    if (out) {
        out[o] = '\0';
    }
    return true;
}

static bool num(cur_t *c, int64_t *out)
{
    const char *s = c->p;
    bool neg = false;
    if (c->p < c->end && *c->p == '-') {
        neg = true;
        c->p++;
    }
    if (c->p >= c->end || *c->p < '0' || *c->p > '9') {
        return fail(c, "expected a number");
    }
    uint64_t v = 0;
    bool big = false;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
        if (v > (UINT64_MAX - 9) / 10) {
            big = true;
        } else {
            v = v * 10 + (uint64_t)(*c->p - '0');
        }
        c->p++;
    }
    bool frac = false;
    if (c->p < c->end && *c->p == '.') {
        frac = true;
        c->p++;
        if (c->p >= c->end || *c->p < '0' || *c->p > '9') {
            return fail(c, "bad number");
        }
        while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
            c->p++;
        }
    }
    if (c->p < c->end && (*c->p == 'e' || *c->p == 'E')) {
        frac = true;
        c->p++;
        if (c->p < c->end && (*c->p == '+' || *c->p == '-')) {
            c->p++;
        }
        if (c->p >= c->end || *c->p < '0' || *c->p > '9') {
            return fail(c, "bad number");
        }
        while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
            c->p++;
        }
    }
    (void)s;
    if (out) {
        if (frac || big || v > (uint64_t)INT64_MAX) {
            return fail(c, "number out of range");
        }
        *out = neg ? -(int64_t)v : (int64_t)v;
    }
    return true;
}

static bool value(cur_t *c, int depth);

static bool skip_container(cur_t *c, int depth, char open, char close)
{
    if (depth >= MAX_DEPTH) {
        return fail(c, "nested too deeply");
    }
    c->p++; /* open */
    ws(c);
    if (c->p < c->end && *c->p == close) {
        c->p++;
        return true;
    }
    for (;;) {
        ws(c);
        if (open == '{') {
            if (!str(c, NULL, 0)) {
                return false;
            }
            ws(c);
            if (c->p >= c->end || *c->p != ':') {
                return fail(c, "expected ':'");
            }
            c->p++;
            ws(c);
        }
        if (!value(c, depth + 1)) {
            return false;
        }
        ws(c);
        if (c->p < c->end && *c->p == ',') {
            c->p++;
            continue;
        }
        if (c->p < c->end && *c->p == close) {
            c->p++;
            return true;
        }
        return fail(c, "expected ',' or the end of a container");
    }
}

static bool value(cur_t *c, int depth)
{
    if (c->p >= c->end) {
        return fail(c, "expected a value");
    }
    switch (*c->p) {
    case '"':
        return str(c, NULL, 0);
    case '{':
        return skip_container(c, depth, '{', '}');
    case '[':
        return skip_container(c, depth, '[', ']');
    case 't':
        return lit(c, "true");
    case 'f':
        return lit(c, "false");
    case 'n':
        return lit(c, "null");
    default:
        return num(c, NULL);
    }
}

static bool boolean(cur_t *c, bool *out)
{
    if (c->p < c->end && *c->p == 't') {
        *out = true;
        return lit(c, "true");
    }
    if (c->p < c->end && *c->p == 'f') {
        *out = false;
        return lit(c, "false");
    }
    return fail(c, "expected true or false");
}

/* "PLAINTEXT://host:port" (host may be [v6]) into b; false if it is not one. */
static bool parse_endpoint(const char *s, coll_zk_broker_t *b)
{
    static const char pfx[] = "PLAINTEXT://";
    if (strncmp(s, pfx, sizeof(pfx) - 1) != 0) {
        return false;
    }
    s += sizeof(pfx) - 1;
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s) {
        return false;
    }
    const char *h = s, *he = colon;
    if (*h == '[' && he[-1] == ']') {
        h++;
        he--;
    }
    size_t hl = (size_t)(he - h);
    if (hl == 0 || hl >= sizeof(b->host)) {
        return false;
    }
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || colon[1] == '\0' || port < 0 || port > 65535) {
        return false;
    }
    memcpy(b->host, h, hl);
    b->host[hl] = '\0';
    b->port = (int32_t)port;
    return true;
}

/*
 * Walks one flat object, calling on_key for each key with the cursor on
 * its value; on_key either reads the value or returns false with
 * c->why unset to have it skipped.
 */
typedef bool (*key_fn)(cur_t *c, const char *key, void *arg);

static int walk(const char *json, size_t len, key_fn fn, void *arg, const char **why)
{
    cur_t c = {json, json + len, NULL};
    ws(&c);
    if (c.p >= c.end || *c.p != '{') {
        *why = "not a JSON object";
        return -EINVAL;
    }
    c.p++;
    ws(&c);
    if (c.p < c.end && *c.p == '}') {
        c.p++;
    } else {
        for (;;) {
            char key[64];
            ws(&c);
            if (!str(&c, key, sizeof(key))) {
                /* A long key is no key we know: skip it. */
                if (c.why && strcmp(c.why, "string too long") == 0) {
                    return *why = "key too long", -EINVAL;
                }
                break;
            }
            ws(&c);
            if (c.p >= c.end || *c.p != ':') {
                fail(&c, "expected ':'");
                break;
            }
            c.p++;
            ws(&c);
            if (!fn(&c, key, arg)) {
                if (c.why) {
                    break;
                }
                if (!value(&c, 1)) {
                    break;
                }
            }
            ws(&c);
            if (c.p < c.end && *c.p == ',') {
                c.p++;
                continue;
            }
            if (c.p < c.end && *c.p == '}') {
                c.p++;
                break;
            }
            fail(&c, "expected ',' or '}'");
            break;
        }
    }
    if (!c.why) {
        ws(&c);
        if (c.p != c.end) {
            fail(&c, "bytes after the object");
        }
    }
    if (c.why) {
        *why = c.why;
        return -EINVAL;
    }
    return 0;
}

typedef struct broker_walk {
    coll_zk_broker_t *b;
    char host[COLL_ZK_HOST_MAX];
    int64_t port;
    bool have_endpoint, have_host, have_port;
} broker_walk_t;

static bool broker_key(cur_t *c, const char *key, void *arg)
{
    broker_walk_t *w = arg;
    if (strcmp(key, "host") == 0) {
        if (c->p < c->end && *c->p == 'n') {
            return lit(c, "null");
        }
        w->have_host = str(c, w->host, sizeof(w->host));
        return w->have_host;
    }
    if (strcmp(key, "port") == 0) {
        w->have_port = num(c, &w->port);
        return w->have_port;
    }
    if (strcmp(key, "rack") == 0) {
        if (c->p < c->end && *c->p == 'n') {
            w->b->rack[0] = '\0';
            return lit(c, "null");
        }
        return str(c, w->b->rack, sizeof(w->b->rack));
    }
    if (strcmp(key, "shutting_down") == 0) {
        return boolean(c, &w->b->shutting_down);
    }
    if (strcmp(key, "endpoints") == 0) {
        if (c->p >= c->end || *c->p != '[') {
            return fail(c, "endpoints: expected an array");
        }
        c->p++;
        ws(c);
        if (c->p < c->end && *c->p == ']') {
            c->p++;
            return true;
        }
        for (int i = 0;; i++) {
            char ep[COLL_ZK_HOST_MAX + 32];
            ws(c);
            if (i >= 64) {
                return fail(c, "endpoints: too many");
            }
            if (!str(c, ep, sizeof(ep))) {
                return false;
            }
            if (!w->have_endpoint && parse_endpoint(ep, w->b)) {
                w->have_endpoint = true;
            }
            ws(c);
            if (c->p < c->end && *c->p == ',') {
                c->p++;
                continue;
            }
            if (c->p < c->end && *c->p == ']') {
                c->p++;
                return true;
            }
            return fail(c, "endpoints: expected ',' or ']'");
        }
    }
    return false;
}

int coll_zk_broker_decode(const char *json, size_t len, coll_zk_broker_t *b, const char **why)
{
    broker_walk_t w;
    memset(&w, 0, sizeof(w));
    w.b = b;
    b->host[0] = '\0';
    b->rack[0] = '\0';
    b->port = -1;
    b->shutting_down = false;
    int rc = walk(json, len, broker_key, &w, why);
    if (rc != 0) {
        return rc;
    }
    if (w.have_endpoint) {
        return 0;
    }
    if (!w.have_host || !w.have_port || !w.host[0] || w.port < 0 || w.port > 65535) {
        *why = "no PLAINTEXT endpoint and no host/port";
        return -EINVAL;
    }
    memcpy(b->host, w.host, sizeof(b->host));
    b->port = (int32_t)w.port;
    return 0;
}

/* Appends s as a JSON string; false when it does not fit. */
static bool put_str(char *out, size_t n, size_t *o, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    if (*o + 1 >= n) {
        return false;
    }
    out[(*o)++] = '"';
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char esc[7];
        size_t el;
        if (*p == '"' || *p == '\\') {
            esc[0] = '\\';
            esc[1] = (char)*p;
            el = 2;
        } else if (*p < 0x20) {
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[*p >> 4];
            esc[5] = hex[*p & 15];
            el = 6;
        } else {
            esc[0] = (char)*p;
            el = 1;
        }
        if (*o + el + 1 >= n) {
            return false;
        }
        memcpy(out + *o, esc, el);
        *o += el;
    }
    if (*o + 1 >= n) {
        return false;
    }
    out[(*o)++] = '"';
    out[*o] = '\0';
    return true;
}

static bool put_raw(char *out, size_t n, size_t *o, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static bool put_raw(char *out, size_t n, size_t *o, const char *fmt, ...)
{
    if (*o >= n) {
        return false;
    }
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(out + *o, n - *o, fmt, ap);
    va_end(ap);
    if (w < 0 || (size_t)w >= n - *o) {
        return false;
    }
    *o += (size_t)w;
    return true;
}

int coll_zk_broker_encode(const coll_zk_broker_t *b, int64_t timestamp_ms, char *out, size_t n)
{
    size_t o = 0;
    char ep[COLL_ZK_HOST_MAX + 32];
    bool v6 = strchr(b->host, ':') != NULL;
    snprintf(ep, sizeof(ep), "PLAINTEXT://%s%s%s:%" PRId32, v6 ? "[" : "", b->host, v6 ? "]" : "",
             b->port);
    bool ok = put_raw(out, n, &o,
                      "{\"listener_security_protocol_map\":{\"PLAINTEXT\":\"PLAINTEXT\"},"
                      "\"endpoints\":[") &&
              put_str(out, n, &o, ep) && put_raw(out, n, &o, "],\"jmx_port\":-1,\"host\":") &&
              put_str(out, n, &o, b->host) &&
              put_raw(out, n, &o, ",\"port\":%" PRId32 ",\"rack\":", b->port);
    if (ok && b->rack[0]) {
        ok = put_str(out, n, &o, b->rack);
    } else if (ok) {
        ok = put_raw(out, n, &o, "null");
    }
    ok = ok && put_raw(out, n, &o,
                       ",\"timestamp\":\"%" PRId64
                       "\",\"features\":{},\"version\":5,\"shutting_down\":%s}",
                       timestamp_ms, b->shutting_down ? "true" : "false");
    return ok ? (int)o : -ENOSPC;
}

typedef struct ctl_walk {
    int64_t id;
    bool have;
} ctl_walk_t;

static bool ctl_key(cur_t *c, const char *key, void *arg)
{
    ctl_walk_t *w = arg;
    if (strcmp(key, "brokerid") == 0) {
        w->have = num(c, &w->id);
        return w->have;
    }
    return false;
}

int coll_zk_controller_encode(int32_t broker_id, int64_t timestamp_ms, char *out, size_t n)
{
    int w =
        snprintf(out, n, "{\"version\":1,\"brokerid\":%" PRId32 ",\"timestamp\":\"%" PRId64 "\"}",
                 broker_id, timestamp_ms);
    return w < 0 || (size_t)w >= n ? -ENOSPC : w;
}

int coll_zk_controller_decode(const char *json, size_t len, int32_t *broker_id, const char **why)
{
    ctl_walk_t w = {0, false};
    int rc = walk(json, len, ctl_key, &w, why);
    if (rc != 0) {
        return rc;
    }
    if (!w.have || w.id < 0 || w.id > INT32_MAX) {
        *why = "no brokerid 0..2147483647";
        return -EINVAL;
    }
    *broker_id = (int32_t)w.id;
    return 0;
}

int coll_zk_cluster_id_encode(const char *id, char *out, size_t n)
{
    int w = snprintf(out, n, "{\"version\":\"1\",\"id\":\"%s\"}", id);
    return w < 0 || (size_t)w >= n ? -ENOSPC : w;
}

typedef struct id_walk {
    char *id;
    bool have;
} id_walk_t;

static bool id_key(cur_t *c, const char *key, void *arg)
{
    id_walk_t *w = arg;
    if (strcmp(key, "id") == 0) {
        w->have = str(c, w->id, COLL_ZK_CLUSTER_ID_MAX);
        return w->have;
    }
    return false;
}

int coll_zk_cluster_id_decode(const char *json, size_t len, char id[COLL_ZK_CLUSTER_ID_MAX],
                              const char **why)
{
    id_walk_t w = {id, false};
    id[0] = '\0';
    int rc = walk(json, len, id_key, &w, why);
    if (rc != 0) {
        return rc;
    }
    if (!w.have || !id[0]) {
        *why = "no id";
        return -EINVAL;
    }
    for (const char *p = id; *p; p++) {
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '-')) {
            *why = "the id has a character outside [A-Za-z0-9_-]";
            return -EINVAL;
        }
    }
    return 0;
}

int coll_zk_epoch_decode(const char *data, size_t len, int32_t *epoch)
{
    if (len == 0 || len > 10) {
        return -EINVAL;
    }
    int64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (data[i] < '0' || data[i] > '9') {
            return -EINVAL;
        }
        v = v * 10 + (data[i] - '0');
    }
    if (v > INT32_MAX) {
        return -EINVAL;
    }
    *epoch = (int32_t)v;
    return 0;
}
