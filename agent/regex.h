/* SPDX-License-Identifier: Apache-2.0 */
/* PCRE2 patterns compiled once at load (JIT, match and depth limits): the
   one place <pcre2.h> is included, by the modules that match. */
#ifndef TRIBUTARY_AGENT_REGEX_H
#define TRIBUTARY_AGENT_REGEX_H

#include <stddef.h>
#include <stdint.h>

#include "tributary/regex.h"

/* A compiled PCRE2 pattern with its match data and named groups. */
typedef struct agent_regex {
    pcre2_code *code;
    pcre2_match_data *md;
    pcre2_match_context *mctx;
    pcre2_jit_stack *jstack; /* NULL without JIT */
    int jit;                 /* JIT-compiled: matched with pcre2_jit_match() */
    uint32_t ngroups;        /* named groups */
    struct {
        uint32_t num;
        uint32_t nlen;
        const char *name;
        int plain;    /* ASCII word characters only: rendered without escaping */
        uint64_t bit; /* agent_name_bit() of the name */
    } * groups;
    int distinct; /* no two groups share a name (no (?J) duplicates) */
    /* the group a parse step's time_field names, found on the step's first
       line (time_idx -1: none) and kept for the time_field string seen */
    const char *time_key;
    int time_idx;
} agent_regex_t;

/* Compiles a pattern with JIT (a JIT stack of up to AGENT_REGEX_JIT_STACK
   bytes) and limits; named groups are resolved here, once. NULL + message
   on error. */
#define AGENT_REGEX_JIT_STACK (512 * 1024)
agent_regex_t *agent_regex_new(const char *pattern, uint64_t match_limit, uint64_t depth_limit,
                               char *err, size_t errlen, size_t *erroff);
void agent_regex_free(agent_regex_t *re);
/* 1 match, 0 no match, <0 error (limits hit) */
int agent_regex_match(agent_regex_t *re, const char *s, size_t n);
/* pcre2_match() or, JIT-compiled, pcre2_jit_match(): PCRE2's return code. */
static inline int agent_regex_exec(agent_regex_t *re, const char *s, size_t n)
{
    if (re->jit) {
        return pcre2_jit_match(re->code, (PCRE2_SPTR)s, n, 0, 0, re->md, re->mctx);
    }
    return pcre2_match(re->code, (PCRE2_SPTR)s, n, 0, 0, re->md, re->mctx);
}

#endif
