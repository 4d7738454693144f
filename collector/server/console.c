/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The web console's JSON API and static page (see console.h).
 *
 * Everything runs on the loop thread and reads the state /metrics renders:
 * the server's counters, the cluster's topics and partitions, the logs'
 * offsets, the group coordinator's groups and the sink host's status.
 *
 * History: every COLL_CONSOLE_SAMPLE_MS the sampler takes the counters and
 * the group lags and appends one value to each series (a ring of
 * COLL_CONSOLE_HISTORY values) in a hash table keyed by a string: "S:..."
 * the server's rates, "T:topic" a topic's record rate, "G:group" a group's
 * total lag, "L:group\ttopic\tpartition" a partition's lag. A series that
 * missed ticks shows nulls there; one not updated for a whole ring is
 * dropped. A series holds the counter it derives rates from (prev_*).
 *
 * Producers: dispatch.c hands every decoded Produce request to
 * coll_console_note_produce(), which counts requests, record batch bytes
 * and records (from the batch headers) per client id, peer host and
 * principal (the TLS subject or SASL user, else User:ANONYMOUS), so
 * the view needs nothing from the produce handler. At most
 * MAX_PRODUCERS are kept; the least recently seen goes first.
 */
#include "server/console.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/topic_config.h"
#include "group/group.h"
#include "kafka/gen/ConsumerProtocolAssignment.h"
#include "kafka/gen/kafka_messages.h"
#include "server/server_int.h"
#include "sinks/sinks.h"
#include "tributary/kafka.h"
#include "tributary/kclient.h"
#include "tributary/prom.h"
#include "tributary/record.h"
#include "tributary/version.h"

#define NBUCKETS 1024
#define MAX_SERIES 20000
#define MAX_PRODUCERS 256
#define PRODUCER_RECENT_MS (5 * 60 * 1000)
#define RECORDS_DEFAULT_LIMIT 20
#define RECORDS_MAX_LIMIT 1000
#define RECORDS_DEFAULT_BYTES (64 * 1024)
#define RECORDS_MAX_BYTES (1 << 20) /* JSON escapes make a page up to 6x that */
#define READ_CHUNK (1 << 20)
#define MAX_DECOMPRESSED (64 << 20)
/* The API's share of the loop: at most BUSY_NS of every BUSY_WINDOW_NS go to
 * building pages (more gets 503 until the window ends), and no new page
 * while slow readers hold more than MAX_PENDING bytes of answers. */
#define BUSY_WINDOW_NS 1000000000ull
#define BUSY_NS 100000000ull
#define MAX_PENDING (64u << 20)

typedef struct series {
    struct series *next;
    char *key;
    uint64_t last_tick;
    double v[COLL_CONSOLE_HISTORY]; /* index tick % HISTORY */
    bool have[COLL_CONSOLE_HISTORY];
    uint64_t prev_a, prev_b; /* counters at the last tick (rates) */
    double rate_a, rate_b;   /* per second over the last interval */
    bool primed;
} series_t;

typedef struct producer {
    char client_id[128];
    char host[64];
    char last_peer[64];
    char principal[300]; /* User:ANONYMOUS, the certificate's subject or the SASL user */
    char listener[64];
    uint64_t requests, bytes, records;
    uint64_t prev_bytes, prev_records;
    double bytes_rate, records_rate;
    int64_t last_seen_ms;
    bool used;
} producer_t;

struct coll_console {
    coll_server_t *srv;
    uv_timer_t timer;
    uint64_t tick; /* ticks taken; the last one is tick - 1 */
    int64_t tick_wall_ms[COLL_CONSOLE_HISTORY];
    uint64_t last_mono_ms;
    double interval_s; /* of the last tick */
    series_t *buckets[NBUCKETS];
    size_t nseries;
    producer_t producers[MAX_PRODUCERS];
    uint64_t busy_ns;        /* loop time spent on /api/v1 in the current window */
    uint64_t busy_window_ns; /* when that window began (uv_hrtime) */
};

/* ---- JSON output ------------------------------------------------------------------------ */

static void jraw(trib_buf_t *b, const char *s)
{
    trib_buf_append(b, s, strlen(s));
}

static void jf(trib_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void jf(trib_buf_t *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n > 0) {
        trib_buf_append(b, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
    }
}

/* Length of the valid UTF-8 sequence at p (1..4), or 0. */
static size_t utf8_seq(const uint8_t *p, size_t n)
{
    uint8_t c = p[0];
    size_t len;
    uint32_t cp;
    if (c < 0x80) {
        return 1;
    } else if ((c & 0xe0) == 0xc0) {
        len = 2;
        cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
        len = 3;
        cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
        len = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (n < len) {
        return 0;
    }
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80) {
            return 0;
        }
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
        return 0;
    }
    return len;
}

static bool utf8_valid(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n;) {
        size_t k = utf8_seq(p + i, n - i);
        if (!k) {
            return false;
        }
        i += k;
    }
    return true;
}

/* A JSON string; bytes that are not UTF-8 become U+FFFD. */
static void jstrn(trib_buf_t *b, const void *vp, size_t n)
{
    const uint8_t *p = vp;
    trib_buf_put_u8(b, '"');
    size_t run = 0;
    for (size_t i = 0; i < n;) {
        uint8_t c = p[i];
        size_t k = utf8_seq(p + i, n - i);
        if (k == 1 && c >= 0x20 && c != '"' && c != '\\') {
            i++;
            run++;
            continue;
        }
        if (k > 1) {
            i += k;
            run += k;
            continue;
        }
        if (run) {
            trib_buf_append(b, p + i - run, run);
            run = 0;
        }
        if (k == 0) {
            jraw(b, "\\ufffd");
        } else if (c == '"') {
            jraw(b, "\\\"");
        } else if (c == '\\') {
            jraw(b, "\\\\");
        } else if (c == '\n') {
            jraw(b, "\\n");
        } else if (c == '\r') {
            jraw(b, "\\r");
        } else if (c == '\t') {
            jraw(b, "\\t");
        } else {
            /* A control byte: \u00XX written directly (a page may hold millions). */
            static const char hex[] = "0123456789abcdef";
            char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            trib_buf_append(b, u, sizeof(u));
        }
        i++;
    }
    if (run) {
        trib_buf_append(b, p + n - run, run);
    }
    trib_buf_put_u8(b, '"');
}

static void jstr(trib_buf_t *b, const char *s)
{
    if (!s) {
        jraw(b, "null");
    } else {
        jstrn(b, s, strlen(s));
    }
}

static void jbase64(trib_buf_t *b, const uint8_t *p, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    trib_buf_put_u8(b, '"');
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < n) {
            v |= (uint32_t)p[i + 1] << 8;
        }
        if (i + 2 < n) {
            v |= p[i + 2];
        }
        char q[4] = {tab[(v >> 18) & 63], tab[(v >> 12) & 63], i + 1 < n ? tab[(v >> 6) & 63] : '=',
                     i + 2 < n ? tab[v & 63] : '='};
        trib_buf_append(b, q, 4);
    }
    trib_buf_put_u8(b, '"');
}

/* "name": bytes as text when UTF-8, else base64; and "name_encoding". Null stays null. */
static void jbytes_field(trib_buf_t *b, const char *name, const uint8_t *p, int64_t len)
{
    jf(b, "\"%s\":", name);
    if (len < 0) {
        jf(b, "null,\"%s_encoding\":null", name);
    } else if (utf8_valid(p, (size_t)len)) {
        jstrn(b, p, (size_t)len);
        jf(b, ",\"%s_encoding\":\"utf8\"", name);
    } else {
        jbase64(b, p, (size_t)len);
        jf(b, ",\"%s_encoding\":\"base64\"", name);
    }
}

