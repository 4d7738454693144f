/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The agent's internal interfaces: configuration, events, parsers,
 * filters, the tail input, checkpoints, the output and the loop.
 *
 * Data flow (one libuv loop, one thread; librdkafka runs its own threads):
 *
 *   tail file --pread--> lines --multiline--> record --parse--> fields
 *     --filters--> JSON value + topic + key --produce--> librdkafka
 *     <--delivery report-- ack ring of the file --> checkpoint table
 *     --every checkpoint_interval--> state_dir/checkpoints (atomic rename)
 *
 * Invariants:
 *  - A file is read with pread() from `off`, the first byte not yet turned
 *    into an event, so "pausing" or "rewinding" is only not advancing `off`:
 *    no per-file read buffer exists, one shared scratch buffer serves all.
 *  - Every event made from a file gets the next sequence number of that
 *    file and one entry (the file offset just past its last line) in the
 *    file's ack ring. A delivery report marks its entry; the checkpoint is
 *    the offset of the longest acknowledged prefix of the ring, so it only
 *    ever moves past lines whose delivery came back successful, in order.
 *    Events the filters drop enter the ring already acknowledged.
 *  - A message's opaque is (file slot << 40) | (seq & 2^40-1); a file slot
 *    is released only when the file is closed and nothing is in flight.
 */
#ifndef TRIBUTARY_AGENT_H
#define TRIBUTARY_AGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "tributary/config.h"
#include "tributary/error.h"

/* ---------------------------------------------------------------------- */
/* A growable string buffer (allocation failures are sticky).             */

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
void agent_sbuf_json_str(agent_sbuf_t *b, const char *s, size_t n);

/* ---------------------------------------------------------------------- */
/* Configuration                                                          */

enum {
    AGENT_INPUT_TAIL = 0,
    AGENT_INPUT_SYSLOG = 1,
    AGENT_INPUT_METRICS = 2,
    AGENT_INPUT_PROMETHEUS = 3,
};
enum {
    AGENT_SYSLOG_MODE_UDP = 0,
    AGENT_SYSLOG_MODE_TCP = 1,
    AGENT_SYSLOG_MODE_TLS = 2,
    AGENT_SYSLOG_MODE_UNIX = 3,
    AGENT_SYSLOG_MODE_UNIX_DGRAM = 4,
};
enum { AGENT_READ_BEGINNING = 0, AGENT_READ_END = 1 };
enum {
    AGENT_PARSE_REGEX = 0,
    AGENT_PARSE_JSON = 1,
    AGENT_PARSE_LOGFMT = 2,
    AGENT_PARSE_SYSLOG = 3
};
enum {
    AGENT_FILTER_GREP = 0,
    AGENT_FILTER_EXCLUDE = 1,
    AGENT_FILTER_SET = 2,
    AGENT_FILTER_REMOVE = 3,
    AGENT_FILTER_RENAME = 4,
};
enum {
    AGENT_COMP_NONE = 0,
    AGENT_COMP_GZIP,
    AGENT_COMP_SNAPPY,
    AGENT_COMP_LZ4,
    AGENT_COMP_ZSTD,
};

/* A compiled PCRE2 pattern with its match data and named groups. */
typedef struct agent_regex {
    pcre2_code *code;
    pcre2_match_data *md;
    pcre2_match_context *mctx;
    uint32_t ngroups; /* named groups */
    struct {
        uint32_t num;
        const char *name;
    } * groups;
} agent_regex_t;

typedef struct agent_multiline_conf {
    const char *start;
    int64_t timeout_ms;
    uint64_t max_lines;
    agent_regex_t *re; /* compiled start; NULL: multiline off */
} agent_multiline_conf_t;

typedef struct agent_tls_conf {
    const char *cert; /* PEM certificate chain */
    const char *key;  /* PEM private key */
    const char *ca;   /* PEM CA bundle: clients must present a certificate it signed */
    trib_config_strlist_t peer_names; /* with ca: the client certificate must name one */
} agent_tls_conf_t;

typedef struct agent_input_conf {
    int type;
    const char *id;
    trib_config_strlist_t paths;
    trib_config_strlist_t exclude;
    int read_from;
    agent_multiline_conf_t multiline;
    uint64_t max_line_bytes;
    uint64_t fingerprint_bytes;
    int64_t scan_interval_ms;
    int64_t poll_interval_ms;
    int64_t rotate_wait_ms;
    int64_t close_inactive_ms;
    int64_t deleted_max_age_ms;
    uint64_t max_open_files;
    bool inotify;
    /* syslog */
    int mode;
    const char *address;
    int framing;
    uint64_t max_message_bytes;
    uint64_t max_connections;
    uint64_t max_connections_per_peer;
    uint64_t receive_buffer;
    int64_t idle_timeout_ms;
    const char *timezone;
    bool lenient;
    bool keep_raw;
    const char *socket_mode;
    agent_tls_conf_t tls;
    /* metrics and prometheus */
    int64_t interval_ms;
    trib_config_strlist_t collectors;
    const char *root; /* metrics: where proc/ is read (tests); default "/" */
    const char *url;
    int64_t timeout_ms;
    uint64_t max_body_bytes;
    /* derived */
    char idbuf[160];
    unsigned collector_mask;
    int32_t tz_offset_s;
    bool tz_local;
    uint32_t socket_perm;
} agent_input_conf_t;

