/* SPDX-License-Identifier: Apache-2.0 */
/* Error codes: names and messages from the X-macro list, positioned errors. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names_and_messages),
        cmocka_unit_test(test_positioned),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
