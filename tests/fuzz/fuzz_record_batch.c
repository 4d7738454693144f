/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz target: a "records" field as a Produce request or a log segment
 * carries it. Every batch is parsed; the CRC is checked the first time
 * and ignored the second (so mutations reach the record parser); records,
 * their headers and control records are iterated, with decompression
 * bounded to 1 MiB.
 *
 * Sets fuzz_input_valid when every batch and record parsed with the CRC
 * checked (a partial trailing batch is normal).
 */
#include <stdint.h>
#include <stdlib.h>

#include "tributary/arena.h"
#include "tributary/record.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int fuzz_input_valid;

static int walk(const uint8_t *data, size_t size, unsigned flags)
{
    trib_batch_iter_t bi;
    trib_batch_t b;
    trib_batch_iter_init(&bi, data, size, flags);
    int batches = 0, rc, bad = 0;
    while (batches < 64 && (rc = trib_batch_iter_next(&bi, &b)) == 1) {
        batches++;
        trib_arena_t arena;
        trib_arena_init(&arena);
        trib_record_iter_t ri;
        trib_record_t r;
        if (trib_record_iter_init(&ri, &b, batches % 2 ? &arena : NULL, 1u << 20) != 0) {
            bad = 1;
        } else {
            while ((rc = trib_record_iter_next(&ri, &r)) == 1) {
                trib_record_header_iter_t hi;
                trib_record_header_t h;
                trib_record_header_iter_init(&hi, &r);
                while (trib_record_header_iter_next(&hi, &h) == 1) {
                }
                if (trib_batch_is_control(&b)) {
                    trib_control_record_t c;
                    (void)trib_control_record_parse(&r, &c);
                }
            }
            bad |= rc < 0;
        }
        trib_record_iter_fini(&ri);
        trib_arena_fini(&arena);
    }
    return (bad || rc < 0 || batches == 0) ? -1 : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_input_valid = walk(data, size, 0) == 0;
    walk(data, size, TRIB_BATCH_SKIP_CRC);
    return 0;
}
