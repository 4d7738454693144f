/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Syslog stream framing (RFC 6587) for the TCP and TLS listeners.
 *
 *   octet counting:  MSG-LEN SP MSG      MSG-LEN = [1-9][0-9]{0,8}
 *   newline:         MSG LF              (a CR before the LF is dropped)
 *
 * Auto mode decides per frame: a frame that starts "[1-9][0-9]{0,8} " is
 * octet counted, anything else runs to the next LF (a message starts with
 * '<' in either case, so senders that mix the two are read correctly).
 *
 * Invariants:
 *  - buf[pos..len) holds the bytes not yet framed; a message handed out
 *    points into buf and stays valid until the next call, which may move
 *    the unconsumed bytes to the front.
 *  - The buffer never grows past cap = max_msg + 32: enough for a count
 *    header (10 bytes) and a whole max_msg frame, or a max_msg line with
 *    its CR LF. A longer frame is handed out cut at max_msg and flagged;
 *    its rest is skipped (octet: `skip` counts it down; newline: `discard`
 *    drops bytes up to the next LF).
 *  - Empty lines carry no message and are dropped. In octet mode CR and LF
 *    between frames are tolerated (senders that end frames with LF);
 *    anything else where a count belongs is a framing error, sticky in
 *    `err`, since the stream can no longer be split reliably.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "syslog/syslog.h"

#define FRAMER_SLACK 32
#define COUNT_DIGITS 9 /* a count is below 10^9 */

int agent_syslog_framer_init(agent_syslog_framer_t *f, int mode, size_t max_msg)
{
    memset(f, 0, sizeof(*f));
    if (mode < AGENT_SYSLOG_FRAME_AUTO || mode > AGENT_SYSLOG_FRAME_NEWLINE || max_msg == 0 ||
        max_msg > SIZE_MAX / 2) {
        return -EINVAL;
    }
    f->mode = mode;
    f->max_msg = max_msg;
    f->cap = max_msg + FRAMER_SLACK;
    f->buf = malloc(f->cap);
    if (!f->buf) {
        return -ENOMEM;
    }
    return 0;
}

void agent_syslog_framer_fini(agent_syslog_framer_t *f)
{
    free(f->buf);
    f->buf = NULL;
    f->len = f->pos = f->cap = 0;
}

size_t agent_syslog_framer_room(const agent_syslog_framer_t *f)
{
    return f->cap - (f->len - f->pos);
}

size_t agent_syslog_framer_push(agent_syslog_framer_t *f, const char *p, size_t n)
{
    size_t room = agent_syslog_framer_room(f);
    if (n > room) {
        n = room;
    }
    if (n == 0) {
        return 0;
    }
    if (f->cap - f->len < n) {
        memmove(f->buf, f->buf + f->pos, f->len - f->pos);
        f->len -= f->pos;
        f->pos = 0;
    }
    memcpy(f->buf + f->len, p, n);
    f->len += n;
    return n;
}

static void consume(agent_syslog_framer_t *f, size_t n)
{
    f->pos += n;
    if (f->pos == f->len) {
        f->pos = f->len = 0;
    }
}

/*
 * The count header at buf[pos..): 1 with *count and *hdr (bytes including
 * the SP), 0 when more bytes are needed, -1 when it is not a valid header.
 */
static int count_header(const agent_syslog_framer_t *f, size_t *count, size_t *hdr)
{
    const char *p = f->buf + f->pos;
    size_t avail = f->len - f->pos, c = 0, i = 0;
    if (avail == 0) {
        return 0;
    }
    if (p[0] < '1' || p[0] > '9') {
        return -1;
    }
    while (i < avail && i < COUNT_DIGITS && p[i] >= '0' && p[i] <= '9') {
        c = c * 10 + (size_t)(p[i] - '0');
        i++;
    }
    if (i == avail) {
        return 0;
    }
    if (p[i] != ' ') {
        return -1;
    }
    *count = c;
    *hdr = i + 1;
    return 1;
}

static int octet_frame(agent_syslog_framer_t *f, size_t count, size_t hdr, const char **msg,
                       size_t *len, bool *truncated)
{
    size_t avail = f->len - f->pos;
    size_t take = count < f->max_msg ? count : f->max_msg;
    if (avail - hdr < take) {
        return 0;
    }
    *msg = f->buf + f->pos + hdr;
    *len = take;
    *truncated = take < count;
    if (take < count) {
        f->truncated++;
        f->skip = count - take;
    }
    consume(f, hdr + take);
    return 1;
}

