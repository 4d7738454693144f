/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Record batch v2 (see record.h for the byte layout).
 *
 * Invariants:
 *  - Parsing never reads past the caller's length: every field goes
 *    through a trib_slice_t, and every length read from the wire is
 *    checked against the bytes that remain before it is used.
 *  - A record is read inside a sub-slice of exactly its declared length,
 *    so a field running past it is an error, and so is a record whose
 *    fields end before its length does.
 *  - recordsCount is never used to allocate; it is bounded by the bytes
 *    available (a record takes at least TRIB_RECORD_MIN_SIZE bytes).
 *  - Offsets and timestamps are computed with wrapping arithmetic: hostile
 *    deltas give odd numbers, never undefined behaviour.
 *  - The builder reserves the header, writes the records, then patches
 *    the header and finally the CRC over [21, end), the CRC last because
 *    it covers the patched fields.
 */
#include "tributary/record.h"

#include <errno.h>
#include <string.h>

#include "tributary/crc32c.h"
#include "tributary/error.h"
#include "tributary/varint.h"

/* ---- byte helpers --------------------------------------------------------- */

static uint32_t rd32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static void wr16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void wr32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void wr64(uint8_t *p, uint64_t v)
{
    wr32(p, (uint32_t)(v >> 32));
    wr32(p + 4, (uint32_t)v);
}

static int64_t add_wrap(int64_t a, int64_t b)
{
    return (int64_t)((uint64_t)a + (uint64_t)b);
}

static int64_t sub_wrap(int64_t a, int64_t b)
{
    return (int64_t)((uint64_t)a - (uint64_t)b);
}

/* ---- batches -------------------------------------------------------------- */

/*
 * Looks at the start of a batch: 0 and its total size, TRIB_ETRUNCATED
 * when p[0..len) does not hold it all, or an error for a batch that can
 * never be valid. The magic is checked as soon as it is there, so old
 * message sets are told apart from damaged batches.
 */
static int batch_peek(const uint8_t *p, size_t len, size_t *size)
{
    if (len < TRIB_BATCH_LOG_OVERHEAD) {
        return TRIB_ETRUNCATED;
    }
    int32_t blen = (int32_t)rd32(p + TRIB_BATCH_OFF_LENGTH);
    if (len > TRIB_BATCH_OFF_MAGIC && p[TRIB_BATCH_OFF_MAGIC] != TRIB_BATCH_MAGIC) {
        return TRIB_EUNSUPPORTED_VERSION;
    }
    if (blen < TRIB_BATCH_MIN_LENGTH) {
        return TRIB_EMALFORMED;
    }
    *size = (size_t)TRIB_BATCH_LOG_OVERHEAD + (size_t)blen;
    if (len < *size) {
        return TRIB_ETRUNCATED;
    }
    return 0;
}

uint32_t trib_batch_compute_crc(const void *p, size_t len)
{
    const uint8_t *b = p;
    size_t size;
    if (batch_peek(b, len, &size) != 0) {
        return 0;
    }
    return trib_crc32c(0, b + TRIB_BATCH_OFF_ATTRIBUTES, size - TRIB_BATCH_OFF_ATTRIBUTES);
}

int trib_batch_parse(trib_batch_t *b, const void *p, size_t len, unsigned flags)
{
    memset(b, 0, sizeof(*b));
    size_t size;
    int rc = batch_peek(p, len, &size);
    if (rc) {
        return rc;
    }
    trib_slice_t s = trib_slice_make(p, size);
    b->base_offset = trib_slice_i64(&s);
    b->batch_length = trib_slice_i32(&s);
    b->partition_leader_epoch = trib_slice_i32(&s);
    b->magic = trib_slice_i8(&s);
    b->crc = trib_slice_u32(&s);
    b->attributes = trib_slice_i16(&s);
    b->last_offset_delta = trib_slice_i32(&s);
    b->base_timestamp = trib_slice_i64(&s);
    b->max_timestamp = trib_slice_i64(&s);
    b->producer_id = trib_slice_i64(&s);
    b->producer_epoch = trib_slice_i16(&s);
    b->base_sequence = trib_slice_i32(&s);
    b->record_count = trib_slice_i32(&s);
    if (TRIB_NEVER(!trib_slice_ok(&s))) {
        return s.err; /* batch_peek checked the size */
    }
    b->data = p;
    b->size = size;
    b->records = s.ptr;
    b->records_len = s.len;
    if (b->record_count < 0) {
        return TRIB_EMALFORMED;
    }
    if (!(flags & TRIB_BATCH_SKIP_CRC) && trib_crc32c(0, b->data + TRIB_BATCH_OFF_ATTRIBUTES,
                                                      size - TRIB_BATCH_OFF_ATTRIBUTES) != b->crc) {
        return TRIB_ECRC;
    }
    return 0;
}

