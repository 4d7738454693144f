/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The `postgres` sink: records into a PostgreSQL table through libpq, each
 * batch in one transaction, in one of two ways.
 *
 * The direct path, when no row of the batch can be in the table yet:
 *
 *   BEGIN
 *   COPY <table> (topic, "partition", "offset", ts, key, headers, value, event_id) FROM STDIN
 *   COMMIT
 *
 * The staging path, when some may be (a batch delivered again after a
 * retry, or after a crash before the offset commit):
 *
 *   BEGIN
 *   COPY tributary_stage FROM STDIN          -- a temp table, ON COMMIT DELETE ROWS
 *   INSERT INTO <table> (...) SELECT ... FROM tributary_stage
 *       ON CONFLICT (topic, "partition", "offset") DO NOTHING
 *   COMMIT
 *
 * Either way the unique key on (topic, "partition", "offset") holds each
 * record once: the direct path only decides how much work a batch costs,
 * never what lands. It is taken when the batch's first offset is above
 * `known_max`, the highest offset of the partition known to be in the
 * table: read with SELECT max("offset") on the first write of each
 * connection (an index-only scan), then advanced after each COMMIT that
 * succeeded. The host writes a partition's batches in offset order, so
 * after a restart only the first batch can overlap rows already there,
 * and it takes the staging path; after a lost connection (a COMMIT whose
 * answer never came) the maximum is read again. Should a row of the batch
 * be there anyway (another writer of the same partition, a row inserted
 * by hand), the COPY fails with unique_violation (23505), the transaction
 * rolls back whole, and the batch is written again through the staging
 * path. Mapped `columns` (computed from the value by the server) and
 * timestamps outside years 1..9999 always take the staging path.
 *
 * The table, unless it exists, is created as
 *
 *   topic text, "partition" integer, "offset" bigint, ts timestamptz,
 *   key text, headers jsonb, value jsonb, event_id text, <mapped columns>,
 *   PRIMARY KEY (topic, "partition", "offset"), UNIQUE (event_id)
 *
 * event_id is the record's event.id header (the agent's stable id of an
 * event, the same when it sends the event again after a crash; NULL for a
 * record without one): its unique key makes such a re-send, which comes
 * with a new offset, land once too. With it, the staging path's INSERT is
 * ON CONFLICT DO NOTHING without a target, so either key skips the row,
 * and a direct COPY meeting an event id already there rolls back (23505)
 * and stages like any other conflict.
 *
 * where `columns: "host, status:integer"` maps top-level fields of the
 * value to columns ((value->>'status')::integer). A write is durable when
 * COMMIT returns (the server's synchronous_commit decides what that means).
 *
 * On every new connection the table is checked against what the writes
 * need before anything is written (check_table): it exists, has each
 * column above with its type, and a unique key on exactly (topic,
 * "partition", "offset") for ON CONFLICT. What is missing is created when
 * create_table is true (CREATE TABLE, ALTER TABLE ... ADD COLUMN, ADD
 * PRIMARY KEY); otherwise, and for a column of the wrong type, the write
 * fails with error class SCHEMA and a message holding the exact statement
 * to run. A database that does not exist (DATABASE) and refused
 * credentials (AUTH) are told from a server that cannot be reached
 * (TRANSIENT) by the server's message.
 *
 * Failures: a value that is not JSON is rejected before anything is sent,
 * naming the record (failed_index), so the host dead-letters exactly it.
 * Server errors are classified by SQLSTATE class: data exceptions (22) and
 * integrity violations (23) are REJECT (the host splits the batch to find
 * the record); everything else, and a lost connection, is RETRY: the
 * connection is dropped and made again, with the table and staging setup,
 * on the next write.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libpq-fe.h>

#include "sinkutil.h"
#include "tributary/civil.h"
#include "tributary/log.h"

typedef struct sink_pg_opts {
    const char *conninfo;
    const char *table;
    const char *columns;
    bool create_table;
    int64_t connect_timeout;
    int64_t statement_timeout;
} sink_pg_opts_t;

static const trib_config_option_t sink_pg_options[] = {
    {TRIB_CONFIG_FIELD(sink_pg_opts_t, conninfo, STRING), .flags = TRIB_CONFIG_REQUIRED,
     .desc = "libpq connection string (\"host=127.0.0.1 dbname=logs\") or URI"},
    {TRIB_CONFIG_FIELD(sink_pg_opts_t, table, STRING), .def = "events", .min = "1", .max = "120",
     .desc = "target table, optionally schema-qualified (schema.table)"},
    {TRIB_CONFIG_FIELD(sink_pg_opts_t, columns, STRING), .def = "",
     .desc = "value fields mapped to their own columns: \"host, status:integer\" (NAME[:TYPE], "
             "TYPE a built-in PostgreSQL type, default text)"},
    {TRIB_CONFIG_FIELD(sink_pg_opts_t, create_table, BOOL), .def = "true",
     .desc = "create the table, its missing columns and its unique key when they do not "
             "exist (false: report the statement to run)"},
    {TRIB_CONFIG_FIELD(sink_pg_opts_t, connect_timeout, DURATION), .def = "10s", .min = "1s",
     .desc = "how long a connection attempt may take"},
    {TRIB_CONFIG_FIELD(sink_pg_opts_t, statement_timeout, DURATION), .def = "60s", .min = "0",
     .desc = "statement_timeout of the sink's sessions (0: none)"},
    TRIB_CONFIG_END,
};

#define PG_MAX_COLUMNS 32

typedef struct pg_column {
    char name[64];
    char type[64];
} pg_column_t;

typedef struct sink_pg {
    const trib_sink_host_t *host;
    trib_sink_ctx_t *ctx;
    sink_pg_opts_t o;
    PGconn *conn;
    char table_sql[256]; /* quoted, schema-qualified */
    pg_column_t cols[PG_MAX_COLUMNS];
    size_t ncols;
    sink_str_t copy;
    sink_str_t sql;
    sink_str_t tmp;
    uint64_t failures; /* consecutive connection failures, for quieter logs */
    bool announced;    /* "connected" was logged for the current connection */
    bool has_eid;      /* the table has event_id with a unique key (per connection) */
    bool eid_warned;   /* "no event id key" was logged (once per sink) */
    bool dry;          /* probing: say what create_table would do instead of doing it */
    sink_str_t plan;   /* what it would do */
    /* The direct path (see the opening comment), per connection. */
    bool known;            /* known_max is valid for known_topic/known_partition */
    int64_t known_max;     /* highest offset known to be in the table (-1: none) */
    char known_topic[256]; /* the partition it is about */
    int32_t known_partition;
} sink_pg_t;

/* Built-in type names `columns` accepts (checked offline; a typmod and [] may follow). */
static const char *const pg_types[] = {"text",
                                       "varchar",
                                       "character varying",
                                       "char",
                                       "character",
                                       "smallint",
                                       "integer",
                                       "int",
                                       "bigint",
                                       "int2",
                                       "int4",
                                       "int8",
                                       "numeric",
                                       "decimal",
                                       "real",
                                       "double precision",
                                       "float4",
                                       "float8",
                                       "boolean",
                                       "bool",
                                       "timestamptz",
                                       "timestamp",
                                       "timestamp with time zone",
                                       "timestamp without time zone",
                                       "date",
                                       "time",
                                       "timetz",
                                       "interval",
                                       "json",
                                       "jsonb",
                                       "uuid",
                                       "inet",
                                       "cidr",
                                       "macaddr",
                                       "bytea",
                                       "money",
                                       NULL};

/* True if t (len n) is a built-in type name, optionally with (...) and []. */
static bool pg_type_known(const char *t, size_t n)
{
    while (n > 2 && t[n - 2] == '[' && t[n - 1] == ']') {
        n -= 2;
    }
    const char *paren = memchr(t, '(', n);
    if (paren) {
        if (t[n - 1] != ')') {
            return false;
        }
        for (const char *q = paren + 1; q < t + n - 1; q++) {
            if (!((*q >= '0' && *q <= '9') || *q == ',' || *q == ' ')) {
                return false;
            }
        }
        n = (size_t)(paren - t);
    }
    while (n > 0 && t[n - 1] == ' ') {
        n--;
    }
    for (size_t i = 0; pg_types[i]; i++) {
        if (strlen(pg_types[i]) == n && strncasecmp(pg_types[i], t, n) == 0) {
            return true;
        }
    }
    return false;
}

/* Server messages span lines ("\n\tThis probably means..."): one line for logs and headers. */
static void tidy(char *m)
{
    char *w = m;
    bool space = false;
    for (char *r = m; *r; r++) {
        if (*r == '\n' || *r == '\t' || *r == '\r' || *r == ' ') {
            space = w != m;
            continue;
        }
        if (space) {
            *w++ = ' ';
            space = false;
        }
        *w++ = *r;
    }
    *w = '\0';
}

static void notice(void *arg, const char *message)
{
    sink_pg_t *p = arg;
    p->host->log(p->ctx, TRIB_LOG_DEBUG, "postgres: %s", message);
}

static bool ident_ok(const char *s, size_t n)
{
    if (n == 0 || n >= 64) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
              (i > 0 && c >= '0' && c <= '9'))) {
            return false;
        }
    }
    return true;
}

