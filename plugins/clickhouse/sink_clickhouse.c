/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The `clickhouse` sink: batches go as HTTP POSTs of
 *
 *   INSERT INTO <database>.<table>
 *       (topic, partition, offset, timestamp, key, headers, value, event_id)
 *       FORMAT Native
 *
 * (in the URL) with the rows in ClickHouse's columnar Native format as the
 * body (encode_rows draws the layout), to ClickHouse's HTTP interface (one
 * kept-alive connection per instance). The batches of the sink's partitions
 * that are ready at the same moment share one INSERT (see "group
 * inserts"). Native is what the server reads with the least work: no text
 * to parse or unescape, no rows to take apart, and nothing to escape here.
 * The table, unless it exists, is created as
 *
 *   topic String, partition Int32, offset Int64, timestamp Int64,
 *   key Nullable(String), headers String, value Nullable(String),
 *   event_id String
 *   ENGINE = ReplacingMergeTree() ORDER BY event_id
 *
 * where event_id is the record's event.id header (the agent's stable id of
 * the event, the same when an agent sends it again after a crash), or
 * "topic/partition/offset" for a record without one. So rows the host
 * delivers again (a retry, a replay after a crash) and events an agent
 * sends again collapse into one at merge time; read with FINAL (or GROUP
 * BY event_id) to see each event exactly once before the merge. A table of
 * an earlier version, ordered by (topic, partition, offset), is still
 * written (event_id added as a column), with a warning: it collapses
 * redeliveries only. Key and value
 * are stored byte for byte, as the producer sent them (a JSON value is
 * queried with the JSONExtract / visitParam functions); headers are a JSON
 * object of strings. This works from ClickHouse 18.16 (Debian 12) on. An INSERT
 * returns once the data is written to the table's parts: that is durable.
 *
 * Before the first write, and again after a write that failed for want of
 * the table or a column, the table is checked (check_table): the database
 * exists, the table exists, has each column above with its type, and is a
 * ReplacingMergeTree ordered by event_id (or (topic, partition, offset)). A missing
 * table or column is created when create_table is true; otherwise, and for
 * a wrong type, engine or key, the write fails with error class SCHEMA
 * (DATABASE for a missing database, AUTH for refused credentials) and a
 * message holding the exact statements to run.
 *
 * Failures: transport errors, 5xx, 408 and 429 are RETRY, unless the body
 * is a ClickHouse exception about the data (a parse or type error): those,
 * and other 4xx, are REJECT (the host splits the batch to find the row).
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sink_curl.h"
#include "sinkutil.h"
#include "tributary/log.h"

typedef struct sink_ch_opts {
    const char *url;
    const char *database;
    const char *table;
    const char *user;
    const char *password;
    bool create_table;
    int64_t timeout;
    int64_t connect_timeout;
} sink_ch_opts_t;

static const trib_config_option_t sink_ch_options[] = {
    {TRIB_CONFIG_FIELD(sink_ch_opts_t, url, STRING), .def = "http://127.0.0.1:8123",
     .desc = "ClickHouse HTTP interface"},
    {TRIB_CONFIG_FIELD(sink_ch_opts_t, database, STRING), .def = "default", .min = "1", .max = "64",
     .desc = "the database the table is in (it must exist)"},
    {TRIB_CONFIG_FIELD(sink_ch_opts_t, table, STRING), .def = "events", .min = "1", .max = "64",
     .desc = "the target table ([A-Za-z_][A-Za-z0-9_]*)"},
    {TRIB_CONFIG_FIELD(sink_ch_opts_t, user, STRING), .desc = "basic auth user (none: default)"},
    {TRIB_CONFIG_FIELD(sink_ch_opts_t, password, STRING), .flags = TRIB_CONFIG_SECRET,
     .desc = "basic auth password"},
    {TRIB_CONFIG_FIELD(sink_ch_opts_t, create_table, BOOL), .def = "true",
     .desc = "create the ReplacingMergeTree table and its missing columns when they do not "
             "exist (false: report the statement to run)"},
    {TRIB_CONFIG_FIELD(sink_ch_opts_t, timeout, DURATION), .def = "60s", .min = "1s",
     .desc = "how long one INSERT may take"},
    {TRIB_CONFIG_FIELD(sink_ch_opts_t, connect_timeout, DURATION), .def = "10s", .min = "100ms",
     .desc = "how long connecting to the server may take"},
    TRIB_CONFIG_END,
};

typedef struct sink_ch {
    const trib_sink_host_t *host;
    trib_sink_ctx_t *ctx;
    sink_ch_opts_t o;
    sink_curl_t http;
    bool table_ready;
    bool eid_warned; /* "not ordered by event_id" was logged */
    char insert_url[1024];
    char query_url[1024];
    sink_str_t body; /* the batch as a Native block */
    sink_str_t hdr;  /* one record's headers as JSON */
    struct ch_group *group;
    uint64_t failures;
    bool dry;        /* probing: say what create_table would do instead of doing it */
    char plan[2048]; /* what it would do */
} sink_ch_t;

