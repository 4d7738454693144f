/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The sink plugin ABI: what a sink shared object exports, what the host
 * gives it, and the loader that joins the two.
 *
 * A plugin is a shared object (build/lib/tributary/sinks/<type>.so in a
 * build tree, /usr/lib/tributary/sinks/<type>.so installed) exporting one
 * fixed symbol, TRIB_SINK_ENTRY_SYMBOL, a function returning a pointer to a
 * static trib_sink_descriptor_t:
 *
 *   TRIB_SINK_EXPORT const trib_sink_descriptor_t *tributary_sink_descriptor(void)
 *   {
 *       static const trib_sink_descriptor_t d = {
 *           .abi_version = TRIB_SINK_ABI_VERSION,
 *           .struct_size = sizeof(trib_sink_descriptor_t),
 *           .name = "file",
 *           .options = sink_file_options,      // trib_config_option_t rows
 *           .options_size = sizeof(sink_file_opts_t),
 *           .open = sink_file_open, .write = sink_file_write,
 *           .flush = sink_file_flush, .close = sink_file_close,
 *       };
 *       return &d;
 *   }
 *
 * The symbol's name never changes; what it returns is versioned and sized:
 * the host refuses a descriptor whose abi_version differs from its own
 * TRIB_SINK_ABI_VERSION, or whose struct_size is smaller than the fields
 * that version defines, with a message naming both versions and the file.
 * Fields are only ever appended within one ABI version (struct_size tells
 * the host which are present); anything else bumps the version.
 *
 * Life cycle, for each partition task of a sink:
 *
 *   host validates the sink's `options` map against desc->options
 *   (trib_config_apply_map: errors with file:line:col), into a zeroed
 *   block of desc->options_size bytes;
 *   open(host, ctx, options, &inst, err)
 *   write(inst, batch, res) ...          repeated; may buffer
 *   flush(inst, res)                     everything written so far durable
 *   close(inst)
 *
 * An instance is used by one thread at a time, but not always the same
 * thread; callbacks may block (the host calls them off its event loop).
 *
 * Delivery contract. Plugins never see offsets to commit nor decide about
 * retries: they report what happened and the host acts on it.
 *   TRIB_SINK_OK      write: the batch is accepted (durable if flush is
 *                     NULL, otherwise after the next successful flush).
 *   TRIB_SINK_RETRY   a transient failure (connection lost, timeout, 5xx):
 *                     the host redelivers the same records later, with
 *                     capped exponential backoff and jitter. A plugin that
 *                     buffered must drop what it buffered: the host
 *                     rewrites everything since the last successful flush.
 *   TRIB_SINK_REJECT  the target refused the data for good (a bad value, a
 *                     constraint). If res->failed_index names the record,
 *                     the host dead-letters it; otherwise it splits the
 *                     batch to isolate the bad records, writing the halves
 *                     again, so plugins must tolerate rewrites (they must
 *                     anyway: delivery is at-least-once, so plugins write
 *                     idempotently, keyed by (topic, partition, offset)).
 * res->msg says why (it goes to the log and to the dead-letter headers).
 *
 * Error classes. A RETRY also says whether waiting can help: the host reads
 * res->error_class (zeroed before every call, so TRANSIENT unless set).
 *   TRANSIENT  connection refused or lost, a timeout, a 5xx: retried with
 *              the sink's backoff, as before.
 *   SCHEMA, AUTH, DATABASE  the target is misconfigured (a missing table,
 *              column or key; credentials refused; no such database): no
 *              retry will succeed until someone fixes it, so the host
 *              retries at the backoff cap, logs the message once per
 *              change (not per retry), and reports the sink down in its
 *              metrics and /health until a write succeeds. res->msg then
 *              says what to run or change (the exact CREATE/ALTER).
 *
 * Optional entries (appended; present when struct_size covers them, see
 * TRIB_SINK_HAS): `details`, text for --describe-sink and the docs (the
 * table layout a sink needs); `check`, offline checks of the options that
 * the schema cannot express (run by --check-config and at start); `probe`,
 * on an open instance, connects to the target and checks it as a write
 * would, writing nothing (run by --check-config --connect).
 */