/* "host, status:integer, ts2:timestamptz" -> cols. Types: letters, digits, spaces, (). */
static int parse_columns(sink_pg_t *p, const char *spec, trib_error_t *err)
{
    const char *s = spec;
    while (*s) {
        while (*s == ' ' || *s == ',') {
            s++;
        }
        if (!*s) {
            break;
        }
        const char *end = strchr(s, ',');
        size_t len = end ? (size_t)(end - s) : strlen(s);
        while (len > 0 && s[len - 1] == ' ') {
            len--;
        }
        const char *colon = memchr(s, ':', len);
        size_t nlen = colon ? (size_t)(colon - s) : len;
        if (p->ncols == PG_MAX_COLUMNS) {
            return trib_error_set(err, -EINVAL, "columns: more than %d", PG_MAX_COLUMNS);
        }
        pg_column_t *c = &p->cols[p->ncols];
        if (!ident_ok(s, nlen)) {
            return trib_error_set(err, -EINVAL, "columns: bad column name '%.*s'", (int)nlen, s);
        }
        memcpy(c->name, s, nlen);
        c->name[nlen] = '\0';
        if (colon) {
            const char *t = colon + 1;
            size_t tlen = len - nlen - 1;
            while (tlen > 0 && *t == ' ') {
                t++;
                tlen--;
            }
            if (tlen == 0 || tlen >= sizeof(c->type) ||
                strspn(t, "abcdefghijklmnopqrstuvwxyz"
                          "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                          "0123456789_ ()") < tlen) {
                return trib_error_set(err, -EINVAL, "columns: bad type for '%s'", c->name);
            }
            if (!pg_type_known(t, tlen)) {
                return trib_error_set(err, -EINVAL,
                                      "columns: unknown type '%.*s' for '%s' (built-in types: "
                                      "text, integer, bigint, smallint, numeric, real, double "
                                      "precision, boolean, timestamptz, timestamp, date, time, "
                                      "interval, json, jsonb, uuid, inet, varchar(n), ...)",
                                      (int)tlen, t, c->name);
            }
            memcpy(c->type, t, tlen);
            c->type[tlen] = '\0';
        } else {
            snprintf(c->type, sizeof(c->type), "text");
        }
        static const char *const reserved[] = {"topic", "partition", "offset", "ts",
                                               "key",   "headers",   "value",  NULL};
        for (size_t i = 0; reserved[i]; i++) {
            if (strcmp(c->name, reserved[i]) == 0) {
                return trib_error_set(err, -EINVAL, "columns: '%s' is a built-in column", c->name);
            }
        }
        p->ncols++;
        s += end ? (size_t)(end - s) : strlen(s);
    }
    return 0;
}

static int parse_table(sink_pg_t *p, const char *table, trib_error_t *err)
{
    const char *dot = strchr(table, '.');
    if (dot) {
        if (!ident_ok(table, (size_t)(dot - table)) || !ident_ok(dot + 1, strlen(dot + 1))) {
            return trib_error_set(err, -EINVAL, "table: bad name '%s' (want [schema.]name)", table);
        }
        snprintf(p->table_sql, sizeof(p->table_sql), "\"%.*s\".\"%s\"", (int)(dot - table), table,
                 dot + 1);
    } else {
        if (!ident_ok(table, strlen(table))) {
            return trib_error_set(err, -EINVAL, "table: bad name '%s' (want [schema.]name)", table);
        }
        snprintf(p->table_sql, sizeof(p->table_sql), "\"%s\"", table);
    }
    return 0;
}

static void drop_conn(sink_pg_t *p)
{
    /* A COMMIT whose answer was lost may have landed: read the maximum again. */
    p->known = false;
    if (p->conn) {
        PQfinish(p->conn);
        p->conn = NULL;
    }
}

/* Runs a command expecting no rows; on failure copies the message to res. */
static bool exec_ok(sink_pg_t *p, const char *sql, trib_sink_result_t *res, char *sqlstate,
                    size_t sslen)
{
    PGresult *r = PQexec(p->conn, sql);
    ExecStatusType st = PQresultStatus(r);
    bool ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
    if (!ok) {
        const char *code = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        if (sqlstate) {
            snprintf(sqlstate, sslen, "%s", code ? code : "");
        }
        const char *m = PQresultErrorMessage(r);
        snprintf(res->msg, sizeof(res->msg), "postgres: %s%s%s", code ? code : "", code ? " " : "",
                 m && *m ? m : PQerrorMessage(p->conn));
        size_t n = strlen(res->msg);
        while (n > 0 && (res->msg[n - 1] == '\n' || res->msg[n - 1] == ' ')) {
            res->msg[--n] = '\0';
        }
    }
    PQclear(r);
    return ok;
}

/* The CREATE TABLE the sink needs, on q. */
static void create_sql(sink_pg_t *p, sink_str_t *q)
{
    sink_str_printf(q,
                    "CREATE TABLE IF NOT EXISTS %s (topic text NOT NULL, "
                    "\"partition\" integer NOT NULL, \"offset\" bigint NOT NULL, "
                    "ts timestamptz, key text, headers jsonb, value jsonb, event_id text",
                    p->table_sql);
    for (size_t i = 0; i < p->ncols; i++) {
        sink_str_printf(q, ", \"%s\" %s", p->cols[i].name, p->cols[i].type);
    }
    sink_str_puts(q, ", PRIMARY KEY (topic, \"partition\", \"offset\"), UNIQUE (event_id))");
}

/* A schema problem: res says what to run. Always false. */
static bool schema_error(trib_sink_result_t *res, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static bool schema_error(trib_sink_result_t *res, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = snprintf(res->msg, sizeof(res->msg), "postgres: ");
    vsnprintf(res->msg + n, sizeof(res->msg) - (size_t)n, fmt, ap);
    va_end(ap);
    res->error_class = TRIB_SINK_ERR_SCHEMA;
    return false;
}

/* One value of a one-row query, or NULL (res set). The result is the caller's. */
static PGresult *query(sink_pg_t *p, const char *sql, trib_sink_result_t *res)
{
    PGresult *r = PQexec(p->conn, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        const char *code = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        snprintf(res->msg, sizeof(res->msg), "postgres: %s %s", code ? code : "",
                 PQresultErrorMessage(r));
        PQclear(r);
        return NULL;
    }
    return r;
}

/* The session's role may insert into the table (INSERT ... ON CONFLICT needs SELECT too). */
static bool check_privileges(sink_pg_t *p, trib_sink_result_t *res)
{
    sink_str_t *q = &p->sql;
    sink_str_reset(q);
    sink_str_printf(q,
                    "SELECT has_table_privilege('%s', 'INSERT') AND has_table_privilege('%s', "
                    "'SELECT'), current_user",
                    p->table_sql, p->table_sql);
    PGresult *r = query(p, q->p, res);
    if (!r) {
        return false;
    }
    bool ok = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    if (!ok) {
        snprintf(res->msg, sizeof(res->msg),
                 "postgres: role \"%s\" may not insert into %s; run: GRANT SELECT, INSERT ON %s "
                 "TO \"%s\"",
                 PQgetvalue(r, 0, 1), p->table_sql, p->table_sql, PQgetvalue(r, 0, 1));
        res->error_class = TRIB_SINK_ERR_AUTH;
    }
    PQclear(r);
    return ok;
}

/*
 * The event id's column and its own unique key (event_id text, UNIQUE
 * (event_id); NULLs, records without an id, never conflict): added when
 * missing and create_table allows. A table without them (create_table
 * false, or adding them failed: not the table's owner) is written without
 * event ids, deduplicated on (topic, partition, offset) only, with a
 * warning naming the statement to run. True unless a query failed or the
 * column has another type (res set).
 */
static bool check_event_id(sink_pg_t *p, trib_sink_result_t *res)
{
    sink_str_t *q = &p->sql;
    sink_str_reset(q);
    sink_str_printf(q,
                    "SELECT (SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
                    "WHERE a.attrelid = '%s'::regclass AND a.attname = 'event_id' AND "
                    "a.attnum > 0 AND NOT a.attisdropped), (SELECT count(*) FROM pg_index i "
                    "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] "
                    "WHERE i.indrelid = '%s'::regclass AND i.indisunique AND i.indpred IS NULL "
                    "AND i.indexprs IS NULL AND i.indnatts = 1 AND a.attname = 'event_id')",
                    p->table_sql, p->table_sql);
    PGresult *r = query(p, q->p, res);
    if (!r) {
        return false;
    }
    bool has_col = !PQgetisnull(r, 0, 0);
    bool is_text = has_col && strcmp(PQgetvalue(r, 0, 0), "text") == 0;
    bool keyed = strcmp(PQgetvalue(r, 0, 1), "0") != 0;
    char type[64];
    snprintf(type, sizeof(type), "%s", has_col ? PQgetvalue(r, 0, 0) : "");
    PQclear(r);
    if (has_col && !is_text) {
        return schema_error(res,
                            "table %s: column \"event_id\" is %s, the sink writes text (ALTER "
                            "TABLE %s ALTER COLUMN \"event_id\" TYPE text)",
                            p->table_sql, type, p->table_sql);
    }
    if (has_col && keyed) {
        p->has_eid = true;
        return true;
    }
    sink_str_reset(q);
    sink_str_printf(q, "ALTER TABLE %s %sADD UNIQUE (event_id)", p->table_sql,
                    has_col ? "" : "ADD COLUMN event_id text, ");
    if (!p->o.create_table) {
        if (!p->eid_warned) {
            p->host->log(p->ctx, TRIB_LOG_WARN,
                         "table %s has no unique event_id column (create_table is false): "
                         "records are deduplicated on (topic, partition, offset) only, so an "
                         "event an agent sends again after a crash can land twice; run: %s",
                         p->table_sql, q->p);
            p->eid_warned = true;
        }
        return true;
    }
    if (p->dry) {
        sink_str_printf(&p->plan, "%s%s", p->plan.len ? "; " : "", q->p);
        return true;
    }
    char code[8];
    trib_sink_result_t failed = *res;
    if (!exec_ok(p, q->p, &failed, code, sizeof(code))) {
        if (PQstatus(p->conn) != CONNECTION_OK) {
            *res = failed;
            return false;
        }
        /* not the owner, duplicate ids already there...: written without event ids */
        if (!p->eid_warned) {
            p->host->log(p->ctx, TRIB_LOG_WARN,
                         "table %s: adding the event id's column and unique key failed "
                         "(SQLSTATE %s): records are deduplicated on (topic, partition, offset) "
                         "only, so an event an agent sends again after a crash can land twice; "
                         "fix the table, then run: %s",
                         p->table_sql, code, q->p);
            p->eid_warned = true;
        }
        return true;
    }
    p->host->log(p->ctx, TRIB_LOG_INFO, "added the event id's unique key: %s", q->p);
    p->has_eid = true;
    return true;
}

/*
 * Checks the table against what the writes need (see the opening comment),
 * creating what is missing when create_table allows. True when writes can
 * go ahead; false with res set (error_class SCHEMA for what someone must
 * fix, TRANSIENT for a query that failed).
 */
static bool check_table(sink_pg_t *p, trib_sink_result_t *res)
{
    sink_str_t *q = &p->sql;
    p->has_eid = false;
    sink_str_reset(q);
    sink_str_printf(q, "SELECT to_regclass('%s') IS NOT NULL", p->table_sql);
    PGresult *r = query(p, q->p, res);
    if (!r) {
        return false;
    }
    bool exists = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    PQclear(r);
    if (!exists) {
        sink_str_reset(q);
        create_sql(p, q);
        if (!p->o.create_table) {
            return schema_error(res, "table %s does not exist (create_table is false); run: %s",
                                p->table_sql, q->p);
        }
        if (p->dry) {
            sink_str_printf(&p->plan, "%s", q->p);
            return true;
        }
        /* Two tasks creating the same table at once: one may see 23505/42P07. */
        char code[8];
        if (!exec_ok(p, q->p, res, code, sizeof(code)) && strcmp(code, "23505") != 0 &&
            strcmp(code, "42P07") != 0) {
            res->error_class = strcmp(code, "42501") == 0    ? TRIB_SINK_ERR_AUTH
                               : strncmp(code, "42", 2) == 0 ? TRIB_SINK_ERR_SCHEMA
                                                             : TRIB_SINK_ERR_TRANSIENT;
            return false;
        }
        p->host->log(p->ctx, TRIB_LOG_INFO, "created table %s", p->table_sql);
        p->has_eid = true;
        return true;
    }

    /* The columns: present, and of the type written. */
    static const pg_column_t builtin[] = {
        {"topic", "text"}, {"partition", "integer"}, {"offset", "bigint"}, {"ts", "timestamptz"},
        {"key", "text"},   {"headers", "jsonb"},     {"value", "jsonb"},
    };
    size_t nb = sizeof(builtin) / sizeof(builtin[0]);
    sink_str_reset(q);
    sink_str_puts(q, "SELECT n.name, n.type, to_regtype(n.type) IS NOT NULL, a.attname IS NOT "
                     "NULL, coalesce(a.atttypid = to_regtype(n.type), false), "
                     "coalesce(format_type(a.atttypid, a.atttypmod), '') FROM (VALUES ");
    for (size_t i = 0; i < nb + p->ncols; i++) {
        const pg_column_t *c = i < nb ? &builtin[i] : &p->cols[i - nb];
        sink_str_printf(q, "%s('%s', '%s', %zu)", i ? ", " : "", c->name, c->type, i);
    }
    sink_str_printf(q,
                    ") AS n(name, type, ord) LEFT JOIN pg_attribute a ON a.attrelid = "
                    "'%s'::regclass AND a.attname = n.name AND a.attnum > 0 AND NOT "
                    "a.attisdropped ORDER BY n.ord",
                    p->table_sql);
    r = query(p, q->p, res);
    if (!r) {
        return false;
    }
    sink_str_t add, bad;
    sink_str_init(&add);
    sink_str_init(&bad);
    for (int i = 0; i < PQntuples(r); i++) {
        const char *name = PQgetvalue(r, i, 0), *type = PQgetvalue(r, i, 1);
        if (strcmp(PQgetvalue(r, i, 2), "t") != 0) {
            sink_str_printf(&bad, "%stype '%s' of column '%s' does not exist in this database",
                            bad.len ? "; " : "", type, name);
        } else if (strcmp(PQgetvalue(r, i, 3), "t") != 0) {
            sink_str_printf(&add, "%sALTER TABLE %s ADD COLUMN \"%s\" %s", add.len ? "; " : "",
                            p->table_sql, name, type);
        } else if (strcmp(PQgetvalue(r, i, 4), "t") != 0) {
            sink_str_printf(&bad,
                            "%scolumn \"%s\" is %s, the sink writes %s (ALTER TABLE %s ALTER "
                            "COLUMN \"%s\" TYPE %s USING \"%s\"::%s)",
                            bad.len ? "; " : "", name, PQgetvalue(r, i, 5), type, p->table_sql,
                            name, type, name, type);
        }
    }
    PQclear(r);
    bool ok = true;
    if (bad.len) {
        ok = schema_error(res, "table %s: %s", p->table_sql, bad.p);
    } else if (add.len && !p->o.create_table) {
        ok = schema_error(res,
                          "table %s lacks columns the sink writes (create_table is false); "
                          "run: %s",
                          p->table_sql, add.p);
    } else if (add.len && p->dry) {
        sink_str_printf(&p->plan, "%s%s", p->plan.len ? "; " : "", add.p);
    } else if (add.len) {
        ok = exec_ok(p, add.p, res, NULL, 0);
        if (ok) {
            p->host->log(p->ctx, TRIB_LOG_INFO, "added the missing columns: %s", add.p);
        } else {
            res->error_class = TRIB_SINK_ERR_SCHEMA;
        }
    }
    sink_str_fini(&add);
    sink_str_fini(&bad);
    if (!ok) {
        return false;
    }

    /* The unique key ON CONFLICT relies on: exactly (topic, partition, offset). */
    sink_str_reset(q);
    sink_str_printf(q,
                    "SELECT (SELECT count(*) FROM pg_index i WHERE i.indrelid = '%s'::regclass "
                    "AND i.indisunique AND i.indpred IS NULL AND i.indexprs IS NULL AND "
                    "i.indnatts = 3 AND (SELECT array_agg(a.attname::text ORDER BY a.attname) "
                    "FROM pg_attribute a WHERE a.attrelid = i.indrelid AND a.attnum = "
                    "ANY(i.indkey)) = ARRAY['offset', 'partition', 'topic']), (SELECT count(*) "
                    "FROM pg_index i WHERE i.indrelid = '%s'::regclass AND i.indisprimary)",
                    p->table_sql, p->table_sql);
    r = query(p, q->p, res);
    if (!r) {
        return false;
    }
    bool keyed = strcmp(PQgetvalue(r, 0, 0), "0") != 0;
    bool has_pk = strcmp(PQgetvalue(r, 0, 1), "0") != 0;
    PQclear(r);
    if (keyed) {
        return check_event_id(p, res) && check_privileges(p, res);
    }
    sink_str_reset(q);
    sink_str_printf(q, "ALTER TABLE %s ADD %s (topic, \"partition\", \"offset\")", p->table_sql,
                    has_pk ? "UNIQUE" : "PRIMARY KEY");
    if (!p->o.create_table) {
        return schema_error(res,
                            "table %s has no unique key on (topic, partition, offset), which "
                            "writing each record once needs (create_table is false); run: %s",
                            p->table_sql, q->p);
    }
    if (p->dry) {
        sink_str_printf(&p->plan, "%s%s", p->plan.len ? "; " : "", q->p);
        return true;
    }
    char code[8];
    if (!exec_ok(p, q->p, res, code, sizeof(code))) {
        return schema_error(res,
                            "table %s has no unique key on (topic, partition, offset) and adding "
                            "it failed (%s %s); fix the table, then run: %s",
                            p->table_sql, code, PQerrorMessage(p->conn), q->p);
    }
    p->host->log(p->ctx, TRIB_LOG_INFO, "added the unique key: %s", q->p);
    return check_event_id(p, res) && check_privileges(p, res);
}

static bool setup(sink_pg_t *p, trib_sink_result_t *res)
{
    sink_str_t *q = &p->sql;
    sink_str_reset(q);
    sink_str_printf(q, "SET statement_timeout = %" PRId64, p->o.statement_timeout);
    if (!exec_ok(p, q->p, res, NULL, 0)) {
        return false;
    }
    /* Tasks of one sink connect together: one at a time checks and creates, so two do not
     * add the same column or key. The lock is the session's, released right after. */
    bool serial = p->o.create_table && !p->dry;
    if (serial) {
        sink_str_reset(q);
        sink_str_printf(q, "SELECT pg_advisory_lock(hashtext('tributary-sink %s'))", p->table_sql);
        if (!exec_ok(p, q->p, res, NULL, 0)) {
            return false;
        }
    }
    bool checked = check_table(p, res);
    if (serial) {
        sink_str_reset(q);
        sink_str_printf(q, "SELECT pg_advisory_unlock(hashtext('tributary-sink %s'))",
                        p->table_sql);
        trib_sink_result_t ignored;
        exec_ok(p, q->p, &ignored, NULL, 0);
    }
    if (!checked) {
        return false;
    }
    return exec_ok(p,
                   "CREATE TEMP TABLE IF NOT EXISTS tributary_stage (topic text, "
                   "\"partition\" integer, \"offset\" bigint, ts_ms bigint, key text, "
                   "headers text, value text, event_id text) ON COMMIT DELETE ROWS",
                   res, NULL, 0);
}

/* A connection that failed: what kind of failure, from the server's message. */
static void classify_connect(sink_pg_t *p, const char *m, trib_sink_result_t *res)
{
    const char *db = p->conn ? PQdb(p->conn) : NULL;
    if (strstr(m, "database \"") && strstr(m, "does not exist")) {
        res->error_class = TRIB_SINK_ERR_DATABASE;
        snprintf(res->msg, sizeof(res->msg),
                 "postgres: database \"%s\" does not exist; run: CREATE DATABASE \"%s\" (or fix "
                 "dbname in conninfo)",
                 db ? db : "?", db ? db : "?");
        return;
    }
    if (strstr(m, "password authentication failed") || strstr(m, "no pg_hba.conf entry") ||
        (strstr(m, "role \"") && strstr(m, "does not exist")) ||
        strstr(m, "password is required") || strstr(m, "permission denied")) {
        res->error_class = TRIB_SINK_ERR_AUTH;
    }
}

static bool connect_db(sink_pg_t *p, trib_sink_result_t *res)
{
    if (p->conn && PQstatus(p->conn) == CONNECTION_OK) {
        return true;
    }
    drop_conn(p);
    char timeout[32];
    snprintf(timeout, sizeof(timeout), "%" PRId64, (p->o.connect_timeout + 999) / 1000);
    /* Later keys win: the conninfo may set application_name, not connect_timeout. */
    const char *keys[] = {"application_name", "dbname", "connect_timeout", NULL};
    const char *vals[] = {"tributary-sink", p->o.conninfo, timeout, NULL};
    p->conn = PQconnectdbParams(keys, vals, 1);
    if (!p->conn || PQstatus(p->conn) != CONNECTION_OK) {
        snprintf(res->msg, sizeof(res->msg), "postgres: cannot connect: %s",
                 p->conn ? PQerrorMessage(p->conn) : "out of memory");
        size_t n = strlen(res->msg);
        while (n > 0 && res->msg[n - 1] == '\n') {
            res->msg[--n] = '\0';
        }
        classify_connect(p, res->msg, res);
        drop_conn(p);
        p->announced = false;
        return false;
    }
    PQsetClientEncoding(p->conn, "UTF8");
    PQsetNoticeProcessor(p->conn, notice, p);
    if (!setup(p, res)) {
        tidy(res->msg);
        drop_conn(p);
        p->announced = false;
        return false;
    }
    if (!p->announced) {
        /* Once per change from failing to connected, not per connection made. */
        p->host->log(p->ctx, TRIB_LOG_INFO, "connected to %s:%s database %s, table %s checked",
                     PQhost(p->conn), PQport(p->conn), PQdb(p->conn), p->table_sql);
        p->announced = true;
    }
    return true;
}

/*
 * Appends text in COPY's text format: \ escapes for backslash, newline,
 * CR and tab; NUL (text cannot hold it) and invalid UTF-8 become U+FFFD.
 */
static void copy_text(sink_str_t *s, const uint8_t *v, size_t len)
{
    size_t run = 0;
    size_t i = 0;
    while (i < len) {
        uint8_t c = v[i];
        const char *esc = NULL;
        size_t n = 1;
        if (c >= 0x80) {
            n = sink_utf8_seq(v + i, v + len);
            if (n > 0) {
                i += n;
                continue;
            }
            n = 1;
            esc = "\xef\xbf\xbd";
        } else if (c == '\\') {
            esc = "\\\\";
        } else if (c == '\n') {
            esc = "\\n";
        } else if (c == '\r') {
            esc = "\\r";
        } else if (c == '\t') {
            esc = "\\t";
        } else if (c == 0) {
            esc = "\xef\xbf\xbd";
        }
        if (esc) {
            sink_str_append(s, v + run, i - run);
            sink_str_puts(s, esc);
            run = i + n;
        }
        i += n;
    }
    sink_str_append(s, v + run, len - run);
}

static trib_sink_status_t classify(sink_pg_t *p, const char *code)
{
    if (PQstatus(p->conn) != CONNECTION_OK) {
        drop_conn(p);
        return TRIB_SINK_RETRY;
    }
    if (code && (strncmp(code, "22", 2) == 0 || strncmp(code, "23", 2) == 0)) {
        return TRIB_SINK_REJECT;
    }
    /* Anything else may be the server's state (a dropped table, a restart):
     * start over with a fresh session. */
    drop_conn(p);
    return TRIB_SINK_RETRY;
}

/* SQLSTATEs that say the table is not what the sink needs (it changed since the check). */
static bool schema_state(const char *code)
{
    return code &&
           (strcmp(code, "42P01") == 0 || strcmp(code, "42703") == 0 ||
            strcmp(code, "42P10") == 0 || strcmp(code, "42804") == 0 || strcmp(code, "42704") == 0);
}

static trib_sink_status_t fail(sink_pg_t *p, trib_sink_result_t *res, const char *code)
{
    tidy(res->msg);
    if (code && strcmp(code, "42501") == 0) {
        /* insufficient_privilege: the role may not write the table; waiting will not help. */
        res->error_class = TRIB_SINK_ERR_AUTH;
        size_t n = strlen(res->msg);
        const char *user = p->conn ? PQuser(p->conn) : NULL;
        if (user && n < sizeof(res->msg)) {
            snprintf(res->msg + n, sizeof(res->msg) - n,
                     "; run: GRANT SELECT, INSERT ON %s TO \"%s\"", p->table_sql, user);
        }
        drop_conn(p);
        return TRIB_SINK_RETRY;
    }
    if (schema_state(code)) {
        /* Check the table again now, so the error says what to run, not just the SQLSTATE. */
        drop_conn(p);
        trib_sink_result_t again;
        memset(&again, 0, sizeof(again));
        if (!connect_db(p, &again) && again.error_class != TRIB_SINK_ERR_TRANSIENT) {
            memcpy(res->msg, again.msg, sizeof(res->msg));
            res->error_class = again.error_class;
        }
        drop_conn(p);
        return TRIB_SINK_RETRY;
    }
    trib_sink_status_t st = classify(p, code);
    if (st == TRIB_SINK_REJECT && p->conn) {
        PGresult *r = PQexec(p->conn, "ROLLBACK");
        PQclear(r);
    }
    return st;
}

/* Appends v in decimal. */
static void put_i64(sink_str_t *s, int64_t v)
{
    char d[24];
    size_t n = 0;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        d[sizeof(d) - 1 - n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0) {
        d[sizeof(d) - 1 - n++] = '-';
    }
    sink_str_append(s, d + sizeof(d) - n, n);
}

/*
 * ms since the epoch as timestamptz text, "2026-12-07 09:23:49.123+00",
 * the instant to_timestamp(ms / 1000.0) gives. False outside years
 * 1..9999 (those take the staging path, where the server converts).
 */
static bool ts_text(char out[48], int64_t ms)
{
    if (ms < -62135596800000LL || ms > 253402300799999LL) {
        return false;
    }
    int64_t secs = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
    int msec = (int)(ms - secs * 1000);
    int64_t days = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
    int sod = (int)(secs - days * 86400);
    int64_t y;
    int mon, day;
    trib_civil_from_days(days, &y, &mon, &day);
    int year = (int)y;
    snprintf(out, 48, "%04d-%02d-%02d %02d:%02d:%02d.%03d+00", year, mon, day, sod / 3600,
             sod / 60 % 60, sod % 60, msec);
    return true;
}

/*
 * The COPY rows of a batch: for the table itself (direct: ts as timestamptz
 * text) or for tributary_stage (ts_ms as an integer). False if a timestamp
 * cannot be written directly.
 */
static bool build_rows(sink_pg_t *p, const trib_sink_batch_t *b, bool direct)
{
    sink_str_t *c = &p->copy;
    sink_str_reset(c);
    sink_str_t topic;
    sink_str_init(&topic);
    copy_text(&topic, (const uint8_t *)b->topic, strlen(b->topic));
    char prefix[32];
    int plen = snprintf(prefix, sizeof(prefix), "\t%d\t", (int)b->partition);
    bool ok = !topic.err;
    for (size_t i = 0; ok && i < b->count; i++) {
        const trib_sink_record_t *r = &b->records[i];
        sink_str_append(c, topic.p, topic.len);
        sink_str_append(c, prefix, (size_t)plen);
        put_i64(c, r->offset);
        sink_str_append(c, "\t", 1);
        if (direct) {
            char ts[48];
            if (!ts_text(ts, r->timestamp)) {
                ok = false;
                break;
            }
            sink_str_puts(c, ts);
        } else {
            put_i64(c, r->timestamp);
        }
        sink_str_append(c, "\t", 1);
        if (trib_record_bytes_is_null(r->key)) {
            sink_str_puts(c, "\\N");
        } else {
            copy_text(c, r->key.ptr, (size_t)r->key.len);
        }
        sink_str_append(c, "\t", 1);
        if (r->header_count <= 0) {
            sink_str_puts(c, "{}");
        } else {
            sink_str_reset(&p->tmp);
            sink_json_headers(&p->tmp, r);
            copy_text(c, (const uint8_t *)p->tmp.p, p->tmp.len);
        }
        sink_str_append(c, "\t", 1);
        if (trib_record_bytes_is_null(r->value)) {
            sink_str_puts(c, "\\N");
        } else {
            copy_text(c, r->value.ptr, (size_t)r->value.len);
        }
        /* the event id: the staging table always has the column, the table when has_eid */
        if (!direct || p->has_eid) {
            size_t idn = 0;
            const uint8_t *id = p->has_eid ? sink_event_id(r, &idn) : NULL;
            sink_str_append(c, "\t", 1);
            if (id == NULL) {
                sink_str_puts(c, "\\N");
            } else {
                copy_text(c, id, idn);
            }
        }
        sink_str_append(c, "\n", 1);
    }
    sink_str_fini(&topic);
    return ok;
}

/* Runs COPY <target> FROM STDIN with p->copy; false with res and code set. */
static bool copy_in(sink_pg_t *p, const char *sql, trib_sink_result_t *res, char code[8])
{
    code[0] = '\0';
    PGresult *r = PQexec(p->conn, sql);
    if (PQresultStatus(r) != PGRES_COPY_IN) {
        const char *sc = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        snprintf(code, 8, "%s", sc ? sc : "");
        snprintf(res->msg, sizeof(res->msg), "postgres: COPY: %s %s", code,
                 PQresultErrorMessage(r)[0] ? PQresultErrorMessage(r) : PQerrorMessage(p->conn));
        PQclear(r);
        return false;
    }
    PQclear(r);
    if (PQputCopyData(p->conn, p->copy.p, (int)p->copy.len) != 1 ||
        PQputCopyEnd(p->conn, NULL) != 1) {
        snprintf(res->msg, sizeof(res->msg), "postgres: COPY: %s", PQerrorMessage(p->conn));
        return false;
    }
    r = PQgetResult(p->conn);
    bool copied = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!copied) {
        const char *sc = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        snprintf(code, 8, "%s", sc ? sc : "");
        snprintf(res->msg, sizeof(res->msg), "postgres: COPY: %s %s", code,
                 PQresultErrorMessage(r));
    }
    PQclear(r);
    while ((r = PQgetResult(p->conn)) != NULL) {
        PQclear(r);
    }
    return copied;
}

/* Reads known_max for the batch's partition (one index-only scan). False with res set. */
static bool read_known(sink_pg_t *p, const trib_sink_batch_t *b, trib_sink_result_t *res,
                       char code[8])
{
    if (p->known && p->known_partition == b->partition && strcmp(p->known_topic, b->topic) == 0) {
        return true;
    }
    p->known = false;
    if (strlen(b->topic) >= sizeof(p->known_topic)) {
        return true; /* never direct: the staging path needs no maximum */
    }
    sink_str_t *q = &p->sql;
    sink_str_reset(q);
    sink_str_printf(q, "SELECT max(\"offset\") FROM %s WHERE topic = $1 AND \"partition\" = $2",
                    p->table_sql);
    char part[16];
    snprintf(part, sizeof(part), "%d", (int)b->partition);
    const char *vals[2] = {b->topic, part};
    PGresult *r = PQexecParams(p->conn, q->p, 2, NULL, vals, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        const char *sc = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        snprintf(code, 8, "%s", sc ? sc : "");
        snprintf(res->msg, sizeof(res->msg), "postgres: %s %s", code, PQresultErrorMessage(r));
        PQclear(r);
        return false;
    }
    p->known_max = PQgetisnull(r, 0, 0) ? -1 : strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    snprintf(p->known_topic, sizeof(p->known_topic), "%s", b->topic);
    p->known_partition = b->partition;
    p->known = true;
    return true;
}

static trib_sink_status_t sink_pg_write(void *instance, const trib_sink_batch_t *b,
                                        trib_sink_result_t *res)
{
    sink_pg_t *p = instance;
    res->failed_index = -1;
    if (b->count == 0) {
        return TRIB_SINK_OK;
    }
    /* Values must be JSON (the column is jsonb): name the culprit now. */
    for (size_t i = 0; i < b->count; i++) {
        trib_record_bytes_t v = b->records[i].value;
        if (!trib_record_bytes_is_null(v) && !sink_json_valid(v.ptr, (size_t)v.len)) {
            res->failed_index = (int64_t)i;
            snprintf(res->msg, sizeof(res->msg),
                     "postgres: value at offset %" PRId64 " is not JSON (column value is jsonb)",
                     b->records[i].offset);
            return TRIB_SINK_REJECT;
        }
    }
    if (!connect_db(p, res)) {
        tidy(res->msg);
        /* The host logs permanent errors once per change; transient ones are ours to thin. */
        if (res->error_class == TRIB_SINK_ERR_TRANSIENT && p->failures++ % 30 == 0) {
            p->host->log(p->ctx, TRIB_LOG_WARN, "%s", res->msg);
        }
        return TRIB_SINK_RETRY;
    }
    p->failures = 0;

    char code[8] = "";
    if (p->ncols == 0 && !read_known(p, b, res, code)) {
        return fail(p, res, code);
    }
    int64_t first = b->records[0].offset, last = b->records[b->count - 1].offset;
    bool direct = p->ncols == 0 && p->known && first > p->known_max;
    /* The COPY data, built before the transaction starts. */
    if (direct && !build_rows(p, b, true)) {
        direct = false;
    }
    sink_str_t *q = &p->sql;
    uint64_t inserted = b->count;
    if (direct) {
        if (p->copy.err || p->tmp.err) {
            snprintf(res->msg, sizeof(res->msg), "postgres: out of memory");
            return TRIB_SINK_RETRY;
        }
        if (!exec_ok(p, "BEGIN", res, code, sizeof(code))) {
            return fail(p, res, code);
        }
        sink_str_reset(q);
        sink_str_printf(q,
                        "COPY %s (topic, \"partition\", \"offset\", ts, key, headers, value%s) "
                        "FROM STDIN",
                        p->table_sql, p->has_eid ? ", event_id" : "");
        bool ok = copy_in(p, q->p, res, code);
        if (ok && !exec_ok(p, "COMMIT", res, code, sizeof(code))) {
            /* A deferred unique key answers at COMMIT: the transaction is gone either way. */
            ok = false;
        }
        if (!ok && strcmp(code, "23505") == 0 && PQstatus(p->conn) == CONNECTION_OK) {
            /* Some row is there already (another writer, a hand-made row): nothing of the
             * batch was written; write it again through the staging path. */
            PGresult *r = PQexec(p->conn, "ROLLBACK");
            PQclear(r);
            p->known = false;
            direct = false;
            p->host->counter_add(p->ctx, "postgres_direct_conflicts", 1);
        } else if (!ok) {
            return fail(p, res, code);
        }
    }
    if (!direct) {
        if (!build_rows(p, b, false) || p->copy.err || p->tmp.err) {
            snprintf(res->msg, sizeof(res->msg), "postgres: out of memory");
            return TRIB_SINK_RETRY;
        }
        if (!exec_ok(p, "BEGIN", res, code, sizeof(code))) {
            return fail(p, res, code);
        }
        if (!copy_in(p, "COPY tributary_stage FROM STDIN", res, code)) {
            return fail(p, res, code[0] ? code : NULL);
        }
        sink_str_reset(q);
        sink_str_printf(
            q, "INSERT INTO %s (topic, \"partition\", \"offset\", ts, key, headers, value%s",
            p->table_sql, p->has_eid ? ", event_id" : "");
        for (size_t i = 0; i < p->ncols; i++) {
            sink_str_printf(q, ", \"%s\"", p->cols[i].name);
        }
        sink_str_puts(q, ") SELECT topic, \"partition\", \"offset\", to_timestamp(ts_ms / 1000.0), "
                         "key, headers::jsonb, value::jsonb");
        if (p->has_eid) {
            sink_str_puts(q, ", event_id");
        }
        for (size_t i = 0; i < p->ncols; i++) {
            sink_str_printf(q, ", (value::jsonb ->> '%s')::%s", p->cols[i].name, p->cols[i].type);
        }
        /* with event ids, either unique key may answer: a record sent again by its agent
         * (a new offset, the same event id) or delivered again (the same offset) */
        sink_str_puts(q, p->has_eid ? " FROM tributary_stage ON CONFLICT DO NOTHING"
                                    : " FROM tributary_stage ON CONFLICT (topic, \"partition\", "
                                      "\"offset\") DO NOTHING");
        PGresult *r = PQexec(p->conn, q->p);
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            const char *sc = PQresultErrorField(r, PG_DIAG_SQLSTATE);
            snprintf(code, sizeof(code), "%s", sc ? sc : "");
            snprintf(res->msg, sizeof(res->msg), "postgres: INSERT: %s %s", code,
                     PQresultErrorMessage(r));
            PQclear(r);
            return fail(p, res, code);
        }
        inserted = strtoull(PQcmdTuples(r), NULL, 10);
        PQclear(r);
        if (!exec_ok(p, "COMMIT", res, code, sizeof(code))) {
            return fail(p, res, code);
        }
    }
    if (p->known && last > p->known_max) {
        p->known_max = last;
    }
    p->host->counter_add(p->ctx, direct ? "postgres_batches_direct" : "postgres_batches_staged", 1);
    p->host->counter_add(p->ctx, "postgres_rows_inserted", inserted);
    if (inserted < b->count) {
        p->host->counter_add(p->ctx, "postgres_rows_duplicate", b->count - inserted);
    }
    return TRIB_SINK_OK;
}

