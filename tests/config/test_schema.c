/* SPDX-License-Identifier: Apache-2.0 */
/* The config tests' schema tables (see test_schema.h). */
#include "test_schema.h"

#include <stddef.h>

static const char *const fsync_modes[] = {"ack", "interval", "never", NULL};
static const char *const sink_types[] = {"file", "kafka", "http", NULL};
static const char *const mechanisms[] = {"none", "plain", "scram-sha-256", "scram-sha-512", NULL};
static const char *const log_levels[] = {"error", "warn", "info", "debug", "trace", NULL};
static const char *const log_formats[] = {"text", "json", NULL};

static const trib_config_option_t batch_opts[] = {
    {TRIB_CONFIG_FIELD(batch_conf_t, max_records, UINT), .def = "500", .min = "1", .max = "1000000",
     .desc = "records per batch handed to the plugin"},
    {TRIB_CONFIG_FIELD(batch_conf_t, max_bytes, SIZE), .def = "1MiB", .min = "1KiB",
     .max = "64MiB"},
    {TRIB_CONFIG_FIELD(batch_conf_t, linger, DURATION), .def = "1s", .min = "0", .max = "1m"},
    TRIB_CONFIG_END,
};

static const trib_config_option_t sink_opts[] = {
    {TRIB_CONFIG_FIELD(sink_conf_t, name, STRING), .flags = TRIB_CONFIG_REQUIRED, .min = "1",
     .desc = "the sink's name; its consumer group is sink.<name>"},
    {TRIB_CONFIG_FIELD(sink_conf_t, type, ENUM), .flags = TRIB_CONFIG_REQUIRED,
     .choices = sink_types},
    {TRIB_CONFIG_FIELD(sink_conf_t, topics, STRLIST), .flags = TRIB_CONFIG_REQUIRED, .min = "1"},
    {TRIB_CONFIG_SECTION(sink_conf_t, batch, batch_opts)},
    {TRIB_CONFIG_FIELD(sink_conf_t, options, MAP), .desc = "passed to the plugin"},
    TRIB_CONFIG_END,
};

static const trib_config_option_t storage_opts[] = {
    {TRIB_CONFIG_FIELD(storage_conf_t, fsync, ENUM), .def = "ack", .choices = fsync_modes,
     .desc = "when appended batches reach the disk"},
    {TRIB_CONFIG_FIELD(storage_conf_t, flush_ms, DURATION), .def = "1s", .min = "1ms", .max = "1h"},
    {TRIB_CONFIG_FIELD(storage_conf_t, segment_bytes, SIZE), .def = "1GiB", .min = "1MiB",
     .max = "16GiB"},
    {TRIB_CONFIG_FIELD(storage_conf_t, min_free_ratio, DOUBLE), .def = "0.05", .min = "0",
     .max = "1"},
    {TRIB_CONFIG_FIELD(storage_conf_t, preallocate, BOOL), .def = "false"},
    TRIB_CONFIG_END,
};

static const trib_config_option_t auth_opts[] = {
    {TRIB_CONFIG_FIELD(auth_conf_t, mechanism, ENUM), .def = "none", .choices = mechanisms},
    {TRIB_CONFIG_FIELD(auth_conf_t, username, STRING)},
    {TRIB_CONFIG_FIELD(auth_conf_t, password, STRING), .flags = TRIB_CONFIG_SECRET},
    TRIB_CONFIG_END,
};

static const trib_config_option_t log_opts[] = {
    {TRIB_CONFIG_FIELD(log_conf_t, level, ENUM), .def = "info", .choices = log_levels},
    {TRIB_CONFIG_FIELD(log_conf_t, format, ENUM), .def = "text", .choices = log_formats},
    TRIB_CONFIG_END,
};

const trib_config_option_t test_conf_opts[] = {
    {TRIB_CONFIG_FIELD(conf_t, listen, ADDRESS), .def = "0.0.0.0:9092",
     .desc = "host:port of the Kafka listener"},
    {TRIB_CONFIG_FIELD(conf_t, advertised, ADDRESS), .desc = "host:port given to clients"},
    {TRIB_CONFIG_FIELD(conf_t, data_dir, STRING), .def = "/var/lib/tributary"},
    {TRIB_CONFIG_FIELD(conf_t, node_id, INT), .flags = TRIB_CONFIG_REQUIRED, .min = "0",
     .max = "1000"},
    {TRIB_CONFIG_SECTION(conf_t, storage, storage_opts)},
    {TRIB_CONFIG_SECTIONS(conf_t, sinks, nsinks, sink_conf_t, sink_opts)},
    {TRIB_CONFIG_SECTION(conf_t, auth, auth_opts)},
    {TRIB_CONFIG_SECTION(conf_t, log, log_opts)},
    TRIB_CONFIG_END,
};

const trib_config_option_t test_file_sink_opts[] = {
    {TRIB_CONFIG_FIELD(file_sink_conf_t, path, STRING), .flags = TRIB_CONFIG_REQUIRED},
    {TRIB_CONFIG_FIELD(file_sink_conf_t, rotate_bytes, SIZE), .def = "100MiB"},
    {TRIB_CONFIG_FIELD(file_sink_conf_t, gzip, BOOL), .def = "false"},
    TRIB_CONFIG_END,
};
