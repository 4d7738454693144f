/* SPDX-License-Identifier: Apache-2.0 */
/* The libcurl POST of the HTTP-speaking sinks; see sink_curl.h. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <curl/curl.h>

#include "sink_curl.h"

static pthread_once_t sink_curl_once = PTHREAD_ONCE_INIT;
static CURLcode sink_curl_global;

static void global_init(void)
{
    /* Never cleaned up: the loader keeps plugins loaded (RTLD_NODELETE). */
    sink_curl_global = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    sink_curl_t *c = arg;
    size_t len = size * n;
    if (c->body.len < (4u << 20)) { /* keep at most 4 MiB of a response */
        sink_str_append(&c->body, p, len);
    }
    return len;
}

int sink_curl_init(sink_curl_t *c, const sink_curl_opts_t *o)
{
    memset(c, 0, sizeof(*c));
    pthread_once(&sink_curl_once, global_init);
    if (sink_curl_global != CURLE_OK) {
        return -EINVAL;
    }
    CURL *e = curl_easy_init();
    if (!e) {
        return -ENOMEM;
    }
    c->easy = e;
    char ct[128];
    snprintf(ct, sizeof(ct), "Content-Type: %s",
             o->content_type ? o->content_type : "application/x-ndjson");
    struct curl_slist *h = curl_slist_append(NULL, ct);
    h = h ? curl_slist_append(h, "Expect:") : NULL; /* no 100-continue round trip */
    if (!h) {
        curl_easy_cleanup(e);
        c->easy = NULL;
        return -ENOMEM;
    }
    c->headers = h;
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)o->timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)o->connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, c->error);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
    if (!o->tls_verify) {
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (o->user && *o->user) {
        curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(e, CURLOPT_USERNAME, o->user);
        curl_easy_setopt(e, CURLOPT_PASSWORD, o->password ? o->password : "");
    }
    sink_str_init(&c->body);
    return 0;
}

void sink_curl_fini(sink_curl_t *c)
{
    if (c->easy) {
        curl_easy_cleanup(c->easy);
    }
    curl_slist_free_all(c->headers);
    sink_str_fini(&c->body);
    memset(c, 0, sizeof(*c));
}

trib_sink_status_t sink_curl_post(sink_curl_t *c, const char *url, const char *body, size_t len)
{
    CURL *e = c->easy;
    sink_str_reset(&c->body);
    c->error[0] = '\0';
    c->status = 0;
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    CURLcode rc = curl_easy_perform(e);
    if (rc != CURLE_OK) {
        if (!c->error[0]) {
            snprintf(c->error, sizeof(c->error), "%s", curl_easy_strerror(rc));
        }
        return TRIB_SINK_RETRY;
    }
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &c->status);
    if (c->status >= 200 && c->status < 300) {
        return TRIB_SINK_OK;
    }
    if (c->status == 408 || c->status == 429 || c->status >= 500 || c->status < 200) {
        return TRIB_SINK_RETRY;
    }
    return TRIB_SINK_REJECT;
}

void sink_curl_escape(sink_curl_t *c, sink_str_t *out, const char *s)
{
    char *e = curl_easy_escape(c->easy, s, (int)strlen(s));
    if (!e) {
        out->err = -ENOMEM;
        return;
    }
    sink_str_puts(out, e);
    curl_free(e);
}

void sink_curl_describe(const sink_curl_t *c, char *msg, size_t len)
{
    if (c->status == 0) {
        snprintf(msg, len, "%s", c->error[0] ? c->error : "transport error");
        return;
    }
    size_t n = c->body.len;
    const char *b = c->body.p ? c->body.p : "";
    const char *nl = memchr(b, '\n', n);
    if (nl) {
        n = (size_t)(nl - b);
    }
    if (n > 300) {
        n = 300;
    }
    snprintf(msg, len, "HTTP %ld: %.*s", c->status, (int)n, b);
}
