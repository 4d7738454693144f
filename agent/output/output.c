/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The output: events built from a record (parse, filters, JSON value,
 * topic and key templates) and handed to librdkafka, or printed (--dry-run).
 *
 * Delivery (agents-and-sinks.md §2.3, §2.9): the producer runs with
 * acks=all and enable.idempotence=true, so a retry never duplicates or
 * reorders at the broker, and message.timeout.ms=0 (retry forever) unless
 * the user sets it. An event counts as delivered only when its delivery
 * report says so; the report marks the event's entry in its file's ack
 * ring and the file's checkpoint moves over the acknowledged prefix.
 *
 * Backpressure (§2.4): the bytes of events in the producer are bounded by
 * max_inflight (output.max_inflight_bytes, default memory_limit/8, also
 * given to librdkafka as queue.buffering.max.kbytes). When the bound is
 * reached or librdkafka says its queue is full, the record is not consumed
 * and reading pauses; it resumes when half the budget is free again.
 *
 * Failed reports: after a fatal producer error (idempotence state lost) the
 * reports fail without moving the checkpoints; at the next tick the
 * producer is destroyed, a new one is made and every file is reopened at
 * its checkpoint, so the unacknowledged tail is read and sent again (§2.9); a timed-out event (only
 * with a user-set message.timeout.ms) is produced again; a purge at shutdown leaves its lines
 * unacknowledged; anything else is permanent for that event (too large, not authorized): counted as
 * a drop by reason, logged rate-limited, and passed over.
 */
#include "../agent_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tributary/log.h"

static trib_log_ratelimit_t rl_delivery = TRIB_LOG_RATELIMIT_INIT(10000, 5);
static trib_log_ratelimit_t rl_produce = TRIB_LOG_RATELIMIT_INIT(10000, 5);

/* Room for one more entry: 0 or -ENOMEM (nothing is produced without it). */
int agent_ring_reserve(agent_file_t *f)
{
    if (f->tail - f->head < f->rcap) {
        return 0;
    }
    size_t ncap = f->rcap ? f->rcap * 2 : 64;
    uint64_t *n = malloc(ncap * sizeof(*n));
    if (n == NULL) {
        return -ENOMEM;
    }
    for (uint64_t s = f->head; s < f->tail; s++) {
        n[s & (ncap - 1)] = f->ring[s & (f->rcap - 1)];
    }
    free(f->ring);
    f->ring = n;
    f->rcap = ncap;
    return 0;
}

/* Callers reserved the entry first. */
void agent_ring_push(agent_file_t *f, uint64_t v)
{
    f->ring[f->tail & (f->rcap - 1)] = v;
    f->tail++;
}

static void ring_advance(agent_file_t *f)
{
    agent_t *a = f->in->a;
    while (f->head < f->tail) {
        if (f->trunc_pending && f->head == f->trunc_seq) {
            f->trunc_pending = false;
            f->acked_off = 0;
        }
        uint64_t e = f->ring[f->head & (f->rcap - 1)];
        if (!(e & AGENT_ACK_BIT)) {
            break;
        }
        f->acked_off = e & ~AGENT_ACK_BIT;
        f->head++;
    }
    if (f->trunc_pending && f->head == f->trunc_seq) {
        f->trunc_pending = false;
        f->acked_off = 0;
    }
    uint64_t ck = f->trunc_pending ? 0 : f->acked_off;
    if (f->ck != NULL && f->ck->offset != ck) {
        f->ck->offset = ck;
        a->ckpts.dirty = true;
    }
}

/* An event that needs no delivery (filtered, printed, dropped) at end_off. */
int agent_ring_done(agent_file_t *f, uint64_t end_off)
{
    if (f->head == f->tail && !f->trunc_pending) {
        f->acked_off = end_off;
        if (f->ck != NULL && f->ck->offset != end_off) {
            f->ck->offset = end_off;
            f->in->a->ckpts.dirty = true;
        }
        return 0;
    }
    if (agent_ring_reserve(f) != 0) {
        return -EAGAIN; /* out of memory: the record is retried later */
    }
    agent_ring_push(f, end_off | AGENT_ACK_BIT);
    ring_advance(f);
    return 0;
}

