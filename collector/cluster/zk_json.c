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

/* ---- topics, partition states, configs, producer id blocks ----------------------------- */

/* [n, n, ...] of integers in [lo, hi] into out[0..max); *count set. */
static bool int_array(cur_t *c, int32_t *out, int max, int *count, int64_t lo, int64_t hi)
{
    *count = 0;
    if (c->p >= c->end || *c->p != '[') {
        return fail(c, "expected an array");
    }
    c->p++;
    ws(c);
    if (c->p < c->end && *c->p == ']') {
        c->p++;
        return true;
    }
    for (;;) {
        ws(c);
        int64_t v;
        if (!num(c, &v)) {
            return false;
        }
        if (v < lo || v > hi) {
            return fail(c, "array value out of range");
        }
        if (*count >= max) {
            return fail(c, "array too long");
        }
        out[(*count)++] = (int32_t)v;
        ws(c);
        if (c->p < c->end && *c->p == ',') {
            c->p++;
            continue;
        }
        if (c->p < c->end && *c->p == ']') {
            c->p++;
            return true;
        }
        return fail(c, "expected ',' or ']'");
    }
}

static bool distinct(const int32_t *v, int n)
{
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < i; j++) {
            if (v[i] == v[j]) {
                return false;
            }
        }
    }
    return true;
}

/* A decimal partition id "0".."9999" without leading zeros. */
static bool partition_key(const char *k, int32_t *out)
{
    size_t n = strlen(k);
    if (n == 0 || n > 5 || (n > 1 && k[0] == '0')) {
        return false;
    }
    int32_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (k[i] < '0' || k[i] > '9') {
            return false;
        }
        v = v * 10 + (k[i] - '0');
    }
    if (v >= COLL_ZK_MAX_PARTITIONS) {
        return false;
    }
    *out = v;
    return true;
}

typedef struct asg_entry {
    int32_t pid, start, n;
} asg_entry_t;

/* One object of partition -> replica list: "partitions", "adding_replicas", "removing_replicas". */
typedef struct asg_lists {
    asg_entry_t *ents;
    size_t nents, cap_ents;
    int32_t *ids;
    size_t nids, cap_ids;
} asg_lists_t;

typedef struct asg_walk {
    coll_zk_assignment_t *a;
    asg_lists_t l[3];
    bool have_partitions;
} asg_walk_t;

static bool asg_partitions(cur_t *c, asg_lists_t *w, bool may_be_empty)
{
    if (c->p >= c->end || *c->p != '{') {
        return fail(c, "partitions: expected an object");
    }
    c->p++;
    ws(c);
    if (c->p < c->end && *c->p == '}') {
        c->p++;
        return true;
    }
    for (;;) {
        char key[16];
        ws(c);
        if (!str(c, key, sizeof(key))) {
            return fail(c, "partitions: bad partition id");
        }
        int32_t pid;
        if (!partition_key(key, &pid)) {
            return fail(c, "partitions: bad partition id");
        }
        ws(c);
        if (c->p >= c->end || *c->p != ':') {
            return fail(c, "expected ':'");
        }
        c->p++;
        ws(c);
        if (w->nents >= COLL_ZK_MAX_PARTITIONS) {
            return fail(c, "partitions: too many");
        }
        if (w->nents == w->cap_ents) {
            size_t nc = w->cap_ents ? w->cap_ents * 2 : 16;
            asg_entry_t *ne = realloc(w->ents, nc * sizeof(*ne));
            if (!ne) {
                return fail(c, "out of memory");
            }
            w->ents = ne;
            w->cap_ents = nc;
        }
        if (w->cap_ids - w->nids < COLL_ZK_MAX_REPLICAS) {
            size_t nc = w->cap_ids ? w->cap_ids * 2 : 256;
            while (nc - w->nids < COLL_ZK_MAX_REPLICAS) {
                nc *= 2;
            }
            int32_t *ni = realloc(w->ids, nc * sizeof(*ni));
            if (!ni) {
                return fail(c, "out of memory");
            }
            w->ids = ni;
            w->cap_ids = nc;
        }
        int n = 0;
        if (!int_array(c, w->ids + w->nids, COLL_ZK_MAX_REPLICAS, &n, 0, INT32_MAX)) {
            return false;
        }
        if ((n == 0 && !may_be_empty) || !distinct(w->ids + w->nids, n)) {
            return fail(c, "partitions: a replica list is empty or names a broker twice");
        }
        w->ents[w->nents].pid = pid;
        w->ents[w->nents].start = (int32_t)w->nids;
        w->ents[w->nents].n = n;
        w->nents++;
        w->nids += (size_t)n;
        ws(c);
        if (c->p < c->end && *c->p == ',') {
            c->p++;
            continue;
        }
        if (c->p < c->end && *c->p == '}') {
            c->p++;
            return true;
        }
        return fail(c, "expected ',' or '}'");
    }
}

