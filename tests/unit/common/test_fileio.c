/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fileio: trib_mkdir_durable's results (created, already there, a file in
 * the way, a missing parent, trailing slashes, a bare name). That it makes
 * the entry durable is shown under the power-loss shim by the integration
 * tests 0222 and 0315, which let the daemons create their directories.
 * trib_write_file_atomic*: the content replaced whole, the mode, a stale
 * tmp file, no tmp left behind, an error leaves the old file.
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

static void expect_file(const char *path, const char *want, mode_t mode)
{
    char got[256];
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(got, 1, sizeof(got) - 1, f);
    fclose(f);
    got[n] = '\0';
    assert_string_equal(got, want);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, mode);
}

static void test_write_file_atomic(void **state)
{
    (void)state;
    char root[] = "/tmp/trib-fileio.XXXXXX";
    assert_non_null(mkdtemp(root));
    char path[PATH_MAX], tmp[PATH_MAX + 64];
    snprintf(path, sizeof(path), "%s/state", root);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    mode_t old = umask(022);

    assert_int_equal(trib_write_file_atomic(path, "first version\n", 14), 0);
    expect_file(path, "first version\n", 0644);
    assert_int_equal(access(tmp, F_OK), -1);

    /* A shorter content replaces it whole; a stale tmp file (other mode) is not reused. */
    FILE *f = fopen(tmp, "w");
    assert_non_null(f);
    fputs("stale stale stale stale", f);
    fclose(f);
    assert_int_equal(chmod(tmp, 0666), 0);
    assert_int_equal(trib_write_file_atomic_mode(path, "two\n", 4, 0600), 0);
    expect_file(path, "two\n", 0600);
    assert_int_equal(access(tmp, F_OK), -1);

    assert_int_equal(trib_write_file_atomic_flags(path, "", 0, 0644, TRIB_WRITE_NOSYNC), 0);
    expect_file(path, "", 0644);
    assert_int_equal(access(tmp, F_OK), -1);

    /* text built with stdio in memory */
    char *text = NULL;
    size_t len = 0;
    f = open_memstream(&text, &len);
    assert_non_null(f);
    fprintf(f, "n %d\n", 42);
    assert_int_equal(trib_write_memstream_atomic(path, f, &text, &len, 0644, TRIB_WRITE_NOSYNC), 0);
    assert_null(text);
    expect_file(path, "n 42\n", 0644);

    /* The directory is gone: an error, and nothing is left. */
    char missing[PATH_MAX + 16];
    snprintf(missing, sizeof(missing), "%s/none/state", root);
    assert_int_equal(trib_write_file_atomic(missing, "x", 1), -ENOENT);
    /* rename over a directory fails: the tmp file is removed again */
    char dir[PATH_MAX + 16];
    snprintf(dir, sizeof(dir), "%s/adir", root);
    assert_int_equal(mkdir(dir, 0755), 0);
    char dirfile[PATH_MAX + 32];
    snprintf(dirfile, sizeof(dirfile), "%s/x", dir);
    assert_int_equal(mkdir(dirfile, 0755), 0);
    assert_int_not_equal(trib_write_file_atomic(dir, "x", 1), 0);
    snprintf(tmp, sizeof(tmp), "%s.tmp", dir);
    assert_int_equal(access(tmp, F_OK), -1);
    assert_true(is_dir(dir));

    umask(old);
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mkdir_durable),
        cmocka_unit_test(test_write_file_atomic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