static bool ident_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64) {
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

/* ClickHouse exception codes that mean "this data cannot go in". */
static bool data_error(const sink_curl_t *c)
{
    static const int codes[] = {6, 26, 27, 38, 41, 53, 69, 70, 72, 117, 0};
    const char *b = c->body.p;
    if (!b) {
        return false;
    }
    const char *p = strstr(b, "Code: ");
    if (!p) {
        return false;
    }
    int code = atoi(p + 6);
    for (size_t i = 0; codes[i]; i++) {
        if (codes[i] == code) {
            return true;
        }
    }
    return false;
}

static trib_sink_status_t post(sink_ch_t *s, const char *url, const char *body, size_t len,
                               trib_sink_result_t *res)
{
    trib_sink_status_t st = sink_curl_post(&s->http, url, body, len);
    if (st == TRIB_SINK_RETRY && s->http.status >= 500 && data_error(&s->http)) {
        st = TRIB_SINK_REJECT;
    }
    if (st != TRIB_SINK_OK) {
        char m[400];
        sink_curl_describe(&s->http, m, sizeof(m));
        snprintf(res->msg, sizeof(res->msg), "clickhouse: %s", m);
    }
    return st;
}

/* The ClickHouse exception code in the last response, or 0. */
static int ch_code(const sink_ch_t *s)
{
    const char *b = s->http.body.p;
    const char *p = b ? strstr(b, "Code: ") : NULL;
    return p ? atoi(p + 6) : 0;
}

/* A failed query: its class from the status and the exception code. */
static void classify_failure(sink_ch_t *s, trib_sink_result_t *res)
{
    int code = ch_code(s);
    if (s->http.status == 401 || s->http.status == 403 || code == 516 || code == 192 ||
        code == 193 || code == 194 || code == 497) {
        res->error_class = TRIB_SINK_ERR_AUTH;
    } else if (code == 81) {
        res->error_class = TRIB_SINK_ERR_DATABASE;
        snprintf(res->msg, sizeof(res->msg),
                 "clickhouse: database %s does not exist at %s; run: CREATE DATABASE %s (or fix "
                 "database in the options)",
                 s->o.database, s->o.url, s->o.database);
    }
}

/* Runs a query; OK with the body in s->http.body, or RETRY with res set (and classified). */
static trib_sink_status_t query(sink_ch_t *s, const char *sql, trib_sink_result_t *res)
{
    trib_sink_status_t st = post(s, s->query_url, sql, strlen(sql), res);
    if (st != TRIB_SINK_OK) {
        classify_failure(s, res);
        return TRIB_SINK_RETRY;
    }
    return TRIB_SINK_OK;
}

static trib_sink_status_t schema_error(trib_sink_result_t *res, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static trib_sink_status_t schema_error(trib_sink_result_t *res, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = snprintf(res->msg, sizeof(res->msg), "clickhouse: ");
    vsnprintf(res->msg + n, sizeof(res->msg) - (size_t)n, fmt, ap);
    va_end(ap);
    res->error_class = TRIB_SINK_ERR_SCHEMA;
    return TRIB_SINK_RETRY;
}

static const struct {
    const char *name, *type;
} ch_columns[] = {
    {"topic", "String"},           {"partition", "Int32"},      {"offset", "Int64"},
    {"timestamp", "Int64"},        {"key", "Nullable(String)"}, {"headers", "String"},
    {"value", "Nullable(String)"}, {"event_id", "String"},
};
#define CH_NCOLUMNS (sizeof(ch_columns) / sizeof(ch_columns[0]))

static int create_sql(const sink_ch_t *s, char *sql, size_t n)
{
    return snprintf(sql, n,
                    "CREATE TABLE IF NOT EXISTS %s.%s (topic String, partition Int32, "
                    "offset Int64, timestamp Int64, key Nullable(String), headers String, "
                    "value Nullable(String), event_id String) ENGINE = ReplacingMergeTree() "
                    "ORDER BY event_id",
                    s->o.database, s->o.table);
}

/* Checks (and, as create_table allows, creates) the table: see the opening comment. */
static trib_sink_status_t check_table(sink_ch_t *s, trib_sink_result_t *res)
{
    char sql[2048];
    snprintf(sql, sizeof(sql), "SELECT count() FROM system.databases WHERE name = '%s'",
             s->o.database);
    if (query(s, sql, res) != TRIB_SINK_OK) {
        return TRIB_SINK_RETRY;
    }
    if (atoi(s->http.body.p ? s->http.body.p : "0") == 0) {
        res->error_class = TRIB_SINK_ERR_DATABASE;
        snprintf(res->msg, sizeof(res->msg),
                 "clickhouse: database %s does not exist at %s; run: CREATE DATABASE %s (or fix "
                 "database in the options)",
                 s->o.database, s->o.url, s->o.database);
        return TRIB_SINK_RETRY;
    }
    snprintf(sql, sizeof(sql),
             "SELECT engine FROM system.tables WHERE database = '%s' AND name = '%s'",
             s->o.database, s->o.table);
    if (query(s, sql, res) != TRIB_SINK_OK) {
        return TRIB_SINK_RETRY;
    }
    char engine[64] = "";
    snprintf(engine, sizeof(engine), "%s", s->http.body.p ? s->http.body.p : "");
    engine[strcspn(engine, "\n")] = '\0';
    if (!engine[0]) {
        create_sql(s, sql, sizeof(sql));
        if (!s->o.create_table) {
            return schema_error(res, "table %s.%s does not exist (create_table is false); run: %s",
                                s->o.database, s->o.table, sql);
        }
        if (s->dry) {
            snprintf(s->plan, sizeof(s->plan), "%s", sql);
            return TRIB_SINK_OK;
        }
        if (query(s, sql, res) != TRIB_SINK_OK) {
            if (res->error_class == TRIB_SINK_ERR_TRANSIENT && s->http.status != 0) {
                res->error_class = TRIB_SINK_ERR_SCHEMA;
            }
            return TRIB_SINK_RETRY;
        }
        s->host->log(s->ctx, TRIB_LOG_INFO, "created table %s.%s", s->o.database, s->o.table);
        return TRIB_SINK_OK;
    }

    /* Columns: present and of the type written. */
    snprintf(sql, sizeof(sql),
             "SELECT name, type FROM system.columns WHERE database = '%s' AND table = '%s' "
             "FORMAT TabSeparated",
             s->o.database, s->o.table);
    if (query(s, sql, res) != TRIB_SINK_OK) {
        return TRIB_SINK_RETRY;
    }
    char have[CH_NCOLUMNS][64];
    memset(have, 0, sizeof(have));
    const char *b = s->http.body.p ? s->http.body.p : "";
    while (*b) {
        const char *nl = strchr(b, '\n');
        size_t len = nl ? (size_t)(nl - b) : strlen(b);
        const char *tab = memchr(b, '\t', len);
        if (tab) {
            for (size_t i = 0; i < CH_NCOLUMNS; i++) {
                if (strlen(ch_columns[i].name) == (size_t)(tab - b) &&
                    strncmp(ch_columns[i].name, b, (size_t)(tab - b)) == 0) {
                    snprintf(have[i], sizeof(have[i]), "%.*s", (int)(len - (size_t)(tab - b) - 1),
                             tab + 1);
                }
            }
        }
        b += len + (nl ? 1 : 0);
    }
    char add[1024] = "", bad[1024] = "";
    size_t na = 0, nb = 0;
    for (size_t i = 0; i < CH_NCOLUMNS; i++) {
        if (!have[i][0] && na < sizeof(add)) {
            na += (size_t)snprintf(
                add + na, sizeof(add) - na, "%sALTER TABLE %s.%s ADD COLUMN %s %s", na ? "; " : "",
                s->o.database, s->o.table, ch_columns[i].name, ch_columns[i].type);
        } else if (have[i][0] && strcmp(have[i], ch_columns[i].type) != 0 && nb < sizeof(bad)) {
            nb +=
                (size_t)snprintf(bad + nb, sizeof(bad) - nb,
                                 "%scolumn %s is %s, the sink writes %s (ALTER TABLE %s.%s "
                                 "MODIFY COLUMN %s %s)",
                                 nb ? "; " : "", ch_columns[i].name, have[i], ch_columns[i].type,
                                 s->o.database, s->o.table, ch_columns[i].name, ch_columns[i].type);
        }
    }
    if (nb) {
        return schema_error(res, "table %s.%s: %s", s->o.database, s->o.table, bad);
    }
    if (na && !s->o.create_table) {
        return schema_error(res,
                            "table %s.%s lacks columns the sink writes (create_table is false); "
                            "run: %s",
                            s->o.database, s->o.table, add);
    }
    if (na && s->dry) {
        snprintf(s->plan, sizeof(s->plan), "%s", add);
        na = 0;
    }
    for (char *stmt = na ? add : NULL; stmt && *stmt;) {
        char *next = strstr(stmt, "; ");
        if (next) {
            *next = '\0';
        }
        if (query(s, stmt, res) != TRIB_SINK_OK) {
            if (strstr(res->msg, "already exists") == NULL) {
                res->error_class = TRIB_SINK_ERR_SCHEMA;
                return TRIB_SINK_RETRY;
            }
            /* another instance of the sink added it just now */
            res->msg[0] = '\0';
        } else {
            s->host->log(s->ctx, TRIB_LOG_INFO, "added a missing column: %s", stmt);
        }
        stmt = next ? next + 2 : NULL;
    }

    /* The engine and key that collapse a record delivered twice into one row. */
    snprintf(sql, sizeof(sql), "SHOW CREATE TABLE %s.%s FORMAT TabSeparatedRaw", s->o.database,
             s->o.table);
    if (query(s, sql, res) != TRIB_SINK_OK) {
        return TRIB_SINK_RETRY;
    }
    const char *create = s->http.body.p ? s->http.body.p : "";
    bool by_id = strstr(create, "ORDER BY event_id") || strstr(create, "ORDER BY (event_id)");
    if (strcmp(engine, "ReplacingMergeTree") == 0 && !by_id &&
        strstr(create, "ORDER BY (topic, partition, offset)") && !s->eid_warned) {
        /* a table of an earlier version: redeliveries collapse, re-sent events do not */
        s->host->log(s->ctx, TRIB_LOG_WARN,
                     "table %s.%s is ordered by (topic, partition, offset), not event_id: an "
                     "event an agent sends again after a crash stays twice; recreate it ordered "
                     "by event_id to collapse those too",
                     s->o.database, s->o.table);
        s->eid_warned = true;
    }
    if (strcmp(engine, "ReplacingMergeTree") != 0 ||
        (!by_id && !strstr(create, "ORDER BY (topic, partition, offset)"))) {
        char fix[1024];
        create_sql(s, fix, sizeof(fix));
        return schema_error(res,
                            "table %s.%s is a %s not ordered by event_id: rows "
                            "delivered twice (a retry, a restart) would stay twice; move it "
                            "aside and recreate it; run: RENAME TABLE %s.%s TO %s.%s_old; %s; "
                            "INSERT INTO %s.%s SELECT topic, partition, offset, timestamp, key, "
                            "headers, value, concat(topic, '/', toString(partition), '/', "
                            "toString(offset)) FROM %s.%s_old",
                            s->o.database, s->o.table, engine, s->o.database, s->o.table,
                            s->o.database, s->o.table, fix, s->o.database, s->o.table,
                            s->o.database, s->o.table);
    }
    return TRIB_SINK_OK;
}

static trib_sink_status_t ensure_table(sink_ch_t *s, trib_sink_result_t *res)
{
    if (s->table_ready) {
        return TRIB_SINK_OK;
    }
    trib_sink_status_t st = check_table(s, res);
    if (st == TRIB_SINK_OK) {
        s->table_ready = true;
        /* Once per change from failing (or from the start), not per batch. */
        s->host->log(s->ctx, TRIB_LOG_INFO, "table %s.%s checked at %s", s->o.database, s->o.table,
                     s->o.url);
    }
    return st;
}

/*
 * Native, the body of one INSERT: ClickHouse's own columnar format, which
 * the server takes column by column without parsing rows (500,000 agent
 * events in one INSERT took ClickHouse 18.16 1.3 CPU-seconds as Native,
 * 2.1 to 2.7 as RowBinary).
 * Each batch is one block; the blocks of a grouped INSERT follow each
 * other, and the server joins them into one part. A block:
 *
 *   LEB128 number of columns (7), LEB128 number of rows (n)
 *   then per column, in the INSERT's order: its name and its type (each
 *   a String: LEB128 length, bytes) and its n values:
 *
 *   topic      String            n x (LEB128 length, bytes)
 *   partition  Int32             n x 4 bytes, little-endian
 *   offset     Int64             n x 8 bytes, little-endian
 *   timestamp  Int64             n x 8 bytes, little-endian
 *   key        Nullable(String)  n bytes (1 = NULL), then n Strings (NULL: empty)
 *   headers    String            the headers as a JSON object ({} when none)
 *   value      Nullable(String)  as key
 *
 * Key and value are stored byte for byte (a text format would have to
 * escape them, and ClickHouse to parse them again). The body buffer is kept
 * across batches, so a batch allocates nothing once the buffer has grown to
 * the batch size.
 */
static uint8_t *put_leb128(uint8_t *w, uint64_t n)
{
    while (n >= 0x80) {
        *w++ = (uint8_t)(n | 0x80);
        n >>= 7;
    }
    *w++ = (uint8_t)n;
    return w;
}

static uint8_t *put_le(uint8_t *w, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++) {
        *w++ = (uint8_t)(v >> (8 * i));
    }
    return w;
}

static uint8_t *put_string(uint8_t *w, const void *p, size_t n)
{
    w = put_leb128(w, n);
    if (n) {
        memcpy(w, p, n);
    }
    return w + n;
}

/* Appends one String (LEB128 of a size_t takes at most 10 bytes). */
static bool add_string(sink_str_t *o, const void *p, size_t n)
{
    uint8_t *w0 = (uint8_t *)sink_str_room(o, 10 + n);
    if (!w0) {
        return false;
    }
    o->len += (size_t)(put_string(w0, p, n) - w0);
    return true;
}

static bool add_column(sink_str_t *o, const char *name, const char *type)
{
    return add_string(o, name, strlen(name)) && add_string(o, type, strlen(type));
}

/* A Nullable(String) column: the null map, then the strings. */
static bool add_nullable(sink_str_t *o, const trib_sink_batch_t *b, bool value)
{
    uint8_t *w = (uint8_t *)sink_str_room(o, b->count);
    if (!w) {
        return false;
    }
    for (size_t i = 0; i < b->count; i++) {
        w[i] = trib_record_bytes_is_null(value ? b->records[i].value : b->records[i].key);
    }
    o->len += b->count;
    for (size_t i = 0; i < b->count; i++) {
        trib_record_bytes_t v = value ? b->records[i].value : b->records[i].key;
        bool null = trib_record_bytes_is_null(v);
        if (!add_string(o, null ? NULL : v.ptr, null ? 0 : (size_t)v.len)) {
            return false;
        }
    }
    return true;
}

static bool add_ints(sink_str_t *o, const trib_sink_batch_t *b, int which)
{
    int bytes = which == 0 ? 4 : 8;
    uint8_t *w = (uint8_t *)sink_str_room(o, b->count * (size_t)bytes);
    if (!w) {
        return false;
    }
    for (size_t i = 0; i < b->count; i++) {
        const trib_sink_record_t *r = &b->records[i];
        uint64_t v = which == 0   ? (uint32_t)b->partition
                     : which == 1 ? (uint64_t)r->offset
                                  : (uint64_t)r->timestamp;
        w = put_le(w, v, bytes);
    }
    o->len += b->count * (size_t)bytes;
    return true;
}

static int encode_rows(sink_ch_t *s, const trib_sink_batch_t *b)
{
    sink_str_t *o = &s->body;
    sink_str_t *hdr = &s->hdr;
    size_t tlen = strlen(b->topic);
    uint8_t *w0 = (uint8_t *)sink_str_room(o, 20);
    if (!w0) {
        return -ENOMEM;
    }
    uint8_t *w = put_leb128(w0, CH_NCOLUMNS);
    w = put_leb128(w, b->count);
    o->len += (size_t)(w - w0);

    bool ok = add_column(o, "topic", "String");
    for (size_t i = 0; ok && i < b->count; i++) {
        ok = add_string(o, b->topic, tlen);
    }
    ok = ok && add_column(o, "partition", "Int32") && add_ints(o, b, 0);
    ok = ok && add_column(o, "offset", "Int64") && add_ints(o, b, 1);
    ok = ok && add_column(o, "timestamp", "Int64") && add_ints(o, b, 2);
    ok = ok && add_column(o, "key", "Nullable(String)") && add_nullable(o, b, false);
    ok = ok && add_column(o, "headers", "String");
    for (size_t i = 0; ok && i < b->count; i++) {
        const trib_sink_record_t *r = &b->records[i];
        if (r->header_count > 0) {
            sink_str_reset(hdr);
            sink_json_headers(hdr, r);
            ok = !hdr->err && add_string(o, hdr->p, hdr->len);
        } else {
            ok = add_string(o, "{}", 2);
        }
    }
    ok = ok && add_column(o, "value", "Nullable(String)") && add_nullable(o, b, true);
    /* the table's key: the event id, or topic/partition/offset for a record without one */
    ok = ok && add_column(o, "event_id", "String");
    for (size_t i = 0; ok && i < b->count; i++) {
        const trib_sink_record_t *r = &b->records[i];
        size_t n = 0;
        const uint8_t *id = sink_event_id(r, &n);
        if (id != NULL) {
            ok = add_string(o, id, n);
        } else {
            sink_str_reset(hdr);
            sink_str_printf(hdr, "%s/%d/%" PRId64, b->topic, (int)b->partition, r->offset);
            ok = !hdr->err && add_string(o, hdr->p, hdr->len);
        }
    }
    return ok ? 0 : -ENOMEM;
}

/* ---- group inserts ------------------------------------------------------------------- */

/*
 * The host writes each partition's batches on its own instance, up to
 * `workers` at once, and ClickHouse makes one part per INSERT: four
 * partitions at 5,000 records a batch make a part of 5,000 rows per batch,
 * and the server spends more on writing and then merging those small parts
 * than on the rows. So the instances of one sink (one table) insert
 * together, as a database commits a group: a batch that finds no INSERT
 * under way leads one with its own rows and those of every batch waiting
 * at that moment (up to CH_GROUP_MAX_ROWS / _BYTES); a batch that finds
 * one under way waits, and is taken by the next leader. While instances
 * write at once (a batch came while an INSERT was under way), a leader
 * first waits up to CH_GROUP_LINGER_MS for the sink's other instances to
 * bring their batches, and goes as soon as all of them have: without it
 * the instances settle into two halves taking turns, and twice the parts.
 * A lone writer never waits: its batch goes at once.
 *
 * The outcome is each batch's: OK for all of them when the INSERT is OK.
 * When a grouped INSERT fails, each batch in it is inserted again alone by
 * its own instance, so a failure is classified, reported and retried
 * exactly as for a lone batch (and the rows a failed INSERT may have
 * written collapse with the retried ones, keyed by (topic, partition,
 * offset) like any redelivery). A write still returns only once its rows
 * are in the table.
 */
#define CH_GROUP_MAX_ROWS 1000000u     /* under max_insert_block_size: one INSERT, one part */
#define CH_GROUP_LINGER_MS 20          /* far below what ClickHouse spends on a part */
#define CH_GROUP_MAX_BYTES (64u << 20) /* the group's buffer at most (or one batch) */

typedef enum ch_req_state {
    CH_REQ_WAITING,
    CH_REQ_TAKEN,
    CH_REQ_DONE,
    CH_REQ_ALONE
} ch_req_state_t;

typedef struct ch_req {
    struct ch_req *next;
    const sink_str_t *rows; /* the batch's Native block */
    size_t count;
    ch_req_state_t state;
} ch_req_t;

typedef struct ch_group {
    struct ch_group *next; /* in ch_groups */
    char *key;             /* sink name, newline, INSERT URL */
    int refs;
    int members; /* refs, read under mu */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    ch_req_t *waiting;   /* in arrival order */
    bool leading;        /* an INSERT is under way */
    bool contended;      /* a batch came while one was (so instances write at once) */
    sink_str_t combined; /* the leader's body when it takes more than its own batch */
} ch_group_t;

static pthread_mutex_t ch_groups_mu = PTHREAD_MUTEX_INITIALIZER;
static ch_group_t *ch_groups;

static ch_group_t *group_join(const char *sink, const char *url)
{
    size_t n = strlen(sink) + 1 + strlen(url) + 1;
    pthread_mutex_lock(&ch_groups_mu);
    ch_group_t *g = ch_groups;
    while (g && !(strlen(g->key) + 1 == n && strncmp(g->key, sink, strlen(sink)) == 0 &&
                  g->key[strlen(sink)] == '\n' && strcmp(g->key + strlen(sink) + 1, url) == 0)) {
        g = g->next;
    }
    if (!g) {
        g = calloc(1, sizeof(*g));
        char *key = g ? malloc(n) : NULL;
        if (!key) {
            free(g);
            pthread_mutex_unlock(&ch_groups_mu);
            return NULL;
        }
        snprintf(key, n, "%s\n%s", sink, url);
        g->key = key;
        pthread_mutex_init(&g->mu, NULL);
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&g->cv, &ca);
        pthread_condattr_destroy(&ca);
        g->next = ch_groups;
        ch_groups = g;
    }
    g->refs++;
    pthread_mutex_lock(&g->mu);
    g->members = g->refs;
    pthread_mutex_unlock(&g->mu);
    pthread_mutex_unlock(&ch_groups_mu);
    return g;
}