/* Offline: the table name and `columns` (names, built-in types). */
static int sink_pg_check(const void *options, trib_error_t *err)
{
    const sink_pg_opts_t *o = options;
    sink_pg_t *p = calloc(1, sizeof(*p));
    if (!p) {
        return trib_error_set(err, -ENOMEM, "out of memory");
    }
    int rc = parse_table(p, o->table, err);
    if (rc == 0) {
        rc = parse_columns(p, o->columns ? o->columns : "", err);
    }
    free(p);
    return rc;
}

static trib_sink_status_t sink_pg_probe(void *instance, trib_sink_result_t *res)
{
    sink_pg_t *p = instance;
    /* A check changes nothing: what create_table would create is reported instead. */
    p->dry = true;
    sink_str_reset(&p->plan);
    bool ok = connect_db(p, res);
    p->dry = false;
    if (!ok) {
        tidy(res->msg);
        return TRIB_SINK_RETRY;
    }
    snprintf(res->msg, sizeof(res->msg), "connected to %s:%s database %s, table %s checked%s%s",
             PQhost(p->conn), PQport(p->conn), PQdb(p->conn), p->table_sql,
             p->plan.len ? "; at start (create_table) the sink will run: " : "",
             p->plan.len ? p->plan.p : "");
    drop_conn(p); /* the next connection checks (and creates) for real */
    p->announced = false;
    return TRIB_SINK_OK;
}

