/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz target: one request frame as the collector receives it.
 *
 *   int32 size | request header (v0-v2) | body
 *
 * The size is checked against the input, the header parsed, the body
 * decoded with the API's generated codec in a size-limited arena, and a
 * decoded body is re-encoded and decoded again (the codec must accept its
 * own output and give the same bytes back).
 *
 * Sets fuzz_input_valid when the frame decoded (the replay driver's
 * --valid checks that the seeds do).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tributary/arena.h"
#include "tributary/buf.h"
#include "tributary/kafka.h"
#include "tributary/slice.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int fuzz_input_valid;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_input_valid = 0;
    trib_slice_t frame = trib_slice_make(data, size);
    int32_t len = trib_slice_i32(&frame);
    if (!trib_slice_ok(&frame) || len < 0 || (size_t)len > trib_slice_remaining(&frame)) {
        return 0;
    }
    trib_slice_t s = trib_slice_sub(&frame, (size_t)len);
    trib_arena_t arena;
    trib_arena_init(&arena);
    trib_arena_set_limit(&arena, 4u << 20);

    trib_kafka_request_header_t h;
    int16_t hv = 0;
    int rc = trib_kafka_request_header_parse(&h, &s, &arena, &hv);
    const trib_kafka_api_t *api = rc == 0 ? trib_kafka_api_find(h.api_key) : NULL;
    if (api && api->request && h.api_version >= api->request->min_version &&
        h.api_version <= api->request->max_version) {
        const trib_kafka_codec_t *c = api->request;
        void *m = trib_arena_alloc(&arena, c->size);
        if (m) {
            c->init(m);
            if (c->decode(m, &s, h.api_version, &arena) == 0) {
                fuzz_input_valid = 1;
                trib_buf_t b;
                trib_buf_init(&b);
                if (c->encode(m, &b, h.api_version) == 0) {
                    size_t n;
                    const uint8_t *p = trib_buf_flatten(&b, &n);
                    void *m2 = trib_arena_alloc(&arena, c->size);
                    if (p && m2) {
                        trib_slice_t s2 = trib_slice_make(p, n);
                        c->init(m2);
                        if (c->decode(m2, &s2, h.api_version, &arena) != 0) {
                            abort(); /* the codec rejected its own output */
                        }
                        trib_buf_t b2;
                        trib_buf_init(&b2);
                        if (c->encode(m2, &b2, h.api_version) == 0) {
                            size_t n2;
                            const uint8_t *p2 = trib_buf_flatten(&b2, &n2);
                            if (n2 != n || (n && memcmp(p, p2, n) != 0)) {
                                abort(); /* encode is not stable */
                            }
                        }
                        trib_buf_fini(&b2);
                    }
                }
                trib_buf_fini(&b);
                trib_buf_t j;
                trib_buf_init(&j);
                c->to_json(m, h.api_version, &j);
                trib_buf_fini(&j);
            }
        }
    }
    trib_arena_fini(&arena);
    return 0;
}
