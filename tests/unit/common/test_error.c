/* SPDX-License-Identifier: Apache-2.0 */
/* Error codes: names and messages from the X-macro list, positioned errors. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "tributary/error.h"

static void test_names_and_messages(void **state)
{
    (void)state;
    assert_string_equal(trib_strerror(0), "success");
    assert_string_equal(trib_strerror(TRIB_ETRUNCATED), "input truncated");
    assert_string_equal(trib_errname(TRIB_ECRC), "TRIB_ECRC");
    assert_string_equal(trib_strerror(-ENOMEM), strerror(ENOMEM));
    assert_string_equal(trib_errname(-ENOMEM), "ENOMEM");
    assert_string_equal(trib_strerror(-99999), "unknown error");
    /* Every listed code has a distinct value below -999 and a message. */
#define CHECK_(name, value, msg)                                                                   \
    assert_true((value) <= -1000);                                                                 \
    assert_string_equal(trib_strerror(value), msg);                                                \
    assert_string_equal(trib_errname(value), "TRIB_E" #name);
    TRIB_ERROR_LIST(CHECK_)
#undef CHECK_
}

static void test_positioned(void **state)
{
    (void)state;
    trib_error_t e;
    char out[600];
    trib_error_clear(&e);
    assert_int_equal(e.code, 0);
    assert_int_equal(
        trib_error_setpos(&e, TRIB_ECONFIG, "agent.yaml", 14, 9, "unknown key '%s'", "topik"),
        TRIB_ECONFIG);
    trib_error_format(&e, out, sizeof(out));
    assert_string_equal(out, "agent.yaml:14:9: error: unknown key 'topik'");
    trib_error_setpos(&e, TRIB_ECONFIG, "agent.yaml", 3, 0, "x");
    trib_error_format(&e, out, sizeof(out));
    assert_string_equal(out, "agent.yaml:3: error: x");
    trib_error_set(&e, TRIB_EMALFORMED, "bad %d", 5);
    trib_error_format(&e, out, sizeof(out));
    assert_string_equal(out, "error: bad 5");
    assert_int_equal(trib_error_set(NULL, -EINVAL, "ignored"), -EINVAL);
    /* Long messages are cut, never overflow. */
    char longmsg[2000];
    memset(longmsg, 'a', sizeof(longmsg) - 1);
    longmsg[sizeof(longmsg) - 1] = '\0';
    trib_error_set(&e, TRIB_EMALFORMED, "%s", longmsg);
    assert_int_equal(strlen(e.msg), sizeof(e.msg) - 1);
}

static int never_arg(int x)
{
    return TRIB_NEVER(x) ? 1 : 0;
}

/*
 * TRIB_NEVER: a false condition is false in every build; a true one aborts
 * with its place in a debug build (checked in a child process) and is true
 * in a release build.
 */
static void test_never(void **state)
{
    assert_int_equal(never_arg(0), 0);
#if !defined(NDEBUG) || defined(TRIB_DEBUG)
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fds[1], 2);
        close(fds[0]);
        signal(SIGABRT, SIG_DFL);
        (void)never_arg(1);
        _exit(0);
    }
    close(fds[1]);
    char out[512] = {0};
    size_t got = 0;
    ssize_t n;
    while (got < sizeof(out) - 1 && (n = read(fds[0], out + got, sizeof(out) - 1 - got)) > 0) {
        got += (size_t)n;
    }
    close(fds[0]);
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFSIGNALED(st));
    assert_int_equal(WTERMSIG(st), SIGABRT);
    assert_non_null(strstr(out, "test_error.c:"));
    assert_non_null(strstr(out, "TRIB_NEVER(x) hit"));
#else
    assert_int_equal(never_arg(1), 1);
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names_and_messages),
        cmocka_unit_test(test_positioned),
        cmocka_unit_test(test_never),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