static void jdouble(trib_buf_t *b, double v)
{
    jf(b, "%.3f", v);
}

/* ---- series ------------------------------------------------------------------------------- */

static uint32_t fnv(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++) {
        h = (h ^ (uint8_t)*s) * 16777619u;
    }
    return h;
}

static series_t *series_find(coll_console_t *c, const char *key)
{
    for (series_t *x = c->buckets[fnv(key) % NBUCKETS]; x; x = x->next) {
        if (strcmp(x->key, key) == 0) {
            return x;
        }
    }
    return NULL;
}

static series_t *series_get(coll_console_t *c, const char *key)
{
    series_t *x = series_find(c, key);
    if (x || c->nseries >= MAX_SERIES) {
        return x;
    }
    x = calloc(1, sizeof(*x));
    if (!x || !(x->key = strdup(key))) {
        free(x);
        return NULL;
    }
    uint32_t h = fnv(key) % NBUCKETS;
    x->next = c->buckets[h];
    c->buckets[h] = x;
    c->nseries++;
    return x;
}

/* Records value v for the current tick (c->tick - 1). */
static void series_put(coll_console_t *c, series_t *x, double v)
{
    uint64_t t = c->tick - 1;
    if (x->last_tick + COLL_CONSOLE_HISTORY <= t || !x->primed) {
        memset(x->have, 0, sizeof(x->have));
    } else {
        for (uint64_t k = x->last_tick + 1; k < t; k++) {
            x->have[k % COLL_CONSOLE_HISTORY] = false;
        }
    }
    x->v[t % COLL_CONSOLE_HISTORY] = v;
    x->have[t % COLL_CONSOLE_HISTORY] = true;
    x->last_tick = t;
}

/*
 * A counter pair for a rate series: the rates over the last interval, the
 * first of them recorded in the ring. The first sample only primes it.
 */
static void series_counters(coll_console_t *c, const char *key, uint64_t a, uint64_t b)
{
    series_t *x = series_get(c, key);
    if (!x) {
        return;
    }
    if (x->primed && c->interval_s > 0 && x->last_tick + 1 == c->tick - 1) {
        x->rate_a = a >= x->prev_a ? (double)(a - x->prev_a) / c->interval_s : 0;
        x->rate_b = b >= x->prev_b ? (double)(b - x->prev_b) / c->interval_s : 0;
        series_put(c, x, x->rate_a);
    } else {
        x->rate_a = x->rate_b = 0;
        x->last_tick = c->tick - 1;
        memset(x->have, 0, sizeof(x->have));
    }
    x->primed = true;
    x->prev_a = a;
    x->prev_b = b;
}

static void series_value(coll_console_t *c, const char *key, double v)
{
    series_t *x = series_get(c, key);
    if (x) {
        series_put(c, x, v);
        x->primed = true;
    }
}

/* Drops series not updated for a whole ring. */
static void series_sweep(coll_console_t *c)
{
    for (size_t i = 0; i < NBUCKETS; i++) {
        series_t **pp = &c->buckets[i];
        while (*pp) {
            series_t *x = *pp;
            if (x->last_tick + COLL_CONSOLE_HISTORY < c->tick) {
                *pp = x->next;
                free(x->key);
                free(x);
                c->nseries--;
            } else {
                pp = &x->next;
            }
        }
    }
}

/* {"interval_ms":..,"end_ms":..,"values":[oldest .. newest, null where missing]} */
static void jhistory(coll_console_t *c, trib_buf_t *b, const series_t *x)
{
    uint64_t n = c->tick < COLL_CONSOLE_HISTORY ? c->tick : COLL_CONSOLE_HISTORY;
    jf(b, "{\"interval_ms\":%d,\"end_ms\":%" PRId64 ",\"values\":[", COLL_CONSOLE_SAMPLE_MS,
       c->tick ? c->tick_wall_ms[(c->tick - 1) % COLL_CONSOLE_HISTORY] : (int64_t)0);
    for (uint64_t k = 0; k < n; k++) {
        uint64_t t = c->tick - n + k;
        if (k) {
            trib_buf_put_u8(b, ',');
        }
        if (x && x->primed && t <= x->last_tick && x->last_tick - t < COLL_CONSOLE_HISTORY &&
            x->have[t % COLL_CONSOLE_HISTORY]) {
            jdouble(b, x->v[t % COLL_CONSOLE_HISTORY]);
        } else {
            jraw(b, "null");
        }
    }
    jraw(b, "]}");
}

/* ---- what the views compute ------------------------------------------------------------ */

static size_t all_topics(coll_server_t *s, coll_topic_t ***out)
{
    size_t n = coll_cluster_topic_count(s->cluster);
    *out = malloc((n ? n : 1) * sizeof(**out));
    if (!*out) {
        return 0;
    }
    coll_cluster_topics(s->cluster, *out);
    return n;
}

static int cmp_topic(const void *a, const void *b)
{
    return strcmp((*(coll_topic_t *const *)a)->name, (*(coll_topic_t *const *)b)->name);
}

typedef struct topic_sums {
    uint64_t records_in, bytes_in, records_out, bytes_out, size;
    int64_t end_offsets; /* sum of log end offsets (hosted partitions) */
} topic_sums_t;

static void topic_sum(const coll_topic_t *t, topic_sums_t *o)
{
    memset(o, 0, sizeof(*o));
    for (int32_t k = 0; k < t->npartitions; k++) {
        const coll_partition_t *p = t->partitions[k];
        coll_prt_t *prt = coll_prt(p);
        if (!p->log || !prt) {
            continue;
        }
        o->records_in += prt->records_in;
        o->bytes_in += prt->bytes_in;
        o->records_out += prt->records_out;
        o->bytes_out += prt->bytes_out;
        o->size += coll_log_size(p->log);
        o->end_offsets += coll_log_end_offset(p->log);
    }
}

/* The committed offset's end (the high watermark, as ListOffsets LATEST answers) and lag. */
static bool offset_lag(coll_server_t *s, const coll_goffset_t *o, int64_t *end, int64_t *lag)
{
    coll_topic_t *t = coll_cluster_topic(s->cluster, o->topic, strlen(o->topic));
    coll_partition_t *p = t ? coll_cluster_partition(t, o->partition) : NULL;
    if (!p || !p->log) {
        *end = -1;
        *lag = -1;
        return false;
    }
    *end = coll_log_high_watermark(p->log);
    *lag = o->offset < 0 ? -1 : (*end > o->offset ? *end - o->offset : 0);
    return true;
}

static int64_t group_total_lag(coll_server_t *s, const coll_group_t *g)
{
    int64_t sum = 0;
    for (size_t i = 0; i < g->noffsets; i++) {
        int64_t end, lag;
        if (offset_lag(s, &g->offsets[i], &end, &lag) && lag > 0) {
            sum += lag;
        }
    }
    return sum;
}

static size_t all_groups(coll_server_t *s, coll_group_t ***out)
{
    *out = NULL;
    if (!s->groups) {
        return 0;
    }
    size_t n = coll_groups_list(s->groups, NULL, 0);
    *out = malloc((n ? n : 1) * sizeof(**out));
    if (!*out) {
        return 0;
    }
    return coll_groups_list(s->groups, *out, n);
}

