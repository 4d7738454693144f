/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unsigned LEB128 varints and zigzag signed varints, as the Kafka protocol
 * uses them (unsigned varints for compact lengths and tag numbers, zigzag
 * varints/varlongs inside record batches).
 *
 *   value 300 -> bytes ac 02      (7 bits per byte, low group first,
 *                                  high bit = more bytes follow)
 *   zigzag:  0 -> 0, -1 -> 1, 1 -> 2, -2 -> 3 …
 *
 * A 32-bit varint takes at most 5 bytes, a 64-bit one at most 10. Decoders
 * reject overlong encodings that would overflow the target width.
 */
#ifndef TRIBUTARY_VARINT_H
#define TRIBUTARY_VARINT_H

#include <stddef.h>
#include <stdint.h>

#define TRIB_VARINT_MAX32 5
#define TRIB_VARINT_MAX64 10

static inline uint64_t trib_zigzag64(int64_t v)
{
    return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static inline int64_t trib_unzigzag64(uint64_t v)
{
    return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

static inline uint32_t trib_zigzag32(int32_t v)
{
    return ((uint32_t)v << 1) ^ (uint32_t)(v >> 31);
}

static inline int32_t trib_unzigzag32(uint32_t v)
{
    return (int32_t)(v >> 1) ^ -(int32_t)(v & 1);
}

/* Writes v to out (at least TRIB_VARINT_MAX64 bytes); returns bytes written. */
size_t trib_uvarint_encode(uint8_t *out, uint64_t v);

/* Bytes trib_uvarint_encode would write. */
size_t trib_uvarint_size(uint64_t v);

/*
 * Decodes an unsigned varint of at most maxbytes (5 for 32-bit values, 10
 * for 64-bit) from p[0..len). Returns bytes consumed, TRIB_ETRUNCATED if
 * the input ends first, TRIB_EMALFORMED if it is longer than maxbytes or
 * overflows 64 bits.
 */
int trib_uvarint_decode(const uint8_t *p, size_t len, size_t maxbytes, uint64_t *out);

#endif
