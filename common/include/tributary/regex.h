/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Compiling a PCRE2 pattern the one way the tree does: no options, then
 * the JIT when it is there and takes the pattern. The agent's parse and
 * filter steps (agent/regex.c adds match data and limits) and the sink
 * host's /topic patterns/ use it; an error comes back with PCRE2's message
 * and the offset in the pattern, which the caller turns into a column.
 */
#ifndef TRIBUTARY_REGEX_H
#define TRIBUTARY_REGEX_H

#include <stdbool.h>
#include <stddef.h>

#ifndef PCRE2_CODE_UNIT_WIDTH
#define PCRE2_CODE_UNIT_WIDTH 8
#endif
#include <pcre2.h>

/*
 * Compiles pattern[0..len). *jit (may be NULL) says whether the JIT took it
 * (match with pcre2_jit_match then). NULL on error: err (errlen bytes) gets
 * the reason and *erroff the byte offset in the pattern where it is.
 */
pcre2_code *trib_regex_compile(const char *pattern, size_t len, bool *jit, char *err, size_t errlen,
                               size_t *erroff);

#endif
