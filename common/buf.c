/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The segment buffer (see buf.h).
 *
 * Owned segments are one allocation: the trib_buf_seg_t header followed by
 * `cap` data bytes. Reference segments allocate only the header. Owned
 * segment capacity starts at 512 bytes and doubles up to 64 KiB, so small
 * messages cost one allocation and large ones few.
 */
#include "tributary/buf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tributary/crc32c.h"
#include "tributary/varint.h"

#define BUF_FIRST_CAP 512
#define BUF_MAX_CAP (64 * 1024)

void trib_buf_init(trib_buf_t *b)
{
    b->head = NULL;
    b->tail = NULL;
    b->len = 0;
    b->next_cap = BUF_FIRST_CAP;
    b->err = 0;
}

void trib_buf_fini(trib_buf_t *b)
{
    trib_buf_seg_t *s = b->head;
    while (s) {
        trib_buf_seg_t *next = s->next;
        free(s);
        s = next;
    }
    trib_buf_init(b);
}

void trib_buf_reset(trib_buf_t *b)
{
    trib_buf_fini(b);
}

static void buf_link(trib_buf_t *b, trib_buf_seg_t *s)
{
    s->next = NULL;
    if (b->tail) {
        b->tail->next = s;
    } else {
        b->head = s;
    }
    b->tail = s;
}

/* Returns a pointer to n contiguous writable bytes at the end, or NULL. */
static uint8_t *buf_space(trib_buf_t *b, size_t n)
{
    if (b->err) {
        return NULL;
    }
    trib_buf_seg_t *t = b->tail;
    if (!t || t->cap == 0 || t->cap - t->len < n) {
        size_t cap = b->next_cap;
        if (cap < n) {
            cap = n;
        }
        if (cap > SIZE_MAX - sizeof(trib_buf_seg_t)) {
            b->err = -ENOMEM;
            return NULL;
        }
        t = malloc(sizeof(trib_buf_seg_t) + cap);
        if (!t) {
            b->err = -ENOMEM;
            return NULL;
        }
        t->data = (uint8_t *)(t + 1);
        t->len = 0;
        t->cap = cap;
        buf_link(b, t);
        if (b->next_cap < BUF_MAX_CAP) {
            b->next_cap *= 2;
        }
    }
    uint8_t *p = t->data + t->len;
    t->len += n;
    b->len += n;
    return p;
}

void trib_buf_append(trib_buf_t *b, const void *p, size_t n)
{
    if (n == 0) {
        return;
    }
    /* Fill what is left of the tail, then one new segment for the rest. */
    trib_buf_seg_t *t = b->tail;
    if (!b->err && t && t->cap > t->len) {
        size_t room = t->cap - t->len;
        size_t k = n < room ? n : room;
        memcpy(t->data + t->len, p, k);
        t->len += k;
        b->len += k;
        p = (const uint8_t *)p + k;
        n -= k;
        if (n == 0) {
            return;
        }
    }
    uint8_t *dst = buf_space(b, n);
    if (dst) {
        memcpy(dst, p, n);
    }
}

void trib_buf_append_ref(trib_buf_t *b, const void *p, size_t n)
{
    if (n < TRIB_BUF_REF_MIN) {
        trib_buf_append(b, p, n);
        return;
    }
    if (b->err) {
        return;
    }
    trib_buf_seg_t *s = malloc(sizeof(*s));
    if (!s) {
        b->err = -ENOMEM;
        return;
    }
    s->data = (uint8_t *)(uintptr_t)p;
    s->len = n;
    s->cap = 0;
    buf_link(b, s);
    b->len += n;
}

static void put_be(trib_buf_t *b, uint64_t v, size_t n)
{
    uint8_t tmp[8];
    for (size_t i = 0; i < n; i++) {
        tmp[n - 1 - i] = (uint8_t)(v >> (8 * i));
    }
    trib_buf_append(b, tmp, n);
}

void trib_buf_put_i8(trib_buf_t *b, int8_t v)
{
    put_be(b, (uint8_t)v, 1);
}

void trib_buf_put_u8(trib_buf_t *b, uint8_t v)
{
    put_be(b, v, 1);
}

void trib_buf_put_bool(trib_buf_t *b, bool v)
{
    put_be(b, v ? 1 : 0, 1);
}

void trib_buf_put_i16(trib_buf_t *b, int16_t v)
{
    put_be(b, (uint16_t)v, 2);
}

void trib_buf_put_u16(trib_buf_t *b, uint16_t v)
{
    put_be(b, v, 2);
}

void trib_buf_put_i32(trib_buf_t *b, int32_t v)
{
    put_be(b, (uint32_t)v, 4);
}

void trib_buf_put_u32(trib_buf_t *b, uint32_t v)
{
    put_be(b, v, 4);
}

void trib_buf_put_i64(trib_buf_t *b, int64_t v)
{
    put_be(b, (uint64_t)v, 8);
}

void trib_buf_put_f64(trib_buf_t *b, double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof(bits));
    put_be(b, bits, 8);
}

void trib_buf_put_uvarint(trib_buf_t *b, uint64_t v)
{
    uint8_t tmp[TRIB_VARINT_MAX64];
    trib_buf_append(b, tmp, trib_uvarint_encode(tmp, v));
}

