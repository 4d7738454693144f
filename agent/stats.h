/* SPDX-License-Identifier: Apache-2.0 */
/* The agent's counters, exposed by metrics.c (Prometheus text, status). */
#ifndef TRIBUTARY_AGENT_STATS_H
#define TRIBUTARY_AGENT_STATS_H

#include <stdint.h>

typedef struct agent_stats {
    uint64_t lines_read;
    uint64_t bytes_read;
    uint64_t events_sent;
    uint64_t events_acked;
    uint64_t events_filtered;
    uint64_t events_failed;
    uint64_t lines_split;
    uint64_t multiline_records;
    uint64_t parse_failures;
    uint64_t delivery_errors;
    uint64_t delivery_retries;
    uint64_t drop_delivery_permanent;
    uint64_t drop_deleted_unread_bytes;
    uint64_t bytes_lost_truncation;
    uint64_t truncations;
    uint64_t rotations;
    uint64_t files_opened;
    uint64_t files_closed;
    uint64_t open_capped;
    uint64_t inotify_fallbacks;
    uint64_t backpressure_pauses;
    uint64_t checkpoint_writes;
    uint64_t checkpoint_errors;
    uint64_t reloads;
    uint64_t reload_failures;
    uint64_t producer_rebuilds;
    /* syslog, metrics and prometheus inputs (events through the disk buffer) */
    uint64_t syslog_received;
    uint64_t syslog_parsed;
    uint64_t syslog_parse_failures;
    uint64_t syslog_dropped_invalid;
    uint64_t metrics_samples;
    uint64_t metrics_errors;
    uint64_t scrapes;
    uint64_t scrape_errors;
    uint64_t scrape_samples;
    uint64_t scrape_bad_lines;
    uint64_t buffered_events;
    uint64_t drop_buffer_full;
    uint64_t drop_buffer_error;
    uint64_t drop_event_too_large;
} agent_stats_t;

/* An input's counters, kept by pipeline name and input id across reloads
   (metrics labelled pipeline="…",input="…"). */
typedef struct agent_input_stats {
    struct agent_input_stats *next;
    char *pipeline;
    char *input;
    uint64_t lines_read; /* tail: lines; syslog: messages; samplers: samples */
    uint64_t events;     /* accepted for delivery (sent, buffered or printed) */
    uint64_t filtered;
    uint64_t parse_failures;
    uint64_t parse_dropped;
    uint64_t parse_routed;
} agent_input_stats_t;

#endif
