/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The effective configuration as YAML (for --check-config), and the schema
 * self-check unit tests run on every option table.
 *
 * The dump walks the table, not the file, so every option appears with the
 * value the program will use, defaults included, in canonical notation
 * (durations as "1h30m", sizes as "64MiB"). Strings are always
 * double-quoted, so what prints loads back to the same values. Secrets
 * print as "********" whatever their type; unset strings, addresses and
 * enums print as comments.
 */
#include "config_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MASK "\"********\""

typedef struct writer {
    FILE *fp;
    unsigned flags;
    bool dash; /* the next line opens a sequence item: "- " before it */
} writer_t;

/* Starts a line at `indent`, turning the last two spaces into "- " if due. */
static void line_start(writer_t *w, int indent)
{
    if (w->dash) {
        fprintf(w->fp, "%*s- ", indent - 2, "");
        w->dash = false;
    } else {
        fprintf(w->fp, "%*s", indent, "");
    }
}

static void put_quoted(FILE *fp, const char *s)
{
    fputc('"', fp);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        switch (ch) {
        case '"':
            fputs("\\\"", fp);
            break;
        case '\\':
            fputs("\\\\", fp);
            break;
        case '\n':
            fputs("\\n", fp);
            break;
        case '\t':
            fputs("\\t", fp);
            break;
        case '\r':
            fputs("\\r", fp);
            break;
        default:
            if (ch < 0x20 || ch == 0x7f) {
                fprintf(fp, "\\x%02x", ch);
            } else {
                fputc(ch, fp);
            }
        }
    }
    fputc('"', fp);
}

/* Map keys print plain when that is unambiguous, quoted otherwise. */
static void put_key(FILE *fp, const char *k)
{
    bool plain = *k && *k != '-' && *k != '.';
    for (const char *p = k; *p && plain; p++) {
        char ch = *p;
        plain = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                ch == '_' || ch == '.' || ch == '-' || ch == '/';
    }
    if (plain) {
        fputs(k, fp);
    } else {
        put_quoted(fp, k);
    }
}

static void put_double(FILE *fp, double v)
{
    char buf[64];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof(buf), "%.*g", prec, v);
        if (strtod(buf, NULL) == v) {
            break;
        }
    }
    /* Keep it a YAML float-looking number, not an int. */
    if (!strpbrk(buf, ".eE")) {
        strcat(buf, ".0");
    }
    fputs(buf, fp);
}

static void dump_table(writer_t *w, const trib_config_option_t *opts, const char *base, int indent);

