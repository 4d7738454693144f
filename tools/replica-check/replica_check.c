/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tributary-replica-check: do the replicas of each partition hold the same
 * record batches?
 *
 *   tributary-replica-check [--topic T]... [--upto hw|end|OFFSET] [--json] DIR DIR...
 *
 * Each DIR is one broker's data directory (Kafka's layout, see
 * collector/storage/storage.h). For every partition directory
 * <topic>-<partition> found in two or more of them, the batches of each
 * copy are read in offset order across its segment files and compared
 * one by one: base and last offset, partition leader epoch, CRC (each
 * batch's CRC is verified too), producer id, epoch and base sequence,
 * record count, and finally every byte. The comparison runs from the
 * latest log start among the copies up to a bound:
 *
 *   hw       (default) the smallest high watermark the copies' data dirs
 *            recorded in replication-offset-checkpoint: everything below
 *            it was committed and must be on every replica
 *   end      everything every copy holds: a shorter copy is reported
 *   OFFSET   a given offset
 *
 * A batch that starts below the bound is compared whole. The first
 * difference in a partition is reported with what each copy holds there
 * (offsets past it are not aligned any more, so the partition's
 * comparison stops). Kinds: "missing" (a copy ends, or skips offsets,
 * before the bound), "corrupt" (a CRC mismatch or malformed batch below
 * the bound), "offsets", "epoch", "crc", "producer", "records", "bytes".
 * A torn batch at the very end of a copy (a crash mid-write) is the end
 * of that copy.
 *
 * The data dirs are only read, never changed (no recovery runs), so the
 * tool may look at the directories of stopped or killed brokers. Logs that
 * compaction cleans are cleaned on each replica at its own time and may
 * legitimately differ: compare the topics whose cleanup.policy is delete.
 *
 * Exit status: 0 every compared partition is identical; 1 a partition
 * diverged; 2 an error (bad arguments, an unreadable directory or file,
 * or nothing to compare).
 *
 * The batch headers are read with the storage's own scanner and the
 * checkpoint files with its own reader; the CRC with the common batch
 * parser, so the tool reads the files exactly as the collector does.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/storage_int.h"
#include "tributary/record.h"

#define EXIT_DIVERGED 1
#define EXIT_ERROR 2

/* ---- options ---------------------------------------------------------------- */

enum upto_mode { UPTO_HW, UPTO_END, UPTO_OFFSET };

static struct {
    char **topics;
    size_t ntopics;
    enum upto_mode upto;
    int64_t upto_offset;
    bool json;
    bool verbose;
} opt;

/* ---- one copy of a partition ---------------------------------------------- */

typedef struct copy {
    const char *data_dir;
    char *dir;      /* <data_dir>/<topic>-<p> */
    int64_t hw;     /* replication-offset-checkpoint, -1 when absent */
    int64_t lso;    /* log-start-offset-checkpoint, -1 when absent */
    int64_t *bases; /* segment base offsets, sorted */
    size_t nbases;
    size_t next_seg;
    int fd;
    uint64_t seg_size;
    char seg_path[COLL_PATH_MAX];
    coll_scan_t scan;
    /* The current batch, or why there is none. */
    bool have;
    coll_batch_hdr_t h;
    uint8_t *bytes;
    trib_batch_t b;
    int64_t prev_last;             /* last offset of the previous batch, -1 */
    int status;                    /* 0; 1 ended; <0 an error at the current position */
    char why[COLL_PATH_MAX + 256]; /* for an error or a torn end */
    int64_t first_offset;          /* base of the first batch, -1 when empty */
    int64_t end_offset;            /* after the last good batch read so far */
} copy_t;

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static bool parse_base(const char *name, int64_t *base)
{
    size_t n = strlen(name), sl = strlen(COLL_LOG_SUFFIX);
    if (n != 20 + sl || strcmp(name + 20, COLL_LOG_SUFFIX) != 0) {
        return false;
    }
    int64_t v = 0;
    for (size_t i = 0; i < 20; i++) {
        if (name[i] < '0' || name[i] > '9' || v > (INT64_MAX - 9) / 10) {
            return false;
        }
        v = v * 10 + (name[i] - '0');
    }
    *base = v;
    return true;
}

/* Lists the segment files; 0 or -errno. */
static int copy_list_segments(copy_t *c)
{
    DIR *d = opendir(c->dir);
    if (!d) {
        return -errno;
    }
    size_t cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        int64_t base;
        if (!parse_base(e->d_name, &base)) {
            continue;
        }
        if (c->nbases == cap) {
            cap = cap ? cap * 2 : 16;
            int64_t *nb = realloc(c->bases, cap * sizeof(*nb));
            if (!nb) {
                closedir(d);
                return -ENOMEM;
            }
            c->bases = nb;
        }
        c->bases[c->nbases++] = base;
    }
    closedir(d);
    if (c->nbases > 1) {
        qsort(c->bases, c->nbases, sizeof(*c->bases), cmp_i64);
    }
    return 0;
}

