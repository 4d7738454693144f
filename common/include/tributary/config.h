/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The YAML configuration loader: one schema-row type for the agent, the
 * collector and sink plugins (in the manner of nginx's ngx_command_t).
 *
 * A module describes its options in a table of trib_config_option_t rows,
 * each naming a YAML key, a type, the offset of the C field the value goes
 * to, and optionally a default, bounds, enum choices, flags and a
 * description. The loader parses the YAML with libyaml into a node tree in
 * which every node knows its file, line and column, then applies the table
 * to the tree, filling the caller's struct:
 *
 *   typedef struct storage_conf {
 *       int fsync;                 // TRIB_CONFIG_ENUM: index into choices
 *       int64_t flush_ms;          // TRIB_CONFIG_DURATION
 *       uint64_t segment_bytes;    // TRIB_CONFIG_SIZE
 *   } storage_conf_t;
 *   typedef struct sink_conf {
 *       const char *name;
 *       trib_config_strlist_t topics;
 *       trib_config_map_t options;
 *   } sink_conf_t;
 *   typedef struct conf {
 *       trib_config_addr_t listen;
 *       storage_conf_t storage;
 *       sink_conf_t *sinks;        // TRIB_CONFIG_SECTIONS: array ...
 *       size_t nsinks;             // ... and its count
 *   } conf_t;
 *
 *   static const char *const fsync_modes[] = {"ack", "interval", "never", NULL};
 *   static const trib_config_option_t storage_opts[] = {
 *       {TRIB_CONFIG_FIELD(storage_conf_t, fsync, ENUM), .def = "ack",
 *        .choices = fsync_modes, .desc = "when appended batches are fsynced"},
 *       {TRIB_CONFIG_FIELD(storage_conf_t, flush_ms, DURATION), .def = "1s",
 *        .min = "1ms", .max = "1h"},
 *       {TRIB_CONFIG_FIELD(storage_conf_t, segment_bytes, SIZE), .def = "1GiB",
 *        .min = "1MiB"},
 *       TRIB_CONFIG_END,
 *   };
 *   static const trib_config_option_t sink_opts[] = {
 *       {TRIB_CONFIG_FIELD(sink_conf_t, name, STRING), .flags = TRIB_CONFIG_REQUIRED},
 *       {TRIB_CONFIG_FIELD(sink_conf_t, topics, STRLIST), .min = "1"},
 *       {TRIB_CONFIG_FIELD(sink_conf_t, options, MAP)},
 *       TRIB_CONFIG_END,
 *   };
 *   static const trib_config_option_t conf_opts[] = {
 *       {TRIB_CONFIG_FIELD(conf_t, listen, ADDRESS), .def = "0.0.0.0:9092"},
 *       {TRIB_CONFIG_SECTION(conf_t, storage, storage_opts)},
 *       {TRIB_CONFIG_SECTIONS(conf_t, sinks, nsinks, sink_conf_t, sink_opts)},
 *       TRIB_CONFIG_END,
 *   };
 *
 *   conf_t conf;
 *   trib_config_t *cfg;
 *   if (trib_config_load_file(&cfg, path, conf_opts, &conf) != 0) {
 *       trib_config_print_errors(cfg, stderr);
 *       trib_config_free(cfg);
 *       return 1;
 *   }
 *   ... use conf; its strings and arrays live in cfg ...
 *   trib_config_free(cfg);
 *
 * Field types (the C type the offset must point at):
 *
 *   BOOL      bool                  true/false, yes/no, on/off (any case)
 *   INT       int64_t               decimal, optional sign; .min/.max
 *   UINT      uint64_t              decimal, no sign; .min/.max
 *   DOUBLE    double                finite strtod() number; .min/.max
 *   STRING    const char *          any scalar; .min/.max bound the length
 *   ENUM      int                   index into .choices (NULL-terminated);
 *                                   -1 when unset (no default, or a bad value)
 *   DURATION  int64_t milliseconds  number+unit, units ms s m h d, and
 *                                   compounds ("1h30m", "1.5s"). A bare
 *                                   number is an error (ms or s? say it),
 *                                   except 0.
 *   SIZE      uint64_t bytes        bare number = bytes; units B, kB MB GB
 *                                   TB PB (powers of 1000), KiB MiB GiB TiB
 *                                   PiB (powers of 1024); "1.5GiB" works
 *                                   when the result is a whole byte count.
 *   ADDRESS   trib_config_addr_t    "host:port", "[v6addr]:port" or ":port"
 *                                   (any address); port 0-65535
 *   STRLIST   trib_config_strlist_t a sequence of scalars; .min/.max count.
 *                                   With TRIB_CONFIG_COMMAS also one scalar
 *                                   "a,b,c" (items trimmed; an empty item is
 *                                   an error at the scalar)
 *   MAP       trib_config_map_t     a mapping of scalar keys to scalar values
 *                                   kept as ordered string pairs with their
 *                                   positions (pass-through options);
 *                                   .min/.max count
 *   SECTION   struct (embedded)     a mapping described by .sub
 *   SECTIONS  T * and size_t        a sequence of mappings, each described
 *                                   by .sub, into an array of .elem_size
 *                                   elements; the count goes to
 *                                   .count_offset. .min/.max count
 *
 * The TRIB_CONFIG_FIELD() family computes the offset and, for scalar,
 * list and map types, checks the field's C type at compile time (a
 * mismatch is a "distinct pointer types" diagnostic).
 *
 * Defaults (.def) are text parsed by the same rules as a YAML value of that
 * type (for STRLIST and MAP: a YAML flow collection such as "[a, b]" or
 * "{linger.ms: 5}"). .min/.max are text in the type's own notation
 * ("1ms", "64MiB", "-1"). Defaults are literal: no ${ENV} substitution. An
 * absent option without a default is zero (false, 0, NULL, an empty list),
 * except an ENUM, which is -1 (index 0 is a real choice).
 * An absent SECTION gets its own defaults; an explicit null value (`key:`
 * or `key: ~`) counts as an empty SECTION/list/map, and is an error for a
 * scalar option (write "" for an empty string).
 *
 * YAML rules:
 *   - Every scalar value (not keys) may use ${VAR} and ${VAR:-default}
 *     (the default when VAR is unset or empty); "$${" is a literal "${".
 *     An unset VAR without a default is an error at the scalar. In flow
 *     collections ([..], {..}) quote such values: { and } are indicators
 *     there, so `topics: [${T}]` is a YAML syntax error; `["${T}"]` works.
 *   - Scalars are typed by the schema, not by YAML: quoted "5" is a fine
 *     integer, and a plain 5 is a fine string. Tags are ignored.
 *   - Anchors (&a) and aliases (*a) are rejected with a positioned error:
 *     configuration files stay explicit, and alias expansion (the
 *     "billion laughs") is kept off the loader's attack surface.
 *   - One document per file. An empty file is an empty mapping, so an
 *     empty file is valid unless the schema has required keys.
 *   - Duplicate keys are errors in every mapping, MAP values included.
 *   - Input is bounded (TRIB_CONFIG_MAX_BYTES, TRIB_CONFIG_MAX_DEPTH).
 *
 * Errors. Every problem is collected (unknown keys, with a "did you mean"
 * by edit distance; duplicates; wrong node kinds; bad, out-of-range and
 * unknown enum values, with a suggestion; missing required keys, placed at
 * the enclosing mapping; unset environment variables), up to
 * TRIB_CONFIG_MAX_ERRORS, and sorted by position. A YAML syntax error stops
 * the parse: it is reported with libyaml's position and problem text. Each
 * error is a trib_error_t whose `file` points at the display name held by
 * the trib_config_t; trib_config_print_errors() prints them compiler-style:
 *
 *   agent.yaml:14:9: error: unknown key 'topik' in pipelines[0].output (did you mean 'topic'?)
 *
 * Values of TRIB_CONFIG_SECRET options never appear in errors or dumps.
 *
 * Memory. Strings and arrays written into the caller's struct live in an
 * arena owned by the trib_config_t: they stay valid until
 * trib_config_free(). (A SIGHUP reload loads into a fresh struct with a
 * fresh trib_config_t, swaps, then frees the old one.) The parse tree is
 * freed before the load returns.
 */
