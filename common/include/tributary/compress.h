/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Compression codecs of Kafka record batches (attributes bits 0-2).
 *
 *   id  codec   library      wire format
 *   0   none    -            the bytes as they are
 *   1   gzip    zlib         RFC 1952 gzip (several members accepted)
 *   2   snappy  snappy-c     xerial framing (written); xerial or raw (read)
 *   3   lz4     lz4frame     LZ4 frame format, independent 64 KiB blocks
 *   4   zstd    libzstd      zstd frames, with or without content size
 *
 * The xerial snappy framing is what the Java client writes:
 *
 *   +------+----------+-----+---------+---------+---------+---------+--
 *   | 0x82 | "SNAPPY" | 0x00| version | compat  | len (4) | block   | ...
 *   |  1   |    6     |  1  | int32 1 | int32 1 | int32 BE| raw     |
 *   +------+----------+-----+---------+---------+---------+---------+--
 *
 * each block being raw snappy of at most 32 KiB of input.
 *
 * Decompression is bounded: output past `max_out` bytes fails with
 * TRIB_ETOO_LARGE, so a small hostile batch cannot expand into gigabytes.
 * Corrupt or truncated input fails with TRIB_ECOMPRESSION; an unknown codec
 * with TRIB_EUNSUPPORTED. Nothing here aborts or reads outside its input.
 */
#ifndef TRIBUTARY_COMPRESS_H
#define TRIBUTARY_COMPRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tributary/arena.h"
#include "tributary/buf.h"

enum trib_codec {
    TRIB_CODEC_NONE = 0,
    TRIB_CODEC_GZIP = 1,
    TRIB_CODEC_SNAPPY = 2,
    TRIB_CODEC_LZ4 = 3,
    TRIB_CODEC_ZSTD = 4,
};

/* "none", "gzip", "snappy", "lz4", "zstd"; "unknown" otherwise. */
const char *trib_codec_name(int codec);

/* Codec id for a name as above; TRIB_EUNSUPPORTED if unknown. */
int trib_codec_from_name(const char *name);

static inline bool trib_codec_valid(int codec)
{
    return codec >= TRIB_CODEC_NONE && codec <= TRIB_CODEC_ZSTD;
}

/*
 * Compresses src[0..n) with codec and appends the result to out. level 0
 * means the codec's default (gzip 6, lz4 fast, zstd 3); snappy has no
 * levels. Returns 0, TRIB_EUNSUPPORTED, TRIB_ECOMPRESSION or -ENOMEM (the
 * buffer's sticky error). On error out may hold a partial tail: callers
 * building a batch discard the whole buffer.
 */
int trib_compress(trib_buf_t *out, int codec, int level, const void *src, size_t n);

/*
 * Growable output memory owned by the caller (malloc/realloc). One of these
 * can be reused across many decompressions: each call replaces the
 * content but keeps the capacity.
 */
typedef struct trib_decompress_out {
    uint8_t *data;
    size_t len;
    size_t cap;
} trib_decompress_out_t;

void trib_decompress_out_init(trib_decompress_out_t *o);
void trib_decompress_out_fini(trib_decompress_out_t *o);

/*
 * Decompresses src[0..n) into out (replacing its content). Returns 0,
 * TRIB_ETOO_LARGE when the output would pass max_out bytes,
 * TRIB_ECOMPRESSION for corrupt or truncated input, TRIB_EUNSUPPORTED for
 * an unknown codec, -ENOMEM. On error out->len is unspecified.
 */
int trib_decompress(int codec, const void *src, size_t n, size_t max_out,
                    trib_decompress_out_t *out);

/*
 * Same, with the result in arena memory (*data valid until the arena is
 * freed; *data is non-NULL even for empty output). The codec writes into
 * temporary memory first and the result is copied into the arena once it
 * is complete, so the arena never holds a half-grown buffer.
 */
int trib_decompress_arena(int codec, const void *src, size_t n, size_t max_out, trib_arena_t *a,
                          const uint8_t **data, size_t *len);

#endif
