/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The collector's request metrics: counters and latency histograms per API
 * and their exposition (see metrics.h). The text format and the HTTP
 * endpoint are common code (tributary/prom.h, tributary/http.h).
 */
#include "server/metrics.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tributary/kafka.h"
#include "tributary/kafka_error.h"
#include "tributary/log.h"

const double coll_metrics_bucket_bounds[COLL_METRICS_BUCKETS] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
};

void coll_metrics_init(coll_metrics_t *m)
{
    memset(m, 0, sizeof(*m));
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    m->start_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int api_slot(int16_t key)
{
    return key >= 0 && key < COLL_METRICS_APIS - 1 ? key : COLL_METRICS_APIS - 1;
}

void coll_metrics_request(coll_metrics_t *m, int16_t api_key, double seconds)
{
    int a = api_slot(api_key);
    m->requests[a]++;
    m->latency_sum[a] += seconds;
    int b = 0;
    while (b < COLL_METRICS_BUCKETS && seconds > coll_metrics_bucket_bounds[b]) {
        b++;
    }
    m->latency_count[a][b]++;
}

void coll_metrics_error(coll_metrics_t *m, int16_t api_key, int16_t code)
{
    if (code == 0 || code < -1 || code > COLL_METRICS_ERRORS - 2) {
        return;
    }
    m->errors[api_slot(api_key)][code + 1]++;
}

static const char *api_name(int a)
{
    if (a == COLL_METRICS_APIS - 1) {
        return "other";
    }
    const trib_kafka_api_t *api = trib_kafka_api_find((int16_t)a);
    return api ? api->name : "other";
}

void coll_metrics_render_requests(const coll_metrics_t *m, trib_buf_t *b)
{
    char labels[256];
    trib_prom_header(b, "tributary_requests_total", "counter", "Kafka requests handled, by API.");
    for (int a = 0; a < COLL_METRICS_APIS; a++) {
        if (m->requests[a]) {
            snprintf(labels, sizeof(labels), "api=\"%s\"", api_name(a));
            trib_prom_sample_u64(b, "tributary_requests_total", labels, m->requests[a]);
        }
    }
    trib_prom_header(b, "tributary_request_errors_total", "counter",
                     "Kafka error codes returned (per partition or resource), by API and "
                     "error.");
    for (int a = 0; a < COLL_METRICS_APIS; a++) {
        for (int e = 0; e < COLL_METRICS_ERRORS; e++) {
            if (m->errors[a][e]) {
                snprintf(labels, sizeof(labels), "api=\"%s\",error=\"%s\"", api_name(a),
                         trib_kafka_err_name((int16_t)(e - 1)));
                trib_prom_sample_u64(b, "tributary_request_errors_total", labels, m->errors[a][e]);
            }
        }
    }
    trib_prom_header(b, "tributary_request_duration_seconds", "histogram",
                     "Time from a request's last byte read to its response queued, by API.");
    for (int a = 0; a < COLL_METRICS_APIS; a++) {
        if (!m->requests[a]) {
            continue;
        }
        uint64_t cum = 0;
        for (int k = 0; k <= COLL_METRICS_BUCKETS; k++) {
            cum += m->latency_count[a][k];
            if (k < COLL_METRICS_BUCKETS) {
                snprintf(labels, sizeof(labels), "api=\"%s\",le=\"%g\"", api_name(a),
                         coll_metrics_bucket_bounds[k]);
            } else {
                snprintf(labels, sizeof(labels), "api=\"%s\",le=\"+Inf\"", api_name(a));
            }
            trib_prom_sample_u64(b, "tributary_request_duration_seconds_bucket", labels, cum);
        }
        snprintf(labels, sizeof(labels), "api=\"%s\"", api_name(a));
        trib_prom_sample(b, "tributary_request_duration_seconds_sum", labels, m->latency_sum[a]);
        trib_prom_sample_u64(b, "tributary_request_duration_seconds_count", labels, cum);
    }
}
