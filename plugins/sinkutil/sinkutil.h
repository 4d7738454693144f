/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Helpers shared by the in-tree sink plugins: a growable string with a
 * sticky allocation error, a JSON validator (RFC 8259, depth-bounded), and
 * the JSON rendering of one record that file, stdout, http and clickhouse
 * write:
 *
 *   {"topic":"web","partition":0,"offset":42,"timestamp":1700000000000,
 *    "key":"host1","headers":{"k":"v"},"value":{...}}
 *
 * The value is embedded as JSON when it is valid JSON, as a JSON string
 * otherwise; key and header values are strings (null when null). Bytes
 * that are not valid UTF-8 become U+FFFD, so the output is always valid.
 */
#ifndef TRIB_SINKUTIL_H
#define TRIB_SINKUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tributary/sink.h"

typedef struct sink_str {
    char *p;
    size_t len;
    size_t cap;
    int err; /* sticky: 0 or -ENOMEM */
} sink_str_t;

void sink_str_init(sink_str_t *s);
void sink_str_fini(sink_str_t *s);
void sink_str_reset(sink_str_t *s);
void sink_str_append(sink_str_t *s, const void *p, size_t n);
void sink_str_puts(sink_str_t *s, const char *z);
void sink_str_printf(sink_str_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The decimal digits of v (what printf's %lld writes, without its cost). */
void sink_str_int(sink_str_t *s, int64_t v);
/* Room for n more bytes at s->p + s->len (the caller writes them and adds to len), or NULL
 * (and err set) when it cannot grow. One check for a run of writes instead of one per append. */
char *sink_str_room(sink_str_t *s, size_t n);

/* Length of the valid UTF-8 sequence at p (1..4; p < end), or 0 if invalid. */
size_t sink_utf8_seq(const uint8_t *p, const uint8_t *end);
/* True if p[0..len) is one JSON value (whitespace around allowed). */
bool sink_json_valid(const uint8_t *p, size_t len);
/* Appends a quoted JSON string (invalid UTF-8 -> U+FFFD). */
void sink_json_string(sink_str_t *s, const uint8_t *p, size_t len);
/* Appends the value as JSON: embedded if valid JSON, else a string; null if null. */
void sink_json_value(sink_str_t *s, trib_record_bytes_t v);
/* The record's event id (header event.id, sent by the agent: the same on
   every re-send of an event), or NULL; *n its length. An empty or over-long
   (more than 128 bytes) value, or one with a byte outside printable ASCII
   (0x21..0x7e), counts as none. */
const uint8_t *sink_event_id(const trib_sink_record_t *r, size_t *n);
/* Appends {"k":"v",...} for Kafka-encoded headers. */
void sink_json_headers(sink_str_t *s, const trib_sink_record_t *r);
/* Appends the record object described above (no newline). */
void sink_json_record(sink_str_t *s, const char *topic, int32_t partition,
                      const trib_sink_record_t *r);

#endif
