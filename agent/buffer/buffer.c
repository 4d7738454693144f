/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The agent's crash-safe disk buffer (interface and directory layout in
 * buffer.h).
 *
 * Segment header, 32 bytes, little-endian:
 *
 *   offset  size  field
 *   0       8     magic "TRIBBUF1"
 *   8       4     format version (1)
 *   12      4     reserved, 0
 *   16      8     first id (must equal the id in the file name)
 *   24      4     reserved, 0
 *   28      4     crc32c of bytes 0..27
 *
 * Then frames, one per record:
 *
 *   0       4     payload length n (REC_MIN_PAYLOAD..REC_MAX_PAYLOAD)
 *   4       4     crc32c(payload)
 *   8       n     payload
 *
 * Payload (version 1):
 *
 *   u8   version (1)
 *   u64  record id
 *   i64  timestamp, ms
 *   u16  topic length, topic bytes
 *   u32  key length (0xFFFFFFFF: no key), key bytes
 *   u32  value length, value bytes
 *   u8   header count (<= AGENT_BUFFER_MAX_HDRS)
 *   per header: u16 name length, name, u32 value length (0xFFFFFFFF: null
 *   value), value
 *
 * Every frame carries its own id, so after a damaged region is cut out the
 * surviving records keep their ids, and a resync can check that the id of
 * a candidate frame is in the range the segment covers before it computes
 * a CRC.
 *
 * Ledger, 20 bytes: magic "TRIBLDG1", u64 first unacknowledged id,
 * u32 crc32c of the first 16 bytes. Written to ledger.tmp, fsynced, renamed
 * and the directory fsynced.
 *
 * Invariants:
 * - Ids are consecutive over the buffer's life, except where recovery
 *   found records missing (damaged or quarantined): those ids are "gaps",
 *   marked in the ack bitmap as if acknowledged, so the prefix moves past
 *   them.
 * - Segment i holds ids in [segs[i].first_id, segs[i+1].first_id); the last
 *   segment is the one appended to. A segment is deleted only after the
 *   ledger says every id below the next segment's first id was delivered.
 * - The ack bitmap covers [bm_base, bm_base + 64 * bm_words); bm_base <=
 *   prefix, and a bit is set for an id that was acknowledged or is a gap.
 *   Ids below bm_base read as set.
 * - Only the prefix is persisted. Records acknowledged out of order above
 *   the prefix are delivered again after a restart (at-least-once). Within
 *   one run, rewind() skips them: they are never handed out twice.
 *
 * Recovery rewrites a segment with corrupt frames: the original is copied
 * to quarantine/<name>.corrupt, and the intact frames (in order, with their
 * ids) are written to <name>.tmp, fsynced and renamed over it. So the
 * reader at run time never meets damage recovery already found. Damage that
 * appears while running (a frame that fails when read) is skipped the same
 * way, with an error logged: the reader resyncs on the next intact frame
 * of the segment, and the ids of the records lost become gaps.
 *
 * Recovery at open, in order: the ledger (damaged: start from the first
 * segment); the segment names in id order; headers (the last segment cut
 * inside its header was being created: removed, counted as torn; any other
 * bad header: moved to quarantine/); segments wholly below the ledger are
 * deleted (a deletion the last run did not finish); then every frame of
 * every other segment is checked (mmap, CRC). A damaged stretch at the end
 * of the last segment that begins with an incomplete frame, or is zeros,
 * is a torn tail and is truncated; other damage is resynced over as above.
 * check and dump run the same scan read-only.
 */
#include "buffer.h"
#include "event.h"

#include "tributary/crc32c.h"
#include "tributary/error.h"
#include "tributary/fileio.h"
#include "tributary/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#define FAC "buffer"

#define SEG_MAGIC "TRIBBUF1"
#define SEG_VERSION 1u
#define SEG_HDR 32u
#define FRAME_HDR 8u
#define REC_VERSION 1u
/* version, id, ts, topic len, key len, value len, header count */
#define REC_MIN_PAYLOAD (1u + 8u + 8u + 2u + 4u + 4u + 1u)
#define REC_MAX_PAYLOAD (64u << 20)
#define NULL_LEN 0xFFFFFFFFu
#define LEDGER_MAGIC "TRIBLDG1"
#define LEDGER_SIZE 20u
#define DEFAULT_SEGMENT_SIZE (8u << 20)
#define READ_CHUNK (256u << 10)
#define SEG_NAME_LEN 28 /* "seg-" + 20 digits + ".buf" */

typedef struct seg {
    uint64_t first_id;
    uint64_t size;
    bool needs_sync; /* written and closed since the last sync */
} seg_t;

struct agent_buffer {
    char *dir;
    uint64_t max_size;
    uint64_t segment_size;
    bool disk_full; /* the last append found the filesystem full */

    seg_t *segs;
    size_t nsegs, segs_cap;
    int wfd; /* the last segment, appended to */
    /* A failed write left a partial frame after segs[nsegs - 1].size that
       could not be cut off yet: appends retry the cut first and are
       refused while it fails, so no frame and no new segment ever follows
       the partial one (at the next open it is the last segment's torn
       tail). */
    bool cut_pending;
    int lock_fd; /* dir/lock, write-locked (OFD lock) while open */
    uint64_t bytes;
    uint64_t next_id;
    uint64_t prefix;    /* first id not acknowledged */
    uint64_t ledger_id; /* prefix as the ledger holds it (0: none written) */
    bool dir_dirty;     /* a segment was created or removed since the last sync */

    uint64_t *bm;
    size_t bm_words;
    uint64_t bm_base;
    uint64_t nset; /* bits set at or above prefix */

    /* Read cursor: the frame at roff in segs[rseg]; rlast is the id of the
       frame before it (ids only grow within a segment). */
    size_t rseg;
    uint64_t roff;
    uint64_t rlast;
    int rfd;
    uint64_t rfd_id;
    uint8_t *rbuf;
    size_t rbuf_cap, rbuf_len;
    uint64_t rbuf_off;
    uint64_t rbuf_id;   /* first id of the segment rbuf holds bytes of; 0: none */
    uint64_t handed_hi; /* one past the highest id handed out since open/rewind */
    uint64_t inflight;
    /* The cursor before the last record next() handed out, for unnext(). */
    bool un_ok;
    size_t un_seg;
    uint64_t un_off, un_last, un_handed_hi;

    uint8_t *wbuf;
    size_t wbuf_cap;

    agent_buffer_stats_t st;
    trib_log_ratelimit_t rl;
};

/* ---------------------------------------------------------------------- */
/* Little-endian helpers and the sticky-error payload reader.             */

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
    return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

typedef struct rd {
    const uint8_t *p;
    size_t n;
    bool err;
} rd_t;

static const uint8_t *rd_take(rd_t *r, size_t n)
{
    if (r->err || n > r->n) {
        r->err = true;
        return NULL;
    }
    const uint8_t *p = r->p;
    r->p += n;
    r->n -= n;
    return p;
}

static uint64_t rd_uint(rd_t *r, size_t n)
{
    const uint8_t *p = rd_take(r, n);
    uint64_t v = 0;
    if (p != NULL) {
        for (size_t i = 0; i < n; i++) {
            v |= (uint64_t)p[i] << (8 * i);
        }
    }
    return v;
}

/* ---------------------------------------------------------------------- */
/* Record encoding.                                                       */

/* Payload size, or 0 when the record cannot be encoded (a length does not
   fit its field, too many headers, or larger than REC_MAX_PAYLOAD). */
static size_t payload_size(const agent_buffer_rec_t *r)
{
    if (r->nhdrs > AGENT_BUFFER_MAX_HDRS || r->topic_len > UINT16_MAX || r->value_len >= NULL_LEN ||
        (r->key != NULL && r->key_len >= NULL_LEN)) {
        return 0;
    }
    uint64_t n = REC_MIN_PAYLOAD + (uint64_t)r->topic_len + r->value_len;
    if (r->key != NULL) {
        n += r->key_len;
    }
    for (size_t i = 0; i < r->nhdrs; i++) {
        const agent_buffer_hdr_t *h = &r->hdrs[i];
        if (h->nlen > UINT16_MAX || h->vlen >= NULL_LEN) {
            return 0;
        }
        n += 2 + 4 + (uint64_t)h->nlen + (h->val != NULL ? h->vlen : 0);
    }
    return n > REC_MAX_PAYLOAD ? 0 : (size_t)n;
}

