/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The sampling inputs, on a timer every `interval`:
 *
 *   metrics     host metrics from /proc and statvfs (hostmetrics/), one
 *               event per sample:
 *               {"@timestamp", "host", "agent", "source": "metrics",
 *                "metric": "cpu.usage_percent", "value": 12.5, "cpu": "total"}
 *   prometheus  a scrape of an exporter (libcurl on the thread pool, so the
 *               loop never waits on the network), one event per sample:
 *               {..., "source": "<url>", "metric", "value", "type", labels…}
 *
 * Labels become fields; one whose name is taken by a fixed field gets a
 * "label_" prefix. A value that is not finite is the string "NaN", "+Inf"
 * or "-Inf". Samples go through the disk buffer; when it is full they are
 * dropped and counted (a sample cannot wait: the next one replaces it).
 */
#include "input/input.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "hostmetrics/hostmetrics.h"
#include "tributary/log.h"

static trib_log_ratelimit_t rl_scrape = TRIB_LOG_RATELIMIT_INIT(60000, 3);

/* A sampling input's state (its impl). */
typedef struct agent_sample {
    uv_timer_t *timer; /* heap: freed by its close callback */
    struct agent_hostmetrics *hm;
    struct agent_scrape *scrape; /* a scrape running on the thread pool */
} agent_sample_t;

static agent_sample_t *sample_of(agent_input_t *in)
{
    return in->impl;
}

/* JSON text of a sample value; *raw false when it is a string. */
static size_t format_value(double v, char out[40], bool *raw)
{
    *raw = true;
    if (isnan(v)) {
        *raw = false;
        return (size_t)snprintf(out, 40, "NaN");
    }
    if (isinf(v)) {
        *raw = false;
        return (size_t)snprintf(out, 40, "%s", v > 0 ? "+Inf" : "-Inf");
    }
    if (v == floor(v) && fabs(v) < 1e15) {
        return (size_t)snprintf(out, 40, "%.0f", v);
    }
    int n = snprintf(out, 40, "%.15g", v);
    if (strtod(out, NULL) != v) {
        n = snprintf(out, 40, "%.17g", v);
    }
    return (size_t)n;
}

static const char *const fixed_fields[] = {"@timestamp", "host", "agent",   "source", "metric",
                                           "value",      "type", "message", NULL};

/* Adds a label as a field, renamed "label_<name>" when the name is taken. */
static void add_label(agent_event_t *ev, const char *name, size_t nlen, const char *val,
                      size_t vlen, char *namebuf, size_t namecap)
{
    for (const char *const *f = fixed_fields; *f != NULL; f++) {
        if (strlen(*f) == nlen && memcmp(*f, name, nlen) == 0) {
            int n = snprintf(namebuf, namecap, "label_%.*s", (int)nlen, name);
            if (n < 0 || (size_t)n >= namecap) {
                return;
            }
            name = namebuf;
            nlen = (size_t)n;
            break;
        }
    }
    (void)agent_event_set(ev, name, nlen, val, vlen, false);
}

static void submit(agent_input_t *in, agent_event_t *ev, const char *source)
{
    agent_input_host_t *h = in->host;
    int rc = h->spool(h->arg, in, ev, source);
    if (rc == -EAGAIN) {
        h->st->drop_buffer_full++;
    }
}

typedef struct hm_ctx {
    agent_input_t *in;
    int64_t ts_ms;
} hm_ctx_t;

static void hm_emit(void *ud, const agent_hm_sample_t *s)
{
    hm_ctx_t *x = ud;
    agent_input_host_t *h = x->in->host;
    agent_event_t ev;
    if (agent_event_begin(&ev, x->in->pl, x->in->conf, x->ts_ms, "metrics", 7, false, NULL, 0,
                          4096) != 0) {
        return;
    }
    char num[40];
    bool raw;
    size_t nn = format_value(s->value, num, &raw);
    (void)agent_event_set(&ev, "metric", 6, s->metric, strlen(s->metric), false);
    (void)agent_event_set(&ev, "value", 5, num, nn, raw);
    char names[AGENT_HM_MAX_LABELS][80];
    for (size_t i = 0; i < s->nlabels && i < AGENT_HM_MAX_LABELS; i++) {
        add_label(&ev, s->labels[i].name, strlen(s->labels[i].name), s->labels[i].value,
                  strlen(s->labels[i].value), names[i], sizeof(names[i]));
    }
    h->st->metrics_samples++;
    submit(x->in, &ev, "metrics");
}

/* ---------------------------------------------------------------------- */
/* Prometheus scrapes on the thread pool                                  */

typedef struct agent_scrape {
    uv_work_t req;
    agent_input_t *in; /* NULL once the input is gone (the job frees itself) */
    char *url;
    int64_t timeout_ms;
    size_t max_bytes;
    char *body;
    size_t len;
    int rc;
    int64_t ts_ms;
    char err[256];
} agent_scrape_t;

static void scrape_work(uv_work_t *req)
{
    agent_scrape_t *j = req->data;
    j->rc = agent_prom_scrape(j->url, j->timeout_ms, j->max_bytes, &j->body, &j->len, j->err,
                              sizeof(j->err));
}

typedef struct prom_ctx {
    agent_input_t *in;
    int64_t ts_ms;
} prom_ctx_t;

