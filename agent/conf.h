/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The agent's configuration: the structs the schema fills (agent, output,
 * buffer, pipelines with their inputs, parse steps and filters), loading
 * and validation, and the errors and warnings with their positions.
 */
#ifndef TRIBUTARY_AGENT_CONF_H
#define TRIBUTARY_AGENT_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "tributary/config.h"
#include "tributary/error.h"

struct agent_regex;

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

typedef struct agent_multiline_conf {
    const char *start;
    int64_t timeout_ms;
    uint64_t max_lines;
    struct agent_regex *re; /* compiled start; NULL: multiline off */
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
    struct agent_regex *re;
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
    struct agent_regex *re;
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
        bool event_id;
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
    struct agent_regex **regexes;
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

/* output.max_inflight_bytes, or its default when 0: memory_limit /
   AGENT_INFLIGHT_SHARE. librdkafka holds about twice the counted bytes (its
   message copies, per-message headers, the compressed batches being sent),
   so at the default 64 MiB limit this keeps the agent's peak RSS under 32
   MiB; more in flight does not ship faster (tributary-bench-agent). */
#define AGENT_INFLIGHT_SHARE 16
uint64_t agent_conf_max_inflight(const agent_conf_t *k);

/* Position of a YAML node by path ("pipelines.0.parse.1.pattern"); 0 or -1. */
int agent_yaml_locate(const char *text, size_t len, const char *path, int *line, int *col,
                      int *style);

#endif