static void copy_close_seg(copy_t *c)
{
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
}

static void copy_fail(copy_t *c, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void copy_fail(copy_t *c, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->why, sizeof(c->why), fmt, ap);
    va_end(ap);
    c->status = status;
    c->have = false;
}

/*
 * Moves to the next batch: c->have and c->h/b/bytes, or c->status 1 (the
 * end; c->why says if a torn tail ended it) or < 0 (c->why).
 */
static void copy_next(copy_t *c)
{
    free(c->bytes);
    c->bytes = NULL;
    c->have = false;
    if (c->status) {
        return;
    }
    for (;;) {
        if (c->fd < 0) {
            if (c->next_seg >= c->nbases) {
                c->status = 1;
                return;
            }
            snprintf(c->seg_path, sizeof(c->seg_path), "%s/%020" PRId64 "%s", c->dir,
                     c->bases[c->next_seg], COLL_LOG_SUFFIX);
            c->next_seg++;
            c->fd = open(c->seg_path, O_RDONLY | O_CLOEXEC);
            struct stat stb;
            if (c->fd < 0 || fstat(c->fd, &stb) != 0) {
                copy_fail(c, -errno, "%s: %s", c->seg_path, strerror(errno));
                copy_close_seg(c);
                return;
            }
            c->seg_size = (uint64_t)stb.st_size;
            coll_scan_init(&c->scan, c->fd, 0, c->seg_size);
        }
        uint64_t pos = c->scan.pos;
        int rc = coll_scan_next(&c->scan, &c->h);
        if (rc == 0) {
            copy_close_seg(c);
            continue;
        }
        if (rc == TRIB_ETRUNCATED && c->next_seg >= c->nbases) {
            /* A torn write at the end of the last segment: the end of the copy. */
            snprintf(c->why, sizeof(c->why),
                     "torn batch at %s position %" PRIu64 " (%" PRIu64 " bytes)", c->seg_path, pos,
                     c->seg_size - pos);
            c->status = 1;
            copy_close_seg(c);
            return;
        }
        if (rc < 0) {
            copy_fail(c, rc, "%s position %" PRIu64 ": %s", c->seg_path, pos, trib_strerror(rc));
            copy_close_seg(c);
            return;
        }
        rc = coll_segment_read_batch(c->fd, &c->h, &c->bytes);
        if (rc == 0) {
            rc = trib_batch_parse(&c->b, c->bytes, c->h.size, 0);
        }
        if (rc) {
            copy_fail(c, rc, "%s position %" PRIu64 " (batch %" PRId64 "..%" PRId64 "): %s",
                      c->seg_path, pos, c->h.base_offset, c->h.last_offset, trib_strerror(rc));
            copy_close_seg(c);
            return;
        }
        if (c->h.base_offset <= c->prev_last) {
            copy_fail(c, TRIB_EMALFORMED,
                      "%s position %" PRIu64 ": batch %" PRId64 "..%" PRId64
                      " does not follow offset %" PRId64,
                      c->seg_path, pos, c->h.base_offset, c->h.last_offset, c->prev_last);
            copy_close_seg(c);
            return;
        }
        c->prev_last = c->h.last_offset;
        if (c->first_offset < 0) {
            c->first_offset = c->h.base_offset;
        }
        c->end_offset = c->h.last_offset + 1;
        c->have = true;
        return;
    }
}