#ifndef TRIBUTARY_SINK_H
#define TRIBUTARY_SINK_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "tributary/config.h"
#include "tributary/error.h"
#include "tributary/record.h"

#define TRIB_SINK_ABI_VERSION 2
#define TRIB_SINK_ENTRY_SYMBOL "tributary_sink_descriptor"
#define TRIB_SINK_EXPORT __attribute__((visibility("default")))
/* Where installed plugins live; a build tree's are in <build>/lib/tributary/sinks. */
#define TRIB_SINK_INSTALL_DIR "/usr/lib/tributary/sinks"

typedef enum trib_sink_status {
    TRIB_SINK_OK = 0,
    TRIB_SINK_RETRY = 1,
    TRIB_SINK_REJECT = 2,
} trib_sink_status_t;

/* One record as a sink sees it: views valid for the duration of the call. */
typedef struct trib_sink_record {
    int64_t offset;
    int64_t timestamp; /* ms since the epoch */
    trib_record_bytes_t key;
    trib_record_bytes_t value;
    int32_t header_count;
    const uint8_t *headers; /* Kafka-encoded (trib_record_header_iter) */
    size_t headers_len;
} trib_sink_record_t;

/* A batch: records of one partition, in offset order. */
typedef struct trib_sink_batch {
    const char *topic;
    int32_t partition;
    const trib_sink_record_t *records;
    size_t count;
    size_t bytes; /* sum of key and value lengths */
} trib_sink_batch_t;

typedef enum trib_sink_error_class {
    TRIB_SINK_ERR_TRANSIENT = 0,
    TRIB_SINK_ERR_SCHEMA = 1,   /* the table, a column, a type or the unique key */
    TRIB_SINK_ERR_AUTH = 2,     /* credentials or permissions refused */
    TRIB_SINK_ERR_DATABASE = 3, /* the database does not exist */
} trib_sink_error_class_t;

/* "transient", "schema", "auth" or "database". */
const char *trib_sink_error_class_name(trib_sink_error_class_t c);

/* The result of one call, allocated and zeroed by the host. */
typedef struct trib_sink_result {
    trib_sink_status_t status;
    int64_t failed_index; /* REJECT: the record at fault, -1 if unknown */
    char msg[1024];
    trib_sink_error_class_t error_class; /* RETRY: can waiting help? (see above) */
} trib_sink_result_t;

/* The host's per-instance context: opaque to plugins, passed back to host services. */
typedef struct trib_sink_ctx trib_sink_ctx_t;

/*
 * Services the host offers a plugin. Versioned and sized like the
 * descriptor; a plugin may check struct_size before using a late field.
 */