static void group_leave(ch_group_t *g)
{
    if (!g) {
        return;
    }
    pthread_mutex_lock(&ch_groups_mu);
    pthread_mutex_lock(&g->mu);
    g->members = g->refs - 1;
    pthread_mutex_unlock(&g->mu);
    if (--g->refs == 0) {
        for (ch_group_t **p = &ch_groups; *p; p = &(*p)->next) {
            if (*p == g) {
                *p = g->next;
                break;
            }
        }
        pthread_mutex_destroy(&g->mu);
        pthread_cond_destroy(&g->cv);
        sink_str_fini(&g->combined);
        free(g->key);
        free(g);
    }
    pthread_mutex_unlock(&ch_groups_mu);
}

/*
 * Inserts s->body (this batch's rows), grouped with the batches waiting
 * (see above). Returns OK, or the outcome of this batch's INSERT alone
 * with res filled as post() fills it.
 */
static trib_sink_status_t group_insert(sink_ch_t *s, size_t count, trib_sink_result_t *res)
{
    ch_group_t *g = s->group;
    if (!g) {
        s->host->counter_add(s->ctx, "clickhouse_inserts", 1);
        return post(s, s->insert_url, s->body.p, s->body.len, res);
    }
    ch_req_t me = {.rows = &s->body, .count = count, .state = CH_REQ_WAITING};
    pthread_mutex_lock(&g->mu);
    ch_req_t **tail = &g->waiting;
    while (*tail) {
        tail = &(*tail)->next;
    }
    *tail = &me;
    if (g->leading) {
        s->host->counter_add(s->ctx, "clickhouse_batches_waited", 1);
        g->contended = true;
        pthread_cond_broadcast(&g->cv); /* a leader may be lingering for this batch */
    }
    while (me.state == CH_REQ_WAITING && g->leading) {
        pthread_cond_wait(&g->cv, &g->mu);
    }
    if (me.state == CH_REQ_WAITING) {
        /* Lead: this batch first, then the others waiting, as far as the limits allow. */
        g->leading = true;
        bool linger = g->contended;
        g->contended = false;
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_nsec += CH_GROUP_LINGER_MS * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        for (;;) {
            int n = 0;
            for (ch_req_t *r = g->waiting; r; r = r->next) {
                n++;
            }
            if (!linger || n >= g->members || pthread_cond_timedwait(&g->cv, &g->mu, &until) != 0) {
                break;
            }
        }
        for (ch_req_t **p = &g->waiting; *p; p = &(*p)->next) {
            if (*p == &me) {
                *p = me.next;
                break;
            }
        }
        me.next = NULL;
        me.state = CH_REQ_TAKEN;
        ch_req_t **tail_taken = &me.next;
        size_t rows = me.count, bytes = me.rows->len, n = 1;
        for (ch_req_t **p = &g->waiting; *p;) {
            ch_req_t *r = *p;
            if (rows + r->count > CH_GROUP_MAX_ROWS || bytes + r->rows->len > CH_GROUP_MAX_BYTES) {
                p = &r->next;
                continue;
            }
            *p = r->next;
            r->next = NULL;
            r->state = CH_REQ_TAKEN;
            *tail_taken = r;
            tail_taken = &r->next;
            rows += r->count;
            bytes += r->rows->len;
            n++;
        }
        pthread_mutex_unlock(&g->mu);

        /* The taken batches' rows, one after the other, in the group's buffer (one leader
         * at a time uses it); they stay valid, since their writers wait for this INSERT. */
        const sink_str_t *body = &s->body;
        if (n > 1) {
            sink_str_t *c = &g->combined;
            sink_str_reset(c);
            for (ch_req_t *r = &me; r; r = r->next) {
                sink_str_append(c, r->rows->p, r->rows->len);
            }
            body = c;
            s->host->counter_add(s->ctx, "clickhouse_batches_grouped", n);
        }
        trib_sink_status_t st = TRIB_SINK_RETRY;
        if (!body->err) {
            st = post(s, s->insert_url, body->p, body->len, res);
            s->host->counter_add(s->ctx, "clickhouse_inserts", 1);
        }

        pthread_mutex_lock(&g->mu);
        for (ch_req_t *r = &me; r; r = r->next) {
            r->state = st == TRIB_SINK_OK || n == 1 ? CH_REQ_DONE : CH_REQ_ALONE;
        }
        g->leading = false;
        pthread_cond_broadcast(&g->cv);
        if (n == 1 || st == TRIB_SINK_OK) {
            pthread_mutex_unlock(&g->mu);
            return st;
        }
        s->host->counter_add(s->ctx, "clickhouse_group_retries", 1);
        res->msg[0] = '\0';
        res->error_class = TRIB_SINK_ERR_TRANSIENT;
    }
    while (me.state == CH_REQ_TAKEN) {
        pthread_cond_wait(&g->cv, &g->mu);
    }
    pthread_mutex_unlock(&g->mu);
    if (me.state == CH_REQ_DONE) {
        return TRIB_SINK_OK;
    }
    /* A grouped INSERT failed: this batch alone, on this instance's connection. */
    s->host->counter_add(s->ctx, "clickhouse_inserts", 1);
    return post(s, s->insert_url, s->body.p, s->body.len, res);
}