static void copy_free(copy_t *c)
{
    copy_close_seg(c);
    free(c->bytes);
    free(c->bases);
    free(c->dir);
}

/* ---- output ------------------------------------------------------------------ */

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') {
            fprintf(f, "\\%c", ch);
        } else if (ch < 0x20) {
            fprintf(f, "\\u%04x", ch);
        } else {
            fputc(ch, f);
        }
    }
    fputc('"', f);
}

static void json_batch(FILE *f, const copy_t *c)
{
    if (!c->have) {
        fputs("null", f);
        return;
    }
    fprintf(f,
            "{\"base_offset\": %" PRId64 ", \"last_offset\": %" PRId64
            ", \"leader_epoch\": %d, \"crc\": %u, \"producer_id\": %" PRId64
            ", \"producer_epoch\": %d, \"base_sequence\": %d, \"records\": %d, \"size\": %u}",
            c->h.base_offset, c->h.last_offset, c->h.leader_epoch, c->b.crc, c->b.producer_id,
            c->b.producer_epoch, c->b.base_sequence, c->b.record_count, c->h.size);
}

static void text_batch(FILE *f, const copy_t *c)
{
    if (!c->have) {
        if (c->status < 0) {
            fprintf(f, "unreadable: %s", c->why);
        } else {
            fprintf(f, "ends at offset %" PRId64 "%s%s", c->end_offset, c->why[0] ? ", " : "",
                    c->why);
        }
        return;
    }
    fprintf(f,
            "batch %" PRId64 "..%" PRId64 " epoch %d crc 0x%08x producer %" PRId64
            "/%d seq %d, %d records, %u bytes",
            c->h.base_offset, c->h.last_offset, c->h.leader_epoch, c->b.crc, c->b.producer_id,
            c->b.producer_epoch, c->b.base_sequence, c->b.record_count, c->h.size);
}

/* ---- one partition --------------------------------------------------------- */

typedef struct part {
    char *topic;
    int32_t partition;
    const char **dirs; /* data dirs holding it */
    size_t ndirs;
} part_t;

typedef struct totals {
    size_t compared, identical, diverged, single;
    bool first_json;
} totals_t;

