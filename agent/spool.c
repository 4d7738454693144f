/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Events of inputs that cannot be replayed (syslog, metrics, prometheus)
 * go through the disk buffer (buffer/buffer.h) on their way to the
 * producer:
 *
 *   input --event--> parse, filters, render --append--> state_dir/buffer
 *   buffer --next--> output (output/output.h; the cookie is the record id)
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
 *
 * The loop's glue between the disk buffer and the output (agent_spool_*;
 * agent_buffer_* is the buffer itself).
 */
#include "agent_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "buffer/buffer.h"
#include "tributary/log.h"

static trib_log_ratelimit_t rl_buf = TRIB_LOG_RATELIMIT_INIT(10000, 5);

int agent_spool_start(agent_t *a)
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

void agent_spool_stop(agent_t *a)
{
    if (a->buf != NULL) {
        agent_buffer_close(a->buf);
        a->buf = NULL;
    }
}

int agent_spool_emit(agent_t *a, agent_input_t *in, agent_event_t *ev, const char *source)
{
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
        agent_output_print(a->out, &m);
        if (a->opts.dry_out == NULL) {
            fflush(stdout);
        }
        in->ist->events++;
        in->ist->parse_routed += routed;
        return 0;
    }
    rc = agent_buffer_append(a->buf, &m, NULL); /* the message is the buffer's record */
    if (rc == -ENOSPC) {
        a->buf_blocked = true;
        return -EAGAIN;
    }
    if (rc == -EMSGSIZE) {
        a->st.drop_event_too_large++;
        TRIB_LOG_RL(&rl_buf, TRIB_LOG_WARN, "buffer",
                    "an event of %zu bytes from %s cannot fit in buffer.max_size: dropped",
                    m.value_len, in->conf->id);
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

bool agent_spool_pump(agent_t *a)
{
    if (a->buf == NULL || a->state != AGENT_RUNNING || a->opts.dry_run) {
        return false;
    }
    agent_buffer_rec_t r;
    uint64_t id;
    /* a full budget or queue pauses the work handle like file reading: a
       delivery report makes room and kicks it */
    for (int n = 0; n < 4096; n++) {
        if (agent_output_full(a->out)) {
            a->paused = true;
            return true;
        }
        if (agent_buffer_next(a->buf, &r, &id) <= 0) {
            return false;
        }
        /* the topic as a C string (a record's is not NUL-terminated) */
        a->line.len = 0;
        agent_sbuf_put(&a->line, r.topic, r.topic_len);
        agent_sbuf_putc(&a->line, '\0');
        int rc = a->line.err ? -EAGAIN : 0;
        if (rc == 0) {
            r.topic = a->line.p;
            rc = agent_output_produce(a->out, &r, a->spool_owner, id);
        }
        if (rc == -EAGAIN) {
            /* librdkafka's queue is full: the record is handed out again */
            if (!agent_buffer_unnext(a->buf)) {
                agent_buffer_rewind(a->buf);
            }
            a->paused = true;
            return true;
        }
        if (rc != 0) {
            agent_buffer_ack(a->buf, id); /* refused for good: dropped (counted) */
        }
    }
    return true;
}

void agent_spool_ack(void *arg, uint64_t id, int status, const char *why)
{
    agent_t *a = arg;
    switch (status) {
    case AGENT_ACK_DELIVERED:
        if (a->buf != NULL) {
            agent_buffer_ack(a->buf, id);
        }
        break;
    case AGENT_ACK_UNSENT: /* stays in the buffer: sent again by the next producer or run */
        break;
    case AGENT_ACK_EXPIRED: /* left unacknowledged: the next run sends it again */
        TRIB_LOG_RL(&rl_buf, TRIB_LOG_WARN, "output",
                    "buffered event timed out and could not be queued again: %s", why);
        break;
    default:
        TRIB_LOG_RL(&rl_buf, TRIB_LOG_WARN, "output",
                    "buffered event dropped after a permanent delivery error: %s", why);
        if (a->buf != NULL) {
            agent_buffer_ack(a->buf, id);
        }
        break;
    }
    agent_spool_check_room(a);
    agent_kick(a);
}

void agent_spool_check_room(agent_t *a)
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
        agent_syslogs_resume(a->syslogs);
    }
}

void agent_spool_restart(agent_t *a)
{
    if (a->buf != NULL) {
        agent_buffer_rewind(a->buf);
        agent_kick(a);
    }
}

bool agent_spool_idle(agent_t *a)
{
    if (a->buf == NULL) {
        return true;
    }
    agent_buffer_stats_t st;
    agent_buffer_stats(a->buf, &st);
    return st.records == 0;
}
