/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The output: librdkafka's producer, its delivery reports handed back to
 * each message's owner, the in-flight budget, the producer's health, and
 * the dry run's printer. See output.h for the delivery contract.
 */
#include "output/output.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#include "tributary/log.h"

/* Bytes counted per in-flight message besides its value and key. */
#define AGENT_MSG_OVERHEAD 320
/* Fixed topics whose librdkafka handles are kept (saves a lookup per message). */
#define AGENT_OUTPUT_MAX_TOPICS 64

struct agent_output {
    agent_stats_t *st;
    bool dry_run;
    FILE *dry_out;
    agent_sbuf_t line; /* the dry run's printed message */
    agent_room_cb room;
    void *room_arg;
    struct {
        agent_ack_cb cb;
        void *arg;
    } owners[AGENT_OUTPUT_MAX_OWNERS];
    unsigned nowners;
    rd_kafka_t *rk;
    struct {
        char *name;
        const char *seen; /* the caller's string last found equal to it */
        rd_kafka_topic_t *rkt;
    } topics[AGENT_OUTPUT_MAX_TOPICS];
    size_t ntopics;
    uint64_t inflight_msgs, inflight_bytes, max_inflight;
    bool refused;              /* a sender was refused for lack of room: call room() */
    bool stopping;             /* reports that fail now are UNSENT */
    bool fatal;                /* a fatal producer error: rebuild */
    uint64_t test_fatal_after; /* TRIB_AGENT_TEST_FATAL_AFTER: a test hook */
    /* the last acknowledgement, or when messages started waiting; when
       librdkafka said all brokers were down (0: not since the last
       acknowledgement); wall clock ms */
    int64_t progress_ms;
    int64_t brokers_down_ms;
    char last_error[256];
};

static trib_log_ratelimit_t rl_produce = TRIB_LOG_RATELIMIT_INIT(10000, 5);

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME_COARSE, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int agent_output_new(agent_output_t **out, agent_stats_t *st, bool dry_run, FILE *dry_out,
                     agent_room_cb room, void *room_arg)
{
    agent_output_t *o = calloc(1, sizeof(*o));
    *out = o;
    if (o == NULL) {
        return -ENOMEM;
    }
    o->st = st;
    o->dry_run = dry_run;
    o->dry_out = dry_out;
    o->room = room;
    o->room_arg = room_arg;
    const char *tf = getenv("TRIB_AGENT_TEST_FATAL_AFTER");
    if (tf != NULL) {
        o->test_fatal_after = strtoull(tf, NULL, 10);
    }
    return 0;
}

static void destroy_producer(agent_output_t *o)
{
    for (size_t i = 0; i < o->ntopics; i++) {
        rd_kafka_topic_destroy(o->topics[i].rkt);
        free(o->topics[i].name);
    }
    o->ntopics = 0;
    if (o->rk != NULL) {
        rd_kafka_destroy(o->rk);
        o->rk = NULL;
    }
}

void agent_output_free(agent_output_t *o)
{
    if (o == NULL) {
        return;
    }
    destroy_producer(o);
    agent_sbuf_fini(&o->line);
    free(o);
}

unsigned agent_output_owner(agent_output_t *o, agent_ack_cb cb, void *arg)
{
    unsigned id = o->nowners++;
    o->owners[id].cb = cb;
    o->owners[id].arg = arg;
    return id;
}

/* ---------------------------------------------------------------------- */
/* Producing                                                              */

static rd_kafka_topic_t *topic_handle(agent_output_t *o, const char *name)
{
    for (size_t i = 0; i < o->ntopics; i++) {
        if (o->topics[i].seen == name) {
            return o->topics[i].rkt; /* a fixed topic: the same string every time */
        }
    }
    for (size_t i = 0; i < o->ntopics; i++) {
        if (strcmp(o->topics[i].name, name) == 0) {
            o->topics[i].seen = name;
            return o->topics[i].rkt;
        }
    }
    if (o->ntopics == AGENT_OUTPUT_MAX_TOPICS) {
        return NULL;
    }
    char *n = strdup(name);
    rd_kafka_topic_t *rkt = n != NULL ? rd_kafka_topic_new(o->rk, name, NULL) : NULL;
    if (rkt == NULL) {
        free(n);
        return NULL;
    }
    o->topics[o->ntopics].name = n;
    o->topics[o->ntopics].seen = name;
    o->topics[o->ntopics++].rkt = rkt;
    return rkt;
}

