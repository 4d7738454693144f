/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Kafka's Uuid as text (Uuid.toString): URL-safe base64 without padding,
 * 22 characters for 16 bytes. Topic ids in partition.metadata, the cluster
 * id, ZooKeeper's topic znodes and the console all read and write this.
 */
#include <string.h>

#include "tributary/error.h"
#include "tributary/kafka.h"

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

void trib_uuid_format(const trib_uuid_t *id, char out[23])
{
    size_t o = 0;
    for (size_t i = 0; i < 16; i += 3) {
        uint32_t v = (uint32_t)id->b[i] << 16;
        size_t n = 16 - i < 3 ? 16 - i : 3;
        if (n > 1) {
            v |= (uint32_t)id->b[i + 1] << 8;
        }
        if (n > 2) {
            v |= id->b[i + 2];
        }
        out[o++] = b64url[(v >> 18) & 63];
        out[o++] = b64url[(v >> 12) & 63];
        if (n > 1) {
            out[o++] = b64url[(v >> 6) & 63];
        }
        if (n > 2) {
            out[o++] = b64url[v & 63];
        }
    }
    out[o] = '\0';
}

int trib_uuid_parse(const char *s, size_t len, trib_uuid_t *out)
{
    if (len != 22) {
        return TRIB_EMALFORMED;
    }
    trib_uuid_t id;
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        const char *p = s[i] ? memchr(b64url, s[i], 64) : NULL;
        if (!p) {
            return TRIB_EMALFORMED;
        }
        acc = (acc << 6) | (uint32_t)(p - b64url);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o < 16) {
                id.b[o++] = (uint8_t)(acc >> bits);
            }
            acc &= (1u << bits) - 1;
        }
    }
    /* 22 characters carry 132 bits: the last 4 must be zero (the canonical form). */
    if (o != 16 || acc != 0) {
        return TRIB_EMALFORMED;
    }
    *out = id;
    return 0;
}

bool trib_uuid_is_zero(const trib_uuid_t *id)
{
    for (size_t i = 0; i < 16; i++) {
        if (id->b[i]) {
            return false;
        }
    }
    return true;
}