int trib_batch_read(trib_slice_t *s, trib_batch_t *b, unsigned flags)
{
    if (!trib_slice_ok(s)) {
        memset(b, 0, sizeof(*b));
        return s->err;
    }
    int rc = trib_batch_parse(b, s->ptr, s->len, flags);
    if (rc == 0) {
        trib_slice_skip(s, b->size);
    }
    return rc;
}

void trib_batch_iter_init(trib_batch_iter_t *it, const void *p, size_t len, unsigned flags)
{
    it->rest = trib_slice_make(p, len);
    it->partial = 0;
    it->flags = flags;
}

int trib_batch_iter_next(trib_batch_iter_t *it, trib_batch_t *b)
{
    memset(b, 0, sizeof(*b));
    if (!trib_slice_ok(&it->rest)) {
        return it->rest.err;
    }
    if (it->rest.len == 0) {
        return 0;
    }
    size_t size;
    int rc = batch_peek(it->rest.ptr, it->rest.len, &size);
    if (rc == TRIB_ETRUNCATED) {
        /* A partial batch ends the set, as at the end of a fetch. */
        it->partial = it->rest.len;
        trib_slice_skip(&it->rest, it->rest.len);
        return 0;
    }
    if (rc == 0) {
        rc = trib_batch_read(&it->rest, b, it->flags);
    }
    if (rc) {
        trib_slice_fail(&it->rest, rc);
        return rc;
    }
    return 1;
}

/* Checks that p[0..len) holds a whole magic 2 batch; *size its size. */
static int batch_check_stamp(const uint8_t *p, size_t len, size_t *size)
{
    int rc = batch_peek(p, len, size);
    if (rc == 0 && TRIB_NEVER(len <= TRIB_BATCH_OFF_MAGIC)) {
        rc = TRIB_ETRUNCATED; /* batch_peek checked size >= 61 */
    }
    return rc;
}

int trib_batch_set_base_offset(void *p, size_t len, int64_t base_offset)
{
    size_t size;
    int rc = batch_check_stamp(p, len, &size);
    if (rc == 0) {
        wr64((uint8_t *)p + TRIB_BATCH_OFF_BASE_OFFSET, (uint64_t)base_offset);
    }
    return rc;
}

int trib_batch_set_partition_leader_epoch(void *p, size_t len, int32_t epoch)
{
    size_t size;
    int rc = batch_check_stamp(p, len, &size);
    if (rc == 0) {
        wr32((uint8_t *)p + TRIB_BATCH_OFF_LEADER_EPOCH, (uint32_t)epoch);
    }
    return rc;
}

int trib_batch_update_crc(void *p, size_t len)
{
    size_t size;
    int rc = batch_check_stamp(p, len, &size);
    if (rc == 0) {
        uint8_t *b = p;
        uint32_t crc =
            trib_crc32c(0, b + TRIB_BATCH_OFF_ATTRIBUTES, size - TRIB_BATCH_OFF_ATTRIBUTES);
        wr32(b + TRIB_BATCH_OFF_CRC, crc);
    }
    return rc;
}

