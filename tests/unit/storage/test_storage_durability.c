/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Durability: group commit under storage.fsync=ack (many waits, few
 * fdatasyncs, callbacks in order and never synchronous), the interval
 * and never policies, truncation cancelling waits, close completing them,
 * and the recovery point following the flushes.
 */
#include "storage_test.h"

typedef struct waiter {
    coll_durable_req_t req;
    int64_t offset;
    int status;
    int calls;
    int order;
} waiter_t;

static int g_order;

static void on_durable(coll_durable_req_t *req, int status)
{
    waiter_t *w = req->data;
    w->status = status;
    w->calls++;
    w->order = g_order++;
}

static void test_group_commit(void **state)
{
    (void)state;
    fixture_t fx;
    fx_init(&fx);
    fx_open(&fx);
    coll_log_t *log = fx_log(&fx, "gc", 0, NULL);
    enum { N = 300 };
    waiter_t *w = calloc(N, sizeof(*w));
    g_order = 0;
    for (int i = 0; i < N; i++) {
        coll_append_info_t a = append_records(log, 2, i, 1000, 50, 1000 + i);
        w[i].req.data = &w[i];
        w[i].offset = a.last_offset;
        assert_int_equal(coll_log_wait_durable(log, a.last_offset, &w[i].req, on_durable), 0);
        assert_int_equal(w[i].calls, 0);
    }
    fx_run(&fx);
    for (int i = 0; i < N; i++) {
        assert_int_equal(w[i].calls, 1);
        assert_int_equal(w[i].status, 0);
        assert_int_equal(w[i].order, i);
        assert_true(coll_log_is_durable(log, w[i].offset));
    }
    coll_storage_stats_t stats;
    coll_storage_get_stats(fx.st, &stats);
    assert_int_equal(stats.durable_waits, N);
    /* The first flush starts with the first wait; the second covers all the rest. */
    assert_true(stats.flushes <= 2);
    assert_int_equal(coll_log_durable_offset(log), coll_log_end_offset(log));
    assert_int_equal(coll_log_recovery_point(log), coll_log_end_offset(log));

    /* Already durable: still called back later, never inside the call. */
    waiter_t late = {.req = {.data = &late}};
    assert_int_equal(coll_log_wait_durable(log, 0, &late.req, on_durable), 0);
    assert_int_equal(late.calls, 0);
    fx_run(&fx);
    assert_int_equal(late.calls, 1);
    assert_int_equal(late.status, 0);
    coll_storage_get_stats(fx.st, &stats);
    assert_true(stats.flushes <= 2);

    /* Errors are returned, and then there is no callback. */
    waiter_t bad = {.req = {.data = &bad}};
    assert_int_equal(coll_log_wait_durable(log, coll_log_end_offset(log), &bad.req, on_durable),
                     -ERANGE);
    assert_int_equal(coll_log_wait_durable(log, 0, &bad.req, NULL), -EINVAL);
    fx_run(&fx);
    assert_int_equal(bad.calls, 0);
    free(w);
    fx_fini(&fx);
}

/* A producer that keeps appending while flushes run: pipelined group commit. */
typedef struct producer {
    uv_idle_t idle;
    coll_log_t *log;
    waiter_t *w;
    int n, next;
} producer_t;

static void produce_one(uv_idle_t *h)
{
    producer_t *p = h->data;
    if (p->next == p->n) {
        uv_idle_stop(h);
        uv_close((uv_handle_t *)h, NULL);
        return;
    }
    waiter_t *w = &p->w[p->next];
    coll_append_info_t a = append_records(p->log, 1, p->next, 1000, 100, 1);
    w->req.data = w;
    w->offset = a.last_offset;
    assert_int_equal(coll_log_wait_durable(p->log, a.last_offset, &w->req, on_durable), 0);
    p->next++;
}

static void test_pipelined_appends(void **state)
{
    (void)state;
    fixture_t fx;
    fx_init(&fx);
    fx_open(&fx);
    coll_log_config_t cfg;
    coll_log_config_init(&cfg);
    cfg.segment_bytes = 16 * 1024; /* rolls in between, too */
    coll_log_t *log = fx_log(&fx, "pipe", 0, &cfg);
    producer_t p = {.log = log, .n = 2000};
    p.w = calloc((size_t)p.n, sizeof(*p.w));
    g_order = 0;
    uv_idle_init(&fx.loop, &p.idle);
    p.idle.data = &p;
    uv_idle_start(&p.idle, produce_one);
    fx_run(&fx);
    for (int i = 0; i < p.n; i++) {
        assert_int_equal(p.w[i].calls, 1);
        assert_int_equal(p.w[i].status, 0);
    }
    coll_storage_stats_t stats;
    coll_storage_get_stats(fx.st, &stats);
    assert_true(stats.flushes < (uint64_t)p.n);
    assert_true(stats.segments_rolled > 5);
    assert_int_equal(coll_log_recovery_point(log), coll_log_end_offset(log));
    free(p.w);
    fx_fini(&fx);
}

static void test_truncation_cancels(void **state)
{
    (void)state;
    fixture_t fx;
    fx_init(&fx);
    fx_open(&fx);
    coll_log_t *log = fx_log(&fx, "cancel", 0, NULL);
    waiter_t w[10];
    memset(w, 0, sizeof(w));
    for (int i = 0; i < 10; i++) {
        coll_append_info_t a = append_records(log, 1, i, 100, 10, 1);
        w[i].req.data = &w[i];
        assert_int_equal(coll_log_wait_durable(log, a.last_offset, &w[i].req, on_durable), 0);
    }
    /* The first flush is in flight; the log loses offsets 6.. before it returns. */
    assert_int_equal(coll_log_truncate_to(log, 6), 0);
    append_records(log, 1, 0, 100, 10, 1); /* offset 6 again, new data */
    fx_run(&fx);
    for (int i = 0; i < 10; i++) {
        assert_int_equal(w[i].calls, 1);
        assert_int_equal(w[i].status, i < 6 ? 0 : -ECANCELED);
    }
    /* The new offset 6 was not covered by a flush that started before it. */
    waiter_t again = {.req = {.data = &again}};
    assert_int_equal(coll_log_wait_durable(log, 6, &again.req, on_durable), 0);
    fx_run(&fx);
    assert_int_equal(again.status, 0);
    assert_int_equal(coll_log_durable_offset(log), 7);
    fx_fini(&fx);
}