void agent_ring_ack(agent_file_t *f, uint64_t seq)
{
    f->ring[seq & (f->rcap - 1)] |= AGENT_ACK_BIT;
    ring_advance(f);
}

void agent_output_print(agent_t *a, const agent_msg_t *m)
{
    FILE *o = a->opts.dry_out ? a->opts.dry_out : stdout;
    agent_sbuf_t *line = &a->line;
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
        agent_sbuf_json_str(line, m->hdrs[i].name, m->hdrs[i].nlen);
        agent_sbuf_puts(line, "\":\"");
        agent_sbuf_json_str(line, m->hdrs[i].val, m->hdrs[i].vlen);
        agent_sbuf_putc(line, '"');
    }
    agent_sbuf_puts(line, "},\"value\":");
    agent_sbuf_put(line, m->value, m->value_len);
    agent_sbuf_puts(line, "}\n");
    if (!line->err) {
        fwrite(line->p, 1, line->len, o);
    }
}

static void pause_inputs(agent_t *a)
{
    if (!a->paused) {
        a->paused = true;
        a->st.backpressure_pauses++;
        TRIB_LOG(TRIB_LOG_DEBUG, "output", "paused: %llu bytes in flight",
                 (unsigned long long)a->inflight_bytes);
    }
}

int agent_emit(agent_file_t *f, const char *msg, size_t len, uint64_t end_off, bool partial)
{
    agent_input_t *in = f->in;
    agent_pipeline_t *pl = in->pl;
    agent_t *a = in->a;

    if (!a->opts.dry_run && a->inflight_bytes >= a->max_inflight) {
        pause_inputs(a);
        return -EAGAIN;
    }
    agent_event_t ev;
    /* the time of the read (once per chunk of the file) */
    if (agent_event_begin(&ev, pl, in->conf, a->wall_ms, f->jpath, f->jpath_len, true, msg, len,
                          len * 2 + 1024) != 0) {
        return -EAGAIN;
    }
    ev.partial = partial;
    agent_source_t src = {"tail", "path", f->path, in->ist};
    agent_msg_t m;
    bool routed = false;
    int rc = agent_pipeline_process(pl, &ev, &src, &m, &routed);
    if (rc < 0) {
        return -EAGAIN; /* out of memory: retried later */
    }
    if (rc == 1) {
        return agent_ring_done(f, end_off) != 0 ? -EAGAIN : 0;
    }
    if (agent_ring_reserve(f) != 0) {
        return -EAGAIN;
    }
    in->ist->events++;
    in->ist->parse_routed += routed;
    if (a->opts.dry_run) {
        agent_output_print(a, &m);
        a->st.events_sent++;
        a->st.events_acked++;
        (void)agent_ring_done(f, end_off); /* reserved above */
        return 0;
    }
    uint64_t seq = f->tail;
    void *opaque =
        (void *)(uintptr_t)(((uint64_t)f->slot << AGENT_SEQ_BITS) | (seq & AGENT_SEQ_MASK));
    rd_kafka_topic_t *rkt = m.topic_fixed ? ((agent_pipe_t *)(void *)pl)->rkt : NULL;
    rd_kafka_vu_t vu[8 + AGENT_MSG_MAX_HDRS];
    size_t nv = 0;
    if (rkt != NULL) {
        vu[nv].vtype = RD_KAFKA_VTYPE_RKT;
        vu[nv++].u.rkt = rkt;
    } else {
        vu[nv].vtype = RD_KAFKA_VTYPE_TOPIC;
        vu[nv++].u.cstr = m.topic;
    }
    vu[nv].vtype = RD_KAFKA_VTYPE_VALUE;
    vu[nv].u.mem.ptr = (void *)m.value;
    vu[nv++].u.mem.size = m.value_len;
    if (m.key != NULL) {
        vu[nv].vtype = RD_KAFKA_VTYPE_KEY;
        vu[nv].u.mem.ptr = (void *)m.key;
        vu[nv++].u.mem.size = m.key_len;
    }
    for (size_t i = 0; i < m.nhdrs; i++) {
        /* the names are the pipeline's own, NUL-terminated */
        vu[nv].vtype = RD_KAFKA_VTYPE_HEADER;
        vu[nv].u.header.name = m.hdrs[i].name;
        vu[nv].u.header.val = m.hdrs[i].val;
        vu[nv++].u.header.size = (ssize_t)m.hdrs[i].vlen;
    }
    vu[nv].vtype = RD_KAFKA_VTYPE_MSGFLAGS;
    vu[nv++].u.i = RD_KAFKA_MSG_F_COPY;
    vu[nv].vtype = RD_KAFKA_VTYPE_OPAQUE;
    vu[nv++].u.ptr = opaque;
    vu[nv].vtype = RD_KAFKA_VTYPE_TIMESTAMP; /* the read time: saves a clock call per event */
    vu[nv++].u.i64 = m.ts_ms;
    rd_kafka_error_t *kerr = rd_kafka_produceva(a->rk, vu, nv);
    rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
    if (kerr != NULL) {
        err = rd_kafka_error_code(kerr);
        rd_kafka_error_destroy(kerr);
    }
    if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL || agent_output_fatal(a, err)) {
        pause_inputs(a);
        return -EAGAIN;
    }
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        a->st.events_failed++;
        a->st.drop_delivery_permanent++;
        TRIB_LOG_RL(&rl_produce, TRIB_LOG_WARN, "output", "event from %s dropped: %s", f->path,
                    rd_kafka_err2str(err));
        (void)agent_ring_done(f, end_off); /* reserved above */
        return 0;
    }
    agent_ring_push(f, end_off);
    f->inflight++;
    agent_output_inflight_add(a);
    a->inflight_bytes += m.value_len + m.key_len + AGENT_MSG_OVERHEAD;
    agent_output_sent(a);
    return 0;
}