static int64_t ckpt_lookup(const char *data_dir, const char *file, const char *topic,
                           int32_t partition, int *err)
{
    char path[COLL_PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", data_dir, file);
    coll_ckpt_t ck;
    coll_ckpt_init(&ck);
    trib_error_t e;
    trib_error_clear(&e);
    int rc = coll_ckpt_read(&ck, path, &e);
    int64_t v = -1;
    if (rc) {
        char msg[600];
        trib_error_format(&e, msg, sizeof(msg));
        fprintf(stderr, "tributary-replica-check: %s\n", msg);
        *err = rc;
    } else {
        v = coll_ckpt_get(&ck, topic, partition);
    }
    coll_ckpt_fini(&ck);
    return v;
}

static const char *kind_of(const copy_t *ref, const copy_t *c)
{
    const trib_batch_t *a = &ref->b, *b = &c->b;
    if (ref->h.base_offset != c->h.base_offset || ref->h.last_offset != c->h.last_offset) {
        return "offsets";
    }
    if (ref->h.leader_epoch != c->h.leader_epoch) {
        return "epoch";
    }
    if (a->crc != b->crc) {
        return "crc";
    }
    if (a->producer_id != b->producer_id || a->producer_epoch != b->producer_epoch ||
        a->base_sequence != b->base_sequence) {
        return "producer";
    }
    if (a->record_count != b->record_count) {
        return "records";
    }
    if (ref->h.size != c->h.size || memcmp(ref->bytes, c->bytes, ref->h.size) != 0) {
        return "bytes";
    }
    return NULL;
}

/* Compares one partition's copies; 0 identical, 1 diverged, 2 error. */
static int check_part(const part_t *p, totals_t *tot)
{
    size_t n = p->ndirs;
    copy_t *cs = calloc(n, sizeof(*cs));
    if (!cs) {
        fprintf(stderr, "tributary-replica-check: out of memory\n");
        return EXIT_ERROR;
    }
    int err = 0;
    for (size_t i = 0; i < n; i++) {
        copy_t *c = &cs[i];
        c->data_dir = p->dirs[i];
        c->fd = -1;
        c->prev_last = -1;
        c->first_offset = -1;
        c->end_offset = -1;
        if (asprintf(&c->dir, "%s/%s-%d", p->dirs[i], p->topic, p->partition) < 0) {
            c->dir = NULL;
            err = -ENOMEM;
            break;
        }
        c->hw = ckpt_lookup(c->data_dir, COLL_REPLICATION_FILE, p->topic, p->partition, &err);
        c->lso = ckpt_lookup(c->data_dir, COLL_LOG_START_FILE, p->topic, p->partition, &err);
        int rc = copy_list_segments(c);
        if (rc) {
            fprintf(stderr, "tributary-replica-check: %s: %s\n", c->dir, strerror(-rc));
            err = rc;
        }
    }
    if (err) {
        for (size_t i = 0; i < n; i++) {
            copy_free(&cs[i]);
        }
        free(cs);
        return EXIT_ERROR;
    }

    /* The bound. */
    int64_t upto = INT64_MAX;
    const char *upto_note = "";
    if (opt.upto == UPTO_OFFSET) {
        upto = opt.upto_offset;
    } else if (opt.upto == UPTO_HW) {
        bool any = false;
        for (size_t i = 0; i < n; i++) {
            if (cs[i].hw >= 0 && (!any || cs[i].hw < upto)) {
                upto = cs[i].hw;
                any = true;
            }
        }
        if (!any) {
            upto = 0;
            upto_note = "no copy recorded a high watermark";
        }
    }

    /* The start: the latest log start among the copies. */
    for (size_t i = 0; i < n; i++) {
        copy_next(&cs[i]);
    }
    int64_t from = 0;
    for (size_t i = 0; i < n; i++) {
        int64_t s = cs[i].have ? cs[i].h.base_offset : (cs[i].status == 1 ? cs[i].end_offset : -1);
        if (cs[i].lso > s) {
            s = cs[i].lso;
        }
        if (s > from) {
            from = s;
        }
    }
    for (size_t i = 0; i < n; i++) {
        while (cs[i].have && cs[i].h.last_offset < from) {
            copy_next(&cs[i]);
        }
    }

    /* Lockstep. */
    uint64_t batches = 0;
    const char *kind = NULL;
    int64_t at = -1;
    size_t ref_i = 0, bad_i = 0;
    for (;;) {
        /* The expected batch: the lowest base offset below the bound. */
        bool found = false;
        int64_t want = INT64_MAX;
        for (size_t i = 0; i < n; i++) {
            if (cs[i].have && cs[i].h.base_offset < upto && cs[i].h.base_offset < want) {
                want = cs[i].h.base_offset;
                ref_i = i;
                found = true;
            }
        }
        /* A copy that fails below the bound (or, with no batch left
           anywhere below it, before the bound) is corrupt. */
        for (size_t i = 0; i < n && !kind; i++) {
            int64_t fail_at = found ? want : (cs[i].end_offset >= 0 ? cs[i].end_offset : from);
            if (cs[i].status < 0 && fail_at < upto) {
                kind = "corrupt";
                at = fail_at;
                bad_i = i;
            }
        }
        if (kind || !found) {
            break;
        }
        for (size_t i = 0; i < n && !kind; i++) {
            if (!cs[i].have || cs[i].h.base_offset != want) {
                kind = "missing";
                at = want;
                bad_i = i;
            }
        }
        for (size_t i = 0; i < n && !kind; i++) {
            if (i != ref_i && (kind = kind_of(&cs[ref_i], &cs[i])) != NULL) {
                at = want;
                bad_i = i;
            }
        }
        if (kind) {
            break;
        }
        batches++;
        for (size_t i = 0; i < n; i++) {
            copy_next(&cs[i]);
        }
    }
    tot->compared++;
    int result = kind ? EXIT_DIVERGED : 0;
    if (kind) {
        tot->diverged++;
    } else {
        tot->identical++;
    }

    if (opt.json) {
        FILE *f = stdout;
        fprintf(f, "%s\n    {\"topic\": ", tot->first_json ? "" : ",");
        tot->first_json = false;
        json_str(f, p->topic);
        fprintf(f, ", \"partition\": %d, \"status\": \"%s\", \"from\": %" PRId64, p->partition,
                kind ? "diverged" : "identical", from);
        if (upto == INT64_MAX) {
            fputs(", \"upto\": null", f);
        } else {
            fprintf(f, ", \"upto\": %" PRId64, upto);
        }
        fprintf(f, ", \"batches\": %" PRIu64 ", \"note\": ", batches);
        json_str(f, upto_note);
        fputs(", \"replicas\": [", f);
        for (size_t i = 0; i < n; i++) {
            fprintf(f, "%s{\"dir\": ", i ? ", " : "");
            json_str(f, cs[i].data_dir);
            fprintf(f,
                    ", \"high_watermark\": %" PRId64 ", \"log_start_checkpoint\": %" PRId64
                    ", \"segments\": %zu}",
                    cs[i].hw, cs[i].lso, cs[i].nbases);
        }
        fputs("]", f);
        if (kind) {
            fprintf(f,
                    ", \"divergence\": {\"offset\": %" PRId64 ", \"kind\": \"%s\", \"dir\": ", at,
                    kind);
            json_str(f, cs[bad_i].data_dir);
            fputs(", \"at\": [", f);
            for (size_t i = 0; i < n; i++) {
                fprintf(f, "%s{\"dir\": ", i ? ", " : "");
                json_str(f, cs[i].data_dir);
                fputs(", \"batch\": ", f);
                json_batch(f, &cs[i]);
                fprintf(f, ", \"end_offset\": %" PRId64 ", \"error\": ", cs[i].end_offset);
                json_str(f, cs[i].why);
                fputs("}", f);
            }
            fputs("]}", f);
        }
        fputs("}", f);
    } else {
        FILE *f = stdout;
        char bound[64];
        if (upto == INT64_MAX) {
            snprintf(bound, sizeof(bound), "end");
        } else {
            snprintf(bound, sizeof(bound), "%" PRId64, upto);
        }
        if (!kind) {
            fprintf(f,
                    "%s-%d: %zu copies identical, offsets [%" PRId64 ", %s): %" PRIu64
                    " batches%s%s\n",
                    p->topic, p->partition, n, from, bound, batches, upto_note[0] ? "; " : "",
                    upto_note);
            if (opt.verbose) {
                for (size_t i = 0; i < n; i++) {
                    fprintf(f, "  %s: high watermark %" PRId64 ", %zu segments\n", cs[i].data_dir,
                            cs[i].hw, cs[i].nbases);
                }
            }
        } else {
            fprintf(f,
                    "%s-%d: DIVERGED at offset %" PRId64 " (%s, in %s), after %" PRIu64
                    " identical batches from offset %" PRId64 ", bound %s:\n",
                    p->topic, p->partition, at, kind, cs[bad_i].data_dir, batches, from, bound);
            for (size_t i = 0; i < n; i++) {
                fprintf(f, "  %s (high watermark %" PRId64 "): ", cs[i].data_dir, cs[i].hw);
                text_batch(f, &cs[i]);
                fputc('\n', f);
            }
        }
    }
    for (size_t i = 0; i < n; i++) {
        copy_free(&cs[i]);
    }
    free(cs);
    return result;
}

/* ---- discovery ----------------------------------------------------------------- */

typedef struct parts {
    part_t *v;
    size_t n, cap;
} parts_t;

static bool topic_wanted(const char *topic)
{
    if (opt.ntopics == 0) {
        return true;
    }
    for (size_t i = 0; i < opt.ntopics; i++) {
        if (strcmp(opt.topics[i], topic) == 0) {
            return true;
        }
    }
    return false;
}

/* "<topic>-<partition>" with a valid topic name; false for anything else. */
static bool parse_part_dir(const char *name, char *topic, size_t tsize, int32_t *partition)
{
    const char *dash = strrchr(name, '-');
    if (!dash || dash == name || !dash[1] || (size_t)(dash - name) >= tsize) {
        return false;
    }
    int64_t v = 0;
    for (const char *q = dash + 1; *q; q++) {
        if (*q < '0' || *q > '9' || v > INT32_MAX / 10) {
            return false;
        }
        v = v * 10 + (*q - '0');
    }
    for (const char *q = name; q < dash; q++) {
        char ch = *q;
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '_' || ch == '-')) {
            return false;
        }
    }
    memcpy(topic, name, (size_t)(dash - name));
    topic[dash - name] = '\0';
    *partition = (int32_t)v;
    return true;
}