void agent_output_topic(agent_output_t *o, const char *topic)
{
    if (o->rk != NULL) {
        (void)topic_handle(o, topic);
    }
}

bool agent_output_full(agent_output_t *o)
{
    if (o->dry_run || o->inflight_bytes < o->max_inflight) {
        return false;
    }
    o->refused = true;
    return true;
}

static void sent(agent_output_t *o, const agent_msg_t *m)
{
    if (o->inflight_msgs++ == 0) {
        o->progress_ms = wall_ms(); /* waiting starts now */
    }
    o->inflight_bytes += m->value_len + m->key_len + AGENT_MSG_OVERHEAD;
    o->st->events_sent++;
    if (o->test_fatal_after != 0 && o->st->events_sent == o->test_fatal_after) {
        o->test_fatal_after = 0;
        rd_kafka_test_fatal_error(o->rk, RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER,
                                  "TRIB_AGENT_TEST_FATAL_AFTER");
    }
}

static bool is_fatal(agent_output_t *o, rd_kafka_resp_err_t err)
{
    if (err != RD_KAFKA_RESP_ERR__FATAL &&
        rd_kafka_fatal_error(o->rk, NULL, 0) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        return false;
    }
    o->fatal = true;
    return true;
}

int agent_output_produce(agent_output_t *o, const agent_msg_t *m, unsigned owner, uint64_t cookie)
{
    if (o->rk == NULL || o->fatal) {
        return -EAGAIN;
    }
    if (o->inflight_bytes >= o->max_inflight) {
        o->refused = true;
        return -EAGAIN;
    }
    rd_kafka_vu_t vu[8 + AGENT_MSG_MAX_HDRS];
    size_t nv = 0;
    rd_kafka_topic_t *rkt = m->topic_fixed ? topic_handle(o, m->topic) : NULL;
    if (rkt != NULL) {
        vu[nv].vtype = RD_KAFKA_VTYPE_RKT;
        vu[nv++].u.rkt = rkt;
    } else {
        vu[nv].vtype = RD_KAFKA_VTYPE_TOPIC;
        vu[nv++].u.cstr = m->topic;
    }
    vu[nv].vtype = RD_KAFKA_VTYPE_VALUE;
    vu[nv].u.mem.ptr = (void *)m->value;
    vu[nv++].u.mem.size = m->value_len;
    if (m->key != NULL) {
        vu[nv].vtype = RD_KAFKA_VTYPE_KEY;
        vu[nv].u.mem.ptr = (void *)m->key;
        vu[nv++].u.mem.size = m->key_len;
    }
    char names[AGENT_MSG_MAX_HDRS][64];
    for (size_t i = 0; i < m->nhdrs && i < AGENT_MSG_MAX_HDRS; i++) {
        /* librdkafka wants a NUL-terminated name (a buffered record's is not) */
        const char *name = m->hdrs[i].name;
        if (!m->hdr_names_cstr) {
            size_t n =
                m->hdrs[i].nlen < sizeof(names[i]) - 1 ? m->hdrs[i].nlen : sizeof(names[i]) - 1;
            memcpy(names[i], name, n);
            names[i][n] = '\0';
            name = names[i];
        }
        vu[nv].vtype = RD_KAFKA_VTYPE_HEADER;
        vu[nv].u.header.name = name;
        vu[nv].u.header.val = m->hdrs[i].val;
        vu[nv++].u.header.size = (ssize_t)m->hdrs[i].vlen;
    }
    vu[nv].vtype = RD_KAFKA_VTYPE_MSGFLAGS;
    vu[nv++].u.i = RD_KAFKA_MSG_F_COPY;
    vu[nv].vtype = RD_KAFKA_VTYPE_OPAQUE;
    vu[nv++].u.ptr =
        (void *)(uintptr_t)((uint64_t)owner << 56 | (cookie & AGENT_OUTPUT_COOKIE_MASK));
    vu[nv].vtype = RD_KAFKA_VTYPE_TIMESTAMP; /* the sender's time: no clock call per message */
    vu[nv++].u.i64 = m->ts_ms;
    rd_kafka_error_t *kerr = rd_kafka_produceva(o->rk, vu, nv);
    if (kerr == NULL) {
        sent(o, m);
        return 0;
    }
    rd_kafka_resp_err_t err = rd_kafka_error_code(kerr);
    rd_kafka_error_destroy(kerr);
    if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        o->refused = true;
        return -EAGAIN;
    }
    if (is_fatal(o, err)) {
        return -EAGAIN;
    }
    o->st->events_failed++;
    o->st->drop_delivery_permanent++;
    TRIB_LOG_RL(&rl_produce, TRIB_LOG_WARN, "output", "an event for topic %s dropped: %s", m->topic,
                rd_kafka_err2str(err));
    return -EPERM;
}

