/* SPDX-License-Identifier: Apache-2.0 */
/* The Prometheus text format and the /metrics + /health HTTP endpoint. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tributary/buf.h"
#include "tributary/http.h"
#include "tributary/prom.h"

/* ---- the endpoint ----------------------------------------------------------------------- */

typedef struct http_fx {
    uv_loop_t loop;
    trib_http_t http;
    uv_async_t done;
    bool healthy;
    int stopped;
    char replies[4][2048];
} http_fx_t;

static void render(void *arg, trib_buf_t *b)
{
    (void)arg;
    trib_prom_sample_u64(b, "tributary_test_metric", NULL, 42);
}

static bool health(void *arg, trib_buf_t *why)
{
    if (!((http_fx_t *)arg)->healthy) {
        trib_buf_append(why, "the disk is full\n", 17);
        return false;
    }
    return true;
}

static void get(int port, const char *req, char *out, size_t outlen)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    out[0] = '\0';
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return;
    }
    send(fd, req, strlen(req), MSG_NOSIGNAL);
    size_t have = 0;
    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 5000) <= 0) {
            break;
        }
        ssize_t r = recv(fd, out + have, outlen - 1 - have, 0);
        if (r <= 0) {
            break;
        }
        have += (size_t)r;
    }
    out[have] = '\0';
    close(fd);
}

