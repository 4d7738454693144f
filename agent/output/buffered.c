/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Events of inputs that cannot be replayed (syslog, metrics, prometheus)
 * go through the disk buffer (buffer/buffer.h) on their way to the
 * producer:
 *
 *   input --event--> parse, filters, render --append--> state_dir/buffer
 *   buffer --next--> librdkafka (opaque = AGENT_BUFFER_OPAQUE | record id)
 *   delivery report --ack--> buffer (segments leave once wholly acknowledged)
 *
 * The record is rendered before it is buffered (topic, key, value and
 * headers as they will be sent), so a reload that changes the pipelines
 * does not change what was already accepted.
 *
 * The buffer is appended to whatever the state of the output: while a
 * collector is down, the buffer fills and the producer's budget stays
 * full. When the buffer itself is full, stream inputs stop reading (their
 * clients see TCP backpressure) and datagrams and samples are dropped and
 * counted. Records are handed to the producer under the same in-flight
 * budget as file events; one refused by librdkafka (queue full) is taken
 * back by the buffer (agent_buffer_unnext) and handed out again when room
 * comes back.
 */
#include "../agent_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "buffer/buffer.h"
#include "tributary/log.h"

static trib_log_ratelimit_t rl_buf = TRIB_LOG_RATELIMIT_INIT(10000, 5);

int agent_buffer_start(agent_t *a)
{
    if (a->opts.dry_run) {
        return 0;
    }
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s/buffer", a->state_dir);
    agent_buffer_opts_t o = {
        .dir = dir,
        .max_size = a->cfg->conf.buffer.max_size,
        .segment_size = a->cfg->conf.buffer.segment_size,
    };
    agent_buffer_report_t r;
    memset(&r, 0, sizeof(r));
    a->buf_max = o.max_size; /* a reload does not resize the buffer */
    int rc = agent_buffer_open(&a->buf, &o, &r);
    if (rc != 0) {
        TRIB_LOG(TRIB_LOG_ERROR, "buffer", "cannot open the disk buffer %s: %s", dir,
                 trib_strerror(rc));
        return rc;
    }
    if (r.torn_bytes > 0 || r.corrupt_records > 0 || r.quarantined > 0) {
        TRIB_LOG(TRIB_LOG_WARN, "buffer",
                 "recovered %s: %llu torn bytes cut off, %llu corrupt records (%llu bytes) "
                 "skipped, %llu segments copied to quarantine/",
                 dir, (unsigned long long)r.torn_bytes, (unsigned long long)r.corrupt_records,
                 (unsigned long long)r.corrupt_bytes, (unsigned long long)r.quarantined);
    }
    if (r.records > 0) {
        TRIB_LOG(TRIB_LOG_INFO, "buffer",
                 "replaying %llu buffered events (%llu bytes) not acknowledged before the last "
                 "stop",
                 (unsigned long long)r.records, (unsigned long long)r.bytes);
    }
    a->buf_report_torn = r.torn_bytes;
    a->buf_report_corrupt = r.corrupt_records;
    a->buf_report_quarantined = r.quarantined;
    return 0;
}

void agent_buffer_stop(agent_t *a)
{
    if (a->buf != NULL) {
        agent_buffer_close(a->buf);
        a->buf = NULL;
    }
}