void coll_console_render_group_lag(coll_server_t *s, trib_buf_t *b)
{
    trib_prom_header(b, "tributary_group_lag_records", "gauge",
                     "Records in the partition after the consumer group's committed offset "
                     "(high watermark minus committed offset).");
    coll_group_t **groups;
    size_t ng = all_groups(s, &groups);
    trib_buf_t lb;
    trib_buf_init(&lb);
    for (size_t i = 0; i < ng; i++) {
        const coll_group_t *g = groups[i];
        for (size_t k = 0; k < g->noffsets; k++) {
            const coll_goffset_t *o = &g->offsets[k];
            int64_t end, lag;
            if (!offset_lag(s, o, &end, &lag) || lag < 0) {
                continue;
            }
            trib_buf_reset(&lb);
            jraw(&lb, "group=\"");
            trib_prom_label_escape(&lb, g->id, strlen(g->id));
            jraw(&lb, "\",topic=\"");
            trib_prom_label_escape(&lb, o->topic, strlen(o->topic));
            jf(&lb, "\",partition=\"%d\"", (int)o->partition);
            trib_buf_put_u8(&lb, 0);
            size_t len;
            const char *labels = (const char *)trib_buf_flatten(&lb, &len);
            if (labels) {
                trib_prom_sample_u64(b, "tributary_group_lag_records", labels, (uint64_t)lag);
            }
        }
    }
    trib_buf_fini(&lb);
    free(groups);
}

/* ---- the sampler --------------------------------------------------------------------------- */

static void sample(coll_console_t *c)
{
    coll_server_t *s = c->srv;
    uint64_t now = uv_now(s->loop);
    c->interval_s = c->tick ? (double)(now - c->last_mono_ms) / 1000.0 : 0;
    c->last_mono_ms = now;
    c->tick_wall_ms[c->tick % COLL_CONSOLE_HISTORY] = coll_server_wall_ms();
    c->tick++;
    const coll_metrics_t *m = &s->metrics;
    series_counters(c, "S:in", m->records_in, m->bytes_in);
    series_counters(c, "S:bytes_in", m->bytes_in, 0);
    series_counters(c, "S:out", m->records_out, m->bytes_out);
    series_counters(c, "S:bytes_out", m->bytes_out, 0);

    coll_topic_t **topics;
    size_t nt = all_topics(s, &topics);
    char key[1024];
    for (size_t i = 0; i < nt; i++) {
        topic_sums_t ts;
        topic_sum(topics[i], &ts);
        snprintf(key, sizeof(key), "T:%s", topics[i]->name);
        series_counters(c, key, ts.records_in, ts.bytes_in);
    }
    free(topics);

    coll_group_t **groups;
    size_t ng = all_groups(s, &groups);
    for (size_t i = 0; i < ng; i++) {
        const coll_group_t *g = groups[i];
        snprintf(key, sizeof(key), "G:%s", g->id);
        series_value(c, key, (double)group_total_lag(s, g));
        for (size_t k = 0; k < g->noffsets; k++) {
            int64_t end, lag;
            if (offset_lag(s, &g->offsets[k], &end, &lag) && lag >= 0) {
                snprintf(key, sizeof(key), "L:%s\t%s\t%d", g->id, g->offsets[k].topic,
                         (int)g->offsets[k].partition);
                series_value(c, key, (double)lag);
            }
        }
    }
    free(groups);

    for (size_t i = 0; i < MAX_PRODUCERS; i++) {
        producer_t *p = &c->producers[i];
        if (!p->used) {
            continue;
        }
        if (c->interval_s > 0) {
            p->bytes_rate = (double)(p->bytes - p->prev_bytes) / c->interval_s;
            p->records_rate = (double)(p->records - p->prev_records) / c->interval_s;
        }
        p->prev_bytes = p->bytes;
        p->prev_records = p->records;
    }
    series_sweep(c);
}

static void timer_cb(uv_timer_t *t)
{
    sample(t->data);
}

/* ---- producers ---------------------------------------------------------------------------- */

void coll_console_note_produce(coll_console_t *c, coll_req_t *r)
{
    if (!c || !r->body || !r->conn) {
        return;
    }
    const ProduceRequest *pr = r->body;
    uint64_t bytes = 0, records = 0;
    for (int32_t i = 0; i < pr->TopicData.count; i++) {
        const ProduceRequest_TopicProduceData *td = &pr->TopicData.items[i];
        for (int32_t k = 0; k < td->PartitionData.count; k++) {
            const trib_kbytes_t *rec = &td->PartitionData.items[k].Records;
            if (rec->len <= 0) {
                continue;
            }
            bytes += (uint64_t)rec->len;
            trib_batch_iter_t it;
            trib_batch_t bt;
            trib_batch_iter_init(&it, rec->ptr, (size_t)rec->len, TRIB_BATCH_SKIP_CRC);
            while (trib_batch_iter_next(&it, &bt) == 1) {
                records += bt.record_count > 0 ? (uint64_t)bt.record_count : 0;
            }
        }
    }
    char cid[128];
    trib_kstr_t k = r->hdr.client_id;
    snprintf(cid, sizeof(cid), "%.*s", k.len > 0 ? (int)k.len : 0, k.len > 0 ? k.ptr : "");
    /* The peer's host: "[v6]:port" or "v4:port" without the port. */
    char host[64];
    snprintf(host, sizeof(host), "%s", r->conn->peer);
    char *colon = strrchr(host, ':');
    if (colon && (host[0] != '[' || (colon > host && colon[-1] == ']'))) {
        *colon = '\0';
    }
    /* The entry of this client id and host; else a free one; else the least recently seen. */
    producer_t *slot = NULL, *spare = NULL;
    for (size_t i = 0; i < MAX_PRODUCERS && !slot; i++) {
        producer_t *p = &c->producers[i];
        if (!p->used) {
            if (!spare || spare->used) {
                spare = p;
            }
        } else if (strcmp(p->client_id, cid) == 0 && strcmp(p->host, host) == 0 &&
                   strcmp(p->principal, r->conn->principal) == 0) {
            slot = p;
        } else if (!spare || (spare->used && p->last_seen_ms < spare->last_seen_ms)) {
            spare = p;
        }
    }
    if (!slot) {
        slot = spare;
        memset(slot, 0, sizeof(*slot));
        slot->used = true;
        snprintf(slot->client_id, sizeof(slot->client_id), "%s", cid);
        snprintf(slot->host, sizeof(slot->host), "%s", host);
        snprintf(slot->principal, sizeof(slot->principal), "%s", r->conn->principal);
    }
    snprintf(slot->last_peer, sizeof(slot->last_peer), "%s", r->conn->peer);
    snprintf(slot->listener, sizeof(slot->listener), "%s",
             r->conn->lst && r->conn->lst->cfg.name ? r->conn->lst->cfg.name : "");
    slot->requests++;
    slot->bytes += bytes;
    slot->records += records;
    slot->last_seen_ms = coll_server_wall_ms();
}

/* ---- views --------------------------------------------------------------------------------- */

static void view_brokers(coll_server_t *s, trib_buf_t *b)
{
    size_t n = coll_cluster_broker_count(s->cluster);
    coll_broker_info_t *bi = calloc(n ? n : 1, sizeof(*bi));
    if (bi) {
        n = coll_cluster_brokers(s->cluster, bi, n);
    } else {
        n = 0;
    }
    jraw(b, "[");
    for (size_t i = 0; i < n; i++) {
        jf(b, "%s{\"id\":%d,\"host\":", i ? "," : "", (int)bi[i].id);
        jstr(b, bi[i].host);
        jf(b, ",\"port\":%d,\"rack\":", (int)bi[i].port);
        jstr(b, bi[i].rack);
        jraw(b, "}");
    }
    jraw(b, "]");
    free(bi);
}