static bool asg_key(cur_t *c, const char *key, void *arg)
{
    asg_walk_t *w = arg;
    if (strcmp(key, "partitions") == 0) {
        w->have_partitions = true;
        return asg_partitions(c, &w->l[0], false);
    }
    if (strcmp(key, "adding_replicas") == 0 || strcmp(key, "removing_replicas") == 0) {
        return asg_partitions(c, &w->l[key[0] == 'a' ? 1 : 2], true);
    }
    if (strcmp(key, "topic_id") == 0) {
        if (c->p < c->end && *c->p == 'n') {
            return lit(c, "null");
        }
        return str(c, w->a->topic_id, sizeof(w->a->topic_id));
    }
    return false;
}

static int cmp_ent(const void *x, const void *y)
{
    const asg_entry_t *a = x, *b = y;
    return a->pid < b->pid ? -1 : a->pid > b->pid;
}

/* Marks, in a's role array, the ids that lists l (adding or removing) name. */
static void mark_roles(coll_zk_assignment_t *a, const asg_lists_t *l, uint8_t role)
{
    for (size_t e = 0; e < l->nents; e++) {
        int32_t p = l->ents[e].pid;
        if (p < 0 || p >= a->npartitions) {
            continue; /* a partition the assignment does not have: nothing to mark */
        }
        for (int32_t j = 0; j < l->ents[e].n; j++) {
            int32_t id = l->ids[l->ents[e].start + j];
            for (int32_t k = a->off[p]; k < a->off[p + 1]; k++) {
                if (a->ids[k] == id && a->role[k] == COLL_ZK_ROLE_NONE) {
                    a->role[k] = role;
                }
            }
        }
    }
}

int coll_zk_assignment_decode(const char *json, size_t len, coll_zk_assignment_t *a,
                              const char **why)
{
    memset(a, 0, sizeof(*a));
    asg_walk_t w;
    memset(&w, 0, sizeof(w));
    w.a = a;
    int rc = walk(json, len, asg_key, &w, why);
    asg_lists_t *P = &w.l[0];
    if (rc == 0 && !w.have_partitions) {
        *why = "no partitions";
        rc = -EINVAL;
    }
    if (rc == 0) {
        qsort(P->ents, P->nents, sizeof(*P->ents), cmp_ent);
        for (size_t i = 0; i < P->nents; i++) {
            if (P->ents[i].pid != (int32_t)i) {
                *why = "partitions are not numbered 0..n-1";
                rc = -EINVAL;
                break;
            }
        }
    }
    if (rc == 0) {
        a->off = malloc((P->nents + 1) * sizeof(*a->off));
        a->ids = malloc((P->nids ? P->nids : 1) * sizeof(*a->ids));
        a->role = calloc(P->nids ? P->nids : 1, sizeof(*a->role));
        if (!a->off || !a->ids || !a->role) {
            *why = "out of memory";
            rc = -ENOMEM;
        } else {
            int32_t o = 0;
            for (size_t i = 0; i < P->nents; i++) {
                a->off[i] = o;
                memcpy(a->ids + o, P->ids + P->ents[i].start,
                       (size_t)P->ents[i].n * sizeof(int32_t));
                o += P->ents[i].n;
            }
            a->off[P->nents] = o;
            a->npartitions = (int32_t)P->nents;
            mark_roles(a, &w.l[1], COLL_ZK_ROLE_ADDING);
            mark_roles(a, &w.l[2], COLL_ZK_ROLE_REMOVING);
        }
    }
    for (int k = 0; k < 3; k++) {
        free(w.l[k].ents);
        free(w.l[k].ids);
    }
    if (rc != 0) {
        coll_zk_assignment_free(a);
    }
    return rc;
}

