/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A cmocka program for tests/summary: with --skip, one test prints a
 * "SKIP: reason" line and calls skip(); with --fail, one test fails; with
 * neither, both pass. cmocka exits 0 after a skip; unit/cmocka-run.sh must
 * turn that into a ctest skip.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

static const char *mode = "";

static void test_runs(void **state)
{
    (void)state;
    assert_int_equal(1 + 1, 2);
}

static void test_maybe(void **state)
{
    (void)state;
    if (strcmp(mode, "--skip") == 0) {
        print_message("SKIP: the probe was asked to skip\n");
        skip();
    }
    assert_true(strcmp(mode, "--fail") != 0);
}

int main(int argc, char **argv)
{
    mode = argc > 1 ? argv[1] : "";
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_runs),
        cmocka_unit_test(test_maybe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