static void prom_emit(void *ud, const agent_prom_sample_t *s)
{
    prom_ctx_t *x = ud;
    agent_input_t *in = x->in;
    agent_input_host_t *h = in->host;
    agent_event_t ev;
    if (agent_event_begin(&ev, in->pl, in->conf, s->has_ts ? s->ts_ms : x->ts_ms, in->conf->url,
                          strlen(in->conf->url), false, NULL, 0, 4096) != 0) {
        return;
    }
    char num[40];
    bool raw;
    size_t nn = format_value(s->value, num, &raw);
    (void)agent_event_set(&ev, "metric", 6, s->name, s->name_len, false);
    (void)agent_event_set(&ev, "value", 5, num, nn, raw);
    if (s->type != NULL) {
        (void)agent_event_set(&ev, "type", 4, s->type, strlen(s->type), false);
    }
    char names[AGENT_PROM_MAX_LABELS][80];
    for (size_t i = 0; i < s->nlabels && i < AGENT_PROM_MAX_LABELS; i++) {
        add_label(&ev, s->labels[i].name, s->labels[i].nlen, s->labels[i].value, s->labels[i].vlen,
                  names[i], sizeof(names[i]));
    }
    h->st->scrape_samples++;
    submit(in, &ev, in->conf->url);
}

static void scrape_done(uv_work_t *req, int status)
{
    agent_scrape_t *j = req->data;
    agent_input_t *in = j->in;
    if (in != NULL) {
        sample_of(in)->scrape = NULL;
        agent_input_host_t *h = in->host;
        h->st->scrapes++;
        if (status != 0 || j->rc != 0) {
            h->st->scrape_errors++;
            TRIB_LOG_RL(&rl_scrape, TRIB_LOG_WARN, "prometheus",
                        "input %s: scrape of %s failed: %s", in->conf->id, j->url,
                        status != 0 ? uv_strerror(status) : j->err);
        } else if (h->running(h->arg)) {
            prom_ctx_t x = {in, j->ts_ms};
            long bad = agent_prom_parse(j->body, j->len, prom_emit, &x);
            if (bad > 0) {
                h->st->scrape_bad_lines += (uint64_t)bad;
            } else if (bad < 0) {
                h->st->scrape_errors++;
            }
        }
    }
    free(j->body);
    free(j->url);
    free(j);
}

static void start_scrape(agent_input_t *in)
{
    if (sample_of(in)->scrape != NULL) {
        return; /* the last one is still running: skip this round */
    }
    agent_scrape_t *j = calloc(1, sizeof(*j));
    if (j == NULL) {
        return;
    }
    j->url = strdup(in->conf->url);
    if (j->url == NULL) {
        free(j);
        return;
    }
    j->in = in;
    j->timeout_ms = in->conf->timeout_ms;
    j->max_bytes = in->conf->max_body_bytes;
    j->ts_ms = agent_wall_ms();
    j->req.data = j;
    if (uv_queue_work(in->host->loop, &j->req, scrape_work, scrape_done) != 0) {
        free(j->url);
        free(j);
        return;
    }
    sample_of(in)->scrape = j;
}

/* ---------------------------------------------------------------------- */

static void timer_cb(uv_timer_t *t)
{
    agent_input_t *in = t->data;
    agent_input_host_t *h = in->host;
    if (!h->running(h->arg)) {
        return;
    }
    if (in->conf->type == AGENT_INPUT_PROMETHEUS) {
        start_scrape(in);
        return;
    }
    hm_ctx_t x = {in, agent_wall_ms()};
    uint64_t errs = agent_hostmetrics_errors(sample_of(in)->hm);
    (void)agent_hostmetrics_collect(sample_of(in)->hm, (int64_t)uv_now(h->loop), hm_emit, &x);
    h->st->metrics_errors += agent_hostmetrics_errors(sample_of(in)->hm) - errs;
}

static int agent_sample_input_start(agent_input_t *in)
{
    agent_input_host_t *h = in->host;
    agent_input_conf_t *c = in->conf;
    if (c->type == AGENT_INPUT_METRICS) {
        const char *root = c->root != NULL && strcmp(c->root, "/") != 0 ? c->root : NULL;
        int rc = agent_hostmetrics_new(&sample_of(in)->hm, c->collector_mask, root);
        if (rc != 0) {
            TRIB_LOG(TRIB_LOG_ERROR, "metrics", "input %s: cannot start: %s", c->id,
                     trib_strerror(rc));
            return rc;
        }
    }
    sample_of(in)->timer = malloc(sizeof(*sample_of(in)->timer));
    if (sample_of(in)->timer == NULL) {
        return -ENOMEM;
    }
    uv_timer_init(h->loop, sample_of(in)->timer);
    sample_of(in)->timer->data = in;
    /* the first sample at once (metrics: a baseline for rates), then every interval */
    uv_timer_start(sample_of(in)->timer, timer_cb, 0, (uint64_t)c->interval_ms);
    return 0;
}

static void timer_closed(uv_handle_t *h)
{
    free(h);
}

static void agent_sample_input_stop(agent_input_t *in)
{
    if (sample_of(in)->timer != NULL) {
        uv_close((uv_handle_t *)sample_of(in)->timer, timer_closed);
        sample_of(in)->timer = NULL;
    }
    if (sample_of(in)->scrape != NULL) {
        sample_of(in)->scrape->in = NULL; /* it frees itself when the thread pool is done with it */
        sample_of(in)->scrape = NULL;
    }
    agent_hostmetrics_free(sample_of(in)->hm);
    sample_of(in)->hm = NULL;
}

static int sample_init(agent_input_t *in)
{
    in->impl = calloc(1, sizeof(agent_sample_t));
    return in->impl != NULL ? 0 : -ENOMEM;
}

static void sample_stop(agent_input_t *in, bool keep)
{
    (void)keep;
    agent_sample_input_stop(in);
}

static void sample_fini(agent_input_t *in)
{
    free(in->impl);
    in->impl = NULL;
}

const agent_input_ops_t agent_sample_ops = {
    .name = "metrics",
    .init = sample_init,
    .start = agent_sample_input_start,
    .stop = sample_stop,
    .fini = sample_fini,
};