static void *client(void *arg)
{
    http_fx_t *f = arg;
    get(f->http.port, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", f->replies[0], 2048);
    get(f->http.port, "GET /health HTTP/1.0\r\n\r\n", f->replies[1], 2048);
    f->healthy = false;
    get(f->http.port, "GET /health HTTP/1.0\r\n\r\n", f->replies[2], 2048);
    get(f->http.port, "POST /metrics HTTP/1.0\r\n\r\n", f->replies[3], 2048);
    /* An endless header is cut off without an answer. */
    char big[10000];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    char sink[64];
    get(f->http.port, big, sink, sizeof(sink));
    uv_async_send(&f->done);
    return NULL;
}

static void stopped(trib_http_t *h)
{
    http_fx_t *f = (http_fx_t *)((char *)h - offsetof(http_fx_t, http));
    f->stopped = 1;
}

static void on_done(uv_async_t *a)
{
    http_fx_t *f = a->data;
    uv_close((uv_handle_t *)a, NULL);
    trib_http_stop(&f->http, stopped);
}

static void test_endpoint(void **state)
{
    (void)state;
    http_fx_t f;
    memset(&f, 0, sizeof(f));
    f.healthy = true;
    assert_int_equal(uv_loop_init(&f.loop), 0);
    assert_int_equal(trib_http_start(&f.http, &f.loop, "127.0.0.1", 0, 16, render, health, &f), 0);
    assert_true(f.http.port > 0);
    uv_async_init(&f.loop, &f.done, on_done);
    f.done.data = &f;
    pthread_t th;
    pthread_create(&th, NULL, client, &f);
    uv_run(&f.loop, UV_RUN_DEFAULT);
    pthread_join(th, NULL);
    assert_true(f.stopped);
    assert_int_equal(uv_loop_close(&f.loop), 0);
    assert_non_null(strstr(f.replies[0], "HTTP/1.1 200 OK\r\n"));
    assert_non_null(strstr(f.replies[0], "text/plain; version=0.0.4"));
    assert_non_null(strstr(f.replies[0], "\r\n\r\ntributary_test_metric 42\n"));
    assert_non_null(strstr(f.replies[1], "200 OK"));
    assert_non_null(strstr(f.replies[1], "\r\n\r\nok\n"));
    assert_non_null(strstr(f.replies[2], "503"));
    assert_non_null(strstr(f.replies[2], "\r\n\r\nthe disk is full\n"));
    assert_non_null(strstr(f.replies[3], "405"));
}

/* The admin callback: asked for other targets, told the peer is on loopback. */
typedef struct admin_fx {
    http_fx_t base;
    char method[16], target[256];
    int calls;
    bool loopback;
} admin_fx_t;

static int admin(void *arg, const char *method, const char *target, bool loopback, trib_buf_t *body)
{
    admin_fx_t *a = arg;
    if (strncmp(target, "/sinks/", 7) != 0) {
        return 0;
    }
    a->calls++;
    snprintf(a->method, sizeof(a->method), "%s", method);
    snprintf(a->target, sizeof(a->target), "%s", target);
    a->loopback = loopback;
    trib_buf_append(body, "moved\n", 6);
    return 409;
}

static void *admin_client(void *arg)
{
    admin_fx_t *a = arg;
    http_fx_t *f = &a->base;
    get(f->http.port, "POST /sinks/pg/replay?to=earliest HTTP/1.1\r\nHost: x\r\n\r\n",
        f->replies[0], 2048);
    get(f->http.port, "GET /elsewhere HTTP/1.0\r\n\r\n", f->replies[1], 2048);
    get(f->http.port, "GET /metrics HTTP/1.0\r\n\r\n", f->replies[2], 2048);
    uv_async_send(&f->done);
    return NULL;
}

static void test_admin(void **state)
{
    (void)state;
    admin_fx_t a;
    memset(&a, 0, sizeof(a));
    http_fx_t *f = &a.base;
    f->healthy = true;
    assert_int_equal(uv_loop_init(&f->loop), 0);
    assert_int_equal(trib_http_start(&f->http, &f->loop, "127.0.0.1", 0, 16, render, health, f), 0);
    trib_http_set_admin(&f->http, admin, &a);
    uv_async_init(&f->loop, &f->done, on_done);
    f->done.data = f;
    pthread_t th;
    pthread_create(&th, NULL, admin_client, &a);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    pthread_join(th, NULL);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    assert_int_equal(a.calls, 1);
    assert_string_equal(a.method, "POST");
    assert_string_equal(a.target, "/sinks/pg/replay?to=earliest");
    assert_true(a.loopback);
    assert_non_null(strstr(f->replies[0], "HTTP/1.1 409 Conflict\r\n"));
    assert_non_null(strstr(f->replies[0], "\r\n\r\nmoved\n"));
    assert_non_null(strstr(f->replies[1], "404"));
    assert_non_null(strstr(f->replies[2], "\r\n\r\ntributary_test_metric 42\n"));
}

/* A route answers with its own content type, before the admin callback; /metrics stays fixed. */
static int route(void *arg, const char *method, const char *target, trib_buf_t *body,
                 const char **ctype)
{
    (void)method;
    admin_fx_t *a = arg;
    if (strncmp(target, "/api/", 5) != 0 && strcmp(target, "/metrics") != 0) {
        return 0;
    }
    a->calls++;
    *ctype = "application/json";
    trib_buf_append(body, "{\"ok\":true}", 11);
    return 200;
}

static void *route_client(void *arg)
{
    admin_fx_t *a = arg;
    http_fx_t *f = &a->base;
    get(f->http.port, "GET /api/v1/x HTTP/1.1\r\nHost: x\r\n\r\n", f->replies[0], 2048);
    get(f->http.port, "HEAD /api/v1/x HTTP/1.0\r\n\r\n", f->replies[1], 2048);
    get(f->http.port, "POST /sinks/pg/replay?to=earliest HTTP/1.0\r\n\r\n", f->replies[2], 2048);
    get(f->http.port, "GET /metrics HTTP/1.0\r\n\r\n", f->replies[3], 2048);
    uv_async_send(&f->done);
    return NULL;
}

static void test_route(void **state)
{
    (void)state;
    admin_fx_t a;
    memset(&a, 0, sizeof(a));
    http_fx_t *f = &a.base;
    f->healthy = true;
    assert_int_equal(uv_loop_init(&f->loop), 0);
    assert_int_equal(trib_http_start(&f->http, &f->loop, "127.0.0.1", 0, 16, render, health, f), 0);
    trib_http_set_admin(&f->http, admin, &a);
    trib_http_set_route(&f->http, route, &a);
    uv_async_init(&f->loop, &f->done, on_done);
    f->done.data = f;
    pthread_t th;
    pthread_create(&th, NULL, route_client, &a);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    pthread_join(th, NULL);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    assert_non_null(strstr(f->replies[0], "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"));
    assert_non_null(strstr(f->replies[0], "\r\n\r\n{\"ok\":true}"));
    assert_non_null(strstr(f->replies[1], "Content-Length: 11\r\n"));
    assert_null(strstr(f->replies[1], "{\"ok\""));
    assert_non_null(strstr(f->replies[2], "409"));
    assert_non_null(strstr(f->replies[3], "\r\n\r\ntributary_test_metric 42\n"));
    assert_int_equal(a.calls, 3); /* two routed requests and the admin's */
}

static void test_bind_failure(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    trib_http_t h;
    assert_int_not_equal(trib_http_start(&h, &loop, "not-an-ip", 0, 16, render, health, NULL), 0);
    trib_http_t h2;
    assert_int_not_equal(trib_http_start(&h2, &loop, "192.0.2.1", 1, 16, render, health, NULL), 0);
    int done = 0;
    (void)done;
    trib_http_stop(&h2, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_endpoint),
        cmocka_unit_test(test_admin),
        cmocka_unit_test(test_route),
        cmocka_unit_test(test_bind_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
