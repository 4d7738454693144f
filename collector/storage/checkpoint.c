/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Kafka's small text files, byte for byte as Kafka writes them, so an
 * operator (or a Kafka tool) reads them unchanged.
 *
 * Offset checkpoints in the data directory (recovery-point-offset-
 * checkpoint, replication-offset-checkpoint, log-start-offset-checkpoint,
 * cleaner-offset-checkpoint):
 *
 *   0                      version
 *   2                      number of entries
 *   my-topic 0 1234        topic, partition, offset; one line each
 *   my-topic 1 99
 *
 * leader-epoch-checkpoint in a partition directory:
 *
 *   0                      version
 *   2                      number of entries
 *   0 0                    epoch, start offset
 *   3 1500
 *
 * partition.metadata in a partition directory:
 *
 *   version: 0
 *   topic_id: Ar4xFaNTQ5W3oV8PLqVdFg      Kafka's Uuid: 16 bytes, URL-safe
 *                                          base64 without padding
 *
 * Every file is replaced atomically: written to "<name>.tmp", fdatasync'd,
 * renamed over the old one, and the directory fsync'd, so a crash leaves
 * either the old or the new content. Readers are strict about the format
 * (a wrong version, count or line is an error naming the line), and the
 * callers decide what an error means: a bad offset checkpoint only costs a
 * longer recovery, so it is logged and ignored.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/storage_int.h"
#include "tributary/kafka.h"

/* ---- files ------------------------------------------------------------------ */

/* Reads a whole (small) file; -ENOENT passes through. */
static int read_file(const char *path, char **out, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return -errno;
    }
    struct stat stb;
    if (fstat(fd, &stb) != 0) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    if (stb.st_size > (64 << 20)) {
        close(fd);
        return TRIB_ETOO_LARGE;
    }
    size_t n = (size_t)stb.st_size;
    char *buf = malloc(n + 1);
    if (!buf) {
        close(fd);
        return -ENOMEM;
    }
    ssize_t r = trib_pread_all(fd, buf, n, 0);
    close(fd);
    if (r < 0) {
        free(buf);
        return (int)r;
    }
    buf[r] = '\0';
    *out = buf;
    *len = (size_t)r;
    return 0;
}

/* A line cursor: returns the next line (NUL-terminated in place) or NULL. */
static char *next_line(char **cur, char *end)
{
    if (*cur >= end) {
        return NULL;
    }
    char *line = *cur;
    char *nl = memchr(line, '\n', (size_t)(end - line));
    if (nl) {
        *nl = '\0';
        *cur = nl + 1;
    } else {
        *cur = end;
    }
    return line;
}

static bool parse_i64(const char *s, int64_t *out)
{
    if (!*s) {
        return false;
    }
    char *e;
    errno = 0;
    long long v = strtoll(s, &e, 10);
    if (errno || *e || (s[0] != '-' && (s[0] < '0' || s[0] > '9'))) {
        return false;
    }
    *out = v;
    return true;
}

/* ---- offset checkpoints --------------------------------------------------------- */

void coll_ckpt_init(coll_ckpt_t *c)
{
    memset(c, 0, sizeof(*c));
}

void coll_ckpt_fini(coll_ckpt_t *c)
{
    for (size_t i = 0; i < c->n; i++) {
        free(c->v[i].topic);
    }
    free(c->v);
    memset(c, 0, sizeof(*c));
}

int coll_ckpt_add(coll_ckpt_t *c, const char *topic, int32_t partition, int64_t offset)
{
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 16;
        coll_ckpt_entry_t *v = realloc(c->v, cap * sizeof(*v));
        if (!v) {
            return -ENOMEM;
        }
        c->v = v;
        c->cap = cap;
    }
    char *t = strdup(topic);
    if (!t) {
        return -ENOMEM;
    }
    c->v[c->n].topic = t;
    c->v[c->n].partition = partition;
    c->v[c->n].offset = offset;
    c->n++;
    return 0;
}

