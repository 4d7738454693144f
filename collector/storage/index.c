/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Sparse segment indexes, in Kafka's file formats (big-endian).
 *
 * <base>.index: offset -> file position, 8 bytes per entry
 *
 *   off  size  field
 *   0    4     relative offset   batch last offset - segment base offset
 *   4    4     position          byte position of the batch in the .log
 *
 * <base>.timeindex: timestamp -> offset, 12 bytes per entry
 *
 *   off  size  field
 *   0    8     timestamp         largest maxTimestamp seen so far
 *   8    4     relative offset   last offset of the batch that had it
 *
 * When entries are made (append, recovery and compaction use the same
 * rule, as Kafka's LogSegment does): before a batch at position p is
 * accounted, if p - (position of the last offset entry, 0 at first) >
 * index.interval.bytes, an offset entry (batch last offset, p) is added,
 * and a time entry (max timestamp so far, its offset) if that maximum grew
 * since the last time entry. When a segment stops being active one more
 * time entry records its true maximum, so a closed segment's largest
 * timestamp is its last time entry.
 *
 * Lookups. Offsets: the largest entry whose relative offset is <= the
 * target gives a position at or before the batch holding the target (the
 * entry's batch ends at or before it); the caller scans batch headers from
 * there. Time: the largest entry whose timestamp is < the target; every
 * record up to its offset is older than the target, so the first record
 * >= target lies after it.
 *
 * Memory. The active segment's files are sized to segment.index.bytes
 * (sparse, so no disk is used) and mapped read-write: appending an entry
 * is a store into the page cache. A store into a hole needs a block the
 * filesystem may not have, and on a full disk the kernel answers that
 * with SIGBUS, which no error path can catch. So a store never goes past
 * `backed`, the prefix known to have blocks: entries written earlier, or
 * space given by posix_fallocate. Before an append the segment reserves
 * blocks for the entries it may add (coll_index_reserve, in 16 KiB steps,
 * opening the file by name so no descriptor stays open), and a full disk
 * fails the append before its batch is written rather than leaving a batch
 * without its index entry. When the segment rolls, the mapping goes and
 * the files are truncated to their entries.
 * Inactive segments map their (small, trimmed) files read-only on demand
 * and unmap them when the segment's fd is closed for idleness, so index
 * memory is page cache the kernel can reclaim, bounded by the open
 * segment count, never heap.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/storage_int.h"

void coll_index_init(coll_index_t *ix, unsigned entry_size)
{
    memset(ix, 0, sizeof(*ix));
    ix->entry_size = (uint8_t)entry_size;
}

int coll_index_map_ro(coll_index_t *ix, const char *path)
{
    coll_index_unmap(ix);
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
    size_t n = (size_t)stb.st_size / ix->entry_size;
    if (n > UINT32_MAX) {
        close(fd);
        return TRIB_EMALFORMED;
    }
    if (n > 0) {
        void *m = mmap(NULL, n * ix->entry_size, PROT_READ, MAP_SHARED, fd, 0);
        if (m == MAP_FAILED) {
            int rc = -errno;
            close(fd);
            return rc;
        }
        ix->map = m;
        ix->map_len = n * ix->entry_size;
    }
    close(fd);
    ix->entries = (uint32_t)n;
    ix->capacity = (uint32_t)n;
    ix->writable = false;
    return 0;
}

#define INDEX_RESERVE_STEP (16u << 10)

/* Blocks for `more` entries past the valid ones, in whole steps when the disk has them. */
static int index_fallocate(coll_index_t *ix, int fd, uint32_t more)
{
    uint64_t need = ((uint64_t)ix->entries + more) * ix->entry_size;
    if (need > ix->map_len) {
        need = ix->map_len; /* the caller rolls on a full index first */
    }
    if (need <= ix->backed) {
        return 0;
    }
    uint64_t want = (need + INDEX_RESERVE_STEP - 1) / INDEX_RESERVE_STEP * INDEX_RESERVE_STEP;
    if (want > ix->map_len) {
        want = ix->map_len;
    }
    int err = posix_fallocate(fd, 0, (off_t)want);
    if (err == ENOSPC || err == EDQUOT) {
        /* Short of a whole step: what this append needs may still fit. */
        want = need;
        err = posix_fallocate(fd, 0, (off_t)want);
    }
    if (err != 0) {
        return -err;
    }
    ix->backed = (size_t)want;
    return 0;
}

/* Claims the slot of entry number `entries`, never past the blocks known to exist. */
static uint8_t *index_slot(coll_index_t *ix)
{
    size_t off = (size_t)ix->entries * ix->entry_size;
    if (!ix->writable || ix->entries >= ix->capacity || off + ix->entry_size > ix->backed) {
        return NULL;
    }
    return ix->map + off;
}

int coll_index_map_rw(coll_index_t *ix, const char *path, uint32_t entries, size_t prealloc)
{
    coll_index_unmap(ix);
    size_t esz = ix->entry_size;
    size_t cap = prealloc / esz;
    if (cap < (size_t)entries + 16) {
        cap = (size_t)entries + 16;
    }
    if (cap > UINT32_MAX) {
        cap = UINT32_MAX;
    }
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        return -errno;
    }
    int rc = 0;
    /* Growing the size is metadata only: it needs no free block. */
    if (ftruncate(fd, (off_t)(cap * esz)) != 0) {
        rc = -errno;
        close(fd);
        return rc;
    }
    void *m = mmap(NULL, cap * esz, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) {
        rc = -errno;
        close(fd);
        return rc;
    }
    ix->map = m;
    ix->map_len = cap * esz;
    ix->entries = entries;
    ix->capacity = (uint32_t)cap;
    ix->writable = true;
    /* Entries kept were written once, so they have blocks; the rest may be a hole. */
    ix->backed = (size_t)entries * esz;
    /* A head start; on a full disk the first append reports it instead. */
    (void)index_fallocate(ix, fd, 1);
    close(fd);
    return 0;
}

bool coll_index_backed_for(const coll_index_t *ix, uint32_t more)
{
    uint64_t need = ((uint64_t)ix->entries + more) * ix->entry_size;
    return need <= ix->backed || ix->backed >= ix->map_len;
}

int coll_index_reserve(coll_index_t *ix, const char *path, uint32_t more)
{
    if (!ix->writable) {
        return TRIB_ESTATE;
    }
    if (coll_index_backed_for(ix, more)) {
        return 0;
    }
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        return -errno;
    }
    int rc = index_fallocate(ix, fd, more);
    close(fd);
    return rc;
}

