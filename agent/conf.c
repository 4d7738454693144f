/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The agent's configuration: the schema (agent, output, pipelines) for the
 * shared loader, then the agent's own validation pass, which the schema
 * types cannot express: regexes compiled with PCRE2 (JIT, match and depth
 * limits), options that a parser or filter type needs, producer options
 * librdkafka refuses, and delivery guarantees a user may not switch off.
 *
 * The loader keeps positions only for MAP pairs, so this pass finds the
 * position of any other node by walking the file's YAML events again
 * (agent_yaml_locate); a bad pattern is reported at the column of the
 * character PCRE2 complained about when the scalar is plain or single
 * quoted on one line, else at the scalar.
 */
#include "conf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <yaml.h>

#include "event.h"
#include "hostmetrics/hostmetrics.h"
#include "regex.h"
#include "syslog/syslog.h"

static const char *const input_types[] = {"tail", "syslog", "metrics", "prometheus", NULL};
static const char *const syslog_modes[] = {"udp", "tcp", "tls", "unix", "unix_dgram", NULL};
static const char *const framings[] = {"auto", "octet_counting", "newline", NULL};
static const char *const read_froms[] = {"beginning", "end", NULL};
static const char *const parse_types[] = {"regex", "json", "logfmt", "syslog", NULL};
static const char *const value_types[] = {"int", "float", "bool", "timestamp", NULL};
static const char *const on_parse_error_choices[] = {"keep", "drop", "route", NULL};
static const char *const filter_types[] = {"grep", "exclude", "set", "remove", "rename", NULL};
const char *const agent_compression_names[] = {"none", "gzip", "snappy", "lz4", "zstd", NULL};
static const char *const log_levels[] = {"error", "warn", "info", "debug", "trace", NULL};
static const char *const log_formats[] = {"text", "json", NULL};

static const trib_config_option_t multiline_opts[] = {
    {TRIB_CONFIG_FIELD(agent_multiline_conf_t, start, STRING),
     .desc = "regex matching the first line of a record; unset: one line is one record"},
    {TRIB_CONFIG_KEY("timeout", agent_multiline_conf_t, timeout_ms, DURATION), .def = "2s",
     .min = "1ms", .max = "1h", .desc = "a record with no new line for this long is sent"},
    {TRIB_CONFIG_FIELD(agent_multiline_conf_t, max_lines, UINT), .def = "500", .min = "1",
     .max = "100000", .desc = "lines in one record; more start a new record"},
    TRIB_CONFIG_END,
};

static const trib_config_option_t tls_opts[] = {
    {TRIB_CONFIG_FIELD(agent_tls_conf_t, cert, STRING), .min = "1",
     .desc = "PEM certificate (chain) of the listener"},
    {TRIB_CONFIG_FIELD(agent_tls_conf_t, key, STRING), .min = "1", .desc = "PEM private key"},
    {TRIB_CONFIG_FIELD(agent_tls_conf_t, ca, STRING), .min = "1",
     .desc = "PEM CA bundle; when set, clients must present a certificate it signed"},
    {TRIB_CONFIG_FIELD(agent_tls_conf_t, peer_names, STRLIST), .min = "1",
     .desc = "with ca: the client certificate must name one of these hosts (a DNS "
             "subjectAltName, or its CN when it has none)"},
    TRIB_CONFIG_END,
};