void agent_output_print(agent_output_t *o, const agent_msg_t *m)
{
    FILE *fp = o->dry_out ? o->dry_out : stdout;
    agent_sbuf_t *line = &o->line;
    line->len = 0;
    agent_sbuf_puts(line, "{\"topic\":\"");
    agent_sbuf_json_str(line, m->topic, m->topic_len);
    agent_sbuf_puts(line, "\",\"key\":");
    if (m->key != NULL) {
        agent_sbuf_putc(line, '"');
        agent_sbuf_json_str(line, m->key, m->key_len);
        agent_sbuf_putc(line, '"');
    } else {
        agent_sbuf_puts(line, "null");
    }
    agent_sbuf_puts(line, ",\"headers\":{");
    for (size_t i = 0; i < m->nhdrs; i++) {
        agent_sbuf_puts(line, i ? ",\"" : "\"");
        agent_sbuf_put(line, m->hdrs[i].name, m->hdrs[i].nlen); /* the agent's own names */
        agent_sbuf_puts(line, "\":\"");
        agent_sbuf_json_str(line, m->hdrs[i].val, m->hdrs[i].vlen);
        agent_sbuf_putc(line, '"');
    }
    agent_sbuf_puts(line, "},\"value\":");
    agent_sbuf_put(line, m->value, m->value_len);
    agent_sbuf_puts(line, "}\n");
    if (!line->err) {
        fwrite(line->p, 1, line->len, fp);
    }
    o->st->events_sent++;
    o->st->events_acked++;
}

/* ---------------------------------------------------------------------- */
/* Delivery reports                                                       */

/* A timed-out message produced again as it was (same opaque): 0 or the error. */
static rd_kafka_resp_err_t requeue(rd_kafka_t *rk, const rd_kafka_message_t *m)
{
    rd_kafka_headers_t *hdrs = NULL;
    if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR && hdrs) {
        hdrs = rd_kafka_headers_copy(hdrs);
    } else {
        hdrs = NULL;
    }
    rd_kafka_resp_err_t e = rd_kafka_producev(
        rk, RD_KAFKA_V_RKT(m->rkt), RD_KAFKA_V_VALUE(m->payload, m->len),
        RD_KAFKA_V_KEY(m->key, m->key_len), RD_KAFKA_V_HEADERS(hdrs),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_OPAQUE(m->_private), RD_KAFKA_V_END);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR && hdrs != NULL) {
        rd_kafka_headers_destroy(hdrs);
    }
    return e;
}

