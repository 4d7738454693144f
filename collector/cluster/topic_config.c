/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Topic configurations (see topic_config.h): the table, Kafka-syntax
 * parsing and canonical printing, and the mapping onto coll_log_config_t.
 *
 * Bounds follow Kafka's validators where the log engine can honour them;
 * where it cannot, the bound is the engine's (segment.bytes >= 1 KiB,
 * max.message.bytes >= 61, a batch header; index.interval.bytes >= 1), so a
 * value accepted here never makes coll_log_set_config() fail.
 */
#include "cluster/topic_config.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const cleanup_choices[] = {"delete", "compact", "compact,delete", NULL};
static const char *const compression_choices[] = {"producer", NULL};
static const char *const timestamp_choices[] = {"CreateTime", "LogAppendTime", NULL};

#define DAY_MS (24LL * 3600 * 1000)

/* Sorted by name (the order DescribeConfigs lists them in). */
const coll_tcfg_def_t coll_tcfg_defs[COLL_TCFG_COUNT] = {
    [COLL_TCFG_CLEANUP_POLICY] = {"cleanup.policy", "log.cleanup.policy", COLL_CONFIG_TYPE_LIST, 0,
                                  0, cleanup_choices,
                                  "A string that is either \"delete\" or \"compact\" or both: the "
                                  "retention policy for old log segments."},
    [COLL_TCFG_COMPRESSION_TYPE] = {"compression.type", "compression.type", COLL_CONFIG_TYPE_STRING,
                                    0, 0, compression_choices,
                                    "Batches are stored as the producer compressed them; the "
                                    "collector never recompresses, so only \"producer\" is "
                                    "accepted."},
    [COLL_TCFG_DELETE_RETENTION_MS] = {"delete.retention.ms", "log.cleaner.delete.retention.ms",
                                       COLL_CONFIG_TYPE_LONG, 0, INT64_MAX, NULL,
                                       "How long delete tombstones are kept in compacted topics."},
    [COLL_TCFG_INDEX_INTERVAL_BYTES] = {"index.interval.bytes", "log.index.interval.bytes",
                                        COLL_CONFIG_TYPE_INT, 1, INT32_MAX, NULL,
                                        "Bytes of batches between two offset index entries."},
    [COLL_TCFG_MAX_MESSAGE_BYTES] = {"max.message.bytes", "message.max.bytes", COLL_CONFIG_TYPE_INT,
                                     61, INT32_MAX, NULL,
                                     "The largest record batch size allowed (after compression)."},
    [COLL_TCFG_MESSAGE_TIMESTAMP_TYPE] = {"message.timestamp.type", "log.message.timestamp.type",
                                          COLL_CONFIG_TYPE_STRING, 0, 0, timestamp_choices,
                                          "CreateTime keeps the producer's timestamps; "
                                          "LogAppendTime stamps batches with the collector's "
                                          "clock."},
    [COLL_TCFG_MIN_CLEANABLE_DIRTY_RATIO] = {"min.cleanable.dirty.ratio",
                                             "log.cleaner.min.cleanable.ratio",
                                             COLL_CONFIG_TYPE_DOUBLE, 0, 0, NULL,
                                             "The dirty share of a compacted log above which the "
                                             "cleaner runs."},
    [COLL_TCFG_MIN_COMPACTION_LAG_MS] = {"min.compaction.lag.ms",
                                         "log.cleaner.min.compaction.lag.ms", COLL_CONFIG_TYPE_LONG,
                                         0, INT64_MAX, NULL,
                                         "The minimum time a record stays uncompacted."},
    [COLL_TCFG_MIN_INSYNC_REPLICAS] = {"min.insync.replicas", "min.insync.replicas",
                                       COLL_CONFIG_TYPE_INT, 1, INT32_MAX, NULL,
                                       "With acks=all, the replicas that must have a batch. A "
                                       "single node has one: above 1, acks=all produce fails "
                                       "with NOT_ENOUGH_REPLICAS."},
    [COLL_TCFG_RETENTION_BYTES] = {"retention.bytes", "log.retention.bytes", COLL_CONFIG_TYPE_LONG,
                                   -1, INT64_MAX, NULL,
                                   "The size a partition may grow to before old segments are "
                                   "deleted; -1 = unlimited."},
    [COLL_TCFG_RETENTION_MS] = {"retention.ms", "log.retention.ms", COLL_CONFIG_TYPE_LONG, -1,
                                INT64_MAX, NULL,
                                "How long a segment is kept after its newest record; -1 = "
                                "forever."},
    [COLL_TCFG_SEGMENT_BYTES] = {"segment.bytes", "log.segment.bytes", COLL_CONFIG_TYPE_INT, 1024,
                                 INT32_MAX, NULL, "The segment file size."},
    [COLL_TCFG_SEGMENT_INDEX_BYTES] = {"segment.index.bytes", "log.index.size.max.bytes",
                                       COLL_CONFIG_TYPE_INT, 1024, INT32_MAX, NULL,
                                       "The size of a segment's offset and time indexes."},
    [COLL_TCFG_SEGMENT_MS] = {"segment.ms", "log.roll.ms", COLL_CONFIG_TYPE_LONG, 1, INT64_MAX,
                              NULL, "The age after which a segment is rolled."},
};

