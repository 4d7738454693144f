/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Record batch compression codecs (see compress.h for the formats).
 *
 * Every decompressor writes into one growable region whose capacity never
 * passes max_out + 1: the spare byte is how a codec tells us there is more
 * output than allowed, so the bound is exact (max_out bytes succeed,
 * max_out + 1 fail) without trusting any size the input declares. Sizes the
 * input does declare (snappy's varint, zstd's content size) are only used
 * to fail early and to size the buffer, always after checking them against
 * the bound.
 *
 * Compressors stream through a fixed scratch chunk into the trib_buf_t, so
 * compressing a batch costs the compressed size plus one chunk.
 */
#include "tributary/compress.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <lz4frame.h>
#include <lz4hc.h>
#include <snappy-c.h>
#include <zlib.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "tributary/error.h"

#define CHUNK (64 * 1024)
#define XERIAL_BLOCK (32 * 1024)
#define XERIAL_HEADER_LEN 16

static const uint8_t xerial_magic[8] = {0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0};

static const char *const codec_names[] = {"none", "gzip", "snappy", "lz4", "zstd"};

const char *trib_codec_name(int codec)
{
    return trib_codec_valid(codec) ? codec_names[codec] : "unknown";
}

int trib_codec_from_name(const char *name)
{
    for (int i = TRIB_CODEC_NONE; i <= TRIB_CODEC_ZSTD; i++) {
        if (strcmp(name, codec_names[i]) == 0) {
            return i;
        }
    }
    return TRIB_EUNSUPPORTED;
}

/* ---- decompression output --------------------------------------------- */

void trib_decompress_out_init(trib_decompress_out_t *o)
{
    o->data = NULL;
    o->len = 0;
    o->cap = 0;
}

void trib_decompress_out_fini(trib_decompress_out_t *o)
{
    free(o->data);
    trib_decompress_out_init(o);
}

/* The capacity a decompressor may use: one byte past the bound. */
static size_t out_limit(size_t max_out)
{
    return max_out == SIZE_MAX ? SIZE_MAX : max_out + 1;
}

/*
 * Makes room for at least `extra` more bytes (at least one when extra is
 * 0), growing geometrically but never past `limit`. TRIB_ETOO_LARGE when
 * the limit leaves no room.
 */
static int out_grow(trib_decompress_out_t *o, size_t extra, size_t limit)
{
    if (extra == 0) {
        extra = 1;
    }
    if (o->cap - o->len >= extra) {
        return 0;
    }
    if (o->len >= limit || extra > limit - o->len) {
        return TRIB_ETOO_LARGE;
    }
    size_t need = o->len + extra;
    size_t cap = o->cap < 1024 ? 1024 : o->cap;
    while (cap < need) {
        cap = cap > SIZE_MAX / 2 ? SIZE_MAX : cap * 2;
    }
    if (cap > limit) {
        cap = limit;
    }
    uint8_t *p = realloc(o->data, cap);
    if (!p) {
        return -ENOMEM;
    }
    o->data = p;
    o->cap = cap;
    return 0;
}

/* ---- gzip ---------------------------------------------------------------- */

static int gzip_decompress(const uint8_t *src, size_t n, size_t max_out, trib_decompress_out_t *o)
{
    size_t limit = out_limit(max_out);
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    if (n > UINT_MAX) {
        return TRIB_ETOO_LARGE;
    }
    /* 16 + MAX_WBITS: gzip wrapper only, as Kafka specifies. */
    if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) {
        return -ENOMEM;
    }
    zs.next_in = (Bytef *)(uintptr_t)src;
    zs.avail_in = (uInt)n;
    int rc = 0;
    for (;;) {
        if (o->len == o->cap) {
            /* Start near a typical ratio; doubling does the rest. */
            rc = out_grow(o, o->cap ? 1 : (n < limit / 4 ? n * 4 : limit), limit);
            if (rc) {
                break;
            }
        }
        size_t room = o->cap - o->len;
        zs.next_out = o->data + o->len;
        zs.avail_out = room > UINT_MAX ? UINT_MAX : (uInt)room;
        uInt before_out = zs.avail_out;
        uInt before_in = zs.avail_in;
        int zr = inflate(&zs, Z_NO_FLUSH);
        o->len += before_out - zs.avail_out;
        if (o->len > max_out) {
            rc = TRIB_ETOO_LARGE;
            break;
        }
        if (zr == Z_STREAM_END) {
            if (zs.avail_in == 0) {
                break;
            }
            /* Another gzip member follows (concatenated streams). */
            if (inflateReset(&zs) != Z_OK) {
                rc = TRIB_ECOMPRESSION;
                break;
            }
            continue;
        }
        if (zr == Z_MEM_ERROR) {
            rc = -ENOMEM;
            break;
        }
        if (zr != Z_OK && zr != Z_BUF_ERROR) {
            rc = TRIB_ECOMPRESSION;
            break;
        }
        /* No progress with room to write: the stream is truncated. */
        if (zs.avail_out > 0 && zs.avail_in == before_in && zs.avail_out == before_out) {
            rc = TRIB_ECOMPRESSION;
            break;
        }
        if (zs.avail_in == 0 && zs.avail_out > 0) {
            /* Input exhausted before the end of the stream. */
            rc = TRIB_ECOMPRESSION;
            break;
        }
    }
    inflateEnd(&zs);
    return rc;
}

