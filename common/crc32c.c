/* SPDX-License-Identifier: Apache-2.0 */
/*
 * CRC32C with a hardware path (x86-64 SSE4.2) chosen at runtime and a
 * portable slice-by-8 fallback. Tables are built once with pthread_once.
 *
 * The crc32 instruction has a latency of three cycles but a throughput of
 * one per cycle, so one dependent chain uses a third of it. Large inputs
 * are therefore cut into blocks of three equal lanes checksummed in
 * parallel, and the lanes' registers are combined: the CRC register
 * update is linear over GF(2), so for lanes A, B, C of L bytes
 *
 *   crc(A || B || C) = shift(shift(crc(A), L) ^ crc0(B), L) ^ crc0(C)
 *
 * where crc0 starts from a zero register and shift(r, L) is the register
 * after feeding L zero bytes from r. shift is linear too, so it is four
 * table lookups (one per byte of r) in a table built for each lane size.
 */
#include "tributary/crc32c.h"

#include <pthread.h>
#include <string.h>

#define CRC32C_POLY 0x82F63B78u

static uint32_t crc_table[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_build_tables(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) {
            c = (c & 1) ? (c >> 1) ^ CRC32C_POLY : c >> 1;
        }
        crc_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = crc_table[0][i];
        for (int t = 1; t < 8; t++) {
            c = crc_table[0][c & 0xff] ^ (c >> 8);
            crc_table[t][i] = c;
        }
    }
}

uint32_t trib_crc32c_sw(uint32_t crc, const void *p, size_t n)
{
    pthread_once(&crc_once, crc_build_tables);
    const uint8_t *b = p;
    crc = ~crc;
    while (n && ((uintptr_t)b & 7)) {
        crc = crc_table[0][(crc ^ *b++) & 0xff] ^ (crc >> 8);
        n--;
    }
    while (n >= 8) {
        uint32_t lo, hi;
        memcpy(&lo, b, 4);
        memcpy(&hi, b + 4, 4);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        lo = __builtin_bswap32(lo);
        hi = __builtin_bswap32(hi);
#endif
        lo ^= crc;
        crc = crc_table[7][lo & 0xff] ^ crc_table[6][(lo >> 8) & 0xff] ^
              crc_table[5][(lo >> 16) & 0xff] ^ crc_table[4][lo >> 24] ^ crc_table[3][hi & 0xff] ^
              crc_table[2][(hi >> 8) & 0xff] ^ crc_table[1][(hi >> 16) & 0xff] ^
              crc_table[0][hi >> 24];
        b += 8;
        n -= 8;
    }
    while (n--) {
        crc = crc_table[0][(crc ^ *b++) & 0xff] ^ (crc >> 8);
    }
    return ~crc;
}

#if defined(__x86_64__)
#include <nmmintrin.h>

/* Lane sizes for the three-way path (multiples of 8). */
#define LANE_LONG 4096
#define LANE_SHORT 256

/* shift tables: shift_long[k][b] = shift(b << 8k, LANE_LONG), likewise short. */
static uint32_t shift_long[4][256];
static uint32_t shift_short[4][256];

/* The raw register after feeding `zeros` zero bytes from r (table path). */
static uint32_t crc_zeros(uint32_t r, size_t zeros)
{
    while (zeros--) {
        r = crc_table[0][r & 0xff] ^ (r >> 8);
    }
    return r;
}

/*
 * Feeding zero bytes is linear over GF(2) (the table is: T[a ^ b] = T[a] ^
 * T[b]), so an entry is the XOR of the entries of its bits: only the 32
 * one-bit registers are run through `lane` zeros (the rest would be 1024
 * runs, some 22 million steps at start-up).
 */
static void shift_build(uint32_t t[4][256], size_t lane)
{
    for (int k = 0; k < 4; k++) {
        t[k][0] = 0;
        for (int bit = 0; bit < 8; bit++) {
            uint32_t one = crc_zeros(1u << (8 * k + bit), lane);
            uint32_t lo = 1u << bit;
            for (uint32_t b = lo; b < 2 * lo; b++) {
                t[k][b] = t[k][b - lo] ^ one; /* b - lo: b without its top bit */
            }
        }
    }
}

static pthread_once_t shift_once = PTHREAD_ONCE_INIT;

static void shift_build_all(void)
{
    pthread_once(&crc_once, crc_build_tables);
    shift_build(shift_long, LANE_LONG);
    shift_build(shift_short, LANE_SHORT);
}

static inline uint32_t shift_apply(const uint32_t t[4][256], uint32_t r)
{
    return t[0][r & 0xff] ^ t[1][(r >> 8) & 0xff] ^ t[2][(r >> 16) & 0xff] ^ t[3][r >> 24];
}

/* Three lanes of `lane` bytes at b, continuing from raw register c. */
__attribute__((target("sse4.2"))) static uint64_t crc_hw_3way(uint64_t c, const uint8_t *b,
                                                              size_t lane, const uint32_t t[4][256])
{
    uint64_t c1 = 0, c2 = 0;
    const uint8_t *b1 = b + lane, *b2 = b + 2 * lane;
    for (size_t i = 0; i < lane; i += 8) {
        uint64_t w0, w1, w2;
        memcpy(&w0, b + i, 8);
        memcpy(&w1, b1 + i, 8);
        memcpy(&w2, b2 + i, 8);
        c = _mm_crc32_u64(c, w0);
        c1 = _mm_crc32_u64(c1, w1);
        c2 = _mm_crc32_u64(c2, w2);
    }
    uint32_t r = shift_apply(t, (uint32_t)c) ^ (uint32_t)c1;
    return shift_apply(t, r) ^ (uint32_t)c2;
}

__attribute__((target("sse4.2"))) uint32_t trib_crc32c_hw(uint32_t crc, const void *p, size_t n)
{
    const uint8_t *b = p;
    uint64_t c = ~crc;
    while (n && ((uintptr_t)b & 7)) {
        c = _mm_crc32_u8((uint32_t)c, *b++);
        n--;
    }
    if (n >= 3 * LANE_SHORT) {
        pthread_once(&shift_once, shift_build_all);
        while (n >= 3 * LANE_LONG) {
            c = crc_hw_3way(c, b, LANE_LONG, shift_long);
            b += 3 * LANE_LONG;
            n -= 3 * LANE_LONG;
        }
        while (n >= 3 * LANE_SHORT) {
            c = crc_hw_3way(c, b, LANE_SHORT, shift_short);
            b += 3 * LANE_SHORT;
            n -= 3 * LANE_SHORT;
        }
    }
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, b, 8);
        c = _mm_crc32_u64(c, w);
        b += 8;
        n -= 8;
    }
    while (n--) {
        c = _mm_crc32_u8((uint32_t)c, *b++);
    }
    return ~(uint32_t)c;
}

bool trib_crc32c_hw_available(void)
{
    return __builtin_cpu_supports("sse4.2");
}
#else
uint32_t trib_crc32c_hw(uint32_t crc, const void *p, size_t n)
{
    return trib_crc32c_sw(crc, p, n);
}

bool trib_crc32c_hw_available(void)
{
    return false;
}
#endif

typedef uint32_t (*crc_fn)(uint32_t, const void *, size_t);
static crc_fn crc_impl;
static pthread_once_t impl_once = PTHREAD_ONCE_INIT;

static void crc_choose(void)
{
    crc_impl = trib_crc32c_hw_available() ? trib_crc32c_hw : trib_crc32c_sw;
}

uint32_t trib_crc32c(uint32_t crc, const void *p, size_t n)
{
    pthread_once(&impl_once, crc_choose);
    return crc_impl(crc, p, n);
}