static int add_part(parts_t *ps, const char *topic, int32_t partition, const char *dir)
{
    part_t *p = NULL;
    for (size_t i = 0; i < ps->n; i++) {
        if (ps->v[i].partition == partition && strcmp(ps->v[i].topic, topic) == 0) {
            p = &ps->v[i];
            break;
        }
    }
    if (!p) {
        if (ps->n == ps->cap) {
            size_t cap = ps->cap ? ps->cap * 2 : 32;
            part_t *nv = realloc(ps->v, cap * sizeof(*nv));
            if (!nv) {
                return -ENOMEM;
            }
            ps->v = nv;
            ps->cap = cap;
        }
        p = &ps->v[ps->n++];
        memset(p, 0, sizeof(*p));
        p->topic = strdup(topic);
        p->partition = partition;
        if (!p->topic) {
            return -ENOMEM;
        }
    }
    const char **nd = realloc(p->dirs, (p->ndirs + 1) * sizeof(*nd));
    if (!nd) {
        return -ENOMEM;
    }
    p->dirs = nd;
    p->dirs[p->ndirs++] = dir;
    return 0;
}

static int scan_data_dir(parts_t *ps, const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "tributary-replica-check: %s: %s\n", dir, strerror(errno));
        return -1;
    }
    struct dirent *e;
    int rc = 0;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        char topic[256];
        int32_t partition;
        if (!parse_part_dir(e->d_name, topic, sizeof(topic), &partition) || !topic_wanted(topic)) {
            continue;
        }
        char path[COLL_PATH_MAX];
        struct stat stb;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if (stat(path, &stb) != 0 || !S_ISDIR(stb.st_mode)) {
            continue;
        }
        rc = add_part(ps, topic, partition, dir);
    }
    closedir(d);
    if (rc) {
        fprintf(stderr, "tributary-replica-check: out of memory\n");
    }
    return rc;
}

