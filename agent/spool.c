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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "tributary/fileio.h"

#include "buffer/buffer.h"
#include "tributary/log.h"

static trib_log_ratelimit_t rl_buf = TRIB_LOG_RATELIMIT_INIT(10000, 5);

/*
 * The buffer's instance (<buffer>/instance): "instance <16 hex digits>",
 * "boot <the kernel's boot id>" and "state running|clean". A buffered
 * event's id is this instance and the record's buffer id, the same each
 * time the record is sent (a restart replays it with its id). A new
 * instance is drawn whenever ids handed out before may be given again: no
 * file (a new buffer), an unreadable ledger, corrupt records, quarantined
 * segments, or a stop without agent_spool_stop() under another boot (a
 * power loss may have cut records that were already sent). False: the
 * file could not be written (buffered events then get no id).
 */
static uint64_t load_be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) {
        v = (v << 8) | p[i];
    }
    return v;
}

static void store_be64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (56 - 8 * i));
    }
}

static void boot_id(char out[64])
{
    out[0] = '\0';
    FILE *fp = fopen("/proc/sys/kernel/random/boot_id", "r");
    if (fp != NULL) {
        if (fgets(out, 64, fp) == NULL) {
            out[0] = '\0';
        }
        out[strcspn(out, "\n")] = '\0';
        fclose(fp);
    }
}

static int write_instance(agent_t *a, const char *path, const char *state)
{
    char boot[64], text[160];
    boot_id(boot);
    int n = snprintf(text, sizeof(text), "instance %016llx\nboot %s\nstate %s\n",
                     (unsigned long long)load_be64(a->buf_instance), boot, state);
    return trib_write_file_atomic(path, text, (size_t)n);
}

static bool load_instance(agent_t *a, const char *dir, const agent_buffer_report_t *r)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/instance", dir);
    unsigned long long inst = 0;
    char boot[64] = "", state[16] = "", now[64];
    bool reuse = false;
    FILE *fp = fopen(path, "r");
    if (fp != NULL) {
        reuse = fscanf(fp, "instance %16llx boot %63s state %15s", &inst, boot, state) == 3;
        fclose(fp);
    }
    boot_id(now);
    bool clean = strcmp(state, "clean") == 0;
    if (reuse && !clean && (now[0] == '\0' || strcmp(boot, now) != 0)) {
        reuse = false; /* cut short under another boot */
    }
    if (r->bad_ledger || r->corrupt_records > 0 || r->quarantined > 0) {
        reuse = false;
    }
    if (reuse) {
        store_be64(a->buf_instance, (uint64_t)inst);
    } else if (getrandom(a->buf_instance, sizeof(a->buf_instance), 0) !=
               (ssize_t)sizeof(a->buf_instance)) {
        return false;
    }
    if (write_instance(a, path, "running") != 0) {
        TRIB_LOG(TRIB_LOG_WARN, "buffer",
                 "cannot write %s: buffered events are sent without event ids", path);
        return false;
    }
    if (!reuse) {
        TRIB_LOG(TRIB_LOG_INFO, "buffer", "buffer instance %016llx (event ids of buffered events)",
                 (unsigned long long)load_be64(a->buf_instance));
    }
    return true;
}

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
    a->buf_instance_ok = load_instance(a, dir, &r);
    return 0;
}

void agent_spool_stop(agent_t *a)
{
    if (a->buf != NULL) {
        agent_buffer_close(a->buf);
        a->buf = NULL;
        if (a->buf_instance_ok) {
            char path[4200];
            snprintf(path, sizeof(path), "%s/buffer/instance", a->state_dir);
            (void)write_instance(a, path, "clean");
        }
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
        char idhex[2 * AGENT_EVENT_ID_LEN + 1];
        if (rc == 0 && a->buf_instance_ok && a->cfg->conf.output.event_id &&
            r.nhdrs < AGENT_MSG_MAX_HDRS) {
            uint8_t eid[AGENT_EVENT_ID_LEN];
            memcpy(eid, a->buf_instance, 8);
            eid[8] = AGENT_EVENT_ID_BUFFER;
            for (int i = 0; i < 7; i++) {
                eid[9 + i] = (uint8_t)(id >> (48 - 8 * i));
            }
            agent_event_id_hex(eid, idhex);
            r.hdrs[r.nhdrs++] = (agent_msg_hdr_t){"event.id", 8, idhex, 2 * AGENT_EVENT_ID_LEN};
        }
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