int agent_emit_buffered(agent_input_t *in, agent_event_t *ev, const char *source)
{
    agent_t *a = in->a;
    if (a->buf == NULL && !a->opts.dry_run) {
        return -EIO;
    }
    agent_source_t src = in->source;
    src.name = source;
    agent_msg_t m;
    bool routed = false;
    int rc = agent_pipeline_process(in->pl, ev, &src, &m, &routed);
    if (rc < 0) {
        return -EAGAIN; /* out of memory */
    }
    if (rc == 1) {
        return 0;
    }
    if (a->opts.dry_run) {
        agent_output_print(a, &m);
        if (a->opts.dry_out == NULL) {
            fflush(stdout);
        }
        a->st.events_sent++;
        a->st.events_acked++;
        in->ist->events++;
        in->ist->parse_routed += routed;
        return 0;
    }
    agent_buffer_rec_t r;
    memset(&r, 0, sizeof(r));
    r.topic = m.topic;
    r.topic_len = m.topic_len;
    r.key = m.key;
    r.key_len = m.key_len;
    r.value = m.value;
    r.value_len = m.value_len;
    r.ts_ms = m.ts_ms;
    for (size_t i = 0; i < m.nhdrs && i < AGENT_BUFFER_MAX_HDRS; i++) {
        r.hdrs[i] =
            (agent_buffer_hdr_t){m.hdrs[i].name, m.hdrs[i].nlen, m.hdrs[i].val, m.hdrs[i].vlen};
        r.nhdrs++;
    }
    rc = agent_buffer_append(a->buf, &r, NULL);
    if (rc == -ENOSPC) {
        a->buf_blocked = true;
        return -EAGAIN;
    }
    if (rc == -EMSGSIZE) {
        a->st.drop_event_too_large++;
        TRIB_LOG_RL(&rl_buf, TRIB_LOG_WARN, "buffer",
                    "an event of %zu bytes from %s cannot fit in buffer.max_size: dropped",
                    r.value_len, in->conf->id);
        return 0;
    }
    if (rc != 0) {
        a->st.drop_buffer_error++;
        TRIB_LOG_RL(&rl_buf, TRIB_LOG_ERROR, "buffer", "cannot append to the disk buffer: %s",
                    trib_strerror(rc));
        return -EIO;
    }
    a->st.buffered_events++;
    in->ist->events++;
    in->ist->parse_routed += routed;
    agent_kick(a);
    return 0;
}

/* 0 produced, -EAGAIN queue full, else a permanent error (rd_kafka_resp_err_t). */
static int produce(agent_t *a, const agent_buffer_rec_t *r, uint64_t id)
{
    a->line.len = 0;
    agent_sbuf_put(&a->line, r->topic, r->topic_len);
    agent_sbuf_putc(&a->line, '\0');
    if (a->line.err) {
        return -EAGAIN;
    }
    rd_kafka_vu_t vu[8 + AGENT_BUFFER_MAX_HDRS];
    size_t nv = 0;
    vu[nv].vtype = RD_KAFKA_VTYPE_TOPIC;
    vu[nv++].u.cstr = a->line.p;
    vu[nv].vtype = RD_KAFKA_VTYPE_VALUE;
    vu[nv].u.mem.ptr = (void *)r->value;
    vu[nv++].u.mem.size = r->value_len;
    if (r->key != NULL) {
        vu[nv].vtype = RD_KAFKA_VTYPE_KEY;
        vu[nv].u.mem.ptr = (void *)r->key;
        vu[nv++].u.mem.size = r->key_len;
    }
    char names[AGENT_BUFFER_MAX_HDRS][64];
    for (size_t i = 0; i < r->nhdrs && i < AGENT_BUFFER_MAX_HDRS; i++) {
        size_t n = r->hdrs[i].nlen < sizeof(names[i]) - 1 ? r->hdrs[i].nlen : sizeof(names[i]) - 1;
        memcpy(names[i], r->hdrs[i].name, n);
        names[i][n] = '\0';
        vu[nv].vtype = RD_KAFKA_VTYPE_HEADER;
        vu[nv].u.header.name = names[i];
        vu[nv].u.header.val = r->hdrs[i].val;
        vu[nv++].u.header.size = (ssize_t)r->hdrs[i].vlen;
    }
    vu[nv].vtype = RD_KAFKA_VTYPE_MSGFLAGS;
    vu[nv++].u.i = RD_KAFKA_MSG_F_COPY;
    vu[nv].vtype = RD_KAFKA_VTYPE_OPAQUE;
    vu[nv++].u.ptr = (void *)(uintptr_t)(AGENT_BUFFER_OPAQUE | id);
    vu[nv].vtype = RD_KAFKA_VTYPE_TIMESTAMP;
    vu[nv++].u.i64 = r->ts_ms;
    rd_kafka_error_t *kerr = rd_kafka_produceva(a->rk, vu, nv);
    if (kerr == NULL) {
        agent_output_inflight_add(a);
        a->inflight_bytes += r->value_len + r->key_len + AGENT_MSG_OVERHEAD;
        agent_output_sent(a);
        return 0;
    }
    rd_kafka_resp_err_t err = rd_kafka_error_code(kerr);
    rd_kafka_error_destroy(kerr);
    if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL || agent_output_fatal(a, err)) {
        return -EAGAIN;
    }
    a->st.events_failed++;
    a->st.drop_delivery_permanent++;
    TRIB_LOG_RL(&rl_buf, TRIB_LOG_WARN, "output", "buffered event for %s dropped: %s", a->line.p,
                rd_kafka_err2str(err));
    agent_buffer_ack(a->buf, id);
    return (int)err;
}

