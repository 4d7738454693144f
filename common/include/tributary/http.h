/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A minimal HTTP endpoint on a libuv loop for metrics and health checks:
 *
 *   GET /metrics  text/plain; version=0.0.4 (the render callback's body)
 *   GET /health   200 "ok" while healthy; 200 "degraded" followed by one
 *                 line per degraded part when a detail callback reports
 *                 any (trib_http_set_detail); 503 with the reason when not
 *                 healthy
 *   GET /status   text/plain, when a status callback is set
 *   a route's     the route callback's answer, with its content type
 *                 (trib_http_set_route), when it has one
 *   anything else the admin callback's answer if it has one, else 404;
 *   one request per connection (Connection: close); a request body is
 *   not read (admin requests carry their parameters in the query string)
 *
 * It serves the collector and the agent. The struct is embedded by the
 * caller; its fields are private.
 */
#ifndef TRIBUTARY_HTTP_H
#define TRIBUTARY_HTTP_H

#include <stdbool.h>

#include <uv.h>

#include "tributary/buf.h"

typedef struct trib_http trib_http_t;
/* Fills b with the /metrics body. */
typedef void (*trib_http_render_cb)(void *arg, trib_buf_t *b);
/* True when healthy; otherwise may append why (lines of text) to `why`. */
typedef bool (*trib_http_health_cb)(void *arg, trib_buf_t *why);
/* Appends a line per degraded part to b; true when there is none. */
typedef bool (*trib_http_detail_cb)(void *arg, trib_buf_t *b);
/*
 * Other requests (method, target with its query string, whether the peer
 * is a loopback address): returns an HTTP status and fills body (text), or
 * 0 when the target is not the callback's.
 */
typedef int (*trib_http_admin_cb)(void *arg, const char *method, const char *target, bool loopback,
                                  trib_buf_t *body);
/*
 * A route with its own content type (the collector's console, /ui/ and
 * /api/v1/): consulted before the admin callback. Returns an HTTP status
 * and fills body and *ctype (a static string), or 0 when the target is not
 * the route's. HEAD gets the same head without the body.
 */
typedef int (*trib_http_route_cb)(void *arg, const char *method, const char *target,
                                  trib_buf_t *body, const char **ctype);

struct trib_http {
    uv_tcp_t listener;
    uv_timer_t sweep; /* closes connections that dawdle */
    bool open;
    uv_loop_t *loop;
    trib_http_render_cb render;
    trib_http_health_cb health;
    trib_http_detail_cb detail; /* optional */
    trib_http_render_cb status; /* optional: GET /status */
    void *arg;
    trib_http_admin_cb admin;
    void *admin_arg;
    trib_http_route_cb route;
    void *route_arg;
    struct trib_http_conn *conns;
    size_t out_pending; /* bytes of responses queued and not yet sent or dropped */
    int port;
    int closing_handles;
    void (*closed_cb)(trib_http_t *h);
};

/* Binds host:port (port 0: ephemeral; the bound port lands in h->port). */
int trib_http_start(trib_http_t *h, uv_loop_t *loop, const char *host, int port, int backlog,
                    trib_http_render_cb render, trib_http_health_cb health, void *arg);
/* Sets (or clears, with NULL) the detail callback /health consults when healthy. */
void trib_http_set_detail(trib_http_t *h, trib_http_detail_cb detail);
/* Sets (or with NULL clears) the callback for other requests. */
void trib_http_set_admin(trib_http_t *h, trib_http_admin_cb cb, void *arg);
/* Sets (or with NULL clears) the route callback. */
void trib_http_set_route(trib_http_t *h, trib_http_route_cb cb, void *arg);
/* Sets (or clears, with NULL) the body of GET /status. */
void trib_http_set_status(trib_http_t *h, trib_http_render_cb cb);
/* Bytes of responses still being written to (slow) readers. */
size_t trib_http_pending_bytes(const trib_http_t *h);
/* Closes the listener and every connection; cb once all handles are closed. */
void trib_http_stop(trib_http_t *h, void (*cb)(trib_http_t *h));

#endif