#ifndef TRIBUTARY_CONFIG_H
#define TRIBUTARY_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "tributary/error.h"

/* Files larger than this are refused. */
#define TRIB_CONFIG_MAX_BYTES (16u << 20)
/* Mappings and sequences nested deeper than this are refused. */
#define TRIB_CONFIG_MAX_DEPTH 64
/* Errors beyond this many are counted, and summed up in one last line. */
#define TRIB_CONFIG_MAX_ERRORS 100

typedef enum trib_config_type {
    TRIB_CONFIG_NONE = 0, /* zero: marks the end of a table */
    TRIB_CONFIG_BOOL,
    TRIB_CONFIG_INT,
    TRIB_CONFIG_UINT,
    TRIB_CONFIG_DOUBLE,
    TRIB_CONFIG_STRING,
    TRIB_CONFIG_ENUM,
    TRIB_CONFIG_DURATION,
    TRIB_CONFIG_SIZE,
    TRIB_CONFIG_ADDRESS,
    TRIB_CONFIG_STRLIST,
    TRIB_CONFIG_MAP,
    TRIB_CONFIG_SECTION,
    TRIB_CONFIG_SECTIONS,
} trib_config_type_t;

/* Option flags. */
#define TRIB_CONFIG_REQUIRED 0x1u /* the key must be present */
#define TRIB_CONFIG_SECRET 0x2u   /* never print the value (errors, dumps) */
#define TRIB_CONFIG_COMMAS 0x4u   /* STRLIST: a scalar is also taken, split at commas */