static int cmp_part(const void *a, const void *b)
{
    const part_t *x = a, *y = b;
    int c = strcmp(x->topic, y->topic);
    return c ? c : (x->partition > y->partition) - (x->partition < y->partition);
}

/* ---- main ------------------------------------------------------------------------ */

static void usage(FILE *f, const char *prog)
{
    fprintf(f,
            "usage: %s [options] DATA_DIR DATA_DIR...\n"
            "\n"
            "Compares the copies of each partition found in two or more collector data\n"
            "directories (one per broker) batch by batch: base and last offset, leader epoch,\n"
            "CRC (verified), producer id/epoch/sequence, record count and every byte, from the\n"
            "latest log start among the copies up to a bound. The directories are only read.\n"
            "\n"
            "options:\n"
            "  -t, --topic TOPIC    only this topic (repeatable; default: every topic)\n"
            "  -u, --upto BOUND     hw: the smallest high watermark the copies recorded in\n"
            "                       replication-offset-checkpoint (default); end: everything\n"
            "                       every copy holds; or an offset\n"
            "  -j, --json           one JSON document on stdout\n"
            "  -v, --verbose        also each copy's high watermark and segment count\n"
            "  -h, --help           this text\n"
            "\n"
            "The first difference in a partition is reported with each copy's batch there:\n"
            "missing (a copy ends or skips offsets below the bound), corrupt (CRC or framing),\n"
            "offsets, epoch, crc, producer, records, bytes. A torn batch at the end of a copy\n"
            "ends it. Compacted topics are cleaned on each replica at its own time and may\n"
            "differ; compare topics with cleanup.policy delete.\n"
            "\n"
            "exit status: 0 identical, 1 a partition diverged, 2 an error or nothing to compare\n",
            prog);
}

