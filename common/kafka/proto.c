/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The engine of the generated Kafka codec (see kafka.h).
 *
 * Every generated message is a C struct plus a constant descriptor: one row
 * per schema field with its offset, type, versions, nullable versions, tag
 * and default. The functions here walk those rows to initialise, decode,
 * encode and print any message, so the wire rules live in one place:
 *
 *   field kind        classic version           flexible version
 *   ---------------   -----------------------   -----------------------------
 *   string            int16 len, -1 = null      uvarint len+1, 0 = null
 *   bytes, records    int32 len, -1 = null      uvarint len+1, 0 = null
 *   array             int32 count, -1 = null    uvarint count+1, 0 = null
 *   nullable struct   int8 -1 null / 1 present  (tagged: uvarint 0 / 1)
 *   struct end        -                         tagged-field section
 *
 *   tagged-field section: uvarint n, then n times
 *     +----------------+-----------------+--------------------------+
 *     | tag (uvarint)  | size (uvarint)  | size bytes of field data |
 *     +----------------+-----------------+--------------------------+
 *   tags strictly ascending; known tags decoded from a sub-slice bounded by
 *   their size (which they must fill exactly), unknown tags kept raw.
 *
 * Invariants for hostile input: the sticky slice error is checked before any
 * allocation from a count; an array count is bounded by the bytes remaining
 * divided by the element's minimum wire size (as Kafka's Java code does,
 * one byte for structs); lengths are checked against the bytes remaining by
 * trib_slice_take(); the arena's byte limit bounds the rest. Nothing
 * recurses on input data: nesting depth is fixed by the schemas.
 */
#include "tributary/kafka.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "tributary/error.h"

#define KSTR_MAX INT16_MAX

/* ---- field helpers ------------------------------------------------------- */

static inline void *fptr(const void *m, const trib_kafka_field_t *f)
{
    return (char *)(uintptr_t)m + f->offset;
}

static inline bool f_present(const trib_kafka_field_t *f, int16_t v)
{
    return v >= f->vmin && v <= f->vmax;
}

static inline bool f_nullable(const trib_kafka_field_t *f, int16_t v)
{
    return (f->flags & TRIB_KAFKA_F_NULLABLE) && v >= f->nmin && v <= f->nmax;
}

static inline bool f_tagged(const trib_kafka_field_t *f, int16_t v, bool flex)
{
    return (f->flags & TRIB_KAFKA_F_TAGGED) && flex && v >= f->tag_min;
}

static inline bool d_flex(const trib_kafka_struct_desc_t *d, int16_t v)
{
    return d->flex_min != TRIB_KV_NONE && v >= d->flex_min;
}

static inline trib_ktags_t *d_tags(const trib_kafka_struct_desc_t *d, const void *m)
{
    return (trib_ktags_t *)((char *)(uintptr_t)m + d->tags_offset);
}

size_t trib_kafka_field_elem_size(const trib_kafka_field_t *f)
{
    switch (f->type) {
    case TRIB_KAFKA_T_BOOL:
        return sizeof(bool);
    case TRIB_KAFKA_T_INT8:
        return 1;
    case TRIB_KAFKA_T_INT16:
    case TRIB_KAFKA_T_UINT16:
        return 2;
    case TRIB_KAFKA_T_INT32:
    case TRIB_KAFKA_T_UINT32:
        return 4;
    case TRIB_KAFKA_T_INT64:
    case TRIB_KAFKA_T_FLOAT64:
        return 8;
    case TRIB_KAFKA_T_STRING:
        return sizeof(trib_kstr_t);
    case TRIB_KAFKA_T_BYTES:
    case TRIB_KAFKA_T_RECORDS:
        return sizeof(trib_kbytes_t);
    case TRIB_KAFKA_T_UUID:
        return sizeof(trib_uuid_t);
    default:
        return f->sub->size;
    }
}

/* Fewest wire bytes one array element can take. */
static size_t elem_min_wire(const trib_kafka_field_t *f, bool compact)
{
    switch (f->type) {
    case TRIB_KAFKA_T_STRING:
        return compact ? 1 : 2;
    case TRIB_KAFKA_T_BYTES:
    case TRIB_KAFKA_T_RECORDS:
        return compact ? 1 : 4;
    case TRIB_KAFKA_T_UUID:
        return 16;
    case TRIB_KAFKA_T_STRUCT:
        return 1; /* Java's bound: a count never exceeds the bytes remaining */
    default:
        return trib_kafka_field_elem_size(f);
    }
}

static int alloc_fail(const trib_arena_t *a, size_t n)
{
    if (a->limit && (n > a->limit || a->used > a->limit - n)) {
        return TRIB_ETOO_LARGE;
    }
    return -ENOMEM;
}

/* ---- init and defaults ------------------------------------------------------ */

