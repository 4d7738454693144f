/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The representative, collector-shaped schema the config tests load
 * against (config_check and the config fuzz target share it).
 */
#ifndef TRIB_TEST_SCHEMA_H
#define TRIB_TEST_SCHEMA_H

#include <stdbool.h>
#include <stdint.h>

#include "tributary/config.h"

typedef struct batch_conf {
    uint64_t max_records;
    uint64_t max_bytes;
    int64_t linger;
} batch_conf_t;

typedef struct sink_conf {
    const char *name;
    int type;
    trib_config_strlist_t topics;
    batch_conf_t batch;
    trib_config_map_t options;
} sink_conf_t;

typedef struct storage_conf {
    int fsync;
    int64_t flush_ms;
    uint64_t segment_bytes;
    double min_free_ratio;
    bool preallocate;
} storage_conf_t;

typedef struct auth_conf {
    int mechanism;
    const char *username;
    const char *password;
} auth_conf_t;

typedef struct log_conf {
    int level;
    int format;
} log_conf_t;

typedef struct conf {
    trib_config_addr_t listen;
    trib_config_addr_t advertised;
    const char *data_dir;
    int64_t node_id;
    storage_conf_t storage;
    sink_conf_t *sinks;
    size_t nsinks;
    auth_conf_t auth;
    log_conf_t log;
} conf_t;

/* The "file" sink plugin's options, checked from the sink's options map. */
typedef struct file_sink_conf {
    const char *path;
    uint64_t rotate_bytes;
    bool gzip;
} file_sink_conf_t;

extern const trib_config_option_t test_conf_opts[];
/* The "file" sink plugin's options, checked from a sink's options map. */
extern const trib_config_option_t test_file_sink_opts[];

#endif
