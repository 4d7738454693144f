/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The config loader: the trib_config_t object, error collection, and the
 * schema pass that turns a node tree (config_yaml.c) into C structs.
 *
 * The schema pass walks the tree and the option tables together. In every
 * mapping it looks each key up in the table (unknown -> error with a "did
 * you mean"; seen before -> duplicate error), converts the value, and then
 * fills every option it did not see with its default (or zero), reporting
 * missing required ones at the mapping. A field is always left in a
 * defined state: before a value is converted the field receives its
 * default, so a bad value leaves the default behind, never garbage.
 *
 * Nothing stops at the first problem: every error is recorded (up to
 * TRIB_CONFIG_MAX_ERRORS) and the list is sorted by position at the end,
 * so the output reads like a compiler's. Messages name the option by its
 * full path ('sinks[1].batch.linger') and never include a secret value.
 */
#include "config_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- the object and its errors ---------------------------------------- */

void cfg_error(trib_config_t *c, int line, int col, const char *fmt, ...)
{
    if (c->nerrors >= TRIB_CONFIG_MAX_ERRORS) {
        c->dropped++;
        return;
    }
    if (c->nerrors == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 8;
        trib_error_t *e = realloc(c->errors, cap * sizeof(*e));
        if (!e) {
            c->oom = true;
            return;
        }
        c->errors = e;
        c->cap = cap;
    }
    trib_error_t *e = &c->errors[c->nerrors++];
    e->code = TRIB_ECONFIG;
    e->file = c->name;
    e->line = line;
    e->col = col;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
    va_end(ap);
}

static bool errors_full(const trib_config_t *c)
{
    return c->nerrors >= TRIB_CONFIG_MAX_ERRORS;
}

/* Stable (insertion) sort by position; there are at most a hundred. */
static void sort_errors(trib_config_t *c)
{
    for (size_t i = 1; i < c->nerrors; i++) {
        trib_error_t tmp = c->errors[i];
        size_t j = i;
        while (j > 0 && (c->errors[j - 1].line > tmp.line ||
                         (c->errors[j - 1].line == tmp.line && c->errors[j - 1].col > tmp.col))) {
            c->errors[j] = c->errors[j - 1];
            j--;
        }
        c->errors[j] = tmp;
    }
}

static trib_config_t *config_new(const char *name)
{
    trib_config_t *c = calloc(1, sizeof(*c));
    if (!c) {
        return NULL;
    }
    trib_arena_init(&c->arena);
    c->name = trib_arena_strndup(&c->arena, name, strlen(name));
    if (!c->name) {
        trib_arena_fini(&c->arena);
        free(c);
        return NULL;
    }
    return c;
}

void trib_config_free(trib_config_t *c)
{
    if (!c) {
        return;
    }
    free(c->errors);
    free(c->pos);
    trib_arena_fini(&c->arena);
    free(c);
}

/* Remembers where the value at `path` was written (the last record wins). */
static void pos_record(trib_config_t *c, const char *path, int line, int col)
{
    if (c->npos == c->pos_cap) {
        size_t cap = c->pos_cap ? c->pos_cap * 2 : 32;
        cfg_pos_t *p = realloc(c->pos, cap * sizeof(*p));
        if (!p) {
            c->oom = true;
            return;
        }
        c->pos = p;
        c->pos_cap = cap;
    }
    const char *copy = trib_arena_strndup(&c->arena, path, strlen(path));
    if (!copy) {
        c->oom = true;
        return;
    }
    c->pos[c->npos++] = (cfg_pos_t){copy, line, col};
}

int trib_config_position(const trib_config_t *c, const char *path, int *line, int *col)
{
    for (size_t i = c ? c->npos : 0; i > 0; i--) {
        if (strcmp(c->pos[i - 1].path, path) == 0) {
            *line = c->pos[i - 1].line;
            *col = c->pos[i - 1].col;
            return 0;
        }
    }
    return TRIB_ENOT_FOUND;
}

int trib_config_check_address(const char *s, const char **why)
{
    char host[256];
    uint16_t port;
    return trib_config_parse_address(s, host, sizeof(host), &port, why);
}

void trib_config_add_error(trib_config_t *c, int line, int col, const char *fmt, ...)
{
    char msg[sizeof(((trib_error_t *)0)->msg)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    cfg_error(c, line, col, "%s", msg);
    sort_errors(c);
}

size_t trib_config_error_count(const trib_config_t *c)
{
    return c ? c->nerrors : 0;
}

const trib_error_t *trib_config_error(const trib_config_t *c, size_t i)
{
    return c && i < c->nerrors ? &c->errors[i] : NULL;
}

void trib_config_print_errors(const trib_config_t *c, FILE *fp)
{
    char line[1024];
    if (!c) {
        return;
    }
    for (size_t i = 0; i < c->nerrors; i++) {
        trib_error_format(&c->errors[i], line, sizeof(line));
        fprintf(fp, "%s\n", line);
    }
    if (c->dropped) {
        fprintf(fp, "%s: error: too many errors; %zu more not shown\n", c->name, c->dropped);
    }
    if (c->oom) {
        fprintf(fp, "%s: error: out of memory while loading\n", c->name);
    }
}

/* ---- the schema pass -------------------------------------------------- */

typedef struct apply {
    trib_config_t *c;
    trib_arena_t *tree; /* for parsing STRLIST/MAP defaults */
    char path[1024];    /* 'sinks[1].batch' while inside it */
    size_t plen;
    bool list_keys; /* unknown keys list the valid ones (a plugin's options) */
} apply_t;

static size_t path_push_key(apply_t *ap, const char *name)
{
    size_t old = ap->plen;
    int n = snprintf(ap->path + old, sizeof(ap->path) - old, "%s%s", old ? "." : "", name);
    if (n > 0) {
        ap->plen += (size_t)n;
        if (ap->plen >= sizeof(ap->path)) {
            ap->plen = sizeof(ap->path) - 1;
        }
    }
    return old;
}

static size_t path_push_index(apply_t *ap, size_t i)
{
    size_t old = ap->plen;
    int n = snprintf(ap->path + old, sizeof(ap->path) - old, "[%zu]", i);
    if (n > 0) {
        ap->plen += (size_t)n;
        if (ap->plen >= sizeof(ap->path)) {
            ap->plen = sizeof(ap->path) - 1;
        }
    }
    return old;
}

static void path_pop(apply_t *ap, size_t old)
{
    ap->plen = old;
    ap->path[old] = '\0';
}

/* " in storage", or "" at the top level. */
static const char *in_path(const apply_t *ap, char *buf, size_t n)
{
    if (ap->plen == 0) {
        return "";
    }
    snprintf(buf, n, " in %s", ap->path);
    return buf;
}

/*
 * Quotes text for a message: 'value', at most 60 characters, control
 * characters escaped so an error stays on one line.
 */
static const char *quote(const char *s, size_t len, char *buf, size_t n)
{
    size_t o = 0;
    buf[o++] = '\'';
    for (size_t i = 0; i < len && o + 8 < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (i == 60) {
            o += (size_t)snprintf(buf + o, n - o, "...");
            break;
        }
        if (ch == '\n') {
            buf[o++] = '\\';
            buf[o++] = 'n';
        } else if (ch == '\t') {
            buf[o++] = '\\';
            buf[o++] = 't';
        } else if (ch < 0x20 || ch == 0x7f) {
            o += (size_t)snprintf(buf + o, n - o, "\\x%02x", ch);
        } else {
            buf[o++] = (char)ch;
        }
    }
    buf[o++] = '\'';
    buf[o] = '\0';
    return buf;
}

/* The value as a message shows it: quoted, or "(secret)". */
static const char *shown(const trib_config_option_t *opt, const char *s, char *buf, size_t n)
{
    if (opt->flags & TRIB_CONFIG_SECRET) {
        return "(secret)";
    }
    return quote(s, strlen(s), buf, n);
}

/* An error about a value; values that come from the schema say so. */
static void value_error(apply_t *ap, bool from_default, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static void value_error(apply_t *ap, bool from_default, int line, int col, const char *fmt, ...)
{
    char msg[512];
    va_list va;
    va_start(va, fmt);
    vsnprintf(msg, sizeof(msg), fmt, va);
    va_end(va);
    cfg_error(ap->c, line, col, "%s%s", from_default ? "schema default: " : "", msg);
}

static bool is_null(const cfg_node_t *n)
{
    if (n->kind != CFG_SCALAR || !n->plain) {
        return false;
    }
    return n->len == 0 || strcmp(n->text, "~") == 0 || strcmp(n->text, "null") == 0 ||
           strcmp(n->text, "Null") == 0 || strcmp(n->text, "NULL") == 0;
}

static const char *kind_noun(const cfg_node_t *n)
{
    switch (n->kind) {
    case CFG_MAPPING:
        return "a mapping";
    case CFG_SEQUENCE:
        return "a sequence";
    default:
        return is_null(n) ? "an empty value" : "a scalar";
    }
}

static size_t table_len(const trib_config_option_t *opts)
{
    size_t n = 0;
    while (opts[n].name) {
        n++;
    }
    return n;
}

static int find_option(const trib_config_option_t *opts, const char *key)
{
    for (size_t i = 0; opts[i].name; i++) {
        if (strcmp(opts[i].name, key) == 0) {
            return (int)i;
        }
    }
    return -1;
}

static void unknown_key(apply_t *ap, const trib_config_option_t *opts, const char *key,
                        size_t keylen, int line, int col)
{
    char q[256];
    char where[1100];
    char hint[128] = "";
    char valid[600] = "";
    if (errors_full(ap->c)) {
        ap->c->dropped++;
        return;
    }
    const char *names[256];
    size_t n = 0;
    for (; opts[n].name && n < 256; n++) {
        names[n] = opts[n].name;
    }
    const char *s = strlen(key) == keylen ? cfg_suggest(key, names, n) : NULL;
    if (s) {
        snprintf(hint, sizeof(hint), " (did you mean '%s'?)", s);
    }
    if (ap->list_keys) {
        /* Options passed through to a plugin are documented nowhere else in the file. */
        size_t o =
            (size_t)snprintf(valid, sizeof(valid), n ? "; valid keys: " : "; it takes no options");
        for (size_t i = 0; i < n && o < sizeof(valid); i++) {
            o += (size_t)snprintf(valid + o, sizeof(valid) - o, "%s%s", i ? ", " : "", names[i]);
        }
    }
    cfg_error(ap->c, line, col, "unknown key %s%s%s%s", quote(key, keylen, q, sizeof(q)),
              in_path(ap, where, sizeof(where)), hint, valid);
}

/* "a, b or c" */
static void join_choices(const char *const *choices, char *out, size_t n)
{
    size_t o = 0;
    out[0] = '\0';
    for (size_t i = 0; choices[i] && o < n; i++) {
        const char *sep = i == 0 ? "" : choices[i + 1] ? ", " : " or ";
        o += (size_t)snprintf(out + o, n - o, "%s%s", sep, choices[i]);
    }
}

static void range_error(apply_t *ap, bool fd, const trib_config_option_t *opt, const char *text,
                        int line, int col, bool below)
{
    char q[256];
    value_error(ap, fd, line, col, "value %s for '%s' is %s the %s (%s)",
                shown(opt, text, q, sizeof(q)), ap->path, below ? "below" : "above",
                below ? "minimum" : "maximum", below ? opt->min : opt->max);
}

static void bound_error(apply_t *ap, const trib_config_option_t *opt, int line, int col)
{
    cfg_error(ap->c, line, col, "schema: invalid min/max for '%s'", ap->path);
}

/* Count bounds of lists and maps; the bounds are plain numbers. */
static void check_count(apply_t *ap, const trib_config_option_t *opt, size_t count, int line,
                        int col)
{
    uint64_t lo;
    uint64_t hi;
    if (opt->min) {
        if (cfg_parse_uint(opt->min, &lo) != 0) {
            bound_error(ap, opt, line, col);
        } else if (count < lo) {
            cfg_error(ap->c, line, col, "'%s' needs at least %s entr%s, got %zu", ap->path,
                      opt->min, lo == 1 ? "y" : "ies", count);
        }
    }
    if (opt->max) {
        if (cfg_parse_uint(opt->max, &hi) != 0) {
            bound_error(ap, opt, line, col);
        } else if (count > hi) {
            cfg_error(ap->c, line, col, "'%s' takes at most %s entr%s, got %zu", ap->path, opt->max,
                      hi == 1 ? "y" : "ies", count);
        }
    }
}

static char *dup_str(apply_t *ap, const char *s, size_t len)
{
    char *d = trib_arena_strndup(&ap->c->arena, s, len);
    if (!d) {
        ap->c->oom = true;
    }
    return d;
}

/*
 * Converts scalar text (already ${ENV}-expanded) into the field of a
 * scalar-typed option. Errors are reported at line:col; the field is left
 * alone on error.
 */
/* A value of a numeric option, as its type stores it, for comparing with bounds. */
typedef struct num {
    int64_t i;  /* INT, DURATION (ms) */
    uint64_t u; /* UINT, SIZE (bytes) */
    double d;   /* DOUBLE */
} num_t;

/* Parses a bound written in the option type's own notation. 0 or an error. */
static int bound_parse(const trib_config_option_t *opt, const char *text, num_t *out)
{
    switch (opt->type) {
    case TRIB_CONFIG_INT:
        return cfg_parse_int(text, &out->i);
    case TRIB_CONFIG_UINT:
        return cfg_parse_uint(text, &out->u);
    case TRIB_CONFIG_DOUBLE:
        return cfg_parse_double(text, &out->d);
    case TRIB_CONFIG_DURATION:
        return cfg_duration(text, &out->i, NULL);
    case TRIB_CONFIG_SIZE:
        return cfg_size(text, &out->u, NULL);
    default:
        return -EINVAL;
    }
}

static int num_cmp(const trib_config_option_t *opt, num_t a, num_t b)
{
    switch (opt->type) {
    case TRIB_CONFIG_INT:
    case TRIB_CONFIG_DURATION:
        return (a.i > b.i) - (a.i < b.i);
    case TRIB_CONFIG_DOUBLE:
        return (a.d > b.d) - (a.d < b.d);
    default:
        return (a.u > b.u) - (a.u < b.u);
    }
}

/* Checks v against the option's min and max; false (and reported) when outside. */
static bool in_range(apply_t *ap, bool fd, const trib_config_option_t *opt, const char *text,
                     int line, int col, num_t v)
{
    num_t b = {0, 0, 0};
    if (opt->min && bound_parse(opt, opt->min, &b) != 0) {
        bound_error(ap, opt, line, col);
    } else if (opt->min && num_cmp(opt, v, b) < 0) {
        range_error(ap, fd, opt, text, line, col, true);
        return false;
    }
    if (opt->max && bound_parse(opt, opt->max, &b) != 0) {
        bound_error(ap, opt, line, col);
    } else if (opt->max && num_cmp(opt, v, b) > 0) {
        range_error(ap, fd, opt, text, line, col, false);
        return false;
    }
    return true;
}

static void convert_scalar(apply_t *ap, const trib_config_option_t *opt, const char *text,
                           size_t len, int line, int col, void *field, bool fd)
{
    char q[256];
    const char *why = NULL;
    int rc;

    if (strlen(text) != len) {
        value_error(ap, fd, line, col, "NUL character in the value of '%s'", ap->path);
        return;
    }

    switch (opt->type) {
    case TRIB_CONFIG_BOOL: {
        bool v;
        if (cfg_parse_bool(text, &v) != 0) {
            value_error(ap, fd, line, col, "invalid boolean %s for '%s': expected true or false",
                        shown(opt, text, q, sizeof(q)), ap->path);
            return;
        }
        memcpy(field, &v, sizeof(v));
        return;
    }

    case TRIB_CONFIG_INT: {
        int64_t v;
        rc = cfg_parse_int(text, &v);
        if (rc != 0) {
            value_error(ap, fd, line, col, "%s %s for '%s'",
                        rc == -ERANGE ? "out-of-range integer" : "invalid integer",
                        shown(opt, text, q, sizeof(q)), ap->path);
            return;
        }
        if (!in_range(ap, fd, opt, text, line, col, (num_t){.i = v})) {
            return;
        }
        memcpy(field, &v, sizeof(v));
        return;
    }

    case TRIB_CONFIG_UINT: {
        uint64_t v;
        rc = cfg_parse_uint(text, &v);
        if (rc == -ERANGE && text[0] == '-') {
            value_error(ap, fd, line, col, "value %s for '%s' is negative",
                        shown(opt, text, q, sizeof(q)), ap->path);
            return;
        }
        if (rc != 0) {
            value_error(ap, fd, line, col, "%s %s for '%s'",
                        rc == -ERANGE ? "out-of-range integer" : "invalid non-negative integer",
                        shown(opt, text, q, sizeof(q)), ap->path);
            return;
        }
        if (!in_range(ap, fd, opt, text, line, col, (num_t){.u = v})) {
            return;
        }
        memcpy(field, &v, sizeof(v));
        return;
    }

    case TRIB_CONFIG_DOUBLE: {
        double v;
        rc = cfg_parse_double(text, &v);
        if (rc != 0) {
            value_error(ap, fd, line, col, "%s %s for '%s'",
                        rc == -ERANGE ? "out-of-range number" : "invalid number",
                        shown(opt, text, q, sizeof(q)), ap->path);
            return;
        }
        if (!in_range(ap, fd, opt, text, line, col, (num_t){.d = v})) {
            return;
        }
        memcpy(field, &v, sizeof(v));
        return;
    }

    case TRIB_CONFIG_STRING: {
        uint64_t b;
        if (opt->min && cfg_parse_uint(opt->min, &b) != 0) {
            bound_error(ap, opt, line, col);
        } else if (opt->min && len < b) {
            value_error(ap, fd, line, col, "value %s for '%s' is below the minimum length (%s)",
                        shown(opt, text, q, sizeof(q)), ap->path, opt->min);
            return;
        }
        if (opt->max && cfg_parse_uint(opt->max, &b) != 0) {
            bound_error(ap, opt, line, col);
        } else if (opt->max && len > b) {
            value_error(ap, fd, line, col, "value %s for '%s' is above the maximum length (%s)",
                        shown(opt, text, q, sizeof(q)), ap->path, opt->max);
            return;
        }
        const char *v = dup_str(ap, text, len);
        if (v) {
            memcpy(field, &v, sizeof(v));
        }
        return;
    }

    case TRIB_CONFIG_ENUM: {
        char list[512];
        char hint[128] = "";
        if (!opt->choices) {
            cfg_error(ap->c, line, col, "schema: enum '%s' has no choices", ap->path);
            return;
        }
        for (int i = 0; opt->choices[i]; i++) {
            if (strcmp(opt->choices[i], text) == 0) {
                memcpy(field, &i, sizeof(i));
                return;
            }
        }
        size_t n = 0;
        while (opt->choices[n]) {
            n++;
        }
        const char *s =
            (opt->flags & TRIB_CONFIG_SECRET) ? NULL : cfg_suggest(text, opt->choices, n);
        if (s) {
            snprintf(hint, sizeof(hint), " (did you mean '%s'?)", s);
        }
        join_choices(opt->choices, list, sizeof(list));
        value_error(ap, fd, line, col, "invalid value %s for '%s': expected %s%s",
                    shown(opt, text, q, sizeof(q)), ap->path, list, hint);
        return;
    }

    case TRIB_CONFIG_DURATION: {
        int64_t v;
        if (cfg_duration(text, &v, &why) != 0) {
            value_error(ap, fd, line, col, "invalid duration %s for '%s': %s",
                        shown(opt, text, q, sizeof(q)), ap->path, why);
            return;
        }
        if (!in_range(ap, fd, opt, text, line, col, (num_t){.i = v})) {
            return;
        }
        memcpy(field, &v, sizeof(v));
        return;
    }

    case TRIB_CONFIG_SIZE: {
        uint64_t v;
        if (cfg_size(text, &v, &why) != 0) {
            value_error(ap, fd, line, col, "invalid size %s for '%s': %s",
                        shown(opt, text, q, sizeof(q)), ap->path, why);
            return;
        }
        if (!in_range(ap, fd, opt, text, line, col, (num_t){.u = v})) {
            return;
        }
        memcpy(field, &v, sizeof(v));
        return;
    }

    case TRIB_CONFIG_ADDRESS: {
        char host[256];
        trib_config_addr_t v;
        if (trib_config_parse_address(text, host, sizeof(host), &v.port, &why) != 0) {
            value_error(ap, fd, line, col, "invalid address %s for '%s': %s",
                        shown(opt, text, q, sizeof(q)), ap->path, why);
            return;
        }
        v.text = dup_str(ap, text, len);
        v.host = dup_str(ap, host, strlen(host));
        if (v.text && v.host) {
            memcpy(field, &v, sizeof(v));
        }
        return;
    }

    default:
        cfg_error(ap->c, line, col, "schema: '%s' is not a scalar option", ap->path);
        return;
    }
}

/* The ${ENV}-expanded text of a scalar node, or NULL (reported). */
static const char *expand(apply_t *ap, const cfg_node_t *n, size_t *len)
{
    char why[300];
    bool oom = false;
    const char *s = cfg_env_expand(&ap->c->arena, n->text, n->len, len, why, sizeof(why), &oom);
    if (!s) {
        if (oom) {
            ap->c->oom = true;
        } else {
            cfg_error(ap->c, n->line, n->col, "%s, in '%s'", why, ap->path);
        }
    }
    return s;
}

/* Expanded text of a node that must be a non-null scalar, or NULL (reported). */
static const char *scalar_text(apply_t *ap, const cfg_node_t *n, const char *noun, size_t *len)
{
    if (n->kind != CFG_SCALAR) {
        cfg_error(ap->c, n->line, n->col, "expected %s for '%s', got %s", noun, ap->path,
                  kind_noun(n));
        return NULL;
    }
    if (is_null(n)) {
        cfg_error(ap->c, n->line, n->col, "missing value for '%s'", ap->path);
        return NULL;
    }
    return expand(ap, n, len);
}

static void apply_section(apply_t *ap, const cfg_node_t *map, int line, int col,
                          const trib_config_option_t *opts, char *base, bool quiet);
static void apply_node(apply_t *ap, const trib_config_option_t *opt, const cfg_node_t *key,
                       const cfg_node_t *val, char *base, bool fd);

/* Sets every position in a default's tree to where the default applies. */
static void relocate(cfg_node_t *n, int line, int col)
{
    for (; n; n = n->next) {
        n->line = line;
        n->col = col;
        relocate(n->first, line, col);
    }
}

/* Parses the YAML text of a STRLIST/MAP default into a tree. */
static cfg_node_t *default_tree(apply_t *ap, const trib_config_option_t *opt, int line, int col)
{
    trib_config_t tmp = {.name = "<default>"};
    cfg_node_t *root = NULL;
    trib_arena_init(&tmp.arena);
    int rc = cfg_yaml_parse(&tmp, ap->tree, opt->def, strlen(opt->def), &root);
    bool bad = rc != 0 || tmp.nerrors != 0 || !root;
    if (tmp.oom || rc == -ENOMEM) {
        ap->c->oom = true;
    }
    free(tmp.errors);
    trib_arena_fini(&tmp.arena);
    if (bad) {
        cfg_error(ap->c, line, col, "schema default: cannot parse the default of '%s'", ap->path);
        return NULL;
    }
    root->next = NULL;
    relocate(root, line, col);
    return root;
}

/* Zero, then the default (if any) into the field. `quiet`: no required check. */
static void fill_default(apply_t *ap, const trib_config_option_t *opt, int line, int col,
                         char *base, bool quiet)
{
    char *field = base + opt->offset;
    char where[1100];

    if ((opt->flags & TRIB_CONFIG_REQUIRED) && !quiet) {
        /* ap->path names the option; report it relative to its mapping. */
        size_t full = ap->plen;
        size_t cut = full >= strlen(opt->name) ? full - strlen(opt->name) : 0;
        if (cut > 0 && ap->path[cut - 1] == '.') {
            cut--;
        }
        path_pop(ap, cut);
        cfg_error(ap->c, line, col, "missing required key '%s'%s", opt->name,
                  in_path(ap, where, sizeof(where)));
        path_push_key(ap, opt->name);
        quiet = true; /* nothing more to say about what is inside */
    }

    switch (opt->type) {
    case TRIB_CONFIG_BOOL:
        memset(field, 0, sizeof(bool));
        break;
    case TRIB_CONFIG_INT:
    case TRIB_CONFIG_DURATION:
        memset(field, 0, sizeof(int64_t));
        break;
    case TRIB_CONFIG_UINT:
    case TRIB_CONFIG_SIZE:
        memset(field, 0, sizeof(uint64_t));
        break;
    case TRIB_CONFIG_DOUBLE:
        memset(field, 0, sizeof(double));
        break;
    case TRIB_CONFIG_STRING:
        memset(field, 0, sizeof(const char *));
        break;
    case TRIB_CONFIG_ENUM: {
        int unset = -1; /* index 0 is a real choice: unset must differ */
        memcpy(field, &unset, sizeof(unset));
        break;
    }
    case TRIB_CONFIG_ADDRESS:
        memset(field, 0, sizeof(trib_config_addr_t));
        break;
    case TRIB_CONFIG_STRLIST:
        memset(field, 0, sizeof(trib_config_strlist_t));
        break;
    case TRIB_CONFIG_MAP: {
        trib_config_map_t m = {.file = ap->c->name, .line = line, .col = col};
        memcpy(field, &m, sizeof(m));
        break;
    }
    case TRIB_CONFIG_SECTION:
        apply_section(ap, NULL, line, col, opt->sub, field, quiet);
        return;
    case TRIB_CONFIG_SECTIONS:
        memset(field, 0, sizeof(void *));
        memset(base + opt->count_offset, 0, sizeof(size_t));
        return;
    default:
        cfg_error(ap->c, line, col, "schema: '%s' has an unknown type", ap->path);
        return;
    }

    if (!opt->def) {
        return;
    }
    if (opt->type == TRIB_CONFIG_STRLIST || opt->type == TRIB_CONFIG_MAP) {
        cfg_node_t *t = default_tree(ap, opt, line, col);
        if (t) {
            apply_node(ap, opt, NULL, t, base, true);
        }
        return;
    }
    convert_scalar(ap, opt, opt->def, strlen(opt->def), line, col, field, true);
}

/* A STRLIST given as one scalar "a, b,c" (TRIB_CONFIG_COMMAS). */
static void apply_comma_list(apply_t *ap, const trib_config_option_t *opt, const cfg_node_t *val,
                             trib_config_strlist_t *out)
{
    trib_config_strlist_t l = {0};
    size_t len;
    const char *s = scalar_text(ap, val, "a string or a sequence of strings", &len);
    if (s == NULL) {
        return;
    }
    if (strlen(s) != len) {
        cfg_error(ap->c, val->line, val->col, "NUL character in the value of '%s'", ap->path);
        return;
    }
    size_t n = 1;
    for (size_t i = 0; i < len; i++) {
        n += s[i] == ',';
    }
    l.items = trib_arena_calloc(&ap->c->arena, n, sizeof(char *));
    if (!l.items) {
        ap->c->oom = true;
        return;
    }
    const char *p = s, *end = s + len;
    while (p <= end) {
        const char *q = memchr(p, ',', (size_t)(end - p));
        if (q == NULL) {
            q = end;
        }
        const char *a = p, *b = q;
        while (a < b && (*a == ' ' || *a == '\t')) {
            a++;
        }
        while (b > a && (b[-1] == ' ' || b[-1] == '\t')) {
            b--;
        }
        if (a == b) {
            cfg_error(ap->c, val->line, val->col, "empty item in the list '%s' (item %zu)",
                      ap->path, l.count + 1);
            return;
        }
        l.items[l.count++] = dup_str(ap, a, (size_t)(b - a));
        p = q + 1;
    }
    check_count(ap, opt, l.count, val->line, val->col);
    *out = l;
}

static void apply_strlist(apply_t *ap, const trib_config_option_t *opt, const cfg_node_t *val,
                          trib_config_strlist_t *out)
{
    trib_config_strlist_t l = {0};
    if (val->kind == CFG_SCALAR && (opt->flags & TRIB_CONFIG_COMMAS)) {
        apply_comma_list(ap, opt, val, out);
        return;
    }
    if (val->kind != CFG_SEQUENCE) {
        cfg_error(ap->c, val->line, val->col, "expected a sequence of strings%s for '%s', got %s",
                  (opt->flags & TRIB_CONFIG_COMMAS) ? " or a comma-separated string" : "", ap->path,
                  kind_noun(val));
        return;
    }
    l.items = trib_arena_calloc(&ap->c->arena, val->count ? val->count : 1, sizeof(char *));
    if (!l.items) {
        ap->c->oom = true;
        return;
    }
    size_t i = 0;
    for (const cfg_node_t *n = val->first; n; n = n->next, i++) {
        size_t old = path_push_index(ap, i);
        pos_record(ap->c, ap->path, n->line, n->col);
        size_t len;
        const char *s = n->bad ? NULL : scalar_text(ap, n, "a string", &len);
        if (s && strlen(s) != len) {
            cfg_error(ap->c, n->line, n->col, "NUL character in the value of '%s'", ap->path);
            s = NULL;
        }
        if (s) {
            l.items[l.count++] = dup_str(ap, s, len);
        }
        path_pop(ap, old);
    }
    check_count(ap, opt, val->count, val->line, val->col);
    *out = l;
}

/* Open-addressing set of strings, to find duplicate keys in big maps. */
typedef struct strset {
    const cfg_node_t **slots;
    size_t mask;
} strset_t;

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++) {
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    }
    return h;
}

/* Returns the earlier node with the same text, or NULL after inserting k. */
static const cfg_node_t *strset_add(strset_t *set, const cfg_node_t *k)
{
    size_t i = (size_t)hash_str(k->text) & set->mask;
    while (set->slots[i]) {
        if (strcmp(set->slots[i]->text, k->text) == 0) {
            return set->slots[i];
        }
        i = (i + 1) & set->mask;
    }
    set->slots[i] = k;
    return NULL;
}

static void apply_map(apply_t *ap, const trib_config_option_t *opt, const cfg_node_t *val,
                      trib_config_map_t *out)
{
    char where[1100];
    char q[256];
    trib_config_map_t m = {.file = ap->c->name, .line = val->line, .col = val->col};
    if (val->kind != CFG_MAPPING) {
        cfg_error(ap->c, val->line, val->col, "expected a mapping for '%s', got %s", ap->path,
                  kind_noun(val));
        return;
    }
    size_t entries = val->count / 2;
    strset_t set = {0};
    size_t slots = 16;
    while (slots < entries * 2) {
        slots *= 2;
    }
    set.slots = calloc(slots, sizeof(*set.slots));
    set.mask = slots - 1;
    m.items = trib_arena_calloc(&ap->c->arena, entries ? entries : 1, sizeof(*m.items));
    if (!set.slots || !m.items) {
        ap->c->oom = true;
        free(set.slots);
        return;
    }
    for (const cfg_node_t *k = val->first; k && k->next; k = k->next->next) {
        const cfg_node_t *v = k->next;
        if (k->bad || v->bad) {
            continue;
        }
        const cfg_node_t *first = strset_add(&set, k);
        if (first) {
            cfg_error(ap->c, k->line, k->col,
                      "duplicate key %s%s (first defined at line %d, column %d)",
                      quote(k->text, k->len, q, sizeof(q)), in_path(ap, where, sizeof(where)),
                      first->line, first->col);
            continue;
        }
        size_t old = path_push_key(ap, k->text);
        size_t len;
        const char *s = scalar_text(ap, v, "a scalar", &len);
        if (s && (strlen(s) != len || strlen(k->text) != k->len)) {
            cfg_error(ap->c, v->line, v->col, "NUL character in '%s'", ap->path);
            s = NULL;
        }
        if (s) {
            trib_config_pair_t *p = &m.items[m.count++];
            p->key = dup_str(ap, k->text, k->len);
            p->value = dup_str(ap, s, len);
            p->line = v->line;
            p->col = v->col;
            p->key_line = k->line;
            p->key_col = k->col;
        }
        path_pop(ap, old);
    }
    free(set.slots);
    check_count(ap, opt, entries, val->line, val->col);
    *out = m;
}

static void apply_sections(apply_t *ap, const trib_config_option_t *opt, const cfg_node_t *val,
                           char *base)
{
    if (val->kind != CFG_SEQUENCE) {
        cfg_error(ap->c, val->line, val->col, "expected a sequence of mappings for '%s', got %s",
                  ap->path, kind_noun(val));
        return;
    }
    char *items = trib_arena_calloc(&ap->c->arena, val->count ? val->count : 1, opt->elem_size);
    if (!items) {
        ap->c->oom = true;
        return;
    }
    size_t i = 0;
    for (const cfg_node_t *n = val->first; n; n = n->next, i++) {
        size_t old = path_push_index(ap, i);
        pos_record(ap->c, ap->path, n->line, n->col);
        char *elem = items + i * opt->elem_size;
        if (n->bad) {
            apply_section(ap, NULL, n->line, n->col, opt->sub, elem, true);
        } else if (n->kind != CFG_MAPPING) {
            cfg_error(ap->c, n->line, n->col, "expected a mapping for '%s', got %s", ap->path,
                      kind_noun(n));
            apply_section(ap, NULL, n->line, n->col, opt->sub, elem, true);
        } else {
            apply_section(ap, n, n->line, n->col, opt->sub, elem, false);
        }
        path_pop(ap, old);
    }
    size_t count = val->count;
    memcpy(base + opt->offset, &items, sizeof(items));
    memcpy(base + opt->count_offset, &count, sizeof(count));
    check_count(ap, opt, count, val->line, val->col);
}

/*
 * Applies a present value (val) to an option whose field already holds its
 * default. key is the key node (NULL for a default's tree); ap->path names
 * the option.
 */
static void apply_node(apply_t *ap, const trib_config_option_t *opt, const cfg_node_t *key,
                       const cfg_node_t *val, char *base, bool fd)
{
    char *field = base + opt->offset;
    if (val->bad) {
        return;
    }
    bool empty = is_null(val);
    int line = key ? key->line : val->line;
    int col = key ? key->col : val->col;
    pos_record(ap->c, ap->path, val->line, val->col);

    switch (opt->type) {
    case TRIB_CONFIG_STRLIST:
        if (empty) {
            memset(field, 0, sizeof(trib_config_strlist_t));
            check_count(ap, opt, 0, line, col);
        } else {
            apply_strlist(ap, opt, val, (trib_config_strlist_t *)(void *)field);
        }
        return;
    case TRIB_CONFIG_MAP:
        if (empty) {
            trib_config_map_t m = {.file = ap->c->name, .line = line, .col = col};
            memcpy(field, &m, sizeof(m));
            check_count(ap, opt, 0, line, col);
        } else {
            apply_map(ap, opt, val, (trib_config_map_t *)(void *)field);
        }
        return;
    case TRIB_CONFIG_SECTION:
        if (empty) {
            apply_section(ap, NULL, line, col, opt->sub, field, false);
        } else if (val->kind != CFG_MAPPING) {
            cfg_error(ap->c, val->line, val->col, "expected a mapping for '%s', got %s", ap->path,
                      kind_noun(val));
            apply_section(ap, NULL, line, col, opt->sub, field, true);
        } else {
            apply_section(ap, val, val->line, val->col, opt->sub, field, false);
        }
        return;
    case TRIB_CONFIG_SECTIONS:
        if (empty) {
            memset(field, 0, sizeof(void *));
            memset(base + opt->count_offset, 0, sizeof(size_t));
            check_count(ap, opt, 0, line, col);
        } else {
            apply_sections(ap, opt, val, base);
        }
        return;
    default: {
        size_t len;
        const char *s = scalar_text(ap, val, cfg_type_noun(opt->type), &len);
        if (s) {
            convert_scalar(ap, opt, s, len, val->line, val->col, field, fd);
        }
        return;
    }
    }
}

/*
 * Applies a mapping node (NULL: absent or empty) to a table. line:col is
 * where missing required keys are reported; `quiet` suppresses those
 * reports (the section itself was already reported as wrong or missing).
 */
static void apply_section(apply_t *ap, const cfg_node_t *map, int line, int col,
                          const trib_config_option_t *opts, char *base, bool quiet)
{
    char where[1100];
    size_t n = table_len(opts);
    const cfg_node_t *stack_seen[64];
    const cfg_node_t **seen = stack_seen;

    if (n > 64) {
        seen = calloc(n, sizeof(*seen));
        if (!seen) {
            ap->c->oom = true;
            return;
        }
    } else {
        memset(stack_seen, 0, sizeof(stack_seen));
    }

    for (const cfg_node_t *k = map ? map->first : NULL; k && k->next; k = k->next->next) {
        const cfg_node_t *v = k->next;
        if (k->bad) {
            continue;
        }
        int i = strlen(k->text) == k->len ? find_option(opts, k->text) : -1;
        if (i < 0) {
            unknown_key(ap, opts, k->text, k->len, k->line, k->col);
            continue;
        }
        if (seen[i]) {
            char q[256];
            cfg_error(ap->c, k->line, k->col,
                      "duplicate key %s%s (first defined at line %d, column %d)",
                      quote(k->text, k->len, q, sizeof(q)), in_path(ap, where, sizeof(where)),
                      seen[i]->line, seen[i]->col);
            continue;
        }
        seen[i] = k;
        size_t old = path_push_key(ap, opts[i].name);
        if (opts[i].type != TRIB_CONFIG_SECTION && opts[i].type != TRIB_CONFIG_SECTIONS) {
            fill_default(ap, &opts[i], k->line, k->col, base, true);
        }
        apply_node(ap, &opts[i], k, v, base, false);
        path_pop(ap, old);
    }

    for (size_t i = 0; i < n; i++) {
        if (!seen[i]) {
            size_t old = path_push_key(ap, opts[i].name);
            fill_default(ap, &opts[i], line, col, base, quiet);
            path_pop(ap, old);
        }
    }
    if (seen != stack_seen) {
        free(seen);
    }
}

/* ---- loading ---------------------------------------------------------- */

/* Leaves dst holding defaults when the text could not even be read. */
static void fill_quietly(trib_config_t *c, const trib_config_option_t *schema, void *dst)
{
    trib_arena_t tree;
    apply_t ap = {.c = c, .tree = &tree};
    trib_arena_init(&tree);
    apply_section(&ap, NULL, 0, 0, schema, dst, true);
    trib_arena_fini(&tree);
}

static int finish(trib_config_t *c)
{
    sort_errors(c);
    if (c->oom) {
        return -ENOMEM;
    }
    return c->nerrors || c->dropped ? TRIB_ECONFIG : 0;
}

static int load_text(trib_config_t *c, const char *text, size_t len,
                     const trib_config_option_t *schema, void *dst)
{
    trib_arena_t tree;
    cfg_node_t *root = NULL;
    apply_t ap = {.c = c, .tree = &tree};

    trib_arena_init(&tree);
    int rc = cfg_yaml_parse(c, &tree, text, len, &root);
    if (rc == -ENOMEM) {
        c->oom = true;
    } else if (rc != 0) {
        /* A syntax error: still leave dst well-defined (defaults). */
        apply_section(&ap, NULL, 1, 1, schema, dst, true);
    } else if (!root || is_null(root)) {
        apply_section(&ap, NULL, 1, 1, schema, dst, false);
    } else if (root->kind != CFG_MAPPING) {
        cfg_error(c, root->line, root->col, "expected a mapping at the top level, got %s",
                  kind_noun(root));
        apply_section(&ap, NULL, 1, 1, schema, dst, true);
    } else {
        apply_section(&ap, root, root->line, root->col, schema, dst, false);
    }
    trib_arena_fini(&tree);
    return finish(c);
}

int trib_config_load_string(trib_config_t **out, const char *name, const char *text, size_t len,
                            const trib_config_option_t *schema, void *dst)
{
    trib_config_t *c = config_new(name);
    *out = c;
    if (!c) {
        return -ENOMEM;
    }
    if (len > TRIB_CONFIG_MAX_BYTES) {
        cfg_error(c, 0, 0, "larger than %u bytes", TRIB_CONFIG_MAX_BYTES);
        fill_quietly(c, schema, dst);
        return finish(c);
    }
    return load_text(c, text, len, schema, dst);
}

int trib_config_load_file(trib_config_t **out, const char *path, const trib_config_option_t *schema,
                          void *dst)
{
    trib_config_t *c = config_new(path);
    char *text = NULL;
    size_t len = 0;
    struct stat st;
    int fd;

    *out = c;
    if (!c) {
        return -ENOMEM;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        cfg_error(c, 0, 0, "cannot open: %s", strerror(errno));
        fill_quietly(c, schema, dst);
        return finish(c);
    }
    if (fstat(fd, &st) != 0) {
        cfg_error(c, 0, 0, "cannot stat: %s", strerror(errno));
        goto fail;
    }
    if (!S_ISREG(st.st_mode) && !S_ISCHR(st.st_mode) && !S_ISFIFO(st.st_mode)) {
        cfg_error(c, 0, 0, "not a regular file");
        goto fail;
    }
    /* Read to EOF (pipes and /dev/stdin have no size), up to the bound. */
    size_t cap = S_ISREG(st.st_mode) && st.st_size > 0 ? (size_t)st.st_size + 1 : 4096;
    if (cap > TRIB_CONFIG_MAX_BYTES + 1) {
        cap = TRIB_CONFIG_MAX_BYTES + 1;
    }
    text = malloc(cap);
    if (!text) {
        c->oom = true;
        goto fail;
    }
    for (;;) {
        if (len == cap) {
            if (cap > TRIB_CONFIG_MAX_BYTES) {
                cfg_error(c, 0, 0, "larger than %u bytes", TRIB_CONFIG_MAX_BYTES);
                goto fail;
            }
            size_t ncap = cap * 2 > TRIB_CONFIG_MAX_BYTES + 1 ? TRIB_CONFIG_MAX_BYTES + 1 : cap * 2;
            char *nt = realloc(text, ncap);
            if (!nt) {
                c->oom = true;
                goto fail;
            }
            text = nt;
            cap = ncap;
        }
        ssize_t n = read(fd, text + len, cap - len);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            cfg_error(c, 0, 0, "cannot read: %s", strerror(errno));
            goto fail;
        }
        if (n == 0) {
            break;
        }
        len += (size_t)n;
    }
    close(fd);
    int rc = load_text(c, text, len, schema, dst);
    free(text);
    return rc;

fail:
    close(fd);
    free(text);
    fill_quietly(c, schema, dst);
    return finish(c);
}

