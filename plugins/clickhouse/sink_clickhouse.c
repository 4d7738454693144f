/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The `clickhouse` sink: each batch is one HTTP POST of
 *
 *   INSERT INTO <database>.<table> FORMAT JSONEachRow
 *   {"topic":"web","partition":0,"offset":42,"timestamp":1700000000000,
 *    "key":"host1","headers":"{\"k\":\"v\"}","value":"{\"message\":...}"}
 *   ...
 *
 * to ClickHouse's HTTP interface (one kept-alive connection per instance).
 * The table, unless it exists, is created as
 *
 *   topic String, partition Int32, offset Int64, timestamp Int64,
 *   key Nullable(String), headers String, value Nullable(String)
 *   ENGINE = ReplacingMergeTree() ORDER BY (topic, partition, offset)
 *
 * so rows the host delivers again (a retry, a replay after a crash) collapse
 * into one at merge time; read with FINAL (or GROUP BY the key) to see each
 * (topic, partition, offset) exactly once before the merge. The value is
 * stored as its JSON text (query it with the JSONExtract / visitParam
 * functions); this works from ClickHouse 18.16 (Debian 12) on. An INSERT
 * returns once the data is written to the table's parts: that is durable.
 *
 * Failures: transport errors, 5xx, 408 and 429 are RETRY, unless the body
 * is a ClickHouse exception about the data (a parse or type error): those,
 * and other 4xx, are REJECT (the host splits the batch to find the row).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sink_curl.h"
#include "sinkutil.h"
#include "tributary/log.h"

typedef struct sink_ch_opts {
    const char *url;
    const char *database;
    const char *table;
    const char *user;
    const char *password;
    bool create_table;
    int64_t timeout;
    int64_t connect_timeout;
} sink_ch_opts_t;

static const trib_config_option_t sink_ch_options[] = {
    {TRIB_CONFIG_FIELD(sink_ch_opts_t, url, STRING), .def = "http://127.0.0.1:8123",
     .desc = "ClickHouse HTTP interface"},
    {TRIB_CONFIG_FIELD(sink_ch_opts_t, database, STRING), .def = "default", .min = "1",
     .max = "64"},
    {TRIB_CONFIG_FIELD(sink_ch_opts_t, table, STRING), .def = "events", .min = "1", .max = "64"},
    {TRIB_CONFIG_FIELD(sink_ch_opts_t, user, STRING), .desc = "basic auth user (none: default)"},
    {TRIB_CONFIG_FIELD(sink_ch_opts_t, password, STRING), .flags = TRIB_CONFIG_SECRET},
    {TRIB_CONFIG_FIELD(sink_ch_opts_t, create_table, BOOL), .def = "true",
     .desc = "create the ReplacingMergeTree table when it does not exist"},
    {TRIB_CONFIG_FIELD(sink_ch_opts_t, timeout, DURATION), .def = "60s", .min = "1s",
     .desc = "how long one INSERT may take"},
    {TRIB_CONFIG_FIELD(sink_ch_opts_t, connect_timeout, DURATION), .def = "10s", .min = "100ms"},
    TRIB_CONFIG_END,
};

typedef struct sink_ch {
    const trib_sink_host_t *host;
    trib_sink_ctx_t *ctx;
    sink_ch_opts_t o;
    sink_curl_t http;
    bool table_ready;
    char insert_url[1024];
    char query_url[1024];
    sink_str_t body;
    uint64_t failures;
} sink_ch_t;

static bool ident_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
              (i > 0 && c >= '0' && c <= '9'))) {
            return false;
        }
    }
    return true;
}

/* ClickHouse exception codes that mean "this data cannot go in". */
static bool data_error(const sink_curl_t *c)
{
    static const int codes[] = {6, 26, 27, 38, 41, 53, 69, 70, 72, 117, 0};
    const char *b = c->body.p;
    if (!b) {
        return false;
    }
    const char *p = strstr(b, "Code: ");
    if (!p) {
        return false;
    }
    int code = atoi(p + 6);
    for (size_t i = 0; codes[i]; i++) {
        if (codes[i] == code) {
            return true;
        }
    }
    return false;
}

static trib_sink_status_t post(sink_ch_t *s, const char *url, const char *body, size_t len,
                               trib_sink_result_t *res)
{
    trib_sink_status_t st = sink_curl_post(&s->http, url, body, len);
    if (st == TRIB_SINK_RETRY && s->http.status >= 500 && data_error(&s->http)) {
        st = TRIB_SINK_REJECT;
    }
    if (st != TRIB_SINK_OK) {
        char m[400];
        sink_curl_describe(&s->http, m, sizeof(m));
        snprintf(res->msg, sizeof(res->msg), "clickhouse: %s", m);
    }
    return st;
}

static trib_sink_status_t ensure_table(sink_ch_t *s, trib_sink_result_t *res)
{
    if (s->table_ready || !s->o.create_table) {
        return TRIB_SINK_OK;
    }
    char sql[1024];
    int n = snprintf(sql, sizeof(sql),
                     "CREATE TABLE IF NOT EXISTS %s.%s (topic String, partition Int32, "
                     "offset Int64, timestamp Int64, key Nullable(String), headers String, "
                     "value Nullable(String)) ENGINE = ReplacingMergeTree() "
                     "ORDER BY (topic, partition, offset)",
                     s->o.database, s->o.table);
    trib_sink_status_t st = post(s, s->query_url, sql, (size_t)n, res);
    if (st == TRIB_SINK_OK) {
        s->table_ready = true;
        s->host->log(s->ctx, TRIB_LOG_INFO, "table %s.%s ready at %s", s->o.database, s->o.table,
                     s->o.url);
    } else if (st == TRIB_SINK_REJECT) {
        st = TRIB_SINK_RETRY; /* a table we cannot create is not the records' fault */
    }
    return st;
}