static trib_sink_status_t sink_ch_write(void *instance, const trib_sink_batch_t *b,
                                        trib_sink_result_t *res)
{
    sink_ch_t *s = instance;
    res->failed_index = -1;
    if (b->count == 0) {
        return TRIB_SINK_OK;
    }
    trib_sink_status_t st = ensure_table(s, res);
    if (st != TRIB_SINK_OK) {
        /* The host logs permanent errors once per change; transient ones are ours to thin. */
        if (res->error_class == TRIB_SINK_ERR_TRANSIENT && s->failures++ % 30 == 0) {
            s->host->log(s->ctx, TRIB_LOG_WARN, "%s", res->msg);
        }
        return st;
    }
    sink_str_t *o = &s->body;
    sink_str_reset(o);
    if (encode_rows(s, b) != 0) {
        snprintf(res->msg, sizeof(res->msg), "clickhouse: out of memory");
        return TRIB_SINK_RETRY;
    }
    st = group_insert(s, b->count, res);
    int code = st == TRIB_SINK_OK ? 0 : ch_code(s);
    if (code == 60 || code == 16 || code == 81 || code == 47) {
        /* The table, a column or the database went away: check again, so the error is the
         * statement to run rather than the exception. */
        s->table_ready = false;
        trib_sink_result_t again;
        memset(&again, 0, sizeof(again));
        if (check_table(s, &again) != TRIB_SINK_OK) {
            memcpy(res->msg, again.msg, sizeof(res->msg));
            res->error_class = again.error_class;
        }
        return TRIB_SINK_RETRY;
    }
    if (st != TRIB_SINK_OK) {
        classify_failure(s, res);
    }
    if (st == TRIB_SINK_OK) {
        s->failures = 0;
        s->host->counter_add(s->ctx, "clickhouse_rows", b->count);
    } else if (st == TRIB_SINK_RETRY && res->error_class == TRIB_SINK_ERR_TRANSIENT &&
               s->failures++ % 30 == 0) {
        s->host->log(s->ctx, TRIB_LOG_WARN, "%s", res->msg);
    }
    return st;
}