typedef struct trib_config_option {
    const char *name; /* YAML key; NULL ends the table */
    trib_config_type_t type;
    unsigned flags;
    size_t offset;                        /* of the field in the struct */
    const char *def;                      /* default, as text; NULL: zero */
    const char *min;                      /* lower bound, as text; NULL: none */
    const char *max;                      /* upper bound, as text; NULL: none */
    const char *const *choices;           /* ENUM: NULL-terminated names */
    const struct trib_config_option *sub; /* SECTION, SECTIONS: the sub-table */
    size_t elem_size;                     /* SECTIONS: sizeof one element */
    size_t count_offset;                  /* SECTIONS: the size_t count field */
    const char *desc;                     /* one line, for dumps and docs */
} trib_config_option_t;

#define TRIB_CONFIG_END                                                                            \
    {                                                                                              \
        .name = NULL                                                                               \
    }

/* The C type behind each type, for the compile-time field check. */
#define TRIB_CONFIG_CTYPE_BOOL bool
#define TRIB_CONFIG_CTYPE_INT int64_t
#define TRIB_CONFIG_CTYPE_UINT uint64_t
#define TRIB_CONFIG_CTYPE_DOUBLE double
#define TRIB_CONFIG_CTYPE_STRING const char *
#define TRIB_CONFIG_CTYPE_ENUM int
#define TRIB_CONFIG_CTYPE_DURATION int64_t
#define TRIB_CONFIG_CTYPE_SIZE uint64_t
#define TRIB_CONFIG_CTYPE_ADDRESS trib_config_addr_t
#define TRIB_CONFIG_CTYPE_STRLIST trib_config_strlist_t
#define TRIB_CONFIG_CTYPE_MAP trib_config_map_t

/* offsetof(st, field), refusing to compile unless the field has type ctype. */
#define TRIB_CONFIG_OFFSET_CHECKED(st, field, ctype)                                               \
    (offsetof(st, field) + 0 * sizeof(&((st *)0)->field == (ctype *)0))

/*
 * Row starters: {TRIB_CONFIG_FIELD(conf_t, node_id, INT), .min = "0"}.
 * _FIELD uses the C field name as the YAML key; _KEY names it.
 */