bool coll_zk_assignment_reassigning(const coll_zk_assignment_t *a, int32_t p)
{
    if (!a->role || p < 0 || p >= a->npartitions) {
        return false;
    }
    for (int32_t k = a->off[p]; k < a->off[p + 1]; k++) {
        if (a->role[k] != COLL_ZK_ROLE_NONE) {
            return true;
        }
    }
    return false;
}

/* Writes "key":{"p":[ids of that role],...} for the partitions that have any. */
static bool put_roles(char *out, size_t cap, size_t *o, const coll_zk_assignment_t *a,
                      const char *key, uint8_t role)
{
    bool ok = put_raw(out, cap, o, ",\"%s\":{", key);
    bool first_p = true;
    for (int32_t p = 0; ok && a->role && p < a->npartitions; p++) {
        bool first = true;
        for (int32_t k = a->off[p]; ok && k < a->off[p + 1]; k++) {
            if (a->role[k] != role) {
                continue;
            }
            if (first) {
                ok = put_raw(out, cap, o, "%s\"%" PRId32 "\":[", first_p ? "" : ",", p);
                first_p = false;
            }
            ok = ok && put_raw(out, cap, o, "%s%" PRId32, first ? "" : ",", a->ids[k]);
            first = false;
        }
        if (!first) {
            ok = ok && put_raw(out, cap, o, "]");
        }
    }
    return ok && put_raw(out, cap, o, "}");
}

void coll_zk_assignment_free(coll_zk_assignment_t *a)
{
    if (a) {
        free(a->off);
        free(a->ids);
        free(a->role);
        a->off = NULL;
        a->ids = NULL;
        a->role = NULL;
        a->npartitions = 0;
    }
}

char *coll_zk_assignment_encode(const coll_zk_assignment_t *a, size_t *len)
{
    size_t nids = a->npartitions > 0 ? (size_t)a->off[a->npartitions] : 0;
    size_t cap = 160 + strlen(a->topic_id) +
                 (size_t)(a->npartitions > 0 ? a->npartitions : 0) * 36 + nids * 24;
    char *out = malloc(cap);
    if (!out) {
        return NULL;
    }
    size_t o = 0;
    bool ok = put_raw(out, cap, &o, "{\"version\":3,\"partitions\":{");
    for (int32_t p = 0; ok && p < a->npartitions; p++) {
        ok = put_raw(out, cap, &o, "%s\"%" PRId32 "\":[", p ? "," : "", p);
        for (int32_t k = a->off[p]; ok && k < a->off[p + 1]; k++) {
            ok = put_raw(out, cap, &o, "%s%" PRId32, k > a->off[p] ? "," : "", a->ids[k]);
        }
        ok = ok && put_raw(out, cap, &o, "]");
    }
    ok = ok && put_raw(out, cap, &o, "},\"topic_id\":");
    if (ok && a->topic_id[0]) {
        ok = put_str(out, cap, &o, a->topic_id);
    } else if (ok) {
        ok = put_raw(out, cap, &o, "null");
    }
    ok = ok && put_roles(out, cap, &o, a, "adding_replicas", COLL_ZK_ROLE_ADDING);
    ok = ok && put_roles(out, cap, &o, a, "removing_replicas", COLL_ZK_ROLE_REMOVING);
    ok = ok && put_raw(out, cap, &o, "}");
    if (!ok) {
        free(out);
        return NULL;
    }
    *len = o;
    return out;
}