/* The report sorted and counted; -1: produced again (still in flight). */
static int report(agent_output_t *o, rd_kafka_t *rk, const rd_kafka_message_t *m,
                  rd_kafka_resp_err_t *why)
{
    *why = m->err;
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        o->st->events_acked++;
        o->progress_ms = wall_ms();
        if (o->brokers_down_ms != 0) {
            TRIB_LOG(TRIB_LOG_INFO, "output",
                     "brokers reachable again after %lld s down: deliveries resume "
                     "(%llu events in flight)",
                     (long long)((o->progress_ms - o->brokers_down_ms) / 1000),
                     (unsigned long long)o->inflight_msgs);
            o->brokers_down_ms = 0;
        }
        return AGENT_ACK_DELIVERED;
    }
    o->st->delivery_errors++;
    snprintf(o->last_error, sizeof(o->last_error), "%s", rd_kafka_err2str(m->err));
    if (m->err == RD_KAFKA_RESP_ERR__PURGE_QUEUE || m->err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT ||
        o->stopping || rd_kafka_fatal_error(rk, NULL, 0) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        return AGENT_ACK_UNSENT;
    }
    if (m->err == RD_KAFKA_RESP_ERR__MSG_TIMED_OUT) {
        o->st->delivery_retries++;
        *why = requeue(rk, m);
        return *why == RD_KAFKA_RESP_ERR_NO_ERROR ? -1 : AGENT_ACK_EXPIRED;
    }
    o->st->drop_delivery_permanent++;
    return AGENT_ACK_FAILED;
}

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    agent_output_t *o = opaque;
    uint64_t op = (uint64_t)(uintptr_t)m->_private;
    unsigned owner = (unsigned)(op >> 56);
    rd_kafka_resp_err_t why;
    int status = report(o, rk, m, &why);
    if (status < 0) {
        return;
    }
    /* the message left librdkafka: its bytes leave the budget */
    size_t cost = m->len + m->key_len + AGENT_MSG_OVERHEAD;
    o->inflight_bytes = o->inflight_bytes >= cost ? o->inflight_bytes - cost : 0;
    o->inflight_msgs--;
    if (owner < o->nowners) {
        o->owners[owner].cb(o->owners[owner].arg, op & AGENT_OUTPUT_COOKIE_MASK, status,
                            status == AGENT_ACK_DELIVERED ? "" : rd_kafka_err2str(why));
    }
    if (o->refused && o->inflight_bytes < o->max_inflight / 2) {
        o->refused = false;
        o->room(o->room_arg);
    }
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    agent_output_t *o = opaque;
    static trib_log_ratelimit_t rl = TRIB_LOG_RATELIMIT_INIT(10000, 5);
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char buf[512];
        rd_kafka_fatal_error(rk, buf, sizeof(buf));
        TRIB_LOG(TRIB_LOG_ERROR, "output",
                 "fatal producer error: %s; the producer is rebuilt and reading resumes at "
                 "the checkpoints",
                 buf);
        o->fatal = true;
        return;
    }
    snprintf(o->last_error, sizeof(o->last_error), "%s", reason);
    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
        if (o->brokers_down_ms == 0) {
            o->brokers_down_ms = wall_ms();
            TRIB_LOG(TRIB_LOG_WARN, "output",
                     "all brokers are down: events wait (files at their checkpoints, the rest "
                     "in the disk buffer) until one is reachable");
        }
        return;
    }
    /* librdkafka logs these itself (log_cb, facility FAIL and the like):
       the error callback would say the same thing a second time */
    if (err == RD_KAFKA_RESP_ERR__TRANSPORT || err == RD_KAFKA_RESP_ERR__RESOLVE ||
        err == RD_KAFKA_RESP_ERR__SSL || err == RD_KAFKA_RESP_ERR__AUTHENTICATION) {
        return;
    }
    TRIB_LOG_RL(&rl, TRIB_LOG_WARN, "output", "%s: %s", rd_kafka_err2name(err), reason);
}

static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    /* syslog levels; librdkafka logs a refused connection at 3 (LOG_ERR),
       which is routine while a collector restarts: a warning here */
    trib_log_level_t l = level <= 2   ? TRIB_LOG_ERROR
                         : level <= 4 ? TRIB_LOG_WARN
                         : level <= 6 ? TRIB_LOG_INFO
                                      : TRIB_LOG_DEBUG;
    TRIB_LOG(l, "librdkafka", "%s: %s", fac, buf);
}

/* ---------------------------------------------------------------------- */
/* The producer                                                           */

static int conf_set(rd_kafka_conf_t *c, const char *k, const char *v)
{
    char err[256];
    if (rd_kafka_conf_set(c, k, v, err, sizeof(err)) != RD_KAFKA_CONF_OK) {
        TRIB_LOG(TRIB_LOG_ERROR, "output", "%s=%s: %s", k, v, err);
        return -EINVAL;
    }
    return 0;
}

