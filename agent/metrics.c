/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Self-metrics in the Prometheus text format (version 0.0.4): lines and
 * bytes read, events sent and acknowledged, errors, drops by reason,
 * per-file lag (bytes in the file past its checkpoint), in-flight bytes
 * against the budget.
 *
 * agent_metrics_render() fills a trib_buf_t for the shared HTTP endpoint
 * (trib_http_*, GET /metrics and /health) on agent.metrics, and for
 * agent.metrics_file, rewritten atomically every checkpoint_interval.
 */
#include "agent_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "buffer/buffer.h"
#include "tributary/buf.h"
#include "tributary/fileio.h"
#include "tributary/log.h"
#include "tributary/prom.h"

static void put(trib_buf_t *b, const char *s)
{
    trib_buf_append(b, s, strlen(s));
}

/* One sample, with its HELP and TYPE lines unless help is NULL. */
static void counter(trib_buf_t *b, const char *name, const char *help, const char *type,
                    const char *labels, uint64_t v)
{
    trib_prom_metric_u64(b, name, type, help, labels, v);
}

void agent_metrics_render(agent_t *a, trib_buf_t *b)
{
    const agent_stats_t *s = &a->st;
    counter(b, "tributary_agent_lines_read_total", "Lines read from files.", "counter", NULL,
            s->lines_read);
    counter(b, "tributary_agent_bytes_read_total", "Bytes read from files.", "counter", NULL,
            s->bytes_read);
    counter(b, "tributary_agent_lines_split_total",
            "Parts of lines longer than max_line_bytes (sent, flagged partial).", "counter", NULL,
            s->lines_split);
    counter(b, "tributary_agent_multiline_records_total", "Multiline records sent.", "counter",
            NULL, s->multiline_records);
    counter(b, "tributary_agent_events_sent_total", "Events handed to the producer.", "counter",
            NULL, s->events_sent);
    counter(b, "tributary_agent_events_acked_total", "Events whose delivery was acknowledged.",
            "counter", NULL, s->events_acked);
    counter(b, "tributary_agent_events_filtered_total", "Events dropped by filters.", "counter",
            NULL, s->events_filtered);
    counter(b, "tributary_agent_parse_failures_total", "Events a parser did not match.", "counter",
            NULL, s->parse_failures);
    counter(b, "tributary_agent_delivery_errors_total", "Failed delivery reports.", "counter", NULL,
            s->delivery_errors);
    counter(b, "tributary_agent_delivery_retries_total", "Timed-out events produced again.",
            "counter", NULL, s->delivery_retries);
    counter(b, "tributary_agent_drops_total", "Events or bytes given up, by reason.", "counter",
            "reason=\"delivery_permanent\"", s->drop_delivery_permanent);
    counter(b, "tributary_agent_drops_total", NULL, NULL, "reason=\"deleted_unread_bytes\"",
            s->drop_deleted_unread_bytes);
    counter(b, "tributary_agent_drops_total", NULL, NULL, "reason=\"truncation_bytes\"",
            s->bytes_lost_truncation);
    counter(b, "tributary_agent_bytes_lost_truncation_total",
            "Bytes seen but not read when a file was truncated (a lower bound).", "counter", NULL,
            s->bytes_lost_truncation);
    counter(b, "tributary_agent_truncations_total", "Truncated files (copytruncate).", "counter",
            NULL, s->truncations);
    counter(b, "tributary_agent_rotations_total", "Files whose path stopped naming them.",
            "counter", NULL, s->rotations);
    counter(b, "tributary_agent_files_opened_total", "Files opened.", "counter", NULL,
            s->files_opened);
    counter(b, "tributary_agent_files_closed_total", "Files closed.", "counter", NULL,
            s->files_closed);
    counter(b, "tributary_agent_open_capped_total",
            "Times a file found by a scan waited for max_open_files.", "counter", NULL,
            s->open_capped);
    counter(b, "tributary_agent_inotify_fallbacks_total",
            "inotify failures that left directories to polling.", "counter", NULL,
            s->inotify_fallbacks);
    counter(b, "tributary_agent_backpressure_pauses_total",
            "Times reading paused because the producer was full.", "counter", NULL,
            s->backpressure_pauses);
    counter(b, "tributary_agent_checkpoint_writes_total", "Checkpoint table writes.", "counter",
            NULL, s->checkpoint_writes);
    counter(b, "tributary_agent_checkpoint_errors_total", "Failed checkpoint writes.", "counter",
            NULL, s->checkpoint_errors);
    counter(b, "tributary_agent_reloads_total", "Configuration reloads.", "counter", NULL,
            s->reloads);
    counter(b, "tributary_agent_reload_failures_total", "Reloads refused (bad configuration).",
            "counter", NULL, s->reload_failures);
    counter(b, "tributary_agent_producer_rebuilds_total",
            "Producers rebuilt after a fatal error (files resumed at their checkpoints).",
            "counter", NULL, s->producer_rebuilds);
    /* syslog, metrics and prometheus inputs and the disk buffer */
    agent_sl_stats_t sl;
    agent_syslogs_stats(a->syslogs, &sl);
    counter(b, "tributary_agent_syslog_received_total", "Syslog messages received and accepted.",
            "counter", NULL, s->syslog_received);
    counter(b, "tributary_agent_syslog_parsed_total", "Syslog messages parsed as RFC 3164 or 5424.",
            "counter", NULL, s->syslog_parsed);
    counter(b, "tributary_agent_syslog_parse_failures_total",
            "Syslog messages in neither format (sent raw when lenient).", "counter", NULL,
            s->syslog_parse_failures);
    counter(b, "tributary_agent_syslog_bytes_total", "Bytes received by syslog listeners.",
            "counter", NULL, sl.bytes);
    counter(b, "tributary_agent_syslog_truncated_total",
            "Syslog messages cut at max_message_bytes.", "counter", NULL, sl.truncated);
    counter(b, "tributary_agent_syslog_framing_errors_total",
            "Stream connections closed on a framing error.", "counter", NULL, sl.framing_errors);
    counter(b, "tributary_agent_syslog_tls_errors_total", "TLS handshakes or records that failed.",
            "counter", NULL, sl.tls_errors);
    counter(b, "tributary_agent_syslog_connections_total", "Stream connections accepted.",
            "counter", NULL, sl.connections_accepted);
    counter(b, "tributary_agent_syslog_connections_refused_total",
            "Stream connections refused (max_connections, max_connections_per_peer).", "counter",
            NULL, sl.connections_refused);
    counter(b, "tributary_agent_syslog_connections", "Stream connections open.", "gauge", NULL,
            sl.connections_open);
    counter(b, "tributary_agent_metrics_samples_total", "Host metrics samples taken.", "counter",
            NULL, s->metrics_samples);
    counter(b, "tributary_agent_metrics_errors_total",
            "Host metrics sources that could not be read.", "counter", NULL, s->metrics_errors);
    counter(b, "tributary_agent_scrapes_total", "Prometheus scrapes done.", "counter", NULL,
            s->scrapes);
    counter(b, "tributary_agent_scrape_errors_total", "Prometheus scrapes that failed.", "counter",
            NULL, s->scrape_errors);
    counter(b, "tributary_agent_scrape_samples_total", "Samples read from Prometheus scrapes.",
            "counter", NULL, s->scrape_samples);
    counter(b, "tributary_agent_scrape_bad_lines_total",
            "Lines of scraped responses that were not the text format (skipped).", "counter", NULL,
            s->scrape_bad_lines);
    counter(b, "tributary_agent_drops_total", NULL, NULL, "reason=\"syslog_invalid\"",
            s->syslog_dropped_invalid);
    counter(b, "tributary_agent_drops_total", NULL, NULL, "reason=\"udp_buffer_full\"",
            sl.drops_full);
    counter(b, "tributary_agent_drops_total", NULL, NULL, "reason=\"udp_receive_queue\"",
            sl.drops_kernel);
    counter(b, "tributary_agent_drops_total", NULL, NULL, "reason=\"syslog_error\"",
            sl.drops_error);
    counter(b, "tributary_agent_drops_total", NULL, NULL, "reason=\"sample_buffer_full\"",
            s->drop_buffer_full);
    counter(b, "tributary_agent_drops_total", NULL, NULL, "reason=\"buffer_write_error\"",
            s->drop_buffer_error);
    counter(b, "tributary_agent_drops_total", NULL, NULL, "reason=\"event_too_large\"",
            s->drop_event_too_large);
    counter(b, "tributary_agent_buffered_events_total", "Events appended to the disk buffer.",
            "counter", NULL, s->buffered_events);
    if (a->buf != NULL) {
        agent_buffer_stats_t bs;
        agent_buffer_stats(a->buf, &bs);
        counter(b, "tributary_agent_buffer_bytes", "Bytes in the disk buffer.", "gauge", NULL,
                bs.bytes);
        counter(b, "tributary_agent_buffer_events", "Events in the disk buffer (not acknowledged).",
                "gauge", NULL, bs.records);
        counter(b, "tributary_agent_buffer_max_bytes", "buffer.max_size.", "gauge", NULL,
                a->buf_max);
        counter(b, "tributary_agent_buffer_full_total",
                "Appends refused because the buffer was full.", "counter", NULL, bs.full);
        counter(b, "tributary_agent_buffer_disk_full_total",
                "Appends refused because the filesystem was full (ENOSPC, EDQUOT), not the buffer.",
                "counter", NULL, bs.disk_full);
        counter(b, "tributary_agent_buffer_disk_full",
                "1 while the disk buffer's filesystem is full (the last append failed for space).",
                "gauge", NULL, bs.disk_full_now ? 1 : 0);
        counter(b, "tributary_agent_buffer_write_errors_total", "Disk buffer write errors.",
                "counter", NULL, bs.write_errors);
        counter(b, "tributary_agent_buffer_sync_errors_total", "Disk buffer fdatasync errors.",
                "counter", NULL, bs.sync_errors);
        counter(b, "tributary_agent_buffer_recovered_torn_bytes",
                "Bytes cut off a torn buffer segment at start.", "gauge", NULL, a->buf_report_torn);
        counter(b, "tributary_agent_buffer_recovered_corrupt_records",
                "Corrupt buffer records skipped at start.", "gauge", NULL, a->buf_report_corrupt);
        counter(b, "tributary_agent_buffer_quarantined_segments",
                "Buffer segments copied to quarantine/ at start.", "gauge", NULL,
                a->buf_report_quarantined);
    }
    agent_output_state_t os;
    agent_output_state(a->out, &os);
    counter(b, "tributary_agent_inflight_events", "Events in the producer.", "gauge", NULL,
            os.inflight_msgs);
    counter(b, "tributary_agent_inflight_bytes", "Bytes of events in the producer.", "gauge", NULL,
            os.inflight_bytes);
    counter(b, "tributary_agent_inflight_bytes_limit", "The in-flight budget.", "gauge", NULL,
            os.max_inflight);
    counter(b, "tributary_agent_memory_limit_bytes", "agent.memory_limit.", "gauge", NULL,
            a->cfg->conf.agent.memory_limit);
    bool first = true;
    uint64_t open = 0;
    for (size_t i = 0; i < a->npipes; i++) {
        for (size_t j = 0; j < a->pipes[i].ninputs; j++) {
            for (agent_file_t *f = agent_tail_files(&a->pipes[i].inputs[j]); f != NULL;
                 f = f->next) {
                char path[1024], labels[1400];
                trib_prom_label_escape_str(path, sizeof(path), f->path);
                snprintf(labels, sizeof(labels), "input=\"%s\",path=\"%s\"", f->in->conf->id, path);
                uint64_t lag = f->size > f->acked_off ? f->size - f->acked_off : 0;
                counter(b, "tributary_agent_file_lag_bytes",
                        first ? "Bytes of a file past its checkpoint." : NULL, "gauge", labels,
                        lag);
                first = false;
                open += f->fd >= 0;
            }
        }
    }
    counter(b, "tributary_agent_open_files", "Files open.", "gauge", NULL, open);
    /* per input: the totals above stay for existing dashboards */
    static const struct {
        const char *name, *help;
        size_t off;
    } per_input[] = {
        {"tributary_agent_input_lines_read_total",
         "Lines (tail) or messages (syslog) read by an input.",
         offsetof(agent_input_stats_t, lines_read)},
        {"tributary_agent_input_events_total",
         "Events of an input accepted for delivery (sent, buffered or printed).",
         offsetof(agent_input_stats_t, events)},
        {"tributary_agent_input_filtered_total", "Events of an input dropped by filters.",
         offsetof(agent_input_stats_t, filtered)},
        {"tributary_agent_input_parse_failures_total",
         "Events of an input that a parse step failed on.",
         offsetof(agent_input_stats_t, parse_failures)},
        {"tributary_agent_input_parse_dropped_total",
         "Events dropped after a failed parse (on_parse_error: drop).",
         offsetof(agent_input_stats_t, parse_dropped)},
        {"tributary_agent_input_parse_routed_total",
         "Events sent to parse_error_topic after a failed parse (on_parse_error: route).",
         offsetof(agent_input_stats_t, parse_routed)},
    };
    for (size_t k = 0; k < sizeof(per_input) / sizeof(per_input[0]); k++) {
        bool head = true;
        for (agent_input_stats_t *is = a->istats; is != NULL; is = is->next) {
            char pn[200], id[400], labels[700];
            trib_prom_label_escape_str(pn, sizeof(pn), is->pipeline);
            trib_prom_label_escape_str(id, sizeof(id), is->input);
            snprintf(labels, sizeof(labels), "pipeline=\"%s\",input=\"%s\"", pn, id);
            counter(b, per_input[k].name, head ? per_input[k].help : NULL, "counter", labels,
                    *(const uint64_t *)((const char *)is + per_input[k].off));
            head = false;
        }
    }
    /* the agent's own buffers by component (librdkafka's are inside inflight) */
    uint64_t ml = 0, rings = 0, files = 0;
    for (size_t i = 0; i < a->npipes; i++) {
        for (size_t j = 0; j < a->pipes[i].ninputs; j++) {
            for (agent_file_t *f = agent_tail_files(&a->pipes[i].inputs[j]); f != NULL;
                 f = f->next) {
                ml += f->ml.cap;
                rings += f->rcap * sizeof(uint64_t);
                files += sizeof(*f) + strlen(f->path) * 2;
            }
        }
    }
    counter(b, "tributary_agent_memory_bytes",
            "Bytes held by the agent's buffers, by component (in-flight events as counted "
            "against output.max_inflight_bytes).",
            "gauge", "component=\"inflight\"", os.inflight_bytes);
    counter(b, "tributary_agent_memory_bytes", NULL, NULL, "component=\"read_buffer\"",
            agent_tails_read_buffer(a->tails));
    counter(b, "tributary_agent_memory_bytes", NULL, NULL, "component=\"multiline\"", ml);
    counter(b, "tributary_agent_memory_bytes", NULL, NULL, "component=\"ack_rings\"", rings);
    counter(b, "tributary_agent_memory_bytes", NULL, NULL, "component=\"files\"", files);
}

