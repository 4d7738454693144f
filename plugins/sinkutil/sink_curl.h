/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A libcurl POST shared by the HTTP-speaking sinks (clickhouse, http),
 * compiled into each of them: one easy handle per instance (kept-alive
 * connection), the response body kept for error messages and parsing,
 * and the outcome classified the way the host wants it:
 *
 *   transport errors, timeouts, 408, 429 and 5xx   RETRY
 *   other 4xx                                      REJECT
 *   2xx                                            OK
 */
#ifndef TRIB_SINK_CURL_H
#define TRIB_SINK_CURL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sinkutil.h"

typedef struct sink_curl {
    void *easy;      /* CURL * */
    void *headers;   /* struct curl_slist * */
    sink_str_t body; /* the last response */
    long status;     /* the last HTTP status, 0 on a transport error */
    char error[256]; /* the last transport error */
} sink_curl_t;

typedef struct sink_curl_opts {
    const char *user; /* NULL: no basic auth */
    const char *password;
    int64_t timeout_ms;
    int64_t connect_timeout_ms;
    bool tls_verify;
    const char *content_type;
} sink_curl_opts_t;

/* 0 or -ENOMEM; initialises libcurl once per process. */
int sink_curl_init(sink_curl_t *c, const sink_curl_opts_t *o);
void sink_curl_fini(sink_curl_t *c);

/* POSTs body to url; fills status/body/error. Returns the classification. */
trib_sink_status_t sink_curl_post(sink_curl_t *c, const char *url, const char *body, size_t len);

/* A URL-escaped copy of s appended to out. */
void sink_curl_escape(sink_curl_t *c, sink_str_t *out, const char *s);

/* "HTTP 500: <first line of the body>" or the transport error, into msg. */
void sink_curl_describe(const sink_curl_t *c, char *msg, size_t len);

#endif