static void topic_row(coll_console_t *c, trib_buf_t *b, const coll_topic_t *t)
{
    topic_sums_t ts;
    topic_sum(t, &ts);
    char key[300];
    snprintf(key, sizeof(key), "T:%s", t->name);
    series_t *x = series_find(c, key);
    jraw(b, "{\"name\":");
    jstr(b, t->name);
    jf(b,
       ",\"internal\":%s,\"partitions\":%d,\"replication_factor\":%d,\"size_bytes\":%" PRIu64
       ",\"records_in\":%" PRIu64 ",\"bytes_in\":%" PRIu64 ",\"records_in_per_sec\":",
       t->internal ? "true" : "false", (int)t->npartitions,
       t->npartitions > 0 ? (int)t->partitions[0]->nreplicas : 0, ts.size, ts.records_in,
       ts.bytes_in);
    jdouble(b, x ? x->rate_a : 0);
    jraw(b, ",\"bytes_in_per_sec\":");
    jdouble(b, x ? x->rate_b : 0);
    jraw(b, "}");
}

static int view_overview(coll_console_t *c, trib_buf_t *b)
{
    coll_server_t *s = c->srv;
    const coll_metrics_t *m = &s->metrics;
    jraw(b, "{\"version\":");
    jstr(b, TRIB_VERSION);
    jraw(b, ",\"cluster_id\":");
    jstr(b, coll_cluster_id(s->cluster));
    jf(b, ",\"node_id\":%d,\"controller\":%d,\"uptime_seconds\":%.3f,\"brokers\":",
       (int)coll_cluster_node_id(s->cluster), (int)coll_cluster_controller_id(s->cluster),
       (double)(coll_server_wall_ms() - m->start_ms) / 1000.0);
    view_brokers(s, b);
    size_t ngroups = s->groups ? coll_groups_list(s->groups, NULL, 0) : 0;
    jf(b,
       ",\"topics\":%zu,\"partitions\":%zu,\"groups\":%zu,\"connections\":%zu,"
       "\"totals\":{\"records_in\":%" PRIu64 ",\"bytes_in\":%" PRIu64 ",\"batches_in\":%" PRIu64
       ",\"records_out\":%" PRIu64 ",\"bytes_out\":%" PRIu64 "},\"rates\":{",
       coll_cluster_topic_count(s->cluster), coll_cluster_partition_count(s->cluster), ngroups,
       s->nconns, m->records_in, m->bytes_in, m->batches_in, m->records_out, m->bytes_out);
    series_t *in = series_find(c, "S:in"), *out = series_find(c, "S:out");
    jraw(b, "\"records_in_per_sec\":");
    jdouble(b, in ? in->rate_a : 0);
    jraw(b, ",\"bytes_in_per_sec\":");
    jdouble(b, in ? in->rate_b : 0);
    jraw(b, ",\"records_out_per_sec\":");
    jdouble(b, out ? out->rate_a : 0);
    jraw(b, ",\"bytes_out_per_sec\":");
    jdouble(b, out ? out->rate_b : 0);
    jraw(b, "},\"history\":{\"records_in_per_sec\":");
    jhistory(c, b, in);
    jraw(b, ",\"bytes_in_per_sec\":");
    jhistory(c, b, series_find(c, "S:bytes_in"));
    jraw(b, ",\"records_out_per_sec\":");
    jhistory(c, b, out);
    jraw(b, ",\"bytes_out_per_sec\":");
    jhistory(c, b, series_find(c, "S:bytes_out"));
    jraw(b, "},\"topic_list\":[");
    coll_topic_t **topics;
    size_t nt = all_topics(s, &topics);
    if (nt > 1) {
        qsort(topics, nt, sizeof(*topics), cmp_topic);
    }
    for (size_t i = 0; i < nt; i++) {
        if (i) {
            jraw(b, ",");
        }
        topic_row(c, b, topics[i]);
    }
    free(topics);
    jraw(b, "]}");
    return 200;
}

static int view_topics(coll_console_t *c, trib_buf_t *b)
{
    coll_topic_t **topics;
    size_t nt = all_topics(c->srv, &topics);
    if (nt > 1) {
        qsort(topics, nt, sizeof(*topics), cmp_topic);
    }
    jraw(b, "[");
    for (size_t i = 0; i < nt; i++) {
        if (i) {
            jraw(b, ",");
        }
        topic_row(c, b, topics[i]);
    }
    free(topics);
    jraw(b, "]");
    return 200;
}

static void jints(trib_buf_t *b, const int32_t *v, int32_t n)
{
    jraw(b, "[");
    for (int32_t i = 0; i < n; i++) {
        jf(b, "%s%d", i ? "," : "", (int)v[i]);
    }
    jraw(b, "]");
}

static int json_error(trib_buf_t *b, int code, const char *msg, const char *path)
{
    trib_buf_reset(b);
    jraw(b, "{\"error\":");
    jstr(b, msg);
    jraw(b, ",\"path\":");
    jstr(b, path);
    jraw(b, "}");
    return code;
}

static int view_topic(coll_console_t *c, trib_buf_t *b, const char *name, const char *path)
{
    coll_server_t *s = c->srv;
    coll_topic_t *t = coll_cluster_topic(s->cluster, name, strlen(name));
    if (!t) {
        return json_error(b, 404, "no such topic", path);
    }
    char id[23] = "";
    if (!trib_uuid_is_zero(&t->id)) {
        trib_uuid_format(&t->id, id);
    }
    topic_sums_t ts;
    topic_sum(t, &ts);
    char key[300];
    snprintf(key, sizeof(key), "T:%s", t->name);
    series_t *x = series_find(c, key);
    jraw(b, "{\"name\":");
    jstr(b, t->name);
    jraw(b, ",\"id\":");
    jstr(b, id[0] ? id : NULL);
    jf(b,
       ",\"internal\":%s,\"partition_count\":%d,\"replication_factor\":%d,\"size_bytes\":%" PRIu64
       ",\"records_in\":%" PRIu64 ",\"bytes_in\":%" PRIu64 ",\"records_out\":%" PRIu64
       ",\"bytes_out\":%" PRIu64 ",\"retention_ms\":%" PRId64 ",\"retention_bytes\":%" PRId64
       ",\"records_in_per_sec\":",
       t->internal ? "true" : "false", (int)t->npartitions,
       t->npartitions > 0 ? (int)t->partitions[0]->nreplicas : 0, ts.size, ts.records_in,
       ts.bytes_in, ts.records_out, ts.bytes_out, t->config.v[COLL_TCFG_RETENTION_MS].i,
       t->config.v[COLL_TCFG_RETENTION_BYTES].i);
    jdouble(b, x ? x->rate_a : 0);
    jraw(b, ",\"bytes_in_per_sec\":");
    jdouble(b, x ? x->rate_b : 0);
    jraw(b, ",\"history\":{\"records_in_per_sec\":");
    jhistory(c, b, x);
    jraw(b, "},\"configs\":[");
    for (int k = 0; k < COLL_TCFG_COUNT; k++) {
        char v[64];
        coll_tcfg_format(k, t->config.v[k], v, sizeof(v));
        int8_t src = coll_topic_config_source(s->cluster, t->config_mask, k);
        jf(b, "%s{\"name\":", k ? "," : "");
        jstr(b, coll_tcfg_defs[k].name);
        jraw(b, ",\"value\":");
        jstr(b, v);
        jf(b, ",\"source\":\"%s\"}",
           src == COLL_CONFIG_SOURCE_TOPIC           ? "topic"
           : src == COLL_CONFIG_SOURCE_STATIC_BROKER ? "broker"
                                                     : "default");
    }
    jraw(b, "],\"partitions\":[");
    for (int32_t k = 0; k < t->npartitions; k++) {
        const coll_partition_t *p = t->partitions[k];
        coll_prt_t *prt = coll_prt(p);
        jf(b, "%s{\"partition\":%d,\"leader\":%d,\"leader_epoch\":%d,\"replicas\":", k ? "," : "",
           (int)p->index, (int)p->leader, (int)p->leader_epoch);
        jints(b, p->replicas, p->nreplicas);
        jraw(b, ",\"isr\":");
        jints(b, p->isr, p->nisr);
        jf(b, ",\"hosted\":%s", p->log ? "true" : "false");
        if (p->log && prt) {
            jf(b,
               ",\"log_start_offset\":%" PRId64 ",\"log_end_offset\":%" PRId64
               ",\"high_watermark\":%" PRId64 ",\"size_bytes\":%" PRIu64
               ",\"segments\":%zu,\"records_in\":%" PRIu64 ",\"bytes_in\":%" PRIu64
               ",\"records_out\":%" PRIu64 ",\"bytes_out\":%" PRIu64 ",\"producers\":%zu",
               coll_log_start_offset(p->log), coll_log_end_offset(p->log),
               coll_log_high_watermark(p->log), coll_log_size(p->log),
               coll_log_segment_count(p->log), prt->records_in, prt->bytes_in, prt->records_out,
               prt->bytes_out, (size_t)prt->producers.count);
        }
        jraw(b, "}");
    }
    jraw(b, "]}");
    return 200;
}

