/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz target: the RFC 6587 framer. Input: mode byte (% 3), max_msg byte
 * (1 + 8 * b, or 65536 for 255), split seed byte, then the stream. The
 * stream is framed twice, pushed whole and pushed in pseudo-random pieces
 * of 1..17 bytes, each ended with _finish(); both must hand out the same
 * messages, flags and errors, no message longer than max_msg, and the
 * framer never holding more than max_msg + 32 bytes.
 *
 * Sets fuzz_input_valid when the stream framed without error into at
 * least one message.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "syslog.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int fuzz_input_valid;

typedef struct result {
    uint64_t hash, count;
    int err;
} result_t;

static void mix(result_t *r, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        r->hash = (r->hash ^ b[i]) * 1099511628211u;
    }
}

static void take(agent_syslog_framer_t *f, result_t *r, bool eof)
{
    const char *msg;
    size_t len;
    bool trunc;
    int rc;
    while ((rc = eof ? agent_syslog_framer_finish(f, &msg, &len, &trunc)
                     : agent_syslog_framer_next(f, &msg, &len, &trunc)) == 1) {
        if (len > f->max_msg || len == 0) {
            abort();
        }
        mix(r, &len, sizeof(len));
        mix(r, &trunc, sizeof(trunc));
        mix(r, msg, len);
        r->count++;
    }
    if (rc != 0 && rc != -EPROTO) {
        abort();
    }
    if (rc == -EPROTO) {
        r->err = rc;
    }
    if (f->len - f->pos > f->max_msg + 32 || f->len > f->cap) {
        abort();
    }
}

static result_t run(int mode, size_t max_msg, uint32_t seed, const char *s, size_t n)
{
    agent_syslog_framer_t f;
    result_t r = {14695981039346656037u, 0, 0};
    if (agent_syslog_framer_init(&f, mode, max_msg) != 0) {
        abort();
    }
    size_t off = 0;
    while (off < n && !r.err) {
        size_t piece = n - off;
        if (seed) {
            seed = seed * 1103515245u + 12345u;
            size_t want = 1 + (seed >> 16) % 17;
            piece = piece < want ? piece : want;
        }
        size_t got = agent_syslog_framer_push(&f, s + off, piece);
        if (got > piece) {
            abort();
        }
        off += got;
        take(&f, &r, false);
        if (got == 0 && agent_syslog_framer_room(&f) == 0 && !r.err) {
            abort(); /* full, yet _next() handed nothing out */
        }
    }
    if (!r.err) {
        take(&f, &r, true);
    }
    agent_syslog_framer_fini(&f);
    return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3) {
        return 0;
    }
    int mode = data[0] % 3;
    size_t max_msg = data[1] == 255 ? 65536 : 1 + 8 * (size_t)data[1];
    uint32_t seed = data[2] | 0x100u;
    const char *s = (const char *)data + 3;
    size_t n = size - 3;
    result_t whole = run(mode, max_msg, 0, s, n);
    result_t split = run(mode, max_msg, seed, s, n);
    if (whole.hash != split.hash || whole.count != split.count || whole.err != split.err) {
        abort();
    }
    fuzz_input_valid = whole.err == 0 && whole.count > 0;
    return 0;
}
