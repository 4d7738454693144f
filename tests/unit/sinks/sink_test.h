/* SPDX-License-Identifier: Apache-2.0 */
/* Helpers of the sink unit tests: a host-services table, records, temp dirs. */
#ifndef TESTS_UNIT_SINKS_SINK_TEST_H
#define TESTS_UNIT_SINKS_SINK_TEST_H

#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tributary/sink.h"

static uint64_t test_now_ms_value; /* 0: the real clock */

static void test_host_log(trib_sink_ctx_t *ctx, int level, const char *fmt, ...)
{
    (void)ctx;
    if (level > 2) { /* info */
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "[sink:test] ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
}

/* What plugins counted (counter_add), by name: read with test_counter(). */
static struct {
    char name[64];
    uint64_t value;
} test_counters[32];

static void test_host_counter(trib_sink_ctx_t *ctx, const char *name, uint64_t d)
{
    (void)ctx;
    for (size_t i = 0; i < sizeof(test_counters) / sizeof(test_counters[0]); i++) {
        if (!test_counters[i].name[0]) {
            snprintf(test_counters[i].name, sizeof(test_counters[i].name), "%s", name);
        }
        if (strcmp(test_counters[i].name, name) == 0) {
            test_counters[i].value += d;
            return;
        }
    }
}

static inline uint64_t test_counter(const char *name)
{
    for (size_t i = 0; i < sizeof(test_counters) / sizeof(test_counters[0]); i++) {
        if (strcmp(test_counters[i].name, name) == 0) {
            return test_counters[i].value;
        }
    }
    return 0;
}

static void test_host_gauge(trib_sink_ctx_t *ctx, const char *name, double v)
{
    (void)ctx;
    (void)name;
    (void)v;
}

static uint64_t test_host_now(void)
{
    if (test_now_ms_value) {
        return test_now_ms_value;
    }
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int64_t test_host_wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *test_host_name(trib_sink_ctx_t *ctx)
{
    (void)ctx;
    return "test";
}

static const trib_sink_host_t test_host = {
    .abi_version = TRIB_SINK_ABI_VERSION,
    .struct_size = sizeof(trib_sink_host_t),
    .log = test_host_log,
    .counter_add = test_host_counter,
    .gauge_set = test_host_gauge,
    .now_ms = test_host_now,
    .wall_ms = test_host_wall,
    .sink_name = test_host_name,
};

static inline trib_sink_record_t test_record(int64_t offset, const char *key, const char *value)
{
    trib_sink_record_t r;
    memset(&r, 0, sizeof(r));
    r.offset = offset;
    r.timestamp = 1700000000000 + offset;
    r.key = key ? trib_record_bytes(key, (int32_t)strlen(key)) : trib_record_null();
    r.value = value ? trib_record_bytes(value, (int32_t)strlen(value)) : trib_record_null();
    return r;
}

/* A fresh directory under $TMPDIR; removed by test_rmdir(). */
static inline void test_mkdtemp(char *out, size_t len)
{
    const char *t = getenv("TMPDIR");
    snprintf(out, len, "%s/sinktest.XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(out)) {
        abort();
    }
}

static inline void test_rmdir(const char *dir)
{
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "could not remove %s\n", dir);
    }
}

#endif
