/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Sink plugins for the operator (see admin.h): listing, self-description
 * and the connecting check. The text printed for an option comes from its
 * schema row only, so what --describe-sink says is what the loader
 * enforces.
 */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sinks/admin.h"
#include "tributary/log.h"
#include "tributary/sink.h"

#define MAX_PLUGINS 64

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The plugin types on the search path, first directory first, sorted, deduplicated. */
static size_t find_types(char **types, size_t max)
{
    const char *dirs[16];
    char store[8192];
    size_t n = 0;
    trib_sink_default_dirs(dirs, 16, store, sizeof(store));
    for (size_t i = 0; dirs[i]; i++) {
        DIR *d = opendir(dirs[i]);
        if (!d) {
            continue;
        }
        struct dirent *de;
        while ((de = readdir(d)) != NULL && n < max) {
            size_t len = strlen(de->d_name);
            if (len <= 3 || strcmp(de->d_name + len - 3, ".so") != 0) {
                continue;
            }
            char *t = strndup(de->d_name, len - 3);
            if (!t) {
                break;
            }
            bool dup = false;
            for (size_t k = 0; k < n && !dup; k++) {
                dup = strcmp(types[k], t) == 0;
            }
            if (dup) {
                free(t);
            } else {
                types[n++] = t;
            }
        }
        closedir(d);
    }
    qsort(types, n, sizeof(*types), cmp_str);
    return n;
}

int coll_sinks_list(FILE *out)
{
    char *types[MAX_PLUGINS];
    size_t n = find_types(types, MAX_PLUGINS);
    size_t shown = 0;
    for (size_t i = 0; i < n; i++) {
        trib_sink_plugin_t *p = NULL;
        trib_error_t err;
        trib_error_clear(&err);
        if (trib_sink_plugin_load(types[i], NULL, &p, &err) == 0) {
            const trib_sink_descriptor_t *d = trib_sink_plugin_descriptor(p);
            fprintf(out, "%-12s %s\n%-12s (%s)\n", d->name, d->description ? d->description : "",
                    "", trib_sink_plugin_path(p));
            shown++;
            trib_sink_plugin_free(p);
        }
        free(types[i]);
    }
    if (shown > 0) {
        fprintf(out, "\nOptions of one: tributary-collector --describe-sink TYPE\n");
    }
    return 0;
}

static const char *type_name(const trib_config_option_t *o)
{
    switch (o->type) {
    case TRIB_CONFIG_BOOL:
        return "boolean";
    case TRIB_CONFIG_INT:
        return "integer";
    case TRIB_CONFIG_UINT:
        return "unsigned integer";
    case TRIB_CONFIG_DOUBLE:
        return "number";
    case TRIB_CONFIG_STRING:
        return "string";
    case TRIB_CONFIG_ENUM:
        return "one of";
    case TRIB_CONFIG_DURATION:
        return "duration";
    case TRIB_CONFIG_SIZE:
        return "size";
    case TRIB_CONFIG_ADDRESS:
        return "address";
    default:
        return "value";
    }
}

static void describe_option(FILE *out, const trib_config_option_t *o)
{
    char line[1024];
    size_t n = (size_t)snprintf(line, sizeof(line), "  %s: %s", o->name, type_name(o));
    if (o->type == TRIB_CONFIG_ENUM && o->choices) {
        for (size_t i = 0; o->choices[i] && n < sizeof(line); i++) {
            n += (size_t)snprintf(line + n, sizeof(line) - n, "%s%s", i ? "|" : " ", o->choices[i]);
        }
    }
    if (n < sizeof(line)) {
        if (o->flags & TRIB_CONFIG_REQUIRED) {
            n += (size_t)snprintf(line + n, sizeof(line) - n, ", required");
        } else if (o->def && *o->def) {
            n += (size_t)snprintf(line + n, sizeof(line) - n, ", default %s", o->def);
        } else if (o->def) {
            n += (size_t)snprintf(line + n, sizeof(line) - n, ", default empty");
        } else {
            n += (size_t)snprintf(line + n, sizeof(line) - n, ", default none");
        }
    }
    const char *what = o->type == TRIB_CONFIG_STRING ? "length " : "";
    if (n < sizeof(line) && o->min && o->max) {
        n += (size_t)snprintf(line + n, sizeof(line) - n, ", %s%s..%s", what, o->min, o->max);
    } else if (n < sizeof(line) && o->min) {
        n += (size_t)snprintf(line + n, sizeof(line) - n, ", %sat least %s", what, o->min);
    } else if (n < sizeof(line) && o->max) {
        n += (size_t)snprintf(line + n, sizeof(line) - n, ", %sat most %s", what, o->max);
    }
    if (n < sizeof(line) && (o->flags & TRIB_CONFIG_SECRET)) {
        snprintf(line + n, sizeof(line) - n, ", secret (never printed)");
    }
    fprintf(out, "%s\n      %s\n", line, o->desc ? o->desc : "(no description)");
}