bool agent_output_fatal(agent_t *a, rd_kafka_resp_err_t err)
{
    if (err != RD_KAFKA_RESP_ERR__FATAL &&
        rd_kafka_fatal_error(a->rk, NULL, 0) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        return false;
    }
    a->rebuild = true;
    return true;
}

void agent_output_sent(agent_t *a)
{
    a->st.events_sent++;
    if (a->test_fatal_after != 0 && a->st.events_sent == a->test_fatal_after) {
        a->test_fatal_after = 0;
        rd_kafka_test_fatal_error(a->rk, RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER,
                                  "TRIB_AGENT_TEST_FATAL_AFTER");
    }
}

rd_kafka_resp_err_t agent_output_requeue(rd_kafka_t *rk, const rd_kafka_message_t *m)
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

void agent_output_inflight_add(agent_t *a)
{
    if (a->inflight_msgs++ == 0) {
        a->progress_ms = agent_wall_ms(); /* waiting starts now */
    }
}

int agent_output_report(agent_t *a, rd_kafka_t *rk, const rd_kafka_message_t *m,
                        rd_kafka_resp_err_t *why)
{
    *why = m->err;
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        a->st.events_acked++;
        a->progress_ms = agent_wall_ms();
        if (a->brokers_down_ms != 0) {
            TRIB_LOG(TRIB_LOG_INFO, "output",
                     "brokers reachable again after %lld s down: deliveries resume "
                     "(%llu events in flight)",
                     (long long)((a->progress_ms - a->brokers_down_ms) / 1000),
                     (unsigned long long)a->inflight_msgs);
            a->brokers_down_ms = 0;
        }
        return AGENT_DR_ACKED;
    }
    a->st.delivery_errors++;
    snprintf(a->last_error, sizeof(a->last_error), "%s", rd_kafka_err2str(m->err));
    if (m->err == RD_KAFKA_RESP_ERR__PURGE_QUEUE || m->err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT ||
        a->state == AGENT_STOPPING ||
        rd_kafka_fatal_error(rk, NULL, 0) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        return AGENT_DR_UNSENT;
    }
    if (m->err == RD_KAFKA_RESP_ERR__MSG_TIMED_OUT) {
        a->st.delivery_retries++;
        *why = agent_output_requeue(rk, m);
        return *why == RD_KAFKA_RESP_ERR_NO_ERROR ? AGENT_DR_INFLIGHT : AGENT_DR_REQUEUE_FAILED;
    }
    return AGENT_DR_FAILED;
}