int coll_tcfg_find(const char *name, size_t len)
{
    for (int i = 0; i < COLL_TCFG_COUNT; i++) {
        if (strlen(coll_tcfg_defs[i].name) == len &&
            memcmp(coll_tcfg_defs[i].name, name, len) == 0) {
            return i;
        }
    }
    return -1;
}

int coll_tcfg_find_broker(const char *name, size_t len)
{
    for (int i = 0; i < COLL_TCFG_COUNT; i++) {
        const char *b = coll_tcfg_defs[i].broker_name;
        if (strlen(b) == len && memcmp(b, name, len) == 0) {
            return i;
        }
    }
    return -1;
}

void coll_tcfg_init(coll_tcfg_t *c)
{
    memset(c, 0, sizeof(*c));
    c->v[COLL_TCFG_CLEANUP_POLICY].i = COLL_CLEANUP_DELETE;
    c->v[COLL_TCFG_COMPRESSION_TYPE].i = 0;
    c->v[COLL_TCFG_DELETE_RETENTION_MS].i = DAY_MS;
    c->v[COLL_TCFG_INDEX_INTERVAL_BYTES].i = 4096;
    c->v[COLL_TCFG_MAX_MESSAGE_BYTES].i = 1048588;
    c->v[COLL_TCFG_MESSAGE_TIMESTAMP_TYPE].i = COLL_TS_CREATE_TIME;
    c->v[COLL_TCFG_MIN_CLEANABLE_DIRTY_RATIO].d = 0.5;
    c->v[COLL_TCFG_MIN_COMPACTION_LAG_MS].i = 0;
    c->v[COLL_TCFG_MIN_INSYNC_REPLICAS].i = 1;
    c->v[COLL_TCFG_RETENTION_BYTES].i = -1;
    c->v[COLL_TCFG_RETENTION_MS].i = 7 * DAY_MS;
    c->v[COLL_TCFG_SEGMENT_BYTES].i = 1LL << 30;
    c->v[COLL_TCFG_SEGMENT_INDEX_BYTES].i = 10LL << 20;
    c->v[COLL_TCFG_SEGMENT_MS].i = 7 * DAY_MS;
}

/* Copies value[0..len) without surrounding blanks (Kafka trims) into buf. */
static const char *trimmed(const char *value, size_t len, char *buf, size_t buflen)
{
    while (len > 0 && (*value == ' ' || *value == '\t')) {
        value++;
        len--;
    }
    while (len > 0 && (value[len - 1] == ' ' || value[len - 1] == '\t')) {
        len--;
    }
    if (len >= buflen || memchr(value, '\0', len)) {
        return NULL;
    }
    memcpy(buf, value, len);
    buf[len] = '\0';
    return buf;
}