/* ---- the record browser ------------------------------------------------------------------ */

/*
 * The browser reads the partition twice so that its memory stays within
 * max_bytes however large the records are: the first pass notes only each
 * record's offset and size (the last `limit` of them, in a ring) to find
 * the newest records whose bytes fit; the second copies just those.
 */
typedef struct rec {
    int64_t offset, timestamp;
    uint8_t *key, *value, *headers; /* copies (malloc); value cut to vcopy bytes */
    int32_t key_len, value_len, header_count;
    size_t headers_len, vcopy;
} rec_t;

typedef struct rsize {
    int64_t offset;
    size_t size; /* key + value + headers */
} rsize_t;

typedef struct scan_ctx {
    /* pass 1 */
    rsize_t *ring;
    size_t limit, count, head;
    /* pass 2 */
    int64_t first; /* the oldest offset taken */
    rec_t *out;
    size_t nout, cap;
    size_t cut_to; /* > 0: the one record taken is cut to this many key + value bytes */
    int err;
} scan_ctx_t;

static size_t rec_size(const trib_record_t *r)
{
    return (size_t)(r->key.len > 0 ? r->key.len : 0) +
           (size_t)(r->value.len > 0 ? r->value.len : 0) + r->headers_len;
}

static void rec_free(rec_t *r)
{
    free(r->key);
    free(r->value);
    free(r->headers);
    memset(r, 0, sizeof(*r));
}

static uint8_t *dup_bytes(const uint8_t *p, int64_t len)
{
    if (len < 0) {
        return NULL;
    }
    uint8_t *d = malloc(len > 0 ? (size_t)len : 1);
    if (d && len > 0) {
        memcpy(d, p, (size_t)len);
    }
    return d;
}

/* Query parameter `name` as a non-negative integer: 1 found, 0 absent, -1 malformed. */
static int query_u64(const char *query, const char *name, uint64_t *out)
{
    size_t nl = strlen(name);
    for (const char *p = query; p && *p;) {
        const char *end = strchr(p, '&');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len > nl && strncmp(p, name, nl) == 0 && p[nl] == '=') {
            const char *v = p + nl + 1;
            size_t vl = len - nl - 1;
            if (vl == 0 || vl > 18) {
                return -1;
            }
            uint64_t x = 0;
            for (size_t i = 0; i < vl; i++) {
                if (v[i] < '0' || v[i] > '9') {
                    return -1;
                }
                x = x * 10 + (uint64_t)(v[i] - '0');
            }
            *out = x;
            return 1;
        }
        p = end ? end + 1 : NULL;
    }
    return 0;
}

static void pass_sizes(scan_ctx_t *x, const trib_record_t *r)
{
    rsize_t *slot = &x->ring[x->count < x->limit ? x->count : x->head];
    if (x->count == x->limit) {
        x->head = (x->head + 1) % x->limit;
    } else {
        x->count++;
    }
    slot->offset = r->offset;
    slot->size = rec_size(r);
}

static void pass_copy(scan_ctx_t *x, const trib_record_t *r)
{
    if (r->offset < x->first || x->nout >= x->cap) {
        return;
    }
    rec_t *o = &x->out[x->nout++];
    o->offset = r->offset;
    o->timestamp = r->timestamp;
    o->key_len = r->key.len;
    o->value_len = r->value.len;
    size_t klen = r->key.len > 0 ? (size_t)r->key.len : 0;
    size_t vlen = r->value.len > 0 ? (size_t)r->value.len : 0;
    if (x->cut_to) {
        klen = klen < x->cut_to ? klen : x->cut_to;
        size_t room = x->cut_to - klen;
        if (vlen > room) {
            vlen = room;
            /* Cut at a character boundary when the value is text. */
            while (vlen > 0 && (r->value.ptr[vlen] & 0xc0) == 0x80) {
                vlen--;
            }
        }
    } else {
        o->header_count = r->header_count;
        o->headers_len = r->headers_len;
        o->headers = dup_bytes(r->headers, (int64_t)r->headers_len);
        if (!o->headers) {
            x->err = -ENOMEM;
        }
    }
    o->vcopy = vlen;
    if (r->key.len >= 0 && !(o->key = dup_bytes(r->key.ptr, (int64_t)klen))) {
        x->err = -ENOMEM;
    }
    if (r->value.len >= 0 && !(o->value = dup_bytes(r->value.ptr, (int64_t)vlen))) {
        x->err = -ENOMEM;
    }
    if (x->cut_to) {
        o->key_len = r->key.len >= 0 ? (int32_t)klen : -1;
    }
}

/* Calls fn for each record in [from, hw). 0 or a negative error. */
static int scan_records(coll_log_t *log, int64_t from, int64_t hw,
                        void (*fn)(scan_ctx_t *x, const trib_record_t *r), scan_ctx_t *x)
{
    int64_t off = from;
    for (int rounds = 0; off < hw && rounds < 100000 && !x->err; rounds++) {
        coll_read_t rd;
        int rc = coll_log_read(log, off, READ_CHUNK, hw, 0, &rd);
        if (rc == -ERANGE && off < coll_log_start_offset(log)) {
            off = coll_log_start_offset(log); /* retention moved the start meanwhile */
            continue;
        }
        if (rc != 0 || rd.len == 0) {
            coll_read_release(&rd);
            return rc;
        }
        uint8_t *buf = malloc(rd.len);
        ssize_t got = buf ? coll_read_copy(&rd, 0, buf, rd.len) : -ENOMEM;
        int64_t next = rd.next_offset;
        coll_read_release(&rd);
        if (got <= 0) {
            free(buf);
            return got < 0 ? (int)got : -EIO;
        }
        trib_batch_iter_t it;
        trib_batch_t bt;
        trib_batch_iter_init(&it, buf, (size_t)got, TRIB_BATCH_SKIP_CRC);
        while (!x->err && trib_batch_iter_next(&it, &bt) == 1) {
            if (trib_batch_is_control(&bt) || trib_batch_last_offset(&bt) < from) {
                continue;
            }
            trib_record_iter_t ri;
            trib_record_t r;
            trib_record_iter_init(&ri, &bt, NULL, MAX_DECOMPRESSED);
            int irc;
            while ((irc = trib_record_iter_next(&ri, &r)) == 1) {
                if (r.offset >= from && r.offset < hw) {
                    fn(x, &r);
                }
            }
            if (irc < 0) {
                x->err = irc;
            }
            trib_record_iter_fini(&ri);
        }
        free(buf);
        if (next <= off) {
            break;
        }
        off = next;
    }
    return x->err;
}

