/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The SCRAM credential store (collector/server/credentials.c): the file
 * format parsed and refused line by line, a save and load round trip with
 * percent-encoded names, and the file's mode.
 */
#include <errno.h>
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

#include "server/credentials.h"

/* RFC 7677's credential for "user"/"pencil" (salt W22ZaJ0SNY7soEsUEjb6gQ==, 4096). */
#define GOOD_256                                                                                   \
    "user SCRAM-SHA-256 4096 W22ZaJ0SNY7soEsUEjb6gQ== "                                            \
    "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY= "                                                \
    "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=\n"

static void test_parse_good(void **state)
{
    (void)state;
    coll_creds_t *c = coll_creds_new("/nonexistent");
    assert_non_null(c);
    trib_error_t err;
    trib_error_clear(&err);
    static const char text[] = "# comment\n"
                               "\n"
                               "   \t\n" GOOD_256 "a%20b%25c SCRAM-SHA-256 8192 AAAA "
                               "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY= "
                               "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=\r\n";
    assert_int_equal(coll_creds_parse(c, text, sizeof(text) - 1, "f", &err), 0);
    assert_int_equal(coll_creds_count(c), 2);
    const trib_scram_cred_t *cr = coll_creds_find(c, "user", TRIB_SCRAM_SHA_256);
    assert_non_null(cr);
    assert_int_equal(cr->iterations, 4096);
    assert_int_equal(cr->salt_len, 16);
    /* The stored keys are RFC 7677's "pencil". */
    assert_true(trib_scram_cred_check_password(cr, "pencil", 6));
    assert_false(trib_scram_cred_check_password(cr, "pencil ", 7));
    assert_null(coll_creds_find(c, "user", TRIB_SCRAM_SHA_512));
    assert_non_null(coll_creds_find(c, "a b%c", TRIB_SCRAM_SHA_256));
    coll_creds_free(c);
}

static void test_parse_bad(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int line;
        const char *msg;
    } bad[] = {
        {"user SCRAM-SHA-256 4096 AAAA AAAA\n", 1, "expected USER MECHANISM"},
        {"# ok\n" GOOD_256 "x SCRAM-SHA-1 4096 AAAA AAAA AAAA\n", 3, "unknown mechanism"},
        {"x SCRAM-SHA-256 4095 AAAA AAAA AAAA\n", 1, "bad iteration count"},
        {"x SCRAM-SHA-256 16385 AAAA AAAA AAAA\n", 1, "bad iteration count"},
        {"x SCRAM-SHA-256 40x0 AAAA AAAA AAAA\n", 1, "bad iteration count"},
        {"x SCRAM-SHA-256 4096 A!AA AAAA AAAA\n", 1, "bad salt"},
        {"x SCRAM-SHA-256 4096 AAAA AAAA AAAA\n", 1, "bad stored key"},
        {"x%2 SCRAM-SHA-256 4096 AAAA AAAA AAAA\n", 1, "bad user name"},
        {"x%00 SCRAM-SHA-256 4096 AAAA AAAA AAAA\n", 1, "bad user name"},
        {GOOD_256 GOOD_256, 2, "a second line for the same user"},
        {GOOD_256 "user SCRAM-SHA-256 4096 W22ZaJ0SNY7soEsUEjb6gQ== "
                  "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY= "
                  "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU= extra\n",
         2, "expected USER MECHANISM"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        coll_creds_t *c = coll_creds_new("/nonexistent");
        trib_error_t err;
        trib_error_clear(&err);
        int rc = coll_creds_parse(c, bad[i].text, strlen(bad[i].text), "creds", &err);
        if (rc == 0 || err.line != bad[i].line || !strstr(err.msg, bad[i].msg)) {
            fprintf(stderr, "case %zu: rc %d line %d msg '%s'\n", i, rc, err.line, err.msg);
        }
        assert_int_not_equal(rc, 0);
        assert_string_equal(err.file, "creds");
        assert_int_equal(err.line, bad[i].line);
        assert_non_null(strstr(err.msg, bad[i].msg));
        /* A refused file leaves the store empty, not half loaded. */
        assert_int_equal(coll_creds_count(c), 0);
        coll_creds_free(c);
    }
}

static void test_save_load(void **state)
{
    (void)state;
    char dir[] = "/tmp/test_credentials.XXXXXX";
    assert_non_null(mkdtemp(dir));
    coll_creds_t *c = coll_creds_new(dir);
    trib_error_t err;
    trib_error_clear(&err);
    /* No file yet: an empty store. */
    assert_int_equal(coll_creds_load(c, &err), 0);
    assert_int_equal(coll_creds_count(c), 0);
    trib_scram_cred_t a, b;
    assert_int_equal(
        trib_scram_cred_from_password(&a, TRIB_SCRAM_SHA_512, "pw one", 6, NULL, 0, 4096), 0);
    assert_int_equal(
        trib_scram_cred_from_password(&b, TRIB_SCRAM_SHA_256, "pw two", 6, NULL, 0, 5000), 0);
    assert_int_equal(coll_creds_set(c, "alice smith\t%", &a), 0);
    assert_int_equal(coll_creds_set(c, "bob", &b), 0);
    assert_int_equal(coll_creds_set(c, "", &b), -EINVAL);
    assert_int_equal(coll_creds_save(c), 0);
    char path[300];
    snprintf(path, sizeof(path), "%s/%s", dir, COLL_CREDS_FILE);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    coll_creds_t *d = coll_creds_new(dir);
    assert_int_equal(coll_creds_load(d, &err), 0);
    assert_int_equal(coll_creds_count(d), 2);
    const trib_scram_cred_t *x = coll_creds_find(d, "alice smith\t%", TRIB_SCRAM_SHA_512);
    assert_non_null(x);
    assert_true(trib_scram_cred_check_password(x, "pw one", 6));
    x = coll_creds_find(d, "bob", TRIB_SCRAM_SHA_256);
    assert_non_null(x);
    assert_int_equal(x->iterations, 5000);
    assert_true(trib_scram_cred_check_password(x, "pw two", 6));
    assert_int_equal(coll_creds_delete(d, "bob", TRIB_SCRAM_SHA_512), TRIB_ENOT_FOUND);
    assert_int_equal(coll_creds_delete(d, "bob", TRIB_SCRAM_SHA_256), 0);
    assert_int_equal(coll_creds_count(d), 1);
    coll_creds_free(d);
    coll_creds_free(c);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_good),
        cmocka_unit_test(test_parse_bad),
        cmocka_unit_test(test_save_load),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
