/* SPDX-License-Identifier: Apache-2.0 */
/* One PCRE2 compile (see regex.h). */
#include "tributary/regex.h"

#include <stdio.h>

pcre2_code *trib_regex_compile(const char *pattern, size_t len, bool *jit, char *err, size_t errlen,
                               size_t *erroff)
{
    int ec;
    PCRE2_SIZE off = 0;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, len, 0, &ec, &off, NULL);
    if (re == NULL) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(ec, msg, sizeof(msg));
        snprintf(err, errlen, "%s", (const char *)msg);
        *erroff = off;
        return NULL;
    }
    /* interpreted when the JIT is absent or refuses the pattern */
    bool j = pcre2_jit_compile(re, PCRE2_JIT_COMPLETE) == 0;
    if (jit != NULL) {
        *jit = j;
    }
    return re;
}