void trib_buf_put_varint(trib_buf_t *b, int32_t v)
{
    trib_buf_put_uvarint(b, trib_zigzag32(v));
}

void trib_buf_put_varlong(trib_buf_t *b, int64_t v)
{
    trib_buf_put_uvarint(b, trib_zigzag64(v));
}

size_t trib_buf_reserve(trib_buf_t *b, size_t n)
{
    size_t pos = b->len;
    uint8_t *p = buf_space(b, n);
    if (p) {
        memset(p, 0, n);
    }
    return pos;
}

/* Finds the segment holding absolute position pos; *off = offset inside. */
static trib_buf_seg_t *buf_find(const trib_buf_t *b, size_t pos, size_t *off)
{
    size_t at = 0;
    for (trib_buf_seg_t *s = b->head; s; s = s->next) {
        if (pos < at + s->len) {
            *off = pos - at;
            return s;
        }
        at += s->len;
    }
    return NULL;
}

void trib_buf_patch(trib_buf_t *b, size_t pos, const void *p, size_t n)
{
    if (b->err || n == 0 || pos > b->len || n > b->len - pos) {
        return;
    }
    size_t off;
    trib_buf_seg_t *s = buf_find(b, pos, &off);
    const uint8_t *src = p;
    while (s && n > 0) {
        size_t k = s->len - off;
        if (k > n) {
            k = n;
        }
        /* Reserved regions are always in owned segments. */
        if (s->cap != 0) {
            memcpy(s->data + off, src, k);
        }
        src += k;
        n -= k;
        off = 0;
        s = s->next;
    }
}

static void patch_be(trib_buf_t *b, size_t pos, uint64_t v, size_t n)
{
    uint8_t tmp[8];
    for (size_t i = 0; i < n; i++) {
        tmp[n - 1 - i] = (uint8_t)(v >> (8 * i));
    }
    trib_buf_patch(b, pos, tmp, n);
}

void trib_buf_patch_i16(trib_buf_t *b, size_t pos, int16_t v)
{
    patch_be(b, pos, (uint16_t)v, 2);
}

void trib_buf_patch_i32(trib_buf_t *b, size_t pos, int32_t v)
{
    patch_be(b, pos, (uint32_t)v, 4);
}

void trib_buf_patch_u32(trib_buf_t *b, size_t pos, uint32_t v)
{
    patch_be(b, pos, v, 4);
}

void trib_buf_patch_i64(trib_buf_t *b, size_t pos, int64_t v)
{
    patch_be(b, pos, (uint64_t)v, 8);
}

uint32_t trib_buf_crc32c(const trib_buf_t *b, size_t from, size_t to)
{
    uint32_t crc = 0;
    if (to > b->len) {
        to = b->len;
    }
    if (from >= to) {
        return crc;
    }
    size_t off;
    size_t n = to - from;
    trib_buf_seg_t *s = buf_find(b, from, &off);
    while (s && n > 0) {
        size_t k = s->len - off;
        if (k > n) {
            k = n;
        }
        crc = trib_crc32c(crc, s->data + off, k);
        n -= k;
        off = 0;
        s = s->next;
    }
    return crc;
}

int trib_buf_iovcnt(const trib_buf_t *b)
{
    int n = 0;
    for (trib_buf_seg_t *s = b->head; s; s = s->next) {
        if (s->len) {
            n++;
        }
    }
    return n;
}

int trib_buf_iovec(const trib_buf_t *b, struct iovec *iov, int max)
{
    int n = 0;
    for (trib_buf_seg_t *s = b->head; s && n < max; s = s->next) {
        if (s->len) {
            iov[n].iov_base = s->data;
            iov[n].iov_len = s->len;
            n++;
        }
    }
    return n;
}

size_t trib_buf_copyout(const trib_buf_t *b, size_t pos, void *dst, size_t n)
{
    if (pos >= b->len) {
        return 0;
    }
    if (n > b->len - pos) {
        n = b->len - pos;
    }
    size_t off, done = 0;
    trib_buf_seg_t *s = buf_find(b, pos, &off);
    while (s && done < n) {
        size_t k = s->len - off;
        if (k > n - done) {
            k = n - done;
        }
        memcpy((uint8_t *)dst + done, s->data + off, k);
        done += k;
        off = 0;
        s = s->next;
    }
    return done;
}

const uint8_t *trib_buf_flatten(trib_buf_t *b, size_t *len)
{
    *len = 0;
    if (b->err || b->len == 0) {
        return NULL;
    }
    if (b->head == b->tail && b->head->cap != 0) {
        *len = b->len;
        return b->head->data;
    }
    trib_buf_seg_t *s = malloc(sizeof(trib_buf_seg_t) + b->len);
    if (!s) {
        b->err = -ENOMEM;
        return NULL;
    }
    s->data = (uint8_t *)(s + 1);
    s->cap = b->len;
    s->len = trib_buf_copyout(b, 0, s->data, b->len);
    s->next = NULL;
    size_t total = b->len;
    size_t next_cap = b->next_cap;
    trib_buf_fini(b);
    b->head = b->tail = s;
    b->len = total;
    b->next_cap = next_cap;
    *len = total;
    return s->data;
}
