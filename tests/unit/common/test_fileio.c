/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fileio: trib_mkdir_durable's results (created, already there, a file in
 * the way, a missing parent, trailing slashes, a bare name). That it makes
 * the entry durable is shown under the power-loss shim by the integration
 * tests 0222 and 0315, which let the daemons create their directories.
 */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "tributary/fileio.h"

static int is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static void test_mkdir_durable(void **state)
{
    (void)state;
    char root[] = "/tmp/trib-fileio.XXXXXX";
    assert_non_null(mkdtemp(root));
    char path[PATH_MAX];

    snprintf(path, sizeof(path), "%s/a", root);
    assert_int_equal(trib_mkdir_durable(path, 0755), 0);
    assert_true(is_dir(path));
    assert_int_equal(trib_mkdir_durable(path, 0755), 0); /* already there */

    snprintf(path, sizeof(path), "%s/a/b/", root); /* trailing slash */
    assert_int_equal(trib_mkdir_durable(path, 0755), 0);
    assert_true(is_dir(path));

    snprintf(path, sizeof(path), "%s/missing/c", root);
    assert_int_equal(trib_mkdir_durable(path, 0755), -ENOENT);

    snprintf(path, sizeof(path), "%s/file", root);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fclose(f);
    assert_int_equal(trib_mkdir_durable(path, 0755), -ENOTDIR);

    /* A bare name is created in the working directory, which is synced. */
    char cwd[PATH_MAX];
    assert_non_null(getcwd(cwd, sizeof(cwd)));
    assert_int_equal(chdir(root), 0);
    assert_int_equal(trib_mkdir_durable("bare", 0700), 0);
    assert_true(is_dir("bare"));
    assert_int_equal(chdir(cwd), 0);

    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mkdir_durable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
