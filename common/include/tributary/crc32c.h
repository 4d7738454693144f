/* SPDX-License-Identifier: Apache-2.0 */
/*
 * CRC32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of
 * Kafka record batches. trib_crc32c() uses the SSE4.2 crc32 instruction
 * when the CPU has it and a slice-by-8 table otherwise; both are exposed so
 * tests can check them against each other and against known vectors.
 *
 * The running value is the finished CRC of what came before, so
 *   trib_crc32c(trib_crc32c(0, a, n), b, m) == trib_crc32c(0, a ++ b, n + m).
 */
#ifndef TRIBUTARY_CRC32C_H
#define TRIBUTARY_CRC32C_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

uint32_t trib_crc32c(uint32_t crc, const void *p, size_t n);
uint32_t trib_crc32c_sw(uint32_t crc, const void *p, size_t n);
/* Only valid when trib_crc32c_hw_available(). */
uint32_t trib_crc32c_hw(uint32_t crc, const void *p, size_t n);
bool trib_crc32c_hw_available(void);

#endif