enum {
    AGENT_TYPE_INT = 0,
    AGENT_TYPE_FLOAT = 1,
    AGENT_TYPE_BOOL = 2,
    AGENT_TYPE_TIMESTAMP = 3,
};
#define AGENT_MAX_TYPES 32

typedef struct agent_parse_conf {
    int type;
    const char *pattern;
    const char *field;
    const char *time_field;
    const char *time_format;
    trib_config_map_t types; /* field: int|float|bool|timestamp */
    agent_regex_t *re;
    uint8_t type_codes[AGENT_MAX_TYPES]; /* AGENT_TYPE_* of each types entry */
} agent_parse_conf_t;

enum {
    AGENT_ON_PARSE_ERROR_KEEP = 0,
    AGENT_ON_PARSE_ERROR_DROP = 1,
    AGENT_ON_PARSE_ERROR_ROUTE = 2
};

typedef struct agent_filter_conf {
    int type;
    const char *field;
    const char *match;
    const char *value;
    const char *to;
    agent_regex_t *re;
} agent_filter_conf_t;

typedef struct agent_pipeline_conf {
    const char *name;
    agent_input_conf_t *inputs;
    size_t ninputs;
    agent_parse_conf_t *parse;
    size_t nparse;
    agent_filter_conf_t *filters;
    size_t nfilters;
    const char *topic;
    const char *key;
    int on_parse_error;
    const char *parse_error_topic;
} agent_pipeline_conf_t;

typedef struct agent_conf {
    struct {
        const char *id;
        const char *hostname;
        const char *state_dir;
        uint64_t memory_limit;
        int64_t checkpoint_interval_ms;
        int64_t shutdown_timeout_ms;
        int64_t state_ttl_ms;
        trib_config_addr_t metrics;
        const char *metrics_file;
        int log_level;
        int log_format;
        uint64_t regex_match_limit;
        uint64_t regex_depth_limit;
    } agent;
    struct {
        trib_config_strlist_t brokers;
        int compression;
        trib_config_map_t options;
        uint64_t max_inflight_bytes;
        bool headers;
    } output;
    struct {
        uint64_t max_size;
        uint64_t segment_size;
    } buffer;
    agent_pipeline_conf_t *pipelines;
    size_t npipelines;
} agent_conf_t;

/* A loaded, validated configuration (schema + regexes + librdkafka keys). */
typedef struct agent_config {
    trib_config_t *cfg;
    agent_conf_t conf;
    char *text; /* the file's bytes, for positions */
    size_t text_len;
    const char *name;
    trib_error_t *errs; /* the agent's own validation errors */
    size_t nerrs;
    trib_error_t *warns; /* warnings: the configuration loads, but may not do what was meant */
    size_t nwarns;
    agent_regex_t **regexes;
    size_t nregexes;
    char hostbuf[256];
} agent_config_t;

extern const trib_config_option_t agent_conf_schema[];
extern const char *const agent_compression_names[];

/*
 * Loads and validates `path`. Returns 0, TRIB_ECONFIG (errors printed by
 * agent_config_print_errors()) or -ENOMEM. *out is set unless -ENOMEM.
 */
int agent_config_load(agent_config_t **out, const char *path);
int agent_config_load_string(agent_config_t **out, const char *name, const char *text, size_t len);
void agent_config_print_errors(const agent_config_t *c, FILE *fp);
/* "file:line:col: warning: ..." lines; returns how many. */
size_t agent_config_print_warnings(const agent_config_t *c, FILE *fp);
size_t agent_config_error_count(const agent_config_t *c);
void agent_config_free(agent_config_t *c);

/* Position of a YAML node by path ("pipelines.0.parse.1.pattern"); 0 or -1. */
int agent_yaml_locate(const char *text, size_t len, const char *path, int *line, int *col,
                      int *style);

/* Compiles a pattern with JIT and limits; NULL + message on error. */
agent_regex_t *agent_regex_new(const char *pattern, uint64_t match_limit, uint64_t depth_limit,
                               char *err, size_t errlen, size_t *erroff);
void agent_regex_free(agent_regex_t *re);
/* 1 match, 0 no match, <0 error (limits hit) */
int agent_regex_match(agent_regex_t *re, const char *s, size_t n);

/* ---------------------------------------------------------------------- */
/* Events                                                                 */

#define AGENT_MAX_FIELDS 64

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
} agent_event_t;