static void dump_option(writer_t *w, const trib_config_option_t *o, const char *base, int indent)
{
    const char *f = base + o->offset;
    bool secret = (o->flags & TRIB_CONFIG_SECRET) != 0;
    FILE *fp = w->fp;
    char buf[64];

    if ((w->flags & TRIB_CONFIG_DUMP_DESC) && o->desc) {
        line_start(w, indent);
        fprintf(fp, "# %s\n", o->desc);
    }

    switch (o->type) {
    case TRIB_CONFIG_STRING: {
        const char *v;
        memcpy(&v, f, sizeof(v));
        line_start(w, indent);
        if (!v) {
            fprintf(fp, "# %s: (unset)\n", o->name);
        } else if (secret) {
            fprintf(fp, "%s: " MASK "\n", o->name);
        } else {
            fprintf(fp, "%s: ", o->name);
            put_quoted(fp, v);
            fputc('\n', fp);
        }
        return;
    }
    case TRIB_CONFIG_ADDRESS: {
        trib_config_addr_t v;
        memcpy(&v, f, sizeof(v));
        line_start(w, indent);
        if (!v.text) {
            fprintf(fp, "# %s: (unset)\n", o->name);
        } else if (secret) {
            fprintf(fp, "%s: " MASK "\n", o->name);
        } else {
            fprintf(fp, "%s: ", o->name);
            put_quoted(fp, v.text);
            fputc('\n', fp);
        }
        return;
    }
    case TRIB_CONFIG_STRLIST: {
        trib_config_strlist_t v;
        memcpy(&v, f, sizeof(v));
        line_start(w, indent);
        if (v.count == 0) {
            fprintf(fp, "%s: []\n", o->name);
            return;
        }
        fprintf(fp, "%s:\n", o->name);
        for (size_t i = 0; i < v.count; i++) {
            fprintf(fp, "%*s- ", indent + 2, "");
            if (secret) {
                fputs(MASK, fp);
            } else {
                put_quoted(fp, v.items[i]);
            }
            fputc('\n', fp);
        }
        return;
    }
    case TRIB_CONFIG_MAP: {
        trib_config_map_t v;
        memcpy(&v, f, sizeof(v));
        line_start(w, indent);
        if (v.count == 0) {
            fprintf(fp, "%s: {}\n", o->name);
            return;
        }
        fprintf(fp, "%s:\n", o->name);
        for (size_t i = 0; i < v.count; i++) {
            fprintf(fp, "%*s", indent + 2, "");
            put_key(fp, v.items[i].key);
            fputs(": ", fp);
            if (secret) {
                fputs(MASK, fp);
            } else {
                put_quoted(fp, v.items[i].value);
            }
            fputc('\n', fp);
        }
        return;
    }
    case TRIB_CONFIG_SECTION:
        line_start(w, indent);
        if (!o->sub || !o->sub[0].name) {
            fprintf(fp, "%s: {}\n", o->name);
            return;
        }
        fprintf(fp, "%s:\n", o->name);
        dump_table(w, o->sub, f, indent + 2);
        return;
    case TRIB_CONFIG_SECTIONS: {
        const char *items;
        size_t count;
        memcpy(&items, f, sizeof(items));
        memcpy(&count, base + o->count_offset, sizeof(count));
        line_start(w, indent);
        if (count == 0 || !o->sub || !o->sub[0].name) {
            fprintf(fp, "%s: []\n", o->name);
            return;
        }
        fprintf(fp, "%s:\n", o->name);
        for (size_t i = 0; i < count; i++) {
            w->dash = true;
            dump_table(w, o->sub, items + i * o->elem_size, indent + 4);
        }
        return;
    }
    default:
        break;
    }

    /* Scalars that are always set (an ENUM may be -1: unset). */
    line_start(w, indent);
    if (o->type == TRIB_CONFIG_ENUM) {
        int v;
        int n = 0;
        memcpy(&v, f, sizeof(v));
        while (o->choices && o->choices[n]) {
            n++;
        }
        if (v < 0 || v >= n) {
            fprintf(fp, "# %s: (unset)\n", o->name);
            return;
        }
    }
    fprintf(fp, "%s: ", o->name);
    if (secret) {
        fputs(MASK "\n", fp);
        return;
    }
    switch (o->type) {
    case TRIB_CONFIG_BOOL: {
        bool v;
        memcpy(&v, f, sizeof(v));
        fputs(v ? "true" : "false", fp);
        break;
    }
    case TRIB_CONFIG_INT: {
        int64_t v;
        memcpy(&v, f, sizeof(v));
        fprintf(fp, "%" PRId64, v);
        break;
    }
    case TRIB_CONFIG_UINT: {
        uint64_t v;
        memcpy(&v, f, sizeof(v));
        fprintf(fp, "%" PRIu64, v);
        break;
    }
    case TRIB_CONFIG_DOUBLE: {
        double v;
        memcpy(&v, f, sizeof(v));
        put_double(fp, v);
        break;
    }
    case TRIB_CONFIG_ENUM: {
        int v;
        memcpy(&v, f, sizeof(v));
        fputs(o->choices[v], fp);
        break;
    }
    case TRIB_CONFIG_DURATION: {
        int64_t v;
        memcpy(&v, f, sizeof(v));
        trib_config_format_duration(v, buf, sizeof(buf));
        fputs(buf, fp);
        break;
    }
    case TRIB_CONFIG_SIZE: {
        uint64_t v;
        memcpy(&v, f, sizeof(v));
        trib_config_format_size(v, buf, sizeof(buf));
        fputs(buf, fp);
        break;
    }
    default:
        fputs("~ # unknown type", fp);
        break;
    }
    fputc('\n', fp);
}

static void dump_table(writer_t *w, const trib_config_option_t *opts, const char *base, int indent)
{
    for (const trib_config_option_t *o = opts; o->name; o++) {
        dump_option(w, o, base, indent);
    }
}

int trib_config_dump(FILE *fp, const trib_config_option_t *schema, const void *src, unsigned flags)
{
    writer_t w = {.fp = fp, .flags = flags};
    dump_table(&w, schema, src, 0);
    return ferror(fp) ? -EIO : 0;
}

/* ---- schema self-check ------------------------------------------------ */

/* Parses a bound in the type's notation into a comparable long double. */
static int bound_value(const trib_config_option_t *o, const char *s, long double *out)
{
    int64_t i;
    uint64_t u;
    double d;
    switch (o->type) {
    case TRIB_CONFIG_INT:
        if (cfg_parse_int(s, &i) != 0) {
            return -EINVAL;
        }
        *out = (long double)i;
        return 0;
    case TRIB_CONFIG_DURATION:
        if (cfg_duration(s, &i, NULL) != 0) {
            return -EINVAL;
        }
        *out = (long double)i;
        return 0;
    case TRIB_CONFIG_SIZE:
        if (cfg_size(s, &u, NULL) != 0) {
            return -EINVAL;
        }
        *out = (long double)u;
        return 0;
    case TRIB_CONFIG_DOUBLE:
        if (cfg_parse_double(s, &d) != 0) {
            return -EINVAL;
        }
        *out = d;
        return 0;
    case TRIB_CONFIG_UINT:
    case TRIB_CONFIG_STRING:
    case TRIB_CONFIG_STRLIST:
    case TRIB_CONFIG_MAP:
    case TRIB_CONFIG_SECTIONS:
        if (cfg_parse_uint(s, &u) != 0) {
            return -EINVAL;
        }
        *out = (long double)u;
        return 0;
    default:
        return -ENOTSUP; /* bool, enum, address, section: no bounds */
    }
}

