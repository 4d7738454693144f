/* SPDX-License-Identifier: Apache-2.0 */
/* PCRE2 patterns: compiled with JIT when available, matched under the
   configured match and depth limits (see regex.h). */
#include "regex.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"
#include "tributary/regex.h"

agent_regex_t *agent_regex_new(const char *pattern, uint64_t match_limit, uint64_t depth_limit,
                               char *err, size_t errlen, size_t *erroff)
{
    agent_regex_t *re = calloc(1, sizeof(*re));
    if (re == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    bool jit = false;
    re->code = trib_regex_compile(pattern, strlen(pattern), &jit, err, errlen, erroff);
    if (re->code == NULL) {
        free(re);
        return NULL;
    }
    re->jit = jit;
    re->md = pcre2_match_data_create_from_pattern(re->code, NULL);
    re->mctx = pcre2_match_context_create(NULL);
    if (re->jit && re->mctx != NULL) {
        /* the default JIT stack is 32 KiB on the machine stack; a stack of
           our own grows on demand, so deeper patterns still match */
        re->jstack = pcre2_jit_stack_create(32 * 1024, AGENT_REGEX_JIT_STACK, NULL);
        if (re->jstack != NULL) {
            pcre2_jit_stack_assign(re->mctx, NULL, re->jstack);
        }
    }
    if (re->md == NULL || re->mctx == NULL) {
        snprintf(err, errlen, "out of memory");
        *erroff = 0;
        agent_regex_free(re);
        return NULL;
    }
    pcre2_set_match_limit(re->mctx, (uint32_t)match_limit);
    pcre2_set_depth_limit(re->mctx, (uint32_t)depth_limit);
    uint32_t count = 0, entry = 0;
    PCRE2_SPTR table = NULL;
    pcre2_pattern_info(re->code, PCRE2_INFO_NAMECOUNT, &count);
    pcre2_pattern_info(re->code, PCRE2_INFO_NAMEENTRYSIZE, &entry);
    pcre2_pattern_info(re->code, PCRE2_INFO_NAMETABLE, &table);
    if (count > 0) {
        re->groups = calloc(count, sizeof(*re->groups));
        if (re->groups == NULL) {
            snprintf(err, errlen, "out of memory");
            *erroff = 0;
            agent_regex_free(re);
            return NULL;
        }
        for (uint32_t i = 0; i < count; i++) {
            PCRE2_SPTR e = table + (size_t)i * entry;
            re->groups[i].num = ((uint32_t)e[0] << 8) | e[1];
            re->groups[i].name = (const char *)(e + 2);
            re->groups[i].nlen = (uint32_t)strlen(re->groups[i].name);
            re->groups[i].plain = 1;
            for (const char *c = re->groups[i].name; *c != '\0'; c++) {
                if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
                      (*c >= '0' && *c <= '9') || *c == '_')) {
                    re->groups[i].plain = 0;
                }
            }
        }
        re->ngroups = count;
    }
    /* the name table is sorted by name: duplicates are neighbours */
    re->distinct = 1;
    for (uint32_t i = 0; i < re->ngroups; i++) {
        re->groups[i].bit = agent_name_bit(re->groups[i].name, re->groups[i].nlen);
        if (i > 0 && strcmp(re->groups[i - 1].name, re->groups[i].name) == 0) {
            re->distinct = 0;
        }
    }
    re->time_idx = -1;
    return re;
}

void agent_regex_free(agent_regex_t *re)
{
    if (re == NULL) {
        return;
    }
    pcre2_match_data_free(re->md);
    pcre2_match_context_free(re->mctx);
    pcre2_jit_stack_free(re->jstack);
    pcre2_code_free(re->code);
    free(re->groups);
    free(re);
}

int agent_regex_match(agent_regex_t *re, const char *s, size_t n)
{
    int rc = agent_regex_exec(re, s, n);
    if (rc >= 0) {
        return 1;
    }
    return rc == PCRE2_ERROR_NOMATCH ? 0 : rc;
}