static uint8_t *put_bytes(uint8_t *p, const void *src, size_t n)
{
    if (n > 0) {
        memcpy(p, src, n);
    }
    return p + n;
}

/* Writes the frame (header and payload) for record `id` to p. */
static void frame_encode(uint8_t *p, size_t plen, const agent_buffer_rec_t *r, uint64_t id)
{
    uint8_t *q = p + FRAME_HDR;
    *q++ = REC_VERSION;
    put64(q, id);
    q += 8;
    put64(q, (uint64_t)r->ts_ms);
    q += 8;
    put16(q, (uint16_t)r->topic_len);
    q = put_bytes(q + 2, r->topic, r->topic_len);
    if (r->key == NULL) {
        put32(q, NULL_LEN);
        q += 4;
    } else {
        put32(q, (uint32_t)r->key_len);
        q = put_bytes(q + 4, r->key, r->key_len);
    }
    put32(q, (uint32_t)r->value_len);
    q = put_bytes(q + 4, r->value, r->value_len);
    *q++ = (uint8_t)r->nhdrs;
    for (size_t i = 0; i < r->nhdrs; i++) {
        const agent_buffer_hdr_t *h = &r->hdrs[i];
        put16(q, (uint16_t)h->nlen);
        q = put_bytes(q + 2, h->name, h->nlen);
        if (h->val == NULL) {
            put32(q, NULL_LEN);
            q += 4;
        } else {
            put32(q, (uint32_t)h->vlen);
            q = put_bytes(q + 4, h->val, h->vlen);
        }
    }
    put32(p, (uint32_t)plen);
    put32(p + 4, trib_crc32c(0, p + FRAME_HDR, plen));
}

/* Decodes a payload whose CRC was checked; pointers point into p. 0 or
   TRIB_EMALFORMED. */
static int payload_decode(const uint8_t *p, size_t n, uint64_t *id, agent_buffer_rec_t *r)
{
    rd_t s = {p, n, false};
    memset(r, 0, sizeof(*r));
    if (rd_uint(&s, 1) != REC_VERSION) {
        return TRIB_EMALFORMED;
    }
    *id = rd_uint(&s, 8);
    r->ts_ms = (int64_t)rd_uint(&s, 8);
    r->topic_len = (size_t)rd_uint(&s, 2);
    r->topic = (const char *)rd_take(&s, r->topic_len);
    uint32_t klen = (uint32_t)rd_uint(&s, 4);
    if (klen != NULL_LEN) {
        r->key_len = klen;
        r->key = (const char *)rd_take(&s, klen);
    }
    r->value_len = (size_t)rd_uint(&s, 4);
    r->value = (const char *)rd_take(&s, r->value_len);
    r->nhdrs = (size_t)rd_uint(&s, 1);
    if (r->nhdrs > AGENT_BUFFER_MAX_HDRS) {
        return TRIB_EMALFORMED;
    }
    for (size_t i = 0; i < r->nhdrs && !s.err; i++) {
        agent_buffer_hdr_t *h = &r->hdrs[i];
        h->nlen = (size_t)rd_uint(&s, 2);
        h->name = (const char *)rd_take(&s, h->nlen);
        uint32_t vlen = (uint32_t)rd_uint(&s, 4);
        if (vlen != NULL_LEN) {
            h->vlen = vlen;
            h->val = (const char *)rd_take(&s, vlen);
        }
    }
    if (s.err || s.n != 0 || *id == 0) {
        return TRIB_EMALFORMED;
    }
    /* A zero-length field may have been decoded as a NULL pointer only if
       it was a NULL key/value marker; give empty ones a valid pointer. */
    if (r->topic == NULL) {
        r->topic = "";
    }
    if (r->value == NULL) {
        r->value = "";
    }
    return 0;
}

/*
 * Checks the frame at p (avail bytes to the end of the file): plausible
 * length, complete, payload version, id in [min_id, end_id), CRC, and a
 * payload that decodes. The cheap tests come first because resync calls
 * this at every byte offset of a damaged region.
 */
static bool frame_check(const uint8_t *p, uint64_t avail, uint64_t min_id, uint64_t end_id,
                        uint32_t *plen, uint64_t *id, agent_buffer_rec_t *r)
{
    if (avail < FRAME_HDR + REC_MIN_PAYLOAD) {
        return false;
    }
    uint32_t n = get32(p);
    if (n < REC_MIN_PAYLOAD || n > REC_MAX_PAYLOAD || (uint64_t)n + FRAME_HDR > avail) {
        return false;
    }
    const uint8_t *pl = p + FRAME_HDR;
    if (pl[0] != REC_VERSION) {
        return false;
    }
    uint64_t fid = get64(pl + 1);
    if (fid < min_id || fid >= end_id) {
        return false;
    }
    if (trib_crc32c(0, pl, n) != get32(p + 4)) {
        return false;
    }
    if (payload_decode(pl, n, id, r) != 0) {
        return false;
    }
    *plen = n;
    return true;
}

/* ---------------------------------------------------------------------- */
/* Files.                                                                 */

static void seg_path(char *out, size_t cap, const char *dir, uint64_t id)
{
    snprintf(out, cap, "%s/seg-%020" PRIu64 ".buf", dir, id);
}

static bool seg_name_parse(const char *name, uint64_t *id)
{
    if (strlen(name) != SEG_NAME_LEN || strncmp(name, "seg-", 4) != 0 ||
        strcmp(name + 24, ".buf") != 0) {
        return false;
    }
    uint64_t v = 0;
    for (int i = 4; i < 24; i++) {
        if (name[i] < '0' || name[i] > '9') {
            return false;
        }
        uint64_t d = (uint64_t)(name[i] - '0');
        if (v > (UINT64_MAX - d) / 10) {
            return false;
        }
        v = v * 10 + d;
    }
    *id = v;
    return v != 0;
}

static void seg_header(uint8_t *h, uint64_t first_id)
{
    memset(h, 0, SEG_HDR);
    memcpy(h, SEG_MAGIC, 8);
    put32(h + 8, SEG_VERSION);
    put64(h + 16, first_id);
    put32(h + 28, trib_crc32c(0, h, 28));
}

static bool seg_header_ok(const uint8_t *h, uint64_t first_id)
{
    return memcmp(h, SEG_MAGIC, 8) == 0 && get32(h + 8) == SEG_VERSION &&
           get64(h + 16) == first_id && get32(h + 28) == trib_crc32c(0, h, 28);
}

static int read_all(int fd, void *p, size_t n, off_t off, size_t *got)
{
    ssize_t r = trib_pread_all(fd, p, n, (uint64_t)off);
    if (r < 0) {
        return (int)r;
    }
    *got = (size_t)r;
    return 0;
}

static void fsync_dir(const char *dir)
{
    (void)trib_fsync_dir(dir); /* best effort: the data itself was synced */
}

/* 1 with *id, 0 when there is no ledger, TRIB_EMALFORMED when it is
   damaged, -errno when it cannot be read. */
static int ledger_read(const char *dir, uint64_t *id)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/ledger", dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return errno == ENOENT ? 0 : -errno;
    }
    uint8_t b[LEDGER_SIZE + 1];
    size_t got = 0;
    int rc = read_all(fd, b, sizeof(b), 0, &got);
    close(fd);
    if (rc < 0) {
        return rc;
    }
    if (got != LEDGER_SIZE || memcmp(b, LEDGER_MAGIC, 8) != 0 ||
        get32(b + 16) != trib_crc32c(0, b, 16) || get64(b + 8) == 0) {
        return TRIB_EMALFORMED;
    }
    *id = get64(b + 8);
    return 1;
}

static int ledger_write(const char *dir, uint64_t id)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/ledger", dir);
    uint8_t b[LEDGER_SIZE];
    memcpy(b, LEDGER_MAGIC, 8);
    put64(b + 8, id);
    put32(b + 16, trib_crc32c(0, b, 16));
    int rc = trib_write_file_atomic(path, b, sizeof(b));
    if (rc == -ENOSPC || rc == -EDQUOT) {
        /*
         * A full disk has no block for ledger.tmp, and without a new ledger
         * no acknowledged segment may go, so the buffer could never give
         * space back. The ledger's own block takes the value in place (20
         * bytes inside one block: no new block). A crash tearing that write
         * fails the CRC, and the next start begins at the first segment:
         * records are delivered again, never lost.
         */
        int fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd >= 0) {
            rc = trib_pwrite_all(fd, b, sizeof(b), 0);
            if (rc == 0 && fdatasync(fd) != 0) {
                rc = -errno;
            }
            close(fd);
        }
    }
    return rc;
}

