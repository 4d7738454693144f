/* SPDX-License-Identifier: Apache-2.0 */
/* PCRE2 patterns compiled once at load (JIT, match and depth limits): the
   one place <pcre2.h> is included, by the modules that match. */
#ifndef TRIBUTARY_AGENT_REGEX_H
#define TRIBUTARY_AGENT_REGEX_H

#include <stddef.h>
#include <stdint.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

/* A compiled PCRE2 pattern with its match data and named groups. */
typedef struct agent_regex {
    pcre2_code *code;
    pcre2_match_data *md;
    pcre2_match_context *mctx;
    uint32_t ngroups; /* named groups */
    struct {
        uint32_t num;
        const char *name;
    } * groups;
} agent_regex_t;

/* Compiles a pattern with JIT and limits; NULL + message on error. */
agent_regex_t *agent_regex_new(const char *pattern, uint64_t match_limit, uint64_t depth_limit,
                               char *err, size_t errlen, size_t *erroff);
void agent_regex_free(agent_regex_t *re);
/* 1 match, 0 no match, <0 error (limits hit) */
int agent_regex_match(agent_regex_t *re, const char *s, size_t n);

#endif
