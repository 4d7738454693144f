/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One Kafka message as the agent renders it (pipeline.h), keeps it in the
 * disk buffer (buffer/buffer.h: the buffer's record is this type) and
 * hands it to librdkafka (output/output.h).
 */
#ifndef TRIBUTARY_AGENT_MSG_H
#define TRIBUTARY_AGENT_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AGENT_MSG_MAX_HDRS 8

typedef struct agent_msg_hdr {
    const char *name;
    size_t nlen;
    const char *val;
    size_t vlen;
} agent_msg_hdr_t;

typedef struct agent_msg {
    const char *topic; /* NUL-terminated when rendered (a buffered record's is not) */
    size_t topic_len;
    const char *key; /* NULL: no key */
    size_t key_len;
    const char *value;
    size_t value_len;
    int64_t ts_ms;
    size_t nhdrs;
    agent_msg_hdr_t hdrs[AGENT_MSG_MAX_HDRS];
    /* the pipeline's topic without template fields (not routed): the output
       may keep a handle for it (not stored by the buffer) */
    bool topic_fixed;
    /* the header names are NUL-terminated strings (the pipeline's own; a
       buffered record's are not): not stored by the buffer */
    bool hdr_names_cstr;
} agent_msg_t;

#endif