static void init_field(const trib_kafka_field_t *f, void *p)
{
    if (f->flags & TRIB_KAFKA_F_ARRAY) {
        trib_karray_t *arr = p;
        arr->items = NULL;
        arr->count = (f->flags & TRIB_KAFKA_F_DEFNULL) ? -1 : 0;
        return;
    }
    switch (f->type) {
    case TRIB_KAFKA_T_BOOL:
        *(bool *)p = f->def_int != 0;
        break;
    case TRIB_KAFKA_T_INT8:
        *(int8_t *)p = (int8_t)f->def_int;
        break;
    case TRIB_KAFKA_T_INT16:
        *(int16_t *)p = (int16_t)f->def_int;
        break;
    case TRIB_KAFKA_T_UINT16:
        *(uint16_t *)p = (uint16_t)f->def_int;
        break;
    case TRIB_KAFKA_T_INT32:
        *(int32_t *)p = (int32_t)f->def_int;
        break;
    case TRIB_KAFKA_T_UINT32:
        *(uint32_t *)p = (uint32_t)f->def_int;
        break;
    case TRIB_KAFKA_T_INT64:
        *(int64_t *)p = f->def_int;
        break;
    case TRIB_KAFKA_T_FLOAT64:
        *(double *)p = f->def_float;
        break;
    case TRIB_KAFKA_T_STRING: {
        trib_kstr_t *s = p;
        if (f->flags & TRIB_KAFKA_F_DEFNULL) {
            s->ptr = NULL;
            s->len = -1;
        } else {
            s->ptr = f->def_str ? f->def_str : "";
            s->len = (int32_t)strlen(s->ptr);
        }
        break;
    }
    case TRIB_KAFKA_T_BYTES:
    case TRIB_KAFKA_T_RECORDS: {
        trib_kbytes_t *s = p;
        s->ptr = NULL;
        s->len = (f->flags & TRIB_KAFKA_F_DEFNULL) ? -1 : 0;
        break;
    }
    case TRIB_KAFKA_T_UUID:
        memset(p, 0, sizeof(trib_uuid_t));
        break;
    case TRIB_KAFKA_T_STRUCT:
        if (f->flags & TRIB_KAFKA_F_PTR) {
            *(void **)p = NULL;
        } else {
            trib_kafka_struct_init(f->sub, p);
        }
        break;
    }
}

void trib_kafka_struct_init(const trib_kafka_struct_desc_t *d, void *m)
{
    memset(m, 0, d->size);
    for (unsigned i = 0; i < d->nfields; i++) {
        init_field(&d->fields[i], fptr(m, &d->fields[i]));
    }
}

bool trib_kafka_field_is_default(const trib_kafka_field_t *f, const void *m)
{
    const void *p = fptr(m, f);
    bool defnull = (f->flags & TRIB_KAFKA_F_DEFNULL) != 0;
    if (f->flags & TRIB_KAFKA_F_ARRAY) {
        const trib_karray_t *arr = p;
        return defnull ? arr->count < 0 : arr->count == 0;
    }
    switch (f->type) {
    case TRIB_KAFKA_T_BOOL:
        return *(const bool *)p == (f->def_int != 0);
    case TRIB_KAFKA_T_INT8:
        return *(const int8_t *)p == f->def_int;
    case TRIB_KAFKA_T_INT16:
        return *(const int16_t *)p == f->def_int;
    case TRIB_KAFKA_T_UINT16:
        return *(const uint16_t *)p == f->def_int;
    case TRIB_KAFKA_T_INT32:
        return *(const int32_t *)p == f->def_int;
    case TRIB_KAFKA_T_UINT32:
        return *(const uint32_t *)p == f->def_int;
    case TRIB_KAFKA_T_INT64:
        return *(const int64_t *)p == f->def_int;
    case TRIB_KAFKA_T_FLOAT64:
        return *(const double *)p == f->def_float;
    case TRIB_KAFKA_T_STRING: {
        const trib_kstr_t *s = p;
        if (defnull) {
            return s->len < 0;
        }
        const char *def = f->def_str ? f->def_str : "";
        size_t n = strlen(def);
        return s->len >= 0 && (size_t)s->len == n && (n == 0 || memcmp(s->ptr, def, n) == 0);
    }
    case TRIB_KAFKA_T_BYTES:
    case TRIB_KAFKA_T_RECORDS: {
        const trib_kbytes_t *s = p;
        return defnull ? s->len < 0 : s->len == 0;
    }
    case TRIB_KAFKA_T_UUID: {
        static const trib_uuid_t zero;
        return memcmp(p, &zero, sizeof(zero)) == 0;
    }
    case TRIB_KAFKA_T_STRUCT:
        if (f->flags & TRIB_KAFKA_F_PTR) {
            return *(void *const *)p == NULL;
        }
        return trib_kafka_struct_is_default(f->sub, p);
    }
    return true;
}