int trib_batch_set_max_timestamp(void *p, size_t len, int timestamp_type, int64_t max_timestamp)
{
    size_t size;
    if (timestamp_type != TRIB_TIMESTAMP_CREATE_TIME &&
        timestamp_type != TRIB_TIMESTAMP_LOG_APPEND_TIME) {
        return -EINVAL;
    }
    int rc = batch_check_stamp(p, len, &size);
    if (rc) {
        return rc;
    }
    uint8_t *b = p;
    uint16_t attr =
        (uint16_t)((b[TRIB_BATCH_OFF_ATTRIBUTES] << 8) | b[TRIB_BATCH_OFF_ATTRIBUTES + 1]);
    if (timestamp_type == TRIB_TIMESTAMP_LOG_APPEND_TIME) {
        attr |= TRIB_BATCH_ATTR_LOG_APPEND_TIME;
    } else {
        attr &= (uint16_t)~TRIB_BATCH_ATTR_LOG_APPEND_TIME;
    }
    wr16(b + TRIB_BATCH_OFF_ATTRIBUTES, attr);
    wr64(b + TRIB_BATCH_OFF_MAX_TIMESTAMP, (uint64_t)max_timestamp);
    return trib_batch_update_crc(p, len);
}

/* ---- records -------------------------------------------------------------- */

static void iter_setup(trib_record_iter_t *it, const trib_batch_t *b)
{
    memset(it, 0, sizeof(*it));
    trib_decompress_out_init(&it->owned);
    it->rest = trib_slice_make(NULL, 0);
    it->remaining = b->record_count;
    it->base_offset = b->base_offset;
    it->base_timestamp = b->base_timestamp;
    it->max_timestamp = b->max_timestamp;
    it->log_append_time = trib_batch_timestamp_type(b) == TRIB_TIMESTAMP_LOG_APPEND_TIME;
}

static int iter_fail(trib_record_iter_t *it, int err)
{
    if (!it->err) {
        it->err = err;
    }
    return it->err;
}

static int iter_start(trib_record_iter_t *it, const void *records, size_t len)
{
    it->rest = trib_slice_make(records, len);
    if (it->remaining < 0 || (size_t)it->remaining > len / TRIB_RECORD_MIN_SIZE) {
        return iter_fail(it, TRIB_EMALFORMED);
    }
    return 0;
}

int trib_record_iter_init_raw(trib_record_iter_t *it, const trib_batch_t *b, const void *records,
                              size_t len)
{
    iter_setup(it, b);
    return iter_start(it, records, len);
}

int trib_record_iter_init(trib_record_iter_t *it, const trib_batch_t *b, trib_arena_t *arena,
                          size_t max_decompressed)
{
    iter_setup(it, b);
    int codec = trib_batch_codec(b);
    if (!trib_codec_valid(codec)) {
        return iter_fail(it, TRIB_EUNSUPPORTED);
    }
    /* As Kafka: an empty batch has no records to decode, whatever follows. */
    if (b->record_count == 0) {
        return 0;
    }
    if (codec == TRIB_CODEC_NONE) {
        return iter_start(it, b->records, b->records_len);
    }
    const uint8_t *data;
    size_t len;
    int rc;
    if (arena) {
        rc = trib_decompress_arena(codec, b->records, b->records_len, max_decompressed, arena,
                                   &data, &len);
    } else {
        rc = trib_decompress(codec, b->records, b->records_len, max_decompressed, &it->owned);
        data = it->owned.data;
        len = it->owned.len;
    }
    if (rc) {
        return iter_fail(it, rc);
    }
    return iter_start(it, data, len);
}

void trib_record_iter_fini(trib_record_iter_t *it)
{
    trib_decompress_out_fini(&it->owned);
    it->rest = trib_slice_make(NULL, 0);
    it->remaining = 0;
}

/* A nullable length-prefixed field: -1 is null, below that is malformed. */
static void read_nullable(trib_slice_t *s, trib_record_bytes_t *v)
{
    int32_t n = trib_slice_varint(s);
    v->len = -1;
    v->ptr = NULL;
    if (!trib_slice_ok(s) || n == -1) {
        return;
    }
    if (n < -1) {
        trib_slice_fail(s, TRIB_EMALFORMED);
        return;
    }
    const uint8_t *p = trib_slice_take(s, (size_t)n);
    if (p) {
        v->len = n;
        v->ptr = p;
    }
}

/* One header; the key may be empty but not null. */
static void read_header(trib_slice_t *s, trib_record_header_t *h)
{
    int32_t klen = trib_slice_varint(s);
    h->key = trib_record_null();
    h->value = trib_record_null();
    if (!trib_slice_ok(s)) {
        return;
    }
    if (klen < 0) {
        trib_slice_fail(s, TRIB_EMALFORMED);
        return;
    }
    const uint8_t *k = trib_slice_take(s, (size_t)klen);
    if (!k) {
        return;
    }
    h->key = trib_record_bytes(k, klen);
    read_nullable(s, &h->value);
}