/* Finds a free name quarantine/<name><suffix>[.N] and returns its path. */
static int quarantine_path(const char *dir, const char *name, const char *suffix, char *out,
                           size_t cap)
{
    char q[PATH_MAX];
    snprintf(q, sizeof(q), "%s/quarantine", dir);
    if (mkdir(q, 0755) != 0 && errno != EEXIST) {
        return -errno;
    }
    for (int i = 0; i < 1000; i++) {
        int n = i == 0 ? snprintf(out, cap, "%s/%s%s", q, name, suffix)
                       : snprintf(out, cap, "%s/%s%s.%d", q, name, suffix, i);
        if (n < 0 || (size_t)n >= cap) {
            return -ENAMETOOLONG;
        }
        struct stat st;
        if (lstat(out, &st) != 0 && errno == ENOENT) {
            return 0;
        }
    }
    return -EEXIST;
}

typedef struct qfile {
    char name[NAME_MAX + 1];
    struct timespec mtime;
} qfile_t;

static int qfile_newer_first(const void *x, const void *y)
{
    const qfile_t *a = x, *b = y;
    if (a->mtime.tv_sec != b->mtime.tv_sec) {
        return a->mtime.tv_sec > b->mtime.tv_sec ? -1 : 1;
    }
    if (a->mtime.tv_nsec != b->mtime.tv_nsec) {
        return a->mtime.tv_nsec > b->mtime.tv_nsec ? -1 : 1;
    }
    return strcmp(b->name, a->name);
}

/* Keeps the AGENT_BUFFER_QUARANTINE_KEEP newest files of quarantine/, so
   repeated damage cannot fill the disk with copies. */
static void quarantine_prune(const char *dir)
{
    char q[PATH_MAX];
    snprintf(q, sizeof(q), "%s/quarantine", dir);
    DIR *d = opendir(q);
    if (d == NULL) {
        return;
    }
    qfile_t *v = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        struct stat st;
        if (e->d_name[0] == '.' || fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
            !S_ISREG(st.st_mode)) {
            continue;
        }
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 32;
            qfile_t *nv = realloc(v, nc * sizeof(*nv));
            if (nv == NULL) {
                break;
            }
            v = nv;
            cap = nc;
        }
        snprintf(v[n].name, sizeof(v[n].name), "%s", e->d_name);
        v[n].mtime = st.st_mtim;
        n++;
    }
    if (n > AGENT_BUFFER_QUARANTINE_KEEP) {
        qsort(v, n, sizeof(*v), qfile_newer_first);
        for (size_t i = AGENT_BUFFER_QUARANTINE_KEEP; i < n; i++) {
            if (unlinkat(dirfd(d), v[i].name, 0) == 0) {
                TRIB_LOG(TRIB_LOG_INFO, FAC, "%s: removed the old quarantine copy %s", dir,
                         v[i].name);
            }
        }
    }
    closedir(d);
    free(v);
}

/* Moves dir/name into quarantine/ (rename, so the same file system). */
static int quarantine_move(const char *dir, const char *name, const char *suffix)
{
    char from[PATH_MAX], to[PATH_MAX];
    snprintf(from, sizeof(from), "%s/%s", dir, name);
    int rc = quarantine_path(dir, name, suffix, to, sizeof(to));
    if (rc == 0 && rename(from, to) != 0) {
        rc = -errno;
    }
    if (rc == 0) {
        fsync_dir(dir);
    }
    return rc;
}

/* Writes n bytes at p to a new file quarantine/<name><suffix>. */
static int quarantine_copy(const char *dir, const char *name, const char *suffix, const uint8_t *p,
                           size_t n)
{
    char to[PATH_MAX];
    int rc = quarantine_path(dir, name, suffix, to, sizeof(to));
    if (rc != 0) {
        return rc;
    }
    int fd = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        return -errno;
    }
    rc = trib_pwrite_all(fd, p, n, 0);
    if (rc == 0 && fsync(fd) != 0) {
        rc = -errno;
    }
    close(fd);
    return rc;
}

/* ---------------------------------------------------------------------- */
/* The ack bitmap.                                                        */

static int bm_ensure(agent_buffer_t *b, uint64_t id)
{
    if (id - b->bm_base < (uint64_t)b->bm_words * 64) {
        return 0;
    }
    size_t drop = (size_t)((b->prefix - b->bm_base) / 64);
    if (drop > b->bm_words) {
        drop = b->bm_words;
    }
    if (drop > 0) {
        memmove(b->bm, b->bm + drop, (b->bm_words - drop) * sizeof(uint64_t));
        memset(b->bm + b->bm_words - drop, 0, drop * sizeof(uint64_t));
        b->bm_base += (uint64_t)drop * 64;
        if (id - b->bm_base < (uint64_t)b->bm_words * 64) {
            return 0;
        }
    }
    uint64_t need = (id - b->bm_base) / 64 + 1;
    size_t nw = b->bm_words > 0 ? b->bm_words : 64;
    while (nw < need) {
        nw *= 2;
    }
    uint64_t *n = realloc(b->bm, nw * sizeof(uint64_t));
    if (n == NULL) {
        return -ENOMEM;
    }
    memset(n + b->bm_words, 0, (nw - b->bm_words) * sizeof(uint64_t));
    b->bm = n;
    b->bm_words = nw;
    return 0;
}

static bool bm_get(const agent_buffer_t *b, uint64_t id)
{
    if (id < b->bm_base) {
        return true;
    }
    uint64_t i = id - b->bm_base;
    if (i >= (uint64_t)b->bm_words * 64) {
        return false;
    }
    return (b->bm[i / 64] >> (i % 64)) & 1;
}

/* Sets the bit of id (>= prefix, made addressable by the caller). */
static bool bm_set(agent_buffer_t *b, uint64_t id)
{
    uint64_t i = id - b->bm_base;
    uint64_t m = (uint64_t)1 << (i % 64);
    if (b->bm[i / 64] & m) {
        return false;
    }
    b->bm[i / 64] |= m;
    b->nset++;
    return true;
}

/* Marks ids in [lo, hi) that are not at or above the prefix as gaps. */
static int mark_gaps(agent_buffer_t *b, uint64_t lo, uint64_t hi)
{
    if (lo < b->prefix) {
        lo = b->prefix;
    }
    for (uint64_t id = lo; id < hi; id++) {
        int rc = bm_ensure(b, id);
        if (rc != 0) {
            return rc;
        }
        (void)bm_set(b, id);
    }
    return 0;
}

static void advance(agent_buffer_t *b)
{
    while (b->prefix < b->next_id && bm_get(b, b->prefix)) {
        b->prefix++;
        b->nset--;
    }
    if (b->handed_hi < b->prefix) {
        b->handed_hi = b->prefix;
    }
}

/* ---------------------------------------------------------------------- */
/* Segments at run time.                                                  */

static int segs_push(agent_buffer_t *b, uint64_t first_id, uint64_t size)
{
    if (b->nsegs == b->segs_cap) {
        size_t nc = b->segs_cap > 0 ? b->segs_cap * 2 : 16;
        seg_t *n = realloc(b->segs, nc * sizeof(*n));
        if (n == NULL) {
            return -ENOMEM;
        }
        b->segs = n;
        b->segs_cap = nc;
    }
    b->segs[b->nsegs++] = (seg_t){first_id, size, false};
    return 0;
}