bool trib_kafka_struct_is_default(const trib_kafka_struct_desc_t *d, const void *m)
{
    for (unsigned i = 0; i < d->nfields; i++) {
        if (!trib_kafka_field_is_default(&d->fields[i], m)) {
            return false;
        }
    }
    return d->flex_min == TRIB_KV_NONE || d_tags(d, m)->count == 0;
}

/* ---- decode ------------------------------------------------------------------ */

static int struct_decode(const trib_kafka_struct_desc_t *d, void *m, trib_slice_t *s, int16_t v,
                         trib_arena_t *a);

int trib_kafka_str_decode(trib_kstr_t *out, trib_slice_t *s, bool compact, bool nullable)
{
    int64_t len;
    if (compact) {
        len = (int64_t)trib_slice_uvarint32(s) - 1;
    } else {
        len = trib_slice_i16(s);
    }
    if (s->err) {
        return s->err;
    }
    if (len < 0) {
        if (len != -1 || !nullable) {
            return trib_slice_fail(s, TRIB_EMALFORMED);
        }
        out->ptr = NULL;
        out->len = -1;
        return 0;
    }
    if (len > KSTR_MAX) {
        return trib_slice_fail(s, TRIB_EMALFORMED);
    }
    const uint8_t *p = trib_slice_take(s, (size_t)len);
    if (!p) {
        return s->err;
    }
    out->ptr = (const char *)p;
    out->len = (int32_t)len;
    return 0;
}

static int bytes_decode(trib_kbytes_t *out, trib_slice_t *s, bool compact, bool nullable)
{
    int64_t len;
    if (compact) {
        len = (int64_t)trib_slice_uvarint32(s) - 1;
    } else {
        len = trib_slice_i32(s);
    }
    if (s->err) {
        return s->err;
    }
    if (len < 0) {
        if (len != -1 || !nullable) {
            return trib_slice_fail(s, TRIB_EMALFORMED);
        }
        out->ptr = NULL;
        out->len = -1;
        return 0;
    }
    if (len > INT32_MAX) {
        return trib_slice_fail(s, TRIB_EMALFORMED);
    }
    const uint8_t *p = trib_slice_take(s, (size_t)len);
    if (!p) {
        return s->err;
    }
    out->ptr = p;
    out->len = (int32_t)len;
    return 0;
}

static int value_decode(const trib_kafka_field_t *f, void *p, trib_slice_t *s, int16_t v,
                        bool compact, bool nullable, bool tagged, trib_arena_t *a)
{
    switch (f->type) {
    case TRIB_KAFKA_T_BOOL:
        *(bool *)p = trib_slice_bool(s);
        break;
    case TRIB_KAFKA_T_INT8:
        *(int8_t *)p = trib_slice_i8(s);
        break;
    case TRIB_KAFKA_T_INT16:
        *(int16_t *)p = trib_slice_i16(s);
        break;
    case TRIB_KAFKA_T_UINT16:
        *(uint16_t *)p = trib_slice_u16(s);
        break;
    case TRIB_KAFKA_T_INT32:
        *(int32_t *)p = trib_slice_i32(s);
        break;
    case TRIB_KAFKA_T_UINT32:
        *(uint32_t *)p = trib_slice_u32(s);
        break;
    case TRIB_KAFKA_T_INT64:
        *(int64_t *)p = trib_slice_i64(s);
        break;
    case TRIB_KAFKA_T_FLOAT64:
        *(double *)p = trib_slice_f64(s);
        break;
    case TRIB_KAFKA_T_UUID: {
        const uint8_t *q = trib_slice_take(s, sizeof(trib_uuid_t));
        if (q) {
            memcpy(p, q, sizeof(trib_uuid_t));
        }
        break;
    }
    case TRIB_KAFKA_T_STRING:
        return trib_kafka_str_decode(p, s, compact, nullable);
    case TRIB_KAFKA_T_BYTES:
    case TRIB_KAFKA_T_RECORDS:
        return bytes_decode(p, s, compact, nullable);
    case TRIB_KAFKA_T_STRUCT: {
        if (!(f->flags & TRIB_KAFKA_F_PTR)) {
            return struct_decode(f->sub, p, s, v, a);
        }
        if (nullable) {
            bool present;
            if (tagged) {
                present = trib_slice_uvarint32(s) != 0;
            } else {
                present = trib_slice_i8(s) >= 0;
            }
            if (s->err) {
                return s->err;
            }
            if (!present) {
                *(void **)p = NULL;
                return 0;
            }
        }
        void *q = trib_arena_alloc(a, f->sub->size);
        if (!q) {
            return trib_slice_fail(s, alloc_fail(a, f->sub->size));
        }
        trib_kafka_struct_init(f->sub, q);
        *(void **)p = q;
        return struct_decode(f->sub, q, s, v, a);
    }
    }
    return s->err;
}

