/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz target: one syslog message through agent_syslog_parse() as the
 * listeners see it, with the clock in November, in January and in
 * December (RFC 3164's year inference) and a UTC, a fixed and the local
 * timezone. Checks what the header promises: a result of 0 or 1, every
 * field inside the input, the whole input as message when not well
 * formed, PRI in range, and structured data the parser accepted converts
 * to JSON.
 *
 * Sets fuzz_input_valid when the input is a well-formed RFC 3164 message.
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

static int parse_checked(const char *s, size_t n, const agent_syslog_opts_t *o,
                         agent_syslog_msg_t *m)
{
    int rc = agent_syslog_parse(s, n, o, m);
    if (rc != 0 && rc != 1) {
        abort();
    }
    if (m->pri < -1 || m->pri > 191 || !agent_syslog_facility_name(m->facility) ||
        !agent_syslog_severity_name(m->severity) || !m->msg.p) {
        abort();
    }
    check_str(m->hostname, s, n);
    check_str(m->app, s, n);
    check_str(m->procid, s, n);
    check_str(m->msgid, s, n);
    check_str(m->sd, s, n);
    check_str(m->msg, s, n);
    if (rc == 1 && m->msg.p != s && n > 0) {
        abort();
    }
    if (rc == 0 && m->sd.p) {
        size_t cap = 6 * m->sd.n + 2;
        char *json = malloc(cap);
        if (json && agent_syslog_sd_json(m->sd.p, m->sd.n, json, cap) < 0) {
            abort();
        }
        free(json);
    }
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* 2026-11-26T17:40:01Z, 2027-01-02T00:00:00Z, 2026-12-31T23:00:00Z */
    static const int64_t nows[3] = {1795714801000, 1798848000000, 1798758000000};
    static const agent_syslog_tz_t tzs[3] = {{false, 0}, {false, 19800}, {true, 0}};
    const char *s = (const char *)data;
    agent_syslog_msg_t m;
    int valid = 0;
    for (int k = 0; k < 3; k++) {
        agent_syslog_opts_t o = {nows[k], tzs[k]};
        int rc = parse_checked(s, size, &o, &m);
        if (k == 0) {
            valid = rc == 0 && m.format == AGENT_SYSLOG_RFC3164;
        }
    }
    fuzz_input_valid = valid;
    return 0;
}
