/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The sink plugin loader: finds <type>.so on the search path, dlopen()s it,
 * calls its one exported entry point and checks the descriptor it returns
 * (ABI version and size first, before any other field is read), then
 * validates a sink's options against the plugin's schema.
 *
 * A descriptor from a different ABI version is refused before anything
 * else in it is touched: only the first two fields (abi_version,
 * struct_size) are common to every version.
 */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tributary/sink.h"

struct trib_sink_plugin {
    void *dl; /* NULL for a wrapped, linked-in descriptor */
    const trib_sink_descriptor_t *desc;
    char path[PATH_MAX];
};

/* The fields every descriptor of this ABI version has end with close; the
 * ones after it are optional (TRIB_SINK_HAS). */
#define SINK_DESC_V1_SIZE                                                                          \
    (offsetof(trib_sink_descriptor_t, close) + sizeof(((trib_sink_descriptor_t *)0)->close))

static int type_ok(const char *type)
{
    if (!type || !*type || strlen(type) > 64) {
        return 0;
    }
    for (const char *p = type; *p; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' || *p == '-')) {
            return 0;
        }
    }
    return 1;
}

/* Bytes of the C field behind a scalar option type. */
static size_t option_size(trib_config_type_t t)
{
    switch (t) {
    case TRIB_CONFIG_BOOL:
        return sizeof(bool);
    case TRIB_CONFIG_INT:
    case TRIB_CONFIG_DURATION:
        return sizeof(int64_t);
    case TRIB_CONFIG_UINT:
    case TRIB_CONFIG_SIZE:
        return sizeof(uint64_t);
    case TRIB_CONFIG_DOUBLE:
        return sizeof(double);
    case TRIB_CONFIG_STRING:
        return sizeof(const char *);
    case TRIB_CONFIG_ENUM:
        return sizeof(int);
    case TRIB_CONFIG_ADDRESS:
        return sizeof(trib_config_addr_t);
    default:
        return 1;
    }
}

int trib_sink_descriptor_check(const trib_sink_descriptor_t *d, const char *type, const char *path,
                               trib_error_t *err)
{
    if (!d) {
        return trib_error_set(err, -EINVAL, "sink plugin %s: %s() returned NULL", path,
                              TRIB_SINK_ENTRY_SYMBOL);
    }
    if (d->abi_version != TRIB_SINK_ABI_VERSION) {
        return trib_error_set(err, TRIB_EUNSUPPORTED_VERSION,
                              "sink plugin %s: ABI version %u, but this collector speaks sink ABI "
                              "version %u: rebuild the plugin against this release's "
                              "tributary/sink.h",
                              path, (unsigned)d->abi_version, (unsigned)TRIB_SINK_ABI_VERSION);
    }
    if (d->struct_size < SINK_DESC_V1_SIZE) {
        return trib_error_set(err, TRIB_EUNSUPPORTED_VERSION,
                              "sink plugin %s: descriptor is %u bytes, ABI version %u needs at "
                              "least %zu",
                              path, (unsigned)d->struct_size, (unsigned)d->abi_version,
                              (size_t)SINK_DESC_V1_SIZE);
    }
    if (!d->name || (type && strcmp(d->name, type) != 0)) {
        return trib_error_set(err, -EINVAL, "sink plugin %s: names itself '%s', expected '%s'",
                              path, d->name ? d->name : "(null)", type ? type : "?");
    }
    if (!d->open || !d->write || !d->close) {
        return trib_error_set(err, -EINVAL,
                              "sink plugin %s: open, write and close callbacks are required", path);
    }
    if (d->options) {
        trib_error_t serr;
        trib_error_clear(&serr);
        if (trib_config_schema_check(d->options, &serr) != 0) {
            return trib_error_set(err, -EINVAL, "sink plugin %s: bad option schema: %s", path,
                                  serr.msg);
        }
        for (const trib_config_option_t *o = d->options; o->name; o++) {
            if (o->type == TRIB_CONFIG_STRLIST || o->type == TRIB_CONFIG_MAP ||
                o->type == TRIB_CONFIG_SECTION || o->type == TRIB_CONFIG_SECTIONS) {
                return trib_error_set(err, -EINVAL,
                                      "sink plugin %s: option '%s' is not a scalar type", path,
                                      o->name);
            }
            if (o->offset + option_size(o->type) > d->options_size) {
                return trib_error_set(err, -EINVAL,
                                      "sink plugin %s: option '%s' lies outside options_size", path,
                                      o->name);
            }
        }
    }
    return 0;
}

size_t trib_sink_default_dirs(const char **dirs, size_t max, char *store, size_t store_len)
{
    size_t n = 0;
    size_t used = 0;
    if (max == 0) {
        return 0;
    }
    const char *env = getenv("TRIBUTARY_SINK_PATH");
    if (env && *env) {
        const char *p = env;
        while (*p && n + 1 < max) {
            const char *end = strchr(p, ':');
            size_t len = end ? (size_t)(end - p) : strlen(p);
            if (len > 0 && used + len + 1 <= store_len) {
                memcpy(store + used, p, len);
                store[used + len] = '\0';
                dirs[n++] = store + used;
                used += len + 1;
            }
            if (!end) {
                break;
            }
            p = end + 1;
        }
    }
    char exe[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (len > 0 && n + 1 < max) {
        exe[len] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0';
            int w = snprintf(store + used, store_len - used, "%s/../lib/tributary/sinks", exe);
            if (w > 0 && used + (size_t)w + 1 <= store_len) {
                dirs[n++] = store + used;
                used += (size_t)w + 1;
            }
        }
    }
    if (n + 1 < max) {
        dirs[n++] = TRIB_SINK_INSTALL_DIR;
    }
    dirs[n] = NULL;
    return n;
}