static int sink_ch_check(const void *options, trib_error_t *err)
{
    const sink_ch_opts_t *o = options;
    if (!ident_ok(o->database)) {
        return trib_error_set(err, -EINVAL, "database: '%s' is not [A-Za-z_][A-Za-z0-9_]*",
                              o->database);
    }
    if (!ident_ok(o->table)) {
        return trib_error_set(err, -EINVAL, "table: '%s' is not [A-Za-z_][A-Za-z0-9_]*", o->table);
    }
    return 0;
}

static trib_sink_status_t sink_ch_probe(void *instance, trib_sink_result_t *res)
{
    sink_ch_t *s = instance;
    s->table_ready = false;
    /* A check changes nothing: what create_table would create is reported instead. */
    s->dry = true;
    s->plan[0] = '\0';
    trib_sink_status_t st = check_table(s, res);
    s->dry = false;
    if (st == TRIB_SINK_OK) {
        snprintf(res->msg, sizeof(res->msg), "table %s.%s checked at %s", s->o.database, s->o.table,
                 s->o.url);
        if (s->plan[0]) {
            sink_str_t m;
            sink_str_init(&m);
            sink_str_printf(&m, "%s; at start (create_table) the sink will run: %s", res->msg,
                            s->plan);
            size_t n = m.err ? 0 : m.len < sizeof(res->msg) ? m.len : sizeof(res->msg) - 1;
            if (n) {
                memcpy(res->msg, m.p, n);
                res->msg[n] = '\0';
            }
            sink_str_fini(&m);
        }
    }
    return st;
}