int coll_sinks_describe(FILE *out, FILE *errf, const char *type)
{
    trib_sink_plugin_t *p = NULL;
    trib_error_t err;
    trib_error_clear(&err);
    int rc = trib_sink_plugin_load(type, NULL, &p, &err);
    if (rc != 0) {
        fprintf(errf, "tributary-collector: %s\n", err.msg);
        char *types[MAX_PLUGINS];
        size_t n = find_types(types, MAX_PLUGINS);
        fprintf(errf, "sink types found:");
        for (size_t i = 0; i < n; i++) {
            fprintf(errf, " %s", types[i]);
            free(types[i]);
        }
        fprintf(errf, "%s\n", n ? "" : " none");
        return rc;
    }
    const trib_sink_descriptor_t *d = trib_sink_plugin_descriptor(p);
    fprintf(out, "%s: %s\nplugin: %s\n\n", d->name, d->description ? d->description : "",
            trib_sink_plugin_path(p));
    if (!d->options || !d->options[0].name) {
        fprintf(out, "options: none\n");
    } else {
        fprintf(out, "options (under `options:` of a sink of type %s):\n", d->name);
        for (const trib_config_option_t *o = d->options; o->name; o++) {
            describe_option(out, o);
        }
    }
    if (TRIB_SINK_HAS(d, details)) {
        fprintf(out, "\n%s", d->details);
        size_t len = strlen(d->details);
        if (len && d->details[len - 1] != '\n') {
            fputc('\n', out);
        }
    }
    trib_sink_plugin_free(p);
    return 0;
}

/* ---- the connecting check ---------------------------------------------------------------- */

/* The context handed to the plugin as its trib_sink_ctx_t (opaque to it). */
typedef struct probe_ctx {
    const char *name;
} probe_ctx_t;

static void probe_log(trib_sink_ctx_t *ctx, int level, const char *fmt, ...)
{
    if (!TRIB_LOG_ENABLED(level)) {
        return;
    }
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    trib_log_write((trib_log_level_t)level, "sink", "[sink:%s] %s",
                   ((probe_ctx_t *)(void *)ctx)->name, msg);
}

static void probe_counter(trib_sink_ctx_t *ctx, const char *name, uint64_t delta)
{
    (void)ctx;
    (void)name;
    (void)delta;
}

static void probe_gauge(trib_sink_ctx_t *ctx, const char *name, double value)
{
    (void)ctx;
    (void)name;
    (void)value;
}

static uint64_t probe_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int64_t probe_wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *probe_name(trib_sink_ctx_t *ctx)
{
    return ((probe_ctx_t *)(void *)ctx)->name;
}

static const trib_sink_host_t probe_host = {
    .abi_version = TRIB_SINK_ABI_VERSION,
    .struct_size = sizeof(trib_sink_host_t),
    .log = probe_log,
    .counter_add = probe_counter,
    .gauge_set = probe_gauge,
    .now_ms = probe_now,
    .wall_ms = probe_wall,
    .sink_name = probe_name,
};

int coll_sinks_probe(FILE *out, trib_config_t *cfg, const coll_sink_conf_t *sinks, size_t n)
{
    int failed = 0;
    for (size_t i = 0; i < n; i++) {
        const coll_sink_conf_t *c = &sinks[i];
        trib_sink_plugin_t *p = NULL;
        trib_error_t err;
        trib_error_clear(&err);
        if (trib_sink_plugin_load(c->type, NULL, &p, &err) != 0) {
            fprintf(out, "sink %s: %s\n", c->name, err.msg);
            failed++;
            continue;
        }
        const trib_sink_descriptor_t *d = trib_sink_plugin_descriptor(p);
        char where[256];
        snprintf(where, sizeof(where), "sinks[%zu].options", i);
        void *opts = NULL;
        int rc = trib_sink_options_apply(p, cfg, &c->options, where, &opts);
        if (rc == -ENOMEM) {
            trib_sink_plugin_free(p);
            return -ENOMEM;
        }
        probe_ctx_t ctx = {c->name};
        void *inst = NULL;
        if (rc == 0) {
            rc = d->open(&probe_host, (trib_sink_ctx_t *)(void *)&ctx, opts, &inst, &err);
        }
        if (rc != 0) {
            fprintf(out, "sink %s: cannot open: %s\n", c->name,
                    err.msg[0] ? err.msg : "bad options");
            failed++;
        } else if (!TRIB_SINK_HAS(d, probe)) {
            fprintf(out, "sink %s: ok (type %s has nothing to connect to and check)\n", c->name,
                    d->name);
        } else {
            trib_sink_result_t res;
            memset(&res, 0, sizeof(res));
            res.failed_index = -1;
            trib_sink_status_t st = d->probe(inst, &res);
            if (st == TRIB_SINK_OK) {
                fprintf(out, "sink %s: ok (%s)\n", c->name,
                        res.msg[0] ? res.msg : "connected, target checked");
            } else {
                fprintf(out, "sink %s: %s error: %s\n", c->name,
                        trib_sink_error_class_name(res.error_class),
                        res.msg[0] ? res.msg : "the target is not usable");
                failed++;
            }
        }
        if (inst) {
            d->close(inst);
        }
        free(opts);
        trib_sink_plugin_free(p);
    }
    return failed;
}