int trib_sink_plugin_load(const char *type, const char *const *dirs, trib_sink_plugin_t **out,
                          trib_error_t *err)
{
    const char *defdirs[16];
    char store[4 * PATH_MAX];
    *out = NULL;
    if (!type_ok(type)) {
        return trib_error_set(err, -EINVAL, "bad sink type '%s' (want [a-z0-9_-]+)",
                              type ? type : "");
    }
    if (!dirs) {
        trib_sink_default_dirs(defdirs, 16, store, sizeof(store));
        dirs = defdirs;
    }
    trib_sink_plugin_t *p = calloc(1, sizeof(*p));
    if (!p) {
        return trib_error_set(err, -ENOMEM, "out of memory");
    }
    char tried[768];
    size_t tlen = 0;
    tried[0] = '\0';
    for (size_t i = 0; dirs[i]; i++) {
        snprintf(p->path, sizeof(p->path), "%s/%s.so", dirs[i], type);
        if (access(p->path, R_OK) == 0) {
            break;
        }
        int w = snprintf(tried + tlen, sizeof(tried) - tlen, "%s%s", tlen ? ", " : "", dirs[i]);
        if (w > 0 && tlen + (size_t)w < sizeof(tried)) {
            tlen += (size_t)w;
        }
        p->path[0] = '\0';
    }
    if (!p->path[0]) {
        free(p);
        return trib_error_set(err, TRIB_ENOT_FOUND, "no sink plugin '%s' (%s.so not in %s)", type,
                              type, tlen ? tried : "an empty search path");
    }
    /* RTLD_LOCAL: two plugins may link different copies of a helper.
     * RTLD_NODELETE: the libraries plugins pull in (libpq, OpenSSL, libcurl)
     * keep process-wide state and exit handlers; unloading them is unsafe. */
    p->dl = dlopen(p->path, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
    if (!p->dl) {
        int rc = trib_error_set(err, -EINVAL, "sink plugin %s: %s", p->path, dlerror());
        free(p);
        return rc;
    }
    trib_sink_entry_fn entry;
    void *sym = dlsym(p->dl, TRIB_SINK_ENTRY_SYMBOL);
    memcpy(&entry, &sym, sizeof(entry)); /* POSIX: object to function pointer */
    if (!sym) {
        int rc = trib_error_set(err, -EINVAL, "sink plugin %s: no symbol %s()", p->path,
                                TRIB_SINK_ENTRY_SYMBOL);
        trib_sink_plugin_free(p);
        return rc;
    }
    p->desc = entry();
    int rc = trib_sink_descriptor_check(p->desc, type, p->path, err);
    if (rc != 0) {
        trib_sink_plugin_free(p);
        return rc;
    }
    *out = p;
    return 0;
}

int trib_sink_plugin_wrap(const trib_sink_descriptor_t *d, trib_sink_plugin_t **out,
                          trib_error_t *err)
{
    *out = NULL;
    int rc = trib_sink_descriptor_check(d, NULL, "(linked in)", err);
    if (rc != 0) {
        return rc;
    }
    trib_sink_plugin_t *p = calloc(1, sizeof(*p));
    if (!p) {
        return trib_error_set(err, -ENOMEM, "out of memory");
    }
    p->desc = d;
    snprintf(p->path, sizeof(p->path), "(linked in: %s)", d->name);
    *out = p;
    return 0;
}

void trib_sink_plugin_free(trib_sink_plugin_t *p)
{
    if (!p) {
        return;
    }
    if (p->dl) {
        dlclose(p->dl);
    }
    free(p);
}

const trib_sink_descriptor_t *trib_sink_plugin_descriptor(const trib_sink_plugin_t *p)
{
    return p->desc;
}

const char *trib_sink_plugin_path(const trib_sink_plugin_t *p)
{
    return p->path;
}

int trib_sink_options_apply(const trib_sink_plugin_t *p, trib_config_t *cfg,
                            const trib_config_map_t *map, const char *where, void **out)
{
    const trib_sink_descriptor_t *d = p->desc;
    *out = calloc(1, d->options_size ? d->options_size : 1);
    if (!*out) {
        return -ENOMEM;
    }
    static const trib_config_option_t none[] = {TRIB_CONFIG_END};
    trib_config_map_t empty = {0};
    return trib_config_apply_map(cfg, map ? map : &empty, where, d->options ? d->options : none,
                                 *out);
}

const char *trib_sink_error_class_name(trib_sink_error_class_t c)
{
    switch (c) {
    case TRIB_SINK_ERR_SCHEMA:
        return "schema";
    case TRIB_SINK_ERR_AUTH:
        return "auth";
    case TRIB_SINK_ERR_DATABASE:
        return "database";
    case TRIB_SINK_ERR_TRANSIENT:
    default:
        return "transient";
    }
}