/* The value of field `name`, or NULL. */
agent_field_t *agent_event_get(agent_event_t *ev, const char *name, size_t nlen);
/* Sets (replaces) a field; false when the event is full. */
bool agent_event_set(agent_event_t *ev, const char *name, size_t nlen, const char *val, size_t vlen,
                     bool raw);
void agent_event_remove(agent_event_t *ev, const char *name, size_t nlen);
/* The field's text: a raw JSON string is decoded into the scratch buffer. */
void agent_field_text(agent_event_t *ev, const agent_field_t *f, const char **s, size_t *n);
/* The value JSON object. */
void agent_event_render(agent_event_t *ev, agent_sbuf_t *out);
/* A "{field}" template; `topic` replaces characters Kafka refuses with '_'. */
void agent_template_render(agent_event_t *ev, const char *tmpl, bool topic, agent_sbuf_t *out);
/* "2026-11-26T16:05:01.123Z" and a NUL; returns the length. All 32 bytes of
   out may be written. */
size_t agent_format_time(int64_t ms, char out[32]);

/* Parsers: 0 parsed, 1 no match, 2 a types: conversion failed, <0 error.
   Fields point into the event's text or its scratch buffer. */
int agent_parse_apply(const agent_parse_conf_t *p, agent_event_t *ev);
/* Every parse step of a pipeline. A step that fails marks the event
   "parse_error": true and "parse_error_by": its type (the first that
   failed). Returns how many steps failed. */
size_t agent_parse_all(const agent_pipeline_conf_t *pc, agent_event_t *ev);
/* A types: conversion of a field's text: the JSON value in out (int,
   float, bool) or an RFC 3339 string (timestamp, read with time_format).
   Returns the length, or 0 when the text is not of that type. */
size_t agent_convert(int type, const char *s, size_t n, const char *time_format, char *out,
                     size_t outlen);
/* "rfc3339", "unix", "unix_ms" or a strptime() format. 0 or -1. */
int agent_parse_time(const char *s, size_t n, const char *fmt, int64_t *ms);
/* Filters: true keeps the event. */
bool agent_filter_apply(const agent_filter_conf_t *f, agent_event_t *ev);

/* ---------------------------------------------------------------------- */
/* Checkpoints                                                            */

typedef struct agent_ckpt {
    struct agent_ckpt *next;
    char *input_id;
    char *path;
    uint64_t dev;
    uint64_t ino;
    uint32_t fp_len;
    uint32_t fp_crc;
    uint64_t offset;
    int64_t closed_ms; /* 0 while a file object holds it */
    struct agent_file *file;
} agent_ckpt_t;

typedef struct agent_ckpt_table {
    agent_ckpt_t *head;
    size_t count;
    bool dirty;
} agent_ckpt_table_t;

agent_ckpt_t *agent_ckpt_find(agent_ckpt_table_t *t, const char *input_id, uint64_t dev,
                              uint64_t ino);
agent_ckpt_t *agent_ckpt_add(agent_ckpt_table_t *t, const char *input_id, const char *path,
                             uint64_t dev, uint64_t ino);
void agent_ckpt_remove(agent_ckpt_table_t *t, agent_ckpt_t *ck);
void agent_ckpt_clear(agent_ckpt_table_t *t);
/* Reads state_dir/checkpoints (missing is fine). 0 or -errno. */
int agent_ckpt_load(agent_ckpt_table_t *t, const char *dir);
/* Atomic write: checkpoints.tmp, fsync, rename, fsync dir. 0 or -errno. */
int agent_ckpt_save(const agent_ckpt_table_t *t, const char *dir);
/* Drops closed entries older than ttl. */
void agent_ckpt_expire(agent_ckpt_table_t *t, int64_t now_ms, int64_t ttl_ms);

/* ---------------------------------------------------------------------- */
/* The agent                                                              */

typedef struct agent agent_t;

typedef struct agent_options {
    const char *config_path;
    bool dry_run;
    bool once; /* exit when every file has been read to its end and acked */
    /* dry run: lines of this file ("-": stdin) go through the pipeline of
       input input_id (NULL: the only input) instead of the inputs' own
       sources; the agent exits once they are printed */
    const char *input_path;
    const char *input_id;
    FILE *dry_out;
} agent_options_t;

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

int agent_new(agent_t **out, agent_config_t *cfg, const agent_options_t *opts);
/* Runs the loop until SIGTERM/SIGINT (or --once). Returns the exit status. */
int agent_run(agent_t *a);
/* Closes the loop; returns uv_loop_close()'s status (0: no handle was left). */
int agent_free(agent_t *a);
/* The configuration in use (a reload replaces the one given): the caller frees it. */
agent_config_t *agent_take_config(agent_t *a);
/* Prometheus text exposition of the agent's counters. */
struct trib_buf;
void agent_metrics_render(agent_t *a, struct trib_buf *out);

#endif