static int view_records(coll_console_t *c, trib_buf_t *b, const char *name, const char *part,
                        const char *query, const char *path)
{
    coll_server_t *s = c->srv;
    coll_topic_t *t = coll_cluster_topic(s->cluster, name, strlen(name));
    char *endp;
    errno = 0;
    long pi = strtol(part, &endp, 10);
    if (!t || !*part || *endp || errno || pi < 0 || pi >= t->npartitions) {
        return json_error(b, 404, "no such topic or partition", path);
    }
    coll_partition_t *p = coll_cluster_partition(t, (int32_t)pi);
    if (!p || !p->log) {
        return json_error(b, 404, "partition not hosted on this node", path);
    }
    uint64_t limit = RECORDS_DEFAULT_LIMIT, max_bytes = RECORDS_DEFAULT_BYTES;
    int q1 = query_u64(query, "limit", &limit), q2 = query_u64(query, "max_bytes", &max_bytes);
    if (q1 < 0 || q2 < 0 || limit > RECORDS_MAX_LIMIT || max_bytes > RECORDS_MAX_BYTES) {
        char msg[160];
        snprintf(msg, sizeof(msg),
                 "limit must be 0..%d and max_bytes 0..%d (integers; defaults %d and %d)",
                 RECORDS_MAX_LIMIT, RECORDS_MAX_BYTES, RECORDS_DEFAULT_LIMIT,
                 RECORDS_DEFAULT_BYTES);
        return json_error(b, 400, msg, path);
    }
    coll_log_t *log = p->log;
    int64_t start = coll_log_start_offset(log);
    int64_t hw = coll_log_high_watermark(log);
    int64_t from = hw - (int64_t)limit > start ? hw - (int64_t)limit : start;
    scan_ctx_t x;
    memset(&x, 0, sizeof(x));
    x.limit = limit;
    x.ring = calloc(limit ? limit : 1, sizeof(*x.ring));
    if (!x.ring) {
        return json_error(b, 503, "out of memory", path);
    }
    int err = limit ? scan_records(log, from, hw, pass_sizes, &x) : 0;
    /* Newest first while the bytes fit; the newest always shows, cut if it must be. */
    size_t take = 0, used = 0;
    for (size_t k = 0; !err && k < x.count; k++) {
        const rsize_t *r = &x.ring[(x.head + x.count - 1 - k) % x.count];
        if (used + r->size > max_bytes) {
            if (take == 0 && max_bytes > 0) {
                take = 1;
                x.cut_to = max_bytes;
            }
            break;
        }
        used += r->size;
        take++;
    }
    if (!err && take > 0) {
        x.first = x.ring[(x.head + x.count - take) % x.count].offset;
        x.cap = take;
        x.out = calloc(take, sizeof(*x.out));
        err = x.out ? scan_records(log, x.first, hw, pass_copy, &x) : -ENOMEM;
    }
    size_t omitted = x.count - take;
    free(x.ring);
    if (err) {
        for (size_t i = 0; i < x.nout; i++) {
            rec_free(&x.out[i]);
        }
        free(x.out);
        char msg[200];
        snprintf(msg, sizeof(msg), "cannot read the partition: %s", trib_strerror(err));
        return json_error(b, 500, msg, path);
    }
    jraw(b, "{\"topic\":");
    jstr(b, t->name);
    jf(b,
       ",\"partition\":%d,\"log_start_offset\":%" PRId64 ",\"high_watermark\":%" PRId64
       ",\"limit\":%" PRIu64 ",\"max_bytes\":%" PRIu64 ",\"omitted\":%zu,\"records\":[",
       (int)p->index, start, hw, limit, max_bytes, omitted);
    for (size_t k = 0; k < x.nout; k++) {
        const rec_t *r = &x.out[k];
        jf(b, "%s{\"offset\":%" PRId64 ",\"timestamp\":%" PRId64 ",", k ? "," : "", r->offset,
           r->timestamp);
        jbytes_field(b, "key", r->key, r->key_len);
        jraw(b, ",");
        jbytes_field(b, "value", r->value, r->value_len < 0 ? -1 : (int64_t)r->vcopy);
        jf(b, ",\"value_size\":%d,\"truncated\":%s,\"headers\":[", (int)r->value_len,
           x.cut_to ? "true" : "false");
        trib_record_t fake;
        memset(&fake, 0, sizeof(fake));
        fake.header_count = r->header_count;
        fake.headers = r->headers;
        fake.headers_len = r->headers_len;
        trib_record_header_iter_t hi;
        trib_record_header_t h;
        trib_record_header_iter_init(&hi, &fake);
        for (int i = 0; r->headers && trib_record_header_iter_next(&hi, &h) == 1; i++) {
            jf(b, "%s{", i ? "," : "");
            jbytes_field(b, "key", h.key.ptr, h.key.len);
            jraw(b, ",");
            jbytes_field(b, "value", h.value.ptr, h.value.len);
            jraw(b, "}");
        }
        jraw(b, "]}");
        rec_free(&x.out[k]);
    }
    jraw(b, "]}");
    free(x.out);
    return 200;
}

/* ---- groups and sinks ----------------------------------------------------------------------- */

typedef struct sink_out {
    trib_buf_t *b;
    const char *only_group; /* NULL: all */
    size_t n;
} sink_out_t;

static void sink_json(void *arg, const coll_sink_status_t *st)
{
    sink_out_t *o = arg;
    if (o->only_group && strcmp(o->only_group, st->group) != 0) {
        return;
    }
    trib_buf_t *b = o->b;
    if (o->n++) {
        jraw(b, ",");
    }
    jraw(b, "{\"name\":");
    jstr(b, st->name);
    jraw(b, ",\"type\":");
    jstr(b, st->type);
    jraw(b, ",\"group\":");
    jstr(b, st->group);
    jraw(b, ",\"dead_letter_topic\":");
    jstr(b, st->dead_letter_topic);
    jf(b,
       ",\"records_delivered\":%" PRIu64 ",\"records_dead_lettered\":%" PRIu64
       ",\"batches_retried\":%" PRIu64 ",\"records_lost_to_retention\":%" PRIu64
       ",\"up\":%s,\"error_class\":",
       st->delivered, st->dead_lettered, st->retried, st->lost_to_retention,
       st->up ? "true" : "false");
    jstr(b, st->error_class);
    jraw(b, ",\"last_error\":");
    jstr(b, st->last_error && *st->last_error ? st->last_error : NULL);
    jf(b, ",\"last_error_ms\":%" PRId64 "}", st->last_error_ms);
}

static int view_sinks(coll_console_t *c, trib_buf_t *b)
{
    sink_out_t o = {b, NULL, 0};
    jraw(b, "[");
    coll_sinks_status(c->srv->console_sinks, sink_json, &o);
    jraw(b, "]");
    return 200;
}

static void group_head(trib_buf_t *b, const coll_group_t *g)
{
    jraw(b, "{\"group\":");
    jstr(b, g->id);
    jraw(b, ",\"state\":");
    jstr(b, coll_group_state_name(g->state));
    jraw(b, ",\"protocol_type\":");
    jstr(b, g->protocol_type);
    jraw(b, ",\"protocol\":");
    jstr(b, g->protocol);
    jf(b, ",\"members\":%zu,\"committed_offsets\":%zu", g->nmembers, g->noffsets);
}

