/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The `postgres` sink: records into a PostgreSQL table through libpq, each
 * batch in one transaction:
 *
 *   BEGIN
 *   COPY tributary_stage FROM STDIN          -- a temp table, ON COMMIT DELETE ROWS
 *   INSERT INTO <table> (...) SELECT ... FROM tributary_stage
 *       ON CONFLICT (topic, "partition", "offset") DO NOTHING
 *   COMMIT
 *
 * so a batch the host delivers again (after a retry, or after a crash
 * before the offset commit) inserts nothing twice. The table, unless it
 * exists, is created as
 *
 *   topic text, "partition" integer, "offset" bigint, ts timestamptz,
 *   key text, headers jsonb, value jsonb, <mapped columns>,
 *   PRIMARY KEY (topic, "partition", "offset")
 *
 * where `columns: "host, status:integer"` maps top-level fields of the
 * value to columns ((value->>'status')::integer). A write is durable when
 * COMMIT returns (the server's synchronous_commit decides what that means).
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
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "sinkutil.h"
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
     .desc = "value fields mapped to their own columns: \"host, status:integer\" (type default "
             "text)"},
    {TRIB_CONFIG_FIELD(sink_pg_opts_t, create_table, BOOL), .def = "true",
     .desc = "create the table when it does not exist"},
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
} sink_pg_t;

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

static bool setup(sink_pg_t *p, trib_sink_result_t *res)
{
    sink_str_t *q = &p->sql;
    sink_str_reset(q);
    sink_str_printf(q, "SET statement_timeout = %" PRId64, p->o.statement_timeout);
    if (!exec_ok(p, q->p, res, NULL, 0)) {
        return false;
    }
    if (p->o.create_table) {
        sink_str_reset(q);
        sink_str_printf(q,
                        "CREATE TABLE IF NOT EXISTS %s (topic text NOT NULL, "
                        "\"partition\" integer NOT NULL, \"offset\" bigint NOT NULL, "
                        "ts timestamptz, key text, headers jsonb, value jsonb",
                        p->table_sql);
        for (size_t i = 0; i < p->ncols; i++) {
            sink_str_printf(q, ", \"%s\" %s", p->cols[i].name, p->cols[i].type);
        }
        sink_str_puts(q, ", PRIMARY KEY (topic, \"partition\", \"offset\"))");
        /* Two tasks creating the same table at once: one may see 23505/42P07. */
        char code[8];
        if (!exec_ok(p, q->p, res, code, sizeof(code)) && strcmp(code, "23505") != 0 &&
            strcmp(code, "42P07") != 0) {
            return false;
        }
    }
    return exec_ok(p,
                   "CREATE TEMP TABLE IF NOT EXISTS tributary_stage (topic text, "
                   "\"partition\" integer, \"offset\" bigint, ts_ms bigint, key text, "
                   "headers text, value text) ON COMMIT DELETE ROWS",
                   res, NULL, 0);
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
        drop_conn(p);
        return false;
    }
    PQsetClientEncoding(p->conn, "UTF8");
    PQsetNoticeProcessor(p->conn, notice, p);
    if (!setup(p, res)) {
        drop_conn(p);
        return false;
    }
    p->host->log(p->ctx, TRIB_LOG_INFO, "connected to %s:%s database %s, table %s", PQhost(p->conn),
                 PQport(p->conn), PQdb(p->conn), p->table_sql);
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