int trib_record_iter_next(trib_record_iter_t *it, trib_record_t *r)
{
    memset(r, 0, sizeof(*r));
    if (it->err) {
        return it->err;
    }
    if (it->remaining <= 0) {
        if (trib_slice_remaining(&it->rest) != 0) {
            return iter_fail(it, TRIB_EMALFORMED); /* bytes after the last record */
        }
        return 0;
    }
    const uint8_t *start = it->rest.ptr;
    int32_t len = trib_slice_varint(&it->rest);
    if (!trib_slice_ok(&it->rest) || len < 0 || (size_t)len > trib_slice_remaining(&it->rest)) {
        return iter_fail(it, TRIB_EMALFORMED);
    }
    trib_slice_t body = trib_slice_sub(&it->rest, (size_t)len);
    r->raw = start;
    r->raw_len = (size_t)(body.ptr - start) + (size_t)len;

    r->attributes = trib_slice_i8(&body);
    r->timestamp_delta = trib_slice_varlong(&body);
    r->offset_delta = trib_slice_varint(&body);
    read_nullable(&body, &r->key);
    read_nullable(&body, &r->value);
    r->header_count = trib_slice_varint(&body);
    if (!trib_slice_ok(&body) || r->header_count < 0 ||
        (size_t)r->header_count > trib_slice_remaining(&body) / 2) {
        return iter_fail(it, TRIB_EMALFORMED);
    }
    r->headers = body.ptr;
    for (int32_t i = 0; i < r->header_count; i++) {
        trib_record_header_t h;
        read_header(&body, &h);
    }
    /* The fields must fill the record exactly. */
    if (!trib_slice_ok(&body) || body.len != 0) {
        return iter_fail(it, TRIB_EMALFORMED);
    }
    r->headers_len = (size_t)(body.ptr - r->headers);
    r->offset = add_wrap(it->base_offset, r->offset_delta);
    r->timestamp =
        it->log_append_time ? it->max_timestamp : add_wrap(it->base_timestamp, r->timestamp_delta);
    it->remaining--;
    return 1;
}

int trib_batch_validate_records(const trib_batch_t *b, unsigned flags, size_t max_decompressed,
                                trib_record_fault_t *fault)
{
    fault->index = -1;
    fault->why = NULL;
    trib_record_iter_t it;
    trib_record_t r;
    int rc = trib_record_iter_init(&it, b, NULL, max_decompressed);
    if (rc) {
        fault->why = rc == TRIB_EUNSUPPORTED   ? "unknown compression codec"
                     : rc == TRIB_ECOMPRESSION ? "records do not decompress"
                     : rc == TRIB_ETOO_LARGE   ? "records too large once decompressed"
                     : rc == TRIB_EMALFORMED   ? "recordsCount does not fit the records"
                                               : NULL;
        trib_record_iter_fini(&it);
        return rc;
    }
    int32_t i = 0;
    while ((rc = trib_record_iter_next(&it, &r)) == 1) {
        if (r.offset_delta != i) {
            fault->index = i;
            fault->why = "record offset deltas are not consecutive";
            rc = TRIB_EMALFORMED;
            break;
        }
        if ((flags & TRIB_VALIDATE_REQUIRE_KEY) && trib_record_bytes_is_null(r.key)) {
            fault->index = i;
            fault->why = "compacted topic cannot accept a record without a key";
            rc = TRIB_EMALFORMED;
            break;
        }
        i++;
    }
    if (rc < 0 && !fault->why) {
        fault->index = i < b->record_count ? i : -1;
        fault->why = "record does not parse";
    }
    trib_record_iter_fini(&it);
    return rc < 0 ? rc : 0;
}

void trib_record_header_iter_init(trib_record_header_iter_t *it, const trib_record_t *r)
{
    it->rest = trib_slice_make(r->headers, r->headers_len);
    it->remaining = r->header_count;
}

