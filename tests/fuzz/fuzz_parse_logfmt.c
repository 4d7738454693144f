/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz target: one line through the logfmt parse step (fuzz_parse.h says what
 * is checked), three times: with types: of every kind and an RFC 3339
 * time, with a unix time, and with a strptime() time format.
 *
 * Sets fuzz_input_valid when the first step parsed the line.
 */
#include "fuzz_parse.h"

static bool own(const char *s, size_t n)
{
    return fuzz_parse_own(s, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    trib_config_pair_t types[] = {
        {.key = "status", .value = "int"},
        {.key = "bytes", .value = "float"},
        {.key = "ok", .value = "bool"},
        {.key = "at", .value = "timestamp"},
    };
    agent_parse_conf_t typed = {
        .type = AGENT_PARSE_LOGFMT,
        .field = "message",
        .time_field = "time",
        .time_format = "rfc3339",
        .types = {.items = types, .count = 4},
        .type_codes = {AGENT_TYPE_INT, AGENT_TYPE_FLOAT, AGENT_TYPE_BOOL, AGENT_TYPE_TIMESTAMP},
    };
    agent_parse_conf_t unix_time = {
        .type = AGENT_PARSE_LOGFMT, .field = "message", .time_field = "ts", .time_format = "unix"};
    agent_parse_conf_t strptime_time = {.type = AGENT_PARSE_LOGFMT,
                                        .field = "message",
                                        .time_field = "time",
                                        .time_format = "%Y-%m-%d %H:%M:%S %z"};
    fuzz_parse_run(&unix_time, data, size, own);
    fuzz_parse_run(&strptime_time, data, size, own);
    fuzz_parse_run(&typed, data, size, own); /* last: it sets fuzz_input_valid */
    return 0;
}
