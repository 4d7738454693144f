/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz target: the regex parse step (fuzz_parse.h says what is checked).
 * Input: a pattern, a newline, then the line; without a newline the whole
 * input is a line for the nginx access-log pattern (with types: and its
 * common-log-format time). A pattern is compiled as the loader does
 * (agent_regex_new() with JIT and small match and depth limits, so a
 * catastrophic pattern fails its match rather than the fuzzer's time); one
 * that does not compile is skipped.
 *
 * Sets fuzz_input_valid when the pattern compiled and matched the line.
 */
#include "fuzz_parse.h"
#include "regex.h"

static agent_regex_t *cur;

static bool own(const char *s, size_t n)
{
    for (uint32_t i = 0; cur != NULL && i < cur->ngroups; i++) {
        if (s == cur->groups[i].name && n == cur->groups[i].nlen) {
            return true;
        }
    }
    return fuzz_parse_own(s, n);
}

#define ACCESS                                                                                     \
    "^(?<client>\\S+) \\S+ \\S+ \\[(?<time>[^\\]]+)\\] \"(?<method>\\S+) (?<path>\\S+)[^\"]*\" "   \
    "(?<status>\\d{3}) (?<bytes>\\d+)"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static agent_regex_t *access;
    char err[256];
    size_t off = 0;
    if (access == NULL) {
        access = agent_regex_new(ACCESS, 100000, 1000, err, sizeof(err), &off);
        if (access == NULL) {
            abort();
        }
    }
    trib_config_pair_t types[] = {
        {.key = "status", .value = "int"},
        {.key = "bytes", .value = "float"},
        {.key = "time", .value = "timestamp"},
    };
    agent_parse_conf_t p = {
        .type = AGENT_PARSE_REGEX,
        .field = "message",
        .time_field = "time",
        .time_format = "%d/%b/%Y:%H:%M:%S %z",
        .types = {.items = types, .count = 3},
        .type_codes = {AGENT_TYPE_INT, AGENT_TYPE_FLOAT, AGENT_TYPE_TIMESTAMP},
        .re = access,
    };
    const uint8_t *nl = memchr(data, '\n', size);
    if (nl == NULL) {
        cur = access;
        fuzz_parse_run(&p, data, size, own);
        return 0;
    }
    size_t plen = (size_t)(nl - data);
    char *pattern = malloc(plen + 1);
    if (pattern == NULL) {
        return 0;
    }
    memcpy(pattern, data, plen);
    pattern[plen] = '\0';
    /* the loader takes a pattern from YAML: a NUL ends it */
    cur = agent_regex_new(pattern, 10000, 200, err, sizeof(err), &off);
    if (cur == NULL && off > plen) {
        abort(); /* the error's column is inside the pattern */
    }
    if (cur != NULL) {
        p.re = cur;
        /* the line in a buffer of its own, so reads past it are caught */
        size_t n = size - plen - 1;
        uint8_t *line = malloc(n ? n : 1);
        if (line != NULL) {
            memcpy(line, nl + 1, n);
            fuzz_parse_run(&p, line, n, own);
            free(line);
        }
        agent_regex_free(cur);
    }
    cur = NULL;
    free(pattern);
    return 0;
}