static int view_groups(coll_console_t *c, trib_buf_t *b)
{
    coll_group_t **groups;
    size_t ng = all_groups(c->srv, &groups);
    jraw(b, "[");
    for (size_t i = 0; i < ng; i++) {
        if (i) {
            jraw(b, ",");
        }
        group_head(b, groups[i]);
        jf(b, ",\"total_lag\":%" PRId64 "}", group_total_lag(c->srv, groups[i]));
    }
    free(groups);
    jraw(b, "]");
    return 200;
}

/* The member a consumer-protocol assignment gives topic/partition, or NULL. */
static const coll_gmember_t *assigned_to(const coll_group_t *g, const char *topic, int32_t part,
                                         trib_arena_t *arena)
{
    if (!g->protocol_type || strcmp(g->protocol_type, "consumer") != 0) {
        return NULL;
    }
    for (const coll_gmember_t *m = g->members; m; m = m->next) {
        if (!m->assignment || m->assignment_len < 2) {
            continue;
        }
        trib_slice_t s = trib_slice_make(m->assignment, (size_t)m->assignment_len);
        int16_t ver = trib_slice_i16(&s);
        ConsumerProtocolAssignment a;
        ConsumerProtocolAssignment_init(&a);
        if (ver < 0 || ConsumerProtocolAssignment_decode(&a, &s, ver > 3 ? 3 : ver, arena) != 0) {
            continue;
        }
        for (int32_t i = 0; i < a.AssignedPartitions.count; i++) {
            const ConsumerProtocolAssignment_TopicPartition *tp = &a.AssignedPartitions.items[i];
            if ((size_t)tp->Topic.len != strlen(topic) ||
                memcmp(tp->Topic.ptr, topic, (size_t)tp->Topic.len) != 0) {
                continue;
            }
            for (int32_t k = 0; k < tp->Partitions.count; k++) {
                if (tp->Partitions.items[k] == part) {
                    return m;
                }
            }
        }
    }
    return NULL;
}

static void member_assignment(trib_buf_t *b, const coll_group_t *g, const coll_gmember_t *m,
                              trib_arena_t *arena)
{
    jraw(b, "[");
    if (g->protocol_type && strcmp(g->protocol_type, "consumer") == 0 && m->assignment &&
        m->assignment_len >= 2) {
        trib_slice_t s = trib_slice_make(m->assignment, (size_t)m->assignment_len);
        int16_t ver = trib_slice_i16(&s);
        ConsumerProtocolAssignment a;
        ConsumerProtocolAssignment_init(&a);
        if (ver >= 0 && ConsumerProtocolAssignment_decode(&a, &s, ver > 3 ? 3 : ver, arena) == 0) {
            for (int32_t i = 0; i < a.AssignedPartitions.count; i++) {
                const ConsumerProtocolAssignment_TopicPartition *tp =
                    &a.AssignedPartitions.items[i];
                jraw(b, i ? ",{\"topic\":" : "{\"topic\":");
                jstrn(b, tp->Topic.ptr, tp->Topic.len > 0 ? (size_t)tp->Topic.len : 0);
                jraw(b, ",\"partitions\":");
                jints(b, tp->Partitions.items, tp->Partitions.count);
                jraw(b, "}");
            }
        }
    }
    jraw(b, "]");
}

static int cmp_offset(const void *a, const void *b)
{
    const coll_goffset_t *x = *(const coll_goffset_t *const *)a;
    const coll_goffset_t *y = *(const coll_goffset_t *const *)b;
    int c = strcmp(x->topic, y->topic);
    return c ? c : (x->partition > y->partition) - (x->partition < y->partition);
}

static int view_group(coll_console_t *c, trib_buf_t *b, const char *name, const char *path)
{
    coll_server_t *s = c->srv;
    coll_group_t *g = s->groups ? coll_groups_find(s->groups, name, strlen(name)) : NULL;
    if (!g) {
        return json_error(b, 404, "no such group", path);
    }
    trib_arena_t arena;
    trib_arena_init(&arena);
    group_head(b, g);
    jf(b, ",\"generation\":%d,\"leader\":", (int)g->generation);
    jstr(b, g->leader);
    jf(b, ",\"total_lag\":%" PRId64 ",\"lag_history\":", group_total_lag(s, g));
    char key[1024];
    snprintf(key, sizeof(key), "G:%s", g->id);
    jhistory(c, b, series_find(c, key));
    jraw(b, ",\"member_list\":[");
    size_t i = 0;
    for (const coll_gmember_t *m = g->members; m; m = m->next, i++) {
        jraw(b, i ? ",{\"member_id\":" : "{\"member_id\":");
        jstr(b, m->id);
        jraw(b, ",\"client_id\":");
        jstr(b, m->client_id);
        jraw(b, ",\"client_host\":");
        jstr(b, m->client_host);
        jraw(b, ",\"instance_id\":");
        jstr(b, m->instance_id);
        jf(b, ",\"internal\":%s,\"assignment\":", m->internal ? "true" : "false");
        member_assignment(b, g, m, &arena);
        jraw(b, "}");
    }
    jraw(b, "],\"offsets\":[");
    const coll_goffset_t **sorted = malloc((g->noffsets ? g->noffsets : 1) * sizeof(*sorted));
    size_t no = sorted ? g->noffsets : 0;
    for (size_t k = 0; k < no; k++) {
        sorted[k] = &g->offsets[k];
    }
    if (no > 1) {
        qsort(sorted, no, sizeof(*sorted), cmp_offset);
    }
    for (size_t k = 0; k < no; k++) {
        const coll_goffset_t *o = sorted[k];
        int64_t end, lag;
        offset_lag(s, o, &end, &lag);
        jraw(b, k ? ",{\"topic\":" : "{\"topic\":");
        jstr(b, o->topic);
        jf(b, ",\"partition\":%d,\"committed_offset\":%" PRId64, (int)o->partition, o->offset);
        if (end >= 0) {
            jf(b, ",\"end_offset\":%" PRId64, end);
        } else {
            jraw(b, ",\"end_offset\":null");
        }
        if (lag >= 0) {
            jf(b, ",\"lag\":%" PRId64, lag);
        } else {
            jraw(b, ",\"lag\":null");
        }
        const coll_gmember_t *m = assigned_to(g, o->topic, o->partition, &arena);
        jraw(b, ",\"member_id\":");
        jstr(b, m ? m->id : NULL);
        jraw(b, ",\"client_id\":");
        jstr(b, m ? m->client_id : NULL);
        jraw(b, ",\"lag_history\":");
        snprintf(key, sizeof(key), "L:%s\t%s\t%d", g->id, o->topic, (int)o->partition);
        jhistory(c, b, series_find(c, key));
        jraw(b, "}");
    }
    free(sorted);
    jraw(b, "],\"sinks\":[");
    sink_out_t so = {b, g->id, 0};
    coll_sinks_status(s->console_sinks, sink_json, &so);
    jraw(b, "]}");
    trib_arena_fini(&arena);
    return 200;
}