static const trib_config_option_t input_opts[] = {
    {TRIB_CONFIG_FIELD(agent_input_conf_t, type, ENUM), .flags = TRIB_CONFIG_REQUIRED,
     .choices = input_types, .desc = "input type"},
    {TRIB_CONFIG_FIELD(agent_input_conf_t, id, STRING), .min = "1", .max = "128",
     .desc = "names this input's checkpoints; default <pipeline>/<index>"},
    {TRIB_CONFIG_FIELD(agent_input_conf_t, paths, STRLIST), .min = "1",
     .desc = "tail (required): glob patterns of the files to tail"},
    {TRIB_CONFIG_FIELD(agent_input_conf_t, exclude, STRLIST),
     .desc = "glob patterns (of the name, or of the path when they hold a '/') to skip"},
    {TRIB_CONFIG_FIELD(agent_input_conf_t, read_from, ENUM), .def = "beginning",
     .choices = read_froms,
     .desc = "where files start on this input's first run (no checkpoints of its id)"},
    {TRIB_CONFIG_SECTION(agent_input_conf_t, multiline, multiline_opts)},
    {TRIB_CONFIG_FIELD(agent_input_conf_t, max_line_bytes, SIZE), .def = "64KiB", .min = "256",
     .max = "16MiB", .desc = "longer lines are split into parts flagged partial"},
    {TRIB_CONFIG_FIELD(agent_input_conf_t, fingerprint_bytes, SIZE), .def = "1KiB", .min = "16",
     .max = "64KiB", .desc = "bytes at the start of a file that identify it with dev+inode"},
    {TRIB_CONFIG_KEY("scan_interval", agent_input_conf_t, scan_interval_ms, DURATION), .def = "10s",
     .min = "10ms", .max = "1h", .desc = "how often the globs are expanded again"},
    {TRIB_CONFIG_KEY("poll_interval", agent_input_conf_t, poll_interval_ms, DURATION),
     .def = "250ms", .min = "10ms", .max = "1m", .desc = "how often open files are stat()ed"},
    {TRIB_CONFIG_KEY("rotate_wait", agent_input_conf_t, rotate_wait_ms, DURATION), .def = "5s",
     .min = "0", .max = "1h",
     .desc = "a rotated or deleted file is closed when read to its end and idle this long"},
    {TRIB_CONFIG_KEY("close_inactive", agent_input_conf_t, close_inactive_ms, DURATION),
     .def = "5m", .min = "1s", .max = "30d",
     .desc = "a file that did not grow for this long is closed (reopened when it grows)"},
    {TRIB_CONFIG_KEY("deleted_max_age", agent_input_conf_t, deleted_max_age_ms, DURATION),
     .def = "10m", .min = "1s", .max = "30d",
     .desc = "a deleted file is closed after this long even if unread (bytes counted)"},
    {TRIB_CONFIG_FIELD(agent_input_conf_t, max_open_files, UINT), .def = "1024", .min = "1",
     .max = "1000000", .desc = "open files per input; more wait for one to close"},
    {TRIB_CONFIG_FIELD(agent_input_conf_t, inotify, BOOL), .def = "true",
     .desc = "watch directories with inotify (stat polling is always on as a fallback)"},
    /* syslog */
    {TRIB_CONFIG_FIELD(agent_input_conf_t, mode, ENUM), .def = "udp", .choices = syslog_modes,
     .desc = "syslog: the transport (unix: a stream socket; unix_dgram: as /dev/log)"},
    {TRIB_CONFIG_FIELD(agent_input_conf_t, address, STRING), .min = "1",
     .desc = "syslog (required): host:port to listen on, or the socket path for unix modes"},
    {TRIB_CONFIG_FIELD(agent_input_conf_t, framing, ENUM), .def = "auto", .choices = framings,
     .desc = "syslog stream modes: RFC 6587 framing; auto: a frame starting with a digit is "
             "octet-counted, any other is newline-terminated"},
    {TRIB_CONFIG_FIELD(agent_input_conf_t, max_message_bytes, SIZE), .def = "64KiB", .min = "480",
     .max = "16MiB", .desc = "syslog: longer messages are cut and flagged"},
    {TRIB_CONFIG_FIELD(agent_input_conf_t, max_connections, UINT), .def = "256", .min = "1",
     .max = "1000000", .desc = "syslog stream modes: open connections; more are refused"},
    {TRIB_CONFIG_FIELD(agent_input_conf_t, max_connections_per_peer, UINT), .def = "0",
     .max = "1000000",
     .desc = "syslog stream modes: open connections per client address; 0: no cap"},
    {TRIB_CONFIG_FIELD(agent_input_conf_t, receive_buffer, SIZE), .def = "0", .max = "1GiB",
     .desc = "syslog: SO_RCVBUF of the socket; 0: the kernel's default"},
    {TRIB_CONFIG_KEY("idle_timeout", agent_input_conf_t, idle_timeout_ms, DURATION), .def = "0",
     .max = "30d", .desc = "syslog stream modes: close connections idle this long; 0: never"},
    {TRIB_CONFIG_FIELD(agent_input_conf_t, timezone, STRING), .def = "local",
     .desc = "syslog, tail: the zone of timestamps that carry none (RFC 3164, parse: syslog): "
             "local, UTC or +hh:mm"},
    {TRIB_CONFIG_FIELD(agent_input_conf_t, lenient, BOOL), .def = "true",
     .desc = "syslog: a message that is not RFC 3164/5424 is sent with its raw text as the "
             "message (parse_error: true); false: it is dropped and counted"},
    {TRIB_CONFIG_FIELD(agent_input_conf_t, keep_raw, BOOL), .def = "false",
     .desc = "syslog: add the received text, unparsed, as the field raw"},
    {TRIB_CONFIG_FIELD(agent_input_conf_t, socket_mode, STRING), .def = "0666",
     .desc = "syslog unix modes: the socket file's permissions (octal)"},
    {TRIB_CONFIG_SECTION(agent_input_conf_t, tls, tls_opts),
     .desc = "syslog mode tls: the server's certificate and key, and a CA for client certificates"},
    /* metrics and prometheus */
    {TRIB_CONFIG_KEY("interval", agent_input_conf_t, interval_ms, DURATION), .def = "10s",
     .min = "100ms", .max = "1d", .desc = "metrics, prometheus: time between samples"},
    {TRIB_CONFIG_FIELD(agent_input_conf_t, collectors, STRLIST),
     .desc = "metrics: any of cpu, memory, load, disk, filesystem, network; default all"},
    {TRIB_CONFIG_FIELD(agent_input_conf_t, root, STRING), .def = "/",
     .desc = "metrics: the directory whose proc/ is read (a container's view of the host)"},
    {TRIB_CONFIG_FIELD(agent_input_conf_t, url, STRING), .min = "1",
     .desc = "prometheus (required): the http(s) URL of an exporter's metrics"},
    {TRIB_CONFIG_KEY("timeout", agent_input_conf_t, timeout_ms, DURATION), .def = "10s",
     .min = "10ms", .max = "1h", .desc = "prometheus: a scrape taking longer fails"},
    {TRIB_CONFIG_FIELD(agent_input_conf_t, max_body_bytes, SIZE), .def = "16MiB", .min = "1KiB",
     .max = "1GiB", .desc = "prometheus: a larger response fails"},
    TRIB_CONFIG_END,
};

static const trib_config_option_t parse_opts[] = {
    {TRIB_CONFIG_FIELD(agent_parse_conf_t, type, ENUM), .flags = TRIB_CONFIG_REQUIRED,
     .choices = parse_types},
    {TRIB_CONFIG_FIELD(agent_parse_conf_t, pattern, STRING),
     .desc = "regex: a PCRE2 pattern; named groups become fields"},
    {TRIB_CONFIG_FIELD(agent_parse_conf_t, field, STRING), .def = "message", .min = "1",
     .desc = "the field parsed"},
    {TRIB_CONFIG_FIELD(agent_parse_conf_t, time_field, STRING),
     .desc = "a parsed field that holds the event's time (@timestamp)"},
    {TRIB_CONFIG_FIELD(agent_parse_conf_t, time_format, STRING), .def = "rfc3339",
     .desc = "rfc3339, unix, unix_ms or a strptime() format"},
    {TRIB_CONFIG_FIELD(agent_parse_conf_t, types, MAP),
     .desc = "field: int, float, bool or timestamp (read with time_format, sent as RFC 3339)"},
    TRIB_CONFIG_END,
};

static const trib_config_option_t filter_opts[] = {
    {TRIB_CONFIG_FIELD(agent_filter_conf_t, type, ENUM), .flags = TRIB_CONFIG_REQUIRED,
     .choices = filter_types},
    {TRIB_CONFIG_FIELD(agent_filter_conf_t, field, STRING), .flags = TRIB_CONFIG_REQUIRED,
     .min = "1"},
    {TRIB_CONFIG_FIELD(agent_filter_conf_t, match, STRING),
     .desc = "grep/exclude: a PCRE2 pattern"},
    {TRIB_CONFIG_FIELD(agent_filter_conf_t, value, STRING), .desc = "set: the value"},
    {TRIB_CONFIG_FIELD(agent_filter_conf_t, to, STRING), .min = "1", .desc = "rename: new name"},
    TRIB_CONFIG_END,
};

static const trib_config_option_t pipeline_opts[] = {
    {TRIB_CONFIG_FIELD(agent_pipeline_conf_t, name, STRING), .flags = TRIB_CONFIG_REQUIRED,
     .min = "1", .max = "64"},
    {TRIB_CONFIG_SECTIONS(agent_pipeline_conf_t, inputs, ninputs, agent_input_conf_t, input_opts),
     .flags = TRIB_CONFIG_REQUIRED, .min = "1"},
    {TRIB_CONFIG_SECTIONS(agent_pipeline_conf_t, parse, nparse, agent_parse_conf_t, parse_opts)},
    {TRIB_CONFIG_SECTIONS(agent_pipeline_conf_t, filters, nfilters, agent_filter_conf_t,
                          filter_opts)},
    {TRIB_CONFIG_FIELD(agent_pipeline_conf_t, topic, STRING), .flags = TRIB_CONFIG_REQUIRED,
     .min = "1", .desc = "topic template: {field} takes an event field"},
    {TRIB_CONFIG_FIELD(agent_pipeline_conf_t, key, STRING), .def = "",
     .desc = "key template; empty: no key"},
    {TRIB_CONFIG_FIELD(agent_pipeline_conf_t, on_parse_error, ENUM), .def = "keep",
     .choices = on_parse_error_choices,
     .desc = "an event a parse step failed on (marked parse_error): keep it, drop it, or route "
             "it to parse_error_topic"},
    {TRIB_CONFIG_FIELD(agent_pipeline_conf_t, parse_error_topic, STRING), .min = "1",
     .desc = "on_parse_error: route: the topic of events a parse step failed on"},
    TRIB_CONFIG_END,
};