int agent_metrics_write_file(agent_t *a)
{
    const char *path = a->cfg->conf.agent.metrics_file;
    if (path == NULL || a->opts.dry_run) {
        /* the running agent's file, not a dry run's */
        return 0;
    }
    trib_buf_t b;
    trib_buf_init(&b);
    agent_metrics_render(a, &b);
    size_t len = 0;
    const uint8_t *p = trib_buf_flatten(&b, &len);
    int rc = p != NULL ? trib_write_file_atomic(path, p, len) : -ENOMEM;
    trib_buf_fini(&b);
    return rc;
}

static void http_render(void *arg, trib_buf_t *b)
{
    agent_metrics_render(arg, b);
}

static bool http_health(void *arg, trib_buf_t *why)
{
    char reason[512];
    if (agent_healthy(arg, reason, sizeof(reason))) {
        return true;
    }
    /* 503 "stopping", or "degraded: <why>" while events cannot be delivered */
    if (strcmp(reason, "stopping") != 0) {
        put(why, "degraded: ");
    }
    put(why, reason);
    put(why, "\n");
    return false;
}

static void http_status(void *arg, trib_buf_t *b)
{
    agent_status_render(arg, b);
}

int agent_http_start(agent_t *a)
{
    const trib_config_addr_t *m = &a->cfg->conf.agent.metrics;
    if (a->http_on) {
        if (m->text == NULL || a->http_addr == NULL || strcmp(m->text, a->http_addr) != 0) {
            TRIB_LOG(TRIB_LOG_WARN, "agent",
                     "reload: agent.metrics changes only at a restart (still on %s)", a->http_addr);
        }
        return 0;
    }
    if (m->text == NULL) {
        return 0;
    }
    if (a->opts.dry_run) {
        /* the running agent's port, not a dry run's */
        TRIB_LOG(TRIB_LOG_INFO, "agent", "dry run: no metrics endpoint (agent.metrics %s)",
                 m->text);
        return 0;
    }
    const char *host = m->host[0] ? m->host : "0.0.0.0";
    int rc = trib_http_start(&a->http, &a->loop, host, m->port, 64, http_render, http_health, a);
    if (rc != 0) {
        TRIB_LOG(TRIB_LOG_ERROR, "agent", "metrics endpoint on %s: %s", m->text, trib_strerror(rc));
        return rc;
    }
    trib_http_set_status(&a->http, http_status);
    a->http_on = true;
    a->http_addr = strdup(m->text);
    TRIB_LOG(TRIB_LOG_INFO, "agent", "metrics on http://%s:%d/metrics", host, a->http.port);
    return 0;
}

