/* SPDX-License-Identifier: Apache-2.0 */
/* Unsigned varint encode/decode (see varint.h for the byte layout). */
#include "tributary/varint.h"

#include "tributary/error.h"

size_t trib_uvarint_encode(uint8_t *out, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        out[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    out[n++] = (uint8_t)v;
    return n;
}

size_t trib_uvarint_size(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

int trib_uvarint_decode(const uint8_t *p, size_t len, size_t maxbytes, uint64_t *out)
{
    uint64_t v = 0;
    unsigned shift = 0;
    if (maxbytes > TRIB_VARINT_MAX64) {
        maxbytes = TRIB_VARINT_MAX64;
    }
    for (size_t i = 0; i < maxbytes; i++) {
        if (i >= len) {
            return TRIB_ETRUNCATED;
        }
        uint8_t b = p[i];
        if (shift == 63 && (b & 0x7e) != 0) {
            return TRIB_EMALFORMED; /* more than 64 bits */
        }
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            if (maxbytes == TRIB_VARINT_MAX32 && v > UINT32_MAX) {
                return TRIB_EMALFORMED;
            }
            *out = v;
            return (int)(i + 1);
        }
        shift += 7;
    }
    return TRIB_EMALFORMED;
}