bool agent_output_release(agent_t *a, const rd_kafka_message_t *m)
{
    size_t cost = m->len + m->key_len + AGENT_MSG_OVERHEAD;
    a->inflight_bytes = a->inflight_bytes >= cost ? a->inflight_bytes - cost : 0;
    a->inflight_msgs--;
    if (a->paused && a->inflight_bytes < a->max_inflight / 2) {
        a->paused = false;
        return true;
    }
    return false;
}

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    agent_t *a = opaque;
    uint64_t op = (uint64_t)(uintptr_t)m->_private;
    if (op & AGENT_BUFFER_OPAQUE) {
        agent_buffer_dr(a, rk, m);
        return;
    }
    uint32_t slot = (uint32_t)(op >> AGENT_SEQ_BITS);
    agent_file_t *f = slot < a->nslots ? a->slots[slot] : NULL;
    if (f == NULL) {
        return; /* cannot happen: a slot lives while its events are in flight */
    }
    uint64_t seq = (f->head & ~AGENT_SEQ_MASK) | (op & AGENT_SEQ_MASK);
    if (seq < f->head) {
        seq += 1ull << AGENT_SEQ_BITS;
    }
    rd_kafka_resp_err_t why;
    switch (agent_output_report(a, rk, m, &why)) {
    case AGENT_DR_ACKED:
        agent_ring_ack(f, seq);
        break;
    case AGENT_DR_UNSENT: /* not passed over: the checkpoint stays before it */
        break;
    case AGENT_DR_INFLIGHT:
        return;
    case AGENT_DR_REQUEUE_FAILED:
        a->st.drop_delivery_permanent++;
        TRIB_LOG_RL(&rl_delivery, TRIB_LOG_WARN, "output",
                    "event from %s dropped: timed out and could not be queued again: %s", f->path,
                    rd_kafka_err2str(why));
        agent_ring_ack(f, seq);
        break;
    default:
        a->st.drop_delivery_permanent++;
        TRIB_LOG_RL(&rl_delivery, TRIB_LOG_WARN, "output",
                    "event from %s dropped after a permanent delivery error: %s", f->path,
                    rd_kafka_err2str(why));
        agent_ring_ack(f, seq);
        break;
    }
    f->inflight--;
    if (f->inflight == 0 && f->fd < 0) {
        agent_file_release(f);
    }
    if (agent_output_release(a, m)) {
        agent_kick(a);
    }
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    agent_t *a = opaque;
    static trib_log_ratelimit_t rl = TRIB_LOG_RATELIMIT_INIT(10000, 5);
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char buf[512];
        rd_kafka_fatal_error(rk, buf, sizeof(buf));
        TRIB_LOG(TRIB_LOG_ERROR, "output",
                 "fatal producer error: %s; the producer is rebuilt and reading resumes at "
                 "the checkpoints",
                 buf);
        a->rebuild = true;
        return;
    }
    snprintf(a->last_error, sizeof(a->last_error), "%s", reason);
    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
        if (a->brokers_down_ms == 0) {
            a->brokers_down_ms = agent_wall_ms();
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

static int conf_set(rd_kafka_conf_t *c, const char *k, const char *v)
{
    char err[256];
    if (rd_kafka_conf_set(c, k, v, err, sizeof(err)) != RD_KAFKA_CONF_OK) {
        TRIB_LOG(TRIB_LOG_ERROR, "output", "%s=%s: %s", k, v, err);
        return -EINVAL;
    }
    return 0;
}

int agent_output_start(agent_t *a)
{
    agent_conf_t *k = &a->cfg->conf;
    uint64_t lim = k->output.max_inflight_bytes;
    a->max_inflight = lim ? lim : k->agent.memory_limit / 8;
    if (a->opts.dry_run) {
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
    snprintf(num, sizeof(num), "%llu", (unsigned long long)(a->max_inflight / 1024 + 64));
    rc = rc ? rc : conf_set(c, "queue.buffering.max.kbytes", num);
    for (size_t i = 0; rc == 0 && i < k->output.options.count; i++) {
        rc = conf_set(c, k->output.options.items[i].key, k->output.options.items[i].value);
    }
    if (rc != 0) {
        rd_kafka_conf_destroy(c);
        return rc;
    }
    rd_kafka_conf_set_opaque(c, a);
    rd_kafka_conf_set_dr_msg_cb(c, dr_cb);
    rd_kafka_conf_set_error_cb(c, error_cb);
    rd_kafka_conf_set_log_cb(c, log_cb);
    char err[512];
    a->rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof(err));
    if (a->rk == NULL) {
        TRIB_LOG(TRIB_LOG_ERROR, "output", "cannot create the producer: %s", err);
        rd_kafka_conf_destroy(c);
        return -EINVAL;
    }
    rd_kafka_queue_t *q = rd_kafka_queue_get_main(a->rk);
    rd_kafka_queue_io_event_enable(q, a->rk_pipe[1], "1", 1);
    rd_kafka_queue_destroy(q);
    for (size_t i = 0; i < a->npipes; i++) {
        agent_pipe_t *pl = &a->pipes[i];
        if (pl->pl.topic_fixed) {
            pl->rkt = rd_kafka_topic_new(a->rk, pl->pl.conf->topic, NULL);
        }
    }
    return 0;
}

void agent_output_poll(agent_t *a)
{
    if (a->rk != NULL) {
        rd_kafka_poll(a->rk, 0);
    }
}

/* Waits (serving delivery reports) up to timeout_ms, purges the rest, destroys the producer. */
void agent_output_stop(agent_t *a, int64_t timeout_ms)
{
    if (a->rk == NULL) {
        return;
    }
    rd_kafka_resp_err_t e = rd_kafka_flush(a->rk, (int)timeout_ms);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        TRIB_LOG(TRIB_LOG_WARN, "output",
                 "%llu events not acknowledged within the shutdown timeout: their lines are "
                 "read again at the next start",
                 (unsigned long long)a->inflight_msgs);
        int prev = a->state;
        a->state = AGENT_STOPPING;
        rd_kafka_purge(a->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_flush(a->rk, 1000);
        a->state = prev;
    }
    for (size_t i = 0; i < a->npipes; i++) {
        if (a->pipes[i].rkt != NULL) {
            rd_kafka_topic_destroy(a->pipes[i].rkt);
            a->pipes[i].rkt = NULL;
        }
    }
    rd_kafka_destroy(a->rk);
    a->rk = NULL;
    a->paused = false;
}

bool agent_output_healthy(agent_t *a, char *why, size_t whylen)
{
    int64_t now = agent_wall_ms();
    if (a->state != AGENT_RUNNING || a->exit_code != 0) {
        snprintf(why, whylen, "stopping");
        return false;
    }
    /* the brokers' state matters while events wait: librdkafka says when
       they all went down, and a delivery says they are back (with nothing
       to send, nothing is undelivered) */
    bool waiting = a->inflight_msgs > 0 || !agent_buffer_idle(a);
    if (a->brokers_down_ms != 0 && waiting) {
        snprintf(why, whylen, "all brokers down for %lld s (%s)",
                 (long long)((now - a->brokers_down_ms) / 1000), a->last_error);
        return false;
    }
    if (a->inflight_msgs > 0 && now - a->progress_ms >= AGENT_HEALTH_STALL_MS) {
        snprintf(why, whylen, "%llu events waiting, none acknowledged for %lld s (last error: %s)",
                 (unsigned long long)a->inflight_msgs, (long long)((now - a->progress_ms) / 1000),
                 a->last_error[0] ? a->last_error : "none");
        return false;
    }
    snprintf(why, whylen, "ok");
    return true;
}
