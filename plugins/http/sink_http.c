/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The `http` sink, two formats:
 *
 *   json_lines  one POST per batch to `url`, a record per line in the shape
 *               of sinkutil.h ({"topic", "partition", "offset", "timestamp",
 *               "key", "headers", "value"}). A 2xx means durable. The
 *               receiver dedupes on headers["event.id"] (or (topic,
 *               partition, offset) for records without one) if it must:
 *               delivery is at-least-once.
 *   es_bulk     Elasticsearch / OpenSearch _bulk at <url>/_bulk: for each
 *               record {"create": {"_index": index, "_id": id}} and the
 *               same document, id being the record's event.id header (the
 *               agent's stable id of the event, the same when it sends the
 *               event again after a crash) or "<topic>-<partition>-<offset>"
 *               for a record without one, so neither a replay nor an
 *               agent's re-send writes a document twice: an item answered
 *               409 (version conflict: it exists) counts as written.
 *
 * Failures: transport errors, 408, 429 and 5xx are RETRY; other 4xx are
 * REJECT. For _bulk the items are read: any item 429/5xx makes the batch
 * RETRY (the items already created come back 409 next time); otherwise the
 * first item refused with another 4xx is REJECTed by index, so the host
 * dead-letters exactly it.
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

typedef struct sink_http_opts {
    const char *url;
    int format;
    const char *index;
    const char *user;
    const char *password;
    int64_t timeout;
    int64_t connect_timeout;
    bool tls_verify;
} sink_http_opts_t;

static const char *const sink_http_formats[] = {"json_lines", "es_bulk", NULL};

static const trib_config_option_t sink_http_options[] = {
    {TRIB_CONFIG_FIELD(sink_http_opts_t, url, STRING), .flags = TRIB_CONFIG_REQUIRED, .min = "8",
     .desc = "where to POST (es_bulk: the cluster URL, /_bulk is appended)"},
    {TRIB_CONFIG_FIELD(sink_http_opts_t, format, ENUM), .def = "json_lines",
     .choices = sink_http_formats, .desc = "json_lines, or es_bulk (Elasticsearch _bulk)"},
    {TRIB_CONFIG_FIELD(sink_http_opts_t, index, STRING), .def = "events", .min = "1", .max = "255",
     .desc = "es_bulk: the index documents are created in"},
    {TRIB_CONFIG_FIELD(sink_http_opts_t, user, STRING), .desc = "basic auth user"},
    {TRIB_CONFIG_FIELD(sink_http_opts_t, password, STRING), .flags = TRIB_CONFIG_SECRET,
     .desc = "basic auth password"},
    {TRIB_CONFIG_FIELD(sink_http_opts_t, timeout, DURATION), .def = "60s", .min = "1s",
     .desc = "how long one POST may take"},
    {TRIB_CONFIG_FIELD(sink_http_opts_t, connect_timeout, DURATION), .def = "10s", .min = "100ms",
     .desc = "how long connecting to the server may take"},
    {TRIB_CONFIG_FIELD(sink_http_opts_t, tls_verify, BOOL), .def = "true",
     .desc = "verify the server's certificate"},
    TRIB_CONFIG_END,
};

typedef struct sink_http {
    const trib_sink_host_t *host;
    trib_sink_ctx_t *ctx;
    sink_http_opts_t o;
    sink_curl_t http;
    char url[2048];
    sink_str_t body;
    uint64_t failures;
} sink_http_t;

/*
 * Reads a _bulk response: the item statuses in order ("status":NNN, one per
 * item; error objects carry no status of their own). RETRY if any item is
 * retryable; else REJECT naming the first refused item; else OK.
 */
static trib_sink_status_t bulk_result(sink_http_t *s, size_t count, trib_sink_result_t *res)
{
    const char *b = s->http.body.p ? s->http.body.p : "";
    if (strstr(b, "\"errors\":false") || strstr(b, "\"errors\": false")) {
        return TRIB_SINK_OK;
    }
    const char *items = strstr(b, "\"items\"");
    if (!items) {
        snprintf(res->msg, sizeof(res->msg), "http: _bulk answer without items: %.200s", b);
        return TRIB_SINK_RETRY;
    }
    size_t i = 0;
    int64_t first_bad = -1;
    int bad_status = 0;
    const char *bad_at = NULL;
    bool retry = false;
    for (const char *p = items; (p = strstr(p, "\"status\"")) != NULL && i < count; i++) {
        const char *at = p;
        p += 8;
        while (*p == ' ' || *p == ':') {
            p++;
        }
        int st = atoi(p);
        if (st == 429 || st >= 500) {
            retry = true;
        } else if ((st < 200 || st >= 300) && st != 409 && first_bad < 0) {
            first_bad = (int64_t)i;
            bad_status = st;
            bad_at = at;
        }
    }
    if (retry) {
        snprintf(res->msg, sizeof(res->msg), "http: _bulk items to retry (429/5xx)");
        return TRIB_SINK_RETRY;
    }
    if (first_bad >= 0) {
        res->failed_index = first_bad;
        /* The item's error reason: the first "reason" string after its status. */
        char reason[256] = "";
        const char *r = strstr(bad_at, "\"reason\"");
        const char *next = strstr(bad_at + 8, "\"status\"");
        if (r && (!next || r < next)) {
            r = strchr(r + 8, '"');
            size_t n = 0;
            for (r = r ? r + 1 : NULL; r && *r && *r != '"' && n + 1 < sizeof(reason); r++) {
                if (*r == '\\' && r[1]) {
                    r++;
                }
                reason[n++] = *r;
            }
            reason[n] = '\0';
        }
        snprintf(res->msg, sizeof(res->msg), "http: _bulk item %" PRId64 " refused (%d)%s%s",
                 first_bad, bad_status, reason[0] ? ": " : "", reason);
        return TRIB_SINK_REJECT;
    }
    return TRIB_SINK_OK;
}