/* Loads "" through a one-row copy of o, so the default takes the real path. */
static int check_default(const trib_config_option_t *o, const char *path, trib_error_t *err)
{
    union {
        max_align_t align;
        char bytes[64];
    } scratch;
    trib_config_option_t row[2] = {*o, TRIB_CONFIG_END};
    trib_config_t *c = NULL;

    row[0].offset = 0;
    row[0].flags &= ~TRIB_CONFIG_REQUIRED;
    int rc = trib_config_load_string(&c, "<schema>", "", 0, row, &scratch);
    if (rc == -ENOMEM) {
        trib_config_free(c);
        return trib_error_set(err, -ENOMEM, "out of memory");
    }
    if (rc != 0) {
        const trib_error_t *e = trib_config_error(c, 0);
        trib_error_set(err, -EINVAL, "option '%s': %s", path, e ? e->msg : "bad default");
        trib_config_free(c);
        return -EINVAL;
    }
    trib_config_free(c);
    return 0;
}

static int check_table(const trib_config_option_t *opts, const char *prefix, int depth,
                       trib_error_t *err)
{
    char path[512];
    if (!opts) {
        return trib_error_set(err, -EINVAL, "'%s': no sub-table", prefix);
    }
    if (depth > TRIB_CONFIG_MAX_DEPTH) {
        return trib_error_set(err, -EINVAL, "'%s': tables nest too deep (a cycle?)", prefix);
    }
    for (const trib_config_option_t *o = opts; o->name; o++) {
        snprintf(path, sizeof(path), "%s%s%s", prefix, *prefix ? "." : "", o->name);
        if (!*o->name) {
            return trib_error_set(err, -EINVAL, "'%s': empty option name", prefix);
        }
        for (const trib_config_option_t *p = opts; p < o; p++) {
            if (strcmp(p->name, o->name) == 0) {
                return trib_error_set(err, -EINVAL, "'%s': defined twice", path);
            }
        }
        if (o->type <= TRIB_CONFIG_NONE || o->type > TRIB_CONFIG_SECTIONS) {
            return trib_error_set(err, -EINVAL, "'%s': unknown type %d", path, (int)o->type);
        }
        if ((o->flags & TRIB_CONFIG_REQUIRED) && o->def) {
            return trib_error_set(err, -EINVAL, "'%s': required and with a default", path);
        }
        if (o->type == TRIB_CONFIG_ENUM && (!o->choices || !o->choices[0])) {
            return trib_error_set(err, -EINVAL, "'%s': enum without choices", path);
        }
        long double lo = 0;
        long double hi = 0;
        int rlo = o->min ? bound_value(o, o->min, &lo) : 0;
        int rhi = o->max ? bound_value(o, o->max, &hi) : 0;
        if (rlo == -ENOTSUP || rhi == -ENOTSUP) {
            return trib_error_set(err, -EINVAL, "'%s': this type takes no min/max", path);
        }
        if (rlo != 0 || rhi != 0) {
            return trib_error_set(err, -EINVAL, "'%s': min/max do not parse", path);
        }
        if (o->min && o->max && lo > hi) {
            return trib_error_set(err, -EINVAL, "'%s': min is above max", path);
        }
        if (o->type == TRIB_CONFIG_SECTION || o->type == TRIB_CONFIG_SECTIONS) {
            if (o->def) {
                return trib_error_set(err, -EINVAL, "'%s': sections take no default", path);
            }
            if (o->type == TRIB_CONFIG_SECTIONS && o->elem_size == 0) {
                return trib_error_set(err, -EINVAL, "'%s': elem_size is 0", path);
            }
            int rc = check_table(o->sub, path, depth + 1, err);
            if (rc != 0) {
                return rc;
            }
            continue;
        }
        if (o->def) {
            int rc = check_default(o, path, err);
            if (rc != 0) {
                return rc;
            }
        }
    }
    return 0;
}

int trib_config_schema_check(const trib_config_option_t *schema, trib_error_t *err)
{
    trib_error_clear(err);
    return check_table(schema, "", 0, err);
}
