/* SPDX-License-Identifier: Apache-2.0 */
/* trib_regex_compile: a pattern compiles (a length, not a NUL, ends it) and matches; an error
 * gives PCRE2's reason and the offset of the fault in the pattern. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "tributary/regex.h"

static int match(pcre2_code *re, const char *s)
{
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    assert_non_null(md);
    int rc = pcre2_match(re, (PCRE2_SPTR)s, strlen(s), 0, 0, md, NULL);
    pcre2_match_data_free(md);
    return rc > 0;
}

static void test_compile(void **state)
{
    (void)state;
    char err[256] = "";
    size_t off = 99;
    bool jit = true;
    /* a sink topic pattern: the sink host passes what is between the slashes */
    const char *topics = "/web\\..*/";
    pcre2_code *re =
        trib_regex_compile(topics + 1, strlen(topics) - 2, &jit, err, sizeof(err), &off);
    assert_non_null(re);
    assert_true(match(re, "web.access"));
    assert_false(match(re, "webaccess"));
    assert_false(match(re, "api.web/"));
    pcre2_code_free(re);
    assert_int_equal(off, 99); /* untouched on success */

    re = trib_regex_compile("(?<a>x)", 7, NULL, err, sizeof(err), &off);
    assert_non_null(re);
    pcre2_code_free(re);
}

static void test_errors(void **state)
{
    (void)state;
    char err[256] = "";
    size_t off = 0;
    /* the unmatched ')' is at offset 7 */
    assert_null(trib_regex_compile("(?<a>x))", 8, NULL, err, sizeof(err), &off));
    assert_int_equal(off, 7);
    assert_non_null(strstr(err, "parenthes"));
    err[0] = '\0';
    assert_null(trib_regex_compile("ab[c", 4, NULL, err, sizeof(err), &off));
    assert_int_equal(off, 4);
    assert_non_null(strstr(err, "missing terminating ]"));
    /* a short err buffer is cut, not overrun */
    char tiny[8];
    assert_null(trib_regex_compile("(", 1, NULL, tiny, sizeof(tiny), &off));
    assert_int_equal(strlen(tiny), sizeof(tiny) - 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_compile),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
