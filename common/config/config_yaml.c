/* SPDX-License-Identifier: Apache-2.0 */
/*
 * YAML text -> config node tree, with libyaml's event API.
 *
 * The builder keeps an explicit stack of open mappings and sequences (so
 * nesting depth is bounded by TRIB_CONFIG_MAX_DEPTH, not by the C stack)
 * and gives every node the 1-based line and column of its start mark
 * (libyaml's marks are 0-based). Scalars are copied into the tree arena,
 * which the loader frees once the schema has been applied.
 *
 * A syntax error ends the parse: it is reported once, with libyaml's
 * position and problem text (and the context it gives, when that started
 * elsewhere). Anchors, aliases and non-scalar keys are refused with an
 * error each, and parsing goes on so the rest of the file is still checked;
 * the offending node is marked so the schema pass skips it silently.
 */
#include "config_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <yaml.h>

/* A config file with more nodes than this is refused (a bound on memory). */
#define CFG_MAX_NODES 250000

typedef struct builder {
    trib_config_t *c;
    trib_arena_t *tree;
    const char *text;
    size_t len;
    cfg_node_t *stack[TRIB_CONFIG_MAX_DEPTH];
    int depth;
    cfg_node_t *root;
    size_t nodes;
    int documents;
} builder_t;

static int mark_line(const yaml_mark_t *m)
{
    return (int)m->line + 1;
}

static int mark_col(const yaml_mark_t *m)
{
    return (int)m->column + 1;
}

/* Line and column (in characters) of a byte offset, for reader errors. */
static void offset_position(const char *text, size_t len, size_t off, int *line, int *col)
{
    int l = 1;
    int cc = 1;
    if (off > len) {
        off = len;
    }
    for (size_t i = 0; i < off; i++) {
        unsigned char ch = (unsigned char)text[i];
        if (ch == '\n') {
            l++;
            cc = 1;
        } else if ((ch & 0xc0) != 0x80) {
            cc++;
        }
    }
    *line = l;
    *col = cc;
}

static void report_parser_error(builder_t *b, const yaml_parser_t *p)
{
    int line;
    int col;
    const char *problem = p->problem ? p->problem : "invalid YAML";

    if (p->error == YAML_READER_ERROR) {
        /* The reader gives a byte offset, not a mark. */
        offset_position(b->text, b->len, p->problem_offset, &line, &col);
        if (p->problem_value != -1) {
            cfg_error(b->c, line, col, "%s (byte 0x%02x)", problem, (unsigned)p->problem_value);
        } else {
            cfg_error(b->c, line, col, "%s", problem);
        }
        return;
    }
    if (p->error == YAML_MEMORY_ERROR) {
        b->c->oom = true;
        return;
    }

    line = mark_line(&p->problem_mark);
    col = mark_col(&p->problem_mark);
    size_t at = p->problem_mark.index;
    bool tab = at < b->len && b->text[at] == '\t';
    const char *hint = tab ? "; a tab: YAML indents with spaces only" : "";

    if (p->context && (p->context_mark.line != p->problem_mark.line ||
                       p->context_mark.column != p->problem_mark.column)) {
        cfg_error(b->c, line, col, "%s (%s at line %d, column %d)%s", problem, p->context,
                  mark_line(&p->context_mark), mark_col(&p->context_mark), hint);
    } else if (p->context) {
        cfg_error(b->c, line, col, "%s (%s)%s", problem, p->context, hint);
    } else {
        cfg_error(b->c, line, col, "%s%s", problem, hint);
    }
}

static cfg_node_t *node_new(builder_t *b, cfg_kind_t kind, const yaml_mark_t *m)
{
    if (b->nodes >= CFG_MAX_NODES) {
        return NULL;
    }
    cfg_node_t *n = trib_arena_calloc(b->tree, 1, sizeof(*n));
    if (!n) {
        b->c->oom = true;
        return NULL;
    }
    b->nodes++;
    n->kind = kind;
    n->line = mark_line(m);
    n->col = mark_col(m);
    return n;
}

/* Links n under the innermost open container (or makes it the root). */
static void node_attach(builder_t *b, cfg_node_t *n)
{
    if (b->depth == 0) {
        b->root = n;
        return;
    }
    cfg_node_t *parent = b->stack[b->depth - 1];
    if (parent->kind == CFG_MAPPING && parent->count % 2 == 0 && n->kind != CFG_SCALAR) {
        cfg_error(b->c, n->line, n->col, "mapping keys must be scalars");
        n->bad = true;
    }
    if (parent->last) {
        parent->last->next = n;
    } else {
        parent->first = n;
    }
    parent->last = n;
    parent->count++;
}

