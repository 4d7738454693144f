/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz target: one syslog message through agent_syslog_parse(), aimed at
 * RFC 5424 and its structured data. Besides the parser's promises (0 or
 * 1, fields inside the input, the whole input as message when not well
 * formed), agent_syslog_sd_json() runs over the input itself and over the
 * parsed structured data with too small and with enough room: it either
 * fails or writes the same bytes, and never past its capacity.
 *
 * Sets fuzz_input_valid when the input is a well-formed RFC 5424 message.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "syslog.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int fuzz_input_valid;

static void check_str(agent_syslog_str_t f, const char *s, size_t n)
{
    if (f.p && (f.p < s || f.n > n || (size_t)(f.p - s) > n - f.n)) {
        abort();
    }
}

/* sd_json with the capacity it needs, one byte less and half: exact results. */
static long json_checked(const char *sd, size_t n)
{
    size_t cap = 6 * n + 2;
    char *full = malloc(cap), *part = malloc(cap);
    long len = -1;
    if (!full || !part) {
        goto out;
    }
    len = agent_syslog_sd_json(sd, n, full, cap);
    if (len > (long)cap) {
        abort();
    }
    if (len > 0) {
        if (agent_syslog_sd_json(sd, n, part, (size_t)len - 1) != -1 ||
            agent_syslog_sd_json(sd, n, part, (size_t)len / 2) != -1 ||
            agent_syslog_sd_json(sd, n, part, (size_t)len) != len ||
            memcmp(full, part, (size_t)len) != 0) {
            abort();
        }
        if (full[0] != '{' || full[len - 1] != '}') {
            abort();
        }
    }
out:
    free(full);
    free(part);
    return len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    agent_syslog_opts_t o = {1795714801000, {false, -7200}};
    agent_syslog_msg_t m;
    int rc = agent_syslog_parse(s, size, &o, &m);
    if ((rc != 0 && rc != 1) || m.pri < -1 || m.pri > 191 || !m.msg.p) {
        abort();
    }
    check_str(m.hostname, s, size);
    check_str(m.app, s, size);
    check_str(m.procid, s, size);
    check_str(m.msgid, s, size);
    check_str(m.sd, s, size);
    check_str(m.msg, s, size);
    if (m.format == AGENT_SYSLOG_RFC5424 && rc == 0 &&
        ((m.hostname.p && m.hostname.n > 255) || (m.app.p && m.app.n > 48) ||
         (m.procid.p && m.procid.n > 128) || (m.msgid.p && m.msgid.n > 32))) {
        abort();
    }
    if (rc == 0 && m.sd.p && json_checked(m.sd.p, m.sd.n) < 0) {
        abort();
    }
    json_checked(s, size);
    fuzz_input_valid = rc == 0 && m.format == AGENT_SYSLOG_RFC5424;
    return 0;
}