static int view_producers(coll_console_t *c, trib_buf_t *b)
{
    int64_t now = coll_server_wall_ms();
    jraw(b, "[");
    size_t n = 0;
    for (size_t i = 0; i < MAX_PRODUCERS; i++) {
        const producer_t *p = &c->producers[i];
        if (!p->used || now - p->last_seen_ms > PRODUCER_RECENT_MS) {
            continue;
        }
        jraw(b, n++ ? ",{\"client_id\":" : "{\"client_id\":");
        jstr(b, p->client_id);
        jraw(b, ",\"host\":");
        jstr(b, p->host);
        jraw(b, ",\"address\":");
        jstr(b, p->last_peer);
        jraw(b, ",\"principal\":");
        jstr(b, p->principal);
        jraw(b, ",\"listener\":");
        jstr(b, p->listener);
        jf(b,
           ",\"requests\":%" PRIu64 ",\"records\":%" PRIu64 ",\"bytes\":%" PRIu64
           ",\"last_seen_ms\":%" PRId64 ",\"records_per_sec\":",
           p->requests, p->records, p->bytes, p->last_seen_ms);
        jdouble(b, p->records_rate);
        jraw(b, ",\"bytes_per_sec\":");
        jdouble(b, p->bytes_rate);
        jraw(b, "}");
    }
    jraw(b, "]");
    return 200;
}

/* ---- routing -------------------------------------------------------------------------------- */

static const char *asset_type(const char *name)
{
    const char *dot = strrchr(name, '.');
    if (dot && strcmp(dot, ".html") == 0) {
        return "text/html; charset=utf-8";
    }
    if (dot && strcmp(dot, ".js") == 0) {
        return "text/javascript; charset=utf-8";
    }
    if (dot && strcmp(dot, ".css") == 0) {
        return "text/css; charset=utf-8";
    }
    if (dot && strcmp(dot, ".svg") == 0) {
        return "image/svg+xml";
    }
    return "application/octet-stream";
}

/* Decodes %XX in place; false for a malformed escape or a NUL. */
static bool url_decode(char *s)
{
    char *w = s;
    for (char *r = s; *r; r++) {
        if (*r == '%') {
            int hi, lo;
            char h[3] = {r[1], r[1] ? r[2] : 0, 0};
            if (!h[0] || !h[1] || sscanf(h, "%1x%1x", &hi, &lo) != 2) {
                return false;
            }
            if (hi == 0 && lo == 0) {
                return false;
            }
            *w++ = (char)(hi * 16 + lo);
            r += 2;
        } else {
            *w++ = *r;
        }
    }
    *w = '\0';
    return true;
}

static int route(void *arg, const char *method, const char *target, trib_buf_t *body,
                 const char **ctype)
{
    coll_console_t *c = arg;
    bool ui = strcmp(target, "/ui") == 0 || strncmp(target, "/ui/", 4) == 0 ||
              strncmp(target, "/ui?", 4) == 0;
    bool api = strcmp(target, "/api") == 0 || strncmp(target, "/api/", 5) == 0;
    if (!ui && !api) {
        return 0;
    }
    *ctype = "application/json";
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        return json_error(body, 405, "method not allowed: the console is read-only (GET only)",
                          target);
    }
    char path[1024];
    snprintf(path, sizeof(path), "%s", target);
    char *query = strchr(path, '?');
    if (query) {
        *query++ = '\0';
    }
    if (ui) {
        const char *name = path + 3;
        if (*name == '/') {
            name++;
        }
        if (!*name) {
            name = "index.html";
        }
        for (size_t i = 0; i < coll_console_asset_count; i++) {
            if (strcmp(coll_console_assets[i].name, name) == 0) {
                *ctype = asset_type(name);
                trib_buf_append(body, coll_console_assets[i].data, coll_console_assets[i].len);
                return 200;
            }
        }
        return json_error(body, 404, "no such file in the console", target);
    }
    if (!url_decode(path)) {
        return json_error(body, 400, "malformed percent-encoding", target);
    }
    const char *rest = strncmp(path, "/api/v1/", 8) == 0 ? path + 8 : NULL;
    if (!rest) {
        return json_error(body, 404, "not found: the API is under /api/v1/", target);
    }
    /* Split rest into at most 5 segments. */
    char buf[1024];
    snprintf(buf, sizeof(buf), "%s", rest);
    char *seg[6] = {0};
    int nseg = 0;
    for (char *p = buf; nseg < 6;) {
        seg[nseg++] = p;
        char *sl = strchr(p, '/');
        if (!sl) {
            break;
        }
        *sl = '\0';
        p = sl + 1;
    }
    /* A trailing slash leaves an empty last segment: drop it. */
    if (nseg > 1 && !*seg[nseg - 1]) {
        nseg--;
    }
    for (int i = 0; i < nseg; i++) {
        if (!*seg[i] && !(nseg == 1)) {
            return json_error(body, 404, "not found", target);
        }
    }
    uint64_t t0 = uv_hrtime();
    if (t0 - c->busy_window_ns >= BUSY_WINDOW_NS) {
        c->busy_window_ns = t0;
        c->busy_ns = 0;
    }
    if (c->busy_ns >= BUSY_NS) {
        return json_error(body, 503,
                          "busy: the API keeps to a tenth of the collector's time; retry in a "
                          "second",
                          target);
    }
    if (trib_http_pending_bytes(&c->srv->http) > MAX_PENDING) {
        return json_error(body, 503, "busy: earlier answers are still being read; retry later",
                          target);
    }
    int code = 0;
    if (nseg == 1 && strcmp(seg[0], "overview") == 0) {
        code = view_overview(c, body);
    } else if (nseg == 1 && strcmp(seg[0], "topics") == 0) {
        code = view_topics(c, body);
    } else if (nseg == 2 && strcmp(seg[0], "topics") == 0) {
        code = view_topic(c, body, seg[1], target);
    } else if (nseg == 5 && strcmp(seg[0], "topics") == 0 && strcmp(seg[2], "partitions") == 0 &&
               strcmp(seg[4], "records") == 0) {
        code = view_records(c, body, seg[1], seg[3], query, target);
    } else if (nseg == 1 && strcmp(seg[0], "groups") == 0) {
        code = view_groups(c, body);
    } else if (nseg == 2 && strcmp(seg[0], "groups") == 0) {
        code = view_group(c, body, seg[1], target);
    } else if (nseg == 1 && strcmp(seg[0], "sinks") == 0) {
        code = view_sinks(c, body);
    } else if (nseg == 1 && strcmp(seg[0], "producers") == 0) {
        code = view_producers(c, body);
    } else {
        code = json_error(body, 404, "not found", target);
    }
    c->busy_ns += uv_hrtime() - t0;
    if (trib_buf_error(body)) {
        trib_buf_reset(body);
        return json_error(body, 503, "out of memory", target);
    }
    return code;
}

/* ---- lifecycle ------------------------------------------------------------------------------ */

int coll_console_start(coll_server_t *s)
{
    coll_console_t *c = calloc(1, sizeof(*c));
    if (!c) {
        return -ENOMEM;
    }
    c->srv = s;
    uv_timer_init(s->loop, &c->timer);
    c->timer.data = c;
    s->console = c;
    sample(c);
    uv_timer_start(&c->timer, timer_cb, COLL_CONSOLE_SAMPLE_MS, COLL_CONSOLE_SAMPLE_MS);
    uv_unref((uv_handle_t *)&c->timer);
    trib_http_set_route(&s->http, route, c);
    return 0;
}

uv_handle_t *coll_console_timer(coll_console_t *c)
{
    trib_http_set_route(&c->srv->http, NULL, NULL);
    uv_timer_stop(&c->timer);
    return (uv_handle_t *)&c->timer;
}

void coll_console_free(coll_console_t *c)
{
    if (!c) {
        return;
    }
    for (size_t i = 0; i < NBUCKETS; i++) {
        while (c->buckets[i]) {
            series_t *x = c->buckets[i];
            c->buckets[i] = x->next;
            free(x->key);
            free(x);
        }
    }
    free(c);
}

void coll_server_set_console_sinks(coll_server_t *s, struct coll_sinks *sinks)
{
    s->console_sinks = sinks;
}