static void refuse_anchor(builder_t *b, const yaml_char_t *anchor, const yaml_mark_t *m,
                          cfg_node_t *n)
{
    if (anchor) {
        cfg_error(b->c, mark_line(m), mark_col(m),
                  "anchors are not supported (&%s); write the value out", (const char *)anchor);
        if (n) {
            n->bad = true;
        }
    }
}

/* Handles one event. Returns 0, or TRIB_ECONFIG to stop. */
static int on_event(builder_t *b, const yaml_event_t *e)
{
    cfg_node_t *n;

    switch (e->type) {
    case YAML_DOCUMENT_START_EVENT:
        if (++b->documents > 1) {
            cfg_error(b->c, mark_line(&e->start_mark), mark_col(&e->start_mark),
                      "a second YAML document: a configuration file holds one");
            return TRIB_ECONFIG;
        }
        return 0;

    case YAML_SCALAR_EVENT:
        n = node_new(b, CFG_SCALAR, &e->start_mark);
        if (!n) {
            break;
        }
        n->len = e->data.scalar.length;
        n->text = trib_arena_strndup(b->tree, (const char *)e->data.scalar.value, n->len);
        if (!n->text) {
            b->c->oom = true;
            return -ENOMEM;
        }
        n->plain = e->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
        refuse_anchor(b, e->data.scalar.anchor, &e->start_mark, n);
        node_attach(b, n);
        return 0;

    case YAML_ALIAS_EVENT:
        cfg_error(b->c, mark_line(&e->start_mark), mark_col(&e->start_mark),
                  "aliases are not supported (*%s); write the value out",
                  (const char *)e->data.alias.anchor);
        n = node_new(b, CFG_SCALAR, &e->start_mark);
        if (!n) {
            break;
        }
        n->text = "";
        n->bad = true;
        node_attach(b, n);
        return 0;

    case YAML_MAPPING_START_EVENT:
    case YAML_SEQUENCE_START_EVENT: {
        bool map = e->type == YAML_MAPPING_START_EVENT;
        if (b->depth >= TRIB_CONFIG_MAX_DEPTH) {
            cfg_error(b->c, mark_line(&e->start_mark), mark_col(&e->start_mark),
                      "nesting deeper than %d levels", TRIB_CONFIG_MAX_DEPTH);
            return TRIB_ECONFIG;
        }
        n = node_new(b, map ? CFG_MAPPING : CFG_SEQUENCE, &e->start_mark);
        if (!n) {
            break;
        }
        refuse_anchor(b, map ? e->data.mapping_start.anchor : e->data.sequence_start.anchor,
                      &e->start_mark, n);
        node_attach(b, n);
        b->stack[b->depth++] = n;
        return 0;
    }

    case YAML_MAPPING_END_EVENT:
    case YAML_SEQUENCE_END_EVENT:
        if (b->depth > 0) {
            b->depth--;
        }
        return 0;

    default: /* stream and document ends, stream start */
        return 0;
    }

    /* node_new() failed. */
    if (b->c->oom) {
        return -ENOMEM;
    }
    cfg_error(b->c, mark_line(&e->start_mark), mark_col(&e->start_mark), "more than %d YAML nodes",
              CFG_MAX_NODES);
    return TRIB_ECONFIG;
}

int cfg_yaml_parse(trib_config_t *c, trib_arena_t *tree, const char *text, size_t len,
                   cfg_node_t **root)
{
    builder_t b = {.c = c, .tree = tree, .text = text, .len = len};
    yaml_parser_t p;
    int rc = 0;

    *root = NULL;
    if (!yaml_parser_initialize(&p)) {
        return -ENOMEM;
    }
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    for (;;) {
        yaml_event_t e;
        if (!yaml_parser_parse(&p, &e)) {
            report_parser_error(&b, &p);
            rc = c->oom ? -ENOMEM : TRIB_ECONFIG;
            break;
        }
        rc = on_event(&b, &e);
        bool end = e.type == YAML_STREAM_END_EVENT;
        yaml_event_delete(&e);
        if (rc != 0 || end) {
            break;
        }
    }
    yaml_parser_delete(&p);
    if (rc == 0) {
        *root = b.root;
    }
    return rc;
}