void coll_index_unmap(coll_index_t *ix)
{
    if (ix->map) {
        munmap(ix->map, ix->map_len);
    }
    ix->backed = 0;
    ix->map = NULL;
    ix->map_len = 0;
    ix->capacity = 0;
    ix->writable = false;
}

int coll_index_trim(coll_index_t *ix, const char *path)
{
    uint32_t n = ix->entries;
    coll_index_unmap(ix);
    ix->entries = n;
    if (truncate(path, (off_t)n * ix->entry_size) != 0) {
        return -errno;
    }
    return 0;
}

bool coll_index_full(const coll_index_t *ix, uint32_t more)
{
    return (uint64_t)ix->entries + more > ix->capacity;
}

/* ---- offset index ---------------------------------------------------------------- */

int coll_oindex_append(coll_index_t *ix, uint32_t rel, uint32_t pos)
{
    uint8_t *e = index_slot(ix);
    if (!e) {
        return TRIB_ELIMIT;
    }
    coll_wr32(e, rel);
    coll_wr32(e + 4, pos);
    ix->entries++;
    return 0;
}

void coll_oindex_entry(const coll_index_t *ix, uint32_t i, uint32_t *rel, uint32_t *pos)
{
    const uint8_t *e = ix->map + (size_t)i * COLL_OFFSET_ENTRY_SIZE;
    *rel = coll_rd32(e);
    *pos = coll_rd32(e + 4);
}

bool coll_oindex_lookup(const coll_index_t *ix, uint32_t rel, uint32_t *erel, uint32_t *epos)
{
    if (!ix->map || ix->entries == 0) {
        return false;
    }
    /* First entry with relative offset > rel. */
    uint32_t lo = 0, hi = ix->entries;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        uint32_t r, p;
        coll_oindex_entry(ix, mid, &r, &p);
        if (r <= rel) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    if (lo == 0) {
        return false;
    }
    coll_oindex_entry(ix, lo - 1, erel, epos);
    return true;
}

