/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Syslog message parsing (RFC 3164 and RFC 5424) and stream framing
 * (RFC 6587: octet counting and newline-terminated). Pure functions over
 * bytes: no sockets, no allocation in the parser (fields point into the
 * input), so the fuzz targets and unit tests drive them directly.
 */
#ifndef TRIBUTARY_AGENT_SYSLOG_H
#define TRIBUTARY_AGENT_SYSLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A timezone for timestamps that carry none (RFC 3164): "local", "UTC" or
   a fixed offset "+02:00" / "-0530". */
typedef struct agent_syslog_tz {
    bool local;     /* use the host's local time rules (localtime_r/mktime) */
    int32_t offset; /* seconds east of UTC when !local */
} agent_syslog_tz_t;

/* 0, or -1 when `s` is none of the accepted forms. */
int agent_syslog_tz_parse(const char *s, agent_syslog_tz_t *tz);

typedef struct agent_syslog_opts {
    int64_t now_ms;       /* wall clock, for RFC 3164's missing year */
    agent_syslog_tz_t tz; /* for timestamps without a zone */
} agent_syslog_opts_t;

/* A string slice into the input; p == NULL when absent ("-" in RFC 5424). */
typedef struct agent_syslog_str {
    const char *p;
    size_t n;
} agent_syslog_str_t;

enum { AGENT_SYSLOG_RFC3164 = 0, AGENT_SYSLOG_RFC5424 = 1 };

typedef struct agent_syslog_msg {
    int format;   /* AGENT_SYSLOG_RFC3164 / _RFC5424 */
    int pri;      /* 0..191, or -1 when the message had no PRI */
    int facility; /* pri / 8 (1, "user", when no PRI, as RFC 3164 §4.3.3 says) */
    int severity; /* pri % 8 (5, "notice", when no PRI) */
    bool has_ts;
    int64_t ts_ms; /* UTC milliseconds */
    agent_syslog_str_t hostname, app, procid, msgid;
    agent_syslog_str_t sd;  /* RFC 5424 structured data text, "[id k="v"]..." */
    agent_syslog_str_t msg; /* the free-form message (a UTF-8 BOM removed);
                               never NULL: empty when there is none */
} agent_syslog_msg_t;

/*
 * Parses one message (without framing; a trailing '\n' or '\r\n' or NUL is
 * ignored). Returns 0 when the message is well formed, 1 when it is not:
 * then *out still holds whatever was recognised and out->msg is the whole
 * input, so a lenient input keeps the raw message. Never reads past n.
 * Year inference for RFC 3164: the year of now_ms, except that a December
 * timestamp seen in January belongs to the previous year and a January one
 * seen in December to the next. o == NULL: the current clock and UTC.
 */
int agent_syslog_parse(const char *s, size_t n, const agent_syslog_opts_t *o,
                       agent_syslog_msg_t *out);

/* Facility and severity keywords ("kern", "user", ..., "local7"; "emerg",
   ..., "debug"); NULL when out of range. */
const char *agent_syslog_facility_name(int facility);
const char *agent_syslog_severity_name(int severity);

/* Bounds on structured data (a message beyond them is not well formed):
   SD-IDs must be unique, and these keep the checks cheap on hostile input. */
#define AGENT_SYSLOG_SD_MAX_ELEMENTS 64
#define AGENT_SYSLOG_SD_MAX_PARAMS 256 /* per element */

/*
 * Structured data as a JSON object: {"id":{"param":"value",...},...}, with
 * RFC 5424's \" \\ \] escapes decoded. A parameter name repeated within an
 * element (RFC 5424's "ip" of "origin") becomes an array of its values in
 * order: {"origin":{"ip":["10.0.0.1","10.0.0.2"]}}. Empty or "-": {}.
 * Writes to out[0..cap); returns the length written (no NUL), or -1 when
 * the text is not well-formed structured data or does not fit. A message
 * agent_syslog_parse() accepted always converts given room (at most
 * 6 * sd.n + 2 bytes).
 */
long agent_syslog_sd_json(const char *sd, size_t n, char *out, size_t cap);

/* ---------------------------------------------------------------------- */
/* Stream framing (RFC 6587).                                             */

enum {
    AGENT_SYSLOG_FRAME_AUTO = 0,    /* per frame: a digit starts an octet count */
    AGENT_SYSLOG_FRAME_OCTET = 1,   /* "LEN SP MSG" only */
    AGENT_SYSLOG_FRAME_NEWLINE = 2, /* MSG LF (a CR before the LF is dropped) */
};

typedef struct agent_syslog_framer {
    int mode;
    size_t max_msg; /* longer messages are cut to max_msg and flagged */
    char *buf;      /* unconsumed bytes */
    size_t len, cap, pos;
    size_t skip;  /* bytes still to discard from an over-long frame */
    bool discard; /* newline mode: discarding up to the next LF */
    uint64_t truncated, framing_errors;
    int err; /* sticky -EPROTO */
} agent_syslog_framer_t;

/* 0, -EINVAL (bad mode, max_msg 0) or -ENOMEM. The framer buffers at most max_msg + 32 bytes beyond
   what the caller has taken out (so a caller that stops calling _next() stops reading the socket
   and holds a bounded amount). */
int agent_syslog_framer_init(agent_syslog_framer_t *f, int mode, size_t max_msg);
void agent_syslog_framer_fini(agent_syslog_framer_t *f);
/* Room for more input, in bytes (0: call _next() first). */
size_t agent_syslog_framer_room(const agent_syslog_framer_t *f);
/* Appends up to `room` bytes; returns how many were taken. */
size_t agent_syslog_framer_push(agent_syslog_framer_t *f, const char *p, size_t n);
/*
 * The next complete message: 1 with *msg and *len set (valid until the next
 * call on the framer; *truncated when it was cut at max_msg), 0 when more
 * input is needed, -EPROTO on a framing error the stream cannot recover
 * from (a bad octet count in octet mode): the caller closes the
 * connection. On end of stream, call _finish() until it returns 0: it
 * hands out what _next() would and then a final unterminated message (a
 * cut-short octet frame is handed out flagged truncated).
 */
int agent_syslog_framer_next(agent_syslog_framer_t *f, const char **msg, size_t *len,
                             bool *truncated);
int agent_syslog_framer_finish(agent_syslog_framer_t *f, const char **msg, size_t *len,
                               bool *truncated);

#endif