int trib_record_header_iter_next(trib_record_header_iter_t *it, trib_record_header_t *h)
{
    h->key = trib_record_null();
    h->value = trib_record_null();
    if (!trib_slice_ok(&it->rest)) {
        return TRIB_EMALFORMED;
    }
    if (it->remaining <= 0) {
        return 0;
    }
    read_header(&it->rest, h);
    if (!trib_slice_ok(&it->rest)) {
        trib_slice_fail(&it->rest, TRIB_EMALFORMED);
        return TRIB_EMALFORMED;
    }
    it->remaining--;
    return 1;
}

/* ---- control records ------------------------------------------------------ */

int trib_control_record_parse(const trib_record_t *r, trib_control_record_t *c)
{
    memset(c, 0, sizeof(*c));
    if (r->key.len < TRIB_CONTROL_KEY_SIZE) {
        return TRIB_EMALFORMED; /* null or too short */
    }
    trib_slice_t k = trib_slice_make(r->key.ptr, (size_t)r->key.len);
    c->version = trib_slice_i16(&k);
    c->type = trib_slice_i16(&k);
    if (c->version < 0) {
        return TRIB_EMALFORMED;
    }
    if ((c->type == TRIB_CONTROL_ABORT || c->type == TRIB_CONTROL_COMMIT) && r->value.len >= 0) {
        trib_slice_t v = trib_slice_make(r->value.ptr, (size_t)r->value.len);
        int16_t version = trib_slice_i16(&v);
        int32_t epoch = trib_slice_i32(&v);
        if (!trib_slice_ok(&v) || version < 0) {
            return TRIB_EMALFORMED;
        }
        c->has_coordinator_epoch = true;
        c->coordinator_epoch = epoch;
    }
    return 0;
}

void trib_control_record_key(uint8_t out[TRIB_CONTROL_KEY_SIZE], int16_t type)
{
    wr16(out, 0);
    wr16(out + 2, (uint16_t)type);
}

void trib_control_marker_value(uint8_t out[TRIB_CONTROL_MARKER_VALUE_SIZE],
                               int32_t coordinator_epoch)
{
    wr16(out, 0);
    wr32(out + 2, (uint32_t)coordinator_epoch);
}

/* ---- building ------------------------------------------------------------- */

void trib_batch_opts_init(trib_batch_opts_t *o)
{
    memset(o, 0, sizeof(*o));
    o->base_offset = 0;
    o->partition_leader_epoch = TRIB_NO_PARTITION_LEADER_EPOCH;
    o->producer_id = TRIB_NO_PRODUCER_ID;
    o->producer_epoch = TRIB_NO_PRODUCER_EPOCH;
    o->base_sequence = TRIB_NO_SEQUENCE;
    o->codec = TRIB_CODEC_NONE;
    o->timestamp_type = TRIB_TIMESTAMP_CREATE_TIME;
    o->log_append_time = TRIB_NO_TIMESTAMP;
}

static int bb_fail(trib_batch_builder_t *bb, int err)
{
    if (!bb->err) {
        bb->err = err;
    }
    return bb->err;
}

int trib_batch_builder_init(trib_batch_builder_t *bb, trib_buf_t *out,
                            const trib_batch_opts_t *opts)
{
    memset(bb, 0, sizeof(*bb));
    trib_buf_init(&bb->scratch);
    bb->out = out;
    bb->opts = *opts;
    bb->last_offset_delta = -1;
    if (!trib_codec_valid(opts->codec) ||
        (opts->timestamp_type != TRIB_TIMESTAMP_CREATE_TIME &&
         opts->timestamp_type != TRIB_TIMESTAMP_LOG_APPEND_TIME)) {
        return bb_fail(bb, -EINVAL);
    }
    bb->start = trib_buf_len(out);
    (void)trib_buf_reserve(out, TRIB_BATCH_HEADER_SIZE);
    if (trib_buf_error(out)) {
        return bb_fail(bb, trib_buf_error(out));
    }
    return 0;
}

static uint64_t nullable_size(trib_record_bytes_t v)
{
    if (v.len < 0) {
        return 1;
    }
    return trib_uvarint_size(trib_zigzag32(v.len)) + (uint64_t)v.len;
}

static bool bytes_ok(trib_record_bytes_t v, bool nullable)
{
    if (v.len < (nullable ? -1 : 0)) {
        return false;
    }
    return v.len <= 0 || v.ptr != NULL;
}