static trib_sink_status_t sink_ch_write(void *instance, const trib_sink_batch_t *b,
                                        trib_sink_result_t *res)
{
    sink_ch_t *s = instance;
    res->failed_index = -1;
    if (b->count == 0) {
        return TRIB_SINK_OK;
    }
    trib_sink_status_t st = ensure_table(s, res);
    if (st != TRIB_SINK_OK) {
        if (s->failures++ % 30 == 0) {
            s->host->log(s->ctx, TRIB_LOG_WARN, "%s", res->msg);
        }
        return st;
    }
    sink_str_t *o = &s->body;
    sink_str_reset(o);
    sink_str_t hdr;
    sink_str_init(&hdr);
    for (size_t i = 0; i < b->count; i++) {
        const trib_sink_record_t *r = &b->records[i];
        sink_str_puts(o, "{\"topic\":");
        sink_json_string(o, (const uint8_t *)b->topic, strlen(b->topic));
        sink_str_printf(
            o, ",\"partition\":%d,\"offset\":%" PRId64 ",\"timestamp\":%" PRId64 ",\"key\":",
            (int)b->partition, r->offset, r->timestamp);
        if (trib_record_bytes_is_null(r->key)) {
            sink_str_puts(o, "null");
        } else {
            sink_json_string(o, r->key.ptr, (size_t)r->key.len);
        }
        sink_str_reset(&hdr);
        sink_json_headers(&hdr, r);
        sink_str_puts(o, ",\"headers\":");
        sink_json_string(o, (const uint8_t *)(hdr.p ? hdr.p : "{}"), hdr.p ? hdr.len : 2);
        sink_str_puts(o, ",\"value\":");
        if (trib_record_bytes_is_null(r->value)) {
            sink_str_puts(o, "null");
        } else {
            sink_json_string(o, r->value.ptr, (size_t)r->value.len);
        }
        sink_str_puts(o, "}\n");
    }
    bool oom = o->err || hdr.err;
    sink_str_fini(&hdr);
    if (oom) {
        snprintf(res->msg, sizeof(res->msg), "clickhouse: out of memory");
        return TRIB_SINK_RETRY;
    }
    st = post(s, s->insert_url, o->p, o->len, res);
    if (st == TRIB_SINK_OK) {
        s->failures = 0;
        s->host->counter_add(s->ctx, "clickhouse_rows", b->count);
    } else if (st == TRIB_SINK_RETRY && s->failures++ % 30 == 0) {
        s->host->log(s->ctx, TRIB_LOG_WARN, "%s", res->msg);
    }
    return st;
}

static int sink_ch_open(const trib_sink_host_t *host, trib_sink_ctx_t *ctx, const void *options,
                        void **instance, trib_error_t *err)
{
    const sink_ch_opts_t *o = options;
    if (!ident_ok(o->database) || !ident_ok(o->table)) {
        return trib_error_set(err, -EINVAL, "database and table must be [A-Za-z_][A-Za-z0-9_]*");
    }
    sink_ch_t *s = calloc(1, sizeof(*s));
    if (!s) {
        return trib_error_set(err, -ENOMEM, "out of memory");
    }
    s->host = host;
    s->ctx = ctx;
    s->o = *o;
    sink_curl_opts_t co = {.user = o->user,
                           .password = o->password,
                           .timeout_ms = o->timeout,
                           .connect_timeout_ms = o->connect_timeout,
                           .tls_verify = true,
                           .content_type = "text/plain"};
    if (sink_curl_init(&s->http, &co) != 0) {
        free(s);
        return trib_error_set(err, -ENOMEM, "cannot initialise libcurl");
    }
    sink_str_init(&s->body);
    sink_str_t q;
    sink_str_init(&q);
    char sql[256];
    snprintf(sql, sizeof(sql), "INSERT INTO %s.%s FORMAT JSONEachRow", o->database, o->table);
    sink_str_printf(&q, "%s/?query=", o->url);
    sink_curl_escape(&s->http, &q, sql);
    int rc = 0;
    if (q.err || q.len >= sizeof(s->insert_url)) {
        rc = trib_error_set(err, -EINVAL, "url too long");
    } else {
        memcpy(s->insert_url, q.p, q.len + 1);
        snprintf(s->query_url, sizeof(s->query_url), "%s/", o->url);
    }
    sink_str_fini(&q);
    if (rc != 0) {
        sink_curl_fini(&s->http);
        sink_str_fini(&s->body);
        free(s);
        return rc;
    }
    *instance = s;
    return 0;
}

static void sink_ch_close(void *instance)
{
    sink_ch_t *s = instance;
    if (!s) {
        return;
    }
    sink_curl_fini(&s->http);
    sink_str_fini(&s->body);
    free(s);
}

TRIB_SINK_EXPORT const trib_sink_descriptor_t *tributary_sink_descriptor(void);

TRIB_SINK_EXPORT const trib_sink_descriptor_t *tributary_sink_descriptor(void)
{
    static const trib_sink_descriptor_t d = {
        .abi_version = TRIB_SINK_ABI_VERSION,
        .struct_size = sizeof(trib_sink_descriptor_t),
        .name = "clickhouse",
        .description = "ClickHouse over HTTP: INSERT ... FORMAT JSONEachRow into a "
                       "ReplacingMergeTree keyed by (topic, partition, offset)",
        .options = sink_ch_options,
        .options_size = sizeof(sink_ch_opts_t),
        .open = sink_ch_open,
        .write = sink_ch_write,
        .flush = NULL,
        .close = sink_ch_close,
    };
    return &d;
}