static int invalid(char *msg, size_t msglen, const char *shown, int key, const char *why)
{
    if (msg && msglen) {
        snprintf(msg, msglen, "Invalid value %s for configuration %s: %s", shown,
                 coll_tcfg_defs[key].name, why);
    }
    return -EINVAL;
}

static int parse_cleanup(const char *s, int64_t *bits)
{
    /* A comma-separated list of "delete" and "compact", in any order, once each. */
    unsigned b = 0;
    const char *p = s;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        while (n > 0 && *p == ' ') {
            p++;
            n--;
        }
        while (n > 0 && p[n - 1] == ' ') {
            n--;
        }
        unsigned bit = 0;
        if (n == 6 && memcmp(p, "delete", 6) == 0) {
            bit = COLL_CLEANUP_DELETE;
        } else if (n == 7 && memcmp(p, "compact", 7) == 0) {
            bit = COLL_CLEANUP_COMPACT;
        }
        if (!bit || (b & bit)) {
            return -EINVAL;
        }
        b |= bit;
        if (!comma) {
            break;
        }
        p = comma + 1;
        if (!*p) {
            return -EINVAL;
        }
    }
    if (!b) {
        return -EINVAL;
    }
    *bits = b;
    return 0;
}

int coll_tcfg_parse(int key, const char *value, size_t len, coll_tcfg_val_t *out, char *msg,
                    size_t msglen)
{
    if (key < 0 || key >= COLL_TCFG_COUNT) {
        return -EINVAL;
    }
    const coll_tcfg_def_t *d = &coll_tcfg_defs[key];
    char buf[128];
    if (!value) {
        return invalid(msg, msglen, "null", key, "a value is required");
    }
    const char *s = trimmed(value, len, buf, sizeof(buf));
    if (!s) {
        return invalid(msg, msglen, "(too long)", key, "not a valid value");
    }
    switch (d->type) {
    case COLL_CONFIG_TYPE_INT:
    case COLL_CONFIG_TYPE_LONG: {
        char *end;
        errno = 0;
        long long v = strtoll(s, &end, 10);
        if (!*s || *end || errno ||
            (d->type == COLL_CONFIG_TYPE_INT && (v < INT32_MIN || v > INT32_MAX))) {
            return invalid(msg, msglen, s, key,
                           d->type == COLL_CONFIG_TYPE_INT ? "Not a number of type INT"
                                                           : "Not a number of type LONG");
        }
        if (v < d->min || v > d->max) {
            char why[96];
            if (d->max == INT64_MAX || d->max == INT32_MAX) {
                snprintf(why, sizeof(why), "Value must be at least %" PRId64, d->min);
            } else {
                snprintf(why, sizeof(why), "Value must be in [%" PRId64 ", %" PRId64 "]", d->min,
                         d->max);
            }
            return invalid(msg, msglen, s, key, why);
        }
        out->i = v;
        return 0;
    }
    case COLL_CONFIG_TYPE_DOUBLE: {
        char *end;
        errno = 0;
        double v = strtod(s, &end);
        if (!*s || *end || errno || !isfinite(v)) {
            return invalid(msg, msglen, s, key, "Not a number of type DOUBLE");
        }
        if (v < 0 || v > 1) {
            return invalid(msg, msglen, s, key, "Value must be in [0, 1]");
        }
        out->d = v;
        return 0;
    }
    case COLL_CONFIG_TYPE_LIST: {
        int64_t bits;
        if (parse_cleanup(s, &bits) != 0) {
            return invalid(msg, msglen, s, key,
                           "String must be one of: delete, compact (or both, comma-separated)");
        }
        out->i = bits;
        return 0;
    }
    default:
        for (int i = 0; d->choices && d->choices[i]; i++) {
            if (strcmp(s, d->choices[i]) == 0) {
                out->i = i;
                return 0;
            }
        }
        if (key == COLL_TCFG_COMPRESSION_TYPE) {
            return invalid(msg, msglen, s, key,
                           "the collector stores batches as produced and never recompresses; "
                           "only \"producer\" is supported");
        }
        return invalid(msg, msglen, s, key, "String must be one of: CreateTime, LogAppendTime");
    }
}