bool coll_oindex_lookup_pos(const coll_index_t *ix, uint32_t pos, uint32_t max_rel, uint32_t *erel,
                            uint32_t *epos)
{
    if (!ix->map || ix->entries == 0) {
        return false;
    }
    /* Entries increase in both fields: the first entry failing either bound. */
    uint32_t lo = 0, hi = ix->entries;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        uint32_t r, p;
        coll_oindex_entry(ix, mid, &r, &p);
        if (p <= pos && r < max_rel) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    if (lo == 0) {
        return false;
    }
    coll_oindex_entry(ix, lo - 1, erel, epos);
    return true;
}

void coll_oindex_truncate(coll_index_t *ix, uint32_t rel)
{
    if (!ix->map) {
        ix->entries = 0;
        return;
    }
    while (ix->entries > 0) {
        uint32_t r, p;
        coll_oindex_entry(ix, ix->entries - 1, &r, &p);
        if (r < rel) {
            break;
        }
        ix->entries--;
    }
}

/* ---- time index ------------------------------------------------------------------ */

int coll_tindex_append(coll_index_t *ix, int64_t ts, uint32_t rel)
{
    uint8_t *e = index_slot(ix);
    if (!e) {
        return TRIB_ELIMIT;
    }
    coll_wr64(e, (uint64_t)ts);
    coll_wr32(e + 8, rel);
    ix->entries++;
    return 0;
}

void coll_tindex_entry(const coll_index_t *ix, uint32_t i, int64_t *ts, uint32_t *rel)
{
    const uint8_t *e = ix->map + (size_t)i * COLL_TIME_ENTRY_SIZE;
    *ts = (int64_t)coll_rd64(e);
    *rel = coll_rd32(e + 8);
}

bool coll_tindex_lookup(const coll_index_t *ix, int64_t ts, int64_t *ets, uint32_t *erel)
{
    if (!ix->map || ix->entries == 0) {
        return false;
    }
    uint32_t lo = 0, hi = ix->entries;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        int64_t t;
        uint32_t r;
        coll_tindex_entry(ix, mid, &t, &r);
        if (t < ts) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    if (lo == 0) {
        return false;
    }
    coll_tindex_entry(ix, lo - 1, ets, erel);
    return true;
}

void coll_tindex_truncate(coll_index_t *ix, uint32_t rel)
{
    if (!ix->map) {
        ix->entries = 0;
        return;
    }
    while (ix->entries > 0) {
        int64_t t;
        uint32_t r;
        coll_tindex_entry(ix, ix->entries - 1, &t, &r);
        if (r < rel) {
            break;
        }
        ix->entries--;
    }
}

/* ---- checks and whole-file writes ------------------------------------------------- */

int coll_index_check(const char *path, unsigned entry_size, uint64_t seg_size, const char **why,
                     int64_t *last_ts, uint32_t *last_rel, uint32_t *last_pos)
{
    *why = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        *why = "missing";
        return -errno;
    }
    struct stat stb;
    int rc = 0;
    uint8_t *buf = NULL;
    if (fstat(fd, &stb) != 0) {
        rc = -errno;
        *why = "unreadable";
        goto out;
    }
    size_t len = (size_t)stb.st_size;
    if (len % entry_size != 0) {
        *why = "a partial entry at its end";
        rc = TRIB_EMALFORMED;
        goto out;
    }
    if (len / entry_size > UINT32_MAX) {
        *why = "too large";
        rc = TRIB_EMALFORMED;
        goto out;
    }
    if (len > 0) {
        buf = malloc(len);
        if (!buf) {
            rc = -ENOMEM;
            goto out;
        }
        ssize_t r = trib_pread_all(fd, buf, len, 0);
        if (r < 0 || (size_t)r != len) {
            *why = "unreadable";
            rc = r < 0 ? (int)r : TRIB_ETRUNCATED;
            goto out;
        }
    }
    size_t n = len / entry_size;
    if (entry_size == COLL_OFFSET_ENTRY_SIZE) {
        uint32_t prel = 0, ppos = 0;
        for (size_t i = 0; i < n; i++) {
            uint32_t rel = coll_rd32(buf + i * 8), pos = coll_rd32(buf + i * 8 + 4);
            if (pos >= seg_size) {
                *why = "an entry past the end of the log file";
                rc = TRIB_EMALFORMED;
                goto out;
            }
            if (i > 0 && (rel <= prel || pos <= ppos)) {
                *why = "entries out of order";
                rc = TRIB_EMALFORMED;
                goto out;
            }
            prel = rel;
            ppos = pos;
        }
        if (last_rel) {
            *last_rel = n ? prel : 0;
        }
        if (last_pos) {
            *last_pos = n ? ppos : 0;
        }
    } else {
        int64_t pts = -1;
        uint32_t prel = 0;
        for (size_t i = 0; i < n; i++) {
            int64_t ts = (int64_t)coll_rd64(buf + i * 12);
            uint32_t rel = coll_rd32(buf + i * 12 + 8);
            if (i > 0 && (ts <= pts || rel < prel)) {
                *why = "entries out of order";
                rc = TRIB_EMALFORMED;
                goto out;
            }
            if (seg_size == 0) {
                *why = "entries for an empty log file";
                rc = TRIB_EMALFORMED;
                goto out;
            }
            pts = ts;
            prel = rel;
        }
        if (last_ts) {
            *last_ts = n ? pts : -1;
        }
        if (last_rel) {
            *last_rel = n ? prel : 0;
        }
    }