static int sink_pg_open(const trib_sink_host_t *host, trib_sink_ctx_t *ctx, const void *options,
                        void **instance, trib_error_t *err)
{
    sink_pg_t *p = calloc(1, sizeof(*p));
    if (!p) {
        return trib_error_set(err, -ENOMEM, "out of memory");
    }
    p->host = host;
    p->ctx = ctx;
    p->o = *(const sink_pg_opts_t *)options;
    sink_str_init(&p->copy);
    sink_str_init(&p->sql);
    sink_str_init(&p->tmp);
    sink_str_init(&p->plan);
    int rc = parse_table(p, p->o.table, err);
    if (rc == 0) {
        rc = parse_columns(p, p->o.columns ? p->o.columns : "", err);
    }
    if (rc != 0) {
        free(p);
        return rc;
    }
    *instance = p;
    /* Connect lazily (first write): a database that is down at start is a
     * transient failure the host retries, not a reason to refuse to start. */
    return 0;
}

static void sink_pg_close(void *instance)
{
    sink_pg_t *p = instance;
    if (!p) {
        return;
    }
    drop_conn(p);
    sink_str_fini(&p->copy);
    sink_str_fini(&p->sql);
    sink_str_fini(&p->tmp);
    sink_str_fini(&p->plan);
    free(p);
}