int agent_output_start(agent_output_t *o, const agent_conf_t *k, int wake_fd)
{
    o->max_inflight = agent_conf_max_inflight(k);
    o->fatal = false;
    o->refused = false;
    if (o->dry_run) {
        return 0;
    }
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    agent_sbuf_t b = {0};
    for (size_t i = 0; i < k->output.brokers.count; i++) {
        if (i) {
            agent_sbuf_putc(&b, ',');
        }
        agent_sbuf_puts(&b, k->output.brokers.items[i]);
    }
    agent_sbuf_putc(&b, '\0');
    char num[32];
    int rc = b.err;
    rc = rc ? rc : conf_set(c, "bootstrap.servers", b.p);
    agent_sbuf_fini(&b);
    rc = rc ? rc : conf_set(c, "client.id", "tributary-agent");
    rc = rc ? rc : conf_set(c, "acks", "all");
    rc = rc ? rc : conf_set(c, "enable.idempotence", "true");
    rc = rc ? rc : conf_set(c, "message.timeout.ms", "0");
    rc = rc ? rc : conf_set(c, "linger.ms", "20");
    rc = rc ? rc : conf_set(c, "compression.codec", agent_compression_names[k->output.compression]);
    snprintf(num, sizeof(num), "%llu", (unsigned long long)(o->max_inflight / 1024 + 64));
    rc = rc ? rc : conf_set(c, "queue.buffering.max.kbytes", num);
    for (size_t i = 0; rc == 0 && i < k->output.options.count; i++) {
        rc = conf_set(c, k->output.options.items[i].key, k->output.options.items[i].value);
    }
    if (rc != 0) {
        rd_kafka_conf_destroy(c);
        return rc;
    }
    rd_kafka_conf_set_opaque(c, o);
    rd_kafka_conf_set_dr_msg_cb(c, dr_cb);
    rd_kafka_conf_set_error_cb(c, error_cb);
    rd_kafka_conf_set_log_cb(c, log_cb);
    char err[512];
    o->rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof(err));
    if (o->rk == NULL) {
        TRIB_LOG(TRIB_LOG_ERROR, "output", "cannot create the producer: %s", err);
        rd_kafka_conf_destroy(c);
        return -EINVAL;
    }
    rd_kafka_queue_t *q = rd_kafka_queue_get_main(o->rk);
    rd_kafka_queue_io_event_enable(q, wake_fd, "1", 1);
    rd_kafka_queue_destroy(q);
    return 0;
}

void agent_output_poll(agent_output_t *o)
{
    if (o->rk != NULL) {
        rd_kafka_poll(o->rk, 0);
    }
}

void agent_output_flush(agent_output_t *o, int64_t timeout_ms)
{
    if (o->rk != NULL) {
        rd_kafka_flush(o->rk, (int)timeout_ms);
    }
}

void agent_output_stop(agent_output_t *o, int64_t timeout_ms)
{
    if (o->rk == NULL) {
        return;
    }
    o->stopping = true;
    rd_kafka_resp_err_t e = rd_kafka_flush(o->rk, (int)timeout_ms);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        TRIB_LOG(TRIB_LOG_WARN, "output",
                 "%llu events not acknowledged within the shutdown timeout: their lines are "
                 "read again at the next start",
                 (unsigned long long)o->inflight_msgs);
        rd_kafka_purge(o->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_flush(o->rk, 1000);
    }
    destroy_producer(o);
    o->stopping = false;
    o->refused = false;
}

bool agent_output_fatal(const agent_output_t *o)
{
    return o->fatal;
}

void agent_output_state(const agent_output_t *o, agent_output_state_t *s)
{
    s->producer = o->rk != NULL;
    s->brokers_down = o->brokers_down_ms != 0;
    s->inflight_msgs = o->inflight_msgs;
    s->inflight_bytes = o->inflight_bytes;
    s->max_inflight = o->max_inflight;
    s->last_error = o->last_error;
}

bool agent_output_healthy(const agent_output_t *o, bool waiting, char *why, size_t whylen)
{
    int64_t now = wall_ms();
    /* the brokers' state matters while events wait: librdkafka says when
       they all went down, and a delivery says they are back (with nothing
       to send, nothing is undelivered) */
    waiting |= o->inflight_msgs > 0;
    if (o->brokers_down_ms != 0 && waiting) {
        snprintf(why, whylen, "all brokers down for %lld s (%s)",
                 (long long)((now - o->brokers_down_ms) / 1000), o->last_error);
        return false;
    }
    if (o->inflight_msgs > 0 && now - o->progress_ms >= AGENT_HEALTH_STALL_MS) {
        snprintf(why, whylen, "%llu events waiting, none acknowledged for %lld s (last error: %s)",
                 (unsigned long long)o->inflight_msgs, (long long)((now - o->progress_ms) / 1000),
                 o->last_error[0] ? o->last_error : "none");
        return false;
    }
    snprintf(why, whylen, "ok");
    return true;
}