static void parts_free(parts_t *ps)
{
    for (size_t i = 0; i < ps->n; i++) {
        free(ps->v[i].topic);
        free(ps->v[i].dirs);
    }
    free(ps->v);
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"topic", required_argument, NULL, 't'}, {"upto", required_argument, NULL, 'u'},
        {"json", no_argument, NULL, 'j'},        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},        {NULL, 0, NULL, 0},
    };
    const char *prog = "tributary-replica-check";
    opt.upto = UPTO_HW;
    int ch;
    while ((ch = getopt_long(argc, argv, "t:u:jvh", longopts, NULL)) != -1) {
        switch (ch) {
        case 't': {
            char **nt = realloc(opt.topics, (opt.ntopics + 1) * sizeof(*nt));
            if (!nt) {
                return EXIT_ERROR;
            }
            opt.topics = nt;
            opt.topics[opt.ntopics++] = optarg;
            break;
        }
        case 'u':
            if (strcmp(optarg, "hw") == 0) {
                opt.upto = UPTO_HW;
            } else if (strcmp(optarg, "end") == 0) {
                opt.upto = UPTO_END;
            } else {
                char *endp;
                errno = 0;
                long long v = strtoll(optarg, &endp, 10);
                if (errno || endp == optarg || *endp || v < 0) {
                    fprintf(stderr, "%s: --upto: expected hw, end or an offset, not '%s'\n", prog,
                            optarg);
                    return EXIT_ERROR;
                }
                opt.upto = UPTO_OFFSET;
                opt.upto_offset = v;
            }
            break;
        case 'j':
            opt.json = true;
            break;
        case 'v':
            opt.verbose = true;
            break;
        case 'h':
            usage(stdout, prog);
            return 0;
        default:
            usage(stderr, prog);
            return EXIT_ERROR;
        }
    }
    if (argc - optind < 2) {
        fprintf(stderr, "%s: give two or more data directories\n", prog);
        usage(stderr, prog);
        return EXIT_ERROR;
    }
    parts_t ps = {0};
    for (int i = optind; i < argc; i++) {
        if (scan_data_dir(&ps, argv[i]) != 0) {
            parts_free(&ps);
            free(opt.topics);
            return EXIT_ERROR;
        }
    }
    if (ps.n > 1) {
        qsort(ps.v, ps.n, sizeof(*ps.v), cmp_part);
    }

    totals_t tot = {.first_json = true};
    int worst = 0;
    if (opt.json) {
        fputs("{\"partitions\": [", stdout);
    }
    for (size_t i = 0; i < ps.n; i++) {
        part_t *p = &ps.v[i];
        if (p->ndirs < 2) {
            tot.single++;
            if (opt.verbose && !opt.json) {
                printf("%s-%d: only in %s, not compared\n", p->topic, p->partition, p->dirs[0]);
            }
            continue;
        }
        int rc = check_part(p, &tot);
        if (rc > worst) {
            worst = rc;
        }
    }
    for (size_t t = 0; t < opt.ntopics; t++) {
        bool seen = false;
        for (size_t i = 0; i < ps.n; i++) {
            seen |= ps.v[i].ndirs >= 2 && strcmp(ps.v[i].topic, opt.topics[t]) == 0;
        }
        if (!seen) {
            fprintf(stderr, "%s: topic %s: no partition of it is in two or more directories\n",
                    prog, opt.topics[t]);
            worst = EXIT_ERROR;
        }
    }
    if (tot.compared == 0 && worst == 0) {
        fprintf(stderr, "%s: no partition is in two or more of the directories\n", prog);
        worst = EXIT_ERROR;
    }
    if (opt.json) {
        printf("\n  ],\n  \"compared\": %zu, \"identical\": %zu, \"diverged\": %zu, "
               "\"single_copy\": %zu, \"exit\": %d\n}\n",
               tot.compared, tot.identical, tot.diverged, tot.single, worst);
    } else {
        printf("%zu partitions compared: %zu identical, %zu diverged; %zu with one copy\n",
               tot.compared, tot.identical, tot.diverged, tot.single);
    }
    parts_free(&ps);
    free(opt.topics);
    return worst;
}