#define TRIB_CONFIG_KEY(key, st, field, kind)                                                      \
    .name = (key), .type = TRIB_CONFIG_##kind,                                                     \
    .offset = TRIB_CONFIG_OFFSET_CHECKED(st, field, TRIB_CONFIG_CTYPE_##kind)
#define TRIB_CONFIG_FIELD(st, field, kind) TRIB_CONFIG_KEY(#field, st, field, kind)

#define TRIB_CONFIG_SECTION_KEY(key, st, field, subtable)                                          \
    .name = (key), .type = TRIB_CONFIG_SECTION, .offset = offsetof(st, field), .sub = (subtable)
#define TRIB_CONFIG_SECTION(st, field, subtable)                                                   \
    TRIB_CONFIG_SECTION_KEY(#field, st, field, subtable)

/* field: `elemtype *`; countfield: `size_t`. */
#define TRIB_CONFIG_SECTIONS_KEY(key, st, field, countfield, elemtype, subtable)                   \
    .name = (key), .type = TRIB_CONFIG_SECTIONS,                                                   \
    .offset = TRIB_CONFIG_OFFSET_CHECKED(st, field, elemtype *),                                   \
    .count_offset = TRIB_CONFIG_OFFSET_CHECKED(st, countfield, size_t),                            \
    .elem_size = sizeof(elemtype), .sub = (subtable)
#define TRIB_CONFIG_SECTIONS(st, field, countfield, elemtype, subtable)                            \
    TRIB_CONFIG_SECTIONS_KEY(#field, st, field, countfield, elemtype, subtable)

/* A validated "host:port". host has no brackets; "" means any address. */
typedef struct trib_config_addr {
    const char *text; /* as written (after ${ENV}); NULL when unset */
    const char *host;
    uint16_t port;
} trib_config_addr_t;

typedef struct trib_config_strlist {
    const char **items;
    size_t count;
} trib_config_strlist_t;

typedef struct trib_config_pair {
    const char *key;
    const char *value;
    int line; /* of the value (of the mapping, for a default) */
    int col;
    int key_line; /* of the key */
    int key_col;
} trib_config_pair_t;

typedef struct trib_config_map {
    trib_config_pair_t *items; /* in file order */
    size_t count;
    const char *file; /* display name, for trib_config_apply_map() */
    int line;         /* of the mapping (or of its key when empty) */
    int col;
} trib_config_map_t;

/* A loaded configuration: its value arena and its errors. Opaque. */
typedef struct trib_config trib_config_t;

/*
 * Loads `path` (its display name in errors is `path` as given) and applies
 * `schema` to `dst`. Returns 0; TRIB_ECONFIG when there are errors (the
 * file could not be read, bad YAML, bad values); -ENOMEM. *out is set to a
 * trib_config_t in every case but -ENOMEM before one existed (then NULL);
 * the caller frees it with trib_config_free(). On error `dst` holds what
 * could be applied and must not be trusted, but it is safe to discard.
 */
int trib_config_load_file(trib_config_t **out, const char *path, const trib_config_option_t *schema,
                          void *dst);

/* Same from memory; `name` is the display name used in errors. */
int trib_config_load_string(trib_config_t **out, const char *name, const char *text, size_t len,
                            const trib_config_option_t *schema, void *dst);

/*
 * Validates a MAP loaded earlier (a sink's pass-through `options`, say)
 * against a flat schema of scalar types (no lists, maps or sections),
 * filling `dst`; errors, with the positions the map kept, are added to `c`
 * and named after `where` ("sinks[0].options"). Values live in `c`.
 * Returns 0, TRIB_ECONFIG or -ENOMEM.
 */
int trib_config_apply_map(trib_config_t *c, const trib_config_map_t *map, const char *where,
                          const trib_config_option_t *schema, void *dst);

/* Frees the configuration and every value loaded through it. NULL is fine. */
void trib_config_free(trib_config_t *c);

/*
 * Where the value at `path` was written: "log.level", "sinks[1].name",
 * "sinks[1].topics[0]", "sinks[1]" (the list item's mapping). 0 and
 * line/col (1-based), or TRIB_ENOT_FOUND for a value that came from a
 * default or does not exist. For checks made after loading (names that
 * must be unique, patterns compiled by the caller).
 */
int trib_config_position(const trib_config_t *c, const char *path, int *line, int *col);

/*
 * Checks an address as the ADDRESS type does, for a value whose type the
 * caller decides after loading (an option that is an address or a path).
 * 0, or -EINVAL with *why set to the reason.
 */
int trib_config_check_address(const char *s, const char **why);
/*
 * The ADDRESS type's parser, for every "host:port" in the tree (command-line
 * flags, bootstrap lists): "host:port", "[v6]:port" or ":port" (host "": any
 * address); the host a name or an IPv4 address, an IPv6 one only in brackets;
 * port 0-65535. host (hostlen bytes) receives the host without brackets.
 * 0, or -EINVAL with *why set to the reason ("missing ':port' after ']'").
 */
int trib_config_parse_address(const char *s, char *host, size_t hostlen, uint16_t *port,
                              const char **why);

/*
 * Adds an error found after loading, reported like the loader's own
 * ("file:line:col: error: msg"; line 0 when the position is unknown).
 */
void trib_config_add_error(trib_config_t *c, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* The collected errors, sorted by position. */
size_t trib_config_error_count(const trib_config_t *c);
const trib_error_t *trib_config_error(const trib_config_t *c, size_t i);

/* Prints every error, one "file:line:col: error: msg" per line. */
void trib_config_print_errors(const trib_config_t *c, FILE *fp);

/* Dump flags. */
#define TRIB_CONFIG_DUMP_DESC 0x1u /* a "# description" comment above each key */

/*
 * Prints `src` (a struct filled by the loader, defaults included) as YAML
 * that loads back to the same values. Secrets print as "********"; unset
 * strings, addresses and enums print as comments. Returns 0 or -EIO.
 */
int trib_config_dump(FILE *fp, const trib_config_option_t *schema, const void *src, unsigned flags);

/*
 * Checks a schema for programmer errors (unknown type, duplicate names,
 * defaults or bounds that do not parse or contradict each other, an enum
 * without choices, a section without a sub-table). The first problem goes
 * to `err`. Returns 0 or -EINVAL. Unit tests call it on every table.
 */
int trib_config_schema_check(const trib_config_option_t *schema, trib_error_t *err);

/* The value of `key` in a map, or NULL. The last one wins (there is one). */
const char *trib_config_map_get(const trib_config_map_t *m, const char *key);

/* The parsers and formatters behind DURATION and SIZE. 0 or -EINVAL/-ERANGE. */
int trib_config_parse_duration(const char *s, int64_t *ms);
int trib_config_parse_size(const char *s, uint64_t *bytes);
/* Shortest exact form: "1h30m", "250ms", "0s"; "64MiB", "1kB", "1000001". */
void trib_config_format_duration(int64_t ms, char *out, size_t outlen);
void trib_config_format_size(uint64_t bytes, char *out, size_t outlen);

#endif