static const trib_config_option_t agent_opts[] = {
    {TRIB_CONFIG_KEY("id", agent_conf_t, agent.id, STRING), .min = "1", .max = "128",
     .desc = "this agent's name in events; default the host name"},
    {TRIB_CONFIG_KEY("hostname", agent_conf_t, agent.hostname, STRING),
     .desc = "the host field of events; default gethostname()"},
    {TRIB_CONFIG_KEY("state_dir", agent_conf_t, agent.state_dir, STRING),
     .def = "/var/lib/tributary/agent", .min = "1"},
    {TRIB_CONFIG_KEY("memory_limit", agent_conf_t, agent.memory_limit, SIZE), .def = "64MiB",
     .min = "8MiB", .max = "64GiB"},
    {TRIB_CONFIG_KEY("checkpoint_interval", agent_conf_t, agent.checkpoint_interval_ms, DURATION),
     .def = "1s", .min = "10ms", .max = "1h"},
    {TRIB_CONFIG_KEY("shutdown_timeout", agent_conf_t, agent.shutdown_timeout_ms, DURATION),
     .def = "30s", .min = "0", .max = "1h"},
    {TRIB_CONFIG_KEY("state_ttl", agent_conf_t, agent.state_ttl_ms, DURATION), .def = "7d",
     .min = "1m", .max = "3650d"},
    {TRIB_CONFIG_KEY("metrics", agent_conf_t, agent.metrics, ADDRESS),
     .desc = "host:port of the Prometheus /metrics endpoint; unset: off"},
    {TRIB_CONFIG_KEY("metrics_file", agent_conf_t, agent.metrics_file, STRING), .min = "1",
     .desc = "a file rewritten (atomically) every checkpoint_interval with the metrics, for "
             "node_exporter's textfile collector; unset: off"},
    {TRIB_CONFIG_KEY("log_level", agent_conf_t, agent.log_level, ENUM), .def = "info",
     .choices = log_levels},
    {TRIB_CONFIG_KEY("log_format", agent_conf_t, agent.log_format, ENUM), .def = "text",
     .choices = log_formats},
    {TRIB_CONFIG_KEY("regex_match_limit", agent_conf_t, agent.regex_match_limit, UINT),
     .def = "100000", .min = "100", .max = "100000000"},
    {TRIB_CONFIG_KEY("regex_depth_limit", agent_conf_t, agent.regex_depth_limit, UINT),
     .def = "10000", .min = "10", .max = "10000000"},
    TRIB_CONFIG_END,
};

static const trib_config_option_t output_opts[] = {
    {TRIB_CONFIG_KEY("brokers", agent_conf_t, output.brokers, STRLIST),
     .flags = TRIB_CONFIG_REQUIRED | TRIB_CONFIG_COMMAS, .min = "1",
     .desc = "host:port of each broker: a list, or one string split at commas"},
    {TRIB_CONFIG_KEY("compression", agent_conf_t, output.compression, ENUM), .def = "snappy",
     .choices = agent_compression_names},
    {TRIB_CONFIG_KEY("options", agent_conf_t, output.options, MAP)},
    {TRIB_CONFIG_KEY("headers", agent_conf_t, output.headers, BOOL), .def = "true",
     .desc = "send the source_type and path headers with every event"},
    {TRIB_CONFIG_KEY("event_id", agent_conf_t, output.event_id, BOOL), .def = "true",
     .desc = "send a stable event.id header (the same on every re-send) that sinks use as "
             "their idempotency key"},
    {TRIB_CONFIG_KEY("max_inflight_bytes", agent_conf_t, output.max_inflight_bytes, SIZE),
     .def = "0", .desc = "bytes of events in the producer before inputs pause; 0: memory_limit/16"},
    TRIB_CONFIG_END,
};

static const trib_config_option_t buffer_opts[] = {
    {TRIB_CONFIG_KEY("max_size", agent_conf_t, buffer.max_size, SIZE), .def = "256MiB",
     .min = "64KiB", .max = "1TiB",
     .desc = "disk bytes for events of syslog, metrics and prometheus inputs not yet "
             "acknowledged; when full, stream inputs stop reading and datagrams are dropped"},
    {TRIB_CONFIG_KEY("segment_size", agent_conf_t, buffer.segment_size, SIZE), .def = "8MiB",
     .min = "16KiB", .max = "1GiB", .desc = "size of one buffer file"},
    TRIB_CONFIG_END,
};

/*
 * The sections above address agent_conf_t directly (offsets include the
 * sub-struct), so the top-level table hands them the whole struct: a
 * SECTION at offset 0.
 */
const trib_config_option_t agent_conf_schema[] = {
    {.name = "agent", .type = TRIB_CONFIG_SECTION, .offset = 0, .sub = agent_opts},
    {.name = "output",
     .type = TRIB_CONFIG_SECTION,
     .offset = 0,
     .sub = output_opts,
     .flags = TRIB_CONFIG_REQUIRED},
    {.name = "buffer", .type = TRIB_CONFIG_SECTION, .offset = 0, .sub = buffer_opts},
    {TRIB_CONFIG_SECTIONS(agent_conf_t, pipelines, npipelines, agent_pipeline_conf_t,
                          pipeline_opts),
     .flags = TRIB_CONFIG_REQUIRED, .min = "1"},
    TRIB_CONFIG_END,
};

/* ---------------------------------------------------------------------- */
/* Positions                                                              */

/*
 * Finds the node at `path` (dot-separated mapping keys and sequence
 * indexes) by walking libyaml events recursively. Only called on text the
 * loader accepted, so nesting is bounded by TRIB_CONFIG_MAX_DEPTH.
 */
typedef struct locate {
    yaml_parser_t p;
    int line, col, style;
    bool found;
    bool failed;
} locate_t;

static bool next_event(locate_t *l, yaml_event_t *ev)
{
    if (!yaml_parser_parse(&l->p, ev)) {
        l->failed = true;
        return false;
    }
    return true;
}

