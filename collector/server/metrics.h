/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Metrics: the counters the server keeps, their Prometheus text exposition,
 * and the small HTTP endpoint that serves them and the health check.
 *
 *   GET /metrics  text/plain; version=0.0.4
 *   GET /health   200 "ok" while serving, 503 "stopping" during shutdown
 *   anything else 404; one request per connection (Connection: close)
 *
 * Counters are plain integers bumped on the loop thread; the exposition is
 * built on the same thread when scraped, so no locking is needed. Request
 * latencies go into a fixed-bucket histogram per API key.
 */
#ifndef COLLECTOR_SERVER_METRICS_H
#define COLLECTOR_SERVER_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "tributary/buf.h"

/* API keys tracked one by one; larger keys share the last slot. */
#define COLL_METRICS_APIS 96
/* Kafka error codes -1 .. 127 (index code + 1). */
#define COLL_METRICS_ERRORS 129
/* Histogram upper bounds in seconds (a +Inf bucket follows). */
#define COLL_METRICS_BUCKETS 14

extern const double coll_metrics_bucket_bounds[COLL_METRICS_BUCKETS];

typedef struct coll_metrics {
    uint64_t requests[COLL_METRICS_APIS];
    uint64_t errors[COLL_METRICS_APIS][COLL_METRICS_ERRORS];
    uint64_t latency_count[COLL_METRICS_APIS][COLL_METRICS_BUCKETS + 1];
    double latency_sum[COLL_METRICS_APIS];
    uint64_t bytes_in, records_in, batches_in; /* produced (record batch bytes) */
    uint64_t bytes_out, records_out;           /* fetched */
    uint64_t net_bytes_received, net_bytes_sent;
    uint64_t connections_accepted, connections_rejected;
    uint64_t frames_rejected; /* connections closed for a bad frame */
    uint64_t idle_closed;
    uint64_t duplicates; /* idempotent retries answered with original offsets */
    uint64_t auto_created_topics;
    int64_t start_ms;
} coll_metrics_t;

void coll_metrics_init(coll_metrics_t *m);
void coll_metrics_request(coll_metrics_t *m, int16_t api_key, double seconds);
void coll_metrics_error(coll_metrics_t *m, int16_t api_key, int16_t code);

/* Appends one "name{labels} value" sample (labels may be NULL). */
void coll_metrics_sample(trib_buf_t *b, const char *name, const char *labels, double value);
void coll_metrics_sample_u64(trib_buf_t *b, const char *name, const char *labels, uint64_t value);
/* Appends "# HELP" and "# TYPE" lines. */
void coll_metrics_header(trib_buf_t *b, const char *name, const char *type, const char *help);
/* Appends a label value escaped for the exposition format (\\, \", \n). */
void coll_metrics_label_escape(trib_buf_t *b, const char *s, size_t len);

/* The request counters and histograms, in exposition format. */
void coll_metrics_render_requests(const coll_metrics_t *m, trib_buf_t *b);

/* ---- the HTTP endpoint ------------------------------------------------------------- */

typedef struct coll_http coll_http_t;
/* Fills b with the /metrics body. */
typedef void (*coll_http_render_cb)(void *arg, trib_buf_t *b);
/* True when healthy. */
typedef bool (*coll_http_health_cb)(void *arg);

struct coll_http {
    uv_tcp_t listener;
    uv_timer_t sweep; /* closes connections that dawdle */
    bool open;
    uv_loop_t *loop;
    coll_http_render_cb render;
    coll_http_health_cb health;
    void *arg;
    struct coll_http_conn *conns;
    int port;
    int closing_handles;
    void (*closed_cb)(coll_http_t *h);
};

/* Binds host:port (port 0: ephemeral; the bound port lands in h->port). */
int coll_http_start(coll_http_t *h, uv_loop_t *loop, const char *host, int port, int backlog,
                    coll_http_render_cb render, coll_http_health_cb health, void *arg);
/* Closes the listener and every connection; cb once all handles are closed. */
void coll_http_stop(coll_http_t *h, void (*cb)(coll_http_t *h));

#endif
