/* SPDX-License-Identifier: Apache-2.0 */
/* Logging: level filtering before argument evaluation, text/JSON, rate limits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "tributary/log.h"

static char captured[65536];

/* Runs the logger into a temp file and reads back what it wrote. */
static int cap_fd = -1;

static void cap_begin(void)
{
    char path[] = "/tmp/trib-test-log-XXXXXX";
    cap_fd = mkstemp(path);
    assert_true(cap_fd >= 0);
    unlink(path);
    trib_log_set_fd(cap_fd);
}

static const char *cap_end(void)
{
    off_t n = lseek(cap_fd, 0, SEEK_CUR);
    assert_true(n >= 0 && (size_t)n < sizeof(captured));
    assert_int_equal(pread(cap_fd, captured, (size_t)n, 0), n);
    captured[n] = '\0';
    close(cap_fd);
    trib_log_set_fd(2);
    return captured;
}

static int evaluated;

static int side_effect(void)
{
    evaluated++;
    return 1;
}

static void test_levels(void **state)
{
    (void)state;
    cap_begin();
    trib_log_set_format(TRIB_LOG_TEXT);
    trib_log_set_level(TRIB_LOG_WARN);
    evaluated = 0;
    TRIB_LOG(TRIB_LOG_DEBUG, "test", "hidden %d", side_effect());
    assert_int_equal(evaluated, 0);
    TRIB_LOG(TRIB_LOG_ERROR, "storage", "shown %d", side_effect());
    assert_int_equal(evaluated, 1);
    const char *out = cap_end();
    assert_null(strstr(out, "hidden"));
    assert_non_null(strstr(out, "ERROR storage: shown 1\n"));
    assert_int_equal(trib_log_level_parse("debug"), TRIB_LOG_DEBUG);
    assert_int_equal(trib_log_level_parse("WARNING"), TRIB_LOG_WARN);
    assert_int_equal(trib_log_level_parse("loud"), -1);
    assert_string_equal(trib_log_level_name(TRIB_LOG_TRACE), "trace");
    trib_log_set_level(TRIB_LOG_INFO);
}

static void test_json(void **state)
{
    (void)state;
    cap_begin();
    trib_log_set_format(TRIB_LOG_JSON);
    TRIB_LOG(TRIB_LOG_INFO, "net", "peer \"%s\"\n\tclosed", "1.2.3.4");
    const char *out = cap_end();
    trib_log_set_format(TRIB_LOG_TEXT);
    assert_non_null(strstr(out, "\"level\":\"info\",\"facility\":\"net\","));
    assert_non_null(strstr(out, "\"msg\":\"peer \\\"1.2.3.4\\\"\\n\\u0009closed\"}\n"));
    assert_int_equal(strncmp(out, "{\"ts\":\"", 7), 0);
}

static void test_ratelimit(void **state)
{
    (void)state;
    cap_begin();
    trib_log_ratelimit_t rl = TRIB_LOG_RATELIMIT_INIT(60000, 3);
    for (int i = 0; i < 10; i++) {
        TRIB_LOG_RL(&rl, TRIB_LOG_WARN, "rl", "line %d", i);
    }
    const char *out = cap_end();
    assert_non_null(strstr(out, "line 2"));
    assert_null(strstr(out, "line 3"));
    assert_int_equal(rl.suppressed, 7);
    /* A new window reports the suppressed count. */
    cap_begin();
    rl.window_start_ms -= 61000;
    TRIB_LOG_RL(&rl, TRIB_LOG_WARN, "rl", "again");
    out = cap_end();
    assert_non_null(strstr(out, "7 similar messages suppressed"));
    assert_non_null(strstr(out, "again"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_levels),
        cmocka_unit_test(test_json),
        cmocka_unit_test(test_ratelimit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