static int gzip_compress(trib_buf_t *out, int level, const uint8_t *src, size_t n)
{
    if (level == 0) {
        level = Z_DEFAULT_COMPRESSION;
    } else if (level < 1 || level > 9) {
        return -EINVAL;
    }
    if (n > UINT_MAX) {
        return TRIB_ETOO_LARGE;
    }
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    if (deflateInit2(&zs, level, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        return -ENOMEM;
    }
    uint8_t *chunk = malloc(CHUNK);
    if (!chunk) {
        deflateEnd(&zs);
        return -ENOMEM;
    }
    zs.next_in = (Bytef *)(uintptr_t)src;
    zs.avail_in = (uInt)n;
    int rc = 0;
    for (;;) {
        zs.next_out = chunk;
        zs.avail_out = CHUNK;
        int zr = deflate(&zs, Z_FINISH);
        if (zr != Z_OK && zr != Z_STREAM_END && zr != Z_BUF_ERROR) {
            rc = TRIB_ECOMPRESSION;
            break;
        }
        trib_buf_append(out, chunk, CHUNK - zs.avail_out);
        if (zr == Z_STREAM_END) {
            break;
        }
    }
    free(chunk);
    deflateEnd(&zs);
    return rc ? rc : trib_buf_error(out);
}

/* ---- snappy -------------------------------------------------------------- */

static int snappy_block(const uint8_t *src, size_t n, size_t max_out, trib_decompress_out_t *o)
{
    size_t ulen;
    if (n == 0 || snappy_uncompressed_length((const char *)src, n, &ulen) != SNAPPY_OK) {
        return TRIB_ECOMPRESSION;
    }
    if (o->len > max_out || ulen > max_out - o->len) {
        return TRIB_ETOO_LARGE;
    }
    if (ulen == 0) {
        char none[1];
        size_t got = sizeof(none);
        return snappy_uncompress((const char *)src, n, none, &got) == SNAPPY_OK && got == 0
                   ? 0
                   : TRIB_ECOMPRESSION;
    }
    int rc = out_grow(o, ulen, max_out);
    if (rc) {
        return rc;
    }
    size_t got = o->cap - o->len;
    if (snappy_uncompress((const char *)src, n, (char *)o->data + o->len, &got) != SNAPPY_OK ||
        got != ulen) {
        return TRIB_ECOMPRESSION;
    }
    o->len += got;
    return 0;
}

static uint32_t be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static int snappy_decompress(const uint8_t *src, size_t n, size_t max_out, trib_decompress_out_t *o)
{
    if (n < XERIAL_HEADER_LEN || memcmp(src, xerial_magic, sizeof(xerial_magic)) != 0) {
        return snappy_block(src, n, max_out, o);
    }
    /*
     * xerial framing. Version and compat are not checked: every writer in
     * the wild says 1/1 and the blocks have not changed since.
     */
    size_t pos = XERIAL_HEADER_LEN;
    while (pos < n) {
        if (n - pos < 4) {
            return TRIB_ECOMPRESSION;
        }
        uint32_t blen = be32(src + pos);
        pos += 4;
        if (blen > INT32_MAX || blen > n - pos) {
            return TRIB_ECOMPRESSION;
        }
        int rc = snappy_block(src + pos, blen, max_out, o);
        if (rc) {
            return rc;
        }
        pos += blen;
    }
    return 0;
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static int snappy_compress_xerial(trib_buf_t *out, int level, const uint8_t *src, size_t n)
{
    if (level != 0) {
        return -EINVAL;
    }
    uint8_t hdr[XERIAL_HEADER_LEN];
    memcpy(hdr, xerial_magic, sizeof(xerial_magic));
    put_be32(hdr + 8, 1);  /* version */
    put_be32(hdr + 12, 1); /* oldest compatible version */
    trib_buf_append(out, hdr, sizeof(hdr));

    size_t bound = snappy_max_compressed_length(XERIAL_BLOCK);
    uint8_t *block = malloc(4 + bound);
    if (!block) {
        return -ENOMEM;
    }
    int rc = 0;
    for (size_t pos = 0; pos < n; pos += XERIAL_BLOCK) {
        size_t k = n - pos < XERIAL_BLOCK ? n - pos : XERIAL_BLOCK;
        size_t clen = bound;
        if (snappy_compress((const char *)src + pos, k, (char *)block + 4, &clen) != SNAPPY_OK) {
            rc = TRIB_ECOMPRESSION;
            break;
        }
        put_be32(block, (uint32_t)clen);
        trib_buf_append(out, block, 4 + clen);
    }
    free(block);
    return rc ? rc : trib_buf_error(out);
}

/* ---- lz4 ----------------------------------------------------------------- */

static int lz4_decompress(const uint8_t *src, size_t n, size_t max_out, trib_decompress_out_t *o)
{
    size_t limit = out_limit(max_out);
    LZ4F_dctx *dctx = NULL;
    if (LZ4F_isError(LZ4F_createDecompressionContext(&dctx, LZ4F_VERSION))) {
        return -ENOMEM;
    }
    if (n == 0) {
        LZ4F_freeDecompressionContext(dctx);
        return TRIB_ECOMPRESSION;
    }
    size_t pos = 0;
    int rc = 0;
    for (;;) {
        if (o->len == o->cap) {
            rc = out_grow(o, o->cap ? 1 : (n < limit / 4 ? n * 4 : limit), limit);
            if (rc) {
                break;
            }
        }
        size_t dst = o->cap - o->len;
        size_t in = n - pos;
        size_t room = dst;
        size_t hint = LZ4F_decompress(dctx, o->data + o->len, &dst, src + pos, &in, NULL);
        if (LZ4F_isError(hint)) {
            rc = TRIB_ECOMPRESSION;
            break;
        }
        pos += in;
        o->len += dst;
        if (o->len > max_out) {
            rc = TRIB_ETOO_LARGE;
            break;
        }
        if (pos == n) {
            if (hint == 0) {
                break; /* the last frame is complete */
            }
            if (dst < room) {
                /* All input used, output not full, frame not finished. */
                rc = TRIB_ECOMPRESSION;
                break;
            }
        } else if (in == 0 && dst == 0) {
            rc = TRIB_ECOMPRESSION; /* no progress: never loop forever */
            break;
        }
    }
    LZ4F_freeDecompressionContext(dctx);
    return rc;
}

static int lz4_compress(trib_buf_t *out, int level, const uint8_t *src, size_t n)
{
    if (level < 0 || level > LZ4HC_CLEVEL_MAX) {
        return -EINVAL;
    }
    /*
     * What the Java client writes: independent 64 KiB blocks, no content
     * size, no checksums but the header's.
     */
    LZ4F_preferences_t prefs;
    memset(&prefs, 0, sizeof(prefs));
    prefs.frameInfo.blockSizeID = LZ4F_max64KB;
    prefs.frameInfo.blockMode = LZ4F_blockIndependent;
    prefs.frameInfo.contentChecksumFlag = LZ4F_noContentChecksum;
    prefs.compressionLevel = level;

    LZ4F_cctx *cctx = NULL;
    if (LZ4F_isError(LZ4F_createCompressionContext(&cctx, LZ4F_VERSION))) {
        return -ENOMEM;
    }
    size_t cap = LZ4F_compressBound(CHUNK, &prefs);
    if (cap < LZ4F_HEADER_SIZE_MAX) {
        cap = LZ4F_HEADER_SIZE_MAX;
    }
    uint8_t *chunk = malloc(cap);
    int rc = 0;
    if (!chunk) {
        rc = -ENOMEM;
        goto done;
    }
    size_t r = LZ4F_compressBegin(cctx, chunk, cap, &prefs);
    if (LZ4F_isError(r)) {
        rc = TRIB_ECOMPRESSION;
        goto done;
    }
    trib_buf_append(out, chunk, r);
    for (size_t pos = 0; pos < n; pos += CHUNK) {
        size_t k = n - pos < CHUNK ? n - pos : CHUNK;
        r = LZ4F_compressUpdate(cctx, chunk, cap, src + pos, k, NULL);
        if (LZ4F_isError(r)) {
            rc = TRIB_ECOMPRESSION;
            goto done;
        }
        trib_buf_append(out, chunk, r);
    }
    r = LZ4F_compressEnd(cctx, chunk, cap, NULL);
    if (LZ4F_isError(r)) {
        rc = TRIB_ECOMPRESSION;
        goto done;
    }
    trib_buf_append(out, chunk, r);
done:
    free(chunk);
    LZ4F_freeCompressionContext(cctx);
    return rc ? rc : trib_buf_error(out);
}

/* ---- zstd ---------------------------------------------------------------- */

/*
 * The largest window a frame may ask for. Frames that declare a content
 * size are sized by it; streamed frames (no content size, as the Java
 * client writes them) need their full window, which at the default levels
 * is at most 8 MiB. Beyond that only as far as the output bound makes
 * plausible, and never past zstd's own default limit of 128 MiB.
 */
static int zstd_window_log_max(size_t max_out)
{
    int wlog = 23;
    while (wlog < 27 && ((size_t)1 << wlog) < max_out) {
        wlog++;
    }
    return wlog;
}

static int zstd_decompress(const uint8_t *src, size_t n, size_t max_out, trib_decompress_out_t *o)
{
    size_t limit = out_limit(max_out);
    if (n == 0) {
        return TRIB_ECOMPRESSION;
    }
    unsigned long long csize = ZSTD_getFrameContentSize(src, n);
    if (csize == ZSTD_CONTENTSIZE_ERROR) {
        return TRIB_ECOMPRESSION;
    }
    if (csize != ZSTD_CONTENTSIZE_UNKNOWN && csize > max_out) {
        return TRIB_ETOO_LARGE;
    }
    ZSTD_DCtx *dctx = ZSTD_createDCtx();
    if (!dctx) {
        return -ENOMEM;
    }
    ZSTD_DCtx_setParameter(dctx, ZSTD_d_windowLogMax, zstd_window_log_max(max_out));
    ZSTD_inBuffer in = {src, n, 0};
    int rc = 0;
    for (;;) {
        if (o->len == o->cap) {
            /*
             * A declared size is trusted only up to a plausible ratio, so a
             * tiny frame cannot make us allocate the whole bound up front.
             */
            size_t first = n < limit / 4 ? n * 4 : limit;
            if (csize != ZSTD_CONTENTSIZE_UNKNOWN) {
                size_t plausible = n < (SIZE_MAX - CHUNK) / 32 ? n * 32 + CHUNK : SIZE_MAX;
                first = (size_t)csize + 1 < plausible ? (size_t)csize + 1 : plausible;
            }
            rc = out_grow(o, o->cap ? 1 : first, limit);
            if (rc) {
                break;
            }
        }
        ZSTD_outBuffer ob = {o->data + o->len, o->cap - o->len, 0};
        size_t in_before = in.pos;
        size_t r = ZSTD_decompressStream(dctx, &ob, &in);
        if (ZSTD_isError(r)) {
            ZSTD_ErrorCode ec = ZSTD_getErrorCode(r);
            rc = ec == ZSTD_error_memory_allocation               ? -ENOMEM
                 : ec == ZSTD_error_frameParameter_windowTooLarge ? TRIB_ETOO_LARGE
                                                                  : TRIB_ECOMPRESSION;
            break;
        }
        o->len += ob.pos;
        if (o->len > max_out) {
            rc = TRIB_ETOO_LARGE;
            break;
        }
        if (in.pos == in.size) {
            if (r == 0) {
                break; /* last frame complete and flushed */
            }
            if (ob.pos < ob.size) {
                rc = TRIB_ECOMPRESSION; /* truncated frame */
                break;
            }
        } else if (in.pos == in_before && ob.pos == 0 && ob.size > 0) {
            rc = TRIB_ECOMPRESSION; /* no progress: never loop forever */
            break;
        }
    }
    ZSTD_freeDCtx(dctx);
    return rc;
}

static int zstd_compress(trib_buf_t *out, int level, const uint8_t *src, size_t n)
{
    if (level != 0 && (level < ZSTD_minCLevel() || level > ZSTD_maxCLevel())) {
        return -EINVAL;
    }
    ZSTD_CCtx *cctx = ZSTD_createCCtx();
    if (!cctx) {
        return -ENOMEM;
    }
    uint8_t *chunk = malloc(CHUNK);
    int rc = 0;
    if (!chunk) {
        rc = -ENOMEM;
        goto done;
    }
    /* Level 0 is zstd's default (3). The content size goes in the header. */
    if (ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, level)) ||
        ZSTD_isError(ZSTD_CCtx_setPledgedSrcSize(cctx, n))) {
        rc = TRIB_ECOMPRESSION;
        goto done;
    }
    ZSTD_inBuffer in = {src, n, 0};
    for (;;) {
        ZSTD_outBuffer ob = {chunk, CHUNK, 0};
        size_t r = ZSTD_compressStream2(cctx, &ob, &in, ZSTD_e_end);
        if (ZSTD_isError(r)) {
            rc = TRIB_ECOMPRESSION;
            goto done;
        }
        trib_buf_append(out, chunk, ob.pos);
        if (r == 0) {
            break;
        }
    }
done:
    free(chunk);
    ZSTD_freeCCtx(cctx);
    return rc ? rc : trib_buf_error(out);
}