static void put_nullable(trib_buf_t *b, trib_record_bytes_t v, bool borrow)
{
    if (v.len < 0) {
        trib_buf_put_varint(b, -1);
        return;
    }
    trib_buf_put_varint(b, v.len);
    if (borrow) {
        trib_buf_append_ref(b, v.ptr, (size_t)v.len);
    } else {
        trib_buf_append(b, v.ptr, (size_t)v.len);
    }
}

int trib_batch_builder_add_at(trib_batch_builder_t *bb, int32_t offset_delta,
                              const trib_record_in_t *r)
{
    if (bb->err) {
        return bb->err;
    }
    if (offset_delta < 0 || (bb->count > 0 && offset_delta <= bb->last_offset_delta)) {
        return bb_fail(bb, -EINVAL);
    }
    if (bb->count == INT32_MAX) {
        return bb_fail(bb, TRIB_ETOO_LARGE);
    }
    if (!bytes_ok(r->key, true) || !bytes_ok(r->value, true) || r->header_count > INT32_MAX ||
        (r->header_count > 0 && !r->headers)) {
        return bb_fail(bb, -EINVAL);
    }
    if (bb->count == 0) {
        bb->first_timestamp = bb->opts.use_base_timestamp ? bb->opts.base_timestamp : r->timestamp;
        bb->max_timestamp = r->timestamp;
    } else if (r->timestamp > bb->max_timestamp) {
        bb->max_timestamp = r->timestamp;
    }
    int64_t ts_delta = sub_wrap(r->timestamp, bb->first_timestamp);

    /* The body's size first: the record starts with it. */
    uint64_t body = 1 + trib_uvarint_size(trib_zigzag64(ts_delta)) +
                    trib_uvarint_size(trib_zigzag32(offset_delta)) + nullable_size(r->key) +
                    nullable_size(r->value) +
                    trib_uvarint_size(trib_zigzag32((int32_t)r->header_count));
    for (size_t i = 0; i < r->header_count; i++) {
        const trib_record_header_t *h = &r->headers[i];
        if (!bytes_ok(h->key, false) || !bytes_ok(h->value, true)) {
            return bb_fail(bb, -EINVAL);
        }
        body += nullable_size(h->key) + nullable_size(h->value);
        if (body > INT32_MAX) {
            break;
        }
    }
    if (body > INT32_MAX) {
        return bb_fail(bb, TRIB_ETOO_LARGE);
    }

    bool compressed = bb->opts.codec != TRIB_CODEC_NONE;
    trib_buf_t *b = compressed ? &bb->scratch : bb->out;
    bool borrow = bb->opts.borrow_values && !compressed;
    trib_buf_put_varint(b, (int32_t)body);
    trib_buf_put_i8(b, r->attributes);
    trib_buf_put_varlong(b, ts_delta);
    trib_buf_put_varint(b, offset_delta);
    put_nullable(b, r->key, borrow);
    put_nullable(b, r->value, borrow);
    trib_buf_put_varint(b, (int32_t)r->header_count);
    for (size_t i = 0; i < r->header_count; i++) {
        put_nullable(b, r->headers[i].key, false);
        put_nullable(b, r->headers[i].value, false);
    }
    if (trib_buf_error(b)) {
        return bb_fail(bb, trib_buf_error(b));
    }
    bb->records_size += trib_uvarint_size(trib_zigzag32((int32_t)body)) + (size_t)body;
    bb->count++;
    bb->last_offset_delta = offset_delta;
    return 0;
}

int trib_batch_builder_add(trib_batch_builder_t *bb, const trib_record_in_t *r)
{
    if (bb->err) {
        return bb->err;
    }
    if (bb->count > 0 && bb->last_offset_delta == INT32_MAX) {
        return bb_fail(bb, TRIB_ETOO_LARGE);
    }
    return trib_batch_builder_add_at(bb, bb->count > 0 ? bb->last_offset_delta + 1 : 0, r);
}