TRIB_SINK_EXPORT const trib_sink_descriptor_t *tributary_sink_descriptor(void);

TRIB_SINK_EXPORT const trib_sink_descriptor_t *tributary_sink_descriptor(void)
{
    static const trib_sink_descriptor_t d = {
        .abi_version = TRIB_SINK_ABI_VERSION,
        .struct_size = sizeof(trib_sink_descriptor_t),
        .name = "postgres",
        .description = "PostgreSQL through libpq: COPY into the table, or through staging and "
                       "INSERT ... ON CONFLICT DO NOTHING on the event id and (topic, partition, "
                       "offset) when a batch may overlap rows already there",
        .options = sink_pg_options,
        .options_size = sizeof(sink_pg_opts_t),
        .open = sink_pg_open,
        .write = sink_pg_write,
        .flush = NULL,
        .close = sink_pg_close,
        .details = "The table (created when create_table is true; `columns` adds one column per\n"
                   "mapped field, of its type):\n"
                   "\n"
                   "  CREATE TABLE events (\n"
                   "      topic       text        NOT NULL,\n"
                   "      \"partition\" integer     NOT NULL,\n"
                   "      \"offset\"    bigint      NOT NULL,\n"
                   "      ts          timestamptz,          -- the record's timestamp\n"
                   "      key         text,\n"
                   "      headers     jsonb,                -- {\"name\": \"value\", ...}\n"
                   "      value       jsonb,                -- the record's value (JSON)\n"
                   "      event_id    text,                 -- header event.id (NULL: none)\n"
                   "      PRIMARY KEY (topic, \"partition\", \"offset\"), UNIQUE (event_id));\n"
                   "\n"
                   "The unique key on (topic, partition, offset) is what makes a record delivered\n"
                   "twice (a retry, a restart) land once, and the unique event_id an event an\n"
                   "agent sent again after a crash (a new offset, the same event.id header):\n"
                   "batches that may overlap rows already there go through INSERT ... ON\n"
                   "CONFLICT DO NOTHING, the others are copied straight into the table (a row\n"
                   "met there rolls the COPY back and stages). A table without event_id and\n"
                   "create_table false is written keyed on (topic, partition, offset) only. At\n"
                   "each connection the sink checks the table; what is missing is created when\n"
                   "create_table is true, otherwise the error names the exact statement to run.\n"
                   "Check without starting: tributary-collector --check-config --connect.\n",
        .check = sink_pg_check,
        .probe = sink_pg_probe,
    };
    return &d;
}
