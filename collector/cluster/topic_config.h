/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Topic configurations: Kafka's names and value syntax, and their mapping
 * onto the log engine's coll_log_config_t.
 *
 * One table (topic_config.c) lists every topic config the collector knows:
 * its Kafka name, the broker-level synonym that supplies its default
 * (retention.ms <- log.retention.ms), its type as DescribeConfigs v3+
 * reports it, bounds and documentation. Values travel as Kafka's strings
 * ("604800000", "compact,delete", "LogAppendTime"); they are parsed into a
 * coll_tcfg_t (one slot per table row) and printed back canonically, so the
 * metadata checkpoint and DescribeConfigs always show one spelling.
 *
 * A topic's effective configuration is the broker's defaults (collector.yaml
 * topic_defaults) with the topic's own overrides applied; `mask` says which
 * rows are overridden (bit i = row i).
 */
#ifndef COLLECTOR_CLUSTER_TOPIC_CONFIG_H
#define COLLECTOR_CLUSTER_TOPIC_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "storage/storage.h"

/* Row indexes of the table; also the bit of a row in an override mask. */
typedef enum coll_tcfg_key {
    COLL_TCFG_CLEANUP_POLICY,
    COLL_TCFG_COMPRESSION_TYPE,
    COLL_TCFG_DELETE_RETENTION_MS,
    COLL_TCFG_INDEX_INTERVAL_BYTES,
    COLL_TCFG_MAX_MESSAGE_BYTES,
    COLL_TCFG_MESSAGE_TIMESTAMP_TYPE,
    COLL_TCFG_MIN_CLEANABLE_DIRTY_RATIO,
    COLL_TCFG_MIN_COMPACTION_LAG_MS,
    COLL_TCFG_MIN_INSYNC_REPLICAS,
    COLL_TCFG_RETENTION_BYTES,
    COLL_TCFG_RETENTION_MS,
    COLL_TCFG_SEGMENT_BYTES,
    COLL_TCFG_SEGMENT_INDEX_BYTES,
    COLL_TCFG_SEGMENT_MS,
    COLL_TCFG_COUNT
} coll_tcfg_key_t;

/* Kafka's DescribeConfigs ConfigType codes (v3+). */
#define COLL_CONFIG_TYPE_BOOLEAN 1
#define COLL_CONFIG_TYPE_STRING 2
#define COLL_CONFIG_TYPE_INT 3
#define COLL_CONFIG_TYPE_LONG 5
#define COLL_CONFIG_TYPE_DOUBLE 6
#define COLL_CONFIG_TYPE_LIST 7

/* Kafka's ConfigSource codes (DescribeConfigs v1+). */
#define COLL_CONFIG_SOURCE_TOPIC 1
#define COLL_CONFIG_SOURCE_STATIC_BROKER 4
#define COLL_CONFIG_SOURCE_DEFAULT 5

/* message.timestamp.type values. */
#define COLL_TS_CREATE_TIME 0
#define COLL_TS_LOG_APPEND_TIME 1

typedef union coll_tcfg_val {
    int64_t i; /* integers, enums (index into choices), cleanup.policy bits */
    double d;  /* min.cleanable.dirty.ratio */
} coll_tcfg_val_t;

typedef struct coll_tcfg {
    coll_tcfg_val_t v[COLL_TCFG_COUNT];
} coll_tcfg_t;

typedef struct coll_tcfg_def {
    const char *name;           /* topic config: "retention.ms" */
    const char *broker_name;    /* its broker default: "log.retention.ms" */
    int type;                   /* COLL_CONFIG_TYPE_* */
    int64_t min, max;           /* integers */
    const char *const *choices; /* enums: NULL-terminated */
    const char *doc;
} coll_tcfg_def_t;

/* The table, indexed by coll_tcfg_key_t. */
extern const coll_tcfg_def_t coll_tcfg_defs[COLL_TCFG_COUNT];

/* The row for a Kafka topic config name (len bytes, not NUL-terminated), or -1. */
int coll_tcfg_find(const char *name, size_t len);
/* The row whose broker synonym is `name`, or -1. */
int coll_tcfg_find_broker(const char *name, size_t len);

/* Kafka's built-in defaults. */
void coll_tcfg_init(coll_tcfg_t *c);

/*
 * Parses `value` (len bytes) for row `key`. 0, or -EINVAL with a Kafka-style
 * reason in msg ("Invalid value -5 for configuration segment.bytes: ...").
 * A NULL value (Kafka's null) is an error: callers treat null as "delete".
 */
int coll_tcfg_parse(int key, const char *value, size_t len, coll_tcfg_val_t *out, char *msg,
                    size_t msglen);

/* The canonical string of a value ("compact,delete", "604800000", "0.5"). */
void coll_tcfg_format(int key, coll_tcfg_val_t v, char *out, size_t outlen);

/* True when the two values are the same. */
bool coll_tcfg_equal(int key, coll_tcfg_val_t a, coll_tcfg_val_t b);

/* The effective config: defaults with the rows in mask taken from overrides. */
void coll_tcfg_merge(const coll_tcfg_t *defaults, const coll_tcfg_t *overrides, uint32_t mask,
                     coll_tcfg_t *out);

/* Maps an effective topic config onto the log engine's settings. */
void coll_tcfg_to_log_config(const coll_tcfg_t *c, coll_log_config_t *out);

#endif