static void http_closed(trib_http_t *h)
{
    (void)h;
}

void agent_http_stop(agent_t *a)
{
    if (a->http_on) {
        trib_http_stop(&a->http, http_closed);
        a->http_on = false;
    }
}

/*
 * The agent's state as text, for GET /status and `tributary-agent status`:
 * health, output, disk buffer, then per pipeline its inputs, and per tail
 * input its files with the offset read, the offset acknowledged (the
 * checkpoint), the size at the last look and the lag (size minus the
 * acknowledged offset). One fact per line, "key value" pairs after the
 * first word, so scripts can pick them out.
 */
void agent_status_render(agent_t *a, trib_buf_t *b)
{
    static const char *const types[] = {"tail", "syslog", "metrics", "prometheus"};
    static const char *const modes[] = {"udp", "tcp", "tls", "unix", "unix_dgram"};
    agent_conf_t *k = &a->cfg->conf;
    char line[4608], why[512];
    int64_t now = agent_wall_ms();
    bool ok = agent_healthy(a, why, sizeof(why));
    agent_output_state_t os;
    agent_output_state(a->out, &os);
    snprintf(line, sizeof(line), "agent %s host %s pid %ld up %lld s%s\nhealth %s%s\n", k->agent.id,
             k->agent.hostname, (long)getpid(), (long long)((now - a->started_ms) / 1000),
             a->opts.dry_run ? " (dry run)" : "", ok ? "" : "degraded: ", why);
    put(b, line);
    put(b, "output brokers ");
    for (size_t i = 0; i < k->output.brokers.count; i++) {
        put(b, i ? "," : "");
        put(b, k->output.brokers.items[i]);
    }
    snprintf(line, sizeof(line),
             " state %s inflight_events %" PRIu64 " inflight_bytes %" PRIu64 " limit %" PRIu64
             " acked %" PRIu64 " delivery_errors %" PRIu64 "%s%s\n",
             !os.producer      ? "none"
             : os.brokers_down ? "down"
                               : "up",
             os.inflight_msgs, os.inflight_bytes, os.max_inflight, a->st.events_acked,
             a->st.delivery_errors, os.last_error[0] ? " last_error " : "", os.last_error);
    put(b, line);
    if (a->buf != NULL) {
        agent_buffer_stats_t bs;
        agent_buffer_stats(a->buf, &bs);
        snprintf(line, sizeof(line),
                 "buffer events %" PRIu64 " bytes %" PRIu64 " max %" PRIu64 " used %.1f%%\n",
                 bs.records, bs.bytes, a->buf_max,
                 a->buf_max ? 100.0 * (double)bs.bytes / (double)a->buf_max : 0.0);
        put(b, line);
    } else {
        put(b, "buffer none\n");
    }
    for (size_t i = 0; i < a->npipes; i++) {
        agent_pipe_t *pl = &a->pipes[i];
        snprintf(line, sizeof(line), "pipeline %s topic %s\n", pl->pl.conf->name,
                 pl->pl.conf->topic);
        put(b, line);
        for (size_t j = 0; j < pl->ninputs; j++) {
            agent_input_t *in = &pl->inputs[j];
            agent_input_conf_t *c = in->conf;
            const agent_input_stats_t *is = in->ist;
            int n = snprintf(line, sizeof(line), "  input %s type %s", c->id, types[c->type]);
            if (c->type == AGENT_INPUT_SYSLOG) {
                n += snprintf(line + n, sizeof(line) - (size_t)n, " mode %s address %s state %s",
                              modes[c->mode], c->address,
                              agent_syslog_listening(in) ? "listening" : "stopped");
            }
            if (c->type == AGENT_INPUT_TAIL) {
                n += snprintf(line + n, sizeof(line) - (size_t)n, " files_open %zu",
                              agent_tail_open_count(in));
            }
            snprintf(line + n, sizeof(line) - (size_t)n,
                     " read %" PRIu64 " events %" PRIu64 " filtered %" PRIu64
                     " parse_failures %" PRIu64 "\n",
                     is->lines_read, is->events, is->filtered, is->parse_failures);
            put(b, line);
            for (agent_file_t *f = agent_tail_files(in); f != NULL; f = f->next) {
                uint64_t lag = f->size > f->acked_off ? f->size - f->acked_off : 0;
                snprintf(line, sizeof(line),
                         "    file %s offset %" PRIu64 " acked %" PRIu64 " size %" PRIu64
                         " lag %" PRIu64 "%s\n",
                         f->path, f->off, f->acked_off, f->size, lag,
                         f->fd < 0        ? " closed"
                         : f->detached_ms ? " rotated"
                                          : "");
                put(b, line);
            }
        }
    }
}
