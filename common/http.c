/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A minimal HTTP/1.x endpoint for /metrics and /health (see http.h).
 *
 * The HTTP side is deliberately small: it reads at most 8 KiB of request
 * head (431 past that; 414 for a request target over 1023 bytes), answers
 * one GET and closes. A connection that has not sent a full
 * request head within 10 s is closed, and at most 64 are open at once, so
 * the endpoint cannot be used to pin memory or descriptors.
 */
#include "tributary/http.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tributary/log.h"

#define HTTP_MAX_HEAD 8192
#define HTTP_MAX_TARGET 1023
#define HTTP_MAX_CONNS 64
#define HTTP_TIMEOUT_MS 10000

typedef struct trib_http_conn {
    uv_tcp_t tcp;
    trib_http_t *h;
    struct trib_http_conn *prev, *next;
    char buf[HTTP_MAX_HEAD];
    size_t len;
    bool responded, closing;
    uint64_t started_ms;
    trib_buf_t out;
    size_t out_counted; /* what this connection adds to h->out_pending */
    uv_write_t wreq;
    uv_buf_t *bufs;
} trib_http_conn_t;

static int nconns(const trib_http_t *h)
{
    int n = 0;
    for (const trib_http_conn_t *c = h->conns; c; c = c->next) {
        n++;
    }
    return n;
}

static void http_handle_closed(trib_http_t *h)
{
    if (--h->closing_handles == 0 && !h->open && h->closed_cb) {
        void (*cb)(trib_http_t *) = h->closed_cb;
        h->closed_cb = NULL;
        cb(h);
    }
}

static void conn_closed(uv_handle_t *handle)
{
    trib_http_conn_t *c = handle->data;
    trib_http_t *h = c->h;
    if (c->prev) {
        c->prev->next = c->next;
    } else {
        h->conns = c->next;
    }
    if (c->next) {
        c->next->prev = c->prev;
    }
    h->out_pending -= c->out_counted;
    trib_buf_fini(&c->out);
    free(c->bufs);
    free(c);
    http_handle_closed(h);
}

static void conn_close(trib_http_conn_t *c)
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

static void respond(trib_http_conn_t *c, int code, const char *reason, const char *ctype,
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
    c->out_counted = trib_buf_len(&c->out);
    c->h->out_pending += c->out_counted;
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

static const char *reason(int code)
{
    switch (code) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    case 414:
        return "URI Too Long";
    case 431:
        return "Request Header Fields Too Large";
    case 503:
        return "Service Unavailable";
    default:
        return code < 300 ? "OK" : code < 500 ? "Client Error" : "Server Error";
    }
}