int64_t coll_ckpt_get(const coll_ckpt_t *c, const char *topic, int32_t partition)
{
    for (size_t i = 0; i < c->n; i++) {
        if (c->v[i].partition == partition && strcmp(c->v[i].topic, topic) == 0) {
            return c->v[i].offset;
        }
    }
    return -1;
}

int coll_ckpt_read(coll_ckpt_t *c, const char *path, trib_error_t *err)
{
    char *buf;
    size_t len;
    int rc = read_file(path, &buf, &len);
    if (rc == -ENOENT) {
        return 0;
    }
    if (rc) {
        return trib_error_set(err, rc, "%s: %s", path, trib_strerror(rc));
    }
    char *cur = buf, *end = buf + len;
    int64_t version, count;
    char *line = next_line(&cur, end);
    int lineno = 1;
    if (!line || !parse_i64(line, &version) || version != 0) {
        rc = trib_error_setpos(err, TRIB_EMALFORMED, path, 1, 0, "expected version 0");
        goto out;
    }
    line = next_line(&cur, end);
    lineno++;
    if (!line || !parse_i64(line, &count) || count < 0) {
        rc = trib_error_setpos(err, TRIB_EMALFORMED, path, 2, 0, "expected an entry count");
        goto out;
    }
    for (int64_t i = 0; i < count; i++) {
        line = next_line(&cur, end);
        lineno++;
        char *sp2 = line ? strrchr(line, ' ') : NULL;
        char *sp1 = NULL;
        if (sp2) {
            *sp2 = '\0';
            sp1 = strrchr(line, ' ');
        }
        int64_t part, off;
        if (!sp1 || sp1 == line || !parse_i64(sp1 + 1, &part) || part < 0 || part > INT32_MAX ||
            !parse_i64(sp2 + 1, &off)) {
            rc = trib_error_setpos(err, TRIB_EMALFORMED, path, lineno, 0,
                                   "expected 'topic partition offset'");
            goto out;
        }
        *sp1 = '\0';
        rc = coll_ckpt_add(c, line, (int32_t)part, off);
        if (rc) {
            goto out;
        }
    }
    while ((line = next_line(&cur, end)) != NULL) {
        lineno++;
        if (*line) {
            rc = trib_error_setpos(err, TRIB_EMALFORMED, path, lineno, 0,
                                   "more entries than the count says");
            goto out;
        }
    }
out:
    free(buf);
    return rc;
}

int coll_ckpt_format(const coll_ckpt_t *c, char **out, size_t *len)
{
    size_t cap = 32;
    for (size_t i = 0; i < c->n; i++) {
        cap += strlen(c->v[i].topic) + 2 * 24;
    }
    char *buf = malloc(cap);
    if (!buf) {
        return -ENOMEM;
    }
    size_t n = (size_t)snprintf(buf, cap, "0\n%zu\n", c->n);
    for (size_t i = 0; i < c->n; i++) {
        n += (size_t)snprintf(buf + n, cap - n, "%s %" PRId32 " %" PRId64 "\n", c->v[i].topic,
                              c->v[i].partition, c->v[i].offset);
    }
    *out = buf;
    *len = n;
    return 0;
}

/* ---- leader-epoch-checkpoint ---------------------------------------------------- */

int coll_epoch_format(const coll_epoch_cache_t *c, char **out, size_t *len)
{
    size_t cap = 32 + c->n * 40;
    char *buf = malloc(cap);
    if (!buf) {
        return -ENOMEM;
    }
    size_t n = (size_t)snprintf(buf, cap, "0\n%zu\n", c->n);
    for (size_t i = 0; i < c->n; i++) {
        n += (size_t)snprintf(buf + n, cap - n, "%" PRId32 " %" PRId64 "\n", c->v[i].epoch,
                              c->v[i].start_offset);
    }
    *out = buf;
    *len = n;
    return 0;
}