static trib_sink_status_t fail(sink_pg_t *p, trib_sink_result_t *res, const char *code)
{
    tidy(res->msg);
    trib_sink_status_t st = classify(p, code);
    if (st == TRIB_SINK_REJECT && p->conn) {
        PGresult *r = PQexec(p->conn, "ROLLBACK");
        PQclear(r);
    }
    return st;
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
        if (p->failures++ % 30 == 0) {
            p->host->log(p->ctx, TRIB_LOG_WARN, "%s", res->msg);
        }
        return TRIB_SINK_RETRY;
    }
    p->failures = 0;

    /* The COPY data, built before the transaction starts. */
    sink_str_t *c = &p->copy;
    sink_str_reset(c);
    for (size_t i = 0; i < b->count; i++) {
        const trib_sink_record_t *r = &b->records[i];
        copy_text(c, (const uint8_t *)b->topic, strlen(b->topic));
        sink_str_printf(c, "\t%d\t%" PRId64 "\t%" PRId64 "\t", (int)b->partition, r->offset,
                        r->timestamp);
        if (trib_record_bytes_is_null(r->key)) {
            sink_str_puts(c, "\\N");
        } else {
            copy_text(c, r->key.ptr, (size_t)r->key.len);
        }
        sink_str_append(c, "\t", 1);
        sink_str_reset(&p->tmp);
        sink_json_headers(&p->tmp, r);
        copy_text(c, (const uint8_t *)p->tmp.p, p->tmp.len);
        sink_str_append(c, "\t", 1);
        if (trib_record_bytes_is_null(r->value)) {
            sink_str_puts(c, "\\N");
        } else {
            copy_text(c, r->value.ptr, (size_t)r->value.len);
        }
        sink_str_append(c, "\n", 1);
    }
    if (c->err || p->tmp.err) {
        snprintf(res->msg, sizeof(res->msg), "postgres: out of memory");
        return TRIB_SINK_RETRY;
    }

    char code[8] = "";
    if (!exec_ok(p, "BEGIN", res, code, sizeof(code))) {
        return fail(p, res, code);
    }
    PGresult *r = PQexec(p->conn, "COPY tributary_stage FROM STDIN");
    if (PQresultStatus(r) != PGRES_COPY_IN) {
        PQclear(r);
        snprintf(res->msg, sizeof(res->msg), "postgres: COPY: %s", PQerrorMessage(p->conn));
        return fail(p, res, NULL);
    }
    PQclear(r);
    if (PQputCopyData(p->conn, c->p, (int)c->len) != 1 || PQputCopyEnd(p->conn, NULL) != 1) {
        snprintf(res->msg, sizeof(res->msg), "postgres: COPY: %s", PQerrorMessage(p->conn));
        return fail(p, res, NULL);
    }
    r = PQgetResult(p->conn);
    bool copied = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!copied) {
        const char *sc = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        snprintf(code, sizeof(code), "%s", sc ? sc : "");
        snprintf(res->msg, sizeof(res->msg), "postgres: COPY: %s %s", code,
                 PQresultErrorMessage(r));
    }
    PQclear(r);
    while ((r = PQgetResult(p->conn)) != NULL) {
        PQclear(r);
    }
    if (!copied) {
        return fail(p, res, code);
    }

    sink_str_t *q = &p->sql;
    sink_str_reset(q);
    sink_str_printf(q, "INSERT INTO %s (topic, \"partition\", \"offset\", ts, key, headers, value",
                    p->table_sql);
    for (size_t i = 0; i < p->ncols; i++) {
        sink_str_printf(q, ", \"%s\"", p->cols[i].name);
    }
    sink_str_puts(q, ") SELECT topic, \"partition\", \"offset\", to_timestamp(ts_ms / 1000.0), "
                     "key, headers::jsonb, value::jsonb");
    for (size_t i = 0; i < p->ncols; i++) {
        sink_str_printf(q, ", (value::jsonb ->> '%s')::%s", p->cols[i].name, p->cols[i].type);
    }
    sink_str_puts(q, " FROM tributary_stage ON CONFLICT (topic, \"partition\", \"offset\") "
                     "DO NOTHING");
    r = PQexec(p->conn, q->p);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        const char *sc = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        snprintf(code, sizeof(code), "%s", sc ? sc : "");
        snprintf(res->msg, sizeof(res->msg), "postgres: INSERT: %s %s", code,
                 PQresultErrorMessage(r));
        PQclear(r);
        return fail(p, res, code);
    }
    uint64_t inserted = strtoull(PQcmdTuples(r), NULL, 10);
    PQclear(r);
    if (!exec_ok(p, "COMMIT", res, code, sizeof(code))) {
        return fail(p, res, code);
    }
    p->host->counter_add(p->ctx, "postgres_rows_inserted", inserted);
    if (inserted < b->count) {
        p->host->counter_add(p->ctx, "postgres_rows_duplicate", b->count - inserted);
    }
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
    free(p);
}

TRIB_SINK_EXPORT const trib_sink_descriptor_t *tributary_sink_descriptor(void);

TRIB_SINK_EXPORT const trib_sink_descriptor_t *tributary_sink_descriptor(void)
{
    static const trib_sink_descriptor_t d = {
        .abi_version = TRIB_SINK_ABI_VERSION,
        .struct_size = sizeof(trib_sink_descriptor_t),
        .name = "postgres",
        .description = "PostgreSQL through libpq: COPY to staging, INSERT ... ON CONFLICT DO "
                       "NOTHING on (topic, partition, offset)",
        .options = sink_pg_options,
        .options_size = sizeof(sink_pg_opts_t),
        .open = sink_pg_open,
        .write = sink_pg_write,
        .flush = NULL,
        .close = sink_pg_close,
    };
    return &d;
}