void coll_tcfg_format(int key, coll_tcfg_val_t v, char *out, size_t outlen)
{
    if (!outlen) {
        return;
    }
    out[0] = '\0';
    if (key < 0 || key >= COLL_TCFG_COUNT) {
        return;
    }
    const coll_tcfg_def_t *d = &coll_tcfg_defs[key];
    switch (d->type) {
    case COLL_CONFIG_TYPE_INT:
    case COLL_CONFIG_TYPE_LONG:
        snprintf(out, outlen, "%" PRId64, v.i);
        break;
    case COLL_CONFIG_TYPE_DOUBLE:
        snprintf(out, outlen, "%.17g", v.d);
        /* Shortest form that reads back the same: "0.5" rather than "0.50000000000000000". */
        for (int prec = 1; prec <= 17; prec++) {
            char tmp[64];
            snprintf(tmp, sizeof(tmp), "%.*g", prec, v.d);
            if (strtod(tmp, NULL) == v.d) {
                snprintf(out, outlen, "%s", tmp);
                break;
            }
        }
        break;
    case COLL_CONFIG_TYPE_LIST:
        snprintf(out, outlen, "%s",
                 v.i == (COLL_CLEANUP_DELETE | COLL_CLEANUP_COMPACT) ? "compact,delete"
                 : v.i == COLL_CLEANUP_COMPACT                       ? "compact"
                                                                     : "delete");
        break;
    default:
        if (d->choices && v.i >= 0) {
            for (int i = 0; d->choices[i]; i++) {
                if (i == v.i) {
                    snprintf(out, outlen, "%s", d->choices[i]);
                }
            }
        }
        break;
    }
}

bool coll_tcfg_equal(int key, coll_tcfg_val_t a, coll_tcfg_val_t b)
{
    if (coll_tcfg_defs[key].type == COLL_CONFIG_TYPE_DOUBLE) {
        return a.d == b.d;
    }
    return a.i == b.i;
}

void coll_tcfg_merge(const coll_tcfg_t *defaults, const coll_tcfg_t *overrides, uint32_t mask,
                     coll_tcfg_t *out)
{
    for (int i = 0; i < COLL_TCFG_COUNT; i++) {
        out->v[i] = (mask & (1u << i)) ? overrides->v[i] : defaults->v[i];
    }
}

void coll_tcfg_to_log_config(const coll_tcfg_t *c, coll_log_config_t *out)
{
    coll_log_config_init(out);
    out->segment_bytes = (uint64_t)c->v[COLL_TCFG_SEGMENT_BYTES].i;
    out->segment_ms = c->v[COLL_TCFG_SEGMENT_MS].i;
    out->segment_index_bytes = (uint32_t)c->v[COLL_TCFG_SEGMENT_INDEX_BYTES].i;
    out->retention_bytes = c->v[COLL_TCFG_RETENTION_BYTES].i;
    out->retention_ms = c->v[COLL_TCFG_RETENTION_MS].i;
    out->cleanup_policy = (unsigned)c->v[COLL_TCFG_CLEANUP_POLICY].i;
    out->delete_retention_ms = c->v[COLL_TCFG_DELETE_RETENTION_MS].i;
    out->min_compaction_lag_ms = c->v[COLL_TCFG_MIN_COMPACTION_LAG_MS].i;
    out->min_cleanable_dirty_ratio = c->v[COLL_TCFG_MIN_CLEANABLE_DIRTY_RATIO].d;
    out->max_message_bytes = (uint32_t)c->v[COLL_TCFG_MAX_MESSAGE_BYTES].i;
    out->index_interval_bytes = (uint32_t)c->v[COLL_TCFG_INDEX_INTERVAL_BYTES].i;
}