static int field_decode(const trib_kafka_field_t *f, void *p, trib_slice_t *s, int16_t v,
                        bool compact, bool nullable, bool tagged, trib_arena_t *a)
{
    if (!(f->flags & TRIB_KAFKA_F_ARRAY)) {
        return value_decode(f, p, s, v, compact, nullable, tagged, a);
    }
    trib_karray_t *arr = p;
    int64_t n;
    if (compact) {
        n = (int64_t)trib_slice_uvarint32(s) - 1;
    } else {
        n = trib_slice_i32(s);
    }
    if (s->err) {
        return s->err;
    }
    if (n < 0) {
        if (n != -1 || !nullable) {
            return trib_slice_fail(s, TRIB_EMALFORMED);
        }
        arr->items = NULL;
        arr->count = -1;
        return 0;
    }
    /* Bound the count by the input before allocating anything from it. */
    if ((uint64_t)n > trib_slice_remaining(s) / elem_min_wire(f, compact)) {
        return trib_slice_fail(s, TRIB_ETRUNCATED);
    }
    arr->items = NULL;
    arr->count = 0;
    if (n == 0) {
        return 0;
    }
    size_t esz = trib_kafka_field_elem_size(f);
    char *items = trib_arena_calloc(a, (size_t)n, esz);
    if (!items) {
        return trib_slice_fail(s, alloc_fail(a, (size_t)n * esz));
    }
    for (int64_t i = 0; i < n; i++) {
        void *e = items + (size_t)i * esz;
        if (f->type == TRIB_KAFKA_T_STRUCT) {
            trib_kafka_struct_init(f->sub, e);
        }
        /* Elements are never null (Java: Versions.NONE). */
        int rc = value_decode(f, e, s, v, compact, false, false, a);
        if (rc) {
            return rc;
        }
    }
    arr->items = items;
    arr->count = (int32_t)n;
    return 0;
}

static const trib_kafka_field_t *find_tagged(const trib_kafka_struct_desc_t *d, uint32_t tag,
                                             int16_t v)
{
    if (!d) {
        return NULL;
    }
    for (unsigned i = 0; i < d->nfields; i++) {
        const trib_kafka_field_t *f = &d->fields[i];
        if ((f->flags & TRIB_KAFKA_F_TAGGED) && f->tag == tag && f_present(f, v) &&
            v >= f->tag_min) {
            return f;
        }
    }
    return NULL;
}

/* A tagged-field section; d may be NULL (every tag is then kept raw). */
static int tags_decode(const trib_kafka_struct_desc_t *d, void *m, trib_ktags_t *unk,
                       trib_slice_t *s, int16_t v, trib_arena_t *a)
{
    unk->items = NULL;
    unk->count = 0;
    uint32_t n = trib_slice_uvarint32(s);
    if (s->err) {
        return s->err;
    }
    /* Each tagged field takes at least two bytes: its tag and its size. */
    if (n > trib_slice_remaining(s) / 2) {
        return trib_slice_fail(s, TRIB_ETRUNCATED);
    }
    int64_t last = -1;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t tag = trib_slice_uvarint32(s);
        uint32_t size = trib_slice_uvarint32(s);
        trib_slice_t sub = trib_slice_sub(s, size);
        if (s->err) {
            return s->err;
        }
        if (size > INT32_MAX) {
            return trib_slice_fail(s, TRIB_EMALFORMED);
        }
        if ((int64_t)tag <= last) {
            return trib_slice_fail(s, TRIB_EMALFORMED);
        }
        last = tag;
        const trib_kafka_field_t *f = find_tagged(d, tag, v);
        if (f) {
            int rc = field_decode(f, fptr(m, f), &sub, v, true, f_nullable(f, v), true, a);
            if (rc) {
                return trib_slice_fail(s, rc);
            }
            if (sub.len != 0) {
                return trib_slice_fail(s, TRIB_EMALFORMED);
            }
            continue;
        }
        if (!unk->items) {
            unk->items = trib_arena_calloc(a, n - i, sizeof(trib_ktag_t));
            if (!unk->items) {
                return trib_slice_fail(s, alloc_fail(a, (n - i) * sizeof(trib_ktag_t)));
            }
        }
        trib_ktag_t *t = &unk->items[unk->count++];
        t->tag = tag;
        t->data.ptr = sub.ptr;
        t->data.len = (int32_t)size;
    }
    return 0;
}

int trib_kafka_tags_decode(trib_ktags_t *t, trib_slice_t *s, trib_arena_t *a)
{
    if (s->err) {
        return s->err;
    }
    return tags_decode(NULL, NULL, t, s, 0, a);
}

