/* SPDX-License-Identifier: Apache-2.0 */
/* The collector's request metrics: counters, histograms and their exposition. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/metrics.h"
#include "tributary/kafka_error.h"

static char *text(trib_buf_t *b)
{
    trib_buf_put_u8(b, 0);
    size_t n;
    return (char *)trib_buf_flatten(b, &n);
}

static void test_render(void **state)
{
    (void)state;
    coll_metrics_t m;
    coll_metrics_init(&m);
    coll_metrics_request(&m, 0, 0.0004);
    coll_metrics_request(&m, 0, 0.003);
    coll_metrics_request(&m, 0, 50);
    coll_metrics_request(&m, 1, 0.2);
    coll_metrics_request(&m, 30000, 0.2); /* an odd key: the "other" slot */
    coll_metrics_error(&m, 0, TRIB_KAFKA_CORRUPT_MESSAGE);
    coll_metrics_error(&m, 0, TRIB_KAFKA_CORRUPT_MESSAGE);
    coll_metrics_error(&m, 0, TRIB_KAFKA_NONE);
    coll_metrics_error(&m, 0, 5000); /* out of range: ignored */
    coll_metrics_error(&m, 1, TRIB_KAFKA_UNKNOWN_SERVER_ERROR);
    trib_buf_t b;
    trib_buf_init(&b);
    coll_metrics_render_requests(&m, &b);
    const char *t = text(&b);
    assert_non_null(strstr(t, "# TYPE tributary_requests_total counter\n"));
    assert_non_null(strstr(t, "tributary_requests_total{api=\"Produce\"} 3\n"));
    assert_non_null(strstr(t, "tributary_requests_total{api=\"Fetch\"} 1\n"));
    assert_non_null(strstr(t, "tributary_requests_total{api=\"other\"} 1\n"));
    assert_non_null(
        strstr(t, "tributary_request_errors_total{api=\"Produce\",error=\"CORRUPT_MESSAGE\"} 2\n"));
    assert_non_null(strstr(
        t, "tributary_request_errors_total{api=\"Fetch\",error=\"UNKNOWN_SERVER_ERROR\"} 1\n"));
    assert_null(strstr(t, "error=\"NONE\""));
    /* Cumulative buckets. */
    assert_non_null(
        strstr(t, "tributary_request_duration_seconds_bucket{api=\"Produce\",le=\"0.0005\"} 1\n"));
    assert_non_null(
        strstr(t, "tributary_request_duration_seconds_bucket{api=\"Produce\",le=\"0.005\"} 2\n"));
    assert_non_null(
        strstr(t, "tributary_request_duration_seconds_bucket{api=\"Produce\",le=\"10\"} 2\n"));
    assert_non_null(
        strstr(t, "tributary_request_duration_seconds_bucket{api=\"Produce\",le=\"+Inf\"} 3\n"));
    assert_non_null(strstr(t, "tributary_request_duration_seconds_count{api=\"Produce\"} 3\n"));
    trib_buf_fini(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_render),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
