/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A sticky-error slice reader: a cursor over borrowed bytes.
 *
 * Every read checks the bytes remaining. A short or malformed read sets
 * `err` (TRIB_ETRUNCATED or TRIB_EMALFORMED), consumes nothing and returns
 * zero; once set, the error sticks and every later read returns zero. A
 * decoder can therefore read a whole structure and check the flag once —
 * but it must check it before allocating from a count it read, and bound
 * every count by trib_slice_remaining().
 *
 * Integers are big-endian (network order), as in the Kafka protocol.
 * The reader never copies: trib_slice_take() returns a pointer into the
 * input, which the caller must keep alive.
 */
#ifndef TRIBUTARY_SLICE_H
#define TRIBUTARY_SLICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct trib_slice {
    const uint8_t *ptr; /* next unread byte */
    size_t len;         /* bytes remaining */
    int err;            /* 0, or the first error (sticky) */
} trib_slice_t;

static inline trib_slice_t trib_slice_make(const void *p, size_t len)
{
    trib_slice_t s = {(const uint8_t *)p, len, 0};
    return s;
}

static inline size_t trib_slice_remaining(const trib_slice_t *s)
{
    return s->err ? 0 : s->len;
}

static inline bool trib_slice_ok(const trib_slice_t *s)
{
    return s->err == 0;
}

/* Sets err if not already set; returns the sticky error. */
int trib_slice_fail(trib_slice_t *s, int err);

/* Returns a pointer to the next n bytes and consumes them, or NULL on error. */
const uint8_t *trib_slice_take(trib_slice_t *s, size_t n);

/* Splits off the next n bytes as their own slice (empty slice on error). */
trib_slice_t trib_slice_sub(trib_slice_t *s, size_t n);

void trib_slice_skip(trib_slice_t *s, size_t n);

bool trib_slice_bool(trib_slice_t *s); /* any non-zero byte is true */
int8_t trib_slice_i8(trib_slice_t *s);
uint8_t trib_slice_u8(trib_slice_t *s);
int16_t trib_slice_i16(trib_slice_t *s);
uint16_t trib_slice_u16(trib_slice_t *s);
int32_t trib_slice_i32(trib_slice_t *s);
uint32_t trib_slice_u32(trib_slice_t *s);
int64_t trib_slice_i64(trib_slice_t *s);
uint64_t trib_slice_u64(trib_slice_t *s);
double trib_slice_f64(trib_slice_t *s);

/* Unsigned varint of at most 5 bytes (a uint32). */
uint32_t trib_slice_uvarint32(trib_slice_t *s);
/* Unsigned varint of at most 10 bytes. */
uint64_t trib_slice_uvarint64(trib_slice_t *s);
/* Zigzag varint (int32) and varlong (int64), as in record batches. */
int32_t trib_slice_varint(trib_slice_t *s);
int64_t trib_slice_varlong(trib_slice_t *s);

#endif