/* ---- dispatch ------------------------------------------------------------ */

int trib_compress(trib_buf_t *out, int codec, int level, const void *src, size_t n)
{
    if (trib_buf_error(out)) {
        return trib_buf_error(out);
    }
    switch (codec) {
    case TRIB_CODEC_NONE:
        trib_buf_append(out, src, n);
        return trib_buf_error(out);
    case TRIB_CODEC_GZIP:
        return gzip_compress(out, level, src, n);
    case TRIB_CODEC_SNAPPY:
        return snappy_compress_xerial(out, level, src, n);
    case TRIB_CODEC_LZ4:
        return lz4_compress(out, level, src, n);
    case TRIB_CODEC_ZSTD:
        return zstd_compress(out, level, src, n);
    default:
        return TRIB_EUNSUPPORTED;
    }
}

int trib_decompress(int codec, const void *src, size_t n, size_t max_out,
                    trib_decompress_out_t *out)
{
    const uint8_t *p = src;
    out->len = 0;
    switch (codec) {
    case TRIB_CODEC_NONE: {
        if (n > max_out) {
            return TRIB_ETOO_LARGE;
        }
        if (n == 0) {
            return 0;
        }
        int rc = out_grow(out, n, n);
        if (rc == 0 && n > 0) {
            memcpy(out->data, p, n);
            out->len = n;
        }
        return rc;
    }
    case TRIB_CODEC_GZIP:
        return gzip_decompress(p, n, max_out, out);
    case TRIB_CODEC_SNAPPY:
        return snappy_decompress(p, n, max_out, out);
    case TRIB_CODEC_LZ4:
        return lz4_decompress(p, n, max_out, out);
    case TRIB_CODEC_ZSTD:
        return zstd_decompress(p, n, max_out, out);
    default:
        return TRIB_EUNSUPPORTED;
    }
}

int trib_decompress_arena(int codec, const void *src, size_t n, size_t max_out, trib_arena_t *a,
                          const uint8_t **data, size_t *len)
{
    trib_decompress_out_t tmp;
    trib_decompress_out_init(&tmp);
    *data = NULL;
    *len = 0;
    int rc = trib_decompress(codec, src, n, max_out, &tmp);
    if (rc == 0) {
        /* The one deliberate copy: from growable scratch into the arena. */
        uint8_t *p = trib_arena_memdup(a, tmp.data, tmp.len);
        if (!p) {
            rc = -ENOMEM;
        } else {
            *data = p;
            *len = tmp.len;
        }
    }
    trib_decompress_out_fini(&tmp);
    return rc;
}