/* Starts a new last segment whose first id is next_id. */
static int seg_create(agent_buffer_t *b)
{
    char path[PATH_MAX];
    seg_path(path, sizeof(path), b->dir, b->next_id);
    if (b->nsegs == b->segs_cap) {
        int rc = segs_push(b, 0, 0); /* grow now: nothing can fail after the file exists */
        if (rc != 0) {
            return rc;
        }
        b->nsegs--;
    }
    /* No live segment has this name: ids at or above next_id were never
       written, so a file that has it is left over and replaced. */
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        return -errno;
    }
    uint8_t h[SEG_HDR];
    seg_header(h, b->next_id);
    int rc = trib_pwrite_all(fd, h, SEG_HDR, 0);
    if (rc != 0) {
        close(fd);
        unlink(path);
        return rc;
    }
    if (b->wfd >= 0) {
        close(b->wfd);
        b->segs[b->nsegs - 1].needs_sync = true;
    }
    b->wfd = fd;
    (void)segs_push(b, b->next_id, SEG_HDR);
    b->bytes += SEG_HDR;
    b->dir_dirty = true;
    return 0;
}

static void reader_reset(agent_buffer_t *b)
{
    b->un_ok = false;
    b->rseg = 0;
    b->roff = SEG_HDR;
    b->rlast = b->nsegs > 0 ? b->segs[0].first_id - 1 : 0;
}

/* Deletes the segments wholly below the prefix, once the ledger says so. */
static void delete_acked(agent_buffer_t *b)
{
    size_t k = 0;
    while (k + 1 < b->nsegs && b->segs[k + 1].first_id <= b->prefix) {
        k++;
    }
    if (k == 0) {
        return;
    }
    if (b->ledger_id != b->prefix) {
        int rc = ledger_write(b->dir, b->prefix);
        if (rc != 0) {
            b->st.sync_errors++;
            TRIB_LOG_RL(&b->rl, TRIB_LOG_ERROR, FAC,
                        "%s: cannot write the ledger: %s; acknowledged segments stay", b->dir,
                        trib_strerror(rc));
            return;
        }
        b->ledger_id = b->prefix;
    }
    for (size_t i = 0; i < k; i++) {
        char path[PATH_MAX];
        seg_path(path, sizeof(path), b->dir, b->segs[i].first_id);
        if (unlink(path) != 0 && errno != ENOENT) {
            /* Below the ledger: recovery deletes it at the next start. */
            TRIB_LOG_RL(&b->rl, TRIB_LOG_WARN, FAC, "cannot delete %s: %s", path, strerror(errno));
        }
        b->bytes -= b->segs[i].size;
        b->st.segments_deleted++;
    }
    if (b->rfd >= 0 && b->rfd_id < b->segs[k].first_id) {
        close(b->rfd); /* holds the deleted file's blocks */
        b->rfd = -1;
        b->rbuf_id = 0;
    }
    memmove(b->segs, b->segs + k, (b->nsegs - k) * sizeof(seg_t));
    b->nsegs -= k;
    b->un_ok = false; /* segment indexes moved */
    if (b->rseg >= k) {
        b->rseg -= k;
    } else {
        reader_reset(b);
    }
    b->dir_dirty = true;
}

/* ---------------------------------------------------------------------- */
/* Recovery (also the read-only scan behind check and dump).              */

typedef int (*scan_rec_cb)(void *arg, uint64_t id, const agent_buffer_rec_t *r);

typedef struct scan {
    agent_buffer_t *b;
    bool repair; /* open: truncate, quarantine, rewrite; else read-only */
    FILE *out;   /* check: problems are printed here; else logged */
    agent_buffer_report_t *rep;
    scan_rec_cb cb;
    void *arg;
    uint64_t cursor; /* the id after the last intact record seen */
} scan_t;

static void problem(scan_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void problem(scan_t *s, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (s->out != NULL) {
        fprintf(s->out, "problem: %s\n", msg);
    } else {
        TRIB_LOG(TRIB_LOG_WARN, FAC, "%s", msg);
    }
}

typedef struct region {
    uint64_t start, end;
} region_t;

/* Writes the segment again without its damaged regions: header, then every
   byte outside bad[], to <path>.tmp, fsync, rename over path. */
static int seg_rewrite(const char *dir, const char *path, const uint8_t *map, uint64_t size,
                       const region_t *bad, size_t nbad, uint64_t *new_size)
{
    char tmp[PATH_MAX];
    int tn = snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    if (tn < 0 || (size_t)tn >= sizeof(tmp)) {
        return -ENAMETOOLONG;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        return -errno;
    }
    uint64_t pos = 0, out = 0;
    int rc = 0;
    for (size_t i = 0; i <= nbad && rc == 0; i++) {
        uint64_t end = i < nbad ? bad[i].start : size;
        if (end > pos) {
            rc = trib_pwrite_all(fd, map + pos, (size_t)(end - pos), out);
            out += end - pos;
        }
        if (i < nbad) {
            pos = bad[i].end;
        }
    }
    if (rc == 0 && fsync(fd) != 0) {
        rc = -errno;
    }
    close(fd);
    if (rc == 0 && rename(tmp, path) != 0) {
        rc = -errno;
    }
    if (rc != 0) {
        unlink(tmp);
        return rc;
    }
    fsync_dir(dir);
    *new_size = out;
    return 0;
}

static bool all_zero(const uint8_t *p, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++) {
        if (p[i] != 0) {
            return false;
        }
    }
    return true;
}

/*
 * Scans segment *sg (ids in [sg->first_id, end_id)), frame by frame; on a
 * frame that fails, byte by byte until one passes frame_check (resync).
 * A damaged region running to the end of the last segment that starts
 * with an incomplete frame (or is all zeros) is a torn tail; anything else
 * is corruption.
 */