/* m has been initialised to its defaults. */
static int struct_decode(const trib_kafka_struct_desc_t *d, void *m, trib_slice_t *s, int16_t v,
                         trib_arena_t *a)
{
    bool flex = d_flex(d, v);
    for (unsigned i = 0; i < d->nfields; i++) {
        const trib_kafka_field_t *f = &d->fields[i];
        if (!f_present(f, v) || f_tagged(f, v, flex)) {
            continue;
        }
        bool compact = flex && !(f->flags & TRIB_KAFKA_F_NOFLEX);
        int rc = field_decode(f, fptr(m, f), s, v, compact, f_nullable(f, v), false, a);
        if (rc) {
            return rc;
        }
    }
    if (flex) {
        return tags_decode(d, m, d_tags(d, m), s, v, a);
    }
    return s->err;
}

int trib_kafka_msg_decode(const trib_kafka_msg_desc_t *md, void *m, trib_slice_t *s,
                          int16_t version, trib_arena_t *a)
{
    trib_kafka_struct_init(md->root, m);
    if (version < md->min_version || version > md->max_version) {
        return TRIB_EUNSUPPORTED_VERSION;
    }
    if (s->err) {
        return s->err;
    }
    return struct_decode(md->root, m, s, version, a);
}

/* ---- encode ------------------------------------------------------------------ */

static int struct_encode(const trib_kafka_struct_desc_t *d, const void *m, trib_buf_t *b,
                         int16_t v);

int trib_kafka_str_encode(trib_kstr_t str, trib_buf_t *b, bool compact, bool nullable)
{
    if (str.len < 0) {
        if (!nullable || str.len != -1) {
            return TRIB_EMALFORMED;
        }
        if (compact) {
            trib_buf_put_uvarint(b, 0);
        } else {
            trib_buf_put_i16(b, -1);
        }
        return 0;
    }
    if (str.len > KSTR_MAX || (str.len > 0 && !str.ptr)) {
        return TRIB_EMALFORMED;
    }
    if (compact) {
        trib_buf_put_uvarint(b, (uint64_t)str.len + 1);
    } else {
        trib_buf_put_i16(b, (int16_t)str.len);
    }
    trib_buf_append(b, str.ptr, (size_t)str.len);
    return 0;
}

static int bytes_encode(const trib_kbytes_t *v, trib_buf_t *b, bool compact, bool nullable,
                        bool ref)
{
    if (v->len < 0) {
        if (!nullable || v->len != -1) {
            return TRIB_EMALFORMED;
        }
        if (compact) {
            trib_buf_put_uvarint(b, 0);
        } else {
            trib_buf_put_i32(b, -1);
        }
        return 0;
    }
    if (v->len > 0 && !v->ptr) {
        return TRIB_EMALFORMED;
    }
    if (compact) {
        trib_buf_put_uvarint(b, (uint64_t)v->len + 1);
    } else {
        trib_buf_put_i32(b, v->len);
    }
    if (ref) {
        trib_buf_append_ref(b, v->ptr, (size_t)v->len);
    } else {
        trib_buf_append(b, v->ptr, (size_t)v->len);
    }
    return 0;
}

static int value_encode(const trib_kafka_field_t *f, const void *p, trib_buf_t *b, int16_t v,
                        bool compact, bool nullable, bool tagged)
{
    switch (f->type) {
    case TRIB_KAFKA_T_BOOL:
        trib_buf_put_bool(b, *(const bool *)p);
        break;
    case TRIB_KAFKA_T_INT8:
        trib_buf_put_i8(b, *(const int8_t *)p);
        break;
    case TRIB_KAFKA_T_INT16:
        trib_buf_put_i16(b, *(const int16_t *)p);
        break;
    case TRIB_KAFKA_T_UINT16:
        trib_buf_put_u16(b, *(const uint16_t *)p);
        break;
    case TRIB_KAFKA_T_INT32:
        trib_buf_put_i32(b, *(const int32_t *)p);
        break;
    case TRIB_KAFKA_T_UINT32:
        trib_buf_put_u32(b, *(const uint32_t *)p);
        break;
    case TRIB_KAFKA_T_INT64:
        trib_buf_put_i64(b, *(const int64_t *)p);
        break;
    case TRIB_KAFKA_T_FLOAT64:
        trib_buf_put_f64(b, *(const double *)p);
        break;
    case TRIB_KAFKA_T_UUID:
        trib_buf_append(b, p, sizeof(trib_uuid_t));
        break;
    case TRIB_KAFKA_T_STRING:
        return trib_kafka_str_encode(*(const trib_kstr_t *)p, b, compact, nullable);
    case TRIB_KAFKA_T_BYTES:
    case TRIB_KAFKA_T_RECORDS:
        return bytes_encode(p, b, compact, nullable, (f->flags & TRIB_KAFKA_F_REF) != 0);
    case TRIB_KAFKA_T_STRUCT: {
        if (!(f->flags & TRIB_KAFKA_F_PTR)) {
            return struct_encode(f->sub, p, b, v);
        }
        const void *q = *(const void *const *)p;
        if (nullable) {
            if (tagged) {
                trib_buf_put_uvarint(b, q ? 1 : 0);
            } else {
                trib_buf_put_i8(b, q ? 1 : -1);
            }
        }
        if (!q) {
            return nullable ? 0 : TRIB_EMALFORMED;
        }
        return struct_encode(f->sub, q, b, v);
    }
    }
    return 0;
}

