/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A pipeline: what every input's records go through on their way to the
 * output. An input starts an event (agent_event_begin: the fixed fields
 * host, agent, source and message), adds its own fields, and hands it to
 * agent_pipeline_process(): the parse steps, the filters, then the value
 * JSON, the topic and key templates and the headers, as one message
 * (agent_msg_t) for the output or the disk buffer. The pipeline holds the
 * buffers the message is rendered into: a message is valid until the next
 * event of the same pipeline.
 */
#ifndef TRIBUTARY_AGENT_PIPELINE_H
#define TRIBUTARY_AGENT_PIPELINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf.h"
#include "event.h"
#include "msg.h"
#include "stats.h"

/* Where an event came from: its headers and its input's counters. */
typedef struct agent_source {
    const char *type; /* header source_type: tail, syslog, metrics, prometheus */
    const char *hdr;  /* the second header's name: path (tail) or source */
    const char *name; /* its value: the file, the client's address, the URL */
    agent_input_stats_t *ist;
} agent_source_t;

typedef struct agent_pipeline {
    const agent_pipeline_conf_t *conf;
    agent_stats_t *st;
    bool headers;  /* output.headers */
    bool event_id; /* output.event_id */
    char idhex[2 * AGENT_EVENT_ID_LEN + 1];
    bool topic_fixed; /* conf->topic has no template fields */
    size_t topic_len;
    agent_sbuf_t jhost, jagent; /* host and agent id as JSON strings */
    agent_sbuf_t scratch;       /* the event's decoded strings */
    agent_sbuf_t val, key, topic;
} agent_pipeline_t;

/* 0 or -ENOMEM (then agent_pipeline_fini()). */
int agent_pipeline_init(agent_pipeline_t *pl, const agent_pipeline_conf_t *conf,
                        const agent_conf_t *k, agent_stats_t *st);
void agent_pipeline_fini(agent_pipeline_t *pl);

/*
 * Starts an event of input `ic` read at ts_ms: host, agent, source (a JSON
 * value when source_json, else text) and, when msg is not NULL, message.
 * The pipeline's scratch buffer is emptied and reserved for `reserve`
 * bytes, so fields may point into it: 0 or -ENOMEM.
 */
int agent_event_begin(agent_event_t *ev, agent_pipeline_t *pl, const agent_input_conf_t *ic,
                      int64_t ts_ms, const char *source, size_t slen, bool source_json,
                      const char *msg, size_t len, size_t reserve);

/*
 * Parse steps, filters, rendering. 0: *out is the message to send (the
 * caller counts src->ist->events and, when out_routed, parse_routed once
 * it is accepted); 1: the event goes no further (filtered, or dropped by
 * on_parse_error: drop; counted); -EAGAIN: out of memory, nothing rendered.
 */
int agent_pipeline_process(agent_pipeline_t *pl, agent_event_t *ev, const agent_source_t *src,
                           agent_msg_t *out, bool *out_routed);

#endif