static int sink_ch_open(const trib_sink_host_t *host, trib_sink_ctx_t *ctx, const void *options,
                        void **instance, trib_error_t *err)
{
    const sink_ch_opts_t *o = options;
    if (!ident_ok(o->database) || !ident_ok(o->table)) {
        return trib_error_set(err, -EINVAL, "database and table must be [A-Za-z_][A-Za-z0-9_]*");
    }
    sink_ch_t *s = calloc(1, sizeof(*s));
    if (!s) {
        return trib_error_set(err, -ENOMEM, "out of memory");
    }
    s->host = host;
    s->ctx = ctx;
    s->o = *o;
    sink_curl_opts_t co = {.user = o->user,
                           .password = o->password,
                           .timeout_ms = o->timeout,
                           .connect_timeout_ms = o->connect_timeout,
                           .tls_verify = true,
                           .content_type = "application/octet-stream"};
    if (sink_curl_init(&s->http, &co) != 0) {
        free(s);
        return trib_error_set(err, -ENOMEM, "cannot initialise libcurl");
    }
    sink_str_init(&s->body);
    sink_str_init(&s->hdr);
    sink_str_t q;
    sink_str_init(&q);
    char sql[384];
    snprintf(sql, sizeof(sql),
             "INSERT INTO %s.%s (topic, partition, offset, timestamp, key, headers, value, "
             "event_id) FORMAT Native",
             o->database, o->table);
    sink_str_printf(&q, "%s/?query=", o->url);
    sink_curl_escape(&s->http, &q, sql);
    int rc = 0;
    if (q.err || q.len >= sizeof(s->insert_url)) {
        rc = trib_error_set(err, -EINVAL, "url too long");
    } else {
        memcpy(s->insert_url, q.p, q.len + 1);
        snprintf(s->query_url, sizeof(s->query_url), "%s/", o->url);
    }
    sink_str_fini(&q);
    if (rc != 0) {
        sink_curl_fini(&s->http);
        sink_str_fini(&s->body);
        sink_str_fini(&s->hdr);
        free(s);
        return rc;
    }
    /* Without a group (out of memory), each batch is inserted alone. */
    s->group = group_join(host->sink_name(ctx), s->insert_url);
    *instance = s;
    return 0;
}