/* Drops what belongs to a cut frame; false when that used up the input. */
static bool skip_rest(agent_syslog_framer_t *f)
{
    size_t avail = f->len - f->pos;
    if (f->skip > 0) {
        size_t n = f->skip < avail ? f->skip : avail;
        f->skip -= n;
        consume(f, n);
        if (f->skip > 0) {
            return false;
        }
    }
    if (f->discard) {
        const char *lf = memchr(f->buf + f->pos, '\n', f->len - f->pos);
        if (!lf) {
            consume(f, f->len - f->pos);
            return false;
        }
        f->discard = false;
        consume(f, (size_t)(lf - (f->buf + f->pos)) + 1);
    }
    return true;
}

/* A line at buf[pos..), at_eof: without its LF. */
static int line_frame(agent_syslog_framer_t *f, bool at_eof, const char **msg, size_t *len,
                      bool *truncated)
{
    const char *p = f->buf + f->pos;
    size_t avail = f->len - f->pos, n, used;
    const char *lf = memchr(p, '\n', avail);
    if (lf) {
        n = (size_t)(lf - p);
        used = n + 1;
    } else if (at_eof || avail >= f->max_msg + 2) {
        /* max_msg + 2 bytes without LF: the line is longer than max_msg even
           if a CR LF follows, so it is cut now and its rest dropped. */
        n = avail;
        used = avail;
    } else {
        return 0;
    }
    if (n > 0 && p[n - 1] == '\r') {
        n--;
    }
    *truncated = false;
    if (n > f->max_msg) {
        n = f->max_msg;
        *truncated = true;
        f->truncated++;
        if (!lf && !at_eof) {
            f->discard = true;
            used = n;
        }
    }
    *msg = p;
    *len = n;
    consume(f, used);
    return 1;
}

int agent_syslog_framer_next(agent_syslog_framer_t *f, const char **msg, size_t *len,
                             bool *truncated)
{
    if (f->err) {
        return f->err;
    }
    for (;;) {
        if (!skip_rest(f) || f->len == f->pos) {
            return 0;
        }
        char c = f->buf[f->pos];
        size_t count = 0, hdr = 0;
        int rc;
        if (f->mode == AGENT_SYSLOG_FRAME_OCTET) {
            if (c == '\n' || c == '\r') {
                consume(f, 1);
                continue;
            }
            rc = count_header(f, &count, &hdr);
            if (rc < 0) {
                f->framing_errors++;
                f->err = -EPROTO;
                return f->err;
            }
            if (rc == 0) {
                return 0;
            }
            return octet_frame(f, count, hdr, msg, len, truncated);
        }
        if (f->mode == AGENT_SYSLOG_FRAME_AUTO && c >= '1' && c <= '9') {
            rc = count_header(f, &count, &hdr);
            if (rc == 0) {
                return 0;
            }
            if (rc > 0) {
                return octet_frame(f, count, hdr, msg, len, truncated);
            }
        }
        rc = line_frame(f, false, msg, len, truncated);
        if (rc == 0 || *len > 0) {
            return rc;
        }
        /* an empty line: nothing to hand out */
    }
}

int agent_syslog_framer_finish(agent_syslog_framer_t *f, const char **msg, size_t *len,
                               bool *truncated)
{
    int rc = agent_syslog_framer_next(f, msg, len, truncated);
    if (rc != 0) {
        return rc > 0 ? rc : 0;
    }
    if (f->len == f->pos || f->skip > 0 || f->discard) {
        return 0;
    }
    /* Left: an unterminated line, a count header cut short, or an octet
       frame cut short. */
    size_t count = 0, hdr = 0;
    char c = f->buf[f->pos];
    bool digit = c >= '1' && c <= '9';
    if (f->mode == AGENT_SYSLOG_FRAME_OCTET ||
        (f->mode == AGENT_SYSLOG_FRAME_AUTO && digit && count_header(f, &count, &hdr) > 0)) {
        if (count_header(f, &count, &hdr) <= 0) {
            f->framing_errors++;
            consume(f, f->len - f->pos);
            return 0;
        }
        /* The sender's frame was cut short: what arrived, flagged. */
        *msg = f->buf + f->pos + hdr;
        *len = f->len - f->pos - hdr;
        *truncated = true;
        consume(f, f->len - f->pos);
        if (*len == 0) {
            return 0;
        }
        f->truncated++;
        return 1;
    }
    while (f->len > f->pos) {
        rc = line_frame(f, true, msg, len, truncated);
        if (*len > 0) {
            return rc;
        }
    }
    return 0;
}
