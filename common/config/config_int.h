/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Private parts of the config loader, shared by its files:
 *
 *   config_yaml.c    libyaml events -> node tree (positions, syntax errors)
 *   config_value.c   scalar parsers (numbers, durations, sizes, addresses),
 *                    ${ENV} substitution, edit distance
 *   config.c         the trib_config_t object, errors, schema application
 *   config_dump.c    effective configuration as YAML, schema checks
 */
#ifndef TRIBUTARY_CONFIG_INT_H
#define TRIBUTARY_CONFIG_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tributary/arena.h"
#include "tributary/config.h"
#include "tributary/error.h"

typedef enum cfg_kind {
    CFG_SCALAR = 1,
    CFG_MAPPING,
    CFG_SEQUENCE,
} cfg_kind_t;

/*
 * A parse tree node. A mapping's children alternate key, value (keys are
 * scalars: the builder refuses others); a sequence's are its items.
 * Children are a singly linked list in document order.
 */
typedef struct cfg_node {
    cfg_kind_t kind;
    int line; /* 1-based */
    int col;  /* 1-based, in characters */
    struct cfg_node *next;
    /* scalar */
    const char *text; /* NUL-terminated; may contain NULs up to len */
    size_t len;
    bool plain; /* unquoted, so "", "~" and "null" are null */
    bool bad;   /* already reported (alias, anchor, complex key): skip quietly */
    /* mapping, sequence */
    struct cfg_node *first;
    struct cfg_node *last;
    size_t count; /* children (a mapping has 2 per entry) */
} cfg_node_t;

/* Where a value was written, by its path ("sinks[1].topics[0]"). */
typedef struct cfg_pos {
    const char *path; /* in the arena */
    int line;
    int col;
} cfg_pos_t;

struct trib_config {
    trib_arena_t arena; /* values handed to the caller, and the name */
    cfg_pos_t *pos;     /* every applied value's position, in application order */
    size_t npos;
    size_t pos_cap;
    const char *name; /* display name, in the arena */
    trib_error_t *errors;
    size_t nerrors;
    size_t cap;
    size_t dropped; /* beyond TRIB_CONFIG_MAX_ERRORS */
    bool oom;
};

/* Records an error at a position (0, 0 for none). Never fails: on OOM, drops. */
void cfg_error(trib_config_t *c, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/*
 * Parses `text` into a tree allocated from `tree`. On a YAML error, records
 * it in `c` and returns TRIB_ECONFIG; -ENOMEM. *root is NULL for an empty
 * stream. `text` needs no terminator.
 */
int cfg_yaml_parse(trib_config_t *c, trib_arena_t *tree, const char *text, size_t len,
                   cfg_node_t **root);

/* Scalar parsers: 0, or -EINVAL / -ERANGE. `s` is NUL-terminated. */
int cfg_parse_bool(const char *s, bool *v);
int cfg_parse_int(const char *s, int64_t *v);
int cfg_parse_uint(const char *s, uint64_t *v);
int cfg_parse_double(const char *s, double *v);

/* DURATION and SIZE, with the reason for a refusal in *why (may be NULL). */
int cfg_duration(const char *s, int64_t *ms, const char **why);
int cfg_size(const char *s, uint64_t *bytes, const char **why);

/*
 * ${VAR} and ${VAR:-default} substitution of s[0..len). Returns the result
 * (arena-allocated, or s itself when there is nothing to substitute) and
 * its length; NULL on error, with *why set to a message (the name of the
 * unset variable is copied into `why_buf`).
 */
const char *cfg_env_expand(trib_arena_t *a, const char *s, size_t len, size_t *outlen,
                           char *why_buf, size_t why_len, bool *oom);

/* Optimal-string-alignment distance, ASCII case-insensitive; capped at cap+1. */
size_t cfg_edit_distance(const char *a, const char *b, size_t cap);

/* The best candidate near `word`, or NULL when nothing is close enough. */
const char *cfg_suggest(const char *word, const char *const *candidates, size_t n);

/* Human name of a type's value: "an integer", "a duration" … */
const char *cfg_type_noun(trib_config_type_t t);

#endif