static trib_sink_status_t sink_http_write(void *instance, const trib_sink_batch_t *b,
                                          trib_sink_result_t *res)
{
    sink_http_t *s = instance;
    res->failed_index = -1;
    if (b->count == 0) {
        return TRIB_SINK_OK;
    }
    bool bulk = s->o.format == 1;
    sink_str_t *o = &s->body;
    sink_str_reset(o);
    for (size_t i = 0; i < b->count; i++) {
        const trib_sink_record_t *r = &b->records[i];
        if (bulk) {
            sink_str_puts(o, "{\"create\":{\"_index\":");
            sink_json_string(o, (const uint8_t *)s->o.index, strlen(s->o.index));
            /* the event id when the record has one (the same on an agent's re-send) */
            size_t eidn = 0;
            const uint8_t *eid = sink_event_id(r, &eidn);
            char id[320];
            int n = eid != NULL ? snprintf(id, sizeof(id), "%.*s", (int)eidn, (const char *)eid)
                                : snprintf(id, sizeof(id), "%s-%d-%" PRId64, b->topic,
                                           (int)b->partition, r->offset);
            sink_str_puts(o, ",\"_id\":");
            sink_json_string(o, (const uint8_t *)id, (size_t)n < sizeof(id) ? (size_t)n : 0);
            sink_str_puts(o, "}}\n");
        }
        sink_json_record(o, b->topic, b->partition, r);
        sink_str_append(o, "\n", 1);
    }
    if (o->err) {
        snprintf(res->msg, sizeof(res->msg), "http: out of memory");
        return TRIB_SINK_RETRY;
    }
    trib_sink_status_t st = sink_curl_post(&s->http, s->url, o->p, o->len);
    if (st == TRIB_SINK_OK && bulk) {
        st = bulk_result(s, b->count, res);
    } else if (st != TRIB_SINK_OK) {
        char m[400];
        sink_curl_describe(&s->http, m, sizeof(m));
        snprintf(res->msg, sizeof(res->msg), "http: %s", m);
    }
    if (st == TRIB_SINK_OK) {
        s->failures = 0;
        s->host->counter_add(s->ctx, "http_records", b->count);
    } else if (st == TRIB_SINK_RETRY && s->failures++ % 30 == 0) {
        s->host->log(s->ctx, TRIB_LOG_WARN, "%s", res->msg);
    }
    return st;
}

static int sink_http_open(const trib_sink_host_t *host, trib_sink_ctx_t *ctx, const void *options,
                          void **instance, trib_error_t *err)
{
    const sink_http_opts_t *o = options;
    if (strncmp(o->url, "http://", 7) != 0 && strncmp(o->url, "https://", 8) != 0) {
        return trib_error_set(err, -EINVAL, "url must start with http:// or https://");
    }
    sink_http_t *s = calloc(1, sizeof(*s));
    if (!s) {
        return trib_error_set(err, -ENOMEM, "out of memory");
    }
    s->host = host;
    s->ctx = ctx;
    s->o = *o;
    size_t ul = strlen(o->url);
    while (ul > 0 && o->url[ul - 1] == '/' && o->format == 1) {
        ul--;
    }
    snprintf(s->url, sizeof(s->url), "%.*s%s", (int)ul, o->url, o->format == 1 ? "/_bulk" : "");
    sink_curl_opts_t co = {.user = o->user,
                           .password = o->password,
                           .timeout_ms = o->timeout,
                           .connect_timeout_ms = o->connect_timeout,
                           .tls_verify = o->tls_verify,
                           .content_type = "application/x-ndjson"};
    if (sink_curl_init(&s->http, &co) != 0) {
        free(s);
        return trib_error_set(err, -ENOMEM, "cannot initialise libcurl");
    }
    sink_str_init(&s->body);
    *instance = s;
    return 0;
}

static void sink_http_close(void *instance)
{
    sink_http_t *s = instance;
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
        .name = "http",
        .description = "JSON lines POSTed to a URL, or Elasticsearch _bulk with _id = the "
                       "event id (or topic-partition-offset)",
        .options = sink_http_options,
        .options_size = sizeof(sink_http_opts_t),
        .open = sink_http_open,
        .write = sink_http_write,
        .flush = NULL,
        .close = sink_http_close,
    };
    return &d;
}