int coll_epoch_read(coll_epoch_cache_t *c, const char *path, trib_error_t *err)
{
    char *buf;
    size_t len;
    coll_epoch_clear(c);
    int rc = read_file(path, &buf, &len);
    if (rc == -ENOENT) {
        return 0;
    }
    if (rc) {
        return trib_error_set(err, rc, "%s: %s", path, trib_strerror(rc));
    }
    char *cur = buf, *end = buf + len;
    int64_t version, count;
    char *line = next_line(&cur, end);
    int lineno = 1;
    if (!line || !parse_i64(line, &version) || version != 0) {
        rc = trib_error_setpos(err, TRIB_EMALFORMED, path, 1, 0, "expected version 0");
        goto out;
    }
    line = next_line(&cur, end);
    lineno++;
    if (!line || !parse_i64(line, &count) || count < 0) {
        rc = trib_error_setpos(err, TRIB_EMALFORMED, path, 2, 0, "expected an entry count");
        goto out;
    }
    for (int64_t i = 0; i < count; i++) {
        line = next_line(&cur, end);
        lineno++;
        char *sp = line ? strchr(line, ' ') : NULL;
        int64_t epoch, start;
        if (sp) {
            *sp = '\0';
        }
        if (!sp || !parse_i64(line, &epoch) || epoch < 0 || epoch > INT32_MAX ||
            !parse_i64(sp + 1, &start) || start < 0) {
            rc = trib_error_setpos(err, TRIB_EMALFORMED, path, lineno, 0,
                                   "expected 'epoch startOffset'");
            goto out;
        }
        if (c->n > 0 &&
            ((int32_t)epoch <= c->v[c->n - 1].epoch || start < c->v[c->n - 1].start_offset)) {
            rc = trib_error_setpos(err, TRIB_EMALFORMED, path, lineno, 0,
                                   "epochs and offsets must increase");
            goto out;
        }
        if (coll_epoch_assign(c, (int32_t)epoch, start) < 0) {
            rc = -ENOMEM;
            goto out;
        }
    }
out:
    if (rc) {
        coll_epoch_clear(c);
    }
    free(buf);
    return rc;
}

/* ---- partition.metadata --------------------------------------------------------- */

int coll_metadata_format(const uint8_t topic_id[16], char **out, size_t *len)
{
    char b64[23];
    trib_uuid_t id;
    memcpy(id.b, topic_id, sizeof(id.b));
    trib_uuid_format(&id, b64);
    char *buf = malloc(64);
    if (!buf) {
        return -ENOMEM;
    }
    *len = (size_t)snprintf(buf, 64, "version: 0\ntopic_id: %s\n", b64);
    *out = buf;
    return 0;
}

int coll_metadata_read(const char *path, uint8_t topic_id[16], trib_error_t *err)
{
    char *buf;
    size_t len;
    int rc = read_file(path, &buf, &len);
    if (rc == -ENOENT) {
        return TRIB_ENOT_FOUND;
    }
    if (rc) {
        return trib_error_set(err, rc, "%s: %s", path, trib_strerror(rc));
    }
    char *cur = buf, *end = buf + len;
    char *line = next_line(&cur, end);
    if (!line || strcmp(line, "version: 0") != 0) {
        rc = trib_error_setpos(err, TRIB_EMALFORMED, path, 1, 0, "expected 'version: 0'");
        goto out;
    }
    line = next_line(&cur, end);
    trib_uuid_t id;
    if (!line || strncmp(line, "topic_id: ", 10) != 0 ||
        trib_uuid_parse(line + 10, strlen(line + 10), &id) != 0) {
        rc = trib_error_setpos(err, TRIB_EMALFORMED, path, 2, 0, "expected 'topic_id: <uuid>'");
        goto out;
    }
    memcpy(topic_id, id.b, sizeof(id.b));
out:
    free(buf);
    return rc;
}