int trib_batch_builder_finish(trib_batch_builder_t *bb)
{
    if (bb->err) {
        return bb->err;
    }
    trib_buf_t *out = bb->out;
    const trib_batch_opts_t *o = &bb->opts;
    if (o->codec != TRIB_CODEC_NONE) {
        size_t n = 0;
        const uint8_t *recs = NULL;
        if (trib_buf_len(&bb->scratch) > 0) {
            /* A deliberate copy when the scratch spans segments. */
            recs = trib_buf_flatten(&bb->scratch, &n);
            if (!recs) {
                return bb_fail(bb, trib_buf_error(&bb->scratch) ? trib_buf_error(&bb->scratch)
                                                                : -ENOMEM);
            }
        }
        int rc = trib_compress(out, o->codec, o->level, recs, n);
        trib_buf_fini(&bb->scratch);
        if (rc) {
            return bb_fail(bb, rc);
        }
    }
    if (trib_buf_error(out)) {
        return bb_fail(bb, trib_buf_error(out));
    }
    size_t total = trib_buf_len(out) - bb->start;
    if (total - TRIB_BATCH_LOG_OVERHEAD > INT32_MAX) {
        return bb_fail(bb, TRIB_ETOO_LARGE);
    }

    uint16_t attr = (uint16_t)o->codec;
    if (o->timestamp_type == TRIB_TIMESTAMP_LOG_APPEND_TIME) {
        attr |= TRIB_BATCH_ATTR_LOG_APPEND_TIME;
    }
    if (o->transactional) {
        attr |= TRIB_BATCH_ATTR_TRANSACTIONAL;
    }
    if (o->control) {
        attr |= TRIB_BATCH_ATTR_CONTROL;
    }
    if (o->delete_horizon) {
        attr |= TRIB_BATCH_ATTR_DELETE_HORIZON;
    }
    int64_t base_ts = o->use_base_timestamp ? o->base_timestamp
                      : bb->count > 0       ? bb->first_timestamp
                                            : TRIB_NO_TIMESTAMP;
    int64_t max_ts = o->timestamp_type == TRIB_TIMESTAMP_LOG_APPEND_TIME ? o->log_append_time
                     : bb->count > 0                                     ? bb->max_timestamp
                                                                         : TRIB_NO_TIMESTAMP;

    uint8_t h[TRIB_BATCH_HEADER_SIZE];
    wr64(h + TRIB_BATCH_OFF_BASE_OFFSET, (uint64_t)o->base_offset);
    wr32(h + TRIB_BATCH_OFF_LENGTH, (uint32_t)(total - TRIB_BATCH_LOG_OVERHEAD));
    wr32(h + TRIB_BATCH_OFF_LEADER_EPOCH, (uint32_t)o->partition_leader_epoch);
    h[TRIB_BATCH_OFF_MAGIC] = TRIB_BATCH_MAGIC;
    wr32(h + TRIB_BATCH_OFF_CRC, 0);
    wr16(h + TRIB_BATCH_OFF_ATTRIBUTES, attr);
    wr32(h + TRIB_BATCH_OFF_LAST_OFFSET_DELTA,
         (uint32_t)(bb->count > 0 ? bb->last_offset_delta : 0));
    wr64(h + TRIB_BATCH_OFF_BASE_TIMESTAMP, (uint64_t)base_ts);
    wr64(h + TRIB_BATCH_OFF_MAX_TIMESTAMP, (uint64_t)max_ts);
    wr64(h + TRIB_BATCH_OFF_PRODUCER_ID, (uint64_t)o->producer_id);
    wr16(h + TRIB_BATCH_OFF_PRODUCER_EPOCH, (uint16_t)o->producer_epoch);
    wr32(h + TRIB_BATCH_OFF_BASE_SEQUENCE, (uint32_t)o->base_sequence);
    wr32(h + TRIB_BATCH_OFF_RECORDS_COUNT, (uint32_t)bb->count);
    trib_buf_patch(out, bb->start, h, sizeof(h));

    /* The CRC covers the patched header fields, so it comes last. */
    uint32_t crc = trib_buf_crc32c(out, bb->start + TRIB_BATCH_OFF_ATTRIBUTES, bb->start + total);
    trib_buf_patch_u32(out, bb->start + TRIB_BATCH_OFF_CRC, crc);
    if (trib_buf_error(out)) {
        return bb_fail(bb, trib_buf_error(out));
    }
    bb->err = TRIB_ESTATE; /* done: later calls fail rather than rewrite it */
    return 0;
}

void trib_batch_builder_fini(trib_batch_builder_t *bb)
{
    trib_buf_fini(&bb->scratch);
}
