/* SPDX-License-Identifier: Apache-2.0 */
/* The sticky-error slice reader (see slice.h). */
#include "tributary/slice.h"

#include <string.h>

#include "tributary/error.h"
#include "tributary/varint.h"

int trib_slice_fail(trib_slice_t *s, int err)
{
    if (!s->err) {
        s->err = err;
    }
    return s->err;
}

const uint8_t *trib_slice_take(trib_slice_t *s, size_t n)
{
    if (s->err) {
        return NULL;
    }
    if (n > s->len) {
        s->err = TRIB_ETRUNCATED;
        return NULL;
    }
    const uint8_t *p = s->ptr;
    s->ptr += n;
    s->len -= n;
    return p;
}

trib_slice_t trib_slice_sub(trib_slice_t *s, size_t n)
{
    const uint8_t *p = trib_slice_take(s, n);
    trib_slice_t sub = {p, p ? n : 0, p ? 0 : s->err};
    return sub;
}

void trib_slice_skip(trib_slice_t *s, size_t n)
{
    (void)trib_slice_take(s, n);
}

bool trib_slice_bool(trib_slice_t *s)
{
    const uint8_t *p = trib_slice_take(s, 1);
    return p ? p[0] != 0 : false;
}

int8_t trib_slice_i8(trib_slice_t *s)
{
    const uint8_t *p = trib_slice_take(s, 1);
    return p ? (int8_t)p[0] : 0;
}

uint8_t trib_slice_u8(trib_slice_t *s)
{
    const uint8_t *p = trib_slice_take(s, 1);
    return p ? p[0] : 0;
}

uint16_t trib_slice_u16(trib_slice_t *s)
{
    const uint8_t *p = trib_slice_take(s, 2);
    return p ? (uint16_t)((p[0] << 8) | p[1]) : 0;
}

int16_t trib_slice_i16(trib_slice_t *s)
{
    return (int16_t)trib_slice_u16(s);
}

uint32_t trib_slice_u32(trib_slice_t *s)
{
    const uint8_t *p = trib_slice_take(s, 4);
    if (!p) {
        return 0;
    }
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

int32_t trib_slice_i32(trib_slice_t *s)
{
    return (int32_t)trib_slice_u32(s);
}

uint64_t trib_slice_u64(trib_slice_t *s)
{
    const uint8_t *p = trib_slice_take(s, 8);
    if (!p) {
        return 0;
    }
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) {
        v = (v << 8) | p[i];
    }
    return v;
}

int64_t trib_slice_i64(trib_slice_t *s)
{
    return (int64_t)trib_slice_u64(s);
}

double trib_slice_f64(trib_slice_t *s)
{
    uint64_t bits = trib_slice_u64(s);
    double d;
    memcpy(&d, &bits, sizeof(d));
    return d;
}

static uint64_t slice_uvarint(trib_slice_t *s, size_t maxbytes)
{
    if (s->err) {
        return 0;
    }
    uint64_t v = 0;
    int n = trib_uvarint_decode(s->ptr, s->len, maxbytes, &v);
    if (n < 0) {
        s->err = n;
        return 0;
    }
    s->ptr += n;
    s->len -= (size_t)n;
    return v;
}

uint32_t trib_slice_uvarint32(trib_slice_t *s)
{
    return (uint32_t)slice_uvarint(s, TRIB_VARINT_MAX32);
}

uint64_t trib_slice_uvarint64(trib_slice_t *s)
{
    return slice_uvarint(s, TRIB_VARINT_MAX64);
}

int32_t trib_slice_varint(trib_slice_t *s)
{
    return trib_unzigzag32((uint32_t)slice_uvarint(s, TRIB_VARINT_MAX32));
}

int64_t trib_slice_varlong(trib_slice_t *s)
{
    return trib_unzigzag64(slice_uvarint(s, TRIB_VARINT_MAX64));
}