out:
    free(buf);
    close(fd);
    return rc;
}

int coll_index_write_file(const char *path, const void *entries, size_t len, bool sync)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        return -errno;
    }
    int rc = trib_pwrite_all(fd, entries, len, 0);
    if (rc == 0 && sync && fdatasync(fd) != 0) {
        rc = -errno;
    }
    if (close(fd) != 0 && rc == 0) {
        rc = -errno;
    }
    return rc;
}

/* ---- builder ---------------------------------------------------------------------- */

void coll_index_builder_init(coll_index_builder_t *b, uint32_t interval)
{
    memset(b, 0, sizeof(*b));
    b->max_ts = -1;
    b->max_ts_offset = -1;
    b->last_ti_ts = -1;
    b->interval = interval;
}

void coll_index_builder_fini(coll_index_builder_t *b)
{
    free(b->oi);
    free(b->ti);
    memset(b, 0, sizeof(*b));
}

static void builder_put(coll_index_builder_t *b, uint8_t **buf, size_t *len, size_t *cap,
                        const uint8_t *e, size_t n)
{
    if (b->err) {
        return;
    }
    if (*len + n > *cap) {
        size_t ncap = *cap ? *cap * 2 : 4096;
        uint8_t *nb = realloc(*buf, ncap);
        if (!nb) {
            b->err = -ENOMEM;
            return;
        }
        *buf = nb;
        *cap = ncap;
    }
    memcpy(*buf + *len, e, n);
    *len += n;
}

static void builder_time_entry(coll_index_builder_t *b, int64_t base)
{
    if (b->max_ts > b->last_ti_ts) {
        uint8_t e[COLL_TIME_ENTRY_SIZE];
        coll_wr64(e, (uint64_t)b->max_ts);
        coll_wr32(e + 8, (uint32_t)(b->max_ts_offset - base));
        builder_put(b, &b->ti, &b->ti_len, &b->ti_cap, e, sizeof(e));
        b->last_ti_ts = b->max_ts;
    }
}

void coll_index_builder_add(coll_index_builder_t *b, int64_t base, uint64_t pos, uint32_t size,
                            int64_t last_offset, int64_t max_ts)
{
    (void)size;
    if (max_ts > b->max_ts) {
        b->max_ts = max_ts;
        b->max_ts_offset = last_offset;
    }
    if (pos - b->last_index_pos > b->interval) {
        uint8_t e[COLL_OFFSET_ENTRY_SIZE];
        coll_wr32(e, (uint32_t)(last_offset - base));
        coll_wr32(e + 4, (uint32_t)pos);
        builder_put(b, &b->oi, &b->oi_len, &b->oi_cap, e, sizeof(e));
        builder_time_entry(b, base);
        b->last_index_pos = pos;
    }
}

void coll_index_builder_finish(coll_index_builder_t *b, int64_t base)
{
    builder_time_entry(b, base);
}
