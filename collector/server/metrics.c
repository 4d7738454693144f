/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Metrics counters, the Prometheus text format, and a minimal HTTP/1.x
 * endpoint for /metrics and /health (see metrics.h).
 *
 * The HTTP side is deliberately small: it reads at most 8 KiB of request
 * head, answers one GET and closes. A connection that has not sent a full
 * request head within 10 s is closed, and at most 64 are open at once, so
 * the endpoint cannot be used to pin memory or descriptors.
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

void coll_metrics_header(trib_buf_t *b, const char *name, const char *type, const char *help)
{
    char line[512];
    int n = snprintf(line, sizeof(line), "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
    trib_buf_append(b, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

void coll_metrics_label_escape(trib_buf_t *b, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        if (ch == '\\' || ch == '"') {
            trib_buf_put_u8(b, '\\');
            trib_buf_put_u8(b, (uint8_t)ch);
        } else if (ch == '\n') {
            trib_buf_append(b, "\\n", 2);
        } else {
            trib_buf_put_u8(b, (uint8_t)ch);
        }
    }
}

static void put_name_labels(trib_buf_t *b, const char *name, const char *labels)
{
    trib_buf_append(b, name, strlen(name));
    if (labels && *labels) {
        trib_buf_put_u8(b, '{');
        trib_buf_append(b, labels, strlen(labels));
        trib_buf_put_u8(b, '}');
    }
    trib_buf_put_u8(b, ' ');
}

void coll_metrics_sample(trib_buf_t *b, const char *name, const char *labels, double value)
{
    put_name_labels(b, name, labels);
    char v[64];
    int n;
    if (isinf(value)) {
        n = snprintf(v, sizeof(v), "%s\n", value > 0 ? "+Inf" : "-Inf");
    } else if (isnan(value)) {
        n = snprintf(v, sizeof(v), "NaN\n");
    } else {
        n = snprintf(v, sizeof(v), "%.10g\n", value);
    }
    trib_buf_append(b, v, (size_t)n);
}

void coll_metrics_sample_u64(trib_buf_t *b, const char *name, const char *labels, uint64_t value)
{
    put_name_labels(b, name, labels);
    char v[32];
    int n = snprintf(v, sizeof(v), "%" PRIu64 "\n", value);
    trib_buf_append(b, v, (size_t)n);
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
    coll_metrics_header(b, "tributary_requests_total", "counter",
                        "Kafka requests handled, by API.");
    for (int a = 0; a < COLL_METRICS_APIS; a++) {
        if (m->requests[a]) {
            snprintf(labels, sizeof(labels), "api=\"%s\"", api_name(a));
            coll_metrics_sample_u64(b, "tributary_requests_total", labels, m->requests[a]);
        }
    }
    coll_metrics_header(b, "tributary_request_errors_total", "counter",
                        "Kafka error codes returned (per partition or resource), by API and "
                        "error.");
    for (int a = 0; a < COLL_METRICS_APIS; a++) {
        for (int e = 0; e < COLL_METRICS_ERRORS; e++) {
            if (m->errors[a][e]) {
                snprintf(labels, sizeof(labels), "api=\"%s\",error=\"%s\"", api_name(a),
                         trib_kafka_err_name((int16_t)(e - 1)));
                coll_metrics_sample_u64(b, "tributary_request_errors_total", labels,
                                        m->errors[a][e]);
            }
        }
    }
    coll_metrics_header(b, "tributary_request_duration_seconds", "histogram",
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
            coll_metrics_sample_u64(b, "tributary_request_duration_seconds_bucket", labels, cum);
        }
        snprintf(labels, sizeof(labels), "api=\"%s\"", api_name(a));
        coll_metrics_sample(b, "tributary_request_duration_seconds_sum", labels, m->latency_sum[a]);
        coll_metrics_sample_u64(b, "tributary_request_duration_seconds_count", labels, cum);
    }
}

/* ---- HTTP ------------------------------------------------------------------------------- */

#define HTTP_MAX_HEAD 8192
#define HTTP_MAX_CONNS 64
#define HTTP_TIMEOUT_MS 10000

typedef struct coll_http_conn {
    uv_tcp_t tcp;
    coll_http_t *h;
    struct coll_http_conn *prev, *next;
    char buf[HTTP_MAX_HEAD];
    size_t len;
    bool responded, closing;
    uint64_t started_ms;
    trib_buf_t out;
    uv_write_t wreq;
    uv_buf_t *bufs;
} coll_http_conn_t;

static int nconns(const coll_http_t *h)
{
    int n = 0;
    for (const coll_http_conn_t *c = h->conns; c; c = c->next) {
        n++;
    }
    return n;
}

static void http_handle_closed(coll_http_t *h)
{
    if (--h->closing_handles == 0 && !h->open && h->closed_cb) {
        void (*cb)(coll_http_t *) = h->closed_cb;
        h->closed_cb = NULL;
        cb(h);
    }
}

static void conn_closed(uv_handle_t *handle)
{
    coll_http_conn_t *c = handle->data;
    coll_http_t *h = c->h;
    if (c->prev) {
        c->prev->next = c->next;
    } else {
        h->conns = c->next;
    }
    if (c->next) {
        c->next->prev = c->prev;
    }
    trib_buf_fini(&c->out);
    free(c->bufs);
    free(c);
    http_handle_closed(h);
}

static void conn_close(coll_http_conn_t *c)
{
    if (c->closing) {
        return;
    }
    c->closing = true;
    c->h->closing_handles++;
    uv_close((uv_handle_t *)&c->tcp, conn_closed);
}

static void written(uv_write_t *w, int status)
{
    (void)status;
    conn_close(w->data);
}

static void respond(coll_http_conn_t *c, int code, const char *reason, const char *ctype,
                    trib_buf_t *body, bool head_only)
{
    char head[256];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n",
                     code, reason, ctype, body ? trib_buf_len(body) : 0);
    trib_buf_append(&c->out, head, (size_t)n);
    if (body && !head_only) {
        size_t blen;
        const uint8_t *p = trib_buf_flatten(body, &blen);
        if (p) {
            trib_buf_append(&c->out, p, blen);
        }
    }
    c->responded = true;
    if (trib_buf_error(&c->out)) {
        conn_close(c);
        return;
    }
    int cnt = trib_buf_iovcnt(&c->out);
    struct iovec *iov = calloc((size_t)cnt, sizeof(*iov));
    c->bufs = calloc((size_t)cnt, sizeof(*c->bufs));
    if (!iov || !c->bufs) {
        free(iov);
        conn_close(c);
        return;
    }
    trib_buf_iovec(&c->out, iov, cnt);
    for (int i = 0; i < cnt; i++) {
        c->bufs[i] = uv_buf_init(iov[i].iov_base, (unsigned)iov[i].iov_len);
    }
    free(iov);
    c->wreq.data = c;
    uv_read_stop((uv_stream_t *)&c->tcp);
    if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, c->bufs, (unsigned)cnt, written) != 0) {
        conn_close(c);
    }
}