static int field_encode(const trib_kafka_field_t *f, const void *p, trib_buf_t *b, int16_t v,
                        bool compact, bool nullable, bool tagged)
{
    if (!(f->flags & TRIB_KAFKA_F_ARRAY)) {
        return value_encode(f, p, b, v, compact, nullable, tagged);
    }
    const trib_karray_t *arr = p;
    if (arr->count < 0) {
        if (!nullable || arr->count != -1) {
            return TRIB_EMALFORMED;
        }
        if (compact) {
            trib_buf_put_uvarint(b, 0);
        } else {
            trib_buf_put_i32(b, -1);
        }
        return 0;
    }
    if (arr->count > 0 && !arr->items) {
        return TRIB_EMALFORMED;
    }
    if (compact) {
        trib_buf_put_uvarint(b, (uint64_t)arr->count + 1);
    } else {
        trib_buf_put_i32(b, arr->count);
    }
    size_t esz = trib_kafka_field_elem_size(f);
    for (int32_t i = 0; i < arr->count; i++) {
        int rc = value_encode(f, (const char *)arr->items + (size_t)i * esz, b, v, compact, false,
                              false);
        if (rc) {
            return rc;
        }
    }
    return 0;
}

static void raw_tag_encode(const trib_ktag_t *t, trib_buf_t *b)
{
    trib_buf_put_uvarint(b, t->tag);
    trib_buf_put_uvarint(b, (uint64_t)t->data.len);
    trib_buf_append(b, t->data.ptr, (size_t)t->data.len);
}

static int check_unknown(const trib_ktags_t *unk)
{
    if (unk->count < 0 || (unk->count > 0 && !unk->items)) {
        return TRIB_EMALFORMED;
    }
    for (int32_t i = 0; i < unk->count; i++) {
        const trib_ktag_t *t = &unk->items[i];
        if (t->data.len < 0 || (t->data.len > 0 && !t->data.ptr) ||
            (i > 0 && t->tag <= unk->items[i - 1].tag)) {
            return TRIB_EMALFORMED;
        }
    }
    return 0;
}

/*
 * A tagged-field section: known fields that differ from their default,
 * merged in tag order with the unknown ones. A known field's size is only
 * known once it is written, so it goes through a scratch buffer first.
 */
static int tags_encode(const trib_kafka_struct_desc_t *d, const void *m, const trib_ktags_t *unk,
                       trib_buf_t *b, int16_t v)
{
    int rc = check_unknown(unk);
    if (rc) {
        return rc;
    }
    uint64_t n = (uint64_t)unk->count;
    unsigned nf = d ? d->nfields : 0;
    if (d && d->ntagged) {
        for (unsigned i = 0; i < nf; i++) {
            const trib_kafka_field_t *f = &d->fields[i];
            if (f_present(f, v) && f_tagged(f, v, true) && !trib_kafka_field_is_default(f, m)) {
                n++;
            }
        }
    }
    trib_buf_put_uvarint(b, n);
    int32_t j = 0;
    for (unsigned i = 0; d && d->ntagged && i < nf; i++) {
        const trib_kafka_field_t *f = &d->fields[i];
        if (!f_present(f, v) || !f_tagged(f, v, true) || trib_kafka_field_is_default(f, m)) {
            continue;
        }
        while (j < unk->count && unk->items[j].tag < f->tag) {
            raw_tag_encode(&unk->items[j++], b);
        }
        if (j < unk->count && unk->items[j].tag == f->tag) {
            return TRIB_EMALFORMED;
        }
        trib_buf_t tmp;
        trib_buf_init(&tmp);
        rc = field_encode(f, fptr(m, f), &tmp, v, true, f_nullable(f, v), true);
        size_t len = 0;
        const uint8_t *data = rc ? NULL : trib_buf_flatten(&tmp, &len);
        if (!rc && trib_buf_error(&tmp)) {
            rc = trib_buf_error(&tmp);
        }
        if (!rc) {
            trib_buf_put_uvarint(b, f->tag);
            trib_buf_put_uvarint(b, len);
            trib_buf_append(b, data, len);
        }
        trib_buf_fini(&tmp);
        if (rc) {
            return rc;
        }
    }
    while (j < unk->count) {
        raw_tag_encode(&unk->items[j++], b);
    }
    return 0;
}

int trib_kafka_tags_encode(const trib_ktags_t *t, trib_buf_t *b)
{
    int rc = tags_encode(NULL, NULL, t, b, 0);
    return rc ? rc : trib_buf_error(b);
}