int coll_zk_state_encode(const coll_zk_state_t *s, char *out, size_t n)
{
    size_t o = 0;
    bool ok = put_raw(out, n, &o,
                      "{\"controller_epoch\":%" PRId32 ",\"leader\":%" PRId32
                      ",\"version\":1,\"leader_epoch\":%" PRId32 ",\"isr\":[",
                      s->controller_epoch, s->leader, s->leader_epoch);
    for (int32_t i = 0; ok && i < s->nisr; i++) {
        ok = put_raw(out, n, &o, "%s%" PRId32, i ? "," : "", s->isr[i]);
    }
    ok = ok && put_raw(out, n, &o, "]}");
    return ok ? (int)o : -ENOSPC;
}

typedef struct state_walk {
    coll_zk_state_t *s;
    bool have_leader, have_epoch, have_isr;
} state_walk_t;

static bool state_int(cur_t *c, int32_t *out, int64_t lo)
{
    int64_t v;
    if (!num(c, &v)) {
        return false;
    }
    if (v < lo || v > INT32_MAX) {
        return fail(c, "value out of range");
    }
    *out = (int32_t)v;
    return true;
}

static bool state_key(cur_t *c, const char *key, void *arg)
{
    state_walk_t *w = arg;
    if (strcmp(key, "controller_epoch") == 0) {
        return state_int(c, &w->s->controller_epoch, 0);
    }
    if (strcmp(key, "leader") == 0) {
        /* Kafka writes -2 while a topic is being deleted: no leader either. */
        w->have_leader = state_int(c, &w->s->leader, -2);
        if (w->have_leader && w->s->leader < 0) {
            w->s->leader = -1;
        }
        return w->have_leader;
    }
    if (strcmp(key, "leader_epoch") == 0) {
        w->have_epoch = state_int(c, &w->s->leader_epoch, -2);
        return w->have_epoch;
    }
    if (strcmp(key, "isr") == 0) {
        int n = 0;
        w->have_isr = int_array(c, w->s->isr, COLL_ZK_MAX_REPLICAS, &n, 0, INT32_MAX);
        w->s->nisr = n;
        if (w->have_isr && !distinct(w->s->isr, n)) {
            return fail(c, "isr names a broker twice");
        }
        return w->have_isr;
    }
    return false;
}

int coll_zk_state_decode(const char *json, size_t len, coll_zk_state_t *s, const char **why)
{
    memset(s, 0, sizeof(*s));
    state_walk_t w = {s, false, false, false};
    int rc = walk(json, len, state_key, &w, why);
    if (rc != 0) {
        return rc;
    }
    if (!w.have_leader || !w.have_epoch || !w.have_isr) {
        *why = "leader, leader_epoch or isr missing";
        return -EINVAL;
    }
    return 0;
}

typedef struct cfg_walk {
    int (*fn)(void *, const char *, const char *);
    void *arg;
} cfg_walk_t;

static bool cfg_entries(cur_t *c, cfg_walk_t *w)
{
    if (c->p >= c->end || *c->p != '{') {
        return fail(c, "config: expected an object");
    }
    c->p++;
    ws(c);
    if (c->p < c->end && *c->p == '}') {
        c->p++;
        return true;
    }
    for (int i = 0;; i++) {
        char name[256], val[1024];
        ws(c);
        if (i >= 1024) {
            return fail(c, "config: too many entries");
        }
        if (!str(c, name, sizeof(name))) {
            return false;
        }
        ws(c);
        if (c->p >= c->end || *c->p != ':') {
            return fail(c, "expected ':'");
        }
        c->p++;
        ws(c);
        if (!str(c, val, sizeof(val))) {
            return false;
        }
        if (w->fn(w->arg, name, val) != 0) {
            return fail(c, "config entry refused");
        }
        ws(c);
        if (c->p < c->end && *c->p == ',') {
            c->p++;
            continue;
        }
        if (c->p < c->end && *c->p == '}') {
            c->p++;
            return true;
        }
        return fail(c, "expected ',' or '}'");
    }
}

