/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Kafka record batches, magic 2 (KIP-98): parsing, record iteration,
 * control records, building, and the in-place stamps a broker applies.
 *
 * A batch on the wire and on disk (big-endian; offsets from batch start):
 *
 *   off  size  field                 notes
 *   0    8     baseOffset            assigned by the broker
 *   8    4     batchLength           bytes after this field (>= 49)
 *   12   4     partitionLeaderEpoch  assigned by the broker, not in CRC
 *   16   1     magic                 2
 *   17   4     crc                   CRC32C of bytes [21, end)
 *   21   2     attributes            see TRIB_BATCH_ATTR_*
 *   23   4     lastOffsetDelta
 *   27   8     baseTimestamp
 *   35   8     maxTimestamp
 *   43   8     producerId            -1 when none
 *   51   2     producerEpoch         -1 when none
 *   53   4     baseSequence          -1 when none
 *   57   4     recordsCount
 *   61   ...   records               compressed as one block if codec != 0
 *
 * A record (varints are zigzag, as protobuf's sint32/sint64):
 *
 *   length varint | attributes int8 | timestampDelta varlong |
 *   offsetDelta varint | keyLength varint | key | valueLength varint |
 *   value | headersCount varint | headers
 *
 * with length counting the bytes after itself, lengths of -1 meaning null,
 * and each header being keyLength varint (>= 0) | key | valueLength varint
 * (-1 = null) | value.
 *
 * Everything that reads is a view into the caller's bytes: nothing is
 * copied except the decompressed records of a compressed batch, which live
 * in an arena or in memory the record iterator owns. Every length is
 * checked before use; malformed input yields an error, never an
 * out-of-bounds read.
 */
#ifndef TRIBUTARY_RECORD_H
#define TRIBUTARY_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tributary/arena.h"
#include "tributary/buf.h"
#include "tributary/compress.h"
#include "tributary/slice.h"

#define TRIB_BATCH_MAGIC 2
/* baseOffset + batchLength: the part of the header batchLength excludes. */
#define TRIB_BATCH_LOG_OVERHEAD 12
#define TRIB_BATCH_HEADER_SIZE 61
/* Smallest legal batchLength: the header after the length field. */
#define TRIB_BATCH_MIN_LENGTH (TRIB_BATCH_HEADER_SIZE - TRIB_BATCH_LOG_OVERHEAD)

/* Byte offsets of header fields within a batch. */
#define TRIB_BATCH_OFF_BASE_OFFSET 0
#define TRIB_BATCH_OFF_LENGTH 8
#define TRIB_BATCH_OFF_LEADER_EPOCH 12
#define TRIB_BATCH_OFF_MAGIC 16
#define TRIB_BATCH_OFF_CRC 17
#define TRIB_BATCH_OFF_ATTRIBUTES 21
#define TRIB_BATCH_OFF_LAST_OFFSET_DELTA 23
#define TRIB_BATCH_OFF_BASE_TIMESTAMP 27
#define TRIB_BATCH_OFF_MAX_TIMESTAMP 35
#define TRIB_BATCH_OFF_PRODUCER_ID 43
#define TRIB_BATCH_OFF_PRODUCER_EPOCH 51
#define TRIB_BATCH_OFF_BASE_SEQUENCE 53
#define TRIB_BATCH_OFF_RECORDS_COUNT 57

/* Attribute bits. */
#define TRIB_BATCH_ATTR_CODEC_MASK 0x07
#define TRIB_BATCH_ATTR_LOG_APPEND_TIME 0x08
#define TRIB_BATCH_ATTR_TRANSACTIONAL 0x10
#define TRIB_BATCH_ATTR_CONTROL 0x20
#define TRIB_BATCH_ATTR_DELETE_HORIZON 0x40

#define TRIB_TIMESTAMP_CREATE_TIME 0
#define TRIB_TIMESTAMP_LOG_APPEND_TIME 1

/* Kafka's "none" values. */
#define TRIB_NO_PRODUCER_ID (-1)
#define TRIB_NO_PRODUCER_EPOCH (-1)
#define TRIB_NO_SEQUENCE (-1)
#define TRIB_NO_PARTITION_LEADER_EPOCH (-1)
#define TRIB_NO_TIMESTAMP (-1)

/* Smallest possible record: seven one-byte fields (length .. headersCount). */
#define TRIB_RECORD_MIN_SIZE 7

/* ---- batches ------------------------------------------------------------ */

/* A parsed batch header; data/records point into the caller's bytes. */
typedef struct trib_batch {
    int64_t base_offset;
    int32_t batch_length;
    int32_t partition_leader_epoch;
    int8_t magic;
    uint32_t crc;
    int16_t attributes;
    int32_t last_offset_delta;
    int64_t base_timestamp;
    int64_t max_timestamp;
    int64_t producer_id;
    int16_t producer_epoch;
    int32_t base_sequence;
    int32_t record_count;

    const uint8_t *data;    /* the whole batch */
    size_t size;            /* TRIB_BATCH_LOG_OVERHEAD + batch_length */
    const uint8_t *records; /* data + 61: the records, as stored */
    size_t records_len;
} trib_batch_t;

static inline int trib_batch_codec(const trib_batch_t *b)
{
    return b->attributes & TRIB_BATCH_ATTR_CODEC_MASK;
}

static inline int trib_batch_timestamp_type(const trib_batch_t *b)
{
    return (b->attributes & TRIB_BATCH_ATTR_LOG_APPEND_TIME) ? TRIB_TIMESTAMP_LOG_APPEND_TIME
                                                             : TRIB_TIMESTAMP_CREATE_TIME;
}

static inline bool trib_batch_is_transactional(const trib_batch_t *b)
{
    return (b->attributes & TRIB_BATCH_ATTR_TRANSACTIONAL) != 0;
}

static inline bool trib_batch_is_control(const trib_batch_t *b)
{
    return (b->attributes & TRIB_BATCH_ATTR_CONTROL) != 0;
}

static inline bool trib_batch_has_delete_horizon(const trib_batch_t *b)
{
    return (b->attributes & TRIB_BATCH_ATTR_DELETE_HORIZON) != 0;
}

/* Offset of the batch's last record: base_offset + last_offset_delta. */
static inline int64_t trib_batch_last_offset(const trib_batch_t *b)
{
    return b->base_offset + b->last_offset_delta;
}

/* Flags for trib_batch_parse(). */
#define TRIB_BATCH_SKIP_CRC 0x1 /* the caller verified it, or will */

/*
 * Parses the batch at p[0..len): the header, magic == 2 (else
 * TRIB_EUNSUPPORTED_VERSION), batchLength >= 49 (else TRIB_EMALFORMED) and
 * <= len - 12 (else TRIB_ETRUNCATED), recordsCount >= 0, and the CRC
 * (TRIB_ECRC) unless flags has TRIB_BATCH_SKIP_CRC. Bytes past the batch
 * are ignored: b->size says where it ends. The records themselves are not
 * looked at here (see the record iterator).
 */
int trib_batch_parse(trib_batch_t *b, const void *p, size_t len, unsigned flags);

/* Same, reading from a slice and consuming the batch on success. */
int trib_batch_read(trib_slice_t *s, trib_batch_t *b, unsigned flags);

/* CRC32C of a batch's bytes [21, 12 + batchLength); p[0..len) must hold them. */
uint32_t trib_batch_compute_crc(const void *p, size_t len);

/*
 * Splits a "records" field (Produce request, Fetch response, a log
 * segment) into batches. A fetch response may end with a partial batch:
 * iteration then ends normally and trib_batch_iter_partial() says how many
 * bytes were left over (a produce request must have none).
 */
typedef struct trib_batch_iter {
    trib_slice_t rest;
    size_t partial;
    unsigned flags;
} trib_batch_iter_t;

void trib_batch_iter_init(trib_batch_iter_t *it, const void *p, size_t len, unsigned flags);

/* 1 and a batch in *b; 0 at the end; a negative error (then it stays). */
int trib_batch_iter_next(trib_batch_iter_t *it, trib_batch_t *b);

/* Bytes of an incomplete trailing batch (0 unless iteration has ended). */
static inline size_t trib_batch_iter_partial(const trib_batch_iter_t *it)
{
    return it->partial;
}

/*
 * In-place stamps on a complete, contiguous batch p[0..len), as the broker
 * applies them. baseOffset and partitionLeaderEpoch lie outside the CRC.
 * trib_batch_set_max_timestamp() sets the timestamp type bit and
 * maxTimestamp (LogAppendTime) and recomputes the CRC. All return 0,
 * TRIB_ETRUNCATED when len is shorter than the batch says, or
 * TRIB_EUNSUPPORTED_VERSION when it is not magic 2.
 */
int trib_batch_set_base_offset(void *p, size_t len, int64_t base_offset);
int trib_batch_set_partition_leader_epoch(void *p, size_t len, int32_t epoch);
int trib_batch_set_max_timestamp(void *p, size_t len, int timestamp_type, int64_t max_timestamp);
/* Recomputes and stores the CRC (after any edit inside the CRC range). */
int trib_batch_update_crc(void *p, size_t len);

/* ---- records ------------------------------------------------------------ */

/* A nullable byte view: len -1 is null (ptr NULL). */
typedef struct trib_record_bytes {
    int32_t len;
    const uint8_t *ptr;
} trib_record_bytes_t;

static inline trib_record_bytes_t trib_record_bytes(const void *p, int32_t len)
{
    trib_record_bytes_t v = {len, (const uint8_t *)p};
    return v;
}

static inline trib_record_bytes_t trib_record_null(void)
{
    trib_record_bytes_t v = {-1, NULL};
    return v;
}

static inline bool trib_record_bytes_is_null(trib_record_bytes_t v)
{
    return v.len < 0;
}

/* A record header. The key is a string and never null. */
typedef struct trib_record_header {
    trib_record_bytes_t key;
    trib_record_bytes_t value;
} trib_record_header_t;

/* A parsed record: views into the batch (or its decompressed records). */
typedef struct trib_record {
    int8_t attributes;
    int64_t timestamp_delta;
    int32_t offset_delta;
    int64_t offset;    /* base_offset + offset_delta */
    int64_t timestamp; /* base + delta, or maxTimestamp for LogAppendTime */
    trib_record_bytes_t key;
    trib_record_bytes_t value;
    int32_t header_count;
    const uint8_t *headers; /* the encoded headers, already validated */
    size_t headers_len;
    const uint8_t *raw; /* the whole record, length varint included */
    size_t raw_len;
} trib_record_t;

typedef struct trib_record_iter {
    trib_slice_t rest;
    int32_t remaining;
    int64_t base_offset;
    int64_t base_timestamp;
    int64_t max_timestamp;
    bool log_append_time;
    int err;
    trib_decompress_out_t owned; /* decompressed records when no arena */
} trib_record_iter_t;

/*
 * Starts iterating a batch's records. A compressed batch is decompressed
 * here, into `arena` if not NULL, else into memory the iterator owns and
 * trib_record_iter_fini() frees; max_decompressed bounds its size
 * (TRIB_ETOO_LARGE past it). Unknown codecs fail with TRIB_EUNSUPPORTED,
 * corrupt data with TRIB_ECOMPRESSION, a recordsCount the bytes cannot
 * hold with TRIB_EMALFORMED. On error the iterator is still safe to _fini
 * and its _next returns the error.
 */
int trib_record_iter_init(trib_record_iter_t *it, const trib_batch_t *b, trib_arena_t *arena,
                          size_t max_decompressed);

/*
 * Iterates records the caller has already decompressed (into any memory it
 * likes, for instance a reused trib_decompress_out_t).
 */
int trib_record_iter_init_raw(trib_record_iter_t *it, const trib_batch_t *b, const void *records,
                              size_t len);

/*
 * 1 and the next record in *r; 0 after the last one; or TRIB_EMALFORMED:
 * a length past the record's end, a record length that does not match its
 * fields, a negative length other than -1 (or a null header key), fewer
 * records than recordsCount, or bytes left after the last record. Errors
 * stick.
 */
int trib_record_iter_next(trib_record_iter_t *it, trib_record_t *r);

void trib_record_iter_fini(trib_record_iter_t *it);

/* Flags for trib_batch_validate_records(). */
#define TRIB_VALIDATE_REQUIRE_KEY 0x1 /* a null key is a fault (compacted topics) */

/* Where validation failed: the record's index in the batch (-1: the batch) and why. */
typedef struct trib_record_fault {
    int32_t index;
    const char *why; /* a static string */
} trib_record_fault_t;

/*
 * Reads every record of a parsed batch, as a broker does before it appends
 * to a compacted topic: the batch decompresses (at most max_decompressed
 * bytes), each record parses, offset deltas run 0, 1, 2 … as a producer
 * writes them, and with TRIB_VALIDATE_REQUIRE_KEY each key is non-null.
 * Returns 0, -ENOMEM, or TRIB_EMALFORMED, TRIB_EUNSUPPORTED (unknown
 * codec), TRIB_ECOMPRESSION, TRIB_ETOO_LARGE with *fault filled.
 */
int trib_batch_validate_records(const trib_batch_t *b, unsigned flags, size_t max_decompressed,
                                trib_record_fault_t *fault);

/* Iterates the headers of a record returned by trib_record_iter_next(). */
typedef struct trib_record_header_iter {
    trib_slice_t rest;
    int32_t remaining;
} trib_record_header_iter_t;

void trib_record_header_iter_init(trib_record_header_iter_t *it, const trib_record_t *r);
/* 1 and a header; 0 at the end; TRIB_EMALFORMED (not for validated records). */
int trib_record_header_iter_next(trib_record_header_iter_t *it, trib_record_header_t *h);

/* ---- control records ---------------------------------------------------- */

/* Control record types (the key's second int16). */
#define TRIB_CONTROL_ABORT 0
#define TRIB_CONTROL_COMMIT 1

/*
 * key:   version int16 (0) | type int16
 * value: version int16 (0) | coordinatorEpoch int32   (abort/commit)
 */
#define TRIB_CONTROL_KEY_SIZE 4
#define TRIB_CONTROL_MARKER_VALUE_SIZE 6

typedef struct trib_control_record {
    int16_t version;
    int16_t type; /* TRIB_CONTROL_ABORT, _COMMIT, or another (unknown) type */
    bool has_coordinator_epoch;
    int32_t coordinator_epoch; /* from an abort/commit marker's value */
} trib_control_record_t;

/*
 * Parses the control record in a control batch's record: TRIB_EMALFORMED
 * when the key is null, shorter than 4 bytes or has a negative version,
 * or when an abort/commit value is present but malformed.
 */
int trib_control_record_parse(const trib_record_t *r, trib_control_record_t *c);

/* Writes a control key / an end-transaction marker value. */
void trib_control_record_key(uint8_t out[TRIB_CONTROL_KEY_SIZE], int16_t type);
void trib_control_marker_value(uint8_t out[TRIB_CONTROL_MARKER_VALUE_SIZE],
                               int32_t coordinator_epoch);

/* ---- building ----------------------------------------------------------- */

typedef struct trib_batch_opts {
    int64_t base_offset;            /* 0 from producers */
    int32_t partition_leader_epoch; /* TRIB_NO_PARTITION_LEADER_EPOCH */
    int64_t producer_id;            /* TRIB_NO_PRODUCER_ID */
    int16_t producer_epoch;         /* TRIB_NO_PRODUCER_EPOCH */
    int32_t base_sequence;          /* TRIB_NO_SEQUENCE */
    int codec;                      /* TRIB_CODEC_* */
    int level;                      /* 0: the codec's default */
    int timestamp_type;             /* TRIB_TIMESTAMP_* */
    /* LogAppendTime: the maxTimestamp written (the broker's clock). */
    int64_t log_append_time;
    bool transactional;
    bool control;
    bool delete_horizon;
    /*
     * baseTimestamp is the first record's timestamp unless this is set
     * (rebuilding a compacted batch, or one with a delete horizon).
     */
    bool use_base_timestamp;
    int64_t base_timestamp;
    /*
     * Uncompressed batches only: reference keys and values of at least
     * TRIB_BUF_REF_MIN bytes instead of copying them; they must then
     * outlive the output buffer.
     */
    bool borrow_values;
} trib_batch_opts_t;

/* Defaults: everything "none", create time, no compression. */
void trib_batch_opts_init(trib_batch_opts_t *o);

/* A record to add; views are borrowed for the call. */
typedef struct trib_record_in {
    trib_record_bytes_t key;   /* len -1 = null */
    trib_record_bytes_t value; /* len -1 = null */
    int64_t timestamp;
    const trib_record_header_t *headers;
    size_t header_count;
    int8_t attributes; /* record attributes: unused by Kafka, 0 */
} trib_record_in_t;

/*
 * Builds one batch at the end of `out`. The header is reserved first and
 * back-patched by _finish (batchLength, lastOffsetDelta, maxTimestamp,
 * recordsCount, then the CRC). Uncompressed records are written straight
 * into `out`; compressed ones go to a scratch buffer, compressed into
 * `out` by _finish. Errors stick: _add and _finish return the first.
 */
typedef struct trib_batch_builder {
    trib_buf_t *out;
    size_t start;       /* batch position in out */
    trib_buf_t scratch; /* uncompressed records of a compressed batch */
    trib_batch_opts_t opts;
    int32_t count;
    int32_t last_offset_delta;
    int64_t first_timestamp;
    int64_t max_timestamp;
    size_t records_size; /* uncompressed bytes of records so far */
    int err;
} trib_batch_builder_t;

/* Returns 0, -EINVAL for bad options, or out's sticky error. */
int trib_batch_builder_init(trib_batch_builder_t *bb, trib_buf_t *out,
                            const trib_batch_opts_t *opts);

/* Adds a record at the next offset delta (0, 1, 2 …). */
int trib_batch_builder_add(trib_batch_builder_t *bb, const trib_record_in_t *r);

/* Adds a record at a given offset delta, greater than the previous one. */
int trib_batch_builder_add_at(trib_batch_builder_t *bb, int32_t offset_delta,
                              const trib_record_in_t *r);

static inline int32_t trib_batch_builder_count(const trib_batch_builder_t *bb)
{
    return bb->count;
}

/* Header plus uncompressed records so far: an upper bound before compression. */
static inline size_t trib_batch_builder_size(const trib_batch_builder_t *bb)
{
    return TRIB_BATCH_HEADER_SIZE + bb->records_size;
}

/*
 * Completes the batch in out; later _add/_finish calls return
 * TRIB_ESTATE. Returns 0 or the first error (-EINVAL for a
 * bad record, TRIB_ETOO_LARGE past 2 GiB, compression errors, -ENOMEM).
 * On error out holds garbage from bb's start position on.
 */
int trib_batch_builder_finish(trib_batch_builder_t *bb);

/* Frees scratch memory; safe after _finish or instead of it. */
void trib_batch_builder_fini(trib_batch_builder_t *bb);

#endif