static int struct_encode(const trib_kafka_struct_desc_t *d, const void *m, trib_buf_t *b, int16_t v)
{
    bool flex = d_flex(d, v);
    for (unsigned i = 0; i < d->nfields; i++) {
        const trib_kafka_field_t *f = &d->fields[i];
        if (!f_present(f, v)) {
            /* Kafka refuses to drop a non-default value silently. */
            if (!(f->flags & TRIB_KAFKA_F_IGNORABLE) && !trib_kafka_field_is_default(f, m)) {
                return TRIB_EUNSUPPORTED_VERSION;
            }
            continue;
        }
        if (f_tagged(f, v, flex)) {
            continue;
        }
        bool compact = flex && !(f->flags & TRIB_KAFKA_F_NOFLEX);
        int rc = field_encode(f, fptr(m, f), b, v, compact, f_nullable(f, v), false);
        if (rc) {
            return rc;
        }
    }
    if (flex) {
        return tags_encode(d, m, d_tags(d, m), b, v);
    }
    if (d->flex_min != TRIB_KV_NONE && d_tags(d, m)->count != 0) {
        return TRIB_EUNSUPPORTED_VERSION;
    }
    return 0;
}

int trib_kafka_msg_encode(const trib_kafka_msg_desc_t *md, const void *m, trib_buf_t *b,
                          int16_t version)
{
    if (version < md->min_version || version > md->max_version) {
        return TRIB_EUNSUPPORTED_VERSION;
    }
    int rc = struct_encode(md->root, m, b, version);
    return rc ? rc : trib_buf_error(b);
}

/* ---- JSON ------------------------------------------------------------------------ */

static void json_lit(trib_buf_t *out, const char *s)
{
    trib_buf_append(out, s, strlen(s));
}

/* Length of the valid UTF-8 sequence at p[0..n), or 0 if invalid. */
static size_t utf8_len(const uint8_t *p, size_t n)
{
    uint8_t c = p[0];
    size_t len;
    uint32_t cp;
    if (c < 0x80) {
        return 1;
    } else if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (n < len) {
        return 0;
    }
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80) {
            return 0;
        }
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (len == 4 && (cp < 0x10000 || cp > 0x10ffff))) {
        return 0;
    }
    return len;
}

void trib_kafka_json_str(trib_buf_t *out, const char *str, int32_t len)
{
    if (len < 0) {
        json_lit(out, "null");
        return;
    }
    const uint8_t *p = (const uint8_t *)str;
    size_t n = (size_t)len;
    size_t run = 0; /* bytes at p[0..run) to copy verbatim */
    trib_buf_put_u8(out, '"');
    while (run < n) {
        uint8_t c = p[run];
        const char *esc = NULL;
        char tmp[8];
        size_t k = 1;
        if (c == '"') {
            esc = "\\\"";
        } else if (c == '\\') {
            esc = "\\\\";
        } else if (c == '\n') {
            esc = "\\n";
        } else if (c == '\r') {
            esc = "\\r";
        } else if (c == '\t') {
            esc = "\\t";
        } else if (c < 0x20) {
            snprintf(tmp, sizeof(tmp), "\\u%04x", c);
            esc = tmp;
        } else if (c >= 0x80) {
            k = utf8_len(p + run, n - run);
            if (k == 0) {
                esc = "\\ufffd";
                k = 1;
            } else if (k == 3 && c == 0xe2 && p[run + 1] == 0x80 &&
                       (p[run + 2] == 0xa8 || p[run + 2] == 0xa9)) {
                /* U+2028/U+2029 are line breaks to many readers (Python's
                 * splitlines, JavaScript): escape them so output stays one line. */
                esc = p[run + 2] == 0xa8 ? "\\u2028" : "\\u2029";
            }
        }
        if (!esc) {
            run += k;
            continue;
        }
        trib_buf_append(out, p, run);
        json_lit(out, esc);
        p += run + k;
        n -= run + k;
        run = 0;
    }
    trib_buf_append(out, p, run);
    trib_buf_put_u8(out, '"');
}

static void json_hex(trib_buf_t *out, const uint8_t *p, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    char tmp[128];
    size_t k = 0;
    trib_buf_put_u8(out, '"');
    for (size_t i = 0; i < n; i++) {
        tmp[k++] = hex[p[i] >> 4];
        tmp[k++] = hex[p[i] & 15];
        if (k == sizeof(tmp)) {
            trib_buf_append(out, tmp, k);
            k = 0;
        }
    }
    trib_buf_append(out, tmp, k);
    trib_buf_put_u8(out, '"');
}

static void json_struct(const trib_kafka_struct_desc_t *d, const void *m, int16_t v,
                        trib_buf_t *out);