/* 127.0.0.0/8, ::1 or ::ffff:127.0.0.0/104. */
static bool peer_is_loopback(trib_http_conn_t *c)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) != 0) {
        return false;
    }
    if (ss.ss_family == AF_INET) {
        const uint8_t *a = (const uint8_t *)&((struct sockaddr_in *)&ss)->sin_addr;
        return a[0] == 127;
    }
    if (ss.ss_family == AF_INET6) {
        const uint8_t *a = ((struct sockaddr_in6 *)&ss)->sin6_addr.s6_addr;
        static const uint8_t lo[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
        static const uint8_t v4map[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        return memcmp(a, lo, 16) == 0 || (memcmp(a, v4map, 12) == 0 && a[12] == 127);
    }
    return false;
}

void trib_http_set_admin(trib_http_t *h, trib_http_admin_cb cb, void *arg)
{
    h->admin = cb;
    h->admin_arg = arg;
}

void trib_http_set_route(trib_http_t *h, trib_http_route_cb cb, void *arg)
{
    h->route = cb;
    h->route_arg = arg;
}

static void handle_request(trib_http_conn_t *c)
{
    trib_http_t *h = c->h;
    c->buf[c->len < HTTP_MAX_HEAD ? c->len : HTTP_MAX_HEAD - 1] = '\0';
    char method[16], path[HTTP_MAX_TARGET + 1];
    trib_buf_t body;
    trib_buf_init(&body);
    /* The request line: METHOD SP TARGET [SP VERSION]. A target longer than
     * HTTP_MAX_TARGET is refused whole (414), never served cut short. */
    const char *line = c->buf;
    size_t mlen = strcspn(line, " \r\n");
    const char *t = line + mlen + strspn(line + mlen, " ");
    size_t tlen = strcspn(t, " \r\n");
    if (mlen == 0 || mlen >= sizeof(method) || line[mlen] != ' ' || tlen == 0) {
        trib_buf_append(&body, "bad request\n", 12);
        respond(c, 400, "Bad Request", "text/plain", &body, false);
        trib_buf_fini(&body);
        return;
    }
    if (tlen > HTTP_MAX_TARGET) {
        trib_buf_append(&body, "request target too long\n", 24);
        respond(c, 414, "URI Too Long", "text/plain", &body, false);
        trib_buf_fini(&body);
        return;
    }
    memcpy(method, line, mlen);
    method[mlen] = '\0';
    memcpy(path, t, tlen);
    path[tlen] = '\0';
    bool head = strcmp(method, "HEAD") == 0;
    int code = 0;
    const char *ctype = "text/plain; charset=utf-8";
    bool fixed = strcmp(path, "/metrics") == 0 || strcmp(path, "/health") == 0 ||
                 strcmp(path, "/healthz") == 0;
    if (h->route && !fixed && (code = h->route(h->route_arg, method, path, &body, &ctype)) != 0) {
        respond(c, code, reason(code), ctype, &body, head);
    } else if (h->admin && strcmp(path, "/metrics") != 0 && strcmp(path, "/health") != 0 &&
               strcmp(path, "/healthz") != 0 &&
               (code = h->admin(h->admin_arg, method, path, peer_is_loopback(c), &body)) != 0) {
        respond(c, code, reason(code), "text/plain; charset=utf-8", &body, head);
    } else if (!head && strcmp(method, "GET") != 0) {
        trib_buf_append(&body, "method not allowed\n", 19);
        respond(c, 405, "Method Not Allowed", "text/plain", &body, false);
    } else if (strcmp(path, "/metrics") == 0 || strncmp(path, "/metrics?", 9) == 0) {
        h->render(h->arg, &body);
        respond(c, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", &body, head);
    } else if (strcmp(path, "/status") == 0 && h->status != NULL) {
        h->status(h->arg, &body);
        respond(c, 200, "OK", "text/plain; charset=utf-8", &body, head);
    } else if (strcmp(path, "/health") == 0 || strcmp(path, "/healthz") == 0) {
        bool ok = h->health(h->arg, &body);
        trib_buf_t detail;
        trib_buf_init(&detail);
        if (!ok) {
            if (body.len == 0) {
                trib_buf_append(&body, "unhealthy\n", 10);
            }
        } else if (h->detail && !h->detail(h->arg, &detail)) {
            /* Serving, but a part is degraded: still 200, the reasons in the body. */
            size_t len = 0;
            const uint8_t *p = trib_buf_flatten(&detail, &len);
            trib_buf_reset(&body);
            trib_buf_append(&body, "degraded\n", 9);
            if (p) {
                trib_buf_append(&body, p, len);
            }
        } else {
            trib_buf_reset(&body);
            trib_buf_append(&body, "ok\n", 3);
        }
        trib_buf_fini(&detail);
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
    trib_http_conn_t *c = handle->data;
    if (c->len >= HTTP_MAX_HEAD - 1) {
        *buf = uv_buf_init(NULL, 0);
        return;
    }
    *buf = uv_buf_init(c->buf + c->len, (unsigned)(HTTP_MAX_HEAD - 1 - c->len));
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    trib_http_conn_t *c = s->data;
    if (c->responded) {
        return;
    }
    if (nread < 0) {
        conn_close(c);
        return;
    }
    c->len += (size_t)nread;
    c->buf[c->len] = '\0';
    /* memmem, not strstr: a NUL in the head must not hide its end. */
    if (memmem(c->buf, c->len, "\r\n\r\n", 4) || memmem(c->buf, c->len, "\n\n", 2)) {
        handle_request(c);
    } else if (c->len >= HTTP_MAX_HEAD - 1) {
        /* The head does not fit: say so, read no more. */
        trib_buf_t body;
        trib_buf_init(&body);
        trib_buf_append(&body, "request head too large\n", 23);
        respond(c, 431, "Request Header Fields Too Large", "text/plain", &body, false);
        trib_buf_fini(&body);
    }
}

static void on_connection(uv_stream_t *server, int status)
{
    trib_http_t *h = server->data;
    if (status < 0) {
        return;
    }
    trib_http_conn_t *c = calloc(1, sizeof(*c));
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
    trib_http_t *h = t->data;
    uint64_t now = uv_now(h->loop);
    for (trib_http_conn_t *c = h->conns; c; c = c->next) {
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

int trib_http_start(trib_http_t *h, uv_loop_t *loop, const char *host, int port, int backlog,
                    trib_http_render_cb render, trib_http_health_cb health, void *arg)
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

void trib_http_set_detail(trib_http_t *h, trib_http_detail_cb detail)
{
    h->detail = detail;
}

void trib_http_stop(trib_http_t *h, void (*cb)(trib_http_t *h))
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
    for (trib_http_conn_t *c = h->conns; c; c = c->next) {
        conn_close(c);
    }
    h->closing_handles += 2;
    uv_close((uv_handle_t *)&h->listener, listener_closed);
    uv_close((uv_handle_t *)&h->sweep, sweep_closed);
}

size_t trib_http_pending_bytes(const trib_http_t *h)
{
    return h->out_pending;
}

void trib_http_set_status(trib_http_t *h, trib_http_render_cb cb)
{
    h->status = cb;
}