bool agent_buffer_pump(agent_t *a)
{
    if (a->buf == NULL || a->rk == NULL || a->state != AGENT_RUNNING) {
        return false;
    }
    agent_buffer_rec_t r;
    uint64_t id;
    /* a full budget or queue pauses the work handle like file reading: a
       delivery report makes room and kicks it */
    for (int n = 0; n < 4096; n++) {
        if (a->inflight_bytes >= a->max_inflight) {
            a->paused = true;
            return true;
        }
        if (agent_buffer_next(a->buf, &r, &id) <= 0) {
            return false;
        }
        if (produce(a, &r, id) == -EAGAIN) {
            /* librdkafka's queue is full: the record is handed out again */
            if (!agent_buffer_unnext(a->buf)) {
                agent_buffer_rewind(a->buf);
            }
            a->paused = true;
            return true;
        }
    }
    return true;
}

void agent_buffer_dr(agent_t *a, rd_kafka_t *rk, const rd_kafka_message_t *m)
{
    uint64_t id = (uint64_t)(uintptr_t)m->_private & ~AGENT_BUFFER_OPAQUE;
    rd_kafka_resp_err_t why;
    switch (agent_output_report(a, rk, m, &why)) {
    case AGENT_DR_ACKED:
        if (a->buf != NULL) {
            agent_buffer_ack(a->buf, id);
        }
        break;
    case AGENT_DR_UNSENT: /* stays in the buffer: sent again by the next producer or run */
        break;
    case AGENT_DR_INFLIGHT:
        return;
    case AGENT_DR_REQUEUE_FAILED: /* left unacknowledged: the next run sends it again */
        TRIB_LOG_RL(&rl_buf, TRIB_LOG_WARN, "output",
                    "buffered event timed out and could not be queued again: %s",
                    rd_kafka_err2str(why));
        break;
    default:
        a->st.drop_delivery_permanent++;
        TRIB_LOG_RL(&rl_buf, TRIB_LOG_WARN, "output",
                    "buffered event dropped after a permanent delivery error: %s",
                    rd_kafka_err2str(why));
        if (a->buf != NULL) {
            agent_buffer_ack(a->buf, id);
        }
        break;
    }
    (void)agent_output_release(a, m);
    agent_buffer_check_room(a);
    agent_kick(a);
}

void agent_buffer_check_room(agent_t *a)
{
    if (!a->buf_blocked || a->buf == NULL) {
        return;
    }
    uint64_t want = a->buf_max / 4;
    if (want > (1u << 20)) {
        want = 1u << 20;
    }
    if (agent_buffer_room(a->buf) >= want) {
        a->buf_blocked = false;
        agent_syslog_resume_all(a);
    }
}

void agent_buffer_restart(agent_t *a)
{
    if (a->buf != NULL) {
        agent_buffer_rewind(a->buf);
        agent_kick(a);
    }
}

bool agent_buffer_idle(agent_t *a)
{
    if (a->buf == NULL) {
        return true;
    }
    agent_buffer_stats_t st;
    agent_buffer_stats(a->buf, &st);
    return st.records == 0;
}