typedef struct trib_sink_host {
    uint32_t abi_version;
    uint32_t struct_size;
    /* Logs with a "[sink:<name>]" prefix; level is trib_log_level_t. */
    void (*log)(trib_sink_ctx_t *ctx, int level, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
    /* Adds to a counter tributary_sink_<name>_total{sink="..."}. */
    void (*counter_add)(trib_sink_ctx_t *ctx, const char *name, uint64_t delta);
    /* Sets a gauge tributary_sink_<name>{sink="..."}. */
    void (*gauge_set)(trib_sink_ctx_t *ctx, const char *name, double value);
    /* Clocks: monotonic and wall, in ms. */
    uint64_t (*now_ms)(void);
    int64_t (*wall_ms)(void);
    /* The sink's configured name ("pg-web"). */
    const char *(*sink_name)(trib_sink_ctx_t *ctx);
} trib_sink_host_t;

typedef struct trib_sink_descriptor {
    uint32_t abi_version; /* TRIB_SINK_ABI_VERSION */
    uint32_t struct_size; /* sizeof(trib_sink_descriptor_t) as the plugin knew it */
    const char *name;     /* the type, as in `type: postgres`; must match the file name */
    const char *description;
    const trib_config_option_t *options; /* flat table of scalar options */
    size_t options_size;                 /* the struct they fill */
    int (*open)(const trib_sink_host_t *host, trib_sink_ctx_t *ctx, const void *options,
                void **instance, trib_error_t *err);
    trib_sink_status_t (*write)(void *instance, const trib_sink_batch_t *batch,
                                trib_sink_result_t *res);
    /* NULL when write() is durable on return. */
    trib_sink_status_t (*flush)(void *instance, trib_sink_result_t *res);
    void (*close)(void *instance);
    /* ---- optional, appended (TRIB_SINK_HAS) ---- */
    /* Lines for --describe-sink: what the target must provide (a table layout). */
    const char *details;
    /* Offline checks beyond the schema; 0 or -EINVAL with err->msg starting "<option>: ". */
    int (*check)(const void *options, trib_error_t *err);
    /* Connects and checks the target without writing: OK, or RETRY with msg and error_class. */
    trib_sink_status_t (*probe)(void *instance, trib_sink_result_t *res);
} trib_sink_descriptor_t;

/* True when the descriptor has the appended field (and it is set). */
#define TRIB_SINK_HAS(d, field)                                                                    \
    ((d)->struct_size >= offsetof(trib_sink_descriptor_t, field) + sizeof((d)->field) &&           \
     (d)->field != NULL)

typedef const trib_sink_descriptor_t *(*trib_sink_entry_fn)(void);

/* ---- the loader (host side) -------------------------------------------- */

typedef struct trib_sink_plugin trib_sink_plugin_t;

/*
 * Checks a descriptor as the loader does: ABI version, size, name equal to
 * `type`, callbacks present, option schema sound. `path` names it in
 * messages. Returns 0 or TRIB_EUNSUPPORTED_VERSION / -EINVAL with err set.
 */
int trib_sink_descriptor_check(const trib_sink_descriptor_t *d, const char *type, const char *path,
                               trib_error_t *err);

/*
 * Finds <dir>/<type>.so in `dirs` (NULL-terminated; NULL: the defaults,
 * see trib_sink_default_dirs), loads it and checks its descriptor.
 * `type` must be [a-z0-9_-]+. Returns 0, TRIB_ENOT_FOUND,
 * TRIB_EUNSUPPORTED_VERSION, -EINVAL or -ENOMEM; err says which file and why.
 */
int trib_sink_plugin_load(const char *type, const char *const *dirs, trib_sink_plugin_t **out,
                          trib_error_t *err);
/* Wraps a descriptor linked into the program (tests, static builds). */
int trib_sink_plugin_wrap(const trib_sink_descriptor_t *d, trib_sink_plugin_t **out,
                          trib_error_t *err);
void trib_sink_plugin_free(trib_sink_plugin_t *p);
const trib_sink_descriptor_t *trib_sink_plugin_descriptor(const trib_sink_plugin_t *p);
const char *trib_sink_plugin_path(const trib_sink_plugin_t *p);

/*
 * The search path, in order: $TRIBUTARY_SINK_PATH (colon-separated), the
 * build tree's lib/tributary/sinks next to the running program
 * (<exe dir>/../lib/tributary/sinks), then TRIB_SINK_INSTALL_DIR. Fills up
 * to max-1 entries plus a NULL into `dirs`, strings in `store`.
 */
size_t trib_sink_default_dirs(const char **dirs, size_t max, char *store, size_t store_len);

/*
 * Validates a sink's `options` map against the plugin's schema with
 * trib_config_apply_map() (errors land in `cfg` with file:line:col) into a
 * new zeroed block of options_size bytes (*out, free()). `where` names the
 * map in messages ("sinks[0].options"). Returns 0, TRIB_ECONFIG or -ENOMEM.
 */
int trib_sink_options_apply(const trib_sink_plugin_t *p, trib_config_t *cfg,
                            const trib_config_map_t *map, const char *where, void **out);

#endif