static int scan_seg(scan_t *s, seg_t *sg, uint64_t end_id, bool last)
{
    agent_buffer_t *b = s->b;
    char path[PATH_MAX];
    seg_path(path, sizeof(path), b->dir, sg->first_id);
    const char *name = strrchr(path, '/') + 1;
    int fd = open(path, s->repair ? O_RDWR | O_CLOEXEC : O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return -errno;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    uint64_t size = (uint64_t)st.st_size;
    sg->size = size;
    const uint8_t *map = mmap(NULL, (size_t)size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED) {
        int e = -errno;
        close(fd);
        return e;
    }
    region_t *bad = NULL;
    size_t nbad = 0, badcap = 0;
    bool in_bad = false, torn_start = false;
    uint64_t bad_start = 0, corrupt = 0;
    uint64_t pos = SEG_HDR;
    int rc = 0;
    if (s->cursor < sg->first_id) {
        rc = mark_gaps(b, s->cursor, sg->first_id);
        s->cursor = sg->first_id;
    }
    while (pos < size && rc == 0) {
        uint32_t plen;
        uint64_t id;
        agent_buffer_rec_t r;
        if (frame_check(map + pos, size - pos, s->cursor, end_id, &plen, &id, &r)) {
            if (in_bad) {
                if (nbad == badcap) {
                    size_t nc = badcap > 0 ? badcap * 2 : 8;
                    region_t *n = realloc(bad, nc * sizeof(*n));
                    if (n == NULL) {
                        rc = -ENOMEM;
                        break;
                    }
                    bad = n;
                    badcap = nc;
                }
                bad[nbad++] = (region_t){bad_start, pos};
                problem(s, "%s: damaged frames at bytes %" PRIu64 "..%" PRIu64 " skipped", path,
                        bad_start, pos);
                corrupt += pos - bad_start;
                /* the ids the damage swallowed; at least one frame */
                s->rep->corrupt_records += id > s->cursor ? id - s->cursor : 1;
                in_bad = false;
            }
            rc = mark_gaps(b, s->cursor, id);
            s->cursor = id + 1;
            if (id >= b->prefix) {
                s->rep->records++;
                if (s->cb != NULL && rc == 0) {
                    rc = s->cb(s->arg, id, &r);
                }
            }
            pos += FRAME_HDR + plen;
            continue;
        }
        if (!in_bad) {
            in_bad = true;
            bad_start = pos;
            uint64_t avail = size - pos;
            uint32_t n = avail >= 4 ? get32(map + pos) : 0;
            torn_start = avail < FRAME_HDR ||
                         (n >= REC_MIN_PAYLOAD && n <= REC_MAX_PAYLOAD && n + FRAME_HDR > avail) ||
                         all_zero(map + pos, avail);
        }
        pos++;
    }
    uint64_t new_size = size;
    bool torn = false;
    if (rc == 0 && in_bad) {
        if (last && torn_start) {
            torn = true;
            s->rep->torn_bytes += size - bad_start;
            problem(s, "%s: torn tail of %" PRIu64 " bytes at %" PRIu64 "%s", path,
                    size - bad_start, bad_start, s->repair ? " truncated" : "");
            new_size = bad_start;
        } else {
            problem(s, "%s: damaged frames at bytes %" PRIu64 "..%" PRIu64 " skipped", path,
                    bad_start, size);
            corrupt += size - bad_start;
            /* up to the next segment's first id; unknown in the last */
            s->rep->corrupt_records += !last && end_id > s->cursor ? end_id - s->cursor : 1;
            if (nbad == badcap) {
                region_t *n = realloc(bad, (badcap + 1) * sizeof(*n));
                if (n == NULL) {
                    rc = -ENOMEM;
                } else {
                    bad = n;
                    badcap++;
                }
            }
            if (rc == 0) {
                bad[nbad++] = (region_t){bad_start, size};
            }
        }
    }
    s->rep->corrupt_bytes += corrupt;
    if (rc == 0 && nbad > 0) {
        s->rep->quarantined++;
        if (s->repair) {
            rc = quarantine_copy(b->dir, name, ".corrupt", map, (size_t)size);
            if (rc == 0) {
                /* the copy keeps everything; the rewrite leaves the torn
                   tail out as well */
                if (torn) {
                    region_t t = {new_size, size};
                    region_t *n = realloc(bad, (nbad + 1) * sizeof(*n));
                    if (n == NULL) {
                        rc = -ENOMEM;
                    } else {
                        bad = n;
                        bad[nbad++] = t;
                    }
                }
            }
            if (rc == 0) {
                rc = seg_rewrite(b->dir, path, map, size, bad, nbad, &new_size);
            }
            if (rc == 0) {
                TRIB_LOG(TRIB_LOG_WARN, FAC,
                         "%s: copied to quarantine/%s.corrupt and rewritten with its %" PRIu64
                         " intact bytes",
                         path, name, new_size);
            }
        } else {
            new_size = size - corrupt - (torn ? size - new_size : 0);
        }
    } else if (rc == 0 && torn && s->repair) {
        if (ftruncate(fd, (off_t)new_size) != 0 || fsync(fd) != 0) {
            rc = -errno;
        }
    }
    sg->size = new_size;
    munmap((void *)map, (size_t)size);
    close(fd);
    free(bad);
    return rc;
}

static int id_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Lists seg-*.buf ids in order; removes leftover *.tmp files when repairing. */
static int list_segments(const char *dir, bool repair, uint64_t **ids, size_t *n)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        return -errno;
    }
    uint64_t *v = NULL;
    size_t cnt = 0, cap = 0;
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        uint64_t id;
        size_t len = strlen(e->d_name);
        if (repair && len > 4 && strcmp(e->d_name + len - 4, ".tmp") == 0) {
            (void)unlinkat(dirfd(d), e->d_name, 0);
            continue;
        }
        if (!seg_name_parse(e->d_name, &id)) {
            continue;
        }
        if (cnt == cap) {
            size_t nc = cap > 0 ? cap * 2 : 16;
            uint64_t *nv = realloc(v, nc * sizeof(*nv));
            if (nv == NULL) {
                rc = -ENOMEM;
                break;
            }
            v = nv;
            cap = nc;
        }
        v[cnt++] = id;
    }
    closedir(d);
    if (rc != 0) {
        free(v);
        return rc;
    }
    if (cnt > 1) {
        qsort(v, cnt, sizeof(*v), id_cmp);
    }
    *ids = v;
    *n = cnt;
    return 0;
}

/*
 * Rebuilds b's segments, prefix, next_id and gap bits from b->dir. When
 * repairing, also fixes the directory (see the top of the file).
 */
static int recover(agent_buffer_t *b, bool repair, FILE *out, agent_buffer_report_t *rep,
                   scan_rec_cb cb, void *arg)
{
    scan_t s = {b, repair, out, rep, cb, arg, 1};
    uint64_t lid = 0;
    int lrc = ledger_read(b->dir, &lid);
    if (lrc < 0 && lrc != TRIB_EMALFORMED) {
        return lrc;
    }
    if (lrc == TRIB_EMALFORMED) {
        rep->bad_ledger = 1;
        problem(&s,
                "%s/ledger: unreadable; starting from the first segment (acknowledged "
                "records there will be sent again)",
                b->dir);
    }
    uint64_t *ids = NULL;
    size_t nids = 0;
    int rc = list_segments(b->dir, repair, &ids, &nids);
    if (rc != 0) {
        return rc;
    }
    for (size_t i = 0; i < nids && rc == 0; i++) {
        char path[PATH_MAX];
        seg_path(path, sizeof(path), b->dir, ids[i]);
        const char *name = strrchr(path, '/') + 1;
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            rc = -errno;
            break;
        }
        struct stat st;
        uint8_t h[SEG_HDR];
        size_t got = 0;
        if (fstat(fd, &st) != 0) {
            rc = -errno;
        } else {
            rc = read_all(fd, h, SEG_HDR, 0, &got);
        }
        close(fd);
        if (rc != 0) {
            break;
        }
        if (got < SEG_HDR && i + 1 == nids) {
            /* Created, then the process died before the header was out. */
            rep->torn_bytes += got;
            problem(&s, "%s: torn segment header (%zu bytes)%s", path, got,
                    repair ? " removed" : "");
            if (repair && unlink(path) != 0) {
                rc = -errno;
            }
            continue;
        }
        if (got < SEG_HDR || !seg_header_ok(h, ids[i])) {
            rep->quarantined++;
            problem(&s, "%s: unreadable segment header%s", path,
                    repair ? "; moved to quarantine/" : "");
            if (repair) {
                rc = quarantine_move(b->dir, name, ".bad-header");
            }
            continue;
        }
        rc = segs_push(b, ids[i], (uint64_t)st.st_size);
    }
    free(ids);
    if (rc != 0) {
        return rc;
    }

    if (lrc == 1) {
        b->prefix = lid;
        b->ledger_id = lid;
    } else {
        b->prefix = b->nsegs > 0 ? b->segs[0].first_id : 1;
    }
    b->bm_base = b->prefix;
    b->next_id = b->prefix;

    /* Segments wholly below the ledger: their deletion was cut short. */
    size_t k = 0;
    while (k + 1 < b->nsegs && b->segs[k + 1].first_id <= b->prefix) {
        if (repair) {
            char path[PATH_MAX];
            seg_path(path, sizeof(path), b->dir, b->segs[k].first_id);
            if (unlink(path) != 0 && errno != ENOENT) {
                return -errno;
            }
            b->dir_dirty = true;
        }
        k++;
    }
    if (k > 0) {
        memmove(b->segs, b->segs + k, (b->nsegs - k) * sizeof(seg_t));
        b->nsegs -= k;
    }

    for (size_t i = 0; i < b->nsegs; i++) {
        bool last = i + 1 == b->nsegs;
        uint64_t end_id = last ? UINT64_MAX : b->segs[i + 1].first_id;
        rc = scan_seg(&s, &b->segs[i], end_id, last);
        if (rc != 0) {
            return rc;
        }
        b->bytes += b->segs[i].size;
    }
    uint64_t next = s.cursor;
    if (b->nsegs > 0 && b->segs[b->nsegs - 1].first_id > next) {
        next = b->segs[b->nsegs - 1].first_id;
    }
    if (b->prefix > next) {
        next = b->prefix;
    }
    b->next_id = next;
    rc = mark_gaps(b, s.cursor, next);
    if (rc != 0) {
        return rc;
    }
    advance(b);
    rep->segments = b->nsegs;
    rep->bytes = b->bytes;
    rep->first_id = b->prefix;
    rep->next_id = b->next_id;
    return 0;
}

static void buffer_free(agent_buffer_t *b)
{
    if (b->wfd >= 0) {
        close(b->wfd);
    }
    if (b->rfd >= 0) {
        close(b->rfd);
    }
    if (b->lock_fd >= 0) {
        close(b->lock_fd);
    }
    free(b->segs);
    free(b->bm);
    free(b->rbuf);
    free(b->wbuf);
    free(b->dir);
    free(b);
}