static bool cfg_key(cur_t *c, const char *key, void *arg)
{
    if (strcmp(key, "config") == 0) {
        return cfg_entries(c, arg);
    }
    return false;
}

int coll_zk_config_decode(const char *json, size_t len,
                          int (*fn)(void *arg, const char *name, const char *value), void *arg,
                          const char **why)
{
    cfg_walk_t w = {fn, arg};
    return walk(json, len, cfg_key, &w, why);
}

char *coll_zk_config_encode(const char *const *names, const char *const *values, size_t n,
                            size_t *len)
{
    size_t cap = 64;
    for (size_t i = 0; i < n; i++) {
        cap += 6 * (strlen(names[i]) + strlen(values[i])) + 8;
    }
    char *out = malloc(cap);
    if (!out) {
        return NULL;
    }
    size_t o = 0;
    bool ok = put_raw(out, cap, &o, "{\"version\":1,\"config\":{");
    for (size_t i = 0; ok && i < n; i++) {
        ok = (i == 0 || put_raw(out, cap, &o, ",")) && put_str(out, cap, &o, names[i]) &&
             put_raw(out, cap, &o, ":") && put_str(out, cap, &o, values[i]);
    }
    ok = ok && put_raw(out, cap, &o, "}}");
    if (!ok) {
        free(out);
        return NULL;
    }
    *len = o;
    return out;
}

int coll_zk_pid_block_encode(const coll_zk_pid_block_t *b, char *out, size_t n)
{
    int w = snprintf(out, n,
                     "{\"version\":1,\"broker\":%" PRId32 ",\"block_start\":\"%" PRId64
                     "\",\"block_end\":\"%" PRId64 "\"}",
                     b->broker, b->start, b->end);
    return w < 0 || (size_t)w >= n ? -ENOSPC : w;
}

typedef struct pid_walk {
    coll_zk_pid_block_t *b;
    bool have_start, have_end;
} pid_walk_t;

/* Kafka writes the block bounds as strings of decimals ("1000"). */
static bool pid_bound(cur_t *c, int64_t *out)
{
    char s[24];
    if (!str(c, s, sizeof(s))) {
        return false;
    }
    cur_t n = {s, s + strlen(s), NULL};
    if (!num(&n, out) || n.p != n.end || *out < 0) {
        return fail(c, "bad producer id bound");
    }
    return true;
}

static bool pid_key(cur_t *c, const char *key, void *arg)
{
    pid_walk_t *w = arg;
    if (strcmp(key, "broker") == 0) {
        return state_int(c, &w->b->broker, -1);
    }
    if (strcmp(key, "block_start") == 0) {
        return w->have_start = pid_bound(c, &w->b->start);
    }
    if (strcmp(key, "block_end") == 0) {
        return w->have_end = pid_bound(c, &w->b->end);
    }
    return false;
}

int coll_zk_pid_block_decode(const char *json, size_t len, coll_zk_pid_block_t *b, const char **why)
{
    memset(b, 0, sizeof(*b));
    pid_walk_t w = {b, false, false};
    int rc = walk(json, len, pid_key, &w, why);
    if (rc != 0) {
        return rc;
    }
    if (!w.have_start || !w.have_end || b->end < b->start) {
        *why = "block_start/block_end missing or reversed";
        return -EINVAL;
    }
    return 0;
}