static void noop_timer(uv_timer_t *t)
{
    (void)t;
}

static void run_for(fixture_t *fx, uint64_t ms)
{
    uv_timer_t t;
    uv_timer_init(&fx->loop, &t);
    uv_timer_start(&t, noop_timer, ms, 0);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
}

static void test_interval_policy(void **state)
{
    (void)state;
    fixture_t fx;
    fx_init(&fx);
    fx.cfg.fsync = COLL_FSYNC_INTERVAL;
    fx.cfg.flush_ms = 20;
    fx.cfg.tick_ms = 5;
    fx_open(&fx);
    coll_log_t *log = fx_log(&fx, "interval", 0, NULL);
    append_records(log, 5, 0, 10, 10, 1);
    assert_int_equal(coll_log_durable_offset(log), 0);
    run_for(&fx, 100);
    assert_int_equal(coll_log_durable_offset(log), 5);
    append_records(log, 5, 0, 10, 10, 1);
    run_for(&fx, 100);
    assert_int_equal(coll_log_durable_offset(log), 10);
    coll_storage_stats_t stats;
    coll_storage_get_stats(fx.st, &stats);
    assert_true(stats.flushes >= 2 && stats.flushes <= 4);
    fx_fini(&fx);
}

static void test_never_policy(void **state)
{
    (void)state;
    fixture_t fx;
    fx_init(&fx);
    fx.cfg.fsync = COLL_FSYNC_NEVER;
    fx.cfg.tick_ms = 5;
    fx_open(&fx);
    coll_log_config_t cfg;
    coll_log_config_init(&cfg);
    cfg.segment_bytes = 2048;
    coll_log_t *log = fx_log(&fx, "never", 0, &cfg);
    append_records(log, 5, 0, 10, 10, 1);
    run_for(&fx, 30);
    assert_int_equal(coll_log_durable_offset(log), 0);
    assert_int_equal(coll_log_recovery_point(log), 0);
    /* Segments that roll are synced in the background anyway. */
    for (int i = 0; i < 30; i++) {
        append_records(log, 5, 0, 10, 50, 1);
    }
    assert_true(coll_log_segment_count(log) > 3);
    /* Before the pool ran, closed segments hold the recovery point back. */
    assert_int_equal(coll_log_recovery_point(log), 0);
    run_for(&fx, 30);
    int64_t active_base = coll_log_end_offset(log);
    coll_read_t r;
    assert_int_equal(coll_log_read(log, coll_log_end_offset(log) - 1, 1, INT64_MAX, 0, &r), 0);
    active_base = r.first_offset;
    coll_read_release(&r);
    assert_true(coll_log_recovery_point(log) > 0);
    assert_true(coll_log_recovery_point(log) <= active_base);
    assert_true(coll_log_durable_offset(log) < coll_log_end_offset(log));
    /* An explicit wait still works. */
    waiter_t w = {.req = {.data = &w}};
    assert_int_equal(coll_log_wait_durable(log, coll_log_end_offset(log) - 1, &w.req, on_durable),
                     0);
    fx_run(&fx);
    assert_int_equal(w.status, 0);
    assert_int_equal(coll_log_durable_offset(log), coll_log_end_offset(log));
    fx_fini(&fx);
}

static void test_close_completes_waits(void **state)
{
    (void)state;
    fixture_t fx;
    fx_init(&fx);
    fx_open(&fx);
    coll_log_t *a = fx_log(&fx, "a", 0, NULL);
    coll_log_t *b = fx_log(&fx, "b", 7, NULL);
    waiter_t w[4];
    memset(w, 0, sizeof(w));
    for (int i = 0; i < 4; i++) {
        coll_log_t *log = i % 2 ? b : a;
        coll_append_info_t ai = append_records(log, 3, i, 10, 10, 1);
        w[i].req.data = &w[i];
        assert_int_equal(coll_log_wait_durable(log, ai.last_offset, &w[i].req, on_durable), 0);
    }
    /* Close at once: appends are refused, the waits still complete. */
    assert_int_equal(coll_storage_close(fx.st, fx_closed_cb, &fx), 0);
    assert_int_equal(coll_storage_close(fx.st, fx_closed_cb, &fx), TRIB_ESTATE);
    fx_run(&fx);
    assert_true(fx.closed);
    assert_int_equal(fx.close_status, 0);
    fx.st = NULL;
    for (int i = 0; i < 4; i++) {
        assert_int_equal(w[i].calls, 1);
        assert_int_equal(w[i].status, 0);
    }
    fx_open(&fx);
    assert_int_equal(coll_storage_log_count(fx.st), 2);
    assert_int_equal(coll_storage_get_log(fx.st, "b", 7, &b), 0);
    assert_int_equal(coll_log_end_offset(b), 6);
    fx_fini(&fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_group_commit),       cmocka_unit_test(test_pipelined_appends),
        cmocka_unit_test(test_truncation_cancels), cmocka_unit_test(test_interval_policy),
        cmocka_unit_test(test_never_policy),       cmocka_unit_test(test_close_completes_waits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
