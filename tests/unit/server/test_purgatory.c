/* SPDX-License-Identifier: Apache-2.0 */
/* The fetch purgatory: completion by bytes, by deadline, by wake-up, and removal. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "server/server_int.h"

static int completed[128];
static int ncompleted;

static void done(coll_parked_t *pk)
{
    completed[ncompleted++] = (int)(intptr_t)pk->req;
}

static void setup(coll_parked_t *pk, coll_watch_t *w, coll_prt_t **prts, size_t n, int id,
                  int64_t min_bytes, uint64_t deadline)
{
    memset(pk, 0, sizeof(*pk));
    memset(w, 0, n * sizeof(*w));
    for (size_t i = 0; i < n; i++) {
        w[i].prt = prts[i];
    }
    pk->watches = w;
    pk->nwatches = n;
    pk->req = (coll_req_t *)(intptr_t)id;
    pk->min_bytes = min_bytes;
    pk->deadline_ms = deadline;
    pk->complete = done;
}

static void closed(uv_handle_t *h)
{
    (void)h;
}

static void test_purgatory(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    coll_purgatory_t pg;
    assert_int_equal(coll_purgatory_init(&loop, &pg), 0);
    coll_prt_t a, b;
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    coll_prt_t *pa[] = {&a}, *pab[] = {&a, &b}, *pb[] = {&b};
    coll_parked_t p1, p2, p3, p4;
    coll_watch_t w1[1], w2[2], w3[1], w4[1];
    uint64_t now = uv_now(&loop);
    setup(&p1, w1, pa, 1, 1, 100, now + 50);
    setup(&p2, w2, pab, 2, 2, 10, now + 100000);
    setup(&p3, w3, pb, 1, 3, 1000, now + 20);
    setup(&p4, w4, pb, 1, 4, 1, now + 100000);
    assert_int_equal(coll_purgatory_park(&pg, &p1, now), 0);
    assert_int_equal(coll_purgatory_park(&pg, &p2, now), 0);
    assert_int_equal(coll_purgatory_park(&pg, &p3, now), 0);
    assert_int_equal(coll_purgatory_park(&pg, &p4, now), 0);
    assert_int_equal(coll_purgatory_size(&pg), 4);

    /* 50 bytes on a: p2 (min 10) completes, p1 (min 100) waits. */
    coll_purgatory_notify(&pg, &a, 50);
    assert_int_equal(ncompleted, 1);
    assert_int_equal(completed[0], 2);
    assert_int_equal(coll_purgatory_size(&pg), 3);
    assert_int_equal(p1.bytes, 50);
    /* p2 left b's list too: 5 bytes on b complete p4 only. */
    coll_purgatory_remove(&pg, &p4);
    assert_int_equal(coll_purgatory_size(&pg), 2);
    coll_purgatory_notify(&pg, &b, 5);
    assert_int_equal(ncompleted, 1);
    assert_int_equal(p3.bytes, 5);

    /* Deadlines: p3 (20 ms) then p1 (50 ms). */
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(ncompleted, 3);
    assert_int_equal(completed[1], 3);
    assert_int_equal(completed[2], 1);
    assert_int_equal(coll_purgatory_size(&pg), 0);
    assert_null(a.watchers);
    assert_null(b.watchers);

    /* Wake-ups and a bigger heap. */
    coll_parked_t many[64];
    coll_watch_t mw[64];
    now = uv_now(&loop);
    for (int i = 0; i < 64; i++) {
        setup(&many[i], &mw[i], i % 2 ? pa : pb, 1, 100 + i, 1 << 30,
              now + 100000 - (uint64_t)i * 7);
        assert_int_equal(coll_purgatory_park(&pg, &many[i], now), 0);
    }
    ncompleted = 0;
    coll_purgatory_wake(&pg, &a);
    assert_int_equal(coll_purgatory_size(&pg), 32);
    assert_null(a.watchers);
    coll_purgatory_wake_all(&pg);
    assert_int_equal(coll_purgatory_size(&pg), 0);
    assert_null(b.watchers);
    coll_purgatory_close(&pg, closed);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_purgatory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
