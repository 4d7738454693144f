/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Metrics: the counters the server keeps and their Prometheus text
 * exposition. The HTTP endpoint that serves them (/metrics, /health) is
 * tributary/http.h.
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
#include "tributary/http.h"
#include "tributary/prom.h"

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
    uint64_t fetch_send_waits; /* Fetch responses sent from files that found the socket full */
    uint64_t connections_accepted, connections_rejected;
    uint64_t frames_rejected; /* connections closed for a bad frame */
    uint64_t idle_closed;
    uint64_t request_timeouts;       /* connections closed: a request stalled (request_timeout) */
    uint64_t duplicates;             /* idempotent retries answered with original offsets */
    uint64_t produce_no_session;     /* refused by a leader without its ZooKeeper session */
    uint64_t produce_behind_refused; /* pipelined behind a batch refused retriably (produce.c) */
    uint64_t produce_gap_after_election; /* a sequence gap right after a leader change */
    uint64_t auto_created_topics;
    uint64_t tls_handshakes, tls_handshake_failures;
    uint64_t sasl_auth_ok, sasl_auth_failed;
    uint64_t unauthenticated_rejected; /* requests before SASL authentication (closed) */
    uint64_t authorization_failed;     /* actions the ACLs refused (server/acl.h) */
    uint64_t isr_shrinks, isr_expands; /* ISR changes written as leader (replica.c) */
    int64_t start_ms;
} coll_metrics_t;

void coll_metrics_init(coll_metrics_t *m);
void coll_metrics_request(coll_metrics_t *m, int16_t api_key, double seconds);
void coll_metrics_error(coll_metrics_t *m, int16_t api_key, int16_t code);

/* The request counters and histograms, in exposition format. */
void coll_metrics_render_requests(const coll_metrics_t *m, trib_buf_t *b);

#endif
