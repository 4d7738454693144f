/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Events: the fields of one record on its way through a pipeline, the
 * growable string buffer they are rendered into, the value JSON and the
 * topic and key templates.
 */
#ifndef TRIBUTARY_AGENT_EVENT_H
#define TRIBUTARY_AGENT_EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A growable string buffer (allocation failures are sticky). */
typedef struct agent_sbuf {
    char *p;
    size_t len;
    size_t cap;
    int err;
} agent_sbuf_t;

void agent_sbuf_fini(agent_sbuf_t *b);
int agent_sbuf_reserve(agent_sbuf_t *b, size_t extra);
void agent_sbuf_put(agent_sbuf_t *b, const void *p, size_t n);
void agent_sbuf_putc(agent_sbuf_t *b, char c);
void agent_sbuf_puts(agent_sbuf_t *b, const char *s);
/* Appends s as the inside of a JSON string (no quotes); bad UTF-8 -> U+FFFD. */
/* Length of the valid UTF-8 sequence of 2 to 4 bytes at s (n bytes left), or 0. */
size_t agent_utf8_len(const unsigned char *s, size_t n);
void agent_sbuf_json_str(agent_sbuf_t *b, const char *s, size_t n);

#define AGENT_MAX_FIELDS 64
#define AGENT_EVENT_ID_LEN 16

/*
 * The event id of a tailed record: bytes 0..7 a 64-bit FNV-1a hash of the
 * agent id, the input id, the file's inode and its first
 * min(fingerprint_bytes, end of the record) bytes (the file's identity,
 * which neither rotation by rename nor a restart changes); byte 8 the kind
 * (1: a tailed record); bytes 9..15 the record's start offset in the file,
 * big-endian.
 */
#define AGENT_EVENT_ID_TAIL 1
/* A buffered event (syslog, metrics, prometheus): bytes 0..7 the disk
   buffer's instance (a random id kept in state_dir/buffer/instance), byte
   8 the kind (2), bytes 9..15 the record's buffer id, big-endian. */
#define AGENT_EVENT_ID_BUFFER 2
/* FNV-1a 64 of n bytes, continuing from h (start with AGENT_FNV64_INIT). */
#define AGENT_FNV64_INIT 0xcbf29ce484222325ull
uint64_t agent_fnv64(uint64_t h, const void *p, size_t n);
/* The id of a tailed record from its identity hash and start offset. */
void agent_event_id_tail(uint8_t id[AGENT_EVENT_ID_LEN], uint64_t ident, uint64_t start_off);
/* 32 lowercase hex digits and a NUL. */
void agent_event_id_hex(const uint8_t id[AGENT_EVENT_ID_LEN], char out[2 * AGENT_EVENT_ID_LEN + 1]);

typedef struct agent_field {
    const char *name;
    size_t nlen;
    const char *val;
    size_t vlen;
    bool raw;        /* val is a JSON value (a number, true, an object, "a quoted string") */
    bool plain_name; /* the name needs no JSON escaping (the agent's own fields) */
} agent_field_t;

typedef struct agent_event {
    int64_t ts_ms;
    bool partial; /* a long line split at max_line_bytes */
    /* the zone of times that carry none (the input's timezone; zero: UTC) */
    bool tz_local;
    int32_t tz_offset_s;
    size_t nfields;
    agent_field_t fields[AGENT_MAX_FIELDS];
    agent_sbuf_t *scratch; /* decoded strings; reserved so it never moves */
    /* The event id (sent as header event.id, 32 lowercase hex digits): 16
       bytes the same on every re-send of the event, set by the input where
       the event is born (has_id false: none). */
    bool has_id;
    uint8_t id[AGENT_EVENT_ID_LEN];
} agent_event_t;

/* The value of field `name`, or NULL. */
agent_field_t *agent_event_get(agent_event_t *ev, const char *name, size_t nlen);
/* Sets (replaces) a field; false when the event is full. */
bool agent_event_set(agent_event_t *ev, const char *name, size_t nlen, const char *val, size_t vlen,
                     bool raw);
/* agent_event_set() for a name known to need no JSON escaping when
   plain_name is set (a regex group's, checked at load). */
bool agent_event_set_name(agent_event_t *ev, const char *name, size_t nlen, bool plain_name,
                          const char *val, size_t vlen, bool raw);
void agent_event_remove(agent_event_t *ev, const char *name, size_t nlen);

/*
 * A set of names as a 64-bit mask, a bit per name: a name whose bit is not
 * in the set of an event's names is not among its fields, so a parser that
 * keeps the set adds most fields without looking them up (a bit that is
 * set says nothing: then the name is looked up).
 */
static inline uint64_t agent_name_bit(const char *name, size_t nlen)
{
    if (nlen == 0) {
        return 1;
    }
    unsigned h = ((unsigned)(unsigned char)name[0] << 1) ^
                 ((unsigned)(unsigned char)name[nlen - 1] * 5u) ^ ((unsigned)nlen << 3) ^
                 ((unsigned)(unsigned char)name[nlen / 2] * 3u);
    return (uint64_t)1 << (h & 63);
}
/* The set of the event's names. */
uint64_t agent_event_names(const agent_event_t *ev);
/*
 * agent_event_set_name() for a parser that keeps `names`, the set of the
 * event's names (agent_event_names()), and knows the name's bit: the name
 * is looked up only when its bit is in the set. Returns the field, or NULL
 * when the event is full.
 */
static inline agent_field_t *agent_event_put(agent_event_t *ev, uint64_t *names, uint64_t bit,
                                             const char *name, size_t nlen, bool plain_name,
                                             const char *val, size_t vlen, bool raw)
{
    agent_field_t *f;
    if ((*names & bit) != 0 && (f = agent_event_get(ev, name, nlen)) != NULL) {
        f->val = val;
        f->vlen = vlen;
        f->raw = raw;
        return f;
    }
    if (ev->nfields >= AGENT_MAX_FIELDS) {
        return NULL;
    }
    *names |= bit;
    f = &ev->fields[ev->nfields++];
    f->name = name;
    f->nlen = nlen;
    f->val = val;
    f->vlen = vlen;
    f->raw = raw;
    f->plain_name = plain_name;
    return f;
}
/* The field's text: a raw JSON string is decoded into the scratch buffer. */
void agent_field_text(agent_event_t *ev, const agent_field_t *f, const char **s, size_t *n);
/* The value JSON object. */
void agent_event_render(agent_event_t *ev, agent_sbuf_t *out);
/* A "{field}" template; `topic` replaces characters Kafka refuses with '_'. */
void agent_template_render(agent_event_t *ev, const char *tmpl, bool topic, agent_sbuf_t *out);
/* The wall clock in ms (CLOCK_REALTIME_COARSE: events are stamped with it). */
int64_t agent_wall_ms(void);
/* "2026-11-26T16:05:01.123Z" and a NUL; returns the length. All 32 bytes of
   out may be written. */
size_t agent_format_time(int64_t ms, char out[32]);

#endif
