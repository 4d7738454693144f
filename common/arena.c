/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The per-request arena (see arena.h). Chunks start at 1 KiB and double up
 * to 64 KiB; an allocation larger than half a chunk gets a chunk of its own
 * so it does not waste the current one.
 */
#include "tributary/arena.h"

#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_FIRST 1024
#define ARENA_MAX (64 * 1024)
#define ARENA_ALIGN alignof(max_align_t)

struct trib_arena_chunk {
    trib_arena_chunk_t *next;
    size_t size; /* usable bytes */
    size_t off;  /* bytes used */
    alignas(max_align_t) unsigned char data[];
};

void trib_arena_init(trib_arena_t *a)
{
    a->chunks = NULL;
    a->used = 0;
    a->limit = 0;
    a->next_size = ARENA_FIRST;
    a->fail = NULL;
    a->fail_arg = NULL;
}

void trib_arena_set_fail_hook(trib_arena_t *a, trib_arena_fail_fn fn, void *arg)
{
    a->fail = fn;
    a->fail_arg = arg;
}

void trib_arena_set_limit(trib_arena_t *a, size_t limit)
{
    a->limit = limit;
}

void trib_arena_fini(trib_arena_t *a)
{
    trib_arena_chunk_t *c = a->chunks;
    while (c) {
        trib_arena_chunk_t *next = c->next;
        free(c);
        c = next;
    }
    a->chunks = NULL;
    a->used = 0;
    a->next_size = ARENA_FIRST;
}

void trib_arena_reset(trib_arena_t *a)
{
    trib_arena_chunk_t *c = a->chunks;
    if (!c) {
        return;
    }
    /* Keep the oldest chunk (the last in the list). */
    while (c->next) {
        trib_arena_chunk_t *next = c->next;
        free(c);
        c = next;
    }
    c->off = 0;
    a->chunks = c;
    a->used = 0;
}

static trib_arena_chunk_t *arena_chunk(trib_arena_t *a, size_t need)
{
    size_t size = a->next_size;
    if (need > size / 2) {
        size = need;
    }
    if (size > SIZE_MAX - sizeof(trib_arena_chunk_t)) {
        return NULL;
    }
    trib_arena_chunk_t *c = malloc(sizeof(*c) + size);
    if (!c) {
        return NULL;
    }
    c->size = size;
    c->off = 0;
    if (need > a->next_size / 2 && a->chunks) {
        /* A big allocation: put it behind the current chunk, keep using that. */
        c->next = a->chunks->next;
        a->chunks->next = c;
    } else {
        c->next = a->chunks;
        a->chunks = c;
        if (a->next_size < ARENA_MAX) {
            a->next_size *= 2;
        }
    }
    return c;
}

void *trib_arena_alloc(trib_arena_t *a, size_t n)
{
    if (a->fail && a->fail(a->fail_arg, n)) {
        return NULL;
    }
    if (n == 0) {
        n = 1;
    }
    if (n > SIZE_MAX - ARENA_ALIGN) {
        return NULL;
    }
    size_t rounded = (n + ARENA_ALIGN - 1) & ~(ARENA_ALIGN - 1);
    if (a->limit && (rounded > a->limit || a->used > a->limit - rounded)) {
        return NULL;
    }
    trib_arena_chunk_t *c = a->chunks;
    if (!c || c->size - c->off < rounded) {
        c = arena_chunk(a, rounded);
        if (!c) {
            return NULL;
        }
    }
    void *p = c->data + c->off;
    c->off += rounded;
    a->used += rounded;
    return p;
}

void *trib_arena_calloc(trib_arena_t *a, size_t n, size_t sz)
{
    if (sz && n > SIZE_MAX / sz) {
        return NULL;
    }
    size_t total = n * sz;
    void *p = trib_arena_alloc(a, total);
    if (p && total > 0) {
        memset(p, 0, total);
    }
    return p;
}

void *trib_arena_memdup(trib_arena_t *a, const void *p, size_t n)
{
    void *d = trib_arena_alloc(a, n);
    if (d && n) {
        memcpy(d, p, n);
    }
    return d;
}

char *trib_arena_strndup(trib_arena_t *a, const char *p, size_t n)
{
    if (n == SIZE_MAX) {
        return NULL;
    }
    char *d = trib_arena_alloc(a, n + 1);
    if (d) {
        if (n) {
            memcpy(d, p, n);
        }
        d[n] = '\0';
    }
    return d;
}
