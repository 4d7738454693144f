/* SPDX-License-Identifier: Apache-2.0 */
/*
 * record_tool: the C side of the record batch oracle (oracle_records.py).
 *
 *   record_tool dump FILE
 *       Splits FILE (concatenated batches, maybe a partial tail) into
 *       batches and prints one JSON object: every header field, whether the
 *       CRC checks, and every record (offset, timestamp, key, value,
 *       headers; bytes in hex, null as null). Control records are decoded.
 *
 *   record_tool rebuild IN OUT [CODEC|same] [LEVEL]
 *       Parses every batch of IN and builds it again with our builder:
 *       same header fields, same offset and timestamp deltas, same records,
 *       compressed with CODEC (0-4, default: the batch's own) at LEVEL
 *       (gzip, lz4, zstd; default 0, the codec's default). Writes the
 *       batches to OUT.
 *
 * Exit status: 0, 1 on a parse or build error (message on stderr), 2 on
 * bad usage.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tributary/buf.h"
#include "tributary/compress.h"
#include "tributary/error.h"
#include "tributary/record.h"

#define MAX_DECOMPRESSED (256u << 20)

static uint8_t *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "record_tool: %s: %s\n", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    uint8_t *p = malloc(cap);
    while (p) {
        size_t k = fread(p + n, 1, cap - n, f);
        n += k;
        if (n < cap) {
            break;
        }
        uint8_t *q = realloc(p, cap * 2);
        if (!q) {
            free(p);
            p = NULL;
            break;
        }
        p = q;
        cap *= 2;
    }
    fclose(f);
    *len = n;
    return p;
}

static void put_hex(const uint8_t *p, int32_t len)
{
    if (len < 0) {
        fputs("null", stdout);
        return;
    }
    putchar('"');
    for (int32_t i = 0; i < len; i++) {
        printf("%02x", p[i]);
    }
    putchar('"');
}

static int fail(const char *what, int rc)
{
    fprintf(stderr, "record_tool: %s: %s (%s)\n", what, trib_strerror(rc), trib_errname(rc));
    return 1;
}

static int dump_records(const trib_batch_t *b)
{
    trib_record_iter_t it;
    int rc = trib_record_iter_init(&it, b, NULL, MAX_DECOMPRESSED);
    trib_record_t r;
    int first = 1;
    fputs(",\"records\":[", stdout);
    while (rc == 0 && (rc = trib_record_iter_next(&it, &r)) == 1) {
        rc = 0;
        printf("%s{\"offset\":%" PRId64 ",\"offset_delta\":%" PRId32 ",\"timestamp\":%" PRId64
               ",\"timestamp_delta\":%" PRId64 ",\"attributes\":%d,\"key\":",
               first ? "" : ",", r.offset, r.offset_delta, r.timestamp, r.timestamp_delta,
               r.attributes);
        first = 0;
        put_hex(r.key.ptr, r.key.len);
        fputs(",\"value\":", stdout);
        put_hex(r.value.ptr, r.value.len);
        fputs(",\"headers\":[", stdout);
        trib_record_header_iter_t hi;
        trib_record_header_t h;
        trib_record_header_iter_init(&hi, &r);
        int hfirst = 1, hr;
        while ((hr = trib_record_header_iter_next(&hi, &h)) == 1) {
            fputs(hfirst ? "[" : ",[", stdout);
            hfirst = 0;
            put_hex(h.key.ptr, h.key.len);
            putchar(',');
            put_hex(h.value.ptr, h.value.len);
            putchar(']');
        }
        putchar(']');
        if (trib_batch_is_control(b)) {
            trib_control_record_t c;
            if (trib_control_record_parse(&r, &c) == 0) {
                printf(",\"control\":{\"version\":%d,\"type\":%d", c.version, c.type);
                if (c.has_coordinator_epoch) {
                    printf(",\"coordinator_epoch\":%" PRId32, c.coordinator_epoch);
                }
                putchar('}');
            }
        }
        putchar('}');
        if (hr < 0) {
            rc = hr;
        }
    }
    putchar(']');
    trib_record_iter_fini(&it);
    return rc;
}

static int cmd_dump(const char *path)
{
    size_t len;
    uint8_t *data = read_file(path, &len);
    if (!data) {
        return 1;
    }
    trib_batch_iter_t it;
    trib_batch_iter_init(&it, data, len, TRIB_BATCH_SKIP_CRC);
    trib_batch_t b;
    int rc, n = 0;
    fputs("{\"batches\":[", stdout);
    while ((rc = trib_batch_iter_next(&it, &b)) == 1) {
        uint32_t crc = trib_batch_compute_crc(b.data, b.size);
        printf("%s{\"base_offset\":%" PRId64 ",\"batch_length\":%" PRId32
               ",\"partition_leader_epoch\":%" PRId32 ",\"magic\":%d,\"crc\":%" PRIu32
               ",\"crc_ok\":%s,\"attributes\":%d,\"codec\":%d,\"timestamp_type\":%d"
               ",\"transactional\":%s,\"control\":%s,\"delete_horizon\":%s"
               ",\"last_offset_delta\":%" PRId32 ",\"base_timestamp\":%" PRId64
               ",\"max_timestamp\":%" PRId64 ",\"producer_id\":%" PRId64
               ",\"producer_epoch\":%d,\"base_sequence\":%" PRId32 ",\"record_count\":%" PRId32
               ",\"size\":%zu",
               n ? "," : "", b.base_offset, b.batch_length, b.partition_leader_epoch, b.magic,
               b.crc, crc == b.crc ? "true" : "false", b.attributes, trib_batch_codec(&b),
               trib_batch_timestamp_type(&b), trib_batch_is_transactional(&b) ? "true" : "false",
               trib_batch_is_control(&b) ? "true" : "false",
               trib_batch_has_delete_horizon(&b) ? "true" : "false", b.last_offset_delta,
               b.base_timestamp, b.max_timestamp, b.producer_id, b.producer_epoch, b.base_sequence,
               b.record_count, b.size);
        int rr = dump_records(&b);
        putchar('}');
        n++;
        if (rr) {
            fflush(stdout);
            free(data);
            return fail("records", rr);
        }
    }
    printf("],\"partial\":%zu}\n", trib_batch_iter_partial(&it));
    free(data);
    if (rc) {
        fflush(stdout);
        return fail("batch", rc);
    }
    return 0;
}

/* Rebuilds one parsed batch into out. */
static int rebuild_one(const trib_batch_t *b, int codec, int level, trib_buf_t *out)
{
    trib_batch_opts_t o;
    trib_batch_opts_init(&o);
    o.base_offset = b->base_offset;
    o.partition_leader_epoch = b->partition_leader_epoch;
    o.producer_id = b->producer_id;
    o.producer_epoch = b->producer_epoch;
    o.base_sequence = b->base_sequence;
    o.codec = codec < 0 ? trib_batch_codec(b) : codec;
    /* Snappy has no levels: LEVEL applies to the codecs that have them. */
    o.level = o.codec == TRIB_CODEC_SNAPPY ? 0 : level;
    o.timestamp_type = trib_batch_timestamp_type(b);
    o.log_append_time = b->max_timestamp;
    o.transactional = trib_batch_is_transactional(b);
    o.control = trib_batch_is_control(b);
    o.delete_horizon = trib_batch_has_delete_horizon(b);
    o.use_base_timestamp = true;
    o.base_timestamp = b->base_timestamp;

    trib_record_iter_t it;
    trib_batch_builder_t bb;
    int rc = trib_batch_builder_init(&bb, out, &o);
    int ri = trib_record_iter_init(&it, b, NULL, MAX_DECOMPRESSED);
    if (rc == 0) {
        rc = ri;
    }
    trib_record_t r;
    /* Headers are re-collected per record (a view array). */
    trib_record_header_t *hs = NULL;
    size_t hcap = 0;
    while (rc == 0 && (ri = trib_record_iter_next(&it, &r)) == 1) {
        if ((size_t)r.header_count > hcap) {
            trib_record_header_t *nh = realloc(hs, (size_t)r.header_count * sizeof(*hs));
            if (!nh) {
                rc = -ENOMEM;
                break;
            }
            hs = nh;
            hcap = (size_t)r.header_count;
        }
        trib_record_header_iter_t hi;
        trib_record_header_iter_init(&hi, &r);
        size_t nh = 0;
        while (nh < hcap && trib_record_header_iter_next(&hi, &hs[nh]) == 1) {
            nh++;
        }
        trib_record_in_t in;
        memset(&in, 0, sizeof(in));
        in.key = r.key;
        in.value = r.value;
        /* The stored timestamp, not the LogAppendTime one reported. */
        in.timestamp = (int64_t)((uint64_t)b->base_timestamp + (uint64_t)r.timestamp_delta);
        in.headers = hs;
        in.header_count = nh;
        in.attributes = r.attributes;
        rc = trib_batch_builder_add_at(&bb, r.offset_delta, &in);
    }
    if (rc == 0 && ri < 0) {
        rc = ri;
    }
    if (rc == 0) {
        rc = trib_batch_builder_finish(&bb);
    }
    free(hs);
    trib_record_iter_fini(&it);
    trib_batch_builder_fini(&bb);
    return rc;
}