int trib_config_apply_map(trib_config_t *c, const trib_config_map_t *map, const char *where,
                          const trib_config_option_t *schema, void *dst)
{
    trib_arena_t tree;
    apply_t ap = {.c = c, .tree = &tree, .list_keys = true};
    size_t before = c->nerrors + c->dropped;
    size_t n = table_len(schema);
    bool *seen = calloc(n ? n : 1, sizeof(*seen));
    int line = map->line;
    int col = map->col;
    char wbuf[1100];

    if (!seen) {
        return -ENOMEM;
    }
    trib_arena_init(&tree);
    path_push_key(&ap, where ? where : "");
    for (size_t p = 0; p < map->count; p++) {
        const trib_config_pair_t *pr = &map->items[p];
        int i = find_option(schema, pr->key);
        if (i < 0) {
            unknown_key(&ap, schema, pr->key, strlen(pr->key), pr->key_line, pr->key_col);
            continue;
        }
        if (seen[i]) {
            cfg_error(c, pr->key_line, pr->key_col, "duplicate key '%s'%s", pr->key,
                      in_path(&ap, wbuf, sizeof(wbuf)));
            continue;
        }
        seen[i] = true;
        size_t old = path_push_key(&ap, schema[i].name);
        fill_default(&ap, &schema[i], pr->key_line, pr->key_col, dst, true);
        convert_scalar(&ap, &schema[i], pr->value, strlen(pr->value), pr->line, pr->col,
                       (char *)dst + schema[i].offset, false);
        path_pop(&ap, old);
    }
    for (size_t i = 0; i < n; i++) {
        if (!seen[i]) {
            size_t old = path_push_key(&ap, schema[i].name);
            fill_default(&ap, &schema[i], line, col, dst, false);
            path_pop(&ap, old);
        }
    }
    free(seen);
    trib_arena_fini(&tree);
    sort_errors(c);
    if (c->oom) {
        return -ENOMEM;
    }
    return c->nerrors + c->dropped > before ? TRIB_ECONFIG : 0;
}

const char *trib_config_map_get(const trib_config_map_t *m, const char *key)
{
    for (size_t i = 0; i < m->count; i++) {
        if (strcmp(m->items[i].key, key) == 0) {
            return m->items[i].value;
        }
    }
    return NULL;
}