static void handle_request(coll_http_conn_t *c)
{
    coll_http_t *h = c->h;
    c->buf[c->len < HTTP_MAX_HEAD ? c->len : HTTP_MAX_HEAD - 1] = '\0';
    char method[16], path[256];
    trib_buf_t body;
    trib_buf_init(&body);
    if (sscanf(c->buf, "%15s %255s", method, path) != 2) {
        trib_buf_append(&body, "bad request\n", 12);
        respond(c, 400, "Bad Request", "text/plain", &body, false);
        trib_buf_fini(&body);
        return;
    }
    bool head = strcmp(method, "HEAD") == 0;
    if (!head && strcmp(method, "GET") != 0) {
        trib_buf_append(&body, "method not allowed\n", 19);
        respond(c, 405, "Method Not Allowed", "text/plain", &body, false);
    } else if (strcmp(path, "/metrics") == 0 || strncmp(path, "/metrics?", 9) == 0) {
        h->render(h->arg, &body);
        respond(c, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", &body, head);
    } else if (strcmp(path, "/health") == 0 || strcmp(path, "/healthz") == 0) {
        bool ok = h->health(h->arg);
        trib_buf_append(&body, ok ? "ok\n" : "stopping\n", ok ? 3 : 9);
        respond(c, ok ? 200 : 503, ok ? "OK" : "Service Unavailable", "text/plain", &body, head);
    } else {
        trib_buf_append(&body, "not found: try /metrics or /health\n", 35);
        respond(c, 404, "Not Found", "text/plain", &body, head);
    }
    trib_buf_fini(&body);
}

static void alloc_cb(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    coll_http_conn_t *c = handle->data;
    if (c->len >= HTTP_MAX_HEAD - 1) {
        *buf = uv_buf_init(NULL, 0);
        return;
    }
    *buf = uv_buf_init(c->buf + c->len, (unsigned)(HTTP_MAX_HEAD - 1 - c->len));
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    coll_http_conn_t *c = s->data;
    if (nread < 0 || (nread == 0 && c->len >= HTTP_MAX_HEAD - 1)) {
        conn_close(c);
        return;
    }
    c->len += (size_t)nread;
    c->buf[c->len] = '\0';
    if (strstr(c->buf, "\r\n\r\n") || strstr(c->buf, "\n\n")) {
        handle_request(c);
    } else if (c->len >= HTTP_MAX_HEAD - 1) {
        conn_close(c);
    }
}

static void on_connection(uv_stream_t *server, int status)
{
    coll_http_t *h = server->data;
    if (status < 0) {
        return;
    }
    coll_http_conn_t *c = calloc(1, sizeof(*c));
    if (!c) {
        return;
    }
    c->h = h;
    trib_buf_init(&c->out);
    if (uv_tcp_init(h->loop, &c->tcp) != 0) {
        free(c);
        return;
    }
    c->tcp.data = c;
    c->next = h->conns;
    if (h->conns) {
        h->conns->prev = c;
    }
    h->conns = c;
    c->started_ms = uv_now(h->loop);
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0 || nconns(h) > HTTP_MAX_CONNS ||
        uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb) != 0) {
        conn_close(c);
    }
}