static int cmd_rebuild(const char *in_path, const char *out_path, int codec, int level)
{
    size_t len;
    uint8_t *data = read_file(in_path, &len);
    if (!data) {
        return 1;
    }
    trib_buf_t out;
    trib_buf_init(&out);
    trib_batch_iter_t it;
    trib_batch_iter_init(&it, data, len, 0);
    trib_batch_t b;
    int rc;
    while ((rc = trib_batch_iter_next(&it, &b)) == 1) {
        rc = rebuild_one(&b, codec, level, &out);
        if (rc) {
            break;
        }
    }
    int status = 0;
    if (rc) {
        status = fail("rebuild", rc);
    } else {
        size_t flen;
        const uint8_t *p = trib_buf_flatten(&out, &flen);
        FILE *f = fopen(out_path, "wb");
        bool ok = f != NULL && (flen == 0 || fwrite(p, 1, flen, f) == flen);
        if (f && fclose(f) != 0) {
            ok = false;
        }
        if (!ok) {
            fprintf(stderr, "record_tool: %s: write failed\n", out_path);
            status = 1;
        }
    }
    trib_buf_fini(&out);
    free(data);
    return status;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "dump") == 0) {
        return cmd_dump(argv[2]);
    }
    if (argc >= 4 && argc <= 6 && strcmp(argv[1], "rebuild") == 0) {
        int codec = -1, level = 0;
        if (argc >= 5 && strcmp(argv[4], "same") != 0) {
            codec = atoi(argv[4]);
            if (!trib_codec_valid(codec)) {
                fprintf(stderr, "record_tool: bad codec %s\n", argv[4]);
                return 2;
            }
        }
        if (argc == 6) {
            level = atoi(argv[5]);
        }
        return cmd_rebuild(argv[2], argv[3], codec, level);
    }
    fprintf(stderr, "usage: record_tool dump FILE\n"
                    "       record_tool rebuild IN OUT [CODEC|same] [LEVEL]\n");
    return 2;
}
