/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A per-request arena: bump allocation from a chain of chunks, freed all at
 * once. A decoded Kafka request (its arrays and structs) lives in one arena
 * that is freed when the response has been written.
 *
 * An optional byte limit bounds what hostile input can make a decoder
 * allocate: past it, allocation fails (NULL) as if memory ran out.
 * Allocations are aligned for any type (alignof(max_align_t)).
 */
#ifndef TRIBUTARY_ARENA_H
#define TRIBUTARY_ARENA_H

#include <stdbool.h>
#include <stddef.h>

typedef struct trib_arena_chunk trib_arena_chunk_t;

/* See trib_arena_set_fail_hook(). */
typedef bool (*trib_arena_fail_fn)(void *arg, size_t n);

typedef struct trib_arena {
    trib_arena_chunk_t *chunks; /* newest first */
    size_t used;                /* bytes handed out, plus chunk slack */
    size_t limit;               /* 0 = unlimited */
    size_t next_size;
    trib_arena_fail_fn fail; /* tests only; NULL */
    void *fail_arg;
} trib_arena_t;

void trib_arena_init(trib_arena_t *a);
/* Bounds the total bytes the arena may allocate (0 = no bound). */
void trib_arena_set_limit(trib_arena_t *a, size_t limit);
/*
 * For out-of-memory tests: fn(arg, n) is asked before every allocation
 * (alloc, calloc, memdup, strndup) and when it returns true that
 * allocation fails (NULL) as if memory ran out. NULL (the default after
 * init) turns it off; the hook survives reset and fini.
 */
void trib_arena_set_fail_hook(trib_arena_t *a, trib_arena_fail_fn fn, void *arg);
void trib_arena_fini(trib_arena_t *a);
/* Frees everything but the first chunk, for reuse. */
void trib_arena_reset(trib_arena_t *a);

void *trib_arena_alloc(trib_arena_t *a, size_t n);
/* Zeroed array of n elements of size sz; NULL on overflow or limit. */
void *trib_arena_calloc(trib_arena_t *a, size_t n, size_t sz);
void *trib_arena_memdup(trib_arena_t *a, const void *p, size_t n);
/* NUL-terminated copy of p[0..n). */
char *trib_arena_strndup(trib_arena_t *a, const char *p, size_t n);

static inline size_t trib_arena_used(const trib_arena_t *a)
{
    return a->used;
}

#endif