static agent_buffer_t *buffer_new(const char *dir)
{
    agent_buffer_t *b = calloc(1, sizeof(*b));
    if (b == NULL) {
        return NULL;
    }
    b->dir = strdup(dir);
    if (b->dir == NULL) {
        free(b);
        return NULL;
    }
    b->wfd = -1;
    b->rfd = -1;
    b->lock_fd = -1;
    b->rl = (trib_log_ratelimit_t)TRIB_LOG_RATELIMIT_INIT(10000, 5);
    return b;
}

/* ---------------------------------------------------------------------- */
/* The API.                                                               */

int agent_buffer_open(agent_buffer_t **out, const agent_buffer_opts_t *o,
                      agent_buffer_report_t *report)
{
    agent_buffer_report_t local;
    agent_buffer_report_t *rep = report != NULL ? report : &local;
    memset(rep, 0, sizeof(*rep));
    *out = NULL;
    if (o == NULL || o->dir == NULL || o->max_size == 0) {
        return -EINVAL;
    }
    if (strlen(o->dir) > PATH_MAX - 64) {
        return -ENAMETOOLONG; /* room for the file names under it */
    }
    int rc = trib_mkdirs_durable(o->dir, 0755);
    if (rc != 0) {
        return rc;
    }
    agent_buffer_t *b = buffer_new(o->dir);
    if (b == NULL) {
        return -ENOMEM;
    }
    b->max_size = o->max_size;
    b->segment_size = o->segment_size;
    if (b->segment_size == 0) {
        b->segment_size = DEFAULT_SEGMENT_SIZE;
        if (b->segment_size > b->max_size / 4) {
            b->segment_size = b->max_size / 4;
        }
    }
    if (b->segment_size > b->max_size) {
        b->segment_size = b->max_size;
    }
    /* Two agents on one state directory would interleave their appends. */
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof(tmp), "%s/lock", b->dir);
    b->lock_fd = open(tmp, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (b->lock_fd < 0) {
        rc = -errno;
        goto fail;
    }
    /* An open-file-description lock: check and dump can test for it
       (F_OFD_GETLK) without taking it, so they never make an agent's
       start fail. */
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    if (fcntl(b->lock_fd, F_OFD_SETLK, &fl) != 0) {
        rc = errno == EAGAIN || errno == EACCES ? -EBUSY : -errno;
        if (rc == -EBUSY) {
            TRIB_LOG(TRIB_LOG_ERROR, FAC, "%s is in use by another process", b->dir);
        }
        goto fail;
    }
    snprintf(tmp, sizeof(tmp), "%s/ledger.tmp", b->dir);
    (void)unlink(tmp);

    rc = recover(b, true, NULL, rep, NULL, NULL);
    if (rc != 0) {
        goto fail;
    }
    if (b->nsegs == 0) {
        rc = seg_create(b);
    } else {
        char path[PATH_MAX];
        seg_path(path, sizeof(path), b->dir, b->segs[b->nsegs - 1].first_id);
        b->wfd = open(path, O_WRONLY | O_CLOEXEC);
        rc = b->wfd < 0 ? -errno : 0;
    }
    if (rc != 0) {
        goto fail;
    }
    if (b->ledger_id != b->prefix) {
        rc = ledger_write(b->dir, b->prefix);
        if (rc != 0) {
            goto fail;
        }
        b->ledger_id = b->prefix;
    }
    delete_acked(b);
    if (b->dir_dirty) {
        fsync_dir(b->dir);
        b->dir_dirty = false;
    }
    reader_reset(b);
    quarantine_prune(b->dir);
    b->handed_hi = b->prefix;
    rep->segments = b->nsegs;
    rep->bytes = b->bytes;
    rep->records = b->next_id - b->prefix - b->nset;
    rep->first_id = b->prefix;
    rep->next_id = b->next_id;
    if (rep->torn_bytes || rep->corrupt_records || rep->quarantined || rep->bad_ledger) {
        TRIB_LOG(TRIB_LOG_WARN, FAC,
                 "%s: recovered %" PRIu64 " records in %" PRIu64 " segments; torn %" PRIu64
                 " bytes, %" PRIu64 " damaged regions (%" PRIu64 " bytes), %" PRIu64
                 " segments quarantined",
                 b->dir, rep->records, rep->segments, rep->torn_bytes, rep->corrupt_records,
                 rep->corrupt_bytes, rep->quarantined);
    }
    *out = b;
    return 0;
fail:
    buffer_free(b);
    return rc;
}

void agent_buffer_close(agent_buffer_t *b)
{
    if (b == NULL) {
        return;
    }
    int rc = agent_buffer_sync(b);
    if (rc != 0) {
        TRIB_LOG(TRIB_LOG_ERROR, FAC, "%s: sync at close failed: %s", b->dir, trib_strerror(rc));
    }
    buffer_free(b);
}

size_t agent_buffer_rec_size(const agent_buffer_rec_t *r)
{
    size_t n = payload_size(r);
    return n == 0 ? SIZE_MAX : FRAME_HDR + n;
}

static bool fs_full(int rc)
{
    return rc == -ENOSPC || rc == -EDQUOT;
}

/*
 * The filesystem is full (ENOSPC, or EDQUOT under a quota): not the
 * buffer's own max_size. The caller sees -ENOSPC all the same, so inputs
 * wait or drop as for a full buffer, and the next append tries again;
 * the count and the line (once per episode, rate-limited) say which.
 */
static int disk_full(agent_buffer_t *b, int rc)
{
    b->st.disk_full++;
    if (!b->disk_full) {
        b->disk_full = true;
        TRIB_LOG_RL(&b->rl, TRIB_LOG_ERROR, FAC,
                    "%s: the disk is full (%s): events wait or are dropped as for a full "
                    "buffer until space is freed",
                    b->dir, trib_strerror(rc));
    }
    return -ENOSPC;
}

uint64_t agent_buffer_room(const agent_buffer_t *b)
{
    /* One segment header is kept in reserve, so a record that fits the
       room also fits when it has to start a new segment. */
    uint64_t used = b->bytes + SEG_HDR;
    return used >= b->max_size ? 0 : b->max_size - used;
}

/* Truncates the last segment back to act->size, the end of its last whole
   frame, after a failed write. 0, or -errno (counted and logged) while
   the partial frame stays. */
static int cut_partial(agent_buffer_t *b, const seg_t *act)
{
    if (ftruncate(b->wfd, (off_t)act->size) != 0) {
        int rc = -errno;
        b->st.write_errors++;
        TRIB_LOG_RL(&b->rl, TRIB_LOG_ERROR, FAC,
                    "%s: cannot cut a partial frame off: %s; appends wait for it", b->dir,
                    trib_strerror(rc));
        return rc;
    }
    b->cut_pending = false;
    return 0;
}