static void json_value(const trib_kafka_field_t *f, const void *p, int16_t v, trib_buf_t *out)
{
    char tmp[40];
    tmp[0] = '\0';
    switch (f->type) {
    case TRIB_KAFKA_T_BOOL:
        json_lit(out, *(const bool *)p ? "true" : "false");
        return;
    case TRIB_KAFKA_T_INT8:
        snprintf(tmp, sizeof(tmp), "%d", *(const int8_t *)p);
        break;
    case TRIB_KAFKA_T_INT16:
        snprintf(tmp, sizeof(tmp), "%d", *(const int16_t *)p);
        break;
    case TRIB_KAFKA_T_UINT16:
        snprintf(tmp, sizeof(tmp), "%u", *(const uint16_t *)p);
        break;
    case TRIB_KAFKA_T_INT32:
        snprintf(tmp, sizeof(tmp), "%" PRId32, *(const int32_t *)p);
        break;
    case TRIB_KAFKA_T_UINT32:
        snprintf(tmp, sizeof(tmp), "%" PRIu32, *(const uint32_t *)p);
        break;
    case TRIB_KAFKA_T_INT64:
        snprintf(tmp, sizeof(tmp), "%" PRId64, *(const int64_t *)p);
        break;
    case TRIB_KAFKA_T_FLOAT64: {
        double d = *(const double *)p;
        if (isfinite(d)) {
            snprintf(tmp, sizeof(tmp), "%.17g", d);
        } else {
            snprintf(tmp, sizeof(tmp), "null");
        }
        break;
    }
    case TRIB_KAFKA_T_STRING: {
        const trib_kstr_t *s = p;
        trib_kafka_json_str(out, s->ptr, s->len);
        return;
    }
    case TRIB_KAFKA_T_BYTES:
    case TRIB_KAFKA_T_RECORDS: {
        const trib_kbytes_t *s = p;
        if (s->len < 0) {
            json_lit(out, "null");
        } else {
            json_hex(out, s->ptr, (size_t)s->len);
        }
        return;
    }
    case TRIB_KAFKA_T_UUID:
        json_hex(out, p, sizeof(trib_uuid_t));
        return;
    case TRIB_KAFKA_T_STRUCT:
        if (f->flags & TRIB_KAFKA_F_PTR) {
            p = *(const void *const *)p;
            if (!p) {
                json_lit(out, "null");
                return;
            }
        }
        json_struct(f->sub, p, v, out);
        return;
    }
    json_lit(out, tmp);
}

static void json_struct(const trib_kafka_struct_desc_t *d, const void *m, int16_t v,
                        trib_buf_t *out)
{
    bool first = true;
    trib_buf_put_u8(out, '{');
    for (unsigned i = 0; i < d->nfields; i++) {
        const trib_kafka_field_t *f = &d->fields[i];
        if (!f_present(f, v)) {
            continue;
        }
        if (!first) {
            trib_buf_put_u8(out, ',');
        }
        first = false;
        trib_kafka_json_str(out, f->name, (int32_t)strlen(f->name));
        trib_buf_put_u8(out, ':');
        const void *p = fptr(m, f);
        if (!(f->flags & TRIB_KAFKA_F_ARRAY)) {
            json_value(f, p, v, out);
            continue;
        }
        const trib_karray_t *arr = p;
        if (arr->count < 0) {
            json_lit(out, "null");
            continue;
        }
        size_t esz = trib_kafka_field_elem_size(f);
        trib_buf_put_u8(out, '[');
        for (int32_t k = 0; k < arr->count; k++) {
            if (k) {
                trib_buf_put_u8(out, ',');
            }
            json_value(f, (const char *)arr->items + (size_t)k * esz, v, out);
        }
        trib_buf_put_u8(out, ']');
    }
    trib_buf_put_u8(out, '}');
}

int trib_kafka_msg_to_json(const trib_kafka_msg_desc_t *md, const void *m, int16_t version,
                           trib_buf_t *out)
{
    if (version < md->min_version || version > md->max_version) {
        return TRIB_EUNSUPPORTED_VERSION;
    }
    json_struct(md->root, m, version, out);
    return trib_buf_error(out);
}

/* ---- tables --------------------------------------------------------------------- */

const trib_kafka_api_t *trib_kafka_api_find(int16_t api_key)
{
    size_t lo = 0, hi = trib_kafka_api_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int16_t k = trib_kafka_apis[mid].api_key;
        if (k == api_key) {
            return &trib_kafka_apis[mid];
        }
        if (k < api_key) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return NULL;
}

const trib_kafka_codec_t *trib_kafka_codec_find(const char *name)
{
    size_t lo = 0, hi = trib_kafka_codec_count;
    while (name && lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(trib_kafka_codecs[mid]->name, name);
        if (c == 0) {
            return trib_kafka_codecs[mid];
        }
        if (c < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return NULL;
}