/* `ev` starts a node; `rest` is the remaining path or NULL when off the path. */
static void locate_node(locate_t *l, yaml_event_t *ev, const char *rest)
{
    if (rest != NULL && *rest == '\0' && !l->found) {
        l->found = true;
        l->line = (int)ev->start_mark.line + 1;
        l->col = (int)ev->start_mark.column + 1;
        l->style = ev->type == YAML_SCALAR_EVENT ? (int)ev->data.scalar.style : 0;
    }
    const char *comp = rest;
    size_t clen = 0;
    const char *after = NULL;
    if (rest != NULL && *rest != '\0') {
        const char *dot = strchr(rest, '.');
        clen = dot ? (size_t)(dot - rest) : strlen(rest);
        after = dot ? dot + 1 : rest + clen;
    }
    if (ev->type == YAML_MAPPING_START_EVENT) {
        yaml_event_delete(ev);
        for (;;) {
            yaml_event_t k, v;
            if (!next_event(l, &k)) {
                return;
            }
            if (k.type == YAML_MAPPING_END_EVENT) {
                yaml_event_delete(&k);
                return;
            }
            bool match = false;
            if (k.type == YAML_SCALAR_EVENT && comp != NULL && clen > 0) {
                match =
                    k.data.scalar.length == clen && memcmp(k.data.scalar.value, comp, clen) == 0;
            }
            locate_node(l, &k, NULL);
            if (l->failed || !next_event(l, &v)) {
                return;
            }
            locate_node(l, &v, match ? after : NULL);
            if (l->failed) {
                return;
            }
        }
    } else if (ev->type == YAML_SEQUENCE_START_EVENT) {
        yaml_event_delete(ev);
        long want = -1;
        if (comp != NULL && clen > 0) {
            char num[24];
            if (clen < sizeof(num)) {
                memcpy(num, comp, clen);
                num[clen] = '\0';
                char *end;
                want = strtol(num, &end, 10);
                if (*end != '\0') {
                    want = -1;
                }
            }
        }
        for (long i = 0;; i++) {
            yaml_event_t e;
            if (!next_event(l, &e)) {
                return;
            }
            if (e.type == YAML_SEQUENCE_END_EVENT) {
                yaml_event_delete(&e);
                return;
            }
            locate_node(l, &e, i == want ? after : NULL);
            if (l->failed) {
                return;
            }
        }
    } else {
        yaml_event_delete(ev);
    }
}

int agent_yaml_locate(const char *text, size_t len, const char *path, int *line, int *col,
                      int *style)
{
    locate_t l;
    memset(&l, 0, sizeof(l));
    if (!yaml_parser_initialize(&l.p)) {
        return -1;
    }
    yaml_parser_set_input_string(&l.p, (const unsigned char *)text, len);
    for (;;) {
        yaml_event_t ev;
        if (!next_event(&l, &ev)) {
            break;
        }
        yaml_event_type_t t = ev.type;
        if (t == YAML_STREAM_END_EVENT) {
            yaml_event_delete(&ev);
            break;
        }
        if (t == YAML_MAPPING_START_EVENT || t == YAML_SEQUENCE_START_EVENT ||
            t == YAML_SCALAR_EVENT) {
            locate_node(&l, &ev, path);
            break; /* one document */
        }
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&l.p);
    if (!l.found) {
        return -1;
    }
    *line = l.line;
    *col = l.col;
    *style = l.style;
    return 0;
}

/* ---------------------------------------------------------------------- */
/* Validation                                                             */