static void sweep_cb(uv_timer_t *t)
{
    coll_http_t *h = t->data;
    uint64_t now = uv_now(h->loop);
    for (coll_http_conn_t *c = h->conns; c; c = c->next) {
        if (!c->closing && now - c->started_ms > HTTP_TIMEOUT_MS) {
            conn_close(c);
        }
    }
}

static void sweep_closed(uv_handle_t *handle)
{
    http_handle_closed(handle->data);
}

static void listener_closed(uv_handle_t *handle)
{
    http_handle_closed(handle->data);
}

int coll_http_start(coll_http_t *h, uv_loop_t *loop, const char *host, int port, int backlog,
                    coll_http_render_cb render, coll_http_health_cb health, void *arg)
{
    memset(h, 0, sizeof(*h));
    h->loop = loop;
    h->render = render;
    h->health = health;
    h->arg = arg;
    struct sockaddr_storage ss;
    const char *ip = host && *host ? host : "0.0.0.0";
    int rc = uv_ip4_addr(ip, port, (struct sockaddr_in *)&ss);
    if (rc != 0) {
        rc = uv_ip6_addr(ip, port, (struct sockaddr_in6 *)&ss);
    }
    if (rc != 0) {
        return rc;
    }
    if ((rc = uv_tcp_init(loop, &h->listener)) != 0) {
        return rc;
    }
    h->listener.data = h;
    h->open = true;
    if ((rc = uv_tcp_bind(&h->listener, (struct sockaddr *)&ss, 0)) != 0 ||
        (rc = uv_listen((uv_stream_t *)&h->listener, backlog, on_connection)) != 0) {
        goto fail;
    }
    struct sockaddr_storage bound;
    int len = sizeof(bound);
    if ((rc = uv_tcp_getsockname(&h->listener, (struct sockaddr *)&bound, &len)) != 0) {
        goto fail;
    }
    h->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                : ((struct sockaddr_in *)&bound)->sin_port);
    uv_timer_init(loop, &h->sweep);
    h->sweep.data = h;
    uv_timer_start(&h->sweep, sweep_cb, 1000, 1000);
    uv_unref((uv_handle_t *)&h->sweep);
    return 0;
fail:
    h->open = false;
    h->closing_handles++;
    uv_close((uv_handle_t *)&h->listener, listener_closed);
    return rc;
}

void coll_http_stop(coll_http_t *h, void (*cb)(coll_http_t *h))
{
    h->closed_cb = cb;
    if (!h->open) {
        if (h->closing_handles == 0 && cb) {
            h->closed_cb = NULL;
            cb(h);
        }
        return;
    }
    h->open = false;
    for (coll_http_conn_t *c = h->conns; c; c = c->next) {
        conn_close(c);
    }
    h->closing_handles += 2;
    uv_close((uv_handle_t *)&h->listener, listener_closed);
    uv_close((uv_handle_t *)&h->sweep, sweep_closed);
}
