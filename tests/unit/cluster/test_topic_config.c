/* SPDX-License-Identifier: Apache-2.0 */
/* Topic configs: Kafka-syntax parsing, canonical printing, merging, and the log mapping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "cluster/topic_config.h"

static int parse(const char *name, const char *value, coll_tcfg_val_t *v, char *msg)
{
    int k = coll_tcfg_find(name, strlen(name));
    assert_true(k >= 0);
    return coll_tcfg_parse(k, value, strlen(value), v, msg, 256);
}

static const char *fmt(const char *name, coll_tcfg_val_t v)
{
    static char out[64];
    coll_tcfg_format(coll_tcfg_find(name, strlen(name)), v, out, sizeof(out));
    return out;
}

static void test_table(void **state)
{
    (void)state;
    for (int i = 0; i < COLL_TCFG_COUNT; i++) {
        const coll_tcfg_def_t *d = &coll_tcfg_defs[i];
        assert_non_null(d->name);
        assert_non_null(d->broker_name);
        assert_non_null(d->doc);
        assert_int_equal(coll_tcfg_find(d->name, strlen(d->name)), i);
        assert_int_equal(coll_tcfg_find_broker(d->broker_name, strlen(d->broker_name)), i);
        if (i > 0) {
            assert_true(strcmp(coll_tcfg_defs[i - 1].name, d->name) < 0); /* sorted */
        }
    }
    assert_int_equal(coll_tcfg_find("retention", 9), -1);
    assert_int_equal(coll_tcfg_find("retention.ms.x", 14), -1);
    /* Kafka's defaults print as Kafka prints them. */
    coll_tcfg_t c;
    coll_tcfg_init(&c);
    static const char *const want[COLL_TCFG_COUNT] = {
        "delete", "producer", "86400000", "4096",      "1048588",    "CreateTime", "0.5",
        "0",      "1",        "-1",       "604800000", "1073741824", "10485760",   "604800000",
    };
    for (int i = 0; i < COLL_TCFG_COUNT; i++) {
        char out[64];
        coll_tcfg_format(i, c.v[i], out, sizeof(out));
        assert_string_equal(out, want[i]);
        coll_tcfg_val_t v;
        assert_int_equal(coll_tcfg_parse(i, out, strlen(out), &v, NULL, 0), 0);
        assert_true(coll_tcfg_equal(i, v, c.v[i]));
    }
}

static void test_parse(void **state)
{
    (void)state;
    coll_tcfg_val_t v;
    char msg[256];
    assert_int_equal(parse("retention.ms", " 1000 ", &v, msg), 0);
    assert_int_equal(v.i, 1000);
    assert_int_equal(parse("retention.ms", "-1", &v, msg), 0);
    assert_int_equal(parse("retention.ms", "-2", &v, msg), -EINVAL);
    assert_string_equal(
        msg, "Invalid value -2 for configuration retention.ms: Value must be at least -1");
    assert_int_equal(parse("retention.ms", "1e3", &v, msg), -EINVAL);
    assert_non_null(strstr(msg, "Not a number of type LONG"));
    assert_int_equal(parse("segment.bytes", "2147483648", &v, msg), -EINVAL);
    assert_non_null(strstr(msg, "INT"));
    assert_int_equal(parse("segment.bytes", "1023", &v, msg), -EINVAL);
    assert_int_equal(parse("segment.bytes", "1024", &v, msg), 0);
    assert_int_equal(parse("max.message.bytes", "60", &v, msg), -EINVAL);
    assert_int_equal(parse("min.insync.replicas", "0", &v, msg), -EINVAL);
    assert_int_equal(parse("retention.bytes", "", &v, msg), -EINVAL);
    assert_int_equal(parse("cleanup.policy", "compact", &v, msg), 0);
    assert_string_equal(fmt("cleanup.policy", v), "compact");
    assert_int_equal(parse("cleanup.policy", "delete, compact", &v, msg), 0);
    assert_string_equal(fmt("cleanup.policy", v), "compact,delete");
    assert_int_equal(parse("cleanup.policy", "delete,delete", &v, msg), -EINVAL);
    assert_int_equal(parse("cleanup.policy", "delete,", &v, msg), -EINVAL);
    assert_int_equal(parse("cleanup.policy", "purge", &v, msg), -EINVAL);
    assert_int_equal(parse("message.timestamp.type", "LogAppendTime", &v, msg), 0);
    assert_int_equal(v.i, COLL_TS_LOG_APPEND_TIME);
    assert_int_equal(parse("message.timestamp.type", "logappendtime", &v, msg), -EINVAL);
    assert_int_equal(parse("compression.type", "producer", &v, msg), 0);
    assert_int_equal(parse("compression.type", "zstd", &v, msg), -EINVAL);
    assert_non_null(strstr(msg, "never recompresses"));
    assert_int_equal(parse("min.cleanable.dirty.ratio", "0.125", &v, msg), 0);
    assert_string_equal(fmt("min.cleanable.dirty.ratio", v), "0.125");
    assert_int_equal(parse("min.cleanable.dirty.ratio", "1.5", &v, msg), -EINVAL);
    assert_int_equal(parse("min.cleanable.dirty.ratio", "nan", &v, msg), -EINVAL);
    /* Null (Kafka's null value) and embedded NULs are refused. */
    assert_int_equal(coll_tcfg_parse(COLL_TCFG_RETENTION_MS, NULL, 0, &v, msg, sizeof(msg)),
                     -EINVAL);
    assert_int_equal(coll_tcfg_parse(COLL_TCFG_RETENTION_MS, "10\0", 3, &v, msg, sizeof(msg)),
                     -EINVAL);
    assert_int_equal(coll_tcfg_parse(-1, "1", 1, &v, msg, sizeof(msg)), -EINVAL);
}

static void test_merge_and_log_config(void **state)
{
    (void)state;
    coll_tcfg_t d, o, eff;
    coll_tcfg_init(&d);
    coll_tcfg_init(&o);
    o.v[COLL_TCFG_RETENTION_MS].i = 5000;
    o.v[COLL_TCFG_SEGMENT_BYTES].i = 4096; /* not in the mask: ignored */
    o.v[COLL_TCFG_CLEANUP_POLICY].i = COLL_CLEANUP_COMPACT;
    coll_tcfg_merge(&d, &o, (1u << COLL_TCFG_RETENTION_MS) | (1u << COLL_TCFG_CLEANUP_POLICY),
                    &eff);
    assert_int_equal(eff.v[COLL_TCFG_RETENTION_MS].i, 5000);
    assert_int_equal(eff.v[COLL_TCFG_SEGMENT_BYTES].i, 1 << 30);
    coll_log_config_t lc;
    coll_tcfg_to_log_config(&eff, &lc);
    assert_int_equal(lc.retention_ms, 5000);
    assert_int_equal(lc.segment_bytes, 1u << 30);
    assert_int_equal(lc.cleanup_policy, COLL_CLEANUP_COMPACT);
    assert_int_equal(lc.max_message_bytes, 1048588);
    assert_int_equal(lc.retention_bytes, -1);
    assert_int_equal(lc.segment_index_bytes, 10u << 20);
    assert_true(lc.min_cleanable_dirty_ratio == 0.5);
    /* Kafka's defaults map onto the storage's own defaults. */
    coll_log_config_t sd;
    coll_log_config_init(&sd);
    coll_tcfg_to_log_config(&d, &lc);
    assert_memory_equal(&lc, &sd, sizeof(lc));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_merge_and_log_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