int agent_buffer_append(agent_buffer_t *b, const agent_buffer_rec_t *r, uint64_t *id)
{
    if (r->nhdrs > AGENT_BUFFER_MAX_HDRS) {
        return -EINVAL;
    }
    size_t plen = payload_size(r);
    if (plen == 0 || FRAME_HDR + plen + SEG_HDR > b->max_size) {
        return -EMSGSIZE;
    }
    size_t flen = FRAME_HDR + plen;
    seg_t *act = &b->segs[b->nsegs - 1];
    if (b->cut_pending) {
        int rc = cut_partial(b, act);
        if (rc != 0) {
            return rc;
        }
    }
    bool roll = act->size > SEG_HDR && act->size + flen > b->segment_size;
    if (b->bytes + flen + (roll ? SEG_HDR : 0) > b->max_size) {
        /* Everything delivered, but the last segment is never deleted:
           start a new one so it can go. */
        if (b->prefix == b->next_id && act->size > SEG_HDR) {
            int rc = seg_create(b);
            if (fs_full(rc)) {
                return disk_full(b, rc);
            }
            if (rc != 0) {
                b->st.write_errors++;
                return rc;
            }
            delete_acked(b);
            act = &b->segs[b->nsegs - 1];
            roll = false;
        }
        if (b->bytes + flen + (roll ? SEG_HDR : 0) > b->max_size) {
            b->st.full++;
            return -ENOSPC;
        }
    }
    int rc = bm_ensure(b, b->next_id);
    if (rc != 0) {
        return rc;
    }
    if (flen > b->wbuf_cap) {
        size_t nc = b->wbuf_cap > 0 ? b->wbuf_cap : 4096;
        while (nc < flen) {
            nc *= 2;
        }
        uint8_t *n = realloc(b->wbuf, nc);
        if (n == NULL) {
            return -ENOMEM;
        }
        b->wbuf = n;
        b->wbuf_cap = nc;
    }
    frame_encode(b->wbuf, plen, r, b->next_id);
    if (roll) {
        rc = seg_create(b);
        if (fs_full(rc)) {
            return disk_full(b, rc);
        }
        if (rc != 0) {
            b->st.write_errors++;
            TRIB_LOG_RL(&b->rl, TRIB_LOG_ERROR, FAC, "%s: cannot start a segment: %s", b->dir,
                        trib_strerror(rc));
            return rc;
        }
        act = &b->segs[b->nsegs - 1];
    }
    rc = trib_pwrite_all(b->wfd, b->wbuf, flen, act->size);
    if (rc != 0) {
        /* Cut a partial frame off so the next append starts clean; if
           that fails too, the next append tries again first. */
        b->cut_pending = true;
        (void)cut_partial(b, act);
        if (fs_full(rc)) {
            return disk_full(b, rc);
        }
        b->st.write_errors++;
        TRIB_LOG_RL(&b->rl, TRIB_LOG_ERROR, FAC, "%s: write failed: %s", b->dir, trib_strerror(rc));
        return rc;
    }
    if (b->disk_full) {
        b->disk_full = false;
        TRIB_LOG(TRIB_LOG_INFO, FAC, "%s: the disk has room again: events are buffered", b->dir);
    }
    act->size += flen;
    b->bytes += flen;
    b->st.appended++;
    b->st.append_bytes += flen;
    if (id != NULL) {
        *id = b->next_id;
    }
    b->next_id++;
    return 0;
}

/* Makes bytes [off, off + n) of segment sg available; NULL on a read error. */
static const uint8_t *rd_fetch(agent_buffer_t *b, const seg_t *sg, uint64_t off, size_t n)
{
    if (b->rbuf_id == sg->first_id && off >= b->rbuf_off && off + n <= b->rbuf_off + b->rbuf_len) {
        return b->rbuf + (off - b->rbuf_off);
    }
    if (b->rfd < 0 || b->rfd_id != sg->first_id) {
        if (b->rfd >= 0) {
            close(b->rfd);
        }
        char path[PATH_MAX];
        seg_path(path, sizeof(path), b->dir, sg->first_id);
        b->rfd = open(path, O_RDONLY | O_CLOEXEC);
        if (b->rfd < 0) {
            return NULL;
        }
        b->rfd_id = sg->first_id;
    }
    size_t want = n > READ_CHUNK ? n : READ_CHUNK;
    if (want > sg->size - off) {
        want = (size_t)(sg->size - off);
    }
    if (want < n) {
        errno = EIO;
        return NULL;
    }
    if (want > b->rbuf_cap) {
        uint8_t *nb = realloc(b->rbuf, want);
        if (nb == NULL) {
            return NULL;
        }
        b->rbuf = nb;
        b->rbuf_cap = want;
    }
    size_t got = 0;
    b->rbuf_id = 0;
    int rc = read_all(b->rfd, b->rbuf, want, (off_t)off, &got);
    if (rc != 0 || got < n) {
        errno = rc != 0 ? -rc : EIO;
        return NULL;
    }
    b->rbuf_id = sg->first_id;
    b->rbuf_off = off;
    b->rbuf_len = got;
    return b->rbuf;
}

/* After a frame that failed at run time: the next intact frame of the
   segment, found as recovery finds it (byte by byte). 1 with its offset,
   0 when there is none, -errno on a read error. */
static int read_resync(agent_buffer_t *b, const seg_t *sg, uint64_t end_id, uint64_t *at,
                       uint64_t *found)
{
    for (uint64_t q = b->roff + 1; q + FRAME_HDR + REC_MIN_PAYLOAD <= sg->size; q++) {
        const uint8_t *p = rd_fetch(b, sg, q, FRAME_HDR + 9);
        if (p == NULL) {
            return -errno;
        }
        uint32_t n = get32(p);
        if (n < REC_MIN_PAYLOAD || n > REC_MAX_PAYLOAD || q + FRAME_HDR + n > sg->size ||
            p[FRAME_HDR] != REC_VERSION) {
            continue;
        }
        uint64_t fid = get64(p + FRAME_HDR + 1);
        if (fid <= b->rlast || fid >= end_id) {
            continue;
        }
        p = rd_fetch(b, sg, q, FRAME_HDR + n);
        if (p == NULL) {
            return -errno;
        }
        uint32_t plen;
        agent_buffer_rec_t r;
        if (frame_check(p, FRAME_HDR + n, b->rlast + 1, end_id, &plen, found, &r)) {
            *at = q;
            return 1;
        }
    }
    return 0;
}

/* A frame failed at run time (the file changed under us): skip to the
   next intact frame; the ids in between become gaps. false when it could
   not be done now (read error, out of memory): the caller stops. */
static bool read_damage(agent_buffer_t *b, const char *what)
{
    seg_t *sg = &b->segs[b->rseg];
    bool last = b->rseg + 1 == b->nsegs;
    uint64_t end_id = last ? b->next_id : b->segs[b->rseg + 1].first_id;
    char path[PATH_MAX];
    seg_path(path, sizeof(path), b->dir, sg->first_id);
    uint64_t at = sg->size, found = end_id;
    int rc = read_resync(b, sg, end_id, &at, &found);
    if (rc < 0) {
        b->st.read_errors++;
        TRIB_LOG_RL(&b->rl, TRIB_LOG_ERROR, FAC, "%s: read failed: %s", path, trib_strerror(rc));
        return false;
    }
    if (mark_gaps(b, b->rlast + 1, found) != 0) {
        return false;
    }
    b->st.read_errors++;
    if (found > b->rlast + 1) {
        TRIB_LOG(TRIB_LOG_ERROR, FAC,
                 "%s: %s at byte %" PRIu64 ", %" PRIu64 " bytes skipped: records %" PRIu64
                 "..%" PRIu64 " are lost",
                 path, what, b->roff, at - b->roff, b->rlast + 1, found - 1);
    } else {
        TRIB_LOG(TRIB_LOG_ERROR, FAC,
                 "%s: %s at byte %" PRIu64 ", %" PRIu64 " bytes skipped, no record lost", path,
                 what, b->roff, at - b->roff);
    }
    /* With no intact frame left, appends to the last segment go on after
       the damage, where the cursor now is. */
    b->roff = at;
    b->rlast = found - 1;
    advance(b);
    delete_acked(b);
    return true;
}

int agent_buffer_next(agent_buffer_t *b, agent_buffer_rec_t *r, uint64_t *id)
{
    for (;;) {
        if (b->rseg >= b->nsegs) {
            return 0;
        }
        seg_t *sg = &b->segs[b->rseg];
        if (b->roff >= sg->size) {
            if (b->rseg + 1 >= b->nsegs) {
                return 0;
            }
            b->rseg++;
            b->roff = SEG_HDR;
            b->rlast = b->segs[b->rseg].first_id - 1;
            continue;
        }
        const uint8_t *p = rd_fetch(b, sg, b->roff, FRAME_HDR);
        if (p == NULL) {
            b->st.read_errors++;
            TRIB_LOG_RL(&b->rl, TRIB_LOG_ERROR, FAC, "%s: read failed: %s", b->dir,
                        strerror(errno));
            return 0;
        }
        uint32_t n = get32(p);
        uint64_t end_id = b->rseg + 1 < b->nsegs ? b->segs[b->rseg + 1].first_id : b->next_id;
        if (n < REC_MIN_PAYLOAD || n > REC_MAX_PAYLOAD || b->roff + FRAME_HDR + n > sg->size) {
            if (!read_damage(b, "bad frame length")) {
                return 0;
            }
            continue;
        }
        p = rd_fetch(b, sg, b->roff, FRAME_HDR + n);
        if (p == NULL) {
            b->st.read_errors++;
            TRIB_LOG_RL(&b->rl, TRIB_LOG_ERROR, FAC, "%s: read failed: %s", b->dir,
                        strerror(errno));
            return 0;
        }
        uint32_t plen;
        uint64_t rid;
        if (!frame_check(p, FRAME_HDR + n, b->rlast + 1, end_id, &plen, &rid, r)) {
            if (!read_damage(b, "damaged frame")) {
                return 0;
            }
            continue;
        }
        size_t at_seg = b->rseg;
        uint64_t at_off = b->roff, at_last = b->rlast;
        b->roff += FRAME_HDR + n;
        b->rlast = rid;
        if (rid < b->prefix || bm_get(b, rid)) {
            continue;
        }
        if (id != NULL) {
            *id = rid;
        }
        b->un_ok = true;
        b->un_seg = at_seg;
        b->un_off = at_off;
        b->un_last = at_last;
        b->un_handed_hi = b->handed_hi;
        if (rid + 1 > b->handed_hi) {
            b->handed_hi = rid + 1;
        }
        b->inflight++;
        return 1;
    }
}