static void sink_ch_close(void *instance)
{
    sink_ch_t *s = instance;
    if (!s) {
        return;
    }
    group_leave(s->group);
    sink_curl_fini(&s->http);
    sink_str_fini(&s->body);
    sink_str_fini(&s->hdr);
    free(s);
}

TRIB_SINK_EXPORT const trib_sink_descriptor_t *tributary_sink_descriptor(void);

TRIB_SINK_EXPORT const trib_sink_descriptor_t *tributary_sink_descriptor(void)
{
    static const trib_sink_descriptor_t d = {
        .abi_version = TRIB_SINK_ABI_VERSION,
        .struct_size = sizeof(trib_sink_descriptor_t),
        .name = "clickhouse",
        .description = "ClickHouse over HTTP: INSERT ... FORMAT Native into a "
                       "ReplacingMergeTree keyed by the event id (or topic/partition/offset)",
        .options = sink_ch_options,
        .options_size = sizeof(sink_ch_opts_t),
        .open = sink_ch_open,
        .write = sink_ch_write,
        .flush = NULL,
        .close = sink_ch_close,
        .details = "The table (created when create_table is true; the database must exist):\n"
                   "\n"
                   "  CREATE TABLE default.events (\n"
                   "      topic     String,\n"
                   "      partition Int32,\n"
                   "      offset    Int64,\n"
                   "      timestamp Int64,             -- ms since the epoch\n"
                   "      key       Nullable(String),\n"
                   "      headers   String,            -- {\"name\":\"value\",...}\n"
                   "      value     Nullable(String),  -- the record's value\n"
                   "      event_id  String)            -- event.id, or topic/partition/offset\n"
                   "  ENGINE = ReplacingMergeTree() ORDER BY event_id;\n"
                   "\n"
                   "ReplacingMergeTree ordered by event_id is what collapses a record delivered\n"
                   "twice (a retry, a restart) and an event an agent sent again after a crash\n"
                   "(a new offset, the same event.id) into one row at merge time; read with\n"
                   "FINAL (SELECT count() FROM events FINAL) to see each event once before the\n"
                   "merge. The sink checks the table before its first write; what is missing\n"
                   "is created when create_table is true, otherwise the error names the exact\n"
                   "statements to run.\n"
                   "Rows go in ClickHouse's Native format: key and value are stored byte for\n"
                   "byte. ClickHouse writes a part per INSERT, so the batches of the sink's\n"
                   "partitions that are ready together go as one INSERT; while they write at\n"
                   "once, an INSERT waits up to 20 ms for the others' batches (the\n"
                   "tributary_sink_plugin_total counters clickhouse_inserts and\n"
                   "clickhouse_batches_grouped show how many). Larger batches make fewer\n"
                   "parts still (batch: {max_records: 25000, max_bytes: 16MiB}).\n"
                   "Check without starting: tributary-collector --check-config --connect.\n",
        .check = sink_ch_check,
        .probe = sink_ch_probe,
    };
    return &d;
}
