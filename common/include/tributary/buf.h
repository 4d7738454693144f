/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A segment buffer for building wire messages.
 *
 * Bytes are appended to a chain of segments. Owned segments hold copied
 * bytes; reference segments point at borrowed memory (record data from a
 * request, say) so large payloads go out without a copy. The buffer is
 * written out with writev() through trib_buf_iovec().
 *
 *   head -> [own 4 KiB: header ...] -> [ref: 1 MiB of records] -> [own ...]
 *
 * Back-patching: trib_buf_reserve() returns the absolute position of n
 * contiguous owned bytes (a length or CRC placeholder) that are filled in
 * later with trib_buf_patch*(), once the bytes they describe are written.
 * trib_buf_crc32c() checksums any range, across segments.
 *
 * Errors are sticky: an allocation failure sets `err` (-ENOMEM), later
 * writes do nothing, and the caller checks trib_buf_error() once at the
 * end. trib_buf_init/fini work on caller memory; the struct's fields are
 * private.
 */
#ifndef TRIBUTARY_BUF_H
#define TRIBUTARY_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

typedef struct trib_buf_seg {
    struct trib_buf_seg *next;
    uint8_t *data;
    size_t len;
    size_t cap; /* 0 for a reference segment */
} trib_buf_seg_t;

typedef struct trib_buf {
    trib_buf_seg_t *head;
    trib_buf_seg_t *tail;
    size_t len;      /* total bytes */
    size_t next_cap; /* capacity of the next owned segment */
    int err;         /* sticky: 0 or -ENOMEM */
} trib_buf_t;

/* References shorter than this are copied: a segment costs more. */
#define TRIB_BUF_REF_MIN 256

void trib_buf_init(trib_buf_t *b);
void trib_buf_fini(trib_buf_t *b);
/* Empties the buffer, keeping nothing. */
void trib_buf_reset(trib_buf_t *b);

static inline size_t trib_buf_len(const trib_buf_t *b)
{
    return b->len;
}

static inline int trib_buf_error(const trib_buf_t *b)
{
    return b->err;
}

void trib_buf_append(trib_buf_t *b, const void *p, size_t n);
/* Appends a reference to p[0..n): p must outlive every use of the buffer. */
void trib_buf_append_ref(trib_buf_t *b, const void *p, size_t n);

void trib_buf_put_i8(trib_buf_t *b, int8_t v);
void trib_buf_put_u8(trib_buf_t *b, uint8_t v);
void trib_buf_put_i16(trib_buf_t *b, int16_t v);
void trib_buf_put_u16(trib_buf_t *b, uint16_t v);
void trib_buf_put_i32(trib_buf_t *b, int32_t v);
void trib_buf_put_u32(trib_buf_t *b, uint32_t v);
void trib_buf_put_i64(trib_buf_t *b, int64_t v);
void trib_buf_put_f64(trib_buf_t *b, double v);
void trib_buf_put_bool(trib_buf_t *b, bool v);
void trib_buf_put_uvarint(trib_buf_t *b, uint64_t v);
void trib_buf_put_varint(trib_buf_t *b, int32_t v);  /* zigzag */
void trib_buf_put_varlong(trib_buf_t *b, int64_t v); /* zigzag */

/*
 * Reserves n contiguous bytes (zero-filled) and returns their position.
 * On error the position is still returned and patching it does nothing.
 */
size_t trib_buf_reserve(trib_buf_t *b, size_t n);

/* Overwrites bytes at an absolute position previously written. */
void trib_buf_patch(trib_buf_t *b, size_t pos, const void *p, size_t n);
void trib_buf_patch_i16(trib_buf_t *b, size_t pos, int16_t v);
void trib_buf_patch_i32(trib_buf_t *b, size_t pos, int32_t v);
void trib_buf_patch_u32(trib_buf_t *b, size_t pos, uint32_t v);
void trib_buf_patch_i64(trib_buf_t *b, size_t pos, int64_t v);

/* CRC32C (Castagnoli) of bytes [from, to). */
uint32_t trib_buf_crc32c(const trib_buf_t *b, size_t from, size_t to);

/* Number of iovecs trib_buf_iovec() needs. */
int trib_buf_iovcnt(const trib_buf_t *b);
/* Fills up to max iovecs; returns how many were filled. */
int trib_buf_iovec(const trib_buf_t *b, struct iovec *iov, int max);

/* Copies bytes [pos, pos+n) out; returns bytes copied. */
size_t trib_buf_copyout(const trib_buf_t *b, size_t pos, void *dst, size_t n);

/*
 * Returns the whole content as one contiguous region, merging segments into
 * one owned segment if needed (references are copied). NULL on error or
 * when empty (then *len = 0).
 */
const uint8_t *trib_buf_flatten(trib_buf_t *b, size_t *len);

#endif