bool agent_buffer_unnext(agent_buffer_t *b)
{
    if (!b->un_ok) {
        return false;
    }
    b->rseg = b->un_seg;
    b->roff = b->un_off;
    b->rlast = b->un_last;
    b->handed_hi = b->un_handed_hi;
    if (b->inflight > 0) {
        b->inflight--;
    }
    b->un_ok = false;
    return true;
}

void agent_buffer_ack(agent_buffer_t *b, uint64_t id)
{
    b->un_ok = false;
    if (id < b->prefix || id >= b->next_id || bm_get(b, id)) {
        return;
    }
    if (bm_ensure(b, id) != 0 || !bm_set(b, id)) {
        return;
    }
    b->st.acked++;
    if (id < b->handed_hi && b->inflight > 0) {
        b->inflight--;
    }
    if (id == b->prefix) {
        advance(b);
        delete_acked(b);
    }
}

void agent_buffer_rewind(agent_buffer_t *b)
{
    reader_reset(b);
    b->inflight = 0;
    b->handed_hi = b->prefix;
}

uint64_t agent_buffer_inflight(const agent_buffer_t *b)
{
    return b->inflight;
}

int agent_buffer_sync(agent_buffer_t *b)
{
    int rc = 0;
    b->st.syncs++;
    if (b->wfd >= 0 && fdatasync(b->wfd) != 0) {
        rc = -errno;
    }
    for (size_t i = 0; i + 1 < b->nsegs; i++) {
        if (!b->segs[i].needs_sync) {
            continue;
        }
        char path[PATH_MAX];
        seg_path(path, sizeof(path), b->dir, b->segs[i].first_id);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || fdatasync(fd) != 0) {
            if (rc == 0) {
                rc = -errno;
            }
        } else {
            b->segs[i].needs_sync = false;
        }
        if (fd >= 0) {
            close(fd);
        }
    }
    if (b->dir_dirty) {
        fsync_dir(b->dir);
        b->dir_dirty = false;
    }
    if (b->ledger_id != b->prefix) {
        int lrc = ledger_write(b->dir, b->prefix);
        if (lrc == 0) {
            b->ledger_id = b->prefix;
        } else if (rc == 0) {
            rc = lrc;
        }
    }
    if (rc != 0) {
        b->st.sync_errors++;
    }
    return rc;
}

void agent_buffer_stats(const agent_buffer_t *b, agent_buffer_stats_t *st)
{
    *st = b->st;
    st->bytes = b->bytes;
    st->records = b->next_id - b->prefix - b->nset;
    st->disk_full_now = b->disk_full;
}

/* ---------------------------------------------------------------------- */
/* Offline: check and dump.                                               */

static int offline(const char *dir, FILE *out, agent_buffer_report_t *rep, scan_rec_cb cb,
                   void *arg)
{
    memset(rep, 0, sizeof(*rep));
    if (strlen(dir) > PATH_MAX - 64) {
        return -ENAMETOOLONG;
    }
    struct stat st;
    if (stat(dir, &st) != 0) {
        return -errno;
    }
    if (!S_ISDIR(st.st_mode)) {
        return -ENOTDIR;
    }
    agent_buffer_t *b = buffer_new(dir);
    if (b == NULL) {
        return -ENOMEM;
    }
    char lock[PATH_MAX];
    snprintf(lock, sizeof(lock), "%s/lock", dir);
    int lfd = open(lock, O_RDONLY | O_CLOEXEC);
    if (lfd >= 0) {
        struct flock fl = {.l_type = F_RDLCK, .l_whence = SEEK_SET};
        if (fcntl(lfd, F_OFD_GETLK, &fl) == 0 && fl.l_type != F_UNLCK) {
            if (out != NULL) {
                fprintf(out,
                        "warning: %s is open in a running agent: what follows may be out "
                        "of date\n",
                        dir);
            } else {
                TRIB_LOG(TRIB_LOG_WARN, FAC,
                         "%s is open in a running agent: what follows may be out of date", dir);
            }
        }
        close(lfd);
    }
    int rc = recover(b, false, out, rep, cb, arg);
    buffer_free(b);
    return rc;
}

int agent_buffer_check(const char *dir, FILE *out, agent_buffer_report_t *report)
{
    agent_buffer_report_t local;
    agent_buffer_report_t *rep = report != NULL ? report : &local;
    int rc = offline(dir, out, rep, NULL, NULL);
    if (rc != 0) {
        if (out != NULL) {
            fprintf(out, "%s: cannot read: %s\n", dir, trib_strerror(rc));
        }
        return rc;
    }
    bool damaged = rep->torn_bytes || rep->corrupt_records || rep->quarantined || rep->bad_ledger;
    if (out != NULL) {
        fprintf(out,
                "%s: %" PRIu64 " segments, %" PRIu64 " bytes, %" PRIu64
                " records not yet acknowledged (first id %" PRIu64 ", next id %" PRIu64
                "); torn %" PRIu64 " bytes, %" PRIu64 " damaged regions (%" PRIu64
                " bytes), %" PRIu64 " segments to quarantine: %s\n",
                dir, rep->segments, rep->bytes, rep->records, rep->first_id, rep->next_id,
                rep->torn_bytes, rep->corrupt_records, rep->corrupt_bytes, rep->quarantined,
                damaged ? "DAMAGED" : "ok");
    }
    return damaged ? 1 : 0;
}

static void json_str(agent_sbuf_t *sb, const char *p, size_t n)
{
    agent_sbuf_putc(sb, '"');
    agent_sbuf_json_str(sb, p, n);
    agent_sbuf_putc(sb, '"');
}

static int dump_rec(void *arg, uint64_t id, const agent_buffer_rec_t *r)
{
    FILE *out = arg;
    agent_sbuf_t sb = {0};
    char num[64];
    snprintf(num, sizeof(num), "{\"id\":%" PRIu64 ",\"topic\":", id);
    agent_sbuf_puts(&sb, num);
    json_str(&sb, r->topic, r->topic_len);
    agent_sbuf_puts(&sb, ",\"key\":");
    if (r->key == NULL) {
        agent_sbuf_puts(&sb, "null");
    } else {
        json_str(&sb, r->key, r->key_len);
    }
    snprintf(num, sizeof(num), ",\"ts\":%" PRId64 ",\"headers\":{", r->ts_ms);
    agent_sbuf_puts(&sb, num);
    for (size_t i = 0; i < r->nhdrs; i++) {
        if (i > 0) {
            agent_sbuf_putc(&sb, ',');
        }
        json_str(&sb, r->hdrs[i].name, r->hdrs[i].nlen);
        agent_sbuf_putc(&sb, ':');
        if (r->hdrs[i].val == NULL) {
            agent_sbuf_puts(&sb, "null");
        } else {
            json_str(&sb, r->hdrs[i].val, r->hdrs[i].vlen);
        }
    }
    agent_sbuf_puts(&sb, "},\"value\":");
    json_str(&sb, r->value, r->value_len);
    agent_sbuf_puts(&sb, "}\n");
    int rc = sb.err;
    if (rc == 0 && fwrite(sb.p, 1, sb.len, out) != sb.len) {
        rc = -EIO;
    }
    agent_sbuf_fini(&sb);
    return rc;
}

int agent_buffer_dump(const char *dir, FILE *out)
{
    agent_buffer_report_t rep;
    int rc = offline(dir, NULL, &rep, dump_rec, out);
    if (rc == 0 && fflush(out) != 0) {
        rc = -errno;
    }
    return rc;
}