static void verr(agent_config_t *c, const char *where, int coldelta, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void vpush(agent_config_t *c, trib_error_t **list, size_t *count, const char *where,
                  int coldelta, const char *fmt, va_list ap)
{
    trib_error_t *n = realloc(*list, (*count + 1) * sizeof(*n));
    if (n == NULL) {
        return;
    }
    *list = n;
    trib_error_t *e = &n[(*count)++];
    trib_error_clear(e);
    int line = 0, col = 0, style = 0;
    if (where != NULL) {
        if (agent_yaml_locate(c->text, c->text_len, where, &line, &col, &style) != 0) {
            /* an absent key: point at its parent */
            char parent[256];
            snprintf(parent, sizeof(parent), "%s", where);
            char *dot = strrchr(parent, '.');
            if (dot != NULL) {
                *dot = '\0';
                (void)agent_yaml_locate(c->text, c->text_len, parent, &line, &col, &style);
            }
        } else if (coldelta > 0) {
            if (style == YAML_PLAIN_SCALAR_STYLE) {
                col += coldelta - 1;
            } else if (style == YAML_SINGLE_QUOTED_SCALAR_STYLE ||
                       style == YAML_DOUBLE_QUOTED_SCALAR_STYLE) {
                col += coldelta; /* past the quote; exact unless escapes come before */
            }
        }
    }
    e->code = TRIB_ECONFIG;
    e->file = c->name;
    e->line = line;
    e->col = col;
    vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
}

static void verr(agent_config_t *c, const char *where, int coldelta, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vpush(c, &c->errs, &c->nerrs, where, coldelta, fmt, ap);
    va_end(ap);
}

static void vwarn(agent_config_t *c, const char *where, int coldelta, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void vwarn(agent_config_t *c, const char *where, int coldelta, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vpush(c, &c->warns, &c->nwarns, where, coldelta, fmt, ap);
    va_end(ap);
}

static const char *disp(const char *where, char *out, size_t outlen);

/* The fields an input of this type puts in every event. */
static const char *const tail_fields[] = {"@timestamp", "host",    "agent", "source",
                                          "message",    "partial", NULL};
static const char *const syslog_fields[] = {
    "@timestamp",      "host",        "agent",     "source", "message", "facility",
    "severity",        "pri",         "hostname",  "app",    "procid",  "msgid",
    "structured_data", "parse_error", "truncated", "raw",    NULL};
static const char *const parse_error_fields[] = {"parse_error", "parse_error_by", NULL};

static bool in_list(const char *const *l, const char *s, size_t n)
{
    for (; *l != NULL; l++) {
        if (strlen(*l) == n && memcmp(*l, s, n) == 0) {
            return true;
        }
    }
    return false;
}

/*
 * True when no step of the pipeline can make field `name`: only said when
 * every field is known at load time (inputs, regex named groups, syslog
 * parsing, set and rename filters); a json or logfmt step, or a metrics
 * or prometheus input (label names come from the source), may make any.
 */
static bool field_unknown(const agent_pipeline_conf_t *pl, const char *name, size_t n)
{
    if (in_list(parse_error_fields, name, n)) {
        return false;
    }
    for (size_t j = 0; j < pl->ninputs; j++) {
        int t = pl->inputs[j].type;
        if (t == AGENT_INPUT_METRICS || t == AGENT_INPUT_PROMETHEUS) {
            return false;
        }
        if (in_list(t == AGENT_INPUT_TAIL ? tail_fields : syslog_fields, name, n)) {
            return false;
        }
    }
    for (size_t j = 0; j < pl->nparse; j++) {
        const agent_parse_conf_t *pa = &pl->parse[j];
        if (pa->type == AGENT_PARSE_JSON || pa->type == AGENT_PARSE_LOGFMT) {
            return false;
        }
        if (pa->type == AGENT_PARSE_SYSLOG && in_list(syslog_fields, name, n)) {
            return false;
        }
        if (pa->type == AGENT_PARSE_REGEX) {
            if (pa->re == NULL) {
                return false; /* already an error */
            }
            for (uint32_t g = 0; g < pa->re->ngroups; g++) {
                if (strlen(pa->re->groups[g].name) == n &&
                    memcmp(pa->re->groups[g].name, name, n) == 0) {
                    return false;
                }
            }
        }
    }
    for (size_t j = 0; j < pl->nfilters; j++) {
        const agent_filter_conf_t *f = &pl->filters[j];
        const char *made = f->type == AGENT_FILTER_SET      ? f->field
                           : f->type == AGENT_FILTER_RENAME ? f->to
                                                            : NULL;
        if (made != NULL && strlen(made) == n && memcmp(made, name, n) == 0) {
            return false;
        }
    }
    return true;
}

/* A warning for each {field} of a template that no step of the pipeline makes. */
static void warn_template_fields(agent_config_t *c, const agent_pipeline_conf_t *pl, const char *t,
                                 const char *where)
{
    char dn[300];
    disp(where, dn, sizeof(dn));
    for (const char *p = strchr(t, '{'); p != NULL; p = strchr(p + 1, '{')) {
        const char *e = strchr(p + 1, '}');
        if (e == NULL) {
            return;
        }
        const char *name = p + 1;
        size_t n = (size_t)(e - name);
        const char *def = strstr(name, ":-");
        if (def != NULL && def < e) {
            n = (size_t)(def - name);
        }
        const char *dot = memchr(name, '.', n);
        /* {a.b}: a field a.b, or member b of a JSON object in field a */
        if (field_unknown(pl, name, n) &&
            (dot == NULL || field_unknown(pl, name, (size_t)(dot - name)))) {
            vwarn(c, where, (int)(name - t) + 1,
                  "%s names field '%.*s', which no input, parser or filter of pipeline '%s' "
                  "makes (it renders as %s)",
                  dn, (int)n, name, pl->name,
                  def != NULL && def < e                            ? "its default"
                  : strcmp(where + strlen(where) - 5, "topic") == 0 ? "'_'"
                                                                    : "nothing");
        }
        p = e;
    }
}

/* "pipelines.0.parse.1.pattern" -> "pipelines[0].parse[1].pattern", as the loader names keys. */
static const char *disp(const char *where, char *out, size_t outlen)
{
    size_t o = 0;
    for (const char *p = where; *p && o + 3 < outlen; p++) {
        if (*p == '.' && p[1] >= '0' && p[1] <= '9') {
            out[o++] = '[';
            p++;
            while (*p >= '0' && *p <= '9' && o + 2 < outlen) {
                out[o++] = *p++;
            }
            out[o++] = ']';
            p--;
        } else {
            out[o++] = *p;
        }
    }
    out[o] = '\0';
    return out;
}

static agent_regex_t *compile(agent_config_t *c, const char *pattern, const char *where)
{
    char dn[300];
    char msg[256];
    size_t off = 0;
    agent_regex_t *re = agent_regex_new(pattern, c->conf.agent.regex_match_limit,
                                        c->conf.agent.regex_depth_limit, msg, sizeof(msg), &off);
    if (re == NULL) {
        verr(c, where, (int)off + 1, "bad regex in %s at offset %zu: %s",
             disp(where, dn, sizeof(dn)), off, msg);
        return NULL;
    }
    agent_regex_t **n = realloc(c->regexes, (c->nregexes + 1) * sizeof(*n));
    if (n == NULL) {
        agent_regex_free(re);
        return NULL;
    }
    c->regexes = n;
    c->regexes[c->nregexes++] = re;
    return re;
}

/* Template "{field}" syntax: braces balanced, names non-empty. */
static void check_template(agent_config_t *c, const char *t, const char *where)
{
    char dn[300];
    disp(where, dn, sizeof(dn));
    for (const char *p = t; *p; p++) {
        if (*p == '{') {
            const char *e = strchr(p + 1, '}');
            if (e == NULL || e == p + 1 || memchr(p + 1, '{', (size_t)(e - p - 1)) != NULL) {
                verr(c, where, (int)(p - t) + 1,
                     "bad template in %s: '{' without a field name and '}'", dn);
                return;
            }
            p = e;
        } else if (*p == '}') {
            verr(c, where, (int)(p - t) + 1, "bad template in %s: '}' without '{'", dn);
            return;
        }
    }
}

static bool yaml_has(agent_config_t *c, const char *where);

/* "host:port", "[v6]:port" as the ADDRESS type reads it, with a host and a port above 0:
   what librdkafka's bootstrap.servers takes from us. */
static bool broker_ok(const char *b)
{
    char host[256];
    uint16_t port;
    const char *why;
    return trib_config_parse_address(b, host, sizeof(host), &port, &why) == 0 && host[0] &&
           port > 0;
}

static void validate_brokers(agent_config_t *c)
{
    const trib_config_strlist_t *l = &c->conf.output.brokers;
    char where[64];
    for (size_t i = 0; i < l->count; i++) {
        if (broker_ok(l->items[i])) {
            continue;
        }
        snprintf(where, sizeof(where), "output.brokers.%zu", i);
        if (!yaml_has(c, where)) {
            snprintf(where, sizeof(where), "output.brokers"); /* a comma string */
        }
        verr(c, where, 0, "output.brokers: '%s' is not host:port (port 1-65535)", l->items[i]);
    }
}

static void validate_output(agent_config_t *c)
{
    agent_conf_t *k = &c->conf;
    char errstr[512];
    validate_brokers(c);
    rd_kafka_conf_t *rc = rd_kafka_conf_new();
    for (size_t i = 0; i < k->output.options.count; i++) {
        const trib_config_pair_t *pr = &k->output.options.items[i];
        const char *v = pr->value;
        if (strcmp(pr->key, "acks") == 0 || strcmp(pr->key, "request.required.acks") == 0) {
            if (strcmp(v, "all") != 0 && strcmp(v, "-1") != 0) {
                trib_error_t *e = realloc(c->errs, (c->nerrs + 1) * sizeof(*e));
                if (e != NULL) {
                    c->errs = e;
                    trib_error_setpos(&c->errs[c->nerrs++], TRIB_ECONFIG, c->name, pr->line,
                                      pr->col,
                                      "output.options.%s must be 'all': the agent acknowledges a "
                                      "line only once every in-sync replica has it",
                                      pr->key);
                }
            }
            continue;
        }
        if ((strcmp(pr->key, "message.timeout.ms") == 0 ||
             strcmp(pr->key, "delivery.timeout.ms") == 0) &&
            strcmp(v, "0") != 0) {
            trib_error_t *e = realloc(c->errs, (c->nerrs + 1) * sizeof(*e));
            if (e != NULL) {
                c->errs = e;
                trib_error_setpos(&c->errs[c->nerrs++], TRIB_ECONFIG, c->name, pr->line, pr->col,
                                  "output.options.%s must be 0: the agent retries a delivery "
                                  "until it succeeds, and an event produced again after a "
                                  "timeout would land behind newer ones",
                                  pr->key);
            }
            continue;
        }
        if (strcmp(pr->key, "enable.idempotence") == 0 && strcmp(v, "true") != 0) {
            trib_error_t *e = realloc(c->errs, (c->nerrs + 1) * sizeof(*e));
            if (e != NULL) {
                c->errs = e;
                trib_error_setpos(&c->errs[c->nerrs++], TRIB_ECONFIG, c->name, pr->line, pr->col,
                                  "output.options.enable.idempotence must be true: retries must "
                                  "not duplicate or reorder events");
            }
            continue;
        }
        if (strcmp(pr->key, "bootstrap.servers") == 0 || strcmp(pr->key, "dr_msg_cb") == 0) {
            trib_error_t *e = realloc(c->errs, (c->nerrs + 1) * sizeof(*e));
            if (e != NULL) {
                c->errs = e;
                trib_error_setpos(&c->errs[c->nerrs++], TRIB_ECONFIG, c->name, pr->key_line,
                                  pr->key_col, "output.options.%s is set by the agent (%s)",
                                  pr->key, "use output.brokers");
            }
            continue;
        }
        if (rd_kafka_conf_set(rc, pr->key, v, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) {
            trib_error_t *e = realloc(c->errs, (c->nerrs + 1) * sizeof(*e));
            if (e != NULL) {
                c->errs = e;
                trib_error_setpos(&c->errs[c->nerrs++], TRIB_ECONFIG, c->name, pr->line, pr->col,
                                  "output.options.%s: %s", pr->key, errstr);
            }
        }
    }
    rd_kafka_conf_destroy(rc);
}

/* Which input types take an option (bits of 1 << AGENT_INPUT_*). */
#define T_TAIL (1u << AGENT_INPUT_TAIL)
#define T_SYSLOG (1u << AGENT_INPUT_SYSLOG)
#define T_METRICS (1u << AGENT_INPUT_METRICS)
#define T_PROM (1u << AGENT_INPUT_PROMETHEUS)
static const struct {
    const char *name;
    unsigned types;
} input_option_types[] = {
    {"paths", T_TAIL},
    {"exclude", T_TAIL},
    {"read_from", T_TAIL},
    {"multiline", T_TAIL},
    {"max_line_bytes", T_TAIL},
    {"fingerprint_bytes", T_TAIL},
    {"scan_interval", T_TAIL},
    {"poll_interval", T_TAIL},
    {"rotate_wait", T_TAIL},
    {"close_inactive", T_TAIL},
    {"deleted_max_age", T_TAIL},
    {"max_open_files", T_TAIL},
    {"inotify", T_TAIL},
    {"mode", T_SYSLOG},
    {"address", T_SYSLOG},
    {"framing", T_SYSLOG},
    {"max_message_bytes", T_SYSLOG},
    {"max_connections", T_SYSLOG},
    {"max_connections_per_peer", T_SYSLOG},
    {"receive_buffer", T_SYSLOG},
    {"idle_timeout", T_SYSLOG},
    {"timezone", T_SYSLOG | T_TAIL},
    {"lenient", T_SYSLOG},
    {"keep_raw", T_SYSLOG},
    {"socket_mode", T_SYSLOG},
    {"tls", T_SYSLOG},
    {"interval", T_METRICS | T_PROM},
    {"collectors", T_METRICS},
    {"root", T_METRICS},
    {"url", T_PROM},
    {"timeout", T_PROM},
    {"max_body_bytes", T_PROM},
};

/* Whether the file sets the key (the loader records where each was set). */
static bool yaml_has(agent_config_t *c, const char *where)
{
    char path[300];
    int line, col;
    return trib_config_position(c->cfg, disp(where, path, sizeof(path)), &line, &col) == 0;
}

/* Every input's events carry its zone: parse: syslog reads times without one in it. */
static void input_tz(agent_config_t *c, const char *base, agent_input_conf_t *in)
{
    agent_syslog_tz_t tz;
    if (in->timezone == NULL) {
        return; /* the schema pass failed */
    }
    if (agent_syslog_tz_parse(in->timezone, &tz) != 0) {
        char where[256];
        snprintf(where, sizeof(where), "%s.timezone", base);
        verr(c, where, 0, "timezone must be local, UTC or an offset such as +02:00: '%s'",
             in->timezone);
        return;
    }
    in->tz_local = tz.local;
    in->tz_offset_s = tz.offset;
}

static void validate_input_type(agent_config_t *c, size_t i, size_t j, agent_input_conf_t *in)
{
    static const char *const tnames[] = {"tail", "syslog", "metrics", "prometheus"};
    char where[256], base[128];
    if (in->type < 0 || in->type > AGENT_INPUT_PROMETHEUS) {
        return;
    }
    snprintf(base, sizeof(base), "pipelines.%zu.inputs.%zu", i, j);
    for (size_t o = 0; o < sizeof(input_option_types) / sizeof(input_option_types[0]); o++) {
        if (input_option_types[o].types & (1u << in->type)) {
            continue;
        }
        snprintf(where, sizeof(where), "%s.%s", base, input_option_types[o].name);
        if (yaml_has(c, where)) {
            verr(c, where, 0, "'%s' is not an option of a %s input", input_option_types[o].name,
                 tnames[in->type]);
        }
    }
    if (in->type != AGENT_INPUT_SYSLOG) {
        input_tz(c, base, in);
    }
    switch (in->type) {
    case AGENT_INPUT_TAIL:
        if (in->paths.count == 0) {
            verr(c, base, 0, "missing required key 'paths' in pipelines[%zu].inputs[%zu]", i, j);
        }
        break;
    case AGENT_INPUT_SYSLOG: {
        const char *why;
        snprintf(where, sizeof(where), "%s.address", base);
        bool unix_mode =
            in->mode == AGENT_SYSLOG_MODE_UNIX || in->mode == AGENT_SYSLOG_MODE_UNIX_DGRAM;
        if (in->address == NULL) {
            verr(c, base, 0, "missing required key 'address' in pipelines[%zu].inputs[%zu]", i, j);
        } else if (unix_mode && in->address[0] != '/') {
            verr(c, where, 0, "a unix socket address must be an absolute path: '%s'", in->address);
        } else if (!unix_mode && trib_config_check_address(in->address, &why) != 0) {
            verr(c, where, 0,
                 "address must be host:port ([v6]:port, :port for every address): '%s'",
                 in->address);
        }
        input_tz(c, base, in);
        if (in->socket_mode == NULL) {
            break; /* the schema pass failed */
        }
        char *end;
        unsigned long perm = strtoul(in->socket_mode, &end, 8);
        if (*end != '\0' || end == in->socket_mode || perm > 0777) {
            snprintf(where, sizeof(where), "%s.socket_mode", base);
            verr(c, where, 0, "socket_mode must be octal permissions such as 0660: '%s'",
                 in->socket_mode);
        }
        in->socket_perm = (uint32_t)perm;
        if (in->tls.peer_names.count > 0 && in->tls.ca == NULL) {
            snprintf(where, sizeof(where), "%s.tls.peer_names", base);
            verr(c, where, 0, "tls.peer_names needs tls.ca (the CA that signs the clients)");
        }
        if (in->mode == AGENT_SYSLOG_MODE_TLS && (in->tls.cert == NULL || in->tls.key == NULL)) {
            verr(c, base, 0, "mode tls needs tls.cert and tls.key in pipelines[%zu].inputs[%zu]", i,
                 j);
        } else if (in->mode != AGENT_SYSLOG_MODE_TLS) {
            snprintf(where, sizeof(where), "%s.tls", base);
            if (yaml_has(c, where)) {
                verr(c, where, 0, "'tls' is only for mode tls");
            }
        }
        break;
    }
    case AGENT_INPUT_METRICS:
        in->collector_mask = in->collectors.count == 0 ? AGENT_HM_ALL : 0;
        for (size_t k = 0; k < in->collectors.count; k++) {
            unsigned bit = agent_hm_collector_bit(in->collectors.items[k]);
            if (bit == 0) {
                snprintf(where, sizeof(where), "%s.collectors.%zu", base, k);
                verr(c, where, 0,
                     "unknown collector '%s' (cpu, memory, load, disk, filesystem, network)",
                     in->collectors.items[k]);
            }
            in->collector_mask |= bit;
        }
        break;
    case AGENT_INPUT_PROMETHEUS:
        snprintf(where, sizeof(where), "%s.url", base);
        if (in->url == NULL) {
            verr(c, base, 0, "missing required key 'url' in pipelines[%zu].inputs[%zu]", i, j);
        } else if (strncmp(in->url, "http://", 7) != 0 && strncmp(in->url, "https://", 8) != 0) {
            verr(c, where, 0, "url must start with http:// or https://: '%s'", in->url);
        }
        break;
    default:
        break;
    }
}

uint64_t agent_conf_max_inflight(const agent_conf_t *k)
{
    return k->output.max_inflight_bytes ? k->output.max_inflight_bytes
                                        : k->agent.memory_limit / AGENT_INFLIGHT_SHARE;
}

static void validate(agent_config_t *c)
{
    agent_conf_t *k = &c->conf;
    char where[256];

    if (k->agent.hostname == NULL || k->agent.hostname[0] == '\0') {
        if (gethostname(c->hostbuf, sizeof(c->hostbuf) - 1) != 0) {
            snprintf(c->hostbuf, sizeof(c->hostbuf), "localhost");
        }
        k->agent.hostname = c->hostbuf;
    }
    if (k->agent.id == NULL) {
        k->agent.id = k->agent.hostname;
    }
    validate_output(c);
    for (size_t i = 0; i < k->npipelines; i++) {
        agent_pipeline_conf_t *pl = &k->pipelines[i];
        for (size_t j = 0; j < i; j++) {
            if (pl->name && k->pipelines[j].name && strcmp(pl->name, k->pipelines[j].name) == 0) {
                snprintf(where, sizeof(where), "pipelines.%zu.name", i);
                verr(c, where, 0, "duplicate pipeline name '%s'", pl->name);
            }
        }
        for (size_t j = 0; j < pl->ninputs; j++) {
            agent_input_conf_t *in = &pl->inputs[j];
            if (in->id == NULL) {
                snprintf(in->idbuf, sizeof(in->idbuf), "%s/%zu", pl->name ? pl->name : "", j);
                in->id = in->idbuf;
            }
            if (strpbrk(in->id, "\t\n\r") != NULL) {
                snprintf(where, sizeof(where), "pipelines.%zu.inputs.%zu.id", i, j);
                verr(c, where, 0, "an input id cannot hold tabs or line breaks");
            }
            validate_input_type(c, i, j, in);
            for (size_t p = 0; p < in->paths.count; p++) {
                if (in->paths.items[p][0] != '/') {
                    snprintf(where, sizeof(where), "pipelines.%zu.inputs.%zu.paths.%zu", i, j, p);
                    verr(c, where, 0, "paths must be absolute: '%s'", in->paths.items[p]);
                }
            }
            if (in->multiline.start != NULL) {
                snprintf(where, sizeof(where), "pipelines.%zu.inputs.%zu.multiline.start", i, j);
                in->multiline.re = compile(c, in->multiline.start, where);
            }
        }
        for (size_t j = 0; j < pl->nparse; j++) {
            agent_parse_conf_t *pa = &pl->parse[j];
            if (pa->type == AGENT_PARSE_REGEX) {
                snprintf(where, sizeof(where), "pipelines.%zu.parse.%zu.pattern", i, j);
                if (pa->pattern == NULL) {
                    verr(c, where, 0,
                         "missing required key 'pattern' in pipelines[%zu].parse[%zu]"
                         " (type regex)",
                         i, j);
                } else {
                    pa->re = compile(c, pa->pattern, where);
                    if (pa->re != NULL && pa->re->ngroups == 0) {
                        verr(c, where, 0,
                             "the pattern has no named groups ((?<name>...)): it "
                             "would add no fields");
                    }
                }
            } else if (pa->pattern != NULL) {
                snprintf(where, sizeof(where), "pipelines.%zu.parse.%zu.pattern", i, j);
                verr(c, where, 0, "'pattern' is only for type regex");
            }
        }
        for (size_t j = 0; j < pl->nparse; j++) {
            agent_parse_conf_t *pa = &pl->parse[j];
            for (size_t t = 0; t < pa->types.count; t++) {
                const trib_config_pair_t *pr = &pa->types.items[t];
                int code = -1;
                for (int v = 0; value_types[v] != NULL; v++) {
                    if (strcmp(pr->value, value_types[v]) == 0) {
                        code = v;
                    }
                }
                if (t >= AGENT_MAX_TYPES) {
                    snprintf(where, sizeof(where), "pipelines.%zu.parse.%zu.types", i, j);
                    verr(c, where, 0, "at most %d fields in pipelines[%zu].parse[%zu].types",
                         AGENT_MAX_TYPES, i, j);
                    break;
                }
                if (code < 0) {
                    snprintf(where, sizeof(where), "pipelines.%zu.parse.%zu.types.%s", i, j,
                             pr->key);
                    verr(c, where, 0,
                         "bad type '%s' for field '%s' in pipelines[%zu].parse[%zu].types "
                         "(int, float, bool or timestamp)",
                         pr->value, pr->key, i, j);
                    continue;
                }
                pa->type_codes[t] = (uint8_t)code;
            }
        }
        if (pl->on_parse_error == AGENT_ON_PARSE_ERROR_ROUTE && pl->parse_error_topic == NULL) {
            snprintf(where, sizeof(where), "pipelines.%zu.on_parse_error", i);
            verr(c, where, 0, "on_parse_error: route needs parse_error_topic in pipelines[%zu]", i);
        }
        for (size_t j = 0; j < pl->nfilters; j++) {
            agent_filter_conf_t *f = &pl->filters[j];
            snprintf(where, sizeof(where), "pipelines.%zu.filters.%zu", i, j);
            char w2[300];
            switch (f->type) {
            case AGENT_FILTER_GREP:
            case AGENT_FILTER_EXCLUDE:
                snprintf(w2, sizeof(w2), "%s.match", where);
                if (f->match == NULL) {
                    verr(c, where, 0, "missing required key 'match' in pipelines[%zu].filters[%zu]",
                         i, j);
                } else {
                    f->re = compile(c, f->match, w2);
                }
                break;
            case AGENT_FILTER_SET:
                if (f->value == NULL) {
                    verr(c, where, 0, "missing required key 'value' in pipelines[%zu].filters[%zu]",
                         i, j);
                }
                break;
            case AGENT_FILTER_RENAME:
                if (f->to == NULL) {
                    verr(c, where, 0, "missing required key 'to' in pipelines[%zu].filters[%zu]", i,
                         j);
                }
                break;
            default:
                break;
            }
        }
        if (pl->topic != NULL) {
            snprintf(where, sizeof(where), "pipelines.%zu.topic", i);
            size_t before = c->nerrs;
            check_template(c, pl->topic, where);
            if (c->nerrs == before) {
                warn_template_fields(c, pl, pl->topic, where);
            }
        }
        if (pl->key != NULL) {
            snprintf(where, sizeof(where), "pipelines.%zu.key", i);
            size_t before = c->nerrs;
            check_template(c, pl->key, where);
            if (c->nerrs == before) {
                warn_template_fields(c, pl, pl->key, where);
            }
        }
    }
    /* input ids must be unique across pipelines: they name checkpoints */
    for (size_t i = 0; i < k->npipelines; i++) {
        for (size_t j = 0; j < k->pipelines[i].ninputs; j++) {
            for (size_t i2 = 0; i2 <= i; i2++) {
                size_t jmax = i2 == i ? j : k->pipelines[i2].ninputs;
                for (size_t j2 = 0; j2 < jmax; j2++) {
                    if (strcmp(k->pipelines[i].inputs[j].id, k->pipelines[i2].inputs[j2].id) == 0) {
                        snprintf(where, sizeof(where), "pipelines.%zu.inputs.%zu", i, j);
                        verr(c, where, 0, "duplicate input id '%s'", k->pipelines[i].inputs[j].id);
                    }
                }
            }
        }
    }
}

static int cmp_err(const void *a, const void *b)
{
    const trib_error_t *x = a, *y = b;
    if (x->line != y->line) {
        return x->line < y->line ? -1 : 1;
    }
    return x->col < y->col ? -1 : x->col > y->col;
}

int agent_config_load_string(agent_config_t **out, const char *name, const char *text, size_t len)
{
    agent_config_t *c = calloc(1, sizeof(*c));
    *out = c;
    if (c == NULL) {
        return -ENOMEM;
    }
    c->text = malloc(len + 1);
    c->name = strdup(name);
    if (c->text == NULL || c->name == NULL) {
        return -ENOMEM;
    }
    memcpy(c->text, text, len);
    c->text[len] = '\0';
    c->text_len = len;
    int rc = trib_config_load_string(&c->cfg, c->name, c->text, len, agent_conf_schema, &c->conf);
    if (rc == -ENOMEM) {
        return rc;
    }
    /*
     * Validation runs even when the schema pass failed, so one run reports
     * every error; it only reads what was applied and checks each pointer.
     */
    validate(c);
    if (rc != 0) {
        return TRIB_ECONFIG;
    }
    if (c->nerrs > 0) {
        qsort(c->errs, c->nerrs, sizeof(*c->errs), cmp_err);
        return TRIB_ECONFIG;
    }
    return 0;
}

int agent_config_load(agent_config_t **out, const char *path)
{
    FILE *fp = fopen(path, "rb");
    if (fp == NULL) {
        int e = errno;
        /* Let the loader report the unreadable file in its usual form. */
        agent_config_t *c = calloc(1, sizeof(*c));
        *out = c;
        if (c == NULL) {
            return -ENOMEM;
        }
        c->name = strdup(path);
        c->errs = calloc(1, sizeof(*c->errs));
        if (c->name == NULL || c->errs == NULL) {
            return -ENOMEM;
        }
        trib_error_setpos(c->errs, TRIB_ECONFIG, c->name, 0, 0, "cannot read: %s", strerror(e));
        c->nerrs = 1;
        return TRIB_ECONFIG;
    }
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (cap - len < 65536) {
            if (cap > TRIB_CONFIG_MAX_BYTES) {
                break;
            }
            char *n = realloc(buf, cap + 65536);
            if (n == NULL) {
                free(buf);
                fclose(fp);
                *out = NULL;
                return -ENOMEM;
            }
            buf = n;
            cap += 65536;
        }
        size_t r = fread(buf + len, 1, cap - len, fp);
        if (r == 0) {
            break;
        }
        len += r;
    }
    fclose(fp);
    int rc = agent_config_load_string(out, path, buf ? buf : "", len);
    free(buf);
    return rc;
}

size_t agent_config_error_count(const agent_config_t *c)
{
    return (c->cfg ? trib_config_error_count(c->cfg) : 0) + c->nerrs;
}

void agent_config_print_errors(const agent_config_t *c, FILE *fp)
{
    /* the loader's errors and the agent's, merged in position order */
    size_t nc = c->cfg ? trib_config_error_count(c->cfg) : 0;
    const trib_error_t **all = calloc(nc + c->nerrs + 1, sizeof(*all));
    if (all == NULL) {
        if (c->cfg != NULL) {
            trib_config_print_errors(c->cfg, fp);
        }
        return;
    }
    size_t n = 0;
    for (size_t i = 0; i < nc; i++) {
        all[n++] = trib_config_error(c->cfg, i);
    }
    for (size_t i = 0; i < c->nerrs; i++) {
        all[n++] = &c->errs[i];
    }
    for (size_t i = 1; i < n; i++) { /* insertion sort: stable, few errors */
        const trib_error_t *e = all[i];
        size_t j = i;
        while (j > 0 && cmp_err(all[j - 1], e) > 0) {
            all[j] = all[j - 1];
            j--;
        }
        all[j] = e;
    }
    for (size_t i = 0; i < n; i++) {
        char line[700];
        trib_error_format(all[i], line, sizeof(line));
        fprintf(fp, "%s\n", line);
    }
    free(all);
}

size_t agent_config_print_warnings(const agent_config_t *c, FILE *fp)
{
    for (size_t i = 0; i < c->nwarns; i++) {
        const trib_error_t *w = &c->warns[i];
        fprintf(fp, "%s:%d:%d: warning: %s\n", w->file ? w->file : c->name, w->line, w->col,
                w->msg);
    }
    return c->nwarns;
}

void agent_config_free(agent_config_t *c)
{
    if (c == NULL) {
        return;
    }
    for (size_t i = 0; i < c->nregexes; i++) {
        agent_regex_free(c->regexes[i]);
    }
    free(c->regexes);
    trib_config_free(c->cfg);
    free(c->text);
    free((char *)c->name);
    free(c->errs);
    free(c->warns);
    free(c);
}
